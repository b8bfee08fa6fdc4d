/**
 * @file ytk_produce.h
 * @brief The ytkafka-produce handler: any POSTed JSON object (or a batch of
 *        them) to Kafka records, with the acknowledgements of ytkafka-send.
 */
#ifndef YTK_PRODUCE_H
#define YTK_PRODUCE_H

#include <httpd.h>

/**
 * The handler. POST application/json only; answers 201 (delivered), 202
 * (queued), 207 (mixed), 400 (not strict JSON, with the byte offset), 403
 * (a topic outside YtKafkaAllowTopic), 405, 413, 415, 422 (a required
 * field missing or of the wrong type), 503 or 504, always with a JSON body
 * carrying the request id, also in X-Request-ID.
 */
int ytk_produce_handler(request_rec *r);

#endif /* YTK_PRODUCE_H */
