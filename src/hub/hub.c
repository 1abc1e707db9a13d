/* SPDX-License-Identifier: MIT */
/* The hub: ingest, fan-out, subscriptions, the HTTP API, recovery, and the watchdogs. Every
 * event goes through rp_hub_ingest in one order: validate, id and ts, commit to the store
 * (off the loop, grouped), then apply to state, keep in history, broadcast with its id as
 * offset, wake long-polls, ack. Synthetic events (offline on silence, failed when stalled)
 * take the same road, so viewers, the HTTP path and a restart never disagree. */
#include "hub/hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "util/alloc.h"
#include "util/bucket.h"
#include "util/err.h"
#include "util/hist.h"
#include "util/log.h"

#define MAX_TYPE_NSPS 16

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
enum { VIA_OTHER, VIA_HTTP, VIA_SOCKET };

/* The TypeScript client's reasons for switching to HTTP (X-RagPulse-Fallback), bounded: any
 * other value counts as "other". */
enum { FB_CONNECT_TIMEOUT, FB_SOCKET_ERRORS, FB_ROLLOUT, FB_OTHER, FB_COUNT };
static const char *const fallback_names[] = {"connect_timeout", "socket_errors", "rollout", "other"};

/* At most one delivery sample in flight, and one started per this many ns. */
#define DELIVERY_SAMPLE_NS 100000000ULL

enum { REFUSED_INVALID, REFUSED_JSON, REFUSED_CONTENT_TYPE, REFUSED_TOO_BIG, REFUSED_COUNT };
static const char *const refused_names[] = {"invalid_event", "malformed_json", "content_type", "too_large"};

struct rp_hub {
    rp_sio_server_t *sio; /* borrowed */
    rp_net_t *net;        /* borrowed */
    rp_store_t *store;    /* owned; NULL: memory only */
    uv_timer_t prune_timer;
    size_t in_flight;     /* events submitted to the store, not yet committed */
    rp_hub_config_t cfg;
    rp_hub_state_t state;
    int64_t next_id;
    int64_t committed; /* newest committed id: the version viewers and ETags see */
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
    int closing;
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
    rp_map_t producers;               /* rate buckets by producer */
    json_t *dedup;                    /* owned: "pipeline_id\x1fkey" -> committed id */
    char **dedup_ring;                /* owned: the keys of dedup, oldest at dedup_head */
    size_t dedup_head;
    size_t dedup_len;
    int64_t stats_at;                 /* last admin:stats */
    /* Several nodes (see the cluster section at the end). */
    rp_cluster_t *cluster; /* borrowed from sio; NULL unless it has a shared log */
    rp_list_node_t cl_pending;
    uint64_t cl_ticket;
    int cl_bypass;         /* rp_hub_ingest numbers locally (the log is unreachable) */
    const char *cl_dedup;  /* the watchdog's key for the event being synthesized */
    unsigned cl_checks;
    unsigned long cl_local;    /* events numbered here while the log was unreachable */
    unsigned long cl_skipped;  /* log events at or below an id this node had already used */
};

void rp_hub_config_defaults(rp_hub_config_t *cfg)
{
    static const char *const types[] = {"/google_drive", "/local_files"};
    memset(cfg, 0, sizeof(*cfg));
    cfg->type_namespaces = types;
    cfg->ntype_namespaces = 2;
    cfg->heartbeat_timeout = 3;
    cfg->default_heartbeat_interval = 30;
    cfg->stall_timeout_ms = 600000;
    cfg->server_heartbeat_ms = 30000;
    cfg->check_interval_ms = 250;
    cfg->history = 10000;
    cfg->websocket_rollout = 100;
    cfg->max_batch = 1000;
    cfg->max_wait_s = 60;
    cfg->recovery = 1;
    cfg->recovery_window_ms = 120000;
    cfg->max_subscriptions = 64;
    cfg->max_files_in_flight = 10000;
    cfg->max_files_total = 200000;
}

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int64_t rp_hub_version(const rp_hub_t *hub)
{
    return hub->committed;
}

/* ---- history ---- */

static hist_t *hist_at(rp_hub_t *hub, size_t i)
{
    return &hub->ring[(hub->ring_head + i) % hub->ring_cap];
}

/* ---- idempotency keys: meta.idempotency_key (docs/architecture.md "Idempotency keys") ----
 * The keys of the last RP_DEDUP_KEYS committed events, per pipeline, each with its id: a
 * POST /api/events repeating one is answered with that id and not stored again. Filled on
 * commit and on the replay at start, so a restart keeps the window the store still holds. */

#define RP_DEDUP_KEYS 100000
#define RP_DEDUP_KEY_MAX 128

/* The idempotency key of producer event ev, or NULL when it has none. */
static const char *dedup_key_of(const json_t *ev)
{
    return json_string_value(json_object_get(json_object_get(ev, "meta"), "idempotency_key"));
}

/* Writes the map's key for ev into out (the pipeline scopes it); returns 0, or -1 when ev has
 * no key. */
static int dedup_slot(const json_t *ev, char *out, size_t outlen)
{
    const char *k = dedup_key_of(ev);
    const char *pid = json_string_value(json_object_get(ev, "pipeline_id"));
    if (k == NULL || pid == NULL)
        return -1;
    snprintf(out, outlen, "%s\x1f%s", pid, k);
    return 0;
}

/* The id a committed event with ev's key got, or 0 when none in the window has it. */
static int64_t dedup_find(const rp_hub_t *hub, const json_t *ev)
{
    char slot[160 + RP_DEDUP_KEY_MAX];
    if (hub->dedup == NULL || dedup_slot(ev, slot, sizeof(slot)) < 0)
        return 0;
    return json_integer_value(json_object_get(hub->dedup, slot));
}

/* Remembers committed event ev's key (if any) with its id, forgetting the oldest past the
 * window. Out of memory only shortens the window. */
static void dedup_remember(rp_hub_t *hub, const json_t *ev, int64_t id)
{
    char slot[160 + RP_DEDUP_KEY_MAX];
    if (hub->dedup == NULL || dedup_slot(ev, slot, sizeof(slot)) < 0 || json_object_get(hub->dedup, slot))
        return;
    char *copy = rp_strndup(slot, strlen(slot));
    if (copy == NULL || json_object_set_new(hub->dedup, slot, json_integer(id)) < 0) {
        rp_free(copy);
        return;
    }
    if (hub->dedup_len == RP_DEDUP_KEYS) {
        char *old = hub->dedup_ring[hub->dedup_head];
        json_object_del(hub->dedup, old);
        rp_free(old);
        hub->dedup_head = (hub->dedup_head + 1) % RP_DEDUP_KEYS;
        hub->dedup_len--;
    }
    hub->dedup_ring[(hub->dedup_head + hub->dedup_len) % RP_DEDUP_KEYS] = copy;
    hub->dedup_len++;
}

/* Checks ev's idempotency key: absent, or a string of 1 to RP_DEDUP_KEY_MAX characters.
 * Returns 0, or -1 with err filled. */
static int dedup_validate(const json_t *ev, rp_event_error_t *err)
{
    const json_t *k = json_object_get(json_object_get(ev, "meta"), "idempotency_key");
    if (k == NULL || (json_is_string(k) && json_string_length(k) >= 1 && json_string_length(k) <= RP_DEDUP_KEY_MAX))
        return 0;
    snprintf(err->field, sizeof(err->field), "meta.idempotency_key");
    snprintf(err->rule, sizeof(err->rule), "must be a string of 1 to %d bytes", RP_DEDUP_KEY_MAX);
    return -1;
}

static void dedup_free(rp_hub_t *hub)
{
    for (size_t i = 0; i < hub->dedup_len; i++)
        rp_free(hub->dedup_ring[(hub->dedup_head + i) % RP_DEDUP_KEYS]);
    rp_free(hub->dedup_ring);
    json_decref(hub->dedup);
    hub->dedup_ring = NULL;
    hub->dedup = NULL;
}

static void hist_push(rp_hub_t *hub, int64_t id, rp_event_type_t type, char *json, size_t len,
                      const json_t *ev)
{
    dedup_remember(hub, ev, id);
    hist_t *h;
    if (hub->ring_len == hub->ring_cap) {
        h = hist_at(hub, 0);
        free(h->json);
        rp_free(h->file_id);
        hub->ring_head = (hub->ring_head + 1) % hub->ring_cap;
        hub->ring_len--;
    }
    h = &hub->ring[(hub->ring_head + hub->ring_len) % hub->ring_cap];
    h->id = id;
    h->type = type;
    h->json = json;
    h->len = len;
    snprintf(h->pipeline_id, sizeof(h->pipeline_id), "%s",
             json_string_value(json_object_get(ev, "pipeline_id")));
    snprintf(h->pipeline_type, sizeof(h->pipeline_type), "%s",
             json_string_value(json_object_get(ev, "pipeline_type")));
    const char *fid = json_string_value(json_object_get(json_object_get(ev, "file"), "id"));
    h->file_id = fid ? rp_strndup(fid, strlen(fid)) : NULL;
    hub->ring_len++;
}

/* ---- fan-out ---- */

static const char *legacy_name(rp_event_type_t t)
{
    switch (t) {
    case RP_EV_PIPELINE_ONLINE:
    case RP_EV_PIPELINE_OFFLINE:
    case RP_EV_STATUS_UPDATE:
        return "pipeline:status";
    case RP_EV_FILE_PROCESSING:
        return "pipeline:file_processing_started";
    case RP_EV_FILE_COMPLETED:
        return "pipeline:file_completed";
    case RP_EV_FILE_FAILED:
        return "pipeline:file_failed";
    default:
        return NULL;
    }
}

static void fan_out(rp_hub_t *hub, rp_event_type_t t, const json_t *ev, const char *json, size_t len,
                    int64_t id)
{
    char offset[24];
    snprintf(offset, sizeof(offset), "%lld", (long long)id);
    const char *pid = json_string_value(json_object_get(ev, "pipeline_id"));
    const char *ptype = json_string_value(json_object_get(ev, "pipeline_type"));
    char room_p[160], room_t[96];
    snprintf(room_p, sizeof(room_p), "pipeline:%s", pid);
    snprintf(room_t, sizeof(room_t), "type:%s", ptype);
    const char *rooms[] = {room_p, room_t, "all"};
    const char *name = rp_event_type_name(t);
    rp_sio_bcast_t opts = {.rooms = rooms, .nrooms = 3, .offset = offset, .local = hub->cluster != NULL};
    rp_sio_broadcast(hub->nsp_pipeline, &opts, name, json, len, NULL, 0);
    rp_sio_broadcast(hub->nsp_root, &opts, name, json, len, NULL, 0);
    /* A type namespace carries only its own type; its type room is the subscription that
     * connecting makes (auto_subscribe). */
    rp_sio_bcast_t topts = opts;
    for (size_t i = 0; i < hub->ntype_nsps; i++)
        if (strcmp(hub->type_nsps[i]->name + 1, ptype) == 0)
            rp_sio_broadcast(hub->type_nsps[i], &topts, name, json, len, NULL, 0);
    const char *legacy = hub->cfg.legacy_events ? legacy_name(t) : NULL;
    if (legacy) {
        /* Dashboards written for the old names never subscribe: on /pipeline and / they get
         * the whole namespace; on a type namespace, where connecting subscribes, its type's
         * room, as the current names (the documents' clients listen there). */
        rp_sio_bcast_t lopts = {.local = hub->cluster != NULL};
        rp_sio_broadcast(hub->nsp_pipeline, &lopts, legacy, json, len, NULL, 0);
        rp_sio_broadcast(hub->nsp_root, &lopts, legacy, json, len, NULL, 0);
        for (size_t i = 0; i < hub->ntype_nsps; i++)
            if (strcmp(hub->type_nsps[i]->name + 1, ptype) == 0)
                rp_sio_broadcast(hub->type_nsps[i], &topts, legacy, json, len, NULL, 0);
    }
}

/* The current event type a producer's legacy event name stands for (--legacy-events), or
 * NULL. pipeline:status means online or offline when its status says so, else status:update;
 * for online and offline the status field is removed (those types carry none). */
static const char *legacy_produced_name(const char *name, json_t *in)
{
    static const char *const map[][2] = {{"pipeline:file_processing_started", "file:processing"},
                                         {"pipeline:file_completed", "file:completed"},
                                         {"pipeline:file_failed", "file:failed"}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(name, map[i][0]) == 0)
            return map[i][1];
    if (strcmp(name, "pipeline:status") != 0)
        return NULL;
    const char *st = json_string_value(json_object_get(in, "status"));
    if (st && (strcmp(st, "online") == 0 || strcmp(st, "offline") == 0)) {
        const char *t = strcmp(st, "online") == 0 ? "pipeline:online" : "pipeline:offline";
        json_object_del(in, "status");
        return t;
    }
    return "status:update";
}

static void schedule_wake(rp_hub_t *hub)
{
    hub->wake_pending = 1;
}

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
    int via;       /* VIA_… */
    uint64_t t_in; /* uv_hrtime when the hub took the event */
} pending_t;

/* The delivery sample's last recipient has been written to (or has gone). */
static void on_delivered(void *ud)
{
    rp_hub_t *hub = ud;
    rp_hist_observe(&hub->delivery_lat, uv_hrtime() - hub->sample_t0);
}

/* Broadcasts an event committed now; every DELIVERY_SAMPLE_NS, when no sample is in flight,
 * its local recipients are marked so that on_delivered sees when the last is written. */
static void fan_out_sampled(rp_hub_t *hub, rp_event_type_t t, const json_t *ev, const char *json, size_t len,
                            int64_t id)
{
    uint64_t now = uv_hrtime();
    int sample = !hub->closing && !rp_net_marks_busy(hub->net) && now - hub->sample_at >= DELIVERY_SAMPLE_NS;
    if (!sample) {
        fan_out(hub, t, ev, json, len, id);
        return;
    }
    rp_net_marks_begin(hub->net);
    hub->sio->mark_recipients = 1;
    fan_out(hub, t, ev, json, len, id);
    hub->sio->mark_recipients = 0;
    hub->sample_t0 = now;
    if (rp_net_marks_end(hub->net, on_delivered, hub))
        hub->sample_at = now;
}

/* The event is durable (or the hub has no store): apply, keep, broadcast, wake, complete. */
static void commit_event(pending_t *pe)
{
    rp_hub_t *hub = pe->hub;
    int64_t ts = json_integer_value(json_object_get(pe->ev, "_ts_ms"));
    json_object_del(pe->ev, "_ts_ms");
    rp_hub_state_apply(&hub->state, pe->type, pe->ev, ts);
    hub->events_in[pe->type]++;
    if (pe->id > hub->committed)
        hub->committed = pe->id;
    hist_push(hub, pe->id, pe->type, pe->json, pe->len, pe->ev);
    if (pe->via != VIA_OTHER)
        rp_hist_observe(&hub->commit_lat[pe->via == VIA_SOCKET], uv_hrtime() - pe->t_in);
    fan_out_sampled(hub, pe->type, pe->ev, pe->json, pe->len, pe->id);
    schedule_wake(hub);
    json_decref(pe->ev);
    if (pe->done)
        pe->done(pe->ud, 0, pe->id);
    rp_free(pe);
}

static void settle_reservations(rp_hub_t *hub);

static void on_stored(void *ud, int status)
{
    pending_t *pe = ud;
    pe->hub->in_flight--;
    if (status == 0) {
        commit_event(pe);
        return;
    }
    pe->hub->store_failures++;
    if (pe->done)
        pe->done(pe->ud, status, pe->id);
    settle_reservations(pe->hub);
    free(pe->json);
    json_decref(pe->ev);
    rp_free(pe);
}

static int cluster_ingest(rp_hub_t *hub, rp_event_type_t t, const json_t *in, rp_hub_done_cb done, void *ud);
static int submit(rp_hub_t *hub, pending_t *pe, int64_t ts);

/* Checks a validated event against the bounds on files in flight (see rp_hub_state_admit).
 * Returns 0, or RP_ETOOBIG with err filled, *limit (may be NULL) the bound and the hit
 * counted; or UV_ENOMEM. */
static int admit(rp_hub_t *hub, rp_event_type_t t, const json_t *in, rp_event_error_t *err, int *reserved,
                 int *limit)
{
    char why[sizeof(err->rule)];
    int rc = rp_hub_state_admit(&hub->state, t, in, hub->cfg.max_files_in_flight, hub->cfg.max_files_total,
                                reserved, why, sizeof(why));
    if (rc <= 0)
        return rc;
    hub->files_refused[rc]++;
    snprintf(err->field, sizeof(err->field), "file.id");
    snprintf(err->rule, sizeof(err->rule), "%s", why);
    if (limit)
        *limit = rc;
    return RP_ETOOBIG;
}

static const char *limit_name(int limit)
{
    return limit == RP_HUB_LIMIT_FILES_TOTAL ? "files_total" : "files_in_flight";
}

/* The answer to an event refused by a bound on files in flight: the validation error's shape
 * ({error, field, rule}) plus the bound's name as in ragpulse_limit_hits_total. */
static json_t *limit_json(const rp_event_error_t *err, int limit)
{
    return json_pack("{s:s,s:s,s:s,s:s}", "error", "too many files in flight", "field", err->field, "rule",
                     err->rule, "limit", limit_name(limit));
}

static int ingest(rp_hub_t *hub, const json_t *in, rp_event_error_t *err, rp_hub_done_cb done, void *ud,
                  int *limit)
{
    int t = rp_event_validate(in, err);
    if (t < 0) {
        hub->refused[REFUSED_INVALID]++;
        return -1;
    }
    int arc = admit(hub, (rp_event_type_t)t, in, err, NULL, limit);
    if (arc < 0)
        return arc;
    if (hub->cluster && !hub->cl_bypass) {
        int crc = cluster_ingest(hub, (rp_event_type_t)t, in, done, ud);
        if (crc != RP_EUNAVAIL)
            return crc;
        hub->cl_local++; /* the log is unreachable: this node goes on alone */
    }
    int64_t ts = now_ms();
    int64_t id = hub->next_id;
    json_t *ev = rp_event_normalize(in, id, ts);
    pending_t *pe = rp_calloc(1, sizeof(*pe));
    size_t len = 0;
    char *json = ev ? rp_json_dump(ev, &len) : NULL;
    if (json == NULL || pe == NULL) {
        free(json);
        rp_free(pe);
        json_decref(ev);
        return UV_ENOMEM;
    }
    hub->next_id++;
    *pe = (pending_t){hub, (rp_event_type_t)t, ev, json, len, id, done, ud, hub->via, uv_hrtime()};
    return submit(hub, pe, ts);
}

int rp_hub_ingest(rp_hub_t *hub, const json_t *in, rp_event_error_t *err, rp_hub_done_cb done, void *ud)
{
    return ingest(hub, in, err, done, ud, NULL);
}

/* No admitted event is waiting for the store or the shared log: reservations left by events
 * that never got applied (a store failure) can go. */
static void settle_reservations(rp_hub_t *hub)
{
    if (hub->in_flight == 0 && rp_list_empty(&hub->cl_pending) && hub->state.nreserved)
        rp_hub_state_unreserve_all(&hub->state);
}

/* Commits pe (numbered, normalised) to the store, or applies it now without one. Returns 0,
 * or an error with pe freed (done not called). */
static int submit(rp_hub_t *hub, pending_t *pe, int64_t ts)
{
    json_t *ev = pe->ev;
    char *json = pe->json;
    size_t len = pe->len;
    int64_t id = pe->id;
    rp_event_type_t t = pe->type;
    /* The state needs the time as a number; it travels with the event until commit. */
    json_object_set_new(ev, "_ts_ms", json_integer(ts));
    if (hub->store == NULL) {
        commit_event(pe);
        return 0;
    }
    const json_t *f = json_object_get(ev, "file");
    rp_store_event_t se = {
        .id = id,
        .ts_ms = ts,
        .type = rp_event_type_name(t),
        .pipeline_id = json_string_value(json_object_get(ev, "pipeline_id")),
        .pipeline_type = json_string_value(json_object_get(ev, "pipeline_type")),
        .file_id = json_string_value(json_object_get(f, "id")),
        .file_name = json_string_value(json_object_get(f, "name")),
        .file_hash = json_string_value(json_object_get(f, "hash")),
        .json = json,
        .json_len = len,
    };
    int rc = hub->store->ops->append(hub->store, &se, on_stored, pe);
    if (rc < 0) {
        free(json);
        json_decref(ev);
        rp_free(pe);
        return rc;
    }
    hub->in_flight++;
    return 0;
}

/* ---- Socket.IO: subscriptions and producers ---- */

static void persist_session(rp_hub_t *hub, rp_sio_socket_t *s);
static const rp_principal_t *socket_principal(const rp_sio_socket_t *s);
static int room_allowed(const rp_principal_t *p, const char *room);
static int expired(const rp_hub_t *hub, const rp_principal_t *p);
static uint64_t producer_take(rp_hub_t *hub, const char *who, double n);
static void filter_visible(json_t *j, const char *member, const rp_principal_t *p);
static json_t *admin_stats(rp_hub_t *hub);
static int on_hub_connect(rp_sio_socket_t *s, const char *auth, size_t auth_len, rp_buf_t *err, void *ud);
static int restore_room_allowed(rp_sio_socket_t *s, const char *room, void *ud);
static int take_over_allowed(rp_sio_socket_t *s, rp_sio_socket_t *old, void *ud);
static void principal_release(void *p);
static void emit_sync(rp_hub_t *hub, rp_sio_socket_t *s);
static void auto_subscribe(rp_hub_t *hub, rp_sio_socket_t *s);
enum { WHERE_HTTP, WHERE_SOCKET };
enum { DENY_UNAUTHORIZED, DENY_FORBIDDEN };

/* What one snapshot may list of the files in flight, whatever their number: it is built and
 * serialised in one loop turn, and a subscribe ack must fit in the subscriber's --max-queued
 * (acks get an allowance past it, but only for a bounded answer). So at most a quarter of
 * max_queued of file JSON, at most SNAPSHOT_MAX_FILES files, shared among the pipelines with
 * at least SNAPSHOT_MIN_FILES each; the rest comes page by page (GET
 * /api/pipelines/ID/files, the socket's `files`). */
#define SNAPSHOT_MAX_FILES 1000
#define SNAPSHOT_MIN_FILES 10
#define FILES_PAGE_MAX 1000

static size_t snapshot_bytes(const rp_hub_t *hub)
{
    return hub->sio->eio->cfg.max_queued / 4;
}

static json_t *snapshot(rp_hub_t *hub, const char *id, const char *type)
{
    int64_t now = now_ms();
    size_t bytes = snapshot_bytes(hub);
    size_t max_files = bytes / 256 < SNAPSHOT_MAX_FILES ? bytes / 256 : SNAPSHOT_MAX_FILES;
    json_t *pipes = rp_hub_state_json(&hub->state, id, type, now, max_files, SNAPSHOT_MIN_FILES, bytes);
    if (pipes == NULL)
        return NULL;
    size_t i;
    json_t *p;
    json_array_foreach(pipes, i, p)
    {
        json_t *age = json_object_get(p, "heartbeat_age_ms");
        double interval = json_number_value(json_object_get(p, "heartbeat_interval"));
        const char *status = json_string_value(json_object_get(p, "status"));
        int late = json_is_integer(age) && strcmp(status, "offline") != 0 &&
                   (double)json_integer_value(age) > 1500.0 * interval;
        json_object_set_new(p, "late", json_boolean(late));
    }
    char ts[32];
    rp_event_format_ts(now, ts);
    return json_pack("{s:I,s:s,s:o}", "version", (json_int_t)rp_hub_version(hub), "server_time", ts,
                     "pipelines", pipes);
}

/* One page of a pipeline's files in flight, for GET /api/pipelines/ID/files and the socket's
 * `files`: {version, pipeline_id, in_flight, files, next} (next: the `after` of the next page,
 * null on the last). `type`, when not NULL, is the only pipeline type the asker may read (a
 * type namespace). Returns the answer, or NULL with *status (400, 404, 410, 500) and msg. */
static json_t *files_page(rp_hub_t *hub, const char *pid, const char *type, const char *after, long long limit,
                          int *status, char *msg, size_t msglen)
{
    rp_hub_pipeline_t *p = pid ? rp_hub_state_find(&hub->state, pid) : NULL;
    if (limit < 1 || limit > FILES_PAGE_MAX) {
        *status = 400;
        snprintf(msg, msglen, "limit must be 1 to %d", FILES_PAGE_MAX);
        return NULL;
    }
    if (p == NULL || (type && strcmp(type, p->type) != 0)) {
        *status = 404;
        snprintf(msg, msglen, "no pipeline %.128s", pid ? pid : "(give pipeline_id)");
        return NULL;
    }
    const char *next;
    int gone;
    json_t *files = rp_hub_pipeline_files_json(p, after, (size_t)limit, &next, &gone);
    if (files == NULL) {
        *status = gone ? 410 : 500;
        if (gone)
            snprintf(msg, msglen, "file %.256s is not in flight any more: page again from the start (no after)", after);
        else
            snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    json_t *j = json_pack("{s:I,s:s,s:I,s:o,s:s?}", "version", (json_int_t)rp_hub_version(hub), "pipeline_id", p->id,
                          "in_flight", (json_int_t)p->nfiles, "files", files, "next", next);
    if (j && next == NULL)
        json_object_set_new(j, "next", json_null());
    if (j == NULL) {
        *status = 500;
        snprintf(msg, msglen, "out of memory");
    }
    return j;
}

static void ack_json(rp_sio_socket_t *s, int64_t ack_id, json_t *j)
{
    if (ack_id < 0 || j == NULL) {
        json_decref(j);
        return;
    }
    size_t len;
    char *text = rp_json_dump(j, &len);
    if (text)
        rp_sio_ack(s, ack_id, text, len, NULL, 0);
    free(text);
    json_decref(j);
}

static json_t *error_json(const char *error, const rp_event_error_t *err)
{
    if (err)
        return json_pack("{s:s,s:s,s:s}", "error", error, "field", err->field, "rule", err->rule);
    return json_pack("{s:s}", "error", error);
}

/* Parses argument 0 of an event as JSON (NULL if absent or not JSON). */
static json_t *arg0(const rp_sio_event_t *ev)
{
    const char *v;
    size_t vl;
    if (rp_sio_arg(ev, 0, &v, &vl) != 1)
        return NULL;
    return json_loadb(v, vl, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
}

/* The namespace's pipeline type ("/local_files" -> "local_files"), or NULL for / and /pipeline. */
static const char *nsp_type(rp_hub_t *hub, rp_sio_nsp_t *nsp)
{
    return nsp == hub->nsp_pipeline || nsp == hub->nsp_root ? NULL : nsp->name + 1;
}

/* Refuses a socket's request with an ack {"error":"forbidden: ..."} and counts it. */
static void ack_denied(rp_hub_t *hub, rp_sio_socket_t *s, int64_t ack_id, int kind, const char *why)
{
    hub->auth_refused[1][kind]++;
    ack_json(s, ack_id, json_pack("{s:s+}", "error", kind ? "forbidden: " : "unauthorized: ", why));
}

static void on_subscribe(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    rp_hub_t *hub = ud;
    json_t *filter = arg0(ev);
    const char *pid = json_string_value(json_object_get(filter, "pipeline_id"));
    const char *type = json_string_value(json_object_get(filter, "pipeline_type"));
    const char *want_room = json_string_value(json_object_get(filter, "room"));
    const char *ntype = nsp_type(hub, s->nsp);
    const rp_principal_t *who = socket_principal(s);
    if (filter && !json_is_object(filter)) {
        ack_json(s, ev->ack_id, json_pack("{s:s}", "error", "subscribe takes {pipeline_id} or {pipeline_type}"));
        json_decref(filter);
        return;
    }
    if (ntype && type && strcmp(type, ntype) != 0) {
        ack_json(s, ev->ack_id, json_pack("{s:s}", "error", "this namespace serves one pipeline type"));
        json_decref(filter);
        return;
    }
    if (want_room && (strcmp(want_room, "admin:monitoring") != 0 || s->nsp != hub->nsp_pipeline)) {
        ack_json(s, ev->ack_id, json_pack("{s:s}", "error", "the only room to ask for by name is admin:monitoring, on /pipeline"));
        json_decref(filter);
        return;
    }
    char room[160];
    if (want_room)
        snprintf(room, sizeof(room), "admin:monitoring");
    else if (pid)
        snprintf(room, sizeof(room), "pipeline:%s", pid);
    else if (type && !ntype)
        snprintf(room, sizeof(room), "type:%s", type);
    else
        snprintf(room, sizeof(room), "all");
    if (expired(hub, who) || !room_allowed(who, room)) {
        ack_denied(hub, s, ev->ack_id, expired(hub, who) ? DENY_UNAUTHORIZED : DENY_FORBIDDEN,
                   expired(hub, who) ? "token expired"
                   : want_room       ? "admin:monitoring is for admins"
                   : pid             ? "this token does not cover that pipeline"
                                     : "this token covers some pipelines only: subscribe to each by pipeline_id");
        json_decref(filter);
        return;
    }
    int rc = rp_sio_in_room(s, room, strlen(room)) || s->nrooms < hub->cfg.max_subscriptions
                 ? rp_sio_join(s, room, strlen(room))
                 : RP_ETOOBIG;
    if (rc < 0) {
        char msg[96];
        hub->subs_refused += rc == RP_ETOOBIG;
        if (s->nrooms >= hub->cfg.max_subscriptions)
            snprintf(msg, sizeof(msg), "too many subscriptions (at most %zu a socket)", hub->cfg.max_subscriptions);
        else
            snprintf(msg, sizeof(msg), "too many rooms for one socket (at most %u)", hub->sio->cfg.max_rooms_per_socket);
        ack_json(s, ev->ack_id, json_pack("{s:s}", "error", rc == RP_ETOOBIG ? msg : "cannot subscribe"));
        json_decref(filter);
        return;
    }
    hub->subscribes++;
    if (ntype) {
        /* The subscription connecting made (auto_subscribe) gives way to the one asked for. */
        char auto_room[96];
        snprintf(auto_room, sizeof(auto_room), "type:%s", ntype);
        rp_sio_leave(s, auto_room, strlen(auto_room));
    }
    json_t *snap = want_room ? admin_stats(hub) : snapshot(hub, pid, pid ? NULL : (type ? type : ntype));
    if (snap) {
        filter_visible(snap, "pipelines", who);
        json_object_set_new(snap, "ok", json_true());
        json_object_set_new(snap, "room", json_string(room));
    }
    ack_json(s, ev->ack_id, snap);
    json_decref(filter);
    if (!want_room)
        emit_sync(hub, s);
    persist_session(hub, s);
}

/* `sync {version}` with the version as offset, right after a snapshot: without a first offset,
 * a client that has seen no event yet could not recover (socket.io#4968). */
static void emit_sync(rp_hub_t *hub, rp_sio_socket_t *s)
{
    if (s->nsp->recovery == NULL)
        return;
    char args[48], offset[24];
    int64_t v = rp_hub_version(hub);
    snprintf(offset, sizeof(offset), "%lld", (long long)v);
    int n = snprintf(args, sizeof(args), "{\"version\":%lld}", (long long)v);
    rp_sio_emit_offset(s, "sync", args, (size_t)n, offset);
}

/* On a type namespace, connecting is subscribing to the type, as the documents' clients expect
 * (`io(".../google_drive")`, then listen): the socket joins the namespace's type room (with a
 * token for some pipelines, each of those pipelines' rooms), gets the state as a first
 * `snapshot` event (the subscribe ack's shape), then `sync`. The client's first `subscribe`
 * replaces the type room (it narrows to what it asks for), and `unsubscribe {}` leaves it.
 * Producer-only tokens view nothing, so they join nothing. */
static void auto_subscribe(rp_hub_t *hub, rp_sio_socket_t *s)
{
    const char *ntype = nsp_type(hub, s->nsp);
    const rp_principal_t *who = socket_principal(s);
    if (ntype == NULL || (who && (who->role == RP_ROLE_PRODUCER || expired(hub, who))))
        return;
    char room[96];
    snprintf(room, sizeof(room), "type:%s", ntype);
    if (room_allowed(who, room)) {
        rp_sio_join(s, room, strlen(room));
    } else {
        snprintf(room, sizeof(room), "pipelines");
        for (size_t i = 0; i < who->npipelines && s->nrooms < hub->cfg.max_subscriptions; i++) {
            char r[160];
            snprintf(r, sizeof(r), "pipeline:%s", who->pipelines[i]);
            rp_sio_join(s, r, strlen(r));
        }
    }
    if (s->nrooms == 0)
        return;
    hub->subscribes++;
    json_t *snap = snapshot(hub, NULL, ntype);
    if (snap) {
        filter_visible(snap, "pipelines", who);
        json_object_set_new(snap, "ok", json_true());
        json_object_set_new(snap, "room", json_string(room));
        size_t len;
        char *text = rp_json_dump(snap, &len);
        if (text)
            rp_sio_emit(s, "snapshot", text, len, NULL, 0);
        free(text);
        json_decref(snap);
    }
    emit_sync(hub, s);
    persist_session(hub, s);
}

/* Connection-state recovery: the events after `offset` that rooms of nsp would have got. */
static int hub_missed(void *ud, rp_sio_nsp_t *nsp, const char *const *rooms, size_t nrooms,
                      const char *offset, rp_sio_missed_emit_cb emit, void *ctx)
{
    rp_hub_t *hub = ud;
    char *end;
    long long off = strtoll(offset, &end, 10);
    if (*offset == '\0' || *end || off < 0 || off > rp_hub_version(hub))
        return -1;
    if (off < rp_hub_version(hub) && (hub->ring_len == 0 || off < hist_at(hub, 0)->id - 1))
        return -1; /* older than the history: cannot tell what was missed */
    const char *ntype = nsp_type(hub, nsp);
    for (size_t i = 0; i < hub->ring_len; i++) {
        hist_t *h = hist_at(hub, i);
        if (h->id <= off || (ntype && strcmp(ntype, h->pipeline_type) != 0))
            continue;
        int match = 0;
        for (size_t r = 0; r < nrooms && !match; r++) {
            const char *room = rooms[r];
            match = strcmp(room, "all") == 0 ||
                    (strncmp(room, "pipeline:", 9) == 0 && strcmp(room + 9, h->pipeline_id) == 0) ||
                    (strncmp(room, "type:", 5) == 0 && strcmp(room + 5, h->pipeline_type) == 0);
        }
        if (!match)
            continue;
        char idstr[24];
        snprintf(idstr, sizeof(idstr), "%lld", (long long)h->id);
        int rc = emit(ctx, rp_event_type_name(h->type), h->json, h->len, idstr);
        if (rc != 0)
            return rc < 0 ? -1 : 1;
    }
    return 0;
}

static const rp_sio_recovery_t hub_recovery = {hub_missed};

static void on_unsubscribe(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    rp_hub_t *hub = ud;
    json_t *filter = arg0(ev);
    const char *pid = json_string_value(json_object_get(filter, "pipeline_id"));
    const char *type = json_string_value(json_object_get(filter, "pipeline_type"));
    char room[160];
    if (pid)
        snprintf(room, sizeof(room), "pipeline:%s", pid);
    else if (type && !nsp_type(hub, s->nsp))
        snprintf(room, sizeof(room), "type:%s", type);
    else
        snprintf(room, sizeof(room), "all");
    rp_sio_leave(s, room, strlen(room));
    if (!pid && nsp_type(hub, s->nsp)) {
        char auto_room[96];
        snprintf(auto_room, sizeof(auto_room), "type:%s", nsp_type(hub, s->nsp));
        rp_sio_leave(s, auto_room, strlen(auto_room)); /* the subscription connecting made */
    }
    persist_session(hub, s);
    ack_json(s, ev->ack_id, json_pack("{s:b,s:s}", "ok", 1, "room", room));
    json_decref(filter);
}

/* files {pipeline_id, after?, limit?}: the next page of a pipeline's files in flight, for a
 * viewer whose snapshot said files_more. Same rules as subscribing to that pipeline. */
static void on_files(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    rp_hub_t *hub = ud;
    json_t *q = arg0(ev);
    const char *pid = json_string_value(json_object_get(q, "pipeline_id"));
    json_t *after = json_object_get(q, "after");
    json_t *limit = json_object_get(q, "limit");
    const rp_principal_t *who = socket_principal(s);
    char room[160];
    snprintf(room, sizeof(room), "pipeline:%.140s", pid ? pid : "");
    if (!json_is_object(q) || pid == NULL || (after && !json_is_string(after) && !json_is_null(after)) ||
        (limit && !json_is_integer(limit))) {
        ack_json(s, ev->ack_id, json_pack("{s:s}", "error", "files takes {pipeline_id, after?: file id, limit?: 1 to 1000}"));
    } else if (expired(hub, who) || !room_allowed(who, room)) {
        ack_denied(hub, s, ev->ack_id, expired(hub, who) ? DENY_UNAUTHORIZED : DENY_FORBIDDEN,
                   expired(hub, who) ? "token expired" : "this token does not cover that pipeline");
    } else {
        int status;
        char msg[400];
        json_t *j = files_page(hub, pid, nsp_type(hub, s->nsp), json_string_value(after),
                               limit ? (long long)json_integer_value(limit) : FILES_PAGE_MAX, &status, msg, sizeof(msg));
        ack_json(s, ev->ack_id, j ? j : json_pack("{s:s}", "error", msg));
    }
    json_decref(q);
}

/* ping: answered by its ack with {time: server ms}; without an ack callback by a `pong`
 * event {time, echo?: ping's first argument}, so a client that only listens can time it. */
static void on_ping(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    (void)ud;
    json_t *j = json_pack("{s:I}", "time", (json_int_t)now_ms());
    if (ev->ack_id >= 0) {
        ack_json(s, ev->ack_id, j);
        return;
    }
    json_t *echo = arg0(ev);
    if (j && echo)
        json_object_set_new(j, "echo", echo);
    else
        json_decref(echo);
    size_t len;
    char *text = j ? rp_json_dump(j, &len) : NULL;
    if (text)
        rp_sio_emit(s, "pong", text, len, NULL, 0);
    free(text);
    json_decref(j);
}

/* Where to send a producer's ack once its event is stored: the socket may be gone by then,
 * so keep its id, not the pointer. */
typedef struct ack_ctx {
    rp_hub_t *hub;
    rp_sio_nsp_t *nsp;
    char sid[21];
    int64_t ack_id;
} ack_ctx_t;

/* Adds why the store refuses when it can tell (its SQLite file deleted, a read-only file):
 * "store unavailable" alone sends an operator looking for a server that is down. */
static json_t *with_store_reason(rp_hub_t *hub, json_t *j)
{
    const char *why = hub->store ? rp_store_fault_reason(hub->store->ops->fault(hub->store)) : NULL;
    if (j && why)
        json_object_set_new(j, "reason", json_string(why));
    return j;
}

static void on_produced(void *ud, int status, int64_t id)
{
    ack_ctx_t *a = ud;
    rp_sio_socket_t *s = rp_sio_nsp_socket(a->nsp, a->sid);
    if (s)
        ack_json(s, a->ack_id,
                 status == 0 ? json_pack("{s:I}", "id", (json_int_t)id)
                             : with_store_reason(a->hub, json_pack("{s:s,s:s}", "error", "store unavailable", "rule",
                                                                   "the event was not stored; send it again")));
    rp_free(a);
}

/* A producer's event `in` (owned) on /pipeline or a type namespace, of type `name`: the
 * Socket.IO event name, or the current name of a legacy one. */
static void produce(rp_hub_t *hub, rp_sio_socket_t *s, const rp_sio_event_t *ev, json_t *in, const char *name)
{
    rp_event_error_t err = {"", ""};
    if (!json_is_object(in)) {
        hub->refused[in ? REFUSED_INVALID : REFUSED_JSON]++;
        snprintf(err.rule, sizeof(err.rule), "the first argument must be the event object");
        ack_json(s, ev->ack_id, error_json("invalid event", &err));
        json_decref(in);
        return;
    }
    const rp_principal_t *who = socket_principal(s);
    const char *pipeline = json_string_value(json_object_get(in, "pipeline_id"));
    if (who && (expired(hub, who) || !rp_principal_produces(who, pipeline ? pipeline : ""))) {
        ack_denied(hub, s, ev->ack_id, expired(hub, who) ? DENY_UNAUTHORIZED : DENY_FORBIDDEN,
                   expired(hub, who)               ? "token expired"
                   : who->role == RP_ROLE_VIEWER ? "viewers cannot send events"
                                                 : "this token may not send events for that pipeline");
        json_decref(in);
        return;
    }
    uint64_t wait = who ? producer_take(hub, who->id, 1) : 0;
    if (wait) {
        ack_json(s, ev->ack_id, json_pack("{s:s,s:I}", "error", "rate limited", "retry_after_ms", (json_int_t)wait));
        json_decref(in);
        return;
    }
    /* On a type namespace the type is the namespace's: taken from it when absent, and a
     * different one is refused (it would be shown to the wrong namespace's viewers). */
    const char *ntype = nsp_type(hub, s->nsp);
    json_t *ptype = json_object_get(in, "pipeline_type");
    if (ntype && ptype == NULL) {
        json_object_set_new(in, "pipeline_type", json_string(ntype));
    } else if (ntype && (!json_is_string(ptype) || strcmp(json_string_value(ptype), ntype) != 0)) {
        hub->refused[REFUSED_INVALID]++;
        snprintf(err.field, sizeof(err.field), "pipeline_type");
        snprintf(err.rule, sizeof(err.rule), "must be %s on %s (or omitted: the namespace gives it)", ntype,
                 s->nsp->name);
        ack_json(s, ev->ack_id, error_json("invalid event", &err));
        json_decref(in);
        return;
    }
    json_t *type = json_object_get(in, "type");
    if (type == NULL) {
        json_object_set_new(in, "type", json_string(name));
    } else if (!json_is_string(type) || strcmp(json_string_value(type), name) != 0) {
        hub->refused[REFUSED_INVALID]++;
        snprintf(err.field, sizeof(err.field), "type");
        snprintf(err.rule, sizeof(err.rule), "must match the Socket.IO event name (%s)", name);
        ack_json(s, ev->ack_id, error_json("invalid event", &err));
        json_decref(in);
        return;
    }
    ack_ctx_t *a = NULL;
    if (ev->ack_id >= 0 && (a = rp_calloc(1, sizeof(*a))) != NULL) {
        a->hub = hub;
        a->nsp = s->nsp;
        memcpy(a->sid, s->id, sizeof(a->sid));
        a->ack_id = ev->ack_id;
    }
    int limit = 0;
    hub->via = VIA_SOCKET;
    int rc = ingest(hub, in, &err, a ? on_produced : NULL, a, &limit);
    hub->via = VIA_OTHER;
    if (rc < 0) {
        rp_free(a);
        ack_json(s, ev->ack_id,
                 rc == RP_ETOOBIG ? limit_json(&err, limit)
                                  : error_json(rc == -1 ? "invalid event" : "server error", rc == -1 ? &err : NULL));
    }
    json_decref(in);
}

static void on_produce(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    produce(ud, s, ev, arg0(ev), ev->name);
}

/* A legacy name from a producer under --legacy-events: taken as the current type it stands
 * for (legacy_produced_name); a `type` field may give either name. */
static void on_produce_legacy(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    json_t *in = arg0(ev);
    const char *name = json_is_object(in) ? legacy_produced_name(ev->name, in) : ev->name;
    const char *type = json_string_value(json_object_get(in, "type"));
    if (type && name && strcmp(type, ev->name) == 0)
        json_object_del(in, "type");
    produce(ud, s, ev, in, name ? name : ev->name);
}

/* Any other event name on /pipeline: a producer's typo deserves an answer, not silence. */
static void on_unknown(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    rp_hub_t *hub = ud;
    if (ev->ack_id < 0)
        return;
    hub->refused[REFUSED_INVALID]++;
    rp_event_error_t err = {"type", ""};
    if (legacy_produced_name(ev->name, NULL))
        snprintf(err.rule, sizeof(err.rule),
                 "'%.40s' is a legacy name: serve --legacy-events takes it, or send the current type",
                 ev->name);
    else
        snprintf(err.rule, sizeof(err.rule),
                 "'%.40s' is not an event type (pipeline:*, file:*, status:update, heartbeat)", ev->name);
    ack_json(s, ev->ack_id, error_json("invalid event", &err));
}

/* The legacy names a producer may send under --legacy-events. */
static const char *const legacy_produced[] = {"pipeline:status", "pipeline:file_processing_started",
                                              "pipeline:file_completed", "pipeline:file_failed"};

/* admin:disconnect {sid, namespace?}: an admin ends another socket's connection. */
static void on_admin_disconnect(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    rp_hub_t *hub = ud;
    const rp_principal_t *who = socket_principal(s);
    if (hub->cfg.auth && (who == NULL || who->role != RP_ROLE_ADMIN || expired(hub, who))) {
        ack_denied(hub, s, ev->ack_id, DENY_FORBIDDEN, "only admins may disconnect sockets");
        return;
    }
    json_t *a = arg0(ev);
    const char *sid = json_string_value(json_object_get(a, "sid"));
    const char *nsp_name = json_string_value(json_object_get(a, "namespace"));
    rp_sio_nsp_t *nsp = nsp_name ? rp_sio_server_find(hub->sio, nsp_name, strlen(nsp_name)) : s->nsp;
    rp_sio_socket_t *target = nsp && sid && strlen(sid) == 20 ? rp_sio_nsp_socket(nsp, sid) : NULL;
    if (target == NULL) {
        ack_json(s, ev->ack_id, json_pack("{s:s}", "error", "no such socket (give {sid, namespace})"));
    } else {
        RP_LOG_INFO("hub", "admin %s disconnected socket %s of %s", who ? who->id : "(auth off)", sid, nsp->name);
        int self = target == s;
        ack_json(s, ev->ack_id, json_pack("{s:b}", "ok", 1));
        if (!self)
            rp_sio_disconnect(target, 1);
    }
    json_decref(a);
}

static int setup_nsp(rp_hub_t *hub, rp_sio_nsp_t *nsp, int producers)
{
    if (nsp == NULL || rp_sio_nsp_on(nsp, "subscribe", on_subscribe, hub) < 0 ||
        rp_sio_nsp_on(nsp, "unsubscribe", on_unsubscribe, hub) < 0 ||
        rp_sio_nsp_on(nsp, "ping", on_ping, hub) < 0 || rp_sio_nsp_on(nsp, "files", on_files, hub) < 0 ||
        rp_sio_nsp_on(nsp, "admin:disconnect", on_admin_disconnect, hub) < 0)
        return -1;
    rp_sio_nsp_on_connect(nsp, on_hub_connect, hub);
    rp_sio_nsp_on_restore_room(nsp, restore_room_allowed, hub);
    rp_sio_nsp_on_take_over(nsp, take_over_allowed, hub);
    rp_sio_nsp_set_socket_data_free(nsp, principal_release);
    for (int t = 0; producers && t < RP_EV_COUNT; t++)
        if (rp_sio_nsp_on(nsp, rp_event_type_name((rp_event_type_t)t), on_produce, hub) < 0)
            return -1;
    for (size_t i = 0; producers && hub->cfg.legacy_events && i < sizeof(legacy_produced) / sizeof(legacy_produced[0]); i++)
        if (rp_sio_nsp_on(nsp, legacy_produced[i], on_produce_legacy, hub) < 0)
            return -1;
    if (producers)
        rp_sio_nsp_on_any(nsp, on_unknown, hub);
    return 0;
}

/* ---- HTTP API ---- */

static void respond_json(rp_hub_t *hub, rp_http_conn_t *hc, int status, json_t *j, const char *extra)
{
    char headers[1024];
    char cors[640];
    if (rp_http_cors(hub->sio->eio->cfg.cors, &hc->req, cors, sizeof(cors)) <= 0)
        cors[0] = '\0';
    snprintf(headers, sizeof(headers), "Cache-Control: no-store\r\n%s%s", cors, extra ? extra : "");
    size_t len = 0;
    char *text = j ? rp_json_dump(j, &len) : NULL;
    if (j && text == NULL) {
        rp_http_respond(hc, 500, "application/json", headers, "{\"error\":\"out of memory\"}", 25);
    } else {
        rp_http_respond(hc, status, "application/json", headers, text ? text : "", len);
    }
    free(text);
    json_decref(j);
}

static void respond_error(rp_hub_t *hub, rp_http_conn_t *hc, int status, const char *msg,
                          const rp_event_error_t *err, long index)
{
    json_t *j = error_json(msg, err && err->rule[0] ? err : NULL);
    if (j && index >= 0)
        json_object_set_new(j, "index", json_integer(index));
    respond_json(hub, hc, status, j, NULL);
}

/* ---- who may do what ---- */

/* The principal of a socket: NULL when auth is off (everyone may do everything). */
static const rp_principal_t *socket_principal(const rp_sio_socket_t *s)
{
    return s->data;
}

static void principal_release(void *p)
{
    rp_principal_free(p);
}

/* May `p` be in `room` ("pipeline:<id>", "type:<t>", "all", "admin:monitoring")? */
static int room_allowed(const rp_principal_t *p, const char *room)
{
    if (p == NULL || p->role == RP_ROLE_ADMIN)
        return 1;
    if (strcmp(room, "admin:monitoring") == 0)
        return 0;
    if (strncmp(room, "pipeline:", 9) == 0)
        return rp_principal_sees(p, room + 9);
    return p->all_pipelines; /* all, type:<t> */
}

static int restore_room_allowed(rp_sio_socket_t *s, const char *room, void *ud)
{
    (void)ud;
    return room_allowed(socket_principal(s), room);
}

/* May s end the live socket old, whose pid it presented, and resume its session? Only with
 * the same principal or one that sees everything old's did: a leaked pid with a token for
 * other pipelines must not cut a viewer off (nor hand its rooms' history to a narrower one). */
static int take_over_allowed(rp_sio_socket_t *s, rp_sio_socket_t *old, void *ud)
{
    (void)ud;
    const rp_principal_t *p = socket_principal(s);
    const rp_principal_t *q = socket_principal(old);
    if (q == NULL)
        return 1; /* auth off */
    return p && (strcmp(p->id, q->id) == 0 || rp_principal_covers(p, q));
}

/* Keeps, in a snapshot's "pipelines" or a delta's "events", only what p may see. */
static void filter_visible(json_t *j, const char *member, const rp_principal_t *p)
{
    json_t *arr = json_object_get(j, member);
    if (p == NULL || rp_principal_sees_all(p) || !json_is_array(arr))
        return;
    const char *key = strcmp(member, "pipelines") == 0 ? "id" : "pipeline_id";
    for (size_t i = json_array_size(arr); i-- > 0;) {
        const char *id = json_string_value(json_object_get(json_array_get(arr, i), key));
        if (id == NULL || !rp_principal_sees(p, id))
            json_array_remove(arr, i);
    }
}

/* A token that expired while its socket stayed connected stops working for new requests. */
static int expired(const rp_hub_t *hub, const rp_principal_t *p)
{
    return p && hub->cfg.auth && rp_auth_expired(hub->cfg.auth, p, now_ms() / 1000);
}

/* Socket.IO CONNECT on every hub namespace: the token from the CONNECT auth ({token}), else
 * the one the Engine.IO handshake carried (Authorization: Bearer, or ?token=). */
static int on_hub_connect(rp_sio_socket_t *s, const char *auth, size_t auth_len, rp_buf_t *err, void *ud)
{
    rp_hub_t *hub = ud;
    if (hub->cfg.auth == NULL)
        return 0;
    json_t *a = auth_len ? json_loadb(auth, auth_len, 0, NULL) : NULL;
    const char *tok = json_string_value(json_object_get(a, "token"));
    if (tok == NULL)
        tok = s->client->eio->credential;
    char why[160];
    rp_principal_t *p = tok ? rp_auth_verify(hub->cfg.auth, tok, strlen(tok), now_ms() / 1000, why, sizeof(why)) : NULL;
    if (tok == NULL)
        snprintf(why, sizeof(why), "no token (send {token} in the auth, or Authorization: Bearer)");
    json_decref(a);
    if (p == NULL) {
        hub->auth_refused[WHERE_SOCKET][DENY_UNAUTHORIZED]++;
        RP_LOG_INFO("hub", "CONNECT %s refused: %s", s->nsp->name, why);
        json_t *m = json_pack("{s:s+}", "message", "unauthorized: ", why);
        char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
        if (text)
            rp_buf_append(err, text, strlen(text));
        free(text);
        json_decref(m);
        return RP_EAUTH;
    }
    s->data = p;
    return 0;
}

/* Answers 401 or 403 with the reason, and counts it. */
static void respond_denied(rp_hub_t *hub, rp_http_conn_t *hc, int kind, const char *why)
{
    hub->auth_refused[WHERE_HTTP][kind]++;
    char msg[256];
    snprintf(msg, sizeof(msg), "%s: %s", kind == DENY_UNAUTHORIZED ? "unauthorized" : "forbidden", why);
    respond_json(hub, hc, kind == DENY_UNAUTHORIZED ? 401 : 403, json_pack("{s:s}", "error", msg),
                 kind == DENY_UNAUTHORIZED ? "WWW-Authenticate: Bearer realm=\"ragpulse\"\r\n" : NULL);
}

/* The principal of an HTTP request (a new one; the caller frees it). With auth off, returns
 * NULL and *denied 0. When the request has no valid token it is answered 401 and *denied is
 * 1. */
static rp_principal_t *http_principal(rp_hub_t *hub, rp_http_conn_t *hc, const rp_http_request_t *req, int *denied)
{
    *denied = 0;
    if (hub->cfg.auth == NULL)
        return NULL;
    char tok[RP_EIO_MAX_CREDENTIAL + 1], why[160];
    long n = rp_http_credential(req, tok, sizeof(tok));
    rp_principal_t *p = NULL;
    if (n == RP_ENOTFOUND)
        snprintf(why, sizeof(why), "no token (Authorization: Bearer TOKEN, or ?token=)");
    else if (n < 0)
        snprintf(why, sizeof(why), "malformed Authorization header (want: Bearer TOKEN)");
    else
        p = rp_auth_verify(hub->cfg.auth, tok, (size_t)n, now_ms() / 1000, why, sizeof(why));
    if (p == NULL) {
        *denied = 1;
        respond_denied(hub, hc, DENY_UNAUTHORIZED, why);
    }
    return p;
}

/* A producer's rate bucket, by who they are. */
typedef struct producer {
    rp_map_entry_t entry;
    rp_bucket_t bucket;
    char key[80];
} producer_t;

/* Takes n events from the bucket of `who`. Returns 0, or the milliseconds until they would
 * fit (the events are then refused and counted). */
static uint64_t producer_take(rp_hub_t *hub, const char *who, double n)
{
    if (hub->cfg.event_rate <= 0)
        return 0;
    uint64_t now = (uint64_t)now_ms();
    size_t kl = strlen(who);
    rp_map_entry_t *e = rp_map_get(&hub->producers, who, kl);
    producer_t *pr = e ? rp_container_of(e, producer_t, entry) : NULL;
    if (pr == NULL) {
        if (hub->producers.count >= 100000 || (pr = rp_calloc(1, sizeof(*pr))) == NULL)
            return 1000; /* cannot keep count: refuse rather than let it through unmetered */
        snprintf(pr->key, sizeof(pr->key), "%s", who);
        pr->entry.key = pr->key;
        pr->entry.keylen = strlen(pr->key);
        rp_bucket_init(&pr->bucket, hub->cfg.event_burst, now);
        rp_map_put(&hub->producers, &pr->entry);
    }
    uint64_t wait = rp_bucket_take(&pr->bucket, n, hub->cfg.event_rate, hub->cfg.event_burst, now);
    if (wait)
        hub->rate_limited += (unsigned long)n;
    return wait;
}

/* Forgets producers whose buckets have been full for a while (they cost nothing to rebuild). */
static void producers_prune(rp_hub_t *hub)
{
    uint64_t now = (uint64_t)now_ms();
    double refill_ms = hub->cfg.event_rate > 0 ? hub->cfg.event_burst * 1000.0 / hub->cfg.event_rate : 0;
    size_t b;
    rp_map_entry_t *e = rp_map_first(&hub->producers, &b);
    while (e) {
        rp_map_entry_t *next = rp_map_next(&hub->producers, e, &b);
        producer_t *pr = rp_container_of(e, producer_t, entry);
        if ((double)(now - pr->bucket.last_ms) > refill_ms + 60000) {
            rp_map_del(&hub->producers, e);
            rp_free(pr);
        }
        e = next;
    }
}

static void producers_clear(rp_hub_t *hub)
{
    size_t b;
    rp_map_entry_t *e;
    while ((e = rp_map_first(&hub->producers, &b)) != NULL) {
        rp_map_del(&hub->producers, e);
        rp_free(rp_container_of(e, producer_t, entry));
    }
    rp_map_deinit(&hub->producers);
}

/* The producer key of an HTTP request: the token's holder, else the source address. */
static void http_producer_key(rp_http_conn_t *hc, const rp_principal_t *p, char *out, size_t outlen)
{
    if (p) {
        snprintf(out, outlen, "%s", p->id);
        return;
    }
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[64] = "?";
    if (uv_tcp_getpeername(&hc->conn->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
        else
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
    }
    snprintf(out, outlen, "ip:%s", ip);
}

static int path_is(const rp_http_request_t *req, const char *p)
{
    size_t n = strlen(p);
    return req->path_len == n && memcmp(req->path, p, n) == 0;
}

/* Reads an integer query parameter; returns def when absent, -2 when malformed. */
static long long query_int(const rp_http_request_t *req, const char *key, long long def)
{
    char buf[32];
    long n = rp_http_query_get(req->query, req->query_len, key, buf, sizeof(buf));
    if (n < 0)
        return n == RP_ENOTFOUND ? def : -2;
    char *end;
    long long v = strtoll(buf, &end, 10);
    return *end || n == 0 || v < 0 ? -2 : v;
}

static int cluster_health(rp_hub_t *hub, json_t *j);
static void cluster_metrics(rp_hub_t *hub, rp_buf_t *b);

static void health(rp_hub_t *hub, rp_http_conn_t *hc, int detailed, const rp_principal_t *who)
{
    rp_eio_server_t *eio = hub->sio->eio;
    int store_ok = hub->store == NULL || hub->store->ops->healthy(hub->store);
    json_t *j = json_pack("{s:s,s:b,s:b,s:{s:s,s:b},s:I,s:{s:I,s:I,s:I}}", "status", store_ok ? "ok" : "degraded",
                          "websocket", (eio->cfg.transports & RP_EIO_WEBSOCKET) != 0, "polling",
                          (eio->cfg.transports & RP_EIO_POLLING) != 0, "store", "kind",
                          hub->store ? hub->store->ops->kind(hub->store) : "memory", "ok", store_ok, "version",
                          (json_int_t)rp_hub_version(hub), "sessions", "websocket",
                          (json_int_t)eio->n_websocket, "polling", (json_int_t)eio->n_polling,
                          "connections", (json_int_t)hub->net->nconns);
    with_store_reason(hub, json_object_get(j, "store"));
    if (j && detailed) {
        json_t *snap = snapshot(hub, NULL, NULL);
        filter_visible(snap, "pipelines", who);
        json_t *pipes = json_array();
        int online = 0, offline = 0, late = 0;
        long long inflight = 0;
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(snap, "pipelines"), i, p)
        {
            const char *st = json_string_value(json_object_get(p, "status"));
            int is_late = json_is_true(json_object_get(p, "late"));
            offline += strcmp(st, "offline") == 0;
            online += strcmp(st, "offline") != 0;
            late += is_late;
            inflight += json_integer_value(json_object_get(json_object_get(p, "counters"), "in_flight"));
            json_array_append_new(pipes, json_pack("{s:O,s:O,s:O,s:O,s:O,s:b}", "id", json_object_get(p, "id"),
                                                   "type", json_object_get(p, "type"), "status",
                                                   json_object_get(p, "status"), "last_heartbeat",
                                                   json_object_get(p, "last_heartbeat"), "heartbeat_age_ms",
                                                   json_object_get(p, "heartbeat_age_ms"), "late", is_late));
        }
        json_object_set_new(j, "pipelines", pipes);
        json_object_set_new(j, "counts", json_pack("{s:I,s:i,s:i,s:i,s:I}", "pipelines",
                                                   (json_int_t)json_array_size(pipes), "online", online,
                                                   "offline", offline, "late", late, "files_in_flight",
                                                   (json_int_t)inflight));
        json_decref(snap);
    }
    cluster_health(hub, j);
    respond_json(hub, hc, store_ok ? 200 : 503, j, NULL);
}

static json_t *events_since(rp_hub_t *hub, int64_t since, int *reset)
{
    json_t *arr = json_array();
    *reset = 0;
    if (hub->ring_len && since < hist_at(hub, 0)->id - 1 && since < rp_hub_version(hub)) {
        *reset = 1;
        return arr;
    }
    for (size_t i = 0; i < hub->ring_len; i++) {
        hist_t *h = hist_at(hub, i);
        if (h->id <= since)
            continue;
        json_t *e = json_loadb(h->json, h->len, 0, NULL);
        if (e)
            json_array_append_new(arr, e);
    }
    return arr;
}

/* `since` older than the in-memory history, read from the store (the same log). */
typedef struct since_ctx {
    rp_http_conn_t *hc; /* first: see held_abort */
    rp_hub_t *hub;
    int64_t since;
    rp_principal_t *who; /* owned */
} since_ctx_t;

#define SINCE_LIMIT 10000

static void held_abort(rp_http_conn_t *hc);

static const char *add_socket_fields(rp_hub_t *hub, json_t *j, const rp_http_request_t *req);

static void on_since_rows(void *ud, int status, const char *json, size_t len)
{
    since_ctx_t *sc = ud;
    rp_http_conn_t *hc = sc->hc;
    if (hc) {
        hc->on_abort = NULL;
        hc->data = NULL;
        json_t *events = status == 0 ? json_loadb(json, len, 0, NULL) : NULL;
        if (events == NULL) {
            respond_error(sc->hub, hc, 503, "store unavailable", NULL, -1);
        } else {
            /* The version is the last event returned, not the hub's newest: the client's next
             * `since` continues exactly where this answer stops (more: true until caught up). */
            size_t n = json_array_size(events);
            int64_t last = n ? json_integer_value(json_object_get(json_array_get(events, n - 1), "id")) : sc->since;
            if (n == 0)
                last = rp_hub_version(sc->hub);
            json_t *j = json_pack("{s:I,s:I,s:o,s:b}", "version", (json_int_t)last, "since", (json_int_t)sc->since,
                                  "events", events, "more", last < rp_hub_version(sc->hub));
            filter_visible(j, "events", sc->who);
            add_socket_fields(sc->hub, j, &hc->req);
            respond_json(sc->hub, hc, 200, j, NULL);
        }
    }
    rp_principal_free(sc->who);
    rp_free(sc);
}

static int since_from_store(rp_hub_t *hub, rp_http_conn_t *hc, int64_t since, const rp_principal_t *who)
{
    since_ctx_t *sc = rp_calloc(1, sizeof(*sc));
    if (sc == NULL)
        return -1;
    sc->hc = hc;
    sc->hub = hub;
    sc->since = since;
    if ((who && (sc->who = rp_principal_dup(who)) == NULL) ||
        hub->store->ops->since(hub->store, since, SINCE_LIMIT, on_since_rows, sc) < 0) {
        rp_principal_free(sc->who);
        rp_free(sc);
        return -1;
    }
    hc->data = sc;
    hc->on_abort = held_abort;
    return 0;
}

/* ---- what a client needs before it connects ---- */

const char *const rp_hub_open_paths[] = {"/api/socket/info", "/api/socket/test", NULL};

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

/* How a client should read the hub: "websocket", "polling" (Socket.IO) or "http" (GET
 * /api/rag-status). With a client id the rollout decides, stable per id; without one, "http"
 * only when the rollout is 0. "http" also when no Socket.IO transport is on. */
static const char *client_mode(const rp_hub_t *hub, const char *client)
{
    unsigned tr = hub->sio->eio->cfg.transports;
    int in_rollout = client ? (int)(fnv1a(client) % 100) < hub->cfg.websocket_rollout : hub->cfg.websocket_rollout > 0;
    if (!in_rollout || (tr & (RP_EIO_WEBSOCKET | RP_EIO_POLLING)) == 0)
        return "http";
    return tr & RP_EIO_WEBSOCKET ? "websocket" : "polling";
}

/* Adds the fields the documents' clients decide by: websocket_available (the transport is
 * on), websocket_url (a base URL io() takes: ws:// or wss:// and the request's Host, no path;
 * null without a Host), websocket_path, websocket_namespaces, and fallback_mode (this client
 * should poll over HTTP: client_mode for ?client_id=). Returns the mode. */
static const char *add_socket_fields(rp_hub_t *hub, json_t *j, const rp_http_request_t *req)
{
    rp_eio_config_t *cfg = &hub->sio->eio->cfg;
    char client[128];
    long cl = rp_http_query_get(req->query, req->query_len, "client_id", client, sizeof(client));
    const char *mode = client_mode(hub, cl >= 0 ? client : NULL);
    size_t hl, pl;
    const char *host = rp_http_header(req, "host", &hl);
    const char *proto = rp_http_header(req, "x-forwarded-proto", &pl);
    int tls = proto && pl == 5 && strncasecmp(proto, "https", 5) == 0;
    char url[300];
    snprintf(url, sizeof(url), "%s://%.*s", tls ? "wss" : "ws", host ? (int)(hl > 255 ? 255 : hl) : 0, host ? host : "");
    json_t *nsps = json_pack("[s,s]", "/pipeline", "/");
    for (size_t i = 0; i < hub->ntype_nsps; i++)
        json_array_append_new(nsps, json_string(hub->type_nsps[i]->name));
    if (j == NULL) {
        json_decref(nsps);
        return mode;
    }
    json_object_set_new(j, "websocket_available", json_boolean((cfg->transports & RP_EIO_WEBSOCKET) != 0));
    json_object_set_new(j, "websocket_url", host && hl ? json_string(url) : json_null());
    json_object_set_new(j, "websocket_path", json_string(cfg->path));
    json_object_set_new(j, "websocket_namespaces", nsps);
    json_object_set_new(j, "fallback_mode", json_boolean(strcmp(mode, "http") == 0));
    return mode;
}

/* Adds whether the request's Origin may use the hub ("origin", "origin_allowed"), and, when
 * it may not, "cors_hint": what to start the hub with. Returns origin_allowed. */
static int add_origin_fields(rp_hub_t *hub, json_t *j, const rp_http_request_t *req)
{
    size_t ol;
    const char *origin = rp_http_header(req, "origin", &ol);
    const rp_http_server_t *http = hub->cfg.http;
    int allowed = http == NULL || !http->origin_check || rp_http_origin_allowed(http->origins, req);
    if (j == NULL)
        return allowed;
    json_object_set_new(j, "origin", origin ? json_stringn(origin, ol > 200 ? 200 : ol) : json_null());
    json_object_set_new(j, "origin_allowed", json_boolean(allowed));
    if (!allowed) {
        char hint[600];
        snprintf(hint, sizeof(hint),
                 "this page's Origin %.*s is not allowed: start the hub with --cors-origin %.*s (or "
                 "SOCKET_IO_CORS_ORIGIN=%.*s)",
                 (int)(ol > 150 ? 150 : ol), origin, (int)(ol > 150 ? 150 : ol), origin, (int)(ol > 150 ? 150 : ol),
                 origin);
        json_object_set_new(j, "cors_hint", json_string(hint));
    }
    return allowed;
}

/* Answers one of rp_hub_open_paths: readable by a page of any Origin (a listed one gets its
 * usual CORS headers, with credentials). */
static void respond_public(rp_hub_t *hub, rp_http_conn_t *hc, json_t *j)
{
    char cors[640];
    int listed = rp_http_cors(hub->sio->eio->cfg.cors, &hc->req, cors, sizeof(cors)) > 0;
    respond_json(hub, hc, 200, j, listed ? NULL : "Access-Control-Allow-Origin: *\r\n");
}

static void socket_info(rp_hub_t *hub, rp_http_conn_t *hc, rp_http_request_t *req)
{
    rp_eio_config_t *cfg = &hub->sio->eio->cfg;
    char client[128];
    long cl = rp_http_query_get(req->query, req->query_len, "client_id", client, sizeof(client));
    json_t *transports = json_array();
    if (cfg->transports & RP_EIO_POLLING)
        json_array_append_new(transports, json_string("polling"));
    if (cfg->transports & RP_EIO_WEBSOCKET)
        json_array_append_new(transports, json_string("websocket"));
    json_t *j = json_pack("{s:s,s:o,s:I,s:I,s:i}", "path", cfg->path, "transports", transports, "ping_interval",
                          (json_int_t)cfg->ping_interval, "ping_timeout", (json_int_t)cfg->ping_timeout,
                          "rollout_percent", hub->cfg.websocket_rollout);
    const char *mode = add_socket_fields(hub, j, req);
    if (j)
        json_object_set(j, "namespaces", json_object_get(j, "websocket_namespaces"));
    add_origin_fields(hub, j, req);
    if (j && cl >= 0) {
        json_object_set_new(j, "client_id", json_string(client));
        json_object_set_new(j, "mode", json_string(mode));
    }
    respond_public(hub, hc, j);
}

/* GET /api/socket/test[?t=TOKEN][&client_id=ID]: the round trip a page makes before it
 * connects. Answers {ok, use, server_time, echo: TOKEN, origin, origin_allowed, auth_required,
 * the add_socket_fields, reason when !ok}: ok when a Socket.IO connection from this page would
 * be accepted (its Origin allowed, a transport on); use is "websocket", "polling", "http" (poll
 * /api/rag-status) or "none" (this Origin may use nothing: cors_hint says what to change). */
static void socket_test(rp_hub_t *hub, rp_http_conn_t *hc, rp_http_request_t *req)
{
    char t[65], ts[32];
    long tl = rp_http_query_get(req->query, req->query_len, "t", t, sizeof(t));
    rp_event_format_ts(now_ms(), ts);
    json_t *j = json_pack("{s:s,s:b}", "server_time", ts, "auth_required", hub->cfg.auth != NULL);
    if (j && tl >= 0)
        json_object_set_new(j, "echo", json_string(t));
    const char *mode = add_socket_fields(hub, j, req);
    int allowed = add_origin_fields(hub, j, req);
    unsigned tr = hub->sio->eio->cfg.transports & (RP_EIO_WEBSOCKET | RP_EIO_POLLING);
    int ok = allowed && tr != 0;
    if (j) {
        json_object_set_new(j, "ok", json_boolean(ok));
        json_object_set_new(j, "use", json_string(allowed ? mode : "none"));
        if (!ok)
            json_object_set_new(j, "reason", json_string(!allowed ? "this page's Origin is not allowed (see cors_hint)"
                                                                  : "no Socket.IO transport is enabled"));
    }
    respond_public(hub, hc, j);
}

/* Answers a status request now: snapshot (ETag, 304) or deltas since an event id. */
static void status_respond(rp_hub_t *hub, rp_http_conn_t *hc, int64_t since, const rp_principal_t *who)
{
    int64_t v = rp_hub_version(hub);
    char etag[48];
    snprintf(etag, sizeof(etag), "\"v%lld\"", (long long)v);
    char extra[96];
    snprintf(extra, sizeof(extra), "ETag: %s\r\n", etag);
    if (since < 0) {
        size_t inm_len;
        const char *inm = rp_http_header(&hc->req, "if-none-match", &inm_len);
        if (inm && inm_len == strlen(etag) && memcmp(inm, etag, inm_len) == 0) {
            respond_json(hub, hc, 304, NULL, extra);
            return;
        }
        json_t *snap = snapshot(hub, NULL, NULL);
        filter_visible(snap, "pipelines", who);
        add_socket_fields(hub, snap, &hc->req);
        respond_json(hub, hc, 200, snap, extra);
        return;
    }
    int reset;
    json_t *events = events_since(hub, since, &reset);
    json_t *j;
    if (reset && hub->store && since_from_store(hub, hc, since, who) == 0) {
        /* The store has what the in-memory history no longer holds: answered when read. */
        json_decref(events);
        return;
    }
    if (reset) {
        /* The history no longer reaches back that far: send the whole state instead. */
        json_decref(events);
        j = snapshot(hub, NULL, NULL);
        filter_visible(j, "pipelines", who);
        if (j)
            json_object_set_new(j, "reset", json_true());
    } else {
        j = json_pack("{s:I,s:I,s:o}", "version", (json_int_t)v, "since", (json_int_t)since, "events", events);
        filter_visible(j, "events", who);
    }
    add_socket_fields(hub, j, &hc->req);
    respond_json(hub, hc, 200, j, extra);
}

static void waiter_abort(rp_http_conn_t *hc)
{
    waiter_t *w = hc->data;
    if (w == NULL)
        return;
    rp_list_unlink(&w->node);
    rp_principal_free(w->who);
    rp_free(w);
    hc->data = NULL;
}

static void waiter_finish(waiter_t *w)
{
    rp_http_conn_t *hc = w->hc;
    rp_list_unlink(&w->node);
    hc->on_abort = NULL;
    hc->data = NULL;
    int64_t since = w->since;
    rp_hub_t *hub = w->hub;
    rp_principal_t *who = w->who;
    rp_free(w);
    status_respond(hub, hc, since, who);
    rp_principal_free(who);
}

/* Counts the reason a client gave for switching to HTTP (X-RagPulse-Fallback), if any. */
static void count_fallback(rp_hub_t *hub, const rp_http_request_t *req)
{
    size_t len;
    const char *v = rp_http_header(req, "x-ragpulse-fallback", &len);
    if (v == NULL)
        return;
    int r = 0;
    while (r < FB_OTHER && !(strlen(fallback_names[r]) == len && memcmp(fallback_names[r], v, len) == 0))
        r++;
    hub->fallbacks[r]++;
}

static void rag_status(rp_hub_t *hub, rp_http_conn_t *hc, rp_http_request_t *req, const rp_principal_t *who)
{
    hub->http_fallback++;
    count_fallback(hub, req);
    long long since = query_int(req, "since", -1);
    long long wait = query_int(req, "wait", 0);
    if (since == -2 || wait == -2) {
        respond_error(hub, hc, 400, "since and wait must be non-negative integers", NULL, -1);
        return;
    }
    if (wait > hub->cfg.max_wait_s)
        wait = hub->cfg.max_wait_s;
    int64_t v = rp_hub_version(hub);
    int changed;
    if (since >= 0) {
        changed = v > since;
    } else {
        char etag[48];
        snprintf(etag, sizeof(etag), "\"v%lld\"", (long long)v);
        size_t inm_len;
        const char *inm = rp_http_header(req, "if-none-match", &inm_len);
        changed = !(inm && inm_len == strlen(etag) && memcmp(inm, etag, inm_len) == 0);
    }
    if (changed || wait == 0) {
        status_respond(hub, hc, since, who);
        return;
    }
    waiter_t *w = rp_calloc(1, sizeof(*w));
    if (w == NULL || (who && (w->who = rp_principal_dup(who)) == NULL)) {
        rp_free(w);
        status_respond(hub, hc, since, who);
        return;
    }
    w->hc = hc;
    w->hub = hub;
    w->since = since;
    w->version_seen = v;
    w->deadline = now_ms() + wait * 1000;
    hc->data = w;
    hc->on_abort = waiter_abort;
    rp_list_push(&hub->waiters, &w->node);
}

/* A POST /api/events whose events are being stored: answered when the last one is. */
typedef struct post {
    rp_http_conn_t *hc; /* first: see held_abort */
    rp_hub_t *hub;
    json_t *ids;
    size_t remaining;
    int batch;
    int failed;
} post_t;

/* A held request whose answer waits on the store: its context starts with the connection,
 * which becomes NULL if the client goes away first (the context is freed by the completion). */
typedef struct held {
    rp_http_conn_t *hc;
} held_t;

static void held_abort(rp_http_conn_t *hc)
{
    held_t *h = hc->data;
    if (h)
        h->hc = NULL;
    hc->data = NULL;
}

static void on_posted(void *ud, int status, int64_t id)
{
    post_t *po = ud;
    if (id >= 0 && status < 0) {
        /* The slot holds the id the event was given at submission: clear it. */
        size_t i;
        json_t *v;
        json_array_foreach(po->ids, i, v)
        {
            if (json_integer_value(v) == id)
                json_array_set_new(po->ids, i, json_null());
        }
        po->failed = 1;
    }
    if (--po->remaining > 0)
        return;
    rp_http_conn_t *hc = po->hc;
    if (hc) {
        hc->on_abort = NULL;
        hc->data = NULL;
        if (po->failed) {
            json_t *j = json_pack("{s:s,s:s,s:O}", "error", "store unavailable", "rule",
                                  "events with a null id were not stored; send them again", "ids", po->ids);
            respond_json(po->hub, hc, 503, with_store_reason(po->hub, j), "Retry-After: 1\r\n");
        } else {
            respond_json(po->hub, hc, 200,
                         po->batch ? json_pack("{s:O}", "ids", po->ids)
                                   : json_pack("{s:O}", "id", json_array_get(po->ids, 0)),
                         NULL);
        }
    }
    json_decref(po->ids);
    rp_free(po);
}

/* Gives back the reservations made for the first n events of a batch that is refused. */
static void unreserve_batch(rp_hub_t *hub, const json_t *body, int batch, const unsigned char *reserved, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (reserved[i])
            rp_hub_state_unreserve(&hub->state, batch ? json_array_get(body, i) : body);
}

static void post_events(rp_hub_t *hub, rp_http_conn_t *hc, rp_http_request_t *req, const rp_principal_t *who)
{
    size_t ctl;
    const char *ct = rp_http_header(req, "content-type", &ctl);
    /* application/json, optionally with parameters (charset): not json-patch+json, not jsonl. */
    if (ct == NULL || ctl < 16 || strncasecmp(ct, "application/json", 16) != 0 ||
        (ctl > 16 && ct[16] != ';' && ct[16] != ' ')) {
        hub->refused[REFUSED_CONTENT_TYPE]++;
        respond_error(hub, hc, 415, "Content-Type must be application/json", NULL, -1);
        return;
    }
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (body == NULL) {
        hub->refused[REFUSED_JSON]++;
        char msg[256];
        snprintf(msg, sizeof(msg), "malformed JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        respond_error(hub, hc, 400, msg, NULL, -1);
        return;
    }
    int batch = json_is_array(body);
    size_t n = batch ? json_array_size(body) : 1;
    if (batch && n > hub->cfg.max_batch) {
        hub->refused[REFUSED_TOO_BIG]++;
        char msg[96];
        snprintf(msg, sizeof(msg), "a batch holds at most %zu events", hub->cfg.max_batch);
        respond_error(hub, hc, 413, msg, NULL, -1);
        json_decref(body);
        return;
    }
    if (batch && n == 0) {
        respond_error(hub, hc, 400, "empty batch", NULL, -1);
        json_decref(body);
        return;
    }
    /* All or nothing: every event is checked before any is accepted. */
    for (size_t i = 0; i < n; i++) {
        rp_event_error_t err;
        const json_t *ev = batch ? json_array_get(body, i) : body;
        if (rp_event_validate(ev, &err) < 0 || dedup_validate(ev, &err) < 0) {
            hub->refused[REFUSED_INVALID]++;
            respond_error(hub, hc, 400, "invalid event", &err, batch ? (long)i : -1);
            json_decref(body);
            return;
        }
        const char *pid = json_string_value(json_object_get(ev, "pipeline_id"));
        if (who && !rp_principal_produces(who, pid)) {
            char why[200];
            snprintf(why, sizeof(why), "%s (event %zu, pipeline %.100s)",
                     who->role == RP_ROLE_VIEWER ? "viewers cannot send events" : "this token may not send events for that pipeline",
                     i, pid);
            respond_denied(hub, hc, DENY_FORBIDDEN, why);
            json_decref(body);
            return;
        }
    }
    /* The bounds on files in flight, all or nothing too: the batch's new files are reserved
     * one by one (so the batch is counted with itself), and given back if one is refused. */
    unsigned char *reserved = rp_calloc(n, 1);
    if (reserved == NULL) {
        respond_error(hub, hc, 500, "out of memory", NULL, -1);
        json_decref(body);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        rp_event_error_t err;
        const json_t *ev = batch ? json_array_get(body, i) : body;
        int limit = 0, r = 0;
        if (dedup_find(hub, ev))
            continue; /* a repeat: answered with its first id below, never stored */
        int t = rp_event_validate(ev, &err);
        int rc = admit(hub, (rp_event_type_t)t, ev, &err, &r, &limit);
        reserved[i] = (unsigned char)r;
        if (rc < 0) {
            unreserve_batch(hub, body, batch, reserved, i);
            json_t *j = rc == RP_ETOOBIG ? limit_json(&err, limit) : json_pack("{s:s}", "error", "out of memory");
            if (j && batch)
                json_object_set_new(j, "index", json_integer((json_int_t)i));
            respond_json(hub, hc, rc == RP_ETOOBIG ? 429 : 500, j, NULL);
            rp_free(reserved);
            json_decref(body);
            return;
        }
    }
    char key[96];
    http_producer_key(hc, who, key, sizeof(key));
    uint64_t wait = producer_take(hub, key, (double)n);
    if (wait) {
        unreserve_batch(hub, body, batch, reserved, n);
        rp_free(reserved);
        char extra[64];
        snprintf(extra, sizeof(extra), "Retry-After: %llu\r\n", (unsigned long long)((wait + 999) / 1000));
        respond_json(hub, hc, 429, json_pack("{s:s,s:I}", "error", "rate limited", "retry_after_ms", (json_int_t)wait), extra);
        json_decref(body);
        return;
    }
    rp_free(reserved);
    post_t *po = rp_calloc(1, sizeof(*po));
    if (po == NULL || (po->ids = json_array()) == NULL) {
        rp_free(po);
        respond_error(hub, hc, 500, "out of memory", NULL, -1);
        json_decref(body);
        return;
    }
    po->hub = hub;
    po->hc = hc;
    po->batch = batch;
    po->remaining = n + 1; /* +1 until every event is submitted */
    hc->data = po;
    hc->on_abort = held_abort;
    if (hub->store)
        hub->store->ops->hold(hub->store, 1); /* one commit for the whole batch */
    hub->via = VIA_HTTP;
    for (size_t i = 0; i < n; i++) {
        rp_event_error_t err;
        const json_t *ev = batch ? json_array_get(body, i) : body;
        int64_t first = dedup_find(hub, ev);
        if (first) {
            json_array_append_new(po->ids, json_integer(first));
            po->remaining--;
            continue;
        }
        int64_t id = hub->next_id; /* the id this event gets if it is accepted */
        json_array_append_new(po->ids, json_integer(id));
        if (rp_hub_ingest(hub, ev, &err, on_posted, po) < 0) {
            json_array_set_new(po->ids, i, json_null());
            po->failed = 1;
            po->remaining--;
        }
    }
    hub->via = VIA_OTHER;
    if (hub->store)
        hub->store->ops->hold(hub->store, 0);
    json_decref(body);
    on_posted(po, 0, -1); /* drops the +1 */
}

/* A held request answered by a store read. */
typedef struct rows_ctx {
    rp_http_conn_t *hc; /* first: see held_abort */
    rp_hub_t *hub;
    int limit;
    int paged; /* history: add next_before */
    const char *key; /* the member the rows go in */
} rows_ctx_t;


static void on_rows(void *ud, int status, const char *json, size_t len)
{
    rows_ctx_t *rc = ud;
    rp_http_conn_t *hc = rc->hc;
    if (hc) {
        hc->on_abort = NULL;
        hc->data = NULL;
        json_t *arr = status == 0 ? json_loadb(json, len, 0, NULL) : NULL;
        if (arr == NULL) {
            respond_error(rc->hub, hc, 503, "store unavailable", NULL, -1);
        } else {
            json_t *j = json_pack("{s:o}", rc->key ? rc->key : "events", arr);
            size_t n = json_array_size(arr);
            if (j && rc->paged && (int)n == rc->limit && n > 0)
                json_object_set(j, rc->key ? "next_after" : "next_before",
                                json_object_get(json_array_get(arr, n - 1), rc->key ? "file_id" : "id"));
            respond_json(rc->hub, hc, 200, j, NULL);
        }
    }
    rp_free(rc);
}

static void get_files(rp_hub_t *hub, rp_http_conn_t *hc, rp_http_request_t *req)
{
    char pid[160];
    if (rp_http_query_get(req->query, req->query_len, "pipeline", pid, sizeof(pid)) < 0) {
        respond_error(hub, hc, 400, "use ?pipeline=ID", NULL, -1);
        return;
    }
    if (hub->store == NULL) {
        respond_error(hub, hc, 404, "the file registry needs a store (--store)", NULL, -1);
        return;
    }
    /* A page at a time (a registry can hold millions of files): ?after=FILE_ID&limit=N. */
    char after[520] = "";
    long long limit = query_int(req, "limit", 1000);
    long al = rp_http_query_get(req->query, req->query_len, "after", after, sizeof(after));
    if (al == RP_ENOTFOUND)
        after[0] = '\0';
    if ((al < 0 && al != RP_ENOTFOUND) || limit < 1 || limit > 1000) {
        respond_error(hub, hc, 400, "limit must be an integer from 1 to 1000 (after: a file_id)", NULL, -1);
        return;
    }
    rows_ctx_t *rc = rp_calloc(1, sizeof(*rc));
    if (rc == NULL || hub->store->ops->files(hub->store, pid, after, (int)limit, on_rows, rc) < 0) {
        rp_free(rc);
        respond_error(hub, hc, 500, "out of memory", NULL, -1);
        return;
    }
    rc->hub = hub;
    rc->hc = hc;
    rc->key = "files";
    rc->limit = (int)limit;
    rc->paged = 1;
    hc->data = rc;
    hc->on_abort = held_abort;
}

/* The ID of /api/pipelines/ID/files, percent-decoded into out; returns 1, or 0 when the path
 * is not of that form. */
static int pipeline_files_path(const rp_http_request_t *req, char *out, size_t outlen)
{
    static const char head[] = "/api/pipelines/", tail[] = "/files";
    size_t hl = sizeof(head) - 1, tl = sizeof(tail) - 1;
    if (req->path_len <= hl + tl || memcmp(req->path, head, hl) != 0 ||
        memcmp(req->path + req->path_len - tl, tail, tl) != 0)
        return 0;
    size_t idl = req->path_len - hl - tl;
    char q[600];
    if (idl + 3 > sizeof(q) || memchr(req->path + hl, '/', idl))
        return 0;
    /* The query decoder does the percent-decoding: "id=<segment>". */
    memcpy(q, "id=", 3);
    memcpy(q + 3, req->path + hl, idl);
    return rp_http_query_get(q, idl + 3, "id", out, outlen) > 0;
}

/* GET /api/pipelines/ID/files?after=FILE_ID&limit=N: the files in flight page by page. */
static void get_pipeline_files(rp_hub_t *hub, rp_http_conn_t *hc, rp_http_request_t *req, const char *pid,
                               const rp_principal_t *who)
{
    char after[1100];
    long al = rp_http_query_get(req->query, req->query_len, "after", after, sizeof(after));
    long long limit = query_int(req, "limit", FILES_PAGE_MAX);
    if (al == RP_ETOOBIG || al == RP_EPROTO || al == 0) {
        respond_error(hub, hc, 400, "after must be the id of a file (the next of the previous page)", NULL, -1);
        return;
    }
    if (who && !rp_principal_sees(who, pid)) {
        respond_denied(hub, hc, DENY_FORBIDDEN, "this token does not cover that pipeline");
        return;
    }
    int status;
    char msg[400];
    json_t *j = files_page(hub, pid, NULL, al > 0 ? after : NULL, limit == -2 ? 0 : limit, &status, msg, sizeof(msg));
    if (j)
        respond_json(hub, hc, 200, j, NULL);
    else
        respond_error(hub, hc, status, msg, NULL, -1);
}

static void get_events(rp_hub_t *hub, rp_http_conn_t *hc, rp_http_request_t *req)
{
    char pid[160], fid[300];
    long pl = rp_http_query_get(req->query, req->query_len, "pipeline", pid, sizeof(pid));
    long fl = rp_http_query_get(req->query, req->query_len, "file", fid, sizeof(fid));
    long long before = query_int(req, "before", -1);
    long long limit = query_int(req, "limit", 100);
    if (pl < 0 || fl == RP_ETOOBIG || fl == RP_EPROTO || before == -2 || limit <= 0 || limit > 1000) {
        respond_error(hub, hc, 400, "use ?pipeline=ID[&file=FID][&before=EVENT_ID][&limit=1..1000]", NULL, -1);
        return;
    }
    if (hub->store) {
        rows_ctx_t *rc = rp_calloc(1, sizeof(*rc));
        if (rc && hub->store->ops->history(hub->store, pid, fl >= 0 ? fid : NULL, before >= 0 ? before : 0,
                                           (int)limit, on_rows, rc) == 0) {
            rc->hub = hub;
            rc->hc = hc;
            rc->limit = (int)limit;
            rc->paged = 1;
            hc->data = rc;
            hc->on_abort = held_abort;
            return;
        }
        rp_free(rc);
        respond_error(hub, hc, 500, "out of memory", NULL, -1);
        return;
    }
    json_t *arr = json_array();
    int64_t last = -1;
    for (size_t k = hub->ring_len; k-- > 0 && (long long)json_array_size(arr) < limit;) {
        hist_t *h = hist_at(hub, k);
        if (before >= 0 && h->id >= before)
            continue;
        if (strcmp(h->pipeline_id, pid) != 0 || (fl >= 0 && (h->file_id == NULL || strcmp(h->file_id, fid) != 0)))
            continue;
        json_t *e = json_loadb(h->json, h->len, 0, NULL);
        if (e)
            json_array_append_new(arr, e);
        last = h->id;
    }
    json_t *j = json_pack("{s:o}", "events", arr);
    if (j && (long long)json_array_size(arr) == limit && last > 0)
        json_object_set_new(j, "next_before", json_integer(last));
    respond_json(hub, hc, 200, j, NULL);
}

/* What admin:monitoring sees: connections, sockets, refusals, limits hit. */
static json_t *admin_stats(rp_hub_t *hub)
{
    rp_sio_server_t *sio = hub->sio;
    rp_eio_server_t *eio = sio->eio;
    json_t *nsps = json_object();
    rp_sio_nsp_t *all[2 + MAX_TYPE_NSPS] = {hub->nsp_pipeline, hub->nsp_root};
    size_t nall = 2;
    for (size_t i = 0; i < hub->ntype_nsps; i++)
        all[nall++] = hub->type_nsps[i];
    for (size_t i = 0; i < nall; i++)
        json_object_set_new(nsps, all[i]->name, json_integer((json_int_t)all[i]->nsockets));
    char ts[32];
    rp_event_format_ts(now_ms(), ts);
    const rp_http_server_t *http = hub->cfg.http;
    json_t *j = json_pack("{s:s,s:I,s:I,s:{s:I,s:I},s:o,s:I,s:{s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I}}",
                     "server_time", ts, "version", (json_int_t)rp_hub_version(hub), "connections",
                     (json_int_t)hub->net->nconns, "sessions", "websocket", (json_int_t)eio->n_websocket,
                     "polling", (json_int_t)eio->n_polling, "sockets", nsps, "pipelines",
                     (json_int_t)hub->state.npipelines, "auth_refused", "http_unauthorized",
                     (json_int_t)hub->auth_refused[WHERE_HTTP][DENY_UNAUTHORIZED], "http_forbidden",
                     (json_int_t)hub->auth_refused[WHERE_HTTP][DENY_FORBIDDEN], "socket_unauthorized",
                     (json_int_t)hub->auth_refused[WHERE_SOCKET][DENY_UNAUTHORIZED], "socket_forbidden",
                     (json_int_t)hub->auth_refused[WHERE_SOCKET][DENY_FORBIDDEN], "limits", "events_rate_limited",
                     (json_int_t)hub->rate_limited, "packets_rate_limited", (json_int_t)sio->rate_limited,
                     "rate_disconnects", (json_int_t)sio->rate_disconnects, "refused_max_connections",
                     (json_int_t)hub->net->refused_max_conns, "refused_per_ip", (json_int_t)hub->net->refused_per_ip,
                     "request_timeouts", (json_int_t)(http ? http->request_timeouts : 0), "queue_drops",
                     (json_int_t)eio->drops);
    cluster_health(hub, j); /* with Redis: every node's sockets and rooms */
    return j;
}

/* The durable log's counters: writes, failures and each fault it entered (logged once). */
static void store_metrics(rp_hub_t *hub, rp_buf_t *b)
{
    const rp_store_t *st = hub->store;
    if (st == NULL)
        return;
    rp_buf_printf(b,
                  "# HELP ragpulse_store_up 1 while the store takes writes, 0 while it refuses them.\n"
                  "# TYPE ragpulse_store_up gauge\nragpulse_store_up %d\n"
                  "# HELP ragpulse_store_events_written_total Events made durable.\n"
                  "# TYPE ragpulse_store_events_written_total counter\nragpulse_store_events_written_total %lu\n"
                  "# HELP ragpulse_store_errors_total Events the store could not make durable.\n"
                  "# TYPE ragpulse_store_errors_total counter\nragpulse_store_errors_total %lu\n"
                  "# HELP ragpulse_store_checks_total Liveness checks of the store (about every 2 s).\n"
                  "# TYPE ragpulse_store_checks_total counter\nragpulse_store_checks_total %lu\n"
                  "# HELP ragpulse_store_faults_total Times the store started failing, by fault.\n"
                  "# TYPE ragpulse_store_faults_total counter\n",
                  st->ops->healthy(hub->store), st->events_written, st->errors, st->checks);
    for (int f = RP_STORE_FAULT_NONE + 1; f < RP_STORE_FAULT_COUNT; f++)
        rp_buf_printf(b, "ragpulse_store_faults_total{fault=\"%s\"} %lu\n", rp_store_fault_name((rp_store_fault_t)f),
                      st->faults[f]);
}

/* WebSocket success and failure, session errors by transport, client fallbacks. */
static void transport_metrics(rp_hub_t *hub, rp_buf_t *b)
{
    const rp_eio_server_t *eio = hub->sio->eio;
    const rp_http_server_t *http = hub->cfg.http;
    /* The HTTP server refuses a bad Origin before Engine.IO sees the request: those are
     * attempts too, and failures for "origin", counted once (Engine.IO never saw them). */
    unsigned long http_origin = http ? http->refused_origin[1] : 0;
    rp_buf_printf(b,
                  "# HELP ragpulse_ws_attempts_total WebSocket requests (transport=websocket: upgrades and\n"
                  "# direct opens), including those refused for their Origin.\n"
                  "# TYPE ragpulse_ws_attempts_total counter\nragpulse_ws_attempts_total %lu\n"
                  "# HELP ragpulse_ws_handshakes_total WebSocket requests answered 101 Switching Protocols.\n"
                  "# TYPE ragpulse_ws_handshakes_total counter\nragpulse_ws_handshakes_total %lu\n",
                  eio->ws_attempts + http_origin, eio->ws_handshakes);
    static const char *const wsfail[] = {"origin", "bad_handshake", "server_error", "refused", "probe_failed"};
    unsigned long fails[RP_EIO_WSFAIL_COUNT];
    memcpy(fails, eio->ws_failures, sizeof(fails));
    fails[RP_EIO_WSFAIL_ORIGIN] += http_origin;
    rp_buf_printf(b, "# HELP ragpulse_ws_failures_total WebSockets that failed, by reason. Before the 101\n"
                     "# (no handshake): origin, bad_handshake, server_error. After it: refused (a second\n"
                     "# WebSocket for a session), probe_failed, upgrade_timeout (the probe did not finish\n"
                     "# the upgrade), too_big (close 1009), protocol (close 1002/1007).\n"
                     "# TYPE ragpulse_ws_failures_total counter\n");
    for (int r = 0; r < RP_EIO_WSFAIL_COUNT; r++)
        rp_buf_printf(b, "ragpulse_ws_failures_total{reason=\"%s\"} %lu\n", wsfail[r], fails[r]);
    rp_buf_printf(b,
                  "ragpulse_ws_failures_total{reason=\"upgrade_timeout\"} %lu\n"
                  "ragpulse_ws_failures_total{reason=\"too_big\"} %lu\n"
                  "ragpulse_ws_failures_total{reason=\"protocol\"} %lu\n",
                  eio->upgrade_timeouts, eio->ws_too_big, eio->ws_protocol);
    rp_buf_printf(b, "# HELP ragpulse_session_errors_total Engine.IO sessions ended by an error, by the\n"
                     "# transport they were on and the error (max_queued: output over --max-queued).\n"
                     "# TYPE ragpulse_session_errors_total counter\n");
    static const char *const transports[] = {"polling", "websocket"};
    for (int t = 0; t < 2; t++)
        for (int e = 0; e < RP_EIO_ERR_COUNT; e++)
            rp_buf_printf(b, "ragpulse_session_errors_total{transport=\"%s\",reason=\"%s\"} %lu\n", transports[t],
                          rp_eio_error_name(e), eio->session_errors[t][e]);
    rp_buf_printf(b, "# HELP ragpulse_client_fallbacks_total Switches to the HTTP path the TypeScript client\n"
                     "# reported (X-RagPulse-Fallback on its next /api/rag-status), by reason.\n"
                     "# TYPE ragpulse_client_fallbacks_total counter\n");
    for (int r = 0; r < FB_COUNT; r++)
        rp_buf_printf(b, "ragpulse_client_fallbacks_total{reason=\"%s\"} %lu\n", fallback_names[r],
                      hub->fallbacks[r]);
}

/* The latency histograms. */
static void latency_metrics(rp_hub_t *hub, rp_buf_t *b)
{
    rp_hist_print(&hub->commit_lat[0], b, "ragpulse_event_commit_seconds",
                  "Producer events from the moment the hub took them (the HTTP request\n"
                  "# read in full, the Socket.IO packet decoded) to their commit to the store (the ack), by\n"
                  "# where they came from. Events relayed through a cluster's shared log are not counted.",
                  "via=\"http\"");
    rp_hist_print_samples(&hub->commit_lat[1], b, "ragpulse_event_commit_seconds", "via=\"socket\"");
    rp_hist_print(&hub->delivery_lat, b, "ragpulse_event_delivery_seconds",
                  "Sampled events (at most one in flight, one per 100 ms) from their commit\n"
                  "# to the moment the kernel took the last byte of the frame for the last local recipient:\n"
                  "# over WebSocket its frame, over polling the GET response that carried it (a recipient\n"
                  "# that closes first counts as done). Sockets replaying a recovery are not sampled.",
                  "");
}

static void metrics(rp_hub_t *hub, rp_http_conn_t *hc)
{
    rp_buf_t b;
    rp_buf_init(&b, 1 << 20);
    rp_sio_server_t *sio = hub->sio;
    rp_eio_server_t *eio = sio->eio;
    rp_buf_printf(&b, "# HELP ragpulse_connections Open Engine.IO sessions by transport.\n"
                      "# TYPE ragpulse_connections gauge\n"
                      "ragpulse_connections{transport=\"websocket\"} %zu\n"
                      "ragpulse_connections{transport=\"polling\"} %zu\n",
                  eio->n_websocket, eio->n_polling);
    rp_buf_printf(&b, "# HELP ragpulse_tcp_connections Open TCP connections.\n"
                      "# TYPE ragpulse_tcp_connections gauge\nragpulse_tcp_connections %zu\n",
                  hub->net->nconns);
    rp_buf_printf(&b, "# HELP ragpulse_sockets Connected Socket.IO sockets by namespace.\n"
                      "# TYPE ragpulse_sockets gauge\n");
    rp_sio_nsp_t *all[2 + MAX_TYPE_NSPS] = {hub->nsp_pipeline, hub->nsp_root};
    size_t nall = 2;
    for (size_t i = 0; i < hub->ntype_nsps; i++)
        all[nall++] = hub->type_nsps[i];
    for (size_t i = 0; i < nall; i++)
        rp_buf_printf(&b, "ragpulse_sockets{namespace=\"%s\"} %zu\n", all[i]->name, all[i]->nsockets);
    rp_buf_printf(&b, "# HELP ragpulse_events_in_total Events accepted by type.\n"
                      "# TYPE ragpulse_events_in_total counter\n");
    for (int t = 0; t < RP_EV_COUNT; t++)
        rp_buf_printf(&b, "ragpulse_events_in_total{type=\"%s\"} %lu\n", rp_event_type_name((rp_event_type_t)t),
                      hub->events_in[t]);
    rp_buf_printf(&b, "# HELP ragpulse_events_refused_total Events refused by reason.\n"
                      "# TYPE ragpulse_events_refused_total counter\n");
    for (int r = 0; r < REFUSED_COUNT; r++)
        rp_buf_printf(&b, "ragpulse_events_refused_total{reason=\"%s\"} %lu\n", refused_names[r], hub->refused[r]);
    rp_buf_printf(&b,
                  "# HELP ragpulse_broadcasts_total Broadcasts made.\n# TYPE ragpulse_broadcasts_total counter\n"
                  "ragpulse_broadcasts_total %lu\n"
                  "# HELP ragpulse_broadcast_recipients_total Packets queued to recipients by broadcasts (fan-out).\n"
                  "# TYPE ragpulse_broadcast_recipients_total counter\nragpulse_broadcast_recipients_total %lu\n"
                  "# HELP ragpulse_packets_out_total Socket.IO packets sent.\n"
                  "# TYPE ragpulse_packets_out_total counter\nragpulse_packets_out_total %lu\n"
                  "# HELP ragpulse_packets_in_total Socket.IO packets received.\n"
                  "# TYPE ragpulse_packets_in_total counter\nragpulse_packets_in_total %lu\n"
                  "# HELP ragpulse_http_fallback_requests_total Status requests over HTTP (the fallback path).\n"
                  "# TYPE ragpulse_http_fallback_requests_total counter\nragpulse_http_fallback_requests_total %lu\n"
                  "# HELP ragpulse_queue_drops_total Sessions dropped for passing their output limit.\n"
                  "# TYPE ragpulse_queue_drops_total counter\nragpulse_queue_drops_total %lu\n"
                  "# HELP ragpulse_synthetic_events_total Events the hub made itself (offline on silence, stalled files).\n"
                  "# TYPE ragpulse_synthetic_events_total counter\nragpulse_synthetic_events_total %lu\n"
                  "# HELP ragpulse_pipelines Known pipelines.\n# TYPE ragpulse_pipelines gauge\nragpulse_pipelines %zu\n",
                  sio->broadcasts, sio->broadcast_recipients, sio->packets_out, sio->packets_in,
                  hub->http_fallback, eio->drops, hub->synthetic, hub->state.npipelines);
    rp_buf_printf(&b,
                  "# HELP ragpulse_auth_refused_total Requests refused by authentication (401, CONNECT_ERROR) or\n"
                  "# authorization (403, ack error).\n# TYPE ragpulse_auth_refused_total counter\n"
                  "ragpulse_auth_refused_total{where=\"http\",reason=\"unauthorized\"} %lu\n"
                  "ragpulse_auth_refused_total{where=\"http\",reason=\"forbidden\"} %lu\n"
                  "ragpulse_auth_refused_total{where=\"socket\",reason=\"unauthorized\"} %lu\n"
                  "ragpulse_auth_refused_total{where=\"socket\",reason=\"forbidden\"} %lu\n"
                  "ragpulse_auth_refused_total{where=\"socket\",reason=\"takeover\"} %lu\n",
                  hub->auth_refused[WHERE_HTTP][DENY_UNAUTHORIZED],
                  hub->auth_refused[WHERE_HTTP][DENY_FORBIDDEN],
                  hub->auth_refused[WHERE_SOCKET][DENY_UNAUTHORIZED],
                  hub->auth_refused[WHERE_SOCKET][DENY_FORBIDDEN], sio->takeovers_refused);
    rp_buf_printf(&b,
                  "# HELP ragpulse_recoveries_total Reconnections that asked to resume a session, by outcome:\n"
                  "# resumed (at once, or after a replay in rounds), or a fresh session (the offset could not be\n"
                  "# served, or the history overtook the replay).\n# TYPE ragpulse_recoveries_total counter\n"
                  "ragpulse_recoveries_total{outcome=\"resumed\"} %lu\n"
                  "ragpulse_recoveries_total{outcome=\"resumed_in_rounds\"} %lu\n"
                  "ragpulse_recoveries_total{outcome=\"fresh\"} %lu\n"
                  "ragpulse_recoveries_total{outcome=\"overtaken\"} %lu\n",
                  sio->recovered, sio->recovered_paced, sio->recovery_refused, sio->recovery_overtaken);
    const rp_http_server_t *http = hub->cfg.http;
    rp_buf_printf(&b,
                  "# HELP ragpulse_limit_hits_total Inputs refused or connections closed by a limit.\n"
                  "# TYPE ragpulse_limit_hits_total counter\n"
                  "ragpulse_limit_hits_total{limit=\"max_connections\"} %lu\n"
                  "ragpulse_limit_hits_total{limit=\"max_connections_per_ip\"} %lu\n"
                  "ragpulse_limit_hits_total{limit=\"max_pending\"} %lu\n"
                  "ragpulse_limit_hits_total{limit=\"request_timeout\"} %lu\n"
                  "ragpulse_limit_hits_total{limit=\"idle_timeout\"} %lu\n"
                  "ragpulse_limit_hits_total{limit=\"bad_request\"} %lu\n"
                  "ragpulse_limit_hits_total{limit=\"rate_packets\"} %lu\n"
                  "ragpulse_limit_hits_total{limit=\"rate_disconnect\"} %lu\n"
                  "ragpulse_limit_hits_total{limit=\"rate_events\"} %lu\n"
                  "ragpulse_limit_hits_total{limit=\"max_queued\"} %lu\n"
                  "ragpulse_limit_hits_total{limit=\"protocol\"} %lu\n"
                  "ragpulse_limit_hits_total{limit=\"ws_too_big\"} %lu\n"
                  "ragpulse_limit_hits_total{limit=\"ws_protocol\"} %lu\n"
                  "ragpulse_limit_hits_total{limit=\"max_subscriptions\"} %lu\n"
                  "ragpulse_limit_hits_total{limit=\"upgrade_timeout\"} %lu\n"
                  "ragpulse_limit_hits_total{limit=\"files_in_flight\"} %lu\n"
                  "ragpulse_limit_hits_total{limit=\"files_total\"} %lu\n",
                  hub->net->refused_max_conns, hub->net->refused_per_ip, http ? http->refused_pending : 0,
                  http ? http->request_timeouts : 0, http ? http->idle_timeouts : 0, http ? http->bad_requests : 0,
                  sio->rate_limited, sio->rate_disconnects, hub->rate_limited, eio->drops, sio->protocol_errors,
                  eio->ws_too_big, eio->ws_protocol, hub->subs_refused, eio->upgrade_timeouts,
                  hub->files_refused[RP_HUB_LIMIT_FILES_IN_FLIGHT], hub->files_refused[RP_HUB_LIMIT_FILES_TOTAL]);
    rp_buf_printf(&b,
                  "# HELP ragpulse_files_in_flight Files being processed (file:processing seen, not completed or\n"
                  "# failed yet), in all pipelines; bounded by --max-files-in-flight and --max-files-total.\n"
                  "# TYPE ragpulse_files_in_flight gauge\nragpulse_files_in_flight %zu\n",
                  hub->state.nfiles);
    rp_buf_printf(&b,
                  "# HELP ragpulse_origin_refused_total Requests refused with 403 for a browser Origin that is\n"
                  "# neither the hub's own nor in --cors-origin (kind: websocket for upgrades).\n"
                  "# TYPE ragpulse_origin_refused_total counter\n"
                  "ragpulse_origin_refused_total{kind=\"http\"} %lu\n"
                  "ragpulse_origin_refused_total{kind=\"websocket\"} %lu\n",
                  http ? http->refused_origin[0] : 0, http ? http->refused_origin[1] : 0);
    transport_metrics(hub, &b);
    latency_metrics(hub, &b);
    store_metrics(hub, &b);
    cluster_metrics(hub, &b);
    char cors[640];
    if (rp_http_cors(eio->cfg.cors, &hc->req, cors, sizeof(cors)) <= 0)
        cors[0] = '\0';
    rp_http_respond(hc, 200, "text/plain; version=0.0.4; charset=utf-8", cors, b.data ? b.data : "", b.len);
    rp_buf_deinit(&b);
}

/* A request for one pipeline's data: ?pipeline=ID must be one `who` may see. Returns 1 when
 * it may go on, 0 after answering 403. */
static int pipeline_visible(rp_hub_t *hub, rp_http_conn_t *hc, const rp_http_request_t *req,
                            const rp_principal_t *who)
{
    if (who == NULL || rp_principal_sees_all(who))
        return 1;
    char pid[160];
    if (rp_http_query_get(req->query, req->query_len, "pipeline", pid, sizeof(pid)) < 0) {
        respond_denied(hub, hc, DENY_FORBIDDEN, "this token covers some pipelines only: give ?pipeline=ID");
        return 0;
    }
    if (!rp_principal_sees(who, pid)) {
        respond_denied(hub, hc, DENY_FORBIDDEN, "this token does not cover that pipeline");
        return 0;
    }
    return 1;
}

static void route_authorized(rp_hub_t *hub, rp_http_conn_t *hc, rp_http_request_t *req, const rp_principal_t *who)
{
    int get = req->method == HTTP_GET || req->method == HTTP_HEAD;
    char pid[160];
    if (path_is(req, "/api/health")) {
        if (!get)
            respond_error(hub, hc, 405, "use GET", NULL, -1);
        else
            health(hub, hc, 1, who);
    } else if (path_is(req, "/status") || path_is(req, "/api/rag-status")) {
        if (!get)
            respond_error(hub, hc, 405, "use GET", NULL, -1);
        else
            rag_status(hub, hc, req, who);
    } else if (path_is(req, "/api/events")) {
        if (req->method == HTTP_POST)
            post_events(hub, hc, req, who);
        else if (!get)
            respond_error(hub, hc, 405, "use GET or POST", NULL, -1);
        else if (pipeline_visible(hub, hc, req, who))
            get_events(hub, hc, req);
    } else if (path_is(req, "/api/files")) {
        if (pipeline_visible(hub, hc, req, who))
            get_files(hub, hc, req);
    } else if (pipeline_files_path(req, pid, sizeof(pid))) {
        if (!get)
            respond_error(hub, hc, 405, "use GET", NULL, -1);
        else
            get_pipeline_files(hub, hc, req, pid, who);
    } else if (path_is(req, "/api/failures")) {
        long pl = rp_http_query_get(req->query, req->query_len, "pipeline", pid, sizeof(pid));
        if (pipeline_visible(hub, hc, req, who))
            respond_json(hub, hc, 200, json_pack("{s:o}", "groups", rp_hub_failures_json(&hub->state, pl >= 0 ? pid : NULL)), NULL);
    } else if (who && who->role != RP_ROLE_ADMIN && !hub->cfg.metrics_public) {
        respond_denied(hub, hc, DENY_FORBIDDEN, "/metrics is for admins (or run serve with --metrics-public)");
    } else {
        metrics(hub, hc);
    }
}

int rp_hub_route(rp_hub_t *hub, rp_http_conn_t *hc, rp_http_request_t *req)
{
    char pid[160];
    int get = req->method == HTTP_GET || req->method == HTTP_HEAD;
    int api = req->path_len >= 5 && memcmp(req->path, "/api/", 5) == 0;
    if (req->method == HTTP_OPTIONS && (api || path_is(req, "/status") || path_is(req, "/health"))) {
        char cors[640], extra[1024];
        if (rp_http_cors(hub->sio->eio->cfg.cors, req, cors, sizeof(cors)) <= 0)
            cors[0] = '\0';
        snprintf(extra, sizeof(extra),
                 "%sAccess-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
                 "Access-Control-Allow-Headers: content-type, authorization, if-none-match, x-ragpulse-fallback\r\n"
                 "Access-Control-Expose-Headers: ETag, Retry-After\r\nAccess-Control-Max-Age: 86400\r\n",
                 cors);
        rp_http_respond(hc, 204, NULL, extra, NULL, 0);
        return 1;
    }
    /* Open to anyone: liveness for load balancers, and what a client needs before it connects. */
    if (path_is(req, "/health")) {
        if (!get)
            respond_error(hub, hc, 405, "use GET", NULL, -1);
        else
            health(hub, hc, 0, NULL);
        return 1;
    }
    if (path_is(req, "/api/socket/info") || path_is(req, "/api/socket/test")) {
        if (!get)
            respond_error(hub, hc, 405, "use GET", NULL, -1);
        else if (path_is(req, "/api/socket/info"))
            socket_info(hub, hc, req);
        else
            socket_test(hub, hc, req);
        return 1;
    }
    int ours = path_is(req, "/api/health") || path_is(req, "/status") || path_is(req, "/api/rag-status") ||
               path_is(req, "/api/events") || path_is(req, "/api/files") || path_is(req, "/api/failures") ||
               pipeline_files_path(req, pid, sizeof(pid)) ||
               (path_is(req, "/metrics") && !(hub->cfg.metrics_public && get));
    if (!ours) {
        if (!path_is(req, "/metrics"))
            return 0;
        metrics(hub, hc); /* public */
        return 1;
    }
    int denied;
    rp_principal_t *who = http_principal(hub, hc, req, &denied);
    if (!denied)
        route_authorized(hub, hc, req, who);
    rp_principal_free(who);
    return 1;
}

/* ---- watchdogs and ticks ---- */

static void synthesize(rp_hub_t *hub, json_t *ev)
{
    rp_event_error_t err;
    if (ev && rp_hub_ingest(hub, ev, &err, NULL, NULL) == 0)
        hub->synthetic++;
    else if (ev)
        RP_LOG_ERROR("hub", "synthetic event refused: %s %s", err.field, err.rule);
    hub->cl_dedup = NULL;
    json_decref(ev);
}

static void cluster_check(rp_hub_t *hub);

#define STALLS_PER_CHECK 1000

static void on_check(uv_timer_t *t)
{
    rp_hub_t *hub = t->data;
    int64_t now = now_ms();
    size_t stalls = 0;
    cluster_check(hub);
    settle_reservations(hub);
    /* About every 2 s, let the store prove it is reachable even when nothing is written. */
    if (hub->store && ++hub->checks % (2000 / (hub->cfg.check_interval_ms ? hub->cfg.check_interval_ms : 250) + 1) == 0)
        hub->store->ops->ping(hub->store);
    rp_list_node_t *it, *tmp;
    rp_list_foreach_safe(it, tmp, &hub->state.pipeline_list)
    {
        rp_hub_pipeline_t *p = rp_container_of(it, rp_hub_pipeline_t, node);
        double limit = p->heartbeat_interval * hub->cfg.heartbeat_timeout * 1000.0;
        if (p->status != RP_PIPE_OFFLINE && p->last_heartbeat && (double)(now - p->last_heartbeat) > limit) {
            char msg[96];
            snprintf(msg, sizeof(msg), "no heartbeat for %.1f s", (double)(now - p->last_heartbeat) / 1000.0);
            /* Every node sees the silence; the cluster keeps the first node's event only. */
            char key[200];
            snprintf(key, sizeof(key), "offline:%.128s:%lld", p->id, (long long)p->last_heartbeat);
            hub->cl_dedup = key;
            synthesize(hub, json_pack("{s:s,s:s,s:s,s:s}", "type", "pipeline:offline", "pipeline_id", p->id,
                                      "pipeline_type", p->type, "message", msg));
        }
        /* Least recent progress first: the walk ends at the first file that is not stalled,
         * and a check fails at most STALLS_PER_CHECK files (a million stalled at once take
         * many ticks, not one long one). */
        rp_list_node_t *fi, *ftmp;
        rp_list_foreach_safe(fi, ftmp, &p->progress_list)
        {
            rp_hub_file_t *f = rp_container_of(fi, rp_hub_file_t, progress_node);
            if (now - f->last_progress_at <= (int64_t)hub->cfg.stall_timeout_ms || stalls >= STALLS_PER_CHECK)
                break;
            stalls++;
            char msg[96];
            snprintf(msg, sizeof(msg), "stalled: no progress for %lld s", (long long)((now - f->last_progress_at) / 1000));
            char key[420];
            snprintf(key, sizeof(key), "stalled:%.128s:%.256s:%lld", p->id, f->id, (long long)f->last_progress_at);
            hub->cl_dedup = key;
            synthesize(hub, json_pack("{s:s,s:s,s:s,s:{s:s,s:s,s:{s:s,s:s,s:b}}}", "type", "file:failed",
                                      "pipeline_id", p->id, "pipeline_type", p->type, "file", "id", f->id,
                                      "name", f->name, "error", "message", msg, "kind", "stalled",
                                      "retryable", 1));
        }
    }
    rp_list_foreach_safe(it, tmp, &hub->waiters)
    {
        waiter_t *w = rp_container_of(it, waiter_t, node);
        if (now >= w->deadline)
            waiter_finish(w);
    }
    if (now - hub->stats_at >= 2000) {
        hub->stats_at = now;
        producers_prune(hub);
        static const char *const mon[] = {"admin:monitoring"};
        if (rp_sio_room_size(hub->nsp_pipeline, mon[0], strlen(mon[0])) > 0) {
            json_t *j = admin_stats(hub);
            size_t len;
            char *text = j ? rp_json_dump(j, &len) : NULL;
            if (text)
                rp_sio_broadcast(hub->nsp_pipeline, &(rp_sio_bcast_t){.rooms = mon, .nrooms = 1}, "admin:stats", text,
                                 len, NULL, 0);
            free(text);
            json_decref(j);
        }
    }
}

static void on_beat(uv_timer_t *t)
{
    rp_hub_t *hub = t->data;
    char ts[32];
    rp_event_format_ts(now_ms(), ts);
    size_t online = 0, inflight = 0;
    rp_list_node_t *it;
    rp_list_foreach(it, &hub->state.pipeline_list)
    {
        rp_hub_pipeline_t *p = rp_container_of(it, rp_hub_pipeline_t, node);
        online += p->status != RP_PIPE_OFFLINE;
        inflight += p->nfiles;
    }
    json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "source", "hub", "server_time", ts, "version",
                          (json_int_t)rp_hub_version(hub), "pipelines", (json_int_t)hub->state.npipelines,
                          "online", (json_int_t)online, "files_in_flight", (json_int_t)inflight,
                          "connections", (json_int_t)hub->net->nconns);
    size_t len;
    char *text = j ? rp_json_dump(j, &len) : NULL;
    /* Each node beats to its own viewers, as hub:heartbeat: a pipeline's `heartbeat` is one of
     * its events (id, pipeline_id). Under --legacy-events it also goes as `heartbeat` (with
     * source "hub", the discriminator docs/events.schema.json names) for clients of the old name. */
    rp_sio_nsp_t *all[2 + MAX_TYPE_NSPS] = {hub->nsp_pipeline, hub->nsp_root};
    size_t nall = 2;
    for (size_t i = 0; i < hub->ntype_nsps; i++)
        all[nall++] = hub->type_nsps[i];
    rp_sio_bcast_t local = {.local = 1};
    for (size_t i = 0; text && i < nall; i++) {
        rp_sio_broadcast(all[i], &local, "hub:heartbeat", text, len, NULL, 0);
        if (hub->cfg.legacy_events)
            rp_sio_broadcast(all[i], &local, "heartbeat", text, len, NULL, 0);
    }
    free(text);
    json_decref(j);
}

/* Runs before each flush: answers the long-polls that events of this loop turn woke. */
static void on_tick(void *ud)
{
    rp_hub_t *hub = ud;
    if (!hub->wake_pending)
        return;
    hub->wake_pending = 0;
    int64_t v = rp_hub_version(hub);
    rp_list_node_t *it, *tmp;
    rp_list_foreach_safe(it, tmp, &hub->waiters)
    {
        waiter_t *w = rp_container_of(it, waiter_t, node);
        if (v > w->version_seen)
            waiter_finish(w);
    }
}

/* ---- the store: replay at start, recovery sessions, retention ---- */

static void on_replayed(void *ud, const rp_store_event_t *se)
{
    rp_hub_t *hub = ud;
    int applied = se->id > hub->snapshot_version; /* older ones are in the snapshot already */
    int t = rp_event_type_parse(se->type, strlen(se->type));
    json_t *ev = json_loadb(se->json, se->json_len, 0, NULL);
    char *copy = malloc(se->json_len + 1);
    if (t < 0 || ev == NULL || copy == NULL) {
        RP_LOG_ERROR("hub", "event %lld in the store cannot be read; skipped", (long long)se->id);
        json_decref(ev);
        free(copy);
        return;
    }
    memcpy(copy, se->json, se->json_len);
    copy[se->json_len] = '\0';
    if (applied)
        rp_hub_state_apply(&hub->state, (rp_event_type_t)t, ev, se->ts_ms);
    hist_push(hub, se->id, (rp_event_type_t)t, copy, se->json_len, ev);
    json_decref(ev);
    if (se->id >= hub->next_id)
        hub->next_id = se->id + 1;
    if (se->id > hub->committed)
        hub->committed = se->id;
}

static void on_session_loaded(void *ud, const rp_store_session_t *ss)
{
    rp_hub_t *hub = ud;
    rp_sio_nsp_t *nsp = rp_sio_server_find(hub->sio, ss->nsp, strlen(ss->nsp));
    json_t *rooms = json_loads(ss->rooms, 0, NULL);
    if (nsp && nsp->recovery && json_is_array(rooms)) {
        const char *names[256];
        size_t n = 0, i;
        json_t *r;
        json_array_foreach(rooms, i, r)
        {
            if (json_is_string(r) && n < 256)
                names[n++] = json_string_value(r);
        }
        /* Connected when the hub stopped (expires 0): the window starts now. */
        int64_t ttl = ss->expires_ms ? ss->expires_ms - now_ms() : (int64_t)hub->cfg.recovery_window_ms;
        if (ttl > 0)
            rp_sio_save_session(nsp, ss->pid, ss->sid, names, n, (uint32_t)ttl);
    }
    json_decref(rooms);
}

static void collect_room(const char *room, size_t len, void *ud)
{
    json_array_append_new(ud, json_stringn(room, len));
}

/* Records s's session in the store: its rooms now (expires 0: connected), so a client can
 * resume it even after the hub is killed. */
static void cluster_session_put(rp_hub_t *hub, rp_sio_socket_t *s);

static void persist_session(rp_hub_t *hub, rp_sio_socket_t *s)
{
    cluster_session_put(hub, s);
    if (hub->store == NULL || s->nsp->recovery == NULL || s->pid[0] == '\0')
        return;
    json_t *rooms = json_array();
    rp_sio_socket_rooms(s, collect_room, rooms);
    char *text = rooms ? json_dumps(rooms, JSON_COMPACT) : NULL;
    if (text) {
        rp_store_session_t ss = {s->pid, s->nsp->name, s->id, text, 0};
        hub->store->ops->session_put(hub->store, &ss);
    }
    free(text);
    json_decref(rooms);
}

static void on_viewer_connection(rp_sio_socket_t *s, const char *auth, size_t auth_len, void *ud)
{
    (void)auth;
    (void)auth_len;
    if (s->recovered)
        persist_session(ud, s);
    else
        auto_subscribe(ud, s);
}

static void cluster_session_del(rp_hub_t *hub, rp_sio_socket_t *s, const char *reason);

static void on_viewer_disconnect(rp_sio_socket_t *s, const char *reason, void *ud)
{
    rp_hub_t *hub = ud;
    cluster_session_del(hub, s, reason);
    if (hub->store == NULL || s->nsp->recovery == NULL || s->pid[0] == '\0')
        return;
    if (rp_sio_reason_recoverable(reason)) {
        /* Kept for the window: rooms as last recorded, now with an expiry. */
        rp_store_session_t ss = {s->pid, s->nsp->name, s->id, NULL, now_ms() + hub->cfg.recovery_window_ms};
        hub->store->ops->session_put(hub->store, &ss);
    } else {
        hub->store->ops->session_del(hub->store, s->pid);
    }
}

static void on_prune(uv_timer_t *t)
{
    rp_hub_t *hub = t->data;
    /* The state first, in the same commit: pruned events must not be needed to rebuild it. */
    json_t *snap = rp_hub_state_export(&hub->state);
    char *text = snap ? json_dumps(snap, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(snap);
    if (text == NULL || hub->store->ops->snapshot_put(hub->store, hub->committed, text) < 0) {
        free(text);
        return; /* no snapshot, no pruning */
    }
    free(text);
    int64_t cutoff = hub->cfg.retain_days > 0 ? now_ms() - (int64_t)(hub->cfg.retain_days * 86400000.0) : 0;
    hub->store->ops->prune(hub->store, hub->cfg.retain_events, cutoff);
}

static void cluster_attach(rp_hub_t *hub);
static void cluster_detach(rp_hub_t *hub);

rp_hub_t *rp_hub_new(rp_sio_server_t *sio, rp_net_t *net, const rp_hub_config_t *cfg,
                     rp_store_t *store, char *err, size_t errlen)
{
    rp_hub_t *hub = rp_calloc(1, sizeof(*hub));
    if (hub == NULL) {
        snprintf(err, errlen, "out of memory");
        if (store)
            store->ops->close(store);
        return NULL;
    }
    hub->sio = sio;
    hub->net = net;
    hub->store = store;
    hub->cfg = *cfg;
    hub->next_id = 1;
    rp_hub_state_init(&hub->state);
    hub->state.default_heartbeat_interval = cfg->default_heartbeat_interval;
    rp_list_init(&hub->waiters);
    rp_map_init(&hub->producers);
    hub->ring_cap = cfg->history ? cfg->history : 1;
    hub->ring = rp_calloc(hub->ring_cap, sizeof(*hub->ring));
    hub->dedup = json_object();
    hub->dedup_ring = rp_calloc(RP_DEDUP_KEYS, sizeof(*hub->dedup_ring));
    hub->nsp_pipeline = rp_sio_server_of(sio, "/pipeline");
    hub->nsp_root = rp_sio_server_of(sio, "/");
    snprintf(err, errlen, "out of memory");
    if (hub->ring == NULL || hub->dedup == NULL || hub->dedup_ring == NULL || hub->state.failure_groups == NULL ||
        setup_nsp(hub, hub->nsp_pipeline, 1) < 0 || setup_nsp(hub, hub->nsp_root, 0) < 0)
        goto fail;
    for (size_t i = 0; i < cfg->ntype_namespaces && i < MAX_TYPE_NSPS; i++) {
        rp_sio_nsp_t *nsp = rp_sio_server_of(sio, cfg->type_namespaces[i]);
        if (setup_nsp(hub, nsp, 1) < 0)
            goto fail;
        hub->type_nsps[hub->ntype_nsps++] = nsp;
    }
    rp_sio_nsp_t *viewers[2 + MAX_TYPE_NSPS] = {hub->nsp_pipeline, hub->nsp_root};
    size_t nviewers = 2;
    for (size_t i = 0; i < hub->ntype_nsps; i++)
        viewers[nviewers++] = hub->type_nsps[i];
    for (size_t i = 0; i < nviewers; i++) {
        rp_sio_nsp_on_connection(viewers[i], on_viewer_connection, hub);
        if (!cfg->recovery)
            continue;
        rp_sio_nsp_set_recovery(viewers[i], &hub_recovery, hub);
        rp_sio_nsp_on_disconnect(viewers[i], on_viewer_disconnect, hub);
    }
    if (store) {
        int64_t t0 = now_ms();
        rp_buf_t snap;
        rp_buf_init(&snap, (size_t)1 << 30);
        int64_t sv = 0;
        if (store->ops->snapshot_get(store, &sv, &snap) < 0) {
            rp_buf_deinit(&snap);
            snprintf(err, errlen, "cannot read the store: %s", store->ops->error(store));
            goto fail;
        }
        if (sv > 0) {
            json_t *sj = json_loadb(snap.data, snap.len, 0, NULL);
            int ok = sj && rp_hub_state_import(&hub->state, sj) == 0;
            json_decref(sj);
            if (!ok) {
                rp_buf_deinit(&snap);
                snprintf(err, errlen, "the state snapshot in the store cannot be read");
                goto fail;
            }
            hub->snapshot_version = hub->committed = sv;
            hub->next_id = sv + 1;
        }
        rp_buf_deinit(&snap);
        if (store->ops->replay(store, 0, on_replayed, hub) < 0 ||
            store->ops->sessions(store, t0, on_session_loaded, hub) < 0) {
            snprintf(err, errlen, "cannot read the store: %s", store->ops->error(store));
            goto fail;
        }
        RP_LOG_INFO("hub", "rebuilt %zu pipelines from %lld events in the %s store in %lld ms",
                    hub->state.npipelines, (long long)hub->committed, store->ops->kind(store),
                    (long long)(now_ms() - t0));
        uv_timer_init(net->loop, &hub->prune_timer);
        hub->prune_timer.data = hub;
        if (cfg->retain_events > 0 || cfg->retain_days > 0) {
            uv_timer_start(&hub->prune_timer, on_prune, 1000, 60000);
            uv_unref((uv_handle_t *)&hub->prune_timer);
        }
    }
    uv_timer_init(net->loop, &hub->check_timer);
    uv_timer_init(net->loop, &hub->beat_timer);
    hub->check_timer.data = hub->beat_timer.data = hub;
    uv_timer_start(&hub->check_timer, on_check, cfg->check_interval_ms, cfg->check_interval_ms);
    uv_timer_start(&hub->beat_timer, on_beat, cfg->server_heartbeat_ms, cfg->server_heartbeat_ms);
    uv_unref((uv_handle_t *)&hub->check_timer);
    uv_unref((uv_handle_t *)&hub->beat_timer);
    rp_net_on_tick(net, on_tick, hub);
    cluster_attach(hub);
    return hub;
fail:
    for (size_t i = 0; i < hub->ring_len; i++) {
        free(hist_at(hub, i)->json);
        rp_free(hist_at(hub, i)->file_id);
    }
    rp_free(hub->ring);
    dedup_free(hub);
    rp_hub_state_deinit(&hub->state);
    if (store)
        store->ops->close(store);
    rp_free(hub);
    return NULL;
}

static void on_timer_closed(uv_handle_t *h)
{
    rp_hub_t *hub = h->data;
    if (--hub->closing == 0)
        rp_free(hub);
}

void rp_hub_free(rp_hub_t *hub)
{
    cluster_detach(hub);
    /* The store first: its last completions still apply and broadcast through the hub. */
    if (hub->store) {
        hub->store->ops->close(hub->store);
        hub->store = NULL;
        hub->closing++;
        uv_close((uv_handle_t *)&hub->prune_timer, on_timer_closed);
    }
    while (!rp_list_empty(&hub->waiters))
        waiter_finish(rp_container_of(hub->waiters.next, waiter_t, node));
    rp_net_off_tick(hub->net, on_tick, hub);
    for (size_t i = 0; i < hub->ring_len; i++) {
        hist_t *h = hist_at(hub, i);
        free(h->json);
        rp_free(h->file_id);
    }
    rp_free(hub->ring);
    dedup_free(hub);
    rp_hub_state_deinit(&hub->state);
    producers_clear(hub);
    hub->closing += 2; /* from here on no delivery sample starts */
    rp_net_marks_cancel(hub->net); /* and the one in flight must not call back into hub */
    uv_close((uv_handle_t *)&hub->check_timer, on_timer_closed);
    uv_close((uv_handle_t *)&hub->beat_timer, on_timer_closed);
}

/* ---- several nodes: the shared event log (docs/architecture.md "Several nodes on Redis") ----
 *
 * With an adapter that has a shared log, an accepted event is not numbered here: it is
 * appended to the log, which numbers it for the whole cluster, and comes back to every node
 * (this one too) through cluster_on_event, in log order; each node then commits it to its own
 * store, applies and broadcasts it to its own sockets (broadcasts are local: every node makes
 * its own). The producer is acked when its event comes back here and is committed. While the
 * log is unreachable, rp_hub_ingest numbers events here (above every id this node has seen)
 * and they stay on this node. */

/* A producer's event between append and its return through the log. */
typedef struct cl_pending {
    rp_list_node_t node; /* in hub->cl_pending */
    rp_hub_t *hub;       /* NULL once the hub is gone */
    uint64_t ticket;
    json_t *in;          /* the producer's event, to go on alone if the append fails */
    rp_hub_done_cb done;
    void *ud;
    int taken;           /* came back through the log: done belongs to the commit now */
    int appended;        /* the append's answer came (it may come before or after the log's) */
} cl_pending_t;

static void cl_pending_free(cl_pending_t *cp)
{
    rp_list_unlink(&cp->node);
    json_decref(cp->in);
    rp_free(cp);
}

static void cluster_on_appended(void *ud, int status, int64_t id)
{
    cl_pending_t *cp = ud;
    rp_hub_t *hub = cp->hub;
    (void)id;
    if (hub && status < 0 && !cp->taken) {
        /* Not appended (Redis went away meanwhile): this node serves it alone. */
        rp_event_error_t err;
        hub->cl_bypass = 1;
        hub->cl_local++;
        if (rp_hub_ingest(hub, cp->in, &err, cp->done, cp->ud) != 0 && cp->done)
            cp->done(cp->ud, UV_ENOMEM, 0);
        hub->cl_bypass = 0;
        cl_pending_free(cp);
        return;
    }
    /* status 1: a duplicate of another node's watchdog event (no producer waits for those). */
    if (!cp->taken && status == 0) {
        cp->appended = 1;
        return; /* the log has it; it comes back through cluster_on_event, which frees it */
    }
    cl_pending_free(cp);
}

static int cluster_ingest(rp_hub_t *hub, rp_event_type_t t, const json_t *in, rp_hub_done_cb done, void *ud)
{
    int64_t ts = now_ms();
    json_t *ev = rp_event_normalize(in, 0, ts);
    size_t len = 0;
    char *json = ev ? rp_json_dump(ev, &len) : NULL;
    cl_pending_t *cp = rp_calloc(1, sizeof(*cp));
    json_t *copy = json_deep_copy(in);
    int rc = json && cp && copy ? 0 : UV_ENOMEM;
    /* The normalised text starts with the id: the log writes its own in between. */
    static const char head[] = "{\"id\":0,";
    if (rc == 0 && (len < sizeof(head) || memcmp(json, head, sizeof(head) - 1) != 0))
        rc = UV_EINVAL;
    if (rc == 0) {
        const char *pid = json_string_value(json_object_get(ev, "pipeline_id"));
        const char *ptype = json_string_value(json_object_get(ev, "pipeline_type"));
        char room_p[160], room_t[96];
        snprintf(room_p, sizeof(room_p), "pipeline:%s", pid);
        snprintf(room_t, sizeof(room_t), "type:%s", ptype);
        const char *rooms[] = {room_p, room_t, "all"};
        *cp = (cl_pending_t){.hub = hub, .ticket = ++hub->cl_ticket, .in = copy, .done = done, .ud = ud};
        rp_cluster_append_t a = {
            .nsp = hub->nsp_pipeline->name,
            .name = rp_event_type_name(t),
            .head = json,
            .head_len = 6,
            .tail = json + 7,
            .tail_len = len - 7,
            .rooms = rooms,
            .nrooms = 3,
            .ts_ms = ts,
            .floor = hub->next_id - 1,
            .dedup = hub->cl_dedup,
            .ticket = cp->ticket,
        };
        rc = hub->cluster->ops->append(hub->cluster, &a, cluster_on_appended, cp);
        if (rc == 0)
            rp_list_push(&hub->cl_pending, &cp->node);
    }
    free(json);
    json_decref(ev);
    if (rc < 0) {
        json_decref(copy);
        rp_free(cp);
    }
    return rc;
}

/* An event of the log (from any node, in log order): commit, apply, broadcast here. */
static void cluster_on_event(void *ud, const rp_cluster_event_t *e)
{
    rp_hub_t *hub = ud;
    cl_pending_t *cp = NULL;
    if (e->mine) {
        rp_list_node_t *it;
        rp_list_foreach(it, &hub->cl_pending)
        {
            cl_pending_t *c = rp_container_of(it, cl_pending_t, node);
            if (c->ticket == e->ticket && !c->taken) {
                cp = c;
                break;
            }
        }
    }
    rp_hub_done_cb done = cp ? cp->done : NULL;
    void *dud = cp ? cp->ud : NULL;
    /* Whichever of the two answers comes second frees the entry: the list stays as short as
     * the appends in flight. */
    if (cp && cp->appended)
        cl_pending_free(cp);
    else if (cp)
        cp->taken = 1;
    if (e->id < hub->next_id) {
        /* Already known (catch-up after a restart), or an id this node used while it was
         * alone: it cannot be stored under that id twice. */
        hub->cl_skipped++;
        if (done)
            done(dud, 0, e->id);
        return;
    }
    /* Whoever can write to the Redis can write entries: check them as a producer's. */
    json_t *ev = json_loadb(e->json, e->json_len, JSON_REJECT_DUPLICATES, NULL);
    json_t *check = ev ? json_deep_copy(ev) : NULL;
    json_object_del(check, "id");
    json_object_del(check, "ts");
    rp_event_error_t err;
    int t = check ? rp_event_validate(check, &err) : -1;
    json_decref(check);
    char *json = malloc(e->json_len + 1);
    pending_t *pe = rp_calloc(1, sizeof(*pe));
    json_t *jid = json_object_get(ev, "id");
    if (t < 0 || json == NULL || pe == NULL || !json_is_integer(jid) || json_integer_value(jid) != e->id ||
        strlen(rp_event_type_name((rp_event_type_t)t)) != e->name_len ||
        memcmp(rp_event_type_name((rp_event_type_t)t), e->name, e->name_len) != 0) {
        RP_LOG_ERROR("hub", "event %lld from the cluster is not a valid event; skipped", (long long)e->id);
        json_decref(ev);
        free(json);
        rp_free(pe);
        if (done)
            done(dud, UV_EINVAL, 0);
        return;
    }
    memcpy(json, e->json, e->json_len);
    json[e->json_len] = '\0';
    hub->next_id = e->id + 1;
    *pe = (pending_t){hub, (rp_event_type_t)t, ev, json, e->json_len, e->id, done, dud, VIA_OTHER, 0};
    if (submit(hub, pe, e->ts_ms ? e->ts_ms : now_ms()) < 0 && done)
        done(dud, UV_ENOMEM, 0);
}

static void collect_room_size(const char *room, size_t len, size_t size, void *ud)
{
    json_t *rooms = ud;
    if (json_object_size(rooms) < 100 && len < 200 && !(len == 20 && strspn(room, "-_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") == 20)) {
        char name[200];
        memcpy(name, room, len);
        name[len] = '\0';
        json_object_set_new(rooms, name, json_integer((json_int_t)size));
    }
}

/* This node's figures for the cluster-wide views. */
static void cluster_publish_stats(rp_hub_t *hub)
{
    rp_eio_server_t *eio = hub->sio->eio;
    json_t *nsps = json_object();
    rp_sio_nsp_t *all[2 + MAX_TYPE_NSPS] = {hub->nsp_pipeline, hub->nsp_root};
    size_t nall = 2;
    for (size_t i = 0; i < hub->ntype_nsps; i++)
        all[nall++] = hub->type_nsps[i];
    for (size_t i = 0; i < nall && nsps; i++) {
        json_t *rooms = json_object();
        rp_sio_nsp_rooms(all[i], collect_room_size, rooms);
        json_object_set_new(nsps, all[i]->name,
                            json_pack("{s:I,s:o}", "sockets", (json_int_t)all[i]->nsockets, "rooms", rooms));
    }
    char ts[32];
    rp_event_format_ts(now_ms(), ts);
    json_t *j = json_pack("{s:I,s:I,s:I,s:I,s:o,s:s}", "version", (json_int_t)rp_hub_version(hub),
                          "connections", (json_int_t)hub->net->nconns, "websocket", (json_int_t)eio->n_websocket,
                          "polling", (json_int_t)eio->n_polling, "namespaces", nsps, "at", ts);
    size_t len;
    char *text = j ? rp_json_dump(j, &len) : NULL;
    if (text)
        hub->cluster->ops->set_stats(hub->cluster, text, len);
    free(text);
    json_decref(j);
}

/* Keeps every connected viewer's session in the cluster (a node can die without a word). */
static void cluster_session_put(rp_hub_t *hub, rp_sio_socket_t *s)
{
    if (hub->cluster == NULL || s->nsp->recovery == NULL || s->pid[0] == '\0')
        return;
    const char *rooms[256];
    size_t n = 0;
    json_t *arr = json_array();
    rp_sio_socket_rooms(s, collect_room, arr);
    size_t i;
    json_t *r;
    json_array_foreach(arr, i, r)
    {
        if (n < 256)
            rooms[n++] = json_string_value(r);
    }
    rp_cluster_session_t cs = {s->pid, s->id, s->nsp->name, rooms, n};
    hub->cluster->ops->session_put(hub->cluster, &cs, hub->cfg.recovery_window_ms);
    json_decref(arr);
}

static void discard_session(void *ud, int found, const rp_cluster_session_t *s)
{
    (void)ud;
    (void)found;
    (void)s;
}

static void cluster_session_del(rp_hub_t *hub, rp_sio_socket_t *s, const char *reason)
{
    if (hub->cluster == NULL || s->nsp->recovery == NULL || s->pid[0] == '\0' || rp_sio_reason_recoverable(reason))
        return; /* a recoverable drop keeps the copy for the window */
    hub->cluster->ops->session_take(hub->cluster, s->pid, discard_session, NULL);
}

/* From on_check: refresh the sessions (a quarter window) and this node's figures. */
static void cluster_check(rp_hub_t *hub)
{
    if (hub->cluster == NULL)
        return;
    unsigned every = hub->cfg.check_interval_ms ? hub->cfg.check_interval_ms : 250;
    unsigned refresh = hub->cfg.recovery_window_ms / 4 / every + 1;
    if (++hub->cl_checks % (2000 / every + 1) == 0)
        cluster_publish_stats(hub);
    if (hub->cl_checks % refresh != 0)
        return;
    rp_sio_nsp_t *all[2 + MAX_TYPE_NSPS] = {hub->nsp_pipeline, hub->nsp_root};
    size_t nall = 2;
    for (size_t i = 0; i < hub->ntype_nsps; i++)
        all[nall++] = hub->type_nsps[i];
    for (size_t i = 0; i < nall; i++) {
        rp_list_node_t *it;
        rp_list_foreach(it, &all[i]->socket_list)
        {
            cluster_session_put(hub, rp_container_of(it, rp_sio_socket_t, nsp_node));
        }
    }
}

static void cluster_attach(rp_hub_t *hub)
{
    rp_cluster_t *c = hub->sio->cluster;
    rp_list_init(&hub->cl_pending);
    if (c == NULL || c->ops->append == NULL)
        return;
    hub->cluster = c;
    c->on_event = cluster_on_event;
    c->on_event_ud = hub;
    cluster_publish_stats(hub);
}

static void cluster_detach(rp_hub_t *hub)
{
    if (hub->cluster) {
        hub->cluster->on_event = NULL;
        hub->cluster->on_event_ud = NULL;
    }
    while (!rp_list_empty(&hub->cl_pending)) {
        cl_pending_t *cp = rp_container_of(hub->cl_pending.next, cl_pending_t, node);
        rp_list_unlink(&cp->node);
        rp_list_init(&cp->node);
        cp->hub = NULL;
    }
    hub->cluster = NULL;
}

/* /health and /api/health: the cluster's part. Returns 0 when it is unreachable. */
static int cluster_health(rp_hub_t *hub, json_t *j)
{
    if (hub->cluster == NULL || j == NULL)
        return 1;
    int ok = hub->cluster->ops->healthy(hub->cluster);
    json_t *nodes = json_loads(hub->cluster->ops->nodes(hub->cluster), 0, NULL);
    json_int_t sockets = 0, conns = 0;
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        conns += json_integer_value(json_object_get(n, "connections"));
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(n, "namespaces"), k, v)
        {
            sockets += json_integer_value(json_object_get(v, "sockets"));
        }
    }
    json_object_set_new(j, "cluster", json_pack("{s:s,s:b,s:I,s:I,s:I,s:I,s:o}", "kind", hub->cluster->kind, "ok", ok,
                                                 "nodes_count", (json_int_t)json_array_size(nodes), "sockets",
                                                 sockets, "connections", conns, "local_events",
                                                 (json_int_t)hub->cl_local, "nodes", nodes ? nodes : json_array()));
    if (!ok)
        json_object_set_new(j, "status", json_string("degraded"));
    return ok;
}

static void cluster_metrics(rp_hub_t *hub, rp_buf_t *b)
{
    rp_cluster_t *c = hub->cluster;
    if (c == NULL)
        return;
    json_t *nodes = json_loads(c->ops->nodes(c), 0, NULL);
    rp_buf_printf(b,
                  "# HELP ragpulse_cluster_up 1 while the cluster's shared log is reachable and this node caught up.\n"
                  "# TYPE ragpulse_cluster_up gauge\nragpulse_cluster_up %d\n"
                  "# HELP ragpulse_cluster_nodes Live nodes (those that reported in the last 10 s).\n"
                  "# TYPE ragpulse_cluster_nodes gauge\nragpulse_cluster_nodes %zu\n"
                  "# HELP ragpulse_cluster_published_total Entries this node wrote to the shared log.\n"
                  "# TYPE ragpulse_cluster_published_total counter\nragpulse_cluster_published_total %lu\n"
                  "# HELP ragpulse_cluster_received_total Entries this node read from the shared log.\n"
                  "# TYPE ragpulse_cluster_received_total counter\nragpulse_cluster_received_total %lu\n"
                  "# HELP ragpulse_cluster_errors_total Malformed entries or failed publishes.\n"
                  "# TYPE ragpulse_cluster_errors_total counter\nragpulse_cluster_errors_total %lu\n"
                  "# HELP ragpulse_cluster_local_events_total Events numbered on this node alone (log unreachable).\n"
                  "# TYPE ragpulse_cluster_local_events_total counter\nragpulse_cluster_local_events_total %lu\n",
                  c->ops->healthy(c), json_array_size(nodes), c->published, c->delivered, c->errors, hub->cl_local);
    rp_buf_printf(b, "# HELP ragpulse_cluster_skipped_total Log events with an id this node already had (catch-up, or used alone during an outage).\n"
                     "# TYPE ragpulse_cluster_skipped_total counter\nragpulse_cluster_skipped_total %lu\n",
                  hub->cl_skipped);
    rp_buf_printf(b, "# HELP ragpulse_cluster_node_sockets Connected sockets per node and namespace.\n"
                     "# TYPE ragpulse_cluster_node_sockets gauge\n");
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *node = json_string_value(json_object_get(n, "node"));
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(n, "namespaces"), k, v)
        {
            if (node && strspn(node, "0123456789abcdef") == strlen(node) && strlen(k) < 128 && !strpbrk(k, "\"\\\n"))
                rp_buf_printf(b, "ragpulse_cluster_node_sockets{node=\"%s\",namespace=\"%s\"} %lld\n", node, k,
                              (long long)json_integer_value(json_object_get(v, "sockets")));
        }
    }
    json_decref(nodes);
}
