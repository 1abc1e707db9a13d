/* SPDX-License-Identifier: MIT */
#ifndef RP_WATCH_BENEATH_H
#define RP_WATCH_BENEATH_H

#include <sys/stat.h>

/* Opening a path of the watched tree without ever leaving it: the path is walked from the
 * root's descriptor one component at a time, and no component (the last one included) may be
 * a symbolic link. A link anywhere on the way, or a component that is not a directory, ends
 * the walk, so what is opened is the file at that name inside the tree, never a link's target
 * (which may be outside it), and no race between a check and the open can change that. Pure
 * system calls; any thread. */

/* Opens `rel` (relative to the directory `root_fd`; "" is the root itself) with `flags`
 * (O_NOFOLLOW and O_CLOEXEC are added). Returns the new descriptor (the caller closes it), or
 * -errno: -ELOOP when the last component is a symbolic link, -ENOTDIR when one on the way is
 * a link or not a directory, -ENOENT when something is missing, -EXDEV for a ".." component
 * (it would climb out), -ENAMETOOLONG for a component past NAME_MAX. */
int rp_watch_open_beneath(int root_fd, const char *rel, int flags);

/* lstat of `rel` walked the same way: the last component is not followed (a link there is
 * reported as a link, S_ISLNK). 0, or the -errno of rp_watch_open_beneath. */
int rp_watch_stat_beneath(int root_fd, const char *rel, struct stat *st);

#endif
