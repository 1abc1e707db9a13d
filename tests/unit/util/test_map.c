/* SPDX-License-Identifier: MIT */
/* util/map: the intrusive hash map behind sessions, namespaces, rooms and sockets. Entries are
 * test-owned structs embedding rp_map_entry_t; the map allocates only its bucket array, so
 * the out-of-memory cases fail exactly that. */
#include "unit.h"

#include <uv.h>

#include "util/alloc.h"
#include "util/list.h"
#include "util/map.h"

struct item {
    rp_map_entry_t entry;
    char key[24];
    int value;
    int seen;
};

static void item_init(struct item *it, int i)
{
    int n = snprintf(it->key, sizeof(it->key), "key-%d", i);
    it->entry.key = it->key;
    it->entry.keylen = (size_t)n;
    it->value = i;
    it->seen = 0;
}

static struct item *get(const rp_map_t *m, const char *key)
{
    rp_map_entry_t *e = rp_map_get(m, key, strlen(key));
    return e ? rp_container_of(e, struct item, entry) : NULL;
}

static void puts_gets_and_deletes(void **state)
{
    (void)state;
    rp_map_t m;
    rp_map_init(&m);
    assert_null(rp_map_get(&m, "a", 1)); /* empty map: no buckets yet */
    struct item a, b, c;
    item_init(&a, 1);
    item_init(&b, 2);
    item_init(&c, 3);
    assert_int_equal(rp_map_put(&m, &a.entry), 0);
    assert_int_equal(rp_map_put(&m, &b.entry), 0);
    assert_int_equal(rp_map_put(&m, &c.entry), 0);
    assert_int_equal(m.count, 3);
    assert_ptr_equal(get(&m, "key-1"), &a);
    assert_ptr_equal(get(&m, "key-2"), &b);
    assert_ptr_equal(get(&m, "key-3"), &c);
    assert_null(get(&m, "key-4"));
    assert_null(get(&m, "key-"));
    assert_null(get(&m, "key-10"));
    rp_map_del(&m, &b.entry);
    assert_int_equal(m.count, 2);
    assert_null(get(&m, "key-2"));
    assert_ptr_equal(get(&m, "key-1"), &a);
    assert_ptr_equal(get(&m, "key-3"), &c);
    rp_map_del(&m, &b.entry); /* not linked any more: no change */
    assert_int_equal(m.count, 2);
    assert_int_equal(rp_map_put(&m, &b.entry), 0);
    assert_ptr_equal(get(&m, "key-2"), &b);
    rp_map_deinit(&m);
    assert_int_equal(m.count, 0);
    assert_null(rp_map_get(&m, "key-1", 5));
}

static void keys_are_byte_strings(void **state)
{
    (void)state;
    rp_map_t m;
    rp_map_init(&m);
    static const char k1[] = {'a', '\0', 'b'};
    static const char k2[] = {'a', '\0', 'c'};
    rp_map_entry_t e1 = {.key = k1, .keylen = 3};
    rp_map_entry_t e2 = {.key = k2, .keylen = 3};
    rp_map_entry_t e3 = {.key = "", .keylen = 0};
    assert_int_equal(rp_map_put(&m, &e1), 0);
    assert_int_equal(rp_map_put(&m, &e2), 0);
    assert_int_equal(rp_map_put(&m, &e3), 0);
    assert_ptr_equal(rp_map_get(&m, k1, 3), &e1);
    assert_ptr_equal(rp_map_get(&m, k2, 3), &e2);
    assert_ptr_equal(rp_map_get(&m, "", 0), &e3);
    assert_null(rp_map_get(&m, "a", 1));
    assert_int_equal(rp_map_hash(k1, 3), rp_map_hash(k1, 3));
    assert_true(rp_map_hash(k1, 3) != rp_map_hash(k2, 3));
    rp_map_deinit(&m);
}

static void grows_and_keeps_every_entry(void **state)
{
    (void)state;
    enum {
        N = 5000
    };
    struct item *items = calloc(N, sizeof(*items));
    assert_non_null(items);
    rp_map_t m;
    rp_map_init(&m);
    size_t last_buckets = 0;
    int grew = 0;
    for (int i = 0; i < N; i++) {
        item_init(&items[i], i);
        assert_int_equal(rp_map_put(&m, &items[i].entry), 0);
        if (m.nbuckets != last_buckets) {
            grew++;
            last_buckets = m.nbuckets;
        }
        assert_true(m.count <= m.nbuckets); /* load factor at most 1 */
        assert_int_equal(m.nbuckets & (m.nbuckets - 1), 0);
    }
    assert_true(grew >= 8);
    assert_int_equal(m.count, N);
    char key[24];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        struct item *it = get(&m, key);
        assert_non_null(it);
        assert_int_equal(it->value, i);
    }
    /* Delete the even ones. */
    for (int i = 0; i < N; i += 2)
        rp_map_del(&m, &items[i].entry);
    assert_int_equal(m.count, N / 2);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        if (i % 2)
            assert_ptr_equal(get(&m, key), &items[i]);
        else
            assert_null(get(&m, key));
    }
    rp_map_deinit(&m);
    free(items);
}

static void iteration_visits_each_entry_once(void **state)
{
    (void)state;
    enum {
        N = 300
    };
    struct item *items = calloc(N, sizeof(*items));
    assert_non_null(items);
    rp_map_t m;
    rp_map_init(&m);
    size_t bucket;
    assert_null(rp_map_first(&m, &bucket));
    for (int i = 0; i < N; i++) {
        item_init(&items[i], i);
        assert_int_equal(rp_map_put(&m, &items[i].entry), 0);
    }
    size_t visited = 0;
    for (rp_map_entry_t *e = rp_map_first(&m, &bucket); e; e = rp_map_next(&m, e, &bucket)) {
        struct item *it = rp_container_of(e, struct item, entry);
        it->seen++;
        visited++;
    }
    assert_int_equal(visited, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(items[i].seen, 1);
    rp_map_deinit(&m);
    free(items);
}

static void first_put_without_memory_fails_cleanly(void **state)
{
    (void)state;
    /* NOTE: map.h says a failed put leaves e "linked anyway", but with no bucket array yet
     * there is nowhere to link it: the first put fails and e is NOT in the map. The callers
     * in eio/server.c and sio/server.c check rp_map_get afterwards, so they cope; this test
     * pins the real behaviour (and the map stays usable). */
    rp_map_t m;
    rp_map_init(&m);
    struct item a;
    item_init(&a, 1);
    rp_alloc_fail_at(1);
    assert_int_equal(rp_map_put(&m, &a.entry), UV_ENOMEM);
    assert_true(rp_alloc_failed());
    rp_alloc_fail_at(0);
    assert_int_equal(m.count, 0);
    assert_null(get(&m, "key-1"));
    assert_int_equal(rp_map_put(&m, &a.entry), 0);
    assert_ptr_equal(get(&m, "key-1"), &a);
    rp_map_deinit(&m);
}

static void growth_failure_still_links_entry(void **state)
{
    (void)state;
    /* Fail allocation 1, 2, ... while putting 200 entries: each failure is a grow that keeps
     * the old buckets, so the entry is linked anyway and every entry stays reachable. */
    enum {
        N = 200
    };
    struct item items[N];
    for (unsigned long n = 1;; n++) {
        rp_map_t m;
        rp_map_init(&m);
        item_init(&items[0], 0);
        assert_int_equal(rp_map_put(&m, &items[0].entry), 0); /* buckets exist from here */
        rp_alloc_fail_at(n);
        int failures = 0;
        for (int i = 1; i < N; i++) {
            item_init(&items[i], i);
            int rc = rp_map_put(&m, &items[i].entry);
            if (rc < 0) {
                assert_int_equal(rc, UV_ENOMEM);
                failures++;
            }
        }
        int failed = rp_alloc_failed();
        rp_alloc_fail_at(0);
        assert_int_equal(failures, failed ? 1 : 0);
        assert_int_equal(m.count, N);
        char key[24];
        for (int i = 0; i < N; i++) {
            snprintf(key, sizeof(key), "key-%d", i);
            assert_ptr_equal(get(&m, key), &items[i]);
        }
        size_t bucket, visited = 0;
        for (rp_map_entry_t *e = rp_map_first(&m, &bucket); e; e = rp_map_next(&m, e, &bucket))
            visited++;
        assert_int_equal(visited, N);
        rp_map_deinit(&m);
        if (!failed)
            break;
        assert_true(n < 32);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(puts_gets_and_deletes),
        cmocka_unit_test(keys_are_byte_strings),
        cmocka_unit_test(grows_and_keeps_every_entry),
        cmocka_unit_test(iteration_visits_each_entry_once),
        cmocka_unit_test(first_put_without_memory_fails_cleanly),
        cmocka_unit_test(growth_failure_still_links_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
