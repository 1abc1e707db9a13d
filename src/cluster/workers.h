/* SPDX-License-Identifier: MIT */
#ifndef RP_CLUSTER_WORKERS_H
#define RP_CLUSTER_WORKERS_H

#include <uv.h>

#include "cluster/cluster.h"

/* The workers adapter: the processes of one `--workers N` server, sharing a port with
 * SO_REUSEPORT, exchange broadcasts over a full mesh of Unix stream sockets made by their
 * supervisor before forking. Frames are a u32 length and an rp_cluster_msg. No outside
 * service is involved.
 *
 * peer_fds[i] is the socket to worker i (-1 at index self); the adapter takes them over, also
 * when it fails. Returns NULL on out-of-memory or when a socket cannot be watched (logged; the
 * sockets are then closed). Loop thread only. */
rp_cluster_t *rp_cluster_workers_new(uv_loop_t *loop, int self, int n, const int *peer_fds);

#endif
