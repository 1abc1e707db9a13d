/* SPDX-License-Identifier: MIT */
/* The in-memory history (a ring of the last cfg.history committed events, oldest at
 * ring_head) and the idempotency keys (meta.idempotency_key, docs/architecture.md
 * "Idempotency keys"). Both are filled only by the event road's commit and by the replay at
 * start, so they always hold committed events, in id order. */
#include "hub/hub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/bucket.h"
#include "util/err.h"
#include "util/log.h"

hist_t *rp_hub_hist_at(rp_hub_t *hub, size_t i)
{
    return &hub->ring[(hub->ring_head + i) % hub->ring_cap];
}

/* Idempotency keys: meta.idempotency_key (docs/architecture.md "Idempotency keys").
 * The keys of the last RP_DEDUP_KEYS committed events, per pipeline, each with its id: a
 * POST /api/events repeating one is answered with that id and not stored again. Filled on
 * commit and on the replay at start, so a restart keeps the window the store still holds. */

/* The idempotency key of producer event ev, or NULL when it has none. */
static const char *dedup_key_of(const json_t *ev)
{
    return json_string_value(json_object_get(json_object_get(ev, "meta"), "idempotency_key"));
}

/* Writes the map's key for ev into out (the pipeline scopes it); returns 0, or RP_ENOTFOUND when
 * ev has no key. */
static int dedup_slot(const json_t *ev, char *out, size_t outlen)
{
    const char *k = dedup_key_of(ev);
    const char *pid = json_string_value(json_object_get(ev, "pipeline_id"));
    if (k == NULL || pid == NULL)
        return RP_ENOTFOUND;
    snprintf(out, outlen, "%s\x1f%s", pid, k);
    return 0;
}

/* The id a committed event with ev's key got, or 0 when none in the window has it. */
int64_t rp_hub_dedup_find(const rp_hub_t *hub, const json_t *ev)
{
    char slot[160 + RP_DEDUP_KEY_MAX];
    if (hub->dedup == NULL || dedup_slot(ev, slot, sizeof(slot)) < 0)
        return 0;
    return json_integer_value(json_object_get(hub->dedup, slot));
}

/* Remembers committed event ev's key (if any) with its id, forgetting the oldest past the
 * window. Out of memory only shortens the window. */
static void dedup_remember(rp_hub_t *hub, const json_t *ev, int64_t id)
{
    char slot[160 + RP_DEDUP_KEY_MAX];
    if (hub->dedup == NULL || dedup_slot(ev, slot, sizeof(slot)) < 0 ||
        json_object_get(hub->dedup, slot))
        return;
    char *copy = rp_strndup(slot, strlen(slot));
    if (copy == NULL || json_object_set_new(hub->dedup, slot, json_integer(id)) < 0) {
        rp_free(copy);
        return;
    }
    if (hub->dedup_len == RP_DEDUP_KEYS) {
        char *old = hub->dedup_ring[hub->dedup_head];
        json_object_del(hub->dedup, old);
        rp_free(old);
        hub->dedup_head = (hub->dedup_head + 1) % RP_DEDUP_KEYS;
        hub->dedup_len--;
    }
    hub->dedup_ring[(hub->dedup_head + hub->dedup_len) % RP_DEDUP_KEYS] = copy;
    hub->dedup_len++;
}

/* Checks ev's idempotency key: absent, or a string of 1 to RP_DEDUP_KEY_MAX characters.
 * Returns 0, or RP_EINVAL with err filled. */
int rp_hub_dedup_validate(const json_t *ev, rp_event_error_t *err)
{
    const json_t *k = json_object_get(json_object_get(ev, "meta"), "idempotency_key");
    if (k == NULL || (json_is_string(k) && json_string_length(k) >= 1 &&
                      json_string_length(k) <= RP_DEDUP_KEY_MAX))
        return 0;
    snprintf(err->field, sizeof(err->field), "meta.idempotency_key");
    snprintf(err->rule, sizeof(err->rule), "must be a string of 1 to %d bytes", RP_DEDUP_KEY_MAX);
    return RP_EINVAL;
}

void rp_hub_dedup_free(rp_hub_t *hub)
{
    for (size_t i = 0; i < hub->dedup_len; i++)
        rp_free(hub->dedup_ring[(hub->dedup_head + i) % RP_DEDUP_KEYS]);
    rp_free(hub->dedup_ring);
    json_decref(hub->dedup);
    hub->dedup_ring = NULL;
    hub->dedup = NULL;
}

void rp_hub_hist_push(rp_hub_t *hub, int64_t id, rp_event_type_t type, char *json, size_t len,
                      const json_t *ev)
{
    dedup_remember(hub, ev, id);
    hist_t *h;
    if (hub->ring_len == hub->ring_cap) {
        h = rp_hub_hist_at(hub, 0);
        free(h->json);
        rp_free(h->file_id);
        hub->ring_head = (hub->ring_head + 1) % hub->ring_cap;
        hub->ring_len--;
    }
    h = &hub->ring[(hub->ring_head + hub->ring_len) % hub->ring_cap];
    h->id = id;
    h->type = type;
    h->json = json;
    h->len = len;
    snprintf(h->pipeline_id, sizeof(h->pipeline_id), "%s",
             json_string_value(json_object_get(ev, "pipeline_id")));
    snprintf(h->pipeline_type, sizeof(h->pipeline_type), "%s",
             json_string_value(json_object_get(ev, "pipeline_type")));
    const char *fid = json_string_value(json_object_get(json_object_get(ev, "file"), "id"));
    h->file_id = fid ? rp_strndup(fid, strlen(fid)) : NULL;
    hub->ring_len++;
}

json_t *rp_hub_events_since(rp_hub_t *hub, int64_t since, int *reset)
{
    json_t *arr = json_array();
    *reset = 0;
    if (hub->ring_len && since < rp_hub_hist_at(hub, 0)->id - 1 && since < rp_hub_version(hub)) {
        *reset = 1;
        return arr;
    }
    for (size_t i = 0; i < hub->ring_len; i++) {
        hist_t *h = rp_hub_hist_at(hub, i);
        if (h->id <= since)
            continue;
        json_t *e = json_loadb(h->json, h->len, 0, NULL);
        if (e)
            json_array_append_new(arr, e);
    }
    return arr;
}

void rp_hub_history_free(rp_hub_t *hub)
{
    for (size_t i = 0; hub->ring && i < hub->ring_len; i++) {
        hist_t *h = rp_hub_hist_at(hub, i);
        free(h->json);
        rp_free(h->file_id);
    }
    rp_free(hub->ring);
    hub->ring = NULL;
    hub->ring_len = 0;
}
