/* Unit tests for lib/ytk_envelope: exact JSON bytes, field order, time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "ytk_envelope.h"

#define RR "dQw4w9WgXcQ"

static void test_build_exact(void **state)
{
    static const char url[] = "https://youtu.be/" RR "?si=x";
    size_t len = 0;
    char *js;

    (void)state;
    js = ytk_envelope_build(RR, url, strlen(url), "req-1",
                            "2026-11-23T04:12:48.123Z", NULL, &len);
    assert_non_null(js);
    assert_string_equal(js,
        "{\"links\":\"https://www.youtube.com/watch?v=" RR "\","
        "\"video_id\":\"" RR "\","
        "\"url\":\"https://youtu.be/" RR "?si=x\","
        "\"request_id\":\"req-1\","
        "\"received_at\":\"2026-11-23T04:12:48.123Z\","
        "\"source\":\"mod_ytkafka/0.1.0\"}");
    assert_int_equal(len, strlen(js));
    free(js);

    js = ytk_envelope_build(RR, url, strlen(url), "r", "t", "other/1", NULL);
    assert_non_null(js);
    assert_non_null(strstr(js, "\"source\":\"other/1\"}"));
    free(js);
}

/* Hostile bytes in url survive a JSON round trip unchanged. */
static void test_build_escapes(void **state)
{
    static const char url[] = "a\"b\\c\n\x01</script>\0z\xc3\xa9";
    const char *keys[] = {
        "links", "video_id", "url", "request_id", "received_at", "source"
    };
    json_object *o, *v;
    size_t len, i = 0;
    char *js;

    (void)state;
    js = ytk_envelope_build(RR, url, sizeof(url) - 1, "id\"1", "t", "s",
                            &len);
    assert_non_null(js);
    assert_int_equal(strlen(js), len);
    assert_null(memchr(js, '\n', len));
    o = json_tokener_parse(js);
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "url", &v));
    assert_int_equal(json_object_get_string_len(v), sizeof(url) - 1);
    assert_memory_equal(json_object_get_string(v), url, sizeof(url) - 1);
    assert_true(json_object_object_get_ex(o, "request_id", &v));
    assert_string_equal(json_object_get_string(v), "id\"1");
    json_object_object_foreach(o, key, val) {
        (void)val;
        assert_true(i < 6);
        assert_string_equal(key, keys[i]);
        i++;
    }
    assert_int_equal(i, 6);
    json_object_put(o);
    free(js);
}

/* Bytes that are not UTF-8 are percent-encoded: JSON must be UTF-8. */
static void test_build_utf8(void **state)
{
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        { "a\xc3\xa9z", "a\xc3\xa9z" },
        { "\xf0\x9f\x8e\xb5", "\xf0\x9f\x8e\xb5" },
        { "a\xff" "b", "a%FFb" },
        { "\xc3", "%C3" },
        { "\xc0\xaf", "%C0%AF" },                 /* overlong '/' */
        { "\xed\xa0\x80", "%ED%A0%80" },         /* surrogate */
        { "\xf4\x90\x80\x80", "%F4%90%80%80" }, /* > U+10FFFF */
        { "\xe2\x9c", "%E2%9C" },                 /* truncated */
        { "\x80x", "%80x" },
    };
    json_object *o, *v;
    size_t i, len;
    char *js;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        js = ytk_envelope_build(RR, cases[i].in, strlen(cases[i].in), "r",
                                "t", "s", &len);
        assert_non_null(js);
        o = json_tokener_parse(js);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "url", &v));
        if (strcmp(json_object_get_string(v), cases[i].out) != 0) {
            fail_msg("utf8 case %zu: got '%s'", i, json_object_get_string(v));
        }
        json_object_put(o);
        free(js);
    }
}

static void test_build_defaults(void **state)
{
    json_object *o, *v;
    const char *t;
    char *js;
    size_t len;

    (void)state;
    js = ytk_envelope_build(RR, NULL, 0, NULL, NULL, NULL, &len);
    assert_non_null(js);
    o = json_tokener_parse(js);
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "url", &v));
    assert_string_equal(json_object_get_string(v), "");
    assert_true(json_object_object_get_ex(o, "request_id", &v));
    assert_null(v);
    assert_true(json_object_object_get_ex(o, "source", &v));
    assert_string_equal(json_object_get_string(v), YTK_SOURCE);
    assert_true(json_object_object_get_ex(o, "received_at", &v));
    t = json_object_get_string(v);
    assert_int_equal(strlen(t), 24);
    assert_int_equal(t[4], '-');
    assert_int_equal(t[10], 'T');
    assert_int_equal(t[19], '.');
    assert_int_equal(t[23], 'Z');
    assert_true(strncmp(t, "2025", 4) >= 0);
    json_object_put(o);
    free(js);
}

static void test_build_rejects(void **state)
{
    size_t len = 99;

    (void)state;
    assert_null(ytk_envelope_build(NULL, "u", 1, "r", "t", "s", &len));
    assert_int_equal(len, 0);
    assert_null(ytk_envelope_build("dQw4w9WgXc", "u", 1, "r", "t", "s",
                                   NULL));
    assert_null(ytk_envelope_build(RR "Q", "u", 1, "r", "t", "s", NULL));
    assert_null(ytk_envelope_build("dQw4w9WgX\"Q", "u", 1, "r", "t", "s",
                                   NULL));
    assert_null(ytk_envelope_build("", "u", 1, "r", "t", "s", NULL));
    assert_null(ytk_envelope_build(RR, NULL, 3, "r", "t", "s", NULL));
}

/* json-c's own bytes, for what the envelope used to be built with. */
static char *jsonc_string(const char *s, size_t len)
{
    json_object *o = json_object_new_string_len(s, (int)len);
    char *res = strdup(json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

    json_object_put(o);
    return res;
}

/* ytk_json_escape() writes what json-c wrote: every byte value alone and
 * in a run, and the envelope's request_id (not UTF-8-fixed) too. */
static void test_escape_matches_jsonc(void **state)
{
    char in[300], out[300 * 6 + 3], *want;
    size_t i, n;

    (void)state;
    for (i = 0; i < 256; i++) {
        in[0] = 'a';
        in[1] = (char)i;
        in[2] = 'z';
        want = jsonc_string(in, 3);
        out[0] = '"';
        n = 1 + ytk_json_escape(out + 1, in, 3);
        out[n++] = '"';
        out[n] = '\0';
        assert_int_equal(ytk_json_escaped_len(in, 3) + 2, n);
        if (strcmp(out, want) != 0) {
            fail_msg("byte 0x%02zx: got %s, want %s", i, out, want);
        }
        free(want);
    }
    for (i = 0; i < sizeof(in); i++) {
        in[i] = (char)(i * 7);
    }
    want = jsonc_string(in, sizeof(in));
    out[0] = '"';
    n = 1 + ytk_json_escape(out + 1, in, sizeof(in));
    out[n++] = '"';
    assert_int_equal(ytk_json_escaped_len(in, sizeof(in)) + 2, n);
    assert_int_equal(strlen(want), n);
    assert_memory_equal(out, want, n);
    free(want);
}

static void test_build_request_id_bytes(void **state)
{
    static const char rid[] = "r\x01\x1f\"\\/\x7f\xff\t";
    char *js, *want, *exp;
    size_t len;

    (void)state;
    js = ytk_envelope_build(RR, "u", 1, rid, "t", "s", &len);
    assert_non_null(js);
    want = jsonc_string(rid, sizeof(rid) - 1);
    exp = malloc(strlen(want) + 200);
    sprintf(exp, "{\"links\":\"https://www.youtube.com/watch?v=" RR "\","
            "\"video_id\":\"" RR "\",\"url\":\"u\",\"request_id\":%s,"
            "\"received_at\":\"t\",\"source\":\"s\"}", want);
    assert_string_equal(js, exp);
    assert_int_equal(len, strlen(exp));
    free(exp);
    free(want);
    free(js);
}

typedef struct {
    int64_t usec;
    size_t buflen;
    const char *want;
} time_case;

static void test_utf8_fix(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
        size_t out_len;
    } cases[] = {
        { "plain", 5, "plain", 5 },
        { "a\xff" "b", 3, "a%FFb", 5 },
        { "\xc3\xa9", 2, "\xc3\xa9", 2 },               /* é stays */
        { "\xc3", 1, "%C3", 3 },                       /* truncated */
        { "\xc0\xaf", 2, "%C0%AF", 6 },               /* overlong '/' */
        { "\xed\xa0\x80", 3, "%ED%A0%80", 9 },         /* surrogate */
        { "x\x00y", 3, "x\x00y", 3 },                 /* NUL is UTF-8 */
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[64];
        size_t n = ytk_utf8_fixed_len(cases[i].in, cases[i].len);

        assert_int_equal(n, cases[i].out_len);
        assert_int_equal(ytk_utf8_fix(buf, cases[i].in, cases[i].len), n);
        assert_memory_equal(buf, cases[i].out, n);
    }
}

static void test_format_time(void **state)
{
    static const time_case cases[] = {
        { 0, 25, "1970-01-01T00:00:00.000Z" },
        { 1795407168123456LL, 25, "2026-11-23T04:12:48.123Z" },
        { 1795407168123999LL, 25, "2026-11-23T04:12:48.123Z" },
        { 1709251199999999LL, 25, "2024-02-29T23:59:59.999Z" },
        { 253402300799000000LL, 25, "9999-12-31T23:59:59.000Z" },
        { 253402300800000000LL, 25, "" },
        { -1, 25, "1969-12-31T23:59:59.999Z" },
        { -1000000, 32, "1969-12-31T23:59:59.000Z" },
        { 1795407168123456LL, 24, "" },
        { 1795407168123456LL, 1, "" },
    };
    char buf[32];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(buf, 'x', sizeof(buf));
        ytk_format_time(cases[i].usec, buf, cases[i].buflen);
        if (strcmp(buf, cases[i].want) != 0) {
            fail_msg("time case %zu: got '%.31s', want '%s'", i, buf,
                     cases[i].want);
        }
    }
    ytk_format_time(0, NULL, 0);
    buf[0] = 'x';
    ytk_format_time(0, buf, 0);
    assert_int_equal(buf[0], 'x');
}

static void test_utf8_valid_strict(void **state)
{
    (void)state;
    assert_int_equal(ytk_utf8_valid("", 0), 1);
    assert_int_equal(ytk_utf8_valid("abc", 3), 1);
    assert_int_equal(ytk_utf8_valid("\xc3\xa9", 2), 1);             /* é */
    assert_int_equal(ytk_utf8_valid("\xf0\x9f\x98\x80", 4), 1);     /* emoji */
    assert_int_equal(ytk_utf8_valid("\xc0\xaf", 2), 0);             /* overlong / */
    assert_int_equal(ytk_utf8_valid("\xe0\x80\xaf", 3), 0);         /* overlong */
    assert_int_equal(ytk_utf8_valid("\xed\xa0\x80", 3), 0);         /* surrogate */
    assert_int_equal(ytk_utf8_valid("\xf4\x90\x80\x80", 4), 0);     /* > U+10FFFF */
    assert_int_equal(ytk_utf8_valid("\xc3", 1), 0);                 /* truncated */
    assert_int_equal(ytk_utf8_valid("\xff", 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_valid_strict),
        cmocka_unit_test(test_build_exact),
        cmocka_unit_test(test_build_escapes),
        cmocka_unit_test(test_build_utf8),
        cmocka_unit_test(test_build_defaults),
        cmocka_unit_test(test_build_rejects),
        cmocka_unit_test(test_format_time),
        cmocka_unit_test(test_utf8_fix),
        cmocka_unit_test(test_escape_matches_jsonc),
        cmocka_unit_test(test_build_request_id_bytes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
