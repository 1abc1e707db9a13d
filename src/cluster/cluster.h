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

typedef struct rp_cluster_ops {
    /* Sends m to every other node. Returns 0, or a negative error (the local delivery has
     * happened regardless; the broadcast is then missing on the other nodes). */
    int (*publish)(rp_cluster_t *c, const rp_cluster_msg_t *m);
    /* Stops and frees the adapter. */
    void (*close)(rp_cluster_t *c);
} rp_cluster_ops_t;

struct rp_cluster {
    const rp_cluster_ops_t *ops;
    rp_cluster_deliver_cb deliver; /* set by the user of the adapter */
    void *deliver_ud;
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
 * -1 for a malformed message. */
int rp_cluster_msg_decode(const uint8_t *buf, size_t len, rp_cluster_msg_t *m, char *names,
                          const char **name_ptrs, size_t max_names);

#endif
