/* SPDX-License-Identifier: MIT */
#ifndef RP_CLI_APP_H
#define RP_CLI_APP_H

#include "cli/opts.h"
#include "eio/server.h"
#include "sio/server.h"

/* The application shell every server binary shares (ragpulse serve, rp-testserver,
 * rp-bench-relay): the options of the Socket.IO server and its limits, and the loop,
 * listener, HTTP routing, signals and clean shutdown around it. */

typedef struct rp_cli_opts {
    char host[64];
    int port;
    rp_eio_config_t eio;
    rp_sio_config_t sio;
    int reuseport;
    int workers; /* processes sharing the port; 1 = this process serves */
    int insecure;
    const char *log_level;
    /* Origins allowed besides the server's own (eio.cors points here when there are any):
     * SOCKET_IO_CORS_ORIGIN, replaced by the first --cors-origin, extended by later ones. */
    char cors[4096];
    int cors_cli;
    /* Limits on what comes from outside (0: none); see docs/security.md. */
    size_t max_conns;
    size_t max_conns_per_ip;
    size_t max_pending;
    size_t max_header;
    uint32_t request_timeout; /* ms */
    uint32_t idle_timeout;    /* ms */
} rp_cli_opts_t;

/* The server's options, filling an rp_cli_opts_t (--listen, --transports, --cors-origin, the
 * Engine.IO and Socket.IO settings, the limits, --log-level; env SOCKET_IO_PORT,
 * SOCKET_IO_TRANSPORTS, SOCKET_IO_CORS_ORIGIN, RAGPULSE_LOG_LEVEL). */
extern const rp_cli_opt_t rp_cli_server_opts[];
extern const size_t rp_cli_server_nopts;
/* --workers N (rp-testserver and rp-bench-relay; `ragpulse serve` has no such option). */
extern const rp_cli_opt_t rp_cli_workers_opts[];
extern const size_t rp_cli_workers_nopts;

/* The limits `ragpulse serve` starts with (test and benchmark servers start with none). */
void rp_cli_opts_product_limits(rp_cli_opts_t *o);
/* Fills the defaults: listen 127.0.0.1:default_port, one process, the eio/sio defaults. The
 * environment is read by rp_cli_parse with the table. */
void rp_cli_opts_init(rp_cli_opts_t *o, int default_port);
/* The parse of a test or benchmark server: the server's options and --workers from the
 * environment and argv, errors prefixed with `prog`. Returns 0, RP_CLI_HELP or RP_EINVAL
 * (printed). */
int rp_cli_opts_parse_server(rp_cli_opts_t *o, const char *prog, int argc, char **argv);
/* True when host is a loopback address (127.0.0.0/8, ::1, localhost). */
int rp_cli_host_is_loopback(const char *host);

typedef struct rp_app rp_app_t;
/* Extra routes: return 1 if the request was served. */
typedef int (*rp_app_route_cb)(rp_app_t *app, rp_http_conn_t *hc, rp_http_request_t *req);

struct rp_app {
    uv_loop_t *loop;
    rp_net_t net;
    rp_net_listener_t _listener;
    rp_http_server_t _http;
    rp_sio_server_t *sio;
    rp_cluster_t *cluster;      /* the workers adapter, in a worker of --workers N */
    rp_eio_server_t *extra_eio; /* another Engine.IO endpoint (the conformance server's) */
    rp_app_route_cb _route;
    void *_hub; /* the application's, freed at shutdown with _hub_free */
    void (*_hub_free)(void *hub);
    uv_signal_t _sigint;
    uv_signal_t _sigterm;
    uv_timer_t _stop_timer;
    const rp_cli_opts_t *_opts; /* borrowed, outlives app */
    void *_data;
};

/* Sets up loop, net, HTTP and the Socket.IO server from o. Returns 0, or UV_ENOMEM or a
 * libuv error after printing what failed (the process then exits). */
int rp_app_init(rp_app_t *app, const rp_cli_opts_t *o);
/* Listens, prints "listening on http://HOST:PORT" on stdout, runs until SIGINT/SIGTERM,
 * then closes everything. With o->workers > 1 the process becomes a supervisor
 * (cli/supervisor.h). Returns the process exit status. */
int rp_app_run(rp_app_t *app);
/* Listens on port and runs the loop until a signal ends it. ready_fd >= 0 gets one byte once
 * listening (a worker telling its supervisor); print says whether to print the listening
 * line. Returns the process exit status. */
int rp_app_serve(rp_app_t *app, int port, int reuseport, int ready_fd, int print);

#endif
