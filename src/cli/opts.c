/* SPDX-License-Identifier: MIT */
/* The one option parser of every ragpulse program: it reads rp_cli_opt_t tables (name, kind,
 * bounds, environment variable, field, help line) and fills the structs they point into,
 * first from the environment, then from argv, so a command-line option always wins. --help
 * and the unknown-option check come from the same tables, so an option exists in all three
 * places or in none. The parser never allocates; strings stay borrowed from argv/environ. */
#include "cli/opts.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

#define HELP_COL 28 /* where the help text starts */

static int is_integer_kind(rp_cli_kind_t k)
{
    return k == RP_CLI_INT || k == RP_CLI_UNSIGNED || k == RP_CLI_U32 || k == RP_CLI_SIZE ||
           k == RP_CLI_I64;
}

/* Parses v as a number in [opt->min, opt->max] (whole for the integer kinds). */
static int parse_number(const rp_cli_opt_t *opt, const char *v, const char *what,
                        const char *prefix, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || errno || !isfinite(d) || !(d >= opt->min && d <= opt->max)) {
        fprintf(stderr, "%s: %s wants a number from %.16g to %.16g, got '%s'\n", prefix, what,
                opt->min, opt->max, v);
        return RP_EINVAL;
    }
    if (is_integer_kind(opt->kind) && d != floor(d)) {
        fprintf(stderr, "%s: %s wants a whole number from %.16g to %.16g, got '%s'\n", prefix, what,
                opt->min, opt->max, v);
        return RP_EINVAL;
    }
    *out = d;
    return 0;
}

/* Stores v (NULL for a flag) into the field opt describes. */
static int apply(void *target, const rp_cli_opt_t *opt, const char *v, const char *what,
                 const char *prefix, int from_env)
{
    char *field = (char *)target + opt->off;
    double d = 0;
    if (opt->kind == RP_CLI_FLAG) {
        *(int *)(void *)field = opt->value;
        return 0;
    }
    if (opt->kind == RP_CLI_STRING) {
        *(const char **)(void *)field = v;
        return 0;
    }
    if (opt->kind == RP_CLI_CUSTOM)
        return opt->parse(target, opt, v, what, prefix, from_env);
    int rc = parse_number(opt, v, what, prefix, &d);
    if (rc < 0)
        return rc;
    switch (opt->kind) {
    case RP_CLI_INT:
        *(int *)(void *)field = (int)d;
        break;
    case RP_CLI_UNSIGNED:
        *(unsigned *)(void *)field = (unsigned)d;
        break;
    case RP_CLI_U32:
        *(uint32_t *)(void *)field = (uint32_t)d;
        break;
    case RP_CLI_SIZE:
        *(size_t *)(void *)field = (size_t)d;
        break;
    case RP_CLI_I64:
        *(int64_t *)(void *)field = (int64_t)d;
        break;
    case RP_CLI_DOUBLE:
        *(double *)(void *)field = d;
        break;
    case RP_CLI_MS:
        *(uint32_t *)(void *)field = (uint32_t)(d * 1000);
        break;
    default:
        return RP_EINVAL; /* a table bug: HEADING has no field */
    }
    return 0;
}

const rp_cli_opt_t *rp_cli_find(const rp_cli_cmd_t *cmd, const char *name, size_t *set)
{
    for (size_t s = 0; s < cmd->nsets; s++)
        for (size_t k = 0; k < cmd->sets[s].n; k++) {
            const rp_cli_opt_t *opt = &cmd->sets[s].opts[k];
            if (opt->kind != RP_CLI_HEADING && opt->name && strcmp(opt->name, name) == 0) {
                *set = s;
                return opt;
            }
        }
    return NULL;
}

static int apply_env(rp_cli_cmd_t *cmd)
{
    for (size_t s = 0; s < cmd->nsets; s++)
        for (size_t k = 0; k < cmd->sets[s].n; k++) {
            const rp_cli_opt_t *opt = &cmd->sets[s].opts[k];
            const char *v = opt->env ? getenv(opt->env) : NULL;
            if (opt->kind == RP_CLI_HEADING || v == NULL || *v == '\0')
                continue;
            if (apply(cmd->sets[s].target, opt, v, opt->env, cmd->prefix, 1) < 0)
                return RP_EINVAL;
        }
    return 0;
}

/* One argv word that starts with "--" (or is -h): the option and maybe its value. */
static int parse_option(rp_cli_cmd_t *cmd, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
        rp_cli_help(cmd, stdout);
        return RP_CLI_HELP;
    }
    char name[64];
    const char *eq = strchr(a, '=');
    size_t nl = eq ? (size_t)(eq - a) : strlen(a);
    size_t s = 0;
    const rp_cli_opt_t *opt = NULL;
    if (nl < sizeof(name)) {
        memcpy(name, a, nl);
        name[nl] = '\0';
        opt = rp_cli_find(cmd, name, &s);
    }
    if (opt == NULL) {
        fprintf(stderr, "%s: unknown option '%.*s'\n", cmd->prefix, (int)nl, a);
        rp_cli_help(cmd, stderr);
        return RP_EINVAL;
    }
    const char *v = NULL;
    if (opt->kind == RP_CLI_FLAG) {
        if (eq) {
            fprintf(stderr, "%s: %s takes no value\n", cmd->prefix, opt->name);
            return RP_EINVAL;
        }
    } else if (eq) {
        v = eq + 1;
    } else if (*i + 1 < argc) {
        v = argv[++*i];
    } else {
        fprintf(stderr, "%s: %s needs a value\n", cmd->prefix, opt->name);
        return RP_EINVAL;
    }
    cmd->sets[s].given = opt->name;
    return apply(cmd->sets[s].target, opt, v, opt->name, cmd->prefix, 0);
}

int rp_cli_parse(rp_cli_cmd_t *cmd, int argc, char **argv)
{
    int rc = apply_env(cmd);
    if (rc < 0)
        return rc;
    int options = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options && strcmp(a, "--") == 0) {
            options = 0;
            continue;
        }
        if (options && ((a[0] == '-' && a[1] == '-') || strcmp(a, "-h") == 0)) {
            rc = parse_option(cmd, argc, argv, &i);
            if (rc != 0)
                return rc;
            continue;
        }
        if (cmd->positional == NULL) {
            fprintf(stderr, "%s: unexpected argument '%s'\n", cmd->prefix, a);
            rp_cli_help(cmd, stderr);
            return RP_EINVAL;
        }
        rc = cmd->positional(cmd->ud, a, cmd->prefix);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void rp_cli_help_opts(const rp_cli_opt_t *opts, size_t n, FILE *f)
{
    for (size_t k = 0; k < n; k++) {
        const rp_cli_opt_t *opt = &opts[k];
        if (opt->kind == RP_CLI_HEADING) {
            fputs(opt->help, f);
            continue;
        }
        if (opt->name == NULL || opt->help == NULL)
            continue;
        int w = fprintf(f, "  %s%s%s", opt->name, opt->arg ? " " : "", opt->arg ? opt->arg : "");
        if (opt->help[0] != '\n') /* a help starting on its own line needs no padding */
            fprintf(f, "%*s", w < HELP_COL ? HELP_COL - w : 2, "");
        for (const char *p = opt->help; *p; p++) {
            fputc(*p, f);
            if (*p == '\n' && p[1])
                fprintf(f, "%*s", HELP_COL, "");
        }
        if (opt->env && strstr(opt->help, opt->env) == NULL)
            fprintf(f, " (env %s)", opt->env);
        fputc('\n', f);
    }
}

void rp_cli_help(const rp_cli_cmd_t *cmd, FILE *f)
{
    if (cmd->usage)
        fputs(cmd->usage, f);
    for (size_t s = 0; s < cmd->nsets; s++)
        rp_cli_help_opts(cmd->sets[s].opts, cmd->sets[s].n, f);
    if (cmd->epilog)
        fputs(cmd->epilog, f);
}
