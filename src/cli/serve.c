/* SPDX-License-Identifier: MIT */
/* `ragpulse serve`: the hub (src/hub) on the Socket.IO server, one port for Socket.IO and the
 * HTTP API. This file parses serve's own options and wires the parts together; it is the only
 * place that picks implementations. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "cli/web_assets.h"
#include "cluster/redis.h"
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
    if (rp_hub_route(the_hub, hc, req))
        return 1;
    /* The dashboard's files: / and /assets/... (no data in them, so no auth). */
    return rp_http_static_serve(&rp_cli_web_assets, hc, req);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ragpulse serve [OPTIONS]\n\noptions:\n%s"
            "  --namespaces LIST         pipeline-type namespaces (default /google_drive,/local_files)\n"
            "  --legacy-events           also emit pipeline:status and pipeline:file_* (and the hub's beat as\n"
            "                            heartbeat) for older dashboards, and take them from producers\n"
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
            "  --websocket-rollout PCT   percent of client ids told to use the websocket (default 100;\n"
            "                            env WEBSOCKET_ROLLOUT_PERCENTAGE)\n"
            "  --store SPEC              sqlite:PATH (default sqlite:ragpulse.db), postgres://..., or memory\n"
            "                            (env RAGPULSE_STORE)\n"
            "  --retain-events N         keep at most N events in the store (default: all)\n"
            "  --retain-days D           and none older than D days (default: no limit)\n"
            "  --no-recovery             turn connection-state recovery off (see --recovery)\n"
            "  --cluster redis://HOST:PORT[/DB]\n"
            "                            join the nodes sharing that Redis (the @socket.io/redis-streams-adapter\n"
            "                            wire: Node socket.io servers can join too); env RAGPULSE_CLUSTER\n"
            "\nauthentication (JWT; see docs/security.md):\n"
            "  --jwt-secret SECRET       HS256 secret: turns auth on (env RAGPULSE_JWT_SECRET; prefer the env\n"
            "                            or --jwt-secret-file, a command line is visible to other users)\n"
            "  --jwt-secret-file FILE    the secret, read from FILE\n"
            "  --jwt-public-key FILE     PEM public key for RS256 (RSA) or ES256 (EC P-256) tokens\n"
            "                            (env RAGPULSE_JWT_PUBLIC_KEY)\n"
            "  --jwt-issuer ISS          tokens must carry this iss\n"
            "  --jwt-audience AUD        tokens must carry this aud\n"
            "  --jwt-leeway S            clock skew allowed on exp/nbf (default 30)\n"
            "  --metrics-public          serve /metrics without a token (default: admins only when auth is on)\n"
            "  --insecure                allow a non-loopback address without authentication\n"
            "\nlimits per producer and socket (0: off):\n"
            "  --event-rate N            events a second one producer may send (default 2000)\n"
            "  --event-burst N           events a producer may send at once (default 5000)\n"
            "  --max-subscriptions N     subscriptions one socket may hold (default 64)\n"
            "  --max-files-in-flight N   files in flight in one pipeline; an event adding one more is\n"
            "                            refused (429 / ack error; default 10000, 0: no bound)\n"
            "  --max-files-total N       files in flight in all pipelines (default 200000, 0: no bound)\n"
            "  --watch DIR               also run the local-files pipeline on DIR in this process (see\n"
            "                            `ragpulse watch --help`); its index goes in the --store SQLite\n"
            "                            file unless --index says otherwise. With --watch:\n%s",
            rp_cli_opts_usage, rp_cli_watch_opts_usage);
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
        fprintf(stderr, "ragpulse: %s %s is %s\n", what, path, buf == NULL ? "too big for memory" : big ? "over 64 KiB" : "empty");
        free(buf);
        return NULL;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    return buf;
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
    const char *cluster_url = getenv("RAGPULSE_CLUSTER") && *getenv("RAGPULSE_CLUSTER") ? getenv("RAGPULSE_CLUSTER") : NULL;
    if (rp_cli_opts_init(&o, 8103) < 0)
        return 2;
    rp_cli_opts_product_limits(&o);
    hc.event_rate = 2000;
    hc.event_burst = 5000;
    static char *secret, *public_key; /* owned for the process's life */
    const char *issuer = NULL, *audience = NULL;
    double leeway = 30;
    if (getenv("RAGPULSE_JWT_SECRET") && *getenv("RAGPULSE_JWT_SECRET"))
        secret = strdup(getenv("RAGPULSE_JWT_SECRET"));
    const char *pk_env = getenv("RAGPULSE_JWT_PUBLIC_KEY");
    if (pk_env && *pk_env && (public_key = read_small_file("the public key", pk_env)) == NULL)
        return 2;
    rp_cli_watch_opts_init(&watch_opts);
    /* The rollout as the documents set it; --websocket-rollout, parsed after, wins. */
    const char *rollout_env = getenv("WEBSOCKET_ROLLOUT_PERCENTAGE");
    if (rollout_env && *rollout_env) {
        double d;
        if (num_opt("WEBSOCKET_ROLLOUT_PERCENTAGE", rollout_env, 0, 100, &d) < 0)
            return 2;
        hc.websocket_rollout = (int)d;
    }
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
        if (strcmp(a, "--metrics-public") == 0) {
            hc.metrics_public = 1;
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
        } else if (strcmp(a, "--cluster") == 0) {
            cluster_url = v;
        } else if (strcmp(a, "--store") == 0) {
            store_spec = v;
        } else if (strcmp(a, "--retain-events") == 0 && num_opt(a, v, 1, 1e15, &d) == 0) {
            hc.retain_events = (int64_t)d;
        } else if (strcmp(a, "--retain-days") == 0 && num_opt(a, v, 0.001, 1e6, &d) == 0) {
            hc.retain_days = d;
        } else if (strcmp(a, "--jwt-secret") == 0) {
            free(secret);
            secret = strdup(v);
        } else if (strcmp(a, "--jwt-secret-file") == 0) {
            free(secret);
            if ((secret = read_small_file("the secret file", v)) == NULL)
                return 2;
        } else if (strcmp(a, "--jwt-public-key") == 0) {
            free(public_key);
            if ((public_key = read_small_file("the public key", v)) == NULL)
                return 2;
        } else if (strcmp(a, "--jwt-issuer") == 0) {
            issuer = v;
        } else if (strcmp(a, "--jwt-audience") == 0) {
            audience = v;
        } else if (strcmp(a, "--jwt-leeway") == 0 && num_opt(a, v, 0, 86400, &d) == 0) {
            leeway = d;
        } else if (strcmp(a, "--event-rate") == 0 && num_opt(a, v, 0, 1e9, &d) == 0) {
            hc.event_rate = d;
        } else if (strcmp(a, "--event-burst") == 0 && num_opt(a, v, 1, 1e9, &d) == 0) {
            hc.event_burst = d;
        } else if (strcmp(a, "--max-subscriptions") == 0 && num_opt(a, v, 1, 100000, &d) == 0) {
            hc.max_subscriptions = (size_t)d;
        } else if (strcmp(a, "--max-files-in-flight") == 0 && num_opt(a, v, 0, 1e9, &d) == 0) {
            hc.max_files_in_flight = (size_t)d;
        } else if (strcmp(a, "--max-files-total") == 0 && num_opt(a, v, 0, 1e9, &d) == 0) {
            hc.max_files_total = (size_t)d;
        } else {
            if (strncmp(a, "--", 2) == 0 && (strcmp(a, "--namespaces") && strcmp(a, "--heartbeat-timeout") &&
                                             strcmp(a, "--heartbeat-interval") && strcmp(a, "--stall-timeout") &&
                                             strcmp(a, "--server-heartbeat") && strcmp(a, "--history") &&
                                             strcmp(a, "--websocket-rollout") && strcmp(a, "--recovery-window") &&
                                             strcmp(a, "--retain-events") && strcmp(a, "--retain-days") &&
                                             strcmp(a, "--jwt-leeway") && strcmp(a, "--event-rate") &&
                                             strcmp(a, "--event-burst") && strcmp(a, "--max-subscriptions") &&
                                             strcmp(a, "--max-files-in-flight") && strcmp(a, "--max-files-total") &&
                                             strcmp(a, "--cluster"))) {
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
    if (secret && public_key) {
        fprintf(stderr, "ragpulse serve: give a JWT secret or a public key, not both\n");
        return 2;
    }
    static rp_auth_t *auth;
    if (secret || public_key) {
        char why[256];
        rp_auth_config_t ac = {secret, public_key, issuer, audience, (uint32_t)leeway};
        if ((auth = rp_auth_new(&ac, why, sizeof(why))) == NULL) {
            fprintf(stderr, "ragpulse serve: cannot use the JWT %s: %s\n", secret ? "secret" : "public key", why);
            return 2;
        }
        hc.auth = auth;
    }
    if (!rp_cli_host_is_loopback(o.host) && !o.insecure && auth == NULL) {
        fprintf(stderr,
                "ragpulse serve: refusing to listen on %s without authentication.\n"
                "  Anyone who can reach that address could read every pipeline's status and send\n"
                "  events as any pipeline. Either turn authentication on (--jwt-secret-file FILE or\n"
                "  RAGPULSE_JWT_SECRET; `ragpulse token` makes tokens), or listen on 127.0.0.1 (the\n"
                "  default) behind a proxy that authenticates, or pass --insecure to accept\n"
                "  unauthenticated clients on %s anyway.\n",
                o.host, o.host);
        return 2;
    }
    if (o.insecure && !rp_cli_host_is_loopback(o.host) && auth == NULL) {
        fprintf(stderr, "ragpulse serve: WARNING: --insecure: anyone who reaches %s may read and send"
                        " everything (no authentication)\n", o.host);
        RP_LOG_WARN("cli", "--insecure: serving %s without authentication", o.host);
    }
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
    if (cluster_url) {
        app.cluster = rp_cluster_redis_new(app.loop, cluster_url, err, sizeof(err));
        if (app.cluster == NULL) {
            fprintf(stderr, "ragpulse serve: --cluster: %s\n", err);
            return 2;
        }
        rp_sio_server_set_cluster(app.sio, app.cluster);
    }
    hc.recovery_window_ms = o.sio.recovery_window;
    hc.http = &app.http;
    app.http.open_paths = rp_hub_open_paths; /* readable from any page: what a client needs first */
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
