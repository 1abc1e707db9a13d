/* SPDX-License-Identifier: MIT */
#ifndef RP_HTTP_HTTP_H
#define RP_HTTP_HTTP_H

#include <http_parser.h>
#include <stddef.h>

#include "net/net.h"
#include "net/timerq.h"
#include "util/buf.h"

/* HTTP/1.1 server connections over http-parser. One request at a time per connection:
 * after a request is complete, parsing pauses until its response is finished, so pipelined
 * requests are answered in order and a held long-poll keeps its connection to itself.
 *
 * The request handler must do exactly one of: respond now (rp_http_respond or
 * rp_http_respond_head + body + rp_http_respond_done), hold the request and respond later
 * (set hc->on_abort to learn if the peer goes away first), or take the connection over
 * (rp_http_upgrade, for WebSocket). Loop thread only. */

#define RP_HTTP_MAX_HEADERS 32
#define RP_HTTP_EVICT_AGE   1000 /* ms */

typedef struct rp_http_conn rp_http_conn_t;
typedef struct rp_http_server rp_http_server_t;

/* Pointers are valid until the response is finished (or the connection upgraded). Headers
 * are looked up with rp_http_header(); they stay where they arrived, as offsets into the
 * connection's header buffer, so an idle or held connection carries no copy of them. */
typedef struct rp_http_request {
    int method; /* enum http_method: HTTP_GET, HTTP_POST, ... */
    const char *path;
    size_t path_len;
    const char *query; /* after '?', without it; "" when none */
    size_t query_len;
    const char *body; /* NUL-terminated */
    size_t body_len;
    int upgrade;                    /* an Upgrade header asked to switch protocols */
    int keep_alive;                 /* the connection may serve another request */
    const struct rp_http_conn *_hc; /* where the headers are */
} rp_http_request_t;

typedef void (*rp_http_handler_t)(rp_http_conn_t *hc, rp_http_request_t *req, void *ud);

struct rp_http_server {
    rp_net_t *net;     /* borrowed */
    size_t max_header; /* bytes of request line + headers (at most 65535); past it: 431 */
    size_t max_body;   /* past it: 413 */
    rp_http_handler_t on_request;
    void *ud;
    /* Time limits (ms, 0: none). A request, from its first byte (or from accept, for a new
     * connection), must be complete within request_timeout (else 408 and close: slow headers
     * and bodies); a keep-alive connection with no request under way is closed after
     * idle_timeout. A request handed to the handler (a held long-poll) is the handler's. */
    uint32_t request_timeout;
    uint32_t idle_timeout;
    /* Connections that have not completed a first request yet (half-open handshakes). Past
     * max_pending (0: no limit) the oldest request still under way is closed to make room if
     * it has been under way for RP_HTTP_EVICT_AGE ms; otherwise (or without request_timeout)
     * the newcomer is refused. */
    size_t max_pending;
    size_t npending;
    /* The Origin policy (rp_http_origin_allowed against `origins`): when origin_check is set,
     * a request from a refused Origin gets 403 before on_request sees it, whatever it asks
     * for (the API, Engine.IO polling, a WebSocket upgrade, a static file). */
    int origin_check;
    const char *origins; /* borrowed: the allow-list, or NULL for this server's own only */
    /* Borrowed, NULL-terminated, may be NULL: paths whose GET and HEAD pass the Origin check
     * (public answers any page may read; their handler adds the CORS header). */
    const char *const *open_paths;
    rp_timerq_t _reqq; /* started on the first connection */
    rp_timerq_t _idleq;
    int _timers;
    /* Counters for metrics. */
    unsigned long requests;
    unsigned long bad_requests;
    unsigned long request_timeouts;
    unsigned long idle_timeouts;
    unsigned long refused_pending;
    unsigned long refused_origin[2]; /* [0] plain requests, [1] upgrades (WebSocket) */
};

struct rp_http_conn {
    rp_net_conn_t *conn; /* borrowed; owns hc until upgrade */
    rp_http_server_t *srv;
    http_parser _parser;
    rp_buf_t _in;   /* received, not yet parsed */
    rp_buf_t _head; /* url and header bytes of the current request */
    rp_buf_t _body;
    uint32_t _url_len;
    uint16_t _hdr_off[RP_HTTP_MAX_HEADERS][4]; /* name off/len, value off/len in head */
    uint16_t _nhdr;
    int _last_was_value;
    int _state;
    int _pending;            /* counted in srv->npending */
    rp_timerq_node_t _timer; /* on srv->_reqq or srv->_idleq */
    int _error_status;       /* set by a parser callback to refuse the request */
    rp_http_request_t req;
    /* Set by a handler that holds the request: called once if the connection goes away
     * before the response is finished. */
    void (*on_abort)(rp_http_conn_t *hc);
    void *data;
    /* Set by rp_http_upgrade. */
    const rp_net_conn_ops_t *_up_ops;
    void *_up_data;
};

/* Starts serving HTTP on c (call from a listener's accept callback). Returns 0, UV_ENOMEM or
 * RP_ETOOBIG past max_pending (c is then closed). */
int rp_http_conn_start(rp_http_server_t *srv, rp_net_conn_t *c);

/* Looks a header up case-insensitively; returns its value (not NUL-terminated) and sets *len,
 * or returns NULL. */
const char *rp_http_header(const rp_http_request_t *req, const char *name, size_t *len);
/* The number of headers, and header i (name and value, not NUL-terminated), in arrival
 * order. rp_http_header_at returns 0, or RP_ENOTFOUND when i is out of range. */
size_t rp_http_header_count(const rp_http_request_t *req);
int rp_http_header_at(const rp_http_request_t *req, size_t i, const char **name, size_t *name_len,
                      const char **value, size_t *value_len);
/* Walks a comma-separated header value: sets *item and *item_len to the next element, blanks
 * around it trimmed, and returns 1; returns 0 at the end. *pos starts at 0. */
int rp_http_list_next(const char *v, size_t len, size_t *pos, const char **item, size_t *item_len);
/* True if header `name` holds `token` in its comma-separated list (case-insensitive). */
int rp_http_header_has_token(const rp_http_request_t *req, const char *name, const char *token);

/* Sends a whole response. extra_headers is "" or lines each ending in "\r\n". Returns 0 or an
 * error (the connection is then closed). */
int rp_http_respond(rp_http_conn_t *hc, int status, const char *content_type,
                    const char *extra_headers, const void *body, size_t len);
/* Sends the status line and headers; the caller queues exactly content_length body bytes on
 * hc->conn, then calls rp_http_respond_done. */
int rp_http_respond_head(rp_http_conn_t *hc, int status, const char *content_type,
                         const char *extra_headers, size_t content_length);
void rp_http_respond_done(rp_http_conn_t *hc);
/* Sends `status` with a JSON body {"code":code,"message":message} (Engine.IO's error shape)
 * and finishes the response. */
int rp_http_respond_error(rp_http_conn_t *hc, int status, int code, const char *message,
                          const char *extra_headers);

/* Hands the connection to another protocol once the handler returns: c->ops and c->data
 * become ops and data, bytes already received after the request go to ops->on_read, and hc is
 * freed. The caller has queued the 101 response on hc->conn. */
void rp_http_upgrade(rp_http_conn_t *hc, const rp_net_conn_ops_t *ops, void *data);

/* Closes the connection (and so the request) at once. */
void rp_http_close(rp_http_conn_t *hc);
/* Stops the server's timers (at shutdown, before the loop's last run). */
void rp_http_server_stop(rp_http_server_t *srv);

/* Returns the reason phrase for status ("OK", "Bad Request", ...). */
const char *rp_http_status_text(int status);

/* Query strings: finds `key` in q[0..qlen) and percent-decodes its value into out (room for
 * outlen bytes incl. the NUL). Returns the value length, RP_ENOTFOUND if absent, RP_ETOOBIG if it
 * does not fit, RP_EPROTO for bad escapes. */
long rp_http_query_get(const char *q, size_t qlen, const char *key, char *out, size_t outlen);

/* The bearer credential of a request: `Authorization: Bearer T`, else `?token=T`. Copies it
 * into out (room for outlen bytes incl. the NUL) and returns its length; RP_ENOTFOUND when
 * there is none; RP_ETOOBIG when it does not fit; RP_EPROTO for a malformed header or escape. */
long rp_http_credential(const rp_http_request_t *req, char *out, size_t outlen);
/* The same from raw parts: the Authorization header's value (NULL: none) and the query. */
long rp_http_credential_from(const char *authz, size_t authz_len, const char *query,
                             size_t query_len, char *out, size_t outlen);

/* The Origin policy, one for every transport. A request is allowed when it carries no Origin
 * (non-browser clients send none), when its Origin is this server's own (http or https, with
 * the host and port of the request's Host header, default ports filled in), or when
 * allow_list (comma-separated origins, "*" for any; NULL: none) names it. Returns 1 when
 * allowed, 0 when refused. */
int rp_http_origin_allowed(const char *allow_list, const rp_http_request_t *req);
/* True when s[0..len) is a valid allow-list entry: "*", or scheme://host[:port] with no path
 * (an Origin as browsers send it). */
int rp_http_origin_entry_valid(const char *s, size_t len);

/* CORS against an allow-list (comma-separated origins, or "*" for any; NULL = CORS off).
 * Returns 1 and writes the response headers into out when the request's Origin is allowed,
 * 0 when the request has no Origin or CORS is off (nothing written), RP_EREFUSED when an
 * Origin is present and not allowed. */
int rp_http_cors(const char *allow_list, const rp_http_request_t *req, char *out, size_t outlen);
#endif
