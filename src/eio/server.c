/* SPDX-License-Identifier: MIT */
/* Engine.IO v4 sessions. A session lives in the sid table from its handshake until it ends;
 * it has at most one held polling GET, one WebSocket and one WebSocket being probed. Output
 * for a polling session (and for any session mid-upgrade) waits in its packet queue, which a
 * GET drains in one response; output for a WebSocket session goes straight to the conn's
 * link queue. Heartbeats run on two fixed-delay queues (ping due, pong due) shared by all
 * sessions. Ending a session is synchronous; freeing it waits for the next tick. The
 * transports are in polling.c and websocket.c (eio_int.h is what they share). */
#include "eio/server.h"

#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/err.h"
#include "util/log.h"
#include "util/rand.h"

#include "eio/eio_int.h"

/* Packets every session sends, framed once for the life of the process. */
static rp_sbuf_t sb_ping = RP_SBUF_STATIC("\x81\x01"
                                          "2");
static rp_sbuf_t sb_pong = RP_SBUF_STATIC("\x81\x01"
                                          "3");
static rp_sbuf_t sb_close = RP_SBUF_STATIC("\x81\x01"
                                           "1");
static const rp_eio_packet_t pkt_ping = {&sb_ping, 0, &sb_ping, 2};
static const rp_eio_packet_t pkt_close = {&sb_close, 0, &sb_close, 2};

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

size_t rp_eio_pkt_ws_len(const rp_eio_packet_t *p)
{
    return p->ws->len - p->ws_off;
}

size_t rp_eio_pkt_poll_len(const rp_eio_packet_t *p)
{
    return p->poll->len - p->poll_off;
}

void rp_eio_queue_clear(rp_eio_session_t *s)
{
    while (s->qhead) {
        qpkt_t *q = s->qhead;
        s->qhead = q->next;
        if (q->sampled)
            rp_net_mark_release(s->srv->net);
        rp_eio_packet_release(&q->pkt);
        rp_free(q);
    }
    s->_qtail = NULL;
    s->_qbytes = 0;
}

int rp_eio_queue_push(rp_eio_session_t *s, const rp_eio_packet_t *p)
{
    qpkt_t *q = rp_malloc(sizeof(*q));
    if (q == NULL)
        return UV_ENOMEM;
    q->next = NULL;
    q->sampled = 0;
    rp_eio_packet_ref(&q->pkt, p);
    if (s->_qtail)
        s->_qtail->next = q;
    else
        s->qhead = q;
    s->_qtail = q;
    s->_qbytes += rp_eio_pkt_poll_len(p);
    return 0;
}

static void hb_wait_ping(rp_eio_session_t *s)
{
    s->_hb_pong_wait = 0;
    rp_timerq_push(&s->srv->_pingq, &s->_hb);
}

/* Keeps the handshake request's bearer credential (header or ?token=) for the layers above,
 * which decide what it is worth; a malformed or oversized one is simply not kept. */
void rp_eio_keep_credential(rp_eio_session_t *s, const rp_http_request_t *req)
{
    char tok[RP_EIO_MAX_CREDENTIAL + 1];
    long n = rp_http_credential(req, tok, sizeof(tok));
    if (n > 0 && (s->credential = rp_malloc((size_t)n + 1)) != NULL)
        memcpy(s->credential, tok, (size_t)n + 1);
}

rp_eio_session_t *rp_eio_session_new(rp_eio_server_t *srv, int transport)
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
    rp_timerq_node_init(&s->_hb);
    rp_list_init(&s->tick_node);
    if (rp_map_put(&srv->sessions, &s->entry) < 0 &&
        rp_map_get(&srv->sessions, s->sid, 20) != &s->entry) {
        rp_free(s);
        return NULL;
    }
    if (transport == RP_EIO_TRANSPORT_POLLING)
        srv->n_polling++;
    else
        srv->n_websocket++;
    srv->_opened++;
    hb_wait_ping(s);
    return s;
}

int rp_eio_open_packet(rp_eio_session_t *s, rp_eio_packet_t *p)
{
    const rp_eio_config_t *cfg = &s->srv->cfg;
    char json[256];
    int upgrades = s->transport == RP_EIO_TRANSPORT_POLLING && (cfg->transports & RP_EIO_WEBSOCKET);
    int n = snprintf(json, sizeof(json),
                     "{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%u,\"pingTimeout\":%u,"
                     "\"maxPayload\":%zu}",
                     s->sid, upgrades ? "\"websocket\"" : "", cfg->ping_interval, cfg->ping_timeout,
                     cfg->max_payload);
    return rp_eio_packet_text(p, RP_EIO_OPEN, json, (size_t)n);
}

void rp_eio_wsconn_detach_close(wsconn_t *w, int graceful, unsigned code)
{
    w->s = NULL;
    if (graceful) {
        uint8_t frame[4];
        rp_ws_close_frame(frame, code);
        (void)rp_net_conn_write(w->c, frame, 4); /* closing either way: the code is a courtesy */
        rp_net_conn_close_after_flush(w->c);
    } else {
        rp_net_conn_close(w->c);
    }
}

static void session_dispose(rp_eio_session_t *s)
{
    rp_eio_server_t *srv = s->srv;
    s->state = S_CLOSED;
    rp_timerq_remove(&s->_hb);
    rp_list_unlink(&s->tick_node);
    rp_eio_queue_clear(s);
    rp_list_push(&srv->_dead, &s->tick_node);
}

/* Counts s's end in srv->session_errors when reason is an error. */
static void count_error(rp_eio_session_t *s, const char *reason)
{
    int e = s->_over_limit                           ? RP_EIO_ERR_MAX_QUEUED
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
void rp_eio_session_end(rp_eio_session_t *s, const char *reason, const char *get_reply,
                        int graceful)
{
    rp_eio_server_t *srv = s->srv;
    if (s->state == S_CLOSED)
        return;
    int was_open = s->state == S_OPEN;
    s->state = S_CLOSED;
    s->_close_reason = reason;
    count_error(s, reason);
    rp_map_del(&srv->sessions, &s->entry);
    if (s->transport == RP_EIO_TRANSPORT_POLLING)
        srv->n_polling--;
    else
        srv->n_websocket--;
    RP_LOG_DEBUG("eio", "session %s closed: %s", s->sid, reason);
    if (was_open && srv->_cb.on_close)
        srv->_cb.on_close(s, reason, srv->ud);
    rp_http_conn_t *hc = rp_eio_take_get(s);
    if (hc) {
        if (get_reply)
            rp_eio_respond_text(srv, hc, get_reply);
        else
            rp_http_close(hc);
    }
    if (s->_ws)
        rp_eio_wsconn_detach_close(s->_ws, graceful, RP_WS_CLOSE_NORMAL);
    if (s->_probe)
        rp_eio_wsconn_detach_close(s->_probe, 0, 0);
    s->_ws = s->_probe = NULL;
    session_dispose(s);
}

/* A GET for a lingering session: send what is left; once the close packet is out, it ends. */
void rp_eio_linger_get(rp_eio_session_t *s, rp_http_conn_t *hc)
{
    rp_eio_respond_queue(s, hc);
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
    if (s->_ws) {
        rp_eio_session_end(s, "server close", NULL, 1);
        return;
    }
    /* Polling: what is queued and then the close packet go out with the client's GETs; the
     * session lingers until they have (or for a ping timeout's worth of time). */
    s->state = S_LINGER;
    if (srv->_cb.on_close)
        srv->_cb.on_close(s, "server close", srv->ud);
    if (rp_eio_queue_push(s, &pkt_close) < 0) /* out of memory: the client sees a ping timeout */
        RP_LOG_INFO("eio", "session %s: the close packet could not be queued", s->sid);
    s->_hb_pong_wait = 1;
    rp_timerq_push(&srv->_pongq, &s->_hb);
    rp_http_conn_t *hc = rp_eio_take_get(s);
    if (hc)
        rp_eio_linger_get(s, hc);
}

static void doom(rp_eio_session_t *s)
{
    rp_list_unlink(&s->tick_node);
    rp_list_push(&s->srv->_doomed, &s->tick_node);
}

int rp_eio_session_send(rp_eio_session_t *s, const rp_eio_packet_t *p)
{
    if (s->state != S_OPEN)
        return RP_ESTATE;
    if (s->_ws) {
        int rc = rp_net_conn_queue(s->_ws->c, p->ws, p->ws_off, (uint32_t)rp_eio_pkt_ws_len(p));
        if (rc == RP_ETOOBIG)
            doom(s);
        return rc;
    }
    if (s->_qbytes + rp_eio_pkt_poll_len(p) > s->srv->cfg.max_queued + s->_allowance) {
        doom(s);
        return RP_ETOOBIG;
    }
    int rc = rp_eio_queue_push(s, p);
    if (rc < 0)
        return rc;
    if (s->_poll_get && !s->_upgrading && !rp_list_linked(&s->tick_node))
        rp_list_push(&s->srv->flush, &s->tick_node);
    return 0;
}

void rp_eio_session_mark(rp_eio_session_t *s)
{
    if (s->state != S_OPEN)
        return;
    if (s->_ws) {
        rp_net_conn_mark(s->_ws->c);
    } else if (s->_qtail && !s->_qtail->sampled) {
        s->_qtail->sampled = 1;
        rp_net_mark_hold(s->srv->net);
    }
}

void rp_eio_session_allow(rp_eio_session_t *s, size_t len)
{
    if (len > s->_allowance)
        s->_allowance = len;
    size_t bound = s->srv->cfg.max_queued + s->_allowance;
    if (s->_ws && s->_ws->c->max_queued < bound)
        s->_ws->c->max_queued = bound;
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
    return s->_ws ? s->_ws->c->out.bytes : s->_qbytes;
}

static void on_ping_due(rp_timerq_node_t *n)
{
    rp_eio_session_t *s = rp_container_of(n, rp_eio_session_t, _hb);
    if (s->state != S_OPEN)
        return;
    s->_hb_pong_wait = 1;
    rp_timerq_push(&s->srv->_pongq, &s->_hb);
    /* Not sent (over max_queued: closed at the next tick; out of memory): the pong deadline
     * just queued ends the session. */
    (void)rp_eio_session_send(s, &pkt_ping);
}

static void on_pong_due(rp_timerq_node_t *n)
{
    rp_eio_session_t *s = rp_container_of(n, rp_eio_session_t, _hb);
    if (s->state == S_LINGER) {
        session_dispose(s);
        rp_map_del(&s->srv->sessions, &s->entry);
        s->srv->n_polling--;
        return;
    }
    rp_eio_session_end(s, "ping timeout", NULL, 0);
}

/* Handles one packet from the session's active transport. Returns 0, or RP_EPROTO after
 * ending the session for a packet that has no place here. */
int rp_eio_handle_packet(rp_eio_session_t *s, const rp_eio_in_t *pkt)
{
    rp_eio_server_t *srv = s->srv;
    switch (pkt->type) {
    case RP_EIO_MESSAGE:
        if (srv->_cb.on_message)
            srv->_cb.on_message(s, pkt->binary, pkt->data, pkt->len, srv->ud);
        return 0;
    case RP_EIO_PONG:
        if (s->_hb_pong_wait)
            hb_wait_ping(s);
        return 0;
    case RP_EIO_PING: {
        static const rp_eio_packet_t pong = {&sb_pong, 0, &sb_pong, 2};
        (void)rp_eio_session_send(s, &pong); /* a lost pong is the client's ping timeout */
        return 0;
    }
    case RP_EIO_CLOSE:
        rp_eio_session_end(s, "forced close", "6", 0);
        return 0;
    case RP_EIO_NOOP:
        return 0;
    default:
        rp_eio_session_end(s, "parse error", "1", 0);
        return RP_EPROTO;
    }
}

static void on_tick(void *ud)
{
    rp_eio_server_t *srv = ud;
    while (!rp_list_empty(&srv->_doomed)) {
        rp_eio_session_t *s = rp_container_of(srv->_doomed.next, rp_eio_session_t, tick_node);
        rp_list_unlink(&s->tick_node);
        srv->drops++;
        s->_over_limit = 1;
        RP_LOG_INFO("eio", "session %s: output queue over %zu bytes, closing", s->sid,
                    srv->cfg.max_queued);
        rp_eio_session_end(s, "transport error", "1", 0);
    }
    while (!rp_list_empty(&srv->flush)) {
        rp_eio_session_t *s = rp_container_of(srv->flush.next, rp_eio_session_t, tick_node);
        rp_list_unlink(&s->tick_node);
        if (s->state == S_OPEN && s->_poll_get && s->qhead && !s->_upgrading)
            rp_eio_respond_queue(s, rp_eio_take_get(s));
    }
    while (!rp_list_empty(&srv->_dead)) {
        rp_eio_session_t *s = rp_container_of(srv->_dead.next, rp_eio_session_t, tick_node);
        rp_free(s->credential);
        rp_list_unlink(&s->tick_node);
        rp_free(s);
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    rp_timerq_t *q = h->data;
    rp_eio_server_t *srv = q->owner;
    if (--srv->_closing_timers > 0)
        return;
    if (srv->_close_cb)
        srv->_close_cb(srv);
    rp_free(srv);
}

rp_eio_server_t *rp_eio_server_new(rp_net_t *net, const rp_eio_config_t *cfg,
                                   const rp_eio_callbacks_t *cb, void *ud)
{
    rp_eio_server_t *srv = rp_calloc(1, sizeof(*srv));
    if (srv == NULL)
        return NULL;
    srv->net = net;
    srv->cfg = *cfg;
    srv->_cb = *cb;
    srv->ud = ud;
    srv->_path_len = strlen(cfg->path);
    rp_map_init(&srv->sessions);
    rp_list_init(&srv->flush);
    rp_list_init(&srv->_doomed);
    rp_list_init(&srv->_dead);
    srv->_pingq.owner = srv;
    srv->_pongq.owner = srv;
    srv->_upgradeq.owner = srv;
    if (rp_timerq_init(net->loop, &srv->_pingq, cfg->ping_interval, on_ping_due) < 0)
        goto undo_srv;
    if (rp_timerq_init(net->loop, &srv->_pongq, cfg->ping_timeout, on_pong_due) < 0)
        goto undo_pingq;
    if (rp_timerq_init(net->loop, &srv->_upgradeq, cfg->upgrade_timeout ? cfg->upgrade_timeout : 1,
                       rp_eio_on_upgrade_timeout) < 0)
        goto undo_pongq;
    if (rp_net_on_tick(net, on_tick, srv) < 0)
        goto undo_upgradeq;
    return srv;
    /* Timers close asynchronously: srv is freed by the last one (on_timer_closed). */
undo_upgradeq:
    srv->_closing_timers++;
    rp_timerq_close(&srv->_upgradeq, on_timer_closed);
undo_pongq:
    srv->_closing_timers++;
    rp_timerq_close(&srv->_pongq, on_timer_closed);
undo_pingq:
    srv->_closing_timers++;
    rp_timerq_close(&srv->_pingq, on_timer_closed);
    return NULL;
undo_srv:
    rp_free(srv);
    return NULL;
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
            rp_eio_session_end(s, "server shutdown", "1", 1);
        }
    }
    on_tick(srv);
    rp_net_off_tick(srv->net, on_tick, srv);
    rp_map_deinit(&srv->sessions);
    srv->_closing_timers = 3;
    rp_timerq_close(&srv->_pingq, on_timer_closed);
    rp_timerq_close(&srv->_pongq, on_timer_closed);
    rp_timerq_close(&srv->_upgradeq, on_timer_closed);
}
