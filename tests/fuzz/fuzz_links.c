/*
 * libFuzzer target for the link extractors. Byte 0 picks the parser
 * (&3: 0 json, 1 form, 2/3 value), byte 1 the max_links (&7, 0: none).
 * Values are also parsed with the fast path off, and both must agree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ytk_links.h"
#include "ytk_url.h"

#define CHECK(cond) do { if (!(cond)) { abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ytk_links_rc (*const fns[])(const char *, size_t, size_t,
                                       ytk_links *) = {
        ytk_links_from_json, ytk_links_from_form, ytk_links_from_value,
        ytk_links_from_value
    };
    char id[YTK_VIDEO_ID_LEN + 1];
    ytk_links_rc rc;
    ytk_links l;
    size_t max, i;
    int mode;

    if (size < 2) {
        return 0;
    }
    mode = data[0] & 3;
    max = data[1] & 7;
    data += 2;
    size -= 2;

    if (mode >= 2) {
        /* The value parser's fast path must agree with the json-c path. */
        ytk_links slow;
        ytk_links_rc slow_rc;

        ytk_links_set_fast_path(0);
        slow_rc = ytk_links_from_value((const char *)data, size, max, &slow);
        ytk_links_set_fast_path(1);
        rc = ytk_links_from_value((const char *)data, size, max, &l);
        CHECK(rc == slow_rc);
        CHECK(l.n == slow.n);
        for (i = 0; i < l.n; i++) {
            CHECK(l.lens[i] == slow.lens[i]);
            CHECK(memcmp(l.items[i], slow.items[i], l.lens[i]) == 0);
        }
        ytk_links_free(&slow);
        ytk_links_free(&l);
    }
    memset(&l, 0x5a, sizeof(l));
    rc = fns[mode]((const char *)data, size, max, &l);
    CHECK(strcmp(ytk_links_code(rc), "unknown") != 0);
    if (rc != YTK_LINKS_OK) {
        CHECK(l.n == 0 && l.items == NULL && l.lens == NULL);
        ytk_links_free(&l);
        return 0;
    }
    CHECK(l.n >= 1);
    CHECK(max == 0 || l.n <= max);
    for (i = 0; i < l.n; i++) {
        CHECK(l.items[i] != NULL);
        CHECK(l.items[i][l.lens[i]] == '\0');
        /* decoding never grows a link beyond its body */
        CHECK(l.lens[i] <= size);
        if (ytk_url_video_id(l.items[i], l.lens[i], id) == YTK_URL_OK) {
            CHECK(ytk_video_id_valid(id, strlen(id)));
        }
    }
    ytk_links_free(&l);
    CHECK(l.n == 0 && l.items == NULL);
    return 0;
}
