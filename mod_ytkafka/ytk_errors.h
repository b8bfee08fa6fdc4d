/**
 * @file ytk_errors.h
 * @brief The classes of failure and the one mapper from a librdkafka error
 *        to an HTTP status, shared by the producer, the handlers and the
 *        status page.
 */
#ifndef YTK_ERRORS_H
#define YTK_ERRORS_H

#include <librdkafka/rdkafka.h>

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

/**
 * The one mapper from a librdkafka error to an HTTP status and message.
 * Never NULL; RD_KAFKA_RESP_ERR_NO_ERROR maps to 201.
 */
const ytk_err_map *ytk_err_map_get(rd_kafka_resp_err_t err);

/** The answer when a server process has no producer at all. */
const ytk_err_map *ytk_err_map_no_producer(void);

/** The stable code of a failure class, e.g. "timed_out". */
const char *ytk_fail_code(ytk_fail_class c);

#endif /* YTK_ERRORS_H */
