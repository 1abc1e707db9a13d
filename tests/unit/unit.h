/* SPDX-License-Identifier: MIT */
/* Shared helpers for the cmocka unit tests: the includes cmocka needs in the order it needs
 * them, exact-size copies of inputs (so AddressSanitizer catches a decoder reading one byte
 * past its length), and span assertions. Test code allocates with plain malloc, never through
 * util/alloc.h, so the out-of-memory hook only ever counts the code under test. */
#ifndef RP_TESTS_UNIT_H
#define RP_TESTS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* A heap copy of p[0..n) with nothing after it: reading p[n] is a heap-buffer-overflow. */
static inline char *dup_exact(const void *p, size_t n)
{
    char *d = malloc(n ? n : 1);
    assert_non_null(d);
    if (n)
        memcpy(d, p, n);
    return d;
}

/* Asserts that the span p[0..n) holds exactly the string `want`. */
#define assert_span(p, n, want)                                                                    \
    do {                                                                                           \
        const char *want_ = (want);                                                                \
        size_t wlen_ = strlen(want_);                                                              \
        if ((size_t)(n) != wlen_ || memcmp((p), want_, wlen_) != 0) {                              \
            print_error("span is \"%.*s\" (%zu bytes), expected \"%s\" (%zu bytes)\n", (int)(n),   \
                        (const char *)(p), (size_t)(n), want_, wlen_);                             \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* Asserts that p[0..n) equals want[0..wn) byte for byte. */
#define assert_bytes(p, n, want, wn)                                                               \
    do {                                                                                           \
        assert_int_equal((n), (wn));                                                               \
        if ((wn) > 0)                                                                              \
            assert_memory_equal((p), (want), (wn));                                                \
    } while (0)

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
