/* The Kafka message value. See ytk_envelope.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "ytk_envelope.h"
#include "ytk_url.h"

/* json_object_object_add() takes ownership even of NULL; track failures. */
static int add_str(json_object *o, const char *key, const char *s, size_t len)
{
    json_object *v = NULL;

    if (s != NULL) {
        if ((v = json_object_new_string_len(s, (int)len)) == NULL) {
            return -1;
        }
    }
    return json_object_object_add(o, key, v) == 0 ? 0 : -1;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629), else 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len, i;
    unsigned lo = 0x80, hi = 0xbf;

    if (s[0] < 0x80) {
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
    }
    else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        lo = s[0] == 0xe0 ? 0xa0 : 0x80;
        hi = s[0] == 0xed ? 0x9f : 0xbf;    /* no surrogates */
    }
    else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        lo = s[0] == 0xf0 ? 0x90 : 0x80;
        hi = s[0] == 0xf4 ? 0x8f : 0xbf;
    }
    else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }
    return len;
}

/*
 * JSON must be UTF-8. Bytes of a submitted URL that are not UTF-8 are
 * percent-encoded, which is how they travel in a URL anyway.
 * Returns a malloc'd copy, or NULL (and *fixed = 0) if none was needed.
 */
static char *utf8_fix(const char *url, size_t len, size_t *fixed, int *err)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *u = (const unsigned char *)url;
    size_t i, k, o = 0, bad = 0;
    char *res;

    *err = 0;
    *fixed = 0;
    for (i = 0; i < len; i += k) {
        if ((k = utf8_len(u + i, len - i)) == 0) {
            bad++;
            k = 1;
        }
    }
    if (bad == 0) {
        return NULL;
    }
    if ((res = malloc(len + 2 * bad + 1)) == NULL) {
        *err = 1;
        return NULL;
    }
    for (i = 0; i < len; i += k) {
        if ((k = utf8_len(u + i, len - i)) == 0) {
            res[o++] = '%';
            res[o++] = hex[u[i] >> 4];
            res[o++] = hex[u[i] & 15];
            k = 1;
        }
        else {
            memcpy(res + o, url + i, k);
            o += k;
        }
    }
    res[o] = '\0';
    *fixed = o;
    return res;
}

char *ytk_envelope_build(const char *video_id, const char *url, size_t url_len,
                         const char *request_id, const char *received_at,
                         const char *source, size_t *out_len)
{
    char canon[64], now[32], *fixed_url;
    size_t fixed_len;
    json_object *o;
    int err;
    const char *js;
    char *res = NULL;

    if (out_len) {
        *out_len = 0;
    }
    /* ytk_video_id_valid() stops at a NUL, so video_id[11] is in bounds. */
    if (video_id == NULL || !ytk_video_id_valid(video_id, YTK_VIDEO_ID_LEN)
        || video_id[YTK_VIDEO_ID_LEN] != '\0'
        || (url == NULL && url_len > 0) || url_len > (size_t)0x20000000) {
        return NULL;
    }
    ytk_canonical_url(video_id, canon, sizeof(canon));
    if (received_at == NULL) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ytk_format_time((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000,
                        now, sizeof(now));
        received_at = now;
    }
    if (source == NULL) {
        source = YTK_SOURCE;
    }
    if (url == NULL) {
        url = "";
    }
    fixed_url = utf8_fix(url, url_len, &fixed_len, &err);
    if (err) {
        return NULL;
    }
    if (fixed_url != NULL) {
        url = fixed_url;
        url_len = fixed_len;
    }
    if ((o = json_object_new_object()) == NULL) {
        free(fixed_url);
        return NULL;
    }
    if (add_str(o, "links", canon, strlen(canon)) == 0
        && add_str(o, "video_id", video_id, YTK_VIDEO_ID_LEN) == 0
        && add_str(o, "url", url, url_len) == 0
        && add_str(o, "request_id", request_id,
                   request_id ? strlen(request_id) : 0) == 0
        && add_str(o, "received_at", received_at, strlen(received_at)) == 0
        && add_str(o, "source", source, strlen(source)) == 0) {
        js = json_object_to_json_string_ext(
            o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (js != NULL && (res = strdup(js)) != NULL && out_len) {
            *out_len = strlen(res);
        }
    }
    json_object_put(o);
    free(fixed_url);
    return res;
}

void ytk_format_time(int64_t usec, char *buf, size_t buflen)
{
    int64_t sec = usec / 1000000, rem = usec % 1000000;
    struct tm tm;
    time_t t;

    if (buf == NULL || buflen == 0) {
        return;
    }
    buf[0] = '\0';
    if (rem < 0) {
        /* floor division, so times before 1970 still read forwards */
        rem += 1000000;
        sec -= 1;
    }
    t = (time_t)sec;
    if (buflen < 25 || gmtime_r(&t, &tm) == NULL
        || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
        return;
    }
    snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(rem / 1000));
}
