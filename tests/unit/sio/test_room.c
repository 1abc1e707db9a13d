/* SPDX-License-Identifier: MIT */
/* sio/room: membership and broadcast set logic, without sockets. Sockets are built by hand on
 * Engine.IO sessions in the polling state with no GET held, so whatever a broadcast sends to
 * one stays in its session's packet queue, where the test counts it. A fake cluster adapter
 * records what a broadcast hands to the other nodes (every except room, then the sender). */
#include "unit.h"

#include <uv.h>

#include "cluster/cluster.h"
#include "eio/eio_int.h"
#include "sio/sio_int.h"
#include "util/alloc.h"
#include "util/err.h"

#define NSOCK 4

typedef struct fixture {
    rp_sio_server_t srv;
    rp_eio_server_t eio;
    rp_sio_nsp_t *nsp;
    rp_sio_socket_t *s[NSOCK];
    rp_sio_client_t client[NSOCK];
    rp_eio_session_t session[NSOCK];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->eio.cfg.max_queued = 1 << 20;
    rp_list_init(&f->eio.flush);
    f->srv.eio = &f->eio;
    f->srv.cfg.max_rooms_per_socket = 3;
    rp_map_init(&f->srv._nsps);
    f->nsp = rp_sio_server_of(&f->srv, "/");
    assert_non_null(f->nsp);
    for (int i = 0; i < NSOCK; i++) {
        rp_eio_session_t *es = &f->session[i];
        es->state = S_OPEN;
        es->transport = RP_EIO_TRANSPORT_POLLING;
        es->srv = &f->eio;
        rp_list_init(&es->tick_node);
        f->client[i].eio = es;
        f->client[i]._srv = &f->srv;
        rp_sio_socket_t *s = calloc(1, sizeof(*s));
        assert_non_null(s);
        snprintf(s->id, sizeof(s->id), "socket%014d", i);
        s->nsp = f->nsp;
        s->client = &f->client[i];
        s->_connected = 1;
        rp_list_init(&s->_rooms);
        s->_entry.key = s->id;
        s->_entry.keylen = 20;
        assert_int_equal(rp_map_put(&f->nsp->_sockets, &s->_entry), 0);
        rp_list_push(&f->nsp->socket_list, &s->nsp_node);
        f->s[i] = s;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < NSOCK; i++) {
        rp_sio_socket_t *s = f->s[i];
        while (!rp_list_empty(&s->_rooms))
            rp_sio_membership_drop(f->nsp, rp_container_of(s->_rooms.next, member_t, sock_node));
        rp_map_del(&f->nsp->_sockets, &s->_entry);
        free(s);
        rp_eio_queue_clear(&f->session[i]);
    }
    assert_int_equal(f->nsp->_rooms.count, 0); /* every room went with its last member */
    rp_map_del(&f->srv._nsps, &f->nsp->_entry);
    rp_map_deinit(&f->nsp->_sockets);
    rp_map_deinit(&f->nsp->_rooms);
    rp_map_deinit(&f->nsp->_pids);
    rp_free(f->nsp->name);
    rp_free(f->nsp);
    rp_map_deinit(&f->srv._nsps);
    free(f);
    return 0;
}

/* Packets waiting in socket i's session. */
static size_t queued(const fixture_t *f, int i)
{
    size_t n = 0;
    for (const qpkt_t *q = f->session[i].qhead; q; q = q->next)
        n++;
    return n;
}

static void join(fixture_t *f, int i, const char *room)
{
    assert_int_equal(rp_sio_join(f->s[i], room, strlen(room)), 0);
}

static int bcast(fixture_t *f, const rp_sio_bcast_t *opts)
{
    return rp_sio_broadcast(f->nsp, opts, "news", "1", 1, NULL, 0);
}

static void joining_twice_is_one_membership_and_rooms_go_with_their_last_member(void **state)
{
    fixture_t *f = *state;
    join(f, 0, "a");
    join(f, 0, "a");
    assert_int_equal(rp_sio_room_size(f->nsp, "a", 1), 1);
    assert_int_equal(f->s[0]->nrooms, 1);
    join(f, 1, "a");
    assert_int_equal(rp_sio_room_size(f->nsp, "a", 1), 2);
    assert_true(rp_sio_in_room(f->s[1], "a", 1));
    assert_int_equal(rp_sio_leave(f->s[0], "a", 1), 0);
    assert_false(rp_sio_in_room(f->s[0], "a", 1));
    assert_int_equal(rp_sio_room_size(f->nsp, "a", 1), 1);
    assert_int_equal(rp_sio_leave(f->s[1], "a", 1), 0);
    assert_int_equal(rp_sio_room_size(f->nsp, "a", 1), 0);
    assert_int_equal(f->nsp->_rooms.count, 0);
    assert_int_equal(rp_sio_leave(f->s[1], "a", 1), 0); /* leaving a room one is not in: no-op */
}

static void join_refuses_past_the_room_limit_and_on_a_socket_that_left(void **state)
{
    fixture_t *f = *state;
    join(f, 0, "r1");
    join(f, 0, "r2");
    join(f, 0, "r3");
    assert_int_equal(rp_sio_join(f->s[0], "r4", 2), RP_ETOOBIG);
    assert_false(rp_sio_in_room(f->s[0], "r4", 2));
    join(f, 0, "r3"); /* already in: still fine at the limit */
    f->s[1]->_connected = 0;
    assert_int_equal(rp_sio_join(f->s[1], "r1", 2), RP_ESTATE);
    f->s[1]->_connected = 1;
}

static void broadcast_to_rooms_reaches_each_member_once(void **state)
{
    fixture_t *f = *state;
    join(f, 0, "a");
    join(f, 0, "b");
    join(f, 1, "b");
    join(f, 2, "c");
    const char *rooms[] = {"a", "b"};
    assert_int_equal(bcast(f, &(rp_sio_bcast_t){.rooms = rooms, .nrooms = 2}), 2);
    assert_int_equal(queued(f, 0), 1); /* in both rooms, sent once */
    assert_int_equal(queued(f, 1), 1);
    assert_int_equal(queued(f, 2), 0);
    assert_int_equal(queued(f, 3), 0);
    /* A second broadcast is counted afresh (the dedup marks are per broadcast). */
    assert_int_equal(bcast(f, &(rp_sio_bcast_t){.rooms = rooms, .nrooms = 2}), 2);
    assert_int_equal(queued(f, 0), 2);
    assert_int_equal(f->srv.broadcasts, 2);
    assert_int_equal(f->srv.broadcast_recipients, 4);
}

static void except_rooms_and_the_sender_are_skipped(void **state)
{
    fixture_t *f = *state;
    join(f, 0, "a");
    join(f, 0, "b");
    join(f, 1, "b");
    join(f, 2, "c");
    const char *except[] = {"b"};
    /* The whole namespace minus room b and socket 3. */
    rp_sio_bcast_t all = {.except = except, .nexcept = 1, .except_socket = f->s[3]};
    assert_int_equal(bcast(f, &all), 1);
    assert_int_equal(queued(f, 0), 0); /* in a too, but b excludes it */
    assert_int_equal(queued(f, 1), 0);
    assert_int_equal(queued(f, 2), 1);
    assert_int_equal(queued(f, 3), 0);
    /* Rooms a and c minus b. */
    const char *rooms[] = {"a", "c"};
    assert_int_equal(
        bcast(f, &(rp_sio_bcast_t){.rooms = rooms, .nrooms = 2, .except = except, .nexcept = 1}),
        1);
    assert_int_equal(queued(f, 0), 0);
    assert_int_equal(queued(f, 2), 2);
    /* An unknown except room excludes nobody. */
    const char *none[] = {"nobody"};
    assert_int_equal(bcast(f, &(rp_sio_bcast_t){.except = none, .nexcept = 1}), NSOCK);
}

static void a_socket_id_is_a_room_of_that_socket(void **state)
{
    fixture_t *f = *state;
    const char *rooms[] = {f->s[2]->id};
    assert_int_equal(rp_sio_room_size(f->nsp, f->s[2]->id, 20), 1);
    assert_int_equal(bcast(f, &(rp_sio_bcast_t){.rooms = rooms, .nrooms = 1}), 1);
    assert_int_equal(queued(f, 2), 1);
    assert_int_equal(queued(f, 1), 0);
    /* Excluding a socket's id excludes that socket. */
    assert_int_equal(bcast(f, &(rp_sio_bcast_t){.except = rooms, .nexcept = 1}), NSOCK - 1);
    assert_int_equal(queued(f, 2), 1);
    assert_int_equal(queued(f, 0), 1);
}

static void collect(const char *room, size_t len, void *ud)
{
    char *out = ud;
    strncat(out, room, len);
    strcat(out, ";");
}

static void socket_rooms_lists_memberships_in_join_order(void **state)
{
    fixture_t *f = *state;
    join(f, 1, "x");
    join(f, 1, "y");
    char got[64] = "";
    rp_sio_socket_rooms(f->s[1], collect, got);
    assert_string_equal(got, "x;y;");
}

/* ---- the hand-off to the other nodes ---- */

static struct {
    int calls;
    size_t nexcept;
    char except[128][24];
} published;

static int fake_publish(rp_cluster_t *c, const rp_cluster_msg_t *m)
{
    (void)c;
    published.calls++;
    published.nexcept = m->nexcept;
    for (size_t i = 0; i < m->nexcept && i < 128; i++)
        snprintf(published.except[i], sizeof(published.except[i]), "%s", m->except[i]);
    return 0;
}

static void cluster_gets_every_except_room_and_the_sender(void **state)
{
    fixture_t *f = *state;
    static const rp_cluster_ops_t ops = {.publish = fake_publish};
    rp_cluster_t cluster = {.ops = &ops};
    f->srv.cluster = &cluster;
    memset(&published, 0, sizeof(published));
    char names[100][8];
    const char *except[100];
    for (int i = 0; i < 100; i++) {
        snprintf(names[i], sizeof(names[i]), "r%d", i);
        except[i] = names[i];
    }
    join(f, 0, "r99");
    rp_sio_bcast_t opts = {.except = except, .nexcept = 100, .except_socket = f->s[3]};
    assert_int_equal(bcast(f, &opts), 2); /* sockets 1 and 2 here */
    assert_int_equal(published.calls, 1);
    assert_int_equal(published.nexcept, 101);
    assert_string_equal(published.except[0], "r0");
    assert_string_equal(published.except[64], "r64");
    assert_string_equal(published.except[99], "r99");
    assert_string_equal(published.except[100], f->s[3]->id);
    /* A few exclusions fit the small array; the sender still comes last. */
    assert_int_equal(
        bcast(f, &(rp_sio_bcast_t){.except = except, .nexcept = 2, .except_socket = f->s[1]}),
        NSOCK - 1);
    assert_int_equal(published.nexcept, 3);
    assert_string_equal(published.except[2], f->s[1]->id);
    /* Local-only and binary broadcasts stay on this node. */
    assert_int_equal(bcast(f, &(rp_sio_bcast_t){.local = 1}), NSOCK);
    rp_sio_bin_t att = {"x", 1};
    assert_int_equal(
        rp_sio_broadcast(f->nsp, NULL, "bin", "{\"_placeholder\":true,\"num\":0}", 29, &att, 1),
        NSOCK);
    assert_int_equal(published.calls, 2);
    assert_int_equal(cluster.errors, 0);
    f->srv.cluster = NULL;
}

static void too_many_attachments_are_refused(void **state)
{
    fixture_t *f = *state;
    static rp_sio_bin_t att[RP_SIO_MAX_ATTACHMENTS + 1];
    assert_int_equal(rp_sio_broadcast(f->nsp, NULL, "bin", "", 0, att, RP_SIO_MAX_ATTACHMENTS + 1),
                     RP_ETOOBIG);
    assert_int_equal(rp_sio_emit(f->s[0], "bin", "", 0, att, RP_SIO_MAX_ATTACHMENTS + 1),
                     RP_ETOOBIG);
    assert_int_equal(queued(f, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            joining_twice_is_one_membership_and_rooms_go_with_their_last_member, setup, teardown),
        cmocka_unit_test_setup_teardown(join_refuses_past_the_room_limit_and_on_a_socket_that_left,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(broadcast_to_rooms_reaches_each_member_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(except_rooms_and_the_sender_are_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(a_socket_id_is_a_room_of_that_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(socket_rooms_lists_memberships_in_join_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(cluster_gets_every_except_room_and_the_sender, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(too_many_attachments_are_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
