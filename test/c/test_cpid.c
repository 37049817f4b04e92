/* Compact references: a round trip through ei's erlang_ref, and a match
 * that tells the same reference from one of another node, length,
 * creation or number. */
#include "proc/cpid.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static erlang_ref ref_of(const char *node, int len, unsigned creation, unsigned first)
{
    erlang_ref r;
    memset(&r, 0, sizeof r);
    strcpy(r.node, node);
    r.len = len;
    r.creation = creation;
    for (int i = 0; i < len; i++)
        r.n[i] = first + (unsigned)i;
    return r;
}

static void test_cref_round_trip_and_match(void **state)
{
    (void)state;
    rc_nodetab *t = rc_nodetab_new();
    assert_non_null(t);
    erlang_ref r = ref_of("c@h", 3, 77, 1000);
    rc_cref c;
    assert_int_equal(rc_cref_from_ei(t, &r, &c), 0);
    assert_true(sizeof c <= 32);
    erlang_ref back;
    assert_int_equal(rc_cref_to_ei(t, &c, &back), 0);
    assert_string_equal(back.node, "c@h");
    assert_int_equal(back.len, 3);
    assert_int_equal(back.creation, 77);
    assert_memory_equal(back.n, r.n, 3 * sizeof r.n[0]);
    assert_true(rc_cref_matches(t, &c, &r));
    erlang_ref other = ref_of("d@h", 3, 77, 1000);
    assert_false(rc_cref_matches(t, &c, &other)); /* another node, never interned */
    other = ref_of("c@h", 2, 77, 1000);
    assert_false(rc_cref_matches(t, &c, &other));
    other = ref_of("c@h", 3, 78, 1000);
    assert_false(rc_cref_matches(t, &c, &other));
    other = ref_of("c@h", 3, 77, 1001);
    assert_false(rc_cref_matches(t, &c, &other));
    erlang_ref bad = ref_of("c@h", 0, 77, 1);
    assert_int_equal(rc_cref_from_ei(t, &bad, &c), -1);
    rc_nodetab_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cref_round_trip_and_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
