/* SPDX-License-Identifier: MIT */
/* watch/extract: file kinds, the HTML character-reference decoder (named, decimal, hex, the
 * HTML5 rules for 0, surrogates, out of range and Windows-1252), and the text of each kind:
 * scripts and styles gone, Markdown marks gone, CSV quoting, JSON keys and values, binary
 * content refused with the offset, invalid UTF-8 replaced. Inputs are exact-size heap copies
 * so a read past the end is caught by ASan. */
#include "unit.h"

#include "util/alloc.h"
#include "util/err.h"
#include "watch/extract.h"

/* Extracts `in` as kind k; returns the text (malloc'd) or NULL with why filled. */
static char *extract(rp_watch_kind_t k, const char *in, size_t n, char *why)
{
    char *copy = dup_exact(in, n);
    rp_buf_t out;
    rp_buf_init(&out, 1 << 20);
    why[0] = '\0';
    int rc = rp_watch_extract(k, copy, n, &out, why, 256);
    free(copy);
    char *r = NULL;
    if (rc == 0) {
        r = strdup(out.data ? out.data : "");
        assert_non_null(r);
        assert_int_equal(strlen(r), out.len); /* no NUL inside */
    }
    rp_buf_deinit(&out);
    return r;
}

#define EXPECT_TEXT(k, in, want)                                                                   \
    do {                                                                                           \
        char why_[256];                                                                            \
        char *got_ = extract((k), (in), sizeof(in) - 1, why_);                                     \
        if (got_ == NULL)                                                                          \
            fail_msg("extract failed: %s", why_);                                                  \
        assert_string_equal(got_, (want));                                                         \
        free(got_);                                                                                \
    } while (0)

static void entity(const char *in, const char *want, size_t want_used)
{
    char out[8];
    size_t ol = 99;
    char *copy = dup_exact(in, strlen(in));
    size_t used = rp_watch_html_entity(copy, strlen(in), out, &ol);
    free(copy);
    assert_int_equal(used, want_used);
    if (want_used)
        assert_bytes(out, ol, want, strlen(want));
}

static void decodes_named_references(void **state)
{
    (void)state;
    entity("&amp;", "&", 5);
    entity("&lt;b", "<", 4);
    entity("&eacute;", "\xc3\xa9", 8);
    entity("&nbsp;", "\xc2\xa0", 6);
    entity("&hellip;", "\xe2\x80\xa6", 8);
    entity("&euro;", "\xe2\x82\xac", 6);
    entity("&Omega;", "\xce\xa9", 7);
    /* Legacy names without ';' (HTML5), also as a prefix of a longer word. */
    entity("&amp rest", "&", 4);
    entity("&copy2024", "\xc2\xa9", 5);
    /* Not legacy: needs the ';'. */
    entity("&hellip", "", 0);
    /* Unknown, empty, too long: not a reference (the caller copies '&'). */
    entity("&bogus;", "", 0);
    entity("& x", "", 0);
    entity("&", "", 0);
    entity("&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;", "", 0);
}

static void decodes_numeric_references(void **state)
{
    (void)state;
    entity("&#233;", "\xc3\xa9", 6);
    entity("&#xE9;", "\xc3\xa9", 6);
    entity("&#XE9;", "\xc3\xa9", 6);
    entity("&#x1F600;", "\xf0\x9f\x98\x80", 9);
    entity("&#65", "A", 4); /* ';' is optional */
    entity("&#65x", "A", 4);
    entity("&#0;", "\xef\xbf\xbd", 4);
    entity("&#xD800;", "\xef\xbf\xbd", 8);
    entity("&#x110000;", "\xef\xbf\xbd", 10);
    entity("&#99999999999999999999;", "\xef\xbf\xbd", 23); /* no overflow */
    entity("&#128;", "\xe2\x82\xac", 6); /* 0x80 is the euro sign in Windows-1252 */
    entity("&#x93;", "\xe2\x80\x9c", 6);
    entity("&#;", "", 0);
    entity("&#x;", "", 0);
    entity("&#", "", 0);
}

static void html_text_drops_markup_scripts_and_comments(void **state)
{
    (void)state;
    EXPECT_TEXT(
        RP_WATCH_HTML,
        "<!DOCTYPE html><html><head><title>T&amp;C</title><style>p { color: red }</style>"
        "<script type=\"text/javascript\">if (a < b) alert(\"</p>\");</script></head>"
        "<body><h1>Head</h1><p>One <b>bold</b>  word&nbsp;here.</p><!-- not <p>this</p> -->"
        "<p title=\"a > b\">Caf&eacute; &#x2603;</p><ul><li>x</li><li>y</li></ul>a<br>b 1 < "
        "2</body></html>",
        "T&C\n\nHead\n\nOne bold word here.\n\nCaf\xc3\xa9 \xe2\x98\x83\n\nx\ny\n\na\nb 1 < 2");
    /* An unterminated script or comment swallows the rest, never more. */
    EXPECT_TEXT(RP_WATCH_HTML, "before<script>never", "before");
    EXPECT_TEXT(RP_WATCH_HTML, "before<!-- never", "before");
    EXPECT_TEXT(RP_WATCH_HTML, "a<", "a<");
    EXPECT_TEXT(RP_WATCH_HTML, "<table><tr><td>a</td><td>b</td></tr></table>", "a | b");
    /* A page that says Latin-1 / Windows-1252 and is not UTF-8: its bytes are decoded as such. */
    EXPECT_TEXT(RP_WATCH_HTML, "<meta charset=\"iso-8859-1\"><p>Caf\xe9 \x80 5</p>",
                "Caf\xc3\xa9 \xe2\x82\xac 5");
    EXPECT_TEXT(RP_WATCH_HTML,
                "<meta http-equiv=\"Content-Type\" content=\"text/html; "
                "charset=windows-1252\"><p>\x93q\x94</p>",
                "\xe2\x80\x9cq\xe2\x80\x9d");
    /* ... but a page that says so and is valid UTF-8 is read as UTF-8, and no claim means UTF-8. */
    EXPECT_TEXT(RP_WATCH_HTML, "<meta charset=latin1><p>Caf\xc3\xa9</p>", "Caf\xc3\xa9");
    EXPECT_TEXT(RP_WATCH_HTML, "<p>Caf\xe9</p>", "Caf\xef\xbf\xbd");
}

static void markdown_keeps_words_not_marks(void **state)
{
    (void)state;
    EXPECT_TEXT(
        RP_WATCH_MARKDOWN,
        "# Title #\n\nSome **bold** and `code` and [a link](http://x.y/z) and ![alt](i.png).\n"
        "> quoted\n- item one\n1. first\n\n---\n```c\nint x;\n```\n",
        "Title\n\nSome bold and code and a link and alt.\nquoted\nitem one\nfirst\n\nint x;");
}

static void csv_fields_and_quotes(void **state)
{
    (void)state;
    EXPECT_TEXT(RP_WATCH_CSV, "name,city\r\n\"Doe, Jane\",\"He said \"\"hi\"\"\"\nx,\n",
                "name | city\nDoe, Jane | He said \"hi\"\nx | ");
    EXPECT_TEXT(RP_WATCH_CSV, "a;b;c\n1;2;3", "a | b | c\n1 | 2 | 3");
    EXPECT_TEXT(RP_WATCH_CSV, "\"unterminated", "unterminated");
}

static void json_keys_and_values(void **state)
{
    (void)state;
    EXPECT_TEXT(RP_WATCH_JSON,
                "{\"title\":\"Zebra\",\"n\":3,\"ok\":true,\"none\":null,\"tags\":[\"a\",\"b\"]}",
                "title: Zebra\nn: 3\nok: true\ntags:\na\nb\n");
    char why[256];
    assert_null(extract(RP_WATCH_JSON, "{\"a\":", 5, why));
    assert_true(strncmp(why, "invalid JSON at line 1", 22) == 0);
}

static void text_refuses_binary_and_repairs_utf8(void **state)
{
    (void)state;
    char why[256];
    assert_null(extract(RP_WATCH_TEXT, "abc\0def", 7, why));
    assert_string_equal(why, "binary content (a NUL byte at offset 3)");
    static const char noise[] = "\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f abc";
    assert_null(extract(RP_WATCH_TEXT, noise, sizeof(noise) - 1, why));
    assert_true(strncmp(why, "binary content (", 16) == 0);
    assert_null(extract(RP_WATCH_UNSUPPORTED, "\x89PNG\r\n\x1a\n\0\0", 10, why));
    assert_string_equal(why, "unsupported file type: a PNG image");
    assert_null(extract(RP_WATCH_UNSUPPORTED, "PK\x03\x04\x14\0\x06\0", 8, why));
    assert_string_equal(
        why, "unsupported file type: a ZIP archive (.docx, .xlsx, .pptx, .odt, .epub, .zip)");
    assert_null(extract(RP_WATCH_UNSUPPORTED, "\x01\x02\x03\0", 4, why));
    assert_string_equal(why, "binary content (a NUL byte at offset 3)");
    /* A BOM goes, CRLF becomes LF, a stray Latin-1 byte becomes U+FFFD. */
    EXPECT_TEXT(RP_WATCH_TEXT, "\xef\xbb\xbfHello\r\nWorld caf\xe9!\r",
                "Hello\nWorld caf\xef\xbf\xbd!\n");
    EXPECT_TEXT(RP_WATCH_TEXT, "", "");
}

static void kinds_by_name_then_content(void **state)
{
    (void)state;
    assert_int_equal(rp_watch_kind_detect("a/b/Notes.MD", "x", 1), RP_WATCH_MARKDOWN);
    assert_int_equal(rp_watch_kind_detect("r.pdf", "junk", 4), RP_WATCH_PDF);
    assert_int_equal(rp_watch_kind_detect("noext", "%PDF-1.7", 8), RP_WATCH_PDF);
    assert_int_equal(rp_watch_kind_detect("page", "  <!DOCTYPE html>", 17), RP_WATCH_HTML);
    assert_int_equal(rp_watch_kind_detect("README", "plain words", 11), RP_WATCH_TEXT);
    assert_int_equal(rp_watch_kind_detect("x.bin", "a\0b", 3), RP_WATCH_UNSUPPORTED);
    assert_int_equal(rp_watch_kind_detect("dir.md/file", "a\0b", 3), RP_WATCH_UNSUPPORTED);
    assert_int_equal(rp_watch_kind_detect("empty", "", 0), RP_WATCH_UNSUPPORTED);
    assert_string_equal(rp_watch_kind_mime(RP_WATCH_CSV), "text/csv");
}

static void limit_is_a_clear_failure(void **state)
{
    (void)state;
    rp_buf_t out;
    rp_buf_init(&out, 8);
    char why[256];
    assert_int_equal(
        rp_watch_extract(RP_WATCH_TEXT, "more than eight bytes", 21, &out, why, sizeof(why)),
        RP_ETOOBIG);
    assert_non_null(strstr(why, "larger than the limit"));
    rp_buf_deinit(&out);
}

static void survives_allocation_failures(void **state)
{
    (void)state;
    static const char html[] = "<p>Caf&eacute; one</p><p>two</p><script>x</script>three";
    for (unsigned long n = 1; n < 64; n++) {
        rp_buf_t out;
        rp_buf_init(&out, 1 << 20);
        char why[256];
        rp_alloc_fail_at(n);
        int rc = rp_watch_extract(RP_WATCH_HTML, html, sizeof(html) - 1, &out, why, sizeof(why));
        int failed = rp_alloc_failed();
        rp_alloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, 0);
            assert_string_equal(out.data, "Caf\xc3\xa9 one\n\ntwo\n\nthree");
            rp_buf_deinit(&out);
            return;
        }
        assert_true(rc < 0);
        assert_string_equal(why, "out of memory");
        rp_buf_deinit(&out);
    }
    fail_msg("never succeeded");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decodes_named_references),
        cmocka_unit_test(decodes_numeric_references),
        cmocka_unit_test(html_text_drops_markup_scripts_and_comments),
        cmocka_unit_test(markdown_keeps_words_not_marks),
        cmocka_unit_test(csv_fields_and_quotes),
        cmocka_unit_test(json_keys_and_values),
        cmocka_unit_test(text_refuses_binary_and_repairs_utf8),
        cmocka_unit_test(kinds_by_name_then_content),
        cmocka_unit_test(limit_is_a_clear_failure),
        cmocka_unit_test(survives_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
