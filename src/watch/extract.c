/* SPDX-License-Identifier: MIT */
/* Text extraction: file kinds, and plain text out of text, Markdown, CSV and JSON (HTML is
 * in html.c). The
 * output is always valid UTF-8 without NUL bytes (invalid sequences become U+FFFD), with
 * paragraphs separated by one blank line, which is what the chunker and the FTS5 index want.
 * Everything here is pure and bounded by the caller's rp_buf_t limit; PDF text comes from
 * pdftotext in child.c. The parsers never look past len: they are fuzzed with exact-size
 * inputs. */
#include "watch/extract.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/err.h"
#include "watch/watch_int.h"

static int why_set(char *why, size_t whylen, const char *msg)
{
    if (why && whylen)
        snprintf(why, whylen, "%s", msg);
    return RP_EINVAL;
}

/* ---- UTF-8 ---- */

size_t rp_watch_utf8_put(uint32_t cp, char out[4])
{
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        cp = 0xFFFD;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at p[0..n) (RFC 3629), or 0 if there is none. */
size_t rp_watch_utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < need + 1)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i <= need; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return need + 1;
}

/* Appends p[0..n) as clean UTF-8: invalid bytes → U+FFFD, NUL dropped, \r\n and \r → \n. */
int rp_watch_put_clean(rp_buf_t *out, const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && u[run] >= 0x20 && u[run] < 0x80)
            run++;
        if (run > i) {
            int rc = rp_buf_append(out, p + i, run - i);
            if (rc < 0)
                return rc;
            i = run;
            continue;
        }
        int rc = 0;
        if (u[i] == '\r') {
            rc = rp_buf_append_char(out, '\n');
            i += i + 1 < n && u[i + 1] == '\n' ? 2 : 1;
        } else if (u[i] == 0) {
            i++;
        } else if (u[i] < 0x80) {
            rc = rp_buf_append_char(out, (char)u[i]);
            i++;
        } else {
            size_t l = rp_watch_utf8_seq(u + i, n - i);
            if (l == 0) {
                rc = rp_buf_append(out, "\xEF\xBF\xBD", 3);
                i++;
            } else {
                rc = rp_buf_append(out, p + i, l);
                i += l;
            }
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Binary: a NUL byte, or more than 10% control bytes or invalid UTF-8 in the first 4 KiB. */
static int looks_binary(const char *data, size_t len, char *why, size_t whylen)
{
    const unsigned char *u = (const unsigned char *)data;
    const char *nul = memchr(data, '\0', len);
    if (nul) {
        if (why && whylen)
            snprintf(why, whylen, "binary content (a NUL byte at offset %zu)",
                     (size_t)(nul - data));
        return 1;
    }
    size_t n = len < 4096 ? len : 4096, bad = 0;
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x20 && u[i] != '\t' && u[i] != '\n' && u[i] != '\r' && u[i] != '\f' &&
            u[i] != '\v' && u[i] != 0x1b) {
            bad++;
            i++;
        } else if (u[i] >= 0x80) {
            size_t l = rp_watch_utf8_seq(u + i, n - i);
            /* A sequence cut by the 4 KiB window is not evidence of anything. */
            if (l == 0 && n - i >= 4)
                bad++;
            i += l ? l : 1;
        } else {
            i++;
        }
    }
    if (n > 0 && bad * 10 > n) {
        if (why && whylen)
            snprintf(why, whylen, "binary content (%zu of the first %zu bytes are not text)", bad,
                     n);
        return 1;
    }
    return 0;
}

/* ---- kinds ---- */

static const struct {
    const char *ext;
    rp_watch_kind_t kind;
} exts[] = {
    {".txt", RP_WATCH_TEXT},    {".text", RP_WATCH_TEXT},         {".log", RP_WATCH_TEXT},
    {".rst", RP_WATCH_TEXT},    {".adoc", RP_WATCH_TEXT},         {".org", RP_WATCH_TEXT},
    {".md", RP_WATCH_MARKDOWN}, {".markdown", RP_WATCH_MARKDOWN}, {".mdown", RP_WATCH_MARKDOWN},
    {".csv", RP_WATCH_CSV},     {".tsv", RP_WATCH_CSV},           {".json", RP_WATCH_JSON},
    {".html", RP_WATCH_HTML},   {".htm", RP_WATCH_HTML},          {".xhtml", RP_WATCH_HTML},
    {".pdf", RP_WATCH_PDF},
};

static int starts_with_ci(const char *s, size_t len, const char *prefix)
{
    size_t pl = strlen(prefix);
    return len >= pl && strncasecmp(s, prefix, pl) == 0;
}

rp_watch_kind_t rp_watch_kind_detect(const char *name, const char *head, size_t len)
{
    if (len >= 5 && memcmp(head, "%PDF-", 5) == 0)
        return RP_WATCH_PDF;
    const char *dot = name ? strrchr(name, '.') : NULL;
    const char *slash = name ? strrchr(name, '/') : NULL;
    if (dot && (slash == NULL || dot > slash))
        for (size_t i = 0; i < sizeof(exts) / sizeof(*exts); i++)
            if (strcasecmp(dot, exts[i].ext) == 0)
                return exts[i].kind;
    size_t skip = 0;
    if (len >= 3 && memcmp(head, "\xEF\xBB\xBF", 3) == 0)
        skip = 3;
    while (skip < len &&
           (head[skip] == ' ' || head[skip] == '\n' || head[skip] == '\r' || head[skip] == '\t'))
        skip++;
    if (starts_with_ci(head + skip, len - skip, "<!doctype html") ||
        starts_with_ci(head + skip, len - skip, "<html"))
        return RP_WATCH_HTML;
    if (len > 0 && !looks_binary(head, len, NULL, 0))
        return RP_WATCH_TEXT;
    return RP_WATCH_UNSUPPORTED;
}

const char *rp_watch_kind_mime(rp_watch_kind_t k)
{
    static const char *const m[] = {
        "text/plain",      "text/markdown",           "text/csv", "application/json", "text/html",
        "application/pdf", "application/octet-stream"};
    return (unsigned)k <= RP_WATCH_UNSUPPORTED ? m[k] : m[RP_WATCH_UNSUPPORTED];
}

const char *rp_watch_kind_name(rp_watch_kind_t k)
{
    static const char *const m[] = {"text", "markdown", "csv",        "json",
                                    "html", "pdf",      "unsupported"};
    return (unsigned)k <= RP_WATCH_UNSUPPORTED ? m[k] : m[RP_WATCH_UNSUPPORTED];
}

/* ---- plain text ---- */

static int extract_text(const char *data, size_t len, rp_buf_t *out)
{
    return rp_watch_put_clean(out, data, len);
}

/* ---- Markdown: the words, without the markup that would pollute snippets ---- */

/* Inline markup of one line: links and images keep their text, emphasis and code marks go. */
static int md_inline(rp_buf_t *out, const char *s, size_t n)
{
    size_t i = 0, lit = 0;
    int rc = 0;
    while (i < n && rc == 0) {
        char c = s[i];
        if (c == '*' || c == '`' || (c == '~' && i + 1 < n && s[i + 1] == '~')) {
            rc = rp_watch_put_clean(out, s + lit, i - lit);
            i += c == '~' ? 2 : 1;
            lit = i;
            continue;
        }
        if (c == '[' || (c == '!' && i + 1 < n && s[i + 1] == '[')) {
            size_t open = c == '!' ? i + 1 : i;
            const char *close = memchr(s + open, ']', n - open);
            size_t cl = close ? (size_t)(close - s) : n;
            if (close && cl + 1 < n && s[cl + 1] == '(') {
                const char *rp = memchr(s + cl + 1, ')', n - cl - 1);
                if (rp) {
                    rc = rp_watch_put_clean(out, s + lit, i - lit);
                    if (rc == 0)
                        rc = md_inline(out, s + open + 1, cl - open - 1);
                    i = (size_t)(rp - s) + 1;
                    lit = i;
                    continue;
                }
            }
        }
        i++;
    }
    if (rc == 0)
        rc = rp_watch_put_clean(out, s + lit, n - lit);
    return rc;
}

static int extract_markdown(const char *data, size_t len, rp_buf_t *out)
{
    size_t pos = 0;
    int blank_pending = 0, rc = 0;
    while (pos < len && rc == 0) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len;
        const char *s = data + pos;
        size_t n = end - pos;
        pos = nl ? end + 1 : len;
        if (n && s[n - 1] == '\r')
            n--;
        size_t ind = 0;
        while (ind < n && ind < 4 && (s[ind] == ' ' || s[ind] == '\t'))
            ind++;
        s += ind;
        n -= ind;
        /* Code fences and rules carry no words; block quote and list marks are layout. */
        if (n >= 3 && (memcmp(s, "```", 3) == 0 || memcmp(s, "~~~", 3) == 0))
            continue;
        if (n >= 3 && (s[0] == '-' || s[0] == '*' || s[0] == '_' || s[0] == '=')) {
            size_t k = 0;
            while (k < n && (s[k] == s[0] || s[k] == ' '))
                k++;
            if (k == n)
                continue;
        }
        while (n && s[0] == '>') {
            s++;
            n--;
            while (n && s[0] == ' ') {
                s++;
                n--;
            }
        }
        if (n && s[0] == '#') {
            size_t k = 0;
            while (k < n && k < 6 && s[k] == '#')
                k++;
            if (k == n || s[k] == ' ') {
                s += k;
                n -= k;
                while (n && (s[n - 1] == '#' || s[n - 1] == ' '))
                    n--;
                blank_pending = out->len > 0; /* a heading starts a paragraph */
            }
        } else if (n >= 2 && (s[0] == '-' || s[0] == '*' || s[0] == '+') && s[1] == ' ') {
            s += 2;
            n -= 2;
        } else {
            size_t k = 0;
            while (k < n && k < 9 && s[k] >= '0' && s[k] <= '9')
                k++;
            if (k > 0 && k + 1 < n && (s[k] == '.' || s[k] == ')') && s[k + 1] == ' ') {
                s += k + 2;
                n -= k + 2;
            }
        }
        while (n && (s[0] == ' ' || s[0] == '\t')) {
            s++;
            n--;
        }
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n == 0) {
            blank_pending = out->len > 0;
            continue;
        }
        if (out->len > 0)
            rc = rp_buf_append(out, blank_pending ? "\n\n" : "\n", blank_pending ? 2 : 1);
        blank_pending = 0;
        if (rc == 0)
            rc = md_inline(out, s, n);
    }
    return rc;
}

/* ---- CSV (RFC 4180; the delimiter is the most frequent of , ; TAB on the first line) ---- */

static int extract_csv(const char *data, size_t len, rp_buf_t *out)
{
    size_t counts[3] = {0, 0, 0};
    const char delims[3] = {',', ';', '\t'};
    int q = 0;
    for (size_t i = 0; i < len && (q || data[i] != '\n'); i++) {
        if (data[i] == '"')
            q = !q;
        for (int d = 0; d < 3 && !q; d++)
            counts[d] += data[i] == delims[d];
    }
    char delim = ',';
    size_t best = 0;
    for (int d = 0; d < 3; d++)
        if (counts[d] > best) {
            best = counts[d];
            delim = delims[d];
        }
    size_t i = 0;
    int rc = 0, field = 0, records = 0;
    while (i < len && rc == 0) {
        /* One field. */
        size_t start = i;
        if (data[i] == '"') {
            i++;
            start = i;
            if (field > 0)
                rc = rp_buf_append(out, " | ", 3);
            while (i < len && rc == 0) {
                const char *qq = memchr(data + i, '"', len - i);
                size_t stop = qq ? (size_t)(qq - data) : len;
                rc = rp_watch_put_clean(out, data + i, stop - i);
                i = stop;
                if (i < len && i + 1 < len && data[i + 1] == '"') {
                    if (rc == 0)
                        rc = rp_buf_append_char(out, '"');
                    i += 2;
                    continue;
                }
                if (i < len)
                    i++; /* the closing quote */
                break;
            }
            while (i < len && data[i] != delim && data[i] != '\n')
                i++; /* junk after a closing quote is dropped */
        } else {
            while (i < len && data[i] != delim && data[i] != '\n')
                i++;
            size_t n = i - start;
            if (n && data[start + n - 1] == '\r' && (i >= len || data[i] == '\n'))
                n--;
            if (field > 0 && rc == 0)
                rc = rp_buf_append(out, " | ", 3);
            if (rc == 0)
                rc = rp_watch_put_clean(out, data + start, n);
        }
        field++;
        if (i < len && data[i] == delim) {
            i++;
            if (i >= len && rc == 0)
                rc = rp_buf_append(out, " | ", 3);
            continue;
        }
        if (i < len)
            i++; /* '\n' */
        field = 0;
        records++;
        /* A blank line every 50 records gives the chunker paragraphs to split on. */
        if (rc == 0 && i < len)
            rc = rp_buf_append(out, records % 50 == 0 ? "\n\n" : "\n", records % 50 == 0 ? 2 : 1);
    }
    return rc;
}

/* ---- JSON: "key: value" lines, objects in an array separated by blank lines ---- */

static int json_text(rp_buf_t *out, const json_t *v, const char *key, int depth)
{
    int rc = 0;
    char num[64];
    if (json_is_object(v) || json_is_array(v)) {
        if (key) {
            rc = rp_watch_put_clean(out, key, strlen(key));
            if (rc == 0)
                rc = rp_buf_append(out, ":\n", 2);
        }
        if (json_is_object(v)) {
            const char *k;
            json_t *c;
            json_object_foreach((json_t *)v, k, c)
            {
                if (rc == 0)
                    rc = json_text(out, c, k, depth + 1);
            }
        } else {
            size_t i;
            json_t *c;
            json_array_foreach(v, i, c)
            {
                if (rc == 0)
                    rc = json_text(out, c, NULL, depth + 1);
                if (rc == 0 && depth == 0 && (json_is_object(c) || json_is_array(c)))
                    rc = rp_buf_append_char(out, '\n');
            }
        }
        return rc;
    }
    const char *s = NULL;
    size_t n = 0;
    if (json_is_string(v)) {
        s = json_string_value(v);
        n = json_string_length(v);
    } else if (json_is_integer(v)) {
        n = (size_t)snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
        s = num;
    } else if (json_is_real(v)) {
        n = (size_t)snprintf(num, sizeof(num), "%.15g", json_real_value(v));
        s = num;
    } else if (json_is_boolean(v)) {
        s = json_is_true(v) ? "true" : "false";
        n = strlen(s);
    } else {
        return 0; /* null carries nothing to find */
    }
    if (key) {
        rc = rp_watch_put_clean(out, key, strlen(key));
        if (rc == 0)
            rc = rp_buf_append(out, ": ", 2);
    }
    if (rc == 0)
        rc = rp_watch_put_clean(out, s, n);
    if (rc == 0)
        rc = rp_buf_append_char(out, '\n');
    return rc;
}

static int extract_json(const char *data, size_t len, rp_buf_t *out, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *j = json_loadb(data, len, JSON_DECODE_ANY, &jerr);
    if (j == NULL) {
        if (why && whylen)
            snprintf(why, whylen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                     jerr.text);
        return RP_EINVAL;
    }
    int rc = json_text(out, j, NULL, 0);
    json_decref(j);
    return rc;
}

int rp_watch_extract(rp_watch_kind_t k, const char *data, size_t len, rp_buf_t *out, char *why,
                     size_t whylen)
{
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
        data += 3;
        len -= 3;
    }
    if (k == RP_WATCH_PDF)
        return why_set(why, whylen, "PDF text comes from pdftotext, not this extractor");
    if (k == RP_WATCH_UNSUPPORTED || k > RP_WATCH_UNSUPPORTED) {
        /* Name the common formats people drop in by mistake; anything else by its bytes. */
        static const struct {
            const char *magic;
            size_t len;
            const char *what;
        } formats[] = {
            {"PK\x03\x04", 4, "a ZIP archive (.docx, .xlsx, .pptx, .odt, .epub, .zip)"},
            {"\x89PNG", 4, "a PNG image"},
            {"\xff\xd8\xff", 3, "a JPEG image"},
            {"GIF8", 4, "a GIF image"},
            {"\xd0\xcf\x11\xe0", 4, "an OLE document (.doc, .xls, .ppt)"},
            {"\x1f\x8b", 2, "a gzip archive"},
            {"\x7f"
             "ELF",
             4, "an ELF executable"},
            {"{\\rtf", 5, "an RTF document"},
        };
        for (size_t i = 0; i < sizeof(formats) / sizeof(*formats); i++) {
            if (len >= formats[i].len && memcmp(data, formats[i].magic, formats[i].len) == 0) {
                if (why && whylen)
                    snprintf(why, whylen, "unsupported file type: %s", formats[i].what);
                return RP_EINVAL;
            }
        }
        if (!looks_binary(data, len, why, whylen))
            why_set(why, whylen, "unsupported file type");
        return RP_EINVAL;
    }
    if (k != RP_WATCH_JSON && looks_binary(data, len, why, whylen))
        return RP_EINVAL;
    int rc;
    switch (k) {
    case RP_WATCH_MARKDOWN:
        rc = extract_markdown(data, len, out);
        break;
    case RP_WATCH_CSV:
        rc = extract_csv(data, len, out);
        break;
    case RP_WATCH_JSON:
        rc = extract_json(data, len, out, why, whylen);
        if (rc == RP_EINVAL)
            return RP_EINVAL;
        break;
    case RP_WATCH_HTML:
        rc = rp_watch_extract_html(data, len, out);
        break;
    default:
        rc = extract_text(data, len, out);
        break;
    }
    if (rc == RP_ETOOBIG)
        why_set(why, whylen, "the extracted text is larger than the limit (--max-file-size)");
    else if (rc < 0)
        why_set(why, whylen, "out of memory");
    return rc;
}
