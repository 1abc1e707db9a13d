/* SPDX-License-Identifier: MIT */
#ifndef RP_EIO_PACKET_H
#define RP_EIO_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/sbuf.h"

/* Engine.IO v4 packets: the outgoing form shared by every recipient, and the decoders of
 * what clients send (a text packet, a polling payload). */

enum {
    RP_EIO_OPEN = '0',
    RP_EIO_CLOSE = '1',
    RP_EIO_PING = '2',
    RP_EIO_PONG = '3',
    RP_EIO_MESSAGE = '4',
    RP_EIO_UPGRADE = '5',
    RP_EIO_NOOP = '6',
};

/* Room reserved in front of an encoded packet for its WebSocket frame header. */
#define RP_EIO_HEADROOM 10

/* One outgoing packet framed once per transport: ws[ws_off..] is a whole WebSocket frame,
 * poll[poll_off..] is the packet as a polling payload item. For a text packet both are the
 * same block (the poll form starts after the frame header); binary has two blocks (raw bytes,
 * "b"+base64). Each pointer holds one reference. */
typedef struct rp_eio_packet {
    rp_sbuf_t *ws;
    uint32_t ws_off;
    rp_sbuf_t *poll;
    uint32_t poll_off;
} rp_eio_packet_t;

/* Builds a text packet: type character then data[0..len). Returns 0 or UV_ENOMEM. */
int rp_eio_packet_text(rp_eio_packet_t *p, char type, const char *data, size_t len);
/* Builds a text packet from b, whose first RP_EIO_HEADROOM bytes are reserved and whose
 * next byte is the packet type. Takes b's memory (b is left empty). Returns 0, RP_EPROTO when
 * b holds nothing past the headroom (no type byte), or UV_ENOMEM; after an error b is still
 * the caller's. */
int rp_eio_packet_from_buf(rp_eio_packet_t *p, rp_buf_t *b);
/* Builds a binary message packet. Returns 0 or UV_ENOMEM. */
int rp_eio_packet_binary(rp_eio_packet_t *p, const void *data, size_t len);
/* A second reference to the same packet. */
static inline void rp_eio_packet_ref(rp_eio_packet_t *dst, const rp_eio_packet_t *src)
{
    *dst = *src;
    rp_sbuf_ref(dst->ws);
    rp_sbuf_ref(dst->poll);
}
void rp_eio_packet_release(rp_eio_packet_t *p);

/* A received packet. Binary packets have type RP_EIO_MESSAGE. */
typedef struct rp_eio_in {
    int binary;
    char type;
    char *data;
    size_t len;
} rp_eio_in_t;

/* Decodes a text packet (from a WebSocket text frame or a polling item). Returns 0 or
 * RP_EPROTO (empty, or an unknown type character). */
int rp_eio_text_decode(char *s, size_t n, rp_eio_in_t *pkt);

/* Iterates a polling payload (items joined by \x1e; "b"+base64 is binary, decoded in place).
 * Start with *cursor at the payload's first byte. Returns 1 with the next packet, 0 at the
 * end, RP_EPROTO for a bad or empty item (so an empty payload is refused). */
int rp_eio_payload_next(char **cursor, char *end, rp_eio_in_t *pkt);

#endif
