/* SPDX-License-Identifier: MIT */
/* The one Socket.IO packet encoder: every outgoing packet starts with the Engine.IO headroom,
 * the message type and the Socket.IO header (rp_sio_encode_begin), then its JSON; the result
 * becomes shared Engine.IO packets (the attachments as binary packets) sent to one socket or
 * handed to a broadcast. Nothing here looks at rooms or sessions beyond the socket it sends to.
 * Invariant: a buffer handed to rp_sio_build_packets or rp_sio_send_buf is consumed. */
#include "sio/sio_int.h"

#include <string.h>

#include "util/err.h"
#include "util/json.h"

/* Starts an outgoing packet in b: the headroom for its WebSocket frame header and the
 * Engine.IO message type. Every packet this server sends starts here. */
int rp_sio_encode_start(rp_buf_t *b)
{
    static const char headroom[RP_EIO_HEADROOM] = {0};
    rp_buf_init(b, (size_t)1 << 30);
    int rc = rp_buf_append(b, headroom, sizeof(headroom));
    if (rc == 0)
        rc = rp_buf_append_char(b, RP_EIO_MESSAGE);
    return rc;
}

int rp_sio_encode_begin(rp_buf_t *b, int type, unsigned natt, const char *nsp, size_t nsp_len,
                        int64_t id)
{
    int rc = rp_sio_encode_start(b);
    if (rc == 0)
        rc = rp_sio_packet_encode_header(b, type, natt, nsp, nsp_len, id);
    return rc;
}

int rp_sio_encode_event(rp_buf_t *b, const rp_sio_nsp_t *nsp, int64_t id, const char *event,
                        const char *args, size_t args_len, size_t natt)
{
    int rc = rp_sio_encode_begin(b, natt ? RP_SIO_BINARY_EVENT : RP_SIO_EVENT, (unsigned)natt,
                                 nsp->name, nsp->_name_len, id);
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

/* Like rp_sio_encode_event, with `,"offset"` appended to the arguments. */
int rp_sio_encode_event_offset(rp_buf_t *b, const rp_sio_nsp_t *nsp, const char *event,
                               const char *args, size_t args_len, size_t natt, const char *offset)
{
    int rc = rp_sio_encode_event(b, nsp, -1, event, args, args_len, natt);
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
int rp_sio_build_packets(rp_buf_t *b, const rp_sio_bin_t *att, size_t natt, rp_eio_packet_t *pkts)
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

void rp_sio_release_packets(rp_eio_packet_t *pkts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rp_eio_packet_release(&pkts[i]);
}

int rp_sio_send_to(rp_sio_socket_t *s, const rp_eio_packet_t *pkts, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = rp_eio_session_send(s->client->eio, &pkts[i]);
    if (rc == 0)
        s->client->_srv->packets_out++;
    return rc;
}

/* Encodes b (plus attachments) and sends it to s. Consumes b. */
int rp_sio_send_buf(rp_sio_socket_t *s, rp_buf_t *b, const rp_sio_bin_t *att, size_t natt)
{
    rp_eio_packet_t pkts[1 + RP_SIO_MAX_ATTACHMENTS];
    if (natt > RP_SIO_MAX_ATTACHMENTS) {
        rp_buf_deinit(b);
        return RP_ETOOBIG;
    }
    int rc = rp_sio_build_packets(b, att, natt, pkts);
    if (rc < 0)
        return rc;
    rc = rp_sio_send_to(s, pkts, 1 + natt);
    rp_sio_release_packets(pkts, 1 + natt);
    return rc;
}

/* Sends a packet with a raw JSON payload (or none) to the client, for namespace nsp. */
int rp_sio_send_raw(rp_sio_client_t *c, int type, const char *nsp, size_t nsp_len, const char *json,
                    size_t json_len)
{
    rp_buf_t b;
    int rc = rp_sio_encode_begin(&b, type, 0, nsp, nsp_len, -1);
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
