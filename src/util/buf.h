/* SPDX-License-Identifier: MIT */
#ifndef RP_UTIL_BUF_H
#define RP_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

/* A growable byte buffer with a hard limit set at init (curl's dynbuf). The bytes are always
 * followed by a NUL that is not counted in len. A failed append leaves the bytes unchanged and
 * records its code in `err` (the first one since init or reset), so a builder of many lines
 * (a /metrics page, a JSON text) may check `err` once at the end instead of every call: the
 * tidy check does not require the append results to be used for that reason (scripts/tidy). */
typedef struct rp_buf {
    char *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
    size_t limit;
    int err; /* 0, or the first append error since init/reset */
} rp_buf_t;

void rp_buf_init(rp_buf_t *b, size_t limit);
void rp_buf_deinit(rp_buf_t *b);
/* Returns 0, RP_ETOOBIG when len would pass the limit, or UV_ENOMEM; on error b's bytes are
 * unchanged and b->err holds the first error. */
int rp_buf_append(rp_buf_t *b, const void *data, size_t n);
int rp_buf_append_str(rp_buf_t *b, const char *s);
int rp_buf_append_char(rp_buf_t *b, char c);
int rp_buf_printf(rp_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Makes room for n more bytes; returns 0 or an error as rp_buf_append. */
int rp_buf_reserve(rp_buf_t *b, size_t n);
/* Drops the first n bytes. */
void rp_buf_consume(rp_buf_t *b, size_t n);
static inline void rp_buf_reset(rp_buf_t *b)
{
    b->len = 0;
    b->err = 0;
    if (b->data)
        b->data[0] = '\0';
}

#endif
