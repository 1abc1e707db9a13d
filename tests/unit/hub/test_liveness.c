/* SPDX-License-Identifier: MIT */
/* hub/state: what makes a pipeline live or offline. A pipeline that falls silent is offline
 * (the hub's pipeline:offline) and stays offline until it speaks: the hub's own report of a
 * stalled file (file:failed, kind "stalled") is news of the silence, not a sign of life. Any
 * event the pipeline sends itself brings it back. */
#include "unit.h"

#include <jansson.h>

#include "hub/event.h"
#include "hub/state.h"

/* Applies the event in `text` (validated and normalised as the hub does) at time ts. */
static void apply(rp_hub_state_t *st, const char *text, int64_t id, int64_t ts)
{
    json_error_t jerr;
    json_t *in = json_loads(text, 0, &jerr);
    if (in == NULL)
        fail_msg("bad test JSON: %s", jerr.text);
    rp_event_error_t err;
    int t = rp_event_validate(in, &err);
    if (t < 0)
        fail_msg("refused: %s %s", err.field, err.rule);
    json_t *ev = rp_event_normalize(in, id, ts);
    assert_non_null(ev);
    assert_int_equal(rp_hub_state_apply(st, (rp_event_type_t)t, ev, ts), 0);
    json_decref(ev);
    json_decref(in);
}

static int status_of(rp_hub_state_t *st, const char *id)
{
    rp_hub_pipeline_t *p = rp_hub_state_find(st, id);
    assert_non_null(p);
    return p->status;
}

#define P      "\"pipeline_id\":\"p1\",\"pipeline_type\":\"local_files\""
#define FILE_A "\"file\":{\"id\":\"a\",\"name\":\"a.pdf\"}"

static void silent_pipeline_stays_offline_through_a_stall(void **unused)
{
    (void)unused;
    rp_hub_state_t st;
    rp_hub_state_init(&st);
    apply(&st, "{\"type\":\"pipeline:online\"," P ",\"heartbeat_interval\":1}", 1, 1000);
    apply(&st, "{\"type\":\"file:processing\"," P "," FILE_A "}", 2, 1100);
    assert_int_equal(status_of(&st, "p1"), RP_PIPE_RUNNING);
    int64_t beat = rp_hub_state_find(&st, "p1")->last_heartbeat;
    /* Silence: the hub says offline after 3 intervals, then the file's stall. */
    apply(&st, "{\"type\":\"pipeline:offline\"," P ",\"message\":\"no heartbeat for 3.1 s\"}", 3,
          4200);
    assert_int_equal(status_of(&st, "p1"), RP_PIPE_OFFLINE);
    apply(&st,
          "{\"type\":\"file:failed\"," P ",\"file\":{\"id\":\"a\",\"name\":\"a.pdf\",\"error\":"
          "{\"message\":\"stalled: no progress for 600 "
          "s\",\"kind\":\"stalled\",\"retryable\":true}}}",
          4, 601100);
    assert_int_equal(status_of(&st, "p1"), RP_PIPE_OFFLINE);
    assert_int_equal(rp_hub_state_find(&st, "p1")->last_heartbeat, beat);
    assert_int_equal(rp_hub_state_find(&st, "p1")->nfiles, 0);
    assert_int_equal(rp_hub_state_find(&st, "p1")->failed, 1);
    /* The pipeline speaks: back. */
    apply(&st, "{\"type\":\"heartbeat\"," P "}", 5, 602000);
    assert_int_equal(status_of(&st, "p1"), RP_PIPE_ONLINE);
    assert_int_equal(rp_hub_state_find(&st, "p1")->last_heartbeat, 602000);
    rp_hub_state_deinit(&st);
}

static void a_stall_of_a_live_pipeline_leaves_it_idle(void **unused)
{
    (void)unused;
    rp_hub_state_t st;
    rp_hub_state_init(&st);
    apply(&st, "{\"type\":\"file:processing\"," P "," FILE_A "}", 1, 1000);
    apply(&st,
          "{\"type\":\"file:failed\"," P ",\"file\":{\"id\":\"a\",\"name\":\"a.pdf\",\"error\":"
          "{\"message\":\"stalled\",\"kind\":\"stalled\"}}}",
          2, 700000);
    assert_int_equal(status_of(&st, "p1"), RP_PIPE_IDLE);
    rp_hub_state_deinit(&st);
}

static void the_pipelines_own_file_events_bring_it_back(void **unused)
{
    (void)unused;
    rp_hub_state_t st;
    rp_hub_state_init(&st);
    apply(&st, "{\"type\":\"file:processing\"," P "," FILE_A "}", 1, 1000);
    apply(&st, "{\"type\":\"pipeline:offline\"," P "}", 2, 5000);
    apply(&st,
          "{\"type\":\"file:failed\"," P ",\"file\":{\"id\":\"a\",\"name\":\"a.pdf\",\"error\":"
          "{\"message\":\"HTTP 503\",\"kind\":\"upstream\"}}}",
          3, 6000);
    assert_int_equal(status_of(&st, "p1"), RP_PIPE_IDLE);
    assert_int_equal(rp_hub_state_find(&st, "p1")->last_heartbeat, 6000);
    apply(&st, "{\"type\":\"pipeline:offline\"," P "}", 4, 7000);
    apply(&st, "{\"type\":\"file:processing\"," P "," FILE_A "}", 5, 8000);
    assert_int_equal(status_of(&st, "p1"), RP_PIPE_RUNNING);
    rp_hub_state_deinit(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(silent_pipeline_stays_offline_through_a_stall),
        cmocka_unit_test(a_stall_of_a_live_pipeline_leaves_it_idle),
        cmocka_unit_test(the_pipelines_own_file_events_bring_it_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
