/* SPDX-License-Identifier: MIT */
/* The Engine.IO glue: one rp_sio_client per Engine.IO session, its CONNECTs, the dispatch of
 * its packets to sockets, binary packets held until their attachments arrive, and the
 * per-connection packet rate. Sockets are unlinked synchronously and freed on the next tick
 * (srv->_graveyard), so a handler that disconnects its own socket can still read it until it
 * returns. A peer's protocol error closes that peer only. */
#include "sio/sio_int.h"

#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/bucket.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"
#include "util/rand.h"

static void bury(rp_sio_socket_t *s)
{
    rp_sio_server_t *srv = s->nsp->_srv;
    if (srv->_graveyard_len == srv->_graveyard_cap) {
        size_t cap = srv->_graveyard_cap ? srv->_graveyard_cap * 2 : 64;
        rp_sio_socket_t **g = rp_realloc(srv->_graveyard, cap * sizeof(*g));
        if (g == NULL) {
            /* Cannot defer: leak rather than free under a running handler. */
            RP_LOG_ERROR("sio", "out of memory freeing a socket");
            return;
        }
        srv->_graveyard = g;
        srv->_graveyard_cap = cap;
    }
    srv->_graveyard[srv->_graveyard_len++] = s;
}

/* Takes s out of its namespace, rooms and client; tells the namespace; frees it later. */
void rp_sio_socket_remove(rp_sio_socket_t *s, const char *reason)
{
    rp_sio_nsp_t *nsp = s->nsp;
    if (!s->_connected)
        return;
    if (nsp->recovery && s->pid[0] && rp_sio_reason_recoverable(reason))
        rp_sio_keep_session(s);
    rp_sio_replay_free(s->_replay);
    s->_connected = 0;
    rp_list_unlink(&s->_client_node);
    rp_list_unlink(&s->nsp_node);
    rp_map_del(&nsp->_sockets, &s->_entry);
    if (s->_pid_entry.key)
        rp_map_del(&nsp->_pids, &s->_pid_entry);
    s->_pid_entry.key = NULL;
    nsp->nsockets--;
    while (!rp_list_empty(&s->_rooms))
        rp_sio_membership_drop(nsp, rp_container_of(s->_rooms.next, member_t, sock_node));
    while (s->_acks) {
        struct rp_sio_pending_ack *a = s->_acks;
        s->_acks = a->next;
        rp_sio_ack_cb cb = a->cb;
        void *ud = a->ud;
        rp_sio_ack_free(a);
        cb(NULL, NULL, ud);
    }
    if (nsp->_on_disconnect)
        nsp->_on_disconnect(s, reason, nsp->_on_disconnect_ud);
    bury(s);
}

static rp_sio_socket_t *client_socket(rp_sio_client_t *c, const char *nsp, size_t len)
{
    rp_list_node_t *it;
    rp_list_foreach(it, &c->_sockets)
    {
        rp_sio_socket_t *s = rp_container_of(it, rp_sio_socket_t, _client_node);
        if (s->nsp->_name_len == len && memcmp(s->nsp->name, nsp, len) == 0)
            return s;
    }
    return NULL;
}

void rp_sio_disconnect(rp_sio_socket_t *s, int close_transport)
{
    if (!s->_connected)
        return;
    rp_sio_client_t *c = s->client;
    /* A client that cannot be told it left the namespace loses the whole connection. */
    if (rp_sio_send_raw(c, RP_SIO_DISCONNECT, s->nsp->name, s->nsp->_name_len, NULL, 0) < 0)
        close_transport = 1;
    rp_sio_socket_remove(s, "server namespace disconnect");
    if (close_transport)
        rp_eio_session_close(c->eio);
}

void rp_sio_client_fail(rp_sio_client_t *c, const char *why)
{
    c->_srv->protocol_errors++;
    RP_LOG_INFO("sio", "session %s: %s, closing", c->eio->sid, why);
    rp_eio_session_close(c->eio);
}

void rp_sio_handle_connect(rp_sio_client_t *c, const rp_sio_packet_t *p)
{
    rp_sio_server_t *srv = c->_srv;
    rp_sio_nsp_t *nsp = rp_sio_server_find(srv, p->nsp, p->nsp_len);
    if (nsp == NULL && srv->_nsp_factory)
        nsp = srv->_nsp_factory(srv, p->nsp, p->nsp_len, srv->_nsp_factory_ud);
    if (nsp == NULL) {
        static const char msg[] = "{\"message\":\"Invalid namespace\"}";
        if (rp_sio_send_raw(c, RP_SIO_CONNECT_ERROR, p->nsp, p->nsp_len, msg, sizeof(msg) - 1) < 0)
            rp_sio_client_fail(c, "cannot refuse a CONNECT");
        return;
    }
    if (client_socket(c, p->nsp, p->nsp_len))
        return; /* already connected there */
    if (rp_sio_lookup_elsewhere(c, nsp, p))
        return; /* goes on when the cluster answers */
    rp_sio_socket_t *s = rp_calloc(1, sizeof(*s));
    if (s == NULL || rp_rand_id(s->id, 20) < 0) {
        rp_free(s);
        rp_sio_client_fail(c, "out of memory");
        return;
    }
    s->nsp = nsp;
    s->client = c;
    rp_list_init(&s->_rooms);
    rp_list_init(&s->nsp_node);
    rp_list_init(&s->_client_node);
    const char *auth = p->data ? p->data : "";
    size_t auth_len = p->data_len;
    saved_t *sv = NULL;
    char offset[64] = "";
    if (nsp->recovery) {
        sv = rp_sio_find_saved(srv, nsp, auth, auth_len, offset, sizeof(offset));
        if (rp_rand_id(s->pid, 20) < 0) {
            rp_free(s);
            rp_sio_client_fail(c, "out of memory");
            return;
        }
        sv = rp_sio_adopt_saved(s, sv);
    }
    if (nsp->_on_connect) {
        rp_buf_t err;
        rp_buf_init(&err, 4096);
        int rc = nsp->_on_connect(s, auth, auth_len, &err, nsp->_on_connect_ud);
        if (rc < 0) {
            static const char dflt[] = "{\"message\":\"Not authorized\"}";
            int custom = err.len > 0 && rp_json_validate(err.data, err.len) == 0;
            rc = rp_sio_send_raw(c, RP_SIO_CONNECT_ERROR, nsp->name, nsp->_name_len,
                                 custom ? err.data : dflt, custom ? err.len : sizeof(dflt) - 1);
            if (rc < 0)
                rp_sio_client_fail(c, "cannot refuse a CONNECT");
            rp_buf_deinit(&err);
            rp_sio_socket_free(s);
            return;
        }
        rp_buf_deinit(&err);
    }
    /* A live socket's pid is taken over only once the newcomer's credentials are known. */
    if (nsp->recovery && sv == NULL && rp_sio_take_over(c, s, nsp, auth, auth_len))
        sv = rp_sio_adopt_saved(
            s, rp_sio_find_saved(srv, nsp, auth, auth_len, offset, sizeof(offset)));
    s->_entry.key = s->id;
    s->_entry.keylen = 20;
    if (rp_map_put(&nsp->_sockets, &s->_entry) < 0 && rp_sio_socket_find(nsp, s->id, 20) != s) {
        rp_sio_socket_free(s);
        rp_sio_client_fail(c, "out of memory");
        return;
    }
    s->_connected = 1;
    rp_list_push(&nsp->socket_list, &s->nsp_node);
    rp_list_push(&c->_sockets, &s->_client_node);
    nsp->nsockets++;
    rp_timerq_remove(&c->_connect_timer);
    if (sv) {
        /* Rooms back, then what was missed, then the CONNECT reply (the client buffers
         * events until it is connected). If the provider cannot serve the offset, the
         * socket becomes a fresh session instead. */
        int rc = 0;
        for (size_t i = 0; i < sv->nrooms && rc == 0; i++) {
            if (nsp->_room_allowed && !nsp->_room_allowed(s, sv->rooms[i], nsp->_room_allowed_ud))
                continue;
            /* A room that cannot be restored would be a silent gap: fresh session instead. */
            rc = rp_sio_join(s, sv->rooms[i], strlen(sv->rooms[i]));
        }
        rp_sio_replay_t *r = rc == 0 ? rp_calloc(1, sizeof(*r)) : NULL;
        if (rc == 0 && r == NULL)
            rc = UV_ENOMEM;
        if (r) {
            r->s = s;
            snprintf(r->offset, sizeof(r->offset), "%s", offset);
            rp_timerq_node_init(&r->timer);
            rc = rp_sio_replay_round(r);
        }
        /* Used up when it worked; kept for its owner when the offset was refused (whoever
         * presented it gets a fresh session and nothing of this one). */
        if (rc >= 0)
            rp_sio_saved_free(srv, sv);
        if (rc > 0 && s->_connected && (r->auth = rp_malloc(auth_len + 1)) != NULL) {
            /* More than may be queued at once: the next rounds run from replayq, and the
             * last one finishes the CONNECT. */
            memcpy(r->auth, auth, auth_len);
            r->auth_len = auth_len;
            s->_replay = r;
            s->recovered = 1;
            rp_timerq_push(&srv->_replayq, &r->timer);
            return;
        }
        rp_free(r);
        if (rc == 0 && s->_connected) {
            s->recovered = 1;
            srv->recovered++;
        } else if (s->_connected) {
            srv->recovery_refused++;
            if (rp_sio_socket_renew(s) < 0) {
                rp_sio_client_fail(c, "no fresh session id");
                return;
            }
        }
    }
    if (s->_connected)
        rp_sio_connect_finish(s, auth, auth_len);
}

/* The end of a CONNECT: s takes its pid, gets the CONNECT reply, and the namespace hears of it. */
void rp_sio_connect_finish(rp_sio_socket_t *s, const char *auth, size_t auth_len)
{
    rp_sio_nsp_t *nsp = s->nsp;
    rp_sio_client_t *c = s->client;
    if (nsp->recovery) {
        s->_pid_entry.key = s->pid;
        s->_pid_entry.keylen = 20;
        if (rp_map_put(&nsp->_pids, &s->_pid_entry) < 0 &&
            rp_map_get(&nsp->_pids, s->pid, 20) != &s->_pid_entry)
            s->_pid_entry.key = NULL; /* out of memory: this socket cannot be taken over */
    }
    char reply[80];
    size_t rlen;
    if (nsp->recovery) {
        rlen = (size_t)snprintf(reply, sizeof(reply), "{\"sid\":\"%s\",\"pid\":\"%s\"}", s->id,
                                s->pid);
    } else {
        memcpy(reply, "{\"sid\":\"", 8);
        memcpy(reply + 8, s->id, 20);
        memcpy(reply + 28, "\"}", 2);
        rlen = 30;
    }
    int rc = rp_sio_send_raw(c, RP_SIO_CONNECT, nsp->name, nsp->_name_len, reply, rlen);
    if (nsp->_on_connection)
        nsp->_on_connection(s, auth, auth_len, nsp->_on_connection_ud);
    /* Told after on_connection, so the namespace hears of the socket before it leaves. */
    if (rc < 0)
        rp_sio_client_fail(c, "cannot send the CONNECT reply");
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
    struct rp_sio_handler *h = nsp->_handlers;
    while (h && !(h->len == nlen && memcmp(h->name, name, nlen) == 0))
        h = h->next;
    if (h)
        h->cb(s, &ev, h->ud);
    else if (nsp->_on_any)
        nsp->_on_any(s, &ev, nsp->_on_any_ud);
    rp_buf_deinit(&big);
}

static void dispatch(rp_sio_client_t *c, const rp_sio_packet_t *p, const rp_sio_bin_t *att,
                     size_t natt)
{
    c->_srv->packets_in++;
    if (p->type == RP_SIO_CONNECT) {
        rp_sio_handle_connect(c, p);
        return;
    }
    rp_sio_socket_t *s = client_socket(c, p->nsp, p->nsp_len);
    if (s == NULL || p->type == RP_SIO_CONNECT_ERROR) {
        rp_sio_client_fail(c, "packet for a namespace it is not connected to");
        return;
    }
    switch (p->type) {
    case RP_SIO_DISCONNECT:
        rp_sio_socket_remove(s, "client namespace disconnect");
        break;
    case RP_SIO_EVENT:
    case RP_SIO_BINARY_EVENT:
        handle_event(s, p, att, natt);
        break;
    default:
        rp_sio_handle_ack(s, p, att, natt);
        break;
    }
}

/* The per-connection rate: a packet (with its attachments) costs 1 + attachments tokens.
 * Returns 0 to let it through, 1 when it is dropped (an event wanting an ack is told so),
 * RP_EREFUSED when the client was disconnected for going on. */
static int rate_refuse(rp_sio_client_t *c, const rp_sio_packet_t *p)
{
    rp_sio_server_t *srv = c->_srv;
    const rp_sio_config_t *cfg = &srv->cfg;
    if (cfg->rate_limit <= 0)
        return 0;
    uint64_t now = uv_now(srv->eio->net->loop);
    rp_bucket_t b = {c->_tokens, c->_tokens_ms};
    uint64_t wait = rp_bucket_take(&b, 1.0 + p->attachments, cfg->rate_limit, cfg->rate_burst, now);
    c->_tokens = b.tokens;
    c->_tokens_ms = b.last_ms;
    if (wait == 0) {
        if (c->_over)
            c->_over--;
        return 0;
    }
    srv->rate_limited++;
    if (++c->_over > (cfg->rate_burst > 1 ? cfg->rate_burst : 1)) {
        srv->rate_disconnects++;
        RP_LOG_INFO("sio", "session %s: disconnected for going on over the rate limit",
                    c->eio->sid);
        rp_sio_client_fail(c, "rate limit");
        return RP_EREFUSED;
    }
    rp_sio_socket_t *s = p->type == RP_SIO_EVENT || p->type == RP_SIO_BINARY_EVENT
                             ? client_socket(c, p->nsp, p->nsp_len)
                             : NULL;
    if (s && p->id >= 0) {
        char args[96];
        int n = snprintf(args, sizeof(args), "{\"error\":\"rate limited\",\"retry_after_ms\":%llu}",
                         (unsigned long long)wait);
        if (rp_sio_ack(s, p->id, args, (size_t)n, NULL, 0) < 0) /* over its limit: dropped anyway */
            RP_LOG_INFO("sio", "session %s: the rate-limit answer was not queued", c->eio->sid);
    }
    return 1;
}

static void partial_free(rp_sio_client_t *c)
{
    struct rp_sio_partial *pa = c->_partial;
    if (pa == NULL)
        return;
    for (size_t i = 0; i < pa->natt; i++)
        rp_free((void *)pa->att[i].data);
    rp_free(pa->att);
    rp_free(pa->text);
    rp_free(pa);
    c->_partial = NULL;
}

static void on_eio_message(rp_eio_session_t *es, int binary, char *data, size_t len, void *ud)
{
    rp_sio_client_t *c = es->data;
    (void)ud;
    if (c == NULL)
        return;
    if (binary) {
        struct rp_sio_partial *pa = c->_partial;
        if (pa == NULL) {
            rp_sio_client_fail(c, "binary data without a packet announcing it");
            return;
        }
        void *copy = rp_malloc(len ? len : 1);
        if (copy == NULL) {
            rp_sio_client_fail(c, "out of memory");
            return;
        }
        memcpy(copy, data, len);
        pa->att[pa->natt].data = copy;
        pa->att[pa->natt].len = len;
        if (++pa->natt == pa->pkt.attachments) {
            c->_partial = NULL;
            if (!pa->discard)
                dispatch(c, &pa->pkt, pa->att, pa->natt);
            c->_partial = pa;
            partial_free(c);
        }
        return;
    }
    if (c->_partial) {
        rp_sio_client_fail(c, "text packet while binary attachments were expected");
        return;
    }
    rp_sio_packet_t p;
    if (rp_sio_packet_decode(data, len, c->_srv->cfg.max_attachments, &p) < 0) {
        rp_sio_client_fail(c, "invalid Socket.IO packet");
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
        rp_sio_client_fail(c, "out of memory");
        return;
    }
    /* Re-point the packet into our copy of the text. */
    p.nsp = p.nsp_len == 1 && p.nsp[0] == '/' ? "/" : text + (p.nsp - data);
    p.data = p.data ? text + (p.data - data) : NULL;
    pa->pkt = p;
    pa->text = text;
    pa->att = att;
    pa->discard = over;
    c->_partial = pa;
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
    c->_srv = srv;
    rp_list_init(&c->_sockets);
    rp_timerq_node_init(&c->_connect_timer);
    rp_timerq_push(&srv->_connectq, &c->_connect_timer);
    c->_tokens = srv->cfg.rate_burst;
    c->_tokens_ms = uv_now(srv->eio->net->loop);
    es->data = c;
    srv->_nclients++;
}

static void on_eio_close(rp_eio_session_t *es, const char *reason, void *ud)
{
    rp_sio_client_t *c = es->data;
    rp_sio_server_t *srv = ud;
    if (c == NULL)
        return;
    es->data = NULL;
    while (!rp_list_empty(&c->_sockets))
        rp_sio_socket_remove(rp_container_of(c->_sockets.next, rp_sio_socket_t, _client_node),
                             reason);
    rp_timerq_remove(&c->_connect_timer);
    partial_free(c);
    rp_free(c);
    srv->_nclients--;
}

void rp_sio_on_connect_timeout(rp_timerq_node_t *n)
{
    rp_sio_client_t *c = rp_container_of(n, rp_sio_client_t, _connect_timer);
    if (rp_list_empty(&c->_sockets))
        rp_sio_client_fail(c, "no CONNECT within the connect timeout");
}

const rp_eio_callbacks_t rp_sio_eio_callbacks = {on_eio_open, on_eio_message, on_eio_close};
