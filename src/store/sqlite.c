/* SPDX-License-Identifier: MIT */
/* The SQLite backend: one file, WAL journal, synchronous=FULL (a commit is on disk when it
 * returns, which is what a producer's ack promises), statements prepared once. Used from the
 * store worker thread only (and at start, before that thread exists). */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "store/backend.h"
#include "util/alloc.h"
#include "util/json.h"

typedef struct sq {
    sqlite3 *db;
    char path[1024];
    sqlite3_stmt *ins_event, *ins_file, *put_session, *del_session;
    char err[1400];
} sq_t;

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS events ("
    "  id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, type TEXT NOT NULL,"
    "  pipeline_id TEXT NOT NULL, pipeline_type TEXT NOT NULL, file_id TEXT, payload TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS events_pipeline ON events(pipeline_id, id);"
    "CREATE INDEX IF NOT EXISTS events_file ON events(pipeline_id, file_id, id);"
    "CREATE INDEX IF NOT EXISTS events_ts ON events(ts);"
    "CREATE TABLE IF NOT EXISTS files ("
    "  pipeline_id TEXT NOT NULL, file_id TEXT NOT NULL, name TEXT NOT NULL, hash TEXT,"
    "  status TEXT NOT NULL, event_id INTEGER NOT NULL, updated INTEGER NOT NULL,"
    "  PRIMARY KEY (pipeline_id, file_id));"
    "CREATE TABLE IF NOT EXISTS sessions ("
    "  pid TEXT PRIMARY KEY, nsp TEXT NOT NULL, sid TEXT NOT NULL, rooms TEXT NOT NULL,"
    "  expires INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS snapshot ("
    "  one INTEGER PRIMARY KEY CHECK (one = 1), version INTEGER NOT NULL, state TEXT NOT NULL);";

static int fail(sq_t *q)
{
    snprintf(q->err, sizeof(q->err), "sqlite %.1024s: %.300s", q->path, q->db ? sqlite3_errmsg(q->db) : "not open");
    return -1;
}

static int prepare(sq_t *q, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK ? 0 : fail(q);
}

static void finalize_all(sq_t *q)
{
    sqlite3_stmt **all[] = {&q->ins_event, &q->ins_file, &q->put_session, &q->del_session};
    for (size_t i = 0; i < sizeof(all) / sizeof(*all); i++) {
        sqlite3_finalize(*all[i]);
        *all[i] = NULL;
    }
}

static int sq_connect(void *b)
{
    sq_t *q = b;
    if (q->db)
        return 0;
    if (sqlite3_open_v2(q->path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        return fail(q);
    sqlite3_busy_timeout(q->db, 5000);
    if (sqlite3_exec(q->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
        prepare(q, "INSERT INTO events (id, ts, type, pipeline_id, pipeline_type, file_id, payload)"
                   " VALUES (?,?,?,?,?,?,?)", &q->ins_event) < 0 ||
        prepare(q, "INSERT INTO files (pipeline_id, file_id, name, hash, status, event_id, updated)"
                   " VALUES (?,?,?,?,?,?,?) ON CONFLICT (pipeline_id, file_id) DO UPDATE SET"
                   " name = excluded.name, hash = COALESCE(excluded.hash, files.hash),"
                   " status = excluded.status, event_id = excluded.event_id, updated = excluded.updated",
                &q->ins_file) < 0 ||
        prepare(q, "INSERT OR REPLACE INTO sessions (pid, nsp, sid, rooms, expires) VALUES (?,?,?,?,?)",
                &q->put_session) < 0 ||
        prepare(q, "DELETE FROM sessions WHERE pid = ?", &q->del_session) < 0) {
        int rc = fail(q);
        finalize_all(q);
        sqlite3_close(q->db);
        q->db = NULL;
        return rc;
    }
    return 0;
}

static int exec(sq_t *q, const char *sql)
{
    return sqlite3_exec(q->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : fail(q);
}

static int sq_begin(void *b)
{
    return exec(b, "BEGIN IMMEDIATE");
}

static int sq_commit(void *b)
{
    return exec(b, "COMMIT");
}

static void sq_rollback(void *b)
{
    sq_t *q = b;
    sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static int step_done(sq_t *q, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : fail(q);
}


static int sq_append(void *b, const rp_store_event_t *ev)
{
    sq_t *q = b;
    sqlite3_stmt *st = q->ins_event;
    sqlite3_bind_int64(st, 1, ev->id);
    sqlite3_bind_int64(st, 2, ev->ts_ms);
    bind_text(st, 3, ev->type);
    bind_text(st, 4, ev->pipeline_id);
    bind_text(st, 5, ev->pipeline_type);
    bind_text(st, 6, ev->file_id);
    sqlite3_bind_text(st, 7, ev->json, (int)ev->json_len, SQLITE_STATIC);
    if (step_done(q, st) < 0)
        return -1;
    if (ev->file_id == NULL)
        return 0;
    st = q->ins_file;
    bind_text(st, 1, ev->pipeline_id);
    bind_text(st, 2, ev->file_id);
    bind_text(st, 3, ev->file_name);
    bind_text(st, 4, ev->file_hash);
    bind_text(st, 5, rp_store_file_status(ev->type));
    sqlite3_bind_int64(st, 6, ev->id);
    sqlite3_bind_int64(st, 7, ev->ts_ms);
    return step_done(q, st);
}

static int sq_session_put(void *b, const rp_store_session_t *s)
{
    sq_t *q = b;
    if (s->rooms == NULL) {
        char sql[160];
        if (strlen(s->pid) != 20 || strspn(s->pid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != 20)
            return 0;
        snprintf(sql, sizeof(sql), "UPDATE sessions SET expires = %lld WHERE pid = '%s'", (long long)s->expires_ms, s->pid);
        return exec(q, sql);
    }
    sqlite3_stmt *st = q->put_session;
    bind_text(st, 1, s->pid);
    bind_text(st, 2, s->nsp);
    bind_text(st, 3, s->sid);
    bind_text(st, 4, s->rooms);
    sqlite3_bind_int64(st, 5, s->expires_ms);
    return step_done(q, st);
}

static int sq_session_del(void *b, const char *pid)
{
    sq_t *q = b;
    bind_text(q->del_session, 1, pid);
    return step_done(q, q->del_session);
}

static int sq_prune(void *b, int64_t keep, int64_t older_than_ms, int64_t now_ms)
{
    sq_t *q = b;
    char sql[256];
    if (keep > 0) {
        snprintf(sql, sizeof(sql), "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - %lld",
                 (long long)keep);
        if (exec(q, sql) < 0)
            return -1;
    }
    if (older_than_ms > 0) {
        snprintf(sql, sizeof(sql), "DELETE FROM events WHERE ts < %lld", (long long)older_than_ms);
        if (exec(q, sql) < 0)
            return -1;
    }
    snprintf(sql, sizeof(sql), "DELETE FROM sessions WHERE expires > 0 AND expires < %lld", (long long)now_ms);
    return exec(q, sql);
}

/* Runs a one-off query whose first column is a JSON text and appends them as an array. */
static int json_rows(sq_t *q, sqlite3_stmt *st, rp_buf_t *out)
{
    int rc, n = 0;
    rp_buf_append_char(out, '[');
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++)
            rp_buf_append_char(out, ',');
        rp_buf_append(out, sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    }
    rp_buf_append_char(out, ']');
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(q);
}

static int sq_history(void *b, const char *pipeline, const char *file, int64_t before, int limit, rp_buf_t *out)
{
    sq_t *q = b;
    sqlite3_stmt *st;
    const char *sql = file ? "SELECT payload FROM events WHERE pipeline_id = ? AND file_id = ? AND id < ?"
                             " ORDER BY id DESC LIMIT ?"
                           : "SELECT payload FROM events WHERE pipeline_id = ? AND ? IS NULL AND id < ?"
                             " ORDER BY id DESC LIMIT ?";
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        return fail(q);
    bind_text(st, 1, pipeline);
    bind_text(st, 2, file);
    sqlite3_bind_int64(st, 3, before > 0 ? before : INT64_MAX);
    sqlite3_bind_int(st, 4, limit);
    return json_rows(q, st, out);
}

static int sq_since(void *b, int64_t after, int limit, rp_buf_t *out)
{
    sq_t *q = b;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db, "SELECT payload FROM events WHERE id > ? ORDER BY id LIMIT ?", -1, &st, NULL) !=
        SQLITE_OK)
        return fail(q);
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int(st, 2, limit);
    return json_rows(q, st, out);
}

static int sq_files(void *b, const char *pipeline, rp_buf_t *out)
{
    sq_t *q = b;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db,
                           "SELECT json_object('file_id', file_id, 'name', name, 'hash', hash, 'status', status,"
                           " 'event_id', event_id, 'updated', updated) FROM files WHERE pipeline_id = ?"
                           " ORDER BY file_id",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(q);
    bind_text(st, 1, pipeline);
    return json_rows(q, st, out);
}

static int sq_replay(void *b, int64_t after, void (*each)(void *, const rp_store_event_t *), void *ud)
{
    sq_t *q = b;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db,
                           "SELECT id, ts, type, pipeline_id, pipeline_type, file_id, payload FROM events"
                           " WHERE id > ? ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(q);
    sqlite3_bind_int64(st, 1, after);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rp_store_event_t ev = {
            .id = sqlite3_column_int64(st, 0),
            .ts_ms = sqlite3_column_int64(st, 1),
            .type = (const char *)sqlite3_column_text(st, 2),
            .pipeline_id = (const char *)sqlite3_column_text(st, 3),
            .pipeline_type = (const char *)sqlite3_column_text(st, 4),
            .file_id = (const char *)sqlite3_column_text(st, 5),
            .json = (const char *)sqlite3_column_text(st, 6),
            .json_len = (size_t)sqlite3_column_bytes(st, 6),
        };
        each(ud, &ev);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(q);
}

static int sq_sessions(void *b, int64_t now, void (*each)(void *, const rp_store_session_t *), void *ud)
{
    sq_t *q = b;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db, "SELECT pid, nsp, sid, rooms, expires FROM sessions WHERE expires = 0 OR expires > ?",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(q);
    sqlite3_bind_int64(st, 1, now);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rp_store_session_t s = {
            (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
            (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3),
            sqlite3_column_int64(st, 4),
        };
        each(ud, &s);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(q);
}

static int sq_snapshot_put(void *b, int64_t version, const char *json)
{
    sq_t *q = b;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db, "INSERT OR REPLACE INTO snapshot (one, version, state) VALUES (1, ?, ?)", -1, &st,
                           NULL) != SQLITE_OK)
        return fail(q);
    sqlite3_bind_int64(st, 1, version);
    sqlite3_bind_text(st, 2, json, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(q);
}

static int sq_snapshot_get(void *b, int64_t *version, rp_buf_t *out)
{
    sq_t *q = b;
    sqlite3_stmt *st;
    *version = 0;
    if (sqlite3_prepare_v2(q->db, "SELECT version, state FROM snapshot WHERE one = 1", -1, &st, NULL) != SQLITE_OK)
        return fail(q);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *version = sqlite3_column_int64(st, 0);
        rp_buf_append(out, sqlite3_column_text(st, 1), (size_t)sqlite3_column_bytes(st, 1));
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(q);
}

static int sq_ping(void *b)
{
    return ((sq_t *)b)->db ? 0 : -1;
}

static const char *sq_error(void *b)
{
    return ((sq_t *)b)->err;
}

static void sq_free(void *b)
{
    sq_t *q = b;
    finalize_all(q);
    if (q->db)
        sqlite3_close(q->db);
    rp_free(q);
}

const rp_store_backend_ops_t rp_store_sqlite_ops = {
    .kind = "sqlite",
    .connect = sq_connect,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .append = sq_append,
    .session_put = sq_session_put,
    .session_del = sq_session_del,
    .prune = sq_prune,
    .history = sq_history,
    .files = sq_files,
    .since = sq_since,
    .replay = sq_replay,
    .sessions = sq_sessions,
    .snapshot_put = sq_snapshot_put,
    .snapshot_get = sq_snapshot_get,
    .ping = sq_ping,
    .error = sq_error,
    .free = sq_free,
};

void *rp_store_sqlite_open(const char *path, char *err, size_t errlen)
{
    sq_t *q = rp_calloc(1, sizeof(*q));
    if (q == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(q->path, sizeof(q->path), "%s", path);
    if (sq_connect(q) < 0) {
        snprintf(err, errlen, "%s", q->err);
        sq_free(q);
        return NULL;
    }
    return q;
}
