/* SPDX-License-Identifier: MIT */
/* Fuzzes the local-files pipeline's text extractors (text, Markdown, CSV, JSON, HTML, and the
 * unsupported-kind check), the HTML character-reference decoder at every '&', kind detection,
 * and the chunker on whatever text came out. Oracles: extraction output is valid UTF-8 with
 * no NUL byte; a reference never consumes more than it was given and decodes to 1..4 bytes
 * of valid UTF-8; chunks are in bounds, ordered, on character boundaries, at most `size`
 * bytes, and cover every non-space byte. The first input byte picks the chunk size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/utf8.h"
#include "watch/chunk.h"
#include "watch/extract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_utf8(const char *p, size_t n)
{
    rp_utf8_t u;
    rp_utf8_init(&u);
    if (rp_utf8_feed(&u, (const unsigned char *)p, n) != 0 || !rp_utf8_complete(&u))
        abort();
    if (memchr(p, '\0', n))
        abort();
}

static void check_chunks(const char *t, size_t len, size_t csize)
{
    rp_watch_chunk_cfg_t cfg = {csize, csize / 5};
    rp_watch_chunk_t *c;
    long n = rp_watch_chunk(t, len, &cfg, &c);
    if (n < 0)
        abort();
    char *covered = calloc(len + 1, 1);
    if (covered == NULL)
        abort();
    for (long i = 0; i < n; i++) {
        if (c[i].len == 0 || c[i].len > csize || c[i].start + c[i].len > len)
            abort();
        if (i > 0 && c[i].start <= c[i - 1].start)
            abort();
        if (((unsigned char)t[c[i].start] & 0xC0) == 0x80)
            abort();
        memset(covered + c[i].start, 1, c[i].len);
    }
    for (size_t b = 0; b < len; b++)
        if (!strchr(" \n\t\r\f\v", t[b]) && !covered[b])
            abort();
    free(covered);
    rp_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);
    if (s == NULL)
        abort();
    if (size)
        memcpy(s, data, size);
    size_t csize = 16 + (size ? data[0] : 0) * 4;
    static const rp_watch_kind_t kinds[] = {RP_WATCH_TEXT, RP_WATCH_MARKDOWN, RP_WATCH_CSV,
                                            RP_WATCH_JSON, RP_WATCH_HTML,     RP_WATCH_UNSUPPORTED};
    for (size_t k = 0; k < sizeof(kinds) / sizeof(*kinds); k++) {
        rp_buf_t out;
        rp_buf_init(&out, 1 << 22);
        char why[256];
        why[0] = '\0';
        int rc = rp_watch_extract(kinds[k], s, size, &out, why, sizeof(why));
        if (rc == 0) {
            if (kinds[k] == RP_WATCH_UNSUPPORTED)
                abort();
            check_utf8(out.data ? out.data : "", out.len);
            check_chunks(out.data ? out.data : "", out.len, csize);
        } else if (why[0] == '\0') {
            abort(); /* a failure always says why */
        }
        rp_buf_deinit(&out);
    }
    for (size_t i = 0; i < size; i++) {
        if (s[i] != '&')
            continue;
        char out[8];
        size_t ol = 0;
        size_t used = rp_watch_html_entity(s + i, size - i, out, &ol);
        if (used > size - i || (used && (ol == 0 || ol > 4)) || (!used && ol))
            abort();
        if (used)
            check_utf8(out, ol);
    }
    (void)rp_watch_kind_detect("fuzz", s, size);
    free(s);
    return 0;
}
