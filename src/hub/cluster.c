/* SPDX-License-Identifier: MIT */
/* The Redis road: several nodes on one shared event log. Only this file reads or writes
 * hub->cl; the event road asks it through rp_hub_cluster_ingest/_shared/_idle. An accepted
 * event is numbered by the log and committed when it comes back through cluster_on_event, on
 * every node in log order; while the log is unreachable this node numbers events alone. */
#include "hub/hub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/bucket.h"
#include "util/err.h"
#include "util/log.h"

/* Several nodes: the shared event log (docs/architecture.md "Several nodes on Redis").
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
    rp_list_node_t node; /* in hub->cl.pending */
    rp_hub_t *hub;       /* NULL once the hub is gone */
    uint64_t ticket;
    json_t *in; /* the producer's event, to go on alone if the append fails */
    rp_hub_done_cb done;
    void *ud;
    int taken;    /* came back through the log: done belongs to the commit now */
    int appended; /* the append's answer came (it may come before or after the log's) */
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
        hub->cl.local++;
        rp_hub_ingest_opts_t alone = {.local = 1};
        int rc = rp_hub_ingest_as(hub, cp->in, &err, cp->done, cp->ud, &alone);
        if (rc < 0 && cp->done)
            cp->done(cp->ud, rc, 0);
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

int rp_hub_cluster_ingest(rp_hub_t *hub, rp_event_type_t t, const json_t *in, const char *dedup,
                          rp_hub_done_cb done, void *ud)
{
    if (hub->cl.log == NULL)
        return RP_EUNAVAIL;
    int64_t ts = rp_hub_now_ms();
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
        *cp = (cl_pending_t){
            .hub = hub, .ticket = ++hub->cl.ticket, .in = copy, .done = done, .ud = ud};
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
            .dedup = dedup,
            .ticket = cp->ticket,
        };
        rc = hub->cl.log->ops->append(hub->cl.log, &a, cluster_on_appended, cp);
        if (rc == 0)
            rp_list_push(&hub->cl.pending, &cp->node);
    }
    free(json);
    json_decref(ev);
    if (rc < 0) {
        json_decref(copy);
        rp_free(cp);
    }
    if (rc == RP_EUNAVAIL)
        hub->cl.local++; /* the log is unreachable: this node goes on alone */
    return rc;
}

/* An event of the log (from any node, in log order): commit, apply, broadcast here. */
static void cluster_on_event(void *ud, const rp_cluster_event_t *e)
{
    rp_hub_t *hub = ud;
    cl_pending_t *cp = NULL;
    if (e->mine) {
        rp_list_node_t *it;
        rp_list_foreach(it, &hub->cl.pending)
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
        hub->cl.skipped++;
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
    if (t < 0 || json == NULL || pe == NULL || !json_is_integer(jid) ||
        json_integer_value(jid) != e->id ||
        strlen(rp_event_type_name((rp_event_type_t)t)) != e->name_len ||
        memcmp(rp_event_type_name((rp_event_type_t)t), e->name, e->name_len) != 0) {
        RP_LOG_ERROR("hub", "event %lld from the cluster is not a valid event; skipped",
                     (long long)e->id);
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
    int64_t ts = e->ts_ms ? e->ts_ms : rp_hub_now_ms();
    *pe = (pending_t){hub, (rp_event_type_t)t, ev, json, e->json_len, e->id, done,
                      dud, VIA_OTHER,          0,  ts,   {0}};
    int rc = rp_hub_submit(hub, pe);
    if (rc < 0 && done)
        done(dud, rc, 0);
}

static void collect_room_size(const char *room, size_t len, size_t size, void *ud)
{
    json_t *rooms = ud;
    if (json_object_size(rooms) < 100 && len < 200 &&
        !(len == 20 &&
          strspn(room, "-_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") == 20)) {
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
        json_object_set_new(
            nsps, all[i]->name,
            json_pack("{s:I,s:o}", "sockets", (json_int_t)all[i]->nsockets, "rooms", rooms));
    }
    char ts[32];
    rp_event_format_ts(rp_hub_now_ms(), ts);
    json_t *j = json_pack("{s:I,s:I,s:I,s:I,s:o,s:s}", "version", (json_int_t)rp_hub_version(hub),
                          "connections", (json_int_t)hub->net->nconns, "websocket",
                          (json_int_t)eio->n_websocket, "polling", (json_int_t)eio->n_polling,
                          "namespaces", nsps, "at", ts);
    size_t len;
    char *text = j ? rp_json_dump(j, &len) : NULL;
    if (text)
        hub->cl.log->ops->set_stats(hub->cl.log, text, len);
    free(text);
    json_decref(j);
}

/* Keeps every connected viewer's session in the cluster (a node can die without a word). */
void rp_hub_cluster_session_put(rp_hub_t *hub, rp_sio_socket_t *s)
{
    if (hub->cl.log == NULL || s->nsp->recovery == NULL || s->pid[0] == '\0')
        return;
    const char *rooms[256];
    size_t n = 0;
    json_t *arr = json_array();
    rp_sio_socket_rooms(s, rp_hub_collect_room, arr);
    size_t i;
    json_t *r;
    json_array_foreach(arr, i, r)
    {
        if (n < 256)
            rooms[n++] = json_string_value(r);
    }
    rp_cluster_session_t cs = {s->pid, s->id, s->nsp->name, rooms, n};
    hub->cl.log->ops->session_put(hub->cl.log, &cs, hub->cfg.recovery_window_ms);
    json_decref(arr);
}

static void discard_session(void *ud, int found, const rp_cluster_session_t *s)
{
    (void)ud;
    (void)found;
    (void)s;
}

void rp_hub_cluster_session_del(rp_hub_t *hub, rp_sio_socket_t *s, const char *reason)
{
    if (hub->cl.log == NULL || s->nsp->recovery == NULL || s->pid[0] == '\0' ||
        rp_sio_reason_recoverable(reason))
        return; /* a recoverable drop keeps the copy for the window */
    rp_hub_failed(hub->cl.log->ops->session_take(hub->cl.log, s->pid, discard_session, NULL),
                  "drop a cluster session");
}

/* From on_check: refresh the sessions (a quarter window) and this node's figures. */
void rp_hub_cluster_check(rp_hub_t *hub)
{
    if (hub->cl.log == NULL)
        return;
    unsigned every = hub->cfg.check_interval_ms ? hub->cfg.check_interval_ms : 250;
    unsigned refresh = hub->cfg.recovery_window_ms / 4 / every + 1;
    if (++hub->cl.checks % (2000 / every + 1) == 0)
        cluster_publish_stats(hub);
    if (hub->cl.checks % refresh != 0)
        return;
    rp_sio_nsp_t *all[2 + MAX_TYPE_NSPS] = {hub->nsp_pipeline, hub->nsp_root};
    size_t nall = 2;
    for (size_t i = 0; i < hub->ntype_nsps; i++)
        all[nall++] = hub->type_nsps[i];
    for (size_t i = 0; i < nall; i++) {
        rp_list_node_t *it;
        rp_list_foreach(it, &all[i]->socket_list)
        {
            rp_hub_cluster_session_put(hub, rp_container_of(it, rp_sio_socket_t, nsp_node));
        }
    }
}

void rp_hub_cluster_init(rp_hub_t *hub)
{
    memset(&hub->cl, 0, sizeof(hub->cl));
    rp_list_init(&hub->cl.pending);
}

int rp_hub_cluster_shared(const rp_hub_t *hub)
{
    return hub->cl.log != NULL;
}

int rp_hub_cluster_idle(const rp_hub_t *hub)
{
    return rp_list_empty(&hub->cl.pending);
}

void rp_hub_cluster_attach(rp_hub_t *hub)
{
    rp_cluster_t *c = hub->sio->cluster;
    if (c == NULL || c->ops->append == NULL)
        return;
    hub->cl.log = c;
    c->on_event = cluster_on_event;
    c->on_event_ud = hub;
    cluster_publish_stats(hub);
}

void rp_hub_cluster_detach(rp_hub_t *hub)
{
    if (hub->cl.log) {
        hub->cl.log->on_event = NULL;
        hub->cl.log->on_event_ud = NULL;
    }
    while (!rp_list_empty(&hub->cl.pending)) {
        cl_pending_t *cp = rp_container_of(hub->cl.pending.next, cl_pending_t, node);
        rp_list_unlink(&cp->node);
        rp_list_init(&cp->node);
        cp->hub = NULL;
    }
    hub->cl.log = NULL;
}

/* /health and /api/health: the cluster's part; the status says "degraded" while it is
 * unreachable. */
void rp_hub_cluster_health(rp_hub_t *hub, json_t *j)
{
    if (hub->cl.log == NULL || j == NULL)
        return;
    int ok = hub->cl.log->ops->healthy(hub->cl.log);
    json_t *nodes = json_loads(hub->cl.log->ops->nodes(hub->cl.log), 0, NULL);
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
    json_object_set_new(j, "cluster",
                        json_pack("{s:s,s:b,s:I,s:I,s:I,s:I,s:o}", "kind", hub->cl.log->kind, "ok",
                                  ok, "nodes_count", (json_int_t)json_array_size(nodes), "sockets",
                                  sockets, "connections", conns, "local_events",
                                  (json_int_t)hub->cl.local, "nodes",
                                  nodes ? nodes : json_array()));
    if (!ok)
        json_object_set_new(j, "status", json_string("degraded"));
}

void rp_hub_cluster_metrics(rp_hub_t *hub, rp_buf_t *b)
{
    rp_cluster_t *c = hub->cl.log;
    if (c == NULL)
        return;
    json_t *nodes = json_loads(c->ops->nodes(c), 0, NULL);
    rp_buf_printf(
        b,
        "# HELP ragpulse_cluster_up 1 while the cluster's shared log is reachable and this node "
        "caught up.\n"
        "# TYPE ragpulse_cluster_up gauge\nragpulse_cluster_up %d\n"
        "# HELP ragpulse_cluster_nodes Live nodes (those that reported in the last 10 s).\n"
        "# TYPE ragpulse_cluster_nodes gauge\nragpulse_cluster_nodes %zu\n"
        "# HELP ragpulse_cluster_published_total Entries this node wrote to the shared log.\n"
        "# TYPE ragpulse_cluster_published_total counter\nragpulse_cluster_published_total %lu\n"
        "# HELP ragpulse_cluster_received_total Entries this node read from the shared log.\n"
        "# TYPE ragpulse_cluster_received_total counter\nragpulse_cluster_received_total %lu\n"
        "# HELP ragpulse_cluster_errors_total Malformed entries or failed publishes.\n"
        "# TYPE ragpulse_cluster_errors_total counter\nragpulse_cluster_errors_total %lu\n"
        "# HELP ragpulse_cluster_local_events_total Events numbered on this node alone (log "
        "unreachable).\n"
        "# TYPE ragpulse_cluster_local_events_total counter\nragpulse_cluster_local_events_total "
        "%lu\n",
        c->ops->healthy(c), json_array_size(nodes), c->published, c->delivered, c->errors,
        hub->cl.local);
    rp_buf_printf(
        b,
        "# HELP ragpulse_cluster_skipped_total Log events with an id this node already had "
        "(catch-up, or used alone during an outage).\n"
        "# TYPE ragpulse_cluster_skipped_total counter\nragpulse_cluster_skipped_total %lu\n",
        hub->cl.skipped);
    rp_buf_printf(b,
                  "# HELP ragpulse_cluster_node_sockets Connected sockets per node and namespace.\n"
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
            if (node && strspn(node, "0123456789abcdef") == strlen(node) && strlen(k) < 128 &&
                !strpbrk(k, "\"\\\n"))
                rp_buf_printf(
                    b, "ragpulse_cluster_node_sockets{node=\"%s\",namespace=\"%s\"} %lld\n", node,
                    k, (long long)json_integer_value(json_object_get(v, "sockets")));
        }
    }
    json_decref(nodes);
}
