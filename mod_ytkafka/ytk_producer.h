/**
 * @file ytk_producer.h
 * @brief One librdkafka producer per httpd child and its delivery reports.
 *
 * The producer is created in child_init in a tagged sub-pool of the child
 * pool. A poller thread of its own serves delivery reports; requests never
 * call rd_kafka_poll(). A request that wants the broker's answer hands a
 * ytk_waiter (ytk_waiter.h) to the messages it produces.
 */
#ifndef YTK_PRODUCER_H
#define YTK_PRODUCER_H

#include <apr_pools.h>
#include <apr_time.h>
#include <httpd.h>
#include <librdkafka/rdkafka.h>

#include "ytk_errors.h"
#include "ytk_waiter.h"

/** One child's producer (shared by the vhosts that inherit it). */
typedef struct ytk_producer ytk_producer_t;

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
 * brokers are down (until a probe or a delivery succeeds), a fatal error
 * (until a new instance replaces the failed one, tried at most once a
 * second; the old one keeps serving its delivery reports), or no librdkafka
 * instance could be created.
 * @param map receives the reason when 1
 */
int ytk_producer_unavailable(ytk_producer_t *p, const ytk_err_map **map);

/**
 * Tests only: on librdkafka's mock cluster (YtKafkaProperty
 * test.mock.num.brokers), make the current instance fail fatally with
 * rd_kafka_test_fatal_error(). Does nothing against real brokers.
 * @return 1 if an error was provoked
 */
int ytk_producer_test_fatal(ytk_producer_t *p);

/** One extra record header for ytk_producer_send_hdrs(). */
typedef struct {
    const char *name;
    const char *value;
    size_t len;
} ytk_hdr_kv;

/**
 * ytk_producer_send() with @a n_extra more headers after request-id and
 * content-type.
 */
rd_kafka_resp_err_t ytk_producer_send_hdrs(ytk_producer_t *p,
                                           const char *topic,
                                           const char *key, size_t key_len,
                                           char *value, size_t value_len,
                                           const char *request_id,
                                           const ytk_hdr_kv *extra,
                                           int n_extra,
                                           ytk_waiter_t *w, int idx);

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

#endif /* YTK_PRODUCER_H */
