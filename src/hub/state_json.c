/* SPDX-License-Identifier: MIT */
/* The pipeline state as JSON: files and pipelines for snapshots (within a byte and file
 * budget, shared fairly among pipelines), pages of files, failure groups, and the export and
 * import of the whole state for the store's snapshot. Reads the state; only the import
 * writes it, through state.c's own pipeline_get and file_get. */
#include "hub/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "hub/hub_int.h"
#include "util/alloc.h"
#include "util/err.h"

static json_t *file_json(const rp_hub_file_t *f)
{
    json_t *j = json_pack("{s:s,s:s}", "id", f->id, "name", f->name);
    if (j == NULL)
        return NULL;
    json_object_update(j, f->extra);
    json_object_set_new(j, "progress", json_real(f->progress));
    if (f->stage[0])
        json_object_set_new(j, "stage", json_string(f->stage));
    if (f->chunks)
        json_object_set_new(j, "chunks", json_integer(f->chunks));
    json_object_set_new(j, "attempt", json_integer(f->attempt));
    json_object_set_new(j, "started_at", rp_hub_state_ts_json(f->started_at));
    json_object_set_new(j, "stage_started_at", rp_hub_state_ts_json(f->stage_started_at));
    json_object_set_new(j, "last_progress_at", rp_hub_state_ts_json(f->last_progress_at));
    return j;
}

/* A file's JSON takes at most about this much: fixed members, and its strings escaped. */
static size_t file_json_bound(const rp_hub_file_t *f)
{
    const char *hash = json_string_value(json_object_get(f->extra, "hash"));
    const char *mime = json_string_value(json_object_get(f->extra, "mime_type"));
    return 320 + 2 * (strlen(f->id) + strlen(f->name) + strlen(f->stage) +
                      (hash ? strlen(hash) : 0) + (mime ? strlen(mime) : 0));
}

/* Up to limit files of p from `from` (a node of p->file_list) on, and no more than max_bytes
 * of JSON (at least one file, if limit allows); *next is the id of the last one listed when
 * more follow, else NULL. */
static json_t *files_page(const rp_hub_pipeline_t *p, const rp_list_node_t *from, size_t limit,
                          size_t max_bytes, const char **next)
{
    json_t *files = json_array();
    *next = NULL;
    if (files == NULL)
        return NULL;
    const rp_hub_file_t *last = NULL;
    const rp_list_node_t *it = from;
    size_t bytes = 0;
    for (size_t n = 0; it != &p->file_list && n < limit; it = it->next, n++) {
        const rp_hub_file_t *f = rp_container_of(it, rp_hub_file_t, node);
        bytes += file_json_bound(f);
        if (n > 0 && bytes > max_bytes)
            break;
        last = f;
        if (json_array_append_new(files, file_json(last)) < 0) {
            json_decref(files);
            return NULL;
        }
    }
    if (it != &p->file_list && last)
        *next = last->id;
    return files;
}

json_t *rp_hub_pipeline_files_json(const rp_hub_pipeline_t *p, const char *after, size_t limit,
                                   const char **next, int *gone)
{
    *gone = 0;
    *next = NULL;
    const rp_list_node_t *from = p->file_list.next;
    if (after) {
        rp_map_entry_t *e = rp_map_get(&p->_files, after, strlen(after));
        if (e == NULL) {
            *gone = 1;
            return NULL;
        }
        from = rp_container_of(e, rp_hub_file_t, _entry)->node.next;
    }
    return files_page(p, from, limit, SIZE_MAX, next);
}

static json_t *pipeline_json(const rp_hub_pipeline_t *p, int64_t now_ms, size_t max_files,
                             size_t max_bytes)
{
    const char *next;
    json_t *files = files_page(p, p->file_list.next, max_files, max_bytes, &next);
    json_t *stages = json_copy(p->stages);
    json_t *completed = json_array(), *failed = json_array(), *chunks = json_array();
    int64_t now_slot = now_ms / RP_HUB_BUCKET_MS;
    for (int64_t s = now_slot - RP_HUB_BUCKETS + 1; s <= now_slot; s++) {
        const rp_hub_bucket_t *b =
            &p->buckets[((s % RP_HUB_BUCKETS) + RP_HUB_BUCKETS) % RP_HUB_BUCKETS];
        int live = b->slot == s;
        json_array_append_new(completed, json_integer(live ? b->completed : 0));
        json_array_append_new(failed, json_integer(live ? b->failed : 0));
        json_array_append_new(chunks, json_integer(live ? (json_int_t)b->chunks : 0));
    }
    json_t *j = json_pack(
        "{s:s,s:s,s:s,s:f,s:o,s:I,s:o,s:{s:I,s:I,s:I,s:I},s:o,s:o,s:o,s:{s:i,s:o,s:o,s:o},s:O,s:O}",
        "id", p->id, "type", p->type, "status", rp_hub_status_name(p->status), "heartbeat_interval",
        p->heartbeat_interval, "last_heartbeat",
        p->last_heartbeat ? rp_hub_state_ts_json(p->last_heartbeat) : json_null(), "last_event_id",
        (json_int_t)p->last_event_id, "last_event_at",
        p->last_event_at ? rp_hub_state_ts_json(p->last_event_at) : json_null(), "counters",
        "processed", (json_int_t)p->processed, "failed", (json_int_t)p->failed, "in_flight",
        (json_int_t)p->nfiles, "chunks", (json_int_t)p->chunks, "files_total",
        p->files_total >= 0 ? json_integer(p->files_total) : json_null(), "files_pending",
        p->files_pending >= 0 ? json_integer(p->files_pending) : json_null(), "stages", stages,
        "activity", "bucket_seconds", RP_HUB_BUCKET_MS / 1000, "completed", completed, "failed",
        failed, "chunks", chunks, "recent_completed", p->recent_completed, "recent_failed",
        p->recent_failed);
    if (j == NULL || files == NULL) {
        json_decref(j);
        json_decref(files);
        return NULL;
    }
    json_object_set_new(j, "heartbeat_age_ms",
                        p->last_heartbeat ? json_integer(now_ms - p->last_heartbeat) : json_null());
    if (p->message)
        json_object_set_new(j, "message", json_string(p->message));
    json_object_set_new(j, "files", files);
    json_object_set_new(j, "files_more", json_boolean(next != NULL));
    if (next)
        json_object_set_new(j, "files_next", json_string(next));
    return j;
}

json_t *rp_hub_pipeline_json(const rp_hub_pipeline_t *p, int64_t now_ms, size_t max_files)
{
    return pipeline_json(p, now_ms, max_files, SIZE_MAX);
}

static int matches(const rp_hub_pipeline_t *p, const char *id, const char *type)
{
    return !(id && strcmp(id, p->id) != 0) && !(type && strcmp(type, p->type) != 0);
}

/* The share of max_files each matching pipeline may list: the level L where the pipelines'
 * min(files, L) add up to max_files (water filling), at least min_per. A few passes over the
 * pipelines, none over files. */
static size_t fair_share(rp_hub_state_t *st, const char *id, const char *type, size_t max_files,
                         size_t min_per)
{
    size_t k = 0;
    rp_list_node_t *it;
    rp_list_foreach(it, &st->pipeline_list) k +=
        matches(rp_container_of(it, rp_hub_pipeline_t, node), id, type);
    if (k == 0)
        return min_per;
    size_t level = max_files / k;
    for (int pass = 0; pass < 64; pass++) {
        size_t used = 0, over = 0;
        rp_list_foreach(it, &st->pipeline_list)
        {
            const rp_hub_pipeline_t *p = rp_container_of(it, rp_hub_pipeline_t, node);
            if (!matches(p, id, type))
                continue;
            used += p->nfiles < level ? p->nfiles : level;
            over += p->nfiles > level;
        }
        if (over == 0 || used >= max_files || (max_files - used) / over == 0)
            break;
        level += (max_files - used) / over;
    }
    return level > min_per ? level : min_per;
}

json_t *rp_hub_state_json(rp_hub_state_t *st, const char *id, const char *type, int64_t now_ms,
                          size_t max_files, size_t min_per_pipeline, size_t max_bytes)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    size_t share = fair_share(st, id, type, max_files, min_per_pipeline);
    size_t k = 0;
    rp_list_node_t *it;
    rp_list_foreach(it, &st->pipeline_list) k +=
        matches(rp_container_of(it, rp_hub_pipeline_t, node), id, type);
    size_t share_bytes = k ? max_bytes / k : max_bytes;
    rp_list_foreach(it, &st->pipeline_list)
    {
        const rp_hub_pipeline_t *p = rp_container_of(it, rp_hub_pipeline_t, node);
        if (!matches(p, id, type))
            continue;
        json_t *pj = pipeline_json(p, now_ms, share, share_bytes);
        if (pj == NULL || json_array_append_new(arr, pj) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static int by_last_seen_desc(const void *a, const void *b)
{
    const char *la = json_string_value(json_object_get(*(json_t *const *)a, "last_seen"));
    const char *lb = json_string_value(json_object_get(*(json_t *const *)b, "last_seen"));
    return strcmp(lb ? lb : "", la ? la : "");
}

json_t *rp_hub_failures_json(rp_hub_state_t *st, const char *pipeline_id)
{
    size_t n = json_object_size(st->failure_groups);
    json_t **groups = rp_calloc(n ? n : 1, sizeof(*groups));
    json_t *arr = json_array();
    if (groups == NULL || arr == NULL) {
        rp_free(groups);
        json_decref(arr);
        return NULL;
    }
    size_t k = 0;
    const char *key;
    json_t *g;
    json_object_foreach(st->failure_groups, key, g)
    {
        const char *pid = json_string_value(json_object_get(g, "pipeline_id"));
        if (pipeline_id == NULL || (pid && strcmp(pid, pipeline_id) == 0))
            groups[k++] = g;
    }
    qsort(groups, k, sizeof(*groups), by_last_seen_desc);
    for (size_t i = 0; i < k; i++)
        json_array_append(arr, groups[i]);
    rp_free(groups);
    return arr;
}

json_t *rp_hub_state_export(const rp_hub_state_t *st)
{
    json_t *pipes = json_array();
    rp_list_node_t *it;
    rp_list_foreach(it, &st->pipeline_list)
    {
        const rp_hub_pipeline_t *p = rp_container_of(it, rp_hub_pipeline_t, node);
        json_t *files = json_array(), *buckets = json_array();
        rp_list_node_t *fi;
        rp_list_foreach(fi, &p->file_list)
        {
            const rp_hub_file_t *f = rp_container_of(fi, rp_hub_file_t, node);
            json_array_append_new(
                files, json_pack("{s:s,s:s,s:O,s:f,s:s,s:I,s:i,s:I,s:I,s:I}", "id", f->id, "name",
                                 f->name, "extra", f->extra, "progress", f->progress, "stage",
                                 f->stage, "chunks", (json_int_t)f->chunks, "attempt", f->attempt,
                                 "started_at", (json_int_t)f->started_at, "stage_started_at",
                                 (json_int_t)f->stage_started_at, "last_progress_at",
                                 (json_int_t)f->last_progress_at));
        }
        for (int i = 0; i < RP_HUB_BUCKETS; i++) {
            const rp_hub_bucket_t *b = &p->buckets[i];
            json_array_append_new(buckets,
                                  json_pack("[I,i,i,I]", (json_int_t)b->slot, (int)b->completed,
                                            (int)b->failed, (json_int_t)b->chunks));
        }
        json_array_append_new(
            pipes,
            json_pack("{s:s,s:s,s:i,s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s?,s:o,s:o,s:O,s:O}",
                      "id", p->id, "type", p->type, "status", p->status, "heartbeat_interval",
                      p->heartbeat_interval, "last_heartbeat", (json_int_t)p->last_heartbeat,
                      "last_event_at", (json_int_t)p->last_event_at, "last_event_id",
                      (json_int_t)p->last_event_id, "processed", (json_int_t)p->processed, "failed",
                      (json_int_t)p->failed, "chunks", (json_int_t)p->chunks, "files_total",
                      (json_int_t)p->files_total, "files_pending", (json_int_t)p->files_pending,
                      "message", p->message, "files", files, "buckets", buckets, "recent_completed",
                      p->recent_completed, "recent_failed", p->recent_failed));
    }
    return json_pack("{s:i,s:o,s:O}", "format", 1, "pipelines", pipes, "failure_groups",
                     st->failure_groups);
}

static int by_last_progress(const void *a, const void *b)
{
    int64_t x = (*(rp_hub_file_t *const *)a)->last_progress_at;
    int64_t y = (*(rp_hub_file_t *const *)b)->last_progress_at;
    return (x > y) - (x < y);
}

/* Puts p's progress list back in order of last progress (an import sets the times after the
 * files are listed). Returns 0 or UV_ENOMEM. */
static int progress_sort(rp_hub_pipeline_t *p)
{
    if (p->nfiles < 2)
        return 0;
    rp_hub_file_t **v = rp_calloc(p->nfiles, sizeof(*v));
    if (v == NULL)
        return UV_ENOMEM;
    size_t n = 0;
    rp_list_node_t *it;
    rp_list_foreach(it, &p->file_list) v[n++] = rp_container_of(it, rp_hub_file_t, node);
    qsort(v, n, sizeof(*v), by_last_progress);
    rp_list_init(&p->progress_list);
    for (size_t i = 0; i < n; i++)
        rp_list_push(&p->progress_list, &v[i]->progress_node);
    rp_free(v);
    return 0;
}

static int64_t jint(const json_t *o, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(o, k));
}

int rp_hub_state_import(rp_hub_state_t *st, const json_t *j)
{
    if (json_integer_value(json_object_get(j, "format")) != 1)
        return RP_EINVAL;
    size_t i;
    json_t *pj;
    json_array_foreach(json_object_get(j, "pipelines"), i, pj)
    {
        const char *id = json_string_value(json_object_get(pj, "id"));
        const char *type = json_string_value(json_object_get(pj, "type"));
        if (id == NULL || type == NULL)
            return RP_EINVAL;
        rp_hub_pipeline_t *p = rp_hub_state_pipeline_get(st, id, type);
        if (p == NULL)
            return UV_ENOMEM;
        p->status = (int)jint(pj, "status");
        p->heartbeat_interval = json_number_value(json_object_get(pj, "heartbeat_interval"));
        p->last_heartbeat = jint(pj, "last_heartbeat");
        p->last_event_at = jint(pj, "last_event_at");
        p->last_event_id = jint(pj, "last_event_id");
        p->processed = (uint64_t)jint(pj, "processed");
        p->failed = (uint64_t)jint(pj, "failed");
        p->chunks = (uint64_t)jint(pj, "chunks");
        p->files_total = jint(pj, "files_total");
        p->files_pending = jint(pj, "files_pending");
        const char *msg = json_string_value(json_object_get(pj, "message"));
        if (msg)
            p->message = rp_strndup(msg, strlen(msg));
        size_t k;
        json_t *fj;
        json_array_foreach(json_object_get(pj, "files"), k, fj)
        {
            rp_hub_file_t *f = rp_hub_state_file_get(st, p, fj, jint(fj, "started_at"));
            if (f == NULL)
                return UV_ENOMEM;
            json_object_update(f->extra, json_object_get(fj, "extra"));
            f->progress = json_number_value(json_object_get(fj, "progress"));
            const char *stage = json_string_value(json_object_get(fj, "stage"));
            rp_hub_state_stage_count(p, f, -1);
            snprintf(f->stage, sizeof(f->stage), "%s", stage ? stage : "");
            rp_hub_state_stage_count(p, f, +1);
            f->chunks = jint(fj, "chunks");
            f->attempt = (int)jint(fj, "attempt");
            f->stage_started_at = jint(fj, "stage_started_at");
            f->last_progress_at = jint(fj, "last_progress_at");
        }
        if (progress_sort(p) < 0)
            return UV_ENOMEM;
        json_t *bj;
        json_array_foreach(json_object_get(pj, "buckets"), k, bj)
        {
            if (k >= RP_HUB_BUCKETS)
                break;
            p->buckets[k].slot = (int64_t)json_integer_value(json_array_get(bj, 0));
            p->buckets[k].completed = (uint32_t)json_integer_value(json_array_get(bj, 1));
            p->buckets[k].failed = (uint32_t)json_integer_value(json_array_get(bj, 2));
            p->buckets[k].chunks = (uint64_t)json_integer_value(json_array_get(bj, 3));
        }
        json_array_extend(p->recent_completed, json_object_get(pj, "recent_completed"));
        json_array_extend(p->recent_failed, json_object_get(pj, "recent_failed"));
    }
    json_t *groups = json_object_get(j, "failure_groups");
    if (json_is_object(groups))
        json_object_update(st->failure_groups, groups);
    return 0;
}
