/* SPDX-License-Identifier: MIT */
#ifndef RP_UTIL_SBUF_H
#define RP_UTIL_SBUF_H

#include <stddef.h>
#include <stdint.h>

/* A shared, immutable-once-sent byte block with a plain reference count (loop thread only).
 * The broadcast hot path encodes a packet once into an sbuf and hands every recipient a
 * reference (redis's shared replication blocks). Static sbufs (refs == 0) are never freed. */
typedef struct rp_sbuf {
    uint32_t refs; /* 0 marks a static block */
    uint32_t len;
    uint32_t cap;
    char *data;
} rp_sbuf_t;

/* A static block over a string literal: `static rp_sbuf_t x = RP_SBUF_STATIC("\x1e");` */
#define RP_SBUF_STATIC(lit)                                                                        \
    {                                                                                              \
        0, sizeof(lit) - 1, sizeof(lit) - 1, (char *)(lit)                                         \
    }

/* Returns a new block with room for `cap` bytes, len 0 and one reference, or NULL. */
rp_sbuf_t *rp_sbuf_new(size_t cap);
/* Returns a new block that takes ownership of data (from rp_malloc) holding len bytes, or
 * NULL (data is then still the caller's). */
rp_sbuf_t *rp_sbuf_adopt(char *data, size_t len);
/* Returns a new block holding a copy of data[0..len), or NULL. */
rp_sbuf_t *rp_sbuf_new_copy(const void *data, size_t len);

static inline rp_sbuf_t *rp_sbuf_ref(rp_sbuf_t *sb)
{
    if (sb->refs)
        sb->refs++;
    return sb;
}

void rp_sbuf_free_(rp_sbuf_t *sb);

static inline void rp_sbuf_unref(rp_sbuf_t *sb)
{
    if (sb->refs && --sb->refs == 0)
        rp_sbuf_free_(sb);
}

#endif
