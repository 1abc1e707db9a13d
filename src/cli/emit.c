/* SPDX-License-Identifier: MIT */
/* `ragpulse emit TYPE --pipeline ID [...]`: report one pipeline event to a hub from a shell
 * script. Builds the event, POSTs it to the hub's /api/events with the HTTP client
 * (http/client.h) on a loop of its own, run once until the answer is in, and prints the id
 * the hub assigned. Exit status:
 * 0 accepted, 1 refused (the hub's reason on stderr), 2 usage, 3 hub unreachable. */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cli/cli.h"
#include "http/client.h"
#include "hub/event.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/url.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ragpulse emit TYPE [--pipeline ID] [OPTIONS]\n\n"
            "TYPE is one of pipeline:online, pipeline:offline, file:processing, file:progress,\n"
            "file:completed, file:failed, file:deleted, status:update, heartbeat.\n\noptions:\n"
            "  --pipeline ID             pipeline id (env RAG_PIPELINE_ID; default TYPE:HOSTNAME, the\n"
            "                            pipeline type and this host's name: the same on every run)\n"
            "  --type TYPE               pipeline type, e.g. local_files (env RAG_PIPELINE_TYPE; default custom)\n"
            "  --hub URL                 hub address (env RAGPULSE_HUB; default http://127.0.0.1:8103)\n"
            "  --token TOKEN             a producer token when the hub has auth on (env RAGPULSE_TOKEN)\n"
            "  --file NAME               the file (file events); --file-id ID defaults to NAME\n"
            "  --size BYTES --mime TYPE --progress 0..1 --stage NAME --chunks N --attempt N\n"
            "  --error MESSAGE [--error-kind KIND] [--error-code CODE] [--retryable]   (file:failed)\n"
            "  --status STATUS           online, offline, running, idle, error (status:update)\n"
            "  --message TEXT --heartbeat-interval SECONDS --files-total N --files-pending N\n");
}

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
static int http_post(const char *url, const char *path, const char *body, const char *token, rp_buf_t *out,
                     const char **why)
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
    rc = rp_http_client_request(&p.http, "POST", path, headers, body, strlen(body), 10000, on_posted, &p);
    if (rc == 0) {
        (void)uv_run(&loop, UV_RUN_DEFAULT); /* returns once the request has called back */
        rc = p.rc < 0 ? p.rc : p.status;
    }
    if (rc < 0)
        *why = rc == UV_ETIMEDOUT ? "no answer in 10 s"
               : rc == RP_EPROTO || rc == UV_EOF ? "bad response"
               : rc == RP_ETOOBIG ? "the answer is too large"
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

/* An environment variable's value, or def when it is unset or empty. */
static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

int rp_cli_emit(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *hub = env_or("RAGPULSE_HUB", "http://127.0.0.1:8103");
    const char *token = env_or("RAGPULSE_TOKEN", NULL);
    const char *pid = env_or("RAG_PIPELINE_ID", NULL);
    const char *ptype = env_or("RAG_PIPELINE_TYPE", "custom");
    const char *file_name = NULL, *file_id = NULL;
    json_t *ev = json_object();
    json_t *file = json_object();
    json_t *err = json_object();
    int rc = 2;
    json_object_set_new(ev, "type", json_string(argv[1]));
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--retryable") == 0) {
            json_object_set_new(err, "retryable", json_true());
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ragpulse emit: %s needs a value\n", a);
            goto out;
        }
        const char *v = argv[++i];
        int bad = 0;
        if (strcmp(a, "--pipeline") == 0)
            pid = v;
        else if (strcmp(a, "--type") == 0)
            ptype = v;
        else if (strcmp(a, "--hub") == 0)
            hub = v;
        else if (strcmp(a, "--token") == 0)
            token = v;
        else if (strcmp(a, "--file") == 0)
            file_name = v;
        else if (strcmp(a, "--file-id") == 0)
            file_id = v;
        else if (strcmp(a, "--size") == 0)
            bad = set_num(file, "size", v, 1);
        else if (strcmp(a, "--mime") == 0)
            json_object_set_new(file, "mime_type", json_string(v));
        else if (strcmp(a, "--progress") == 0)
            bad = set_num(file, "progress", v, 0);
        else if (strcmp(a, "--stage") == 0)
            json_object_set_new(file, "stage", json_string(v));
        else if (strcmp(a, "--chunks") == 0)
            bad = set_num(file, "chunks", v, 1);
        else if (strcmp(a, "--attempt") == 0)
            bad = set_num(file, "attempt", v, 1);
        else if (strcmp(a, "--error") == 0)
            json_object_set_new(err, "message", json_string(v));
        else if (strcmp(a, "--error-kind") == 0)
            json_object_set_new(err, "kind", json_string(v));
        else if (strcmp(a, "--error-code") == 0)
            json_object_set_new(err, "code", json_string(v));
        else if (strcmp(a, "--status") == 0)
            json_object_set_new(ev, "status", json_string(v));
        else if (strcmp(a, "--message") == 0)
            json_object_set_new(ev, "message", json_string(v));
        else if (strcmp(a, "--heartbeat-interval") == 0)
            bad = set_num(ev, "heartbeat_interval", v, 0);
        else if (strcmp(a, "--files-total") == 0)
            bad = set_num(ev, "files_total", v, 1);
        else if (strcmp(a, "--files-pending") == 0)
            bad = set_num(ev, "files_pending", v, 1);
        else {
            fprintf(stderr, "ragpulse emit: unknown option '%s'\n", a);
            usage(stderr);
            goto out;
        }
        if (bad) {
            fprintf(stderr, "ragpulse emit: %s wants a number, got '%s'\n", a, v);
            goto out;
        }
    }
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
        fprintf(stderr, "ragpulse emit: invalid event: %s%s%s\n", verr.field, verr.field[0] ? " " : "", verr.rule);
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
        fprintf(stderr, "ragpulse emit: the hub refused the event (HTTP %d): %.*s\n", status, (int)resp.len,
                resp.data ? resp.data : "");
        rc = 1;
    }
    rp_buf_deinit(&resp);
out:
    json_decref(ev);
    json_decref(file);
    json_decref(err);
    return rc;
}
