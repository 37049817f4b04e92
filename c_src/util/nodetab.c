#include "util/nodetab.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

typedef struct node_name {
    char *name;
    size_t len;
    uint32_t idx;
    UT_hash_handle hh;
} node_name;

struct rc_nodetab {
    node_name *by_name;
    node_name **by_idx;
    uint32_t n, cap;
};

rc_nodetab *rc_nodetab_new(void) { return calloc(1, sizeof(rc_nodetab)); }

void rc_nodetab_free(rc_nodetab *t)
{
    if (t == NULL)
        return;
    node_name *e, *tmp;
    HASH_ITER(hh, t->by_name, e, tmp) {
        HASH_DEL(t->by_name, e);
        free(e->name);
        free(e);
    }
    free(t->by_idx);
    free(t);
}

uint32_t rc_nodetab_intern(rc_nodetab *t, const char *name, size_t len)
{
    node_name *e = NULL;
    HASH_FIND(hh, t->by_name, name, len, e);
    if (e != NULL)
        return e->idx;
    if (t->n == UINT32_MAX - 1)
        return RC_NODE_NONE;
    if (t->n == t->cap) {
        uint32_t ncap = t->cap ? t->cap * 2 : 16;
        node_name **nb = realloc(t->by_idx, (size_t)ncap * sizeof *nb);
        if (nb == NULL)
            return RC_NODE_NONE;
        t->by_idx = nb;
        t->cap = ncap;
    }
    e = calloc(1, sizeof *e);
    char *copy = malloc(len + 1);
    if (e == NULL || copy == NULL) {
        free(e);
        free(copy);
        return RC_NODE_NONE;
    }
    memcpy(copy, name, len);
    copy[len] = '\0';
    e->name = copy;
    e->len = len;
    e->idx = t->n;
    t->by_idx[t->n++] = e;
    HASH_ADD_KEYPTR(hh, t->by_name, e->name, e->len, e);
    return e->idx;
}

uint32_t rc_nodetab_find(const rc_nodetab *t, const char *name, size_t len)
{
    node_name *e = NULL;
    HASH_FIND(hh, t->by_name, name, len, e);
    return e != NULL ? e->idx : RC_NODE_NONE;
}

const char *rc_nodetab_name(const rc_nodetab *t, uint32_t idx)
{
    return idx < t->n ? t->by_idx[idx]->name : NULL;
}

size_t rc_nodetab_name_len(const rc_nodetab *t, uint32_t idx)
{
    return idx < t->n ? t->by_idx[idx]->len : 0;
}
