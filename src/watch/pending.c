/* SPDX-License-Identifier: MIT */
/* Paths waiting to settle: inotify events and scans put a path in `pending`; the tick stats
 * it until two stats settle_s apart agree, then it becomes a job. One uv_fs_event_t per
 * directory (inotify is not recursive); a directory that goes away takes its watches with it.
 * A pend_t with a stat in flight is only marked dead, and freed when the stat returns. */
#include "watch/watch_int.h"

/* ---- pending paths: settle, then queue ---- */

static void pend_free(pend_t *p)
{
    rp_free(p->path);
    rp_free(p);
}

void rp_watch_pend_drop(rp_watch_t *w, pend_t *p)
{
    rp_map_del(&w->pending, &p->entry);
    if (p->busy)
        p->dead = 1;
    else
        pend_free(p);
}

void rp_watch_dir_closed(uv_handle_t *h)
{
    dirw_t *d = h->data;
    rp_watch_t *w = d->w;
    rp_free(d->path);
    rp_free(d);
    rp_watch_unref(w);
}

/* Drops the watches of dir and every directory under it. */
void rp_watch_unwatch_tree(rp_watch_t *w, const char *dir)
{
    size_t dl = strlen(dir), b;
    for (rp_map_entry_t *e = rp_map_first(&w->dirs, &b); e;) {
        rp_map_entry_t *next = rp_map_next(&w->dirs, e, &b);
        dirw_t *d = rp_container_of(e, dirw_t, entry);
        if (strncmp(d->path, dir, dl) == 0 && (d->path[dl] == '\0' || d->path[dl] == '/')) {
            rp_map_del(&w->dirs, e);
            uv_fs_event_stop(&d->ev);
            uv_close((uv_handle_t *)&d->ev, rp_watch_dir_closed);
        }
        e = next;
    }
}

static void on_stat(uv_fs_t *req)
{
    pend_t *p = req->data;
    rp_watch_t *w = p->w;
    p->busy = 0;
    /* lstat: a symbolic link is never followed; it counts as nothing being there (what the
     * path held before, a file or a whole directory, is forgotten). */
    int is_link = req->result == 0 && S_ISLNK(req->statbuf.st_mode);
    int exists = req->result == 0 && !is_link;
    int is_dir = exists && S_ISDIR(req->statbuf.st_mode);
    int is_reg = exists && S_ISREG(req->statbuf.st_mode);
    int64_t size = exists ? (int64_t)req->statbuf.st_size : -1;
    int64_t mtime =
        exists ? (int64_t)req->statbuf.st_mtim.tv_sec * 1000000000 + req->statbuf.st_mtim.tv_nsec
               : -1;
    uv_fs_req_cleanup(req);
    if (p->dead || w->stopping) {
        pend_free(p);
        rp_watch_unref(w);
        return;
    }
    if (is_dir) {
        char *path = p->path;
        p->path = NULL;
        rp_watch_pend_drop(w, p);
        if (rp_map_get(&w->dirs, path, strlen(path)) == NULL)
            rp_watch_scan_queue(w, path, 0);
        rp_free(path);
        rp_watch_unref(w);
        return;
    }
    uint64_t now = rp_watch_now_ms(w);
    int settled = now - p->stable_since >= (uint64_t)(w->cfg.settle_s * 1000);
    int same = p->have_obs && p->exists == exists && p->size == size && p->mtime_ns == mtime;
    if (settled && same) {
        char *path = p->path;
        p->path = NULL;
        rp_watch_pend_drop(w, p);
        if (!exists) {
            if (is_link)
                RP_LOG_INFO("watch", "%s is a symbolic link: not followed", path);
            rp_watch_unwatch_tree(w, path);
            rp_watch_job_push(w, JOB_GONE, path, 0);
        } else if (is_reg) {
            rp_watch_job_push(w, JOB_FILE, path, 0);
        }
        rp_free(path);
        rp_watch_unref(w);
        return;
    }
    if (!same) {
        p->have_obs = 1;
        p->exists = exists;
        p->size = size;
        p->mtime_ns = mtime;
        p->stable_since = now;
    }
    rp_watch_unref(w);
}

static void pend_stat(rp_watch_t *w, pend_t *p)
{
    p->req.data = p;
    if (uv_fs_lstat(w->loop, &p->req, p->path, on_stat) == 0) {
        p->busy = 1;
        w->refs++;
    }
}

/* Something happened at path: it waits until quiet again. */
static void touch_path(rp_watch_t *w, const char *path)
{
    int fresh;
    pend_t *p = rp_watch_pend_get(w, path, &fresh);
    if (p == NULL)
        return;
    p->stable_since = rp_watch_now_ms(w);
    if (!p->busy)
        pend_stat(w, p); /* the observation the settle check compares with */
}

void rp_watch_on_tick(uv_timer_t *t)
{
    rp_watch_t *w = t->data;
    uint64_t now = rp_watch_now_ms(w), settle = (uint64_t)(w->cfg.settle_s * 1000);
    size_t b;
    for (rp_map_entry_t *e = rp_map_first(&w->pending, &b); e;
         e = rp_map_next(&w->pending, e, &b)) {
        pend_t *p = rp_container_of(e, pend_t, entry);
        if (!p->busy && now - p->stable_since >= settle)
            pend_stat(w, p);
    }
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    dirw_t *d = h->data;
    rp_watch_t *w = d->w;
    (void)events;
    if (w->stopping)
        return;
    if (status < 0) {
        RP_LOG_WARN("watch", "watching %s: %s", d->path, uv_strerror(status));
        return;
    }
    if (filename == NULL) {
        rp_watch_scan_queue(w, d->path, 0); /* the kernel lost track: look again */
        return;
    }
    char *path = rp_watch_join(d->path, filename);
    if (path && !rp_watch_ignored(w, path))
        touch_path(w, path);
    rp_free(path);
}

/* Watches dir (if not yet) and, when scan >= 0, queues a scan of it (initial: the first). */
void rp_watch_scan_queue(rp_watch_t *w, const char *dir, int scan)
{
    if (rp_map_get(&w->dirs, dir, strlen(dir)) == NULL) {
        dirw_t *d = rp_calloc(1, sizeof(*d));
        if (d == NULL || (d->path = rp_strndup(dir, strlen(dir))) == NULL) {
            rp_free(d);
            return;
        }
        d->w = w;
        d->entry.key = d->path;
        d->entry.keylen = strlen(d->path);
        int rc = uv_fs_event_init(w->loop, &d->ev);
        if (rc < 0) {
            RP_LOG_WARN("watch", "cannot watch %s: %s", dir, uv_strerror(rc));
            rp_free(d->path);
            rp_free(d);
            return;
        }
        d->ev.data = d;
        w->refs++;
        rc = uv_fs_event_start(&d->ev, on_fs_event, dir, 0);
        if (rc < 0) {
            RP_LOG_WARN("watch", "cannot watch %s: %s%s", dir, uv_strerror(rc),
                        rc == UV_ENOSPC ? " (raise fs.inotify.max_user_watches)" : "");
            uv_close((uv_handle_t *)&d->ev, rp_watch_dir_closed);
            return;
        }
        (void)rp_map_put(&w->dirs, &d->entry); /* UV_ENOMEM still links it: only slower */
    }
    if (scan >= 0)
        rp_watch_job_push(w, JOB_SCAN, dir, scan > 0);
}
