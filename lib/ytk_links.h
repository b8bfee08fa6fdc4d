/**
 * @file ytk_links.h
 * @brief Pull link strings out of request bodies and Kafka message values.
 *
 * Shared by the module (request bodies) and the consumer (message values).
 * Only extracts strings; validating them is ytk_url's job.
 */
#ifndef YTK_LINKS_H
#define YTK_LINKS_H

#include <stddef.h>

/** A list of extracted link strings, each malloc'd and NUL terminated. */
typedef struct {
    char **items;   /**< the strings */
    size_t *lens;   /**< their lengths */
    size_t n;       /**< how many */
} ytk_links;

/** Why extraction failed. */
typedef enum {
    YTK_LINKS_OK = 0,
    YTK_LINKS_BAD_JSON,      /**< not valid JSON / not a bare URL */
    YTK_LINKS_NO_FIELD,      /**< JSON object without links/link/url */
    YTK_LINKS_BAD_TYPE,      /**< field is not a string or array of strings */
    YTK_LINKS_EMPTY,         /**< no link at all */
    YTK_LINKS_TOO_MANY,      /**< more than max_links */
    YTK_LINKS_NOMEM,
    YTK_LINKS_BAD_FORM       /**< form body with an invalid %XX escape */
} ytk_links_rc;

/** Nesting deeper than this is rejected as YTK_LINKS_BAD_JSON. */
#define YTK_LINKS_MAX_DEPTH 8

/**
 * Parse a request body of content type application/json:
 * {"links": "<url>"}, {"links": ["<url>", ...]} or {"link": "<url>"}.
 * Strict: one JSON object, nothing but whitespace after it, valid UTF-8,
 * at most YTK_LINKS_MAX_DEPTH levels. Strings may hold NUL (see lens).
 * On success @a out holds at least one string (possibly empty); on failure
 * @a out is zeroed.
 * @param max_links more than this many gives YTK_LINKS_TOO_MANY (0: no limit)
 */
ytk_links_rc ytk_links_from_json(const char *buf, size_t len,
                                 size_t max_links, ytk_links *out);

/**
 * Parse an application/x-www-form-urlencoded body: links=<url> (repeatable,
 * percent- and plus-decoded). Other fields are ignored, but an invalid
 * %XX escape anywhere in the body gives YTK_LINKS_BAD_FORM. No links field
 * gives YTK_LINKS_NO_FIELD; an empty body YTK_LINKS_EMPTY.
 */
ytk_links_rc ytk_links_from_form(const char *buf, size_t len,
                                 size_t max_links, ytk_links *out);

/**
 * Parse a Kafka message value: the mod_ytkafka envelope, {"links": ...},
 * {"link": ...}, {"url": ...} with a string or array, or a bare URL string
 * (also a JSON string literal). For the envelope, "links" wins.
 */
ytk_links_rc ytk_links_from_value(const char *buf, size_t len,
                                  size_t max_links, ytk_links *out);

/**
 * For tests and fuzzing: with @a on = 0, ytk_links_from_value() skips its
 * one-pass fast path for flat objects of plain strings and always takes the
 * general json-c path, so the two can be compared. Not thread-safe; the
 * default is 1.
 */
void ytk_links_set_fast_path(int on);

/** Free the strings of @a l and reset it. Safe on a zeroed struct. */
void ytk_links_free(ytk_links *l);

/** Stable machine code, e.g. "bad_json". */
const char *ytk_links_code(ytk_links_rc rc);

/** Human message, e.g. "body is not valid JSON". */
const char *ytk_links_strerror(ytk_links_rc rc);

#endif /* YTK_LINKS_H */
