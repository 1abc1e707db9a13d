/* SPDX-License-Identifier: MIT */
/* Event validation and normalisation. The rules mirror docs/events.schema.json; a test
 * (tests/integration/hub-validation.test.mjs) runs every rule through the live server. Each
 * refusal names the field and the one rule that failed (type, UTF-8, length, characters), in
 * words a producer's author can act on; a rule text never stands in for another. */
#include "hub/event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/err.h"
#include "util/utf8.h"

static const char *const type_names[RP_EV_COUNT] = {
    "pipeline:online", "pipeline:offline", "file:processing", "file:progress", "file:completed",
    "file:failed",     "file:deleted",     "status:update",   "heartbeat",
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
    return RP_ENOTFOUND;
}

static int fail(rp_event_error_t *err, const char *field, const char *rule)
{
    snprintf(err->field, sizeof(err->field), "%s", field);
    snprintf(err->rule, sizeof(err->rule), "%s", rule);
    return RP_EINVAL;
}

/* What a string field allows. Lengths count Unicode code points, as JSON Schema's
 * minLength/maxLength do, so 200 × "é" (400 bytes) is 200 characters. Control characters are
 * Unicode's Cc set (U+0000-U+001F, U+007F-U+009F): refused everywhere, except that free text
 * (`multiline`) keeps tab, newline and carriage return, so a traceback arrives intact. */
typedef struct text_rule {
    size_t min, max;
    const char *charset;       /* the only (ASCII) characters allowed, or NULL */
    const char *charset_words; /* how the refusal names charset */
    int multiline;
} text_rule_t;

/* U+0080-U+009F, the C1 controls, are 0xC2 0x80-0x9F in UTF-8. */
static int is_control(const unsigned char *s, size_t i, size_t n, int multiline)
{
    unsigned c = s[i];
    if (c < 0x20)
        return !(multiline && (c == '\t' || c == '\n' || c == '\r'));
    if (c == 0x7F)
        return 1;
    return c == 0xC2 && i + 1 < n && s[i + 1] < 0xA0;
}

/* Checks the string v against r and returns 0, or RP_EINVAL with err naming field and the first
 * rule that failed, in this order: type, UTF-8 (needed to count), length, characters. */
static int check_text(rp_event_error_t *err, const char *field, const json_t *v,
                      const text_rule_t *r)
{
    if (!json_is_string(v))
        return fail(err, field, "must be a string");
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    size_t n = json_string_length(v);
    rp_utf8_t u;
    rp_utf8_init(&u);
    if (rp_utf8_feed(&u, s, n) < 0 || !rp_utf8_complete(&u))
        return fail(err, field, "must be valid UTF-8");
    size_t chars = 0;
    int control = 0;
    int outside = 0;
    for (size_t i = 0; i < n; i++) {
        chars += (s[i] & 0xC0) != 0x80;
        control |= is_control(s, i, n, r->multiline);
        outside |= r->charset && strchr(r->charset, s[i]) == NULL;
    }
    if (chars < r->min || chars > r->max) {
        char rule[sizeof(err->rule)];
        if (r->min == 0)
            snprintf(rule, sizeof(rule), "must be at most %zu characters (this one has %zu)",
                     r->max, chars);
        else
            snprintf(rule, sizeof(rule), "must be %zu to %zu characters (this one has %zu)", r->min,
                     r->max, chars);
        return fail(err, field, rule);
    }
    if (control)
        return fail(
            err, field,
            r->multiline
                ? "must not contain control characters other than tab, newline and carriage return"
                : "must not contain control characters");
    if (outside) {
        char rule[sizeof(err->rule)];
        snprintf(rule, sizeof(rule), "must contain only %s", r->charset_words);
        return fail(err, field, rule);
    }
    return 0;
}

/* check_text for a member that must be present: `absent` is the refusal when it is not. */
static int check_required(rp_event_error_t *err, const char *field, const json_t *v,
                          const text_rule_t *r, const char *absent)
{
    return v == NULL ? fail(err, field, absent) : check_text(err, field, v, r);
}

static const text_rule_t id_rule = {
    1, 128, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-",
    "A-Z a-z 0-9 . _ : -", 0};
static const text_rule_t type_rule = {1, 64, "abcdefghijklmnopqrstuvwxyz0123456789_", "a-z 0-9 _",
                                      0};
static const text_rule_t file_id_rule = {1, 256, NULL, NULL, 0};
static const text_rule_t name_rule = {1, 1024, NULL, NULL, 0};
static const text_rule_t mime_rule = {1, 255, NULL, NULL, 0};
static const text_rule_t word_rule = {1, 64, NULL, NULL, 0}; /* stage, error kind and code */
static const text_rule_t hash_rule = {1, 128, NULL, NULL, 0};
static const text_rule_t error_rule = {1, 8192, NULL, NULL, 1};
static const text_rule_t message_rule = {0, 4096, NULL, NULL, 1};

static int check_uint(const json_t *v, json_int_t min)
{
    return json_is_integer(v) && json_integer_value(v) >= min ? 0 : RP_EINVAL;
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
        return check_text(err, "file.error", e, &error_rule);
    if (!json_is_object(e))
        return fail(err, "file.error", "must be a string or an object with a message");
    static const char *const keys[] = {"message", "kind", "code", "retryable", NULL};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)e, key, v)
    {
        if (!known(key, keys))
            return fail(err, "file.error",
                        "has an unknown field (allowed: message, kind, code, retryable)");
    }
    if (check_required(err, "file.error.message", json_object_get(e, "message"), &error_rule,
                       "is required: 1 to 8192 characters") < 0)
        return RP_EINVAL;
    v = json_object_get(e, "kind");
    if (v && check_text(err, "file.error.kind", v, &word_rule) < 0)
        return RP_EINVAL;
    v = json_object_get(e, "code");
    if (v && !json_is_integer(v) && !json_is_string(v))
        return fail(err, "file.error.code", "must be an integer or a string of 1 to 64 characters");
    if (v && json_is_string(v) && check_text(err, "file.error.code", v, &word_rule) < 0)
        return RP_EINVAL;
    v = json_object_get(e, "retryable");
    if (v && !json_is_boolean(v))
        return fail(err, "file.error.retryable", "must be true or false");
    return 0;
}

/* Refuses the first member of obj whose name is not in keys; prefix ("file." or "") names
 * the object in the field reported. The hub's own fields (id, ts) get their own reason. */
static int check_keys(const json_t *obj, const char *const *keys, const char *prefix,
                      rp_event_error_t *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        if (known(key, keys))
            continue;
        char field[64];
        snprintf(field, sizeof(field), "%s%.50s", prefix, key);
        if (!*prefix && (strcmp(key, "id") == 0 || strcmp(key, "ts") == 0))
            return fail(err, field, "is assigned by the hub; do not send it");
        return fail(err, field,
                    *prefix ? "is not a known field of a file"
                            : "is not a known field of an event");
    }
    return 0;
}

static int validate_file(const json_t *f, rp_event_type_t t, rp_event_error_t *err)
{
    static const char *const keys[] = {"id",       "name",  "size",   "mime_type",
                                       "progress", "stage", "chunks", "attempt",
                                       "hash",     "error", NULL};
    if (!json_is_object(f))
        return fail(err, "file", "must be an object");
    if (check_keys(f, keys, "file.", err) < 0)
        return RP_EINVAL;
    json_t *v;
    if (check_required(err, "file.id", json_object_get(f, "id"), &file_id_rule,
                       "is required: 1 to 256 characters") < 0)
        return RP_EINVAL;
    if (check_required(err, "file.name", json_object_get(f, "name"), &name_rule,
                       "is required: 1 to 1024 characters") < 0)
        return RP_EINVAL;
    if ((v = json_object_get(f, "size")) && check_uint(v, 0) < 0)
        return fail(err, "file.size", "must be an integer >= 0 (bytes)");
    if ((v = json_object_get(f, "mime_type")) &&
        check_text(err, "file.mime_type", v, &mime_rule) < 0)
        return RP_EINVAL;
    v = json_object_get(f, "progress");
    if (v && (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1))
        return fail(err, "file.progress", "must be a number from 0 to 1");
    if (!v && t == RP_EV_FILE_PROGRESS)
        return fail(err, "file.progress", "is required for file:progress: a number from 0 to 1");
    if ((v = json_object_get(f, "stage")) && check_text(err, "file.stage", v, &word_rule) < 0)
        return RP_EINVAL;
    if ((v = json_object_get(f, "chunks")) && check_uint(v, 0) < 0)
        return fail(err, "file.chunks", "must be an integer >= 0");
    if ((v = json_object_get(f, "attempt")) && check_uint(v, 1) < 0)
        return fail(err, "file.attempt", "must be an integer >= 1");
    if ((v = json_object_get(f, "hash")) && check_text(err, "file.hash", v, &hash_rule) < 0)
        return RP_EINVAL;
    v = json_object_get(f, "error");
    if (v)
        return t == RP_EV_FILE_FAILED ? validate_error(v, err)
                                      : fail(err, "file.error", "is only allowed on file:failed");
    if (t == RP_EV_FILE_FAILED)
        return fail(err, "file.error",
                    "is required for file:failed: a message or {message, kind, code, retryable}");
    return 0;
}

int rp_event_validate(const json_t *in, rp_event_error_t *err)
{
    static const char *const keys[] = {
        "type",   "pipeline_id",        "pipeline_type", "file",          "message",
        "status", "heartbeat_interval", "files_total",   "files_pending", "meta",
        NULL};
    if (!json_is_object(in))
        return fail(err, "", "an event must be a JSON object");
    if (check_keys(in, keys, "", err) < 0)
        return RP_EINVAL;
    json_t *v;
    v = json_object_get(in, "type");
    int t = json_is_string(v) ? rp_event_type_parse(json_string_value(v), json_string_length(v))
                              : RP_ENOTFOUND;
    if (t < 0)
        return fail(
            err, "type",
            "is required: one of pipeline:online, pipeline:offline, file:processing, "
            "file:progress, file:completed, file:failed, file:deleted, status:update, heartbeat");
    if (check_required(err, "pipeline_id", json_object_get(in, "pipeline_id"), &id_rule,
                       "is required: 1 to 128 characters of A-Z a-z 0-9 . _ : -") < 0)
        return RP_EINVAL;
    if (check_required(err, "pipeline_type", json_object_get(in, "pipeline_type"), &type_rule,
                       "is required: 1 to 64 characters of a-z 0-9 _") < 0)
        return RP_EINVAL;
    v = json_object_get(in, "file");
    if (rp_event_is_file((rp_event_type_t)t)) {
        if (v == NULL)
            return fail(err, "file", "is required for file events");
        if (validate_file(v, (rp_event_type_t)t, err) < 0)
            return RP_EINVAL;
    } else if (v) {
        return fail(err, "file", "is only allowed on file events");
    }
    if ((v = json_object_get(in, "message")) && check_text(err, "message", v, &message_rule) < 0)
        return RP_EINVAL;
    v = json_object_get(in, "status");
    if (t == RP_EV_STATUS_UPDATE) {
        int ok = 0;
        for (size_t i = 0; v && json_is_string(v) && i < sizeof(statuses) / sizeof(*statuses); i++)
            ok |= strcmp(json_string_value(v), statuses[i]) == 0;
        if (!ok)
            return fail(
                err, "status",
                "is required for status:update: one of online, offline, running, idle, error");
    } else if (v) {
        return fail(err, "status", "is only allowed on status:update");
    }
    v = json_object_get(in, "heartbeat_interval");
    if (v && (!json_is_number(v) || json_number_value(v) <= 0 || json_number_value(v) > 86400))
        return fail(err, "heartbeat_interval",
                    "must be a number of seconds above 0, at most 86400");
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
    static const char *const top[] = {"type",        "pipeline_id",   "pipeline_type",
                                      "status",      "message",       "heartbeat_interval",
                                      "files_total", "files_pending", NULL};
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
