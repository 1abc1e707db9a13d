/* SPDX-License-Identifier: MIT */
/* net: a connection's output ring over a socketpair, beyond test_net.c's gathers. Links queued
 * while a write is in flight, while the ring wraps and while it grows, reach the peer in queue
 * order, each sub-range exactly once (static blocks included); a queue past max_queued is
 * refused with nothing queued, and rp_net_conn_allow lets a built reply through; on_drain runs
 * once the ring is empty; links spliced from a parked queue follow what was queued before
 * them; after close_after_flush nothing more is queued (RP_ESTATE) and everything queued
 * before it is delivered before the close. The peer reads slowly (small reads on a small
 * send buffer), so the kernel takes partial writes. */
#include "unit.h"

#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "net/net.h"
#include "util/err.h"
#include "util/sbuf.h"

struct reader {
    int fd;
    char *got;
    size_t len, cap;
};

/* Reads 1..97 bytes at a time until EOF: a slow reader. */
static void *read_all(void *arg)
{
    struct reader *r = arg;
    size_t step = 1;
    for (;;) {
        if (r->cap - r->len < 128) {
            r->cap = r->cap * 2 + 128;
            r->got = realloc(r->got, r->cap);
        }
        step = step % 97 + 1;
        ssize_t n = read(r->fd, r->got + r->len, step);
        if (n <= 0)
            break;
        r->len += (size_t)n;
    }
    return NULL;
}

struct fixture {
    uv_loop_t loop;
    uv_timer_t alive;
    rp_net_t net;
    rp_net_conn_t *c;
    int peer_fd;
    pthread_t th;
    struct reader rd;
    int drained, closed;
};

static void on_alive(uv_timer_t *t)
{
    (void)t;
}
static void on_read(rp_net_conn_t *c, char *data, size_t len)
{
    (void)c, (void)data, (void)len;
}
static void on_eof(rp_net_conn_t *c, int err)
{
    (void)err;
    rp_net_conn_close(c);
}
static void on_close(rp_net_conn_t *c)
{
    ((struct fixture *)c->data)->closed = 1;
}
static void on_drain(rp_net_conn_t *c)
{
    ((struct fixture *)c->data)->drained++;
}
static const rp_net_conn_ops_t ops = {on_read, on_eof, on_close, on_drain};

static void setup(struct fixture *f, size_t max_queued)
{
    memset(f, 0, sizeof(*f));
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int sndbuf = 4096;
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(rp_net_init(&f->net, &f->loop, max_queued), 0);
    assert_int_equal(uv_timer_init(&f->loop, &f->alive), 0);
    /* A 5 ms tick: a flush that finishes in the prepare phase sets its flag before libuv
     * polls, and UV_RUN_ONCE would then block in the poll until the next timer. */
    assert_int_equal(uv_timer_start(&f->alive, on_alive, 5, 5), 0);
    f->c = rp_net_conn_new(&f->net);
    assert_non_null(f->c);
    assert_int_equal(uv_tcp_open(&f->c->tcp, sv[0]), 0);
    f->c->ops = &ops;
    f->c->data = f;
    f->peer_fd = sv[1];
    f->rd.fd = sv[1];
    assert_int_equal(pthread_create(&f->th, NULL, read_all, &f->rd), 0);
}

/* Runs the loop until *flag is set; each turn blocks until the socket is writable again. */
static void run_until(struct fixture *f, int *flag)
{
    for (int turns = 0; !*flag; turns++) {
        assert_true(turns < 10000000);
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

/* Closes after the flush, waits for the peer's EOF and checks what it read. */
static void finish_and_check(struct fixture *f, const char *want, size_t n)
{
    rp_net_conn_close_after_flush(f->c);
    assert_int_equal(rp_net_conn_write(f->c, "late", 4), RP_ESTATE);
    run_until(f, &f->closed);
    pthread_join(f->th, NULL);
    close(f->peer_fd);
    rp_net_deinit(&f->net);
    uv_close((uv_handle_t *)&f->alive, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(f->rd.len, n);
    assert_memory_equal(f->rd.got, want, n);
    free(f->rd.got);
}

/* Appends to want what it queues. */
struct expect {
    char *buf;
    size_t len;
};
static void expect_add(struct expect *e, const void *p, size_t n)
{
    e->buf = realloc(e->buf, e->len + n);
    memcpy(e->buf + e->len, p, n);
    e->len += n;
}

static void links_queued_while_writing_keep_their_order(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 64u << 20);
    struct expect e = {NULL, 0};
    /* One shared block cut into sub-ranges, own copies, and a static separator, in rounds: each
     * round queues while the previous one is still in flight (the ring's head has moved, so the
     * new links wrap, and the ring grows from 4 links up). */
    char pattern[8192];
    for (size_t i = 0; i < sizeof(pattern); i++)
        pattern[i] = (char)('A' + (i * 31 + i / 7) % 58);
    rp_sbuf_t *sb = rp_sbuf_new_copy(pattern, sizeof(pattern));
    assert_non_null(sb);
    static rp_sbuf_t sep = RP_SBUF_STATIC("\x1e");
    uint32_t off = 0;
    for (int round = 0; round < 60; round++) {
        for (int k = 0; k < 1 + round % 9; k++) {
            uint32_t len = (uint32_t)(1 + (round * 131 + k * 17) % 700);
            if (off + len > sizeof(pattern))
                off = 0;
            assert_int_equal(rp_net_conn_queue(f.c, sb, off, len), 0);
            expect_add(&e, pattern + off, len);
            off += len;
            assert_int_equal(rp_net_conn_queue(f.c, &sep, 0, 1), 0);
            expect_add(&e, "\x1e", 1);
            char own[16];
            int n = snprintf(own, sizeof(own), "<%d.%d>", round, k);
            assert_int_equal(rp_net_conn_write(f.c, own, (size_t)n), 0);
            expect_add(&e, own, (size_t)n);
        }
        uv_run(&f.loop, UV_RUN_NOWAIT); /* one flush: partial, the rest in flight */
    }
    rp_sbuf_unref(sb);
    assert_int_equal(sep.refs, 0);
    finish_and_check(&f, e.buf, e.len);
    free(e.buf);
}

static void a_queue_past_its_bound_is_refused_whole(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 100);
    char big[100];
    memset(big, 'b', sizeof(big));
    assert_int_equal(rp_net_conn_write(f.c, big, 60), 0);
    uint32_t count = f.c->out.count;
    assert_int_equal(rp_net_conn_write(f.c, big, 41), RP_ETOOBIG);
    assert_int_equal(f.c->out.count, count); /* nothing queued */
    assert_int_equal(f.c->out.bytes, 60);
    assert_int_equal(rp_net_conn_write(f.c, big, 40), 0); /* exactly at the bound */
    /* A reply built in memory may pass the bound once allowed. */
    rp_net_conn_allow(f.c, 100);
    assert_int_equal(rp_net_conn_write(f.c, big, 100), 0);
    assert_int_equal(rp_net_conn_write(f.c, "x", 1), RP_ETOOBIG);
    char want[200];
    memset(want, 'b', sizeof(want));
    finish_and_check(&f, want, 200);
}

static void drain_runs_when_the_ring_empties_and_splice_keeps_order(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 64u << 20);
    struct expect e = {NULL, 0};
    char chunk[20000];
    memset(chunk, 'c', sizeof(chunk));
    assert_int_equal(rp_net_conn_write(f.c, chunk, sizeof(chunk)), 0);
    expect_add(&e, chunk, sizeof(chunk));
    /* Links parked elsewhere (a polling response being built) go after what is queued. */
    rp_net_queue_t parked;
    rp_net_queue_init(&parked);
    rp_sbuf_t *sb = rp_sbuf_new_copy("parked-one|parked-two|", 22);
    assert_non_null(sb);
    assert_int_equal(rp_net_queue_push(&f.net, &parked, sb, 0, 11), 0);
    assert_int_equal(rp_net_queue_push(&f.net, &parked, sb, 11, 11), 0);
    assert_int_equal(parked.count, 2);
    assert_int_equal(parked.bytes, 22);
    rp_net_conn_splice(f.c, &parked);
    expect_add(&e, "parked-one|parked-two|", 22);
    assert_int_equal(parked.count, 0);
    assert_null(parked.ring);
    rp_sbuf_unref(sb);
    assert_int_equal(f.drained, 0);
    run_until(&f, &f.drained);
    assert_int_equal(f.c->out.count, 0);
    assert_int_equal(f.c->out.bytes, 0);
    assert_int_equal(f.c->_queued_total, sizeof(chunk) + 22);
    /* Queued again after the drain: drained once more, in order. */
    f.drained = 0;
    assert_int_equal(rp_net_conn_write(f.c, "tail", 4), 0);
    expect_add(&e, "tail", 4);
    run_until(&f, &f.drained);
    assert_int_equal(f.drained, 1);
    finish_and_check(&f, e.buf, e.len);
    free(e.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(links_queued_while_writing_keep_their_order),
        cmocka_unit_test(a_queue_past_its_bound_is_refused_whole),
        cmocka_unit_test(drain_runs_when_the_ring_empties_and_splice_keeps_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
