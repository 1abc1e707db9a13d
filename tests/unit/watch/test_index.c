/* SPDX-License-Identifier: MIT */
/* watch/index: the SQLite FTS5 index on a scratch file. A document's chunks are found by
 * their words with path, chunk number and byte positions; replacing a document replaces its
 * chunks (rowid ranges do not leak into a neighbour's); removal by path and by tree; the
 * registry row (hash, size, mtime, error) and touch; several documents in one transaction,
 * and a rollback that leaves nothing; plain words (the default) read no operators and are
 * never a syntax error, while FTS5 syntax errors are told apart from other errors, in words;
 * a read-only open of a file without the tables says so. */
#include "unit.h"

#include <unistd.h>

#include "util/alloc.h"
#include "util/err.h"
#include "watch/index.h"

typedef struct hits {
    int n;
    char path[8][128];
    int64_t seq[8], start[8], len[8];
    char snippet[8][256];
} hits_t;

static void on_hit(void *ud, const rp_watch_hit_t *h)
{
    hits_t *hs = ud;
    if (hs->n < 8) {
        snprintf(hs->path[hs->n], sizeof(hs->path[0]), "%s", h->path);
        hs->seq[hs->n] = h->seq;
        hs->start[hs->n] = h->start;
        hs->len[hs->n] = h->len;
        snprintf(hs->snippet[hs->n], sizeof(hs->snippet[0]), "%s", h->snippet);
    }
    hs->n++;
}

/* Searches q in FTS5 syntax. */
static long find(rp_watch_index_t *ix, const char *q, hits_t *hs)
{
    memset(hs, 0, sizeof(*hs));
    return rp_watch_index_search(ix, q, RP_WATCH_QUERY_FTS5, 8, on_hit, hs);
}

/* Searches q as plain words. */
static long find_words(rp_watch_index_t *ix, const char *q, hits_t *hs)
{
    memset(hs, 0, sizeof(*hs));
    return rp_watch_index_search(ix, q, RP_WATCH_QUERY_WORDS, 8, on_hit, hs);
}

/* Indexes text as path, cut at the '|' characters (the chunk boundaries). */
static void put(rp_watch_index_t *ix, const char *path, const char *text, const char *hash)
{
    rp_watch_chunk_t chunks[8];
    size_t n = 0, start = 0, len = strlen(text);
    for (size_t i = 0; i <= len; i++) {
        if (i == len || text[i] == '|') {
            chunks[n].start = start;
            chunks[n].len = i - start;
            n++;
            start = i + 1;
        }
    }
    rp_watch_doc_t doc = {.size = (int64_t)len, .mtime_ns = 42};
    snprintf(doc.hash, sizeof(doc.hash), "%s", hash);
    assert_int_equal(rp_watch_index_replace(ix, path, &doc, "text", NULL, text, chunks, n), 0);
    assert_int_equal(doc.chunks, (int64_t)n);
}

static char dbpath[64];

static int setup(void **state)
{
    snprintf(dbpath, sizeof(dbpath), "/tmp/rp-test-index-%d.db", (int)getpid());
    char err[256];
    rp_watch_index_t *ix = rp_watch_index_open(dbpath, 0, err, sizeof(err));
    if (ix == NULL)
        fail_msg("%s", err);
    *state = ix;
    return 0;
}

static int teardown(void **state)
{
    rp_watch_index_close(*state);
    char p[80];
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", dbpath, sfx[i]);
        unlink(p);
    }
    return 0;
}

static void finds_chunks_with_positions(void **state)
{
    rp_watch_index_t *ix = *state;
    put(ix, "/d/a.txt", "alpha beta|gamma delta|epsilon alpha", "sha256:a");
    hits_t h;
    assert_int_equal(find(ix, "gamma", &h), 1);
    assert_string_equal(h.path[0], "/d/a.txt");
    assert_int_equal(h.seq[0], 1);
    assert_int_equal(h.start[0], 11);
    assert_int_equal(h.len[0], 11);
    assert_string_equal(h.snippet[0], "[gamma] delta");
    assert_int_equal(find(ix, "alpha", &h), 2);
    assert_int_equal(find(ix, "alph*", &h), 2);
    assert_int_equal(find(ix, "\"beta gamma\"", &h), 0); /* a phrase never spans chunks */
    assert_int_equal(find(ix, "zeta", &h), 0);
    /* Diacritics fold: café finds cafe and the other way round. */
    put(ix, "/d/c.txt", "un caf\xc3\xa9 noir", "sha256:c");
    assert_int_equal(find(ix, "cafe", &h), 1);
    rp_watch_doc_t doc;
    assert_int_equal(rp_watch_index_lookup(ix, "/d/a.txt", &doc), 1);
    assert_string_equal(doc.hash, "sha256:a");
    assert_int_equal(doc.chunks, 3);
    assert_int_equal(doc.mtime_ns, 42);
    assert_int_equal(rp_watch_index_lookup(ix, "/d/none.txt", &doc), 0);
}

static void replacing_a_document_replaces_its_chunks(void **state)
{
    rp_watch_index_t *ix = *state;
    put(ix, "/d/a.txt", "one|two|three", "sha256:1");
    put(ix, "/d/b.txt", "two again", "sha256:b");
    put(ix, "/d/a.txt", "four|five", "sha256:2");
    hits_t h;
    assert_int_equal(find(ix, "one OR three", &h), 0);
    assert_int_equal(find(ix, "two", &h), 1);
    assert_string_equal(h.path[0], "/d/b.txt"); /* the neighbour's chunk is untouched */
    assert_int_equal(find(ix, "five", &h), 1);
    assert_int_equal(h.seq[0], 1);
    int64_t docs, chunks;
    assert_int_equal(rp_watch_index_counts(ix, &docs, &chunks), 0);
    assert_int_equal(docs, 2);
    assert_int_equal(chunks, 3);
    assert_int_equal(rp_watch_index_touch(ix, "/d/a.txt", 99, 7), 0);
    rp_watch_doc_t doc;
    assert_int_equal(rp_watch_index_lookup(ix, "/d/a.txt", &doc), 1);
    assert_int_equal(doc.size, 99);
    assert_int_equal(doc.mtime_ns, 7);
    assert_string_equal(doc.hash, "sha256:2");
}

static void removes_by_path_and_by_tree(void **state)
{
    rp_watch_index_t *ix = *state;
    put(ix, "/d/sub/a.txt", "apple", "h1");
    put(ix, "/d/sub/deeper/b.txt", "banana", "h2");
    put(ix, "/d/subway.txt", "cherry", "h3"); /* shares the prefix "/d/sub" but is not under it */
    put(ix, "/d/x.txt", "date", "h4");
    assert_int_equal(rp_watch_index_remove(ix, "/d/x.txt", 0), 1);
    assert_int_equal(rp_watch_index_remove(ix, "/d/x.txt", 0), 0);
    assert_int_equal(rp_watch_index_remove(ix, "/d/sub", 1), 2);
    hits_t h;
    assert_int_equal(find(ix, "apple OR banana OR date", &h), 0);
    assert_int_equal(find(ix, "cherry", &h), 1);
    int64_t docs, chunks;
    assert_int_equal(rp_watch_index_counts(ix, &docs, &chunks), 0);
    assert_int_equal(docs, 1);
    assert_int_equal(chunks, 1);
}

static void a_batch_commits_together_or_not_at_all(void **state)
{
    rp_watch_index_t *ix = *state;
    assert_int_equal(rp_watch_index_begin(ix), 0);
    put(ix, "/d/1.txt", "kiwi", "h1");
    put(ix, "/d/2.txt", "lemon", "h2");
    rp_watch_index_rollback(ix);
    hits_t h;
    assert_int_equal(find(ix, "kiwi OR lemon", &h), 0);
    rp_watch_doc_t doc;
    assert_int_equal(rp_watch_index_lookup(ix, "/d/1.txt", &doc), 0);
    assert_int_equal(rp_watch_index_begin(ix), 0);
    put(ix, "/d/1.txt", "kiwi", "h1");
    put(ix, "/d/2.txt", "lemon", "h2");
    assert_int_equal(rp_watch_index_commit(ix), 0);
    assert_int_equal(find(ix, "kiwi OR lemon", &h), 2);
    /* A failure is recorded with its reason and no chunks. */
    rp_watch_doc_t bad = {.size = 3, .mtime_ns = 1};
    snprintf(bad.hash, sizeof(bad.hash), "h9");
    assert_int_equal(rp_watch_index_replace(ix, "/d/1.txt", &bad, "pdf", "corrupt", "", NULL, 0),
                     0);
    assert_int_equal(find(ix, "kiwi", &h), 0);
    assert_int_equal(rp_watch_index_lookup(ix, "/d/1.txt", &doc), 1);
    assert_int_equal(doc.chunks, 0);
}

static void tells_query_errors_apart(void **state)
{
    rp_watch_index_t *ix = *state;
    put(ix, "/d/a.txt", "words", "h");
    hits_t h;
    static const char *const bad[] = {"\"open",          "AND",          "a OR", "(",
                                      "nosuchcolumn: x", "NEAR(a b, x)", "*"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        if (find(ix, bad[i], &h) != RP_EINVAL)
            fail_msg("query %s: not a syntax error (%s)", bad[i], rp_watch_index_error(ix));
        assert_true(strlen(rp_watch_index_error(ix)) > 0);
    }
    assert_int_equal(find(ix, "words", &h), 1); /* still usable */
}

static void plain_words_read_no_operators(void **state)
{
    rp_watch_index_t *ix = *state;
    put(ix, "/d/lamp.txt", "the obsidian-lantern glows at night", "h1");
    put(ix, "/d/apart.txt", "obsidian is black; a lantern is not", "h2");
    put(ix, "/d/ops.txt", "AND OR NOT NEAR are words here: (really) \"quoted\"", "h3");
    hits_t h;
    /* The query: FTS5 reads it as a column filter; as words it is that phrase. */
    assert_int_equal(find(ix, "obsidian-lantern", &h), RP_EINVAL);
    assert_int_equal(find_words(ix, "obsidian-lantern", &h), 1);
    assert_string_equal(h.path[0], "/d/lamp.txt");
    assert_string_equal(h.snippet[0], "the [obsidian-lantern] glows at night");
    /* Every word must match, anywhere in the chunk, case and accents aside. */
    assert_int_equal(find_words(ix, "Lantern  OBSIDIAN", &h), 2);
    assert_int_equal(find_words(ix, "lantern glows", &h), 1);
    assert_int_equal(find_words(ix, "lantern zebra", &h), 0);
    /* Operators, parentheses, quotes, stars and colons are only text. */
    static const char *const plain[] = {"AND",      "NOT",   "a OR",  "(really)", "\"quoted",
                                        "quoted\"", "near(", "here:", "words*",   "NOT lantern"};
    for (size_t i = 0; i < ARRAY_LEN(plain); i++) {
        long n = find_words(ix, plain[i], &h);
        if (n < 0)
            fail_msg("words %s: %ld (%s)", plain[i], n, rp_watch_index_error(ix));
    }
    assert_int_equal(find_words(ix, "AND NOT", &h), 1);
    assert_string_equal(h.path[0], "/d/ops.txt");
    assert_int_equal(find_words(ix, "NOT lantern", &h), 1); /* both words, not "lantern without" */
    assert_string_equal(h.path[0], "/d/apart.txt");
    /* Punctuation alone is no word: it narrows nothing, and alone it matches nothing. */
    assert_int_equal(find_words(ix, "- lantern", &h), 2);
    assert_int_equal(find_words(ix, "- : \"", &h), 0);
    /* The query text: one FTS5 string per word, '"' doubled. */
    char *q = rp_watch_query_from_words("  a-b\t\"c\" d*  ");
    assert_non_null(q);
    assert_string_equal(q, "\"a-b\" \"\"\"c\"\"\" \"d*\"");
    rp_free(q);
}

static void fts5_errors_say_why(void **state)
{
    rp_watch_index_t *ix = *state;
    put(ix, "/d/a.txt", "words", "h");
    hits_t h;
    assert_int_equal(find(ix, "obsidian-lantern", &h), RP_EINVAL);
    const char *e = rp_watch_index_error(ix);
    assert_non_null(strstr(e, "no such column: lantern"));
    assert_non_null(strstr(e, "in double quotes"));
    assert_int_equal(find(ix, "\"obsidian-lantern\"", &h), 0); /* quoted: valid, no match */
    assert_int_equal(find(ix, "\"open", &h), RP_EINVAL);
    assert_non_null(strstr(rp_watch_index_error(ix), "unterminated string"));
}

static void read_only_open_needs_the_tables(void **state)
{
    (void)state;
    char p[80], err[512];
    snprintf(p, sizeof(p), "/tmp/rp-test-index-empty-%d.db", (int)getpid());
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
    assert_null(rp_watch_index_open(p, 1, err, sizeof(err)));
    assert_non_null(strstr(err, "holds no index"));
    unlink(p);
    rp_watch_index_t *ix = rp_watch_index_open(dbpath, 1, err, sizeof(err));
    assert_non_null(ix);
    rp_watch_index_close(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(finds_chunks_with_positions, setup, teardown),
        cmocka_unit_test_setup_teardown(replacing_a_document_replaces_its_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(removes_by_path_and_by_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(a_batch_commits_together_or_not_at_all, setup, teardown),
        cmocka_unit_test_setup_teardown(tells_query_errors_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(plain_words_read_no_operators, setup, teardown),
        cmocka_unit_test_setup_teardown(fts5_errors_say_why, setup, teardown),
        cmocka_unit_test_setup_teardown(read_only_open_needs_the_tables, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
