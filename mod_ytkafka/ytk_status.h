/**
 * @file ytk_status.h
 * @brief Counters in shared memory, aggregated over all children, and the
 *        ytkafka-status handler.
 *
 * The segment is created once per httpd parent (in post_config, kept in the
 * process pool) so that counters survive a graceful restart and children
 * of the old and the new generation count into the same place. Monotonic
 * counters are global atomics; gauges (queue depth, broker state) live in a
 * slot per child so a dead child's share disappears with it.
 */
#ifndef YTK_STATUS_H
#define YTK_STATUS_H

#include <sys/types.h>

#include <httpd.h>
#include <ap_mpm.h>
#include "ytk_errors.h"

/** post_config: create or find the shared segment. */
int ytk_status_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp, server_rec *s);

/** child_init: claim this child's gauge slot. */
void ytk_status_child_init(apr_pool_t *pchild, server_rec *s);

/**
 * child_status, in the parent: a child exited (or crashed), free its slot
 * so that a later process with the same pid is not taken for it.
 */
void ytk_status_child_exited(server_rec *s, pid_t pid,
                             ap_generation_t gen, int sb_slot,
                             mpm_child_status state);

/** Count one answered send request by its HTTP status. */
void ytk_status_request(int status);

/** Count one accepted link. */
void ytk_status_link_accepted(void);

/** Count one rejected link by its ytk_url_rc. */
void ytk_status_link_rejected(int url_rc);

/** Count one message handed to librdkafka. */
void ytk_status_produced(void);

/** Count one message the broker acknowledged. */
void ytk_status_delivered(void);

/** Count one message that failed, by class. */
void ytk_status_failed(ytk_fail_class c);

/** Count one message answered 202 (queued) whose delivery then failed. */
void ytk_status_lost_after_queued(void);

/**
 * Change this child's gauges by a delta: messages in librdkafka's queue,
 * producers and producers whose brokers are down.
 */
void ytk_status_gauges(long qdepth_delta, int producers_delta,
                       int down_delta);

/** The ytkafka-status handler. */
int ytk_status_handler(request_rec *r);

#endif /* YTK_STATUS_H */
