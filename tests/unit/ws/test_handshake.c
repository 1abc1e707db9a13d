/* SPDX-License-Identifier: MIT */
/* ws/handshake: Sec-WebSocket-Accept from RFC 6455 §1.3 and §4.2.2, and the keys §4.2.1 says
 * a server must refuse (not 16 bytes once base64-decoded). */
#include "unit.h"

#include "util/err.h"
#include "ws/ws.h"

static void computes_rfc6455_example_accept_key(void **state)
{
    (void)state;
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    char *k = dup_exact(key, 24);
    char out[29];
    memset(out, 'x', sizeof(out));
    assert_int_equal(rp_ws_accept_key(k, 24, out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    free(k);
}

static void computes_accept_key_for_other_nonces(void **state)
{
    (void)state;
    /* Values checked against Python: base64(sha1(key + GUID)). */
    char out[29];
    assert_int_equal(rp_ws_accept_key("AAAAAAAAAAAAAAAAAAAAAA==", 24, out), 0);
    assert_string_equal(out, "ICX+Yqv66kxgM0FcWaLWlFLwTAI=");
    assert_int_equal(rp_ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", 24, out), 0);
    assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

static void rejects_keys_that_are_not_16_bytes(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ=",   /* 23 characters */
        "dGhlIHNhbXBsZSBub25jZQ===", /* 25 characters */
        "dGhlIHNhbXBsZSBub25jZQAA",  /* 24 characters, 18 bytes */
        "dGhlIHNhbXBsZSBub25jZA=A",  /* padding in the wrong place */
        "dGhlIHNhbXBsZSBub25jZ===",  /* bad padding */
        "dGhlIHNhbXBsZSBub25jZQ!=",  /* not base64 */
        "dGhlIHNhbXBsZSBub25j ZQ=",  /* space */
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        size_t n = strlen(bad[i]);
        char *k = dup_exact(bad[i], n);
        char out[29];
        if (rp_ws_accept_key(k, n, out) != RP_EPROTO) {
            print_error("accepted key \"%s\"\n", bad[i]);
            fail();
        }
        free(k);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(computes_rfc6455_example_accept_key),
        cmocka_unit_test(computes_accept_key_for_other_nonces),
        cmocka_unit_test(rejects_keys_that_are_not_16_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
