/**
 * @file ytk_reqid.h
 * @brief Request ids: mod_unique_id's when it is loaded, else 20 base64url
 *        characters (120 random bits) from a per-thread generator.
 */
#ifndef YTK_REQID_H
#define YTK_REQID_H

#include <httpd.h>

/** child_init: threads of a new child reseed their generator instead of
 *  continuing a sequence their parent might share. */
void ytk_reqid_child_init(void);

/** The id of @a r (request pool memory). */
const char *ytk_request_id(request_rec *r);

#endif /* YTK_REQID_H */
