/* SPDX-License-Identifier: MIT */
#ifndef RP_WATCH_SINK_H
#define RP_WATCH_SINK_H

#include <stddef.h>
#include <uv.h>

#include "watch/watch.h"

/* The network sink of `ragpulse watch --hub URL`: every event goes into an on-disk outbox
 * (outbox.c) and from there, in order and in batches, to URL's /api/events through the HTTP
 * client (sink.c). Events survive a hub outage and a restart of the watcher, bounded by
 * max_bytes; each is stored by the hub exactly once (see sink.c). Loop thread only. */

/* Opens (or creates) the outbox queue_path and its queue_path.state. hub_url is parsed by
 * util/url.h (an IPv6 literal and a path prefix work); token, when not NULL or "", is sent
 * as a Bearer token; user_agent names the program in the User-Agent header. Returns the
 * sink, or NULL with err filled (a sentence for the user). */
rp_watch_sink_t *rp_watch_net_sink_new(uv_loop_t *loop, const char *hub_url, const char *token,
                                       const char *pipeline_id, const char *queue_path,
                                       size_t max_bytes, const char *user_agent, char *err,
                                       size_t errlen);
/* Frees the sink after its close callback has run (or when it never started sending). */
void rp_watch_net_sink_free(rp_watch_sink_t *s);

#endif
