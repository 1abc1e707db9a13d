/* SPDX-License-Identifier: MIT */
/* The watcher's life cycle (new, start, stop, stats) and the path helpers every part uses
 * (ignore rules, paths relative to the root, opens beneath the root's descriptor). The
 * watcher frees itself when its last reference goes (unref): handles, jobs and stats in
 * flight each hold one, and rp_watch_stop drops the first. See watch_int.h for the parts. */
#include "watch/watch.h"

#include "watch/watch_int.h"

/* ---- helpers ---- */

void rp_watch_config_defaults(rp_watch_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->pipeline_type = "local_files";
    cfg->settle_s = 1.0;
    cfg->heartbeat_s = 30;
    cfg->chunk_size = 1000;
    cfg->chunk_overlap = 200;
    cfg->max_file_size = 100u << 20;
    cfg->pdf_timeout_s = 60;
    cfg->exec_timeout_s = 3600;
    cfg->jobs = 1;
}

uint64_t rp_watch_now_ms(rp_watch_t *w)
{
    return uv_now(w->loop);
}

void rp_watch_unref(rp_watch_t *w)
{
    if (--w->refs > 0)
        return;
    rp_watch_index_close(w->ix);
    close(w->root_fd);
    rp_map_deinit(&w->dirs);
    rp_map_deinit(&w->pending);
    rp_map_deinit(&w->queued);
    void (*done)(void *) = w->done;
    void *ud = w->done_ud;
    rp_free(w->strs);
    rp_free(w);
    if (done)
        done(ud);
}

int rp_watch_ignored_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || name[0] == '.' || name[n - 1] == '~' || name[0] == '#')
        return 1;
    static const char *const sfx[] = {".swp",    ".swx",    ".tmp",        ".part", ".crdownload",
                                      ".db-wal", ".db-shm", ".db-journal", NULL};
    for (const char *const *s = sfx; *s; s++) {
        size_t l = strlen(*s);
        if (n > l && strcmp(name + n - l, *s) == 0)
            return 1;
    }
    return 0;
}

int rp_watch_ignored(rp_watch_t *w, const char *path)
{
    const char *base = strrchr(path, '/');
    if (rp_watch_ignored_name(base ? base + 1 : path))
        return 1;
    for (size_t i = 0; i < sizeof(w->cfg.ignore) / sizeof(*w->cfg.ignore); i++) {
        const char *ig = w->cfg.ignore[i];
        if (ig && *ig) {
            size_t l = strlen(ig);
            /* The rp_watch_ignored file and its companions (-wal, -shm, -journal; .state, .tmp). */
            if (strncmp(path, ig, l) == 0 && (path[l] == '\0' || path[l] == '-' || path[l] == '.'))
                return 1;
        }
    }
    return 0;
}

char *rp_watch_join(const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    char *p = rp_malloc(dl + nl + 2);
    if (p == NULL)
        return NULL;
    memcpy(p, dir, dl);
    p[dl] = '/';
    memcpy(p + dl + 1, name, nl + 1);
    return p;
}

const char *rp_watch_rel_of(rp_watch_t *w, const char *path)
{
    size_t rl = strlen(w->root);
    if (strncmp(path, w->root, rl) == 0 && path[rl] == '/')
        return path + rl + 1;
    return path;
}

/* path relative to the root ("" for the root itself), or NULL when it is not under it. */
static const char *tree_rel(const rp_watch_t *w, const char *path)
{
    size_t rl = strlen(w->root);
    if (strcmp(path, w->root) == 0)
        return "";
    if (strncmp(path, w->root, rl) == 0 && (path[rl] == '/' || (rl > 0 && w->root[rl - 1] == '/')))
        return path + rl;
    return NULL;
}

/* Open (or lstat) a path under the root, walking from the root's descriptor: a symbolic
 * link there or on the way is -ELOOP / -ENOTDIR (see watch/beneath.h); a path not under the
 * root is -EXDEV. The descriptor is the caller's. Any thread. */
int rp_watch_open_in_tree(const rp_watch_t *w, const char *path, int flags)
{
    const char *rel = tree_rel(w, path);
    return rel ? rp_watch_open_beneath(w->root_fd, rel, flags) : -EXDEV;
}

static int stat_in_tree(const rp_watch_t *w, const char *path, struct stat *st)
{
    const char *rel = tree_rel(w, path);
    return rel ? rp_watch_stat_beneath(w->root_fd, rel, st) : -EXDEV;
}

/* True for an open or stat result that means "not a file of the tree at this name": missing,
 * or a symbolic link there or on the way (never followed). */
int rp_watch_not_in_tree(int rc)
{
    return rc == -ENOENT || rc == -ENOTDIR || rc == -ELOOP || rc == -EXDEV;
}

/* True when the file j is processing is no longer at its path (deleted, or replaced by a
 * link or a directory): j then ends failed ("removed"), never completed. Thread pool. */
int rp_watch_file_gone(const job_t *j)
{
    struct stat st;
    int rc = stat_in_tree(j->w, j->path, &st);
    return rp_watch_not_in_tree(rc) || (rc == 0 && !S_ISREG(st.st_mode));
}

/* ---- life cycle ---- */

rp_watch_t *rp_watch_new(uv_loop_t *loop, const rp_watch_config_t *cfg, rp_watch_sink_t *sink,
                         char *err, size_t errlen)
{
    if (cfg->chunk_size < 16 || cfg->chunk_overlap >= cfg->chunk_size / 2) {
        snprintf(err, errlen,
                 "--chunk-overlap must be less than half of --chunk-size (and the size >= 16)");
        return NULL;
    }
    rp_watch_t *w = rp_calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->loop = loop;
    w->cfg = *cfg;
    w->sink = sink;
    w->refs = 1;
    w->root_fd = -1;
    rp_map_init(&w->dirs);
    rp_map_init(&w->pending);
    rp_map_init(&w->queued);
    rp_list_init(&w->ready);
    rp_list_init(&w->batch);
    rp_list_init(&w->children);
    rp_list_init(&w->waiting);
    rp_list_init(&w->resume);
    if (w->cfg.jobs == 0)
        w->cfg.jobs = 1;
    if (realpath(cfg->dir, w->root) == NULL) {
        snprintf(err, errlen, "cannot watch %s: %s", cfg->dir, strerror(errno));
        goto undo;
    }
    w->root_fd = open(w->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (w->root_fd < 0) {
        snprintf(err, errlen, "cannot watch %s: %s", cfg->dir,
                 errno == ENOTDIR ? "not a directory" : strerror(errno));
        goto undo;
    }
    /* Own copies of the strings: the config may be on the caller's stack. */
    size_t total = 0;
    const char *strs[] = {cfg->pipeline_id, cfg->pipeline_type, cfg->exec_cmd, cfg->ignore[0],
                          cfg->ignore[1],   cfg->ignore[2],     cfg->ignore[3]};
    for (size_t i = 0; i < sizeof(strs) / sizeof(*strs); i++)
        total += strs[i] ? strlen(strs[i]) + 1 : 0;
    w->strs = rp_malloc(total + 1);
    if (w->strs == NULL) {
        snprintf(err, errlen, "out of memory");
        goto undo;
    }
    char *o = w->strs;
    const char **dst[] = {&w->cfg.pipeline_id, &w->cfg.pipeline_type, &w->cfg.exec_cmd,
                          &w->cfg.ignore[0],   &w->cfg.ignore[1],     &w->cfg.ignore[2],
                          &w->cfg.ignore[3]};
    for (size_t i = 0; i < sizeof(strs) / sizeof(*strs); i++) {
        if (strs[i] == NULL)
            continue;
        size_t l = strlen(strs[i]) + 1;
        memcpy(o, strs[i], l);
        *dst[i] = o;
        o += l;
    }
    w->cfg.dir = w->root;
    w->cfg.index_path = NULL;
    if (cfg->exec_cmd && strlen(cfg->exec_cmd) > 4000) {
        snprintf(err, errlen, "--exec: the command is too long");
        goto undo;
    }
    w->ix = rp_watch_index_open(cfg->index_path ? cfg->index_path : "ragpulse.db", 0, err, errlen);
    if (w->ix == NULL)
        goto undo;
    return w;
undo:
    if (w->root_fd >= 0)
        close(w->root_fd);
    rp_free(w->strs);
    rp_map_deinit(&w->dirs);
    rp_map_deinit(&w->pending);
    rp_map_deinit(&w->queued);
    rp_free(w);
    return NULL;
}

static void timer_closed(uv_handle_t *h)
{
    rp_watch_unref(h->data);
}

int rp_watch_start(rp_watch_t *w, char *err, size_t errlen)
{
    rp_watch_emit_heartbeat(w, "pipeline:online");
    RP_LOG_INFO("watch", "watching %s (pipeline %s)", w->root, w->cfg.pipeline_id);
    /* Both timers or neither: rp_watch_stop closes the two once tick is initialised. */
    int rc = uv_timer_init(w->loop, &w->tick);
    if (rc == 0) {
        w->tick.data = w;
        rc = uv_timer_init(w->loop, &w->heartbeat);
        if (rc < 0) { /* tick alone: closed now, and rp_watch_stop sees it closing */
            w->refs++;
            uv_close((uv_handle_t *)&w->tick, timer_closed);
        }
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot start the watcher's timers: %s", uv_strerror(rc));
        return rc;
    }
    w->tick.data = w->heartbeat.data = w;
    w->refs += 2;
    uint64_t tick = (uint64_t)(w->cfg.settle_s * 250);
    tick = tick < 20 ? 20 : tick > 250 ? 250 : tick;
    uint64_t hb = (uint64_t)(w->cfg.heartbeat_s * 1000);
    rc = uv_timer_start(&w->tick, rp_watch_on_tick, tick, tick);
    if (rc == 0)
        rc = uv_timer_start(&w->heartbeat, rp_watch_on_heartbeat, hb, hb);
    if (rc < 0) {
        snprintf(err, errlen, "cannot start the watcher's timers: %s", uv_strerror(rc));
        return rc;
    }
    rp_watch_scan_queue(w, w->root, 1);
    return 0;
}

void rp_watch_get_stats(const rp_watch_t *w, rp_watch_stats_t *st)
{
    *st = w->stats;
    st->queued = w->nready + w->pending.count;
}

void rp_watch_stop(rp_watch_t *w, void (*done)(void *ud), void *ud)
{
    if (w->stopping)
        return;
    w->stopping =
        1; /* from here on nothing starts: rp_watch_job_free no longer runs the next job */
    w->done = done;
    w->done_ud = ud;
    job_t *j = w->cur;
    if (j && j->kind == JOB_FILE && j->reported && !j->ended) {
        snprintf(j->why, sizeof(j->why),
                 "interrupted: the pipeline stopped while processing the file");
        j->err_kind = "interrupted";
        rp_watch_emit_failed(j, 1);
    }
    /* Files with a child, waiting for one, waiting for their index transaction (or in the one
     * running) stop too. */
    rp_list_node_t *lists[] = {&w->children, &w->waiting, &w->resume, &w->batch,
                               j && j->kind == JOB_FLUSH ? &j->members : NULL};
    for (size_t l = 0; l < sizeof(lists) / sizeof(*lists); l++) {
        rp_list_node_t *it;
        if (lists[l] == NULL)
            continue;
        rp_list_foreach(it, lists[l])
        {
            job_t *m = rp_container_of(it, job_t, node);
            if (!m->reported || m->ended)
                continue;
            snprintf(m->why, sizeof(m->why),
                     "interrupted: the pipeline stopped while processing the file");
            m->err_kind = "interrupted";
            rp_watch_emit_failed(m, 1);
        }
    }
    rp_list_node_t *idle[] = {&w->waiting, &w->resume, &w->batch};
    for (size_t l = 0; l < 3; l++)
        while (!rp_list_empty(idle[l]))
            rp_watch_job_free(rp_container_of(idle[l]->next, job_t, node));
    w->nbatch = 0;
    if (w->sink) {
        rp_watch_emit_heartbeat(w, "pipeline:offline");
        RP_LOG_INFO("watch", "stopped watching %s", w->root);
    }
    w->sink = NULL;
    if ((uv_is_active((uv_handle_t *)&w->tick) || w->tick.loop) &&
        !uv_is_closing((uv_handle_t *)&w->tick)) {
        uv_close((uv_handle_t *)&w->tick, timer_closed);
        uv_close((uv_handle_t *)&w->heartbeat, timer_closed);
    }
    size_t b;
    for (rp_map_entry_t *e = rp_map_first(&w->dirs, &b); e; e = rp_map_next(&w->dirs, e, &b)) {
        dirw_t *d = rp_container_of(e, dirw_t, entry);
        uv_fs_event_stop(&d->ev);
        uv_close((uv_handle_t *)&d->ev, rp_watch_dir_closed);
    }
    /* Closing frees them in rp_watch_dir_closed; the map no longer matters. */
    w->dirs.count = 0;
    for (size_t i = 0; i < w->dirs.nbuckets; i++)
        w->dirs.buckets[i] = NULL;
    for (rp_map_entry_t *e = rp_map_first(&w->pending, &b); e;) {
        rp_map_entry_t *next = rp_map_next(&w->pending, e, &b);
        rp_watch_pend_drop(w, rp_container_of(e, pend_t, entry));
        e = next;
    }
    while (!rp_list_empty(&w->ready)) {
        qent_t *q = rp_container_of(w->ready.next, qent_t, node);
        rp_list_unlink(&q->node);
        if (q->kind == JOB_FILE)
            rp_map_del(&w->queued, &q->entry);
        w->nready--;
        rp_free(q);
    }
    /* Children: killed, not waited for (their last output no longer matters); each job goes in
     * its close callback. */
    rp_list_node_t *it;
    rp_list_foreach(it, &w->children)
    {
        job_t *c = rp_container_of(it, job_t, node);
        rp_watch_kill_child(c);
        rp_watch_close_child(c);
    }
    rp_watch_unref(w);
}
