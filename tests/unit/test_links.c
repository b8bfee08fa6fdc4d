/* Unit tests for lib/ytk_links: JSON bodies, form bodies, message values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ytk_links.h"

#define MAXI 3
#define S(lit) lit, sizeof(lit) - 1   /* keeps embedded NULs */

typedef ytk_links_rc (*parse_fn)(const char *, size_t, size_t, ytk_links *);

typedef struct {
    const char *in;
    size_t len;
    size_t max;
    ytk_links_rc rc;
    size_t n;
    const char *items[MAXI];
    size_t lens[MAXI];      /* 0: use strlen(items[i]) */
} links_case;

static const links_case json_cases[] = {
    { S("{\"links\":\"u\"}"), 0, YTK_LINKS_OK, 1, { "u" }, { 0 } },
    { S("{\"links\":[\"a\",\"b\"]}"), 0, YTK_LINKS_OK, 2, { "a", "b" },
      { 0 } },
    { S("{\"link\":\"https://youtu.be/x\"}"), 0, YTK_LINKS_OK, 1,
      { "https://youtu.be/x" }, { 0 } },
    { S(" \r\n\t{\"links\" : \"u\"} \n"), 0, YTK_LINKS_OK, 1, { "u" },
      { 0 } },
    { S("{\"link\":\"x\",\"links\":\"y\"}"), 0, YTK_LINKS_OK, 1, { "y" },
      { 0 } },
    { S("{\"links\":\"a\\/b\\u00e9\"}"), 0, YTK_LINKS_OK, 1,
      { "a/b\xc3\xa9" }, { 0 } },
    { S("{\"links\":\"a\\u0000b\"}"), 0, YTK_LINKS_OK, 1, { "a\0b" }, { 3 } },
    { S("{\"links\":\"\"}"), 0, YTK_LINKS_OK, 1, { "" }, { 0 } },
    { S("{\"other\":[1,{}],\"links\":[\"a\"]}"), 0, YTK_LINKS_OK, 1, { "a" },
      { 0 } },
    { S("{\"links\":[\"a\",\"b\",\"c\"]}"), 3, YTK_LINKS_OK, 3,
      { "a", "b", "c" }, { 0 } },
    { S("{\"links\":[\"a\",\"b\",\"c\"]}"), 2, YTK_LINKS_TOO_MANY, 0, { 0 },
      { 0 } },
    { S("{\"links\":[\"a\",\"b\"]}"), 1, YTK_LINKS_TOO_MANY, 0, { 0 },
      { 0 } },
    { S("{\"links\":\"a\"}"), 1, YTK_LINKS_OK, 1, { "a" }, { 0 } },
    /* not JSON, not an object, not strict */
    { S(""), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("   "), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("{"), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("{\"links\":\"u\"} x"), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("{\"links\":\"u\"}{}"), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("{\"links\":\"u\"}\0"), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("{\"links\":\"u\",}"), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("{'links':'u'}"), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("{links:\"u\"}"), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("{\"links\":NaN}"), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("{\"x\":[-Infinity],\"links\":\"u\"}"), 0, YTK_LINKS_BAD_JSON, 0,
      { 0 }, { 0 } },
    { S("{\"x\":{\"y\":1e999},\"links\":\"u\"}"), 0, YTK_LINKS_BAD_JSON, 0,
      { 0 }, { 0 } },
    { S("{\"links\":\"\xff\"}"), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("{\"links\":\"a\tb\"}"), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("[\"u\"]"), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("\"u\""), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("42"), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("null"), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("https://youtu.be/dQw4w9WgXcQ"), 0, YTK_LINKS_BAD_JSON, 0, { 0 },
      { 0 } },
    { S("{\"a\":[[[[[[[[[[[[1]]]]]]]]]]]],\"links\":\"u\"}"), 0,
      YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    /* valid JSON, wrong shape */
    { S("{}"), 0, YTK_LINKS_NO_FIELD, 0, { 0 }, { 0 } },
    { S("{\"url\":\"u\"}"), 0, YTK_LINKS_NO_FIELD, 0, { 0 }, { 0 } },
    { S("{\"Links\":\"u\"}"), 0, YTK_LINKS_NO_FIELD, 0, { 0 }, { 0 } },
    { S("{\"links\":1}"), 0, YTK_LINKS_BAD_TYPE, 0, { 0 }, { 0 } },
    { S("{\"links\":null}"), 0, YTK_LINKS_BAD_TYPE, 0, { 0 }, { 0 } },
    { S("{\"links\":{\"url\":\"u\"}}"), 0, YTK_LINKS_BAD_TYPE, 0, { 0 },
      { 0 } },
    { S("{\"links\":[\"a\",1]}"), 0, YTK_LINKS_BAD_TYPE, 0, { 0 }, { 0 } },
    { S("{\"links\":[[\"a\"]]}"), 0, YTK_LINKS_BAD_TYPE, 0, { 0 }, { 0 } },
    { S("{\"links\":[\"a\",\"b\",\"c\",null]}"), 2, YTK_LINKS_BAD_TYPE, 0,
      { 0 }, { 0 } },
    { S("{\"links\":[]}"), 0, YTK_LINKS_EMPTY, 0, { 0 }, { 0 } },
};

static const links_case form_cases[] = {
    { S("links=u"), 0, YTK_LINKS_OK, 1, { "u" }, { 0 } },
    { S("links=a&links=b"), 0, YTK_LINKS_OK, 2, { "a", "b" }, { 0 } },
    { S("links=https%3A%2F%2Fyoutu.be%2FdQw4w9WgXcQ"), 0, YTK_LINKS_OK, 1,
      { "https://youtu.be/dQw4w9WgXcQ" }, { 0 } },
    { S("links=a+b%2Bc"), 0, YTK_LINKS_OK, 1, { "a b+c" }, { 0 } },
    { S("x=1&links=u&y=2"), 0, YTK_LINKS_OK, 1, { "u" }, { 0 } },
    { S("links=a=b"), 0, YTK_LINKS_OK, 1, { "a=b" }, { 0 } },
    { S("links="), 0, YTK_LINKS_OK, 1, { "" }, { 0 } },
    { S("links"), 0, YTK_LINKS_OK, 1, { "" }, { 0 } },
    { S("%6cinks=u"), 0, YTK_LINKS_OK, 1, { "u" }, { 0 } },
    { S("&&links=u&&"), 0, YTK_LINKS_OK, 1, { "u" }, { 0 } },
    { S("links=%00x"), 0, YTK_LINKS_OK, 1, { "\0x" }, { 2 } },
    { S("links=%e2%9c%93"), 0, YTK_LINKS_OK, 1, { "\xe2\x9c\x93" }, { 0 } },
    { S("links=a&links=b&links=c"), 3, YTK_LINKS_OK, 3, { "a", "b", "c" },
      { 0 } },
    { S("links=a&links=b&links=c"), 2, YTK_LINKS_TOO_MANY, 0, { 0 },
      { 0 } },
    { S("links=%zz"), 0, YTK_LINKS_BAD_FORM, 0, { 0 }, { 0 } },
    { S("links=%4"), 0, YTK_LINKS_BAD_FORM, 0, { 0 }, { 0 } },
    { S("links=u&x=%"), 0, YTK_LINKS_BAD_FORM, 0, { 0 }, { 0 } },
    { S("links=u&x=%g0"), 0, YTK_LINKS_BAD_FORM, 0, { 0 }, { 0 } },
    { S(""), 0, YTK_LINKS_EMPTY, 0, { 0 }, { 0 } },
    { S("x=1"), 0, YTK_LINKS_NO_FIELD, 0, { 0 }, { 0 } },
    { S("link=u"), 0, YTK_LINKS_NO_FIELD, 0, { 0 }, { 0 } },
    { S("linksx=u"), 0, YTK_LINKS_NO_FIELD, 0, { 0 }, { 0 } },
    { S("Links=u"), 0, YTK_LINKS_NO_FIELD, 0, { 0 }, { 0 } },
    { S("&"), 0, YTK_LINKS_NO_FIELD, 0, { 0 }, { 0 } },
};

static const links_case value_cases[] = {
    { S("{\"links\":\"https://www.youtube.com/watch?v=dQw4w9WgXcQ\","
        "\"video_id\":\"dQw4w9WgXcQ\",\"url\":\"https://youtu.be/"
        "dQw4w9WgXcQ\",\"request_id\":\"r\",\"received_at\":"
        "\"2026-11-23T04:12:48.123Z\",\"source\":\"mod_ytkafka/0.1.0\"}"),
      0, YTK_LINKS_OK, 1, { "https://www.youtube.com/watch?v=dQw4w9WgXcQ" },
      { 0 } },
    { S("{\"links\":[\"a\",\"b\"]}"), 0, YTK_LINKS_OK, 2, { "a", "b" },
      { 0 } },
    { S("{\"link\":\"a\"}"), 0, YTK_LINKS_OK, 1, { "a" }, { 0 } },
    { S("{\"link\":[\"a\",\"b\"]}"), 0, YTK_LINKS_OK, 2, { "a", "b" },
      { 0 } },
    { S("{\"url\":\"a\"}"), 0, YTK_LINKS_OK, 1, { "a" }, { 0 } },
    { S("{\"url\":[\"a\"]}"), 0, YTK_LINKS_OK, 1, { "a" }, { 0 } },
    { S("{\"url\":\"u\",\"link\":\"l\"}"), 0, YTK_LINKS_OK, 1, { "l" },
      { 0 } },
    { S("{\"links\":\"a\",\"links\":\"b\"}"), 0, YTK_LINKS_OK, 1, { "b" },
      { 0 } },
    { S(" { \"url\" : \"a\" , \"link\":\"b\" }  "), 0, YTK_LINKS_OK, 1,
      { "b" }, { 0 } },
    { S("{\"other\":\"x\",\"more\":\"y\"}"), 0, YTK_LINKS_NO_FIELD, 0,
      { 0 }, { 0 } },
    { S("{\"links\":\"a\"} x"), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("{\"links\":\"a\",}"), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("https://youtu.be/dQw4w9WgXcQ"), 0, YTK_LINKS_OK, 1,
      { "https://youtu.be/dQw4w9WgXcQ" }, { 0 } },
    { S("  https://youtu.be/dQw4w9WgXcQ \r\n"), 0, YTK_LINKS_OK, 1,
      { "https://youtu.be/dQw4w9WgXcQ" }, { 0 } },
    { S("youtu.be/x y"), 0, YTK_LINKS_OK, 1, { "youtu.be/x y" }, { 0 } },
    { S("a\0b"), 0, YTK_LINKS_OK, 1, { "a\0b" }, { 3 } },
    { S("null"), 0, YTK_LINKS_OK, 1, { "null" }, { 0 } },
    { S("\"https://youtu.be/dQw4w9WgXcQ\""), 0, YTK_LINKS_OK, 1,
      { "https://youtu.be/dQw4w9WgXcQ" }, { 0 } },
    { S(" \"a\\u0041\" \n"), 1, YTK_LINKS_OK, 1, { "aA" }, { 0 } },
    { S("{\"links\":[\"a\",\"b\"]}"), 1, YTK_LINKS_TOO_MANY, 0, { 0 },
      { 0 } },
    { S(""), 0, YTK_LINKS_EMPTY, 0, { 0 }, { 0 } },
    { S(" \n\t\r "), 0, YTK_LINKS_EMPTY, 0, { 0 }, { 0 } },
    { S("{\"url\":[]}"), 0, YTK_LINKS_EMPTY, 0, { 0 }, { 0 } },
    { S("{"), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("\"abc"), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("\"a\" \"b\""), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("{\"links\":\"u\"} trailing"), 0, YTK_LINKS_BAD_JSON, 0, { 0 },
      { 0 } },
    { S("[\"a\""), 0, YTK_LINKS_BAD_JSON, 0, { 0 }, { 0 } },
    { S("[\"a\"]"), 0, YTK_LINKS_BAD_TYPE, 0, { 0 }, { 0 } },
    { S("{\"url\":7}"), 0, YTK_LINKS_BAD_TYPE, 0, { 0 }, { 0 } },
    { S("{\"links\":[\"a\",false]}"), 0, YTK_LINKS_BAD_TYPE, 0, { 0 },
      { 0 } },
    { S("{\"foo\":\"https://youtu.be/dQw4w9WgXcQ\"}"), 0, YTK_LINKS_NO_FIELD,
      0, { 0 }, { 0 } },
};

static void run_cases(const char *name, parse_fn fn, const links_case *c,
                      size_t n)
{
    size_t i, j, want_len;
    ytk_links l;
    ytk_links_rc rc;

    for (i = 0; i < n; i++) {
        memset(&l, 0xa5, sizeof(l));
        rc = fn(c[i].in, c[i].len, c[i].max, &l);
        if (rc != c[i].rc) {
            fail_msg("%s case %zu (%.60s): got %s, want %s", name, i,
                     c[i].in, ytk_links_code(rc), ytk_links_code(c[i].rc));
        }
        if (rc != YTK_LINKS_OK) {
            /* failure leaves a zeroed list behind */
            assert_null(l.items);
            assert_null(l.lens);
            assert_int_equal(l.n, 0);
            continue;
        }
        if (l.n != c[i].n) {
            fail_msg("%s case %zu (%.60s): got %zu links, want %zu", name, i,
                     c[i].in, l.n, c[i].n);
        }
        for (j = 0; j < l.n; j++) {
            want_len = c[i].lens[j] ? c[i].lens[j] : strlen(c[i].items[j]);
            assert_int_equal(l.lens[j], want_len);
            assert_memory_equal(l.items[j], c[i].items[j], want_len);
            assert_int_equal(l.items[j][want_len], '\0');
        }
        ytk_links_free(&l);
        assert_int_equal(l.n, 0);
        assert_null(l.items);
    }
    print_message("%zu %s cases\n", n, name);
}

static void test_json(void **state)
{
    (void)state;
    run_cases("json", ytk_links_from_json, json_cases,
              sizeof(json_cases) / sizeof(json_cases[0]));
}

static void test_form(void **state)
{
    (void)state;
    run_cases("form", ytk_links_from_form, form_cases,
              sizeof(form_cases) / sizeof(form_cases[0]));
}

static void test_value(void **state)
{
    (void)state;
    run_cases("value", ytk_links_from_value, value_cases,
              sizeof(value_cases) / sizeof(value_cases[0]));
}

/* The same table through the general json-c path alone: the fast path for
 * flat plain-string objects must not change any answer. */
static void test_value_without_fast_path(void **state)
{
    (void)state;
    ytk_links_set_fast_path(0);
    run_cases("value/json-c", ytk_links_from_value, value_cases,
              sizeof(value_cases) / sizeof(value_cases[0]));
    ytk_links_set_fast_path(1);
}

/* Many links: the list grows past its first allocation, limits hold. */
static void test_many(void **state)
{
    char body[8192], *p = body;
    ytk_links l;
    size_t i;

    (void)state;
    p += sprintf(p, "{\"links\":[");
    for (i = 0; i < 200; i++) {
        p += sprintf(p, "%s\"u%zu\"", i ? "," : "", i);
    }
    p += sprintf(p, "]}");
    assert_int_equal(ytk_links_from_json(body, (size_t)(p - body), 0, &l),
                     YTK_LINKS_OK);
    assert_int_equal(l.n, 200);
    assert_string_equal(l.items[0], "u0");
    assert_string_equal(l.items[199], "u199");
    assert_int_equal(l.lens[199], 4);
    ytk_links_free(&l);
    assert_int_equal(ytk_links_from_json(body, (size_t)(p - body), 200, &l),
                     YTK_LINKS_OK);
    ytk_links_free(&l);
    assert_int_equal(ytk_links_from_json(body, (size_t)(p - body), 199, &l),
                     YTK_LINKS_TOO_MANY);

    p = body;
    for (i = 0; i < 100; i++) {
        p += sprintf(p, "%slinks=v%zu", i ? "&" : "", i);
    }
    assert_int_equal(ytk_links_from_form(body, (size_t)(p - body), 0, &l),
                     YTK_LINKS_OK);
    assert_int_equal(l.n, 100);
    assert_string_equal(l.items[99], "v99");
    ytk_links_free(&l);
    assert_int_equal(ytk_links_from_form(body, (size_t)(p - body), 99, &l),
                     YTK_LINKS_TOO_MANY);
    assert_null(l.items);
}

/* Only len bytes are read: a body need not be NUL terminated. */
static void test_length_bound(void **state)
{
    static const char json[] = "{\"links\":\"a\"}garbage";
    static const char form[] = "links=a&links=b";
    ytk_links l;

    (void)state;
    assert_int_equal(ytk_links_from_json(json, 13, 0, &l), YTK_LINKS_OK);
    assert_string_equal(l.items[0], "a");
    ytk_links_free(&l);
    assert_int_equal(ytk_links_from_form(form, 7, 0, &l), YTK_LINKS_OK);
    assert_int_equal(l.n, 1);
    ytk_links_free(&l);
    assert_int_equal(ytk_links_from_value("youtu.be/abc", 8, 0, &l),
                     YTK_LINKS_OK);
    assert_string_equal(l.items[0], "youtu.be");
    ytk_links_free(&l);
    assert_int_equal(ytk_links_from_json(NULL, 0, 0, &l), YTK_LINKS_BAD_JSON);
    assert_int_equal(ytk_links_from_form(NULL, 0, 0, &l), YTK_LINKS_EMPTY);
    assert_int_equal(ytk_links_from_value(NULL, 0, 0, &l), YTK_LINKS_EMPTY);
}

static void test_free_safe(void **state)
{
    ytk_links l = { NULL, NULL, 0 };

    (void)state;
    ytk_links_free(&l);
    ytk_links_free(&l);
    ytk_links_free(NULL);
    assert_int_equal(l.n, 0);
}

static void test_codes(void **state)
{
    static const char *const want[] = {
        "ok", "bad_json", "no_field", "bad_type", "empty", "too_many",
        "nomem", "bad_form"
    };
    int i, j;

    (void)state;
    for (i = YTK_LINKS_OK; i <= YTK_LINKS_BAD_FORM; i++) {
        assert_string_equal(ytk_links_code((ytk_links_rc)i), want[i]);
        for (j = 0; j < i; j++) {
            assert_string_not_equal(ytk_links_strerror((ytk_links_rc)i),
                                    ytk_links_strerror((ytk_links_rc)j));
        }
    }
    assert_string_equal(ytk_links_strerror(YTK_LINKS_BAD_JSON),
                        "body is not valid JSON");
    assert_string_equal(ytk_links_code((ytk_links_rc)99), "unknown");
    assert_string_equal(ytk_links_strerror((ytk_links_rc)99),
                        "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_form),
        cmocka_unit_test(test_value),
        cmocka_unit_test(test_value_without_fast_path),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_length_bound),
        cmocka_unit_test(test_free_safe),
        cmocka_unit_test(test_codes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
