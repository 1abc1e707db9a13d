/* SPDX-License-Identifier: MIT */
#ifndef RP_HUB_FORWARD_H
#define RP_HUB_FORWARD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* The forwarder of the channels engine: it POSTs client events to a team's backend over
 * http/client.h (one client per request in flight, `Connection: close`), at most
 * `concurrency` at once, the rest waiting in a bounded FIFO, and reports each answer as one
 * of the results below. Loop thread only. */

typedef struct rp_fwd rp_fwd_t;

enum {
    RP_FWD_OK,
    RP_FWD_ERROR,
    RP_FWD_GARBAGE,
    RP_FWD_TIMEOUT,
    RP_FWD_UNAVAILABLE,
    RP_FWD_BUSY,
    RP_FWD_CANCELLED,
    RP_FWD_COUNT
};

/* Returns the static name of a result: "ok", "error", "garbage", "timeout", "unavailable",
 * "busy", "cancelled" ("?" for anything else); never NULL. */
const char *rp_fwd_result_name(int result);

/* result RP_FWD_OK: a 2xx whose body is valid JSON (body is it); RP_FWD_ERROR: another
 * status (status set, body the answer); RP_FWD_GARBAGE: a 2xx whose body is not JSON, an
 * answer that is not HTTP or a body over 1 MiB; RP_FWD_TIMEOUT: no whole answer within the
 * timeout (connect included); RP_FWD_UNAVAILABLE: refused, unreachable or reset before an
 * answer; RP_FWD_CANCELLED: rp_fwd_close ran first. status is 0 unless an answer came; body
 * is borrowed until the callback returns ("" when none). Runs once, on the loop, never inside
 * rp_fwd_post; it may call rp_fwd_post or rp_fwd_close. */
typedef void (*rp_fwd_cb)(void *ud, int result, int status, const char *body, size_t len);

/* Returns a new forwarder with at most `concurrency` (at least 1) requests in flight and
 * `max_queue` waiting, or NULL for out-of-memory. Free it with rp_fwd_close. */
rp_fwd_t *rp_fwd_new(uv_loop_t *loop, unsigned concurrency, size_t max_queue);

/* Queues a POST of body (copied, Content-Type: application/json) to url
 * (http://host:port/path). Returns 0 (cb will run once), or (cb will not run): RP_EREFUSED
 * when max_queue requests already wait (the caller answers "backend busy"; counted as
 * RP_FWD_BUSY), RP_EINVAL for a bad url, RP_ESTATE after rp_fwd_close, UV_ENOMEM. At most
 * `concurrency` in flight; the rest wait in FIFO order. A request whose connection was
 * refused before anything was sent is retried once (within the same timeout); never after it
 * was sent. */
int rp_fwd_post(rp_fwd_t *f, const char *url, const char *body, size_t len, uint32_t timeout_ms,
                rp_fwd_cb cb, void *ud);

/* Counters by result (RP_FWD_BUSY included), and the requests in flight / waiting, for
 * /metrics. */
unsigned long rp_fwd_count(const rp_fwd_t *f, int result);
size_t rp_fwd_in_flight(const rp_fwd_t *f);
size_t rp_fwd_waiting(const rp_fwd_t *f);

/* Every waiting and in-flight request completes with RP_FWD_CANCELLED (from the loop, not
 * inside this call); f is freed after cb(f) (cb may be NULL) once every client has closed. */
void rp_fwd_close(rp_fwd_t *f, void (*cb)(rp_fwd_t *f));

#endif
