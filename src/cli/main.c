/* SPDX-License-Identifier: MIT */
/* ragpulse: the command-line entry point. Subcommands live in their own files and parse
 * their own options (cli/opts.h tables); this one only picks which, from a table of names. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/watch_cli.h"

static int version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("ragpulse %s\n", RP_VERSION);
    return 0;
}

static int help(int argc, char **argv);

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help; /* NULL: an alias, not listed */
} commands[] = {
    {"serve", rp_cli_serve, "run the status hub (Socket.IO + HTTP) on 127.0.0.1:8103"},
    {"emit", rp_cli_emit, "report one pipeline event to a hub (for shell scripts)"},
    {"token", rp_cli_token, "print a signed access token (viewer, producer, admin)"},
    {"watch", rp_cli_watch,
     "watch a folder: ingest its documents into a searchable index, report each step"},
    {"search", rp_cli_search, "search the documents `watch` ingested (SQLite FTS5, BM25)"},
    {"version", version, "print the version"},
    {"--version", version, NULL},
    {"help", help, NULL},
    {"--help", help, NULL},
    {"-h", help, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: ragpulse COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
        if (commands[k].help)
            fprintf(f, "  %-9s %s\n", commands[k].name, commands[k].help);
    fprintf(f, "\n`ragpulse COMMAND --help` describes a command's options.\n");
}

static int help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    usage(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
        if (strcmp(name, commands[k].name) == 0)
            return commands[k].run(argc - 1, argv + 1);
    fprintf(stderr, "ragpulse: unknown command '%s'\n", name);
    usage(stderr);
    return 2;
}
