/* SPDX-License-Identifier: MIT */
/* HTTP/1.1 connections. Received bytes are appended to hc->_in and parsed from there, so a
 * request that arrives while another is being answered simply waits in the buffer. The
 * parser is paused at each message end; it is resumed when the response is done. A handler
 * may respond, hold, or upgrade, from inside dispatch or later: `state` says which. When the
 * server checks Origins, a refused one is answered 403 in dispatch and no handler sees it. */
#include "http/http.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/err.h"
#include "util/log.h"

enum {
    ST_READING,     /* parsing input */
    ST_DISPATCHING, /* inside the handler */
    ST_HELD,        /* the handler returned without responding */
    ST_RESPONDED,   /* the handler responded from inside dispatch */
    ST_UPGRADED,    /* the handler asked for an upgrade */
    ST_CLOSED,
};

static const rp_net_conn_ops_t http_ops;
static void drain(rp_http_conn_t *hc);
static int refuse_origin(rp_http_conn_t *hc);

const char *rp_http_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

static rp_http_conn_t *hc_of(http_parser *p)
{
    return p->data;
}

static void arm(rp_http_conn_t *hc, int idle);

static int on_message_begin(http_parser *p)
{
    rp_http_conn_t *hc = hc_of(p);
    if (hc->srv->_timers && hc->_timer.q != &hc->srv->_reqq)
        arm(hc, 0);
    rp_buf_reset(&hc->_head);
    rp_buf_reset(&hc->_body);
    hc->_url_len = 0;
    hc->_nhdr = 0;
    hc->_last_was_value = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    rp_http_conn_t *hc = hc_of(p);
    if (rp_buf_append(&hc->_head, at, len) < 0) {
        hc->_error_status = 431;
        return 1;
    }
    hc->_url_len += (uint32_t)len;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    rp_http_conn_t *hc = hc_of(p);
    if (hc->_nhdr == 0 || hc->_last_was_value) {
        if (hc->_nhdr >= RP_HTTP_MAX_HEADERS) {
            hc->_error_status = 431;
            return 1;
        }
        hc->_hdr_off[hc->_nhdr][0] = (uint16_t)hc->_head.len;
        hc->_hdr_off[hc->_nhdr][1] = 0;
        hc->_hdr_off[hc->_nhdr][2] = (uint16_t)hc->_head.len;
        hc->_hdr_off[hc->_nhdr][3] = 0;
        hc->_nhdr++;
        hc->_last_was_value = 0;
    }
    if (rp_buf_append(&hc->_head, at, len) < 0) {
        hc->_error_status = 431;
        return 1;
    }
    hc->_hdr_off[hc->_nhdr - 1][1] += (uint16_t)len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    rp_http_conn_t *hc = hc_of(p);
    if (hc->_nhdr == 0)
        return 1;
    if (!hc->_last_was_value) {
        hc->_hdr_off[hc->_nhdr - 1][2] = (uint16_t)hc->_head.len;
        hc->_last_was_value = 1;
    }
    if (rp_buf_append(&hc->_head, at, len) < 0) {
        hc->_error_status = 431;
        return 1;
    }
    hc->_hdr_off[hc->_nhdr - 1][3] += (uint16_t)len;
    return 0;
}

/* Points hc->req's path and query into hc->_head (which no longer grows for this request). */
static void resolve_headers(rp_http_conn_t *hc)
{
    rp_http_request_t *req = &hc->req;
    const char *url = hc->_head.data ? hc->_head.data : "";
    const char *q = memchr(url, '?', hc->_url_len);
    req->_hc = hc;
    req->path = url;
    req->path_len = q ? (size_t)(q - url) : hc->_url_len;
    req->query = q ? q + 1 : "";
    req->query_len = q ? hc->_url_len - req->path_len - 1 : 0;
}

static int on_headers_complete(http_parser *p)
{
    rp_http_conn_t *hc = hc_of(p);
    if (p->content_length != ULLONG_MAX && p->content_length > hc->srv->max_body) {
        hc->_error_status = 413;
        return 1;
    }
    resolve_headers(hc);
    /* Optional (RFC 9110 §10.1.1): a client that gets no 100 sends its body after a pause. */
    if (rp_http_header_has_token(&hc->req, "expect", "100-continue"))
        (void)rp_net_conn_write(hc->conn, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    rp_http_conn_t *hc = hc_of(p);
    int rc = rp_buf_append(&hc->_body, at, len);
    if (rc < 0) {
        hc->_error_status = rc == RP_ETOOBIG ? 413 : 500;
        return 1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void refuse(rp_http_conn_t *hc, int status);

static void not_pending(rp_http_conn_t *hc)
{
    if (hc->_pending) {
        hc->_pending = 0;
        hc->srv->npending--;
    }
}

static void on_request_timeout(rp_timerq_node_t *n)
{
    rp_http_conn_t *hc = rp_container_of(n, rp_http_conn_t, _timer);
    if (hc->_state == ST_CLOSED)
        return;
    hc->srv->request_timeouts++;
    RP_LOG_INFO("http", "conn %llu: request not complete in %u ms",
                (unsigned long long)hc->conn->id, hc->srv->request_timeout);
    if (hc->_in.len > 0 || hc->_head.len > 0)
        refuse(hc, 408);
    else
        rp_http_close(hc);
}

static void on_idle_timeout(rp_timerq_node_t *n)
{
    rp_http_conn_t *hc = rp_container_of(n, rp_http_conn_t, _timer);
    if (hc->_state == ST_CLOSED)
        return;
    hc->srv->idle_timeouts++;
    rp_http_close(hc);
}

static void timer_closed(uv_handle_t *h)
{
    (void)h;
}

/* Starts the timer queues the first time they are needed (the server has no init call).
 * When libuv refuses a timer, the server goes on without deadlines (logged once): turning the
 * timeouts off keeps a half-made queue from being started again. */
static void start_timers(rp_http_server_t *srv)
{
    if (srv->_timers)
        return;
    int rc = rp_timerq_init(srv->net->loop, &srv->_reqq,
                            srv->request_timeout ? srv->request_timeout : 1, on_request_timeout);
    if (rc < 0)
        goto undo_timeouts;
    rc = rp_timerq_init(srv->net->loop, &srv->_idleq, srv->idle_timeout ? srv->idle_timeout : 1,
                        on_idle_timeout);
    if (rc < 0)
        goto undo_reqq;
    srv->_timers = 1;
    return;
undo_reqq:
    rp_timerq_close(&srv->_reqq, timer_closed);
undo_timeouts:
    RP_LOG_ERROR("http", "request and idle deadlines off: %s", uv_strerror(rc));
    srv->request_timeout = srv->idle_timeout = 0;
}

void rp_http_server_stop(rp_http_server_t *srv)
{
    if (!srv->_timers)
        return;
    srv->_timers = 0;
    rp_timerq_close(&srv->_reqq, timer_closed);
    rp_timerq_close(&srv->_idleq, timer_closed);
}

/* Arms the request deadline (a request is expected now) or the idle one. */
static void arm(rp_http_conn_t *hc, int idle)
{
    rp_http_server_t *srv = hc->srv;
    uint32_t t = idle ? srv->idle_timeout : srv->request_timeout;
    if (t == 0 || !srv->_timers) {
        rp_timerq_remove(&hc->_timer);
        return;
    }
    rp_timerq_push(idle ? &srv->_idleq : &srv->_reqq, &hc->_timer);
}

int rp_http_conn_start(rp_http_server_t *srv, rp_net_conn_t *c)
{
    if (srv->max_pending && srv->npending >= srv->max_pending) {
        /* Full of connections that have not finished a request: make room by closing the
         * one that has been at it longest (the head of the request deadlines: they all have
         * the same delay), so a slow-loris crowd cannot lock new clients out; without
         * deadlines, refuse the newcomer instead. */
        srv->refused_pending++;
        rp_timerq_node_t *oldest =
            srv->_timers && !rp_list_empty(&srv->_reqq.list)
                ? rp_container_of(srv->_reqq.list.next, rp_timerq_node_t, node)
                : NULL;
        /* Only one that has had a fair chance (a second): a burst of connections accepted in
         * one loop turn must not evict each other before any was read. */
        uint64_t started = oldest ? oldest->deadline - srv->_reqq.delay : 0;
        if (oldest == NULL || uv_now(srv->net->loop) < started + RP_HTTP_EVICT_AGE) {
            rp_net_conn_close(c);
            return RP_ETOOBIG;
        }
        rp_http_close(rp_container_of(oldest, rp_http_conn_t, _timer));
    }
    rp_http_conn_t *hc = rp_calloc(1, sizeof(*hc));
    if (hc == NULL) {
        rp_net_conn_close(c);
        return UV_ENOMEM;
    }
    hc->conn = c;
    hc->srv = srv;
    hc->_pending = 1;
    srv->npending++;
    rp_timerq_node_init(&hc->_timer);
    if (srv->request_timeout || srv->idle_timeout)
        start_timers(srv);
    arm(hc, 0);
    http_parser_init(&hc->_parser, HTTP_REQUEST);
    hc->_parser.data = hc;
    rp_buf_init(&hc->_in, srv->max_header + srv->max_body + 65536);
    /* Header offsets are 16-bit: the header block can never pass 64 KiB. */
    rp_buf_init(&hc->_head, srv->max_header < 65535 ? srv->max_header : 65535);
    rp_buf_init(&hc->_body, srv->max_body);
    hc->_state = ST_READING;
    c->ops = &http_ops;
    c->data = hc;
    return 0;
}

static void hc_free(rp_http_conn_t *hc)
{
    rp_timerq_remove(&hc->_timer);
    not_pending(hc);
    rp_buf_deinit(&hc->_in);
    rp_buf_deinit(&hc->_head);
    rp_buf_deinit(&hc->_body);
    rp_free(hc);
}

void rp_http_close(rp_http_conn_t *hc)
{
    if (hc->_state == ST_HELD && hc->on_abort) {
        void (*cb)(rp_http_conn_t *) = hc->on_abort;
        hc->on_abort = NULL;
        cb(hc);
    }
    hc->_state = ST_CLOSED;
    rp_timerq_remove(&hc->_timer);
    not_pending(hc);
    rp_net_conn_close(hc->conn);
}

static void dispatch(rp_http_conn_t *hc)
{
    rp_http_request_t *req = &hc->req;
    resolve_headers(hc);
    req->method = hc->_parser.method;
    req->body = hc->_body.data ? hc->_body.data : "";
    req->body_len = hc->_body.len;
    req->upgrade = hc->_parser.upgrade;
    req->keep_alive = http_should_keep_alive(&hc->_parser);
    hc->on_abort = NULL;
    hc->data = NULL;
    hc->srv->requests++;
    rp_timerq_remove(&hc->_timer); /* the handler's now */
    not_pending(hc);
    hc->_state = ST_DISPATCHING;
    if (!refuse_origin(hc))
        hc->srv->on_request(hc, req, hc->srv->ud);
    if (hc->_state == ST_DISPATCHING)
        hc->_state = ST_HELD;
}

static void finish_upgrade(rp_http_conn_t *hc, size_t parsed)
{
    rp_net_conn_t *c = hc->conn;
    size_t rest = hc->_in.len - parsed;
    char *leftover = NULL;
    if (rest) {
        leftover = rp_malloc(rest);
        if (leftover == NULL) {
            rp_net_conn_close(c);
            return;
        }
        memcpy(leftover, hc->_in.data + parsed, rest);
    }
    c->ops = hc->_up_ops;
    c->data = hc->_up_data;
    hc_free(hc);
    if (rest && !c->closing)
        c->ops->on_read(c, leftover, rest);
    rp_free(leftover);
}

static void refuse(rp_http_conn_t *hc, int status)
{
    hc->srv->bad_requests++;
    rp_timerq_remove(&hc->_timer);
    char body[192];
    /* Engine.IO's error shape, plus the hub's "error" member: either kind of client reads it. */
    int n = snprintf(body, sizeof(body), "{\"code\":3,\"message\":\"%s\",\"error\":\"%s\"}",
                     rp_http_status_text(status), rp_http_status_text(status));
    char head[160];
    int h = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     "Connection: close\r\n\r\n",
                     status, rp_http_status_text(status), n);
    hc->_state = ST_CLOSED;
    /* The connection ends either way: a reply that cannot be queued only ends it sooner. */
    if (rp_net_conn_write(hc->conn, head, (size_t)h) < 0 ||
        rp_net_conn_write(hc->conn, body, (size_t)n) < 0)
        rp_net_conn_close(hc->conn);
    else
        rp_net_conn_close_after_flush(hc->conn);
}

/* Between requests (no deadline running, nothing dispatched) the idle deadline runs; a
 * request's first byte (on_message_begin) switches to the request deadline. */
static void rearm(rp_http_conn_t *hc)
{
    if (hc->_state == ST_READING && hc->_timer.q == NULL)
        arm(hc, 1);
}

/* Parses what hc->_in holds, dispatching each complete request, until input runs out or a
 * request is held. */
static void drain(rp_http_conn_t *hc)
{
    while (hc->_state == ST_READING && hc->_in.len > 0) {
        size_t n = http_parser_execute(&hc->_parser, &settings, hc->_in.data, hc->_in.len);
        enum http_errno err = HTTP_PARSER_ERRNO(&hc->_parser);
        if (hc->_error_status) {
            RP_LOG_INFO("http", "conn %llu: request refused with %d",
                        (unsigned long long)hc->conn->id, hc->_error_status);
            refuse(hc, hc->_error_status);
            return;
        }
        if (err != HPE_OK && err != HPE_PAUSED) {
            RP_LOG_INFO("http", "conn %llu: bad request: %s", (unsigned long long)hc->conn->id,
                        http_errno_name(err));
            refuse(hc, 400);
            return;
        }
        if (err == HPE_OK && !hc->_parser.upgrade) {
            /* Everything consumed, no message end yet: wait for more. */
            rp_buf_consume(&hc->_in, n);
            rearm(hc);
            return;
        }
        /* A message is complete (paused) or an upgrade request ended the stream. */
        dispatch(hc);
        if (hc->_state == ST_UPGRADED) {
            finish_upgrade(hc, n);
            return;
        }
        if (hc->_state == ST_CLOSED)
            return;
        rp_buf_consume(&hc->_in, n);
        if (hc->_parser.upgrade && hc->_state != ST_HELD) {
            /* An Upgrade the handler did not accept: http-parser cannot go on after it. */
            hc->_state = ST_CLOSED;
            rp_net_conn_close_after_flush(hc->conn);
            return;
        }
        if (hc->_state == ST_RESPONDED) {
            hc->_state = ST_READING;
            http_parser_pause(&hc->_parser, 0);
        }
    }
    rearm(hc);
    if (hc->_in.len == 0 && hc->_state == ST_READING)
        rp_buf_deinit(&hc->_in);
}

static void on_read(rp_net_conn_t *c, char *data, size_t len)
{
    rp_http_conn_t *hc = c->data;
    if (hc->_state == ST_CLOSED)
        return;
    if (rp_buf_append(&hc->_in, data, len) < 0) {
        rp_http_close(hc);
        return;
    }
    drain(hc);
}

static void on_eof(rp_net_conn_t *c, int err)
{
    rp_http_conn_t *hc = c->data;
    (void)err;
    rp_http_close(hc);
}

static void on_close(rp_net_conn_t *c)
{
    rp_http_conn_t *hc = c->data;
    if (hc == NULL)
        return;
    if (hc->on_abort && hc->_state == ST_HELD) {
        void (*cb)(rp_http_conn_t *) = hc->on_abort;
        hc->on_abort = NULL;
        cb(hc);
    }
    hc_free(hc);
    c->data = NULL;
}

static const rp_net_conn_ops_t http_ops = {
    .on_read = on_read,
    .on_eof = on_eof,
    .on_close = on_close,
};

const char *rp_http_header(const rp_http_request_t *req, const char *name, size_t *len)
{
    const rp_http_conn_t *hc = req->_hc;
    size_t nl = strlen(name);
    *len = 0;
    if (hc == NULL || hc->_head.data == NULL)
        return NULL;
    for (size_t i = 0; i < hc->_nhdr; i++) {
        const uint16_t *o = hc->_hdr_off[i];
        if (o[1] == nl && strncasecmp(hc->_head.data + o[0], name, nl) == 0) {
            *len = o[3];
            return hc->_head.data + o[2];
        }
    }
    return NULL;
}

size_t rp_http_header_count(const rp_http_request_t *req)
{
    return req->_hc && req->_hc->_head.data ? req->_hc->_nhdr : 0;
}

int rp_http_header_at(const rp_http_request_t *req, size_t i, const char **name, size_t *name_len,
                      const char **value, size_t *value_len)
{
    if (i >= rp_http_header_count(req))
        return RP_ENOTFOUND;
    const rp_http_conn_t *hc = req->_hc;
    const uint16_t *o = hc->_hdr_off[i];
    *name = hc->_head.data + o[0];
    *name_len = o[1];
    *value = hc->_head.data + o[2];
    *value_len = o[3];
    return 0;
}

int rp_http_list_next(const char *v, size_t len, size_t *pos, const char **item, size_t *item_len)
{
    size_t i = *pos;
    while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
        i++;
    if (i >= len) {
        *pos = len;
        return 0;
    }
    size_t start = i;
    while (i < len && v[i] != ',')
        i++;
    size_t end = i;
    while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
        end--;
    *pos = i;
    *item = v + start;
    *item_len = end - start;
    return 1;
}

int rp_http_header_has_token(const rp_http_request_t *req, const char *name, const char *token)
{
    size_t len, pos = 0, il;
    const char *v = rp_http_header(req, name, &len), *it;
    size_t tl = strlen(token);
    while (v && rp_http_list_next(v, len, &pos, &it, &il))
        if (il == tl && strncasecmp(it, token, tl) == 0)
            return 1;
    return 0;
}

int rp_http_respond_head(rp_http_conn_t *hc, int status, const char *content_type,
                         const char *extra_headers, size_t content_length)
{
    char head[2048]; /* status line, ~10 fixed headers, CORS (origin <= 512) and extras */
    int keep = hc->req.keep_alive && !hc->_parser.upgrade;
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\nConnection: %s\r\n%s\r\n",
                     status, rp_http_status_text(status), content_type ? "Content-Type: " : "",
                     content_type ? content_type : "", content_type ? "\r\n" : "", content_length,
                     keep ? "keep-alive" : "close", extra_headers ? extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof(head)) {
        rp_http_close(hc);
        return RP_ETOOBIG;
    }
    /* A response is the answer to this request, whatever its size (a snapshot of 10,000
     * files in flight): the output bound is for what piles up, not for this. */
    rp_net_conn_allow(hc->conn, (size_t)n + content_length);
    int rc = rp_net_conn_write(hc->conn, head, (size_t)n);
    if (rc < 0)
        rp_http_close(hc);
    return rc;
}

void rp_http_respond_done(rp_http_conn_t *hc)
{
    int keep = hc->req.keep_alive && !hc->_parser.upgrade;
    hc->on_abort = NULL;
    if (hc->_state == ST_CLOSED)
        return;
    if (!keep) {
        hc->_state = ST_CLOSED;
        rp_net_conn_close_after_flush(hc->conn);
        return;
    }
    if (hc->_state == ST_DISPATCHING) {
        hc->_state = ST_RESPONDED; /* drain() resumes parsing after dispatch returns */
        return;
    }
    /* Answering a held request later: resume parsing what waited meanwhile. */
    hc->_state = ST_READING;
    http_parser_pause(&hc->_parser, 0);
    drain(hc);
}

int rp_http_respond(rp_http_conn_t *hc, int status, const char *content_type,
                    const char *extra_headers, const void *body, size_t len)
{
    int rc = rp_http_respond_head(hc, status, content_type, extra_headers, len);
    if (rc < 0)
        return rc;
    if (len) {
        rc = rp_net_conn_write(hc->conn, body, len);
        if (rc < 0) {
            rp_http_close(hc);
            return rc;
        }
    }
    rp_http_respond_done(hc);
    return 0;
}

int rp_http_respond_error(rp_http_conn_t *hc, int status, int code, const char *message,
                          const char *extra_headers)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\"}", code, message);
    return rp_http_respond(hc, status, "application/json", extra_headers, body, (size_t)n);
}

void rp_http_upgrade(rp_http_conn_t *hc, const rp_net_conn_ops_t *ops, void *data)
{
    hc->_up_ops = ops;
    hc->_up_data = data;
    hc->_state = ST_UPGRADED;
}

/* ---- the Origin policy ---- */

#define ORIGIN_MAX 512 /* longer Origins are never listed (nor echoed in CORS headers) */

/* The authority of an Origin, or a Host header: "host[:port]" or "[v6][:port]". */
struct hostport {
    const char *host;
    size_t host_len;
    unsigned port; /* 0: none given */
};

static int host_char_ok(char ch)
{
    return ch > ' ' && ch < 0x7f && ch != '/' && ch != '?' && ch != '#' && ch != '@' &&
           ch != '\\' && ch != ',' && ch != '"';
}

/* Splits s[0..len) into host and port. Returns 0, or RP_EPROTO when it is not an authority. */
static int split_hostport(const char *s, size_t len, struct hostport *hp)
{
    size_t i = 0;
    if (len && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return RP_EPROTO;
        i = (size_t)(close - s) + 1;
    } else {
        while (i < len && s[i] != ':')
            i++;
    }
    for (size_t k = 0; k < i; k++)
        if (!host_char_ok(s[k]))
            return RP_EPROTO;
    hp->host = s;
    hp->host_len = i;
    hp->port = 0;
    if (i == 0)
        return RP_EPROTO;
    if (i == len)
        return 0;
    if (s[i] != ':' || i + 1 == len || len - i > 6)
        return RP_EPROTO;
    unsigned port = 0;
    for (size_t k = i + 1; k < len; k++) {
        if (s[k] < '0' || s[k] > '9')
            return RP_EPROTO;
        port = port * 10 + (unsigned)(s[k] - '0');
    }
    if (port == 0 || port > 65535)
        return RP_EPROTO;
    hp->port = port;
    return 0;
}

/* RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
static int scheme_char(char ch, int first)
{
    int alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
    return alpha || (!first && ((ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.'));
}

/* Splits an Origin "scheme://host[:port]" (no path). Returns the scheme's length, or RP_EPROTO. */
static long split_origin(const char *s, size_t len, struct hostport *hp)
{
    size_t i = 0;
    while (i < len && scheme_char(s[i], i == 0))
        i++;
    if (i == 0 || len - i < 3 || memcmp(s + i, "://", 3) != 0)
        return RP_EPROTO;
    if (split_hostport(s + i + 3, len - i - 3, hp) < 0)
        return RP_EPROTO;
    return (long)i;
}

/* True when origin is this server's own: http or https to the request's Host. */
static int own_origin(const rp_http_request_t *req, const char *origin, size_t olen)
{
    struct hostport o, h;
    long sl = split_origin(origin, olen, &o);
    unsigned def = sl == 4 && strncasecmp(origin, "http", 4) == 0    ? 80
                   : sl == 5 && strncasecmp(origin, "https", 5) == 0 ? 443
                                                                     : 0;
    size_t hlen;
    const char *host = rp_http_header(req, "host", &hlen);
    if (def == 0 || host == NULL || split_hostport(host, hlen, &h) < 0)
        return 0;
    return o.host_len == h.host_len && strncasecmp(o.host, h.host, o.host_len) == 0 &&
           (o.port ? o.port : def) == (h.port ? h.port : def);
}

/* True when allow_list names origin (or is "*"). */
static int listed(const char *allow_list, const char *origin, size_t olen)
{
    if (allow_list == NULL || olen > ORIGIN_MAX)
        return 0;
    size_t len = strlen(allow_list), pos = 0, l;
    const char *it;
    while (rp_http_list_next(allow_list, len, &pos, &it, &l))
        if ((l == 1 && *it == '*') || (l == olen && strncasecmp(it, origin, l) == 0))
            return 1;
    return 0;
}

int rp_http_origin_allowed(const char *allow_list, const rp_http_request_t *req)
{
    size_t olen;
    const char *origin = rp_http_header(req, "origin", &olen);
    return origin == NULL || own_origin(req, origin, olen) || listed(allow_list, origin, olen);
}

int rp_http_origin_entry_valid(const char *s, size_t len)
{
    struct hostport hp;
    return (len == 1 && *s == '*') || (len <= ORIGIN_MAX && split_origin(s, len, &hp) > 0);
}

/* Copies v[0..len) into out for a log line or a JSON string: printable ASCII but for quotes
 * and backslashes, at most outlen - 1 bytes, '?' for the rest. */
static void sanitize(const char *v, size_t len, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; v && i < len && n + 1 < outlen; i++)
        out[n++] = v[i] >= ' ' && v[i] < 0x7f && v[i] != '"' && v[i] != '\\' ? v[i] : '?';
    out[n] = '\0';
}

/* True for a GET or HEAD of one of srv's open_paths. */
static int open_path(const rp_http_server_t *srv, const rp_http_request_t *req)
{
    if (srv->open_paths == NULL || (req->method != HTTP_GET && req->method != HTTP_HEAD) ||
        req->upgrade)
        return 0;
    for (const char *const *p = srv->open_paths; *p; p++)
        if (req->path_len == strlen(*p) && memcmp(req->path, *p, req->path_len) == 0)
            return 1;
    return 0;
}

/* Answers 403 and returns 1 when the server checks Origins and this request's is refused. The
 * body and the log line say what to start the server with; the page itself cannot read the
 * refusal (no CORS header): it learns why from an open path (the hub's /api/socket/info). */
static int refuse_origin(rp_http_conn_t *hc)
{
    rp_http_server_t *srv = hc->srv;
    const rp_http_request_t *req = &hc->req;
    if (!srv->origin_check || rp_http_origin_allowed(srv->origins, req) || open_path(srv, req))
        return 0;
    srv->refused_origin[req->upgrade ? 1 : 0]++;
    size_t olen, hlen;
    const char *origin = rp_http_header(req, "origin", &olen);
    const char *host = rp_http_header(req, "host", &hlen);
    char o[201], h[201], body[1024];
    sanitize(origin, olen, o, sizeof(o));
    sanitize(host, hlen, h, sizeof(h));
    RP_LOG_INFO("http",
                "conn %llu: %s from Origin %s refused (Host %s); to allow it: --cors-origin %s",
                (unsigned long long)hc->conn->id, req->upgrade ? "upgrade" : "request", o, h, o);
    int n =
        snprintf(body, sizeof(body),
                 "{\"code\":4,\"message\":\"Forbidden\",\"error\":\"cross-origin request refused: "
                 "Origin %s is not this server's own (Host %s) and not in its allowed origins; "
                 "to allow this page, start the server with --cors-origin %s (or "
                 "SOCKET_IO_CORS_ORIGIN=%s)\"}",
                 o, h, o, o);
    rp_http_respond(hc, 403, "application/json", "Cache-Control: no-store\r\n", body, (size_t)n);
    return 1;
}

int rp_http_cors(const char *allow_list, const rp_http_request_t *req, char *out, size_t outlen)
{
    size_t olen;
    const char *origin = rp_http_header(req, "origin", &olen);
    if (allow_list == NULL || origin == NULL)
        return 0;
    if (!listed(allow_list, origin, olen))
        return RP_EREFUSED;
    snprintf(out, outlen,
             "Access-Control-Allow-Origin: %.*s\r\nAccess-Control-Allow-Credentials: true\r\n"
             "Vary: Origin\r\n",
             (int)olen, origin);
    return 1;
}
