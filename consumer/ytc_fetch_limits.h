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

#endif /* YTC_FETCH_LIMITS_H */
