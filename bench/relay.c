/* SPDX-License-Identifier: MIT */
/* rp-bench-relay: the relay contract every server in bench/ implements, on ragpulse's
 * libraries (not a mode of the product, which never lets a viewer broadcast). On namespace
 * "/": `subscribe` {"room": R} joins room R; `publish` {room: R, ...} broadcasts
 * `file:progress` with that same object to room R, binary attachments included (the
 * placeholders in the object keep their numbers, so every attachment is forwarded; with
 * --workers a binary publish stays on its worker, as rp_sio_broadcast says). Both ack `true`
 * when asked. */
#include <stdio.h>
#include <string.h>

#include "cli/app.h"
#include "util/json.h"

/* Decodes the "room" member of the first argument into room (NUL-terminated). */
static int room_of(const rp_sio_event_t *ev, const char **obj, size_t *olen, char *room, size_t cap)
{
    const char *v;
    size_t vl;
    if (rp_sio_arg(ev, 0, obj, olen) != 1 ||
        rp_json_object_get(*obj, *olen, "room", &v, &vl) != 1 || v[0] != '"')
        return -1;
    if (vl - 2 < cap && !memchr(v, '\\', vl)) {
        memcpy(room, v + 1, vl - 2);
        room[vl - 2] = '\0';
        return 0;
    }
    rp_buf_t b;
    rp_buf_init(&b, cap - 1);
    int rc = rp_json_string_decode(v, vl, &b);
    if (rc == 0)
        memcpy(room, b.data ? b.data : "", b.len + 1);
    rp_buf_deinit(&b);
    return rc;
}

static void on_subscribe(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    (void)ud;
    const char *obj;
    size_t ol;
    char room[256];
    if (room_of(ev, &obj, &ol, room, sizeof(room)) == 0 &&
        rp_sio_join(s, room, strlen(room)) == 0 && ev->ack_id >= 0)
        rp_sio_ack(s, ev->ack_id, "true", 4, NULL, 0);
}

static void on_publish(rp_sio_socket_t *s, const rp_sio_event_t *ev, void *ud)
{
    (void)ud;
    const char *obj;
    size_t ol;
    char room[256];
    if (room_of(ev, &obj, &ol, room, sizeof(room)) < 0)
        return;
    const char *rooms[1] = {room};
    rp_sio_bcast_t opts = {.rooms = rooms, .nrooms = 1};
    rp_sio_broadcast(s->nsp, &opts, "file:progress", obj, ol, ev->att, ev->natt);
    if (ev->ack_id >= 0)
        rp_sio_ack(s, ev->ack_id, "true", 4, NULL, 0);
}

int main(int argc, char **argv)
{
    static rp_cli_opts_t o; /* the app borrows it until exit */
    rp_cli_opts_init(&o, 8104);
    o.log_level = "warn";
    int rc = rp_cli_opts_parse_server(&o, "rp-bench-relay", argc, argv);
    if (rc != 0)
        return rc == RP_CLI_HELP ? 0 : 2;
    rp_app_t app;
    if (rp_app_init(&app, &o) < 0)
        return 1;
    rp_sio_nsp_t *nsp = rp_sio_server_of(app.sio, "/");
    if (nsp == NULL || rp_sio_nsp_on(nsp, "subscribe", on_subscribe, NULL) < 0 ||
        rp_sio_nsp_on(nsp, "publish", on_publish, NULL) < 0)
        return 1;
    return rp_app_run(&app);
}
