/**
 * @file ytk_envelope.h
 * @brief The Kafka message value mod_ytkafka produces, and small JSON helpers.
 */
#ifndef YTK_ENVELOPE_H
#define YTK_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#define YTK_SOURCE "mod_ytkafka/" "0.1.0"

/**
 * Build the envelope value, fields in this order:
 * {"links": canonical, "video_id", "url": as submitted, "request_id",
 *  "received_at", "source"}. "links" is the canonical watch URL
 * (ytk_canonical_url()), which existing consumers of the topic read.
 * @param video_id a valid NUL-terminated 11-character id, else NULL is returned
 * @param url the link as submitted, @a url_len bytes; bytes that are not
 *        well-formed UTF-8 are written percent-encoded, so the value is
 *        always valid JSON
 * @param request_id NULL gives JSON null
 * @param received_at NULL means now (ytk_format_time())
 * @param source NULL means YTK_SOURCE
 * @param out_len if not NULL, receives the length of the result
 * @return a malloc'd NUL-terminated JSON string (free with free()), or NULL
 */
char *ytk_envelope_build(const char *video_id, const char *url, size_t url_len,
                         const char *request_id, const char *received_at,
                         const char *source, size_t *out_len);

/**
 * The length of @a s[0..len) escaped as the inside of a JSON string by
 * ytk_json_escape().
 */
size_t ytk_json_escaped_len(const char *s, size_t len);

/**
 * Escape @a s[0..len) as the inside of a JSON string, byte for byte as
 * json-c 0.16 does with JSON_C_TO_STRING_NOSLASHESCAPE: '"', '\\' and
 * \b \f \n \r \t as two-byte escapes, other bytes below 0x20 as \u00xx,
 * everything else (including bytes that are not UTF-8) as is.
 * @param dst room for ytk_json_escaped_len() bytes; not NUL-terminated
 * @return the number of bytes written
 */
size_t ytk_json_escape(char *dst, const char *s, size_t len);

/**
 * Is @a s[0..len) well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF)? The one validator of the project.
 * @return 1 or 0
 */
int ytk_utf8_valid(const char *s, size_t len);

/**
 * The length of @a s[0..len) once every byte that is not part of a
 * well-formed UTF-8 sequence (RFC 3629) is percent-encoded; @a len if
 * @a s is valid UTF-8.
 */
size_t ytk_utf8_fixed_len(const char *s, size_t len);

/**
 * Copy @a s[0..len) to @a dst, percent-encoding ("%FF") every byte that is
 * not part of a well-formed UTF-8 sequence, so URLs stay URLs and JSON
 * stays valid.
 * @param dst room for ytk_utf8_fixed_len() bytes; not NUL-terminated
 * @return the number of bytes written
 */
size_t ytk_utf8_fix(char *dst, const char *s, size_t len);

/**
 * Format @a usec (microseconds since the epoch) as RFC 3339 UTC with
 * milliseconds, e.g. "2026-11-23T04:12:48.123Z". @a buf needs 25 bytes;
 * a smaller buffer, or a year outside 0000..9999, gives "".
 */
void ytk_format_time(int64_t usec, char *buf, size_t buflen);

#endif /* YTK_ENVELOPE_H */
