/* libFuzzer target for ytk_url_video_id() and the envelope built from it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ytk_envelope.h"
#include "ytk_links.h"
#include "ytk_url.h"

#define CHECK(cond) do { if (!(cond)) { abort(); } } while (0)

static ytk_url_rc parse(const char *s, size_t len, char *id)
{
    ytk_url_rc rc;

    memset(id, 'Z', YTK_VIDEO_ID_LEN + 1);
    rc = ytk_url_video_id(s, len, id);
    CHECK(strcmp(ytk_url_code(rc), "unknown") != 0);
    if (rc == YTK_URL_OK) {
        CHECK(id[YTK_VIDEO_ID_LEN] == '\0');
        CHECK(strlen(id) == YTK_VIDEO_ID_LEN);
        CHECK(ytk_video_id_valid(id, YTK_VIDEO_ID_LEN));
    }
    else {
        CHECK(id[0] == '\0');
    }
    return rc;
}

/* The id is always taken from the input, never made up. */
static int contains(const char *hay, size_t n, const char *needle, size_t m)
{
    size_t i;

    for (i = 0; i + m <= n; i++) {
        if (memcmp(hay + i, needle, m) == 0) {
            return 1;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char id[YTK_VIDEO_ID_LEN + 1], id2[YTK_VIDEO_ID_LEN + 1], canon[64];
    ytk_url_rc rc, rc2;
    ytk_links l;
    char *padded, *js;
    size_t jlen;

    rc = parse(s, size, id);
    if (size > YTK_URL_MAX_LEN) {
        CHECK(rc == YTK_URL_TOO_LONG);
    }

    /* surrounding whitespace never changes the answer */
    if (size + 2 <= YTK_URL_MAX_LEN) {
        padded = malloc(size + 2);
        CHECK(padded != NULL);
        padded[0] = ' ';
        memcpy(padded + 1, s, size);
        padded[size + 1] = '\n';
        rc2 = parse(padded, size + 2, id2);
        CHECK(rc2 == rc);
        CHECK(strcmp(id, id2) == 0);
        free(padded);
    }

    if (rc != YTK_URL_OK) {
        return 0;
    }
    CHECK(contains(s, size, id, YTK_VIDEO_ID_LEN));

    /* canonical form parses back to the same id */
    ytk_canonical_url(id, canon, sizeof(canon));
    CHECK(strlen(canon) == 43);
    CHECK(parse(canon, strlen(canon), id2) == YTK_URL_OK);
    CHECK(strcmp(id, id2) == 0);

    /* the envelope is valid JSON that the value parser reads back */
    js = ytk_envelope_build(id, s, size, "req", "2026-01-01T00:00:00.000Z",
                            NULL, &jlen);
    CHECK(js != NULL);
    CHECK(strlen(js) == jlen);
    CHECK(ytk_links_from_value(js, jlen, 1, &l) == YTK_LINKS_OK);
    CHECK(l.n == 1 && strcmp(l.items[0], canon) == 0);
    ytk_links_free(&l);
    free(js);
    return 0;
}
