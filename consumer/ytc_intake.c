/*
 * Taking messages from Kafka: poll, hold, pause and resume.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_base64.h>

#include "ytk_envelope.h"
#include "ytk_links.h"
#include "ytc_log.h"
#include "ytc_loop_int.h"
#include "ytc_metrics.h"

/* A record of a DLQ topic (ours: it starts as ytc_dead_letter writes it)
 * is re-driven: the value processed is the original one it carries. */
static void redrive_value(ytc_msg *m)
{
    static const char dlq_start[] = "{\"error\":{\"code\":";
    json_object *o, *orig, *v;
    char *val = NULL;
    size_t len = 0;
    int found = 0;

    if (!m->value || m->value_len < sizeof(dlq_start) - 1
        || memcmp(m->value, dlq_start, sizeof(dlq_start) - 1)) {
        return;
    }
    if (!(o = json_tokener_parse(m->value))) {
        return;
    }
    if (json_object_object_get_ex(o, "original", &orig) && orig) {
        if (json_object_object_get_ex(orig, "value", &v) && v
            && json_object_is_type(v, json_type_string)) {
            found = 1;
            len = (size_t)json_object_get_string_len(v);
            if ((val = malloc(len + 1))) {
                memcpy(val, json_object_get_string(v), len);
            }
        }
        else if (json_object_object_get_ex(orig, "value_base64", &v) && v
                 && json_object_is_type(v, json_type_string)) {
            const char *b = json_object_get_string(v);
            found = 1;
            if ((val = malloc((size_t)apr_base64_decode_len(b) + 1))) {
                len = (size_t)apr_base64_decode(val, b);
            }
        }
    }
    json_object_put(o);
    if (found && !val) {
        ytc_offsets_freeze(m->loop, "a re-driven value");
    }
    if (val) {
        val[len] = '\0';
        free(m->value);
        m->value = val;
        m->value_len = len;
    }
}

/* add one refused link to @a arr (made on first use); @a first keeps the
 * first one's text for the record's reason */
static void reject(json_object **arr, char **first, const char *link,
                   size_t len, ytk_url_rc urc)
{
    json_object *o = json_object_new_object();
    size_t n = len > 2000 ? 2000 : len;
    size_t fl = ytk_utf8_fixed_len(link, n);
    char *fixed = malloc(fl + 1);

    if (!*arr) {
        *arr = json_object_new_array();
    }
    if (fixed) {
        ytk_utf8_fix(fixed, link, n);
        fixed[fl] = '\0';
        json_object_object_add(o, "link", json_object_new_string(fixed));
    }
    json_object_object_add(o, "code",
                           json_object_new_string(ytk_url_code(urc)));
    json_object_object_add(o, "message",
                           json_object_new_string(ytk_url_strerror(urc)));
    json_object_array_add(*arr, o);
    if (!*first) {
        size_t room = 300;
        if ((*first = malloc(room))) {
            snprintf(*first, room, "%s: %.200s", ytk_url_strerror(urc),
                     fixed ? fixed : "");
        }
    }
    free(fixed);
}

void ytc_handle_message(ytc_loop *L, rd_kafka_message_t *rkm)
{
    ytk_links links;
    ytk_links_rc lrc;
    ytc_part *part;
    ytc_msg *m;
    const char *topic;
    char seen[YTC_MAX_LINKS][YTK_VIDEO_ID_LEN + 1];
    int nseen = 0;
    size_t i;
    json_object *rejected = NULL;
    char *first = NULL;
    const char *first_code = NULL;

    if (rkm->err) {
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (rkm->rkt && (part = ytc_part_find(L, rd_kafka_topic_name(rkm->rkt),
                                              rkm->partition))) {
                part->eof = 1;
            }
            return;
        }
        if (rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
            L->fatal = 1;
        }
        ytc_log(rkm->err == RD_KAFKA_RESP_ERR__TRANSPORT
                || rkm->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN
                ? YTC_LOG_INFO : YTC_LOG_WARN,
                YTC_LOGNO(00420) "consumer: %s%s%s",
                rd_kafka_message_errstr(rkm), rkm->rkt ? " on " : "",
                rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "");
        return;
    }
    topic = rd_kafka_topic_name(rkm->rkt);
    part = ytc_part_find(L, topic, rkm->partition);
    if (!part) {
        /* not in our bookkeeping (should not happen): track it anyway */
        if (!(part = ytc_part_get(L, topic, rkm->partition))) {
            return;
        }
        L->assigned++;
    }
    part->eof = 0;

    if (L->cfg->no_fetch && !part->head) {
        /* finished as soon as parsed and nothing earlier is open: no
         * bookkeeping needed, the offset is storable at once */
        memset(&links, 0, sizeof(links));
        if (rkm->payload) {
            lrc = ytk_links_from_value(rkm->payload, rkm->len, YTC_MAX_LINKS,
                                       &links);
            for (i = 0; lrc == YTK_LINKS_OK && i < links.n; i++) {
                char id[YTK_VIDEO_ID_LEN + 1];
                (void)ytk_url_video_id(links.items[i], links.lens[i], id);
            }
            ytk_links_free(&links);
        }
        part->store_offset = rkm->offset + 1;
        part->dirty = 1;
        L->finished++;
        return;
    }

    m = calloc(1, sizeof(*m));
    if (!m || (rkm->key && !(m->key = malloc(rkm->key_len + 1)))
        || (rkm->payload && !(m->value = malloc(rkm->len + 1)))) {
        if (m) {
            free(m->key);
            free(m);
        }
        ytc_offsets_freeze(L, "a message");
        return;
    }
    m->loop = L;
    m->part = part;
    m->offset = rkm->offset;
    if (rkm->key) {
        memcpy(m->key, rkm->key, rkm->key_len);
        m->key[rkm->key_len] = '\0';
        m->key_len = rkm->key_len;
    }
    if (rkm->payload) {
        memcpy(m->value, rkm->payload, rkm->len);
        m->value[rkm->len] = '\0';
        m->value_len = rkm->len;
    }
    m->pending = 1;     /* held by this function */
    ytc_part_push(L, part, m);

    redrive_value(m);
    L->held_bytes += (long)(m->key_len + m->value_len);
    memset(&links, 0, sizeof(links));
    lrc = m->value ? ytk_links_from_value(m->value, m->value_len,
                                          YTC_MAX_LINKS, &links)
                   : YTK_LINKS_EMPTY;
    if (lrc != YTK_LINKS_OK) {
        if (!L->cfg->no_fetch) {
            ytc_dead_letter(L, m, ytk_links_code(lrc), ytk_links_strerror(lrc),
                        NULL, 0);
        }
        goto leave;
    }
    for (i = 0; i < links.n; i++) {
        char id[YTK_VIDEO_ID_LEN + 1];
        ytk_url_rc urc = ytk_url_video_id(links.items[i], links.lens[i], id);
        int k, dup = 0;

        if (urc != YTK_URL_OK) {
            if (!L->cfg->no_fetch) {
                if (!first_code) {
                    first_code = ytk_url_code(urc);
                }
                reject(&rejected, &first, links.items[i], links.lens[i], urc);
            }
            continue;
        }
        for (k = 0; k < nseen; k++) {
            dup |= !strcmp(seen[k], id);
        }
        if (dup || nseen >= YTC_MAX_LINKS) {
            continue;
        }
        memcpy(seen[nseen++], id, sizeof(id));
        if (!L->cfg->no_fetch) {
            ytc_job_submit(L, m, id);
        }
    }

    if (rejected) {
        /* one record for the message, however many links it refused */
        char why[400];
        size_t n = json_object_array_length(rejected);
        snprintf(why, sizeof(why), "%zu link(s) rejected; first: %s", n,
                 first ? first : "");
        ytc_dead_letter_links(L, m, first_code, why, NULL, 0, rejected);
        json_object_put(rejected);
        free(first);
    }

leave:
    ytk_links_free(&links);
    ytc_msg_release(m);
}

/* A waiting job is ~1.5 KB and holds no body, so hundreds may wait. After
 * a resume librdkafka fetches again, possibly only after a Fetch still in
 * flight for other partitions (up to fetch.wait.max.ms, 100 ms by our
 * default), so the low mark must hold enough work to bridge that; the gap
 * between the marks keeps pause/resume rare. */
static long low_mark(const ytc_loop *L)
{
    long c = L->cfg->concurrency;
    return c * 4 > 256 ? c * 4 : 256;
}

/* Messages held are also capped by bytes (a value may be up to Kafka's
 * message.max.bytes, 1 MB by default: 512 held jobs of such values would be
 * 512 MB), and so are the results and DLQ records still on their way. */
static int over_high(const ytc_loop *L)
{
    return L->jobs >= 2 * low_mark(L) || L->msgs >= YTC_MAX_PENDING_MSGS
           || L->held_bytes >= YTC_MAX_HELD_BYTES
           || L->prod_bytes >= YTC_MAX_PRODUCE_BYTES;
}

static int under_low(const ytc_loop *L)
{
    return L->jobs <= low_mark(L) && L->msgs < YTC_MAX_PENDING_MSGS / 2
           && L->held_bytes < YTC_MAX_HELD_BYTES / 2
           && L->prod_bytes < YTC_MAX_PRODUCE_BYTES / 2;
}

int ytc_all_at_eof(const ytc_loop *L)
{
    const ytc_part *p;

    if (!L->parts) {
        return 0;
    }
    for (p = L->parts; p; p = p->next) {
        if (!p->eof) {
            return 0;
        }
    }
    return 1;
}

int ytc_count_reached(const ytc_loop *L)
{
    return L->cfg->count > 0 && L->consumed >= L->cfg->count;
}

/* Over the high mark the loop first just stops polling: librdkafka keeps
 * the fetched messages (bounded by queued.max.messages.kbytes) and they are
 * taken as soon as jobs finish. rd_kafka_resume_partitions in librdkafka
 * 2.0 is noticed by the broker thread only at its next wake-up, up to ~1 s
 * after the pause (nothing else wakes it while every partition is paused),
 * so a pause costs up to that long without messages. Only a hold longer
 * than this pauses for real, because group events (rebalances) are served
 * by the same poll. */
#define YTC_HOLD_MS 1000

long ytc_hold_left_ms(const ytc_loop *L, apr_time_t now)
{
    long left;

    if (!L->held_since || L->paused) {
        return -1;
    }
    left = YTC_HOLD_MS - (long)((now - L->held_since) / 1000);
    return left > 0 ? left : 0;
}

/* librdkafka 2.0 stops fetching once its queue holds queued.min.messages
 * or queued.max.messages.kbytes of values, and looks again only at its
 * broker thread's next wake-up, up to a second later: the application
 * draining the queue does not wake it (2.2 added fetch.queue.backoff.ms
 * for that). With the small caps of ytc_make_conf, a consumer that drains
 * them in well under that second (--no-fetch takes 20 000 messages in
 * ~30 ms) would sit idle most of the time. So when the queue was full and
 * has run empty while a partition has messages past our position (or, with
 * -e, has not reported its end yet), each such partition is sought to its
 * position: a seek wakes the broker thread
 * at once. Nothing is skipped or repeated: the position is the offset
 * after the last message handed to us, and the empty queue holds nothing a
 * seek would drop. A partition's high watermark comes from its last Fetch
 * response (no request is made). */
static void queue_caps(ytc_loop *L)
{
    const rd_kafka_conf_t *conf = rd_kafka_conf(L->consumer);
    char buf[64];
    size_t len = sizeof(buf);

    L->q_min_msgs = YTC_QUEUED_MIN_MESSAGES;
    L->q_max_bytes = (long)YTC_QUEUED_MAX_KBYTES * 1024;
    if (rd_kafka_conf_get(conf, "queued.min.messages", buf, &len)
        == RD_KAFKA_CONF_OK) {
        L->q_min_msgs = atol(buf);
    }
    len = sizeof(buf);
    if (rd_kafka_conf_get(conf, "queued.max.messages.kbytes", buf, &len)
        == RD_KAFKA_CONF_OK) {
        L->q_max_bytes = atol(buf) * 1024;
    }
}

/* has librdkafka's queue (@a n messages) reached a cap? */
static int queue_full(const ytc_loop *L, long n)
{
    return n >= L->q_min_msgs - L->q_min_msgs / 10
           || n * L->q_avg_len >= L->q_max_bytes - L->q_max_bytes / 10;
}

static void kick_fetcher(ytc_loop *L)
{
    rd_kafka_topic_partition_list_t *a = NULL, *seek;
    rd_kafka_error_t *error;
    int i;

    L->q_full = 0;
    if (rd_kafka_assignment(L->consumer, &a) != RD_KAFKA_RESP_ERR_NO_ERROR
        || !a) {
        return;
    }
    seek = rd_kafka_topic_partition_list_new(a->cnt);
    if (rd_kafka_position(L->consumer, a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (i = 0; i < a->cnt; i++) {
            const rd_kafka_topic_partition_t *e = &a->elems[i];
            const ytc_part *p = ytc_part_find(L, e->topic, e->partition);
            int64_t lo, hi;
            /* behind its end, or (-e) at its end without the end reported
             * yet: librdkafka reports it only after one more Fetch */
            if (e->offset >= 0
                && rd_kafka_get_watermark_offsets(L->consumer, e->topic,
                                                  e->partition, &lo, &hi)
                   == RD_KAFKA_RESP_ERR_NO_ERROR
                && (hi > e->offset
                    || (L->cfg->exit_eof && p && !p->eof))) {
                rd_kafka_topic_partition_list_add(seek, e->topic,
                                                  e->partition)->offset =
                    e->offset;
            }
        }
    }
    if (seek->cnt > 0) {
        ytc_log(YTC_LOG_DEBUG, YTC_LOGNO(01000) "prefetch queue ran dry "
                "at its cap: waking the fetcher for %d partition(s)",
                seek->cnt);
        /* timeout 0: asynchronous, per-partition results are not awaited */
        if ((error = rd_kafka_seek_partitions(L->consumer, seek, 0))) {
            ytc_log(YTC_LOG_DEBUG, YTC_LOGNO(01001) "seek: %s",
                    rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
    }
    rd_kafka_topic_partition_list_destroy(seek);
    rd_kafka_topic_partition_list_destroy(a);
}

/* -e: with librdkafka's queue empty, a partition whose position has
 * reached the high watermark of its last Fetch response is at its end:
 * the end librdkafka would report only after one more Fetch, which a
 * broker holds for fetch.wait.max.ms since there is nothing to send. A
 * partition short of it (a transaction's marker last, an open transaction)
 * waits for librdkafka's report. Looked at once per message taken since
 * the last look. */
static void watch_ends(ytc_loop *L)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    int i;

    if (!L->cfg->exit_eof || L->ends_seen == L->consumed
        || ytc_all_at_eof(L)) {
        return;
    }
    L->ends_seen = L->consumed;
    if (rd_kafka_assignment(L->consumer, &a) != RD_KAFKA_RESP_ERR_NO_ERROR
        || !a) {
        return;
    }
    if (rd_kafka_position(L->consumer, a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (i = 0; i < a->cnt; i++) {
            const rd_kafka_topic_partition_t *e = &a->elems[i];
            ytc_part *p = ytc_part_find(L, e->topic, e->partition);
            int64_t lo, hi;
            if (p && e->offset >= 0
                && rd_kafka_get_watermark_offsets(L->consumer, e->topic,
                                                  e->partition, &lo, &hi)
                   == RD_KAFKA_RESP_ERR_NO_ERROR
                && hi >= 0 && e->offset >= hi && !p->eof) {
                ytc_log(YTC_LOG_DEBUG, YTC_LOGNO(01240) "%s [%" PRId32 "] "
                        "at its end: offset %" PRId64 " is the last Fetch's "
                        "high watermark", e->topic, e->partition, e->offset);
                p->eof = 1;
            }
        }
    }
    rd_kafka_topic_partition_list_destroy(a);
}

/* called with librdkafka's queue empty */
static void maybe_kick(ytc_loop *L)
{
    watch_ends(L);
    if (L->q_full && !L->paused && !L->held_since && !L->stopping
        && !ytc_count_reached(L) && !ytc_outage(L)) {
        kick_fetcher(L);
    }
}

/* take messages until the queue is empty, the high-water mark is reached
 * or a batch is done; the first poll may wait @a timeout_ms. 1 if more may
 * be waiting. */
int ytc_intake(ytc_loop *L, int timeout_ms)
{
    int n = 0, more = 0;
    long queued;

    if (!L->q_min_msgs) {
        queue_caps(L);
    }
    if (ytc_outage(L)) {
        /* keep polling (group membership, max.poll.interval.ms) but
         * take nothing new: librdkafka hands out only what it had */
        ytc_set_paused(L, 1);
    }
    else if (!L->paused && !ytc_count_reached(L)) {
        if (!over_high(L)) {
            L->held_since = 0;
        }
        else {
            apr_time_t now = apr_time_now();
            if (!L->held_since) {
                L->held_since = now;
            }
            if (ytc_hold_left_ms(L, now) > 0) {
                return 0;
            }
            /* held too long: pause, and poll for group events */
            ytc_set_paused(L, 1);
        }
    }
    queued = (long)rd_kafka_queue_length(L->cq);
    if (queued == 0) {
        maybe_kick(L);
    }
    else if (queue_full(L, queued)) {
        L->q_full = 1;
    }
    for (;;) {
        rd_kafka_message_t *rkm;
        if (ytc_count_reached(L)) {
            /* -c: take no more, serve only group events */
            rkm = rd_kafka_consumer_poll(L->consumer, 0);
            if (rkm) {
                ytc_log(YTC_LOG_DEBUG, YTC_LOGNO(00435) "-c reached: "
                        "%s [%" PRId32 "] @%" PRId64 " left for later",
                        rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "-",
                        rkm->partition, rkm->offset);
                rd_kafka_message_destroy(rkm);
                ytc_set_paused(L, 1);
            }
            break;
        }
        if (n >= 1000) {
            more = 1;
            break;
        }
        rkm = rd_kafka_consumer_poll(L->consumer, n == 0 ? timeout_ms : 0);
        if (!rkm) {
            if (n > 0) {
                maybe_kick(L);
            }
            break;
        }
        if (!rkm->err) {
            L->q_avg_len += ((long)rkm->len + (long)rkm->key_len
                             - L->q_avg_len) / 16;
            L->consumed++;
            ytc_metrics_add(YTC_M_MESSAGES, 1);
        }
        ytc_handle_message(L, rkm);
        rd_kafka_message_destroy(rkm);
        n++;
        if (!L->paused && over_high(L)) {
            /* hold (see YTC_HOLD_MS) */
            L->held_since = apr_time_now();
            break;
        }
    }
    if (L->paused && under_low(L) && !ytc_count_reached(L)
        && !ytc_outage(L)) {
        /* after -c the intake stays paused: a resume would only make
         * librdkafka fetch again what is dropped at the next poll */
        ytc_set_paused(L, 0);
        more = 1;
    }
    return more;
}
