/* SPDX-License-Identifier: MIT */
#ifndef RP_HTTP_STATIC_H
#define RP_HTTP_STATIC_H

#include <stddef.h>

#include "http/http.h"

/* Static assets held in memory (the dashboard, embedded at build time by web/embed/rp-embed.c
 * into a generated .c; cli passes the table in). Served with a strong ETag (304 on
 * If-None-Match), Cache-Control (content-hashed names immutable for a year, the rest
 * revalidated every time), the gzip variant when the client accepts it, and headers that
 * keep a page from running anything it did not ship: a strict Content-Security-Policy (no
 * inline script, connections only to this origin), X-Content-Type-Options: nosniff,
 * Referrer-Policy and frame-ancestors 'none'. Loop thread only. */

typedef struct rp_http_asset {
    const char *path;         /* URL path: "/" for index.html, "/assets/app-X.js" */
    const char *content_type; /* with charset for text */
    const unsigned char *data;
    size_t len;
    const unsigned char *gz; /* gzip variant, or NULL */
    size_t gz_len;
    const char *etag; /* quoted: "\"0123abcd...\"" */
    int immutable;    /* the name changes with the content */
} rp_http_asset_t;

typedef struct rp_http_assets {
    const rp_http_asset_t *items; /* borrowed, static */
    size_t n;
} rp_http_assets_t;

/* Answers req from the table if its path names an asset: 200 (GET/HEAD), 304, or 405 for
 * other methods. Returns 1 when it answered, 0 when the path is not in the table (the caller
 * routes it elsewhere). */
int rp_http_static_serve(const rp_http_assets_t *assets, rp_http_conn_t *hc,
                         const rp_http_request_t *req);

/* The asset for path[0..len), or NULL. */
const rp_http_asset_t *rp_http_static_find(const rp_http_assets_t *assets, const char *path,
                                           size_t len);

#endif
