/* SPDX-License-Identifier: MIT */
/* sio/encode: the one packet encoder. Every outgoing packet is RP_EIO_HEADROOM reserved bytes,
 * the Engine.IO message type '4', then the Socket.IO packet text of the protocol v5 document
 * (`2/chat,12["hello",1]`, `51-["up",{"_placeholder":true,"num":0}]`, `3/chat,7[...]`); built
 * into shared packets, the polling form is that text and the WebSocket form one text frame
 * around it. Each encoded packet also decodes back through rp_sio_packet_decode. */
#include "unit.h"

#include <uv.h>

#include "eio/packet.h"
#include "sio/packet.h"
#include "sio/sio_int.h"
#include "util/err.h"

static rp_sio_nsp_t nsp_of(const char *name)
{
    rp_sio_nsp_t nsp;
    memset(&nsp, 0, sizeof(nsp));
    nsp.name = (char *)name;
    nsp._name_len = strlen(name);
    return nsp;
}

/* Asserts b is the headroom, '4', then exactly `text`. */
static void assert_packet(const rp_buf_t *b, const char *text)
{
    assert_true(b->len > RP_EIO_HEADROOM);
    for (size_t i = 0; i < RP_EIO_HEADROOM; i++)
        assert_int_equal(b->data[i], 0);
    assert_int_equal(b->data[RP_EIO_HEADROOM], RP_EIO_MESSAGE);
    assert_span(b->data + RP_EIO_HEADROOM + 1, b->len - RP_EIO_HEADROOM - 1, text);
}

/* Decodes the Socket.IO text of b (after the headroom and '4') and checks type, nsp, id. */
static void assert_decodes(const rp_buf_t *b, int type, const char *nsp, int64_t id, unsigned natt)
{
    size_t n = b->len - RP_EIO_HEADROOM - 1;
    char *copy = dup_exact(b->data + RP_EIO_HEADROOM + 1, n);
    rp_sio_packet_t p;
    assert_int_equal(rp_sio_packet_decode(copy, n, 16, &p), 0);
    assert_int_equal(p.type, type);
    assert_span(p.nsp, p.nsp_len, nsp);
    assert_int_equal(p.id, id);
    assert_int_equal(p.attachments, natt);
    free(copy);
}

static void event_in_a_namespace_with_an_ack_id(void **state)
{
    (void)state;
    rp_sio_nsp_t nsp = nsp_of("/chat");
    rp_buf_t b;
    assert_int_equal(rp_sio_encode_event(&b, &nsp, 12, "hello", "1,\"x\"", 5, 0), 0);
    assert_packet(&b, "2/chat,12[\"hello\",1,\"x\"]");
    assert_decodes(&b, RP_SIO_EVENT, "/chat", 12, 0);
    rp_buf_deinit(&b);
}

static void event_in_the_main_namespace_without_arguments(void **state)
{
    (void)state;
    rp_sio_nsp_t nsp = nsp_of("/");
    rp_buf_t b;
    assert_int_equal(rp_sio_encode_event(&b, &nsp, -1, "tick", "", 0, 0), 0);
    assert_packet(&b, "2[\"tick\"]");
    assert_decodes(&b, RP_SIO_EVENT, "/", -1, 0);
    rp_buf_deinit(&b);
}

static void event_name_is_escaped_as_json(void **state)
{
    (void)state;
    rp_sio_nsp_t nsp = nsp_of("/");
    rp_buf_t b;
    assert_int_equal(rp_sio_encode_event(&b, &nsp, -1, "a\"b\\c", "null", 4, 0), 0);
    assert_packet(&b, "2[\"a\\\"b\\\\c\",null]");
    rp_buf_deinit(&b);
}

static void binary_event_counts_its_attachments(void **state)
{
    (void)state;
    rp_sio_nsp_t nsp = nsp_of("/");
    rp_buf_t b;
    const char args[] = "{\"_placeholder\":true,\"num\":0}";
    assert_int_equal(rp_sio_encode_event(&b, &nsp, -1, "up", args, sizeof(args) - 1, 1), 0);
    assert_packet(&b, "51-[\"up\",{\"_placeholder\":true,\"num\":0}]");
    assert_decodes(&b, RP_SIO_BINARY_EVENT, "/", -1, 1);
    rp_buf_deinit(&b);
}

static void offset_is_the_last_argument(void **state)
{
    (void)state;
    rp_sio_nsp_t nsp = nsp_of("/pipeline");
    rp_buf_t b;
    assert_int_equal(rp_sio_encode_event_offset(&b, &nsp, "file", "{\"id\":3}", 8, 0, "42"), 0);
    assert_packet(&b, "2/pipeline,[\"file\",{\"id\":3},\"42\"]");
    rp_buf_deinit(&b);
    /* No offset (recovery off): the plain event. */
    assert_int_equal(rp_sio_encode_event_offset(&b, &nsp, "file", "{\"id\":3}", 8, 0, NULL), 0);
    assert_packet(&b, "2/pipeline,[\"file\",{\"id\":3}]");
    rp_buf_deinit(&b);
    /* An event without arguments gets the offset as its only one. */
    assert_int_equal(rp_sio_encode_event_offset(&b, &nsp, "hb", "", 0, 0, "7"), 0);
    assert_packet(&b, "2/pipeline,[\"hb\",\"7\"]");
    rp_buf_deinit(&b);
}

static void ack_and_connect_headers_share_the_start(void **state)
{
    (void)state;
    rp_buf_t b;
    assert_int_equal(rp_sio_encode_begin(&b, RP_SIO_ACK, 0, "/chat", 5, 7), 0);
    assert_packet(&b, "3/chat,7");
    rp_buf_deinit(&b);
    assert_int_equal(rp_sio_encode_begin(&b, RP_SIO_CONNECT, 0, "/", 1, -1), 0);
    assert_packet(&b, "0");
    rp_buf_deinit(&b);
    assert_int_equal(rp_sio_encode_start(&b), 0);
    assert_int_equal(b.len, RP_EIO_HEADROOM + 1);
    assert_int_equal(b.data[RP_EIO_HEADROOM], RP_EIO_MESSAGE);
    rp_buf_deinit(&b);
}

static void built_packets_frame_the_text_once_per_transport(void **state)
{
    (void)state;
    rp_sio_nsp_t nsp = nsp_of("/");
    rp_buf_t b;
    assert_int_equal(rp_sio_encode_event(&b, &nsp, -1, "e", "1", 1, 1), 0);
    rp_sio_bin_t att = {"\x01\x02\x03", 3};
    rp_eio_packet_t pkts[2];
    assert_int_equal(rp_sio_build_packets(&b, &att, 1, pkts), 0);
    assert_null(b.data); /* consumed */
    const char text[] = "451-[\"e\",1]";
    size_t n = sizeof(text) - 1;
    assert_span(pkts[0].poll->data + pkts[0].poll_off, pkts[0].poll->len - pkts[0].poll_off, text);
    const unsigned char *ws = (const unsigned char *)pkts[0].ws->data + pkts[0].ws_off;
    assert_int_equal(ws[0], 0x81); /* FIN + text */
    assert_int_equal(ws[1], n);    /* unmasked, short length */
    assert_span((const char *)ws + 2, pkts[0].ws->len - pkts[0].ws_off - 2, text);
    /* The attachment: raw bytes in a binary frame, "b" + base64 for polling. */
    const unsigned char *bin = (const unsigned char *)pkts[1].ws->data + pkts[1].ws_off;
    assert_int_equal(bin[0], 0x82);
    assert_int_equal(bin[1], 3);
    assert_memory_equal(bin + 2, "\x01\x02\x03", 3);
    assert_span(pkts[1].poll->data + pkts[1].poll_off, pkts[1].poll->len - pkts[1].poll_off,
                "bAQID");
    rp_sio_release_packets(pkts, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(event_in_a_namespace_with_an_ack_id),
        cmocka_unit_test(event_in_the_main_namespace_without_arguments),
        cmocka_unit_test(event_name_is_escaped_as_json),
        cmocka_unit_test(binary_event_counts_its_attachments),
        cmocka_unit_test(offset_is_the_last_argument),
        cmocka_unit_test(ack_and_connect_headers_share_the_start),
        cmocka_unit_test(built_packets_frame_the_text_once_per_transport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
