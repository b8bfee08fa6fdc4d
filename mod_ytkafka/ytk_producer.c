/* mod_ytkafka: the per-child producer and its poller thread. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <apr_strings.h>
#include <apr_hash.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include "ytk_private.h"
#include "ytk_config.h"
#include "ytk_producer.h"
#include "ytk_status.h"

/* How often the poller wakes without events, and probes brokers when
 * librdkafka said all are down. */
#define YTK_POLL_MS        100
#define YTK_PROBE_INTERVAL apr_time_from_msec(1000)
#define YTK_PROBE_MS       1000
/* Least time between two attempts to create a failed producer. */
#define YTK_RETRY_INTERVAL apr_time_from_sec(1)

#define YTK_LOAD(x)     __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define YTK_STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

/* One librdkafka instance and its poller thread. A producer has one
 * current instance. One that failed fatally is retired, not destroyed: its
 * poller keeps serving the delivery reports of the messages it still holds
 * (their requests wait for them), and request threads that loaded it a
 * moment ago may still call it, so it lives until the child exits. */
typedef struct ytk_inst {
    struct ytk_producer *p;
    apr_pool_t *pool;           /* its own root pool */
    rd_kafka_t *rk;
    pthread_t poller;
    int running;
    int fatal;                  /* librdkafka said it failed fatally */
    pthread_rwlock_t topics_lock;
    apr_hash_t *topics;         /* name -> rd_kafka_topic_t* */
    struct ytk_inst *retired_next;
} ytk_inst;

/* At most this many instances replaced after fatal errors per child. */
#define YTK_MAX_RETIRED 8

struct ytk_producer {
    server_rec *s;
    const ytk_srv_conf *sc;
    apr_pool_t *pool;
    ytk_inst *cur;              /* NULL until an instance runs; replaced
                                   only after a fatal error */
    ytk_inst *retired;          /* under create_mu */
    int nretired;
    int mock;                   /* on librdkafka's mock cluster (tests) */
    pthread_mutex_t create_mu;
    apr_time_t last_attempt;
    int down;                   /* all brokers down, per librdkafka */
    apr_time_t last_probe;
    long qdepth;                /* last value given to the status gauges */
    int gauge_down;
};

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
    ytk_producer_t *p = ((ytk_inst *)opaque)->p;

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
    ytk_producer_t *p = in->p;

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
    ytk_producer_t *p = in ? in->p : NULL;

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

static void update_gauges(ytk_producer_t *p, ytk_inst *in, int final)
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
static void probe_brokers(ytk_producer_t *p, rd_kafka_t *rk)
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
    ytk_producer_t *p = in->p;

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
        update_gauges(p, in, 0);
    }
    return NULL;
}

/* ---- lifecycle --------------------------------------------------------- */

/* A new instance with its poller running, not yet seen by other threads:
 * a failure destroys only what nobody else has seen. */
static ytk_inst *inst_start(ytk_producer_t *p)
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

/* Create an instance and publish it; one that failed fatally is retired.
 * Called in child_init, then only under create_mu. */
static void producer_start(ytk_producer_t *p)
{
    ytk_inst *old = p->cur;
    ytk_inst *in;

    p->last_attempt = apr_time_now();
    if (!(in = inst_start(p))) {
        return;
    }
    if (old) {
        old->retired_next = p->retired;
        p->retired = old;
        p->nretired++;
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, p->s,
                     YTK_LOGNO(00501) "Kafka producer %s replaces %s, which "
                     "failed fatally; %d message(s) still held by the old "
                     "one will get their reports", rd_kafka_name(in->rk),
                     rd_kafka_name(old->rk), rd_kafka_outq_len(old->rk));
    }
    else {
        ytk_status_gauges(0, 1, 0);
    }
    YTK_STORE(p->cur, in);
}

/* Stop the poller, flush until @a deadline, purge what is left, destroy. */
static void inst_stop(ytk_producer_t *p, ytk_inst *in, apr_time_t deadline,
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

static apr_status_t producer_cleanup(void *data)
{
    ytk_producer_t *p = data;
    apr_interval_time_t timeout = ytk_conf_flush_timeout(p->sc);
    apr_time_t deadline = apr_time_now() + timeout;
    ytk_inst *in = p->cur, *next;

    if (!in) {
        return APR_SUCCESS;
    }
    YTK_STORE(p->cur, NULL);
    update_gauges(p, in, 1);
    ytk_status_gauges(0, -1, 0);
    inst_stop(p, in, deadline, timeout);
    for (in = p->retired; in; in = next) {
        next = in->retired_next;
        inst_stop(p, in, deadline, timeout);
    }
    p->retired = NULL;
    return APR_SUCCESS;
}

static int uses_mock_cluster(const ytk_srv_conf *sc)
{
    int i;

    for (i = 0; sc->props && i < sc->props->nelts; ++i) {
        const ytk_property *pr = &APR_ARRAY_IDX(sc->props, i, ytk_property);

        if (!strcmp(pr->name, "test.mock.num.brokers")) {
            return 1;
        }
    }
    return 0;
}

static ytk_producer_t *producer_create(apr_pool_t *pchild, server_rec *s,
                                       const ytk_srv_conf *sc)
{
    apr_pool_t *pool;
    ytk_producer_t *p;

    apr_pool_create(&pool, pchild);
    apr_pool_tag(pool, "ytk_producer");
    p = apr_pcalloc(pool, sizeof(*p));
    p->s = s;
    p->sc = sc;
    p->pool = pool;
    p->mock = uses_mock_cluster(sc);
    pthread_mutex_init(&p->create_mu, NULL);
    apr_pool_cleanup_register(pool, p, producer_cleanup,
                              apr_pool_cleanup_null);
    producer_start(p);
    return p;
}

void ytk_producer_child_init(apr_pool_t *pchild, server_rec *s)
{
    ytk_srv_conf *main_sc = ytk_srv_conf_get(s);
    server_rec *sv;

    for (sv = s; sv; sv = sv->next) {
        ytk_srv_conf *sc = ytk_srv_conf_get(sv);

        if (!sc->brokers) {
            continue;
        }
        if (sv == s || sc->own_producer || !main_sc->producer) {
            sc->producer = producer_create(pchild, sv, sc);
        }
        else {
            sc->producer = main_sc->producer;
        }
    }
}

ytk_producer_t *ytk_producer_for(server_rec *s)
{
    return ytk_srv_conf_get(s)->producer;
}

/* The current instance. mod_dbd's way: if creation failed in child_init,
 * or the instance failed fatally, make a new one under a mutex, at most
 * once a second. */
static ytk_inst *producer_inst(ytk_producer_t *p)
{
    ytk_inst *in = YTK_LOAD(p->cur);

    if (in && !YTK_LOAD(in->fatal)) {
        return in;
    }
    pthread_mutex_lock(&p->create_mu);
    in = p->cur;
    if ((!in || YTK_LOAD(in->fatal))
        && apr_time_now() - p->last_attempt >= YTK_RETRY_INTERVAL) {
        if (in && p->nretired >= YTK_MAX_RETIRED) {
            if (p->nretired++ == YTK_MAX_RETIRED) {
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, p->s,
                             YTK_LOGNO(00502) "Kafka producer failed fatally "
                             "%d times in this process: not replacing it "
                             "again, answering 503 until the process exits",
                             YTK_MAX_RETIRED + 1);
            }
        }
        else {
            producer_start(p);
            in = p->cur;
        }
    }
    pthread_mutex_unlock(&p->create_mu);
    return in;
}

int ytk_producer_unavailable(ytk_producer_t *p, const ytk_err_map **map)
{
    ytk_inst *in = p ? producer_inst(p) : NULL;

    if (!in) {
        *map = ytk_err_map_no_producer();
        return 1;
    }
    if (YTK_LOAD(in->fatal)) {
        *map = ytk_err_map_get(RD_KAFKA_RESP_ERR__FATAL);
        return 1;
    }
    if (YTK_LOAD(p->down)) {
        *map = ytk_err_map_get(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN);
        return 1;
    }
    return 0;
}

int ytk_producer_test_fatal(ytk_producer_t *p)
{
    ytk_inst *in = p && p->mock ? producer_inst(p) : NULL;

    if (!in) {
        return 0;
    }
    rd_kafka_test_fatal_error(in->rk,
                              RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                              "provoked by X-YtKafka-Test-Fatal");
    return 1;
}

static rd_kafka_topic_t *inst_topic(ytk_inst *in, const char *name)
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

rd_kafka_resp_err_t ytk_producer_send(ytk_producer_t *p, const char *topic,
                                      const char *key, size_t key_len,
                                      char *value, size_t value_len,
                                      const char *request_id,
                                      ytk_waiter_t *w, int idx)
{
    return ytk_producer_send_hdrs(p, topic, key, key_len, value, value_len,
                                  request_id, NULL, 0, w, idx);
}

rd_kafka_resp_err_t ytk_producer_send_hdrs(ytk_producer_t *p,
                                           const char *topic,
                                           const char *key, size_t key_len,
                                           char *value, size_t value_len,
                                           const char *request_id,
                                           const ytk_hdr_kv *extra,
                                           int n_extra,
                                           ytk_waiter_t *w, int idx)
{
    ytk_inst *in = producer_inst(p);
    rd_kafka_topic_t *rkt;
    rd_kafka_resp_err_t err;
    ytk_wslot_t *slot;

    if (!in) {
        free(value);
        return RD_KAFKA_RESP_ERR__STATE;
    }
    if (!(rkt = inst_topic(in, topic))) {
        free(value);
        return rd_kafka_last_error();
    }
    slot = ytk_waiter_arm(w, idx);
    if (n_extra == 0) {
        err = rd_kafka_producev(
            in->rk,
            RD_KAFKA_V_RKT(rkt),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
            RD_KAFKA_V_KEY(key, key_len),
            RD_KAFKA_V_VALUE(value, value_len),
            RD_KAFKA_V_HEADER("request-id", request_id, -1),
            RD_KAFKA_V_HEADER("content-type", "application/json", -1),
            RD_KAFKA_V_OPAQUE(slot),
            RD_KAFKA_V_END);
    }
    else {
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new((size_t)n_extra + 2);
        int i;

        rd_kafka_header_add(hdrs, "request-id", -1, request_id, -1);
        rd_kafka_header_add(hdrs, "content-type", -1, "application/json",
                            -1);
        for (i = 0; i < n_extra; ++i) {
            rd_kafka_header_add(hdrs, extra[i].name, -1, extra[i].value,
                                (ssize_t)extra[i].len);
        }
        err = rd_kafka_producev(
            in->rk,
            RD_KAFKA_V_RKT(rkt),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
            RD_KAFKA_V_KEY(key, key_len),
            RD_KAFKA_V_VALUE(value, value_len),
            RD_KAFKA_V_HEADERS(hdrs),
            RD_KAFKA_V_OPAQUE(slot),
            RD_KAFKA_V_END);
        if (err) {
            /* Owned by librdkafka only when it took the message. */
            rd_kafka_headers_destroy(hdrs);
        }
    }
    if (err) {
        /* librdkafka did not take the value, nor will it report. */
        free(value);
        ytk_status_failed(ytk_err_map_get(err)->fail);
        ytk_waiter_report(slot, err, -1, -1);
        return err;
    }
    ytk_status_produced();
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}
