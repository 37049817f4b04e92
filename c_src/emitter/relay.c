#include "emitter/relay.h"

#include <stdlib.h>
#include <string.h>

/* 131, {'$reckon_relay', ... */
const uint8_t RC_RELAY_HEAD[] = {131, 104, 3, 119, 13, '$', 'r', 'e', 'c', 'k', 'o', 'n',
                                 '_', 'r', 'e', 'l', 'a', 'y'};
const size_t RC_RELAY_HEAD_LEN = sizeof RC_RELAY_HEAD;

typedef struct route {
    uint32_t node;
    uint32_t used;  /* slot taken */
    uint32_t asked; /* a member of this node was seen in this fan-out */
    rc_cpid relay;
} route;

struct rc_relays {
    rc_pg_scope *scope;
    ei_x_buff key; /* canonical {'$reckon_cnode', relays} */
    route *slots;
    size_t cap; /* power of two, or 0 */
    int active; /* the last rc_relays_begin found relays */
};

rc_relays *rc_relays_new(rc_pg_scope *scope)
{
    rc_relays *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->scope = scope;
    ei_x_buff g;
    if (ei_x_new(&g) != 0) {
        free(r);
        return NULL;
    }
    int rc = ei_x_encode_tuple_header(&g, 2) || ei_x_encode_atom(&g, "$reckon_cnode") ||
             ei_x_encode_atom(&g, "relays") || ei_x_new(&r->key) ||
             rc_pg_group_key(g.buff, g.index, &r->key);
    ei_x_free(&g);
    if (rc != 0) {
        ei_x_free(&r->key);
        free(r);
        return NULL;
    }
    return r;
}

void rc_relays_free(rc_relays *r)
{
    if (r == NULL)
        return;
    ei_x_free(&r->key);
    free(r->slots);
    free(r);
}

static size_t slot_of(const rc_relays *r, uint32_t node)
{
    return (size_t)(node * 2654435761u) & (r->cap - 1);
}

/* Of two relays on one node, the same one every time (the lowest pid), so
 * that one subscriber's events keep one path and their order. */
static int pid_less(const rc_cpid *a, const rc_cpid *b)
{
    if (a->creation != b->creation)
        return a->creation < b->creation;
    if (a->serial != b->serial)
        return a->serial < b->serial;
    return a->num < b->num;
}

int rc_relays_begin(rc_relays *r)
{
    size_t n = 0;
    const rc_cpid *m = rc_pg_members(r->scope, (const uint8_t *)r->key.buff,
                                     (size_t)r->key.index, &n);
    r->active = 0;
    if (n == 0)
        return 0;
    size_t want = 8;
    while (want < n * 2)
        want *= 2;
    if (want > r->cap) {
        route *s = realloc(r->slots, want * sizeof *s);
        if (s == NULL)
            return -1;
        r->slots = s;
        r->cap = want;
    }
    memset(r->slots, 0, r->cap * sizeof *r->slots);
    size_t relays = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = slot_of(r, m[i].node);
        while (r->slots[k].used && r->slots[k].node != m[i].node)
            k = (k + 1) & (r->cap - 1);
        route *s = &r->slots[k];
        if (!s->used) {
            s->used = 1;
            s->node = m[i].node;
            s->relay = m[i];
            relays++;
        } else if (pid_less(&m[i], &s->relay)) {
            s->relay = m[i];
        }
    }
    r->active = 1;
    return (int)(relays > (size_t)INT32_MAX ? INT32_MAX : relays);
}

const rc_cpid *rc_relays_route(rc_relays *r, uint32_t node, int *first)
{
    *first = 0;
    if (!r->active)
        return NULL;
    size_t k = slot_of(r, node);
    while (r->slots[k].used) {
        if (r->slots[k].node == node) {
            *first = !r->slots[k].asked;
            r->slots[k].asked = 1;
            return &r->slots[k].relay;
        }
        k = (k + 1) & (r->cap - 1);
    }
    return NULL;
}
