/* SPDX-License-Identifier: MIT */
#ifndef RP_EIO_EIO_INT_H
#define RP_EIO_EIO_INT_H

/* What the parts of the Engine.IO server share (private to src/eio): session states, the
 * queued-packet and WebSocket-connection records, and the functions one part calls in
 * another. Loop thread only. */

#include "eio/server.h"
#include "ws/ws.h"

enum {
    S_OPEN = 1,
    S_CLOSED = 2,
    S_LINGER = 3
};

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
    rp_timerq_node_t upgrade_timer; /* on srv->_upgradeq while probing */
} wsconn_t;

/* ---- server.c: sessions, queue, heartbeat, lifecycle ---- */

/* Bytes of p's WebSocket frame and of its polling item. */
size_t rp_eio_pkt_ws_len(const rp_eio_packet_t *p);
size_t rp_eio_pkt_poll_len(const rp_eio_packet_t *p);
/* Drops every packet waiting in s's queue. */
void rp_eio_queue_clear(rp_eio_session_t *s);
/* Parks p (a new reference) in s's queue, no limit check. Returns 0 or UV_ENOMEM. */
int rp_eio_queue_push(rp_eio_session_t *s, const rp_eio_packet_t *p);
/* Keeps the handshake's bearer credential on s (a bad or oversized one is not kept). */
void rp_eio_keep_credential(rp_eio_session_t *s, const rp_http_request_t *req);
/* A new open session in the sid table with its heartbeat armed, or NULL (out of memory). */
rp_eio_session_t *rp_eio_session_new(rp_eio_server_t *srv, int transport);
/* The open packet of s (sid, upgrades, intervals, maxPayload). Returns 0 or UV_ENOMEM. */
int rp_eio_open_packet(rp_eio_session_t *s, rp_eio_packet_t *p);
/* Detaches w from its session and closes it (graceful: a close frame with code first). */
void rp_eio_wsconn_detach_close(wsconn_t *w, int graceful, unsigned code);
/* Ends s: out of the sid table, upper layer told once, connections detached. get_reply, if
 * not NULL, answers a held GET; graceful closes the WebSocket after its output. */
void rp_eio_session_end(rp_eio_session_t *s, const char *reason, const char *get_reply,
                        int graceful);
/* A GET for a lingering session: what is left; once the close packet is out, it ends. */
void rp_eio_linger_get(rp_eio_session_t *s, rp_http_conn_t *hc);
/* One packet from s's active transport. Returns 0, or RP_EPROTO after ending s. */
int rp_eio_handle_packet(rp_eio_session_t *s, const rp_eio_in_t *pkt);

/* ---- polling.c: polling responses, the HTTP entry point ---- */

/* Answers hc with text/plain (respond_error: Engine.IO's JSON error) and the CORS headers;
 * a failed response has closed hc. */
void rp_eio_respond_text(rp_eio_server_t *srv, rp_http_conn_t *hc, const char *text);
void rp_eio_respond_error(rp_eio_server_t *srv, rp_http_conn_t *hc, int status, int code,
                          const char *msg);
/* Takes s's held GET (NULL when none). */
rp_http_conn_t *rp_eio_take_get(rp_eio_session_t *s);
/* Answers hc with s's queue (up to cfg.poll_batch packets) as one polling payload. */
void rp_eio_respond_queue(rp_eio_session_t *s, rp_http_conn_t *hc);

/* ---- websocket.c: the WebSocket transport and the upgrade ---- */

/* srv->_upgradeq's expiry: a probe that did not finish the upgrade in time is closed. */
void rp_eio_on_upgrade_timeout(rp_timerq_node_t *n);
/* Answers the upgrade request (101) and hands the connection to a new wsconn; NULL after
 * refusing it (hc answered or closed). */
wsconn_t *rp_eio_accept_websocket(rp_eio_server_t *srv, rp_http_conn_t *hc,
                                  const rp_http_request_t *req);

#endif
