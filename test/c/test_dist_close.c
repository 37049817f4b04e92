/* A connection's end, on a real transport: the peer closing (EOF), the
 * peer resetting, and our own close with output still queued. Each is
 * handed up once (on_down, with the cause), counted, and leaves no
 * connection behind; our own close first pushes what it can of the queued
 * output (leave messages on a stop), so the peer reads it before EOF. */
#include "dist_peer.h"

#include <poll.h>

#define PEER "closer@127.0.0.1"

typedef struct seen {
    int downs;
    char why[128];
    rc_conn *conn; /* the last connection handed up by on_frame */
} seen;

static void on_down(void *ctx, rc_conn *c, const char *why)
{
    (void)c;
    seen *s = ((dp_fixture *)ctx)->user;
    s->downs++;
    snprintf(s->why, sizeof s->why, "%s", why);
}

static void on_frame(void *ctx, rc_conn *c, const char *payload, size_t len)
{
    (void)payload;
    (void)len;
    seen *s = ((dp_fixture *)ctx)->user;
    s->conn = c;
}

static void start(dp_fixture *f, seen *s, dp_client *cl)
{
    memset(s, 0, sizeof *s);
    rc_dist_callbacks cb = {.on_down = on_down, .on_frame = on_frame};
    dp_start_cb(f, cb, s, 1u << 20, 0);
    *cl = (dp_client){.f = f, .name = PEER};
    dp_connect(f, cl, 1);
}

static void pump_until_down(dp_fixture *f, seen *s)
{
    uint64_t end = sockio_now_ms() + 10000;
    while (s->downs == 0 && sockio_now_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(s->downs, 1);
    assert_int_equal(rc_dist_connection_count(f->dist), 0);
    assert_int_equal(rc_dist_get_stats(f->dist)->conns_closed, 1);
}

static void test_peer_closes(void **state)
{
    (void)state;
    static dp_fixture f;
    static seen s;
    dp_client cl;
    start(&f, &s, &cl);
    close(cl.fd);
    pump_until_down(&f, &s);
    assert_string_equal(s.why, "peer closed");
    dp_finish(&f);
}

static void test_peer_resets(void **state)
{
    (void)state;
    static dp_fixture f;
    static seen s;
    dp_client cl;
    start(&f, &s, &cl);
    struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close sends RST */
    assert_int_equal(setsockopt(cl.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(cl.fd);
    pump_until_down(&f, &s);
    if (strstr(s.why, "reset") == NULL)
        fail_msg("cause: %s", s.why);
    assert_int_equal(rc_dist_get_stats(f.dist)->err_io, 1);
    dp_finish(&f);
}

static void test_our_close_pushes_queued_output(void **state)
{
    (void)state;
    static dp_fixture f;
    static seen s;
    dp_client cl;
    start(&f, &s, &cl);
    /* a frame from the peer, so that the test holds its connection */
    static const uint8_t hello[] = {0, 0, 0, 7, 131, 68, 0, 104, 1, 97, 1};
    assert_int_equal(dp_write_all(cl.fd, hello, sizeof hello), 0);
    uint64_t end = sockio_now_ms() + 10000;
    while (s.conn == NULL && sockio_now_ms() < end)
        uv_run(&f.loop, UV_RUN_ONCE);
    assert_non_null(s.conn);
    static const char bye[] = "\x83h\x01a\x03";
    assert_int_equal(rc_dist_send(f.dist, s.conn, bye, sizeof bye - 1, NULL, 0), 0);
    rc_dist_close(f.dist, s.conn, "going away"); /* before the loop flushed it */
    assert_int_equal(s.downs, 1);
    assert_string_equal(s.why, "going away");
    assert_int_equal(rc_dist_connection_count(f.dist), 0);
    /* the socket is closed when the loop completes the handle's close: the
     * peer sees the hang-up */
    struct pollfd hup = {.fd = cl.fd, .events = POLLRDHUP};
    end = sockio_now_ms() + 10000;
    while (poll(&hup, 1, 0) == 0 && sockio_now_ms() < end)
        uv_run(&f.loop, UV_RUN_ONCE);
    assert_true(hup.revents & POLLRDHUP);
    /* the peer gets the frame, then EOF */
    int64_t len = dp_next_frame_len(cl.fd);
    assert_true(len > 0);
    uint8_t body[64];
    assert_true((size_t)len <= sizeof body);
    assert_int_equal(dp_read_all(cl.fd, body, (size_t)len), 0);
    uint8_t more;
    assert_int_equal(read(cl.fd, &more, 1), 0);
    close(cl.fd);
    dp_finish(&f);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_closes),
        cmocka_unit_test(test_peer_resets),
        cmocka_unit_test(test_our_close_pushes_queued_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
