/* SPDX-License-Identifier: MIT */
#ifndef RP_STORE_STORE_H
#define RP_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* The durable event log, behind one interface (util types only: the hub sees nothing else).
 * Implementations: SQLite (the embedded default, WAL) and PostgreSQL (by URL). Both run their
 * database calls on one worker thread that takes every queued write at once and commits them
 * in one transaction (group commit); results come back on the loop thread through
 * uv_async_send. The loop thread never waits on the database, except for the replay at start.
 *
 * Contents: the append-only event log (id, ts, type, pipeline, file, payload), the registry
 * of known files (pipeline, file id, name, content hash, last status, last event), and the
 * recovery sessions (pid, namespace, sid, rooms, expiry). */

typedef struct rp_store rp_store_t;

/* Why a store is not healthy: for /health, refusals, logs and metrics. */
typedef enum rp_store_fault {
    RP_STORE_FAULT_NONE,      /* working */
    RP_STORE_FAULT_DOWN,      /* failing: unreachable, full, an I/O error (may come back alone) */
    RP_STORE_FAULT_READ_ONLY, /* the database cannot be written (permissions, read-only mount) */
    RP_STORE_FAULT_MOVED,     /* the SQLite file was deleted or moved away while open */
    RP_STORE_FAULT_COUNT
} rp_store_fault_t;

/* The fault's name for metric labels: "none", "down", "read_only", "moved". */
static inline const char *rp_store_fault_name(rp_store_fault_t f)
{
    static const char *const names[RP_STORE_FAULT_COUNT] = {"none", "down", "read_only", "moved"};
    return f < RP_STORE_FAULT_COUNT ? names[f] : "down";
}

/* One sentence a producer or /health may show (no paths, no database text), or NULL for NONE
 * and DOWN, whose answers stay "store unavailable" alone. */
static inline const char *rp_store_fault_reason(rp_store_fault_t f)
{
    switch (f) {
    case RP_STORE_FAULT_READ_ONLY:
        return "the database is read-only: nothing can be stored until it is writable again";
    case RP_STORE_FAULT_MOVED:
        return "the database file was deleted or moved while the hub had it open: nothing more can "
               "be "
               "stored (put the file back, or restart the hub to start a new one)";
    default:
        return NULL;
    }
}

typedef struct rp_store_event {
    int64_t id;
    int64_t ts_ms;
    const char *type;
    const char *pipeline_id;
    const char *pipeline_type;
    const char *file_id;   /* NULL for pipeline events */
    const char *file_name; /* NULL for pipeline events */
    const char *file_hash; /* NULL if not reported */
    const char *json;      /* the normalised event */
    size_t json_len;
} rp_store_event_t;

typedef struct rp_store_session {
    const char *pid;
    const char *nsp;
    const char *sid;
    const char *rooms; /* JSON array of room names */
    int64_t expires_ms;
} rp_store_session_t;

/* Completion of a queued write, on the loop thread: status 0 once durable, or RP_EUNAVAIL. */
typedef void (*rp_store_done_cb)(void *ud, int status);
/* History query result, on the loop thread: a JSON array of events, newest first (owned by
 * the store; valid during the call), or status RP_EUNAVAIL (the database failed), RP_ETOOBIG
 * or UV_ENOMEM (the answer did not fit). */
typedef void (*rp_store_rows_cb)(void *ud, int status, const char *json, size_t len);

/* The queueing calls (append, session_put, session_del, prune, history, since, files,
 * snapshot_put, ping) return 0, UV_ENOMEM, or the errno code of a worker thread that could not
 * start; their callback then never runs. The start-only calls (replay, sessions, snapshot_get)
 * return 0, RP_EUNAVAIL (error() says why), RP_ESTATE once the worker runs, or out's error. */
typedef struct rp_store_ops {
    /* Queues ev (copied) for the next group commit. Events commit in append order. */
    int (*append)(rp_store_t *st, const rp_store_event_t *ev, rp_store_done_cb done, void *ud);
    /* hold(st, 1) ... hold(st, 0): the jobs queued in between go into one commit (a POST
     * batch is all or nothing, also across a crash). */
    void (*hold)(rp_store_t *st, int on);
    /* Queues a recovery session write (rooms NULL: only update the expiry). Fire and forget. */
    int (*session_put)(rp_store_t *st, const rp_store_session_t *s);
    int (*session_del)(rp_store_t *st, const char *pid);
    /* Queues pruning: keep at most keep_events (0: no limit) and nothing older than
     * older_than_ms (0: no limit). */
    int (*prune)(rp_store_t *st, int64_t keep_events, int64_t older_than_ms);
    /* Queues a history read: events of pipeline (and file, if not NULL) with id < before
     * (0: newest), at most limit, newest first. */
    int (*history)(rp_store_t *st, const char *pipeline, const char *file, int64_t before,
                   int limit, rp_store_rows_cb done, void *ud);
    /* Queues a read of the events with id > after, oldest first, at most limit (the HTTP
     * fallback's `since` when it reaches back beyond the in-memory history). */
    int (*since)(rp_store_t *st, int64_t after, int limit, rp_store_rows_cb done, void *ud);
    /* At start only, blocking: calls each for every event with id > after in id order. */
    int (*replay)(rp_store_t *st, int64_t after, void (*each)(void *ud, const rp_store_event_t *ev),
                  void *ud);
    /* At start only, blocking: every unexpired session (expires_ms 0: it was connected). */
    int (*sessions)(rp_store_t *st, int64_t now_ms,
                    void (*each)(void *ud, const rp_store_session_t *s), void *ud);
    /* Queues a read of one page of the file registry of one pipeline: a JSON array of at most
     * limit {file_id, name, hash, status, event_id, updated}, in file_id order, after the file
     * `after` ("": from the first), so a restarted producer can ask what it already did. */
    int (*files)(rp_store_t *st, const char *pipeline, const char *after, int limit,
                 rp_store_rows_cb done, void *ud);
    /* Queues a snapshot of the hub's state as of event `version` (replaces the previous one),
     * written in the same commit as the writes queued before it. */
    int (*snapshot_put)(rp_store_t *st, int64_t version, const char *json);
    /* At start only, blocking: the last snapshot (out gets its JSON, *version its event id;
     * *version 0 when there is none). */
    int (*snapshot_get)(rp_store_t *st, int64_t *version, rp_buf_t *out);
    /* Queues a liveness check, so health notices a database that went away while idle. */
    int (*ping)(rp_store_t *st);
    /* 1 if the last database operation worked, 0 if the database is unreachable. */
    int (*healthy)(rp_store_t *st);
    /* Why it is not healthy, as of the last finished job (RP_STORE_FAULT_NONE while it is). */
    rp_store_fault_t (*fault)(rp_store_t *st);
    /* The last failure in one line, naming the database and giving the database's own reason,
     * for the message of a failed start (after snapshot_get, replay or sessions). At start only. */
    const char *(*error)(rp_store_t *st);
    /* "sqlite" or "postgres". */
    const char *(*kind)(rp_store_t *st);
    /* Finishes queued work, stops the thread, closes the database. Blocking; the completions
     * of queued work run before it returns, and st's memory is freed in a close callback on the
     * next loop turn (nothing may use st after the call). */
    void (*close)(rp_store_t *st);
} rp_store_ops_t;

struct rp_store {
    const rp_store_ops_t *ops;
    /* Counters for metrics (loop thread). */
    unsigned long _commits;
    unsigned long events_written;
    unsigned long errors;
    unsigned long checks; /* liveness checks (ping) finished */
    unsigned long
        faults[RP_STORE_FAULT_COUNT]; /* times the store entered each fault (logged once) */
};

#endif
