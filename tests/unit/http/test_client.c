/* SPDX-License-Identifier: MIT */
/* http/client: the producers' HTTP client against a small libuv TCP server in this process,
 * on the same loop. The server reads one request (head, then Content-Length bytes of body),
 * keeps its bytes for the test to check, and answers with the test's bytes (or never, for
 * the timeout case). Each test runs the loop until the client has called back, then closes
 * everything and checks that the loop has nothing left open. */
#include "unit.h"

#include <uv.h>

#include "http/client.h"
#include "util/err.h"
#include "util/url.h"

typedef struct srv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_tcp_t peer;
    int peer_open;
    uv_write_t wr;
    char req[65536];
    size_t req_len;
    const char *answer; /* NULL: never answers (a hub that hangs) */
    size_t answer_len;
    int answered;
    int port;
} srv_t;

typedef struct got {
    int done;
    int rc;
    int status;
    char body[4096];
    size_t body_len;
    uint32_t retry_after_ms;
    int sent;
} got_t;

static void on_srv_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    srv_t *s = h->data;
    (void)suggested;
    buf->base = s->req + s->req_len;
    buf->len = sizeof(s->req) - 1 - s->req_len;
}

static void on_peer_closed(uv_handle_t *h)
{
    srv_t *s = h->data;
    s->peer_open = 0;
}

static void close_peer(srv_t *s)
{
    if (s->peer_open && !uv_is_closing((uv_handle_t *)&s->peer))
        uv_close((uv_handle_t *)&s->peer, on_peer_closed);
}

static void on_srv_written(uv_write_t *w, int status)
{
    (void)status;
    close_peer(w->data);
}

/* True once req holds a whole request: the head and Content-Length bytes after it. */
static int request_complete(const srv_t *s)
{
    const char *end = strstr(s->req, "\r\n\r\n");
    if (end == NULL)
        return 0;
    const char *cl = strstr(s->req, "Content-Length: ");
    size_t want = cl && cl < end ? strtoul(cl + 16, NULL, 10) : 0;
    return s->req_len >= (size_t)(end + 4 - s->req) + want;
}

static void on_srv_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    srv_t *s = st->data;
    (void)buf;
    if (nread < 0) {
        close_peer(s);
        return;
    }
    s->req_len += (size_t)nread;
    s->req[s->req_len] = '\0';
    if (s->answered || !request_complete(s) || s->answer == NULL)
        return;
    s->answered = 1;
    uv_buf_t b = uv_buf_init((char *)s->answer, (unsigned)s->answer_len);
    s->wr.data = s;
    assert_int_equal(uv_write(&s->wr, st, &b, 1, on_srv_written), 0);
}

static void on_srv_conn(uv_stream_t *l, int status)
{
    srv_t *s = l->data;
    assert_int_equal(status, 0);
    assert_false(s->peer_open); /* one request per test */
    assert_int_equal(uv_tcp_init(s->loop, &s->peer), 0);
    s->peer.data = s;
    s->peer_open = 1;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&s->peer), 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&s->peer, on_srv_alloc, on_srv_read), 0);
}

/* Starts the server on ip (127.0.0.1 or ::1); 0, or the bind error (for ::1 when absent). */
static int srv_start(srv_t *s, uv_loop_t *loop, const char *ip, const char *answer)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->answer = answer;
    s->answer_len = answer ? strlen(answer) : 0;
    assert_int_equal(uv_tcp_init(loop, &s->listener), 0);
    s->listener.data = s;
    struct sockaddr_storage ss;
    if (strchr(ip, ':'))
        assert_int_equal(uv_ip6_addr(ip, 0, (struct sockaddr_in6 *)&ss), 0);
    else
        assert_int_equal(uv_ip4_addr(ip, 0, (struct sockaddr_in *)&ss), 0);
    int rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 8, on_srv_conn);
    if (rc < 0) {
        uv_close((uv_handle_t *)&s->listener, NULL);
        return rc;
    }
    int len = sizeof(ss);
    assert_int_equal(uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len), 0);
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

static void on_answer(rp_http_client_t *c, int rc, const rp_http_answer_t *a, void *ud)
{
    got_t *g = ud;
    assert_false(g->done);                /* once per request */
    assert_false(rp_http_client_busy(c)); /* idle when it calls back */
    g->done = 1;
    g->rc = rc;
    g->status = a->status;
    g->sent = a->sent;
    g->retry_after_ms = a->retry_after_ms;
    assert_true(a->body_len < sizeof(g->body));
    memcpy(g->body, a->body, a->body_len);
    g->body_len = a->body_len;
}

static int closed_count;

static void on_client_closed(rp_http_client_t *c)
{
    (void)c;
    closed_count++;
}

/* Runs the loop until the answer is in (bounded: a bug fails here, it does not hang). */
static void run_until_done(uv_loop_t *loop, got_t *g)
{
    uint64_t deadline = uv_now(loop) + 10000;
    while (!g->done && uv_now(loop) < deadline)
        uv_run(loop, UV_RUN_ONCE);
    assert_true(g->done);
}

/* Closes the client, the server and checks the loop is empty. */
static void teardown_all(uv_loop_t *loop, rp_http_client_t *c, srv_t *s)
{
    int before = closed_count;
    rp_http_client_close(c, on_client_closed);
    if (s) {
        close_peer(s);
        if (!uv_is_closing((uv_handle_t *)&s->listener))
            uv_close((uv_handle_t *)&s->listener, NULL);
    }
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(closed_count, before + 1);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* One request of `method` to http://URL_HOST:PORT/URL_TAIL (PORT: the server's) against a
 * server on ip answering `answer`. Returns 0, or the server's bind error. */
static int exchange(const char *ip, const char *url_host, const char *url_tail, const char *answer,
                    const char *method, const char *path, const char *body, uint64_t timeout_ms,
                    size_t max_body, srv_t *s, got_t *g)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    int rc = srv_start(s, &loop, ip, answer);
    if (rc < 0) {
        assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
        assert_int_equal(uv_loop_close(&loop), 0);
        return rc;
    }
    char url[256];
    snprintf(url, sizeof(url), "http://%s:%d%s", url_host, s->port, url_tail);
    rp_url_t u;
    assert_int_equal(rp_url_parse(&u, url, NULL), 0);
    rp_http_client_t c;
    assert_int_equal(rp_http_client_init(&c, &loop, &u, max_body), 0);
    memset(g, 0, sizeof(*g));
    assert_int_equal(rp_http_client_request(&c, method, path, "X-Test: 1\r\n", body,
                                            body ? strlen(body) : 0, timeout_ms, on_answer, g),
                     0);
    assert_false(g->done); /* never before the call returns */
    assert_true(rp_http_client_busy(&c));
    run_until_done(&loop, g);
    teardown_all(&loop, &c, s);
    return 0;
}

static void post_with_content_length_answer(void **state)
{
    (void)state;
    srv_t s;
    got_t g;
    assert_int_equal(exchange("127.0.0.1", "127.0.0.1", "",
                              "HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhello", "POST",
                              "/api/events", "[{\"a\":1}]", 5000, 1024, &s, &g),
                     0);
    assert_int_equal(g.rc, 0);
    assert_int_equal(g.status, 201);
    assert_span(g.body, g.body_len, "hello");
    assert_true(g.sent);
    char want[128];
    snprintf(want, sizeof(want), "POST /api/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Test: 1\r\n",
             s.port);
    assert_memory_equal(s.req, want, strlen(want));
    assert_non_null(strstr(s.req, "Content-Length: 9\r\n"));
    assert_non_null(strstr(s.req, "Connection: close\r\n"));
    assert_non_null(strstr(s.req, "\r\n\r\n[{\"a\":1}]"));
}

static void chunked_answer_is_reassembled(void **state)
{
    (void)state;
    srv_t s;
    got_t g;
    assert_int_equal(
        exchange(
            "127.0.0.1", "127.0.0.1", "",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n"
            "0\r\n\r\n",
            "GET", "/api/events?pipeline=p", NULL, 5000, 1024, &s, &g),
        0);
    assert_int_equal(g.rc, 0);
    assert_int_equal(g.status, 200);
    assert_span(g.body, g.body_len, "hello world");
    assert_null(strstr(s.req, "Content-Length")); /* no body, no length */
}

static void body_until_close_and_retry_after(void **state)
{
    (void)state;
    srv_t s;
    got_t g;
    assert_int_equal(exchange("127.0.0.1", "127.0.0.1", "",
                              "HTTP/1.0 503 Busy\r\nRetry-After: 7\r\n\r\n{\"x\":1}", "GET", "/",
                              NULL, 5000, 1024, &s, &g),
                     0);
    assert_int_equal(g.rc, 0);
    assert_int_equal(g.status, 503);
    assert_int_equal(g.retry_after_ms, 7000);
    assert_span(g.body, g.body_len, "{\"x\":1}");
}

static void path_prefix_goes_in_front(void **state)
{
    (void)state;
    srv_t s;
    got_t g;
    assert_int_equal(exchange("127.0.0.1", "127.0.0.1", "/behind/proxy/",
                              "HTTP/1.1 204 No Content\r\n\r\n", "GET", "/api/events?limit=1", NULL,
                              5000, 1024, &s, &g),
                     0);
    assert_int_equal(g.rc, 0);
    assert_int_equal(g.status, 204);
    assert_int_equal(g.body_len, 0);
    const char *want = "GET /behind/proxy/api/events?limit=1 HTTP/1.1\r\n";
    assert_memory_equal(s.req, want, strlen(want));
}

static void ipv6_literal(void **state)
{
    (void)state;
    srv_t s;
    got_t g;
    int rc = exchange("::1", "[::1]", "/v6", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                      "POST", "/api/events", "[]", 5000, 1024, &s, &g);
    if (rc < 0) {
        printf("ipv6_literal: skipped: cannot listen on ::1 here (%s)\n", uv_err_name(rc));
        skip();
    }
    assert_int_equal(g.rc, 0);
    assert_int_equal(g.status, 200);
    assert_span(g.body, g.body_len, "ok");
    char want[128];
    snprintf(want, sizeof(want), "POST /v6/api/events HTTP/1.1\r\nHost: [::1]:%d\r\n", s.port);
    assert_memory_equal(s.req, want, strlen(want));
}

/* Time is what this test checks: the server never answers, the client gives up at 200 ms. */
static void slow_server_times_out(void **state)
{
    (void)state;
    srv_t s;
    got_t g;
    assert_int_equal(exchange("127.0.0.1", "127.0.0.1", "", NULL, "POST", "/api/events", "[]", 200,
                              1024, &s, &g),
                     0);
    assert_int_equal(g.rc, UV_ETIMEDOUT);
    assert_int_equal(g.status, 0);
    assert_true(g.sent); /* the request went out: the caller must assume it may have been served */
    assert_true(s.req_len > 0);
}

static void garbage_is_eproto(void **state)
{
    (void)state;
    srv_t s;
    got_t g;
    assert_int_equal(exchange("127.0.0.1", "127.0.0.1", "", "SSH-2.0-OpenSSH_9.2\r\n\r\n", "GET",
                              "/", NULL, 5000, 1024, &s, &g),
                     0);
    assert_int_equal(g.rc, RP_EPROTO);
    assert_int_equal(g.status, 0);
}

static void truncated_answer_is_eproto(void **state)
{
    (void)state;
    srv_t s;
    got_t g;
    assert_int_equal(exchange("127.0.0.1", "127.0.0.1", "",
                              "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "GET", "/", NULL,
                              5000, 1024, &s, &g),
                     0);
    assert_int_equal(g.rc, RP_EPROTO);
}

static void body_over_limit_is_etoobig(void **state)
{
    (void)state;
    srv_t s;
    got_t g;
    assert_int_equal(exchange("127.0.0.1", "127.0.0.1", "",
                              "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", "GET", "/",
                              NULL, 5000, 4, &s, &g),
                     0);
    assert_int_equal(g.rc, RP_ETOOBIG);
}

static void refused_connection_is_reported(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    srv_t s;
    assert_int_equal(srv_start(&s, &loop, "127.0.0.1", NULL), 0);
    int port = s.port;
    uv_close((uv_handle_t *)&s.listener, NULL); /* nobody listens there any more */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    rp_url_t u;
    assert_int_equal(rp_url_parse(&u, url, NULL), 0);
    rp_http_client_t c;
    assert_int_equal(rp_http_client_init(&c, &loop, &u, 1024), 0);
    got_t g = {0};
    assert_int_equal(rp_http_client_request(&c, "GET", "/", NULL, NULL, 0, 5000, on_answer, &g), 0);
    run_until_done(&loop, &g);
    assert_int_equal(g.rc, UV_ECONNREFUSED);
    assert_false(g.sent);
    teardown_all(&loop, &c, NULL);
}

static void one_request_at_a_time_and_bad_lines_refused(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    srv_t s;
    assert_int_equal(
        srv_start(&s, &loop, "127.0.0.1", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);
    rp_url_t u;
    assert_int_equal(rp_url_parse(&u, url, NULL), 0);
    rp_http_client_t c;
    assert_int_equal(rp_http_client_init(&c, &loop, &u, 1024), 0);
    got_t g = {0}, g2 = {0};
    assert_int_equal(
        rp_http_client_request(&c, "GET", "/a\r\nX: y", NULL, NULL, 0, 0, on_answer, &g),
        RP_EINVAL);
    assert_int_equal(rp_http_client_request(&c, "GET", "/", "X: y", NULL, 0, 0, on_answer, &g),
                     RP_EINVAL);
    assert_int_equal(
        rp_http_client_request(&c, "GET", "/", "X: y\r\n\r\nZ: 1\r\n", NULL, 0, 0, on_answer, &g),
        RP_EINVAL);
    assert_false(rp_http_client_busy(&c));
    assert_int_equal(rp_http_client_request(&c, "GET", "/", NULL, NULL, 0, 5000, on_answer, &g), 0);
    assert_int_equal(rp_http_client_request(&c, "GET", "/", NULL, NULL, 0, 5000, on_answer, &g2),
                     RP_ESTATE);
    run_until_done(&loop, &g);
    assert_int_equal(g.rc, 0);
    assert_int_equal(g.status, 200);
    assert_false(g2.done);
    teardown_all(&loop, &c, &s);
}

static void close_in_flight_never_calls_back(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    srv_t s;
    assert_int_equal(srv_start(&s, &loop, "127.0.0.1", NULL), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);
    rp_url_t u;
    assert_int_equal(rp_url_parse(&u, url, NULL), 0);
    rp_http_client_t c;
    assert_int_equal(rp_http_client_init(&c, &loop, &u, 1024), 0);
    got_t g = {0};
    assert_int_equal(
        rp_http_client_request(&c, "POST", "/api/events", NULL, "[]", 2, 5000, on_answer, &g), 0);
    /* Until the server has the whole request: the client is mid-exchange when it closes. */
    uint64_t deadline = uv_now(&loop) + 5000;
    while (!request_complete(&s) && uv_now(&loop) < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(request_complete(&s));
    teardown_all(&loop, &c, &s);
    assert_false(g.done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(post_with_content_length_answer),
        cmocka_unit_test(chunked_answer_is_reassembled),
        cmocka_unit_test(body_until_close_and_retry_after),
        cmocka_unit_test(path_prefix_goes_in_front),
        cmocka_unit_test(ipv6_literal),
        cmocka_unit_test(slow_server_times_out),
        cmocka_unit_test(garbage_is_eproto),
        cmocka_unit_test(truncated_answer_is_eproto),
        cmocka_unit_test(body_over_limit_is_etoobig),
        cmocka_unit_test(refused_connection_is_reported),
        cmocka_unit_test(one_request_at_a_time_and_bad_lines_refused),
        cmocka_unit_test(close_in_flight_never_calls_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
