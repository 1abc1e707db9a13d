/* SPDX-License-Identifier: MIT */
/* Fixed-delay deadline queues. The timer is armed for the head's deadline; removing the head
 * leaves it armed, and a firing that finds nothing due just re-arms for the new head. */
#include "net/timerq.h"

static void on_timer(uv_timer_t *t);

static void arm(rp_timerq_t *q)
{
    if (rp_list_empty(&q->list)) {
        uv_timer_stop(&q->_timer);
        q->_armed_for = 0;
        return;
    }
    rp_timerq_node_t *head = rp_container_of(q->list.next, rp_timerq_node_t, node);
    if (q->_armed_for == head->deadline)
        return;
    uint64_t now = uv_now(q->_timer.loop);
    q->_armed_for = head->deadline;
    /* Cannot fail: the callback is set, and a closed queue has no nodes to arm for. */
    (void)uv_timer_start(&q->_timer, on_timer, head->deadline > now ? head->deadline - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
    rp_timerq_t *q = t->data;
    uint64_t now = uv_now(t->loop);
    q->_armed_for = 0;
    while (!rp_list_empty(&q->list)) {
        rp_timerq_node_t *n = rp_container_of(q->list.next, rp_timerq_node_t, node);
        if (n->deadline > now)
            break;
        rp_list_unlink(&n->node);
        n->q = NULL;
        q->_on_expire(n);
    }
    arm(q);
}

int rp_timerq_init(uv_loop_t *loop, rp_timerq_t *q, uint64_t delay_ms, rp_timerq_cb on_expire)
{
    int rc = uv_timer_init(loop, &q->_timer);
    if (rc < 0)
        return rc;
    q->_timer.data = q;
    rp_list_init(&q->list);
    q->delay = delay_ms;
    q->_on_expire = on_expire;
    q->_armed_for = 0;
    uv_unref((uv_handle_t *)&q->_timer);
    return 0;
}

void rp_timerq_close(rp_timerq_t *q, uv_close_cb on_closed)
{
    while (!rp_list_empty(&q->list)) {
        rp_timerq_node_t *n = rp_container_of(q->list.next, rp_timerq_node_t, node);
        rp_list_unlink(&n->node);
        n->q = NULL;
    }
    uv_close((uv_handle_t *)&q->_timer, on_closed);
}

void rp_timerq_push(rp_timerq_t *q, rp_timerq_node_t *n)
{
    rp_timerq_remove(n);
    n->deadline = uv_now(q->_timer.loop) + q->delay;
    n->q = q;
    rp_list_push(&q->list, &n->node);
    arm(q);
}

void rp_timerq_remove(rp_timerq_node_t *n)
{
    if (n->q == NULL)
        return;
    rp_list_unlink(&n->node);
    n->q = NULL;
}

int rp_timerq_expired(const rp_timerq_node_t *n)
{
    return n->q && n->deadline <= uv_now(n->q->_timer.loop);
}
