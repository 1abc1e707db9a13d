/* SPDX-License-Identifier: MIT */
/* JSON-lines logger. The message is formatted, then escaped as a JSON string, and the whole
 * line goes out in one write so lines from one process never interleave. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/err.h"

int rp_log_level = RP_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

int rp_log_level_parse(const char *name)
{
    for (int i = 0; i <= RP_LOG_OFF; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return RP_EINVAL;
}

void rp_log_write(int level, const char *mod, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char line[2560];
    size_t n = strftime(line, sizeof(line), "{\"ts\":\"%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n,
                          ".%03dZ\",\"level\":\"%s\",\"mod\":\"%s\",\"msg\":\"",
                          (int)(tv.tv_usec / 1000), level_names[level], mod);
    for (const char *p = msg; *p && n < sizeof(line) - 8; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            line[n++] = '\\';
            line[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, "\\u%04x", c);
        } else {
            line[n++] = (char)c;
        }
    }
    line[n++] = '"';
    line[n++] = '}';
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
