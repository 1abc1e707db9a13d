/* SPDX-License-Identifier: MIT */
/* rp-hostile: a hostile-client load on loopback, bounded in count and time. It opens, over
 * several 127.0.0.x source addresses, half-open connections (silent, or a request line and
 * then nothing: slow loris), connections that send garbage, oversized HTTP headers, WebSocket
 * connections that send a frame a server must refuse (a 2^62-byte length, invalid UTF-8, an
 * unmasked frame, a long control frame, a fragmented message that never ends), Socket.IO
 * clients that flood events, and polling sessions it abandons after the handshake. It keeps
 * everything open until the end, then prints one JSON line: what it attempted, how the server
 * answered (HTTP status, WebSocket close code, closed without a word), how many connections
 * the server still held, and the server's RSS before and after (from /proc, --server-pid).
 *
 * Only 127.0.0.0/8 targets; everything stops after --seconds. Single-threaded epoll. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum kind {
    K_SILENT,     /* connects, sends nothing */
    K_LORIS,      /* a request line and one header, then nothing */
    K_GARBAGE,    /* random bytes */
    K_BIGHEADER,  /* 64 KiB of headers */
    K_WS_HUGE,    /* frame length 2^62 */
    K_WS_UTF8,    /* text frame with invalid UTF-8 */
    K_WS_UNMASK,  /* unmasked client frame */
    K_WS_CONTROL, /* ping with a 200-byte payload */
    K_WS_FRAGS,   /* fragments that never finish, past the message limit */
    K_FLOOD,      /* Socket.IO CONNECT then events as fast as the socket takes them */
    K_POLL,       /* polling handshake, then abandoned */
    K_COUNT
};
static const char *const kind_names[K_COUNT] = {
    "silent",           "slow_loris",  "garbage",         "big_header",           "ws_huge_frame",
    "ws_invalid_utf8",  "ws_unmasked", "ws_long_control", "ws_endless_fragments", "event_flood",
    "abandoned_polling"};

typedef struct conn {
    int fd;
    enum kind kind;
    int connected;
    int closed;   /* by the server */
    int answered; /* got any byte */
    int status;   /* HTTP status seen, 0 if none */
    int ws_close; /* close code seen, 0 if none */
    char in[512]; /* first bytes received */
    size_t inlen;
    char *out; /* what is still to send (owned) */
    size_t outlen, outoff, outcap;
    size_t sent_events;
} conn_t;

static struct {
    const char *host;
    int port;
    int server_pid;
    double seconds;
    int per_kind[K_COUNT];
    int sources;
} opt = {"127.0.0.1", 0, 0, 10, {0}, 8};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static long rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static void append(conn_t *c, const void *p, size_t n)
{
    if (c->outlen + n > c->outcap) {
        c->outcap = (c->outlen + n) * 2;
        c->out = realloc(c->out, c->outcap);
        if (c->out == NULL)
            abort();
    }
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
}

static void appendf(conn_t *c, const char *s)
{
    append(c, s, strlen(s));
}

/* A masked client frame (mask 0: the payload is unchanged). */
static void ws_frame(conn_t *c, int fin_op, const void *payload, size_t len, int masked)
{
    uint8_t h[14];
    size_t hl = 0;
    h[hl++] = (uint8_t)fin_op;
    if (len < 126) {
        h[hl++] = (uint8_t)((masked ? 0x80 : 0) | len);
    } else if (len < 65536) {
        h[hl++] = (uint8_t)((masked ? 0x80 : 0) | 126);
        h[hl++] = (uint8_t)(len >> 8);
        h[hl++] = (uint8_t)len;
    } else {
        h[hl++] = (uint8_t)((masked ? 0x80 : 0) | 127);
        for (int i = 7; i >= 0; i--)
            h[hl++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    if (masked)
        for (int i = 0; i < 4; i++)
            h[hl++] = 0;
    append(c, h, hl);
    append(c, payload, len);
}

static void script(conn_t *c, unsigned seed)
{
    static const char ws_req[] =
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    char buf[4096];
    switch (c->kind) {
    case K_SILENT:
        break;
    case K_LORIS:
        appendf(c, "GET /api/rag-status HTTP/1.1\r\nHost: x\r\nX-Slow: ");
        break;
    case K_GARBAGE:
        for (size_t i = 0; i < sizeof(buf); i++)
            buf[i] = (char)(rand_r(&seed) & 0xff);
        append(c, buf, 512 + seed % 3000);
        break;
    case K_BIGHEADER:
        appendf(c, "GET /health HTTP/1.1\r\nHost: x\r\n");
        for (int i = 0; i < 64; i++) {
            snprintf(buf, sizeof(buf), "X-H%d: %01000d\r\n", i, 0);
            appendf(c, buf);
        }
        appendf(c, "\r\n");
        break;
    case K_WS_HUGE: {
        appendf(c, ws_req);
        uint8_t h[] = {0x81, 0xff, 0x3f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
        append(c, h, sizeof(h));
        break;
    }
    case K_WS_UTF8:
        appendf(c, ws_req);
        ws_frame(c, 0x81, "4\xff\xfe\xfd", 4, 1);
        break;
    case K_WS_UNMASK:
        appendf(c, ws_req);
        ws_frame(c, 0x81, "40", 2, 0);
        break;
    case K_WS_CONTROL:
        appendf(c, ws_req);
        memset(buf, 'p', 200);
        ws_frame(c, 0x89, buf, 200, 1);
        break;
    case K_WS_FRAGS:
        appendf(c, ws_req);
        memset(buf, 'a', sizeof(buf));
        buf[0] = '4';
        ws_frame(c, 0x01, buf, sizeof(buf), 1);
        for (int i = 0; i < 300; i++) /* 1.2 MB: past the default 1 MB message limit */
            ws_frame(c, 0x00, buf, sizeof(buf), 1);
        break;
    case K_FLOOD: {
        appendf(c, ws_req);
        ws_frame(c, 0x81, "40/pipeline,", 12, 1);
        for (int i = 0; i < 20000; i++) {
            int n = snprintf(buf, sizeof(buf),
                             i % 2 ? "42/"
                                     "pipeline,[\"heartbeat\",{\"type\":\"heartbeat\",\"pipeline_"
                                     "id\":\"hostile-%u\","
                                     "\"pipeline_type\":\"t\"}]"
                                   : "42/pipeline,[\"heartbeat\",{\"pipeline_id\":%u}]",
                             seed % 7);
            ws_frame(c, 0x81, buf, (size_t)n, 1);
        }
        break;
    }
    case K_POLL:
        appendf(c, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n");
        break;
    default:
        break;
    }
}

static void on_bytes(conn_t *c, const char *p, size_t n)
{
    c->answered = 1;
    size_t room = sizeof(c->in) - c->inlen;
    size_t take = n < room ? n : room;
    memcpy(c->in + c->inlen, p, take);
    c->inlen += take;
    if (c->status == 0 && c->inlen >= 12 && memcmp(c->in, "HTTP/1.1 ", 9) == 0)
        c->status = atoi(c->in + 9);
    if (c->status == 101 && c->ws_close == 0) {
        /* The first server frame after the headers: a close frame carries the code. */
        char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
        if (end && (size_t)(end + 4 - c->in) + 4 <= c->inlen) {
            const uint8_t *f = (const uint8_t *)end + 4;
            size_t left = c->inlen - (size_t)(end + 4 - c->in);
            /* Skip Engine.IO's open packet and anything else up to a close frame. */
            while (left >= 2) {
                size_t len = f[1] & 0x7f, hl = 2;
                if (len == 126 && left >= 4) {
                    len = ((size_t)f[2] << 8) | f[3];
                    hl = 4;
                }
                if ((f[0] & 0x0f) == 0x8 && left >= hl + 2) {
                    c->ws_close = (f[hl] << 8) | f[hl + 1];
                    break;
                }
                if (left < hl + len)
                    break;
                f += hl + len;
                left -= hl + len;
            }
        }
    }
}

static int dial(int src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)(10 + src));
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    struct sockaddr_in d;
    memset(&d, 0, sizeof(d));
    d.sin_family = AF_INET;
    d.sin_port = htons((uint16_t)opt.port);
    inet_pton(AF_INET, opt.host, &d.sin_addr);
    if (connect(fd, (struct sockaddr *)&d, sizeof(d)) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void try_send(conn_t *c)
{
    while (c->outoff < c->outlen) {
        ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        c->outoff += (size_t)w;
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: rp-hostile --port P [--host 127.0.0.1] [--server-pid PID] [--seconds 10]\n"
            "                  [--sources 8] [--KIND N ...]   (KIND: ");
    for (int k = 0; k < K_COUNT; k++)
        fprintf(stderr, "%s%s", kind_names[k], k + 1 < K_COUNT ? ", " : ")\n");
}

int main(int argc, char **argv)
{
    static const int dflt[K_COUNT] = {1500, 1500, 200, 100, 100, 100, 100, 100, 50, 20, 500};
    memcpy(opt.per_kind, dflt, sizeof(dflt));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int k;
        for (k = 0; k < K_COUNT; k++)
            if (strncmp(a, "--", 2) == 0 && strcmp(a + 2, kind_names[k]) == 0)
                break;
        if (v == NULL) {
            usage();
            return 2;
        }
        i++;
        if (k < K_COUNT)
            opt.per_kind[k] = atoi(v);
        else if (strcmp(a, "--port") == 0)
            opt.port = atoi(v);
        else if (strcmp(a, "--host") == 0)
            opt.host = v;
        else if (strcmp(a, "--server-pid") == 0)
            opt.server_pid = atoi(v);
        else if (strcmp(a, "--seconds") == 0)
            opt.seconds = atof(v);
        else if (strcmp(a, "--sources") == 0)
            opt.sources = atoi(v);
        else {
            usage();
            return 2;
        }
    }
    if (opt.port <= 0 || strncmp(opt.host, "127.", 4) != 0 || opt.seconds <= 0 ||
        opt.seconds > 600 || opt.sources < 1 || opt.sources > 200) {
        fprintf(stderr,
                "rp-hostile: loopback targets only (127.0.0.0/8), 1..600 s, 1..200 sources\n");
        usage();
        return 2;
    }
    int total = 0;
    for (int k = 0; k < K_COUNT; k++)
        total += opt.per_kind[k];
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((rlim_t)total + 64 > rl.rlim_cur) {
        fprintf(stderr, "rp-hostile: %d connections need more open files than %llu\n", total,
                (unsigned long long)rl.rlim_cur);
        return 2;
    }
    long rss_before = opt.server_pid ? rss_kb(opt.server_pid) : -1;
    conn_t *conns = calloc((size_t)total, sizeof(*conns));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (conns == NULL || ep < 0)
        return 1;
    /* Interleave the kinds so every kind meets the limits, not only the first. */
    int n = 0, failed_dial = 0;
    int left[K_COUNT];
    memcpy(left, opt.per_kind, sizeof(left));
    for (int more = 1; more;) {
        more = 0;
        for (int k = 0; k < K_COUNT; k++) {
            if (left[k] == 0)
                continue;
            more = 1;
            left[k]--;
            conn_t *c = &conns[n];
            c->kind = (enum kind)k;
            c->fd = dial(n % opt.sources);
            if (c->fd < 0) {
                failed_dial++;
                c->closed = 1;
                n++;
                continue;
            }
            script(c, (unsigned)n * 2654435761u);
            struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP,
                                    .data.u32 = (uint32_t)n};
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
            n++;
        }
    }
    uint64_t end = now_ms() + (uint64_t)(opt.seconds * 1000);
    struct epoll_event evs[512];
    char rbuf[65536];
    size_t peak_open = 0;
    while (now_ms() < end) {
        int m = epoll_wait(ep, evs, 512, 100);
        for (int i = 0; i < m; i++) {
            conn_t *c = &conns[evs[i].data.u32];
            if (c->closed)
                continue;
            if (evs[i].events & EPOLLOUT) {
                c->connected = 1;
                try_send(c);
                if (c->outoff == c->outlen) {
                    struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP,
                                            .data.u32 = evs[i].data.u32};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
                }
            }
            if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                for (;;) {
                    ssize_t r = recv(c->fd, rbuf, sizeof(rbuf), 0);
                    if (r > 0) {
                        on_bytes(c, rbuf, (size_t)r);
                        continue;
                    }
                    if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                        c->closed = 1;
                        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                        close(c->fd);
                    }
                    break;
                }
            }
        }
        size_t open_now = 0;
        for (int i = 0; i < n; i++)
            open_now += conns[i].connected && !conns[i].closed;
        if (open_now > peak_open)
            peak_open = open_now;
    }
    long rss_after = opt.server_pid ? rss_kb(opt.server_pid) : -1;
    /* Report: per kind, how the server dealt with it. */
    printf("{\"seconds\":%g,\"attempted\":%d,\"failed_to_dial\":%d,\"peak_open\":%zu,\"server_rss_"
           "kb_before\":%ld,"
           "\"server_rss_kb_after\":%ld,\"kinds\":{",
           opt.seconds, n, failed_dial, peak_open, rss_before, rss_after);
    size_t total_open = 0;
    for (int k = 0; k < K_COUNT; k++) {
        int att = 0, closed = 0, silent_close = 0, open = 0;
        int statuses[6] = {0}; /* 101, 200, 400, 408, 431, other */
        int codes[6] = {0};    /* 1000, 1002, 1007, 1009, 1011, other */
        for (int i = 0; i < n; i++) {
            conn_t *c = &conns[i];
            if (c->kind != (enum kind)k)
                continue;
            att++;
            closed += c->closed;
            silent_close += c->closed && !c->answered;
            open += !c->closed;
            int s = c->status;
            statuses[s == 101   ? 0
                     : s == 200 ? 1
                     : s == 400 ? 2
                     : s == 408 ? 3
                     : s == 431 ? 4
                     : s        ? 5
                                : 5] += s != 0;
            int w = c->ws_close;
            if (w)
                codes[w == 1000   ? 0
                      : w == 1002 ? 1
                      : w == 1007 ? 2
                      : w == 1009 ? 3
                      : w == 1011 ? 4
                                  : 5]++;
        }
        total_open += (size_t)open;
        printf("%s\"%s\":{\"attempted\":%d,\"closed_by_server\":%d,\"closed_without_answer\":%d,"
               "\"still_open\":%d,"
               "\"http\":{\"101\":%d,\"200\":%d,\"400\":%d,\"408\":%d,\"431\":%d,\"other\":%d},"
               "\"ws_close\":{\"1000\":%d,\"1002\":%d,\"1007\":%d,\"1009\":%d,\"1011\":%d,"
               "\"other\":%d}}",
               k ? "," : "", kind_names[k], att, closed, silent_close, open, statuses[0],
               statuses[1], statuses[2], statuses[3], statuses[4], statuses[5], codes[0], codes[1],
               codes[2], codes[3], codes[4], codes[5]);
    }
    printf("},\"still_open\":%zu}\n", total_open);
    for (int i = 0; i < n; i++) {
        if (!conns[i].closed)
            close(conns[i].fd);
        free(conns[i].out);
    }
    free(conns);
    close(ep);
    return 0;
}
