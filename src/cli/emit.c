/* SPDX-License-Identifier: MIT */
/* `ragpulse emit TYPE --pipeline ID [...]`: report one pipeline event to a hub from a shell
 * script. Builds the event, POSTs it to the hub's /api/events with a small blocking HTTP/1.1
 * client (one request, Connection: close), and prints the id the hub assigned. Exit status:
 * 0 accepted, 1 refused (the hub's reason on stderr), 2 usage, 3 hub unreachable. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "hub/event.h"
#include "util/buf.h"

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

/* Connects to host:port; returns a socket or -1. */
static int dial(const char *host, const char *port)
{
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, 0);
        if (fd < 0)
            continue;
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* POSTs body to url + path; returns the HTTP status and the response body in out, or -1. */
static int http_post(const char *url, const char *path, const char *body, const char *token, rp_buf_t *out)
{
    char host[256], port[8] = "80";
    const char *p = url;
    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    else if (strstr(p, "://")) {
        fprintf(stderr, "ragpulse emit: only http:// hub URLs are supported (put TLS in front)\n");
        return -1;
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof(host))
        return -1;
    memcpy(host, p, hl);
    host[hl] = '\0';
    if (p[hl] == ':')
        snprintf(port, sizeof(port), "%.*s", (int)strcspn(p + hl + 1, "/"), p + hl + 1);
    int fd = dial(host, port);
    if (fd < 0)
        return -1;
    rp_buf_t req;
    rp_buf_init(&req, 1 << 20);
    rp_buf_printf(&req,
                  "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n%s%s%s"
                  "Content-Length: %zu\r\nConnection: close\r\nUser-Agent: ragpulse-emit/" RP_VERSION "\r\n\r\n%s",
                  path, host, port, token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "",
                  strlen(body), body);
    size_t off = 0;
    while (off < req.len) {
        ssize_t w = write(fd, req.data + off, req.len - off);
        if (w <= 0) {
            rp_buf_deinit(&req);
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    rp_buf_deinit(&req);
    char chunk[4096];
    ssize_t r;
    while ((r = read(fd, chunk, sizeof(chunk))) > 0)
        if (rp_buf_append(out, chunk, (size_t)r) < 0)
            break;
    close(fd);
    if (out->len < 12 || strncmp(out->data, "HTTP/1.", 7) != 0)
        return -1;
    int status = atoi(out->data + 9);
    char *bodystart = strstr(out->data, "\r\n\r\n");
    if (bodystart)
        rp_buf_consume(out, (size_t)(bodystart + 4 - out->data));
    return status;
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
    int status = body ? http_post(hub, "/api/events", body, token, &resp) : -1;
    free(body);
    if (status < 0) {
        fprintf(stderr, "ragpulse emit: cannot reach the hub at %s: %s\n", hub, errno ? strerror(errno) : "bad response");
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
