/* SPDX-License-Identifier: MIT */
/* The application shell of every server binary: the table of the Socket.IO server's options
 * (rp_cli_opts_t), and the loop, listener, HTTP routing, signals and shutdown around one
 * rp_sio_server_t. Forking workers is supervisor.c's. Invariant: everything rp_app_init
 * opens is closed by the signal handler or the walk at the end of rp_app_serve, so the loop
 * closes with no handle left. */
#include "cli/app.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/supervisor.h"
#include "util/err.h"
#include "util/log.h"

/* ---- the server's options ---- */

/* Adds the origins in v (a comma list) to o->cors, or replaces what is there. Each must be
 * an origin as a browser sends it (scheme://host[:port], no path) or "*". */
static int add_cors(rp_cli_opts_t *o, const char *what, const char *v, int replace)
{
    size_t len = strlen(v);
    size_t pos = 0;
    size_t l;
    const char *it;
    while (rp_http_list_next(v, len, &pos, &it, &l)) {
        if (!rp_http_origin_entry_valid(it, l)) {
            fprintf(stderr,
                    "ragpulse: %s wants origins as a browser sends them, scheme://host[:port] "
                    "with no path (e.g. http://localhost:3000), or *; got '%.*s'\n",
                    what, (int)l, it);
            return RP_EINVAL;
        }
    }
    size_t have = replace ? 0 : strlen(o->cors);
    if (have + 1 + len >= sizeof(o->cors)) {
        fprintf(stderr, "ragpulse: %s: more than %zu bytes of origins\n", what,
                sizeof(o->cors) - 1);
        return RP_EINVAL;
    }
    if (have && len)
        o->cors[have++] = ',';
    memcpy(o->cors + have, v, len + 1);
    o->eio.cors = o->cors[0] ? o->cors : NULL;
    return 0;
}

static int cors_any(const char *list)
{
    size_t len = list ? strlen(list) : 0;
    size_t pos = 0;
    size_t l;
    const char *it;
    while (rp_http_list_next(list, len, &pos, &it, &l))
        if (l == 1 && *it == '*')
            return 1;
    return 0;
}

static int parse_cors(void *target, const rp_cli_opt_t *opt, const char *v, const char *what,
                      const char *prefix, int from_env)
{
    (void)opt;
    (void)prefix;
    rp_cli_opts_t *o = target;
    int replace = from_env || !o->cors_cli; /* the first --cors-origin replaces the env's */
    if (!from_env)
        o->cors_cli = 1;
    return add_cors(o, what, v, replace);
}

static int parse_transports(void *target, const rp_cli_opt_t *opt, const char *v, const char *what,
                            const char *prefix, int from_env)
{
    (void)opt;
    (void)from_env;
    rp_cli_opts_t *o = target;
    unsigned t = 0;
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", v);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (strcmp(tok, "polling") == 0) {
            t |= RP_EIO_POLLING;
        } else if (strcmp(tok, "websocket") == 0) {
            t |= RP_EIO_WEBSOCKET;
        } else {
            t = 0;
            break;
        }
    }
    if (t == 0) {
        fprintf(stderr, "%s: %s wants polling,websocket; got '%s'\n", prefix, what, v);
        return RP_EINVAL;
    }
    o->eio.transports = t;
    return 0;
}

static int parse_listen(void *target, const rp_cli_opt_t *opt, const char *v, const char *what,
                        const char *prefix, int from_env)
{
    (void)opt;
    (void)from_env;
    rp_cli_opts_t *o = target;
    const char *colon = strrchr(v, ':');
    char *end = NULL;
    unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
    if (colon == NULL || (size_t)(colon - v) >= sizeof(o->host) || colon[1] == '\0' ||
        colon[1] == '-' || *end != '\0' || port > 65535) {
        fprintf(stderr, "%s: %s wants HOST:PORT (port 0 to 65535), got '%s'\n", prefix, what, v);
        return RP_EINVAL;
    }
    const char *h = v;
    size_t hl = (size_t)(colon - v);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    memcpy(o->host, h, hl);
    o->host[hl] = '\0';
    if (strcmp(o->host, "localhost") == 0)
        snprintf(o->host, sizeof(o->host), "127.0.0.1");
    o->port = (int)port;
    return 0;
}

static int parse_log_level(void *target, const rp_cli_opt_t *opt, const char *v, const char *what,
                           const char *prefix, int from_env)
{
    (void)opt;
    (void)from_env;
    rp_cli_opts_t *o = target;
    if (rp_log_level_parse(v) < 0) {
        fprintf(stderr, "%s: %s wants debug, info, warn, error or off\n", prefix, what);
        return RP_EINVAL;
    }
    o->log_level = v;
    return 0;
}

#define OFF(f) offsetof(rp_cli_opts_t, f)
#define DAY_MS 86400000.0

const rp_cli_opt_t rp_cli_server_opts[] = {
    {"--listen", "HOST:PORT", RP_CLI_CUSTOM, 0, 0, 0, NULL,
     "address to listen on (default 127.0.0.1:8103; env SOCKET_IO_PORT)", parse_listen, 0},
    {NULL, NULL, RP_CLI_INT, OFF(port), 0, 65535, "SOCKET_IO_PORT", NULL, NULL, 0},
    {"--transports", "LIST", RP_CLI_CUSTOM, 0, 0, 0, "SOCKET_IO_TRANSPORTS", "polling,websocket",
     parse_transports, 0},
    {"--cors-origin", "LIST", RP_CLI_CUSTOM, 0, 0, 0, "SOCKET_IO_CORS_ORIGIN",
     "web origins allowed besides this server's own, comma-separated or\n"
     "repeated (a dashboard elsewhere: http://localhost:3000); * allows\n"
     "any page to read and write the hub: unsafe (env SOCKET_IO_CORS_ORIGIN)",
     parse_cors, 0},
    {"--ping-interval", "MS", RP_CLI_U32, OFF(eio.ping_interval), 1, DAY_MS, NULL,
     "Engine.IO heartbeat interval (default 25000)", NULL, 0},
    {"--ping-timeout", "MS", RP_CLI_U32, OFF(eio.ping_timeout), 1, DAY_MS, NULL,
     "Engine.IO heartbeat timeout (default 20000)", NULL, 0},
    {"--max-payload", "BYTES", RP_CLI_SIZE, OFF(eio.max_payload), 1, 2147483648.0, NULL,
     "largest message or POST body (default 1000000)", NULL, 0},
    {"--max-queued", "BYTES", RP_CLI_SIZE, OFF(eio.max_queued), 1, 2147483648.0, NULL,
     "output a slow client may have waiting before it is dropped\n(default 1048576)", NULL, 0},
    {"--connect-timeout", "MS", RP_CLI_U32, OFF(sio.connect_timeout), 1, DAY_MS, NULL,
     "time to send a Socket.IO CONNECT (default 45000)", NULL, 0},
    {"--max-connections", "N", RP_CLI_SIZE, OFF(max_conns), 0, DAY_MS, NULL,
     "open connections in all (serve: the open-file limit - 64)", NULL, 0},
    {"--max-connections-per-ip", "N", RP_CLI_SIZE, OFF(max_conns_per_ip), 0, DAY_MS, NULL,
     "from one source address (serve: 1024)", NULL, 0},
    {"--max-pending", "N", RP_CLI_SIZE, OFF(max_pending), 0, DAY_MS, NULL,
     "connections that have not finished a first request (serve: 1024)", NULL, 0},
    {"--request-timeout", "MS", RP_CLI_U32, OFF(request_timeout), 0, DAY_MS, NULL,
     "a request's headers and body must arrive within (serve: 10000)", NULL, 0},
    {"--idle-timeout", "MS", RP_CLI_U32, OFF(idle_timeout), 0, DAY_MS, NULL,
     "an idle keep-alive connection is closed after (serve: 30000)", NULL, 0},
    {"--max-header-bytes", "N", RP_CLI_SIZE, OFF(max_header), 256, 65535, NULL,
     "request line and headers (default 16384; over: 431)", NULL, 0},
    {"--max-attachments", "N", RP_CLI_UNSIGNED, OFF(sio.max_attachments), 1, 100000, NULL,
     "binary attachments in one Socket.IO packet (default 16)", NULL, 0},
    {"--max-rooms", "N", RP_CLI_UNSIGNED, OFF(sio.max_rooms_per_socket), 1, 100000, NULL,
     "rooms one socket may be in (default 256)", NULL, 0},
    {"--rate-limit", "N", RP_CLI_DOUBLE, OFF(sio.rate_limit), 0, DAY_MS, NULL,
     "Socket.IO packets a second per connection (serve: 500; 0: off)", NULL, 0},
    {"--rate-burst", "N", RP_CLI_DOUBLE, OFF(sio.rate_burst), 0, DAY_MS, NULL,
     "packets a connection may send at once (serve: 1000)", NULL, 0},
    {"--upgrade-timeout", "MS", RP_CLI_U32, OFF(eio.upgrade_timeout), 0, DAY_MS, NULL,
     "time for a WebSocket probe to finish the upgrade (default 10000; 0: none)", NULL, 0},
    {"--reuseport", NULL, RP_CLI_FLAG, OFF(reuseport), 0, 0, NULL,
     "share the port with other processes (SO_REUSEPORT)", NULL, 1},
    {"--log-level", "LEVEL", RP_CLI_CUSTOM, 0, 0, 0, "RAGPULSE_LOG_LEVEL",
     "debug, info, warn, error, off (default info; env RAGPULSE_LOG_LEVEL)", parse_log_level, 0},
};
const size_t rp_cli_server_nopts = RP_CLI_COUNT(rp_cli_server_opts);

const rp_cli_opt_t rp_cli_workers_opts[] = {
    {"--workers", "N", RP_CLI_INT, OFF(workers), 1, RP_SUPERVISOR_MAX_WORKERS, NULL,
     "N processes on one port sharing broadcasts (default 1)", NULL, 0},
};
const size_t rp_cli_workers_nopts = RP_CLI_COUNT(rp_cli_workers_opts);

void rp_cli_opts_product_limits(rp_cli_opts_t *o)
{
    struct rlimit rl;
    o->max_conns = 16000;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 128)
        o->max_conns = (size_t)rl.rlim_cur - 64; /* room for the store, logs, listeners */
    o->max_conns_per_ip = 1024;
    o->max_pending = 1024;
    o->request_timeout = 10000;
    o->idle_timeout = 30000;
    o->sio.rate_limit = 500;
    o->sio.rate_burst = 1000;
}

void rp_cli_opts_init(rp_cli_opts_t *o, int default_port)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->host, sizeof(o->host), "127.0.0.1");
    o->port = default_port;
    o->max_header = 16384;
    o->workers = 1;
    rp_eio_config_defaults(&o->eio);
    rp_sio_config_defaults(&o->sio);
}

int rp_cli_opts_parse_server(rp_cli_opts_t *o, const char *prog, int argc, char **argv)
{
    char usage[128];
    snprintf(usage, sizeof(usage), "usage: %s [OPTIONS]\n\noptions:\n", prog);
    rp_cli_optset_t sets[] = {
        {rp_cli_server_opts, rp_cli_server_nopts, o, NULL},
        {rp_cli_workers_opts, rp_cli_workers_nopts, o, NULL},
    };
    rp_cli_cmd_t cmd = {prog, usage, NULL, sets, RP_CLI_COUNT(sets), NULL, NULL};
    return rp_cli_parse(&cmd, argc, argv);
}

int rp_cli_host_is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

/* ---- the application shell ---- */

static void on_request(rp_http_conn_t *hc, rp_http_request_t *req, void *ud)
{
    rp_app_t *app = ud;
    if (app->_route && app->_route(app, hc, req))
        return;
    if (app->extra_eio && rp_eio_server_handle(app->extra_eio, hc, req))
        return;
    if (app->sio && rp_sio_server_handle(app->sio, hc, req))
        return;
    rp_http_respond(hc, 404, "application/json", "", "{\"error\":\"not found\"}", 21);
}

static void on_accept(rp_net_listener_t *l, rp_net_conn_t *c)
{
    rp_app_t *app = l->data;
    /* On failure c is closed by rp_http_conn_start and counted there: nothing left to undo. */
    (void)rp_http_conn_start(&app->_http, c);
}

int rp_app_init(rp_app_t *app, const rp_cli_opts_t *o)
{
    memset(app, 0, sizeof(*app));
    app->_opts = o;
    if (o->log_level)
        rp_log_level = rp_log_level_parse(o->log_level);
    app->loop = uv_default_loop();
    int rc = rp_net_init(&app->net, app->loop, o->eio.max_queued);
    if (rc < 0) {
        fprintf(stderr, "ragpulse: cannot start the event loop: %s\n", uv_strerror(rc));
        return rc;
    }
    app->net.max_conns = o->max_conns;
    app->net.max_conns_per_ip = o->max_conns_per_ip;
    app->_http.net = &app->net;
    app->_http.max_header = o->max_header;
    app->_http.max_body = o->eio.max_payload;
    app->_http.max_pending = o->max_pending;
    app->_http.request_timeout = o->request_timeout;
    app->_http.idle_timeout = o->idle_timeout;
    app->_http.on_request = on_request;
    app->_http.ud = app;
    /* One Origin policy for every transport: a browser page from another origin cannot use
     * this server unless --cors-origin lists it. */
    app->_http.origin_check = 1;
    app->_http.origins = o->eio.cors;
    if (cors_any(o->eio.cors))
        RP_LOG_WARN("cli", "--cors-origin *: any web page can read and write this server");
    app->sio = rp_sio_server_new(&app->net, &o->eio, &o->sio);
    if (app->sio == NULL) {
        fprintf(stderr, "ragpulse: out of memory\n");
        return UV_ENOMEM;
    }
    return 0;
}

static void on_stop_timer(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    rp_app_t *app = sig->data;
    RP_LOG_INFO("cli", "signal %d: shutting down", signum);
    uv_signal_stop(&app->_sigint);
    uv_signal_stop(&app->_sigterm);
    rp_net_listener_close(&app->_listener);
    rp_http_server_stop(&app->_http);
    if (app->_hub && app->_hub_free)
        app->_hub_free(app->_hub);
    app->_hub = NULL;
    if (app->sio)
        rp_sio_server_close(app->sio, NULL);
    app->sio = NULL;
    if (app->extra_eio)
        rp_eio_server_close(app->extra_eio, NULL);
    app->extra_eio = NULL;
    if (app->cluster)
        app->cluster->ops->close(app->cluster);
    app->cluster = NULL;
    rp_net_close_all(&app->net);
    /* Everything is closing; give libuv a moment to finish, then stop regardless. Without
     * the timer the loop still ends once the closes are done. */
    if (uv_timer_init(app->loop, &app->_stop_timer) < 0)
        return;
    if (uv_timer_start(&app->_stop_timer, on_stop_timer, 2000, 0) < 0)
        return;
    uv_unref((uv_handle_t *)&app->_stop_timer);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int start_signals(rp_app_t *app)
{
    int rc = uv_signal_init(app->loop, &app->_sigint);
    if (rc < 0)
        return rc;
    rc = uv_signal_init(app->loop, &app->_sigterm);
    if (rc < 0)
        return rc;
    app->_sigint.data = app->_sigterm.data = app;
    rc = uv_signal_start(&app->_sigint, on_signal, SIGINT);
    if (rc < 0)
        return rc;
    return uv_signal_start(&app->_sigterm, on_signal, SIGTERM);
}

int rp_app_serve(rp_app_t *app, int port, int reuseport, int ready_fd, int print)
{
    const rp_cli_opts_t *o = app->_opts;
    int rc = rp_net_listen(&app->net, &app->_listener, o->host, port, reuseport, on_accept, app);
    if (rc < 0) {
        fprintf(stderr, "ragpulse: cannot listen on %s:%d: %s\n", o->host, port, uv_strerror(rc));
        return 1;
    }
    rc = start_signals(app);
    if (rc < 0) {
        fprintf(stderr, "ragpulse: cannot catch signals: %s\n", uv_strerror(rc));
        return 1;
    }
    if (print) {
        int v6 = strchr(o->host, ':') != NULL;
        printf("listening on http://%s%s%s:%d\n", v6 ? "[" : "", o->host, v6 ? "]" : "",
               app->_listener.port);
        fflush(stdout);
    }
    if (ready_fd >= 0) {
        if (write(ready_fd, "r", 1) != 1)
            return 1;
        close(ready_fd);
    }
    RP_LOG_INFO("cli", "listening on %s:%d", o->host, app->_listener.port);
    uv_run(app->loop, UV_RUN_DEFAULT);
    /* Close whatever is left (signal handles, stragglers) and let the closes finish. */
    uv_walk(app->loop, close_walk, NULL);
    uv_run(app->loop, UV_RUN_DEFAULT);
    rp_net_deinit(&app->net);
    uv_run(app->loop, UV_RUN_DEFAULT);
    uv_loop_close(app->loop);
    return 0;
}

int rp_app_run(rp_app_t *app)
{
    const rp_cli_opts_t *o = app->_opts;
    if (o->workers > 1)
        return rp_supervisor_run(app);
    return rp_app_serve(app, o->port, o->reuseport, -1, 1);
}
