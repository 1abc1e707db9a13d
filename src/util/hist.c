/* SPDX-License-Identifier: MIT */
/* Latency histograms for /metrics. The bounds are fixed for every histogram, so a dashboard
 * can compare them and nothing is configured; counts are kept per bucket and summed only
 * when printed, so an observation touches one counter. */
#include "util/hist.h"

#include <inttypes.h>

/* Upper bounds in nanoseconds and as Prometheus prints them. */
static const uint64_t bounds_ns[RP_HIST_BUCKETS] = {
    500000,    1000000,   2500000,   5000000,    10000000,   25000000,   50000000,
    100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000ULL,
};
static const char *const bounds_le[RP_HIST_BUCKETS] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
    "0.1",    "0.25",  "0.5",    "1",     "2.5",  "5",     "10",
};

void rp_hist_observe(rp_hist_t *h, uint64_t ns)
{
    size_t i = 0;
    while (i < RP_HIST_BUCKETS && ns > bounds_ns[i])
        i++;
    h->counts[i]++;
    h->sum_ns += ns;
    h->count++;
}

void rp_hist_print_samples(const rp_hist_t *h, rp_buf_t *b, const char *name, const char *labels)
{
    const char *sep = labels[0] ? "," : "";
    uint64_t cum = 0;
    for (size_t i = 0; i < RP_HIST_BUCKETS; i++) {
        cum += h->counts[i];
        rp_buf_printf(b, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, labels, sep, bounds_le[i],
                      cum);
    }
    rp_buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, h->count);
    rp_buf_printf(b, "%s_sum%s%s%s %.9f\n", name, labels[0] ? "{" : "", labels,
                  labels[0] ? "}" : "", (double)h->sum_ns / 1e9);
    rp_buf_printf(b, "%s_count%s%s%s %" PRIu64 "\n", name, labels[0] ? "{" : "", labels,
                  labels[0] ? "}" : "", h->count);
}

void rp_hist_print(const rp_hist_t *h, rp_buf_t *b, const char *name, const char *help,
                   const char *labels)
{
    rp_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    rp_hist_print_samples(h, b, name, labels);
}
