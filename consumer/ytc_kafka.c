/*
 * The Kafka clients: configuration, log/error/rebalance callbacks,
 * pausing the consumer, produce with delivery accounting.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ytc_log.h"
#include "ytc_loop_int.h"
#include "ytc_metrics.h"

/* pause or resume the consumer's whole assignment (intake flow control;
 * here, below jobs and intake, so that both may call it) */
void ytc_set_paused(ytc_loop *L, int on)
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
    ytc_log(YTC_LOG_DEBUG, YTC_LOGNO(00412) "%s ytc_intake (%ld jobs, %ld msgs)",
            on ? "paused" : "resumed", L->jobs, L->msgs);
}

#define YTC_STR2(x) #x
#define YTC_STR(x) YTC_STR2(x)

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
            if (!ytc_part_find(L, parts->elems[i].topic,
                           parts->elems[i].partition)
                && ytc_part_get(L, parts->elems[i].topic,
                                parts->elems[i].partition)) {
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
            ytc_commit_sync(L, "revoke");
        }
        ytc_revoke_parts(L, parts);
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
        ytc_revoke_parts(L, parts);
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

/* A record on its way, kept until its delivery report says stored: a
 * failed one is produced again later, never dropped, and its message (so
 * its offset) stays held meanwhile. */
struct ytc_prod {
    ytc_msg *m;
    char *topic;
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    rd_kafka_headers_t *hdrs;   /* a copy for the next try */
    long delay_ms;
    apr_time_t due;
    ytc_prod *next;
};

static void prod_free(ytc_prod *r)
{
    if (r->hdrs) {
        rd_kafka_headers_destroy(r->hdrs);
    }
    free(r->topic);
    free(r->key);
    free(r->value);
    free(r);
}

static void prod_later(ytc_loop *L, ytc_prod *r, const char *why)
{
    r->delay_ms = r->delay_ms ? r->delay_ms * 2 : 1000;
    if (r->delay_ms > 30000) {
        r->delay_ms = 30000;
    }
    r->due = apr_time_now() + (apr_time_t)r->delay_ms * 1000;
    r->next = L->prod_retry;
    L->prod_retry = r;
    if (ytc_breaker_failure(&L->kp, r->topic, apr_time_now())) {
        ytc_log(YTC_LOG_WARN, YTC_LOGNO(00503) "outage: records to %s not "
                "stored (%s); holding their messages, intake paused, "
                "retrying", r->topic, why);
        ytc_set_paused(L, 1);
    }
}

/* hand @a r to librdkafka; on a local refusal it waits for a retry */
static void prod_send(ytc_loop *L, ytc_prod *r)
{
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__QUEUE_FULL;
    rd_kafka_headers_t *h = r->hdrs ? rd_kafka_headers_copy(r->hdrs) : NULL;
    int tries;

    for (tries = 0; tries < 50; tries++) {
        err = rd_kafka_producev(L->producer,
                                RD_KAFKA_V_TOPIC(r->topic),
                                RD_KAFKA_V_KEY(r->key, r->key_len),
                                RD_KAFKA_V_VALUE(r->value, r->value_len),
                                RD_KAFKA_V_HEADERS(h),
                                RD_KAFKA_V_OPAQUE(r),
                                RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            break;
        }
        rd_kafka_poll(L->producer, 100);
    }
    if (err) {
        if (h) {
            rd_kafka_headers_destroy(h);
        }
        ytc_log(YTC_LOG_WARN, YTC_LOGNO(00504) "produce to %s refused: %s; "
                "will retry", r->topic, rd_kafka_err2str(err));
        prod_later(L, r, rd_kafka_err2str(err));
        return;
    }
    L->prod_inflight++;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    ytc_prod *r = rkm->_private;
    ytc_loop *L = opaque;

    (void)rk;
    if (!r) {
        return;
    }
    L->prod_inflight--;
    if (rkm->err) {
        ytc_log(L->stopping ? YTC_LOG_INFO : YTC_LOG_WARN,
                YTC_LOGNO(00413) "delivery to %s failed: %s%s",
                r->topic, rd_kafka_err2str(rkm->err),
                L->stopping ? "" : "; will retry");
        /* its message stays unfinished: the offset does not move */
        prod_later(L, r, rd_kafka_err2str(rkm->err));
        return;
    }
    if (ytc_breaker_success(&L->kp)) {
        ytc_log(YTC_LOG_WARN, YTC_LOGNO(00505) "outage over: records to %s "
                "stored again", r->topic);
    }
    {
        ytc_msg *m = r->m;
        L->prod_bytes -= (long)(r->key_len + r->value_len);
        prod_free(r);
        if (m) {
            ytc_msg_release(m);
        }
    }
}

void ytc_produce_retry_due(ytc_loop *L, int all)
{
    ytc_prod *r, **rp, *due = NULL;
    apr_time_t now = apr_time_now();

    for (rp = &L->prod_retry; (r = *rp) != NULL;) {
        if (all || r->due <= now) {
            *rp = r->next;
            r->next = due;
            due = r;
        }
        else {
            rp = &r->next;
        }
    }
    while ((r = due) != NULL) {
        due = r->next;
        prod_send(L, r);
    }
}

long ytc_produce_wait_ms(const ytc_loop *L)
{
    const ytc_prod *r;
    apr_time_t now = apr_time_now(), first = 0;

    for (r = L->prod_retry; r; r = r->next) {
        if (!first || r->due < first) {
            first = r->due;
        }
    }
    if (!first) {
        return -1;
    }
    return first <= now ? 0 : (long)((first - now) / 1000) + 1;
}

void ytc_produce_discard(ytc_loop *L)
{
    ytc_prod *r;

    while ((r = L->prod_retry) != NULL) {
        L->prod_retry = r->next;
        L->prod_bytes -= (long)(r->key_len + r->value_len);
        prod_free(r);
    }
}

/* produce, holding @a m until the record is stored; 0 or -1 */
int ytc_produce(ytc_loop *L, ytc_msg *m, const char *topic,
                const void *key, size_t key_len,
                const char *value, size_t value_len,
                rd_kafka_headers_t *hdrs)
{
    ytc_prod *r;

    if (!L->producer || !(r = calloc(1, sizeof(*r)))) {
        if (hdrs) {
            rd_kafka_headers_destroy(hdrs);
        }
        if (L->producer) {
            /* the record is not kept: its message must not complete */
            ytc_offsets_freeze(L, "a record");
        }
        return -1;
    }
    r->m = m;
    r->hdrs = hdrs;
    r->topic = strdup(topic);
    r->key_len = key_len;
    r->value_len = value_len;
    if (key && (r->key = malloc(key_len + 1))) {
        memcpy(r->key, key, key_len);
    }
    if ((r->value = malloc(value_len + 1))) {
        memcpy(r->value, value, value_len);
    }
    if (!r->topic || (key && !r->key) || !r->value) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00506) "out of memory producing to "
                "%s", topic);
        prod_free(r);
        ytc_offsets_freeze(L, "a record");
        return -1;
    }
    if (m) {
        m->pending++;
    }
    /* librdkafka refers to r's copies (no RD_KAFKA_MSG_F_COPY): counted
     * once, until delivered (YTC_MAX_PRODUCE_BYTES) */
    L->prod_bytes += (long)(r->key_len + r->value_len);
    prod_send(L, r);
    return 0;
}

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

rd_kafka_conf_t *ytc_make_conf(ytc_loop *L, int consumer)
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
        /* What librdkafka prefetches is the largest holder of memory at a
         * backlog (docs/ARCHITECTURE.md 7.11): a queued message costs its
         * value plus ~420 B of librdkafka's own. With the old
         * queued.min.messages=1000000 only the 64 MiB value cap applied: a
         * backlog of 300 000 envelopes of 245 B put the consumer at 204 MB.
         * 20 000 messages of 245 B are ~13 MB, and still 20 s of work at
         * 1 000 videos/s, so with fetching the queue never runs dry before
         * librdkafka's one-second re-check (--no-fetch drains it in ~30 ms:
         * ytc_intake.c wakes the fetcher then). */
        bad |= conf_set(conf, "queued.min.messages",
                        YTC_STR(YTC_QUEUED_MIN_MESSAGES), "default");
        /* Large values are capped by bytes instead: 8 MiB of values
         * (64 MiB by default). fetch.max.bytes follows it (librdkafka sets
         * min(50 MiB, this) unless -X sets it), so one Fetch response can
         * overshoot the cap by at most as much again. */
        bad |= conf_set(conf, "queued.max.messages.kbytes",
                        YTC_STR(YTC_QUEUED_MAX_KBYTES), "default");
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
        if (cfg->metrics) {
            /* partition lag from librdkafka's statistics */
            bad |= conf_set(conf, "statistics.interval.ms", "5000",
                            "--metrics");
            rd_kafka_conf_set_stats_cb(conf, ytc_metrics_stats_cb);
        }
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
