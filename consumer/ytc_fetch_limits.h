/**
 * @file ytc_fetch_limits.h
 * @brief Caps of the fetcher that the extractor reports in its reasons
 *        (no libcurl here, so ytc_meta.c and its tests stay curl-free).
 */
#ifndef YTC_FETCH_LIMITS_H
#define YTC_FETCH_LIMITS_H

/**
 * Largest body accepted, in bytes. Real watch pages are 1-2 MB; a longer
 * answer is aborted and reported as YTC_TRANSPORT_TOO_LARGE, which the
 * extractor turns into an `error` outcome (never a retry).
 */
#define YTC_FETCH_MAX_BODY (8 * 1024 * 1024)

/**
 * Least bytes of bodies held at once (receiving, or fetched and waiting in
 * a job for the other answer and the parse); the budget is 2 MiB per video
 * fetched at once (--concurrency), at least this, or --fetch-memory. 32 MiB
 * holds 16 real pages of 1-2 MB (so --concurrency 16 never waits for it),
 * or 4 pages at the 8 MiB cap (16 such pages would be 128 MiB). A transfer
 * that would pass it stops reading its socket until bodies are given back;
 * the oldest transfer on the wire always proceeds, so the bound is the
 * budget plus one body.
 */
#define YTC_FETCH_BODY_BUDGET ((size_t)32 * 1024 * 1024)

#endif /* YTC_FETCH_LIMITS_H */
