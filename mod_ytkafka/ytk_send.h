/**
 * @file ytk_send.h
 * @brief The ytkafka-send handler: POSTed links to Kafka records.
 */
#ifndef YTK_SEND_H
#define YTK_SEND_H

#include <httpd.h>

/**
 * The handler. POST only; answers 201 (delivered), 202 (queued), 207
 * (mixed), 400, 405, 413, 415, 422, 503 or 504 with a JSON body that always
 * carries the request id, also echoed in X-Request-ID.
 */
int ytk_send_handler(request_rec *r);

/** Called in child_init: threads of a new child reseed their request-id
 *  generator instead of continuing a sequence their parent might share. */
void ytk_send_child_init(void);

#endif /* YTK_SEND_H */
