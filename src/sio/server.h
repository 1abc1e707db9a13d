/* SPDX-License-Identifier: MIT */
#ifndef RP_SIO_SERVER_H
#define RP_SIO_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/cluster.h"
#include "eio/server.h"
#include "sio/packet.h"
#include "util/buf.h"
#include "util/list.h"
#include "util/map.h"

/* Socket.IO v5 server over the Engine.IO server: namespaces, sockets, rooms, acks, binary
 * attachments, broadcast. This is the C API the hub builds on:
 *
 *   rp_sio_nsp_t *nsp = rp_sio_server_of(srv, "/pipeline");
 *   rp_sio_nsp_on_connect(nsp, check_auth, ud);      // may refuse with CONNECT_ERROR
 *   rp_sio_nsp_on(nsp, "subscribe", on_subscribe, ud);
 *   ...
 *   rp_sio_join(socket, "pipeline:42", 11);
 *   rp_sio_broadcast(nsp, &(rp_sio_bcast_t){.rooms = rooms, .nrooms = 1}, "file:progress",
 *                    json, json_len, NULL, 0);
 *
 * Event arguments travel as JSON text, never as trees: a handler gets the text of the
 * arguments after the event name (`1,"2",{"3":[true]}` for ["message",1,"2",{"3":[true]}]),
 * and emit/ack/broadcast take the same form, so a server that relays what it got never
 * parses or re-encodes it, and numbers keep their spelling. rp_sio_arg() picks one argument
 * out when a handler needs it.
 *
 * Broadcast encodes the packet once and hands every recipient's transport a reference to the
 * same frame; nothing is allocated per recipient beyond a queue link. Loop thread only. */

typedef struct rp_sio_server rp_sio_server_t;
typedef struct rp_sio_nsp rp_sio_nsp_t;
typedef struct rp_sio_socket rp_sio_socket_t;
typedef struct rp_sio_client rp_sio_client_t;

/* Binary attachments one outgoing packet (emit, ack, broadcast) may carry: more is
 * RP_ETOOBIG. Incoming packets are bounded by rp_sio_config_t.max_attachments instead. */
#define RP_SIO_MAX_ATTACHMENTS 64

typedef struct rp_sio_bin {
    const void *data;
    size_t len;
} rp_sio_bin_t;

/* An event (or an ack's arguments) as received. Pointers are valid during the callback. */
typedef struct rp_sio_event {
    const char *name; /* decoded event name, NUL-terminated ("" for acks) */
    size_t name_len;
    const char *args; /* JSON text of the arguments, without the enclosing brackets */
    size_t args_len;
    const rp_sio_bin_t *att; /* binary attachments, in placeholder order */
    size_t natt;
    int64_t ack_id; /* -1 when the client wants no ack */
} rp_sio_event_t;

typedef void (*rp_sio_event_cb)(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud);
/* Decides a CONNECT: return 0 to accept; <0 to refuse, after writing a JSON object into err
 * (e.g. {"message":"not authorized"}; empty means {"message":"Not authorized"}). auth is the
 * CONNECT payload's text ("" when none). s is not yet in the namespace. */
typedef int (*rp_sio_connect_cb)(rp_sio_socket_t *s, const char *auth, size_t auth_len,
                                 rp_buf_t *err, void *ud);
/* A socket joined the namespace (the CONNECT reply is already queued). */
typedef void (*rp_sio_connection_cb)(rp_sio_socket_t *s, const char *auth, size_t auth_len,
                                     void *ud);
/* A socket left: "client namespace disconnect", "server namespace disconnect", "transport
 * close", "ping timeout", "transport error", "parse error", "forced close", "server
 * shutdown". It has already left its rooms; nothing may be sent on it. */
typedef void (*rp_sio_disconnect_cb)(rp_sio_socket_t *s, const char *reason, void *ud);
/* An ack for rp_sio_emit_with_ack: ack is NULL when the timeout passed or the socket left
 * first (s is then NULL too). */
typedef void (*rp_sio_ack_cb)(rp_sio_socket_t *s, const rp_sio_event_t *ack, void *ud);
/* Asked for an unknown namespace: return a namespace to create it on the fly, or NULL to
 * refuse ("Invalid namespace"). */
typedef rp_sio_nsp_t *(*rp_sio_nsp_factory_cb)(rp_sio_server_t *srv, const char *name, size_t len,
                                               void *ud);

/* Connection-state recovery (socket.io 4.6+): a namespace with recovery on gives each socket
 * a private id (pid) in its CONNECT reply and carries an offset as the last argument of every
 * broadcast that has one. When a socket drops without meaning to (transport closed or
 * errored, ping timeout, server shutdown), its sid, pid and rooms are kept for the recovery
 * window; a client that comes back with {pid, offset} in its CONNECT auth gets the same sid
 * and rooms, every event it missed (asked of the provider, sent before the CONNECT reply, as
 * the client library expects), and the same pid back, which the client reads as recovered.
 * A stock socket.io-client does its part by itself.
 *
 * A gap larger than a socket may have queued (max_queued) is replayed in rounds: each round
 * sends missed events until half of max_queued is waiting, and the next starts once the peer
 * has read most of it. Meanwhile the socket is in its rooms but skipped by broadcasts; the
 * round that reaches the present sends the CONNECT reply in the same loop turn, so nothing is
 * missed or doubled between the replay and live events (broadcasts that the provider does not
 * keep, such as heartbeats, are not replayed). If the history moves past the replay before it
 * catches up, the socket gets a fresh session instead. */
/* Sends one event; returns 0, 1 when the socket has enough queued for this round (nothing
 * sent: stop here, the next round resumes after the last offset sent), or a negative error. */
typedef int (*rp_sio_missed_emit_cb)(void *ctx, const char *event, const char *args,
                                     size_t args_len, const char *offset);
typedef struct rp_sio_recovery {
    /* Calls emit, in order, for every event after `offset` that a socket of nsp in `rooms`
     * would have received. Returns 0 when all were sent, 1 when emit said to stop, or RP_ENOTFOUND
     * when it cannot (offset unknown, in the future, or older than what is kept): the client then
     * gets a fresh session. */
    int (*missed)(void *ud, rp_sio_nsp_t *nsp, const char *const *rooms, size_t nrooms,
                  const char *offset, rp_sio_missed_emit_cb emit, void *ctx);
} rp_sio_recovery_t;

typedef struct rp_sio_config {
    uint32_t connect_timeout;      /* ms from Engine.IO open to the first CONNECT, default 45000 */
    uint32_t recovery_window;      /* ms a dropped session can be recovered, default 120000 */
    unsigned max_attachments;      /* per packet, default 16 */
    unsigned max_rooms_per_socket; /* default 256 */
    /* Client -> server packets per connection (a token bucket; 0: unlimited). A packet over
     * the rate is dropped (an event that wants an ack gets {"error":"rate limited",...});
     * a client that keeps going, more than rate_burst drops ahead of its accepted packets,
     * is disconnected. */
    double rate_limit; /* packets a second */
    double rate_burst;
} rp_sio_config_t;

void rp_sio_config_defaults(rp_sio_config_t *cfg);

struct rp_sio_nsp {
    rp_map_entry_t _entry; /* in srv->_nsps */
    char *name;            /* owned */
    size_t _name_len;
    rp_sio_server_t *_srv;
    rp_map_t _sockets; /* by id */
    rp_list_node_t socket_list;
    size_t nsockets;
    rp_map_t _rooms;
    rp_map_t _pids; /* connected sockets by private id (recovery on) */
    struct rp_sio_handler *_handlers;
    rp_sio_event_cb _on_any;
    void *_on_any_ud;
    rp_sio_connect_cb _on_connect;
    void *_on_connect_ud;
    rp_sio_connection_cb _on_connection;
    void *_on_connection_ud;
    rp_sio_disconnect_cb _on_disconnect;
    void *_on_disconnect_ud;
    const rp_sio_recovery_t *recovery; /* NULL: recovery off */
    void *_recovery_ud;
    int (*_room_allowed)(rp_sio_socket_t *s, const char *room, void *ud);
    void *_room_allowed_ud;
    int (*_take_over_allowed)(rp_sio_socket_t *s, rp_sio_socket_t *old, void *ud);
    void *_take_over_allowed_ud;
    void (*_free_socket_data)(void *data);
    void *_data; /* the user's */
};

struct rp_sio_socket {
    rp_map_entry_t _entry; /* in nsp->_sockets */
    char id[21];
    rp_sio_nsp_t *nsp;
    rp_sio_client_t *client;
    rp_list_node_t nsp_node;
    rp_list_node_t _client_node;
    rp_list_node_t _rooms; /* memberships */
    size_t nrooms;
    struct rp_sio_pending_ack *_acks;
    int64_t _next_ack_id;
    uint32_t _mark; /* broadcast dedup */
    int _connected;
    int recovered;                 /* this socket resumed an earlier session */
    char pid[21];                  /* private session id, when the namespace has recovery on */
    struct rp_sio_replay *_replay; /* a recovery being replayed in rounds, or NULL */
    rp_map_entry_t _pid_entry;     /* in nsp->_pids while connected */
    void *data;                    /* the user's */
};

struct rp_sio_client {
    rp_eio_session_t *eio;
    rp_sio_server_t *_srv;
    rp_list_node_t _sockets;
    rp_timerq_node_t _connect_timer;
    struct rp_sio_partial *_partial; /* a binary packet waiting for its attachments */
    double _tokens;                  /* the rate bucket (see rp_sio_config_t.rate_limit) */
    uint64_t _tokens_ms;
    uint32_t _over; /* drops not yet paid back by accepted packets */
};

struct rp_sio_server {
    rp_eio_server_t *eio; /* owned */
    rp_sio_config_t cfg;
    rp_map_t _nsps;
    rp_sio_nsp_factory_cb _nsp_factory;
    void *_nsp_factory_ud;
    rp_timerq_t _connectq;
    rp_timerq_t _recoveryq; /* saved sessions, by expiry */
    rp_timerq_t _replayq;   /* recoveries replayed in rounds, checked every few ms */
    rp_map_t _saved;        /* pid -> saved session */
    uint32_t _bcast_gen;
    int _closing_timer;
    rp_cluster_t *cluster; /* borrowed; NULL on a single node */
    /* Set by the caller around the broadcasts of a sampled event: each recipient's packet is
     * marked for the delivery sample (rp_eio_session_mark, rp_net_marks_begin). */
    int mark_recipients;
    /* Counters for metrics. */
    unsigned long packets_in;
    unsigned long packets_out;
    unsigned long broadcasts;
    unsigned long broadcast_recipients;
    unsigned long rate_limited;      /* packets dropped over the rate */
    unsigned long rate_disconnects;  /* clients disconnected for going on */
    unsigned long protocol_errors;   /* clients closed for breaking the protocol (or a limit) */
    unsigned long takeovers_refused; /* a live socket's pid presented by someone the hook refused */
    /* Recoveries by outcome: resumed at once, resumed after a replay in rounds, fresh session
     * because the offset could not be served, fresh because the history overtook the replay. */
    unsigned long recovered, recovered_paced, recovery_refused, recovery_overtaken;
    size_t _nclients;
    /* Private to src/sio (the globals of old, now per server). */
    rp_sio_socket_t **_graveyard; /* sockets that left, freed at the next tick */
    size_t _graveyard_len, _graveyard_cap;
    rp_list_node_t _lookups; /* cluster session lookups in flight (recovery.c) */
    int _resuming;           /* a held CONNECT is being replayed: no second lookup */
    void (*_close_cb)(rp_sio_server_t *srv);
};

/* Creates a Socket.IO server with its own Engine.IO server on net. Returns NULL on
 * out-of-memory or when a libuv timer cannot start. */
rp_sio_server_t *rp_sio_server_new(rp_net_t *net, const rp_eio_config_t *eio_cfg,
                                   const rp_sio_config_t *cfg);
/* Disconnects every client ("server shutdown") and closes the server: its memory stays valid
 * until cb(srv) has run, from the loop once every handle has closed (run the loop after);
 * cb may be NULL. The Engine.IO server goes with it. Call once. */
void rp_sio_server_close(rp_sio_server_t *srv, void (*cb)(rp_sio_server_t *srv));
/* Serves an HTTP request under the Engine.IO path; returns 1 if it did, 0 if not ours. */
int rp_sio_server_handle(rp_sio_server_t *srv, rp_http_conn_t *hc, rp_http_request_t *req);

/* Shares broadcasts with other nodes through c (NULL: this node only). Every broadcast made
 * here is published to c; broadcasts from other nodes are delivered to local sockets. */
void rp_sio_server_set_cluster(rp_sio_server_t *srv, rp_cluster_t *c);

/* Cluster recovery sessions: a CONNECT that asks to resume a pid this node does not know is
 * held while the cluster adapter is asked for it (session_take); if found, the session is put
 * back here and the CONNECT goes on as a local resume. rp_sio_cluster_detach forgets the
 * lookups still in flight (the server is being closed; their answers are dropped). */
void rp_sio_cluster_detach(rp_sio_server_t *srv);
/* Calls fn for each room of nsp with its local size (socket-id rooms included). */
void rp_sio_nsp_rooms(rp_sio_nsp_t *nsp,
                      void (*fn)(const char *room, size_t len, size_t size, void *ud), void *ud);

/* Returns the namespace `name` ("/" or "/x"), creating it; NULL on out-of-memory. */
rp_sio_nsp_t *rp_sio_server_of(rp_sio_server_t *srv, const char *name);
rp_sio_nsp_t *rp_sio_server_find(rp_sio_server_t *srv, const char *name, size_t len);
void rp_sio_server_set_nsp_factory(rp_sio_server_t *srv, rp_sio_nsp_factory_cb cb, void *ud);

/* Handlers. rp_sio_nsp_on returns 0 or UV_ENOMEM; a second handler for an event replaces the
 * first. on_any gets events with no handler of their own. */
int rp_sio_nsp_on(rp_sio_nsp_t *nsp, const char *event, rp_sio_event_cb cb, void *ud);
void rp_sio_nsp_on_any(rp_sio_nsp_t *nsp, rp_sio_event_cb cb, void *ud);
void rp_sio_nsp_on_connect(rp_sio_nsp_t *nsp, rp_sio_connect_cb cb, void *ud);
void rp_sio_nsp_on_connection(rp_sio_nsp_t *nsp, rp_sio_connection_cb cb, void *ud);
void rp_sio_nsp_on_disconnect(rp_sio_nsp_t *nsp, rp_sio_disconnect_cb cb, void *ud);
/* Turns connection-state recovery on for nsp (rec NULL: off). */
void rp_sio_nsp_set_recovery(rp_sio_nsp_t *nsp, const rp_sio_recovery_t *rec, void *ud);
/* When a session is recovered, each of its rooms is kept only if cb says 1 (the new
 * credentials may allow less than the old); missed events are looked up for those rooms. */
void rp_sio_nsp_on_restore_room(rp_sio_nsp_t *nsp,
                                int (*cb)(rp_sio_socket_t *s, const char *room, void *ud),
                                void *ud);
/* A CONNECT that presents the pid of a socket still connected on another client (the client
 * moved before its old connection was seen to drop) ends that socket and resumes its session
 * only when cb(s, old) says 1; s has passed the connect hook (its data is set). Otherwise old
 * is left alone and s gets a fresh session. Without a hook the pid alone suffices. */
void rp_sio_nsp_on_take_over(rp_sio_nsp_t *nsp,
                             int (*cb)(rp_sio_socket_t *s, rp_sio_socket_t *old, void *ud),
                             void *ud);
/* s->data of nsp's sockets is freed with fn when the socket is freed (also when a CONNECT
 * the connect hook accepted fails afterwards). */
void rp_sio_nsp_set_socket_data_free(rp_sio_nsp_t *nsp, void (*fn)(void *data));
/* Recovery sessions kept elsewhere (a durable store): puts a session back so a client can
 * resume it within ttl_ms. Returns 0, RP_EINVAL when pid or sid is not 20 characters,
 * RP_ESTATE when pid is already kept, or UV_ENOMEM. */
int rp_sio_save_session(rp_sio_nsp_t *nsp, const char *pid, const char *sid,
                        const char *const *rooms, size_t nrooms, uint32_t ttl_ms);
/* True for the disconnect reasons after which a session is kept for recovery. */
int rp_sio_reason_recoverable(const char *reason);
/* The connected socket of nsp with that id, or NULL (for completions that outlive a
 * callback: keep the id, not the pointer). */
rp_sio_socket_t *rp_sio_nsp_socket(rp_sio_nsp_t *nsp, const char *id);
/* Emits to one socket with an offset as last argument (recovery on), e.g. a first offset right
 * after connect so a client that has seen no broadcast yet can recover. */
int rp_sio_emit_offset(rp_sio_socket_t *s, const char *event, const char *args, size_t args_len,
                       const char *offset);

/* Emits to one socket. args is JSON text without brackets ("" or NULL for none); att are
 * binary attachments referenced by placeholders in args. Returns 0, RP_ESTATE if s is gone,
 * RP_ETOOBIG if s's output is over its limit (its connection is then dropped) or natt is over
 * RP_SIO_MAX_ATTACHMENTS, UV_ENOMEM. */
int rp_sio_emit(rp_sio_socket_t *s, const char *event, const char *args, size_t args_len,
                const rp_sio_bin_t *att, size_t natt);
/* Emits and waits for the client's ack; cb runs once (with the ack, or NULL on timeout or
 * disconnect). timeout_ms 0 waits as long as the socket lives. Same returns; cb is not called
 * when this fails. */
int rp_sio_emit_with_ack(rp_sio_socket_t *s, const char *event, const char *args, size_t args_len,
                         const rp_sio_bin_t *att, size_t natt, uint32_t timeout_ms,
                         rp_sio_ack_cb cb, void *ud);
/* Answers a client's ack request (ev->ack_id). Same returns. The answer may pass the
 * session's max_queued (rp_eio_session_allow): the caller bounds it; the hub's largest,
 * a subscribe ack, lists at most a quarter of max_queued of files (see hub.c snapshot()). */
int rp_sio_ack(rp_sio_socket_t *s, int64_t ack_id, const char *args, size_t args_len,
               const rp_sio_bin_t *att, size_t natt);

typedef struct rp_sio_bcast {
    const char *const *rooms; /* NULL: the whole namespace */
    size_t nrooms;
    const char *const *except; /* rooms whose sockets are skipped */
    size_t nexcept;
    const rp_sio_socket_t *except_socket;
    const char *offset; /* with recovery on: appended as the last argument (a string) */
    int local;          /* this node's sockets only: not handed to the cluster adapter */
} rp_sio_bcast_t;

/* Sends an event to every socket of nsp in any of opts->rooms (each once), minus exclusions,
 * on this node and (through the cluster adapter, for events without binary attachments) on
 * every other. A room name that is a socket id reaches that socket. Returns the number of
 * local recipients, or UV_ENOMEM. Recipients over their output limit are dropped at the next
 * tick; RP_ETOOBIG when natt is over RP_SIO_MAX_ATTACHMENTS. A broadcast the cluster adapter
 * cannot take is counted in its errors (local delivery stands). */
int rp_sio_broadcast(rp_sio_nsp_t *nsp, const rp_sio_bcast_t *opts, const char *event,
                     const char *args, size_t args_len, const rp_sio_bin_t *att, size_t natt);

/* Rooms. Return 0, RP_ETOOBIG past max_rooms_per_socket, UV_ENOMEM. Joining twice is a no-op. */
int rp_sio_join(rp_sio_socket_t *s, const char *room, size_t len);
int rp_sio_leave(rp_sio_socket_t *s, const char *room, size_t len);
int rp_sio_in_room(const rp_sio_socket_t *s, const char *room, size_t len);
/* Calls fn for each room s is in (its own id room excluded). */
void rp_sio_socket_rooms(const rp_sio_socket_t *s,
                         void (*fn)(const char *room, size_t len, void *ud), void *ud);
/* Number of sockets in a room of nsp (0 if none). */
size_t rp_sio_room_size(rp_sio_nsp_t *nsp, const char *room, size_t len);

/* Disconnects s from its namespace (the client gets a DISCONNECT packet; on_disconnect runs
 * with "server namespace disconnect"); with close_transport the whole connection closes. */
void rp_sio_disconnect(rp_sio_socket_t *s, int close_transport);

/* Argument i (0-based) of an event: 1 and its JSON span, 0 if absent, RP_EPROTO. */
int rp_sio_arg(const rp_sio_event_t *ev, size_t i, const char **val, size_t *len);

#endif
