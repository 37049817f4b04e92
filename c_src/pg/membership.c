#include "pg/membership.h"

#include "util/hash.h"

#include <stdlib.h>
#include <string.h>

/* Group keys are a few dozen bytes; uthash's default Jenkins hash alone
 * costs about the 50 ns a members look-up may take. */
static inline unsigned pgm_hash(const void *key, size_t n)
{
    return rc_hash_fold(rc_hash_bytes(RC_HASH_SEED ^ n, key, n));
}

#define HASH_FUNCTION(keyptr, keylen, hashv) ((hashv) = pgm_hash((keyptr), (size_t)(keylen)))
/* uthash must report allocation failure instead of calling exit(). */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

struct pgm_group {
    UT_hash_handle hh;
    rc_cpid *m;
    uint32_t n, cap;
    uint32_t keylen;
    uint8_t key[]; /* canonical group term */
};

struct pgm_table {
    pgm_group *groups;
    size_t members;
};

pgm_table *pgm_new(void) { return calloc(1, sizeof(pgm_table)); }

static void group_free(pgm_group *g)
{
    free(g->m);
    free(g);
}

void pgm_free(pgm_table *t)
{
    if (t == NULL)
        return;
    pgm_group *g, *tmp;
    HASH_ITER(hh, t->groups, g, tmp) {
        HASH_DEL(t->groups, g);
        group_free(g);
    }
    free(t);
}

pgm_group *pgm_find(const pgm_table *t, const uint8_t *key, size_t len)
{
    pgm_group *g = NULL;
    HASH_FIND(hh, t->groups, key, len, g);
    return g;
}

static int group_reserve(pgm_group *g, size_t need)
{
    if (need <= g->cap)
        return 0;
    if (need > UINT32_MAX)
        return -1;
    /* Grow by half: doubling would waste up to half of every large group. */
    size_t ncap = g->cap ? (size_t)g->cap + g->cap / 2 + 1 : 2;
    if (ncap < need)
        ncap = need;
    if (ncap > UINT32_MAX)
        ncap = UINT32_MAX;
    rc_cpid *nm = realloc(g->m, ncap * sizeof *nm);
    if (nm == NULL)
        return -1;
    g->m = nm;
    g->cap = (uint32_t)ncap;
    return 0;
}

pgm_group *pgm_add(pgm_table *t, const uint8_t *key, size_t len, const rc_cpid *pids, size_t n,
                   size_t reserve)
{
    if (len > UINT32_MAX)
        return NULL;
    pgm_group *g = pgm_find(t, key, len);
    int fresh = 0;
    if (g == NULL) {
        g = calloc(1, sizeof *g + len);
        if (g == NULL)
            return NULL;
        memcpy(g->key, key, len);
        g->keylen = (uint32_t)len;
        fresh = 1;
    }
    size_t want = (size_t)g->n + n;
    if (reserve > want)
        want = reserve;
    if (group_reserve(g, want) != 0)
        goto fail;
    if (fresh) {
        HASH_ADD_KEYPTR(hh, t->groups, g->key, g->keylen, g);
        if (g->hh.tbl == NULL)
            goto fail;
    }
    if (n > 0)
        memcpy(g->m + g->n, pids, n * sizeof *pids);
    g->n += (uint32_t)n;
    t->members += n;
    return g;
fail:
    if (fresh)
        group_free(g);
    return NULL;
}

static void maybe_drop(pgm_table *t, pgm_group **g)
{
    if ((*g)->n == 0) {
        HASH_DEL(t->groups, *g);
        group_free(*g);
        *g = NULL;
    }
}

int pgm_remove_one(pgm_table *t, pgm_group **g, const rc_cpid *pid)
{
    pgm_group *grp = *g;
    for (uint32_t i = 0; i < grp->n; i++) {
        if (rc_cpid_eq(&grp->m[i], pid)) {
            grp->m[i] = grp->m[--grp->n];
            t->members--;
            maybe_drop(t, g);
            return 1;
        }
    }
    return 0;
}

size_t pgm_remove_node(pgm_table *t, uint32_t node, pgm_removed_fn cb, void *ctx)
{
    size_t removed = 0;
    pgm_group *g, *tmp;
    HASH_ITER(hh, t->groups, g, tmp) {
        /* Partition: kept members to the front, removed ones to the back, so
         * the callback sees the removed pids as one array. */
        uint32_t keep = 0;
        for (uint32_t i = 0; i < g->n; i++) {
            if (g->m[i].node != node) {
                if (keep != i) {
                    rc_cpid tmpp = g->m[keep];
                    g->m[keep] = g->m[i];
                    g->m[i] = tmpp;
                }
                keep++;
            }
        }
        uint32_t gone = g->n - keep;
        if (gone == 0)
            continue;
        if (cb)
            cb(ctx, g, g->m + keep, gone);
        g->n = keep;
        t->members -= gone;
        removed += gone;
        pgm_group *gp = g;
        maybe_drop(t, &gp);
    }
    return removed;
}

const uint8_t *pgm_group_key(const pgm_group *g, size_t *len)
{
    *len = g->keylen;
    return g->key;
}

const rc_cpid *pgm_group_members(const pgm_group *g, size_t *n)
{
    *n = g->n;
    return g->m;
}

pgm_group *pgm_next(const pgm_table *t, const pgm_group *prev)
{
    return prev == NULL ? t->groups : (pgm_group *)prev->hh.next;
}

size_t pgm_group_count(const pgm_table *t) { return HASH_COUNT(t->groups); }
size_t pgm_member_count(const pgm_table *t) { return t->members; }
