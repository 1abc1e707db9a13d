/* SPDX-License-Identifier: MIT */
/* watch/sink + outbox: the network sink of `ragpulse watch --hub`. Events go into the outbox
 * file with meta {producer, seq} before anything is sent; a torn last line from a crash is
 * dropped on reopen and the seqs go on; a batch goes out as one POST under the hub URL's path
 * prefix, and once the hub answers 200 the outbox is empty. The hub is a libuv TCP server in
 * this process, on the sink's loop. */
#include "unit.h"

#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "watch/sink.h"

typedef struct hub {
    uv_tcp_t listener, peer;
    int peer_open, answered, port;
    uv_write_t wr;
    char req[65536]; /* the current connection's request */
    size_t req_len;
    int requests;       /* answered, in all */
    int bad_line;       /* a request line not under the prefix was seen */
    json_t *events;     /* every event posted, in order */
    char want_line[64]; /* the request line every request must start with */
    char agent[64];     /* the last request's User-Agent line */
} hub_t;

static const char ok_answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"ids\":[1,2]}";

static void on_hub_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    hub_t *s = h->data;
    (void)suggested;
    buf->base = s->req + s->req_len;
    buf->len = sizeof(s->req) - 1 - s->req_len;
}

static void on_peer_closed(uv_handle_t *h)
{
    ((hub_t *)h->data)->peer_open = 0;
}

static void on_hub_written(uv_write_t *w, int status)
{
    hub_t *s = w->data;
    (void)status;
    uv_close((uv_handle_t *)&s->peer, on_peer_closed);
}

static void on_hub_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    hub_t *s = st->data;
    (void)buf;
    if (nread < 0) {
        if (!uv_is_closing((uv_handle_t *)&s->peer))
            uv_close((uv_handle_t *)&s->peer, on_peer_closed);
        return;
    }
    s->req_len += (size_t)nread;
    s->req[s->req_len] = '\0';
    const char *end = strstr(s->req, "\r\n\r\n");
    const char *cl = strstr(s->req, "Content-Length: ");
    if (s->answered || end == NULL || cl == NULL ||
        s->req_len < (size_t)(end + 4 - s->req) + strtoul(cl + 16, NULL, 10))
        return;
    s->answered = 1;
    s->requests++;
    if (strncmp(s->req, s->want_line, strlen(s->want_line)) != 0)
        s->bad_line = 1;
    const char *ua = strstr(s->req, "User-Agent: ");
    snprintf(s->agent, sizeof(s->agent), "%.*s", ua ? (int)strcspn(ua, "\r") : 0, ua ? ua : "");
    json_t *body = json_loads(end + 4, 0, NULL);
    if (s->events && json_is_array(body))
        json_array_extend(s->events, body);
    json_decref(body);
    uv_buf_t b = uv_buf_init((char *)ok_answer, sizeof(ok_answer) - 1);
    s->wr.data = s;
    assert_int_equal(uv_write(&s->wr, st, &b, 1, on_hub_written), 0);
}

static void on_hub_conn(uv_stream_t *l, int status)
{
    hub_t *s = l->data;
    assert_int_equal(status, 0);
    assert_false(s->peer_open); /* the sink sends one request at a time */
    assert_int_equal(uv_tcp_init(l->loop, &s->peer), 0);
    s->peer.data = s;
    s->req_len = 0;
    s->req[0] = '\0';
    s->answered = 0;
    s->peer_open = 1;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&s->peer), 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&s->peer, on_hub_alloc, on_hub_read), 0);
}

static void hub_start(hub_t *s, uv_loop_t *loop, int listen)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(uv_tcp_init(loop, &s->listener), 0);
    s->listener.data = s;
    struct sockaddr_in sin;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sin), 0);
    assert_int_equal(uv_tcp_bind(&s->listener, (struct sockaddr *)&sin, 0), 0);
    int len = sizeof(sin);
    assert_int_equal(uv_tcp_getsockname(&s->listener, (struct sockaddr *)&sin, &len), 0);
    s->port = ntohs(sin.sin_port);
    if (listen)
        assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 8, on_hub_conn), 0);
}

/* A fresh directory for the outbox; path gets DIR/q. */
static void outbox_path(char *dir, size_t dlen, char *path, size_t plen)
{
    snprintf(dir, dlen, "/tmp/rp-test-sink-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, plen, "%s/q", dir);
}

static void cleanup_dir(const char *dir, const char *path)
{
    char st[4200];
    snprintf(st, sizeof(st), "%s.state", path);
    unlink(path);
    unlink(st);
    assert_int_equal(rmdir(dir), 0);
}

/* The outbox's lines, parsed. */
static json_t *read_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    json_t *a = json_array();
    char line[8192];
    while (fgets(line, sizeof(line), f)) {
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        json_array_append_new(a, j);
    }
    fclose(f);
    return a;
}

static json_t *event(const char *type)
{
    json_t *ev = json_pack("{s:s, s:s, s:s}", "type", type, "pipeline_id", "p", "pipeline_type",
                           "local_files");
    assert_non_null(ev);
    return ev;
}

static int done_called;

static void on_done(void *ud)
{
    (void)ud;
    done_called++;
}

/* Closes the sink and the hub, runs the loop empty, frees the sink. */
static void close_all(uv_loop_t *loop, rp_watch_sink_t *s, hub_t *hub)
{
    done_called = 0;
    s->ops->close(s, on_done, NULL);
    if (hub->peer_open && !uv_is_closing((uv_handle_t *)&hub->peer))
        uv_close((uv_handle_t *)&hub->peer, on_peer_closed);
    uv_close((uv_handle_t *)&hub->listener, NULL);
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(done_called, 1);
    rp_watch_net_sink_free(s);
    assert_int_equal(uv_loop_close(loop), 0);
}

static rp_watch_sink_t *sink_to(uv_loop_t *loop, int port, const char *prefix, const char *path)
{
    char url[128], err[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, prefix);
    rp_watch_sink_t *s =
        rp_watch_net_sink_new(loop, url, NULL, "p", path, 1 << 20, "test/1", err, sizeof(err));
    if (s == NULL)
        print_error("%s\n", err);
    assert_non_null(s);
    return s;
}

static void events_wait_in_the_outbox_with_producer_and_seq(void **state)
{
    (void)state;
    char dir[64], path[4096];
    outbox_path(dir, sizeof(dir), path, sizeof(path));
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    hub_t hub;
    hub_start(&hub, &loop, 0); /* bound, not listening: the hub is down */
    rp_watch_sink_t *s = sink_to(&loop, hub.port, "", path);
    for (int i = 0; i < 3; i++)
        assert_int_equal(s->ops->emit(s, event("pipeline:online")), 0);
    json_t *lines = read_lines(path);
    assert_int_equal(json_array_size(lines), 3);
    const char *key = json_string_value(
        json_object_get(json_object_get(json_array_get(lines, 0), "meta"), "producer"));
    assert_non_null(key);
    assert_int_equal(strlen(key), 16);
    for (size_t i = 0; i < 3; i++) {
        json_t *meta = json_object_get(json_array_get(lines, i), "meta");
        assert_int_equal(json_integer_value(json_object_get(meta, "seq")), (json_int_t)i);
        assert_string_equal(json_string_value(json_object_get(meta, "producer")), key);
    }
    json_decref(lines);
    close_all(&loop, s, &hub);
    /* What was not delivered stays for the next run. */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 0);
    cleanup_dir(dir, path);
}

static void torn_last_line_is_dropped_and_seqs_go_on(void **state)
{
    (void)state;
    char dir[64], path[4096];
    outbox_path(dir, sizeof(dir), path, sizeof(path));
    for (int run = 0; run < 2; run++) {
        uv_loop_t loop;
        assert_int_equal(uv_loop_init(&loop), 0);
        hub_t hub;
        hub_start(&hub, &loop, 0);
        rp_watch_sink_t *s = sink_to(&loop, hub.port, "", path);
        for (int i = 0; i < 2; i++)
            assert_int_equal(s->ops->emit(s, event("file:processing")), 0);
        close_all(&loop, s, &hub);
        if (run == 0) { /* a crash mid-append */
            int fd = open(path, O_WRONLY | O_APPEND);
            assert_true(fd >= 0);
            assert_int_equal(write(fd, "{\"type\":\"fi", 11), 11);
            close(fd);
        }
    }
    json_t *lines = read_lines(path); /* every line parses: the torn one is gone */
    assert_int_equal(json_array_size(lines), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *meta = json_object_get(json_array_get(lines, i), "meta");
        assert_int_equal(json_integer_value(json_object_get(meta, "seq")), (json_int_t)i);
    }
    json_decref(lines);
    cleanup_dir(dir, path);
}

static void a_batch_goes_out_under_the_prefix_and_empties_the_outbox(void **state)
{
    (void)state;
    char dir[64], path[4096];
    outbox_path(dir, sizeof(dir), path, sizeof(path));
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    hub_t hub;
    hub_start(&hub, &loop, 1);
    snprintf(hub.want_line, sizeof(hub.want_line), "POST /behind/proxy/api/events HTTP/1.1\r\n");
    hub.events = json_array();
    rp_watch_sink_t *s = sink_to(&loop, hub.port, "/behind/proxy/", path);
    assert_int_equal(s->ops->emit(s, event("pipeline:online")), 0);
    assert_int_equal(s->ops->emit(s, event("file:processing")), 0);
    assert_int_equal(s->ops->emit(s, event("file:completed")), 0);
    struct stat st;
    uint64_t deadline = uv_now(&loop) + 10000;
    while (uv_now(&loop) < deadline) {
        uv_run(&loop, UV_RUN_ONCE);
        if (json_array_size(hub.events) == 3 && stat(path, &st) == 0 && st.st_size == 0)
            break;
    }
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);                     /* delivered: nothing pending */
    assert_true(hub.requests >= 1 && hub.requests <= 3); /* in batches, one at a time */
    assert_false(hub.bad_line);
    assert_string_equal(hub.agent, "User-Agent: test/1");
    assert_int_equal(json_array_size(hub.events), 3);
    static const char *const types[] = {"pipeline:online", "file:processing", "file:completed"};
    for (size_t i = 0; i < 3; i++) {
        json_t *ev = json_array_get(hub.events, i);
        assert_string_equal(json_string_value(json_object_get(ev, "type")), types[i]);
        json_t *seq = json_object_get(json_object_get(ev, "meta"), "seq");
        assert_int_equal(json_integer_value(seq), (json_int_t)i);
    }
    json_decref(hub.events);
    close_all(&loop, s, &hub);
    cleanup_dir(dir, path);
}

static void bad_hub_urls_are_refused_with_the_reason(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char err[256];
    rp_watch_sink_t *s = rp_watch_net_sink_new(&loop, "https://hub", NULL, "p", "/nonexistent/q",
                                               1 << 20, "test/1", err, sizeof(err));
    assert_null(s);
    assert_non_null(strstr(err, "only http://"));
    s = rp_watch_net_sink_new(&loop, "http://[::1", NULL, "p", "/nonexistent/q", 1 << 20, "test/1",
                              err, sizeof(err));
    assert_null(s);
    assert_non_null(strstr(err, "']'"));
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(events_wait_in_the_outbox_with_producer_and_seq),
        cmocka_unit_test(torn_last_line_is_dropped_and_seqs_go_on),
        cmocka_unit_test(a_batch_goes_out_under_the_prefix_and_empties_the_outbox),
        cmocka_unit_test(bad_hub_urls_are_refused_with_the_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
