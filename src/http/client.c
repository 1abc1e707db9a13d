/* SPDX-License-Identifier: MIT */
/* The producers' HTTP/1.1 client (see client.h): resolve, connect, write the whole request,
 * read until http-parser says the answer is complete (or the peer closes), close, then call
 * back once. Every way a request ends goes through finish(), which records the first outcome
 * and starts closing; the callback runs only once the lookup has called back and the
 * connection is closed, so the client is idle and reusable when the caller hears of it.
 * Built from the sink of `ragpulse watch --hub` (formerly src/cli/watch_net.c). */
#include "http/client.h"

#include <http_parser.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/err.h"

#define UNDECIDED 1

static void maybe_deliver(rp_http_client_t *c);
static void close_step(rp_http_client_t *c);
static void on_tcp_closed(uv_handle_t *h);

static void finish(rp_http_client_t *c, int rc)
{
    if (c->_rc != UNDECIDED)
        return;
    c->_rc = rc;
    uv_timer_stop(&c->_timer);
    if (c->_gai_busy)
        uv_cancel((uv_req_t *)&c->_gai);
    if (c->_tcp_open && !uv_is_closing((uv_handle_t *)&c->_tcp)) {
        uv_read_stop((uv_stream_t *)&c->_tcp);
        uv_close((uv_handle_t *)&c->_tcp, on_tcp_closed);
    }
    maybe_deliver(c);
}

static void maybe_deliver(rp_http_client_t *c)
{
    if (!c->_busy || c->_closing || c->_rc == UNDECIDED || c->_gai_busy || c->_tcp_open)
        return;
    rp_http_answer_t a = {
        .status = c->_rc == 0 ? c->_status : 0,
        .body = c->_body.data ? c->_body.data : "",
        .body_len = c->_body.len,
        .retry_after_ms = c->_retry_after_ms,
        .sent = c->_sent,
    };
    c->_busy = 0;
    c->_cb(c, c->_rc, &a, c->_ud);
}

/* ---- the answer, through http-parser ---- */

static int on_ans_field(http_parser *p, const char *at, size_t len)
{
    rp_http_client_t *c = p->data;
    c->_in_retry_after = len == 11 && strncasecmp(at, "retry-after", 11) == 0;
    return 0;
}

static int on_ans_value(http_parser *p, const char *at, size_t len)
{
    rp_http_client_t *c = p->data;
    /* Digits only (the seconds form), maybe split across reads; bounded to a day. */
    for (size_t i = 0; c->_in_retry_after && i < len; i++) {
        if (at[i] < '0' || at[i] > '9')
            continue;
        uint32_t s = c->_retry_after_ms / 1000 * 10 + (uint32_t)(at[i] - '0');
        c->_retry_after_ms = (s > 86400 ? 86400 : s) * 1000;
    }
    return 0;
}

static int on_ans_body(http_parser *p, const char *at, size_t len)
{
    rp_http_client_t *c = p->data;
    return rp_buf_append(&c->_body, at, len) < 0 ? -1 : 0;
}

static int on_ans_complete(http_parser *p)
{
    rp_http_client_t *c = p->data;
    c->_complete = 1;
    c->_status = (int)p->status_code;
    return 0;
}

static const http_parser_settings settings = {
    .on_header_field = on_ans_field,
    .on_header_value = on_ans_value,
    .on_body = on_ans_body,
    .on_message_complete = on_ans_complete,
};

/* Feeds bytes (len 0: the peer closed) and finishes when the answer is complete or broken. */
static void feed(rp_http_client_t *c, const char *data, size_t len)
{
    http_parser *p = c->_parser;
    size_t n = http_parser_execute(p, &settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(p);
    if (c->_complete) {
        finish(c, 0);
        return;
    }
    if (e == HPE_CB_body) {
        finish(c, RP_ETOOBIG);
        return;
    }
    if (e != HPE_OK || n != len || len == 0)
        finish(c, RP_EPROTO);
}

/* ---- the connection ---- */

static void on_tcp_closed(uv_handle_t *h)
{
    rp_http_client_t *c = h->data;
    c->_tcp_open = 0;
    if (c->_closing)
        close_step(c);
    else
        maybe_deliver(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    /* Loop thread only, and every read is consumed before the next: one buffer will do. */
    static char scratch[65536];
    (void)h;
    (void)suggested;
    buf->base = scratch;
    buf->len = sizeof(scratch);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    rp_http_client_t *c = st->data;
    if (c->_rc != UNDECIDED)
        return;
    if (nread == UV_EOF) {
        http_parser *p = c->_parser;
        if (p->nread == 0 && c->_status == 0 && p->http_major == 0)
            finish(c, UV_EOF); /* closed without a byte of answer */
        else
            feed(c, NULL, 0);
        return;
    }
    if (nread < 0) {
        finish(c, (int)nread);
        return;
    }
    if (nread > 0)
        feed(c, buf->base, (size_t)nread);
}

static void on_written(uv_write_t *w, int status)
{
    rp_http_client_t *c = w->data;
    if (status == 0)
        c->_sent = 1;
    else
        finish(c, status);
}

static void on_connected(uv_connect_t *req, int status)
{
    rp_http_client_t *c = req->data;
    if (c->_rc != UNDECIDED)
        return;
    if (status < 0) {
        finish(c, status);
        return;
    }
    uv_buf_t b = uv_buf_init(c->_req.data, (unsigned)c->_req.len);
    c->_wr.data = c;
    int rc = uv_write(&c->_wr, (uv_stream_t *)&c->_tcp, &b, 1, on_written);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&c->_tcp, on_alloc, on_read);
    if (rc < 0)
        finish(c, rc);
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    rp_http_client_t *c = g->data;
    c->_gai_busy = 0;
    if (c->_closing) {
        uv_freeaddrinfo(res);
        close_step(c);
        return;
    }
    if (c->_rc != UNDECIDED || status < 0 || res == NULL) {
        uv_freeaddrinfo(res);
        if (c->_rc == UNDECIDED)
            finish(c, status < 0 ? status : UV_EAI_NONAME);
        else
            maybe_deliver(c);
        return;
    }
    int rc = uv_tcp_init(c->_loop, &c->_tcp);
    if (rc < 0) {
        uv_freeaddrinfo(res);
        finish(c, rc);
        return;
    }
    c->_tcp.data = c;
    c->_tcp_open = 1;
    (void)uv_tcp_nodelay(&c->_tcp, 1); /* an optimisation: the request works without it */
    c->_conn.data = c;
    rc = uv_tcp_connect(&c->_conn, &c->_tcp, res->ai_addr, on_connected);
    uv_freeaddrinfo(res);
    if (rc < 0)
        finish(c, rc);
}

static void on_timeout(uv_timer_t *t)
{
    finish(t->data, UV_ETIMEDOUT);
}

/* ---- the client ---- */

int rp_http_client_init(rp_http_client_t *c, uv_loop_t *loop, const rp_url_t *url, size_t max_body)
{
    memset(c, 0, sizeof(*c));
    c->_loop = loop;
    c->_url = *url;
    if (rp_url_authority(url, c->_authority, sizeof(c->_authority)) < 0)
        return RP_EINVAL;
    c->_parser = rp_malloc(sizeof(http_parser));
    if (c->_parser == NULL)
        return UV_ENOMEM;
    int rc = uv_timer_init(loop, &c->_timer);
    if (rc < 0)
        goto undo_parser;
    c->_timer.data = c;
    c->_rc = 0;
    rp_buf_init(&c->_req, 1 << 16);
    rp_buf_init(&c->_body, max_body);
    return 0;
undo_parser:
    rp_free(c->_parser);
    c->_parser = NULL;
    return rc;
}

static int bad_line(const char *s)
{
    return s == NULL || *s == '\0' || strpbrk(s, "\r\n ") != NULL;
}

/* Header lines must each end with CRLF and leave no empty line (that would end the head). */
static int bad_headers(const char *h)
{
    size_t n = h ? strlen(h) : 0;
    if (n == 0)
        return 0;
    return n < 2 || strcmp(h + n - 2, "\r\n") != 0 || strncmp(h, "\r\n", 2) == 0 ||
           strstr(h, "\r\n\r\n") != NULL;
}

int rp_http_client_request(rp_http_client_t *c, const char *method, const char *path,
                           const char *headers, const char *body, size_t body_len,
                           uint64_t timeout_ms, rp_http_client_cb cb, void *ud)
{
    if (c->_busy || c->_closing)
        return RP_ESTATE;
    if (bad_line(method) || bad_line(path) || bad_headers(headers))
        return RP_EINVAL;
    rp_buf_deinit(&c->_req);
    rp_buf_init(&c->_req, body_len + 65536);
    int rc = rp_buf_printf(&c->_req, "%s %s%s HTTP/1.1\r\nHost: %s\r\n%s", method, c->_url.prefix,
                           path, c->_authority, headers ? headers : "");
    if (rc == 0 && body)
        rc = rp_buf_printf(&c->_req, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                           body_len);
    if (rc == 0)
        rc = rp_buf_append_str(&c->_req, "Connection: close\r\n\r\n");
    if (rc == 0 && body)
        rc = rp_buf_append(&c->_req, body, body_len);
    if (rc < 0)
        return rc;
    http_parser_init(c->_parser, HTTP_RESPONSE);
    ((http_parser *)c->_parser)->data = c;
    rp_buf_reset(&c->_body);
    c->_rc = UNDECIDED;
    c->_sent = c->_complete = c->_status = c->_in_retry_after = 0;
    c->_retry_after_ms = 0;
    if (timeout_ms > 0) {
        rc = uv_timer_start(&c->_timer, on_timeout, timeout_ms, 0);
        if (rc < 0) {
            c->_rc = 0;
            return rc;
        }
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->_gai.data = c;
    rc = uv_getaddrinfo(c->_loop, &c->_gai, on_resolved, c->_url.host, c->_url.port, &hints);
    if (rc < 0) {
        uv_timer_stop(&c->_timer);
        c->_rc = 0;
        return rc;
    }
    c->_gai_busy = 1;
    c->_busy = 1;
    c->_cb = cb;
    c->_ud = ud;
    return 0;
}

int rp_http_client_busy(const rp_http_client_t *c)
{
    return c->_busy;
}

static void on_timer_closed(uv_handle_t *h)
{
    rp_http_client_t *c = h->data;
    c->_handles--;
    close_step(c);
}

static void close_step(rp_http_client_t *c)
{
    if (c->_handles > 0 || c->_tcp_open || c->_gai_busy)
        return;
    rp_buf_deinit(&c->_req);
    rp_buf_deinit(&c->_body);
    rp_free(c->_parser);
    c->_parser = NULL;
    void (*cb)(rp_http_client_t *) = c->_close_cb;
    c->_close_cb = NULL;
    if (cb)
        cb(c);
}

void rp_http_client_close(rp_http_client_t *c, void (*cb)(rp_http_client_t *c))
{
    if (c->_closing)
        return;
    c->_closing = 1;
    c->_busy = 0;
    c->_close_cb = cb;
    c->_handles = 1;
    uv_timer_stop(&c->_timer);
    uv_close((uv_handle_t *)&c->_timer, on_timer_closed);
    if (c->_gai_busy)
        uv_cancel((uv_req_t *)&c->_gai);
    if (c->_tcp_open && !uv_is_closing((uv_handle_t *)&c->_tcp))
        uv_close((uv_handle_t *)&c->_tcp, on_tcp_closed);
}
