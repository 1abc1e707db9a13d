/* SPDX-License-Identifier: MIT */
/* net/timerq: fixed-delay deadline queues on one libuv timer. Nodes expire in the order they
 * were pushed; pushing a node again moves it to the tail with a new deadline; a removed node
 * never expires and removing twice is harmless; an expiry callback may push its node again
 * (a heartbeat); rp_timerq_expired says "due" once the deadline passed even before the timer
 * fired; closing the queue takes every node off without expiring it. The queue's timer is
 * unref'd (it never keeps a loop alive), so the tests keep the loop alive with a timer of
 * their own and run it until a condition holds, within a deadline. */
#include "unit.h"

#include <time.h>
#include <uv.h>

#include "net/timerq.h"

#define DELAY_MS 20

struct item {
    rp_timerq_node_t n;
    char name;
};

static char fired[32];
static size_t nfired;
static rp_timerq_t *requeue_on; /* set: an expiry pushes its node back until 3 have fired */

static void on_expire(rp_timerq_node_t *n)
{
    struct item *it = rp_container_of(n, struct item, n);
    assert_null(n->q); /* off the queue before the callback runs */
    if (nfired < sizeof(fired))
        fired[nfired++] = it->name;
    if (requeue_on && nfired < 3)
        rp_timerq_push(requeue_on, n);
}

static void on_alive(uv_timer_t *t)
{
    (void)t;
}

struct fixture {
    uv_loop_t loop;
    uv_timer_t alive;
    rp_timerq_t q;
    int closed;
};

static void setup(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    nfired = 0;
    memset(fired, 0, sizeof(fired));
    requeue_on = NULL;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_timer_init(&f->loop, &f->alive), 0);
    /* A 5 ms tick: uv_run(UV_RUN_ONCE) runs due timers before it polls, so a loop entered with
     * the queue's timer already due would otherwise block in the poll until the next timer. */
    assert_int_equal(uv_timer_start(&f->alive, on_alive, 5, 5), 0);
    assert_int_equal(rp_timerq_init(&f->loop, &f->q, DELAY_MS, on_expire), 0);
}

/* Runs the loop until `want` nodes have fired, failing after 5 s. */
static void run_until_fired(struct fixture *f, size_t want)
{
    uint64_t give_up = uv_hrtime() + 5000000000ull;
    while (nfired < want) {
        assert_true(uv_hrtime() < give_up);
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static void on_closed(uv_handle_t *h)
{
    struct fixture *f = rp_container_of((uv_timer_t *)h, struct fixture, q._timer);
    f->closed = 1;
}

static void teardown(struct fixture *f)
{
    rp_timerq_close(&f->q, on_closed);
    uv_close((uv_handle_t *)&f->alive, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_true(f->closed);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* Waits ms of real time: these tests are about deadlines, so time itself is what they check. */
static void pass_time(struct fixture *f, unsigned ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL); /* time is the test: a deadline must pass for real */
    uv_update_time(&f->loop);
}

static void nodes_expire_in_the_order_they_were_pushed(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    struct item a = {.name = 'a'}, b = {.name = 'b'}, c = {.name = 'c'};
    rp_timerq_node_init(&a.n);
    rp_timerq_node_init(&b.n);
    rp_timerq_node_init(&c.n);
    rp_timerq_push(&f.q, &a.n);
    pass_time(&f, 2);
    rp_timerq_push(&f.q, &b.n);
    pass_time(&f, 2);
    rp_timerq_push(&f.q, &c.n);
    assert_true(a.n.deadline < b.n.deadline && b.n.deadline < c.n.deadline);
    assert_ptr_equal(a.n.q, &f.q);
    /* One timer, armed for the head. */
    assert_int_equal(f.q._armed_for, a.n.deadline);
    run_until_fired(&f, 3);
    assert_string_equal(fired, "abc");
    assert_null(c.n.q);
    assert_int_equal(f.q._armed_for, 0); /* nothing left: the timer is idle */
    teardown(&f);
}

static void pushing_again_moves_a_node_to_the_tail(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    struct item a = {.name = 'a'}, b = {.name = 'b'};
    rp_timerq_node_init(&a.n);
    rp_timerq_node_init(&b.n);
    rp_timerq_push(&f.q, &a.n);
    rp_timerq_push(&f.q, &b.n);
    pass_time(&f, 5);
    uint64_t first = a.n.deadline;
    rp_timerq_push(&f.q, &a.n); /* a sign of life: a's deadline moves on */
    assert_true(a.n.deadline > first);
    run_until_fired(&f, 2);
    assert_string_equal(fired, "ba");
    /* No node fired twice: the queue held a once. */
    pass_time(&f, DELAY_MS + 5);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(nfired, 2);
    teardown(&f);
}

static void a_removed_node_never_expires(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    struct item a = {.name = 'a'}, b = {.name = 'b'}, idle = {.name = 'i'};
    rp_timerq_node_init(&a.n);
    rp_timerq_node_init(&b.n);
    rp_timerq_node_init(&idle.n);
    rp_timerq_remove(&idle.n); /* never queued: harmless */
    rp_timerq_push(&f.q, &a.n);
    rp_timerq_push(&f.q, &b.n);
    rp_timerq_remove(&a.n);
    assert_null(a.n.q);
    rp_timerq_remove(&a.n); /* twice: harmless */
    assert_false(rp_timerq_expired(&a.n));
    run_until_fired(&f, 1);
    assert_string_equal(fired, "b");
    pass_time(&f, DELAY_MS + 5);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(nfired, 1);
    teardown(&f);
}

static void expired_says_due_before_the_timer_fires(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    struct item a = {.name = 'a'};
    rp_timerq_node_init(&a.n);
    rp_timerq_push(&f.q, &a.n);
    assert_false(rp_timerq_expired(&a.n));
    pass_time(&f, DELAY_MS + 5);
    assert_true(rp_timerq_expired(&a.n));
    assert_int_equal(nfired, 0); /* the loop has not run: the callback is still to come */
    run_until_fired(&f, 1);
    assert_false(rp_timerq_expired(&a.n)); /* off the queue */
    teardown(&f);
}

static void an_expiry_may_push_its_node_again(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    requeue_on = &f.q;
    struct item a = {.name = 'h'};
    rp_timerq_node_init(&a.n);
    rp_timerq_push(&f.q, &a.n);
    run_until_fired(&f, 3);
    assert_string_equal(fired, "hhh");
    assert_null(a.n.q);
    teardown(&f);
}

static void closing_takes_every_node_off_without_expiring_it(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    struct item a = {.name = 'a'}, b = {.name = 'b'};
    rp_timerq_node_init(&a.n);
    rp_timerq_node_init(&b.n);
    rp_timerq_push(&f.q, &a.n);
    rp_timerq_push(&f.q, &b.n);
    pass_time(&f, DELAY_MS + 5);
    teardown(&f); /* closes q with both due: neither fires */
    assert_int_equal(nfired, 0);
    assert_null(a.n.q);
    assert_null(b.n.q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nodes_expire_in_the_order_they_were_pushed),
        cmocka_unit_test(pushing_again_moves_a_node_to_the_tail),
        cmocka_unit_test(a_removed_node_never_expires),
        cmocka_unit_test(expired_says_due_before_the_timer_fires),
        cmocka_unit_test(an_expiry_may_push_its_node_again),
        cmocka_unit_test(closing_takes_every_node_off_without_expiring_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
