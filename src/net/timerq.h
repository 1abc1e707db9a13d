/* SPDX-License-Identifier: MIT */
#ifndef RP_NET_TIMERQ_H
#define RP_NET_TIMERQ_H

#include <stdint.h>
#include <uv.h>

#include "util/list.h"

/* A queue of deadlines that all share one delay, driven by one uv_timer_t. Because the delay
 * is the same for every node, appending keeps the list sorted by deadline, so push, remove
 * and expiry are O(1) and 19,000 sessions need one libuv timer, not 19,000 (the heartbeat
 * and connect timeouts of Engine.IO and Socket.IO all have this shape). */
typedef struct rp_timerq_node {
    rp_list_node_t node;
    uint64_t deadline;
    struct rp_timerq *q; /* the queue the node is on, or NULL */
} rp_timerq_node_t;

typedef void (*rp_timerq_cb)(rp_timerq_node_t *n);

typedef struct rp_timerq {
    uv_timer_t _timer;
    rp_list_node_t list;
    uint64_t delay;
    rp_timerq_cb _on_expire;
    uint64_t _armed_for; /* deadline the timer is set for, 0 if idle */
    void *owner;         /* the user's */
} rp_timerq_t;

/* Initialises q's timer on loop (unreferenced: q never keeps the loop alive). Returns 0 or
 * uv_timer_init's error. */
int rp_timerq_init(uv_loop_t *loop, rp_timerq_t *q, uint64_t delay_ms, rp_timerq_cb on_expire);
/* Stops q and closes its timer; on_closed (may be NULL) runs once libuv has let go of it, after
 * which q's memory may be freed. */
void rp_timerq_close(rp_timerq_t *q, uv_close_cb on_closed);
static inline void rp_timerq_node_init(rp_timerq_node_t *n)
{
    rp_list_init(&n->node);
    n->q = NULL;
}
/* Sets n's deadline to now + q->delay and moves it to the tail of q (off any other queue). */
void rp_timerq_push(rp_timerq_t *q, rp_timerq_node_t *n);
void rp_timerq_remove(rp_timerq_node_t *n);
/* True when n is on a queue and its deadline has passed (the timer may not have fired yet). */
int rp_timerq_expired(const rp_timerq_node_t *n);

#endif
