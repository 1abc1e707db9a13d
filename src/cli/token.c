/* SPDX-License-Identifier: MIT */
/* `ragpulse token --role ROLE --pipelines a,b --channels 'chat:*=subscribe' --ttl 1h`: prints
 * a JWT signed with the hub's HS256 secret, for operators handing out access. The secret comes from
 * the same places `serve` reads it (--jwt-secret, --jwt-secret-file, RAGPULSE_JWT_SECRET). Exit
 * status: 0, 2 for usage. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "hub/auth.h"
#include "util/err.h"

/* "90", "90s", "15m", "1h", "7d" -> seconds; -1 when malformed. */
static long long parse_ttl(const char *v)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (end == v || n < 0 || errno)
        return -1;
    long long mul = *end == '\0' || strcmp(end, "s") == 0 ? 1
                    : strcmp(end, "m") == 0               ? 60
                    : strcmp(end, "h") == 0               ? 3600
                    : strcmp(end, "d") == 0               ? 86400
                                                          : -1;
    if (mul < 0 || n > 3650LL * 86400 / mul)
        return -1;
    return n * mul;
}

static char *read_secret_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = calloc(1, 4097);
    size_t n = buf ? fread(buf, 1, 4096, f) : 0;
    fclose(f);
    while (buf && n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return buf;
}

typedef struct token_args {
    const char *role;
    const char *pipelines;
    const char *channels; /* the CLI spec, NULL for no channels claim */
    const char *sub;
    const char *iss;
    const char *aud;
    long long ttl;
    const char *secret; /* borrowed from argv/environ, or secret_buf */
    char *secret_buf;   /* owned: read from --jwt-secret-file */
} token_args_t;

static int parse_ttl_opt(void *target, const rp_cli_opt_t *opt, const char *v, const char *what,
                         const char *prefix, int from_env)
{
    (void)opt;
    (void)from_env;
    token_args_t *t = target;
    if ((t->ttl = parse_ttl(v)) < 0) {
        fprintf(stderr, "%s: %s wants seconds or 30s, 15m, 1h, 7d (at most 10 years), got '%s'\n",
                prefix, what, v);
        return RP_EINVAL;
    }
    return 0;
}

static int parse_secret_file(void *target, const rp_cli_opt_t *opt, const char *v, const char *what,
                             const char *prefix, int from_env)
{
    (void)opt;
    (void)what;
    (void)from_env;
    token_args_t *t = target;
    free(t->secret_buf);
    t->secret = t->secret_buf = read_secret_file(v);
    if (t->secret_buf == NULL) {
        fprintf(stderr, "%s: cannot read %s: %s\n", prefix, v, strerror(errno));
        return RP_EINVAL;
    }
    return 0;
}

#define TOFF(f) offsetof(token_args_t, f)

static const rp_cli_opt_t token_opts[] = {
    {"--role", "ROLE", RP_CLI_STRING, TOFF(role), 0, 0, NULL, "viewer, producer or admin", NULL, 0},
    {"--pipelines", "LIST", RP_CLI_STRING, TOFF(pipelines), 0, 0, NULL,
     "pipeline ids the token may see, comma-separated, or * for all", NULL, 0},
    {"--channels", "SPEC", RP_CLI_STRING, TOFF(channels), 0, 0, NULL,
     "channel rights: PATTERN=RIGHT+RIGHT entries split by , or ;\n"
     "(rights subscribe, publish, send; * in a pattern: any run)",
     NULL, 0},
    {"--ttl", "TTL", RP_CLI_CUSTOM, 0, 0, 0, NULL,
     "lifetime: seconds or 30s, 15m, 1h, 7d; 0: no expiry (default 1h)", parse_ttl_opt, 0},
    {"--sub", "NAME", RP_CLI_STRING, TOFF(sub), 0, 0, NULL, "the token's subject", NULL, 0},
    {"--issuer", "ISS", RP_CLI_STRING, TOFF(iss), 0, 0, NULL, "the token's iss", NULL, 0},
    {"--audience", "AUD", RP_CLI_STRING, TOFF(aud), 0, 0, NULL, "the token's aud", NULL, 0},
    {"--jwt-secret", "SECRET", RP_CLI_STRING, TOFF(secret), 0, 0, "RAGPULSE_JWT_SECRET",
     "the hub's HS256 secret", NULL, 0},
    {"--jwt-secret-file", "FILE", RP_CLI_CUSTOM, 0, 0, 0, NULL, "the secret, read from FILE",
     parse_secret_file, 0},
};

static const char token_usage[] =
    "usage: ragpulse token --role viewer|producer|admin [--pipelines ID,ID|*] [--ttl 1h]\n"
    "                      [--channels 'chat:s1=subscribe+send,crawl:*=subscribe']\n"
    "                      [--sub NAME] [--issuer ISS] [--audience AUD]\n\n"
    "Prints a token signed with the hub's secret (--jwt-secret S, --jwt-secret-file FILE,\n"
    "or env RAGPULSE_JWT_SECRET). --ttl takes seconds or 30s, 15m, 1h, 7d; 0 means no\n"
    "expiry. Viewers see their pipelines, producers also send events for them, admins\n"
    "may do everything. On channels, anyone but an admin may do exactly what --channels\n"
    "grants.\n\noptions:\n";

/* The token from the parsed arguments; 0, 1 signing failed, 2 usage. */
static int token_make(const token_args_t *t)
{
    int r = t->role ? rp_role_parse(t->role) : RP_EINVAL;
    if (r < 0) {
        fprintf(stderr, "ragpulse token: --role must be viewer, producer or admin\n");
        return 2;
    }
    if (t->secret == NULL || strlen(t->secret) < 16) {
        fprintf(stderr, "ragpulse token: no secret of at least 16 characters (--jwt-secret-file "
                        "FILE or RAGPULSE_JWT_SECRET)\n");
        return 2;
    }
    if (r != RP_ROLE_ADMIN && *t->pipelines == '\0')
        fprintf(stderr, "ragpulse token: warning: no --pipelines: this token sees no pipeline "
                        "(use * for all)\n");
    char err[256];
    if (t->channels && rp_auth_channels_check(t->channels, err, sizeof(err)) < 0) {
        fprintf(stderr, "ragpulse token: %s\n", err);
        return 2;
    }
    char *tok = rp_auth_sign(t->secret, (rp_role_t)r, t->pipelines, (int64_t)time(NULL), t->ttl,
                             t->sub, t->iss, t->aud, t->channels, err, sizeof(err));
    if (tok == NULL) {
        fprintf(stderr, "ragpulse token: %s\n", err);
        return 1;
    }
    printf("%s\n", tok);
    free(tok);
    return 0;
}

int rp_cli_token(int argc, char **argv)
{
    token_args_t t = {NULL, "", NULL, NULL, NULL, NULL, 3600, NULL, NULL};
    rp_cli_optset_t sets[] = {{token_opts, RP_CLI_COUNT(token_opts), &t, NULL}};
    rp_cli_cmd_t cmd = {"ragpulse token", token_usage, NULL, sets, 1, NULL, NULL};
    int rc = rp_cli_parse(&cmd, argc, argv);
    if (rc == 0)
        rc = token_make(&t);
    else
        rc = rc == RP_CLI_HELP ? 0 : 2;
    free(t.secret_buf);
    return rc;
}
