/* Unit tests for consumer/ytc_meta: the extractor on generated fixtures,
 * hostile pages, HTTP statuses, and the output record (the failure
 * classifier and Retry-After: test_answer.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ytc_fetch_limits.h"
#include "ytc_meta.h"
#include "ytc_record.h"

/* the id of ytfixtures.py's sample video (video_id(0)) */
#define FIXTURE_ID "qdXetQ6JvBa"

static char *slurp_from(const char *dir, const char *name, size_t *len)
{
    char path[1024];
    FILE *fp;
    char *buf;
    long n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    assert_true(n > 0);
    rewind(fp);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static char *slurp(const char *name, size_t *len)
{
    return slurp_from(FIXTURE_DIR, name, len);
}

static ytc_http_answer answer(long status, char *body, size_t len)
{
    ytc_http_answer a;

    memset(&a, 0, sizeof(a));
    a.status = status;
    a.body = body;
    a.len = len;
    a.retry_after = -1;
    return a;
}

typedef struct {
    ytc_outcome out;
    json_object *result;
    char reason[600];
    long retry_after;
    ytc_row row;
} run_t;

static void run_answers(run_t *r, const char *vid, ytc_http_answer *w,
                        ytc_http_answer *o)
{
    memset(r, 0, sizeof(*r));
    r->out = ytc_meta_extract_row(vid, w, o, &r->result, r->reason,
                                  sizeof(r->reason), &r->retry_after,
                                  &r->row);
}

static void run_fixture(run_t *r, const char *kind, const char *vid)
{
    char name[64];
    ytc_http_answer w, o;
    size_t wl, ol;
    char *wb, *ob;

    snprintf(name, sizeof(name), "watch-%s.html", kind);
    wb = slurp(name, &wl);
    ob = slurp("oembed-ok.json", &ol);
    w = answer(200, wb, wl);
    o = answer(200, ob, ol);
    run_answers(r, vid, &w, &o);
    free(wb);
    free(ob);
}

static const char *rstr(json_object *r, const char *k)
{
    json_object *v;

    if (!json_object_object_get_ex(r, k, &v) || !v) {
        return NULL;
    }
    return json_object_get_string(v);
}

static void test_fixture_ok(void **state)
{
    static const char *const kinds[] = { "ok", "tricky", "cipher" };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        run_t r;
        json_object *v;
        run_fixture(&r, kinds[i], FIXTURE_ID);
        assert_int_equal(r.out, YTC_OUT_OK);
        assert_non_null(r.result);
        assert_string_equal(rstr(r.result, "video_id"), FIXTURE_ID);
        assert_string_equal(rstr(r.result, "status"), "ok");
        assert_string_equal(rstr(r.result, "channel_id"),
                            "UC1jGd1SZyE_N60rhO4v1LRD");
        assert_true(json_object_object_get_ex(r.result, "duration_seconds",
                                              &v));
        assert_int_equal(json_object_get_int64(v), 1629);
        assert_true(json_object_object_get_ex(r.result, "formats", &v));
        assert_true(json_object_array_length(v) > 0);
        /* the row's columns: the record's own values */
        assert_string_equal(r.row.status, "ok");
        assert_ptr_equal(r.row.title, rstr(r.result, "title"));
        assert_ptr_equal(r.row.author_name, rstr(r.result, "author_name"));
        assert_string_equal(r.row.channel_id, "UC1jGd1SZyE_N60rhO4v1LRD");
        assert_int_equal(r.row.duration_seconds, 1629);
        assert_true(json_object_object_get_ex(r.result, "view_count", &v));
        assert_int_equal(r.row.view_count, json_object_get_int64(v));
        assert_ptr_equal(r.row.publish_date, rstr(r.result, "publish_date"));
        json_object_put(r.result);
    }
}

static void test_fixture_unavailable(void **state)
{
    static const struct { const char *kind, *reason; } cases[] = {
        { "private", "Private video" },
        { "age", "Sign in to confirm your age" },
        { "unplayable", "This live stream recording is not available." },
        { "unavailable", "Video unavailable" },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_t r;
        run_fixture(&r, cases[i].kind, FIXTURE_ID);
        assert_int_equal(r.out, YTC_OUT_UNAVAILABLE);
        assert_string_equal(rstr(r.result, "status"), "unavailable");
        assert_string_equal(r.reason, cases[i].reason);
        json_object_put(r.result);
    }
}

static void test_fixture_transient(void **state)
{
    run_t r;

    (void)state;
    run_fixture(&r, "bot", FIXTURE_ID);
    assert_int_equal(r.out, YTC_OUT_TRANSIENT);
    assert_non_null(strstr(r.reason, "bot check"));
    run_fixture(&r, "consent", FIXTURE_ID);
    assert_int_equal(r.out, YTC_OUT_TRANSIENT);
    assert_non_null(strstr(r.reason, "consent"));
    run_fixture(&r, "wrong", FIXTURE_ID);
    assert_int_equal(r.out, YTC_OUT_TRANSIENT);
    assert_non_null(strstr(r.reason, "answer is for video"));
    assert_null(r.result);
}

/* a page of one unit repeated: `ytInitialPlayerResponse={` + a comment
 * opener was quadratic; strings that never close each hide the next
 * assignment. Both must stay one pass: at most YTC_PR_MAX_ATTEMPTS tries. */
static void test_hostile_repetitions(void **state)
{
    static const struct {
        const char *unit;
        size_t bytes;
        int extract;    /* also through ytc_meta_extract: an error row */
    } cases[] = {
        { "ytInitialPlayerResponse={/*", 800000, 1 },
        { "ytInitialPlayerResponse={\"a\":\"x ", 20000 * 32, 0 },
    };
    size_t c;

    (void)state;
    for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t ul = strlen(cases[c].unit), n = cases[c].bytes / ul, i;
        size_t len = n * ul;
        char *page = malloc(len + 1);
        ytc_http_answer w, o;
        ytc_pr_status st;
        run_t r;

        assert_non_null(page);
        for (i = 0; i < n; i++) {
            memcpy(page + i * ul, cases[c].unit, ul);
        }
        page[len] = '\0';
        assert_null(ytc_meta_player_response_ex(page, len, &st));
        assert_int_equal(st, YTC_PR_TOO_MANY);
        if (cases[c].extract) {
            w = answer(200, page, len);
            o = answer(404, NULL, 0);
            run_answers(&r, FIXTURE_ID, &w, &o);
            assert_int_equal(r.out, YTC_OUT_ERROR);
            assert_non_null(strstr(r.reason, "none parses"));
            assert_string_equal(r.row.status, "error");
            assert_null(r.result);
        }
        free(page);
    }
}

static void test_hostile_deep(void **state)
{
    char page[4096];
    size_t used;
    ytc_pr_status st;
    int i;

    (void)state;
    used = (size_t)snprintf(page, sizeof(page),
                            "var ytInitialPlayerResponse = {\"a\":");
    for (i = 0; i < 1000; i++) {
        page[used++] = '[';
    }
    page[used] = '\0';
    assert_null(ytc_meta_player_response_ex(page, used, &st));
    assert_int_equal(st, YTC_PR_TOO_DEEP);
}

static void test_hostile_large(void **state)
{
    size_t len = YTC_PR_MAX_BYTES + 4096, used;
    char *page = malloc(len + 1);
    ytc_http_answer w;
    ytc_pr_status st;
    run_t r;

    (void)state;
    assert_non_null(page);
    /* one string longer than the cap: few values, many bytes */
    used = (size_t)sprintf(page, "var ytInitialPlayerResponse = {\"a\":\"");
    memset(page + used, 'x', len - used);
    used = len;
    page[used] = '\0';
    assert_null(ytc_meta_player_response_ex(page, used, &st));
    assert_int_equal(st, YTC_PR_TOO_LARGE);
    w = answer(200, page, used);
    run_answers(&r, FIXTURE_ID, &w, NULL);
    assert_int_equal(r.out, YTC_OUT_ERROR);
    assert_non_null(strstr(r.reason, "larger than"));
    free(page);
}

static void test_hostile_values(void **state)
{
    /* under the byte cap, but an array of ~3 million zeros: refused by
     * the pre-scan before json-c allocates ~70 bytes per value */
    size_t len = YTC_PR_MAX_BYTES - 4096, used;
    char *page = malloc(len + 16);
    ytc_http_answer w;
    ytc_pr_status st;
    run_t r;

    (void)state;
    assert_non_null(page);
    used = (size_t)sprintf(page, "var ytInitialPlayerResponse = "
                           "{\"playabilityStatus\":{},\"a\":[");
    while (used + 2 <= len) {
        page[used++] = '0';
        page[used++] = ',';
    }
    used += (size_t)sprintf(page + used, "0]};");
    assert_null(ytc_meta_player_response_ex(page, used, &st));
    assert_int_equal(st, YTC_PR_TOO_MANY_VALUES);
    w = answer(200, page, used);
    run_answers(&r, FIXTURE_ID, &w, NULL);
    assert_int_equal(r.out, YTC_OUT_ERROR);
    assert_non_null(strstr(r.reason, "holds more than 262144 values"));
    free(page);
}

static void test_values_under_cap(void **state)
{
    /* the same shape with a few thousand values parses: the cap is far
     * above a real player response */
    size_t cap = 64 * 1024, used, i;
    char *page = malloc(cap);
    json_object *pr;
    ytc_pr_status st;

    (void)state;
    assert_non_null(page);
    used = (size_t)sprintf(page, "var ytInitialPlayerResponse = "
                           "{\"playabilityStatus\":{},\"a\":[");
    for (i = 0; i < 5000; i++) {
        page[used++] = '0';
        page[used++] = ',';
    }
    used += (size_t)sprintf(page + used, "0],\"s\":\"[,,{\\\"\"};");
    pr = ytc_meta_player_response_ex(page, used, &st);
    assert_non_null(pr);
    assert_int_equal(st, YTC_PR_FOUND);
    json_object_put(pr);
    free(page);
}

static void test_loose_json_refused(void **state)
{
    static const char page[] =
        "var ytInitialPlayerResponse = {/* c */\"videoDetails\":{}};";
    ytc_pr_status st;

    (void)state;
    assert_null(ytc_meta_player_response_ex(page, sizeof(page) - 1, &st));
    assert_int_equal(st, YTC_PR_NONE);
}

/* the extractor's verdict on each HTTP status of the watch page (the
 * oEmbed answer a 404); a definitive 404/410 is an `unavailable` row */
static void test_http_statuses(void **state)
{
    static const struct {
        long status;
        long retry_after;       /* the answer's, -1 for none */
        ytc_outcome out;
        const char *reason;
        long want_retry;        /* what the extractor reports */
    } cases[] = {
        { 404, -1, YTC_OUT_UNAVAILABLE, "HTTP 404 not found", -1 },
        { 410, -1, YTC_OUT_UNAVAILABLE, "HTTP 410 not found", -1 },
        { 429, 30, YTC_OUT_TRANSIENT, "HTTP 429 rate limited", 30 },
        { 429, 9223372036854775807L, YTC_OUT_TRANSIENT, "429",
          YTC_RETRY_AFTER_MAX },
        { 429, -7, YTC_OUT_TRANSIENT, "429", -1 },
        { 503, 5, YTC_OUT_TRANSIENT, "HTTP 503", 5 },
        { 500, -1, YTC_OUT_TRANSIENT, "HTTP 500", -1 },
        { 408, -1, YTC_OUT_TRANSIENT, "HTTP 408", -1 },
        { 403, -1, YTC_OUT_TRANSIENT, "HTTP 403", -1 },
        { 302, -1, YTC_OUT_TRANSIENT, "redirect", -1 },
        { 400, -1, YTC_OUT_ERROR, "HTTP 400", -1 },
        { 451, -1, YTC_OUT_ERROR, "HTTP 451", -1 },
    };
    ytc_http_answer w, o;
    size_t i;
    run_t r;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        w = answer(cases[i].status, NULL, 0);
        w.retry_after = cases[i].retry_after;
        o = answer(404, NULL, 0);
        run_answers(&r, FIXTURE_ID, &w, &o);
        assert_int_equal(r.out, cases[i].out);
        assert_non_null(strstr(r.reason, cases[i].reason));
        assert_int_equal(r.retry_after, cases[i].want_retry);
        assert_string_equal(r.row.video_id, FIXTURE_ID);
        assert_null(r.row.title);
        assert_int_equal(r.row.duration_seconds, -1);
        if (cases[i].out == YTC_OUT_UNAVAILABLE) {
            assert_non_null(r.result);
            assert_string_equal(rstr(r.result, "status"), "unavailable");
            assert_string_equal(r.row.status, "unavailable");
            json_object_put(r.result);
        }
        else {
            assert_null(r.result);
            assert_string_equal(r.row.status, "error");
        }
    }
    /* the oEmbed answer's 429 and its Retry-After, clamped, decide too */
    w = answer(200, "<html></html>", 13);
    o = answer(429, NULL, 0);
    o.retry_after = 100000;
    run_answers(&r, FIXTURE_ID, &w, &o);
    assert_int_equal(r.out, YTC_OUT_TRANSIENT);
    assert_int_equal(r.retry_after, YTC_RETRY_AFTER_MAX);

    w = answer(0, NULL, 0);
    w.transport = YTC_TRANSPORT_TOO_LARGE;
    run_answers(&r, FIXTURE_ID, &w, NULL);
    assert_int_equal(r.out, YTC_OUT_ERROR);
    assert_non_null(strstr(r.reason, "body larger than"));

    w = answer(0, NULL, 0);
    w.transport = YTC_TRANSPORT_NETWORK;
    snprintf(w.error, sizeof(w.error), "Couldn't connect to server");
    run_answers(&r, FIXTURE_ID, &w, NULL);
    assert_int_equal(r.out, YTC_OUT_TRANSIENT);
    assert_non_null(strstr(r.reason, "Couldn't connect"));
}

/* the captured answers of tests/fixtures/youtube: outcome, reason, and
 * the row's columns as the extractor filled them, equal to the record's */
static void test_captured(void **state)
{
    static const struct {
        const char *file, *id;
        int oembed;
        ytc_outcome out;
        const char *reason, *title, *channel_id, *publish_date;
        int64_t duration, views;
        size_t formats;
    } cases[] = {
        { "watch-ok.html", "QRS8MkLhQmM", 1, YTC_OUT_OK, "",
          "YouTube Captions and Subtitles", "UCBR8-60-B28hp2BmDPdntcQ",
          "2008-09-22", 97, 1739256, 5 },
        { "watch-ok-tricky.html", "QRS8MkLhQmM", 1, YTC_OUT_OK, "",
          "Captions {and} Subtitles }; test", "UCBR8-60-B28hp2BmDPdntcQ",
          "2008-09-22", 97, 1739256, 5 },
        { "watch-ok-signaturecipher.html", "WXxV9g7lsFE", 1, YTC_OUT_OK, "",
          "Replay (Prequel) [Music Video] - Iyaz", "UCXPjxIofFid9z2JlKT6Jb3w",
          "2009-10-18", 197, 215449623, 3 },
        { "watch-unplayable.html", "5YceQ8YqYMc", 0, YTC_OUT_UNAVAILABLE,
          "This live stream recording is not available.",
          "Vatican Media Live", "UC7E-LYc1wivk33iyt5bR5zQ", "2019-10-31",
          14571615, 6318998, 0 },
        { "watch-private.html", "m8uHb5jIGN8", 0, YTC_OUT_UNAVAILABLE,
          "Private video", NULL, NULL, NULL, -1, -1, 0 },
        { "watch-age-restricted.html", "irauhITDrsE", 0, YTC_OUT_UNAVAILABLE,
          "Sign in to confirm your age", "THE MOST AGE RESTRICTED VIDEO EVER",
          "UCyuj5evMBVwyGrqfoKegmBw", "2016-12-29", 405, 714918, 0 },
        { "watch-unavailable.html", "N_708QY7Ob0", 0, YTC_OUT_UNAVAILABLE,
          "Video unavailable", NULL, NULL, NULL, -1, -1, 0 },
        { "watch-bot-check.html", "BaW_jenozKc", 1, YTC_OUT_TRANSIENT,
          "watch page: bot check: ", NULL, NULL, NULL, -1, -1, 0 },
        { "watch-consent.html", FIXTURE_ID, 0, YTC_OUT_TRANSIENT,
          "watch page: consent interstitial", NULL, NULL, NULL, -1, -1, 0 },
        /* the right page, asked for as another video */
        { "watch-ok.html", FIXTURE_ID, 1, YTC_OUT_TRANSIENT,
          "watch page: answer is for video QRS8MkLhQmM", NULL, NULL, NULL,
          -1, -1, 0 },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ytc_http_answer w, o;
        size_t wl, ol = 0;
        char *wb = slurp_from(CAPTURED_DIR, cases[i].file, &wl);
        char *ob = cases[i].oembed
            ? slurp_from(CAPTURED_DIR, "oembed-ok.json", &ol) : NULL;
        json_object *v;
        run_t r;

        w = answer(200, wb, wl);
        o = ob ? answer(200, ob, ol) : answer(404, NULL, 0);
        run_answers(&r, cases[i].id, &w, &o);
        assert_int_equal(r.out, cases[i].out);
        assert_int_equal(strncmp(r.reason, cases[i].reason,
                                 strlen(cases[i].reason)), 0);
        assert_ptr_equal(r.row.video_id, cases[i].id);
        assert_string_equal(r.row.status, cases[i].out == YTC_OUT_OK ? "ok"
                            : cases[i].out == YTC_OUT_UNAVAILABLE
                            ? "unavailable" : "error");
        if (cases[i].out == YTC_OUT_TRANSIENT) {
            assert_null(r.result);
        }
        else {
            assert_string_equal(rstr(r.result, "status"), r.row.status);
            assert_true(json_object_object_get_ex(r.result, "formats", &v));
            assert_int_equal(json_object_array_length(v), cases[i].formats);
        }
#define COL(name, want) do { \
            if (want) { \
                assert_string_equal(r.row.name, want); \
                assert_string_equal(rstr(r.result, #name), want); \
            } \
            else { \
                assert_null(r.row.name); \
            } \
        } while (0)
        COL(title, cases[i].title);
        COL(channel_id, cases[i].channel_id);
        COL(publish_date, cases[i].publish_date);
#undef COL
        if (cases[i].oembed && cases[i].out == YTC_OUT_OK) {
            assert_string_equal(r.row.author_name, "Rick Astley");
        }
        assert_int_equal(r.row.duration_seconds, cases[i].duration);
        assert_int_equal(r.row.view_count, cases[i].views);
        json_object_put(r.result);
        free(wb);
        free(ob);
    }
}

/* the one record both live output and --parse-watch print */
static void test_record(void **state)
{
    static const char *const order[] = {
        "video_id", "status", "url", "error", "attempts", "fetched_at",
        "source"
    };
    ytc_source src = { "links", 3, 42 };
    json_object *rec, *v;
    size_t len, i = 0;
    const char *text;
    ytc_row row;

    (void)state;
    /* no result (an error): made here */
    rec = ytc_record_make(NULL, FIXTURE_ID, YTC_OUT_ERROR, "boom", 2,
                          "2026-01-01T00:00:00.000Z", &src);
    json_object_object_foreach(rec, key, val) {
        (void)val;
        assert_true(i < sizeof(order) / sizeof(order[0]));
        assert_string_equal(key, order[i++]);
    }
    assert_int_equal(i, sizeof(order) / sizeof(order[0]));
    text = ytc_record_text(rec, &len);
    assert_string_equal(text, "{\"video_id\":\"" FIXTURE_ID "\","
        "\"status\":\"error\","
        "\"url\":\"https://www.youtube.com/watch?v=" FIXTURE_ID "\","
        "\"error\":\"boom\",\"attempts\":2,"
        "\"fetched_at\":\"2026-01-01T00:00:00.000Z\","
        "\"source\":{\"topic\":\"links\",\"partition\":3,\"offset\":42}}");
    assert_int_equal(len, strlen(text));
    /* made again on its own record (a row retried): replaced in place */
    rec = ytc_record_make(rec, FIXTURE_ID, YTC_OUT_ERROR, "boom", 3,
                          "2026-01-01T00:00:01.000Z", NULL);
    assert_true(json_object_object_get_ex(rec, "attempts", &v));
    assert_int_equal(json_object_get_int(v), 3);
    assert_true(json_object_object_get_ex(rec, "source", &v));
    assert_null(v);
    assert_int_equal(json_object_object_length(rec), 7);
    json_object_put(rec);

    /* unavailable: the reason as "reason"; the row's strings are the
     * record's own */
    rec = json_object_new_object();
    json_object_object_add(rec, "status", json_object_new_string("x"));
    ytc_meta_row_init(&row, FIXTURE_ID, YTC_OUT_UNAVAILABLE);
    assert_string_equal(row.status, "unavailable");
    assert_null(row.title);
    assert_int_equal(row.view_count, -1);
    rec = ytc_record_make(rec, FIXTURE_ID, YTC_OUT_UNAVAILABLE, "gone", 1,
                          "t", NULL);
    assert_string_equal(rstr(rec, "reason"), "gone");
    assert_false(json_object_object_get_ex(rec, "error", &v));
    json_object_put(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_ok),
        cmocka_unit_test(test_fixture_unavailable),
        cmocka_unit_test(test_fixture_transient),
        cmocka_unit_test(test_hostile_repetitions),
        cmocka_unit_test(test_hostile_deep),
        cmocka_unit_test(test_hostile_large),
        cmocka_unit_test(test_hostile_values),
        cmocka_unit_test(test_values_under_cap),
        cmocka_unit_test(test_loose_json_refused),
        cmocka_unit_test(test_http_statuses),
        cmocka_unit_test(test_captured),
        cmocka_unit_test(test_record),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
