/* SPDX-License-Identifier: MIT */
/* Engine.IO packet encoding (framed once, shared) and decoding (in place). */
#include "eio/packet.h"

#include <string.h>
#include <uv.h>

#include "util/alloc.h"
#include "util/base64.h"
#include "util/err.h"
#include "ws/ws.h"

/* Writes the WebSocket header right before data at `payload_off` and returns its start. */
static uint32_t frame_in_place(char *data, uint32_t payload_off, size_t len, unsigned opcode)
{
    uint8_t hdr[RP_WS_MAX_HEADER];
    size_t h = rp_ws_frame_header_encode(hdr, opcode, len);
    memcpy(data + payload_off - h, hdr, h);
    return payload_off - (uint32_t)h;
}

int rp_eio_packet_text(rp_eio_packet_t *p, char type, const char *data, size_t len)
{
    rp_sbuf_t *sb = rp_sbuf_new(RP_EIO_HEADROOM + 1 + len);
    if (sb == NULL)
        return UV_ENOMEM;
    sb->data[RP_EIO_HEADROOM] = type;
    if (len)
        memcpy(sb->data + RP_EIO_HEADROOM + 1, data, len);
    sb->len = (uint32_t)(RP_EIO_HEADROOM + 1 + len);
    p->ws = sb;
    p->ws_off = frame_in_place(sb->data, RP_EIO_HEADROOM, 1 + len, RP_WS_OP_TEXT);
    p->poll = rp_sbuf_ref(sb);
    p->poll_off = RP_EIO_HEADROOM;
    return 0;
}

int rp_eio_packet_from_buf(rp_eio_packet_t *p, rp_buf_t *b)
{
    if (b->len <= RP_EIO_HEADROOM)
        return RP_EPROTO;
    rp_sbuf_t *sb = rp_sbuf_adopt(b->data, b->len);
    if (sb == NULL)
        return UV_ENOMEM;
    size_t len = b->len - RP_EIO_HEADROOM;
    b->data = NULL;
    b->len = b->cap = 0;
    p->ws = sb;
    p->ws_off = frame_in_place(sb->data, RP_EIO_HEADROOM, len, RP_WS_OP_TEXT);
    p->poll = rp_sbuf_ref(sb);
    p->poll_off = RP_EIO_HEADROOM;
    return 0;
}

int rp_eio_packet_binary(rp_eio_packet_t *p, const void *data, size_t len)
{
    rp_sbuf_t *ws = rp_sbuf_new(RP_EIO_HEADROOM + len);
    rp_sbuf_t *poll = rp_sbuf_new(1 + rp_base64_encoded_len(len));
    if (ws == NULL || poll == NULL) {
        if (ws)
            rp_sbuf_unref(ws);
        if (poll)
            rp_sbuf_unref(poll);
        return UV_ENOMEM;
    }
    if (len)
        memcpy(ws->data + RP_EIO_HEADROOM, data, len);
    ws->len = (uint32_t)(RP_EIO_HEADROOM + len);
    p->ws = ws;
    p->ws_off = frame_in_place(ws->data, RP_EIO_HEADROOM, len, RP_WS_OP_BINARY);
    poll->data[0] = 'b';
    poll->len = (uint32_t)(1 + rp_base64_encode(data, len, poll->data + 1));
    p->poll = poll;
    p->poll_off = 0;
    return 0;
}

void rp_eio_packet_release(rp_eio_packet_t *p)
{
    if (p->ws)
        rp_sbuf_unref(p->ws);
    if (p->poll)
        rp_sbuf_unref(p->poll);
    p->ws = p->poll = NULL;
}

int rp_eio_text_decode(char *s, size_t n, rp_eio_in_t *pkt)
{
    if (n == 0 || s[0] < RP_EIO_OPEN || s[0] > RP_EIO_NOOP)
        return RP_EPROTO;
    pkt->binary = 0;
    pkt->type = s[0];
    pkt->data = s + 1;
    pkt->len = n - 1;
    return 0;
}

int rp_eio_payload_next(char **cursor, char *end, rp_eio_in_t *pkt)
{
    char *p = *cursor;
    if (p == NULL)
        return 0;
    char *sep = memchr(p, '\x1e', (size_t)(end - p));
    char *item_end = sep ? sep : end;
    *cursor = sep ? sep + 1 : NULL;
    size_t n = (size_t)(item_end - p);
    if (n == 0)
        return RP_EPROTO;
    if (p[0] == 'b') {
        long len = rp_base64_decode(p + 1, n - 1, (unsigned char *)p);
        if (len < 0)
            return RP_EPROTO;
        pkt->binary = 1;
        pkt->type = RP_EIO_MESSAGE;
        pkt->data = p;
        pkt->len = (size_t)len;
        return 1;
    }
    int rc = rp_eio_text_decode(p, n, pkt);
    return rc < 0 ? rc : 1;
}
