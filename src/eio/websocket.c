/* SPDX-License-Identifier: MIT */
/* The WebSocket transport: a direct WebSocket session, or a probe on a polling session that
 * becomes its transport once the client sends "5" (upgrade). Frames are read with the ws
 * reader; a message over max_payload or broken framing closes the connection with its code
 * (1009, 1002, 1007). Invariant: a wsconn is detached from its session before it closes. */
#include "eio/eio_int.h"

#include <string.h>

#include "util/alloc.h"
#include "util/err.h"
#include "util/log.h"

/* The probe's answer, framed once for the life of the process. */
static rp_sbuf_t sb_probe = RP_SBUF_STATIC("\x81\x06"
                                           "3probe");

static const rp_net_conn_ops_t ws_ops;

/* A probe that did not finish the upgrade in time: the session goes on over polling (as the
 * reference server's upgradeTimeout does) and the WebSocket is closed. */
void rp_eio_on_upgrade_timeout(rp_timerq_node_t *n)
{
    wsconn_t *w = rp_container_of(n, wsconn_t, upgrade_timer);
    rp_eio_session_t *s = w->s;
    w->srv->upgrade_timeouts++;
    if (s && s->_probe == w) {
        s->_probe = NULL;
        s->_upgrading = 0;
        RP_LOG_INFO("eio", "session %s: upgrade not finished in %u ms; staying on polling", s->sid,
                    w->srv->cfg.upgrade_timeout);
    }
    rp_eio_wsconn_detach_close(w, 1, RP_WS_CLOSE_POLICY);
}

static void upgrade_complete(rp_eio_session_t *s, wsconn_t *w)
{
    rp_eio_server_t *srv = s->srv;
    rp_timerq_remove(&w->upgrade_timer);
    s->_probe = NULL;
    s->_ws = w;
    w->probe = 0;
    s->transport = RP_EIO_TRANSPORT_WEBSOCKET;
    s->_upgrading = 0;
    srv->n_polling--;
    srv->n_websocket++;
    srv->_upgrades++;
    rp_list_unlink(&s->tick_node);
    rp_http_conn_t *hc = rp_eio_take_get(s);
    if (hc)
        rp_eio_respond_text(srv, hc, "6");
    int sampled = 0;
    for (qpkt_t *q = s->qhead; q; q = q->next) {
        if (rp_net_conn_queue(w->c, q->pkt.ws, q->pkt.ws_off,
                              (uint32_t)rp_eio_pkt_ws_len(&q->pkt)) < 0)
            break;
        sampled |= q->sampled;
    }
    if (sampled)
        rp_net_conn_mark(w->c);
    rp_eio_queue_clear(s);
}

static int on_ws_message(void *ud, unsigned opcode, uint8_t *data, size_t len)
{
    wsconn_t *w = ud;
    rp_eio_session_t *s = w->s;
    switch (opcode) {
    case RP_WS_OP_CLOSE: {
        /* Answered with a close frame (the reader has refused invalid codes with 1002), so
         * the session must let go of w first: rp_eio_session_end would close it bare. */
        if (s && s->_ws == w) {
            s->_ws = NULL;
            rp_eio_session_end(s, "transport close", NULL, 0);
        }
        if (s && s->_probe == w) {
            s->_probe = NULL;
            s->_upgrading = 0;
        }
        w->s = NULL;
        uint8_t frame[4];
        rp_ws_close_reply(frame, data, len);
        (void)rp_net_conn_write(w->c, frame, 4); /* closing either way: the reply is a courtesy */
        rp_net_conn_close_after_flush(w->c);
        return 1;
    }
    case RP_WS_OP_PING: {
        uint8_t hdr[2];
        size_t h = rp_ws_frame_header_encode(hdr, RP_WS_OP_PONG, len);
        rp_sbuf_t *sb = rp_sbuf_new(h + len);
        int rc = sb ? 0 : UV_ENOMEM;
        if (sb) {
            memcpy(sb->data, hdr, h);
            memcpy(sb->data + h, data, len);
            sb->len = (uint32_t)(h + len);
            rc = rp_net_conn_queue(w->c, sb, 0, sb->len);
            rp_sbuf_unref(sb);
        }
        if (rc < 0) {
            /* A peer that cannot be answered is closed (ws_on_close ends its session). */
            rp_net_conn_close(w->c);
            return 1;
        }
        return 0;
    }
    case RP_WS_OP_PONG:
        return 0;
    }
    if (s == NULL)
        return 1;
    if (w->probe) {
        if (opcode == RP_WS_OP_TEXT && len == 6 && memcmp(data, "2probe", 6) == 0 &&
            rp_net_conn_queue(w->c, &sb_probe, 0, sb_probe.len) == 0) {
            s->_upgrading = 1;
            rp_list_unlink(&s->tick_node);
            rp_http_conn_t *hc = rp_eio_take_get(s);
            if (hc)
                rp_eio_respond_text(s->srv, hc, "6");
            return 0;
        }
        if (opcode == RP_WS_OP_TEXT && len == 1 && data[0] == RP_EIO_UPGRADE && s->_upgrading) {
            upgrade_complete(s, w);
            return 0;
        }
        /* Anything else fails the probe; the session goes on over polling. */
        s->srv->ws_failures[RP_EIO_WSFAIL_PROBE_FAILED]++;
        rp_timerq_remove(&w->upgrade_timer);
        s->_probe = NULL;
        s->_upgrading = 0;
        rp_eio_wsconn_detach_close(w, 0, 0);
        return 1;
    }
    if (opcode == RP_WS_OP_BINARY) {
        rp_eio_in_t pkt = {1, RP_EIO_MESSAGE, (char *)data, len};
        if (rp_eio_handle_packet(s, &pkt) < 0)
            return 1; /* the session has ended */
        return w->s ? 0 : 1;
    }
    rp_eio_in_t pkt;
    if (rp_eio_text_decode((char *)data, len, &pkt) < 0 || pkt.type == RP_EIO_UPGRADE ||
        pkt.type == RP_EIO_OPEN) {
        RP_LOG_INFO("eio", "session %s: invalid packet over websocket", s->sid);
        rp_eio_session_end(s, "parse error", NULL, 1);
        return 1;
    }
    if (rp_eio_handle_packet(s, &pkt) < 0)
        return 1;
    return w->s ? 0 : 1;
}

static void ws_on_read(rp_net_conn_t *c, char *data, size_t len)
{
    wsconn_t *w = c->data;
    int rc = rp_ws_reader_feed(&w->reader, (uint8_t *)data, len);
    if (rc < 0 && rc != RP_ESTATE) {
        RP_LOG_INFO("ws", "conn %llu: bad websocket input (%s), closing with %d",
                    (unsigned long long)c->id, rp_err_name(rc), w->reader.close_code);
        rp_eio_session_t *s = w->s;
        if (w->reader.close_code == RP_WS_CLOSE_TOO_BIG)
            w->srv->ws_too_big++;
        else
            w->srv->ws_protocol++;
        if (s && s->_ws == w) {
            s->_ws = NULL;
            rp_eio_session_end(s, "transport error", NULL, 0);
        } else if (s && s->_probe == w) {
            s->_probe = NULL;
            s->_upgrading = 0;
        }
        w->s = NULL;
        uint8_t frame[4];
        rp_ws_close_frame(frame, (unsigned)w->reader.close_code);
        (void)rp_net_conn_write(c, frame, 4); /* closing either way: the code is a courtesy */
        rp_net_conn_close_after_flush(c);
    }
}

static void ws_on_eof(rp_net_conn_t *c, int err)
{
    (void)err;
    rp_net_conn_close(c);
}

static void ws_on_close(rp_net_conn_t *c)
{
    wsconn_t *w = c->data;
    rp_eio_session_t *s = w->s;
    rp_timerq_remove(&w->upgrade_timer);
    if (s && s->_ws == w) {
        s->_ws = NULL;
        rp_eio_session_end(s, "transport close", NULL, 0);
    } else if (s && s->_probe == w) {
        s->_probe = NULL;
        s->_upgrading = 0;
    }
    rp_ws_reader_deinit(&w->reader);
    rp_free(w);
}

static const rp_net_conn_ops_t ws_ops = {
    .on_read = ws_on_read,
    .on_eof = ws_on_eof,
    .on_close = ws_on_close,
};

/* Answers the upgrade request and hands the connection to a new wsconn. */
wsconn_t *rp_eio_accept_websocket(rp_eio_server_t *srv, rp_http_conn_t *hc,
                                  const rp_http_request_t *req)
{
    size_t klen;
    const char *key = rp_http_header(req, "sec-websocket-key", &klen);
    size_t vlen;
    const char *ver = rp_http_header(req, "sec-websocket-version", &vlen);
    char accept[29];
    if (key == NULL || ver == NULL || vlen != 2 || memcmp(ver, "13", 2) != 0 ||
        rp_ws_accept_key(key, klen, accept) < 0 ||
        !rp_http_header_has_token(req, "upgrade", "websocket") ||
        !rp_http_header_has_token(req, "connection", "upgrade") || req->method != HTTP_GET) {
        srv->ws_failures[RP_EIO_WSFAIL_BAD_HANDSHAKE]++;
        rp_eio_respond_error(srv, hc, 400, 3, "Bad request");
        return NULL;
    }
    wsconn_t *w = rp_calloc(1, sizeof(*w));
    if (w == NULL) {
        srv->ws_failures[RP_EIO_WSFAIL_SERVER_ERROR]++;
        rp_http_close(hc);
        return NULL;
    }
    char resp[160];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    if (rp_net_conn_write(hc->conn, resp, (size_t)n) < 0) {
        srv->ws_failures[RP_EIO_WSFAIL_SERVER_ERROR]++;
        rp_free(w);
        rp_http_close(hc);
        return NULL;
    }
    srv->ws_handshakes++;
    w->c = hc->conn;
    w->srv = srv;
    rp_timerq_node_init(&w->upgrade_timer);
    hc->conn->max_queued = srv->cfg.max_queued;
    rp_ws_reader_init(&w->reader, srv->cfg.max_payload, on_ws_message, w);
    rp_http_upgrade(hc, &ws_ops, w);
    return w;
}
