/* SPDX-License-Identifier: MIT */
#ifndef RP_UTIL_MAP_H
#define RP_UTIL_MAP_H

#include <stddef.h>
#include <stdint.h>

/* An intrusive hash map from byte-string keys to entries (chained, power-of-two buckets,
 * grows at load 1). The entry embeds an rp_map_entry_t and owns its key bytes; the map never
 * allocates entries, only its bucket array. */
typedef struct rp_map_entry {
    struct rp_map_entry *_next;
    const char *key; /* borrowed from the entry's owner */
    size_t keylen;
    uint64_t _hash;
} rp_map_entry_t;

typedef struct rp_map {
    rp_map_entry_t **buckets;
    size_t nbuckets;
    size_t count;
} rp_map_t;

void rp_map_init(rp_map_t *m);
void rp_map_deinit(rp_map_t *m); /* frees the buckets only */
/* Links e (whose key/keylen the caller set). Returns 0, or UV_ENOMEM if growing failed (e is
 * linked anyway: the map stays correct, only slower). The key must not be present. */
int rp_map_put(rp_map_t *m, rp_map_entry_t *e);
rp_map_entry_t *rp_map_get(const rp_map_t *m, const char *key, size_t keylen);
void rp_map_del(rp_map_t *m, rp_map_entry_t *e);
uint64_t rp_map_hash(const char *key, size_t keylen);

/* Iteration: for (it = rp_map_first(m, &b); it; it = rp_map_next(m, it, &b)); do not
 * delete the current entry while iterating. */
rp_map_entry_t *rp_map_first(const rp_map_t *m, size_t *bucket);
rp_map_entry_t *rp_map_next(const rp_map_t *m, rp_map_entry_t *e, size_t *bucket);

#endif
