/**
 * @file ytk_answer.h
 * @brief The JSON answers of the handlers, written straight into request
 *        pool memory (no json-c objects per request).
 *
 * The bytes are those json-c's JSON_C_TO_STRING_PLAIN would give. Every
 * answer is one object that ends with the request id.
 */
#ifndef YTK_ANSWER_H
#define YTK_ANSWER_H

#include <stdint.h>
#include <apr_pools.h>
#include <httpd.h>

/** A growing answer in a pool. */
typedef struct {
    apr_pool_t *pool;
    char *buf;
    apr_size_t len;
    apr_size_t cap;
} ytk_jbuf;

/** Start an empty buffer in @a pool. */
void ytk_jb_init(ytk_jbuf *b, apr_pool_t *pool);

/** Append @a n raw bytes. */
void ytk_jb_raw(ytk_jbuf *b, const char *s, apr_size_t n);

/** Append a string literal as raw bytes. */
#define YTK_JB_LIT(b, lit) ytk_jb_raw((b), (lit), sizeof(lit) - 1)

/** A member's key (and the comma before it unless it opens the object). */
void ytk_jb_key(ytk_jbuf *b, const char *key);

/** A JSON string; bytes that are not UTF-8 go out percent-encoded. */
void ytk_jb_str(ytk_jbuf *b, const char *s, apr_size_t n);

/** Member @a k with the string @a v of @a n bytes. */
void ytk_jset_str(ytk_jbuf *b, const char *k, const char *v, size_t n);

/** Member @a k with the NUL-terminated string @a v. */
void ytk_jset(ytk_jbuf *b, const char *k, const char *v);

/** Member @a k with the integer @a v. */
void ytk_jset_int(ytk_jbuf *b, const char *k, int64_t v);

/** Member @a k with the value null. */
void ytk_jset_null(ytk_jbuf *b, const char *k);

/** Member "error": {"code": ..., "message": ...}. */
void ytk_jerror(ytk_jbuf *b, const char *code, const char *message);

/**
 * Close the answer @a b (an object still open) with "request_id" and send
 * it with @a status, without counting it (ytk_answer_send() counts).
 * Cache-Control is "no-store" unless the handler set one.
 * @return OK (the handler's return value)
 */
int ytk_answer_write(request_rec *r, const char *request_id, int status,
                     ytk_jbuf *b);

/**
 * Close the answer @a b (an object still open) with "request_id", send it
 * with @a status and count it in the status counters.
 * @return OK (the handler's return value)
 */
int ytk_answer_send(request_rec *r, const char *request_id, int status,
                    ytk_jbuf *b);

/** An answer holding only an error and the request id. */
int ytk_answer_error(request_rec *r, const char *request_id, int status,
                     const char *code, const char *message);

/** 413 for a refused body; the connection is closed, not drained. */
int ytk_answer_too_large(request_rec *r, const char *request_id,
                         const char *message);

/** 405 for anything but POST, with Allow. */
int ytk_answer_post_only(request_rec *r, const char *request_id);

/** Set Retry-After when @a seconds > 0. */
void ytk_answer_retry_after(request_rec *r, int seconds);

#endif /* YTK_ANSWER_H */
