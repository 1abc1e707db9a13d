/* SPDX-License-Identifier: MIT */
/* Allocation wrappers with one test hook: fail the Nth call. Not thread-safe by design: only
 * the loop thread allocates through them (the hook is for single-threaded unit tests). */
#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

static unsigned long fail_countdown;
static int fail_happened;

static int should_fail(void)
{
    if (fail_countdown == 0)
        return 0;
    if (--fail_countdown == 0) {
        fail_happened = 1;
        return 1;
    }
    return 0;
}

void rp_alloc_fail_at(unsigned long n)
{
    fail_countdown = n;
    fail_happened = 0;
}

int rp_alloc_failed(void)
{
    return fail_happened;
}

void *rp_malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n ? n : 1);
}

void *rp_calloc(size_t count, size_t n)
{
    return should_fail() ? NULL : calloc(count ? count : 1, n ? n : 1);
}

void *rp_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n ? n : 1);
}

void rp_free(void *p)
{
    free(p);
}

char *rp_strndup(const char *s, size_t n)
{
    char *d = rp_malloc(n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}
