/* SPDX-License-Identifier: MIT */
/* UTF-8 validation with the ranges of the Unicode standard's table 3-7. */
#include "util/utf8.h"

#include <stdint.h>
#include <string.h>

#include "util/err.h"

int rp_utf8_feed(rp_utf8_t *u, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /* ASCII runs, 8 bytes at a time: most of what a hub sees. */
        if (u->need == 0) {
            while (i + 8 <= n) {
                uint64_t v;
                memcpy(&v, p + i, 8);
                if (v & 0x8080808080808080ULL)
                    break;
                i += 8;
            }
            if (i >= n)
                break;
        }
        unsigned c = p[i];
        if (u->need) {
            if (c < u->lo || c > u->hi)
                return RP_EPROTO;
            u->need--;
            u->lo = 0x80;
            u->hi = 0xBF;
            continue;
        }
        if (c < 0x80)
            continue;
        if (c >= 0xC2 && c <= 0xDF) {
            u->need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            u->need = 2;
            if (c == 0xE0)
                u->lo = 0xA0;
            else if (c == 0xED)
                u->hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            u->need = 3;
            if (c == 0xF0)
                u->lo = 0x90;
            else if (c == 0xF4)
                u->hi = 0x8F;
        } else {
            return RP_EPROTO;
        }
    }
    return 0;
}
