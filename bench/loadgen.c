/* SPDX-License-Identifier: MIT */
/* rp-loadgen: the fan-out load generator for bench/. It opens N Socket.IO subscribers over
 * raw WebSocket (or HTTP long-polling) connections, spread over worker processes and over
 * source addresses 127.0.0.1..127.0.0.K (28k ports each), joins them to one room through the
 * relay contract (`subscribe` {"room"}), then one producer `publish`es events carrying a
 * sequence number and a CLOCK_MONOTONIC timestamp, at a fixed rate or as fast as a window of
 * in-flight events allows. Every subscriber checks what it gets: loss, duplicates, order,
 * latency (log-linear histogram, merged across processes). It samples the server's CPU and
 * RSS from /proc and reports its own CPU beside them, so a reader can tell who limited a
 * figure. It speaks only to loopback addresses and stops by itself.
 *
 * Output: one JSON object on stdout. Written for speed on the receive side: frames are parsed
 * in place, nothing is allocated per message. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- options ---- */

static struct {
    const char *host;
    int port;
    int subscribers;
    int procs;
    double rate; /* events/s; 0 = max (windowed) */
    int window;
    double duration;
    int payload;
    int sources;
    int polling;
    double idle; /* seconds to hold idle connections (no producer) */
    char server_pids[256];
    const char *nsp_room;
    double drain;
    int hub;   /* target is `ragpulse serve`: /pipeline, subscribe {pipeline_id}, file:progress */
    int http;  /* hub mode: the producer POSTs to /api/events instead of emitting */
    int batch; /* events per POST */
} opt = {"127.0.0.1", 8104, 100, 0, 0, 64, 5, 64, 1, 0, 0, "", "bench", 3, 0, 0, 1};

/* The wire strings of the two targets (relay on "/", hub on "/pipeline"). */
static char pkt_connect[32], pfx_connected[32], pkt_subscribe[160], pfx_sub_ack[32], pfx_event[32];

static void init_wire(void)
{
    const char *nsp = opt.hub ? "/pipeline," : "";
    snprintf(pkt_connect, sizeof(pkt_connect), "40%s", nsp);
    snprintf(pfx_connected, sizeof(pfx_connected), "40%s", nsp);
    if (opt.hub)
        snprintf(pkt_subscribe, sizeof(pkt_subscribe),
                 "42%s1[\"subscribe\",{\"pipeline_id\":\"%s\"}]", nsp, opt.nsp_room);
    else
        snprintf(pkt_subscribe, sizeof(pkt_subscribe), "421[\"subscribe\",{\"room\":\"%s\"}]",
                 opt.nsp_room);
    snprintf(pfx_sub_ack, sizeof(pfx_sub_ack), "43%s1", nsp);
    snprintf(pfx_event, sizeof(pfx_event), "42%s", nsp);
}

static int has_prefix(const char *p, size_t n, const char *pfx)
{
    size_t l = strlen(pfx);
    return n >= l && memcmp(p, pfx, l) == 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *msg)
{
    fprintf(stderr, "rp-loadgen: %s: %s\n", msg, strerror(errno));
    exit(1);
}

/* ---- latency histogram: 2^k buckets of microseconds, each split in 16 ---- */

#define HBUCKETS (40 * 16)
typedef struct {
    uint64_t count[HBUCKETS];
} hist_t;

static int hist_index(uint64_t us)
{
    if (us < 16)
        return (int)us;
    int k = 63 - __builtin_clzll(us); /* us in [2^k, 2^(k+1)) */
    int sub = (int)((us >> (k - 4)) & 15);
    int idx = (k - 3) * 16 + sub;
    return idx < HBUCKETS ? idx : HBUCKETS - 1;
}

static double hist_value(int idx)
{
    if (idx < 16)
        return idx;
    int k = idx / 16 + 3;
    int sub = idx % 16;
    return (double)(((uint64_t)16 + (uint64_t)sub) << (k - 4));
}

static double hist_quantile(const hist_t *h, double q)
{
    uint64_t total = 0;
    for (int i = 0; i < HBUCKETS; i++)
        total += h->count[i];
    if (total == 0)
        return 0;
    uint64_t want = (uint64_t)ceil(q * (double)total);
    uint64_t acc = 0;
    for (int i = 0; i < HBUCKETS; i++) {
        acc += h->count[i];
        if (acc >= want)
            return hist_value(i) / 1000.0; /* ms */
    }
    return hist_value(HBUCKETS - 1) / 1000.0;
}

/* ---- per-process results, sent to the parent over a pipe ---- */

typedef struct {
    uint64_t connected;
    uint64_t failed;
    uint64_t fail_connect; /* connect() or its asynchronous result failed */
    uint64_t fail_closed;  /* the server closed or reset before the subscriber was ready */
    uint64_t fail_dropped; /* closed after it was ready */
    int last_errno;
    uint64_t received; /* unique events received, over all subscribers */
    uint64_t dups;
    uint64_t reorders;
    uint64_t max_seq_seen;
    uint64_t reads;
    double cpu_s;
    hist_t hist;
} stats_t;

/* ---- connections ---- */

enum {
    C_CONNECTING,
    C_HANDSHAKE,
    C_OPEN_WAIT,
    C_CONNECT_WAIT,
    C_SUB_WAIT,
    C_READY
};

typedef struct conn {
    int fd;
    int port; /* the server port it talks to */
    int state;
    int is_producer;
    int polling; /* this subscriber uses HTTP long-polling */
    uint32_t last_seq;
    uint8_t *seen; /* bitmap of seqs, grows */
    size_t seen_bytes;
    char *buf;
    size_t len, cap;
    /* polling */
    int post_fd;
    char sid[32];
    int sent_connect;
    int sent_subscribe;
    int need_pong;
    char post_buf[512];
    size_t post_len;
} conn_t;

static int epfd;
static stats_t st;
static int ready_count;

/* epoll tags: a conn's main socket, or its POST side connection (polling). */
#define TAG_POST ((uint64_t)1 << 63)

static void set_nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Where subscribers connect (--sub-ports: several nodes of one cluster, round-robin); the
 * producer always uses --port. */
static int sub_ports[16];
static int nsub_ports;

static int connect_from(int source_idx, int nonblock, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0) | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int small = 16384;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in src = {0};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)source_idx);
    /* Let connect() pick the port per destination, so 127.0.0.x:port pairs are not used up
     * by bind() (nor blocked by TIME_WAIT sockets of an earlier run). */
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (opt.sources > 1 && bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
        close(fd);
        return -1;
    }
    struct sockaddr_in dst = {0};
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, opt.host, &dst.sin_addr);
    if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Writes all of buf (blocking briefly if the socket is full: only during setup/production). */
static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                struct timespec ts = {0, 50000};
                nanosleep(&ts, NULL);
                continue;
            }
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Sends a masked text frame (mask 0: legal, and keeps the payload readable). */
static int ws_send(int fd, const char *text, size_t len)
{
    char hdr[14];
    size_t h;
    hdr[0] = (char)0x81;
    if (len < 126) {
        hdr[1] = (char)(0x80 | len);
        h = 2;
    } else if (len < 65536) {
        hdr[1] = (char)(0x80 | 126);
        hdr[2] = (char)(len >> 8);
        hdr[3] = (char)len;
        h = 4;
    } else {
        hdr[1] = (char)(0x80 | 127);
        for (int i = 0; i < 8; i++)
            hdr[2 + i] = (char)((uint64_t)len >> (56 - 8 * i));
        h = 10;
    }
    memset(hdr + h, 0, 4);
    h += 4;
    char stackbuf[2048];
    if (h + len <= sizeof(stackbuf)) {
        memcpy(stackbuf, hdr, h);
        memcpy(stackbuf + h, text, len);
        return write_all(fd, stackbuf, h + len);
    }
    if (write_all(fd, hdr, h) < 0)
        return -1;
    return write_all(fd, text, len);
}

static void ws_handshake(conn_t *c)
{
    char req[512];
    int n =
        snprintf(req, sizeof(req),
                 "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s:%d\r\n"
                 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                 opt.host, opt.port);
    write_all(c->fd, req, (size_t)n);
    c->state = C_HANDSHAKE;
}

static void mark_seen(conn_t *c, uint32_t seq)
{
    size_t byte = seq >> 3;
    if (byte >= c->seen_bytes) {
        size_t nb = c->seen_bytes ? c->seen_bytes : 4096;
        while (nb <= byte)
            nb *= 2;
        c->seen = realloc(c->seen, nb);
        memset(c->seen + c->seen_bytes, 0, nb - c->seen_bytes);
        c->seen_bytes = nb;
    }
    uint8_t bit = (uint8_t)(1u << (seq & 7));
    if (c->seen[byte] & bit) {
        st.dups++;
        return;
    }
    c->seen[byte] |= bit;
    st.received++;
    if (seq < c->last_seq)
        st.reorders++;
    else
        c->last_seq = seq;
    if (seq > st.max_seq_seen)
        st.max_seq_seen = seq;
}

static uint64_t parse_u64(const char *p, const char *end)
{
    uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9')
        v = v * 10 + (uint64_t)(*p++ - '0');
    return v;
}

static conn_t *conns;
static int nconns;
static conn_t *conns_base(void)
{
    return conns;
}

/* Window pacing in the parent: the producer's own subscriber's newest seq. */
static uint32_t pacer_seq;
static conn_t *pacer;

/* Handles one text message (an Engine.IO packet). */
static void on_text(conn_t *c, const char *p, size_t n, uint64_t t_recv)
{
    if (n == 1 && p[0] == '2') {
        if (c->polling)
            c->need_pong = 1; /* goes out as a POST after this response */
        else
            ws_send(c->fd, "3", 1);
        return;
    }
    if (c->state == C_OPEN_WAIT && n > 0 && p[0] == '0') {
        if (c->polling) {
            const char *s = strstr(p, "\"sid\":\"");
            if (s) {
                s += 7;
                size_t l = 0;
                while (s[l] && s[l] != '"' && l < sizeof(c->sid) - 1)
                    l++;
                memcpy(c->sid, s, l);
                c->sid[l] = '\0';
            }
        }
        c->state = C_CONNECT_WAIT;
        if (!c->polling)
            ws_send(c->fd, pkt_connect, strlen(pkt_connect));
        return;
    }
    if (c->is_producer && c->state == C_CONNECT_WAIT && has_prefix(p, n, pfx_connected)) {
        c->state = C_READY;
        return;
    }
    if (c->state == C_CONNECT_WAIT && has_prefix(p, n, pfx_connected)) {
        c->state = C_SUB_WAIT;
        if (!c->polling)
            ws_send(c->fd, pkt_subscribe, strlen(pkt_subscribe));
        return;
    }
    if (c->state == C_SUB_WAIT && has_prefix(p, n, pfx_sub_ack)) {
        c->state = C_READY;
        ready_count++;
        return;
    }
    if (n > strlen(pfx_event) && has_prefix(p, n, pfx_event)) {
        const char *end = p + n;
        const char *s = memmem(p, n, "\"seq\":", 6);
        const char *t = memmem(p, n, "\"t0\":", 5);
        if (s == NULL || t == NULL)
            return;
        uint32_t seq = (uint32_t)parse_u64(s + 6, end);
        uint64_t ts = parse_u64(t + 5, end);
        if (c == pacer) {
            if (seq > pacer_seq)
                pacer_seq = seq;
            return;
        }
        mark_seen(c, seq);
        uint64_t us = t_recv > ts ? (t_recv - ts) / 1000 : 0;
        st.hist.count[hist_index(us)]++;
    }
}

/* Parses WebSocket frames from c->buf; returns -1 on protocol trouble. */
static int ws_parse(conn_t *c, uint64_t t_recv)
{
    size_t off = 0;
    while (c->len - off >= 2) {
        unsigned char *b = (unsigned char *)c->buf + off;
        uint64_t len = b[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (c->len - off < 4)
                break;
            len = (uint64_t)b[2] << 8 | b[3];
            h = 4;
        } else if (len == 127) {
            if (c->len - off < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | b[2 + i];
            h = 10;
        }
        if (c->len - off - h < len)
            break;
        unsigned op = b[0] & 0x0f;
        if (op == 1)
            on_text(c, (char *)b + h, (size_t)len, t_recv);
        else if (op == 8)
            return -1;
        off += h + (size_t)len;
    }
    if (off) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
    return 0;
}

/* ---- polling transport ----
 * Each polling subscriber holds two keep-alive connections: one for its long-poll GETs, one
 * for its POSTs (setup steps and pongs), whose "ok" answers are read and dropped. */

static void poll_get(conn_t *c)
{
    char req[256];
    int n = snprintf(req, sizeof(req),
                     "GET /socket.io/?EIO=4&transport=polling%s%s HTTP/1.1\r\nHost: x\r\n\r\n",
                     c->sid[0] ? "&sid=" : "", c->sid);
    write_all(c->fd, req, (size_t)n);
}

static void poll_post(conn_t *c, const char *body, size_t len)
{
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\n"
                     "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %zu\r\n\r\n%.*s",
                     c->sid, len, (int)len, body);
    if (c->post_fd < 0) {
        c->post_fd = connect_from((int)(c - conns_base()) % opt.sources, 0, c->port);
        if (c->post_fd < 0) {
            st.failed++;
            return;
        }
        set_nonblock(c->post_fd);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)(uintptr_t)c | TAG_POST};
        epoll_ctl(epfd, EPOLL_CTL_ADD, c->post_fd, &ev);
    }
    write_all(c->post_fd, req, (size_t)n);
}

/* Reads and drops the POST side's responses. */
static void poll_post_readable(conn_t *c)
{
    char buf[4096];
    for (;;) {
        ssize_t r = read(c->post_fd, buf, sizeof(buf));
        if (r > 0)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->post_fd, NULL);
        close(c->post_fd);
        c->post_fd = -1;
        return;
    }
}

/* Parses HTTP responses to GETs from c->buf; each body is a polling payload. */
static int poll_parse(conn_t *c, uint64_t t_recv)
{
    for (;;) {
        char *hend = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (hend == NULL)
            return 0;
        char *cl = memmem(c->buf, (size_t)(hend - c->buf), "Content-Length: ", 16);
        if (cl == NULL)
            return -1;
        size_t blen = (size_t)parse_u64(cl + 16, hend);
        size_t total = (size_t)(hend + 4 - c->buf) + blen;
        if (c->len < total)
            return 0;
        if (strncmp(c->buf, "HTTP/1.1 200", 12) != 0)
            return -1;
        char *p = hend + 4, *end = hend + 4 + blen;
        while (p < end) {
            char *sep = memchr(p, '\x1e', (size_t)(end - p));
            char *e = sep ? sep : end;
            on_text(c, p, (size_t)(e - p), t_recv);
            p = e + 1;
        }
        memmove(c->buf, c->buf + total, c->len - total);
        c->len -= total;
        if (c->state == C_CONNECT_WAIT && !c->sent_connect) {
            c->sent_connect = 1;
            poll_post(c, pkt_connect, strlen(pkt_connect));
        }
        if (c->state == C_SUB_WAIT && !c->sent_subscribe) {
            c->sent_subscribe = 1;
            poll_post(c, pkt_subscribe, strlen(pkt_subscribe));
        }
        if (c->need_pong) {
            c->need_pong = 0;
            poll_post(c, "3", 1);
        }
        poll_get(c);
    }
}

/* ---- the event loop of one process ---- */

static int read_conn(conn_t *c, uint64_t t_recv)
{
    for (;;) {
        if (c->cap - c->len < 4096) {
            c->cap = c->cap ? c->cap * 2 : 16384;
            c->buf = realloc(c->buf, c->cap);
        }
        ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
        if (r < 0) {
            if (errno == EAGAIN)
                return 0;
            return -1;
        }
        if (r == 0)
            return -1;
        st.reads++;
        c->len += (size_t)r;
        c->buf[c->len] = '\0';
        if (c->state == C_HANDSHAKE) {
            char *e = memmem(c->buf, c->len, "\r\n\r\n", 4);
            if (e == NULL)
                continue;
            if (strncmp(c->buf, "HTTP/1.1 101", 12) != 0)
                return -1;
            size_t hl = (size_t)(e + 4 - c->buf);
            memmove(c->buf, c->buf + hl, c->len - hl);
            c->len -= hl;
            c->state = C_OPEN_WAIT;
        }
        int rc = c->polling ? poll_parse(c, t_recv) : ws_parse(c, t_recv);
        if (rc < 0)
            return -1;
        if ((size_t)r < c->cap - c->len - 1)
            return 0;
    }
}

static void open_conns(int first, int count)
{
    conns = calloc((size_t)count, sizeof(conn_t));
    nconns = count;
    for (int i = 0; i < count; i++) {
        conn_t *c = &conns[i];
        c->post_fd = -1;
        c->polling = opt.polling;
        int src = opt.sources > 1 ? (first + i) % opt.sources : 0;
        c->port = nsub_ports ? sub_ports[(first + i) % nsub_ports] : opt.port;
        c->fd = connect_from(src, 1, c->port);
        if (c->fd < 0) {
            st.failed++;
            st.fail_connect++;
            st.last_errno = errno;
            continue;
        }
        c->state = C_CONNECTING;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    }
}

/* One turn of epoll; returns events handled. */
static int loop_once(int timeout_ms)
{
    struct epoll_event evs[512];
    int n = epoll_wait(epfd, evs, 512, timeout_ms);
    uint64_t t = now_ns();
    for (int i = 0; i < n; i++) {
        if (evs[i].data.u64 & TAG_POST) {
            poll_post_readable((conn_t *)(uintptr_t)(evs[i].data.u64 & ~TAG_POST));
            continue;
        }
        conn_t *c = evs[i].data.ptr;
        if (c->fd < 0)
            continue;
        if (c->state == C_CONNECTING && (evs[i].events & EPOLLOUT)) {
            int err = 0;
            socklen_t el = sizeof(err);
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
            epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
            if (err) {
                st.failed++;
                st.fail_connect++;
                st.last_errno = err;
                close(c->fd);
                c->fd = -1;
                continue;
            }
            st.connected++;
            if (c->polling) {
                c->state = C_OPEN_WAIT;
                poll_get(c);
            } else {
                ws_handshake(c);
            }
            continue;
        }
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            if (read_conn(c, t) < 0) {
                epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
                if (c->state == C_READY) {
                    ready_count--;
                    st.fail_dropped++;
                } else {
                    st.fail_closed++;
                }
                st.failed++;
            }
        }
    }
    return n;
}

static double cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Shared with the parent (MAP_SHARED before fork): per child, the newest seq that every one of
 * its ready subscribers has reached. The parent paces max-rate runs on the slowest child, so
 * "max rate" is the rate at which every subscriber keeps up, not just the fastest one. */
static volatile uint64_t *progress;
static int my_slot;

static void publish_progress(void)
{
    uint64_t min = UINT64_MAX;
    for (int i = 0; i < nconns; i++)
        if (conns[i].fd >= 0 && conns[i].state == C_READY && conns[i].last_seq < min)
            min = conns[i].last_seq;
    progress[my_slot] = min == UINT64_MAX ? 0 : min;
}

/* Child: open subscribers, report readiness, run until told to stop, send stats. */
static void child_main(int first, int count, int ready_fd, int stop_fd, int stats_fd)
{
    epfd = epoll_create1(EPOLL_CLOEXEC);
    open_conns(first, count);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    (void)ev;
    int reported = 0;
    double cpu_at_ready = 0;
    uint64_t deadline = now_ns() + 60ULL * 1000000000ULL;
    set_nonblock(stop_fd);
    for (;;) {
        loop_once(5);
        if (reported)
            publish_progress();
        if (!reported && (ready_count + (int)st.failed >= count || now_ns() > deadline)) {
            int r = ready_count;
            if (write(ready_fd, &r, sizeof(r)) < 0)
                die("write");
            reported = 1;
            cpu_at_ready = cpu_self();
            memset(&st.hist, 0, sizeof(st.hist));
        }
        char b;
        if (read(stop_fd, &b, 1) == 1)
            break;
    }
    st.cpu_s = cpu_self() - cpu_at_ready;
    if (write(stats_fd, &st, sizeof(st)) != (ssize_t)sizeof(st))
        die("write stats");
    _exit(0);
}

/* ---- server metrics from /proc ---- */

typedef struct {
    double cpu_s;
    long rss_kb;
} proc_sample_t;

/* The pids to sample: those given, plus their children (the workers of a supervisor). */
static void expand_pids(char *out, size_t cap)
{
    char pids[256];
    snprintf(pids, sizeof(pids), "%s", opt.server_pids);
    size_t n = 0;
    out[0] = '\0';
    for (char *save = NULL, *tok = strtok_r(pids, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "", tok);
        char path[96], kids[1024];
        snprintf(path, sizeof(path), "/proc/%s/task/%s/children", tok, tok);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t r = fread(kids, 1, sizeof(kids) - 1, f);
        fclose(f);
        kids[r] = '\0';
        for (char *s2 = NULL, *k = strtok_r(kids, " \n", &s2); k && n < cap - 16;
             k = strtok_r(NULL, " \n", &s2))
            n += (size_t)snprintf(out + n, cap - n, ",%s", k);
    }
}

static proc_sample_t sample_servers(void)
{
    proc_sample_t s = {0, 0};
    char pids[2048];
    expand_pids(pids, sizeof(pids));
    long tick = sysconf(_SC_CLK_TCK);
    for (char *save = NULL, *tok = strtok_r(pids, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char path[64], buf[2048];
        snprintf(path, sizeof(path), "/proc/%s/stat", tok);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fgets(buf, sizeof(buf), f)) {
                char *p = strrchr(buf, ')');
                unsigned long ut = 0, stt = 0;
                if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                                &stt) == 2)
                    s.cpu_s += (double)(ut + stt) / (double)tick;
            }
            fclose(f);
        }
        snprintf(path, sizeof(path), "/proc/%s/status", tok);
        f = fopen(path, "r");
        if (f) {
            while (fgets(buf, sizeof(buf), f))
                if (strncmp(buf, "VmRSS:", 6) == 0)
                    s.rss_kb += atol(buf + 6);
            fclose(f);
        }
    }
    return s;
}

/* ---- the producer (parent) ---- */

static int producer_fd;
static uint64_t http_refused;

/* Counts the complete HTTP responses waiting on the producer's POST connection. */
static uint64_t http_read_responses(conn_t *c)
{
    uint64_t done = 0;
    for (;;) {
        if (c->cap - c->len < 65536) {
            c->cap = c->cap ? c->cap * 2 : 131072;
            c->buf = realloc(c->buf, c->cap);
        }
        ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
        if (r <= 0)
            break;
        c->len += (size_t)r;
    }
    size_t off = 0;
    for (;;) {
        char *h = memmem(c->buf + off, c->len - off, "\r\n\r\n", 4);
        if (h == NULL)
            break;
        char *cl = memmem(c->buf + off, (size_t)(h - (c->buf + off)), "Content-Length: ", 16);
        size_t blen = cl ? (size_t)parse_u64(cl + 16, h) : 0;
        size_t total = (size_t)(h + 4 - (c->buf + off)) + blen;
        if (c->len - off < total)
            break;
        if (strncmp(c->buf + off, "HTTP/1.1 200", 12) != 0)
            http_refused++;
        done++;
        off += total;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    return done;
}

/* The newest seq every subscriber has reached (children's progress and the pacer's). */
static uint64_t slowest(const pid_t *kids, uint64_t pacer_at)
{
    uint64_t min = pacer_at;
    for (int k = 0; k < opt.procs; k++)
        if (kids[k] && progress[k] < min)
            min = progress[k];
    return min;
}

static int producer_open(conn_t *c)
{
    c->post_fd = -1;
    c->port = opt.port;
    c->fd = connect_from(0, 1, opt.port);
    if (c->fd < 0)
        return -1;
    int fl = fcntl(c->fd, F_GETFL);
    fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
    /* Wait for the connection, then handshake synchronously. */
    fd_set w;
    FD_ZERO(&w);
    FD_SET(c->fd, &w);
    struct timeval tv = {5, 0};
    if (select(c->fd + 1, NULL, &w, NULL, &tv) != 1)
        return -1;
    set_nonblock(c->fd);
    ws_handshake(c);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

static void usage(void)
{
    fprintf(
        stderr,
        "usage: rp-loadgen [--host 127.0.0.1] --port P [--subscribers N] [--procs K]\n"
        "                  [--rate EV_PER_S | --rate 0 --window W] [--duration S] [--payload B]\n"
        "                  [--sources K] [--polling] [--idle S] [--server-pids P1,P2] [--drain S]\n"
        "                  [--hub [--http [--batch N]]]   (target: ragpulse serve, see "
        "bench/README)\n"
        "                  [--sub-ports P2,P3]   (subscribers on these ports, round-robin: cluster "
        "nodes)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && ++i)
        if (ARG("--host"))
            opt.host = v;
        else if (ARG("--port"))
            opt.port = atoi(v);
        else if (ARG("--subscribers"))
            opt.subscribers = atoi(v);
        else if (ARG("--procs"))
            opt.procs = atoi(v);
        else if (ARG("--rate"))
            opt.rate = atof(v);
        else if (ARG("--window"))
            opt.window = atoi(v);
        else if (ARG("--duration"))
            opt.duration = atof(v);
        else if (ARG("--payload"))
            opt.payload = atoi(v);
        else if (ARG("--sources"))
            opt.sources = atoi(v);
        else if (ARG("--idle"))
            opt.idle = atof(v);
        else if (ARG("--server-pids"))
            snprintf(opt.server_pids, sizeof(opt.server_pids), "%s", v);
        else if (ARG("--drain"))
            opt.drain = atof(v);
        else if (ARG("--batch"))
            opt.batch = atoi(v);
        else if (ARG("--sub-ports"))
            for (char *save = NULL, *t = strtok_r((char *)v, ",", &save); t && nsub_ports < 16;
                 t = strtok_r(NULL, ",", &save))
                sub_ports[nsub_ports++] = atoi(t);
        else if (strcmp(a, "--polling") == 0)
            opt.polling = 1;
        else if (strcmp(a, "--hub") == 0)
            opt.hub = 1;
        else if (strcmp(a, "--http") == 0)
            opt.hub = opt.http = 1;
        else
            usage();
#undef ARG
    }
    struct in_addr host;
    if (inet_pton(AF_INET, opt.host, &host) != 1 || (ntohl(host.s_addr) >> 24) != 127) {
        fprintf(stderr, "rp-loadgen: only loopback targets (127.0.0.0/8)\n");
        return 2;
    }
    if (opt.duration > 600 || opt.idle > 600 || opt.subscribers > 100000) {
        fprintf(stderr, "rp-loadgen: bounded runs only (600 s, 100000 subscribers)\n");
        return 2;
    }
    if (opt.procs <= 0)
        opt.procs = opt.subscribers <= 2000 ? 1 : (opt.subscribers + 9999) / 10000;
    if (opt.sources <= 0)
        opt.sources = 1;
    if (opt.subscribers > 25000 && opt.sources < (opt.subscribers + 24999) / 25000 + 1)
        opt.sources = (opt.subscribers + 24999) / 25000 + 1;
    signal(SIGPIPE, SIG_IGN);
    if (opt.batch < 1 || opt.batch > 1000)
        opt.batch = 1;
    init_wire();

    proc_sample_t s_before = sample_servers();
    int ready_pipe[2], stats_pipe[2];
    if (pipe(ready_pipe) < 0 || pipe(stats_pipe) < 0)
        die("pipe");
    int *stop_pipes = calloc((size_t)opt.procs, sizeof(int));
    progress = mmap(NULL, (size_t)opt.procs * sizeof(uint64_t), PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (progress == MAP_FAILED)
        die("mmap");
    pid_t *kids = calloc((size_t)opt.procs, sizeof(pid_t));
    int per = (opt.subscribers + opt.procs - 1) / opt.procs;
    for (int k = 0; k < opt.procs; k++) {
        int first = k * per;
        int count = first + per > opt.subscribers ? opt.subscribers - first : per;
        if (count <= 0) {
            kids[k] = 0;
            continue;
        }
        int sp[2];
        if (pipe(sp) < 0)
            die("pipe");
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            my_slot = k;
            prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the run */
            close(sp[1]);
            child_main(first, count, ready_pipe[1], sp[0], stats_pipe[1]);
        }
        close(sp[0]);
        stop_pipes[k] = sp[1];
        kids[k] = pid;
    }
    int ready = 0;
    for (int k = 0; k < opt.procs; k++) {
        if (kids[k] == 0)
            continue;
        int r;
        if (read(ready_pipe[0], &r, sizeof(r)) != sizeof(r))
            die("read ready");
        ready += r;
    }
    uint64_t t_ready = now_ns();
    proc_sample_t s_ready = sample_servers();

    epfd = epoll_create1(EPOLL_CLOEXEC);
    uint64_t sent = 0;
    double elapsed = 0;
    conn_t prod = {0}, pace = {0};
    double lg_cpu_parent0 = cpu_self();
    uint64_t t0 = 0, t_end_send = 0;
    if (opt.idle > 0) {
        /* Idle connections: hold, sample, no traffic beyond heartbeats. */
        struct timespec ts = {(time_t)opt.idle,
                              (long)((opt.idle - (double)(time_t)opt.idle) * 1e9)};
        nanosleep(&ts, NULL);
    } else {
        prod.is_producer = 1;
        if (producer_open(&prod) < 0 || producer_open(&pace) < 0)
            die("producer connect");
        pacer = &pace;
        producer_fd = prod.fd;
        uint64_t setup_deadline = now_ns() + 10ULL * 1000000000ULL;
        while ((prod.state != C_READY || pace.state != C_READY) && now_ns() < setup_deadline)
            loop_once(5);
        if (prod.state != C_READY || pace.state != C_READY) {
            fprintf(stderr, "rp-loadgen: producer could not connect and subscribe\n");
            return 1;
        }
        char *pad = malloc((size_t)opt.payload + 1);
        memset(pad, 'x', (size_t)opt.payload);
        pad[opt.payload] = '\0';
        size_t msg_cap = (size_t)opt.payload + 512;
        char *msg = malloc(msg_cap);
        size_t body_cap = ((size_t)opt.payload + 512) * (size_t)opt.batch + 16;
        char *body = malloc(body_cap);
        conn_t http_prod = {0};
        uint64_t http_acked = 0;
        if (opt.http) {
            http_prod.fd = connect_from(0, 0, opt.port);
            if (http_prod.fd < 0)
                die("producer connect");
            set_nonblock(http_prod.fd);
        }
        t0 = now_ns();
        uint64_t dur = (uint64_t)(opt.duration * 1e9);
        while (now_ns() - t0 < dur) {
            uint64_t t = now_ns();
            uint64_t due;
            if (opt.rate > 0)
                due = (uint64_t)((double)(t - t0) / 1e9 * opt.rate) + 1;
            else
                due = slowest(kids, pacer_seq) + (uint64_t)opt.window;
            if (opt.http && sent - http_acked >= (uint64_t)opt.window * (uint64_t)opt.batch)
                due = sent; /* window of unanswered POSTs is full */
            int burst = 0;
            while (sent < due && burst < 256) {
                int n = 0;
                if (opt.http) {
                    /* One POST of opt.batch events, keep-alive, pipelined. */
                    size_t bl = 0;
                    body[bl++] = opt.batch > 1 ? '[' : ' ';
                    for (int k = 0; k < opt.batch; k++) {
                        sent++;
                        bl += (size_t)snprintf(
                            body + bl, body_cap - bl,
                            "%s{\"type\":\"file:progress\",\"pipeline_id\":\"%s\",\"pipeline_"
                            "type\":\"local_files\","
                            "\"file\":{\"id\":\"f\",\"name\":\"f\",\"progress\":0.5},"
                            "\"meta\":{\"seq\":%" PRIu64 ",\"t0\":%" PRIu64 ",\"pad\":\"%s\"}}",
                            k ? "," : "", opt.nsp_room, sent, now_ns(), pad);
                    }
                    body[bl++] = opt.batch > 1 ? ']' : ' ';
                    n = snprintf(
                        msg, msg_cap,
                        "POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\n\r\n",
                        bl);
                    write_all(http_prod.fd, msg, (size_t)n);
                    write_all(http_prod.fd, body, bl);
                    burst += opt.batch;
                    continue;
                }
                sent++;
                if (opt.hub)
                    n = snprintf(msg, msg_cap,
                                 "42/"
                                 "pipeline,[\"file:progress\",{\"pipeline_id\":\"%s\",\"pipeline_"
                                 "type\":\"local_files\","
                                 "\"file\":{\"id\":\"f\",\"name\":\"f\",\"progress\":0.5},"
                                 "\"meta\":{\"seq\":%" PRIu64 ",\"t0\":%" PRIu64
                                 ",\"pad\":\"%s\"}}]",
                                 opt.nsp_room, sent, now_ns(), pad);
                else
                    n = snprintf(msg, msg_cap,
                                 "42[\"publish\",{\"room\":\"%s\",\"seq\":%" PRIu64
                                 ",\"t0\":%" PRIu64 ",\"pad\":\"%s\"}]",
                                 opt.nsp_room, sent, now_ns(), pad);
                ws_send(producer_fd, msg, (size_t)n);
                burst++;
            }
            if (opt.http)
                http_acked += http_read_responses(&http_prod) * (uint64_t)opt.batch;
            /* Nothing more may go out yet: wait for the pacer's news (or the next due time)
             * instead of spinning, which would take a core from the server on 2 cores. */
            loop_once(burst ? 0 : 1);
        }
        t_end_send = now_ns();
        elapsed = (double)(t_end_send - t0) / 1e9;
        /* Drain: let subscribers catch up. */
        uint64_t drain_end = now_ns() + (uint64_t)(opt.drain * 1e9);
        while (now_ns() < drain_end && slowest(kids, pacer_seq) < sent)
            loop_once(5);
        struct timespec ts = {0, 300000000};
        nanosleep(&ts, NULL);
        if (opt.http) {
            http_acked += http_read_responses(&http_prod) * (uint64_t)opt.batch;
            if (http_refused)
                fprintf(stderr, "rp-loadgen: the hub refused %llu POSTs\n",
                        (unsigned long long)http_refused);
            close(http_prod.fd);
        }
        free(pad);
        free(msg);
        free(body);
    }
    proc_sample_t s_after = sample_servers();
    double lg_cpu_parent = cpu_self() - lg_cpu_parent0;

    stats_t total = {0};
    for (int k = 0; k < opt.procs; k++) {
        if (kids[k] == 0)
            continue;
        if (write(stop_pipes[k], "x", 1) != 1)
            die("stop");
    }
    double kids_cpu = 0;
    for (int k = 0; k < opt.procs; k++) {
        if (kids[k] == 0)
            continue;
        stats_t s;
        size_t got = 0;
        while (got < sizeof(s)) {
            ssize_t r = read(stats_pipe[0], (char *)&s + got, sizeof(s) - got);
            if (r <= 0)
                die("read stats");
            got += (size_t)r;
        }
        total.connected += s.connected;
        total.failed += s.failed;
        total.fail_connect += s.fail_connect;
        total.fail_closed += s.fail_closed;
        total.fail_dropped += s.fail_dropped;
        if (s.last_errno)
            total.last_errno = s.last_errno;
        total.received += s.received;
        total.dups += s.dups;
        total.reorders += s.reorders;
        total.reads += s.reads;
        kids_cpu += s.cpu_s;
        for (int i = 0; i < HBUCKETS; i++)
            total.hist.count[i] += s.hist.count[i];
    }
    for (int k = 0; k < opt.procs; k++)
        if (kids[k])
            waitpid(kids[k], NULL, 0);

    if (total.failed)
        fprintf(stderr,
                "rp-loadgen: %" PRIu64 " failed: %" PRIu64 " at connect (last: %s), %" PRIu64
                " closed during setup, %" PRIu64 " dropped after subscribing\n",
                total.failed, total.fail_connect, strerror(total.last_errno), total.fail_closed,
                total.fail_dropped);
    double wall = opt.idle > 0 ? opt.idle : (double)(now_ns() - t0) / 1e9;
    (void)t_ready;
    uint64_t expected = sent * (uint64_t)ready;
    double server_cpu = s_after.cpu_s - s_ready.cpu_s;
    long conns_total = ready;
    printf(
        "{\"target\":\"%s\",\"transport\":\"%s\",\"subscribers\":%d,\"ready\":%d,\"failed\":"
        "%" PRIu64 ",\"rate\":%g,\"window\":%d,\"payload\":%d,\"duration_s\":%.3f,\"sent\":%" PRIu64
        ",\"expected\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"delivered_per_s\":%.0f"
        ",\"lost\":%" PRIu64 ",\"loss_pct\":%.4f,\"dups\":%" PRIu64 ",\"reorders\":%" PRIu64
        ",\"lat_p50_ms\":%.3f,\"lat_p99_ms\":%.3f,\"lat_p999_ms\":%.3f,\"lat_max_ms\":%.3f"
        ",\"server_cpu_pct\":%.1f,\"server_rss_kb_before\":%ld,\"server_rss_kb\":%ld"
        ",\"server_rss_per_conn_kb\":%.2f,\"loadgen_cpu_pct\":%.1f,\"loadgen_reads\":%" PRIu64
        "}\n",
        opt.http  ? (opt.batch > 1 ? "hub-http-batch" : "hub-http")
        : opt.hub ? "hub-socketio"
                  : "relay",
        opt.polling ? "polling" : "websocket", opt.subscribers, ready, total.failed, opt.rate,
        opt.window, opt.payload, elapsed, sent, expected, total.received,
        elapsed > 0 ? (double)total.received / elapsed : 0.0,
        expected > total.received ? expected - total.received : 0,
        expected
            ? 100.0 * (double)(expected - (total.received < expected ? total.received : expected)) /
                  (double)expected
            : 0.0,
        total.dups, total.reorders, hist_quantile(&total.hist, 0.5),
        hist_quantile(&total.hist, 0.99), hist_quantile(&total.hist, 0.999),
        hist_quantile(&total.hist, 1.0), wall > 0 ? 100.0 * server_cpu / wall : 0.0,
        s_before.rss_kb, s_after.rss_kb,
        conns_total ? (double)(s_ready.rss_kb - s_before.rss_kb) / (double)conns_total : 0.0,
        wall > 0 ? 100.0 * (kids_cpu + lg_cpu_parent) / wall : 0.0, total.reads);
    return 0;
}
