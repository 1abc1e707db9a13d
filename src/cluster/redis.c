/* SPDX-License-Identifier: MIT */
/* The Redis cluster adapter (see redis.h and docs/architecture.md "Several nodes on Redis").
 * Two hiredis async connections on the loop: `cmd` for XADD/EVALSHA/SET/GETDEL/PING and `rd`
 * for the XREAD BLOCK loop, which is the only way anything from the stream reaches this
 * node, in stream order. One 500 ms timer resolves and reconnects, watches for a Redis that
 * stopped answering (a PING or XREAD past its deadline frees the connection), and publishes
 * this node's figures. Every hiredis callback may run with a NULL reply (connection gone):
 * each one frees what it owns either way. */
#include "cluster/redis.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "cluster/entry.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"
#include <sys/random.h>

#define STREAM           "socket.io"
#define MAXLEN           "10000"
#define READ_COUNT       100
#define BLOCK_MS         2000
#define PING_DEADLINE_MS 3000
/* Connections open but the node not healthy for this long: drop both and start over. */
#define STUCK_MS         6000
#define STATS_EVERY_MS   2000
#define STATS_TTL_MS     "10000"
#define DEDUP_TTL_MS     "600000"
#define SESSION_PREFIX   "sio:session:"
#define COUNTER_KEY      "ragpulse:event-id"
#define NODES_KEY        "ragpulse:nodes"

/* Numbers the event, appends it, and drops a duplicate of a dedup key (KEYS: stream,
 * counter, dedup key or ""). The id is above every node's floor, so a Redis that restarted
 * empty never hands out an id a node already used. */
static const char append_lua[] =
    "if KEYS[3] ~= '' then\n"
    "  if not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[9]) then return {0, ''} end\n"
    "end\n"
    "local id = redis.call('INCR', KEYS[2])\n"
    "local floor = tonumber(ARGV[6])\n"
    "if id <= floor then id = floor + 1; redis.call('SET', KEYS[2], string.format('%d', id)) end\n"
    "local ids = string.format('%d', id)\n"
    "local sid = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'uid', ARGV[2], 'nsp', "
    "ARGV[3],\n"
    "  'type', '3', 'data', ARGV[4] .. ids .. ARGV[5], 'rpid', ids, 'rpts', ARGV[7], 'rpt', "
    "ARGV[8])\n"
    "return {id, sid}\n";

/* Publishes this node's figures and returns every live node's (KEYS: the node set). */
static const char nodes_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local ttl = tonumber(ARGV[3])\n"
    "redis.call('ZADD', KEYS[1], now, ARGV[1])\n"
    "redis.call('SET', KEYS[1] .. ':' .. ARGV[1], ARGV[2], 'PX', ttl)\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)\n"
    "local out = {}\n"
    "for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do\n"
    "  local v = redis.call('GET', KEYS[1] .. ':' .. id)\n"
    "  if v then out[#out + 1] = v end\n"
    "end\n"
    "return out\n";

typedef struct redis {
    rp_cluster_t base;
    uv_loop_t *loop;
    char host[256];
    char port_str[8];
    int port;
    int db;
    char uid[17];
    char append_sha[41];
    char nodes_sha[41];
    redisAsyncContext *cmd;
    redisAsyncContext *rd;
    int cmd_up, rd_up;
    int caught_up;
    int reading;     /* an XREAD is outstanding */
    int64_t rd_sent; /* when it was sent */
    int have_live_from;
    uint64_t live_ms, live_seq; /* entries up to here predate this node: hub events only */
    uint64_t last_ms, last_seq; /* the last entry read */
    int ping_outstanding;
    int64_t ping_sent;
    int64_t next_stats;
    int64_t next_try;
    int64_t unhealthy_since; /* 0 while healthy */
    unsigned long progress;  /* entries delivered when last seen unhealthy (catching up) */
    int resolving;
    uv_getaddrinfo_t gai;
    char ip[64];
    uv_timer_t timer;
    int closing;
    int holds; /* timer + resolver still to finish before the free */
    rp_buf_t names;
    rp_buf_t scratch;
    char *stats;
    char *nodes_json;
    int was_up; /* for the log: report transitions only */
} redis_t;

typedef struct append_req {
    redis_t *r;
    rp_cluster_appended_cb cb;
    void *ud;
} append_req_t;

typedef struct take_req {
    redis_t *r;
    rp_cluster_session_cb cb;
    void *ud;
} take_req_t;

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void sha1_hex(const char *s, char out[41])
{
    unsigned char d[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)s, strlen(s), d);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Splits a stream id "MS-SEQ"; returns 0 or RP_EPROTO. */
static int parse_stream_id(const char *s, size_t n, uint64_t *ms, uint64_t *seq)
{
    const char *dash = memchr(s, '-', n);
    if (dash == NULL || dash == s || dash == s + n - 1 || n > 41)
        return RP_EPROTO;
    uint64_t a = 0, b = 0;
    for (const char *p = s; p < dash; p++) {
        if (*p < '0' || *p > '9')
            return RP_EPROTO;
        a = a * 10 + (uint64_t)(*p - '0');
    }
    for (const char *p = dash + 1; p < s + n; p++) {
        if (*p < '0' || *p > '9')
            return RP_EPROTO;
        b = b * 10 + (uint64_t)(*p - '0');
    }
    *ms = a;
    *seq = b;
    return 0;
}

static void log_health(redis_t *r)
{
    int up = r->cmd_up && r->rd_up && r->caught_up;
    if (up == r->was_up)
        return;
    r->was_up = up;
    if (up)
        RP_LOG_INFO("cluster", "redis %s:%d: joined (node %s)", r->host, r->port, r->uid);
    else
        RP_LOG_WARN("cluster",
                    "redis %s:%d: unreachable; serving this node's clients alone until it is back",
                    r->host, r->port);
}

/* ---- reading the stream ---- */

static void read_next(redis_t *r);

static void handle_entry(redis_t *r, const redisReply *id, const redisReply *fields)
{
    uint64_t ms, seq;
    if (id->type != REDIS_REPLY_STRING || parse_stream_id(id->str, id->len, &ms, &seq) < 0)
        return;
    r->last_ms = ms;
    r->last_seq = seq;
    if (fields->type != REDIS_REPLY_ARRAY || fields->elements % 2 || fields->elements > 64)
        return;
    const char *f[64];
    size_t l[64];
    for (size_t i = 0; i < fields->elements; i++) {
        if (fields->element[i]->type != REDIS_REPLY_STRING)
            return;
        f[i] = fields->element[i]->str;
        l[i] = fields->element[i]->len;
    }
    rp_redis_entry_t e;
    if (rp_redis_entry_decode(f, l, fields->elements / 2, &e) < 0) {
        r->base.errors++;
        return;
    }
    int mine = e.uid_len == 16 && memcmp(e.uid, r->uid, 16) == 0;
    int old = ms < r->live_ms || (ms == r->live_ms && seq <= r->live_seq);
    if (e.type != 3 || e.data == NULL || e.data_len == 0 || e.data[0] != '{')
        return; /* not a JSON broadcast: other message types, or msgpack (binary) payloads */
    rp_redis_bcast_t b;
    if (rp_redis_bcast_decode(e.data, e.data_len, e.nsp, e.nsp_len, &r->names, &b) < 0 ||
        b.with_ack) {
        r->base.errors++;
        return;
    }
    if (e.rpid > 0) {
        if (b.first == NULL || r->base.on_event == NULL)
            return;
        rp_cluster_event_t ev = {e.rpid,  e.rpts,      b.name, strlen(b.name),
                                 b.first, b.first_len, mine,   e.ticket};
        r->base.delivered++;
        r->base.on_event(r->base.on_event_ud, &ev);
        return;
    }
    if (mine || old || r->base.deliver == NULL)
        return;
    /* Another server's broadcast: its packet text, as sio's cluster hand-off wants it. */
    rp_buf_t *pk = &r->scratch;
    rp_buf_reset(pk);
    int rc = rp_buf_append_char(pk, '2');
    if (rc == 0 && !(e.nsp_len == 1 && e.nsp[0] == '/')) {
        rc = rp_buf_append(pk, e.nsp, e.nsp_len);
        rc = rc ? rc : rp_buf_append_char(pk, ',');
    }
    rc = rc ? rc : rp_buf_append(pk, b.args, b.args_len);
    if (rc < 0)
        return;
    rp_cluster_msg_t m = {e.nsp,    e.nsp_len, b.nrooms ? b.rooms : NULL,
                          b.nrooms, b.except,  b.nexcept,
                          pk->data, pk->len};
    r->base.delivered++;
    r->base.deliver(r->base.deliver_ud, &m);
}

static void on_xread(redisAsyncContext *ac, void *reply, void *privdata)
{
    redis_t *r = privdata;
    redisReply *rep = reply;
    (void)ac;
    r->reading = 0;
    if (rep == NULL || r->closing)
        return;
    if (rep->type == REDIS_REPLY_ERROR) {
        RP_LOG_ERROR("cluster", "XREAD: %s", rep->str);
        return; /* the timer tries again */
    }
    size_t n = 0;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1) {
        redisReply *s = rep->element[0];
        if (s->type == REDIS_REPLY_ARRAY && s->elements == 2 &&
            s->element[1]->type == REDIS_REPLY_ARRAY) {
            redisReply *entries = s->element[1];
            n = entries->elements;
            for (size_t i = 0; i < entries->elements && !r->closing; i++) {
                redisReply *en = entries->element[i];
                if (en->type == REDIS_REPLY_ARRAY && en->elements == 2)
                    handle_entry(r, en->element[0], en->element[1]);
            }
        }
    }
    if (n < READ_COUNT && !r->caught_up) {
        r->caught_up = 1;
        log_health(r);
    }
    if (!r->closing)
        read_next(r);
}

static void read_next(redis_t *r)
{
    if (r->rd == NULL || !r->have_live_from || r->reading)
        return;
    char block[16], count[16], last[48];
    snprintf(block, sizeof(block), "%d", BLOCK_MS);
    snprintf(count, sizeof(count), "%d", READ_COUNT);
    snprintf(last, sizeof(last), "%llu-%llu", (unsigned long long)r->last_ms,
             (unsigned long long)r->last_seq);
    /* Until caught up, no BLOCK: an empty answer right away means there is nothing to catch. */
    const char *blocking[] = {"XREAD", "BLOCK", block, "COUNT", count, "STREAMS", STREAM, last};
    const char *at_once[] = {"XREAD", "COUNT", count, "STREAMS", STREAM, last};
    int rc = r->caught_up ? redisAsyncCommandArgv(r->rd, on_xread, r, 8, blocking, NULL)
                          : redisAsyncCommandArgv(r->rd, on_xread, r, 6, at_once, NULL);
    if (rc == REDIS_OK) {
        r->reading = 1;
        r->rd_sent = now_ms();
    }
}

/* The newest entry when this node first connected: older broadcasts are not delivered
 * (they happened before this node existed), older hub events are (catch-up). */
static void on_live_from(redisAsyncContext *ac, void *reply, void *privdata)
{
    redis_t *r = privdata;
    redisReply *rep = reply;
    (void)ac;
    if (rep == NULL || r->closing)
        return;
    if (rep->type == REDIS_REPLY_ARRAY) {
        if (rep->elements == 1 && rep->element[0]->type == REDIS_REPLY_ARRAY &&
            rep->element[0]->elements == 2) {
            redisReply *id = rep->element[0]->element[0];
            if (id->type == REDIS_REPLY_STRING)
                parse_stream_id(id->str, id->len, &r->live_ms, &r->live_seq);
        }
        r->have_live_from = 1;
        read_next(r);
    }
}

/* ---- connections ---- */

static void on_connect(const redisAsyncContext *ac, int status)
{
    redis_t *r = ac->data;
    if (r == NULL)
        return;
    if (status != REDIS_OK) {
        if (ac == r->cmd)
            r->cmd = NULL;
        if (ac == r->rd)
            r->rd = NULL;
        r->next_try = now_ms() + 1000;
        log_health(r);
        return;
    }
    if (ac == r->cmd) {
        r->cmd_up = 1;
        r->ping_outstanding = 0;
        r->next_stats = 0;
    } else if (ac == r->rd) {
        r->rd_up = 1;
    }
    log_health(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    redis_t *r = ac->data;
    (void)status;
    if (r == NULL)
        return;
    if (ac == r->cmd) {
        r->cmd = NULL;
        r->cmd_up = 0;
    }
    if (ac == r->rd) {
        r->rd = NULL;
        r->rd_up = 0;
        r->reading = 0;
        r->caught_up = 0;
    }
    r->next_try = now_ms() + 500;
    if (!r->closing)
        log_health(r);
}

static redisAsyncContext *open_ctx(redis_t *r)
{
    redisAsyncContext *ac = redisAsyncConnect(r->ip, r->port);
    if (ac == NULL)
        return NULL;
    if (ac->err) {
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = r;
    if (redisLibuvAttach(ac, r->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    if (r->db) {
        char db[16];
        snprintf(db, sizeof(db), "%d", r->db);
        const char *argv[] = {"SELECT", db};
        if (redisAsyncCommandArgv(ac, NULL, NULL, 2, argv, NULL) != REDIS_OK) {
            /* Only out of memory: no callback is set yet, so the free calls none of ours. */
            redisAsyncFree(ac);
            return NULL;
        }
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

static void connect_now(redis_t *r)
{
    if (r->cmd == NULL && (r->cmd = open_ctx(r)) != NULL) {
        const char *a1[] = {"SCRIPT", "LOAD", append_lua};
        const char *a2[] = {"SCRIPT", "LOAD", nodes_lua};
        /* Best effort: EVALSHA of a script Redis lacks fails that one call, which is then
         * counted; a failed queueing here means the context is already going away. */
        (void)redisAsyncCommandArgv(r->cmd, NULL, NULL, 3, a1, NULL);
        (void)redisAsyncCommandArgv(r->cmd, NULL, NULL, 3, a2, NULL);
    }
    if (r->rd == NULL && (r->rd = open_ctx(r)) != NULL) {
        if (!r->have_live_from) {
            const char *argv[] = {"XREVRANGE", STREAM, "+", "-", "COUNT", "1"};
            if (redisAsyncCommandArgv(r->rd, on_live_from, r, 6, argv, NULL) != REDIS_OK) {
                r->base.errors++;
                RP_LOG_ERROR("cluster", "redis: cannot queue the stream's first read");
            }
        } else {
            read_next(r);
        }
    }
    if (r->cmd == NULL || r->rd == NULL)
        r->next_try = now_ms() + 1000;
}

static void maybe_free(redis_t *r)
{
    if (--r->holds > 0)
        return;
    rp_buf_deinit(&r->names);
    rp_buf_deinit(&r->scratch);
    rp_free(r->stats);
    rp_free(r->nodes_json);
    rp_free(r);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    redis_t *r = req->data;
    r->resolving = 0;
    if (r->closing) {
        uv_freeaddrinfo(res);
        maybe_free(r);
        return;
    }
    r->holds--;
    if (status < 0 || res == NULL) {
        RP_LOG_WARN("cluster", "redis host %s: %s", r->host, uv_strerror(status));
        r->next_try = now_ms() + 1000;
        uv_freeaddrinfo(res);
        return;
    }
    if (res->ai_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, r->ip, sizeof(r->ip));
    else
        uv_ip4_name((struct sockaddr_in *)res->ai_addr, r->ip, sizeof(r->ip));
    uv_freeaddrinfo(res);
    connect_now(r);
}

/* ---- commands ---- */

static void on_ping(redisAsyncContext *ac, void *reply, void *privdata)
{
    redis_t *r = privdata;
    (void)ac;
    if (reply && !r->closing)
        r->ping_outstanding = 0;
}

static void on_nodes(redisAsyncContext *ac, void *reply, void *privdata)
{
    redis_t *r = privdata;
    redisReply *rep = reply;
    (void)ac;
    if (rep == NULL || r->closing || rep->type != REDIS_REPLY_ARRAY)
        return;
    rp_buf_t b;
    rp_buf_init(&b, (size_t)4 << 20);
    int rc = rp_buf_append_char(&b, '[');
    size_t n = 0;
    for (size_t i = 0; i < rep->elements && rc == 0; i++) {
        redisReply *e = rep->element[i];
        /* Written by any node: only well-formed objects get into our answer. */
        if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->str[0] != '{' ||
            rp_json_validate(e->str, e->len) < 0)
            continue;
        if (n++)
            rc = rp_buf_append_char(&b, ',');
        rc = rc ? rc : rp_buf_append(&b, e->str, e->len);
    }
    rc = rc ? rc : rp_buf_append_char(&b, ']');
    if (rc == 0) {
        rp_free(r->nodes_json);
        r->nodes_json = rp_strndup(b.data, b.len);
    }
    rp_buf_deinit(&b);
}

/* Drops both connections at once, whatever state they are in (one may not have finished
 * connecting, when hiredis calls no disconnect callback): the timer reconnects. */
static void drop_connections(redis_t *r)
{
    redisAsyncContext *cmd = r->cmd, *rd = r->rd;
    r->cmd = r->rd = NULL;
    r->cmd_up = r->rd_up = 0;
    r->reading = 0;
    r->caught_up = 0;
    r->ping_outstanding = 0;
    r->next_try = now_ms() + 500;
    if (cmd)
        redisAsyncFree(cmd);
    if (rd)
        redisAsyncFree(rd);
}

static int healthy(rp_cluster_t *c);

static void on_tick(uv_timer_t *t)
{
    redis_t *r = t->data;
    int64_t now = now_ms();
    /* Whatever got stuck on the way back (a connection that never finished, a read that never
     * came back, a PING unanswered on one side only), it does not stay stuck. */
    if (healthy(&r->base)) {
        r->unhealthy_since = 0;
    } else if (r->unhealthy_since == 0 || r->base.delivered != r->progress) {
        r->unhealthy_since = now; /* not healthy yet, or still catching up */
        r->progress = r->base.delivered;
    } else if (now - r->unhealthy_since > STUCK_MS && (r->cmd || r->rd) && !r->resolving) {
        RP_LOG_WARN("cluster", "redis: not back in step after %d ms; reconnecting", STUCK_MS);
        r->unhealthy_since = now;
        drop_connections(r);
        return;
    }
    if ((r->cmd == NULL || r->rd == NULL) && !r->resolving && now >= r->next_try) {
        r->gai.data = r;
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        if (uv_getaddrinfo(r->loop, &r->gai, on_resolved, r->host, r->port_str, &hints) == 0) {
            r->resolving = 1;
            r->holds++;
        } else {
            r->next_try = now + 1000;
        }
    }
    /* A Redis that stopped answering (not closed): drop the connection and start over. */
    if (r->cmd && r->cmd_up) {
        if (r->ping_outstanding && now - r->ping_sent > PING_DEADLINE_MS) {
            RP_LOG_WARN("cluster", "redis: no answer for %d ms; reconnecting", PING_DEADLINE_MS);
            redisAsyncFree(r->cmd);
        } else if (!r->ping_outstanding) {
            const char *argv[] = {"PING"};
            if (redisAsyncCommandArgv(r->cmd, on_ping, r, 1, argv, NULL) == REDIS_OK) {
                r->ping_outstanding = 1;
                r->ping_sent = now;
            }
        }
    }
    if (r->rd && r->rd_up && r->reading && now - r->rd_sent > BLOCK_MS + PING_DEADLINE_MS)
        redisAsyncFree(r->rd);
    else if (r->rd && r->rd_up && !r->reading)
        read_next(r);
    if (r->cmd && r->cmd_up && r->stats && now >= r->next_stats) {
        r->next_stats = now + STATS_EVERY_MS;
        const char *argv[] = {"EVALSHA", r->nodes_sha, "1",         NODES_KEY,
                              r->uid,    r->stats,     STATS_TTL_MS};
        /* Best effort: the next round (STATS_EVERY_MS) publishes the figures again. */
        (void)redisAsyncCommandArgv(r->cmd, on_nodes, r, 7, argv, NULL);
    }
}

static int publish(rp_cluster_t *c, const rp_cluster_msg_t *m)
{
    redis_t *r = (redis_t *)c;
    if (r->cmd == NULL || !r->cmd_up)
        return RP_EUNAVAIL;
    /* Packet text: type '2', then "/nsp," unless the namespace is "/", then the array. */
    const char *p = m->packet, *end = m->packet + m->packet_len;
    if (p == end || *p != '2')
        return RP_EPROTO; /* only plain events cross to other servers */
    p++;
    if (p < end && *p == '/') {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        if (comma == NULL)
            return RP_EPROTO;
        p = comma + 1;
    }
    if (p == end || *p != '[')
        return RP_EPROTO;
    rp_buf_t data;
    rp_buf_init(&data, (size_t)64 << 20);
    int rc = rp_redis_bcast_encode(&data, m->nsp, m->nsp_len, p, (size_t)(end - p), m->rooms,
                                   m->nrooms, m->except, m->nexcept);
    if (rc == 0) {
        char nsp[256];
        size_t nl = m->nsp_len < sizeof(nsp) - 1 ? m->nsp_len : sizeof(nsp) - 1;
        memcpy(nsp, m->nsp, nl);
        nsp[nl] = '\0';
        const char *argv[] = {"XADD", STREAM, "MAXLEN", "~",    MAXLEN, "*",    "uid",
                              r->uid, "nsp",  nsp,      "type", "3",    "data", data.data};
        size_t lens[] = {4, strlen(STREAM), 6, 1, strlen(MAXLEN), 1, 3, 16, 3, nl, 4, 1,
                         4, data.len};
        rc =
            redisAsyncCommandArgv(r->cmd, NULL, NULL, 14, argv, lens) == REDIS_OK ? 0 : RP_EUNAVAIL;
    }
    rp_buf_deinit(&data);
    if (rc == 0)
        c->published++;
    return rc;
}

static void on_appended(redisAsyncContext *ac, void *reply, void *privdata)
{
    append_req_t *q = privdata;
    redisReply *rep = reply;
    (void)ac;
    int status = RP_EUNAVAIL;
    int64_t id = 0;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_INTEGER) {
        id = rep->element[0]->integer;
        status = id > 0 ? 0 : 1;
    } else if (rep && rep->type == REDIS_REPLY_ERROR) {
        RP_LOG_ERROR("cluster", "append: %s", rep->str);
    }
    if (!q->r->closing)
        q->cb(q->ud, status, id);
    else
        q->cb(q->ud, RP_EUNAVAIL, 0);
    rp_free(q);
}

static int append(rp_cluster_t *c, const rp_cluster_append_t *a, rp_cluster_appended_cb cb,
                  void *ud)
{
    redis_t *r = (redis_t *)c;
    if (r->cmd == NULL || !r->cmd_up)
        return RP_EUNAVAIL;
    append_req_t *q = rp_calloc(1, sizeof(*q));
    if (q == NULL)
        return UV_ENOMEM;
    *q = (append_req_t){r, cb, ud};
    /* data = head + id + tail: the Node adapter's BROADCAST of [name, event] on a->nsp. */
    rp_buf_t head, tail;
    rp_buf_init(&head, (size_t)64 << 20);
    rp_buf_init(&tail, (size_t)64 << 20);
    int rc = rp_buf_append_str(&head, "{\"packet\":{\"type\":2,\"data\":[");
    rc = rc ? rc : rp_json_string_encode(&head, a->name, strlen(a->name));
    rc = rc ? rc : rp_buf_append_char(&head, ',');
    rc = rc ? rc : rp_buf_append(&head, a->head, a->head_len);
    rc = rc ? rc : rp_buf_append(&tail, a->tail, a->tail_len);
    rc = rc ? rc : rp_buf_append_str(&tail, "],\"nsp\":");
    rc = rc ? rc : rp_json_string_encode(&tail, a->nsp, strlen(a->nsp));
    rc = rc ? rc : rp_buf_append_str(&tail, "},\"opts\":{\"rooms\":[");
    for (size_t i = 0; i < a->nrooms && rc == 0; i++) {
        if (i)
            rc = rp_buf_append_char(&tail, ',');
        rc = rc ? rc : rp_json_string_encode(&tail, a->rooms[i], strlen(a->rooms[i]));
    }
    rc = rc ? rc : rp_buf_append_str(&tail, "],\"except\":[],\"flags\":{}}}");
    if (rc == 0) {
        char floor[24], ts[24], ticket[24], dedup[300];
        snprintf(floor, sizeof(floor), "%lld", (long long)a->floor);
        snprintf(ts, sizeof(ts), "%lld", (long long)a->ts_ms);
        snprintf(ticket, sizeof(ticket), "%llu", (unsigned long long)a->ticket);
        if (a->dedup)
            snprintf(dedup, sizeof(dedup), "ragpulse:once:%s", a->dedup);
        else
            dedup[0] = '\0';
        const char *argv[] = {"EVALSHA", r->append_sha, "3",    STREAM, COUNTER_KEY,
                              dedup,     MAXLEN,        r->uid, a->nsp, head.data,
                              tail.data, floor,         ts,     ticket, DEDUP_TTL_MS};
        size_t lens[15];
        for (int i = 0; i < 15; i++)
            lens[i] = strlen(argv[i]);
        lens[9] = head.len;
        lens[10] = tail.len;
        rc = redisAsyncCommandArgv(r->cmd, on_appended, q, 15, argv, lens) == REDIS_OK
                 ? 0
                 : RP_EUNAVAIL;
    }
    rp_buf_deinit(&head);
    rp_buf_deinit(&tail);
    if (rc < 0) {
        rp_free(q);
        return rc;
    }
    c->published++;
    return 0;
}

static int healthy(rp_cluster_t *c)
{
    redis_t *r = (redis_t *)c;
    return r->cmd_up && r->rd_up && r->caught_up;
}

static void session_put(rp_cluster_t *c, const rp_cluster_session_t *s, uint32_t ttl_ms)
{
    redis_t *r = (redis_t *)c;
    if (r->cmd == NULL || !r->cmd_up)
        return;
    rp_buf_t v;
    rp_buf_init(&v, (size_t)1 << 20);
    if (rp_redis_session_encode(&v, s->pid, s->sid, s->nsp, s->rooms, s->nrooms) == 0) {
        char key[64], ttl[16];
        snprintf(key, sizeof(key), SESSION_PREFIX "%s", s->pid);
        snprintf(ttl, sizeof(ttl), "%u", ttl_ms ? ttl_ms : 1);
        const char *argv[] = {"SET", key, v.data, "PX", ttl};
        size_t lens[] = {3, strlen(key), v.len, 2, strlen(ttl)};
        /* Best effort (rp_cluster_ops_t.session_put): a lost copy makes a resume start fresh. */
        (void)redisAsyncCommandArgv(r->cmd, NULL, NULL, 5, argv, lens);
    }
    rp_buf_deinit(&v);
}

static void on_taken(redisAsyncContext *ac, void *reply, void *privdata)
{
    take_req_t *q = privdata;
    redisReply *rep = reply;
    (void)ac;
    rp_redis_session_t s;
    rp_buf_t names;
    rp_buf_init(&names, (size_t)1 << 20);
    int found = !q->r->closing && rep && rep->type == REDIS_REPLY_STRING &&
                rp_redis_session_decode(rep->str, rep->len, &names, &s) == 0;
    if (found) {
        rp_cluster_session_t cs = {s.pid, s.sid, s.nsp, s.rooms, s.nrooms};
        q->cb(q->ud, 1, &cs);
    } else {
        q->cb(q->ud, 0, NULL);
    }
    rp_buf_deinit(&names);
    rp_free(q);
}

static int session_take(rp_cluster_t *c, const char *pid, rp_cluster_session_cb cb, void *ud)
{
    redis_t *r = (redis_t *)c;
    if (strlen(pid) > 40)
        return RP_EINVAL;
    if (r->cmd == NULL || !r->cmd_up)
        return RP_EUNAVAIL;
    take_req_t *q = rp_calloc(1, sizeof(*q));
    if (q == NULL)
        return UV_ENOMEM;
    *q = (take_req_t){r, cb, ud};
    char key[64];
    snprintf(key, sizeof(key), SESSION_PREFIX "%s", pid);
    const char *argv[] = {"GETDEL", key};
    if (redisAsyncCommandArgv(r->cmd, on_taken, q, 2, argv, NULL) != REDIS_OK) {
        rp_free(q);
        return RP_EUNAVAIL;
    }
    return 0;
}

static void set_stats(rp_cluster_t *c, const char *json, size_t len)
{
    redis_t *r = (redis_t *)c;
    if (len < 2 || json[0] != '{')
        return;
    /* {"node":"<uid>", then the rest of the caller's object. */
    size_t n = 10 + 16 + 2 + len;
    char *copy = rp_malloc(n + 1);
    if (copy) {
        snprintf(copy, n + 1, "{\"node\":\"%s\",%.*s", r->uid, (int)(len - 1), json + 1);
        rp_free(r->stats);
        r->stats = copy;
    }
}

static const char *nodes(rp_cluster_t *c)
{
    redis_t *r = (redis_t *)c;
    return r->nodes_json ? r->nodes_json : "[]";
}

static void on_timer_closed(uv_handle_t *h)
{
    maybe_free(h->data);
}

static void redis_close(rp_cluster_t *c)
{
    redis_t *r = (redis_t *)c;
    r->closing = 1;
    /* Pending callbacks run now, with NULL replies: each frees its own request. */
    if (r->cmd)
        redisAsyncFree(r->cmd);
    if (r->rd)
        redisAsyncFree(r->rd);
    r->cmd = r->rd = NULL;
    if (r->resolving)
        uv_cancel((uv_req_t *)&r->gai);
    uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}

static const rp_cluster_ops_t redis_ops = {
    .publish = publish,
    .close = redis_close,
    .append = append,
    .healthy = healthy,
    .session_put = session_put,
    .session_take = session_take,
    .set_stats = set_stats,
    .nodes = nodes,
};

int rp_cluster_redis_parse_url(const char *url, char *host, size_t hostcap, int *port, int *db)
{
    if (strncmp(url, "redis://", 8) != 0)
        return RP_EINVAL;
    const char *h = url + 8, *end = h + strlen(h);
    const char *slash = strchr(h, '/');
    const char *hend = slash ? slash : end;
    const char *colon = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(hend - h));
        if (rb == NULL)
            return RP_EINVAL;
        colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
        if ((size_t)(rb - h - 1) >= hostcap || rb == h + 1)
            return RP_EINVAL;
        memcpy(host, h + 1, (size_t)(rb - h - 1));
        host[rb - h - 1] = '\0';
    } else {
        colon = memchr(h, ':', (size_t)(hend - h));
        const char *he = colon ? colon : hend;
        if (he == h || (size_t)(he - h) >= hostcap || memchr(h, '@', (size_t)(he - h)))
            return RP_EINVAL;
        memcpy(host, h, (size_t)(he - h));
        host[he - h] = '\0';
    }
    *port = 6379;
    *db = 0;
    if (colon) {
        char *e;
        long p = strtol(colon + 1, &e, 10);
        if (e != hend || p < 1 || p > 65535)
            return RP_EINVAL;
        *port = (int)p;
    }
    if (slash && slash[1]) {
        char *e;
        long d = strtol(slash + 1, &e, 10);
        if (*e || d < 0 || d > 15)
            return RP_EINVAL;
        *db = (int)d;
    }
    return 0;
}

rp_cluster_t *rp_cluster_redis_new(uv_loop_t *loop, const char *url, char *err, size_t errlen)
{
    redis_t *r = rp_calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (rp_cluster_redis_parse_url(url, r->host, sizeof(r->host), &r->port, &r->db) < 0) {
        snprintf(err, errlen, "expected redis://HOST[:PORT][/DB], got '%s'", url);
        goto undo_redis;
    }
    unsigned char raw[8];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        snprintf(err, errlen, "no randomness");
        goto undo_redis;
    }
    /* A 16-hex-digit uid like the Node adapter's randomId(). */
    for (int i = 0; i < 8; i++)
        snprintf(r->uid + 2 * i, 3, "%02x", raw[i]);
    snprintf(r->port_str, sizeof(r->port_str), "%d", r->port);
    sha1_hex(append_lua, r->append_sha);
    sha1_hex(nodes_lua, r->nodes_sha);
    r->base.ops = &redis_ops;
    r->base.kind = "redis";
    r->loop = loop;
    rp_buf_init(&r->names, (size_t)1 << 20);
    rp_buf_init(&r->scratch, (size_t)64 << 20);
    r->holds = 1; /* the timer */
    int rc = uv_timer_init(loop, &r->timer);
    if (rc < 0) {
        snprintf(err, errlen, "timer: %s", uv_strerror(rc));
        goto undo_redis;
    }
    r->timer.data = r;
    rc = uv_timer_start(&r->timer, on_tick, 0, 500);
    if (rc < 0) {
        snprintf(err, errlen, "timer: %s", uv_strerror(rc));
        goto undo_timer;
    }
    uv_unref((uv_handle_t *)&r->timer);
    return &r->base;
undo_timer:
    uv_close((uv_handle_t *)&r->timer, on_timer_closed); /* frees r (holds is 1) */
    return NULL;
undo_redis:
    rp_free(r); /* names and scratch hold no memory yet */
    return NULL;
}
