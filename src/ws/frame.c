/* SPDX-License-Identifier: MIT */
/* WebSocket frames and the message reader. The reader's invariant: r->_partial holds the
 * start of at most one incomplete frame; everything before it has been handed up. A frame
 * that arrives whole is unmasked and handed up where it lies; only a message split into
 * fragments is assembled in r->_message. */
#include <string.h>
#include <uv.h>

#include "util/err.h"
#include "ws/ws.h"

size_t rp_ws_frame_header_encode(uint8_t *out, unsigned opcode, uint64_t len)
{
    out[0] = (uint8_t)(0x80 | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

size_t rp_ws_close_frame(uint8_t out[4], unsigned code)
{
    out[0] = 0x80 | RP_WS_OP_CLOSE;
    out[1] = 2;
    out[2] = (uint8_t)(code >> 8);
    out[3] = (uint8_t)code;
    return 4;
}

int rp_ws_close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

size_t rp_ws_close_reply(uint8_t out[4], const uint8_t *p, size_t len)
{
    return rp_ws_close_frame(out, len >= 2 ? (unsigned)p[0] << 8 | p[1] : RP_WS_CLOSE_NORMAL);
}

long rp_ws_frame_header_decode(const uint8_t *p, size_t n, rp_ws_frame_t *f)
{
    if (n < 2)
        return RP_EINCOMPLETE;
    if (p[0] & 0x70)
        return RP_EPROTO; /* RSV1-3: no extension was negotiated */
    f->fin = p[0] >> 7;
    f->opcode = p[0] & 0x0F;
    f->masked = p[1] >> 7;
    uint64_t len = p[1] & 0x7F;
    size_t h = 2;
    switch (f->opcode) {
    case RP_WS_OP_CONT:
    case RP_WS_OP_TEXT:
    case RP_WS_OP_BINARY:
        break;
    case RP_WS_OP_CLOSE:
    case RP_WS_OP_PING:
    case RP_WS_OP_PONG:
        if (!f->fin || len > 125)
            return RP_EPROTO;
        break;
    default:
        return RP_EPROTO;
    }
    if (len == 126) {
        if (n < 4)
            return RP_EINCOMPLETE;
        len = (uint64_t)p[2] << 8 | p[3];
        if (len < 126)
            return RP_EPROTO;
        h = 4;
    } else if (len == 127) {
        if (n < 10)
            return RP_EINCOMPLETE;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        if (len <= 0xFFFF || len >> 63)
            return RP_EPROTO;
        h = 10;
    }
    if (f->masked) {
        if (n < h + 4)
            return RP_EINCOMPLETE;
        memcpy(f->mask, p + h, 4);
        h += 4;
    }
    f->len = len;
    f->header_len = h;
    return (long)h;
}

void rp_ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], size_t pos)
{
    size_t i = 0;
    /* Align to the mask, then do 8 bytes at a time. */
    for (; i < n && (pos + i) % 4; i++)
        p[i] ^= mask[(pos + i) % 4];
    uint64_t m8;
    uint8_t mb[8] = {mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3]};
    memcpy(&m8, mb, 8);
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= m8;
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++)
        p[i] ^= mask[(pos + i) % 4];
}

void rp_ws_reader_init(rp_ws_reader_t *r, size_t max_message, rp_ws_message_cb cb, void *ud)
{
    rp_buf_init(&r->_partial, max_message + 14 + 65536); /* one frame plus one read */
    rp_buf_init(&r->_message, max_message);
    r->_msg_opcode = 0;
    rp_utf8_init(&r->_utf8);
    r->_max_message = max_message;
    r->_on_message = cb;
    r->_ud = ud;
    r->close_code = 0;
}

void rp_ws_reader_deinit(rp_ws_reader_t *r)
{
    rp_buf_deinit(&r->_partial);
    rp_buf_deinit(&r->_message);
}

static int fail(rp_ws_reader_t *r, int code, int err)
{
    r->close_code = code;
    return err;
}

/* Handles one complete, unmasked frame. */
static int on_frame(rp_ws_reader_t *r, const rp_ws_frame_t *f, uint8_t *payload)
{
    size_t len = (size_t)f->len;
    if (f->opcode >= RP_WS_OP_CLOSE) {
        if (f->opcode == RP_WS_OP_CLOSE) {
            /* No payload ("no status", 1005 to the application) is fine; one byte, or a code
             * that may not be sent, is a protocol error (RFC 6455 sections 5.5.1, 7.4). */
            if (len == 1 ||
                (len >= 2 && !rp_ws_close_code_valid((unsigned)payload[0] << 8 | payload[1])))
                return fail(r, RP_WS_CLOSE_PROTOCOL, RP_EPROTO);
            rp_utf8_t u;
            rp_utf8_init(&u);
            if (len > 2 && (rp_utf8_feed(&u, payload + 2, len - 2) < 0 || !rp_utf8_complete(&u)))
                return fail(r, RP_WS_CLOSE_BAD_DATA, RP_EPROTO);
        }
        return r->_on_message(r->_ud, f->opcode, payload, len) ? RP_ESTATE : 0;
    }
    if (f->opcode == RP_WS_OP_CONT) {
        if (r->_msg_opcode == 0)
            return fail(r, RP_WS_CLOSE_PROTOCOL, RP_EPROTO);
    } else {
        if (r->_msg_opcode != 0)
            return fail(r, RP_WS_CLOSE_PROTOCOL, RP_EPROTO);
        r->_msg_opcode = f->opcode;
        rp_utf8_init(&r->_utf8);
    }
    if (r->_msg_opcode == RP_WS_OP_TEXT) {
        if (rp_utf8_feed(&r->_utf8, payload, len) < 0 || (f->fin && !rp_utf8_complete(&r->_utf8)))
            return fail(r, RP_WS_CLOSE_BAD_DATA, RP_EPROTO);
    }
    unsigned opcode = r->_msg_opcode;
    if (f->fin && f->opcode != RP_WS_OP_CONT) {
        /* The common case: a whole message in one frame, handed up where it lies. */
        r->_msg_opcode = 0;
        return r->_on_message(r->_ud, opcode, payload, len) ? RP_ESTATE : 0;
    }
    int rc = rp_buf_append(&r->_message, payload, len);
    if (rc < 0)
        return fail(r, rc == RP_ETOOBIG ? RP_WS_CLOSE_TOO_BIG : RP_WS_CLOSE_GOING_AWAY, rc);
    if (!f->fin)
        return 0;
    r->_msg_opcode = 0;
    int stop = r->_on_message(r->_ud, opcode, (uint8_t *)r->_message.data, r->_message.len);
    rc = stop ? RP_ESTATE : 0;
    if (rc == 0)
        rp_buf_deinit(&r->_message);
    return rc;
}

/* Parses frames from p[0..n); returns bytes consumed (all complete frames) or an error. */
static long parse(rp_ws_reader_t *r, uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n) {
        rp_ws_frame_t f;
        long h = rp_ws_frame_header_decode(p + off, n - off, &f);
        if (h == RP_EINCOMPLETE)
            break;
        if (h < 0)
            return fail(r, RP_WS_CLOSE_PROTOCOL, RP_EPROTO);
        if (!f.masked)
            return fail(r, RP_WS_CLOSE_PROTOCOL, RP_EPROTO);
        /* Control frames (<= 125 bytes) never count toward the message being assembled. */
        if (f.len > r->_max_message ||
            (f.opcode < RP_WS_OP_CLOSE && r->_message.len + f.len > r->_max_message))
            return fail(r, RP_WS_CLOSE_TOO_BIG, RP_ETOOBIG);
        if (n - off - (size_t)h < f.len)
            break;
        uint8_t *payload = p + off + h;
        rp_ws_unmask(payload, (size_t)f.len, f.mask, 0);
        int rc = on_frame(r, &f, payload);
        if (rc < 0)
            return rc;
        off += (size_t)h + (size_t)f.len;
    }
    return (long)off;
}

int rp_ws_reader_feed(rp_ws_reader_t *r, uint8_t *data, size_t len)
{
    if (r->_partial.len == 0) {
        long used = parse(r, data, len);
        if (used < 0)
            return (int)used;
        if ((size_t)used < len) {
            int rc = rp_buf_append(&r->_partial, data + used, len - (size_t)used);
            if (rc < 0)
                return fail(r, RP_WS_CLOSE_TOO_BIG, rc);
        }
        return 0;
    }
    int rc = rp_buf_append(&r->_partial, data, len);
    if (rc < 0)
        return fail(r, RP_WS_CLOSE_TOO_BIG, rc);
    long used = parse(r, (uint8_t *)r->_partial.data, r->_partial.len);
    if (used < 0)
        return (int)used;
    if ((size_t)used == r->_partial.len)
        rp_buf_deinit(&r->_partial);
    else
        rp_buf_consume(&r->_partial, (size_t)used);
    return 0;
}
