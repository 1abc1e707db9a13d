/* SPDX-License-Identifier: MIT */
/* Event validation and normalisation. The rules mirror docs/events.schema.json; a test
 * (tests/integration/hub-validation.test.mjs) runs every rule through the live server. Each
 * refusal names the field and the rule in words a producer's author can act on. */
#include "hub/event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const type_names[RP_EV_COUNT] = {
    "pipeline:online", "pipeline:offline", "file:processing", "file:progress",
    "file:completed",  "file:failed",      "status:update",   "heartbeat",
};

static const char *const statuses[] = {"online", "offline", "running", "idle", "error"};

const char *rp_event_type_name(rp_event_type_t t)
{
    return (unsigned)t < RP_EV_COUNT ? type_names[t] : "?";
}

int rp_event_type_parse(const char *name, size_t len)
{
    for (int i = 0; i < RP_EV_COUNT; i++)
        if (strlen(type_names[i]) == len && memcmp(type_names[i], name, len) == 0)
            return i;
    return -1;
}

static int fail(rp_event_error_t *err, const char *field, const char *rule)
{
    snprintf(err->field, sizeof(err->field), "%s", field);
    snprintf(err->rule, sizeof(err->rule), "%s", rule);
    return -1;
}

/* A string of min..max bytes whose every byte is in `allowed` (NULL: any but control). */
static int check_string(const json_t *v, size_t min, size_t max, const char *allowed)
{
    if (!json_is_string(v))
        return -1;
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n < min || n > max || memchr(s, '\0', n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (allowed ? strchr(allowed, c) == NULL : c < 0x20)
            return -1;
    }
    return 0;
}

static const char id_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-";
static const char type_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789_";

static int check_uint(const json_t *v, json_int_t min)
{
    return json_is_integer(v) && json_integer_value(v) >= min ? 0 : -1;
}

static int known(const char *key, const char *const *keys)
{
    for (; *keys; keys++)
        if (strcmp(key, *keys) == 0)
            return 1;
    return 0;
}

static int validate_error(const json_t *e, rp_event_error_t *err)
{
    if (json_is_string(e))
        return check_string(e, 1, 8192, NULL) == 0
                   ? 0
                   : fail(err, "file.error", "must be 1 to 8192 characters");
    if (!json_is_object(e))
        return fail(err, "file.error", "must be a string or an object with a message");
    static const char *const keys[] = {"message", "kind", "code", "retryable", NULL};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)e, key, v)
    {
        if (!known(key, keys))
            return fail(err, "file.error", "has an unknown field (allowed: message, kind, code, retryable)");
    }
    if (check_string(json_object_get(e, "message"), 1, 8192, NULL) < 0)
        return fail(err, "file.error.message", "is required: 1 to 8192 characters");
    v = json_object_get(e, "kind");
    if (v && check_string(v, 1, 64, NULL) < 0)
        return fail(err, "file.error.kind", "must be 1 to 64 characters");
    v = json_object_get(e, "code");
    if (v && !json_is_integer(v) && check_string(v, 1, 64, NULL) < 0)
        return fail(err, "file.error.code", "must be an integer or 1 to 64 characters");
    v = json_object_get(e, "retryable");
    if (v && !json_is_boolean(v))
        return fail(err, "file.error.retryable", "must be true or false");
    return 0;
}

static int validate_file(const json_t *f, rp_event_type_t t, rp_event_error_t *err)
{
    static const char *const keys[] = {"id",     "name",  "size",    "mime_type", "progress",
                                       "stage",  "chunks", "attempt", "hash",      "error",
                                       NULL};
    if (!json_is_object(f))
        return fail(err, "file", "must be an object");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)f, key, v)
    {
        if (!known(key, keys)) {
            char field[64];
            snprintf(field, sizeof(field), "file.%.50s", key);
            return fail(err, field, "is not a known field of a file");
        }
    }
    if (check_string(json_object_get(f, "id"), 1, 256, NULL) < 0)
        return fail(err, "file.id", "is required: 1 to 256 characters");
    if (check_string(json_object_get(f, "name"), 1, 1024, NULL) < 0)
        return fail(err, "file.name", "is required: 1 to 1024 characters");
    if ((v = json_object_get(f, "size")) && check_uint(v, 0) < 0)
        return fail(err, "file.size", "must be an integer >= 0 (bytes)");
    if ((v = json_object_get(f, "mime_type")) && check_string(v, 1, 255, NULL) < 0)
        return fail(err, "file.mime_type", "must be 1 to 255 characters");
    v = json_object_get(f, "progress");
    if (v && (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1))
        return fail(err, "file.progress", "must be a number from 0 to 1");
    if (!v && t == RP_EV_FILE_PROGRESS)
        return fail(err, "file.progress", "is required for file:progress: a number from 0 to 1");
    if ((v = json_object_get(f, "stage")) && check_string(v, 1, 64, NULL) < 0)
        return fail(err, "file.stage", "must be 1 to 64 characters");
    if ((v = json_object_get(f, "chunks")) && check_uint(v, 0) < 0)
        return fail(err, "file.chunks", "must be an integer >= 0");
    if ((v = json_object_get(f, "attempt")) && check_uint(v, 1) < 0)
        return fail(err, "file.attempt", "must be an integer >= 1");
    if ((v = json_object_get(f, "hash")) && check_string(v, 1, 128, NULL) < 0)
        return fail(err, "file.hash", "must be 1 to 128 characters");
    v = json_object_get(f, "error");
    if (v)
        return t == RP_EV_FILE_FAILED ? validate_error(v, err)
                                      : fail(err, "file.error", "is only allowed on file:failed");
    if (t == RP_EV_FILE_FAILED)
        return fail(err, "file.error", "is required for file:failed: a message or {message, kind, code, retryable}");
    return 0;
}

int rp_event_validate(const json_t *in, rp_event_error_t *err)
{
    static const char *const keys[] = {"type",      "pipeline_id",        "pipeline_type",
                                       "file",      "message",            "status",
                                       "heartbeat_interval", "files_total", "files_pending",
                                       "meta",      NULL};
    if (!json_is_object(in))
        return fail(err, "", "an event must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)in, key, v)
    {
        if (!known(key, keys)) {
            char field[64];
            snprintf(field, sizeof(field), "%.60s", key);
            return fail(err, field,
                        strcmp(key, "id") == 0 || strcmp(key, "ts") == 0
                            ? "is assigned by the hub; do not send it"
                            : "is not a known field of an event");
        }
    }
    v = json_object_get(in, "type");
    int t = json_is_string(v) ? rp_event_type_parse(json_string_value(v), json_string_length(v)) : -1;
    if (t < 0)
        return fail(err, "type",
                    "is required: one of pipeline:online, pipeline:offline, file:processing, "
                    "file:progress, file:completed, file:failed, status:update, heartbeat");
    if (check_string(json_object_get(in, "pipeline_id"), 1, 128, id_chars) < 0)
        return fail(err, "pipeline_id", "is required: 1 to 128 characters of A-Z a-z 0-9 . _ : -");
    if (check_string(json_object_get(in, "pipeline_type"), 1, 64, type_chars) < 0)
        return fail(err, "pipeline_type", "is required: 1 to 64 characters of a-z 0-9 _");
    v = json_object_get(in, "file");
    if (rp_event_is_file((rp_event_type_t)t)) {
        if (v == NULL)
            return fail(err, "file", "is required for file events");
        if (validate_file(v, (rp_event_type_t)t, err) < 0)
            return -1;
    } else if (v) {
        return fail(err, "file", "is only allowed on file events");
    }
    if ((v = json_object_get(in, "message")) && check_string(v, 0, 4096, NULL) < 0)
        return fail(err, "message", "must be at most 4096 characters");
    v = json_object_get(in, "status");
    if (t == RP_EV_STATUS_UPDATE) {
        int ok = 0;
        for (size_t i = 0; v && json_is_string(v) && i < sizeof(statuses) / sizeof(*statuses); i++)
            ok |= strcmp(json_string_value(v), statuses[i]) == 0;
        if (!ok)
            return fail(err, "status", "is required for status:update: one of online, offline, running, idle, error");
    } else if (v) {
        return fail(err, "status", "is only allowed on status:update");
    }
    v = json_object_get(in, "heartbeat_interval");
    if (v && (!json_is_number(v) || json_number_value(v) <= 0 || json_number_value(v) > 86400))
        return fail(err, "heartbeat_interval", "must be a number of seconds above 0, at most 86400");
    if ((v = json_object_get(in, "files_total")) && check_uint(v, 0) < 0)
        return fail(err, "files_total", "must be an integer >= 0");
    if ((v = json_object_get(in, "files_pending")) && check_uint(v, 0) < 0)
        return fail(err, "files_pending", "must be an integer >= 0");
    if ((v = json_object_get(in, "meta"))) {
        if (!json_is_object(v))
            return fail(err, "meta", "must be an object");
        char *d = json_dumps(v, JSON_COMPACT);
        size_t dl = d ? strlen(d) : 0;
        free(d);
        if (dl > 4096)
            return fail(err, "meta", "must be at most 4096 bytes of JSON");
    }
    return t;
}

static int copy(json_t *out, const json_t *in, const char *key)
{
    json_t *v = json_object_get(in, key);
    if (v == NULL)
        return 0;
    return json_object_set(out, key, v);
}

json_t *rp_event_normalize(const json_t *in, int64_t id, int64_t ts_ms)
{
    json_t *out = json_object();
    char ts[32];
    rp_event_format_ts(ts_ms, ts);
    int rc = out ? 0 : -1;
    rc |= json_object_set_new(out, "id", json_integer(id));
    rc |= json_object_set_new(out, "ts", json_string(ts));
    static const char *const top[] = {"type",        "pipeline_id",        "pipeline_type",
                                      "status",      "message",            "heartbeat_interval",
                                      "files_total", "files_pending",      NULL};
    for (const char *const *k = top; *k && rc == 0; k++)
        rc |= copy(out, in, *k);
    const json_t *f = json_object_get(in, "file");
    if (f && rc == 0) {
        json_t *nf = json_object();
        static const char *const fk[] = {"id",    "name",   "size",    "mime_type", "progress",
                                         "stage", "chunks", "attempt", "hash",      NULL};
        rc |= nf ? 0 : -1;
        for (const char *const *k = fk; *k && rc == 0; k++)
            rc |= copy(nf, f, *k);
        const json_t *e = json_object_get(f, "error");
        if (e && rc == 0) {
            json_t *ne = json_is_string(e) ? json_pack("{s:O}", "message", e) : json_object();
            if (json_is_object(e) && ne) {
                static const char *const ek[] = {"message", "kind", "code", "retryable", NULL};
                for (const char *const *k = ek; *k; k++)
                    rc |= copy(ne, e, *k);
            }
            rc |= ne ? json_object_set_new(nf, "error", ne) : -1;
        }
        rc |= nf ? json_object_set_new(out, "file", nf) : -1;
    }
    if (rc == 0)
        rc |= copy(out, in, "meta");
    if (rc != 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

void rp_event_format_ts(int64_t ts_ms, char out[32])
{
    time_t secs = (time_t)(ts_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ts_ms % 1000));
}

char *rp_json_dump(const json_t *j, size_t *len)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (s && len)
        *len = strlen(s);
    return s;
}
