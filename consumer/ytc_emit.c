/*
 * The final word on a video or a message: stdout line, database row,
 * results record, dead letter.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <apr_base64.h>

#include "config.h"
#include "ytk_envelope.h"
#include "ytc_log.h"
#include "ytc_loop_int.h"
#include "ytc_metrics.h"
#include "ytc_record.h"

void ytc_now_string(char buf[32])
{
    ytk_format_time((int64_t)apr_time_now(), buf, 32);
}

void ytc_dead_letter(ytc_loop *L, ytc_msg *m, const char *code,
                     const char *reason, const char *video_id,
                     int attempts)
{
    ytc_dead_letter_links(L, m, code, reason, video_id, attempts, NULL);
}

void ytc_dead_letter_links(ytc_loop *L, ytc_msg *m, const char *code,
                           const char *reason, const char *video_id,
                           int attempts, json_object *rejected)
{
    json_object *o = json_object_new_object(), *err, *orig;
    rd_kafka_headers_t *h = rd_kafka_headers_new(6);
    char when[32], num[32], topic[512];

    ytc_metrics_add(YTC_M_DLQ, 1);
    const char *s;
    size_t len;

    if (L->cfg->dlq_topic) {
        snprintf(topic, sizeof(topic), "%s", L->cfg->dlq_topic);
    }
    else {
        snprintf(topic, sizeof(topic), "%s.dlq", m->part->topic);
    }
    ytc_now_string(when);
    err = json_object_new_object();
    json_object_object_add(err, "code", json_object_new_string(code));
    json_object_object_add(err, "message", json_object_new_string(reason));
    json_object_object_add(o, "error", err);
    if (rejected) {
        /* every link of the value that was refused, with its reason */
        json_object_object_add(o, "rejected", json_object_get(rejected));
    }
    if (video_id) {
        json_object_object_add(o, "video_id",
                               json_object_new_string(video_id));
        json_object_object_add(o, "attempts", json_object_new_int(attempts));
    }
    orig = json_object_new_object();
    json_object_object_add(orig, "topic",
                           json_object_new_string(m->part->topic));
    json_object_object_add(orig, "partition",
                           json_object_new_int(m->part->partition));
    json_object_object_add(orig, "offset", json_object_new_int64(m->offset));
    if (m->key && ytk_utf8_valid(m->key, m->key_len)) {
        json_object_object_add(orig, "key", json_object_new_string_len(
                                   m->key, (int)m->key_len));
    }
    if (!m->value) {
        json_object_object_add(orig, "value", NULL);
    }
    else if (ytk_utf8_valid(m->value, m->value_len)) {
        json_object_object_add(orig, "value", json_object_new_string_len(
                                   m->value, (int)m->value_len));
    }
    else {
        char *b64;
        apr_pool_t *tp;
        apr_pool_create(&tp, L->pool);
        b64 = apr_palloc(tp, (apr_size_t)apr_base64_encode_len(
                                 (int)m->value_len));
        apr_base64_encode(b64, m->value, (int)m->value_len);
        json_object_object_add(orig, "value_base64",
                               json_object_new_string(b64));
        apr_pool_destroy(tp);
    }
    json_object_object_add(o, "original", orig);
    json_object_object_add(o, "failed_at", json_object_new_string(when));
    json_object_object_add(o, "consumer",
                           json_object_new_string("ytkafka-consumer/"
                                                  PACKAGE_VERSION));
    s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

    rd_kafka_header_add(h, "ytk-dlq-code", -1, code, -1);
    rd_kafka_header_add(h, "ytk-dlq-reason", -1, reason, -1);
    rd_kafka_header_add(h, "ytk-original-topic", -1, m->part->topic, -1);
    snprintf(num, sizeof(num), "%" PRId32, m->part->partition);
    rd_kafka_header_add(h, "ytk-original-partition", -1, num, -1);
    snprintf(num, sizeof(num), "%" PRId64, m->offset);
    rd_kafka_header_add(h, "ytk-original-offset", -1, num, -1);
    rd_kafka_header_add(h, "content-type", -1, "application/json", -1);

    ytc_log(YTC_LOG_WARN, YTC_LOGNO(00415) "dead letter %s [%" PRId32 "] @%"
            PRId64 "%s%s -> %s: %s: %s", m->part->topic, m->part->partition,
            m->offset, video_id ? " video " : "", video_id ? video_id : "",
            topic, code, reason);
    ytc_produce(L, m, topic, m->key, m->key_len, s, len, h);
    json_object_put(o);
}

/* the final word on a video: stdout, database, results topic, or DLQ */
int ytc_job_emit(ytc_loop *L, ytc_job *j, ytc_outcome out,
                  json_object *result, const char *reason)
{
    ytc_msg *m = j->msg;
    ytc_source src = { m->part->topic, m->part->partition, m->offset };
    char when[40];
    const char *text;
    size_t len;
    ytc_row row;
    int db_failed, attempts = j->attempts;

    ytc_now_string(when);
    if (j->reused && result) {
        /* a reused stored row keeps when and in how many tries it was
         * fetched (copied: the record replaces those members) */
        json_object *v;

        if (json_object_object_get_ex(result, "attempts", &v)) {
            attempts = json_object_get_int(v);
        }
        if (json_object_object_get_ex(result, "fetched_at", &v)) {
            snprintf(when, sizeof(when), "%s", json_object_get_string(v));
        }
    }
    result = ytc_record_make(result, j->video_id, out, reason, attempts,
                             when, &src);
    text = ytc_record_text(result, &len);

    /* the columns as the extractor filled them (ytc_meta_extract_row) */
    row = j->row;
    if (!row.status) {
        ytc_meta_row_init(&row, j->video_id, out);
    }
    row.video_id = j->video_id;
    row.metadata_json = text;
    row.attempts = j->attempts;
    row.last_error = (out == YTC_OUT_OK) ? NULL : reason;
    row.now = when;
    /* row_stored: one upsert served a coalesced group, or the row was
     * reused as stored (its updated_at untouched) */
    db_failed = !j->db_skip && !j->row_stored
                && ytc_db_upsert(L->db, &row) != 0;
    if (db_failed) {
        /* the database is out (or refuses this row): keep the result, the
         * message stays unfinished; nothing else is written yet */
        if (reason != j->last_error) {
            snprintf(j->last_error, sizeof(j->last_error), "%s",
                     reason ? reason : "");
        }
        j->result = result;
        j->out = out;
        return 1;
    }
    ytc_metrics_result(row.status);
    if (ytc_stdout_write(text, len) != 0) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00416) "stdout: %s", strerror(errno));
    }

    if (L->cfg->results_topic) {
        rd_kafka_headers_t *h = rd_kafka_headers_new(1);
        rd_kafka_header_add(h, "content-type", -1, "application/json", -1);
        ytc_produce(L, m, L->cfg->results_topic, j->video_id,
                strlen(j->video_id), text, len, h);
    }
    if (out == YTC_OUT_ERROR || out == YTC_OUT_TRANSIENT) {
        ytc_dead_letter(L, m, out == YTC_OUT_TRANSIENT ? "retries_exhausted"
                    : "extraction_failed", reason, j->video_id, j->attempts);
    }
    else if (j->db_skip) {
        ytc_dead_letter(L, m, "database", "the database refuses the row",
                    j->video_id, j->attempts);
    }
    ytc_log(YTC_LOG_DEBUG, YTC_LOGNO(00417) "video %s: %s after %d "
            "attempt(s)%s%s", j->video_id, ytc_outcome_name(out), j->attempts,
            reason && reason[0] ? ": " : "", reason ? reason : "");
    json_object_put(result);
    return 0;
}
