/* SPDX-License-Identifier: MIT */
/* hub/state: the bounds on files in flight and the paging of snapshots. An event that would add
 * a file past a bound is refused with the bound named; files already in flight, or reserved by
 * an admitted event not applied yet, always pass; a batch reserves as it goes. A snapshot lists
 * a fair page per pipeline with files_more/files_next; pages after a file id give every file
 * once; stage counts follow files without walking them. */
#include "unit.h"

#include <jansson.h>
#include <stdio.h>

#include "hub/state.h"

static json_t *file_ev(const char *type, const char *pid, const char *fid)
{
    return json_pack("{s:s,s:s,s:s,s:{s:s,s:s}}", "type", type, "pipeline_id", pid, "pipeline_type",
                     "t", "file", "id", fid, "name", fid);
}

static int type_of(const char *type)
{
    return rp_event_type_parse(type, strlen(type));
}

/* Admits and applies one file event; returns what rp_hub_state_admit said. */
static int feed(rp_hub_state_t *st, const char *type, const char *pid, const char *fid, size_t per,
                size_t total)
{
    json_t *ev = file_ev(type, pid, fid);
    char why[160];
    int rc = rp_hub_state_admit(st, (rp_event_type_t)type_of(type), ev, per, total, NULL, why,
                                sizeof(why));
    if (rc == 0)
        assert_int_equal(rp_hub_state_apply(st, (rp_event_type_t)type_of(type), ev, 1000), 0);
    json_decref(ev);
    return rc;
}

static void refuses_a_new_file_past_each_bound_and_names_it(void **state)
{
    (void)state;
    rp_hub_state_t st;
    rp_hub_state_init(&st);
    assert_int_equal(feed(&st, "file:processing", "docs-1", "a", 2, 3), 0);
    assert_int_equal(feed(&st, "file:processing", "docs-1", "b", 2, 3), 0);
    json_t *ev = file_ev("file:processing", "docs-1", "c");
    char why[160];
    assert_int_equal(
        rp_hub_state_admit(&st, RP_EV_FILE_PROCESSING, ev, 2, 3, NULL, why, sizeof(why)),
        RP_HUB_LIMIT_FILES_IN_FLIGHT);
    assert_string_equal(why,
                        "pipeline docs-1 has 2 files in flight (at most 2: --max-files-in-flight)");
    json_decref(ev);
    /* Files in flight always pass: progress, processing again, completed, failed. */
    assert_int_equal(feed(&st, "file:progress", "docs-1", "a", 2, 3), 0);
    assert_int_equal(feed(&st, "file:processing", "docs-1", "b", 2, 3), 0);
    assert_int_equal(feed(&st, "file:progress", "docs-1", "c", 2, 3), RP_HUB_LIMIT_FILES_IN_FLIGHT);
    assert_int_equal(feed(&st, "file:processing", "docs-2", "a", 2, 3), 0);
    ev = file_ev("file:processing", "docs-3", "a");
    assert_int_equal(
        rp_hub_state_admit(&st, RP_EV_FILE_PROCESSING, ev, 2, 3, NULL, why, sizeof(why)),
        RP_HUB_LIMIT_FILES_TOTAL);
    assert_string_equal(why,
                        "3 files are in flight in all pipelines (at most 3: --max-files-total)");
    json_decref(ev);
    assert_null(rp_hub_state_find(&st, "docs-3"));
    assert_int_equal(feed(&st, "file:completed", "docs-1", "a", 2, 3), 0);
    assert_int_equal(st.nfiles, 2);
    assert_int_equal(feed(&st, "file:processing", "docs-3", "a", 2, 3), 0);
    /* 0: no bound; and applying never checks (a replay with a lowered bound). */
    assert_int_equal(feed(&st, "file:processing", "docs-3", "b", 0, 0), 0);
    ev = file_ev("file:processing", "docs-3", "c");
    assert_int_equal(rp_hub_state_apply(&st, RP_EV_FILE_PROCESSING, ev, 1000), 0);
    json_decref(ev);
    assert_int_equal(rp_hub_state_find(&st, "docs-3")->nfiles, 3);
    rp_hub_state_deinit(&st);
}

static void reservations_count_admitted_events_not_applied_yet(void **state)
{
    (void)state;
    rp_hub_state_t st;
    rp_hub_state_init(&st);
    json_t *a = file_ev("file:processing", "p", "a"), *a2 = file_ev("file:progress", "p", "a");
    json_t *b = file_ev("file:processing", "p", "b");
    char why[160];
    int r;
    assert_int_equal(rp_hub_state_admit(&st, RP_EV_FILE_PROCESSING, a, 1, 0, &r, why, sizeof(why)),
                     0);
    assert_int_equal(r, 1);
    /* Another event for the reserved file passes without a second reservation... */
    assert_int_equal(rp_hub_state_admit(&st, RP_EV_FILE_PROGRESS, a2, 1, 0, &r, why, sizeof(why)),
                     0);
    assert_int_equal(r, 0);
    /* ... a new one is counted with it. */
    assert_int_equal(rp_hub_state_admit(&st, RP_EV_FILE_PROCESSING, b, 1, 0, &r, why, sizeof(why)),
                     RP_HUB_LIMIT_FILES_IN_FLIGHT);
    assert_int_equal(st._nreserved, 1);
    /* Applying settles the reservation; giving one back frees its place. */
    assert_int_equal(rp_hub_state_apply(&st, RP_EV_FILE_PROCESSING, a, 1000), 0);
    assert_int_equal(st._nreserved, 0);
    assert_int_equal(feed(&st, "file:completed", "p", "a", 1, 0), 0);
    assert_int_equal(rp_hub_state_admit(&st, RP_EV_FILE_PROCESSING, b, 1, 0, &r, why, sizeof(why)),
                     0);
    rp_hub_state_unreserve(&st, b);
    assert_int_equal(st._nreserved, 0);
    assert_int_equal(rp_hub_state_admit(&st, RP_EV_FILE_PROCESSING, b, 1, 0, &r, why, sizeof(why)),
                     0);
    rp_hub_state_unreserve_all(&st);
    assert_int_equal(st._nreserved, 0);
    json_decref(a);
    json_decref(a2);
    json_decref(b);
    rp_hub_state_deinit(&st);
}

static void snapshots_list_a_fair_page_and_pages_give_every_file_once(void **state)
{
    (void)state;
    rp_hub_state_t st;
    rp_hub_state_init(&st);
    char fid[32];
    for (int i = 0; i < 500; i++) {
        snprintf(fid, sizeof(fid), "f%03d", i);
        assert_int_equal(feed(&st, "file:processing", "big", fid, 0, 0), 0);
    }
    assert_int_equal(feed(&st, "file:processing", "small", "x", 0, 0), 0);
    json_t *snap = rp_hub_state_json(&st, NULL, NULL, 1000, 100, 10, SIZE_MAX);
    json_t *big = json_array_get(snap, 0), *small = json_array_get(snap, 1);
    /* small takes 1 of the 100; big gets the other 99. */
    assert_int_equal(json_array_size(json_object_get(big, "files")), 99);
    assert_true(json_is_true(json_object_get(big, "files_more")));
    assert_string_equal(json_string_value(json_object_get(big, "files_next")), "f098");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(big, "counters"), "in_flight")), 500);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(big, "stages"), "queued")),
                     500);
    assert_true(json_is_false(json_object_get(small, "files_more")));
    assert_null(json_object_get(small, "files_next"));
    json_decref(snap);
    /* A byte budget holds whatever the names: at least one file a pipeline. */
    snap = rp_hub_state_json(&st, "big", NULL, 1000, 100, 10, 1000);
    assert_true(json_array_size(json_object_get(json_array_get(snap, 0), "files")) < 10);
    json_decref(snap);

    const rp_hub_pipeline_t *p = rp_hub_state_find(&st, "big");
    const char *after = NULL, *next;
    char last[32] = "";
    int gone, n = 0;
    do {
        json_t *page = rp_hub_pipeline_files_json(p, after, 64, &next, &gone);
        assert_non_null(page);
        size_t i;
        json_t *f;
        json_array_foreach(page, i, f)
        {
            snprintf(fid, sizeof(fid), "f%03d", n++);
            assert_string_equal(json_string_value(json_object_get(f, "id")), fid);
        }
        snprintf(last, sizeof(last), "%s", next ? next : "");
        after = next ? last : NULL;
        json_decref(page);
    } while (after);
    assert_int_equal(n, 500);
    assert_null(rp_hub_pipeline_files_json(p, "nope", 64, &next, &gone));
    assert_int_equal(gone, 1);
    rp_hub_state_deinit(&st);
}

static void stage_counts_follow_files_and_cap_the_names(void **state)
{
    (void)state;
    rp_hub_state_t st;
    rp_hub_state_init(&st);
    char fid[32], stage[32];
    for (int i = 0; i < 40; i++) {
        snprintf(fid, sizeof(fid), "f%d", i);
        snprintf(stage, sizeof(stage), "s%d", i);
        json_t *ev =
            json_pack("{s:s,s:s,s:s,s:{s:s,s:s,s:s}}", "type", "file:processing", "pipeline_id",
                      "p", "pipeline_type", "t", "file", "id", fid, "name", fid, "stage", stage);
        assert_int_equal(rp_hub_state_apply(&st, RP_EV_FILE_PROCESSING, ev, 1000), 0);
        json_decref(ev);
    }
    const rp_hub_pipeline_t *p = rp_hub_state_find(&st, "p");
    assert_true(json_object_size(p->stages) <= RP_HUB_MAX_STAGES + 1);
    json_int_t sum = 0;
    const char *k;
    json_t *v;
    json_object_foreach(p->stages, k, v) sum += json_integer_value(v);
    assert_int_equal(sum, 40);
    for (int i = 0; i < 40; i++) {
        snprintf(fid, sizeof(fid), "f%d", i);
        assert_int_equal(feed(&st, "file:completed", "p", fid, 0, 0), 0);
    }
    assert_int_equal(json_object_size(p->stages), 0);
    rp_hub_state_deinit(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refuses_a_new_file_past_each_bound_and_names_it),
        cmocka_unit_test(reservations_count_admitted_events_not_applied_yet),
        cmocka_unit_test(snapshots_list_a_fair_page_and_pages_give_every_file_once),
        cmocka_unit_test(stage_counts_follow_files_and_cap_the_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
