/* SPDX-License-Identifier: MIT */
/* Fuzzes the Engine.IO decoders of client input: rp_eio_payload_next over a mutable copy of
 * the input as a polling payload (items joined by \x1e, "b"+base64 decoded in place), and
 * rp_eio_text_decode of the input as one WebSocket text packet. Every packet handed back
 * must lie inside the buffer, and a binary one can only shrink its item. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eio/packet.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *copy(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        abort();
    if (size)
        memcpy(buf, data, size);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = copy(data, size);
    char *end = buf + size;
    char *cursor = buf;
    rp_eio_in_t pkt;
    int rc;
    size_t items = 0;
    while ((rc = rp_eio_payload_next(&cursor, end, &pkt)) == 1) {
        if (pkt.data < buf || pkt.len > (size_t)(end - pkt.data))
            abort();
        if (pkt.binary ? pkt.type != RP_EIO_MESSAGE
                       : (pkt.type < RP_EIO_OPEN || pkt.type > RP_EIO_NOOP))
            abort();
        if (cursor != NULL && (cursor <= pkt.data || cursor > end))
            abort();
        if (++items > size + 1)
            abort(); /* each item uses at least one byte */
    }
    if (rc != 0 && rc != RP_EPROTO)
        abort();
    free(buf);

    buf = copy(data, size);
    if (rp_eio_text_decode(buf, size, &pkt) == 0) {
        if (size == 0 || pkt.data != buf + 1 || pkt.len != size - 1 || pkt.binary)
            abort();
    }
    free(buf);
    return 0;
}
