/* mod_ytkafka: the per-child producer: its instances (ytk_producer_inst.c),
 * the replacement of one that failed fatally, and sending. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include "ytk_private.h"
#include "ytk_config.h"
#include "ytk_producer.h"
#include "ytk_producer_inst.h"
#include "ytk_status.h"

/* Least time between two attempts to create a failed producer. */
#define YTK_RETRY_INTERVAL apr_time_from_sec(1)
/* At most this many instances replaced after fatal errors per child. */
#define YTK_MAX_RETIRED 8

/* Create an instance and publish it; one that failed fatally is retired.
 * Called in child_init, then only under create_mu. */
static void producer_start(ytk_producer_t *p)
{
    ytk_inst *old = p->cur;
    ytk_inst *in;

    p->last_attempt = apr_time_now();
    if (!(in = ytk_inst_start(p))) {
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
    ytk_inst_gauges(p, in, 1);
    ytk_status_gauges(0, -1, 0);
    ytk_inst_stop(p, in, deadline, timeout);
    for (in = p->retired; in; in = next) {
        next = in->retired_next;
        ytk_inst_stop(p, in, deadline, timeout);
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
    rd_kafka_headers_t *hdrs;
    ytk_wslot_t *slot;
    int i;

    if (!in) {
        free(value);
        return RD_KAFKA_RESP_ERR__STATE;
    }
    if (!(rkt = ytk_inst_topic(in, topic))) {
        free(value);
        return rd_kafka_last_error();
    }
    /* RD_KAFKA_V_HEADER would build the same list inside librdkafka. */
    hdrs = rd_kafka_headers_new((size_t)n_extra + 2);
    rd_kafka_header_add(hdrs, "request-id", -1, request_id, -1);
    rd_kafka_header_add(hdrs, "content-type", -1, "application/json", -1);
    for (i = 0; i < n_extra; ++i) {
        rd_kafka_header_add(hdrs, extra[i].name, -1, extra[i].value,
                            (ssize_t)extra[i].len);
    }
    slot = ytk_waiter_arm(w, idx);
    err = rd_kafka_producev(in->rk,
                            RD_KAFKA_V_RKT(rkt),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                            RD_KAFKA_V_KEY(key, key_len),
                            RD_KAFKA_V_VALUE(value, value_len),
                            RD_KAFKA_V_HEADERS(hdrs),
                            RD_KAFKA_V_OPAQUE(slot),
                            RD_KAFKA_V_END);
    if (err) {
        /* librdkafka took neither the value nor the headers, and will not
         * report. */
        rd_kafka_headers_destroy(hdrs);
        free(value);
        ytk_status_failed(ytk_err_map_get(err)->fail);
        ytk_waiter_report(slot, err, -1, -1);
        return err;
    }
    ytk_status_produced();
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}
