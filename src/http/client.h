/* SPDX-License-Identifier: MIT */
#ifndef RP_HTTP_CLIENT_H
#define RP_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/buf.h"
#include "util/url.h"

/* The one HTTP/1.1 client of the producers (`ragpulse emit`, the watcher's sink): one
 * request at a time per client, non-blocking on a libuv loop, `Connection: close`. The
 * answer is read by http-parser, so a status line, a Content-Length body, a chunked body
 * (a proxy in front of the hub may send one) and a body ended by the close all work. The
 * host may be a name, an IPv4 address or an IPv6 literal; the URL's path prefix goes in
 * front of every request path. Loop thread only. */

typedef struct rp_http_client rp_http_client_t;

typedef struct rp_http_answer {
    int status;       /* the HTTP status, 0 when no answer came */
    const char *body; /* borrowed until the callback returns; "" when empty */
    size_t body_len;
    uint32_t retry_after_ms; /* a Retry-After header in seconds, 0 when none */
    int sent; /* the whole request went out (a failed request may have been served) */
} rp_http_answer_t;

/* Called once per request, on the loop thread, after the connection is closed: `rc` is 0
 * with a complete answer (any status), or negative: a libuv code (UV_ECONNREFUSED,
 * UV_EAI_NONAME...), UV_ETIMEDOUT when no complete answer came within the timeout,
 * RP_EPROTO for an answer that is not HTTP, RP_ETOOBIG for a body over the client's limit.
 * The client is idle when the callback runs: it may start the next request from it. */
typedef void (*rp_http_client_cb)(rp_http_client_t *c, int rc, const rp_http_answer_t *a, void *ud);

struct rp_http_client {
    uv_loop_t *_loop;
    rp_url_t _url;
    char _authority[300];
    uv_getaddrinfo_t _gai;
    uv_tcp_t _tcp;
    uv_connect_t _conn;
    uv_write_t _wr;
    uv_timer_t _timer;
    rp_buf_t _req, _body;
    void *_parser; /* owned http_parser */
    rp_http_client_cb _cb;
    void *_ud;
    int _busy;     /* a request is in flight (its callback has not run) */
    int _rc;       /* the request's outcome once decided, 1 while undecided */
    int _gai_busy; /* the lookup has not called back */
    int _tcp_open; /* _tcp is initialised and not closed */
    int _sent;
    int _complete;
    int _status;
    int _in_retry_after;
    uint32_t _retry_after_ms;
    int _closing;
    int _handles; /* of _timer and _tcp, while closing */
    void (*_close_cb)(rp_http_client_t *c);
};

/* Prepares `c` (caller-owned storage) to send to `url` (copied); answers with a body over
 * max_body bytes fail RP_ETOOBIG. Returns 0 or a libuv code (nothing to undo then). */
int rp_http_client_init(rp_http_client_t *c, uv_loop_t *loop, const rp_url_t *url, size_t max_body);

/* Sends "METHOD prefix+path HTTP/1.1" with Host, `headers` (each line ending "\r\n", or
 * NULL), Content-Length and Content-Type: application/json when body is not NULL, and
 * Connection: close; cb runs once with the outcome (never before this returns). timeout_ms
 * bounds the whole exchange (0: none). Returns 0, RP_ESTATE when a request is in flight or
 * the client is closing, RP_EINVAL for a method, path or header with CR, LF or NUL where
 * they do not belong, or a libuv code (then cb will not run). */
int rp_http_client_request(rp_http_client_t *c, const char *method, const char *path,
                           const char *headers, const char *body, size_t body_len,
                           uint64_t timeout_ms, rp_http_client_cb cb, void *ud);

/* True while a request is in flight. */
int rp_http_client_busy(const rp_http_client_t *c);

/* Ends the client: a request in flight is abandoned (its callback never runs), and cb(c) runs
 * once every handle is closed; `c`'s memory must stay valid until then. */
void rp_http_client_close(rp_http_client_t *c, void (*cb)(rp_http_client_t *c));

#endif
