/* SPDX-License-Identifier: MIT */
/* Engine.IO v4 sessions. A session lives in the sid table from its handshake until it ends;
 * it has at most one held polling GET, one WebSocket and one WebSocket being probed. Output
 * for a polling session (and for any session mid-upgrade) waits in its packet queue, which a
 * GET drains in one response; output for a WebSocket session goes straight to the conn's
 * link queue. Heartbeats run on two fixed-delay queues (ping due, pong due) shared by all
 * sessions. Ending a session is synchronous; freeing it waits for the next tick. */
#include "eio/server.h"

#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/err.h"
#include "util/log.h"
#include "util/rand.h"
#include "ws/ws.h"

enum { S_OPEN = 1, S_CLOSED = 2, S_LINGER = 3 };

/* A packet parked in a session's queue. */
typedef struct rp_eio_qpkt {
    struct rp_eio_qpkt *next;
    rp_eio_packet_t pkt;
    int sampled; /* holds the delivery sample's mark until it is written (rp_eio_session_mark) */
} qpkt_t;

typedef struct rp_eio_wsconn {
    rp_net_conn_t *c;
    rp_eio_session_t *s; /* NULL once detached from its session */
    rp_eio_server_t *srv;
    rp_ws_reader_t reader;
    int probe;
    rp_timerq_node_t upgrade_timer; /* on srv->upgradeq while probing */
} wsconn_t;

/* Packets every session sends, framed once for the life of the process. */
static rp_sbuf_t sb_ping = RP_SBUF_STATIC("\x81\x01" "2");
static rp_sbuf_t sb_pong = RP_SBUF_STATIC("\x81\x01" "3");
static rp_sbuf_t sb_close = RP_SBUF_STATIC("\x81\x01" "1");
static rp_sbuf_t sb_probe = RP_SBUF_STATIC("\x81\x06" "3probe");
static rp_sbuf_t sb_sep = RP_SBUF_STATIC("\x1e");
static const rp_eio_packet_t pkt_ping = {&sb_ping, 0, &sb_ping, 2};
static const rp_eio_packet_t pkt_close = {&sb_close, 0, &sb_close, 2};

static const rp_net_conn_ops_t ws_ops;

void rp_eio_config_defaults(rp_eio_config_t *cfg)
{
    cfg->ping_interval = 25000;
    cfg->ping_timeout = 20000;
    cfg->max_payload = 1000000;
    cfg->transports = RP_EIO_POLLING | RP_EIO_WEBSOCKET;
    cfg->max_queued = 1 << 20;
    cfg->path = "/socket.io/";
    cfg->cors = NULL;
    cfg->poll_batch = 16;
    cfg->upgrade_timeout = 10000;
}

static size_t pkt_ws_len(const rp_eio_packet_t *p)
{
    return p->ws->len - p->ws_off;
}

static size_t pkt_poll_len(const rp_eio_packet_t *p)
{
    return p->poll->len - p->poll_off;
}

static void queue_clear(rp_eio_session_t *s)
{
    while (s->qhead) {
        qpkt_t *q = s->qhead;
        s->qhead = q->next;
        if (q->sampled)
            rp_net_mark_release(s->srv->net);
        rp_eio_packet_release(&q->pkt);
        rp_free(q);
    }
    s->qtail = NULL;
    s->qbytes = 0;
}

static int queue_push(rp_eio_session_t *s, const rp_eio_packet_t *p)
{
    qpkt_t *q = rp_malloc(sizeof(*q));
    if (q == NULL)
        return UV_ENOMEM;
    q->next = NULL;
    q->sampled = 0;
    rp_eio_packet_ref(&q->pkt, p);
    if (s->qtail)
        s->qtail->next = q;
    else
        s->qhead = q;
    s->qtail = q;
    s->qbytes += pkt_poll_len(p);
    return 0;
}

/* ---- responses on the polling transport ---- */

static void cors_of(rp_eio_server_t *srv, const rp_http_request_t *req, char *out, size_t n)
{
    if (rp_http_cors(srv->cfg.cors, req, out, n) <= 0)
        out[0] = '\0';
}

static void respond_text(rp_eio_server_t *srv, rp_http_conn_t *hc, const char *text)
{
    char cors[640];
    cors_of(srv, &hc->req, cors, sizeof(cors));
    rp_http_respond(hc, 200, "text/plain; charset=UTF-8", cors, text, strlen(text));
}

static void respond_error(rp_eio_server_t *srv, rp_http_conn_t *hc, int status, int code,
                          const char *msg)
{
    char cors[640];
    cors_of(srv, &hc->req, cors, sizeof(cors));
    RP_LOG_DEBUG("eio", "conn %llu: %d %s", (unsigned long long)hc->conn->id, status, msg);
    rp_http_respond_error(hc, status, code, msg, cors);
}

/* Takes the held GET off s, for answering. */
static rp_http_conn_t *take_get(rp_eio_session_t *s)
{
    rp_http_conn_t *hc = s->poll_get;
    s->poll_get = NULL;
    if (hc) {
        hc->on_abort = NULL;
        hc->data = NULL;
    }
    return hc;
}

/* Answers hc with the queued packets, joined with \x1e, in one response: all of them, or the
 * first cfg.poll_batch (some clients refuse longer payloads; the rest go to the next GET). */
static void respond_queue(rp_eio_session_t *s, rp_http_conn_t *hc)
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
                                   (uint32_t)pkt_poll_len(&q->pkt));
        s->qhead = q->next;
        if (s->qhead == NULL)
            s->qtail = NULL;
        s->qbytes -= pkt_poll_len(&q->pkt);
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

/* ---- session lifecycle ---- */

static void on_poll_abort(rp_http_conn_t *hc);
static void session_end(rp_eio_session_t *s, const char *reason, const char *get_reply,
                        int graceful);

static void hb_wait_ping(rp_eio_session_t *s)
{
    s->hb_pong_wait = 0;
    rp_timerq_push(&s->srv->pingq, &s->hb);
}

/* Keeps the handshake request's bearer credential (header or ?token=) for the layers above,
 * which decide what it is worth; a malformed or oversized one is simply not kept. */
static void keep_credential(rp_eio_session_t *s, const rp_http_request_t *req)
{
    char tok[RP_EIO_MAX_CREDENTIAL + 1];
    long n = rp_http_credential(req, tok, sizeof(tok));
    if (n > 0 && (s->credential = rp_malloc((size_t)n + 1)) != NULL)
        memcpy(s->credential, tok, (size_t)n + 1);
}

static rp_eio_session_t *session_new(rp_eio_server_t *srv, int transport)
{
    rp_eio_session_t *s = rp_calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    if (rp_rand_id(s->sid, 20) < 0) {
        rp_free(s);
        return NULL;
    }
    s->srv = srv;
    s->transport = transport;
    s->state = S_OPEN;
    s->entry.key = s->sid;
    s->entry.keylen = 20;
    rp_timerq_node_init(&s->hb);
    rp_list_init(&s->tick_node);
    if (rp_map_put(&srv->sessions, &s->entry) < 0 && rp_map_get(&srv->sessions, s->sid, 20) != &s->entry) {
        rp_free(s);
        return NULL;
    }
    if (transport == RP_EIO_TRANSPORT_POLLING)
        srv->n_polling++;
    else
        srv->n_websocket++;
    srv->opened++;
    hb_wait_ping(s);
    return s;
}

static int open_packet(rp_eio_session_t *s, rp_eio_packet_t *p)
{
    const rp_eio_config_t *cfg = &s->srv->cfg;
    char json[256];
    int upgrades = s->transport == RP_EIO_TRANSPORT_POLLING && (cfg->transports & RP_EIO_WEBSOCKET);
    int n = snprintf(json, sizeof(json),
                     "{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%u,\"pingTimeout\":%u,"
                     "\"maxPayload\":%zu}",
                     s->sid, upgrades ? "\"websocket\"" : "", cfg->ping_interval,
                     cfg->ping_timeout, cfg->max_payload);
    return rp_eio_packet_text(p, RP_EIO_OPEN, json, (size_t)n);
}

static void wsconn_detach_close(wsconn_t *w, int graceful, unsigned code)
{
    w->s = NULL;
    if (graceful) {
        uint8_t frame[4];
        rp_ws_close_frame(frame, code);
        rp_net_conn_write(w->c, frame, 4);
        rp_net_conn_close_after_flush(w->c);
    } else {
        rp_net_conn_close(w->c);
    }
}

static void session_dispose(rp_eio_session_t *s)
{
    rp_eio_server_t *srv = s->srv;
    s->state = S_CLOSED;
    rp_timerq_remove(&s->hb);
    rp_list_unlink(&s->tick_node);
    queue_clear(s);
    rp_list_push(&srv->dead, &s->tick_node);
}

/* Counts s's end in srv->session_errors when reason is an error. */
static void count_error(rp_eio_session_t *s, const char *reason)
{
    int e = s->over_limit                            ? RP_EIO_ERR_MAX_QUEUED
            : strcmp(reason, "transport error") == 0 ? RP_EIO_ERR_TRANSPORT
            : strcmp(reason, "ping timeout") == 0    ? RP_EIO_ERR_PING_TIMEOUT
            : strcmp(reason, "parse error") == 0     ? RP_EIO_ERR_PARSE
                                                     : -1;
    if (e >= 0)
        s->srv->session_errors[s->transport == RP_EIO_TRANSPORT_WEBSOCKET][e]++;
}

/* Ends s: out of the sid table, upper layer told once, connections detached. get_reply, if
 * not NULL, answers a held GET; graceful closes the WebSocket with a close frame after its
 * output. */
static void session_end(rp_eio_session_t *s, const char *reason, const char *get_reply,
                        int graceful)
{
    rp_eio_server_t *srv = s->srv;
    if (s->state == S_CLOSED)
        return;
    int was_open = s->state == S_OPEN;
    s->state = S_CLOSED;
    s->close_reason = reason;
    count_error(s, reason);
    rp_map_del(&srv->sessions, &s->entry);
    if (s->transport == RP_EIO_TRANSPORT_POLLING)
        srv->n_polling--;
    else
        srv->n_websocket--;
    RP_LOG_DEBUG("eio", "session %s closed: %s", s->sid, reason);
    if (was_open && srv->cb.on_close)
        srv->cb.on_close(s, reason, srv->ud);
    rp_http_conn_t *hc = take_get(s);
    if (hc) {
        if (get_reply)
            respond_text(srv, hc, get_reply);
        else
            rp_http_close(hc);
    }
    if (s->ws)
        wsconn_detach_close(s->ws, graceful, RP_WS_CLOSE_NORMAL);
    if (s->probe)
        wsconn_detach_close(s->probe, 0, 0);
    s->ws = s->probe = NULL;
    session_dispose(s);
}

/* A GET for a lingering session: send what is left; once the close packet is out, it ends. */
static void linger_get(rp_eio_session_t *s, rp_http_conn_t *hc)
{
    respond_queue(s, hc);
    if (s->qhead == NULL) {
        rp_map_del(&s->srv->sessions, &s->entry);
        s->srv->n_polling--;
        session_dispose(s);
    }
}

void rp_eio_session_close(rp_eio_session_t *s)
{
    rp_eio_server_t *srv = s->srv;
    if (s->state != S_OPEN)
        return;
    if (s->ws) {
        session_end(s, "server close", NULL, 1);
        return;
    }
    /* Polling: what is queued and then the close packet go out with the client's GETs; the
     * session lingers until they have (or for a ping timeout's worth of time). */
    s->state = S_LINGER;
    if (srv->cb.on_close)
        srv->cb.on_close(s, "server close", srv->ud);
    queue_push(s, &pkt_close);
    s->hb_pong_wait = 1;
    rp_timerq_push(&srv->pongq, &s->hb);
    rp_http_conn_t *hc = take_get(s);
    if (hc)
        linger_get(s, hc);
}

static void doom(rp_eio_session_t *s)
{
    rp_list_unlink(&s->tick_node);
    rp_list_push(&s->srv->doomed, &s->tick_node);
}

int rp_eio_session_send(rp_eio_session_t *s, const rp_eio_packet_t *p)
{
    if (s->state != S_OPEN)
        return RP_ESTATE;
    if (s->ws) {
        int rc = rp_net_conn_queue(s->ws->c, p->ws, p->ws_off, (uint32_t)pkt_ws_len(p));
        if (rc == RP_ETOOBIG)
            doom(s);
        return rc;
    }
    if (s->qbytes + pkt_poll_len(p) > s->srv->cfg.max_queued + s->allowance) {
        doom(s);
        return RP_ETOOBIG;
    }
    int rc = queue_push(s, p);
    if (rc < 0)
        return rc;
    if (s->poll_get && !s->upgrading && !rp_list_linked(&s->tick_node))
        rp_list_push(&s->srv->flush, &s->tick_node);
    return 0;
}

void rp_eio_session_mark(rp_eio_session_t *s)
{
    if (s->state != S_OPEN)
        return;
    if (s->ws) {
        rp_net_conn_mark(s->ws->c);
    } else if (s->qtail && !s->qtail->sampled) {
        s->qtail->sampled = 1;
        rp_net_mark_hold(s->srv->net);
    }
}

void rp_eio_session_allow(rp_eio_session_t *s, size_t len)
{
    if (len > s->allowance)
        s->allowance = len;
    size_t bound = s->srv->cfg.max_queued + s->allowance;
    if (s->ws && s->ws->c->max_queued < bound)
        s->ws->c->max_queued = bound;
}

int rp_eio_session_send_message(rp_eio_session_t *s, const char *data, size_t len)
{
    rp_eio_packet_t p;
    int rc = rp_eio_packet_text(&p, RP_EIO_MESSAGE, data, len);
    if (rc < 0)
        return rc;
    rc = rp_eio_session_send(s, &p);
    rp_eio_packet_release(&p);
    return rc;
}

size_t rp_eio_session_queued(const rp_eio_session_t *s)
{
    return s->ws ? s->ws->c->out.bytes : s->qbytes;
}

/* ---- heartbeat ---- */

static void on_ping_due(rp_timerq_node_t *n)
{
    rp_eio_session_t *s = rp_container_of(n, rp_eio_session_t, hb);
    if (s->state != S_OPEN)
        return;
    s->hb_pong_wait = 1;
    rp_timerq_push(&s->srv->pongq, &s->hb);
    rp_eio_session_send(s, &pkt_ping);
}

static void on_pong_due(rp_timerq_node_t *n)
{
    rp_eio_session_t *s = rp_container_of(n, rp_eio_session_t, hb);
    if (s->state == S_LINGER) {
        session_dispose(s);
        rp_map_del(&s->srv->sessions, &s->entry);
        s->srv->n_polling--;
        return;
    }
    session_end(s, "ping timeout", NULL, 0);
}

/* ---- packets from the client ---- */

/* Handles one packet from the session's active transport. Returns 0, or RP_EPROTO after
 * ending the session for a packet that has no place here. */
static int handle_packet(rp_eio_session_t *s, const rp_eio_in_t *pkt)
{
    rp_eio_server_t *srv = s->srv;
    switch (pkt->type) {
    case RP_EIO_MESSAGE:
        if (srv->cb.on_message)
            srv->cb.on_message(s, pkt->binary, pkt->data, pkt->len, srv->ud);
        return 0;
    case RP_EIO_PONG:
        if (s->hb_pong_wait)
            hb_wait_ping(s);
        return 0;
    case RP_EIO_PING: {
        static const rp_eio_packet_t pong = {&sb_pong, 0, &sb_pong, 2};
        rp_eio_session_send(s, &pong);
        return 0;
    }
    case RP_EIO_CLOSE:
        session_end(s, "forced close", "6", 0);
        return 0;
    case RP_EIO_NOOP:
        return 0;
    default:
        session_end(s, "parse error", "1", 0);
        return RP_EPROTO;
    }
}

/* ---- WebSocket transport ---- */

/* A probe that did not finish the upgrade in time: the session goes on over polling (as the
 * reference server's upgradeTimeout does) and the WebSocket is closed. */
static void on_upgrade_timeout(rp_timerq_node_t *n)
{
    wsconn_t *w = rp_container_of(n, wsconn_t, upgrade_timer);
    rp_eio_session_t *s = w->s;
    w->srv->upgrade_timeouts++;
    if (s && s->probe == w) {
        s->probe = NULL;
        s->upgrading = 0;
        RP_LOG_INFO("eio", "session %s: upgrade not finished in %u ms; staying on polling", s->sid,
                    w->srv->cfg.upgrade_timeout);
    }
    wsconn_detach_close(w, 1, RP_WS_CLOSE_POLICY);
}

static void upgrade_complete(rp_eio_session_t *s, wsconn_t *w)
{
    rp_eio_server_t *srv = s->srv;
    rp_timerq_remove(&w->upgrade_timer);
    s->probe = NULL;
    s->ws = w;
    w->probe = 0;
    s->transport = RP_EIO_TRANSPORT_WEBSOCKET;
    s->upgrading = 0;
    srv->n_polling--;
    srv->n_websocket++;
    srv->upgrades++;
    rp_list_unlink(&s->tick_node);
    rp_http_conn_t *hc = take_get(s);
    if (hc)
        respond_text(srv, hc, "6");
    int sampled = 0;
    for (qpkt_t *q = s->qhead; q; q = q->next) {
        if (rp_net_conn_queue(w->c, q->pkt.ws, q->pkt.ws_off, (uint32_t)pkt_ws_len(&q->pkt)) < 0)
            break;
        sampled |= q->sampled;
    }
    if (sampled)
        rp_net_conn_mark(w->c);
    queue_clear(s);
}

static int on_ws_message(void *ud, unsigned opcode, uint8_t *data, size_t len)
{
    wsconn_t *w = ud;
    rp_eio_session_t *s = w->s;
    switch (opcode) {
    case RP_WS_OP_CLOSE: {
        /* Answered with a close frame (the reader has refused invalid codes with 1002), so
         * the session must let go of w first: session_end would close it bare. */
        if (s && s->ws == w) {
            s->ws = NULL;
            session_end(s, "transport close", NULL, 0);
        }
        if (s && s->probe == w) {
            s->probe = NULL;
            s->upgrading = 0;
        }
        w->s = NULL;
        uint8_t frame[4];
        rp_ws_close_reply(frame, data, len);
        rp_net_conn_write(w->c, frame, 4);
        rp_net_conn_close_after_flush(w->c);
        return 1;
    }
    case RP_WS_OP_PING: {
        uint8_t hdr[2];
        size_t h = rp_ws_frame_header_encode(hdr, RP_WS_OP_PONG, len);
        rp_sbuf_t *sb = rp_sbuf_new(h + len);
        if (sb == NULL)
            return 0;
        memcpy(sb->data, hdr, h);
        memcpy(sb->data + h, data, len);
        sb->len = (uint32_t)(h + len);
        rp_net_conn_queue(w->c, sb, 0, sb->len);
        rp_sbuf_unref(sb);
        return 0;
    }
    case RP_WS_OP_PONG:
        return 0;
    }
    if (s == NULL)
        return 1;
    if (w->probe) {
        if (opcode == RP_WS_OP_TEXT && len == 6 && memcmp(data, "2probe", 6) == 0) {
            rp_net_conn_queue(w->c, &sb_probe, 0, sb_probe.len);
            s->upgrading = 1;
            rp_list_unlink(&s->tick_node);
            rp_http_conn_t *hc = take_get(s);
            if (hc)
                respond_text(s->srv, hc, "6");
            return 0;
        }
        if (opcode == RP_WS_OP_TEXT && len == 1 && data[0] == RP_EIO_UPGRADE && s->upgrading) {
            upgrade_complete(s, w);
            return 0;
        }
        /* Anything else fails the probe; the session goes on over polling. */
        s->srv->ws_failures[RP_EIO_WSFAIL_PROBE_FAILED]++;
        rp_timerq_remove(&w->upgrade_timer);
        s->probe = NULL;
        s->upgrading = 0;
        wsconn_detach_close(w, 0, 0);
        return 1;
    }
    if (opcode == RP_WS_OP_BINARY) {
        rp_eio_in_t pkt = {1, RP_EIO_MESSAGE, (char *)data, len};
        handle_packet(s, &pkt);
        return w->s ? 0 : 1;
    }
    rp_eio_in_t pkt;
    if (rp_eio_text_decode((char *)data, len, &pkt) < 0 || pkt.type == RP_EIO_UPGRADE ||
        pkt.type == RP_EIO_OPEN) {
        RP_LOG_INFO("eio", "session %s: invalid packet over websocket", s->sid);
        session_end(s, "parse error", NULL, 1);
        return 1;
    }
    handle_packet(s, &pkt);
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
        if (s && s->ws == w) {
            s->ws = NULL;
            session_end(s, "transport error", NULL, 0);
        } else if (s && s->probe == w) {
            s->probe = NULL;
            s->upgrading = 0;
        }
        w->s = NULL;
        uint8_t frame[4];
        rp_ws_close_frame(frame, (unsigned)w->reader.close_code);
        rp_net_conn_write(c, frame, 4);
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
    if (s && s->ws == w) {
        s->ws = NULL;
        session_end(s, "transport close", NULL, 0);
    } else if (s && s->probe == w) {
        s->probe = NULL;
        s->upgrading = 0;
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
static wsconn_t *accept_websocket(rp_eio_server_t *srv, rp_http_conn_t *hc,
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
        respond_error(srv, hc, 400, 3, "Bad request");
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

/* ---- HTTP entry point ---- */

static void on_poll_abort(rp_http_conn_t *hc)
{
    rp_eio_session_t *s = hc->data;
    hc->data = NULL;
    if (s == NULL || s->poll_get != hc)
        return;
    s->poll_get = NULL;
    session_end(s, "transport close", NULL, 0);
}

static void handle_post(rp_eio_server_t *srv, rp_eio_session_t *s, rp_http_conn_t *hc,
                        rp_http_request_t *req)
{
    if (req->body_len > srv->cfg.max_payload) {
        respond_error(srv, hc, 413, 3, "Payload too large");
        session_end(s, "transport error", "1", 0);
        return;
    }
    char *cur = (char *)req->body;
    char *end = cur + req->body_len;
    rp_eio_in_t pkt;
    int rc;
    while (s->state == S_OPEN && (rc = rp_eio_payload_next(&cur, end, &pkt)) != 0) {
        if (rc < 0 || pkt.type == RP_EIO_UPGRADE || pkt.type == RP_EIO_OPEN) {
            RP_LOG_INFO("eio", "session %s: invalid polling payload", s->sid);
            session_end(s, "parse error", "1", 0);
            respond_error(srv, hc, 400, 3, "Bad request");
            return;
        }
        if (handle_packet(s, &pkt) < 0) {
            respond_error(srv, hc, 400, 3, "Bad request");
            return;
        }
    }
    char cors[640];
    cors_of(srv, req, cors, sizeof(cors));
    rp_http_respond(hc, 200, "text/html", cors, "ok", 2);
}

static void handle_get(rp_eio_server_t *srv, rp_eio_session_t *s, rp_http_conn_t *hc)
{
    if (s->state == S_LINGER) {
        linger_get(s, hc);
        return;
    }
    if (s->poll_get) {
        /* Two GETs at once: the reference server ends the session. */
        RP_LOG_INFO("eio", "session %s: overlapping polling requests", s->sid);
        session_end(s, "transport error", "1", 0);
        respond_error(srv, hc, 400, 3, "Bad request");
        return;
    }
    if (s->upgrading) {
        respond_text(srv, hc, "6");
        return;
    }
    if (s->qhead) {
        respond_queue(s, hc);
        return;
    }
    s->poll_get = hc;
    hc->data = s;
    hc->on_abort = on_poll_abort;
}

int rp_eio_server_handle(rp_eio_server_t *srv, rp_http_conn_t *hc, rp_http_request_t *req)
{
    const char *path = srv->cfg.path;
    size_t plen = srv->path_len;
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
        rp_http_respond(hc, 204, NULL, hdrs, NULL, 0);
        return 1;
    }

    char transport[16], eio[8], sid[32];
    long tl = rp_http_query_get(req->query, req->query_len, "transport", transport, sizeof(transport));
    long el = rp_http_query_get(req->query, req->query_len, "EIO", eio, sizeof(eio));
    long sl = rp_http_query_get(req->query, req->query_len, "sid", sid, sizeof(sid));
    int want = tl < 0 ? 0
               : strcmp(transport, "polling") == 0   ? RP_EIO_POLLING
               : strcmp(transport, "websocket") == 0 ? RP_EIO_WEBSOCKET
                                                     : 0;
    /* A websocket request refused before the session is found is a bad handshake. */
    int ws = tl > 0 && strcmp(transport, "websocket") == 0;
    srv->ws_attempts += (unsigned long)ws;
    if (want == 0 || !(srv->cfg.transports & want)) {
        srv->ws_failures[RP_EIO_WSFAIL_BAD_HANDSHAKE] += (unsigned long)ws;
        respond_error(srv, hc, 400, 0, "Transport unknown");
        return 1;
    }
    if (el != 1 || eio[0] != '4') {
        srv->ws_failures[RP_EIO_WSFAIL_BAD_HANDSHAKE] += (unsigned long)ws;
        respond_error(srv, hc, 400, 5, "Unsupported protocol version");
        return 1;
    }
    if (sl == RP_ETOOBIG || sl == 0) {
        srv->ws_failures[RP_EIO_WSFAIL_BAD_HANDSHAKE] += (unsigned long)ws;
        respond_error(srv, hc, 400, 1, "Session ID unknown");
        return 1;
    }
    rp_eio_session_t *s = NULL;
    if (sl > 0) {
        rp_map_entry_t *e = rp_map_get(&srv->sessions, sid, (size_t)sl);
        s = e ? rp_container_of(e, rp_eio_session_t, entry) : NULL;
        if (s && s->state == S_OPEN && s->hb_pong_wait && rp_timerq_expired(&s->hb)) {
            session_end(s, "ping timeout", NULL, 0);
            s = NULL;
        }
        if (s == NULL) {
            srv->ws_failures[RP_EIO_WSFAIL_BAD_HANDSHAKE] += (unsigned long)ws;
            respond_error(srv, hc, 400, 1, "Session ID unknown");
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
            respond_error(srv, hc, 403, 4, "Forbidden");
            return 1;
        }
        int refused = s && (s->state != S_OPEN || s->transport != RP_EIO_TRANSPORT_POLLING || s->probe);
        wsconn_t *w = accept_websocket(srv, hc, req);
        if (w == NULL)
            return 1;
        if (refused) {
            /* As the reference server does: finish the handshake, then close at once, so the
             * client sees a close rather than a failed handshake. */
            RP_LOG_INFO("eio", "session %s: second websocket refused", s->sid);
            srv->ws_failures[RP_EIO_WSFAIL_REFUSED]++;
            wsconn_detach_close(w, 1, RP_WS_CLOSE_POLICY);
            return 1;
        }
        if (s) {
            w->s = s;
            w->probe = 1;
            s->probe = w;
            if (srv->cfg.upgrade_timeout)
                rp_timerq_push(&srv->upgradeq, &w->upgrade_timer);
            return 1;
        }
        s = session_new(srv, RP_EIO_TRANSPORT_WEBSOCKET);
        rp_eio_packet_t open;
        if (s == NULL || open_packet(s, &open) < 0) {
            if (s)
                session_end(s, "server error", NULL, 0);
            rp_net_conn_close(w->c);
            return 1;
        }
        keep_credential(s, req);
        w->s = s;
        s->ws = w;
        rp_eio_session_send(s, &open);
        rp_eio_packet_release(&open);
        if (srv->cb.on_open)
            srv->cb.on_open(s, srv->ud);
        return 1;
    }

    if (req->upgrade) {
        respond_error(srv, hc, 400, 3, "Bad request");
        return 1;
    }
    if (s == NULL) {
        if (req->method != HTTP_GET) {
            respond_error(srv, hc, 400, 2, "Bad handshake method");
            return 1;
        }
        s = session_new(srv, RP_EIO_TRANSPORT_POLLING);
        rp_eio_packet_t open;
        if (s == NULL || open_packet(s, &open) < 0) {
            if (s)
                session_end(s, "server error", NULL, 0);
            respond_error(srv, hc, 500, 3, "Internal error");
            return 1;
        }
        keep_credential(s, req);
        queue_push(s, &open);
        rp_eio_packet_release(&open);
        respond_queue(s, hc);
        if (srv->cb.on_open && s->state == S_OPEN)
            srv->cb.on_open(s, srv->ud);
        return 1;
    }
    if (s->transport != RP_EIO_TRANSPORT_POLLING) {
        respond_error(srv, hc, 400, 3, "Bad request");
        return 1;
    }
    if (req->method == HTTP_GET)
        handle_get(srv, s, hc);
    else if (req->method == HTTP_POST && s->state == S_OPEN)
        handle_post(srv, s, hc, req);
    else
        respond_error(srv, hc, 400, 3, "Bad request");
    return 1;
}

/* ---- tick: deferred closes, batched polling responses, frees ---- */

static void on_tick(void *ud)
{
    rp_eio_server_t *srv = ud;
    while (!rp_list_empty(&srv->doomed)) {
        rp_eio_session_t *s = rp_container_of(srv->doomed.next, rp_eio_session_t, tick_node);
        rp_list_unlink(&s->tick_node);
        srv->drops++;
        s->over_limit = 1;
        RP_LOG_INFO("eio", "session %s: output queue over %zu bytes, closing", s->sid,
                    srv->cfg.max_queued);
        session_end(s, "transport error", "1", 0);
    }
    while (!rp_list_empty(&srv->flush)) {
        rp_eio_session_t *s = rp_container_of(srv->flush.next, rp_eio_session_t, tick_node);
        rp_list_unlink(&s->tick_node);
        if (s->state == S_OPEN && s->poll_get && s->qhead && !s->upgrading)
            respond_queue(s, take_get(s));
    }
    while (!rp_list_empty(&srv->dead)) {
        rp_eio_session_t *s = rp_container_of(srv->dead.next, rp_eio_session_t, tick_node);
        rp_free(s->credential);
        rp_list_unlink(&s->tick_node);
        rp_free(s);
    }
}

rp_eio_server_t *rp_eio_server_new(rp_net_t *net, const rp_eio_config_t *cfg,
                                   const rp_eio_callbacks_t *cb, void *ud)
{
    rp_eio_server_t *srv = rp_calloc(1, sizeof(*srv));
    if (srv == NULL)
        return NULL;
    srv->net = net;
    srv->cfg = *cfg;
    srv->cb = *cb;
    srv->ud = ud;
    srv->path_len = strlen(cfg->path);
    rp_map_init(&srv->sessions);
    rp_list_init(&srv->flush);
    rp_list_init(&srv->doomed);
    rp_list_init(&srv->dead);
    srv->pingq.owner = srv;
    srv->pongq.owner = srv;
    srv->upgradeq.owner = srv;
    if (rp_timerq_init(net->loop, &srv->pingq, cfg->ping_interval, on_ping_due) < 0 ||
        rp_timerq_init(net->loop, &srv->pongq, cfg->ping_timeout, on_pong_due) < 0 ||
        rp_timerq_init(net->loop, &srv->upgradeq, cfg->upgrade_timeout ? cfg->upgrade_timeout : 1,
                       on_upgrade_timeout) < 0 ||
        rp_net_on_tick(net, on_tick, srv) < 0) {
        /* Not reached in practice: timer init cannot fail on a live loop. */
        rp_free(srv);
        return NULL;
    }
    return srv;
}

static void on_timer_closed(uv_handle_t *h)
{
    rp_timerq_t *q = h->data;
    rp_eio_server_t *srv = q->owner;
    if (--srv->closing_timers > 0)
        return;
    if (srv->_close_cb)
        srv->_close_cb(srv);
    rp_free(srv);
}

void rp_eio_server_close(rp_eio_server_t *srv, void (*cb)(rp_eio_server_t *srv))
{
    srv->_close_cb = cb;
    size_t b;
    rp_map_entry_t *e;
    while ((e = rp_map_first(&srv->sessions, &b)) != NULL) {
        rp_eio_session_t *s = rp_container_of(e, rp_eio_session_t, entry);
        if (s->state == S_LINGER) {
            rp_map_del(&srv->sessions, e);
            session_dispose(s);
        } else {
            session_end(s, "server shutdown", "1", 1);
        }
    }
    on_tick(srv);
    rp_net_off_tick(srv->net, on_tick, srv);
    rp_map_deinit(&srv->sessions);
    srv->closing_timers = 3;
    rp_timerq_close(&srv->pingq, on_timer_closed);
    rp_timerq_close(&srv->pongq, on_timer_closed);
    rp_timerq_close(&srv->upgradeq, on_timer_closed);
}
