/* SPDX-License-Identifier: MIT */
/* Linked into every program of the ThreadSanitizer build (RP_TSAN) only. Debian's libuv closes
 * descriptors with syscall(SYS_close) (uv__close_nocancel, unless libuv itself is built with
 * TSan), which TSan cannot intercept: it never sees libuv close a socket, and when a thread-pool
 * step later gets the same descriptor number from openat() and closes it, TSan reports a race
 * between that close and libuv's last read/epoll_ctl on the old socket. This definition of
 * syscall() wins over glibc's for libuv (an executable's symbols come first) and turns SYS_close
 * into close(), which TSan intercepts; every other call goes to glibc's syscall unchanged. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef long (*syscall_fn)(long, long, long, long, long, long, long);

long syscall(long number, ...)
{
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_close)
        return close((int)a[0]);
    /* Any thread may be first here: the pointer is atomic, and every thread finds the same. */
    static _Atomic(syscall_fn) real;
    syscall_fn fn = atomic_load(&real);
    if (fn == NULL) {
        void *sym = dlsym(RTLD_NEXT, "syscall");
        memcpy(&fn, &sym, sizeof fn); /* ISO C has no object-to-function pointer cast */
        atomic_store(&real, fn);
    }
    return fn(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
