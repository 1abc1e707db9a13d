/* SPDX-License-Identifier: MIT */
#ifndef RP_CLI_WATCH_CLI_H
#define RP_CLI_WATCH_CLI_H

#include <uv.h>

#include "cli/opts.h"
#include "watch/watch.h"

/* The local-files pipeline's command-line side: the options `ragpulse watch` and `ragpulse
 * serve --watch` share, and the two sinks the watcher reports through: in-process into a hub
 * (serve --watch) and over HTTP to a hub elsewhere, with an on-disk queue (watch --hub). */

typedef struct rp_cli_watch_opts {
    rp_watch_config_t cfg;
    const char *dir;
    char pipeline_id[129];
    int index_given;
    char index_abs[4096]; /* the index's absolute path: never ingested */
} rp_cli_watch_opts_t;

/* Defaults; RAG_PIPELINE_ID / RAG_PIPELINE_TYPE are read with the table. */
void rp_cli_watch_opts_init(rp_cli_watch_opts_t *o);
/* The pipeline's options (`ragpulse watch` and `serve --watch`), filling an
 * rp_cli_watch_opts_t; errors name the option or RAG_PIPELINE_ID / RAG_PIPELINE_TYPE. */
extern const rp_cli_opt_t rp_cli_watch_opts[];
extern const size_t rp_cli_watch_nopts;
/* Fills what depends on the directory (the default pipeline id) and ignores the index file
 * (and its -wal, -shm) when it lies inside. 0 or -1 (printed). */
int rp_cli_watch_opts_finish(rp_cli_watch_opts_t *o, const char *prefix);

/* `serve --watch DIR`: starts a watcher reporting into hub (an rp_hub_t *) in-process.
 * Returns 0 or -1 (printed). */
int rp_cli_watch_serve_start(uv_loop_t *loop, void *hub, rp_cli_watch_opts_t *o);
/* Stops that watcher (pipeline:offline goes into the hub now). Call before freeing the hub. */
void rp_cli_watch_serve_stop(void);

int rp_cli_watch(int argc, char **argv);
int rp_cli_search(int argc, char **argv);

#endif
