/* SPDX-License-Identifier: MIT */
#ifndef RP_WATCH_INDEX_H
#define RP_WATCH_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "watch/chunk.h"

/* The full-text index of the local-files pipeline: SQLite FTS5, in its own tables of a
 * SQLite file that may also hold the hub's event store (ragpulse.db): `watch_documents` (the
 * known-files registry: path, content hash, size, mtime, chunk count, first chunk rowid, kind,
 * error) and `watch_chunks` (FTS5: the chunk text, indexed, with its path, chunk number and
 * byte positions stored beside it). WAL with a busy handler, so the store's writer thread and
 * a search can use the file at the same time.
 *
 * One index object is used by one thread at a time (the watcher serialises its jobs); every
 * call blocks on SQLite, so never call them on the loop thread. */

typedef struct rp_watch_index rp_watch_index_t;

typedef struct rp_watch_doc {
    char hash[72]; /* "sha256:" + 64 hex digits */
    int64_t size;
    int64_t mtime_ns;
    int64_t chunks;
} rp_watch_doc_t;

/* Opens (creating the tables if needed; read-only when `readonly`, then the tables must
 * exist). Returns NULL with err filled. */
rp_watch_index_t *rp_watch_index_open(const char *path, int readonly, char *err, size_t errlen);
void rp_watch_index_close(rp_watch_index_t *ix);
/* The last error's text. */
const char *rp_watch_index_error(const rp_watch_index_t *ix);

/* Looks path up in the registry: 1 (doc filled), 0 (unknown), or
 * RP_EUNAVAIL (the database failed; rp_watch_index_error says why). */
int rp_watch_index_lookup(rp_watch_index_t *ix, const char *path, rp_watch_doc_t *doc);
/* Records a new size and mtime for a known path whose content did not change. 0 or RP_EUNAVAIL. */
int rp_watch_index_touch(rp_watch_index_t *ix, const char *path, int64_t size, int64_t mtime_ns);
/* Replaces path's chunks and registry row in one transaction: the old chunks go, these come
 * (chunks[i] are positions in text). doc->chunks is set to n. A file that failed is recorded
 * with its `error` and no chunks, so an unchanged failing file is not retried after a
 * restart. 0, or RP_EUNAVAIL (nothing changed). */
int rp_watch_index_replace(rp_watch_index_t *ix, const char *path, rp_watch_doc_t *doc,
                           const char *kind, const char *error, const char *text,
                           const rp_watch_chunk_t *chunks, size_t n);
/* A transaction around several replaces (one commit for a batch of files: the store's writer
 * shares the file, and each commit waits for its lock). 0 or RP_EUNAVAIL; commit rolls back on
 * error. */
int rp_watch_index_begin(rp_watch_index_t *ix);
int rp_watch_index_commit(rp_watch_index_t *ix);
void rp_watch_index_rollback(rp_watch_index_t *ix);
/* Removes path (and, when `tree`, everything under path/) from the registry and the index,
 * in one transaction. Returns the number of documents removed, or RP_EUNAVAIL. */
long rp_watch_index_remove(rp_watch_index_t *ix, const char *path, int tree);
/* Calls cb for every registered path under dir/ (stop early by returning non-zero).
 * Returns 0 or RP_EUNAVAIL. */
int rp_watch_index_each(rp_watch_index_t *ix, const char *dir,
                        int (*cb)(void *ud, const char *path), void *ud);

typedef struct rp_watch_hit {
    const char *path;
    int64_t seq;   /* chunk number in its document, from 0 */
    int64_t start; /* byte offset of the chunk in the extracted text */
    int64_t len;
    const char *snippet; /* matched terms in [brackets] */
    double score;        /* bm25: lower is better */
} rp_watch_hit_t;

/* How rp_watch_index_search reads its query. */
typedef enum rp_watch_query_syntax {
    RP_WATCH_QUERY_WORDS, /* plain words, as users type them: every word must be in the chunk
                             (a word with punctuation inside, "obsidian-lantern", as that
                             phrase); no operators, so no query is ever a syntax error */
    RP_WATCH_QUERY_FTS5,  /* SQLite FTS5 query syntax: "phrase", prefix*, OR, NOT, NEAR() */
} rp_watch_query_syntax_t;

/* Full-text search, best first (bm25), at most limit hits, each given to cb (its strings are
 * valid during the call). Returns the number of hits, RP_EUNAVAIL on an error
 * (rp_watch_index_error), UV_ENOMEM, or RP_EINVAL when an RP_WATCH_QUERY_FTS5 query is not valid
 * FTS5 syntax (the error says why, in words: a column filter the index does not have, an
 * unterminated string, ...). */
long rp_watch_index_search(rp_watch_index_t *ix, const char *query, rp_watch_query_syntax_t syntax,
                           int limit, void (*cb)(void *ud, const rp_watch_hit_t *hit), void *ud);

/* The FTS5 query that searches `words` as plain words: each run of non-space bytes as one
 * FTS5 string ("a-b" stays a phrase, '"' doubled). Returns a new string (rp_free), or NULL
 * for out-of-memory. */
char *rp_watch_query_from_words(const char *words);

/* Counts registered documents and chunks (for logs and tests). 0 or RP_EUNAVAIL. */
int rp_watch_index_counts(rp_watch_index_t *ix, int64_t *docs, int64_t *chunks);

#endif
