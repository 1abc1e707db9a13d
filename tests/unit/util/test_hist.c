/* SPDX-License-Identifier: MIT */
/* util/hist: observations land in the first bucket whose bound they do not pass (a value on a
 * bound counts in it, as Prometheus's `le` says), the printed buckets are cumulative, +Inf
 * equals the count, and the sum is in seconds. */
#include "unit.h"

#include <string.h>

#include "util/buf.h"
#include "util/hist.h"

static void buckets_are_cumulative_and_le_inclusive(void **state)
{
    (void)state;
    rp_hist_t h;
    memset(&h, 0, sizeof(h));
    rp_hist_observe(&h, 1000000);        /* exactly 1 ms: le="0.001" */
    rp_hist_observe(&h, 1000001);        /* just over: le="0.0025" */
    rp_hist_observe(&h, 20000000000ULL); /* 20 s: only +Inf */
    rp_buf_t b;
    rp_buf_init(&b, 1 << 16);
    rp_hist_print(&h, &b, "x_seconds", "Test.", "via=\"http\"");
    assert_non_null(strstr(b.data, "# TYPE x_seconds histogram\n"));
    assert_non_null(strstr(b.data, "x_seconds_bucket{via=\"http\",le=\"0.0005\"} 0\n"));
    assert_non_null(strstr(b.data, "x_seconds_bucket{via=\"http\",le=\"0.001\"} 1\n"));
    assert_non_null(strstr(b.data, "x_seconds_bucket{via=\"http\",le=\"0.0025\"} 2\n"));
    assert_non_null(strstr(b.data, "x_seconds_bucket{via=\"http\",le=\"10\"} 2\n"));
    assert_non_null(strstr(b.data, "x_seconds_bucket{via=\"http\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(b.data, "x_seconds_sum{via=\"http\"} 20.002000001\n"));
    assert_non_null(strstr(b.data, "x_seconds_count{via=\"http\"} 3\n"));
    rp_buf_reset(&b);
    rp_hist_print_samples(&h, &b, "y", "");
    assert_non_null(strstr(b.data, "y_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(b.data, "y_count 3\n"));
    assert_null(strstr(b.data, "# TYPE"));
    rp_buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buckets_are_cumulative_and_le_inclusive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
