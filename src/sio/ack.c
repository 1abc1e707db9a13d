/* SPDX-License-Identifier: MIT */
/* Emits to one socket and acks both ways: an emit that wants an answer keeps a pending
 * record (with a timer when it has a timeout) on its socket until the client's ACK, the
 * timeout or the socket's end, whichever comes first; the callback runs exactly once.
 * Answering a client's own ack request is allowed past max_queued (see rp_sio_ack). */
#include "sio/sio_int.h"

#include <string.h>

#include "util/alloc.h"
#include "util/err.h"

static void on_ack_timer_closed(uv_handle_t *h)
{
    rp_free(h->data);
}

void rp_sio_ack_free(struct rp_sio_pending_ack *a)
{
    if (a->has_timer) {
        uv_timer_stop(&a->timer);
        uv_close((uv_handle_t *)&a->timer, on_ack_timer_closed);
    } else {
        rp_free(a);
    }
}

int rp_sio_emit_offset(rp_sio_socket_t *s, const char *event, const char *args, size_t args_len,
                       const char *offset)
{
    if (!s->_connected)
        return RP_ESTATE;
    rp_buf_t b;
    int rc = rp_sio_encode_event_offset(&b, s->nsp, event, args ? args : "", args ? args_len : 0, 0,
                                        s->nsp->recovery ? offset : NULL);
    if (rc < 0) {
        rp_buf_deinit(&b);
        return rc;
    }
    return rp_sio_send_buf(s, &b, NULL, 0);
}

int rp_sio_emit(rp_sio_socket_t *s, const char *event, const char *args, size_t args_len,
                const rp_sio_bin_t *att, size_t natt)
{
    if (!s->_connected)
        return RP_ESTATE;
    rp_buf_t b;
    int rc =
        rp_sio_encode_event(&b, s->nsp, -1, event, args ? args : "", args ? args_len : 0, natt);
    if (rc < 0) {
        rp_buf_deinit(&b);
        return rc;
    }
    return rp_sio_send_buf(s, &b, att, natt);
}

static void on_ack_timeout(uv_timer_t *t)
{
    struct rp_sio_pending_ack *a = t->data;
    rp_sio_socket_t *s = a->s;
    struct rp_sio_pending_ack **pp = &s->_acks;
    while (*pp && *pp != a)
        pp = &(*pp)->next;
    if (*pp)
        *pp = a->next;
    rp_sio_ack_cb cb = a->cb;
    void *ud = a->ud;
    rp_sio_ack_free(a);
    cb(s, NULL, ud);
}

int rp_sio_emit_with_ack(rp_sio_socket_t *s, const char *event, const char *args, size_t args_len,
                         const rp_sio_bin_t *att, size_t natt, uint32_t timeout_ms,
                         rp_sio_ack_cb cb, void *ud)
{
    if (!s->_connected)
        return RP_ESTATE;
    struct rp_sio_pending_ack *a = rp_calloc(1, sizeof(*a));
    if (a == NULL)
        return UV_ENOMEM;
    int rc;
    if (timeout_ms) {
        /* Armed before the send (it cannot fire before this returns), so nothing can fail
         * once the packet is out. */
        rc = uv_timer_init(s->client->eio->srv->net->loop, &a->timer);
        if (rc < 0) {
            rp_free(a);
            return rc;
        }
        a->timer.data = a;
        a->has_timer = 1;
        rc = uv_timer_start(&a->timer, on_ack_timeout, timeout_ms, 0);
        if (rc < 0)
            goto undo_ack;
    }
    int64_t id = s->_next_ack_id++;
    rp_buf_t b;
    rc = rp_sio_encode_event(&b, s->nsp, id, event, args ? args : "", args ? args_len : 0, natt);
    if (rc < 0) {
        rp_buf_deinit(&b);
        goto undo_ack;
    }
    rc = rp_sio_send_buf(s, &b, att, natt);
    if (rc < 0)
        goto undo_ack;
    a->id = id;
    a->cb = cb;
    a->ud = ud;
    a->s = s;
    a->next = s->_acks;
    s->_acks = a;
    return 0;
undo_ack:
    rp_sio_ack_free(a); /* closes its timer first, if it has one */
    return rc;
}

int rp_sio_ack(rp_sio_socket_t *s, int64_t ack_id, const char *args, size_t args_len,
               const rp_sio_bin_t *att, size_t natt)
{
    if (!s->_connected)
        return RP_ESTATE;
    rp_buf_t b;
    int rc = rp_sio_encode_begin(&b, natt ? RP_SIO_BINARY_ACK : RP_SIO_ACK, (unsigned)natt,
                                 s->nsp->name, s->nsp->_name_len, ack_id);
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
    return rp_sio_send_buf(s, &b, att, natt);
}

void rp_sio_handle_ack(rp_sio_socket_t *s, const rp_sio_packet_t *p, const rp_sio_bin_t *att,
                       size_t natt)
{
    struct rp_sio_pending_ack **pp = &s->_acks;
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
    rp_sio_ack_free(a);
    if (rp_sio_ack_args(p->data, p->data_len, &args, &args_len) < 0)
        return;
    rp_sio_event_t ev = {"", 0, args, args_len, att, natt, p->id};
    cb(s, &ev, ud);
}
