/**
 * @file ytc_loop_int.h
 * @brief Types shared by the files of the consumer's event loop (private).
 *
 * A message (ytc_msg) sits in its partition's queue (ytc_part) in offset
 * order until every job and produce request it holds is done; only then
 * does its offset become storable. Jobs (ytc_job) fetch one video each.
 */
#ifndef YTC_LOOP_INT_H
#define YTC_LOOP_INT_H

#include <stdint.h>

#include <apr_hash.h>
#include <apr_time.h>
#include <json-c/json.h>
#include <librdkafka/rdkafka.h>

#include "ytk_url.h"
#include "ytc_breaker.h"
#include "ytc_config.h"
#include "ytc_fetch.h"
#include "ytc_loop.h"
#include "ytc_meta.h"
#include "ytc_sink.h"

/* links taken from one message value; more is garbage */
#define YTC_MAX_LINKS 100
/* finished-but-unstorable messages (behind a slow head) kept at most */
#define YTC_MAX_PENDING_MSGS 20000

/* Memory bounds at the defaults (docs/ARCHITECTURE.md, "What holds
 * memory"); the first two are librdkafka properties, -X overrides them. */
/** queued.min.messages: messages librdkafka prefetches at most */
#define YTC_QUEUED_MIN_MESSAGES 20000
/** queued.max.messages.kbytes: kB of values librdkafka prefetches at most */
#define YTC_QUEUED_MAX_KBYTES 8192
/** Bytes of keys and values the intake holds before it takes no more. */
#define YTC_MAX_HELD_BYTES (16L * 1024 * 1024)
/** Bytes of results and DLQ records not yet delivered before the intake
 *  takes no more (each record is kept until Kafka stores it). */
#define YTC_MAX_PRODUCE_BYTES (16L * 1024 * 1024)

typedef struct ytc_part ytc_part;
typedef struct ytc_msg ytc_msg;
typedef struct ytc_job ytc_job;
typedef struct ytc_prod ytc_prod;

struct ytc_msg {
    ytc_loop *loop;
    ytc_part *part;
    int64_t offset;
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    int pending;        /* jobs and produce requests not yet done */
    int done;
    ytc_msg *next;      /* partition queue, offset order */
};

struct ytc_part {
    char *topic;
    int32_t partition;
    ytc_msg *head, *tail;
    int64_t store_offset;   /* next offset to store, -1 if none */
    int dirty;
    int revoked;
    int eof;
    ytc_part *next;
};

struct ytc_job {
    ytc_loop *loop;
    ytc_msg *msg;
    char video_id[YTK_VIDEO_ID_LEN + 1];
    int attempts;
    int infra_fails;        /* attempts lost to possible outages */
    int fail_where;         /* ytc_failure_where() of its last such
                             * failure (0: none): what its checks ask for */
    int probe;              /* this attempt probes an outage */
    json_object *result;    /* kept while the database is out */
    ytc_row row;            /* its columns as the extractor filled them
                             * (ytc_meta_extract_row); the strings point
                             * into that result: a job handed a result it
                             * did not extract needs a reference to the
                             * same object and a copy of this row */
    ytc_outcome out;
    int db_fails;           /* times its row was refused */
    int db_skip;            /* the database refuses this row: DLQ it */
    int transfers;          /* HTTP requests of this attempt in flight */
    ytc_http_answer watch, oembed;
    int checked;            /* this attempt also checks YouTube itself */
    ytc_http_answer check;  /* its answer (status only, no body kept) */
    apr_time_t due;
    apr_time_t started;     /* when this attempt's requests left */
    ytc_job *next;          /* ready queue or backoff list */
    ytc_job *prev_all, *next_all;
    char last_error[600];
    /* coalescing (ytc_coalesce.c): one fetch per video in flight */
    ytc_job *leader;        /* the job fetching for this one, or NULL */
    ytc_job *followers;     /* jobs waiting on this one's fetch (->next) */
    int nfollowers;
    int registered;         /* this job is the video's leader */
    int lookup;             /* its stored-row lookup waits for the db */
    int reused;             /* the result is the stored row's */
    int row_stored;         /* the row is stored already: no upsert */
};

struct ytc_loop {
    const ytc_config *cfg;
    apr_pool_t *pool;
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    rd_kafka_queue_t *cq;
    int wake[2];
    ytc_fetcher *fetch;
    ytc_db *db;
    ytc_part *parts;        /* assigned */
    ytc_part *zombies;      /* revoked, still holding in-flight messages */
    ytc_job *ready_head, *ready_tail;
    ytc_job *backoff;
    ytc_job *all_jobs;
    long jobs;              /* existing jobs: ready, running, backing off */
    int running;            /* jobs with transfers in flight */
    long msgs;              /* messages not yet freed */
    long finished;          /* messages finished (for -c) */
    long consumed;          /* messages taken in (for -c) */
    int assigned;           /* partitions in the assignment */
    int paused;
    apr_time_t held_since;  /* over the high mark, not polling: since when */
    int stopping;
    int fatal;
    int frozen;             /* an allocation failed: store no offset more */
    apr_time_t deadline;
    unsigned int seed;
    ytc_breaker yt;         /* YouTube or the network */
    int yt_where;           /* ytc_failure_where() of the last failure it
                             * counted since an answer (0: none) */
    ytc_breaker dbb;        /* the database */
    ytc_job *db_head, *db_tail; /* results waiting for the database */
    ytc_breaker kp;         /* results and DLQ records being stored */
    ytc_prod *prod_retry;   /* records to produce again */
    long prod_inflight;     /* records awaiting their delivery report */
    apr_hash_t *inflight;   /* video id -> leader job (ytc_coalesce.c) */
    long prod_bytes;        /* bytes of records not yet delivered */
    long held_bytes;        /* bytes of keys and values of held messages */
    long q_min_msgs;        /* librdkafka's queued.min.messages in force */
    long q_max_bytes;       /* and queued.max.messages.kbytes, in bytes */
    int q_full;             /* its queue reached them since the last kick */
    long q_avg_len;         /* bytes per message taken, moving average */
    long ends_seen;         /* -e: `consumed` when ends were last looked at */
};

/* ---- ytc_offsets.c: partitions and in-order offsets -------------- */

ytc_part *ytc_part_find(ytc_loop *L, const char *topic, int32_t partition);

ytc_part *ytc_part_get(ytc_loop *L, const char *topic, int32_t partition);

void ytc_part_free(ytc_part *p);

void ytc_unlink_part(ytc_part **list, ytc_part *p);

/** Queue @a m (the partition's latest offset) at the tail of @a p. */
void ytc_part_push(ytc_loop *L, ytc_part *p, ytc_msg *m);

void ytc_msg_free(ytc_loop *L, ytc_msg *m);

void ytc_part_advance(ytc_loop *L, ytc_part *p);

void ytc_flush_offsets(ytc_loop *L);

void ytc_msg_release(ytc_msg *m);

void ytc_revoke_parts(ytc_loop *L,
                      const rd_kafka_topic_partition_list_t *list);

void ytc_commit_sync(ytc_loop *L, const char *why);

/**
 * An allocation for @a what failed: log it, store no further offset (what
 * is held now is never committed, so it comes back) and stop the loop
 * (exit 1). For every allocation failure that would lose track of work.
 */
void ytc_offsets_freeze(ytc_loop *L, const char *what);

/* ---- ytc_kafka.c: client configuration, callbacks, produce ------- */

int ytc_produce(ytc_loop *L, ytc_msg *m, const char *topic,
                const void *key, size_t key_len,
                const char *value, size_t value_len,
                rd_kafka_headers_t *hdrs);

rd_kafka_conf_t *ytc_make_conf(ytc_loop *L, int consumer);

/** Pause (@a on) or resume the consumer's assignment; no-op if already. */
void ytc_set_paused(ytc_loop *L, int on);

/** Produce again the failed records that are due (@a all: every one). */
void ytc_produce_retry_due(ytc_loop *L, int all);

/** Milliseconds until the next record retry, -1 if none waits. */
long ytc_produce_wait_ms(const ytc_loop *L);

/** Free records still waiting for a retry (teardown: never committed). */
void ytc_produce_discard(ytc_loop *L);

/* ---- ytc_jobs.c: fetch jobs, attempts, backoff ------------------- */

void ytc_job_free(ytc_loop *L, ytc_job *j);

/** Append @a j to the queue (@a head, @a tail) linked by ytc_job.next. */
void ytc_job_append(ytc_job **head, ytc_job **tail, ytc_job *j);

void ytc_job_enqueue(ytc_loop *L, ytc_job *j);

ytc_job *ytc_job_new(ytc_loop *L, ytc_msg *m, const char *id);

void ytc_attempt_done(ytc_loop *L, ytc_job *j);

/**
 * Start ready jobs up to the concurrency; while YouTube is out, at most one
 * probe when the breaker allows it.
 */
void ytc_jobs_start_ready(ytc_loop *L);

/** Store what waits for the database, when its breaker allows. */
void ytc_db_retry_due(ytc_loop *L);

/** Any dependency out (intake stays paused)? */
int ytc_outage(const ytc_loop *L);

void ytc_job_start(ytc_loop *L, ytc_job *j);

/**
 * Hold @a j until the database answers again (its result, or its stored-row
 * lookup, waits in the database queue; counted by the database breaker).
 */
void ytc_job_db_hold(ytc_loop *L, ytc_job *j);

/** Free @a j and release its message (the job is done). */
void ytc_job_finish(ytc_loop *L, ytc_job *j);

/* ---- ytc_coalesce.c: one fetch per video, stored rows reused ----- */

/**
 * A job for video @a id of message @a m: attached to the job already
 * fetching that video if there is one; otherwise answered from a stored
 * row younger than --refresh-after, or queued to fetch.
 */
void ytc_job_submit(ytc_loop *L, ytc_msg *m, const char *id);

/**
 * The final word on @a j's video, for @a j and every job attached to it:
 * each gets its stdout line, results record (and DLQ record) as if it had
 * fetched; the row is upserted once for all. Jobs whose row cannot be
 * stored wait for the database.
 */
void ytc_group_emit(ytc_loop *L, ytc_job *j, ytc_outcome out,
                    json_object *result, const char *reason);

/** @a j is freed: forget it as a leader, free the jobs attached to it. */
void ytc_coalesce_forget(ytc_loop *L, ytc_job *j);

/**
 * The database answers again: run @a j's stored-row lookup.
 * @return 0 (done: answered or queued to fetch) or -1 (still failing)
 */
int ytc_lookup_again(ytc_loop *L, ytc_job *j);

/* ---- ytc_emit.c: stdout line, row, results record, DLQ record ---- */

void ytc_now_string(char buf[32]);

void ytc_dead_letter(ytc_loop *L, ytc_msg *m, const char *code,
                     const char *reason, const char *video_id,
                     int attempts);

/**
 * One DLQ record for @a m; @a rejected (a JSON array of {link, code,
 * message}, may be NULL) lists every refused link of the value.
 */
void ytc_dead_letter_links(ytc_loop *L, ytc_msg *m, const char *code,
                           const char *reason, const char *video_id,
                           int attempts, json_object *rejected);

/**
 * The final word on a video. @return 0 (done, @a result consumed) or 1:
 * the row could not be stored; @a result is kept in the job, nothing else
 * was written, the job waits for the database.
 */
int ytc_job_emit(ytc_loop *L, ytc_job *j, ytc_outcome out,
                 json_object *result, const char *reason);

/* ---- ytc_intake.c: poll, hold, pause ----------------------------- */

void ytc_handle_message(ytc_loop *L, rd_kafka_message_t *rkm);

int ytc_all_at_eof(const ytc_loop *L);

int ytc_count_reached(const ytc_loop *L);

long ytc_hold_left_ms(const ytc_loop *L, apr_time_t now);

int ytc_intake(ytc_loop *L, int timeout_ms);

#endif /* YTC_LOOP_INT_H */
