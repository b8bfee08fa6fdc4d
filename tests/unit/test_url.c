/* Unit tests for lib/ytk_url: table driven, exact ids and codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ytk_url.h"

#ifndef URL_CASES_TSV
#define URL_CASES_TSV "url_cases.tsv"
#endif

#define RR "dQw4w9WgXcQ"

typedef struct {
    const char *url;
    ytk_url_rc rc;
    const char *id;     /* expected id when rc == YTK_URL_OK */
} url_case;

static const url_case cases[] = {
    /* every host, https */
    { "https://youtube.com/watch?v=" RR, YTK_URL_OK, RR },
    { "https://www.youtube.com/watch?v=" RR, YTK_URL_OK, RR },
    { "https://m.youtube.com/watch?v=" RR, YTK_URL_OK, RR },
    { "https://music.youtube.com/watch?v=" RR, YTK_URL_OK, RR },
    { "https://youtube-nocookie.com/embed/" RR, YTK_URL_OK, RR },
    { "https://www.youtube-nocookie.com/embed/" RR, YTK_URL_OK, RR },
    { "https://youtu.be/" RR, YTK_URL_OK, RR },
    /* letter case of scheme and host; id case kept */
    { "HTTPS://WWW.YOUTUBE.COM/watch?v=" RR, YTK_URL_OK, RR },
    { "hTtP://M.YouTube.Com/watch?v=" RR, YTK_URL_OK, RR },
    { "https://MUSIC.youtube.COM/watch?v=" RR, YTK_URL_OK, RR },
    { "https://WWW.YOUTUBE-NOCOOKIE.COM/embed/" RR, YTK_URL_OK, RR },
    { "https://YoUtU.bE/" RR, YTK_URL_OK, RR },
    { "https://youtu.be/DQW4W9WGXCQ", YTK_URL_OK, "DQW4W9WGXCQ" },
    /* schemes: http, none, protocol-relative */
    { "http://www.youtube.com/watch?v=" RR, YTK_URL_OK, RR },
    { "http://youtu.be/" RR, YTK_URL_OK, RR },
    { "www.youtube.com/watch?v=" RR, YTK_URL_OK, RR },
    { "youtube.com/shorts/" RR, YTK_URL_OK, RR },
    { "youtu.be/" RR, YTK_URL_OK, RR },
    { "music.youtube.com/watch?v=" RR, YTK_URL_OK, RR },
    { "//www.youtube.com/watch?v=" RR, YTK_URL_OK, RR },
    /* whitespace trimmed */
    { "  https://youtu.be/" RR "  ", YTK_URL_OK, RR },
    { "\t\r\nhttps://www.youtube.com/watch?v=" RR "\r\n", YTK_URL_OK, RR },
    { "\v\fyoutu.be/" RR "\n", YTK_URL_OK, RR },
    /* ports */
    { "https://www.youtube.com:443/watch?v=" RR, YTK_URL_OK, RR },
    { "http://www.youtube.com:80/watch?v=" RR, YTK_URL_OK, RR },
    { "youtube.com:443/watch?v=" RR, YTK_URL_OK, RR },
    { "https://youtu.be:80/" RR, YTK_URL_OK, RR },
    /* watch: v anywhere, other params, fragments */
    { "https://www.youtube.com/watch?feature=share&v=" RR, YTK_URL_OK, RR },
    { "https://www.youtube.com/watch?a=1&v=" RR "&b=2", YTK_URL_OK, RR },
    { "https://www.youtube.com/watch?v=" RR "#t=10", YTK_URL_OK, RR },
    { "https://www.youtube.com/watch?v=" RR "&v=" RR, YTK_URL_OK, RR },
    { "https://www.youtube.com/watch?vv=x&v=" RR, YTK_URL_OK, RR },
    { "https://www.youtube.com/watch?v=" RR "&t=1m&list=PL1", YTK_URL_OK, RR },
    { "https://www.youtube.com/watch?x=%E2%9C%93&v=" RR, YTK_URL_OK, RR },
    { "https://www.youtube.com/watch?t=\xc3\xa9&v=" RR, YTK_URL_OK, RR },
    { "https://www.youtube.com/watch?&&v=" RR "&&", YTK_URL_OK, RR },
    /* id paths, with /, ?query and #fragment */
    { "https://www.youtube.com/shorts/" RR, YTK_URL_OK, RR },
    { "https://www.youtube.com/shorts/" RR "/", YTK_URL_OK, RR },
    { "https://www.youtube.com/shorts/" RR "?feature=share", YTK_URL_OK, RR },
    { "https://www.youtube.com/embed/" RR "#x", YTK_URL_OK, RR },
    { "https://www.youtube.com/embed/" RR "/?start=3", YTK_URL_OK, RR },
    { "https://www.youtube.com/v/" RR, YTK_URL_OK, RR },
    { "https://www.youtube.com/e/" RR, YTK_URL_OK, RR },
    { "https://www.youtube.com/live/" RR, YTK_URL_OK, RR },
    { "https://m.youtube.com/live/" RR "/#chat", YTK_URL_OK, RR },
    { "https://youtu.be/" RR "?si=abc&t=4", YTK_URL_OK, RR },
    { "https://youtu.be/" RR "/", YTK_URL_OK, RR },
    { "https://youtu.be/" RR "#t=1", YTK_URL_OK, RR },
    { "https://youtu.be?x=1#/" RR, YTK_URL_NO_VIDEO, NULL },
    /* id alphabet edges */
    { "https://youtu.be/___________", YTK_URL_OK, "___________" },
    { "https://youtu.be/-----------", YTK_URL_OK, "-----------" },
    { "https://youtu.be/09azAZ_-09a", YTK_URL_OK, "09azAZ_-09a" },

    /* empty and whitespace */
    { "", YTK_URL_EMPTY, NULL },
    { "   ", YTK_URL_EMPTY, NULL },
    { "\t\r\n", YTK_URL_EMPTY, NULL },
    /* controls, spaces inside */
    { "https://youtu.be/" RR "\x01", YTK_URL_BAD_CHAR, NULL },
    { "https://www.youtube.com/watch?v=" RR "&x=a b", YTK_URL_BAD_CHAR, NULL },
    { "https://youtu.be/\x7f" RR, YTK_URL_BAD_CHAR, NULL },
    { "https://www.you\ttube.com/watch?v=" RR, YTK_URL_BAD_CHAR, NULL },
    { "not a url", YTK_URL_BAD_CHAR, NULL },
    /* schemes */
    { "javascript:alert(1)//https://www.youtube.com/watch?v=" RR,
      YTK_URL_BAD_SCHEME, NULL },
    { "javascript://www.youtube.com/watch?v=" RR, YTK_URL_BAD_SCHEME, NULL },
    { "data:text/plain,https://youtu.be/" RR, YTK_URL_BAD_SCHEME, NULL },
    { "ftp://www.youtube.com/watch?v=" RR, YTK_URL_BAD_SCHEME, NULL },
    { "file:///watch?v=" RR, YTK_URL_BAD_SCHEME, NULL },
    { "httpss://www.youtube.com/watch?v=" RR, YTK_URL_BAD_SCHEME, NULL },
    { "https:www.youtube.com/watch?v=" RR, YTK_URL_BAD_SCHEME, NULL },
    { "https:/www.youtube.com/watch?v=" RR, YTK_URL_BAD_SCHEME, NULL },
    { "https:", YTK_URL_BAD_SCHEME, NULL },
    { "youtube.com:/watch?v=" RR, YTK_URL_BAD_SCHEME, NULL },
    /* userinfo */
    { "https://youtube.com@evil.example/watch?v=" RR, YTK_URL_USERINFO, NULL },
    { "https://user@youtube.com/watch?v=" RR, YTK_URL_USERINFO, NULL },
    { "https://user:pass@www.youtube.com/watch?v=" RR, YTK_URL_USERINFO,
      NULL },
    { "https://@youtu.be/" RR, YTK_URL_USERINFO, NULL },
    { "youtube.com@evil.example/watch?v=" RR, YTK_URL_USERINFO, NULL },
    /* ports */
    { "https://www.youtube.com:8443/watch?v=" RR, YTK_URL_BAD_PORT, NULL },
    { "https://www.youtube.com:0443/watch?v=" RR, YTK_URL_BAD_PORT, NULL },
    { "https://www.youtube.com:/watch?v=" RR, YTK_URL_BAD_PORT, NULL },
    { "https://www.youtube.com:443:443/watch?v=" RR, YTK_URL_BAD_PORT, NULL },
    { "https://youtu.be:8080/" RR, YTK_URL_BAD_PORT, NULL },
    { "youtube.com:8080/watch?v=" RR, YTK_URL_BAD_PORT, NULL },
    /* look-alike and foreign hosts */
    { "https://youtube.com.evil.example/watch?v=" RR, YTK_URL_BAD_HOST, NULL },
    { "https://evilyoutube.com/watch?v=" RR, YTK_URL_BAD_HOST, NULL },
    { "https://evil.example/youtube.com/watch?v=" RR, YTK_URL_BAD_HOST, NULL },
    { "evil.example/youtube.com/watch?v=" RR, YTK_URL_BAD_HOST, NULL },
    { "https://youtu.be.evil.example/" RR, YTK_URL_BAD_HOST, NULL },
    { "https://gaming.youtube.com/watch?v=" RR, YTK_URL_BAD_HOST, NULL },
    { "https://www.youtube.com./watch?v=" RR, YTK_URL_BAD_HOST, NULL },
    { "https://www.youtu.be/" RR, YTK_URL_BAD_HOST, NULL },
    { "https://evil.example#@www.youtube.com/watch?v=" RR, YTK_URL_BAD_HOST,
      NULL },
    { "https://evil.example\\@www.youtube.com/watch?v=" RR, YTK_URL_USERINFO,
      NULL },
    { "https://www.youtube.com\\watch?v=" RR, YTK_URL_BAD_HOST, NULL },
    { "https:\\\\www.youtube.com/watch?v=" RR, YTK_URL_BAD_SCHEME, NULL },
    { "https://www%2eyoutube.com/watch?v=" RR, YTK_URL_BAD_HOST, NULL },
    { "https://%77ww.youtube.com/watch?v=" RR, YTK_URL_BAD_HOST, NULL },
    { "https://www.yout\xd1\x83" "be.com/watch?v=" RR, YTK_URL_BAD_HOST, NULL },
    { "https://[::1]/watch?v=" RR, YTK_URL_BAD_HOST, NULL },
    { "https://142.250.0.1/watch?v=" RR, YTK_URL_BAD_HOST, NULL },
    { "https:///www.youtube.com/watch?v=" RR, YTK_URL_BAD_HOST, NULL },
    { "///www.youtube.com/watch?v=" RR, YTK_URL_BAD_HOST, NULL },
    { "/watch?v=" RR, YTK_URL_BAD_HOST, NULL },
    { "?v=" RR, YTK_URL_BAD_HOST, NULL },
    /* YouTube URLs that are not videos */
    { "https://www.youtube.com/", YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com", YTK_URL_NO_VIDEO, NULL },
    { "https://youtu.be", YTK_URL_NO_VIDEO, NULL },
    { "https://youtu.be/", YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/channel/UCSMOQeBJ2RAnuFungnQOxLg",
      YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/playlist?list=PL0123456789", YTK_URL_NO_VIDEO,
      NULL },
    { "https://www.youtube.com/@handle", YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/user/someone", YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/c/someone/videos", YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/results?search_query=x", YTK_URL_NO_VIDEO,
      NULL },
    { "https://www.youtube.com/feed/subscriptions", YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/" RR, YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/?v=" RR, YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/watch", YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/watch?", YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/watch?feature=share", YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/watch#v=" RR, YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/watch?x=1#&v=" RR, YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/watch/?v=" RR, YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/Watch?v=" RR, YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/watch?V=" RR, YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/watch?%76=" RR, YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/embed/videoseries?list=PL1", YTK_URL_NO_VIDEO,
      NULL },
    { "https://www.youtube.com/embed/live_stream?channel=UC1",
      YTK_URL_NO_VIDEO, NULL },
    { "https://youtu.be/videoseries", YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/embed/", YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/shorts/", YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/shorts//" RR, YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/shorts/" RR "/more", YTK_URL_NO_VIDEO, NULL },
    { "https://youtu.be/" RR "/x", YTK_URL_NO_VIDEO, NULL },
    { "https://www.youtube.com/watch_popup?v=" RR, YTK_URL_NO_VIDEO, NULL },
    /* ids of the wrong length or alphabet */
    { "https://www.youtube.com/watch?v=", YTK_URL_BAD_ID, NULL },
    { "https://www.youtube.com/watch?v=dQw4w9WgXc", YTK_URL_BAD_ID, NULL },
    { "https://www.youtube.com/watch?v=" RR "Q", YTK_URL_BAD_ID, NULL },
    { "https://www.youtube.com/watch?v=" RR "-", YTK_URL_BAD_ID, NULL },
    { "https://www.youtube.com/watch?v=" RR "=", YTK_URL_BAD_ID, NULL },
    { "https://www.youtube.com/watch?v=dQw4w9WgX%63Q", YTK_URL_BAD_ID, NULL },
    { "https://www.youtube.com/watch?v=dQw4w9WgX.Q", YTK_URL_BAD_ID, NULL },
    { "https://www.youtube.com/watch?v=dQw4w9WgXc\xef\xbc\xb1",
      YTK_URL_BAD_ID, NULL },
    { "https://www.youtube.com/watch?v=" RR "&v=aaaaaaaaaaa", YTK_URL_BAD_ID,
      NULL },
    { "https://www.youtube.com/watch?v=" RR ";x=1", YTK_URL_BAD_ID, NULL },
    { "https://youtu.be/dQw4w9WgXc", YTK_URL_BAD_ID, NULL },
    { "https://youtu.be/" RR "Q", YTK_URL_BAD_ID, NULL },
    { "https://youtu.be/watch?v=" RR, YTK_URL_BAD_ID, NULL },
    { "https://youtu.be/dQw4w9WgX$Q", YTK_URL_BAD_ID, NULL },
    { "https://www.youtube.com/shorts/" RR "x", YTK_URL_BAD_ID, NULL },
    { "https://www.youtube.com/embed/dQw4w9WgX", YTK_URL_BAD_ID, NULL },
    { "https://www.youtube.com/v/" RR "&hl=en", YTK_URL_BAD_ID, NULL },
    { "https://www.youtube.com/live/" RR "x/", YTK_URL_BAD_ID, NULL },
    { "https://www.youtube.com/watch/" RR, YTK_URL_NO_VIDEO, NULL },
};

static void assert_case(const char *url, size_t len, ytk_url_rc want,
                        const char *want_id, const char *label)
{
    char id[YTK_VIDEO_ID_LEN + 1];
    ytk_url_rc rc;

    memset(id, 'Z', sizeof(id));
    rc = ytk_url_video_id(url, len, id);
    if (rc != want) {
        fail_msg("%s: %.120s: got %s, want %s", label, url, ytk_url_code(rc),
                 ytk_url_code(want));
    }
    if (want == YTK_URL_OK) {
        assert_string_equal(id, want_id);
        assert_true(ytk_video_id_valid(id, strlen(id)));
    }
    else {
        assert_int_equal(id[0], '\0');
    }
}

static void test_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_case(cases[i].url, strlen(cases[i].url), cases[i].rc,
                    cases[i].id, "table");
    }
    print_message("%zu table cases\n", sizeof(cases) / sizeof(cases[0]));
}

/* tests/unit/url_cases.tsv: url, expected id or INVALID, source. */
static void test_tsv(void **state)
{
    const char *srcdir = getenv("srcdir");
    char path[4096], *line = NULL, *tab, *tab2;
    size_t cap = 0, n = 0, nok = 0;
    ssize_t got;
    FILE *f;

    (void)state;
    f = fopen(URL_CASES_TSV, "r");
    if (f == NULL && srcdir) {
        snprintf(path, sizeof(path), "%s/url_cases.tsv", srcdir);
        f = fopen(path, "r");
    }
    assert_non_null(f);
    while ((got = getline(&line, &cap, f)) > 0) {
        char id[YTK_VIDEO_ID_LEN + 1];
        ytk_url_rc rc;

        if (line[got - 1] == '\n') {
            line[--got] = '\0';
        }
        if (n++ == 0) {
            assert_string_equal(line, "url\texpected_video_id_or_INVALID\t"
                                      "source");
            continue;
        }
        tab = strchr(line, '\t');
        assert_non_null(tab);
        *tab = '\0';
        tab2 = strchr(tab + 1, '\t');
        assert_non_null(tab2);
        *tab2 = '\0';
        rc = ytk_url_video_id(line, (size_t)(tab - line), id);
        if (strcmp(tab + 1, "INVALID") == 0) {
            if (rc == YTK_URL_OK) {
                fail_msg("tsv line %zu: %.120s: accepted %s, want INVALID", n,
                         line, id);
            }
            assert_int_equal(id[0], '\0');
        }
        else {
            if (rc != YTK_URL_OK || strcmp(id, tab + 1) != 0) {
                fail_msg("tsv line %zu: %.120s: got %s '%s', want %s", n,
                         line, ytk_url_code(rc), id, tab + 1);
            }
            nok++;
        }
    }
    free(line);
    fclose(f);
    /* guard against an emptied or truncated table */
    assert_true(n > 150);
    assert_true(nok > 60);
    print_message("%zu tsv cases\n", n - 1);
}

static void test_lengths(void **state)
{
    static const char base[] = "https://youtu.be/" RR;
    char *buf = malloc(YTK_URL_MAX_LEN + 2);
    size_t blen = strlen(base);

    (void)state;
    assert_non_null(buf);
    /* padded with trailing spaces to exactly the limit: still fine */
    memcpy(buf, base, blen);
    memset(buf + blen, ' ', YTK_URL_MAX_LEN + 1 - blen);
    assert_case(buf, YTK_URL_MAX_LEN, YTK_URL_OK, RR, "max");
    assert_case(buf, YTK_URL_MAX_LEN + 1, YTK_URL_TOO_LONG, NULL, "max+1");
    /* a long query that ends exactly at the limit */
    memcpy(buf, base, blen);
    buf[blen] = '?';
    memset(buf + blen + 1, 'a', YTK_URL_MAX_LEN - blen - 1);
    assert_case(buf, YTK_URL_MAX_LEN, YTK_URL_OK, RR, "long query");
    memset(buf, ' ', YTK_URL_MAX_LEN + 1);
    assert_case(buf, YTK_URL_MAX_LEN + 1, YTK_URL_TOO_LONG, NULL, "spaces");
    assert_case(buf, YTK_URL_MAX_LEN, YTK_URL_EMPTY, NULL, "spaces");
    free(buf);
}

static void test_nul_and_bounds(void **state)
{
    static const char withnul[] = "https://youtu.be/" RR "\0#x";
    /* exactly the URL's bytes, no terminator: must not read beyond */
    char *exact = malloc(sizeof("https://youtu.be/" RR) - 1);
    char id[YTK_VIDEO_ID_LEN + 1];

    (void)state;
    assert_case(withnul, sizeof(withnul) - 1, YTK_URL_BAD_CHAR, NULL, "nul");
    assert_case("https://youtu.be/" RR "\0", sizeof("https://youtu.be/" RR),
                YTK_URL_BAD_CHAR, NULL, "trailing nul");
    assert_case("\0", 1, YTK_URL_BAD_CHAR, NULL, "only nul");
    assert_case(withnul, strlen(withnul), YTK_URL_OK, RR, "up to nul");
    assert_int_equal(ytk_url_video_id(NULL, 10, id), YTK_URL_EMPTY);
    assert_int_equal(ytk_url_video_id("x", 0, id), YTK_URL_EMPTY);
    /* len shorter than the string: only len bytes count */
    assert_case("https://youtu.be/" RR "Q", strlen("https://youtu.be/" RR),
                YTK_URL_OK, RR, "prefix");
    assert_non_null(exact);
    memcpy(exact, "https://youtu.be/" RR, sizeof("https://youtu.be/" RR) - 1);
    assert_case(exact, sizeof("https://youtu.be/" RR) - 1, YTK_URL_OK, RR,
                "unterminated");
    free(exact);
}

static void test_codes(void **state)
{
    static const char *const want[] = {
        "ok", "empty", "too_long", "bad_char", "bad_scheme", "userinfo",
        "bad_port", "bad_host", "no_video", "bad_id"
    };
    int i, j;

    (void)state;
    for (i = YTK_URL_OK; i <= YTK_URL_BAD_ID; i++) {
        assert_string_equal(ytk_url_code((ytk_url_rc)i), want[i]);
        assert_non_null(ytk_url_strerror((ytk_url_rc)i));
        for (j = 0; j < i; j++) {
            assert_string_not_equal(ytk_url_strerror((ytk_url_rc)i),
                                    ytk_url_strerror((ytk_url_rc)j));
        }
    }
    assert_string_equal(ytk_url_strerror(YTK_URL_BAD_HOST),
                        "not a YouTube host");
    assert_string_equal(ytk_url_code((ytk_url_rc)99), "unknown");
    assert_string_equal(ytk_url_strerror((ytk_url_rc)99), "unknown error");
}

static void test_video_id_valid(void **state)
{
    (void)state;
    assert_true(ytk_video_id_valid(RR, 11));
    assert_true(ytk_video_id_valid("a-_0Z9zA-_x", 11));
    assert_false(ytk_video_id_valid(RR, 10));
    assert_false(ytk_video_id_valid(RR "Q", 12));
    assert_false(ytk_video_id_valid("dQw4w9WgXc!", 11));
    assert_false(ytk_video_id_valid("dQw4w9WgXc=", 11));
    assert_false(ytk_video_id_valid("dQw4 9WgXcQ", 11));
    assert_false(ytk_video_id_valid("dQw4\0" "9WgXcQ", 11));
    assert_false(ytk_video_id_valid(NULL, 11));
    assert_false(ytk_video_id_valid("", 0));
}

static void test_canonical_url(void **state)
{
    char buf[64];

    (void)state;
    ytk_canonical_url(RR, buf, sizeof(buf));
    assert_string_equal(buf, "https://www.youtube.com/watch?v=" RR);
    assert_int_equal(strlen(buf), 43);
    ytk_canonical_url(RR, buf, 44);
    assert_string_equal(buf, "https://www.youtube.com/watch?v=" RR);
    memset(buf, 'x', sizeof(buf));
    ytk_canonical_url(RR, buf, 43);
    assert_string_equal(buf, "");
    memset(buf, 'x', sizeof(buf));
    ytk_canonical_url("short", buf, sizeof(buf));
    assert_string_equal(buf, "");
    ytk_canonical_url("<script>xx>", buf, sizeof(buf));
    assert_string_equal(buf, "");
    ytk_canonical_url(NULL, buf, sizeof(buf));
    assert_string_equal(buf, "");
    ytk_canonical_url(RR, NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_tsv),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_nul_and_bounds),
        cmocka_unit_test(test_codes),
        cmocka_unit_test(test_video_id_valid),
        cmocka_unit_test(test_canonical_url),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
