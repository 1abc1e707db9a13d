/* SPDX-License-Identifier: MIT */
/* Shared command-line options and the application shell of every server binary. */
#include "cli/opts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster/workers.h"
#include "util/log.h"

const char rp_cli_opts_usage[] =
    "  --listen HOST:PORT        address to listen on (default 127.0.0.1:8103; env SOCKET_IO_PORT)\n"
    "  --transports LIST         polling,websocket (env SOCKET_IO_TRANSPORTS)\n"
    "  --cors-origin LIST        web origins allowed besides this server's own, comma-separated or\n"
    "                            repeated (a dashboard elsewhere: http://localhost:3000); * allows\n"
    "                            any page to read and write the hub: unsafe (env SOCKET_IO_CORS_ORIGIN)\n"
    "  --ping-interval MS        Engine.IO heartbeat interval (default 25000)\n"
    "  --ping-timeout MS         Engine.IO heartbeat timeout (default 20000)\n"
    "  --max-payload BYTES       largest message or POST body (default 1000000)\n"
    "  --max-queued BYTES        output a slow client may have waiting before it is dropped\n"
    "                            (default 1048576)\n"
    "  --connect-timeout MS      time to send a Socket.IO CONNECT (default 45000)\n"
    "  --max-connections N       open connections in all (serve: the open-file limit - 64)\n"
    "  --max-connections-per-ip N  from one source address (serve: 1024)\n"
    "  --max-pending N           connections that have not finished a first request (serve: 1024)\n"
    "  --request-timeout MS      a request's headers and body must arrive within (serve: 10000)\n"
    "  --idle-timeout MS         an idle keep-alive connection is closed after (serve: 30000)\n"
    "  --max-header-bytes N      request line and headers (default 16384; over: 431)\n"
    "  --max-attachments N       binary attachments in one Socket.IO packet (default 16)\n"
    "  --max-rooms N             rooms one socket may be in (default 256)\n"
    "  --rate-limit N            Socket.IO packets a second per connection (serve: 500; 0: off)\n"
    "  --rate-burst N            packets a connection may send at once (serve: 1000)\n"
    "  --upgrade-timeout MS      time for a WebSocket probe to finish the upgrade (default 10000; 0: none)\n"
    "  --reuseport               share the port with other processes (SO_REUSEPORT)\n"
    "  --workers N               N processes on one port sharing broadcasts (default 1)\n"
    "  --log-level LEVEL         debug, info, warn, error, off (default info)\n";

/* Adds the origins in v (a comma list) to o->cors, or replaces what is there. Each must be
 * an origin as a browser sends it (scheme://host[:port], no path) or "*". Returns 0, or -1
 * after printing what is wrong. */
static int add_cors(rp_cli_opts_t *o, const char *what, const char *v, int replace)
{
    size_t len = strlen(v), pos = 0, l;
    const char *it;
    while (rp_http_list_next(v, len, &pos, &it, &l)) {
        if (!rp_http_origin_entry_valid(it, l)) {
            fprintf(stderr,
                    "ragpulse: %s wants origins as a browser sends them, scheme://host[:port] "
                    "with no path (e.g. http://localhost:3000), or *; got '%.*s'\n",
                    what, (int)l, it);
            return -1;
        }
    }
    size_t have = replace ? 0 : strlen(o->cors);
    if (have + 1 + len >= sizeof(o->cors)) {
        fprintf(stderr, "ragpulse: %s: more than %zu bytes of origins\n", what, sizeof(o->cors) - 1);
        return -1;
    }
    if (have && len)
        o->cors[have++] = ',';
    memcpy(o->cors + have, v, len + 1);
    o->eio.cors = o->cors[0] ? o->cors : NULL;
    return 0;
}

static int cors_any(const char *list)
{
    size_t len = list ? strlen(list) : 0, pos = 0, l;
    const char *it;
    while (rp_http_list_next(list, len, &pos, &it, &l))
        if (l == 1 && *it == '*')
            return 1;
    return 0;
}

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

int rp_cli_opts_init(rp_cli_opts_t *o, int default_port)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->host, sizeof(o->host), "127.0.0.1");
    o->port = default_port;
    o->max_header = 16384;
    o->workers = 1;
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
    if (v && *v && add_cors(o, "SOCKET_IO_CORS_ORIGIN", v, 1) < 0)
        return -1;
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
        "--max-payload", "--max-queued", "--connect-timeout", "--log-level", "--workers",
        "--max-connections", "--max-connections-per-ip", "--max-pending", "--request-timeout",
        "--idle-timeout", "--max-header-bytes", "--max-attachments", "--max-rooms", "--rate-limit",
        "--rate-burst", "--upgrade-timeout",
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
        int first = !o->cors_cli;
        o->cors_cli = 1;
        return add_cors(o, a, v, first) < 0 ? -1 : 1;
    }
    if (strcmp(a, "--log-level") == 0) {
        if (rp_log_level_parse(v) < 0) {
            fprintf(stderr, "ragpulse: --log-level wants debug, info, warn, error or off\n");
            return -1;
        }
        o->log_level = v;
        return 1;
    }
    if (strcmp(a, "--workers") == 0) {
        if (parse_num(a, v, 64, &n) < 0 || n == 0) {
            fprintf(stderr, "ragpulse: --workers wants 1 to 64\n");
            return -1;
        }
        o->workers = (int)n;
        return 1;
    }
    /* Limits where 0 means "none". */
    static const char *const zero_ok[] = {"--max-connections", "--max-connections-per-ip", "--max-pending",
                                          "--request-timeout", "--idle-timeout", "--rate-limit", "--rate-burst"};
    for (size_t k = 0; k < sizeof(zero_ok) / sizeof(*zero_ok); k++) {
        if (strcmp(a, zero_ok[k]) != 0)
            continue;
        if (parse_num(a, v, 86400000, &n) < 0)
            return -1;
        if (k == 0)
            o->max_conns = (size_t)n;
        else if (k == 1)
            o->max_conns_per_ip = (size_t)n;
        else if (k == 2)
            o->max_pending = (size_t)n;
        else if (k == 3)
            o->request_timeout = (uint32_t)n;
        else if (k == 4)
            o->idle_timeout = (uint32_t)n;
        else if (k == 5)
            o->sio.rate_limit = (double)n;
        else
            o->sio.rate_burst = (double)n;
        return 1;
    }
    if (strcmp(a, "--upgrade-timeout") == 0) {
        if (parse_num(a, v, 86400000, &n) < 0)
            return -1;
        o->eio.upgrade_timeout = (uint32_t)n;
        return 1;
    }
    if (strcmp(a, "--max-header-bytes") == 0 || strcmp(a, "--max-attachments") == 0 || strcmp(a, "--max-rooms") == 0) {
        int hdr = strcmp(a, "--max-header-bytes") == 0;
        if (parse_num(a, v, hdr ? 65535 : 100000, &n) < 0)
            return -1;
        if (n < (hdr ? 256u : 1u)) {
            fprintf(stderr, "ragpulse: %s must be at least %u\n", a, hdr ? 256u : 1u);
            return -1;
        }
        if (hdr)
            o->max_header = (size_t)n;
        else if (strcmp(a, "--max-attachments") == 0)
            o->sio.max_attachments = (unsigned)n;
        else
            o->sio.max_rooms_per_socket = (unsigned)n;
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
    app->net.max_conns = o->max_conns;
    app->net.max_conns_per_ip = o->max_conns_per_ip;
    app->http.net = &app->net;
    app->http.max_header = o->max_header;
    app->http.max_body = o->eio.max_payload;
    app->http.max_pending = o->max_pending;
    app->http.request_timeout = o->request_timeout;
    app->http.idle_timeout = o->idle_timeout;
    app->http.on_request = on_request;
    app->http.ud = app;
    /* One Origin policy for every transport: a browser page from another origin cannot use
     * this server unless --cors-origin lists it. */
    app->http.origin_check = 1;
    app->http.origins = o->eio.cors;
    if (cors_any(o->eio.cors))
        RP_LOG_WARN("cli", "--cors-origin *: any web page can read and write this server");
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
    rp_http_server_stop(&app->http);
    if (app->hub && app->hub_free)
        app->hub_free(app->hub);
    app->hub = NULL;
    if (app->sio)
        rp_sio_server_free(app->sio);
    app->sio = NULL;
    if (app->extra_eio)
        rp_eio_server_free(app->extra_eio);
    app->extra_eio = NULL;
    if (app->cluster)
        app->cluster->ops->close(app->cluster);
    app->cluster = NULL;
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

/* Listens on port and runs the loop until a signal ends it. ready_fd >= 0 gets one byte once
 * listening (workers tell their supervisor); print says whether to print the listening line. */
static int serve_loop(rp_app_t *app, int port, int reuseport, int ready_fd, int print)
{
    const rp_cli_opts_t *o = app->opts;
    int rc = rp_net_listen(&app->net, &app->listener, o->host, port, reuseport, on_accept, app);
    if (rc < 0) {
        fprintf(stderr, "ragpulse: cannot listen on %s:%d: %s\n", o->host, port, uv_strerror(rc));
        return 1;
    }
    uv_signal_init(app->loop, &app->sigint);
    uv_signal_init(app->loop, &app->sigterm);
    app->sigint.data = app->sigterm.data = app;
    uv_signal_start(&app->sigint, on_signal, SIGINT);
    uv_signal_start(&app->sigterm, on_signal, SIGTERM);
    if (print) {
        int v6 = strchr(o->host, ':') != NULL;
        printf("listening on http://%s%s%s:%d\n", v6 ? "[" : "", o->host, v6 ? "]" : "",
               app->listener.port);
        fflush(stdout);
    }
    if (ready_fd >= 0) {
        if (write(ready_fd, "r", 1) != 1)
            return 1;
        close(ready_fd);
    }
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

/* Binds a throwaway SO_REUSEPORT socket to port 0 so every worker can bind the same port. */
static int reserve_port(const char *host, int *port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    int v6 = strchr(host, ':') != NULL;
    if (v6 ? uv_ip6_addr(host, 0, (struct sockaddr_in6 *)&ss) : uv_ip4_addr(host, 0, (struct sockaddr_in *)&ss))
        return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    socklen_t len = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&ss, len) < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

#define MAX_WORKERS 64
static pid_t worker_pids[MAX_WORKERS];
static int nworkers;
static volatile sig_atomic_t stopping;

static void forward_signal(int sig)
{
    stopping = 1;
    for (int i = 0; i < nworkers; i++)
        if (worker_pids[i] > 0)
            kill(worker_pids[i], sig);
}

static int run_workers(rp_app_t *app)
{
    const rp_cli_opts_t *o = app->opts;
    int n = o->workers;
    int port = o->port;
    int hold = -1;
    if (port == 0 && (hold = reserve_port(o->host, &port)) < 0) {
        fprintf(stderr, "ragpulse: cannot pick a port on %s: %s\n", o->host, strerror(errno));
        return 1;
    }
    static int mesh[MAX_WORKERS][MAX_WORKERS];
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            int pair[2];
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) < 0) {
                fprintf(stderr, "ragpulse: socketpair: %s\n", strerror(errno));
                return 1;
            }
            mesh[i][j] = pair[0];
            mesh[j][i] = pair[1];
        }
    int ready[2];
    if (pipe(ready) < 0)
        return 1;
    fflush(stdout);
    fflush(stderr);
    nworkers = n;
    for (int k = 0; k < n; k++) {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "ragpulse: fork: %s\n", strerror(errno));
            forward_signal(SIGTERM);
            return 1;
        }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            close(ready[0]);
            if (hold >= 0)
                close(hold);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    if (i != j && i != k)
                        close(mesh[i][j]);
            uv_loop_fork(app->loop);
            mesh[k][k] = -1;
            app->cluster = rp_cluster_workers_new(app->loop, k, n, mesh[k]);
            if (app->cluster == NULL)
                _exit(1);
            rp_sio_server_set_cluster(app->sio, app->cluster);
            _exit(serve_loop(app, port, 1, ready[1], 0));
        }
        worker_pids[k] = pid;
    }
    close(ready[1]);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j)
                close(mesh[i][j]);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = forward_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int got = 0;
    char b;
    while (got < n && read(ready[0], &b, 1) == 1)
        got++;
    close(ready[0]);
    if (hold >= 0)
        close(hold);
    int status = 0;
    if (got == n) {
        int v6 = strchr(o->host, ':') != NULL;
        printf("listening on http://%s%s%s:%d\n", v6 ? "[" : "", o->host, v6 ? "]" : "", port);
        fflush(stdout);
        RP_LOG_INFO("cli", "%d workers listening on %s:%d", n, o->host, port);
    } else {
        fprintf(stderr, "ragpulse: only %d of %d workers started\n", got, n);
        status = 1;
        forward_signal(SIGTERM);
    }
    int left = n;
    while (left > 0) {
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        left--;
        for (int i = 0; i < n; i++)
            if (worker_pids[i] == pid)
                worker_pids[i] = 0;
        if (!stopping) {
            RP_LOG_ERROR("cli", "worker %d exited unexpectedly; stopping the others", (int)pid);
            status = 1;
            forward_signal(SIGTERM);
        }
    }
    fflush(stdout);
    _exit(status);
}

int rp_app_run(rp_app_t *app)
{
    const rp_cli_opts_t *o = app->opts;
    if (o->workers > 1)
        return run_workers(app);
    return serve_loop(app, o->port, o->reuseport, -1, 1);
}
