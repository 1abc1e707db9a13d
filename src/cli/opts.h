/* SPDX-License-Identifier: MIT */
#ifndef RP_CLI_OPTS_H
#define RP_CLI_OPTS_H

#include <stddef.h>
#include <stdio.h>

/* Table-driven command-line options (redis config.c's `standardConfig static_configs[]`):
 * every subcommand describes its options as an array of rp_cli_opt_t, and one parser turns
 * the environment and argv into the fields of a struct, checks bounds, refuses unknown
 * options and prints --help, all from the same table. */

typedef enum rp_cli_kind {
    RP_CLI_HEADING,  /* not an option: `help` is printed as is between the options */
    RP_CLI_FLAG,     /* int field set to `value`; takes no argument */
    RP_CLI_INT,      /* int: a whole number in [min, max] */
    RP_CLI_UNSIGNED, /* unsigned: a whole number in [min, max] */
    RP_CLI_U32,      /* uint32_t: a whole number in [min, max] */
    RP_CLI_SIZE,     /* size_t: a whole number in [min, max] */
    RP_CLI_I64,      /* int64_t: a whole number in [min, max] */
    RP_CLI_DOUBLE,   /* double in [min, max] */
    RP_CLI_MS,       /* seconds (a decimal) in [min, max], stored as uint32_t milliseconds */
    RP_CLI_STRING,   /* const char *, borrowed from argv or the environment (process life) */
    RP_CLI_CUSTOM,   /* `parse` checks and stores the value */
} rp_cli_kind_t;

typedef struct rp_cli_opt rp_cli_opt_t;

/* A custom option's parser: stores `value` into `target` (the set's struct). `what` is how
 * errors name the value (the option, or the environment variable it came from), prefix the
 * command ("ragpulse serve"). Returns 0, or RP_EINVAL after printing what is wrong. */
typedef int (*rp_cli_parse_cb)(void *target, const rp_cli_opt_t *opt, const char *value,
                               const char *what, const char *prefix, int from_env);

struct rp_cli_opt {
    const char *name; /* "--listen"; NULL: read from `env` only, not on the command line */
    const char *arg;  /* the value's name in --help ("HOST:PORT"); NULL for a flag */
    rp_cli_kind_t kind;
    size_t off; /* offsetof the field in the set's struct */
    double min, max;
    const char *env;       /* environment variable read before argv (NULL: none) */
    const char *help;      /* help text; lines after a '\n' are indented to the text column */
    rp_cli_parse_cb parse; /* RP_CLI_CUSTOM */
    int value;             /* RP_CLI_FLAG: what the field is set to */
};

/* One table and the struct it fills. The parser writes `given`: the last option of this set
 * seen on the command line (serve refuses watch options without --watch). */
typedef struct rp_cli_optset {
    const rp_cli_opt_t *opts;
    size_t n;
    void *target;
    const char *given;
} rp_cli_optset_t;

/* Takes a positional argument (a non-option word). Returns 0, or RP_EINVAL after printing
 * what is wrong. */
typedef int (*rp_cli_positional_cb)(void *ud, const char *arg, const char *prefix);

typedef struct rp_cli_cmd {
    const char *prefix; /* "ragpulse serve": starts every error line */
    const char *usage;  /* printed before the options ("usage: ...\n\noptions:\n") */
    const char *epilog; /* printed after them (NULL: nothing) */
    rp_cli_optset_t *sets;
    size_t nsets;
    rp_cli_positional_cb positional; /* NULL: a positional argument is an error */
    void *ud;
} rp_cli_cmd_t;

#define RP_CLI_HELP 1 /* rp_cli_parse printed --help on stdout: exit 0 */

/* Applies each set's environment variables (set and non-empty), then argv[1..argc): options
 * (`--name value`, `--name=value`, a flag alone), positional words to cmd->positional, "--"
 * ends the options, -h and --help print the help. Returns 0, RP_CLI_HELP, or RP_EINVAL after
 * printing the reason (an unknown option also gets the help) on stderr. */
int rp_cli_parse(rp_cli_cmd_t *cmd, int argc, char **argv);

/* Writes cmd's help (usage, every set's options, epilog) to f. */
void rp_cli_help(const rp_cli_cmd_t *cmd, FILE *f);
/* Writes one table's option lines to f. */
void rp_cli_help_opts(const rp_cli_opt_t *opts, size_t n, FILE *f);

/* Looks `name` up in the sets; NULL when no table has it. */
const rp_cli_opt_t *rp_cli_find(const rp_cli_cmd_t *cmd, const char *name, size_t *set);

#define RP_CLI_COUNT(a) (sizeof(a) / sizeof((a)[0]))

#endif
