/* SPDX-License-Identifier: MIT */
#ifndef RP_HUB_CHAN_CONFIG_H
#define RP_HUB_CHAN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* The channels' configuration (`ragpulse serve --config FILE`, JSON; the rules are
 * docs/config.schema.json and docs/channels.md): which channel patterns exist and of which
 * kind, and how each namespace maps the seeds' wire names (join events, delivered event
 * names, forwarded client events) onto channels. Loaded once at start; read-only afterwards. */

typedef enum rp_chan_kind {
    RP_CHAN_STATE,
    RP_CHAN_STREAM
} rp_chan_kind_t;

/* One entry of "channels". */
typedef struct rp_chan_pattern {
    char *pattern; /* owned; may contain '*' */
    rp_chan_kind_t kind;
    /* state */
    char *terminal_field;   /* owned, NULL: no terminal rule */
    char **terminal_values; /* owned, each owned */
    size_t nterminal_values;
    uint32_t terminal_delay_ms;
    uint32_t ttl_ms; /* default entry TTL, 0: none */
    size_t max_entries;
    /* stream */
    size_t retain_count;
    uint32_t retain_age_s; /* 0: no age bound */
} rp_chan_pattern_t;

/* {event, channel template} of join, leave and forward rules. */
typedef struct rp_chan_rule {
    char *event;         /* owned */
    char *channel;       /* owned: a template with {field} placeholders */
    char *url;           /* forward only, owned */
    uint32_t timeout_ms; /* forward only; 0: the forward section's */
} rp_chan_rule_t;

/* One entry of "deliver". */
typedef struct rp_chan_deliver {
    char *channel;       /* owned pattern */
    char *event;         /* owned: live set/patch/append */
    char *delete_event;  /* owned, NULL: deletes are not sent */
    char *history_event; /* owned, NULL: no history on join (streams) */
    char *history_field; /* owned */
    size_t history_last;
    char *snapshot_event; /* owned, NULL: each entry as `event` on join (states) */
    char *snapshot_field; /* owned */
} rp_chan_deliver_t;

typedef struct rp_chan_nsp_config {
    char *name; /* owned: "/crawl" */
    rp_chan_rule_t *join, *leave, *forward;
    size_t njoin, nleave, nforward;
    rp_chan_deliver_t *deliver;
    size_t ndeliver;
    int rooms; /* join_room/leave_room accepted, default 1 */
} rp_chan_nsp_config_t;

typedef struct rp_chan_config {
    rp_chan_pattern_t *patterns;
    size_t npatterns;
    rp_chan_nsp_config_t *nsps;
    size_t nnsps;
    unsigned forward_concurrency; /* default 16 */
    uint32_t forward_timeout_ms;  /* default 5000 */
    size_t max_channels;          /* default 10000 */
    size_t max_entries;           /* default 10000 */
    size_t max_message_bytes;     /* default 65536 */
    size_t max_history;           /* default 10000 */
    double publish_rate;          /* 0: the hub's event rate */
    double publish_burst;
} rp_chan_config_t;

/* The configuration without a file: no patterns, no namespaces, the default limits. */
void rp_chan_config_defaults(rp_chan_config_t *cfg);

/* Loads and checks the JSON text text[0..len) (name is the file name, for messages). Returns 0
 * with cfg filled (free with rp_chan_config_free), or RP_EINVAL with err filled as
 * "FILE:LINE:COL: RULE" (a JSON syntax error) or "FILE: FIELD: RULE" (e.g.
 * "ragpulse.json: namespaces./chat.forward[0].url: required"), cfg left empty; or UV_ENOMEM. */
int rp_chan_config_parse(rp_chan_config_t *cfg, const char *name, const char *text, size_t len,
                         char *err, size_t errlen);
/* Reads the file, then rp_chan_config_parse; a file that cannot be read is RP_EINVAL with
 * "FILE: cannot read: REASON". */
int rp_chan_config_load(rp_chan_config_t *cfg, const char *path, char *err, size_t errlen);
void rp_chan_config_free(rp_chan_config_t *cfg);

/* 1 when name is a valid channel name (1..128 of [A-Za-z0-9_.:@-]). */
int rp_chan_name_valid(const char *name, size_t len);
/* 1 when name matches pattern ('*': any run of characters). */
int rp_chan_match(const char *pattern, const char *name);
/* The pattern entry name belongs to (the first that matches), or NULL. */
const rp_chan_pattern_t *rp_chan_config_find(const rp_chan_config_t *cfg, const char *name);
/* Fills a template from a JSON object's top-level string/number fields (json_t *, as void *
 * to keep jansson out of this header). Returns 0, RP_ENOTFOUND with *missing pointing at the
 * placeholder's name (NUL-terminated copy in missing_buf), RP_EINVAL when the result is not a
 * valid channel name, or RP_ETOOBIG. */
int rp_chan_template_fill(const char *tmpl, const void *payload, char *out, size_t outlen,
                          char *missing_buf, size_t missing_len);

#endif
