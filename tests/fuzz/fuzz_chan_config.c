/* SPDX-License-Identifier: MIT */
/* Fuzzes the channels' config loader (hub/chan_config.h) on the input as the file's text.
 * Oracles: a parse is 0, or RP_EINVAL with a message that starts with the file's name and a
 * config left empty; an accepted config keeps the rules the loader promises (1..256 patterns,
 * each valid and found by its own name when it has no '*', kinds state or stream, fields of
 * the other kind unset, limits in range, every forward URL http://), a template of an
 * accepted rule fills from an empty payload with 0, RP_ENOTFOUND or RP_EINVAL only, and a
 * filled name is valid; freeing leaves the config empty. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub/chan_config.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_template(const char *tmpl, const json_t *payload)
{
    char out[129], missing[64];
    int rc = rp_chan_template_fill(tmpl, payload, out, sizeof(out), missing, sizeof(missing));
    if (rc == 0 && !rp_chan_name_valid(out, strlen(out)))
        abort();
    if (rc != 0 && rc != RP_ENOTFOUND && rc != RP_EINVAL)
        abort();
}

static void check_rules(const rp_chan_rule_t *r, size_t n, int forward, const json_t *payload)
{
    for (size_t i = 0; i < n; i++) {
        if (r[i].event == NULL || r[i].event[0] == '\0' || r[i].channel == NULL)
            abort();
        if (forward && (r[i].url == NULL || strncmp(r[i].url, "http://", 7) != 0))
            abort();
        check_template(r[i].channel, payload);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    rp_chan_config_t cfg;
    char err[512];
    int rc = rp_chan_config_parse(&cfg, "fuzz.json", (const char *)data, size, err, sizeof(err));
    if (rc != 0) {
        if (rc != RP_EINVAL || strncmp(err, "fuzz.json", 9) != 0 || cfg.npatterns != 0 ||
            cfg.patterns != NULL || cfg.nnsps != 0 || cfg.nsps != NULL)
            abort();
        return 0;
    }
    if (cfg.npatterns < 1 || cfg.npatterns > 256)
        abort();
    if (cfg.forward_concurrency < 1 || cfg.forward_concurrency > 1024 ||
        cfg.forward_timeout_ms < 100 || cfg.forward_timeout_ms > 600000 ||
        cfg.max_message_bytes < 16 || cfg.max_message_bytes > 16777216 || cfg.max_history < 1 ||
        cfg.max_history > 1000000 || !(cfg.publish_rate >= 0) || !(cfg.publish_burst >= 0))
        abort();
    for (size_t i = 0; i < cfg.npatterns; i++) {
        const rp_chan_pattern_t *p = &cfg.patterns[i];
        size_t len = strlen(p->pattern);
        if (len == 0 || len > 128 || (p->kind != RP_CHAN_STATE && p->kind != RP_CHAN_STREAM))
            abort();
        if (strchr(p->pattern, '*') == NULL &&
            (!rp_chan_name_valid(p->pattern, len) || !rp_chan_match(p->pattern, p->pattern) ||
             rp_chan_config_find(&cfg, p->pattern) == NULL))
            abort();
        if (p->kind == RP_CHAN_STATE && (p->max_entries < 1 || p->max_entries > 10000000 ||
                                         (p->terminal_field && p->nterminal_values == 0)))
            abort();
        if (p->kind == RP_CHAN_STREAM && (p->retain_count < 1 || p->retain_count > 10000000 ||
                                          p->retain_age_s > 31536000 || p->terminal_field))
            abort();
    }
    json_t *payload = json_object();
    for (size_t i = 0; i < cfg.nnsps; i++) {
        const rp_chan_nsp_config_t *ns = &cfg.nsps[i];
        if (ns->name == NULL || ns->name[0] != '/' || strcmp(ns->name, "/pipeline") == 0 ||
            strcmp(ns->name, "/channels") == 0)
            abort();
        check_rules(ns->join, ns->njoin, 0, payload);
        check_rules(ns->leave, ns->nleave, 0, payload);
        check_rules(ns->forward, ns->nforward, 1, payload);
        for (size_t j = 0; j < ns->ndeliver; j++)
            if (ns->deliver[j].channel == NULL || ns->deliver[j].event == NULL)
                abort();
    }
    json_decref(payload);
    rp_chan_config_free(&cfg);
    if (cfg.npatterns != 0 || cfg.nnsps != 0)
        abort();
    return 0;
}
