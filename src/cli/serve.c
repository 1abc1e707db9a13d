/* SPDX-License-Identifier: MIT */
/* `ragpulse serve`: the hub (src/hub) on the Socket.IO server, one port for Socket.IO and the
 * HTTP API. This file parses serve's own options and wires the parts together; it is the only
 * place that picks implementations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "cli/watch_cli.h"
#include "hub/hub.h"
#include "store/backend.h"
#include "util/log.h"

static rp_hub_t *the_hub;
static rp_cli_watch_opts_t watch_opts; /* serve --watch DIR */

/* The watcher reports into the hub: it says pipeline:offline before the hub goes. */
static void hub_free_with_watch(void *hub)
{
    rp_cli_watch_serve_stop();
    rp_hub_free(hub);
}

static int route(rp_app_t *app, rp_http_conn_t *hc, rp_http_request_t *req)
{
    (void)app;
    return rp_hub_route(the_hub, hc, req);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ragpulse serve [OPTIONS]\n\noptions:\n%s"
            "  --namespaces LIST         pipeline-type namespaces (default /google_drive,/local_files)\n"
            "  --legacy-events           also emit pipeline:status and pipeline:file_* for older dashboards\n"
            "  --recovery                Socket.IO connection-state recovery on the viewer namespaces (the\n"
            "                            default): events carry their id as a last argument; a client that\n"
            "                            reconnects within --recovery-window gets what it missed, also after\n"
            "                            a server restart (python handlers with a fixed signature need\n"
            "                            --no-recovery or a *args signature)\n"
            "  --recovery-window S       how long a dropped session can be recovered (default 120)\n"
            "  --heartbeat-timeout X     a pipeline is offline after X heartbeat intervals of silence (default 3)\n"
            "  --heartbeat-interval S    assumed interval for pipelines that do not say (default 30)\n"
            "  --stall-timeout S         a file with no progress for S seconds fails as stalled (default 600)\n"
            "  --server-heartbeat S      the hub's own heartbeat to viewers (default 30)\n"
            "  --history N               events kept for history and deltas (default 10000)\n"
            "  --websocket-rollout PCT   percent of client ids told to use the websocket (default 100)\n"
            "  --store SPEC              sqlite:PATH (default sqlite:ragpulse.db), postgres://..., or memory\n"
            "                            (env RAGPULSE_STORE)\n"
            "  --retain-events N         keep at most N events in the store (default: all)\n"
            "  --retain-days D           and none older than D days (default: no limit)\n"
            "  --no-recovery             turn connection-state recovery off (see --recovery)\n"
            "  --insecure                allow a non-loopback address without authentication\n"
            "  --watch DIR               also run the local-files pipeline on DIR in this process (see\n"
            "                            `ragpulse watch --help`); its index goes in the --store SQLite\n"
            "                            file unless --index says otherwise. With --watch:\n%s",
            rp_cli_opts_usage, rp_cli_watch_opts_usage);
}

static int num_opt(const char *name, const char *v, double min, double max, double *out)
{
    char *end;
    double d = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || !(d >= min && d <= max)) {
        fprintf(stderr, "ragpulse serve: %s wants a number from %g to %g, got '%s'\n", name, min, max, v);
        return -1;
    }
    *out = d;
    return 0;
}

int rp_cli_serve(int argc, char **argv)
{
    rp_cli_opts_t o;
    rp_hub_config_t hc;
    static const char *type_nsps[16];
    static char nsp_buf[512];
    rp_hub_config_defaults(&hc);
    const char *store_spec = getenv("RAGPULSE_STORE") && *getenv("RAGPULSE_STORE") ? getenv("RAGPULSE_STORE")
                                                                                  : "sqlite:ragpulse.db";
    if (rp_cli_opts_init(&o, 8103) < 0)
        return 2;
    rp_cli_watch_opts_init(&watch_opts);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--legacy-events") == 0) {
            hc.legacy_events = 1;
            continue;
        }
        if (strcmp(a, "--recovery") == 0 || strcmp(a, "--no-recovery") == 0) {
            hc.recovery = strcmp(a, "--recovery") == 0;
            continue;
        }
        if (strcmp(a, "--watch") == 0 && v) {
            watch_opts.dir = v;
            i++;
            continue;
        }
        int wrc = rp_cli_watch_opts_parse(&watch_opts, argc, argv, &i, "ragpulse serve");
        if (wrc < 0)
            return 2;
        if (wrc > 0)
            continue;
        int rc = rp_cli_opts_parse(&o, argc, argv, &i);
        if (rc < 0)
            return 2;
        if (rc > 0)
            continue;
        if (v == NULL) {
            fprintf(stderr, "ragpulse serve: unknown option '%s' (or it needs a value)\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--namespaces") == 0) {
            snprintf(nsp_buf, sizeof(nsp_buf), "%s", v);
            hc.ntype_namespaces = 0;
            for (char *save = NULL, *tok = strtok_r(nsp_buf, ",", &save); tok && hc.ntype_namespaces < 16;
                 tok = strtok_r(NULL, ",", &save)) {
                if (tok[0] != '/' || strcmp(tok, "/") == 0 || strcmp(tok, "/pipeline") == 0) {
                    fprintf(stderr, "ragpulse serve: --namespaces wants names like /google_drive\n");
                    return 2;
                }
                type_nsps[hc.ntype_namespaces++] = tok;
            }
            hc.type_namespaces = type_nsps;
        } else if (strcmp(a, "--heartbeat-timeout") == 0 && num_opt(a, v, 1, 1000, &d) == 0) {
            hc.heartbeat_timeout = d;
        } else if (strcmp(a, "--heartbeat-interval") == 0 && num_opt(a, v, 0.01, 86400, &d) == 0) {
            hc.default_heartbeat_interval = d;
        } else if (strcmp(a, "--stall-timeout") == 0 && num_opt(a, v, 0.1, 864000, &d) == 0) {
            hc.stall_timeout_ms = (uint32_t)(d * 1000);
        } else if (strcmp(a, "--server-heartbeat") == 0 && num_opt(a, v, 0.1, 86400, &d) == 0) {
            hc.server_heartbeat_ms = (uint32_t)(d * 1000);
        } else if (strcmp(a, "--history") == 0 && num_opt(a, v, 1, 10000000, &d) == 0) {
            hc.history = (size_t)d;
        } else if (strcmp(a, "--websocket-rollout") == 0 && num_opt(a, v, 0, 100, &d) == 0) {
            hc.websocket_rollout = (int)d;
        } else if (strcmp(a, "--recovery-window") == 0 && num_opt(a, v, 0.1, 86400, &d) == 0) {
            o.sio.recovery_window = (uint32_t)(d * 1000);
        } else if (strcmp(a, "--store") == 0) {
            store_spec = v;
        } else if (strcmp(a, "--retain-events") == 0 && num_opt(a, v, 1, 1e15, &d) == 0) {
            hc.retain_events = (int64_t)d;
        } else if (strcmp(a, "--retain-days") == 0 && num_opt(a, v, 0.001, 1e6, &d) == 0) {
            hc.retain_days = d;
        } else {
            if (strncmp(a, "--", 2) == 0 && (strcmp(a, "--namespaces") && strcmp(a, "--heartbeat-timeout") &&
                                             strcmp(a, "--heartbeat-interval") && strcmp(a, "--stall-timeout") &&
                                             strcmp(a, "--server-heartbeat") && strcmp(a, "--history") &&
                                             strcmp(a, "--websocket-rollout") && strcmp(a, "--recovery-window") &&
                                             strcmp(a, "--retain-events") && strcmp(a, "--retain-days"))) {
                fprintf(stderr, "ragpulse serve: unknown option '%s'\n", a);
                usage(stderr);
            }
            return 2;
        }
    }
    if (watch_opts.given && watch_opts.dir == NULL) {
        fprintf(stderr, "ragpulse serve: %s is an option of --watch DIR\n", watch_opts.given);
        return 2;
    }
    if (!rp_cli_host_is_loopback(o.host) && !o.insecure) {
        fprintf(stderr,
                "ragpulse serve: refusing to listen on %s without authentication.\n"
                "  Anyone who can reach that address could read every pipeline's status.\n"
                "  Listen on 127.0.0.1 (the default) behind a proxy, or pass --insecure to accept\n"
                "  unauthenticated clients on %s.\n",
                o.host, o.host);
        return 2;
    }
    if (o.insecure && !rp_cli_host_is_loopback(o.host))
        RP_LOG_WARN("cli", "--insecure: serving %s without authentication", o.host);
    if (o.workers > 1) {
        fprintf(stderr, "ragpulse serve: --workers needs a shared store (coming with the durable log);"
                        " the hub's state lives in one process for now\n");
        return 2;
    }
    rp_app_t app;
    if (rp_app_init(&app, &o) < 0)
        return 1;
    char err[512];
    rp_store_t *store = NULL;
    if (strcmp(store_spec, "memory") != 0) {
        store = rp_store_open(app.loop, store_spec, err, sizeof(err));
        if (store == NULL) {
            fprintf(stderr, "ragpulse serve: cannot open the store: %s\n", err);
            return 1;
        }
    }
    hc.recovery_window_ms = o.sio.recovery_window;
    the_hub = rp_hub_new(app.sio, &app.net, &hc, store, err, sizeof(err));
    if (the_hub == NULL) {
        fprintf(stderr, "ragpulse serve: cannot start the hub: %s\n", err);
        return 1;
    }
    app.route = route;
    app.hub_free = (void (*)(void *))rp_hub_free;
    app.hub = the_hub;
    if (watch_opts.dir) {
        if (!watch_opts.index_given && strncmp(store_spec, "sqlite:", 7) == 0)
            watch_opts.cfg.index_path = store_spec + 7; /* one file: the log and the index */
        if (rp_cli_watch_serve_start(app.loop, the_hub, &watch_opts) < 0)
            return 1;
        app.hub_free = hub_free_with_watch;
    }
    return rp_app_run(&app);
}
