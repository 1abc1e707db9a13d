/* SPDX-License-Identifier: MIT */
#ifndef RP_WATCH_CHUNK_H
#define RP_WATCH_CHUNK_H

#include <stddef.h>

/* Chunking of extracted text for the full-text index: pieces of at most `size` bytes that
 * overlap by about `overlap` bytes, cut at the best boundary inside the window: a paragraph
 * (blank line), else a sentence end (. ! ? followed by space), else a line end, else a space,
 * else a UTF-8 character boundary. Pure; any thread. */

typedef struct rp_watch_chunk {
    size_t start; /* byte offset in the text */
    size_t len;   /* bytes; leading and trailing white space trimmed */
} rp_watch_chunk_t;

typedef struct rp_watch_chunk_cfg {
    size_t size;    /* at most this many bytes per chunk (>= 16) */
    size_t overlap; /* bytes shared with the previous chunk (< size / 2) */
} rp_watch_chunk_cfg_t;

/* Splits text[0..len) into *out (a new array, free with rp_free) and returns the count (0
 * for text that is only white space), or UV_EINVAL for a bad cfg, or UV_ENOMEM. Chunks are
 * in order, each start is greater than the previous one, and together they cover every
 * non-space byte of the text. */
long rp_watch_chunk(const char *text, size_t len, const rp_watch_chunk_cfg_t *cfg,
                    rp_watch_chunk_t **out);

#endif
