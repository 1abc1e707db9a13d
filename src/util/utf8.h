/* SPDX-License-Identifier: MIT */
#ifndef RP_UTIL_UTF8_H
#define RP_UTIL_UTF8_H

#include <stddef.h>

/* Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, <= U+10FFFF), so a
 * fragmented WebSocket text message can be checked frame by frame. */
typedef struct rp_utf8 {
    unsigned need;   /* continuation bytes still expected */
    unsigned lo, hi; /* allowed range of the next continuation byte */
} rp_utf8_t;

static inline void rp_utf8_init(rp_utf8_t *u)
{
    u->need = 0;
    u->lo = 0x80;
    u->hi = 0xBF;
}
/* Feeds bytes; returns 0, or RP_EPROTO at the first invalid byte. */
int rp_utf8_feed(rp_utf8_t *u, const unsigned char *p, size_t n);
/* True when the bytes fed so far end on a character boundary. */
static inline int rp_utf8_complete(const rp_utf8_t *u)
{
    return u->need == 0;
}

#endif
