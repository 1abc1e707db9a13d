/* SPDX-License-Identifier: MIT */
/* Socket.IO server: one rp_sio_client per Engine.IO session, one rp_sio_socket per
 * namespace the client joined. Rooms are per namespace; a membership links one socket and
 * one room in both directions, so leaving everything on disconnect is a list walk. Sockets
 * are unlinked synchronously and freed on the next tick, so a handler that disconnects its
 * own socket can still read it until it returns. */
#include "sio/server.h"

#include <string.h>

#include "util/alloc.h"
#include "util/bucket.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"
#include "util/rand.h"

struct rp_sio_handler {
    struct rp_sio_handler *next;
    rp_sio_event_cb cb;
    void *ud;
    size_t len;
    char name[];
};

struct rp_sio_pending_ack {
    struct rp_sio_pending_ack *next;
    int64_t id;
    rp_sio_ack_cb cb;
    void *ud;
    rp_sio_socket_t *s;
    int has_timer;
    uv_timer_t timer;
};

struct rp_sio_partial {
    rp_sio_packet_t pkt; /* pointers into text */
    char *text;
    rp_sio_bin_t *att;
    size_t natt;
    int discard; /* over the rate: collect the attachments, then drop the packet */
};

typedef struct rp_sio_room {
    rp_map_entry_t entry;
    rp_list_node_t members;
    size_t count;
    size_t name_len;
    char name[];
} room_t;

typedef struct membership {
    rp_list_node_t room_node;
    rp_list_node_t sock_node;
    room_t *room;
    rp_sio_socket_t *sock;
} member_t;

/* A dropped socket's session, kept for the recovery window. */
typedef struct saved_session {
    rp_map_entry_t entry; /* in srv->saved, by pid */
    rp_timerq_node_t expiry;
    char pid[21];
    char sid[21];
    rp_sio_nsp_t *nsp;
    uint64_t expires; /* uv_now() deadline: may be sooner than the queue's window */
    size_t nrooms;
    char **rooms;
} saved_t;

/* Sockets that left, freed at the next tick (see the file comment). */
static rp_sio_socket_t **graveyard;
static size_t graveyard_len, graveyard_cap;

void rp_sio_config_defaults(rp_sio_config_t *cfg)
{
    cfg->connect_timeout = 45000;
    cfg->recovery_window = 120000;
    cfg->max_attachments = 16;
    cfg->max_rooms_per_socket = 256;
    cfg->rate_limit = 0;
    cfg->rate_burst = 0;
}

/* ---- encoding ---- */

/* Starts an outgoing packet in b: headroom, Engine.IO message type, Socket.IO header. */
static int encode_begin(rp_buf_t *b, int type, unsigned natt, const rp_sio_nsp_t *nsp, int64_t id)
{
    static const char headroom[RP_EIO_HEADROOM] = {0};
    rp_buf_init(b, (size_t)1 << 30);
    int rc = rp_buf_append(b, headroom, sizeof(headroom));
    if (rc == 0)
        rc = rp_buf_append_char(b, '4');
    if (rc == 0)
        rc = rp_sio_packet_encode_header(b, type, natt, nsp->name, nsp->name_len, id);
    return rc;
}

static int encode_event(rp_buf_t *b, const rp_sio_nsp_t *nsp, int64_t id, const char *event,
                        const char *args, size_t args_len, size_t natt)
{
    int rc = encode_begin(b, natt ? RP_SIO_BINARY_EVENT : RP_SIO_EVENT, (unsigned)natt, nsp, id);
    if (rc == 0)
        rc = rp_buf_append_char(b, '[');
    if (rc == 0)
        rc = rp_json_string_encode(b, event, strlen(event));
    if (rc == 0 && args_len) {
        rc = rp_buf_append_char(b, ',');
        if (rc == 0)
            rc = rp_buf_append(b, args, args_len);
    }
    if (rc == 0)
        rc = rp_buf_append_char(b, ']');
    return rc;
}

/* Like encode_event, with `,"offset"` appended to the arguments. */
static int encode_event_offset(rp_buf_t *b, const rp_sio_nsp_t *nsp, const char *event,
                               const char *args, size_t args_len, size_t natt, const char *offset)
{
    int rc = encode_event(b, nsp, -1, event, args, args_len, natt);
    if (rc < 0 || offset == NULL)
        return rc;
    b->len--; /* the closing bracket */
    rc = rp_buf_append_char(b, ',');
    if (rc == 0)
        rc = rp_json_string_encode(b, offset, strlen(offset));
    if (rc == 0)
        rc = rp_buf_append_char(b, ']');
    return rc;
}

/* Builds the Engine.IO packets of a Socket.IO packet in b plus its attachments. On success b
 * is emptied and pkts[0..1+natt) hold references the caller releases. */
static int build_packets(rp_buf_t *b, const rp_sio_bin_t *att, size_t natt, rp_eio_packet_t *pkts)
{
    int rc = rp_eio_packet_from_buf(&pkts[0], b);
    if (rc < 0) {
        rp_buf_deinit(b);
        return rc;
    }
    for (size_t i = 0; i < natt; i++) {
        rc = rp_eio_packet_binary(&pkts[1 + i], att[i].data, att[i].len);
        if (rc < 0) {
            for (size_t j = 0; j <= i; j++)
                rp_eio_packet_release(&pkts[j]);
            return rc;
        }
    }
    return 0;
}

static void release_packets(rp_eio_packet_t *pkts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rp_eio_packet_release(&pkts[i]);
}

static int send_to(rp_sio_socket_t *s, const rp_eio_packet_t *pkts, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = rp_eio_session_send(s->client->eio, &pkts[i]);
    if (rc == 0)
        s->client->srv->packets_out++;
    return rc;
}

/* Encodes b (plus attachments) and sends it to s. Consumes b. */
static int send_buf(rp_sio_socket_t *s, rp_buf_t *b, const rp_sio_bin_t *att, size_t natt)
{
    rp_eio_packet_t pkts[1 + 64];
    if (natt > 64) {
        rp_buf_deinit(b);
        return RP_ETOOBIG;
    }
    int rc = build_packets(b, att, natt, pkts);
    if (rc < 0)
        return rc;
    rc = send_to(s, pkts, 1 + natt);
    release_packets(pkts, 1 + natt);
    return rc;
}

/* Sends a packet with a raw JSON payload (or none) to the client of nsp. */
static int send_raw(rp_sio_client_t *c, int type, const rp_sio_nsp_t *nsp, const char *nsp_name,
                    size_t nsp_len, const char *json, size_t json_len)
{
    rp_buf_t b;
    static const char headroom[RP_EIO_HEADROOM] = {0};
    (void)nsp;
    rp_buf_init(&b, (size_t)1 << 30);
    int rc = rp_buf_append(&b, headroom, sizeof(headroom));
    if (rc == 0)
        rc = rp_buf_append_char(&b, '4');
    if (rc == 0)
        rc = rp_sio_packet_encode_header(&b, type, 0, nsp_name, nsp_len, -1);
    if (rc == 0 && json_len)
        rc = rp_buf_append(&b, json, json_len);
    rp_eio_packet_t p;
    if (rc == 0)
        rc = rp_eio_packet_from_buf(&p, &b);
    if (rc < 0) {
        rp_buf_deinit(&b);
        return rc;
    }
    rc = rp_eio_session_send(c->eio, &p);
    rp_eio_packet_release(&p);
    return rc;
}

/* ---- namespaces ---- */

rp_sio_nsp_t *rp_sio_server_find(rp_sio_server_t *srv, const char *name, size_t len)
{
    rp_map_entry_t *e = rp_map_get(&srv->nsps, name, len);
    return e ? rp_container_of(e, rp_sio_nsp_t, entry) : NULL;
}

rp_sio_nsp_t *rp_sio_server_of(rp_sio_server_t *srv, const char *name)
{
    size_t len = strlen(name);
    rp_sio_nsp_t *nsp = rp_sio_server_find(srv, name, len);
    if (nsp)
        return nsp;
    nsp = rp_calloc(1, sizeof(*nsp));
    if (nsp == NULL)
        return NULL;
    nsp->name = rp_strndup(name, len);
    if (nsp->name == NULL) {
        rp_free(nsp);
        return NULL;
    }
    nsp->name_len = len;
    nsp->srv = srv;
    rp_map_init(&nsp->sockets);
    rp_map_init(&nsp->rooms);
    rp_map_init(&nsp->pids);
    rp_list_init(&nsp->socket_list);
    nsp->entry.key = nsp->name;
    nsp->entry.keylen = len;
    if (rp_map_put(&srv->nsps, &nsp->entry) < 0 && rp_sio_server_find(srv, name, len) != nsp) {
        rp_free(nsp->name);
        rp_free(nsp);
        return NULL;
    }
    return nsp;
}

void rp_sio_server_set_nsp_factory(rp_sio_server_t *srv, rp_sio_nsp_factory_cb cb, void *ud)
{
    srv->nsp_factory = cb;
    srv->nsp_factory_ud = ud;
}

int rp_sio_nsp_on(rp_sio_nsp_t *nsp, const char *event, rp_sio_event_cb cb, void *ud)
{
    size_t len = strlen(event);
    for (struct rp_sio_handler *h = nsp->handlers; h; h = h->next) {
        if (h->len == len && memcmp(h->name, event, len) == 0) {
            h->cb = cb;
            h->ud = ud;
            return 0;
        }
    }
    struct rp_sio_handler *h = rp_malloc(sizeof(*h) + len + 1);
    if (h == NULL)
        return UV_ENOMEM;
    memcpy(h->name, event, len + 1);
    h->len = len;
    h->cb = cb;
    h->ud = ud;
    h->next = nsp->handlers;
    nsp->handlers = h;
    return 0;
}

void rp_sio_nsp_on_any(rp_sio_nsp_t *nsp, rp_sio_event_cb cb, void *ud)
{
    nsp->on_any = cb;
    nsp->on_any_ud = ud;
}

void rp_sio_nsp_on_connect(rp_sio_nsp_t *nsp, rp_sio_connect_cb cb, void *ud)
{
    nsp->on_connect = cb;
    nsp->on_connect_ud = ud;
}

void rp_sio_nsp_on_connection(rp_sio_nsp_t *nsp, rp_sio_connection_cb cb, void *ud)
{
    nsp->on_connection = cb;
    nsp->on_connection_ud = ud;
}

void rp_sio_nsp_on_disconnect(rp_sio_nsp_t *nsp, rp_sio_disconnect_cb cb, void *ud)
{
    nsp->on_disconnect = cb;
    nsp->on_disconnect_ud = ud;
}

void rp_sio_nsp_on_restore_room(rp_sio_nsp_t *nsp,
                                int (*cb)(rp_sio_socket_t *s, const char *room, void *ud), void *ud)
{
    nsp->room_allowed = cb;
    nsp->room_allowed_ud = ud;
}

void rp_sio_nsp_on_take_over(rp_sio_nsp_t *nsp,
                             int (*cb)(rp_sio_socket_t *s, rp_sio_socket_t *old, void *ud),
                             void *ud)
{
    nsp->take_over_allowed = cb;
    nsp->take_over_allowed_ud = ud;
}

void rp_sio_nsp_set_socket_data_free(rp_sio_nsp_t *nsp, void (*fn)(void *data))
{
    nsp->free_socket_data = fn;
}

void rp_sio_nsp_set_recovery(rp_sio_nsp_t *nsp, const rp_sio_recovery_t *rec, void *ud)
{
    nsp->recovery = rec;
    nsp->recovery_ud = ud;
}

/* ---- rooms ---- */

static room_t *room_find(rp_sio_nsp_t *nsp, const char *name, size_t len)
{
    rp_map_entry_t *e = rp_map_get(&nsp->rooms, name, len);
    return e ? rp_container_of(e, room_t, entry) : NULL;
}

static rp_sio_socket_t *socket_find(rp_sio_nsp_t *nsp, const char *id, size_t len)
{
    rp_map_entry_t *e = rp_map_get(&nsp->sockets, id, len);
    return e ? rp_container_of(e, rp_sio_socket_t, entry) : NULL;
}

static member_t *membership_find(const rp_sio_socket_t *s, const char *room, size_t len)
{
    rp_list_node_t *it;
    rp_list_foreach(it, &s->rooms)
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
    if (!s->connected)
        return RP_ESTATE;
    if (membership_find(s, room, len))
        return 0;
    if (s->nrooms >= nsp->srv->cfg.max_rooms_per_socket)
        return RP_ETOOBIG;
    member_t *m = rp_malloc(sizeof(*m));
    if (m == NULL)
        return UV_ENOMEM;
    room_t *r = room_find(nsp, room, len);
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
        if (rp_map_put(&nsp->rooms, &r->entry) < 0 && room_find(nsp, room, len) != r) {
            rp_free(r);
            rp_free(m);
            return UV_ENOMEM;
        }
    }
    m->room = r;
    m->sock = s;
    rp_list_push(&r->members, &m->room_node);
    rp_list_push(&s->rooms, &m->sock_node);
    r->count++;
    s->nrooms++;
    return 0;
}

static void membership_drop(rp_sio_nsp_t *nsp, member_t *m)
{
    room_t *r = m->room;
    rp_list_unlink(&m->room_node);
    rp_list_unlink(&m->sock_node);
    m->sock->nrooms--;
    if (--r->count == 0) {
        rp_map_del(&nsp->rooms, &r->entry);
        rp_free(r);
    }
    rp_free(m);
}

int rp_sio_leave(rp_sio_socket_t *s, const char *room, size_t len)
{
    member_t *m = membership_find(s, room, len);
    if (m)
        membership_drop(s->nsp, m);
    return 0;
}

void rp_sio_socket_rooms(const rp_sio_socket_t *s, void (*fn)(const char *, size_t, void *), void *ud)
{
    rp_list_node_t *it;
    rp_list_foreach(it, &s->rooms)
    {
        member_t *m = rp_container_of(it, member_t, sock_node);
        fn(m->room->name, m->room->name_len, ud);
    }
}

size_t rp_sio_room_size(rp_sio_nsp_t *nsp, const char *room, size_t len)
{
    room_t *r = room_find(nsp, room, len);
    if (r)
        return r->count;
    return socket_find(nsp, room, len) ? 1 : 0;
}

/* ---- sockets ---- */

static void socket_free(rp_sio_socket_t *s)
{
    if (s->data && s->nsp->free_socket_data)
        s->nsp->free_socket_data(s->data);
    rp_free(s);
}

static void bury(rp_sio_socket_t *s)
{
    if (graveyard_len == graveyard_cap) {
        size_t cap = graveyard_cap ? graveyard_cap * 2 : 64;
        rp_sio_socket_t **g = rp_realloc(graveyard, cap * sizeof(*g));
        if (g == NULL) {
            /* Cannot defer: leak rather than free under a running handler. */
            RP_LOG_ERROR("sio", "out of memory freeing a socket");
            return;
        }
        graveyard = g;
        graveyard_cap = cap;
    }
    graveyard[graveyard_len++] = s;
}

static void on_ack_timer_closed(uv_handle_t *h)
{
    rp_free(h->data);
}

static void ack_free(struct rp_sio_pending_ack *a)
{
    if (a->has_timer) {
        uv_timer_stop(&a->timer);
        uv_close((uv_handle_t *)&a->timer, on_ack_timer_closed);
    } else {
        rp_free(a);
    }
}

static void saved_free(rp_sio_server_t *srv, saved_t *sv)
{
    rp_map_del(&srv->saved, &sv->entry);
    rp_timerq_remove(&sv->expiry);
    for (size_t i = 0; i < sv->nrooms; i++)
        rp_free(sv->rooms[i]);
    rp_free(sv->rooms);
    rp_free(sv);
}

static void on_saved_expired(rp_timerq_node_t *n)
{
    saved_t *sv = rp_container_of(n, saved_t, expiry);
    saved_free(sv->nsp->srv, sv);
}

int rp_sio_reason_recoverable(const char *reason)
{
    static const char *const reasons[] = {"transport close", "transport error", "ping timeout",
                                          "forced close", "server shutdown"};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(*reasons); i++)
        if (strcmp(reason, reasons[i]) == 0)
            return 1;
    return 0;
}

int rp_sio_save_session(rp_sio_nsp_t *nsp, const char *pid, const char *sid, const char *const *rooms,
                        size_t nrooms, uint32_t ttl_ms)
{
    rp_sio_server_t *srv = nsp->srv;
    if (strlen(pid) != 20 || strlen(sid) != 20 || rp_map_get(&srv->saved, pid, 20))
        return RP_EPROTO;
    saved_t *sv = rp_calloc(1, sizeof(*sv));
    if (sv == NULL || (sv->rooms = rp_calloc(nrooms ? nrooms : 1, sizeof(*sv->rooms))) == NULL) {
        rp_free(sv);
        return UV_ENOMEM;
    }
    memcpy(sv->pid, pid, 21);
    memcpy(sv->sid, sid, 21);
    sv->nsp = nsp;
    for (size_t i = 0; i < nrooms; i++) {
        char *r = rp_strndup(rooms[i], strlen(rooms[i]));
        if (r)
            sv->rooms[sv->nrooms++] = r;
    }
    sv->entry.key = sv->pid;
    sv->entry.keylen = 20;
    rp_timerq_node_init(&sv->expiry);
    rp_map_put(&srv->saved, &sv->entry);
    /* The queue expires it after the configured window; a shorter ttl is checked at use. */
    rp_timerq_push(&srv->recoveryq, &sv->expiry);
    sv->expires = uv_now(srv->eio->net->loop) + (ttl_ms < srv->cfg.recovery_window ? ttl_ms : srv->cfg.recovery_window);
    return 0;
}

rp_sio_socket_t *rp_sio_nsp_socket(rp_sio_nsp_t *nsp, const char *id)
{
    rp_sio_socket_t *s = socket_find(nsp, id, strlen(id));
    return s && s->connected ? s : NULL;
}

/* The names of s's rooms (an array the caller frees; the names are the rooms'), or NULL on
 * out-of-memory. */
static const char **socket_room_names(rp_sio_socket_t *s, size_t *n)
{
    const char **names = rp_calloc(s->nrooms + 1, sizeof(*names));
    *n = 0;
    if (names == NULL)
        return NULL;
    rp_list_node_t *it;
    rp_list_foreach(it, &s->rooms)
    names[(*n)++] = rp_container_of(it, member_t, sock_node)->room->name;
    return names;
}

/* Keeps s's session for the recovery window (best effort: out of memory just forgets it). */
static void save_session(rp_sio_socket_t *s)
{
    size_t n;
    const char **names = socket_room_names(s, &n);
    if (names == NULL)
        return;
    rp_sio_save_session(s->nsp, s->pid, s->id, names, n, s->nsp->srv->cfg.recovery_window);
    rp_free(names);
}

static void replay_free(struct rp_sio_replay *r);

/* Takes s out of its namespace, rooms and client; tells the namespace; frees it later. */
static void socket_remove(rp_sio_socket_t *s, const char *reason)
{
    rp_sio_nsp_t *nsp = s->nsp;
    if (!s->connected)
        return;
    if (nsp->recovery && s->pid[0] && rp_sio_reason_recoverable(reason))
        save_session(s);
    replay_free(s->replay);
    s->connected = 0;
    rp_list_unlink(&s->client_node);
    rp_list_unlink(&s->nsp_node);
    rp_map_del(&nsp->sockets, &s->entry);
    if (s->pid_entry.key)
        rp_map_del(&nsp->pids, &s->pid_entry);
    s->pid_entry.key = NULL;
    nsp->nsockets--;
    while (!rp_list_empty(&s->rooms))
        membership_drop(nsp, rp_container_of(s->rooms.next, member_t, sock_node));
    while (s->acks) {
        struct rp_sio_pending_ack *a = s->acks;
        s->acks = a->next;
        rp_sio_ack_cb cb = a->cb;
        void *ud = a->ud;
        ack_free(a);
        cb(NULL, NULL, ud);
    }
    if (nsp->on_disconnect)
        nsp->on_disconnect(s, reason, nsp->on_disconnect_ud);
    bury(s);
}

static rp_sio_socket_t *client_socket(rp_sio_client_t *c, const char *nsp, size_t len)
{
    rp_list_node_t *it;
    rp_list_foreach(it, &c->sockets)
    {
        rp_sio_socket_t *s = rp_container_of(it, rp_sio_socket_t, client_node);
        if (s->nsp->name_len == len && memcmp(s->nsp->name, nsp, len) == 0)
            return s;
    }
    return NULL;
}

int rp_sio_emit_offset(rp_sio_socket_t *s, const char *event, const char *args, size_t args_len,
                       const char *offset)
{
    if (!s->connected)
        return RP_ESTATE;
    rp_buf_t b;
    int rc = encode_event_offset(&b, s->nsp, event, args ? args : "", args ? args_len : 0, 0,
                                 s->nsp->recovery ? offset : NULL);
    if (rc < 0) {
        rp_buf_deinit(&b);
        return rc;
    }
    return send_buf(s, &b, NULL, 0);
}

int rp_sio_emit(rp_sio_socket_t *s, const char *event, const char *args, size_t args_len,
                const rp_sio_bin_t *att, size_t natt)
{
    if (!s->connected)
        return RP_ESTATE;
    rp_buf_t b;
    int rc = encode_event(&b, s->nsp, -1, event, args ? args : "", args ? args_len : 0, natt);
    if (rc < 0) {
        rp_buf_deinit(&b);
        return rc;
    }
    return send_buf(s, &b, att, natt);
}

static void on_ack_timeout(uv_timer_t *t)
{
    struct rp_sio_pending_ack *a = t->data;
    rp_sio_socket_t *s = a->s;
    struct rp_sio_pending_ack **pp = &s->acks;
    while (*pp && *pp != a)
        pp = &(*pp)->next;
    if (*pp)
        *pp = a->next;
    rp_sio_ack_cb cb = a->cb;
    void *ud = a->ud;
    ack_free(a);
    cb(s, NULL, ud);
}

int rp_sio_emit_with_ack(rp_sio_socket_t *s, const char *event, const char *args,
                         size_t args_len, const rp_sio_bin_t *att, size_t natt,
                         uint32_t timeout_ms, rp_sio_ack_cb cb, void *ud)
{
    if (!s->connected)
        return RP_ESTATE;
    struct rp_sio_pending_ack *a = rp_calloc(1, sizeof(*a));
    if (a == NULL)
        return UV_ENOMEM;
    int64_t id = s->next_ack_id++;
    rp_buf_t b;
    int rc = encode_event(&b, s->nsp, id, event, args ? args : "", args ? args_len : 0, natt);
    if (rc < 0) {
        rp_buf_deinit(&b);
        rp_free(a);
        return rc;
    }
    rc = send_buf(s, &b, att, natt);
    if (rc < 0) {
        rp_free(a);
        return rc;
    }
    a->id = id;
    a->cb = cb;
    a->ud = ud;
    a->s = s;
    if (timeout_ms) {
        uv_timer_init(s->client->eio->srv->net->loop, &a->timer);
        a->timer.data = a;
        a->has_timer = 1;
        uv_timer_start(&a->timer, on_ack_timeout, timeout_ms, 0);
    }
    a->next = s->acks;
    s->acks = a;
    return 0;
}

int rp_sio_ack(rp_sio_socket_t *s, int64_t ack_id, const char *args, size_t args_len,
               const rp_sio_bin_t *att, size_t natt)
{
    if (!s->connected)
        return RP_ESTATE;
    rp_buf_t b;
    int rc = encode_begin(&b, natt ? RP_SIO_BINARY_ACK : RP_SIO_ACK, (unsigned)natt, s->nsp, ack_id);
    if (rc == 0)
        rc = rp_buf_append_char(&b, '[');
    if (rc == 0 && args && args_len)
        rc = rp_buf_append(&b, args, args_len);
    if (rc == 0)
        rc = rp_buf_append_char(&b, ']');
    if (rc < 0) {
        rp_buf_deinit(&b);
        return rc;
    }
    /* An ack answers the client's own request: it is not output piling up. */
    size_t total = b.len;
    for (size_t i = 0; i < natt; i++)
        total += att[i].len;
    rp_eio_session_allow(s->client->eio, total);
    return send_buf(s, &b, att, natt);
}

void rp_sio_disconnect(rp_sio_socket_t *s, int close_transport)
{
    if (!s->connected)
        return;
    rp_sio_client_t *c = s->client;
    send_raw(c, RP_SIO_DISCONNECT, s->nsp, s->nsp->name, s->nsp->name_len, NULL, 0);
    socket_remove(s, "server namespace disconnect");
    if (close_transport)
        rp_eio_session_close(c->eio);
}

/* ---- broadcast ---- */

/* A broadcast's send: a socket still replaying what it missed gets it from the replay (and
 * is left out of a delivery sample). */
static int bcast_to(rp_sio_socket_t *s, const rp_eio_packet_t *pkts, size_t n)
{
    if (s->replay)
        return RP_ESTATE;
    int rc = send_to(s, pkts, n);
    if (rc == 0 && s->client->srv->mark_recipients)
        rp_eio_session_mark(s->client->eio);
    return rc;
}

/* Calls visit for each socket of a room (or the socket whose id the name is). */
static void room_visit(rp_sio_nsp_t *nsp, const char *name, uint32_t gen, int send,
                       const rp_eio_packet_t *pkts, size_t npkts, int *count)
{
    size_t len = strlen(name);
    room_t *r = room_find(nsp, name, len);
    if (r) {
        rp_list_node_t *it, *tmp;
        rp_list_foreach_safe(it, tmp, &r->members)
        {
            rp_sio_socket_t *s = rp_container_of(it, member_t, room_node)->sock;
            if (s->mark == gen)
                continue;
            s->mark = gen;
            if (send && bcast_to(s, pkts, npkts) == 0)
                (*count)++;
        }
        return;
    }
    rp_sio_socket_t *s = socket_find(nsp, name, len);
    if (s && s->mark != gen) {
        s->mark = gen;
        if (send && bcast_to(s, pkts, npkts) == 0)
            (*count)++;
    }
}

/* Sends pkts to the local sockets opts selects; returns how many. */
static int deliver_local(rp_sio_nsp_t *nsp, const rp_sio_bcast_t *opts, const rp_eio_packet_t *pkts,
                         size_t npkts)
{
    rp_sio_server_t *srv = nsp->srv;
    uint32_t gen = ++srv->bcast_gen;
    if (gen == 0)
        gen = ++srv->bcast_gen;
    int count = 0;
    for (size_t i = 0; i < opts->nexcept; i++)
        room_visit(nsp, opts->except[i], gen, 0, NULL, 0, &count);
    if (opts->except_socket)
        ((rp_sio_socket_t *)opts->except_socket)->mark = gen;
    if (opts->rooms == NULL) {
        rp_list_node_t *it, *tmp;
        rp_list_foreach_safe(it, tmp, &nsp->socket_list)
        {
            rp_sio_socket_t *s = rp_container_of(it, rp_sio_socket_t, nsp_node);
            if (s->mark != gen && bcast_to(s, pkts, npkts) == 0)
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

/* Hands a broadcast to the other nodes, as packet text (the Engine.IO type byte dropped). */
static void publish_to_cluster(rp_sio_nsp_t *nsp, const rp_sio_bcast_t *opts,
                               const rp_eio_packet_t *pkt)
{
    rp_cluster_t *c = nsp->srv->cluster;
    const char *except[65];
    size_t nexcept = opts->nexcept < 64 ? opts->nexcept : 64;
    if (nexcept)
        memcpy(except, opts->except, nexcept * sizeof(*except));
    if (opts->except_socket)
        except[nexcept++] = opts->except_socket->id;
    rp_cluster_msg_t m = {
        nsp->name, nsp->name_len, opts->rooms, opts->nrooms, except, nexcept,
        pkt->poll->data + pkt->poll_off + 1, pkt->poll->len - pkt->poll_off - 1,
    };
    if (c->ops->publish(c, &m) < 0)
        c->errors++;
}

int rp_sio_broadcast(rp_sio_nsp_t *nsp, const rp_sio_bcast_t *opts, const char *event,
                     const char *args, size_t args_len, const rp_sio_bin_t *att, size_t natt)
{
    static const rp_sio_bcast_t everyone = {0};
    if (opts == NULL)
        opts = &everyone;
    if (natt > 64)
        return RP_ETOOBIG;
    rp_buf_t b;
    int rc = encode_event_offset(&b, nsp, event, args ? args : "", args ? args_len : 0, natt,
                                 nsp->recovery ? opts->offset : NULL);
    if (rc < 0) {
        rp_buf_deinit(&b);
        return rc;
    }
    rp_eio_packet_t pkts[1 + 64];
    rc = build_packets(&b, att, natt, pkts);
    if (rc < 0)
        return rc;
    int count = deliver_local(nsp, opts, pkts, 1 + natt);
    /* Binary broadcasts stay on this node: the cluster carries packet text only. */
    if (nsp->srv->cluster && natt == 0 && !opts->local)
        publish_to_cluster(nsp, opts, &pkts[0]);
    release_packets(pkts, 1 + natt);
    return count;
}

static void on_cluster_deliver(void *ud, const rp_cluster_msg_t *m)
{
    rp_sio_server_t *srv = ud;
    rp_sio_nsp_t *nsp = rp_sio_server_find(srv, m->nsp, m->nsp_len);
    if (nsp == NULL)
        return;
    rp_buf_t b;
    static const char headroom[RP_EIO_HEADROOM] = {0};
    rp_buf_init(&b, (size_t)1 << 30);
    rp_eio_packet_t pkt;
    if (rp_buf_append(&b, headroom, sizeof(headroom)) < 0 || rp_buf_append_char(&b, '4') < 0 ||
        rp_buf_append(&b, m->packet, m->packet_len) < 0 || rp_eio_packet_from_buf(&pkt, &b) < 0) {
        rp_buf_deinit(&b);
        return;
    }
    rp_sio_bcast_t opts = {.rooms = m->rooms, .nrooms = m->nrooms, .except = m->except, .nexcept = m->nexcept};
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

/* ---- packets from clients ---- */

static void client_fail(rp_sio_client_t *c, const char *why)
{
    c->srv->protocol_errors++;
    RP_LOG_INFO("sio", "session %s: %s, closing", c->eio->sid, why);
    rp_eio_session_close(c->eio);
}

static int no_emit(void *ctx, const char *event, const char *args, size_t args_len, const char *offset)
{
    (void)ctx, (void)event, (void)args, (void)args_len, (void)offset;
    return 0;
}

/* A CONNECT (of s, on c) that presents the pid of a socket still connected on another
 * Engine.IO session: the client has moved (its polling request failed, its network changed)
 * before this server saw the old session drop. The pid is the client's secret, but secrets
 * leak (a shared screen, a log): the old socket is ended, as if its transport had closed
 * (which saves its session for find_saved to resume), only when the namespace's hook says s
 * may have it. Returns 1 when the old socket was ended. */
static int take_over(rp_sio_client_t *c, rp_sio_socket_t *s, rp_sio_nsp_t *nsp, const char *auth,
                     size_t len)
{
    const char *pid, *off;
    size_t pl, ol;
    char offset[64];
    if (len == 0 || rp_json_object_get(auth, len, "pid", &pid, &pl) != 1 || pl != 22 || pid[0] != '"' ||
        rp_json_object_get(auth, len, "offset", &off, &ol) != 1 || off[0] != '"' || ol < 3 ||
        ol - 2 >= sizeof(offset) || memchr(off, '\\', ol))
        return 0;
    rp_map_entry_t *e = rp_map_get(&nsp->pids, pid + 1, 20);
    rp_sio_socket_t *old = e ? rp_container_of(e, rp_sio_socket_t, pid_entry) : NULL;
    if (old == NULL || old->client == c)
        return 0;
    /* Only for an offset the provider can serve: a pid with a junk offset ends nothing. */
    memcpy(offset, off + 1, ol - 2);
    offset[ol - 2] = '\0';
    if (nsp->recovery->missed(nsp->recovery_ud, nsp, NULL, 0, offset, no_emit, NULL) != 0)
        return 0;
    rp_sio_client_t *oc = old->client;
    if (nsp->take_over_allowed && !nsp->take_over_allowed(s, old, nsp->take_over_allowed_ud)) {
        c->srv->takeovers_refused++;
        RP_LOG_INFO("sio",
                    "session %s presented the pid of live session %s with credentials that do not "
                    "cover it; the live one stays, the newcomer gets a fresh session",
                    c->eio->sid, oc->eio->sid);
        return 0;
    }
    RP_LOG_INFO("sio", "session %s: its pid came back on session %s; resuming it there", oc->eio->sid, c->eio->sid);
    socket_remove(old, "transport close");
    if (rp_list_empty(&oc->sockets))
        rp_eio_session_close(oc->eio);
    return 1;
}

/* The saved session the CONNECT auth asks to resume: {"pid": string, "offset": string}, known,
 * unexpired and of this namespace. Copies the offset out. */

static saved_t *find_saved(rp_sio_server_t *srv, rp_sio_nsp_t *nsp, const char *auth, size_t len,
                           char *offset, size_t offset_cap)
{
    const char *pid, *off;
    size_t pl, ol;
    if (len == 0 || rp_json_object_get(auth, len, "pid", &pid, &pl) != 1 ||
        rp_json_object_get(auth, len, "offset", &off, &ol) != 1 || pid[0] != '"' || off[0] != '"' ||
        pl != 22 || ol < 3 || ol - 2 >= offset_cap || memchr(off, '\\', ol))
        return NULL;
    rp_map_entry_t *e = rp_map_get(&srv->saved, pid + 1, 20);
    saved_t *sv = e ? rp_container_of(e, saved_t, entry) : NULL;
    if (sv == NULL || sv->nsp != nsp || uv_now(srv->eio->net->loop) > sv->expires)
        return NULL;
    memcpy(offset, off + 1, ol - 2);
    offset[ol - 2] = '\0';
    return sv;
}

/* ---- replaying what a recovered socket missed, in rounds (see rp_sio_recovery_t) ---- */

typedef struct rp_sio_replay {
    rp_timerq_node_t timer; /* on srv->replayq while rounds remain */
    rp_sio_socket_t *s;
    char offset[64]; /* the last offset sent */
    size_t sent;     /* events sent in this round */
    char *auth;      /* the CONNECT auth, for on_connection once the replay is done */
    size_t auth_len;
} rp_sio_replay_t;

/* Output a round fills up to; the next round waits until less than half of it is queued. */
static size_t replay_budget(const rp_sio_socket_t *s)
{
    return s->nsp->srv->eio->cfg.max_queued / 2;
}

/* Sends one missed event to the socket being restored, offset as last argument, unless this
 * round has filled its budget (every round sends at least one event). */
static int replay_emit(void *ctx, const char *event, const char *args, size_t args_len,
                       const char *offset)
{
    rp_sio_replay_t *r = ctx;
    if (r->sent && rp_eio_session_queued(r->s->client->eio) >= replay_budget(r->s))
        return 1;
    int rc = rp_sio_emit_offset(r->s, event, args, args_len, offset);
    if (rc < 0)
        return rc;
    r->sent++;
    snprintf(r->offset, sizeof(r->offset), "%s", offset);
    return 0;
}

static void replay_free(rp_sio_replay_t *r)
{
    if (r == NULL)
        return;
    rp_timerq_remove(&r->timer);
    r->s->replay = NULL;
    rp_free(r->auth);
    rp_free(r);
}

/* One round of replay: 0 when everything missed has been sent, 1 when more remain, -1 when
 * the provider can no longer serve it. */
static int replay_round(rp_sio_replay_t *r)
{
    rp_sio_socket_t *s = r->s;
    size_t n;
    const char **rooms = socket_room_names(s, &n);
    if (rooms == NULL)
        return -1;
    r->sent = 0;
    int rc = s->nsp->recovery->missed(s->nsp->recovery_ud, s->nsp, rooms, n, r->offset,
                                      replay_emit, r);
    rp_free(rooms);
    return rc < 0 ? -1 : rc > 0;
}

/* ---- recovery sessions kept by the cluster (another node's clients resuming here) ---- */

typedef struct lookup {
    rp_list_node_t node; /* in lookups */
    rp_sio_server_t *srv; /* NULL once the server is gone */
    char sid[21];         /* the Engine.IO session that sent the CONNECT */
    char *nsp;            /* owned copies of the CONNECT */
    size_t nsp_len;
    char *data;
    size_t data_len;
} lookup_t;

static rp_list_node_t lookups = {&lookups, &lookups};
static int resuming; /* handle_connect is replaying a held CONNECT: no second lookup */

static void handle_connect(rp_sio_client_t *c, const rp_sio_packet_t *p);
static void socket_renew(rp_sio_socket_t *s);
static void connect_finish(rp_sio_socket_t *s, const char *auth, size_t auth_len);

/* The next round of a replay, once the peer has read most of the last one. */
static void on_replay_timer(rp_timerq_node_t *n)
{
    rp_sio_replay_t *r = rp_container_of(n, rp_sio_replay_t, timer);
    rp_sio_socket_t *s = r->s;
    rp_sio_server_t *srv = s->nsp->srv;
    if (rp_eio_session_queued(s->client->eio) >= replay_budget(s) / 2) {
        rp_timerq_push(&srv->replayq, &r->timer);
        return;
    }
    int rc = replay_round(r);
    if (!s->connected || s->replay != r)
        return; /* the socket went while sending (replay_free ran) */
    if (rc > 0) {
        rp_timerq_push(&srv->replayq, &r->timer);
        return;
    }
    char *auth = r->auth;
    size_t auth_len = r->auth_len;
    r->auth = NULL;
    replay_free(r);
    if (rc < 0) {
        /* The history moved past what was sent: the client starts over with a fresh session. */
        RP_LOG_INFO("sio", "recovery of %s overtaken by the history: fresh session", s->id);
        socket_renew(s);
        srv->recovery_overtaken++;
    } else {
        srv->recovered_paced++;
    }
    connect_finish(s, auth ? auth : "", auth_len);
    rp_free(auth);
}

static void lookup_free(lookup_t *lk)
{
    rp_list_unlink(&lk->node);
    rp_free(lk->nsp);
    rp_free(lk->data);
    rp_free(lk);
}

static void on_session_found(void *ud, int found, const rp_cluster_session_t *cs)
{
    lookup_t *lk = ud;
    rp_sio_server_t *srv = lk->srv;
    if (srv == NULL) {
        lookup_free(lk);
        return;
    }
    rp_sio_nsp_t *nsp = rp_sio_server_find(srv, lk->nsp, lk->nsp_len);
    /* A session of another namespace is not this one's to resume (the Node adapter writes no
     * namespace: "" matches any). */
    if (found && nsp && (cs->nsp[0] == '\0' || strcmp(cs->nsp, nsp->name) == 0))
        rp_sio_save_session(nsp, cs->pid, cs->sid, cs->rooms, cs->nrooms, srv->cfg.recovery_window);
    rp_map_entry_t *e = rp_map_get(&srv->eio->sessions, lk->sid, 20);
    rp_eio_session_t *es = e ? rp_container_of(e, rp_eio_session_t, entry) : NULL;
    rp_sio_client_t *c = es ? es->data : NULL;
    if (c) {
        rp_sio_packet_t p = {RP_SIO_CONNECT, 0, lk->nsp, lk->nsp_len, -1, lk->data, lk->data_len};
        resuming = 1;
        handle_connect(c, &p);
        resuming = 0;
    }
    lookup_free(lk);
}

/* Starts a cluster lookup when the CONNECT asks to resume a pid unknown here. Returns 1 if the
 * CONNECT is now held, 0 to handle it now. */
static int lookup_elsewhere(rp_sio_client_t *c, rp_sio_nsp_t *nsp, const rp_sio_packet_t *p)
{
    rp_sio_server_t *srv = c->srv;
    rp_cluster_t *cl = srv->cluster;
    const char *pid;
    size_t pl;
    if (resuming || nsp->recovery == NULL || cl == NULL || cl->ops->session_take == NULL || p->data_len == 0 ||
        rp_json_object_get(p->data, p->data_len, "pid", &pid, &pl) != 1 || pl != 22 || pid[0] != '"' ||
        memchr(pid + 1, '\\', 20) || memchr(pid + 1, '"', 20) || rp_map_get(&srv->saved, pid + 1, 20))
        return 0;
    lookup_t *lk = rp_calloc(1, sizeof(*lk));
    if (lk == NULL)
        return 0;
    lk->srv = srv;
    memcpy(lk->sid, c->eio->sid, 20);
    lk->nsp = rp_strndup(p->nsp, p->nsp_len);
    lk->nsp_len = p->nsp_len;
    lk->data = rp_strndup(p->data, p->data_len);
    lk->data_len = p->data_len;
    rp_list_push(&lookups, &lk->node);
    char key[21];
    memcpy(key, pid + 1, 20);
    key[20] = '\0';
    if (lk->nsp == NULL || lk->data == NULL || cl->ops->session_take(cl, key, on_session_found, lk) < 0) {
        lookup_free(lk);
        return 0;
    }
    return 1;
}

void rp_sio_nsp_rooms(rp_sio_nsp_t *nsp, void (*fn)(const char *room, size_t len, size_t size, void *ud), void *ud)
{
    size_t b;
    for (rp_map_entry_t *e = rp_map_first(&nsp->rooms, &b); e; e = rp_map_next(&nsp->rooms, e, &b)) {
        room_t *r = rp_container_of(e, room_t, entry);
        fn(r->name, r->name_len, r->count, ud);
    }
}

void rp_sio_cluster_detach(rp_sio_server_t *srv)
{
    rp_list_node_t *it;
    rp_list_foreach(it, &lookups)
    {
        lookup_t *lk = rp_container_of(it, lookup_t, node);
        if (lk->srv == srv)
            lk->srv = NULL;
    }
}

/* Gives s (with fresh ids) the ids of the saved session sv, and returns sv; or leaves s fresh
 * and returns NULL when there is none, or when a live socket still has that sid (the client
 * came back before the drop was seen: no recovery, a fresh session). */
static saved_t *adopt_saved(rp_sio_socket_t *s, saved_t *sv)
{
    if (sv == NULL || socket_find(s->nsp, sv->sid, 20))
        return NULL;
    memcpy(s->id, sv->sid, sizeof(s->id));
    memcpy(s->pid, sv->pid, sizeof(s->pid));
    return sv;
}

static void handle_connect(rp_sio_client_t *c, const rp_sio_packet_t *p)
{
    rp_sio_server_t *srv = c->srv;
    rp_sio_nsp_t *nsp = rp_sio_server_find(srv, p->nsp, p->nsp_len);
    if (nsp == NULL && srv->nsp_factory)
        nsp = srv->nsp_factory(srv, p->nsp, p->nsp_len, srv->nsp_factory_ud);
    if (nsp == NULL) {
        static const char msg[] = "{\"message\":\"Invalid namespace\"}";
        send_raw(c, RP_SIO_CONNECT_ERROR, NULL, p->nsp, p->nsp_len, msg, sizeof(msg) - 1);
        return;
    }
    if (client_socket(c, p->nsp, p->nsp_len))
        return; /* already connected there */
    if (lookup_elsewhere(c, nsp, p))
        return; /* goes on when the cluster answers */
    rp_sio_socket_t *s = rp_calloc(1, sizeof(*s));
    if (s == NULL || rp_rand_id(s->id, 20) < 0) {
        rp_free(s);
        client_fail(c, "out of memory");
        return;
    }
    s->nsp = nsp;
    s->client = c;
    rp_list_init(&s->rooms);
    rp_list_init(&s->nsp_node);
    rp_list_init(&s->client_node);
    const char *auth = p->data ? p->data : "";
    size_t auth_len = p->data_len;
    saved_t *sv = NULL;
    char offset[64] = "";
    if (nsp->recovery) {
        sv = find_saved(srv, nsp, auth, auth_len, offset, sizeof(offset));
        if (rp_rand_id(s->pid, 20) < 0) {
            rp_free(s);
            client_fail(c, "out of memory");
            return;
        }
        sv = adopt_saved(s, sv);
    }
    if (nsp->on_connect) {
        rp_buf_t err;
        rp_buf_init(&err, 4096);
        int rc = nsp->on_connect(s, auth, auth_len, &err, nsp->on_connect_ud);
        if (rc < 0) {
            static const char dflt[] = "{\"message\":\"Not authorized\"}";
            int custom = err.len > 0 && rp_json_validate(err.data, err.len) == 0;
            send_raw(c, RP_SIO_CONNECT_ERROR, nsp, nsp->name, nsp->name_len,
                     custom ? err.data : dflt, custom ? err.len : sizeof(dflt) - 1);
            rp_buf_deinit(&err);
            socket_free(s);
            return;
        }
        rp_buf_deinit(&err);
    }
    /* A live socket's pid is taken over only once the newcomer's credentials are known. */
    if (nsp->recovery && sv == NULL && take_over(c, s, nsp, auth, auth_len))
        sv = adopt_saved(s, find_saved(srv, nsp, auth, auth_len, offset, sizeof(offset)));
    s->entry.key = s->id;
    s->entry.keylen = 20;
    if (rp_map_put(&nsp->sockets, &s->entry) < 0 && socket_find(nsp, s->id, 20) != s) {
        socket_free(s);
        client_fail(c, "out of memory");
        return;
    }
    s->connected = 1;
    rp_list_push(&nsp->socket_list, &s->nsp_node);
    rp_list_push(&c->sockets, &s->client_node);
    nsp->nsockets++;
    rp_timerq_remove(&c->connect_timer);
    if (sv) {
        /* Rooms back, then what was missed, then the CONNECT reply (the client buffers
         * events until it is connected). If the provider cannot serve the offset, the
         * socket becomes a fresh session instead. */
        for (size_t i = 0; i < sv->nrooms; i++) {
            if (nsp->room_allowed && !nsp->room_allowed(s, sv->rooms[i], nsp->room_allowed_ud))
                continue;
            rp_sio_join(s, sv->rooms[i], strlen(sv->rooms[i]));
        }
        rp_sio_replay_t *r = rp_calloc(1, sizeof(*r));
        int rc = -1;
        if (r) {
            r->s = s;
            snprintf(r->offset, sizeof(r->offset), "%s", offset);
            rp_timerq_node_init(&r->timer);
            rc = replay_round(r);
        }
        /* Used up when it worked; kept for its owner when the offset was refused (whoever
         * presented it gets a fresh session and nothing of this one). */
        if (rc >= 0)
            saved_free(srv, sv);
        if (rc > 0 && s->connected && (r->auth = rp_malloc(auth_len + 1)) != NULL) {
            /* More than may be queued at once: the next rounds run from replayq, and the
             * last one finishes the CONNECT. */
            memcpy(r->auth, auth, auth_len);
            r->auth_len = auth_len;
            s->replay = r;
            s->recovered = 1;
            rp_timerq_push(&srv->replayq, &r->timer);
            return;
        }
        rp_free(r);
        if (rc == 0 && s->connected) {
            s->recovered = 1;
            srv->recovered++;
        } else if (s->connected) {
            socket_renew(s);
            srv->recovery_refused++;
        }
    }
    if (s->connected)
        connect_finish(s, auth, auth_len);
}

/* Drops the session s was restoring: no rooms, new sid and pid (a fresh session). */
static void socket_renew(rp_sio_socket_t *s)
{
    rp_sio_nsp_t *nsp = s->nsp;
    while (!rp_list_empty(&s->rooms))
        membership_drop(nsp, rp_container_of(s->rooms.next, member_t, sock_node));
    rp_map_del(&nsp->sockets, &s->entry);
    rp_rand_id(s->id, 20);
    rp_rand_id(s->pid, 20);
    rp_map_put(&nsp->sockets, &s->entry);
    s->recovered = 0;
}

/* The end of a CONNECT: s takes its pid, gets the CONNECT reply, and the namespace hears of it. */
static void connect_finish(rp_sio_socket_t *s, const char *auth, size_t auth_len)
{
    rp_sio_nsp_t *nsp = s->nsp;
    rp_sio_client_t *c = s->client;
    if (nsp->recovery) {
        s->pid_entry.key = s->pid;
        s->pid_entry.keylen = 20;
        if (rp_map_put(&nsp->pids, &s->pid_entry) < 0 && rp_map_get(&nsp->pids, s->pid, 20) != &s->pid_entry)
            s->pid_entry.key = NULL; /* out of memory: this socket cannot be taken over */
    }
    char reply[80];
    size_t rlen;
    if (nsp->recovery) {
        rlen = (size_t)snprintf(reply, sizeof(reply), "{\"sid\":\"%s\",\"pid\":\"%s\"}", s->id, s->pid);
    } else {
        memcpy(reply, "{\"sid\":\"", 8);
        memcpy(reply + 8, s->id, 20);
        memcpy(reply + 28, "\"}", 2);
        rlen = 30;
    }
    send_raw(c, RP_SIO_CONNECT, nsp, nsp->name, nsp->name_len, reply, rlen);
    if (nsp->on_connection)
        nsp->on_connection(s, auth, auth_len, nsp->on_connection_ud);
}

static void handle_event(rp_sio_socket_t *s, const rp_sio_packet_t *p, const rp_sio_bin_t *att,
                         size_t natt)
{
    rp_sio_nsp_t *nsp = s->nsp;
    const char *name_json, *args;
    size_t name_len, args_len;
    if (rp_sio_event_split(p->data, p->data_len, &name_json, &name_len, &args, &args_len) < 0)
        return;
    char small[256];
    rp_buf_t big;
    rp_buf_init(&big, 65536);
    const char *name = small;
    size_t nlen;
    if (name_json[0] != '"') {
        /* socket.io-parser allows a number as the event name: use its text. */
        nlen = name_len < sizeof(small) ? name_len : sizeof(small) - 1;
        memcpy(small, name_json, nlen);
    } else if (name_len - 2 < sizeof(small) && !memchr(name_json, '\\', name_len)) {
        nlen = name_len - 2;
        memcpy(small, name_json + 1, nlen);
    } else {
        if (rp_json_string_decode(name_json, name_len, &big) < 0) {
            rp_buf_deinit(&big);
            return;
        }
        name = big.data ? big.data : "";
        nlen = big.len;
    }
    if (name == small)
        small[nlen] = '\0';
    rp_sio_event_t ev = {name, nlen, args, args_len, att, natt, p->id};
    struct rp_sio_handler *h = nsp->handlers;
    while (h && !(h->len == nlen && memcmp(h->name, name, nlen) == 0))
        h = h->next;
    if (h)
        h->cb(s, &ev, h->ud);
    else if (nsp->on_any)
        nsp->on_any(s, &ev, nsp->on_any_ud);
    rp_buf_deinit(&big);
}

static void handle_ack(rp_sio_socket_t *s, const rp_sio_packet_t *p, const rp_sio_bin_t *att,
                       size_t natt)
{
    struct rp_sio_pending_ack **pp = &s->acks;
    while (*pp && (*pp)->id != p->id)
        pp = &(*pp)->next;
    struct rp_sio_pending_ack *a = *pp;
    if (a == NULL)
        return;
    *pp = a->next;
    const char *args;
    size_t args_len;
    rp_sio_ack_cb cb = a->cb;
    void *ud = a->ud;
    ack_free(a);
    if (rp_sio_ack_args(p->data, p->data_len, &args, &args_len) < 0)
        return;
    rp_sio_event_t ev = {"", 0, args, args_len, att, natt, p->id};
    cb(s, &ev, ud);
}

static void dispatch(rp_sio_client_t *c, const rp_sio_packet_t *p, const rp_sio_bin_t *att,
                     size_t natt)
{
    c->srv->packets_in++;
    if (p->type == RP_SIO_CONNECT) {
        handle_connect(c, p);
        return;
    }
    rp_sio_socket_t *s = client_socket(c, p->nsp, p->nsp_len);
    if (s == NULL || p->type == RP_SIO_CONNECT_ERROR) {
        client_fail(c, "packet for a namespace it is not connected to");
        return;
    }
    switch (p->type) {
    case RP_SIO_DISCONNECT:
        socket_remove(s, "client namespace disconnect");
        break;
    case RP_SIO_EVENT:
    case RP_SIO_BINARY_EVENT:
        handle_event(s, p, att, natt);
        break;
    default:
        handle_ack(s, p, att, natt);
        break;
    }
}

/* The per-connection rate: a packet (with its attachments) costs 1 + attachments tokens.
 * Returns 0 to let it through, 1 when it is dropped (an event wanting an ack is told so), -1
 * when the client was disconnected for going on. */
static int rate_refuse(rp_sio_client_t *c, const rp_sio_packet_t *p)
{
    rp_sio_server_t *srv = c->srv;
    const rp_sio_config_t *cfg = &srv->cfg;
    if (cfg->rate_limit <= 0)
        return 0;
    uint64_t now = uv_now(srv->eio->net->loop);
    rp_bucket_t b = {c->tokens, c->tokens_ms};
    uint64_t wait = rp_bucket_take(&b, 1.0 + p->attachments, cfg->rate_limit, cfg->rate_burst, now);
    c->tokens = b.tokens;
    c->tokens_ms = b.last_ms;
    if (wait == 0) {
        if (c->over)
            c->over--;
        return 0;
    }
    srv->rate_limited++;
    if (++c->over > (cfg->rate_burst > 1 ? cfg->rate_burst : 1)) {
        srv->rate_disconnects++;
        RP_LOG_INFO("sio", "session %s: disconnected for going on over the rate limit", c->eio->sid);
        client_fail(c, "rate limit");
        return -1;
    }
    rp_sio_socket_t *s = p->type == RP_SIO_EVENT || p->type == RP_SIO_BINARY_EVENT
                             ? client_socket(c, p->nsp, p->nsp_len)
                             : NULL;
    if (s && p->id >= 0) {
        char args[96];
        int n = snprintf(args, sizeof(args), "{\"error\":\"rate limited\",\"retry_after_ms\":%llu}",
                         (unsigned long long)wait);
        rp_sio_ack(s, p->id, args, (size_t)n, NULL, 0);
    }
    return 1;
}

static void partial_free(rp_sio_client_t *c)
{
    struct rp_sio_partial *pa = c->partial;
    if (pa == NULL)
        return;
    for (size_t i = 0; i < pa->natt; i++)
        rp_free((void *)pa->att[i].data);
    rp_free(pa->att);
    rp_free(pa->text);
    rp_free(pa);
    c->partial = NULL;
}

static void on_eio_message(rp_eio_session_t *es, int binary, char *data, size_t len, void *ud)
{
    rp_sio_client_t *c = es->data;
    (void)ud;
    if (c == NULL)
        return;
    if (binary) {
        struct rp_sio_partial *pa = c->partial;
        if (pa == NULL) {
            client_fail(c, "binary data without a packet announcing it");
            return;
        }
        void *copy = rp_malloc(len ? len : 1);
        if (copy == NULL) {
            client_fail(c, "out of memory");
            return;
        }
        memcpy(copy, data, len);
        pa->att[pa->natt].data = copy;
        pa->att[pa->natt].len = len;
        if (++pa->natt == pa->pkt.attachments) {
            c->partial = NULL;
            if (!pa->discard)
                dispatch(c, &pa->pkt, pa->att, pa->natt);
            c->partial = pa;
            partial_free(c);
        }
        return;
    }
    if (c->partial) {
        client_fail(c, "text packet while binary attachments were expected");
        return;
    }
    rp_sio_packet_t p;
    if (rp_sio_packet_decode(data, len, c->srv->cfg.max_attachments, &p) < 0) {
        client_fail(c, "invalid Socket.IO packet");
        return;
    }
    int over = rate_refuse(c, &p);
    if (over < 0)
        return; /* disconnected */
    if (p.attachments == 0) {
        if (!over)
            dispatch(c, &p, NULL, 0);
        return;
    }
    struct rp_sio_partial *pa = rp_calloc(1, sizeof(*pa));
    char *text = rp_strndup(data, len);
    rp_sio_bin_t *att = rp_calloc(p.attachments, sizeof(*att));
    if (pa == NULL || text == NULL || att == NULL) {
        rp_free(pa);
        rp_free(text);
        rp_free(att);
        client_fail(c, "out of memory");
        return;
    }
    /* Re-point the packet into our copy of the text. */
    p.nsp = p.nsp_len == 1 && p.nsp[0] == '/' ? "/" : text + (p.nsp - data);
    p.data = p.data ? text + (p.data - data) : NULL;
    pa->pkt = p;
    pa->text = text;
    pa->att = att;
    pa->discard = over;
    c->partial = pa;
}

static void on_eio_open(rp_eio_session_t *es, void *ud)
{
    rp_sio_server_t *srv = ud;
    rp_sio_client_t *c = rp_calloc(1, sizeof(*c));
    if (c == NULL) {
        rp_eio_session_close(es);
        return;
    }
    c->eio = es;
    c->srv = srv;
    rp_list_init(&c->sockets);
    rp_timerq_node_init(&c->connect_timer);
    rp_timerq_push(&srv->connectq, &c->connect_timer);
    c->tokens = srv->cfg.rate_burst;
    c->tokens_ms = uv_now(srv->eio->net->loop);
    es->data = c;
    srv->nclients++;
}

static void on_eio_close(rp_eio_session_t *es, const char *reason, void *ud)
{
    rp_sio_client_t *c = es->data;
    rp_sio_server_t *srv = ud;
    if (c == NULL)
        return;
    es->data = NULL;
    while (!rp_list_empty(&c->sockets))
        socket_remove(rp_container_of(c->sockets.next, rp_sio_socket_t, client_node), reason);
    rp_timerq_remove(&c->connect_timer);
    partial_free(c);
    rp_free(c);
    srv->nclients--;
}

static void on_connect_timeout(rp_timerq_node_t *n)
{
    rp_sio_client_t *c = rp_container_of(n, rp_sio_client_t, connect_timer);
    if (rp_list_empty(&c->sockets))
        client_fail(c, "no CONNECT within the connect timeout");
}

static void on_tick(void *ud)
{
    (void)ud;
    for (size_t i = 0; i < graveyard_len; i++)
        socket_free(graveyard[i]);
    graveyard_len = 0;
}

rp_sio_server_t *rp_sio_server_new(rp_net_t *net, const rp_eio_config_t *eio_cfg,
                                   const rp_sio_config_t *cfg)
{
    static const rp_eio_callbacks_t cbs = {on_eio_open, on_eio_message, on_eio_close};
    rp_sio_server_t *srv = rp_calloc(1, sizeof(*srv));
    if (srv == NULL)
        return NULL;
    srv->cfg = *cfg;
    rp_map_init(&srv->nsps);
    srv->eio = rp_eio_server_new(net, eio_cfg, &cbs, srv);
    if (srv->eio == NULL) {
        rp_free(srv);
        return NULL;
    }
    rp_timerq_init(net->loop, &srv->connectq, cfg->connect_timeout, on_connect_timeout);
    srv->connectq.owner = srv;
    rp_map_init(&srv->saved);
    rp_timerq_init(net->loop, &srv->recoveryq, cfg->recovery_window, on_saved_expired);
    srv->recoveryq.owner = srv;
    rp_timerq_init(net->loop, &srv->replayq, 2, on_replay_timer);
    srv->replayq.owner = srv;
    rp_net_on_tick(net, on_tick, srv);
    return srv;
}

int rp_sio_server_handle(rp_sio_server_t *srv, rp_http_conn_t *hc, rp_http_request_t *req)
{
    return rp_eio_server_handle(srv->eio, hc, req);
}

static void on_timerq_closed(uv_handle_t *h)
{
    rp_timerq_t *q = h->data;
    rp_sio_server_t *srv = q->owner;
    if (--srv->closing_timer == 0)
        rp_free(srv);
}

void rp_sio_server_free(rp_sio_server_t *srv)
{
    rp_net_t *net = srv->eio->net;
    rp_sio_cluster_detach(srv);
    rp_eio_server_free(srv->eio); /* ends every session: clients and sockets go with them */
    size_t b;
    rp_map_entry_t *e;
    while ((e = rp_map_first(&srv->saved, &b)) != NULL)
        saved_free(srv, rp_container_of(e, saved_t, entry));
    rp_map_deinit(&srv->saved);
    while ((e = rp_map_first(&srv->nsps, &b)) != NULL) {
        rp_sio_nsp_t *nsp = rp_container_of(e, rp_sio_nsp_t, entry);
        rp_map_del(&srv->nsps, e);
        while (nsp->handlers) {
            struct rp_sio_handler *h = nsp->handlers;
            nsp->handlers = h->next;
            rp_free(h);
        }
        rp_map_deinit(&nsp->sockets);
        rp_map_deinit(&nsp->rooms);
        rp_map_deinit(&nsp->pids);
        rp_free(nsp->name);
        rp_free(nsp);
    }
    rp_map_deinit(&srv->nsps);
    on_tick(srv);
    rp_free(graveyard);
    graveyard = NULL;
    graveyard_cap = 0;
    rp_net_off_tick(net, on_tick, srv);
    srv->closing_timer = 3;
    rp_timerq_close(&srv->connectq, on_timerq_closed);
    rp_timerq_close(&srv->recoveryq, on_timerq_closed);
    rp_timerq_close(&srv->replayq, on_timerq_closed);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int rp_sio_arg(const rp_sio_event_t *ev, size_t i, const char **val, size_t *len)
{
    const char *a = ev->args;
    size_t n = ev->args_len;
    size_t pos = 0;
    for (size_t k = 0; pos < n; k++) {
        long end = rp_json_scan(a + pos, n - pos);
        if (end < 0)
            return (int)end;
        size_t start = pos;
        while (is_space(a[start]))
            start++;
        if (k == i) {
            *val = a + start;
            *len = pos + (size_t)end - start;
            return 1;
        }
        pos += (size_t)end;
        while (pos < n && a[pos] != ',')
            pos++;
        pos++;
    }
    return 0;
}
