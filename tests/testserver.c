/* SPDX-License-Identifier: MIT */
/* rp-testserver: the server the official Engine.IO v4 / Socket.IO v5 conformance suites and
 * our integration tests talk to. Built on ragpulse's libraries; not a mode of the product.
 *
 *   /engine.io/  raw Engine.IO, every message echoed back
 *   /socket.io/  namespaces "/", "/custom", "/private" (auth {"token":"secret"} only)
 *
 * On every namespace: after CONNECT it emits "auth" with the client's auth object; "message"
 * is echoed as "message-back", "message-with-ack" is acked with its arguments, and the
 * helpers join, leave, broadcast, ask, disconnect-me and whoami exist for the integration
 * tests (tests/integration/README.md); broadcast's "except" is a room or an array of rooms, and
 * --cluster redis://HOST:PORT shares broadcasts with other nodes through Redis. Defaults are the
 * suites': port 3000, pingInterval 300, pingTimeout 200, connect timeout 1000. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/app.h"
#include "cluster/redis.h"
#include "util/json.h"
#include "util/log.h"

static int on_connect(rp_sio_socket_t *s, const char *auth, size_t auth_len, rp_buf_t *err,
                      void *ud)
{
    (void)ud;
    if (strcmp(s->nsp->name, "/private") != 0)
        return 0;
    const char *tok;
    size_t tl;
    if (rp_json_object_get(auth, auth_len, "token", &tok, &tl) == 1 && tl == 8 &&
        memcmp(tok, "\"secret\"", 8) == 0)
        return 0;
    rp_buf_append_str(err, "{\"message\":\"not authorized\"}");
    return -1;
}

static void on_connection(rp_sio_socket_t *s, const char *auth, size_t auth_len, void *ud)
{
    (void)ud;
    if (auth_len == 0) {
        auth = "{}";
        auth_len = 2;
    }
    rp_sio_emit(s, "auth", auth, auth_len, NULL, 0);
}

static void on_message(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    (void)ud;
    rp_sio_emit(s, "message-back", ev->args, ev->args_len, ev->att, ev->natt);
}

static void on_message_with_ack(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    (void)ud;
    if (ev->ack_id >= 0)
        rp_sio_ack(s, ev->ack_id, ev->args, ev->args_len, ev->att, ev->natt);
}

/* Decodes string argument i into out; returns 0 or -1. */
static int arg_string(const rp_sio_event_t *ev, size_t i, rp_buf_t *out)
{
    const char *v;
    size_t vl;
    if (rp_sio_arg(ev, i, &v, &vl) != 1 || v[0] != '"')
        return -1;
    return rp_json_string_decode(v, vl, out) < 0 ? -1 : 0;
}

static void ack_true(rp_sio_socket_t *s, const rp_sio_event_t *ev)
{
    if (ev->ack_id >= 0)
        rp_sio_ack(s, ev->ack_id, "true", 4, NULL, 0);
}

static void on_join(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    (void)ud;
    rp_buf_t room;
    rp_buf_init(&room, 1024);
    if (arg_string(ev, 0, &room) == 0 && rp_sio_join(s, room.data, room.len) == 0)
        ack_true(s, ev);
    rp_buf_deinit(&room);
}

static void on_leave(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    (void)ud;
    rp_buf_t room;
    rp_buf_init(&room, 1024);
    if (arg_string(ev, 0, &room) == 0 && rp_sio_leave(s, room.data, room.len) == 0)
        ack_true(s, ev);
    rp_buf_deinit(&room);
}

/* Decodes string member `key` of object text obj; returns 1 found, 0 absent, -1 bad. */
static int member_string(const char *obj, size_t len, const char *key, rp_buf_t *out)
{
    const char *v;
    size_t vl;
    int rc = rp_json_object_get(obj, len, key, &v, &vl);
    if (rc != 1)
        return rc < 0 ? -1 : 0;
    if (v[0] != '"' || rp_json_string_decode(v, vl, out) < 0)
        return -1;
    return 1;
}

/* "except": a room name, or an array of up to 256 of them; their names go into names,
 * NUL-separated, and n counts them. Returns 0, or -1 when it is neither. */
static int except_rooms(const char *obj, size_t len, rp_buf_t *names, size_t *offs, size_t *n)
{
    const char *v, *el;
    size_t vl, elen;
    *n = 0;
    int rc = rp_json_object_get(obj, len, "except", &v, &vl);
    if (rc != 1)
        return rc < 0 ? -1 : 0;
    rp_json_iter_t it;
    int array = v[0] == '[';
    if (array && rp_json_array_begin(&it, v, vl) < 0)
        return -1;
    while (array ? (rc = rp_json_array_next(&it, &el, &elen)) == 1 : *n == 0) {
        if (!array) {
            el = v;
            elen = vl;
        }
        offs[*n] = names->len;
        if (*n == 256 || el[0] != '"' || rp_json_string_decode(el, elen, names) < 0 ||
            rp_buf_append_char(names, '\0') < 0)
            return -1;
        (*n)++;
    }
    return array && rc < 0 ? -1 : 0;
}

static void on_broadcast(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    (void)ud;
    const char *obj, *data;
    size_t ol, dl;
    rp_buf_t room, except, event;
    rp_buf_init(&room, 1024);
    rp_buf_init(&except, 65536);
    rp_buf_init(&event, 1024);
    size_t offs[256], nexcept;
    if (rp_sio_arg(ev, 0, &obj, &ol) == 1 && member_string(obj, ol, "event", &event) == 1 &&
        except_rooms(obj, ol, &except, offs, &nexcept) == 0) {
        int has_room = member_string(obj, ol, "room", &room);
        if (rp_json_object_get(obj, ol, "data", &data, &dl) != 1) {
            data = "null";
            dl = 4;
        }
        const char *rooms[1] = {room.data};
        const char *excepts[256];
        for (size_t i = 0; i < nexcept; i++)
            excepts[i] = except.data + offs[i];
        rp_sio_bcast_t opts = {.rooms = has_room == 1 ? rooms : NULL,
                               .nrooms = has_room == 1,
                               .except = nexcept ? excepts : NULL,
                               .nexcept = nexcept};
        rp_sio_broadcast(s->nsp, &opts, event.data, data, dl, ev->att, ev->natt);
        ack_true(s, ev);
    }
    rp_buf_deinit(&room);
    rp_buf_deinit(&except);
    rp_buf_deinit(&event);
}

static void on_answer(rp_sio_socket_t *s, const rp_sio_event_t *ack, void *ud)
{
    (void)ud;
    if (s == NULL)
        return;
    if (ack == NULL)
        rp_sio_emit(s, "answer-timeout", NULL, 0, NULL, 0);
    else
        rp_sio_emit(s, "answer", ack->args, ack->args_len, ack->att, ack->natt);
}

static void on_ask(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    (void)ud;
    rp_sio_emit_with_ack(s, "question", ev->args, ev->args_len, ev->att, ev->natt, 1000, on_answer,
                         NULL);
}

static void on_disconnect_me(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    (void)ev;
    (void)ud;
    rp_sio_disconnect(s, 0);
}

/* Which process serves this socket (with --workers N, tests check the spread). */
static void on_worker(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    (void)ud;
    char json[24];
    int n = snprintf(json, sizeof(json), "%d", (int)getpid());
    if (ev->ack_id >= 0)
        rp_sio_ack(s, ev->ack_id, json, (size_t)n, NULL, 0);
}

static void on_whoami(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    (void)ud;
    char json[32];
    int n = snprintf(json, sizeof(json), "\"%s\"", s->id);
    if (ev->ack_id >= 0)
        rp_sio_ack(s, ev->ack_id, json, (size_t)n, NULL, 0);
}

/* The raw Engine.IO endpoint: echo. */
static void on_raw_message(rp_eio_session_t *s, int binary, char *data, size_t len, void *ud)
{
    (void)ud;
    if (!binary) {
        rp_eio_session_send_message(s, data, len);
        return;
    }
    rp_eio_packet_t p;
    if (rp_eio_packet_binary(&p, data, len) == 0) {
        rp_eio_session_send(s, &p);
        rp_eio_packet_release(&p);
    }
}

int main(int argc, char **argv)
{
    static rp_cli_opts_t o; /* the app borrows it until exit */
    rp_cli_opts_init(&o, 3000);
    o.eio.ping_interval = 300;
    o.eio.ping_timeout = 200;
    o.sio.connect_timeout = 1000;
    /* The server's options and --workers, plus --cluster (broadcasts shared through Redis). */
    const char *cluster_url = NULL;
    static const rp_cli_opt_t cluster_opt[] = {
        {"--cluster", "redis://HOST:PORT", RP_CLI_STRING, 0, 0, 0, NULL,
         "share broadcasts with the other nodes on that Redis", NULL, 0},
    };
    rp_cli_optset_t sets[] = {
        {rp_cli_server_opts, rp_cli_server_nopts, &o, NULL},
        {rp_cli_workers_opts, rp_cli_workers_nopts, &o, NULL},
        {cluster_opt, RP_CLI_COUNT(cluster_opt), &cluster_url, NULL},
    };
    rp_cli_cmd_t cmd = {"rp-testserver",
                        "usage: rp-testserver [OPTIONS]\n\noptions:\n",
                        NULL,
                        sets,
                        RP_CLI_COUNT(sets),
                        NULL,
                        NULL};
    int rc = rp_cli_parse(&cmd, argc, argv);
    if (rc != 0)
        return rc == RP_CLI_HELP ? 0 : 2;
    rp_app_t app;
    if (rp_app_init(&app, &o) < 0)
        return 1;
    static const char *const nsps[] = {"/", "/custom", "/private"};
    for (size_t i = 0; i < 3; i++) {
        rp_sio_nsp_t *nsp = rp_sio_server_of(app.sio, nsps[i]);
        if (nsp == NULL)
            return 1;
        rp_sio_nsp_on_connect(nsp, on_connect, NULL);
        rp_sio_nsp_on_connection(nsp, on_connection, NULL);
        if (rp_sio_nsp_on(nsp, "message", on_message, NULL) < 0 ||
            rp_sio_nsp_on(nsp, "message-with-ack", on_message_with_ack, NULL) < 0 ||
            rp_sio_nsp_on(nsp, "join", on_join, NULL) < 0 ||
            rp_sio_nsp_on(nsp, "leave", on_leave, NULL) < 0 ||
            rp_sio_nsp_on(nsp, "broadcast", on_broadcast, NULL) < 0 ||
            rp_sio_nsp_on(nsp, "ask", on_ask, NULL) < 0 ||
            rp_sio_nsp_on(nsp, "disconnect-me", on_disconnect_me, NULL) < 0 ||
            rp_sio_nsp_on(nsp, "whoami", on_whoami, NULL) < 0 ||
            rp_sio_nsp_on(nsp, "worker", on_worker, NULL) < 0)
            return 1;
    }
    if (cluster_url) {
        char err[256];
        app.cluster = rp_cluster_redis_new(app.loop, cluster_url, err, sizeof(err));
        if (app.cluster == NULL) {
            fprintf(stderr, "rp-testserver: --cluster: %s\n", err);
            return 2;
        }
        rp_sio_server_set_cluster(app.sio, app.cluster);
    }
    rp_eio_config_t raw = o.eio;
    raw.path = "/engine.io/";
    static const rp_eio_callbacks_t raw_cb = {NULL, on_raw_message, NULL};
    app.extra_eio = rp_eio_server_new(&app.net, &raw, &raw_cb, NULL);
    if (app.extra_eio == NULL)
        return 1;
    return rp_app_run(&app);
}
