/* SPDX-License-Identifier: MIT */
/* The fork supervisor of --workers N: it reserves the port, builds a full mesh of Unix
 * sockets, forks N workers that each serve the same port with SO_REUSEPORT and share
 * broadcasts through the workers cluster adapter, then only waits: it prints the listening
 * line once all are up, forwards SIGINT/SIGTERM and ends the group when one worker dies. It
 * never runs the loop itself; a worker never returns into the caller (it _exits). */
#include "cli/supervisor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster/workers.h"
#include "util/log.h"

/* Binds a throwaway SO_REUSEPORT socket to port 0 so every worker can bind the same port. */
static int reserve_port(const char *host, int *port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    int v6 = strchr(host, ':') != NULL;
    if (v6 ? uv_ip6_addr(host, 0, (struct sockaddr_in6 *)&ss)
           : uv_ip4_addr(host, 0, (struct sockaddr_in *)&ss))
        return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    socklen_t len = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&ss, len) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port =
        ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* Signal handlers see these: the supervisor is one per process. */
static pid_t worker_pids[RP_SUPERVISOR_MAX_WORKERS];
static int nworkers;
static volatile sig_atomic_t stopping;

static void forward_signal(int sig)
{
    stopping = 1;
    for (int i = 0; i < nworkers; i++)
        if (worker_pids[i] > 0)
            kill(worker_pids[i], sig);
}

/* In worker k: keep only k's ends of the mesh, join it and serve. */
static void run_worker(rp_app_t *app, int k, int n, int (*mesh)[RP_SUPERVISOR_MAX_WORKERS],
                       int ready_fd, int hold, int port)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (hold >= 0)
        close(hold);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j && i != k)
                close(mesh[i][j]);
    if (uv_loop_fork(app->loop) < 0)
        _exit(1);
    mesh[k][k] = -1;
    app->cluster = rp_cluster_workers_new(app->loop, k, n, mesh[k]);
    if (app->cluster == NULL)
        _exit(1);
    rp_sio_server_set_cluster(app->sio, app->cluster);
    _exit(rp_app_serve(app, port, 1, ready_fd, 0));
}

/* Waits for every worker; returns the group's exit status. */
static int wait_workers(int n, int status)
{
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
    return status;
}

int rp_supervisor_run(rp_app_t *app)
{
    const rp_cli_opts_t *o = app->_opts;
    int n = o->workers;
    int port = o->port;
    int hold = -1;
    if (port == 0 && (hold = reserve_port(o->host, &port)) < 0) {
        fprintf(stderr, "ragpulse: cannot pick a port on %s: %s\n", o->host, strerror(errno));
        _exit(1);
    }
    static int mesh[RP_SUPERVISOR_MAX_WORKERS][RP_SUPERVISOR_MAX_WORKERS];
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            int pair[2];
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) < 0) {
                fprintf(stderr, "ragpulse: socketpair: %s\n", strerror(errno));
                _exit(1);
            }
            mesh[i][j] = pair[0];
            mesh[j][i] = pair[1];
        }
    int ready[2];
    if (pipe(ready) < 0) {
        fprintf(stderr, "ragpulse: pipe: %s\n", strerror(errno));
        _exit(1);
    }
    fflush(stdout);
    fflush(stderr);
    nworkers = n;
    for (int k = 0; k < n; k++) {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "ragpulse: fork: %s\n", strerror(errno));
            forward_signal(SIGTERM);
            _exit(wait_workers(k, 1));
        }
        if (pid == 0) {
            close(ready[0]);
            run_worker(app, k, n, mesh, ready[1], hold, port);
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
    status = wait_workers(n, status);
    fflush(stdout);
    _exit(status);
}
