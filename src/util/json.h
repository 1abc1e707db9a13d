/* SPDX-License-Identifier: MIT */
#ifndef RP_UTIL_JSON_H
#define RP_UTIL_JSON_H

#include <stddef.h>

#include "util/buf.h"

/* A validating JSON scanner that works on the raw text and never builds a tree. Socket.IO
 * payloads are passed through as the bytes the client sent (numbers keep their exact
 * spelling, keys their order), so the server only needs to find element boundaries, check
 * that the text is JSON, and decode the few strings it reads (event names, room names).
 * Nesting is limited to RP_JSON_MAX_DEPTH; deeper input is refused like bad input. */
#define RP_JSON_MAX_DEPTH 64

/* Scans one value at s[0..n) after optional whitespace. Returns the bytes consumed (leading
 * whitespace and the value, not trailing whitespace), or RP_EPROTO. */
long rp_json_scan(const char *s, size_t n);
/* Returns 0 if s[0..n) is exactly one JSON value with optional surrounding whitespace, else
 * RP_EPROTO. */
int rp_json_validate(const char *s, size_t n);

/* Iterates the elements of a JSON array given as text. rp_json_array_begin returns 0, or
 * RP_EPROTO if s does not start with '['. rp_json_array_next returns 1 with the element's
 * span (no surrounding whitespace), 0 at the closing ']', or RP_EPROTO. */
typedef struct rp_json_iter {
    const char *s;
    size_t n;
    size_t pos;
    int count;
} rp_json_iter_t;
int rp_json_array_begin(rp_json_iter_t *it, const char *s, size_t n);
int rp_json_array_next(rp_json_iter_t *it, const char **elem, size_t *elen);

/* Finds member `key` of the JSON object text s[0..n). Returns 1 and the value's span, 0 if
 * absent or s is not an object, RP_EPROTO for bad JSON. */
int rp_json_object_get(const char *s, size_t n, const char *key, const char **val, size_t *vlen);

/* Decodes the JSON string literal s[0..n) (with its quotes) into out, appending. Returns 0,
 * RP_EPROTO (not a string, bad escape) or an rp_buf error. \u0000 is refused. */
int rp_json_string_decode(const char *s, size_t n, rp_buf_t *out);
/* Appends s[0..n) to out as a JSON string literal with quotes. Returns 0 or an rp_buf error. */
int rp_json_string_encode(rp_buf_t *out, const char *s, size_t n);

#endif
