/* SPDX-License-Identifier: MIT */
/* util/utf8: the incremental validator behind WebSocket text frames. Each sequence is fed
 * whole and then one byte per call, and must give the same verdict both ways (a fragmented
 * text message is checked frame by frame). Boundaries follow Unicode table 3-7. */
#include "unit.h"

#include "util/err.h"
#include "util/utf8.h"

enum {
    VALID,
    INVALID,
    TRUNCATED
};

static const struct {
    const char *name;
    const char *bytes;
    int verdict;
} cases[] = {
    {"empty", "", VALID},
    {"ascii", "Hello, world", VALID},
    {"U+0080", "\xc2\x80", VALID},
    {"U+00E9", "\xc3\xa9", VALID},
    {"U+07FF", "\xdf\xbf", VALID},
    {"U+0800", "\xe0\xa0\x80", VALID},
    {"U+20AC", "\xe2\x82\xac", VALID},
    {"U+D7FF", "\xed\x9f\xbf", VALID},
    {"U+E000", "\xee\x80\x80", VALID},
    {"U+FFFF", "\xef\xbf\xbf", VALID},
    {"U+10000", "\xf0\x90\x80\x80", VALID},
    {"U+1F600", "\xf0\x9f\x98\x80", VALID},
    {"U+10FFFF", "\xf4\x8f\xbf\xbf", VALID},
    {"mixed", "a\xc3\xa9z\xe2\x82\xac\xf0\x9f\x98\x80!", VALID},
    /* RFC 6455 §5.6 / Autobahn 6.2: "Hello-µ@ßöäüàá-UTF-8!!" */
    {"autobahn 6.2",
     "\x48\x65\x6c\x6c\x6f\x2d\xc2\xb5\x40\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0"
     "\xc3\xa1\x2d\x55\x54\x46\x2d\x38\x21\x21",
     VALID},
    {"overlong NUL 2 bytes", "\xc0\x80", INVALID},
    {"overlong '/' 2 bytes", "\xc0\xaf", INVALID},
    {"overlong C1", "\xc1\xbf", INVALID},
    {"overlong 3 bytes", "\xe0\x80\xaf", INVALID},
    {"overlong U+07FF in 3", "\xe0\x9f\xbf", INVALID},
    {"overlong 4 bytes", "\xf0\x80\x80\xaf", INVALID},
    {"overlong U+FFFF in 4", "\xf0\x8f\xbf\xbf", INVALID},
    {"surrogate D800", "\xed\xa0\x80", INVALID},
    {"surrogate DBFF", "\xed\xaf\xbf", INVALID},
    {"surrogate DC00", "\xed\xb0\x80", INVALID},
    {"surrogate DFFF", "\xed\xbf\xbf", INVALID},
    {"surrogate pair as CESU-8", "\xed\xa0\xbd\xed\xb8\x80", INVALID},
    {"U+110000", "\xf4\x90\x80\x80", INVALID},
    {"F5 lead", "\xf5\x80\x80\x80", INVALID},
    {"F8 lead (5 bytes)", "\xf8\x88\x80\x80\x80", INVALID},
    {"FC lead (6 bytes)", "\xfc\x84\x80\x80\x80\x80", INVALID},
    {"FE", "\xfe", INVALID},
    {"FF", "\xff", INVALID},
    {"lone continuation 80", "\x80", INVALID},
    {"lone continuation BF", "a\xbf", INVALID},
    {"lead then ASCII", "\xc3(", INVALID},
    {"3-byte lead then ASCII", "\xe2\x82(", INVALID},
    {"4-byte lead then lead", "\xf0\x9f\xf0", INVALID},
    {"2 of 2 missing", "\xc3", TRUNCATED},
    {"1 of 3 missing", "\xe2\x82", TRUNCATED},
    {"2 of 3 missing", "\xe2", TRUNCATED},
    {"1 of 4 missing", "\xf0\x9f\x98", TRUNCATED},
    {"3 of 4 missing", "a\xf4", TRUNCATED},
};

static int verdict_of(int rc, const rp_utf8_t *u)
{
    if (rc == RP_EPROTO)
        return INVALID;
    assert_int_equal(rc, 0);
    return rp_utf8_complete(u) ? VALID : TRUNCATED;
}

static void classifies_sequences_fed_whole(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        size_t n = strlen(cases[i].bytes);
        char *p = dup_exact(cases[i].bytes, n);
        rp_utf8_t u;
        rp_utf8_init(&u);
        int v = verdict_of(rp_utf8_feed(&u, (const unsigned char *)p, n), &u);
        if (v != cases[i].verdict) {
            print_error("%s: verdict %d, expected %d\n", cases[i].name, v, cases[i].verdict);
            fail();
        }
        free(p);
    }
}

static void classifies_sequences_fed_byte_by_byte(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        size_t n = strlen(cases[i].bytes);
        rp_utf8_t u;
        rp_utf8_init(&u);
        int rc = 0;
        for (size_t k = 0; k < n && rc == 0; k++) {
            char *p = dup_exact(cases[i].bytes + k, 1);
            rc = rp_utf8_feed(&u, (const unsigned char *)p, 1);
            free(p);
        }
        int v = verdict_of(rc, &u);
        if (v != cases[i].verdict) {
            print_error("%s: verdict %d, expected %d\n", cases[i].name, v, cases[i].verdict);
            fail();
        }
    }
}

static void classifies_sequences_split_at_every_offset(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        size_t n = strlen(cases[i].bytes);
        for (size_t k = 0; k <= n; k++) {
            rp_utf8_t u;
            rp_utf8_init(&u);
            int rc = rp_utf8_feed(&u, (const unsigned char *)cases[i].bytes, k);
            if (rc == 0)
                rc = rp_utf8_feed(&u, (const unsigned char *)cases[i].bytes + k, n - k);
            assert_int_equal(verdict_of(rc, &u), cases[i].verdict);
        }
    }
}

static void accepts_every_scalar_value_and_no_surrogate(void **state)
{
    (void)state;
    /* Encode every code point the naive way; surrogates must be refused, the rest accepted. */
    for (unsigned cp = 1; cp <= 0x10FFFF; cp += (cp < 0x20000 ? 1 : 97)) {
        unsigned char b[4];
        size_t l;
        if (cp < 0x80) {
            b[0] = (unsigned char)cp;
            l = 1;
        } else if (cp < 0x800) {
            b[0] = (unsigned char)(0xC0 | cp >> 6);
            b[1] = (unsigned char)(0x80 | (cp & 63));
            l = 2;
        } else if (cp < 0x10000) {
            b[0] = (unsigned char)(0xE0 | cp >> 12);
            b[1] = (unsigned char)(0x80 | ((cp >> 6) & 63));
            b[2] = (unsigned char)(0x80 | (cp & 63));
            l = 3;
        } else {
            b[0] = (unsigned char)(0xF0 | cp >> 18);
            b[1] = (unsigned char)(0x80 | ((cp >> 12) & 63));
            b[2] = (unsigned char)(0x80 | ((cp >> 6) & 63));
            b[3] = (unsigned char)(0x80 | (cp & 63));
            l = 4;
        }
        rp_utf8_t u;
        rp_utf8_init(&u);
        int rc = rp_utf8_feed(&u, b, l);
        if (cp >= 0xD800 && cp <= 0xDFFF)
            assert_int_equal(rc, RP_EPROTO);
        else
            assert_true(rc == 0 && rp_utf8_complete(&u));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(classifies_sequences_fed_whole),
        cmocka_unit_test(classifies_sequences_fed_byte_by_byte),
        cmocka_unit_test(classifies_sequences_split_at_every_offset),
        cmocka_unit_test(accepts_every_scalar_value_and_no_surrogate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
