/* pg member table under allocation failure: the table's source is built
 * here with PGM_FAULT_INJECTION, which makes the n-th allocation of a table
 * fail. Every allocation of an add is failed in turn, and after each failure
 * the table (groups, members in order, per-node index) must be exactly as
 * before; a shrink of the index that cannot allocate leaves it correct. */
#define PGM_FAULT_INJECTION 1
#include "pg/membership.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static rc_cpid cp(uint32_t node, uint32_t num)
{
    rc_cpid p = {.node = node, .num = num, .serial = 1, .creation = 3};
    return p;
}

static const uint8_t *K(const char *s) { return (const uint8_t *)s; }

static size_t key_of(char *buf, size_t cap, int i)
{
    int n = snprintf(buf, cap, "grp-%05d", i);
    assert_true(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

/* The index against the groups: per node exactly the groups where it has
 * members, with their counts, and no node entry without a pair. */
static void check_index(const pgm_table *t)
{
    size_t pairs = 0;
    for (pgm_group *g = pgm_next(t, NULL); g != NULL; g = pgm_next(t, g)) {
        size_t n;
        const rc_cpid *m = pgm_group_members(g, &n);
        for (size_t i = 0; i < n; i++) {
            size_t first = i, c = 0;
            for (size_t j = 0; j < n; j++) {
                if (m[j].node == m[i].node) {
                    if (j < i)
                        first = j;
                    c++;
                }
            }
            if (first != i)
                continue; /* node counted at its first member */
            assert_int_equal(pgm_node_member_count(t, m[i].node, g), c);
            pairs++;
        }
    }
    size_t indexed = 0;
    for (uint32_t i = 0; i < t->nnodes; i++) {
        assert_true(t->nodes[i].used > 0);
        if (i > 0)
            assert_true(t->nodes[i - 1].node < t->nodes[i].node);
        indexed += t->nodes[i].used;
    }
    assert_int_equal(indexed, pairs);
}

/* Everything a caller can see, as bytes: groups in iteration order, their
 * keys, members in order, and the index's counts for nodes 0..63. */
typedef struct dump {
    uint8_t *b;
    size_t n, cap;
} dump;

static void put(dump *d, const void *p, size_t n)
{
    if (d->n + n > d->cap) {
        d->cap = (d->n + n) * 2;
        d->b = realloc(d->b, d->cap);
        assert_non_null(d->b);
    }
    memcpy(d->b + d->n, p, n);
    d->n += n;
}

static dump take(const pgm_table *t)
{
    dump d = {0};
    size_t counts[2] = {pgm_group_count(t), pgm_member_count(t)};
    put(&d, counts, sizeof counts);
    for (uint32_t node = 0; node < 64; node++) {
        size_t c = pgm_node_group_count(t, node);
        put(&d, &c, sizeof c);
    }
    for (pgm_group *g = pgm_next(t, NULL); g != NULL; g = pgm_next(t, g)) {
        size_t kl, n;
        const uint8_t *k = pgm_group_key(g, &kl);
        const rc_cpid *m = pgm_group_members(g, &n);
        put(&d, &kl, sizeof kl);
        put(&d, k, kl);
        put(&d, &n, sizeof n);
        put(&d, m, n * sizeof *m);
        for (uint32_t node = 0; node < 64; node++) {
            size_t c = pgm_node_member_count(t, node, g);
            put(&d, &c, sizeof c);
        }
    }
    return d;
}

/* For k = 0, 1, 2, ...: a fresh table from `make`, and the add with only k
 * allocations allowed, so that each allocation of the add fails once in
 * turn; each failure must leave the table as it was. Returns the table of
 * the first add that succeeds, and in *allocs how many it allocated. */
static pgm_table *add_failing_each_allocation(pgm_table *(*make)(void), const char *key,
                                              const rc_cpid *pids, size_t n, int *allocs)
{
    for (int k = 0; k < 100; k++) {
        pgm_table *t = make();
        dump before = take(t);
        t->alloc_budget = k;
        pgm_group *g = pgm_add(t, K(key), strlen(key), pids, n, 0);
        t->alloc_budget = -1;
        if (g != NULL) {
            check_index(t);
            free(before.b);
            *allocs = k;
            return t;
        }
        dump after = take(t);
        assert_int_equal(after.n, before.n);
        assert_memory_equal(after.b, before.b, before.n);
        check_index(t);
        free(after.b);
        free(before.b);
        pgm_free(t);
    }
    fail_msg("the add never succeeded");
    return NULL;
}

static pgm_table *empty_table(void)
{
    pgm_table *t = pgm_new();
    assert_non_null(t);
    return t;
}

static void test_add_into_empty_table(void **state)
{
    (void)state;
    rc_cpid v[3] = {cp(1, 1), cp(2, 1), cp(1, 2)};
    int allocs = 0;
    pgm_table *t = add_failing_each_allocation(empty_table, "a", v, 3, &allocs);
    /* group, id vector, member array, node vector, two nodes' slots,
     * uthash's table and buckets */
    assert_int_equal(allocs, 8);
    assert_int_equal(pgm_member_count(t), 3);
    assert_int_equal(pgm_node_group_count(t, 1), 1);
    assert_int_equal(pgm_node_group_count(t, 2), 1);
    pgm_free(t);
}

/* Before the add: nodes 1..8 fill the node vector, node 1 has as many
 * groups as its slots hold, 64 groups fill the id vector; so the add must
 * grow each of them, and add a node. */
static pgm_table *full_table(void)
{
    pgm_table *t = pgm_new();
    assert_non_null(t);
    for (int i = 0; i < 64; i++) {
        char key[32];
        size_t kl = key_of(key, sizeof key, i);
        rc_cpid p = cp((uint32_t)(i < 6 ? 1 : 2 + i % 7), (uint32_t)i);
        assert_non_null(pgm_add(t, K(key), kl, &p, 1, 0));
    }
    long n1 = node_find(t, 1, NULL);
    assert_true(n1 >= 0);
    assert_int_equal(t->nnodes, t->nodecap);
    assert_true(over_load(t->nodes[n1].used + 1, t->nodes[n1].mask + 1));
    assert_int_equal(t->nids, t->idcap);
    check_index(t);
    return t;
}

static void test_add_that_grows_everything(void **state)
{
    (void)state;
    rc_cpid v[4] = {cp(1, 100), cp(20, 1), cp(2, 100), cp(20, 2)};
    int allocs = 0;
    pgm_table *t = add_failing_each_allocation(full_table, "new", v, 4, &allocs);
    /* group, id vector, member array, node 1's slots, node vector, node
     * 20's slots */
    assert_int_equal(allocs, 6);
    assert_int_equal(pgm_node_group_count(t, 20), 1);
    assert_int_equal(pgm_node_group_count(t, 1), 7);
    pgm_free(t);
}

/* An existing group: its member array, and a new node's entry. */
static void test_add_to_existing_group(void **state)
{
    (void)state;
    rc_cpid w[3] = {cp(30, 1), cp(1, 101), cp(30, 2)};
    int allocs = 0;
    pgm_table *t = add_failing_each_allocation(full_table, "grp-00003", w, 3, &allocs);
    /* member array, node vector, node 30's slots (node 1 has the pair) */
    assert_int_equal(allocs, 3);
    assert_int_equal(pgm_node_group_count(t, 30), 1);
    assert_int_equal(pgm_group_count(t), 64);
    pgm_free(t);
}

static void test_shrink_that_cannot_allocate(void **state)
{
    (void)state;
    pgm_table *t = pgm_new();
    enum { G = 100 };
    for (int i = 0; i < G; i++) {
        char key[32];
        size_t kl = key_of(key, sizeof key, i);
        rc_cpid v[2] = {cp(1, (uint32_t)i), cp(2, (uint32_t)i)};
        assert_non_null(pgm_add(t, K(key), kl, v, 2, 0));
    }
    long n1 = node_find(t, 1, NULL);
    uint32_t slots = t->nodes[n1].mask + 1;
    /* node 1 leaves all but 3 groups, no allocation allowed */
    t->alloc_budget = 0;
    for (int i = 3; i < G; i++) {
        char key[32];
        size_t kl = key_of(key, sizeof key, i);
        pgm_group *g = pgm_find(t, K(key), kl);
        rc_cpid p = cp(1, (uint32_t)i);
        assert_int_equal(pgm_remove_one(t, &g, &p), 1);
        assert_non_null(g);
    }
    n1 = node_find(t, 1, NULL);
    assert_int_equal(t->nodes[n1].mask + 1, slots); /* stayed large */
    assert_int_equal(pgm_node_group_count(t, 1), 3);
    check_index(t);
    /* allowed again, the next leave shrinks it */
    t->alloc_budget = -1;
    char key[32];
    size_t kl = key_of(key, sizeof key, 2);
    pgm_group *g = pgm_find(t, K(key), kl);
    rc_cpid p = cp(1, 2);
    assert_int_equal(pgm_remove_one(t, &g, &p), 1);
    n1 = node_find(t, 1, NULL);
    assert_true(t->nodes[n1].mask + 1 < slots);
    check_index(t);
    assert_int_equal(pgm_remove_node(t, 1, NULL, NULL), 2);
    assert_int_equal(pgm_remove_node(t, 2, NULL, NULL), G);
    assert_int_equal(t->nnodes, 0);
    assert_int_equal(pgm_group_count(t), 0);
    pgm_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_into_empty_table),
        cmocka_unit_test(test_add_that_grows_everything),
        cmocka_unit_test(test_add_to_existing_group),
        cmocka_unit_test(test_shrink_that_cannot_allocate),
    };
    return cmocka_run_group_tests_name("membership_faults", tests, NULL, NULL);
}
