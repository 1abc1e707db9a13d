/* SPDX-License-Identifier: MIT */
/* The hub and its store beyond the event road: the replay at start (snapshot, events,
 * recovery sessions), the viewers' sessions kept across a restart, and retention (a state
 * snapshot written in the same commit before events are pruned, so a restart never needs a
 * pruned event). */
#include "hub/hub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/bucket.h"
#include "util/err.h"
#include "util/log.h"

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
        rp_hub_failed(rp_hub_state_apply(&hub->state, (rp_event_type_t)t, ev, se->ts_ms),
                      "apply an event");
    rp_hub_hist_push(hub, se->id, (rp_event_type_t)t, copy, se->json_len, ev);
    json_decref(ev);
    if (se->id >= hub->next_id)
        hub->next_id = se->id + 1;
    if (se->id > hub->committed)
        hub->committed = se->id;
}

/* 1 when nsp is one of the hub's (its handlers are not set yet while the store loads). */
static int is_viewer(rp_hub_t *hub, const rp_sio_nsp_t *nsp)
{
    rp_sio_nsp_t *all[2 + MAX_TYPE_NSPS];
    size_t n = rp_hub_sio_all(hub, all);
    for (size_t i = 0; i < n; i++)
        if (all[i] == nsp)
            return 1;
    return 0;
}

static void on_session_loaded(void *ud, const rp_store_session_t *ss)
{
    rp_hub_t *hub = ud;
    rp_sio_nsp_t *nsp = rp_sio_server_find(hub->sio, ss->nsp, strlen(ss->nsp));
    json_t *rooms = json_loads(ss->rooms, 0, NULL);
    if (nsp && is_viewer(hub, nsp) && hub->cfg.recovery && json_is_array(rooms)) {
        const char *names[256];
        size_t n = 0, i;
        json_t *r;
        json_array_foreach(rooms, i, r)
        {
            if (json_is_string(r) && n < 256)
                names[n++] = json_string_value(r);
        }
        /* Connected when the hub stopped (expires 0): the window starts now. */
        int64_t ttl = ss->expires_ms ? ss->expires_ms - rp_hub_now_ms()
                                     : (int64_t)hub->cfg.recovery_window_ms;
        if (ttl > 0)
            rp_hub_failed(rp_sio_save_session(nsp, ss->pid, ss->sid, names, n, (uint32_t)ttl),
                          "restore a saved session");
    }
    json_decref(rooms);
}

void rp_hub_collect_room(const char *room, size_t len, void *ud)
{
    json_array_append_new(ud, json_stringn(room, len));
}

/* Records s's session in the store: its rooms now (expires 0: connected), so a client can
 * resume it even after the hub is killed. */

void rp_hub_persist_session(rp_hub_t *hub, rp_sio_socket_t *s)
{
    rp_hub_cluster_session_put(hub, s);
    if (hub->store == NULL || s->nsp->recovery == NULL || s->pid[0] == '\0')
        return;
    json_t *rooms = json_array();
    rp_sio_socket_rooms(s, rp_hub_collect_room, rooms);
    char *text = rooms ? json_dumps(rooms, JSON_COMPACT) : NULL;
    if (text) {
        rp_store_session_t ss = {s->pid, s->nsp->name, s->id, text, 0};
        rp_hub_failed(hub->store->ops->session_put(hub->store, &ss), "store a session");
    }
    free(text);
    json_decref(rooms);
}

void rp_hub_on_viewer_connection(rp_sio_socket_t *s, const char *auth, size_t auth_len, void *ud)
{
    (void)auth;
    (void)auth_len;
    if (s->recovered)
        rp_hub_persist_session(ud, s);
    else
        rp_hub_auto_subscribe(ud, s);
}

void rp_hub_on_viewer_disconnect(rp_sio_socket_t *s, const char *reason, void *ud)
{
    rp_hub_t *hub = ud;
    rp_hub_cluster_session_del(hub, s, reason);
    if (hub->store == NULL || s->nsp->recovery == NULL || s->pid[0] == '\0')
        return;
    if (rp_sio_reason_recoverable(reason)) {
        /* Kept for the window: rooms as last recorded, now with an expiry. */
        rp_store_session_t ss = {s->pid, s->nsp->name, s->id, NULL,
                                 rp_hub_now_ms() + hub->cfg.recovery_window_ms};
        rp_hub_failed(hub->store->ops->session_put(hub->store, &ss), "store a session");
    } else {
        rp_hub_failed(hub->store->ops->session_del(hub->store, s->pid), "drop a session");
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
    int64_t cutoff = hub->cfg.retain_days > 0
                         ? rp_hub_now_ms() - (int64_t)(hub->cfg.retain_days * 86400000.0)
                         : 0;
    rp_hub_failed(hub->store->ops->prune(hub->store, hub->cfg.retain_events, cutoff),
                  "prune the store");
}

int rp_hub_store_load(rp_hub_t *hub, char *err, size_t errlen)
{
    rp_store_t *store = hub->store;
    int64_t t0 = rp_hub_now_ms();
    rp_buf_t snap;
    rp_buf_init(&snap, (size_t)1 << 30);
    int64_t sv = 0;
    int rc = store->ops->snapshot_get(store, &sv, &snap);
    if (rc < 0) {
        rp_buf_deinit(&snap);
        snprintf(err, errlen, "cannot read the store: %s", store->ops->error(store));
        return rc;
    }
    if (sv > 0) {
        json_t *sj = json_loadb(snap.data, snap.len, 0, NULL);
        int ok = sj && rp_hub_state_import(&hub->state, sj) == 0;
        json_decref(sj);
        if (!ok) {
            rp_buf_deinit(&snap);
            snprintf(err, errlen, "the state snapshot in the store cannot be read");
            return RP_EPROTO;
        }
        hub->snapshot_version = hub->committed = sv;
        hub->next_id = sv + 1;
    }
    rp_buf_deinit(&snap);
    rc = store->ops->replay(store, 0, on_replayed, hub);
    if (rc >= 0)
        rc = store->ops->sessions(store, t0, on_session_loaded, hub);
    if (rc < 0) {
        snprintf(err, errlen, "cannot read the store: %s", store->ops->error(store));
        return rc;
    }
    RP_LOG_INFO("hub", "rebuilt %zu pipelines from %lld events in the %s store in %lld ms",
                hub->state.npipelines, (long long)hub->committed, store->ops->kind(store),
                (long long)(rp_hub_now_ms() - t0));
    return 0;
}

void rp_hub_store_start(rp_hub_t *hub)
{
    if (hub->store == NULL || (hub->cfg.retain_events <= 0 && hub->cfg.retain_days <= 0))
        return;
    /* Does not fail on an initialised timer with a callback. */
    if (uv_timer_start(&hub->prune_timer, on_prune, 1000, 60000) == 0)
        uv_unref((uv_handle_t *)&hub->prune_timer);
}
