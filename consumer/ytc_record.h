/**
 * @file ytc_record.h
 * @brief The output record of one video: the JSON line printed on stdout,
 *        stored as the row's metadata_json and produced to the results
 *        topic. Live processing and --parse-watch both make it here, so
 *        both print the same shape (docs/ARCHITECTURE.md, "rooms").
 */
#ifndef YTC_RECORD_H
#define YTC_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "ytc_meta.h"

/** The Kafka message a record answers. */
typedef struct {
    const char *topic;
    int32_t partition;
    int64_t offset;
} ytc_source;

/**
 * Complete the extractor's @a result into the record: the result's own
 * members, then url (the canonical watch URL), reason (unavailable) or
 * error (every other outcome but ok) when @a reason is not empty,
 * attempts, fetched_at and source ({topic, partition, offset}, or null
 * when @a src is NULL: no Kafka message, as with --parse-watch).
 * Calling it again on its own record replaces those members in place.
 * @param result the extractor's result, taken over; NULL makes a record
 *        {video_id, status: "error"}
 * @return the record (@a result itself when it is not NULL)
 */
json_object *ytc_record_make(json_object *result, const char *video_id,
                             ytc_outcome out, const char *reason,
                             int attempts, const char *fetched_at,
                             const ytc_source *src);

/**
 * The record as the one line of text every output carries (plain JSON,
 * slashes not escaped). Valid until @a record changes or is freed.
 */
const char *ytc_record_text(json_object *record, size_t *len);

#endif /* YTC_RECORD_H */
