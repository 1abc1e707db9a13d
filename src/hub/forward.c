/* SPDX-License-Identifier: MIT */
/* The channels' forwarder (see forward.h): a FIFO of waiting requests, at most `concurrency`
 * of them in flight, each on its own http/client.h client taken from a free list (clients are
 * kept per host:port, since a client is bound to one address). Results are delivered from the
 * loop: from the client's callback, or from the `kick` timer for requests that end without one
 * (a start that failed at once, a cancel). Invariant: every accepted request's callback runs
 * exactly once, and `f` is freed only when no request is left and every client has closed. */
#include "hub/forward.h"

#include <assert.h>
#include <jansson.h>
#include <string.h>

#include "http/client.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/list.h"
#include "util/url.h"

#define MAX_ANSWER (1u << 20)

struct fwd_req {
    rp_list_node_t node; /* in f->waiting or f->done */
    rp_url_t url;        /* prefix "": the path is sent whole */
    char path[sizeof(((rp_url_t *)0)->prefix)];
    uint32_t timeout_ms;
    uint64_t deadline; /* loop time the request ends, set when it first starts; 0: none */
    int tries;
    int result; /* for f->done */
    rp_fwd_cb cb;
    void *ud;
    size_t len;
    char body[]; /* owned copy, NUL-terminated */
};

struct fwd_client {
    rp_http_client_t http;
    rp_url_t url;        /* the address http was made for */
    rp_list_node_t node; /* in f->free or f->busy */
    rp_fwd_t *f;
    struct fwd_req *req; /* in flight, or NULL */
};

struct rp_fwd {
    uv_loop_t *loop;
    unsigned concurrency;
    size_t max_queue;
    rp_list_node_t waiting, done, free, busy;
    size_t n_waiting, n_in_flight, n_free;
    size_t clients; /* allocated and not yet closed */
    unsigned long counts[RP_FWD_COUNT];
    unsigned long retries; /* refused before sending and tried again (tests read it) */
    uv_timer_t kick;
    int closing;
    int kick_closing;
    void (*close_cb)(rp_fwd_t *f);
};

static const char *const result_names[RP_FWD_COUNT] = {
    "ok", "error", "garbage", "timeout", "unavailable", "busy", "cancelled",
};

const char *rp_fwd_result_name(int result)
{
    return result >= 0 && result < RP_FWD_COUNT ? result_names[result] : "?";
}

static void pump(rp_fwd_t *f);
static void maybe_free(rp_fwd_t *f);

static void deliver(rp_fwd_t *f, struct fwd_req *r, int result, int status, const char *body,
                    size_t len)
{
    f->counts[result]++;
    r->cb(r->ud, result, status, body, len);
    rp_free(r);
}

static void on_kick(uv_timer_t *t)
{
    rp_fwd_t *f = t->data;
    while (!rp_list_empty(&f->done)) {
        struct fwd_req *r = rp_container_of(f->done.next, struct fwd_req, node);
        rp_list_unlink(&r->node);
        deliver(f, r, r->result, 0, "", 0);
    }
    pump(f);
    maybe_free(f);
}

/* Ends `r` without an answer; its callback runs from the kick timer. */
static void defer(rp_fwd_t *f, struct fwd_req *r, int result)
{
    r->result = result;
    rp_list_push(&f->done, &r->node);
    if (f->kick_closing)
        return;
    int rc = uv_timer_start(&f->kick, on_kick, 0, 0);
    assert(rc == 0); /* it fails only for a closing handle, which kick_closing rules out */
    (void)rc;
}

static void on_client_closed(rp_http_client_t *c)
{
    struct fwd_client *cl = rp_container_of(c, struct fwd_client, http);
    rp_fwd_t *f = cl->f;
    rp_free(cl);
    f->clients--;
    maybe_free(f);
}

static void on_kick_closed(uv_handle_t *h)
{
    rp_fwd_t *f = h->data;
    void (*cb)(rp_fwd_t *) = f->close_cb;
    if (cb)
        cb(f);
    rp_free(f);
}

static void maybe_free(rp_fwd_t *f)
{
    if (!f->closing || f->kick_closing || f->clients > 0 || !rp_list_empty(&f->done))
        return;
    f->kick_closing = 1;
    uv_close((uv_handle_t *)&f->kick, on_kick_closed);
}

/* An idle client goes back to the free list, or closes when f closes or the list is full. */
static void release(rp_fwd_t *f, struct fwd_client *cl)
{
    if (f->closing || f->n_free >= f->concurrency) {
        rp_http_client_close(&cl->http, on_client_closed);
        return;
    }
    rp_list_push(&f->free, &cl->node);
    f->n_free++;
}

static int same_address(const rp_url_t *a, const rp_url_t *b)
{
    return strcmp(a->host, b->host) == 0 && strcmp(a->port, b->port) == 0 && a->ipv6 == b->ipv6;
}

/* Returns an idle client for `url` in *out: a free one to the same address, else a new one. */
static int take_client(rp_fwd_t *f, const rp_url_t *url, struct fwd_client **out)
{
    rp_list_node_t *it;
    rp_list_foreach(it, &f->free)
    {
        struct fwd_client *cl = rp_container_of(it, struct fwd_client, node);
        if (same_address(&cl->url, url)) {
            rp_list_unlink(&cl->node);
            f->n_free--;
            *out = cl;
            return 0;
        }
    }
    struct fwd_client *cl = rp_calloc(1, sizeof(*cl));
    if (cl == NULL)
        return UV_ENOMEM;
    int rc = rp_http_client_init(&cl->http, f->loop, url, MAX_ANSWER);
    if (rc < 0) {
        rp_free(cl);
        return rc;
    }
    cl->f = f;
    cl->url = *url;
    rp_list_init(&cl->node);
    f->clients++;
    *out = cl;
    return 0;
}

static void on_answer(rp_http_client_t *c, int rc, const rp_http_answer_t *a, void *ud);

/* Sends r on cl with what is left of its timeout; 0, or a code (cl is then still idle). */
static int send_on(rp_fwd_t *f, struct fwd_client *cl, struct fwd_req *r)
{
    uint64_t left = 0;
    if (r->deadline > 0) {
        uint64_t now = uv_now(f->loop);
        if (now >= r->deadline)
            return UV_ETIMEDOUT;
        left = r->deadline - now;
    }
    r->tries++;
    return rp_http_client_request(&cl->http, "POST", r->path, NULL, r->body, r->len, left,
                                  on_answer, cl);
}

static void start(rp_fwd_t *f, struct fwd_req *r)
{
    struct fwd_client *cl = NULL;
    int rc = take_client(f, &r->url, &cl);
    if (rc == 0) {
        if (r->timeout_ms > 0)
            r->deadline = uv_now(f->loop) + r->timeout_ms;
        rc = send_on(f, cl, r);
        if (rc < 0)
            release(f, cl);
    }
    if (rc < 0) {
        defer(f, r, RP_FWD_UNAVAILABLE);
        return;
    }
    cl->req = r;
    rp_list_push(&f->busy, &cl->node);
    f->n_in_flight++;
}

static void pump(rp_fwd_t *f)
{
    while (!f->closing && f->n_in_flight < f->concurrency && !rp_list_empty(&f->waiting)) {
        struct fwd_req *r = rp_container_of(f->waiting.next, struct fwd_req, node);
        rp_list_unlink(&r->node);
        f->n_waiting--;
        start(f, r);
    }
}

static int is_json(const char *body, size_t len)
{
    json_error_t err;
    json_t *j = json_loadb(body, len, JSON_DECODE_ANY, &err);
    if (j == NULL)
        return 0;
    json_decref(j);
    return 1;
}

static int classify(int rc, const rp_http_answer_t *a)
{
    if (rc == 0 && a->status >= 200 && a->status < 300)
        return is_json(a->body, a->body_len) ? RP_FWD_OK : RP_FWD_GARBAGE;
    if (rc == 0)
        return RP_FWD_ERROR;
    if (rc == UV_ETIMEDOUT)
        return RP_FWD_TIMEOUT;
    if (rc == RP_EPROTO || rc == RP_ETOOBIG)
        return RP_FWD_GARBAGE;
    return RP_FWD_UNAVAILABLE;
}

static void on_answer(rp_http_client_t *c, int rc, const rp_http_answer_t *a, void *ud)
{
    struct fwd_client *cl = ud;
    rp_fwd_t *f = cl->f;
    struct fwd_req *r = cl->req;
    (void)c;
    if (rc == UV_ECONNREFUSED && !a->sent && r->tries < 2) {
        f->retries++;
        rc = send_on(f, cl, r);
        if (rc == 0)
            return;
    }
    int result = classify(rc, a);
    cl->req = NULL;
    rp_list_unlink(&cl->node);
    f->n_in_flight--;
    /* The body belongs to cl until this returns: cl goes back to the free list after cb. */
    if (rc == 0)
        deliver(f, r, result, a->status, a->body, a->body_len);
    else
        deliver(f, r, result, 0, "", 0); /* a partial body is no answer */
    release(f, cl);
    pump(f);
}

rp_fwd_t *rp_fwd_new(uv_loop_t *loop, unsigned concurrency, size_t max_queue)
{
    rp_fwd_t *f = rp_calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    if (uv_timer_init(loop, &f->kick) < 0) {
        rp_free(f);
        return NULL;
    }
    f->kick.data = f;
    f->loop = loop;
    f->concurrency = concurrency > 0 ? concurrency : 1;
    f->max_queue = max_queue;
    rp_list_init(&f->waiting);
    rp_list_init(&f->done);
    rp_list_init(&f->free);
    rp_list_init(&f->busy);
    return f;
}

int rp_fwd_post(rp_fwd_t *f, const char *url, const char *body, size_t len, uint32_t timeout_ms,
                rp_fwd_cb cb, void *ud)
{
    if (f->closing)
        return RP_ESTATE;
    rp_url_t u;
    if (url == NULL || rp_url_parse(&u, url, NULL) < 0)
        return RP_EINVAL;
    int room = f->n_in_flight < f->concurrency && rp_list_empty(&f->waiting);
    if (!room && f->n_waiting >= f->max_queue) {
        f->counts[RP_FWD_BUSY]++;
        return RP_EREFUSED;
    }
    if (len > SIZE_MAX - sizeof(struct fwd_req) - 1)
        return UV_ENOMEM;
    struct fwd_req *r = rp_malloc(sizeof(*r) + len + 1);
    if (r == NULL)
        return UV_ENOMEM;
    memset(r, 0, sizeof(*r));
    r->url = u;
    memcpy(r->path, u.prefix[0] ? u.prefix : "/", u.prefix[0] ? strlen(u.prefix) + 1 : 2);
    r->url.prefix[0] = '\0';
    r->timeout_ms = timeout_ms;
    r->cb = cb;
    r->ud = ud;
    r->len = len;
    if (len > 0)
        memcpy(r->body, body, len);
    r->body[len] = '\0';
    rp_list_init(&r->node);
    if (room) {
        start(f, r);
        return 0;
    }
    rp_list_push(&f->waiting, &r->node);
    f->n_waiting++;
    return 0;
}

unsigned long rp_fwd_count(const rp_fwd_t *f, int result)
{
    return result >= 0 && result < RP_FWD_COUNT ? f->counts[result] : 0;
}

size_t rp_fwd_in_flight(const rp_fwd_t *f)
{
    return f->n_in_flight;
}

size_t rp_fwd_waiting(const rp_fwd_t *f)
{
    return f->n_waiting;
}

void rp_fwd_close(rp_fwd_t *f, void (*cb)(rp_fwd_t *f))
{
    if (f->closing)
        return;
    f->closing = 1;
    f->close_cb = cb;
    rp_list_node_t *it, *tmp;
    rp_list_foreach_safe(it, tmp, &f->waiting)
    {
        struct fwd_req *r = rp_container_of(it, struct fwd_req, node);
        rp_list_unlink(&r->node);
        f->n_waiting--;
        defer(f, r, RP_FWD_CANCELLED);
    }
    rp_list_foreach_safe(it, tmp, &f->busy)
    {
        struct fwd_client *cl = rp_container_of(it, struct fwd_client, node);
        rp_list_unlink(&cl->node);
        struct fwd_req *r = cl->req;
        cl->req = NULL;
        f->n_in_flight--;
        defer(f, r, RP_FWD_CANCELLED); /* the abandoned request's callback never runs */
        rp_http_client_close(&cl->http, on_client_closed);
    }
    rp_list_foreach_safe(it, tmp, &f->free)
    {
        struct fwd_client *cl = rp_container_of(it, struct fwd_client, node);
        rp_list_unlink(&cl->node);
        f->n_free--;
        rp_http_client_close(&cl->http, on_client_closed);
    }
    if (rp_list_empty(&f->done))
        maybe_free(f);
}
