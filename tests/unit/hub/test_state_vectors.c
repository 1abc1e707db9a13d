/* SPDX-License-Identifier: MIT */
/* hub/state against the golden vectors of tests/vectors/ (RP_VECTORS_DIR): each vector's
 * producer events are validated, normalised with ids 1, 2, ... and the times it gives, and
 * applied; the snapshot at its "now" and the failure groups must match what it expects. The
 * same files check the TypeScript model and the reducer of hub-proof.test.mjs, so the three
 * implementations of the pipeline rules answer to one truth. Matching is by subset: every key a
 * vector states must be there and equal (null also matches a missing key), arrays must have
 * exactly the stated length, numbers compare as numbers. RP_VECTORS_DUMP=1 prints the actual
 * snapshots, for writing a new vector (its expectations are then checked by hand). */
#include "unit.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>

#include "hub/event.h"
#include "hub/state.h"

#ifndef RP_VECTORS_DIR
#error "RP_VECTORS_DIR must name tests/vectors"
#endif

/* 2026-01-01T00:00:00.000Z: a vector's "at" and "now" are milliseconds after it. */
#define T0_MS 1767225600000LL

/* Appends to `why` where `got` differs from `want` (subset rules above); returns mismatches. */
static int match(const json_t *got, const json_t *want, const char *path, char *why, size_t whylen)
{
    char sub[256];
    if (json_is_null(want))
        return got == NULL || json_is_null(got) ? 0
                                                : (snprintf(why, whylen, "%s: want null", path), 1);
    if (got == NULL) {
        snprintf(why, whylen, "%s: missing", path);
        return 1;
    }
    if (json_is_number(want)) {
        if (json_is_number(got) && fabs(json_number_value(got) - json_number_value(want)) < 1e-9)
            return 0;
    } else if (json_is_object(want)) {
        if (!json_is_object(got)) {
            snprintf(why, whylen, "%s: not an object", path);
            return 1;
        }
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)want, k, v)
        {
            snprintf(sub, sizeof(sub), "%s.%s", path, k);
            if (match(json_object_get(got, k), v, sub, why, whylen))
                return 1;
        }
        return 0;
    } else if (json_is_array(want)) {
        if (!json_is_array(got) || json_array_size(got) != json_array_size(want)) {
            snprintf(why, whylen, "%s: want an array of %zu", path, json_array_size(want));
            return 1;
        }
        for (size_t i = 0; i < json_array_size(want); i++) {
            snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
            if (match(json_array_get(got, i), json_array_get(want, i), sub, why, whylen))
                return 1;
        }
        return 0;
    } else if (json_equal((json_t *)got, (json_t *)want)) {
        return 0;
    }
    char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
    char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(why, whylen, "%s: got %s, want %s", path, g ? g : "?", w ? w : "?");
    free(g);
    free(w);
    return 1;
}

static void dump(const char *name, const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(1) | JSON_REAL_PRECISION(15));
    fprintf(stderr, "== %s\n%s\n", name, s ? s : "?");
    free(s);
}

static void vector_holds(void **state)
{
    const char *path = *state;
    json_error_t jerr;
    json_t *vec = json_load_file(path, 0, &jerr);
    if (vec == NULL)
        fail_msg("%s: %s (line %d)", path, jerr.text, jerr.line);
    assert_non_null(json_string_value(json_object_get(vec, "rule")));
    json_t *events = json_object_get(vec, "events");
    assert_true(json_array_size(events) > 0);
    rp_hub_state_t st;
    rp_hub_state_init(&st);
    size_t i;
    json_t *step;
    json_array_foreach(events, i, step)
    {
        const json_t *in = json_object_get(step, "event");
        rp_event_error_t err;
        int type = rp_event_validate(in, &err);
        if (type < 0)
            fail_msg("%s: event %zu refused: %s %s", path, i + 1, err.field, err.rule);
        int64_t ts = T0_MS + (int64_t)json_integer_value(json_object_get(step, "at"));
        json_t *ev = rp_event_normalize(in, (int64_t)i + 1, ts);
        assert_non_null(ev);
        assert_int_equal(rp_hub_state_apply(&st, (rp_event_type_t)type, ev, ts), 0);
        json_decref(ev);
    }
    int64_t now = T0_MS + (int64_t)json_integer_value(json_object_get(vec, "now"));
    json_t *got = json_pack("{s:o,s:o}", "pipelines",
                            rp_hub_state_json(&st, NULL, NULL, now, 1000, 10, SIZE_MAX),
                            "failure_groups", rp_hub_failures_json(&st, NULL));
    assert_non_null(got);
    if (getenv("RP_VECTORS_DUMP"))
        dump(path, got);
    char why[512] = "";
    json_t *want = json_object_get(vec, "expect");
    assert_non_null(json_object_get(want, "pipelines"));
    if (match(got, want, "expect", why, sizeof(why)))
        fail_msg("%s: %s", path, why);
    json_decref(got);
    json_decref(vec);
    rp_hub_state_deinit(&st);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    DIR *d = opendir(RP_VECTORS_DIR);
    if (d == NULL) {
        fprintf(stderr, "cannot open %s\n", RP_VECTORS_DIR);
        return 1;
    }
    char *names[64];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < ARRAY_LEN(names)) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), by_name);
    /* Fewer than ten vectors means the directory is not the one the suite was written for. */
    if (n < 10) {
        fprintf(stderr, "%s holds %zu vectors, expected at least 10\n", RP_VECTORS_DIR, n);
        return 1;
    }
    struct CMUnitTest tests[64];
    char *paths[64];
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(RP_VECTORS_DIR) + strlen(names[i]) + 2;
        paths[i] = malloc(l);
        snprintf(paths[i], l, "%s/%s", RP_VECTORS_DIR, names[i]);
        tests[i] = (struct CMUnitTest){names[i], vector_holds, NULL, NULL, paths[i]};
    }
    int rc = _cmocka_run_group_tests("hub.state_vectors", tests, n, NULL, NULL);
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
        free(paths[i]);
    }
    return rc;
}
