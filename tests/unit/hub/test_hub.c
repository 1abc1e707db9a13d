/* SPDX-License-Identifier: MIT */
/* hub/hub: the event road and the lifecycle, on a real loop and Socket.IO server with no
 * store. A callback never runs before the call that schedules it returns (libuv's rule): an
 * event accepted without a store is committed on a later loop turn. A refused event says why
 * with RP_EINVAL. rp_hub_close keeps the memory until its callback. rp_hub_new failing at any
 * allocation leaves nothing behind (ASan's leak check) and no handler pointing at a freed hub. */
#include "unit.h"

#include <jansson.h>
#include <uv.h>

#include "hub/hub.h"
#include "hub/hub_int.h"
#include "util/alloc.h"
#include "util/err.h"

typedef struct env {
    uv_loop_t loop;
    rp_net_t net;
    rp_sio_server_t *sio;
    rp_hub_t *hub;
} env_t;

typedef struct done {
    int calls;
    int status;
    int64_t id;
} done_t;

static void on_done(void *ud, int status, int64_t id)
{
    done_t *d = ud;
    d->calls++;
    d->status = status;
    d->id = id;
}

static int closed_calls;
static rp_hub_t *closed_hub;

static void on_closed(rp_hub_t *hub)
{
    closed_calls++;
    closed_hub = hub;
    /* The memory is still the hub's while this runs. */
    assert_int_equal(rp_hub_version(hub) >= 0, 1);
}

static void env_start(env_t *e, size_t history)
{
    assert_int_equal(uv_loop_init(&e->loop), 0);
    assert_int_equal(rp_net_init(&e->net, &e->loop, 1 << 20), 0);
    rp_eio_config_t ecfg;
    rp_eio_config_defaults(&ecfg);
    rp_sio_config_t scfg;
    rp_sio_config_defaults(&scfg);
    e->sio = rp_sio_server_new(&e->net, &ecfg, &scfg);
    assert_non_null(e->sio);
    rp_hub_config_t cfg;
    rp_hub_config_defaults(&cfg);
    cfg.history = history;
    char err[160];
    e->hub = rp_hub_new(e->sio, &e->net, &cfg, NULL, err, sizeof(err));
    if (e->hub == NULL)
        fail_msg("rp_hub_new: %s", err);
}

/* Runs the loop until *flag is set, for at most 2 s of loop turns. */
static void run_until(env_t *e, const int *flag)
{
    uint64_t deadline = uv_hrtime() + 2000000000ULL;
    while (!*flag && uv_hrtime() < deadline)
        uv_run(&e->loop, UV_RUN_NOWAIT);
    assert_true(*flag);
}

static void on_left_open(uv_handle_t *h, void *ud)
{
    (void)ud;
    fprintf(stderr, "left open: %s%s\n", uv_handle_type_name(uv_handle_get_type(h)),
            uv_is_closing(h) ? " (closing)" : "");
}

static void env_stop(env_t *e)
{
    if (e->hub) {
        closed_calls = 0;
        rp_hub_close(e->hub, on_closed);
        run_until(e, &closed_calls);
    }
    rp_sio_server_close(e->sio, NULL);
    rp_net_close_all(&e->net);
    rp_net_deinit(&e->net);
    /* Every handle is closing now: one run of the loop finishes them all. */
    assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
    uv_walk(&e->loop, on_left_open, NULL);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}

static json_t *online(const char *pid)
{
    json_t *j = json_pack("{s:s,s:s,s:s}", "type", "pipeline:online", "pipeline_id", pid,
                          "pipeline_type", "local_files");
    assert_non_null(j);
    return j;
}

static void ingest_without_store_completes_on_a_later_turn(void **state)
{
    (void)state;
    env_t e;
    env_start(&e, 100);
    done_t d = {0};
    rp_event_error_t err;
    json_t *ev = online("p1");
    assert_int_equal(rp_hub_ingest(e.hub, ev, &err, on_done, &d), 0);
    json_decref(ev);
    /* Not before rp_hub_ingest returned: nothing applied, nothing called back yet. */
    assert_int_equal(d.calls, 0);
    assert_int_equal(rp_hub_version(e.hub), 0);
    run_until(&e, &d.calls);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.id, 1);
    assert_int_equal(rp_hub_version(e.hub), 1);
    assert_non_null(rp_hub_state_find(&e.hub->state, "p1"));
    env_stop(&e);
}

static void ingest_refuses_an_invalid_event_with_einval(void **state)
{
    (void)state;
    env_t e;
    env_start(&e, 100);
    done_t d = {0};
    rp_event_error_t err;
    json_t *ev = json_pack("{s:s,s:s}", "type", "pipeline:online", "pipeline_type", "local_files");
    assert_int_equal(rp_hub_ingest(e.hub, ev, &err, on_done, &d), RP_EINVAL);
    assert_string_equal(err.field, "pipeline_id");
    json_decref(ev);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    assert_int_equal(d.calls, 0);
    assert_int_equal(rp_hub_version(e.hub), 0);
    env_stop(&e);
}

static void events_complete_in_the_order_they_came_and_history_keeps_the_newest(void **state)
{
    (void)state;
    env_t e;
    env_start(&e, 2);
    done_t d[3] = {{0}};
    rp_event_error_t err;
    const char *pids[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        json_t *ev = online(pids[i]);
        assert_int_equal(rp_hub_ingest(e.hub, ev, &err, on_done, &d[i]), 0);
        json_decref(ev);
    }
    run_until(&e, &d[2].calls);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(d[i].calls, 1);
        assert_int_equal(d[i].id, i + 1);
    }
    assert_int_equal(e.hub->ring_len, 2);
    assert_int_equal(rp_hub_hist_at(e.hub, 0)->id, 2);
    assert_int_equal(rp_hub_hist_at(e.hub, 1)->id, 3);
    env_stop(&e);
}

static void close_commits_what_was_accepted_and_calls_back_from_the_loop(void **state)
{
    (void)state;
    env_t e;
    env_start(&e, 100);
    done_t d = {0};
    rp_event_error_t err;
    json_t *ev = online("p1");
    assert_int_equal(rp_hub_ingest(e.hub, ev, &err, on_done, &d), 0);
    json_decref(ev);
    closed_calls = 0;
    closed_hub = NULL;
    rp_hub_t *hub = e.hub;
    e.hub = NULL;
    rp_hub_close(hub, on_closed);
    /* The accepted event was committed (as a store's last completions are), and the close
     * callback waits for the loop. */
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, 0);
    assert_int_equal(closed_calls, 0);
    run_until(&e, &closed_calls);
    assert_int_equal(closed_calls, 1);
    assert_ptr_equal(closed_hub, hub);
    env_stop(&e);
}

static void new_fails_cleanly_at_every_allocation(void **state)
{
    (void)state;
    env_t e;
    assert_int_equal(uv_loop_init(&e.loop), 0);
    assert_int_equal(rp_net_init(&e.net, &e.loop, 1 << 20), 0);
    rp_eio_config_t ecfg;
    rp_eio_config_defaults(&ecfg);
    rp_sio_config_t scfg;
    rp_sio_config_defaults(&scfg);
    e.sio = rp_sio_server_new(&e.net, &ecfg, &scfg);
    assert_non_null(e.sio);
    rp_hub_config_t cfg;
    rp_hub_config_defaults(&cfg);
    cfg.history = 4;
    char err[160];
    unsigned long n;
    rp_hub_t *hub = NULL;
    for (n = 1; n < 10000 && hub == NULL; n++) {
        rp_alloc_fail_at(n);
        hub = rp_hub_new(e.sio, &e.net, &cfg, NULL, err, sizeof(err));
        int failed = rp_alloc_failed();
        rp_alloc_fail_at(0);
        if (hub == NULL) {
            assert_true(failed);
            assert_true(err[0] != '\0');
            while (uv_run(&e.loop, UV_RUN_NOWAIT))
                ;
        }
    }
    assert_non_null(hub);
    assert_true(n > 2); /* at least the hub and its ring were allocated */
    /* The hub that finally came up works: no earlier attempt left a handler behind. */
    done_t d = {0};
    rp_event_error_t everr;
    json_t *ev = online("p1");
    assert_int_equal(rp_hub_ingest(hub, ev, &everr, on_done, &d), 0);
    json_decref(ev);
    run_until(&e, &d.calls);
    assert_int_equal(d.status, 0);
    e.hub = hub;
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ingest_without_store_completes_on_a_later_turn),
        cmocka_unit_test(ingest_refuses_an_invalid_event_with_einval),
        cmocka_unit_test(events_complete_in_the_order_they_came_and_history_keeps_the_newest),
        cmocka_unit_test(close_commits_what_was_accepted_and_calls_back_from_the_loop),
        cmocka_unit_test(new_fails_cleanly_at_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
