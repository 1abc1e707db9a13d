/* SPDX-License-Identifier: MIT */
/* Fuzzes the static asset server (src/http/static.c) as the loop drives it: requests reach
 * rp_http_static_serve() through the real HTTP parser, on a conn made by rp_net_conn_new() whose
 * output stays in c->out, over a small table (an index with a gzip variant, an immutable asset
 * without one). Byte 0 picks the method and the mode: structured (the rest is split at '\n'
 * into the path, If-None-Match, Accept-Encoding and Host, so short inputs reach the ETag list,
 * the token list and the Host check) or raw (the rest is the request bytes, pipelining and all).
 * Every answer is checked: served exactly when the path is in the table, a well-formed head
 * (no control byte, every line ended by CRLF: no header injection, no truncation), 304 only
 * for a matching tag, gzip only when asked for and present, and a Content-Length that is the
 * variant's length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "http/http.h"
#include "http/static.h"
#include "net/net.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char index_html[] = "<!doctype html><title>t</title>";
static const unsigned char index_gz[] = "\x1f\x8b not really gzip, only bytes of another length";
static const unsigned char app_js[] = "console.log(1)";

static const rp_http_asset_t items[] = {
    {"/", "text/html; charset=utf-8", index_html, sizeof(index_html) - 1, index_gz,
     sizeof(index_gz) - 1, "\"0123456789abcdef\"", 0},
    {"/assets/app-X1.js", "text/javascript; charset=utf-8", app_js, sizeof(app_js) - 1, NULL, 0,
     "\"fedcba9876543210\"", 1},
};
static const rp_http_assets_t assets = {items, sizeof(items) / sizeof(items[0])};

static uv_loop_t loop;
static rp_net_t net;
static rp_http_server_t srv;
static rp_net_conn_t *conn;

/* The bytes c->out holds from byte `from` on, copied into out (at most cap); their count. */
static size_t out_bytes(const rp_net_conn_t *c, size_t from, char *out, size_t cap)
{
    size_t pos = 0, n = 0;
    for (uint32_t i = 0; i < c->out.count; i++) {
        const rp_net_link_t *l = rp_net_queue_at(&c->out, i);
        for (uint32_t k = 0; k < l->len; k++, pos++)
            if (pos >= from && n < cap)
                out[n++] = l->sb->data[l->off + k];
    }
    return n;
}

/* True if hay[0..hl) contains needle. */
static int contains(const char *hay, size_t hl, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; nl <= hl && i <= hl - nl; i++)
        if (memcmp(hay + i, needle, nl) == 0)
            return 1;
    return 0;
}

static void check_answer(const rp_http_request_t *req, const rp_http_asset_t *a, const char *r,
                         size_t n)
{
    /* The head: printable bytes in CRLF-ended lines, up to an empty line. */
    size_t i = 0, line = 0, head_end = 0;
    while (i < n && head_end == 0) {
        unsigned char ch = (unsigned char)r[i];
        if (ch == '\r') {
            if (i + 1 >= n || r[i + 1] != '\n')
                abort();
            if (i == line)
                head_end = i + 2;
            i += 2;
            line = i;
            continue;
        }
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            abort(); /* a bare LF or a control byte in a header: injection or corruption */
        i++;
    }
    if (head_end == 0 || n < 12 || memcmp(r, "HTTP/1.1 ", 9) != 0)
        abort();
    int status = atoi(r + 9);
    int get = req->method == HTTP_GET, head = req->method == HTTP_HEAD;
    if (!get && !head) {
        if (status != 405)
            abort();
        return;
    }
    if (status != 200 && status != 304)
        abort();
    size_t inm_len;
    const char *inm = rp_http_header(req, "if-none-match", &inm_len);
    size_t el = strlen(a->etag);
    /* 304 only when If-None-Match has * or the tag itself; the tag alone always gets 304. */
    if (status == 304 &&
        (inm == NULL || (!contains(inm, inm_len, "*") && !contains(inm, inm_len, a->etag))))
        abort();
    if (inm && inm_len == el && memcmp(inm, a->etag, el) == 0 && status != 304)
        abort();
    if (!contains(r, head_end, a->etag) ||
        !contains(r, head_end, "Content-Security-Policy: default-src 'none'"))
        abort();
    int gz = contains(r, head_end, "Content-Encoding: gzip");
    if (gz && (a->gz == NULL || !rp_http_header_has_token(req, "accept-encoding", "gzip")))
        abort();
    if (status == 200) {
        size_t want = gz ? a->gz_len : a->len;
        char cl[48];
        int k = snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", want);
        if (k <= 0 || !contains(r, head_end, cl))
            abort();
        if (get && n != head_end + want && n < 65536)
            abort(); /* the body is the variant, whole, and nothing else */
        if (get && n == head_end + want && memcmp(r + head_end, gz ? a->gz : a->data, want) != 0)
            abort();
    }
}

static void on_request(rp_http_conn_t *hc, rp_http_request_t *req, void *ud)
{
    (void)ud;
    const rp_http_asset_t *a = rp_http_static_find(&assets, req->path, req->path_len);
    size_t before = conn->out.bytes;
    int served = rp_http_static_serve(&assets, hc, req);
    if (served != (a != NULL))
        abort();
    if (!served) {
        rp_http_respond(hc, 404, "text/plain", "", "no", 2);
        return;
    }
    static char r[65536];
    size_t n = out_bytes(conn, before, r, sizeof(r));
    check_answer(req, a, r, n);
}

static void setup(void)
{
    static int ready;
    if (ready)
        return;
    ready = 1;
    rp_log_level = RP_LOG_OFF;
    if (uv_loop_init(&loop) != 0 || rp_net_init(&net, &loop, 1 << 20) != 0)
        abort();
    srv.net = &net;
    srv.max_header = 4096;
    srv.max_body = 1024;
    srv.on_request = on_request;
}

/* Appends "Name: value\r\n" with value's CR and LF dropped (they would end the header). */
static size_t add_header(char *req, size_t n, size_t cap, const char *name, const uint8_t *v,
                         size_t vl)
{
    size_t nl = strlen(name);
    if (n + nl + vl + 4 > cap)
        return n;
    memcpy(req + n, name, nl);
    n += nl;
    req[n++] = ':';
    req[n++] = ' ';
    for (size_t i = 0; i < vl; i++)
        if (v[i] != '\r' && v[i] != '\n')
            req[n++] = (char)v[i];
    req[n++] = '\r';
    req[n++] = '\n';
    return n;
}

/* Structured mode: "METHOD path HTTP/1.1" and the headers the fields give. */
static size_t build(const uint8_t *in, size_t len, int method, char *req, size_t cap)
{
    static const char *const methods[] = {"GET", "HEAD", "GET", "POST"};
    static const char *const names[] = {"If-None-Match", "Accept-Encoding", "Host"};
    const uint8_t *field[4] = {0};
    size_t flen[4] = {0};
    size_t nf = 0, start = 0;
    for (size_t i = 0; i <= len && nf < 4; i++) {
        if (i == len || in[i] == '\n') {
            field[nf] = in + start;
            flen[nf++] = i - start;
            start = i + 1;
        }
    }
    size_t n = (size_t)snprintf(req, cap, "%s ", methods[method]);
    if (nf == 0 || flen[0] == 0 || field[0][0] != '/')
        req[n++] = '/';
    for (size_t i = 0; nf > 0 && i < flen[0] && n + 16 < cap; i++)
        if (field[0][i] > ' ' && field[0][i] != 0x7f)
            req[n++] = (char)field[0][i];
    memcpy(req + n, " HTTP/1.1\r\n", 11);
    n += 11;
    for (size_t f = 1; f < nf; f++)
        n = add_header(req, n, cap - 2, names[f - 1], field[f], flen[f]);
    req[n++] = '\r';
    req[n++] = '\n';
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    setup();
    int raw = data[0] & 1;
    int method = (data[0] >> 1) & 3;
    static char req[16384];
    size_t n;
    if (raw) {
        n = size - 1;
        memcpy(req, data + 1, n);
    } else {
        n = build(data + 1, size - 1, method, req, sizeof(req));
    }
    conn = rp_net_conn_new(&net);
    if (conn == NULL || rp_http_conn_start(&srv, conn) != 0)
        abort();
    if (n)
        conn->ops->on_read(conn, req, n);
    if (!conn->closing && !conn->_eof_seen) {
        conn->_eof_seen = 1;
        conn->ops->on_eof(conn, UV_EOF);
    }
    rp_net_conn_close(conn);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (net.nconns != 0)
        abort();
    return 0;
}
