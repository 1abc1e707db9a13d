/* SPDX-License-Identifier: MIT */
#ifndef RP_UTIL_BUCKET_H
#define RP_UTIL_BUCKET_H

#include <stdint.h>

/* A token bucket: `rate` tokens a second up to `burst`, kept as a fill level and the time it
 * was last topped up, so an idle bucket costs nothing. rate 0 means unlimited. */
typedef struct rp_bucket {
    double tokens;
    uint64_t last_ms;
} rp_bucket_t;

static inline void rp_bucket_init(rp_bucket_t *b, double burst, uint64_t now_ms)
{
    b->tokens = burst;
    b->last_ms = now_ms;
}

/* Takes n tokens at now_ms. Returns 0 when they were there; otherwise takes nothing and
 * returns how many milliseconds until they will be (at least 1). */
static inline uint64_t rp_bucket_take(rp_bucket_t *b, double n, double rate, double burst,
                                      uint64_t now_ms)
{
    if (rate <= 0)
        return 0;
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * rate / 1000.0;
        if (b->tokens > burst)
            b->tokens = burst;
        b->last_ms = now_ms;
    }
    if (b->tokens >= n) {
        b->tokens -= n;
        return 0;
    }
    double wait = (n - b->tokens) * 1000.0 / rate;
    return wait < 1 ? 1 : (uint64_t)wait + 1;
}

#endif
