/**
 * @file ytc_metrics.h
 * @brief The consumer's state for operators: a Prometheus endpoint.
 *
 * `--metrics ADDR:PORT` serves `GET /metrics` in the Prometheus text
 * exposition format (version 0.0.4) from libmicrohttpd's own thread. Every
 * other path is 404, every method but GET and HEAD 405.
 *
 * Thread safety: every function here may be called from any thread at any
 * time, before, during or without ytc_metrics_start(). Counters and gauges
 * are C11 atomics (relaxed: each value is exact, a scrape is not a snapshot
 * across values); the lag table and the latency histogram are under one
 * mutex, so a scrape sees each of them consistent. With the endpoint off the
 * updates still happen and cost an atomic add each.
 *
 * Every metric is named `ytkafka_consumer_*`; README "Metrics" lists them.
 */
#ifndef YTC_METRICS_H
#define YTC_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

/** Monotonic counters, exported with the suffix `_total`. */
typedef enum {
    YTC_M_MESSAGES = 0,         /**< Kafka messages taken in */
    YTC_M_RESULTS_OK,           /**< results stored with status ok */
    YTC_M_RESULTS_UNAVAILABLE,  /**< ... status unavailable */
    YTC_M_RESULTS_ERROR,        /**< ... status error */
    YTC_M_RETRIES,              /**< attempts scheduled again after backoff */
    YTC_M_DLQ,                  /**< records sent to a dead-letter topic */
    YTC_M_FETCHES,              /**< HTTP requests to YouTube completed */
    YTC_M_FETCH_FAILURES,       /**< of those: no answer, 429 or 5xx */
    YTC_M_CACHE_HITS,           /**< stored rows reused without fetching */
    YTC_M_COALESCED,            /**< jobs joined to a fetch already running */
    YTC_M_CHECKS,               /**< requests asking if YouTube itself is up */
    YTC_M__COUNTERS
} ytc_counter;

/** Gauges: the value last set. */
typedef enum {
    YTC_G_JOBS = 0,             /**< video jobs: queued, fetching, backoff */
    YTC_G_JOBS_FETCHING,        /**< of those: with requests on the wire */
    YTC_G_MESSAGES_HELD,        /**< Kafka messages taken in, not finished */
    YTC_G_PARTITIONS_ASSIGNED,  /**< partitions in the assignment */
    YTC_G_PARTITIONS_PAUSED,    /**< assigned partitions paused */
    YTC_G_OUTAGE_YOUTUBE,       /**< 1 while YouTube is considered down */
    YTC_G_OUTAGE_DATABASE,      /**< 1 while the database is down */
    YTC_G_OUTAGE_KAFKA_OUTPUT,  /**< 1 while results/DLQ topics fail */
    YTC_M__GAUGES
} ytc_gauge;

/** Partitions whose lag is kept; more are counted as dropped. */
#define YTC_METRICS_MAX_PARTITIONS 1024

/**
 * Check a listen address: "HOST:PORT" with a numeric IPv4 host,
 * "[IPV6]:PORT", or ":PORT" for every address. PORT is 1..65535.
 * @return 0, or -1 with a reason in @a err
 */
int ytc_metrics_check_listen(const char *listen, char *err, size_t errlen);

/**
 * Serve /metrics on @a listen (see ytc_metrics_check_listen()).
 * @return 0, or -1 after logging why (the address is in use, ...)
 */
int ytc_metrics_start(const char *listen);

/** Stop serving; waits for the server thread. No-op if not started. */
void ytc_metrics_stop(void);

/** Add @a n to counter @a c. */
void ytc_metrics_add(ytc_counter c, uint64_t n);

/** Set gauge @a g to @a v. */
void ytc_metrics_set(ytc_gauge g, int64_t v);

/** Count one stored result by its row status: "ok", "unavailable", else
 *  error. */
void ytc_metrics_result(const char *status);

/**
 * One HTTP request to YouTube is done: counts a fetch, a failure when
 * @a http_status is 0 (no answer), 429 or 5xx, and observes @a usec
 * (microseconds, an apr_time_t difference) in the latency histogram
 * (buckets 0.05 .. 30 s).
 */
void ytc_metrics_fetch_done(long http_status, int64_t usec);

/** Observe one fetch latency without counting a fetch. */
void ytc_metrics_observe_fetch(double seconds);

/**
 * Set the lag of one partition (messages after the last finished offset);
 * a negative @a lag forgets the partition. At most
 * YTC_METRICS_MAX_PARTITIONS are kept.
 */
void ytc_metrics_lag(const char *topic, int32_t partition, int64_t lag);

/**
 * Replace the whole lag table from one librdkafka statistics document
 * (statistics.interval.ms): every partition with `"desired": true`, lag
 * `consumer_lag_stored` (high watermark minus the offset this consumer
 * stored) or, before it stored one, `consumer_lag` (minus the group's
 * committed offset). Partitions without a known lag are left out.
 * @return 0, or -1 if @a json is not such a document (table unchanged)
 */
int ytc_metrics_kafka_stats(const char *json, size_t len);

/**
 * librdkafka's stats_cb: feeds ytc_metrics_kafka_stats(), returns 0 (the
 * JSON stays librdkafka's). Set with statistics.interval.ms on the consumer.
 */
int ytc_metrics_stats_cb(rd_kafka_t *rk, char *json, size_t len,
                         void *opaque);

/**
 * The exposition text of every metric, malloc()'d, NUL terminated.
 * @return the text (free() it), or NULL when out of memory
 */
char *ytc_metrics_render(size_t *len);

/** Zero every value and empty the lag table (for unit tests). */
void ytc_metrics_reset(void);

#endif /* YTC_METRICS_H */
