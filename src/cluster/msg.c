/* SPDX-License-Identifier: MIT */
/* The binary form of a cluster broadcast, as exchanged between worker processes. Input comes
 * from our own processes, but it is still checked as if it did not. */
#include <string.h>

#include "cluster/cluster.h"
#include "util/err.h"

static size_t names_size(const char *const *names, size_t n)
{
    size_t s = 2;
    for (size_t i = 0; i < n; i++)
        s += 2 + strlen(names[i]);
    return s;
}

size_t rp_cluster_msg_size(const rp_cluster_msg_t *m)
{
    return 2 + m->nsp_len + names_size(m->rooms, m->rooms ? m->nrooms : 0) +
           names_size(m->except, m->nexcept) + m->packet_len;
}

static uint8_t *put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *put_names(uint8_t *p, const char *const *names, size_t n, int *ok)
{
    p = put16(p, n);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (l > 0xFFFF)
            *ok = 0;
        p = put16(p, l);
        memcpy(p, names[i], l);
        p += l;
    }
    return p;
}

size_t rp_cluster_msg_encode(const rp_cluster_msg_t *m, uint8_t *out)
{
    int ok = m->nsp_len <= 0xFFFF && m->nrooms <= 0xFFFF && m->nexcept <= 0xFFFF;
    uint8_t *p = put16(out, m->nsp_len);
    memcpy(p, m->nsp, m->nsp_len);
    p += m->nsp_len;
    p = put_names(p, m->rooms, m->rooms ? m->nrooms : 0, &ok);
    p = put_names(p, m->except, m->nexcept, &ok);
    memcpy(p, m->packet, m->packet_len);
    p += m->packet_len;
    return ok ? (size_t)(p - out) : 0;
}

static int get16(const uint8_t **p, const uint8_t *end, size_t *v)
{
    if (end - *p < 2)
        return RP_EPROTO;
    *v = (size_t)(*p)[0] << 8 | (*p)[1];
    *p += 2;
    return 0;
}

static int get_names(const uint8_t **p, const uint8_t *end, char **names, const char **ptrs,
                     size_t *used, size_t max, size_t *count)
{
    if (get16(p, end, count) < 0 || *used + *count > max)
        return RP_EPROTO;
    for (size_t i = 0; i < *count; i++) {
        size_t l;
        if (get16(p, end, &l) < 0 || (size_t)(end - *p) < l)
            return RP_EPROTO;
        memcpy(*names, *p, l);
        (*names)[l] = '\0';
        ptrs[(*used)++] = *names;
        *names += l + 1;
        *p += l;
    }
    return 0;
}

int rp_cluster_msg_decode(const uint8_t *buf, size_t len, rp_cluster_msg_t *m, char *names,
                          const char **name_ptrs, size_t max_names)
{
    const uint8_t *p = buf, *end = buf + len;
    size_t used = 0, nrooms, nexcept;
    if (get16(&p, end, &m->nsp_len) < 0 || (size_t)(end - p) < m->nsp_len)
        return RP_EPROTO;
    m->nsp = (const char *)p;
    p += m->nsp_len;
    if (get_names(&p, end, &names, name_ptrs, &used, max_names, &nrooms) < 0)
        return RP_EPROTO;
    m->rooms = nrooms ? name_ptrs : NULL;
    m->nrooms = nrooms;
    size_t mark = used;
    if (get_names(&p, end, &names, name_ptrs, &used, max_names, &nexcept) < 0)
        return RP_EPROTO;
    m->except = name_ptrs + mark;
    m->nexcept = nexcept;
    m->packet = (const char *)p;
    m->packet_len = (size_t)(end - p);
    return m->packet_len ? 0 : RP_EPROTO;
}
