/* SPDX-License-Identifier: MIT */
#ifndef RP_UTIL_BASE64_H
#define RP_UTIL_BASE64_H

#include <stddef.h>

/* Standard base64 (RFC 4648 §4) with padding. */
static inline size_t rp_base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}
/* Writes rp_base64_encoded_len(n) bytes to out (no NUL); returns that count. */
size_t rp_base64_encode(const unsigned char *in, size_t n, char *out);
/* Decodes in[0..n) into out (room for n / 4 * 3 bytes); returns the decoded length, or
 * RP_EPROTO for bad characters, bad padding or a length that is not a multiple of 4. */
long rp_base64_decode(const char *in, size_t n, unsigned char *out);

#endif
