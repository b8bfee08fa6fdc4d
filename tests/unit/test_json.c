/* Unit tests for lib/ytk_json: the strict RFC 8259 check, both ways, and
 * the offset and reason of the first error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ytk_json.h"

static int valid(const char *s, size_t len)
{
    const char *why = NULL;
    size_t pos = 0;

    return ytk_json_valid(s, len, 8, &pos, &why);
}

#define OK(s) assert_true(valid((s), sizeof(s) - 1))
#define BAD(s) assert_false(valid((s), sizeof(s) - 1))

static void test_accepts(void **state)
{
    (void)state;
    OK("{}");
    OK("[]");
    OK(" {\"user_id\": 7, \"page\": \"/item/42\", \"ts\": 1.5e9} \n");
    OK("[{\"a\": [1, -0, 0.25, 1E+2, 2e-3, true, false, null]}]");
    OK("\"\\u00e9\\n\\t\\\"\\\\\\/\"");
    OK("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    OK("0");
    OK("[[[[[[[[]]]]]]]]");                   /* depth 8 */
}

static void test_refuses(void **state)
{
    (void)state;
    BAD("");
    BAD("   ");
    BAD("{'a': 1}");
    BAD("{\"a\": NaN}");
    BAD("{\"a\": Infinity}");
    BAD("{\"a\": 01}");
    BAD("{\"a\": 1.}");
    BAD("{\"a\": .5}");
    BAD("{\"a\": +1}");
    BAD("{\"a\": 1,}");
    BAD("[1,]");
    BAD("{\"a\" 1}");
    BAD("{a: 1}");
    BAD("{\"a\": 1} x");
    BAD("{\"a\": 1}{}");
    BAD("\"\\x\"");
    BAD("\"\\u12\"");
    BAD("\"a\tb\"");
    BAD("\"\xff\"");
    BAD("\"\xc0\xaf\"");                      /* overlong '/' */
    BAD("\"\xed\xa0\x80\"");                  /* a surrogate */
    BAD("\"\xf4\x90\x80\x80\"");              /* past U+10FFFF */
    BAD("\"\xe2\x82\"");                      /* cut short */
    BAD("[[[[[[[[[]]]]]]]]]");                /* depth 9 */
    BAD("tru");
    BAD("nul");
    assert_false(valid("{\"a\": \"b\0\"}", 11));
}

static void test_position_and_reason(void **state)
{
    const char *why = NULL;
    size_t pos = 99;

    (void)state;
    assert_false(ytk_json_valid("{\"user_id\": 7", 13, 8, &pos, &why));
    assert_int_equal(pos, 13);
    assert_string_equal(why, "unexpected end of the body");
    assert_false(ytk_json_valid("{\"a\": 1} {}", 11, 8, &pos, &why));
    assert_int_equal(pos, 9);
    assert_string_equal(why, "data after the JSON value");
    assert_false(ytk_json_valid("{'a': 1}", 8, 8, &pos, &why));
    assert_int_equal(pos, 1);
    assert_false(ytk_json_valid("[1, NaN]", 8, 8, &pos, &why));
    assert_int_equal(pos, 4);
    assert_string_equal(why, "unexpected character");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_refuses),
        cmocka_unit_test(test_position_and_reason),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
