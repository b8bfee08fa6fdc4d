/* Unit tests for consumer/ytc_breaker: the failure classifier, the outage
 * breaker and the clamped backoff. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ytc_breaker.h"

#define SEC 1000000LL

static void test_one_video_failing_does_not_open(void **state)
{
    ytc_breaker b;
    int i;

    (void)state;
    ytc_breaker_init(&b, "youtube", 3, 2, 1000, 30000);
    for (i = 0; i < 10; i++) {
        assert_int_equal(ytc_breaker_failure(&b, "aaaaaaaaaaa", i * SEC), 0);
    }
    assert_false(b.open);
    assert_int_equal(ytc_breaker_wait_ms(&b, 0), -1);
}

static void test_different_videos_open_once(void **state)
{
    ytc_breaker b;

    (void)state;
    ytc_breaker_init(&b, "youtube", 3, 2, 1000, 30000);
    assert_int_equal(ytc_breaker_failure(&b, "aaaaaaaaaaa", 0), 0);
    assert_int_equal(ytc_breaker_failure(&b, "bbbbbbbbbbb", 0), 0);
    assert_int_equal(ytc_breaker_failure(&b, "aaaaaaaaaaa", 0), 1);
    assert_true(b.open);
    /* further failures do not open it again: one log line */
    assert_int_equal(ytc_breaker_failure(&b, "ccccccccccc", 0), 0);
    assert_true(b.open);
}

static void test_success_resets_streak(void **state)
{
    ytc_breaker b;

    (void)state;
    ytc_breaker_init(&b, "youtube", 3, 2, 1000, 30000);
    ytc_breaker_failure(&b, "aaaaaaaaaaa", 0);
    ytc_breaker_failure(&b, "bbbbbbbbbbb", 0);
    assert_int_equal(ytc_breaker_success(&b), 0);
    assert_int_equal(ytc_breaker_failure(&b, "ccccccccccc", 0), 0);
    assert_int_equal(ytc_breaker_failure(&b, "ddddddddddd", 0), 0);
    assert_false(b.open);
}

static void test_probe_backoff_capped_and_closes(void **state)
{
    ytc_breaker b;
    int64_t now = 0;
    long expect[] = { 2000, 4000, 8000, 16000, 30000, 30000 };
    int i;

    (void)state;
    ytc_breaker_init(&b, "youtube", 1, 1, 1000, 30000);
    assert_int_equal(ytc_breaker_failure(&b, NULL, now), 1);
    assert_false(ytc_breaker_probe_ready(&b, now));
    assert_int_equal(ytc_breaker_wait_ms(&b, now), 1001);
    assert_true(ytc_breaker_probe_ready(&b, now + SEC));
    for (i = 0; i < 6; i++) {
        now = b.probe_due;
        assert_true(ytc_breaker_probe_ready(&b, now));
        b.probing = 1;
        assert_false(ytc_breaker_probe_ready(&b, now));
        ytc_breaker_failure(&b, NULL, now);
        assert_int_equal(b.probe_ms, expect[i]);
        assert_true(b.probe_due == now + (int64_t)expect[i] * 1000);
    }
    assert_int_equal(ytc_breaker_success(&b), 1);
    assert_false(b.open);
    assert_int_equal(ytc_breaker_success(&b), 0);
}

static ytc_http_answer answer(long status)
{
    ytc_http_answer a;

    memset(&a, 0, sizeof(a));
    a.status = status;
    return a;
}

static void test_classifier(void **state)
{
    ytc_http_answer ok = answer(200), refused = answer(0), s503 = answer(503),
                    s429 = answer(429), s404 = answer(404);

    (void)state;
    assert_true(ytc_failure_is_infra(YTC_OUT_TRANSIENT, &refused, &refused));
    assert_true(ytc_failure_is_infra(YTC_OUT_TRANSIENT, &s503, &ok));
    assert_true(ytc_failure_is_infra(YTC_OUT_TRANSIENT, &ok, &s503));
    assert_true(ytc_failure_is_infra(YTC_OUT_TRANSIENT, &s429, &ok));
    /* a transient answer of the video itself (bot check page): not infra */
    assert_false(ytc_failure_is_infra(YTC_OUT_TRANSIENT, &ok, &ok));
    /* definitive answers never are */
    assert_false(ytc_failure_is_infra(YTC_OUT_UNAVAILABLE, &s404, &s404));
    assert_false(ytc_failure_is_infra(YTC_OUT_ERROR, &s503, &s503));
    assert_false(ytc_failure_is_infra(YTC_OUT_OK, &ok, &ok));
}

/* which endpoint failed, and so what a check asks for */
static void test_check_asks_for_what_failed(void **state)
{
    ytc_http_answer ok = answer(200), refused = answer(0), s503 = answer(503),
                    s429 = answer(429), s404 = answer(404);

    (void)state;
    assert_int_equal(ytc_failure_where(&ok, &ok), 0);
    assert_int_equal(ytc_failure_where(&s404, &s404), 0);
    assert_int_equal(ytc_failure_where(&s503, &ok), YTC_FAILED_WATCH);
    assert_int_equal(ytc_failure_where(&s429, &s404), YTC_FAILED_WATCH);
    assert_int_equal(ytc_failure_where(&ok, &s503), YTC_FAILED_OEMBED);
    assert_int_equal(ytc_failure_where(&ok, &refused), YTC_FAILED_OEMBED);
    assert_int_equal(ytc_failure_where(&refused, &s503),
                     YTC_FAILED_WATCH | YTC_FAILED_OEMBED);
    assert_int_equal(ytc_failure_where(NULL, &s503), YTC_FAILED_OEMBED);

    /* the job's own last failure decides */
    assert_true(ytc_check_asks_oembed(YTC_FAILED_OEMBED, 0));
    assert_true(ytc_check_asks_oembed(YTC_FAILED_OEMBED, YTC_FAILED_WATCH));
    assert_false(ytc_check_asks_oembed(YTC_FAILED_WATCH, YTC_FAILED_OEMBED));
    assert_false(ytc_check_asks_oembed(YTC_FAILED_WATCH | YTC_FAILED_OEMBED,
                                       YTC_FAILED_OEMBED));
    /* a job that never failed: the last failure YouTube's breaker counted */
    assert_true(ytc_check_asks_oembed(0, YTC_FAILED_OEMBED));
    assert_false(ytc_check_asks_oembed(0, YTC_FAILED_WATCH));
    /* nothing known: the watch page, as before */
    assert_false(ytc_check_asks_oembed(0, 0));
}

/* the check sent alongside a retry: YouTube's own answer decides */
static void test_check_verdict(void **state)
{
    ytc_http_answer a;

    (void)state;
    memset(&a, 0, sizeof(a));
    assert_false(ytc_check_says_up(NULL));
    assert_false(ytc_check_says_up(&a));        /* refused, DNS, timeout */
    a.status = 503;
    assert_false(ytc_check_says_up(&a));
    a.status = 500;
    assert_false(ytc_check_says_up(&a));
    a.status = 429;                             /* YouTube limits us all */
    assert_false(ytc_check_says_up(&a));
    a.status = 200;
    assert_true(ytc_check_says_up(&a));
    a.status = 302;                             /* a consent redirect */
    assert_true(ytc_check_says_up(&a));
    a.status = 404;
    assert_true(ytc_check_says_up(&a));
}

/* a check asks about another video that got a real answer, never about
 * the failing one itself (a video that turns 500 would look like an
 * outage), and about YouTube as a whole when none is known */
static void test_check_key(void **state)
{
    ytc_breaker b;

    (void)state;
    ytc_breaker_init(&b, "youtube", 3, 2, 1000, 30000);
    assert_null(ytc_breaker_check_key(&b, "aaaaaaaaaaa"));
    ytc_breaker_answered(&b, "bbbbbbbbbbb");
    assert_string_equal(ytc_breaker_check_key(&b, "aaaaaaaaaaa"),
                        "bbbbbbbbbbb");
    assert_null(ytc_breaker_check_key(&b, "bbbbbbbbbbb"));
    /* a failure streak or an outage does not forget it */
    ytc_breaker_failure(&b, "aaaaaaaaaaa", 0);
    ytc_breaker_trip(&b, 0);
    ytc_breaker_success(&b);
    assert_string_equal(ytc_breaker_check_key(&b, "aaaaaaaaaaa"),
                        "bbbbbbbbbbb");
    ytc_breaker_answered(&b, "aaaaaaaaaaa");
    assert_null(ytc_breaker_check_key(&b, "aaaaaaaaaaa"));
    assert_string_equal(ytc_breaker_check_key(&b, "ccccccccccc"),
                        "aaaaaaaaaaa");
}

/* one video in flight: its failure checked, the check failing too, opens
 * the breaker at once (a lone link during an outage is held); a probe
 * whose video fails while YouTube answers the check closes it */
static void test_lone_video_failed_check_trips(void **state)
{
    ytc_breaker b;
    ytc_http_answer refused, s503, home;

    (void)state;
    memset(&refused, 0, sizeof(refused));
    s503 = refused;
    s503.status = 503;
    home = refused;
    home.status = 200;
    ytc_breaker_init(&b, "youtube", 3, 2, 1000, 30000);
    /* first attempt: no check, one key cannot open it */
    assert_int_equal(ytc_breaker_checked_failure(&b, "aaaaaaaaaaa", NULL, 0),
                     YTC_BREAKER_COUNTED);
    assert_false(b.open);
    /* the retry and its check: both refused */
    assert_int_equal(ytc_breaker_checked_failure(&b, "aaaaaaaaaaa",
                                                 &refused, SEC),
                     YTC_BREAKER_OPENED);
    assert_true(b.open);
    assert_int_equal(ytc_breaker_wait_ms(&b, SEC), 1001);
    /* a probe, its check 503: still out, one "outage" only, delay doubled */
    assert_int_equal(ytc_breaker_checked_failure(&b, "aaaaaaaaaaa", &s503,
                                                 3 * SEC),
                     YTC_BREAKER_COUNTED);
    assert_true(b.open);
    assert_int_equal(b.probe_ms, 2000);
    assert_int_equal(ytc_breaker_trip(&b, 3 * SEC), 0);
    /* the video still fails but YouTube answers: its own failure */
    assert_int_equal(ytc_breaker_checked_failure(&b, "aaaaaaaaaaa", &home,
                                                 5 * SEC),
                     YTC_BREAKER_OWN_CLOSED);
    assert_false(b.open);
    assert_int_equal(b.streak, 0);
}

/* two videos failing while YouTube answers the checks (a 500-forever and a
 * 429-once video among good ones), in any order of the answers: the loop
 * checks every failure after a video's first, so the breaker never opens */
static void test_checked_failures_never_open(void **state)
{
    static const char *const order[][4] = {
        { "aaaaaaaaaaa", "bbbbbbbbbbb", "aaaaaaaaaaa", "bbbbbbbbbbb" },
        { "aaaaaaaaaaa", "aaaaaaaaaaa", "bbbbbbbbbbb", "bbbbbbbbbbb" },
        { "bbbbbbbbbbb", "aaaaaaaaaaa", "aaaaaaaaaaa", "aaaaaaaaaaa" },
    };
    ytc_breaker b;
    ytc_http_answer home;
    int o, i, seen_a, seen_b;

    (void)state;
    memset(&home, 0, sizeof(home));
    home.status = 200;
    for (o = 0; o < 3; o++) {
        ytc_breaker_init(&b, "youtube", 3, 2, 1000, 30000);
        seen_a = seen_b = 0;
        for (i = 0; i < 4; i++) {
            int *seen = order[o][i][0] == 'a' ? &seen_a : &seen_b;
            ytc_breaker_verdict v;

            v = ytc_breaker_checked_failure(&b, order[o][i],
                                            *seen ? &home : NULL, i * SEC);
            assert_int_equal(v, *seen ? YTC_BREAKER_OWN
                                      : YTC_BREAKER_COUNTED);
            assert_false(b.open);
            /* a checked failure's video is unchecked next time (not last) */
            *seen = !*seen;
        }
    }
    /* the same answers unchecked: the old rule opens on the third */
    ytc_breaker_init(&b, "youtube", 3, 2, 1000, 30000);
    assert_int_equal(ytc_breaker_checked_failure(&b, "aaaaaaaaaaa", NULL, 0),
                     YTC_BREAKER_COUNTED);
    assert_int_equal(ytc_breaker_checked_failure(&b, "bbbbbbbbbbb", NULL, 0),
                     YTC_BREAKER_COUNTED);
    assert_int_equal(ytc_breaker_checked_failure(&b, "aaaaaaaaaaa", NULL, 0),
                     YTC_BREAKER_OPENED);
}

static void test_backoff_clamped(void **state)
{
    unsigned int r;

    (void)state;
    for (r = 0; r < 1000; r += 37) {
        long d;
        /* huge Retry-After: clamped to the cap, no overflow */
        d = ytc_backoff_delay_ms(500, 60000, 1, LONG_MAX, r);
        assert_true(d >= 60000 && d < 60250);
        d = ytc_backoff_delay_ms(500, 60000, 1, 9223372036854775807L, r);
        assert_true(d >= 60000 && d < 60250);
        d = ytc_backoff_delay_ms(500, 60000, 1, 2, r);
        assert_true(d >= 2000 && d < 2250);
        d = ytc_backoff_delay_ms(500, 60000, 1, 0, r);
        assert_true(d >= 0 && d < 250);
        /* exponential with equal jitter, capped */
        d = ytc_backoff_delay_ms(500, 60000, 1, -1, r);
        assert_true(d >= 250 && d <= 500);
        d = ytc_backoff_delay_ms(500, 60000, 3, -1, r);
        assert_true(d >= 1000 && d <= 2000);
        d = ytc_backoff_delay_ms(500, 60000, INT_MAX, -1, r);
        assert_true(d >= 30000 && d <= 60000);
        d = ytc_backoff_delay_ms(LONG_MAX, LONG_MAX, 40, -1, r);
        assert_true(d > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_video_failing_does_not_open),
        cmocka_unit_test(test_different_videos_open_once),
        cmocka_unit_test(test_success_resets_streak),
        cmocka_unit_test(test_probe_backoff_capped_and_closes),
        cmocka_unit_test(test_classifier),
        cmocka_unit_test(test_check_asks_for_what_failed),
        cmocka_unit_test(test_check_verdict),
        cmocka_unit_test(test_check_key),
        cmocka_unit_test(test_lone_video_failed_check_trips),
        cmocka_unit_test(test_checked_failures_never_open),
        cmocka_unit_test(test_backoff_clamped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
