/* SPDX-License-Identifier: MIT */
/* store/sqlite: the backend on a scratch file, called the way the store worker calls it. A
 * commit into a file that was deleted or renamed while open fails with fault MOVED (before
 * the batch begins, and after the commit when it went between the two), the liveness check
 * and a reconnect say the same and create nothing under the old name, and the file put back
 * is used again; a renamed write-ahead log counts as moved; a file that is not a database is
 * refused at open with its path, SQLite's message and the code's name; rows that outgrow the
 * caller's buffer fail with RP_ETOOBIG, not a cut-off array. */
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
    return (rp_store_event_t){id, 1000 + id, "pipeline:online", "p", "local_files", NULL, NULL, NULL, json, 2};
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
