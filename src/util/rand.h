/* SPDX-License-Identifier: MIT */
#ifndef RP_UTIL_RAND_H
#define RP_UTIL_RAND_H

#include <stddef.h>

/* Writes n random base64url characters and a NUL to out (room for n + 1) from the kernel's
 * CSPRNG: session ids must not be guessable. Returns 0, or getrandom's errno as a libuv code
 * (UV_EINTR...; UV_EIO for a short read). */
int rp_rand_id(char *out, size_t n);

#endif
