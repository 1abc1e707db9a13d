/* SPDX-License-Identifier: MIT */
/* The SQLite FTS5 index (see index.h for the tables). The chunks live in one FTS5 table with
 * the text indexed and path and positions stored beside it (UNINDEXED); each document's
 * chunks get a contiguous rowid range (watch_documents.first_rowid, from the counter in
 * watch_meta), so replacing or removing a document deletes by rowid range instead of
 * scanning for its path. Writes are plain statements inside one BEGIN IMMEDIATE transaction
 * (a reader never sees half a document); no triggers: measured, an external-content table fed
 * by triggers indexed about 2.5 times slower. synchronous=NORMAL on this connection: the index
 * can be rebuilt from the files, and the registry re-ingests whatever a crash lost. */
#include "watch/index.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "util/alloc.h"
#include "util/err.h"

struct rp_watch_index {
    sqlite3 *db;
    char path[1024];
    char err[1400];
    sqlite3_stmt *lookup, *touch, *ranges, *del_range, *del_doc, *ins_doc, *ins_chunk, *get_next,
        *put_next;
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE IF NOT EXISTS watch_documents ("
    "  path TEXT PRIMARY KEY, hash TEXT NOT NULL, size INTEGER NOT NULL, mtime INTEGER NOT NULL,"
    "  chunks INTEGER NOT NULL, first_rowid INTEGER NOT NULL, kind TEXT NOT NULL, error TEXT,"
    "  indexed_at INTEGER NOT NULL);"
    "CREATE VIRTUAL TABLE IF NOT EXISTS watch_chunks USING fts5("
    "  text, path UNINDEXED, seq UNINDEXED, start UNINDEXED, len UNINDEXED,"
    "  tokenize='unicode61 remove_diacritics 2');"
    "CREATE TABLE IF NOT EXISTS watch_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);";

/* The store's writer thread commits to the same file: wait for its lock in 1 ms steps (the
 * built-in handler sleeps up to 100 ms per try, which costs a small file more than its
 * ingestion), for at most 10 s. */
static int on_busy(void *ud, int count)
{
    (void)ud;
    if (count >= 10000)
        return 0;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    return 1;
}

static int fail(rp_watch_index_t *ix)
{
    snprintf(ix->err, sizeof(ix->err), "index %.1024s: %.300s", ix->path,
             ix->db ? sqlite3_errmsg(ix->db) : "not open");
    return RP_EUNAVAIL;
}

static int prepare(rp_watch_index_t *ix, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v3(ix->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK
               ? 0
               : fail(ix);
}

const char *rp_watch_index_error(const rp_watch_index_t *ix)
{
    return ix->err;
}

rp_watch_index_t *rp_watch_index_open(const char *path, int readonly, char *err, size_t errlen)
{
    rp_watch_index_t *ix = rp_calloc(1, sizeof(*ix));
    if (ix == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(ix->path, sizeof(ix->path), "%s", path);
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &ix->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        fail(ix);
        goto undo;
    }
    sqlite3_busy_handler(ix->db, on_busy, NULL);
    if (readonly) {
        sqlite3_stmt *st = NULL;
        int ok = sqlite3_prepare_v2(ix->db, "SELECT 1 FROM watch_chunks LIMIT 0", -1, &st, NULL) ==
                 SQLITE_OK;
        sqlite3_finalize(st);
        if (!ok) {
            snprintf(ix->err, sizeof(ix->err),
                     "%.1024s holds no index (run `ragpulse watch DIR` or `ragpulse serve --watch "
                     "DIR` first)",
                     path);
            goto undo;
        }
        return ix;
    }
    char *msg = NULL;
    if (sqlite3_exec(ix->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(ix->err, sizeof(ix->err), "index %.1024s: %.300s", path, msg ? msg : "schema");
        sqlite3_free(msg);
        goto undo;
    }
    sqlite3_exec(ix->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    static const char tree[] =
        " WHERE path = ?1 OR (?2 AND path >= ?1 || '/' AND path < ?1 || '0')";
    char ranges[256], del_doc[256];
    snprintf(ranges, sizeof(ranges), "SELECT first_rowid, chunks FROM watch_documents%s", tree);
    snprintf(del_doc, sizeof(del_doc), "DELETE FROM watch_documents%s", tree);
    if (prepare(ix, "SELECT hash, size, mtime, chunks FROM watch_documents WHERE path = ?1",
                &ix->lookup) < 0 ||
        prepare(ix, "UPDATE watch_documents SET size = ?2, mtime = ?3 WHERE path = ?1",
                &ix->touch) < 0 ||
        prepare(ix, ranges, &ix->ranges) < 0 ||
        prepare(ix, "DELETE FROM watch_chunks WHERE rowid >= ?1 AND rowid < ?2", &ix->del_range) <
            0 ||
        prepare(ix, del_doc, &ix->del_doc) < 0 ||
        prepare(ix,
                "INSERT INTO watch_documents (path, hash, size, mtime, chunks, first_rowid, kind, "
                "error, indexed_at)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                &ix->ins_doc) < 0 ||
        prepare(ix,
                "INSERT INTO watch_chunks (rowid, text, path, seq, start, len) VALUES (?1, ?2, ?3, "
                "?4, ?5, ?6)",
                &ix->ins_chunk) < 0 ||
        prepare(ix, "SELECT value FROM watch_meta WHERE key = 'next_rowid'", &ix->get_next) < 0 ||
        prepare(ix, "INSERT OR REPLACE INTO watch_meta (key, value) VALUES ('next_rowid', ?1)",
                &ix->put_next) < 0)
        goto undo;
    return ix;
undo:
    snprintf(err, errlen, "%s", ix->err);
    rp_watch_index_close(ix);
    return NULL;
}

void rp_watch_index_close(rp_watch_index_t *ix)
{
    if (ix == NULL)
        return;
    sqlite3_stmt *all[] = {ix->lookup,  ix->touch,     ix->ranges,   ix->del_range, ix->del_doc,
                           ix->ins_doc, ix->ins_chunk, ix->get_next, ix->put_next};
    for (size_t i = 0; i < sizeof(all) / sizeof(*all); i++)
        sqlite3_finalize(all[i]);
    sqlite3_close(ix->db);
    rp_free(ix);
}

int rp_watch_index_lookup(rp_watch_index_t *ix, const char *path, rp_watch_doc_t *doc)
{
    sqlite3_stmt *st = ix->lookup;
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(doc->hash, sizeof(doc->hash), "%s", (const char *)sqlite3_column_text(st, 0));
        doc->size = sqlite3_column_int64(st, 1);
        doc->mtime_ns = sqlite3_column_int64(st, 2);
        doc->chunks = sqlite3_column_int64(st, 3);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : fail(ix);
}

int rp_watch_index_touch(rp_watch_index_t *ix, const char *path, int64_t size, int64_t mtime_ns)
{
    sqlite3_stmt *st = ix->touch;
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, size);
    sqlite3_bind_int64(st, 3, mtime_ns);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(ix);
}

static int exec(rp_watch_index_t *ix, const char *sql)
{
    return sqlite3_exec(ix->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : fail(ix);
}

static int run(rp_watch_index_t *ix, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : fail(ix);
}

/* Deletes path's document (and, with tree, those under path/): their chunk ranges, then their
 * registry rows. Returns the number of documents, or -1. */
static int delete_path(rp_watch_index_t *ix, const char *path, int tree)
{
    sqlite3_stmt *st = ix->ranges;
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, tree);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 first = sqlite3_column_int64(st, 0), n = sqlite3_column_int64(st, 1);
        if (n <= 0)
            continue;
        sqlite3_bind_int64(ix->del_range, 1, first);
        sqlite3_bind_int64(ix->del_range, 2, first + n);
        if (run(ix, ix->del_range) < 0) {
            sqlite3_reset(st);
            return RP_EUNAVAIL;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(ix);
    sqlite3_bind_text(ix->del_doc, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_int(ix->del_doc, 2, tree);
    if (run(ix, ix->del_doc) < 0)
        return RP_EUNAVAIL;
    return sqlite3_changes(ix->db);
}

int rp_watch_index_begin(rp_watch_index_t *ix)
{
    return exec(ix, "BEGIN IMMEDIATE");
}

int rp_watch_index_commit(rp_watch_index_t *ix)
{
    if (exec(ix, "COMMIT") == 0)
        return 0;
    sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    return RP_EUNAVAIL;
}

void rp_watch_index_rollback(rp_watch_index_t *ix)
{
    sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
}

int rp_watch_index_replace(rp_watch_index_t *ix, const char *path, rp_watch_doc_t *doc,
                           const char *kind, const char *error, const char *text,
                           const rp_watch_chunk_t *chunks, size_t n)
{
    /* Inside the caller's transaction (a batch), or in one of its own. */
    int own = sqlite3_get_autocommit(ix->db);
    if (own && exec(ix, "BEGIN IMMEDIATE") < 0)
        return RP_EUNAVAIL;
    if (delete_path(ix, path, 0) < 0)
        goto undo;
    /* This document's chunks get the rowids [first, first + n). */
    sqlite3_int64 first = 1;
    int rc = sqlite3_step(ix->get_next);
    if (rc == SQLITE_ROW)
        first = sqlite3_column_int64(ix->get_next, 0);
    sqlite3_reset(ix->get_next);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        fail(ix);
        goto undo;
    }
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st = ix->ins_chunk;
        sqlite3_bind_int64(st, 1, first + (sqlite3_int64)i);
        sqlite3_bind_text(st, 2, text + chunks[i].start, (int)chunks[i].len, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)i);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)chunks[i].start);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)chunks[i].len);
        if (run(ix, st) < 0)
            goto undo;
    }
    sqlite3_bind_int64(ix->put_next, 1, first + (sqlite3_int64)n);
    if (run(ix, ix->put_next) < 0)
        goto undo;
    doc->chunks = (int64_t)n;
    sqlite3_stmt *st = ix->ins_doc;
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, doc->hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, doc->size);
    sqlite3_bind_int64(st, 4, doc->mtime_ns);
    sqlite3_bind_int64(st, 5, doc->chunks);
    sqlite3_bind_int64(st, 6, first);
    sqlite3_bind_text(st, 7, kind, -1, SQLITE_STATIC);
    if (error)
        sqlite3_bind_text(st, 8, error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)time(NULL));
    if (run(ix, st) < 0)
        goto undo;
    if (own && exec(ix, "COMMIT") < 0)
        goto undo;
    return 0;
undo:
    if (own)
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    return RP_EUNAVAIL;
}

long rp_watch_index_remove(rp_watch_index_t *ix, const char *path, int tree)
{
    if (exec(ix, "BEGIN IMMEDIATE") < 0)
        return RP_EUNAVAIL;
    int n = delete_path(ix, path, tree);
    if (n < 0 || exec(ix, "COMMIT") < 0) {
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
        return RP_EUNAVAIL;
    }
    return n;
}

int rp_watch_index_each(rp_watch_index_t *ix, const char *dir,
                        int (*cb)(void *ud, const char *path), void *ud)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(
            ix->db,
            "SELECT path FROM watch_documents WHERE path >= ?1 || '/' AND path < ?1 || '0'"
            " ORDER BY path",
            -1, &st, NULL) != SQLITE_OK)
        return fail(ix);
    sqlite3_bind_text(st, 1, dir, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (cb(ud, (const char *)sqlite3_column_text(st, 0)) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(ix);
}

char *rp_watch_query_from_words(const char *words)
{
    /* Worst case: every byte a one-byte word ("a b" -> "\"a\" \"b\""), or a '"' doubled. */
    size_t wl = strlen(words);
    char *q = rp_malloc(wl * 3 + 1);
    if (q == NULL)
        return NULL;
    size_t o = 0;
    for (const char *c = words; *c;) {
        while (*c == ' ' || (*c >= '\t' && *c <= '\r'))
            c++;
        if (*c == '\0')
            break;
        if (o)
            q[o++] = ' ';
        q[o++] = '"';
        while (*c && *c != ' ' && !(*c >= '\t' && *c <= '\r')) {
            if (*c == '"')
                q[o++] = '"';
            q[o++] = *c++;
        }
        q[o++] = '"';
    }
    q[o] = '\0';
    return q;
}

/* FTS5's message for a query it cannot read, with the reason in words where FTS5's own is
 * cryptic: "obsidian-lantern" says "no such column: lantern" (FTS5 reads `-word` and `word:`
 * as column filters, and the index has one column). */
static void syntax_error(rp_watch_index_t *ix, const char *msg)
{
    static const char col[] = "no such column: ";
    if (strncmp(msg, col, sizeof(col) - 1) == 0)
        snprintf(ix->err, sizeof(ix->err),
                 "%.300s (FTS5 reads \"-%.200s\" and \"%.200s:\" as a filter on a column of that "
                 "name, and the"
                 " index has none: put words with - or : in double quotes, \"obsidian-lantern\")",
                 msg, msg + sizeof(col) - 1, msg + sizeof(col) - 1);
    else
        snprintf(ix->err, sizeof(ix->err), "%s", msg);
}

long rp_watch_index_search(rp_watch_index_t *ix, const char *query, rp_watch_query_syntax_t syntax,
                           int limit, void (*cb)(void *ud, const rp_watch_hit_t *hit), void *ud)
{
    char *words = NULL;
    if (syntax == RP_WATCH_QUERY_WORDS) {
        words = rp_watch_query_from_words(query);
        if (words == NULL) {
            snprintf(ix->err, sizeof(ix->err), "out of memory");
            return UV_ENOMEM;
        }
        query = words;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(
            ix->db,
            "SELECT path, seq, start, len, snippet(watch_chunks, 0, '[', ']', '...', 24),"
            " bm25(watch_chunks) FROM watch_chunks WHERE watch_chunks MATCH ?1"
            " ORDER BY bm25(watch_chunks) LIMIT ?2",
            -1, &st, NULL) != SQLITE_OK) {
        rp_free(words);
        return fail(ix);
    }
    sqlite3_bind_text(st, 1, query, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, limit);
    long n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rp_watch_hit_t h = {
            .path = (const char *)sqlite3_column_text(st, 0),
            .seq = sqlite3_column_int64(st, 1),
            .start = sqlite3_column_int64(st, 2),
            .len = sqlite3_column_int64(st, 3),
            .snippet = (const char *)sqlite3_column_text(st, 4),
            .score = sqlite3_column_double(st, 5),
        };
        if (h.path == NULL)
            h.path = "";
        if (h.snippet == NULL)
            h.snippet = "";
        cb(ud, &h);
        n++;
    }
    if (rc != SQLITE_DONE) {
        /* The statement is fixed, so a plain SQLITE_ERROR comes from the query text (FTS5's
         * "syntax error near", "unterminated string", "no such column", ...); busy, I/O or
         * corruption errors have codes of their own. Plain words are always valid FTS5, so
         * for them any error is ours. */
        int syntax_err = syntax == RP_WATCH_QUERY_FTS5 &&
                         (sqlite3_extended_errcode(ix->db) & 0xff) == SQLITE_ERROR;
        if (syntax_err)
            syntax_error(ix, sqlite3_errmsg(ix->db));
        else
            fail(ix);
        sqlite3_finalize(st);
        rp_free(words);
        return syntax_err ? RP_EINVAL : RP_EUNAVAIL;
    }
    sqlite3_finalize(st);
    rp_free(words);
    return n;
}

int rp_watch_index_counts(rp_watch_index_t *ix, int64_t *docs, int64_t *chunks)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(
            ix->db,
            "SELECT (SELECT count(*) FROM watch_documents), (SELECT count(*) FROM watch_chunks)",
            -1, &st, NULL) != SQLITE_OK)
        return fail(ix);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *docs = sqlite3_column_int64(st, 0);
        *chunks = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : fail(ix);
}
