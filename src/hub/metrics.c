/* SPDX-License-Identifier: MIT */
/* The /metrics text (Prometheus exposition) and admin:stats: counters of the hub, the store,
 * the transports, latencies and the cluster's part (cluster.c writes it). Read-only: nothing
 * here changes the hub. */
#include "hub/hub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/bucket.h"
#include "util/err.h"
#include "util/log.h"

const char *const rp_hub_fallback_names[FB_COUNT] = {"connect_timeout", "socket_errors", "rollout",
                                                     "other"};
const char *const rp_hub_refused_names[REFUSED_COUNT] = {"invalid_event", "malformed_json",
                                                         "content_type", "too_large"};

/* What admin:monitoring sees: connections, sockets, refusals, limits hit. */
json_t *rp_hub_admin_stats(rp_hub_t *hub)
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
    rp_event_format_ts(rp_hub_now_ms(), ts);
    const rp_http_server_t *http = hub->cfg.http;
    json_t *j = json_pack(
        "{s:s,s:I,s:I,s:{s:I,s:I},s:o,s:I,s:{s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I}}",
        "server_time", ts, "version", (json_int_t)rp_hub_version(hub), "connections",
        (json_int_t)hub->net->nconns, "sessions", "websocket", (json_int_t)eio->n_websocket,
        "polling", (json_int_t)eio->n_polling, "sockets", nsps, "pipelines",
        (json_int_t)hub->state.npipelines, "auth_refused", "http_unauthorized",
        (json_int_t)hub->auth_refused[WHERE_HTTP][DENY_UNAUTHORIZED], "http_forbidden",
        (json_int_t)hub->auth_refused[WHERE_HTTP][DENY_FORBIDDEN], "socket_unauthorized",
        (json_int_t)hub->auth_refused[WHERE_SOCKET][DENY_UNAUTHORIZED], "socket_forbidden",
        (json_int_t)hub->auth_refused[WHERE_SOCKET][DENY_FORBIDDEN], "limits",
        "events_rate_limited", (json_int_t)hub->rate_limited, "packets_rate_limited",
        (json_int_t)sio->rate_limited, "rate_disconnects", (json_int_t)sio->rate_disconnects,
        "refused_max_connections", (json_int_t)hub->net->refused_max_conns, "refused_per_ip",
        (json_int_t)hub->net->refused_per_ip, "request_timeouts",
        (json_int_t)(http ? http->request_timeouts : 0), "queue_drops", (json_int_t)eio->drops);
    rp_hub_cluster_health(hub, j); /* with Redis: every node's sockets and rooms */
    return j;
}

/* The durable log's counters: writes, failures and each fault it entered (logged once). */
static void store_metrics(rp_hub_t *hub, rp_buf_t *b)
{
    const rp_store_t *st = hub->store;
    if (st == NULL)
        return;
    rp_buf_printf(
        b,
        "# HELP ragpulse_store_up 1 while the store takes writes, 0 while it refuses them.\n"
        "# TYPE ragpulse_store_up gauge\nragpulse_store_up %d\n"
        "# HELP ragpulse_store_events_written_total Events made durable.\n"
        "# TYPE ragpulse_store_events_written_total counter\nragpulse_store_events_written_total "
        "%lu\n"
        "# HELP ragpulse_store_errors_total Events the store could not make durable.\n"
        "# TYPE ragpulse_store_errors_total counter\nragpulse_store_errors_total %lu\n"
        "# HELP ragpulse_store_checks_total Liveness checks of the store (about every 2 s).\n"
        "# TYPE ragpulse_store_checks_total counter\nragpulse_store_checks_total %lu\n"
        "# HELP ragpulse_store_faults_total Times the store started failing, by fault.\n"
        "# TYPE ragpulse_store_faults_total counter\n",
        st->ops->healthy(hub->store), st->events_written, st->errors, st->checks);
    for (int f = RP_STORE_FAULT_NONE + 1; f < RP_STORE_FAULT_COUNT; f++)
        rp_buf_printf(b, "ragpulse_store_faults_total{fault=\"%s\"} %lu\n",
                      rp_store_fault_name((rp_store_fault_t)f), st->faults[f]);
}

/* WebSocket success and failure, session errors by transport, client fallbacks. */
static void transport_metrics(rp_hub_t *hub, rp_buf_t *b)
{
    const rp_eio_server_t *eio = hub->sio->eio;
    const rp_http_server_t *http = hub->cfg.http;
    /* The HTTP server refuses a bad Origin before Engine.IO sees the request: those are
     * attempts too, and failures for "origin", counted once (Engine.IO never saw them). */
    unsigned long http_origin = http ? http->refused_origin[1] : 0;
    rp_buf_printf(
        b,
        "# HELP ragpulse_ws_attempts_total WebSocket requests (transport=websocket: upgrades and\n"
        "# direct opens), including those refused for their Origin.\n"
        "# TYPE ragpulse_ws_attempts_total counter\nragpulse_ws_attempts_total %lu\n"
        "# HELP ragpulse_ws_handshakes_total WebSocket requests answered 101 Switching Protocols.\n"
        "# TYPE ragpulse_ws_handshakes_total counter\nragpulse_ws_handshakes_total %lu\n",
        eio->ws_attempts + http_origin, eio->ws_handshakes);
    static const char *const wsfail[] = {"origin", "bad_handshake", "server_error", "refused",
                                         "probe_failed"};
    unsigned long fails[RP_EIO_WSFAIL_COUNT];
    memcpy(fails, eio->ws_failures, sizeof(fails));
    fails[RP_EIO_WSFAIL_ORIGIN] += http_origin;
    rp_buf_printf(
        b, "# HELP ragpulse_ws_failures_total WebSockets that failed, by reason. Before the 101\n"
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
    rp_buf_printf(
        b, "# HELP ragpulse_session_errors_total Engine.IO sessions ended by an error, by the\n"
           "# transport they were on and the error (max_queued: output over --max-queued).\n"
           "# TYPE ragpulse_session_errors_total counter\n");
    static const char *const transports[] = {"polling", "websocket"};
    for (int t = 0; t < 2; t++)
        for (int e = 0; e < RP_EIO_ERR_COUNT; e++)
            rp_buf_printf(b, "ragpulse_session_errors_total{transport=\"%s\",reason=\"%s\"} %lu\n",
                          transports[t], rp_eio_error_name(e), eio->session_errors[t][e]);
    rp_buf_printf(
        b,
        "# HELP ragpulse_client_fallbacks_total Switches to the HTTP path the TypeScript client\n"
        "# reported (X-RagPulse-Fallback on its next /api/rag-status), by reason.\n"
        "# TYPE ragpulse_client_fallbacks_total counter\n");
    for (int r = 0; r < FB_COUNT; r++)
        rp_buf_printf(b, "ragpulse_client_fallbacks_total{reason=\"%s\"} %lu\n",
                      rp_hub_fallback_names[r], hub->fallbacks[r]);
}

/* The latency histograms. */
static void latency_metrics(rp_hub_t *hub, rp_buf_t *b)
{
    rp_hist_print(
        &hub->commit_lat[0], b, "ragpulse_event_commit_seconds",
        "Producer events from the moment the hub took them (the HTTP request\n"
        "# read in full, the Socket.IO packet decoded) to their commit to the store (the ack), by\n"
        "# where they came from. Events relayed through a cluster's shared log are not counted.",
        "via=\"http\"");
    rp_hist_print_samples(&hub->commit_lat[1], b, "ragpulse_event_commit_seconds",
                          "via=\"socket\"");
    rp_hist_print(
        &hub->delivery_lat, b, "ragpulse_event_delivery_seconds",
        "Sampled events (at most one in flight, one per 100 ms) from their commit\n"
        "# to the moment the kernel took the last byte of the frame for the last local recipient:\n"
        "# over WebSocket its frame, over polling the GET response that carried it (a recipient\n"
        "# that closes first counts as done). Sockets replaying a recovery are not sampled.",
        "");
}

void rp_hub_metrics(rp_hub_t *hub, rp_http_conn_t *hc)
{
    rp_buf_t b;
    rp_buf_init(&b, 1 << 20);
    rp_sio_server_t *sio = hub->sio;
    rp_eio_server_t *eio = sio->eio;
    rp_buf_printf(&b,
                  "# HELP ragpulse_connections Open Engine.IO sessions by transport.\n"
                  "# TYPE ragpulse_connections gauge\n"
                  "ragpulse_connections{transport=\"websocket\"} %zu\n"
                  "ragpulse_connections{transport=\"polling\"} %zu\n",
                  eio->n_websocket, eio->n_polling);
    rp_buf_printf(&b,
                  "# HELP ragpulse_tcp_connections Open TCP connections.\n"
                  "# TYPE ragpulse_tcp_connections gauge\nragpulse_tcp_connections %zu\n",
                  hub->net->nconns);
    rp_buf_printf(&b, "# HELP ragpulse_sockets Connected Socket.IO sockets by namespace.\n"
                      "# TYPE ragpulse_sockets gauge\n");
    rp_sio_nsp_t *all[2 + MAX_TYPE_NSPS] = {hub->nsp_pipeline, hub->nsp_root};
    size_t nall = 2;
    for (size_t i = 0; i < hub->ntype_nsps; i++)
        all[nall++] = hub->type_nsps[i];
    for (size_t i = 0; i < nall; i++)
        rp_buf_printf(&b, "ragpulse_sockets{namespace=\"%s\"} %zu\n", all[i]->name,
                      all[i]->nsockets);
    rp_buf_printf(&b, "# HELP ragpulse_events_in_total Events accepted by type.\n"
                      "# TYPE ragpulse_events_in_total counter\n");
    for (int t = 0; t < RP_EV_COUNT; t++)
        rp_buf_printf(&b, "ragpulse_events_in_total{type=\"%s\"} %lu\n",
                      rp_event_type_name((rp_event_type_t)t), hub->events_in[t]);
    rp_buf_printf(&b, "# HELP ragpulse_events_refused_total Events refused by reason.\n"
                      "# TYPE ragpulse_events_refused_total counter\n");
    for (int r = 0; r < REFUSED_COUNT; r++)
        rp_buf_printf(&b, "ragpulse_events_refused_total{reason=\"%s\"} %lu\n",
                      rp_hub_refused_names[r], hub->refused[r]);
    rp_buf_printf(
        &b,
        "# HELP ragpulse_broadcasts_total Broadcasts made.\n# TYPE ragpulse_broadcasts_total "
        "counter\n"
        "ragpulse_broadcasts_total %lu\n"
        "# HELP ragpulse_broadcast_recipients_total Packets queued to recipients by broadcasts "
        "(fan-out).\n"
        "# TYPE ragpulse_broadcast_recipients_total counter\nragpulse_broadcast_recipients_total "
        "%lu\n"
        "# HELP ragpulse_packets_out_total Socket.IO packets sent.\n"
        "# TYPE ragpulse_packets_out_total counter\nragpulse_packets_out_total %lu\n"
        "# HELP ragpulse_packets_in_total Socket.IO packets received.\n"
        "# TYPE ragpulse_packets_in_total counter\nragpulse_packets_in_total %lu\n"
        "# HELP ragpulse_http_fallback_requests_total Status requests over HTTP (the fallback "
        "path).\n"
        "# TYPE ragpulse_http_fallback_requests_total "
        "counter\nragpulse_http_fallback_requests_total %lu\n"
        "# HELP ragpulse_queue_drops_total Sessions dropped for passing their output limit.\n"
        "# TYPE ragpulse_queue_drops_total counter\nragpulse_queue_drops_total %lu\n"
        "# HELP ragpulse_synthetic_events_total Events the hub made itself (offline on silence, "
        "stalled files).\n"
        "# TYPE ragpulse_synthetic_events_total counter\nragpulse_synthetic_events_total %lu\n"
        "# HELP ragpulse_pipelines Known pipelines.\n# TYPE ragpulse_pipelines "
        "gauge\nragpulse_pipelines %zu\n",
        sio->broadcasts, sio->broadcast_recipients, sio->packets_out, sio->packets_in,
        hub->http_fallback, eio->drops, hub->synthetic, hub->state.npipelines);
    rp_buf_printf(&b,
                  "# HELP ragpulse_auth_refused_total Requests refused by authentication (401, "
                  "CONNECT_ERROR) or\n"
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
    rp_buf_printf(
        &b,
        "# HELP ragpulse_recoveries_total Reconnections that asked to resume a session, by "
        "outcome:\n"
        "# resumed (at once, or after a replay in rounds), or a fresh session (the offset could "
        "not be\n"
        "# served, or the history overtook the replay).\n# TYPE ragpulse_recoveries_total counter\n"
        "ragpulse_recoveries_total{outcome=\"resumed\"} %lu\n"
        "ragpulse_recoveries_total{outcome=\"resumed_in_rounds\"} %lu\n"
        "ragpulse_recoveries_total{outcome=\"fresh\"} %lu\n"
        "ragpulse_recoveries_total{outcome=\"overtaken\"} %lu\n",
        sio->recovered, sio->recovered_paced, sio->recovery_refused, sio->recovery_overtaken);
    const rp_http_server_t *http = hub->cfg.http;
    rp_buf_printf(
        &b,
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
        http ? http->request_timeouts : 0, http ? http->idle_timeouts : 0,
        http ? http->bad_requests : 0, sio->rate_limited, sio->rate_disconnects, hub->rate_limited,
        eio->drops, sio->protocol_errors, eio->ws_too_big, eio->ws_protocol, hub->subs_refused,
        eio->upgrade_timeouts, hub->files_refused[RP_HUB_LIMIT_FILES_IN_FLIGHT],
        hub->files_refused[RP_HUB_LIMIT_FILES_TOTAL]);
    rp_buf_printf(
        &b,
        "# HELP ragpulse_files_in_flight Files being processed (file:processing seen, not "
        "completed or\n"
        "# failed yet), in all pipelines; bounded by --max-files-in-flight and --max-files-total.\n"
        "# TYPE ragpulse_files_in_flight gauge\nragpulse_files_in_flight %zu\n",
        hub->state.nfiles);
    rp_buf_printf(&b,
                  "# HELP ragpulse_origin_refused_total Requests refused with 403 for a browser "
                  "Origin that is\n"
                  "# neither the hub's own nor in --cors-origin (kind: websocket for upgrades).\n"
                  "# TYPE ragpulse_origin_refused_total counter\n"
                  "ragpulse_origin_refused_total{kind=\"http\"} %lu\n"
                  "ragpulse_origin_refused_total{kind=\"websocket\"} %lu\n",
                  http ? http->refused_origin[0] : 0, http ? http->refused_origin[1] : 0);
    transport_metrics(hub, &b);
    latency_metrics(hub, &b);
    store_metrics(hub, &b);
    rp_hub_cluster_metrics(hub, &b);
    char cors[640];
    if (rp_http_cors(eio->cfg.cors, &hc->req, cors, sizeof(cors)) <= 0)
        cors[0] = '\0';
    rp_http_respond(hc, 200, "text/plain; version=0.0.4; charset=utf-8", cors, b.data ? b.data : "",
                    b.len);
    rp_buf_deinit(&b);
}
