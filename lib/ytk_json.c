/* Strict JSON validation (RFC 8259). */
#include <string.h>

#include "ytk_json.h"

typedef struct {
    const unsigned char *s;
    size_t len;
    size_t i;
    int depth;
    int max_depth;
    const char *why;
} ytk_jv;

static int fail(ytk_jv *v, const char *why)
{
    if (!v->why) {
        v->why = why;
    }
    return 0;
}

static void skip_ws(ytk_jv *v)
{
    while (v->i < v->len && (v->s[v->i] == ' ' || v->s[v->i] == '\t'
                             || v->s[v->i] == '\n' || v->s[v->i] == '\r')) {
        v->i++;
    }
}

static int hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
           || (c >= 'A' && c <= 'F');
}

/* One UTF-8 sequence of 2 to 4 bytes at v->i (the lead byte >= 0x80). */
static int utf8_seq(ytk_jv *v)
{
    const unsigned char *p = v->s + v->i;
    size_t left = v->len - v->i;
    unsigned char c = p[0];
    size_t n, k;
    unsigned char lo = 0x80, hi = 0xBF;

    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    }
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) {
            lo = 0xA0;              /* overlong */
        }
        else if (c == 0xED) {
            hi = 0x9F;              /* surrogates */
        }
    }
    else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) {
            lo = 0x90;
        }
        else if (c == 0xF4) {
            hi = 0x8F;              /* past U+10FFFF */
        }
    }
    else {
        return fail(v, "invalid UTF-8");
    }
    if (left < n) {
        return fail(v, "invalid UTF-8");
    }
    for (k = 1; k < n; ++k) {
        unsigned char b = p[k];

        if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) {
            return fail(v, "invalid UTF-8");
        }
    }
    v->i += n;
    return 1;
}

static int string(ytk_jv *v)
{
    v->i++;                         /* the opening quote */
    while (v->i < v->len) {
        unsigned char c = v->s[v->i];

        if (c == '"') {
            v->i++;
            return 1;
        }
        if (c < 0x20) {
            return fail(v, "control character in a string");
        }
        if (c == '\\') {
            if (v->i + 1 >= v->len) {
                break;
            }
            c = v->s[v->i + 1];
            if (c == 'u') {
                int k;

                for (k = 2; k < 6; ++k) {
                    if (v->i + (size_t)k >= v->len
                        || !hex(v->s[v->i + (size_t)k])) {
                        v->i += (size_t)k;
                        return fail(v, "bad \\u escape");
                    }
                }
                v->i += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", c) || !c) {
                v->i++;
                return fail(v, "bad escape");
            }
            v->i += 2;
            continue;
        }
        if (c >= 0x80) {
            if (!utf8_seq(v)) {
                return 0;
            }
            continue;
        }
        v->i++;
    }
    return fail(v, "unexpected end of the body");
}

static int digits(ytk_jv *v)
{
    size_t start = v->i;

    while (v->i < v->len && v->s[v->i] >= '0' && v->s[v->i] <= '9') {
        v->i++;
    }
    return v->i > start ? 1 : fail(v, "bad number");
}

static int number(ytk_jv *v)
{
    if (v->s[v->i] == '-') {
        v->i++;
    }
    if (v->i < v->len && v->s[v->i] == '0') {
        v->i++;
    }
    else if (!digits(v)) {
        return 0;
    }
    if (v->i < v->len && v->s[v->i] == '.') {
        v->i++;
        if (!digits(v)) {
            return 0;
        }
    }
    if (v->i < v->len && (v->s[v->i] == 'e' || v->s[v->i] == 'E')) {
        v->i++;
        if (v->i < v->len && (v->s[v->i] == '+' || v->s[v->i] == '-')) {
            v->i++;
        }
        if (!digits(v)) {
            return 0;
        }
    }
    return 1;
}

static int word(ytk_jv *v, const char *w)
{
    size_t n = strlen(w);

    if (v->len - v->i < n || memcmp(v->s + v->i, w, n)) {
        return fail(v, "unexpected character");
    }
    v->i += n;
    return 1;
}

static int value(ytk_jv *v);

static int container(ytk_jv *v, unsigned char close)
{
    int first = 1;

    if (++v->depth > v->max_depth) {
        return fail(v, "nested too deeply");
    }
    v->i++;
    for (;;) {
        skip_ws(v);
        if (v->i >= v->len) {
            return fail(v, "unexpected end of the body");
        }
        if (v->s[v->i] == close && first) {
            v->i++;
            break;
        }
        if (close == '}') {
            if (v->s[v->i] != '"') {
                return fail(v, "expected a member name in double quotes");
            }
            if (!string(v)) {
                return 0;
            }
            skip_ws(v);
            if (v->i >= v->len || v->s[v->i] != ':') {
                return fail(v, v->i >= v->len ? "unexpected end of the body"
                                              : "expected ':'");
            }
            v->i++;
        }
        if (!value(v)) {
            return 0;
        }
        skip_ws(v);
        if (v->i >= v->len) {
            return fail(v, "unexpected end of the body");
        }
        if (v->s[v->i] == close) {
            v->i++;
            break;
        }
        if (v->s[v->i] != ',') {
            return fail(v, "expected ',' or the closing bracket");
        }
        v->i++;
        first = 0;
    }
    v->depth--;
    return 1;
}

static int value(ytk_jv *v)
{
    skip_ws(v);
    if (v->i >= v->len) {
        return fail(v, "unexpected end of the body");
    }
    switch (v->s[v->i]) {
    case '{':
        return container(v, '}');
    case '[':
        return container(v, ']');
    case '"':
        return string(v);
    case 't':
        return word(v, "true");
    case 'f':
        return word(v, "false");
    case 'n':
        return word(v, "null");
    default:
        if (v->s[v->i] == '-'
            || (v->s[v->i] >= '0' && v->s[v->i] <= '9')) {
            return number(v);
        }
        return fail(v, "unexpected character");
    }
}

int ytk_json_valid(const char *s, size_t len, int max_depth,
                   size_t *err_pos, const char **why)
{
    ytk_jv v;

    memset(&v, 0, sizeof(v));
    v.s = (const unsigned char *)s;
    v.len = len;
    v.max_depth = max_depth;
    if (value(&v)) {
        skip_ws(&v);
        if (v.i == v.len) {
            return 1;
        }
        fail(&v, "data after the JSON value");
    }
    *err_pos = v.i;
    *why = v.why;
    return 0;
}
