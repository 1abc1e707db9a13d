/* SPDX-License-Identifier: MIT */
/* Who may do what: the principal of a socket or an HTTP request (hub/auth.h), room and
 * pipeline scopes, the CONNECT check, and the producers' rate buckets. Every refusal is
 * counted and answered here (401/403, CONNECT_ERROR); nothing else decides access. */
#include "hub/hub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/bucket.h"
#include "util/err.h"
#include "util/log.h"

/* The principal of a socket: NULL when auth is off (everyone may do everything). */
const rp_principal_t *rp_hub_socket_principal(const rp_sio_socket_t *s)
{
    return s->data;
}

void rp_hub_principal_release(void *p)
{
    rp_principal_free(p);
}

/* May `p` be in `room` ("pipeline:<id>", "type:<t>", "all", "admin:monitoring")? */
int rp_hub_room_allowed(const rp_principal_t *p, const char *room)
{
    if (p == NULL || p->role == RP_ROLE_ADMIN)
        return 1;
    if (strcmp(room, "admin:monitoring") == 0)
        return 0;
    if (strncmp(room, "pipeline:", 9) == 0)
        return rp_principal_sees(p, room + 9);
    return p->all_pipelines; /* all, type:<t> */
}

int rp_hub_restore_room_allowed(rp_sio_socket_t *s, const char *room, void *ud)
{
    (void)ud;
    return rp_hub_room_allowed(rp_hub_socket_principal(s), room);
}

/* May s end the live socket old, whose pid it presented, and resume its session? Only with
 * the same principal or one that sees everything old's did: a leaked pid with a token for
 * other pipelines must not cut a viewer off (nor hand its rooms' history to a narrower one). */
int rp_hub_take_over_allowed(rp_sio_socket_t *s, rp_sio_socket_t *old, void *ud)
{
    (void)ud;
    const rp_principal_t *p = rp_hub_socket_principal(s);
    const rp_principal_t *q = rp_hub_socket_principal(old);
    if (q == NULL)
        return 1; /* auth off */
    return p && (strcmp(p->id, q->id) == 0 || rp_principal_covers(p, q));
}

/* Keeps, in a snapshot's "pipelines" or a delta's "events", only what p may see. */
void rp_hub_filter_visible(json_t *j, const char *member, const rp_principal_t *p)
{
    json_t *arr = json_object_get(j, member);
    if (p == NULL || rp_principal_sees_all(p) || !json_is_array(arr))
        return;
    const char *key = strcmp(member, "pipelines") == 0 ? "id" : "pipeline_id";
    for (size_t i = json_array_size(arr); i-- > 0;) {
        const char *id = json_string_value(json_object_get(json_array_get(arr, i), key));
        if (id == NULL || !rp_principal_sees(p, id))
            json_array_remove(arr, i);
    }
}

/* A token that expired while its socket stayed connected stops working for new requests. */
int rp_hub_expired(const rp_hub_t *hub, const rp_principal_t *p)
{
    return p && hub->cfg.auth && rp_auth_expired(hub->cfg.auth, p, rp_hub_now_ms() / 1000);
}

/* Socket.IO CONNECT on every hub namespace: the token from the CONNECT auth ({token}), else
 * the one the Engine.IO handshake carried (Authorization: Bearer, or ?token=). */
int rp_hub_on_hub_connect(rp_sio_socket_t *s, const char *auth, size_t auth_len, rp_buf_t *err,
                          void *ud)
{
    rp_hub_t *hub = ud;
    if (hub->cfg.auth == NULL)
        return 0;
    json_t *a = auth_len ? json_loadb(auth, auth_len, 0, NULL) : NULL;
    const char *tok = json_string_value(json_object_get(a, "token"));
    if (tok == NULL)
        tok = s->client->eio->credential;
    char why[160];
    rp_principal_t *p = tok ? rp_auth_verify(hub->cfg.auth, tok, strlen(tok),
                                             rp_hub_now_ms() / 1000, why, sizeof(why))
                            : NULL;
    if (tok == NULL)
        snprintf(why, sizeof(why), "no token (send {token} in the auth, or Authorization: Bearer)");
    json_decref(a);
    if (p == NULL) {
        hub->auth_refused[WHERE_SOCKET][DENY_UNAUTHORIZED]++;
        RP_LOG_INFO("hub", "CONNECT %s refused: %s", s->nsp->name, why);
        json_t *m = json_pack("{s:s+}", "message", "unauthorized: ", why);
        char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
        if (text)
            rp_buf_append(err, text, strlen(text));
        free(text);
        json_decref(m);
        return RP_EAUTH;
    }
    s->data = p;
    return 0;
}

/* Answers 401 or 403 with the reason, and counts it. */
void rp_hub_respond_denied(rp_hub_t *hub, rp_http_conn_t *hc, int kind, const char *why)
{
    hub->auth_refused[WHERE_HTTP][kind]++;
    char msg[256];
    snprintf(msg, sizeof(msg), "%s: %s", kind == DENY_UNAUTHORIZED ? "unauthorized" : "forbidden",
             why);
    rp_hub_respond_json(
        hub, hc, kind == DENY_UNAUTHORIZED ? 401 : 403, json_pack("{s:s}", "error", msg),
        kind == DENY_UNAUTHORIZED ? "WWW-Authenticate: Bearer realm=\"ragpulse\"\r\n" : NULL);
}

/* The principal of an HTTP request (a new one; the caller frees it). With auth off, returns
 * NULL and *denied 0. When the request has no valid token it is answered 401 and *denied is
 * 1. */
rp_principal_t *rp_hub_http_principal(rp_hub_t *hub, rp_http_conn_t *hc,
                                      const rp_http_request_t *req, int *denied)
{
    *denied = 0;
    if (hub->cfg.auth == NULL)
        return NULL;
    char tok[RP_EIO_MAX_CREDENTIAL + 1], why[160];
    long n = rp_http_credential(req, tok, sizeof(tok));
    rp_principal_t *p = NULL;
    if (n == RP_ENOTFOUND)
        snprintf(why, sizeof(why), "no token (Authorization: Bearer TOKEN, or ?token=)");
    else if (n < 0)
        snprintf(why, sizeof(why), "malformed Authorization header (want: Bearer TOKEN)");
    else
        p = rp_auth_verify(hub->cfg.auth, tok, (size_t)n, rp_hub_now_ms() / 1000, why, sizeof(why));
    if (p == NULL) {
        *denied = 1;
        rp_hub_respond_denied(hub, hc, DENY_UNAUTHORIZED, why);
    }
    return p;
}

/* A producer's rate bucket, by who they are. */
typedef struct producer {
    rp_map_entry_t entry;
    rp_bucket_t bucket;
    char key[80];
} producer_t;

/* Takes n events from the bucket of `who`. Returns 0, or the milliseconds until they would
 * fit (the events are then refused and counted). */
uint64_t rp_hub_producer_take(rp_hub_t *hub, const char *who, double n)
{
    if (hub->cfg.event_rate <= 0)
        return 0;
    uint64_t now = (uint64_t)rp_hub_now_ms();
    size_t kl = strlen(who);
    rp_map_entry_t *e = rp_map_get(&hub->producers, who, kl);
    producer_t *pr = e ? rp_container_of(e, producer_t, entry) : NULL;
    if (pr == NULL) {
        if (hub->producers.count >= 100000 || (pr = rp_calloc(1, sizeof(*pr))) == NULL)
            return 1000; /* cannot keep count: refuse rather than let it through unmetered */
        snprintf(pr->key, sizeof(pr->key), "%s", who);
        pr->entry.key = pr->key;
        pr->entry.keylen = strlen(pr->key);
        rp_bucket_init(&pr->bucket, hub->cfg.event_burst, now);
        if (rp_map_put(&hub->producers, &pr->entry) < 0) {
            rp_free(pr);
            return 1000; /* the same: no bucket, no unmetered events */
        }
    }
    uint64_t wait = rp_bucket_take(&pr->bucket, n, hub->cfg.event_rate, hub->cfg.event_burst, now);
    if (wait)
        hub->rate_limited += (unsigned long)n;
    return wait;
}

/* Forgets producers whose buckets have been full for a while (they cost nothing to rebuild). */
void rp_hub_producers_prune(rp_hub_t *hub)
{
    uint64_t now = (uint64_t)rp_hub_now_ms();
    double refill_ms =
        hub->cfg.event_rate > 0 ? hub->cfg.event_burst * 1000.0 / hub->cfg.event_rate : 0;
    size_t b;
    rp_map_entry_t *e = rp_map_first(&hub->producers, &b);
    while (e) {
        rp_map_entry_t *next = rp_map_next(&hub->producers, e, &b);
        producer_t *pr = rp_container_of(e, producer_t, entry);
        if ((double)(now - pr->bucket.last_ms) > refill_ms + 60000) {
            rp_map_del(&hub->producers, e);
            rp_free(pr);
        }
        e = next;
    }
}

void rp_hub_producers_clear(rp_hub_t *hub)
{
    size_t b;
    rp_map_entry_t *e;
    while ((e = rp_map_first(&hub->producers, &b)) != NULL) {
        rp_map_del(&hub->producers, e);
        rp_free(rp_container_of(e, producer_t, entry));
    }
    rp_map_deinit(&hub->producers);
}

/* The producer key of an HTTP request: the token's holder, else the source address. */
void rp_hub_http_producer_key(rp_http_conn_t *hc, const rp_principal_t *p, char *out, size_t outlen)
{
    if (p) {
        snprintf(out, outlen, "%s", p->id);
        return;
    }
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[64] = "?";
    if (uv_tcp_getpeername(&hc->conn->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
        else
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
    }
    snprintf(out, outlen, "ip:%s", ip);
}
