/* SPDX-License-Identifier: MIT */
/* Fuzzes the decoders of the Redis cluster wire (src/cluster/entry.c), which read whatever
 * anyone with access to the Redis wrote. The first byte picks the decoder: even, a stream
 * entry (the rest split at '\n' into field, value, field, value...) and, when it has JSON
 * data, its BROADCAST; odd, a stored recovery session (base64 text). Oracles: a decoded
 * broadcast re-encodes to valid JSON that decodes to the same rooms and arguments; a decoded
 * session re-encodes and decodes to the same sid, pid and rooms. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/entry.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_bcast(const char *d, size_t n, const char *nsp, size_t nsp_len)
{
    rp_buf_t names, out, names2;
    rp_buf_init(&names, 1 << 20);
    rp_buf_init(&out, 1 << 22);
    rp_buf_init(&names2, 1 << 20);
    rp_redis_bcast_t b, b2;
    if (rp_redis_bcast_decode(d, n, nsp, nsp_len, &names, &b) == 0) {
        if (rp_json_validate(b.args, b.args_len) != 0 || b.name == NULL)
            abort();
        if (rp_redis_bcast_encode(&out, nsp, nsp_len, b.args, b.args_len, b.rooms, b.nrooms,
                                  b.except, b.nexcept) == 0) {
            if (rp_json_validate(out.data, out.len) != 0)
                abort();
            if (rp_redis_bcast_decode(out.data, out.len, nsp, nsp_len, &names2, &b2) != 0 ||
                b2.nrooms != b.nrooms || b2.nexcept != b.nexcept || b2.args_len != b.args_len ||
                strcmp(b2.name, b.name) != 0)
                abort();
            for (size_t i = 0; i < b.nrooms; i++)
                if (strcmp(b.rooms[i], b2.rooms[i]) != 0)
                    abort();
        }
    }
    rp_buf_deinit(&names);
    rp_buf_deinit(&out);
    rp_buf_deinit(&names2);
}

static void fuzz_session(const char *d, size_t n)
{
    rp_buf_t names, out, names2;
    rp_buf_init(&names, 1 << 20);
    rp_buf_init(&out, 1 << 22);
    rp_buf_init(&names2, 1 << 20);
    rp_redis_session_t s, s2;
    if (rp_redis_session_decode(d, n, &names, &s) == 0) {
        if (rp_redis_session_encode(&out, s.pid, s.sid, s.nsp, s.rooms, s.nrooms) != 0 ||
            rp_redis_session_decode(out.data, out.len, &names2, &s2) != 0 ||
            strcmp(s.sid, s2.sid) != 0 || strcmp(s.pid, s2.pid) != 0 ||
            strcmp(s.nsp, s2.nsp) != 0 || s.nrooms != s2.nrooms)
            abort();
        for (size_t i = 0; i < s.nrooms; i++)
            if (strcmp(s.rooms[i], s2.rooms[i]) != 0)
                abort();
    }
    rp_buf_deinit(&names);
    rp_buf_deinit(&out);
    rp_buf_deinit(&names2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *d = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] & 1) {
        fuzz_session(d, n);
        return 0;
    }
    const char *f[64];
    size_t l[64];
    size_t nf = 0, start = 0;
    for (size_t i = 0; i <= n && nf < 64; i++) {
        if (i == n || d[i] == '\n') {
            f[nf] = d + start;
            l[nf++] = i - start;
            start = i + 1;
        }
    }
    rp_redis_entry_t e;
    if (rp_redis_entry_decode(f, l, nf / 2, &e) == 0 && e.data && e.data_len && e.data[0] == '{')
        fuzz_bcast(e.data, e.data_len, e.nsp, e.nsp_len);
    return 0;
}
