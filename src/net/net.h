/* SPDX-License-Identifier: MIT */
#ifndef RP_NET_NET_H
#define RP_NET_NET_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/list.h"
#include "util/map.h"
#include "util/sbuf.h"

/* libuv glue: listeners, connections, and output queues of shared-buffer links.
 *
 * Writing never copies: rp_net_conn_queue() appends a link {sbuf, off, len} that holds a
 * reference, and the connection joins the loop's dirty list once. Right before libuv polls
 * (a uv_prepare_t, redis's "before sleep"), every dirty connection's links go out in one
 * uv_try_write of up to RP_NET_IOV_MAX iovecs, and whatever the kernel did not take goes
 * in one uv_write that owns those links until its callback. Everything here belongs to the
 * loop thread. */

#define RP_NET_IOV_MAX 1024

typedef struct rp_net rp_net_t;
typedef struct rp_net_conn rp_net_conn_t;
typedef struct rp_net_listener rp_net_listener_t;

typedef struct rp_net_link {
    rp_sbuf_t *sb; /* one reference owned by the link */
    uint32_t off;
    uint32_t len;
} rp_net_link_t;

/* A FIFO of links in a ring array (power-of-two capacity, grown on demand), used for a
 * connection's output and for data parked elsewhere (polling responses being assembled).
 * A ring keeps a connection's pending frames contiguous, so gathering them for writev is
 * a linear scan and queueing allocates nothing in the steady state. */
typedef struct rp_net_queue {
    rp_net_link_t *ring; /* owned; NULL while cap is 0 */
    uint32_t head;
    uint32_t count;
    uint32_t cap;
    size_t bytes;
} rp_net_queue_t;

/* What a protocol layer does with a connection. on_read gets a mutable buffer that is only
 * valid during the call (the loop shares one read buffer among all connections). on_eof is
 * called once when the peer closes or the read fails (err is UV_EOF or an error); the handler
 * normally closes. on_close is the last call: free the handler's state; the conn itself is
 * freed after it returns. on_drain (optional) runs when the output queue becomes empty. */
typedef struct rp_net_conn_ops {
    void (*on_read)(rp_net_conn_t *c, char *data, size_t len);
    void (*on_eof)(rp_net_conn_t *c, int err);
    void (*on_close)(rp_net_conn_t *c);
    void (*on_drain)(rp_net_conn_t *c);
} rp_net_conn_ops_t;

struct rp_net_conn {
    uv_tcp_t tcp;
    rp_net_t *net; /* borrowed, outlives c */
    const rp_net_conn_ops_t *ops;
    void *data; /* the protocol layer's */
    rp_net_queue_t out;
    uint32_t _inflight; /* links at the head of out owned by the uv_write in flight */
    size_t max_queued;
    rp_list_node_t _dirty_node;
    rp_list_node_t _all_node; /* on net->_conns */
    uint64_t id;
    struct rp_net_peer *_peer; /* its source address's count, when per-address limits are on */
    unsigned closing : 1;
    unsigned _writing : 1;
    unsigned _close_when_flushed : 1;
    unsigned _eof_seen : 1;
    uv_write_t _wreq;
    uint64_t _queued_total; /* bytes ever put on out; written = _queued_total - out.bytes */
    uint64_t _mark;         /* 0, or the _queued_total the delivery sample waits for */
};

/* Called before each flush, for layers that batch their own output (polling responses). */
typedef void (*rp_net_tick_cb)(void *ud);

struct rp_net {
    uv_loop_t *loop; /* borrowed */
    uv_prepare_t _prepare;
    rp_list_node_t _dirty;
    rp_list_node_t _conns;
    uint64_t _next_conn_id;
    size_t nconns;
    size_t default_max_queued;
    /* Accept limits (0: none): connections in all, and from one source address. Past them a
     * new connection is closed at once and counted. */
    size_t max_conns;
    size_t max_conns_per_ip;
    rp_map_t _peers; /* source address -> live connections, while max_conns_per_ip is set */
    unsigned long refused_max_conns;
    unsigned long refused_per_ip;
    /* The delivery sample in flight (see rp_net_marks_begin): marks not yet passed, and the
     * callback to run once they all have. */
    size_t _marks;
    int _marks_armed;
    void (*_marks_cb)(void *ud);
    void *_marks_ud;
    rp_net_tick_cb _tick_cbs[8];
    void *_tick_uds[8];
    int _ntick;
    char _rbuf[65536];
};

typedef void (*rp_net_accept_cb)(rp_net_listener_t *l, rp_net_conn_t *c);

struct rp_net_listener {
    uv_tcp_t tcp;
    rp_net_t *net;
    rp_net_accept_cb on_accept;
    void *data;
    int port; /* the bound port, useful after asking for port 0 */
};

/* Initialises net on loop. default_max_queued bounds each conn's queued output bytes.
 * Returns 0 or a libuv error (the prepare handle is then closing: net stays valid until the
 * loop has run once). */
int rp_net_init(rp_net_t *net, uv_loop_t *loop, size_t default_max_queued);
/* Stops the prepare handle; close every conn and listener first. */
void rp_net_deinit(rp_net_t *net);
/* Registers cb to run right before each flush pass. Returns 0 or RP_ETOOBIG (8 at most). */
int rp_net_on_tick(rp_net_t *net, rp_net_tick_cb cb, void *ud);
void rp_net_off_tick(rp_net_t *net, rp_net_tick_cb cb, void *ud);

/* Binds host:port (IPv4 or IPv6 literal) and listens. With reuseport, SO_REUSEPORT is set so
 * several processes can share the port. on_accept must set c->ops (and c->data) and start
 * nothing else; reading starts after it returns. Returns 0 or a libuv error (l's handle is then
 * closing: l stays valid until the loop has run once). */
int rp_net_listen(rp_net_t *net, rp_net_listener_t *l, const char *host, int port, int reuseport,
                  rp_net_accept_cb on_accept, void *data);
void rp_net_listener_close(rp_net_listener_t *l);

/* Makes a connection object with an initialised but unconnected TCP handle (ops NULL): the
 * accept path uses it before uv_accept; unit tests and fuzz drivers use it as a sink whose
 * output stays in c->out because the loop never flushes it. NULL on out-of-memory (of ours or
 * of uv_tcp_init). */
rp_net_conn_t *rp_net_conn_new(rp_net_t *net);

/* Queues sb[off..off+len) on c and takes its own reference; the caller keeps theirs.
 * Returns 0, RP_ETOOBIG when c's queue would pass c->max_queued (nothing queued; the caller
 * decides, normally closing c), RP_ESTATE when c is closing, or UV_ENOMEM. */
int rp_net_conn_queue(rp_net_conn_t *c, rp_sbuf_t *sb, uint32_t off, uint32_t len);
/* Copies data into a new block and queues it. Same returns. */
int rp_net_conn_write(rp_net_conn_t *c, const void *data, size_t len);
/* Moves every link of q to the end of c's output (no limit check: the bytes were already
 * accounted where they were parked). q is left empty. */
void rp_net_conn_splice(rp_net_conn_t *c, rp_net_queue_t *q);
/* Closes c now (queued output is dropped). Safe to call twice. ops->on_close runs later. */
void rp_net_conn_close(rp_net_conn_t *c);
/* Lets c queue len bytes beyond what it has queued now, past its max_queued if need be: for a
 * reply already built in memory (an HTTP response, an ack), which is not output piling up for
 * a slow reader. The bound only grows. */
void rp_net_conn_allow(rp_net_conn_t *c, size_t len);
/* Closes c once its queued output has been written (or at once if there is none). */
void rp_net_conn_close_after_flush(rp_net_conn_t *c);
/* Closes every connection at once (shutdown). */
void rp_net_close_all(rp_net_t *net);
/* Writes the peer's address as "ip" into out (at least 46 bytes); "?" when unknown. */
void rp_net_conn_peer(rp_net_conn_t *c, char *out, size_t outlen);

/* Delivery sampling: one sample at a time, made of marks. A mark on a connection is passed
 * when every byte queued on it so far has been taken by the kernel, or when it closes; a mark
 * held with rp_net_mark_hold (output parked above this layer, a polling queue) is passed when
 * its holder releases it. Between rp_net_marks_begin and rp_net_marks_end the caller places
 * marks; rp_net_marks_end returns 0 when none was placed (cb is not called), else 1, and cb
 * runs once, from the write path or a close, when the last is passed. Loop thread only. */
static inline int rp_net_marks_busy(const rp_net_t *net)
{
    return net->_marks_armed || net->_marks != 0;
}
/* Drops the sample in flight's callback (its owner is going away); its marks still pass. */
static inline void rp_net_marks_cancel(rp_net_t *net)
{
    net->_marks_armed = 0;
}
void rp_net_marks_begin(rp_net_t *net);
int rp_net_marks_end(rp_net_t *net, void (*cb)(void *ud), void *ud);
/* Marks c at the bytes queued on it now (a second mark on c moves it to now, same sample). */
void rp_net_conn_mark(rp_net_conn_t *c);
void rp_net_mark_hold(rp_net_t *net);
void rp_net_mark_release(rp_net_t *net);

/* Queues of links not (yet) tied to a connection. */
static inline void rp_net_queue_init(rp_net_queue_t *q)
{
    q->ring = NULL;
    q->head = q->count = q->cap = 0;
    q->bytes = 0;
}
/* The i-th link from the head (i < q->count). */
static inline rp_net_link_t *rp_net_queue_at(const rp_net_queue_t *q, uint32_t i)
{
    return &q->ring[(q->head + i) & (q->cap - 1)];
}
/* Appends a link to sb[off..off+len), taking a reference. Returns 0 or UV_ENOMEM. */
int rp_net_queue_push(rp_net_t *net, rp_net_queue_t *q, rp_sbuf_t *sb, uint32_t off, uint32_t len);
/* Drops every link (and its reference) and frees the ring. */
void rp_net_queue_clear(rp_net_t *net, rp_net_queue_t *q);

#endif
