/* SPDX-License-Identifier: MIT */
#ifndef RP_EIO_SERVER_H
#define RP_EIO_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "eio/packet.h"
#include "http/http.h"
#include "net/net.h"
#include "net/timerq.h"
#include "util/list.h"
#include "util/map.h"

/* Engine.IO v4 server: sessions over HTTP long-polling and WebSocket, the upgrade between
 * them, and the server-initiated heartbeat. It knows nothing of Socket.IO: it hands whole
 * messages up through rp_eio_callbacks_t and sends what it is given.
 *
 * Lifetimes: a session is closed synchronously (it leaves the sid table, its connections are
 * detached, on_close runs once) and freed on the next loop tick, so a session pointer stays
 * readable until the callback chain that closed it returns. Loop thread only. */

enum {
    RP_EIO_POLLING = 1,
    RP_EIO_WEBSOCKET = 2
};

typedef struct rp_eio_config {
    uint32_t ping_interval; /* ms, default 25000 */
    uint32_t ping_timeout;  /* ms, default 20000 */
    size_t max_payload;     /* bytes of one POST body or WebSocket message, default 1e6 */
    unsigned transports;    /* RP_EIO_POLLING | RP_EIO_WEBSOCKET */
    size_t max_queued;      /* bytes of output one session may have waiting, default 1 MiB */
    const char *path;       /* "/socket.io/"; requests are matched by this prefix */
    const char *cors;       /* origins allowed besides our own (rp_http_origin_allowed), or NULL */
    unsigned poll_batch;    /* packets per polling response at most, default 16 (0: all) */
    uint32_t upgrade_timeout; /* ms for a probe WebSocket to finish the upgrade, default 10000 */
} rp_eio_config_t;

/* Fills cfg with the defaults above. */
void rp_eio_config_defaults(rp_eio_config_t *cfg);

typedef struct rp_eio_server rp_eio_server_t;
typedef struct rp_eio_session rp_eio_session_t;

typedef struct rp_eio_callbacks {
    /* A session was opened (its open packet is already queued). */
    void (*on_open)(rp_eio_session_t *s, void *ud);
    /* A message arrived; data is mutable and valid only during the call. */
    void (*on_message)(rp_eio_session_t *s, int binary, char *data, size_t len, void *ud);
    /* The session closed; reason is Engine.IO's ("transport close", "ping timeout",
     * "forced close", "parse error", "transport error", "server close"). Nothing may be sent
     * on s from here on. */
    void (*on_close)(rp_eio_session_t *s, const char *reason, void *ud);
} rp_eio_callbacks_t;

enum {
    RP_EIO_TRANSPORT_POLLING = 1,
    RP_EIO_TRANSPORT_WEBSOCKET = 2
};

/* The longest handshake credential kept (bytes). */
#define RP_EIO_MAX_CREDENTIAL 8192

struct rp_eio_session {
    rp_map_entry_t entry; /* in srv->sessions, keyed by sid */
    char sid[21];
    rp_eio_server_t *srv;
    void *data; /* the upper layer's */
    int transport;
    int state;
    unsigned _upgrading : 1;
    unsigned _hb_pong_wait : 1;
    unsigned _over_limit : 1;     /* being closed for passing max_queued */
    rp_http_conn_t *_poll_get;    /* a held polling GET, or NULL */
    struct rp_eio_wsconn *_ws;    /* the WebSocket, when transport is websocket */
    struct rp_eio_wsconn *_probe; /* a WebSocket being probed for upgrade */
    struct rp_eio_qpkt *qhead;    /* packets waiting for a polling GET (or the upgrade) */
    struct rp_eio_qpkt *_qtail;
    size_t _qbytes;
    rp_timerq_node_t _hb;
    char *credential;  /* owned: the handshake's bearer token (rp_http_credential), or NULL */
    size_t _allowance; /* output allowed past max_queued (see rp_eio_session_allow) */
    rp_list_node_t tick_node; /* on srv->flush (polling output ready) or srv->_dead */
    const char *_close_reason;
};

/* Why sessions ended in error, for ragpulse_session_errors_total: "transport error" (a
 * transport broke: bad WebSocket frames, overlapping GETs, an oversized POST), "ping timeout",
 * "parse error", and "transport error" for passing max_queued (counted apart). */
enum {
    RP_EIO_ERR_TRANSPORT,
    RP_EIO_ERR_PING_TIMEOUT,
    RP_EIO_ERR_PARSE,
    RP_EIO_ERR_MAX_QUEUED,
    RP_EIO_ERR_COUNT
};
static inline const char *rp_eio_error_name(int e)
{
    static const char *const names[] = {"transport_error", "ping_timeout", "parse_error",
                                        "max_queued"};
    return e >= 0 && e < RP_EIO_ERR_COUNT ? names[e] : "other";
}

/* WebSocket connections that failed, by reason, for ragpulse_ws_failures_total; the three
 * counters below (ws_too_big, ws_protocol, upgrade_timeouts) are the rest of that metric.
 * Before the 101: a disallowed Origin, a bad handshake (headers, version, an unknown or
 * closed session, the transport turned off), an allocation failure. After it: a second
 * WebSocket for a session refused, a probe that sent something other than the upgrade. */
enum {
    RP_EIO_WSFAIL_ORIGIN,
    RP_EIO_WSFAIL_BAD_HANDSHAKE,
    RP_EIO_WSFAIL_SERVER_ERROR,
    RP_EIO_WSFAIL_REFUSED,
    RP_EIO_WSFAIL_PROBE_FAILED,
    RP_EIO_WSFAIL_COUNT
};

struct rp_eio_server {
    rp_net_t *net; /* borrowed */
    rp_eio_config_t cfg;
    rp_eio_callbacks_t _cb;
    void *ud;
    rp_map_t sessions;
    rp_timerq_t _pingq;     /* sessions waiting to be pinged */
    rp_timerq_t _pongq;     /* sessions waiting for a pong */
    rp_timerq_t _upgradeq;  /* probe WebSockets waiting to finish the upgrade */
    rp_list_node_t flush;   /* polling sessions with output and a held GET */
    rp_list_node_t _doomed; /* sessions to close at the next tick (over their output limit) */
    rp_list_node_t _dead;   /* closed sessions to free at the next tick */
    size_t _path_len;
    int _closing_timers;
    void (*_close_cb)(rp_eio_server_t *srv);
    /* Counters for metrics. */
    unsigned long _opened;
    unsigned long _upgrades;
    unsigned long drops;       /* sessions closed for passing max_queued */
    unsigned long ws_too_big;  /* WebSockets closed 1009: a frame or message over max_payload */
    unsigned long ws_protocol; /* WebSockets closed for broken framing or UTF-8 (1002, 1007) */
    unsigned long upgrade_timeouts; /* probes closed for not finishing the upgrade in time */
    unsigned long ws_attempts;      /* requests for transport=websocket (upgrades and direct) */
    unsigned long ws_handshakes;    /* of those, answered 101 */
    unsigned long ws_failures[RP_EIO_WSFAIL_COUNT];
    unsigned long session_errors[2][RP_EIO_ERR_COUNT]; /* [polling, websocket][RP_EIO_ERR_…] */
    size_t n_polling;
    size_t n_websocket;
};

/* Creates a server on net; cfg is copied (its strings must outlive the server). Returns NULL
 * on out-of-memory or when a libuv timer cannot start. */
rp_eio_server_t *rp_eio_server_new(rp_net_t *net, const rp_eio_config_t *cfg,
                                   const rp_eio_callbacks_t *cb, void *ud);
/* Closes every session ("server shutdown") and closes the server: its memory stays valid until
 * cb(srv) has run, from the loop once its timers have closed (run the loop afterwards); cb
 * may be NULL. Call once. */
void rp_eio_server_close(rp_eio_server_t *srv, void (*cb)(rp_eio_server_t *srv));

/* Serves req if its path is under cfg.path: returns 1 (the request is answered, held or
 * upgraded), else 0 and leaves it alone. */
int rp_eio_server_handle(rp_eio_server_t *srv, rp_http_conn_t *hc, rp_http_request_t *req);

/* Sends a packet (takes its own references). Returns 0; RP_ESTATE if s is closed; RP_ETOOBIG
 * if s passed max_queued (s is then closed at the next tick with "transport error" — safe to
 * call while iterating sessions); UV_ENOMEM. */
int rp_eio_session_send(rp_eio_session_t *s, const rp_eio_packet_t *p);
/* Lets a reply of len bytes to the peer's own request (a snapshot, say) fit on top of the
 * max_queued allowance from now on: the bound is there for output a slow peer lets pile up,
 * not for an answer it asked for. The allowance only grows (the largest reply so far). */
void rp_eio_session_allow(rp_eio_session_t *s, size_t len);
/* Sends a text message "4" + data. Same returns. */
int rp_eio_session_send_message(rp_eio_session_t *s, const char *data, size_t len);
/* Closes s after its queued output has gone out; on_close runs with "server close". */
void rp_eio_session_close(rp_eio_session_t *s);
/* Marks the packet just sent to s for the delivery sample in flight (rp_net_marks_begin):
 * over WebSocket the mark is the connection's output so far; over polling the packet holds
 * a mark until a GET response carrying it is queued, and the mark then moves to that
 * response's last byte (or is released when the packet is dropped with the session). */
void rp_eio_session_mark(rp_eio_session_t *s);
/* Bytes waiting to go out to s (its polling queue or its WebSocket's output). */
size_t rp_eio_session_queued(const rp_eio_session_t *s);
static inline int rp_eio_session_open(const rp_eio_session_t *s)
{
    return s->state == 1;
}

#endif
