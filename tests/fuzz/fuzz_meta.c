/* libFuzzer target for the player-response extraction (consumer/ytc_meta):
 * any page, any status. -timeout in tests/fuzz/run catches a parse that is
 * no longer linear in the page. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ytc_meta.h"

#define CHECK(cond) do { if (!(cond)) { abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ytc_http_answer w, o;
    json_object *result = NULL, *pr;
    ytc_pr_status st;
    char reason[600], *page, ra[64];
    long retry_after;
    ytc_outcome out;
    size_t n;

    page = malloc(size + 1);
    if (!page) {
        return 0;
    }
    memcpy(page, data, size);
    page[size] = '\0';

    pr = ytc_meta_player_response_ex(page, size, &st);
    CHECK((pr != NULL) == (st == YTC_PR_FOUND));
    json_object_put(pr);

    memset(&w, 0, sizeof(w));
    memset(&o, 0, sizeof(o));
    w.status = 200;
    w.body = page;
    w.len = size;
    w.retry_after = -1;
    o.status = 404;
    o.retry_after = -1;
    reason[0] = 'X';
    out = ytc_meta_extract("dQw4w9WgXcQ", &w, &o, &result, reason,
                           sizeof(reason), &retry_after);
    CHECK(out == YTC_OUT_OK || out == YTC_OUT_UNAVAILABLE
          || out == YTC_OUT_TRANSIENT || out == YTC_OUT_ERROR);
    CHECK((result != NULL) == (out == YTC_OUT_OK
                               || out == YTC_OUT_UNAVAILABLE));
    CHECK(out == YTC_OUT_OK || reason[0] != '\0');
    CHECK(memchr(reason, '\0', sizeof(reason)) != NULL);
    if (result) {
        CHECK(json_object_to_json_string(result) != NULL);
    }
    json_object_put(result);

    /* the first bytes as a Retry-After value */
    n = size < sizeof(ra) - 1 ? size : sizeof(ra) - 1;
    memcpy(ra, data, n);
    ra[n] = '\0';
    retry_after = ytc_meta_retry_after(ra, (time_t)1767225600);
    CHECK(retry_after >= -1 && retry_after <= YTC_RETRY_AFTER_MAX);

    free(page);
    return 0;
}
