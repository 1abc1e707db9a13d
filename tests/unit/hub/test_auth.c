/* SPDX-License-Identifier: MIT */
/* hub/auth: JWT verification and signing, the principal a token grants, and the bearer
 * credential of a request (http/query.c). Tokens are made with rp_auth_sign or with libjwt
 * directly (for claims and algorithms rp_auth_sign does not make); "now" is passed in, so
 * expiry is tested without waiting. Ends with out-of-memory at every allocation of a
 * verification. */
#include "unit.h"

#include <jwt.h>

#include "http/http.h"
#include "hub/auth.h"
#include "util/alloc.h"
#include "util/err.h"

#define SECRET "unit-test-secret-0123456789"
#define NOW    1795300000LL

static rp_auth_t *verifier(const char *iss, const char *aud, uint32_t leeway)
{
    char err[128];
    rp_auth_config_t cfg = {SECRET, NULL, iss, aud, leeway};
    rp_auth_t *a = rp_auth_new(&cfg, err, sizeof(err));
    assert_non_null(a);
    return a;
}

/* An HS256 token with the given claims (JSON), signed with key. */
static char *token_with(const char *claims, const char *key)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, claims), 0);
    assert_int_equal(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)key, (int)strlen(key)),
                     0);
    char *t = jwt_encode_str(jwt);
    jwt_free(jwt);
    assert_non_null(t);
    return t;
}

static rp_principal_t *verify(rp_auth_t *a, const char *tok, char *why)
{
    return rp_auth_verify(a, tok, strlen(tok), NOW, why, 160);
}

static void signs_and_verifies_a_viewer_token(void **state)
{
    (void)state;
    char err[128], why[160];
    char *t = rp_auth_sign(SECRET, RP_ROLE_VIEWER, "a,b", NOW, 60, "ops", NULL, NULL, NULL, err,
                           sizeof(err));
    assert_non_null(t);
    rp_auth_t *a = verifier(NULL, NULL, 0);
    rp_principal_t *p = verify(a, t, why);
    assert_non_null(p);
    assert_int_equal(p->role, RP_ROLE_VIEWER);
    assert_int_equal(p->npipelines, 2);
    assert_true(rp_principal_sees(p, "a") && rp_principal_sees(p, "b"));
    assert_false(rp_principal_sees(p, "c"));
    assert_false(rp_principal_produces(p, "a"));
    assert_false(rp_principal_sees_all(p));
    assert_int_equal(p->exp, NOW + 60);
    assert_string_equal(p->id, "sub:ops");
    rp_principal_t *d = rp_principal_dup(p);
    assert_non_null(d);
    assert_true(rp_principal_sees(d, "b"));
    rp_principal_free(d);
    rp_principal_free(p);
    free(t);
    rp_auth_free(a);
}

static void roles_and_star(void **state)
{
    (void)state;
    char err[128], why[160];
    rp_auth_t *a = verifier(NULL, NULL, 0);
    char *t = rp_auth_sign(SECRET, RP_ROLE_PRODUCER, "*", NOW, 0, NULL, NULL, NULL, NULL, err,
                           sizeof(err));
    rp_principal_t *p = verify(a, t, why);
    assert_non_null(p);
    assert_true(p->all_pipelines && rp_principal_produces(p, "anything") &&
                rp_principal_sees_all(p));
    assert_int_equal(p->exp, 0);
    assert_memory_equal(p->id, "tok:", 4); /* no sub: named by a hash of the token */
    rp_principal_free(p);
    free(t);
    t = token_with("{\"role\":\"admin\"}", SECRET);
    p = verify(a, t, why);
    assert_non_null(p);
    assert_true(rp_principal_produces(p, "x") && rp_principal_sees_all(p));
    rp_principal_free(p);
    free(t);
    t = token_with("{\"role\":\"viewer\",\"pipelines\":\"a,,b\"}",
                   SECRET); /* operators' string form */
    p = verify(a, t, why);
    assert_non_null(p);
    assert_int_equal(p->npipelines, 2);
    rp_principal_free(p);
    free(t);
    rp_auth_free(a);
}

static void refuses_what_it_must(void **state)
{
    (void)state;
    char why[160];
    rp_auth_t *a = verifier("ops", "ragpulse", 30);
    static const struct {
        const char *claims, *key, *why;
    } cases[] = {
        {"{\"role\":\"viewer\",\"iss\":\"ops\",\"aud\":\"ragpulse\"}", "another-secret-0123456789",
         "bad token"},
        {"{\"role\":\"viewer\",\"iss\":\"ops\",\"aud\":\"ragpulse\",\"exp\":1795299969}", SECRET,
         "token expired"},
        {"{\"role\":\"viewer\",\"iss\":\"ops\",\"aud\":\"ragpulse\",\"nbf\":1795300031}", SECRET,
         "not valid yet"},
        {"{\"role\":\"viewer\",\"iss\":\"dev\",\"aud\":\"ragpulse\"}", SECRET, "wrong issuer"},
        {"{\"role\":\"viewer\",\"iss\":\"ops\",\"aud\":[\"x\",\"y\"]}", SECRET, "wrong audience"},
        {"{\"role\":\"root\",\"iss\":\"ops\",\"aud\":\"ragpulse\"}", SECRET, "role must be"},
        {"{\"role\":\"viewer\",\"iss\":\"ops\",\"aud\":\"ragpulse\",\"pipelines\":[1]}", SECRET,
         "pipelines must"},
        {"{\"role\":\"viewer\",\"iss\":\"ops\",\"aud\":\"ragpulse\",\"exp\":\"soon\"}", SECRET,
         "must be numbers"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char *t = token_with(cases[i].claims, cases[i].key);
        why[0] = '\0';
        assert_null(verify(a, t, why));
        if (strstr(why, cases[i].why) == NULL)
            fail_msg("case %zu: reason '%s' lacks '%s'", i, why, cases[i].why);
        free(t);
    }
    /* Within the leeway: expired 29 s ago, valid from 29 s on. */
    char *t = token_with("{\"role\":\"viewer\",\"iss\":\"ops\",\"aud\":[\"x\",\"ragpulse\"],"
                         "\"exp\":1795299971,\"nbf\":1795300029}",
                         SECRET);
    rp_principal_t *p = verify(a, t, why);
    assert_non_null(p);
    rp_principal_free(p);
    free(t);
    /* alg none, garbage, an empty and an oversized token. */
    const char *none =
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJyb2xlIjoiYWRtaW4iLCJwaXBlbGluZXMiOlsiKiJdfQ.";
    assert_null(verify(a, none, why));
    assert_null(verify(a, "a.b.c", why));
    assert_null(rp_auth_verify(a, "", 0, NOW, why, sizeof(why)));
    assert_string_equal(why, "no token");
    char *big = malloc(9000);
    memset(big, 'a', 8999);
    big[8999] = '\0';
    assert_null(verify(a, big, why));
    assert_string_equal(why, "token too long");
    free(big);
    assert_null(rp_auth_verify(a, "ab\0cd", 5, NOW, why, sizeof(why))); /* a NUL inside */
    assert_string_equal(why, "malformed token");
    rp_auth_free(a);
}

static void refuses_weak_or_wrong_keys(void **state)
{
    (void)state;
    char err[160];
    rp_auth_config_t weak = {"short", NULL, NULL, NULL, 0};
    assert_null(rp_auth_new(&weak, err, sizeof(err)));
    assert_non_null(strstr(err, "too short"));
    rp_auth_config_t both = {SECRET, "-----BEGIN PUBLIC KEY-----", NULL, NULL, 0};
    assert_null(rp_auth_new(&both, err, sizeof(err)));
    rp_auth_config_t none = {NULL, NULL, NULL, NULL, 0};
    assert_null(rp_auth_new(&none, err, sizeof(err)));
    rp_auth_config_t bad = {NULL, "not a key", NULL, NULL, 0};
    assert_null(rp_auth_new(&bad, err, sizeof(err)));
    assert_non_null(strstr(err, "PEM"));
}

/* An HS256 token with extra header members (JSON) and claims. */
static char *token_with_headers(const char *headers, const char *claims)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, claims), 0);
    assert_int_equal(jwt_add_headers_json(jwt, headers), 0);
    assert_int_equal(
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    char *t = jwt_encode_str(jwt);
    jwt_free(jwt);
    assert_non_null(t);
    return t;
}

/* RFC 7515 4.1.11: extensions listed in crit that the recipient does not understand make the
 * token invalid; this hub understands none. */
static void refuses_critical_header_extensions(void **state)
{
    (void)state;
    char why[160];
    rp_auth_t *a = verifier(NULL, NULL, 0);
    static const char claims[] = "{\"role\":\"admin\",\"pipelines\":[\"*\"]}";
    static const struct {
        const char *headers;
        const char *why;
    } cases[] = {
        {"{\"crit\":[\"b64\"],\"b64\":false}", "unsupported critical header extension (crit: b64)"},
        {"{\"crit\":[\"exp\",\"x-tenant\"],\"exp\":1,\"x-tenant\":\"t\"}",
         "unsupported critical header extension (crit: exp, x-tenant)"},
        {"{\"crit\":[]}", "malformed crit header (a non-empty list of header names)"},
        {"{\"crit\":\"b64\"}", "malformed crit header (a non-empty list of header names)"},
        {"{\"crit\":[7]}", "malformed crit header (a non-empty list of header names)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char *t = token_with_headers(cases[i].headers, claims);
        why[0] = '\0';
        assert_null(verify(a, t, why));
        assert_string_equal(why, cases[i].why);
        free(t);
    }
    /* Other header members that are not critical are ignored, as the RFC says. */
    char *t = token_with_headers("{\"kid\":\"k1\",\"x-note\":\"n\"}", claims);
    rp_principal_t *p = verify(a, t, why);
    assert_non_null(p);
    rp_principal_free(p);
    free(t);
    rp_auth_free(a);
}

/* Principals by hand: role, "*" or a list. */
static rp_principal_t *principal(rp_role_t role, int all, const char *p1, const char *p2)
{
    rp_principal_t *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->role = role;
    p->all_pipelines = all;
    p->pipelines = calloc(2, sizeof(char *));
    assert_non_null(p->pipelines);
    if (p1)
        p->pipelines[p->npipelines++] = strdup(p1);
    if (p2)
        p->pipelines[p->npipelines++] = strdup(p2);
    return p;
}

static void free_principal(rp_principal_t *p)
{
    for (size_t i = 0; i < p->npipelines; i++)
        free(p->pipelines[i]);
    free(p->pipelines);
    free(p);
}

static void covers_only_what_it_sees(void **state)
{
    (void)state;
    rp_principal_t *viewer_a = principal(RP_ROLE_VIEWER, 0, "a", NULL);
    rp_principal_t *viewer_b = principal(RP_ROLE_VIEWER, 0, "b", NULL);
    rp_principal_t *viewer_ab = principal(RP_ROLE_VIEWER, 0, "a", "b");
    rp_principal_t *producer_a = principal(RP_ROLE_PRODUCER, 0, "a", NULL);
    rp_principal_t *producer_all = principal(RP_ROLE_PRODUCER, 1, NULL, NULL);
    rp_principal_t *viewer_none = principal(RP_ROLE_VIEWER, 0, NULL, NULL);
    rp_principal_t *admin = principal(RP_ROLE_ADMIN, 0, NULL, NULL);
    assert_true(rp_principal_covers(viewer_a, viewer_a));
    assert_true(rp_principal_covers(viewer_ab, viewer_a));
    assert_true(rp_principal_covers(viewer_a, producer_a)); /* seeing, not producing */
    assert_true(rp_principal_covers(producer_all, viewer_ab));
    assert_true(rp_principal_covers(admin, producer_all));
    assert_true(rp_principal_covers(viewer_a, viewer_none));
    assert_false(rp_principal_covers(viewer_b, viewer_a)); /* a token for other pipelines */
    assert_false(rp_principal_covers(viewer_a, viewer_ab));
    assert_false(rp_principal_covers(viewer_ab, producer_all));
    assert_false(rp_principal_covers(producer_all, admin)); /* the admins' rooms */
    assert_true(rp_principal_covers(admin, admin));
    rp_principal_t *all[] = {viewer_a,     viewer_b,    viewer_ab, producer_a,
                             producer_all, viewer_none, admin};
    for (size_t i = 0; i < sizeof(all) / sizeof(*all); i++)
        free_principal(all[i]);
}

static void finds_the_bearer_credential(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(rp_http_credential_from("Bearer abc.def", 14, NULL, 0, out, sizeof(out)), 7);
    assert_string_equal(out, "abc.def");
    assert_int_equal(rp_http_credential_from("  bearer   x  ", 14, NULL, 0, out, sizeof(out)), 1);
    assert_string_equal(out, "x");
    assert_int_equal(rp_http_credential_from("Basic dXNlcg==", 14, "token=t", 7, out, sizeof(out)),
                     RP_EPROTO);
    assert_int_equal(rp_http_credential_from("Bearer ", 7, NULL, 0, out, sizeof(out)), RP_EPROTO);
    assert_int_equal(rp_http_credential_from(NULL, 0, "EIO=4&token=a%2Eb", 17, out, sizeof(out)),
                     3);
    assert_string_equal(out, "a.b");
    assert_int_equal(rp_http_credential_from(NULL, 0, "EIO=4", 5, out, sizeof(out)), RP_ENOTFOUND);
    assert_int_equal(rp_http_credential_from(NULL, 0, NULL, 0, out, sizeof(out)), RP_ENOTFOUND);
    char big[64];
    memset(big, 'x', sizeof(big));
    memcpy(big, "Bearer ", 7);
    assert_int_equal(rp_http_credential_from(big, sizeof(big), NULL, 0, out, sizeof(out)),
                     RP_ETOOBIG);
}

/* ---- the channels claim ---- */

static void parses_the_channels_claim_and_allows_per_right_and_pattern(void **state)
{
    (void)state;
    char why[160];
    rp_auth_t *a = verifier(NULL, NULL, 0);
    char *t = token_with("{\"role\":\"viewer\",\"channels\":{\"chat:s1\":[\"subscribe\",\"send\"],"
                         "\"crawl:*\":[\"subscribe\"],\"logs:*:err\":[\"publish\"],\"x\":[]}}",
                         SECRET);
    rp_principal_t *p = verify(a, t, why);
    assert_non_null(p);
    assert_int_equal(p->nchannels, 4);
    assert_true(rp_principal_channel_allows(p, "chat:s1", RP_CHAN_SUBSCRIBE));
    assert_true(rp_principal_channel_allows(p, "chat:s1", RP_CHAN_SEND));
    assert_false(rp_principal_channel_allows(p, "chat:s1", RP_CHAN_PUBLISH));
    assert_false(rp_principal_channel_allows(p, "chat:s2", RP_CHAN_SUBSCRIBE)); /* literal */
    assert_false(rp_principal_channel_allows(p, "chat:s10", RP_CHAN_SUBSCRIBE));
    assert_true(rp_principal_channel_allows(p, "crawl:abc", RP_CHAN_SUBSCRIBE));
    assert_true(rp_principal_channel_allows(p, "crawl:", RP_CHAN_SUBSCRIBE)); /* '*': none too */
    assert_false(rp_principal_channel_allows(p, "crawl:abc", RP_CHAN_SEND));
    assert_false(rp_principal_channel_allows(p, "crawlx", RP_CHAN_SUBSCRIBE));
    assert_true(rp_principal_channel_allows(p, "logs:mcp-1:err", RP_CHAN_PUBLISH));
    assert_true(rp_principal_channel_allows(p, "logs::err", RP_CHAN_PUBLISH));
    assert_false(rp_principal_channel_allows(p, "logs:mcp-1:errs", RP_CHAN_PUBLISH));
    assert_false(rp_principal_channel_allows(p, "logs:mcp-1", RP_CHAN_PUBLISH));
    assert_false(rp_principal_channel_allows(p, "x", RP_CHAN_SUBSCRIBE)); /* listed, no right */
    rp_principal_free(p);
    free(t);
    rp_auth_free(a);
}

static void matches_stars_anywhere(void **state)
{
    (void)state;
    static const struct {
        const char *pat, *name;
        int want;
    } cases[] = {
        {"*", "anything", 1},     {"*", "", 1},
        {"a*b*c", "aXbYc", 1},    {"a*b*c", "abc", 1},
        {"a*b*c", "abcb", 0},     {"a*b*c", "abbbcbc", 1},
        {"*:end", "x:y:end", 1},  {"*:end", "x:end:", 0},
        {"**", "x", 1},           {"chat:s1", "chat:s1", 1},
        {"chat:s1", "chat:s", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rp_principal_channel_t grant = {(char *)cases[i].pat, RP_CHAN_SEND};
        rp_principal_t p = {.role = RP_ROLE_VIEWER, .channels = &grant, .nchannels = 1};
        if (rp_principal_channel_allows(&p, cases[i].name, RP_CHAN_SEND) != cases[i].want)
            fail_msg("'%s' against '%s': want %d", cases[i].pat, cases[i].name, cases[i].want);
    }
}

static void admins_may_do_all_and_no_claim_grants_nothing(void **state)
{
    (void)state;
    char why[160];
    rp_auth_t *a = verifier(NULL, NULL, 0);
    char *t = token_with("{\"role\":\"admin\"}", SECRET);
    rp_principal_t *p = verify(a, t, why);
    assert_non_null(p);
    assert_int_equal(p->nchannels, 0);
    assert_true(rp_principal_channel_allows(p, "chat:s1", RP_CHAN_PUBLISH));
    assert_true(rp_principal_channel_allows(p, "anything", RP_CHAN_SEND));
    rp_principal_free(p);
    free(t);
    /* A producer of every pipeline without a channels claim: nothing on channels. */
    t = token_with("{\"role\":\"producer\",\"pipelines\":[\"*\"]}", SECRET);
    p = verify(a, t, why);
    assert_non_null(p);
    assert_null(p->channels);
    for (int right = RP_CHAN_SUBSCRIBE; right <= RP_CHAN_SEND; right <<= 1)
        assert_false(rp_principal_channel_allows(p, "chat:s1", right));
    rp_principal_free(p);
    free(t);
    rp_auth_free(a);
}

static void refuses_a_malformed_channels_claim(void **state)
{
    (void)state;
    char why[160];
    rp_auth_t *a = verifier(NULL, NULL, 0);
    static const struct {
        const char *claims, *why;
    } cases[] = {
        {"{\"role\":\"viewer\",\"channels\":[\"chat:*\"]}", "channels must be an object"},
        {"{\"role\":\"viewer\",\"channels\":\"chat:*=subscribe\"}", "channels must be an object"},
        {"{\"role\":\"viewer\",\"channels\":null}", "channels must be an object"},
        {"{\"role\":\"viewer\",\"channels\":{\"chat:*\":[\"read\"]}}", "a right must be"},
        {"{\"role\":\"viewer\",\"channels\":{\"chat:*\":[\"subscribe\",1]}}", "a right must be"},
        {"{\"role\":\"viewer\",\"channels\":{\"chat:*\":\"subscribe\"}}", "must be a list"},
        {"{\"role\":\"viewer\",\"channels\":{\"chat s1\":[\"subscribe\"]}}", "a pattern must be"},
        {"{\"role\":\"viewer\",\"channels\":{\"\":[\"subscribe\"]}}", "a pattern must be"},
        {"{\"role\":\"viewer\",\"channels\":{\"chat/x\":[\"subscribe\"]}}", "a pattern must be"},
        {"{\"role\":\"viewer\",\"channels\":{\"chat:\\u00e4\":[\"subscribe\"]}}",
         "a pattern must be"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *t = token_with(cases[i].claims, SECRET);
        why[0] = '\0';
        rp_principal_t *p = verify(a, t, why);
        if (p != NULL || strstr(why, cases[i].why) == NULL)
            fail_msg("case %zu: want refusal '%s', got %s '%s'", i, cases[i].why,
                     p ? "a principal" : "refusal", why);
        free(t);
    }
    /* A 129-byte pattern is one too long. */
    char claims[300];
    char longpat[130];
    memset(longpat, 'a', 129);
    longpat[129] = '\0';
    snprintf(claims, sizeof(claims), "{\"role\":\"viewer\",\"channels\":{\"%s\":[\"send\"]}}",
             longpat);
    char *t = token_with(claims, SECRET);
    assert_null(verify(a, t, why));
    free(t);
    longpat[128] = '\0';
    snprintf(claims, sizeof(claims), "{\"role\":\"viewer\",\"channels\":{\"%s\":[\"send\"]}}",
             longpat);
    t = token_with(claims, SECRET);
    rp_principal_t *p = verify(a, t, why);
    assert_non_null(p);
    assert_true(rp_principal_channel_allows(p, longpat, RP_CHAN_SEND));
    rp_principal_free(p);
    free(t);
    rp_auth_free(a);
}

static void dup_copies_the_channels(void **state)
{
    (void)state;
    char err[256], why[160];
    rp_auth_t *a = verifier(NULL, NULL, 0);
    char *t = rp_auth_sign(SECRET, RP_ROLE_VIEWER, "a", NOW, 60, NULL, NULL, NULL,
                           "chat:s1=subscribe+send;crawl:*=subscribe", err, sizeof(err));
    assert_non_null(t);
    rp_principal_t *p = verify(a, t, why);
    assert_non_null(p);
    rp_principal_t *d = rp_principal_dup(p);
    assert_non_null(d);
    assert_int_equal(d->nchannels, 2);
    assert_ptr_not_equal(d->channels, p->channels);
    assert_ptr_not_equal(d->channels[0].pattern, p->channels[0].pattern);
    rp_principal_free(p); /* the copy owns its own strings: ASan says so if not */
    assert_true(rp_principal_channel_allows(d, "chat:s1", RP_CHAN_SEND));
    assert_true(rp_principal_channel_allows(d, "crawl:c-9", RP_CHAN_SUBSCRIBE));
    assert_false(rp_principal_channel_allows(d, "crawl:c-9", RP_CHAN_PUBLISH));
    assert_true(rp_principal_sees(d, "a"));
    rp_principal_free(d);
    free(t);
    rp_auth_free(a);
}

static void signs_the_cli_channels_spec(void **state)
{
    (void)state;
    char err[256], why[160];
    rp_auth_t *a = verifier(NULL, NULL, 0);
    /* ',' and ';' between entries, '+' between rights; a repeated pattern merges. */
    char *t =
        rp_auth_sign(SECRET, RP_ROLE_PRODUCER, "", NOW, 60, NULL, NULL, NULL,
                     "tasks:*=publish,chat:s1=send;tasks:*=subscribe+publish", err, sizeof(err));
    assert_non_null(t);
    rp_principal_t *p = verify(a, t, why);
    assert_non_null(p);
    assert_int_equal(p->nchannels, 2);
    assert_true(rp_principal_channel_allows(p, "tasks:proj-7", RP_CHAN_PUBLISH));
    assert_true(rp_principal_channel_allows(p, "tasks:proj-7", RP_CHAN_SUBSCRIBE));
    assert_false(rp_principal_channel_allows(p, "tasks:proj-7", RP_CHAN_SEND));
    assert_true(rp_principal_channel_allows(p, "chat:s1", RP_CHAN_SEND));
    rp_principal_free(p);
    free(t);
    /* No spec: no claim at all. */
    t = rp_auth_sign(SECRET, RP_ROLE_VIEWER, "a", NOW, 60, NULL, NULL, NULL, "", err, sizeof(err));
    p = verify(a, t, why);
    assert_non_null(p);
    assert_int_equal(p->nchannels, 0);
    rp_principal_free(p);
    free(t);
    static const struct {
        const char *spec, *err;
    } bad[] = {
        {"chat:s1", "want PATTERN=RIGHT"},
        {"=subscribe", "want PATTERN=RIGHT"},
        {"chat s1=subscribe", "want PATTERN=RIGHT"},
        {"chat:s1=read", "got 'read'"},
        {"chat:s1=", "got ''"},
        {"chat:s1=subscribe+", "got ''"},
        {"ok=send,chat:s1=subscribe++send", "entry 'chat:s1=subscribe++send'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        t = rp_auth_sign(SECRET, RP_ROLE_VIEWER, "a", NOW, 60, NULL, NULL, NULL, bad[i].spec, err,
                         sizeof(err));
        if (t != NULL || strstr(err, bad[i].err) == NULL)
            fail_msg("spec '%s': want '%s', got '%s'", bad[i].spec, bad[i].err, err);
        err[0] = '\0';
        assert_int_equal(rp_auth_channels_check(bad[i].spec, err, sizeof(err)), RP_EINVAL);
        assert_non_null(strstr(err, bad[i].err));
    }
    assert_int_equal(rp_auth_channels_check("a=send;b:*=publish", err, sizeof(err)), 0);
    rp_auth_free(a);
}

static void out_of_memory_at_every_step_fails_cleanly(void **state)
{
    (void)state;
    char err[128], why[160];
    rp_auth_t *a = verifier(NULL, NULL, 0);
    char *t = rp_auth_sign(SECRET, RP_ROLE_VIEWER, "a,b,c", NOW, 60, NULL, NULL, NULL,
                           "chat:*=subscribe,tasks:*=publish", err, sizeof(err));
    for (unsigned long n = 1;; n++) {
        rp_alloc_fail_at(n);
        rp_principal_t *p = verify(a, t, why);
        int failed = rp_alloc_failed();
        rp_alloc_fail_at(0);
        if (!failed) {
            assert_non_null(p);
            assert_int_equal(p->npipelines, 3);
            assert_int_equal(p->nchannels, 2);
            /* and its copy, failing at every allocation too */
            for (unsigned long m = 1;; m++) {
                rp_alloc_fail_at(m);
                rp_principal_t *d = rp_principal_dup(p);
                int dfailed = rp_alloc_failed();
                rp_alloc_fail_at(0);
                if (!dfailed) {
                    assert_non_null(d);
                    assert_int_equal(d->nchannels, 2);
                    rp_principal_free(d);
                    break;
                }
                assert_null(d);
                assert_true(m < 100);
            }
            rp_principal_free(p);
            break;
        }
        assert_null(p);
        assert_true(why[0] != '\0');
        assert_true(n < 100);
    }
    for (unsigned long n = 1;; n++) {
        rp_alloc_fail_at(n);
        rp_auth_t *b =
            rp_auth_new(&(rp_auth_config_t){SECRET, NULL, "i", "a", 0}, err, sizeof(err));
        int failed = rp_alloc_failed();
        rp_alloc_fail_at(0);
        if (!failed) {
            assert_non_null(b);
            rp_auth_free(b);
            break;
        }
        assert_null(b);
    }
    free(t);
    rp_auth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(signs_and_verifies_a_viewer_token),
        cmocka_unit_test(roles_and_star),
        cmocka_unit_test(refuses_what_it_must),
        cmocka_unit_test(refuses_weak_or_wrong_keys),
        cmocka_unit_test(refuses_critical_header_extensions),
        cmocka_unit_test(covers_only_what_it_sees),
        cmocka_unit_test(finds_the_bearer_credential),
        cmocka_unit_test(parses_the_channels_claim_and_allows_per_right_and_pattern),
        cmocka_unit_test(matches_stars_anywhere),
        cmocka_unit_test(admins_may_do_all_and_no_claim_grants_nothing),
        cmocka_unit_test(refuses_a_malformed_channels_claim),
        cmocka_unit_test(dup_copies_the_channels),
        cmocka_unit_test(signs_the_cli_channels_spec),
        cmocka_unit_test(out_of_memory_at_every_step_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
