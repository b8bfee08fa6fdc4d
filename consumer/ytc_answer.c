/* What one HTTP answer says about YouTube: its failure kind, and its
 * Retry-After, clamped. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* memmem */
#endif
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ytc_meta.h"
#include <time.h>

const char *ytc_failure_kind_name(ytc_failure_kind k)
{
    switch (k) {
    case YTC_FAIL_NONE:       return "none";
    case YTC_FAIL_DEFINITIVE: return "definitive";
    case YTC_FAIL_VIDEO:      return "video";
    default:                  return "network";
    }
}

ytc_failure_kind ytc_meta_failure_kind(const ytc_http_answer *a)
{
    if (a->status == 0) {
        switch (a->transport) {
        case YTC_TRANSPORT_TOO_LARGE: return YTC_FAIL_DEFINITIVE;
        case YTC_TRANSPORT_TIMEOUT:   return YTC_FAIL_VIDEO;
        default:                      return YTC_FAIL_NETWORK;
        }
    }
    if (a->status == 200) {
        return YTC_FAIL_NONE;
    }
    if (a->status == 429 || a->status == 408 || a->status >= 500
        || (a->status >= 300 && a->status < 400)) {
        return YTC_FAIL_VIDEO;
    }
    return YTC_FAIL_DEFINITIVE;
}

int ytc_meta_network_failure(const ytc_http_answer *a)
{
    if (!a) {
        return 0;
    }
    if (a->status == 0) {
        return a->transport != YTC_TRANSPORT_TOO_LARGE;
    }
    return a->status == 502 || a->status == 503 || a->status == 504;
}

/* a non-negative decimal, saturating at YTC_RETRY_AFTER_MAX */
static long retry_after_delta(const char *s)
{
    long v = 0;

    if (*s < '0' || *s > '9') {
        return -1;
    }
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v <= YTC_RETRY_AFTER_MAX) {
            v = v * 10 + (*s - '0');
        }
    }
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    if (*s) {
        return -1;
    }
    return v > YTC_RETRY_AFTER_MAX ? YTC_RETRY_AFTER_MAX : v;
}

long ytc_meta_retry_after(const char *value, time_t now)
{
    static const char *const forms[] = {
        "%a, %d %b %Y %H:%M:%S GMT",   /* IMF-fixdate */
        "%A, %d-%b-%y %H:%M:%S GMT",   /* RFC 850 */
        "%a %b %e %H:%M:%S %Y",        /* asctime */
    };
    size_t i;

    if (!value) {
        return -1;
    }
    while (*value == ' ' || *value == '\t') {
        value++;
    }
    if (*value >= '0' && *value <= '9') {
        return retry_after_delta(value);
    }
    for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        struct tm tm;
        const char *e;
        time_t when;

        memset(&tm, 0, sizeof(tm));
        e = strptime(value, forms[i], &tm);
        if (!e) {
            continue;
        }
        while (*e == ' ' || *e == '\t') {
            e++;
        }
        if (*e) {
            continue;
        }
        when = timegm(&tm);
        if (when == (time_t)-1) {
            return -1;
        }
        if (when <= now) {
            return 0;
        }
        return (when - now > YTC_RETRY_AFTER_MAX)
            ? YTC_RETRY_AFTER_MAX : (long)(when - now);
    }
    return -1;
}
