/* SPDX-License-Identifier: MIT */
/* Unguessable ids (session ids, private recovery ids) from getrandom(2), batched. */
#include "util/rand.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static unsigned char pool[4096];
static size_t pool_left;

int rp_rand_id(char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (pool_left == 0) {
            ssize_t got = getrandom(pool, sizeof(pool), 0);
            if (got != (ssize_t)sizeof(pool))
                return got < 0 ? -errno : -EIO;
            pool_left = sizeof(pool);
        }
        out[i] = alphabet[pool[--pool_left] & 63];
    }
    out[n] = '\0';
    return 0;
}
