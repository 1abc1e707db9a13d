/* SPDX-License-Identifier: MIT */
/* `ragpulse serve`: the hub (src/hub) on the Socket.IO server, one port for Socket.IO and the
 * HTTP API. This file is wiring: serve's option table (read with the server's and the
 * watcher's by cli/opts.c), then the store, the cluster adapter, the hub and the watcher,
 * handed to the application shell (cli/app.c). It is the only place that picks
 * implementations; everything it opens lives until the process exits. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/app.h"
#include "cli/cli.h"
#include "cli/watch_cli.h"
#include "cli/web_assets.h"
#include "cluster/redis.h"
#include "hub/hub.h"
#include "store/backend.h"
#include "util/err.h"
#include "util/log.h"

static rp_hub_t *the_hub;

/* The watcher reports into the hub: it says pipeline:offline before the hub goes. */
static void hub_free_with_watch(void *hub)
{
    rp_cli_watch_serve_stop();
    rp_hub_close(hub, NULL);
}

static void hub_close(void *hub)
{
    rp_hub_close(hub, NULL);
}

static int route(rp_app_t *app, rp_http_conn_t *hc, rp_http_request_t *req)
{
    (void)app;
    if (rp_hub_route(the_hub, hc, req))
        return 1;
    /* The dashboard's files: / and /assets/... (no data in them, so no auth). */
    return rp_http_static_serve(&rp_cli_web_assets, hc, req);
}

/* Reads a whole small file (a key or a secret) into a new string; trailing newlines are cut.
 * NULL after printing why. */
static char *read_small_file(const char *what, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "ragpulse: cannot read %s %s: %s\n", what, path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(65537);
    size_t n = buf ? fread(buf, 1, 65536, f) : 0;
    int big = buf && n == 65536 && fgetc(f) != EOF;
    fclose(f);
    if (buf == NULL || big || n == 0) {
        fprintf(stderr, "ragpulse: %s %s is %s\n", what, path,
                buf == NULL ? "too big for memory"
                : big       ? "over 64 KiB"
                            : "empty");
        free(buf);
        return NULL;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    return buf;
}

/* Everything serve's command line and environment set; static: the hub and the app borrow
 * from it until the process exits. */
typedef struct serve_opts {
    rp_cli_opts_t app;
    rp_hub_config_t hc;
    rp_cli_watch_opts_t watch; /* serve --watch DIR */
    const char *store_spec;
    const char *cluster_url;
    const char *secret; /* borrowed from argv/environ, or secret_buf */
    char *secret_buf;   /* owned: read from --jwt-secret-file */
    char *public_key;   /* owned */
    const char *issuer;
    const char *audience;
    double leeway;
    const char *type_nsps[16];
    char nsp_buf[512];
} serve_opts_t;

static serve_opts_t so;

static int parse_namespaces(void *target, const rp_cli_opt_t *opt, const char *v, const char *what,
                            const char *prefix, int from_env)
{
    (void)opt;
    (void)from_env;
    serve_opts_t *s = target;
    snprintf(s->nsp_buf, sizeof(s->nsp_buf), "%s", v);
    s->hc.ntype_namespaces = 0;
    char *save = NULL;
    for (char *tok = strtok_r(s->nsp_buf, ",", &save); tok && s->hc.ntype_namespaces < 16;
         tok = strtok_r(NULL, ",", &save)) {
        if (tok[0] != '/' || strcmp(tok, "/") == 0 || strcmp(tok, "/pipeline") == 0) {
            fprintf(stderr, "%s: %s wants names like /google_drive\n", prefix, what);
            return RP_EINVAL;
        }
        s->type_nsps[s->hc.ntype_namespaces++] = tok;
    }
    s->hc.type_namespaces = s->type_nsps;
    return 0;
}

static int parse_secret_file(void *target, const rp_cli_opt_t *opt, const char *v, const char *what,
                             const char *prefix, int from_env)
{
    (void)opt;
    (void)what;
    (void)prefix;
    (void)from_env;
    serve_opts_t *s = target;
    free(s->secret_buf);
    s->secret = s->secret_buf = read_small_file("the secret file", v);
    return s->secret_buf ? 0 : RP_EINVAL;
}

static int parse_public_key(void *target, const rp_cli_opt_t *opt, const char *v, const char *what,
                            const char *prefix, int from_env)
{
    (void)opt;
    (void)what;
    (void)prefix;
    (void)from_env;
    serve_opts_t *s = target;
    free(s->public_key);
    s->public_key = read_small_file("the public key", v);
    return s->public_key ? 0 : RP_EINVAL;
}

#define OFF(f) offsetof(serve_opts_t, f)

static const rp_cli_opt_t serve_opts[] = {
    {"--namespaces", "LIST", RP_CLI_CUSTOM, 0, 0, 0, NULL,
     "pipeline-type namespaces (default /google_drive,/local_files)", parse_namespaces, 0},
    {"--legacy-events", NULL, RP_CLI_FLAG, OFF(hc.legacy_events), 0, 0, NULL,
     "also emit pipeline:status and pipeline:file_* (and the hub's beat as\n"
     "heartbeat) for older dashboards, and take them from producers",
     NULL, 1},
    {"--recovery", NULL, RP_CLI_FLAG, OFF(hc.recovery), 0, 0, NULL,
     "Socket.IO connection-state recovery on the viewer namespaces (the\n"
     "default): events carry their id as a last argument; a client that\n"
     "reconnects within --recovery-window gets what it missed, also after\n"
     "a server restart (python handlers with a fixed signature need\n"
     "--no-recovery or a *args signature)",
     NULL, 1},
    {"--recovery-window", "S", RP_CLI_MS, OFF(app.sio.recovery_window), 0.1, 86400, NULL,
     "how long a dropped session can be recovered (default 120)", NULL, 0},
    {"--heartbeat-timeout", "X", RP_CLI_DOUBLE, OFF(hc.heartbeat_timeout), 1, 1000, NULL,
     "a pipeline is offline after X heartbeat intervals of silence (default 3)", NULL, 0},
    {"--heartbeat-interval", "S", RP_CLI_DOUBLE, OFF(hc.default_heartbeat_interval), 0.01, 86400,
     NULL, "assumed interval for pipelines that do not say (default 30)", NULL, 0},
    {"--stall-timeout", "S", RP_CLI_MS, OFF(hc.stall_timeout_ms), 0.1, 864000, NULL,
     "a file with no progress for S seconds fails as stalled (default 600)", NULL, 0},
    {"--server-heartbeat", "S", RP_CLI_MS, OFF(hc.server_heartbeat_ms), 0.1, 86400, NULL,
     "the hub's own heartbeat to viewers (default 30)", NULL, 0},
    {"--history", "N", RP_CLI_SIZE, OFF(hc.history), 1, 10000000, NULL,
     "events kept for history and deltas (default 10000)", NULL, 0},
    {"--websocket-rollout", "PCT", RP_CLI_INT, OFF(hc.websocket_rollout), 0, 100,
     "WEBSOCKET_ROLLOUT_PERCENTAGE",
     "percent of client ids told to use the websocket (default 100;\n"
     "env WEBSOCKET_ROLLOUT_PERCENTAGE)",
     NULL, 0},
    {"--store", "SPEC", RP_CLI_STRING, OFF(store_spec), 0, 0, "RAGPULSE_STORE",
     "sqlite:PATH (default sqlite:ragpulse.db), postgres://..., or memory\n"
     "(env RAGPULSE_STORE)",
     NULL, 0},
    {"--retain-events", "N", RP_CLI_I64, OFF(hc.retain_events), 1, 1e15, NULL,
     "keep at most N events in the store (default: all)", NULL, 0},
    {"--retain-days", "D", RP_CLI_DOUBLE, OFF(hc.retain_days), 0.001, 1e6, NULL,
     "and none older than D days (default: no limit)", NULL, 0},
    {"--no-recovery", NULL, RP_CLI_FLAG, OFF(hc.recovery), 0, 0, NULL,
     "turn connection-state recovery off (see --recovery)", NULL, 0},
    {"--cluster", "redis://HOST:PORT[/DB]", RP_CLI_STRING, OFF(cluster_url), 0, 0,
     "RAGPULSE_CLUSTER",
     "\njoin the nodes sharing that Redis (the @socket.io/redis-streams-adapter\n"
     "wire: Node socket.io servers can join too); env RAGPULSE_CLUSTER",
     NULL, 0},
    {NULL, NULL, RP_CLI_HEADING, 0, 0, 0, NULL, "\nauthentication (JWT; see docs/security.md):\n",
     NULL, 0},
    {"--jwt-secret", "SECRET", RP_CLI_STRING, OFF(secret), 0, 0, "RAGPULSE_JWT_SECRET",
     "HS256 secret: turns auth on (env RAGPULSE_JWT_SECRET; prefer the env\n"
     "or --jwt-secret-file, a command line is visible to other users)",
     NULL, 0},
    {"--jwt-secret-file", "FILE", RP_CLI_CUSTOM, 0, 0, 0, NULL, "the secret, read from FILE",
     parse_secret_file, 0},
    {"--jwt-public-key", "FILE", RP_CLI_CUSTOM, 0, 0, 0, "RAGPULSE_JWT_PUBLIC_KEY",
     "PEM public key for RS256 (RSA) or ES256 (EC P-256) tokens\n"
     "(env RAGPULSE_JWT_PUBLIC_KEY)",
     parse_public_key, 0},
    {"--jwt-issuer", "ISS", RP_CLI_STRING, OFF(issuer), 0, 0, NULL, "tokens must carry this iss",
     NULL, 0},
    {"--jwt-audience", "AUD", RP_CLI_STRING, OFF(audience), 0, 0, NULL,
     "tokens must carry this aud", NULL, 0},
    {"--jwt-leeway", "S", RP_CLI_DOUBLE, OFF(leeway), 0, 86400, NULL,
     "clock skew allowed on exp/nbf (default 30)", NULL, 0},
    {"--metrics-public", NULL, RP_CLI_FLAG, OFF(hc.metrics_public), 0, 0, NULL,
     "serve /metrics without a token (default: admins only when auth is on)", NULL, 1},
    {"--insecure", NULL, RP_CLI_FLAG, OFF(app.insecure), 0, 0, NULL,
     "allow a non-loopback address without authentication", NULL, 1},
    {NULL, NULL, RP_CLI_HEADING, 0, 0, 0, NULL, "\nlimits per producer and socket (0: off):\n",
     NULL, 0},
    {"--event-rate", "N", RP_CLI_DOUBLE, OFF(hc.event_rate), 0, 1e9, NULL,
     "events a second one producer may send (default 2000)", NULL, 0},
    {"--event-burst", "N", RP_CLI_DOUBLE, OFF(hc.event_burst), 1, 1e9, NULL,
     "events a producer may send at once (default 5000)", NULL, 0},
    {"--max-subscriptions", "N", RP_CLI_SIZE, OFF(hc.max_subscriptions), 1, 100000, NULL,
     "subscriptions one socket may hold (default 64)", NULL, 0},
    {"--max-files-in-flight", "N", RP_CLI_SIZE, OFF(hc.max_files_in_flight), 0, 1e9, NULL,
     "files in flight in one pipeline; an event adding one more is\n"
     "refused (429 / ack error; default 10000, 0: no bound)",
     NULL, 0},
    {"--max-files-total", "N", RP_CLI_SIZE, OFF(hc.max_files_total), 0, 1e9, NULL,
     "files in flight in all pipelines (default 200000, 0: no bound)", NULL, 0},
    {"--watch", "DIR", RP_CLI_STRING, OFF(watch.dir), 0, 0, NULL,
     "also run the local-files pipeline on DIR in this process (see\n"
     "`ragpulse watch --help`); its index goes in the --store SQLite\n"
     "file unless --index says otherwise. With --watch:",
     NULL, 0},
};

/* Defaults, then the environment and argv through the three tables. Returns 0, RP_CLI_HELP
 * or RP_EINVAL (printed). */
static int serve_parse(int argc, char **argv)
{
    rp_cli_opts_init(&so.app, 8103);
    rp_cli_opts_product_limits(&so.app);
    rp_hub_config_defaults(&so.hc);
    so.hc.event_rate = 2000;
    so.hc.event_burst = 5000;
    so.store_spec = "sqlite:ragpulse.db";
    so.leeway = 30;
    rp_cli_watch_opts_init(&so.watch);
    rp_cli_optset_t sets[] = {
        {rp_cli_server_opts, rp_cli_server_nopts, &so.app, NULL},
        {serve_opts, RP_CLI_COUNT(serve_opts), &so, NULL},
        {rp_cli_watch_opts, rp_cli_watch_nopts, &so.watch, NULL},
    };
    rp_cli_cmd_t cmd = {"ragpulse serve",
                        "usage: ragpulse serve [OPTIONS]\n\noptions:\n",
                        NULL,
                        sets,
                        RP_CLI_COUNT(sets),
                        NULL,
                        NULL};
    int rc = rp_cli_parse(&cmd, argc, argv);
    if (rc != 0)
        return rc;
    if (sets[2].given && so.watch.dir == NULL) {
        fprintf(stderr, "ragpulse serve: %s is an option of --watch DIR\n", sets[2].given);
        return RP_EINVAL;
    }
    return 0;
}

int rp_cli_serve(int argc, char **argv)
{
    int prc = serve_parse(argc, argv);
    if (prc != 0)
        return prc == RP_CLI_HELP ? 0 : 2;
    rp_cli_opts_t *o = &so.app;
    rp_hub_config_t *hc = &so.hc;
    if (so.secret && so.public_key) {
        fprintf(stderr, "ragpulse serve: give a JWT secret or a public key, not both\n");
        return 2;
    }
    static rp_auth_t *auth;
    if (so.secret || so.public_key) {
        char why[256];
        rp_auth_config_t ac = {so.secret, so.public_key, so.issuer, so.audience,
                               (uint32_t)so.leeway};
        if ((auth = rp_auth_new(&ac, why, sizeof(why))) == NULL) {
            fprintf(stderr, "ragpulse serve: cannot use the JWT %s: %s\n",
                    so.secret ? "secret" : "public key", why);
            return 2;
        }
        hc->auth = auth;
    }
    if (!rp_cli_host_is_loopback(o->host) && !o->insecure && auth == NULL) {
        fprintf(
            stderr,
            "ragpulse serve: refusing to listen on %s without authentication.\n"
            "  Anyone who can reach that address could read every pipeline's status and send\n"
            "  events as any pipeline. Either turn authentication on (--jwt-secret-file FILE or\n"
            "  RAGPULSE_JWT_SECRET; `ragpulse token` makes tokens), or listen on 127.0.0.1 (the\n"
            "  default) behind a proxy that authenticates, or pass --insecure to accept\n"
            "  unauthenticated clients on %s anyway.\n",
            o->host, o->host);
        return 2;
    }
    if (o->insecure && !rp_cli_host_is_loopback(o->host) && auth == NULL) {
        fprintf(stderr,
                "ragpulse serve: WARNING: --insecure: anyone who reaches %s may read and send"
                " everything (no authentication)\n",
                o->host);
        RP_LOG_WARN("cli", "--insecure: serving %s without authentication", o->host);
    }
    rp_app_t app;
    if (rp_app_init(&app, o) < 0)
        return 1;
    char err[512];
    rp_store_t *store = NULL;
    if (strcmp(so.store_spec, "memory") != 0) {
        store = rp_store_open(app.loop, so.store_spec, err, sizeof(err));
        if (store == NULL) {
            fprintf(stderr, "ragpulse serve: cannot open the store: %s\n", err);
            return 1;
        }
    }
    if (so.cluster_url) {
        app.cluster = rp_cluster_redis_new(app.loop, so.cluster_url, err, sizeof(err));
        if (app.cluster == NULL) {
            fprintf(stderr, "ragpulse serve: --cluster: %s\n", err);
            return 2;
        }
        rp_sio_server_set_cluster(app.sio, app.cluster);
    }
    hc->recovery_window_ms = o->sio.recovery_window;
    hc->http = &app._http;
    app._http.open_paths =
        rp_hub_open_paths; /* readable from any page: what a client needs first */
    the_hub = rp_hub_new(app.sio, &app.net, hc, store, err, sizeof(err));
    if (the_hub == NULL) {
        fprintf(stderr, "ragpulse serve: cannot start the hub: %s\n", err);
        return 1;
    }
    app._route = route;
    app._hub_free = hub_close;
    app._hub = the_hub;
    if (so.watch.dir) {
        if (!so.watch.index_given && strncmp(so.store_spec, "sqlite:", 7) == 0)
            so.watch.cfg.index_path = so.store_spec + 7; /* one file: the log and the index */
        if (rp_cli_watch_serve_start(app.loop, the_hub, &so.watch) < 0)
            return 1;
        app._hub_free = hub_free_with_watch;
    }
    return rp_app_run(&app);
}
