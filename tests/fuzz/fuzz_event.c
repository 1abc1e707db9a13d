/* SPDX-License-Identifier: MIT */
/* Fuzzes event validation, the rules every producer event passes (docs/events.schema.json):
 * the input is parsed as JSON the way the hub parses it and, when it is an object, given to
 * rp_event_validate. Oracles: a refusal names a rule; an accepted event normalises to an
 * object that dumps to valid JSON with the same type, which validates again once the hub's
 * own members are dropped (normalising is idempotent on the rules). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub/event.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *in =
        json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(in)) {
        json_decref(in);
        return 0;
    }
    rp_event_error_t err;
    int type = rp_event_validate(in, &err);
    if (type < 0) {
        if (err.rule[0] == '\0')
            abort();
        json_decref(in);
        return 0;
    }
    if (type >= RP_EV_COUNT)
        abort();
    json_t *norm = rp_event_normalize(in, 42, 1795300000000LL);
    if (norm == NULL)
        abort();
    size_t len;
    char *text = rp_json_dump(norm, &len);
    if (text == NULL || rp_json_validate(text, len) != 0)
        abort();
    const char *t = json_string_value(json_object_get(norm, "type"));
    if (t == NULL || strcmp(t, rp_event_type_name((rp_event_type_t)type)) != 0)
        abort();
    json_object_del(norm, "id");
    json_object_del(norm, "ts");
    if (rp_event_validate(norm, &err) != type)
        abort();
    free(text);
    json_decref(norm);
    json_decref(in);
    return 0;
}
