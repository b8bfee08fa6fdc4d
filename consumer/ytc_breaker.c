/*
 * The failure classifier and the outage breaker: pure functions, so the
 * decisions can be tested without Kafka or a network.
 */
#include <string.h>

#include "ytc_breaker.h"

void ytc_breaker_init(ytc_breaker *b, const char *name, int threshold,
                      int min_keys, long min_ms, long max_ms)
{
    memset(b, 0, sizeof(*b));
    b->name = name;
    b->threshold = threshold > 0 ? threshold : 1;
    b->min_keys = min_keys > 0 ? min_keys : 1;
    if (b->min_keys > YTC_BREAKER_KEYS) {
        b->min_keys = YTC_BREAKER_KEYS;
    }
    b->min_ms = min_ms > 0 ? min_ms : 1;
    b->max_ms = max_ms >= b->min_ms ? max_ms : b->min_ms;
}

static void add_key(ytc_breaker *b, const char *key)
{
    int i;

    if (!key) {
        key = "";
    }
    for (i = 0; i < b->nkeys; i++) {
        if (!strncmp(b->keys[i], key, sizeof(b->keys[i]) - 1)) {
            return;
        }
    }
    if (b->nkeys < YTC_BREAKER_KEYS) {
        strncpy(b->keys[b->nkeys], key, sizeof(b->keys[0]) - 1);
        b->keys[b->nkeys][sizeof(b->keys[0]) - 1] = '\0';
        b->nkeys++;
    }
}

int ytc_breaker_failure(ytc_breaker *b, const char *key, int64_t now)
{
    if (b->streak < 1000000) {
        b->streak++;
    }
    add_key(b, key);
    if (b->open) {
        /* a failed probe: wait longer before the next one */
        b->probing = 0;
        b->probe_ms = b->probe_ms * 2 > b->max_ms ? b->max_ms
                                                  : b->probe_ms * 2;
        b->probe_due = now + (int64_t)b->probe_ms * 1000;
        return 0;
    }
    if (b->streak >= b->threshold && b->nkeys >= b->min_keys) {
        return ytc_breaker_trip(b, now);
    }
    return 0;
}

int ytc_breaker_trip(ytc_breaker *b, int64_t now)
{
    if (b->open) {
        return 0;
    }
    b->open = 1;
    b->probing = 0;
    b->probe_ms = b->min_ms;
    b->probe_due = now + (int64_t)b->probe_ms * 1000;
    return 1;
}

int ytc_breaker_success(ytc_breaker *b)
{
    int was = b->open;

    b->open = 0;
    b->probing = 0;
    b->streak = 0;
    b->nkeys = 0;
    return was;
}

int ytc_breaker_probe_ready(const ytc_breaker *b, int64_t now)
{
    return b->open && !b->probing && now >= b->probe_due;
}

long ytc_breaker_wait_ms(const ytc_breaker *b, int64_t now)
{
    if (!b->open) {
        return -1;
    }
    if (now >= b->probe_due) {
        return 0;
    }
    return (long)((b->probe_due - now) / 1000) + 1;
}

static int infra_answer(const ytc_http_answer *a)
{
    return a && (a->status == 0 || a->status == 429 || a->status >= 500);
}

int ytc_check_says_up(const ytc_http_answer *check)
{
    return check && !infra_answer(check);
}

void ytc_breaker_answered(ytc_breaker *b, const char *key)
{
    if (key) {
        strncpy(b->answered, key, sizeof(b->answered) - 1);
        b->answered[sizeof(b->answered) - 1] = '\0';
    }
}

const char *ytc_breaker_check_key(const ytc_breaker *b, const char *key)
{
    if (!b->answered[0]
        || (key && !strncmp(b->answered, key, sizeof(b->answered) - 1))) {
        return NULL;
    }
    return b->answered;
}

ytc_breaker_verdict ytc_breaker_checked_failure(ytc_breaker *b,
                                                const char *key,
                                                const ytc_http_answer *check,
                                                int64_t now)
{
    if (ytc_check_says_up(check)) {
        return ytc_breaker_success(b) ? YTC_BREAKER_OWN_CLOSED
                                      : YTC_BREAKER_OWN;
    }
    if (ytc_breaker_failure(b, key, now)
        || (check && ytc_breaker_trip(b, now))) {
        return YTC_BREAKER_OPENED;
    }
    return YTC_BREAKER_COUNTED;
}

int ytc_failure_is_infra(ytc_outcome out, const ytc_http_answer *watch,
                         const ytc_http_answer *oembed)
{
    return out == YTC_OUT_TRANSIENT
           && (infra_answer(watch) || infra_answer(oembed));
}

int ytc_failure_where(const ytc_http_answer *watch,
                      const ytc_http_answer *oembed)
{
    return (infra_answer(watch) ? YTC_FAILED_WATCH : 0)
           | (infra_answer(oembed) ? YTC_FAILED_OEMBED : 0);
}

int ytc_check_asks_oembed(int job_where, int last_where)
{
    int where = job_where ? job_where : last_where;

    return where == YTC_FAILED_OEMBED;
}

long ytc_backoff_delay_ms(long base_ms, long cap_ms, int attempts,
                          long retry_after, unsigned int rnd)
{
    long d;
    int i;

    if (cap_ms < 1) {
        cap_ms = 1;
    }
    if (base_ms < 1) {
        base_ms = 1;
    }
    if (base_ms > cap_ms) {
        base_ms = cap_ms;
    }
    if (retry_after >= 0) {
        /* the server said when; clamp before multiplying, a little jitter
         * keeps a crowd apart */
        d = retry_after > cap_ms / 1000 ? cap_ms : retry_after * 1000;
        return d + (long)(rnd % 250);
    }
    d = base_ms;
    for (i = 1; i < attempts && d < cap_ms; i++) {
        d = d > cap_ms / 2 ? cap_ms : d * 2;
    }
    if (d > cap_ms) {
        d = cap_ms;
    }
    /* equal jitter: half fixed, half random */
    return d / 2 + (d > 1 ? (long)((unsigned long)rnd
                                   % ((unsigned long)d / 2 + 1)) : 0);
}
