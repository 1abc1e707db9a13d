/* SPDX-License-Identifier: MIT */
#ifndef RP_WS_WS_H
#define RP_WS_WS_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/utf8.h"

/* WebSocket (RFC 6455), server side: the opening handshake's accept key, a frame header
 * codec, and a reader that turns received bytes into whole messages.
 *
 * Written here rather than taken from wslay because the reader is push-based over libuv's
 * reads and unmasks in place in the read buffer (a whole frame in one read is never copied),
 * and server frames are unmasked, so one encoded frame is shared by every recipient: the
 * broadcast path needs only rp_ws_frame_header_encode. Codecs never see a socket. */

enum {
    RP_WS_OP_CONT = 0x0,
    RP_WS_OP_TEXT = 0x1,
    RP_WS_OP_BINARY = 0x2,
    RP_WS_OP_CLOSE = 0x8,
    RP_WS_OP_PING = 0x9,
    RP_WS_OP_PONG = 0xA,
};

/* Close codes the reader reports. */
enum {
    RP_WS_CLOSE_NORMAL = 1000,
    RP_WS_CLOSE_GOING_AWAY = 1001,
    RP_WS_CLOSE_PROTOCOL = 1002,
    RP_WS_CLOSE_BAD_DATA = 1007,
    RP_WS_CLOSE_POLICY = 1008,
    RP_WS_CLOSE_TOO_BIG = 1009,
};

/* The largest header rp_ws_frame_header_encode writes. */
#define RP_WS_MAX_HEADER 10

/* Computes Sec-WebSocket-Accept for `key` into out (29 bytes incl. NUL). Returns 0, or
 * RP_EPROTO when key is not 24 base64 characters (16 bytes), as RFC 6455 §4.2.1 requires. */
int rp_ws_accept_key(const char *key, size_t keylen, char out[29]);

/* Writes an unmasked FIN frame header for a payload of len bytes; returns its size (2, 4 or
 * 10). */
size_t rp_ws_frame_header_encode(uint8_t *out, unsigned opcode, uint64_t len);
/* The size rp_ws_frame_header_encode would write. */
static inline size_t rp_ws_frame_header_size(uint64_t len)
{
    return len < 126 ? 2 : len <= 0xFFFF ? 4 : 10;
}

typedef struct rp_ws_frame {
    unsigned fin;
    unsigned opcode;
    unsigned masked;
    uint8_t mask[4];
    uint64_t len;
    size_t header_len;
} rp_ws_frame_t;

/* Decodes a frame header from p[0..n). Returns the header length, RP_EINCOMPLETE, or
 * RP_EPROTO (reserved bits set, unknown opcode, fragmented or over-125-byte control frame,
 * non-minimal or 2^63+ length). */
long rp_ws_frame_header_decode(const uint8_t *p, size_t n, rp_ws_frame_t *f);
/* XORs p[0..n) with mask, starting at mask position `pos`. */
void rp_ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], size_t pos);

/* What a reader hands up: a whole data message (text is valid UTF-8) or a control frame.
 * `data` is mutable and only valid during the call. Returning non-zero stops the reader
 * (it then returns RP_ESTATE from rp_ws_reader_feed; use it when the callee closed). */
typedef int (*rp_ws_message_cb)(void *ud, unsigned opcode, uint8_t *data, size_t len);

typedef struct rp_ws_reader {
    rp_buf_t _partial;    /* bytes of an incomplete frame */
    rp_buf_t _message;    /* payload of a fragmented message being assembled */
    unsigned _msg_opcode; /* opcode of the message being assembled, 0 if none */
    rp_utf8_t _utf8;
    size_t _max_message;
    rp_ws_message_cb _on_message;
    void *_ud;
    int close_code; /* set when feed fails: the code to close with */
} rp_ws_reader_t;

void rp_ws_reader_init(rp_ws_reader_t *r, size_t max_message, rp_ws_message_cb cb, void *ud);
void rp_ws_reader_deinit(rp_ws_reader_t *r);
/* Consumes received bytes (modified in place: unmasking). Returns 0; RP_EPROTO, RP_ETOOBIG or
 * UV_ENOMEM with r->close_code set (the caller closes with that code); or RP_ESTATE when a
 * callback stopped it. Client frames must be masked (§5.1). */
int rp_ws_reader_feed(rp_ws_reader_t *r, uint8_t *data, size_t len);

/* Writes a close frame with `code` (and no reason) into out (4 bytes); returns 4. */
size_t rp_ws_close_frame(uint8_t out[4], unsigned code);

/* True for a close code a peer may put on the wire (RFC 6455 section 7.4 and the IANA
 * registry): 1000-1003, 1007-1014 and 3000-4999. 1004 is reserved, 1005, 1006 and 1015 are
 * only reported locally, never sent, and below 1000, 1016-2999 and 5000 up are not codes. The
 * reader refuses a close frame with any other code (RP_EPROTO, close_code 1002). */
int rp_ws_close_code_valid(unsigned code);
/* The close frame answering a peer's close payload p[0..len) that the reader delivered: its
 * code echoed (RFC 6455 section 5.5.1), or 1000 when it carried none. Returns 4. */
size_t rp_ws_close_reply(uint8_t out[4], const uint8_t *p, size_t len);

#endif
