/* SPDX-License-Identifier: MIT */
/* The HTTP API: health, rag-status (snapshot with ETag, deltas, long-poll), history, files,
 * failure groups, and what a client needs before it connects (/api/socket/info and
 * /api/socket/test, readable from any page). Requests whose answer waits on the store are
 * "held": their context starts with the connection, which becomes NULL if the client goes
 * first. POST /api/events is in http_events.c. */
#include "hub/hub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/bucket.h"
#include "util/err.h"
#include "util/log.h"

void rp_hub_respond_json(rp_hub_t *hub, rp_http_conn_t *hc, int status, json_t *j,
                         const char *extra)
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

void rp_hub_respond_error(rp_hub_t *hub, rp_http_conn_t *hc, int status, const char *msg,
                          const rp_event_error_t *err, long index)
{
    json_t *j = rp_hub_error_json(msg, err && err->rule[0] ? err : NULL);
    if (j && index >= 0)
        json_object_set_new(j, "index", json_integer(index));
    rp_hub_respond_json(hub, hc, status, j, NULL);
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

static void health(rp_hub_t *hub, rp_http_conn_t *hc, int detailed, const rp_principal_t *who)
{
    rp_eio_server_t *eio = hub->sio->eio;
    int store_ok = hub->store == NULL || hub->store->ops->healthy(hub->store);
    json_t *j = json_pack(
        "{s:s,s:b,s:b,s:{s:s,s:b},s:I,s:{s:I,s:I,s:I}}", "status", store_ok ? "ok" : "degraded",
        "websocket", (eio->cfg.transports & RP_EIO_WEBSOCKET) != 0, "polling",
        (eio->cfg.transports & RP_EIO_POLLING) != 0, "store", "kind",
        hub->store ? hub->store->ops->kind(hub->store) : "memory", "ok", store_ok, "version",
        (json_int_t)rp_hub_version(hub), "sessions", "websocket", (json_int_t)eio->n_websocket,
        "polling", (json_int_t)eio->n_polling, "connections", (json_int_t)hub->net->nconns);
    rp_hub_with_store_reason(hub, json_object_get(j, "store"));
    if (j && detailed) {
        json_t *snap = rp_hub_snapshot(hub, NULL, NULL);
        rp_hub_filter_visible(snap, "pipelines", who);
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
            inflight +=
                json_integer_value(json_object_get(json_object_get(p, "counters"), "in_flight"));
            json_array_append_new(
                pipes, json_pack("{s:O,s:O,s:O,s:O,s:O,s:b}", "id", json_object_get(p, "id"),
                                 "type", json_object_get(p, "type"), "status",
                                 json_object_get(p, "status"), "last_heartbeat",
                                 json_object_get(p, "last_heartbeat"), "heartbeat_age_ms",
                                 json_object_get(p, "heartbeat_age_ms"), "late", is_late));
        }
        json_object_set_new(j, "pipelines", pipes);
        json_object_set_new(j, "counts",
                            json_pack("{s:I,s:i,s:i,s:i,s:I}", "pipelines",
                                      (json_int_t)json_array_size(pipes), "online", online,
                                      "offline", offline, "late", late, "files_in_flight",
                                      (json_int_t)inflight));
        json_decref(snap);
    }
    rp_hub_cluster_health(hub, j);
    rp_hub_respond_json(hub, hc, store_ok ? 200 : 503, j, NULL);
}

/* `since` older than the in-memory history, read from the store (the same log). */
typedef struct since_ctx {
    rp_http_conn_t *hc; /* first: see held_abort */
    rp_hub_t *hub;
    int64_t since;
    rp_principal_t *who; /* owned */
} since_ctx_t;

#define SINCE_LIMIT 10000

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
            rp_hub_respond_error(sc->hub, hc, 503, "store unavailable", NULL, -1);
        } else {
            /* The version is the last event returned, not the hub's newest: the client's next
             * `since` continues exactly where this answer stops (more: true until caught up). */
            size_t n = json_array_size(events);
            int64_t last =
                n ? json_integer_value(json_object_get(json_array_get(events, n - 1), "id"))
                  : sc->since;
            if (n == 0)
                last = rp_hub_version(sc->hub);
            json_t *j = json_pack("{s:I,s:I,s:o,s:b}", "version", (json_int_t)last, "since",
                                  (json_int_t)sc->since, "events", events, "more",
                                  last < rp_hub_version(sc->hub));
            rp_hub_filter_visible(j, "events", sc->who);
            add_socket_fields(sc->hub, j, &hc->req);
            rp_hub_respond_json(sc->hub, hc, 200, j, NULL);
        }
    }
    rp_principal_free(sc->who);
    rp_free(sc);
}

static int since_from_store(rp_hub_t *hub, rp_http_conn_t *hc, int64_t since,
                            const rp_principal_t *who)
{
    since_ctx_t *sc = rp_calloc(1, sizeof(*sc));
    if (sc == NULL)
        return UV_ENOMEM;
    sc->hc = hc;
    sc->hub = hub;
    sc->since = since;
    int rc = who && (sc->who = rp_principal_dup(who)) == NULL ? UV_ENOMEM : 0;
    if (rc == 0)
        rc = hub->store->ops->since(hub->store, since, SINCE_LIMIT, on_since_rows, sc);
    if (rc < 0) {
        rp_principal_free(sc->who);
        rp_free(sc);
        return rc;
    }
    hc->data = sc;
    hc->on_abort = rp_hub_held_abort;
    return 0;
}

/* What a client needs before it connects. */

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
    int in_rollout = client ? (int)(fnv1a(client) % 100) < hub->cfg.websocket_rollout
                            : hub->cfg.websocket_rollout > 0;
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
    snprintf(url, sizeof(url), "%s://%.*s", tls ? "wss" : "ws",
             host ? (int)(hl > 255 ? 255 : hl) : 0, host ? host : "");
    json_t *nsps = json_pack("[s,s]", "/pipeline", "/");
    for (size_t i = 0; i < hub->ntype_nsps; i++)
        json_array_append_new(nsps, json_string(hub->type_nsps[i]->name));
    if (j == NULL) {
        json_decref(nsps);
        return mode;
    }
    json_object_set_new(j, "websocket_available",
                        json_boolean((cfg->transports & RP_EIO_WEBSOCKET) != 0));
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
    json_object_set_new(j, "origin",
                        origin ? json_stringn(origin, ol > 200 ? 200 : ol) : json_null());
    json_object_set_new(j, "origin_allowed", json_boolean(allowed));
    if (!allowed) {
        char hint[600];
        snprintf(
            hint, sizeof(hint),
            "this page's Origin %.*s is not allowed: start the hub with --cors-origin %.*s (or "
            "SOCKET_IO_CORS_ORIGIN=%.*s)",
            (int)(ol > 150 ? 150 : ol), origin, (int)(ol > 150 ? 150 : ol), origin,
            (int)(ol > 150 ? 150 : ol), origin);
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
    rp_hub_respond_json(hub, hc, 200, j, listed ? NULL : "Access-Control-Allow-Origin: *\r\n");
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
    json_t *j =
        json_pack("{s:s,s:o,s:I,s:I,s:i}", "path", cfg->path, "transports", transports,
                  "ping_interval", (json_int_t)cfg->ping_interval, "ping_timeout",
                  (json_int_t)cfg->ping_timeout, "rollout_percent", hub->cfg.websocket_rollout);
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
    rp_event_format_ts(rp_hub_now_ms(), ts);
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
            json_object_set_new(
                j, "reason",
                json_string(!allowed ? "this page's Origin is not allowed (see cors_hint)"
                                     : "no Socket.IO transport is enabled"));
    }
    respond_public(hub, hc, j);
}

/* Answers a status request now: snapshot (ETag, 304) or deltas since an event id. */
static void status_respond(rp_hub_t *hub, rp_http_conn_t *hc, int64_t since,
                           const rp_principal_t *who)
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
            rp_hub_respond_json(hub, hc, 304, NULL, extra);
            return;
        }
        json_t *snap = rp_hub_snapshot(hub, NULL, NULL);
        rp_hub_filter_visible(snap, "pipelines", who);
        add_socket_fields(hub, snap, &hc->req);
        rp_hub_respond_json(hub, hc, 200, snap, extra);
        return;
    }
    int reset;
    json_t *events = rp_hub_events_since(hub, since, &reset);
    json_t *j;
    if (reset && hub->store && since_from_store(hub, hc, since, who) == 0) {
        /* The store has what the in-memory history no longer holds: answered when read. */
        json_decref(events);
        return;
    }
    if (reset) {
        /* The history no longer reaches back that far: send the whole state instead. */
        json_decref(events);
        j = rp_hub_snapshot(hub, NULL, NULL);
        rp_hub_filter_visible(j, "pipelines", who);
        if (j)
            json_object_set_new(j, "reset", json_true());
    } else {
        j = json_pack("{s:I,s:I,s:o}", "version", (json_int_t)v, "since", (json_int_t)since,
                      "events", events);
        rp_hub_filter_visible(j, "events", who);
    }
    add_socket_fields(hub, j, &hc->req);
    rp_hub_respond_json(hub, hc, 200, j, extra);
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

void rp_hub_waiter_finish(waiter_t *w)
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
    while (r < FB_OTHER && !(strlen(rp_hub_fallback_names[r]) == len &&
                             memcmp(rp_hub_fallback_names[r], v, len) == 0))
        r++;
    hub->fallbacks[r]++;
}

static void rag_status(rp_hub_t *hub, rp_http_conn_t *hc, rp_http_request_t *req,
                       const rp_principal_t *who)
{
    hub->http_fallback++;
    count_fallback(hub, req);
    long long since = query_int(req, "since", -1);
    long long wait = query_int(req, "wait", 0);
    if (since == -2 || wait == -2) {
        rp_hub_respond_error(hub, hc, 400, "since and wait must be non-negative integers", NULL,
                             -1);
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
    w->deadline = rp_hub_now_ms() + wait * 1000;
    hc->data = w;
    hc->on_abort = waiter_abort;
    rp_list_push(&hub->waiters, &w->node);
}

/* A held request whose answer waits on the store: its context starts with the connection,
 * which becomes NULL if the client goes away first (the context is freed by the completion). */
typedef struct held {
    rp_http_conn_t *hc;
} held_t;

void rp_hub_held_abort(rp_http_conn_t *hc)
{
    held_t *h = hc->data;
    if (h)
        h->hc = NULL;
    hc->data = NULL;
}

/* A held request answered by a store read. */
typedef struct rows_ctx {
    rp_http_conn_t *hc; /* first: see held_abort */
    rp_hub_t *hub;
    int limit;
    int paged;       /* history: add next_before */
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
            rp_hub_respond_error(rc->hub, hc, 503, "store unavailable", NULL, -1);
        } else {
            json_t *j = json_pack("{s:o}", rc->key ? rc->key : "events", arr);
            size_t n = json_array_size(arr);
            if (j && rc->paged && (int)n == rc->limit && n > 0)
                json_object_set(
                    j, rc->key ? "next_after" : "next_before",
                    json_object_get(json_array_get(arr, n - 1), rc->key ? "file_id" : "id"));
            rp_hub_respond_json(rc->hub, hc, 200, j, NULL);
        }
    }
    rp_free(rc);
}

static void get_files(rp_hub_t *hub, rp_http_conn_t *hc, rp_http_request_t *req)
{
    char pid[160];
    if (rp_http_query_get(req->query, req->query_len, "pipeline", pid, sizeof(pid)) < 0) {
        rp_hub_respond_error(hub, hc, 400, "use ?pipeline=ID", NULL, -1);
        return;
    }
    if (hub->store == NULL) {
        rp_hub_respond_error(hub, hc, 404, "the file registry needs a store (--store)", NULL, -1);
        return;
    }
    /* A page at a time (a registry can hold millions of files): ?after=FILE_ID&limit=N. */
    char after[520] = "";
    long long limit = query_int(req, "limit", 1000);
    long al = rp_http_query_get(req->query, req->query_len, "after", after, sizeof(after));
    if (al == RP_ENOTFOUND)
        after[0] = '\0';
    if ((al < 0 && al != RP_ENOTFOUND) || limit < 1 || limit > 1000) {
        rp_hub_respond_error(
            hub, hc, 400, "limit must be an integer from 1 to 1000 (after: a file_id)", NULL, -1);
        return;
    }
    rows_ctx_t *rc = rp_calloc(1, sizeof(*rc));
    if (rc == NULL || hub->store->ops->files(hub->store, pid, after, (int)limit, on_rows, rc) < 0) {
        rp_free(rc);
        rp_hub_respond_error(hub, hc, 500, "out of memory", NULL, -1);
        return;
    }
    rc->hub = hub;
    rc->hc = hc;
    rc->key = "files";
    rc->limit = (int)limit;
    rc->paged = 1;
    hc->data = rc;
    hc->on_abort = rp_hub_held_abort;
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
static void get_pipeline_files(rp_hub_t *hub, rp_http_conn_t *hc, rp_http_request_t *req,
                               const char *pid, const rp_principal_t *who)
{
    char after[1100];
    long al = rp_http_query_get(req->query, req->query_len, "after", after, sizeof(after));
    long long limit = query_int(req, "limit", FILES_PAGE_MAX);
    if (al == RP_ETOOBIG || al == RP_EPROTO || al == 0) {
        rp_hub_respond_error(hub, hc, 400,
                             "after must be the id of a file (the next of the previous page)", NULL,
                             -1);
        return;
    }
    if (who && !rp_principal_sees(who, pid)) {
        rp_hub_respond_denied(hub, hc, DENY_FORBIDDEN, "this token does not cover that pipeline");
        return;
    }
    int status;
    char msg[400];
    json_t *j = rp_hub_files_page(hub, pid, NULL, al > 0 ? after : NULL, limit == -2 ? 0 : limit,
                                  &status, msg, sizeof(msg));
    if (j)
        rp_hub_respond_json(hub, hc, 200, j, NULL);
    else
        rp_hub_respond_error(hub, hc, status, msg, NULL, -1);
}

static void get_events(rp_hub_t *hub, rp_http_conn_t *hc, rp_http_request_t *req)
{
    char pid[160], fid[300];
    long pl = rp_http_query_get(req->query, req->query_len, "pipeline", pid, sizeof(pid));
    long fl = rp_http_query_get(req->query, req->query_len, "file", fid, sizeof(fid));
    long long before = query_int(req, "before", -1);
    long long limit = query_int(req, "limit", 100);
    if (pl < 0 || fl == RP_ETOOBIG || fl == RP_EPROTO || before == -2 || limit <= 0 ||
        limit > 1000) {
        rp_hub_respond_error(hub, hc, 400,
                             "use ?pipeline=ID[&file=FID][&before=EVENT_ID][&limit=1..1000]", NULL,
                             -1);
        return;
    }
    if (hub->store) {
        rows_ctx_t *rc = rp_calloc(1, sizeof(*rc));
        if (rc &&
            hub->store->ops->history(hub->store, pid, fl >= 0 ? fid : NULL,
                                     before >= 0 ? before : 0, (int)limit, on_rows, rc) == 0) {
            rc->hub = hub;
            rc->hc = hc;
            rc->limit = (int)limit;
            rc->paged = 1;
            hc->data = rc;
            hc->on_abort = rp_hub_held_abort;
            return;
        }
        rp_free(rc);
        rp_hub_respond_error(hub, hc, 500, "out of memory", NULL, -1);
        return;
    }
    json_t *arr = json_array();
    int64_t last = -1;
    for (size_t k = hub->ring_len; k-- > 0 && (long long)json_array_size(arr) < limit;) {
        hist_t *h = rp_hub_hist_at(hub, k);
        if (before >= 0 && h->id >= before)
            continue;
        if (strcmp(h->pipeline_id, pid) != 0 ||
            (fl >= 0 && (h->file_id == NULL || strcmp(h->file_id, fid) != 0)))
            continue;
        json_t *e = json_loadb(h->json, h->len, 0, NULL);
        if (e)
            json_array_append_new(arr, e);
        last = h->id;
    }
    json_t *j = json_pack("{s:o}", "events", arr);
    if (j && (long long)json_array_size(arr) == limit && last > 0)
        json_object_set_new(j, "next_before", json_integer(last));
    rp_hub_respond_json(hub, hc, 200, j, NULL);
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
        rp_hub_respond_denied(hub, hc, DENY_FORBIDDEN,
                              "this token covers some pipelines only: give ?pipeline=ID");
        return 0;
    }
    if (!rp_principal_sees(who, pid)) {
        rp_hub_respond_denied(hub, hc, DENY_FORBIDDEN, "this token does not cover that pipeline");
        return 0;
    }
    return 1;
}

static void route_authorized(rp_hub_t *hub, rp_http_conn_t *hc, rp_http_request_t *req,
                             const rp_principal_t *who)
{
    int get = req->method == HTTP_GET || req->method == HTTP_HEAD;
    char pid[160];
    if (path_is(req, "/api/health")) {
        if (!get)
            rp_hub_respond_error(hub, hc, 405, "use GET", NULL, -1);
        else
            health(hub, hc, 1, who);
    } else if (path_is(req, "/status") || path_is(req, "/api/rag-status")) {
        if (!get)
            rp_hub_respond_error(hub, hc, 405, "use GET", NULL, -1);
        else
            rag_status(hub, hc, req, who);
    } else if (path_is(req, "/api/events")) {
        if (req->method == HTTP_POST)
            rp_hub_post_events(hub, hc, req, who);
        else if (!get)
            rp_hub_respond_error(hub, hc, 405, "use GET or POST", NULL, -1);
        else if (pipeline_visible(hub, hc, req, who))
            get_events(hub, hc, req);
    } else if (path_is(req, "/api/files")) {
        if (pipeline_visible(hub, hc, req, who))
            get_files(hub, hc, req);
    } else if (pipeline_files_path(req, pid, sizeof(pid))) {
        if (!get)
            rp_hub_respond_error(hub, hc, 405, "use GET", NULL, -1);
        else
            get_pipeline_files(hub, hc, req, pid, who);
    } else if (path_is(req, "/api/failures")) {
        long pl = rp_http_query_get(req->query, req->query_len, "pipeline", pid, sizeof(pid));
        if (pipeline_visible(hub, hc, req, who))
            rp_hub_respond_json(hub, hc, 200,
                                json_pack("{s:o}", "groups",
                                          rp_hub_failures_json(&hub->state, pl >= 0 ? pid : NULL)),
                                NULL);
    } else if (who && who->role != RP_ROLE_ADMIN && !hub->cfg.metrics_public) {
        rp_hub_respond_denied(hub, hc, DENY_FORBIDDEN,
                              "/metrics is for admins (or run serve with --metrics-public)");
    } else {
        rp_hub_metrics(hub, hc);
    }
}

int rp_hub_route(rp_hub_t *hub, rp_http_conn_t *hc, rp_http_request_t *req)
{
    char pid[160];
    int get = req->method == HTTP_GET || req->method == HTTP_HEAD;
    int api = req->path_len >= 5 && memcmp(req->path, "/api/", 5) == 0;
    if (req->method == HTTP_OPTIONS &&
        (api || path_is(req, "/status") || path_is(req, "/health"))) {
        char cors[640], extra[1024];
        if (rp_http_cors(hub->sio->eio->cfg.cors, req, cors, sizeof(cors)) <= 0)
            cors[0] = '\0';
        snprintf(
            extra, sizeof(extra),
            "%sAccess-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
            "Access-Control-Allow-Headers: content-type, authorization, if-none-match, "
            "x-ragpulse-fallback\r\n"
            "Access-Control-Expose-Headers: ETag, Retry-After\r\nAccess-Control-Max-Age: 86400\r\n",
            cors);
        rp_http_respond(hc, 204, NULL, extra, NULL, 0);
        return 1;
    }
    /* Open to anyone: liveness for load balancers, and what a client needs before it connects. */
    if (path_is(req, "/health")) {
        if (!get)
            rp_hub_respond_error(hub, hc, 405, "use GET", NULL, -1);
        else
            health(hub, hc, 0, NULL);
        return 1;
    }
    if (path_is(req, "/api/socket/info") || path_is(req, "/api/socket/test")) {
        if (!get)
            rp_hub_respond_error(hub, hc, 405, "use GET", NULL, -1);
        else if (path_is(req, "/api/socket/info"))
            socket_info(hub, hc, req);
        else
            socket_test(hub, hc, req);
        return 1;
    }
    int ours = path_is(req, "/api/health") || path_is(req, "/status") ||
               path_is(req, "/api/rag-status") || path_is(req, "/api/events") ||
               path_is(req, "/api/files") || path_is(req, "/api/failures") ||
               pipeline_files_path(req, pid, sizeof(pid)) ||
               (path_is(req, "/metrics") && !(hub->cfg.metrics_public && get));
    if (!ours) {
        if (!path_is(req, "/metrics"))
            return 0;
        rp_hub_metrics(hub, hc); /* public */
        return 1;
    }
    int denied;
    rp_principal_t *who = rp_hub_http_principal(hub, hc, req, &denied);
    if (!denied)
        route_authorized(hub, hc, req, who);
    rp_principal_free(who);
    return 1;
}
