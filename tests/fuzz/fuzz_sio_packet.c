/* SPDX-License-Identifier: MIT */
/* Fuzzes the Socket.IO packet decoder (rp_sio_packet_decode, max 10 attachments) and, for
 * packets it accepts, rp_sio_event_split / rp_sio_ack_args on the payload. Oracles: every
 * span lies inside the input; an accepted EVENT or ACK payload always splits and its name,
 * once JSON-decoded, is never a reserved one; and a packet re-encoded with
 * rp_sio_packet_encode_header + its payload decodes to the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sio/packet.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ATTACHMENTS 10

static const char *const reserved[] = {
    "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
};

static int inside(const char *p, size_t n, const char *s, size_t size)
{
    return p >= s && n <= size && (size_t)(p - s) <= size - n;
}

static int same_span(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);
    if (s == NULL)
        abort();
    if (size)
        memcpy(s, data, size);
    rp_sio_packet_t p;
    int rc = rp_sio_packet_decode(s, size, MAX_ATTACHMENTS, &p);
    if (rc != 0) {
        if (rc != RP_EPROTO)
            abort();
        free(s);
        return 0;
    }
    if (p.type < RP_SIO_CONNECT || p.type > RP_SIO_BINARY_ACK || p.attachments > MAX_ATTACHMENTS)
        abort();
    if (!(p.nsp_len == 1 && p.nsp[0] == '/') && !inside(p.nsp, p.nsp_len, s, size))
        abort();
    if (p.nsp_len == 0 || p.nsp[0] != '/' || p.nsp_len > RP_SIO_MAX_NSP)
        abort();
    if (p.data_len && !inside(p.data, p.data_len, s, size))
        abort();

    const char *name, *args;
    size_t name_len, args_len;
    if (p.type == RP_SIO_EVENT || p.type == RP_SIO_BINARY_EVENT) {
        if (rp_sio_event_split(p.data, p.data_len, &name, &name_len, &args, &args_len) != 0)
            abort();
        if (!inside(name, name_len, p.data, p.data_len) ||
            (args_len && !inside(args, args_len, p.data, p.data_len)))
            abort();
        /* socket.io-parser refuses reserved names after JSON.parse, so escapes count. */
        if (name[0] == '"') {
            rp_buf_t dec;
            rp_buf_init(&dec, 1 << 16);
            if (rp_json_string_decode(name, name_len, &dec) == 0) {
                for (size_t i = 0; i < sizeof(reserved) / sizeof(*reserved); i++)
                    if (dec.len == strlen(reserved[i]) &&
                        memcmp(dec.data, reserved[i], dec.len) == 0)
                        abort();
            }
            rp_buf_deinit(&dec);
        }
    } else if (p.type == RP_SIO_ACK || p.type == RP_SIO_BINARY_ACK) {
        if (rp_sio_ack_args(p.data, p.data_len, &args, &args_len) != 0)
            abort();
        if (args_len && !inside(args, args_len, p.data, p.data_len))
            abort();
    }

    /* Round trip through the encoder. */
    rp_buf_t b;
    rp_buf_init(&b, size + 64);
    if (rp_sio_packet_encode_header(&b, p.type, p.attachments, p.nsp, p.nsp_len, p.id) != 0 ||
        rp_buf_append(&b, p.data ? p.data : "", p.data_len) != 0)
        abort();
    rp_sio_packet_t q;
    if (rp_sio_packet_decode(b.data, b.len, MAX_ATTACHMENTS, &q) != 0)
        abort();
    if (q.type != p.type || q.attachments != p.attachments || q.id != p.id ||
        !same_span(q.nsp, q.nsp_len, p.nsp, p.nsp_len) ||
        !same_span(q.data, q.data_len, p.data, p.data_len))
        abort();
    rp_buf_deinit(&b);
    free(s);
    return 0;
}
