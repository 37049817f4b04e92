/* Frames waiting for a connection: kept in order per node, handed over whole,
 * bounded per node and in the number of nodes, and the oldest found for
 * expiry. */
#include "transport/waitq.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static int put(rc_waitq *q, const char *node, uint64_t now, const char *body)
{
    uint8_t hdr[2] = {0xAA, (uint8_t)strlen(body)};
    struct iovec part = {.iov_base = (void *)body, .iov_len = strlen(body)};
    return rc_waitq_put(q, node, now, hdr, sizeof hdr, &part, 1);
}

static void order_and_handover(void **state)
{
    (void)state;
    rc_waitq *q = rc_waitq_new(4, 1024);
    assert_non_null(q);
    assert_int_equal(put(q, "a@h", 1, "one"), WAITQ_FIRST);
    assert_int_equal(put(q, "b@h", 2, "x"), WAITQ_FIRST);
    assert_int_equal(put(q, "a@h", 3, "two"), WAITQ_QUEUED);
    assert_int_equal(rc_waitq_bytes(q, "a@h"), 10);
    assert_int_equal(rc_waitq_total_bytes(q), 13);
    bytebuf out;
    bytebuf_init(&out, 4096);
    assert_int_equal(rc_waitq_take(q, "a@h", &out), 2);
    assert_int_equal(out.limit, 4096); /* the receiver's limit stays */
    assert_int_equal(bytebuf_pending(&out), 10);
    assert_memory_equal(out.data + out.off, "\xAA\x03one\xAA\x03two", 10);
    assert_int_equal(rc_waitq_bytes(q, "a@h"), 0);
    assert_int_equal(rc_waitq_take(q, "a@h", &out), 0);
    assert_int_equal(rc_waitq_total_bytes(q), 3);
    /* A node that waits again starts a new queue. */
    assert_int_equal(put(q, "a@h", 4, "three"), WAITQ_FIRST);
    bytebuf_free(&out);
    rc_waitq_free(q);
}

static void bounded(void **state)
{
    (void)state;
    rc_waitq *q = rc_waitq_new(2, 12);
    assert_int_equal(put(q, "a@h", 1, "12345"), WAITQ_FIRST);
    assert_int_equal(put(q, "a@h", 1, "12345"), RC_EFULL); /* 7 + 7 > 12 */
    assert_int_equal(put(q, "a@h", 1, "123"), WAITQ_QUEUED);  /* 7 + 5 = 12 */
    assert_int_equal(put(q, "a@h", 1, ""), RC_EFULL);
    assert_int_equal(put(q, "b@h", 1, "1234567890123"), RC_EFULL); /* alone too big */
    assert_int_equal(rc_waitq_nodes(q), 1);                          /* and not kept */
    assert_int_equal(put(q, "b@h", 1, "1"), WAITQ_FIRST);
    assert_int_equal(put(q, "c@h", 1, "1"), RC_ESYSTEM_LIMIT);
    /* A full node does not take room from the others. */
    assert_int_equal(put(q, "b@h", 1, "1"), WAITQ_QUEUED);
    assert_int_equal(rc_waitq_drop(q, "a@h"), 2);
    assert_int_equal(rc_waitq_drop(q, "a@h"), 0);
    assert_int_equal(put(q, "c@h", 1, "1"), WAITQ_FIRST);
    rc_waitq_free(q); /* frees what still waits (valgrind checks) */
}

/* The oldest is named by a copy: it stays readable after that queue is
 * dropped, which is what a caller does next. */
static void oldest(void **state)
{
    (void)state;
    rc_waitq *q = rc_waitq_new(8, 1024);
    char node[RC_WAITQ_NODE_MAX];
    assert_int_equal(rc_waitq_oldest(q, 100, node), 0);
    put(q, "a@h", 10, "x");
    put(q, "b@h", 20, "x");
    put(q, "c@h", 30, "x");
    assert_int_equal(rc_waitq_oldest(q, 10, node), 0);
    assert_int_equal(rc_waitq_oldest(q, 11, node), 1);
    assert_string_equal(node, "a@h");
    put(q, "a@h", 40, "x"); /* more frames do not make a queue younger */
    assert_int_equal(rc_waitq_oldest(q, 11, node), 1);
    assert_string_equal(node, "a@h");
    assert_int_equal(rc_waitq_drop(q, node), 2);
    assert_string_equal(node, "a@h");
    assert_int_equal(rc_waitq_oldest(q, 20, node), 0);
    assert_int_equal(rc_waitq_oldest(q, 21, node), 1);
    assert_string_equal(node, "b@h");
    bytebuf out;
    bytebuf_init(&out, 0);
    rc_waitq_take(q, node, &out);
    assert_string_equal(node, "b@h");
    assert_int_equal(rc_waitq_oldest(q, 100, node), 1);
    assert_string_equal(node, "c@h");
    rc_waitq_drop(q, node);
    assert_int_equal(rc_waitq_oldest(q, 100, node), 0);
    assert_int_equal(rc_waitq_total_bytes(q), 0);
    bytebuf_free(&out);
    rc_waitq_free(q);
}

/* A name too long to be copied out whole is refused, never cut. */
static void long_names_refused(void **state)
{
    (void)state;
    rc_waitq *q = rc_waitq_new(8, 1024);
    char name[RC_WAITQ_NODE_MAX + 1];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    name[1] = '@';
    assert_int_equal(put(q, name, 1, "x"), RC_EBADARG);
    name[RC_WAITQ_NODE_MAX - 1] = '\0'; /* the longest that fits */
    assert_int_equal(put(q, name, 1, "x"), WAITQ_FIRST);
    char node[RC_WAITQ_NODE_MAX];
    assert_int_equal(rc_waitq_oldest(q, 2, node), 1);
    assert_string_equal(node, name);
    rc_waitq_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(order_and_handover),
        cmocka_unit_test(bounded),
        cmocka_unit_test(oldest),
        cmocka_unit_test(long_names_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
