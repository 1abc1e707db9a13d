/* SPDX-License-Identifier: MIT */
#ifndef RP_CLI_CLI_H
#define RP_CLI_CLI_H

#define RP_VERSION "0.1.0"

/* Subcommands: each takes argv starting at its own name and returns the exit status. */
int rp_cli_serve(int argc, char **argv);
int rp_cli_emit(int argc, char **argv);
int rp_cli_token(int argc, char **argv);

#endif
