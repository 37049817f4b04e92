/* conn_io on plain TCP, over a non-blocking socketpair: what a read and a
 * write return when the socket has nothing / takes nothing (AGAIN, never a
 * block), bytes round-trip, the peer's close is EOF, input waiting is seen,
 * and a plain stream never asks for the socket the other way round. (The
 * TLS stream is the session of transport/tls.c, tested with WANT_READ and
 * WANT_WRITE in test_tls.c, and end to end by the TLS suite.) */
#include "transport/conn_io.h"

#include <fcntl.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(fcntl(sv[i], F_SETFL, fcntl(sv[i], F_GETFL) | O_NONBLOCK), 0);
}

static void test_plain_round_trip(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    conn_io *a = conn_io_new(sv[0], NULL), *b = conn_io_new(sv[1], NULL);
    assert_non_null(a);
    assert_non_null(b);
    char why[128] = "", buf[64];
    assert_int_equal(conn_io_read(b, buf, sizeof buf, why, (int)sizeof why), CONN_IO_AGAIN);
    assert_false(conn_io_has_input(b));
    assert_int_equal(conn_io_write(a, "hello", 5, why, (int)sizeof why), 5);
    assert_true(conn_io_has_input(b));
    assert_false(conn_io_has_pending(b)); /* in the socket, not inside the stream */
    assert_int_equal(conn_io_read(b, buf, sizeof buf, why, (int)sizeof why), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_true(conn_io_read_drained(b)); /* less than asked: the socket is empty */
    assert_int_equal(conn_io_write(a, "hello", 5, why, (int)sizeof why), 5);
    assert_int_equal(conn_io_read(b, buf, 3, why, (int)sizeof why), 3);
    assert_false(conn_io_read_drained(b)); /* all it asked for: more may wait */
    assert_int_equal(conn_io_read(b, buf, sizeof buf, why, (int)sizeof why), 2);
    assert_true(conn_io_read_drained(b));
    assert_false(conn_io_read_wants_write(b));
    assert_false(conn_io_write_wants_read(a));
    assert_null(conn_io_describe(a, buf, sizeof buf));
    conn_io_shutdown(a); /* nothing to say on plain TCP */
    conn_io_free(a);     /* closes the socket: the peer reads EOF */
    assert_int_equal(conn_io_read(b, buf, sizeof buf, why, (int)sizeof why), CONN_IO_EOF);
    conn_io_free(b);
}

static void test_plain_full_socket(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    conn_io *a = conn_io_new(sv[0], NULL);
    assert_non_null(a);
    char why[128] = "";
    size_t n = 1u << 20, sent = 0;
    char *big = calloc(1, n);
    assert_non_null(big);
    ssize_t w;
    while ((w = conn_io_write(a, big, n, why, (int)sizeof why)) > 0)
        sent += (size_t)w;
    assert_int_equal(w, CONN_IO_AGAIN); /* full: the caller waits for writability */
    assert_true(sent > 0);
    assert_false(conn_io_write_wants_read(a));
    /* the reader's end gone: the write is an error that says why */
    close(sv[1]);
    w = conn_io_write(a, big, n, why, (int)sizeof why);
    assert_int_equal(w, CONN_IO_ERROR);
    assert_non_null(strstr(why, "write: "));
    free(big);
    conn_io_free(a);
}

static void test_forget_leaves_socket(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    conn_io *a = conn_io_new(sv[0], NULL);
    assert_non_null(a);
    conn_io_forget(a);
    /* still open: the caller's to close */
    assert_int_equal(write(sv[0], "x", 1), 1);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_round_trip),
        cmocka_unit_test(test_plain_full_socket),
        cmocka_unit_test(test_forget_leaves_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
