/* SPDX-License-Identifier: MIT */
/* `ragpulse watch DIR`, `ragpulse search QUERY`, and the in-process side of `serve --watch`.
 * This file parses the local-files pipeline's options, picks its sink (the hub in this
 * process, or one over HTTP: watch/sink.c), and runs the watcher (src/watch) until SIGINT or
 * SIGTERM, after which pipeline:offline is sent and what the sink still holds is delivered
 * or left in its on-disk queue. Exit status of watch: 0 clean stop, 1 runtime error, 2
 * usage. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "cli/watch_cli.h"
#include "hub/hub.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/log.h"
#include "watch/index.h"
#include "watch/sink.h"

void rp_cli_watch_opts_init(rp_cli_watch_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    rp_watch_config_defaults(&o->cfg);
    o->cfg.index_path = "ragpulse.db";
}

static int parse_pipeline(void *target, const rp_cli_opt_t *opt, const char *v, const char *what,
                          const char *prefix, int from_env)
{
    (void)opt;
    (void)from_env;
    rp_cli_watch_opts_t *o = target;
    size_t n = strlen(v);
    if (n > 128 || n == 0 ||
        strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") != n) {
        fprintf(stderr, "%s: %s wants 1 to 128 characters of A-Z a-z 0-9 . _ : -\n", prefix, what);
        return RP_EINVAL;
    }
    snprintf(o->pipeline_id, sizeof(o->pipeline_id), "%s", v);
    return 0;
}

static int parse_pipeline_type(void *target, const rp_cli_opt_t *opt, const char *v,
                               const char *what, const char *prefix, int from_env)
{
    (void)opt;
    (void)from_env;
    rp_cli_watch_opts_t *o = target;
    size_t n = strlen(v);
    if (n > 64 || n == 0 || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_") != n) {
        fprintf(stderr, "%s: %s wants 1 to 64 characters of a-z 0-9 _\n", prefix, what);
        return RP_EINVAL;
    }
    o->cfg.pipeline_type = v;
    return 0;
}

static int parse_index(void *target, const rp_cli_opt_t *opt, const char *v, const char *what,
                       const char *prefix, int from_env)
{
    (void)opt;
    (void)what;
    (void)prefix;
    (void)from_env;
    rp_cli_watch_opts_t *o = target;
    o->cfg.index_path = v;
    o->index_given = 1;
    return 0;
}

static int parse_exec(void *target, const rp_cli_opt_t *opt, const char *v, const char *what,
                      const char *prefix, int from_env)
{
    (void)opt;
    (void)from_env;
    rp_cli_watch_opts_t *o = target;
    if (*v == '\0') {
        fprintf(stderr, "%s: %s wants a command\n", prefix, what);
        return RP_EINVAL;
    }
    o->cfg.exec_cmd = v;
    return 0;
}

#define WOFF(f) offsetof(rp_cli_watch_opts_t, f)

const rp_cli_opt_t rp_cli_watch_opts[] = {
    {"--pipeline", "ID", RP_CLI_CUSTOM, 0, 0, 0, "RAG_PIPELINE_ID",
     "pipeline id of the events (env RAG_PIPELINE_ID; default\n"
     "local-files:<directory name>)",
     parse_pipeline, 0},
    {"--pipeline-type", "TYPE", RP_CLI_CUSTOM, 0, 0, 0, "RAG_PIPELINE_TYPE",
     "pipeline type (env RAG_PIPELINE_TYPE; default local_files)", parse_pipeline_type, 0},
    {"--index", "PATH", RP_CLI_CUSTOM, 0, 0, 0, NULL,
     "SQLite file of the full-text index (default ./ragpulse.db)", parse_index, 0},
    {"--settle", "S", RP_CLI_DOUBLE, WOFF(cfg.settle_s), 0.01, 3600, NULL,
     "a file is ingested once unchanged for S seconds (default 1)", NULL, 0},
    {"--heartbeat", "S", RP_CLI_DOUBLE, WOFF(cfg.heartbeat_s), 0.05, 86400, NULL,
     "heartbeat interval (default 30)", NULL, 0},
    {"--chunk-size", "BYTES", RP_CLI_SIZE, WOFF(cfg.chunk_size), 16, 1 << 24, NULL,
     "chunk size (default 1000)", NULL, 0},
    {"--chunk-overlap", "BYTES", RP_CLI_SIZE, WOFF(cfg.chunk_overlap), 0, 1 << 23, NULL,
     "bytes shared by neighbouring chunks (default 200)", NULL, 0},
    {"--max-file-size", "BYTES", RP_CLI_SIZE, WOFF(cfg.max_file_size), 1, 4.0 * 1024 * 1024 * 1024,
     NULL, "larger files fail as too_large (default 104857600)", NULL, 0},
    {"--pdf-timeout", "S", RP_CLI_DOUBLE, WOFF(cfg.pdf_timeout_s), 0.1, 86400, NULL,
     "limit for pdftotext on one PDF (default 60)", NULL, 0},
    {"--exec", "CMD", RP_CLI_CUSTOM, 0, 0, 0, NULL,
     "hand each file to this shell command instead of indexing it:\n"
     "CMD \"$FILE\" (its stdin is the file); stdout lines `progress 0.4\n"
     "STAGE` and `chunks N` are reported, exit status 0 is success,\n"
     "the stderr tail is the error text",
     parse_exec, 0},
    {"--exec-timeout", "S", RP_CLI_DOUBLE, WOFF(cfg.exec_timeout_s), 0, 864000, NULL,
     "limit for one --exec run (default 3600; 0: none)", NULL, 0},
    {"--jobs", "N", RP_CLI_UNSIGNED, WOFF(cfg.jobs), 1, 64, NULL,
     "files handed to --exec (or pdftotext) at the same time (default 1);\n"
     "other files go on meanwhile, each file's events stay in order",
     NULL, 0},
};
const size_t rp_cli_watch_nopts = RP_CLI_COUNT(rp_cli_watch_opts);

int rp_cli_watch_opts_finish(rp_cli_watch_opts_t *o, const char *prefix)
{
    if (o->cfg.chunk_overlap >= o->cfg.chunk_size / 2) {
        fprintf(stderr, "%s: --chunk-overlap (%zu) must be less than half of --chunk-size (%zu)\n",
                prefix, o->cfg.chunk_overlap, o->cfg.chunk_size);
        return -1;
    }
    o->cfg.dir = o->dir;
    if (o->pipeline_id[0] == '\0') {
        /* local-files:<name of the directory>, in the characters a pipeline id allows. */
        char real[PATH_MAX];
        const char *base = realpath(o->dir, real) ? strrchr(real, '/') : NULL;
        base = base && base[1] ? base + 1 : "root";
        int n = snprintf(o->pipeline_id, sizeof(o->pipeline_id), "local-files:");
        for (const char *c = base; *c && n < 128; c++)
            o->pipeline_id[n++] = (isalnum((unsigned char)*c) || strchr("._:-", *c)) ? *c : '_';
        o->pipeline_id[n] = '\0';
    }
    o->cfg.pipeline_id = o->pipeline_id;
    /* realpath of the index's directory + its name: the file may not exist yet. */
    char dir[PATH_MAX], real[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", o->cfg.index_path);
    char *slash = strrchr(dir, '/');
    const char *name = slash ? slash + 1 : dir;
    if (slash == dir)
        snprintf(real, sizeof(real), "/");
    else if (realpath(slash ? (*slash = '\0', dir) : ".", real) == NULL)
        snprintf(real, sizeof(real), ".");
    snprintf(o->index_abs, sizeof(o->index_abs), "%.3000s/%.1000s", strcmp(real, "/") ? real : "",
             name);
    o->cfg.ignore[3] = o->index_abs;
    return 0;
}

/* ---- the in-process sink: events go straight into the hub ---- */

typedef struct hub_sink {
    rp_watch_sink_t base;
    rp_hub_t *hub;
} hub_sink_t;

static void on_hub_done(void *ud, int status, int64_t id)
{
    (void)ud;
    if (status < 0)
        RP_LOG_ERROR("watch", "the hub could not store event %lld: %s", (long long)id,
                     uv_strerror(status));
}

static int hub_sink_emit(rp_watch_sink_t *s, json_t *ev)
{
    hub_sink_t *hs = (hub_sink_t *)s;
    rp_event_error_t err;
    int rc = rp_hub_ingest(hs->hub, ev, &err, on_hub_done, NULL);
    if (rc == RP_EINVAL)
        RP_LOG_ERROR("watch", "the hub refused a %s event: %s %s",
                     json_string_value(json_object_get(ev, "type")), err.field, err.rule);
    else if (rc < 0)
        RP_LOG_ERROR("watch", "the hub could not take an event: %s", uv_strerror(rc));
    json_decref(ev);
    return rc < 0 ? rc : 0;
}

static void hub_sink_close(rp_watch_sink_t *s, void (*done)(void *ud), void *ud)
{
    (void)s;
    if (done)
        done(ud);
}

static const rp_watch_sink_ops_t hub_sink_ops = {hub_sink_emit, hub_sink_close};

static hub_sink_t serve_sink;
static rp_watch_t *serve_watch;

int rp_cli_watch_serve_start(uv_loop_t *loop, void *hub, rp_cli_watch_opts_t *o)
{
    char err[1400];
    serve_sink.base.ops = &hub_sink_ops;
    serve_sink.hub = hub;
    if (rp_cli_watch_opts_finish(o, "ragpulse serve") < 0)
        return -1;
    serve_watch = rp_watch_new(loop, &o->cfg, &serve_sink.base, err, sizeof(err));
    if (serve_watch == NULL) {
        fprintf(stderr, "ragpulse serve: --watch: %s\n", err);
        return -1;
    }
    if (rp_watch_start(serve_watch, err, sizeof(err)) < 0) {
        fprintf(stderr, "ragpulse serve: --watch: %s\n", err);
        rp_watch_stop(serve_watch, NULL, NULL);
        serve_watch = NULL;
        return -1;
    }
    return 0;
}

void rp_cli_watch_serve_stop(void)
{
    if (serve_watch)
        rp_watch_stop(serve_watch, NULL, NULL);
    serve_watch = NULL;
}

/* ---- ragpulse watch ---- */

/* `ragpulse watch`'s own options (the pipeline's are rp_cli_watch_opts). */
typedef struct watch_args {
    rp_cli_watch_opts_t *o;
    const char *hub;
    const char *token;
    const char *queue;
    const char *level;
    size_t queue_max;
} watch_args_t;

static const rp_cli_opt_t watch_own_opts[] = {
    {"--hub", "URL", RP_CLI_STRING, offsetof(watch_args_t, hub), 0, 0, "RAGPULSE_HUB",
     "the hub (env RAGPULSE_HUB; default http://127.0.0.1:8103)", NULL, 0},
    {"--token", "JWT", RP_CLI_STRING, offsetof(watch_args_t, token), 0, 0, "RAGPULSE_TOKEN",
     "producer token when the hub has auth on (env RAGPULSE_TOKEN)", NULL, 0},
    {"--queue", "PATH", RP_CLI_STRING, offsetof(watch_args_t, queue), 0, 0, NULL,
     "on-disk queue of events not yet delivered (default\n"
     "./ragpulse-watch.queue; its offsets in PATH.state)",
     NULL, 0},
    {"--queue-max", "BYTES", RP_CLI_SIZE, offsetof(watch_args_t, queue_max), 4096, 1e12, NULL,
     "queue bound; events past it are dropped (default 67108864)", NULL, 0},
    {"--log-level", "LEVEL", RP_CLI_STRING, offsetof(watch_args_t, level), 0, 0,
     "RAGPULSE_LOG_LEVEL", "debug, info, warn, error (env RAGPULSE_LOG_LEVEL)", NULL, 0},
};

static const char watch_usage[] =
    "usage: ragpulse watch DIR [OPTIONS]\n\n"
    "Watches DIR (recursively), ingests every document that appears or changes (text,\n"
    "Markdown, CSV, JSON, HTML, PDF: extract, chunk, SQLite FTS5 index) and reports each\n"
    "step to a hub. `ragpulse search` queries the index. `ragpulse serve --watch DIR` runs\n"
    "the same pipeline inside the hub. Symbolic links are never followed: nothing outside\n"
    "DIR is read.\n\noptions:\n";

static int watch_dir_arg(void *ud, const char *arg, const char *prefix)
{
    watch_args_t *wa = ud;
    if (wa->o->dir) {
        fprintf(stderr, "%s: one directory only (got '%s' and '%s')\n", prefix, wa->o->dir, arg);
        return RP_EINVAL;
    }
    wa->o->dir = arg;
    return 0;
}

typedef struct watch_run {
    uv_loop_t *loop;
    rp_watch_t *w;
    rp_watch_sink_t *sink;
    uv_signal_t sigint, sigterm;
} watch_run_t;

static void on_close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_sink_closed(void *ud)
{
    watch_run_t *r = ud;
    uv_walk(r->loop, on_close_walk, NULL);
}

static void on_watch_stopped(void *ud)
{
    watch_run_t *r = ud;
    r->sink->ops->close(r->sink, on_sink_closed, r);
}

static void on_watch_signal(uv_signal_t *s, int signum)
{
    watch_run_t *r = s->data;
    RP_LOG_INFO("cli", "signal %d: stopping", signum);
    uv_signal_stop(&r->sigint);
    uv_signal_stop(&r->sigterm);
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
    rp_watch_stop(r->w, on_watch_stopped, r);
}

int rp_cli_watch(int argc, char **argv)
{
    rp_cli_watch_opts_t o;
    rp_cli_watch_opts_init(&o);
    watch_args_t wa = {&o,   "http://127.0.0.1:8103", NULL, "ragpulse-watch.queue",
                       NULL, 64u * 1024 * 1024};
    rp_cli_optset_t sets[] = {
        {rp_cli_watch_opts, rp_cli_watch_nopts, &o, NULL},
        {watch_own_opts, RP_CLI_COUNT(watch_own_opts), &wa, NULL},
    };
    rp_cli_cmd_t cmd = {"ragpulse watch",   watch_usage,   NULL, sets,
                        RP_CLI_COUNT(sets), watch_dir_arg, &wa};
    int prc = rp_cli_parse(&cmd, argc, argv);
    if (prc != 0)
        return prc == RP_CLI_HELP ? 0 : 2;
    const char *hub = wa.hub;
    const char *token = wa.token;
    const char *queue = wa.queue;
    const char *level = wa.level;
    if (level) {
        int l = rp_log_level_parse(level);
        if (l < 0) {
            fprintf(stderr, "ragpulse watch: --log-level wants debug, info, warn, error or off\n");
            return 2;
        }
        rp_log_level = l;
    }
    if (o.dir == NULL) {
        fprintf(stderr, "ragpulse watch: which directory? (ragpulse watch DIR)\n");
        rp_cli_help(&cmd, stderr);
        return 2;
    }
    if (rp_cli_watch_opts_finish(&o, "ragpulse watch") < 0)
        return 2;
    /* The queue never counts as a document, even inside DIR (nor does the index). */
    static char ig_queue[PATH_MAX];
    char real_dir[PATH_MAX];
    if (realpath(o.dir, real_dir) == NULL) {
        fprintf(stderr, "ragpulse watch: cannot watch %s: %s\n", o.dir, strerror(errno));
        return 2;
    }
    watch_run_t r = {0};
    r.loop = uv_default_loop();
    char err[1400];
    r.sink = rp_watch_net_sink_new(r.loop, hub, token, o.pipeline_id, queue, wa.queue_max,
                                   "ragpulse-watch/" RP_VERSION, err, sizeof(err));
    if (r.sink == NULL) {
        fprintf(stderr, "ragpulse watch: %s\n", err);
        return 1;
    }
    if (realpath(queue, ig_queue))
        o.cfg.ignore[0] = ig_queue;
    r.w = rp_watch_new(r.loop, &o.cfg, r.sink, err, sizeof(err));
    if (r.w == NULL) {
        fprintf(stderr, "ragpulse watch: %s\n", err);
        rp_watch_net_sink_free(r.sink);
        return 1;
    }
    int src = uv_signal_init(r.loop, &r.sigint);
    if (src == 0)
        src = uv_signal_init(r.loop, &r.sigterm);
    r.sigint.data = r.sigterm.data = &r;
    if (src == 0)
        src = uv_signal_start(&r.sigint, on_watch_signal, SIGINT);
    if (src == 0)
        src = uv_signal_start(&r.sigterm, on_watch_signal, SIGTERM);
    if (src < 0) {
        /* Without the handlers SIGTERM would kill the watcher before its queue is saved. */
        fprintf(stderr, "ragpulse watch: cannot handle signals: %s\n", uv_strerror(src));
        return 1;
    }
    if (rp_watch_start(r.w, err, sizeof(err)) < 0) {
        fprintf(stderr, "ragpulse watch: %s\n", err);
        return 1;
    }
    printf("watching %s (pipeline %s) -> %s\n", real_dir, o.pipeline_id, hub);
    fflush(stdout);
    uv_run(r.loop, UV_RUN_DEFAULT);
    rp_watch_net_sink_free(r.sink);
    uv_loop_close(r.loop);
    return 0;
}

/* ---- ragpulse search ---- */

typedef struct search_args {
    const char *query;
    const char *index;
    int limit;
    int fts;
    int json;
} search_args_t;

static const rp_cli_opt_t search_opts[] = {
    {"--fts", NULL, RP_CLI_FLAG, offsetof(search_args_t, fts), 0, 0, NULL,
     "QUERY in SQLite FTS5 syntax instead: \"an exact phrase\", prefix*,\n"
     "a OR b, a NOT b, NEAR(a b, 5), parentheses",
     NULL, 1},
    /* The default since plain words are; kept for old scripts. */
    {"--literal", NULL, RP_CLI_FLAG, offsetof(search_args_t, fts), 0, 0, NULL, NULL, NULL, 0},
    {"--limit", "N", RP_CLI_INT, offsetof(search_args_t, limit), 1, 1000, NULL,
     "at most N results (default 10)", NULL, 0},
    {"--index", "PATH", RP_CLI_STRING, offsetof(search_args_t, index), 0, 0, NULL,
     "the index (default ./ragpulse.db, or the sqlite: file of RAGPULSE_STORE)", NULL, 0},
    {"--json", NULL, RP_CLI_FLAG, offsetof(search_args_t, json), 0, 0, NULL,
     "one JSON object per result: path, chunk, start, end, score, snippet", NULL, 1},
};

static const char search_usage[] =
    "usage: ragpulse search QUERY [--fts] [--limit N] [--index PATH] [--json]\n\n"
    "Prints the chunks of the local-files index that best match QUERY (BM25), with the\n"
    "file, the chunk's position and a snippet ([matches] in brackets).\n\n"
    "QUERY is plain words, as typed: a chunk matches when it has every word (case and\n"
    "accents aside); a word with punctuation inside, obsidian-lantern, matches as that\n"
    "phrase. Nothing in QUERY is an operator.\n\n";

static const char search_epilog[] =
    "\nExit status: 0 found, 1 nothing found, 2 usage or (with --fts) query syntax error,\n"
    "3 no index.\n";

static int search_query_arg(void *ud, const char *arg, const char *prefix)
{
    search_args_t *sa = ud;
    if (sa->query) {
        fprintf(stderr, "%s: one query only (quote it: ragpulse search \"two words\")\n", prefix);
        return RP_EINVAL;
    }
    sa->query = arg;
    return 0;
}

typedef struct search_out {
    int json;
    int n;
} search_out_t;

static void on_hit(void *ud, const rp_watch_hit_t *h)
{
    search_out_t *so = ud;
    so->n++;
    if (so->json) {
        json_t *j =
            json_pack("{s:s,s:I,s:I,s:I,s:f,s:s}", "path", h->path, "chunk", (json_int_t)h->seq,
                      "start", (json_int_t)h->start, "end", (json_int_t)(h->start + h->len),
                      "score", -h->score, "snippet", h->snippet);
        char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(j);
        return;
    }
    printf("%d. %s  chunk %lld, bytes %lld-%lld  (score %.3f)\n", so->n, h->path, (long long)h->seq,
           (long long)h->start, (long long)(h->start + h->len), -h->score);
    /* The snippet on one line. */
    printf("   ");
    for (const char *c = h->snippet; *c; c++)
        putchar(*c == '\n' || *c == '\r' || *c == '\t' ? ' ' : *c);
    printf("\n");
}

int rp_cli_search(int argc, char **argv)
{
    search_args_t sa = {NULL, "ragpulse.db", 10, 0, 0};
    const char *store = getenv("RAGPULSE_STORE");
    if (store && strncmp(store, "sqlite:", 7) == 0 && store[7])
        sa.index = store + 7;
    rp_cli_optset_t sets[] = {{search_opts, RP_CLI_COUNT(search_opts), &sa, NULL}};
    rp_cli_cmd_t cmd = {"ragpulse search", search_usage, search_epilog, sets, 1,
                        search_query_arg,  &sa};
    int prc = rp_cli_parse(&cmd, argc, argv);
    if (prc != 0)
        return prc == RP_CLI_HELP ? 0 : 2;
    const char *query = sa.query;
    const char *index = sa.index;
    int limit = sa.limit;
    rp_watch_query_syntax_t syntax = sa.fts ? RP_WATCH_QUERY_FTS5 : RP_WATCH_QUERY_WORDS;
    search_out_t so = {sa.json, 0};
    if (query == NULL || strspn(query, " \t\r\n") == strlen(query)) {
        fprintf(stderr, "ragpulse search: what to search for? (ragpulse search \"QUERY\")\n");
        rp_cli_help(&cmd, stderr);
        return 2;
    }
    char err[1400];
    FILE *probe = fopen(index, "rb");
    if (probe == NULL) {
        fprintf(stderr,
                "ragpulse search: no index at %s (run `ragpulse watch DIR` or `ragpulse serve "
                "--watch DIR`"
                " first, or pass --index PATH)\n",
                index);
        return 3;
    }
    fclose(probe);
    rp_watch_index_t *ix = rp_watch_index_open(index, 1, err, sizeof(err));
    if (ix == NULL) {
        fprintf(stderr, "ragpulse search: %s\n", err);
        return 3;
    }
    long n = rp_watch_index_search(ix, query, syntax, (int)limit, on_hit, &so);
    int rc = n > 0 ? 0 : 1;
    if (n == RP_EINVAL) {
        fprintf(
            stderr,
            "ragpulse search: with --fts, the query is FTS5 syntax, and this one is not valid: %s\n"
            "  (FTS5: words, \"exact phrase\", prefix*, OR, NOT, NEAR(a b); without --fts the "
            "words are\n"
            "  searched as typed)\n",
            rp_watch_index_error(ix));
        rc = 2;
    } else if (n < 0) {
        fprintf(stderr, "ragpulse search: %s\n", rp_watch_index_error(ix));
        rc = 3;
    } else if (n == 0 && !so.json) {
        fprintf(stderr, "ragpulse search: nothing matches\n");
    }
    rp_watch_index_close(ix);
    return rc;
}
