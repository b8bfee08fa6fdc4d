/*
 * The output record of one video, the same for live processing and
 * --parse-watch.
 */
#include "ytk_url.h"
#include "ytc_record.h"

static void add_source(json_object *o, const ytc_source *src)
{
    json_object *s = NULL;

    if (src) {
        s = json_object_new_object();
        json_object_object_add(s, "topic", json_object_new_string(src->topic));
        json_object_object_add(s, "partition",
                               json_object_new_int(src->partition));
        json_object_object_add(s, "offset",
                               json_object_new_int64(src->offset));
    }
    json_object_object_add(o, "source", s);
}

json_object *ytc_record_make(json_object *result, const char *video_id,
                             ytc_outcome out, const char *reason,
                             int attempts, const char *fetched_at,
                             const ytc_source *src)
{
    char canon[64];

    ytk_canonical_url(video_id, canon, sizeof(canon));
    if (!result) {
        result = json_object_new_object();
        json_object_object_add(result, "video_id",
                               json_object_new_string(video_id));
        json_object_object_add(result, "status",
                               json_object_new_string("error"));
    }
    json_object_object_add(result, "url", json_object_new_string(canon));
    if (reason && reason[0]) {
        json_object_object_add(result, out == YTC_OUT_UNAVAILABLE
                               ? "reason" : "error",
                               json_object_new_string(reason));
    }
    json_object_object_add(result, "attempts", json_object_new_int(attempts));
    json_object_object_add(result, "fetched_at",
                           json_object_new_string(fetched_at));
    add_source(result, src);
    return result;
}

const char *ytc_record_text(json_object *record, size_t *len)
{
    return json_object_to_json_string_length(
        record, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}
