/* SPDX-License-Identifier: MIT */
/* The workers cluster adapter. Each peer is a non-blocking Unix stream socket watched by a
 * uv_poll_t: publish writes the frame directly and parks whatever the socket did not take
 * in the peer's outbox (bounded: past it the peer is too slow and frames are dropped and
 * counted), reading reassembles frames in the peer's inbox and delivers each. */
#include "cluster/workers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"

#define OUTBOX_LIMIT (64u << 20)
#define FRAME_LIMIT  (16u << 20)

typedef struct peer {
    uv_poll_t poll;
    int fd;
    int events;
    rp_buf_t inbox;
    rp_buf_t outbox;
    struct workers *w;
} peer_t;

typedef struct workers {
    rp_cluster_t base;
    int self;
    int n;
    int closing;
    peer_t *peers;
    rp_buf_t scratch;
    char *names;
    size_t names_cap;
} workers_t;

static void on_poll(uv_poll_t *h, int status, int events);

/* Watches p for events; a failure (the fd went bad) is logged and counted, and the link then
 * carries nothing more: a lost link is what a dead sibling looks like too. */
static void set_events(peer_t *p, int events)
{
    if (p->events == events)
        return;
    int rc = uv_poll_start(&p->poll, events, on_poll);
    if (rc < 0) {
        p->w->base.errors++;
        RP_LOG_ERROR("cluster", "worker peer link: %s", uv_strerror(rc));
        return;
    }
    p->events = events;
}

static void peer_write(peer_t *p, const uint8_t *data, size_t len)
{
    if (p->outbox.len == 0) {
        ssize_t w = send(p->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            p->w->base.errors++;
            return;
        }
        if (w < 0)
            w = 0;
        data += w;
        len -= (size_t)w;
        if (len == 0)
            return;
    }
    if (rp_buf_append(&p->outbox, data, len) < 0) {
        p->w->base.errors++;
        RP_LOG_WARN("cluster", "worker peer too slow: dropping a broadcast");
        return;
    }
    set_events(p, UV_READABLE | UV_WRITABLE);
}

static int publish(rp_cluster_t *c, const rp_cluster_msg_t *m)
{
    workers_t *w = (workers_t *)c;
    size_t size = rp_cluster_msg_size(m);
    if (size > FRAME_LIMIT)
        return RP_ETOOBIG;
    rp_buf_reset(&w->scratch);
    int rc = rp_buf_reserve(&w->scratch, 4 + size);
    if (rc < 0)
        return rc;
    uint8_t *p = (uint8_t *)w->scratch.data;
    size_t n = rp_cluster_msg_encode(m, p + 4);
    if (n == 0)
        return RP_ETOOBIG; /* a name over 65535 bytes */
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
    for (int i = 0; i < w->n; i++)
        if (i != w->self && w->peers[i].fd >= 0)
            peer_write(&w->peers[i], p, 4 + n);
    c->published++;
    return 0;
}

static void deliver_frames(peer_t *p)
{
    workers_t *w = p->w;
    size_t off = 0;
    while (p->inbox.len - off >= 4) {
        const uint8_t *b = (const uint8_t *)p->inbox.data + off;
        size_t n = (size_t)b[0] << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | b[3];
        if (n > FRAME_LIMIT) {
            RP_LOG_ERROR("cluster", "bad frame from a worker peer; dropping its link");
            uv_poll_stop(&p->poll);
            rp_buf_reset(&p->inbox);
            return;
        }
        if (p->inbox.len - off - 4 < n)
            break;
        if (w->names_cap < n + 1) {
            char *nn = rp_realloc(w->names, n + 1);
            if (nn == NULL)
                break;
            w->names = nn;
            w->names_cap = n + 1;
        }
        const char *ptrs[512];
        rp_cluster_msg_t m;
        if (rp_cluster_msg_decode(b + 4, n, &m, w->names, ptrs, 512) == 0) {
            w->base.delivered++;
            if (w->base.deliver)
                w->base.deliver(w->base.deliver_ud, &m);
        } else {
            w->base.errors++;
        }
        off += 4 + n;
    }
    rp_buf_consume(&p->inbox, off);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    peer_t *p = h->data;
    if (status < 0) {
        uv_poll_stop(h);
        return;
    }
    if (events & UV_WRITABLE) {
        ssize_t sent = send(p->fd, p->outbox.data, p->outbox.len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent > 0)
            rp_buf_consume(&p->outbox, (size_t)sent);
        if (p->outbox.len == 0)
            set_events(p, UV_READABLE);
    }
    if (events & UV_READABLE) {
        for (int i = 0; i < 16; i++) {
            if (rp_buf_reserve(&p->inbox, 65536) < 0)
                break;
            ssize_t r = recv(p->fd, p->inbox.data + p->inbox.len, 65536, MSG_DONTWAIT);
            if (r == 0) {
                /* A sibling exited: the supervisor ends the whole group. */
                uv_poll_stop(h);
                return;
            }
            if (r < 0)
                break;
            p->inbox.len += (size_t)r;
            deliver_frames(p);
            if (r < 65536)
                break;
        }
    }
}

static void on_poll_closed(uv_handle_t *h)
{
    peer_t *p = h->data;
    workers_t *w = p->w;
    rp_buf_deinit(&p->inbox);
    rp_buf_deinit(&p->outbox);
    close(p->fd);
    if (--w->closing == 0) {
        rp_free(w->peers);
        rp_buf_deinit(&w->scratch);
        rp_free(w->names);
        rp_free(w);
    }
}

static void workers_close(rp_cluster_t *c)
{
    workers_t *w = (workers_t *)c;
    w->closing = 0;
    for (int i = 0; i < w->n; i++)
        if (i != w->self && w->peers[i].fd >= 0)
            w->closing++;
    if (w->closing == 0) {
        rp_free(w->peers);
        rp_buf_deinit(&w->scratch);
        rp_free(w->names);
        rp_free(w);
        return;
    }
    for (int i = 0; i < w->n; i++)
        if (i != w->self && w->peers[i].fd >= 0)
            uv_close((uv_handle_t *)&w->peers[i].poll, on_poll_closed);
}

static const rp_cluster_ops_t workers_ops = {.publish = publish, .close = workers_close};

rp_cluster_t *rp_cluster_workers_new(uv_loop_t *loop, int self, int n, const int *peer_fds)
{
    int i = 0;
    int rc;
    workers_t *w = rp_calloc(1, sizeof(*w));
    if (w == NULL)
        goto undo_fds;
    w->peers = rp_calloc((size_t)n, sizeof(*w->peers));
    if (w->peers == NULL)
        goto undo_workers;
    w->base.ops = &workers_ops;
    w->base.kind = "workers";
    w->self = self;
    w->n = n;
    rp_buf_init(&w->scratch, FRAME_LIMIT + 4);
    for (; i < n; i++) {
        peer_t *p = &w->peers[i];
        p->fd = i == self ? -1 : peer_fds[i];
        p->w = w;
        if (p->fd < 0)
            continue;
        rp_buf_init(&p->inbox, FRAME_LIMIT + 65536 + 4);
        rp_buf_init(&p->outbox, OUTBOX_LIMIT);
        rc = uv_poll_init(loop, &p->poll, p->fd);
        if (rc < 0)
            goto undo_polls;
        p->poll.data = p;
        /* The mesh must not keep a worker's loop alive on its own. */
        uv_unref((uv_handle_t *)&p->poll);
        rc = uv_poll_start(&p->poll, UV_READABLE, on_poll);
        if (rc < 0) {
            i++; /* this peer's handle exists: workers_close closes it */
            goto undo_polls;
        }
        p->events = UV_READABLE;
    }
    return &w->base;
undo_polls:
    RP_LOG_ERROR("cluster", "worker peer link: %s", uv_strerror(rc));
    /* Peers from i on have no handle: their sockets close here, the others' in on_poll_closed. */
    for (int k = i; k < n; k++) {
        if (k != self && peer_fds[k] >= 0)
            close(peer_fds[k]);
        w->peers[k].fd = -1;
    }
    workers_close(&w->base); /* frees w once the handles have closed */
    return NULL;
undo_workers:
    rp_free(w);
undo_fds:
    for (int k = 0; k < n; k++)
        if (k != self && peer_fds[k] >= 0)
            close(peer_fds[k]);
    return NULL;
}
