/**
 * @file ytc_config.h
 * @brief ytkafka-consumer configuration: flags, -F file, environment.
 *
 * Precedence: command-line flag, then environment variable, then default.
 * -X and -F properties are applied in the order given on the command line.
 */
#ifndef YTC_CONFIG_H
#define YTC_CONFIG_H

#include <apr_pools.h>
#include <apr_tables.h>

/** One librdkafka property from -X or -F. */
typedef struct {
    const char *name;
    const char *value;
    const char *origin;   /**< "-X" or "file:line" for messages */
} ytc_prop;

/** The whole configuration, read-only after ytc_config_parse(). */
typedef struct {
    const char *brokers;          /**< -b, KAFKA_BROKERS */
    const char *group;            /**< -G, YTK_GROUP */
    apr_array_header_t *topics;   /**< -t (const char *), YTK_TOPICS */
    apr_array_header_t *props;    /**< ytc_prop */
    const char *db;               /**< --db, YTK_DB */
    const char *results_topic;    /**< --results-topic or NULL */
    const char *dlq_topic;        /**< --dlq-topic or NULL: <topic>.dlq */
    const char *youtube_url;      /**< no trailing slash */
    int concurrency;              /**< videos fetched at once */
    int max_attempts;             /**< fetch attempts before the DLQ */
    int backoff_ms;               /**< first retry delay */
    int backoff_max_ms;           /**< cap of the retry delay */
    int http_timeout_ms;          /**< whole-transfer timeout */
    int max_rps;                  /**< --max-rps: requests/s cap, 0 = off */
    int shutdown_timeout_ms;      /**< in-flight grace on SIGTERM */
    int no_fetch;                 /**< --no-fetch: parse + offset store only */
    int exit_eof;                 /**< -e: exit when idle at end of all */
    long count;                   /**< -c: exit after this many messages */
    const char *parse_watch;      /**< --parse-watch FILE (offline) */
    const char *parse_oembed;     /**< --parse-oembed FILE (offline) */
    const char *video_id;         /**< --video-id for the offline parse */
    const char *metrics;          /**< --metrics ADDR:PORT, YTK_METRICS, or NULL */
    int refresh_after;            /**< --refresh-after: seconds a stored
                                       ok/unavailable row is reused, 0 = off */
    int fetch_memory_mb;          /**< --fetch-memory: body budget, 0 = auto */
} ytc_config;

/**
 * Parse @a argv and the environment into @a cfg.
 * @return -1 to go on running, otherwise the exit code (0 after -h or
 *         --version, 1 after a usage error, which is printed on stderr)
 */
int ytc_config_parse(ytc_config *cfg, apr_pool_t *p, int argc, char **argv);

/** The DLQ topic for messages read from @a topic. */
const char *ytc_config_dlq_topic(const ytc_config *cfg, apr_pool_t *p,
                                 const char *topic);

#endif /* YTC_CONFIG_H */
