/* SPDX-License-Identifier: MIT */
/* Serving a table of in-memory assets: lookup by exact path, conditional GET by strong ETag,
 * gzip by Accept-Encoding, and the security and caching headers every asset response carries.
 * The table and its bytes are static (generated at build time); nothing here allocates, and
 * the Host header only reaches the CSP after a strict character check. */
#include "http/static.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const rp_http_asset_t *rp_http_static_find(const rp_http_assets_t *assets, const char *path,
                                           size_t len)
{
    if (assets == NULL)
        return NULL;
    if (len == 11 && memcmp(path, "/index.html", 11) == 0) {
        path = "/";
        len = 1;
    }
    for (size_t i = 0; i < assets->n; i++) {
        const rp_http_asset_t *a = &assets->items[i];
        if (strlen(a->path) == len && memcmp(a->path, path, len) == 0)
            return a;
    }
    return NULL;
}

/* True if If-None-Match (a list of entity tags, or *) names etag; W/ prefixes compare weakly,
 * as RFC 9110 asks for If-None-Match. */
static int etag_matches(const rp_http_request_t *req, const char *etag)
{
    size_t len, pos = 0, il;
    const char *v = rp_http_header(req, "if-none-match", &len), *it;
    size_t el = strlen(etag);
    while (v && rp_http_list_next(v, len, &pos, &it, &il)) {
        if (il == 1 && it[0] == '*')
            return 1;
        if (il >= 2 && it[0] == 'W' && it[1] == '/') {
            it += 2;
            il -= 2;
        }
        if (il == el && memcmp(it, etag, el) == 0)
            return 1;
    }
    return 0;
}

/* A Host header fit to go into the CSP: host name or address and port characters only. */
static int host_ok(const char *h, size_t len)
{
    if (len == 0 || len > 255)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return 0;
    }
    return 1;
}

int rp_http_static_serve(const rp_http_assets_t *assets, rp_http_conn_t *hc,
                         const rp_http_request_t *req)
{
    const rp_http_asset_t *a = rp_http_static_find(assets, req->path, req->path_len);
    if (a == NULL)
        return 0;
    if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
        rp_http_respond(hc, 405, "application/json", "Allow: GET, HEAD\r\n",
                        "{\"error\":\"use GET\"}", 19);
        return 1;
    }
    size_t hl;
    const char *host = rp_http_header(req, "host", &hl);
    char ws[600] = "";
    /* 'self' covers ws: and wss: to this origin in CSP 3; older engines need them spelled out. */
    if (host && host_ok(host, hl))
        snprintf(ws, sizeof(ws), " ws://%.*s wss://%.*s", (int)hl, host, (int)hl, host);
    char headers[1400];
    int gz = a->gz != NULL && rp_http_header_has_token(req, "accept-encoding", "gzip");
    snprintf(headers, sizeof(headers),
             "ETag: %s\r\n"
             "Cache-Control: %s\r\n"
             "%s"
             "Vary: Accept-Encoding\r\n"
             "X-Content-Type-Options: nosniff\r\n"
             "Referrer-Policy: no-referrer\r\n"
             "Cross-Origin-Opener-Policy: same-origin\r\n"
             "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "
             "img-src 'self' data:; font-src 'self'; connect-src 'self'%s; manifest-src 'self'; "
             "base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n",
             a->etag, a->immutable ? "public, max-age=31536000, immutable" : "no-cache",
             gz ? "Content-Encoding: gzip\r\n" : "", ws);
    if (etag_matches(req, a->etag)) {
        rp_http_respond(hc, 304, NULL, headers, NULL, 0);
        return 1;
    }
    const void *body = gz ? a->gz : a->data;
    size_t len = gz ? a->gz_len : a->len;
    if (req->method == HTTP_HEAD) {
        if (rp_http_respond_head(hc, 200, a->content_type, headers, len) == 0)
            rp_http_respond_done(hc);
        return 1;
    }
    rp_http_respond(hc, 200, a->content_type, headers, body, len);
    return 1;
}
