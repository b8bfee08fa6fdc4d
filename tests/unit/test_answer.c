/* Unit tests for consumer/ytc_answer.c: what one HTTP answer says (its
 * failure kind, whether it is a sign of an outage) and its Retry-After,
 * in every form, clamped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ytc_meta.h"

static ytc_http_answer answer(long status, ytc_transport tr)
{
    ytc_http_answer a;

    memset(&a, 0, sizeof(a));
    a.status = status;
    a.transport = tr;
    a.retry_after = -1;
    return a;
}

static void test_network_failure(void **state)
{
    static const struct {
        long status;
        ytc_transport tr;
        int down;
    } cases[] = {
        { 0, YTC_TRANSPORT_NETWORK, 1 },
        { 0, YTC_TRANSPORT_TIMEOUT, 1 },
        { 0, YTC_TRANSPORT_OTHER, 1 },
        { 0, YTC_TRANSPORT_OK, 1 },
        { 0, YTC_TRANSPORT_TOO_LARGE, 0 },
        { 502, YTC_TRANSPORT_OK, 1 },
        { 503, YTC_TRANSPORT_OK, 1 },
        { 504, YTC_TRANSPORT_OK, 1 },
        { 200, YTC_TRANSPORT_OK, 0 },
        { 404, YTC_TRANSPORT_OK, 0 },
        { 410, YTC_TRANSPORT_OK, 0 },
        { 429, YTC_TRANSPORT_OK, 0 },
        { 500, YTC_TRANSPORT_OK, 0 },
        { 501, YTC_TRANSPORT_OK, 0 },
        { 505, YTC_TRANSPORT_OK, 0 },
        { 302, YTC_TRANSPORT_OK, 0 },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ytc_http_answer a = answer(cases[i].status, cases[i].tr);
        assert_int_equal(ytc_meta_network_failure(&a), cases[i].down);
    }
    assert_int_equal(ytc_meta_network_failure(NULL), 0);
}

static void test_failure_kind(void **state)
{
    static const struct {
        long status;
        ytc_transport tr;
        ytc_failure_kind kind;
    } cases[] = {
        { 200, YTC_TRANSPORT_OK, YTC_FAIL_NONE },
        { 404, YTC_TRANSPORT_OK, YTC_FAIL_DEFINITIVE },
        { 410, YTC_TRANSPORT_OK, YTC_FAIL_DEFINITIVE },
        { 401, YTC_TRANSPORT_OK, YTC_FAIL_DEFINITIVE },
        { 403, YTC_TRANSPORT_OK, YTC_FAIL_DEFINITIVE },
        { 451, YTC_TRANSPORT_OK, YTC_FAIL_DEFINITIVE },
        { 502, YTC_TRANSPORT_OK, YTC_FAIL_VIDEO },
        { 504, YTC_TRANSPORT_OK, YTC_FAIL_VIDEO },
        { 307, YTC_TRANSPORT_OK, YTC_FAIL_VIDEO },
        { 400, YTC_TRANSPORT_OK, YTC_FAIL_DEFINITIVE },
        { 429, YTC_TRANSPORT_OK, YTC_FAIL_VIDEO },
        { 408, YTC_TRANSPORT_OK, YTC_FAIL_VIDEO },
        { 500, YTC_TRANSPORT_OK, YTC_FAIL_VIDEO },
        { 503, YTC_TRANSPORT_OK, YTC_FAIL_VIDEO },
        { 302, YTC_TRANSPORT_OK, YTC_FAIL_VIDEO },
        { 0, YTC_TRANSPORT_TIMEOUT, YTC_FAIL_VIDEO },
        { 0, YTC_TRANSPORT_NETWORK, YTC_FAIL_NETWORK },
        { 0, YTC_TRANSPORT_OTHER, YTC_FAIL_NETWORK },
        { 0, YTC_TRANSPORT_OK, YTC_FAIL_NETWORK },
        { 0, YTC_TRANSPORT_TOO_LARGE, YTC_FAIL_DEFINITIVE },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ytc_http_answer a = answer(cases[i].status, cases[i].tr);
        assert_int_equal(ytc_meta_failure_kind(&a), cases[i].kind);
    }
    assert_string_equal(ytc_failure_kind_name(YTC_FAIL_NETWORK), "network");
    assert_string_equal(ytc_failure_kind_name(YTC_FAIL_VIDEO), "video");
}

static void test_retry_after(void **state)
{
    /* 2026-01-01 00:00:00 UTC */
    const time_t now = 1767225600;

    (void)state;
    assert_int_equal(ytc_meta_retry_after("120", now), 120);
    assert_int_equal(ytc_meta_retry_after(" 7 ", now), 7);
    assert_int_equal(ytc_meta_retry_after("0", now), 0);
    assert_int_equal(ytc_meta_retry_after("300", now), 300);
    assert_int_equal(ytc_meta_retry_after("301", now), YTC_RETRY_AFTER_MAX);
    assert_int_equal(ytc_meta_retry_after("9223372036854775807", now),
                     YTC_RETRY_AFTER_MAX);
    assert_int_equal(ytc_meta_retry_after(
        "99999999999999999999999999999999999999", now), YTC_RETRY_AFTER_MAX);
    assert_int_equal(ytc_meta_retry_after("-5", now), -1);
    assert_int_equal(ytc_meta_retry_after("-9223372036854775808", now), -1);
    assert_int_equal(ytc_meta_retry_after("12abc", now), -1);
    assert_int_equal(ytc_meta_retry_after("abc", now), -1);
    assert_int_equal(ytc_meta_retry_after("", now), -1);
    assert_int_equal(ytc_meta_retry_after(NULL, now), -1);
    assert_int_equal(ytc_meta_retry_after("1.5", now), -1);
    assert_int_equal(ytc_meta_retry_after(
        "Thu, 01 Jan 2026 00:01:00 GMT", now), 60);
    assert_int_equal(ytc_meta_retry_after(
        "Thursday, 01-Jan-26 00:02:00 GMT", now), 120);
    assert_int_equal(ytc_meta_retry_after(
        "Thu Jan  1 00:00:30 2026", now), 30);
    assert_int_equal(ytc_meta_retry_after(
        "Wed, 31 Dec 2025 23:00:00 GMT", now), 0);
    assert_int_equal(ytc_meta_retry_after(
        "Fri, 31 Dec 9999 23:59:59 GMT", now), YTC_RETRY_AFTER_MAX);
    assert_int_equal(ytc_meta_retry_after(
        "Thu, 01 Jan 2026 00:01:00 GMT garbage", now), -1);
    assert_int_equal(ytc_meta_retry_after("Thu, 99 Foo", now), -1);
    /* more garbage: signs, hex, two numbers, blanks, a zone not GMT */
    assert_int_equal(ytc_meta_retry_after("+5", now), -1);
    assert_int_equal(ytc_meta_retry_after("0x10", now), -1);
    assert_int_equal(ytc_meta_retry_after("5 5", now), -1);
    assert_int_equal(ytc_meta_retry_after("   ", now), -1);
    assert_int_equal(ytc_meta_retry_after(
        "Thu, 01 Jan 2026 00:01:00 UTC", now), -1);
    assert_int_equal(ytc_meta_retry_after(
        "Thu, 01 Jan 2026 24:61:00 GMT", now), -1);
    /* a date long past (the epoch): now */
    assert_int_equal(ytc_meta_retry_after(
        "Thu, 01 Jan 1970 00:00:00 GMT", now), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_network_failure),
        cmocka_unit_test(test_failure_kind),
        cmocka_unit_test(test_retry_after),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
