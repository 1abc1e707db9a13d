/* SPDX-License-Identifier: MIT */
/* Raw-text JSON scanning (RFC 8259 grammar). Every function takes a length and never reads
 * past it; input is outside input, so nothing here asserts. */
#include "util/json.h"

#include <string.h>

#include "util/err.h"
#include "util/utf8.h"

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* Returns the value of hex digit `c`, or -1 (a sentinel: not a hex digit). */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Returns the index just past the closing quote of the string starting at s[i] == '"'. */
static long scan_string(const char *s, size_t n, size_t i)
{
    rp_utf8_t u;
    rp_utf8_init(&u);
    size_t start = ++i;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') {
            if (rp_utf8_feed(&u, (const unsigned char *)s + start, i - start) < 0 ||
                !rp_utf8_complete(&u))
                return RP_EPROTO;
            return (long)(i + 1);
        }
        if (c < 0x20)
            return RP_EPROTO;
        if (c == '\\') {
            if (i + 1 >= n)
                return RP_EPROTO;
            char e = s[i + 1];
            if (e == 'u') {
                if (i + 5 >= n)
                    return RP_EPROTO;
                for (int k = 2; k < 6; k++)
                    if (hexval(s[i + k]) < 0)
                        return RP_EPROTO;
                i += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0')
                return RP_EPROTO;
            i += 2;
            continue;
        }
        i++;
    }
    return RP_EPROTO;
}

static long scan_number(const char *s, size_t n, size_t i)
{
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return RP_EPROTO;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return RP_EPROTO;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return RP_EPROTO;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return RP_EPROTO;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    return (long)i;
}

static long scan_value(const char *s, size_t n, size_t i, int depth);

static long scan_container(const char *s, size_t n, size_t i, int depth)
{
    char close = s[i] == '[' ? ']' : '}';
    int is_obj = s[i] == '{';
    if (depth >= RP_JSON_MAX_DEPTH)
        return RP_EPROTO;
    i = skip_ws(s, n, i + 1);
    if (i < n && s[i] == close)
        return (long)(i + 1);
    for (;;) {
        if (is_obj) {
            if (i >= n || s[i] != '"')
                return RP_EPROTO;
            long k = scan_string(s, n, i);
            if (k < 0)
                return k;
            i = skip_ws(s, n, (size_t)k);
            if (i >= n || s[i] != ':')
                return RP_EPROTO;
            i = skip_ws(s, n, i + 1);
        }
        long v = scan_value(s, n, i, depth + 1);
        if (v < 0)
            return v;
        i = skip_ws(s, n, (size_t)v);
        if (i >= n)
            return RP_EPROTO;
        if (s[i] == close)
            return (long)(i + 1);
        if (s[i] != ',')
            return RP_EPROTO;
        i = skip_ws(s, n, i + 1);
    }
}

static long scan_literal(const char *s, size_t n, size_t i, const char *lit)
{
    size_t l = strlen(lit);
    if (n - i < l || memcmp(s + i, lit, l) != 0)
        return RP_EPROTO;
    return (long)(i + l);
}

static long scan_value(const char *s, size_t n, size_t i, int depth)
{
    if (i >= n)
        return RP_EPROTO;
    switch (s[i]) {
    case '{':
    case '[':
        return scan_container(s, n, i, depth);
    case '"':
        return scan_string(s, n, i);
    case 't':
        return scan_literal(s, n, i, "true");
    case 'f':
        return scan_literal(s, n, i, "false");
    case 'n':
        return scan_literal(s, n, i, "null");
    default:
        return scan_number(s, n, i);
    }
}

long rp_json_scan(const char *s, size_t n)
{
    return scan_value(s, n, skip_ws(s, n, 0), 0);
}

int rp_json_validate(const char *s, size_t n)
{
    long end = rp_json_scan(s, n);
    if (end < 0)
        return (int)end;
    return skip_ws(s, n, (size_t)end) == n ? 0 : RP_EPROTO;
}

int rp_json_array_begin(rp_json_iter_t *it, const char *s, size_t n)
{
    size_t i = skip_ws(s, n, 0);
    if (i >= n || s[i] != '[')
        return RP_EPROTO;
    it->s = s;
    it->n = n;
    it->pos = i + 1;
    it->count = 0;
    return 0;
}

int rp_json_array_next(rp_json_iter_t *it, const char **elem, size_t *elen)
{
    size_t i = skip_ws(it->s, it->n, it->pos);
    if (i >= it->n)
        return RP_EPROTO;
    if (it->s[i] == ']') {
        it->pos = i + 1;
        return 0;
    }
    if (it->count > 0) {
        if (it->s[i] != ',')
            return RP_EPROTO;
        i = skip_ws(it->s, it->n, i + 1);
    }
    long end = scan_value(it->s, it->n, i, 1);
    if (end < 0)
        return (int)end;
    *elem = it->s + i;
    *elen = (size_t)end - i;
    it->pos = (size_t)end;
    it->count++;
    return 1;
}

int rp_json_object_get(const char *s, size_t n, const char *key, const char **val, size_t *vlen)
{
    size_t i = skip_ws(s, n, 0);
    if (i >= n || s[i] != '{')
        return 0;
    i = skip_ws(s, n, i + 1);
    if (i < n && s[i] == '}')
        return 0;
    size_t keylen = strlen(key);
    for (;;) {
        if (i >= n || s[i] != '"')
            return RP_EPROTO;
        long k = scan_string(s, n, i);
        if (k < 0)
            return (int)k;
        /* Keys with escapes never match: ours are plain ASCII. */
        int match = (size_t)k - i - 2 == keylen && memcmp(s + i + 1, key, keylen) == 0;
        i = skip_ws(s, n, (size_t)k);
        if (i >= n || s[i] != ':')
            return RP_EPROTO;
        i = skip_ws(s, n, i + 1);
        long v = scan_value(s, n, i, 1);
        if (v < 0)
            return (int)v;
        if (match) {
            *val = s + i;
            *vlen = (size_t)v - i;
            return 1;
        }
        i = skip_ws(s, n, (size_t)v);
        if (i >= n)
            return RP_EPROTO;
        if (s[i] == '}')
            return 0;
        if (s[i] != ',')
            return RP_EPROTO;
        i = skip_ws(s, n, i + 1);
    }
}

static int put_utf8(rp_buf_t *out, unsigned cp)
{
    char b[4];
    size_t l;
    if (cp < 0x80) {
        b[0] = (char)cp;
        l = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 63));
        l = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12);
        b[1] = (char)(0x80 | ((cp >> 6) & 63));
        b[2] = (char)(0x80 | (cp & 63));
        l = 3;
    } else {
        b[0] = (char)(0xF0 | cp >> 18);
        b[1] = (char)(0x80 | ((cp >> 12) & 63));
        b[2] = (char)(0x80 | ((cp >> 6) & 63));
        b[3] = (char)(0x80 | (cp & 63));
        l = 4;
    }
    return rp_buf_append(out, b, l);
}

static unsigned hex4(const char *p)
{
    return (unsigned)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

int rp_json_string_decode(const char *s, size_t n, rp_buf_t *out)
{
    if (n < 2 || s[0] != '"' || scan_string(s, n, 0) != (long)n)
        return RP_EPROTO;
    size_t i = 1;
    int rc = 0;
    while (i < n - 1 && rc == 0) {
        size_t run = i;
        while (run < n - 1 && s[run] != '\\')
            run++;
        if (run > i) {
            rc = rp_buf_append(out, s + i, run - i);
            i = run;
            continue;
        }
        char e = s[i + 1];
        if (e != 'u') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            rc = rp_buf_append_char(out, to[strchr(from, e) - from]);
            i += 2;
            continue;
        }
        unsigned cp = hex4(s + i + 2);
        i += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (i + 6 > n - 1 || s[i] != '\\' || s[i + 1] != 'u')
                return RP_EPROTO;
            unsigned lo = hex4(s + i + 2);
            if (lo < 0xDC00 || lo > 0xDFFF)
                return RP_EPROTO;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
        } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
            return RP_EPROTO;
        }
        rc = put_utf8(out, cp);
    }
    return rc;
}

int rp_json_string_encode(rp_buf_t *out, const char *s, size_t n)
{
    int rc = rp_buf_append_char(out, '"');
    size_t i = 0;
    while (rc == 0 && i < n) {
        size_t run = i;
        while (run < n && (unsigned char)s[run] >= 0x20 && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) {
            rc = rp_buf_append(out, s + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = (unsigned char)s[i++];
        if (c == '"')
            rc = rp_buf_append(out, "\\\"", 2);
        else if (c == '\\')
            rc = rp_buf_append(out, "\\\\", 2);
        else if (c == '\n')
            rc = rp_buf_append(out, "\\n", 2);
        else if (c == '\r')
            rc = rp_buf_append(out, "\\r", 2);
        else if (c == '\t')
            rc = rp_buf_append(out, "\\t", 2);
        else
            rc = rp_buf_printf(out, "\\u%04x", c);
    }
    return rc ? rc : rp_buf_append_char(out, '"');
}
