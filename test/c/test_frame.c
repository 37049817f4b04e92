/* Frame parser: whole frames, ticks between frames, a stream split at every
 * byte boundary, and oversized frames rejected before their body arrives. */
#include "transport/frame.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

/* Builds: tick, frame "abc", tick, tick, frame of 300 bytes. */
static size_t build_stream(uint8_t *s)
{
    size_t n = 0;
    memset(s + n, 0, 4);
    n += 4;
    frame_put_header(s + n, 3);
    memcpy(s + n + 4, "abc", 3);
    n += 7;
    memset(s + n, 0, 8);
    n += 8;
    frame_put_header(s + n, 300);
    for (int i = 0; i < 300; i++)
        s[n + 4 + i] = (uint8_t)i;
    n += 304;
    return n;
}

/* Feeds the stream in two pieces split at `split`, the way reads arrive, and
 * checks the frames come out the same whatever the split. */
static void run_split(const uint8_t *stream, size_t total, size_t split)
{
    uint8_t buf[1024];
    size_t have = 0, off = 0, fed = 0;
    int ticks = 0, datas = 0;
    size_t sizes[4] = {0};
    while (fed < total || have - off > 0) {
        size_t chunk = fed < split ? split - fed : total - fed;
        memcpy(buf + have, stream + fed, chunk);
        have += chunk;
        fed += chunk;
        for (;;) {
            frame_view fv;
            frame_result r = frame_next(buf + off, have - off, 1000, &fv);
            if (r == FRAME_NEED_MORE)
                break;
            assert_int_not_equal(r, FRAME_TOO_BIG);
            if (r == FRAME_TICK) {
                ticks++;
            } else {
                assert_true(datas < 4);
                sizes[datas++] = fv.payload_len;
                if (fv.payload_len == 3)
                    assert_memory_equal(buf + off + fv.payload_off, "abc", 3);
                else
                    assert_int_equal(buf[off + fv.payload_off + 299], 299 & 0xff);
            }
            off += fv.consumed;
        }
        if (fed == total)
            break;
    }
    assert_int_equal(off, total);
    assert_int_equal(ticks, 3);
    assert_int_equal(datas, 2);
    assert_int_equal(sizes[0], 3);
    assert_int_equal(sizes[1], 300);
}

static void test_split_everywhere(void **state)
{
    (void)state;
    uint8_t s[1024];
    size_t n = build_stream(s);
    for (size_t split = 0; split <= n; split++)
        run_split(s, n, split);
}

static void test_too_big_rejected_on_header(void **state)
{
    (void)state;
    uint8_t h[4];
    frame_view fv;
    frame_put_header(h, 1001);
    assert_int_equal(frame_next(h, 4, 1000, &fv), FRAME_TOO_BIG);
    frame_put_header(h, 1000);
    assert_int_equal(frame_next(h, 4, 1000, &fv), FRAME_NEED_MORE);
    frame_put_header(h, 0xffffffffu);
    assert_int_equal(frame_next(h, 4, 1000, &fv), FRAME_TOO_BIG);
}

static void test_short_header(void **state)
{
    (void)state;
    uint8_t h[3] = {0, 0, 0};
    frame_view fv;
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(frame_next(h, i > 3 ? 3 : i, 1000, &fv), FRAME_NEED_MORE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_everywhere),
        cmocka_unit_test(test_too_big_rejected_on_header),
        cmocka_unit_test(test_short_header),
    };
    return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
