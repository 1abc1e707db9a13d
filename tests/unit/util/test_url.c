/* SPDX-License-Identifier: MIT */
/* util/url: the producers' hub URLs. Every accepted shape is checked field by field (host,
 * port, the IPv6 flag, the prefix and the Host authority), and every refused one must be
 * RP_EINVAL with a reason, since the CLI prints that reason to the user. */
#include "unit.h"

#include "util/err.h"
#include "util/url.h"

static void parses_host_port_and_prefix(void **state)
{
    (void)state;
    rp_url_t u;
    assert_int_equal(rp_url_parse(&u, "http://hub.example:8103/rag/pulse", NULL), 0);
    assert_string_equal(u.host, "hub.example");
    assert_string_equal(u.port, "8103");
    assert_int_equal(u.port_num, 8103);
    assert_int_equal(u.ipv6, 0);
    assert_string_equal(u.prefix, "/rag/pulse");
}

static void default_port_is_80_and_scheme_is_optional(void **state)
{
    (void)state;
    rp_url_t u;
    assert_int_equal(rp_url_parse(&u, "127.0.0.1", NULL), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_string_equal(u.port, "80");
    assert_int_equal(u.port_num, 80);
    assert_string_equal(u.prefix, "");
    assert_int_equal(rp_url_parse(&u, "http://h", NULL), 0);
    assert_string_equal(u.host, "h");
    assert_string_equal(u.port, "80");
}

static void trailing_slashes_leave_the_prefix(void **state)
{
    (void)state;
    rp_url_t u;
    assert_int_equal(rp_url_parse(&u, "http://h:1/", NULL), 0);
    assert_string_equal(u.prefix, "");
    assert_int_equal(rp_url_parse(&u, "http://h:1/p//", NULL), 0);
    assert_string_equal(u.prefix, "/p");
    assert_int_equal(rp_url_parse(&u, "http://h/a/b/", NULL), 0);
    assert_string_equal(u.prefix, "/a/b");
}

static void ipv6_literal_keeps_brackets_in_the_authority(void **state)
{
    (void)state;
    rp_url_t u;
    char auth[300];
    assert_int_equal(rp_url_parse(&u, "http://[::1]:8103/x", NULL), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.ipv6, 1);
    assert_int_equal(u.port_num, 8103);
    assert_string_equal(u.prefix, "/x");
    assert_int_equal(rp_url_authority(&u, auth, sizeof(auth)), (int)strlen("[::1]:8103"));
    assert_string_equal(auth, "[::1]:8103");
    assert_int_equal(rp_url_parse(&u, "[fe80::1:2]", NULL), 0);
    assert_string_equal(u.host, "fe80::1:2");
    assert_string_equal(u.port, "80");
    assert_int_equal(rp_url_parse(&u, "http://h:9", NULL), 0);
    assert_int_equal(rp_url_authority(&u, auth, sizeof(auth)), 3);
    assert_string_equal(auth, "h:9");
}

static void port_bounds(void **state)
{
    (void)state;
    rp_url_t u;
    assert_int_equal(rp_url_parse(&u, "http://h:1", NULL), 0);
    assert_int_equal(u.port_num, 1);
    assert_int_equal(rp_url_parse(&u, "http://h:65535", NULL), 0);
    assert_int_equal(u.port_num, 65535);
    assert_string_equal(u.port, "65535");
    assert_int_equal(rp_url_parse(&u, "http://h:00080", NULL), 0);
    assert_string_equal(u.port, "80");
}

static void bad_urls_are_einval_with_a_reason(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "https://h/",      "ws://h",       "",
        "http://",         "http://:80",   "http:///p",
        "http://h:",       "http://h:0",   "http://h:65536",
        "http://h:123456", "http://h:8x",  "http://h:-1",
        "http://[::1",     "http://[]:80", "http://[::1]x",
        "http://[zz::1]",  "http://h p",   "http://h/p?q=1",
        "http://h/#f",     "http://u@h",   "http://h\r\n",
        "http://h/\x7f",   NULL,
    };
    for (size_t i = 0; bad[i]; i++) {
        rp_url_t u;
        const char *why = NULL;
        int rc = rp_url_parse(&u, bad[i], &why);
        if (rc != RP_EINVAL)
            print_error("\"%s\" gave %d\n", bad[i], rc);
        assert_int_equal(rc, RP_EINVAL);
        assert_non_null(why);
        assert_true(strlen(why) > 0);
    }
    rp_url_t u;
    assert_int_equal(rp_url_parse(&u, NULL, NULL), RP_EINVAL);
}

static void other_scheme_says_http_only(void **state)
{
    (void)state;
    rp_url_t u;
    const char *why = NULL;
    assert_int_equal(rp_url_parse(&u, "https://hub", &why), RP_EINVAL);
    assert_non_null(strstr(why, "only http://"));
}

static void long_host_and_prefix_are_refused(void **state)
{
    (void)state;
    char s[1200];
    memset(s, 'a', sizeof(s));
    memcpy(s, "http://", 7);
    s[7 + 256] = '\0'; /* a 256-byte host: one past what fits */
    rp_url_t u;
    assert_int_equal(rp_url_parse(&u, s, NULL), RP_EINVAL);
    s[7 + 255] = '\0';
    assert_int_equal(rp_url_parse(&u, s, NULL), 0);
    assert_int_equal(strlen(u.host), 255);
    memset(s, 'a', sizeof(s));
    memcpy(s, "http://h/", 9);
    s[8 + 512] = '\0'; /* a 512-byte prefix: one past what fits */
    assert_int_equal(rp_url_parse(&u, s, NULL), RP_EINVAL);
    s[8 + 511] = '\0';
    assert_int_equal(rp_url_parse(&u, s, NULL), 0);
    assert_int_equal(strlen(u.prefix), 511);
}

static void authority_too_small_is_etoobig(void **state)
{
    (void)state;
    rp_url_t u;
    char small[6];
    assert_int_equal(rp_url_parse(&u, "http://[::1]:8103", NULL), 0);
    assert_int_equal(rp_url_authority(&u, small, sizeof(small)), RP_ETOOBIG);
    assert_string_equal(small, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_host_port_and_prefix),
        cmocka_unit_test(default_port_is_80_and_scheme_is_optional),
        cmocka_unit_test(trailing_slashes_leave_the_prefix),
        cmocka_unit_test(ipv6_literal_keeps_brackets_in_the_authority),
        cmocka_unit_test(port_bounds),
        cmocka_unit_test(bad_urls_are_einval_with_a_reason),
        cmocka_unit_test(other_scheme_says_http_only),
        cmocka_unit_test(long_host_and_prefix_are_refused),
        cmocka_unit_test(authority_too_small_is_etoobig),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
