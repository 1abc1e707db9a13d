/* SPDX-License-Identifier: MIT */
/* Rooms of a namespace and broadcast. A membership links one socket and one room in both
 * directions, so leaving everything is a list walk and joining allocates one record; a room
 * lives while it has members. A broadcast encodes once, marks each recipient with the
 * server's generation number so a socket in several selected rooms gets it once, and hands
 * the same packet text to the cluster adapter with every exclusion (rooms and the sender). */
#include "sio/sio_int.h"

#include <string.h>

#include "util/alloc.h"
#include "util/err.h"
#include "util/log.h"

room_t *rp_sio_room_find(rp_sio_nsp_t *nsp, const char *name, size_t len)
{
    rp_map_entry_t *e = rp_map_get(&nsp->_rooms, name, len);
    return e ? rp_container_of(e, room_t, entry) : NULL;
}

rp_sio_socket_t *rp_sio_socket_find(rp_sio_nsp_t *nsp, const char *id, size_t len)
{
    rp_map_entry_t *e = rp_map_get(&nsp->_sockets, id, len);
    return e ? rp_container_of(e, rp_sio_socket_t, _entry) : NULL;
}

static member_t *membership_find(const rp_sio_socket_t *s, const char *room, size_t len)
{
    rp_list_node_t *it;
    rp_list_foreach(it, &s->_rooms)
    {
        member_t *m = rp_container_of(it, member_t, sock_node);
        if (m->room->name_len == len && memcmp(m->room->name, room, len) == 0)
            return m;
    }
    return NULL;
}

int rp_sio_in_room(const rp_sio_socket_t *s, const char *room, size_t len)
{
    return membership_find(s, room, len) != NULL;
}

int rp_sio_join(rp_sio_socket_t *s, const char *room, size_t len)
{
    rp_sio_nsp_t *nsp = s->nsp;
    if (!s->_connected)
        return RP_ESTATE;
    if (membership_find(s, room, len))
        return 0;
    if (s->nrooms >= nsp->_srv->cfg.max_rooms_per_socket)
        return RP_ETOOBIG;
    member_t *m = rp_malloc(sizeof(*m));
    if (m == NULL)
        return UV_ENOMEM;
    room_t *r = rp_sio_room_find(nsp, room, len);
    if (r == NULL) {
        r = rp_malloc(sizeof(*r) + len + 1);
        if (r == NULL) {
            rp_free(m);
            return UV_ENOMEM;
        }
        memcpy(r->name, room, len);
        r->name[len] = '\0';
        r->name_len = len;
        r->count = 0;
        rp_list_init(&r->members);
        r->entry.key = r->name;
        r->entry.keylen = len;
        if (rp_map_put(&nsp->_rooms, &r->entry) < 0 && rp_sio_room_find(nsp, room, len) != r) {
            rp_free(r);
            rp_free(m);
            return UV_ENOMEM;
        }
    }
    m->room = r;
    m->sock = s;
    rp_list_push(&r->members, &m->room_node);
    rp_list_push(&s->_rooms, &m->sock_node);
    r->count++;
    s->nrooms++;
    return 0;
}

void rp_sio_membership_drop(rp_sio_nsp_t *nsp, member_t *m)
{
    room_t *r = m->room;
    rp_list_unlink(&m->room_node);
    rp_list_unlink(&m->sock_node);
    m->sock->nrooms--;
    if (--r->count == 0) {
        rp_map_del(&nsp->_rooms, &r->entry);
        rp_free(r);
    }
    rp_free(m);
}

int rp_sio_leave(rp_sio_socket_t *s, const char *room, size_t len)
{
    member_t *m = membership_find(s, room, len);
    if (m)
        rp_sio_membership_drop(s->nsp, m);
    return 0;
}

void rp_sio_socket_rooms(const rp_sio_socket_t *s, void (*fn)(const char *, size_t, void *),
                         void *ud)
{
    rp_list_node_t *it;
    rp_list_foreach(it, &s->_rooms)
    {
        member_t *m = rp_container_of(it, member_t, sock_node);
        fn(m->room->name, m->room->name_len, ud);
    }
}

size_t rp_sio_room_size(rp_sio_nsp_t *nsp, const char *room, size_t len)
{
    room_t *r = rp_sio_room_find(nsp, room, len);
    if (r)
        return r->count;
    return rp_sio_socket_find(nsp, room, len) ? 1 : 0;
}

/* The names of s's rooms (an array the caller frees; the names are the rooms'), or NULL on
 * out-of-memory. */
const char **rp_sio_socket_room_names(rp_sio_socket_t *s, size_t *n)
{
    const char **names = rp_calloc(s->nrooms + 1, sizeof(*names));
    *n = 0;
    if (names == NULL)
        return NULL;
    rp_list_node_t *it;
    rp_list_foreach(it, &s->_rooms) names[(*n)++] =
        rp_container_of(it, member_t, sock_node)->room->name;
    return names;
}

void rp_sio_nsp_rooms(rp_sio_nsp_t *nsp,
                      void (*fn)(const char *room, size_t len, size_t size, void *ud), void *ud)
{
    size_t b;
    for (rp_map_entry_t *e = rp_map_first(&nsp->_rooms, &b); e;
         e = rp_map_next(&nsp->_rooms, e, &b)) {
        room_t *r = rp_container_of(e, room_t, entry);
        fn(r->name, r->name_len, r->count, ud);
    }
}

/* A broadcast's send: a socket still replaying what it missed gets it from the replay (and
 * is left out of a delivery sample). */
static int bcast_to(rp_sio_socket_t *s, const rp_eio_packet_t *pkts, size_t n)
{
    if (s->_replay)
        return RP_ESTATE;
    int rc = rp_sio_send_to(s, pkts, n);
    if (rc == 0 && s->client->_srv->mark_recipients)
        rp_eio_session_mark(s->client->eio);
    return rc;
}

/* Calls visit for each socket of a room (or the socket whose id the name is). */
static void room_visit(rp_sio_nsp_t *nsp, const char *name, uint32_t gen, int send,
                       const rp_eio_packet_t *pkts, size_t npkts, int *count)
{
    size_t len = strlen(name);
    room_t *r = rp_sio_room_find(nsp, name, len);
    if (r) {
        rp_list_node_t *it, *tmp;
        rp_list_foreach_safe(it, tmp, &r->members)
        {
            rp_sio_socket_t *s = rp_container_of(it, member_t, room_node)->sock;
            if (s->_mark == gen)
                continue;
            s->_mark = gen;
            if (send && bcast_to(s, pkts, npkts) == 0)
                (*count)++;
        }
        return;
    }
    rp_sio_socket_t *s = rp_sio_socket_find(nsp, name, len);
    if (s && s->_mark != gen) {
        s->_mark = gen;
        if (send && bcast_to(s, pkts, npkts) == 0)
            (*count)++;
    }
}

/* Sends pkts to the local sockets opts selects; returns how many. */
static int deliver_local(rp_sio_nsp_t *nsp, const rp_sio_bcast_t *opts, const rp_eio_packet_t *pkts,
                         size_t npkts)
{
    rp_sio_server_t *srv = nsp->_srv;
    uint32_t gen = ++srv->_bcast_gen;
    if (gen == 0)
        gen = ++srv->_bcast_gen;
    int count = 0;
    for (size_t i = 0; i < opts->nexcept; i++)
        room_visit(nsp, opts->except[i], gen, 0, NULL, 0, &count);
    if (opts->except_socket)
        ((rp_sio_socket_t *)opts->except_socket)->_mark = gen;
    if (opts->rooms == NULL) {
        rp_list_node_t *it, *tmp;
        rp_list_foreach_safe(it, tmp, &nsp->socket_list)
        {
            rp_sio_socket_t *s = rp_container_of(it, rp_sio_socket_t, nsp_node);
            if (s->_mark != gen && bcast_to(s, pkts, npkts) == 0)
                count++;
        }
    } else {
        for (size_t i = 0; i < opts->nrooms; i++)
            room_visit(nsp, opts->rooms[i], gen, 1, pkts, npkts, &count);
    }
    srv->broadcasts++;
    srv->broadcast_recipients += (unsigned long)count;
    return count;
}

/* Hands a broadcast to the other nodes, as packet text (the Engine.IO type byte dropped),
 * with every exclusion: the except rooms and the sender's own id. Returns 0, or UV_ENOMEM or
 * the adapter's error (counted in c->errors; the other nodes then miss this broadcast). */
static int publish_to_cluster(rp_sio_nsp_t *nsp, const rp_sio_bcast_t *opts,
                              const rp_eio_packet_t *pkt)
{
    rp_cluster_t *c = nsp->_srv->cluster;
    const char *small[16];
    const char **except = small;
    size_t nexcept = opts->nexcept;
    if (nexcept + 1 > sizeof(small) / sizeof(*small)) {
        except = rp_calloc(nexcept + 1, sizeof(*except));
        if (except == NULL) {
            c->errors++;
            RP_LOG_ERROR("sio", "out of memory publishing a broadcast to the cluster");
            return UV_ENOMEM;
        }
    }
    if (nexcept)
        memcpy(except, opts->except, nexcept * sizeof(*except));
    if (opts->except_socket)
        except[nexcept++] = opts->except_socket->id;
    rp_cluster_msg_t m = {
        nsp->name,
        nsp->_name_len,
        opts->rooms,
        opts->nrooms,
        except,
        nexcept,
        pkt->poll->data + pkt->poll_off + 1,
        pkt->poll->len - pkt->poll_off - 1,
    };
    int rc = c->ops->publish(c, &m);
    if (rc < 0)
        c->errors++;
    if (except != small)
        rp_free(except);
    return rc < 0 ? rc : 0;
}

int rp_sio_broadcast(rp_sio_nsp_t *nsp, const rp_sio_bcast_t *opts, const char *event,
                     const char *args, size_t args_len, const rp_sio_bin_t *att, size_t natt)
{
    static const rp_sio_bcast_t everyone = {0};
    if (opts == NULL)
        opts = &everyone;
    if (natt > RP_SIO_MAX_ATTACHMENTS)
        return RP_ETOOBIG;
    rp_buf_t b;
    int rc = rp_sio_encode_event_offset(&b, nsp, event, args ? args : "", args ? args_len : 0, natt,
                                        nsp->recovery ? opts->offset : NULL);
    if (rc < 0) {
        rp_buf_deinit(&b);
        return rc;
    }
    rp_eio_packet_t pkts[1 + RP_SIO_MAX_ATTACHMENTS];
    rc = rp_sio_build_packets(&b, att, natt, pkts);
    if (rc < 0)
        return rc;
    int count = deliver_local(nsp, opts, pkts, 1 + natt);
    /* Binary broadcasts stay on this node: the cluster carries packet text only. */
    if (nsp->_srv->cluster && natt == 0 && !opts->local)
        (void)publish_to_cluster(nsp, opts, &pkts[0]); /* counted there; local delivery stands */
    rp_sio_release_packets(pkts, 1 + natt);
    return count;
}

static void on_cluster_deliver(void *ud, const rp_cluster_msg_t *m)
{
    rp_sio_server_t *srv = ud;
    rp_sio_nsp_t *nsp = rp_sio_server_find(srv, m->nsp, m->nsp_len);
    if (nsp == NULL)
        return;
    rp_buf_t b;
    rp_eio_packet_t pkt;
    if (rp_sio_encode_start(&b) < 0 || rp_buf_append(&b, m->packet, m->packet_len) < 0 ||
        rp_eio_packet_from_buf(&pkt, &b) < 0) {
        rp_buf_deinit(&b);
        return;
    }
    rp_sio_bcast_t opts = {
        .rooms = m->rooms, .nrooms = m->nrooms, .except = m->except, .nexcept = m->nexcept};
    deliver_local(nsp, &opts, &pkt, 1);
    rp_eio_packet_release(&pkt);
}

void rp_sio_server_set_cluster(rp_sio_server_t *srv, rp_cluster_t *c)
{
    srv->cluster = c;
    if (c) {
        c->deliver = on_cluster_deliver;
        c->deliver_ud = srv;
    }
}
