/* SPDX-License-Identifier: MIT */
/* Fuzzes the WebSocket reader (rp_ws_reader_feed) with max_message 4096. The first byte picks
 * where the rest is split in two; the rest is fed once whole and once in those two pieces,
 * and both runs must hand up the same messages and end the same way (a differential oracle
 * for the incremental path). What is handed up must obey the reader's contract: text is
 * complete UTF-8, data messages fit max_message, control payloads are at most 125 bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/utf8.h"
#include "ws/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MESSAGE 4096

struct trace {
    uint64_t hash;
    size_t count;
};

static void mix(struct trace *t, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        t->hash ^= b[i];
        t->hash *= 0x100000001b3ULL;
    }
}

static int on_message(void *ud, unsigned opcode, uint8_t *msg, size_t len)
{
    struct trace *t = ud;
    if (opcode >= RP_WS_OP_CLOSE) {
        if (len > 125 || opcode > RP_WS_OP_PONG)
            abort();
    } else {
        if (len > MAX_MESSAGE || (opcode != RP_WS_OP_TEXT && opcode != RP_WS_OP_BINARY))
            abort();
        if (opcode == RP_WS_OP_TEXT) {
            rp_utf8_t u;
            rp_utf8_init(&u);
            if (rp_utf8_feed(&u, msg, len) < 0 || !rp_utf8_complete(&u))
                abort();
        }
    }
    mix(t, &opcode, sizeof(opcode));
    mix(t, &len, sizeof(len));
    mix(t, msg, len);
    t->count++;
    /* The data is the callee's to modify until it returns. */
    if (len)
        msg[len - 1] ^= 0x5a;
    return 0;
}

/* Feeds in[0..n) in pieces ending at cuts[]; returns the first non-zero result. */
static int run(const uint8_t *in, size_t n, const size_t *cuts, size_t ncuts, struct trace *t,
               int *close_code)
{
    rp_ws_reader_t r;
    rp_ws_reader_init(&r, MAX_MESSAGE, on_message, t);
    int rc = 0;
    size_t start = 0;
    for (size_t i = 0; i < ncuts && rc == 0; i++) {
        size_t len = cuts[i] - start;
        uint8_t *chunk = malloc(len ? len : 1);
        if (chunk == NULL)
            abort();
        memcpy(chunk, in + start, len);
        rc = rp_ws_reader_feed(&r, chunk, len);
        free(chunk);
        start = cuts[i];
    }
    if (rc == 0 && start != n)
        abort();
    *close_code = r.close_code;
    /* on_message never stops the reader, so every failure must come with a close code. */
    if (rc != 0 && (r.close_code == 0 || rc == RP_ESTATE))
        abort();
    rp_ws_reader_deinit(&r);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    size_t split = n ? (size_t)data[0] * (n + 1) / 256 : 0;

    struct trace whole = {0xcbf29ce484222325ULL, 0};
    struct trace parts = {0xcbf29ce484222325ULL, 0};
    int close_whole = 0, close_parts = 0;
    size_t one[1] = {n};
    size_t two[2] = {split, n};
    int rc_whole = run(in, n, one, 1, &whole, &close_whole);
    int rc_parts = run(in, n, two, 2, &parts, &close_parts);
    if (rc_whole != rc_parts || close_whole != close_parts || whole.hash != parts.hash ||
        whole.count != parts.count)
        abort();
    return 0;
}
