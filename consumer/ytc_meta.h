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
#include <json-c/json.h>

/** What one attempt at a video came to. */
typedef enum {
    YTC_OUT_OK = 0,       /**< metadata extracted */
    YTC_OUT_UNAVAILABLE,  /**< private, removed, unplayable, age-gated */
    YTC_OUT_TRANSIENT,    /**< try again later (5xx, 429, bot check, ...) */
    YTC_OUT_ERROR         /**< permanent failure of the extraction */
} ytc_outcome;

/** One HTTP answer as the fetcher saw it. */
typedef struct {
    long status;            /**< HTTP status, 0 if the transfer failed */
    char *body;             /**< malloc'd, NUL terminated, may be NULL */
    size_t len;
    long retry_after;       /**< seconds from Retry-After, or -1 */
    char error[128];        /**< transfer error text when status is 0 */
    char location[256];     /**< Location of a redirect, or "" */
} ytc_http_answer;

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

#endif /* YTC_META_H */
