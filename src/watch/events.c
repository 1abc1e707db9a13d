/* SPDX-License-Identifier: MIT */
/* The pipeline events the watcher emits through its sink: file:processing, progress,
 * completed, failed, deleted, and the pipeline's heartbeat/online/offline. Nothing is
 * emitted once the watcher is stopping (w->sink is NULL then); a job emits file:completed or
 * file:failed at most once (j->ended). */
#include "watch/watch_int.h"

/* ---- events ---- */

static json_t *ev_new(rp_watch_t *w, const char *type)
{
    return json_pack("{s:s,s:s,s:s}", "type", type, "pipeline_id", w->cfg.pipeline_id,
                     "pipeline_type", w->cfg.pipeline_type);
}

static void emit(rp_watch_t *w, json_t *ev)
{
    if (ev == NULL) {
        RP_LOG_ERROR("watch", "out of memory building an event");
        return;
    }
    if (w->sink == NULL) {
        json_decref(ev);
        return;
    }
    w->sink->ops->emit(w->sink, ev);
}

/* The file object of rel's events (rel: the path relative to the root), its identity only:
 * id (rel, or a hash of it past 256 bytes) and name (rel, cut at 1024 bytes). */
static json_t *file_ident(const char *rel)
{
    json_t *f = json_object();
    if (f == NULL)
        return NULL;
    size_t rl = strlen(rel);
    if (rl <= 256) {
        json_object_set_new(f, "id", json_stringn(rel, rl));
    } else {
        unsigned char md[32];
        unsigned int mdl = 0;
        char id[80];
        EVP_Digest(rel, rl, md, &mdl, EVP_sha256(), NULL);
        int n = snprintf(id, sizeof(id), "path-sha256:");
        for (unsigned i = 0; i < 32; i++)
            n += snprintf(id + n, sizeof(id) - (size_t)n, "%02x", md[i]);
        json_object_set_new(f, "id", json_string(id));
    }
    size_t nl = rl;
    if (nl > 1024) {
        nl = 1024;
        while (nl > 0 && ((unsigned char)rel[nl] & 0xC0) == 0x80)
            nl--;
    }
    json_object_set_new(f, "name", json_stringn(rel, nl));
    return f;
}

/* The file object of j's events: its identity and what is known so far. */
static json_t *file_obj(job_t *j)
{
    json_t *f = file_ident(j->rel);
    if (f == NULL)
        return NULL;
    json_object_set_new(f, "size", json_integer(j->size));
    json_object_set_new(f, "mime_type",
                        json_string(j->w->cfg.exec_cmd && j->fkind == RP_WATCH_UNSUPPORTED
                                        ? "application/octet-stream"
                                        : rp_watch_kind_mime(j->fkind)));
    if (j->doc.hash[0])
        json_object_set_new(f, "hash", json_string(j->doc.hash));
    return f;
}

static json_t *file_ev(job_t *j, const char *type)
{
    json_t *ev = ev_new(j->w, type);
    json_t *f = file_obj(j);
    if (ev == NULL || f == NULL) {
        json_decref(ev);
        json_decref(f);
        return NULL;
    }
    json_object_set_new(ev, "file", f);
    return ev;
}

void rp_watch_emit_processing(job_t *j)
{
    j->reported = 1;
    emit(j->w, file_ev(j, "file:processing"));
}

void rp_watch_emit_progress(job_t *j, double p, const char *stage)
{
    json_t *ev = file_ev(j, "file:progress");
    if (ev) {
        json_t *f = json_object_get(ev, "file");
        json_object_set_new(f, "progress", json_real(p));
        if (stage && *stage)
            json_object_set_new(f, "stage", json_string(stage));
    }
    emit(j->w, ev);
}

void rp_watch_emit_completed(job_t *j)
{
    json_t *ev = file_ev(j, "file:completed");
    if (ev) {
        json_t *f = json_object_get(ev, "file");
        json_object_set_new(f, "progress", json_real(1.0));
        json_object_set_new(f, "chunks", json_integer(j->nchunks));
    }
    j->ended = 1;
    j->w->stats.ingested++;
    j->w->stats.bytes += (uint64_t)j->size;
    j->w->stats.chunks += (uint64_t)j->nchunks;
    emit(j->w, ev);
}

void rp_watch_emit_failed(job_t *j, int retryable)
{
    if (!j->reported)
        rp_watch_emit_processing(j);
    /* One line (a command's stderr has several), and no control character, which events
     * refuse (C0, DEL, and C1: 0xC2 0x80-0x9F in UTF-8). */
    char one[sizeof(j->why)];
    size_t o = 0;
    for (const char *c = j->why; *c && o + 4 < sizeof(one); c++) {
        unsigned char u = (unsigned char)*c;
        if (u == '\n') {
            memcpy(one + o, " | ", 3);
            o += 3;
        } else if (u == 0xC2 && (unsigned char)c[1] >= 0x80 && (unsigned char)c[1] < 0xA0) {
            one[o++] = ' ';
            c++;
        } else {
            one[o++] = u < 0x20 || u == 0x7F ? ' ' : *c;
        }
    }
    one[o] = '\0';
    memcpy(j->why, one, o + 1);
    json_t *ev = file_ev(j, "file:failed");
    if (ev) {
        json_t *f = json_object_get(ev, "file");
        json_object_set_new(f, "error",
                            json_pack("{s:s,s:s,s:b}", "message", j->why[0] ? j->why : "failed",
                                      "kind", j->err_kind ? j->err_kind : "error", "retryable",
                                      retryable));
    }
    j->ended = 1;
    j->w->stats.failed++;
    emit(j->w, ev);
    RP_LOG_INFO("watch", "%s failed: %s", j->rel, j->why);
}

/* j's file was deleted (or replaced by a link) while it was processed: it ends failed, not
 * retryable (there is nothing left to retry), so the hub never shows it completed. */
void rp_watch_emit_removed(job_t *j)
{
    snprintf(j->why, sizeof(j->why), "%s", REMOVED_WHY);
    j->err_kind = "removed";
    rp_watch_emit_failed(j, 0);
}

/* The document registered for path is gone from the folder (and now from the index): the
 * hub's registry then says `deleted`, and viewers drop it from their lists. */
void rp_watch_emit_deleted(rp_watch_t *w, const char *path)
{
    json_t *ev = ev_new(w, "file:deleted");
    json_t *f = file_ident(rp_watch_rel_of(w, path));
    if (ev == NULL || f == NULL) {
        json_decref(ev);
        json_decref(f);
        ev = NULL;
    } else {
        json_object_set_new(ev, "file", f);
    }
    emit(w, ev);
}

/* rp_watch_emit_deleted for each path of `paths` (a JSON array of strings, or NULL). */
void rp_watch_emit_deleted_all(rp_watch_t *w, const json_t *paths)
{
    size_t i;
    const json_t *v;
    json_array_foreach(paths, i, v)
    {
        rp_watch_emit_deleted(w, json_string_value(v));
    }
}

void rp_watch_emit_heartbeat(rp_watch_t *w, const char *type)
{
    json_t *ev = ev_new(w, type);
    if (ev) {
        json_object_set_new(ev, "heartbeat_interval", json_real(w->cfg.heartbeat_s));
        json_object_set_new(ev, "files_pending",
                            json_integer((json_int_t)(w->nready + w->pending.count + w->nbatch +
                                                      (w->cur != NULL))));
        if (strcmp(type, "heartbeat") != 0) {
            char msg[PATH_MAX + 64];
            snprintf(msg, sizeof(msg), "%s %.4000s",
                     strcmp(type, "pipeline:online") == 0 ? "watching" : "stopped watching",
                     w->root);
            json_object_set_new(ev, "message", json_string(msg));
        }
    }
    emit(w, ev);
}

void rp_watch_on_heartbeat(uv_timer_t *t)
{
    rp_watch_emit_heartbeat(t->data, "heartbeat");
}
