/**
 * @file ytk_json.h
 * @brief A strict RFC 8259 JSON validator: what json-c's tokener lets
 *        through even in strict mode (single quotes, NaN, Infinity) is
 *        refused here, with the byte offset of the first error.
 *
 * One pass, no allocation, nesting bounded by the caller: hostile input
 * costs time linear in its length and stack bounded by the depth.
 */
#ifndef YTK_JSON_H
#define YTK_JSON_H

#include <stddef.h>

/**
 * Check that @a s (@a len bytes, NUL bytes allowed and refused) is one JSON
 * text: one value with optional whitespace around it, strings in valid
 * UTF-8 (no surrogates, no overlong forms), at most @a max_depth nested
 * arrays and objects.
 * @param err_pos receives the offset of the first offending byte
 * @param why receives a short static reason
 * @return 1 if valid, 0 if not
 */
int ytk_json_valid(const char *s, size_t len, int max_depth,
                   size_t *err_pos, const char **why);

#endif /* YTK_JSON_H */
