/* SPDX-License-Identifier: MIT */
/* util/buf: the bounded growable buffer. The limit is the point of the type, so every error
 * path checks that the buffer is left exactly as it was (length, bytes and trailing NUL). */
#include "unit.h"

#include <uv.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/err.h"

/* A snapshot to compare against after a failed call. */
struct snap {
    char *copy;
    size_t len;
    const char *data;
    size_t cap;
};

static struct snap take(const rp_buf_t *b)
{
    struct snap s = {dup_exact(b->data ? b->data : "", b->len), b->len, b->data, b->cap};
    return s;
}

static void assert_unchanged(const rp_buf_t *b, struct snap *s)
{
    assert_int_equal(b->len, s->len);
    assert_ptr_equal(b->data, s->data);
    assert_int_equal(b->cap, s->cap);
    if (b->data) {
        assert_memory_equal(b->data, s->copy, s->len);
        assert_int_equal(b->data[b->len], '\0');
    }
    free(s->copy);
}

static void appends_and_keeps_nul_terminator(void **state)
{
    (void)state;
    rp_buf_t b;
    rp_buf_init(&b, 1024);
    assert_null(b.data);
    assert_int_equal(rp_buf_append(&b, "abc", 3), 0);
    assert_int_equal(rp_buf_append_char(&b, '-'), 0);
    assert_int_equal(rp_buf_append_str(&b, "def"), 0);
    assert_int_equal(rp_buf_printf(&b, "%d:%s", 42, "x"), 0);
    assert_string_equal(b.data, "abc-def42:x");
    assert_int_equal(b.len, 11);
    rp_buf_consume(&b, 4);
    assert_string_equal(b.data, "def42:x");
    rp_buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(rp_buf_append(&b, "z", 1), 0);
    rp_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    rp_buf_deinit(&b);
    assert_null(b.data);
    rp_buf_deinit(&b); /* twice is harmless */
}

static void grows_across_many_appends(void **state)
{
    (void)state;
    rp_buf_t b;
    rp_buf_init(&b, 1 << 20);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(rp_buf_append_char(&b, (char)('a' + i % 26)), 0);
    assert_int_equal(b.len, 10000);
    assert_true(b.cap > b.len);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(b.data[i], 'a' + i % 26);
    assert_int_equal(b.data[10000], '\0');
    rp_buf_deinit(&b);
}

static void fills_exactly_to_limit(void **state)
{
    (void)state;
    rp_buf_t b;
    rp_buf_init(&b, 10);
    assert_int_equal(rp_buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(b.len, 10);
    assert_int_equal(rp_buf_append(&b, "", 0), 0);
    rp_buf_deinit(&b);
}

static void over_limit_is_etoobig_and_leaves_buffer_unchanged(void **state)
{
    (void)state;
    rp_buf_t b;
    rp_buf_init(&b, 10);
    struct snap s = take(&b);
    assert_int_equal(rp_buf_append(&b, "01234567890", 11), RP_ETOOBIG);
    assert_unchanged(&b, &s);

    assert_int_equal(rp_buf_append(&b, "0123456", 7), 0);
    s = take(&b);
    assert_int_equal(rp_buf_append(&b, "abcd", 4), RP_ETOOBIG);
    assert_unchanged(&b, &s);
    s = take(&b);
    assert_int_equal(rp_buf_reserve(&b, 4), RP_ETOOBIG);
    assert_unchanged(&b, &s);
    s = take(&b);
    assert_int_equal(rp_buf_printf(&b, "%s", "abcd"), RP_ETOOBIG);
    assert_unchanged(&b, &s);
    s = take(&b);
    assert_int_equal(rp_buf_append_str(&b, "abcd"), RP_ETOOBIG);
    assert_unchanged(&b, &s);
    /* A length that would overflow len + n. */
    s = take(&b);
    assert_int_equal(rp_buf_reserve(&b, SIZE_MAX), RP_ETOOBIG);
    assert_int_equal(rp_buf_reserve(&b, SIZE_MAX - 3), RP_ETOOBIG);
    assert_unchanged(&b, &s);

    assert_int_equal(rp_buf_append(&b, "abc", 3), 0);
    s = take(&b);
    assert_int_equal(rp_buf_append_char(&b, 'x'), RP_ETOOBIG);
    assert_unchanged(&b, &s);
    assert_string_equal(b.data, "0123456abc");
    rp_buf_deinit(&b);
}

/* A builder of many lines checks b.err once: it holds the first failure, later successful
 * appends do not clear it, reset and deinit do. */
static void err_records_the_first_failure_until_reset(void **state)
{
    (void)state;
    rp_buf_t b;
    rp_buf_init(&b, 8);
    assert_int_equal(b.err, 0);
    assert_int_equal(rp_buf_append_str(&b, "abc"), 0);
    assert_int_equal(b.err, 0);
    assert_int_equal(rp_buf_printf(&b, "%s", "too long"), RP_ETOOBIG);
    assert_int_equal(b.err, RP_ETOOBIG);
    assert_int_equal(rp_buf_append_char(&b, 'd'), 0);
    assert_int_equal(b.err, RP_ETOOBIG);
    assert_string_equal(b.data, "abcd");
    rp_buf_reset(&b);
    assert_int_equal(b.err, 0);
    assert_int_equal(rp_buf_append(&b, "123456789", 9), RP_ETOOBIG);
    assert_int_equal(b.err, RP_ETOOBIG);
    rp_buf_deinit(&b);
    assert_int_equal(b.err, 0);
}

static void limit_zero_refuses_any_byte(void **state)
{
    (void)state;
    rp_buf_t b;
    rp_buf_init(&b, 0);
    assert_int_equal(rp_buf_append_char(&b, 'x'), RP_ETOOBIG);
    assert_int_equal(b.len, 0);
    rp_buf_deinit(&b);
}

static void printf_longer_than_stack_buffer(void **state)
{
    (void)state;
    rp_buf_t b;
    rp_buf_init(&b, 4096);
    assert_int_equal(rp_buf_append_str(&b, ">"), 0);
    char big[1000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(rp_buf_printf(&b, "%s|%s", big, "end"), 0);
    assert_int_equal(b.len, 1 + 999 + 4);
    assert_int_equal(b.data[0], '>');
    assert_int_equal(memcmp(b.data + 1, big, 999), 0);
    assert_string_equal(b.data + 1000, "|end");
    /* Over the limit through the long path: unchanged. */
    struct snap s = take(&b);
    assert_int_equal(rp_buf_printf(&b, "%s%s%s%s%s", big, big, big, big, big), RP_ETOOBIG);
    assert_unchanged(&b, &s);
    rp_buf_deinit(&b);
}

static void growth_failure_is_enomem_and_leaves_buffer_unchanged(void **state)
{
    (void)state;
    /* Fail allocation 1, 2, ... while appending 100 chunks; every failure must leave the
     * buffer as it was before that append, and the run that fails nothing must finish. */
    char chunk[37];
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (char)('A' + i % 26);
    for (unsigned long n = 1;; n++) {
        rp_buf_t b;
        rp_buf_init(&b, 1 << 16);
        rp_alloc_fail_at(n);
        int rc = 0;
        int i;
        for (i = 0; i < 100; i++) {
            struct snap s = take(&b);
            rc = rp_buf_append(&b, chunk, sizeof(chunk));
            if (rc < 0) {
                assert_int_equal(rc, UV_ENOMEM);
                assert_unchanged(&b, &s);
                break;
            }
            free(s.copy);
        }
        int failed = rp_alloc_failed();
        rp_alloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, 0);
            assert_int_equal(b.len, 100 * sizeof(chunk));
            rp_buf_deinit(&b);
            break;
        }
        assert_int_equal(rc, UV_ENOMEM);
        /* Still usable after the failure. */
        assert_int_equal(rp_buf_append(&b, "ok", 2), 0);
        rp_buf_deinit(&b);
        assert_true(n < 64);
    }
}

static void printf_growth_failure_leaves_buffer_unchanged(void **state)
{
    (void)state;
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (unsigned long n = 1;; n++) {
        rp_buf_t b;
        rp_buf_init(&b, 1 << 16);
        assert_int_equal(rp_buf_append_str(&b, "head"), 0);
        struct snap s = take(&b);
        rp_alloc_fail_at(n);
        int rc = rp_buf_printf(&b, "%s", big);
        int failed = rp_alloc_failed();
        rp_alloc_fail_at(0);
        if (!failed) {
            free(s.copy);
            assert_int_equal(rc, 0);
            assert_int_equal(b.len, 4 + 599);
            rp_buf_deinit(&b);
            break;
        }
        assert_int_equal(rc, UV_ENOMEM);
        assert_unchanged(&b, &s);
        rp_buf_deinit(&b);
        assert_true(n < 16);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(appends_and_keeps_nul_terminator),
        cmocka_unit_test(grows_across_many_appends),
        cmocka_unit_test(fills_exactly_to_limit),
        cmocka_unit_test(over_limit_is_etoobig_and_leaves_buffer_unchanged),
        cmocka_unit_test(err_records_the_first_failure_until_reset),
        cmocka_unit_test(limit_zero_refuses_any_byte),
        cmocka_unit_test(printf_longer_than_stack_buffer),
        cmocka_unit_test(growth_failure_is_enomem_and_leaves_buffer_unchanged),
        cmocka_unit_test(printf_growth_failure_leaves_buffer_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
