/* Link extraction from request bodies and message values. See ytk_links.h. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "ytk_links.h"

static int is_ws(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void links_init(ytk_links *l)
{
    l->items = NULL;
    l->lens = NULL;
    l->n = 0;
}

void ytk_links_free(ytk_links *l)
{
    size_t i;

    if (l == NULL) {
        return;
    }
    for (i = 0; i < l->n; i++) {
        free(l->items[i]);
    }
    free(l->items);
    free(l->lens);
    links_init(l);
}

/* Append a copy of s[0..len); @a cap tracks the allocated slots. */
static ytk_links_rc links_push(ytk_links *l, size_t *cap, const char *s,
                               size_t len)
{
    char *copy;

    if (l->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        char **items = realloc(l->items, ncap * sizeof(*items));

        if (items == NULL) {
            return YTK_LINKS_NOMEM;
        }
        l->items = items;
        {
            size_t *lens = realloc(l->lens, ncap * sizeof(*lens));

            if (lens == NULL) {
                return YTK_LINKS_NOMEM;
            }
            l->lens = lens;
        }
        *cap = ncap;
    }
    if ((copy = malloc(len + 1)) == NULL) {
        return YTK_LINKS_NOMEM;
    }
    if (len > 0) {
        memcpy(copy, s, len);
    }
    copy[len] = '\0';
    l->items[l->n] = copy;
    l->lens[l->n] = len;
    l->n++;
    return YTK_LINKS_OK;
}

/*
 * RFC 8259 allows no raw control characters inside strings and only
 * whitespace ones outside; json-c lets some through, so check first.
 */
static int controls_ok(const char *buf, size_t len)
{
    int in_str = 0, esc = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];

        if (c < 0x20 && (in_str || !is_ws(c))) {
            return 0;
        }
        if (esc) {
            esc = 0;
        }
        else if (in_str && c == '\\') {
            esc = 1;
        }
        else if (c == '"') {
            in_str = !in_str;
        }
    }
    return 1;
}

/* json-c takes NaN and Infinity even in strict mode; JSON has neither. */
static int all_finite(json_object *o)
{
    size_t i, n;

    switch (json_object_get_type(o)) {
    case json_type_double:
        return isfinite(json_object_get_double(o));
    case json_type_array:
        n = json_object_array_length(o);
        for (i = 0; i < n; i++) {
            if (!all_finite(json_object_array_get_idx(o, i))) {
                return 0;
            }
        }
        return 1;
    case json_type_object: {
        json_object_iter it;

        json_object_object_foreachC(o, it) {
            if (!all_finite(it.val)) {
                return 0;
            }
        }
        return 1;
    }
    default:
        return 1;
    }
}

/*
 * Parse exactly one JSON text from buf: valid UTF-8, bounded depth, only
 * whitespace after it. Returns NULL on any error.
 */
static json_object *parse_json(const char *buf, size_t len)
{
    json_tokener *tok;
    json_object *obj;
    size_t end;
    int flags = JSON_TOKENER_STRICT;

    if (len == 0 || len > (size_t)INT32_MAX || !controls_ok(buf, len)) {
        return NULL;
    }
#ifdef JSON_TOKENER_VALIDATE_UTF8
    flags |= JSON_TOKENER_VALIDATE_UTF8;
#endif
#ifdef JSON_TOKENER_ALLOW_TRAILING_CHARS
    /* We check what follows ourselves, so trailing whitespace is fine. */
    flags |= JSON_TOKENER_ALLOW_TRAILING_CHARS;
#endif
    if ((tok = json_tokener_new_ex(YTK_LINKS_MAX_DEPTH)) == NULL) {
        return NULL;
    }
    json_tokener_set_flags(tok, flags);
    obj = json_tokener_parse_ex(tok, buf, (int)len);
    if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(obj);
        json_tokener_free(tok);
        return NULL;
    }
#if defined(JSON_C_VERSION_NUM) && JSON_C_VERSION_NUM >= 0x000f00
    end = json_tokener_get_parse_end(tok);
#else
    end = (size_t)tok->char_offset;
#endif
    json_tokener_free(tok);
    if (!all_finite(obj)) {
        json_object_put(obj);
        return NULL;
    }
    for (; end < len; end++) {
        if (!is_ws((unsigned char)buf[end])) {
            json_object_put(obj);
            return NULL;
        }
    }
    return obj;
}

/* A string or an array of strings into @a out. */
static ytk_links_rc take_value(json_object *v, size_t max_links,
                               ytk_links *out)
{
    size_t i, n, cap = 0;
    ytk_links_rc rc;
    json_object *e;

    if (json_object_is_type(v, json_type_string)) {
        return links_push(out, &cap, json_object_get_string(v),
                          (size_t)json_object_get_string_len(v));
    }
    if (!json_object_is_type(v, json_type_array)) {
        return YTK_LINKS_BAD_TYPE;
    }
    n = json_object_array_length(v);
    if (n == 0) {
        return YTK_LINKS_EMPTY;
    }
    for (i = 0; i < n; i++) {
        if (!json_object_is_type(json_object_array_get_idx(v, i),
                                 json_type_string)) {
            return YTK_LINKS_BAD_TYPE;
        }
    }
    if (max_links > 0 && n > max_links) {
        return YTK_LINKS_TOO_MANY;
    }
    for (i = 0; i < n; i++) {
        e = json_object_array_get_idx(v, i);
        rc = links_push(out, &cap, json_object_get_string(e),
                        (size_t)json_object_get_string_len(e));
        if (rc != YTK_LINKS_OK) {
            return rc;
        }
    }
    return YTK_LINKS_OK;
}

/* First of @a fields present in object @a obj wins. */
static ytk_links_rc from_object(json_object *obj, const char *const *fields,
                                size_t max_links, ytk_links *out)
{
    json_object *v;
    size_t i;

    for (i = 0; fields[i]; i++) {
        if (json_object_object_get_ex(obj, fields[i], &v)) {
            return take_value(v, max_links, out);
        }
    }
    return YTK_LINKS_NO_FIELD;
}

static ytk_links_rc finish(ytk_links_rc rc, ytk_links *out)
{
    if (rc != YTK_LINKS_OK) {
        ytk_links_free(out);
    }
    return rc;
}

ytk_links_rc ytk_links_from_json(const char *buf, size_t len,
                                 size_t max_links, ytk_links *out)
{
    static const char *const fields[] = { "links", "link", NULL };
    json_object *obj;
    ytk_links_rc rc;

    links_init(out);
    if (buf == NULL || len == 0) {
        return YTK_LINKS_BAD_JSON;
    }
    obj = parse_json(buf, len);
    if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        return YTK_LINKS_BAD_JSON;
    }
    rc = from_object(obj, fields, max_links, out);
    json_object_put(obj);
    return finish(rc, out);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/*
 * Decode s[0..len) into dst (which may be NULL to only validate).
 * Returns the decoded length, or (size_t)-1 on a bad escape.
 */
static size_t form_decode(const char *s, size_t len, char *dst)
{
    size_t i, o = 0;
    int hi, lo;

    for (i = 0; i < len; i++) {
        char c = s[i];

        if (c == '+') {
            c = ' ';
        }
        else if (c == '%') {
            if (i + 2 >= len) {
                return (size_t)-1;
            }
            hi = hexval((unsigned char)s[i + 1]);
            lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) {
                return (size_t)-1;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (dst) {
            dst[o] = c;
        }
        o++;
    }
    return o;
}

ytk_links_rc ytk_links_from_form(const char *buf, size_t len,
                                 size_t max_links, ytk_links *out)
{
    size_t i = 0, start, eq, cap = 0, n;
    ytk_links_rc rc = YTK_LINKS_OK;
    int found = 0;
    char name[8];
    char *val;

    links_init(out);
    if (buf == NULL || len == 0) {
        return YTK_LINKS_EMPTY;
    }
    /* Validate every escape first: a malformed body is rejected whole. */
    if (form_decode(buf, len, NULL) == (size_t)-1) {
        return YTK_LINKS_BAD_FORM;
    }
    while (i <= len && rc == YTK_LINKS_OK) {
        start = i;
        eq = (size_t)-1;
        while (i < len && buf[i] != '&') {
            if (buf[i] == '=' && eq == (size_t)-1) {
                eq = i;
            }
            i++;
        }
        if (eq == (size_t)-1) {
            eq = i;
        }
        /* Names longer than "links" cannot match; skip decoding them. */
        if (eq - start <= 3 * sizeof(name)
            && (n = form_decode(buf + start, eq - start, NULL)) == 5) {
            form_decode(buf + start, eq - start, name);
            if (memcmp(name, "links", 5) == 0) {
                found = 1;
                if (max_links > 0 && out->n >= max_links) {
                    rc = YTK_LINKS_TOO_MANY;
                    break;
                }
                start = eq < i ? eq + 1 : i;
                n = form_decode(buf + start, i - start, NULL);
                if ((val = malloc(n + 1)) == NULL) {
                    rc = YTK_LINKS_NOMEM;
                    break;
                }
                form_decode(buf + start, i - start, val);
                rc = links_push(out, &cap, val, n);
                free(val);
            }
        }
        i++;
    }
    if (rc == YTK_LINKS_OK && !found) {
        rc = YTK_LINKS_NO_FIELD;
    }
    return finish(rc, out);
}

/*
 * Fast path for the common message value: a flat object whose keys and
 * values are all plain strings of printable ASCII without escapes, e.g.
 * {"links":"https://...","video_id":"...",...}. parse_json accepts every
 * such text with the same meaning, so the result is the same; anything else
 * (other types, escapes, non-ASCII, nesting, malformed) returns -1 and the
 * caller takes the general json-c path. Otherwise @a out is filled like
 * from_object() would (the last of duplicate keys wins, as in json-c) and
 * the return code is returned.
 */
static size_t skip_ws(const char *buf, size_t len, size_t i)
{
    while (i < len && is_ws((unsigned char)buf[i])) {
        i++;
    }
    return i;
}

/* A plain string at buf[*i]: its body is [*start, *end), *i moves past it. */
static int plain_str(const char *buf, size_t len, size_t *i, size_t *start,
                     size_t *end)
{
    size_t k = *i;

    if (k >= len || buf[k] != '"') {
        return -1;
    }
    *start = ++k;
    for (; k < len; k++) {
        unsigned char c = (unsigned char)buf[k];

        if (c == '"') {
            *end = k;
            *i = k + 1;
            return 0;
        }
        if (c < 0x20 || c > 0x7E || c == '\\') {
            return -1;
        }
    }
    return -1;
}

static int fast_path_on = 1;

void ytk_links_set_fast_path(int on)
{
    fast_path_on = on;
}

static int value_fast(const char *buf, size_t len, const char *const *fields,
                      ytk_links *out, ytk_links_rc *rc)
{
    /* per field: start and end of the last value seen, start 0 = none */
    size_t vs[4] = { 0, 0, 0, 0 }, ve[4] = { 0, 0, 0, 0 };
    size_t i = 0, ks, ke, s, e, f, cap = 0;

    if (len == 0 || len > (size_t)INT32_MAX || buf[0] != '{') {
        return -1;
    }
    i = skip_ws(buf, len, 1);
    if (i < len && buf[i] == '}') {
        i++;
    }
    else {
        for (;;) {
            if (plain_str(buf, len, &i, &ks, &ke) != 0) {
                return -1;
            }
            i = skip_ws(buf, len, i);
            if (i >= len || buf[i] != ':') {
                return -1;
            }
            i = skip_ws(buf, len, i + 1);
            if (plain_str(buf, len, &i, &s, &e) != 0) {
                return -1;
            }
            for (f = 0; f < 4 && fields[f]; f++) {
                if (strlen(fields[f]) == ke - ks
                    && memcmp(fields[f], buf + ks, ke - ks) == 0) {
                    vs[f] = s;
                    ve[f] = e;
                    break;
                }
            }
            i = skip_ws(buf, len, i);
            if (i < len && buf[i] == ',') {
                i = skip_ws(buf, len, i + 1);
                continue;
            }
            if (i < len && buf[i] == '}') {
                i++;
                break;
            }
            return -1;
        }
    }
    if (skip_ws(buf, len, i) != len) {
        return -1;
    }
    for (f = 0; f < 4 && fields[f]; f++) {
        if (vs[f]) {
            *rc = finish(links_push(out, &cap, buf + vs[f], ve[f] - vs[f]),
                         out);
            return 0;
        }
    }
    *rc = YTK_LINKS_NO_FIELD;
    return 0;
}

ytk_links_rc ytk_links_from_value(const char *buf, size_t len,
                                  size_t max_links, ytk_links *out)
{
    static const char *const fields[] = { "links", "link", "url", NULL };
    json_object *obj;
    ytk_links_rc rc;
    size_t cap = 0, b = 0, e = len;

    links_init(out);
    if (buf == NULL) {
        return YTK_LINKS_EMPTY;
    }
    while (b < e && is_ws((unsigned char)buf[b])) {
        b++;
    }
    while (e > b && is_ws((unsigned char)buf[e - 1])) {
        e--;
    }
    if (b == e) {
        return YTK_LINKS_EMPTY;
    }
    if (buf[b] != '{' && buf[b] != '[' && buf[b] != '"') {
        /* A bare URL: the value itself, trimmed. */
        return finish(links_push(out, &cap, buf + b, e - b), out);
    }
    if (fast_path_on && value_fast(buf + b, e - b, fields, out, &rc) == 0) {
        return rc;
    }
    if ((obj = parse_json(buf + b, e - b)) == NULL) {
        return YTK_LINKS_BAD_JSON;
    }
    if (json_object_is_type(obj, json_type_object)) {
        rc = from_object(obj, fields, max_links, out);
    }
    else if (json_object_is_type(obj, json_type_string)) {
        rc = take_value(obj, max_links, out);
    }
    else {
        rc = YTK_LINKS_BAD_TYPE;
    }
    json_object_put(obj);
    return finish(rc, out);
}

const char *ytk_links_code(ytk_links_rc rc)
{
    switch (rc) {
    case YTK_LINKS_OK:       return "ok";
    case YTK_LINKS_BAD_JSON: return "bad_json";
    case YTK_LINKS_NO_FIELD: return "no_field";
    case YTK_LINKS_BAD_TYPE: return "bad_type";
    case YTK_LINKS_EMPTY:    return "empty";
    case YTK_LINKS_TOO_MANY: return "too_many";
    case YTK_LINKS_NOMEM:    return "nomem";
    case YTK_LINKS_BAD_FORM: return "bad_form";
    }
    return "unknown";
}

const char *ytk_links_strerror(ytk_links_rc rc)
{
    switch (rc) {
    case YTK_LINKS_OK:       return "ok";
    case YTK_LINKS_BAD_JSON: return "body is not valid JSON";
    case YTK_LINKS_NO_FIELD: return "no links field";
    case YTK_LINKS_BAD_TYPE:
        return "links must be a string or an array of strings";
    case YTK_LINKS_EMPTY:    return "no link given";
    case YTK_LINKS_TOO_MANY: return "too many links";
    case YTK_LINKS_NOMEM:    return "out of memory";
    case YTK_LINKS_BAD_FORM: return "form body has an invalid %-escape";
    }
    return "unknown error";
}
