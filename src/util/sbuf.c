/* SPDX-License-Identifier: MIT */
/* Shared byte blocks: header and bytes in one allocation. */
#include "util/sbuf.h"

#include <string.h>

#include "util/alloc.h"

rp_sbuf_t *rp_sbuf_new(size_t cap)
{
    if (cap > UINT32_MAX - sizeof(rp_sbuf_t))
        return NULL;
    rp_sbuf_t *sb = rp_malloc(sizeof(*sb) + cap);
    if (sb == NULL)
        return NULL;
    sb->refs = 1;
    sb->len = 0;
    sb->cap = (uint32_t)cap;
    sb->data = (char *)(sb + 1);
    return sb;
}

rp_sbuf_t *rp_sbuf_new_copy(const void *data, size_t len)
{
    rp_sbuf_t *sb = rp_sbuf_new(len);
    if (sb == NULL)
        return NULL;
    if (len)
        memcpy(sb->data, data, len);
    sb->len = (uint32_t)len;
    return sb;
}

rp_sbuf_t *rp_sbuf_adopt(char *data, size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    rp_sbuf_t *sb = rp_malloc(sizeof(*sb));
    if (sb == NULL)
        return NULL;
    sb->refs = 1;
    sb->len = sb->cap = (uint32_t)len;
    sb->data = data;
    return sb;
}

void rp_sbuf_free_(rp_sbuf_t *sb)
{
    if (sb->data != (char *)(sb + 1))
        rp_free(sb->data);
    rp_free(sb);
}
