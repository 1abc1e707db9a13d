/* SPDX-License-Identifier: MIT */
#ifndef RP_UTIL_RAND_H
#define RP_UTIL_RAND_H

#include <stddef.h>

/* Writes n random base64url characters and a NUL to out (room for n + 1) from the kernel's
 * CSPRNG: session ids must not be guessable. Returns 0 or a negative errno. */
int rp_rand_id(char *out, size_t n);

#endif
