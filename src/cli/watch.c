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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/watch_cli.h"
#include "hub/hub.h"
#include "util/alloc.h"
#include "util/log.h"
#include "watch/index.h"
#include "watch/sink.h"

const char rp_cli_watch_opts_usage[] =
    "  --pipeline ID             pipeline id of the events (env RAG_PIPELINE_ID; default\n"
    "                            local-files:<directory name>)\n"
    "  --pipeline-type TYPE      pipeline type (env RAG_PIPELINE_TYPE; default local_files)\n"
    "  --index PATH              SQLite file of the full-text index (default ./ragpulse.db)\n"
    "  --settle S                a file is ingested once unchanged for S seconds (default 1)\n"
    "  --heartbeat S             heartbeat interval (default 30)\n"
    "  --chunk-size BYTES        chunk size (default 1000)\n"
    "  --chunk-overlap BYTES     bytes shared by neighbouring chunks (default 200)\n"
    "  --max-file-size BYTES     larger files fail as too_large (default 104857600)\n"
    "  --pdf-timeout S           limit for pdftotext on one PDF (default 60)\n"
    "  --exec CMD                hand each file to this shell command instead of indexing it:\n"
    "                            CMD \"$FILE\" (its stdin is the file); stdout lines `progress 0.4\n"
    "                            STAGE` and `chunks N` are reported, exit status 0 is success,\n"
    "                            the stderr tail is the error text\n"
    "  --exec-timeout S          limit for one --exec run (default 3600; 0: none)\n"
    "  --jobs N                  files handed to --exec (or pdftotext) at the same time (default 1);\n"
    "                            other files go on meanwhile, each file's events stay in order\n";

void rp_cli_watch_opts_init(rp_cli_watch_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    rp_watch_config_defaults(&o->cfg);
    const char *v = getenv("RAG_PIPELINE_ID");
    if (v && *v)
        snprintf(o->pipeline_id, sizeof(o->pipeline_id), "%s", v);
    v = getenv("RAG_PIPELINE_TYPE");
    if (v && *v)
        o->cfg.pipeline_type = v;
    o->cfg.index_path = "ragpulse.db";
}

static int num(const char *prefix, const char *name, const char *v, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double d = v ? strtod(v, &end) : 0;
    if (v == NULL || *v == '\0' || *end != '\0' || errno || !(d >= min && d <= max)) {
        fprintf(stderr, "%s: %s wants a number from %g to %g, got '%s'\n", prefix, name, min, max, v ? v : "");
        return -1;
    }
    *out = d;
    return 0;
}

int rp_cli_watch_opts_parse(rp_cli_watch_opts_t *o, int argc, char **argv, int *i, const char *prefix)
{
    static const char *const names[] = {"--pipeline",
                                        "--pipeline-type",
                                        "--index",
                                        "--settle",
                                        "--heartbeat",
                                        "--chunk-size",
                                        "--chunk-overlap",
                                        "--max-file-size",
                                        "--pdf-timeout",
                                        "--exec",
                                        "--exec-timeout",
                                        "--jobs",
                                        NULL};
    const char *a = argv[*i];
    int k = -1;
    for (int n = 0; names[n]; n++)
        if (strcmp(a, names[n]) == 0)
            k = n;
    if (k < 0)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value\n", prefix, a);
        return -1;
    }
    const char *v = argv[++*i];
    double d;
    o->given = names[k];
    switch (k) {
    case 0:
        if (strlen(v) > 128 ||
            strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") != strlen(v) || !*v) {
            fprintf(stderr, "%s: --pipeline wants 1 to 128 characters of A-Z a-z 0-9 . _ : -\n", prefix);
            return -1;
        }
        snprintf(o->pipeline_id, sizeof(o->pipeline_id), "%s", v);
        return 1;
    case 1:
        if (strlen(v) > 64 || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(v) || !*v) {
            fprintf(stderr, "%s: --pipeline-type wants 1 to 64 characters of a-z 0-9 _\n", prefix);
            return -1;
        }
        o->cfg.pipeline_type = v;
        return 1;
    case 2:
        o->cfg.index_path = v;
        o->index_given = 1;
        return 1;
    case 3:
        if (num(prefix, a, v, 0.01, 3600, &d) < 0)
            return -1;
        o->cfg.settle_s = d;
        return 1;
    case 4:
        if (num(prefix, a, v, 0.05, 86400, &d) < 0)
            return -1;
        o->cfg.heartbeat_s = d;
        return 1;
    case 5:
        if (num(prefix, a, v, 16, 1 << 24, &d) < 0)
            return -1;
        o->cfg.chunk_size = (size_t)d;
        return 1;
    case 6:
        if (num(prefix, a, v, 0, 1 << 23, &d) < 0)
            return -1;
        o->cfg.chunk_overlap = (size_t)d;
        return 1;
    case 7:
        if (num(prefix, a, v, 1, 4.0 * 1024 * 1024 * 1024, &d) < 0)
            return -1;
        o->cfg.max_file_size = (size_t)d;
        return 1;
    case 8:
        if (num(prefix, a, v, 0.1, 86400, &d) < 0)
            return -1;
        o->cfg.pdf_timeout_s = d;
        return 1;
    case 9:
        if (!*v) {
            fprintf(stderr, "%s: --exec wants a command\n", prefix);
            return -1;
        }
        o->cfg.exec_cmd = v;
        return 1;
    case 10:
        if (num(prefix, a, v, 0, 864000, &d) < 0)
            return -1;
        o->cfg.exec_timeout_s = d;
        return 1;
    default:
        if (num(prefix, a, v, 1, 64, &d) < 0)
            return -1;
        if (d != (double)(unsigned)d) {
            fprintf(stderr, "%s: --jobs wants a whole number\n", prefix);
            return -1;
        }
        o->cfg.jobs = (unsigned)d;
        return 1;
    }
}

int rp_cli_watch_opts_finish(rp_cli_watch_opts_t *o, const char *prefix)
{
    if (o->cfg.chunk_overlap >= o->cfg.chunk_size / 2) {
        fprintf(stderr, "%s: --chunk-overlap (%zu) must be less than half of --chunk-size (%zu)\n", prefix,
                o->cfg.chunk_overlap, o->cfg.chunk_size);
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
    snprintf(o->index_abs, sizeof(o->index_abs), "%.3000s/%.1000s", strcmp(real, "/") ? real : "", name);
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
        RP_LOG_ERROR("watch", "the hub could not store event %lld: %s", (long long)id, uv_strerror(status));
}

static int hub_sink_emit(rp_watch_sink_t *s, json_t *ev)
{
    hub_sink_t *hs = (hub_sink_t *)s;
    rp_event_error_t err;
    int rc = rp_hub_ingest(hs->hub, ev, &err, on_hub_done, NULL);
    if (rc == -1)
        RP_LOG_ERROR("watch", "the hub refused a %s event: %s %s", json_string_value(json_object_get(ev, "type")),
                     err.field, err.rule);
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

static void watch_usage(FILE *f)
{
    fprintf(f,
            "usage: ragpulse watch DIR [OPTIONS]\n\n"
            "Watches DIR (recursively), ingests every document that appears or changes (text,\n"
            "Markdown, CSV, JSON, HTML, PDF: extract, chunk, SQLite FTS5 index) and reports each\n"
            "step to a hub. `ragpulse search` queries the index. `ragpulse serve --watch DIR` runs\n"
            "the same pipeline inside the hub. Symbolic links are never followed: nothing outside\n"
            "DIR is read.\n\noptions:\n%s"
            "  --hub URL                 the hub (env RAGPULSE_HUB; default http://127.0.0.1:8103)\n"
            "  --token JWT               producer token when the hub has auth on (env RAGPULSE_TOKEN)\n"
            "  --queue PATH              on-disk queue of events not yet delivered (default\n"
            "                            ./ragpulse-watch.queue; its offsets in PATH.state)\n"
            "  --queue-max BYTES         queue bound; events past it are dropped (default 67108864)\n"
            "  --log-level LEVEL         debug, info, warn, error (env RAGPULSE_LOG_LEVEL)\n",
            rp_cli_watch_opts_usage);
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

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

int rp_cli_watch(int argc, char **argv)
{
    rp_cli_watch_opts_t o;
    rp_cli_watch_opts_init(&o);
    const char *hub = env_or("RAGPULSE_HUB", "http://127.0.0.1:8103");
    const char *token = env_or("RAGPULSE_TOKEN", NULL);
    const char *queue = "ragpulse-watch.queue";
    const char *level = env_or("RAGPULSE_LOG_LEVEL", NULL);
    double queue_max = 64.0 * 1024 * 1024;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            watch_usage(stdout);
            return 0;
        }
        int rc = rp_cli_watch_opts_parse(&o, argc, argv, &i, "ragpulse watch");
        if (rc < 0)
            return 2;
        if (rc > 0)
            continue;
        if (a[0] != '-') {
            if (o.dir) {
                fprintf(stderr, "ragpulse watch: one directory only (got '%s' and '%s')\n", o.dir, a);
                return 2;
            }
            o.dir = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ragpulse watch: unknown option '%s' (or it needs a value)\n", a);
            watch_usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--hub") == 0)
            hub = v;
        else if (strcmp(a, "--token") == 0)
            token = v;
        else if (strcmp(a, "--queue") == 0)
            queue = v;
        else if (strcmp(a, "--log-level") == 0)
            level = v;
        else if (strcmp(a, "--queue-max") == 0) {
            if (num("ragpulse watch", a, v, 4096, 1e12, &queue_max) < 0)
                return 2;
        } else {
            fprintf(stderr, "ragpulse watch: unknown option '%s'\n", a);
            watch_usage(stderr);
            return 2;
        }
    }
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
        watch_usage(stderr);
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
    r.sink = rp_watch_net_sink_new(r.loop, hub, token, o.pipeline_id, queue, (size_t)queue_max,
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
    uv_signal_init(r.loop, &r.sigint);
    uv_signal_init(r.loop, &r.sigterm);
    r.sigint.data = r.sigterm.data = &r;
    uv_signal_start(&r.sigint, on_watch_signal, SIGINT);
    uv_signal_start(&r.sigterm, on_watch_signal, SIGTERM);
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

static void search_usage(FILE *f)
{
    fprintf(f, "usage: ragpulse search QUERY [--fts] [--limit N] [--index PATH] [--json]\n\n"
               "Prints the chunks of the local-files index that best match QUERY (BM25), with the\n"
               "file, the chunk's position and a snippet ([matches] in brackets).\n\n"
               "QUERY is plain words, as typed: a chunk matches when it has every word (case and\n"
               "accents aside); a word with punctuation inside, obsidian-lantern, matches as that\n"
               "phrase. Nothing in QUERY is an operator.\n\n"
               "  --fts          QUERY in SQLite FTS5 syntax instead: \"an exact phrase\", prefix*,\n"
               "                 a OR b, a NOT b, NEAR(a b, 5), parentheses\n"
               "  --limit N      at most N results (default 10)\n"
               "  --index PATH   the index (default ./ragpulse.db, or the sqlite: file of RAGPULSE_STORE)\n"
               "  --json         one JSON object per result: path, chunk, start, end, score, snippet\n\n"
               "Exit status: 0 found, 1 nothing found, 2 usage or (with --fts) query syntax error,\n"
               "3 no index.\n");
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
        json_t *j = json_pack("{s:s,s:I,s:I,s:I,s:f,s:s}", "path", h->path, "chunk", (json_int_t)h->seq, "start",
                              (json_int_t)h->start, "end", (json_int_t)(h->start + h->len), "score", -h->score,
                              "snippet", h->snippet);
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
    const char *query = NULL;
    const char *index = "ragpulse.db";
    const char *store = getenv("RAGPULSE_STORE");
    if (store && strncmp(store, "sqlite:", 7) == 0 && store[7])
        index = store + 7;
    double limit = 10;
    rp_watch_query_syntax_t syntax = RP_WATCH_QUERY_WORDS;
    search_out_t so = {0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            search_usage(stdout);
            return 0;
        }
        if (strcmp(a, "--fts") == 0) {
            syntax = RP_WATCH_QUERY_FTS5;
        } else if (strcmp(a, "--literal") == 0) {
            syntax = RP_WATCH_QUERY_WORDS; /* the default since plain words are; kept for old scripts */
        } else if (strcmp(a, "--json") == 0) {
            so.json = 1;
        } else if (strcmp(a, "--limit") == 0 || strcmp(a, "--index") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "ragpulse search: %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (strcmp(a, "--index") == 0)
                index = v;
            else if (num("ragpulse search", a, v, 1, 1000, &limit) < 0)
                return 2;
        } else if (a[0] == '-' && a[1] == '-' && query == NULL && a[2] != '\0') {
            fprintf(stderr, "ragpulse search: unknown option '%s'\n", a);
            search_usage(stderr);
            return 2;
        } else if (query == NULL) {
            query = a;
        } else {
            fprintf(stderr, "ragpulse search: one query only (quote it: ragpulse search \"two words\")\n");
            return 2;
        }
    }
    if (query == NULL || strspn(query, " \t\r\n") == strlen(query)) {
        fprintf(stderr, "ragpulse search: what to search for? (ragpulse search \"QUERY\")\n");
        search_usage(stderr);
        return 2;
    }
    char err[1400];
    FILE *probe = fopen(index, "rb");
    if (probe == NULL) {
        fprintf(stderr,
                "ragpulse search: no index at %s (run `ragpulse watch DIR` or `ragpulse serve --watch DIR`"
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
    if (n == -2) {
        fprintf(stderr,
                "ragpulse search: with --fts, the query is FTS5 syntax, and this one is not valid: %s\n"
                "  (FTS5: words, \"exact phrase\", prefix*, OR, NOT, NEAR(a b); without --fts the words are\n"
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
