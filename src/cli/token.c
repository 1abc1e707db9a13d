/* SPDX-License-Identifier: MIT */
/* `ragpulse token --role ROLE --pipelines a,b --ttl 1h`: prints a JWT signed with the hub's
 * HS256 secret, for operators handing out access. The secret comes from the same places
 * `serve` reads it (--jwt-secret, --jwt-secret-file, RAGPULSE_JWT_SECRET). Exit status: 0,
 * 2 for usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "hub/auth.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: ragpulse token --role viewer|producer|admin [--pipelines ID,ID|*] [--ttl 1h]\n"
               "                      [--sub NAME] [--issuer ISS] [--audience AUD]\n\n"
               "Prints a token signed with the hub's secret (--jwt-secret S, --jwt-secret-file FILE,\n"
               "or env RAGPULSE_JWT_SECRET). --ttl takes seconds or 30s, 15m, 1h, 7d; 0 means no\n"
               "expiry. Viewers see their pipelines, producers also send events for them, admins\n"
               "may do everything.\n");
}

/* "90", "90s", "15m", "1h", "7d" -> seconds; -1 when malformed. */
static long long parse_ttl(const char *v)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (end == v || n < 0 || errno)
        return -1;
    long long mul = *end == '\0' || strcmp(end, "s") == 0 ? 1
                    : strcmp(end, "m") == 0                ? 60
                    : strcmp(end, "h") == 0                ? 3600
                    : strcmp(end, "d") == 0                ? 86400
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

int rp_cli_token(int argc, char **argv)
{
    const char *role = NULL, *pipelines = "", *sub = NULL, *iss = NULL, *aud = NULL;
    long long ttl = 3600;
    char *secret = getenv("RAGPULSE_JWT_SECRET") && *getenv("RAGPULSE_JWT_SECRET") ? strdup(getenv("RAGPULSE_JWT_SECRET")) : NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            free(secret);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ragpulse token: %s needs a value\n", a);
            free(secret);
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--role") == 0) {
            role = v;
        } else if (strcmp(a, "--pipelines") == 0) {
            pipelines = v;
        } else if (strcmp(a, "--ttl") == 0) {
            if ((ttl = parse_ttl(v)) < 0) {
                fprintf(stderr, "ragpulse token: --ttl wants seconds or 30s, 15m, 1h, 7d (at most 10 years), got '%s'\n", v);
                free(secret);
                return 2;
            }
        } else if (strcmp(a, "--sub") == 0) {
            sub = v;
        } else if (strcmp(a, "--issuer") == 0) {
            iss = v;
        } else if (strcmp(a, "--audience") == 0) {
            aud = v;
        } else if (strcmp(a, "--jwt-secret") == 0) {
            free(secret);
            secret = strdup(v);
        } else if (strcmp(a, "--jwt-secret-file") == 0) {
            free(secret);
            if ((secret = read_secret_file(v)) == NULL) {
                fprintf(stderr, "ragpulse token: cannot read %s: %s\n", v, strerror(errno));
                return 2;
            }
        } else {
            fprintf(stderr, "ragpulse token: unknown option '%s'\n", a);
            usage(stderr);
            free(secret);
            return 2;
        }
    }
    int r = role ? rp_role_parse(role) : -1;
    if (r < 0) {
        fprintf(stderr, "ragpulse token: --role must be viewer, producer or admin\n");
        free(secret);
        return 2;
    }
    if (secret == NULL || strlen(secret) < 16) {
        fprintf(stderr, "ragpulse token: no secret of at least 16 characters (--jwt-secret-file FILE or RAGPULSE_JWT_SECRET)\n");
        free(secret);
        return 2;
    }
    if (r != RP_ROLE_ADMIN && *pipelines == '\0')
        fprintf(stderr, "ragpulse token: warning: no --pipelines: this token sees no pipeline (use * for all)\n");
    char err[128];
    char *tok = rp_auth_sign(secret, (rp_role_t)r, pipelines, (int64_t)time(NULL), ttl, sub, iss, aud, err, sizeof(err));
    free(secret);
    if (tok == NULL) {
        fprintf(stderr, "ragpulse token: %s\n", err);
        return 1;
    }
    printf("%s\n", tok);
    free(tok);
    return 0;
}
