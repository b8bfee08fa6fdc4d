/*
 * Per-partition in-order offset tracking: a message's offset is
 * stored only when it and every earlier message of its partition are done.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ytc_log.h"
#include "ytc_loop_int.h"

ytc_part *ytc_part_find(ytc_loop *L, const char *topic, int32_t partition)
{
    ytc_part *p;

    for (p = L->parts; p; p = p->next) {
        if (p->partition == partition && !strcmp(p->topic, topic)) {
            return p;
        }
    }
    return NULL;
}

ytc_part *ytc_part_get(ytc_loop *L, const char *topic, int32_t partition)
{
    ytc_part *p = ytc_part_find(L, topic, partition);

    if (p) {
        return p;
    }
    if (!(p = calloc(1, sizeof(*p))) || !(p->topic = strdup(topic))) {
        free(p);
        ytc_offsets_freeze(L, "a partition");
        return NULL;
    }
    p->partition = partition;
    p->store_offset = -1;
    p->next = L->parts;
    L->parts = p;
    return p;
}

void ytc_part_free(ytc_part *p)
{
    free(p->topic);
    free(p);
}

void ytc_unlink_part(ytc_part **list, ytc_part *p)
{
    for (; *list; list = &(*list)->next) {
        if (*list == p) {
            *list = p->next;
            return;
        }
    }
}

void ytc_part_push(ytc_loop *L, ytc_part *p, ytc_msg *m)
{
    m->next = NULL;
    if (p->tail) {
        p->tail->next = m;
    }
    else {
        p->head = m;
    }
    p->tail = m;
    L->msgs++;
}

void ytc_msg_free(ytc_loop *L, ytc_msg *m)
{
    L->held_bytes -= (long)(m->key_len + m->value_len);
    free(m->key);
    free(m->value);
    free(m);
    L->msgs--;
}

/* pop finished messages off the head; the next offset becomes storable */
void ytc_part_advance(ytc_loop *L, ytc_part *p)
{
    while (p->head && p->head->done) {
        ytc_msg *m = p->head;
        p->head = m->next;
        if (!p->head) {
            p->tail = NULL;
        }
        p->store_offset = m->offset + 1;
        p->dirty = !p->revoked;
        ytc_msg_free(L, m);
    }
    if (p->revoked && !p->head) {
        ytc_unlink_part(&L->zombies, p);
        ytc_part_free(p);
    }
}

void ytc_flush_offsets(ytc_loop *L)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_resp_err_t err;
    ytc_part *p;

    if (L->frozen) {
        return;
    }
    for (p = L->parts; p; p = p->next) {
        if (p->dirty && p->store_offset >= 0) {
            if (!list) {
                /* librdkafka's allocations abort rather than fail */
                list = rd_kafka_topic_partition_list_new(8);
            }
            rd_kafka_topic_partition_list_add(list, p->topic, p->partition)
                ->offset = p->store_offset;
            p->dirty = 0;
        }
    }
    if (!list) {
        return;
    }
    err = rd_kafka_offsets_store(L->consumer, list);
    if (err) {
        ytc_log(YTC_LOG_DEBUG, YTC_LOGNO(00404) "offsets_store: %s",
                rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(list);
}

void ytc_msg_release(ytc_msg *m)
{
    ytc_loop *L = m->loop;

    if (--m->pending > 0) {
        return;
    }
    m->done = 1;
    L->finished++;
    ytc_part_advance(L, m->part);
}

void ytc_revoke_parts(ytc_loop *L,
                      const rd_kafka_topic_partition_list_t *list)
{
    int i;

    for (i = 0; list && i < list->cnt; i++) {
        ytc_part *p = ytc_part_find(L, list->elems[i].topic,
                                list->elems[i].partition);
        if (!p) {
            continue;
        }
        ytc_unlink_part(&L->parts, p);
        L->assigned--;
        if (p->head) {
            /* in-flight work finishes, but its offsets are not ours now */
            p->revoked = 1;
            p->dirty = 0;
            p->next = L->zombies;
            L->zombies = p;
        }
        else {
            ytc_part_free(p);
        }
    }
    if (L->assigned < 0) {
        L->assigned = 0;
    }
}

void ytc_commit_sync(ytc_loop *L, const char *why)
{
    rd_kafka_resp_err_t err;

    ytc_flush_offsets(L);
    err = rd_kafka_commit(L->consumer, NULL, 0);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        ytc_log(YTC_LOG_WARN, YTC_LOGNO(00405) "commit (%s) failed: %s", why,
                rd_kafka_err2str(err));
    }
    else {
        ytc_log(YTC_LOG_DEBUG, YTC_LOGNO(00406) "committed (%s)", why);
    }
}

void ytc_offsets_freeze(ytc_loop *L, const char *what)
{
    if (!L->frozen) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(01100) "out of memory (%s): storing "
                "no further offset; stopping", what);
    }
    L->frozen = 1;
    L->fatal = 1;
}
