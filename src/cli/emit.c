/* SPDX-License-Identifier: MIT */
/* `ragpulse emit TYPE --pipeline ID [...]`: report one pipeline event to a hub from a shell
 * script. Builds the event, POSTs it to the hub's /api/events with the HTTP client
 * (http/client.h) on a loop of its own, run once until the answer is in, and prints the id
 * the hub assigned. `ragpulse emit --channel NAME [--op OP] [--key K] [--ttl-ms N] VALUE`
 * publishes one channel message instead (POST /api/channels/NAME, the value from the
 * argument or stdin) and prints the hub's JSON answer. Exit status:
 * 0 accepted, 1 refused (the hub's reason on stderr), 2 usage, 3 hub unreachable. */
#include <ctype.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "http/client.h"
#include "hub/event.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/url.h"

/* One POST through the HTTP client, on a loop of its own run until the answer is in. */
typedef struct post {
    rp_http_client_t http;
    int rc;     /* the client's outcome: 0 or negative */
    int status; /* the HTTP status when rc is 0 */
    rp_buf_t *out;
} post_t;

static void on_posted(rp_http_client_t *c, int rc, const rp_http_answer_t *a, void *ud)
{
    post_t *p = ud;
    (void)c;
    p->rc = rc;
    p->status = a->status;
    if (rc == 0 && rp_buf_append(p->out, a->body, a->body_len) < 0)
        p->rc = RP_ETOOBIG;
}

/* POSTs body to url's prefix + path; returns the HTTP status with the response body in out,
 * or a negative code (*why then says what went wrong, for the user). */
static int http_post(const char *url, const char *path, const char *body, const char *token,
                     rp_buf_t *out, const char **why)
{
    rp_url_t u;
    if (rp_url_parse(&u, url, why) < 0)
        return RP_EINVAL;
    if (token && (strpbrk(token, "\r\n") || strlen(token) > 8192)) {
        *why = "the token is not a token";
        return RP_EINVAL;
    }
    char headers[8400];
    snprintf(headers, sizeof(headers), "%s%s%sUser-Agent: ragpulse-emit/" RP_VERSION "\r\n",
             token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "");
    uv_loop_t loop;
    int rc = uv_loop_init(&loop);
    if (rc < 0) {
        *why = uv_strerror(rc);
        return rc;
    }
    post_t p = {.rc = 1, .out = out};
    rc = rp_http_client_init(&p.http, &loop, &u, 1 << 20);
    if (rc < 0) {
        *why = uv_strerror(rc);
        goto undo_loop;
    }
    rc = rp_http_client_request(&p.http, "POST", path, headers, body, strlen(body), 10000,
                                on_posted, &p);
    if (rc == 0) {
        (void)uv_run(&loop, UV_RUN_DEFAULT); /* returns once the request has called back */
        rc = p.rc < 0 ? p.rc : p.status;
    }
    if (rc < 0)
        *why = rc == UV_ETIMEDOUT                ? "no answer in 10 s"
               : rc == RP_EPROTO || rc == UV_EOF ? "bad response"
               : rc == RP_ETOOBIG                ? "the answer is too large"
                                                 : uv_strerror(rc);
    rp_http_client_close(&p.http, NULL);
    (void)uv_run(&loop, UV_RUN_DEFAULT); /* runs the close callbacks */
undo_loop:
    if (uv_loop_close(&loop) < 0 && rc >= 0)
        rc = UV_EBUSY; /* a handle left open: our bug, not the hub's */
    return rc;
}

static int set_num(json_t *obj, const char *key, const char *v, int integer)
{
    char *end;
    if (integer) {
        long long n = strtoll(v, &end, 10);
        if (*v == '\0' || *end)
            return -1;
        return json_object_set_new(obj, key, json_integer(n));
    }
    double d = strtod(v, &end);
    if (*v == '\0' || *end)
        return -1;
    return json_object_set_new(obj, key, json_real(d));
}

/* The pipeline id when neither --pipeline nor RAG_PIPELINE_ID gives one: "<type>:<host name>",
 * in the characters a pipeline id allows (others become '_'), at most 128. Stable, so the
 * emits of one script on one host report one pipeline. */
static void default_pipeline_id(char *out, size_t outlen, const char *type)
{
    char host[256];
    if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    int n = snprintf(out, outlen, "%.64s:%s", type, host);
    size_t len = n < 0 ? 0 : (size_t)n < outlen ? (size_t)n : outlen - 1;
    if (len > 128)
        len = 128;
    out[len] = '\0';
    for (size_t i = 0; i < len; i++)
        if (!(isalnum((unsigned char)out[i]) || strchr("._:-", out[i])))
            out[i] = '_';
}

/* What emit's command line gives: strings as typed (numbers are checked when the event is
 * built, so the error names the option). */
typedef struct emit_args {
    const char *type; /* the positional argument: the event TYPE, or with --channel the value */
    const char *channel;
    const char *op;
    const char *key;
    int64_t ttl_ms; /* -1: not given */
    const char *hub;
    const char *token;
    const char *pid;
    const char *ptype;
    const char *file_name;
    const char *file_id;
    const char *size, *mime, *progress, *stage, *chunks, *attempt;
    const char *error, *error_kind, *error_code;
    int retryable;
    const char *status, *message, *heartbeat_interval, *files_total, *files_pending;
} emit_args_t;

#define EOFF(f) offsetof(emit_args_t, f)
#define EMIT_STR(name, arg, field, env, help)                                                      \
    {                                                                                              \
        name, arg, RP_CLI_STRING, EOFF(field), 0, 0, env, help, NULL, 0                            \
    }

static const rp_cli_opt_t emit_opts[] = {
    EMIT_STR("--channel", "NAME", channel, NULL,
             "publish VALUE_JSON (or stdin) to channel NAME instead of an event"),
    EMIT_STR("--op", "OP", op, NULL,
             "with --channel: set, patch, delete or append (default: the\n"
             "channel's, append on a stream, set on a state channel)"),
    EMIT_STR("--key", "K", key, NULL, "with --channel: the entry's key (state channels)"),
    {"--ttl-ms", "N", RP_CLI_I64, EOFF(ttl_ms), 0, 9007199254740991.0, NULL,
     "with --channel: remove the entry N ms after its last change", NULL, 0},
    EMIT_STR("--pipeline", "ID", pid, "RAG_PIPELINE_ID",
             "pipeline id (env RAG_PIPELINE_ID; default TYPE:HOSTNAME, the\n"
             "pipeline type and this host's name: the same on every run)"),
    EMIT_STR("--type", "TYPE", ptype, "RAG_PIPELINE_TYPE",
             "pipeline type, e.g. local_files (env RAG_PIPELINE_TYPE; default custom)"),
    EMIT_STR("--hub", "URL", hub, "RAGPULSE_HUB",
             "hub address (env RAGPULSE_HUB; default http://127.0.0.1:8103)"),
    EMIT_STR("--token", "TOKEN", token, "RAGPULSE_TOKEN",
             "a producer token when the hub has auth on (env RAGPULSE_TOKEN)"),
    EMIT_STR("--file", "NAME", file_name, NULL, "the file (file events); --file-id defaults to it"),
    EMIT_STR("--file-id", "ID", file_id, NULL, "the file's id (default: --file)"),
    EMIT_STR("--size", "BYTES", size, NULL, "the file's size"),
    EMIT_STR("--mime", "TYPE", mime, NULL, "the file's MIME type"),
    EMIT_STR("--progress", "0..1", progress, NULL, "progress of file:progress"),
    EMIT_STR("--stage", "NAME", stage, NULL, "the stage the file is in"),
    EMIT_STR("--chunks", "N", chunks, NULL, "chunks made from the file"),
    EMIT_STR("--attempt", "N", attempt, NULL, "which attempt this is"),
    EMIT_STR("--error", "MESSAGE", error, NULL, "why the file failed (file:failed)"),
    EMIT_STR("--error-kind", "KIND", error_kind, NULL, "the failure's kind"),
    EMIT_STR("--error-code", "CODE", error_code, NULL, "the failure's code"),
    {"--retryable", NULL, RP_CLI_FLAG, EOFF(retryable), 0, 0, NULL, "the failure may be retried",
     NULL, 1},
    EMIT_STR("--status", "STATUS", status, NULL,
             "online, offline, running, idle, error (status:update)"),
    EMIT_STR("--message", "TEXT", message, NULL, "a status message"),
    EMIT_STR("--heartbeat-interval", "SECONDS", heartbeat_interval, NULL,
             "how often the pipeline beats"),
    EMIT_STR("--files-total", "N", files_total, NULL, "files the pipeline knows"),
    EMIT_STR("--files-pending", "N", files_pending, NULL, "files waiting"),
};

static const char emit_usage[] =
    "usage: ragpulse emit TYPE [--pipeline ID] [OPTIONS]\n"
    "       ragpulse emit --channel NAME [--op set|patch|delete|append] [--key K]\n"
    "                     [--ttl-ms N] [VALUE_JSON]\n\n"
    "TYPE is one of pipeline:online, pipeline:offline, file:processing, file:progress,\n"
    "file:completed, file:failed, file:deleted, status:update, heartbeat.\n"
    "With --channel, VALUE_JSON (read from stdin when not given, except for delete) is\n"
    "published to the channel and the hub's answer printed.\n\noptions:\n";

static int emit_type_arg(void *ud, const char *arg, const char *prefix)
{
    emit_args_t *ea = ud;
    if (ea->type) {
        fprintf(stderr, "%s: one argument only (got '%s' and '%s')\n", prefix, ea->type, arg);
        return RP_EINVAL;
    }
    ea->type = arg;
    return 0;
}

/* Fills ev, file and err from the arguments. Returns 0, or RP_EINVAL after printing which
 * number is not one. */
static int emit_build(const emit_args_t *ea, json_t *ev, json_t *file, json_t *err)
{
    const struct {
        const char *opt, *v, *key;
        json_t *obj;
        int integer;
    } nums[] = {
        {"--size", ea->size, "size", file, 1},
        {"--progress", ea->progress, "progress", file, 0},
        {"--chunks", ea->chunks, "chunks", file, 1},
        {"--attempt", ea->attempt, "attempt", file, 1},
        {"--heartbeat-interval", ea->heartbeat_interval, "heartbeat_interval", ev, 0},
        {"--files-total", ea->files_total, "files_total", ev, 1},
        {"--files-pending", ea->files_pending, "files_pending", ev, 1},
    };
    const struct {
        const char *v, *key;
        json_t *obj;
    } strs[] = {
        {ea->mime, "mime_type", file}, {ea->stage, "stage", file},    {ea->error, "message", err},
        {ea->error_kind, "kind", err}, {ea->error_code, "code", err}, {ea->status, "status", ev},
        {ea->message, "message", ev},
    };
    json_object_set_new(ev, "type", json_string(ea->type));
    for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
        if (nums[k].v && set_num(nums[k].obj, nums[k].key, nums[k].v, nums[k].integer)) {
            fprintf(stderr, "ragpulse emit: %s wants a number, got '%s'\n", nums[k].opt, nums[k].v);
            return RP_EINVAL;
        }
    }
    for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
        if (strs[k].v)
            json_object_set_new(strs[k].obj, strs[k].key, json_string(strs[k].v));
    if (ea->retryable)
        json_object_set_new(err, "retryable", json_true());
    return 0;
}

/* ---- --channel: one channel message ---- */

#define MAX_VALUE (16u << 20) /* the hub's largest max_message_bytes */

/* 1 when name is a channel name: 1..128 of [A-Za-z0-9_.:@-] (the contract's rule, checked
 * here too so a bad name never becomes a request path). */
static int channel_name_valid(const char *name)
{
    size_t n = strlen(name);
    return n >= 1 && n <= 128 &&
           strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:@-") == n;
}

/* Reads stdin to its end into out (at most MAX_VALUE bytes). Returns 0, RP_ETOOBIG, or
 * UV_EIO. */
static int read_stdin(rp_buf_t *out)
{
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
        if (rp_buf_append(out, chunk, n) < 0)
            return RP_ETOOBIG;
    return ferror(stdin) ? UV_EIO : 0;
}

/* The message body from the arguments, or NULL after printing why (the caller exits 2). */
static json_t *channel_message(const emit_args_t *ea)
{
    static const char *const ops[] = {"set", "patch", "delete", "append"};
    int op_ok = ea->op == NULL;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]) && !op_ok; i++)
        op_ok = strcmp(ea->op, ops[i]) == 0;
    if (!channel_name_valid(ea->channel)) {
        fprintf(stderr, "ragpulse emit: invalid channel name '%.140s' (1..128 of A-Za-z0-9_.:@-)\n",
                ea->channel);
        return NULL;
    }
    if (!op_ok) {
        fprintf(stderr, "ragpulse emit: --op must be set, patch, delete or append, got '%s'\n",
                ea->op);
        return NULL;
    }
    int is_delete = ea->op && strcmp(ea->op, "delete") == 0;
    json_t *value = NULL;
    json_error_t jerr;
    if (ea->type) {
        value = json_loads(ea->type, JSON_DECODE_ANY, &jerr);
    } else if (!is_delete) {
        rp_buf_t in;
        rp_buf_init(&in, MAX_VALUE);
        int rc = read_stdin(&in);
        if (rc < 0)
            fprintf(stderr, "ragpulse emit: cannot read the value from stdin: %s\n",
                    rc == RP_ETOOBIG ? "over 16 MiB" : "read error");
        else
            value = json_loadb(in.data ? in.data : "", in.len, JSON_DECODE_ANY, &jerr);
        rp_buf_deinit(&in);
        if (rc < 0)
            return NULL;
    }
    if (value == NULL && !is_delete) {
        fprintf(stderr, "ragpulse emit: the value is not JSON (%s at %d:%d)\n", jerr.text,
                jerr.line, jerr.column);
        return NULL;
    }
    json_t *m = json_object();
    if (m == NULL) {
        json_decref(value);
        fprintf(stderr, "ragpulse emit: out of memory\n");
        return NULL;
    }
    int rc = 0;
    if (ea->op)
        rc |= json_object_set_new(m, "op", json_string(ea->op));
    if (ea->key)
        rc |= json_object_set_new(m, "key", json_string(ea->key));
    if (value)
        rc |= json_object_set_new(m, "value", value);
    if (ea->ttl_ms >= 0)
        rc |= json_object_set_new(m, "ttl_ms", json_integer((json_int_t)ea->ttl_ms));
    if (rc != 0) {
        int bad_key = ea->key && !json_is_string(json_object_get(m, "key"));
        json_decref(m);
        fprintf(stderr, "ragpulse emit: %s\n", bad_key ? "--key is not UTF-8" : "out of memory");
        return NULL;
    }
    return m;
}

/* `emit --channel`: posts the message, prints the answer. Returns the exit status. */
static int emit_channel(const emit_args_t *ea)
{
    json_t *m = channel_message(ea);
    if (m == NULL)
        return 2;
    char *body = json_dumps(m, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    json_decref(m);
    char path[160];
    snprintf(path, sizeof(path), "/api/channels/%s", ea->channel);
    rp_buf_t resp;
    rp_buf_init(&resp, 1 << 20);
    const char *why = "out of memory";
    int status = body ? http_post(ea->hub, path, body, ea->token, &resp, &why) : UV_ENOMEM;
    free(body);
    int rc;
    if (status < 0) {
        fprintf(stderr, "ragpulse emit: cannot reach the hub at %s: %s\n", ea->hub, why);
        rc = 3;
    } else if (status == 200) {
        printf("%.*s\n", (int)resp.len, resp.data ? resp.data : "");
        rc = 0;
    } else {
        fprintf(stderr, "ragpulse emit: the hub refused the message (HTTP %d): %.*s\n", status,
                (int)resp.len, resp.data ? resp.data : "");
        rc = 1;
    }
    rp_buf_deinit(&resp);
    return rc;
}

int rp_cli_emit(int argc, char **argv)
{
    emit_args_t ea = {0};
    ea.hub = "http://127.0.0.1:8103";
    ea.ptype = "custom";
    ea.ttl_ms = -1;
    rp_cli_optset_t sets[] = {{emit_opts, RP_CLI_COUNT(emit_opts), &ea, NULL}};
    rp_cli_cmd_t cmd = {"ragpulse emit", emit_usage, NULL, sets, 1, emit_type_arg, &ea};
    int prc = rp_cli_parse(&cmd, argc, argv);
    if (prc != 0)
        return prc == RP_CLI_HELP ? 0 : 2;
    if (ea.channel)
        return emit_channel(&ea);
    if (ea.op || ea.key || ea.ttl_ms >= 0) {
        fprintf(stderr, "ragpulse emit: --op, --key and --ttl-ms go with --channel\n");
        return 2;
    }
    if (ea.type == NULL) {
        rp_cli_help(&cmd, stderr);
        return 2;
    }
    const char *hub = ea.hub;
    const char *token = ea.token;
    const char *pid = ea.pid;
    const char *ptype = ea.ptype;
    const char *file_name = ea.file_name, *file_id = ea.file_id;
    json_t *ev = json_object();
    json_t *file = json_object();
    json_t *err = json_object();
    int rc = 2;
    if (emit_build(&ea, ev, file, err) < 0)
        goto out;
    char auto_id[160];
    if (pid == NULL) {
        default_pipeline_id(auto_id, sizeof(auto_id), ptype);
        pid = auto_id;
    }
    json_object_set_new(ev, "pipeline_id", json_string(pid));
    json_object_set_new(ev, "pipeline_type", json_string(ptype));
    if (file_name || file_id) {
        json_object_set_new(file, "id", json_string(file_id ? file_id : file_name));
        json_object_set_new(file, "name", json_string(file_name ? file_name : file_id));
    }
    if (json_object_size(err))
        json_object_set(file, "error", err);
    if (json_object_size(file))
        json_object_set(ev, "file", file);
    /* Check locally first: the same rules as the hub, with the same words. */
    rp_event_error_t verr;
    if (rp_event_validate(ev, &verr) < 0) {
        fprintf(stderr, "ragpulse emit: invalid event: %s%s%s\n", verr.field,
                verr.field[0] ? " " : "", verr.rule);
        rc = 1;
        goto out;
    }
    char *body = json_dumps(ev, JSON_COMPACT | JSON_REAL_PRECISION(15));
    rp_buf_t resp;
    rp_buf_init(&resp, 1 << 20);
    const char *why = "out of memory";
    int status = body ? http_post(hub, "/api/events", body, token, &resp, &why) : UV_ENOMEM;
    free(body);
    if (status < 0) {
        fprintf(stderr, "ragpulse emit: cannot reach the hub at %s: %s\n", hub, why);
        rc = 3;
    } else if (status == 200) {
        json_t *r = json_loadb(resp.data ? resp.data : "", resp.len, 0, NULL);
        printf("%lld\n", (long long)json_integer_value(json_object_get(r, "id")));
        json_decref(r);
        rc = 0;
    } else {
        fprintf(stderr, "ragpulse emit: the hub refused the event (HTTP %d): %.*s\n", status,
                (int)resp.len, resp.data ? resp.data : "");
        rc = 1;
    }
    rp_buf_deinit(&resp);
out:
    json_decref(ev);
    json_decref(file);
    json_decref(err);
    return rc;
}
