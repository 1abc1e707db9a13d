/* SPDX-License-Identifier: MIT */
#ifndef RP_WATCH_WATCH_INT_H
#define RP_WATCH_WATCH_INT_H

/* Private to src/watch/watch.c, events.c, steps.c, jobs.c, child.c and pending.c: the watcher
 * struct, its jobs and the functions the parts call across files. Loop thread unless a
 * function says it runs on the thread pool (steps.c). Nothing outside src/watch includes it.
 *
 * The design, for all the parts. Paths move through three places on the loop thread: `pending`
 * (seen by a directory scan or an inotify event, waiting to be quiet for settle_s: two stats
 * settle_s apart with the same size and mtime), `ready` (a FIFO of jobs), and `cur` (the one job in
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

#include "http/client.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/list.h"
#include "util/log.h"
#include "util/map.h"
#include "watch/beneath.h"
#include "watch/chunk.h"
#include "watch/extract.h"
#include "watch/index.h"
#include "watch/sink.h"

#define EXEC_TAIL   2048 /* bytes of a command's stderr kept for the error text */
#define MAX_DEPTH   64   /* directory nesting followed by scans */
#define BATCH_FILES 64   /* files indexed in one transaction, at most */
#define BATCH_BYTES (16u << 20)
#define FUSE_BYTES  (64u << 10) /* smaller files are probed, extracted and chunked in one step */
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

enum job_kind {
    JOB_FILE,
    JOB_GONE,
    JOB_SCAN,
    JOB_FLUSH
};
enum step {
    ST_PROBE,
    ST_EXTRACT,
    ST_CHUNK,
    ST_FLUSH,
    ST_RECORD,
    ST_GONE,
    ST_SCAN
};
enum outcome {
    OUT_SKIP,
    OUT_CHANGED,
    OUT_FAIL,
    OUT_OK
};

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
    int root_fd; /* O_PATH descriptor of root: every open walks from it (watch/beneath.h) */
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

/* ---- helpers and life cycle (watch.c) ---- */

uint64_t rp_watch_now_ms(rp_watch_t *w);
void rp_watch_unref(rp_watch_t *w);
int rp_watch_ignored_name(const char *name);
int rp_watch_ignored(rp_watch_t *w, const char *path);
char *rp_watch_join(const char *dir, const char *name);
const char *rp_watch_rel_of(rp_watch_t *w, const char *path);
/* Open (or lstat) a path under the root, walking from the root's descriptor: a symbolic
 * link there or on the way is -ELOOP / -ENOTDIR (see watch/beneath.h); a path not under the
 * root is -EXDEV. The descriptor is the caller's. Any thread. */
int rp_watch_open_in_tree(const rp_watch_t *w, const char *path, int flags);
/* True for an open or stat result that means "not a file of the tree at this name": missing,
 * or a symbolic link there or on the way (never followed). */
int rp_watch_not_in_tree(int rc);
/* True when the file j is processing is no longer at its path (deleted, or replaced by a
 * link or a directory): j then ends failed ("removed"), never completed. Thread pool. */
int rp_watch_file_gone(const job_t *j);

/* ---- events (events.c) ---- */

void rp_watch_emit_processing(job_t *j);
void rp_watch_emit_progress(job_t *j, double p, const char *stage);
void rp_watch_emit_completed(job_t *j);
void rp_watch_emit_failed(job_t *j, int retryable);
/* j's file was deleted (or replaced by a link) while it was processed: it ends failed, not
 * retryable (there is nothing left to retry), so the hub never shows it completed. */
void rp_watch_emit_removed(job_t *j);
/* The document registered for path is gone from the folder (and now from the index): the
 * hub's registry then says `deleted`, and viewers drop it from their lists. */
void rp_watch_emit_deleted(rp_watch_t *w, const char *path);
/* emit_deleted for each path of `paths` (a JSON array of strings, or NULL). */
void rp_watch_emit_deleted_all(rp_watch_t *w, const json_t *paths);
void rp_watch_emit_heartbeat(rp_watch_t *w, const char *type);
void rp_watch_on_heartbeat(uv_timer_t *t);

/* ---- thread-pool steps (steps.c) ---- */

/* Records j's failure (kind, and the reason from fmt) for the loop to report. */
void rp_watch_fail_job(job_t *j, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rp_watch_on_work(uv_work_t *r);

/* ---- jobs on the loop (jobs.c) ---- */

/* The pending entry of path, made if needed (*fresh says so). NULL only for out-of-memory. */
pend_t *rp_watch_pend_get(rp_watch_t *w, const char *path, int *fresh);
void rp_watch_run_step(job_t *j, enum step s);
void rp_watch_job_free(job_t *j);
void rp_watch_job_next(rp_watch_t *w);
/* Queues a job (a FILE job once per path). initial: the first scan. */
void rp_watch_job_push(rp_watch_t *w, enum job_kind kind, const char *path, int initial);
/* A step failed or the file is done: record the failure (so an unchanged failing file is not
 * retried) and report it. */
void rp_watch_finish_failed(job_t *j);

/* ---- child processes (child.c) ---- */

/* Back on `cur` after the child: record, extract, or report the failure. */
void rp_watch_after_child(job_t *j);
/* The child runs in a process group of its own (`sh -c` may start more): kill all of it. */
void rp_watch_kill_child(job_t *j);
void rp_watch_close_child(job_t *j);
/* j needs a child: it gives `cur` up (other files go on meanwhile) and runs its child now or
 * when a slot frees; after it, j waits in `resume` for `cur` again. */
void rp_watch_spawn_pdftotext(job_t *j);
void rp_watch_spawn_exec(job_t *j);

/* ---- pending paths (pending.c) ---- */

void rp_watch_pend_drop(rp_watch_t *w, pend_t *p);
void rp_watch_dir_closed(uv_handle_t *h);
/* Drops the watches of dir and every directory under it. */
void rp_watch_unwatch_tree(rp_watch_t *w, const char *dir);
/* Watches dir (if not yet) and, when scan >= 0, queues a scan of it (initial: the first). */
void rp_watch_scan_queue(rp_watch_t *w, const char *dir, int scan);
void rp_watch_on_tick(uv_timer_t *t);

/* ---- text extraction (extract.c, html.c) ---- */

/* Length of the valid UTF-8 sequence at p[0..n) (RFC 3629), or 0 if there is none. */
size_t rp_watch_utf8_seq(const unsigned char *p, size_t n);
/* Appends p[0..n) as clean UTF-8: invalid bytes → U+FFFD, NUL dropped, \r\n and \r → \n.
 * 0, or RP_ETOOBIG / UV_ENOMEM from the buffer. */
int rp_watch_put_clean(rp_buf_t *out, const char *p, size_t n);
/* HTML to text (html.c): 0 or the buffer's error. */
int rp_watch_extract_html(const char *s, size_t len, rp_buf_t *out);

/* ---- the network sink (sink.c) and its outbox (outbox.c) ---- */

#define SINK_BATCH_EVENTS 500
#define SINK_BATCH_BYTES  (512 * 1024)

enum req_mode {
    REQ_NONE,
    REQ_POST,
    REQ_VERIFY
};

typedef struct net_sink {
    rp_watch_sink_t base;
    uv_loop_t *loop;
    rp_url_t url;
    char *auth;  /* "Authorization: Bearer ...\r\n" or NULL; owned */
    char *agent; /* "User-Agent: ...\r\n"; owned */
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
    rp_http_client_t http;
    rp_buf_t req; /* the body of the request in flight */
    /* closing */
    int closing;
    int finished;
    void (*done)(void *ud);
    void *done_ud;
    uv_timer_t drain;
    int handles;
} net_sink_t;

/* Writes the state file (temporary file, then rename). 0 or UV_EIO (logged). */
int rp_watch_outbox_save(net_sink_t *s);
/* Reads the state file and checks the queue: drops a torn last line, finds the seqs. 0, or
 * UV_EIO, RP_EREFUSED (another watcher holds the queue) or UV_ENOMEM with err filled. */
int rp_watch_outbox_open(net_sink_t *s, char *err, size_t errlen);
/* Drops everything before roff from the file (when all of it is delivered, or when the
 * delivered part is large): the file stays bounded by what is pending. */
void rp_watch_outbox_compact(net_sink_t *s);
/* Advances past the first `count` records from roff. */
void rp_watch_outbox_skip(net_sink_t *s, size_t count);

#endif
