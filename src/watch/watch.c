/* SPDX-License-Identifier: MIT */
/* The watcher. Paths move through three places on the loop thread: `pending` (seen by a
 * directory scan or an inotify event, waiting to be quiet for settle_s: two stats settle_s
 * apart with the same size and mtime), `ready` (a FIFO of jobs), and `cur` (the one job in
 * flight). A job runs its steps on libuv's thread pool (probe: read + SHA-256 + registry;
 * extract; chunk; index) or as a child process (pdftotext, --exec), and each step's result
 * comes back to the loop, which emits the events and starts the next step. One job at a time
 * keeps the SQLite connection on one thread at a time and the events of a file together.
 *
 * Linux inotify is not recursive, so every directory has its own uv_fs_event_t; a new
 * directory is watched and then scanned (files created before the watch are not missed), and
 * a directory that disappears takes its watches and its documents with it.
 *
 * The watcher never leaves its folder: a symbolic link is never followed (the scan and the
 * live path see it with lstat and pass it by; a file that becomes one is forgotten like a
 * deleted one), and every file and directory is opened through watch/beneath.h from the
 * root's descriptor, so a link swapped in on the way after a check cannot lead outside. */
#include "watch/watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/list.h"
#include "util/log.h"
#include "util/map.h"
#include "watch/beneath.h"
#include "watch/chunk.h"
#include "watch/extract.h"
#include "watch/index.h"

#define EXEC_TAIL 2048 /* bytes of a command's stderr kept for the error text */
#define MAX_DEPTH 64   /* directory nesting followed by scans */
#define BATCH_FILES 64 /* files indexed in one transaction, at most */
#define BATCH_BYTES (16u << 20)
#define FUSE_BYTES (64u << 10) /* smaller files are probed, extracted and chunked in one step */
#define REMOVED_WHY "the file was deleted while it was being processed"

typedef struct dirw {
    rp_map_entry_t entry; /* key: path */
    uv_fs_event_t ev;
    rp_watch_t *w;
    char *path;
} dirw_t;

typedef struct pend {
    rp_map_entry_t entry; /* key: path */
    rp_watch_t *w;
    char *path;
    uv_fs_t req;
    int busy;     /* a stat is in flight */
    int dead;     /* unlinked from the map while busy: free on completion */
    int have_obs; /* size/mtime/exists below are an observation */
    int exists;
    int64_t size, mtime_ns;
    uint64_t stable_since; /* ms: the last change seen */
} pend_t;

typedef struct scan_ent {
    char *path;
    int is_dir;
    int known; /* the registry has it with this size and mtime: nothing to do */
    int64_t size, mtime_ns;
} scan_ent_t;

enum job_kind { JOB_FILE, JOB_GONE, JOB_SCAN, JOB_FLUSH };
enum step { ST_PROBE, ST_EXTRACT, ST_CHUNK, ST_FLUSH, ST_RECORD, ST_GONE, ST_SCAN };
enum outcome { OUT_SKIP, OUT_CHANGED, OUT_FAIL, OUT_OK };

typedef struct job {
    rp_list_node_t node;
    rp_watch_t *w;
    enum job_kind kind;
    int initial; /* SCAN: the first scan (also drops registry rows of vanished files) */
    char *path;
    const char *rel; /* path relative to the root */
    uv_work_t work;
    enum step step;
    enum outcome out;
    int reported; /* file:processing was emitted */
    int ended;    /* file:completed or file:failed was emitted */
    int fused;    /* probe also extracted and chunked (a small file) */
    int link;     /* probe/scan: the path is a symbolic link or has one on the way: not read */
    int gone;     /* the file was deleted while it was processed: reported failed, not recorded */
    int fail_at;  /* with fused: the step that failed (ST_EXTRACT, ST_CHUNK) or 0 */
    int sqlite;   /* probe found a SQLite database: skipped */
    /* FILE */
    int64_t size, mtime_ns;
    char *data; /* owned: the file's bytes, then pdftotext's output */
    size_t len;
    rp_watch_kind_t fkind;
    rp_watch_doc_t doc;
    rp_buf_t text;
    rp_watch_chunk_t *chunks;
    long nchunks;
    char why[1024];
    const char *err_kind;
    /* FLUSH: the chunked files it indexes in one transaction, in order */
    rp_list_node_t members;
    /* SCAN */
    scan_ent_t *ents;
    size_t nents, cap;
    long removed;
    json_t *deleted; /* GONE, SCAN: paths of the documents removed, each reported file:deleted */
    /* child process (pdftotext or --exec) */
    uv_process_t proc;
    uv_pipe_t pout, perr;
    uv_timer_t timer;
    int proc_open; /* handles of the child still open */
    int exited;    /* the child has exited */
    int eofs;      /* its stdout and stderr that reached EOF */
    int64_t exit_status;
    int term_signal;
    int timed_out;
    int too_much;
    rp_buf_t line;  /* --exec: the current stdout line */
    rp_buf_t etail; /* stderr tail */
    uint64_t last_progress_ms;
} job_t;

/* A queued job: only its kind and path (a job_t, with its process and pipe handles, is made
 * when it starts, so 100,000 files waiting cost 100,000 small entries). */
typedef struct qent {
    rp_list_node_t node;
    rp_map_entry_t entry; /* key: path (FILE entries: one per path) */
    enum job_kind kind;
    int initial;
    char path[];
} qent_t;

struct rp_watch {
    uv_loop_t *loop;
    rp_watch_config_t cfg;
    char root[PATH_MAX];
    int root_fd;           /* O_PATH descriptor of root: every open walks from it (watch/beneath.h) */
    rp_watch_sink_t *sink; /* borrowed; NULL once stopped */
    rp_watch_index_t *ix;
    uv_timer_t tick, heartbeat;
    rp_map_t dirs, pending, queued;
    rp_list_node_t ready;
    size_t nready;
    rp_list_node_t batch; /* chunked files waiting for the next index transaction */
    size_t nbatch, batch_bytes;
    /* Jobs off the thread pool: running a child (pdftotext, --exec; at most cfg.jobs), waiting
     * for a free child slot, or done with their child and waiting for `cur` to continue. */
    rp_list_node_t children, waiting, resume;
    unsigned nchildren;
    job_t *cur;
    int refs; /* open handles + jobs and stats in flight + 1 until stopped */
    int stopping;
    void (*done)(void *ud);
    void *done_ud;
    rp_watch_stats_t stats;
    int idle_logged;
    char *strs; /* owned copies of the config's strings */
};

static void job_next(rp_watch_t *w);
static void job_free(job_t *j);
static void scan_queue(rp_watch_t *w, const char *dir, int initial);
static void unwatch_tree(rp_watch_t *w, const char *dir);

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

static uint64_t now_ms(rp_watch_t *w)
{
    return uv_now(w->loop);
}

static void unref(rp_watch_t *w)
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

static int ignored_name(const char *name)
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

static int ignored(rp_watch_t *w, const char *path)
{
    const char *base = strrchr(path, '/');
    if (ignored_name(base ? base + 1 : path))
        return 1;
    for (size_t i = 0; i < sizeof(w->cfg.ignore) / sizeof(*w->cfg.ignore); i++) {
        const char *ig = w->cfg.ignore[i];
        if (ig && *ig) {
            size_t l = strlen(ig);
            /* The ignored file and its companions (-wal, -shm, -journal; .state, .tmp). */
            if (strncmp(path, ig, l) == 0 && (path[l] == '\0' || path[l] == '-' || path[l] == '.'))
                return 1;
        }
    }
    return 0;
}

static char *join(const char *dir, const char *name)
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

static const char *rel_of(rp_watch_t *w, const char *path)
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
static int open_in_tree(const rp_watch_t *w, const char *path, int flags)
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
static int not_in_tree(int rc)
{
    return rc == -ENOENT || rc == -ENOTDIR || rc == -ELOOP || rc == -EXDEV;
}

/* True when the file j is processing is no longer at its path (deleted, or replaced by a
 * link or a directory): j then ends failed ("removed"), never completed. Thread pool. */
static int file_gone(const job_t *j)
{
    struct stat st;
    int rc = stat_in_tree(j->w, j->path, &st);
    return not_in_tree(rc) || (rc == 0 && !S_ISREG(st.st_mode));
}

/* ---- events ---- */

static json_t *ev_new(rp_watch_t *w, const char *type)
{
    return json_pack("{s:s,s:s,s:s}", "type", type, "pipeline_id", w->cfg.pipeline_id, "pipeline_type",
                     w->cfg.pipeline_type);
}

static void emit(rp_watch_t *w, json_t *ev)
{
    if (ev == NULL) {
        RP_LOG_ERROR("watch", "out of memory building an event");
        return;
    }
    if (w->sink == NULL) {
        json_decref(ev);
        return;
    }
    w->sink->ops->emit(w->sink, ev);
}

/* The file object of rel's events (rel: the path relative to the root), its identity only:
 * id (rel, or a hash of it past 256 bytes) and name (rel, cut at 1024 bytes). */
static json_t *file_ident(const char *rel)
{
    json_t *f = json_object();
    if (f == NULL)
        return NULL;
    size_t rl = strlen(rel);
    if (rl <= 256) {
        json_object_set_new(f, "id", json_stringn(rel, rl));
    } else {
        unsigned char md[32];
        unsigned int mdl = 0;
        char id[80];
        EVP_Digest(rel, rl, md, &mdl, EVP_sha256(), NULL);
        int n = snprintf(id, sizeof(id), "path-sha256:");
        for (unsigned i = 0; i < 32; i++)
            n += snprintf(id + n, sizeof(id) - (size_t)n, "%02x", md[i]);
        json_object_set_new(f, "id", json_string(id));
    }
    size_t nl = rl;
    if (nl > 1024) {
        nl = 1024;
        while (nl > 0 && ((unsigned char)rel[nl] & 0xC0) == 0x80)
            nl--;
    }
    json_object_set_new(f, "name", json_stringn(rel, nl));
    return f;
}

/* The file object of j's events: its identity and what is known so far. */
static json_t *file_obj(job_t *j)
{
    json_t *f = file_ident(j->rel);
    if (f == NULL)
        return NULL;
    json_object_set_new(f, "size", json_integer(j->size));
    json_object_set_new(f, "mime_type",
                        json_string(j->w->cfg.exec_cmd && j->fkind == RP_WATCH_UNSUPPORTED
                                        ? "application/octet-stream"
                                        : rp_watch_kind_mime(j->fkind)));
    if (j->doc.hash[0])
        json_object_set_new(f, "hash", json_string(j->doc.hash));
    return f;
}

static json_t *file_ev(job_t *j, const char *type)
{
    json_t *ev = ev_new(j->w, type);
    json_t *f = file_obj(j);
    if (ev == NULL || f == NULL) {
        json_decref(ev);
        json_decref(f);
        return NULL;
    }
    json_object_set_new(ev, "file", f);
    return ev;
}

static void emit_processing(job_t *j)
{
    j->reported = 1;
    emit(j->w, file_ev(j, "file:processing"));
}

static void emit_progress(job_t *j, double p, const char *stage)
{
    json_t *ev = file_ev(j, "file:progress");
    if (ev) {
        json_t *f = json_object_get(ev, "file");
        json_object_set_new(f, "progress", json_real(p));
        if (stage && *stage)
            json_object_set_new(f, "stage", json_string(stage));
    }
    emit(j->w, ev);
}

static void emit_completed(job_t *j)
{
    json_t *ev = file_ev(j, "file:completed");
    if (ev) {
        json_t *f = json_object_get(ev, "file");
        json_object_set_new(f, "progress", json_real(1.0));
        json_object_set_new(f, "chunks", json_integer(j->nchunks));
    }
    j->ended = 1;
    j->w->stats.ingested++;
    j->w->stats.bytes += (uint64_t)j->size;
    j->w->stats.chunks += (uint64_t)j->nchunks;
    emit(j->w, ev);
}

static void emit_failed(job_t *j, int retryable)
{
    if (!j->reported)
        emit_processing(j);
    /* One line (a command's stderr has several), and no control character, which events
     * refuse (C0, DEL, and C1: 0xC2 0x80-0x9F in UTF-8). */
    char one[sizeof(j->why)];
    size_t o = 0;
    for (const char *c = j->why; *c && o + 4 < sizeof(one); c++) {
        unsigned char u = (unsigned char)*c;
        if (u == '\n') {
            memcpy(one + o, " | ", 3);
            o += 3;
        } else if (u == 0xC2 && (unsigned char)c[1] >= 0x80 && (unsigned char)c[1] < 0xA0) {
            one[o++] = ' ';
            c++;
        } else {
            one[o++] = u < 0x20 || u == 0x7F ? ' ' : *c;
        }
    }
    one[o] = '\0';
    memcpy(j->why, one, o + 1);
    json_t *ev = file_ev(j, "file:failed");
    if (ev) {
        json_t *f = json_object_get(ev, "file");
        json_object_set_new(f, "error",
                            json_pack("{s:s,s:s,s:b}", "message", j->why[0] ? j->why : "failed", "kind",
                                      j->err_kind ? j->err_kind : "error", "retryable", retryable));
    }
    j->ended = 1;
    j->w->stats.failed++;
    emit(j->w, ev);
    RP_LOG_INFO("watch", "%s failed: %s", j->rel, j->why);
}

/* j's file was deleted (or replaced by a link) while it was processed: it ends failed, not
 * retryable (there is nothing left to retry), so the hub never shows it completed. */
static void emit_removed(job_t *j)
{
    snprintf(j->why, sizeof(j->why), "%s", REMOVED_WHY);
    j->err_kind = "removed";
    emit_failed(j, 0);
}

/* The document registered for path is gone from the folder (and now from the index): the
 * hub's registry then says `deleted`, and viewers drop it from their lists. */
static void emit_deleted(rp_watch_t *w, const char *path)
{
    json_t *ev = ev_new(w, "file:deleted");
    json_t *f = file_ident(rel_of(w, path));
    if (ev == NULL || f == NULL) {
        json_decref(ev);
        json_decref(f);
        ev = NULL;
    } else {
        json_object_set_new(ev, "file", f);
    }
    emit(w, ev);
}

/* emit_deleted for each path of `paths` (a JSON array of strings, or NULL). */
static void emit_deleted_all(rp_watch_t *w, const json_t *paths)
{
    size_t i;
    const json_t *v;
    json_array_foreach(paths, i, v)
    {
        emit_deleted(w, json_string_value(v));
    }
}

static void emit_heartbeat(rp_watch_t *w, const char *type)
{
    json_t *ev = ev_new(w, type);
    if (ev) {
        json_object_set_new(ev, "heartbeat_interval", json_real(w->cfg.heartbeat_s));
        json_object_set_new(ev, "files_pending",
                            json_integer((json_int_t)(w->nready + w->pending.count + w->nbatch + (w->cur != NULL))));
        if (strcmp(type, "heartbeat") != 0) {
            char msg[PATH_MAX + 64];
            snprintf(msg, sizeof(msg), "%s %.4000s",
                     strcmp(type, "pipeline:online") == 0 ? "watching" : "stopped watching", w->root);
            json_object_set_new(ev, "message", json_string(msg));
        }
    }
    emit(w, ev);
}

static void on_heartbeat(uv_timer_t *t)
{
    emit_heartbeat(t->data, "heartbeat");
}

/* ---- thread-pool steps (no loop access, no events: results go in the job) ---- */

static int fail_job(job_t *j, const char *kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_job(job_t *j, const char *kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->why, sizeof(j->why), fmt, ap);
    va_end(ap);
    j->err_kind = kind;
    j->out = OUT_FAIL;
    return -1;
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
    int fd = open_in_tree(w, j->path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        if (not_in_tree(fd)) {
            /* Gone, or a symbolic link (here or on the way: never followed, its target may be
             * outside the folder): what the path held before goes from the index. */
            long n = rp_watch_index_remove(w->ix, j->path, 0);
            j->removed = n > 0 ? n : 0;
            j->link = fd != -ENOENT;
            j->out = OUT_SKIP;
            return;
        }
        fail_job(j, "io", "cannot open the file: %s", strerror(-fd));
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
        fail_job(j, "too_large", "the file is larger than the limit of %s bytes (--max-file-size)", lim);
        snprintf(j->doc.hash, sizeof(j->doc.hash), "size:%lld", (long long)j->size);
        j->doc.size = j->size;
        j->doc.mtime_ns = j->mtime_ns;
        return;
    }
    j->data = rp_malloc((size_t)st.st_size + 1);
    if (j->data == NULL) {
        close(fd);
        fail_job(j, "io", "%s", "out of memory reading the file");
        return;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, j->data + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            close(fd);
            fail_job(j, "io", "cannot read the file: %s", strerror(errno));
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
        rp_watch_index_touch(w->ix, j->path, j->size, j->mtime_ns);
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
            fail_job(j, "no_text", "%s", "the PDF has no text layer (a scanned PDF needs OCR first)");
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
        fail_job(j, "chunk", "cannot chunk the text: %s", uv_strerror((int)j->nchunks));
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
        j->gone = file_gone(j);
        if (j->gone)
            j->removed = rp_watch_index_remove(ix, j->path, 0) > 0; /* an older version's document */
    }
    if (rp_watch_index_begin(ix) < 0) {
        fail_job(f, "index", "%s", rp_watch_index_error(ix));
        return;
    }
    rp_list_foreach(it, &f->members)
    {
        job_t *j = rp_container_of(it, job_t, node);
        if (j->gone)
            continue;
        if (rp_watch_index_replace(ix, j->path, &j->doc, rp_watch_kind_name(j->fkind), NULL,
                                   j->text.data ? j->text.data : "", j->chunks, (size_t)j->nchunks) < 0) {
            fail_job(f, "index", "%s", rp_watch_index_error(ix));
            rp_watch_index_rollback(ix);
            return;
        }
    }
    if (rp_watch_index_commit(ix) < 0)
        fail_job(f, "index", "%s", rp_watch_index_error(ix));
}

/* Records the outcome in the registry: a failure with its reason (not retried until the
 * file changes), or an --exec success with the chunk count the command reported. */
static void step_record(job_t *j)
{
    const char *kind = j->w->cfg.exec_cmd ? "exec" : rp_watch_kind_name(j->fkind);
    if (file_gone(j)) {
        /* Deleted while processed: nothing to record, and what was recorded for it goes. */
        j->gone = 1;
        j->removed = rp_watch_index_remove(j->w->ix, j->path, 0) > 0;
        return;
    }
    if (j->doc.hash[0] == '\0')
        return; /* failed before the content was known: try again next time */
    if (rp_watch_index_replace(j->w->ix, j->path, &j->doc, kind, j->out == OUT_FAIL ? j->why : NULL, "", NULL, 0) < 0)
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

/* Adds path (takes ownership) to the scan's list. 0, or -1 (out of memory: path freed). */
static int scan_add(job_t *j, char *path, int is_dir, const struct stat *st)
{
    if (j->nents == j->cap) {
        size_t nc = j->cap ? j->cap * 2 : 64;
        scan_ent_t *ne = rp_realloc(j->ents, nc * sizeof(*ne));
        if (ne == NULL) {
            rp_free(path);
            return -1;
        }
        j->ents = ne;
        j->cap = nc;
    }
    j->ents[j->nents++] =
        (scan_ent_t){path, is_dir, 0, st->st_size, (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec};
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
        if (ignored_name(de->d_name))
            continue;
        char *p = join(dir, de->d_name);
        if (p == NULL)
            break;
        if (ignored(j->w, p)) {
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
    int fd = open_in_tree(j->w, j->path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        /* Gone, or a link here or on the way since it was seen: not scanned (and, for the
         * first scan, nothing is forgotten on the strength of a scan that did not run). */
        j->link = fd != -ENOENT && not_in_tree(fd);
        if (!not_in_tree(fd))
            RP_LOG_WARN("watch", "cannot scan %s: %s", j->path, strerror(-fd));
        return;
    }
    scan_dir(j, fd, j->path, 0);
    /* Unchanged since the registry saw them (size and mtime): not even a job. A restart over
     * a large tree is then one pass of lookups here. */
    for (size_t i = 0; i < j->nents; i++) {
        scan_ent_t *e = &j->ents[i];
        rp_watch_doc_t doc;
        if (!e->is_dir && rp_watch_index_lookup(j->w->ix, e->path, &doc) == 1 && doc.size == e->size &&
            doc.mtime_ns == e->mtime_ns)
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
    rp_watch_index_each(j->w->ix, j->path, forget_vanished, j);
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

static void on_work(uv_work_t *r)
{
    job_t *j = r->data;
    switch (j->step) {
    case ST_PROBE:
        step_probe(j);
        /* A small document: extract and chunk now, one thread hand-off instead of three (the
         * hand-offs cost more than the work); the events still mark each stage. */
        if (j->out == OUT_CHANGED && !j->w->cfg.exec_cmd && j->fkind != RP_WATCH_PDF && j->len <= FUSE_BYTES) {
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

/* ---- jobs on the loop ---- */

static void on_work_done(uv_work_t *r, int status);

/* The pending entry of path, made if needed (*fresh says so). NULL only for out-of-memory. */
static pend_t *pend_get(rp_watch_t *w, const char *path, int *fresh)
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
    rp_map_put(&w->pending, &p->entry);
    return p;
}

static void run_step(job_t *j, enum step s)
{
    j->step = s;
    j->work.data = j;
    int rc = uv_queue_work(j->w->loop, &j->work, on_work, on_work_done);
    if (rc < 0) {
        RP_LOG_ERROR("watch", "uv_queue_work: %s", uv_strerror(rc));
        job_free(j);
        return;
    }
    j->w->refs++;
}

static void job_free(job_t *j)
{
    rp_watch_t *w = j->w;
    rp_list_unlink(&j->node); /* from whichever list holds it */
    while (j->kind == JOB_FLUSH && !rp_list_empty(&j->members)) {
        job_t *m = rp_container_of(j->members.next, job_t, node);
        rp_list_unlink(&m->node);
        job_free(m);
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
    job_next(w);
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
    j->rel = rel_of(w, j->path);
    j->fkind = RP_WATCH_UNSUPPORTED;
    rp_list_init(&j->node);
    rp_list_init(&j->members);
    rp_buf_init(&j->text, 1);
    rp_buf_init(&j->line, 4096);
    rp_buf_init(&j->etail, EXEC_TAIL * 2);
    return j;
}

/* Queues a job (a FILE job once per path). initial: the first scan. */
static void job_push(rp_watch_t *w, enum job_kind kind, const char *path, int initial)
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
        rp_map_put(&w->queued, &q->entry);
    }
    rp_list_push(&w->ready, &q->node);
    w->nready++;
    w->idle_logged = 0;
    if (w->cur == NULL)
        job_next(w);
}

static void spawn_pdftotext(job_t *j);
static void spawn_exec(job_t *j);

/* A step failed or the file is done: record the failure (so an unchanged failing file is not
 * retried) and report it. */
static void finish_failed(job_t *j)
{
    emit_failed(j, strcmp(j->err_kind ? j->err_kind : "", "io") == 0 ||
                       strcmp(j->err_kind ? j->err_kind : "", "timeout") == 0);
    j->out = OUT_FAIL;
    run_step(j, ST_RECORD);
}

/* Chunked: into the next index transaction; the next file starts meanwhile. */
static void chunked(job_t *j)
{
    rp_watch_t *w = j->w;
    emit_progress(j, 0.7, "index");
    /* Into the next index transaction; the next file starts meanwhile. */
    w->cur = NULL;
    rp_list_push(&w->batch, &j->node);
    w->nbatch++;
    w->batch_bytes += j->text.len;
    job_next(w);
}

static void on_work_done(uv_work_t *r, int status)
{
    job_t *j = r->data;
    rp_watch_t *w = j->w;
    (void)status;
    if (w->stopping) {
        job_free(j);
        unref(w);
        return;
    }
    switch (j->step) {
    case ST_PROBE:
        if (j->out == OUT_SKIP) {
            if (j->link)
                RP_LOG_INFO("watch", "%s: a symbolic link on its way, not followed", j->path);
            if (j->removed) {
                RP_LOG_INFO("watch", "%s is gone: its chunks were removed", j->rel);
                emit_deleted(w, j->path);
            }
            if (j->sqlite)
                RP_LOG_DEBUG("watch", "%s is a SQLite database: not a document", j->rel);
            w->stats.removed += (uint64_t)j->removed;
            w->stats.skipped += j->removed == 0;
            job_free(j);
        } else if (j->out == OUT_FAIL) {
            finish_failed(j);
        } else {
            emit_processing(j);
            if (!w->cfg.exec_cmd) /* an --exec file says "exec" once its command starts (--jobs) */
                emit_progress(j, 0.0, "extract");
            if (w->cfg.exec_cmd)
                spawn_exec(j);
            else if (j->fkind == RP_WATCH_PDF)
                spawn_pdftotext(j);
            else if (!j->fused)
                run_step(j, ST_EXTRACT);
            else if (j->fail_at == ST_EXTRACT)
                finish_failed(j);
            else {
                emit_progress(j, 0.4, "chunk");
                if (j->fail_at == ST_CHUNK)
                    finish_failed(j);
                else
                    chunked(j);
            }
        }
        break;
    case ST_EXTRACT:
        if (j->out == OUT_FAIL) {
            finish_failed(j);
        } else {
            emit_progress(j, 0.4, "chunk");
            run_step(j, ST_CHUNK);
        }
        break;
    case ST_CHUNK:
        if (j->out == OUT_FAIL)
            finish_failed(j);
        else
            chunked(j);
        break;
    case ST_FLUSH:
        while (!rp_list_empty(&j->members)) {
            job_t *m = rp_container_of(j->members.next, job_t, node);
            rp_list_unlink(&m->node);
            if (m->gone) {
                emit_removed(m);
                if (m->removed)
                    emit_deleted(w, m->path); /* its older version was indexed: gone too */
            } else if (j->out == OUT_FAIL) {
                /* Not recorded: the file is tried again at the next start. */
                snprintf(m->why, sizeof(m->why), "%s", j->why);
                m->err_kind = "index";
                emit_failed(m, 1);
            } else {
                emit_completed(m);
            }
            job_free(m);
        }
        job_free(j);
        break;
    case ST_RECORD:
        if (j->out != OUT_FAIL && j->gone)
            emit_removed(j);
        else if (j->out != OUT_FAIL)
            emit_completed(j);
        if (j->gone && j->removed)
            emit_deleted(w, j->path); /* its older version was indexed: gone too */
        job_free(j);
        break;
    case ST_GONE:
        if (j->removed)
            RP_LOG_INFO("watch", "%s is gone: %ld document(s) removed from the index", j->rel, j->removed);
        w->stats.removed += (uint64_t)j->removed;
        emit_deleted_all(w, j->deleted);
        job_free(j);
        break;
    case ST_SCAN: {
        if (j->link) {
            /* Became a link (or one on its way) after it was seen: its watch goes too. */
            RP_LOG_INFO("watch", "%s: a symbolic link on its way, not followed", j->path);
            if (strcmp(j->path, w->root) != 0)
                unwatch_tree(w, j->path);
        }
        if (j->removed)
            RP_LOG_INFO("watch", "%ld document(s) removed: their files vanished while not watched", j->removed);
        w->stats.removed += (uint64_t)j->removed;
        emit_deleted_all(w, j->deleted);
        for (size_t i = 0; i < j->nents; i++) {
            scan_ent_t *e = &j->ents[i];
            if (e->is_dir) {
                scan_queue(w, e->path, -1); /* watch only: its files are in this list */
                continue;
            }
            if (e->known) {
                w->stats.skipped++;
                continue;
            }
            int fresh = 0;
            pend_t *p = pend_get(w, e->path, &fresh);
            if (p && fresh) {
                p->have_obs = 1;
                p->exists = 1;
                p->size = e->size;
                p->mtime_ns = e->mtime_ns;
                p->stable_since = now_ms(w);
            }
        }
        job_free(j);
        break;
    }
    }
    unref(w);
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

static void after_child(job_t *j);

static void job_next(rp_watch_t *w)
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
        run_step(f, ST_FLUSH);
        return;
    }
    if (!rp_list_empty(&w->resume)) {
        job_t *r = rp_container_of(w->resume.next, job_t, node);
        rp_list_unlink(&r->node);
        w->cur = r;
        after_child(r);
        return;
    }
    if (!rp_list_empty(&w->ready) && path_busy(w, rp_container_of(w->ready.next, qent_t, node)->path))
        return; /* the same file is still with its child: after it, in order */
    if (rp_list_empty(&w->ready)) {
        if (!w->idle_logged && w->pending.count == 0 && w->nchildren == 0 && rp_list_empty(&w->waiting)) {
            w->idle_logged = 1;
            RP_LOG_INFO("watch",
                        "idle: %llu ingested, %llu failed, %llu unchanged, %llu removed, %llu bytes, %llu chunks",
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
        job_next(w); /* that one is lost (logged); the next may fit */
        return;
    }
    w->cur = j;
    run_step(j, j->kind == JOB_FILE ? ST_PROBE : j->kind == JOB_GONE ? ST_GONE : ST_SCAN);
}

/* ---- child processes: pdftotext and --exec ---- */

static void fill_slots(rp_watch_t *w);

static void on_proc_closed(uv_handle_t *h)
{
    job_t *j = h->data;
    rp_watch_t *w = j->w;
    if (--j->proc_open > 0)
        return;
    if (w->stopping) {
        job_free(j);
        unref(w);
        return;
    }
    /* Everything of the child is closed: decide. */
    if (j->timed_out) {
        char t[32];
        snprintf(t, sizeof(t), "%g", w->cfg.exec_cmd ? w->cfg.exec_timeout_s : w->cfg.pdf_timeout_s);
        fail_job(j, "timeout",
                 w->cfg.exec_cmd ? "the command ran longer than %s s (--exec-timeout)"
                                 : "pdftotext ran longer than %s s",
                 t);
    } else if (j->too_much) {
        fail_job(j, "too_large", "%s", "the extracted text is larger than --max-file-size");
    } else if (j->exit_status != 0 || j->term_signal != 0) {
        /* The last non-empty line of stderr is the reason (pdftotext prints one per problem). */
        char *t = j->etail.data ? j->etail.data : "";
        size_t n = j->etail.len;
        while (n && (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' '))
            n--;
        t[n] = '\0';
        const char *last = t;
        if (!w->cfg.exec_cmd) {
            const char *nl = strrchr(t, '\n');
            last = nl ? nl + 1 : t;
        }
        char status[64];
        if (j->term_signal)
            snprintf(status, sizeof(status), "killed by signal %d", j->term_signal);
        else
            snprintf(status, sizeof(status), "exit status %lld", (long long)j->exit_status);
        if (w->cfg.exec_cmd)
            snprintf(j->why, sizeof(j->why), "%s%s%s", status, *last ? ": " : "", last);
        else
            snprintf(j->why, sizeof(j->why), "pdftotext (%s): %s", status, *last ? last : "no reason given");
        j->err_kind = w->cfg.exec_cmd ? "exec" : "corrupt";
        j->out = OUT_FAIL;
    } else {
        j->out = OUT_OK;
    }
    rp_buf_deinit(&j->etail);
    /* The slot is free: the next waiting file gets it; this one waits for `cur`. */
    rp_list_unlink(&j->node);
    w->nchildren--;
    rp_list_push(&w->resume, &j->node);
    fill_slots(w);
    job_next(w);
    unref(w);
}

/* Back on `cur` after the child: record, extract, or report the failure. */
static void after_child(job_t *j)
{
    if (j->out == OUT_FAIL) {
        finish_failed(j);
    } else if (j->w->cfg.exec_cmd) {
        j->out = OUT_OK;
        run_step(j, ST_RECORD);
    } else {
        /* pdftotext's output becomes the data the text extractor cleans. */
        j->data = j->text.data;
        j->len = j->text.len;
        j->text.data = NULL;
        j->text.len = j->text.cap = 0;
        run_step(j, ST_EXTRACT);
    }
}

/* The child runs in a process group of its own (`sh -c` may start more): kill all of it. */
static void kill_child(job_t *j)
{
    if (j->proc.pid > 0 && kill(-j->proc.pid, SIGKILL) < 0)
        uv_process_kill(&j->proc, SIGKILL);
}

static void close_child(job_t *j)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&j->pout, (uv_handle_t *)&j->perr, (uv_handle_t *)&j->timer,
                         (uv_handle_t *)&j->proc};
    for (size_t i = 0; i < 4; i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], on_proc_closed);
}

/* The child is done once it has exited and both its pipes reached EOF (its last output may
 * still be in a pipe when it exits). */
static void maybe_close_child(job_t *j)
{
    if (j->exited && j->eofs >= 2)
        close_child(j);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[65536]; /* loop thread only; consumed before the next read */
    (void)h;
    (void)suggested;
    buf->base = scratch;
    buf->len = sizeof(scratch);
}

static void exec_line(job_t *j, const char *s, size_t n)
{
    /* "progress 0.4 STAGE" → file:progress (at most every 100 ms unless the stage changes);
     * "chunks N" → the count file:completed reports. */
    char line[256];
    if (n >= sizeof(line))
        return;
    memcpy(line, s, n);
    line[n] = '\0';
    double p;
    char stage[65] = "";
    long long c;
    if (sscanf(line, "progress %lf %64s", &p, stage) >= 1) {
        if (!(p >= 0))
            p = 0;
        if (p > 1)
            p = 1;
        uint64_t now = now_ms(j->w);
        if (now - j->last_progress_ms >= 100 || stage[0] || p >= 1) {
            j->last_progress_ms = now;
            emit_progress(j, p, stage);
        }
    } else if (sscanf(line, "chunks %lld", &c) == 1 && c >= 0) {
        j->nchunks = (long)c;
    }
}

static void on_out(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    job_t *j = s->data;
    if (nread < 0) {
        uv_read_stop(s);
        if (j->w->cfg.exec_cmd && j->line.len && j->line.len < j->line.limit)
            exec_line(j, j->line.data, j->line.len);
        j->eofs++;
        maybe_close_child(j);
        return;
    }
    if (j->w->cfg.exec_cmd) {
        const char *p = buf->base;
        size_t n = (size_t)nread;
        while (n) {
            const char *nl = memchr(p, '\n', n);
            size_t take = nl ? (size_t)(nl - p) : n;
            if (rp_buf_append(&j->line, p, take) < 0)
                j->line.len = j->line.limit; /* too long: ignored when it ends */
            if (nl) {
                if (j->line.len < j->line.limit)
                    exec_line(j, j->line.data ? j->line.data : "", j->line.len);
                rp_buf_reset(&j->line);
                take++;
            }
            p += take;
            n -= take;
        }
        return;
    }
    if (rp_buf_append(&j->text, buf->base, (size_t)nread) < 0 && !j->too_much) {
        j->too_much = 1;
        kill_child(j);
        uv_read_stop(s);
        j->eofs++;
        maybe_close_child(j);
    }
}

static void on_err(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    job_t *j = s->data;
    if (nread < 0) {
        uv_read_stop(s);
        j->eofs++;
        maybe_close_child(j);
        return;
    }
    rp_buf_t *t = &j->etail;
    if ((size_t)nread >= EXEC_TAIL) {
        rp_buf_reset(t);
        rp_buf_append(t, buf->base + nread - EXEC_TAIL, EXEC_TAIL);
        return;
    }
    if (t->len + (size_t)nread > EXEC_TAIL)
        rp_buf_consume(t, t->len + (size_t)nread - EXEC_TAIL);
    rp_buf_append(t, buf->base, (size_t)nread);
}

static void on_child_timeout(uv_timer_t *t);

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    job_t *j = p->data;
    j->exit_status = status;
    j->term_signal = sig;
    j->exited = 1;
    /* A grandchild may hold the pipes open: give them 2 s after the exit, then close. */
    uv_timer_stop(&j->timer);
    uv_timer_start(&j->timer, on_child_timeout, 2000, 0);
    maybe_close_child(j);
}

static void on_child_timeout(uv_timer_t *t)
{
    job_t *j = t->data;
    if (j->exited) {
        close_child(j);
        return;
    }
    j->timed_out = 1;
    kill_child(j);
}

/* Runs args[0] for j; its stdin is in_fd (the caller closes its copy after), its stdout and
 * stderr are read into j. */
static void spawn_child(job_t *j, char **args, double timeout_s, int in_fd)
{
    rp_watch_t *w = j->w;
    uv_pipe_init(w->loop, &j->pout, 0);
    uv_pipe_init(w->loop, &j->perr, 0);
    uv_timer_init(w->loop, &j->timer);
    j->pout.data = j->perr.data = j->timer.data = j->proc.data = j;
    uv_stdio_container_t io[3] = {
        {.flags = UV_INHERIT_FD, .data.fd = in_fd},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&j->pout},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&j->perr},
    };
    uv_process_options_t o = {
        .exit_cb = on_exit_cb,
        .file = args[0],
        .args = args,
        .stdio_count = 3,
        .stdio = io,
        .flags = UV_PROCESS_DETACHED, /* setsid: its own process group, see kill_child */
    };
    rp_buf_deinit(&j->text);
    rp_buf_init(&j->text, w->cfg.max_file_size);
    j->proc_open = 4;
    w->refs++;
    int rc = uv_spawn(w->loop, &j->proc, &o);
    if (rc < 0) {
        if (rc == UV_ENOENT && !w->cfg.exec_cmd)
            snprintf(j->why, sizeof(j->why), "pdftotext is not installed (Debian package poppler-utils)");
        else
            snprintf(j->why, sizeof(j->why), "cannot start %s: %s", args[0], uv_strerror(rc));
        j->exit_status = 127;
        rp_buf_reset(&j->etail);
        rp_buf_append_str(&j->etail, j->why);
        /* uv_spawn failed: the process handle is initialised and must be closed too. */
        close_child(j);
        return;
    }
    uv_read_start((uv_stream_t *)&j->pout, on_alloc, on_out);
    uv_read_start((uv_stream_t *)&j->perr, on_alloc, on_err);
    if (timeout_s > 0)
        uv_timer_start(&j->timer, on_child_timeout, (uint64_t)(timeout_s * 1000), 0);
}

static void run_pdftotext(job_t *j, int fd)
{
    /* The file is pdftotext's stdin ("-"): it reads what the watcher opened, not a path. */
    char *args[] = {"pdftotext", "-enc", "UTF-8", "-eol", "unix", "-", "-", NULL};
    rp_free(j->data);
    j->data = NULL;
    spawn_child(j, args, j->w->cfg.pdf_timeout_s, fd);
}

static void run_exec(job_t *j, int fd)
{
    emit_progress(j, 0.0, "exec");
    rp_free(j->data);
    j->data = NULL;
    char script[4200];
    snprintf(script, sizeof(script), "%s \"$1\"", j->w->cfg.exec_cmd);
    char *args[] = {"/bin/sh", "-c", script, "ragpulse-exec", j->path, NULL};
    spawn_child(j, args, j->w->cfg.exec_timeout_s, fd);
}

/* Starts j's child in a free slot (--jobs). Its stdin is the file, opened through the tree
 * now (a link swapped in since the probe cannot lead it outside). A file no longer there
 * fails ("removed") without a child and waits in `resume`. */
static void child_start(job_t *j)
{
    rp_watch_t *w = j->w;
    int fd = open_in_tree(w, j->path, O_RDONLY | O_NONBLOCK);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -ENOENT; /* replaced by a directory or a FIFO: not the file that was probed */
    }
    if (fd < 0) {
        if (not_in_tree(fd))
            fail_job(j, "removed", "%s", REMOVED_WHY);
        else
            fail_job(j, "io", "cannot open the file: %s", strerror(-fd));
        rp_list_push(&w->resume, &j->node);
        return;
    }
    w->nchildren++;
    rp_list_push(&w->children, &j->node);
    if (w->cfg.exec_cmd)
        run_exec(j, fd);
    else
        run_pdftotext(j, fd);
    close(fd);
}

/* Gives the free child slots to the waiting files, in order. */
static void fill_slots(rp_watch_t *w)
{
    while (w->nchildren < w->cfg.jobs && !rp_list_empty(&w->waiting)) {
        job_t *n = rp_container_of(w->waiting.next, job_t, node);
        rp_list_unlink(&n->node);
        child_start(n);
    }
}

/* j needs a child: it gives `cur` up (other files go on meanwhile) and runs its child now or
 * when a slot frees; after it, j waits in `resume` for `cur` again. */
static void spawn_pdftotext(job_t *j)
{
    rp_watch_t *w = j->w;
    w->cur = NULL;
    rp_list_push(&w->waiting, &j->node);
    fill_slots(w);
    job_next(w);
}

static void spawn_exec(job_t *j)
{
    spawn_pdftotext(j); /* the same road; child_start picks the command */
}

/* ---- pending paths: settle, then queue ---- */

static void pend_free(pend_t *p)
{
    rp_free(p->path);
    rp_free(p);
}

static void pend_drop(rp_watch_t *w, pend_t *p)
{
    rp_map_del(&w->pending, &p->entry);
    if (p->busy)
        p->dead = 1;
    else
        pend_free(p);
}

static void dir_closed(uv_handle_t *h)
{
    dirw_t *d = h->data;
    rp_watch_t *w = d->w;
    rp_free(d->path);
    rp_free(d);
    unref(w);
}

/* Drops the watches of dir and every directory under it. */
static void unwatch_tree(rp_watch_t *w, const char *dir)
{
    size_t dl = strlen(dir), b;
    for (rp_map_entry_t *e = rp_map_first(&w->dirs, &b); e;) {
        rp_map_entry_t *next = rp_map_next(&w->dirs, e, &b);
        dirw_t *d = rp_container_of(e, dirw_t, entry);
        if (strncmp(d->path, dir, dl) == 0 && (d->path[dl] == '\0' || d->path[dl] == '/')) {
            rp_map_del(&w->dirs, e);
            uv_fs_event_stop(&d->ev);
            uv_close((uv_handle_t *)&d->ev, dir_closed);
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
    int64_t mtime = exists ? (int64_t)req->statbuf.st_mtim.tv_sec * 1000000000 + req->statbuf.st_mtim.tv_nsec : -1;
    uv_fs_req_cleanup(req);
    if (p->dead || w->stopping) {
        pend_free(p);
        unref(w);
        return;
    }
    if (is_dir) {
        char *path = p->path;
        p->path = NULL;
        pend_drop(w, p);
        if (rp_map_get(&w->dirs, path, strlen(path)) == NULL)
            scan_queue(w, path, 0);
        rp_free(path);
        unref(w);
        return;
    }
    uint64_t now = now_ms(w);
    int settled = now - p->stable_since >= (uint64_t)(w->cfg.settle_s * 1000);
    int same = p->have_obs && p->exists == exists && p->size == size && p->mtime_ns == mtime;
    if (settled && same) {
        char *path = p->path;
        p->path = NULL;
        pend_drop(w, p);
        if (!exists) {
            if (is_link)
                RP_LOG_INFO("watch", "%s is a symbolic link: not followed", path);
            unwatch_tree(w, path);
            job_push(w, JOB_GONE, path, 0);
        } else if (is_reg) {
            job_push(w, JOB_FILE, path, 0);
        }
        rp_free(path);
        unref(w);
        return;
    }
    if (!same) {
        p->have_obs = 1;
        p->exists = exists;
        p->size = size;
        p->mtime_ns = mtime;
        p->stable_since = now;
    }
    unref(w);
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
    pend_t *p = pend_get(w, path, &fresh);
    if (p == NULL)
        return;
    p->stable_since = now_ms(w);
    if (!p->busy)
        pend_stat(w, p); /* the observation the settle check compares with */
}

static void on_tick(uv_timer_t *t)
{
    rp_watch_t *w = t->data;
    uint64_t now = now_ms(w), settle = (uint64_t)(w->cfg.settle_s * 1000);
    size_t b;
    for (rp_map_entry_t *e = rp_map_first(&w->pending, &b); e; e = rp_map_next(&w->pending, e, &b)) {
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
        scan_queue(w, d->path, 0); /* the kernel lost track: look again */
        return;
    }
    char *path = join(d->path, filename);
    if (path && !ignored(w, path))
        touch_path(w, path);
    rp_free(path);
}

/* Watches dir (if not yet) and, when scan >= 0, queues a scan of it (initial: the first). */
static void scan_queue(rp_watch_t *w, const char *dir, int scan)
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
        uv_fs_event_init(w->loop, &d->ev);
        d->ev.data = d;
        w->refs++;
        int rc = uv_fs_event_start(&d->ev, on_fs_event, dir, 0);
        if (rc < 0) {
            RP_LOG_WARN("watch", "cannot watch %s: %s%s", dir, uv_strerror(rc),
                        rc == UV_ENOSPC ? " (raise fs.inotify.max_user_watches)" : "");
            uv_close((uv_handle_t *)&d->ev, dir_closed);
            return;
        }
        rp_map_put(&w->dirs, &d->entry);
    }
    if (scan >= 0)
        job_push(w, JOB_SCAN, dir, scan > 0);
}

/* ---- life cycle ---- */

rp_watch_t *rp_watch_new(uv_loop_t *loop, const rp_watch_config_t *cfg, rp_watch_sink_t *sink, char *err, size_t errlen)
{
    if (cfg->chunk_size < 16 || cfg->chunk_overlap >= cfg->chunk_size / 2) {
        snprintf(err, errlen, "--chunk-overlap must be less than half of --chunk-size (and the size >= 16)");
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
        snprintf(err, errlen, "cannot watch %s: %s", cfg->dir, errno == ENOTDIR ? "not a directory" : strerror(errno));
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
    const char **dst[] = {&w->cfg.pipeline_id, &w->cfg.pipeline_type, &w->cfg.exec_cmd, &w->cfg.ignore[0],
                          &w->cfg.ignore[1],   &w->cfg.ignore[2],     &w->cfg.ignore[3]};
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
    unref(h->data);
}

int rp_watch_start(rp_watch_t *w, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    emit_heartbeat(w, "pipeline:online");
    RP_LOG_INFO("watch", "watching %s (pipeline %s)", w->root, w->cfg.pipeline_id);
    uv_timer_init(w->loop, &w->tick);
    uv_timer_init(w->loop, &w->heartbeat);
    w->tick.data = w->heartbeat.data = w;
    w->refs += 2;
    uint64_t tick = (uint64_t)(w->cfg.settle_s * 250);
    tick = tick < 20 ? 20 : tick > 250 ? 250 : tick;
    uv_timer_start(&w->tick, on_tick, tick, tick);
    uint64_t hb = (uint64_t)(w->cfg.heartbeat_s * 1000);
    uv_timer_start(&w->heartbeat, on_heartbeat, hb, hb);
    scan_queue(w, w->root, 1);
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
    w->stopping = 1; /* from here on nothing starts: job_free no longer runs the next job */
    w->done = done;
    w->done_ud = ud;
    job_t *j = w->cur;
    if (j && j->kind == JOB_FILE && j->reported && !j->ended) {
        snprintf(j->why, sizeof(j->why), "interrupted: the pipeline stopped while processing the file");
        j->err_kind = "interrupted";
        emit_failed(j, 1);
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
            snprintf(m->why, sizeof(m->why), "interrupted: the pipeline stopped while processing the file");
            m->err_kind = "interrupted";
            emit_failed(m, 1);
        }
    }
    rp_list_node_t *idle[] = {&w->waiting, &w->resume, &w->batch};
    for (size_t l = 0; l < 3; l++)
        while (!rp_list_empty(idle[l]))
            job_free(rp_container_of(idle[l]->next, job_t, node));
    w->nbatch = 0;
    if (w->sink) {
        emit_heartbeat(w, "pipeline:offline");
        RP_LOG_INFO("watch", "stopped watching %s", w->root);
    }
    w->sink = NULL;
    if (uv_is_active((uv_handle_t *)&w->tick) || w->tick.loop) {
        uv_close((uv_handle_t *)&w->tick, timer_closed);
        uv_close((uv_handle_t *)&w->heartbeat, timer_closed);
    }
    size_t b;
    for (rp_map_entry_t *e = rp_map_first(&w->dirs, &b); e; e = rp_map_next(&w->dirs, e, &b)) {
        dirw_t *d = rp_container_of(e, dirw_t, entry);
        uv_fs_event_stop(&d->ev);
        uv_close((uv_handle_t *)&d->ev, dir_closed);
    }
    /* Closing frees them in dir_closed; the map no longer matters. */
    w->dirs.count = 0;
    for (size_t i = 0; i < w->dirs.nbuckets; i++)
        w->dirs.buckets[i] = NULL;
    for (rp_map_entry_t *e = rp_map_first(&w->pending, &b); e;) {
        rp_map_entry_t *next = rp_map_next(&w->pending, e, &b);
        pend_drop(w, rp_container_of(e, pend_t, entry));
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
        kill_child(c);
        close_child(c);
    }
    unref(w);
}
