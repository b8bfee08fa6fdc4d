/**
 * @file ytk_url.h
 * @brief Strict YouTube URL to video id parser. No httpd, no APR.
 *
 * Accepted: hosts youtube.com, www./m./music.youtube.com, youtube-nocookie.com,
 * www.youtube-nocookie.com, youtu.be (any letter case); scheme https, http or
 * none; port 80/443 or none; no userinfo; paths /watch?v=ID, /shorts/ID,
 * /embed/ID, /v/ID, /e/ID, /live/ID and youtu.be/ID. Surrounding whitespace is
 * trimmed. Everything else is rejected.
 *
 * Details: a protocol-relative "//host/..." counts as no scheme; an id path
 * may end in one "/" and be followed by ?query or #fragment; v= may appear
 * anywhere in the query, several v= must agree; "videoseries" and
 * "live_stream" are not videos. The host allows only letters, digits, '-'
 * and '.', so %XX, backslashes, IP literals and IDNs are bad_host. Bytes
 * >= 0x80 are let through only in the ignored query/fragment parts.
 */
#ifndef YTK_URL_H
#define YTK_URL_H

#include <stddef.h>

/** Length of a YouTube video id. */
#define YTK_VIDEO_ID_LEN 11
/** Longest URL accepted, in bytes, before trimming. */
#define YTK_URL_MAX_LEN 2048

/** Why a URL was rejected. */
typedef enum {
    YTK_URL_OK = 0,
    YTK_URL_EMPTY,        /**< empty or only whitespace */
    YTK_URL_TOO_LONG,     /**< longer than YTK_URL_MAX_LEN */
    YTK_URL_BAD_CHAR,     /**< control character, space or NUL inside */
    YTK_URL_BAD_SCHEME,   /**< scheme other than http/https */
    YTK_URL_USERINFO,     /**< user:pass@ present */
    YTK_URL_BAD_PORT,     /**< port other than 80/443 */
    YTK_URL_BAD_HOST,     /**< not a YouTube host */
    YTK_URL_NO_VIDEO,     /**< a YouTube URL that names no video */
    YTK_URL_BAD_ID        /**< id of the wrong length or alphabet */
} ytk_url_rc;

/**
 * Reduce @a url (@a len bytes, need not be NUL terminated) to its video id.
 * @param id receives the NUL-terminated 11-character id on success
 * @return YTK_URL_OK or the reason for rejection
 */
ytk_url_rc ytk_url_video_id(const char *url, size_t len,
                            char id[YTK_VIDEO_ID_LEN + 1]);

/** Stable machine code for @a rc, e.g. "bad_host". */
const char *ytk_url_code(ytk_url_rc rc);

/** Human message for @a rc, e.g. "not a YouTube host". */
const char *ytk_url_strerror(ytk_url_rc rc);

/** 1 if @a id is exactly 11 chars of [A-Za-z0-9_-], else 0. */
int ytk_video_id_valid(const char *id, size_t len);

/** Write the canonical watch URL for @a id into @a buf (at least 44 bytes). */
void ytk_canonical_url(const char *id, char *buf, size_t buflen);

#endif /* YTK_URL_H */
