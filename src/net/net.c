/* SPDX-License-Identifier: MIT */
/* Connections and their write queues. The invariant: a conn is on net->_dirty iff it has
 * queued links that no uv_write owns and it is not closing; links at the head of c->out
 * that a uv_write owns number c->_inflight and are released only by that write's callback
 * (which libuv also calls, with UV_ECANCELED, when the handle closes under it). */
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/err.h"
#include "util/log.h"

/* Rings shrink back to this many links when they drain, so an idle connection keeps a
 * small ring instead of its high-water mark. */
#define RING_KEEP 8

static int ring_grow(rp_net_queue_t *q)
{
    uint32_t cap = q->cap ? q->cap * 2 : 4;
    rp_net_link_t *r = rp_malloc(cap * sizeof(*r));
    if (r == NULL)
        return UV_ENOMEM;
    for (uint32_t i = 0; i < q->count; i++)
        r[i] = *rp_net_queue_at(q, i);
    rp_free(q->ring);
    q->ring = r;
    q->cap = cap;
    q->head = 0;
    return 0;
}

int rp_net_queue_push(rp_net_t *net, rp_net_queue_t *q, rp_sbuf_t *sb, uint32_t off, uint32_t len)
{
    (void)net;
    if (q->count == q->cap && ring_grow(q) < 0)
        return UV_ENOMEM;
    rp_net_link_t *l = &q->ring[(q->head + q->count) & (q->cap - 1)];
    l->sb = rp_sbuf_ref(sb);
    l->off = off;
    l->len = len;
    q->count++;
    q->bytes += len;
    return 0;
}

/* Releases the head link of q. */
static void queue_pop(rp_net_queue_t *q)
{
    rp_net_link_t *l = &q->ring[q->head];
    q->bytes -= l->len;
    rp_sbuf_unref(l->sb);
    q->head = (q->head + 1) & (q->cap - 1);
    q->count--;
    if (q->count == 0) {
        q->head = 0;
        if (q->cap > RING_KEEP) {
            rp_free(q->ring);
            q->ring = NULL;
            q->cap = 0;
        }
    }
}

void rp_net_queue_clear(rp_net_t *net, rp_net_queue_t *q)
{
    (void)net;
    while (q->count)
        queue_pop(q);
    rp_free(q->ring);
    rp_net_queue_init(q);
}

static void on_prepare(uv_prepare_t *h);

int rp_net_init(rp_net_t *net, uv_loop_t *loop, size_t default_max_queued)
{
    memset(net, 0, sizeof(*net));
    net->loop = loop;
    net->default_max_queued = default_max_queued;
    rp_list_init(&net->_dirty);
    rp_list_init(&net->_conns);
    rp_map_init(&net->_peers);
    int rc = uv_prepare_init(loop, &net->_prepare);
    if (rc < 0)
        return rc;
    net->_prepare.data = net;
    rc = uv_prepare_start(&net->_prepare, on_prepare);
    if (rc < 0)
        goto undo_prepare;
    /* The prepare handle must not keep the loop alive by itself. */
    uv_unref((uv_handle_t *)&net->_prepare);
    return 0;
undo_prepare:
    uv_close((uv_handle_t *)&net->_prepare, NULL);
    return rc;
}

void rp_net_deinit(rp_net_t *net)
{
    uv_prepare_stop(&net->_prepare);
    if (!uv_is_closing((uv_handle_t *)&net->_prepare))
        uv_close((uv_handle_t *)&net->_prepare, NULL);
    rp_map_deinit(&net->_peers); /* empty once every conn has closed */
}

int rp_net_on_tick(rp_net_t *net, rp_net_tick_cb cb, void *ud)
{
    if (net->_ntick >= 8)
        return RP_ETOOBIG;
    net->_tick_cbs[net->_ntick] = cb;
    net->_tick_uds[net->_ntick] = ud;
    net->_ntick++;
    return 0;
}

void rp_net_off_tick(rp_net_t *net, rp_net_tick_cb cb, void *ud)
{
    for (int i = 0; i < net->_ntick; i++) {
        if (net->_tick_cbs[i] == cb && net->_tick_uds[i] == ud) {
            for (int j = i + 1; j < net->_ntick; j++) {
                net->_tick_cbs[j - 1] = net->_tick_cbs[j];
                net->_tick_uds[j - 1] = net->_tick_uds[j];
            }
            net->_ntick--;
            return;
        }
    }
}

static void mark_dirty(rp_net_conn_t *c)
{
    if (!rp_list_linked(&c->_dirty_node) && !c->_writing && !c->closing)
        rp_list_push(&c->net->_dirty, &c->_dirty_node);
}

/* Live connections from one source address (the per-address limit). */
typedef struct rp_net_peer {
    rp_map_entry_t entry;
    uint32_t n;
    uint8_t keylen;
    char key[16]; /* the raw IPv4 or IPv6 address */
} peer_t;

static void peer_release(rp_net_t *net, peer_t *p)
{
    if (p && --p->n == 0) {
        rp_map_del(&net->_peers, &p->entry);
        rp_free(p);
    }
}

/* Counts c against its source address; returns 0, or RP_ETOOBIG past the limit (or when the
 * count cannot be kept: refusing is the safe side). */
static int peer_admit(rp_net_t *net, rp_net_conn_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) < 0)
        return RP_ETOOBIG;
    const char *key;
    size_t klen;
    if (ss.ss_family == AF_INET6) {
        key = (const char *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
        klen = 16;
    } else {
        key = (const char *)&((struct sockaddr_in *)&ss)->sin_addr;
        klen = 4;
    }
    rp_map_entry_t *e = rp_map_get(&net->_peers, key, klen);
    peer_t *p = e ? rp_container_of(e, peer_t, entry) : NULL;
    if (p && p->n >= net->max_conns_per_ip)
        return RP_ETOOBIG;
    if (p == NULL) {
        if ((p = rp_calloc(1, sizeof(*p))) == NULL)
            return RP_ETOOBIG;
        memcpy(p->key, key, klen);
        p->keylen = (uint8_t)klen;
        p->entry.key = p->key;
        p->entry.keylen = klen;
        /* UV_ENOMEM here is harmless: the entry is linked anyway, the map only stays slower. */
        (void)rp_map_put(&net->_peers, &p->entry);
    }
    p->n++;
    c->_peer = p;
    return 0;
}

/* ---- delivery sampling ---- */

void rp_net_marks_begin(rp_net_t *net)
{
    net->_marks = 0;
    net->_marks_armed = 0;
}

int rp_net_marks_end(rp_net_t *net, void (*cb)(void *ud), void *ud)
{
    if (net->_marks == 0)
        return 0;
    net->_marks_cb = cb;
    net->_marks_ud = ud;
    net->_marks_armed = 1;
    return 1;
}

void rp_net_mark_hold(rp_net_t *net)
{
    net->_marks++;
}

void rp_net_mark_release(rp_net_t *net)
{
    if (net->_marks == 0)
        return;
    if (--net->_marks == 0 && net->_marks_armed) {
        net->_marks_armed = 0;
        net->_marks_cb(net->_marks_ud);
    }
}

void rp_net_conn_mark(rp_net_conn_t *c)
{
    if (c->closing)
        return;
    if (c->_mark == 0)
        c->net->_marks++;
    c->_mark = c->_queued_total;
}

/* Passes c's mark once the kernel has taken every byte up to it. */
static void check_mark(rp_net_conn_t *c)
{
    if (c->_mark && c->_queued_total - c->out.bytes >= c->_mark) {
        c->_mark = 0;
        rp_net_mark_release(c->net);
    }
}

static void on_closed(uv_handle_t *h)
{
    rp_net_conn_t *c = h->data;
    rp_net_t *net = c->net;
    if (c->_mark) {
        c->_mark = 0;
        rp_net_mark_release(net);
    }
    if (c->ops && c->ops->on_close)
        c->ops->on_close(c);
    peer_release(net, c->_peer);
    rp_net_queue_clear(net, &c->out);
    rp_list_unlink(&c->_all_node);
    net->nconns--;
    rp_free(c);
}

void rp_net_conn_close(rp_net_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    rp_list_unlink(&c->_dirty_node);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

void rp_net_close_all(rp_net_t *net)
{
    rp_list_node_t *it;
    rp_list_foreach(it, &net->_conns)
    {
        rp_net_conn_t *c = rp_container_of(it, rp_net_conn_t, _all_node);
        rp_net_conn_close(c);
    }
}

void rp_net_conn_allow(rp_net_conn_t *c, size_t len)
{
    if (c->out.bytes + len > c->max_queued)
        c->max_queued = c->out.bytes + len;
}

void rp_net_conn_close_after_flush(rp_net_conn_t *c)
{
    if (c->out.count == 0 && !c->_writing) {
        rp_net_conn_close(c);
        return;
    }
    c->_close_when_flushed = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
}

int rp_net_conn_queue(rp_net_conn_t *c, rp_sbuf_t *sb, uint32_t off, uint32_t len)
{
    if (c->closing || c->_close_when_flushed)
        return RP_ESTATE;
    if (c->out.bytes + len > c->max_queued)
        return RP_ETOOBIG;
    int rc = rp_net_queue_push(c->net, &c->out, sb, off, len);
    if (rc < 0)
        return rc;
    c->_queued_total += len;
    mark_dirty(c);
    return 0;
}

int rp_net_conn_write(rp_net_conn_t *c, const void *data, size_t len)
{
    rp_sbuf_t *sb = rp_sbuf_new_copy(data, len);
    if (sb == NULL)
        return UV_ENOMEM;
    int rc = rp_net_conn_queue(c, sb, 0, (uint32_t)len);
    rp_sbuf_unref(sb);
    return rc;
}

void rp_net_conn_splice(rp_net_conn_t *c, rp_net_queue_t *q)
{
    if (q->count == 0) {
        rp_net_queue_clear(c->net, q);
        return;
    }
    if (c->closing) {
        rp_net_queue_clear(c->net, q);
        return;
    }
    while (q->count) {
        if (c->out.count == c->out.cap && ring_grow(&c->out) < 0) {
            rp_net_queue_clear(c->net, q);
            rp_net_conn_close(c);
            return;
        }
        /* Move the link (and its reference) without touching the count. */
        rp_net_link_t *src = rp_net_queue_at(q, 0);
        c->out.ring[(c->out.head + c->out.count) & (c->out.cap - 1)] = *src;
        c->out.count++;
        c->out.bytes += src->len;
        c->_queued_total += src->len;
        q->bytes -= src->len;
        q->head = (q->head + 1) & (q->cap - 1);
        q->count--;
    }
    rp_net_queue_clear(c->net, q);
    mark_dirty(c);
}

void rp_net_conn_peer(rp_net_conn_t *c, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    snprintf(out, outlen, "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) < 0)
        return;
    if (ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, out, outlen);
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, out, outlen);
}

/* Releases the first n bytes of c's output (written by the kernel). */
static void consume(rp_net_conn_t *c, size_t n)
{
    while (n > 0 && c->out.count) {
        rp_net_link_t *l = rp_net_queue_at(&c->out, 0);
        if (n >= l->len) {
            n -= l->len;
            queue_pop(&c->out);
        } else {
            l->off += (uint32_t)n;
            l->len -= (uint32_t)n;
            c->out.bytes -= n;
            n = 0;
        }
    }
}

static void after_drain(rp_net_conn_t *c)
{
    if (c->_close_when_flushed) {
        rp_net_conn_close(c);
        return;
    }
    if (c->ops->on_drain)
        c->ops->on_drain(c);
}

static void on_write(uv_write_t *req, int status)
{
    rp_net_conn_t *c = req->data;
    for (uint32_t i = 0; i < c->_inflight && c->out.count; i++)
        queue_pop(&c->out);
    c->_inflight = 0;
    c->_writing = 0;
    if (status == 0)
        check_mark(c);
    if (c->closing)
        return;
    if (status < 0) {
        RP_LOG_DEBUG("net", "conn %llu: write failed: %s", (unsigned long long)c->id,
                     uv_err_name(status));
        rp_net_conn_close(c);
        return;
    }
    if (c->out.count)
        mark_dirty(c);
    else
        after_drain(c);
}

/* Gathers the head of c's output: at most RP_NET_IOV_MAX links and about FLUSH_BYTES bytes,
 * more than a loopback or LAN socket buffer takes in one call. */
#define FLUSH_BYTES (512 * 1024)

static size_t fill_iov(rp_net_conn_t *c, uv_buf_t *iov)
{
    size_t n = 0;
    size_t bytes = 0;
    uint32_t count = c->out.count;
    while (n < count && n < RP_NET_IOV_MAX && bytes < FLUSH_BYTES) {
        rp_net_link_t *l = rp_net_queue_at(&c->out, (uint32_t)n);
        iov[n++] = uv_buf_init(l->sb->data + l->off, l->len);
        bytes += l->len;
    }
    return n;
}

/* Writes what the kernel takes now, then hands the rest of what was gathered to one
 * uv_write, which owns those links until its callback. When a try-write takes every byte
 * gathered while links remain queued, it gathers again (a fast socket drains more than one
 * gather), at most FLUSH_ROUNDS times in one loop turn; the last gather then goes to uv_write
 * untried. So uv_write never sees zero buffers, and one connection never holds the loop long. */
#define FLUSH_ROUNDS 8

static void flush_conn(rp_net_conn_t *c)
{
    static uv_buf_t iov[RP_NET_IOV_MAX];
    size_t n = 0;
    size_t skip = 0;
    for (int round = 0;; round++) {
        n = fill_iov(c, iov);
        if (n == 0) {
            after_drain(c);
            return;
        }
        skip = 0;
        if (round == FLUSH_ROUNDS)
            break;
        int w = uv_try_write((uv_stream_t *)&c->tcp, iov, (unsigned)n);
        if (w < 0 && w != UV_EAGAIN) {
            RP_LOG_DEBUG("net", "conn %llu: write failed: %s", (unsigned long long)c->id,
                         uv_err_name(w));
            rp_net_conn_close(c);
            return;
        }
        size_t done = w > 0 ? (size_t)w : 0;
        consume(c, done);
        check_mark(c);
        /* The iovecs still point at the gathered bytes: skip the written prefix. */
        while (skip < n && done >= iov[skip].len) {
            done -= iov[skip].len;
            skip++;
        }
        if (skip < n) {
            iov[skip].base += done;
            iov[skip].len -= done;
            break; /* the kernel is full: the rest waits for uv_write */
        }
    }
    c->_wreq.data = c;
    int rc =
        uv_write(&c->_wreq, (uv_stream_t *)&c->tcp, iov + skip, (unsigned)(n - skip), on_write);
    if (rc < 0) {
        rp_net_conn_close(c);
        return;
    }
    c->_writing = 1;
    c->_inflight = (uint32_t)(n - skip);
}

static void on_prepare(uv_prepare_t *h)
{
    rp_net_t *net = h->data;
    for (int i = 0; i < net->_ntick; i++)
        net->_tick_cbs[i](net->_tick_uds[i]);
    while (!rp_list_empty(&net->_dirty)) {
        rp_list_node_t *node = net->_dirty.next;
        rp_list_unlink(node);
        rp_net_conn_t *c = rp_container_of(node, rp_net_conn_t, _dirty_node);
        if (!c->closing && !c->_writing)
            flush_conn(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    rp_net_conn_t *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->net->_rbuf, sizeof(c->net->_rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    rp_net_conn_t *c = s->data;
    (void)buf;
    if (nread > 0) {
        if (!c->closing)
            c->ops->on_read(c, c->net->_rbuf, (size_t)nread);
        return;
    }
    if (nread < 0) {
        uv_read_stop(s);
        if (!c->closing && !c->_eof_seen) {
            c->_eof_seen = 1;
            c->ops->on_eof(c, (int)nread);
        }
    }
}

rp_net_conn_t *rp_net_conn_new(rp_net_t *net)
{
    rp_net_conn_t *c = rp_calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    if (uv_tcp_init(net->loop, &c->tcp) < 0) {
        rp_free(c); /* no handle was registered: a plain free */
        return NULL;
    }
    c->tcp.data = c;
    c->net = net;
    c->max_queued = net->default_max_queued;
    c->id = ++net->_next_conn_id;
    rp_list_init(&c->_dirty_node);
    rp_net_queue_init(&c->out);
    rp_list_push(&net->_conns, &c->_all_node);
    net->nconns++;
    return c;
}

static void on_connection(uv_stream_t *server, int status)
{
    rp_net_listener_t *l = server->data;
    rp_net_t *net = l->net;
    if (status < 0)
        return;
    rp_net_conn_t *c = rp_net_conn_new(net);
    if (c == NULL) {
        RP_LOG_ERROR("net", "out of memory accepting a connection");
        return;
    }
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        c->ops = NULL;
        rp_net_conn_close(c);
        return;
    }
    /* nconns counts c already. A refused connection is closed before anything is read. */
    if (net->max_conns && net->nconns > net->max_conns) {
        net->refused_max_conns++;
        rp_net_conn_close(c);
        return;
    }
    if (net->max_conns_per_ip && peer_admit(net, c) < 0) {
        net->refused_per_ip++;
        rp_net_conn_close(c);
        return;
    }
    /* Best effort: without TCP_NODELAY small frames only wait a little longer. */
    (void)uv_tcp_nodelay(&c->tcp, 1);
    l->on_accept(l, c);
    if (c->closing)
        return;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0) {
        RP_LOG_INFO("net", "conn %llu: cannot read: %s", (unsigned long long)c->id,
                    uv_strerror(rc));
        rp_net_conn_close(c);
    }
}

int rp_net_listen(rp_net_t *net, rp_net_listener_t *l, const char *host, int port, int reuseport,
                  rp_net_accept_cb on_accept, void *data)
{
    struct sockaddr_storage ss;
    int rc;
    memset(&ss, 0, sizeof(ss));
    if (strchr(host, ':'))
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
    else
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (rc < 0)
        return rc;
    l->net = net;
    l->on_accept = on_accept;
    l->data = data;
    rc = uv_tcp_init(net->loop, &l->tcp);
    if (rc < 0)
        return rc;
    l->tcp.data = l;
    if (reuseport) {
        /* libuv 1.44 has no UV_TCP_REUSEPORT: make the socket ourselves. */
        int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd < 0) {
            rc = -errno;
            goto undo_tcp;
        }
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
            rc = -errno;
            close(fd);
            goto undo_tcp;
        }
        rc = uv_tcp_open(&l->tcp, fd);
        if (rc < 0) {
            close(fd);
            goto undo_tcp;
        }
    }
    rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
    if (rc < 0)
        goto undo_tcp;
    rc = uv_listen((uv_stream_t *)&l->tcp, 4096, on_connection);
    if (rc < 0)
        goto undo_tcp;
    int len = sizeof(ss);
    rc = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len);
    if (rc < 0)
        goto undo_tcp;
    l->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                            : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
undo_tcp:
    uv_close((uv_handle_t *)&l->tcp, NULL);
    return rc;
}

void rp_net_listener_close(rp_net_listener_t *l)
{
    uv_close((uv_handle_t *)&l->tcp, NULL);
}
