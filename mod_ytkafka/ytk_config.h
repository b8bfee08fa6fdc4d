/**
 * @file ytk_config.h
 * @brief mod_ytkafka's directives, their merge and their getters.
 *
 * Values start "unset" and are merged by one macro; readers use the getters,
 * which apply the defaults. Config is read-only after post_config, with one
 * exception: child_init stores the child's producer in the server config.
 */
#ifndef YTK_CONFIG_H
#define YTK_CONFIG_H

#include <apr_tables.h>
#include <apr_time.h>
#include <librdkafka/rdkafka.h>

struct ytk_producer;
struct ytk_event_conf;

/** Default of YtKafkaTopic. */
#define YTK_DEF_TOPIC          "youtube-links"
/** Default of YtKafkaFlushTimeout: below the ~9 s after which httpd
 * SIGKILLs children on stop, so the "messages left" line is logged. */
#define YTK_DEF_FLUSH_TIMEOUT  apr_time_from_sec(5)
/** Default of YtKafkaAckTimeout. */
#define YTK_DEF_ACK_TIMEOUT    apr_time_from_sec(5)
/** Default of YtKafkaMaxBody. */
#define YTK_DEF_MAX_BODY       65536
/** Default of YtKafkaMaxLinks. */
#define YTK_DEF_MAX_LINKS      100

/** YtKafkaAck. */
typedef enum {
    YTK_ACK_UNSET = -1,
    YTK_ACK_DELIVERED = 0,  /**< wait for the broker's delivery report */
    YTK_ACK_QUEUED = 1      /**< answer once librdkafka has the message */
} ytk_ack_mode;

/** One YtKafkaProperty line. */
typedef struct {
    const char *name;
    const char *value;
    const char *file;   /**< where it was written, for messages */
    int line;
} ytk_property;

/** Per-server configuration. */
typedef struct ytk_srv_conf {
    const char *brokers;              /**< YtKafkaBrokers, NULL = unset */
    apr_array_header_t *props;        /**< of ytk_property, in order */
    apr_interval_time_t flush_timeout;/**< -1 = unset */
    int own_producer;                 /**< this vhost set its own producer
                                           directives, it gets its own
                                           producer */
    struct ytk_producer *producer;    /**< set in child_init, per child */
    const char *results_table;        /**< YtKafkaResultsTable, NULL = unset */
    int results_max_limit;            /**< YtKafkaResultsMaxLimit, 0 = unset */
} ytk_srv_conf;

/** Per-directory (and server default) configuration. */
typedef struct ytk_dir_conf {
    const char *topic;                /**< NULL = unset */
    int ack;                          /**< ytk_ack_mode */
    apr_interval_time_t ack_timeout;  /**< -1 = unset */
    apr_off_t max_body;               /**< -1 = unset */
    int max_links;                    /**< -1 = unset */
    struct ytk_event_conf *events;    /**< ytkafka-produce, NULL = unset */
} ytk_dir_conf;

/** The module's directive table. */
extern const command_rec ytk_cmds[];

void *ytk_create_srv_conf(apr_pool_t *p, server_rec *s);
void *ytk_merge_srv_conf(apr_pool_t *p, void *basev, void *addv);
void *ytk_create_dir_conf(apr_pool_t *p, char *dir);
void *ytk_merge_dir_conf(apr_pool_t *p, void *basev, void *addv);

/**
 * check_config hook: build a throwaway librdkafka configuration from every
 * server's directives so that "apache2 -t" fails with the directive's name
 * and librdkafka's reason, and fail if a server uses the ytkafka-send
 * handler without YtKafkaBrokers.
 */
int ytk_config_check(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                     server_rec *s);

/** 1 if @a name is a legal Kafka topic name. */
int ytk_topic_name_ok(const char *name);

/** The server config of @a s. */
ytk_srv_conf *ytk_srv_conf_get(server_rec *s);
/** The dir config of @a r. */
const ytk_dir_conf *ytk_dir_conf_get(request_rec *r);

apr_interval_time_t ytk_conf_flush_timeout(const ytk_srv_conf *sc);
const char *ytk_conf_topic(const ytk_dir_conf *dc);
ytk_ack_mode ytk_conf_ack(const ytk_dir_conf *dc);
apr_interval_time_t ytk_conf_ack_timeout(const ytk_dir_conf *dc);
apr_off_t ytk_conf_max_body(const ytk_dir_conf *dc);
int ytk_conf_max_links(const ytk_dir_conf *dc);

/**
 * Apply the module's producer defaults, every YtKafkaProperty and the
 * brokers of @a sc to @a conf.
 * @param with_brokers 0 to leave bootstrap servers out (validation only)
 * @return NULL or a message naming the failing directive (from @a p)
 */
const char *ytk_conf_apply(apr_pool_t *p, const ytk_srv_conf *sc,
                           rd_kafka_conf_t *conf, int with_brokers);

#endif /* YTK_CONFIG_H */
