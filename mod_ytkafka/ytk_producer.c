/* mod_ytkafka: the per-child producer, its poller thread and the waiters. */
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

struct ytk_producer {
    server_rec *s;
    const ytk_srv_conf *sc;
    apr_pool_t *pool;
    rd_kafka_t *rk;             /* NULL until created; then fixed */
    pthread_mutex_t create_mu;
    apr_time_t last_attempt;
    pthread_t poller;
    int poller_started;
    int running;
    int down;                   /* all brokers down, per librdkafka */
    int fatal;
    apr_time_t last_probe;
    long qdepth;                /* last value given to the status gauges */
    int gauge_down;
    pthread_rwlock_t topics_lock;
    apr_hash_t *topics;         /* name -> rd_kafka_topic_t* */
};

typedef struct {
    ytk_waiter_t *w;
    ytk_delivery d;
} ytk_wslot;

struct ytk_waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    int pending;
    int n;
    ytk_wslot slots[];
};

/* ---- the one error mapper ---------------------------------------------- */

static const ytk_err_map map_ok = {
    201, YTK_FAIL_NONE, "ok", "delivered", 0 };
static const ytk_err_map map_queue_full = {
    503, YTK_FAIL_QUEUE_FULL, "queue_full",
    "the producer queue is full, retry later", 1 };
static const ytk_err_map map_down = {
    503, YTK_FAIL_BROKERS_DOWN, "brokers_down",
    "no Kafka broker is reachable, retry later", 5 };
static const ytk_err_map map_timeout = {
    504, YTK_FAIL_TIMED_OUT, "timed_out",
    "Kafka did not acknowledge the message in time, outcome unknown", 0 };
static const ytk_err_map map_too_large = {
    413, YTK_FAIL_TOO_LARGE, "message_too_large",
    "the message is larger than Kafka accepts", 0 };
static const ytk_err_map map_unknown_topic = {
    503, YTK_FAIL_UNKNOWN_TOPIC, "unknown_topic",
    "the Kafka topic does not exist or has no leader", 5 };
static const ytk_err_map map_not_authorized = {
    500, YTK_FAIL_NOT_AUTHORIZED, "not_authorized",
    "Kafka refused the producer access to the topic", 0 };
static const ytk_err_map map_purged = {
    503, YTK_FAIL_PURGED, "purged",
    "the message was purged at shutdown", 1 };
static const ytk_err_map map_fatal = {
    503, YTK_FAIL_FATAL, "producer_failed",
    "the Kafka producer of this server process failed", 5 };
static const ytk_err_map map_shutdown = {
    503, YTK_FAIL_SHUTDOWN, "shutting_down",
    "the server process is shutting down", 1 };
static const ytk_err_map map_kafka = {
    503, YTK_FAIL_KAFKA, "kafka_error", "Kafka refused the message", 1 };
static const ytk_err_map map_no_producer = {
    503, YTK_FAIL_NOT_CONFIGURED, "no_producer",
    "no Kafka producer is available in this server process", 5 };

const ytk_err_map *ytk_err_map_get(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return &map_ok;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return &map_queue_full;
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
        return &map_down;
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        return &map_timeout;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        return &map_too_large;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return &map_unknown_topic;
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
        return &map_not_authorized;
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
        return &map_purged;
    case RD_KAFKA_RESP_ERR__FATAL:
        return &map_fatal;
    case RD_KAFKA_RESP_ERR__DESTROY:
        return &map_shutdown;
    default:
        return &map_kafka;
    }
}

const char *ytk_fail_code(ytk_fail_class c)
{
    static const char *const codes[YTK_FAIL__COUNT] = {
        "none", "queue_full", "brokers_down", "timed_out",
        "message_too_large", "unknown_topic", "not_authorized", "purged",
        "producer_failed", "shutting_down", "no_producer", "kafka_error",
    };

    return (c >= 0 && c < YTK_FAIL__COUNT) ? codes[c] : "unknown";
}

/* ---- waiters ----------------------------------------------------------- */

ytk_waiter_t *ytk_waiter_create(int n)
{
    ytk_waiter_t *w = calloc(1, sizeof(*w) + (size_t)n * sizeof(ytk_wslot));
    pthread_condattr_t attr;
    int i;

    if (!w) {
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &attr);
    pthread_condattr_destroy(&attr);
    w->refs = 1;
    w->n = n;
    for (i = 0; i < n; ++i) {
        w->slots[i].w = w;
    }
    return w;
}

void ytk_waiter_release(ytk_waiter_t *w)
{
    int last;

    if (!w) {
        return;
    }
    pthread_mutex_lock(&w->mu);
    last = (--w->refs == 0);
    pthread_mutex_unlock(&w->mu);
    if (last) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
    }
}

static void waiter_report(ytk_wslot *slot, const rd_kafka_message_t *m)
{
    ytk_waiter_t *w = slot->w;

    pthread_mutex_lock(&w->mu);
    slot->d.done = 1;
    slot->d.err = m->err;
    slot->d.partition = m->partition;
    slot->d.offset = m->offset;
    if (--w->pending == 0) {
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    ytk_waiter_release(w);
}

int ytk_waiter_wait(ytk_waiter_t *w, apr_time_t deadline, ytk_delivery *out)
{
    apr_interval_time_t left = deadline - apr_time_now();
    struct timespec ts;
    int i, pending;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (left > 0) {
        ts.tv_sec += (time_t)apr_time_sec(left);
        ts.tv_nsec += (long)apr_time_usec(left) * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec += 1;
            ts.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&w->mu);
    while (w->pending > 0 && left > 0) {
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT) {
            break;
        }
    }
    pending = w->pending;
    for (i = 0; i < w->n; ++i) {
        out[i] = w->slots[i].d;
    }
    pthread_mutex_unlock(&w->mu);
    return pending;
}

/* ---- librdkafka callbacks (librdkafka's threads and the poller) ------- */

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                      void *opaque)
{
    ytk_producer_t *p = opaque;

    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ytk_status_delivered();
        if (YTK_LOAD(p->down)) {
            YTK_STORE(p->down, 0);
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, p->s,
                         YTK_LOGNO(00201) "Kafka brokers %s reachable again "
                         "(a message was delivered)", p->sc->brokers);
        }
    }
    else {
        const ytk_err_map *map = ytk_err_map_get(m->err);

        ytk_status_failed(map->fail);
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, p->s,
                     YTK_LOGNO(00202) "delivery to %s [%d] failed: %s",
                     rd_kafka_topic_name(m->rkt), (int)m->partition,
                     rd_kafka_err2str(m->err));
    }
    if (m->_private) {
        waiter_report(m->_private, m);
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque)
{
    ytk_producer_t *p = opaque;

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
        YTK_STORE(p->fatal, 1);
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
    ytk_producer_t *p = rd_kafka_opaque(rk);

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

static void update_gauges(ytk_producer_t *p, int final)
{
    long q = final ? 0 : (long)rd_kafka_outq_len(p->rk);
    int down = final ? 0 : (YTK_LOAD(p->down) || YTK_LOAD(p->fatal));

    if (q != p->qdepth || down != p->gauge_down) {
        ytk_status_gauges(q - p->qdepth, 0, down - p->gauge_down);
        p->qdepth = q;
        p->gauge_down = down;
    }
}

/* librdkafka connects sparsely: while it says every broker is down and we
 * refuse messages, nothing would make it try again. A metadata request
 * does, and its answer is proof that a broker is back. */
static void probe_brokers(ytk_producer_t *p)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t err;

    p->last_probe = apr_time_now();
    err = rd_kafka_metadata(p->rk, 0, NULL, &md, YTK_PROBE_MS);
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
    ytk_producer_t *p = data;

    while (YTK_LOAD(p->running)) {
        rd_kafka_poll(p->rk, YTK_POLL_MS);
        if (YTK_LOAD(p->down)
            && apr_time_now() - p->last_probe >= YTK_PROBE_INTERVAL) {
            probe_brokers(p);
        }
        update_gauges(p, 0);
    }
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------ */

static apr_status_t producer_start(ytk_producer_t *p)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    sigset_t all, old;
    apr_pool_t *tmp = NULL;
    const char *msg;
    rd_kafka_t *rk;
    char errstr[512];
    int rc;

    p->last_attempt = apr_time_now();
    /* A pool of its own: p->pool is not ours alone once requests run. */
    apr_pool_create(&tmp, NULL);
    if ((msg = ytk_conf_apply(tmp, p->sc, conf, 1))) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, p->s,
                     YTK_LOGNO(00208) "cannot configure the Kafka producer: "
                     "%s", msg);
        rd_kafka_conf_destroy(conf);
        apr_pool_destroy(tmp);
        return APR_EINVAL;
    }
    apr_pool_destroy(tmp);
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, p->s,
                     YTK_LOGNO(00209) "cannot create the Kafka producer: %s",
                     errstr);
        rd_kafka_conf_destroy(conf);
        return APR_EGENERAL;
    }
    YTK_STORE(p->rk, rk);
    YTK_STORE(p->running, 1);
    /* Signals belong to httpd's threads, not to ours. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&p->poller, NULL, poller_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rc, p->s,
                     YTK_LOGNO(00210) "cannot start the delivery report "
                     "thread");
        YTK_STORE(p->running, 0);
        p->rk = NULL;
        rd_kafka_destroy(rk);
        return rc;
    }
    p->poller_started = 1;
    ytk_status_gauges(0, 1, 0);
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, p->s,
                 YTK_LOGNO(00211) "Kafka producer %s started for %s",
                 rd_kafka_name(rk), p->sc->brokers);
    return APR_SUCCESS;
}

static apr_status_t producer_cleanup(void *data)
{
    ytk_producer_t *p = data;
    apr_interval_time_t timeout = ytk_conf_flush_timeout(p->sc);
    rd_kafka_t *rk = p->rk;
    apr_hash_index_t *hi;
    int left;

    if (!rk) {
        return APR_SUCCESS;
    }
    if (p->poller_started) {
        YTK_STORE(p->running, 0);
        pthread_join(p->poller, NULL);
        p->poller_started = 0;
    }
    /* Bounded: never wait longer than YtKafkaFlushTimeout at exit. */
    rd_kafka_flush(rk, (int)apr_time_as_msec(timeout));
    left = rd_kafka_outq_len(rk);
    if (left > 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, p->s,
                     YTK_LOGNO(00212) "%d message(s) to %s not delivered "
                     "within YtKafkaFlushTimeout (%" APR_TIME_T_FMT " ms), "
                     "purging them", left, p->sc->brokers,
                     apr_time_as_msec(timeout));
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(rk, 0);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, p->s,
                     YTK_LOGNO(00213) "Kafka producer %s flushed",
                     rd_kafka_name(rk));
    }
    for (hi = apr_hash_first(NULL, p->topics); hi; hi = apr_hash_next(hi)) {
        void *rkt;

        apr_hash_this(hi, NULL, NULL, &rkt);
        rd_kafka_topic_destroy(rkt);
    }
    update_gauges(p, 1);
    ytk_status_gauges(0, -1, 0);
    p->rk = NULL;
    rd_kafka_destroy(rk);
    return APR_SUCCESS;
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
    p->topics = apr_hash_make(pool);
    pthread_mutex_init(&p->create_mu, NULL);
    pthread_rwlock_init(&p->topics_lock, NULL);
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

/* mod_dbd's way: if creation failed in child_init, retry under a mutex,
 * at most once a second. */
static rd_kafka_t *producer_rk(ytk_producer_t *p)
{
    rd_kafka_t *rk = YTK_LOAD(p->rk);

    if (rk) {
        return rk;
    }
    pthread_mutex_lock(&p->create_mu);
    if (!p->rk && apr_time_now() - p->last_attempt >= YTK_RETRY_INTERVAL) {
        producer_start(p);
    }
    rk = p->rk;
    pthread_mutex_unlock(&p->create_mu);
    return rk;
}

int ytk_producer_unavailable(ytk_producer_t *p, const ytk_err_map **map)
{
    if (!p || !producer_rk(p)) {
        *map = &map_no_producer;
        return 1;
    }
    if (YTK_LOAD(p->fatal)) {
        *map = &map_fatal;
        return 1;
    }
    if (YTK_LOAD(p->down)) {
        *map = &map_down;
        return 1;
    }
    return 0;
}

static rd_kafka_topic_t *producer_topic(ytk_producer_t *p, const char *name)
{
    rd_kafka_topic_t *rkt;

    pthread_rwlock_rdlock(&p->topics_lock);
    rkt = apr_hash_get(p->topics, name, APR_HASH_KEY_STRING);
    pthread_rwlock_unlock(&p->topics_lock);
    if (rkt) {
        return rkt;
    }
    pthread_rwlock_wrlock(&p->topics_lock);
    rkt = apr_hash_get(p->topics, name, APR_HASH_KEY_STRING);
    if (!rkt) {
        rkt = rd_kafka_topic_new(p->rk, name, NULL);
        if (rkt) {
            apr_hash_set(p->topics, apr_pstrdup(p->pool, name),
                         APR_HASH_KEY_STRING, rkt);
        }
    }
    pthread_rwlock_unlock(&p->topics_lock);
    return rkt;
}

rd_kafka_resp_err_t ytk_producer_send(ytk_producer_t *p, const char *topic,
                                      const char *key, size_t key_len,
                                      char *value, size_t value_len,
                                      const char *request_id,
                                      ytk_waiter_t *w, int idx)
{
    rd_kafka_topic_t *rkt;
    rd_kafka_resp_err_t err;
    ytk_wslot *slot = w ? &w->slots[idx] : NULL;

    if (!producer_rk(p)) {
        free(value);
        return RD_KAFKA_RESP_ERR__STATE;
    }
    if (!(rkt = producer_topic(p, topic))) {
        free(value);
        return rd_kafka_last_error();
    }
    if (slot) {
        pthread_mutex_lock(&w->mu);
        w->refs++;
        w->pending++;
        pthread_mutex_unlock(&w->mu);
    }
    err = rd_kafka_producev(
        p->rk,
        RD_KAFKA_V_RKT(rkt),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
        RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_VALUE(value, value_len),
        RD_KAFKA_V_HEADER("request-id", request_id, -1),
        RD_KAFKA_V_HEADER("content-type", "application/json", -1),
        RD_KAFKA_V_OPAQUE(slot),
        RD_KAFKA_V_END);
    if (err) {
        /* librdkafka did not take the value, nor will it report. */
        free(value);
        ytk_status_failed(ytk_err_map_get(err)->fail);
        if (slot) {
            pthread_mutex_lock(&w->mu);
            w->pending--;
            slot->d.done = 1;
            slot->d.err = err;
            slot->d.partition = -1;
            slot->d.offset = -1;
            w->refs--;
            pthread_mutex_unlock(&w->mu);
        }
        return err;
    }
    ytk_status_produced();
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}
