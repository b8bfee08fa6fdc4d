/**
 * @file ytk_producer_inst.h
 * @brief One librdkafka instance of a producer and its poller thread
 *        (private to ytk_producer.c and ytk_producer_inst.c).
 *
 * A producer (ytk_producer.h) has one current instance. One that failed
 * fatally is retired, not destroyed: its poller keeps serving the delivery
 * reports of the messages it still holds (their requests wait for them),
 * and request threads that loaded it a moment ago may still call it, so it
 * lives until the child exits.
 */
#ifndef YTK_PRODUCER_INST_H
#define YTK_PRODUCER_INST_H

#include <pthread.h>

#include <apr_hash.h>
#include <apr_pools.h>
#include <apr_time.h>
#include <httpd.h>
#include <librdkafka/rdkafka.h>

#include "ytk_config.h"

/** Atomic load and store of the fields shared between threads. */
#define YTK_LOAD(x)     __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define YTK_STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

/** One librdkafka instance and its poller thread. */
typedef struct ytk_inst {
    struct ytk_producer *p;
    apr_pool_t *pool;           /**< its own root pool */
    rd_kafka_t *rk;
    pthread_t poller;
    int running;
    int fatal;                  /**< librdkafka said it failed fatally */
    pthread_rwlock_t topics_lock;
    apr_hash_t *topics;         /**< name -> rd_kafka_topic_t* */
    struct ytk_inst *retired_next;
} ytk_inst;

/** One child's producer: its current and retired instances. */
struct ytk_producer {
    server_rec *s;
    const ytk_srv_conf *sc;
    apr_pool_t *pool;
    ytk_inst *cur;              /**< NULL until an instance runs; replaced
                                     only after a fatal error */
    ytk_inst *retired;          /**< under create_mu */
    int nretired;
    int mock;                   /**< on librdkafka's mock cluster (tests) */
    pthread_mutex_t create_mu;
    apr_time_t last_attempt;
    int down;                   /**< all brokers down, per librdkafka */
    apr_time_t last_probe;
    long qdepth;                /**< last value given to the status gauges */
    int gauge_down;
};

/**
 * A new instance of @a p with its poller running, not yet seen by other
 * threads: a failure destroys only what nobody else has seen.
 * @return NULL if it could not be made (logged)
 */
ytk_inst *ytk_inst_start(struct ytk_producer *p);

/**
 * Stop the poller, flush until @a deadline, purge what is left, destroy.
 * @param timeout YtKafkaFlushTimeout, for the log line
 */
void ytk_inst_stop(struct ytk_producer *p, ytk_inst *in, apr_time_t deadline,
                   apr_interval_time_t timeout);

/**
 * Bring the status gauges (queue depth, brokers down) to what @a in says;
 * @a final gives back everything this producer added.
 */
void ytk_inst_gauges(struct ytk_producer *p, ytk_inst *in, int final);

/** The topic handle of @a name, made on first use; NULL on failure. */
rd_kafka_topic_t *ytk_inst_topic(ytk_inst *in, const char *name);

#endif /* YTK_PRODUCER_INST_H */
