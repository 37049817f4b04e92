/* ptrtab: an open-addressing set against a plain array doing the same
 * adds, finds and removes, with hashes that collide on purpose (runs that
 * wrap around the end of the table, holes in the middle of runs), growth and
 * shrinking. */
#include "util/err.h"
#include "util/ptrtab.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

typedef struct item {
    uint32_t key;
    int in;
} item;

static int eq(const void *entry, const void *key)
{
    return ((const item *)entry)->key == *(const uint32_t *)key;
}

/* Few distinct hashes, most high bits equal: long runs, wrap-arounds. */
static uint32_t weak_hash(uint32_t key) { return (key % 7u) * 0x9e3779b1u + 13u; }

static void check(const rc_ptrtab *t, const item *items, size_t n)
{
    size_t in = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t k = items[i].key;
        void *got = rc_ptrtab_find(t, weak_hash(k), eq, &k);
        assert_ptr_equal(got, items[i].in ? &items[i] : NULL);
        in += items[i].in != 0;
    }
    assert_int_equal(rc_ptrtab_count(t), in);
    size_t seen = 0;
    for (size_t i = 0; i < rc_ptrtab_slots(t); i++)
        seen += rc_ptrtab_at(t, i) != NULL;
    assert_int_equal(seen, in);
}

static void test_against_array(void **st)
{
    (void)st;
    enum { N = 600 };
    static item items[N];
    for (uint32_t i = 0; i < N; i++)
        items[i] = (item){.key = i * 2654435761u, .in = 0};
    rc_ptrtab t = {0};
    check(&t, items, N);
    srand(7);
    for (int round = 0; round < 20000; round++) {
        size_t i = (size_t)rand() % N;
        if (items[i].in) {
            assert_int_equal(rc_ptrtab_remove(&t, weak_hash(items[i].key), &items[i]), 1);
            items[i].in = 0;
        } else {
            assert_int_equal(rc_ptrtab_add(&t, weak_hash(items[i].key), &items[i]), RC_OK);
            items[i].in = 1;
        }
        if (round % 997 == 0)
            check(&t, items, N);
    }
    check(&t, items, N);
    /* everything out: the table shrinks back */
    for (size_t i = 0; i < N; i++)
        if (items[i].in) {
            assert_int_equal(rc_ptrtab_remove(&t, weak_hash(items[i].key), &items[i]), 1);
            items[i].in = 0;
        }
    check(&t, items, N);
    assert_true(rc_ptrtab_slots(&t) <= 32);
    item stranger = {.key = 5};
    assert_int_equal(rc_ptrtab_remove(&t, weak_hash(5), &stranger), 0);
    rc_ptrtab_free(&t);
    assert_int_equal(rc_ptrtab_slots(&t), 0);
}

/* Same key twice is the caller's business; two entries with one hash are
 * told apart by eq and removed by address. */
static void test_equal_hashes(void **st)
{
    (void)st;
    item a = {.key = 1}, b = {.key = 2};
    rc_ptrtab t = {0};
    assert_int_equal(rc_ptrtab_add(&t, 42, &a), RC_OK);
    assert_int_equal(rc_ptrtab_add(&t, 42, &b), RC_OK);
    uint32_t k = 2;
    assert_ptr_equal(rc_ptrtab_find(&t, 42, eq, &k), &b);
    assert_int_equal(rc_ptrtab_remove(&t, 42, &a), 1);
    assert_ptr_equal(rc_ptrtab_find(&t, 42, eq, &k), &b);
    k = 1;
    assert_null(rc_ptrtab_find(&t, 42, eq, &k));
    rc_ptrtab_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_array),
        cmocka_unit_test(test_equal_hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
