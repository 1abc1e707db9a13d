/* SPDX-License-Identifier: MIT */
#ifndef RP_SIO_SIO_INT_H
#define RP_SIO_SIO_INT_H

/* What the parts of the Socket.IO server share (private to src/sio): the records behind
 * handlers, pending acks, binary partials, rooms, memberships, saved sessions, replays and
 * cluster lookups, and the functions one part calls in another. Loop thread only. */

#include "sio/server.h"

struct rp_sio_handler {
    struct rp_sio_handler *next;
    rp_sio_event_cb cb;
    void *ud;
    size_t len;
    char name[];
};

struct rp_sio_pending_ack {
    struct rp_sio_pending_ack *next;
    int64_t id;
    rp_sio_ack_cb cb;
    void *ud;
    rp_sio_socket_t *s;
    int has_timer;
    uv_timer_t timer;
};

struct rp_sio_partial {
    rp_sio_packet_t pkt; /* pointers into text */
    char *text;
    rp_sio_bin_t *att;
    size_t natt;
    int discard; /* over the rate: collect the attachments, then drop the packet */
};

typedef struct rp_sio_room {
    rp_map_entry_t entry;
    rp_list_node_t members;
    size_t count;
    size_t name_len;
    char name[];
} room_t;

typedef struct membership {
    rp_list_node_t room_node;
    rp_list_node_t sock_node;
    room_t *room;
    rp_sio_socket_t *sock;
} member_t;

/* A dropped socket's session, kept for the recovery window. */
typedef struct saved_session {
    rp_map_entry_t entry; /* in srv->_saved, by pid */
    rp_timerq_node_t expiry;
    char pid[21];
    char sid[21];
    rp_sio_nsp_t *nsp;
    uint64_t expires; /* uv_now() deadline: may be sooner than the queue's window */
    size_t nrooms;
    char **rooms;
} saved_t;

/* A recovery being replayed in rounds (see rp_sio_recovery_t). */
typedef struct rp_sio_replay {
    rp_timerq_node_t timer; /* on srv->_replayq while rounds remain */
    rp_sio_socket_t *s;
    char offset[64]; /* the last offset sent */
    size_t sent;     /* events sent in this round */
    char *auth;      /* the CONNECT auth, for on_connection once the replay is done */
    size_t auth_len;
} rp_sio_replay_t;

/* A CONNECT held while the cluster is asked for the session it wants to resume. */
typedef struct lookup {
    rp_list_node_t node;  /* in srv->_lookups; self-linked once the server is gone */
    rp_sio_server_t *srv; /* NULL once the server is gone */
    char sid[21];         /* the Engine.IO session that sent the CONNECT */
    char *nsp;            /* owned copies of the CONNECT */
    size_t nsp_len;
    char *data;
    size_t data_len;
} lookup_t;

/* ---- encode.c: the one packet encoder and the sends built on it ---- */

/* Starts an outgoing packet in b (initialised here): headroom, Engine.IO message type.
 * Returns 0 or UV_ENOMEM; b is the caller's to deinit either way. */
int rp_sio_encode_start(rp_buf_t *b);
/* rp_sio_encode_start, then the Socket.IO header of a packet of that type for namespace nsp
 * (id -1: none). Same returns. */
int rp_sio_encode_begin(rp_buf_t *b, int type, unsigned natt, const char *nsp, size_t nsp_len,
                        int64_t id);
/* An EVENT (BINARY_EVENT when natt) `[event,args]` for nsp with ack id (-1: none). Same
 * returns. */
int rp_sio_encode_event(rp_buf_t *b, const rp_sio_nsp_t *nsp, int64_t id, const char *event,
                        const char *args, size_t args_len, size_t natt);
/* rp_sio_encode_event with `,"offset"` as the last argument (offset NULL: none), no ack id. */
int rp_sio_encode_event_offset(rp_buf_t *b, const rp_sio_nsp_t *nsp, const char *event,
                               const char *args, size_t args_len, size_t natt, const char *offset);
/* Makes the Engine.IO packets of the packet in b plus its attachments: pkts[0..1+natt) hold
 * references the caller releases. Consumes b either way. Returns 0, RP_EPROTO, UV_ENOMEM. */
int rp_sio_build_packets(rp_buf_t *b, const rp_sio_bin_t *att, size_t natt, rp_eio_packet_t *pkts);
/* Releases pkts[0..n). */
void rp_sio_release_packets(rp_eio_packet_t *pkts, size_t n);
/* Sends pkts[0..n) to s (rp_eio_session_send's returns). */
int rp_sio_send_to(rp_sio_socket_t *s, const rp_eio_packet_t *pkts, size_t n);
/* Builds b (consumed) and its attachments and sends them to s. RP_ETOOBIG past
 * RP_SIO_MAX_ATTACHMENTS, else rp_sio_send_to's returns. */
int rp_sio_send_buf(rp_sio_socket_t *s, rp_buf_t *b, const rp_sio_bin_t *att, size_t natt);
/* Sends packet `type` for namespace nsp with a raw JSON payload (json_len 0: none) to c.
 * Returns 0 or rp_eio_session_send's errors (the caller closes c on UV_ENOMEM). */
int rp_sio_send_raw(rp_sio_client_t *c, int type, const char *nsp, size_t nsp_len, const char *json,
                    size_t json_len);

/* ---- room.c: membership, local delivery, broadcast, the cluster hand-off ---- */

/* The room `name` of nsp, or NULL. */
room_t *rp_sio_room_find(rp_sio_nsp_t *nsp, const char *name, size_t len);
/* The socket of nsp with that id (connected or not yet freed), or NULL. */
rp_sio_socket_t *rp_sio_socket_find(rp_sio_nsp_t *nsp, const char *id, size_t len);
/* Unlinks m from its socket and room and frees it; the room goes with its last member. */
void rp_sio_membership_drop(rp_sio_nsp_t *nsp, member_t *m);
/* The names of s's rooms (an array the caller frees; the names are the rooms'), or NULL on
 * out-of-memory. */
const char **rp_sio_socket_room_names(rp_sio_socket_t *s, size_t *n);

/* ---- ack.c: emits to one socket, acks (pending, answered, timed out) ---- */

/* Frees a pending ack (after its timer has closed, when it has one). */
void rp_sio_ack_free(struct rp_sio_pending_ack *a);
/* An ACK from the client: runs the pending ack's callback once; unknown ids are ignored. */
void rp_sio_handle_ack(rp_sio_socket_t *s, const rp_sio_packet_t *p, const rp_sio_bin_t *att,
                       size_t natt);

/* ---- recovery.c: saved sessions, takeover, replay in rounds, cluster lookups ---- */

/* Forgets a saved session (map, expiry queue, rooms). */
void rp_sio_saved_free(rp_sio_server_t *srv, saved_t *sv);
/* srv->_recoveryq's expiry: the session's window has passed. */
void rp_sio_on_saved_expired(rp_timerq_node_t *n);
/* Saves s's session for the recovery window (an error is logged: the session is then lost). */
void rp_sio_keep_session(rp_sio_socket_t *s);
/* Ends the live socket whose pid the CONNECT auth presents, when the namespace's hook lets s
 * have it; returns 1 when it did (its session is then saved), else 0. */
int rp_sio_take_over(rp_sio_client_t *c, rp_sio_socket_t *s, rp_sio_nsp_t *nsp, const char *auth,
                     size_t len);
/* The saved session the CONNECT auth asks to resume, or NULL; copies its offset out. */
saved_t *rp_sio_find_saved(rp_sio_server_t *srv, rp_sio_nsp_t *nsp, const char *auth, size_t len,
                           char *offset, size_t offset_cap);
/* Ends a replay in rounds (r may be NULL). */
void rp_sio_replay_free(rp_sio_replay_t *r);
int rp_sio_replay_round(rp_sio_replay_t *r);
/* srv->_replayq's timer: the next round once the peer has read most of the last one. */
void rp_sio_on_replay_timer(rp_timerq_node_t *n);
/* Holds a CONNECT that asks for a pid unknown here while the cluster is asked for it:
 * returns 1 when held, 0 to handle it now. */
int rp_sio_lookup_elsewhere(rp_sio_client_t *c, rp_sio_nsp_t *nsp, const rp_sio_packet_t *p);
/* Gives s the ids of sv and returns sv, or NULL when there is none or its sid is live. */
saved_t *rp_sio_adopt_saved(rp_sio_socket_t *s, saved_t *sv);
/* Drops the session s was restoring: no rooms, new sid and pid. Returns 0, or the error of
 * rp_rand_id (the caller then closes s's client). */
int rp_sio_socket_renew(rp_sio_socket_t *s);

/* ---- client.c: Engine.IO glue, CONNECT, dispatch ---- */

/* Takes s out of its namespace, rooms and client, fails its pending acks, tells the
 * namespace, and frees it at the next tick. */
void rp_sio_socket_remove(rp_sio_socket_t *s, const char *reason);
/* A CONNECT from c: refuses it, resumes a saved session, or opens a fresh socket. */
void rp_sio_handle_connect(rp_sio_client_t *c, const rp_sio_packet_t *p);
/* Closes c for a protocol error (or an out-of-memory), logged at info with why. */
void rp_sio_client_fail(rp_sio_client_t *c, const char *why);
/* The end of a CONNECT: the pid is registered, the reply sent, on_connection run. */
void rp_sio_connect_finish(rp_sio_socket_t *s, const char *auth, size_t auth_len);
/* srv->_connectq's expiry: a client that sent no CONNECT in time is closed. */
void rp_sio_on_connect_timeout(rp_timerq_node_t *n);
/* What the Engine.IO server calls (ud is the rp_sio_server_t). */
extern const rp_eio_callbacks_t rp_sio_eio_callbacks;

/* ---- server.c: registry and lifecycle ---- */

/* Frees a socket that left (and its user data, with the namespace's free function). */
void rp_sio_socket_free(rp_sio_socket_t *s);

#endif
