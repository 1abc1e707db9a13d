/* SPDX-License-Identifier: MIT */
/* `ragpulse serve`: the hub's Socket.IO namespaces and HTTP endpoints on one port. The
 * pipeline domain (events, state, snapshots) lands in hub/; for now serve hosts the
 * namespaces viewers and producers connect to, answers `ping`, and reports health. */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "util/log.h"

static const char *const namespaces[] = {"/", "/pipeline", "/google_drive", "/local_files"};

static double now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec * 1000.0 + (double)(tv.tv_usec / 1000);
}

static void on_ping(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    (void)ud;
    if (ev->ack_id < 0)
        return;
    char json[64];
    int n = snprintf(json, sizeof(json), "{\"time\":%.0f}", now_ms());
    rp_sio_ack(s, ev->ack_id, json, (size_t)n, NULL, 0);
}

static int route(rp_app_t *app, rp_http_conn_t *hc, rp_http_request_t *req)
{
    if ((req->path_len == 7 && memcmp(req->path, "/health", 7) == 0) ||
        (req->path_len == 11 && memcmp(req->path, "/api/health", 11) == 0)) {
        char body[256];
        rp_eio_server_t *eio = app->sio->eio;
        int n = snprintf(body, sizeof(body),
                         "{\"status\":\"ok\",\"websocket\":%s,\"polling\":%s,"
                         "\"sessions\":{\"websocket\":%zu,\"polling\":%zu},\"connections\":%zu}",
                         (eio->cfg.transports & RP_EIO_WEBSOCKET) ? "true" : "false",
                         (eio->cfg.transports & RP_EIO_POLLING) ? "true" : "false",
                         eio->n_websocket, eio->n_polling, app->net.nconns);
        rp_http_respond(hc, req->method == HTTP_GET || req->method == HTTP_HEAD ? 200 : 405,
                        "application/json", "Cache-Control: no-store\r\n", body, (size_t)n);
        return 1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: ragpulse serve [OPTIONS]\n\noptions:\n%s"
               "  --insecure                allow a non-loopback address without authentication\n",
            rp_cli_opts_usage);
}

int rp_cli_serve(int argc, char **argv)
{
    rp_cli_opts_t o;
    if (rp_cli_opts_init(&o, 8103) < 0)
        return 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        int rc = rp_cli_opts_parse(&o, argc, argv, &i);
        if (rc < 0)
            return 2;
        if (rc == 0) {
            fprintf(stderr, "ragpulse serve: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
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
    rp_app_t app;
    if (rp_app_init(&app, &o) < 0)
        return 1;
    for (size_t i = 0; i < sizeof(namespaces) / sizeof(*namespaces); i++) {
        rp_sio_nsp_t *nsp = rp_sio_server_of(app.sio, namespaces[i]);
        if (nsp == NULL || rp_sio_nsp_on(nsp, "ping", on_ping, NULL) < 0) {
            fprintf(stderr, "ragpulse: out of memory\n");
            return 1;
        }
    }
    app.route = route;
    return rp_app_run(&app);
}
