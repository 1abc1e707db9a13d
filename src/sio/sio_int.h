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
    rp_map_entry_t entry; /* in srv->saved, by pid */
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
    rp_timerq_node_t timer; /* on srv->replayq while rounds remain */
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
int rp_sio_encode_event(rp_buf_t *b, const rp_sio_nsp_t *nsp, int64_t id, const char *event,
                        const char *args, size_t args_len, size_t natt);
int rp_sio_encode_event_offset(rp_buf_t *b, const rp_sio_nsp_t *nsp, const char *event,
                               const char *args, size_t args_len, size_t natt, const char *offset);
int rp_sio_build_packets(rp_buf_t *b, const rp_sio_bin_t *att, size_t natt, rp_eio_packet_t *pkts);
void rp_sio_release_packets(rp_eio_packet_t *pkts, size_t n);
int rp_sio_send_to(rp_sio_socket_t *s, const rp_eio_packet_t *pkts, size_t n);
int rp_sio_send_buf(rp_sio_socket_t *s, rp_buf_t *b, const rp_sio_bin_t *att, size_t natt);
int rp_sio_send_raw(rp_sio_client_t *c, int type, const char *nsp, size_t nsp_len, const char *json,
                    size_t json_len);

/* ---- room.c: membership, local delivery, broadcast, the cluster hand-off ---- */

room_t *rp_sio_room_find(rp_sio_nsp_t *nsp, const char *name, size_t len);
rp_sio_socket_t *rp_sio_socket_find(rp_sio_nsp_t *nsp, const char *id, size_t len);
void rp_sio_membership_drop(rp_sio_nsp_t *nsp, member_t *m);
const char **rp_sio_socket_room_names(rp_sio_socket_t *s, size_t *n);

/* ---- ack.c: emits to one socket, acks (pending, answered, timed out) ---- */

void rp_sio_ack_free(struct rp_sio_pending_ack *a);
void rp_sio_handle_ack(rp_sio_socket_t *s, const rp_sio_packet_t *p, const rp_sio_bin_t *att,
                       size_t natt);

/* ---- recovery.c: saved sessions, takeover, replay in rounds, cluster lookups ---- */

void rp_sio_saved_free(rp_sio_server_t *srv, saved_t *sv);
void rp_sio_on_saved_expired(rp_timerq_node_t *n);
void rp_sio_keep_session(rp_sio_socket_t *s);
int rp_sio_take_over(rp_sio_client_t *c, rp_sio_socket_t *s, rp_sio_nsp_t *nsp, const char *auth,
                     size_t len);
saved_t *rp_sio_find_saved(rp_sio_server_t *srv, rp_sio_nsp_t *nsp, const char *auth, size_t len,
                           char *offset, size_t offset_cap);
void rp_sio_replay_free(rp_sio_replay_t *r);
int rp_sio_replay_round(rp_sio_replay_t *r);
void rp_sio_on_replay_timer(rp_timerq_node_t *n);
int rp_sio_lookup_elsewhere(rp_sio_client_t *c, rp_sio_nsp_t *nsp, const rp_sio_packet_t *p);
saved_t *rp_sio_adopt_saved(rp_sio_socket_t *s, saved_t *sv);
/* Drops the session s was restoring: no rooms, new sid and pid. Returns 0, or the error of
 * rp_rand_id (the caller then closes s's client). */
int rp_sio_socket_renew(rp_sio_socket_t *s);

/* ---- client.c: Engine.IO glue, CONNECT, dispatch ---- */

void rp_sio_socket_remove(rp_sio_socket_t *s, const char *reason);
void rp_sio_handle_connect(rp_sio_client_t *c, const rp_sio_packet_t *p);
void rp_sio_client_fail(rp_sio_client_t *c, const char *why);
void rp_sio_connect_finish(rp_sio_socket_t *s, const char *auth, size_t auth_len);
void rp_sio_on_connect_timeout(rp_timerq_node_t *n);
/* What the Engine.IO server calls (ud is the rp_sio_server_t). */
extern const rp_eio_callbacks_t rp_sio_eio_callbacks;

/* ---- server.c: registry and lifecycle ---- */

void rp_sio_socket_free(rp_sio_socket_t *s);

#endif
