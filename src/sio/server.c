/* SPDX-License-Identifier: MIT */
/* Socket.IO server: the registry of namespaces and their handlers, the server's lifecycle
 * (new, the per-tick free of sockets that left, async close), and rp_sio_arg. The other jobs
 * are in encode.c, room.c, ack.c, recovery.c and client.c (sio_int.h is what they share).
 * Invariant: srv's memory stays valid until the close callback has run. */
#include "sio/server.h"

#include <string.h>

#include "sio/sio_int.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"

void rp_sio_config_defaults(rp_sio_config_t *cfg)
{
    cfg->connect_timeout = 45000;
    cfg->recovery_window = 120000;
    cfg->max_attachments = 16;
    cfg->max_rooms_per_socket = 256;
    cfg->rate_limit = 0;
    cfg->rate_burst = 0;
}

rp_sio_nsp_t *rp_sio_server_find(rp_sio_server_t *srv, const char *name, size_t len)
{
    rp_map_entry_t *e = rp_map_get(&srv->_nsps, name, len);
    return e ? rp_container_of(e, rp_sio_nsp_t, _entry) : NULL;
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
    nsp->_name_len = len;
    nsp->_srv = srv;
    rp_map_init(&nsp->_sockets);
    rp_map_init(&nsp->_rooms);
    rp_map_init(&nsp->_pids);
    rp_list_init(&nsp->socket_list);
    nsp->_entry.key = nsp->name;
    nsp->_entry.keylen = len;
    if (rp_map_put(&srv->_nsps, &nsp->_entry) < 0 && rp_sio_server_find(srv, name, len) != nsp) {
        rp_free(nsp->name);
        rp_free(nsp);
        return NULL;
    }
    return nsp;
}

void rp_sio_server_set_nsp_factory(rp_sio_server_t *srv, rp_sio_nsp_factory_cb cb, void *ud)
{
    srv->_nsp_factory = cb;
    srv->_nsp_factory_ud = ud;
}

int rp_sio_nsp_on(rp_sio_nsp_t *nsp, const char *event, rp_sio_event_cb cb, void *ud)
{
    size_t len = strlen(event);
    for (struct rp_sio_handler *h = nsp->_handlers; h; h = h->next) {
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
    h->next = nsp->_handlers;
    nsp->_handlers = h;
    return 0;
}

void rp_sio_nsp_on_any(rp_sio_nsp_t *nsp, rp_sio_event_cb cb, void *ud)
{
    nsp->_on_any = cb;
    nsp->_on_any_ud = ud;
}

void rp_sio_nsp_on_connect(rp_sio_nsp_t *nsp, rp_sio_connect_cb cb, void *ud)
{
    nsp->_on_connect = cb;
    nsp->_on_connect_ud = ud;
}

void rp_sio_nsp_on_connection(rp_sio_nsp_t *nsp, rp_sio_connection_cb cb, void *ud)
{
    nsp->_on_connection = cb;
    nsp->_on_connection_ud = ud;
}

void rp_sio_nsp_on_disconnect(rp_sio_nsp_t *nsp, rp_sio_disconnect_cb cb, void *ud)
{
    nsp->_on_disconnect = cb;
    nsp->_on_disconnect_ud = ud;
}

void rp_sio_nsp_on_restore_room(rp_sio_nsp_t *nsp,
                                int (*cb)(rp_sio_socket_t *s, const char *room, void *ud), void *ud)
{
    nsp->_room_allowed = cb;
    nsp->_room_allowed_ud = ud;
}

void rp_sio_nsp_on_take_over(rp_sio_nsp_t *nsp,
                             int (*cb)(rp_sio_socket_t *s, rp_sio_socket_t *old, void *ud),
                             void *ud)
{
    nsp->_take_over_allowed = cb;
    nsp->_take_over_allowed_ud = ud;
}

void rp_sio_nsp_set_socket_data_free(rp_sio_nsp_t *nsp, void (*fn)(void *data))
{
    nsp->_free_socket_data = fn;
}

void rp_sio_nsp_set_recovery(rp_sio_nsp_t *nsp, const rp_sio_recovery_t *rec, void *ud)
{
    nsp->recovery = rec;
    nsp->_recovery_ud = ud;
}

void rp_sio_socket_free(rp_sio_socket_t *s)
{
    if (s->data && s->nsp->_free_socket_data)
        s->nsp->_free_socket_data(s->data);
    rp_free(s);
}

rp_sio_socket_t *rp_sio_nsp_socket(rp_sio_nsp_t *nsp, const char *id)
{
    rp_sio_socket_t *s = rp_sio_socket_find(nsp, id, strlen(id));
    return s && s->_connected ? s : NULL;
}

static void on_tick(void *ud)
{
    rp_sio_server_t *srv = ud;
    for (size_t i = 0; i < srv->_graveyard_len; i++)
        rp_sio_socket_free(srv->_graveyard[i]);
    srv->_graveyard_len = 0;
}

/* One of the parts a closing server waits for has let go (its three timer queues and its
 * Engine.IO server); the last frees the server after telling the caller. */
static void on_part_closed(rp_sio_server_t *srv)
{
    if (--srv->_closing_timer > 0)
        return;
    if (srv->_close_cb)
        srv->_close_cb(srv);
    rp_free(srv);
}

static void on_timerq_closed(uv_handle_t *h)
{
    rp_timerq_t *q = h->data;
    on_part_closed(q->owner);
}

static void on_eio_closed(rp_eio_server_t *eio)
{
    on_part_closed(eio->ud);
}

rp_sio_server_t *rp_sio_server_new(rp_net_t *net, const rp_eio_config_t *eio_cfg,
                                   const rp_sio_config_t *cfg)
{
    rp_sio_server_t *srv = rp_calloc(1, sizeof(*srv));
    if (srv == NULL)
        return NULL;
    srv->cfg = *cfg;
    rp_map_init(&srv->_nsps);
    rp_map_init(&srv->_saved);
    rp_list_init(&srv->_lookups);
    srv->eio = rp_eio_server_new(net, eio_cfg, &rp_sio_eio_callbacks, srv);
    if (srv->eio == NULL)
        goto undo_srv;
    srv->_connectq.owner = srv;
    srv->_recoveryq.owner = srv;
    srv->_replayq.owner = srv;
    if (rp_timerq_init(net->loop, &srv->_connectq, cfg->connect_timeout,
                       rp_sio_on_connect_timeout) < 0)
        goto undo_eio;
    if (rp_timerq_init(net->loop, &srv->_recoveryq, cfg->recovery_window, rp_sio_on_saved_expired) <
        0)
        goto undo_connectq;
    if (rp_timerq_init(net->loop, &srv->_replayq, 2, rp_sio_on_replay_timer) < 0)
        goto undo_recoveryq;
    if (rp_net_on_tick(net, on_tick, srv) < 0)
        goto undo_replayq;
    return srv;
    /* Past the Engine.IO server, undoing is asynchronous: srv is freed once its parts closed. */
undo_replayq:
    srv->_closing_timer++;
    rp_timerq_close(&srv->_replayq, on_timerq_closed);
undo_recoveryq:
    srv->_closing_timer++;
    rp_timerq_close(&srv->_recoveryq, on_timerq_closed);
undo_connectq:
    srv->_closing_timer++;
    rp_timerq_close(&srv->_connectq, on_timerq_closed);
undo_eio:
    srv->_closing_timer++;
    rp_eio_server_close(srv->eio, on_eio_closed);
    return NULL;
undo_srv:
    rp_free(srv);
    return NULL;
}

int rp_sio_server_handle(rp_sio_server_t *srv, rp_http_conn_t *hc, rp_http_request_t *req)
{
    return rp_eio_server_handle(srv->eio, hc, req);
}

void rp_sio_server_close(rp_sio_server_t *srv, void (*cb)(rp_sio_server_t *srv))
{
    rp_net_t *net = srv->eio->net;
    srv->_close_cb = cb;
    rp_sio_cluster_detach(srv);
    srv->_closing_timer = 4;
    /* Ends every session now (clients and sockets go with them); frees it later. */
    rp_eio_server_close(srv->eio, on_eio_closed);
    /* The sockets that left are freed while their namespaces (and free_socket_data) exist. */
    on_tick(srv);
    rp_free(srv->_graveyard);
    srv->_graveyard = NULL;
    srv->_graveyard_cap = 0;
    rp_net_off_tick(net, on_tick, srv);
    size_t b;
    rp_map_entry_t *e;
    while ((e = rp_map_first(&srv->_saved, &b)) != NULL)
        rp_sio_saved_free(srv, rp_container_of(e, saved_t, entry));
    rp_map_deinit(&srv->_saved);
    while ((e = rp_map_first(&srv->_nsps, &b)) != NULL) {
        rp_sio_nsp_t *nsp = rp_container_of(e, rp_sio_nsp_t, _entry);
        rp_map_del(&srv->_nsps, e);
        while (nsp->_handlers) {
            struct rp_sio_handler *h = nsp->_handlers;
            nsp->_handlers = h->next;
            rp_free(h);
        }
        rp_map_deinit(&nsp->_sockets);
        rp_map_deinit(&nsp->_rooms);
        rp_map_deinit(&nsp->_pids);
        rp_free(nsp->name);
        rp_free(nsp);
    }
    rp_map_deinit(&srv->_nsps);
    rp_timerq_close(&srv->_connectq, on_timerq_closed);
    rp_timerq_close(&srv->_recoveryq, on_timerq_closed);
    rp_timerq_close(&srv->_replayq, on_timerq_closed);
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
