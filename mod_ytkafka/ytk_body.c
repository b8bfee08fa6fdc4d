/* mod_ytkafka: reading request bodies. */
#include <string.h>

#include <apr_strings.h>
#include <apr_buckets.h>
#include <apr_lib.h>

#include <httpd.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>

#include "ytk_answer.h"
#include "ytk_body.h"
#include "ytk_status.h"

int ytk_media_type(const char *ct)
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

int ytk_read_body(request_rec *r, apr_off_t limit, char **out,
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

int ytk_body_take(request_rec *r, const char *request_id, apr_off_t limit,
                  int with_form, ytk_body *out, int *ret)
{
    int rv;

    r->allowed = (AP_METHOD_BIT << M_POST);
    ap_allow_methods(r, REPLACE_ALLOW, "POST", NULL);
    if (r->method_number != M_POST) {
        *ret = ytk_answer_post_only(r, request_id);
        return 0;
    }
    out->type = ytk_media_type(apr_table_get(r->headers_in, "Content-Type"));
    if (out->type == YTK_CT_OTHER
        || (out->type == YTK_CT_FORM && !with_form)) {
        *ret = ytk_answer_error(r, request_id, HTTP_UNSUPPORTED_MEDIA_TYPE,
                                "unsupported_media_type",
                                with_form ? "send application/json or "
                                "application/x-www-form-urlencoded"
                                : "send application/json");
        return 0;
    }
    rv = ytk_read_body(r, limit, &out->data, &out->len);
    if (rv == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        *ret = ytk_answer_too_large(r, request_id,
                                    "the body is larger than YtKafkaMaxBody");
        return 0;
    }
    if (rv != OK) {
        /* The input filters' own answer (timeouts, bad chunking). */
        ytk_status_request(rv == AP_FILTER_ERROR ? 400 : rv);
        *ret = rv;
        return 0;
    }
    return 1;
}
