/* SPDX-License-Identifier: MIT */
/* ws/frame: the header codec and the push reader. Frames are RFC 6455 §5.7's examples (masked
 * with that section's key 37 fa 21 3d where a client must mask). Every reader case is fed
 * whole, split in two at every offset, and one byte per call, and must hand up the same
 * messages and fail with the same close code each way; each chunk is an exact-size heap copy
 * so a read past it is an ASan error (wslay's tests do the same splitting). */
#include "unit.h"

#include <uv.h>

#include "util/alloc.h"
#include "util/err.h"
#include "ws/ws.h"

static const uint8_t rfc_mask[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Writes a masked client frame; returns its length. */
static size_t client_frame(uint8_t *out, int fin, unsigned opcode, const void *payload, size_t len)
{
    size_t h = 0;
    out[h++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    if (len < 126) {
        out[h++] = (uint8_t)(0x80 | len);
    } else if (len <= 0xFFFF) {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    } else {
        out[h++] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            out[h++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    memcpy(out + h, rfc_mask, 4);
    h += 4;
    for (size_t i = 0; i < len; i++)
        out[h + i] = ((const uint8_t *)payload)[i] ^ rfc_mask[i % 4];
    return h + len;
}

/* ---- header codec ---------------------------------------------------------------------- */

static void encodes_header_for_each_length_form(void **state)
{
    (void)state;
    static const struct {
        uint64_t len;
        size_t size;
        uint8_t bytes[10];
    } cases[] = {
        {0, 2, {0x81, 0x00}},
        {5, 2, {0x81, 0x05}},
        {125, 2, {0x81, 0x7d}},
        {126, 4, {0x81, 0x7e, 0x00, 0x7e}},
        {256, 4, {0x81, 0x7e, 0x01, 0x00}},
        {65535, 4, {0x81, 0x7e, 0xff, 0xff}},
        {65536, 10, {0x81, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}},
        {0x123456789aULL, 10, {0x81, 0x7f, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0x9a}},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        uint8_t out[RP_WS_MAX_HEADER + 1];
        memset(out, 0xee, sizeof(out));
        size_t n = rp_ws_frame_header_encode(out, RP_WS_OP_TEXT, cases[i].len);
        assert_int_equal(n, cases[i].size);
        assert_int_equal(rp_ws_frame_header_size(cases[i].len), cases[i].size);
        assert_memory_equal(out, cases[i].bytes, n);
        assert_int_equal(out[n], 0xee);
        /* And it decodes back (an unmasked server frame). */
        rp_ws_frame_t f;
        assert_int_equal(rp_ws_frame_header_decode(out, n, &f), (long)n);
        assert_int_equal(f.fin, 1);
        assert_int_equal(f.opcode, RP_WS_OP_TEXT);
        assert_int_equal(f.masked, 0);
        assert_int_equal(f.len, cases[i].len);
        assert_int_equal(f.header_len, n);
    }
    uint8_t out[RP_WS_MAX_HEADER];
    assert_int_equal(rp_ws_frame_header_encode(out, RP_WS_OP_BINARY, 3), 2);
    assert_int_equal(out[0], 0x82);
    assert_int_equal(rp_ws_frame_header_encode(out, RP_WS_OP_PONG, 0), 2);
    assert_int_equal(out[0], 0x8a);
}

static void encodes_close_frame(void **state)
{
    (void)state;
    uint8_t out[4];
    assert_int_equal(rp_ws_close_frame(out, RP_WS_CLOSE_PROTOCOL), 4);
    static const uint8_t want[] = {0x88, 0x02, 0x03, 0xea};
    assert_memory_equal(out, want, 4);
    assert_int_equal(rp_ws_close_frame(out, RP_WS_CLOSE_TOO_BIG), 4);
    assert_int_equal(out[2] << 8 | out[3], 1009);
}

static void decodes_rfc6455_example_headers(void **state)
{
    (void)state;
    static const struct {
        uint8_t bytes[14];
        size_t n;
        unsigned fin, opcode, masked;
        uint64_t len;
        size_t hlen;
    } cases[] = {
        /* A single-frame unmasked text message */
        {{0x81, 0x05}, 2, 1, RP_WS_OP_TEXT, 0, 5, 2},
        /* A single-frame masked text message */
        {{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d}, 6, 1, RP_WS_OP_TEXT, 1, 5, 6},
        /* A fragmented unmasked text message */
        {{0x01, 0x03}, 2, 0, RP_WS_OP_TEXT, 0, 3, 2},
        {{0x80, 0x02}, 2, 1, RP_WS_OP_CONT, 0, 2, 2},
        /* Unmasked Ping and masked Pong */
        {{0x89, 0x05}, 2, 1, RP_WS_OP_PING, 0, 5, 2},
        {{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d}, 6, 1, RP_WS_OP_PONG, 1, 5, 6},
        /* 256 bytes binary message in a single unmasked frame */
        {{0x82, 0x7e, 0x01, 0x00}, 4, 1, RP_WS_OP_BINARY, 0, 256, 4},
        /* 64KiB binary message in a single unmasked frame */
        {{0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}, 10, 1, RP_WS_OP_BINARY, 0, 65536, 10},
        /* The same, masked */
        {{0x82, 0xff, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00, 1, 2, 3, 4},
         14,
         1,
         RP_WS_OP_BINARY,
         1,
         65536,
         14},
        /* Close with no payload */
        {{0x88, 0x80, 1, 2, 3, 4}, 6, 1, RP_WS_OP_CLOSE, 1, 0, 6},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        rp_ws_frame_t f;
        uint8_t *p = (uint8_t *)dup_exact(cases[i].bytes, cases[i].n);
        assert_int_equal(rp_ws_frame_header_decode(p, cases[i].n, &f), (long)cases[i].hlen);
        assert_int_equal(f.fin, cases[i].fin);
        assert_int_equal(f.opcode, cases[i].opcode);
        assert_int_equal(f.masked, cases[i].masked);
        assert_int_equal(f.len, cases[i].len);
        assert_int_equal(f.header_len, cases[i].hlen);
        if (f.masked)
            assert_memory_equal(f.mask, cases[i].bytes + cases[i].hlen - 4, 4);
        free(p);
        /* Every proper prefix is incomplete, never an error, never read past. */
        for (size_t k = 0; k < cases[i].n; k++) {
            p = (uint8_t *)dup_exact(cases[i].bytes, k);
            assert_int_equal(rp_ws_frame_header_decode(p, k, &f), RP_EINCOMPLETE);
            free(p);
        }
    }
}

static long decode_bytes(const uint8_t *bytes, size_t n)
{
    rp_ws_frame_t f;
    uint8_t *p = (uint8_t *)dup_exact(bytes, n);
    long r = rp_ws_frame_header_decode(p, n, &f);
    free(p);
    return r;
}

static void header_decode_rejects_reserved_bits(void **state)
{
    (void)state;
    static const uint8_t rsv[] = {0x40, 0x20, 0x10, 0x70};
    for (size_t i = 0; i < ARRAY_LEN(rsv); i++) {
        uint8_t b[6] = {(uint8_t)(0x81 | rsv[i]), 0x85, 0x37, 0xfa, 0x21, 0x3d};
        assert_int_equal(decode_bytes(b, sizeof(b)), RP_EPROTO);
        assert_int_equal(decode_bytes(b, 2), RP_EPROTO); /* known from the first two bytes */
    }
}

static void header_decode_rejects_unknown_opcodes(void **state)
{
    (void)state;
    static const uint8_t ops[] = {0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf};
    for (size_t i = 0; i < ARRAY_LEN(ops); i++) {
        uint8_t b[6] = {(uint8_t)(0x80 | ops[i]), 0x80, 1, 2, 3, 4};
        assert_int_equal(decode_bytes(b, sizeof(b)), RP_EPROTO);
    }
}

static void header_decode_rejects_fragmented_control_frames(void **state)
{
    (void)state;
    static const uint8_t ops[] = {RP_WS_OP_CLOSE, RP_WS_OP_PING, RP_WS_OP_PONG};
    for (size_t i = 0; i < ARRAY_LEN(ops); i++) {
        uint8_t b[6] = {ops[i], 0x80, 1, 2, 3, 4}; /* FIN clear */
        assert_int_equal(decode_bytes(b, sizeof(b)), RP_EPROTO);
    }
}

static void header_decode_rejects_control_payload_over_125(void **state)
{
    (void)state;
    uint8_t ping126[] = {0x89, 0xfe, 0x00, 0x7e, 1, 2, 3, 4};
    assert_int_equal(decode_bytes(ping126, sizeof(ping126)), RP_EPROTO);
    uint8_t close127[] = {0x88, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4};
    assert_int_equal(decode_bytes(close127, sizeof(close127)), RP_EPROTO);
    uint8_t pong126[] = {0x8a, 0x7e, 0x00, 0x7e};
    assert_int_equal(decode_bytes(pong126, sizeof(pong126)), RP_EPROTO);
    uint8_t ping125[] = {0x89, 0xfd, 1, 2, 3, 4};
    assert_int_equal(decode_bytes(ping125, sizeof(ping125)), 6);
}

static void header_decode_rejects_non_minimal_lengths(void **state)
{
    (void)state;
    uint8_t len16_0[] = {0x82, 0xfe, 0x00, 0x00, 1, 2, 3, 4};
    uint8_t len16_125[] = {0x82, 0xfe, 0x00, 0x7d, 1, 2, 3, 4};
    uint8_t len64_0[] = {0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    uint8_t len64_125[] = {0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x7d, 1, 2, 3, 4};
    uint8_t len64_65535[] = {0x82, 0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4};
    assert_int_equal(decode_bytes(len16_0, sizeof(len16_0)), RP_EPROTO);
    assert_int_equal(decode_bytes(len16_125, sizeof(len16_125)), RP_EPROTO);
    assert_int_equal(decode_bytes(len64_0, sizeof(len64_0)), RP_EPROTO);
    assert_int_equal(decode_bytes(len64_125, sizeof(len64_125)), RP_EPROTO);
    assert_int_equal(decode_bytes(len64_65535, sizeof(len64_65535)), RP_EPROTO);
    uint8_t len16_126[] = {0x82, 0xfe, 0x00, 0x7e, 1, 2, 3, 4};
    uint8_t len64_65536[] = {0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4};
    assert_int_equal(decode_bytes(len16_126, sizeof(len16_126)), 8);
    assert_int_equal(decode_bytes(len64_65536, sizeof(len64_65536)), 14);
}

static void header_decode_rejects_length_with_msb_set(void **state)
{
    (void)state;
    uint8_t msb[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    uint8_t all[] = {0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4};
    assert_int_equal(decode_bytes(msb, sizeof(msb)), RP_EPROTO);
    assert_int_equal(decode_bytes(all, sizeof(all)), RP_EPROTO);
    uint8_t max[] = {0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4};
    rp_ws_frame_t f;
    assert_int_equal(rp_ws_frame_header_decode(max, sizeof(max), &f), 14);
    assert_int_equal(f.len, 0x7fffffffffffffffULL);
}

static void unmask_matches_bytewise_xor_at_any_position(void **state)
{
    (void)state;
    uint8_t ref[80], got[88];
    for (size_t len = 0; len <= 70; len++) {
        for (size_t pos = 0; pos < 8; pos++) {
            for (size_t align = 0; align < 8; align++) {
                for (size_t i = 0; i < len; i++)
                    ref[i] = (uint8_t)(i * 31 + 7);
                memcpy(got + align, ref, len);
                for (size_t i = 0; i < len; i++)
                    ref[i] ^= rfc_mask[(pos + i) % 4];
                rp_ws_unmask(got + align, len, rfc_mask, pos);
                if (len)
                    assert_memory_equal(got + align, ref, len);
            }
        }
    }
    /* RFC 6455 §5.7: the masked "Hello". */
    uint8_t hello[] = {0x7f, 0x9f, 0x4d, 0x51, 0x58};
    rp_ws_unmask(hello, 5, rfc_mask, 0);
    assert_memory_equal(hello, "Hello", 5);
}

/* ---- reader ---------------------------------------------------------------------------- */

#define MAX_MSGS 16

struct rec {
    size_t n;
    unsigned opcode[MAX_MSGS];
    uint8_t *data[MAX_MSGS];
    size_t len[MAX_MSGS];
    size_t stop_at; /* non-zero: return 1 from the stop_at-th message */
};

static int on_message(void *ud, unsigned opcode, uint8_t *data, size_t len)
{
    struct rec *r = ud;
    assert_true(r->n < MAX_MSGS);
    r->opcode[r->n] = opcode;
    r->data[r->n] = (uint8_t *)dup_exact(data, len);
    r->len[r->n] = len;
    r->n++;
    if (len)
        data[0] ^= 0xff; /* the data is the callee's to modify */
    return r->stop_at && r->n == r->stop_at;
}

static void rec_clear(struct rec *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->data[i]);
    r->n = 0;
}

struct want_msg {
    unsigned opcode;
    const void *data;
    size_t len;
};

struct want {
    int rc;
    int close_code;
    size_t n;
    struct want_msg msgs[MAX_MSGS];
};

/* Feeds in[0..n) in the chunks ending at cuts[0..ncuts) (the last cut is n). */
static void feed_chunks(const uint8_t *in, size_t n, const size_t *cuts, size_t ncuts,
                        size_t max_message, size_t stop_at, const struct want *w, const char *how)
{
    rp_ws_reader_t r;
    struct rec rec = {.stop_at = stop_at};
    rp_ws_reader_init(&r, max_message, on_message, &rec);
    int rc = 0;
    size_t start = 0;
    for (size_t i = 0; i < ncuts && rc == 0; i++) {
        size_t len = cuts[i] - start;
        uint8_t *chunk = (uint8_t *)dup_exact(in + start, len);
        rc = rp_ws_reader_feed(&r, chunk, len);
        free(chunk);
        start = cuts[i];
    }
    assert_int_equal(start == n || rc != 0, 1);
    /* Compare, then free everything before failing, so a failure is not also a leak. */
    int ok = rc == w->rc && (rc == 0 || r.close_code == w->close_code) && rec.n == w->n;
    for (size_t i = 0; ok && i < w->n; i++)
        ok = rec.opcode[i] == w->msgs[i].opcode && rec.len[i] == w->msgs[i].len &&
             (rec.len[i] == 0 || memcmp(rec.data[i], w->msgs[i].data, rec.len[i]) == 0);
    if (!ok)
        print_error("%s: rc %d close %d messages %zu; expected rc %d close %d messages %zu\n", how,
                    rc, r.close_code, rec.n, w->rc, w->close_code, w->n);
    rec_clear(&rec);
    rp_ws_reader_deinit(&r);
    if (!ok)
        fail();
}

/* Whole, split in two at every offset (a sample of offsets for long inputs), and one byte per
 * call. */
static void check_reader(const uint8_t *in, size_t n, size_t max_message, size_t stop_at,
                         const struct want *w)
{
    size_t whole = n;
    feed_chunks(in, n, &whole, 1, max_message, stop_at, w, "whole");
    for (size_t k = 0; k <= n; k++) {
        if (n > 2048 && k > 64 && k + 64 < n && k % 997 != 0)
            continue;
        size_t cuts[2] = {k, n};
        char how[64];
        snprintf(how, sizeof(how), "split at %zu", k);
        feed_chunks(in, n, cuts, 2, max_message, stop_at, w, how);
    }
    if (n <= 70000) {
        size_t *cuts = malloc((n ? n : 1) * sizeof(*cuts));
        assert_non_null(cuts);
        for (size_t k = 0; k < n; k++)
            cuts[k] = k + 1;
        feed_chunks(in, n, cuts, n, max_message, stop_at, w, "byte by byte");
        free(cuts);
    }
}

static const uint8_t masked_hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                       0x7f, 0x9f, 0x4d, 0x51, 0x58};

static void delivers_rfc6455_masked_hello(void **state)
{
    (void)state;
    struct want w = {0, 0, 1, {{RP_WS_OP_TEXT, "Hello", 5}}};
    check_reader(masked_hello, sizeof(masked_hello), 1024, 0, &w);
}

static void delivers_masked_ping_and_rfc6455_pong(void **state)
{
    (void)state;
    uint8_t in[64];
    size_t n = client_frame(in, 1, RP_WS_OP_PING, "Hello", 5);
    static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    memcpy(in + n, pong, sizeof(pong));
    n += sizeof(pong);
    n += client_frame(in + n, 1, RP_WS_OP_PING, "", 0);
    struct want w = {
        0,
        0,
        3,
        {{RP_WS_OP_PING, "Hello", 5}, {RP_WS_OP_PONG, "Hello", 5}, {RP_WS_OP_PING, "", 0}}};
    check_reader(in, n, 1024, 0, &w);
}

static void assembles_fragmented_text_message(void **state)
{
    (void)state;
    /* RFC 6455 §5.7: 0x01 0x03 "Hel", 0x80 0x02 "lo", masked here. */
    uint8_t in[64];
    size_t n = client_frame(in, 0, RP_WS_OP_TEXT, "Hel", 3);
    n += client_frame(in + n, 1, RP_WS_OP_CONT, "lo", 2);
    struct want w = {0, 0, 1, {{RP_WS_OP_TEXT, "Hello", 5}}};
    check_reader(in, n, 1024, 0, &w);
}

static void assembles_message_from_many_fragments_including_empty_ones(void **state)
{
    (void)state;
    uint8_t in[128];
    size_t n = client_frame(in, 0, RP_WS_OP_BINARY, "\x00\x01", 2);
    n += client_frame(in + n, 0, RP_WS_OP_CONT, "", 0);
    n += client_frame(in + n, 0, RP_WS_OP_CONT, "\x02", 1);
    n += client_frame(in + n, 1, RP_WS_OP_CONT, "\x03\x04\xff", 3);
    n += client_frame(in + n, 0, RP_WS_OP_TEXT, "", 0);
    n += client_frame(in + n, 1, RP_WS_OP_CONT, "", 0);
    struct want w = {
        0, 0, 2, {{RP_WS_OP_BINARY, "\x00\x01\x02\x03\x04\xff", 6}, {RP_WS_OP_TEXT, "", 0}}};
    check_reader(in, n, 1024, 0, &w);
}

static void delivers_ping_interleaved_in_fragmented_message(void **state)
{
    (void)state;
    uint8_t in[64];
    size_t n = client_frame(in, 0, RP_WS_OP_TEXT, "Hel", 3);
    n += client_frame(in + n, 1, RP_WS_OP_PING, "ping", 4);
    n += client_frame(in + n, 1, RP_WS_OP_CONT, "lo", 2);
    struct want w = {0, 0, 2, {{RP_WS_OP_PING, "ping", 4}, {RP_WS_OP_TEXT, "Hello", 5}}};
    check_reader(in, n, 1024, 0, &w);
}

static void delivers_consecutive_messages_in_order(void **state)
{
    (void)state;
    uint8_t in[128];
    size_t n = client_frame(in, 1, RP_WS_OP_TEXT, "2probe", 6);
    n += client_frame(in + n, 1, RP_WS_OP_TEXT, "5", 1);
    n += client_frame(in + n, 1, RP_WS_OP_BINARY, "\x01\x02\x03", 3);
    n += client_frame(in + n, 1, RP_WS_OP_TEXT, "42[\"message\",1]", 15);
    n += client_frame(in + n, 1, RP_WS_OP_TEXT, "", 0);
    struct want w = {0,
                     0,
                     5,
                     {{RP_WS_OP_TEXT, "2probe", 6},
                      {RP_WS_OP_TEXT, "5", 1},
                      {RP_WS_OP_BINARY, "\x01\x02\x03", 3},
                      {RP_WS_OP_TEXT, "42[\"message\",1]", 15},
                      {RP_WS_OP_TEXT, "", 0}}};
    check_reader(in, n, 1024, 0, &w);
}

static void delivers_rfc6455_256_byte_and_64k_binary_messages(void **state)
{
    (void)state;
    size_t sizes[] = {125, 126, 256, 65535, 65536, 70000};
    for (size_t s = 0; s < ARRAY_LEN(sizes); s++) {
        size_t len = sizes[s];
        uint8_t *payload = malloc(len);
        uint8_t *in = malloc(len + 14);
        assert_non_null(payload);
        assert_non_null(in);
        for (size_t i = 0; i < len; i++)
            payload[i] = (uint8_t)(i * 13 + 1);
        size_t n = client_frame(in, 1, RP_WS_OP_BINARY, payload, len);
        assert_int_equal(n, len + (len < 126 ? 6 : len <= 0xFFFF ? 8 : 14));
        struct want w = {0, 0, 1, {{RP_WS_OP_BINARY, payload, len}}};
        check_reader(in, n, 70000, 0, &w);
        free(payload);
        free(in);
    }
}

static void accepts_utf8_split_across_fragments(void **state)
{
    (void)state;
    /* "€😀" with both characters cut between frames. */
    const char *text = "\xe2\x82\xac\xf0\x9f\x98\x80";
    uint8_t in[64];
    size_t n = client_frame(in, 0, RP_WS_OP_TEXT, text, 1);
    n += client_frame(in + n, 0, RP_WS_OP_CONT, text + 1, 3);
    n += client_frame(in + n, 1, RP_WS_OP_CONT, text + 4, 3);
    struct want w = {0, 0, 1, {{RP_WS_OP_TEXT, text, 7}}};
    check_reader(in, n, 1024, 0, &w);
}

static void rejects_unmasked_client_frame(void **state)
{
    (void)state;
    /* RFC 6455 §5.7's unmasked "Hello": fine from a server, refused from a client (§5.1). */
    static const uint8_t in[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    struct want w = {RP_EPROTO, RP_WS_CLOSE_PROTOCOL, 0, {{0}}};
    check_reader(in, sizeof(in), 1024, 0, &w);
    /* After a good message, the messages before it are still delivered. */
    uint8_t in2[64];
    memcpy(in2, masked_hello, sizeof(masked_hello));
    memcpy(in2 + sizeof(masked_hello), in, sizeof(in));
    struct want w2 = {RP_EPROTO, RP_WS_CLOSE_PROTOCOL, 1, {{RP_WS_OP_TEXT, "Hello", 5}}};
    check_reader(in2, sizeof(masked_hello) + sizeof(in), 1024, 0, &w2);
}

static void rejects_invalid_utf8_text(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff",
        "ab\x80",   "\xe2\x82(",    "\xe2\x82", /* ends mid-character */
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        uint8_t in[32];
        size_t n = client_frame(in, 1, RP_WS_OP_TEXT, bad[i], strlen(bad[i]));
        struct want w = {RP_EPROTO, RP_WS_CLOSE_BAD_DATA, 0, {{0}}};
        check_reader(in, n, 1024, 0, &w);
    }
    /* Binary frames are not checked. */
    uint8_t in[32];
    size_t n = client_frame(in, 1, RP_WS_OP_BINARY, "\xff\xfe", 2);
    struct want w = {0, 0, 1, {{RP_WS_OP_BINARY, "\xff\xfe", 2}}};
    check_reader(in, n, 1024, 0, &w);
}

static void rejects_invalid_utf8_across_fragments(void **state)
{
    (void)state;
    uint8_t in[64];
    /* A lead byte in one frame, a non-continuation in the next. */
    size_t n = client_frame(in, 0, RP_WS_OP_TEXT, "ok\xe2", 3);
    n += client_frame(in + n, 1, RP_WS_OP_CONT, "(x", 2);
    struct want w = {RP_EPROTO, RP_WS_CLOSE_BAD_DATA, 0, {{0}}};
    check_reader(in, n, 1024, 0, &w);
    /* The last fragment ends in the middle of a character. */
    n = client_frame(in, 0, RP_WS_OP_TEXT, "ok", 2);
    n += client_frame(in + n, 1, RP_WS_OP_CONT, "\xf0\x9f\x98", 3);
    check_reader(in, n, 1024, 0, &w);
    /* A text message's state does not leak into the next message. */
    n = client_frame(in, 0, RP_WS_OP_TEXT, "\xe2", 1);
    n += client_frame(in + n, 1, RP_WS_OP_CONT, "\x82\xac", 2);
    n += client_frame(in + n, 1, RP_WS_OP_TEXT, "\x82", 1);
    struct want w2 = {RP_EPROTO, RP_WS_CLOSE_BAD_DATA, 1, {{RP_WS_OP_TEXT, "\xe2\x82\xac", 3}}};
    check_reader(in, n, 1024, 0, &w2);
}

static void rejects_oversized_message(void **state)
{
    (void)state;
    uint8_t in[128];
    const char *p = "0123456789abcdefghij";
    /* One frame of 17 bytes with a 16-byte limit: refused from the header alone. */
    size_t n = client_frame(in, 1, RP_WS_OP_TEXT, p, 17);
    struct want w = {RP_ETOOBIG, RP_WS_CLOSE_TOO_BIG, 0, {{0}}};
    check_reader(in, n, 16, 0, &w);
    check_reader(in, 6, 16, 0, &w); /* the header alone suffices */
    /* Fragments of 10 + 10. */
    n = client_frame(in, 0, RP_WS_OP_TEXT, p, 10);
    n += client_frame(in + n, 1, RP_WS_OP_CONT, p + 10, 10);
    check_reader(in, n, 16, 0, &w);
    /* A declared 2^62-byte frame. */
    static const uint8_t huge[] = {0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    check_reader(huge, sizeof(huge), 1 << 20, 0, &w);
}

static void accepts_message_of_exactly_max_size(void **state)
{
    (void)state;
    uint8_t in[128];
    const char *p = "0123456789abcdefghij";
    size_t n = client_frame(in, 1, RP_WS_OP_TEXT, p, 16);
    struct want w = {0, 0, 1, {{RP_WS_OP_TEXT, p, 16}}};
    check_reader(in, n, 16, 0, &w);
    n = client_frame(in, 0, RP_WS_OP_TEXT, p, 10);
    n += client_frame(in + n, 1, RP_WS_OP_CONT, p + 10, 6);
    check_reader(in, n, 16, 0, &w);
}

static void ping_inside_fragmented_message_does_not_count_toward_max_message(void **state)
{
    (void)state;
    /* Regression (BUG found by this test, fixed in e36a78b): src/ws/frame.c parse(), the check
     *     if (f.len > r->_max_message || r->_message.len + f.len > r->_max_message)
     * adds a control frame's length to the fragmented message being assembled. A ping
     * between fragments is not part of the message (RFC 6455 §5.4, §5.5), so a 10-byte
     * message with max_message 10 is refused with 1009 when a 5-byte ping arrives after
     * its first 8 bytes. Expected: PING "ping!" then TEXT "0123456789"; actual: RP_ETOOBIG,
     * close code 1009 (before the fix). */
    uint8_t in[64];
    size_t n = client_frame(in, 0, RP_WS_OP_TEXT, "01234567", 8);
    n += client_frame(in + n, 1, RP_WS_OP_PING, "ping!", 5);
    n += client_frame(in + n, 1, RP_WS_OP_CONT, "89", 2);
    struct want w = {0, 0, 2, {{RP_WS_OP_PING, "ping!", 5}, {RP_WS_OP_TEXT, "0123456789", 10}}};
    check_reader(in, n, 10, 0, &w);
}

static void rejects_continuation_without_start(void **state)
{
    (void)state;
    uint8_t in[32];
    size_t n = client_frame(in, 1, RP_WS_OP_CONT, "lo", 2);
    struct want w = {RP_EPROTO, RP_WS_CLOSE_PROTOCOL, 0, {{0}}};
    check_reader(in, n, 1024, 0, &w);
    /* Also right after a complete message. */
    n = client_frame(in, 1, RP_WS_OP_TEXT, "Hel", 3);
    n += client_frame(in + n, 0, RP_WS_OP_CONT, "lo", 2);
    struct want w2 = {RP_EPROTO, RP_WS_CLOSE_PROTOCOL, 1, {{RP_WS_OP_TEXT, "Hel", 3}}};
    check_reader(in, n, 1024, 0, &w2);
}

static void rejects_new_data_frame_during_fragmented_message(void **state)
{
    (void)state;
    uint8_t in[64];
    size_t n = client_frame(in, 0, RP_WS_OP_TEXT, "Hel", 3);
    n += client_frame(in + n, 1, RP_WS_OP_TEXT, "lo", 2);
    struct want w = {RP_EPROTO, RP_WS_CLOSE_PROTOCOL, 0, {{0}}};
    check_reader(in, n, 1024, 0, &w);
    n = client_frame(in, 0, RP_WS_OP_BINARY, "Hel", 3);
    n += client_frame(in + n, 0, RP_WS_OP_BINARY, "lo", 2);
    check_reader(in, n, 1024, 0, &w);
}

static void rejects_close_frame_with_one_byte_payload(void **state)
{
    (void)state;
    uint8_t in[32];
    size_t n = client_frame(in, 1, RP_WS_OP_CLOSE, "\x03", 1);
    struct want w = {RP_EPROTO, RP_WS_CLOSE_PROTOCOL, 0, {{0}}};
    check_reader(in, n, 1024, 0, &w);
}

static void delivers_close_frames_with_and_without_reason(void **state)
{
    (void)state;
    uint8_t in[64];
    size_t n = client_frame(in, 1, RP_WS_OP_CLOSE,
                            "\x03\xe8"
                            "bye \xc3\xa9",
                            8);
    struct want w = {0,
                     0,
                     1,
                     {{RP_WS_OP_CLOSE,
                       "\x03\xe8"
                       "bye \xc3\xa9",
                       8}}};
    check_reader(in, n, 1024, 0, &w);
    n = client_frame(in, 1, RP_WS_OP_CLOSE, "", 0);
    struct want w0 = {0, 0, 1, {{RP_WS_OP_CLOSE, "", 0}}};
    check_reader(in, n, 1024, 0, &w0);
}

/* RFC 6455 section 7.4 and the IANA registry; the Autobahn suite's cases 7.7 and 7.9. */
static void delivers_close_frames_with_every_code_that_may_be_sent(void **state)
{
    (void)state;
    static const unsigned codes[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                     1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    for (size_t i = 0; i < ARRAY_LEN(codes); i++) {
        uint8_t in[32];
        const uint8_t code[2] = {(uint8_t)(codes[i] >> 8), (uint8_t)codes[i]};
        size_t n = client_frame(in, 1, RP_WS_OP_CLOSE, code, 2);
        struct want w = {0, 0, 1, {{RP_WS_OP_CLOSE, code, 2}}};
        assert_true(rp_ws_close_code_valid(codes[i]));
        check_reader(in, n, 1024, 0, &w);
    }
}

static void rejects_close_codes_that_may_not_be_on_the_wire(void **state)
{
    (void)state;
    static const unsigned codes[] = {0,    1,    999,  1004, 1005, 1006, 1015,
                                     1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < ARRAY_LEN(codes); i++) {
        uint8_t in[32];
        const uint8_t code[5] = {(uint8_t)(codes[i] >> 8), (uint8_t)codes[i], 'b', 'y', 'e'};
        struct want w = {RP_EPROTO, RP_WS_CLOSE_PROTOCOL, 0, {{0}}};
        assert_false(rp_ws_close_code_valid(codes[i]));
        size_t n = client_frame(in, 1, RP_WS_OP_CLOSE, code, 2);
        check_reader(in, n, 1024, 0, &w);
        n = client_frame(in, 1, RP_WS_OP_CLOSE, code, sizeof(code)); /* with a reason too */
        check_reader(in, n, 1024, 0, &w);
    }
}

static void close_reply_echoes_the_code_or_says_1000(void **state)
{
    (void)state;
    uint8_t out[4];
    assert_int_equal(rp_ws_close_reply(out,
                                       (const uint8_t *)"\x0f\xa0"
                                                        "bye",
                                       5),
                     4); /* 4000 */
    assert_memory_equal(out, "\x88\x02\x0f\xa0", 4);
    assert_int_equal(rp_ws_close_reply(out, NULL, 0), 4); /* no status: answered 1000 */
    assert_memory_equal(out, "\x88\x02\x03\xe8", 4);
}

static void rejects_close_reason_with_invalid_utf8(void **state)
{
    (void)state;
    uint8_t in[32];
    size_t n = client_frame(in, 1, RP_WS_OP_CLOSE, "\x03\xe8\xc0\xaf", 4);
    struct want w = {RP_EPROTO, RP_WS_CLOSE_BAD_DATA, 0, {{0}}};
    check_reader(in, n, 1024, 0, &w);
}

static void rejects_reserved_bits_unknown_opcodes_and_fragmented_control(void **state)
{
    (void)state;
    static const uint8_t first[] = {0xc1, 0xa1, 0x91, 0x83, 0x87, 0x8b, 0x8f, 0x09, 0x08, 0x0a};
    for (size_t i = 0; i < ARRAY_LEN(first); i++) {
        uint8_t in[16];
        size_t n = client_frame(in, 1, RP_WS_OP_TEXT, "x", 1);
        in[0] = first[i];
        struct want w = {RP_EPROTO, RP_WS_CLOSE_PROTOCOL, 0, {{0}}};
        check_reader(in, n, 1024, 0, &w);
    }
    static const uint8_t ping126[] = {0x89, 0xfe, 0x00, 0x7e, 1, 2, 3, 4};
    struct want w = {RP_EPROTO, RP_WS_CLOSE_PROTOCOL, 0, {{0}}};
    check_reader(ping126, sizeof(ping126), 1024, 0, &w);
    static const uint8_t nonminimal[] = {0x82, 0xfe, 0x00, 0x05, 1, 2, 3, 4, 0, 0, 0, 0, 0};
    check_reader(nonminimal, sizeof(nonminimal), 1024, 0, &w);
}

static void stops_when_callback_returns_nonzero(void **state)
{
    (void)state;
    uint8_t in[64];
    size_t n = client_frame(in, 1, RP_WS_OP_TEXT, "one", 3);
    n += client_frame(in + n, 1, RP_WS_OP_TEXT, "two", 3);
    n += client_frame(in + n, 1, RP_WS_OP_TEXT, "three", 5);
    struct want w = {RP_ESTATE, 0, 2, {{RP_WS_OP_TEXT, "one", 3}, {RP_WS_OP_TEXT, "two", 3}}};
    check_reader(in, n, 1024, 2, &w);
    /* A fragmented message whose delivery is refused. */
    n = client_frame(in, 0, RP_WS_OP_TEXT, "fr", 2);
    n += client_frame(in + n, 1, RP_WS_OP_CONT, "ag", 2);
    n += client_frame(in + n, 1, RP_WS_OP_TEXT, "next", 4);
    struct want w2 = {RP_ESTATE, 0, 1, {{RP_WS_OP_TEXT, "frag", 4}}};
    check_reader(in, n, 1024, 1, &w2);
}

static void fails_cleanly_without_memory_on_fragmented_input(void **state)
{
    (void)state;
    /* A fragmented message with a ping inside, then a whole one, fed in 3-byte chunks so
     * both the partial-frame buffer and the message buffer allocate. */
    uint8_t in[256];
    size_t n = client_frame(in, 0, RP_WS_OP_TEXT, "Hello, ", 7);
    n += client_frame(in + n, 1, RP_WS_OP_PING, "p", 1);
    n += client_frame(in + n, 0, RP_WS_OP_CONT, "frag", 4);
    n += client_frame(in + n, 1, RP_WS_OP_CONT, "mented world", 12);
    n += client_frame(in + n, 1, RP_WS_OP_BINARY, "\x01\x02", 2);
    for (size_t step = 1; step <= 7; step += 3) {
        for (unsigned long fail_at = 1;; fail_at++) {
            rp_ws_reader_t r;
            struct rec rec = {0};
            rp_ws_reader_init(&r, 1024, on_message, &rec);
            rp_alloc_fail_at(fail_at);
            int rc = 0;
            for (size_t off = 0; off < n && rc == 0; off += step) {
                size_t len = off + step <= n ? step : n - off;
                uint8_t *chunk = (uint8_t *)dup_exact(in + off, len);
                rc = rp_ws_reader_feed(&r, chunk, len);
                free(chunk);
            }
            int failed = rp_alloc_failed();
            rp_alloc_fail_at(0);
            if (!failed) {
                assert_int_equal(rc, 0);
                assert_int_equal(rec.n, 3);
                assert_bytes(rec.data[1], rec.len[1], "Hello, fragmented world", 23);
                rec_clear(&rec);
                rp_ws_reader_deinit(&r);
                break;
            }
            assert_int_equal(rc, UV_ENOMEM);
            assert_true(r.close_code != 0);
            rec_clear(&rec);
            rp_ws_reader_deinit(&r);
            assert_true(fail_at < 100);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encodes_header_for_each_length_form),
        cmocka_unit_test(encodes_close_frame),
        cmocka_unit_test(delivers_close_frames_with_every_code_that_may_be_sent),
        cmocka_unit_test(rejects_close_codes_that_may_not_be_on_the_wire),
        cmocka_unit_test(close_reply_echoes_the_code_or_says_1000),
        cmocka_unit_test(decodes_rfc6455_example_headers),
        cmocka_unit_test(header_decode_rejects_reserved_bits),
        cmocka_unit_test(header_decode_rejects_unknown_opcodes),
        cmocka_unit_test(header_decode_rejects_fragmented_control_frames),
        cmocka_unit_test(header_decode_rejects_control_payload_over_125),
        cmocka_unit_test(header_decode_rejects_non_minimal_lengths),
        cmocka_unit_test(header_decode_rejects_length_with_msb_set),
        cmocka_unit_test(unmask_matches_bytewise_xor_at_any_position),
        cmocka_unit_test(delivers_rfc6455_masked_hello),
        cmocka_unit_test(delivers_masked_ping_and_rfc6455_pong),
        cmocka_unit_test(assembles_fragmented_text_message),
        cmocka_unit_test(assembles_message_from_many_fragments_including_empty_ones),
        cmocka_unit_test(delivers_ping_interleaved_in_fragmented_message),
        cmocka_unit_test(delivers_consecutive_messages_in_order),
        cmocka_unit_test(delivers_rfc6455_256_byte_and_64k_binary_messages),
        cmocka_unit_test(accepts_utf8_split_across_fragments),
        cmocka_unit_test(rejects_unmasked_client_frame),
        cmocka_unit_test(rejects_invalid_utf8_text),
        cmocka_unit_test(rejects_invalid_utf8_across_fragments),
        cmocka_unit_test(rejects_oversized_message),
        cmocka_unit_test(accepts_message_of_exactly_max_size),
        cmocka_unit_test(ping_inside_fragmented_message_does_not_count_toward_max_message),
        cmocka_unit_test(rejects_continuation_without_start),
        cmocka_unit_test(rejects_new_data_frame_during_fragmented_message),
        cmocka_unit_test(rejects_close_frame_with_one_byte_payload),
        cmocka_unit_test(delivers_close_frames_with_and_without_reason),
        cmocka_unit_test(rejects_close_reason_with_invalid_utf8),
        cmocka_unit_test(rejects_reserved_bits_unknown_opcodes_and_fragmented_control),
        cmocka_unit_test(stops_when_callback_returns_nonzero),
        cmocka_unit_test(fails_cleanly_without_memory_on_fragmented_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
