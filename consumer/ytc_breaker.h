/**
 * @file ytc_breaker.h
 * @brief Failure classifier and outage breaker of the consumer (pure: no
 *        Kafka, no network, no clock of its own; unit-tested).
 *
 * A dependency every message needs (YouTube, the database, the results and
 * DLQ topics) is "out" when recent failures span different videos with no
 * success in between, or when a check of the dependency itself, sent
 * alongside a video's retry, fails too (ytc_check_says_up). While it is
 * out the loop takes no new messages, holds the work it has without
 * spending attempts, and sends one probe at a time with a capped
 * exponential delay; the first success closes the breaker.
 */
#ifndef YTC_BREAKER_H
#define YTC_BREAKER_H

#include <stdint.h>

#include "ytc_meta.h"

/** Distinct keys remembered per failure streak. */
#define YTC_BREAKER_KEYS 4

/** One dependency's breaker. Zero it with ytc_breaker_init(). */
typedef struct {
    const char *name;       /**< for logs: "youtube", "database", ... */
    int open;               /**< 1 while the dependency is out */
    int streak;             /**< failures since the last success */
    int nkeys;              /**< distinct keys in the streak (capped) */
    char keys[YTC_BREAKER_KEYS][16];
    int threshold;          /**< failures that open it ... */
    int min_keys;           /**< ... spanning at least this many keys */
    long min_ms, max_ms;    /**< probe delay: first, cap */
    long probe_ms;          /**< current probe delay */
    int64_t probe_due;      /**< usec: when the next probe may go */
    int probing;            /**< a probe is in flight */
    char answered[16];      /**< the last key given a real answer: what a
                                 check asks about ("" if none yet) */
} ytc_breaker;

/**
 * @param threshold failures without a success that open the breaker
 * @param min_keys  distinct keys (videos) they must span (1 = any)
 */
void ytc_breaker_init(ytc_breaker *b, const char *name, int threshold,
                      int min_keys, long min_ms, long max_ms);

/**
 * Record a failure of @a key (may be NULL) at @a now (usec).
 * @return 1 if this failure opened the breaker, 0 otherwise
 */
int ytc_breaker_failure(ytc_breaker *b, const char *key, int64_t now);

/**
 * Record a success.
 * @return 1 if this success closed an open breaker, 0 otherwise
 */
int ytc_breaker_success(ytc_breaker *b);

/**
 * Open the breaker now, whatever the streak: a failure of one video was
 * checked against the dependency itself and the check failed too.
 * @return 1 if this opened it, 0 if it was open already
 */
int ytc_breaker_trip(ytc_breaker *b, int64_t now);

/**
 * Did YouTube itself answer the check sent alongside a retry (the watch
 * page or the oEmbed answer, whichever failed (ytc_check_asks_oembed), of
 * another video that got a real answer lately, its home page if none)?
 * Any HTTP answer but a 5xx or 429 says YouTube is up, so the video's
 * failure is its own; no answer, a 5xx or a 429 says it is out.
 */
int ytc_check_says_up(const ytc_http_answer *check);

/**
 * @a key got a real answer (ok or a definitive one): checks ask about it.
 */
void ytc_breaker_answered(ytc_breaker *b, const char *key);

/**
 * The key a check of the dependency, sent alongside a retry of @a key,
 * should ask about: the last key given a real answer if it is another
 * one, NULL if none (then the check asks about the dependency as a whole).
 */
const char *ytc_breaker_check_key(const ytc_breaker *b, const char *key);

/** What ytc_breaker_checked_failure() decided. */
typedef enum {
    YTC_BREAKER_COUNTED = 0,    /**< counted; the breaker stays as it was */
    YTC_BREAKER_OPENED,         /**< this failure opened the breaker */
    YTC_BREAKER_OWN,            /**< the check was answered: the key's own
                                     failure, and a success of the
                                     dependency (the streak restarts) */
    YTC_BREAKER_OWN_CLOSED      /**< the same, and it closed the breaker */
} ytc_breaker_verdict;

/**
 * Record a failure of @a key that may be an outage, with the answer of the
 * check of the dependency itself sent alongside it (@a check, NULL if no
 * check was sent): a check answered (ytc_check_says_up) makes it the key's
 * own failure; a failed check opens the breaker (ytc_breaker_trip);
 * without a check it is ytc_breaker_failure().
 */
ytc_breaker_verdict ytc_breaker_checked_failure(ytc_breaker *b,
                                                const char *key,
                                                const ytc_http_answer *check,
                                                int64_t now);

/** Open, no probe in flight and the probe delay passed. */
int ytc_breaker_probe_ready(const ytc_breaker *b, int64_t now);

/** Milliseconds until a probe may go (0 if now), -1 if closed. */
long ytc_breaker_wait_ms(const ytc_breaker *b, int64_t now);

/**
 * Is this failed attempt a sign of a YouTube/network outage rather than of
 * the video? True for a transient outcome where a transfer did not complete
 * (status 0: refused, DNS, timeout) or YouTube answered 5xx or 429.
 */
int ytc_failure_is_infra(ytc_outcome out, const ytc_http_answer *watch,
                         const ytc_http_answer *oembed);

/** Bits of ytc_failure_where(): the endpoint(s) that gave an outage-like
 *  answer. */
#define YTC_FAILED_WATCH  1
#define YTC_FAILED_OEMBED 2

/**
 * Which of a video's two requests gave an answer that may mean an outage
 * (status 0, 429, 5xx): YTC_FAILED_WATCH, YTC_FAILED_OEMBED, both or 0.
 */
int ytc_failure_where(const ytc_http_answer *watch,
                      const ytc_http_answer *oembed);

/**
 * Should the check of YouTube sent with an attempt ask for the oEmbed
 * answer of the reference video rather than its watch page? A check must
 * ask for the kind of resource that failed, or an outage of one endpoint
 * looks like failures of the videos (the other endpoint answers the
 * check). @a job_where is the ytc_failure_where() of the job's last
 * outage-like failure (0 if none), @a last_where that of the last one the
 * YouTube breaker counted, used when the job has none (a probe or a last
 * attempt of a job that never failed). Only an oEmbed-only failure asks
 * for oEmbed; both, the watch page alone or nothing known ask for the
 * watch page, as the check was before it knew the kind.
 */
int ytc_check_asks_oembed(int job_where, int last_where);

/**
 * Delay before retry number @a attempts (1 = after the first failure):
 * equal-jitter exponential from @a base_ms capped at @a cap_ms, or
 * @a retry_after seconds (if >= 0) clamped to [0, @a cap_ms]. @a rnd is
 * any random value. Never negative, never overflows.
 */
long ytc_backoff_delay_ms(long base_ms, long cap_ms, int attempts,
                          long retry_after, unsigned int rnd);

#endif /* YTC_BREAKER_H */
