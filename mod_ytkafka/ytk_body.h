/**
 * @file ytk_body.h
 * @brief Reading a request body: its media type and its bytes, bounded.
 */
#ifndef YTK_BODY_H
#define YTK_BODY_H

#include <httpd.h>

/** Media types the handlers take. */
enum {
    YTK_CT_OTHER,   /**< anything else: 415 */
    YTK_CT_JSON,    /**< application/json */
    YTK_CT_FORM     /**< application/x-www-form-urlencoded */
};

/** The media type of a Content-Type value (parameters ignored), or
 *  YTK_CT_OTHER for NULL. */
int ytk_media_type(const char *ct);

/**
 * Read the whole body of @a r, at most @a limit bytes, into request pool
 * memory, NUL-terminated (the NUL is not counted in @a out_len).
 * @return OK, HTTP_REQUEST_ENTITY_TOO_LARGE (as soon as a Content-Length or
 *         the bytes read pass @a limit), or a status from the input filters
 *         (an error they already answered is AP_FILTER_ERROR)
 */
int ytk_read_body(request_rec *r, apr_off_t limit, char **out,
                  apr_size_t *out_len);

/** A POSTed body. */
typedef struct {
    int type;           /**< YTK_CT_JSON or YTK_CT_FORM */
    char *data;         /**< NUL-terminated, request pool */
    apr_size_t len;
} ytk_body;

/**
 * The common start of a POST handler: sets Allow, answers 405 for other
 * methods, 415 for a media type not taken, 413 past @a limit, and passes on
 * the input filters' own errors.
 * @param with_form 1 if application/x-www-form-urlencoded is taken too
 * @param ret when 0 is returned, what the handler returns (answered)
 * @return 1 with @a out filled, 0 when the request was answered
 */
int ytk_body_take(request_rec *r, const char *request_id, apr_off_t limit,
                  int with_form, ytk_body *out, int *ret);

#endif /* YTK_BODY_H */
