/* SPDX-License-Identifier: MIT */
/* Child processes: pdftotext for PDFs and the user's --exec command, at most cfg.jobs at a
 * time (the others wait in w->waiting). A job with a child holds its process, two pipes and
 * a timer; it is freed or resumed only when all of them are closed (on_proc_closed), and a
 * child past its time limit is killed. --exec's stdout lines report progress. */
#include "watch/watch_int.h"

/* ---- child processes: pdftotext and --exec ---- */

static void fill_slots(rp_watch_t *w);

static void on_proc_closed(uv_handle_t *h)
{
    job_t *j = h->data;
    rp_watch_t *w = j->w;
    if (--j->proc_open > 0)
        return;
    if (w->stopping) {
        rp_watch_job_free(j);
        rp_watch_unref(w);
        return;
    }
    /* Everything of the child is closed: decide. */
    if (j->timed_out) {
        char t[32];
        snprintf(t, sizeof(t), "%g",
                 w->cfg.exec_cmd ? w->cfg.exec_timeout_s : w->cfg.pdf_timeout_s);
        rp_watch_fail_job(j, "timeout",
                          w->cfg.exec_cmd ? "the command ran longer than %s s (--exec-timeout)"
                                          : "pdftotext ran longer than %s s",
                          t);
    } else if (j->too_much) {
        rp_watch_fail_job(j, "too_large", "%s",
                          "the extracted text is larger than --max-file-size");
    } else if (j->exit_status != 0 || j->term_signal != 0) {
        /* The last non-empty line of stderr is the reason (pdftotext prints one per problem). */
        char *t = j->etail.data ? j->etail.data : "";
        size_t n = j->etail.len;
        while (n && (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' '))
            n--;
        t[n] = '\0';
        const char *last = t;
        if (!w->cfg.exec_cmd) {
            const char *nl = strrchr(t, '\n');
            last = nl ? nl + 1 : t;
        }
        char status[64];
        if (j->term_signal)
            snprintf(status, sizeof(status), "killed by signal %d", j->term_signal);
        else
            snprintf(status, sizeof(status), "exit status %lld", (long long)j->exit_status);
        if (w->cfg.exec_cmd)
            snprintf(j->why, sizeof(j->why), "%s%s%s", status, *last ? ": " : "", last);
        else
            snprintf(j->why, sizeof(j->why), "pdftotext (%s): %s", status,
                     *last ? last : "no reason given");
        j->err_kind = w->cfg.exec_cmd ? "exec" : "corrupt";
        j->out = OUT_FAIL;
    } else {
        j->out = OUT_OK;
    }
    rp_buf_deinit(&j->etail);
    /* The slot is free: the next waiting file gets it; this one waits for `cur`. */
    rp_list_unlink(&j->node);
    w->nchildren--;
    rp_list_push(&w->resume, &j->node);
    fill_slots(w);
    rp_watch_job_next(w);
    rp_watch_unref(w);
}

/* Back on `cur` after the child: record, extract, or report the failure. */
void rp_watch_after_child(job_t *j)
{
    if (j->out == OUT_FAIL) {
        rp_watch_finish_failed(j);
    } else if (j->w->cfg.exec_cmd) {
        j->out = OUT_OK;
        rp_watch_run_step(j, ST_RECORD);
    } else {
        /* pdftotext's output becomes the data the text extractor cleans. */
        j->data = j->text.data;
        j->len = j->text.len;
        j->text.data = NULL;
        j->text.len = j->text.cap = 0;
        rp_watch_run_step(j, ST_EXTRACT);
    }
}

/* The child runs in a process group of its own (`sh -c` may start more): kill all of it. */
void rp_watch_kill_child(job_t *j)
{
    if (j->proc.pid > 0 && kill(-j->proc.pid, SIGKILL) < 0)
        uv_process_kill(&j->proc, SIGKILL);
}

void rp_watch_close_child(job_t *j)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&j->pout, (uv_handle_t *)&j->perr, (uv_handle_t *)&j->timer,
                         (uv_handle_t *)&j->proc};
    for (size_t i = 0; i < 4; i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], on_proc_closed);
}

/* The child is done once it has exited and both its pipes reached EOF (its last output may
 * still be in a pipe when it exits). */
static void maybe_close_child(job_t *j)
{
    if (j->exited && j->eofs >= 2)
        rp_watch_close_child(j);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[65536]; /* loop thread only; consumed before the next read */
    (void)h;
    (void)suggested;
    buf->base = scratch;
    buf->len = sizeof(scratch);
}

static void exec_line(job_t *j, const char *s, size_t n)
{
    /* "progress 0.4 STAGE" → file:progress (at most every 100 ms unless the stage changes);
     * "chunks N" → the count file:completed reports. */
    char line[256];
    if (n >= sizeof(line))
        return;
    memcpy(line, s, n);
    line[n] = '\0';
    double p;
    char stage[65] = "";
    long long c;
    if (sscanf(line, "progress %lf %64s", &p, stage) >= 1) {
        if (!(p >= 0))
            p = 0;
        if (p > 1)
            p = 1;
        uint64_t now = rp_watch_now_ms(j->w);
        if (now - j->last_progress_ms >= 100 || stage[0] || p >= 1) {
            j->last_progress_ms = now;
            rp_watch_emit_progress(j, p, stage);
        }
    } else if (sscanf(line, "chunks %lld", &c) == 1 && c >= 0) {
        j->nchunks = (long)c;
    }
}

static void on_out(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    job_t *j = s->data;
    if (nread < 0) {
        uv_read_stop(s);
        if (j->w->cfg.exec_cmd && j->line.len && j->line.len < j->line.limit)
            exec_line(j, j->line.data, j->line.len);
        j->eofs++;
        maybe_close_child(j);
        return;
    }
    if (j->w->cfg.exec_cmd) {
        const char *p = buf->base;
        size_t n = (size_t)nread;
        while (n) {
            const char *nl = memchr(p, '\n', n);
            size_t take = nl ? (size_t)(nl - p) : n;
            if (rp_buf_append(&j->line, p, take) < 0)
                j->line.len = j->line.limit; /* too long: rp_watch_ignored when it ends */
            if (nl) {
                if (j->line.len < j->line.limit)
                    exec_line(j, j->line.data ? j->line.data : "", j->line.len);
                rp_buf_reset(&j->line);
                take++;
            }
            p += take;
            n -= take;
        }
        return;
    }
    if (rp_buf_append(&j->text, buf->base, (size_t)nread) < 0 && !j->too_much) {
        j->too_much = 1;
        rp_watch_kill_child(j);
        uv_read_stop(s);
        j->eofs++;
        maybe_close_child(j);
    }
}

static void on_err(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    job_t *j = s->data;
    if (nread < 0) {
        uv_read_stop(s);
        j->eofs++;
        maybe_close_child(j);
        return;
    }
    rp_buf_t *t = &j->etail;
    if ((size_t)nread >= EXEC_TAIL) {
        rp_buf_reset(t);
        rp_buf_append(t, buf->base + nread - EXEC_TAIL, EXEC_TAIL);
        return;
    }
    if (t->len + (size_t)nread > EXEC_TAIL)
        rp_buf_consume(t, t->len + (size_t)nread - EXEC_TAIL);
    rp_buf_append(t, buf->base, (size_t)nread);
}

static void on_child_timeout(uv_timer_t *t);

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    job_t *j = p->data;
    j->exit_status = status;
    j->term_signal = sig;
    j->exited = 1;
    /* A grandchild may hold the pipes open: give them 2 s after the exit, then close. */
    uv_timer_stop(&j->timer);
    /* Fails only when the timer is closing: the child is being closed already. */
    (void)uv_timer_start(&j->timer, on_child_timeout, 2000, 0);
    maybe_close_child(j);
}

static void on_child_timeout(uv_timer_t *t)
{
    job_t *j = t->data;
    if (j->exited) {
        rp_watch_close_child(j);
        return;
    }
    j->timed_out = 1;
    rp_watch_kill_child(j);
}

/* Runs args[0] for j; its stdin is in_fd (the caller closes its copy after), its stdout and
 * stderr are read into j. */
static void spawn_child(job_t *j, char **args, double timeout_s, int in_fd)
{
    rp_watch_t *w = j->w;
    uv_handle_t *made[3];
    size_t nmade = 0;
    int rc = uv_pipe_init(w->loop, &j->pout, 0);
    if (rc == 0) {
        made[nmade++] = (uv_handle_t *)&j->pout;
        rc = uv_pipe_init(w->loop, &j->perr, 0);
    }
    if (rc == 0) {
        made[nmade++] = (uv_handle_t *)&j->perr;
        rc = uv_timer_init(w->loop, &j->timer);
    }
    j->pout.data = j->perr.data = j->timer.data = j->proc.data = j;
    if (rc < 0) {
        /* No child: the job fails as a child that could not start, once what was made is
         * closed (on_proc_closed decides, as for every child). */
        snprintf(j->why, sizeof(j->why), "cannot start %s: %s", args[0], uv_strerror(rc));
        j->exit_status = 127;
        rp_buf_reset(&j->etail);
        rp_buf_append_str(&j->etail, j->why);
        w->refs++;
        j->proc_open = nmade ? (int)nmade : 1;
        for (size_t i = 0; i < nmade; i++)
            uv_close(made[i], on_proc_closed);
        if (nmade == 0)
            on_proc_closed((uv_handle_t *)&j->pout); /* reads only h->data */
        return;
    }
    uv_stdio_container_t io[3] = {
        {.flags = UV_INHERIT_FD, .data.fd = in_fd},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&j->pout},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&j->perr},
    };
    uv_process_options_t o = {
        .exit_cb = on_exit_cb,
        .file = args[0],
        .args = args,
        .stdio_count = 3,
        .stdio = io,
        .flags = UV_PROCESS_DETACHED, /* setsid: its own process group, see rp_watch_kill_child */
    };
    rp_buf_deinit(&j->text);
    rp_buf_init(&j->text, w->cfg.max_file_size);
    j->proc_open = 4;
    w->refs++;
    rc = uv_spawn(w->loop, &j->proc, &o);
    if (rc < 0) {
        if (rc == UV_ENOENT && !w->cfg.exec_cmd)
            snprintf(j->why, sizeof(j->why),
                     "pdftotext is not installed (Debian package poppler-utils)");
        else
            snprintf(j->why, sizeof(j->why), "cannot start %s: %s", args[0], uv_strerror(rc));
        j->exit_status = 127;
        rp_buf_reset(&j->etail);
        rp_buf_append_str(&j->etail, j->why);
        /* uv_spawn failed: the process handle is initialised and must be closed too. */
        rp_watch_close_child(j);
        return;
    }
    rc = uv_read_start((uv_stream_t *)&j->pout, on_alloc, on_out);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&j->perr, on_alloc, on_err);
    if (rc == 0 && timeout_s > 0)
        rc = uv_timer_start(&j->timer, on_child_timeout, (uint64_t)(timeout_s * 1000), 0);
    if (rc < 0) {
        /* Unread or unbounded, the child cannot be run as asked: it is killed, and fails. */
        RP_LOG_ERROR("watch", "cannot follow %s for %s: %s", args[0], j->rel, uv_strerror(rc));
        rp_watch_kill_child(j);
    }
}

static void run_pdftotext(job_t *j, int fd)
{
    /* The file is pdftotext's stdin ("-"): it reads what the watcher opened, not a path. */
    char *args[] = {"pdftotext", "-enc", "UTF-8", "-eol", "unix", "-", "-", NULL};
    rp_free(j->data);
    j->data = NULL;
    spawn_child(j, args, j->w->cfg.pdf_timeout_s, fd);
}

static void run_exec(job_t *j, int fd)
{
    rp_watch_emit_progress(j, 0.0, "exec");
    rp_free(j->data);
    j->data = NULL;
    char script[4200];
    snprintf(script, sizeof(script), "%s \"$1\"", j->w->cfg.exec_cmd);
    char *args[] = {"/bin/sh", "-c", script, "ragpulse-exec", j->path, NULL};
    spawn_child(j, args, j->w->cfg.exec_timeout_s, fd);
}

/* Starts j's child in a free slot (--jobs). Its stdin is the file, opened through the tree
 * now (a link swapped in since the probe cannot lead it outside). A file no longer there
 * fails ("removed") without a child and waits in `resume`. */
static void child_start(job_t *j)
{
    rp_watch_t *w = j->w;
    int fd = rp_watch_open_in_tree(w, j->path, O_RDONLY | O_NONBLOCK);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -ENOENT; /* replaced by a directory or a FIFO: not the file that was probed */
    }
    if (fd < 0) {
        if (rp_watch_not_in_tree(fd))
            rp_watch_fail_job(j, "removed", "%s", REMOVED_WHY);
        else
            rp_watch_fail_job(j, "io", "cannot open the file: %s", strerror(-fd));
        rp_list_push(&w->resume, &j->node);
        return;
    }
    w->nchildren++;
    rp_list_push(&w->children, &j->node);
    if (w->cfg.exec_cmd)
        run_exec(j, fd);
    else
        run_pdftotext(j, fd);
    close(fd);
}

/* Gives the free child slots to the waiting files, in order. */
static void fill_slots(rp_watch_t *w)
{
    while (w->nchildren < w->cfg.jobs && !rp_list_empty(&w->waiting)) {
        job_t *n = rp_container_of(w->waiting.next, job_t, node);
        rp_list_unlink(&n->node);
        child_start(n);
    }
}

/* j needs a child: it gives `cur` up (other files go on meanwhile) and runs its child now or
 * when a slot frees; after it, j waits in `resume` for `cur` again. */
void rp_watch_spawn_pdftotext(job_t *j)
{
    rp_watch_t *w = j->w;
    w->cur = NULL;
    rp_list_push(&w->waiting, &j->node);
    fill_slots(w);
    rp_watch_job_next(w);
}

void rp_watch_spawn_exec(job_t *j)
{
    rp_watch_spawn_pdftotext(j); /* the same road; child_start picks the command */
}
