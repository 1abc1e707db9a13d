/* SPDX-License-Identifier: MIT */
#ifndef RP_CLI_OPTS_H
#define RP_CLI_OPTS_H

#include "eio/server.h"
#include "sio/server.h"

/* Options shared by `ragpulse serve` and the test and benchmark servers, and the small
 * application shell around them: loop, listener, HTTP routing, signals, clean shutdown. */

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

/* The limits `ragpulse serve` starts with (test and benchmark servers start with none). */
void rp_cli_opts_product_limits(rp_cli_opts_t *o);
/* Fills defaults (listen 127.0.0.1:default_port), then applies the environment:
 * SOCKET_IO_PORT, SOCKET_IO_TRANSPORTS, SOCKET_IO_CORS_ORIGIN, RAGPULSE_LOG_LEVEL. Returns 0,
 * or -1 after printing what is wrong. */
int rp_cli_opts_init(rp_cli_opts_t *o, int default_port);
/* Parses argv[*i] (and its value) if it is a shared option: returns 1 and advances *i, 0 if
 * it is not one of ours, -1 after printing an error. */
int rp_cli_opts_parse(rp_cli_opts_t *o, int argc, char **argv, int *i);
/* The usage lines of the shared options. */
extern const char rp_cli_opts_usage[];
/* True when host is a loopback address (127.0.0.0/8, ::1, localhost). */
int rp_cli_host_is_loopback(const char *host);

typedef struct rp_app rp_app_t;
/* Extra routes: return 1 if the request was served. */
typedef int (*rp_app_route_cb)(rp_app_t *app, rp_http_conn_t *hc, rp_http_request_t *req);

struct rp_app {
    uv_loop_t *loop;
    rp_net_t net;
    rp_net_listener_t listener;
    rp_http_server_t http;
    rp_sio_server_t *sio;
    rp_cluster_t *cluster; /* the workers adapter, in a worker of --workers N */
    rp_eio_server_t *extra_eio; /* another Engine.IO endpoint (the conformance server's) */
    rp_app_route_cb route;
    void *hub;                    /* the application's, freed at shutdown with hub_free */
    void (*hub_free)(void *hub);
    uv_signal_t sigint;
    uv_signal_t sigterm;
    uv_timer_t stop_timer;
    const rp_cli_opts_t *opts;
    void *data;
};

/* Sets up loop, net, HTTP and the Socket.IO server from o. Returns 0 or -1 (printed). */
int rp_app_init(rp_app_t *app, const rp_cli_opts_t *o);
/* Listens, prints "listening on http://HOST:PORT" on stdout, runs until SIGINT/SIGTERM,
 * then closes everything. With --workers N the process becomes a supervisor: it forks N
 * workers that each run the loop on the same port (SO_REUSEPORT) and share broadcasts
 * through the workers cluster adapter, prints the line once all listen, forwards signals,
 * and ends the group if a worker dies. Returns the process exit status. */
int rp_app_run(rp_app_t *app);

#endif
