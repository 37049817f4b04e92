/* Sends that wait for a connection which is never made, on a real transport
 * (a loop, no epmd registration): what waited is dropped, counted and
 * logged under the node's name, and the layer above is told that name; the
 * name must still be readable when it is logged and handed on, after the
 * waiting queue has let go of its own copy (run under ASan as well). The
 * node's "epmd" is a socket that accepts nothing, so a connect hangs until
 * its deadline. And the threads that handshakes and connects run on are
 * bounded by what is in flight, read from /proc. */
#include "dist_peer.h"
#include "util/err.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#define GHOST "ghost@127.0.0.1"

/* While set, every thread the transport asks for is refused, as under a
 * task limit (TasksMax, a container's pids limit). The definition here
 * takes the place of the C library's for the whole program; the real one
 * (or a sanitizer's) is found next in line. */
static volatile int refuse_threads;

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    static create_fn real;
    if (refuse_threads)
        return EAGAIN;
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "pthread_create");
    return real != NULL ? real(t, attr, fn, arg) : ENOSYS;
}

typedef struct fixture {
    uv_loop_t loop;
    rc_nodetab *nodes;
    rc_logger lg;
    rc_dist *dist;
    int silent_epmd;
    char unreachable[8][64]; /* names handed to on_unreachable, copied */
    int nunreachable;
} fixture;

static void on_unreachable(void *ctx, const char *node)
{
    fixture *f = ctx;
    if (f->nunreachable < 8)
        snprintf(f->unreachable[f->nunreachable++], sizeof f->unreachable[0], "%s", node);
}

/* A listener that never accepts: connects to it complete, then hear nothing. */
static int silent_listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sl), 0);
    assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &sl), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void start(fixture *f, size_t max_handshakes, size_t max_dials, uint16_t port)
{
    memset(f, 0, sizeof *f);
    uint16_t epmd = 0;
    f->silent_epmd = silent_listener(&epmd);
    char env[16];
    snprintf(env, sizeof env, "%u", epmd);
    setenv("ERL_EPMD_PORT", env, 1);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->nodes = rc_nodetab_new();
    assert_non_null(f->nodes);
    rc_logger_init(&f->lg, RC_LOG_WARNING);
    f->lg.out = tmpfile();
    assert_non_null(f->lg.out);
    rc_dist_config cfg = {.nodes = f->nodes, .alive = "waitq_test",
                          .node_name = "waitq_test@127.0.0.1", .cookie = "cookie",
                          .max_message_bytes = 1u << 20, .net_ticktime_s = 4,
                          .handshake_timeout_ms = 400, .no_epmd = 1, .listen_addr = "127.0.0.1",
                          .port_min = port, .port_max = port, .max_handshakes = max_handshakes,
                          .max_dials = max_dials};
    rc_backpressure_defaults(&cfg.bp);
    rc_dist_callbacks cb = {.ctx = f, .on_unreachable = on_unreachable};
    char err[256];
    if (rc_dist_start(&f->dist, &f->loop, &f->lg, &cfg, &cb, err, (int)sizeof err) != 0)
        fail_msg("rc_dist_start: %s", err);
}

static char *log_text(fixture *f) { return dp_read_log(f->lg.out); }

/* Stops the transport, lets the connects in flight end, frees all. */
static void finish(fixture *f)
{
    rc_dist_stop(f->dist);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    rc_dist_free(f->dist);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    rc_nodetab_free(f->nodes);
    fclose(f->lg.out);
    close(f->silent_epmd);
}

static int send_to(fixture *f, const char *node)
{
    static const char body[] = "\x83h\x01a\x02";
    struct iovec part = {.iov_base = (void *)body, .iov_len = sizeof body - 1};
    uint32_t idx = rc_nodetab_intern(f->nodes, node, strlen(node));
    assert_int_not_equal(idx, RC_NODE_NONE);
    return rc_dist_send_node(f->dist, idx, &part, 1);
}

/* Frames still waiting when the node stops are dropped under the name
 * they waited for (that name used to be read after its queue was freed). */
static void test_dropped_at_stop_named(void **state)
{
    (void)state;
    static fixture f;
    start(&f, 0, 0, 0);
    assert_int_equal(send_to(&f, GHOST), 0);
    assert_int_equal(send_to(&f, GHOST), 0);
    assert_true(rc_dist_is_connecting(f.dist, GHOST));
    rc_dist_stop(f.dist);
    assert_int_equal(rc_dist_get_stats(f.dist)->dropped_unreachable, 2);
    char *log = log_text(&f);
    if (strstr(log, "2 message(s) to " GHOST " dropped: the node is stopping") == NULL)
        fail_msg("no drop line naming the node in:\n%s", log);
    free(log);
    finish(&f);
}

/* Frames for a node whose connection is being made wait up to 8 MiB
 * (wait_max_bytes); the next one is refused: counted under
 * dropped_queue_full and logged with the node and the cause, while those
 * already waiting stay (they are dropped at the stop, counted apart). */
static void test_queue_full_counted_named(void **state)
{
    (void)state;
    static fixture f;
    start(&f, 0, 0, 0);
    size_t n = 512u << 10;
    char *body = calloc(1, n);
    assert_non_null(body);
    memcpy(body, "\x83m", 2);
    struct iovec part = {.iov_base = body, .iov_len = n};
    uint32_t idx = rc_nodetab_intern(f.nodes, GHOST, strlen(GHOST));
    int sent = 0;
    while (sent < 64 && rc_dist_send_node(f.dist, idx, &part, 1) == 0)
        sent++;
    free(body);
    const rc_dist_stats *st = rc_dist_get_stats(f.dist);
    assert_int_equal(sent, 15); /* 15 x (512 KiB + its head) fit in 8 MiB */
    assert_int_equal(st->dropped_queue_full, 1);
    assert_int_equal(st->dropped_unreachable, 0);
    char *log = log_text(&f);
    if (strstr(log, "1 message(s) to " GHOST " dropped: too much already waiting for its "
                    "connection") == NULL)
        fail_msg("no line naming the node and the cause in:\n%s", log);
    free(log);
    rc_dist_stop(f.dist);
    assert_int_equal(st->dropped_unreachable, 15);
    finish(&f);
}

/* This process's threads, from /proc. */
static int threads_now(void)
{
    FILE *fp = fopen("/proc/self/status", "r");
    assert_non_null(fp);
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, fp) != NULL)
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    fclose(fp);
    assert_true(n > 0);
    return n;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Runs the loop for ms milliseconds (or until the fixture saw `until`
 * unreachable nodes); the most threads seen meanwhile. */
static int pump(fixture *f, unsigned ms, int until)
{
    int most = threads_now();
    uint64_t end = now_ms() + ms;
    while (now_ms() < end && f->nunreachable < until) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        int t = threads_now();
        if (t > most)
            most = t;
        usleep(2000);
    }
    return most;
}

/* Connects are bounded: one runs at a time here, four more wait (and count
 * as connecting, so their frames wait too), the next is refused and its
 * frames go at the tick timer's expiry, named. Waiting connects run in the
 * order they were asked for. */
static void test_dials_bounded(void **state)
{
    (void)state;
    static fixture f;
    start(&f, 0, 1, 0);
    int base = threads_now();
    char names[6][32];
    for (int i = 0; i < 6; i++) {
        snprintf(names[i], sizeof names[i], "ghost%d@127.0.0.1", i);
        assert_int_equal(send_to(&f, names[i]), 0);
    }
    for (int i = 0; i < 5; i++)
        assert_true(rc_dist_is_connecting(f.dist, names[i]));
    assert_false(rc_dist_is_connecting(f.dist, names[5]));
    assert_int_equal(rc_dist_get_stats(f.dist)->dials_refused, 1);
    assert_int_equal(rc_dist_connect(f.dist, names[5]), RC_EFULL);
    assert_int_equal(threads_now(), base + 1);
    /* five connects of 400 ms each, one after the other, then the tick */
    int most = pump(&f, 6000, 6);
    assert_int_equal(f.nunreachable, 6);
    for (int i = 0; i < 6; i++)
        assert_string_equal(f.unreachable[i], names[i]);
    if (most > base + 1)
        fail_msg("%d connect threads at once for a cap of 1", most - base);
    assert_int_equal(rc_dist_get_stats(f.dist)->dropped_unreachable, 6);
    finish(&f);
}

/* A free loopback port, for the listener of the node under test. */
static uint16_t free_port(void)
{
    uint16_t port = 0;
    int fd = silent_listener(&port);
    close(fd);
    return port;
}

/* Fifty strangers that never say a word, against a cap of four: never more
 * than four handshake threads (those cut off count until they have ended;
 * they used to stay in the list and each newcomer got a thread anyway:
 * fifty threads), the oldest cut off, and the threads all gone once the
 * last handshakes reach their deadline. */
static void test_inbound_threads_bounded(void **state)
{
    (void)state;
    static fixture f;
    uint16_t port = free_port();
    start(&f, 4, 0, port);
    int base = threads_now();
    int socks[50];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons(port)};
    int most = base;
    for (int i = 0; i < 50; i++) {
        socks[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(socks[i] >= 0);
        assert_int_equal(connect(socks[i], (struct sockaddr *)&a, sizeof a), 0);
        if (i % 10 == 9) {
            int t = pump(&f, 20, 1);
            if (t > most)
                most = t;
        }
    }
    int t = pump(&f, 300, 1);
    if (t > most)
        most = t;
    if (most > base + 4)
        fail_msg("%d handshake threads at once for a cap of 4", most - base);
    assert_int_equal(rc_dist_get_stats(f.dist)->handshakes_evicted, 46);
    /* the four newest are being handshaken: each ends at its deadline with
     * nothing said, counted as a failed handshake */
    pump(&f, 1000, 1);
    assert_true(rc_dist_get_stats(f.dist)->err_handshake >= 4);
    assert_int_equal(threads_now(), base);
    for (int i = 0; i < 50; i++)
        close(socks[i]);
    finish(&f);
}

static int count_lines(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

/* No thread to be had: each connection fails on its own (the stranger sees
 * its socket closed, a connect is reported failed and what waited for it
 * dropped, named), the loop goes on, the line about it is rate-limited, and
 * once threads can be had again handshakes run as before. */
static void test_no_thread_fails_softly(void **state)
{
    (void)state;
    static fixture f;
    uint16_t port = free_port();
    start(&f, 4, 0, port);
    refuse_threads = 1;
    assert_int_equal(send_to(&f, GHOST), 0);
    int socks[40];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons(port)};
    for (int i = 0; i < 40; i++) {
        socks[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(socks[i] >= 0);
        assert_int_equal(connect(socks[i], (struct sockaddr *)&a, sizeof a), 0);
    }
    pump(&f, 500, 1);
    pump(&f, 200, 2);
    assert_int_equal(f.nunreachable, 1);
    assert_string_equal(f.unreachable[0], GHOST);
    const rc_dist_stats *st = rc_dist_get_stats(f.dist);
    assert_int_equal(st->connect_failed, 1);
    assert_int_equal(st->dropped_unreachable, 1);
    /* each failed or was cut off (one failing may be cut off too), the
     * four newest at least got their turn */
    assert_true(st->err_handshake + st->handshakes_evicted >= 40);
    assert_true(st->err_handshake >= 4);
    assert_true(st->handshakes_evicted >= 36);
    assert_true(st->threads_unavailable >= 5);
    char *log = log_text(&f);
    int lines = count_lines(log, "] cannot start a handshake thread");
    free(log);
    if (lines > 5)
        fail_msg("%d lines about refused threads", lines);
    /* threads again: a newcomer's handshake runs (and ends at its deadline) */
    refuse_threads = 0;
    uint64_t failed = st->err_handshake;
    int late = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(late, (struct sockaddr *)&a, sizeof a), 0);
    pump(&f, 1000, 99);
    assert_int_equal(st->err_handshake, failed + 1);
    close(late);
    for (int i = 0; i < 40; i++)
        close(socks[i]);
    finish(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dropped_at_stop_named),
        cmocka_unit_test(test_queue_full_counted_named),
        cmocka_unit_test(test_dials_bounded),
        cmocka_unit_test(test_inbound_threads_bounded),
        cmocka_unit_test(test_no_thread_fails_softly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
