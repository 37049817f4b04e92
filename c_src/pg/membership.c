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
#ifdef PGM_FAULT_INJECTION
/* uthash allocates only inside pgm_add, where `t` is in scope. */
#define uthash_malloc(sz) (alloc_fails(t) ? NULL : malloc(sz))
#endif
#include <uthash.h>

struct pgm_group {
    UT_hash_handle hh;
    rc_cpid *m;
    uint32_t n, cap;
    uint32_t keylen;
    uint32_t id; /* the index names groups by this, half a pointer */
    uint8_t key[]; /* canonical group term */
};

/* How many of one group's members are on one node. count 0 marks a free
 * slot: a pair leaves the index when its last member does. */
typedef struct pgm_pair {
    uint32_t gid;
    uint32_t count;
} pgm_pair;

/* The groups where one node has members: open addressing with linear
 * probing, so a pair costs 8 bytes a slot and no allocation of its own. */
typedef struct pgm_node {
    uint32_t node;
    uint32_t used;
    uint32_t mask; /* slots - 1; 0 with no slots */
    pgm_pair *slot;
} pgm_node;

/* A group id's slot: the group, or the next free id once it is released,
 * so ids are reused without a list of their own. */
typedef union pgm_idslot {
    pgm_group *g;
    uint32_t next_free;
} pgm_idslot;

#define PGM_NO_ID UINT32_MAX
#define PGM_MIN_SLOTS 8u

struct pgm_table {
    pgm_group *groups;
    size_t members;
    pgm_node *nodes; /* sorted by node, for binary search */
    uint32_t nnodes, nodecap;
    pgm_idslot *byid;
    uint32_t nids, idcap, free_id;
#ifdef PGM_FAULT_INJECTION
    long alloc_budget; /* allocations left before they fail; < 0: no limit */
#endif
};

#ifdef PGM_FAULT_INJECTION
/* Tests build this file with PGM_FAULT_INJECTION to fail each allocation
 * in turn and check that nothing was half-done. */
static int alloc_fails(pgm_table *t)
{
    if (t->alloc_budget < 0)
        return 0;
    if (t->alloc_budget == 0)
        return 1;
    t->alloc_budget--;
    return 0;
}
#else
#define alloc_fails(t) ((void)(t), 0)
#endif

pgm_table *pgm_new(void)
{
    pgm_table *t = calloc(1, sizeof(pgm_table));
    if (t != NULL) {
        t->free_id = PGM_NO_ID;
#ifdef PGM_FAULT_INJECTION
        t->alloc_budget = -1;
#endif
    }
    return t;
}

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
    for (uint32_t i = 0; i < t->nnodes; i++)
        free(t->nodes[i].slot);
    free(t->nodes);
    free(t->byid);
    free(t);
}

pgm_group *pgm_find(const pgm_table *t, const uint8_t *key, size_t len)
{
    pgm_group *g = NULL;
    HASH_FIND(hh, t->groups, key, len, g);
    return g;
}

/* ------------------------------------------------------------ group ids */

static int id_alloc(pgm_table *t, pgm_group *g)
{
    if (t->free_id != PGM_NO_ID) {
        g->id = t->free_id;
        t->free_id = t->byid[g->id].next_free;
        t->byid[g->id].g = g;
        return 0;
    }
    if (t->nids == t->idcap) {
        if (t->idcap >= PGM_NO_ID - 1)
            return -1;
        size_t ncap = t->idcap ? (size_t)t->idcap + t->idcap / 2 : 64;
        if (ncap > PGM_NO_ID - 1)
            ncap = PGM_NO_ID - 1;
        if (alloc_fails(t))
            return -1;
        pgm_idslot *nb = realloc(t->byid, ncap * sizeof *nb);
        if (nb == NULL)
            return -1;
        t->byid = nb;
        t->idcap = (uint32_t)ncap;
    }
    g->id = t->nids++;
    t->byid[g->id].g = g;
    return 0;
}

static void id_release(pgm_table *t, uint32_t id)
{
    t->byid[id].next_free = t->free_id;
    t->free_id = id;
}

/* ------------------------------------------------------------ per-node index */

static inline uint32_t pair_home(uint32_t gid, uint32_t mask)
{
    uint64_t h = (uint64_t)gid * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h >> 32) & mask;
}

/* Slot of gid, or -1. */
static long pair_find(const pgm_node *nm, uint32_t gid)
{
    if (nm->used == 0)
        return -1;
    for (uint32_t i = pair_home(gid, nm->mask);; i = (i + 1) & nm->mask) {
        if (nm->slot[i].count == 0)
            return -1;
        if (nm->slot[i].gid == gid)
            return (long)i;
    }
}

/* Load at most 4/5 (at least 1/4, see pair_sub): probes stay short, and a
 * pair costs 10 to 32 bytes. */
static int over_load(uint64_t used, uint64_t slots) { return used * 5 > slots * 4; }

static int node_resize(pgm_table *t, pgm_node *nm, uint32_t slots)
{
    if (alloc_fails(t))
        return -1;
    pgm_pair *ns = calloc(slots, sizeof *ns);
    if (ns == NULL)
        return -1;
    uint32_t mask = slots - 1;
    for (uint32_t i = 0; nm->used > 0 && i <= nm->mask; i++) {
        if (nm->slot[i].count == 0)
            continue;
        uint32_t j = pair_home(nm->slot[i].gid, mask);
        while (ns[j].count != 0)
            j = (j + 1) & mask;
        ns[j] = nm->slot[i];
    }
    free(nm->slot);
    nm->slot = ns;
    nm->mask = mask;
    return 0;
}

/* Room for `used` pairs without allocating. */
static int node_reserve(pgm_table *t, pgm_node *nm, uint32_t used)
{
    uint64_t slots = nm->slot ? (uint64_t)nm->mask + 1 : 0;
    if (slots > 0 && !over_load(used, slots))
        return 0;
    if (slots == 0)
        slots = PGM_MIN_SLOTS;
    while (over_load(used, slots))
        slots *= 2;
    if (slots > (uint64_t)1 << 31)
        return -1;
    return node_resize(t, nm, (uint32_t)slots);
}

/* Index in t->nodes of node, or -1 with *at set to where it would go. */
static long node_find(const pgm_table *t, uint32_t node, uint32_t *at)
{
    uint32_t lo = 0, hi = t->nnodes;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t->nodes[mid].node < node)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (at)
        *at = lo;
    return lo < t->nnodes && t->nodes[lo].node == node ? (long)lo : -1;
}

static long node_get(pgm_table *t, uint32_t node)
{
    uint32_t at;
    long i = node_find(t, node, &at);
    if (i >= 0)
        return i;
    if (t->nnodes == t->nodecap) {
        if (t->nodecap >= UINT32_MAX / 2)
            return -1;
        uint32_t ncap = t->nodecap ? t->nodecap * 2 : 8;
        if (alloc_fails(t))
            return -1;
        pgm_node *nn = realloc(t->nodes, (size_t)ncap * sizeof *nn);
        if (nn == NULL)
            return -1;
        t->nodes = nn;
        t->nodecap = ncap;
    }
    memmove(&t->nodes[at + 1], &t->nodes[at], (t->nnodes - at) * sizeof *t->nodes);
    t->nodes[at] = (pgm_node){.node = node};
    t->nnodes++;
    return (long)at;
}

/* Takes node i out of the vector; the caller owns its slots. */
static void node_detach(pgm_table *t, uint32_t i)
{
    memmove(&t->nodes[i], &t->nodes[i + 1], (t->nnodes - i - 1) * sizeof *t->nodes);
    t->nnodes--;
}

/* Precondition: node_reserve made room for one more pair. */
static void pair_add(pgm_node *nm, uint32_t gid, uint32_t k)
{
    uint32_t i = pair_home(gid, nm->mask);
    while (nm->slot[i].count != 0 && nm->slot[i].gid != gid)
        i = (i + 1) & nm->mask;
    if (nm->slot[i].count == 0) {
        nm->slot[i].gid = gid;
        nm->used++;
    }
    nm->slot[i].count += k;
}

/* Backward-shift deletion: no tombstones, so look-ups never slow down with
 * churn. */
static void pair_erase(pgm_node *nm, uint32_t i)
{
    for (uint32_t j = (i + 1) & nm->mask; nm->slot[j].count != 0; j = (j + 1) & nm->mask) {
        uint32_t home = pair_home(nm->slot[j].gid, nm->mask);
        /* slot j may move to i unless its home lies cyclically in (i, j] */
        if (((j - home) & nm->mask) >= ((j - i) & nm->mask)) {
            nm->slot[i] = nm->slot[j];
            i = j;
        }
    }
    nm->slot[i].count = 0;
    nm->used--;
}

static void pair_sub(pgm_table *t, uint32_t node, uint32_t gid, uint32_t k)
{
    long ni = node_find(t, node, NULL);
    if (ni < 0)
        return;
    pgm_node *nm = &t->nodes[ni];
    long si = pair_find(nm, gid);
    if (si < 0)
        return;
    if (nm->slot[si].count > k) {
        nm->slot[si].count -= k;
        return;
    }
    pair_erase(nm, (uint32_t)si);
    if (nm->used == 0) {
        free(nm->slot);
        node_detach(t, (uint32_t)ni);
    } else if (nm->mask + 1 > PGM_MIN_SLOTS && (uint64_t)nm->used * 4 < (uint64_t)nm->mask + 1) {
        /* at most half full after, far from growing again; if it cannot
         * allocate, the larger array serves as well */
        (void)node_resize(t, nm, (nm->mask + 1) / 2);
    }
}

/* Runs of pids on one node: pids of a join or a sync come from one node,
 * so this is usually a single run. */
static size_t run_len(const rc_cpid *pids, size_t n, size_t i)
{
    size_t j = i + 1;
    while (j < n && pids[j].node == pids[i].node)
        j++;
    return j - i;
}

/* Everything that may fail, before anything changes: each node of pids
 * gets an entry with room for g's pair. */
static int index_reserve(pgm_table *t, uint32_t gid, const rc_cpid *pids, size_t n)
{
    for (size_t i = 0; i < n; i += run_len(pids, n, i)) {
        long ni = node_get(t, pids[i].node);
        if (ni < 0)
            return -1;
        pgm_node *nm = &t->nodes[ni];
        if (pair_find(nm, gid) < 0 && node_reserve(t, nm, nm->used + 1) != 0)
            return -1;
    }
    return 0;
}

/* After a failed pgm_add: drops node entries index_reserve made that hold
 * no pair. */
static void index_unreserve(pgm_table *t, const rc_cpid *pids, size_t n)
{
    for (size_t i = 0; i < n; i += run_len(pids, n, i)) {
        long ni = node_find(t, pids[i].node, NULL);
        if (ni >= 0 && t->nodes[ni].used == 0) {
            free(t->nodes[ni].slot);
            node_detach(t, (uint32_t)ni);
        }
    }
}

static void index_commit(pgm_table *t, uint32_t gid, const rc_cpid *pids, size_t n)
{
    for (size_t i = 0, r; i < n; i += r) {
        r = run_len(pids, n, i);
        long ni = node_find(t, pids[i].node, NULL);
        pair_add(&t->nodes[ni], gid, (uint32_t)r);
    }
}

/* ------------------------------------------------------------ groups */

static int group_reserve(pgm_table *t, pgm_group *g, size_t need)
{
    if (need <= g->cap)
        return 0;
    if (need > UINT32_MAX)
        return -1;
    /* Grow by half: doubling would waste up to half of every large group. */
    /* A new group gets room for what it is given: many groups (an
     * emitter pool's) keep one member. */
    size_t ncap = g->cap ? (size_t)g->cap + g->cap / 2 + 1 : 1;
    if (ncap < need)
        ncap = need;
    if (ncap > UINT32_MAX)
        ncap = UINT32_MAX;
    if (alloc_fails(t))
        return -1;
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
        if (alloc_fails(t))
            return NULL;
        g = calloc(1, sizeof *g + len);
        if (g == NULL)
            return NULL;
        memcpy(g->key, key, len);
        g->keylen = (uint32_t)len;
        if (id_alloc(t, g) != 0) {
            group_free(g);
            return NULL;
        }
        fresh = 1;
    }
    size_t want = (size_t)g->n + n;
    if (reserve > want)
        want = reserve;
    if (group_reserve(t, g, want) != 0 || index_reserve(t, g->id, pids, n) != 0)
        goto fail;
    if (fresh) {
        HASH_ADD_KEYPTR(hh, t->groups, g->key, g->keylen, g);
        if (g->hh.tbl == NULL)
            goto fail;
    }
    /* nothing below can fail */
    if (n > 0)
        memcpy(g->m + g->n, pids, n * sizeof *pids);
    g->n += (uint32_t)n;
    t->members += n;
    index_commit(t, g->id, pids, n);
    return g;
fail:
    index_unreserve(t, pids, n);
    if (fresh) {
        id_release(t, g->id);
        group_free(g);
    }
    return NULL;
}

static void maybe_drop(pgm_table *t, pgm_group **g)
{
    if ((*g)->n == 0) {
        HASH_DEL(t->groups, *g);
        id_release(t, (*g)->id);
        group_free(*g);
        *g = NULL;
    }
}

int pgm_remove_one(pgm_table *t, pgm_group **g, const rc_cpid *pid)
{
    pgm_group *grp = *g;
    for (uint32_t i = 0; i < grp->n; i++) {
        if (rc_cpid_eq(&grp->m[i], pid)) {
            uint32_t node = pid->node; /* pid may point into the array */
            grp->m[i] = grp->m[--grp->n];
            t->members--;
            pair_sub(t, node, grp->id, 1);
            maybe_drop(t, g);
            return 1;
        }
    }
    return 0;
}

/* Removes the `want` members of g on `node`. They go to the back, so the
 * callback sees them as one array; scanning from the back and stopping at
 * the known count spares the front of large groups, where long-standing
 * members of other nodes sit. */
static size_t drop_members(pgm_table *t, pgm_group *g, uint32_t node, uint32_t want,
                           pgm_removed_fn cb, void *ctx)
{
    uint32_t found = 0, tail = g->n;
    for (uint32_t j = g->n; j-- > 0 && found < want;) {
        if (g->m[j].node == node) {
            tail--;
            rc_cpid tmpp = g->m[j];
            g->m[j] = g->m[tail];
            g->m[tail] = tmpp;
            found++;
        }
    }
    if (found == 0)
        return 0;
    if (cb)
        cb(ctx, g, g->m + tail, found);
    g->n = tail;
    t->members -= found;
    maybe_drop(t, &g);
    return found;
}

#if defined(__GNUC__) || defined(__clang__)
#define PGM_PREFETCH(p) __builtin_prefetch(p)
#else
#define PGM_PREFETCH(p) ((void)(p))
#endif

size_t pgm_remove_node(pgm_table *t, uint32_t node, pgm_removed_fn cb, void *ctx)
{
    long ni = node_find(t, node, NULL);
    if (ni < 0)
        return 0;
    /* Taken out first: the groups it names may be freed on the way. */
    pgm_node nm = t->nodes[ni];
    node_detach(t, (uint32_t)ni);
    size_t removed = 0;
    /* The groups lie scattered over the heap, two dependent cache misses
     * each (the group, then its members): a batch is fetched ahead so the
     * misses overlap instead of following one another. */
    enum { BATCH = 32 };
    pgm_group *gs[BATCH];
    uint32_t want[BATCH];
    uint32_t s = 0;
    while (nm.used > 0 && s <= nm.mask) {
        unsigned k = 0;
        for (; k < BATCH && s <= nm.mask; s++) {
            if (nm.slot[s].count == 0)
                continue;
            gs[k] = t->byid[nm.slot[s].gid].g;
            want[k] = nm.slot[s].count;
            PGM_PREFETCH(&gs[k]->m);
            PGM_PREFETCH(&gs[k]->n);
            k++;
        }
        /* the back of each group, where the scan starts: up to 4 lines */
        for (unsigned i = 0; i < k; i++)
            for (uint32_t j = gs[i]->n, l = 0; j > 0 && l < 4; j = j > 4 ? j - 4 : 0, l++)
                PGM_PREFETCH(&gs[i]->m[j - 1]);
        for (unsigned i = 0; i < k; i++)
            removed += drop_members(t, gs[i], node, want[i], cb, ctx);
    }
    free(nm.slot);
    return removed;
}

size_t pgm_node_group_count(const pgm_table *t, uint32_t node)
{
    long ni = node_find(t, node, NULL);
    return ni < 0 ? 0 : t->nodes[ni].used;
}

size_t pgm_node_member_count(const pgm_table *t, uint32_t node, const pgm_group *g)
{
    long ni = node_find(t, node, NULL);
    if (ni < 0)
        return 0;
    long si = pair_find(&t->nodes[ni], g->id);
    return si < 0 ? 0 : t->nodes[ni].slot[si].count;
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
