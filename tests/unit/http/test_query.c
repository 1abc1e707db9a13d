/* SPDX-License-Identifier: MIT */
/* http/query: rp_http_query_get, the query-string lookup Engine.IO uses for EIO, transport,
 * sid and t. Inputs are exact-size copies (the query is not NUL-terminated on the wire). */
#include "unit.h"

#include "http/http.h"
#include "util/err.h"

static long get(const char *q, const char *key, char *out, size_t outlen)
{
    size_t n = strlen(q);
    char *copy = dup_exact(q, n);
    long r = rp_http_query_get(copy, n, key, out, outlen);
    free(copy);
    return r;
}

static void finds_engineio_parameters(void **state)
{
    (void)state;
    const char *q = "EIO=4&transport=polling&t=N8hyd6w&sid=lv_VI97HAXpY6yYWAAAC";
    char out[64];
    assert_int_equal(get(q, "EIO", out, sizeof(out)), 1);
    assert_string_equal(out, "4");
    assert_int_equal(get(q, "transport", out, sizeof(out)), 7);
    assert_string_equal(out, "polling");
    assert_int_equal(get(q, "t", out, sizeof(out)), 7);
    assert_string_equal(out, "N8hyd6w");
    assert_int_equal(get(q, "sid", out, sizeof(out)), 20);
    assert_string_equal(out, "lv_VI97HAXpY6yYWAAAC");
}

static void reports_absent_keys(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(get("", "EIO", out, sizeof(out)), RP_ENOTFOUND);
    assert_int_equal(get("EIO=4", "sid", out, sizeof(out)), RP_ENOTFOUND);
    assert_int_equal(get("EIO=4", "EI", out, sizeof(out)), RP_ENOTFOUND);      /* prefix of a key */
    assert_int_equal(get("EIO=4", "EIOX", out, sizeof(out)), RP_ENOTFOUND);    /* key is a prefix */
    assert_int_equal(get("a=EIO&b=1", "EIO", out, sizeof(out)), RP_ENOTFOUND); /* only as a value */
    assert_int_equal(get("eio=4", "EIO", out, sizeof(out)), RP_ENOTFOUND);     /* case-sensitive */
    assert_int_equal(get("&&&", "EIO", out, sizeof(out)), RP_ENOTFOUND);
}

static void handles_empty_and_repeated_values(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(get("sid=&EIO=4", "sid", out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(get("flag&EIO=4", "flag", out, sizeof(out)), 0); /* no '=' */
    assert_string_equal(out, "");
    assert_int_equal(get("a=1&a=2", "a", out, sizeof(out)), 1); /* first one wins */
    assert_string_equal(out, "1");
    assert_int_equal(get("&a=1&", "a", out, sizeof(out)), 1);
    assert_string_equal(out, "1");
    assert_int_equal(get("a=b=c", "a", out, sizeof(out)), 3);
    assert_string_equal(out, "b=c");
}

static void percent_decodes_values(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(get("name=a%20b%2Fc+d", "name", out, sizeof(out)), 7);
    assert_string_equal(out, "a b/c d");
    assert_int_equal(get("x=%e2%82%AC", "x", out, sizeof(out)), 3);
    assert_string_equal(out, "\xe2\x82\xac");
    assert_int_equal(get("x=%25%26%3D", "x", out, sizeof(out)), 3);
    assert_string_equal(out, "%&=");
    assert_int_equal(get("x=100%25", "x", out, sizeof(out)), 4);
    assert_string_equal(out, "100%");
}

static void refuses_bad_escapes(void **state)
{
    (void)state;
    char out[64];
    static const char *const bad[] = {
        "x=%", "x=%4", "x=%G1", "x=%1G", "x=a%", "x=%%41", "x=% 1", "x=%4&y=1",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        if (get(bad[i], "x", out, sizeof(out)) != RP_EPROTO) {
            print_error("accepted \"%s\"\n", bad[i]);
            fail();
        }
    }
    /* A bad escape under another key does not matter. */
    assert_int_equal(get("y=%zz&x=1", "x", out, sizeof(out)), 1);
}

static void refuses_values_that_do_not_fit(void **state)
{
    (void)state;
    char out[8];
    memset(out, '#', sizeof(out));
    assert_int_equal(get("x=1234567", "x", out, sizeof(out)), 7); /* 7 + NUL fits */
    assert_string_equal(out, "1234567");
    assert_int_equal(get("x=12345678", "x", out, sizeof(out)), RP_ETOOBIG);
    assert_int_equal(get("x=%41%41%41%41%41%41%41", "x", out, sizeof(out)), 7);
    assert_string_equal(out, "AAAAAAA");
    assert_int_equal(get("x=%41%41%41%41%41%41%41%41", "x", out, sizeof(out)), RP_ETOOBIG);
    char one[1];
    assert_int_equal(get("x=1", "x", one, sizeof(one)), RP_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_engineio_parameters),
        cmocka_unit_test(reports_absent_keys),
        cmocka_unit_test(handles_empty_and_repeated_values),
        cmocka_unit_test(percent_decodes_values),
        cmocka_unit_test(refuses_bad_escapes),
        cmocka_unit_test(refuses_values_that_do_not_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
