/* SPDX-License-Identifier: MIT */
/* hub/forward: the channels' forwarder against a libuv TCP server in this process, on the
 * same loop. The server answers each whole request as its mode says (echo the body as 200
 * JSON, 200 garbage, 500, never, close at once, or hold until the test releases), counts its
 * open connections and keeps the order bodies arrived in. Each test runs the loop until a
 * condition holds (with a deadline), closes everything and checks the loop is empty. The file
 * includes forward.c to read the retry counter. */
#include "unit.h"

#include <uv.h>

#include "hub/forward.c"

enum {
    M_ECHO,
    M_GARBAGE,
    M_FAIL500,
    M_NEVER,
    M_SLAM,
    M_HOLD,
    M_BIG
};

#define BIG ((1u << 20) + 1) /* a valid JSON number one byte over the answer limit */
static char big[BIG];

#define MAX_PEERS 64

typedef struct srv srv_t;

typedef struct peer {
    srv_t *s;
    uv_tcp_t tcp;
    uv_write_t wr;
    char req[8192];
    size_t req_len;
    char answer[9000];
    int answered;
    int held;
} peer_t;

struct srv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int mode;
    int port;
    int open;     /* connections accepted and not yet closed */
    int max_open; /* the most open at once */
    int accepted;
    peer_t *held[MAX_PEERS];
    int n_held;
    char order[64]; /* the first digit of each body, in arrival order */
    size_t n_order;
};

typedef struct got {
    int n;
    int results[64];
    int status[64];
    char body[64][64];
} got_t;

static int in_post;
static uv_loop_t *cur_loop; /* the test's loop, for wake() */

/* Something run_until may wait for happened: uv_stop makes this loop turn skip its blocking
 * poll (a callback from the timer phase would otherwise wait for the next I/O or timer). */
static void wake(void)
{
    uv_stop(cur_loop);
}

static void on_peer_closed(uv_handle_t *h)
{
    peer_t *p = h->data;
    srv_t *s = p->s;
    s->open--;
    for (int i = 0; i < s->n_held; i++)
        if (s->held[i] == p)
            s->held[i] = s->held[--s->n_held];
    free(p);
}

static void close_peer(peer_t *p)
{
    if (!uv_is_closing((uv_handle_t *)&p->tcp))
        uv_close((uv_handle_t *)&p->tcp, on_peer_closed);
}

static void on_peer_written(uv_write_t *w, int status)
{
    (void)status;
    close_peer(w->data);
}

static void on_peer_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    peer_t *p = h->data;
    (void)suggested;
    buf->base = p->req + p->req_len;
    buf->len = sizeof(p->req) - 1 - p->req_len;
}

static const char *body_of(const peer_t *p)
{
    const char *end = strstr(p->req, "\r\n\r\n");
    return end ? end + 4 : NULL;
}

static int request_complete(const peer_t *p)
{
    const char *b = body_of(p);
    if (b == NULL)
        return 0;
    const char *cl = strstr(p->req, "Content-Length: ");
    size_t want = cl && cl < b ? strtoul(cl + 16, NULL, 10) : 0;
    return p->req_len >= (size_t)(b - p->req) + want;
}

static void answer(peer_t *p, int status, const char *body)
{
    int n = snprintf(p->answer, sizeof(p->answer),
                     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s", status,
                     strlen(body), body);
    uv_buf_t b = uv_buf_init(p->answer, (unsigned)n);
    p->wr.data = p;
    p->answered = 1;
    assert_int_equal(uv_write(&p->wr, (uv_stream_t *)&p->tcp, &b, 1, on_peer_written), 0);
}

static void on_peer_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    peer_t *p = st->data;
    srv_t *s = p->s;
    (void)buf;
    if (nread < 0) {
        close_peer(p);
        return;
    }
    p->req_len += (size_t)nread;
    p->req[p->req_len] = '\0';
    if (p->answered || p->held || !request_complete(p))
        return;
    assert_non_null(strstr(p->req, "POST /forward/send HTTP/1.1\r\n"));
    assert_non_null(strstr(p->req, "Content-Type: application/json\r\n"));
    const char *b = body_of(p);
    const char *digit = strpbrk(b, "0123456789");
    if (digit && s->n_order < sizeof(s->order) - 1)
        s->order[s->n_order++] = *digit;
    switch (s->mode) {
    case M_ECHO:
        answer(p, 200, b);
        break;
    case M_GARBAGE:
        answer(p, 200, "this is not json");
        break;
    case M_FAIL500:
        answer(p, 500, "{\"oops\":1}");
        break;
    case M_BIG: {
        int n = snprintf(p->answer, sizeof(p->answer),
                         "HTTP/1.1 200 OK\r\nContent-Length: %u\r\nConnection: close\r\n\r\n", BIG);
        memset(big, '1', sizeof(big));
        uv_buf_t bufs[2] = {uv_buf_init(p->answer, (unsigned)n), uv_buf_init(big, BIG)};
        p->wr.data = p;
        p->answered = 1;
        assert_int_equal(uv_write(&p->wr, st, bufs, 2, on_peer_written), 0);
        break;
    }
    case M_HOLD:
        assert_true(s->n_held < MAX_PEERS);
        p->held = 1;
        s->held[s->n_held++] = p;
        wake();
        break;
    default: /* M_NEVER: the client's timeout ends it */
        break;
    }
}

static void on_srv_conn(uv_stream_t *l, int status)
{
    srv_t *s = l->data;
    assert_int_equal(status, 0);
    peer_t *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->s = s;
    assert_int_equal(uv_tcp_init(s->loop, &p->tcp), 0);
    p->tcp.data = p;
    s->open++;
    s->accepted++;
    if (s->open > s->max_open)
        s->max_open = s->open;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&p->tcp), 0);
    if (s->mode == M_SLAM) {
        close_peer(p);
        return;
    }
    assert_int_equal(uv_read_start((uv_stream_t *)&p->tcp, on_peer_alloc, on_peer_read), 0);
}

/* Binds 127.0.0.1:0 and returns the port; with `listen` off the socket is closed at once, so
 * the port refuses connections. */
static int bind_port(uv_loop_t *loop, uv_tcp_t *t, int listen, void *data)
{
    assert_int_equal(uv_tcp_init(loop, t), 0);
    t->data = data;
    struct sockaddr_in sa;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sa), 0);
    assert_int_equal(uv_tcp_bind(t, (struct sockaddr *)&sa, 0), 0);
    if (listen)
        assert_int_equal(uv_listen((uv_stream_t *)t, 64, on_srv_conn), 0);
    struct sockaddr_in got;
    int len = sizeof(got);
    assert_int_equal(uv_tcp_getsockname(t, (struct sockaddr *)&got, &len), 0);
    if (!listen)
        uv_close((uv_handle_t *)t, NULL);
    return ntohs(got.sin_port);
}

static void srv_start(srv_t *s, uv_loop_t *loop, int mode)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->mode = mode;
    s->port = bind_port(loop, &s->listener, 1, s);
}

static void srv_release(srv_t *s)
{
    for (int i = 0; i < s->n_held; i++)
        answer(s->held[i], 200, body_of(s->held[i]));
    s->n_held = 0;
}

static void on_result(void *ud, int result, int status, const char *body, size_t len)
{
    got_t *g = ud;
    assert_false(in_post); /* never inside rp_fwd_post */
    assert_true(g->n < 64);
    g->results[g->n] = result;
    g->status[g->n] = status;
    snprintf(g->body[g->n], sizeof(g->body[0]), "%.*s", (int)len, body);
    g->n++;
    wake();
}

static int post(rp_fwd_t *f, const srv_t *s, const char *body, uint32_t timeout_ms, got_t *g)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/forward/send", s->port);
    in_post = 1;
    int rc = rp_fwd_post(f, url, body, strlen(body), timeout_ms, on_result, g);
    in_post = 0;
    return rc;
}

static int expired;

static void on_deadline(uv_timer_t *t)
{
    (void)t;
    expired = 1;
}

/* Runs the loop until *n reaches want (or 5 s pass: then fails). */
static void run_until(uv_loop_t *loop, const int *n, int want)
{
    uv_timer_t deadline;
    expired = 0;
    cur_loop = loop;
    assert_int_equal(uv_timer_init(loop, &deadline), 0);
    assert_int_equal(uv_timer_start(&deadline, on_deadline, 5000, 0), 0);
    while (*n < want && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    assert_false(expired);
}

static int closed;

/* Runs the loop until nothing is left on it (a wake() may stop a turn early). */
static void drain(uv_loop_t *loop)
{
    int i = 0;
    while (uv_run(loop, UV_RUN_DEFAULT) != 0 && i < 100)
        i++;
    assert_int_equal(uv_run(loop, UV_RUN_NOWAIT), 0);
}

static void on_fwd_closed(rp_fwd_t *f)
{
    (void)f;
    closed++;
    wake();
}

/* Closes f and the server, and checks nothing is left on the loop. */
static void finish(uv_loop_t *loop, rp_fwd_t *f, srv_t *s)
{
    closed = 0;
    rp_fwd_close(f, on_fwd_closed);
    run_until(loop, &closed, 1);
    if (s) {
        srv_release(s);
        uv_close((uv_handle_t *)&s->listener, NULL);
    }
    drain(loop);
    assert_int_equal(closed, 1);
    if (s)
        assert_int_equal(s->open, 0);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void one_case(int mode, uint32_t timeout_ms, int want, int want_status,
                     const char *want_body)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    srv_t s;
    srv_start(&s, &loop, mode);
    rp_fwd_t *f = rp_fwd_new(&loop, 4, 16);
    assert_non_null(f);
    got_t g = {0};
    assert_int_equal(post(f, &s, "{\"n\":1}", timeout_ms, &g), 0);
    assert_int_equal(g.n, 0);
    run_until(&loop, &g.n, 1);
    assert_int_equal(g.results[0], want);
    assert_int_equal(g.status[0], want_status);
    assert_string_equal(g.body[0], want_body);
    assert_int_equal(rp_fwd_count(f, want), 1);
    assert_int_equal(f->retries, 0);
    assert_int_equal(rp_fwd_in_flight(f), 0);
    finish(&loop, f, &s);
}

static void json_answer_is_ok(void **state)
{
    (void)state;
    one_case(M_ECHO, 5000, RP_FWD_OK, 200, "{\"n\":1}");
}

static void non_json_2xx_is_garbage(void **state)
{
    (void)state;
    one_case(M_GARBAGE, 5000, RP_FWD_GARBAGE, 200, "this is not json");
}

static void status_500_is_error_with_status_and_body(void **state)
{
    (void)state;
    one_case(M_FAIL500, 5000, RP_FWD_ERROR, 500, "{\"oops\":1}");
}

static void no_answer_times_out(void **state)
{
    (void)state;
    one_case(M_NEVER, 200, RP_FWD_TIMEOUT, 0, "");
}

static void close_at_once_is_unavailable_without_retry(void **state)
{
    (void)state;
    one_case(M_SLAM, 5000, RP_FWD_UNAVAILABLE, 0, "");
}

static void answer_over_1_mib_is_garbage(void **state)
{
    (void)state;
    one_case(M_BIG, 5000, RP_FWD_GARBAGE, 0, "");
}

typedef struct closer {
    got_t g;
    rp_fwd_t *f;
} closer_t;

static void on_result_close(void *ud, int result, int status, const char *body, size_t len)
{
    closer_t *c = ud;
    on_result(&c->g, result, status, body, len);
    if (c->g.n == 1)
        rp_fwd_close(c->f, on_fwd_closed);
}

/* The lead closes the forwarder from anywhere, a result's callback included. */
static void close_from_a_callback_cancels_the_rest(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    srv_t s;
    srv_start(&s, &loop, M_ECHO);
    closer_t c = {0};
    c.f = rp_fwd_new(&loop, 1, 4);
    assert_non_null(c.f);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/forward/send", s.port);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rp_fwd_post(c.f, url, "{\"n\":0}", 7, 5000, on_result_close, &c), 0);
    closed = 0;
    run_until(&loop, &closed, 1);
    assert_int_equal(c.g.n, 3);
    assert_int_equal(c.g.results[0], RP_FWD_OK);
    assert_int_equal(c.g.results[1], RP_FWD_CANCELLED);
    assert_int_equal(c.g.results[2], RP_FWD_CANCELLED);
    uv_close((uv_handle_t *)&s.listener, NULL);
    drain(&loop);
    assert_int_equal(s.open, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void refused_port_is_retried_once_then_unavailable(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    srv_t s;
    memset(&s, 0, sizeof(s));
    uv_tcp_t t;
    s.port = bind_port(&loop, &t, 0, NULL);
    rp_fwd_t *f = rp_fwd_new(&loop, 2, 4);
    assert_non_null(f);
    got_t g = {0};
    assert_int_equal(post(f, &s, "{}", 5000, &g), 0);
    run_until(&loop, &g.n, 1);
    assert_int_equal(g.results[0], RP_FWD_UNAVAILABLE);
    assert_int_equal(f->retries, 1);
    assert_int_equal(rp_fwd_count(f, RP_FWD_UNAVAILABLE), 1);
    finish(&loop, f, NULL);
}

/* Held answers: the server keeps every request until released, so the number in flight is
 * what the forwarder allows. Each round waits until the bound is reached, checks that the held
 * requests are the next two in FIFO order (either may arrive first), then releases them. */
static void concurrency_is_bounded_and_starts_are_fifo(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    srv_t s;
    srv_start(&s, &loop, M_HOLD);
    rp_fwd_t *f = rp_fwd_new(&loop, 2, 16);
    assert_non_null(f);
    got_t g = {0};
    char body[16];
    for (int i = 0; i < 7; i++) {
        snprintf(body, sizeof(body), "{\"n\":%d}", i);
        assert_int_equal(post(f, &s, body, 5000, &g), 0);
    }
    assert_int_equal(rp_fwd_in_flight(f), 2);
    assert_int_equal(rp_fwd_waiting(f), 5);
    for (int done = 0; done < 7;) {
        int want = 7 - done < 2 ? 7 - done : 2;
        run_until(&loop, &s.n_held, want);
        assert_true(s.max_open <= 2);
        assert_int_equal((int)s.n_order, done + want);
        char lo = s.order[done], hi = s.order[done + want - 1];
        if (lo > hi) {
            char t = lo;
            lo = hi;
            hi = t;
        }
        assert_int_equal(lo, '0' + done);
        assert_int_equal(hi, '0' + done + want - 1);
        srv_release(&s);
        done += want;
        run_until(&loop, &g.n, done);
    }
    assert_int_equal(s.max_open, 2);
    assert_int_equal(s.accepted, 7);
    assert_int_equal(f->clients, 2);
    for (int i = 0; i < 7; i++)
        assert_int_equal(g.results[i], RP_FWD_OK);
    assert_int_equal(rp_fwd_count(f, RP_FWD_OK), 7);
    assert_int_equal(rp_fwd_waiting(f), 0);
    finish(&loop, f, &s);
}

/* One at a time: the server sees the bodies, and the callbacks run, in the order posted. */
static void requests_run_in_fifo_order(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    srv_t s;
    srv_start(&s, &loop, M_ECHO);
    rp_fwd_t *f = rp_fwd_new(&loop, 1, 16);
    assert_non_null(f);
    got_t g = {0};
    char body[16];
    for (int i = 0; i < 6; i++) {
        snprintf(body, sizeof(body), "{\"n\":%d}", i);
        assert_int_equal(post(f, &s, body, 5000, &g), 0);
    }
    assert_int_equal(rp_fwd_waiting(f), 5);
    run_until(&loop, &g.n, 6);
    assert_string_equal(s.order, "012345");
    for (int i = 0; i < 6; i++) {
        snprintf(body, sizeof(body), "{\"n\":%d}", i);
        assert_int_equal(g.results[i], RP_FWD_OK);
        assert_string_equal(g.body[i], body);
    }
    assert_int_equal(s.max_open, 1);
    assert_int_equal(f->clients, 1); /* one client, reused from the free list */
    finish(&loop, f, &s);
}

static void past_max_queue_is_busy_and_close_cancels_the_rest(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    srv_t s;
    srv_start(&s, &loop, M_HOLD);
    rp_fwd_t *f = rp_fwd_new(&loop, 1, 2);
    assert_non_null(f);
    got_t g = {0};
    assert_int_equal(post(f, &s, "{\"n\":0}", 5000, &g), 0);
    assert_int_equal(post(f, &s, "{\"n\":1}", 5000, &g), 0);
    assert_int_equal(post(f, &s, "{\"n\":2}", 5000, &g), 0);
    assert_int_equal(post(f, &s, "{\"n\":3}", 5000, &g), RP_EREFUSED);
    assert_int_equal(rp_fwd_count(f, RP_FWD_BUSY), 1);
    assert_int_equal(rp_fwd_waiting(f), 2);
    run_until(&loop, &s.n_held, 1); /* the first is in flight at the server */
    assert_int_equal(rp_fwd_in_flight(f), 1);
    closed = 0;
    rp_fwd_close(f, on_fwd_closed);
    assert_int_equal(g.n, 0); /* cancellations come from the loop, not from inside close */
    run_until(&loop, &g.n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(g.results[i], RP_FWD_CANCELLED);
    run_until(&loop, &closed, 1);
    srv_release(&s);
    uv_close((uv_handle_t *)&s.listener, NULL);
    drain(&loop);
    assert_int_equal(s.open, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void bad_url_is_einval_and_names_are_stable(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    rp_fwd_t *f = rp_fwd_new(&loop, 1, 1);
    assert_non_null(f);
    got_t g = {0};
    assert_int_equal(rp_fwd_post(f, "ftp://x/y", "{}", 2, 100, on_result, &g), RP_EINVAL);
    assert_int_equal(rp_fwd_post(f, "http://", "{}", 2, 100, on_result, &g), RP_EINVAL);
    const char *names[] = {"ok", "error", "garbage", "timeout", "unavailable", "busy", "cancelled"};
    for (int i = 0; i < RP_FWD_COUNT; i++)
        assert_string_equal(rp_fwd_result_name(i), names[i]);
    assert_string_equal(rp_fwd_result_name(RP_FWD_COUNT), "?");
    finish(&loop, f, NULL);
    assert_int_equal(g.n, 0);
}

/* Fails allocation 1, 2, ... until a post and its answer go through; each run ends cleanly. */
static void out_of_memory_fails_cleanly(void **state)
{
    (void)state;
    for (unsigned long n = 1;; n++) {
        uv_loop_t loop;
        assert_int_equal(uv_loop_init(&loop), 0);
        srv_t s;
        srv_start(&s, &loop, M_ECHO);
        rp_alloc_fail_at(n);
        rp_fwd_t *f = rp_fwd_new(&loop, 1, 1);
        got_t g = {0};
        int rc = f ? post(f, &s, "{\"n\":5}", 5000, &g) : UV_ENOMEM;
        if (rc == 0)
            run_until(&loop, &g.n, 1);
        int failed = rp_alloc_failed();
        rp_alloc_fail_at(0);
        if (f) {
            finish(&loop, f, &s);
        } else {
            uv_close((uv_handle_t *)&s.listener, NULL);
            drain(&loop);
            assert_int_equal(uv_loop_close(&loop), 0);
        }
        if (rc == 0)
            assert_true(g.results[0] == RP_FWD_OK || (failed && g.results[0] != RP_FWD_OK));
        else
            assert_int_equal(rc, UV_ENOMEM);
        if (!failed) {
            assert_int_equal(rc, 0);
            assert_int_equal(g.results[0], RP_FWD_OK);
            break;
        }
        assert_true(n < 100);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_answer_is_ok),
        cmocka_unit_test(non_json_2xx_is_garbage),
        cmocka_unit_test(status_500_is_error_with_status_and_body),
        cmocka_unit_test(no_answer_times_out),
        cmocka_unit_test(close_at_once_is_unavailable_without_retry),
        cmocka_unit_test(answer_over_1_mib_is_garbage),
        cmocka_unit_test(close_from_a_callback_cancels_the_rest),
        cmocka_unit_test(refused_port_is_retried_once_then_unavailable),
        cmocka_unit_test(concurrency_is_bounded_and_starts_are_fifo),
        cmocka_unit_test(requests_run_in_fifo_order),
        cmocka_unit_test(past_max_queue_is_busy_and_close_cancels_the_rest),
        cmocka_unit_test(bad_url_is_einval_and_names_are_stable),
        cmocka_unit_test(out_of_memory_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
