/* SPDX-License-Identifier: MIT */
#ifndef RP_HUB_EVENT_H
#define RP_HUB_EVENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Pipeline events: the nine types, and validation of what producers send against the rules
 * of docs/events.schema.json (the same rules, written in C). A validated event is
 * normalised into a new object with the hub's `id` and `ts` first and the known fields in
 * schema order, so every consumer sees one shape. */

typedef enum rp_event_type {
    RP_EV_PIPELINE_ONLINE,
    RP_EV_PIPELINE_OFFLINE,
    RP_EV_FILE_PROCESSING,
    RP_EV_FILE_PROGRESS,
    RP_EV_FILE_COMPLETED,
    RP_EV_FILE_FAILED,
    RP_EV_FILE_DELETED, /* the file is gone from the source: its chunks went, it is no longer there
                         */
    RP_EV_STATUS_UPDATE,
    RP_EV_HEARTBEAT,
    RP_EV_COUNT
} rp_event_type_t;

/* "pipeline:online", ... */
const char *rp_event_type_name(rp_event_type_t t);
/* Returns the type for name[0..len), or RP_ENOTFOUND. */
int rp_event_type_parse(const char *name, size_t len);
static inline int rp_event_is_file(rp_event_type_t t)
{
    return t >= RP_EV_FILE_PROCESSING && t <= RP_EV_FILE_DELETED;
}

/* Why an event was refused: the field (dotted path, "" for the event itself) and the rule. */
typedef struct rp_event_error {
    char field[64];
    char rule[160];
} rp_event_error_t;

/* Checks `in` (a producer's event object). Returns the type, or RP_EINVAL with err filled. */
int rp_event_validate(const json_t *in, rp_event_error_t *err);

/* Builds the normalised event: {"id","ts","type","pipeline_id","pipeline_type",...}. `in`
 * must have passed rp_event_validate. ts_ms is milliseconds since the epoch. Returns a new
 * reference, or NULL on out-of-memory. */
json_t *rp_event_normalize(const json_t *in, int64_t id, int64_t ts_ms);

/* Writes ts_ms as RFC 3339 UTC with milliseconds ("2026-11-22T00:40:00.123Z", 25 bytes). */
void rp_event_format_ts(int64_t ts_ms, char out[32]);

/* Dumps an event or snapshot compactly, reals with 15 significant digits (so 0.4 stays 0.4).
 * Returns a malloc'd string (free with free()) or NULL. */
char *rp_json_dump(const json_t *j, size_t *len);

#endif
