/**
 * @file ytk_waiter.h
 * @brief A request's wait for the delivery reports of its messages.
 *
 * Heap memory, reference counted: a delivery report that arrives after the
 * request gave up writes only into the waiter, never into request memory.
 * The request creates it for n messages, arms one slot per message it hands
 * to librdkafka (the slot is the message's opaque), and waits; the delivery
 * report callback (or the producer, when librdkafka refused the message at
 * once) reports into the slot.
 */
#ifndef YTK_WAITER_H
#define YTK_WAITER_H

#include <stdint.h>
#include <apr_time.h>
#include <librdkafka/rdkafka.h>

/** A request's wait for the delivery reports of its messages. */
typedef struct ytk_waiter ytk_waiter_t;

/** One armed slot of a waiter: the opaque of one message. */
typedef struct ytk_wslot ytk_wslot_t;

/** The outcome of one message. */
typedef struct {
    int done;                   /**< 1 once the delivery report came */
    rd_kafka_resp_err_t err;    /**< its error, or NO_ERROR */
    int32_t partition;
    int64_t offset;
} ytk_delivery;

/** A waiter for @a n messages, with one reference for the caller. */
ytk_waiter_t *ytk_waiter_create(int n);

/**
 * Arm slot @a idx (0 <= idx < n) for one message about to be produced: the
 * waiter then expects one ytk_waiter_report() for it and stays alive until
 * it came.
 * @return the slot, to be given to librdkafka as the message's opaque
 */
ytk_wslot_t *ytk_waiter_arm(ytk_waiter_t *w, int idx);

/**
 * Report the outcome of the message of an armed @a slot (exactly once) and
 * drop the reference the arming took. Safe from any thread.
 */
void ytk_waiter_report(ytk_wslot_t *slot, rd_kafka_resp_err_t err,
                       int32_t partition, int64_t offset);

/**
 * Wait until every armed slot of @a w has its report, or until
 * @a deadline, then copy the outcomes to @a out (n items; those still
 * pending have done == 0).
 * @return how many were still pending
 */
int ytk_waiter_wait(ytk_waiter_t *w, apr_time_t deadline, ytk_delivery *out);

/** Drop the caller's reference; late reports keep the waiter alive. */
void ytk_waiter_release(ytk_waiter_t *w);

#endif /* YTK_WAITER_H */
