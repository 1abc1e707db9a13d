/* SPDX-License-Identifier: MIT */
/* Jobs on the loop thread: the ready FIFO, one job in flight (w->cur), what runs after each
 * thread-pool step (events, next step, a child process, the index batch) and job_next,
 * which picks the next job. One job at a time keeps SQLite on one thread at a time and the
 * events of one file together. */
#include "watch/watch_int.h"

/* ---- jobs on the loop ---- */

static void on_work_done(uv_work_t *r, int status);

/* The pending entry of path, made if needed (*fresh says so). NULL only for out-of-memory. */
pend_t *rp_watch_pend_get(rp_watch_t *w, const char *path, int *fresh)
{
    pend_t *p = (pend_t *)rp_map_get(&w->pending, path, strlen(path));
    *fresh = p == NULL;
    if (p)
        return p;
    p = rp_calloc(1, sizeof(*p));
    if (p == NULL || (p->path = rp_strndup(path, strlen(path))) == NULL) {
        rp_free(p);
        return NULL;
    }
    p->w = w;
    p->entry.key = p->path;
    p->entry.keylen = strlen(p->path);
    (void)rp_map_put(&w->pending, &p->entry); /* UV_ENOMEM still links it: only slower */
    return p;
}

void rp_watch_run_step(job_t *j, enum step s)
{
    j->step = s;
    j->work.data = j;
    int rc = uv_queue_work(j->w->loop, &j->work, rp_watch_on_work, on_work_done);
    if (rc < 0) {
        RP_LOG_ERROR("watch", "uv_queue_work: %s", uv_strerror(rc));
        rp_watch_job_free(j);
        return;
    }
    j->w->refs++;
}

void rp_watch_job_free(job_t *j)
{
    rp_watch_t *w = j->w;
    rp_list_unlink(&j->node); /* from whichever list holds it */
    while (j->kind == JOB_FLUSH && !rp_list_empty(&j->members)) {
        job_t *m = rp_container_of(j->members.next, job_t, node);
        rp_list_unlink(&m->node);
        rp_watch_job_free(m);
    }
    rp_free(j->data);
    json_decref(j->deleted);
    rp_buf_deinit(&j->text);
    rp_buf_deinit(&j->line);
    rp_buf_deinit(&j->etail);
    rp_free(j->chunks);
    for (size_t i = 0; i < j->nents; i++)
        rp_free(j->ents[i].path);
    rp_free(j->ents);
    rp_free(j->path);
    if (w->cur == j)
        w->cur = NULL;
    rp_free(j);
    rp_watch_job_next(w);
}

static job_t *job_new(rp_watch_t *w, enum job_kind kind, const char *path)
{
    job_t *j = rp_calloc(1, sizeof(*j));
    if (j == NULL || (j->path = rp_strndup(path, strlen(path))) == NULL) {
        rp_free(j);
        RP_LOG_ERROR("watch", "out of memory queueing %s", path);
        return NULL;
    }
    j->w = w;
    j->kind = kind;
    j->rel = rp_watch_rel_of(w, j->path);
    j->fkind = RP_WATCH_UNSUPPORTED;
    rp_list_init(&j->node);
    rp_list_init(&j->members);
    rp_buf_init(&j->text, 1);
    rp_buf_init(&j->line, 4096);
    rp_buf_init(&j->etail, EXEC_TAIL * 2);
    return j;
}

/* Queues a job (a FILE job once per path). initial: the first scan. */
void rp_watch_job_push(rp_watch_t *w, enum job_kind kind, const char *path, int initial)
{
    size_t pl = strlen(path);
    if (kind == JOB_FILE && rp_map_get(&w->queued, path, pl))
        return;
    qent_t *q = rp_malloc(sizeof(*q) + pl + 1);
    if (q == NULL) {
        RP_LOG_ERROR("watch", "out of memory queueing %s", path);
        return;
    }
    q->kind = kind;
    q->initial = initial;
    memcpy(q->path, path, pl + 1);
    if (kind == JOB_FILE) {
        q->entry.key = q->path;
        q->entry.keylen = pl;
        (void)rp_map_put(&w->queued, &q->entry); /* UV_ENOMEM still links it: only slower */
    }
    rp_list_push(&w->ready, &q->node);
    w->nready++;
    w->idle_logged = 0;
    if (w->cur == NULL)
        rp_watch_job_next(w);
}

/* A step failed or the file is done: record the failure (so an unchanged failing file is not
 * retried) and report it. */
void rp_watch_finish_failed(job_t *j)
{
    rp_watch_emit_failed(j, strcmp(j->err_kind ? j->err_kind : "", "io") == 0 ||
                                strcmp(j->err_kind ? j->err_kind : "", "timeout") == 0);
    j->out = OUT_FAIL;
    rp_watch_run_step(j, ST_RECORD);
}

/* Chunked: into the next index transaction; the next file starts meanwhile. */
static void chunked(job_t *j)
{
    rp_watch_t *w = j->w;
    rp_watch_emit_progress(j, 0.7, "index");
    /* Into the next index transaction; the next file starts meanwhile. */
    w->cur = NULL;
    rp_list_push(&w->batch, &j->node);
    w->nbatch++;
    w->batch_bytes += j->text.len;
    rp_watch_job_next(w);
}

static void on_work_done(uv_work_t *r, int status)
{
    job_t *j = r->data;
    rp_watch_t *w = j->w;
    (void)status;
    if (w->stopping) {
        rp_watch_job_free(j);
        rp_watch_unref(w);
        return;
    }
    switch (j->step) {
    case ST_PROBE:
        if (j->out == OUT_SKIP) {
            if (j->link)
                RP_LOG_INFO("watch", "%s: a symbolic link on its way, not followed", j->path);
            if (j->removed) {
                RP_LOG_INFO("watch", "%s is gone: its chunks were removed", j->rel);
                rp_watch_emit_deleted(w, j->path);
            }
            if (j->sqlite)
                RP_LOG_DEBUG("watch", "%s is a SQLite database: not a document", j->rel);
            w->stats.removed += (uint64_t)j->removed;
            w->stats.skipped += j->removed == 0;
            rp_watch_job_free(j);
        } else if (j->out == OUT_FAIL) {
            rp_watch_finish_failed(j);
        } else {
            rp_watch_emit_processing(j);
            if (!w->cfg.exec_cmd) /* an --exec file says "exec" once its command starts (--jobs) */
                rp_watch_emit_progress(j, 0.0, "extract");
            if (w->cfg.exec_cmd)
                rp_watch_spawn_exec(j);
            else if (j->fkind == RP_WATCH_PDF)
                rp_watch_spawn_pdftotext(j);
            else if (!j->fused)
                rp_watch_run_step(j, ST_EXTRACT);
            else if (j->fail_at == ST_EXTRACT)
                rp_watch_finish_failed(j);
            else {
                rp_watch_emit_progress(j, 0.4, "chunk");
                if (j->fail_at == ST_CHUNK)
                    rp_watch_finish_failed(j);
                else
                    chunked(j);
            }
        }
        break;
    case ST_EXTRACT:
        if (j->out == OUT_FAIL) {
            rp_watch_finish_failed(j);
        } else {
            rp_watch_emit_progress(j, 0.4, "chunk");
            rp_watch_run_step(j, ST_CHUNK);
        }
        break;
    case ST_CHUNK:
        if (j->out == OUT_FAIL)
            rp_watch_finish_failed(j);
        else
            chunked(j);
        break;
    case ST_FLUSH:
        while (!rp_list_empty(&j->members)) {
            job_t *m = rp_container_of(j->members.next, job_t, node);
            rp_list_unlink(&m->node);
            if (m->gone) {
                rp_watch_emit_removed(m);
                if (m->removed)
                    rp_watch_emit_deleted(w, m->path); /* its older version was indexed: gone too */
            } else if (j->out == OUT_FAIL) {
                /* Not recorded: the file is tried again at the next start. */
                snprintf(m->why, sizeof(m->why), "%s", j->why);
                m->err_kind = "index";
                rp_watch_emit_failed(m, 1);
            } else {
                rp_watch_emit_completed(m);
            }
            rp_watch_job_free(m);
        }
        rp_watch_job_free(j);
        break;
    case ST_RECORD:
        if (j->out != OUT_FAIL && j->gone)
            rp_watch_emit_removed(j);
        else if (j->out != OUT_FAIL)
            rp_watch_emit_completed(j);
        if (j->gone && j->removed)
            rp_watch_emit_deleted(w, j->path); /* its older version was indexed: gone too */
        rp_watch_job_free(j);
        break;
    case ST_GONE:
        if (j->removed)
            RP_LOG_INFO("watch", "%s is gone: %ld document(s) removed from the index", j->rel,
                        j->removed);
        w->stats.removed += (uint64_t)j->removed;
        rp_watch_emit_deleted_all(w, j->deleted);
        rp_watch_job_free(j);
        break;
    case ST_SCAN: {
        if (j->link) {
            /* Became a link (or one on its way) after it was seen: its watch goes too. */
            RP_LOG_INFO("watch", "%s: a symbolic link on its way, not followed", j->path);
            if (strcmp(j->path, w->root) != 0)
                rp_watch_unwatch_tree(w, j->path);
        }
        if (j->removed)
            RP_LOG_INFO("watch", "%ld document(s) removed: their files vanished while not watched",
                        j->removed);
        w->stats.removed += (uint64_t)j->removed;
        rp_watch_emit_deleted_all(w, j->deleted);
        for (size_t i = 0; i < j->nents; i++) {
            scan_ent_t *e = &j->ents[i];
            if (e->is_dir) {
                rp_watch_scan_queue(w, e->path, -1); /* watch only: its files are in this list */
                continue;
            }
            if (e->known) {
                w->stats.skipped++;
                continue;
            }
            int fresh = 0;
            pend_t *p = rp_watch_pend_get(w, e->path, &fresh);
            if (p && fresh) {
                p->have_obs = 1;
                p->exists = 1;
                p->size = e->size;
                p->mtime_ns = e->mtime_ns;
                p->stable_since = rp_watch_now_ms(w);
            }
        }
        rp_watch_job_free(j);
        break;
    }
    }
    rp_watch_unref(w);
}

static int path_busy(rp_watch_t *w, const char *path);

/* True when the chunked files waiting to be indexed must go first: nothing else to do, the
 * batch is full, or the next job could see or change what they hold (a removal, a scan, or
 * the same path again). */
static int must_flush(rp_watch_t *w)
{
    if (w->nbatch == 0)
        return 0;
    if (rp_list_empty(&w->ready) || w->nbatch >= BATCH_FILES || w->batch_bytes >= BATCH_BYTES)
        return 1;
    qent_t *next = rp_container_of(w->ready.next, qent_t, node);
    if (next->kind != JOB_FILE || path_busy(w, next->path))
        return 1;
    rp_list_node_t *it;
    rp_list_foreach(it, &w->batch)
    {
        if (strcmp(rp_container_of(it, job_t, node)->path, next->path) == 0)
            return 1;
    }
    return 0;
}

/* True when a job for path is with a child (running, waiting for a slot, or to resume). */
static int path_busy(rp_watch_t *w, const char *path)
{
    rp_list_node_t *lists[] = {&w->children, &w->waiting, &w->resume};
    for (size_t l = 0; l < 3; l++) {
        rp_list_node_t *it;
        rp_list_foreach(it, lists[l])
        {
            if (strcmp(rp_container_of(it, job_t, node)->path, path) == 0)
                return 1;
        }
    }
    return 0;
}

void rp_watch_job_next(rp_watch_t *w)
{
    if (w->cur || w->stopping)
        return;
    if (must_flush(w)) {
        job_t *f = job_new(w, JOB_FLUSH, w->root);
        if (f == NULL)
            return; /* out of memory: the next completion tries again */
        /* The batch moves into the flush job, in order. */
        f->members = w->batch;
        f->members.next->prev = &f->members;
        f->members.prev->next = &f->members;
        rp_list_init(&w->batch);
        w->nbatch = w->batch_bytes = 0;
        w->cur = f;
        rp_watch_run_step(f, ST_FLUSH);
        return;
    }
    if (!rp_list_empty(&w->resume)) {
        job_t *r = rp_container_of(w->resume.next, job_t, node);
        rp_list_unlink(&r->node);
        w->cur = r;
        rp_watch_after_child(r);
        return;
    }
    if (!rp_list_empty(&w->ready) &&
        path_busy(w, rp_container_of(w->ready.next, qent_t, node)->path))
        return; /* the same file is still with its child: after it, in order */
    if (rp_list_empty(&w->ready)) {
        if (!w->idle_logged && w->pending.count == 0 && w->nchildren == 0 &&
            rp_list_empty(&w->waiting)) {
            w->idle_logged = 1;
            RP_LOG_INFO("watch",
                        "idle: %llu ingested, %llu failed, %llu unchanged, %llu removed, %llu "
                        "bytes, %llu chunks",
                        (unsigned long long)w->stats.ingested, (unsigned long long)w->stats.failed,
                        (unsigned long long)w->stats.skipped, (unsigned long long)w->stats.removed,
                        (unsigned long long)w->stats.bytes, (unsigned long long)w->stats.chunks);
        }
        return;
    }
    qent_t *q = rp_container_of(w->ready.next, qent_t, node);
    rp_list_unlink(&q->node);
    w->nready--;
    if (q->kind == JOB_FILE)
        rp_map_del(&w->queued, &q->entry);
    job_t *j = job_new(w, q->kind, q->path);
    if (j)
        j->initial = q->initial;
    rp_free(q);
    if (j == NULL) {
        rp_watch_job_next(w); /* that one is lost (logged); the next may fit */
        return;
    }
    w->cur = j;
    rp_watch_run_step(j, j->kind == JOB_FILE ? ST_PROBE : j->kind == JOB_GONE ? ST_GONE : ST_SCAN);
}
