/* SPDX-License-Identifier: MIT */
#ifndef RP_UTIL_LIST_H
#define RP_UTIL_LIST_H

#include <stddef.h>

/* Intrusive circular doubly linked list (the Linux kernel's): a struct embeds an
 * rp_list_node_t and is found back with rp_container_of. Linking allocates nothing. An
 * unlinked node points at itself, so rp_list_unlink is safe to call twice. */
typedef struct rp_list_node {
    struct rp_list_node *prev;
    struct rp_list_node *next;
} rp_list_node_t;

#define rp_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void rp_list_init(rp_list_node_t *head)
{
    head->prev = head;
    head->next = head;
}

static inline int rp_list_empty(const rp_list_node_t *head)
{
    return head->next == head;
}

static inline int rp_list_linked(const rp_list_node_t *node)
{
    return node->next != node && node->next != NULL;
}

static inline void rp_list_insert_before(rp_list_node_t *pos, rp_list_node_t *node)
{
    node->prev = pos->prev;
    node->next = pos;
    pos->prev->next = node;
    pos->prev = node;
}

/* Appends `node` at the tail of `head`. */
static inline void rp_list_push(rp_list_node_t *head, rp_list_node_t *node)
{
    rp_list_insert_before(head, node);
}

static inline void rp_list_unlink(rp_list_node_t *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node;
    node->next = node;
}

#define rp_list_foreach(it, head) for ((it) = (head)->next; (it) != (head); (it) = (it)->next)
/* Safe against unlinking `it` inside the loop. */
#define rp_list_foreach_safe(it, tmp, head)                                                        \
    for ((it) = (head)->next, (tmp) = (it)->next; (it) != (head); (it) = (tmp), (tmp) = (it)->next)

#endif
