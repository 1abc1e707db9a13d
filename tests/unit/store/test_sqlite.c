/* SPDX-License-Identifier: MIT */
/* store/sqlite: the backend on a scratch file, called the way the store worker calls it. A
 * commit into a file that was deleted or renamed while open fails with fault MOVED (before
 * the batch begins, and after the commit when it went between the two), the liveness check
 * and a reconnect say the same and create nothing under the old name, and the file put back
 * is used again; a renamed write-ahead log counts as moved; a file that is not a database is
 * refused at open with its path, SQLite's message and the code's name. On ":memory:": appended
 * events read back in order (since, history of a pipeline and of a file, replay), the file
 * registry keeps each file's last outcome and known hash, retention keeps the newest events and
 * the recent ones and drops expired sessions, a refused batch (an id taken) loses nothing
 * committed and commits nothing of itself, and a read larger than its buffer fails (RP_ETOOBIG, not
 * a cut-off array) and leaves the database usable. */
#include "unit.h"

#include <sys/stat.h>
#include <unistd.h>

#include "store/backend.h"
#include "util/err.h"

static char dir[64];
static char db[96], wal[100], shm[100], away[100];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/rp-test-store-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(db, sizeof(db), "%s/x.db", dir);
    snprintf(wal, sizeof(wal), "%s-wal", db);
    snprintf(shm, sizeof(shm), "%s-shm", db);
    snprintf(away, sizeof(away), "%s/moved", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *files[] = {db, wal, shm, away};
    for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++)
        unlink(files[i]);
    rmdir(dir);
    return 0;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static const rp_store_backend_ops_t *ops = &rp_store_sqlite_ops;

static void *open_db(void)
{
    char err[256];
    void *b = rp_store_sqlite_open(db, err, sizeof(err));
    if (b == NULL)
        fail_msg("open: %s", err);
    return b;
}

static rp_store_event_t event(int64_t id)
{
    static const char json[] = "{}";
    return (rp_store_event_t){
        id, 1000 + id, "pipeline:online", "p", "local_files", NULL, NULL, NULL, json, 2};
}

/* One batch of one event, as the worker runs it: begin, append, commit (rollback on failure). */
static int write_one(void *b, int64_t id)
{
    rp_store_event_t ev = event(id);
    int rc = ops->begin(b);
    if (rc == 0)
        rc = ops->append(b, &ev);
    if (rc == 0)
        return ops->commit(b);
    ops->rollback(b);
    return rc;
}

static void assert_moved(void *b)
{
    assert_int_equal(ops->fault(b), RP_STORE_FAULT_MOVED);
    assert_non_null(strstr(ops->error(b), db));
    assert_non_null(strstr(ops->error(b), "deleted or moved while open"));
}

static void refuses_every_write_once_the_file_is_deleted(void **state)
{
    (void)state;
    void *b = open_db();
    assert_int_equal(write_one(b, 1), 0);
    assert_int_equal(ops->ping(b), 0);
    assert_int_equal(unlink(db), 0);
    assert_int_equal(unlink(wal), 0);
    unlink(shm);
    assert_int_equal(write_one(b, 2), RP_EUNAVAIL);
    assert_moved(b);
    assert_int_equal(ops->ping(b), RP_EUNAVAIL);
    assert_moved(b);
    assert_int_equal(ops->connect(b), RP_EUNAVAIL);
    assert_false(exists(db)); /* never a new, empty store under the old name */
    ops->free(b);
}

static void a_commit_after_the_file_went_is_not_durable(void **state)
{
    (void)state;
    void *b = open_db();
    rp_store_event_t ev = event(1);
    assert_int_equal(ops->begin(b), 0);
    assert_int_equal(ops->append(b, &ev), 0);
    assert_int_equal(rename(db, away), 0);
    /* Committed, but into a file a restart does not open. */
    assert_int_equal(ops->commit(b), RP_EUNAVAIL);
    assert_moved(b);
    ops->free(b);
}

static void the_file_put_back_is_used_again(void **state)
{
    (void)state;
    void *b = open_db();
    assert_int_equal(write_one(b, 1), 0);
    const char *names[] = {db, wal};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(rename(names[i], away), 0);
        assert_int_equal(write_one(b, 2 + (int64_t)i), RP_EUNAVAIL);
        assert_moved(b);
        assert_int_equal(rename(away, names[i]), 0);
        assert_int_equal(ops->connect(b), 0);
        assert_int_equal(ops->ping(b), 0);
        assert_int_equal(write_one(b, 2 + (int64_t)i), 0);
    }
    ops->free(b);
    /* Both events after the moves are in the file. */
    b = open_db();
    int64_t n = 0;
    rp_buf_t out;
    rp_buf_init(&out, 1 << 16);
    assert_int_equal(ops->since(b, 0, 10, &out), 0);
    for (size_t i = 0; i < out.len; i++)
        n += out.data[i] == '{';
    assert_int_equal(n, 3);
    rp_buf_deinit(&out);
    ops->free(b);
}

static void a_file_that_is_not_a_database_is_named_with_sqlites_reason(void **state)
{
    (void)state;
    FILE *f = fopen(db, "wb");
    assert_non_null(f);
    for (int i = 0; i < 4096; i++)
        fputc((i * 7919) & 0xff, f);
    fclose(f);
    char err[512];
    assert_null(rp_store_sqlite_open(db, err, sizeof(err)));
    char want[256];
    snprintf(want, sizeof(want), "sqlite %s: file is not a database (SQLITE_NOTADB)", db);
    assert_string_equal(err, want);
}

/* A read whose rows outgrow the caller's buffer fails with the buffer's error instead of
 * handing back a cut-off JSON array, and the database stays usable (the worker does not take
 * RP_ETOOBIG for a broken connection). */
static void rows_that_do_not_fit_fail_with_etoobig(void **state)
{
    (void)state;
    void *b = open_db();
    for (int64_t id = 1; id <= 3; id++)
        assert_int_equal(write_one(b, id), 0);
    rp_buf_t small;
    rp_buf_init(&small, 6); /* "[{},{},{}]" is 10 bytes */
    assert_int_equal(ops->since(b, 0, 10, &small), RP_ETOOBIG);
    assert_int_equal(ops->history(b, "p", NULL, 0, 10, &small), RP_ETOOBIG);
    rp_buf_deinit(&small);
    assert_int_equal(ops->ping(b), 0);
    rp_buf_t out;
    rp_buf_init(&out, 1 << 16);
    assert_int_equal(ops->since(b, 0, 10, &out), 0);
    assert_string_equal(out.data, "[{},{},{}]");
    rp_buf_deinit(&out);
    ops->free(b);
}

/* ---- the backend on :memory: (no file, so no moved-file checks): what store.h promises ---- */

static void *open_memory(void)
{
    char err[256];
    void *b = rp_store_sqlite_open(":memory:", err, sizeof(err));
    if (b == NULL)
        fail_msg("open :memory:: %s", err);
    return b;
}

/* An event of pipeline pid about file fid (NULL: a pipeline event), payload {"id":id}. */
static char payloads[64][32];
static rp_store_event_t file_event(int64_t id, int64_t ts, const char *type, const char *pid,
                                   const char *fid, const char *hash)
{
    char *json = payloads[id % 64];
    snprintf(json, sizeof(payloads[0]), "{\"id\":%lld}", (long long)id);
    return (rp_store_event_t){id, ts, type, pid, "local_files", fid, fid, hash, json, strlen(json)};
}

/* Commits evs as one batch, as the worker does; rolls back and returns -1 on any failure. */
static int write_batch(void *b, const rp_store_event_t *evs, size_t n)
{
    if (ops->begin(b) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (ops->append(b, &evs[i]) < 0) {
            ops->rollback(b);
            return -1;
        }
    }
    return ops->commit(b);
}

/* The ids of a JSON array of {"id":N} payloads, as "1,2,3". */
static void ids_of(const rp_buf_t *out, char *ids, size_t idslen)
{
    size_t o = 0;
    ids[0] = '\0';
    assert_true(out->len >= 2 && out->data[0] == '[' && out->data[out->len - 1] == ']');
    for (const char *p = out->data; (p = strstr(p, "\"id\":")) != NULL; p += 5)
        o +=
            (size_t)snprintf(ids + o, idslen - o, "%s%lld", o ? "," : "", strtoll(p + 5, NULL, 10));
}

static void read_query(void *b, int which, int64_t arg, int limit, const char *want)
{
    rp_buf_t out;
    rp_buf_init(&out, 1 << 16);
    int rc = which == 0   ? ops->since(b, arg, limit, &out)
             : which == 1 ? ops->history(b, "p", NULL, arg, limit, &out)
                          : ops->history(b, "p", "f1", arg, limit, &out);
    assert_int_equal(rc, 0);
    char ids[256];
    ids_of(&out, ids, sizeof(ids));
    if (strcmp(ids, want) != 0)
        fail_msg("query %d(%lld, %d): got [%s], want [%s]", which, (long long)arg, limit, ids,
                 want);
    rp_buf_deinit(&out);
}

struct seen {
    int64_t ids[8];
    size_t n;
};

/* replay's callback: checks each event's columns and records its id. */
static void each(void *ud, const rp_store_event_t *ev)
{
    struct seen *seen = ud;
    assert_int_equal(ev->ts_ms, 999 + ev->id);
    assert_non_null(ev->type);
    assert_string_equal(ev->pipeline_type, "local_files");
    char want[32];
    snprintf(want, sizeof(want), "{\"id\":%lld}", (long long)ev->id);
    assert_span(ev->json, ev->json_len, want);
    if (seen->n < 8)
        seen->ids[seen->n++] = ev->id;
}

/* sessions' callback: counts them. */
static void count_session(void *ud, const rp_store_session_t *s)
{
    assert_string_equal(s->nsp, "/");
    assert_non_null(s->rooms);
    (*(int *)ud)++;
}

static void appended_events_read_back_in_order(void **state)
{
    (void)state;
    void *b = open_memory();
    rp_store_event_t evs[] = {
        file_event(1, 1000, "pipeline:online", "p", NULL, NULL),
        file_event(2, 1001, "file:processing", "p", "f1", NULL),
        file_event(3, 1002, "file:processing", "q", "f1", NULL),
        file_event(4, 1003, "file:progress", "p", "f2", NULL),
        file_event(5, 1004, "file:completed", "p", "f1", "sha256:aa"),
    };
    assert_int_equal(write_batch(b, evs, 3), 0);
    assert_int_equal(write_batch(b, evs + 3, 2), 0);
    read_query(b, 0, 0, 100, "1,2,3,4,5"); /* since: oldest first, every pipeline */
    read_query(b, 0, 2, 2, "3,4");
    read_query(b, 0, 5, 10, "");
    read_query(b, 1, 0, 100, "5,4,2,1"); /* history of p: newest first */
    read_query(b, 1, 4, 100, "2,1");     /* before 4 */
    read_query(b, 1, 0, 1, "5");
    read_query(b, 2, 0, 100, "5,2"); /* one file of p */
    /* replay: every event after `after`, in id order, with its columns. */
    struct seen seen = {{0}, 0};
    assert_int_equal(ops->replay(b, 1, each, &seen), 0);
    assert_int_equal(seen.n, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(seen.ids[i], (int64_t)i + 2);
    ops->free(b);
}

static void the_file_registry_keeps_each_files_last_outcome(void **state)
{
    (void)state;
    void *b = open_memory();
    rp_store_event_t evs[] = {
        file_event(1, 1000, "file:processing", "p", "b", "sha256:bb"),
        file_event(2, 1001, "file:processing", "p", "a", NULL),
        file_event(3, 1002, "file:completed", "p", "b", NULL), /* no hash: the known one stays */
        file_event(4, 1003, "file:failed", "p", "a", NULL),
        file_event(5, 1004, "file:processing", "p", "c", NULL),
        file_event(6, 1005, "file:deleted", "p", "c", NULL),
        file_event(7, 1006, "file:processing", "other", "a", NULL),
    };
    assert_int_equal(write_batch(b, evs, ARRAY_LEN(evs)), 0);
    rp_buf_t out;
    rp_buf_init(&out, 1 << 16);
    assert_int_equal(ops->files(b, "p", "", 10, &out), 0);
    assert_span(out.data, out.len,
                "[{\"file_id\":\"a\",\"name\":\"a\",\"hash\":null,\"status\":\"failed\",\"event_"
                "id\":4,\"updated\":1003},"
                "{\"file_id\":\"b\",\"name\":\"b\",\"hash\":\"sha256:bb\",\"status\":\"completed\","
                "\"event_id\":3,"
                "\"updated\":1002},"
                "{\"file_id\":\"c\",\"name\":\"c\",\"hash\":null,\"status\":\"deleted\",\"event_"
                "id\":6,\"updated\":1005}]");
    /* Pages: after a file id, at most limit. */
    rp_buf_reset(&out);
    assert_int_equal(ops->files(b, "p", "a", 1, &out), 0);
    assert_non_null(strstr(out.data, "\"file_id\":\"b\""));
    assert_null(strstr(out.data, "\"file_id\":\"c\""));
    rp_buf_deinit(&out);
    ops->free(b);
}

static void retention_keeps_the_newest_and_the_recent(void **state)
{
    (void)state;
    void *b = open_memory();
    rp_store_event_t evs[10];
    for (int64_t i = 0; i < 10; i++)
        evs[i] = file_event(i + 1, 1000 * (i + 1), "heartbeat", "p", NULL, NULL);
    assert_int_equal(write_batch(b, evs, 10), 0);
    rp_store_session_t live = {"AAAAAAAAAAAAAAAAAAAA", "/", "s1", "[]", 0};
    rp_store_session_t soon = {"BBBBBBBBBBBBBBBBBBBB", "/", "s2", "[\"r\"]", 50000};
    rp_store_session_t gone = {"CCCCCCCCCCCCCCCCCCCC", "/", "s3", "[]", 4000};
    assert_int_equal(ops->begin(b), 0);
    assert_int_equal(ops->session_put(b, &live), 0);
    assert_int_equal(ops->session_put(b, &soon), 0);
    assert_int_equal(ops->session_put(b, &gone), 0);
    /* keep 6: ids 5..10 stay. */
    assert_int_equal(ops->prune(b, 6, 0, 5000), 0);
    assert_int_equal(ops->commit(b), 0);
    read_query(b, 0, 0, 100, "5,6,7,8,9,10");
    /* older than ts 8000: ids 8..10 stay. */
    assert_int_equal(ops->begin(b), 0);
    assert_int_equal(ops->prune(b, 0, 8000, 5000), 0);
    assert_int_equal(ops->commit(b), 0);
    read_query(b, 0, 0, 100, "8,9,10");
    /* No limits: events stay; the expired session went with the first prune. */
    assert_int_equal(ops->begin(b), 0);
    assert_int_equal(ops->prune(b, 0, 0, 5000), 0);
    assert_int_equal(ops->commit(b), 0);
    read_query(b, 0, 0, 100, "8,9,10");
    int n = 0;
    assert_int_equal(ops->sessions(b, 5000, count_session, &n), 0);
    assert_int_equal(n, 2); /* live (expires 0) and soon */
    /* An expiry update (rooms NULL) moves soon past now; a delete removes live. */
    rp_store_session_t later = {"BBBBBBBBBBBBBBBBBBBB", NULL, NULL, NULL, 1000};
    assert_int_equal(ops->session_put(b, &later), 0);
    assert_int_equal(ops->session_del(b, "AAAAAAAAAAAAAAAAAAAA"), 0);
    n = 0;
    assert_int_equal(ops->sessions(b, 5000, count_session, &n), 0);
    assert_int_equal(n, 0);
    ops->free(b);
}

static void a_refused_batch_loses_nothing_committed_and_commits_nothing(void **state)
{
    (void)state;
    void *b = open_memory();
    rp_store_event_t good[] = {file_event(1, 1000, "heartbeat", "p", NULL, NULL),
                               file_event(2, 1001, "heartbeat", "p", NULL, NULL)};
    assert_int_equal(write_batch(b, good, 2), 0);
    /* An id already taken in the middle of a batch: the whole batch is refused. */
    rp_store_event_t bad[] = {file_event(3, 1002, "file:processing", "p", "f1", NULL),
                              file_event(2, 1003, "heartbeat", "p", NULL, NULL),
                              file_event(4, 1004, "heartbeat", "p", NULL, NULL)};
    assert_int_equal(write_batch(b, bad, 3), -1);
    assert_non_null(strstr(ops->error(b), "SQLITE_CONSTRAINT"));
    read_query(b, 0, 0, 100, "1,2");
    rp_buf_t out;
    rp_buf_init(&out, 1 << 16);
    assert_int_equal(ops->files(b, "p", "", 10, &out), 0);
    assert_span(out.data, out.len, "[]"); /* the registry row went with the batch */
    /* The same connection goes on: the good part of the batch commits on a retry. */
    rp_store_event_t retry[] = {bad[0], bad[2]};
    assert_int_equal(write_batch(b, retry, 2), 0);
    read_query(b, 0, 0, 100, "1,2,3,4");
    /* The snapshot is replaced, never appended. */
    int64_t v = -1;
    rp_buf_reset(&out);
    assert_int_equal(ops->snapshot_get(b, &v, &out), 0);
    assert_int_equal(v, 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(ops->snapshot_put(b, 3, "{\"a\":1}"), 0);
    assert_int_equal(ops->snapshot_put(b, 4, "{\"b\":2}"), 0);
    assert_int_equal(ops->snapshot_get(b, &v, &out), 0);
    assert_int_equal(v, 4);
    assert_span(out.data, out.len, "{\"b\":2}");
    rp_buf_deinit(&out);
    ops->free(b);
}

static void a_read_past_the_buffers_limit_fails_rather_than_cut_short(void **state)
{
    (void)state;
    void *b = open_memory();
    rp_store_event_t evs[20];
    for (int64_t i = 0; i < 20; i++)
        evs[i] = file_event(i + 1, 1000 + i, "heartbeat", "p", NULL, NULL);
    assert_int_equal(write_batch(b, evs, 20), 0);
    rp_buf_t out;
    rp_buf_init(&out, 64); /* 20 payloads of 9-10 bytes do not fit */
    assert_true(ops->since(b, 0, 100, &out) < 0);
    rp_buf_deinit(&out);
    rp_buf_init(&out, 64);
    assert_true(ops->history(b, "p", NULL, 0, 100, &out) < 0);
    rp_buf_deinit(&out);
    ops->free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(refuses_every_write_once_the_file_is_deleted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_commit_after_the_file_went_is_not_durable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(the_file_put_back_is_used_again, setup, teardown),
        cmocka_unit_test_setup_teardown(a_file_that_is_not_a_database_is_named_with_sqlites_reason,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(rows_that_do_not_fit_fail_with_etoobig, setup, teardown),
        cmocka_unit_test(appended_events_read_back_in_order),
        cmocka_unit_test(the_file_registry_keeps_each_files_last_outcome),
        cmocka_unit_test(retention_keeps_the_newest_and_the_recent),
        cmocka_unit_test(a_refused_batch_loses_nothing_committed_and_commits_nothing),
        cmocka_unit_test(a_read_past_the_buffers_limit_fails_rather_than_cut_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
