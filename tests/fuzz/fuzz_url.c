/* SPDX-License-Identifier: MIT */
/* Fuzzes the hub URL parser (util/url.h) on the input as a C string. Oracles: a parse is 0 or
 * RP_EINVAL with a reason; an accepted URL has a host, a port in 1..65535 whose text is its
 * number, a prefix that is "" or starts with '/' and never ends with one, and no byte a
 * request line or Host header must not carry; and it round-trips: "http://" + authority +
 * prefix parses back to the same fields. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_clean(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c == 0x7f || c == '?' || c == '#' || c == '@')
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    rp_url_t u;
    const char *why = NULL;
    int rc = rp_url_parse(&u, s, &why);
    if (rc != 0) {
        if (rc != RP_EINVAL || why == NULL || why[0] == '\0')
            abort();
        free(s);
        return 0;
    }
    if (u.host[0] == '\0' || u.port_num == 0)
        abort();
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)u.port_num);
    if (strcmp(port, u.port) != 0)
        abort();
    size_t pl = strlen(u.prefix);
    if (pl > 0 && (u.prefix[0] != '/' || u.prefix[pl - 1] == '/'))
        abort();
    check_clean(u.host);
    check_clean(u.prefix);
    char auth[300], again[900];
    if (rp_url_authority(&u, auth, sizeof(auth)) < 0)
        abort();
    snprintf(again, sizeof(again), "http://%s%s", auth, u.prefix);
    rp_url_t v;
    if (rp_url_parse(&v, again, NULL) != 0 || strcmp(u.host, v.host) != 0 ||
        strcmp(u.port, v.port) != 0 || u.ipv6 != v.ipv6 || strcmp(u.prefix, v.prefix) != 0)
        abort();
    free(s);
    return 0;
}
