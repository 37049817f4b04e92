/* pg member table: add/find/remove with multiplicity, groups freed when
 * empty, removal of one node's members across groups (reported through the
 * callback), exact counts, iteration, and a 100,000-membership scale case. */
#include "pg/membership.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_find_remove_multiplicity),
        cmocka_unit_test(test_add_many_at_once_and_grow),
        cmocka_unit_test(test_remove_node),
        cmocka_unit_test(test_iteration_visits_each_group_once),
        cmocka_unit_test(test_scale),
    };
    return cmocka_run_group_tests_name("membership", tests, NULL, NULL);
}
