/* SPDX-License-Identifier: MIT */
/* The Socket.IO side of the hub: viewers' subscribe/unsubscribe/files/ping, the producers'
 * events (acked with their id once committed), admin:disconnect, the recovery hook that
 * replays missed events, and the registration of all these handlers on the hub's
 * namespaces. Who may do what is asked of policy.c; events go down hub.c's road. */
#include "hub/hub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/bucket.h"
#include "util/err.h"
#include "util/log.h"

static void emit_sync(rp_hub_t *hub, rp_sio_socket_t *s);

/* What one snapshot may list of the files in flight, whatever their number: it is built and
 * serialised in one loop turn, and a subscribe ack must fit in the subscriber's --max-queued
 * (acks get an allowance past it, but only for a bounded answer). So at most a quarter of
 * max_queued of file JSON, at most SNAPSHOT_MAX_FILES files, shared among the pipelines with
 * at least SNAPSHOT_MIN_FILES each; the rest comes page by page (GET
 * /api/pipelines/ID/files, the socket's `files`). */
#define SNAPSHOT_MAX_FILES 1000
#define SNAPSHOT_MIN_FILES 10

static size_t snapshot_bytes(const rp_hub_t *hub)
{
    return hub->sio->eio->cfg.max_queued / 4;
}

json_t *rp_hub_snapshot(rp_hub_t *hub, const char *id, const char *type)
{
    int64_t now = rp_hub_now_ms();
    size_t bytes = snapshot_bytes(hub);
    size_t max_files = bytes / 256 < SNAPSHOT_MAX_FILES ? bytes / 256 : SNAPSHOT_MAX_FILES;
    json_t *pipes =
        rp_hub_state_json(&hub->state, id, type, now, max_files, SNAPSHOT_MIN_FILES, bytes);
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
json_t *rp_hub_files_page(rp_hub_t *hub, const char *pid, const char *type, const char *after,
                          long long limit, int *status, char *msg, size_t msglen)
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
            snprintf(msg, msglen,
                     "file %.256s is not in flight any more: page again from the start (no after)",
                     after);
        else
            snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    json_t *j = json_pack("{s:I,s:s,s:I,s:o,s:s?}", "version", (json_int_t)rp_hub_version(hub),
                          "pipeline_id", p->id, "in_flight", (json_int_t)p->nfiles, "files", files,
                          "next", next);
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
        rp_hub_peer_failed(rp_sio_ack(s, ack_id, text, len, NULL, 0), "ack");
    free(text);
    json_decref(j);
}

json_t *rp_hub_error_json(const char *error, const rp_event_error_t *err)
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
    const rp_principal_t *who = rp_hub_socket_principal(s);
    if (filter && !json_is_object(filter)) {
        ack_json(s, ev->ack_id,
                 json_pack("{s:s}", "error", "subscribe takes {pipeline_id} or {pipeline_type}"));
        json_decref(filter);
        return;
    }
    if (ntype && type && strcmp(type, ntype) != 0) {
        ack_json(s, ev->ack_id,
                 json_pack("{s:s}", "error", "this namespace serves one pipeline type"));
        json_decref(filter);
        return;
    }
    if (want_room && (strcmp(want_room, "admin:monitoring") != 0 || s->nsp != hub->nsp_pipeline)) {
        ack_json(s, ev->ack_id,
                 json_pack("{s:s}", "error",
                           "the only room to ask for by name is admin:monitoring, on /pipeline"));
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
    if (rp_hub_expired(hub, who) || !rp_hub_room_allowed(who, room)) {
        ack_denied(
            hub, s, ev->ack_id, rp_hub_expired(hub, who) ? DENY_UNAUTHORIZED : DENY_FORBIDDEN,
            rp_hub_expired(hub, who) ? "token expired"
            : want_room              ? "admin:monitoring is for admins"
            : pid                    ? "this token does not cover that pipeline"
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
            snprintf(msg, sizeof(msg), "too many subscriptions (at most %zu a socket)",
                     hub->cfg.max_subscriptions);
        else
            snprintf(msg, sizeof(msg), "too many rooms for one socket (at most %u)",
                     hub->sio->cfg.max_rooms_per_socket);
        ack_json(s, ev->ack_id,
                 json_pack("{s:s}", "error", rc == RP_ETOOBIG ? msg : "cannot subscribe"));
        json_decref(filter);
        return;
    }
    hub->subscribes++;
    if (ntype) {
        /* The subscription connecting made (auto_subscribe) gives way to the one asked for. */
        char auto_room[96];
        snprintf(auto_room, sizeof(auto_room), "type:%s", ntype);
        rp_hub_peer_failed(rp_sio_leave(s, auto_room, strlen(auto_room)), "leave");
    }
    json_t *snap = want_room ? rp_hub_admin_stats(hub)
                             : rp_hub_snapshot(hub, pid, pid ? NULL : (type ? type : ntype));
    if (snap) {
        rp_hub_filter_visible(snap, "pipelines", who);
        json_object_set_new(snap, "ok", json_true());
        json_object_set_new(snap, "room", json_string(room));
    }
    ack_json(s, ev->ack_id, snap);
    json_decref(filter);
    if (!want_room)
        emit_sync(hub, s);
    rp_hub_persist_session(hub, s);
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
    rp_hub_peer_failed(rp_sio_emit_offset(s, "sync", args, (size_t)n, offset), "sync");
}

/* On a type namespace, connecting is subscribing to the type, as the documents' clients expect
 * (`io(".../google_drive")`, then listen): the socket joins the namespace's type room (with a
 * token for some pipelines, each of those pipelines' rooms), gets the state as a first
 * `snapshot` event (the subscribe ack's shape), then `sync`. The client's first `subscribe`
 * replaces the type room (it narrows to what it asks for), and `unsubscribe {}` leaves it.
 * Producer-only tokens view nothing, so they join nothing. */
void rp_hub_auto_subscribe(rp_hub_t *hub, rp_sio_socket_t *s)
{
    const char *ntype = nsp_type(hub, s->nsp);
    const rp_principal_t *who = rp_hub_socket_principal(s);
    if (ntype == NULL || (who && (who->role == RP_ROLE_PRODUCER || rp_hub_expired(hub, who))))
        return;
    char room[96];
    snprintf(room, sizeof(room), "type:%s", ntype);
    if (rp_hub_room_allowed(who, room)) {
        rp_hub_peer_failed(rp_sio_join(s, room, strlen(room)), "join");
    } else {
        snprintf(room, sizeof(room), "pipelines");
        for (size_t i = 0; i < who->npipelines && s->nrooms < hub->cfg.max_subscriptions; i++) {
            char r[160];
            snprintf(r, sizeof(r), "pipeline:%s", who->pipelines[i]);
            rp_hub_peer_failed(rp_sio_join(s, r, strlen(r)), "join");
        }
    }
    if (s->nrooms == 0)
        return;
    hub->subscribes++;
    json_t *snap = rp_hub_snapshot(hub, NULL, ntype);
    if (snap) {
        rp_hub_filter_visible(snap, "pipelines", who);
        json_object_set_new(snap, "ok", json_true());
        json_object_set_new(snap, "room", json_string(room));
        size_t len;
        char *text = rp_json_dump(snap, &len);
        if (text)
            rp_hub_peer_failed(rp_sio_emit(s, "snapshot", text, len, NULL, 0), "emit");
        free(text);
        json_decref(snap);
    }
    emit_sync(hub, s);
    rp_hub_persist_session(hub, s);
}

/* Connection-state recovery: the events after `offset` that rooms of nsp would have got. */
static int hub_missed(void *ud, rp_sio_nsp_t *nsp, const char *const *rooms, size_t nrooms,
                      const char *offset, rp_sio_missed_emit_cb emit, void *ctx)
{
    rp_hub_t *hub = ud;
    char *end;
    long long off = strtoll(offset, &end, 10);
    if (*offset == '\0' || *end || off < 0 || off > rp_hub_version(hub))
        return RP_ENOTFOUND;
    if (off < rp_hub_version(hub) && (hub->ring_len == 0 || off < rp_hub_hist_at(hub, 0)->id - 1))
        return RP_ENOTFOUND; /* older than the history: cannot tell what was missed */
    const char *ntype = nsp_type(hub, nsp);
    for (size_t i = 0; i < hub->ring_len; i++) {
        hist_t *h = rp_hub_hist_at(hub, i);
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
    rp_hub_peer_failed(rp_sio_leave(s, room, strlen(room)), "leave");
    if (!pid && nsp_type(hub, s->nsp)) {
        char auto_room[96];
        snprintf(auto_room, sizeof(auto_room), "type:%s", nsp_type(hub, s->nsp));
        rp_hub_peer_failed(rp_sio_leave(s, auto_room, strlen(auto_room)),
                           "leave"); /* the subscription connecting made */
    }
    rp_hub_persist_session(hub, s);
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
    const rp_principal_t *who = rp_hub_socket_principal(s);
    char room[160];
    snprintf(room, sizeof(room), "pipeline:%.140s", pid ? pid : "");
    if (!json_is_object(q) || pid == NULL ||
        (after && !json_is_string(after) && !json_is_null(after)) ||
        (limit && !json_is_integer(limit))) {
        ack_json(s, ev->ack_id,
                 json_pack("{s:s}", "error",
                           "files takes {pipeline_id, after?: file id, limit?: 1 to 1000}"));
    } else if (rp_hub_expired(hub, who) || !rp_hub_room_allowed(who, room)) {
        ack_denied(
            hub, s, ev->ack_id, rp_hub_expired(hub, who) ? DENY_UNAUTHORIZED : DENY_FORBIDDEN,
            rp_hub_expired(hub, who) ? "token expired" : "this token does not cover that pipeline");
    } else {
        int status;
        char msg[400];
        json_t *j = rp_hub_files_page(hub, pid, nsp_type(hub, s->nsp), json_string_value(after),
                                      limit ? (long long)json_integer_value(limit) : FILES_PAGE_MAX,
                                      &status, msg, sizeof(msg));
        ack_json(s, ev->ack_id, j ? j : json_pack("{s:s}", "error", msg));
    }
    json_decref(q);
}

/* ping: answered by its ack with {time: server ms}; without an ack callback by a `pong`
 * event {time, echo?: ping's first argument}, so a client that only listens can time it. */
static void on_ping(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    (void)ud;
    json_t *j = json_pack("{s:I}", "time", (json_int_t)rp_hub_now_ms());
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
        rp_hub_peer_failed(rp_sio_emit(s, "pong", text, len, NULL, 0), "emit");
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
json_t *rp_hub_with_store_reason(rp_hub_t *hub, json_t *j)
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
                 status == 0
                     ? json_pack("{s:I}", "id", (json_int_t)id)
                     : rp_hub_with_store_reason(
                           a->hub, json_pack("{s:s,s:s}", "error", "store unavailable", "rule",
                                             "the event was not stored; send it again")));
    rp_free(a);
}

/* A producer's event `in` (owned) on /pipeline or a type namespace, of type `name`: the
 * Socket.IO event name, or the current name of a legacy one. */
static void produce(rp_hub_t *hub, rp_sio_socket_t *s, const rp_sio_event_t *ev, json_t *in,
                    const char *name)
{
    rp_event_error_t err = {"", ""};
    if (!json_is_object(in)) {
        hub->refused[in ? REFUSED_INVALID : REFUSED_JSON]++;
        snprintf(err.rule, sizeof(err.rule), "the first argument must be the event object");
        ack_json(s, ev->ack_id, rp_hub_error_json("invalid event", &err));
        json_decref(in);
        return;
    }
    const rp_principal_t *who = rp_hub_socket_principal(s);
    const char *pipeline = json_string_value(json_object_get(in, "pipeline_id"));
    if (who &&
        (rp_hub_expired(hub, who) || !rp_principal_produces(who, pipeline ? pipeline : ""))) {
        ack_denied(
            hub, s, ev->ack_id, rp_hub_expired(hub, who) ? DENY_UNAUTHORIZED : DENY_FORBIDDEN,
            rp_hub_expired(hub, who)      ? "token expired"
            : who->role == RP_ROLE_VIEWER ? "viewers cannot send events"
                                          : "this token may not send events for that pipeline");
        json_decref(in);
        return;
    }
    uint64_t wait = who ? rp_hub_producer_take(hub, who->id, 1) : 0;
    if (wait) {
        ack_json(
            s, ev->ack_id,
            json_pack("{s:s,s:I}", "error", "rate limited", "retry_after_ms", (json_int_t)wait));
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
        snprintf(err.rule, sizeof(err.rule),
                 "must be %s on %s (or omitted: the namespace gives it)", ntype, s->nsp->name);
        ack_json(s, ev->ack_id, rp_hub_error_json("invalid event", &err));
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
        ack_json(s, ev->ack_id, rp_hub_error_json("invalid event", &err));
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
    rp_hub_ingest_opts_t opts = {.limit = &limit};
    int rc = rp_hub_ingest_as(hub, in, &err, a ? on_produced : NULL, a, &opts);
    hub->via = VIA_OTHER;
    if (rc < 0) {
        rp_free(a);
        ack_json(s, ev->ack_id,
                 rc == RP_ETOOBIG
                     ? rp_hub_limit_json(&err, limit)
                     : rp_hub_error_json(rc == RP_EINVAL ? "invalid event" : "server error",
                                         rc == RP_EINVAL ? &err : NULL));
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
    const char *name = json_is_object(in) ? rp_hub_legacy_produced_name(ev->name, in) : ev->name;
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
    if (rp_hub_legacy_produced_name(ev->name, NULL))
        snprintf(
            err.rule, sizeof(err.rule),
            "'%.40s' is a legacy name: serve --legacy-events takes it, or send the current type",
            ev->name);
    else
        snprintf(err.rule, sizeof(err.rule),
                 "'%.40s' is not an event type (pipeline:*, file:*, status:update, heartbeat)",
                 ev->name);
    ack_json(s, ev->ack_id, rp_hub_error_json("invalid event", &err));
}

/* The legacy names a producer may send under --legacy-events. */
static const char *const legacy_produced[] = {"pipeline:status", "pipeline:file_processing_started",
                                              "pipeline:file_completed", "pipeline:file_failed"};

/* admin:disconnect {sid, namespace?}: an admin ends another socket's connection. */
static void on_admin_disconnect(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    rp_hub_t *hub = ud;
    const rp_principal_t *who = rp_hub_socket_principal(s);
    if (hub->cfg.auth && (who == NULL || who->role != RP_ROLE_ADMIN || rp_hub_expired(hub, who))) {
        ack_denied(hub, s, ev->ack_id, DENY_FORBIDDEN, "only admins may disconnect sockets");
        return;
    }
    json_t *a = arg0(ev);
    const char *sid = json_string_value(json_object_get(a, "sid"));
    const char *nsp_name = json_string_value(json_object_get(a, "namespace"));
    rp_sio_nsp_t *nsp =
        nsp_name ? rp_sio_server_find(hub->sio, nsp_name, strlen(nsp_name)) : s->nsp;
    rp_sio_socket_t *target = nsp && sid && strlen(sid) == 20 ? rp_sio_nsp_socket(nsp, sid) : NULL;
    if (target == NULL) {
        ack_json(s, ev->ack_id,
                 json_pack("{s:s}", "error", "no such socket (give {sid, namespace})"));
    } else {
        RP_LOG_INFO("hub", "admin %s disconnected socket %s of %s", who ? who->id : "(auth off)",
                    sid, nsp->name);
        int self = target == s;
        ack_json(s, ev->ack_id, json_pack("{s:b}", "ok", 1));
        if (!self)
            rp_sio_disconnect(target, 1);
    }
    json_decref(a);
}

/* The hub's handlers on one namespace (producers: also the producer events). Returns 0 or
 * UV_ENOMEM, some handlers set (rp_hub_sio_detach undoes them). */
static int setup_nsp(rp_hub_t *hub, rp_sio_nsp_t *nsp, int producers)
{
    if (rp_sio_nsp_on(nsp, "subscribe", on_subscribe, hub) < 0 ||
        rp_sio_nsp_on(nsp, "unsubscribe", on_unsubscribe, hub) < 0 ||
        rp_sio_nsp_on(nsp, "ping", on_ping, hub) < 0 ||
        rp_sio_nsp_on(nsp, "files", on_files, hub) < 0 ||
        rp_sio_nsp_on(nsp, "admin:disconnect", on_admin_disconnect, hub) < 0)
        return UV_ENOMEM;
    rp_sio_nsp_on_connect(nsp, rp_hub_on_hub_connect, hub);
    rp_sio_nsp_on_restore_room(nsp, rp_hub_restore_room_allowed, hub);
    rp_sio_nsp_on_take_over(nsp, rp_hub_take_over_allowed, hub);
    rp_sio_nsp_set_socket_data_free(nsp, rp_hub_principal_release);
    for (int t = 0; producers && t < RP_EV_COUNT; t++)
        if (rp_sio_nsp_on(nsp, rp_event_type_name((rp_event_type_t)t), on_produce, hub) < 0)
            return UV_ENOMEM;
    for (size_t i = 0; producers && hub->cfg.legacy_events &&
                       i < sizeof(legacy_produced) / sizeof(legacy_produced[0]);
         i++)
        if (rp_sio_nsp_on(nsp, legacy_produced[i], on_produce_legacy, hub) < 0)
            return UV_ENOMEM;
    if (producers)
        rp_sio_nsp_on_any(nsp, on_unknown, hub);
    return 0;
}

/* What a namespace's events go to once the hub has gone (or never came): nothing. */
static void on_hub_gone(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    (void)s;
    (void)ev;
    (void)ud;
}

/* CONNECT once the hub has gone: refused (no principal could be checked). */
static int on_connect_gone(rp_sio_socket_t *s, const char *auth, size_t auth_len, rp_buf_t *err,
                           void *ud)
{
    (void)s;
    (void)auth;
    (void)auth_len;
    (void)ud;
    static const char msg[] = "{\"message\":\"the hub is shutting down\"}";
    if (rp_buf_append(err, msg, sizeof(msg) - 1) < 0)
        return UV_ENOMEM;
    return RP_EUNAVAIL;
}

int rp_hub_sio_namespaces(rp_hub_t *hub)
{
    hub->nsp_pipeline = rp_sio_server_of(hub->sio, "/pipeline");
    hub->nsp_root = rp_sio_server_of(hub->sio, "/");
    if (hub->nsp_pipeline == NULL || hub->nsp_root == NULL)
        return UV_ENOMEM;
    for (size_t i = 0; i < hub->cfg.ntype_namespaces && i < MAX_TYPE_NSPS; i++) {
        rp_sio_nsp_t *nsp = rp_sio_server_of(hub->sio, hub->cfg.type_namespaces[i]);
        if (nsp == NULL)
            return UV_ENOMEM;
        hub->type_nsps[hub->ntype_nsps++] = nsp;
    }
    return 0;
}

size_t rp_hub_sio_all(rp_hub_t *hub, rp_sio_nsp_t **all)
{
    size_t n = 0;
    all[n++] = hub->nsp_pipeline;
    all[n++] = hub->nsp_root;
    for (size_t i = 0; i < hub->ntype_nsps; i++)
        all[n++] = hub->type_nsps[i];
    return n;
}

int rp_hub_sio_attach(rp_hub_t *hub)
{
    rp_sio_nsp_t *all[2 + MAX_TYPE_NSPS];
    size_t n = rp_hub_sio_all(hub, all);
    for (size_t i = 0; i < n; i++) {
        int rc = setup_nsp(hub, all[i], all[i] != hub->nsp_root);
        if (rc < 0) {
            rp_hub_sio_detach(hub);
            return rc;
        }
    }
    /* Every namespace the hub serves is a viewers' one. */
    for (size_t i = 0; i < n; i++) {
        rp_sio_nsp_on_connection(all[i], rp_hub_on_viewer_connection, hub);
        if (!hub->cfg.recovery)
            continue;
        rp_sio_nsp_set_recovery(all[i], &hub_recovery, hub);
        rp_sio_nsp_on_disconnect(all[i], rp_hub_on_viewer_disconnect, hub);
    }
    return 0;
}

void rp_hub_sio_detach(rp_hub_t *hub)
{
    static const char *const names[] = {"subscribe", "unsubscribe", "ping", "files",
                                        "admin:disconnect"};
    rp_sio_nsp_t *all[2 + MAX_TYPE_NSPS];
    size_t n = rp_hub_sio_all(hub, all);
    for (size_t i = 0; i < n; i++) {
        rp_sio_nsp_t *nsp = all[i];
        /* Replacing a handler never allocates; a name that fails to register had none, which
         * is what is wanted here, so a failure needs nothing more. */
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
            if (rp_sio_nsp_on(nsp, names[k], on_hub_gone, NULL) < 0)
                continue;
        for (int t = 0; t < RP_EV_COUNT; t++)
            if (rp_sio_nsp_on(nsp, rp_event_type_name((rp_event_type_t)t), on_hub_gone, NULL) < 0)
                continue;
        for (size_t k = 0;
             hub->cfg.legacy_events && k < sizeof(legacy_produced) / sizeof(legacy_produced[0]);
             k++)
            if (rp_sio_nsp_on(nsp, legacy_produced[k], on_hub_gone, NULL) < 0)
                continue;
        rp_sio_nsp_on_any(nsp, NULL, NULL);
        rp_sio_nsp_on_connect(nsp, on_connect_gone, NULL);
        rp_sio_nsp_on_restore_room(nsp, NULL, NULL);
        rp_sio_nsp_on_take_over(nsp, NULL, NULL);
        /* The principals' release stays: sockets still holding one free it on close. */
        rp_sio_nsp_on_connection(nsp, NULL, NULL);
        rp_sio_nsp_set_recovery(nsp, NULL, NULL);
        rp_sio_nsp_on_disconnect(nsp, NULL, NULL);
    }
}
