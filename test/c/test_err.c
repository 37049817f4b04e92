/* The one result convention and the node table under it: every code has a
 * name of its own and the Erlang error a reply carries; node names intern
 * to stable indexes, and a lookup never adds one. */
#include "util/nodetab.h"
#include "util/err.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

static const int CODES[] = {RC_OK,       RC_EFAIL,        RC_EBADARG, RC_ESYSTEM_LIMIT,
                            RC_ENOSPACE, RC_ENOMEM,       RC_ENO_EMITTERS, RC_ESTOPPED,
                            RC_EEXISTS,  RC_ENOT_FOUND,   RC_ESTORAGE, RC_ETIMEOUT, RC_EFULL};
#define NCODES (sizeof CODES / sizeof CODES[0])

static void test_codes_named_once(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCODES; i++) {
        if (i > 0)
            assert_true(CODES[i] < 0); /* every failure is negative */
        assert_string_not_equal(rc_strerror(CODES[i]), rc_strerror(12345));
        for (size_t j = 0; j < i; j++) {
            assert_int_not_equal(CODES[i], CODES[j]);
            assert_string_not_equal(rc_strerror(CODES[i]), rc_strerror(CODES[j]));
        }
    }
    assert_int_equal(RC_EFAIL, -1); /* a plain -1 is RC_EFAIL */
}

static void test_erlang_errors(void **state)
{
    (void)state;
    assert_null(rc_err_atom(RC_OK));
    assert_string_equal(rc_err_atom(RC_EBADARG), "badarg");
    assert_string_equal(rc_err_atom(RC_ESYSTEM_LIMIT), "system_limit");
    assert_string_equal(rc_err_atom(RC_ENOSPACE), "system_limit");
    assert_string_equal(rc_err_atom(RC_ENOMEM), "system_limit");
    assert_string_equal(rc_err_atom(RC_EFAIL), "badarg");
}

static void test_nodetab(void **state)
{
    (void)state;
    rc_nodetab *t = rc_nodetab_new();
    assert_non_null(t);
    assert_int_equal(rc_nodetab_find(t, "a@h", 3), RC_NODE_NONE);
    assert_int_equal(rc_nodetab_intern(t, "me@h", 4), 0);
    assert_int_equal(rc_nodetab_intern(t, "a@h", 3), 1);
    assert_int_equal(rc_nodetab_intern(t, "me@h", 4), 0);
    assert_int_equal(rc_nodetab_find(t, "a@h", 3), 1);
    assert_int_equal(rc_nodetab_find(t, "a@", 2), RC_NODE_NONE); /* by length, not prefix */
    assert_string_equal(rc_nodetab_name(t, 1), "a@h");
    assert_int_equal(rc_nodetab_name_len(t, 1), 3);
    assert_null(rc_nodetab_name(t, 2));
    assert_null(rc_nodetab_name(t, RC_NODE_NONE));
    rc_nodetab_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes_named_once),
        cmocka_unit_test(test_erlang_errors),
        cmocka_unit_test(test_nodetab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
