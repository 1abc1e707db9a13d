/* SPDX-License-Identifier: MIT */
/* The network sink's outbox: an append-only file of events (one compact JSON object per
 * line) and its QUEUE.state ("RPQ1 KEY ROFF ROFF_SEQ NEXT_SEQ", written to a temporary file
 * and renamed). Everything before roff is delivered; roff moves only after the hub stored
 * the events (sink.c). Opening drops a torn last line from a crash mid-append and reads the
 * seqs of the first and last records left; compacting keeps the file bounded by what is
 * pending. One writer per file (flock). Loop thread. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/err.h"
#include "util/log.h"
#include "util/rand.h"
#include "watch/watch_int.h"

int rp_watch_outbox_save(net_sink_t *s)
{
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof(tmp), "%s.tmp", s->spath);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return UV_EIO;
    fprintf(f, "RPQ1 %s %llu %llu %llu\n", s->key, (unsigned long long)s->roff,
            (unsigned long long)s->roff_seq, (unsigned long long)s->next_seq);
    int bad = fflush(f) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, s->spath) < 0) {
        RP_LOG_ERROR("watch", "cannot save the queue state %s: %s", s->spath, strerror(errno));
        return UV_EIO;
    }
    return 0;
}

/* The seq in a record's meta, or -1. */
static long long record_seq(const char *line, size_t len)
{
    json_t *j = json_loadb(line, len, 0, NULL);
    json_t *seq = json_object_get(json_object_get(j, "meta"), "seq");
    long long v = json_is_integer(seq) ? json_integer_value(seq) : -1;
    json_decref(j);
    return v;
}

/* Reads the state file and checks the queue: drops a torn last line, finds the seqs. */
int rp_watch_outbox_open(net_sink_t *s, char *err, size_t errlen)
{
    s->qfd = open(s->qpath, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (s->qfd < 0) {
        snprintf(err, errlen, "cannot open the queue %s: %s", s->qpath, strerror(errno));
        return UV_EIO;
    }
    /* One writer per queue: two watchers appending and sending the same file would interleave. */
    if (flock(s->qfd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, errlen,
                 "the queue %s is in use by another `ragpulse watch` (give this one --queue PATH)",
                 s->qpath);
        return RP_EREFUSED;
    }
    struct stat st;
    fstat(s->qfd, &st);
    s->qsize = (uint64_t)st.st_size;
    FILE *f = fopen(s->spath, "r");
    unsigned long long roff = 0, rseq = 0, nseq = 0;
    char key[24] = "";
    if (f) {
        if (fscanf(f, "RPQ1 %20s %llu %llu %llu", key, &roff, &rseq, &nseq) != 4)
            key[0] = '\0';
        fclose(f);
    }
    if (key[0] == '\0') {
        if (rp_rand_id(s->key, 16) < 0) {
            snprintf(err, errlen, "no randomness for the queue key");
            return UV_EIO;
        }
        roff = rseq = nseq = 0;
    } else {
        snprintf(s->key, sizeof(s->key), "%s", key);
    }
    s->roff = roff <= s->qsize ? roff : s->qsize;
    s->roff_seq = rseq;
    s->next_seq = nseq;
    /* What is left: the first and the last record (seqs count up by one per record, so they
     * say it all), and a torn tail from a crash mid-append. Two bounded reads, not the file. */
    if (s->qsize > s->roff) {
        enum {
            WIN = 1 << 20
        };
        char *buf = rp_malloc(WIN + 1);
        if (buf == NULL) {
            snprintf(err, errlen, "out of memory");
            return UV_ENOMEM;
        }
        uint64_t tail_off = s->qsize - s->roff > WIN ? s->qsize - WIN : s->roff;
        ssize_t got = pread(s->qfd, buf, (size_t)(s->qsize - tail_off), (off_t)tail_off);
        size_t end = got > 0 ? (size_t)got : 0;
        while (end > 0 && buf[end - 1] != '\n')
            end--;
        long long first = -1, last = -1;
        if (got > 0 && (size_t)got > end) {
            RP_LOG_WARN("watch", "queue %s: dropping a torn last record (%zu bytes)", s->qpath,
                        (size_t)got - end);
            if (ftruncate(s->qfd, (off_t)(tail_off + end)) < 0)
                RP_LOG_ERROR("watch", "queue %s: ftruncate: %s", s->qpath, strerror(errno));
            s->qsize = tail_off + end;
        }
        if (end > 0) {
            size_t ls = end - 1;
            while (ls > 0 && buf[ls - 1] != '\n')
                ls--;
            last = record_seq(buf + ls, end - 1 - ls);
        }
        if (s->qsize > s->roff) {
            got = pread(s->qfd, buf, WIN < s->qsize - s->roff ? WIN : (size_t)(s->qsize - s->roff),
                        (off_t)s->roff);
            char *nl = got > 0 ? memchr(buf, '\n', (size_t)got) : NULL;
            if (nl)
                first = record_seq(buf, (size_t)(nl - buf));
        }
        rp_free(buf);
        if (first >= 0)
            s->roff_seq = (uint64_t)first;
        if (last >= 0 && (uint64_t)last + 1 > s->next_seq)
            s->next_seq = (uint64_t)last + 1;
        if (s->qsize > s->roff) {
            /* A previous run may have been answered without saving the offset. */
            s->verify = 1;
            RP_LOG_INFO("watch", "queue %s: %llu bytes of events from an earlier run to deliver",
                        s->qpath, (unsigned long long)(s->qsize - s->roff));
        }
    }
    if (s->roff == s->qsize && s->qsize > 0) {
        if (ftruncate(s->qfd, 0) == 0)
            s->qsize = s->roff = 0;
    }
    if (s->roff == s->qsize)
        s->roff_seq = s->next_seq;
    return rp_watch_outbox_save(s);
}

/* Drops everything before roff from the file (when all of it is delivered, or when the
 * delivered part is large): the file stays bounded by what is pending. */
void rp_watch_outbox_compact(net_sink_t *s)
{
    if (s->roff == s->qsize) {
        if (ftruncate(s->qfd, 0) == 0)
            s->qsize = s->roff = 0;
        return;
    }
    if (s->roff < (uint64_t)s->max_bytes / 2)
        return;
    size_t n = (size_t)(s->qsize - s->roff);
    char *buf = rp_malloc(n);
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof(tmp), "%s.tmp", s->qpath);
    int fd = buf ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    if (fd < 0 || pread(s->qfd, buf, n, (off_t)s->roff) != (ssize_t)n ||
        write(fd, buf, n) != (ssize_t)n) {
        if (fd >= 0)
            close(fd);
        rp_free(buf);
        return;
    }
    close(fd);
    rp_free(buf);
    uint64_t old_roff = s->roff;
    s->roff = 0;
    if (rp_watch_outbox_save(s) < 0 || rename(tmp, s->qpath) < 0) {
        s->roff = old_roff;            /* nothing moved */
        (void)rp_watch_outbox_save(s); /* logged; a stale state only makes a restart verify */
        return;
    }
    int nfd = open(s->qpath, O_RDWR | O_APPEND | O_CLOEXEC);
    if (nfd >= 0) {
        close(s->qfd);
        s->qfd = nfd;
    }
    s->qsize = n;
}

/* Advances past the first `count` records from roff. */
void rp_watch_outbox_skip(net_sink_t *s, size_t count)
{
    while (count > 0 && s->roff < s->qsize) {
        char buf[4096];
        size_t want = sizeof(buf);
        if (s->qsize - s->roff < want)
            want = (size_t)(s->qsize - s->roff);
        ssize_t r = pread(s->qfd, buf, want, (off_t)s->roff);
        if (r <= 0)
            break;
        char *nl = memchr(buf, '\n', (size_t)r);
        if (nl == NULL) {
            s->roff += (uint64_t)r; /* inside a long line: keep going */
            continue;
        }
        s->roff += (uint64_t)(nl - buf) + 1;
        s->roff_seq++;
        count--;
    }
}
