/* SPDX-License-Identifier: MIT */
#ifndef RP_WATCH_EXTRACT_H
#define RP_WATCH_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Text extraction for the local-files pipeline: what kind a file is (by name, then by its
 * first bytes), and its text as UTF-8 for plain text, Markdown, CSV, JSON and HTML. PDF is
 * only recognised here; its text comes from pdftotext (watch.c spawns it). Every function is
 * pure (no I/O, no globals), so any thread may call them, and each is fuzzed
 * (tests/fuzz/fuzz_watch_extract.c). */

typedef enum rp_watch_kind {
    RP_WATCH_TEXT,
    RP_WATCH_MARKDOWN,
    RP_WATCH_CSV,
    RP_WATCH_JSON,
    RP_WATCH_HTML,
    RP_WATCH_PDF,
    RP_WATCH_UNSUPPORTED,
} rp_watch_kind_t;

/* The kind of a file named `name` whose content starts with head[0..len): known extensions
 * first (.txt .md .csv .json .html .pdf ...), then the content: "%PDF-" is a PDF, "<!doctype
 * html"/"<html" is HTML, UTF-8 text without NUL or control bytes is text, anything else is
 * unsupported. */
rp_watch_kind_t rp_watch_kind_detect(const char *name, const char *head, size_t len);
/* "text/plain", "text/markdown", ... ("application/octet-stream" for unsupported). */
const char *rp_watch_kind_mime(rp_watch_kind_t k);
/* "text", "markdown", "csv", "json", "html", "pdf", "unsupported". */
const char *rp_watch_kind_name(rp_watch_kind_t k);

/* Appends the text of data[0..len) (a file of kind k, not PDF) to out as UTF-8 without NUL
 * bytes: a UTF-8 BOM is dropped, invalid UTF-8 becomes U+FFFD, Windows line ends become \n.
 * Returns 0, or RP_EINVAL with `why` set (binary content, invalid JSON, unsupported kind) or
 * RP_ETOOBIG / UV_ENOMEM from out (why set too). Paragraphs are separated by a blank line so
 * that chunking can split on them. */
int rp_watch_extract(rp_watch_kind_t k, const char *data, size_t len, rp_buf_t *out, char *why,
                     size_t whylen);

/* Decodes one HTML character reference at s[0..len), s[0] == '&': named (&amp; &eacute; ...;
 * the HTML5 names in common use, with or without the ';' for the Latin-1 legacy ones),
 * decimal (&#233;) or hex (&#xE9;). Numeric references follow HTML5: 0, surrogates and values
 * above U+10FFFF become U+FFFD, 0x80-0x9F are read as Windows-1252. Writes the UTF-8 bytes to
 * out (at most 8) and their count to *outlen; returns the bytes of s consumed, or 0 when
 * s does not start a reference (the caller then copies the '&' as is). */
size_t rp_watch_html_entity(const char *s, size_t len, char out[8], size_t *outlen);

/* Appends the UTF-8 encoding of code point cp to out[0..4); returns its length (1..4). An
 * invalid cp (surrogate, > U+10FFFF) is written as U+FFFD. */
size_t rp_watch_utf8_put(uint32_t cp, char out[4]);

#endif
