/* mod_ytkafka: the ytkafka-produce handler.
 *
 * The record value is the object re-serialised canonically by json-c
 * (JSON_C_TO_STRING_PLAIN, '/' not escaped: no insignificant whitespace,
 * members in their order, the last of duplicate members kept, numbers as
 * json-c prints them; strings with \u escapes of their own), without
 * the YtKafkaTopicField member. Not byte-for-byte: the topic member must go,
 * and one canonical form is what consumers can compare. */
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>

#include <json-c/json.h>

#include "ytk_private.h"
#include "ytk_answer.h"
#include "ytk_body.h"
#include "ytk_config.h"
#include "ytk_event_conf.h"
#include "ytk_producer.h"
#include "ytk_reqid.h"
#include "ytk_produce.h"
#include "ytk_status.h"
#include "ytk_json.h"

/* Nesting deeper than this is refused: bounded parse time and stack. */
#define YTK_EVENT_DEPTH 64

typedef enum {
    YTK_REC_REJECTED,   /* bad record: not produced */
    YTK_REC_FAILED,     /* librdkafka or the broker refused it */
    YTK_REC_UNKNOWN,    /* no delivery report before the deadline */
    YTK_REC_QUEUED,
    YTK_REC_DELIVERED
} ytk_rec_state;

typedef struct {
    json_object *obj;           /* borrowed from the parsed body */
    const char *topic;
    const char *key;            /* NULL = no key */
    size_t key_len;
    ytk_rec_state state;
    int rej_status;             /* for REJECTED */
    const char *rej_code;
    const char *rej_msg;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
    int slot;
} ytk_rec;

typedef struct {
    request_rec *r;
    const ytk_dir_conf *dc;
    const ytk_event_conf *ec;   /* may be NULL */
    const char *request_id;
    const char *topic;          /* YtKafkaTopic */
    json_object *root;
    ytk_rec *recs;
    int n;
    ytk_hdr_kv *hdrs;
    int n_hdrs;
} ytk_preq;

static int jtype_is(json_object *v, ytk_jtype t)
{
    switch (t) {
    case YTK_JT_ANY:
        return 1;
    case YTK_JT_STRING:
        return json_object_is_type(v, json_type_string);
    case YTK_JT_NUMBER:
        return json_object_is_type(v, json_type_int)
               || json_object_is_type(v, json_type_double);
    case YTK_JT_BOOLEAN:
        return json_object_is_type(v, json_type_boolean);
    case YTK_JT_OBJECT:
        return json_object_is_type(v, json_type_object);
    case YTK_JT_ARRAY:
        return json_object_is_type(v, json_type_array);
    }
    return 0;
}

static void reject(ytk_rec *rec, int status, const char *code,
                   const char *msg)
{
    rec->state = YTK_REC_REJECTED;
    rec->rej_status = status;
    rec->rej_code = code;
    rec->rej_msg = msg;
}

/* ---- the answer --------------------------------------------------------- */

static void rec_json(ytk_preq *q, int i, ytk_jbuf *b)
{
    const ytk_rec *rec = &q->recs[i];
    const ytk_err_map *map;

    YTK_JB_LIT(b, "{");
    ytk_jset_int(b, "index", i);
    switch (rec->state) {
    case YTK_REC_REJECTED:
        ytk_jset(b, "status", "rejected");
        ytk_jset_int(b, "http_status", rec->rej_status);
        ytk_jerror(b, rec->rej_code, rec->rej_msg);
        break;
    case YTK_REC_DELIVERED:
        ytk_jset(b, "status", "delivered");
        ytk_jset_int(b, "http_status", 201);
        ytk_jset(b, "topic", rec->topic);
        ytk_jset_int(b, "partition", rec->partition);
        ytk_jset_int(b, "offset", rec->offset);
        break;
    case YTK_REC_QUEUED:
        ytk_jset(b, "status", "queued");
        ytk_jset_int(b, "http_status", 202);
        ytk_jset(b, "topic", rec->topic);
        break;
    case YTK_REC_UNKNOWN:
    case YTK_REC_FAILED:
        map = ytk_err_map_get(rec->err);
        ytk_jset(b, "status", rec->state == YTK_REC_UNKNOWN ? "unknown"
                                                            : "failed");
        ytk_jset_int(b, "http_status", map->status);
        ytk_jset(b, "topic", rec->topic);
        ytk_jerror(b, map->code, map->message);
        break;
    }
    YTK_JB_LIT(b, "}");
}

static int respond(ytk_preq *q, int status, const char *overall,
                   const char *code, const char *message)
{
    ytk_jbuf b;
    int i;

    ytk_jb_init(&b, q->r->pool);
    YTK_JB_LIT(&b, "{");
    if (overall) {
        ytk_jset(&b, "status", overall);
    }
    if (code) {
        ytk_jerror(&b, code, message);
    }
    ytk_jb_key(&b, "records");
    YTK_JB_LIT(&b, "[");
    for (i = 0; i < q->n; ++i) {
        if (i > 0) {
            YTK_JB_LIT(&b, ",");
        }
        rec_json(q, i, &b);
    }
    YTK_JB_LIT(&b, "]");
    return ytk_answer_send(q->r, q->request_id, status, &b);
}

static int answer(ytk_preq *q)
{
    request_rec *r = q->r;
    int i, ok = 0, rejected = 0, unknown = 0, first_fail = -1;
    int first_rej = -1, same_rej = 1;
    const ytk_err_map *map;

    for (i = 0; i < q->n; ++i) {
        switch (q->recs[i].state) {
        case YTK_REC_QUEUED:
        case YTK_REC_DELIVERED:
            ++ok;
            break;
        case YTK_REC_REJECTED:
            if (first_rej < 0) {
                first_rej = i;
            }
            else if (q->recs[i].rej_status != q->recs[first_rej].rej_status) {
                same_rej = 0;
            }
            ++rejected;
            break;
        case YTK_REC_UNKNOWN:
            ++unknown;
            break;
        case YTK_REC_FAILED:
            if (first_fail < 0) {
                first_fail = i;
            }
            break;
        }
    }
    if (ok == q->n) {
        int queued = ytk_conf_ack(q->dc) == YTK_ACK_QUEUED;

        return respond(q, queued ? HTTP_ACCEPTED : HTTP_CREATED,
                       queued ? "queued" : "delivered", NULL, NULL);
    }
    if (ok > 0) {
        return respond(q, HTTP_MULTI_STATUS, "partial", NULL, NULL);
    }
    if (rejected == q->n) {
        const ytk_rec *f = &q->recs[first_rej];

        return respond(q, same_rej ? f->rej_status
                                   : HTTP_UNPROCESSABLE_ENTITY,
                       NULL, f->rej_code, f->rej_msg);
    }
    if (unknown > 0) {
        map = ytk_err_map_get(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      YTK_LOGNO(00510) "request %s: no delivery report "
                      "within YtKafkaAckTimeout for %d record(s)",
                      q->request_id, unknown);
    }
    else {
        map = ytk_err_map_get(q->recs[first_fail].err);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      YTK_LOGNO(00511) "request %s: Kafka refused: %s",
                      q->request_id,
                      rd_kafka_err2str(q->recs[first_fail].err));
    }
    ytk_answer_retry_after(r, map->retry_after);
    return respond(q, map->status, NULL, map->code, map->message);
}

/* ---- the body ------------------------------------------------------------ */

static apr_status_t root_cleanup(void *data)
{
    json_object_put(data);
    return APR_SUCCESS;
}

/* Parse strictly. @return 1, or 0 with the answer in *ret */
static int parse_body(ytk_preq *q, const ytk_body *body, int *ret)
{
    request_rec *r = q->r;
    /* One level more than the check allows, whichever way json-c counts. */
    json_tokener *tok = json_tokener_new_ex(YTK_EVENT_DEPTH + 1);
    const char *why = NULL;
    json_object *root;
    size_t end = 0, len = body->len;
    int i, max = ytk_conf_max_links(q->dc);

    if (!tok) {
        *ret = ytk_answer_error(r, q->request_id, HTTP_INTERNAL_SERVER_ERROR,
                                "internal", "out of memory");
        return 0;
    }
    /* json-c's strict mode still takes single quotes and NaN: validate
     * first, strictly, then let json-c build the objects. */
    if (!ytk_json_valid(body->data, len, YTK_EVENT_DEPTH, &end, &why)) {
        json_tokener_free(tok);
        *ret = ytk_answer_error(r, q->request_id, HTTP_BAD_REQUEST,
                                "invalid_json",
                                apr_psprintf(r->pool, "the body is not "
                                             "valid JSON at byte %"
                                             APR_SIZE_T_FMT ": %s", end,
                                             why));
        return 0;
    }
    for (i = 0; strchr(" \t\r\n", body->data[i]); ++i) {
        /* valid JSON: a value follows the whitespace, no NUL before it */
    }
    if (body->data[i] != '{' && body->data[i] != '[') {
        json_tokener_free(tok);
        *ret = ytk_answer_error(r, q->request_id, HTTP_BAD_REQUEST,
                                "not_an_object", "send a JSON object or an "
                                "array of objects");
        return 0;
    }
    root = json_tokener_parse_ex(tok, body->data, (int)len);
    json_tokener_free(tok);
    if (!root) {
        *ret = ytk_answer_error(r, q->request_id, HTTP_INTERNAL_SERVER_ERROR,
                                "internal", "out of memory");
        return 0;
    }
    apr_pool_cleanup_register(r->pool, root, root_cleanup,
                              apr_pool_cleanup_null);
    q->root = root;
    if (json_object_is_type(root, json_type_object)) {
        q->n = 1;
    }
    else if (json_object_is_type(root, json_type_array)) {
        q->n = (int)json_object_array_length(root);
    }
    else {
        *ret = ytk_answer_error(r, q->request_id, HTTP_BAD_REQUEST,
                                "not_an_object", "send a JSON object or an "
                                "array of objects");
        return 0;
    }
    if (q->n == 0) {
        *ret = ytk_answer_error(r, q->request_id, HTTP_BAD_REQUEST,
                                "empty_batch", "the array has no records");
        return 0;
    }
    if (q->n > max) {
        *ret = ytk_answer_too_large(r, q->request_id,
                                    "more records than YtKafkaMaxLinks");
        return 0;
    }
    q->recs = apr_pcalloc(r->pool, sizeof(ytk_rec) * (apr_size_t)q->n);
    for (i = 0; i < q->n; ++i) {
        q->recs[i].obj = q->n == 1 && json_object_is_type(root,
                                                          json_type_object)
                         ? root : json_object_array_get_idx(root, (size_t)i);
        q->recs[i].topic = q->topic;
        q->recs[i].state = YTK_REC_QUEUED;
    }
    return 1;
}

/* Topic, key and required fields of one record. */
static void check_record(ytk_preq *q, ytk_rec *rec)
{
    apr_pool_t *pool = q->r->pool;
    const ytk_event_conf *ec = q->ec;
    json_object *v;
    int i;

    if (!json_object_is_type(rec->obj, json_type_object)) {
        reject(rec, HTTP_UNPROCESSABLE_ENTITY, "not_an_object",
               "a record must be a JSON object");
        return;
    }
    if (!ec) {
        return;
    }
    for (i = 0; ec->require && i < ec->require->nelts; ++i) {
        const ytk_req_field *f = &APR_ARRAY_IDX(ec->require, i,
                                                ytk_req_field);

        if (!json_object_object_get_ex(rec->obj, f->name, &v)) {
            reject(rec, HTTP_UNPROCESSABLE_ENTITY, "missing_field",
                   apr_psprintf(pool, "the field \"%s\" is required",
                                f->name));
            return;
        }
        if (!jtype_is(v, f->type)) {
            reject(rec, HTTP_UNPROCESSABLE_ENTITY, "wrong_type",
                   apr_psprintf(pool, "the field \"%s\" must be of type %s",
                                f->name, ytk_jtype_name(f->type)));
            return;
        }
    }
    if (ec->topic_field
        && json_object_object_get_ex(rec->obj, ec->topic_field, &v)) {
        const char *t = json_object_get_string(v);

        if (!json_object_is_type(v, json_type_string)) {
            reject(rec, HTTP_UNPROCESSABLE_ENTITY, "wrong_type",
                   apr_psprintf(pool, "the field \"%s\" must be a topic "
                                "name (string)", ec->topic_field));
            return;
        }
        for (i = 0; ec->allow_topics && i < ec->allow_topics->nelts; ++i) {
            if (!strcmp(t, APR_ARRAY_IDX(ec->allow_topics, i,
                                         const char *))) {
                break;
            }
        }
        if (!ec->allow_topics || i == ec->allow_topics->nelts) {
            reject(rec, HTTP_FORBIDDEN, "topic_not_allowed",
                   apr_psprintf(pool, "the topic \"%s\" is not allowed here "
                                "(YtKafkaAllowTopic)", t));
            return;
        }
        rec->topic = apr_pstrdup(pool, t);
    }
    if (ec->key_field
        && json_object_object_get_ex(rec->obj, ec->key_field, &v)) {
        if (json_object_is_type(v, json_type_string)) {
            /* A copy: the value loses YtKafkaTopicField before it is
             * produced, and the key field may be that one. */
            rec->key_len = (size_t)json_object_get_string_len(v);
            rec->key = apr_pstrmemdup(pool, json_object_get_string(v),
                                      rec->key_len);
        }
        else if (json_object_is_type(v, json_type_int)
                 || json_object_is_type(v, json_type_double)
                 || json_object_is_type(v, json_type_boolean)) {
            rec->key = apr_pstrdup(pool, json_object_to_json_string_ext(
                                             v, JSON_C_TO_STRING_PLAIN));
            rec->key_len = strlen(rec->key);
        }
        else {
            reject(rec, HTTP_UNPROCESSABLE_ENTITY, "wrong_type",
                   apr_psprintf(pool, "the key field \"%s\" must be a "
                                "string, number or boolean",
                                ec->key_field));
        }
    }
}

/* The request headers YtKafkaHeaderFromRequest copies. */
static void copy_headers(ytk_preq *q)
{
    const ytk_event_conf *ec = q->ec;
    int i;

    if (!ec || !ec->headers) {
        return;
    }
    q->hdrs = apr_palloc(q->r->pool,
                         sizeof(ytk_hdr_kv) * (apr_size_t)ec->headers->nelts);
    for (i = 0; i < ec->headers->nelts; ++i) {
        const ytk_hdr_copy *h = &APR_ARRAY_IDX(ec->headers, i, ytk_hdr_copy);
        const char *v = apr_table_get(q->r->headers_in, h->http);

        if (v) {
            q->hdrs[q->n_hdrs].name = h->kafka;
            q->hdrs[q->n_hdrs].value = v;
            q->hdrs[q->n_hdrs].len = strlen(v);
            q->n_hdrs++;
        }
    }
}

/* ---- producing ----------------------------------------------------------- */

static char *record_value(ytk_preq *q, ytk_rec *rec, size_t *len)
{
    const char *s;
    char *out;

    if (q->ec && q->ec->topic_field) {
        json_object_object_del(rec->obj, q->ec->topic_field);
    }
    s = json_object_to_json_string_length(rec->obj, JSON_C_TO_STRING_PLAIN
                                          | JSON_C_TO_STRING_NOSLASHESCAPE,
                                          len);
    if (!s || !(out = malloc(*len + 1))) {
        return NULL;
    }
    memcpy(out, s, *len + 1);
    return out;
}

static int produce(ytk_preq *q, ytk_producer_t *p, int accepted)
{
    int delivered = ytk_conf_ack(q->dc) == YTK_ACK_DELIVERED;
    ytk_waiter_t *w = NULL;
    ytk_delivery *out;
    apr_time_t deadline;
    int i, k;

    if (delivered && !(w = ytk_waiter_create(accepted))) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    deadline = apr_time_now() + ytk_conf_ack_timeout(q->dc);
    for (i = 0, k = 0; i < q->n; ++i) {
        ytk_rec *rec = &q->recs[i];
        size_t vlen = 0;
        char *value;

        if (rec->state == YTK_REC_REJECTED) {
            continue;
        }
        if (!(value = record_value(q, rec, &vlen))) {
            ytk_waiter_release(w);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        rec->err = ytk_producer_send_hdrs(p, rec->topic, rec->key,
                                          rec->key_len, value, vlen,
                                          q->request_id, q->hdrs, q->n_hdrs,
                                          w, k);
        rec->state = rec->err ? YTK_REC_FAILED : YTK_REC_QUEUED;
        rec->partition = -1;
        rec->offset = -1;
        rec->slot = k++;
    }
    if (!w) {
        return OK;
    }
    out = apr_pcalloc(q->r->pool, sizeof(*out) * (apr_size_t)accepted);
    ytk_waiter_wait(w, deadline, out);
    ytk_waiter_release(w);
    for (i = 0; i < q->n; ++i) {
        ytk_rec *rec = &q->recs[i];
        const ytk_delivery *d;

        if (rec->state != YTK_REC_QUEUED) {
            continue;
        }
        d = &out[rec->slot];
        if (!d->done) {
            rec->state = YTK_REC_UNKNOWN;
            rec->err = RD_KAFKA_RESP_ERR__MSG_TIMED_OUT;
        }
        else if (d->err) {
            rec->state = YTK_REC_FAILED;
            rec->err = d->err;
        }
        else {
            rec->state = YTK_REC_DELIVERED;
            rec->partition = d->partition;
            rec->offset = d->offset;
        }
    }
    return OK;
}

/* The producer, or NULL with the 503 in *ret. */
static ytk_producer_t *ready_producer(ytk_preq *q, int *ret)
{
    ytk_producer_t *p = ytk_producer_for(q->r->server);
    const ytk_err_map *map;

    if (ytk_producer_unavailable(p, &map)) {
        ytk_answer_retry_after(q->r, map->retry_after);
        ytk_status_failed(map->fail);
        *ret = ytk_answer_error(q->r, q->request_id, map->status, map->code,
                                map->message);
        return NULL;
    }
    return p;
}

int ytk_produce_handler(request_rec *r)
{
    ytk_preq q;
    ytk_body body;
    ytk_producer_t *p;
    int rv, i, accepted = 0;

    if (!r->handler || strcmp(r->handler, "ytkafka-produce")) {
        return DECLINED;
    }
    memset(&q, 0, sizeof(q));
    q.r = r;
    q.dc = ytk_dir_conf_get(r);
    q.ec = q.dc->events;
    q.topic = ytk_conf_topic(q.dc);
    q.request_id = ytk_request_id(r);
    apr_table_setn(r->err_headers_out, "X-Request-ID", q.request_id);

    if (!ytk_body_take(r, q.request_id, ytk_conf_max_body(q.dc), 0, &body,
                       &rv)
        || !parse_body(&q, &body, &rv)) {
        return rv;
    }
    for (i = 0; i < q.n; ++i) {
        check_record(&q, &q.recs[i]);
        accepted += q.recs[i].state != YTK_REC_REJECTED;
    }
    if (!accepted) {
        return answer(&q);
    }
    if (!(p = ready_producer(&q, &rv))) {
        return rv;
    }
    copy_headers(&q);
    if ((rv = produce(&q, p, accepted)) != OK) {
        return ytk_answer_error(r, q.request_id, rv, "internal",
                                "out of memory");
    }
    return answer(&q);
}
