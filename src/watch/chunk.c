/* SPDX-License-Identifier: MIT */
/* The chunker: a window of cfg->size bytes slides over the text; each chunk ends at the
 * strongest boundary found in the second half of its window (paragraph, sentence, line,
 * space, character), and the next starts `overlap` bytes before that end, moved forward to
 * the start of a word. Invariants: every start lands on a UTF-8 character boundary and is
 * past the previous start, so the loop always ends and never splits a character. */
#include "watch/chunk.h"

#include <uv.h>

#include "util/alloc.h"

static int is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static int is_cont(char c)
{
    return ((unsigned char)c & 0xC0) == 0x80;
}

/* Moves a cut back onto a character boundary (at most 3 steps). */
static size_t char_floor(const char *t, size_t lo, size_t i)
{
    while (i > lo && is_cont(t[i]))
        i--;
    return i;
}

/* The end of the chunk starting at `start` whose window ends at `end` (< len). */
static size_t best_cut(const char *t, size_t start, size_t end)
{
    size_t lo = start + (end - start) / 2;
    /* Paragraph: "\n\n" (possibly with spaces between) — cut after it. */
    for (size_t i = end; i > lo; i--)
        if (t[i - 1] == '\n' && i >= 2 && t[i - 2] == '\n')
            return i;
    /* Sentence: . ! ? (optionally closed by a quote or bracket) then white space. */
    for (size_t i = end; i > lo + 1; i--) {
        if (!is_space(t[i - 1]))
            continue;
        size_t p = i - 1;
        while (p > lo && (t[p - 1] == '"' || t[p - 1] == '\'' || t[p - 1] == ')'))
            p--;
        if (p > lo && (t[p - 1] == '.' || t[p - 1] == '!' || t[p - 1] == '?'))
            return i;
    }
    for (size_t i = end; i > lo; i--)
        if (t[i - 1] == '\n')
            return i;
    for (size_t i = end; i > lo; i--)
        if (is_space(t[i - 1]))
            return i;
    size_t c = char_floor(t, start, end);
    return c > start ? c : end;
}

long rp_watch_chunk(const char *text, size_t len, const rp_watch_chunk_cfg_t *cfg,
                    rp_watch_chunk_t **out)
{
    *out = NULL;
    if (cfg->size < 16 || cfg->overlap >= cfg->size / 2)
        return UV_EINVAL;
    size_t cap = 0, n = 0;
    rp_watch_chunk_t *v = NULL;
    size_t start = 0;
    while (start < len && is_space(text[start]))
        start++;
    while (start < len) {
        size_t cut = len;
        if (len - start > cfg->size)
            cut = best_cut(text, start, start + cfg->size);
        /* Trim, record. */
        size_t e = cut;
        while (e > start && is_space(text[e - 1]))
            e--;
        if (e > start) {
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                rp_watch_chunk_t *nv = rp_realloc(v, nc * sizeof(*nv));
                if (nv == NULL) {
                    rp_free(v);
                    return UV_ENOMEM;
                }
                v = nv;
                cap = nc;
            }
            v[n].start = start;
            v[n].len = e - start;
            n++;
        }
        if (cut >= len)
            break;
        /* Next start: overlap bytes back from the cut, forward to a word start. */
        size_t next = cut > cfg->overlap ? cut - cfg->overlap : 0;
        if (next <= start)
            next = cut;
        if (next < cut) {
            size_t w = next;
            while (w < cut && !is_space(text[w]))
                w++;
            /* Inside one long word: start mid-word rather than lose the overlap. */
            next = w < cut ? w : char_floor(text, start + 1, next);
        }
        while (next < len && is_space(text[next]))
            next++;
        if (next <= start)
            next = cut;
        start = next;
    }
    *out = v;
    return (long)n;
}
