/* SPDX-License-Identifier: MIT */
/* Query-string lookup with percent-decoding ('+' is a space, as in forms), and the bearer
 * credential of a request (Authorization header or ?token=). */
#include <string.h>
#include <strings.h>

#include "http/http.h"
#include "util/err.h"

/* Returns the value of hex digit `c`, or -1 (a sentinel: not a hex digit). */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long rp_http_query_get(const char *q, size_t qlen, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key);
    size_t i = 0;
    while (i < qlen) {
        size_t end = i;
        while (end < qlen && q[end] != '&')
            end++;
        size_t eq = i;
        while (eq < end && q[eq] != '=')
            eq++;
        if (eq - i == klen && memcmp(q + i, key, klen) == 0) {
            size_t o = 0;
            for (size_t j = eq < end ? eq + 1 : end; j < end; j++) {
                char c = q[j];
                if (c == '%') {
                    if (j + 2 >= end)
                        return RP_EPROTO;
                    int h = hexval(q[j + 1]), l = hexval(q[j + 2]);
                    if (h < 0 || l < 0)
                        return RP_EPROTO;
                    c = (char)(h << 4 | l);
                    j += 2;
                } else if (c == '+') {
                    c = ' ';
                }
                if (o + 1 >= outlen)
                    return RP_ETOOBIG;
                out[o++] = c;
            }
            out[o] = '\0';
            return (long)o;
        }
        i = end + 1;
    }
    return RP_ENOTFOUND;
}

long rp_http_credential_from(const char *authz, size_t authz_len, const char *query,
                             size_t query_len, char *out, size_t outlen)
{
    if (authz == NULL)
        return query ? rp_http_query_get(query, query_len, "token", out, outlen) : RP_ENOTFOUND;
    while (authz_len && (*authz == ' ' || *authz == '\t')) {
        authz++;
        authz_len--;
    }
    if (authz_len < 7 || strncasecmp(authz, "Bearer ", 7) != 0)
        return RP_EPROTO;
    authz += 7;
    authz_len -= 7;
    while (authz_len && *authz == ' ') {
        authz++;
        authz_len--;
    }
    while (authz_len && (authz[authz_len - 1] == ' ' || authz[authz_len - 1] == '\t'))
        authz_len--;
    if (authz_len == 0)
        return RP_EPROTO;
    if (authz_len >= outlen)
        return RP_ETOOBIG;
    memcpy(out, authz, authz_len);
    out[authz_len] = '\0';
    return (long)authz_len;
}

long rp_http_credential(const rp_http_request_t *req, char *out, size_t outlen)
{
    size_t al = 0;
    const char *authz = rp_http_header(req, "authorization", &al);
    return rp_http_credential_from(authz, al, req->query, req->query_len, out, outlen);
}
