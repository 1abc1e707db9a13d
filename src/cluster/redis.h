/* SPDX-License-Identifier: MIT */
#ifndef RP_CLUSTER_REDIS_H
#define RP_CLUSTER_REDIS_H

#include <uv.h>

#include "cluster/cluster.h"

/* The Redis adapter: several ragpulse nodes (and Node socket.io servers using
 * @socket.io/redis-streams-adapter) share one Redis stream, "socket.io" by default. Broadcasts
 * and hub events are stream entries in that adapter's format; one connection runs commands,
 * a second one reads the stream with XREAD BLOCK. Both go through hiredis's libuv adapter:
 * nothing blocks the loop. When Redis is unreachable the adapter says so (healthy() 0),
 * keeps trying every second, and resumes reading where it stopped.
 *
 * url: redis://HOST[:PORT][/DB]. Returns NULL with err filled on a bad URL, out of memory or a
 * timer libuv refuses (Redis being down at start is not an error: the node starts degraded).
 * Loop thread only. */
rp_cluster_t *rp_cluster_redis_new(uv_loop_t *loop, const char *url, char *err, size_t errlen);

/* Parses url into host (room for hostcap), port and db. Returns 0 or RP_EINVAL. */
int rp_cluster_redis_parse_url(const char *url, char *host, size_t hostcap, int *port, int *db);

#endif
