/* SPDX-License-Identifier: MIT */
/* watch/chunk: chunks end at a paragraph, else a sentence, else a line, else a space, else
 * a character boundary; they overlap by about `overlap` bytes from a word start; they never
 * split a UTF-8 character; together they cover every non-space byte; bad configurations are
 * refused. A pseudo-random property run checks the invariants on many texts and sizes. */
#include "unit.h"

#include <uv.h>

#include "util/alloc.h"
#include "watch/chunk.h"

static long chunk(const char *text, size_t size, size_t overlap, rp_watch_chunk_t **out)
{
    rp_watch_chunk_cfg_t cfg = {size, overlap};
    return rp_watch_chunk(text, strlen(text), &cfg, out);
}

static void assert_chunk(const char *text, const rp_watch_chunk_t *c, const char *want)
{
    assert_span(text + c->start, c->len, want);
}

static void short_text_is_one_trimmed_chunk(void **state)
{
    (void)state;
    rp_watch_chunk_t *c;
    const char *t = "  \n Hello there.  \n";
    assert_int_equal(chunk(t, 100, 10, &c), 1);
    assert_chunk(t, &c[0], "Hello there.");
    rp_free(c);
    assert_int_equal(chunk(" \n\t ", 100, 10, &c), 0);
    rp_free(c);
    assert_int_equal(chunk("", 100, 10, &c), 0);
    rp_free(c);
}

static void prefers_paragraphs_then_sentences(void **state)
{
    (void)state;
    rp_watch_chunk_t *c;
    /* A paragraph break inside the second half of the window wins over a later sentence end. */
    const char *t =
        "First paragraph has words. More words here.\n\nSecond paragraph. It goes on and on.";
    long n = chunk(t, 60, 0, &c);
    assert_int_equal(n, 2);
    assert_chunk(t, &c[0], "First paragraph has words. More words here.");
    assert_chunk(t, &c[1], "Second paragraph. It goes on and on.");
    rp_free(c);
    /* No paragraph: the last sentence end in the window. */
    const char *s = "One sentence here. Two sentence here. Three sentence here. Four.";
    n = chunk(s, 45, 0, &c);
    assert_true(n >= 2);
    assert_chunk(s, &c[0], "One sentence here. Two sentence here.");
    rp_free(c);
    /* No sentence: a space. */
    const char *w = "alpha beta gamma delta epsilon zeta eta theta iota kappa";
    n = chunk(w, 20, 0, &c);
    assert_chunk(w, &c[0], "alpha beta gamma");
    rp_free(c);
}

static void overlap_starts_at_a_word(void **state)
{
    (void)state;
    rp_watch_chunk_t *c;
    const char *t = "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm";
    long n = chunk(t, 30, 10, &c);
    assert_true(n >= 3);
    for (long i = 1; i < n; i++) {
        assert_true(c[i].start > c[i - 1].start);
        assert_true(c[i].start < c[i - 1].start + c[i - 1].len); /* they overlap */
        assert_true(t[c[i].start - 1] == ' ');                   /* at a word start */
    }
    rp_free(c);
}

static void never_splits_a_character(void **state)
{
    (void)state;
    /* 40 two-byte characters, no spaces: every cut must land on a lead byte. */
    char t[81];
    for (int i = 0; i < 40; i++)
        memcpy(t + 2 * i, "\xc3\xa9", 2);
    t[80] = '\0';
    rp_watch_chunk_t *c;
    long n = chunk(t, 17, 4, &c);
    assert_true(n >= 5);
    for (long i = 0; i < n; i++) {
        assert_true(((unsigned char)t[c[i].start] & 0xC0) != 0x80);
        size_t end = c[i].start + c[i].len;
        assert_true(end == 80 || ((unsigned char)t[end] & 0xC0) != 0x80);
        assert_true(c[i].len <= 17);
    }
    rp_free(c);
}

static void refuses_bad_configuration(void **state)
{
    (void)state;
    rp_watch_chunk_t *c = (void *)1;
    assert_int_equal(chunk("text", 8, 0, &c), UV_EINVAL);
    assert_null(c);
    assert_int_equal(chunk("text", 100, 50, &c), UV_EINVAL);
    assert_int_equal(chunk("text", 100, 60, &c), UV_EINVAL);
}

static void invariants_hold_on_random_texts(void **state)
{
    (void)state;
    static const char *const pieces[] = {"word",
                                         "Sentence.",
                                         "\n\n",
                                         "\n",
                                         " ",
                                         "  ",
                                         "?",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         "longwordwithoutanyspaces",
                                         "\"quoted.\" "};
    unsigned seed = 12345;
    for (int round = 0; round < 400; round++) {
        char text[2048];
        size_t len = 0;
        int parts = (int)(seed % 200);
        for (int p = 0; p < parts; p++) {
            seed = seed * 1103515245u + 12345u;
            const char *piece = pieces[(seed >> 16) % ARRAY_LEN(pieces)];
            size_t pl = strlen(piece);
            if (len + pl >= sizeof(text))
                break;
            memcpy(text + len, piece, pl);
            len += pl;
        }
        text[len] = '\0';
        seed = seed * 1103515245u + 12345u;
        size_t size = 16 + (seed >> 16) % 300;
        size_t overlap = (seed >> 8) % (size / 2);
        rp_watch_chunk_cfg_t cfg = {size, overlap};
        rp_watch_chunk_t *c;
        char *copy = dup_exact(text, len);
        long n = rp_watch_chunk(copy, len, &cfg, &c);
        assert_true(n >= 0);
        /* Coverage: every non-space byte is inside some chunk. */
        char *covered = calloc(len + 1, 1);
        for (long i = 0; i < n; i++) {
            assert_true(c[i].len > 0 && c[i].len <= size);
            assert_true(c[i].start + c[i].len <= len);
            if (i)
                assert_true(c[i].start > c[i - 1].start);
            assert_true(((unsigned char)copy[c[i].start] & 0xC0) != 0x80);
            memset(covered + c[i].start, 1, c[i].len);
        }
        for (size_t b = 0; b < len; b++)
            if (!strchr(" \n", copy[b]))
                assert_true(covered[b]);
        free(covered);
        free(copy);
        rp_free(c);
    }
}

static void survives_allocation_failures(void **state)
{
    (void)state;
    char t[4000];
    for (size_t i = 0; i < sizeof(t) - 1; i++)
        t[i] = i % 7 == 6 ? ' ' : 'x';
    t[sizeof(t) - 1] = '\0';
    for (unsigned long n = 1; n < 16; n++) {
        rp_watch_chunk_t *c;
        rp_alloc_fail_at(n);
        long r = chunk(t, 50, 10, &c);
        int failed = rp_alloc_failed();
        rp_alloc_fail_at(0);
        if (!failed) {
            assert_true(r > 16); /* more than the first array holds: it grew */
            rp_free(c);
            return;
        }
        assert_int_equal(r, UV_ENOMEM);
        assert_null(c);
    }
    fail_msg("never succeeded");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(short_text_is_one_trimmed_chunk),
        cmocka_unit_test(prefers_paragraphs_then_sentences),
        cmocka_unit_test(overlap_starts_at_a_word),
        cmocka_unit_test(never_splits_a_character),
        cmocka_unit_test(refuses_bad_configuration),
        cmocka_unit_test(invariants_hold_on_random_texts),
        cmocka_unit_test(survives_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
