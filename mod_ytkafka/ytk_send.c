/* mod_ytkafka: the ytkafka-send handler. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_buckets.h>
#include <apr_lib.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>

#include "ytk_private.h"
#include "ytk_config.h"
#include "ytk_producer.h"
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

enum { YTK_CT_OTHER, YTK_CT_JSON, YTK_CT_FORM };

/* ---- JSON answers ------------------------------------------------------ */

/* The answer is built straight into request-pool memory, in the bytes
 * json-c's JSON_C_TO_STRING_PLAIN gave: no objects to allocate and free
 * per request. */
typedef struct {
    apr_pool_t *pool;
    char *buf;
    apr_size_t len;
    apr_size_t cap;
} ytk_jbuf;

static void jb_init(ytk_jbuf *b, apr_pool_t *pool)
{
    b->pool = pool;
    b->cap = 512;
    b->len = 0;
    b->buf = apr_palloc(pool, b->cap);
}

static char *jb_room(ytk_jbuf *b, apr_size_t n)
{
    if (b->len + n > b->cap) {
        apr_size_t cap = b->cap * 2;
        char *nbuf;

        while (b->len + n > cap) {
            cap *= 2;
        }
        nbuf = apr_palloc(b->pool, cap);
        memcpy(nbuf, b->buf, b->len);
        b->buf = nbuf;
        b->cap = cap;
    }
    return b->buf + b->len;
}

static void jb_raw(ytk_jbuf *b, const char *s, apr_size_t n)
{
    memcpy(jb_room(b, n), s, n);
    b->len += n;
}

#define JB_LIT(b, lit) jb_raw((b), (lit), sizeof(lit) - 1)

/* A member's key, after a comma unless it opens the object or array. */
static void jb_key(ytk_jbuf *b, const char *key)
{
    apr_size_t k = strlen(key);
    char *o = jb_room(b, k + 4);
    char last = b->len ? b->buf[b->len - 1] : '{';

    if (last != '{' && last != '[') {
        *o++ = ',';
    }
    *o++ = '"';
    memcpy(o, key, k);
    o += k;
    *o++ = '"';
    *o++ = ':';
    b->len = (apr_size_t)(o - b->buf);
}

/* Submitted bytes that are not UTF-8 go out percent-encoded, as in the
 * Kafka record, so the answer is always valid JSON. */
static void jb_str(ytk_jbuf *b, const char *s, apr_size_t n)
{
    apr_size_t fixed = ytk_utf8_fixed_len(s, n);
    char *o;

    if (fixed != n) {
        char *f = apr_palloc(b->pool, fixed);

        n = ytk_utf8_fix(f, s, n);
        s = f;
    }
    o = jb_room(b, ytk_json_escaped_len(s, n) + 2);

    *o++ = '"';
    o += ytk_json_escape(o, s, n);
    *o++ = '"';
    b->len = (apr_size_t)(o - b->buf);
}

static void jset_str(ytk_jbuf *b, const char *k, const char *v, size_t n)
{
    jb_key(b, k);
    jb_str(b, v, n);
}

static void jset(ytk_jbuf *b, const char *k, const char *v)
{
    jset_str(b, k, v, strlen(v));
}

static void jset_int(ytk_jbuf *b, const char *k, int64_t v)
{
    char num[24];
    int n = apr_snprintf(num, sizeof(num), "%" APR_INT64_T_FMT, v);

    jb_key(b, k);
    jb_raw(b, num, (apr_size_t)n);
}

static void error_obj(ytk_jbuf *b, const char *code, const char *message)
{
    jb_key(b, "error");
    JB_LIT(b, "{");
    jset(b, "code", code);
    jset(b, "message", message);
    JB_LIT(b, "}");
}

/* Close the answer @a b (an object still open) and send it. */
static int respond(ytk_req *q, int status, ytk_jbuf *b)
{
    request_rec *r = q->r;

    jset(b, "request_id", q->request_id);
    JB_LIT(b, "}\n");
    r->status = status;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_set_content_length(r, (apr_off_t)b->len);
    ytk_status_request(status);
    if (!r->header_only) {
        ap_rwrite(b->buf, (int)b->len, r);
    }
    return OK;
}

static void links_json(ytk_req *q, ytk_jbuf *b);

static int respond_error(ytk_req *q, int status, const char *code,
                         const char *message, int with_links)
{
    ytk_jbuf b;

    jb_init(&b, q->r->pool);
    JB_LIT(&b, "{");
    error_obj(&b, code, message);
    if (with_links) {
        links_json(q, &b);
    }
    return respond(q, status, &b);
}

static void set_retry_after(request_rec *r, int seconds)
{
    if (seconds > 0) {
        apr_table_setn(r->err_headers_out, "Retry-After",
                       apr_itoa(r->pool, seconds));
    }
}

/* ---- the request --------------------------------------------------------- */

/* Request ids need to be unique, not secret: ap_random_insecure_bytes()
 * takes one process-wide mutex and runs SHA-256 per call, so each thread
 * seeds a xorshift128+ from it once per child (a forked child must not
 * repeat its parent's sequence) and draws from that. */
static unsigned int rid_generation;
typedef struct {
    uint64_t s[2];
    unsigned int generation;
} ytk_rid_rng;
static __thread ytk_rid_rng rid_rng;

void ytk_send_child_init(void)
{
    __atomic_add_fetch(&rid_generation, 1, __ATOMIC_RELEASE);
}

static uint64_t rid_next(ytk_rid_rng *g)
{
    uint64_t x = g->s[0];
    const uint64_t y = g->s[1];

    g->s[0] = y;
    x ^= x << 23;
    g->s[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
    return g->s[1] + y;
}

static void rid_bytes(unsigned char raw[15])
{
    unsigned int gen = __atomic_load_n(&rid_generation, __ATOMIC_ACQUIRE);
    ytk_rid_rng *g = &rid_rng;  /* one TLS lookup in a module */
    uint64_t a, b;

    if (g->generation != gen || !(g->s[0] | g->s[1])) {
        do {
            ap_random_insecure_bytes(g->s, sizeof(g->s));
        } while (!(g->s[0] | g->s[1]));
        g->generation = gen;
    }
    a = rid_next(g);
    b = rid_next(g);
    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 7);
}

static const char *request_id(request_rec *r)
{
    static const char b64u[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *uid = apr_table_get(r->subprocess_env, "UNIQUE_ID");
    unsigned char raw[15];
    char *id;
    int i;

    if (uid && *uid) {
        return uid;
    }
    rid_bytes(raw);
    id = apr_palloc(r->pool, 21);
    for (i = 0; i < 5; ++i) {
        unsigned long v = ((unsigned long)raw[3 * i] << 16)
                          | ((unsigned long)raw[3 * i + 1] << 8)
                          | raw[3 * i + 2];

        id[4 * i] = b64u[(v >> 18) & 63];
        id[4 * i + 1] = b64u[(v >> 12) & 63];
        id[4 * i + 2] = b64u[(v >> 6) & 63];
        id[4 * i + 3] = b64u[v & 63];
    }
    id[20] = '\0';
    return id;
}

static int media_type(const char *ct)
{
    const char *end;
    size_t n;

    if (!ct) {
        return YTK_CT_OTHER;
    }
    while (apr_isspace(*ct)) {
        ++ct;
    }
    end = strchr(ct, ';');
    n = end ? (size_t)(end - ct) : strlen(ct);
    while (n > 0 && apr_isspace(ct[n - 1])) {
        --n;
    }
    if (n == 16 && !strncasecmp(ct, "application/json", n)) {
        return YTK_CT_JSON;
    }
    if (n == 33 && !strncasecmp(ct, "application/x-www-form-urlencoded", n)) {
        return YTK_CT_FORM;
    }
    return YTK_CT_OTHER;
}

/* Read the whole body, at most @a limit bytes.
 * @return OK, HTTP_REQUEST_ENTITY_TOO_LARGE, or a status from the input
 *         filters (an error they already answered is AP_FILTER_ERROR) */
static int read_body(request_rec *r, apr_off_t limit, char **out,
                     apr_size_t *out_len)
{
    apr_bucket_brigade *bb;
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_size_t cap = 8192, len = 0;
    char *buf;
    int seen_eos = 0;

    if (cl) {
        apr_off_t n;
        char *end;

        if (apr_strtoff(&n, cl, &end, 10) == APR_SUCCESS && !*end && n >= 0) {
            if (n > limit) {
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
            cap = (apr_size_t)n + 1;
        }
    }
    buf = apr_palloc(r->pool, cap);
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    while (!seen_eos) {
        apr_bucket *b;
        apr_status_t rv;

        rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                            APR_BLOCK_READ, HUGE_STRING_LEN);
        if (rv != APR_SUCCESS) {
            apr_brigade_destroy(bb);
            return ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
        }
        for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
             b = APR_BUCKET_NEXT(b)) {
            const char *data;
            apr_size_t n;

            if (APR_BUCKET_IS_EOS(b)) {
                seen_eos = 1;
                break;
            }
            if (APR_BUCKET_IS_METADATA(b)) {
                continue;
            }
            rv = apr_bucket_read(b, &data, &n, APR_BLOCK_READ);
            if (rv != APR_SUCCESS) {
                apr_brigade_destroy(bb);
                return HTTP_BAD_REQUEST;
            }
            if ((apr_off_t)(len + n) > limit) {
                apr_brigade_destroy(bb);
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
            if (len + n + 1 > cap) {
                char *nbuf;

                while (len + n + 1 > cap) {
                    cap *= 2;
                }
                nbuf = apr_palloc(r->pool, cap);
                memcpy(nbuf, buf, len);
                buf = nbuf;
            }
            memcpy(buf + len, data, n);
            len += n;
        }
        apr_brigade_cleanup(bb);
    }
    apr_brigade_destroy(bb);
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return OK;
}

static int too_large(ytk_req *q, const char *message)
{
    /* Do not read the rest of a body we refused. */
    q->r->connection->keepalive = AP_CONN_CLOSE;
    return respond_error(q, HTTP_REQUEST_ENTITY_TOO_LARGE, "too_large",
                         message, 0);
}

static void link_json(ytk_req *q, const ytk_link *l, ytk_jbuf *b)
{
    const ytk_err_map *map;

    JB_LIT(b, "{");
    jset_str(b, "url", l->url, l->url_len);
    if (l->state != YTK_LINK_REJECTED) {
        jset(b, "video_id", l->id);
    }
    switch (l->state) {
    case YTK_LINK_REJECTED:
        jset(b, "status", "rejected");
        jset_int(b, "http_status", 422);
        error_obj(b, ytk_url_code(l->url_rc), ytk_url_strerror(l->url_rc));
        break;
    case YTK_LINK_DELIVERED:
        jset(b, "status", "delivered");
        jset_int(b, "http_status", 201);
        jset(b, "topic", q->topic);
        jset_int(b, "partition", l->partition);
        jset_int(b, "offset", l->offset);
        break;
    case YTK_LINK_QUEUED:
        jset(b, "status", "queued");
        jset_int(b, "http_status", 202);
        jset(b, "topic", q->topic);
        break;
    case YTK_LINK_UNKNOWN:
    case YTK_LINK_FAILED:
        map = ytk_err_map_get(l->err);
        jset(b, "status", l->state == YTK_LINK_UNKNOWN ? "unknown"
                                                       : "failed");
        jset_int(b, "http_status", map->status);
        error_obj(b, map->code, map->message);
        break;
    }
    JB_LIT(b, "}");
}

/* The "links" member: one object per submitted link. */
static void links_json(ytk_req *q, ytk_jbuf *b)
{
    int i;

    jb_key(b, "links");
    JB_LIT(b, "[");
    for (i = 0; i < q->n; ++i) {
        if (i > 0) {
            JB_LIT(b, ",");
        }
        link_json(q, &q->links[i], b);
    }
    JB_LIT(b, "]");
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

        jb_init(&body, r->pool);
        JB_LIT(&body, "{");
        jset(&body, "status", queued ? "queued" : "delivered");
        jset(&body, "topic", q->topic);
        links_json(q, &body);
        return respond(q, queued ? HTTP_ACCEPTED : HTTP_CREATED, &body);
    }
    if (ok > 0) {
        jb_init(&body, r->pool);
        JB_LIT(&body, "{");
        jset(&body, "status", "partial");
        jset(&body, "topic", q->topic);
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
    set_retry_after(r, map->retry_after);
    return respond_error(q, map->status, map->code, map->message, 1);
}

int ytk_send_handler(request_rec *r)
{
    ytk_req q;
    ytk_links links = { 0 };
    ytk_links_rc lrc;
    ytk_producer_t *p;
    const ytk_err_map *map;
    char *body = NULL;
    apr_size_t body_len = 0;
    int ct, rv, i, accepted = 0;

    if (!r->handler || strcmp(r->handler, "ytkafka-send")) {
        return DECLINED;
    }
    memset(&q, 0, sizeof(q));
    q.r = r;
    q.dc = ytk_dir_conf_get(r);
    q.topic = ytk_conf_topic(q.dc);
    q.request_id = request_id(r);
    apr_table_setn(r->err_headers_out, "X-Request-ID", q.request_id);

    r->allowed = (AP_METHOD_BIT << M_POST);
    ap_allow_methods(r, REPLACE_ALLOW, "POST", NULL);
    if (r->method_number != M_POST) {
        apr_table_setn(r->err_headers_out, "Allow", "POST");
        return respond_error(&q, HTTP_METHOD_NOT_ALLOWED,
                             "method_not_allowed", "only POST is allowed",
                             0);
    }
    ct = media_type(apr_table_get(r->headers_in, "Content-Type"));
    if (ct == YTK_CT_OTHER) {
        return respond_error(&q, HTTP_UNSUPPORTED_MEDIA_TYPE,
                             "unsupported_media_type",
                             "send application/json or "
                             "application/x-www-form-urlencoded", 0);
    }
    rv = read_body(r, ytk_conf_max_body(q.dc), &body, &body_len);
    if (rv == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        return too_large(&q, "the body is larger than YtKafkaMaxBody");
    }
    if (rv != OK) {
        /* The input filters' own answer (timeouts, bad chunking). */
        ytk_status_request(rv == AP_FILTER_ERROR ? 400 : rv);
        return rv;
    }
    lrc = (ct == YTK_CT_JSON)
          ? ytk_links_from_json(body, body_len,
                                (size_t)ytk_conf_max_links(q.dc), &links)
          : ytk_links_from_form(body, body_len,
                                (size_t)ytk_conf_max_links(q.dc), &links);
    switch (lrc) {
    case YTK_LINKS_OK:
        break;
    case YTK_LINKS_TOO_MANY:
        ytk_links_free(&links);
        return too_large(&q, "more links than YtKafkaMaxLinks");
    case YTK_LINKS_NOMEM:
        ytk_links_free(&links);
        return respond_error(&q, HTTP_INTERNAL_SERVER_ERROR, "internal",
                             "out of memory", 0);
    default:
        ytk_links_free(&links);
        return respond_error(&q, HTTP_BAD_REQUEST, ytk_links_code(lrc),
                             ytk_links_strerror(lrc), 0);
    }

    q.n = (int)links.n;
    q.links = apr_pcalloc(r->pool, sizeof(ytk_link) * links.n);
    for (i = 0; i < q.n; ++i) {
        ytk_link *l = &q.links[i];

        l->url = apr_pstrmemdup(r->pool, links.items[i], links.lens[i]);
        l->url_len = links.lens[i];
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
    ytk_links_free(&links);
    if (!accepted) {
        return answer(&q);
    }

    p = ytk_producer_for(r->server);
    if (ytk_producer_unavailable(p, &map)) {
        set_retry_after(r, map->retry_after);
        ytk_status_failed(map->fail);
        return respond_error(&q, map->status, map->code, map->message, 0);
    }
    if ((rv = produce_links(&q, p, accepted)) != OK) {
        return respond_error(&q, rv, "internal", "out of memory", 0);
    }
    return answer(&q);
}
