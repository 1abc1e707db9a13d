/* SPDX-License-Identifier: MIT */
#ifndef RP_STORE_BACKEND_H
#define RP_STORE_BACKEND_H

#include <string.h>
#include <uv.h>

#include "store/store.h"

/* What a database needs to provide for the store worker (store/worker.c): blocking calls, all
 * made from the worker thread except replay and sessions, which run at start before the
 * thread exists. Each returns 0 or RP_EUNAVAIL (after recording why in the backend). */
typedef struct rp_store_backend_ops {
    const char *kind;
    /* (Re)connects and creates the schema; 0 at once when still connected. A backend may
     * refuse to reconnect where that would change what an ack means (SQLite: never a new file
     * in place of one that was deleted while open). */
    int (*connect)(void *b);
    int (*begin)(void *b);
    int (*commit)(void *b);
    void (*rollback)(void *b);
    int (*append)(void *b, const rp_store_event_t *ev);
    int (*session_put)(void *b, const rp_store_session_t *s);
    int (*session_del)(void *b, const char *pid);
    int (*prune)(void *b, int64_t keep_events, int64_t older_than_ms, int64_t now_ms);
    /* Appends a JSON array to out. Returns 0, RP_EUNAVAIL, or out's error (RP_ETOOBIG,
     * UV_ENOMEM) when the rows do not fit (also files, since and snapshot_get). */
    int (*history)(void *b, const char *pipeline, const char *file, int64_t before, int limit,
                   rp_buf_t *out);
    /* At most limit rows of the pipeline's registry with file_id after `after` ("": from the
     * first), in file_id order. */
    int (*files)(void *b, const char *pipeline, const char *after, int limit, rp_buf_t *out);
    int (*since)(void *b, int64_t after, int limit, rp_buf_t *out);
    int (*replay)(void *b, int64_t after, void (*each)(void *ud, const rp_store_event_t *ev),
                  void *ud);
    int (*sessions)(void *b, int64_t now_ms, void (*each)(void *ud, const rp_store_session_t *s),
                    void *ud);
    int (*snapshot_put)(void *b, int64_t version, const char *json);
    int (*snapshot_get)(void *b, int64_t *version, rp_buf_t *out);
    int (*ping)(void *b);          /* a cheap check that a write could work now */
    const char *(*error)(void *b); /* the last failure, for logs */
    /* What kind of failure the last one was; NULL: always RP_STORE_FAULT_DOWN. */
    rp_store_fault_t (*fault)(void *b);
    void (*free)(void *b); /* disconnects */
} rp_store_backend_ops_t;

/* The file registry's status after a file event of this type. */
static inline const char *rp_store_file_status(const char *type)
{
    return strcmp(type, "file:completed") == 0 ? "completed"
           : strcmp(type, "file:failed") == 0  ? "failed"
           : strcmp(type, "file:deleted") == 0 ? "deleted"
                                               : "processing";
}

/* Wraps a connected backend in the threaded, group-committing store. Returns NULL when memory,
 * a mutex or the async handle cannot be had (the backend is then freed). Loop thread. */
rp_store_t *rp_store_worker_new(uv_loop_t *loop, const rp_store_backend_ops_t *ops, void *backend);

/* The two backends. `path` is a file name; `url` a libpq connection string. Each connects
 * (and creates its schema) before returning; NULL with a message in err on failure. */
void *rp_store_sqlite_open(const char *path, char *err, size_t errlen);
void *rp_store_pg_open(const char *url, char *err, size_t errlen);
extern const rp_store_backend_ops_t rp_store_sqlite_ops;
extern const rp_store_backend_ops_t rp_store_pg_ops;

/* Opens the store a --store argument names: "sqlite:PATH", "postgres://...", "postgresql://...".
 * Returns NULL with a message in err. */
rp_store_t *rp_store_open(uv_loop_t *loop, const char *spec, char *err, size_t errlen);

#endif
