/* SPDX-License-Identifier: MIT */
/* The network sink of `ragpulse watch --hub URL`: every event is appended to an on-disk queue
 * (one compact JSON object per line) and sent from there, in order, in batches, by a
 * non-blocking HTTP/1.1 client on libuv (POST /api/events, one request at a time, Bearer
 * token when given). The read offset moves only after the hub answered 200, and is kept in
 * QUEUE.state (written to a temporary file and renamed), so events survive a hub outage and
 * a restart of the watcher, bounded by --queue-max.
 *
 * Exactly once: each event carries meta {"producer": KEY, "seq": N} (KEY is random per
 * queue, N counts up). When the outcome of a POST is unknown (the request went out, no
 * answer came) or the watcher starts with events left in the queue, the sink first reads the
 * pipeline's newest events back (GET /api/events) and skips those whose seq the hub already
 * stored; a POST batch is stored all or nothing and in order, so the highest seq seen is
 * enough. The queue file is appended on the loop thread (small writes to the page cache, no
 * fsync per event). */
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/watch_cli.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/rand.h"

#define BATCH_EVENTS 500
#define BATCH_BYTES (512 * 1024)
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 5000
#define REQUEST_TIMEOUT_MS 15000
#define DRAIN_MS 3000

enum req_mode { REQ_NONE, REQ_POST, REQ_VERIFY };

typedef struct net_sink {
    rp_watch_sink_t base;
    uv_loop_t *loop;
    char host[256];
    char port[8];
    char prefix[256];
    char *auth; /* "Authorization: Bearer ...\r\n" or NULL; owned */
    char pipeline_id[129];
    /* queue */
    char qpath[PATH_MAX];
    char spath[PATH_MAX + 8];
    int qfd;
    uint64_t qsize;    /* bytes in the file */
    uint64_t roff;     /* everything before is delivered */
    uint64_t roff_seq; /* seq of the record at roff */
    uint64_t next_seq;
    char key[24];
    size_t max_bytes;
    uint64_t dropped;
    /* sending */
    enum req_mode mode;
    int down;
    int verify; /* read the hub's log back before the next POST */
    uint64_t batch_end;
    size_t batch_n;
    size_t batch_limit;
    uint32_t backoff_ms;
    int in_backoff;
    int auth_warned;
    uv_timer_t retry;
    uv_timer_t timeout;
    uv_getaddrinfo_t gai;
    uv_connect_t conn;
    uv_tcp_t tcp;
    uv_write_t wr;
    int tcp_open;
    int sent_all;
    int req_failed; /* the current request already ended (error or timeout) */
    rp_buf_t req, resp;
    /* closing */
    int closing;
    int finished;
    void (*done)(void *ud);
    void *done_ud;
    uv_timer_t drain;
    int handles;
} net_sink_t;

static void kick(net_sink_t *s);
static void finish(net_sink_t *s);

/* ---- queue file ---- */

static int state_save(net_sink_t *s)
{
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof(tmp), "%s.tmp", s->spath);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "RPQ1 %s %llu %llu %llu\n", s->key, (unsigned long long)s->roff, (unsigned long long)s->roff_seq,
            (unsigned long long)s->next_seq);
    int bad = fflush(f) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, s->spath) < 0) {
        RP_LOG_ERROR("watch", "cannot save the queue state %s: %s", s->spath, strerror(errno));
        return -1;
    }
    return 0;
}

/* The seq in a record's meta, or -1. */
static long long record_seq(const char *line, size_t len)
{
    json_t *j = json_loadb(line, len, 0, NULL);
    json_t *seq = json_object_get(json_object_get(j, "meta"), "seq");
    long long v = json_is_integer(seq) ? json_integer_value(seq) : -1;
    json_decref(j);
    return v;
}

/* Reads the state file and checks the queue: drops a torn last line, finds the seqs. */
static int queue_open(net_sink_t *s, char *err, size_t errlen)
{
    s->qfd = open(s->qpath, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (s->qfd < 0) {
        snprintf(err, errlen, "cannot open the queue %s: %s", s->qpath, strerror(errno));
        return -1;
    }
    /* One writer per queue: two watchers appending and sending the same file would interleave. */
    if (flock(s->qfd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, errlen, "the queue %s is in use by another `ragpulse watch` (give this one --queue PATH)",
                 s->qpath);
        return -1;
    }
    struct stat st;
    fstat(s->qfd, &st);
    s->qsize = (uint64_t)st.st_size;
    FILE *f = fopen(s->spath, "r");
    unsigned long long roff = 0, rseq = 0, nseq = 0;
    char key[24] = "";
    if (f) {
        if (fscanf(f, "RPQ1 %20s %llu %llu %llu", key, &roff, &rseq, &nseq) != 4)
            key[0] = '\0';
        fclose(f);
    }
    if (key[0] == '\0') {
        if (rp_rand_id(s->key, 16) < 0) {
            snprintf(err, errlen, "no randomness for the queue key");
            return -1;
        }
        roff = rseq = nseq = 0;
    } else {
        snprintf(s->key, sizeof(s->key), "%s", key);
    }
    s->roff = roff <= s->qsize ? roff : s->qsize;
    s->roff_seq = rseq;
    s->next_seq = nseq;
    /* What is left: the first and the last record (seqs count up by one per record, so they
     * say it all), and a torn tail from a crash mid-append. Two bounded reads, not the file. */
    if (s->qsize > s->roff) {
        enum { WIN = 1 << 20 };
        char *buf = rp_malloc(WIN + 1);
        if (buf == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        uint64_t tail_off = s->qsize - s->roff > WIN ? s->qsize - WIN : s->roff;
        ssize_t got = pread(s->qfd, buf, (size_t)(s->qsize - tail_off), (off_t)tail_off);
        size_t end = got > 0 ? (size_t)got : 0;
        while (end > 0 && buf[end - 1] != '\n')
            end--;
        long long first = -1, last = -1;
        if (got > 0 && (size_t)got > end) {
            RP_LOG_WARN("watch", "queue %s: dropping a torn last record (%zu bytes)", s->qpath, (size_t)got - end);
            if (ftruncate(s->qfd, (off_t)(tail_off + end)) < 0)
                RP_LOG_ERROR("watch", "queue %s: ftruncate: %s", s->qpath, strerror(errno));
            s->qsize = tail_off + end;
        }
        if (end > 0) {
            size_t ls = end - 1;
            while (ls > 0 && buf[ls - 1] != '\n')
                ls--;
            last = record_seq(buf + ls, end - 1 - ls);
        }
        if (s->qsize > s->roff) {
            got = pread(s->qfd, buf, WIN < s->qsize - s->roff ? WIN : (size_t)(s->qsize - s->roff), (off_t)s->roff);
            char *nl = got > 0 ? memchr(buf, '\n', (size_t)got) : NULL;
            if (nl)
                first = record_seq(buf, (size_t)(nl - buf));
        }
        rp_free(buf);
        if (first >= 0)
            s->roff_seq = (uint64_t)first;
        if (last >= 0 && (uint64_t)last + 1 > s->next_seq)
            s->next_seq = (uint64_t)last + 1;
        if (s->qsize > s->roff) {
            /* A previous run may have been answered without saving the offset. */
            s->verify = 1;
            RP_LOG_INFO("watch", "queue %s: %llu bytes of events from an earlier run to deliver", s->qpath,
                        (unsigned long long)(s->qsize - s->roff));
        }
    }
    if (s->roff == s->qsize && s->qsize > 0) {
        if (ftruncate(s->qfd, 0) == 0)
            s->qsize = s->roff = 0;
    }
    if (s->roff == s->qsize)
        s->roff_seq = s->next_seq;
    return state_save(s);
}

/* Drops everything before roff from the file (when all of it is delivered, or when the
 * delivered part is large): the file stays bounded by what is pending. */
static void queue_compact(net_sink_t *s)
{
    if (s->roff == s->qsize) {
        if (ftruncate(s->qfd, 0) == 0)
            s->qsize = s->roff = 0;
        return;
    }
    if (s->roff < (uint64_t)s->max_bytes / 2)
        return;
    size_t n = (size_t)(s->qsize - s->roff);
    char *buf = rp_malloc(n);
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof(tmp), "%s.tmp", s->qpath);
    int fd = buf ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    if (fd < 0 || pread(s->qfd, buf, n, (off_t)s->roff) != (ssize_t)n || write(fd, buf, n) != (ssize_t)n) {
        if (fd >= 0)
            close(fd);
        rp_free(buf);
        return;
    }
    close(fd);
    rp_free(buf);
    uint64_t old_roff = s->roff;
    s->roff = 0;
    if (state_save(s) < 0 || rename(tmp, s->qpath) < 0) {
        s->roff = old_roff; /* nothing moved */
        state_save(s);
        return;
    }
    int nfd = open(s->qpath, O_RDWR | O_APPEND | O_CLOEXEC);
    if (nfd >= 0) {
        close(s->qfd);
        s->qfd = nfd;
    }
    s->qsize = n;
}

/* Advances past the first `count` records from roff. */
static void queue_skip(net_sink_t *s, size_t count)
{
    while (count > 0 && s->roff < s->qsize) {
        char buf[4096];
        size_t want = sizeof(buf);
        if (s->qsize - s->roff < want)
            want = (size_t)(s->qsize - s->roff);
        ssize_t r = pread(s->qfd, buf, want, (off_t)s->roff);
        if (r <= 0)
            break;
        char *nl = memchr(buf, '\n', (size_t)r);
        if (nl == NULL) {
            s->roff += (uint64_t)r; /* inside a long line: keep going */
            continue;
        }
        s->roff += (uint64_t)(nl - buf) + 1;
        s->roff_seq++;
        count--;
    }
}

/* ---- HTTP ---- */

static void on_handle_closed(uv_handle_t *h)
{
    net_sink_t *s = h->data;
    if (--s->handles == 0 && s->finished && s->done) {
        void (*done)(void *) = s->done;
        s->done = NULL;
        done(s->done_ud);
    }
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
    uv_timer_start(&s->retry, on_retry, ms, 0);
}

static void on_tcp_closed(uv_handle_t *h)
{
    net_sink_t *s = h->data;
    s->tcp_open = 0;
    on_handle_closed(h);
    if (!s->finished)
        kick(s);
}

/* Ends the current request: the connection closes, then kick() looks at the queue again. */
static void request_end(net_sink_t *s)
{
    uv_timer_stop(&s->timeout);
    s->mode = REQ_NONE;
    rp_buf_reset(&s->req);
    rp_buf_reset(&s->resp);
    if (s->tcp_open && !uv_is_closing((uv_handle_t *)&s->tcp))
        uv_close((uv_handle_t *)&s->tcp, on_tcp_closed);
}

/* The request failed without an answer. If the POST went out whole, the hub may have stored
 * it: read its log back before sending again. */
static void request_failed(net_sink_t *s, const char *why)
{
    if (s->req_failed)
        return;
    s->req_failed = 1;
    if (!s->down)
        RP_LOG_WARN("watch", "hub %s:%s unreachable (%s): events wait in %s", s->host, s->port, why, s->qpath);
    if (s->mode == REQ_POST && s->sent_all)
        s->verify = 1;
    request_end(s);
    backoff(s, 0);
}

static void on_post_answer(net_sink_t *s, int status, json_t *body, uint32_t retry_after_ms)
{
    if (status == 200) {
        s->roff = s->batch_end;
        s->roff_seq += s->batch_n;
        s->batch_limit = BATCH_EVENTS;
        if (s->down)
            RP_LOG_INFO("watch", "hub %s:%s reachable again", s->host, s->port);
        s->down = 0;
        s->auth_warned = 0;
        s->backoff_ms = 0;
        queue_compact(s);
        state_save(s);
        return;
    }
    const char *msg = json_string_value(json_object_get(body, "error"));
    if (status == 400) {
        json_t *idx = json_object_get(body, "index");
        json_int_t k = json_is_integer(idx) ? json_integer_value(idx) : 0;
        if (k <= 0 || (size_t)k >= s->batch_n) {
            const char *field = json_string_value(json_object_get(body, "field"));
            const char *rule = json_string_value(json_object_get(body, "rule"));
            RP_LOG_ERROR("watch", "the hub refused an event (dropped): %s %s %s", msg ? msg : "", field ? field : "",
                         rule ? rule : "");
            queue_skip(s, 1);
            state_save(s);
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
        queue_skip(s, stored);
        state_save(s);
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
        RP_LOG_WARN("watch", "cannot read the hub's log back (HTTP %d) to rule out duplicates; resending", status);
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
        RP_LOG_INFO("watch", "the hub already has %zu queued event(s) (its answer was lost): not resending them", n);
        queue_skip(s, n);
        queue_compact(s);
        state_save(s);
    }
}

/* The answer, parsed by http-parser (a proxy in front of the hub may answer chunked). */
typedef struct answer {
    rp_buf_t body;
    int in_retry_after;
    uint32_t retry_after_ms;
    int complete;
} answer_t;

static int on_ans_field(http_parser *p, const char *at, size_t len)
{
    answer_t *a = p->data;
    a->in_retry_after = len == 11 && strncasecmp(at, "retry-after", 11) == 0;
    return 0;
}

static int on_ans_value(http_parser *p, const char *at, size_t len)
{
    answer_t *a = p->data;
    if (a->in_retry_after && len > 0 && len < 8)
        a->retry_after_ms = (uint32_t)strtoul(at, NULL, 10) * 1000;
    return 0;
}

static int on_ans_body(http_parser *p, const char *at, size_t len)
{
    answer_t *a = p->data;
    return rp_buf_append(&a->body, at, len) < 0 ? -1 : 0;
}

static int on_ans_complete(http_parser *p)
{
    ((answer_t *)p->data)->complete = 1;
    return 0;
}

static void on_response_done(net_sink_t *s)
{
    static const http_parser_settings settings = {
        .on_header_field = on_ans_field,
        .on_header_value = on_ans_value,
        .on_body = on_ans_body,
        .on_message_complete = on_ans_complete,
    };
    answer_t a;
    memset(&a, 0, sizeof(a));
    rp_buf_init(&a.body, 8u << 20);
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    p.data = &a;
    size_t n = http_parser_execute(&p, &settings, s->resp.data ? s->resp.data : "", s->resp.len);
    if (n == s->resp.len && !a.complete)
        http_parser_execute(&p, &settings, NULL, 0); /* end of file ends a body without a length */
    if (!a.complete || HTTP_PARSER_ERRNO(&p) != HPE_OK) {
        rp_buf_deinit(&a.body);
        request_failed(s, "no complete HTTP answer");
        return;
    }
    json_t *body = json_loadb(a.body.data ? a.body.data : "", a.body.len, 0, NULL);
    rp_buf_deinit(&a.body);
    if (s->mode == REQ_POST)
        on_post_answer(s, (int)p.status_code, body, a.retry_after_ms);
    else
        on_verify_answer(s, (int)p.status_code, body);
    json_decref(body);
    request_end(s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[65536];
    (void)h;
    (void)suggested;
    buf->base = scratch;
    buf->len = sizeof(scratch);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    net_sink_t *s = st->data;
    if (s->req_failed || s->mode == REQ_NONE)
        return;
    if (nread == UV_EOF) {
        uv_read_stop(st);
        on_response_done(s);
        return;
    }
    if (nread < 0) {
        uv_read_stop(st);
        request_failed(s, uv_strerror((int)nread));
        return;
    }
    if (rp_buf_append(&s->resp, buf->base, (size_t)nread) < 0) {
        uv_read_stop(st);
        request_failed(s, "answer too large");
    }
}

static void on_written(uv_write_t *w, int status)
{
    net_sink_t *s = w->data;
    if (s->req_failed || s->mode == REQ_NONE)
        return;
    if (status < 0) {
        request_failed(s, uv_strerror(status));
        return;
    }
    s->sent_all = 1;
}

static void on_connected(uv_connect_t *c, int status)
{
    net_sink_t *s = c->data;
    if (s->req_failed || s->mode == REQ_NONE)
        return;
    if (status < 0) {
        request_failed(s, uv_strerror(status));
        return;
    }
    uv_buf_t b = uv_buf_init(s->req.data, (unsigned)s->req.len);
    s->wr.data = s;
    int rc = uv_write(&s->wr, (uv_stream_t *)&s->tcp, &b, 1, on_written);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
    if (rc < 0)
        request_failed(s, uv_strerror(rc));
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    net_sink_t *s = g->data;
    s->handles--;
    if (s->finished) {
        uv_freeaddrinfo(res);
        if (s->handles == 0 && s->done) {
            void (*done)(void *) = s->done;
            s->done = NULL;
            done(s->done_ud);
        }
        return;
    }
    if (status < 0 || res == NULL) {
        uv_freeaddrinfo(res);
        request_failed(s, status < 0 ? uv_strerror(status) : "no address");
        return;
    }
    uv_tcp_init(s->loop, &s->tcp);
    s->tcp.data = s;
    s->tcp_open = 1;
    s->handles++;
    uv_tcp_nodelay(&s->tcp, 1);
    s->conn.data = s;
    int rc = uv_tcp_connect(&s->conn, &s->tcp, res->ai_addr, on_connected);
    uv_freeaddrinfo(res);
    if (rc < 0)
        request_failed(s, uv_strerror(rc));
}

static void on_timeout(uv_timer_t *t)
{
    request_failed(t->data, "no answer in 15 s");
}

static void request_start(net_sink_t *s, enum req_mode mode)
{
    s->mode = mode;
    s->sent_all = 0;
    s->req_failed = 0;
    rp_buf_reset(&s->resp);
    uv_timer_start(&s->timeout, on_timeout, REQUEST_TIMEOUT_MS, 0);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    s->gai.data = s;
    int rc = uv_getaddrinfo(s->loop, &s->gai, on_resolved, s->host, s->port, &hints);
    if (rc < 0) {
        request_failed(s, uv_strerror(rc));
        return;
    }
    s->handles++;
}

static int post_batch(net_sink_t *s)
{
    size_t want = (size_t)(s->qsize - s->roff);
    if (want > BATCH_BYTES)
        want = BATCH_BYTES;
    char *buf = rp_malloc(want + 1);
    if (buf == NULL)
        return -1;
    ssize_t r = pread(s->qfd, buf, want, (off_t)s->roff);
    if (r <= 0) {
        rp_free(buf);
        return -1;
    }
    size_t n = (size_t)r, i = 0, count = 0;
    rp_buf_reset(&s->req);
    rp_buf_t body;
    rp_buf_init(&body, BATCH_BYTES + 1024);
    rp_buf_append_char(&body, '[');
    while (i < n && count < s->batch_limit) {
        char *nl = memchr(buf + i, '\n', n - i);
        if (nl == NULL)
            break;
        if (count)
            rp_buf_append_char(&body, ',');
        rp_buf_append(&body, buf + i, (size_t)(nl - (buf + i)));
        i = (size_t)(nl - buf) + 1;
        count++;
    }
    rp_free(buf);
    if (count == 0) {
        /* One record larger than a batch: the hub would refuse it anyway. */
        RP_LOG_ERROR("watch", "queue %s: a record larger than %d bytes (dropped)", s->qpath, BATCH_BYTES);
        queue_skip(s, 1);
        rp_buf_deinit(&body);
        return 1;
    }
    rp_buf_append_char(&body, ']');
    s->batch_end = s->roff + i;
    s->batch_n = count;
    rp_buf_printf(&s->req,
                  "POST %s/api/events HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
                  "Content-Length: %zu\r\nConnection: close\r\n%sUser-Agent: ragpulse-watch/" RP_VERSION "\r\n\r\n",
                  s->prefix, s->host, s->port, body.len, s->auth ? s->auth : "");
    rp_buf_append(&s->req, body.data, body.len);
    rp_buf_deinit(&body);
    request_start(s, REQ_POST);
    return 0;
}

static void kick(net_sink_t *s)
{
    if (s->finished || s->mode != REQ_NONE || s->in_backoff || s->tcp_open)
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
        rp_buf_reset(&s->req);
        rp_buf_printf(&s->req,
                      "GET %s/api/events?pipeline=%s&limit=1000 HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n"
                      "%sUser-Agent: ragpulse-watch/" RP_VERSION "\r\n\r\n",
                      s->prefix, pid, s->host, s->port, s->auth ? s->auth : "");
        request_start(s, REQ_VERIFY);
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

/* ---- the sink ---- */

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
            RP_LOG_ERROR("watch", "queue %s is full (--queue-max %zu bytes): %llu event(s) dropped", s->qpath,
                         s->max_bytes, (unsigned long long)s->dropped);
        free(line);
        return RP_ETOOBIG;
    }
    ssize_t w = write(s->qfd, line, n + 1);
    free(line);
    if (w != (ssize_t)(n + 1)) {
        RP_LOG_ERROR("watch", "cannot append to the queue %s: %s", s->qpath, w < 0 ? strerror(errno) : "short write");
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
    state_save(s);
    if (s->roff < s->qsize)
        RP_LOG_INFO("watch", "%llu bytes of events stay in %s for the next run",
                    (unsigned long long)(s->qsize - s->roff), s->qpath);
    uv_handle_t *hs[] = {(uv_handle_t *)&s->retry, (uv_handle_t *)&s->timeout, (uv_handle_t *)&s->drain};
    for (size_t i = 0; i < 3; i++)
        uv_close(hs[i], on_handle_closed);
    if (s->tcp_open && !uv_is_closing((uv_handle_t *)&s->tcp))
        uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
    if (s->mode != REQ_NONE)
        uv_cancel((uv_req_t *)&s->gai);
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
    if (s->roff >= s->qsize || s->down) {
        finish(s);
        return;
    }
    uv_timer_start(&s->drain, on_drain_timeout, DRAIN_MS, 0);
    kick(s);
}

static const rp_watch_sink_ops_t net_ops = {net_emit, net_close};

rp_watch_sink_t *rp_cli_net_sink_new(uv_loop_t *loop, const char *hub_url, const char *token, const char *pipeline_id,
                                     const char *queue_path, size_t max_bytes, char *err, size_t errlen)
{
    const char *p = hub_url;
    if (strncmp(p, "http://", 7) == 0) {
        p += 7;
    } else if (strstr(p, "://")) {
        snprintf(err, errlen, "--hub: only http:// URLs are supported (put TLS in front): %s", hub_url);
        return NULL;
    }
    net_sink_t *s = rp_calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base.ops = &net_ops;
    s->loop = loop;
    s->qfd = -1;
    s->max_bytes = max_bytes;
    s->batch_limit = BATCH_EVENTS;
    snprintf(s->port, sizeof(s->port), "80");
    size_t hl;
    if (*p == '[') {
        const char *rb = strchr(p, ']');
        hl = rb ? (size_t)(rb - p - 1) : 0;
        if (hl && hl < sizeof(s->host))
            memcpy(s->host, p + 1, hl);
        p = rb ? rb + 1 : p;
    } else {
        hl = strcspn(p, ":/");
        if (hl && hl < sizeof(s->host))
            memcpy(s->host, p, hl);
        p += hl;
    }
    if (hl == 0 || hl >= sizeof(s->host)) {
        snprintf(err, errlen, "--hub: no host in %s", hub_url);
        rp_free(s);
        return NULL;
    }
    if (*p == ':') {
        size_t pl = strcspn(p + 1, "/");
        if (pl == 0 || pl >= sizeof(s->port) || strspn(p + 1, "0123456789") < pl) {
            snprintf(err, errlen, "--hub: bad port in %s", hub_url);
            rp_free(s);
            return NULL;
        }
        memcpy(s->port, p + 1, pl);
        s->port[pl] = '\0';
        p += 1 + pl;
    }
    snprintf(s->prefix, sizeof(s->prefix), "%s", p);
    size_t pl = strlen(s->prefix);
    while (pl && s->prefix[pl - 1] == '/')
        s->prefix[--pl] = '\0';
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
    snprintf(s->pipeline_id, sizeof(s->pipeline_id), "%s", pipeline_id);
    snprintf(s->qpath, sizeof(s->qpath), "%s", queue_path);
    snprintf(s->spath, sizeof(s->spath), "%s.state", queue_path);
    rp_buf_init(&s->req, BATCH_BYTES + 16384);
    rp_buf_init(&s->resp, 8u << 20);
    if (queue_open(s, err, errlen) < 0) {
        rp_cli_net_sink_free(&s->base);
        return NULL;
    }
    uv_timer_init(loop, &s->retry);
    uv_timer_init(loop, &s->timeout);
    uv_timer_init(loop, &s->drain);
    s->retry.data = s->timeout.data = s->drain.data = s;
    s->handles = 3;
    return &s->base;
}

void rp_cli_net_sink_free(rp_watch_sink_t *base)
{
    net_sink_t *s = (net_sink_t *)base;
    if (s == NULL)
        return;
    if (s->qfd >= 0)
        close(s->qfd);
    rp_buf_deinit(&s->req);
    rp_buf_deinit(&s->resp);
    rp_free(s->auth);
    rp_free(s);
}
