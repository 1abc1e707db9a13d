/* SPDX-License-Identifier: MIT */
/* Connection-state recovery: sessions saved when a socket drops without meaning to, the
 * takeover of a pid still live on another connection, the paced replay of what a resumed
 * socket missed, and lookups of sessions another node saved (through the cluster adapter).
 * All state lives in the server object: saved sessions in srv->_saved, in-flight lookups on
 * srv->_lookups (a lookup outlives a closed server, then answers into nothing). */
#include "sio/sio_int.h"

#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"
#include "util/rand.h"

void rp_sio_saved_free(rp_sio_server_t *srv, saved_t *sv)
{
    rp_map_del(&srv->_saved, &sv->entry);
    rp_timerq_remove(&sv->expiry);
    for (size_t i = 0; i < sv->nrooms; i++)
        rp_free(sv->rooms[i]);
    rp_free(sv->rooms);
    rp_free(sv);
}

void rp_sio_on_saved_expired(rp_timerq_node_t *n)
{
    saved_t *sv = rp_container_of(n, saved_t, expiry);
    rp_sio_saved_free(sv->nsp->_srv, sv);
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

int rp_sio_save_session(rp_sio_nsp_t *nsp, const char *pid, const char *sid,
                        const char *const *rooms, size_t nrooms, uint32_t ttl_ms)
{
    rp_sio_server_t *srv = nsp->_srv;
    if (strlen(pid) != 20 || strlen(sid) != 20)
        return RP_EINVAL;
    if (rp_map_get(&srv->_saved, pid, 20))
        return RP_ESTATE;
    saved_t *sv = rp_calloc(1, sizeof(*sv));
    if (sv == NULL)
        return UV_ENOMEM;
    sv->rooms = rp_calloc(nrooms ? nrooms : 1, sizeof(*sv->rooms));
    if (sv->rooms == NULL)
        goto undo_sv;
    memcpy(sv->pid, pid, 21);
    memcpy(sv->sid, sid, 21);
    sv->nsp = nsp;
    for (size_t i = 0; i < nrooms; i++) {
        char *r = rp_strndup(rooms[i], strlen(rooms[i]));
        if (r == NULL)
            goto undo_rooms;
        sv->rooms[sv->nrooms++] = r;
    }
    sv->entry.key = sv->pid;
    sv->entry.keylen = 20;
    rp_timerq_node_init(&sv->expiry);
    (void)rp_map_put(&srv->_saved, &sv->entry); /* UV_ENOMEM links it anyway (only slower) */
    /* The queue expires it after the configured window; a shorter ttl is checked at use. */
    rp_timerq_push(&srv->_recoveryq, &sv->expiry);
    sv->expires = uv_now(srv->eio->net->loop) +
                  (ttl_ms < srv->cfg.recovery_window ? ttl_ms : srv->cfg.recovery_window);
    return 0;
undo_rooms:
    for (size_t i = 0; i < sv->nrooms; i++)
        rp_free(sv->rooms[i]);
    rp_free(sv->rooms);
undo_sv:
    rp_free(sv);
    return UV_ENOMEM;
}

/* Keeps s's session for the recovery window (best effort: out of memory just forgets it). */
void rp_sio_keep_session(rp_sio_socket_t *s)
{
    size_t n;
    const char **names = rp_sio_socket_room_names(s, &n);
    int rc = names ? rp_sio_save_session(s->nsp, s->pid, s->id, names, n,
                                         s->nsp->_srv->cfg.recovery_window)
                   : UV_ENOMEM;
    if (rc < 0)
        RP_LOG_ERROR("sio", "socket %s: its session is not kept for recovery: %s", s->id,
                     rp_err_name(rc));
    rp_free(names);
}

static int no_emit(void *ctx, const char *event, const char *args, size_t args_len,
                   const char *offset)
{
    (void)ctx, (void)event, (void)args, (void)args_len, (void)offset;
    return 0;
}

/* A CONNECT (of s, on c) that presents the pid of a socket still connected on another
 * Engine.IO session: the client has moved (its polling request failed, its network changed)
 * before this server saw the old session drop. The pid is the client's secret, but secrets
 * leak (a shared screen, a log): the old socket is ended, as if its transport had closed
 * (which saves its session for rp_sio_find_saved to resume), only when the namespace's hook says s
 * may have it. Returns 1 when the old socket was ended. */
int rp_sio_take_over(rp_sio_client_t *c, rp_sio_socket_t *s, rp_sio_nsp_t *nsp, const char *auth,
                     size_t len)
{
    const char *pid, *off;
    size_t pl, ol;
    char offset[64];
    if (len == 0 || rp_json_object_get(auth, len, "pid", &pid, &pl) != 1 || pl != 22 ||
        pid[0] != '"' || rp_json_object_get(auth, len, "offset", &off, &ol) != 1 || off[0] != '"' ||
        ol < 3 || ol - 2 >= sizeof(offset) || memchr(off, '\\', ol))
        return 0;
    rp_map_entry_t *e = rp_map_get(&nsp->_pids, pid + 1, 20);
    rp_sio_socket_t *old = e ? rp_container_of(e, rp_sio_socket_t, _pid_entry) : NULL;
    if (old == NULL || old->client == c)
        return 0;
    /* Only for an offset the provider can serve: a pid with a junk offset ends nothing. */
    memcpy(offset, off + 1, ol - 2);
    offset[ol - 2] = '\0';
    if (nsp->recovery->missed(nsp->_recovery_ud, nsp, NULL, 0, offset, no_emit, NULL) != 0)
        return 0;
    rp_sio_client_t *oc = old->client;
    if (nsp->_take_over_allowed && !nsp->_take_over_allowed(s, old, nsp->_take_over_allowed_ud)) {
        c->_srv->takeovers_refused++;
        RP_LOG_INFO("sio",
                    "session %s presented the pid of live session %s with credentials that do not "
                    "cover it; the live one stays, the newcomer gets a fresh session",
                    c->eio->sid, oc->eio->sid);
        return 0;
    }
    RP_LOG_INFO("sio", "session %s: its pid came back on session %s; resuming it there",
                oc->eio->sid, c->eio->sid);
    rp_sio_socket_remove(old, "transport close");
    if (rp_list_empty(&oc->_sockets))
        rp_eio_session_close(oc->eio);
    return 1;
}

/* The saved session the CONNECT auth asks to resume: {"pid": string, "offset": string}, known,
 * unexpired and of this namespace. Copies the offset out. */
saved_t *rp_sio_find_saved(rp_sio_server_t *srv, rp_sio_nsp_t *nsp, const char *auth, size_t len,
                           char *offset, size_t offset_cap)
{
    const char *pid, *off;
    size_t pl, ol;
    if (len == 0 || rp_json_object_get(auth, len, "pid", &pid, &pl) != 1 ||
        rp_json_object_get(auth, len, "offset", &off, &ol) != 1 || pid[0] != '"' || off[0] != '"' ||
        pl != 22 || ol < 3 || ol - 2 >= offset_cap || memchr(off, '\\', ol))
        return NULL;
    rp_map_entry_t *e = rp_map_get(&srv->_saved, pid + 1, 20);
    saved_t *sv = e ? rp_container_of(e, saved_t, entry) : NULL;
    if (sv == NULL || sv->nsp != nsp || uv_now(srv->eio->net->loop) > sv->expires)
        return NULL;
    memcpy(offset, off + 1, ol - 2);
    offset[ol - 2] = '\0';
    return sv;
}

/* Output a round fills up to; the next round waits until less than half of it is queued. */
static size_t replay_budget(const rp_sio_socket_t *s)
{
    return s->nsp->_srv->eio->cfg.max_queued / 2;
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

void rp_sio_replay_free(rp_sio_replay_t *r)
{
    if (r == NULL)
        return;
    rp_timerq_remove(&r->timer);
    r->s->_replay = NULL;
    rp_free(r->auth);
    rp_free(r);
}

/* One round of replay: 0 when everything missed has been sent, 1 when more remain,
 * RP_EUNAVAIL when the provider can no longer serve it, UV_ENOMEM. */
int rp_sio_replay_round(rp_sio_replay_t *r)
{
    rp_sio_socket_t *s = r->s;
    size_t n;
    const char **rooms = rp_sio_socket_room_names(s, &n);
    if (rooms == NULL)
        return UV_ENOMEM;
    r->sent = 0;
    int rc =
        s->nsp->recovery->missed(s->nsp->_recovery_ud, s->nsp, rooms, n, r->offset, replay_emit, r);
    rp_free(rooms);
    return rc < 0 ? RP_EUNAVAIL : rc > 0;
}

/* The next round of a replay, once the peer has read most of the last one. */
void rp_sio_on_replay_timer(rp_timerq_node_t *n)
{
    rp_sio_replay_t *r = rp_container_of(n, rp_sio_replay_t, timer);
    rp_sio_socket_t *s = r->s;
    rp_sio_server_t *srv = s->nsp->_srv;
    if (rp_eio_session_queued(s->client->eio) >= replay_budget(s) / 2) {
        rp_timerq_push(&srv->_replayq, &r->timer);
        return;
    }
    int rc = rp_sio_replay_round(r);
    if (!s->_connected || s->_replay != r)
        return; /* the socket went while sending (rp_sio_replay_free ran) */
    if (rc > 0) {
        rp_timerq_push(&srv->_replayq, &r->timer);
        return;
    }
    char *auth = r->auth;
    size_t auth_len = r->auth_len;
    r->auth = NULL;
    rp_sio_replay_free(r);
    if (rc < 0) {
        /* The history moved past what was sent: the client starts over with a fresh session. */
        RP_LOG_INFO("sio", "recovery of %s overtaken by the history: fresh session", s->id);
        if (rp_sio_socket_renew(s) < 0) {
            rp_free(auth);
            rp_sio_client_fail(s->client, "no fresh session id");
            return;
        }
        srv->recovery_overtaken++;
    } else {
        srv->recovered_paced++;
    }
    rp_sio_connect_finish(s, auth ? auth : "", auth_len);
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
    if (found && nsp && (cs->nsp[0] == '\0' || strcmp(cs->nsp, nsp->name) == 0)) {
        int rc = rp_sio_save_session(nsp, cs->pid, cs->sid, cs->rooms, cs->nrooms,
                                     srv->cfg.recovery_window);
        if (rc < 0) /* the CONNECT below then gets a fresh session */
            RP_LOG_INFO("sio", "session %s from the cluster not resumed: %s", cs->pid,
                        rp_err_name(rc));
    }
    rp_map_entry_t *e = rp_map_get(&srv->eio->sessions, lk->sid, 20);
    rp_eio_session_t *es = e ? rp_container_of(e, rp_eio_session_t, entry) : NULL;
    rp_sio_client_t *c = es ? es->data : NULL;
    if (c) {
        rp_sio_packet_t p = {RP_SIO_CONNECT, 0, lk->nsp, lk->nsp_len, -1, lk->data, lk->data_len};
        srv->_resuming = 1;
        rp_sio_handle_connect(c, &p);
        srv->_resuming = 0;
    }
    lookup_free(lk);
}

/* Starts a cluster lookup when the CONNECT asks to resume a pid unknown here. Returns 1 if the
 * CONNECT is now held, 0 to handle it now. */
int rp_sio_lookup_elsewhere(rp_sio_client_t *c, rp_sio_nsp_t *nsp, const rp_sio_packet_t *p)
{
    rp_sio_server_t *srv = c->_srv;
    rp_cluster_t *cl = srv->cluster;
    const char *pid;
    size_t pl;
    if (srv->_resuming || nsp->recovery == NULL || cl == NULL || cl->ops->session_take == NULL ||
        p->data_len == 0 || rp_json_object_get(p->data, p->data_len, "pid", &pid, &pl) != 1 ||
        pl != 22 || pid[0] != '"' || memchr(pid + 1, '\\', 20) || memchr(pid + 1, '"', 20) ||
        rp_map_get(&srv->_saved, pid + 1, 20))
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
    rp_list_push(&srv->_lookups, &lk->node);
    char key[21];
    memcpy(key, pid + 1, 20);
    key[20] = '\0';
    if (lk->nsp == NULL || lk->data == NULL ||
        cl->ops->session_take(cl, key, on_session_found, lk) < 0) {
        lookup_free(lk);
        return 0;
    }
    return 1;
}

void rp_sio_cluster_detach(rp_sio_server_t *srv)
{
    /* Each lookup still in flight is answered later into nothing (on_session_found frees it);
     * unlinked here, it no longer points into srv's list. */
    while (!rp_list_empty(&srv->_lookups)) {
        lookup_t *lk = rp_container_of(srv->_lookups.next, lookup_t, node);
        rp_list_unlink(&lk->node);
        lk->srv = NULL;
    }
}

/* Gives s (with fresh ids) the ids of the saved session sv, and returns sv; or leaves s fresh
 * and returns NULL when there is none, or when a live socket still has that sid (the client
 * came back before the drop was seen: no recovery, a fresh session). */
saved_t *rp_sio_adopt_saved(rp_sio_socket_t *s, saved_t *sv)
{
    if (sv == NULL || rp_sio_socket_find(s->nsp, sv->sid, 20))
        return NULL;
    memcpy(s->id, sv->sid, sizeof(s->id));
    memcpy(s->pid, sv->pid, sizeof(s->pid));
    return sv;
}

/* Drops the session s was restoring: no rooms, new sid and pid (a fresh session). */
int rp_sio_socket_renew(rp_sio_socket_t *s)
{
    rp_sio_nsp_t *nsp = s->nsp;
    while (!rp_list_empty(&s->_rooms))
        rp_sio_membership_drop(nsp, rp_container_of(s->_rooms.next, member_t, sock_node));
    rp_map_del(&nsp->_sockets, &s->_entry);
    int rc = rp_rand_id(s->id, 20);
    if (rc == 0)
        rc = rp_rand_id(s->pid, 20);
    /* Back under its id (new or old): the socket stays consistent for its removal. */
    (void)rp_map_put(&nsp->_sockets, &s->_entry); /* UV_ENOMEM links it anyway (only slower) */
    s->recovered = 0;
    return rc;
}
