/**
 * @file ytc_loop.h
 * @brief The consumer's event loop: Kafka group consumption, per-partition
 *        in-order offset tracking, fetch jobs with retries, sinks, DLQ.
 *
 * One thread. librdkafka's consumer queue wakes the libcurl multi wait
 * through a pipe (rd_kafka_queue_io_event_enable), so the loop blocks in one
 * place. An offset is stored only when every earlier message of its
 * partition is finished; partitions are paused while too much is in flight.
 */
#ifndef YTC_LOOP_H
#define YTC_LOOP_H

#include <signal.h>

#include <apr_pools.h>

#include "ytc_config.h"

typedef struct ytc_loop ytc_loop;

/** Set up Kafka clients, database and fetcher. 0 or -1 (logged). */
int ytc_loop_create(ytc_loop **loop, const ytc_config *cfg, apr_pool_t *p);

/**
 * Run until @a stop becomes non-zero (then drain within the shutdown
 * timeout), until -c/-e conditions are met, or a fatal error.
 * Commits, leaves the group and destroys the clients before returning.
 * @return the process exit code
 */
int ytc_loop_run(ytc_loop *loop, volatile sig_atomic_t *stop);

#endif /* YTC_LOOP_H */
