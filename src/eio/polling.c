/* SPDX-License-Identifier: MIT */
/* The HTTP side of Engine.IO: the entry point for every request under the path (handshake,
 * polling GET and POST, the WebSocket upgrade handed to websocket.c), and the polling
 * responses that drain a session's queue in one payload. A session holds at most one GET; a
 * second one, like any broken request, ends the session with "transport error". */
#include "eio/eio_int.h"

#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/err.h"
#include "util/log.h"

/* The separator between the packets of a polling payload, shared by every response. */
static rp_sbuf_t sb_sep = RP_SBUF_STATIC("\x1e");

static void cors_of(rp_eio_server_t *srv, const rp_http_request_t *req, char *out, size_t n)
{
    if (rp_http_cors(srv->cfg.cors, req, out, n) <= 0)
        out[0] = '\0';
}

void rp_eio_respond_text(rp_eio_server_t *srv, rp_http_conn_t *hc, const char *text)
{
    char cors[640];
    cors_of(srv, &hc->req, cors, sizeof(cors));
    /* On error rp_http_respond has closed the connection: nothing more to do. */
    (void)rp_http_respond(hc, 200, "text/plain; charset=UTF-8", cors, text, strlen(text));
}

void rp_eio_respond_error(rp_eio_server_t *srv, rp_http_conn_t *hc, int status, int code,
                          const char *msg)
{
    char cors[640];
    cors_of(srv, &hc->req, cors, sizeof(cors));
    RP_LOG_DEBUG("eio", "conn %llu: %d %s", (unsigned long long)hc->conn->id, status, msg);
    (void)rp_http_respond_error(hc, status, code, msg, cors); /* closes hc on error */
}

/* Takes the held GET off s, for answering. */
rp_http_conn_t *rp_eio_take_get(rp_eio_session_t *s)
{
    rp_http_conn_t *hc = s->_poll_get;
    s->_poll_get = NULL;
    if (hc) {
        hc->on_abort = NULL;
        hc->data = NULL;
    }
    return hc;
}

/* Answers hc with the queued packets, joined with \x1e, in one response: all of them, or the
 * first cfg.poll_batch (some clients refuse longer payloads; the rest go to the next GET). */
void rp_eio_respond_queue(rp_eio_session_t *s, rp_http_conn_t *hc)
{
    rp_net_t *net = s->srv->net;
    rp_net_queue_t body;
    rp_net_queue_init(&body);
    unsigned limit = s->srv->cfg.poll_batch ? s->srv->cfg.poll_batch : UINT32_MAX;
    unsigned taken = 0;
    int sampled = 0;
    int rc = 0;
    while (s->qhead && taken < limit && rc == 0) {
        qpkt_t *q = s->qhead;
        sampled |= q->sampled;
        if (taken)
            rc = rp_net_queue_push(net, &body, &sb_sep, 0, 1);
        if (rc == 0)
            rc = rp_net_queue_push(net, &body, q->pkt.poll, q->pkt.poll_off,
                                   (uint32_t)rp_eio_pkt_poll_len(&q->pkt));
        s->qhead = q->next;
        if (s->qhead == NULL)
            s->_qtail = NULL;
        s->_qbytes -= rp_eio_pkt_poll_len(&q->pkt);
        rp_eio_packet_release(&q->pkt);
        rp_free(q);
        taken++;
    }
    char cors[640];
    cors_of(s->srv, &hc->req, cors, sizeof(cors));
    if (rc < 0) {
        rp_net_queue_clear(net, &body);
        rp_http_close(hc);
    } else if (rp_http_respond_head(hc, 200, "text/plain; charset=UTF-8", cors, body.bytes) < 0) {
        rp_net_queue_clear(net, &body);
    } else {
        rp_net_conn_splice(hc->conn, &body);
        if (sampled) /* the sampled packet is written with this response's last byte */
            rp_net_conn_mark(hc->conn);
        rp_http_respond_done(hc);
    }
    if (sampled)
        rp_net_mark_release(net);
}

static void on_poll_abort(rp_http_conn_t *hc)
{
    rp_eio_session_t *s = hc->data;
    hc->data = NULL;
    if (s == NULL || s->_poll_get != hc)
        return;
    s->_poll_get = NULL;
    rp_eio_session_end(s, "transport close", NULL, 0);
}

static void handle_post(rp_eio_server_t *srv, rp_eio_session_t *s, rp_http_conn_t *hc,
                        rp_http_request_t *req)
{
    if (req->body_len > srv->cfg.max_payload) {
        rp_eio_respond_error(srv, hc, 413, 3, "Payload too large");
        rp_eio_session_end(s, "transport error", "1", 0);
        return;
    }
    char *cur = (char *)req->body;
    char *end = cur + req->body_len;
    rp_eio_in_t pkt;
    int rc;
    while (s->state == S_OPEN && (rc = rp_eio_payload_next(&cur, end, &pkt)) != 0) {
        if (rc < 0 || pkt.type == RP_EIO_UPGRADE || pkt.type == RP_EIO_OPEN) {
            RP_LOG_INFO("eio", "session %s: invalid polling payload", s->sid);
            rp_eio_session_end(s, "parse error", "1", 0);
            rp_eio_respond_error(srv, hc, 400, 3, "Bad request");
            return;
        }
        if (rp_eio_handle_packet(s, &pkt) < 0) {
            rp_eio_respond_error(srv, hc, 400, 3, "Bad request");
            return;
        }
    }
    char cors[640];
    cors_of(srv, req, cors, sizeof(cors));
    (void)rp_http_respond(hc, 200, "text/html", cors, "ok", 2); /* closes hc on error */
}

static void handle_get(rp_eio_server_t *srv, rp_eio_session_t *s, rp_http_conn_t *hc)
{
    if (s->state == S_LINGER) {
        rp_eio_linger_get(s, hc);
        return;
    }
    if (s->_poll_get) {
        /* Two GETs at once: the reference server ends the session. */
        RP_LOG_INFO("eio", "session %s: overlapping polling requests", s->sid);
        rp_eio_session_end(s, "transport error", "1", 0);
        rp_eio_respond_error(srv, hc, 400, 3, "Bad request");
        return;
    }
    if (s->_upgrading) {
        rp_eio_respond_text(srv, hc, "6");
        return;
    }
    if (s->qhead) {
        rp_eio_respond_queue(s, hc);
        return;
    }
    s->_poll_get = hc;
    hc->data = s;
    hc->on_abort = on_poll_abort;
}

int rp_eio_server_handle(rp_eio_server_t *srv, rp_http_conn_t *hc, rp_http_request_t *req)
{
    const char *path = srv->cfg.path;
    size_t plen = srv->_path_len;
    int match = (req->path_len >= plen && memcmp(req->path, path, plen) == 0) ||
                (req->path_len == plen - 1 && memcmp(req->path, path, plen - 1) == 0);
    if (!match)
        return 0;

    char cors[640];
    int cors_rc = rp_http_cors(srv->cfg.cors, req, cors, sizeof(cors));
    if (req->method == HTTP_OPTIONS && srv->cfg.cors) {
        char hdrs[1024];
        size_t rlen;
        const char *rh = rp_http_header(req, "access-control-request-headers", &rlen);
        if (rh == NULL || rlen > 256) {
            rh = "content-type";
            rlen = 12;
        }
        snprintf(hdrs, sizeof(hdrs),
                 "%sAccess-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
                 "Access-Control-Allow-Headers: %.*s\r\nAccess-Control-Max-Age: 86400\r\n",
                 cors_rc == 1 ? cors : "", (int)rlen, rh);
        (void)rp_http_respond(hc, 204, NULL, hdrs, NULL, 0); /* closes hc on error */
        return 1;
    }

    char transport[16], eio[8], sid[32];
    long tl =
        rp_http_query_get(req->query, req->query_len, "transport", transport, sizeof(transport));
    long el = rp_http_query_get(req->query, req->query_len, "EIO", eio, sizeof(eio));
    long sl = rp_http_query_get(req->query, req->query_len, "sid", sid, sizeof(sid));
    int want = tl < 0                                ? 0
               : strcmp(transport, "polling") == 0   ? RP_EIO_POLLING
               : strcmp(transport, "websocket") == 0 ? RP_EIO_WEBSOCKET
                                                     : 0;
    /* A websocket request refused before the session is found is a bad handshake. */
    int ws = tl > 0 && strcmp(transport, "websocket") == 0;
    srv->ws_attempts += (unsigned long)ws;
    if (want == 0 || !(srv->cfg.transports & want)) {
        srv->ws_failures[RP_EIO_WSFAIL_BAD_HANDSHAKE] += (unsigned long)ws;
        rp_eio_respond_error(srv, hc, 400, 0, "Transport unknown");
        return 1;
    }
    if (el != 1 || eio[0] != '4') {
        srv->ws_failures[RP_EIO_WSFAIL_BAD_HANDSHAKE] += (unsigned long)ws;
        rp_eio_respond_error(srv, hc, 400, 5, "Unsupported protocol version");
        return 1;
    }
    if (sl == RP_ETOOBIG || sl == 0) {
        srv->ws_failures[RP_EIO_WSFAIL_BAD_HANDSHAKE] += (unsigned long)ws;
        rp_eio_respond_error(srv, hc, 400, 1, "Session ID unknown");
        return 1;
    }
    rp_eio_session_t *s = NULL;
    if (sl > 0) {
        rp_map_entry_t *e = rp_map_get(&srv->sessions, sid, (size_t)sl);
        s = e ? rp_container_of(e, rp_eio_session_t, entry) : NULL;
        if (s && s->state == S_OPEN && s->_hb_pong_wait && rp_timerq_expired(&s->_hb)) {
            rp_eio_session_end(s, "ping timeout", NULL, 0);
            s = NULL;
        }
        if (s == NULL) {
            srv->ws_failures[RP_EIO_WSFAIL_BAD_HANDSHAKE] += (unsigned long)ws;
            rp_eio_respond_error(srv, hc, 400, 1, "Session ID unknown");
            return 1;
        }
    }

    if (want == RP_EIO_WEBSOCKET) {
        /* The HTTP server refuses these already when it checks Origins (rp_app does); the
         * same policy here keeps an Engine.IO server that is used alone safe. */
        if (!rp_http_origin_allowed(srv->cfg.cors, req)) {
            RP_LOG_INFO("eio", "conn %llu: websocket from a disallowed origin",
                        (unsigned long long)hc->conn->id);
            srv->ws_failures[RP_EIO_WSFAIL_ORIGIN]++;
            rp_eio_respond_error(srv, hc, 403, 4, "Forbidden");
            return 1;
        }
        int refused =
            s && (s->state != S_OPEN || s->transport != RP_EIO_TRANSPORT_POLLING || s->_probe);
        wsconn_t *w = rp_eio_accept_websocket(srv, hc, req);
        if (w == NULL)
            return 1;
        if (refused) {
            /* As the reference server does: finish the handshake, then close at once, so the
             * client sees a close rather than a failed handshake. */
            RP_LOG_INFO("eio", "session %s: second websocket refused", s->sid);
            srv->ws_failures[RP_EIO_WSFAIL_REFUSED]++;
            rp_eio_wsconn_detach_close(w, 1, RP_WS_CLOSE_POLICY);
            return 1;
        }
        if (s) {
            w->s = s;
            w->probe = 1;
            s->_probe = w;
            if (srv->cfg.upgrade_timeout)
                rp_timerq_push(&srv->_upgradeq, &w->upgrade_timer);
            return 1;
        }
        s = rp_eio_session_new(srv, RP_EIO_TRANSPORT_WEBSOCKET);
        rp_eio_packet_t open;
        if (s == NULL || rp_eio_open_packet(s, &open) < 0) {
            if (s)
                rp_eio_session_end(s, "server error", NULL, 0);
            rp_net_conn_close(w->c);
            return 1;
        }
        rp_eio_keep_credential(s, req);
        w->s = s;
        s->_ws = w;
        int rc = rp_eio_session_send(s, &open);
        rp_eio_packet_release(&open);
        if (rc < 0) {
            rp_eio_session_end(s, "server error", NULL, 0); /* closes the WebSocket too */
            return 1;
        }
        if (srv->_cb.on_open)
            srv->_cb.on_open(s, srv->ud);
        return 1;
    }

    if (req->upgrade) {
        rp_eio_respond_error(srv, hc, 400, 3, "Bad request");
        return 1;
    }
    if (s == NULL) {
        if (req->method != HTTP_GET) {
            rp_eio_respond_error(srv, hc, 400, 2, "Bad handshake method");
            return 1;
        }
        s = rp_eio_session_new(srv, RP_EIO_TRANSPORT_POLLING);
        rp_eio_packet_t open;
        if (s == NULL || rp_eio_open_packet(s, &open) < 0) {
            if (s)
                rp_eio_session_end(s, "server error", NULL, 0);
            rp_eio_respond_error(srv, hc, 500, 3, "Internal error");
            return 1;
        }
        rp_eio_keep_credential(s, req);
        int rc = rp_eio_queue_push(s, &open);
        rp_eio_packet_release(&open);
        if (rc < 0) {
            rp_eio_session_end(s, "server error", NULL, 0);
            rp_eio_respond_error(srv, hc, 500, 3, "Internal error");
            return 1;
        }
        rp_eio_respond_queue(s, hc);
        if (srv->_cb.on_open && s->state == S_OPEN)
            srv->_cb.on_open(s, srv->ud);
        return 1;
    }
    if (s->transport != RP_EIO_TRANSPORT_POLLING) {
        rp_eio_respond_error(srv, hc, 400, 3, "Bad request");
        return 1;
    }
    if (req->method == HTTP_GET)
        handle_get(srv, s, hc);
    else if (req->method == HTTP_POST && s->state == S_OPEN)
        handle_post(srv, s, hc, req);
    else
        rp_eio_respond_error(srv, hc, 400, 3, "Bad request");
    return 1;
}
