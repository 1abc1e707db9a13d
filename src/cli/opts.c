/* SPDX-License-Identifier: MIT */
/* Shared command-line options and the application shell of every server binary. */
#include "cli/opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

const char rp_cli_opts_usage[] =
    "  --listen HOST:PORT        address to listen on (default 127.0.0.1:8103; env SOCKET_IO_PORT)\n"
    "  --transports LIST         polling,websocket (env SOCKET_IO_TRANSPORTS)\n"
    "  --cors-origin LIST        allowed origins, comma-separated, or * (env SOCKET_IO_CORS_ORIGIN)\n"
    "  --ping-interval MS        Engine.IO heartbeat interval (default 25000)\n"
    "  --ping-timeout MS         Engine.IO heartbeat timeout (default 20000)\n"
    "  --max-payload BYTES       largest message or POST body (default 1000000)\n"
    "  --max-queued BYTES        output a slow client may have waiting before it is dropped\n"
    "                            (default 1048576)\n"
    "  --connect-timeout MS      time to send a Socket.IO CONNECT (default 45000)\n"
    "  --reuseport               share the port with other processes (SO_REUSEPORT)\n"
    "  --log-level LEVEL         debug, info, warn, error, off (default info)\n";

static int parse_transports(const char *v, unsigned *out)
{
    unsigned t = 0;
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", v);
    for (char *save = NULL, *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (strcmp(tok, "polling") == 0)
            t |= RP_EIO_POLLING;
        else if (strcmp(tok, "websocket") == 0)
            t |= RP_EIO_WEBSOCKET;
        else
            return -1;
    }
    if (t == 0)
        return -1;
    *out = t;
    return 0;
}

static int parse_num(const char *name, const char *v, unsigned long long max, unsigned long long *out)
{
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n > max || v[0] == '-') {
        fprintf(stderr, "ragpulse: %s wants a number up to %llu, got '%s'\n", name, max, v);
        return -1;
    }
    *out = n;
    return 0;
}

static int parse_listen(rp_cli_opts_t *o, const char *v)
{
    const char *colon = strrchr(v, ':');
    unsigned long long port;
    if (colon == NULL || (size_t)(colon - v) >= sizeof(o->host) ||
        parse_num("--listen port", colon + 1, 65535, &port) < 0) {
        fprintf(stderr, "ragpulse: --listen wants HOST:PORT, got '%s'\n", v);
        return -1;
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

int rp_cli_opts_init(rp_cli_opts_t *o, int default_port)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->host, sizeof(o->host), "127.0.0.1");
    o->port = default_port;
    rp_eio_config_defaults(&o->eio);
    rp_sio_config_defaults(&o->sio);
    const char *v = getenv("SOCKET_IO_PORT");
    unsigned long long n;
    if (v && *v) {
        if (parse_num("SOCKET_IO_PORT", v, 65535, &n) < 0)
            return -1;
        o->port = (int)n;
    }
    v = getenv("SOCKET_IO_TRANSPORTS");
    if (v && *v && parse_transports(v, &o->eio.transports) < 0) {
        fprintf(stderr, "ragpulse: SOCKET_IO_TRANSPORTS wants polling,websocket; got '%s'\n", v);
        return -1;
    }
    v = getenv("SOCKET_IO_CORS_ORIGIN");
    if (v && *v)
        o->eio.cors = v;
    v = getenv("RAGPULSE_LOG_LEVEL");
    if (v && *v)
        o->log_level = v;
    return 0;
}

int rp_cli_opts_parse(rp_cli_opts_t *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    static const char *const with_value[] = {
        "--listen", "--transports", "--cors-origin", "--ping-interval", "--ping-timeout",
        "--max-payload", "--max-queued", "--connect-timeout", "--log-level",
    };
    if (strcmp(a, "--reuseport") == 0) {
        o->reuseport = 1;
        return 1;
    }
    if (strcmp(a, "--insecure") == 0) {
        o->insecure = 1;
        return 1;
    }
    int known = 0;
    for (size_t k = 0; k < sizeof(with_value) / sizeof(*with_value); k++)
        if (strcmp(a, with_value[k]) == 0)
            known = 1;
    if (!known)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "ragpulse: %s needs a value\n", a);
        return -1;
    }
    const char *v = argv[++*i];
    unsigned long long n;
    if (strcmp(a, "--listen") == 0)
        return parse_listen(o, v) < 0 ? -1 : 1;
    if (strcmp(a, "--transports") == 0) {
        if (parse_transports(v, &o->eio.transports) < 0) {
            fprintf(stderr, "ragpulse: --transports wants polling,websocket; got '%s'\n", v);
            return -1;
        }
        return 1;
    }
    if (strcmp(a, "--cors-origin") == 0) {
        o->eio.cors = v;
        return 1;
    }
    if (strcmp(a, "--log-level") == 0) {
        if (rp_log_level_parse(v) < 0) {
            fprintf(stderr, "ragpulse: --log-level wants debug, info, warn, error or off\n");
            return -1;
        }
        o->log_level = v;
        return 1;
    }
    if (parse_num(a, v, strcmp(a, "--max-payload") == 0 || strcmp(a, "--max-queued") == 0 ? (1ULL << 31) : 86400000, &n) < 0)
        return -1;
    if (n == 0) {
        fprintf(stderr, "ragpulse: %s must be above 0\n", a);
        return -1;
    }
    if (strcmp(a, "--ping-interval") == 0)
        o->eio.ping_interval = (uint32_t)n;
    else if (strcmp(a, "--ping-timeout") == 0)
        o->eio.ping_timeout = (uint32_t)n;
    else if (strcmp(a, "--max-payload") == 0)
        o->eio.max_payload = (size_t)n;
    else if (strcmp(a, "--max-queued") == 0)
        o->eio.max_queued = (size_t)n;
    else
        o->sio.connect_timeout = (uint32_t)n;
    return 1;
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
    if (app->route && app->route(app, hc, req))
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
    rp_http_conn_start(&app->http, c);
}

int rp_app_init(rp_app_t *app, const rp_cli_opts_t *o)
{
    memset(app, 0, sizeof(*app));
    app->opts = o;
    if (o->log_level)
        rp_log_level = rp_log_level_parse(o->log_level);
    app->loop = uv_default_loop();
    if (rp_net_init(&app->net, app->loop, o->eio.max_queued) < 0) {
        fprintf(stderr, "ragpulse: cannot start the event loop\n");
        return -1;
    }
    app->http.net = &app->net;
    app->http.max_header = 16384;
    app->http.max_body = o->eio.max_payload;
    app->http.on_request = on_request;
    app->http.ud = app;
    app->sio = rp_sio_server_new(&app->net, &o->eio, &o->sio);
    if (app->sio == NULL) {
        fprintf(stderr, "ragpulse: out of memory\n");
        return -1;
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
    uv_signal_stop(&app->sigint);
    uv_signal_stop(&app->sigterm);
    rp_net_listener_close(&app->listener);
    if (app->sio)
        rp_sio_server_free(app->sio);
    app->sio = NULL;
    if (app->extra_eio)
        rp_eio_server_free(app->extra_eio);
    app->extra_eio = NULL;
    rp_net_close_all(&app->net);
    /* Everything is closing; give libuv a moment to finish, then stop regardless. */
    uv_timer_init(app->loop, &app->stop_timer);
    uv_timer_start(&app->stop_timer, on_stop_timer, 2000, 0);
    uv_unref((uv_handle_t *)&app->stop_timer);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int rp_app_run(rp_app_t *app)
{
    const rp_cli_opts_t *o = app->opts;
    int rc = rp_net_listen(&app->net, &app->listener, o->host, o->port, o->reuseport, on_accept, app);
    if (rc < 0) {
        fprintf(stderr, "ragpulse: cannot listen on %s:%d: %s\n", o->host, o->port, uv_strerror(rc));
        return 1;
    }
    uv_signal_init(app->loop, &app->sigint);
    uv_signal_init(app->loop, &app->sigterm);
    app->sigint.data = app->sigterm.data = app;
    uv_signal_start(&app->sigint, on_signal, SIGINT);
    uv_signal_start(&app->sigterm, on_signal, SIGTERM);
    int v6 = strchr(o->host, ':') != NULL;
    printf("listening on http://%s%s%s:%d\n", v6 ? "[" : "", o->host, v6 ? "]" : "", app->listener.port);
    fflush(stdout);
    RP_LOG_INFO("cli", "listening on %s:%d", o->host, app->listener.port);
    uv_run(app->loop, UV_RUN_DEFAULT);
    /* Close whatever is left (signal handles, stragglers) and let the closes finish. */
    uv_walk(app->loop, close_walk, NULL);
    uv_run(app->loop, UV_RUN_DEFAULT);
    rp_net_deinit(&app->net);
    uv_run(app->loop, UV_RUN_DEFAULT);
    uv_loop_close(app->loop);
    return 0;
}
