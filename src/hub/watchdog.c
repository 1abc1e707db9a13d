/* SPDX-License-Identifier: MIT */
/* The watchdogs and ticks: every check_interval_ms, silent pipelines go offline and stalled
 * files fail (synthetic events on the producers' road, so every view agrees), expired
 * long-polls are answered and admin:stats is sent; every server_heartbeat_ms a hub:heartbeat
 * goes to every viewer; before each flush, long-polls woken this turn are answered. */
#include "hub/hub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/bucket.h"
#include "util/err.h"
#include "util/log.h"

/* Sends a watchdog's event (taken over; NULL: out of memory) down the producers' road;
 * dedup is its key for the cluster, which keeps the first node's event only. */
static void synthesize(rp_hub_t *hub, json_t *ev, const char *dedup)
{
    rp_event_error_t err = {{0}, {0}};
    rp_hub_ingest_opts_t opts = {.dedup = dedup};
    int rc = ev ? rp_hub_ingest_as(hub, ev, &err, NULL, NULL, &opts) : UV_ENOMEM;
    if (rc == 0)
        hub->synthetic++;
    else
        RP_LOG_ERROR("hub", "synthetic event refused (%s): %s %s", rp_err_name(rc), err.field,
                     err.rule);
    json_decref(ev);
}

#define STALLS_PER_CHECK 1000

static void on_check(uv_timer_t *t)
{
    rp_hub_t *hub = t->data;
    int64_t now = rp_hub_now_ms();
    size_t stalls = 0;
    rp_hub_cluster_check(hub);
    rp_hub_settle_reservations(hub);
    /* About every 2 s, let the store prove it is reachable even when nothing is written. */
    if (hub->store &&
        ++hub->checks %
                (2000 / (hub->cfg.check_interval_ms ? hub->cfg.check_interval_ms : 250) + 1) ==
            0)
        rp_hub_peer_failed(hub->store->ops->ping(hub->store), "ping the store");
    rp_list_node_t *it, *tmp;
    rp_list_foreach_safe(it, tmp, &hub->state.pipeline_list)
    {
        rp_hub_pipeline_t *p = rp_container_of(it, rp_hub_pipeline_t, node);
        double limit = p->heartbeat_interval * hub->cfg.heartbeat_timeout * 1000.0;
        if (p->status != RP_PIPE_OFFLINE && p->last_heartbeat &&
            (double)(now - p->last_heartbeat) > limit) {
            char msg[96];
            snprintf(msg, sizeof(msg), "no heartbeat for %.1f s",
                     (double)(now - p->last_heartbeat) / 1000.0);
            /* Every node sees the silence; the cluster keeps the first node's event only. */
            char key[200];
            snprintf(key, sizeof(key), "offline:%.128s:%lld", p->id, (long long)p->last_heartbeat);
            synthesize(hub,
                       json_pack("{s:s,s:s,s:s,s:s}", "type", "pipeline:offline", "pipeline_id",
                                 p->id, "pipeline_type", p->type, "message", msg),
                       key);
        }
        /* Least recent progress first: the walk ends at the first file that is not stalled,
         * and a check fails at most STALLS_PER_CHECK files (a million stalled at once take
         * many ticks, not one long one). */
        rp_list_node_t *fi, *ftmp;
        rp_list_foreach_safe(fi, ftmp, &p->progress_list)
        {
            rp_hub_file_t *f = rp_container_of(fi, rp_hub_file_t, progress_node);
            if (now - f->last_progress_at <= (int64_t)hub->cfg.stall_timeout_ms ||
                stalls >= STALLS_PER_CHECK)
                break;
            stalls++;
            char msg[96];
            snprintf(msg, sizeof(msg), "stalled: no progress for %lld s",
                     (long long)((now - f->last_progress_at) / 1000));
            char key[420];
            snprintf(key, sizeof(key), "stalled:%.128s:%.256s:%lld", p->id, f->id,
                     (long long)f->last_progress_at);
            synthesize(hub,
                       json_pack("{s:s,s:s,s:s,s:{s:s,s:s,s:{s:s,s:s,s:b}}}", "type", "file:failed",
                                 "pipeline_id", p->id, "pipeline_type", p->type, "file", "id",
                                 f->id, "name", f->name, "error", "message", msg, "kind", "stalled",
                                 "retryable", 1),
                       key);
        }
    }
    rp_list_foreach_safe(it, tmp, &hub->waiters)
    {
        waiter_t *w = rp_container_of(it, waiter_t, node);
        if (now >= w->deadline)
            rp_hub_waiter_finish(w);
    }
    if (now - hub->stats_at >= 2000) {
        hub->stats_at = now;
        rp_hub_producers_prune(hub);
        static const char *const mon[] = {"admin:monitoring"};
        if (rp_sio_room_size(hub->nsp_pipeline, mon[0], strlen(mon[0])) > 0) {
            json_t *j = rp_hub_admin_stats(hub);
            size_t len;
            char *text = j ? rp_json_dump(j, &len) : NULL;
            if (text)
                rp_hub_failed(rp_sio_broadcast(hub->nsp_pipeline,
                                               &(rp_sio_bcast_t){.rooms = mon, .nrooms = 1},
                                               "admin:stats", text, len, NULL, 0),
                              "broadcast");
            free(text);
            json_decref(j);
        }
    }
}

static void on_beat(uv_timer_t *t)
{
    rp_hub_t *hub = t->data;
    char ts[32];
    rp_event_format_ts(rp_hub_now_ms(), ts);
    size_t online = 0, inflight = 0;
    rp_list_node_t *it;
    rp_list_foreach(it, &hub->state.pipeline_list)
    {
        rp_hub_pipeline_t *p = rp_container_of(it, rp_hub_pipeline_t, node);
        online += p->status != RP_PIPE_OFFLINE;
        inflight += p->nfiles;
    }
    json_t *j =
        json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "source", "hub", "server_time", ts, "version",
                  (json_int_t)rp_hub_version(hub), "pipelines", (json_int_t)hub->state.npipelines,
                  "online", (json_int_t)online, "files_in_flight", (json_int_t)inflight,
                  "connections", (json_int_t)hub->net->nconns);
    size_t len;
    char *text = j ? rp_json_dump(j, &len) : NULL;
    /* Each node beats to its own viewers, as hub:heartbeat: a pipeline's `heartbeat` is one of
     * its events (id, pipeline_id). Under --legacy-events it also goes as `heartbeat` (with
     * source "hub", the discriminator docs/events.schema.json names) for clients of the old name.
     */
    rp_sio_nsp_t *all[2 + MAX_TYPE_NSPS] = {hub->nsp_pipeline, hub->nsp_root};
    size_t nall = 2;
    for (size_t i = 0; i < hub->ntype_nsps; i++)
        all[nall++] = hub->type_nsps[i];
    rp_sio_bcast_t local = {.local = 1};
    for (size_t i = 0; text && i < nall; i++) {
        rp_hub_failed(rp_sio_broadcast(all[i], &local, "hub:heartbeat", text, len, NULL, 0),
                      "broadcast");
        if (hub->cfg.legacy_events)
            rp_hub_failed(rp_sio_broadcast(all[i], &local, "heartbeat", text, len, NULL, 0),
                          "broadcast");
    }
    free(text);
    json_decref(j);
}

/* Runs before each flush: answers the long-polls that events of this loop turn woke. */
void rp_hub_on_tick(void *ud)
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
            rp_hub_waiter_finish(w);
    }
}

void rp_hub_watchdog_start(rp_hub_t *hub)
{
    /* Neither fails on an initialised timer with a callback (libuv returns UV_EINVAL only
     * for a closing handle or a NULL callback). */
    uint32_t every = hub->cfg.check_interval_ms;
    if (uv_timer_start(&hub->check_timer, on_check, every, every) == 0)
        uv_unref((uv_handle_t *)&hub->check_timer);
    uint32_t beat = hub->cfg.server_heartbeat_ms;
    if (uv_timer_start(&hub->beat_timer, on_beat, beat, beat) == 0)
        uv_unref((uv_handle_t *)&hub->beat_timer);
}
