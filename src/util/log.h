/* SPDX-License-Identifier: MIT */
#ifndef RP_UTIL_LOG_H
#define RP_UTIL_LOG_H

/* JSON lines on stderr: {"ts":"...","level":"info","mod":"eio","msg":"..."}. The macros test
 * the level before evaluating their arguments (redis serverLog). A peer's mistake is info, our
 * own failure error. Never log tokens, cookies or secrets. */
enum rp_log_level {
    RP_LOG_DEBUG,
    RP_LOG_INFO,
    RP_LOG_WARN,
    RP_LOG_ERROR,
    RP_LOG_OFF
};

extern int rp_log_level;

/* Parses "debug", "info", "warn", "error", "off"; returns the level or RP_EINVAL. */
int rp_log_level_parse(const char *name);
void rp_log_write(int level, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define RP_LOG(level, mod, ...)                                                                    \
    do {                                                                                           \
        if ((level) >= rp_log_level)                                                               \
            rp_log_write((level), (mod), __VA_ARGS__);                                             \
    } while (0)
#define RP_LOG_DEBUG(mod, ...) RP_LOG(RP_LOG_DEBUG, mod, __VA_ARGS__)
#define RP_LOG_INFO(mod, ...)  RP_LOG(RP_LOG_INFO, mod, __VA_ARGS__)
#define RP_LOG_WARN(mod, ...)  RP_LOG(RP_LOG_WARN, mod, __VA_ARGS__)
#define RP_LOG_ERROR(mod, ...) RP_LOG(RP_LOG_ERROR, mod, __VA_ARGS__)

#endif
