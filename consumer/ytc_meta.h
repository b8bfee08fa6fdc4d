/**
 * @file ytc_meta.h
 * @brief Turn YouTube's answers (oEmbed JSON, watch page) into a result.
 *
 * No network and no Kafka here: the functions take bodies and HTTP statuses,
 * so they can be driven from saved files (--parse-watch).
 */
#ifndef YTC_META_H
#define YTC_META_H

#include <stddef.h>
#include <time.h>
#include <json-c/json.h>

#include "ytc_row.h"

/** What one attempt at a video came to. */
typedef enum {
    YTC_OUT_OK = 0,       /**< metadata extracted */
    YTC_OUT_UNAVAILABLE,  /**< private, removed, unplayable, age-gated */
    YTC_OUT_TRANSIENT,    /**< try again later (5xx, 429, bot check, ...) */
    YTC_OUT_ERROR         /**< permanent failure of the extraction */
} ytc_outcome;

/** How a transfer ended below HTTP (set by the fetcher). */
typedef enum {
    YTC_TRANSPORT_OK = 0,   /**< an HTTP answer arrived (see status) */
    YTC_TRANSPORT_NETWORK,  /**< DNS, connection refused/reset, TLS: the
                                 network or the host is unreachable */
    YTC_TRANSPORT_TIMEOUT,  /**< the transfer ran past its timeout */
    YTC_TRANSPORT_TOO_LARGE,/**< the body passed YTC_FETCH_MAX_BODY */
    YTC_TRANSPORT_OTHER     /**< any other transfer failure */
} ytc_transport;

/**
 * What kind of failure one answer is, for retry and outage decisions.
 * See ytc_meta_failure_kind().
 */
typedef enum {
    YTC_FAIL_NONE = 0,   /**< a usable 200 */
    YTC_FAIL_DEFINITIVE, /**< a final answer about this video (404, 410,
                              other 4xx, a body past the caps) */
    YTC_FAIL_VIDEO,      /**< transient failure of this one video: 429,
                              5xx, 408, timeout, redirect, bot check */
    YTC_FAIL_NETWORK     /**< no HTTP answer at all (status 0): DNS,
                              connection refused or reset; says "YouTube or
                              the network is unreachable", not "this video
                              failed" */
} ytc_failure_kind;

/** One HTTP answer as the fetcher saw it. */
typedef struct {
    long status;            /**< HTTP status, 0 if the transfer failed */
    char *body;             /**< malloc'd, NUL terminated, may be NULL */
    size_t len;
    long retry_after;       /**< seconds from Retry-After, or -1 */
    char error[128];        /**< transfer error text when status is 0 */
    char location[256];     /**< Location of a redirect, or "" */
    ytc_transport transport;/**< how the transfer ended (0 = an answer);
                                 a zeroed answer reads as OK/status 0 */
} ytc_http_answer;

/** Longest Retry-After honoured, in seconds; longer values are clamped. */
#define YTC_RETRY_AFTER_MAX 300L

/** Largest player response parsed (bytes from its opening brace). */
#define YTC_PR_MAX_BYTES ((size_t)8 * 1024 * 1024)

/** Deepest JSON nesting accepted in a player response. */
#define YTC_PR_MAX_DEPTH 64

/**
 * Most JSON values (containers, members, elements) accepted in a player
 * response. A real one holds a few thousand; json-c spends ~70 bytes per
 * value, so this bounds the parse to a few tens of MB whatever the page
 * (an 8 MB array of zeros would otherwise cost ~280 MB).
 */
#define YTC_PR_MAX_VALUES 262144L

/** Assignments tried per page before giving up on it. */
#define YTC_PR_MAX_ATTEMPTS 16

/** What ytc_meta_player_response_ex() found. */
typedef enum {
    YTC_PR_FOUND = 0,  /**< the player response was parsed */
    YTC_PR_NONE,       /**< no usable assignment on the page */
    YTC_PR_TOO_LARGE,  /**< the object runs past YTC_PR_MAX_BYTES */
    YTC_PR_TOO_DEEP,   /**< the object nests past YTC_PR_MAX_DEPTH */
    YTC_PR_TOO_MANY,   /**< YTC_PR_MAX_ATTEMPTS assignments, none parsed */
    YTC_PR_TOO_MANY_VALUES /**< the object holds more than
                                YTC_PR_MAX_VALUES values */
} ytc_pr_status;

/** Name of @a o: "ok", "unavailable", "transient", "error". */
const char *ytc_outcome_name(ytc_outcome o);

/**
 * Locate the `ytInitialPlayerResponse = {...}` assignment in @a page and
 * parse the object with json_tokener, stopping where the object ends.
 * Decoys (window['ytInitialPlayerResponse'] reads, `playerResponse:
 * window.ytInitialPlayerResponse`, text inside JSON strings) are skipped.
 * @return a new reference, or NULL if there is none
 */
json_object *ytc_meta_player_response(const char *page, size_t len);

/**
 * As ytc_meta_player_response(), saying why nothing came back. Time and
 * memory are linear in @a len: the strict tokener (no comments, no loose
 * syntax) sees each byte of the page at most once, at most
 * YTC_PR_MAX_ATTEMPTS assignments are tried, and the object is capped at
 * YTC_PR_MAX_BYTES, YTC_PR_MAX_DEPTH and YTC_PR_MAX_VALUES (checked by a
 * structural pre-scan before json-c allocates anything).
 * @param status receives YTC_PR_FOUND when the result is not NULL
 */
json_object *ytc_meta_player_response_ex(const char *page, size_t len,
                                         ytc_pr_status *status);

/**
 * Classify one answer (pure; no I/O). The loop's outage breaker counts
 * YTC_FAIL_NETWORK (and, across different videos, YTC_FAIL_VIDEO) as signs
 * of an outage; YTC_FAIL_DEFINITIVE never is one. For a 200 whose content
 * is bad (bot check, no player response) ytc_meta_extract() decides.
 */
ytc_failure_kind ytc_meta_failure_kind(const ytc_http_answer *a);

/**
 * Whether @a a is a sign that YouTube or the network is down rather than a
 * verdict on one video (pure; no I/O): 1 when no HTTP answer arrived
 * (status 0: DNS failure, connection refused or reset, timeout; a body
 * aborted past YTC_FETCH_MAX_BODY is not one) or the status is 502, 503 or
 * 504; 0 otherwise (200, 404, 429, 500, ...). For the loop's outage
 * breaker: count these across different videos, never dead-letter on them.
 */
int ytc_meta_network_failure(const ytc_http_answer *a);

/** Name of @a k: "none", "definitive", "video", "network". */
const char *ytc_failure_kind_name(ytc_failure_kind k);

/**
 * Parse a Retry-After value: delta-seconds or an HTTP-date (IMF-fixdate,
 * RFC 850, asctime), relative to @a now. Never overflows.
 * @return seconds in [0, YTC_RETRY_AFTER_MAX], or -1 for garbage
 */
long ytc_meta_retry_after(const char *value, time_t now);

/**
 * Build the result for @a video_id from the two answers (either may have
 * status 0).
 * @param result receives a new JSON object for OK and UNAVAILABLE: video_id,
 *        status, title, author_name, author_url, channel_id,
 *        duration_seconds, view_count, keywords, description, publish_date,
 *        upload_date, category, is_live, is_family_safe, thumbnails,
 *        playability {status, reason}, formats [...]
 * @param reason receives a short text for every outcome but OK
 * @param retry_after receives the server's Retry-After (seconds) or -1
 */
ytc_outcome ytc_meta_extract(const char *video_id,
                             const ytc_http_answer *watch,
                             const ytc_http_answer *oembed,
                             json_object **result,
                             char *reason, size_t reasonlen,
                             long *retry_after);

/**
 * As ytc_meta_extract(), filling the columns of @a row as the values are
 * put into the result (never read back out of it): video_id (@a video_id
 * itself), status ("ok", "unavailable", or "error" for every other
 * outcome), title, author_name, channel_id, duration_seconds, view_count,
 * publish_date. The strings point into *result and live as long as it
 * does (the record's own members, ytc_record_make(), never replace them).
 * metadata_json, attempts, last_error and now are the caller's.
 * @param row may be NULL
 */
ytc_outcome ytc_meta_extract_row(const char *video_id,
                                 const ytc_http_answer *watch,
                                 const ytc_http_answer *oembed,
                                 json_object **result,
                                 char *reason, size_t reasonlen,
                                 long *retry_after, ytc_row *row);

/**
 * The row of a video with no extracted columns: @a video_id, the status
 * of @a out (see ytc_meta_extract_row()), every column unknown.
 */
void ytc_meta_row_init(ytc_row *row, const char *video_id, ytc_outcome out);

#endif /* YTC_META_H */
