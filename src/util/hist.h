/* SPDX-License-Identifier: MIT */
#ifndef RP_UTIL_HIST_H
#define RP_UTIL_HIST_H

#include <stdint.h>

#include "util/buf.h"

/* A latency histogram in Prometheus's form: fixed upper bounds in seconds (from 0.5 ms to
 * 10 s, then +Inf), a count per bucket, the sum and the count. Observing is a few compares,
 * so the loop thread can do it on its hot path; not thread-safe (loop thread only). */

#define RP_HIST_BUCKETS 14 /* finite bounds; +Inf is one more */

typedef struct rp_hist {
    uint64_t counts[RP_HIST_BUCKETS + 1]; /* per bucket, not cumulative; the last is +Inf */
    uint64_t sum_ns;
    uint64_t count;
} rp_hist_t;

/* Adds one observation of ns nanoseconds. */
void rp_hist_observe(rp_hist_t *h, uint64_t ns);
/* Appends h as the HELP and TYPE lines then `name_bucket{labels,le=...}` (cumulative),
 * `name_sum` (seconds) and `name_count`. labels is "" or `k="v"` pairs without braces; help
 * is the HELP text (a literal, newlines already escaped as "\n# "). Write errors are left to
 * the buffer's limit, as for every metric. */
void rp_hist_print(const rp_hist_t *h, rp_buf_t *b, const char *name, const char *help,
                   const char *labels);
/* Appends only the sample lines (no HELP, TYPE), for a second label set of the same name. */
void rp_hist_print_samples(const rp_hist_t *h, rp_buf_t *b, const char *name, const char *labels);

#endif
