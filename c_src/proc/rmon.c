#include "proc/rmon.h"

#include "util/hash.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define RMON_MIN_CAP 16u

struct rmon_table {
    rmon_entry *slots;
    size_t cap; /* a power of two, or 0 */
    size_t n;
    uint64_t seed;
    uint32_t *per_node; /* monitors per watcher node index */
    size_t nnodes;
};

rmon_table *rmon_new(void)
{
    rmon_table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    if (getrandom(&t->seed, sizeof t->seed, 0) != (ssize_t)sizeof t->seed)
        t->seed = RC_HASH_SEED ^ (uint64_t)(uintptr_t)t;
    return t;
}

void rmon_free(rmon_table *t)
{
    if (t == NULL)
        return;
    free(t->slots);
    free(t->per_node);
    free(t);
}

static int same_ref(const rmon_entry *a, const rmon_entry *b)
{
    return a->ref_len == b->ref_len && a->ref_creation == b->ref_creation &&
           a->ref_node == b->ref_node &&
           memcmp(a->ref, b->ref, sizeof(uint32_t) * a->ref_len) == 0;
}

static size_t slot_of(const rmon_table *t, const rmon_entry *e)
{
    uint64_t h = rc_hash_mix(t->seed, ((uint64_t)e->ref_node << 32) | e->ref_creation);
    h = rc_hash_bytes(h, e->ref, sizeof(uint32_t) * (e->ref_len > 5 ? 5 : e->ref_len));
    return (size_t)rc_hash_fold(h) & (t->cap - 1);
}

/* Places e in a table known to have room and not to hold its reference. */
static void place(rmon_table *t, const rmon_entry *e)
{
    size_t i = slot_of(t, e);
    while (t->slots[i].used)
        i = (i + 1) & (t->cap - 1);
    t->slots[i] = *e;
    t->slots[i].used = 1;
}

static int resize(rmon_table *t, size_t ncap)
{
    rmon_entry *ns = calloc(ncap, sizeof *ns);
    if (ns == NULL)
        return -1;
    rmon_entry *old = t->slots;
    size_t ocap = t->cap;
    t->slots = ns;
    t->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].used)
            place(t, &old[i]);
    free(old);
    return 0;
}

static void maybe_shrink(rmon_table *t)
{
    if (t->cap > RMON_MIN_CAP && t->n < t->cap / 8) {
        size_t ncap = t->cap;
        while (ncap > RMON_MIN_CAP && t->n < ncap / 8)
            ncap /= 2;
        if (t->n == 0) {
            free(t->slots);
            t->slots = NULL;
            t->cap = 0;
            return;
        }
        (void)resize(t, ncap); /* on failure the bigger table stays: still correct */
    }
}

static uint32_t *node_counter(rmon_table *t, uint32_t node, int grow)
{
    if (node >= t->nnodes) {
        if (!grow)
            return NULL;
        size_t nn = t->nnodes ? t->nnodes : 8;
        while (nn <= node)
            nn *= 2;
        uint32_t *p = realloc(t->per_node, nn * sizeof *p);
        if (p == NULL)
            return NULL;
        memset(p + t->nnodes, 0, (nn - t->nnodes) * sizeof *p);
        t->per_node = p;
        t->nnodes = nn;
    }
    return &t->per_node[node];
}

static long find(const rmon_table *t, const rmon_entry *key)
{
    if (t->cap == 0)
        return -1;
    size_t i = slot_of(t, key);
    while (t->slots[i].used) {
        if (same_ref(&t->slots[i], key))
            return (long)i;
        i = (i + 1) & (t->cap - 1);
    }
    return -1;
}

/* Backward-shift deletion: later members of the probe chain move up, so no
 * tombstones are needed. */
static void delete_at(rmon_table *t, size_t i)
{
    size_t mask = t->cap - 1;
    size_t j = i;
    for (;;) {
        t->slots[i].used = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (!t->slots[j].used)
                return;
            size_t home = slot_of(t, &t->slots[j]);
            /* j may move to i when its home is not in (i, j] (cyclically) */
            if (i <= j ? (home <= i || home > j) : (home <= i && home > j))
                break;
        }
        t->slots[i] = t->slots[j];
        i = j;
    }
}

int rmon_add(rmon_table *t, const rmon_entry *e, uint32_t cap_per_node)
{
    long at = find(t, e);
    if (at >= 0) {
        uint32_t *old = node_counter(t, t->slots[at].watcher.node, 0);
        if (old != NULL && *old > 0)
            (*old)--;
        delete_at(t, (size_t)at);
        t->n--;
    }
    uint32_t *cnt = node_counter(t, e->watcher.node, 1);
    if (cnt == NULL)
        return RC_ENOMEM;
    if (*cnt >= cap_per_node)
        return RC_ESYSTEM_LIMIT;
    if ((t->n + 1) * 4 > t->cap * 3 && resize(t, t->cap ? t->cap * 2 : RMON_MIN_CAP) != 0)
        return RC_ENOMEM;
    place(t, e);
    t->n++;
    (*cnt)++;
    return RC_OK;
}

int rmon_remove(rmon_table *t, const rmon_entry *key, rmon_entry *out)
{
    long at = find(t, key);
    if (at < 0)
        return 0;
    if (out != NULL)
        *out = t->slots[at];
    uint32_t *cnt = node_counter(t, t->slots[at].watcher.node, 0);
    if (cnt != NULL && *cnt > 0)
        (*cnt)--;
    delete_at(t, (size_t)at);
    t->n--;
    maybe_shrink(t);
    return 1;
}

void rmon_remove_if(rmon_table *t, int (*match)(void *ctx, const rmon_entry *e),
                    void (*gone)(void *ctx, const rmon_entry *e), void *ctx)
{
    if (t->n == 0)
        return;
    /* One pass over a copy: the survivors are placed again (cheaper and
     * simpler than deleting in place while walking the chains). */
    rmon_entry *old = t->slots;
    size_t ocap = t->cap;
    rmon_entry *ns = calloc(ocap, sizeof *ns);
    if (ns == NULL)
        return; /* nothing removed; the caller's next event retries */
    t->slots = ns;
    t->n = 0;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i].used)
            continue;
        if (match(ctx, &old[i])) {
            uint32_t *cnt = node_counter(t, old[i].watcher.node, 0);
            if (cnt != NULL && *cnt > 0)
                (*cnt)--;
            gone(ctx, &old[i]);
        } else {
            place(t, &old[i]);
            t->n++;
        }
    }
    free(old);
    maybe_shrink(t);
}

size_t rmon_count(const rmon_table *t) { return t->n; }

uint32_t rmon_count_node(const rmon_table *t, uint32_t node)
{
    return node < t->nnodes ? t->per_node[node] : 0;
}
