/* mod_ytkafka: the ytkafka-send handler. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>

#include "ytk_private.h"
#include "ytk_answer.h"
#include "ytk_body.h"
#include "ytk_config.h"
#include "ytk_producer.h"
#include "ytk_reqid.h"
#include "ytk_send.h"
#include "ytk_status.h"
#include "ytk_url.h"
#include "ytk_links.h"
#include "ytk_envelope.h"

typedef enum {
    YTK_LINK_REJECTED,   /* not a valid YouTube video URL */
    YTK_LINK_FAILED,     /* librdkafka or the broker refused it */
    YTK_LINK_UNKNOWN,    /* no delivery report before the deadline */
    YTK_LINK_QUEUED,
    YTK_LINK_DELIVERED
} ytk_link_state;

typedef struct {
    const char *url;            /* as submitted */
    size_t url_len;
    char id[YTK_VIDEO_ID_LEN + 1];
    ytk_url_rc url_rc;
    ytk_link_state state;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
    int slot;                   /* its index in the waiter */
} ytk_link;

typedef struct {
    request_rec *r;
    const ytk_dir_conf *dc;
    const char *request_id;
    const char *topic;
    ytk_link *links;
    int n;
} ytk_req;

/* Close the answer @a b (an object still open) and send it. */
static int respond(ytk_req *q, int status, ytk_jbuf *b)
{
    return ytk_answer_send(q->r, q->request_id, status, b);
}

static void links_json(ytk_req *q, ytk_jbuf *b);

static int respond_error(ytk_req *q, int status, const char *code,
                         const char *message, int with_links)
{
    ytk_jbuf b;

    ytk_jb_init(&b, q->r->pool);
    YTK_JB_LIT(&b, "{");
    ytk_jerror(&b, code, message);
    if (with_links) {
        links_json(q, &b);
    }
    return respond(q, status, &b);
}

void ytk_send_child_init(void)
{
    ytk_reqid_child_init();
}

static void link_json(ytk_req *q, const ytk_link *l, ytk_jbuf *b)
{
    const ytk_err_map *map;

    YTK_JB_LIT(b, "{");
    ytk_jset_str(b, "url", l->url, l->url_len);
    if (l->state != YTK_LINK_REJECTED) {
        ytk_jset(b, "video_id", l->id);
    }
    switch (l->state) {
    case YTK_LINK_REJECTED:
        ytk_jset(b, "status", "rejected");
        ytk_jset_int(b, "http_status", 422);
        ytk_jerror(b, ytk_url_code(l->url_rc), ytk_url_strerror(l->url_rc));
        break;
    case YTK_LINK_DELIVERED:
        ytk_jset(b, "status", "delivered");
        ytk_jset_int(b, "http_status", 201);
        ytk_jset(b, "topic", q->topic);
        ytk_jset_int(b, "partition", l->partition);
        ytk_jset_int(b, "offset", l->offset);
        break;
    case YTK_LINK_QUEUED:
        ytk_jset(b, "status", "queued");
        ytk_jset_int(b, "http_status", 202);
        ytk_jset(b, "topic", q->topic);
        break;
    case YTK_LINK_UNKNOWN:
    case YTK_LINK_FAILED:
        map = ytk_err_map_get(l->err);
        ytk_jset(b, "status", l->state == YTK_LINK_UNKNOWN ? "unknown"
                                                       : "failed");
        ytk_jset_int(b, "http_status", map->status);
        ytk_jerror(b, map->code, map->message);
        break;
    }
    YTK_JB_LIT(b, "}");
}

/* The "links" member: one object per submitted link. */
static void links_json(ytk_req *q, ytk_jbuf *b)
{
    int i;

    ytk_jb_key(b, "links");
    YTK_JB_LIT(b, "[");
    for (i = 0; i < q->n; ++i) {
        if (i > 0) {
            YTK_JB_LIT(b, ",");
        }
        link_json(q, &q->links[i], b);
    }
    YTK_JB_LIT(b, "]");
}

/* Produce every accepted link; wait for the reports if asked to. */
static int produce_links(ytk_req *q, ytk_producer_t *p, int accepted)
{
    request_rec *r = q->r;
    int delivered = ytk_conf_ack(q->dc) == YTK_ACK_DELIVERED;
    ytk_waiter_t *w = NULL;
    ytk_delivery *out = NULL;
    char received_at[32];
    apr_time_t deadline;
    int i, k;

    ytk_format_time((int64_t)r->request_time, received_at,
                    sizeof(received_at));
    if (delivered && !(w = ytk_waiter_create(accepted))) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    deadline = apr_time_now() + ytk_conf_ack_timeout(q->dc);
    for (i = 0, k = 0; i < q->n; ++i) {
        ytk_link *l = &q->links[i];
        size_t vlen = 0;
        char *value;

        if (l->state == YTK_LINK_REJECTED) {
            continue;
        }
        value = ytk_envelope_build(l->id, l->url, l->url_len, q->request_id,
                                   received_at, YTK_SOURCE, &vlen);
        if (!value) {
            ytk_waiter_release(w);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        l->err = ytk_producer_send(p, q->topic, l->id, YTK_VIDEO_ID_LEN,
                                   value, vlen, q->request_id, w, k);
        l->state = l->err ? YTK_LINK_FAILED : YTK_LINK_QUEUED;
        l->partition = -1;
        l->offset = -1;
        l->slot = k++;
    }
    if (!w) {
        return OK;
    }
    out = apr_pcalloc(r->pool, sizeof(*out) * (apr_size_t)accepted);
    ytk_waiter_wait(w, deadline, out);
    ytk_waiter_release(w);
    for (i = 0; i < q->n; ++i) {
        ytk_link *l = &q->links[i];
        const ytk_delivery *d;

        if (l->state != YTK_LINK_QUEUED) {
            continue;
        }
        d = &out[l->slot];
        if (!d->done) {
            l->state = YTK_LINK_UNKNOWN;
            l->err = RD_KAFKA_RESP_ERR__MSG_TIMED_OUT;
        }
        else if (d->err) {
            l->state = YTK_LINK_FAILED;
            l->err = d->err;
        }
        else {
            l->state = YTK_LINK_DELIVERED;
            l->partition = d->partition;
            l->offset = d->offset;
        }
    }
    return OK;
}

static int answer(ytk_req *q)
{
    request_rec *r = q->r;
    int i, ok = 0, rejected = 0, unknown = 0, first_fail = -1;
    ytk_jbuf body;
    const ytk_err_map *map;

    for (i = 0; i < q->n; ++i) {
        switch (q->links[i].state) {
        case YTK_LINK_QUEUED:
        case YTK_LINK_DELIVERED:
            ++ok;
            break;
        case YTK_LINK_REJECTED:
            ++rejected;
            break;
        case YTK_LINK_UNKNOWN:
            ++unknown;
            break;
        case YTK_LINK_FAILED:
            if (first_fail < 0) {
                first_fail = i;
            }
            break;
        }
    }
    if (ok == q->n) {
        int queued = ytk_conf_ack(q->dc) == YTK_ACK_QUEUED;

        ytk_jb_init(&body, r->pool);
        YTK_JB_LIT(&body, "{");
        ytk_jset(&body, "status", queued ? "queued" : "delivered");
        ytk_jset(&body, "topic", q->topic);
        links_json(q, &body);
        return respond(q, queued ? HTTP_ACCEPTED : HTTP_CREATED, &body);
    }
    if (ok > 0) {
        ytk_jb_init(&body, r->pool);
        YTK_JB_LIT(&body, "{");
        ytk_jset(&body, "status", "partial");
        ytk_jset(&body, "topic", q->topic);
        links_json(q, &body);
        return respond(q, HTTP_MULTI_STATUS, &body);
    }
    if (rejected == q->n) {
        return respond_error(q, HTTP_UNPROCESSABLE_ENTITY, "no_valid_links",
                             "no link is a valid YouTube video URL", 1);
    }
    if (unknown > 0) {
        map = ytk_err_map_get(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      YTK_LOGNO(00301) "request %s: no delivery report "
                      "within YtKafkaAckTimeout for %d link(s)",
                      q->request_id, unknown);
    }
    else {
        map = ytk_err_map_get(q->links[first_fail].err);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      YTK_LOGNO(00302) "request %s: Kafka refused: %s",
                      q->request_id,
                      rd_kafka_err2str(q->links[first_fail].err));
    }
    ytk_answer_retry_after(r, map->retry_after);
    return respond_error(q, map->status, map->code, map->message, 1);
}

/* Split the body into links. @return 1, or 0 with the answer in *ret */
static int parse_links(ytk_req *q, const ytk_body *body, int *ret)
{
    request_rec *r = q->r;
    size_t max = (size_t)ytk_conf_max_links(q->dc);
    ytk_links links = { 0 };
    ytk_links_rc lrc;
    int i;

    lrc = (body->type == YTK_CT_JSON)
          ? ytk_links_from_json(body->data, body->len, max, &links)
          : ytk_links_from_form(body->data, body->len, max, &links);
    switch (lrc) {
    case YTK_LINKS_OK:
        break;
    case YTK_LINKS_TOO_MANY:
        ytk_links_free(&links);
        *ret = ytk_answer_too_large(r, q->request_id,
                                    "more links than YtKafkaMaxLinks");
        return 0;
    case YTK_LINKS_NOMEM:
        ytk_links_free(&links);
        *ret = respond_error(q, HTTP_INTERNAL_SERVER_ERROR, "internal",
                             "out of memory", 0);
        return 0;
    default:
        ytk_links_free(&links);
        *ret = respond_error(q, HTTP_BAD_REQUEST, ytk_links_code(lrc),
                             ytk_links_strerror(lrc), 0);
        return 0;
    }
    q->n = (int)links.n;
    q->links = apr_pcalloc(r->pool, sizeof(ytk_link) * links.n);
    for (i = 0; i < q->n; ++i) {
        ytk_link *l = &q->links[i];

        l->url = apr_pstrmemdup(r->pool, links.items[i], links.lens[i]);
        l->url_len = links.lens[i];
    }
    ytk_links_free(&links);
    return 1;
}

/* Validate every link. @return how many are valid */
static int check_links(ytk_req *q)
{
    int i, accepted = 0;

    for (i = 0; i < q->n; ++i) {
        ytk_link *l = &q->links[i];

        l->url_rc = ytk_url_video_id(l->url, l->url_len, l->id);
        if (l->url_rc == YTK_URL_OK) {
            l->state = YTK_LINK_QUEUED;
            ytk_status_link_accepted();
            ++accepted;
        }
        else {
            l->state = YTK_LINK_REJECTED;
            ytk_status_link_rejected(l->url_rc);
        }
    }
    return accepted;
}

/* The producer, or NULL with the 503 in *ret. */
static ytk_producer_t *ready_producer(ytk_req *q, int *ret)
{
    ytk_producer_t *p = ytk_producer_for(q->r->server);
    const ytk_err_map *map;

    /* Tests: only on librdkafka's mock cluster, never on real brokers. */
    if (apr_table_get(q->r->headers_in, "X-YtKafka-Test-Fatal")) {
        ytk_producer_test_fatal(p);
    }
    if (ytk_producer_unavailable(p, &map)) {
        ytk_answer_retry_after(q->r, map->retry_after);
        ytk_status_failed(map->fail);
        *ret = respond_error(q, map->status, map->code, map->message, 0);
        return NULL;
    }
    return p;
}

int ytk_send_handler(request_rec *r)
{
    ytk_req q;
    ytk_body body;
    ytk_producer_t *p;
    int rv, accepted;

    if (!r->handler || strcmp(r->handler, "ytkafka-send")) {
        return DECLINED;
    }
    memset(&q, 0, sizeof(q));
    q.r = r;
    q.dc = ytk_dir_conf_get(r);
    q.topic = ytk_conf_topic(q.dc);
    q.request_id = ytk_request_id(r);
    apr_table_setn(r->err_headers_out, "X-Request-ID", q.request_id);

    if (!ytk_body_take(r, q.request_id, ytk_conf_max_body(q.dc), 1, &body,
                       &rv)
        || !parse_links(&q, &body, &rv)) {
        return rv;
    }
    if (!(accepted = check_links(&q))) {
        return answer(&q);
    }
    if (!(p = ready_producer(&q, &rv))) {
        return rv;
    }
    if ((rv = produce_links(&q, p, accepted)) != OK) {
        return respond_error(&q, rv, "internal", "out of memory", 0);
    }
    return answer(&q);
}
