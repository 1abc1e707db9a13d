/* SPDX-License-Identifier: MIT */
/* eio/packet: Engine.IO v4 packets. Decoding uses the examples of the engine.io-protocol v4
 * document ("4hello\x1e2\x1e4world", "4hello\x1ebAQIDBA=="); encoding checks both framings
 * of one packet: ws[ws_off..] must be exactly one unmasked WebSocket frame (decoded with our
 * own header decoder) and poll[poll_off..] the packet as a polling item. */
#include "unit.h"

#include <uv.h>

#include "eio/packet.h"
#include "util/alloc.h"
#include "util/base64.h"
#include "util/err.h"
#include "ws/ws.h"

/* ---- decoding -------------------------------------------------------------------------- */

static void text_decode_reads_each_type(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        char type;
        const char *data;
    } cases[] = {
        {"0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
         "\"pingTimeout\":5000,\"maxPayload\":1000000}",
         RP_EIO_OPEN,
         "{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
         "\"pingTimeout\":5000,\"maxPayload\":1000000}"},
        {"1", RP_EIO_CLOSE, ""},
        {"2", RP_EIO_PING, ""},
        {"2probe", RP_EIO_PING, "probe"},
        {"3", RP_EIO_PONG, ""},
        {"3probe", RP_EIO_PONG, "probe"},
        {"4hello", RP_EIO_MESSAGE, "hello"},
        {"4", RP_EIO_MESSAGE, ""},
        {"42[\"foo\"]", RP_EIO_MESSAGE, "2[\"foo\"]"},
        {"5", RP_EIO_UPGRADE, ""},
        {"6", RP_EIO_NOOP, ""},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        size_t n = strlen(cases[i].in);
        char *s = dup_exact(cases[i].in, n);
        rp_eio_in_t pkt;
        assert_int_equal(rp_eio_text_decode(s, n, &pkt), 0);
        assert_int_equal(pkt.binary, 0);
        assert_int_equal(pkt.type, cases[i].type);
        assert_ptr_equal(pkt.data, s + 1);
        assert_span(pkt.data, pkt.len, cases[i].data);
        free(s);
    }
}

static void text_decode_rejects_unknown_type_and_empty(void **state)
{
    (void)state;
    static const char *const bad[] = {"7", "9hello", "a", "/", "b", "bAQIDBA==", " 4", "\x1e"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        size_t n = strlen(bad[i]);
        char *s = dup_exact(bad[i], n);
        rp_eio_in_t pkt;
        assert_int_equal(rp_eio_text_decode(s, n, &pkt), RP_EPROTO);
        free(s);
    }
    char *s = dup_exact("", 0);
    rp_eio_in_t pkt;
    assert_int_equal(rp_eio_text_decode(s, 0, &pkt), RP_EPROTO);
    free(s);
    char hi[] = {(char)0xb4, 'x'};
    assert_int_equal(rp_eio_text_decode(hi, 2, &pkt), RP_EPROTO);
}

struct item {
    int binary;
    char type;
    const void *data;
    size_t len;
};

/* Iterates a mutable exact-size copy of payload[0..n); checks the items, then the result
 * after them (0 for the end, or RP_EPROTO). */
static void check_payload(const char *payload, size_t n, const struct item *want, size_t nwant,
                          int end_rc)
{
    char *buf = dup_exact(payload, n);
    char *cursor = buf;
    rp_eio_in_t pkt;
    for (size_t i = 0; i < nwant; i++) {
        assert_int_equal(rp_eio_payload_next(&cursor, buf + n, &pkt), 1);
        assert_int_equal(pkt.binary, want[i].binary);
        assert_int_equal(pkt.type, want[i].type);
        assert_bytes(pkt.data, pkt.len, want[i].data, want[i].len);
        assert_true(pkt.data >= buf && pkt.data + pkt.len <= buf + n);
    }
    assert_int_equal(rp_eio_payload_next(&cursor, buf + n, &pkt), end_rc);
    if (end_rc == 0) /* stays at the end */
        assert_int_equal(rp_eio_payload_next(&cursor, buf + n, &pkt), 0);
    free(buf);
}

static void payload_iterates_spec_examples(void **state)
{
    (void)state;
    static const char p1[] = "4hello\x1e"
                             "2\x1e"
                             "4world";
    static const struct item w1[] = {
        {0, RP_EIO_MESSAGE, "hello", 5}, {0, RP_EIO_PING, "", 0}, {0, RP_EIO_MESSAGE, "world", 5}};
    check_payload(p1, sizeof(p1) - 1, w1, 3, 0);

    static const char p2[] = "4hello\x1e"
                             "4world";
    static const struct item w2[] = {{0, RP_EIO_MESSAGE, "hello", 5},
                                     {0, RP_EIO_MESSAGE, "world", 5}};
    check_payload(p2, sizeof(p2) - 1, w2, 2, 0);

    static const char p3[] = "4hello\x1e"
                             "bAQIDBA==";
    static const struct item w3[] = {{0, RP_EIO_MESSAGE, "hello", 5},
                                     {1, RP_EIO_MESSAGE, "\x01\x02\x03\x04", 4}};
    check_payload(p3, sizeof(p3) - 1, w3, 2, 0);

    static const char p4[] = "6";
    static const struct item w4[] = {{0, RP_EIO_NOOP, "", 0}};
    check_payload(p4, 1, w4, 1, 0);

    static const char p5[] = "bAQIDBA==\x1e"
                             "bAQID\x1e"
                             "b\x1e"
                             "40";
    static const struct item w5[] = {{1, RP_EIO_MESSAGE, "\x01\x02\x03\x04", 4},
                                     {1, RP_EIO_MESSAGE, "\x01\x02\x03", 3},
                                     {1, RP_EIO_MESSAGE, "", 0},
                                     {0, RP_EIO_MESSAGE, "0", 1}};
    check_payload(p5, sizeof(p5) - 1, w5, 4, 0);
}

static void payload_rejects_empty_payload_and_empty_items(void **state)
{
    (void)state;
    check_payload("", 0, NULL, 0, RP_EPROTO);
    static const struct item one[] = {{0, RP_EIO_MESSAGE, "a", 1}};
    check_payload("4a\x1e", 3, one, 1, RP_EPROTO); /* trailing separator */
    check_payload("4a\x1e\x1e"
                  "4b",
                  6, one, 1, RP_EPROTO); /* empty item in the middle */
    check_payload("\x1e"
                  "4a",
                  3, NULL, 0, RP_EPROTO); /* leading separator */
    check_payload("\x1e", 1, NULL, 0, RP_EPROTO);
}

static void payload_rejects_bad_items(void **state)
{
    (void)state;
    static const struct item one[] = {{0, RP_EIO_MESSAGE, "hello", 5}};
    static const char *const bad[] = {
        "bAQIDB",    /* not a multiple of 4 */
        "bAQIDBA=",  /* not a multiple of 4 */
        "bAQ==AQID", /* padding in the middle */
        "bAQI!BA=",  /* not base64 */
        "b====",     /* only padding */
        "9hello",    /* unknown type */
        "xhello",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char p[64];
        int n = snprintf(p, sizeof(p), "4hello\x1e%s", bad[i]);
        check_payload(p, (size_t)n, one, 1, RP_EPROTO);
        check_payload(bad[i], strlen(bad[i]), NULL, 0, RP_EPROTO);
    }
}

/* ---- encoding -------------------------------------------------------------------------- */

/* Checks that sb[off..sb->len) is exactly one unmasked FIN frame of `opcode` carrying
 * want[0..wn). */
static void assert_ws_frame(const rp_sbuf_t *sb, uint32_t off, unsigned opcode, const void *want,
                            size_t wn)
{
    assert_true(off <= sb->len);
    rp_ws_frame_t f;
    long h = rp_ws_frame_header_decode((const uint8_t *)sb->data + off, sb->len - off, &f);
    assert_int_equal(h, (long)rp_ws_frame_header_size(wn));
    assert_int_equal(f.fin, 1);
    assert_int_equal(f.masked, 0);
    assert_int_equal(f.opcode, opcode);
    assert_int_equal(f.len, wn);
    assert_int_equal(off + (size_t)h + wn, sb->len);
    if (wn)
        assert_memory_equal(sb->data + off + h, want, wn);
}

static void text_packet_frames_for_ws_and_polling(void **state)
{
    (void)state;
    /* Payload lengths around the 7-bit / 16-bit / 64-bit length boundaries (the frame
     * carries the type character too: 124 + 1 = 125 is the last 2-byte header). */
    static const size_t lens[] = {0, 1, 124, 125, 126, 65534, 65535, 70000};
    for (size_t i = 0; i < ARRAY_LEN(lens); i++) {
        size_t len = lens[i];
        char *data = malloc(len + 1);
        char *want = malloc(len + 1);
        assert_non_null(data);
        assert_non_null(want);
        for (size_t k = 0; k < len; k++)
            data[k] = (char)('a' + k % 26);
        want[0] = RP_EIO_MESSAGE;
        memcpy(want + 1, data, len);
        rp_eio_packet_t p;
        assert_int_equal(rp_eio_packet_text(&p, RP_EIO_MESSAGE, data, len), 0);
        assert_ws_frame(p.ws, p.ws_off, RP_WS_OP_TEXT, want, len + 1);
        assert_int_equal(p.ws_off + rp_ws_frame_header_size(len + 1), RP_EIO_HEADROOM);
        /* Text: one shared block, the poll form right after the frame header. */
        assert_ptr_equal(p.ws, p.poll);
        assert_int_equal(p.ws->refs, 2);
        assert_int_equal(p.poll_off, RP_EIO_HEADROOM);
        assert_bytes(p.poll->data + p.poll_off, p.poll->len - p.poll_off, want, len + 1);
        rp_eio_packet_release(&p);
        assert_null(p.ws);
        assert_null(p.poll);
        free(data);
        free(want);
    }
}

static void text_packet_of_each_type(void **state)
{
    (void)state;
    rp_eio_packet_t p;
    assert_int_equal(rp_eio_packet_text(&p, RP_EIO_PING, NULL, 0), 0);
    static const uint8_t ping[] = {0x81, 0x01, '2'};
    assert_bytes(p.ws->data + p.ws_off, p.ws->len - p.ws_off, ping, 3);
    assert_span(p.poll->data + p.poll_off, p.poll->len - p.poll_off, "2");
    rp_eio_packet_release(&p);
    assert_int_equal(rp_eio_packet_text(&p, RP_EIO_PONG, "probe", 5), 0);
    static const uint8_t pong[] = {0x81, 0x06, '3', 'p', 'r', 'o', 'b', 'e'};
    assert_bytes(p.ws->data + p.ws_off, p.ws->len - p.ws_off, pong, 8);
    assert_span(p.poll->data + p.poll_off, p.poll->len - p.poll_off, "3probe");
    rp_eio_packet_release(&p);
}

static void packet_references_are_counted(void **state)
{
    (void)state;
    rp_eio_packet_t a, b;
    assert_int_equal(rp_eio_packet_text(&a, RP_EIO_MESSAGE, "x", 1), 0);
    rp_eio_packet_ref(&b, &a);
    assert_int_equal(a.ws->refs, 4);
    rp_eio_packet_release(&a);
    assert_int_equal(b.ws->refs, 2);
    assert_span(b.poll->data + b.poll_off, b.poll->len - b.poll_off, "4x");
    rp_eio_packet_release(&b);
    rp_eio_packet_release(&b); /* released twice: harmless */
}

static void binary_packet_frames_raw_and_base64(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 2, 3, 4, 125, 126, 65535, 65536, 70000};
    for (size_t i = 0; i < ARRAY_LEN(lens); i++) {
        size_t len = lens[i];
        unsigned char *data = malloc(len + 1);
        assert_non_null(data);
        for (size_t k = 0; k < len; k++)
            data[k] = (unsigned char)(k * 7 + 1);
        rp_eio_packet_t p;
        assert_int_equal(rp_eio_packet_binary(&p, data, len), 0);
        assert_ws_frame(p.ws, p.ws_off, RP_WS_OP_BINARY, data, len);
        assert_true(p.ws != p.poll);
        const char *poll = p.poll->data + p.poll_off;
        size_t plen = p.poll->len - p.poll_off;
        assert_int_equal(plen, 1 + rp_base64_encoded_len(len));
        assert_int_equal(poll[0], 'b');
        unsigned char *dec = malloc(plen);
        assert_non_null(dec);
        long d = rp_base64_decode(poll + 1, plen - 1, dec);
        assert_bytes(dec, (size_t)d, data, len);
        /* And the polling form decodes back through the payload iterator. */
        char *copy = dup_exact(poll, plen);
        char *cursor = copy;
        rp_eio_in_t in;
        assert_int_equal(rp_eio_payload_next(&cursor, copy + plen, &in), 1);
        assert_int_equal(in.binary, 1);
        assert_bytes(in.data, in.len, data, len);
        free(copy);
        free(dec);
        rp_eio_packet_release(&p);
        free(data);
    }
    rp_eio_packet_t p;
    assert_int_equal(rp_eio_packet_binary(&p, "\x01\x02\x03\x04", 4), 0);
    assert_span(p.poll->data + p.poll_off, p.poll->len - p.poll_off, "bAQIDBA==");
    static const uint8_t ws[] = {0x82, 0x04, 1, 2, 3, 4};
    assert_bytes(p.ws->data + p.ws_off, p.ws->len - p.ws_off, ws, 6);
    rp_eio_packet_release(&p);
}

static void packet_from_buf_takes_the_buffer(void **state)
{
    (void)state;
    rp_buf_t b;
    rp_buf_init(&b, 1 << 20);
    char room[RP_EIO_HEADROOM];
    memset(room, 0, sizeof(room));
    assert_int_equal(rp_buf_append(&b, room, sizeof(room)), 0);
    assert_int_equal(rp_buf_append_str(&b, "42[\"hey\",\"Jude\"]"), 0);
    rp_eio_packet_t p;
    assert_int_equal(rp_eio_packet_from_buf(&p, &b), 0);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_ws_frame(p.ws, p.ws_off, RP_WS_OP_TEXT, "42[\"hey\",\"Jude\"]", 16);
    assert_span(p.poll->data + p.poll_off, p.poll->len - p.poll_off, "42[\"hey\",\"Jude\"]");
    rp_eio_packet_release(&p);
    rp_buf_deinit(&b);
    /* Nothing after the headroom: refused, the buffer stays the caller's. */
    assert_int_equal(rp_buf_append(&b, room, sizeof(room)), 0);
    assert_int_equal(rp_eio_packet_from_buf(&p, &b), RP_EPROTO);
    assert_non_null(b.data);
    rp_buf_deinit(&b);
}

/* ---- out of memory --------------------------------------------------------------------- */

static void text_packet_fails_cleanly_without_memory(void **state)
{
    (void)state;
    for (unsigned long n = 1;; n++) {
        rp_eio_packet_t p = {0};
        rp_alloc_fail_at(n);
        int rc = rp_eio_packet_text(&p, RP_EIO_MESSAGE, "hello", 5);
        int failed = rp_alloc_failed();
        rp_alloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, 0);
            assert_span(p.poll->data + p.poll_off, p.poll->len - p.poll_off, "4hello");
            rp_eio_packet_release(&p);
            break;
        }
        assert_int_equal(rc, UV_ENOMEM);
        assert_true(n < 8);
    }
}

static void binary_packet_fails_cleanly_without_memory(void **state)
{
    (void)state;
    for (unsigned long n = 1;; n++) {
        rp_eio_packet_t p = {0};
        rp_alloc_fail_at(n);
        int rc = rp_eio_packet_binary(&p, "\x01\x02\x03\x04", 4);
        int failed = rp_alloc_failed();
        rp_alloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, 0);
            assert_span(p.poll->data + p.poll_off, p.poll->len - p.poll_off, "bAQIDBA==");
            rp_eio_packet_release(&p);
            break;
        }
        assert_int_equal(rc, UV_ENOMEM);
        assert_true(n < 8);
    }
}

static void packet_from_buf_fails_cleanly_without_memory(void **state)
{
    (void)state;
    for (unsigned long n = 1;; n++) {
        rp_buf_t b;
        rp_buf_init(&b, 1 << 10);
        char room[RP_EIO_HEADROOM] = {0};
        assert_int_equal(rp_buf_append(&b, room, sizeof(room)), 0);
        assert_int_equal(rp_buf_append_str(&b, "4x"), 0);
        rp_eio_packet_t p = {0};
        rp_alloc_fail_at(n);
        int rc = rp_eio_packet_from_buf(&p, &b);
        int failed = rp_alloc_failed();
        rp_alloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, 0);
            rp_eio_packet_release(&p);
            rp_buf_deinit(&b);
            break;
        }
        assert_int_equal(rc, UV_ENOMEM);
        assert_non_null(b.data); /* still the caller's */
        assert_int_equal(b.len, RP_EIO_HEADROOM + 2);
        rp_buf_deinit(&b);
        assert_true(n < 8);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_decode_reads_each_type),
        cmocka_unit_test(text_decode_rejects_unknown_type_and_empty),
        cmocka_unit_test(payload_iterates_spec_examples),
        cmocka_unit_test(payload_rejects_empty_payload_and_empty_items),
        cmocka_unit_test(payload_rejects_bad_items),
        cmocka_unit_test(text_packet_frames_for_ws_and_polling),
        cmocka_unit_test(text_packet_of_each_type),
        cmocka_unit_test(packet_references_are_counted),
        cmocka_unit_test(binary_packet_frames_raw_and_base64),
        cmocka_unit_test(packet_from_buf_takes_the_buffer),
        cmocka_unit_test(text_packet_fails_cleanly_without_memory),
        cmocka_unit_test(binary_packet_fails_cleanly_without_memory),
        cmocka_unit_test(packet_from_buf_fails_cleanly_without_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
