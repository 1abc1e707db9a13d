/* SPDX-License-Identifier: MIT */
#ifndef RP_HUB_HUB_H
#define RP_HUB_HUB_H

#include <jansson.h>
#include <stdint.h>

#include "hub/auth.h"
#include "hub/event.h"
#include "hub/state.h"
#include "sio/server.h"
#include "store/store.h"

/* The pipeline status hub: what makes ragpulse more than a protocol server.
 *
 * Producers send events (Socket.IO on /pipeline, acked with the event id, or POST
 * /api/events); the hub validates each, gives it a monotonic id and a timestamp, applies it
 * to the live state, keeps it in the history, and fans it out to the viewers subscribed to
 * its pipeline, its pipeline type, or everything. Viewers `subscribe` and get the present
 * state in the ack, then events. The HTTP API serves the same state for clients that cannot
 * hold a socket (snapshot with ETag, deltas since an event id, long-poll), plus health,
 * socket info, history, failure groups and Prometheus metrics. The hub notices silence
 * (heartbeat timeout → pipeline:offline) and stalled files (→ file:failed "stalled").
 *
 * Loop thread only. */

typedef struct rp_hub_config {
    const char *const *type_namespaces; /* "/google_drive", ...: one namespace per type */
    size_t ntype_namespaces;
    int legacy_events;                 /* also emit pipeline:status, pipeline:file_* */
    double heartbeat_timeout;          /* x the pipeline's heartbeat interval, default 3 */
    double default_heartbeat_interval; /* s, for pipelines that never said, default 30 */
    uint32_t stall_timeout_ms;         /* a file with no progress this long fails, default 600000 */
    uint32_t server_heartbeat_ms;      /* hub heartbeat to viewers, default 30000 */
    uint32_t check_interval_ms;        /* how often silence and stalls are checked, default 250 */
    size_t history;                    /* events kept in memory, default 10000 */
    int websocket_rollout;             /* 0..100: percent of client ids told to use the websocket */
    size_t max_batch;                  /* events in one POST /api/events, default 1000 */
    uint32_t max_wait_s;               /* longest long-poll, default 60 */
    int recovery;                      /* connection-state recovery on the viewer namespaces */
    uint32_t recovery_window_ms;       /* how long a dropped session is kept (sio's window) */
    int64_t retain_events;             /* keep at most this many events in the store (0: all) */
    double retain_days;                /* and none older (0: no limit) */
    /* Who may do what (see hub/auth.h). NULL: auth off, everyone may do everything (only
     * allowed while every listen address is loopback: cli checks). Borrowed. */
    const rp_auth_t *auth;
    int metrics_public;         /* /metrics without a token even with auth on */
    size_t max_subscriptions;   /* rooms one socket may subscribe to, default 64 */
    size_t max_files_in_flight; /* files in flight in one pipeline, default 10000 (0: no bound) */
    size_t max_files_total;     /* files in flight in all pipelines, default 200000 (0: no bound) */
    double event_rate;          /* events a second per producer (0: unlimited) */
    double event_burst;
    rp_http_server_t *http; /* borrowed, for its counters in /metrics (may be NULL) */
} rp_hub_config_t;

void rp_hub_config_defaults(rp_hub_config_t *cfg);

typedef struct rp_hub rp_hub_t;

/* Creates the hub on sio's server: namespaces /pipeline, /, and the type namespaces, their
 * handlers, and timers. With a store (taken over; NULL keeps events in memory only), the
 * state, history and recovery sessions are rebuilt from it first, every event is committed
 * before it is applied, broadcast and acked, and history reads come from it. Returns NULL
 * on failure (err says why). */
rp_hub_t *rp_hub_new(rp_sio_server_t *sio, rp_net_t *net, const rp_hub_config_t *cfg,
                     rp_store_t *store, char *err, size_t errlen);
typedef void (*rp_hub_close_cb)(rp_hub_t *hub);
/* Finishes the store's queued writes and the events accepted without one, answers held
 * requests, points the namespaces' handlers away from the hub, and closes its handles. The
 * memory stays valid until cb (may be NULL) has run from the loop; run the loop afterwards. */
void rp_hub_close(rp_hub_t *hub, rp_hub_close_cb cb);
/* Serves the hub's HTTP routes; returns 1 if req was one of them. */
int rp_hub_route(rp_hub_t *hub, rp_http_conn_t *hc, rp_http_request_t *req);
/* The paths whose GET rp_hub_route answers to a page of any Origin, with
 * "Access-Control-Allow-Origin: *": /api/socket/info and /api/socket/test, which hold no
 * secrets and tell a page how (and whether) it may connect. NULL-terminated; for the HTTP
 * server's open_paths. */
extern const char *const rp_hub_open_paths[];

/* Completion of an accepted event: status 0 once it is stored (and applied, broadcast), or
 * negative when the store could not take it (nothing was applied or sent). */
typedef void (*rp_hub_done_cb)(void *ud, int status, int64_t id);

/* Validates one producer event (the caller keeps its reference to `in`) and submits it.
 * Returns 0 (done runs later, from the loop, never before this returns), RP_EINVAL with err
 * filled (refused: nothing stored or sent, done not called), RP_ETOOBIG with err filled when the
 * event would add a file past max_files_in_flight or max_files_total (refused the same way;
 * events for files already in flight always pass), UV_ENOMEM, or the store's or the
 * cluster's error (nothing sent). */
int rp_hub_ingest(rp_hub_t *hub, const json_t *in, rp_event_error_t *err, rp_hub_done_cb done,
                  void *ud);

/* The id of the newest event (0 before any). */
int64_t rp_hub_version(const rp_hub_t *hub);

#endif
