/* SPDX-License-Identifier: MIT */
/* Fuzzes the HTTP connection code the way the loop drives it, without a socket: a conn from
 * rp_net_conn_new() made an HTTP conn by rp_http_conn_start(), fed through c->ops->on_read.
 * The first three bytes are controls: byte 0 picks 1-3 chunks and what the handler does
 * (respond at once, hold and respond after the input, or take the connection over as an
 * upgrade); bytes 1 and 2 place the cuts. Small limits (1 KiB of headers, 1 KiB of body)
 * let short inputs reach the 431 and 413 paths. The handler also runs the request helpers
 * (header lookup, token lists, query decoding, CORS, the Origin policy) on whatever was parsed.
 * Each input ends with the conn closed and the loop run, so LeakSanitizer sees everything freed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "http/http.h"
#include "net/net.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    MODE_RESPOND,
    MODE_HOLD,
    MODE_UPGRADE
};

static uv_loop_t loop;
static rp_net_t net;
static rp_http_server_t srv;
static int mode;
static rp_http_conn_t *held;
static size_t upgraded_bytes;

static void sink_on_read(rp_net_conn_t *c, char *data, size_t len)
{
    (void)c;
    if (len)
        data[0] ^= 1; /* the buffer is ours during the call */
    upgraded_bytes += len;
}

static void sink_on_eof(rp_net_conn_t *c, int err)
{
    (void)err;
    rp_net_conn_close(c);
}

static void sink_on_close(rp_net_conn_t *c)
{
    (void)c;
}

static const rp_net_conn_ops_t sink_ops = {
    .on_read = sink_on_read,
    .on_eof = sink_on_eof,
    .on_close = sink_on_close,
};

static void on_request(rp_http_conn_t *hc, rp_http_request_t *req, void *ud)
{
    (void)ud;
    if (rp_http_header_count(req) > RP_HTTP_MAX_HEADERS || req->body[req->body_len] != '\0' ||
        req->body_len > srv.max_body)
        abort();
    size_t len;
    const char *host = rp_http_header(req, "host", &len);
    if (host && len > srv.max_header)
        abort();
    rp_http_header_has_token(req, "connection", "upgrade");
    char value[64];
    rp_http_query_get(req->query, req->query_len, "sid", value, sizeof(value));
    rp_http_query_get(req->query, req->query_len, "EIO", value, 2);
    char cors[1024];
    rp_http_cors("http://a.example, http://b.example", req, cors, sizeof(cors));
    rp_http_cors("*", req, cors, sizeof(cors));
    rp_http_origin_allowed(NULL, req);
    rp_http_origin_allowed("http://a.example, *", req);
    const char *origin = rp_http_header(req, "origin", &len);
    if (origin)
        rp_http_origin_entry_valid(origin, len);

    switch (mode) {
    case MODE_RESPOND:
        rp_http_respond(hc, 200, "text/plain", "", req->body, req->body_len);
        break;
    case MODE_HOLD:
        held = hc;
        break;
    default:
        if (req->upgrade) {
            static const char resp[] = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
            rp_net_conn_write(hc->conn, resp, sizeof(resp) - 1);
            rp_http_upgrade(hc, &sink_ops, NULL);
        } else {
            rp_http_respond_error(hc, 400, 3, "Bad request", "");
        }
        break;
    }
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
    srv.max_header = 1024;
    srv.max_body = 1024;
    srv.on_request = on_request;
}

static void feed(rp_net_conn_t *c, const uint8_t *p, size_t len)
{
    if (c->closing || len == 0)
        return;
    char *chunk = malloc(len);
    if (chunk == NULL)
        abort();
    memcpy(chunk, p, len);
    c->ops->on_read(c, chunk, len);
    free(chunk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    setup();
    unsigned chunks = 1 + data[0] % 3;
    mode = (data[0] / 3) % 3;
    held = NULL;
    const uint8_t *in = data + 3;
    size_t n = size - 3;
    size_t a = (size_t)data[1] * (n + 1) / 256;
    size_t b = (size_t)data[2] * (n + 1) / 256;
    if (a > b) {
        size_t t = a;
        a = b;
        b = t;
    }
    size_t cuts[3] = {n, n, n};
    if (chunks == 2)
        cuts[0] = a;
    else if (chunks == 3) {
        cuts[0] = a;
        cuts[1] = b;
    }

    rp_net_conn_t *c = rp_net_conn_new(&net);
    if (c == NULL || rp_http_conn_start(&srv, c) != 0)
        abort();
    size_t start = 0;
    for (unsigned i = 0; i < chunks; i++) {
        feed(c, in + start, cuts[i] - start);
        start = cuts[i];
    }
    /* Answer held requests one by one (each lets the next pipelined one through). */
    for (int i = 0; i < 16 && held != NULL; i++) {
        rp_http_conn_t *hc = held;
        held = NULL;
        rp_http_respond(hc, 200, "text/plain", "", "ok", 2);
    }
    /* The peer goes away; then the conn is closed and freed. */
    if (!c->closing && !c->_eof_seen) {
        c->_eof_seen = 1;
        c->ops->on_eof(c, UV_EOF);
    }
    rp_net_conn_close(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (net.nconns != 0)
        abort();
    return 0;
}
