/* SPDX-License-Identifier: MIT */
#ifndef RP_SIO_PACKET_H
#define RP_SIO_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Socket.IO v5 packets on top of Engine.IO messages:
 *   <type>[<attachments>-][/<nsp>,][<ack id>][<JSON payload>]
 * The decoder follows socket.io-parser's rules (including which payload each type may
 * carry) and keeps the payload as raw JSON text. */

enum {
    RP_SIO_CONNECT = 0,
    RP_SIO_DISCONNECT = 1,
    RP_SIO_EVENT = 2,
    RP_SIO_ACK = 3,
    RP_SIO_CONNECT_ERROR = 4,
    RP_SIO_BINARY_EVENT = 5,
    RP_SIO_BINARY_ACK = 6,
};

#define RP_SIO_MAX_NSP 256

typedef struct rp_sio_packet {
    int type;
    unsigned attachments;
    const char *nsp; /* "/" when absent */
    size_t nsp_len;
    int64_t id;       /* ack id, -1 when absent */
    const char *data; /* raw JSON, data_len 0 when absent */
    size_t data_len;
} rp_sio_packet_t;

/* Decodes s[0..n) (the pointers in p point into s). Returns 0, or RP_EPROTO for an unknown
 * type, bad attachment count (more than max_attachments included), bad namespace, bad ack id,
 * invalid JSON or a payload the type does not allow. */
int rp_sio_packet_decode(const char *s, size_t n, unsigned max_attachments, rp_sio_packet_t *p);

/* Appends the packet header (type, "N-", "/nsp,", id) to b. Returns 0 or an rp_buf error. */
int rp_sio_packet_encode_header(rp_buf_t *b, int type, unsigned attachments, const char *nsp,
                                size_t nsp_len, int64_t id);

/* Given an EVENT payload (a JSON array), finds the event name element and the arguments that
 * follow it, as the text between the name's comma and the closing bracket ("" when none).
 * Returns 0 or RP_EPROTO. */
int rp_sio_event_split(const char *data, size_t len, const char **name, size_t *name_len,
                       const char **args, size_t *args_len);
/* The text inside an ACK payload's brackets. Returns 0 or RP_EPROTO. */
int rp_sio_ack_args(const char *data, size_t len, const char **args, size_t *args_len);

#endif
