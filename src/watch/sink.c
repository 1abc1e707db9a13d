/* SPDX-License-Identifier: MIT */
/* The network sink of `ragpulse watch --hub URL` (watch/sink.h): every event is appended to
 * the outbox (outbox.c) and sent from there, in order, in batches, through the HTTP client
 * (http/client.h: POST /api/events, one request at a time, Bearer token when given). The
 * read offset moves only after the hub answered 200, so events survive a hub outage and a
 * restart of the watcher, bounded by --queue-max.
 *
 * Exactly once: each event carries meta {"producer": KEY, "seq": N} (KEY is random per
 * queue, N counts up). When the outcome of a POST is unknown (the request went out, no
 * answer came) or the watcher starts with events left in the queue, the sink first reads the
 * pipeline's newest events back (GET /api/events) and skips those whose seq the hub already
 * stored; a POST batch is stored all or nothing and in order, so the highest seq seen is
 * enough. The queue file is appended on the loop thread (small writes to the page cache, no
 * fsync per event). */
#include "watch/sink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/err.h"
#include "util/list.h"
#include "util/log.h"
#include "watch/watch_int.h"

#define BACKOFF_MIN_MS     200
#define BACKOFF_MAX_MS     5000
#define REQUEST_TIMEOUT_MS 15000
#define DRAIN_MS           3000

static void kick(net_sink_t *s);
static void finish(net_sink_t *s);

/* Saves the outbox state. A failure (logged by outbox.c) is safe to go on from: the file
 * on disk keeps an older offset, so a restart reads the hub's log back (verify) before it
 * sends again, and nothing is stored twice. */
static void save_state(net_sink_t *s)
{
    (void)rp_watch_outbox_save(s);
}

/* ---- sending ---- */

/* One of the sink's three handles (retry, drain, the client) is closed. */
static void handle_gone(net_sink_t *s)
{
    if (--s->handles == 0 && s->finished && s->done) {
        void (*done)(void *) = s->done;
        s->done = NULL;
        done(s->done_ud);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    handle_gone(h->data);
}

static void on_client_closed(rp_http_client_t *c)
{
    handle_gone(rp_container_of(c, net_sink_t, http));
}

static void on_retry(uv_timer_t *t)
{
    net_sink_t *s = t->data;
    s->in_backoff = 0;
    kick(s);
}

static void backoff(net_sink_t *s, uint32_t at_least_ms)
{
    if (s->closing) {
        finish(s);
        return;
    }
    s->down = 1;
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (s->backoff_ms > BACKOFF_MAX_MS)
        s->backoff_ms = BACKOFF_MAX_MS;
    uint32_t ms = s->backoff_ms > at_least_ms ? s->backoff_ms : at_least_ms;
    s->in_backoff = 1;
    if (uv_timer_start(&s->retry, on_retry, ms, 0) < 0)
        s->in_backoff = 0; /* only while closing: nothing is retried then */
}

/* The request failed without an answer. If the POST went out whole, the hub may have stored
 * it: read its log back before sending again. */
static void request_failed(net_sink_t *s, int rc, int sent)
{
    if (!s->down)
        RP_LOG_WARN("watch", "hub %s:%s unreachable (%s): events wait in %s", s->url.host,
                    s->url.port,
                    rc == UV_ETIMEDOUT                ? "no answer in 15 s"
                    : rc == RP_EPROTO || rc == UV_EOF ? "no complete HTTP answer"
                    : rc == RP_ETOOBIG                ? "answer too large"
                                                      : uv_strerror(rc),
                    s->qpath);
    if (s->mode == REQ_POST && sent)
        s->verify = 1;
    s->mode = REQ_NONE;
    backoff(s, 0);
}

static void on_post_answer(net_sink_t *s, int status, json_t *body, uint32_t retry_after_ms)
{
    if (status == 200) {
        s->roff = s->batch_end;
        s->roff_seq += s->batch_n;
        s->batch_limit = SINK_BATCH_EVENTS;
        if (s->down)
            RP_LOG_INFO("watch", "hub %s:%s reachable again", s->url.host, s->url.port);
        s->down = 0;
        s->auth_warned = 0;
        s->backoff_ms = 0;
        rp_watch_outbox_compact(s);
        save_state(s);
        return;
    }
    const char *msg = json_string_value(json_object_get(body, "error"));
    if (status == 400) {
        json_t *idx = json_object_get(body, "index");
        json_int_t k = json_is_integer(idx) ? json_integer_value(idx) : 0;
        if (k <= 0 || (size_t)k >= s->batch_n) {
            const char *field = json_string_value(json_object_get(body, "field"));
            const char *rule = json_string_value(json_object_get(body, "rule"));
            RP_LOG_ERROR("watch", "the hub refused an event (dropped): %s %s %s", msg ? msg : "",
                         field ? field : "", rule ? rule : "");
            rp_watch_outbox_skip(s, 1);
            save_state(s);
        } else {
            s->batch_limit = (size_t)k; /* send the good ones before it first */
        }
        return;
    }
    if (status == 413) {
        s->batch_limit = s->batch_n > 1 ? s->batch_n / 2 : 1;
        return;
    }
    if (status == 503 && json_is_array(json_object_get(body, "ids"))) {
        size_t i, stored = 0;
        json_t *v;
        json_array_foreach(json_object_get(body, "ids"), i, v)
        {
            if (!json_is_integer(v))
                break;
            stored++;
        }
        rp_watch_outbox_skip(s, stored);
        save_state(s);
    }
    if ((status == 401 || status == 403) && !s->auth_warned) {
        s->auth_warned = 1;
        RP_LOG_ERROR("watch",
                     "the hub refused the producer token (HTTP %d: %s): give a producer token with"
                     " --token or RAGPULSE_TOKEN; events wait in %s",
                     status, msg ? msg : "", s->qpath);
    } else if (status != 401 && status != 403) {
        RP_LOG_WARN("watch", "the hub answered HTTP %d (%s): retrying", status, msg ? msg : "");
    }
    backoff(s, retry_after_ms);
}

static void on_verify_answer(net_sink_t *s, int status, json_t *body)
{
    if (status != 200) {
        /* A producer token may not read the log: send again, a duplicate is possible. */
        RP_LOG_WARN("watch",
                    "cannot read the hub's log back (HTTP %d) to rule out duplicates; resending",
                    status);
        s->verify = 0;
        return;
    }
    long long max = -1;
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(body, "events"), i, ev)
    {
        json_t *meta = json_object_get(ev, "meta");
        const char *k = json_string_value(json_object_get(meta, "producer"));
        json_t *q = json_object_get(meta, "seq");
        if (k && strcmp(k, s->key) == 0 && json_is_integer(q) && json_integer_value(q) > max)
            max = json_integer_value(q);
    }
    s->verify = 0;
    if (max >= 0 && (uint64_t)max >= s->roff_seq) {
        size_t n = (size_t)((uint64_t)max - s->roff_seq + 1);
        RP_LOG_INFO(
            "watch",
            "the hub already has %zu queued event(s) (its answer was lost): not resending them", n);
        rp_watch_outbox_skip(s, n);
        rp_watch_outbox_compact(s);
        save_state(s);
    }
}

static void on_answer(rp_http_client_t *c, int rc, const rp_http_answer_t *a, void *ud)
{
    net_sink_t *s = ud;
    (void)c;
    rp_buf_reset(&s->req);
    if (s->finished)
        return;
    if (rc < 0) {
        request_failed(s, rc, a->sent);
        return;
    }
    json_t *body = json_loadb(a->body, a->body_len, 0, NULL);
    enum req_mode mode = s->mode;
    s->mode = REQ_NONE;
    if (mode == REQ_POST)
        on_post_answer(s, a->status, body, a->retry_after_ms);
    else
        on_verify_answer(s, a->status, body);
    json_decref(body);
    kick(s);
}

/* Starts the request of `mode` with path and the body in s->req (a POST). */
static void request_start(net_sink_t *s, enum req_mode mode, const char *path)
{
    char headers[16384];
    snprintf(headers, sizeof(headers), "%s%s", s->auth ? s->auth : "", s->agent);
    s->mode = mode;
    int rc = rp_http_client_request(&s->http, mode == REQ_POST ? "POST" : "GET", path, headers,
                                    mode == REQ_POST ? s->req.data : NULL, s->req.len,
                                    REQUEST_TIMEOUT_MS, on_answer, s);
    if (rc < 0)
        request_failed(s, rc, 0);
}

static int post_batch(net_sink_t *s)
{
    size_t want = (size_t)(s->qsize - s->roff);
    if (want > SINK_BATCH_BYTES)
        want = SINK_BATCH_BYTES;
    char *buf = rp_malloc(want + 1);
    if (buf == NULL)
        return UV_ENOMEM;
    ssize_t r = pread(s->qfd, buf, want, (off_t)s->roff);
    if (r <= 0) {
        rp_free(buf);
        return UV_EIO;
    }
    size_t n = (size_t)r, i = 0, count = 0;
    rp_buf_t *body = &s->req;
    rp_buf_reset(body);
    rp_buf_append_char(body, '[');
    while (i < n && count < s->batch_limit) {
        char *nl = memchr(buf + i, '\n', n - i);
        if (nl == NULL)
            break;
        if (count)
            rp_buf_append_char(body, ',');
        rp_buf_append(body, buf + i, (size_t)(nl - (buf + i)));
        i = (size_t)(nl - buf) + 1;
        count++;
    }
    rp_free(buf);
    if (count == 0) {
        /* One record larger than a batch: the hub would refuse it anyway. */
        RP_LOG_ERROR("watch", "queue %s: a record larger than %d bytes (dropped)", s->qpath,
                     SINK_BATCH_BYTES);
        rp_watch_outbox_skip(s, 1);
        rp_buf_reset(body);
        return 1;
    }
    rp_buf_append_char(body, ']');
    s->batch_end = s->roff + i;
    s->batch_n = count;
    request_start(s, REQ_POST, "/api/events");
    return 0;
}

static void kick(net_sink_t *s)
{
    if (s->finished || s->mode != REQ_NONE || s->in_backoff || rp_http_client_busy(&s->http))
        return;
    if (s->roff >= s->qsize) {
        if (s->closing)
            finish(s);
        return;
    }
    if (s->verify) {
        char pid[400];
        size_t o = 0;
        for (const char *c = s->pipeline_id; *c && o + 4 < sizeof(pid); c++) {
            if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-", *c))
                pid[o++] = *c;
            else
                o += (size_t)snprintf(pid + o, sizeof(pid) - o, "%%%02X", (unsigned char)*c);
        }
        pid[o] = '\0';
        char path[480];
        snprintf(path, sizeof(path), "/api/events?pipeline=%s&limit=1000", pid);
        request_start(s, REQ_VERIFY, path);
        return;
    }
    int rc;
    while ((rc = post_batch(s)) == 1)
        if (s->roff >= s->qsize)
            return;
    if (rc < 0) {
        RP_LOG_ERROR("watch", "cannot read the queue %s: %s", s->qpath, strerror(errno));
        backoff(s, 0);
    }
}

static int net_emit(rp_watch_sink_t *base, json_t *ev)
{
    net_sink_t *s = (net_sink_t *)base;
    const char *type = json_string_value(json_object_get(ev, "type"));
    /* A heartbeat says "alive now": queued behind an outage it would say nothing true. */
    if (type && strcmp(type, "heartbeat") == 0 && s->down) {
        json_decref(ev);
        return 0;
    }
    json_t *meta = json_object_get(ev, "meta");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(ev, "meta", meta);
    }
    json_object_set_new(meta, "producer", json_string(s->key));
    json_object_set_new(meta, "seq", json_integer((json_int_t)s->next_seq));
    char *line = json_dumps(ev, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(ev);
    if (line == NULL)
        return UV_ENOMEM;
    size_t n = strlen(line);
    line[n] = '\n'; /* json_dumps leaves room for the NUL: write it as the line end */
    if (s->qsize - s->roff + n + 1 > s->max_bytes) {
        if (s->dropped++ % 1000 == 0)
            RP_LOG_ERROR("watch", "queue %s is full (--queue-max %zu bytes): %llu event(s) dropped",
                         s->qpath, s->max_bytes, (unsigned long long)s->dropped);
        free(line);
        return RP_ETOOBIG;
    }
    ssize_t w = write(s->qfd, line, n + 1);
    free(line);
    if (w != (ssize_t)(n + 1)) {
        RP_LOG_ERROR("watch", "cannot append to the queue %s: %s", s->qpath,
                     w < 0 ? strerror(errno) : "short write");
        if (w > 0 && ftruncate(s->qfd, (off_t)s->qsize) < 0)
            RP_LOG_ERROR("watch", "queue %s: ftruncate: %s", s->qpath, strerror(errno));
        return UV_EIO;
    }
    s->qsize += n + 1;
    if (s->roff + n + 1 == s->qsize)
        s->roff_seq = s->next_seq;
    s->next_seq++;
    kick(s);
    return 0;
}

static void finish(net_sink_t *s)
{
    if (s->finished)
        return;
    s->finished = 1;
    save_state(s);
    if (s->roff < s->qsize)
        RP_LOG_INFO("watch", "%llu bytes of events stay in %s for the next run",
                    (unsigned long long)(s->qsize - s->roff), s->qpath);
    uv_close((uv_handle_t *)&s->retry, on_handle_closed);
    uv_close((uv_handle_t *)&s->drain, on_handle_closed);
    rp_http_client_close(&s->http, on_client_closed); /* abandons a request in flight */
    s->mode = REQ_NONE;
}

static void on_drain_timeout(uv_timer_t *t)
{
    finish(t->data);
}

static void net_close(rp_watch_sink_t *base, void (*done)(void *ud), void *ud)
{
    net_sink_t *s = (net_sink_t *)base;
    s->closing = 1;
    s->done = done;
    s->done_ud = ud;
    /* Deliver what is pending for a moment if the hub is there; the rest stays queued. */
    if (s->roff >= s->qsize || s->down ||
        uv_timer_start(&s->drain, on_drain_timeout, DRAIN_MS, 0) < 0) {
        finish(s);
        return;
    }
    kick(s);
}

static const rp_watch_sink_ops_t net_ops = {net_emit, net_close};

/* A constructor that failed after its handles were made frees the sink once they close. */
static void undo_gone(net_sink_t *s)
{
    if (--s->handles == 0)
        rp_watch_net_sink_free(&s->base);
}

static void on_undo_closed(uv_handle_t *h)
{
    undo_gone(h->data);
}

static void on_undo_client_closed(rp_http_client_t *c)
{
    undo_gone(rp_container_of(c, net_sink_t, http));
}

rp_watch_sink_t *rp_watch_net_sink_new(uv_loop_t *loop, const char *hub_url, const char *token,
                                       const char *pipeline_id, const char *queue_path,
                                       size_t max_bytes, const char *user_agent, char *err,
                                       size_t errlen)
{
    rp_url_t url;
    const char *why = NULL;
    if (rp_url_parse(&url, hub_url, &why) < 0) {
        snprintf(err, errlen, "--hub: %s: %s", why, hub_url);
        return NULL;
    }
    net_sink_t *s = rp_calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base.ops = &net_ops;
    s->loop = loop;
    s->url = url;
    s->qfd = -1;
    s->max_bytes = max_bytes;
    s->batch_limit = SINK_BATCH_EVENTS;
    if (token && *token) {
        size_t tl = strlen(token);
        if (strpbrk(token, "\r\n") || tl > 8192) {
            snprintf(err, errlen, "--token: not a token");
            rp_free(s);
            return NULL;
        }
        s->auth = rp_malloc(tl + 32);
        if (s->auth == NULL) {
            rp_free(s);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        snprintf(s->auth, tl + 32, "Authorization: Bearer %s\r\n", token);
    }
    size_t al = strlen(user_agent) + 16;
    s->agent = strpbrk(user_agent, "\r\n") || al > 512 ? NULL : rp_malloc(al);
    if (s->agent == NULL) {
        snprintf(err, errlen, "out of memory");
        rp_watch_net_sink_free(&s->base);
        return NULL;
    }
    snprintf(s->agent, al, "User-Agent: %s\r\n", user_agent);
    snprintf(s->pipeline_id, sizeof(s->pipeline_id), "%s", pipeline_id);
    snprintf(s->qpath, sizeof(s->qpath), "%s", queue_path);
    snprintf(s->spath, sizeof(s->spath), "%s.state", queue_path);
    rp_buf_init(&s->req, SINK_BATCH_BYTES + 16384);
    if (rp_watch_outbox_open(s, err, errlen) < 0) {
        rp_watch_net_sink_free(&s->base);
        return NULL;
    }
    int rc = rp_http_client_init(&s->http, loop, &s->url, 8u << 20);
    if (rc < 0)
        goto undo_sink;
    rc = uv_timer_init(loop, &s->retry);
    if (rc < 0)
        goto undo_client;
    rc = uv_timer_init(loop, &s->drain);
    if (rc < 0)
        goto undo_retry;
    s->retry.data = s->drain.data = s;
    s->handles = 3;
    return &s->base;
    /* From here the handles are the loop's: the sink is freed in their last close callback. */
undo_retry:
    s->retry.data = s;
    s->handles++;
    uv_close((uv_handle_t *)&s->retry, on_undo_closed);
undo_client:
    s->handles++;
    rp_http_client_close(&s->http, on_undo_client_closed);
    snprintf(err, errlen, "cannot start the network sink: %s", uv_strerror(rc));
    return NULL;
undo_sink:
    snprintf(err, errlen, "cannot start the network sink: %s",
             rc == RP_EINVAL ? "bad hub address" : uv_strerror(rc));
    rp_watch_net_sink_free(&s->base);
    return NULL;
}

void rp_watch_net_sink_free(rp_watch_sink_t *base)
{
    net_sink_t *s = (net_sink_t *)base;
    if (s == NULL)
        return;
    if (s->qfd >= 0)
        close(s->qfd);
    rp_buf_deinit(&s->req);
    rp_free(s->auth);
    rp_free(s->agent);
    rp_free(s);
}
