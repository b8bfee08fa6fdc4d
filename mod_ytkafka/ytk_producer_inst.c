/* mod_ytkafka: one librdkafka instance of a producer, its callbacks and
 * its poller thread. */
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_hash.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include "ytk_private.h"
#include "ytk_config.h"
#include "ytk_producer_inst.h"
#include "ytk_errors.h"
#include "ytk_status.h"
#include "ytk_waiter.h"

/* How often the poller wakes without events, and probes brokers when
 * librdkafka said all are down. */
#define YTK_POLL_MS        100
#define YTK_PROBE_INTERVAL apr_time_from_msec(1000)
#define YTK_PROBE_MS       1000

/* ---- librdkafka callbacks (librdkafka's threads and the poller) ------- */

/* The request-id header every message carries, for log lines, copied
 * (bounded) into @a buf. */
static const char *message_request_id(const rd_kafka_message_t *m,
                                      char *buf, size_t size)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *val = NULL;
    size_t len = 0;

    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR
        || rd_kafka_header_get_last(hdrs, "request-id", &val, &len)
           != RD_KAFKA_RESP_ERR_NO_ERROR
        || !val) {
        return "(unknown)";
    }
    apr_snprintf(buf, size, "%.*s", (int)(len < size ? len : size - 1),
                 (const char *)val);
    return buf;
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                      void *opaque)
{
    struct ytk_producer *p = ((ytk_inst *)opaque)->p;

    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ytk_status_delivered();
        if (YTK_LOAD(p->down)) {
            YTK_STORE(p->down, 0);
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, p->s,
                         YTK_LOGNO(00201) "Kafka brokers %s reachable again "
                         "(a message was delivered)", p->sc->brokers);
        }
    }
    else if (m->_private) {
        /* The request waits for this report and answers for it. */
        const ytk_err_map *map = ytk_err_map_get(m->err);

        ytk_status_failed(map->fail);
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, p->s,
                     YTK_LOGNO(00202) "delivery to %s [%d] failed: %s",
                     rd_kafka_topic_name(m->rkt), (int)m->partition,
                     rd_kafka_err2str(m->err));
    }
    else {
        /* Answered 202 (queued) and now lost: nobody else will say it. */
        const ytk_err_map *map = ytk_err_map_get(m->err);
        char rid[128];

        ytk_status_failed(map->fail);
        ytk_status_lost_after_queued();
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, p->s,
                     YTK_LOGNO(00500) "request %s: message answered 202 "
                     "(queued) was not delivered to %s: %s (%s)",
                     message_request_id(m, rid, sizeof(rid)),
                     rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err),
                     map->code);
    }
    if (m->_private) {
        ytk_waiter_report(m->_private, m->err, m->partition, m->offset);
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque)
{
    ytk_inst *in = opaque;
    struct ytk_producer *p = in->p;

    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        if (!YTK_LOAD(p->down)) {
            p->last_probe = apr_time_now();
            YTK_STORE(p->down, 1);
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, p->s,
                         YTK_LOGNO(00203) "all Kafka brokers are down (%s): "
                         "answering 503 until one is reachable", reason);
        }
    }
    else if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_resp_err_t orig;

        orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
        YTK_STORE(in->fatal, 1);
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, p->s,
                     YTK_LOGNO(00204) "Kafka producer failed fatally: %s: %s",
                     rd_kafka_err2name(orig), buf);
    }
    else {
        /* Connection failures reach log_cb too; do not say them twice. */
        int level = (err == RD_KAFKA_RESP_ERR__TRANSPORT
                     || err == RD_KAFKA_RESP_ERR__RESOLVE)
                    ? APLOG_DEBUG : APLOG_WARNING;

        ap_log_error(APLOG_MARK, level, 0, p->s,
                     YTK_LOGNO(00205) "Kafka: %s: %s",
                     rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
    }
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
    ytk_inst *in = rd_kafka_opaque(rk);
    struct ytk_producer *p = in ? in->p : NULL;

    /* syslog and APLOG levels share their numbers. */
    if (level < APLOG_EMERG) {
        level = APLOG_EMERG;
    }
    else if (level > APLOG_DEBUG) {
        level = APLOG_DEBUG;
    }
    ap_log_error(APLOG_MARK, level, 0, p ? p->s : NULL,
                 YTK_LOGNO(00206) "librdkafka %s: %s: %s", rd_kafka_name(rk),
                 fac, buf);
}

/* ---- the poller thread --------------------------------------------------- */

void ytk_inst_gauges(struct ytk_producer *p, ytk_inst *in, int final)
{
    long q = final ? 0 : (long)rd_kafka_outq_len(in->rk);
    int down = final ? 0 : (YTK_LOAD(p->down) || YTK_LOAD(in->fatal));

    if (q != p->qdepth || down != p->gauge_down) {
        ytk_status_gauges(q - p->qdepth, 0, down - p->gauge_down);
        p->qdepth = q;
        p->gauge_down = down;
    }
}

/* librdkafka connects sparsely: while it says every broker is down and we
 * refuse messages, nothing would make it try again. A metadata request
 * does, and its answer is proof that a broker is back. */
static void probe_brokers(struct ytk_producer *p, rd_kafka_t *rk)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t err;

    p->last_probe = apr_time_now();
    err = rd_kafka_metadata(rk, 0, NULL, &md, YTK_PROBE_MS);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_metadata_destroy(md);
        if (YTK_LOAD(p->down)) {
            YTK_STORE(p->down, 0);
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, p->s,
                         YTK_LOGNO(00207) "Kafka brokers %s reachable again",
                         p->sc->brokers);
        }
    }
}

static void *poller_main(void *data)
{
    ytk_inst *in = data;
    struct ytk_producer *p = in->p;

    while (YTK_LOAD(in->running)) {
        rd_kafka_poll(in->rk, YTK_POLL_MS);
        /* A retired instance only serves its reports. */
        if (in != YTK_LOAD(p->cur)) {
            continue;
        }
        if (YTK_LOAD(p->down)
            && apr_time_now() - p->last_probe >= YTK_PROBE_INTERVAL) {
            probe_brokers(p, in->rk);
        }
        ytk_inst_gauges(p, in, 0);
    }
    return NULL;
}

/* ---- start and stop ---------------------------------------------------- */

ytk_inst *ytk_inst_start(struct ytk_producer *p)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    sigset_t all, old;
    apr_pool_t *pool = NULL;
    const char *msg;
    ytk_inst *in;
    char errstr[512];
    int rc;

    /* A root pool of its own: p->pool is not ours alone once requests
     * run, and instances are made while they do. */
    apr_pool_create(&pool, NULL);
    apr_pool_tag(pool, "ytk_producer_instance");
    in = apr_pcalloc(pool, sizeof(*in));
    in->p = p;
    in->pool = pool;
    in->topics = apr_hash_make(pool);
    if ((msg = ytk_conf_apply(pool, p->sc, conf, 1))) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, p->s,
                     YTK_LOGNO(00208) "cannot configure the Kafka producer: "
                     "%s", msg);
        rd_kafka_conf_destroy(conf);
        apr_pool_destroy(pool);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, in);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);

    in->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!in->rk) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, p->s,
                     YTK_LOGNO(00209) "cannot create the Kafka producer: %s",
                     errstr);
        rd_kafka_conf_destroy(conf);
        apr_pool_destroy(pool);
        return NULL;
    }
    pthread_rwlock_init(&in->topics_lock, NULL);
    YTK_STORE(in->running, 1);
    /* Signals belong to httpd's threads, not to ours. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&in->poller, NULL, poller_main, in);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rc, p->s,
                     YTK_LOGNO(00210) "cannot start the delivery report "
                     "thread");
        rd_kafka_destroy(in->rk);
        pthread_rwlock_destroy(&in->topics_lock);
        apr_pool_destroy(pool);
        return NULL;
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, p->s,
                 YTK_LOGNO(00211) "Kafka producer %s started for %s",
                 rd_kafka_name(in->rk), p->sc->brokers);
    return in;
}

void ytk_inst_stop(struct ytk_producer *p, ytk_inst *in, apr_time_t deadline,
                   apr_interval_time_t timeout)
{
    apr_interval_time_t left = deadline - apr_time_now();
    apr_hash_index_t *hi;
    int n;

    YTK_STORE(in->running, 0);
    pthread_join(in->poller, NULL);
    /* Bounded: never wait longer than YtKafkaFlushTimeout at exit. */
    rd_kafka_flush(in->rk, left > 0 ? (int)apr_time_as_msec(left) : 0);
    n = rd_kafka_outq_len(in->rk);
    if (n > 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, p->s,
                     YTK_LOGNO(00212) "%d message(s) to %s not delivered "
                     "within YtKafkaFlushTimeout (%" APR_TIME_T_FMT " ms), "
                     "purging them", n, p->sc->brokers,
                     apr_time_as_msec(timeout));
        rd_kafka_purge(in->rk,
                       RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(in->rk, 0);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, p->s,
                     YTK_LOGNO(00213) "Kafka producer %s flushed",
                     rd_kafka_name(in->rk));
    }
    for (hi = apr_hash_first(NULL, in->topics); hi; hi = apr_hash_next(hi)) {
        void *rkt;

        apr_hash_this(hi, NULL, NULL, &rkt);
        rd_kafka_topic_destroy(rkt);
    }
    rd_kafka_destroy(in->rk);
    pthread_rwlock_destroy(&in->topics_lock);
    apr_pool_destroy(in->pool);
}

rd_kafka_topic_t *ytk_inst_topic(ytk_inst *in, const char *name)
{
    rd_kafka_topic_t *rkt;

    pthread_rwlock_rdlock(&in->topics_lock);
    rkt = apr_hash_get(in->topics, name, APR_HASH_KEY_STRING);
    pthread_rwlock_unlock(&in->topics_lock);
    if (rkt) {
        return rkt;
    }
    pthread_rwlock_wrlock(&in->topics_lock);
    rkt = apr_hash_get(in->topics, name, APR_HASH_KEY_STRING);
    if (!rkt) {
        rkt = rd_kafka_topic_new(in->rk, name, NULL);
        if (rkt) {
            apr_hash_set(in->topics, apr_pstrdup(in->pool, name),
                         APR_HASH_KEY_STRING, rkt);
        }
    }
    pthread_rwlock_unlock(&in->topics_lock);
    return rkt;
}
