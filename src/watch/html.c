/* SPDX-License-Identifier: MIT */
/* HTML to text for the extractor: tags dropped (block tags become paragraph breaks, cells are
 * separated by tabs), scripts and styles skipped, character references decoded, and a page
 * in windows-1252 read as such. Pure and bounded like the rest of extract.c, whose UTF-8
 * cleaning it shares; it never looks past len (fuzzed with exact-size inputs). */
#include "watch/extract.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/err.h"
#include "watch/watch_int.h"

/* ---- HTML ---- */

/* Named references: the HTML5 names in common use. `legacy` ones may omit the ';'. */
static const struct {
    const char *name;
    uint16_t cp;
    uint8_t legacy;
} entities[] = {
    {"amp", '&', 1},       {"lt", '<', 1},        {"gt", '>', 1},        {"quot", '"', 1},
    {"apos", '\'', 0},     {"nbsp", 0xA0, 1},     {"iexcl", 0xA1, 1},    {"cent", 0xA2, 1},
    {"pound", 0xA3, 1},    {"curren", 0xA4, 1},   {"yen", 0xA5, 1},      {"brvbar", 0xA6, 1},
    {"sect", 0xA7, 1},     {"uml", 0xA8, 1},      {"copy", 0xA9, 1},     {"ordf", 0xAA, 1},
    {"laquo", 0xAB, 1},    {"not", 0xAC, 1},      {"shy", 0xAD, 1},      {"reg", 0xAE, 1},
    {"macr", 0xAF, 1},     {"deg", 0xB0, 1},      {"plusmn", 0xB1, 1},   {"sup2", 0xB2, 1},
    {"sup3", 0xB3, 1},     {"acute", 0xB4, 1},    {"micro", 0xB5, 1},    {"para", 0xB6, 1},
    {"middot", 0xB7, 1},   {"cedil", 0xB8, 1},    {"sup1", 0xB9, 1},     {"ordm", 0xBA, 1},
    {"raquo", 0xBB, 1},    {"frac14", 0xBC, 1},   {"frac12", 0xBD, 1},   {"frac34", 0xBE, 1},
    {"iquest", 0xBF, 1},   {"Agrave", 0xC0, 1},   {"Aacute", 0xC1, 1},   {"Acirc", 0xC2, 1},
    {"Atilde", 0xC3, 1},   {"Auml", 0xC4, 1},     {"Aring", 0xC5, 1},    {"AElig", 0xC6, 1},
    {"Ccedil", 0xC7, 1},   {"Egrave", 0xC8, 1},   {"Eacute", 0xC9, 1},   {"Ecirc", 0xCA, 1},
    {"Euml", 0xCB, 1},     {"Igrave", 0xCC, 1},   {"Iacute", 0xCD, 1},   {"Icirc", 0xCE, 1},
    {"Iuml", 0xCF, 1},     {"ETH", 0xD0, 1},      {"Ntilde", 0xD1, 1},   {"Ograve", 0xD2, 1},
    {"Oacute", 0xD3, 1},   {"Ocirc", 0xD4, 1},    {"Otilde", 0xD5, 1},   {"Ouml", 0xD6, 1},
    {"times", 0xD7, 1},    {"Oslash", 0xD8, 1},   {"Ugrave", 0xD9, 1},   {"Uacute", 0xDA, 1},
    {"Ucirc", 0xDB, 1},    {"Uuml", 0xDC, 1},     {"Yacute", 0xDD, 1},   {"THORN", 0xDE, 1},
    {"szlig", 0xDF, 1},    {"agrave", 0xE0, 1},   {"aacute", 0xE1, 1},   {"acirc", 0xE2, 1},
    {"atilde", 0xE3, 1},   {"auml", 0xE4, 1},     {"aring", 0xE5, 1},    {"aelig", 0xE6, 1},
    {"ccedil", 0xE7, 1},   {"egrave", 0xE8, 1},   {"eacute", 0xE9, 1},   {"ecirc", 0xEA, 1},
    {"euml", 0xEB, 1},     {"igrave", 0xEC, 1},   {"iacute", 0xED, 1},   {"icirc", 0xEE, 1},
    {"iuml", 0xEF, 1},     {"eth", 0xF0, 1},      {"ntilde", 0xF1, 1},   {"ograve", 0xF2, 1},
    {"oacute", 0xF3, 1},   {"ocirc", 0xF4, 1},    {"otilde", 0xF5, 1},   {"ouml", 0xF6, 1},
    {"divide", 0xF7, 1},   {"oslash", 0xF8, 1},   {"ugrave", 0xF9, 1},   {"uacute", 0xFA, 1},
    {"ucirc", 0xFB, 1},    {"uuml", 0xFC, 1},     {"yacute", 0xFD, 1},   {"thorn", 0xFE, 1},
    {"yuml", 0xFF, 1},     {"OElig", 0x152, 0},   {"oelig", 0x153, 0},   {"Scaron", 0x160, 0},
    {"scaron", 0x161, 0},  {"Yuml", 0x178, 0},    {"fnof", 0x192, 0},    {"circ", 0x2C6, 0},
    {"tilde", 0x2DC, 0},   {"Alpha", 0x391, 0},   {"Beta", 0x392, 0},    {"Gamma", 0x393, 0},
    {"Delta", 0x394, 0},   {"Theta", 0x398, 0},   {"Lambda", 0x39B, 0},  {"Pi", 0x3A0, 0},
    {"Sigma", 0x3A3, 0},   {"Phi", 0x3A6, 0},     {"Psi", 0x3A8, 0},     {"Omega", 0x3A9, 0},
    {"alpha", 0x3B1, 0},   {"beta", 0x3B2, 0},    {"gamma", 0x3B3, 0},   {"delta", 0x3B4, 0},
    {"epsilon", 0x3B5, 0}, {"zeta", 0x3B6, 0},    {"eta", 0x3B7, 0},     {"theta", 0x3B8, 0},
    {"iota", 0x3B9, 0},    {"kappa", 0x3BA, 0},   {"lambda", 0x3BB, 0},  {"mu", 0x3BC, 0},
    {"nu", 0x3BD, 0},      {"xi", 0x3BE, 0},      {"omicron", 0x3BF, 0}, {"pi", 0x3C0, 0},
    {"rho", 0x3C1, 0},     {"sigmaf", 0x3C2, 0},  {"sigma", 0x3C3, 0},   {"tau", 0x3C4, 0},
    {"upsilon", 0x3C5, 0}, {"phi", 0x3C6, 0},     {"chi", 0x3C7, 0},     {"psi", 0x3C8, 0},
    {"omega", 0x3C9, 0},   {"ensp", 0x2002, 0},   {"emsp", 0x2003, 0},   {"thinsp", 0x2009, 0},
    {"zwnj", 0x200C, 0},   {"zwj", 0x200D, 0},    {"lrm", 0x200E, 0},    {"rlm", 0x200F, 0},
    {"ndash", 0x2013, 0},  {"mdash", 0x2014, 0},  {"lsquo", 0x2018, 0},  {"rsquo", 0x2019, 0},
    {"sbquo", 0x201A, 0},  {"ldquo", 0x201C, 0},  {"rdquo", 0x201D, 0},  {"bdquo", 0x201E, 0},
    {"dagger", 0x2020, 0}, {"Dagger", 0x2021, 0}, {"bull", 0x2022, 0},   {"hellip", 0x2026, 0},
    {"permil", 0x2030, 0}, {"prime", 0x2032, 0},  {"Prime", 0x2033, 0},  {"lsaquo", 0x2039, 0},
    {"rsaquo", 0x203A, 0}, {"oline", 0x203E, 0},  {"frasl", 0x2044, 0},  {"euro", 0x20AC, 0},
    {"trade", 0x2122, 0},  {"larr", 0x2190, 0},   {"uarr", 0x2191, 0},   {"rarr", 0x2192, 0},
    {"darr", 0x2193, 0},   {"harr", 0x2194, 0},   {"lArr", 0x21D0, 0},   {"rArr", 0x21D2, 0},
    {"hArr", 0x21D4, 0},   {"forall", 0x2200, 0}, {"part", 0x2202, 0},   {"exist", 0x2203, 0},
    {"empty", 0x2205, 0},  {"nabla", 0x2207, 0},  {"isin", 0x2208, 0},   {"notin", 0x2209, 0},
    {"prod", 0x220F, 0},   {"sum", 0x2211, 0},    {"minus", 0x2212, 0},  {"radic", 0x221A, 0},
    {"prop", 0x221D, 0},   {"infin", 0x221E, 0},  {"and", 0x2227, 0},    {"or", 0x2228, 0},
    {"cap", 0x2229, 0},    {"cup", 0x222A, 0},    {"int", 0x222B, 0},    {"there4", 0x2234, 0},
    {"sim", 0x223C, 0},    {"asymp", 0x2248, 0},  {"ne", 0x2260, 0},     {"equiv", 0x2261, 0},
    {"le", 0x2264, 0},     {"ge", 0x2265, 0},     {"sub", 0x2282, 0},    {"sup", 0x2283, 0},
    {"sube", 0x2286, 0},   {"supe", 0x2287, 0},   {"oplus", 0x2295, 0},  {"otimes", 0x2297, 0},
    {"perp", 0x22A5, 0},   {"sdot", 0x22C5, 0},   {"loz", 0x25CA, 0},    {"spades", 0x2660, 0},
    {"clubs", 0x2663, 0},  {"hearts", 0x2665, 0}, {"diams", 0x2666, 0},  {"check", 0x2713, 0},
    {"Tab", 0x09, 0},      {"NewLine", 0x0A, 0},  {"colon", ':', 0},     {"comma", ',', 0},
    {"period", '.', 0},    {"excl", '!', 0},      {"quest", '?', 0},     {"num", '#', 0},
    {"dollar", '$', 0},    {"percnt", '%', 0},    {"lpar", '(', 0},      {"rpar", ')', 0},
    {"ast", '*', 0},       {"plus", '+', 0},      {"sol", '/', 0},       {"semi", ';', 0},
    {"equals", '=', 0},    {"lsqb", '[', 0},      {"rsqb", ']', 0},      {"lowbar", '_', 0},
    {"lcub", '{', 0},      {"rcub", '}', 0},      {"verbar", '|', 0},    {"grave", '`', 0},
    {"bsol", '\\', 0},     {"Hat", '^', 0},       {"commat", '@', 0},
};

/* HTML5 §13.2.5.80: numeric references 0x80-0x9F name Windows-1252 characters. */
static const uint16_t cp1252[32] = {
    0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x8D,   0x017D, 0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178,
};

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

size_t rp_watch_html_entity(const char *s, size_t len, char out[8], size_t *outlen)
{
    *outlen = 0;
    if (len < 2 || s[0] != '&')
        return 0;
    if (s[1] == '#') {
        size_t i = 2;
        int hex = i < len && (s[i] == 'x' || s[i] == 'X');
        if (hex)
            i++;
        size_t digits = i;
        uint32_t cp = 0;
        for (; i < len; i++) {
            char c = s[i];
            int d;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (hex && c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else if (hex && c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
            else
                break;
            cp = cp * (hex ? 16u : 10u) + (uint32_t)d;
            if (cp > 0x10FFFF)
                cp = 0x110000; /* stays out of range, never overflows */
        }
        if (i == digits)
            return 0; /* "&#" or "&#x" with no digits: not a reference */
        if (i < len && s[i] == ';')
            i++;
        if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            cp = 0xFFFD;
        else if (cp >= 0x80 && cp <= 0x9F)
            cp = cp1252[cp - 0x80];
        *outlen = rp_watch_utf8_put(cp, out);
        return i;
    }
    size_t n = 1;
    while (n < len && n <= 32 && is_alnum(s[n]))
        n++;
    size_t name_len = n - 1;
    if (name_len == 0 || name_len > 31)
        return 0;
    int semi = n < len && s[n] == ';';
    for (size_t e = 0; e < sizeof(entities) / sizeof(*entities); e++) {
        if (strlen(entities[e].name) == name_len &&
            memcmp(entities[e].name, s + 1, name_len) == 0) {
            if (!semi && !entities[e].legacy)
                return 0;
            *outlen = rp_watch_utf8_put(entities[e].cp, out);
            return n + (size_t)semi;
        }
    }
    /* Legacy names are also recognised as a prefix: "&copy2024" is "©2024". */
    if (!semi) {
        for (size_t e = 0; e < sizeof(entities) / sizeof(*entities); e++) {
            size_t el = strlen(entities[e].name);
            if (entities[e].legacy && el < name_len && memcmp(entities[e].name, s + 1, el) == 0 &&
                (entities[e].cp > 0x7F || el >= 2)) {
                *outlen = rp_watch_utf8_put(entities[e].cp, out);
                return 1 + el;
            }
        }
    }
    return 0;
}

typedef struct html {
    rp_buf_t *out;
    int brk; /* pending separator: 0 none, 1 space, 2 newline, 3 paragraph */
    int rc;
    int cp1252; /* the page says it is Latin-1 / Windows-1252 and is not valid UTF-8 */
} html_t;

/* Appends Windows-1252 bytes (a superset of Latin-1's printable range) as UTF-8. */
static int put_cp1252(rp_buf_t *out, const char *p, size_t n)
{
    size_t lit = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x80)
            continue;
        int rc = rp_watch_put_clean(out, p + lit, i - lit);
        char u[4];
        size_t ul = rp_watch_utf8_put(c < 0xA0 ? cp1252[c - 0x80] : c, u);
        if (rc == 0)
            rc = rp_buf_append(out, u, ul);
        if (rc < 0)
            return rc;
        lit = i + 1;
    }
    return rp_watch_put_clean(out, p + lit, n - lit);
}

/* True when the first 2 KiB declare a Latin-1 family charset (<meta charset=...> or the
 * http-equiv form) and the bytes are not valid UTF-8 anyway (pages often lie). */
static int html_is_cp1252(const char *s, size_t len)
{
    size_t n = len < 2048 ? len : 2048;
    for (size_t i = 0; i + 8 < n; i++) {
        if (strncasecmp(s + i, "charset=", 8) != 0)
            continue;
        size_t v = i + 8;
        while (v < n && (s[v] == '"' || s[v] == '\'' || s[v] == ' '))
            v++;
        static const char *const names[] = {"iso-8859-1", "latin1",   "windows-1252",
                                            "cp1252",     "us-ascii", "iso-8859-15"};
        int latin = 0;
        for (size_t k = 0; k < sizeof(names) / sizeof(*names); k++)
            latin |=
                n - v >= strlen(names[k]) && strncasecmp(s + v, names[k], strlen(names[k])) == 0;
        if (!latin)
            return 0;
        for (size_t b = 0; b < len;) {
            size_t l = rp_watch_utf8_seq((const unsigned char *)s + b, len - b);
            if (l == 0)
                return 1;
            b += l;
        }
        return 0;
    }
    return 0;
}

static void html_sep(html_t *h, int brk)
{
    if (brk > h->brk)
        h->brk = brk;
}

static void html_text(html_t *h, const char *p, size_t n)
{
    if (h->rc < 0 || n == 0)
        return;
    if (h->out->len > 0 && h->brk) {
        static const char *const seps[] = {"", " ", "\n", "\n\n"};
        h->rc = rp_buf_append_str(h->out, seps[h->brk]);
    }
    h->brk = 0;
    if (h->rc == 0)
        h->rc = h->cp1252 ? put_cp1252(h->out, p, n) : rp_watch_put_clean(h->out, p, n);
}

static const char *const block_tags[] = {
    "p",       "div",        "h1",      "h2",     "h3",     "h4",      "h5",
    "h6",      "section",    "article", "header", "footer", "ul",      "ol",
    "table",   "blockquote", "pre",     "title",  "main",   "nav",     "aside",
    "figure",  "figcaption", "dl",      "form",   "hr",     "address", "fieldset",
    "details", "summary",    "body",    "html",   "head",   NULL};
static const char *const line_tags[] = {"br", "li", "tr", "dt", "dd", "option", "caption", NULL};
static const char *const cell_tags[] = {"td", "th", NULL};
/* Elements whose content is never text: skipped up to their end tag. */
static const char *const raw_tags[] = {"script", "style",  "template", "svg", "math",
                                       "iframe", "object", "textarea", NULL};

static int in_list(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(name, *list) == 0)
            return 1;
    return 0;
}

/* Finds "</name" (any case) at or after i; returns its offset or len. */
static size_t find_end_tag(const char *s, size_t len, size_t i, const char *name)
{
    size_t nl = strlen(name);
    for (; i + 2 + nl <= len; i++) {
        if (s[i] == '<' && s[i + 1] == '/' && strncasecmp(s + i + 2, name, nl) == 0 &&
            (i + 2 + nl == len || !is_alnum(s[i + 2 + nl])))
            return i;
    }
    return len;
}

/* Skips a tag's attributes (quotes respected) to just past its '>', or to len. */
static size_t skip_tag(const char *s, size_t len, size_t i)
{
    char quote = 0;
    for (; i < len; i++) {
        if (quote) {
            if (s[i] == quote)
                quote = 0;
        } else if (s[i] == '"' || s[i] == '\'') {
            quote = s[i];
        } else if (s[i] == '>') {
            return i + 1;
        }
    }
    return len;
}

int rp_watch_extract_html(const char *s, size_t len, rp_buf_t *out)
{
    html_t h = {out, 0, 0, html_is_cp1252(s, len)};
    size_t i = 0, lit = 0;
    while (i < len && h.rc == 0) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
            html_text(&h, s + lit, i - lit);
            while (i < len &&
                   (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f'))
                i++;
            html_sep(&h, 1);
            lit = i;
            continue;
        }
        if (c == '&') {
            char buf[8];
            size_t bl;
            size_t used = rp_watch_html_entity(s + i, len - i, buf, &bl);
            if (used == 0) {
                i++;
                continue;
            }
            html_text(&h, s + lit, i - lit);
            /* A decoded no-break space is a space in text. */
            if (bl == 2 && memcmp(buf, "\xC2\xA0", 2) == 0)
                html_sep(&h, 1);
            else
                html_text(&h, buf, bl);
            i += used;
            lit = i;
            continue;
        }
        if (c != '<' || i + 1 >= len) {
            i++;
            continue;
        }
        char n1 = s[i + 1];
        if (n1 == '!' || n1 == '?') {
            html_text(&h, s + lit, i - lit);
            if (len - i >= 4 && memcmp(s + i, "<!--", 4) == 0) {
                size_t j = i + 4;
                while (j + 3 <= len && memcmp(s + j, "-->", 3) != 0)
                    j++;
                i = j + 3 <= len ? j + 3 : len;
            } else {
                i = skip_tag(s, len, i + 2);
            }
            lit = i;
            continue;
        }
        int closing = n1 == '/';
        size_t j = i + 1 + (size_t)closing;
        if (j >= len || !((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z'))) {
            i++; /* a lone '<' is text */
            continue;
        }
        html_text(&h, s + lit, i - lit);
        char name[16];
        size_t nl = 0;
        while (j < len && is_alnum(s[j])) {
            if (nl < sizeof(name) - 1)
                name[nl++] = (char)((s[j] >= 'A' && s[j] <= 'Z') ? s[j] + 32 : s[j]);
            j++;
        }
        name[nl] = '\0';
        i = skip_tag(s, len, j);
        if (!closing && in_list(name, raw_tags)) {
            size_t end = find_end_tag(s, len, i, name);
            i = end < len ? skip_tag(s, len, end + 2) : len;
            html_sep(&h, 1);
        } else if (in_list(name, block_tags)) {
            html_sep(&h, 3);
        } else if (in_list(name, line_tags)) {
            html_sep(&h, 2);
        } else if (in_list(name, cell_tags)) {
            html_sep(&h, 1);
            if (!closing && h.out->len > 0 && h.rc == 0 && h.brk == 1) {
                h.rc = rp_buf_append(h.out, " |", 2);
            }
        }
        lit = i;
    }
    html_text(&h, s + lit, len > lit ? len - lit : 0);
    return h.rc;
}
