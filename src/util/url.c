/* SPDX-License-Identifier: MIT */
/* Parses the producers' hub URLs (see url.h): the scheme, the host (a bracketed IPv6 literal
 * or everything up to ':' or '/'), the port, and the path prefix with its trailing slashes
 * dropped. It checks what it keeps, so a caller can put host and prefix into a request line
 * and a Host header as they are: no byte below 0x21, no DEL, no '?', '#' or '@'. It never
 * resolves a name (the HTTP client does). */
#include "util/url.h"

#include <stdio.h>
#include <string.h>

#include "util/err.h"

static int bad(const char **why, const char *msg)
{
    if (why)
        *why = msg;
    return RP_EINVAL;
}

/* True when s[0..n) has a byte a request line or a header must not carry. */
static int has_unsafe(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || c == '?' || c == '#' || c == '@')
            return 1;
    }
    return 0;
}

int rp_url_parse(rp_url_t *u, const char *s, const char **why)
{
    memset(u, 0, sizeof(*u));
    if (s == NULL)
        return bad(why, "no URL");
    if (strncmp(s, "http://", 7) == 0)
        s += 7;
    else if (strstr(s, "://"))
        return bad(why, "only http:// URLs are supported (put TLS in front)");
    size_t total = strlen(s);
    if (has_unsafe(s, total))
        return bad(why, "a space, control character, query, fragment or user info in the URL");
    const char *p = s;
    size_t hl;
    if (*p == '[') {
        const char *rb = strchr(p, ']');
        if (rb == NULL)
            return bad(why, "an IPv6 literal without its closing ']'");
        hl = (size_t)(rb - p - 1);
        if (hl == 0 || hl >= sizeof(u->host) || strspn(p + 1, "0123456789abcdefABCDEF:.") < hl)
            return bad(why, "not an IPv6 literal between '[' and ']'");
        memcpy(u->host, p + 1, hl);
        u->ipv6 = 1;
        p = rb + 1;
        if (*p != '\0' && *p != ':' && *p != '/')
            return bad(why, "something after the IPv6 literal's ']'");
    } else {
        hl = strcspn(p, ":/");
        if (hl == 0)
            return bad(why, "no host in the URL");
        if (hl >= sizeof(u->host))
            return bad(why, "the host name is too long");
        memcpy(u->host, p, hl);
        p += hl;
    }
    u->host[hl] = '\0';
    unsigned long port = 80;
    if (*p == ':') {
        size_t pl = strcspn(p + 1, "/");
        if (pl == 0 || pl > 5 || strspn(p + 1, "0123456789") < pl)
            return bad(why, "a bad port in the URL");
        port = 0;
        for (size_t i = 0; i < pl; i++)
            port = port * 10 + (unsigned long)(p[1 + i] - '0');
        if (port == 0 || port > 65535)
            return bad(why, "the port is not in 1..65535");
        p += 1 + pl;
    }
    u->port_num = (uint16_t)port;
    snprintf(u->port, sizeof(u->port), "%u", (unsigned)port);
    size_t pl = strlen(p);
    while (pl > 0 && p[pl - 1] == '/')
        pl--;
    if (pl >= sizeof(u->prefix))
        return bad(why, "the path prefix is too long");
    memcpy(u->prefix, p, pl);
    u->prefix[pl] = '\0';
    return 0;
}

int rp_url_authority(const rp_url_t *u, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, u->ipv6 ? "[%s]:%s" : "%s:%s", u->host, u->port);
    if (n < 0 || (size_t)n >= outlen) {
        if (outlen)
            out[0] = '\0';
        return RP_ETOOBIG;
    }
    return n;
}
