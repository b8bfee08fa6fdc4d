/* Locating and parsing a watch page's ytInitialPlayerResponse: once, from
 * its real assignment, strictly, within the caps of ytc_meta.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* memmem */
#endif
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ytc_meta.h"

static const char NEEDLE[] = "ytInitialPlayerResponse";

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* after the name: optional `"]` / `']`, then `=` (not `==`), then `{` */
static const char *assignment_start(const char *page, const char *hit,
                                    const char *end)
{
    const char *q = hit + sizeof(NEEDLE) - 1;

    if (q < end && (*q == '"' || *q == '\'')) {
        if (hit - page < 2 || hit[-1] != *q || hit[-2] != '[') {
            return NULL;
        }
        q++;
        if (q >= end || *q != ']') {
            return NULL;
        }
        q++;
    }
    else if (hit > page && (hit[-1] == '"' || hit[-1] == '\\')) {
        return NULL;
    }
    while (q < end && is_ws(*q)) {
        q++;
    }
    if (q >= end || *q != '=' || (q + 1 < end && q[1] == '=')) {
        return NULL;
    }
    q++;
    while (q < end && is_ws(*q)) {
        q++;
    }
    return (q < end && *q == '{') ? q : NULL;
}

/* what scan_object() found */
typedef enum {
    SCAN_CLOSED = 0,   /* the object ends at *objlen */
    SCAN_OPEN,         /* ran to the end of the window unclosed */
    SCAN_DEEP,         /* nests past YTC_PR_MAX_DEPTH */
    SCAN_VALUES        /* holds more than YTC_PR_MAX_VALUES values */
} scan_result;

/*
 * Structural pre-scan of the object at @a start (its `{`), at most @a n
 * bytes: strings with their escapes, nesting, and a count of values
 * (every `{`, `[` and `,` outside a string starts one). One pass, no
 * allocation; json-c then parses exactly the bytes found, so a hostile
 * object is refused before it costs memory.
 */
static scan_result scan_object(const char *start, size_t n, size_t *objlen)
{
    const char *p = start, *end = start + n;
    long values = 0;
    int depth = 0;

    *objlen = 0;
    while (p < end) {
        char c = *p++;

        if (c == '"') {
            while (p < end && *p != '"') {
                if (*p == '\\') {
                    p++;
                }
                p++;
            }
            if (p >= end) {
                break;
            }
            p++;
            continue;
        }
        if (c == '{' || c == '[') {
            if (++depth > YTC_PR_MAX_DEPTH) {
                *objlen = n;    /* json-c reports the depth itself */
                return SCAN_DEEP;
            }
        }
        else if (c == '}' || c == ']') {
            if (--depth == 0) {
                *objlen = (size_t)(p - start);
                return SCAN_CLOSED;
            }
            continue;
        }
        else if (c != ',') {
            continue;
        }
        if (++values > YTC_PR_MAX_VALUES) {
            return SCAN_VALUES;
        }
    }
    *objlen = (size_t)(end - start);
    return SCAN_OPEN;
}

json_object *ytc_meta_player_response_ex(const char *page, size_t len,
                                         ytc_pr_status *status)
{
    const char *end = page + len, *hit = page;
    json_tokener *tok;
    int attempts = 0;

    *status = YTC_PR_NONE;
    if (!page) {
        return NULL;
    }
    tok = json_tokener_new_ex(YTC_PR_MAX_DEPTH);
    if (!tok) {
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT
                                | JSON_TOKENER_ALLOW_TRAILING_CHARS);
    /* Linear by construction: every parse attempt starts past the bytes the
     * previous one consumed, so each byte reaches the tokener at most once,
     * and the strict tokener has no comments to run to the end of the page
     * (the old loose parse restarted at every assignment followed by a
     * comment opener and was quadratic). */
    while (hit < end && attempts < YTC_PR_MAX_ATTEMPTS
           && (hit = memmem(hit, (size_t)(end - hit), NEEDLE,
                            sizeof(NEEDLE) - 1)) != NULL) {
        const char *start = assignment_start(page, hit, end);
        enum json_tokener_error jerr;
        json_object *obj;
        size_t remain, used, objlen;

        hit += sizeof(NEEDLE) - 1;
        if (!start) {
            continue;
        }
        attempts++;
        remain = (size_t)(end - start);
        if (remain > YTC_PR_MAX_BYTES) {
            remain = YTC_PR_MAX_BYTES;
        }
        /* past the value cap: final; otherwise json-c parses the bytes
         * the scan covered (all of the window when the object is open or
         * too deep, so the tokener reports depth, syntax or the size cap
         * itself); a scan is at most YTC_PR_MAX_BYTES and there are at
         * most YTC_PR_MAX_ATTEMPTS of them */
        if (scan_object(start, remain, &objlen) == SCAN_VALUES) {
            *status = YTC_PR_TOO_MANY_VALUES;
            break;
        }
        json_tokener_reset(tok);
        obj = json_tokener_parse_ex(tok, start, (int)objlen);
        jerr = json_tokener_get_error(tok);
        if (obj && json_object_is_type(obj, json_type_object)
            && (json_object_object_get_ex(obj, "playabilityStatus", NULL)
                || json_object_object_get_ex(obj, "videoDetails", NULL))) {
            json_tokener_free(tok);
            *status = YTC_PR_FOUND;
            return obj;
        }
        json_object_put(obj);
        if (jerr == json_tokener_error_depth) {
            *status = YTC_PR_TOO_DEEP;
            break;
        }
        if (jerr == json_tokener_continue
            && (size_t)(end - start) > YTC_PR_MAX_BYTES) {
            *status = YTC_PR_TOO_LARGE;
            break;
        }
        used = json_tokener_get_parse_end(tok);
        if (start + used > hit) {
            hit = start + used;
        }
    }
    if (*status == YTC_PR_NONE && attempts >= YTC_PR_MAX_ATTEMPTS) {
        *status = YTC_PR_TOO_MANY;
    }
    json_tokener_free(tok);
    return NULL;
}

json_object *ytc_meta_player_response(const char *page, size_t len)
{
    ytc_pr_status st;

    return ytc_meta_player_response_ex(page, len, &st);
}
