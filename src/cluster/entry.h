/* SPDX-License-Identifier: MIT */
#ifndef RP_CLUSTER_ENTRY_H
#define RP_CLUSTER_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* The wire of @socket.io/redis-streams-adapter 0.3, decoded and encoded without a tree.
 *
 * A stream entry is a field map: uid (the adapter's 16 hex digits), nsp, type (the
 * ClusterAdapter message type as decimal text: 3 is BROADCAST) and data: JSON text when it
 * starts with '{', else base64 of msgpack (binary payloads). ragpulse adds rpid (the hub
 * event id), rpts (its time, ms) and rpt (the appending node's ticket) to the broadcasts that
 * carry hub events; other servers ignore fields they do not know. A BROADCAST's data is
 * {"packet":{"type":2,"data":[event, args...],"nsp":"/x"},"opts":{"rooms":[...],
 * "except":[...],"flags":{...}}}. Sessions for connection-state recovery are base64 of msgpack
 * {sid, pid, rooms, data} under sio:session:<pid>.
 *
 * Everything here is a decoder of outside input (anything that can write to the Redis can
 * write entries): bounded, never trusting a length, fuzzed by tests/fuzz/fuzz_redis_entry.c. */

#define RP_REDIS_MAX_ROOMS 256

typedef struct rp_redis_entry {
    const char *uid;
    size_t uid_len;
    const char *nsp;
    size_t nsp_len;
    int type;         /* -1 when absent or not a number */
    const char *data; /* NULL when absent */
    size_t data_len;
    int64_t rpid; /* 0 when absent: not a hub event */
    int64_t rpts;
    uint64_t ticket;
} rp_redis_entry_t;

/* Reads an entry's fields (f[0], v[0], f[1], ...: n pairs as spans). Unknown fields are
 * ignored. Returns 0, or RP_EPROTO when uid, nsp or type is missing or rpid/rpts/rpt is not a
 * decimal number. */
int rp_redis_entry_decode(const char *const *fields, const size_t *lens, size_t n,
                          rp_redis_entry_t *e);

/* A BROADCAST's data, decoded. rooms/except point into `names` (NUL-terminated strings). */
typedef struct rp_redis_bcast {
    const char *args; /* the packet's data array text, "[...]" */
    size_t args_len;
    const char *name;  /* the event name (decoded, in names) */
    const char *first; /* the first argument after the name (its JSON span), NULL if none */
    size_t first_len;
    const char *rooms[RP_REDIS_MAX_ROOMS];
    size_t nrooms;
    const char *except[RP_REDIS_MAX_ROOMS];
    size_t nexcept;
    int with_ack; /* requestId or packet id present: an ack broadcast (not ours to relay) */
} rp_redis_bcast_t;

/* Decodes a JSON BROADCAST data of namespace nsp. names is reset and holds the decoded
 * strings. Returns 0, RP_EPROTO (not a broadcast of a plain event packet of nsp), or an
 * rp_buf error. */
int rp_redis_bcast_decode(const char *data, size_t len, const char *nsp, size_t nsp_len,
                          rp_buf_t *names, rp_redis_bcast_t *b);

/* Appends the JSON data of a BROADCAST of event `args` ("[name, ...]") on nsp to out. */
int rp_redis_bcast_encode(rp_buf_t *out, const char *nsp, size_t nsp_len, const char *args,
                          size_t args_len, const char *const *rooms, size_t nrooms,
                          const char *const *except, size_t nexcept);

/* A recovery session as stored under sio:session:<pid>. Strings point into names. */
typedef struct rp_redis_session {
    const char *sid;
    const char *pid;
    const char *nsp; /* "" when the writer did not say (a Node server) */
    const char *rooms[RP_REDIS_MAX_ROOMS];
    size_t nrooms;
} rp_redis_session_t;

/* Decodes the stored value (base64 text). Returns 0, RP_EPROTO, or an rp_buf error. */
int rp_redis_session_decode(const char *b64, size_t len, rp_buf_t *names, rp_redis_session_t *s);
/* Appends the stored value (base64 text) for s to out. */
int rp_redis_session_encode(rp_buf_t *out, const char *pid, const char *sid, const char *nsp,
                            const char *const *rooms, size_t nrooms);

#endif
