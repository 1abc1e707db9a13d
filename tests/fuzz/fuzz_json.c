/* SPDX-License-Identifier: MIT */
/* Fuzzes the JSON scanner: rp_json_validate and rp_json_scan on the input, array iteration
 * when it is an array, rp_json_object_get when it is an object, and rp_json_string_decode of
 * every string element. Oracles: scan and validate agree; every element of a valid array is
 * itself valid JSON; a decoded string re-encodes to JSON that decodes to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_string(const char *el, size_t len)
{
    rp_buf_t dec, enc, again;
    rp_buf_init(&dec, 1 << 20);
    rp_buf_init(&enc, 1 << 22);
    rp_buf_init(&again, 1 << 20);
    if (rp_json_string_decode(el, len, &dec) == 0) {
        const char *d = dec.data ? dec.data : "";
        if (memchr(d, '\0', dec.len))
            abort(); /* \u0000 is refused */
        if (rp_json_string_encode(&enc, d, dec.len) != 0)
            abort();
        if (rp_json_validate(enc.data, enc.len) != 0)
            abort();
        if (rp_json_string_decode(enc.data, enc.len, &again) != 0 || again.len != dec.len ||
            (dec.len && memcmp(again.data, dec.data, dec.len) != 0))
            abort();
    }
    rp_buf_deinit(&dec);
    rp_buf_deinit(&enc);
    rp_buf_deinit(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);
    if (s == NULL)
        abort();
    if (size)
        memcpy(s, data, size);
    int valid = rp_json_validate(s, size) == 0;
    long scanned = rp_json_scan(s, size);
    if (scanned != RP_EPROTO && (scanned <= 0 || (size_t)scanned > size))
        abort();
    if (valid && scanned < 0)
        abort();

    rp_json_iter_t it;
    if (rp_json_array_begin(&it, s, size) == 0) {
        const char *el;
        size_t len;
        int rc;
        int n = 0;
        while ((rc = rp_json_array_next(&it, &el, &len)) == 1) {
            if (el < s || len == 0 || len > size || (size_t)(el - s) > size - len)
                abort();
            if (rp_json_validate(el, len) != 0)
                abort();
            if (el[0] == '"')
                check_string(el, len);
            if (++n > (int)size)
                abort();
        }
        if (rc != 0 && rc != RP_EPROTO)
            abort();
        if (valid && rc != 0)
            abort();
    }

    const char *val;
    size_t vlen;
    static const char *const keys[] = {"token", "sid", "a", ""};
    for (size_t k = 0; k < sizeof(keys) / sizeof(*keys); k++) {
        int rc = rp_json_object_get(s, size, keys[k], &val, &vlen);
        if (rc == 1 && rp_json_validate(val, vlen) != 0)
            abort();
        if (valid && rc < 0)
            abort();
    }

    if (size >= 2 && s[0] == '"')
        check_string(s, size);
    free(s);
    return 0;
}
