/* SPDX-License-Identifier: MIT */
/* Base64 for Engine.IO's binary-over-polling ("b" + base64) and the WebSocket accept key. */
#include "util/base64.h"

#include "util/err.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t rp_base64_encode(const unsigned char *in, size_t n, char *out)
{
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = alphabet[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0);
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    return (size_t)(o - out);
}

/* Returns the 6-bit value of `c`, or -1 (a sentinel, not an error code) when c is not in the
 * alphabet. */
static int value_of(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long rp_base64_decode(const char *in, size_t n, unsigned char *out)
{
    if (n % 4 != 0)
        return RP_EPROTO;
    long len = 0;
    for (size_t i = 0; i < n; i += 4) {
        int pad = 0;
        if (in[i + 3] == '=') {
            pad = in[i + 2] == '=' ? 2 : 1;
            if (i + 4 != n)
                return RP_EPROTO;
        }
        int a = value_of(in[i]);
        int b = value_of(in[i + 1]);
        int c = pad == 2 ? 0 : value_of(in[i + 2]);
        int d = pad ? 0 : value_of(in[i + 3]);
        if (a < 0 || b < 0 || c < 0 || d < 0)
            return RP_EPROTO;
        unsigned v = (unsigned)a << 18 | (unsigned)b << 12 | (unsigned)c << 6 | (unsigned)d;
        out[len++] = (unsigned char)(v >> 16);
        if (pad < 2)
            out[len++] = (unsigned char)(v >> 8);
        if (pad < 1)
            out[len++] = (unsigned char)v;
    }
    return len;
}
