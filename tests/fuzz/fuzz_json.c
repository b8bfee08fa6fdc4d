/* libFuzzer target for ytk_json_valid(), the strict check of
 * ytkafka-produce bodies, against json-c: whatever it accepts json-c must
 * parse, and json-c's canonical form of it must be accepted again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "ytk_json.h"

#define CHECK(cond) do { if (!(cond)) { abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *why = NULL;
    size_t pos = (size_t)-1;
    json_tokener *tok;
    json_object *o;
    enum json_tokener_error err;

    if (!ytk_json_valid(s, size, 64, &pos, &why)) {
        CHECK(pos <= size);
        CHECK(why && *why);
        return 0;
    }
    tok = json_tokener_new_ex(64);
    CHECK(tok);
    o = json_tokener_parse_ex(tok, s, (int)size);
    err = json_tokener_get_error(tok);
    if (!o && err == json_tokener_continue) {
        /* A bare number or literal at the very end: json-c waits for a
         * delimiter; give it one. */
        o = json_tokener_parse_ex(tok, " ", 1);
        err = json_tokener_get_error(tok);
    }
    CHECK(err == json_tokener_success);
    if (o) {
        size_t n = 0;
        const char *out = json_object_to_json_string_length(
            o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);

        /* json-c prints non-finite doubles as NaN/Infinity; valid input
         * has none, so its canonical form is valid too. */
        CHECK(ytk_json_valid(out, n, 64, &pos, &why));
        json_object_put(o);
    }
    json_tokener_free(tok);
    return 0;
}
