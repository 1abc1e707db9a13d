/* SPDX-License-Identifier: MIT */
#ifndef RP_CLI_SUPERVISOR_H
#define RP_CLI_SUPERVISOR_H

#include "cli/app.h"

#define RP_SUPERVISOR_MAX_WORKERS 64

/* Forks app->_opts->workers workers that each run rp_app_serve on the same port
 * (SO_REUSEPORT; port 0 is picked once, before the fork) and share broadcasts through the
 * workers cluster adapter over a mesh of Unix sockets. The supervisor prints the listening
 * line once every worker listens, forwards SIGINT/SIGTERM, and ends the group when a worker
 * dies. Never returns: the process exits with 0 after a clean stop, 1 otherwise. */
int rp_supervisor_run(rp_app_t *app);

#endif
