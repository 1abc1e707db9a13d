/* SPDX-License-Identifier: MIT */
/* util/base64: RFC 4648 §10 test vectors both ways, every byte value, and the inputs the
 * decoder must refuse (Engine.IO's "b"+base64 items and WebSocket keys come off the wire). */
#include "unit.h"

#include "util/base64.h"
#include "util/err.h"

static const struct {
    const char *plain;
    const char *encoded;
} rfc4648[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void encodes_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(rfc4648); i++) {
        size_t n = strlen(rfc4648[i].plain);
        char out[16];
        memset(out, '#', sizeof(out));
        assert_int_equal(rp_base64_encoded_len(n), strlen(rfc4648[i].encoded));
        size_t w = rp_base64_encode((const unsigned char *)rfc4648[i].plain, n, out);
        assert_span(out, w, rfc4648[i].encoded);
        assert_int_equal(out[w], '#'); /* writes no NUL */
    }
}

static void decodes_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(rfc4648); i++) {
        size_t n = strlen(rfc4648[i].encoded);
        char *in = dup_exact(rfc4648[i].encoded, n);
        unsigned char out[16];
        long w = rp_base64_decode(in, n, out);
        assert_true(w >= 0);
        assert_span((const char *)out, (size_t)w, rfc4648[i].plain);
        free(in);
    }
}

static void decodes_engineio_binary_example(void **state)
{
    (void)state;
    /* engine.io-protocol v4: "bAQIDBA==" is <Buffer 01 02 03 04>. */
    unsigned char out[6];
    static const unsigned char want[] = {1, 2, 3, 4};
    long w = rp_base64_decode("AQIDBA==", 8, out);
    assert_bytes(out, (size_t)w, want, sizeof(want));
}

static void round_trips_every_byte_value(void **state)
{
    (void)state;
    unsigned char in[256 + 2];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)(i * 7 + 3);
    for (size_t i = 0; i < 256; i++)
        in[i] = (unsigned char)i;
    for (size_t n = 0; n <= sizeof(in); n++) {
        char enc[400];
        size_t w = rp_base64_encode(in, n, enc);
        assert_int_equal(w, rp_base64_encoded_len(n));
        unsigned char *dec = malloc(w / 4 * 3 + 1);
        assert_non_null(dec);
        long d = rp_base64_decode(enc, w, dec);
        assert_bytes(dec, (size_t)d, in, n);
        free(dec);
    }
}

static void rejects_bad_length_characters_and_padding(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Z",        "Zg",       "Zg=",      "Zm9vY", "Zm9vYg=", /* not a multiple of 4 */
        "====",     "Z===",     "=Zg=",     "Z=g=",  "Zg=a",    /* padding misplaced */
        "Zg==Zg==", "Zm8=Zm9v", "Zg==Zm9v",                     /* padding before the end */
        "Zm9!",     "Zm 9",     "Zm9\n",    "Zm-_",  "Zm9\x80", /* outside the alphabet */
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        size_t n = strlen(bad[i]);
        char *in = dup_exact(bad[i], n);
        unsigned char out[16];
        if (rp_base64_decode(in, n, out) != RP_EPROTO) {
            print_error("accepted: \"%s\"\n", bad[i]);
            fail();
        }
        free(in);
    }
    /* An embedded NUL, given with its length. */
    unsigned char out[8];
    assert_int_equal(rp_base64_decode("Zm9v\0AAA", 8, out), RP_EPROTO);
    assert_int_equal(rp_base64_decode("Zm\0v", 4, out), RP_EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encodes_rfc4648_vectors),
        cmocka_unit_test(decodes_rfc4648_vectors),
        cmocka_unit_test(decodes_engineio_binary_example),
        cmocka_unit_test(round_trips_every_byte_value),
        cmocka_unit_test(rejects_bad_length_characters_and_padding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
