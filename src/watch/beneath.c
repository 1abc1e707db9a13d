/* SPDX-License-Identifier: MIT */
/* Walks a relative path from a directory descriptor with openat(O_PATH | O_DIRECTORY |
 * O_NOFOLLOW) per component (what openat2's RESOLVE_NO_SYMLINKS does, with no need for Linux
 * 5.6 or /proc), then opens or stats the last component without following it. Each step
 * holds the previous directory's descriptor only until the next one is open, so a walk holds
 * two descriptors at most. */
#include "watch/beneath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

/* Opens the directory holding rel's last component (a new O_PATH descriptor) and copies that
 * component into name ("." for the root itself). Returns the descriptor or -errno. */
static int open_parent(int root_fd, const char *rel, char name[NAME_MAX + 1])
{
    int dfd = openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    strcpy(name, ".");
    const char *p = rel;
    for (;;) {
        while (*p == '/')
            p++;
        if (*p == '\0')
            return dfd; /* name holds the last component (or "." for the root) */
        size_t n = strcspn(p, "/");
        if (n > NAME_MAX) {
            close(dfd);
            return -ENAMETOOLONG;
        }
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            close(dfd);
            return -EXDEV;
        }
        /* The previous component was a directory on the way: step into it. */
        if (strcmp(name, ".") != 0) {
            int next = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int e = errno;
            close(dfd);
            if (next < 0)
                return -e;
            dfd = next;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        p += n;
    }
}

int rp_watch_open_beneath(int root_fd, const char *rel, int flags)
{
    char name[NAME_MAX + 1];
    int dfd = open_parent(root_fd, rel, name);
    if (dfd < 0)
        return dfd;
    int fd = openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    close(dfd);
    return fd < 0 ? -e : fd;
}

int rp_watch_stat_beneath(int root_fd, const char *rel, struct stat *st)
{
    char name[NAME_MAX + 1];
    int dfd = open_parent(root_fd, rel, name);
    if (dfd < 0)
        return dfd;
    int rc = fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW);
    int e = errno;
    close(dfd);
    return rc < 0 ? -e : 0;
}
