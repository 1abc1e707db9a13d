/* SPDX-License-Identifier: MIT */
#ifndef RP_HUB_STATE_H
#define RP_HUB_STATE_H

#include <jansson.h>
#include <stdint.h>

#include "hub/event.h"
#include "util/list.h"
#include "util/map.h"

/* Live state of every pipeline, built only from normalised events (so replaying the log
 * rebuilds it). Per pipeline: status, heartbeat, counters, files in flight with their
 * progress and stage timings, 10-second activity buckets for the last 5 minutes, the last
 * completed and failed files, and failures grouped by their normalised message. The
 * snapshot functions turn it into the JSON that /api/rag-status and subscribe acks return.
 * Loop thread only. */

enum { RP_PIPE_ONLINE, RP_PIPE_OFFLINE, RP_PIPE_RUNNING, RP_PIPE_IDLE, RP_PIPE_ERROR };

#define RP_HUB_BUCKETS 30        /* 30 x 10 s = 5 minutes */
#define RP_HUB_BUCKET_MS 10000
#define RP_HUB_RECENT 20

typedef struct rp_hub_file {
    rp_map_entry_t entry;
    rp_list_node_t node; /* pipeline's files, oldest first */
    char *id;
    char *name;
    json_t *extra; /* size, mime_type, hash: as the producer sent them */
    double progress;
    char stage[65];
    int64_t chunks;
    int attempt;
    int64_t started_at;
    int64_t stage_started_at;
    int64_t last_progress_at;
} rp_hub_file_t;

typedef struct rp_hub_bucket {
    int64_t slot; /* ts / RP_HUB_BUCKET_MS */
    uint32_t completed;
    uint32_t failed;
    uint64_t chunks;
} rp_hub_bucket_t;

typedef struct rp_hub_pipeline {
    rp_map_entry_t entry;
    char id[129];
    char type[65];
    int status;
    double heartbeat_interval; /* seconds */
    int64_t last_heartbeat;    /* ms since epoch */
    int64_t last_event_at;
    int64_t last_event_id;
    uint64_t processed;
    uint64_t failed;
    uint64_t chunks;
    int64_t files_total; /* -1: not reported */
    int64_t files_pending;
    char *message;
    rp_map_t files;
    rp_list_node_t file_list;
    size_t nfiles;
    rp_hub_bucket_t buckets[RP_HUB_BUCKETS];
    json_t *recent_completed; /* arrays, newest last, at most RP_HUB_RECENT */
    json_t *recent_failed;
    rp_list_node_t node; /* state's pipelines, in order of appearance */
} rp_hub_pipeline_t;

typedef struct rp_hub_state {
    rp_map_t pipelines;
    rp_list_node_t pipeline_list;
    size_t npipelines;
    json_t *failure_groups; /* object: pipeline_id + "\n" + normalised message -> group */
    double default_heartbeat_interval; /* seconds, for pipelines that never said */
} rp_hub_state_t;

void rp_hub_state_init(rp_hub_state_t *st);
void rp_hub_state_deinit(rp_hub_state_t *st);
/* Applies a normalised event (as rp_event_normalize built it). ts_ms is its time. Returns 0
 * or UV_ENOMEM. */
int rp_hub_state_apply(rp_hub_state_t *st, rp_event_type_t type, const json_t *ev, int64_t ts_ms);
rp_hub_pipeline_t *rp_hub_state_find(rp_hub_state_t *st, const char *id);

const char *rp_hub_status_name(int status);

/* Snapshot of one pipeline, or of every pipeline matching (id, type): either may be NULL.
 * now_ms stamps ages. Returns a new reference or NULL. */
json_t *rp_hub_pipeline_json(const rp_hub_pipeline_t *p, int64_t now_ms);
json_t *rp_hub_state_json(rp_hub_state_t *st, const char *id, const char *type, int64_t now_ms);
/* Failure groups, optionally of one pipeline, most recent first. */
json_t *rp_hub_failures_json(rp_hub_state_t *st, const char *pipeline_id);

/* The whole state as JSON for a durable snapshot (internal form, not the API's), and back:
 * retention prunes old events, so a restart rebuilds from the last snapshot plus the events
 * after it. rp_hub_state_import expects an empty state; returns 0 or -1. */
json_t *rp_hub_state_export(const rp_hub_state_t *st);
int rp_hub_state_import(rp_hub_state_t *st, const json_t *j);

/* Masks numbers, hex ids, UUIDs, quoted strings and paths in msg so that messages that differ
 * only in those group together. Writes at most outlen - 1 bytes. */
void rp_hub_normalize_message(const char *msg, char *out, size_t outlen);

#endif
