/* The Kafka message value. See ytk_envelope.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ytk_envelope.h"
#include "ytk_url.h"

/* The second byte of a two-byte escape, else 0. */
static char short_escape(unsigned char c)
{
    switch (c) {
    case '"':
        return '"';
    case '\\':
        return '\\';
    case '\b':
        return 'b';
    case '\f':
        return 'f';
    case '\n':
        return 'n';
    case '\r':
        return 'r';
    case '\t':
        return 't';
    default:
        return 0;
    }
}

size_t ytk_json_escaped_len(const char *s, size_t len)
{
    size_t i, n = len;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (short_escape(c)) {
            n += 1;
        }
        else if (c < 0x20) {
            n += 5;
        }
    }
    return n;
}

size_t ytk_json_escape(char *dst, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char *o = dst;
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char e = short_escape(c);

        if (e) {
            o[0] = '\\';
            o[1] = e;
            o += 2;
        }
        else if (c < 0x20) {
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
        }
        else {
            *o++ = (char)c;
        }
    }
    return (size_t)(o - dst);
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

int ytk_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, k;

    while (i < len) {
        if ((k = utf8_len(u + i, len - i)) == 0) {
            return 0;
        }
        i += k;
    }
    return 1;
}

/*
 * JSON must be UTF-8. Bytes of a submitted URL that are not UTF-8 are
 * percent-encoded, which is how they travel in a URL anyway.
 */
size_t ytk_utf8_fixed_len(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i, k, n = len;

    for (i = 0; i < len; i += k) {
        if ((k = utf8_len(u + i, len - i)) == 0) {
            n += 2;
            k = 1;
        }
    }
    return n;
}

size_t ytk_utf8_fix(char *dst, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *u = (const unsigned char *)s;
    size_t i, k, o = 0;

    for (i = 0; i < len; i += k) {
        if ((k = utf8_len(u + i, len - i)) == 0) {
            dst[o++] = '%';
            dst[o++] = hex[u[i] >> 4];
            dst[o++] = hex[u[i] & 15];
            k = 1;
        }
        else {
            memcpy(dst + o, s + i, k);
            o += k;
        }
    }
    return o;
}

/* Append "key": and the escaped string value, or null. */
static char *put_field(char *o, const char *key, const char *v, size_t len)
{
    size_t k = strlen(key);

    memcpy(o, key, k);
    o += k;
    if (v == NULL) {
        memcpy(o, "null", 4);
        return o + 4;
    }
    *o++ = '"';
    o += ytk_json_escape(o, v, len);
    *o++ = '"';
    return o;
}

/* The same bytes json-c gave (JSON_C_TO_STRING_PLAIN, NOSLASHESCAPE), in
 * one allocation: this runs once per message. */
static char *envelope_write(const char *canon, const char *video_id,
                            const char *url, size_t url_len,
                            const char *request_id, const char *received_at,
                            const char *source, size_t *out_len)
{
    static const char *const keys[] = {
        "{\"links\":", ",\"video_id\":", ",\"url\":", ",\"request_id\":",
        ",\"received_at\":", ",\"source\":"
    };
    const char *vals[6];
    size_t lens[6], total = 2, i;
    char *res, *o;

    vals[0] = canon;
    vals[1] = video_id;
    vals[2] = url;
    vals[3] = request_id;
    vals[4] = received_at;
    vals[5] = source;
    lens[0] = strlen(canon);
    lens[1] = YTK_VIDEO_ID_LEN;
    lens[2] = url_len;
    lens[3] = request_id ? strlen(request_id) : 0;
    lens[4] = strlen(received_at);
    lens[5] = strlen(source);
    for (i = 0; i < 6; i++) {
        /* the key, the quotes (or "null") and the escaped value */
        total += strlen(keys[i]) + 4
                 + (vals[i] ? ytk_json_escaped_len(vals[i], lens[i]) : 0);
    }
    if ((res = malloc(total)) == NULL) {
        return NULL;
    }
    o = res;
    for (i = 0; i < 6; i++) {
        o = put_field(o, keys[i], vals[i], lens[i]);
    }
    *o++ = '}';
    *o = '\0';
    if (out_len) {
        *out_len = (size_t)(o - res);
    }
    return res;
}

char *ytk_envelope_build(const char *video_id, const char *url, size_t url_len,
                         const char *request_id, const char *received_at,
                         const char *source, size_t *out_len)
{
    char canon[64], now[32], *fixed_url = NULL;
    size_t fixed_len;
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
    fixed_len = ytk_utf8_fixed_len(url, url_len);
    if (fixed_len != url_len) {
        if ((fixed_url = malloc(fixed_len)) == NULL) {
            return NULL;
        }
        url_len = ytk_utf8_fix(fixed_url, url, url_len);
        url = fixed_url;
    }
    res = envelope_write(canon, video_id, url, url_len, request_id,
                         received_at, source, out_len);
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
