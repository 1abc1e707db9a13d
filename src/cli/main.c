/* SPDX-License-Identifier: MIT */
/* ragpulse: the command-line entry point. Subcommands live in their own files; this one
 * only picks which. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/watch_cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: ragpulse COMMAND [OPTIONS]\n\n"
               "commands:\n"
               "  serve     run the status hub (Socket.IO + HTTP) on 127.0.0.1:8103\n"
               "  emit      report one pipeline event to a hub (for shell scripts)\n"
               "  token     print a signed access token (viewer, producer, admin)\n"
               "  watch     watch a folder: ingest its documents into a searchable index, report each step\n"
               "  search    search the documents `watch` ingested (SQLite FTS5, BM25)\n"
               "  version   print the version\n\n"
               "`ragpulse COMMAND --help` describes a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "serve") == 0)
        return rp_cli_serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "emit") == 0)
        return rp_cli_emit(argc - 1, argv + 1);
    if (strcmp(argv[1], "token") == 0)
        return rp_cli_token(argc - 1, argv + 1);
    if (strcmp(argv[1], "watch") == 0)
        return rp_cli_watch(argc - 1, argv + 1);
    if (strcmp(argv[1], "search") == 0)
        return rp_cli_search(argc - 1, argv + 1);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("ragpulse %s\n", RP_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "ragpulse: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
