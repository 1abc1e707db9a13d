/* SPDX-License-Identifier: MIT */
/* The PostgreSQL backend (libpq). Blocking calls, made from the store worker thread only, so
 * the loop never waits on the server; a lost connection is noticed by a failed call and
 * re-established by the worker before its next batch. The schema is created on first start.
 * Existing deployments run on Supabase, which is PostgreSQL: any libpq URL works. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/backend.h"
#include "util/alloc.h"
#include "util/err.h"

/* A row waiting for the batch's multi-row INSERT (the strings belong to the worker's job,
 * which lives until the batch is done). */
typedef struct row {
    const rp_store_event_t *ev;
    char id[24];
    char ts[24];
} row_t;

typedef struct pg {
    PGconn *conn;
    char *url;
    char err[512];
    row_t *rows; /* this transaction's events, written at commit in a few statements */
    size_t nrows, caprows;
} pg_t;

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS events ("
    "  id BIGINT PRIMARY KEY, ts BIGINT NOT NULL, type TEXT NOT NULL,"
    "  pipeline_id TEXT NOT NULL, pipeline_type TEXT NOT NULL, file_id TEXT, payload TEXT NOT "
    "NULL);"
    "CREATE INDEX IF NOT EXISTS events_pipeline ON events(pipeline_id, id);"
    "CREATE INDEX IF NOT EXISTS events_file ON events(pipeline_id, file_id, id);"
    "CREATE INDEX IF NOT EXISTS events_ts ON events(ts);"
    "CREATE TABLE IF NOT EXISTS files ("
    "  pipeline_id TEXT NOT NULL, file_id TEXT NOT NULL, name TEXT NOT NULL, hash TEXT,"
    "  status TEXT NOT NULL, event_id BIGINT NOT NULL, updated BIGINT NOT NULL,"
    "  PRIMARY KEY (pipeline_id, file_id));"
    "CREATE TABLE IF NOT EXISTS sessions ("
    "  pid TEXT PRIMARY KEY, nsp TEXT NOT NULL, sid TEXT NOT NULL, rooms TEXT NOT NULL,"
    "  expires BIGINT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS snapshot ("
    "  one INT PRIMARY KEY CHECK (one = 1), version BIGINT NOT NULL, state TEXT NOT NULL);";

static int fail(pg_t *p, const PGresult *r)
{
    const char *m = r ? PQresultErrorMessage(r) : NULL;
    if (m == NULL || *m == '\0')
        m = p->conn ? PQerrorMessage(p->conn) : "not connected";
    snprintf(p->err, sizeof(p->err), "%s", m);
    size_t n = strlen(p->err);
    while (n && (p->err[n - 1] == '\n' || p->err[n - 1] == ' '))
        p->err[--n] = '\0';
    return RP_EUNAVAIL;
}

/* Runs sql with text parameters; returns the result (caller clears) or NULL after fail(). */
static PGresult *run(pg_t *p, const char *sql, int n, const char *const *params,
                     ExecStatusType want)
{
    if (p->conn == NULL) {
        fail(p, NULL);
        return NULL;
    }
    PGresult *r =
        n ? PQexecParams(p->conn, sql, n, NULL, params, NULL, NULL, 0) : PQexec(p->conn, sql);
    if (r == NULL || PQresultStatus(r) != want) {
        fail(p, r);
        PQclear(r);
        return NULL;
    }
    return r;
}

static int run_ok(pg_t *p, const char *sql, int n, const char *const *params)
{
    PGresult *r = run(p, sql, n, params, PGRES_COMMAND_OK);
    PQclear(r);
    return r ? 0 : RP_EUNAVAIL;
}

static int pg_connect(void *b)
{
    pg_t *p = b;
    if (p->conn && PQstatus(p->conn) == CONNECTION_OK)
        return 0;
    if (p->conn)
        PQfinish(p->conn);
    p->conn = PQconnectdb(p->url);
    if (PQstatus(p->conn) != CONNECTION_OK) {
        fail(p, NULL);
        PQfinish(p->conn);
        p->conn = NULL;
        return RP_EUNAVAIL;
    }
    PGresult *r = PQexec(p->conn, "SET client_min_messages = warning");
    PQclear(r);
    return run_ok(p, schema, 0, NULL);
}

static int pg_begin(void *b)
{
    pg_t *p = b;
    if (p->conn == NULL || PQstatus(p->conn) != CONNECTION_OK)
        return fail(p, NULL);
    return run_ok(p, "BEGIN", 0, NULL);
}

static int flush_rows(pg_t *p);

static int pg_commit(void *b)
{
    pg_t *p = b;
    int rc = flush_rows(p);
    p->nrows = 0;
    return rc < 0 ? RP_EUNAVAIL : run_ok(b, "COMMIT", 0, NULL);
}

static void pg_rollback(void *b)
{
    pg_t *p = b;
    p->nrows = 0;
    if (p->conn) {
        PGresult *r = PQexec(p->conn, "ROLLBACK");
        PQclear(r);
    }
}

static int pg_append(void *b, const rp_store_event_t *ev)
{
    pg_t *p = b;
    if (p->nrows == p->caprows) {
        size_t cap = p->caprows ? p->caprows * 2 : 256;
        row_t *r = rp_realloc(p->rows, cap * sizeof(*r));
        if (r == NULL) {
            snprintf(p->err, sizeof(p->err), "out of memory");
            return RP_EUNAVAIL;
        }
        p->rows = r;
        p->caprows = cap;
    }
    row_t *r = &p->rows[p->nrows++];
    r->ev = ev;
    snprintf(r->id, sizeof(r->id), "%lld", (long long)ev->id);
    snprintf(r->ts, sizeof(r->ts), "%lld", (long long)ev->ts_ms);
    return 0;
}

/* Runs "prefix VALUES (...),(...)" for rows[from..to) with `cols` parameters each. */
static int insert_rows(pg_t *p, const char *prefix, const char *suffix, int cols,
                       const char **params, size_t nrows)
{
    rp_buf_t sql;
    rp_buf_init(&sql, (size_t)1 << 24);
    int rc = rp_buf_append_str(&sql, prefix);
    for (size_t i = 0; i < nrows && rc == 0; i++) {
        rc |= rp_buf_append_str(&sql, i ? ",(" : " VALUES (");
        for (int c = 0; c < cols && rc == 0; c++)
            rc |= rp_buf_printf(&sql, "%s$%zu", c ? "," : "", i * (size_t)cols + (size_t)c + 1);
        rc |= rp_buf_append_char(&sql, ')');
    }
    rc |= rp_buf_append_str(&sql, suffix);
    if (rc == 0)
        rc = run_ok(p, sql.data, (int)(nrows * (size_t)cols), params);
    else
        snprintf(p->err, sizeof(p->err), "out of memory");
    rp_buf_deinit(&sql);
    return rc < 0 ? RP_EUNAVAIL : 0;
}

/* Writes the transaction's events and file registry rows, 1000 rows a statement. */
static int flush_rows(pg_t *p)
{
    enum {
        CHUNK = 1000
    };
    static const char *params[CHUNK * 7];
    for (size_t from = 0; from < p->nrows; from += CHUNK) {
        size_t n = p->nrows - from < CHUNK ? p->nrows - from : CHUNK;
        for (size_t i = 0; i < n; i++) {
            const row_t *r = &p->rows[from + i];
            const char *v[] = {
                r->id,       r->ev->type, r->ev->pipeline_id, r->ev->pipeline_type, r->ev->file_id,
                r->ev->json, r->ts};
            memcpy(&params[i * 7], v, sizeof(v));
        }
        if (insert_rows(
                p,
                "INSERT INTO events (id, type, pipeline_id, pipeline_type, file_id, payload, ts)",
                "", 7, params, n) < 0)
            return RP_EUNAVAIL;
        /* One registry row per file: the last event of the batch wins (an upsert may not touch
         * a row twice in one statement). */
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            const row_t *r = &p->rows[from + i];
            if (r->ev->file_id == NULL)
                continue;
            int later = 0;
            for (size_t j = i + 1; j < n && !later; j++) {
                const rp_store_event_t *e = p->rows[from + j].ev;
                later = e->file_id && strcmp(e->file_id, r->ev->file_id) == 0 &&
                        strcmp(e->pipeline_id, r->ev->pipeline_id) == 0;
            }
            if (later)
                continue;
            /* The last event wins, but a hash reported by an earlier one in the batch stays. */
            const char *hash = r->ev->file_hash;
            for (size_t j = i; j-- > 0 && hash == NULL;) {
                const rp_store_event_t *e = p->rows[from + j].ev;
                if (e->file_id && strcmp(e->file_id, r->ev->file_id) == 0 &&
                    strcmp(e->pipeline_id, r->ev->pipeline_id) == 0)
                    hash = e->file_hash;
            }
            const char *v[] = {r->ev->pipeline_id,
                               r->ev->file_id,
                               r->ev->file_name,
                               hash,
                               rp_store_file_status(r->ev->type),
                               r->id,
                               r->ts};
            memcpy(&params[k * 7], v, sizeof(v));
            k++;
        }
        if (k &&
            insert_rows(
                p,
                "INSERT INTO files (pipeline_id, file_id, name, hash, status, event_id, updated)",
                " ON CONFLICT (pipeline_id, file_id) DO UPDATE SET name = EXCLUDED.name,"
                " hash = COALESCE(EXCLUDED.hash, files.hash), status = EXCLUDED.status,"
                " event_id = EXCLUDED.event_id, updated = EXCLUDED.updated",
                7, params, k) < 0)
            return RP_EUNAVAIL;
    }
    return 0;
}

static int pg_session_put(void *b, const rp_store_session_t *s)
{
    char exp[24];
    snprintf(exp, sizeof(exp), "%lld", (long long)s->expires_ms);
    if (s->rooms == NULL) {
        const char *up[] = {exp, s->pid};
        return run_ok(b, "UPDATE sessions SET expires = $1::bigint WHERE pid = $2", 2, up);
    }
    const char *params[] = {s->pid, s->nsp, s->sid, s->rooms, exp};
    return run_ok(b,
                  "INSERT INTO sessions (pid, nsp, sid, rooms, expires) VALUES ($1,$2,$3,$4,$5)"
                  " ON CONFLICT (pid) DO UPDATE SET nsp = EXCLUDED.nsp, sid = EXCLUDED.sid,"
                  " rooms = EXCLUDED.rooms, expires = EXCLUDED.expires",
                  5, params);
}

static int pg_session_del(void *b, const char *pid)
{
    const char *params[] = {pid};
    return run_ok(b, "DELETE FROM sessions WHERE pid = $1", 1, params);
}

static int pg_prune(void *b, int64_t keep, int64_t older_than_ms, int64_t now_ms)
{
    char v[24];
    const char *params[] = {v};
    if (keep > 0) {
        snprintf(v, sizeof(v), "%lld", (long long)keep);
        if (run_ok(b, "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - $1::bigint", 1,
                   params) < 0)
            return RP_EUNAVAIL;
    }
    if (older_than_ms > 0) {
        snprintf(v, sizeof(v), "%lld", (long long)older_than_ms);
        if (run_ok(b, "DELETE FROM events WHERE ts < $1::bigint", 1, params) < 0)
            return RP_EUNAVAIL;
    }
    snprintf(v, sizeof(v), "%lld", (long long)now_ms);
    return run_ok(b, "DELETE FROM sessions WHERE expires > 0 AND expires < $1::bigint", 1, params);
}

static int json_rows(PGresult *r, rp_buf_t *out)
{
    rp_buf_append_char(out, '[');
    for (int i = 0; i < PQntuples(r); i++) {
        if (i)
            rp_buf_append_char(out, ',');
        rp_buf_append(out, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
    }
    rp_buf_append_char(out, ']');
    PQclear(r);
    return out->err; /* RP_ETOOBIG or UV_ENOMEM: the rows did not fit */
}

static int pg_history(void *b, const char *pipeline, const char *file, int64_t before, int limit,
                      rp_buf_t *out)
{
    char bf[24], lim[16];
    snprintf(bf, sizeof(bf), "%lld", (long long)(before > 0 ? before : INT64_MAX));
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *params[] = {pipeline, file, bf, lim};
    PGresult *r =
        run(b,
            file ? "SELECT payload FROM events WHERE pipeline_id = $1 AND file_id = $2 AND id < "
                   "$3::bigint"
                   " ORDER BY id DESC LIMIT $4::int"
                 : "SELECT payload FROM events WHERE pipeline_id = $1 AND $2::text IS NULL AND"
                   " id < $3::bigint ORDER BY id DESC LIMIT $4::int",
            4, params, PGRES_TUPLES_OK);
    return r ? json_rows(r, out) : RP_EUNAVAIL;
}

static int pg_since(void *b, int64_t after, int limit, rp_buf_t *out)
{
    char a[24], lim[16];
    snprintf(a, sizeof(a), "%lld", (long long)after);
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *params[] = {a, lim};
    PGresult *r =
        run(b, "SELECT payload FROM events WHERE id > $1::bigint ORDER BY id LIMIT $2::int", 2,
            params, PGRES_TUPLES_OK);
    return r ? json_rows(r, out) : RP_EUNAVAIL;
}

static int pg_files(void *b, const char *pipeline, const char *after, int limit, rp_buf_t *out)
{
    char l[16];
    snprintf(l, sizeof(l), "%d", limit);
    const char *params[] = {pipeline, after, l};
    PGresult *r = run(
        b,
        "SELECT json_build_object('file_id', file_id, 'name', name, 'hash', hash, 'status', status,"
        " 'event_id', event_id, 'updated', updated)::text FROM files WHERE pipeline_id = $1"
        " AND file_id > $2 ORDER BY file_id LIMIT $3::int",
        3, params, PGRES_TUPLES_OK);
    return r ? json_rows(r, out) : RP_EUNAVAIL;
}

static int pg_replay(void *b, int64_t after, void (*each)(void *, const rp_store_event_t *),
                     void *ud)
{
    char a[24];
    snprintf(a, sizeof(a), "%lld", (long long)after);
    const char *params[] = {a};
    PGresult *r =
        run(b,
            "SELECT id, ts, type, pipeline_id, pipeline_type, file_id, payload FROM events"
            " WHERE id > $1::bigint ORDER BY id",
            1, params, PGRES_TUPLES_OK);
    if (r == NULL)
        return RP_EUNAVAIL;
    for (int i = 0; i < PQntuples(r); i++) {
        rp_store_event_t ev = {
            .id = strtoll(PQgetvalue(r, i, 0), NULL, 10),
            .ts_ms = strtoll(PQgetvalue(r, i, 1), NULL, 10),
            .type = PQgetvalue(r, i, 2),
            .pipeline_id = PQgetvalue(r, i, 3),
            .pipeline_type = PQgetvalue(r, i, 4),
            .file_id = PQgetisnull(r, i, 5) ? NULL : PQgetvalue(r, i, 5),
            .json = PQgetvalue(r, i, 6),
            .json_len = (size_t)PQgetlength(r, i, 6),
        };
        each(ud, &ev);
    }
    PQclear(r);
    return 0;
}

static int pg_sessions(void *b, int64_t now, void (*each)(void *, const rp_store_session_t *),
                       void *ud)
{
    char n[24];
    snprintf(n, sizeof(n), "%lld", (long long)now);
    const char *params[] = {n};
    PGresult *r = run(b,
                      "SELECT pid, nsp, sid, rooms, expires FROM sessions WHERE expires = 0 OR "
                      "expires > $1::bigint",
                      1, params, PGRES_TUPLES_OK);
    if (r == NULL)
        return RP_EUNAVAIL;
    for (int i = 0; i < PQntuples(r); i++) {
        rp_store_session_t s = {PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                                PQgetvalue(r, i, 3), strtoll(PQgetvalue(r, i, 4), NULL, 10)};
        each(ud, &s);
    }
    PQclear(r);
    return 0;
}

static int pg_snapshot_put(void *b, int64_t version, const char *json)
{
    char v[24];
    snprintf(v, sizeof(v), "%lld", (long long)version);
    const char *params[] = {v, json};
    return run_ok(
        b,
        "INSERT INTO snapshot (one, version, state) VALUES (1, $1::bigint, $2) ON CONFLICT (one)"
        " DO UPDATE SET version = EXCLUDED.version, state = EXCLUDED.state",
        2, params);
}

static int pg_snapshot_get(void *b, int64_t *version, rp_buf_t *out)
{
    *version = 0;
    PGresult *r =
        run(b, "SELECT version, state FROM snapshot WHERE one = 1", 0, NULL, PGRES_TUPLES_OK);
    if (r == NULL)
        return RP_EUNAVAIL;
    if (PQntuples(r) == 1) {
        *version = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        rp_buf_append(out, PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1));
    }
    PQclear(r);
    return out->err; /* the snapshot did not fit out */
}

static int pg_ping(void *b)
{
    pg_t *p = b;
    PGresult *r = run(p, "SELECT 1", 0, NULL, PGRES_TUPLES_OK);
    PQclear(r);
    return r ? 0 : RP_EUNAVAIL;
}

static const char *pg_error(void *b)
{
    return ((pg_t *)b)->err;
}

static void pg_free(void *b)
{
    pg_t *p = b;
    rp_free(p->rows);
    if (p->conn)
        PQfinish(p->conn);
    rp_free(p->url);
    rp_free(p);
}

const rp_store_backend_ops_t rp_store_pg_ops = {
    .kind = "postgres",
    .connect = pg_connect,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .append = pg_append,
    .session_put = pg_session_put,
    .session_del = pg_session_del,
    .prune = pg_prune,
    .history = pg_history,
    .files = pg_files,
    .since = pg_since,
    .replay = pg_replay,
    .sessions = pg_sessions,
    .snapshot_put = pg_snapshot_put,
    .snapshot_get = pg_snapshot_get,
    .ping = pg_ping,
    .error = pg_error,
    .free = pg_free,
};

void *rp_store_pg_open(const char *url, char *err, size_t errlen)
{
    pg_t *p = rp_calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->url = rp_strndup(url, strlen(url));
    if (p->url == NULL) {
        snprintf(err, errlen, "out of memory");
        goto undo_pg;
    }
    if (pg_connect(p) < 0) {
        snprintf(err, errlen, "%s", p->err);
        goto undo_connection;
    }
    return p;
undo_connection:
    pg_free(p); /* the half-open connection, the url and p */
    return NULL;
undo_pg:
    rp_free(p);
    return NULL;
}
