/* SPDX-License-Identifier: MIT */
/* Pipeline state. Every change comes from rp_hub_state_apply with a normalised event, so the
 * state is a pure function of the event log: the hub can rebuild it by replaying. Nothing
 * here walks every file in flight: counts (per pipeline, in all, per stage) are kept as files
 * come and go, snapshots list a budget of files, pages start from a file found in a map, and
 * stall checks read the progress list from its stale end. The reservations of
 * rp_hub_state_admit are the only part that is not a function of the log: they stand for
 * events admitted and not applied yet. The JSON views, export and import are in
 * state_json.c. */
#include "hub/state.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "hub/hub_int.h"
#include "util/alloc.h"

static const char *const status_names[] = {"online", "offline", "running", "idle", "error"};

const char *rp_hub_status_name(int status)
{
    return status >= 0 && status <= RP_PIPE_ERROR ? status_names[status] : "unknown";
}

static int status_parse(const char *s)
{
    for (int i = 0; i <= RP_PIPE_ERROR; i++)
        if (strcmp(s, status_names[i]) == 0)
            return i;
    return RP_PIPE_ONLINE;
}

void rp_hub_state_init(rp_hub_state_t *st)
{
    rp_map_init(&st->_pipelines);
    rp_list_init(&st->pipeline_list);
    st->npipelines = 0;
    st->nfiles = 0;
    rp_map_init(&st->_reserved);
    rp_map_init(&st->_reserved_pipe);
    st->_nreserved = 0;
    st->failure_groups = json_object();
    st->default_heartbeat_interval = 30;
}

static void file_free(rp_hub_file_t *f)
{
    rp_free(f->id);
    rp_free(f->name);
    json_decref(f->extra);
    rp_free(f);
}

/* Moves one file of p into (+1) or out of (-1) the count of stage (a name, "" for queued).
 * Past RP_HUB_MAX_STAGES names, new ones count as "other": a producer inventing a stage per
 * file cannot make every snapshot carry a million names. */
void rp_hub_state_stage_count(rp_hub_pipeline_t *p, rp_hub_file_t *f, int delta)
{
    const char *name = f->stage[0] ? f->stage : "queued";
    if (delta > 0)
        f->_stage_other = json_object_get(p->stages, name) == NULL &&
                          json_object_size(p->stages) >= RP_HUB_MAX_STAGES;
    if (f->_stage_other)
        name = "other";
    json_int_t n = json_integer_value(json_object_get(p->stages, name)) + delta;
    if (n > 0)
        json_object_set_new(p->stages, name, json_integer(n));
    else
        json_object_del(p->stages, name);
}

static void file_remove(rp_hub_state_t *st, rp_hub_pipeline_t *p, rp_hub_file_t *f)
{
    rp_hub_state_stage_count(p, f, -1);
    rp_map_del(&p->_files, &f->_entry);
    rp_list_unlink(&f->node);
    rp_list_unlink(&f->progress_node);
    p->nfiles--;
    st->nfiles--;
    file_free(f);
}

/* A reservation: "pipeline id \n file id" of a file an admitted event will add. */
typedef struct reservation {
    rp_map_entry_t entry;
    size_t pid_len;
    char key[];
} reservation_t;

typedef struct reserved_pipe {
    rp_map_entry_t entry;
    size_t n;
    char id[];
} reserved_pipe_t;

static size_t reserved_in(const rp_hub_state_t *st, const char *pid)
{
    rp_map_entry_t *e = rp_map_get(&st->_reserved_pipe, pid, strlen(pid));
    return e ? rp_container_of(e, reserved_pipe_t, entry)->n : 0;
}

static void reservation_drop(rp_hub_state_t *st, reservation_t *r)
{
    rp_map_entry_t *e = rp_map_get(&st->_reserved_pipe, r->key, r->pid_len);
    reserved_pipe_t *rp = e ? rp_container_of(e, reserved_pipe_t, entry) : NULL;
    if (rp && --rp->n == 0) {
        rp_map_del(&st->_reserved_pipe, &rp->entry);
        rp_free(rp);
    }
    rp_map_del(&st->_reserved, &r->entry);
    rp_free(r);
    st->_nreserved--;
}

static reservation_t *reservation_find(const rp_hub_state_t *st, const char *pid, const char *fid)
{
    char key[800];
    int n = snprintf(key, sizeof(key), "%s\n%s", pid, fid);
    if (n < 0 || (size_t)n >= sizeof(key))
        return NULL;
    rp_map_entry_t *e = rp_map_get(&st->_reserved, key, (size_t)n);
    return e ? rp_container_of(e, reservation_t, entry) : NULL;
}

/* Reserves a place for file fid of pipeline pid. Returns 0 or UV_ENOMEM. */
static int reservation_add(rp_hub_state_t *st, const char *pid, const char *fid)
{
    size_t pl = strlen(pid), fl = strlen(fid);
    reservation_t *r = rp_calloc(1, sizeof(*r) + pl + 1 + fl + 1);
    rp_map_entry_t *e = rp_map_get(&st->_reserved_pipe, pid, pl);
    reserved_pipe_t *rp =
        e ? rp_container_of(e, reserved_pipe_t, entry) : rp_calloc(1, sizeof(*rp) + pl + 1);
    if (r == NULL || rp == NULL) {
        rp_free(r);
        if (e == NULL)
            rp_free(rp);
        return UV_ENOMEM;
    }
    if (e == NULL) {
        memcpy(rp->id, pid, pl + 1);
        rp->entry.key = rp->id;
        rp->entry.keylen = pl;
        if (rp_map_put(&st->_reserved_pipe, &rp->entry) < 0) {
            rp_free(r);
            rp_free(rp);
            return UV_ENOMEM;
        }
    }
    memcpy(r->key, pid, pl);
    r->key[pl] = '\n';
    memcpy(r->key + pl + 1, fid, fl + 1);
    r->pid_len = pl;
    r->entry.key = r->key;
    r->entry.keylen = pl + 1 + fl;
    if (rp_map_put(&st->_reserved, &r->entry) < 0) {
        if (rp->n == 0) {
            rp_map_del(&st->_reserved_pipe, &rp->entry);
            rp_free(rp);
        }
        rp_free(r);
        return UV_ENOMEM;
    }
    rp->n++;
    st->_nreserved++;
    return 0;
}

void rp_hub_state_unreserve_all(rp_hub_state_t *st)
{
    if (st->_nreserved == 0)
        return; /* the common case, from every watchdog check: no walk of an empty map */
    size_t b;
    rp_map_entry_t *e;
    while ((e = rp_map_first(&st->_reserved, &b)) != NULL)
        reservation_drop(st, rp_container_of(e, reservation_t, entry));
}

void rp_hub_state_deinit(rp_hub_state_t *st)
{
    while (!rp_list_empty(&st->pipeline_list)) {
        rp_hub_pipeline_t *p = rp_container_of(st->pipeline_list.next, rp_hub_pipeline_t, node);
        rp_list_unlink(&p->node);
        while (!rp_list_empty(&p->file_list))
            file_remove(st, p, rp_container_of(p->file_list.next, rp_hub_file_t, node));
        rp_map_deinit(&p->_files);
        json_decref(p->stages);
        json_decref(p->recent_completed);
        json_decref(p->recent_failed);
        rp_free(p->message);
        rp_free(p);
    }
    rp_map_deinit(&st->_pipelines);
    rp_hub_state_unreserve_all(st);
    rp_map_deinit(&st->_reserved);
    rp_map_deinit(&st->_reserved_pipe);
    json_decref(st->failure_groups);
}

rp_hub_pipeline_t *rp_hub_state_find(rp_hub_state_t *st, const char *id)
{
    rp_map_entry_t *e = rp_map_get(&st->_pipelines, id, strlen(id));
    return e ? rp_container_of(e, rp_hub_pipeline_t, _entry) : NULL;
}

rp_hub_pipeline_t *rp_hub_state_pipeline_get(rp_hub_state_t *st, const char *id, const char *type)
{
    rp_hub_pipeline_t *p = rp_hub_state_find(st, id);
    if (p) {
        snprintf(p->type, sizeof(p->type), "%s", type);
        return p;
    }
    p = rp_calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    snprintf(p->id, sizeof(p->id), "%s", id);
    snprintf(p->type, sizeof(p->type), "%s", type);
    p->status = RP_PIPE_OFFLINE;
    p->heartbeat_interval = st->default_heartbeat_interval;
    p->files_total = p->files_pending = -1;
    rp_map_init(&p->_files);
    rp_list_init(&p->file_list);
    rp_list_init(&p->progress_list);
    p->stages = json_object();
    p->recent_completed = json_array();
    p->recent_failed = json_array();
    p->_entry.key = p->id;
    p->_entry.keylen = strlen(p->id);
    if (p->stages == NULL || p->recent_completed == NULL || p->recent_failed == NULL ||
        (rp_map_put(&st->_pipelines, &p->_entry) < 0 && rp_hub_state_find(st, id) != p)) {
        json_decref(p->stages);
        json_decref(p->recent_completed);
        json_decref(p->recent_failed);
        rp_free(p);
        return NULL;
    }
    rp_list_push(&st->pipeline_list, &p->node);
    st->npipelines++;
    return p;
}

static rp_hub_file_t *file_find(rp_hub_pipeline_t *p, const char *id)
{
    rp_map_entry_t *e = rp_map_get(&p->_files, id, strlen(id));
    return e ? rp_container_of(e, rp_hub_file_t, _entry) : NULL;
}

/* The file jf names in p, added (and its reservation, if any, settled) if new. */
rp_hub_file_t *rp_hub_state_file_get(rp_hub_state_t *st, rp_hub_pipeline_t *p, const json_t *jf,
                                     int64_t ts)
{
    const char *id = json_string_value(json_object_get(jf, "id"));
    rp_hub_file_t *f = file_find(p, id);
    if (f)
        return f;
    f = rp_calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->id = rp_strndup(id, strlen(id));
    const char *name = json_string_value(json_object_get(jf, "name"));
    f->name = rp_strndup(name, strlen(name));
    f->extra = json_object();
    if (f->id == NULL || f->name == NULL || f->extra == NULL) {
        file_free(f);
        return NULL;
    }
    f->attempt = 1;
    f->started_at = f->stage_started_at = f->last_progress_at = ts;
    f->_entry.key = f->id;
    f->_entry.keylen = strlen(f->id);
    if (rp_map_put(&p->_files, &f->_entry) < 0 && file_find(p, id) != f) {
        file_free(f);
        return NULL;
    }
    rp_list_push(&p->file_list, &f->node);
    rp_list_push(&p->progress_list, &f->progress_node);
    p->nfiles++;
    st->nfiles++;
    rp_hub_state_stage_count(p, f, +1);
    reservation_t *r = reservation_find(st, p->id, id);
    if (r)
        reservation_drop(st, r);
    return f;
}

/* f made progress at ts: it goes to the fresh end of the progress list. */
static void file_touch(rp_hub_pipeline_t *p, rp_hub_file_t *f, int64_t ts)
{
    f->last_progress_at = ts;
    rp_list_unlink(&f->progress_node);
    rp_list_push(&p->progress_list, &f->progress_node);
}

int rp_hub_state_admit(rp_hub_state_t *st, rp_event_type_t type, const json_t *ev,
                       size_t max_pipeline, size_t max_total, int *reserved, char *why,
                       size_t whylen)
{
    if (reserved)
        *reserved = 0;
    if (type != RP_EV_FILE_PROCESSING && type != RP_EV_FILE_PROGRESS)
        return 0;
    const char *pid = json_string_value(json_object_get(ev, "pipeline_id"));
    const char *fid = json_string_value(json_object_get(json_object_get(ev, "file"), "id"));
    if (pid == NULL || fid == NULL)
        return 0;
    rp_hub_pipeline_t *p = rp_hub_state_find(st, pid);
    if ((p && file_find(p, fid)) || reservation_find(st, pid, fid))
        return 0;
    size_t in_pipe = (p ? p->nfiles : 0) + reserved_in(st, pid);
    if (max_pipeline && in_pipe >= max_pipeline) {
        snprintf(why, whylen,
                 "pipeline %.60s has %zu files in flight (at most %zu: --max-files-in-flight)", pid,
                 in_pipe, max_pipeline);
        return RP_HUB_LIMIT_FILES_IN_FLIGHT;
    }
    size_t in_all = st->nfiles + st->_nreserved;
    if (max_total && in_all >= max_total) {
        snprintf(why, whylen,
                 "%zu files are in flight in all pipelines (at most %zu: --max-files-total)",
                 in_all, max_total);
        return RP_HUB_LIMIT_FILES_TOTAL;
    }
    int rc = reservation_add(st, pid, fid);
    if (rc == 0 && reserved)
        *reserved = 1;
    return rc;
}

void rp_hub_state_unreserve(rp_hub_state_t *st, const json_t *ev)
{
    const char *pid = json_string_value(json_object_get(ev, "pipeline_id"));
    const char *fid = json_string_value(json_object_get(json_object_get(ev, "file"), "id"));
    reservation_t *r = pid && fid ? reservation_find(st, pid, fid) : NULL;
    if (r)
        reservation_drop(st, r);
}

/* Takes what a file event says about the file. */
static void file_update(rp_hub_pipeline_t *p, rp_hub_file_t *f, const json_t *jf, int64_t ts)
{
    json_t *v;
    if ((v = json_object_get(jf, "name")) && strcmp(json_string_value(v), f->name) != 0) {
        char *n = rp_strndup(json_string_value(v), json_string_length(v));
        if (n) {
            rp_free(f->name);
            f->name = n;
        }
    }
    static const char *const extra[] = {"size", "mime_type", "hash", NULL};
    for (const char *const *k = extra; *k; k++)
        if ((v = json_object_get(jf, *k)))
            json_object_set(f->extra, *k, v);
    if ((v = json_object_get(jf, "progress"))) {
        f->progress = json_number_value(v);
        file_touch(p, f, ts);
    }
    if ((v = json_object_get(jf, "stage")) && strcmp(json_string_value(v), f->stage) != 0) {
        rp_hub_state_stage_count(p, f, -1);
        snprintf(f->stage, sizeof(f->stage), "%s", json_string_value(v));
        rp_hub_state_stage_count(p, f, +1);
        f->stage_started_at = ts;
        file_touch(p, f, ts);
    }
    if ((v = json_object_get(jf, "chunks")))
        f->chunks = json_integer_value(v);
    if ((v = json_object_get(jf, "attempt")))
        f->attempt = (int)json_integer_value(v);
}

static rp_hub_bucket_t *bucket(rp_hub_pipeline_t *p, int64_t ts)
{
    int64_t slot = ts / RP_HUB_BUCKET_MS;
    rp_hub_bucket_t *b = &p->buckets[slot % RP_HUB_BUCKETS];
    if (b->slot != slot) {
        memset(b, 0, sizeof(*b));
        b->slot = slot;
    }
    return b;
}

static void push_recent(json_t *arr, json_t *item)
{
    if (item == NULL)
        return;
    json_array_append_new(arr, item);
    while (json_array_size(arr) > RP_HUB_RECENT)
        json_array_remove(arr, 0);
}

/* Takes file `id` out of a recent list: a deleted file is no longer there to show. */
static void drop_recent(json_t *arr, const char *id)
{
    for (size_t i = json_array_size(arr); id && i-- > 0;) {
        const char *fid = json_string_value(json_object_get(json_array_get(arr, i), "file_id"));
        if (fid && strcmp(fid, id) == 0)
            json_array_remove(arr, i);
    }
}

json_t *rp_hub_state_ts_json(int64_t ms)
{
    char ts[32];
    rp_event_format_ts(ms, ts);
    return json_string(ts);
}

/* Appends lit to out if it fits. */
static size_t put(char *out, size_t o, size_t outlen, const char *lit)
{
    size_t l = strlen(lit);
    if (o + l < outlen) {
        memcpy(out + o, lit, l);
        o += l;
    }
    return o;
}

static int is_hexrun(const char *p, const char *end)
{
    /* 8+ hex digits with at least one digit (hashes, object ids) or a UUID-shaped run. */
    size_t n = 0, digits = 0;
    for (const char *q = p; q < end && (isxdigit((unsigned char)*q) || *q == '-'); q++, n++)
        digits += isdigit((unsigned char)*q) != 0;
    return n >= 8 && digits > 0 && (p + n == end || !isalnum((unsigned char)p[n]));
}

void rp_hub_normalize_message(const char *msg, char *out, size_t outlen)
{
    size_t o = 0;
    const char *p = msg;
    while (*p && o + 8 < outlen) {
        if (isspace((unsigned char)*p)) {
            out[o++] = *p++;
            continue;
        }
        /* A token: a run of non-space characters, minus trailing punctuation. */
        const char *end = p;
        while (*end && !isspace((unsigned char)*end))
            end++;
        const char *tend = end;
        while (tend > p && strchr(":,;.)]'\"", tend[-1]))
            tend--;
        int pathy = 0;
        for (const char *q = p; q < tend && !pathy; q++)
            pathy = *q == '/' || *q == '\\';
        if (pathy) {
            /* Paths (absolute or relative, / or \\): one placeholder for the whole token. */
            const char *q = p;
            while (q < tend && (*q == '(' || *q == '[' || *q == '"' || *q == '\''))
                out[o++] = *q++;
            o = put(out, o, outlen, "<path>");
            p = tend;
            continue;
        }
        while (p < end && o + 8 < outlen) {
            unsigned char c = (unsigned char)*p;
            if ((c == '"' || c == '\'') && strchr(p + 1, (char)c) &&
                strchr(p + 1, (char)c) - p < 200) {
                o = put(out, o, outlen, "<str>");
                p = strchr(p + 1, (char)c) + 1;
                end = p;
                while (*end && !isspace((unsigned char)*end))
                    end++;
                continue;
            }
            if (isxdigit(c) && (p == msg || !isalnum((unsigned char)p[-1])) && is_hexrun(p, end)) {
                o = put(out, o, outlen, "<id>");
                while (p < end && (isxdigit((unsigned char)*p) || *p == '-'))
                    p++;
                continue;
            }
            if (isdigit(c)) {
                /* Numbers anywhere, decimals included: "30s", "page 17", "scan-0458". */
                o = put(out, o, outlen, "<n>");
                while (p < end &&
                       (isdigit((unsigned char)*p) || (*p == '.' && isdigit((unsigned char)p[1]))))
                    p++;
                continue;
            }
            out[o++] = (char)c;
            p++;
        }
    }
    out[o] = '\0';
}

static void group_failure(rp_hub_state_t *st, rp_hub_pipeline_t *p, const json_t *ev,
                          const json_t *jf, int64_t ts)
{
    const json_t *err = json_object_get(jf, "error");
    const char *msg = json_string_value(json_object_get(err, "message"));
    if (msg == NULL)
        return;
    char norm[512];
    rp_hub_normalize_message(msg, norm, sizeof(norm));
    char key[700];
    snprintf(key, sizeof(key), "%s\n%s", p->id, norm);
    json_t *g = json_object_get(st->failure_groups, key);
    if (g == NULL) {
        g = json_pack("{s:s,s:s,s:s,s:I,s:o,s:o,s:O?,s:[]}", "pipeline_id", p->id, "cause", norm,
                      "sample", msg, "count", (json_int_t)0, "first_seen", rp_hub_state_ts_json(ts),
                      "last_seen", rp_hub_state_ts_json(ts), "kind", json_object_get(err, "kind"),
                      "files");
        if (g == NULL || json_object_set_new(st->failure_groups, key, g) < 0)
            return;
    }
    json_object_set_new(g, "count",
                        json_integer(json_integer_value(json_object_get(g, "count")) + 1));
    json_object_set_new(g, "last_seen", rp_hub_state_ts_json(ts));
    json_object_set_new(g, "sample", json_string(msg));
    json_t *files = json_object_get(g, "files");
    json_t *item = json_pack("{s:O,s:O,s:O,s:o}", "file_id", json_object_get(jf, "id"), "name",
                             json_object_get(jf, "name"), "event_id", json_object_get(ev, "id"),
                             "ts", rp_hub_state_ts_json(ts));
    push_recent(files, item);
}

int rp_hub_state_apply(rp_hub_state_t *st, rp_event_type_t type, const json_t *ev, int64_t ts)
{
    const char *pid = json_string_value(json_object_get(ev, "pipeline_id"));
    const char *ptype = json_string_value(json_object_get(ev, "pipeline_type"));
    rp_hub_pipeline_t *p = rp_hub_state_pipeline_get(st, pid, ptype);
    if (p == NULL)
        return UV_ENOMEM;
    json_t *v;
    p->last_event_at = ts;
    p->last_event_id = json_integer_value(json_object_get(ev, "id"));
    if ((v = json_object_get(ev, "heartbeat_interval")))
        p->heartbeat_interval = json_number_value(v);
    if ((v = json_object_get(ev, "files_total")))
        p->files_total = json_integer_value(v);
    if ((v = json_object_get(ev, "files_pending")))
        p->files_pending = json_integer_value(v);
    if ((v = json_object_get(ev, "message"))) {
        char *m = rp_strndup(json_string_value(v), json_string_length(v));
        if (m) {
            rp_free(p->message);
            p->message = m;
        }
    }
    const json_t *jf = json_object_get(ev, "file");
    rp_hub_file_t *f = NULL;
    switch (type) {
    case RP_EV_PIPELINE_ONLINE:
        p->status = RP_PIPE_ONLINE;
        p->last_heartbeat = ts;
        break;
    case RP_EV_PIPELINE_OFFLINE:
        p->status = RP_PIPE_OFFLINE;
        break;
    case RP_EV_HEARTBEAT:
        p->last_heartbeat = ts;
        if (p->status == RP_PIPE_OFFLINE)
            p->status = p->nfiles ? RP_PIPE_RUNNING : RP_PIPE_ONLINE;
        break;
    case RP_EV_STATUS_UPDATE:
        p->status = status_parse(json_string_value(json_object_get(ev, "status")));
        p->last_heartbeat = ts;
        break;
    case RP_EV_FILE_PROCESSING:
    case RP_EV_FILE_PROGRESS:
        f = rp_hub_state_file_get(st, p, jf, ts);
        if (f == NULL)
            return UV_ENOMEM;
        if (type == RP_EV_FILE_PROCESSING && f->started_at != ts) {
            /* Processing again: a new attempt of a file still in flight. */
            f->attempt++;
            f->started_at = f->stage_started_at = ts;
            f->progress = 0;
        }
        file_update(p, f, jf, ts);
        p->status = RP_PIPE_RUNNING;
        p->last_heartbeat = ts;
        break;
    case RP_EV_FILE_COMPLETED:
    case RP_EV_FILE_FAILED: {
        f = file_find(p, json_string_value(json_object_get(jf, "id")));
        int64_t started = f ? f->started_at : ts;
        int64_t chunks =
            (v = json_object_get(jf, "chunks")) ? json_integer_value(v) : (f ? f->chunks : 0);
        rp_hub_bucket_t *b = bucket(p, ts);
        json_t *item =
            json_pack("{s:O,s:O,s:O,s:o,s:I}", "file_id", json_object_get(jf, "id"), "name",
                      json_object_get(jf, "name"), "event_id", json_object_get(ev, "id"), "ts",
                      rp_hub_state_ts_json(ts), "duration_ms", (json_int_t)(ts - started));
        if (type == RP_EV_FILE_COMPLETED) {
            p->processed++;
            p->chunks += (uint64_t)chunks;
            b->completed++;
            b->chunks += (uint64_t)chunks;
            if (item)
                json_object_set_new(item, "chunks", json_integer(chunks));
            push_recent(p->recent_completed, item);
        } else {
            p->failed++;
            b->failed++;
            if (item) {
                json_object_set(item, "error", json_object_get(jf, "error"));
                json_object_set_new(item, "attempt", json_integer(f ? f->attempt : 1));
                if (f && f->stage[0])
                    json_object_set_new(item, "stage", json_string(f->stage));
            }
            push_recent(p->recent_failed, item);
            group_failure(st, p, ev, jf, ts);
        }
        if (f)
            file_remove(st, p, f);
        /* A stall (what the hub reports for a file without progress) is news of silence, not
         * a sign of life: it neither counts as a heartbeat nor brings an offline pipeline back. */
        const char *kind = json_string_value(json_object_get(json_object_get(jf, "error"), "kind"));
        if (type == RP_EV_FILE_FAILED && kind && strcmp(kind, "stalled") == 0) {
            if (p->status == RP_PIPE_RUNNING && p->nfiles == 0)
                p->status = RP_PIPE_IDLE;
            break;
        }
        p->last_heartbeat = ts;
        if (p->status == RP_PIPE_RUNNING && p->nfiles == 0)
            p->status = RP_PIPE_IDLE;
        else if (p->status == RP_PIPE_OFFLINE)
            p->status = p->nfiles ? RP_PIPE_RUNNING : RP_PIPE_IDLE;
        break;
    }
    case RP_EV_FILE_DELETED: {
        /* Gone from the source: no longer in flight nor among the recent files. The counts
         * and failure groups keep what happened. */
        const char *fid = json_string_value(json_object_get(jf, "id"));
        f = file_find(p, fid);
        if (f)
            file_remove(st, p, f);
        drop_recent(p->recent_completed, fid);
        drop_recent(p->recent_failed, fid);
        p->last_heartbeat = ts;
        if (p->status == RP_PIPE_RUNNING && p->nfiles == 0)
            p->status = RP_PIPE_IDLE;
        break;
    }
    default:
        break;
    }
    return 0;
}
