/* SPDX-License-Identifier: MIT */
/* rp-fanout-floor: the floor under any server's fan-out latency on this machine. It opens N
 * loopback TCP connections to itself, has a child process drain them all (epoll, like a
 * subscriber), and times the parent writing one small frame to each connection, round after
 * round, with nothing else in the way: no protocol, no queues, one write(2) per socket.
 * The time per write is what one delivery costs the kernel; N times it is how long one event
 * takes to reach the last of N subscribers when each gets its own write. Loopback only;
 * bounded by --rounds. Prints one JSON line. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    int rounds = argc > 2 ? atoi(argv[2]) : 200;
    int size = argc > 3 ? atoi(argv[3]) : 90;
    if (n <= 0 || n > 9000 || rounds <= 0 || rounds > 100000 || size <= 0 || size > 65536) {
        fprintf(stderr, "usage: rp-fanout-floor [CONNS<=9000] [ROUNDS] [BYTES]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4096) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) < 0)
        return 1;
    int *srv = calloc((size_t)n, sizeof(int));
    int *cli = calloc((size_t)n, sizeof(int));
    for (int i = 0; i < n; i++) {
        cli[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(cli[i], (struct sockaddr *)&a, sizeof(a)) < 0)
            return 1;
        srv[i] = accept(lfd, NULL, NULL);
        int one = 1;
        setsockopt(srv[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int ep = epoll_create1(0);
        for (int i = 0; i < n; i++) {
            close(srv[i]);
            struct epoll_event ev = {.events = EPOLLIN, .data.fd = cli[i]};
            epoll_ctl(ep, EPOLL_CTL_ADD, cli[i], &ev);
        }
        char buf[65536];
        for (;;) {
            struct epoll_event evs[256];
            int k = epoll_wait(ep, evs, 256, -1);
            for (int j = 0; j < k; j++)
                if (read(evs[j].data.fd, buf, sizeof(buf)) <= 0)
                    _exit(0);
        }
    }
    for (int i = 0; i < n; i++)
        close(cli[i]);
    char *frame = malloc((size_t)size);
    memset(frame, 'x', (size_t)size);
    /* Warm up, then measure wall time and CPU time of the writing process. */
    for (int i = 0; i < n; i++)
        if (write(srv[i], frame, (size_t)size) < 0)
            return 1;
    usleep(100000);
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    double t0 = now_s();
    double worst_round = 0;
    for (int r = 0; r < rounds; r++) {
        double rs = now_s();
        for (int i = 0; i < n; i++)
            if (write(srv[i], frame, (size_t)size) < 0)
                return 1;
        double d = now_s() - rs;
        if (d > worst_round)
            worst_round = d;
        usleep(2000); /* let the reader catch up: we time the writer, not a backlog */
    }
    double wall = now_s() - t0 - rounds * 0.002;
    getrusage(RUSAGE_SELF, &r1);
    double cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) +
                 (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e6 +
                 (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
                 (double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
    double writes = (double)n * rounds;
    printf("{\"conns\":%d,\"rounds\":%d,\"bytes\":%d,\"us_per_write_wall\":%.2f,"
           "\"us_per_write_cpu\":%.2f,\"ms_per_round_mean\":%.3f,\"ms_per_round_worst\":%.3f}\n",
           n, rounds, size, wall / writes * 1e6, cpu / writes * 1e6, wall / rounds * 1e3,
           worst_round * 1e3);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 0;
}
