/* SPDX-License-Identifier: MIT */
#ifndef RP_HUB_AUTH_H
#define RP_HUB_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

/* Who may do what: JSON Web Tokens (libjwt) verified against one configured key, and the
 * principal they carry. A token's claims are `role` ("viewer", "producer" or "admin") and
 * `pipelines` (an array of pipeline ids, "*" for all), the optional `channels` (an object
 * {"PATTERN": ["subscribe", "publish", "send"]}, '*' in a pattern matching any run of
 * characters), plus the registered `exp`, `nbf`, `iss`, `aud` and `sub`. Viewers see their
 * pipelines; producers also send events for them; admins may do everything (pipelines and
 * channels ignored). On channels, anyone else may do exactly what the claim grants.
 *
 * The algorithm is fixed by the key, never taken from the token: an HMAC secret accepts only
 * HS256, a PEM public key only RS256 (RSA) or ES256 (EC P-256), so a token signed with "none"
 * or with the public key used as an HMAC secret is refused. Any thread. */

typedef enum rp_role {
    RP_ROLE_VIEWER = 1,
    RP_ROLE_PRODUCER = 2,
    RP_ROLE_ADMIN = 3
} rp_role_t;

typedef struct rp_auth rp_auth_t;

typedef struct rp_auth_config {
    const char *secret;     /* HS256 secret, or NULL */
    const char *public_key; /* PEM text of an RSA or EC P-256 public key, or NULL */
    const char *issuer;     /* required `iss`, or NULL */
    const char *audience;   /* required in `aud` (a string or an array), or NULL */
    uint32_t leeway_s;      /* clock skew allowed on exp/nbf */
} rp_auth_config_t;

/* Rights on channels, as bits of rp_principal_channel_t.rights. */
enum {
    RP_CHAN_SUBSCRIBE = 1,
    RP_CHAN_PUBLISH = 2,
    RP_CHAN_SEND = 4
};

/* One entry of the `channels` claim. */
typedef struct rp_principal_channel {
    char *pattern; /* owned: 1..128 of [A-Za-z0-9_.:@-*] */
    int rights;    /* RP_CHAN_* bits */
} rp_principal_channel_t;

/* A verified token's grant. */
typedef struct rp_principal {
    rp_role_t role;
    int all_pipelines;
    char **pipelines; /* owned, each owned */
    size_t npipelines;
    rp_principal_channel_t *channels; /* owned, each pattern owned; NULL when no claim */
    size_t nchannels;
    char sub[128];
    char id[80]; /* who, for per-producer limits: "sub:<sub>", or "tok:<hash of the token>" */
    int64_t exp; /* seconds since the epoch, 0 when the token has none */
} rp_principal_t;

/* Makes a verifier; exactly one of secret and public_key must be set. Returns NULL with err
 * filled (bad key, out of memory). The strings are copied. */
rp_auth_t *rp_auth_new(const rp_auth_config_t *cfg, char *err, size_t errlen);
void rp_auth_free(rp_auth_t *a);

/* Verifies token[0..len) at time now_s. Returns a new principal (free with
 * rp_principal_free), or NULL with why filled with a reason fit to show the client
 * ("token expired", "bad signature", ...). */
rp_principal_t *rp_auth_verify(const rp_auth_t *a, const char *token, size_t len, int64_t now_s,
                               char *why, size_t whylen);
void rp_principal_free(rp_principal_t *p);
/* True when p's token has expired at now_s (with a's leeway): for principals kept past
 * their verification (a connected socket's). */
int rp_auth_expired(const rp_auth_t *a, const rp_principal_t *p, int64_t now_s);
/* A copy of p (NULL on out-of-memory). */
rp_principal_t *rp_principal_dup(const rp_principal_t *p);
/* True when p may see every pipeline (admins, or "*"). */
static inline int rp_principal_sees_all(const rp_principal_t *p)
{
    return p->role == RP_ROLE_ADMIN || p->all_pipelines;
}

/* True when p may watch pipeline_id (viewers and producers: listed or "*"; admins: all). */
int rp_principal_sees(const rp_principal_t *p, const char *pipeline_id);
/* True when p may send events for pipeline_id (producers: listed or "*"; admins: all). */
int rp_principal_produces(const rp_principal_t *p, const char *pipeline_id);
/* True when p sees everything q sees: every pipeline q sees, and the admins' rooms if q is an
 * admin (so a socket of q's may be handed over to p without p gaining or q losing a view).
 * Producing is not seeing: a viewer of "a" covers a producer of "a". */
int rp_principal_covers(const rp_principal_t *p, const rp_principal_t *q);
/* 1 when p may do `right` (one RP_CHAN_* bit) on channel name: admins always; others when a
 * pattern of their channels claim matching name grants it (no claim: never). */
int rp_principal_channel_allows(const rp_principal_t *p, const char *name, int right);
/* "viewer", "producer", "admin". */
const char *rp_role_name(rp_role_t r);
/* Parses a role name; returns the role or RP_EINVAL. */
int rp_role_parse(const char *name);

/* Signs a token (HS256 with secret) for role and pipelines (a comma-separated list, "*" for
 * all), valid from now_s for ttl_s seconds, with optional sub/iss/aud and channels (the CLI
 * form "chat:s1=subscribe+send,crawl:*=subscribe": entries split by ',' or ';', rights by
 * '+'; NULL or "" for no claim). Returns a malloc'd token (free()), or NULL with err filled
 * (a malformed channels spec says which entry and why). */
char *rp_auth_sign(const char *secret, rp_role_t role, const char *pipelines, int64_t now_s,
                   int64_t ttl_s, const char *sub, const char *iss, const char *aud,
                   const char *channels, char *err, size_t errlen);

/* Checks a channels spec as rp_auth_sign reads it. Returns 0, or RP_EINVAL with err naming
 * the entry and what is wrong (UV_ENOMEM: out of memory). */
int rp_auth_channels_check(const char *spec, char *err, size_t errlen);

#endif
