/* Log lines: bytes a peer chose (store names, subscription keys) are made
 * printable and cut to fit, never written raw; the rate limit lets a few
 * lines through per window and reports what it left out. */
#include "util/log.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static void test_text_plain_and_escaped(void **state)
{
    (void)state;
    char out[64];
    assert_string_equal(rc_log_text(out, sizeof out, (const uint8_t *)"orders-by-day", 13),
                        "orders-by-day");
    const uint8_t odd[] = {'a', 0, '\n', 0xff, '\\', 'z'};
    assert_string_equal(rc_log_text(out, sizeof out, odd, sizeof odd), "a\\x00\\x0a\\xff\\x5cz");
    assert_string_equal(rc_log_text(out, sizeof out, odd, 0), "");
}

/* Every cut leaves room for "..." and the NUL, at every capacity. */
static void test_text_cut_to_fit(void **state)
{
    (void)state;
    uint8_t in[300];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i % 3 == 0 ? 0x80 + i % 100 : 'a' + i % 26);
    for (size_t cap = 8; cap <= 128; cap++) {
        char out[128 + 16];
        memset(out, '#', sizeof out);
        rc_log_text(out, cap, in, sizeof in);
        size_t len = strlen(out);
        assert_true(len < cap);
        assert_int_equal(out[cap], '#'); /* nothing written past cap */
        assert_memory_equal(out + len - 3, "...", 3);
    }
    char exact[6];
    assert_string_equal(rc_log_text(exact, sizeof exact, (const uint8_t *)"abcde", 5), "abcde");
}

static void test_ratelimit_window(void **state)
{
    (void)state;
    rc_ratelimit r = {0};
    unsigned left = 99;
    assert_true(rc_ratelimit_allow(&r, 1000, 1000, 2, &left));
    assert_true(rc_ratelimit_allow(&r, 1001, 1000, 2, &left));
    assert_false(rc_ratelimit_allow(&r, 1002, 1000, 2, &left));
    assert_false(rc_ratelimit_allow(&r, 1003, 1000, 2, &left));
    assert_true(rc_ratelimit_allow(&r, 2500, 1000, 2, &left));
    assert_int_equal(left, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_plain_and_escaped),
        cmocka_unit_test(test_text_cut_to_fit),
        cmocka_unit_test(test_ratelimit_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
