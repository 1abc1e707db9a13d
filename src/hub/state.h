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
 * snapshot functions turn it into the JSON that /api/rag-status and subscribe acks return:
 * a snapshot lists at most a budget of files, so its size does not grow with the files in
 * flight; the rest is read page by page (rp_hub_pipeline_files_json). The state also
 * bounds the files in flight (rp_hub_state_admit), per pipeline and in all. Loop thread only. */

enum {
    RP_PIPE_ONLINE,
    RP_PIPE_OFFLINE,
    RP_PIPE_RUNNING,
    RP_PIPE_IDLE,
    RP_PIPE_ERROR
};

#define RP_HUB_BUCKETS    30 /* 30 x 10 s = 5 minutes */
#define RP_HUB_BUCKET_MS  10000
#define RP_HUB_RECENT     20
#define RP_HUB_MAX_STAGES 32 /* distinct stage names counted by name; the rest as "other" */

/* Fields starting with `_` are state.c's own: other modules read the rest. */
typedef struct rp_hub_file {
    rp_map_entry_t _entry;
    rp_list_node_t node;          /* pipeline's files, oldest first */
    rp_list_node_t progress_node; /* pipeline's files, least recent progress first */
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
    int _stage_other; /* counted under "other" in the pipeline's stages */
} rp_hub_file_t;

typedef struct rp_hub_bucket {
    int64_t slot; /* ts / RP_HUB_BUCKET_MS */
    uint32_t completed;
    uint32_t failed;
    uint64_t chunks;
} rp_hub_bucket_t;

typedef struct rp_hub_pipeline {
    rp_map_entry_t _entry;
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
    rp_map_t _files; /* by id */
    rp_list_node_t file_list;
    rp_list_node_t progress_list; /* the same files by last_progress_at: stalls are at the head */
    size_t nfiles;
    json_t *stages; /* object: stage name ("queued" for none) -> files in it, kept as they move */
    rp_hub_bucket_t buckets[RP_HUB_BUCKETS];
    json_t *recent_completed; /* arrays, newest last, at most RP_HUB_RECENT */
    json_t *recent_failed;
    rp_list_node_t node; /* state's pipelines, in order of appearance */
} rp_hub_pipeline_t;

typedef struct rp_hub_state {
    rp_map_t _pipelines; /* by id */
    rp_list_node_t pipeline_list;
    size_t npipelines;
    size_t nfiles;           /* files in flight in all pipelines */
    rp_map_t _reserved;      /* new files of admitted events not applied yet (reservation_t) */
    rp_map_t _reserved_pipe; /* how many of those each pipeline has (reserved_pipe_t) */
    size_t _nreserved;
    json_t *failure_groups; /* object: pipeline_id + "\n" + normalised message -> group */
    double default_heartbeat_interval; /* seconds, for pipelines that never said */
} rp_hub_state_t;

void rp_hub_state_init(rp_hub_state_t *st);
void rp_hub_state_deinit(rp_hub_state_t *st);
/* Applies a normalised event (as rp_event_normalize built it). ts_ms is its time. Returns 0
 * or UV_ENOMEM. */
int rp_hub_state_apply(rp_hub_state_t *st, rp_event_type_t type, const json_t *ev, int64_t ts_ms);
rp_hub_pipeline_t *rp_hub_state_find(rp_hub_state_t *st, const char *id);

/* Bounds on files in flight: 0 admitted, else the bound an event would pass. */
enum {
    RP_HUB_LIMIT_NONE,
    RP_HUB_LIMIT_FILES_IN_FLIGHT,
    RP_HUB_LIMIT_FILES_TOTAL,
    RP_HUB_LIMIT_COUNT
};

/* May the event `ev` (validated, of `type`) go on, given at most max_pipeline files in flight
 * in its pipeline and max_total in all (0: no bound)? Only an event that would add a file not
 * in flight yet (file:processing, file:progress) can be refused; events for files in flight,
 * or already admitted, always pass. An admitted new file is reserved, so that the events
 * between admission and rp_hub_state_apply (the store commits them later) cannot pass the
 * bounds together; *reserved (may be NULL) says whether this call reserved one. Returns 0,
 * RP_HUB_LIMIT_FILES_IN_FLIGHT or RP_HUB_LIMIT_FILES_TOTAL with `why` saying which bound and
 * option (e.g. "pipeline docs-1 has 10000 files in flight (at most 10000:
 * --max-files-in-flight)"), or UV_ENOMEM. Applying events (a replay, other nodes' events)
 * never checks bounds. */
int rp_hub_state_admit(rp_hub_state_t *st, rp_event_type_t type, const json_t *ev,
                       size_t max_pipeline, size_t max_total, int *reserved, char *why,
                       size_t whylen);
/* Gives back the reservation rp_hub_state_admit made for the file of `ev` (an event refused
 * after all, as the rest of an all-or-nothing batch). */
void rp_hub_state_unreserve(rp_hub_state_t *st, const json_t *ev);
/* Forgets every reservation: for when no admitted event is still waiting to be applied (one
 * the store refused leaves its reservation behind until then). */
void rp_hub_state_unreserve_all(rp_hub_state_t *st);

const char *rp_hub_status_name(int status);

/* Snapshot of one pipeline with at most max_files of its files in flight, oldest first:
 * "counters.in_flight" has how many there are, and when some are left out "files_more" is
 * true and "files_next" is the id to page on from (rp_hub_pipeline_files_json). now_ms
 * stamps ages. Returns a new reference or NULL. */
json_t *rp_hub_pipeline_json(const rp_hub_pipeline_t *p, int64_t now_ms, size_t max_files);
/* Snapshot of every pipeline matching (id, type), either may be NULL, listing at most
 * max_files files in all: shared fairly, a pipeline with fewer files than its share leaves
 * the rest to the others, and each gets at least min_per_pipeline if it has them (so the
 * bound is max(max_files, pipelines x min_per_pipeline)). The files' JSON is also kept under
 * about max_bytes in all (max_bytes / pipelines each, at least one file each), whatever the
 * lengths of their ids and names. Returns a new reference or NULL. */
json_t *rp_hub_state_json(rp_hub_state_t *st, const char *id, const char *type, int64_t now_ms,
                          size_t max_files, size_t min_per_pipeline, size_t max_bytes);
/* One page of p's files in flight, oldest first: at most limit files after the file `after`
 * (NULL: from the oldest). Returns a new array, with *next the id to ask after for the next
 * page (NULL: this is the last; borrowed from the state until it changes), or NULL with
 * *gone 1 when `after` is not in flight (it finished since: start again), or 0 on
 * out-of-memory. O(limit): `after` is found in the pipeline's map. */
json_t *rp_hub_pipeline_files_json(const rp_hub_pipeline_t *p, const char *after, size_t limit,
                                   const char **next, int *gone);
/* Failure groups, optionally of one pipeline, most recent first. */
json_t *rp_hub_failures_json(rp_hub_state_t *st, const char *pipeline_id);

/* The whole state as JSON for a durable snapshot (internal form, not the API's), and back:
 * retention prunes old events, so a restart rebuilds from the last snapshot plus the events
 * after it. rp_hub_state_import expects an empty state; returns 0, RP_EINVAL (not an export of
 * this format) or UV_ENOMEM. */
json_t *rp_hub_state_export(const rp_hub_state_t *st);
int rp_hub_state_import(rp_hub_state_t *st, const json_t *j);

/* Masks numbers, hex ids, UUIDs, quoted strings and paths in msg so that messages that differ
 * only in those group together. Writes at most outlen - 1 bytes. */
void rp_hub_normalize_message(const char *msg, char *out, size_t outlen);

#endif
