/* The benchmark's baseline: a handler that reads the request body, throws
 * it away and answers 202 with a small JSON body. It does the HTTP work
 * ytkafka-send does (read a body, write a JSON answer) and nothing else.
 *
 *     SetHandler bench-discard
 */
#include <httpd.h>
#include <http_config.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>

static int discard_handler(request_rec *r)
{
    apr_bucket_brigade *bb;
    int seen_eos = 0;

    if (!r->handler || strcmp(r->handler, "bench-discard")) {
        return DECLINED;
    }
    if (r->method_number != M_POST) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    while (!seen_eos) {
        apr_bucket *b;

        if (ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                           APR_BLOCK_READ, HUGE_STRING_LEN) != APR_SUCCESS) {
            return HTTP_BAD_REQUEST;
        }
        for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
             b = APR_BUCKET_NEXT(b)) {
            const char *data;
            apr_size_t n;

            if (APR_BUCKET_IS_EOS(b)) {
                seen_eos = 1;
                break;
            }
            apr_bucket_read(b, &data, &n, APR_BLOCK_READ);
        }
        apr_brigade_cleanup(bb);
    }
    r->status = HTTP_ACCEPTED;
    ap_set_content_type(r, "application/json");
    ap_rputs("{\"status\":\"discarded\"}\n", r);
    return OK;
}

static void register_hooks(apr_pool_t *p)
{
    ap_hook_handler(discard_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(bench_discard) = {
    STANDARD20_MODULE_STUFF,
    NULL, NULL, NULL, NULL, NULL,
    register_hooks
};
