/* SPDX-License-Identifier: MIT */
/* The hub's private header: the struct its parts share and the calls between them. Nothing
 * outside src/hub includes it. Each part owns the fields its comment names; the event road
 * (hub.c) is the only writer of next_id, committed and the history. Loop thread only. */
#ifndef RP_HUB_HUB_INT_H
#define RP_HUB_HUB_INT_H

#include <jansson.h>
#include <stdint.h>

#include "cluster/cluster.h"
#include "hub/hub.h"
#include "util/hist.h"
#include "util/list.h"
#include "util/map.h"

#define MAX_TYPE_NSPS 16

/* The idempotency keys kept (history.c), and the longest key. */
#define RP_DEDUP_KEYS    100000
#define RP_DEDUP_KEY_MAX 128

/* One event in the in-memory history. */
typedef struct hist {
    int64_t id;
    rp_event_type_t type;
    char *json; /* owned, the normalised event */
    size_t len;
    char pipeline_id[129];
    char pipeline_type[65];
    char *file_id; /* owned, NULL for pipeline events */
} hist_t;

/* A held GET /api/rag-status (long-poll). */
typedef struct waiter {
    rp_list_node_t node;
    rp_http_conn_t *hc;
    rp_hub_t *hub;
    int64_t since; /* -1: snapshot mode (ETag), else deltas after this id */
    int64_t version_seen;
    int64_t deadline;
    rp_principal_t *who; /* owned; NULL with auth off */
} waiter_t;

/* Where an event came from, for the commit-latency histogram (hub->via while ingesting). */
enum {
    VIA_OTHER,
    VIA_HTTP,
    VIA_SOCKET
};

/* The TypeScript client's reasons for switching to HTTP (X-RagPulse-Fallback), bounded: any
 * other value counts as "other". */
enum {
    FB_CONNECT_TIMEOUT,
    FB_SOCKET_ERRORS,
    FB_ROLLOUT,
    FB_OTHER,
    FB_COUNT
};
extern const char *const rp_hub_fallback_names[FB_COUNT];

/* Where a refusal happened, and which (hub->auth_refused). */
enum {
    WHERE_HTTP,
    WHERE_SOCKET
};
enum {
    DENY_UNAUTHORIZED,
    DENY_FORBIDDEN
};

/* The most files one page of GET /api/pipelines/ID/files or `files` holds. */
#define FILES_PAGE_MAX 1000

/* At most one delivery sample in flight, and one started per this many ns. */
#define DELIVERY_SAMPLE_NS 100000000ULL

enum {
    REFUSED_INVALID,
    REFUSED_JSON,
    REFUSED_CONTENT_TYPE,
    REFUSED_TOO_BIG,
    REFUSED_COUNT
};
extern const char *const rp_hub_refused_names[REFUSED_COUNT];

/* Several nodes on one shared log (cluster.c; docs/architecture.md "Several nodes on Redis").
 * Owned by cluster.c: the rest of the hub asks it through the rp_hub_cluster_* calls. */
typedef struct rp_hub_cluster {
    rp_cluster_t *log;      /* borrowed from sio; NULL unless it has a shared log */
    rp_list_node_t pending; /* cl_pending_t: appends waiting for their event to come back */
    uint64_t ticket;
    unsigned checks;
    unsigned long local;   /* events numbered here while the log was unreachable */
    unsigned long skipped; /* log events at or below an id this node had already used */
} rp_hub_cluster_t;

struct rp_hub {
    rp_sio_server_t *sio; /* borrowed */
    rp_net_t *net;        /* borrowed */
    rp_store_t *store;    /* owned; NULL: memory only */
    uv_timer_t prune_timer;
    size_t in_flight;        /* events submitted to the store (or deferred), not yet committed */
    rp_list_node_t deferred; /* pending_t waiting for defer_idle (no store) */
    uv_idle_t defer_idle;
    rp_hub_config_t cfg;
    rp_hub_state_t state;
    int64_t next_id;
    int64_t committed;        /* newest committed id: the version viewers and ETags see */
    int64_t snapshot_version; /* the state snapshot loaded at start covers events up to here */
    unsigned checks;
    unsigned long store_failures;
    hist_t *ring;
    size_t ring_cap;
    size_t ring_len;
    size_t ring_head; /* index of the oldest */
    rp_list_node_t waiters;
    int wake_pending;
    uv_timer_t check_timer;
    uv_timer_t beat_timer;
    int closing;              /* handles still closing; the last close frees the hub */
    rp_hub_close_cb close_cb; /* rp_hub_close's, may be NULL */
    rp_sio_nsp_t *nsp_pipeline;
    rp_sio_nsp_t *nsp_root;
    rp_sio_nsp_t *type_nsps[MAX_TYPE_NSPS];
    size_t ntype_nsps;
    /* Metrics. */
    unsigned long events_in[RP_EV_COUNT];
    unsigned long refused[REFUSED_COUNT];
    unsigned long http_fallback;
    unsigned long fallbacks[FB_COUNT]; /* client switches to HTTP, by the reason it gave */
    int via;                           /* VIA_… of the events being ingested now */
    rp_hist_t commit_lat[2];           /* taken to committed: [http, socket] */
    rp_hist_t delivery_lat;            /* committed to written to every local recipient */
    uint64_t sample_t0;                /* the sample in flight's commit (uv_hrtime) */
    uint64_t sample_at;                /* when the last sample started */
    unsigned long subscribes;
    unsigned long synthetic;
    unsigned long auth_refused[2][2]; /* [http, socket][unauthorized, forbidden] */
    unsigned long rate_limited;       /* events refused over a producer's rate */
    unsigned long subs_refused;       /* subscribes past max_subscriptions or max_rooms */
    unsigned long files_refused[RP_HUB_LIMIT_COUNT]; /* events past a bound on files in flight */
    rp_map_t producers;                              /* rate buckets by producer */
    json_t *dedup;     /* owned: "pipeline_id\x1fkey" -> committed id */
    char **dedup_ring; /* owned: the keys of dedup, oldest at dedup_head */
    size_t dedup_head;
    size_t dedup_len;
    int64_t stats_at;    /* last admin:stats */
    rp_hub_cluster_t cl; /* the Redis road: cluster.c alone reads or writes it */
};

/* An event between submission and commit. */
typedef struct pending {
    rp_hub_t *hub;
    rp_event_type_t type;
    json_t *ev;
    char *json; /* malloc'd by jansson */
    size_t len;
    int64_t id;
    rp_hub_done_cb done;
    void *ud;
    int via;             /* VIA_… */
    uint64_t t_in;       /* uv_hrtime when the hub took the event */
    int64_t ts_ms;       /* the event's time, for the state (the JSON carries it as text) */
    rp_list_node_t node; /* in hub->deferred while it waits for its turn (no store) */
} pending_t;

/* How an event enters the road (rp_hub_ingest_as); a NULL rp_hub_ingest_opts_t is all zero. */
typedef struct rp_hub_ingest_opts {
    const char *dedup; /* the watchdog's key for a synthetic event: the cluster keeps one */
    int local;         /* number it here, not on the shared log (the log is unreachable) */
    int *limit;        /* set to the bound when RP_ETOOBIG (may be NULL) */
} rp_hub_ingest_opts_t;

/* cluster.c */
/* Appends a validated event to the shared log (numbered there, committed when it comes
 * back). Returns 0, RP_EUNAVAIL when there is no shared log or it is unreachable (the caller
 * numbers the event here; counted), or another error (nothing sent). */
int rp_hub_cluster_ingest(rp_hub_t *hub, rp_event_type_t t, const json_t *in, const char *dedup,
                          rp_hub_done_cb done, void *ud);
/* 1 when broadcasts stay local (every node makes its own from the shared log). */
int rp_hub_cluster_shared(const rp_hub_t *hub);
/* 1 when no append waits for its event to come back. */
int rp_hub_cluster_idle(const rp_hub_t *hub);
void rp_hub_cluster_session_put(rp_hub_t *hub, rp_sio_socket_t *s);
void rp_hub_cluster_session_del(rp_hub_t *hub, rp_sio_socket_t *s, const char *reason);
void rp_hub_cluster_check(rp_hub_t *hub);
/* Sets up hub->cl empty (before anything can fail). */
void rp_hub_cluster_init(rp_hub_t *hub);
/* Takes the shared log's events (when sio's adapter has one); nothing fails. */
void rp_hub_cluster_attach(rp_hub_t *hub);
void rp_hub_cluster_detach(rp_hub_t *hub);
void rp_hub_cluster_health(rp_hub_t *hub, json_t *j);
void rp_hub_cluster_metrics(rp_hub_t *hub, rp_buf_t *b);

/* history.c */
hist_t *rp_hub_hist_at(rp_hub_t *hub, size_t i);
int64_t rp_hub_dedup_find(const rp_hub_t *hub, const json_t *ev);
int rp_hub_dedup_validate(const json_t *ev, rp_event_error_t *err);
void rp_hub_dedup_free(rp_hub_t *hub);
/* Frees the events of the in-memory history and the ring. */
void rp_hub_history_free(rp_hub_t *hub);
void rp_hub_hist_push(rp_hub_t *hub, int64_t id, rp_event_type_t type, char *json, size_t len,
                      const json_t *ev);
json_t *rp_hub_events_since(rp_hub_t *hub, int64_t since, int *reset);

/* http_api.c */
void rp_hub_respond_json(rp_hub_t *hub, rp_http_conn_t *hc, int status, json_t *j,
                         const char *extra);
void rp_hub_respond_error(rp_hub_t *hub, rp_http_conn_t *hc, int status, const char *msg,
                          const rp_event_error_t *err, long index);
void rp_hub_waiter_finish(waiter_t *w);
void rp_hub_held_abort(rp_http_conn_t *hc);

/* http_events.c */
void rp_hub_post_events(rp_hub_t *hub, rp_http_conn_t *hc, rp_http_request_t *req,
                        const rp_principal_t *who);

/* hub.c */
/* Logs a failed call the hub goes on without (rc < 0): rp_hub_failed at error (ours: a
 * broadcast, the store), rp_hub_peer_failed at info (one socket's queue or room). */
void rp_hub_failed(int rc, const char *what);
void rp_hub_peer_failed(int rc, const char *what);
int64_t rp_hub_now_ms(void);
const char *rp_hub_legacy_produced_name(const char *name, json_t *in);
int rp_hub_admit(rp_hub_t *hub, rp_event_type_t t, const json_t *in, rp_event_error_t *err,
                 int *reserved, int *limit);
json_t *rp_hub_limit_json(const rp_event_error_t *err, int limit);
/* rp_hub_ingest with opts (may be NULL); the same returns. */
int rp_hub_ingest_as(rp_hub_t *hub, const json_t *in, rp_event_error_t *err, rp_hub_done_cb done,
                     void *ud, const rp_hub_ingest_opts_t *opts);
void rp_hub_settle_reservations(rp_hub_t *hub);
/* Commits pe (numbered, normalised, pe->ts_ms set): to the store, or on the next loop turn
 * without one. Returns 0, or an error with pe freed (done not called). */
int rp_hub_submit(rp_hub_t *hub, pending_t *pe);

/* metrics.c */
json_t *rp_hub_admin_stats(rp_hub_t *hub);
void rp_hub_metrics(rp_hub_t *hub, rp_http_conn_t *hc);

/* policy.c */
const rp_principal_t *rp_hub_socket_principal(const rp_sio_socket_t *s);
void rp_hub_principal_release(void *p);
int rp_hub_room_allowed(const rp_principal_t *p, const char *room);
int rp_hub_restore_room_allowed(rp_sio_socket_t *s, const char *room, void *ud);
int rp_hub_take_over_allowed(rp_sio_socket_t *s, rp_sio_socket_t *old, void *ud);
void rp_hub_filter_visible(json_t *j, const char *member, const rp_principal_t *p);
int rp_hub_expired(const rp_hub_t *hub, const rp_principal_t *p);
int rp_hub_on_hub_connect(rp_sio_socket_t *s, const char *auth, size_t auth_len, rp_buf_t *err,
                          void *ud);
void rp_hub_respond_denied(rp_hub_t *hub, rp_http_conn_t *hc, int kind, const char *why);
rp_principal_t *rp_hub_http_principal(rp_hub_t *hub, rp_http_conn_t *hc,
                                      const rp_http_request_t *req, int *denied);
uint64_t rp_hub_producer_take(rp_hub_t *hub, const char *who, double n);
void rp_hub_producers_prune(rp_hub_t *hub);
void rp_hub_producers_clear(rp_hub_t *hub);
void rp_hub_http_producer_key(rp_http_conn_t *hc, const rp_principal_t *p, char *out,
                              size_t outlen);

/* sio_api.c */
json_t *rp_hub_snapshot(rp_hub_t *hub, const char *id, const char *type);
json_t *rp_hub_files_page(rp_hub_t *hub, const char *pid, const char *type, const char *after,
                          long long limit, int *status, char *msg, size_t msglen);
json_t *rp_hub_error_json(const char *error, const rp_event_error_t *err);
void rp_hub_auto_subscribe(rp_hub_t *hub, rp_sio_socket_t *s);
json_t *rp_hub_with_store_reason(rp_hub_t *hub, json_t *j);
/* Creates (or finds) the hub's namespaces on sio: /pipeline, / and the type namespaces.
 * Nothing points at the hub yet. Returns 0 or UV_ENOMEM. */
int rp_hub_sio_namespaces(rp_hub_t *hub);
/* Fills all (2 + MAX_TYPE_NSPS) with the hub's namespaces; returns how many. */
size_t rp_hub_sio_all(rp_hub_t *hub, rp_sio_nsp_t **all);
/* Registers the hub's handlers on its namespaces. Returns 0, or UV_ENOMEM with none left
 * pointing at the hub. */
int rp_hub_sio_attach(rp_hub_t *hub);
/* Points every handler rp_hub_sio_attach set away from the hub (events ignored, CONNECT
 * refused); the sockets' principals are still released on close. */
void rp_hub_sio_detach(rp_hub_t *hub);

/* store_glue.c */
/* Rebuilds the state, history, idempotency keys and recovery sessions from hub->store.
 * Returns 0, or a negative code with err filled. */
int rp_hub_store_load(rp_hub_t *hub, char *err, size_t errlen);
/* Starts retention (prune_timer) when a bound is set. */
void rp_hub_store_start(rp_hub_t *hub);
void rp_hub_collect_room(const char *room, size_t len, void *ud);
void rp_hub_persist_session(rp_hub_t *hub, rp_sio_socket_t *s);
void rp_hub_on_viewer_connection(rp_sio_socket_t *s, const char *auth, size_t auth_len, void *ud);
void rp_hub_on_viewer_disconnect(rp_sio_socket_t *s, const char *reason, void *ud);

/* watchdog.c */
/* Starts the watchdog (check_timer) and the hub heartbeat (beat_timer); both unref'd. */
void rp_hub_watchdog_start(rp_hub_t *hub);
/* Before each flush: answers the long-polls that events of this loop turn woke. */
void rp_hub_on_tick(void *ud);

/* state.c, for state_json.c (the import builds the state with the same calls as apply). */
void rp_hub_state_stage_count(rp_hub_pipeline_t *p, rp_hub_file_t *f, int delta);
rp_hub_pipeline_t *rp_hub_state_pipeline_get(rp_hub_state_t *st, const char *id, const char *type);
rp_hub_file_t *rp_hub_state_file_get(rp_hub_state_t *st, rp_hub_pipeline_t *p, const json_t *jf,
                                     int64_t ts);
json_t *rp_hub_state_ts_json(int64_t ms);

#endif
