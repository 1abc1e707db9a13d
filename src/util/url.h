/* SPDX-License-Identifier: MIT */
#ifndef RP_UTIL_URL_H
#define RP_UTIL_URL_H

#include <stddef.h>
#include <stdint.h>

/* The one parser of the hub URLs the producers are given (`ragpulse emit --hub`, `ragpulse
 * watch --hub`): "http://HOST[:PORT][/PREFIX]", the scheme optional. HOST is a name, an IPv4
 * address or a bracketed IPv6 literal ("[::1]"); PREFIX is the path a reverse proxy puts the
 * hub under ("http://proxy/ragpulse"), kept without its trailing slashes so that
 * prefix + "/api/events" is the request path. Pure: no allocation, no lookup. */

typedef struct rp_url {
    char host[256];    /* without the brackets of an IPv6 literal */
    char port[6];      /* decimal, "80" when the URL names none */
    uint16_t port_num; /* the same, 1..65535 */
    int ipv6;          /* host was a bracketed literal: the Host header needs the brackets back */
    char prefix[512];  /* "" or "/a/b": starts with '/', never ends with one */
} rp_url_t;

/* Parses `s` into `u`. Returns 0, or RP_EINVAL with *why (if why is not NULL) set to a static
 * sentence for the user: another scheme than http://, no host, an unclosed '[', a port that
 * is empty, not decimal, 0 or above 65535, a query, fragment or user info, a prefix too long,
 * a control character or space anywhere. `u` is unspecified after an error. */
int rp_url_parse(rp_url_t *u, const char *s, const char **why);

/* Writes "host:port" ("[::1]:8103" for an IPv6 literal), what a Host header carries, into
 * out[0..outlen). Returns the length, or RP_ETOOBIG when it does not fit (out is then ""). */
int rp_url_authority(const rp_url_t *u, char *out, size_t outlen);

#endif
