/* SPDX-License-Identifier: MIT */
/* util/json: the raw-text scanner that checks Socket.IO payloads. Cases follow RFC 8259's
 * grammar; every input is handed over as an exact-size heap copy, so a read past the given
 * length is an ASan error rather than a silent pass on the string's NUL. */
#include "unit.h"

#include <uv.h>

#include "util/alloc.h"
#include "util/err.h"
#include "util/json.h"

static long scan(const char *s)
{
    size_t n = strlen(s);
    char *d = dup_exact(s, n);
    long r = rp_json_scan(d, n);
    free(d);
    return r;
}

static int validate_n(const char *s, size_t n)
{
    char *d = dup_exact(s, n);
    int r = rp_json_validate(d, n);
    free(d);
    return r;
}

static int validate(const char *s)
{
    return validate_n(s, strlen(s));
}

static void accepts_rfc8259_values(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "{}",
        "[]",
        "0",
        "-0",
        "1e5",
        "1E+5",
        "1e-5",
        "-1.5e-3",
        "0.5",
        "123456789012345678901234567890",
        "\"\"",
        "\"a\"",
        "true",
        "false",
        "null",
        " [1, \"two\", {\"three\": [false, null]}] ",
        "\t\r\n{ \"a\" : 1 }\n",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
        "\"\\u00e9\\ud83d\\ude00\"",
        "\"\\ud800\"", /* a lone surrogate escape is valid JSON text; string_decode refuses it */
        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
        "\"\x7f\"",
        /* RFC 8259 §13 */
        ("{\"Image\":{\"Width\":800,\"Height\":600,\"Title\":\"View from 15th Floor\","
         "\"Thumbnail\":{\"Url\":\"http://www.example.com/image/481989943\",\"Height\":125,"
         "\"Width\":100},\"Animated\":false,\"IDs\":[116,943,234,38793]}}"),
        ("[{\"precision\":\"zip\",\"Latitude\":37.7668,\"Longitude\":-122.3959,\"Address\":\"\","
         "\"City\":\"SAN FRANCISCO\",\"State\":\"CA\",\"Zip\":\"94107\",\"Country\":\"US\"}]"),
        "\"Hello world!\"",
        "42",
        /* Socket.IO payloads */
        "[\"message-with-ack\",1,\"2\",{\"3\":[false]}]",
        "[\"baz\",{\"_placeholder\":true,\"num\":0}]",
    };
    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        if (validate(ok[i]) != 0) {
            print_error("refused: %s\n", ok[i]);
            fail();
        }
    }
}

static void rejects_malformed_values(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "   ",
        "01",
        "-01",
        "00",
        "-",
        "1.",
        ".5",
        "+1",
        "1e",
        "1e+",
        "1.e5",
        "0x10",
        "NaN",
        "Infinity",
        "-Infinity",
        "tru",
        "nul",
        "falsey",
        "True",
        "[1,]",
        "[,1]",
        "[1 2]",
        "[",
        "]",
        "[[]",
        "{\"a\"}",
        "{\"a\":}",
        "{a:1}",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{,}",
        "{\"a\":1}}",
        "[]x",
        "[] []",
        "1 2",
        "\"abc",
        "'a'",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u12G4\"",
        "\"\\U0041\"",
        "\"\\",
        "\"\\\"",
        ("\"a\x01"
         "b\""),
        "\"tab\there\"",
        "\"new\nline\"",
        "\"\x1f\"",
        "\"\xc0\xaf\"",         /* overlong '/' */
        "\"\xed\xa0\x80\"",     /* UTF-8 encoded surrogate */
        "\"\xe2\x82\"",         /* truncated sequence before the quote */
        "\"\xf4\x90\x80\x80\"", /* > U+10FFFF */
        "\xef\xbb\xbf{}",       /* a byte order mark is not whitespace */
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        if (validate(bad[i]) != RP_EPROTO) {
            print_error("accepted: %s\n", bad[i]);
            fail();
        }
    }
    /* Embedded NUL inside and after a value, with explicit lengths. */
    assert_int_equal(validate_n("[1]\0", 4), RP_EPROTO);
    assert_int_equal(validate_n("\"a\0b\"", 5), RP_EPROTO);
    assert_int_equal(validate_n("[\0]", 3), RP_EPROTO);
}

static char *nested(char open, char close, int depth, const char *inner)
{
    size_t il = strlen(inner);
    char *s = malloc((size_t)depth * 2 + il + 1);
    assert_non_null(s);
    for (int i = 0; i < depth; i++)
        s[i] = open;
    memcpy(s + depth, inner, il);
    for (int i = 0; i < depth; i++)
        s[(size_t)depth + il + (size_t)i] = close;
    s[(size_t)depth * 2 + il] = '\0';
    return s;
}

static void accepts_nesting_up_to_max_depth(void **state)
{
    (void)state;
    char *s = nested('[', ']', RP_JSON_MAX_DEPTH, "1");
    assert_int_equal(validate(s), 0);
    free(s);
    s = nested('[', ']', RP_JSON_MAX_DEPTH, "");
    assert_int_equal(validate(s), 0);
    free(s);
    /* 63 arrays around an object: 64 levels. */
    s = nested('[', ']', RP_JSON_MAX_DEPTH - 1, "{\"a\":1}");
    assert_int_equal(validate(s), 0);
    free(s);
}

static void rejects_nesting_past_max_depth(void **state)
{
    (void)state;
    char *s = nested('[', ']', RP_JSON_MAX_DEPTH + 1, "");
    assert_int_equal(validate(s), RP_EPROTO);
    free(s);
    s = nested('[', ']', RP_JSON_MAX_DEPTH, "{\"a\":1}");
    assert_int_equal(validate(s), RP_EPROTO);
    free(s);
    /* Deep enough to overflow a recursive scanner's stack if the limit were missing. */
    s = nested('[', ']', 100000, "");
    assert_int_equal(validate(s), RP_EPROTO);
    free(s);
    /* Unclosed deep input: refused, not read past its end. */
    char *open = malloc(200);
    assert_non_null(open);
    memset(open, '[', 200);
    assert_int_equal(rp_json_validate(open, 200), RP_EPROTO);
    free(open);
}

static void scan_returns_length_of_value_with_leading_space(void **state)
{
    (void)state;
    assert_int_equal(scan("1"), 1);
    assert_int_equal(scan("  1  "), 3);
    assert_int_equal(scan("[1]x"), 3);
    assert_int_equal(scan("\"a\"\"b\""), 3);
    assert_int_equal(scan("{\"a\":[1,2]} ,"), 11);
    assert_int_equal(scan("-0 "), 2);
    assert_int_equal(scan("01"), 1); /* the value is "0"; validate refuses the rest */
    assert_int_equal(scan(""), RP_EPROTO);
    assert_int_equal(scan("   "), RP_EPROTO);
    assert_int_equal(scan(","), RP_EPROTO);
}

static void scan_never_reads_past_length(void **state)
{
    (void)state;
    /* Every proper prefix of these is either incomplete or a shorter value. */
    static const char *const cases[] = {
        "{\"key\":[true,false,null,-1.5e+10,\"\\u00e9\"]}",
        "\"\\ud83d\\ude00\"",
        "[[[[\"x\"]]]]",
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        size_t n = strlen(cases[i]);
        for (size_t k = 0; k < n; k++) {
            char *d = dup_exact(cases[i], k);
            long r = rp_json_scan(d, k);
            assert_true(r == RP_EPROTO || (r > 0 && (size_t)r <= k));
            free(d);
        }
        assert_int_equal(scan(cases[i]), (long)n);
    }
}

static void iterates_array_elements(void **state)
{
    (void)state;
    const char *src = " [1, \"two\" , {\"a\":[1,2]},[] ,null,-0.5e3] ";
    size_t n = strlen(src);
    char *s = dup_exact(src, n);
    rp_json_iter_t it;
    const char *el;
    size_t len;
    static const char *const want[] = {"1", "\"two\"", "{\"a\":[1,2]}", "[]", "null", "-0.5e3"};
    assert_int_equal(rp_json_array_begin(&it, s, n), 0);
    for (size_t i = 0; i < ARRAY_LEN(want); i++) {
        assert_int_equal(rp_json_array_next(&it, &el, &len), 1);
        assert_span(el, len, want[i]);
    }
    assert_int_equal(rp_json_array_next(&it, &el, &len), 0);
    assert_int_equal(it.count, 6);
    free(s);
}

static void iterates_empty_array(void **state)
{
    (void)state;
    static const char *const empties[] = {"[]", "[ ]", " [\n] "};
    for (size_t i = 0; i < ARRAY_LEN(empties); i++) {
        size_t n = strlen(empties[i]);
        char *s = dup_exact(empties[i], n);
        rp_json_iter_t it;
        const char *el;
        size_t len;
        assert_int_equal(rp_json_array_begin(&it, s, n), 0);
        assert_int_equal(rp_json_array_next(&it, &el, &len), 0);
        free(s);
    }
}

static void array_iteration_rejects_bad_arrays(void **state)
{
    (void)state;
    rp_json_iter_t it;
    const char *el;
    size_t len;
    static const char *const not_arrays[] = {"", " ", "{}", "\"[1]\"", "1"};
    for (size_t i = 0; i < ARRAY_LEN(not_arrays); i++) {
        size_t n = strlen(not_arrays[i]);
        char *s = dup_exact(not_arrays[i], n);
        assert_int_equal(rp_json_array_begin(&it, s, n), RP_EPROTO);
        free(s);
    }
    /* Each of these yields the listed number of elements, then RP_EPROTO. */
    static const struct {
        const char *s;
        int good;
    } bad[] = {
        {"[1,]", 1}, {"[,1]", 0}, {"[1 2]", 1},     {"[1", 1},    {"[1,", 1},
        {"[", 0},    {"[01]", 1}, {"[\"a\":1]", 1}, {"[tru]", 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        size_t n = strlen(bad[i].s);
        char *s = dup_exact(bad[i].s, n);
        assert_int_equal(rp_json_array_begin(&it, s, n), 0);
        int k = 0;
        int rc;
        while ((rc = rp_json_array_next(&it, &el, &len)) == 1)
            k++;
        if (rc != RP_EPROTO || k != bad[i].good) {
            print_error("%s: rc %d after %d elements\n", bad[i].s, rc, k);
            fail();
        }
        free(s);
    }
}

static int object_get(const char *src, const char *key, const char **val, size_t *vlen, char **keep)
{
    size_t n = strlen(src);
    *keep = dup_exact(src, n);
    return rp_json_object_get(*keep, n, key, val, vlen);
}

static void object_get_finds_members(void **state)
{
    (void)state;
    const char *src = " { \"token\" : \"123\", \"b\":{\"c\":[1,2]} ,\"n\":-1.5,\"z\":null} ";
    const char *v;
    size_t vl;
    char *s;
    assert_int_equal(object_get(src, "token", &v, &vl, &s), 1);
    assert_span(v, vl, "\"123\"");
    free(s);
    assert_int_equal(object_get(src, "b", &v, &vl, &s), 1);
    assert_span(v, vl, "{\"c\":[1,2]}");
    free(s);
    assert_int_equal(object_get(src, "n", &v, &vl, &s), 1);
    assert_span(v, vl, "-1.5");
    free(s);
    assert_int_equal(object_get(src, "z", &v, &vl, &s), 1);
    assert_span(v, vl, "null");
    free(s);
    /* Only top-level members count. */
    assert_int_equal(object_get(src, "c", &v, &vl, &s), 0);
    free(s);
    assert_int_equal(object_get(src, "tok", &v, &vl, &s), 0);
    free(s);
    assert_int_equal(object_get(src, "tokens", &v, &vl, &s), 0);
    free(s);
}

static void object_get_reports_absent_and_bad(void **state)
{
    (void)state;
    const char *v;
    size_t vl;
    char *s;
    assert_int_equal(object_get("{}", "a", &v, &vl, &s), 0);
    free(s);
    assert_int_equal(object_get("[\"a\",1]", "a", &v, &vl, &s), 0);
    free(s);
    assert_int_equal(object_get("\"a\"", "a", &v, &vl, &s), 0);
    free(s);
    assert_int_equal(object_get("", "a", &v, &vl, &s), 0);
    free(s);
    /* A key spelled with an escape is not matched (keys we look up are plain ASCII). */
    assert_int_equal(object_get("{\"\\u0061\":1}", "a", &v, &vl, &s), 0);
    free(s);
    assert_int_equal(object_get("{\"a\"}", "a", &v, &vl, &s), RP_EPROTO);
    free(s);
    assert_int_equal(object_get("{\"b\":1,}", "a", &v, &vl, &s), RP_EPROTO);
    free(s);
    assert_int_equal(object_get("{\"b\":01}", "a", &v, &vl, &s), RP_EPROTO);
    free(s);
    assert_int_equal(object_get("{b:1}", "a", &v, &vl, &s), RP_EPROTO);
    free(s);
    assert_int_equal(object_get("{\"b\":1", "a", &v, &vl, &s), RP_EPROTO);
    free(s);
    assert_int_equal(object_get("{", "a", &v, &vl, &s), RP_EPROTO);
    free(s);
}

/* Decodes src into a fresh buffer; returns the result and leaves the text in *out. */
static int decode(const char *src, rp_buf_t *out)
{
    size_t n = strlen(src);
    char *s = dup_exact(src, n);
    rp_buf_init(out, 1 << 16);
    int rc = rp_json_string_decode(s, n, out);
    free(s);
    return rc;
}

static void string_decode_handles_escapes(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"\"\"", ""},
        {"\"hello\"", "hello"},
        {"\"a\\\"b\\\\c\\/d\"", "a\"b\\c/d"},
        {"\"\\b\\f\\n\\r\\t\"", "\b\f\n\r\t"},
        {"\"\\u0041\\u00e9\\u20AC\"", "A\xc3\xa9\xe2\x82\xac"},
        {"\"\\u0001\"", "\x01"},
        {"\"\\u07ff\\u0800\\uffff\"", "\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf"},
        {"\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80"},
        {"\"\\uD800\\uDC00\"", "\xf0\x90\x80\x80"},
        {"\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf"},
        {"\"x\\ud83d\\ude00y\"", "x\xf0\x9f\x98\x80y"},
        {"\"caf\xc3\xa9\"", "caf\xc3\xa9"},
        {"\"connect\"", "connect"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        rp_buf_t out;
        assert_int_equal(decode(cases[i].in, &out), 0);
        assert_span(out.data ? out.data : "", out.len, cases[i].out);
        rp_buf_deinit(&out);
    }
}

static void string_decode_rejects_lone_surrogates_and_bad_input(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\"\\ud800\"",        /* lone high surrogate */
        "\"\\udbff x\"",      /* high surrogate followed by text */
        "\"\\ud800\\u0041\"", /* high surrogate followed by a non-surrogate */
        "\"\\ud800\\ud800\"", /* two high surrogates */
        "\"\\udc00\"",        /* lone low surrogate */
        "\"\\udfff\\ud800\"", /* reversed pair */
        "\"\\ud800\\n\"",     /* high surrogate then another escape */
        "\"\\ud800\\",        /* unterminated */
        "\"\\u0000\"",        /* NUL is refused */
        "\"a\\u0000b\"",
        "\"\\x\"",
        "\"abc",
        "abc",
        "\"a\"b",
        "\"a\" ",
        " \"a\"",
        "\"",
        "",
        "1",
        "\"\xff\"",
        "\"\x01\"",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        rp_buf_t out;
        if (decode(bad[i], &out) != RP_EPROTO) {
            print_error("decoded: %s\n", bad[i]);
            fail();
        }
        rp_buf_deinit(&out);
    }
}

static void string_decode_appends_to_buffer(void **state)
{
    (void)state;
    rp_buf_t out;
    rp_buf_init(&out, 100);
    assert_int_equal(rp_buf_append_str(&out, "name="), 0);
    assert_int_equal(rp_json_string_decode("\"a\\nb\"", 6, &out), 0);
    assert_span(out.data, out.len, "name=a\nb");
    rp_buf_deinit(&out);
}

static void string_decode_respects_buffer_limit(void **state)
{
    (void)state;
    rp_buf_t out;
    rp_buf_init(&out, 4);
    assert_int_equal(rp_json_string_decode("\"abcde\"", 7, &out), RP_ETOOBIG);
    rp_buf_deinit(&out);
}

static void string_encode_escapes(void **state)
{
    (void)state;
    rp_buf_t out;
    rp_buf_init(&out, 1 << 12);
    const char in[] = "a\"b\\c\nd\re\tf\x01g\x1fh/\xc3\xa9";
    assert_int_equal(rp_json_string_encode(&out, in, sizeof(in) - 1), 0);
    assert_span(out.data, out.len, "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u001fh/\xc3\xa9\"");
    assert_int_equal(rp_json_validate(out.data, out.len), 0);
    rp_buf_reset(&out);
    assert_int_equal(rp_json_string_encode(&out, "", 0), 0);
    assert_span(out.data, out.len, "\"\"");
    rp_buf_deinit(&out);
}

static void string_encode_decode_round_trips(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "",
        "plain",
        "message-with-ack",
        "quote\" backslash\\ slash/",
        "controls \x01\x02\x03\x07\b\f\n\r\t\x0b\x1e\x1f end",
        "utf8 \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf",
        "\x7f del",
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        size_t n = strlen(cases[i]);
        rp_buf_t enc, dec;
        rp_buf_init(&enc, 1 << 12);
        rp_buf_init(&dec, 1 << 12);
        assert_int_equal(rp_json_string_encode(&enc, cases[i], n), 0);
        assert_int_equal(rp_json_validate(enc.data, enc.len), 0);
        assert_int_equal(rp_json_string_decode(enc.data, enc.len, &dec), 0);
        assert_bytes(dec.data ? dec.data : "", dec.len, cases[i], n);
        rp_buf_deinit(&enc);
        rp_buf_deinit(&dec);
    }
    /* Every byte 0x01..0x7f. */
    char all[127];
    for (int c = 1; c < 128; c++)
        all[c - 1] = (char)c;
    rp_buf_t enc, dec;
    rp_buf_init(&enc, 1 << 12);
    rp_buf_init(&dec, 1 << 12);
    assert_int_equal(rp_json_string_encode(&enc, all, sizeof(all)), 0);
    assert_int_equal(rp_json_validate(enc.data, enc.len), 0);
    assert_int_equal(rp_json_string_decode(enc.data, enc.len, &dec), 0);
    assert_bytes(dec.data, dec.len, all, sizeof(all));
    rp_buf_deinit(&enc);
    rp_buf_deinit(&dec);
}

static void string_encode_fails_cleanly_without_memory(void **state)
{
    (void)state;
    const char *in = "a fairly long string with \"quotes\" and \x01 controls, repeated: "
                     "a fairly long string with \"quotes\" and \x01 controls";
    for (unsigned long n = 1;; n++) {
        rp_buf_t out;
        rp_buf_init(&out, 1 << 12);
        rp_alloc_fail_at(n);
        int rc = rp_json_string_encode(&out, in, strlen(in));
        int failed = rp_alloc_failed();
        rp_alloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, 0);
            assert_int_equal(rp_json_validate(out.data, out.len), 0);
            rp_buf_deinit(&out);
            break;
        }
        assert_int_equal(rc, UV_ENOMEM);
        rp_buf_deinit(&out);
        assert_true(n < 100);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_rfc8259_values),
        cmocka_unit_test(rejects_malformed_values),
        cmocka_unit_test(accepts_nesting_up_to_max_depth),
        cmocka_unit_test(rejects_nesting_past_max_depth),
        cmocka_unit_test(scan_returns_length_of_value_with_leading_space),
        cmocka_unit_test(scan_never_reads_past_length),
        cmocka_unit_test(iterates_array_elements),
        cmocka_unit_test(iterates_empty_array),
        cmocka_unit_test(array_iteration_rejects_bad_arrays),
        cmocka_unit_test(object_get_finds_members),
        cmocka_unit_test(object_get_reports_absent_and_bad),
        cmocka_unit_test(string_decode_handles_escapes),
        cmocka_unit_test(string_decode_rejects_lone_surrogates_and_bad_input),
        cmocka_unit_test(string_decode_appends_to_buffer),
        cmocka_unit_test(string_decode_respects_buffer_limit),
        cmocka_unit_test(string_encode_escapes),
        cmocka_unit_test(string_encode_decode_round_trips),
        cmocka_unit_test(string_encode_fails_cleanly_without_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
