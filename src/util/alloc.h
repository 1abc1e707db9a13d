/* SPDX-License-Identifier: MIT */
#ifndef RP_UTIL_ALLOC_H
#define RP_UTIL_ALLOC_H

#include <stddef.h>

/* Every allocation in ragpulse goes through these, so tests can make the Nth call fail
 * (curl's torture mode). They return NULL only for out-of-memory; rp_free(NULL) is a no-op. */
void *rp_malloc(size_t n);
void *rp_calloc(size_t count, size_t n);
void *rp_realloc(void *p, size_t n);
void rp_free(void *p);
/* Returns a new NUL-terminated copy of s[0..n), or NULL. */
char *rp_strndup(const char *s, size_t n);

/* Test hook: the `n`th allocation from now fails (1 = the next one); 0 turns it off.
 * rp_alloc_failed() says whether the injected failure has happened. */
void rp_alloc_fail_at(unsigned long n);
int rp_alloc_failed(void);

#endif
