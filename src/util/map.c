/* SPDX-License-Identifier: MIT */
/* Chained hash map with intrusive entries; FNV-1a with a per-process seed. */
#include "util/map.h"

#include <string.h>
#include <uv.h>

#include "util/alloc.h"

uint64_t rp_map_hash(const char *key, size_t keylen)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < keylen; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ULL;
    }
    return h ^ (h >> 29);
}

void rp_map_init(rp_map_t *m)
{
    m->buckets = NULL;
    m->nbuckets = 0;
    m->count = 0;
}

void rp_map_deinit(rp_map_t *m)
{
    rp_free(m->buckets);
    rp_map_init(m);
}

static int grow(rp_map_t *m)
{
    size_t n = m->nbuckets ? m->nbuckets * 2 : 16;
    rp_map_entry_t **b = rp_calloc(n, sizeof(*b));
    if (b == NULL)
        return UV_ENOMEM;
    for (size_t i = 0; i < m->nbuckets; i++) {
        rp_map_entry_t *e = m->buckets[i];
        while (e) {
            rp_map_entry_t *next = e->_next;
            size_t j = e->_hash & (n - 1);
            e->_next = b[j];
            b[j] = e;
            e = next;
        }
    }
    rp_free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
    return 0;
}

int rp_map_put(rp_map_t *m, rp_map_entry_t *e)
{
    int rc = 0;
    if (m->count >= m->nbuckets) {
        rc = grow(m);
        if (rc < 0 && m->nbuckets == 0)
            return rc;
    }
    e->_hash = rp_map_hash(e->key, e->keylen);
    size_t i = e->_hash & (m->nbuckets - 1);
    e->_next = m->buckets[i];
    m->buckets[i] = e;
    m->count++;
    return rc;
}

rp_map_entry_t *rp_map_get(const rp_map_t *m, const char *key, size_t keylen)
{
    if (m->nbuckets == 0)
        return NULL;
    uint64_t h = rp_map_hash(key, keylen);
    for (rp_map_entry_t *e = m->buckets[h & (m->nbuckets - 1)]; e; e = e->_next)
        if (e->_hash == h && e->keylen == keylen && memcmp(e->key, key, keylen) == 0)
            return e;
    return NULL;
}

void rp_map_del(rp_map_t *m, rp_map_entry_t *e)
{
    rp_map_entry_t **pp = &m->buckets[e->_hash & (m->nbuckets - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->_next;
    if (*pp) {
        *pp = e->_next;
        m->count--;
    }
}

rp_map_entry_t *rp_map_first(const rp_map_t *m, size_t *bucket)
{
    for (size_t i = 0; i < m->nbuckets; i++)
        if (m->buckets[i]) {
            *bucket = i;
            return m->buckets[i];
        }
    return NULL;
}

rp_map_entry_t *rp_map_next(const rp_map_t *m, rp_map_entry_t *e, size_t *bucket)
{
    if (e->_next)
        return e->_next;
    for (size_t i = *bucket + 1; i < m->nbuckets; i++)
        if (m->buckets[i]) {
            *bucket = i;
            return m->buckets[i];
        }
    return NULL;
}
