/* SPDX-License-Identifier: MIT */
/* net: a connection's output queue against a real kernel socket (one end of a socketpair,
 * adopted as the conn's stream), read by a thread on the other end. What is checked is the
 * byte stream the peer receives: every queued link, in order, exactly once, whatever the
 * kernel takes per write:
 *   - a try-write that takes every byte gathered while more links remain queued (more links
 *     than one gather holds, each small enough that the socket buffer takes them all; once
 *     this handed uv_write zero buffers and libuv aborted);
 *   - partial writes at many boundaries (a small socket buffer, links of many sizes, a reader
 *     taking chunks of many sizes);
 *   - a close while a uv_write is pending (its links are released once, nothing leaks). */
#include "unit.h"

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "net/net.h"
#include "util/err.h"
#include "util/sbuf.h"

/* What the reader thread collects from its end of the pair until EOF. */
struct reader {
    int fd;
    size_t chunk_max; /* reads take 1..chunk_max bytes, varied */
    char *got;
    size_t len, cap;
};

static void *read_all(void *arg)
{
    struct reader *r = arg;
    unsigned seed = 7;
    for (;;) {
        if (r->cap - r->len < r->chunk_max) {
            r->cap = r->cap * 2 + r->chunk_max;
            r->got = realloc(r->got, r->cap);
        }
        seed = seed * 1103515245u + 12345u;
        size_t want = 1 + (seed >> 8) % r->chunk_max;
        ssize_t n = read(r->fd, r->got + r->len, want);
        if (n <= 0)
            break;
        r->len += (size_t)n;
    }
    return NULL;
}

static void on_alive(uv_timer_t *t)
{
    (void)t;
}

struct fixture {
    uv_loop_t loop;
    uv_timer_t alive; /* keeps the loop alive between writes, as a server's listener does */
    rp_net_t net;
    rp_net_conn_t *c;
    int peer_fd;
    pthread_t th;
    struct reader rd;
    int drained, closed;
};

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
    ((struct fixture *)c->data)->drained = 1;
}
static const rp_net_conn_ops_t ops = {on_read, on_eof, on_close, on_drain};

/* A conn on one end of a socketpair whose send buffer is sndbuf bytes (0: the default). */
static void setup(struct fixture *f, int sndbuf, size_t chunk_max, int start_reader)
{
    memset(f, 0, sizeof(*f));
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    if (sndbuf)
        assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(rp_net_init(&f->net, &f->loop, 64u << 20), 0);
    uv_timer_init(&f->loop, &f->alive);
    uv_timer_start(&f->alive, on_alive, 3600 * 1000, 3600 * 1000);
    f->c = rp_net_conn_new(&f->net);
    assert_non_null(f->c);
    assert_int_equal(uv_tcp_open(&f->c->tcp, sv[0]), 0);
    f->c->ops = &ops;
    f->c->data = f;
    f->peer_fd = sv[1];
    f->rd.fd = sv[1];
    f->rd.chunk_max = chunk_max;
    if (start_reader)
        assert_int_equal(pthread_create(&f->th, NULL, read_all, &f->rd), 0);
}

/* Runs the loop until *flag is set (each turn blocks in the kernel until the socket is
 * writable again, so this is a wait on a condition, with the socket as its clock). */
static void run_until(struct fixture *f, int *flag)
{
    for (int turns = 0; !*flag; turns++) {
        assert_true(turns < 10000000);
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static void finish(struct fixture *f)
{
    rp_net_deinit(&f->net);
    uv_close((uv_handle_t *)&f->alive, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void teardown(struct fixture *f, int joined)
{
    if (!f->closed) {
        rp_net_conn_close(f->c);
        run_until(f, &f->closed);
    }
    if (!joined) {
        shutdown(f->peer_fd, SHUT_RDWR);
        pthread_join(f->th, NULL);
    }
    close(f->peer_fd);
    finish(f);
    free(f->rd.got);
}

/* Queues n links cut from one pattern buffer: link i is sizes[i % nsizes] bytes. Returns the
 * bytes expected, in order. */
static char *queue_links(struct fixture *f, size_t n, const uint32_t *sizes, size_t nsizes,
                         size_t *total)
{
    size_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += sizes[i % nsizes];
    char *want = malloc(sum);
    for (size_t i = 0; i < sum; i++)
        want[i] = (char)('a' + (i * 7 + i / 251) % 26);
    /* One shared buffer for all links (as a broadcast frame is shared), plus a few links of
     * their own buffers, so both kinds of reference are released. */
    rp_sbuf_t *sb = rp_sbuf_new_copy(want, sum);
    assert_non_null(sb);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t len = sizes[i % nsizes];
        if (i % 97 == 0)
            assert_int_equal(rp_net_conn_write(f->c, want + off, len), 0);
        else
            assert_int_equal(rp_net_conn_queue(f->c, sb, (uint32_t)off, len), 0);
        off += len;
    }
    rp_sbuf_unref(sb);
    *total = sum;
    return want;
}

/* Writes everything queued, closes after the flush, and checks what the peer read. */
static void flush_and_check(struct fixture *f, char *want, size_t total)
{
    rp_net_conn_close_after_flush(f->c);
    run_until(f, &f->closed);
    pthread_join(f->th, NULL);
    assert_int_equal(f->rd.len, total);
    assert_memory_equal(f->rd.got, want, total);
    free(want);
    teardown(f, 1);
}

/* More small links than one gather holds (RP_NET_IOV_MAX), all fitting the socket buffer:
 * every try-write takes everything gathered while links remain. */
static void test_gather_taken_whole(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {16};
    struct fixture f;
    setup(&f, 0, 65536, 1);
    size_t total;
    char *want = queue_links(&f, 3 * RP_NET_IOV_MAX + 5, sizes, 1, &total);
    flush_and_check(&f, want, total);
}

/* As above, with so many links that the rounds of one flush run out and the last gather goes
 * to uv_write without a try. */
static void test_gather_taken_whole_many_rounds(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {8, 1, 3};
    struct fixture f;
    setup(&f, 0, 65536, 1);
    size_t total;
    char *want = queue_links(&f, 40 * RP_NET_IOV_MAX, sizes, 3, &total);
    flush_and_check(&f, want, total);
}

/* A small send buffer, links of many sizes (1 byte to 70 KB) and reads of many sizes: writes
 * stop part-way through links at many different offsets. */
static void test_partial_writes(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {1, 2, 3, 5, 8, 13, 100, 1000, 4095, 4096, 4097, 70000, 7};
    static const int sndbufs[] = {2048, 4096, 9000, 65536};
    static const size_t chunks[] = {1, 17, 4096, 100000};
    for (size_t i = 0; i < sizeof(sndbufs) / sizeof(sndbufs[0]); i++) {
        struct fixture f;
        setup(&f, sndbufs[i], chunks[i], 1);
        size_t total;
        char *want = queue_links(&f, 1500 + 131 * i, sizes, 13, &total);
        flush_and_check(&f, want, total);
    }
}

/* A peer that reads nothing: the flush ends in a pending uv_write; closing the conn then
 * releases every link once (ASan would see a leak or a double release). */
static void test_close_during_pending_write(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {65536, 10};
    struct fixture f;
    setup(&f, 4096, 1, 0);
    size_t total;
    char *want = queue_links(&f, 64, sizes, 2, &total);
    while (!f.c->_writing)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_true(f.c->out.count > 0);
    rp_net_conn_close(f.c);
    assert_int_equal(rp_net_conn_write(f.c, "x", 1), RP_ESTATE);
    run_until(&f, &f.closed);
    free(want);
    teardown(&f, 1);
}

/* The peer goes away during a pending write: the write fails, the conn closes itself. */
static void test_peer_gone_during_pending_write(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {65536};
    struct fixture f;
    setup(&f, 4096, 1, 0);
    size_t total;
    char *want = queue_links(&f, 32, sizes, 1, &total);
    while (!f.c->_writing)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    close(f.peer_fd);
    f.peer_fd = -1;
    run_until(&f, &f.closed);
    free(want);
    finish(&f);
}

/* Delivery marks: the sample's callback runs once, when the kernel has taken every byte up to
 * the mark (not before, while the peer reads nothing; bytes queued after the mark do not
 * hold it back), or when the connection closes first. */
static int samples;
static uint64_t written_at_sample;
static rp_net_conn_t *sampled_conn;
static void on_sample(void *ud)
{
    (void)ud;
    samples++;
    if (sampled_conn) /* NULL once the conn is gone */
        written_at_sample = sampled_conn->_queued_total - sampled_conn->out.bytes;
}

static void test_mark_passes_when_written(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {65536};
    struct fixture f;
    setup(&f, 4096, 65536, 0);
    samples = 0;
    sampled_conn = f.c;
    rp_net_marks_begin(&f.net);
    assert_int_equal(rp_net_marks_end(&f.net, on_sample, NULL), 0); /* nothing marked: no sample */
    size_t total;
    char *want = queue_links(&f, 16, sizes, 1, &total);
    rp_net_marks_begin(&f.net);
    rp_net_conn_mark(f.c);
    uint64_t mark = f.c->_queued_total;
    assert_int_equal(rp_net_marks_end(&f.net, on_sample, NULL), 1);
    assert_true(rp_net_marks_busy(&f.net));
    size_t more;
    char *after = queue_links(&f, 16, sizes, 1, &more); /* queued after the mark */
    while (!f.c->_writing)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(samples, 0); /* the peer reads nothing: the mark is not passed */
    assert_int_equal(pthread_create(&f.th, NULL, read_all, &f.rd), 0);
    run_until(&f, &samples);
    assert_int_equal(samples, 1);
    assert_true(written_at_sample >= mark);
    assert_false(rp_net_marks_busy(&f.net));
    free(want);
    free(after);
    teardown(&f, 0);
    assert_int_equal(samples, 1);
}

static void test_mark_passes_on_close(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {65536};
    struct fixture f;
    setup(&f, 4096, 1, 0);
    samples = 0;
    sampled_conn = f.c;
    size_t total;
    char *want = queue_links(&f, 16, sizes, 1, &total);
    rp_net_marks_begin(&f.net);
    rp_net_conn_mark(f.c);
    rp_net_mark_hold(&f.net); /* a mark parked above net (a polling queue) */
    assert_int_equal(rp_net_marks_end(&f.net, on_sample, NULL), 1);
    while (!f.c->_writing)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    rp_net_conn_close(f.c);
    sampled_conn = NULL;
    run_until(&f, &f.closed);
    assert_int_equal(samples, 0); /* the held mark is still out */
    rp_net_mark_release(&f.net);
    assert_int_equal(samples, 1);
    free(want);
    teardown(&f, 1);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gather_taken_whole),
        cmocka_unit_test(test_gather_taken_whole_many_rounds),
        cmocka_unit_test(test_partial_writes),
        cmocka_unit_test(test_close_during_pending_write),
        cmocka_unit_test(test_peer_gone_during_pending_write),
        cmocka_unit_test(test_mark_passes_when_written),
        cmocka_unit_test(test_mark_passes_on_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
