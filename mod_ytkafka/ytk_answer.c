/* mod_ytkafka: the handlers' JSON answers. */
#include <string.h>

#include <apr_strings.h>

#include <httpd.h>
#include <http_protocol.h>

#include "ytk_answer.h"
#include "ytk_status.h"
#include "ytk_envelope.h"

void ytk_jb_init(ytk_jbuf *b, apr_pool_t *pool)
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

void ytk_jb_raw(ytk_jbuf *b, const char *s, apr_size_t n)
{
    memcpy(jb_room(b, n), s, n);
    b->len += n;
}

void ytk_jb_key(ytk_jbuf *b, const char *key)
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
void ytk_jb_str(ytk_jbuf *b, const char *s, apr_size_t n)
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

void ytk_jset_str(ytk_jbuf *b, const char *k, const char *v, size_t n)
{
    ytk_jb_key(b, k);
    ytk_jb_str(b, v, n);
}

void ytk_jset(ytk_jbuf *b, const char *k, const char *v)
{
    ytk_jset_str(b, k, v, strlen(v));
}

void ytk_jset_int(ytk_jbuf *b, const char *k, int64_t v)
{
    char num[24];
    int n = apr_snprintf(num, sizeof(num), "%" APR_INT64_T_FMT, v);

    ytk_jb_key(b, k);
    ytk_jb_raw(b, num, (apr_size_t)n);
}

void ytk_jset_null(ytk_jbuf *b, const char *k)
{
    ytk_jb_key(b, k);
    YTK_JB_LIT(b, "null");
}

void ytk_jerror(ytk_jbuf *b, const char *code, const char *message)
{
    ytk_jb_key(b, "error");
    YTK_JB_LIT(b, "{");
    ytk_jset(b, "code", code);
    ytk_jset(b, "message", message);
    YTK_JB_LIT(b, "}");
}

int ytk_answer_write(request_rec *r, const char *request_id, int status,
                     ytk_jbuf *b)
{
    ytk_jset(b, "request_id", request_id);
    YTK_JB_LIT(b, "}\n");
    r->status = status;
    ap_set_content_type(r, "application/json");
    if (!apr_table_get(r->headers_out, "Cache-Control")) {
        apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    }
    ap_set_content_length(r, (apr_off_t)b->len);
    if (!r->header_only) {
        ap_rwrite(b->buf, (int)b->len, r);
    }
    return OK;
}

int ytk_answer_send(request_rec *r, const char *request_id, int status,
                    ytk_jbuf *b)
{
    ytk_status_request(status);
    return ytk_answer_write(r, request_id, status, b);
}

int ytk_answer_error(request_rec *r, const char *request_id, int status,
                     const char *code, const char *message)
{
    ytk_jbuf b;

    ytk_jb_init(&b, r->pool);
    YTK_JB_LIT(&b, "{");
    ytk_jerror(&b, code, message);
    return ytk_answer_send(r, request_id, status, &b);
}

int ytk_answer_too_large(request_rec *r, const char *request_id,
                         const char *message)
{
    /* Do not read the rest of a body we refused. */
    r->connection->keepalive = AP_CONN_CLOSE;
    return ytk_answer_error(r, request_id, HTTP_REQUEST_ENTITY_TOO_LARGE,
                            "too_large", message);
}

int ytk_answer_post_only(request_rec *r, const char *request_id)
{
    apr_table_setn(r->err_headers_out, "Allow", "POST");
    return ytk_answer_error(r, request_id, HTTP_METHOD_NOT_ALLOWED,
                            "method_not_allowed", "only POST is allowed");
}

void ytk_answer_retry_after(request_rec *r, int seconds)
{
    if (seconds > 0) {
        apr_table_setn(r->err_headers_out, "Retry-After",
                       apr_itoa(r->pool, seconds));
    }
}
