/* The remote-monitor table: add, find and remove by reference among many
 * (backward-shift deletion keeps every other entry reachable), the per-node
 * cap, bulk removal by target or by node, and the table shrinking back as
 * monitors go. */
#include "proc/rmon.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static rmon_entry mon(uint32_t k, uint32_t node, uint64_t target)
{
    rmon_entry e;
    memset(&e, 0, sizeof e);
    e.ref_len = 3;
    e.ref[0] = k;
    e.ref[1] = k * 2654435761u;
    e.ref[2] = 7;
    e.ref_creation = 9;
    e.ref_node = node;
    e.watcher.node = node;
    e.watcher.num = k;
    e.target = target;
    return e;
}

static void test_add_remove_many(void **st)
{
    (void)st;
    rmon_table *t = rmon_new();
    assert_non_null(t);
    const uint32_t n = 50000;
    for (uint32_t k = 0; k < n; k++) {
        rmon_entry e = mon(k, 1 + k % 3, k % 10);
        assert_int_equal(rmon_add(t, &e, UINT32_MAX), 0);
    }
    assert_int_equal(rmon_count(t), n);
    /* remove every other one; the rest must all still be found */
    for (uint32_t k = 0; k < n; k += 2) {
        rmon_entry key = mon(k, 1 + k % 3, 0), got;
        assert_int_equal(rmon_remove(t, &key, &got), 1);
        assert_int_equal(got.watcher.num, k);
        assert_int_equal(got.target, k % 10);
    }
    for (uint32_t k = 0; k < n; k++) {
        rmon_entry key = mon(k, 1 + k % 3, 0);
        assert_int_equal(rmon_remove(t, &key, NULL), k % 2);
    }
    assert_int_equal(rmon_count(t), 0);
    for (uint32_t node = 1; node <= 3; node++)
        assert_int_equal(rmon_count_node(t, node), 0);
    rmon_free(t);
}

static void test_cap_per_node(void **st)
{
    (void)st;
    rmon_table *t = rmon_new();
    for (uint32_t k = 0; k < 10; k++) {
        rmon_entry e = mon(k, 4, 1);
        assert_int_equal(rmon_add(t, &e, 5), k < 5 ? RC_OK : RC_ESYSTEM_LIMIT);
    }
    rmon_entry other = mon(100, 5, 1);
    assert_int_equal(rmon_add(t, &other, 5), 0); /* another node has its own budget */
    assert_int_equal(rmon_count_node(t, 4), 5);
    rmon_entry key = mon(0, 4, 1);
    assert_int_equal(rmon_remove(t, &key, NULL), 1);
    rmon_entry again = mon(50, 4, 1);
    assert_int_equal(rmon_add(t, &again, 5), 0); /* room again */
    /* the same reference twice replaces, never counts double */
    assert_int_equal(rmon_add(t, &again, 5), 0);
    assert_int_equal(rmon_count_node(t, 4), 5);
    rmon_free(t);
}

typedef struct bulk {
    uint64_t target;
    uint32_t node;
    size_t gone;
} bulk;

static int by_target(void *ctx, const rmon_entry *e) { return e->target == ((bulk *)ctx)->target; }
static int by_node(void *ctx, const rmon_entry *e) { return e->watcher.node == ((bulk *)ctx)->node; }
static void count_gone(void *ctx, const rmon_entry *e)
{
    (void)e;
    ((bulk *)ctx)->gone++;
}

static void test_bulk_removal(void **st)
{
    (void)st;
    rmon_table *t = rmon_new();
    for (uint32_t k = 0; k < 3000; k++) {
        rmon_entry e = mon(k, 1 + k % 3, k % 4);
        assert_int_equal(rmon_add(t, &e, UINT32_MAX), 0);
    }
    bulk b = {.target = 2};
    rmon_remove_if(t, by_target, count_gone, &b);
    assert_int_equal(b.gone, 750);
    assert_int_equal(rmon_count(t), 2250);
    bulk c = {.node = 1};
    rmon_remove_if(t, by_node, count_gone, &c);
    assert_int_equal(rmon_count_node(t, 1), 0);
    assert_int_equal(rmon_count(t), 2250 - c.gone);
    /* everything left is still found */
    for (uint32_t k = 0; k < 3000; k++) {
        rmon_entry key = mon(k, 1 + k % 3, 0);
        int expect = k % 4 != 2 && 1 + k % 3 != 1;
        assert_int_equal(rmon_remove(t, &key, NULL), expect);
    }
    assert_int_equal(rmon_count(t), 0);
    rmon_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_remove_many),
        cmocka_unit_test(test_cap_per_node),
        cmocka_unit_test(test_bulk_removal),
    };
    return cmocka_run_group_tests_name("remote monitors", tests, NULL, NULL);
}
