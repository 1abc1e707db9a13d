/* SPDX-License-Identifier: MIT */
#ifndef RP_WATCH_WATCH_H
#define RP_WATCH_WATCH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* The local-files pipeline: watches a directory tree, ingests every document that appears or
 * changes (extract → chunk → full-text index, or the user's own --exec command), forgets
 * deleted ones (each document it held then says file:deleted), and reports every step as
 * pipeline events through a sink. It is a producer
 * like any other: it knows nothing of the hub; cli gives it a sink that either calls the hub
 * in-process (`serve --watch`) or posts to one over HTTP (`watch --hub URL`).
 *
 * Loop thread only. File reading, hashing, extraction, chunking and SQLite run on libuv's
 * thread pool, one job at a time; pdftotext and --exec commands run as child processes. */

typedef struct rp_watch_sink rp_watch_sink_t;

typedef struct rp_watch_sink_ops {
    /* Takes ownership of `ev` (a producer event: type, pipeline_id, pipeline_type, ...).
     * Returns 0 when the sink has it (delivered, or queued to be), or negative when it was
     * lost (the sink has logged why). Loop thread. */
    int (*emit)(rp_watch_sink_t *s, json_t *ev);
    /* No more events: the sink delivers or persists what it holds, then calls done(ud) (on
     * the loop thread, possibly before close returns). The caller frees the sink after. */
    void (*close)(rp_watch_sink_t *s, void (*done)(void *ud), void *ud);
} rp_watch_sink_ops_t;

struct rp_watch_sink {
    const rp_watch_sink_ops_t *ops;
};

typedef struct rp_watch_config {
    const char *dir;           /* the tree to watch (must exist) */
    const char *index_path;    /* SQLite file of the index (NULL with exec_cmd: registry only) */
    const char *pipeline_id;   /* events' pipeline_id */
    const char *pipeline_type; /* events' pipeline_type, default "local_files" */
    double settle_s;           /* a file is ingested once unchanged this long (default 1) */
    double heartbeat_s;        /* heartbeat interval (default 30) */
    size_t chunk_size;         /* bytes per chunk (default 1000) */
    size_t chunk_overlap;      /* bytes shared by neighbours (default 200) */
    size_t max_file_size;      /* larger files fail as too_large (default 100 MiB) */
    double pdf_timeout_s;      /* pdftotext's limit (default 60) */
    const char *exec_cmd;      /* hand each file to this shell command instead of indexing */
    double exec_timeout_s;     /* the command's limit (default 3600; 0: none) */
    unsigned jobs;             /* pdftotext or --exec children at the same time (default 1) */
    const char *ignore[4];     /* absolute paths never ingested (the index, a queue file) */
} rp_watch_config_t;

void rp_watch_config_defaults(rp_watch_config_t *cfg);

typedef struct rp_watch rp_watch_t;

typedef struct rp_watch_stats {
    uint64_t ingested; /* files completed */
    uint64_t failed;
    uint64_t skipped; /* unchanged (content hash) */
    uint64_t removed; /* documents removed from the index */
    uint64_t bytes;   /* bytes of the files completed */
    uint64_t chunks;
    size_t queued; /* waiting to settle or to be processed */
} rp_watch_stats_t;

/* Opens the index and checks the directory. Returns NULL with err filled. The sink is
 * borrowed and must outlive the watcher's last emit (rp_watch_stop's return). */
rp_watch_t *rp_watch_new(uv_loop_t *loop, const rp_watch_config_t *cfg, rp_watch_sink_t *sink,
                         char *err, size_t errlen);
/* Emits pipeline:online, starts the heartbeat, scans the tree and watches it. 0 or negative
 * (err filled; then call rp_watch_stop). */
int rp_watch_start(rp_watch_t *w, char *err, size_t errlen);
/* Stops: a file in flight is reported failed ("interrupted"), pipeline:offline is emitted,
 * and nothing is emitted after this returns. The watcher frees itself once its thread-pool
 * job, child process and handles are done, then calls done(ud) if given. */
void rp_watch_stop(rp_watch_t *w, void (*done)(void *ud), void *ud);
void rp_watch_get_stats(const rp_watch_t *w, rp_watch_stats_t *st);

#endif
