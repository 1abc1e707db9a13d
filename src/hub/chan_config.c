/* SPDX-License-Identifier: MIT */
/* The channels' config loader (`ragpulse serve --config FILE`): checks the JSON file against
 * every rule of docs/config.schema.json and fills an rp_chan_config_t, plus the name, pattern
 * and template helpers the engine shares with it. Every refusal is RP_EINVAL with one message
 * naming where: jansson's line:column for a syntax error (duplicate keys included), else the
 * field's path ("namespaces./chat.forward[0].url") and the rule. Invariant: after an error the
 * config is left as rp_chan_config_defaults makes it, with nothing allocated. */
#include "hub/chan_config.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "util/alloc.h"
#include "util/err.h"
#include "util/url.h"

#define NAME_MAX_LEN   128
#define MAX_RULES      256 /* entries of one join/leave/deliver/forward array, and namespaces */
#define MAX_PATTERNS   256
#define MAX_TEMPLATE   256
#define MAX_FILE_BYTES (16u << 20)

/* The namespaces a config may not claim: the pipeline hub's and the generic channels' one.
 * The pipeline type namespaces are `serve --namespaces`' (the defaults are listed here; serve
 * checks its own list again when it differs). */
static const char *const reserved_nsps[] = {
    "/", "/pipeline", "/channels", "/google_drive", "/local_files", NULL};
/* Socket.IO's own event names: a rule naming one would never see or would break them. */
static const char *const reserved_events[] = {
    "connect",     "connect_error",  "disconnect", "disconnecting",
    "newListener", "removeListener", NULL};

struct ctx {
    const char *name; /* the file's name, for messages */
    char *err;
    size_t errlen;
    char path[512]; /* the field being checked: "channels[2].retain.count" */
    size_t plen;
    rp_chan_config_t *cfg;
};

/* ---- names, patterns, templates ---- */

static int name_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '.' || ch == ':' || ch == '@' || ch == '-';
}

static int field_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
}

int rp_chan_name_valid(const char *name, size_t len)
{
    if (name == NULL || len == 0 || len > NAME_MAX_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!name_char((unsigned char)name[i]))
            return 0;
    return 1;
}

static int pattern_valid(const char *p, size_t len)
{
    if (len == 0 || len > NAME_MAX_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (p[i] != '*' && !name_char((unsigned char)p[i]))
            return 0;
    return 1;
}

/* Glob with '*' only, by the classic backtrack to the last star: linear in practice, never
 * worse than len(pattern) * len(name). */
int rp_chan_match(const char *pattern, const char *name)
{
    const char *p = pattern;
    const char *n = name;
    const char *star = NULL;
    const char *resume = NULL;
    while (*n != '\0') {
        if (*p == '*') {
            star = p++;
            resume = n;
        } else if (*p == *n) {
            p++;
            n++;
        } else if (star != NULL) {
            p = star + 1;
            n = ++resume;
        } else {
            return 0;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

/* 1 when some name matches both patterns (each at most NAME_MAX_LEN bytes). ok[i][j]: the
 * suffixes a+i and b+j have a common match; a star either ends or takes the other's next
 * character (a star facing a star: one of them ends). */
static int patterns_overlap(const char *a, const char *b)
{
    size_t n = strlen(a);
    size_t m = strlen(b);
    unsigned char ok[NAME_MAX_LEN + 1][NAME_MAX_LEN + 1];
    if (n > NAME_MAX_LEN || m > NAME_MAX_LEN)
        return 0;
    for (size_t i = n + 1; i-- > 0;) {
        for (size_t j = m + 1; j-- > 0;) {
            int r;
            if (i == n && j == m)
                r = 1;
            else if (i < n && a[i] == '*')
                r = ok[i + 1][j] || (j < m && ok[i][j + 1]);
            else if (j < m && b[j] == '*')
                r = ok[i][j + 1] || (i < n && ok[i + 1][j]);
            else
                r = i < n && j < m && a[i] == b[j] && ok[i + 1][j + 1];
            ok[i][j] = (unsigned char)r;
        }
    }
    return ok[0][0];
}

/* A template: 1..MAX_TEMPLATE bytes of name characters and {field} placeholders. */
static int template_valid(const char *t, size_t len)
{
    if (len == 0 || len > MAX_TEMPLATE)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (t[i] == '{') {
            size_t j = i + 1;
            while (j < len && field_char((unsigned char)t[j]))
                j++;
            if (j == i + 1 || j >= len || t[j] != '}')
                return 0;
            i = j;
        } else if (!name_char((unsigned char)t[i])) {
            return 0;
        }
    }
    return 1;
}

/* The shortest decimal text that reads back as v ("1.5", not "1.5000000000000000"). */
static void format_real(double v, char *out, size_t outlen)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, outlen, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

int rp_chan_template_fill(const char *tmpl, const void *payload, char *out, size_t outlen,
                          char *missing_buf, size_t missing_len)
{
    const json_t *obj = json_is_object((const json_t *)payload) ? payload : NULL;
    size_t len = 0;
    int overflow = 0;
    if (outlen == 0)
        return RP_ETOOBIG;
    for (const char *t = tmpl; *t != '\0';) {
        char num[40];
        const char *piece = t;
        size_t plen = 1;
        if (*t == '{') {
            const char *close = strchr(t, '}');
            if (close == NULL)
                return RP_EINVAL;
            char field[MAX_TEMPLATE + 1];
            size_t flen = (size_t)(close - t - 1);
            if (flen == 0 || flen > MAX_TEMPLATE)
                return RP_EINVAL;
            memcpy(field, t + 1, flen);
            field[flen] = '\0';
            json_t *v = obj ? json_object_get(obj, field) : NULL;
            if (json_is_string(v)) {
                piece = json_string_value(v);
                plen = json_string_length(v);
            } else if (json_is_integer(v)) {
                snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                piece = num;
                plen = strlen(num);
            } else if (json_is_real(v)) {
                format_real(json_real_value(v), num, sizeof(num));
                piece = num;
                plen = strlen(num);
            } else {
                if (missing_buf != NULL && missing_len > 0)
                    snprintf(missing_buf, missing_len, "%s", field);
                return RP_ENOTFOUND;
            }
            t = close + 1;
        } else {
            t++;
        }
        if (plen >= outlen - len) {
            overflow = 1;
            continue; /* keep going: a missing field later is the better answer */
        }
        memcpy(out + len, piece, plen);
        len += plen;
    }
    if (overflow) {
        out[0] = '\0';
        /* With room for any valid name, a longer result is simply not a valid name. */
        return outlen > NAME_MAX_LEN ? RP_EINVAL : RP_ETOOBIG;
    }
    out[len] = '\0';
    return rp_chan_name_valid(out, len) ? 0 : RP_EINVAL;
}

const rp_chan_pattern_t *rp_chan_config_find(const rp_chan_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->npatterns; i++)
        if (rp_chan_match(cfg->patterns[i].pattern, name))
            return &cfg->patterns[i];
    return NULL;
}

/* ---- defaults and freeing ---- */

void rp_chan_config_defaults(rp_chan_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->forward_concurrency = 16;
    cfg->forward_timeout_ms = 5000;
    cfg->max_channels = 10000;
    cfg->max_entries = 10000;
    cfg->max_message_bytes = 65536;
    cfg->max_history = 10000;
}

static void free_rules(rp_chan_rule_t *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rp_free(r[i].event);
        rp_free(r[i].channel);
        rp_free(r[i].url);
    }
    rp_free(r);
}

static void free_nsp(rp_chan_nsp_config_t *ns)
{
    rp_free(ns->name);
    free_rules(ns->join, ns->njoin);
    free_rules(ns->leave, ns->nleave);
    free_rules(ns->forward, ns->nforward);
    for (size_t i = 0; i < ns->ndeliver; i++) {
        rp_chan_deliver_t *d = &ns->deliver[i];
        rp_free(d->channel);
        rp_free(d->event);
        rp_free(d->delete_event);
        rp_free(d->history_event);
        rp_free(d->history_field);
        rp_free(d->snapshot_event);
        rp_free(d->snapshot_field);
    }
    rp_free(ns->deliver);
}

void rp_chan_config_free(rp_chan_config_t *cfg)
{
    for (size_t i = 0; i < cfg->npatterns; i++) {
        rp_chan_pattern_t *p = &cfg->patterns[i];
        rp_free(p->pattern);
        rp_free(p->terminal_field);
        for (size_t j = 0; j < p->nterminal_values; j++)
            rp_free(p->terminal_values[j]);
        rp_free(p->terminal_values);
    }
    rp_free(cfg->patterns);
    for (size_t i = 0; i < cfg->nnsps; i++)
        free_nsp(&cfg->nsps[i]);
    rp_free(cfg->nsps);
    rp_chan_config_defaults(cfg);
}

/* ---- the checker's plumbing: paths, messages, typed fields ---- */

/* Appends ".key" (or "key" at the top) or "[i]" to the path; returns the mark pop() undoes. */
static size_t push(struct ctx *c, const char *key, size_t i)
{
    size_t mark = c->plen;
    size_t room = sizeof(c->path) - c->plen;
    int n = key ? snprintf(c->path + c->plen, room, "%s%s", c->plen ? "." : "", key)
                : snprintf(c->path + c->plen, room, "[%zu]", i);
    if (n > 0)
        c->plen += (size_t)n < room ? (size_t)n : room - 1;
    return mark;
}

static void pop(struct ctx *c, size_t mark)
{
    c->plen = mark;
    c->path[mark] = '\0';
}

/* "FILE: PATH: RULE" (or "FILE: RULE" at the top); returns RP_EINVAL. */
static int fail(struct ctx *c, const char *rule)
{
    if (c->plen)
        snprintf(c->err, c->errlen, "%s: %s: %s", c->name, c->path, rule);
    else
        snprintf(c->err, c->errlen, "%s: %s", c->name, rule);
    return RP_EINVAL;
}

static int fail_at(struct ctx *c, const char *key, const char *rule)
{
    size_t mark = push(c, key, 0);
    int rc = fail(c, rule);
    pop(c, mark);
    return rc;
}

static int nomem(struct ctx *c)
{
    snprintf(c->err, c->errlen, "%s: out of memory", c->name);
    return UV_ENOMEM;
}

/* v must be an object whose keys are all in allowed (NULL-terminated). */
static int check_object(struct ctx *c, const json_t *v, const char *const *allowed)
{
    if (!json_is_object(v))
        return fail(c, "must be an object");
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x)
    {
        size_t i = 0;
        while (allowed[i] != NULL && strcmp(allowed[i], k) != 0)
            i++;
        if (allowed[i] == NULL)
            return fail_at(c, k, "unknown field");
    }
    return 0;
}

/* obj[key], an integer in lo..hi, or dflt when absent. */
static int get_int(struct ctx *c, const json_t *obj, const char *key, json_int_t lo, json_int_t hi,
                   json_int_t dflt, json_int_t *out)
{
    const json_t *v = json_object_get(obj, key);
    *out = dflt;
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        char rule[96];
        snprintf(rule, sizeof(rule),
                 "must be an integer in %" JSON_INTEGER_FORMAT "..%" JSON_INTEGER_FORMAT, lo, hi);
        return fail_at(c, key, rule);
    }
    *out = json_integer_value(v);
    return 0;
}

enum str_kind {
    STR_EVENT,
    STR_FIELD,
    STR_PATTERN,
    STR_TEMPLATE,
    STR_URL
};

static const char *str_check(enum str_kind kind, const char *s, size_t len)
{
    switch (kind) {
    case STR_EVENT:
        if (len == 0 || len > NAME_MAX_LEN)
            return "must be an event name of 1..128 bytes";
        for (size_t i = 0; reserved_events[i] != NULL; i++)
            if (strcmp(s, reserved_events[i]) == 0)
                return "is a Socket.IO reserved event name";
        return NULL;
    case STR_FIELD:
        return len == 0 || len > NAME_MAX_LEN ? "must be a field name of 1..128 bytes" : NULL;
    case STR_PATTERN:
        return pattern_valid(s, len) ? NULL
                                     : "must be a channel pattern: 1..128 bytes of "
                                       "[A-Za-z0-9_.:@-] and '*'";
    case STR_TEMPLATE:
        return template_valid(s, len) ? NULL
                                      : "must be a channel template: [A-Za-z0-9_.:@-] and "
                                        "{field} placeholders with field [A-Za-z0-9_]+";
    case STR_URL: {
        rp_url_t u;
        const char *why = "not a URL";
        if (strncmp(s, "http://", 7) != 0)
            return "must be an http:// URL";
        if (rp_url_parse(&u, s, &why) != 0)
            return why;
        return NULL;
    }
    }
    return "unchecked";
}

/* obj[key], a string of that kind, copied into *out; absent is an error when required and
 * leaves *out NULL otherwise. */
static int get_str(struct ctx *c, const json_t *obj, const char *key, int required,
                   enum str_kind kind, char **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL)
        return required ? fail_at(c, key, "required") : 0;
    if (!json_is_string(v))
        return fail_at(c, key, "must be a string");
    const char *why = str_check(kind, json_string_value(v), json_string_length(v));
    if (why != NULL)
        return fail_at(c, key, why);
    *out = rp_strndup(json_string_value(v), json_string_length(v));
    return *out ? 0 : nomem(c);
}

/* obj[key] as an array of at most max elements: *arr (NULL when absent), *n its length. */
static int get_array(struct ctx *c, const json_t *obj, const char *key, size_t min, size_t max,
                     const json_t **arr, size_t *n)
{
    const json_t *v = json_object_get(obj, key);
    *arr = NULL;
    *n = 0;
    if (v == NULL)
        return min ? fail_at(c, key, "required") : 0;
    if (!json_is_array(v) || json_array_size(v) < min || json_array_size(v) > max) {
        char rule[64];
        snprintf(rule, sizeof(rule), "must be an array of %zu..%zu elements", min, max);
        return fail_at(c, key, rule);
    }
    *arr = v;
    *n = json_array_size(v);
    return 0;
}

/* ---- the sections ---- */

static int parse_limits(struct ctx *c, const json_t *root)
{
    static const char *const keys[] = {
        "max_channels",  "max_entries", "max_message_bytes", "max_history", "publish_rate",
        "publish_burst", NULL};
    const json_t *l = json_object_get(root, "limits");
    rp_chan_config_t *cfg = c->cfg;
    json_int_t v;
    if (l == NULL)
        return 0;
    size_t mark = push(c, "limits", 0);
    int rc = check_object(c, l, keys);
    if (rc == 0)
        rc = get_int(c, l, "max_channels", 1, 10000000, 10000, &v);
    if (rc == 0) {
        cfg->max_channels = (size_t)v;
        rc = get_int(c, l, "max_entries", 1, 10000000, 10000, &v);
    }
    if (rc == 0) {
        cfg->max_entries = (size_t)v;
        rc = get_int(c, l, "max_message_bytes", 16, 16777216, 65536, &v);
    }
    if (rc == 0) {
        cfg->max_message_bytes = (size_t)v;
        rc = get_int(c, l, "max_history", 1, 1000000, 10000, &v);
    }
    if (rc == 0)
        cfg->max_history = (size_t)v;
    static const char *const rates[] = {"publish_rate", "publish_burst"};
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        const json_t *r = json_object_get(l, rates[i]);
        if (r == NULL)
            continue;
        if (!json_is_number(r) || !(json_number_value(r) >= 0) || !isfinite(json_number_value(r)))
            rc = fail_at(c, rates[i], "must be a number >= 0");
        else if (i == 0)
            cfg->publish_rate = json_number_value(r);
        else
            cfg->publish_burst = json_number_value(r);
    }
    pop(c, mark);
    return rc;
}

static int parse_forward_section(struct ctx *c, const json_t *root)
{
    static const char *const keys[] = {"concurrency", "timeout_ms", NULL};
    const json_t *f = json_object_get(root, "forward");
    json_int_t v;
    if (f == NULL)
        return 0;
    size_t mark = push(c, "forward", 0);
    int rc = check_object(c, f, keys);
    if (rc == 0)
        rc = get_int(c, f, "concurrency", 1, 1024, 16, &v);
    if (rc == 0) {
        c->cfg->forward_concurrency = (unsigned)v;
        rc = get_int(c, f, "timeout_ms", 100, 600000, 5000, &v);
    }
    if (rc == 0)
        c->cfg->forward_timeout_ms = (uint32_t)v;
    pop(c, mark);
    return rc;
}

static int parse_terminal(struct ctx *c, const json_t *t, rp_chan_pattern_t *p)
{
    static const char *const keys[] = {"field", "values", "delay_ms", NULL};
    const json_t *vals;
    size_t n;
    json_int_t delay;
    size_t mark = push(c, "terminal", 0);
    int rc = check_object(c, t, keys);
    if (rc == 0)
        rc = get_str(c, t, "field", 1, STR_FIELD, &p->terminal_field);
    if (rc == 0)
        rc = get_array(c, t, "values", 1, MAX_RULES, &vals, &n);
    if (rc == 0)
        rc = get_int(c, t, "delay_ms", 0, 86400000, 0, &delay);
    if (rc == 0) {
        p->terminal_delay_ms = (uint32_t)delay;
        p->terminal_values = rp_calloc(n, sizeof(char *));
        if (p->terminal_values == NULL)
            rc = nomem(c);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const json_t *v = json_array_get(vals, i);
        if (!json_is_string(v)) {
            size_t m = push(c, "values", 0);
            push(c, NULL, i);
            rc = fail(c, "must be a string");
            pop(c, m);
            break;
        }
        p->terminal_values[i] = rp_strndup(json_string_value(v), json_string_length(v));
        if (p->terminal_values[i] == NULL)
            rc = nomem(c);
        else
            p->nterminal_values = i + 1;
    }
    pop(c, mark);
    return rc;
}

static int parse_retain(struct ctx *c, const json_t *r, rp_chan_pattern_t *p)
{
    static const char *const keys[] = {"count", "age_s", NULL};
    json_int_t v;
    size_t mark = push(c, "retain", 0);
    int rc = check_object(c, r, keys);
    if (rc == 0)
        rc = get_int(c, r, "count", 1, 10000000, 1000, &v);
    if (rc == 0) {
        p->retain_count = (size_t)v;
        rc = get_int(c, r, "age_s", 0, 31536000, 0, &v);
    }
    if (rc == 0)
        p->retain_age_s = (uint32_t)v;
    pop(c, mark);
    return rc;
}

static int parse_pattern(struct ctx *c, const json_t *e, rp_chan_pattern_t *p)
{
    static const char *const keys[] = {"pattern",     "ttl_ms", "kind", "terminal",
                                       "max_entries", "retain", NULL};
    static const char *const state_only[] = {"terminal", "ttl_ms", "max_entries"};
    int rc = check_object(c, e, keys);
    if (rc == 0)
        rc = get_str(c, e, "pattern", 1, STR_PATTERN, &p->pattern);
    if (rc < 0)
        return rc;
    const json_t *kind = json_object_get(e, "kind");
    if (kind == NULL)
        return fail_at(c, "kind", "required");
    if (json_is_string(kind) && strcmp(json_string_value(kind), "state") == 0)
        p->kind = RP_CHAN_STATE;
    else if (json_is_string(kind) && strcmp(json_string_value(kind), "stream") == 0)
        p->kind = RP_CHAN_STREAM;
    else
        return fail_at(c, "kind", "must be \"state\" or \"stream\"");

    if (p->kind == RP_CHAN_STREAM) {
        for (size_t i = 0; i < 3; i++)
            if (json_object_get(e, state_only[i]) != NULL)
                return fail_at(c, state_only[i], "state channels only");
        p->retain_count = 1000;
        const json_t *r = json_object_get(e, "retain");
        return r ? parse_retain(c, r, p) : 0;
    }
    if (json_object_get(e, "retain") != NULL)
        return fail_at(c, "retain", "stream channels only");
    json_int_t v;
    rc = get_int(c, e, "ttl_ms", 0, UINT32_MAX, 0, &v);
    if (rc < 0)
        return rc;
    p->ttl_ms = (uint32_t)v;
    rc = get_int(c, e, "max_entries", 1, 10000000, (json_int_t)c->cfg->max_entries, &v);
    if (rc < 0)
        return rc;
    p->max_entries = (size_t)v;
    const json_t *t = json_object_get(e, "terminal");
    return t ? parse_terminal(c, t, p) : 0;
}

static int parse_channels(struct ctx *c, const json_t *root)
{
    const json_t *arr;
    size_t n;
    int rc = get_array(c, root, "channels", 1, MAX_PATTERNS, &arr, &n);
    if (rc < 0)
        return rc;
    c->cfg->patterns = rp_calloc(n, sizeof(rp_chan_pattern_t));
    if (c->cfg->patterns == NULL)
        return nomem(c);
    c->cfg->npatterns = n;
    size_t mark = push(c, "channels", 0);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t m = push(c, NULL, i);
        rc = parse_pattern(c, json_array_get(arr, i), &c->cfg->patterns[i]);
        pop(c, m);
    }
    pop(c, mark);
    return rc;
}

/* join, leave (forward = 0) or forward (forward = 1) rules of one namespace. */
static int parse_rules(struct ctx *c, const json_t *ns, const char *key, int forward,
                       rp_chan_rule_t **out, size_t *nout)
{
    static const char *const keys[] = {"event", "channel", NULL};
    static const char *const fkeys[] = {"event", "channel", "url", "timeout_ms", NULL};
    const json_t *arr;
    size_t n;
    int rc = get_array(c, ns, key, 0, MAX_RULES, &arr, &n);
    if (rc < 0 || n == 0)
        return rc;
    *out = rp_calloc(n, sizeof(rp_chan_rule_t));
    if (*out == NULL)
        return nomem(c);
    *nout = n;
    size_t mark = push(c, key, 0);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const json_t *e = json_array_get(arr, i);
        rp_chan_rule_t *r = &(*out)[i];
        size_t m = push(c, NULL, i);
        rc = check_object(c, e, forward ? fkeys : keys);
        if (rc == 0)
            rc = get_str(c, e, "event", 1, STR_EVENT, &r->event);
        if (rc == 0)
            rc = get_str(c, e, "channel", 1, STR_TEMPLATE, &r->channel);
        if (rc == 0 && forward)
            rc = get_str(c, e, "url", 1, STR_URL, &r->url);
        json_int_t t = 0;
        if (rc == 0 && forward)
            rc = get_int(c, e, "timeout_ms", 100, 600000, 0, &t);
        r->timeout_ms = (uint32_t)t;
        pop(c, m);
    }
    pop(c, mark);
    return rc;
}

/* history {event, field, last} or snapshot {event, field} of a deliver rule. */
static int parse_join_view(struct ctx *c, const json_t *d, const char *key, char **event,
                           char **field, size_t *last)
{
    static const char *const hkeys[] = {"event", "field", "last", NULL};
    static const char *const skeys[] = {"event", "field", NULL};
    const json_t *v = json_object_get(d, key);
    if (v == NULL)
        return 0;
    size_t mark = push(c, key, 0);
    int rc = check_object(c, v, last ? hkeys : skeys);
    if (rc == 0)
        rc = get_str(c, v, "event", 1, STR_EVENT, event);
    if (rc == 0)
        rc = get_str(c, v, "field", 1, STR_FIELD, field);
    if (rc == 0 && last != NULL) {
        json_int_t n;
        rc = get_int(c, v, "last", 1, (json_int_t)c->cfg->max_history, 100, &n);
        *last = (size_t)n;
    }
    pop(c, mark);
    return rc;
}

static int parse_deliver(struct ctx *c, const json_t *ns, rp_chan_nsp_config_t *out)
{
    static const char *const keys[] = {"channel", "event",    "delete_event",
                                       "history", "snapshot", NULL};
    const json_t *arr;
    size_t n;
    int rc = get_array(c, ns, "deliver", 0, MAX_RULES, &arr, &n);
    if (rc < 0 || n == 0)
        return rc;
    out->deliver = rp_calloc(n, sizeof(rp_chan_deliver_t));
    if (out->deliver == NULL)
        return nomem(c);
    out->ndeliver = n;
    size_t mark = push(c, "deliver", 0);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const json_t *e = json_array_get(arr, i);
        rp_chan_deliver_t *d = &out->deliver[i];
        size_t m = push(c, NULL, i);
        rc = check_object(c, e, keys);
        if (rc == 0)
            rc = get_str(c, e, "channel", 1, STR_PATTERN, &d->channel);
        if (rc == 0) {
            size_t k = 0;
            while (k < c->cfg->npatterns &&
                   !patterns_overlap(d->channel, c->cfg->patterns[k].pattern))
                k++;
            if (k == c->cfg->npatterns)
                rc = fail_at(c, "channel", "matches no channel of channels[]");
        }
        if (rc == 0)
            rc = get_str(c, e, "event", 1, STR_EVENT, &d->event);
        if (rc == 0)
            rc = get_str(c, e, "delete_event", 0, STR_EVENT, &d->delete_event);
        if (rc == 0)
            rc = parse_join_view(c, e, "history", &d->history_event, &d->history_field,
                                 &d->history_last);
        if (rc == 0)
            rc = parse_join_view(c, e, "snapshot", &d->snapshot_event, &d->snapshot_field, NULL);
        pop(c, m);
    }
    pop(c, mark);
    return rc;
}

static int nsp_name_valid(const char *s, size_t len)
{
    if (len < 2 || len > NAME_MAX_LEN || s[0] != '/')
        return 0;
    for (size_t i = 1; i < len; i++)
        if (!field_char((unsigned char)s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '/')
            return 0;
    return 1;
}

static int parse_nsp(struct ctx *c, const char *name, const json_t *ns, rp_chan_nsp_config_t *out)
{
    static const char *const keys[] = {"join", "leave", "deliver", "forward", "rooms", NULL};
    if (!nsp_name_valid(name, strlen(name)))
        return fail(c, "must be a namespace name: '/' and 1..127 bytes of [A-Za-z0-9_./-]");
    for (size_t i = 0; reserved_nsps[i] != NULL; i++)
        if (strcmp(name, reserved_nsps[i]) == 0)
            return fail(c, "reserved namespace");
    out->name = rp_strndup(name, strlen(name));
    if (out->name == NULL)
        return nomem(c);
    out->rooms = 1;
    int rc = check_object(c, ns, keys);
    if (rc == 0)
        rc = parse_rules(c, ns, "join", 0, &out->join, &out->njoin);
    if (rc == 0)
        rc = parse_rules(c, ns, "leave", 0, &out->leave, &out->nleave);
    if (rc == 0)
        rc = parse_rules(c, ns, "forward", 1, &out->forward, &out->nforward);
    if (rc == 0)
        rc = parse_deliver(c, ns, out);
    const json_t *rooms = json_object_get(ns, "rooms");
    if (rc == 0 && rooms != NULL) {
        if (!json_is_boolean(rooms))
            rc = fail_at(c, "rooms", "must be true or false");
        else
            out->rooms = json_is_true(rooms);
    }
    return rc;
}

static int parse_namespaces(struct ctx *c, const json_t *root)
{
    const json_t *nss = json_object_get(root, "namespaces");
    if (nss == NULL)
        return 0;
    size_t mark = push(c, "namespaces", 0);
    if (!json_is_object(nss) || json_object_size(nss) > MAX_RULES) {
        int rc = fail(c, "must be an object of at most 256 namespaces");
        pop(c, mark);
        return rc;
    }
    size_t n = json_object_size(nss);
    int rc = 0;
    if (n > 0) {
        c->cfg->nsps = rp_calloc(n, sizeof(rp_chan_nsp_config_t));
        if (c->cfg->nsps == NULL)
            rc = nomem(c);
        else
            c->cfg->nnsps = n;
    }
    const char *k;
    json_t *v;
    size_t i = 0;
    json_object_foreach((json_t *)nss, k, v)
    {
        if (rc < 0)
            break;
        size_t m = push(c, k, 0);
        rc = parse_nsp(c, k, v, &c->cfg->nsps[i++]);
        pop(c, m);
    }
    pop(c, mark);
    return rc;
}

/* ---- entry points ---- */

int rp_chan_config_parse(rp_chan_config_t *cfg, const char *name, const char *text, size_t len,
                         char *err, size_t errlen)
{
    static const char *const keys[] = {"channels", "namespaces", "forward", "limits", NULL};
    struct ctx c = {.name = name, .err = err, .errlen = errlen, .cfg = cfg};
    json_error_t jerr;
    rp_chan_config_defaults(cfg);
    if (errlen > 0)
        err[0] = '\0';
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, errlen, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
        return RP_EINVAL;
    }
    /* limits and forward first: channels[].max_entries and history.last default from them. */
    int rc = check_object(&c, root, keys);
    if (rc == 0)
        rc = parse_limits(&c, root);
    if (rc == 0)
        rc = parse_forward_section(&c, root);
    if (rc == 0)
        rc = parse_channels(&c, root);
    if (rc == 0)
        rc = parse_namespaces(&c, root);
    json_decref(root);
    if (rc < 0)
        rp_chan_config_free(cfg);
    return rc;
}

int rp_chan_config_load(rp_chan_config_t *cfg, const char *path, char *err, size_t errlen)
{
    rp_chan_config_defaults(cfg);
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return RP_EINVAL;
    }
    size_t cap = 4096;
    size_t len = 0;
    char *buf = rp_malloc(cap);
    int rc = 0;
    while (buf != NULL) {
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0)
            break;
        if (len == cap) {
            if (cap >= MAX_FILE_BYTES) {
                snprintf(err, errlen, "%s: cannot read: larger than %u bytes", path,
                         MAX_FILE_BYTES);
                rc = RP_EINVAL;
                break;
            }
            char *bigger = rp_realloc(buf, cap * 2);
            if (bigger == NULL) {
                rp_free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    if (buf == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        rc = UV_ENOMEM;
    } else if (rc == 0 && ferror(fp)) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        rc = RP_EINVAL;
    }
    fclose(fp);
    if (rc == 0)
        rc = rp_chan_config_parse(cfg, path, buf, len, err, errlen);
    rp_free(buf);
    return rc;
}
