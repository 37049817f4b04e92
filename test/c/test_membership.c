/* pg member table: add/find/remove with multiplicity, groups freed when
 * empty, removal of one node's members across groups (reported through the
 * callback), exact counts, iteration, a 100,000-membership scale case, and
 * the per-node index: exact against a naive model under random operations,
 * and removing a node reads no other group's members (checked under
 * ASan and valgrind, where the other groups' arrays are made unreadable). */
#include "pg/membership.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#if defined(__has_include)
#if __has_include(<sanitizer/asan_interface.h>)
#include <sanitizer/asan_interface.h>
#endif
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#endif
#endif
#ifndef ASAN_POISON_MEMORY_REGION
#define ASAN_POISON_MEMORY_REGION(a, n) ((void)(a), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(a, n) ((void)(a), (void)(n))
#endif
#ifndef VALGRIND_MAKE_MEM_NOACCESS
#define VALGRIND_MAKE_MEM_NOACCESS(a, n) ((void)(a), (void)(n))
#define VALGRIND_MAKE_MEM_DEFINED(a, n) ((void)(a), (void)(n))
#endif

static rc_cpid cp(uint32_t node, uint32_t num)
{
    rc_cpid p = {.node = node, .num = num, .serial = num % 7, .creation = 3};
    return p;
}

/* Multiplicity of p in a member array. */
static size_t mult(const rc_cpid *v, size_t n, const rc_cpid *p)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += rc_cpid_eq(&v[i], p);
    return c;
}

static size_t key_of(char *buf, size_t cap, int i)
{
    int n = snprintf(buf, cap, "grp-%05d", i);
    assert_true(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

static const uint8_t *K(const char *s) { return (const uint8_t *)s; }

static void test_add_find_remove_multiplicity(void **state)
{
    (void)state;
    pgm_table *t = pgm_new();
    assert_non_null(t);
    assert_null(pgm_find(t, K("g1"), 2));
    assert_int_equal(pgm_group_count(t), 0);
    assert_int_equal(pgm_member_count(t), 0);

    rc_cpid a = cp(1, 10), b = cp(1, 11), c = cp(2, 10);
    pgm_group *g = pgm_add(t, K("g1"), 2, &a, 1, 0);
    assert_non_null(g);
    assert_ptr_equal(pgm_add(t, K("g1"), 2, &a, 1, 0), g); /* same group, a twice */
    assert_ptr_equal(pgm_find(t, K("g1"), 2), g);
    size_t klen = 0;
    const uint8_t *k = pgm_group_key(g, &klen);
    assert_int_equal(klen, 2);
    assert_memory_equal(k, "g1", 2);
    size_t n = 0;
    const rc_cpid *m = pgm_group_members(g, &n);
    assert_int_equal(n, 2);
    assert_int_equal(mult(m, n, &a), 2);
    assert_int_equal(pgm_group_count(t), 1);
    assert_int_equal(pgm_member_count(t), 2);

    /* Keys are bytes: a prefix or an extension is another group. */
    rc_cpid bc[2] = {b, c};
    pgm_group *g2 = pgm_add(t, K("g1x"), 3, bc, 2, 10);
    pgm_group *g3 = pgm_add(t, K("g"), 1, &c, 1, 0);
    assert_non_null(g2);
    assert_non_null(g3);
    assert_ptr_not_equal(g2, g);
    assert_ptr_not_equal(g3, g);
    assert_ptr_not_equal(g3, g2);
    assert_int_equal(pgm_group_count(t), 3);
    assert_int_equal(pgm_member_count(t), 5);
    m = pgm_group_members(g2, &n);
    assert_int_equal(n, 2); /* the reserve hint adds no members */
    assert_int_equal(mult(m, n, &b), 1);
    assert_int_equal(mult(m, n, &c), 1);

    /* Remove once: still a member once. */
    pgm_group *gp = g;
    assert_int_equal(pgm_remove_one(t, &gp, &a), 1);
    assert_ptr_equal(gp, g);
    m = pgm_group_members(g, &n);
    assert_int_equal(n, 1);
    assert_int_equal(mult(m, n, &a), 1);
    assert_int_equal(pgm_member_count(t), 4);
    /* A non-member (same num, other node; other pid) is not removed. */
    rc_cpid a_other_node = cp(2, 10);
    rc_cpid a_other_serial = a;
    a_other_serial.serial++;
    assert_int_equal(pgm_remove_one(t, &gp, &b), 0);
    assert_int_equal(pgm_remove_one(t, &gp, &a_other_node), 0);
    assert_int_equal(pgm_remove_one(t, &gp, &a_other_serial), 0);
    assert_ptr_equal(gp, g);
    assert_int_equal(pgm_member_count(t), 4);
    assert_int_equal(pgm_group_count(t), 3);

    /* Last member leaves: the group is freed and *g cleared. */
    assert_int_equal(pgm_remove_one(t, &gp, &a), 1);
    assert_null(gp);
    assert_null(pgm_find(t, K("g1"), 2));
    assert_int_equal(pgm_group_count(t), 2);
    assert_int_equal(pgm_member_count(t), 3);
    assert_ptr_equal(pgm_find(t, K("g1x"), 3), g2);
    assert_ptr_equal(pgm_find(t, K("g"), 1), g3);

    /* Re-created on the next join, empty of the old members. */
    g = pgm_add(t, K("g1"), 2, &b, 1, 0);
    assert_non_null(g);
    m = pgm_group_members(g, &n);
    assert_int_equal(n, 1);
    assert_true(rc_cpid_eq(&m[0], &b));
    assert_int_equal(pgm_group_count(t), 3);
    assert_int_equal(pgm_member_count(t), 4);
    pgm_free(t);
}

static void test_add_many_at_once_and_grow(void **state)
{
    (void)state;
    pgm_table *t = pgm_new();
    enum { N = 1000 };
    static rc_cpid v[N];
    for (int i = 0; i < N; i++)
        v[i] = cp(1, (uint32_t)i);
    pgm_group *g = pgm_add(t, K("big"), 3, v, N / 2, 0);
    assert_non_null(g);
    /* one at a time on top, the array grows under it */
    for (int i = N / 2; i < N; i++)
        assert_ptr_equal(pgm_add(t, K("big"), 3, &v[i], 1, 0), g);
    size_t n = 0;
    const rc_cpid *m = pgm_group_members(g, &n);
    assert_int_equal(n, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(mult(m, n, &v[i]), 1);
    assert_int_equal(pgm_member_count(t), N);
    /* remove all but one, in an order unlike the insertion order */
    for (int i = N - 1; i >= 1; i -= 2) {
        pgm_group *gp = g;
        assert_int_equal(pgm_remove_one(t, &gp, &v[i]), 1);
        assert_ptr_equal(gp, g);
    }
    for (int i = 2; i < N; i += 2) {
        pgm_group *gp = g;
        assert_int_equal(pgm_remove_one(t, &gp, &v[i]), 1);
        assert_ptr_equal(gp, g);
    }
    m = pgm_group_members(g, &n);
    assert_int_equal(n, 1);
    assert_true(rc_cpid_eq(&m[0], &v[0]));
    assert_int_equal(pgm_member_count(t), 1);
    pgm_group *gp = g;
    assert_int_equal(pgm_remove_one(t, &gp, &v[0]), 1);
    assert_null(gp);
    assert_int_equal(pgm_group_count(t), 0);
    assert_int_equal(pgm_member_count(t), 0);
    pgm_free(t);
}

/* What pgm_remove_node reported, per group. */
#define NG 60
typedef struct removed_log {
    int calls;
    int per_group_calls[NG];
    size_t per_group_pids[NG];
    rc_cpid pids[NG][16];
    uint32_t node;
    int bad_node;
    pgm_table *t;
    size_t counts_ok; /* the table still holds the group while cb runs */
} removed_log;

static int key_index(const uint8_t *k, size_t len)
{
    char buf[32];
    assert_true(len < sizeof buf);
    memcpy(buf, k, len);
    buf[len] = '\0';
    int i = -1;
    assert_int_equal(sscanf(buf, "grp-%d", &i), 1);
    return i;
}

static void on_removed(void *ctx, const pgm_group *g, const rc_cpid *pids, size_t n)
{
    removed_log *r = ctx;
    r->calls++;
    size_t klen;
    const uint8_t *k = pgm_group_key(g, &klen);
    int gi = key_index(k, klen);
    assert_true(gi >= 0 && gi < NG);
    r->per_group_calls[gi]++;
    assert_true(n > 0 && n <= 16);
    for (size_t i = 0; i < n; i++) {
        if (pids[i].node != r->node)
            r->bad_node++;
        r->pids[gi][i] = pids[i];
    }
    r->per_group_pids[gi] = n;
    if (pgm_find(r->t, k, klen) == g)
        r->counts_ok++;
}

/* Group i: (i % 4) members of node 1 (one of them twice when i % 4 == 3),
 * (i % 3) members of node 2, and one of node 0 when i is even. Groups with
 * only node-1 members exist too (i % 3 == 0, i odd, i % 4 != 0). */
static size_t fill_mixed(pgm_table *t, size_t *node1_total, size_t *groups_only_node1)
{
    size_t total = 0;
    *node1_total = 0;
    *groups_only_node1 = 0;
    for (int i = 0; i < NG; i++) {
        rc_cpid v[16];
        size_t n = 0, n1 = 0;
        /* node 2 first and node 0 in between, so node-1 members are spread */
        for (int k = 0; k < i % 3; k++)
            v[n++] = cp(2, (uint32_t)(1000 + i * 10 + k));
        for (int k = 0; k < i % 4; k++) {
            v[n++] = cp(1, (uint32_t)(i * 10 + k));
            n1++;
            if (i % 2 == 0)
                v[n++] = cp(0, (uint32_t)(5000 + i * 10 + k));
        }
        if (i % 4 == 3) {
            v[n++] = cp(1, (uint32_t)(i * 10)); /* joined twice */
            n1++;
        }
        if (n == 0)
            continue;
        char key[32];
        size_t kl = key_of(key, sizeof key, i);
        /* add in two calls to mix pgm_add paths */
        assert_non_null(pgm_add(t, K(key), kl, v, n / 2, 0));
        assert_non_null(pgm_add(t, K(key), kl, v + n / 2, n - n / 2, 0));
        total += n;
        *node1_total += n1;
        if (n1 == n)
            (*groups_only_node1)++;
    }
    return total;
}

static void test_remove_node(void **state)
{
    (void)state;
    pgm_table *t = pgm_new();
    size_t n1 = 0, only1 = 0;
    size_t total = fill_mixed(t, &n1, &only1);
    size_t groups = pgm_group_count(t);
    assert_int_equal(pgm_member_count(t), total);
    assert_true(only1 > 0 && n1 > 0);

    /* a node with no members: nothing removed, no callback */
    removed_log none = {.node = 9, .t = t};
    assert_int_equal(pgm_remove_node(t, 9, on_removed, &none), 0);
    assert_int_equal(none.calls, 0);
    assert_int_equal(pgm_member_count(t), total);

    removed_log *r = calloc(1, sizeof *r);
    r->node = 1;
    r->t = t;
    assert_int_equal(pgm_remove_node(t, 1, on_removed, r), n1);
    assert_int_equal(r->bad_node, 0);
    assert_int_equal(r->counts_ok, (size_t)r->calls);
    assert_int_equal(pgm_member_count(t), total - n1);
    assert_int_equal(pgm_group_count(t), groups - only1);

    /* The callback reported exactly each group's node-1 members, once per
     * group, with multiplicity; what is left has no node-1 member and all
     * the others. */
    int calls = 0;
    for (int i = 0; i < NG; i++) {
        size_t want1 = (size_t)(i % 4) + (i % 4 == 3);
        size_t want_rest = (size_t)(i % 3) + (i % 2 == 0 ? (size_t)(i % 4) : 0);
        assert_int_equal(r->per_group_calls[i], want1 ? 1 : 0);
        calls += r->per_group_calls[i];
        assert_int_equal(r->per_group_pids[i], want1);
        for (int k = 0; k < i % 4; k++) {
            rc_cpid p = cp(1, (uint32_t)(i * 10 + k));
            size_t want = (k == 0 && i % 4 == 3) ? 2 : 1;
            assert_int_equal(mult(r->pids[i], r->per_group_pids[i], &p), want);
        }
        char key[32];
        size_t kl = key_of(key, sizeof key, i);
        pgm_group *g = pgm_find(t, K(key), kl);
        if (want_rest == 0) {
            assert_null(g);
            continue;
        }
        assert_non_null(g);
        size_t n;
        const rc_cpid *m = pgm_group_members(g, &n);
        assert_int_equal(n, want_rest);
        for (size_t j = 0; j < n; j++)
            assert_int_not_equal(m[j].node, 1);
        for (int k = 0; k < i % 3; k++) {
            rc_cpid p = cp(2, (uint32_t)(1000 + i * 10 + k));
            assert_int_equal(mult(m, n, &p), 1);
        }
    }
    assert_int_equal(calls, r->calls);

    /* again: nothing left of node 1 */
    memset(r, 0, sizeof *r);
    r->node = 1;
    r->t = t;
    assert_int_equal(pgm_remove_node(t, 1, on_removed, r), 0);
    assert_int_equal(r->calls, 0);

    /* without a callback */
    size_t before = pgm_member_count(t);
    size_t n2 = pgm_remove_node(t, 2, NULL, NULL);
    assert_true(n2 > 0);
    assert_int_equal(pgm_member_count(t), before - n2);
    for (pgm_group *g = pgm_next(t, NULL); g != NULL; g = pgm_next(t, g)) {
        size_t n;
        const rc_cpid *m = pgm_group_members(g, &n);
        assert_true(n > 0);
        for (size_t j = 0; j < n; j++)
            assert_int_equal(m[j].node, 0);
    }
    assert_int_equal(pgm_remove_node(t, 0, NULL, NULL), before - n2);
    assert_int_equal(pgm_group_count(t), 0);
    assert_int_equal(pgm_member_count(t), 0);
    assert_null(pgm_next(t, NULL));
    free(r);
    pgm_free(t);
}

static void test_iteration_visits_each_group_once(void **state)
{
    (void)state;
    enum { G = 1000 };
    pgm_table *t = pgm_new();
    assert_null(pgm_next(t, NULL));
    static int seen[G];
    for (int i = 0; i < G; i++) {
        char key[32];
        size_t kl = key_of(key, sizeof key, i);
        rc_cpid p = cp((uint32_t)(i % 2), (uint32_t)i);
        assert_non_null(pgm_add(t, K(key), kl, &p, 1, 0));
        if (i % 3 == 0) /* a second member in some */
            assert_non_null(pgm_add(t, K(key), kl, &p, 1, 0));
    }
    size_t members = 0, visited = 0;
    memset(seen, 0, sizeof seen);
    for (pgm_group *g = pgm_next(t, NULL); g != NULL; g = pgm_next(t, g)) {
        size_t kl, n;
        const uint8_t *k = pgm_group_key(g, &kl);
        int i = key_index(k, kl);
        assert_true(i >= 0 && i < G);
        seen[i]++;
        pgm_group_members(g, &n);
        assert_int_equal(n, i % 3 == 0 ? 2 : 1);
        members += n;
        visited++;
    }
    assert_int_equal(visited, G);
    for (int i = 0; i < G; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(members, pgm_member_count(t));
    assert_int_equal(pgm_group_count(t), G);

    /* drop node 1 (odd groups: those with i % 3 == 0 had it twice) and walk again */
    size_t gone = pgm_remove_node(t, 1, NULL, NULL);
    size_t want_gone = 0;
    for (int i = 1; i < G; i += 2)
        want_gone += i % 3 == 0 ? 2 : 1;
    assert_int_equal(gone, want_gone);
    memset(seen, 0, sizeof seen);
    visited = 0;
    for (pgm_group *g = pgm_next(t, NULL); g != NULL; g = pgm_next(t, g)) {
        size_t kl;
        const uint8_t *k = pgm_group_key(g, &kl);
        int i = key_index(k, kl);
        seen[i]++;
        visited++;
    }
    assert_int_equal(visited, G / 2);
    for (int i = 0; i < G; i++)
        assert_int_equal(seen[i], i % 2 == 0 ? 1 : 0);
    assert_int_equal(pgm_group_count(t), G / 2);
    pgm_free(t);
}

/* 100,000 memberships in 10,000 groups over 10 nodes; group g has 10
 * members, member k on node (g + k) % 10, except groups g % 100 == 0 whose
 * members are all on node 5. Removing node 5 must leave exact counts. */
static void test_scale(void **state)
{
    (void)state;
    enum { GROUPS = 10000, PER = 10, NODES = 10 };
    pgm_table *t = pgm_new();
    size_t on5 = 0, groups_all5 = 0;
    for (int g = 0; g < GROUPS; g++) {
        char key[32];
        size_t kl = key_of(key, sizeof key, g);
        int all5 = g % 100 == 0;
        groups_all5 += (size_t)all5;
        for (int k = 0; k < PER; k++) {
            uint32_t node = all5 ? 5u : (uint32_t)((g + k) % NODES);
            rc_cpid p = cp(node, (uint32_t)(g * PER + k));
            on5 += node == 5;
            /* one pid per call for half the groups, a batch for the rest */
            if (g % 2 == 0)
                assert_non_null(pgm_add(t, K(key), kl, &p, 1, 0));
        }
        if (g % 2 == 1) {
            rc_cpid v[PER];
            for (int k = 0; k < PER; k++)
                v[k] = cp(all5 ? 5u : (uint32_t)((g + k) % NODES), (uint32_t)(g * PER + k));
            assert_non_null(pgm_add(t, K(key), kl, v, PER, PER));
        }
    }
    assert_int_equal(pgm_group_count(t), GROUPS);
    assert_int_equal(pgm_member_count(t), GROUPS * PER);
    assert_int_equal(on5, (GROUPS - groups_all5) + groups_all5 * PER);

    assert_int_equal(pgm_remove_node(t, 5, NULL, NULL), on5);
    assert_int_equal(pgm_group_count(t), GROUPS - groups_all5);
    assert_int_equal(pgm_member_count(t), GROUPS * PER - on5);
    size_t sum = 0, groups = 0;
    for (pgm_group *g = pgm_next(t, NULL); g != NULL; g = pgm_next(t, g)) {
        size_t n;
        const rc_cpid *m = pgm_group_members(g, &n);
        assert_int_equal(n, PER - 1);
        for (size_t j = 0; j < n; j++)
            assert_int_not_equal(m[j].node, 5);
        sum += n;
        groups++;
    }
    assert_int_equal(sum, pgm_member_count(t));
    assert_int_equal(groups, pgm_group_count(t));

    /* a member of one specific group, removed by value */
    char key[32];
    size_t kl = key_of(key, sizeof key, 4321);
    pgm_group *g = pgm_find(t, K(key), kl);
    assert_non_null(g);
    rc_cpid p = cp((uint32_t)((4321 + 3) % NODES), 4321 * PER + 3);
    assert_int_equal(pgm_remove_one(t, &g, &p), 1);
    assert_int_equal(pgm_remove_one(t, &g, &p), 0);
    assert_int_equal(pgm_member_count(t), GROUPS * PER - on5 - 1);
    pgm_free(t);
}

/* ------------------------------------------------------------ per-node index */

static uint64_t rnd(uint64_t *st) /* splitmix64 */
{
    uint64_t z = (*st += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t below(uint64_t *st, uint32_t n) { return (uint32_t)(rnd(st) % n); }

/* The naive model: each group's members as a plain array. */
enum { MG = 24, MCAP = 160 };
static const uint32_t MNODES[] = {0, 1, 2, 7, 1000, 4000000000u};
#define NMNODES (sizeof MNODES / sizeof MNODES[0])
#define ABSENT_NODE 99u

typedef struct model {
    rc_cpid m[MG][MCAP];
    size_t n[MG];
} model;

static size_t model_count(const model *md, int g, uint32_t node)
{
    size_t c = 0;
    for (size_t i = 0; i < md->n[g]; i++)
        c += md->m[g][i].node == node;
    return c;
}

/* Table and index agree with the model: the same groups with the same
 * members (as multisets), and per node exactly the groups where it has
 * members, with their counts. */
static void check_against_model(const pgm_table *t, const model *md)
{
    size_t members = 0, groups = 0;
    size_t node_groups[NMNODES] = {0};
    for (int g = 0; g < MG; g++) {
        char key[32];
        size_t kl = key_of(key, sizeof key, g);
        pgm_group *grp = pgm_find(t, K(key), kl);
        if (md->n[g] == 0) {
            assert_null(grp);
            continue;
        }
        assert_non_null(grp);
        groups++;
        members += md->n[g];
        size_t n;
        const rc_cpid *m = pgm_group_members(grp, &n);
        assert_int_equal(n, md->n[g]);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(mult(m, n, &md->m[g][i]), mult(md->m[g], n, &md->m[g][i]));
        for (size_t k = 0; k < NMNODES; k++) {
            size_t c = model_count(md, g, MNODES[k]);
            assert_int_equal(pgm_node_member_count(t, MNODES[k], grp), c);
            node_groups[k] += c > 0;
        }
        assert_int_equal(pgm_node_member_count(t, ABSENT_NODE, grp), 0);
    }
    for (size_t k = 0; k < NMNODES; k++)
        assert_int_equal(pgm_node_group_count(t, MNODES[k]), node_groups[k]);
    assert_int_equal(pgm_node_group_count(t, ABSENT_NODE), 0);
    assert_int_equal(pgm_group_count(t), groups);
    assert_int_equal(pgm_member_count(t), members);
}

/* What one pgm_remove_node reported, by group. */
typedef struct report {
    int calls[MG];
    rc_cpid pids[MG][MCAP];
    size_t n[MG];
    uint32_t node;
    int other_node;
} report;

static void on_report(void *ctx, const pgm_group *g, const rc_cpid *pids, size_t n)
{
    report *r = ctx;
    size_t klen;
    const uint8_t *k = pgm_group_key(g, &klen);
    int gi = key_index(k, klen);
    assert_true(gi >= 0 && gi < MG);
    assert_true(n > 0 && n <= MCAP);
    r->calls[gi]++;
    memcpy(r->pids[gi], pids, n * sizeof *pids);
    r->n[gi] = n;
    for (size_t i = 0; i < n; i++)
        r->other_node += pids[i].node != r->node;
}

static rc_cpid random_pid(uint64_t *st)
{
    /* few nums, so duplicates and same-num pids on other nodes are common */
    return cp(MNODES[below(st, NMNODES)], below(st, 6));
}

static void test_index_matches_model_under_random_operations(void **state)
{
    (void)state;
    model *md = calloc(1, sizeof *md);
    report *r = malloc(sizeof *r);
    assert_non_null(md);
    assert_non_null(r);
    pgm_table *t = pgm_new();
    uint64_t st = 0x5eed0001u;
    size_t adds = 0, removes = 0, hits = 0, node_removals = 0;
    for (int step = 0; step < 20000; step++) {
        int g = (int)below(&st, MG);
        char key[32];
        size_t kl = key_of(key, sizeof key, g);
        uint32_t op = below(&st, 100);
        if (op < 48) {
            /* a batch: one node (as a join or a sync) or mixed */
            rc_cpid v[8];
            size_t n = 1 + below(&st, 8);
            int one_node = below(&st, 2) == 0;
            for (size_t i = 0; i < n; i++) {
                v[i] = random_pid(&st);
                if (one_node && i > 0)
                    v[i].node = v[0].node;
            }
            if (md->n[g] + n > MCAP)
                continue;
            size_t hint = below(&st, 4) == 0 ? md->n[g] + n + below(&st, 10) : 0;
            assert_non_null(pgm_add(t, K(key), kl, v, n, hint));
            memcpy(md->m[g] + md->n[g], v, n * sizeof *v);
            md->n[g] += n;
            adds++;
        } else if (op < 92) {
            pgm_group *grp = pgm_find(t, K(key), kl);
            if (grp == NULL)
                continue;
            /* mostly a member, sometimes a pid that may not be one */
            rc_cpid p = below(&st, 4) != 0 ? md->m[g][below(&st, (uint32_t)md->n[g])]
                                           : random_pid(&st);
            size_t i = 0;
            while (i < md->n[g] && !rc_cpid_eq(&md->m[g][i], &p))
                i++;
            int was = i < md->n[g];
            assert_int_equal(pgm_remove_one(t, &grp, &p), was);
            if (was) {
                md->m[g][i] = md->m[g][--md->n[g]];
                hits++;
            }
            if (md->n[g] == 0)
                assert_null(grp);
            else
                assert_non_null(grp);
            removes++;
        } else {
            uint32_t node = op == 99 ? ABSENT_NODE : MNODES[below(&st, NMNODES)];
            memset(r, 0, sizeof *r);
            r->node = node;
            size_t want = 0;
            for (int gi = 0; gi < MG; gi++)
                want += model_count(md, gi, node);
            assert_int_equal(pgm_remove_node(t, node, on_report, r), want);
            assert_int_equal(r->other_node, 0);
            for (int gi = 0; gi < MG; gi++) {
                size_t c = model_count(md, gi, node);
                assert_int_equal(r->calls[gi], c > 0);
                assert_int_equal(r->n[gi], c);
                for (size_t i = 0; i < md->n[gi]; i++)
                    if (md->m[gi][i].node == node)
                        assert_int_equal(mult(r->pids[gi], c, &md->m[gi][i]),
                                         mult(md->m[gi], md->n[gi], &md->m[gi][i]));
                size_t keep = 0;
                for (size_t i = 0; i < md->n[gi]; i++)
                    if (md->m[gi][i].node != node)
                        md->m[gi][keep++] = md->m[gi][i];
                md->n[gi] = keep;
            }
            node_removals++;
        }
        check_against_model(t, md);
    }
    /* the sequence did exercise every path */
    assert_true(adds > 5000 && hits > 2000 && removes > hits && node_removals > 500);
    pgm_free(t);
    free(r);
    free(md);
}

static void test_index_mixed_node_add(void **state)
{
    (void)state;
    pgm_table *t = pgm_new();
    /* nodes interleaved, so one node comes back in several runs */
    rc_cpid v[7] = {cp(5, 1), cp(3, 1), cp(5, 2), cp(5, 2), cp(8, 1), cp(3, 2), cp(5, 3)};
    pgm_group *g = pgm_add(t, K("g"), 1, v, 7, 0);
    assert_non_null(g);
    assert_int_equal(pgm_node_member_count(t, 5, g), 4);
    assert_int_equal(pgm_node_member_count(t, 3, g), 2);
    assert_int_equal(pgm_node_member_count(t, 8, g), 1);
    assert_int_equal(pgm_node_member_count(t, 4, g), 0);
    assert_int_equal(pgm_node_group_count(t, 5), 1);

    /* more of the same nodes, and another group */
    assert_ptr_equal(pgm_add(t, K("g"), 1, v, 3, 0), g);
    assert_int_equal(pgm_node_member_count(t, 5, g), 6);
    assert_int_equal(pgm_node_member_count(t, 3, g), 3);
    pgm_group *h = pgm_add(t, K("h"), 1, v + 4, 3, 0);
    assert_non_null(h);
    assert_int_equal(pgm_node_group_count(t, 5), 2);
    assert_int_equal(pgm_node_group_count(t, 3), 2);
    assert_int_equal(pgm_node_group_count(t, 8), 2);
    assert_int_equal(pgm_node_member_count(t, 3, h), 1);

    /* an empty add changes nothing in the index */
    assert_ptr_equal(pgm_add(t, K("h"), 1, NULL, 0, 0), h);
    assert_int_equal(pgm_node_group_count(t, 8), 2);

    /* one node's last member in h leaves: h drops out of its groups */
    pgm_group *hp = h;
    assert_int_equal(pgm_remove_one(t, &hp, &v[5]), 1);
    assert_ptr_equal(hp, h);
    assert_int_equal(pgm_node_member_count(t, 3, h), 0);
    assert_int_equal(pgm_node_group_count(t, 3), 1);

    /* node 5 goes: g keeps nodes 3 and 8, h keeps node 8 */
    assert_int_equal(pgm_remove_node(t, 5, NULL, NULL), 7);
    assert_int_equal(pgm_node_group_count(t, 5), 0);
    assert_int_equal(pgm_node_member_count(t, 5, g), 0);
    assert_int_equal(pgm_node_member_count(t, 3, g), 3);
    assert_int_equal(pgm_node_member_count(t, 8, g), 1);
    assert_int_equal(pgm_node_member_count(t, 8, h), 1);
    assert_int_equal(pgm_member_count(t), 5);
    pgm_free(t);
}

static void test_index_follows_freed_groups(void **state)
{
    (void)state;
    pgm_table *t = pgm_new();
    rc_cpid a = cp(1, 1), b = cp(2, 1);
    /* freed by its last remove_one */
    pgm_group *g = pgm_add(t, K("g"), 1, &a, 1, 0);
    assert_int_equal(pgm_remove_one(t, &g, &a), 1);
    assert_null(g);
    assert_int_equal(pgm_node_group_count(t, 1), 0);
    /* the next group may take the freed one's place: it starts empty */
    pgm_group *h = pgm_add(t, K("h"), 1, &b, 1, 0);
    assert_int_equal(pgm_node_member_count(t, 1, h), 0);
    assert_int_equal(pgm_node_member_count(t, 2, h), 1);
    assert_int_equal(pgm_node_group_count(t, 1), 0);

    /* freed by remove_node: many groups, node 1 alone in half of them */
    enum { G = 300 };
    for (int i = 0; i < G; i++) {
        char key[32];
        size_t kl = key_of(key, sizeof key, i);
        rc_cpid p = cp(1, (uint32_t)i), q = cp(2, (uint32_t)i);
        assert_non_null(pgm_add(t, K(key), kl, &p, 1, 0));
        if (i % 2)
            assert_non_null(pgm_add(t, K(key), kl, &q, 1, 0));
    }
    assert_int_equal(pgm_node_group_count(t, 1), G);
    assert_int_equal(pgm_node_group_count(t, 2), G / 2 + 1);
    assert_int_equal(pgm_remove_node(t, 1, NULL, NULL), G);
    assert_int_equal(pgm_group_count(t), G / 2 + 1);
    assert_int_equal(pgm_node_group_count(t, 1), 0);
    assert_int_equal(pgm_node_group_count(t, 2), G / 2 + 1);

    /* groups made again, in the places of the freed ones */
    for (int i = 0; i < G; i += 2) {
        char key[32];
        size_t kl = key_of(key, sizeof key, i);
        assert_null(pgm_find(t, K(key), kl));
        rc_cpid q = cp(3, (uint32_t)i);
        pgm_group *n = pgm_add(t, K(key), kl, &q, 1, 0);
        assert_non_null(n);
        assert_int_equal(pgm_node_member_count(t, 1, n), 0);
        assert_int_equal(pgm_node_member_count(t, 2, n), 0);
        assert_int_equal(pgm_node_member_count(t, 3, n), 1);
    }
    assert_int_equal(pgm_node_group_count(t, 3), G / 2);
    /* removing every member one by one empties the index */
    for (pgm_group *n = pgm_next(t, NULL); n != NULL; n = pgm_next(t, NULL)) {
        size_t cnt;
        const rc_cpid *m = pgm_group_members(n, &cnt);
        rc_cpid p = m[0];
        assert_int_equal(pgm_remove_one(t, &n, &p), 1);
    }
    assert_int_equal(pgm_group_count(t), 0);
    assert_int_equal(pgm_node_group_count(t, 2), 0);
    assert_int_equal(pgm_node_group_count(t, 3), 0);
    pgm_free(t);
}

typedef struct counted {
    int calls;
    size_t pids;
} counted;

static void on_count(void *ctx, const pgm_group *g, const rc_cpid *pids, size_t n)
{
    (void)g;
    counted *c = ctx;
    c->calls++;
    c->pids += n;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pids[i].node, 9);
}

/* Node 9 has 4 memberships in 3 of 2,000 groups. While it is removed, the
 * member arrays of every other group are unreadable (under ASan and
 * valgrind; elsewhere only the callback count and the untouched contents
 * are checked): a walk of all groups would stop the test. */
static void test_remove_node_reads_only_its_groups(void **state)
{
    (void)state;
    enum { G = 2000, PER = 4 };
    static const int HAS9[3] = {17, 1000, 1999};
    pgm_table *t = pgm_new();
    for (int i = 0; i < G; i++) {
        char key[32];
        size_t kl = key_of(key, sizeof key, i);
        rc_cpid v[PER + 2];
        size_t n = 0;
        for (int k = 0; k < PER; k++)
            v[n++] = cp((uint32_t)(1 + (i + k) % 4), (uint32_t)(i * PER + k));
        if (i == HAS9[0] || i == HAS9[1] || i == HAS9[2]) {
            v[n++] = cp(9, (uint32_t)i);
            if (i == HAS9[1])
                v[n++] = cp(9, (uint32_t)i + 1);
        }
        assert_non_null(pgm_add(t, K(key), kl, v, n, 0));
    }
    assert_int_equal(pgm_node_group_count(t, 9), 3);

    static rc_cpid before[G][PER];
    for (pgm_group *g = pgm_next(t, NULL); g != NULL; g = pgm_next(t, g)) {
        size_t kl, n;
        const uint8_t *k = pgm_group_key(g, &kl);
        int i = key_index(k, kl);
        const rc_cpid *m = pgm_group_members(g, &n);
        if (pgm_node_member_count(t, 9, g) > 0)
            continue;
        assert_int_equal(n, PER);
        memcpy(before[i], m, sizeof before[i]);
        ASAN_POISON_MEMORY_REGION(m, n * sizeof *m);
        VALGRIND_MAKE_MEM_NOACCESS(m, n * sizeof *m);
    }
    counted c = {0};
    size_t gone = pgm_remove_node(t, 9, on_count, &c);
    for (pgm_group *g = pgm_next(t, NULL); g != NULL; g = pgm_next(t, g)) {
        size_t n;
        const rc_cpid *m = pgm_group_members(g, &n);
        ASAN_UNPOISON_MEMORY_REGION(m, n * sizeof *m);
        VALGRIND_MAKE_MEM_DEFINED(m, n * sizeof *m);
    }
    assert_int_equal(gone, 4);
    assert_int_equal(c.calls, 3);
    assert_int_equal(c.pids, 4);
    assert_int_equal(pgm_node_group_count(t, 9), 0);
    assert_int_equal(pgm_group_count(t), G);
    assert_int_equal(pgm_member_count(t), G * PER);
    /* the other groups hold what they held, in the same order */
    for (pgm_group *g = pgm_next(t, NULL); g != NULL; g = pgm_next(t, g)) {
        size_t kl, n;
        const uint8_t *k = pgm_group_key(g, &kl);
        int i = key_index(k, kl);
        const rc_cpid *m = pgm_group_members(g, &n);
        assert_int_equal(n, PER);
        if (i != HAS9[0] && i != HAS9[1] && i != HAS9[2])
            assert_memory_equal(m, before[i], sizeof before[i]);
    }
    pgm_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_find_remove_multiplicity),
        cmocka_unit_test(test_add_many_at_once_and_grow),
        cmocka_unit_test(test_remove_node),
        cmocka_unit_test(test_iteration_visits_each_group_once),
        cmocka_unit_test(test_scale),
        cmocka_unit_test(test_index_matches_model_under_random_operations),
        cmocka_unit_test(test_index_mixed_node_add),
        cmocka_unit_test(test_index_follows_freed_groups),
        cmocka_unit_test(test_remove_node_reads_only_its_groups),
    };
    return cmocka_run_group_tests_name("membership", tests, NULL, NULL);
}
