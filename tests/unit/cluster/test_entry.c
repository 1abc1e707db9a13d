/* SPDX-License-Identifier: MIT */
/* cluster/entry: the codecs of the @socket.io/redis-streams-adapter wire. Stream entries: the
 * known fields are read, unknown ones ignored, and an entry without uid, nsp or a numeric type,
 * or with a namespace that is not "/..." UTF-8 without NUL, or ragpulse's numbers not decimal,
 * is refused. BROADCAST data: what rp_redis_bcast_encode writes decodes to the same event
 * bytes, name, first argument, rooms and except (escapes included, 256 rooms at most), as does
 * a Node server's data; anything else (another packet type, another namespace, no event name,
 * bad JSON) is RP_EPROTO. Sessions: encode/decode round trips, a Node server's session without
 * nsp decodes with nsp "", and truncated, oversized or ill-formed values are refused. */
#include "unit.h"

#include <msgpack.h>

#include "cluster/entry.h"
#include "util/base64.h"
#include "util/buf.h"
#include "util/err.h"

/* Decodes the entry of n (field, value) string pairs. */
static int decode_pairs(const char *const *kv, size_t n, rp_redis_entry_t *e)
{
    size_t lens[32];
    for (size_t i = 0; i < 2 * n; i++)
        lens[i] = strlen(kv[i]);
    return rp_redis_entry_decode(kv, lens, n, e);
}

static void entry_reads_known_fields_and_ignores_others(void **state)
{
    (void)state;
    const char *kv[] = {"uid",  "0123456789abcdef", "nsp",   "/pipeline",  "type", "3",
                        "data", "{\"packet\":1}",   "extra", "ignored",    "rpid", "42",
                        "rpts", "1767225600000",    "rpt",   "18446744073"};
    rp_redis_entry_t e;
    assert_int_equal(decode_pairs(kv, 8, &e), 0);
    assert_span(e.uid, e.uid_len, "0123456789abcdef");
    assert_span(e.nsp, e.nsp_len, "/pipeline");
    assert_int_equal(e.type, 3);
    assert_span(e.data, e.data_len, "{\"packet\":1}");
    assert_int_equal(e.rpid, 42);
    assert_int_equal(e.rpts, 1767225600000LL);
    assert_int_equal(e.ticket, 18446744073ULL);
    /* Without ragpulse's fields and data: 0 and NULL. */
    assert_int_equal(decode_pairs(kv, 3, &e), 0);
    assert_null(e.data);
    assert_int_equal(e.rpid, 0);
    assert_int_equal(e.ticket, 0);
}

static void entry_refuses_what_it_cannot_trust(void **state)
{
    (void)state;
    static const char *const bad[][8] = {
        {"nsp", "/", "type", "3", "x", "y", "x", "y"},          /* no uid */
        {"uid", "u", "type", "3", "x", "y", "x", "y"},          /* no nsp */
        {"uid", "u", "nsp", "/", "x", "y", "x", "y"},           /* no type */
        {"uid", "u", "nsp", "/", "type", "three", "x", "y"},    /* type not a number */
        {"uid", "u", "nsp", "/", "type", "1001", "x", "y"},     /* type out of range */
        {"uid", "u", "nsp", "/", "type", "", "x", "y"},         /* type empty */
        {"uid", "u", "nsp", "pipeline", "type", "3", "x", "y"}, /* nsp without its slash */
        {"uid", "u", "nsp", "", "type", "3", "x", "y"},         /* nsp empty */
        {"uid", "u", "nsp", "/\xff", "type", "3", "x", "y"},    /* nsp not UTF-8 */
        {"uid", "u", "nsp", "/", "type", "3", "rpid", "-1"},    /* rpid not decimal */
        {"uid", "u", "nsp", "/", "type", "3", "rpts", "1e3"},   /* rpts not decimal */
        {"uid", "u", "nsp", "/", "type", "3", "rpt", "12345678901234567890"}, /* 20 digits */
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        rp_redis_entry_t e;
        assert_int_equal(decode_pairs(bad[i], 4, &e), RP_EPROTO);
    }
    /* A NUL inside the namespace (a span, not a C string). */
    const char *kv[] = {"uid", "u", "nsp", "/a\0b", "type", "3"};
    size_t lens[] = {3, 1, 3, 4, 4, 1};
    rp_redis_entry_t e;
    assert_int_equal(rp_redis_entry_decode(kv, lens, 3, &e), RP_EPROTO);
}

static void broadcast_round_trips_event_rooms_and_except(void **state)
{
    (void)state;
    rp_buf_t out, names;
    rp_buf_init(&out, 1 << 20);
    rp_buf_init(&names, 1 << 20);
    const char *args = "[\"rag:event\",{\"id\":7,\"text\":\"caf\\u00e9 \\\"q\\\"\"},2]";
    const char *rooms[] = {"pipeline:docs-1", "quote\"back\\slash", "caf\xc3\xa9"};
    const char *except[] = {"socket:abc"};
    assert_int_equal(
        rp_redis_bcast_encode(&out, "/pipeline", 9, args, strlen(args), rooms, 3, except, 1), 0);
    char *data = dup_exact(out.data, out.len);
    rp_redis_bcast_t b;
    assert_int_equal(rp_redis_bcast_decode(data, out.len, "/pipeline", 9, &names, &b), 0);
    assert_span(b.args, b.args_len, args); /* the event's bytes as written, not re-encoded */
    assert_string_equal(b.name, "rag:event");
    assert_span(b.first, b.first_len, "{\"id\":7,\"text\":\"caf\\u00e9 \\\"q\\\"\"}");
    assert_int_equal(b.nrooms, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(b.rooms[i], rooms[i]);
    assert_int_equal(b.nexcept, 1);
    assert_string_equal(b.except[0], "socket:abc");
    assert_int_equal(b.with_ack, 0);
    /* Another namespace's decoder refuses it. */
    assert_int_equal(rp_redis_bcast_decode(data, out.len, "/other", 6, &names, &b), RP_EPROTO);
    free(data);
    /* No rooms (NULL), no except, an event without arguments. */
    rp_buf_reset(&out);
    assert_int_equal(rp_redis_bcast_encode(&out, "/", 1, "[\"ping\"]", 8, NULL, 5, NULL, 0), 0);
    assert_int_equal(rp_redis_bcast_decode(out.data, out.len, "/", 1, &names, &b), 0);
    assert_string_equal(b.name, "ping");
    assert_null(b.first);
    assert_int_equal(b.nrooms, 0);
    assert_int_equal(b.nexcept, 0);
    rp_buf_deinit(&out);
    rp_buf_deinit(&names);
}

static void broadcast_keeps_256_rooms_and_refuses_257(void **state)
{
    (void)state;
    rp_buf_t out, names;
    rp_buf_init(&out, 1 << 20);
    rp_buf_init(&names, 1 << 20);
    static char storage[RP_REDIS_MAX_ROOMS + 1][16];
    const char *rooms[RP_REDIS_MAX_ROOMS + 1];
    for (size_t i = 0; i <= RP_REDIS_MAX_ROOMS; i++) {
        snprintf(storage[i], sizeof(storage[i]), "room-%zu", i);
        rooms[i] = storage[i];
    }
    rp_redis_bcast_t b;
    assert_int_equal(
        rp_redis_bcast_encode(&out, "/", 1, "[\"e\"]", 5, NULL, 0, rooms, RP_REDIS_MAX_ROOMS), 0);
    assert_int_equal(rp_redis_bcast_decode(out.data, out.len, "/", 1, &names, &b), 0);
    assert_int_equal(b.nexcept, RP_REDIS_MAX_ROOMS);
    assert_string_equal(b.except[RP_REDIS_MAX_ROOMS - 1], "room-255");
    rp_buf_reset(&out);
    assert_int_equal(
        rp_redis_bcast_encode(&out, "/", 1, "[\"e\"]", 5, rooms, RP_REDIS_MAX_ROOMS + 1, NULL, 0),
        0);
    assert_int_equal(rp_redis_bcast_decode(out.data, out.len, "/", 1, &names, &b), RP_EPROTO);
    rp_buf_deinit(&out);
    rp_buf_deinit(&names);
}

static void broadcast_decodes_a_node_servers_data(void **state)
{
    (void)state;
    rp_buf_t names;
    rp_buf_init(&names, 4096);
    /* As the Node adapter writes it: no nsp in the packet, flags set, rooms only. */
    const char *node =
        "{\"uid\":\"x\",\"type\":3,\"packet\":{\"type\":2,\"data\":[\"chat\",\"hi\"]},"
        "\"opts\":{\"rooms\":[\"r1\"],\"flags\":{\"volatile\":true}}}";
    rp_redis_bcast_t b;
    assert_int_equal(rp_redis_bcast_decode(node, strlen(node), "/chat", 5, &names, &b), 0);
    assert_string_equal(b.name, "chat");
    assert_span(b.first, b.first_len, "\"hi\"");
    assert_int_equal(b.nrooms, 1);
    assert_string_equal(b.rooms[0], "r1");
    /* An ack broadcast is decoded but flagged (not ours to relay). */
    const char *ack = "{\"requestId\":\"r\",\"packet\":{\"type\":2,\"data\":[\"q\"]},\"opts\":{}}";
    assert_int_equal(rp_redis_bcast_decode(ack, strlen(ack), "/", 1, &names, &b), 0);
    assert_int_equal(b.with_ack, 1);
    const char *pid = "{\"packet\":{\"type\":2,\"id\":4,\"data\":[\"q\"]},\"opts\":{}}";
    assert_int_equal(rp_redis_bcast_decode(pid, strlen(pid), "/", 1, &names, &b), 0);
    assert_int_equal(b.with_ack, 1);
    rp_buf_deinit(&names);
}

static void broadcast_refuses_anything_but_a_plain_event(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "not json",
        "{\"packet\":{\"type\":2,\"data\":[\"e\"]}}",                            /* no opts */
        "{\"opts\":{}}",                                                         /* no packet */
        "{\"packet\":{\"type\":3,\"data\":[\"e\"]},\"opts\":{}}",                /* an ack packet */
        "{\"packet\":{\"type\":22,\"data\":[\"e\"]},\"opts\":{}}",               /* type 22 */
        "{\"packet\":{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/x\"},\"opts\":{}}", /* another nsp */
        "{\"packet\":{\"type\":2,\"data\":[\"e\"],\"nsp\":1},\"opts\":{}}", /* nsp not a string */
        "{\"packet\":{\"type\":2,\"data\":{}},\"opts\":{}}",                /* data not an array */
        "{\"packet\":{\"type\":2,\"data\":[]},\"opts\":{}}",                /* no event name */
        "{\"packet\":{\"type\":2,\"data\":[1]},\"opts\":{}}",               /* name not a string */
        "{\"packet\":{\"type\":2,\"data\":[\"e\"]},\"opts\":{\"rooms\":[1]}}", /* room not a string
                                                                                */
        "{\"packet\":{\"type\":2,\"data\":[\"e\"]},\"opts\":{}",               /* truncated */
    };
    rp_buf_t names;
    rp_buf_init(&names, 4096);
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char *d = dup_exact(bad[i], strlen(bad[i]));
        rp_redis_bcast_t b;
        int rc = rp_redis_bcast_decode(d, strlen(bad[i]), "/", 1, &names, &b);
        if (rc != RP_EPROTO)
            fail_msg("case %zu (%s): %d", i, bad[i], rc);
        free(d);
    }
    rp_buf_deinit(&names);
}

static void session_round_trips(void **state)
{
    (void)state;
    rp_buf_t out, names;
    rp_buf_init(&out, 1 << 16);
    rp_buf_init(&names, 1 << 16);
    const char *rooms[] = {"sid-room", "pipeline:docs-1", "caf\xc3\xa9"};
    assert_int_equal(rp_redis_session_encode(&out, "pid-1", "sid-1", "/pipeline", rooms, 3), 0);
    rp_redis_session_t s;
    char *b64 = dup_exact(out.data, out.len);
    assert_int_equal(rp_redis_session_decode(b64, out.len, &names, &s), 0);
    assert_string_equal(s.pid, "pid-1");
    assert_string_equal(s.sid, "sid-1");
    assert_string_equal(s.nsp, "/pipeline");
    assert_int_equal(s.nrooms, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(s.rooms[i], rooms[i]);
    /* Every proper prefix is refused, never read past (the map declares five entries). */
    for (size_t n = 0; n < out.len; n++) {
        char *p = dup_exact(out.data, n);
        assert_true(rp_redis_session_decode(p, n, &names, &s) < 0);
        assert_int_equal(s.nrooms, 0);
        free(p);
    }
    free(b64);
    rp_buf_deinit(&out);
    rp_buf_deinit(&names);
}

/* base64 of the msgpack a packer filled. */
static char *b64_of(msgpack_sbuffer *sb, size_t *len)
{
    char *out = malloc(rp_base64_encoded_len(sb->size) + 1);
    *len = rp_base64_encode((const unsigned char *)sb->data, sb->size, out);
    out[*len] = '\0';
    return out;
}

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void session_from_a_node_server_has_an_empty_nsp(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    pack_cstr(&pk, "sid");
    pack_cstr(&pk, "S");
    pack_cstr(&pk, "pid");
    pack_cstr(&pk, "P");
    pack_cstr(&pk, "rooms");
    msgpack_pack_array(&pk, 1);
    pack_cstr(&pk, "S");
    pack_cstr(&pk, "data");
    msgpack_pack_map(&pk, 1);
    pack_cstr(&pk, "k");
    msgpack_pack_int(&pk, 1);
    size_t len;
    char *b64 = b64_of(&sb, &len);
    rp_buf_t names;
    rp_buf_init(&names, 4096);
    rp_redis_session_t s;
    assert_int_equal(rp_redis_session_decode(b64, len, &names, &s), 0);
    assert_string_equal(s.sid, "S");
    assert_string_equal(s.pid, "P");
    assert_string_equal(s.nsp, "");
    assert_int_equal(s.nrooms, 1);
    free(b64);
    rp_buf_deinit(&names);
    msgpack_sbuffer_destroy(&sb);
}

/* A session map with the given extra shape; which: what is wrong with it. */
static char *bad_session(int which, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    switch (which) {
    case 0: /* no sid */
        msgpack_pack_map(&pk, 1);
        pack_cstr(&pk, "pid");
        pack_cstr(&pk, "P");
        break;
    case 1: /* sid twice */
        msgpack_pack_map(&pk, 3);
        pack_cstr(&pk, "sid");
        pack_cstr(&pk, "S");
        pack_cstr(&pk, "sid");
        pack_cstr(&pk, "T");
        pack_cstr(&pk, "pid");
        pack_cstr(&pk, "P");
        break;
    case 2: /* a room that is not a string */
        msgpack_pack_map(&pk, 3);
        pack_cstr(&pk, "sid");
        pack_cstr(&pk, "S");
        pack_cstr(&pk, "pid");
        pack_cstr(&pk, "P");
        pack_cstr(&pk, "rooms");
        msgpack_pack_array(&pk, 1);
        msgpack_pack_int(&pk, 5);
        break;
    case 3: /* 257 rooms */
        msgpack_pack_map(&pk, 3);
        pack_cstr(&pk, "sid");
        pack_cstr(&pk, "S");
        pack_cstr(&pk, "pid");
        pack_cstr(&pk, "P");
        pack_cstr(&pk, "rooms");
        msgpack_pack_array(&pk, RP_REDIS_MAX_ROOMS + 1);
        for (int i = 0; i <= RP_REDIS_MAX_ROOMS; i++)
            pack_cstr(&pk, "r");
        break;
    case 4: /* not a map */
        msgpack_pack_array(&pk, 0);
        break;
    case 5: /* a sid with a NUL in it */
        msgpack_pack_map(&pk, 2);
        pack_cstr(&pk, "sid");
        msgpack_pack_str(&pk, 3);
        msgpack_pack_str_body(&pk, "a\0b", 3);
        pack_cstr(&pk, "pid");
        pack_cstr(&pk, "P");
        break;
    default: /* an array declaring 2^31 entries in a few bytes */
        msgpack_pack_map(&pk, 1);
        pack_cstr(&pk, "rooms");
        msgpack_sbuffer_write(&sb, "\xdd\x80\x00\x00\x00", 5);
        break;
    }
    char *b64 = b64_of(&sb, len);
    msgpack_sbuffer_destroy(&sb);
    return b64;
}

static void session_refuses_ill_formed_values(void **state)
{
    (void)state;
    rp_buf_t names;
    rp_buf_init(&names, 1 << 16);
    rp_redis_session_t s;
    for (int which = 0; which <= 6; which++) {
        size_t len;
        char *b64 = bad_session(which, &len);
        int rc = rp_redis_session_decode(b64, len, &names, &s);
        if (rc != RP_EPROTO)
            fail_msg("case %d: %d", which, rc);
        assert_int_equal(s.nrooms, 0);
        free(b64);
    }
    assert_int_equal(rp_redis_session_decode("", 0, &names, &s), RP_EPROTO);
    assert_int_equal(rp_redis_session_decode("!!!!", 4, &names, &s), RP_EPROTO);
    char *big = malloc(65540);
    memset(big, 'A', 65540);
    assert_int_equal(rp_redis_session_decode(big, 65540, &names, &s), RP_EPROTO);
    free(big);
    rp_buf_deinit(&names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(entry_reads_known_fields_and_ignores_others),
        cmocka_unit_test(entry_refuses_what_it_cannot_trust),
        cmocka_unit_test(broadcast_round_trips_event_rooms_and_except),
        cmocka_unit_test(broadcast_keeps_256_rooms_and_refuses_257),
        cmocka_unit_test(broadcast_decodes_a_node_servers_data),
        cmocka_unit_test(broadcast_refuses_anything_but_a_plain_event),
        cmocka_unit_test(session_round_trips),
        cmocka_unit_test(session_from_a_node_server_has_an_empty_nsp),
        cmocka_unit_test(session_refuses_ill_formed_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
