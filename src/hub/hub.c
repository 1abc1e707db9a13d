/* SPDX-License-Identifier: MIT */
/* The hub's lifecycle and its one event road. Every event goes through rp_hub_ingest_as in
 * one order: validate, number (here, or by the cluster's log), commit to the store (off the
 * loop, grouped; without one, on the next loop turn), then apply to state, keep in history,
 * broadcast with its id as offset, wake long-polls, ack. Synthetic events (offline on
 * silence, failed when stalled) take the same road, so viewers, the HTTP path and a restart
 * never disagree. The other jobs live beside it: see hub_int.h. */
#include "hub/hub_int.h"

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

int64_t rp_hub_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void rp_hub_failed(int rc, const char *what)
{
    if (rc < 0)
        RP_LOG_ERROR("hub", "cannot %s: %s", what, rp_err_name(rc));
}

void rp_hub_peer_failed(int rc, const char *what)
{
    if (rc < 0)
        RP_LOG_INFO("hub", "cannot %s: %s", what, rp_err_name(rc));
}

int64_t rp_hub_version(const rp_hub_t *hub)
{
    return hub->committed;
}

/* Fan-out: one broadcast per namespace that carries the event. */

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

static void fan_out(rp_hub_t *hub, rp_event_type_t t, const json_t *ev, const char *json,
                    size_t len, int64_t id)
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
    rp_sio_bcast_t opts = {
        .rooms = rooms, .nrooms = 3, .offset = offset, .local = rp_hub_cluster_shared(hub)};
    rp_hub_failed(rp_sio_broadcast(hub->nsp_pipeline, &opts, name, json, len, NULL, 0),
                  "broadcast");
    rp_hub_failed(rp_sio_broadcast(hub->nsp_root, &opts, name, json, len, NULL, 0), "broadcast");
    /* A type namespace carries only its own type; its type room is the subscription that
     * connecting makes (auto_subscribe). */
    rp_sio_bcast_t topts = opts;
    for (size_t i = 0; i < hub->ntype_nsps; i++)
        if (strcmp(hub->type_nsps[i]->name + 1, ptype) == 0)
            rp_hub_failed(rp_sio_broadcast(hub->type_nsps[i], &topts, name, json, len, NULL, 0),
                          "broadcast");
    const char *legacy = hub->cfg.legacy_events ? legacy_name(t) : NULL;
    if (legacy) {
        /* Dashboards written for the old names never subscribe: on /pipeline and / they get
         * the whole namespace; on a type namespace, where connecting subscribes, its type's
         * room, as the current names (the documents' clients listen there). */
        rp_sio_bcast_t lopts = {.local = rp_hub_cluster_shared(hub)};
        rp_hub_failed(rp_sio_broadcast(hub->nsp_pipeline, &lopts, legacy, json, len, NULL, 0),
                      "broadcast");
        rp_hub_failed(rp_sio_broadcast(hub->nsp_root, &lopts, legacy, json, len, NULL, 0),
                      "broadcast");
        for (size_t i = 0; i < hub->ntype_nsps; i++)
            if (strcmp(hub->type_nsps[i]->name + 1, ptype) == 0)
                rp_hub_failed(
                    rp_sio_broadcast(hub->type_nsps[i], &topts, legacy, json, len, NULL, 0),
                    "broadcast");
    }
}

/* The current event type a producer's legacy event name stands for (--legacy-events), or
 * NULL. pipeline:status means online or offline when its status says so, else status:update;
 * for online and offline the status field is removed (those types carry none). */
const char *rp_hub_legacy_produced_name(const char *name, json_t *in)
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

/* The delivery sample's last recipient has been written to (or has gone). */
static void on_delivered(void *ud)
{
    rp_hub_t *hub = ud;
    rp_hist_observe(&hub->delivery_lat, uv_hrtime() - hub->sample_t0);
}

/* Broadcasts an event committed now; every DELIVERY_SAMPLE_NS, when no sample is in flight,
 * its local recipients are marked so that on_delivered sees when the last is written. */
static void fan_out_sampled(rp_hub_t *hub, rp_event_type_t t, const json_t *ev, const char *json,
                            size_t len, int64_t id)
{
    uint64_t now = uv_hrtime();
    int sample =
        !hub->closing && !rp_net_marks_busy(hub->net) && now - hub->sample_at >= DELIVERY_SAMPLE_NS;
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
    /* Out of memory here leaves the state short of this event; the log and history have it. */
    rp_hub_failed(rp_hub_state_apply(&hub->state, pe->type, pe->ev, pe->ts_ms), "apply an event");
    hub->events_in[pe->type]++;
    if (pe->id > hub->committed)
        hub->committed = pe->id;
    rp_hub_hist_push(hub, pe->id, pe->type, pe->json, pe->len, pe->ev);
    if (pe->via != VIA_OTHER)
        rp_hist_observe(&hub->commit_lat[pe->via == VIA_SOCKET], uv_hrtime() - pe->t_in);
    fan_out_sampled(hub, pe->type, pe->ev, pe->json, pe->len, pe->id);
    schedule_wake(hub);
    json_decref(pe->ev);
    if (pe->done)
        pe->done(pe->ud, 0, pe->id);
    rp_free(pe);
}

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
    rp_hub_settle_reservations(pe->hub);
    free(pe->json);
    json_decref(pe->ev);
    rp_free(pe);
}

/* Checks a validated event against the bounds on files in flight (see rp_hub_state_admit).
 * Returns 0, or RP_ETOOBIG with err filled, *limit (may be NULL) the bound and the hit
 * counted; or UV_ENOMEM. */
int rp_hub_admit(rp_hub_t *hub, rp_event_type_t t, const json_t *in, rp_event_error_t *err,
                 int *reserved, int *limit)
{
    char why[sizeof(err->rule)];
    int rc = rp_hub_state_admit(&hub->state, t, in, hub->cfg.max_files_in_flight,
                                hub->cfg.max_files_total, reserved, why, sizeof(why));
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
json_t *rp_hub_limit_json(const rp_event_error_t *err, int limit)
{
    return json_pack("{s:s,s:s,s:s,s:s}", "error", "too many files in flight", "field", err->field,
                     "rule", err->rule, "limit", limit_name(limit));
}

int rp_hub_ingest_as(rp_hub_t *hub, const json_t *in, rp_event_error_t *err, rp_hub_done_cb done,
                     void *ud, const rp_hub_ingest_opts_t *opts)
{
    static const rp_hub_ingest_opts_t none;
    if (opts == NULL)
        opts = &none;
    int t = rp_event_validate(in, err);
    if (t < 0) {
        hub->refused[REFUSED_INVALID]++;
        return RP_EINVAL;
    }
    int arc = rp_hub_admit(hub, (rp_event_type_t)t, in, err, NULL, opts->limit);
    if (arc < 0)
        return arc;
    if (!opts->local) {
        /* RP_EUNAVAIL: no shared log, or it is unreachable and this node goes on alone. */
        int crc = rp_hub_cluster_ingest(hub, (rp_event_type_t)t, in, opts->dedup, done, ud);
        if (crc != RP_EUNAVAIL)
            return crc;
    }
    int64_t ts = rp_hub_now_ms();
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
    *pe = (pending_t){hub, (rp_event_type_t)t, ev,          json, len, id, done,
                      ud,  hub->via,           uv_hrtime(), ts,   {0}};
    return rp_hub_submit(hub, pe);
}

int rp_hub_ingest(rp_hub_t *hub, const json_t *in, rp_event_error_t *err, rp_hub_done_cb done,
                  void *ud)
{
    return rp_hub_ingest_as(hub, in, err, done, ud, NULL);
}

/* No admitted event is waiting for the store or the shared log: reservations left by events
 * that never got applied (a store failure) can go. */
void rp_hub_settle_reservations(rp_hub_t *hub)
{
    if (hub->in_flight == 0 && rp_hub_cluster_idle(hub))
        rp_hub_state_unreserve_all(&hub->state);
}

/* The deferred events' turn (no store): commit them in the order they came. Runs from the
 * loop, never from inside the call that submitted them (libuv's rule for callbacks). */
static void on_deferred(uv_idle_t *idle)
{
    rp_hub_t *hub = idle->data;
    rp_list_node_t batch;
    rp_list_init(&batch);
    /* Events committed now may submit more (a producer's ack emitting the next): those wait
     * for the next turn, so one turn ends. */
    while (!rp_list_empty(&hub->deferred)) {
        rp_list_node_t *n = hub->deferred.next;
        rp_list_unlink(n);
        rp_list_push(&batch, n);
    }
    while (!rp_list_empty(&batch)) {
        pending_t *pe = rp_container_of(batch.next, pending_t, node);
        rp_list_unlink(&pe->node);
        hub->in_flight--;
        commit_event(pe);
    }
    if (rp_list_empty(&hub->deferred))
        uv_idle_stop(&hub->defer_idle);
}

/* Commits every deferred event now: for rp_hub_close, whose caller expects what was accepted
 * to be applied and broadcast, as the store's last completions are. */
static void flush_deferred(rp_hub_t *hub)
{
    while (!rp_list_empty(&hub->deferred)) {
        pending_t *pe = rp_container_of(hub->deferred.next, pending_t, node);
        rp_list_unlink(&pe->node);
        hub->in_flight--;
        commit_event(pe);
    }
}

int rp_hub_submit(rp_hub_t *hub, pending_t *pe)
{
    json_t *ev = pe->ev;
    char *json = pe->json;
    size_t len = pe->len;
    int64_t id = pe->id;
    rp_event_type_t t = pe->type;
    if (hub->store == NULL) {
        int rc = uv_idle_start(&hub->defer_idle, on_deferred);
        if (rc < 0) {
            free(json);
            json_decref(ev);
            rp_free(pe);
            return rc;
        }
        rp_list_push(&hub->deferred, &pe->node);
        hub->in_flight++;
        return 0;
    }
    const json_t *f = json_object_get(ev, "file");
    rp_store_event_t se = {
        .id = id,
        .ts_ms = pe->ts_ms,
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

/* Frees what rp_hub_new built before any handle or handler: the history, the keys, the
 * state, the producers' buckets. */
static void free_memory(rp_hub_t *hub)
{
    rp_hub_history_free(hub);
    rp_hub_dedup_free(hub);
    rp_hub_state_deinit(&hub->state);
    rp_hub_producers_clear(hub);
}

static void on_handle_closed(uv_handle_t *h)
{
    rp_hub_t *hub = h->data;
    if (--hub->closing > 0)
        return;
    if (hub->close_cb)
        hub->close_cb(hub);
    rp_free(hub);
}

/* Closes the handles rp_hub_new initialised (hub->handles of them, in init order); the hub
 * is freed by the last close callback. */
static void close_handles(rp_hub_t *hub, int handles)
{
    uv_handle_t *all[] = {(uv_handle_t *)&hub->defer_idle, (uv_handle_t *)&hub->check_timer,
                          (uv_handle_t *)&hub->beat_timer, (uv_handle_t *)&hub->prune_timer};
    hub->closing += handles;
    for (int i = 0; i < handles; i++) {
        all[i]->data = hub;
        uv_close(all[i], on_handle_closed);
    }
}

/* Initialises the hub's libuv handles in close_handles' order; *handles counts those done. */
static int init_handles(rp_hub_t *hub, int *handles)
{
    uv_loop_t *loop = hub->net->loop;
    int rc = uv_idle_init(loop, &hub->defer_idle);
    if (rc < 0)
        return rc;
    (*handles)++;
    rc = uv_timer_init(loop, &hub->check_timer);
    if (rc < 0)
        return rc;
    (*handles)++;
    rc = uv_timer_init(loop, &hub->beat_timer);
    if (rc < 0)
        return rc;
    (*handles)++;
    rc = uv_timer_init(loop, &hub->prune_timer);
    if (rc < 0)
        return rc;
    (*handles)++;
    hub->defer_idle.data = hub->check_timer.data = hub->beat_timer.data = hub->prune_timer.data =
        hub;
    return 0;
}

rp_hub_t *rp_hub_new(rp_sio_server_t *sio, rp_net_t *net, const rp_hub_config_t *cfg,
                     rp_store_t *store, char *err, size_t errlen)
{
    snprintf(err, errlen, "out of memory");
    rp_hub_t *hub = rp_calloc(1, sizeof(*hub));
    if (hub == NULL)
        goto undo_store;
    hub->sio = sio;
    hub->net = net;
    hub->store = store;
    hub->cfg = *cfg;
    hub->next_id = 1;
    rp_hub_state_init(&hub->state);
    hub->state.default_heartbeat_interval = cfg->default_heartbeat_interval;
    rp_list_init(&hub->waiters);
    rp_list_init(&hub->deferred);
    rp_map_init(&hub->producers);
    rp_hub_cluster_init(hub);
    hub->ring_cap = cfg->history ? cfg->history : 1;
    hub->ring = rp_calloc(hub->ring_cap, sizeof(*hub->ring));
    hub->dedup = json_object();
    hub->dedup_ring = rp_calloc(RP_DEDUP_KEYS, sizeof(*hub->dedup_ring));
    if (hub->ring == NULL || hub->dedup == NULL || hub->dedup_ring == NULL ||
        hub->state.failure_groups == NULL)
        goto undo_memory;
    /* The namespaces exist before the store is read (sessions are saved on them), but no
     * handler points at the hub until nothing after them can fail but rp_hub_sio_attach. */
    int rc = rp_hub_sio_namespaces(hub);
    if (rc < 0)
        goto undo_memory;
    if (store && rp_hub_store_load(hub, err, errlen) < 0)
        goto undo_memory;
    int handles = 0;
    snprintf(err, errlen, "cannot start the hub's timers");
    rc = init_handles(hub, &handles);
    if (rc < 0)
        goto undo_handles;
    snprintf(err, errlen, "too many loop-turn callbacks");
    rc = rp_net_on_tick(net, rp_hub_on_tick, hub);
    if (rc < 0)
        goto undo_handles;
    snprintf(err, errlen, "out of memory");
    rc = rp_hub_sio_attach(hub);
    if (rc < 0)
        goto undo_tick;
    /* Nothing below fails: the timers start and the cluster's log points at the hub. */
    rp_hub_watchdog_start(hub);
    rp_hub_store_start(hub);
    rp_hub_cluster_attach(hub);
    err[0] = '\0';
    return hub;
undo_tick:
    rp_net_off_tick(net, rp_hub_on_tick, hub);
undo_handles:
    free_memory(hub);
    if (store)
        store->ops->close(store);
    hub->store = NULL;
    if (handles > 0) {
        close_handles(hub, handles); /* frees the hub once the loop has run */
        return NULL;
    }
    rp_free(hub);
    return NULL;
undo_memory:
    free_memory(hub);
    rp_free(hub);
undo_store:
    if (store)
        store->ops->close(store);
    return NULL;
}

void rp_hub_close(rp_hub_t *hub, rp_hub_close_cb cb)
{
    hub->close_cb = cb;
    rp_hub_cluster_detach(hub);
    /* The store first: its last completions still apply and broadcast through the hub. */
    if (hub->store) {
        hub->store->ops->close(hub->store);
        hub->store = NULL;
    }
    flush_deferred(hub); /* and so do the events accepted without a store */
    while (!rp_list_empty(&hub->waiters))
        rp_hub_waiter_finish(rp_container_of(hub->waiters.next, waiter_t, node));
    rp_net_off_tick(hub->net, rp_hub_on_tick, hub);
    rp_hub_sio_detach(hub);
    free_memory(hub);
    close_handles(hub, 4);         /* from here on no delivery sample starts (closing > 0) */
    rp_net_marks_cancel(hub->net); /* and the one in flight must not call back into hub */
}
