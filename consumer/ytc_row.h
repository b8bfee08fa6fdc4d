/**
 * @file ytc_row.h
 * @brief One row of table `videos` (a plain struct: no APR, no database),
 *        filled by the extractor (ytc_meta.h) and stored by ytc_sink.h.
 */
#ifndef YTC_ROW_H
#define YTC_ROW_H

#include <stdint.h>

/** One row of table `videos`. NULL/negative members are stored as NULL. */
typedef struct {
    const char *video_id;
    const char *status;         /**< ok, unavailable, error */
    const char *title;
    const char *author_name;
    const char *channel_id;
    int64_t duration_seconds;   /**< -1: unknown */
    int64_t view_count;         /**< -1: unknown */
    const char *publish_date;
    const char *metadata_json;
    int attempts;               /**< added to the stored count */
    const char *last_error;
    const char *now;            /**< RFC 3339 */
} ytc_row;

#endif /* YTC_ROW_H */
