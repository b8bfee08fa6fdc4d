/**
 * @file ytc_fetch.h
 * @brief Many HTTP GETs at once on one libcurl multi handle.
 *
 * Only URLs the consumer builds itself are fetched: no redirects are
 * followed and only http/https are allowed. Bodies are capped.
 */
#ifndef YTC_FETCH_H
#define YTC_FETCH_H

#include <curl/curl.h>

#include "ytc_config.h"
#include "ytc_meta.h"

typedef struct ytc_fetcher ytc_fetcher;

/**
 * Called once per transfer from ytc_fetcher_run(). @a answer's body belongs
 * to the callee: keep it, then give it back with ytc_fetch_answer_free().
 */
typedef void ytc_fetch_done_fn(void *baton, ytc_http_answer *answer);

/** Create a fetcher; NULL on failure. */
ytc_fetcher *ytc_fetcher_create(const ytc_config *cfg);

/** Abort every transfer (no callbacks) and free @a f. */
void ytc_fetcher_destroy(ytc_fetcher *f);

/**
 * Start GET @a url. @a consent_cookie adds `Cookie: SOCS=CAI`.
 * @return 0, or -1 if the transfer could not be set up
 */
int ytc_fetch_start(ytc_fetcher *f, const char *url, int consent_cookie,
                    ytc_fetch_done_fn *done, void *baton);

/**
 * Like ytc_fetch_start(), for a request whose status and headers are all
 * that counts: the transfer ends at the first byte of the body and is
 * handed over as a completed answer with that status (Retry-After and
 * Location read) and no body, so a ~1 MB watch page asked only whether
 * YouTube answers is neither downloaded nor held in the body budget.
 * Ending it early costs the connection (HTTP/1.1) or only the stream
 * (HTTP/2).
 */
int ytc_fetch_start_status(ytc_fetcher *f, const char *url,
                           int consent_cookie, ytc_fetch_done_fn *done,
                           void *baton);

/**
 * Free the body of an answer handed to a ytc_fetch_done_fn and give its
 * room back to the fetcher's body budget (YTC_FETCH_BODY_BUDGET). @a f may
 * be NULL (the body is only freed).
 */
void ytc_fetch_answer_free(ytc_fetcher *f, ytc_http_answer *a);

/** Transfers in progress. */
int ytc_fetcher_active(const ytc_fetcher *f);

/**
 * Drive transfers: wait up to @a timeout_ms for socket activity or for
 * @a wake_fd (-1 for none) to become readable, then run completions.
 */
void ytc_fetcher_run(ytc_fetcher *f, int timeout_ms, int wake_fd);

#endif /* YTC_FETCH_H */
