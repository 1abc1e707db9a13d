/* SPDX-License-Identifier: MIT */
#ifndef RP_CLUSTER_CLUSTER_H
#define RP_CLUSTER_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

/* The cluster adapter (Socket.IO's Adapter idea): how a broadcast made on one node reaches
 * the sockets of every other node. sio publishes each broadcast it makes; the adapter
 * delivers the broadcasts of other nodes back through `deliver`, and sio sends them to its
 * local sockets only. Implementations: none (one process, the default), workers (processes
 * of one `serve --workers N` sharing a port), Redis (several machines). This header uses
 * util types only: sio and hub see adapters through it and nothing else.
 *
 * A broadcast travels as its encoded Socket.IO packet text (e.g.
 * `2/pipeline,["file:progress",{...}]`), so a receiving node frames it once and never parses
 * the payload. */

typedef struct rp_cluster rp_cluster_t;

typedef struct rp_cluster_msg {
    const char *nsp;
    size_t nsp_len;
    const char *const *rooms; /* NUL-terminated names; NULL: the whole namespace */
    size_t nrooms;
    const char *const *except;
    size_t nexcept;
    const char *packet; /* Socket.IO packet text, without the Engine.IO type byte */
    size_t packet_len;
} rp_cluster_msg_t;

/* Called on the loop thread for every broadcast another node made. */
typedef void (*rp_cluster_deliver_cb)(void *ud, const rp_cluster_msg_t *m);

/* ---- a shared, ordered event log (adapters that have one: Redis) ----
 *
 * The hub's events go through the cluster instead of being numbered locally: append hands
 * one event to the log, which gives it a cluster-wide id; every node (the one that appended
 * it included) then gets every event back through on_event, in the log's order, and commits,
 * applies and broadcasts it to its own sockets. So every node's state and history are the
 * same and an offset means the same on every node. */
typedef struct rp_cluster_append {
    const char *nsp;  /* the namespace other Socket.IO servers see the broadcast on */
    const char *name; /* the event name */
    const char *head; /* the event's JSON text before its id ("{\"id\":") */
    size_t head_len;
    const char *tail; /* ... and after it (",\"ts\":...}") */
    size_t tail_len;
    const char *const *rooms;
    size_t nrooms;
    int64_t ts_ms;
    int64_t floor;     /* the id given is above this (this node's newest id) */
    const char *dedup; /* NULL, or a key: of all nodes appending one key, only the first counts */
    uint64_t ticket;   /* comes back in on_event on this node */
} rp_cluster_append_t;

/* An event of the shared log. Pointers are valid during the callback. */
typedef struct rp_cluster_event {
    int64_t id;
    int64_t ts_ms;
    const char *name;
    size_t name_len;
    const char *json; /* the event with its id */
    size_t json_len;
    int mine; /* appended by this node; ticket is then its ticket */
    uint64_t ticket;
} rp_cluster_event_t;

/* status 0: appended with id (it comes back through on_event); 1: a duplicate of an earlier
 * dedup key, dropped; RP_EUNAVAIL: not appended (the log is unreachable or the adapter is
 * closing). */
typedef void (*rp_cluster_appended_cb)(void *ud, int status, int64_t id);
typedef void (*rp_cluster_event_cb)(void *ud, const rp_cluster_event_t *e);

/* A connection-state recovery session kept in the cluster, so a client can resume on any node. */
typedef struct rp_cluster_session {
    const char *pid;
    const char *sid;
    const char *nsp;
    const char *const *rooms;
    size_t nrooms;
} rp_cluster_session_t;

/* found 1 with s, or 0 (unknown, expired, or the cluster unreachable) with s NULL. */
typedef void (*rp_cluster_session_cb)(void *ud, int found, const rp_cluster_session_t *s);

typedef struct rp_cluster_ops {
    /* Sends m to every other node. Returns 0, or RP_EUNAVAIL (not connected), RP_EPROTO (not a
     * plain event packet), RP_ETOOBIG or UV_ENOMEM (the local delivery has happened
     * regardless; the broadcast is then missing on the other nodes). */
    int (*publish)(rp_cluster_t *c, const rp_cluster_msg_t *m);
    /* Stops the adapter; its memory is freed in close callbacks on a later loop turn, and
     * nothing may use c after the call. */
    void (*close)(rp_cluster_t *c);
    /* The optional rest (NULL in adapters without a shared log, e.g. workers). */
    /* Appends a hub event to the shared log; cb runs once, later. Returns 0, or right away
     * (cb is not called) RP_EUNAVAIL when the log is unreachable (the caller goes on alone),
     * RP_ETOOBIG or UV_ENOMEM. */
    int (*append)(rp_cluster_t *c, const rp_cluster_append_t *a, rp_cluster_appended_cb cb,
                  void *ud);
    /* 1 while the shared log is reachable and this node is caught up with it. */
    int (*healthy)(rp_cluster_t *c);
    /* Keeps s for ttl_ms (replacing an earlier copy); best effort. */
    void (*session_put)(rp_cluster_t *c, const rp_cluster_session_t *s, uint32_t ttl_ms);
    /* Takes (reads and deletes) the session pid; cb runs once, later. Returns 0, or (cb not
     * called) RP_EINVAL for a pid over 40 bytes, RP_EUNAVAIL, UV_ENOMEM. */
    int (*session_take)(rp_cluster_t *c, const char *pid, rp_cluster_session_cb cb, void *ud);
    /* This node's figures for the cluster-wide views (a JSON object, copied), published
     * periodically; and the latest figures of every live node as a JSON array (borrowed,
     * valid until the next call; "[]" before the first round). */
    void (*set_stats)(rp_cluster_t *c, const char *json, size_t len);
    const char *(*nodes)(rp_cluster_t *c);
} rp_cluster_ops_t;

struct rp_cluster {
    const rp_cluster_ops_t *ops;
    rp_cluster_deliver_cb deliver; /* set by the user of the adapter */
    void *deliver_ud;
    rp_cluster_event_cb on_event; /* set by the hub when the adapter has append */
    void *on_event_ud;
    const char *kind; /* "workers", "redis" */
    /* Counters for metrics. */
    unsigned long published;
    unsigned long delivered;
    unsigned long errors;
};

/* Encodes m into out (room for rp_cluster_msg_size(m) bytes); returns the size. The format is
 * the workers adapter's: u16 nsp_len, nsp, u16 nrooms, {u16 len, name}*, u16 nexcept,
 * {u16 len, name}*, packet to the end. Names over 65535 bytes are refused (0 returned). */
size_t rp_cluster_msg_size(const rp_cluster_msg_t *m);
size_t rp_cluster_msg_encode(const rp_cluster_msg_t *m, uint8_t *out);
/* Decodes buf[0..len) into m; room names are copied NUL-terminated into names (room for len
 * bytes) and pointed to from rooms/except (room for max_names entries in total). Returns 0 or
 * RP_EPROTO for a malformed message (or more names than max_names). */
int rp_cluster_msg_decode(const uint8_t *buf, size_t len, rp_cluster_msg_t *m, char *names,
                          const char **name_ptrs, size_t max_names);

#endif
