/* SPDX-License-Identifier: MIT */
/* The SQLite backend: one file, WAL journal, synchronous=FULL (a commit is on disk when it
 * returns, which is what a producer's ack promises), statements prepared once. Used from the
 * store worker thread only (and at start, before that thread exists).
 * An ack must stay true after a restart, so every write batch checks, before it begins and
 * after it commits, that the path still names the files the connection has open (see
 * check_files); once it does not, writes fail until the file is back, and the backend never
 * opens a new file in its place. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "store/backend.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/json.h"

/* Which inode a name had when the connection opened it. */
typedef struct file_id {
    dev_t dev;
    ino_t ino;
    int known;
} file_id_t;

typedef struct sq {
    sqlite3 *db;
    char path[1024];
    char wal[1030];   /* path + "-wal" */
    file_id_t ids[2]; /* the database file and its write-ahead log, as opened */
    int opened;       /* the file was opened once: a reopen never creates it */
    rp_store_fault_t fault;
    sqlite3_stmt *ins_event, *ins_file, *put_session, *del_session;
    char err[1400];
} sq_t;

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS events ("
    "  id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, type TEXT NOT NULL,"
    "  pipeline_id TEXT NOT NULL, pipeline_type TEXT NOT NULL, file_id TEXT, payload TEXT NOT "
    "NULL);"
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

/* The name of a result code's primary code ("SQLITE_CORRUPT"), for messages. */
static const char *code_name(int rc)
{
    static const char *const names[] = {
        "SQLITE_OK",       "SQLITE_ERROR",     "SQLITE_INTERNAL", "SQLITE_PERM",
        "SQLITE_ABORT",    "SQLITE_BUSY",      "SQLITE_LOCKED",   "SQLITE_NOMEM",
        "SQLITE_READONLY", "SQLITE_INTERRUPT", "SQLITE_IOERR",    "SQLITE_CORRUPT",
        "SQLITE_NOTFOUND", "SQLITE_FULL",      "SQLITE_CANTOPEN", "SQLITE_PROTOCOL",
        "SQLITE_EMPTY",    "SQLITE_SCHEMA",    "SQLITE_TOOBIG",   "SQLITE_CONSTRAINT",
        "SQLITE_MISMATCH", "SQLITE_MISUSE",    "SQLITE_NOLFS",    "SQLITE_AUTH",
        "SQLITE_FORMAT",   "SQLITE_RANGE",     "SQLITE_NOTADB",   "SQLITE_NOTICE",
        "SQLITE_WARNING",
    };
    int primary = rc & 0xff;
    return primary >= 0 && (size_t)primary < sizeof(names) / sizeof(*names) ? names[primary]
                                                                            : "SQLITE_?";
}

/* Records the connection's last error: the path, SQLite's message and its code's name. */
static int fail(sq_t *q)
{
    int rc = q->db ? sqlite3_extended_errcode(q->db) : SQLITE_NOMEM;
    q->fault = (rc & 0xff) == SQLITE_READONLY ? RP_STORE_FAULT_READ_ONLY : RP_STORE_FAULT_DOWN;
    if (rc == (rc & 0xff))
        snprintf(q->err, sizeof(q->err), "sqlite %.1024s: %.300s (%s)", q->path,
                 q->db ? sqlite3_errmsg(q->db) : "out of memory", code_name(rc));
    else
        snprintf(q->err, sizeof(q->err), "sqlite %.1024s: %.300s (%s, extended code %d)", q->path,
                 sqlite3_errmsg(q->db), code_name(rc), rc);
    return RP_EUNAVAIL;
}

static void remember_files(sq_t *q)
{
    const char *names[2] = {q->path, q->wal};
    for (size_t i = 0; i < 2; i++) {
        struct stat st;
        q->ids[i].known = stat(names[i], &st) == 0;
        q->ids[i].dev = q->ids[i].known ? st.st_dev : 0;
        q->ids[i].ino = q->ids[i].known ? st.st_ino : 0;
    }
}

/* 0 while the path and path-wal still name the inodes the connection has open; else -1 with
 * fault MOVED. In WAL mode SQLite goes on committing into a file that was unlinked or renamed
 * (its own SQLITE_READONLY_DBMOVED check runs in rollback-journal mode only, and
 * SQLITE_FCNTL_HAS_MOVED looks at the main file only, not at the log that holds the recent
 * commits): every commit would "succeed" into an inode nobody can open again, and each ack
 * would be a lie. Two stat calls; the open descriptors keep both inodes alive, so a new file
 * at the same path cannot get the same number. */
static int check_files(sq_t *q)
{
    const char *names[2] = {q->path, q->wal};
    for (size_t i = 0; i < 2; i++) {
        struct stat st;
        if (!q->ids[i].known)
            continue;
        int rc = stat(names[i], &st);
        if (rc == 0 && st.st_dev == q->ids[i].dev && st.st_ino == q->ids[i].ino)
            continue;
        if (rc < 0 && errno != ENOENT && errno != ENOTDIR) {
            q->fault = RP_STORE_FAULT_DOWN;
            snprintf(q->err, sizeof(q->err), "sqlite %.1024s: cannot check the file: %s", names[i],
                     strerror(errno));
            return RP_EUNAVAIL;
        }
        q->fault = RP_STORE_FAULT_MOVED;
        snprintf(q->err, sizeof(q->err),
                 "sqlite %.1024s: %s was deleted or moved while open; writes are refused until it "
                 "is back, as they"
                 " would go to a file nobody can open again (put it back, or restart to start a "
                 "new store)",
                 q->path, i ? "its write-ahead log" : "the database file");
        return RP_EUNAVAIL;
    }
    return 0;
}

static int prepare(sq_t *q, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK
               ? 0
               : fail(q);
}

static void finalize_all(sq_t *q)
{
    sqlite3_stmt **all[] = {&q->ins_event, &q->ins_file, &q->put_session, &q->del_session};
    for (size_t i = 0; i < sizeof(all) / sizeof(*all); i++) {
        sqlite3_finalize(*all[i]);
        *all[i] = NULL;
    }
}

static void close_db(sq_t *q)
{
    finalize_all(q);
    sqlite3_close(q->db);
    q->db = NULL;
}

/* Opens the file (creating it the first time only) and the schema. While open, a reconnect
 * keeps the connection, refuses if the file moved (a new file under the old name would take
 * acks a restart could not find next to those it lost), and reopens one that was opened
 * read-only, so a file made writable again is used without a restart. */
static int sq_connect(void *b)
{
    sq_t *q = b;
    if (q->db) {
        if (check_files(q) < 0)
            return RP_EUNAVAIL;
        if (sqlite3_db_readonly(q->db, "main") != 1)
            return 0;
        close_db(q);
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (q->opened ? 0 : SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2(q->path, &q->db, flags, NULL) != SQLITE_OK) {
        int rc = fail(q);
        close_db(q);
        return rc;
    }
    sqlite3_busy_timeout(q->db, 5000);
    if (sqlite3_exec(q->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
        prepare(q,
                "INSERT INTO events (id, ts, type, pipeline_id, pipeline_type, file_id, payload)"
                " VALUES (?,?,?,?,?,?,?)",
                &q->ins_event) < 0 ||
        prepare(
            q,
            "INSERT INTO files (pipeline_id, file_id, name, hash, status, event_id, updated)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT (pipeline_id, file_id) DO UPDATE SET"
            " name = excluded.name, hash = COALESCE(excluded.hash, files.hash),"
            " status = excluded.status, event_id = excluded.event_id, updated = excluded.updated",
            &q->ins_file) < 0 ||
        prepare(
            q, "INSERT OR REPLACE INTO sessions (pid, nsp, sid, rooms, expires) VALUES (?,?,?,?,?)",
            &q->put_session) < 0 ||
        prepare(q, "DELETE FROM sessions WHERE pid = ?", &q->del_session) < 0) {
        int rc = fail(q);
        close_db(q);
        return rc;
    }
    /* journal_mode=WAL above read the database, so its log is open too. */
    remember_files(q);
    q->opened = 1;
    return 0;
}

static int exec(sq_t *q, const char *sql)
{
    return sqlite3_exec(q->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : fail(q);
}

/* Nothing is written into a file that is gone. */
static int sq_begin(void *b)
{
    return check_files(b) < 0 ? RP_EUNAVAIL : exec(b, "BEGIN IMMEDIATE");
}

/* Durable means durable in the file a restart opens: checked after the fsync, before the acks. */
static int sq_commit(void *b)
{
    return exec(b, "COMMIT") < 0 ? RP_EUNAVAIL : check_files(b);
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
        return RP_EUNAVAIL;
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
        if (strlen(s->pid) != 20 ||
            strspn(s->pid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
                20)
            return 0;
        snprintf(sql, sizeof(sql), "UPDATE sessions SET expires = %lld WHERE pid = '%s'",
                 (long long)s->expires_ms, s->pid);
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
        snprintf(sql, sizeof(sql),
                 "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - %lld",
                 (long long)keep);
        if (exec(q, sql) < 0)
            return RP_EUNAVAIL;
    }
    if (older_than_ms > 0) {
        snprintf(sql, sizeof(sql), "DELETE FROM events WHERE ts < %lld", (long long)older_than_ms);
        if (exec(q, sql) < 0)
            return RP_EUNAVAIL;
    }
    snprintf(sql, sizeof(sql), "DELETE FROM sessions WHERE expires > 0 AND expires < %lld",
             (long long)now_ms);
    return exec(q, sql);
}

/* Runs a one-off query whose first column is a JSON text and appends them as an array. An
 * array that does not fit out's limit is a failure (RP_ETOOBIG in the message), never a
 * truncated array returned as if whole. */
static int json_rows(sq_t *q, sqlite3_stmt *st, rp_buf_t *out)
{
    int rc = SQLITE_DONE, n = 0;
    int brc = rp_buf_append_char(out, '[');
    while (brc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++)
            brc = rp_buf_append_char(out, ',');
        if (brc == 0)
            brc =
                rp_buf_append(out, sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    }
    if (brc == 0)
        brc = rp_buf_append_char(out, ']');
    sqlite3_finalize(st);
    if (brc < 0) {
        snprintf(q->err, sizeof(q->err), "sqlite %.1024s: the rows do not fit the answer (%s)",
                 q->path, rp_err_name(brc));
        return brc; /* RP_ETOOBIG or UV_ENOMEM: that read fails, the connection is fine */
    }
    return rc == SQLITE_DONE ? 0 : fail(q);
}

static int sq_history(void *b, const char *pipeline, const char *file, int64_t before, int limit,
                      rp_buf_t *out)
{
    sq_t *q = b;
    sqlite3_stmt *st;
    const char *sql =
        file ? "SELECT payload FROM events WHERE pipeline_id = ? AND file_id = ? AND id < ?"
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
    if (sqlite3_prepare_v2(q->db, "SELECT payload FROM events WHERE id > ? ORDER BY id LIMIT ?", -1,
                           &st, NULL) != SQLITE_OK)
        return fail(q);
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int(st, 2, limit);
    return json_rows(q, st, out);
}

static int sq_files(void *b, const char *pipeline, const char *after, int limit, rp_buf_t *out)
{
    sq_t *q = b;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(
            q->db,
            "SELECT json_object('file_id', file_id, 'name', name, 'hash', hash, 'status', status,"
            " 'event_id', event_id, 'updated', updated) FROM files WHERE pipeline_id = ?"
            " AND file_id > ? ORDER BY file_id LIMIT ?",
            -1, &st, NULL) != SQLITE_OK)
        return fail(q);
    bind_text(st, 1, pipeline);
    bind_text(st, 2, after);
    sqlite3_bind_int(st, 3, limit);
    return json_rows(q, st, out);
}

static int sq_replay(void *b, int64_t after, void (*each)(void *, const rp_store_event_t *),
                     void *ud)
{
    sq_t *q = b;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(
            q->db,
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

static int sq_sessions(void *b, int64_t now, void (*each)(void *, const rp_store_session_t *),
                       void *ud)
{
    sq_t *q = b;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(
            q->db,
            "SELECT pid, nsp, sid, rooms, expires FROM sessions WHERE expires = 0 OR expires > ?",
            -1, &st, NULL) != SQLITE_OK)
        return fail(q);
    sqlite3_bind_int64(st, 1, now);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rp_store_session_t s = {
            (const char *)sqlite3_column_text(st, 0),
            (const char *)sqlite3_column_text(st, 1),
            (const char *)sqlite3_column_text(st, 2),
            (const char *)sqlite3_column_text(st, 3),
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
    if (sqlite3_prepare_v2(q->db,
                           "INSERT OR REPLACE INTO snapshot (one, version, state) VALUES (1, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
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
    if (sqlite3_prepare_v2(q->db, "SELECT version, state FROM snapshot WHERE one = 1", -1, &st,
                           NULL) != SQLITE_OK)
        return fail(q);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *version = sqlite3_column_int64(st, 0);
        rp_buf_append(out, sqlite3_column_text(st, 1), (size_t)sqlite3_column_bytes(st, 1));
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return fail(q);
    return out->err; /* the snapshot did not fit out */
}

static int sq_ping(void *b)
{
    sq_t *q = b;
    if (q->db == NULL || check_files(q) < 0)
        return RP_EUNAVAIL;
    if (sqlite3_db_readonly(q->db, "main") == 1) {
        q->fault = RP_STORE_FAULT_READ_ONLY;
        snprintf(
            q->err, sizeof(q->err),
            "sqlite %.1024s: the database was opened read-only (SQLITE_READONLY): the file, its"
            " write-ahead log or its folder is not writable",
            q->path);
        return RP_EUNAVAIL;
    }
    return 0;
}

static const char *sq_error(void *b)
{
    return ((sq_t *)b)->err;
}

static rp_store_fault_t sq_fault(void *b)
{
    return ((sq_t *)b)->fault;
}

static void sq_free(void *b)
{
    sq_t *q = b;
    close_db(q);
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
    .fault = sq_fault,
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
    snprintf(q->wal, sizeof(q->wal), "%s-wal", q->path);
    if (sq_connect(q) < 0) {
        snprintf(err, errlen, "%s", q->err);
        goto undo_connection;
    }
    return q;
undo_connection:
    sq_free(q); /* what sq_connect opened, and q */
    return NULL;
}
