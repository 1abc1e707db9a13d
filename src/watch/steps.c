/* SPDX-License-Identifier: MIT */
/* The steps a job runs on libuv's thread pool: probe (read, SHA-256, registry), extract,
 * chunk, the batched index transaction, registry records, forgetting a deleted path and the
 * directory scan. They touch no loop state and emit nothing: every result goes in the job,
 * and on_work_done (jobs.c) reads it back on the loop thread. */
#include "watch/watch_int.h"

/* ---- thread-pool steps (no loop access, no events: results go in the job) ---- */

void rp_watch_fail_job(job_t *j, const char *kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->why, sizeof(j->why), fmt, ap);
    va_end(ap);
    j->err_kind = kind;
    j->out = OUT_FAIL;
}

static void hash_hex(const unsigned char *md, char *out)
{
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

static void step_probe(job_t *j)
{
    rp_watch_t *w = j->w;
    int fd = rp_watch_open_in_tree(w, j->path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        if (rp_watch_not_in_tree(fd)) {
            /* Gone, or a symbolic link (here or on the way: never followed, its target may be
             * outside the folder): what the path held before goes from the index. */
            long n = rp_watch_index_remove(w->ix, j->path, 0);
            j->removed = n > 0 ? n : 0;
            j->link = fd != -ENOENT;
            j->out = OUT_SKIP;
            return;
        }
        rp_watch_fail_job(j, "io", "cannot open the file: %s", strerror(-fd));
        return;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        j->out = OUT_SKIP; /* a directory, FIFO, ...: not a document */
        return;
    }
    j->size = st.st_size;
    j->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    /* A SQLite database (a hub's store, an index) changes with every event it records:
     * reporting it (even as too large) would feed a loop. Never a document; skipped quietly. */
    char magic[16];
    if (pread(fd, magic, sizeof(magic), 0) == (ssize_t)sizeof(magic) &&
        memcmp(magic, "SQLite format 3", sizeof(magic)) == 0) {
        close(fd);
        j->sqlite = 1;
        j->out = OUT_SKIP;
        return;
    }
    rp_watch_doc_t known;
    int k = rp_watch_index_lookup(w->ix, j->path, &known);
    if (k == 1 && known.size == j->size && known.mtime_ns == j->mtime_ns) {
        close(fd);
        j->out = OUT_SKIP;
        return;
    }
    if ((size_t)st.st_size > w->cfg.max_file_size) {
        close(fd);
        char lim[64];
        snprintf(lim, sizeof(lim), "%zu", w->cfg.max_file_size);
        rp_watch_fail_job(j, "too_large",
                          "the file is larger than the limit of %s bytes (--max-file-size)", lim);
        snprintf(j->doc.hash, sizeof(j->doc.hash), "size:%lld", (long long)j->size);
        j->doc.size = j->size;
        j->doc.mtime_ns = j->mtime_ns;
        return;
    }
    j->data = rp_malloc((size_t)st.st_size + 1);
    if (j->data == NULL) {
        close(fd);
        rp_watch_fail_job(j, "io", "%s", "out of memory reading the file");
        return;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, j->data + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            close(fd);
            rp_watch_fail_job(j, "io", "cannot read the file: %s", strerror(errno));
            return;
        }
        if (r == 0)
            break; /* truncated meanwhile: hash what is there; a later event brings the rest */
        got += (size_t)r;
    }
    close(fd);
    j->len = got;
    j->data[got] = '\0';
    unsigned char md[32];
    unsigned int mdl = 0;
    EVP_Digest(j->data, got, md, &mdl, EVP_sha256(), NULL);
    hash_hex(md, j->doc.hash);
    j->doc.size = j->size;
    j->doc.mtime_ns = j->mtime_ns;
    if (k == 1 && strcmp(known.hash, j->doc.hash) == 0) {
        /* A failed touch only means the next scan probes (and hashes) the file again. */
        (void)rp_watch_index_touch(w->ix, j->path, j->size, j->mtime_ns);
        j->out = OUT_SKIP;
        return;
    }
    j->fkind = rp_watch_kind_detect(j->rel, j->data, got < 4096 ? got : 4096);
    j->out = OUT_CHANGED;
}

static void step_extract(job_t *j)
{
    rp_buf_init(&j->text, j->w->cfg.max_file_size + 1024);
    rp_watch_kind_t k = j->fkind == RP_WATCH_PDF ? RP_WATCH_TEXT : j->fkind;
    if (rp_watch_extract(k, j->data ? j->data : "", j->len, &j->text, j->why, sizeof(j->why)) < 0) {
        j->err_kind = j->fkind == RP_WATCH_UNSUPPORTED ? "unsupported" : "extract";
        j->out = OUT_FAIL;
        return;
    }
    rp_free(j->data);
    j->data = NULL;
    if (j->fkind == RP_WATCH_PDF) {
        size_t i = 0;
        while (i < j->text.len && strchr(" \t\n\f\v", j->text.data[i]))
            i++;
        if (i == j->text.len) {
            rp_watch_fail_job(j, "no_text", "%s",
                              "the PDF has no text layer (a scanned PDF needs OCR first)");
            return;
        }
    }
    j->out = OUT_OK;
}

static void step_chunk(job_t *j)
{
    rp_watch_chunk_cfg_t cc = {j->w->cfg.chunk_size, j->w->cfg.chunk_overlap};
    j->nchunks = rp_watch_chunk(j->text.data ? j->text.data : "", j->text.len, &cc, &j->chunks);
    if (j->nchunks < 0) {
        rp_watch_fail_job(j, "chunk", "cannot chunk the text: %s", uv_strerror((int)j->nchunks));
        j->nchunks = 0;
        return;
    }
    j->out = OUT_OK;
}

/* Indexes the flush job's files in one transaction: all of them, or none. */
static void step_flush(job_t *f)
{
    rp_watch_index_t *ix = f->w->ix;
    f->out = OUT_OK;
    rp_list_node_t *it;
    rp_list_foreach(it, &f->members)
    {
        job_t *j = rp_container_of(it, job_t, node);
        j->gone = rp_watch_file_gone(j);
        if (j->gone)
            j->removed =
                rp_watch_index_remove(ix, j->path, 0) > 0; /* an older version's document */
    }
    if (rp_watch_index_begin(ix) < 0) {
        rp_watch_fail_job(f, "index", "%s", rp_watch_index_error(ix));
        return;
    }
    rp_list_foreach(it, &f->members)
    {
        job_t *j = rp_container_of(it, job_t, node);
        if (j->gone)
            continue;
        if (rp_watch_index_replace(ix, j->path, &j->doc, rp_watch_kind_name(j->fkind), NULL,
                                   j->text.data ? j->text.data : "", j->chunks,
                                   (size_t)j->nchunks) < 0) {
            rp_watch_fail_job(f, "index", "%s", rp_watch_index_error(ix));
            rp_watch_index_rollback(ix);
            return;
        }
    }
    if (rp_watch_index_commit(ix) < 0)
        rp_watch_fail_job(f, "index", "%s", rp_watch_index_error(ix));
}

/* Records the outcome in the registry: a failure with its reason (not retried until the
 * file changes), or an --exec success with the chunk count the command reported. */
static void step_record(job_t *j)
{
    const char *kind = j->w->cfg.exec_cmd ? "exec" : rp_watch_kind_name(j->fkind);
    if (rp_watch_file_gone(j)) {
        /* Deleted while processed: nothing to record, and what was recorded for it goes. */
        j->gone = 1;
        j->removed = rp_watch_index_remove(j->w->ix, j->path, 0) > 0;
        return;
    }
    if (j->doc.hash[0] == '\0')
        return; /* failed before the content was known: try again next time */
    if (rp_watch_index_replace(j->w->ix, j->path, &j->doc, kind, j->out == OUT_FAIL ? j->why : NULL,
                               "", NULL, 0) < 0)
        RP_LOG_ERROR("watch", "%s", rp_watch_index_error(j->w->ix));
    if (j->out != OUT_FAIL)
        j->doc.chunks = j->nchunks;
}

static int collect_path(void *ud, const char *path)
{
    return json_array_append_new(ud, json_string(path)) < 0;
}

/* Removes the document at path, or every document under the directory that was there; their
 * paths go in j->deleted (collected first: each is reported file:deleted). */
static void step_gone(job_t *j)
{
    rp_watch_index_t *ix = j->w->ix;
    rp_watch_doc_t doc;
    j->deleted = json_array();
    if (j->deleted && rp_watch_index_lookup(ix, j->path, &doc) == 1)
        collect_path(j->deleted, j->path);
    if (j->deleted && rp_watch_index_each(ix, j->path, collect_path, j->deleted) < 0)
        RP_LOG_ERROR("watch", "%s", rp_watch_index_error(ix));
    long n = rp_watch_index_remove(ix, j->path, 1);
    j->removed = n > 0 ? n : 0;
    if (n <= 0)
        json_array_clear(j->deleted); /* nothing went */
}

/* Adds path (takes ownership) to the scan's list. 0, or UV_ENOMEM (path freed). */
static int scan_add(job_t *j, char *path, int is_dir, const struct stat *st)
{
    if (j->nents == j->cap) {
        size_t nc = j->cap ? j->cap * 2 : 64;
        scan_ent_t *ne = rp_realloc(j->ents, nc * sizeof(*ne));
        if (ne == NULL) {
            rp_free(path);
            return UV_ENOMEM;
        }
        j->ents = ne;
        j->cap = nc;
    }
    j->ents[j->nents++] =
        (scan_ent_t){path, is_dir, 0, st->st_size,
                     (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec};
    return 0;
}

/* Scans the directory open on dfd (closed here), whose path is dir. Entries are looked at
 * with fstatat(AT_SYMLINK_NOFOLLOW) and subdirectories opened with openat(O_NOFOLLOW) from
 * dfd, so a symbolic link is never followed and the walk cannot leave the tree (nor loop). */
static void scan_dir(job_t *j, int dfd, const char *dir, int depth)
{
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        RP_LOG_WARN("watch", "cannot scan %s: %s", dir, strerror(errno));
        close(dfd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (rp_watch_ignored_name(de->d_name))
            continue;
        char *p = rp_watch_join(dir, de->d_name);
        if (p == NULL)
            break;
        if (rp_watch_ignored(j->w, p)) {
            rp_free(p);
            continue;
        }
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            rp_free(p); /* gone meanwhile */
            continue;
        }
        if (S_ISLNK(st.st_mode)) {
            RP_LOG_DEBUG("watch", "%s is a symbolic link: not followed", p);
            rp_free(p); /* never followed: no cycles, no way out of the tree */
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (depth >= MAX_DEPTH) {
                RP_LOG_WARN("watch", "%s: deeper than %d directories, not followed", p, MAX_DEPTH);
                rp_free(p);
                continue;
            }
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                RP_LOG_WARN("watch", "cannot scan %s: %s", p, strerror(errno));
                rp_free(p); /* replaced by a link since the fstatat, or unreadable */
                continue;
            }
            if (scan_add(j, p, 1, &st) < 0) {
                close(sub);
                continue;
            }
            scan_dir(j, sub, j->ents[j->nents - 1].path, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            scan_add(j, p, 0, &st);
        } else {
            rp_free(p);
        }
    }
    closedir(d);
}

static int cmp_ent(const void *a, const void *b)
{
    return strcmp(((const scan_ent_t *)a)->path, ((const scan_ent_t *)b)->path);
}

static int forget_vanished(void *ud, const char *path)
{
    job_t *j = ud;
    scan_ent_t key = {(char *)path, 0, 0, 0, 0};
    if (j->nents == 0 || bsearch(&key, j->ents, j->nents, sizeof(*j->ents), cmp_ent) == NULL) {
        /* Collected now, removed after the walk (the statement is still reading). */
        json_t *list = (json_t *)j->data;
        json_array_append_new(list, json_string(path));
    }
    return 0;
}

static void step_scan(job_t *j)
{
    int fd = rp_watch_open_in_tree(j->w, j->path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        /* Gone, or a link here or on the way since it was seen: not scanned (and, for the
         * first scan, nothing is forgotten on the strength of a scan that did not run). */
        j->link = fd != -ENOENT && rp_watch_not_in_tree(fd);
        if (!rp_watch_not_in_tree(fd))
            RP_LOG_WARN("watch", "cannot scan %s: %s", j->path, strerror(-fd));
        return;
    }
    scan_dir(j, fd, j->path, 0);
    /* Unchanged since the registry saw them (size and mtime): not even a job. A restart over
     * a large tree is then one pass of lookups here. */
    for (size_t i = 0; i < j->nents; i++) {
        scan_ent_t *e = &j->ents[i];
        rp_watch_doc_t doc;
        if (!e->is_dir && rp_watch_index_lookup(j->w->ix, e->path, &doc) == 1 &&
            doc.size == e->size && doc.mtime_ns == e->mtime_ns)
            e->known = 1;
    }
    if (!j->initial)
        return;
    /* Files deleted while nobody watched: their documents go too. */
    if (j->nents)
        qsort(j->ents, j->nents, sizeof(*j->ents), cmp_ent);
    json_t *list = json_array();
    if (list == NULL)
        return;
    j->data = (char *)list;
    if (rp_watch_index_each(j->w->ix, j->path, forget_vanished, j) < 0)
        RP_LOG_ERROR("watch", "cannot list the index under %s: %s", j->path,
                     rp_watch_index_error(j->w->ix));
    size_t i;
    json_t *v;
    j->deleted = json_array();
    json_array_foreach(list, i, v)
    {
        long n = rp_watch_index_remove(j->w->ix, json_string_value(v), 0);
        j->removed += n > 0 ? n : 0;
        if (n > 0 && j->deleted)
            json_array_append(j->deleted, v);
    }
    json_decref(list);
    j->data = NULL;
}

void rp_watch_on_work(uv_work_t *r)
{
    job_t *j = r->data;
    switch (j->step) {
    case ST_PROBE:
        step_probe(j);
        /* A small document: extract and chunk now, one thread hand-off instead of three (the
         * hand-offs cost more than the work); the events still mark each stage. */
        if (j->out == OUT_CHANGED && !j->w->cfg.exec_cmd && j->fkind != RP_WATCH_PDF &&
            j->len <= FUSE_BYTES) {
            j->fused = 1;
            step_extract(j);
            if (j->out == OUT_FAIL) {
                j->fail_at = ST_EXTRACT;
            } else {
                step_chunk(j);
                if (j->out == OUT_FAIL)
                    j->fail_at = ST_CHUNK;
            }
            j->out = OUT_CHANGED;
        }
        break;
    case ST_EXTRACT:
        step_extract(j);
        break;
    case ST_CHUNK:
        step_chunk(j);
        break;
    case ST_FLUSH:
        step_flush(j);
        break;
    case ST_RECORD:
        step_record(j);
        break;
    case ST_GONE:
        step_gone(j);
        break;
    case ST_SCAN:
        step_scan(j);
        break;
    }
}
