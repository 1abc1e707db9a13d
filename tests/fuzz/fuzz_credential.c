/* SPDX-License-Identifier: MIT */
/* Fuzzes what a client's credential goes through: the bearer extraction of an HTTP request
 * (rp_http_credential_from: the first line of the input is an Authorization header value, the
 * rest a query string), then JWT verification (rp_auth_verify) of what was found, against an
 * HS256 secret, and of the whole input as a token. Oracles: an extracted credential fits the
 * buffer and is NUL-terminated; a verified principal has a valid role and a non-empty id;
 * tokens not signed with the secret never verify (the fuzzer does not know it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "hub/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rp_auth_t *verifier(void)
{
    static rp_auth_t *a;
    if (a == NULL) {
        char err[128];
        rp_auth_config_t cfg = {"fuzz-secret-that-the-fuzzer-never-sees", NULL, "iss", "aud", 30};
        a = rp_auth_new(&cfg, err, sizeof(err));
        if (a == NULL)
            abort();
    }
    return a;
}

static void check(const char *tok, size_t len)
{
    char why[160];
    rp_principal_t *p = rp_auth_verify(verifier(), tok, len, 1795300000, why, sizeof(why));
    if (p == NULL) {
        if (why[0] == '\0')
            abort();
        return;
    }
    abort(); /* a token the fuzzer could not have signed verified */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    size_t alen = nl ? (size_t)(nl - s) : size;
    const char *q = nl ? nl + 1 : NULL;
    size_t qlen = nl ? size - alen - 1 : 0;
    char out[256];
    memset(out, 'x', sizeof(out));
    long n =
        rp_http_credential_from(alen && s[0] != '?' ? s : NULL, alen, q, qlen, out, sizeof(out));
    if (n >= 0) {
        if ((size_t)n >= sizeof(out) || out[n] != '\0')
            abort();
        check(out, (size_t)n);
    }
    check(s, size);
    return 0;
}
