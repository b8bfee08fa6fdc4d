#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_base64.h>
#include <apr_strings.h>
#include <apr_time.h>
#include <json-c/json.h>
#include <librdkafka/rdkafka.h>

#include "config.h"
#include "ytk_envelope.h"
#include "ytk_links.h"
#include "ytk_url.h"
#include "ytc_fetch.h"
#include "ytc_log.h"
#include "ytc_loop.h"
#include "ytc_meta.h"
#include "ytc_sink.h"

/* links taken from one message value; more is garbage */
#define YTC_MAX_LINKS 100
/* finished-but-unstorable messages (behind a slow head) kept at most */
#define YTC_MAX_PENDING_MSGS 20000

typedef struct ytc_part ytc_part;
typedef struct ytc_msg ytc_msg;
typedef struct ytc_job ytc_job;

struct ytc_msg {
    ytc_loop *loop;
    ytc_part *part;
    int64_t offset;
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    int pending;        /* jobs and produce requests not yet done */
    int done;
    ytc_msg *next;      /* partition queue, offset order */
};

struct ytc_part {
    char *topic;
    int32_t partition;
    ytc_msg *head, *tail;
    int64_t store_offset;   /* next offset to store, -1 if none */
    int dirty;
    int revoked;
    int eof;
    ytc_part *next;
};

struct ytc_job {
    ytc_loop *loop;
    ytc_msg *msg;
    char video_id[YTK_VIDEO_ID_LEN + 1];
    int attempts;
    int transfers;          /* HTTP requests of this attempt in flight */
    ytc_http_answer watch, oembed;
    apr_time_t due;
    ytc_job *next;          /* ready queue or backoff list */
    ytc_job *prev_all, *next_all;
    char last_error[600];
};

struct ytc_loop {
    const ytc_config *cfg;
    apr_pool_t *pool;
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    rd_kafka_queue_t *cq;
    int wake[2];
    ytc_fetcher *fetch;
    ytc_db *db;
    ytc_part *parts;        /* assigned */
    ytc_part *zombies;      /* revoked, still holding in-flight messages */
    ytc_job *ready_head, *ready_tail;
    ytc_job *backoff;
    ytc_job *all_jobs;
    long jobs;              /* existing jobs: ready, running, backing off */
    int running;            /* jobs with transfers in flight */
    long msgs;              /* messages not yet freed */
    long finished;          /* messages finished (for -c) */
    long consumed;          /* messages taken in (for -c) */
    int assigned;           /* partitions in the assignment */
    int paused;
    apr_time_t held_since;  /* over the high mark, not polling: since when */
    int stopping;
    int fatal;
    apr_time_t deadline;
    unsigned int seed;
};

/* ---- small helpers ------------------------------------------------------ */

static void now_string(char buf[32])
{
    ytk_format_time((int64_t)apr_time_now(), buf, 32);
}

static int utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t n, k;
        if (c < 0x80) {
            if (c == 0) {
                return 0;
            }
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0 && c >= 0xC2) {
            n = 1;
        }
        else if ((c & 0xF0) == 0xE0) {
            n = 2;
        }
        else if ((c & 0xF8) == 0xF0 && c <= 0xF4) {
            n = 3;
        }
        else {
            return 0;
        }
        for (k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xC0) != 0x80) {
                return 0;
            }
        }
        i += n + 1;
    }
    return 1;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
    int ours = ytc_log_from_syslog(level);

    /* a broker that cannot be reached is reported by error_cb as well, and
     * is expected while Kafka starts: not an error of ours every second */
    if (!strcmp(fac, "FAIL") && ours < YTC_LOG_INFO) {
        ours = YTC_LOG_INFO;
    }
    ytc_log(ours, YTC_LOGNO(00401) "rdkafka %s: %s: %s", rd_kafka_name(rk),
            fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque)
{
    ytc_loop *L = opaque;

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_fatal_error(rk, buf, sizeof(buf));
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00402) "rdkafka %s: fatal: %s",
                rd_kafka_name(rk), buf);
        L->fatal = 1;
        return;
    }
    /* brokers down is normal at start: librdkafka keeps retrying */
    ytc_log(err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN
            || err == RD_KAFKA_RESP_ERR__TRANSPORT
            || err == RD_KAFKA_RESP_ERR__RESOLVE ? YTC_LOG_INFO : YTC_LOG_WARN,
            YTC_LOGNO(00403) "rdkafka %s: %s: %s", rd_kafka_name(rk),
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* ---- partitions and in-order offsets ------------------------------------ */

static ytc_part *part_find(ytc_loop *L, const char *topic, int32_t partition)
{
    ytc_part *p;

    for (p = L->parts; p; p = p->next) {
        if (p->partition == partition && !strcmp(p->topic, topic)) {
            return p;
        }
    }
    return NULL;
}

static ytc_part *part_get(ytc_loop *L, const char *topic, int32_t partition)
{
    ytc_part *p = part_find(L, topic, partition);

    if (p) {
        return p;
    }
    p = calloc(1, sizeof(*p));
    p->topic = strdup(topic);
    p->partition = partition;
    p->store_offset = -1;
    p->next = L->parts;
    L->parts = p;
    return p;
}

static void part_free(ytc_part *p)
{
    free(p->topic);
    free(p);
}

static void unlink_part(ytc_part **list, ytc_part *p)
{
    for (; *list; list = &(*list)->next) {
        if (*list == p) {
            *list = p->next;
            return;
        }
    }
}

static void msg_free(ytc_loop *L, ytc_msg *m)
{
    free(m->key);
    free(m->value);
    free(m);
    L->msgs--;
}

/* pop finished messages off the head; the next offset becomes storable */
static void part_advance(ytc_loop *L, ytc_part *p)
{
    while (p->head && p->head->done) {
        ytc_msg *m = p->head;
        p->head = m->next;
        if (!p->head) {
            p->tail = NULL;
        }
        p->store_offset = m->offset + 1;
        p->dirty = !p->revoked;
        msg_free(L, m);
    }
    if (p->revoked && !p->head) {
        unlink_part(&L->zombies, p);
        part_free(p);
    }
}

static void flush_offsets(ytc_loop *L)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_resp_err_t err;
    ytc_part *p;

    for (p = L->parts; p; p = p->next) {
        if (p->dirty && p->store_offset >= 0) {
            if (!list) {
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

static void msg_release(ytc_msg *m)
{
    ytc_loop *L = m->loop;

    if (--m->pending > 0) {
        return;
    }
    m->done = 1;
    L->finished++;
    part_advance(L, m->part);
}

static void revoke_parts(ytc_loop *L,
                         const rd_kafka_topic_partition_list_t *list)
{
    int i;

    for (i = 0; list && i < list->cnt; i++) {
        ytc_part *p = part_find(L, list->elems[i].topic,
                                list->elems[i].partition);
        if (!p) {
            continue;
        }
        unlink_part(&L->parts, p);
        L->assigned--;
        if (p->head) {
            /* in-flight work finishes, but its offsets are not ours now */
            p->revoked = 1;
            p->dirty = 0;
            p->next = L->zombies;
            L->zombies = p;
        }
        else {
            part_free(p);
        }
    }
    if (L->assigned < 0) {
        L->assigned = 0;
    }
}

static void commit_sync(ytc_loop *L, const char *why)
{
    rd_kafka_resp_err_t err;

    flush_offsets(L);
    err = rd_kafka_commit(L->consumer, NULL, 0);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        ytc_log(YTC_LOG_WARN, YTC_LOGNO(00405) "commit (%s) failed: %s", why,
                rd_kafka_err2str(err));
    }
    else {
        ytc_log(YTC_LOG_DEBUG, YTC_LOGNO(00406) "committed (%s)", why);
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    ytc_loop *L = opaque;
    int coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t ret = RD_KAFKA_RESP_ERR_NO_ERROR;
    int i;

    switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        for (i = 0; i < parts->cnt; i++) {
            ytc_log(YTC_LOG_INFO, YTC_LOGNO(00407) "assigned %s [%" PRId32 "]",
                    parts->elems[i].topic, parts->elems[i].partition);
            if (!part_find(L, parts->elems[i].topic,
                           parts->elems[i].partition)) {
                part_get(L, parts->elems[i].topic, parts->elems[i].partition);
                L->assigned++;
            }
        }
        if (coop) {
            error = rd_kafka_incremental_assign(rk, parts);
        }
        else {
            ret = rd_kafka_assign(rk, parts);
        }
        if (L->paused) {
            rd_kafka_pause_partitions(rk, parts);
        }
        break;

    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        ytc_log(YTC_LOG_INFO, YTC_LOGNO(00408) "%d partition(s) revoked%s",
                parts->cnt, rd_kafka_assignment_lost(rk) ? " (lost)" : "");
        if (!rd_kafka_assignment_lost(rk)) {
            commit_sync(L, "revoke");
        }
        revoke_parts(L, parts);
        if (coop) {
            error = rd_kafka_incremental_unassign(rk, parts);
        }
        else {
            ret = rd_kafka_assign(rk, NULL);
        }
        break;

    default:
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00409) "rebalance failed: %s",
                rd_kafka_err2str(err));
        revoke_parts(L, parts);
        rd_kafka_assign(rk, NULL);
        break;
    }
    if (error) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00410) "incremental rebalance: %s",
                rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    else if (ret) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00411) "assign: %s",
                rd_kafka_err2str(ret));
    }
}

static void set_paused(ytc_loop *L, int on)
{
    rd_kafka_topic_partition_list_t *a = NULL;

    if (L->paused == on) {
        return;
    }
    L->paused = on;
    L->held_since = 0;
    if (rd_kafka_assignment(L->consumer, &a) == RD_KAFKA_RESP_ERR_NO_ERROR
        && a) {
        if (on) {
            rd_kafka_pause_partitions(L->consumer, a);
        }
        else {
            rd_kafka_resume_partitions(L->consumer, a);
        }
        rd_kafka_topic_partition_list_destroy(a);
    }
    ytc_log(YTC_LOG_DEBUG, YTC_LOGNO(00412) "%s intake (%ld jobs, %ld msgs)",
            on ? "paused" : "resumed", L->jobs, L->msgs);
}

/* ---- producing: results and dead letters -------------------------------- */

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    ytc_msg *m = rkm->_private;

    if (rkm->err) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00413) "delivery to %s failed: %s",
                rd_kafka_topic_name(rkm->rkt), rd_kafka_err2str(rkm->err));
    }
    if (m) {
        msg_release(m);
    }
}

/* produce, holding @a m until the delivery report; 0 or -1 */
static int produce(ytc_loop *L, ytc_msg *m, const char *topic,
                   const void *key, size_t key_len,
                   const char *value, size_t value_len,
                   rd_kafka_headers_t *hdrs)
{
    rd_kafka_resp_err_t err;
    int tries;

    if (!L->producer) {
        if (hdrs) {
            rd_kafka_headers_destroy(hdrs);
        }
        return -1;
    }
    for (tries = 0; tries < 50; tries++) {
        err = rd_kafka_producev(L->producer,
                                RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_KEY(key, key_len),
                                RD_KAFKA_V_VALUE((void *)value, value_len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_HEADERS(hdrs),
                                RD_KAFKA_V_OPAQUE(m),
                                RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            break;
        }
        rd_kafka_poll(L->producer, 100);
    }
    if (err) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00414) "produce to %s failed: %s",
                topic, rd_kafka_err2str(err));
        if (hdrs) {
            rd_kafka_headers_destroy(hdrs);
        }
        return -1;
    }
    m->pending++;
    return 0;
}

static void dead_letter(ytc_loop *L, ytc_msg *m, const char *code,
                        const char *reason, const char *video_id,
                        int attempts)
{
    json_object *o = json_object_new_object(), *err, *orig;
    rd_kafka_headers_t *h = rd_kafka_headers_new(6);
    char when[32], num[32], topic[512];
    const char *s;
    size_t len;

    if (L->cfg->dlq_topic) {
        snprintf(topic, sizeof(topic), "%s", L->cfg->dlq_topic);
    }
    else {
        snprintf(topic, sizeof(topic), "%s.dlq", m->part->topic);
    }
    now_string(when);
    err = json_object_new_object();
    json_object_object_add(err, "code", json_object_new_string(code));
    json_object_object_add(err, "message", json_object_new_string(reason));
    json_object_object_add(o, "error", err);
    if (video_id) {
        json_object_object_add(o, "video_id",
                               json_object_new_string(video_id));
        json_object_object_add(o, "attempts", json_object_new_int(attempts));
    }
    orig = json_object_new_object();
    json_object_object_add(orig, "topic",
                           json_object_new_string(m->part->topic));
    json_object_object_add(orig, "partition",
                           json_object_new_int(m->part->partition));
    json_object_object_add(orig, "offset", json_object_new_int64(m->offset));
    if (m->key && utf8_valid((const unsigned char *)m->key, m->key_len)) {
        json_object_object_add(orig, "key", json_object_new_string_len(
                                   m->key, (int)m->key_len));
    }
    if (!m->value) {
        json_object_object_add(orig, "value", NULL);
    }
    else if (utf8_valid((const unsigned char *)m->value, m->value_len)) {
        json_object_object_add(orig, "value", json_object_new_string_len(
                                   m->value, (int)m->value_len));
    }
    else {
        char *b64;
        apr_pool_t *tp;
        apr_pool_create(&tp, L->pool);
        b64 = apr_palloc(tp, (apr_size_t)apr_base64_encode_len(
                                 (int)m->value_len));
        apr_base64_encode(b64, m->value, (int)m->value_len);
        json_object_object_add(orig, "value_base64",
                               json_object_new_string(b64));
        apr_pool_destroy(tp);
    }
    json_object_object_add(o, "original", orig);
    json_object_object_add(o, "failed_at", json_object_new_string(when));
    json_object_object_add(o, "consumer",
                           json_object_new_string("ytkafka-consumer/"
                                                  PACKAGE_VERSION));
    s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

    rd_kafka_header_add(h, "ytk-dlq-code", -1, code, -1);
    rd_kafka_header_add(h, "ytk-dlq-reason", -1, reason, -1);
    rd_kafka_header_add(h, "ytk-original-topic", -1, m->part->topic, -1);
    snprintf(num, sizeof(num), "%" PRId32, m->part->partition);
    rd_kafka_header_add(h, "ytk-original-partition", -1, num, -1);
    snprintf(num, sizeof(num), "%" PRId64, m->offset);
    rd_kafka_header_add(h, "ytk-original-offset", -1, num, -1);
    rd_kafka_header_add(h, "content-type", -1, "application/json", -1);

    ytc_log(YTC_LOG_WARN, YTC_LOGNO(00415) "dead letter %s [%" PRId32 "] @%"
            PRId64 "%s%s -> %s: %s: %s", m->part->topic, m->part->partition,
            m->offset, video_id ? " video " : "", video_id ? video_id : "",
            topic, code, reason);
    produce(L, m, topic, m->key, m->key_len, s, len, h);
    json_object_put(o);
}

/* ---- jobs ---------------------------------------------------------------- */

static void job_free(ytc_loop *L, ytc_job *j)
{
    if (j->prev_all) {
        j->prev_all->next_all = j->next_all;
    }
    else {
        L->all_jobs = j->next_all;
    }
    if (j->next_all) {
        j->next_all->prev_all = j->prev_all;
    }
    free(j->watch.body);
    free(j->oembed.body);
    free(j);
    L->jobs--;
}

static void job_enqueue(ytc_loop *L, ytc_job *j)
{
    j->next = NULL;
    if (L->ready_tail) {
        L->ready_tail->next = j;
    }
    else {
        L->ready_head = j;
    }
    L->ready_tail = j;
}

static ytc_job *job_new(ytc_loop *L, ytc_msg *m, const char *id)
{
    ytc_job *j = calloc(1, sizeof(*j));

    j->loop = L;
    j->msg = m;
    memcpy(j->video_id, id, YTK_VIDEO_ID_LEN + 1);
    j->next_all = L->all_jobs;
    if (L->all_jobs) {
        L->all_jobs->prev_all = j;
    }
    L->all_jobs = j;
    L->jobs++;
    m->pending++;
    return j;
}

static void add_source(json_object *o, const ytc_msg *m)
{
    json_object *src = json_object_new_object();

    json_object_object_add(src, "topic",
                           json_object_new_string(m->part->topic));
    json_object_object_add(src, "partition",
                           json_object_new_int(m->part->partition));
    json_object_object_add(src, "offset", json_object_new_int64(m->offset));
    json_object_object_add(o, "source", src);
}

static int64_t get_int64(json_object *o, const char *key)
{
    json_object *v;

    if (json_object_object_get_ex(o, key, &v) && v
        && json_object_is_type(v, json_type_int)) {
        return json_object_get_int64(v);
    }
    return -1;
}

static const char *get_str(json_object *o, const char *key)
{
    json_object *v;

    if (json_object_object_get_ex(o, key, &v) && v
        && json_object_is_type(v, json_type_string)) {
        return json_object_get_string(v);
    }
    return NULL;
}

/* the final word on a video: stdout, database, results topic, or DLQ */
static void job_emit(ytc_loop *L, ytc_job *j, ytc_outcome out,
                     json_object *result, const char *reason)
{
    ytc_msg *m = j->msg;
    char when[32], canon[64];
    const char *text;
    size_t len;
    ytc_row row;
    int db_failed;

    now_string(when);
    ytk_canonical_url(j->video_id, canon, sizeof(canon));
    if (!result) {
        result = json_object_new_object();
        json_object_object_add(result, "video_id",
                               json_object_new_string(j->video_id));
        json_object_object_add(result, "status",
                               json_object_new_string("error"));
    }
    json_object_object_add(result, "url", json_object_new_string(canon));
    if (reason && reason[0]) {
        json_object_object_add(result, out == YTC_OUT_UNAVAILABLE
                               ? "reason" : "error",
                               json_object_new_string(reason));
    }
    json_object_object_add(result, "attempts",
                           json_object_new_int(j->attempts));
    json_object_object_add(result, "fetched_at",
                           json_object_new_string(when));
    add_source(result, m);
    text = json_object_to_json_string_length(
        result, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

    if (ytc_stdout_write(text, len) != 0) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00416) "stdout: %s", strerror(errno));
    }

    memset(&row, 0, sizeof(row));
    row.video_id = j->video_id;
    row.status = get_str(result, "status");
    row.title = get_str(result, "title");
    row.author_name = get_str(result, "author_name");
    row.channel_id = get_str(result, "channel_id");
    row.duration_seconds = get_int64(result, "duration_seconds");
    row.view_count = get_int64(result, "view_count");
    row.publish_date = get_str(result, "publish_date");
    row.metadata_json = text;
    row.attempts = j->attempts;
    row.last_error = (out == YTC_OUT_OK) ? NULL : reason;
    row.now = when;
    db_failed = ytc_db_upsert(L->db, &row) != 0;

    if (L->cfg->results_topic) {
        rd_kafka_headers_t *h = rd_kafka_headers_new(1);
        rd_kafka_header_add(h, "content-type", -1, "application/json", -1);
        produce(L, m, L->cfg->results_topic, j->video_id,
                strlen(j->video_id), text, len, h);
    }
    if (out == YTC_OUT_ERROR || out == YTC_OUT_TRANSIENT) {
        dead_letter(L, m, out == YTC_OUT_TRANSIENT ? "retries_exhausted"
                    : "extraction_failed", reason, j->video_id, j->attempts);
    }
    else if (db_failed) {
        dead_letter(L, m, "database", "the result could not be stored",
                    j->video_id, j->attempts);
    }
    ytc_log(YTC_LOG_DEBUG, YTC_LOGNO(00417) "video %s: %s after %d "
            "attempt(s)%s%s", j->video_id, ytc_outcome_name(out), j->attempts,
            reason && reason[0] ? ": " : "", reason ? reason : "");
    json_object_put(result);
}

static long backoff_ms(ytc_loop *L, const ytc_job *j, long retry_after)
{
    long base = L->cfg->backoff_ms, cap = L->cfg->backoff_max_ms, d;
    int i;

    if (retry_after >= 0) {
        /* the server said when; a little jitter keeps a crowd apart */
        d = retry_after * 1000;
        if (d > 3600000) {
            d = 3600000;
        }
        return d + (long)(rand_r(&L->seed) % 250);
    }
    d = base;
    for (i = 1; i < j->attempts && d < cap; i++) {
        d *= 2;
    }
    if (d > cap) {
        d = cap;
    }
    /* equal jitter: half fixed, half random */
    return d / 2 + (d > 1 ? (long)(rand_r(&L->seed) % (unsigned)(d / 2 + 1))
                          : 0);
}

static void attempt_done(ytc_loop *L, ytc_job *j)
{
    json_object *result = NULL;
    char reason[600];
    long retry_after = -1;
    ytc_outcome out;

    L->running--;
    j->attempts++;
    out = ytc_meta_extract(j->video_id, &j->watch, &j->oembed, &result,
                           reason, sizeof(reason), &retry_after);
    free(j->watch.body);
    free(j->oembed.body);
    memset(&j->watch, 0, sizeof(j->watch));
    memset(&j->oembed, 0, sizeof(j->oembed));

    if (out == YTC_OUT_TRANSIENT && j->attempts < L->cfg->max_attempts) {
        long d;
        if (L->stopping) {
            /* not finished: its offset stays uncommitted, so it comes back */
            ytc_log(YTC_LOG_INFO, YTC_LOGNO(00418) "video %s abandoned at "
                    "shutdown (%s)", j->video_id, reason);
            job_free(L, j);
            return;
        }
        d = backoff_ms(L, j, retry_after);
        ytc_log(YTC_LOG_INFO, YTC_LOGNO(00419) "video %s: attempt %d/%d "
                "failed: %s; retry in %ld ms", j->video_id, j->attempts,
                L->cfg->max_attempts, reason, d);
        snprintf(j->last_error, sizeof(j->last_error), "%s", reason);
        j->due = apr_time_now() + (apr_time_t)d * 1000;
        j->next = L->backoff;
        L->backoff = j;
        return;
    }
    job_emit(L, j, out, result, reason);
    {
        ytc_msg *m = j->msg;
        job_free(L, j);
        msg_release(m);
    }
}

static void on_watch(void *baton, ytc_http_answer *a)
{
    ytc_job *j = baton;

    j->watch = *a;
    if (--j->transfers == 0) {
        attempt_done(j->loop, j);
    }
}

static void on_oembed(void *baton, ytc_http_answer *a)
{
    ytc_job *j = baton;

    j->oembed = *a;
    if (--j->transfers == 0) {
        attempt_done(j->loop, j);
    }
}

static void job_start(ytc_loop *L, ytc_job *j)
{
    char canon[64], url[1024];
    char *enc;

    ytk_canonical_url(j->video_id, canon, sizeof(canon));
    enc = curl_easy_escape(NULL, canon, 0);
    L->running++;
    j->transfers = 2;
    memset(&j->watch, 0, sizeof(j->watch));
    memset(&j->oembed, 0, sizeof(j->oembed));

    snprintf(url, sizeof(url), "%s/watch?v=%s", L->cfg->youtube_url,
             j->video_id);
    if (ytc_fetch_start(L->fetch, url, 1, on_watch, j) != 0) {
        j->watch.retry_after = -1;
        snprintf(j->watch.error, sizeof(j->watch.error), "cannot start");
        j->transfers--;
    }
    snprintf(url, sizeof(url), "%s/oembed?url=%s&format=json",
             L->cfg->youtube_url, enc ? enc : "");
    curl_free(enc);
    if (ytc_fetch_start(L->fetch, url, 0, on_oembed, j) != 0) {
        j->oembed.retry_after = -1;
        snprintf(j->oembed.error, sizeof(j->oembed.error), "cannot start");
        j->transfers--;
    }
    if (j->transfers == 0) {
        attempt_done(L, j);
    }
}

/* ---- intake -------------------------------------------------------------- */

static void handle_message(ytc_loop *L, rd_kafka_message_t *rkm)
{
    ytk_links links;
    ytk_links_rc lrc;
    ytc_part *part;
    ytc_msg *m;
    const char *topic;
    char seen[YTC_MAX_LINKS][YTK_VIDEO_ID_LEN + 1];
    int nseen = 0;
    size_t i;

    if (rkm->err) {
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (rkm->rkt && (part = part_find(L, rd_kafka_topic_name(rkm->rkt),
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
    part = part_find(L, topic, rkm->partition);
    if (!part) {
        /* not in our bookkeeping (should not happen): track it anyway */
        part = part_get(L, topic, rkm->partition);
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
    m->loop = L;
    m->part = part;
    m->offset = rkm->offset;
    if (rkm->key) {
        m->key = malloc(rkm->key_len + 1);
        memcpy(m->key, rkm->key, rkm->key_len);
        m->key[rkm->key_len] = '\0';
        m->key_len = rkm->key_len;
    }
    if (rkm->payload) {
        m->value = malloc(rkm->len + 1);
        memcpy(m->value, rkm->payload, rkm->len);
        m->value[rkm->len] = '\0';
        m->value_len = rkm->len;
    }
    m->pending = 1;     /* held by this function */
    if (part->tail) {
        part->tail->next = m;
    }
    else {
        part->head = m;
    }
    part->tail = m;
    L->msgs++;

    memset(&links, 0, sizeof(links));
    lrc = m->value ? ytk_links_from_value(m->value, m->value_len,
                                          YTC_MAX_LINKS, &links)
                   : YTK_LINKS_EMPTY;
    if (lrc != YTK_LINKS_OK) {
        if (!L->cfg->no_fetch) {
            dead_letter(L, m, ytk_links_code(lrc), ytk_links_strerror(lrc),
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
                char why[320];
                snprintf(why, sizeof(why), "%s: %.200s",
                         ytk_url_strerror(urc), links.items[i]);
                dead_letter(L, m, ytk_url_code(urc), why, NULL, 0);
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
            job_enqueue(L, job_new(L, m, id));
        }
    }

leave:
    ytk_links_free(&links);
    msg_release(m);
}

/* ---- set-up and the loop ------------------------------------------------- */

static int conf_set(rd_kafka_conf_t *conf, const char *name,
                    const char *value, const char *origin)
{
    char err[512];

    if (rd_kafka_conf_set(conf, name, value, err, sizeof(err))
        != RD_KAFKA_CONF_OK) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00421) "%s: %s=%s: %s", origin, name,
                value, err);
        return -1;
    }
    return 0;
}

/* consumer-only properties that would make the producer complain */
static int consumer_only(const char *name)
{
    static const char *const prefixes[] = {
        "group.", "enable.auto.", "auto.", "session.timeout",
        "heartbeat.", "partition.assignment", "fetch.", "max.poll",
        "isolation.level", "enable.partition.eof", "queued.", "check.crcs",
        "consume.", "offset.store", "coordinator.", NULL
    };
    int i;

    for (i = 0; prefixes[i]; i++) {
        if (!strncmp(name, prefixes[i], strlen(prefixes[i]))) {
            return 1;
        }
    }
    return 0;
}

static rd_kafka_conf_t *make_conf(ytc_loop *L, int consumer)
{
    const ytc_config *cfg = L->cfg;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int i, bad = 0;

    rd_kafka_conf_set_opaque(conf, L);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    bad |= conf_set(conf, "client.id", "ytkafka-consumer", "default");
    if (cfg->brokers) {
        bad |= conf_set(conf, "bootstrap.servers", cfg->brokers, "-b");
    }
    if (consumer) {
        bad |= conf_set(conf, "group.id", cfg->group, "-G");
        bad |= conf_set(conf, "auto.offset.reset", "earliest", "default");
        /* librdkafka 2.0 stops fetching for about a second once a partition
         * queue holds queued.min.messages; a consumer that does more per
         * message than kcat reaches that during a backlog and stalls.
         * Memory stays capped by queued.max.messages.kbytes (64 MB). */
        bad |= conf_set(conf, "queued.min.messages", "1000000", "default");
        /* A broker holds a Fetch of partitions at their end for up to
         * fetch.wait.max.ms (500 ms by default), and librdkafka 2.0 keeps
         * one Fetch in flight per broker: a partition that becomes
         * fetchable meanwhile (resumed, newly assigned, or just past the
         * ListOffsets of an auto.offset.reset, which queues behind that
         * Fetch on the same connection) waits for it, twice in the reset
         * case. With some partitions drained and others never committed
         * that stalled the pipeline for ~1 s. 100 ms bounds the wait at the
         * cost of 10 instead of 2 empty Fetches a second when idle. */
        bad |= conf_set(conf, "fetch.wait.max.ms", "100", "default");
        if (cfg->exit_eof) {
            bad |= conf_set(conf, "enable.partition.eof", "true", "-e");
        }
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    }
    else {
        bad |= conf_set(conf, "enable.idempotence", "true", "default");
        bad |= conf_set(conf, "linger.ms", "5", "default");
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    }
    for (i = 0; i < cfg->props->nelts; i++) {
        const ytc_prop *p = &APR_ARRAY_IDX(cfg->props, i, ytc_prop);
        if (!consumer && consumer_only(p->name)) {
            continue;
        }
        bad |= conf_set(conf, p->name, p->value, p->origin);
    }
    if (consumer) {
        /* the loop stores offsets itself, in order: never let this change */
        bad |= conf_set(conf, "enable.auto.offset.store", "false", "ytc");
    }
    if (bad) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

int ytc_loop_create(ytc_loop **out, const ytc_config *cfg, apr_pool_t *p)
{
    ytc_loop *L = apr_pcalloc(p, sizeof(*L));
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_conf_t *conf;
    rd_kafka_resp_err_t err;
    char errstr[512];
    int i;

    *out = NULL;
    L->cfg = cfg;
    L->pool = p;
    L->wake[0] = L->wake[1] = -1;
    L->seed = (unsigned int)(apr_time_now() ^ (apr_time_t)getpid());

    if (!cfg->no_fetch) {
        if (ytc_db_open(&L->db, cfg->db, p) != 0) {
            return -1;
        }
        if (!(L->fetch = ytc_fetcher_create(cfg))) {
            ytc_log(YTC_LOG_ERR, YTC_LOGNO(00422) "cannot set up libcurl");
            return -1;
        }
        if (!(conf = make_conf(L, 0))) {
            return -1;
        }
        L->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                   sizeof(errstr));
        if (!L->producer) {
            ytc_log(YTC_LOG_ERR, YTC_LOGNO(00423) "producer: %s", errstr);
            rd_kafka_conf_destroy(conf);
            return -1;
        }
    }
    else if (!(L->fetch = ytc_fetcher_create(cfg))) {
        return -1;
    }

    if (!(conf = make_conf(L, 1))) {
        return -1;
    }
    L->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr,
                               sizeof(errstr));
    if (!L->consumer) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00424) "consumer: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_poll_set_consumer(L->consumer);

    if (pipe(L->wake) != 0) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00425) "pipe: %s", strerror(errno));
        return -1;
    }
    fcntl(L->wake[0], F_SETFL, O_NONBLOCK);
    fcntl(L->wake[1], F_SETFL, O_NONBLOCK);
    L->cq = rd_kafka_queue_get_consumer(L->consumer);
    rd_kafka_queue_io_event_enable(L->cq, L->wake[1], "1", 1);

    topics = rd_kafka_topic_partition_list_new(cfg->topics->nelts);
    for (i = 0; i < cfg->topics->nelts; i++) {
        rd_kafka_topic_partition_list_add(
            topics, APR_ARRAY_IDX(cfg->topics, i, const char *),
            RD_KAFKA_PARTITION_UA);
    }
    err = rd_kafka_subscribe(L->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00426) "subscribe: %s",
                rd_kafka_err2str(err));
        return -1;
    }
    *out = L;
    return 0;
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

static int over_high(const ytc_loop *L)
{
    return L->jobs >= 2 * low_mark(L) || L->msgs >= YTC_MAX_PENDING_MSGS;
}

static int under_low(const ytc_loop *L)
{
    return L->jobs <= low_mark(L) && L->msgs < YTC_MAX_PENDING_MSGS / 2;
}

static int all_at_eof(const ytc_loop *L)
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

static void drain_pipe(int fd)
{
    char buf[256];

    while (read(fd, buf, sizeof(buf)) > 0) {
    }
}

static void teardown(ytc_loop *L)
{
    ytc_part *p;
    ytc_job *j;
    int left;

    /* queued and backing-off jobs were never finished: they come back */
    while (L->all_jobs) {
        j = L->all_jobs;
        job_free(L, j);
    }
    L->ready_head = L->ready_tail = NULL;
    L->backoff = NULL;
    ytc_fetcher_destroy(L->fetch);
    L->fetch = NULL;

    if (L->producer) {
        rd_kafka_flush(L->producer, 5000);
        left = rd_kafka_outq_len(L->producer);
        if (left > 0) {
            ytc_log(YTC_LOG_WARN, YTC_LOGNO(00427) "%d produced message(s) "
                    "not delivered at exit", left);
            rd_kafka_purge(L->producer, RD_KAFKA_PURGE_F_QUEUE
                           | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_poll(L->producer, 0);
        }
    }
    commit_sync(L, "shutdown");
    rd_kafka_queue_destroy(L->cq);
    ytc_log(YTC_LOG_INFO, YTC_LOGNO(00428) "leaving the group");
    rd_kafka_consumer_close(L->consumer);
    rd_kafka_destroy(L->consumer);
    if (L->producer) {
        rd_kafka_destroy(L->producer);
    }
    ytc_db_close(L->db);
    while (L->parts || L->zombies) {
        ytc_part **list = L->parts ? &L->parts : &L->zombies;
        p = *list;
        *list = p->next;
        while (p->head) {
            ytc_msg *m = p->head;
            p->head = m->next;
            msg_free(L, m);
        }
        part_free(p);
    }
    close(L->wake[0]);
    close(L->wake[1]);
}

static int count_reached(const ytc_loop *L)
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

static long hold_left_ms(const ytc_loop *L, apr_time_t now)
{
    long left;

    if (!L->held_since || L->paused) {
        return -1;
    }
    left = YTC_HOLD_MS - (long)((now - L->held_since) / 1000);
    return left > 0 ? left : 0;
}

/* take messages until the queue is empty, the high-water mark is reached
 * or a batch is done; the first poll may wait @a timeout_ms. 1 if more may
 * be waiting. */
static int intake(ytc_loop *L, int timeout_ms)
{
    int n = 0, more = 0;

    if (!L->paused && !count_reached(L)) {
        if (!over_high(L)) {
            L->held_since = 0;
        }
        else {
            apr_time_t now = apr_time_now();
            if (!L->held_since) {
                L->held_since = now;
            }
            if (hold_left_ms(L, now) > 0) {
                return 0;
            }
            /* held too long: pause, and poll for group events */
            set_paused(L, 1);
        }
    }
    for (;;) {
        rd_kafka_message_t *rkm;
        if (count_reached(L)) {
            /* -c: take no more, serve only group events */
            rkm = rd_kafka_consumer_poll(L->consumer, 0);
            if (rkm) {
                ytc_log(YTC_LOG_DEBUG, YTC_LOGNO(00435) "-c reached: "
                        "%s [%" PRId32 "] @%" PRId64 " left for later",
                        rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "-",
                        rkm->partition, rkm->offset);
                rd_kafka_message_destroy(rkm);
                set_paused(L, 1);
            }
            break;
        }
        if (n >= 1000) {
            more = 1;
            break;
        }
        rkm = rd_kafka_consumer_poll(L->consumer, n == 0 ? timeout_ms : 0);
        if (!rkm) {
            break;
        }
        if (!rkm->err) {
            L->consumed++;
        }
        handle_message(L, rkm);
        rd_kafka_message_destroy(rkm);
        n++;
        if (!L->paused && over_high(L)) {
            /* hold (see YTC_HOLD_MS) */
            L->held_since = apr_time_now();
            break;
        }
    }
    if (L->paused && under_low(L) && !count_reached(L)) {
        /* after -c the intake stays paused: a resume would only make
         * librdkafka fetch again what is dropped at the next poll */
        set_paused(L, 0);
        more = 1;
    }
    return more;
}

int ytc_loop_run(ytc_loop *L, volatile sig_atomic_t *stop)
{
    const ytc_config *cfg = L->cfg;

    ytc_log(YTC_LOG_INFO, YTC_LOGNO(00429) "consuming as group %s, "
            "concurrency %d, youtube %s%s", cfg->group, cfg->concurrency,
            cfg->youtube_url, cfg->no_fetch ? " (no fetch)" : "");
    for (;;) {
        apr_time_t now = apr_time_now();
        long timeout = 200;
        int more = 0;
        ytc_job *j, **jp;

        if (*stop && !L->stopping) {
            L->stopping = 1;
            L->deadline = now
                + (apr_time_t)cfg->shutdown_timeout_ms * 1000;
            set_paused(L, 1);
            ytc_log(YTC_LOG_INFO, YTC_LOGNO(00430) "stopping: %d video(s) in "
                    "flight, up to %d ms", L->running,
                    cfg->shutdown_timeout_ms);
        }
        if (L->fatal) {
            break;
        }
        if (L->stopping && (L->running == 0 || now >= L->deadline)) {
            if (L->running) {
                ytc_log(YTC_LOG_WARN, YTC_LOGNO(00431) "abandoning %d "
                        "video(s) in flight", L->running);
            }
            break;
        }

        if (!L->stopping) {
            more = intake(L, 0);
        }

        /* due retries go to the front of the line */
        now = apr_time_now();
        for (jp = &L->backoff; (j = *jp) != NULL;) {
            if (j->due <= now) {
                *jp = j->next;
                j->next = L->ready_head;
                L->ready_head = j;
                if (!L->ready_tail) {
                    L->ready_tail = j;
                }
            }
            else {
                long ms = (long)((j->due - now) / 1000) + 1;
                if (ms < timeout) {
                    timeout = ms;
                }
                jp = &j->next;
            }
        }
        while (!L->stopping && L->ready_head
               && L->running < cfg->concurrency) {
            j = L->ready_head;
            L->ready_head = j->next;
            if (!L->ready_head) {
                L->ready_tail = NULL;
            }
            job_start(L, j);
        }
        if (L->producer) {
            rd_kafka_poll(L->producer, 0);
        }
        flush_offsets(L);

        if (cfg->count > 0 && L->finished >= cfg->count && L->msgs == 0
            && L->jobs == 0) {
            ytc_log(YTC_LOG_INFO, YTC_LOGNO(00432) "%ld message(s) done",
                    L->finished);
            break;
        }
        if (cfg->exit_eof && L->msgs == 0 && L->jobs == 0 && all_at_eof(L)) {
            ytc_log(YTC_LOG_INFO, YTC_LOGNO(00433) "all partitions at end, "
                    "%ld message(s) done", L->finished);
            break;
        }
        if (more) {
            timeout = 0;
        }
        {
            long hold = hold_left_ms(L, apr_time_now());
            if (hold >= 0 && hold < timeout) {
                timeout = hold;
            }
        }
        drain_pipe(L->wake[0]);
        if (!L->stopping && !L->ready_head && ytc_fetcher_active(L->fetch) == 0
            && !count_reached(L) && hold_left_ms(L, apr_time_now()) < 0) {
            /* nothing on the wire: wait in librdkafka, which hands over a
             * message the moment it arrives */
            intake(L, (int)timeout);
        }
        else {
            ytc_fetcher_run(L->fetch, (int)timeout, L->wake[0]);
        }
    }
    teardown(L);
    ytc_log(YTC_LOG_INFO, YTC_LOGNO(00434) "stopped after %ld message(s)",
            L->finished);
    return L->fatal ? 1 : 0;
}
