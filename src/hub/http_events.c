/* SPDX-License-Identifier: MIT */
/* POST /api/events: one event or a batch, each validated, rate-limited, bounded and sent
 * down the event road; the answer waits until the last one is committed (or refused). A
 * batch's idempotency keys are checked before any event is taken, so a repeat is answered
 * with the ids it got the first time. */
#include "hub/hub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/bucket.h"
#include "util/err.h"
#include "util/log.h"

/* A POST /api/events whose events are being stored: answered when the last one is. */
typedef struct post {
    rp_http_conn_t *hc; /* first: see held_abort */
    rp_hub_t *hub;
    json_t *ids;
    size_t remaining;
    int batch;
    int failed;
} post_t;

static void on_posted(void *ud, int status, int64_t id)
{
    post_t *po = ud;
    if (id >= 0 && status < 0) {
        /* The slot holds the id the event was given at submission: clear it. */
        size_t i;
        json_t *v;
        json_array_foreach(po->ids, i, v)
        {
            if (json_integer_value(v) == id)
                json_array_set_new(po->ids, i, json_null());
        }
        po->failed = 1;
    }
    if (--po->remaining > 0)
        return;
    rp_http_conn_t *hc = po->hc;
    if (hc) {
        hc->on_abort = NULL;
        hc->data = NULL;
        if (po->failed) {
            json_t *j =
                json_pack("{s:s,s:s,s:O}", "error", "store unavailable", "rule",
                          "events with a null id were not stored; send them again", "ids", po->ids);
            rp_hub_respond_json(po->hub, hc, 503, rp_hub_with_store_reason(po->hub, j),
                                "Retry-After: 1\r\n");
        } else {
            rp_hub_respond_json(po->hub, hc, 200,
                                po->batch ? json_pack("{s:O}", "ids", po->ids)
                                          : json_pack("{s:O}", "id", json_array_get(po->ids, 0)),
                                NULL);
        }
    }
    json_decref(po->ids);
    rp_free(po);
}

/* Gives back the reservations made for the first n events of a batch that is refused. */
static void unreserve_batch(rp_hub_t *hub, const json_t *body, int batch,
                            const unsigned char *reserved, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (reserved[i])
            rp_hub_state_unreserve(&hub->state, batch ? json_array_get(body, i) : body);
}

void rp_hub_post_events(rp_hub_t *hub, rp_http_conn_t *hc, rp_http_request_t *req,
                        const rp_principal_t *who)
{
    size_t ctl;
    const char *ct = rp_http_header(req, "content-type", &ctl);
    /* application/json, optionally with parameters (charset): not json-patch+json, not jsonl. */
    if (ct == NULL || ctl < 16 || strncasecmp(ct, "application/json", 16) != 0 ||
        (ctl > 16 && ct[16] != ';' && ct[16] != ' ')) {
        hub->refused[REFUSED_CONTENT_TYPE]++;
        rp_hub_respond_error(hub, hc, 415, "Content-Type must be application/json", NULL, -1);
        return;
    }
    json_error_t jerr;
    json_t *body =
        json_loadb(req->body, req->body_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (body == NULL) {
        hub->refused[REFUSED_JSON]++;
        char msg[256];
        snprintf(msg, sizeof(msg), "malformed JSON at line %d column %d: %s", jerr.line,
                 jerr.column, jerr.text);
        rp_hub_respond_error(hub, hc, 400, msg, NULL, -1);
        return;
    }
    int batch = json_is_array(body);
    size_t n = batch ? json_array_size(body) : 1;
    if (batch && n > hub->cfg.max_batch) {
        hub->refused[REFUSED_TOO_BIG]++;
        char msg[96];
        snprintf(msg, sizeof(msg), "a batch holds at most %zu events", hub->cfg.max_batch);
        rp_hub_respond_error(hub, hc, 413, msg, NULL, -1);
        json_decref(body);
        return;
    }
    if (batch && n == 0) {
        rp_hub_respond_error(hub, hc, 400, "empty batch", NULL, -1);
        json_decref(body);
        return;
    }
    /* All or nothing: every event is checked before any is accepted. */
    for (size_t i = 0; i < n; i++) {
        rp_event_error_t err;
        const json_t *ev = batch ? json_array_get(body, i) : body;
        if (rp_event_validate(ev, &err) < 0 || rp_hub_dedup_validate(ev, &err) < 0) {
            hub->refused[REFUSED_INVALID]++;
            rp_hub_respond_error(hub, hc, 400, "invalid event", &err, batch ? (long)i : -1);
            json_decref(body);
            return;
        }
        const char *pid = json_string_value(json_object_get(ev, "pipeline_id"));
        if (who && !rp_principal_produces(who, pid)) {
            char why[200];
            snprintf(why, sizeof(why), "%s (event %zu, pipeline %.100s)",
                     who->role == RP_ROLE_VIEWER
                         ? "viewers cannot send events"
                         : "this token may not send events for that pipeline",
                     i, pid);
            rp_hub_respond_denied(hub, hc, DENY_FORBIDDEN, why);
            json_decref(body);
            return;
        }
    }
    /* The bounds on files in flight, all or nothing too: the batch's new files are reserved
     * one by one (so the batch is counted with itself), and given back if one is refused. */
    unsigned char *reserved = rp_calloc(n, 1);
    if (reserved == NULL) {
        rp_hub_respond_error(hub, hc, 500, "out of memory", NULL, -1);
        json_decref(body);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        rp_event_error_t err;
        const json_t *ev = batch ? json_array_get(body, i) : body;
        int limit = 0, r = 0;
        if (rp_hub_dedup_find(hub, ev))
            continue; /* a repeat: answered with its first id below, never stored */
        int t = rp_event_validate(ev, &err);
        int rc = rp_hub_admit(hub, (rp_event_type_t)t, ev, &err, &r, &limit);
        reserved[i] = (unsigned char)r;
        if (rc < 0) {
            unreserve_batch(hub, body, batch, reserved, i);
            json_t *j = rc == RP_ETOOBIG ? rp_hub_limit_json(&err, limit)
                                         : json_pack("{s:s}", "error", "out of memory");
            if (j && batch)
                json_object_set_new(j, "index", json_integer((json_int_t)i));
            rp_hub_respond_json(hub, hc, rc == RP_ETOOBIG ? 429 : 500, j, NULL);
            rp_free(reserved);
            json_decref(body);
            return;
        }
    }
    char key[96];
    rp_hub_http_producer_key(hc, who, key, sizeof(key));
    uint64_t wait = rp_hub_producer_take(hub, key, (double)n);
    if (wait) {
        unreserve_batch(hub, body, batch, reserved, n);
        rp_free(reserved);
        char extra[64];
        snprintf(extra, sizeof(extra), "Retry-After: %llu\r\n",
                 (unsigned long long)((wait + 999) / 1000));
        rp_hub_respond_json(
            hub, hc, 429,
            json_pack("{s:s,s:I}", "error", "rate limited", "retry_after_ms", (json_int_t)wait),
            extra);
        json_decref(body);
        return;
    }
    rp_free(reserved);
    post_t *po = rp_calloc(1, sizeof(*po));
    if (po == NULL || (po->ids = json_array()) == NULL) {
        rp_free(po);
        rp_hub_respond_error(hub, hc, 500, "out of memory", NULL, -1);
        json_decref(body);
        return;
    }
    po->hub = hub;
    po->hc = hc;
    po->batch = batch;
    po->remaining = n + 1; /* +1 until every event is submitted */
    hc->data = po;
    hc->on_abort = rp_hub_held_abort;
    if (hub->store)
        hub->store->ops->hold(hub->store, 1); /* one commit for the whole batch */
    hub->via = VIA_HTTP;
    for (size_t i = 0; i < n; i++) {
        rp_event_error_t err;
        const json_t *ev = batch ? json_array_get(body, i) : body;
        int64_t first = rp_hub_dedup_find(hub, ev);
        if (first) {
            json_array_append_new(po->ids, json_integer(first));
            po->remaining--;
            continue;
        }
        int64_t id = hub->next_id; /* the id this event gets if it is accepted */
        json_array_append_new(po->ids, json_integer(id));
        if (rp_hub_ingest(hub, ev, &err, on_posted, po) < 0) {
            json_array_set_new(po->ids, i, json_null());
            po->failed = 1;
            po->remaining--;
        }
    }
    hub->via = VIA_OTHER;
    if (hub->store)
        hub->store->ops->hold(hub->store, 0);
    json_decref(body);
    on_posted(po, 0, -1); /* drops the +1 */
}
