/* SPDX-License-Identifier: MIT */
/* JWT verification and signing over libjwt, and the principal a token grants. libjwt checks
 * the signature; everything else is checked here from the header and claims as JSON: the
 * algorithm against the key's kind (never the token's word for it), critical header
 * extensions (none is supported, so `crit` refuses), exp/nbf with leeway, iss, aud, role,
 * pipelines and the channels claim (a malformed one refuses the token rather than granting
 * less than it says). Reasons given back are short and safe to show a client: they never
 * echo the token. */
#include "hub/auth.h"

#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "util/alloc.h"
#include "util/err.h"

#define MAX_TOKEN 8192

struct rp_auth {
    jwt_alg_t alg; /* the only algorithm accepted */
    unsigned char *key;
    size_t key_len;
    char *issuer;
    char *audience;
    uint32_t leeway_s;
};

static char *dup_or_null(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = rp_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* The algorithm a PEM public key verifies: RS256 for RSA, ES256 for EC P-256, else -1. */
static int pem_alg(const char *pem, char *err, size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (k == NULL) {
        snprintf(err, errlen,
                 "the public key is not a PEM public key (-----BEGIN PUBLIC KEY-----)");
        return RP_EINVAL;
    }
    int alg = RP_EINVAL;
    if (EVP_PKEY_base_id(k) == EVP_PKEY_RSA) {
        alg = JWT_ALG_RS256;
    } else if (EVP_PKEY_base_id(k) == EVP_PKEY_EC) {
        char curve[64] = "";
        size_t cl = 0;
        if (EVP_PKEY_get_utf8_string_param(k, "group", curve, sizeof(curve), &cl) == 1 &&
            strcmp(curve, "prime256v1") == 0)
            alg = JWT_ALG_ES256;
        else
            snprintf(err, errlen, "an EC public key must be on P-256 (ES256), not %s",
                     curve[0] ? curve : "this curve");
    } else {
        snprintf(err, errlen, "the public key must be RSA (RS256) or EC P-256 (ES256)");
    }
    EVP_PKEY_free(k);
    return alg;
}

rp_auth_t *rp_auth_new(const rp_auth_config_t *cfg, char *err, size_t errlen)
{
    if ((cfg->secret == NULL) == (cfg->public_key == NULL)) {
        snprintf(err, errlen, "give either a secret or a public key");
        return NULL;
    }
    if (cfg->secret && strlen(cfg->secret) < 16) {
        snprintf(err, errlen,
                 "the secret is too short: use at least 16 characters (32 random bytes is better)");
        return NULL;
    }
    int alg = cfg->secret ? (int)JWT_ALG_HS256 : pem_alg(cfg->public_key, err, errlen);
    if (alg < 0)
        return NULL;
    rp_auth_t *a = rp_calloc(1, sizeof(*a));
    const char *key = cfg->secret ? cfg->secret : cfg->public_key;
    if (a == NULL || (a->key = (unsigned char *)dup_or_null(key)) == NULL ||
        (cfg->issuer && (a->issuer = dup_or_null(cfg->issuer)) == NULL) ||
        (cfg->audience && (a->audience = dup_or_null(cfg->audience)) == NULL)) {
        rp_auth_free(a);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->alg = (jwt_alg_t)alg;
    /* HMAC keys are the secret's bytes; PEM keys are given to libjwt with their NUL. */
    a->key_len = strlen(key) + (cfg->secret ? 0 : 1);
    a->leeway_s = cfg->leeway_s;
    return a;
}

void rp_auth_free(rp_auth_t *a)
{
    if (a == NULL)
        return;
    rp_free(a->key);
    rp_free(a->issuer);
    rp_free(a->audience);
    rp_free(a);
}

void rp_principal_free(rp_principal_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->npipelines; i++)
        rp_free(p->pipelines[i]);
    rp_free(p->pipelines);
    for (size_t i = 0; i < p->nchannels; i++)
        rp_free(p->channels[i].pattern);
    rp_free(p->channels);
    rp_free(p);
}

static int add_pipeline(rp_principal_t *p, const char *id, size_t len);
static int add_channel(rp_principal_t *p, const char *pattern, size_t len, int rights);

rp_principal_t *rp_principal_dup(const rp_principal_t *p)
{
    rp_principal_t *d = rp_calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    *d = *p;
    d->pipelines = NULL;
    d->npipelines = 0;
    d->channels = NULL;
    d->nchannels = 0;
    for (size_t i = 0; i < p->npipelines; i++) {
        if (add_pipeline(d, p->pipelines[i], strlen(p->pipelines[i])) < 0) {
            rp_principal_free(d);
            return NULL;
        }
    }
    for (size_t i = 0; i < p->nchannels; i++) {
        const rp_principal_channel_t *c = &p->channels[i];
        if (add_channel(d, c->pattern, strlen(c->pattern), c->rights) < 0) {
            rp_principal_free(d);
            return NULL;
        }
    }
    return d;
}

const char *rp_role_name(rp_role_t r)
{
    return r == RP_ROLE_ADMIN ? "admin" : r == RP_ROLE_PRODUCER ? "producer" : "viewer";
}

int rp_role_parse(const char *name)
{
    if (strcmp(name, "viewer") == 0)
        return RP_ROLE_VIEWER;
    if (strcmp(name, "producer") == 0)
        return RP_ROLE_PRODUCER;
    if (strcmp(name, "admin") == 0)
        return RP_ROLE_ADMIN;
    return RP_EINVAL;
}

/* Adds one pipeline id to p ("*" means all). Returns 0 or UV_ENOMEM. */
static int add_pipeline(rp_principal_t *p, const char *id, size_t len)
{
    if (len == 1 && id[0] == '*') {
        p->all_pipelines = 1;
        return 0;
    }
    if (len == 0)
        return 0;
    char **grown = rp_realloc(p->pipelines, (p->npipelines + 1) * sizeof(*grown));
    if (grown == NULL)
        return UV_ENOMEM;
    p->pipelines = grown;
    char *copy = rp_malloc(len + 1);
    if (copy == NULL)
        return UV_ENOMEM;
    memcpy(copy, id, len);
    copy[len] = '\0';
    p->pipelines[p->npipelines++] = copy;
    return 0;
}

/* ---- channels: the claim's patterns and rights ---- */

static const struct {
    const char *name;
    int bit;
} chan_rights[] = {
    {"subscribe", RP_CHAN_SUBSCRIBE},
    {"publish", RP_CHAN_PUBLISH},
    {"send", RP_CHAN_SEND},
};

/* The RP_CHAN_* bit of a right's name s[0..len), or RP_EINVAL. */
static int right_parse(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof(chan_rights) / sizeof(chan_rights[0]); i++)
        if (strlen(chan_rights[i].name) == len && memcmp(chan_rights[i].name, s, len) == 0)
            return chan_rights[i].bit;
    return RP_EINVAL;
}

/* 1 when s[0..len) is a channel pattern: 1..128 of [A-Za-z0-9_.:@-] and '*'. */
static int pattern_valid(const char *s, size_t len)
{
    if (len == 0 || len > 128)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == ':' || c == '@' || c == '-' || c == '*';
        if (!ok)
            return 0;
    }
    return 1;
}

/* 1 when name matches pat, '*' matching any run of characters (none included). Greedy with
 * one backtrack point, the last star: linear in practice, O(len(pat) * len(name)) at worst. */
static int glob_match(const char *pat, const char *name)
{
    const char *star = NULL;
    const char *resume = NULL;
    while (*name) {
        if (*pat == '*') {
            star = pat++;
            resume = name;
        } else if (*pat == *name) {
            pat++;
            name++;
        } else if (star) {
            pat = star + 1;
            name = ++resume;
        } else {
            return 0;
        }
    }
    while (*pat == '*')
        pat++;
    return *pat == '\0';
}

/* Grants rights on pattern[0..len) to p, merged into an entry of the same pattern. Returns 0
 * or UV_ENOMEM (p unchanged). */
static int add_channel(rp_principal_t *p, const char *pattern, size_t len, int rights)
{
    for (size_t i = 0; i < p->nchannels; i++) {
        if (strlen(p->channels[i].pattern) == len &&
            memcmp(p->channels[i].pattern, pattern, len) == 0) {
            p->channels[i].rights |= rights;
            return 0;
        }
    }
    char *copy = rp_malloc(len + 1);
    if (copy == NULL)
        return UV_ENOMEM;
    memcpy(copy, pattern, len);
    copy[len] = '\0';
    rp_principal_channel_t *grown = rp_realloc(p->channels, (p->nchannels + 1) * sizeof(*grown));
    if (grown == NULL) {
        rp_free(copy);
        return UV_ENOMEM;
    }
    p->channels = grown;
    p->channels[p->nchannels].pattern = copy;
    p->channels[p->nchannels].rights = rights;
    p->nchannels++;
    return 0;
}

/* Reads the `channels` claim into p. Returns 0, or RP_EINVAL / UV_ENOMEM with why filled. */
static int channels_from(rp_principal_t *p, json_t *claim, char *why, size_t whylen)
{
    if (!json_is_object(claim)) {
        snprintf(why, whylen, "channels must be an object {\"PATTERN\": [rights]}");
        return RP_EINVAL;
    }
    for (void *it = json_object_iter(claim); it; it = json_object_iter_next(claim, it)) {
        const char *pattern = json_object_iter_key(it);
        size_t plen = json_object_iter_key_len(it);
        json_t *list = json_object_iter_value(it);
        if (!pattern_valid(pattern, plen)) {
            snprintf(why, whylen, "channels: a pattern must be 1..128 of A-Za-z0-9_.:@- and *");
            return RP_EINVAL;
        }
        if (!json_is_array(list)) {
            snprintf(why, whylen, "channels: each pattern's rights must be a list");
            return RP_EINVAL;
        }
        int rights = 0;
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v)
        {
            int bit = json_is_string(v) ? right_parse(json_string_value(v), json_string_length(v))
                                        : RP_EINVAL;
            if (bit < 0) {
                snprintf(why, whylen, "channels: a right must be subscribe, publish or send");
                return RP_EINVAL;
            }
            rights |= bit;
        }
        if (add_channel(p, pattern, plen, rights) < 0) {
            snprintf(why, whylen, "out of memory");
            return UV_ENOMEM;
        }
    }
    return 0;
}

int rp_principal_channel_allows(const rp_principal_t *p, const char *name, int right)
{
    if (p->role == RP_ROLE_ADMIN)
        return 1;
    for (size_t i = 0; i < p->nchannels; i++)
        if ((p->channels[i].rights & right) && glob_match(p->channels[i].pattern, name))
            return 1;
    return 0;
}

/* A NumericDate claim: 1 and *out when present and a number, 0 when absent, RP_EINVAL when
 * not a number. */
static int numeric_date(const json_t *claims, const char *name, int64_t *out)
{
    json_t *v = json_object_get(claims, name);
    if (v == NULL)
        return 0;
    if (!json_is_number(v))
        return RP_EINVAL;
    *out = (int64_t)json_number_value(v);
    return 1;
}

static int audience_ok(const json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    size_t i;
    json_t *v;
    json_array_foreach(aud, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
            return 1;
    }
    return 0;
}

/* Reads the grant out of verified claims; returns NULL with why filled. */
static rp_principal_t *principal_from(const rp_auth_t *a, const json_t *claims, int64_t now_s,
                                      char *why, size_t whylen)
{
    int64_t exp = 0, nbf = 0;
    int has_exp = numeric_date(claims, "exp", &exp);
    int has_nbf = numeric_date(claims, "nbf", &nbf);
    if (has_exp < 0 || has_nbf < 0) {
        snprintf(why, whylen, "exp and nbf must be numbers");
        return NULL;
    }
    if (has_exp && now_s > exp + (int64_t)a->leeway_s) {
        snprintf(why, whylen, "token expired");
        return NULL;
    }
    if (has_nbf && now_s + (int64_t)a->leeway_s < nbf) {
        snprintf(why, whylen, "token not valid yet (nbf)");
        return NULL;
    }
    if (a->issuer) {
        const char *iss = json_string_value(json_object_get(claims, "iss"));
        if (iss == NULL || strcmp(iss, a->issuer) != 0) {
            snprintf(why, whylen, "wrong issuer (iss)");
            return NULL;
        }
    }
    if (a->audience && !audience_ok(json_object_get(claims, "aud"), a->audience)) {
        snprintf(why, whylen, "wrong audience (aud)");
        return NULL;
    }
    const char *role = json_string_value(json_object_get(claims, "role"));
    int r = role ? rp_role_parse(role) : RP_EINVAL;
    if (r < 0) {
        snprintf(why, whylen, "the token's role must be viewer, producer or admin");
        return NULL;
    }
    rp_principal_t *p = rp_calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    p->role = (rp_role_t)r;
    p->exp = has_exp ? exp : 0;
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    snprintf(p->sub, sizeof(p->sub), "%s", sub ? sub : "");
    json_t *pl = json_object_get(claims, "pipelines");
    int bad = 0;
    if (json_is_array(pl)) {
        size_t i;
        json_t *v;
        json_array_foreach(pl, i, v)
        {
            if (!json_is_string(v))
                bad = 1;
            else if (add_pipeline(p, json_string_value(v), json_string_length(v)) < 0)
                bad = 2;
        }
    } else if (json_is_string(pl)) {
        /* "a,b" or "*": what operators type. */
        const char *s = json_string_value(pl);
        while (*s && !bad) {
            size_t n = strcspn(s, ",");
            if (add_pipeline(p, s, n) < 0)
                bad = 2;
            s += n + (s[n] == ',');
        }
    } else if (pl != NULL) {
        bad = 1;
    }
    if (bad) {
        snprintf(why, whylen,
                 bad == 2 ? "out of memory" : "pipelines must be a list of pipeline ids");
        rp_principal_free(p);
        return NULL;
    }
    json_t *ch = json_object_get(claims, "channels");
    if (ch != NULL && channels_from(p, ch, why, whylen) < 0) {
        rp_principal_free(p);
        return NULL;
    }
    return p;
}

/* RFC 7515 section 4.1.11: a recipient must refuse a token whose `crit` header lists
 * extensions it does not understand. This hub understands none, so any `crit` refuses the
 * token: the reason names the extensions (or says the header is malformed). Returns 0 or RP_EAUTH
 * with why filled. */
static int critical_headers(jwt_t *jwt, char *why, size_t whylen)
{
    char *text = jwt_get_headers_json(jwt, NULL);
    json_t *h = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
    free(text);
    if (!json_is_object(h)) {
        json_decref(h);
        snprintf(why, whylen, "the token's header is not a JSON object");
        return RP_EAUTH;
    }
    json_t *crit = json_object_get(h, "crit");
    if (crit == NULL) {
        json_decref(h);
        return 0;
    }
    char names[96] = "";
    size_t n = 0;
    int bad = !json_is_array(crit) || json_array_size(crit) == 0;
    size_t i;
    json_t *v;
    json_array_foreach(crit, i, v)
    {
        if (!json_is_string(v) || json_string_length(v) == 0) {
            bad = 1;
            break;
        }
        int w =
            snprintf(names + n, sizeof(names) - n, "%s%.40s", n ? ", " : "", json_string_value(v));
        n = w < 0 || (size_t)w >= sizeof(names) - n ? sizeof(names) - 1 : n + (size_t)w;
    }
    if (bad)
        snprintf(why, whylen, "malformed crit header (a non-empty list of header names)");
    else
        snprintf(why, whylen, "unsupported critical header extension (crit: %s)", names);
    json_decref(h);
    return RP_EAUTH;
}

rp_principal_t *rp_auth_verify(const rp_auth_t *a, const char *token, size_t len, int64_t now_s,
                               char *why, size_t whylen)
{
    if (len == 0) {
        snprintf(why, whylen, "no token");
        return NULL;
    }
    if (len > MAX_TOKEN) {
        snprintf(why, whylen, "token too long");
        return NULL;
    }
    char buf[MAX_TOKEN + 1];
    memcpy(buf, token, len);
    buf[len] = '\0';
    if (strlen(buf) != len ||
        strspn(buf, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=") != len) {
        snprintf(why, whylen, "malformed token");
        return NULL;
    }
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, buf, a->key, (int)a->key_len) != 0 || jwt == NULL) {
        snprintf(why, whylen, "bad token (signature or format)");
        return NULL;
    }
    if (jwt_get_alg(jwt) != a->alg) {
        snprintf(why, whylen, "token algorithm %s not accepted (%s expected)",
                 jwt_alg_str(jwt_get_alg(jwt)), jwt_alg_str(a->alg));
        jwt_free(jwt);
        return NULL;
    }
    if (critical_headers(jwt, why, whylen) < 0) {
        jwt_free(jwt);
        return NULL;
    }
    char *text = jwt_get_grants_json(jwt, NULL);
    json_t *claims = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
    free(text);
    jwt_free(jwt);
    if (!json_is_object(claims)) {
        json_decref(claims);
        snprintf(why, whylen, "the token's claims are not a JSON object");
        return NULL;
    }
    rp_principal_t *p = principal_from(a, claims, now_s, why, whylen);
    json_decref(claims);
    if (p && p->sub[0]) {
        snprintf(p->id, sizeof(p->id), "sub:%.70s", p->sub);
    } else if (p) {
        uint64_t h = 1469598103934665603ULL; /* FNV-1a: a name for the token, not a secret */
        for (size_t i = 0; i < len; i++)
            h = (h ^ (unsigned char)token[i]) * 1099511628211ULL;
        snprintf(p->id, sizeof(p->id), "tok:%016llx", (unsigned long long)h);
    }
    return p;
}

int rp_auth_expired(const rp_auth_t *a, const rp_principal_t *p, int64_t now_s)
{
    return p->exp && now_s > p->exp + (int64_t)a->leeway_s;
}

static int listed(const rp_principal_t *p, const char *pipeline_id)
{
    if (p->all_pipelines)
        return 1;
    for (size_t i = 0; i < p->npipelines; i++)
        if (strcmp(p->pipelines[i], pipeline_id) == 0)
            return 1;
    return 0;
}

int rp_principal_sees(const rp_principal_t *p, const char *pipeline_id)
{
    return p->role == RP_ROLE_ADMIN || listed(p, pipeline_id);
}

int rp_principal_produces(const rp_principal_t *p, const char *pipeline_id)
{
    return p->role == RP_ROLE_ADMIN || (p->role == RP_ROLE_PRODUCER && listed(p, pipeline_id));
}

int rp_principal_covers(const rp_principal_t *p, const rp_principal_t *q)
{
    if (q->role == RP_ROLE_ADMIN)
        return p->role == RP_ROLE_ADMIN;
    if (rp_principal_sees_all(p))
        return 1;
    if (q->all_pipelines)
        return 0;
    for (size_t i = 0; i < q->npipelines; i++)
        if (!rp_principal_sees(p, q->pipelines[i]))
            return 0;
    return 1;
}

/* Adds one "PATTERN=RIGHT+RIGHT" entry e[0..n) of a channels spec to obj (the claim).
 * Returns 0, RP_EINVAL with err naming the entry, or UV_ENOMEM. */
static int spec_entry(json_t *obj, const char *e, size_t n, char *err, size_t errlen)
{
    const char *eq = memchr(e, '=', n);
    size_t plen = eq ? (size_t)(eq - e) : n;
    int shown = n > 60 ? 60 : (int)n;
    if (eq == NULL || !pattern_valid(e, plen)) {
        snprintf(err, errlen,
                 "--channels entry '%.*s': want PATTERN=RIGHT+RIGHT, a pattern of 1..128 of "
                 "A-Za-z0-9_.:@- and *",
                 shown, e);
        return RP_EINVAL;
    }
    char pattern[129];
    memcpy(pattern, e, plen);
    pattern[plen] = '\0';
    json_t *list = json_object_get(obj, pattern);
    if (list == NULL) {
        list = json_array();
        if (list == NULL || json_object_set_new(obj, pattern, list) < 0)
            return UV_ENOMEM;
    }
    const char *end = e + n;
    const char *r = eq + 1;
    do {
        const char *plus = memchr(r, '+', (size_t)(end - r));
        size_t rl = plus ? (size_t)(plus - r) : (size_t)(end - r);
        int bit = right_parse(r, rl);
        if (bit < 0) {
            snprintf(err, errlen,
                     "--channels entry '%.*s': a right must be subscribe, publish or send, got "
                     "'%.*s'",
                     shown, e, rl > 20 ? 20 : (int)rl, r);
            return RP_EINVAL;
        }
        int seen = 0;
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v)
        {
            seen |= right_parse(json_string_value(v), json_string_length(v)) == bit;
        }
        if (!seen && json_array_append_new(list, json_stringn(r, rl)) < 0)
            return UV_ENOMEM;
        r += rl + 1;
    } while (r <= end);
    return 0;
}

/* The channels claim from the CLI spec (entries split by ',' or ';') in *out (a new
 * reference). Returns 0, or RP_EINVAL / UV_ENOMEM with err filled. */
static int spec_claim(const char *spec, json_t **out, char *err, size_t errlen)
{
    json_t *obj = json_object();
    int rc = obj ? 0 : UV_ENOMEM;
    for (const char *s = spec; *s && rc == 0;) {
        size_t n = strcspn(s, ",;");
        rc = n ? spec_entry(obj, s, n, err, errlen) : 0;
        s += n + (s[n] != '\0');
    }
    if (rc == UV_ENOMEM)
        snprintf(err, errlen, "out of memory");
    if (rc < 0) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

int rp_auth_channels_check(const char *spec, char *err, size_t errlen)
{
    json_t *claim = NULL;
    int rc = spec_claim(spec, &claim, err, errlen);
    json_decref(claim);
    return rc;
}

char *rp_auth_sign(const char *secret, rp_role_t role, const char *pipelines, int64_t now_s,
                   int64_t ttl_s, const char *sub, const char *iss, const char *aud,
                   const char *channels, char *err, size_t errlen)
{
    json_t *claims = json_pack("{s:s,s:I}", "role", rp_role_name(role), "iat", (json_int_t)now_s);
    json_t *list = json_array();
    if (claims == NULL || list == NULL) {
        json_decref(claims);
        json_decref(list);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (const char *s = pipelines ? pipelines : ""; *s;) {
        size_t n = strcspn(s, ",");
        if (n)
            json_array_append_new(list, json_stringn(s, n));
        s += n + (s[n] == ',');
    }
    json_object_set_new(claims, "pipelines", list);
    if (channels && *channels) {
        json_t *ch = NULL;
        if (spec_claim(channels, &ch, err, errlen) < 0 ||
            json_object_set_new(claims, "channels", ch) < 0) {
            if (ch != NULL) /* set_new failed (and freed ch) */
                snprintf(err, errlen, "out of memory");
            json_decref(claims);
            return NULL;
        }
    }
    if (ttl_s > 0)
        json_object_set_new(claims, "exp", json_integer((json_int_t)(now_s + ttl_s)));
    if (sub && *sub)
        json_object_set_new(claims, "sub", json_string(sub));
    if (iss && *iss)
        json_object_set_new(claims, "iss", json_string(iss));
    if (aud && *aud)
        json_object_set_new(claims, "aud", json_string(aud));
    char *text = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);
    jwt_t *jwt = NULL;
    char *token = NULL;
    if (text && jwt_new(&jwt) == 0 && jwt_add_grants_json(jwt, text) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)) == 0)
        token = jwt_encode_str(jwt);
    if (token == NULL)
        snprintf(err, errlen, "cannot sign the token");
    free(text);
    jwt_free(jwt);
    return token;
}
