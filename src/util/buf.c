/* SPDX-License-Identifier: MIT */
/* Bounded growable buffers. Growth doubles; the limit caps len, never a surprise realloc. */
#include "util/buf.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "util/alloc.h"
#include "util/err.h"

void rp_buf_init(rp_buf_t *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
    b->err = 0;
}

static int failed(rp_buf_t *b, int rc)
{
    if (b->err == 0)
        b->err = rc;
    return rc;
}

void rp_buf_deinit(rp_buf_t *b)
{
    rp_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->err = 0;
}

int rp_buf_reserve(rp_buf_t *b, size_t n)
{
    if (n > b->limit || b->len > b->limit - n)
        return failed(b, RP_ETOOBIG);
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = rp_realloc(b->data, cap);
    if (p == NULL)
        return failed(b, UV_ENOMEM);
    b->data = p;
    b->cap = cap;
    return 0;
}

int rp_buf_append(rp_buf_t *b, const void *data, size_t n)
{
    int rc = rp_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int rp_buf_append_str(rp_buf_t *b, const char *s)
{
    return rp_buf_append(b, s, strlen(s));
}

int rp_buf_append_char(rp_buf_t *b, char c)
{
    return rp_buf_append(b, &c, 1);
}

int rp_buf_printf(rp_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return failed(b, RP_EPROTO);
    if ((size_t)n < sizeof(small))
        return rp_buf_append(b, small, (size_t)n);
    int rc = rp_buf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void rp_buf_consume(rp_buf_t *b, size_t n)
{
    if (n >= b->len) {
        rp_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}
