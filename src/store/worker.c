/* SPDX-License-Identifier: MIT */
/* The store worker: one thread per store that owns the database connection. The loop thread
 * queues jobs (copies of what they need) under a mutex and signals; the worker takes every
 * queued job at once, runs the writes in one transaction (group commit: one fsync for all),
 * runs the reads, and hands finished jobs back through uv_async_send, whose callback runs
 * the completions on the loop thread in queue order. A failed connection fails the batch and
 * is retried on the next one, so a database that comes back is used again without a restart.
 * The store's fault (none, down, read-only, moved) changes only at the end of a batch and is
 * logged once per change: a store that stays broken while idle does not fill the log. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/backend.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/log.h"

enum {
    J_APPEND,
    J_SESSION_PUT,
    J_SESSION_DEL,
    J_SNAPSHOT,
    J_PRUNE,
    J_HISTORY,
    J_FILES,
    J_SINCE,
    J_PING
};

typedef struct job {
    struct job *next;
    int kind;
    int status;
    rp_store_event_t ev;
    rp_store_session_t session;
    int64_t a, b; /* prune: keep, older_than; history: before, limit; files: -, limit */
    char *s1;     /* pipeline / pid */
    char *s2;     /* file; files: after */
    rp_store_done_cb done;
    rp_store_rows_cb rows;
    void *ud;
    rp_buf_t out;
    char data[]; /* copies of the strings above */
} job_t;

typedef struct worker {
    rp_store_t base;
    const rp_store_backend_ops_t *ops;
    void *backend;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_t *todo, *todo_tail;
    job_t *done, *done_tail;
    int stop;
    int holding; /* the loop thread is queueing one all-or-nothing group */
    int connected;
    atomic_int fault;                            /* rp_store_fault_t; written by the worker */
    unsigned long entered[RP_STORE_FAULT_COUNT]; /* under mu: copied to base.faults */
    uv_async_t async;
} worker_t;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void push(job_t **head, job_t **tail, job_t *j)
{
    j->next = NULL;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

static int is_write(const job_t *j)
{
    return j->kind <= J_PRUNE;
}

/* Publishes the fault after a batch (rc: the batch's result) and logs a change once: the
 * first failure with the database's reason, the recovery as info. Worker thread, or the loop
 * thread before the worker exists. */
static void set_fault(worker_t *w, int rc)
{
    rp_store_fault_t f = RP_STORE_FAULT_NONE;
    if (rc < 0)
        f = w->ops->fault ? w->ops->fault(w->backend) : RP_STORE_FAULT_DOWN;
    if ((int)f == atomic_load(&w->fault))
        return;
    if (f == RP_STORE_FAULT_NONE) {
        RP_LOG_INFO("store", "%s: working again", w->ops->kind);
    } else {
        RP_LOG_ERROR("store", "%s: %s", w->ops->kind, w->ops->error(w->backend));
        pthread_mutex_lock(&w->mu);
        w->entered[f]++;
        pthread_mutex_unlock(&w->mu);
    }
    atomic_store(&w->fault, (int)f);
}

static void run_batch(worker_t *w, job_t *list)
{
    if (!w->connected && w->ops->connect(w->backend) == 0)
        w->connected = 1;
    int rc = w->connected ? 0 : RP_EUNAVAIL;
    int any_write = 0;
    for (job_t *j = list; j; j = j->next)
        any_write |= is_write(j);
    if (rc == 0 && any_write) {
        rc = w->ops->begin(w->backend);
        for (job_t *j = list; j && rc == 0; j = j->next) {
            switch (j->kind) {
            case J_APPEND:
                rc = w->ops->append(w->backend, &j->ev);
                break;
            case J_SESSION_PUT:
                rc = w->ops->session_put(w->backend, &j->session);
                break;
            case J_SESSION_DEL:
                rc = w->ops->session_del(w->backend, j->s1);
                break;
            case J_SNAPSHOT:
                rc = w->ops->snapshot_put(w->backend, j->a, j->s1);
                break;
            case J_PRUNE:
                rc = w->ops->prune(w->backend, j->a, j->b, wall_ms());
                break;
            default:
                break;
            }
        }
        if (rc == 0)
            rc = w->ops->commit(w->backend);
        else
            w->ops->rollback(w->backend);
    }
    int write_rc = rc;
    for (job_t *j = list; j; j = j->next) {
        if (is_write(j)) {
            j->status = write_rc < 0 ? RP_EUNAVAIL : 0;
            continue;
        }
        rc = w->connected ? 0 : RP_EUNAVAIL;
        if (rc == 0 && j->kind == J_HISTORY)
            rc = w->ops->history(w->backend, j->s1, j->s2, j->a, (int)j->b, &j->out);
        else if (rc == 0 && j->kind == J_FILES)
            rc = w->ops->files(w->backend, j->s1, j->s2, (int)j->b, &j->out);
        else if (rc == 0 && j->kind == J_SINCE)
            rc = w->ops->since(w->backend, j->a, (int)j->b, &j->out);
        else if (rc == 0)
            rc = w->ops->ping(w->backend);
        /* An answer that outgrew its buffer (RP_ETOOBIG, UV_ENOMEM) fails that read alone;
         * RP_EUNAVAIL is the database failing, and the connection is retried. */
        j->status = rc < 0 ? rc : 0;
        if (rc == RP_EUNAVAIL)
            write_rc = rc;
    }
    /* Reconnect before the next batch: a dropped server looks like this. */
    if (write_rc < 0)
        w->connected = 0;
    set_fault(w, write_rc);
}

static void *thread_main(void *arg)
{
    worker_t *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while ((w->todo == NULL || w->holding) && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->todo == NULL && w->stop)
            break;
        job_t *list = w->todo;
        w->todo = w->todo_tail = NULL;
        pthread_mutex_unlock(&w->mu);
        run_batch(w, list);
        if (!w->connected) {
            /* Unreachable database: do not spin; the next batch retries. */
            struct timespec ts = {0, 200 * 1000000};
            nanosleep(&ts, NULL);
        }
        pthread_mutex_lock(&w->mu);
        while (list) {
            job_t *next = list->next;
            push(&w->done, &w->done_tail, list);
            list = next;
        }
        pthread_mutex_unlock(&w->mu);
        /* Cannot fail: the handle is closed only after this thread is joined (w_close). */
        (void)uv_async_send(&w->async);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Loop thread: run the completions of finished jobs, in order. */
static void on_async(uv_async_t *h)
{
    worker_t *w = h->data;
    pthread_mutex_lock(&w->mu);
    job_t *list = w->done;
    w->done = w->done_tail = NULL;
    memcpy(w->base.faults, w->entered, sizeof(w->entered));
    pthread_mutex_unlock(&w->mu);
    while (list) {
        job_t *j = list;
        list = j->next;
        if (j->kind == J_APPEND) {
            if (j->status == 0) {
                w->base.events_written++;
            } else {
                w->base.errors++;
            }
            if (j->done)
                j->done(j->ud, j->status);
        } else if (j->rows) {
            j->rows(j->ud, j->status, j->out.data ? j->out.data : "[]",
                    j->out.data ? j->out.len : 2);
        } else if (j->kind == J_PING) {
            w->base.checks++;
        }
        rp_buf_deinit(&j->out);
        rp_free(j);
    }
    w->base._commits++;
}

static int enqueue(worker_t *w, job_t *j)
{
    pthread_mutex_lock(&w->mu);
    if (!w->started) {
        int rc = pthread_create(&w->thread, NULL, thread_main, w);
        if (rc != 0) {
            pthread_mutex_unlock(&w->mu);
            rp_free(j);
            return -rc; /* an errno value: libuv's code for it on Unix (UV_EAGAIN...) */
        }
        w->started = 1;
    }
    push(&w->todo, &w->todo_tail, j);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/* A job with room for n bytes of copied strings. */
static job_t *job_new(int kind, size_t n)
{
    job_t *j = rp_calloc(1, sizeof(*j) + n);
    if (j) {
        j->kind = kind;
        rp_buf_init(&j->out, (size_t)64 << 20);
    }
    return j;
}

static char *copy_str(char **cursor, const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = *cursor;
    memcpy(d, s, n);
    *cursor += n;
    return d;
}

static size_t len0(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static int w_append(rp_store_t *st, const rp_store_event_t *ev, rp_store_done_cb done, void *ud)
{
    worker_t *w = (worker_t *)st;
    size_t n = len0(ev->type) + len0(ev->pipeline_id) + len0(ev->pipeline_type) +
               len0(ev->file_id) + len0(ev->file_name) + len0(ev->file_hash) + ev->json_len + 1;
    job_t *j = job_new(J_APPEND, n);
    if (j == NULL)
        return UV_ENOMEM;
    char *c = j->data;
    j->ev = *ev;
    j->ev.type = copy_str(&c, ev->type);
    j->ev.pipeline_id = copy_str(&c, ev->pipeline_id);
    j->ev.pipeline_type = copy_str(&c, ev->pipeline_type);
    j->ev.file_id = copy_str(&c, ev->file_id);
    j->ev.file_name = copy_str(&c, ev->file_name);
    j->ev.file_hash = copy_str(&c, ev->file_hash);
    memcpy(c, ev->json, ev->json_len);
    c[ev->json_len] = '\0';
    j->ev.json = c;
    j->done = done;
    j->ud = ud;
    return enqueue(w, j);
}

static int w_session_put(rp_store_t *st, const rp_store_session_t *s)
{
    worker_t *w = (worker_t *)st;
    job_t *j = job_new(J_SESSION_PUT, len0(s->pid) + len0(s->nsp) + len0(s->sid) + len0(s->rooms));
    if (j == NULL)
        return UV_ENOMEM;
    char *c = j->data;
    j->session.pid = copy_str(&c, s->pid);
    j->session.nsp = copy_str(&c, s->nsp);
    j->session.sid = copy_str(&c, s->sid);
    j->session.rooms = copy_str(&c, s->rooms);
    j->session.expires_ms = s->expires_ms;
    return enqueue(w, j);
}

static int w_session_del(rp_store_t *st, const char *pid)
{
    worker_t *w = (worker_t *)st;
    job_t *j = job_new(J_SESSION_DEL, len0(pid));
    if (j == NULL)
        return UV_ENOMEM;
    char *c = j->data;
    j->s1 = copy_str(&c, pid);
    return enqueue(w, j);
}

static int w_prune(rp_store_t *st, int64_t keep, int64_t older_than_ms)
{
    worker_t *w = (worker_t *)st;
    job_t *j = job_new(J_PRUNE, 0);
    if (j == NULL)
        return UV_ENOMEM;
    j->a = keep;
    j->b = older_than_ms;
    return enqueue(w, j);
}

static int w_history(rp_store_t *st, const char *pipeline, const char *file, int64_t before,
                     int limit, rp_store_rows_cb done, void *ud)
{
    worker_t *w = (worker_t *)st;
    job_t *j = job_new(J_HISTORY, len0(pipeline) + len0(file));
    if (j == NULL)
        return UV_ENOMEM;
    char *c = j->data;
    j->s1 = copy_str(&c, pipeline);
    j->s2 = copy_str(&c, file);
    j->a = before;
    j->b = limit;
    j->rows = done;
    j->ud = ud;
    return enqueue(w, j);
}

static int w_files(rp_store_t *st, const char *pipeline, const char *after, int limit,
                   rp_store_rows_cb done, void *ud)
{
    worker_t *w = (worker_t *)st;
    job_t *j = job_new(J_FILES, len0(pipeline) + len0(after));
    if (j == NULL)
        return UV_ENOMEM;
    char *c = j->data;
    j->s1 = copy_str(&c, pipeline);
    j->s2 = copy_str(&c, after);
    j->b = limit;
    j->rows = done;
    j->ud = ud;
    return enqueue(w, j);
}

static void w_hold(rp_store_t *st, int on)
{
    worker_t *w = (worker_t *)st;
    pthread_mutex_lock(&w->mu);
    w->holding = on;
    if (!on)
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static int w_snapshot_put(rp_store_t *st, int64_t version, const char *json)
{
    worker_t *w = (worker_t *)st;
    job_t *j = job_new(J_SNAPSHOT, len0(json));
    if (j == NULL)
        return UV_ENOMEM;
    char *c = j->data;
    j->s1 = copy_str(&c, json);
    j->a = version;
    return enqueue(w, j);
}

static int w_snapshot_get(rp_store_t *st, int64_t *version, rp_buf_t *out)
{
    worker_t *w = (worker_t *)st;
    if (w->started)
        return RP_ESTATE; /* start only: the thread owns the connection from then on */
    return w->ops->snapshot_get(w->backend, version, out);
}

static int w_ping(rp_store_t *st)
{
    worker_t *w = (worker_t *)st;
    pthread_mutex_lock(&w->mu);
    int busy = w->todo != NULL;
    pthread_mutex_unlock(&w->mu);
    if (busy)
        return 0; /* the queued work tells health soon enough */
    job_t *j = job_new(J_PING, 0);
    if (j == NULL)
        return UV_ENOMEM;
    return enqueue(w, j);
}

static int w_since(rp_store_t *st, int64_t after, int limit, rp_store_rows_cb done, void *ud)
{
    worker_t *w = (worker_t *)st;
    job_t *j = job_new(J_SINCE, 0);
    if (j == NULL)
        return UV_ENOMEM;
    j->a = after;
    j->b = limit;
    j->rows = done;
    j->ud = ud;
    return enqueue(w, j);
}

static int w_replay(rp_store_t *st, int64_t after, void (*each)(void *, const rp_store_event_t *),
                    void *ud)
{
    worker_t *w = (worker_t *)st;
    if (w->started)
        return RP_ESTATE; /* start only: the thread owns the connection from then on */
    return w->ops->replay(w->backend, after, each, ud);
}

static int w_sessions(rp_store_t *st, int64_t now, void (*each)(void *, const rp_store_session_t *),
                      void *ud)
{
    worker_t *w = (worker_t *)st;
    if (w->started)
        return RP_ESTATE; /* start only */
    return w->ops->sessions(w->backend, now, each, ud);
}

static int w_healthy(rp_store_t *st)
{
    return atomic_load(&((worker_t *)st)->fault) == RP_STORE_FAULT_NONE;
}

static rp_store_fault_t w_fault(rp_store_t *st)
{
    return (rp_store_fault_t)atomic_load(&((worker_t *)st)->fault);
}

static const char *w_error(rp_store_t *st)
{
    worker_t *w = (worker_t *)st;
    return w->started ? "the store is running" : w->ops->error(w->backend);
}

static const char *w_kind(rp_store_t *st)
{
    return ((worker_t *)st)->ops->kind;
}

static void on_async_closed(uv_handle_t *h)
{
    worker_t *w = h->data;
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    rp_free(w);
}

static void w_close(rp_store_t *st)
{
    worker_t *w = (worker_t *)st;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    int started = w->started;
    pthread_mutex_unlock(&w->mu);
    if (started)
        pthread_join(w->thread, NULL);
    on_async(&w->async); /* the last completions, on this (the loop) thread */
    w->ops->free(w->backend);
    uv_close((uv_handle_t *)&w->async, on_async_closed);
}

static const rp_store_ops_t worker_ops = {
    .append = w_append,
    .hold = w_hold,
    .session_put = w_session_put,
    .session_del = w_session_del,
    .prune = w_prune,
    .history = w_history,
    .since = w_since,
    .replay = w_replay,
    .sessions = w_sessions,
    .files = w_files,
    .snapshot_put = w_snapshot_put,
    .snapshot_get = w_snapshot_get,
    .ping = w_ping,
    .healthy = w_healthy,
    .fault = w_fault,
    .error = w_error,
    .kind = w_kind,
    .close = w_close,
};

rp_store_t *rp_store_worker_new(uv_loop_t *loop, const rp_store_backend_ops_t *ops, void *backend)
{
    worker_t *w = rp_calloc(1, sizeof(*w));
    if (w == NULL)
        goto undo_backend;
    w->base.ops = &worker_ops;
    w->ops = ops;
    w->backend = backend;
    w->connected = 1; /* the backend's open connected it */
    atomic_init(&w->fault, RP_STORE_FAULT_NONE);
    if (pthread_mutex_init(&w->mu, NULL) != 0)
        goto undo_worker;
    if (pthread_cond_init(&w->cv, NULL) != 0)
        goto undo_mutex;
    if (uv_async_init(loop, &w->async, on_async) < 0)
        goto undo_cond;
    w->async.data = w;
    uv_unref((uv_handle_t *)&w->async);
    /* A store that opened but cannot take a write (a read-only file) is degraded from the start. */
    int rc = ops->ping(backend);
    w->connected = rc == 0;
    set_fault(w, rc);
    memcpy(w->base.faults, w->entered, sizeof(w->entered));
    return &w->base;
undo_cond:
    pthread_cond_destroy(&w->cv);
undo_mutex:
    pthread_mutex_destroy(&w->mu);
undo_worker:
    rp_free(w);
undo_backend:
    ops->free(backend);
    return NULL;
}

rp_store_t *rp_store_open(uv_loop_t *loop, const char *spec, char *err, size_t errlen)
{
    if (strncmp(spec, "sqlite:", 7) == 0) {
        void *b = rp_store_sqlite_open(spec + 7, err, errlen);
        return b ? rp_store_worker_new(loop, &rp_store_sqlite_ops, b) : NULL;
    }
    if (strncmp(spec, "postgres://", 11) == 0 || strncmp(spec, "postgresql://", 13) == 0) {
        void *b = rp_store_pg_open(spec, err, errlen);
        return b ? rp_store_worker_new(loop, &rp_store_pg_ops, b) : NULL;
    }
    snprintf(err, errlen, "--store wants sqlite:PATH or postgres://..., got '%s'", spec);
    return NULL;
}
