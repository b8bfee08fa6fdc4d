/**
 * @file ytk_producer.h
 * @brief One librdkafka producer per httpd child, its delivery reports and
 *        the waiters requests block on.
 *
 * The producer is created in child_init in a tagged sub-pool of the child
 * pool. A poller thread of its own serves delivery reports; requests never
 * call rd_kafka_poll(). A request that wants the broker's answer hands a
 * ytk_waiter (heap memory, reference counted) to the messages it produces:
 * a delivery report that arrives after the request gave up writes only into
 * the waiter, never into request memory.
 */
#ifndef YTK_PRODUCER_H
#define YTK_PRODUCER_H

#include <apr_pools.h>
#include <apr_time.h>
#include <httpd.h>
#include <librdkafka/rdkafka.h>

/** One child's producer (shared by the vhosts that inherit it). */
typedef struct ytk_producer ytk_producer_t;

/** A request's wait for the delivery reports of its messages. */
typedef struct ytk_waiter ytk_waiter_t;

/** Classes of failure, for the status counters. */
typedef enum {
    YTK_FAIL_NONE = 0,
    YTK_FAIL_QUEUE_FULL,
    YTK_FAIL_BROKERS_DOWN,
    YTK_FAIL_TIMED_OUT,
    YTK_FAIL_TOO_LARGE,
    YTK_FAIL_UNKNOWN_TOPIC,
    YTK_FAIL_NOT_AUTHORIZED,
    YTK_FAIL_PURGED,
    YTK_FAIL_FATAL,
    YTK_FAIL_SHUTDOWN,
    YTK_FAIL_NOT_CONFIGURED,
    YTK_FAIL_KAFKA,
    YTK_FAIL__COUNT
} ytk_fail_class;

/** What a librdkafka error means for an HTTP client. */
typedef struct {
    int status;             /**< HTTP status */
    ytk_fail_class fail;    /**< counter class */
    const char *code;       /**< stable machine code, e.g. "queue_full" */
    const char *message;    /**< short human message */
    int retry_after;        /**< seconds for Retry-After, 0 for none */
} ytk_err_map;

/** The outcome of one message. */
typedef struct {
    int done;                   /**< 1 once the delivery report came */
    rd_kafka_resp_err_t err;    /**< its error, or NO_ERROR */
    int32_t partition;
    int64_t offset;
} ytk_delivery;

/**
 * The one mapper from a librdkafka error to an HTTP status and message.
 * Never NULL; RD_KAFKA_RESP_ERR_NO_ERROR maps to 201.
 */
const ytk_err_map *ytk_err_map_get(rd_kafka_resp_err_t err);

/** The stable code of a failure class, e.g. "timed_out". */
const char *ytk_fail_code(ytk_fail_class c);

/**
 * child_init: create the producers of every server that has
 * YtKafkaBrokers (vhosts without producer directives of their own share
 * the main server's).
 */
void ytk_producer_child_init(apr_pool_t *pchild, server_rec *s);

/** The producer serving requests of @a s, or NULL if none is configured. */
ytk_producer_t *ytk_producer_for(server_rec *s);

/**
 * 1 if the producer cannot take messages now: librdkafka reported that all
 * brokers are down (until a probe or a delivery succeeds), a fatal error,
 * or no librdkafka instance could be created.
 * @param map receives the reason when 1
 */
int ytk_producer_unavailable(ytk_producer_t *p, const ytk_err_map **map);

/**
 * Hand one message to librdkafka.
 * @param value malloc'd, owned by this call on every path
 * @param w the waiter to report to, or NULL (queued mode)
 * @param idx this message's index in @a w
 */
rd_kafka_resp_err_t ytk_producer_send(ytk_producer_t *p, const char *topic,
                                      const char *key, size_t key_len,
                                      char *value, size_t value_len,
                                      const char *request_id,
                                      ytk_waiter_t *w, int idx);

/** A waiter for @a n messages, with one reference for the caller. */
ytk_waiter_t *ytk_waiter_create(int n);

/**
 * Wait until every message handed to ytk_producer_send() with @a w has its
 * report, or until @a deadline, then copy the outcomes to @a out (n items;
 * those still pending have done == 0).
 * @return how many were still pending
 */
int ytk_waiter_wait(ytk_waiter_t *w, apr_time_t deadline, ytk_delivery *out);

/** Drop the caller's reference; late reports keep the waiter alive. */
void ytk_waiter_release(ytk_waiter_t *w);

#endif /* YTK_PRODUCER_H */
