/* SPDX-License-Identifier: MIT */
/* http/http: the real HTTP connection code driven without a socket. A private loop gets an
 * rp_net_t; rp_net_conn_new() gives a conn whose TCP handle is initialised but unconnected,
 * rp_http_conn_start() makes it an HTTP conn, and bytes go in through c->ops->on_read as the
 * loop would deliver them. The loop never runs while a case looks, so responses stay queued
 * in c->out; at the end the conn is closed and the loop run so everything is freed (LSan
 * checks). Requests are fed whole, split in two at every offset, and byte by byte. */
#include "unit.h"

#include <uv.h>

#include "http/http.h"
#include "net/net.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/log.h"

enum {
    MODE_RESPOND,
    MODE_HOLD,
    MODE_UPGRADE,
    MODE_RESPOND_CLOSE
};

#define MAX_REQS 8

struct rec {
    int method;
    char path[512];
    char query[512];
    char headers[20000]; /* "name: value\n" per header, in order */
    size_t nheaders;
    char body[4096];
    size_t body_len;
    int keep_alive;
    int upgrade;
};

struct fx {
    uv_loop_t loop;
    rp_net_t net;
    rp_http_server_t srv;
    rp_net_conn_t *c;
    int mode;
    struct rec reqs[MAX_REQS];
    size_t nreqs;
    rp_http_conn_t *held;
    /* After an upgrade. */
    char up_in[1024];
    size_t up_len;
    int up_closed;
};

static void copy_span(char *dst, size_t cap, const char *s, size_t n)
{
    assert_true(n < cap);
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static void up_on_read(rp_net_conn_t *c, char *data, size_t len)
{
    struct fx *f = c->data;
    assert_true(f->up_len + len <= sizeof(f->up_in));
    memcpy(f->up_in + f->up_len, data, len);
    f->up_len += len;
}

static void up_on_eof(rp_net_conn_t *c, int err)
{
    (void)err;
    rp_net_conn_close(c);
}

static void up_on_close(rp_net_conn_t *c)
{
    struct fx *f = c->data;
    f->up_closed++;
}

static const rp_net_conn_ops_t up_ops = {
    .on_read = up_on_read,
    .on_eof = up_on_eof,
    .on_close = up_on_close,
};

static void on_request(rp_http_conn_t *hc, rp_http_request_t *req, void *ud)
{
    struct fx *f = ud;
    assert_true(f->nreqs < MAX_REQS);
    struct rec *r = &f->reqs[f->nreqs++];
    memset(r, 0, sizeof(*r));
    r->method = req->method;
    copy_span(r->path, sizeof(r->path), req->path, req->path_len);
    copy_span(r->query, sizeof(r->query), req->query, req->query_len);
    size_t off = 0;
    size_t nh = rp_http_header_count(req);
    for (size_t i = 0; i < nh; i++) {
        const char *hn, *hv;
        size_t hnl, hvl;
        assert_int_equal(rp_http_header_at(req, i, &hn, &hnl, &hv, &hvl), 0);
        int n = snprintf(r->headers + off, sizeof(r->headers) - off, "%.*s: %.*s\n", (int)hnl, hn,
                         (int)hvl, hv);
        assert_true(n > 0 && (size_t)n < sizeof(r->headers) - off);
        off += (size_t)n;
    }
    r->nheaders = nh;
    copy_span(r->body, sizeof(r->body), req->body, req->body_len);
    assert_int_equal(req->body[req->body_len], '\0'); /* documented: NUL-terminated */
    r->body_len = req->body_len;
    r->keep_alive = req->keep_alive;
    r->upgrade = req->upgrade;

    char body[600];
    int n = snprintf(body, sizeof(body), "%s %s?%s %zu", http_method_str(req->method), r->path,
                     r->query, req->body_len);
    switch (f->mode) {
    case MODE_RESPOND:
        rp_http_respond(hc, 200, "text/plain", "", body, (size_t)n);
        break;
    case MODE_RESPOND_CLOSE:
        rp_http_respond(hc, 400, "text/plain", "X-Why: test\r\n", body, (size_t)n);
        break;
    case MODE_HOLD:
        f->held = hc;
        break;
    case MODE_UPGRADE: {
        static const char resp[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                   "Connection: Upgrade\r\n\r\n";
        assert_int_equal(rp_net_conn_write(hc->conn, resp, sizeof(resp) - 1), 0);
        rp_http_upgrade(hc, &up_ops, f);
        break;
    }
    }
}

static struct fx *fx_new(size_t max_header, size_t max_body)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(rp_net_init(&f->net, &f->loop, 1 << 20), 0);
    f->srv.net = &f->net;
    f->srv.max_header = max_header;
    f->srv.max_body = max_body;
    f->srv.on_request = on_request;
    f->srv.ud = f;
    return f;
}

/* A fresh HTTP conn; forgets earlier requests. */
static void fx_conn(struct fx *f, int mode)
{
    f->c = rp_net_conn_new(&f->net);
    assert_non_null(f->c);
    assert_int_equal(rp_http_conn_start(&f->srv, f->c), 0);
    f->mode = mode;
    f->nreqs = 0;
    f->held = NULL;
    f->up_len = 0;
    f->up_closed = 0;
}

/* Delivers data as the loop's read callback would: a mutable buffer, valid during the call,
 * nothing once the conn is closing. */
static void fx_feed(struct fx *f, const char *data, size_t len)
{
    if (f->c->closing || len == 0)
        return;
    char *b = dup_exact(data, len);
    f->c->ops->on_read(f->c, b, len);
    free(b);
}

/* Copies what is queued on the conn into out (NUL-terminated); returns its length. */
static size_t fx_output(struct fx *f, char *out, size_t cap)
{
    size_t n = 0;
    for (uint32_t i = 0; i < f->c->out.count; i++) {
        const rp_net_link_t *l = rp_net_queue_at(&f->c->out, i);
        assert_true(n + l->len < cap);
        memcpy(out + n, l->sb->data + l->off, l->len);
        n += l->len;
    }
    out[n] = '\0';
    return n;
}

static void fx_close_conn(struct fx *f)
{
    rp_net_conn_close(f->c);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f->net.nconns, 0);
    f->c = NULL;
}

static void fx_free(struct fx *f)
{
    rp_net_deinit(&f->net);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int group_setup(void **state)
{
    (void)state;
    rp_log_level = RP_LOG_OFF; /* refused requests log at info: keep test output clean */
    return 0;
}

/* ---- parsing and dispatch ---------------------------------------------------------------- */

static const char get_req[] = "GET /socket.io/?EIO=4&transport=polling&t=N8hyd6w HTTP/1.1\r\n"
                              "Host: localhost:3000\r\n"
                              "Origin: http://example.com\r\n"
                              "X-Empty:\r\n"
                              "Accept:   */*  \r\n"
                              "\r\n";

static void parses_get_path_query_and_headers(void **state)
{
    (void)state;
    struct fx *f = fx_new(16384, 1 << 16);
    fx_conn(f, MODE_RESPOND);
    fx_feed(f, get_req, sizeof(get_req) - 1);
    assert_int_equal(f->nreqs, 1);
    struct rec *r = &f->reqs[0];
    assert_int_equal(r->method, HTTP_GET);
    assert_string_equal(r->path, "/socket.io/");
    assert_string_equal(r->query, "EIO=4&transport=polling&t=N8hyd6w");
    assert_int_equal(r->nheaders, 4);
    assert_string_equal(r->headers, "Host: localhost:3000\nOrigin: http://example.com\n"
                                    "X-Empty: \nAccept: */*  \n");
    assert_int_equal(r->body_len, 0);
    assert_int_equal(r->keep_alive, 1);
    assert_int_equal(r->upgrade, 0);
    char out[4096];
    size_t n = fx_output(f, out, sizeof(out));
    const char *want = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 51\r\n"
                       "Connection: keep-alive\r\n\r\n"
                       "GET /socket.io/?EIO=4&transport=polling&t=N8hyd6w 0";
    assert_span(out, n, want);
    assert_false(f->c->_close_when_flushed);
    assert_int_equal(f->srv.requests, 1);
    fx_close_conn(f);
    fx_free(f);
}

/* Real parsed requests for the request helpers: headers live as offsets into their conn's
 * header buffer, so each request is held on its own conn until parsed_free(). */
static struct fx *pf;
static rp_net_conn_t *pconns[64];
static size_t npconns;

static const rp_http_request_t *parse_request(const char *raw)
{
    if (pf == NULL)
        pf = fx_new(16384, 1024);
    fx_conn(pf, MODE_HOLD);
    fx_feed(pf, raw, strlen(raw));
    assert_non_null(pf->held);
    assert_true(npconns < ARRAY_LEN(pconns));
    pconns[npconns++] = pf->c;
    return &pf->held->req;
}

/* A GET holding one header (none when name is NULL). */
static const rp_http_request_t *request_with(const char *name, const char *value)
{
    char raw[2048];
    if (name)
        snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\n%s: %s\r\n\r\n", name, value);
    else
        snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\n\r\n");
    return parse_request(raw);
}

static void parsed_free(void)
{
    for (size_t i = 0; i < npconns; i++)
        rp_net_conn_close(pconns[i]);
    npconns = 0;
    if (pf) {
        assert_int_equal(uv_run(&pf->loop, UV_RUN_DEFAULT), 0);
        fx_free(pf);
        pf = NULL;
    }
}

static void header_lookup_is_case_insensitive(void **state)
{
    (void)state;
    const rp_http_request_t *req = parse_request("GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n"
                                                 "content-type: text/plain\r\n\r\n");
    size_t len;
    const char *v = rp_http_header(req, "host", &len);
    assert_non_null(v);
    assert_span(v, len, "a");
    v = rp_http_header(req, "CONTENT-TYPE", &len);
    assert_span(v, len, "text/plain");
    v = rp_http_header(req, "x-empty", &len);
    assert_non_null(v);
    assert_int_equal(len, 0);
    assert_null(rp_http_header(req, "hos", &len));
    assert_null(rp_http_header(req, "hosts", &len));
    /* In arrival order, by index. */
    assert_int_equal(rp_http_header_count(req), 3);
    const char *name, *value;
    size_t name_len, value_len;
    assert_int_equal(rp_http_header_at(req, 2, &name, &name_len, &value, &value_len), 0);
    assert_span(name, name_len, "content-type");
    assert_span(value, value_len, "text/plain");
    assert_int_equal(rp_http_header_at(req, 3, &name, &name_len, &value, &value_len), RP_ENOTFOUND);
    /* A request with no headers at all. */
    req = request_with(NULL, NULL);
    assert_int_equal(rp_http_header_count(req), 0);
    assert_null(rp_http_header(req, "host", &len));
    parsed_free();
}

static void path_without_query_has_empty_query(void **state)
{
    (void)state;
    struct fx *f = fx_new(16384, 1 << 16);
    fx_conn(f, MODE_RESPOND);
    static const char req[] = "GET / HTTP/1.1\r\n\r\nGET /x? HTTP/1.1\r\n\r\n"
                              "OPTIONS /a/b?c=%20d&e HTTP/1.1\r\n\r\n";
    fx_feed(f, req, sizeof(req) - 1);
    assert_int_equal(f->nreqs, 3);
    assert_string_equal(f->reqs[0].path, "/");
    assert_string_equal(f->reqs[0].query, "");
    assert_int_equal(f->reqs[0].nheaders, 0);
    assert_string_equal(f->reqs[1].path, "/x");
    assert_string_equal(f->reqs[1].query, "");
    assert_int_equal(f->reqs[2].method, HTTP_OPTIONS);
    assert_string_equal(f->reqs[2].path, "/a/b");
    assert_string_equal(f->reqs[2].query, "c=%20d&e");
    fx_close_conn(f);
    fx_free(f);
}

static void answers_pipelined_requests_in_order(void **state)
{
    (void)state;
    struct fx *f = fx_new(16384, 1 << 16);
    fx_conn(f, MODE_RESPOND);
    static const char req[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                              "POST /b?sid=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n40"
                              "GET /c HTTP/1.1\r\nHost: x\r\n\r\n";
    fx_feed(f, req, sizeof(req) - 1);
    assert_int_equal(f->nreqs, 3);
    assert_string_equal(f->reqs[0].path, "/a");
    assert_string_equal(f->reqs[1].path, "/b");
    assert_string_equal(f->reqs[1].body, "40");
    assert_string_equal(f->reqs[2].path, "/c");
    char out[4096];
    fx_output(f, out, sizeof(out));
    assert_int_equal(count_of(out, "HTTP/1.1 200 OK"), 3);
    const char *a = strstr(out, "GET /a? 0");
    const char *b = strstr(out, "POST /b?sid=1 2");
    const char *c = strstr(out, "GET /c? 0");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_true(a < b && b < c);
    fx_close_conn(f);
    fx_free(f);
}

static void delivers_post_body_by_length_and_chunked(void **state)
{
    (void)state;
    struct fx *f = fx_new(16384, 1 << 16);
    fx_conn(f, MODE_RESPOND);
    static const char req[] = "POST /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\n"
                              "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 15\r\n\r\n"
                              "4hello\x1e"
                              "4world\x1e"
                              "2"
                              "POST /chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
                              "POST /empty HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    fx_feed(f, req, sizeof(req) - 1);
    assert_int_equal(f->nreqs, 3);
    assert_int_equal(f->reqs[0].method, HTTP_POST);
    assert_int_equal(f->reqs[0].body_len, 15);
    assert_memory_equal(f->reqs[0].body,
                        "4hello\x1e"
                        "4world\x1e"
                        "2",
                        15);
    assert_string_equal(f->reqs[1].body, "hello world");
    assert_int_equal(f->reqs[2].body_len, 0);
    fx_close_conn(f);
    fx_free(f);
}

/* Everything a case observed, for comparing whole feeds with split ones. */
struct outcome {
    size_t nreqs;
    struct rec reqs[MAX_REQS];
    char out[16384];
    size_t out_len;
    int closing;
    int close_when_flushed;
    char up_in[1024];
    size_t up_len;
};

static void run_chunks(struct fx *f, int mode, const char *in, size_t n, const size_t *cuts,
                       size_t ncuts, struct outcome *o)
{
    fx_conn(f, mode);
    size_t start = 0;
    for (size_t i = 0; i < ncuts; i++) {
        fx_feed(f, in + start, cuts[i] - start);
        start = cuts[i];
    }
    assert_int_equal(start, n);
    memset(o, 0, sizeof(*o));
    o->nreqs = f->nreqs;
    memcpy(o->reqs, f->reqs, sizeof(o->reqs));
    o->out_len = fx_output(f, o->out, sizeof(o->out));
    o->closing = f->c->closing;
    o->close_when_flushed = f->c->_close_when_flushed;
    memcpy(o->up_in, f->up_in, f->up_len);
    o->up_len = f->up_len;
    fx_close_conn(f);
}

static void assert_same_outcome(const struct outcome *a, const struct outcome *b, const char *how)
{
    int same = a->nreqs == b->nreqs && a->out_len == b->out_len &&
               memcmp(a->out, b->out, a->out_len) == 0 && a->closing == b->closing &&
               a->close_when_flushed == b->close_when_flushed && a->up_len == b->up_len &&
               memcmp(a->up_in, b->up_in, a->up_len) == 0;
    for (size_t i = 0; same && i < a->nreqs; i++) {
        const struct rec *x = &a->reqs[i], *y = &b->reqs[i];
        same = x->method == y->method && strcmp(x->path, y->path) == 0 &&
               strcmp(x->query, y->query) == 0 && strcmp(x->headers, y->headers) == 0 &&
               x->body_len == y->body_len && memcmp(x->body, y->body, x->body_len) == 0 &&
               x->keep_alive == y->keep_alive && x->upgrade == y->upgrade;
    }
    if (!same) {
        print_error("%s: %zu requests, output:\n%.*s\n--- whole feed: %zu requests, output:\n"
                    "%.*s\n",
                    how, b->nreqs, (int)b->out_len, b->out, a->nreqs, (int)a->out_len, a->out);
        fail();
    }
}

/* Feeds in whole, then split in two at every offset (every `stride`-th for long inputs),
 * then byte by byte; every way must give the whole feed's outcome, returned in *whole. */
static void check_splits(struct fx *f, int mode, const char *in, size_t n, struct outcome *whole)
{
    struct outcome *o = malloc(sizeof(*o));
    assert_non_null(o);
    run_chunks(f, mode, in, n, &n, 1, whole);
    for (size_t k = 0; k <= n; k++) {
        if (n > 4096 && k > 256 && k + 256 < n && k % 509 != 0)
            continue;
        size_t cuts[2] = {k, n};
        run_chunks(f, mode, in, n, cuts, 2, o);
        char how[48];
        snprintf(how, sizeof(how), "split at %zu", k);
        assert_same_outcome(whole, o, how);
    }
    size_t *cuts = malloc(n * sizeof(*cuts));
    assert_non_null(cuts);
    for (size_t k = 0; k < n; k++)
        cuts[k] = k + 1;
    run_chunks(f, mode, in, n, cuts, n, o);
    assert_same_outcome(whole, o, "byte by byte");
    free(cuts);
    free(o);
}

static void request_split_at_every_offset_gives_same_result(void **state)
{
    (void)state;
    struct fx *f = fx_new(16384, 1 << 16);
    static const char req[] =
        "GET /socket.io/?EIO=4&transport=polling&t=N8hyd6w HTTP/1.1\r\n"
        "Host: localhost:3000\r\nOrigin: http://example.com\r\nX-Empty:\r\n\r\n"
        "POST /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\n"
        "Host: localhost:3000\r\nContent-Length: 15\r\n\r\n"
        "4hello\x1e"
        "4world\x1e"
        "2"
        "POST /chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        "GET /last HTTP/1.0\r\n\r\n";
    struct outcome *whole = malloc(sizeof(*whole));
    assert_non_null(whole);
    check_splits(f, MODE_RESPOND, req, sizeof(req) - 1, whole);
    assert_int_equal(whole->nreqs, 4);
    assert_string_equal(whole->reqs[1].body, "4hello\x1e"
                                             "4world\x1e"
                                             "2");
    assert_string_equal(whole->reqs[2].body, "hello world");
    assert_int_equal(whole->reqs[3].keep_alive, 0);
    assert_int_equal(count_of(whole->out, "HTTP/1.1 200 OK\r\n"), 4);
    /* HTTP/1.0 without keep-alive: the last response closes the connection. */
    assert_int_equal(count_of(whole->out, "Connection: close\r\n"), 1);
    assert_true(whole->close_when_flushed);
    free(whole);
    fx_free(f);
}

static void truncated_request_is_not_dispatched(void **state)
{
    (void)state;
    struct fx *f = fx_new(16384, 1 << 16);
    static const char req[] = "POST /p?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    for (size_t k = 0; k < sizeof(req) - 1; k++) {
        fx_conn(f, MODE_RESPOND);
        fx_feed(f, req, k);
        assert_int_equal(f->nreqs, 0);
        assert_int_equal(f->c->out.count, 0);
        assert_false(f->c->closing);
        /* The peer goes away mid-request. */
        f->c->ops->on_eof(f->c, UV_EOF);
        assert_true(f->c->closing);
        fx_close_conn(f);
    }
    fx_free(f);
}

static void garbage_gets_400_and_no_dispatch(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\x01\x02\x03\r\n\r\n",
        "HELLO\r\n\r\n",
        "GET / FOO\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ("GET / HTTP/1.1\r\nHost: a\x7f"
         "b\r\n\r\n"),
        "GET /a b HTTP/1.1\r\n\r\n",
    };
    struct fx *f = fx_new(16384, 1 << 16);
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct outcome *whole = malloc(sizeof(*whole));
        assert_non_null(whole);
        check_splits(f, MODE_RESPOND, bad[i], strlen(bad[i]), whole);
        if (whole->nreqs != 0 || !starts_with(whole->out, "HTTP/1.1 400 Bad Request\r\n")) {
            print_error("case %zu: %zu requests, output \"%s\"\n", i, whole->nreqs, whole->out);
            fail();
        }
        assert_non_null(strstr(whole->out, "Connection: close\r\n"));
        assert_non_null(
            strstr(whole->out,
                   "\r\n\r\n{\"code\":3,\"message\":\"Bad Request\",\"error\":\"Bad Request\"}"));
        assert_true(whole->close_when_flushed);
        free(whole);
    }
    assert_true(f->srv.bad_requests > 0);
    fx_free(f);
}

static void input_after_refusal_is_ignored(void **state)
{
    (void)state;
    struct fx *f = fx_new(16384, 1 << 16);
    fx_conn(f, MODE_RESPOND);
    fx_feed(f, "BAD\r\n\r\n", 7);
    char out1[1024], out2[1024];
    size_t n1 = fx_output(f, out1, sizeof(out1));
    /* The loop would stop reading; even if bytes arrive, nothing more happens. */
    f->c->ops->on_read(f->c, (char[]){"GET / HTTP/1.1\r\n\r\n"}, 18);
    size_t n2 = fx_output(f, out2, sizeof(out2));
    assert_int_equal(n1, n2);
    assert_int_equal(f->nreqs, 0);
    fx_close_conn(f);
    fx_free(f);
}

static char *header_request(const char *name, size_t value_len, size_t *len)
{
    size_t cap = value_len + 256;
    char *s = malloc(cap);
    assert_non_null(s);
    int h = snprintf(s, cap, "GET / HTTP/1.1\r\n%s: ", name);
    memset(s + h, 'v', value_len);
    size_t n = (size_t)h + value_len;
    memcpy(s + n, "\r\n\r\n", 4);
    *len = n + 4;
    return s;
}

static void header_block_over_max_header_gets_431(void **state)
{
    (void)state;
    struct fx *f = fx_new(16384, 1 << 16);
    struct outcome *whole = malloc(sizeof(*whole));
    assert_non_null(whole);
    /* One long header value. */
    size_t n;
    char *req = header_request("X-Long", 17000, &n);
    check_splits(f, MODE_RESPOND, req, n, whole);
    assert_int_equal(whole->nreqs, 0);
    assert_true(starts_with(whole->out, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    assert_true(whole->close_when_flushed);
    /* Refused before the header block ends. */
    fx_conn(f, MODE_RESPOND);
    fx_feed(f, req, 16500);
    char out[1024];
    fx_output(f, out, sizeof(out));
    assert_true(starts_with(out, "HTTP/1.1 431 "));
    fx_close_conn(f);
    free(req);
    /* Just under the limit is fine: head holds the URL and the header names and values. */
    req = header_request("X-Long", 16384 - 1 - 6, &n);
    fx_conn(f, MODE_RESPOND);
    fx_feed(f, req, n);
    assert_int_equal(f->nreqs, 1);
    fx_close_conn(f);
    free(req);
    /* A long URL. */
    char *url = malloc(20100);
    assert_non_null(url);
    memcpy(url, "GET /", 5);
    memset(url + 5, 'u', 20000);
    memcpy(url + 20005, " HTTP/1.1\r\n\r\n", 13);
    fx_conn(f, MODE_RESPOND);
    fx_feed(f, url, 20018);
    fx_output(f, out, sizeof(out));
    assert_true(starts_with(out, "HTTP/1.1 431 "));
    assert_int_equal(f->nreqs, 0);
    fx_close_conn(f);
    free(url);
    /* More headers than RP_HTTP_MAX_HEADERS. */
    char many[4096];
    size_t m = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= RP_HTTP_MAX_HEADERS; i++)
        m += (size_t)snprintf(many + m, sizeof(many) - m, "X-H%d: %d\r\n", i, i);
    m += (size_t)snprintf(many + m, sizeof(many) - m, "\r\n");
    check_splits(f, MODE_RESPOND, many, m, whole);
    assert_int_equal(whole->nreqs, 0);
    assert_true(starts_with(whole->out, "HTTP/1.1 431 "));
    free(whole);
    fx_free(f);
}

static void body_over_max_body_gets_413(void **state)
{
    (void)state;
    struct fx *f = fx_new(16384, 1024);
    struct outcome *whole = malloc(sizeof(*whole));
    assert_non_null(whole);
    /* Announced by Content-Length: refused before any body byte. */
    static const char cl[] = "POST /p HTTP/1.1\r\nContent-Length: 1025\r\n\r\n";
    check_splits(f, MODE_RESPOND, cl, sizeof(cl) - 1, whole);
    assert_int_equal(whole->nreqs, 0);
    assert_true(starts_with(whole->out, "HTTP/1.1 413 Payload Too Large\r\n"));
    assert_true(whole->close_when_flushed);
    static const char huge[] = "POST /p HTTP/1.1\r\nContent-Length: 18446744073709551614\r\n\r\n";
    check_splits(f, MODE_RESPOND, huge, sizeof(huge) - 1, whole);
    assert_true(starts_with(whole->out, "HTTP/1.1 413 ") ||
                starts_with(whole->out, "HTTP/1.1 400 "));
    assert_int_equal(whole->nreqs, 0);

    /* Chunked: discovered while the body arrives. */
    char body[2048];
    size_t n = (size_t)snprintf(body, sizeof(body),
                                "POST /p HTTP/1.1\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 5; i++) {
        n += (size_t)snprintf(body + n, sizeof(body) - n, "%x\r\n", 205);
        memset(body + n, 'a' + i, 205);
        n += 205;
        n += (size_t)snprintf(body + n, sizeof(body) - n, "\r\n");
    }
    n += (size_t)snprintf(body + n, sizeof(body) - n, "0\r\n\r\n");
    check_splits(f, MODE_RESPOND, body, n, whole); /* 1025 bytes */
    assert_int_equal(whole->nreqs, 0);
    assert_true(starts_with(whole->out, "HTTP/1.1 413 Payload Too Large\r\n"));

    /* Exactly max_body, both ways, is delivered. */
    char ok[2048];
    size_t m = (size_t)snprintf(ok, sizeof(ok), "POST /p HTTP/1.1\r\nContent-Length: 1024\r\n\r\n");
    memset(ok + m, 'z', 1024);
    fx_conn(f, MODE_RESPOND);
    fx_feed(f, ok, m + 1024);
    assert_int_equal(f->nreqs, 1);
    assert_int_equal(f->reqs[0].body_len, 1024);
    fx_close_conn(f);
    m = (size_t)snprintf(ok, sizeof(ok),
                         "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "400\r\n");
    memset(ok + m, 'z', 1024);
    m += 1024;
    m += (size_t)snprintf(ok + m, sizeof(ok) - m, "\r\n0\r\n\r\n");
    fx_conn(f, MODE_RESPOND);
    fx_feed(f, ok, m);
    assert_int_equal(f->nreqs, 1);
    assert_int_equal(f->reqs[0].body_len, 1024);
    fx_close_conn(f);
    free(whole);
    fx_free(f);
}

static void connection_close_is_honoured(void **state)
{
    (void)state;
    static const struct {
        const char *req;
        int keep;
    } cases[] = {
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1},
        {"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", 1},
    };
    struct fx *f = fx_new(16384, 1024);
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        fx_conn(f, MODE_RESPOND);
        fx_feed(f, cases[i].req, strlen(cases[i].req));
        assert_int_equal(f->nreqs, 1);
        assert_int_equal(f->reqs[0].keep_alive, cases[i].keep);
        char out[1024];
        fx_output(f, out, sizeof(out));
        assert_non_null(
            strstr(out, cases[i].keep ? "Connection: keep-alive\r\n" : "Connection: close\r\n"));
        assert_int_equal(f->c->_close_when_flushed, !cases[i].keep);
        fx_close_conn(f);
    }
    /* A request after a closing one is never parsed. */
    fx_conn(f, MODE_RESPOND);
    static const char two[] = "GET /1 HTTP/1.1\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\n\r\n";
    fx_feed(f, two, sizeof(two) - 1);
    assert_int_equal(f->nreqs, 1);
    fx_close_conn(f);
    fx_free(f);
}

static void held_request_delays_the_next_pipelined_one(void **state)
{
    (void)state;
    struct fx *f = fx_new(16384, 1024);
    fx_conn(f, MODE_HOLD);
    static const char two[] = "GET /poll HTTP/1.1\r\n\r\nPOST /send HTTP/1.1\r\n"
                              "Content-Length: 2\r\n\r\n40";
    fx_feed(f, two, 30);
    fx_feed(f, two + 30, sizeof(two) - 1 - 30);
    assert_int_equal(f->nreqs, 1);
    assert_non_null(f->held);
    assert_int_equal(f->c->out.count, 0);
    /* More bytes while held just wait. */
    fx_feed(f, "GET /third HTTP/1.1\r\n\r\n", 23);
    assert_int_equal(f->nreqs, 1);
    /* Answering the held request lets the next ones through, in order. */
    f->mode = MODE_RESPOND;
    assert_int_equal(rp_http_respond(f->held, 200, "text/plain", "", "6", 1), 0);
    assert_int_equal(f->nreqs, 3);
    assert_string_equal(f->reqs[1].path, "/send");
    assert_string_equal(f->reqs[1].body, "40");
    assert_string_equal(f->reqs[2].path, "/third");
    char out[4096];
    fx_output(f, out, sizeof(out));
    const char *a = strstr(out, "\r\n\r\n6");
    const char *b = strstr(out, "POST /send? 2");
    const char *c = strstr(out, "GET /third? 0");
    assert_true(a && b && c && a < b && b < c);
    fx_close_conn(f);
    fx_free(f);
}

static int aborted;

static void on_abort(rp_http_conn_t *hc)
{
    (void)hc;
    aborted++;
}

static void held_request_is_aborted_when_peer_leaves(void **state)
{
    (void)state;
    struct fx *f = fx_new(16384, 1024);
    fx_conn(f, MODE_HOLD);
    fx_feed(f, "GET /poll HTTP/1.1\r\n\r\n", 22);
    assert_non_null(f->held);
    f->held->on_abort = on_abort;
    aborted = 0;
    f->c->ops->on_eof(f->c, UV_EOF);
    assert_int_equal(aborted, 1);
    fx_close_conn(f);
    assert_int_equal(aborted, 1);
    fx_free(f);
}

static void upgrade_hands_leftover_bytes_to_new_protocol(void **state)
{
    (void)state;
    struct fx *f = fx_new(16384, 1024);
    static const char req[] = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                              "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n"
                              "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    struct outcome *whole = malloc(sizeof(*whole));
    assert_non_null(whole);
    check_splits(f, MODE_UPGRADE, req, sizeof(req) - 1, whole);
    assert_int_equal(whole->nreqs, 1);
    assert_int_equal(whole->reqs[0].upgrade, 1);
    assert_true(starts_with(whole->out, "HTTP/1.1 101 Switching Protocols\r\n"));
    assert_int_equal(whole->up_len, 11);
    assert_memory_equal(whole->up_in, "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
    assert_false(whole->closing);
    free(whole);
    /* The new protocol's on_close runs when the conn closes, and hc is already gone. */
    fx_conn(f, MODE_UPGRADE);
    fx_feed(f, req, sizeof(req) - 1);
    assert_ptr_equal(f->c->ops, &up_ops);
    fx_feed(f, "more", 4);
    assert_int_equal(f->up_len, 15);
    fx_close_conn(f);
    assert_int_equal(f->up_closed, 1);
    fx_free(f);
}

static void refused_upgrade_closes_after_response(void **state)
{
    (void)state;
    struct fx *f = fx_new(16384, 1024);
    fx_conn(f, MODE_RESPOND_CLOSE);
    static const char req[] = "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                              "\x81\x85";
    fx_feed(f, req, sizeof(req) - 1);
    assert_int_equal(f->nreqs, 1);
    char out[1024];
    fx_output(f, out, sizeof(out));
    assert_true(starts_with(out, "HTTP/1.1 400 Bad Request\r\n"));
    assert_non_null(strstr(out, "Connection: close\r\n"));
    assert_true(f->c->_close_when_flushed || f->c->closing);
    fx_close_conn(f);
    fx_free(f);
}

static void expect_100_continue_is_answered(void **state)
{
    (void)state;
    struct fx *f = fx_new(16384, 1024);
    fx_conn(f, MODE_RESPOND);
    static const char head[] =
        "POST /p HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
    fx_feed(f, head, sizeof(head) - 1);
    char out[1024];
    size_t n = fx_output(f, out, sizeof(out));
    assert_span(out, n, "HTTP/1.1 100 Continue\r\n\r\n");
    assert_int_equal(f->nreqs, 0);
    fx_feed(f, "hello", 5);
    assert_int_equal(f->nreqs, 1);
    fx_output(f, out, sizeof(out));
    assert_true(starts_with(out, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"));
    fx_close_conn(f);
    fx_free(f);
}

static void respond_error_sends_engineio_json(void **state)
{
    (void)state;
    struct fx *f = fx_new(16384, 1024);
    fx_conn(f, MODE_HOLD);
    fx_feed(f, "GET / HTTP/1.1\r\n\r\n", 18);
    assert_int_equal(rp_http_respond_error(f->held, 400, 1, "Session ID unknown",
                                           "Access-Control-Allow-Origin: *\r\n"),
                     0);
    char out[1024];
    size_t n = fx_output(f, out, sizeof(out));
    assert_span(out, n,
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                "Content-Length: 41\r\nConnection: keep-alive\r\n"
                "Access-Control-Allow-Origin: *\r\n\r\n"
                "{\"code\":1,\"message\":\"Session ID unknown\"}");
    fx_close_conn(f);
    fx_free(f);
}

static void survives_allocation_failure_anywhere(void **state)
{
    (void)state;
    /* Fail allocation 1, 2, ... from rp_http_conn_start through two pipelined requests and
     * their responses; each run either serves them or closes cleanly, leaking nothing. */
    static const char req[] = "GET /a?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                              "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "5\r\nhello\r\n0\r\n\r\n";
    struct fx *f = fx_new(16384, 1024);
    for (size_t step = 1; step <= sizeof(req); step += 40) {
        for (unsigned long n = 1;; n++) {
            f->c = rp_net_conn_new(&f->net);
            assert_non_null(f->c);
            f->mode = MODE_RESPOND;
            f->nreqs = 0;
            rp_alloc_fail_at(n);
            int rc = rp_http_conn_start(&f->srv, f->c);
            if (rc == 0) {
                for (size_t off = 0; off < sizeof(req) - 1; off += step) {
                    size_t len = sizeof(req) - 1 - off < step ? sizeof(req) - 1 - off : step;
                    fx_feed(f, req + off, len);
                }
            } else {
                assert_int_equal(rc, UV_ENOMEM);
                assert_true(f->c->closing);
            }
            int failed = rp_alloc_failed();
            rp_alloc_fail_at(0);
            if (!failed) {
                assert_int_equal(f->nreqs, 2);
                char out[4096];
                fx_output(f, out, sizeof(out));
                assert_int_equal(count_of(out, "HTTP/1.1 200 OK\r\n"), 2);
            }
            fx_close_conn(f);
            if (!failed)
                break;
            assert_true(n < 200);
        }
    }
    fx_free(f);
}

/* ---- helpers on requests ------------------------------------------------------------------ */

static void header_has_token_matches_comma_separated_lists(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        const char *token;
        int want;
    } cases[] = {
        {"Upgrade", "upgrade", 1},
        {"keep-alive, Upgrade", "upgrade", 1},
        {"keep-alive,Upgrade", "Upgrade", 1},
        {"  Upgrade  ", "upgrade", 1},
        {"Upgrade\t, close", "close", 1},
        {"upgrade-insecure", "upgrade", 0},
        {"notupgrade", "upgrade", 0},
        {"up grade", "upgrade", 0},
        {"", "upgrade", 0},
        {",,,", "upgrade", 0},
        {"keep-alive", "keep", 0},
        {"100-continue", "100-continue", 1},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const rp_http_request_t *req = request_with("Connection", cases[i].value);
        if (rp_http_header_has_token(req, "connection", cases[i].token) != cases[i].want) {
            print_error("\"%s\" has \"%s\": expected %d\n", cases[i].value, cases[i].token,
                        cases[i].want);
            fail();
        }
    }
    assert_int_equal(rp_http_header_has_token(request_with(NULL, NULL), "connection", "upgrade"),
                     0);
    assert_int_equal(
        rp_http_header_has_token(request_with("Upgrade", "websocket"), "connection", "websocket"),
        0);
    parsed_free();
}

static void cors_matches_allow_list(void **state)
{
    (void)state;
    char out[1024];
    const rp_http_request_t *req = request_with("Origin", "http://b.example");
    /* CORS off, or no Origin: nothing written. */
    out[0] = '#';
    assert_int_equal(rp_http_cors(NULL, req, out, sizeof(out)), 0);
    assert_int_equal(out[0], '#');
    assert_int_equal(rp_http_cors("*", request_with("Host", "x"), out, sizeof(out)), 0);
    assert_int_equal(out[0], '#');
    /* Allowed. */
    static const char *const allow[] = {
        "*",
        "http://b.example",
        "http://a.example,http://b.example",
        "http://a.example, http://b.example ",
        " http://b.example , http://a.example",
        ",,http://b.example,",
        "HTTP://B.EXAMPLE",
        "http://a.example,*",
    };
    for (size_t i = 0; i < ARRAY_LEN(allow); i++) {
        memset(out, 0, sizeof(out));
        if (rp_http_cors(allow[i], req, out, sizeof(out)) != 1) {
            print_error("refused by \"%s\"\n", allow[i]);
            fail();
        }
        assert_string_equal(out, "Access-Control-Allow-Origin: http://b.example\r\n"
                                 "Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n");
    }
    /* Refused. */
    static const char *const deny[] = {
        "",
        "http://a.example",
        "http://b.exampl",
        "http://b.example.evil",
        "https://b.example",
        "http://b.example:80",
        "http://a.example,http://c.example",
        "**",
        "http://b.example/",
    };
    for (size_t i = 0; i < ARRAY_LEN(deny); i++) {
        out[0] = '#';
        if (rp_http_cors(deny[i], req, out, sizeof(out)) != RP_EREFUSED) {
            print_error("allowed by \"%s\"\n", deny[i]);
            fail();
        }
        assert_int_equal(out[0], '#');
    }
    /* A prefix of an allowed origin is not allowed. */
    assert_int_equal(
        rp_http_cors("http://b.example", request_with("Origin", "http://b.ex"), out, sizeof(out)),
        RP_EREFUSED);
    /* Overlong origins are refused even with "*". */
    char longo[600];
    memcpy(longo, "http://", 7);
    memset(longo + 7, 'o', sizeof(longo) - 8);
    longo[sizeof(longo) - 1] = '\0';
    assert_int_equal(rp_http_cors("*", request_with("Origin", longo), out, sizeof(out)),
                     RP_EREFUSED);
    /* The output is truncated, never overrun. */
    char small[20];
    assert_int_equal(rp_http_cors("*", req, small, sizeof(small)), 1);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    parsed_free();
}

/* A parsed GET with these Host and Origin headers (NULL: header absent). */
static const rp_http_request_t *request_from(const char *host, const char *origin)
{
    char raw[2048];
    snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\n%s%s%s%s%s%s\r\n", host ? "Host: " : "",
             host ? host : "", host ? "\r\n" : "", origin ? "Origin: " : "", origin ? origin : "",
             origin ? "\r\n" : "");
    return parse_request(raw);
}

static void origin_policy_allows_own_listed_and_absent_origins(void **state)
{
    (void)state;
    static const struct {
        const char *host, *origin, *list;
        int want;
    } cases[] = {
        /* No Origin: a non-browser client. */
        {"127.0.0.1:8103", NULL, NULL, 1},
        {NULL, NULL, NULL, 1},
        /* Our own origin: the Host's host and port, http or https, default ports filled in. */
        {"127.0.0.1:8103", "http://127.0.0.1:8103", NULL, 1},
        {"localhost:8103", "HTTP://LocalHost:8103", NULL, 1},
        {"hub.example", "https://hub.example", NULL, 1},
        {"hub.example:443", "https://hub.example", NULL, 1},
        {"hub.example", "https://hub.example:443", NULL, 1},
        {"hub.example", "http://hub.example", NULL, 1},
        {"hub.example:80", "http://hub.example", NULL, 1},
        {"[::1]:8103", "http://[::1]:8103", NULL, 1},
        /* Another origin. */
        {"127.0.0.1:8103", "http://127.0.0.2:9998", NULL, 0},
        {"127.0.0.1:8103", "http://127.0.0.1:8104", NULL, 0},
        {"127.0.0.1:8103", "http://127.0.0.1", NULL, 0},
        {"hub.example", "http://hub.example:443", NULL, 0},
        {"hub.example", "https://hub.example:80", NULL, 0},
        {"hub.example", "ws://hub.example", NULL, 0},
        {"hub.example", "null", NULL, 0},
        {"hub.example", "", NULL, 0},
        {"hub.example", "http://hub.example/", NULL, 0},
        {"hub.example", "http://hub.example.evil", NULL, 0},
        {"hub.example", "http://evil@hub.example", NULL, 0},
        {NULL, "http://hub.example", NULL, 0},
        {"hub.example:x", "http://hub.example", NULL, 0},
        {"[::1]:8103", "http://[::2]:8103", NULL, 0},
        /* Listed ones (and "*"), besides our own. */
        {"127.0.0.1:8103", "http://127.0.0.2:9998", "http://127.0.0.2:9998", 1},
        {"127.0.0.1:8103", "http://localhost:3000", "http://a.example, http://localhost:3000", 1},
        {"127.0.0.1:8103", "http://localhost:3001", "http://localhost:3000", 0},
        {"127.0.0.1:8103", "null", "*", 1},
        {"127.0.0.1:8103", "http://127.0.0.1:8103", "http://localhost:3000", 1},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const rp_http_request_t *req = request_from(cases[i].host, cases[i].origin);
        if (rp_http_origin_allowed(cases[i].list, req) != cases[i].want) {
            print_error("Host %s, Origin %s, list %s: expected %d\n",
                        cases[i].host ? cases[i].host : "(none)",
                        cases[i].origin ? cases[i].origin : "(none)",
                        cases[i].list ? cases[i].list : "(none)", cases[i].want);
            fail();
        }
    }
    parsed_free();
}

static void origin_entries_must_be_origins(void **state)
{
    (void)state;
    static const char *const good[] = {"*", "http://localhost:3000", "https://dash.example",
                                       "http://[::1]:8103", "chrome-extension://abc"};
    static const char *const bad[] = {"",
                                      "**",
                                      "localhost:3000",
                                      "http://localhost:3000/",
                                      "http://",
                                      "http://a:0",
                                      "http://a:65536",
                                      "http://a b",
                                      "http://a/path",
                                      "://a"};
    for (size_t i = 0; i < ARRAY_LEN(good); i++)
        if (!rp_http_origin_entry_valid(good[i], strlen(good[i]))) {
            print_error("refused \"%s\"\n", good[i]);
            fail();
        }
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (rp_http_origin_entry_valid(bad[i], strlen(bad[i]))) {
            print_error("accepted \"%s\"\n", bad[i]);
            fail();
        }
}

static void refused_origin_gets_403_before_the_handler(void **state)
{
    (void)state;
    struct fx *f = fx_new(16384, 1 << 16);
    f->srv.origin_check = 1;
    f->srv.origins = "http://localhost:3000";
    static const char foreign[] = "POST /api/events HTTP/1.1\r\nHost: 127.0.0.1:8103\r\n"
                                  "Origin: http://127.0.0.2:9998\r\nContent-Type: text/plain\r\n"
                                  "Content-Length: 2\r\n\r\n{}";
    fx_conn(f, MODE_RESPOND);
    fx_feed(f, foreign, sizeof(foreign) - 1);
    assert_int_equal(f->nreqs, 0);
    char out[4096];
    fx_output(f, out, sizeof(out));
    assert_true(starts_with(out, "HTTP/1.1 403 Forbidden\r\n"));
    assert_non_null(strstr(out, "Origin http://127.0.0.2:9998 is not this server's own (Host "
                                "127.0.0.1:8103)"));
    assert_int_equal(f->srv.refused_origin[0], 1);
    fx_close_conn(f);
    /* A WebSocket upgrade is refused before it happens, and the connection closes. */
    static const char ws[] = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                             "Host: 127.0.0.1:8103\r\nOrigin: http://127.0.0.2:9998\r\n"
                             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n";
    fx_conn(f, MODE_UPGRADE);
    fx_feed(f, ws, sizeof(ws) - 1);
    assert_int_equal(f->nreqs, 0);
    fx_output(f, out, sizeof(out));
    assert_true(starts_with(out, "HTTP/1.1 403 Forbidden\r\n"));
    assert_non_null(strstr(out, "Connection: close\r\n"));
    assert_true(f->c->_close_when_flushed);
    assert_int_equal(f->srv.refused_origin[1], 1);
    fx_close_conn(f);
    /* Our own origin, a listed one and none reach the handler. */
    static const char *const ok[] = {
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:8103\r\nOrigin: http://127.0.0.1:8103\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:8103\r\nOrigin: http://localhost:3000\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:8103\r\n\r\n",
    };
    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        fx_conn(f, MODE_RESPOND);
        fx_feed(f, ok[i], strlen(ok[i]));
        assert_int_equal(f->nreqs, 1);
        fx_close_conn(f);
    }
    assert_int_equal(f->srv.refused_origin[0] + f->srv.refused_origin[1], 2);
    fx_free(f);
}

static void status_text_names_the_codes_we_send(void **state)
{
    (void)state;
    assert_string_equal(rp_http_status_text(200), "OK");
    assert_string_equal(rp_http_status_text(400), "Bad Request");
    assert_string_equal(rp_http_status_text(413), "Payload Too Large");
    assert_string_equal(rp_http_status_text(431), "Request Header Fields Too Large");
    assert_string_equal(rp_http_status_text(101), "Switching Protocols");
    assert_string_equal(rp_http_status_text(599), "Unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_get_path_query_and_headers),
        cmocka_unit_test(header_lookup_is_case_insensitive),
        cmocka_unit_test(path_without_query_has_empty_query),
        cmocka_unit_test(answers_pipelined_requests_in_order),
        cmocka_unit_test(delivers_post_body_by_length_and_chunked),
        cmocka_unit_test(request_split_at_every_offset_gives_same_result),
        cmocka_unit_test(truncated_request_is_not_dispatched),
        cmocka_unit_test(garbage_gets_400_and_no_dispatch),
        cmocka_unit_test(input_after_refusal_is_ignored),
        cmocka_unit_test(header_block_over_max_header_gets_431),
        cmocka_unit_test(body_over_max_body_gets_413),
        cmocka_unit_test(connection_close_is_honoured),
        cmocka_unit_test(held_request_delays_the_next_pipelined_one),
        cmocka_unit_test(held_request_is_aborted_when_peer_leaves),
        cmocka_unit_test(upgrade_hands_leftover_bytes_to_new_protocol),
        cmocka_unit_test(refused_upgrade_closes_after_response),
        cmocka_unit_test(expect_100_continue_is_answered),
        cmocka_unit_test(respond_error_sends_engineio_json),
        cmocka_unit_test(survives_allocation_failure_anywhere),
        cmocka_unit_test(header_has_token_matches_comma_separated_lists),
        cmocka_unit_test(cors_matches_allow_list),
        cmocka_unit_test(origin_policy_allows_own_listed_and_absent_origins),
        cmocka_unit_test(origin_entries_must_be_origins),
        cmocka_unit_test(refused_origin_gets_403_before_the_handler),
        cmocka_unit_test(status_text_names_the_codes_we_send),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
