/* Test helper: a real transport (rc_dist on a loopback port, no epmd) run a
 * turn at a time by the test's thread, and peers that connect to it from
 * threads of their own with the real handshake, then speak raw frames on
 * their sockets. The test's on_frame callback sees what the transport hands
 * up; the log goes to a temporary file the test can read. */
#ifndef TEST_DIST_PEER_H
#define TEST_DIST_PEER_H

#include "transport/dist.h"
#include "transport/handshake.h"
#include "transport/sockio.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#define DP_NODE "dist_test@127.0.0.1"

typedef struct dp_fixture {
    uv_loop_t loop;
    uv_timer_t wake;
    rc_nodetab *nodes;
    rc_logger lg;
    rc_dist *dist;
    uint16_t port;
    void *user;
} dp_fixture;

static inline void dp_on_wake(uv_timer_t *t) { (void)t; }

static inline uint16_t dp_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sl), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &sl), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* max_output_bytes 0 keeps the default. Every callback's context is f. */
static inline void dp_start_cb(dp_fixture *f, rc_dist_callbacks cb, void *user,
                               size_t max_message_bytes, size_t max_output_bytes)
{
    memset(f, 0, sizeof *f);
    f->user = user;
    f->port = dp_free_port();
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->nodes = rc_nodetab_new();
    assert_non_null(f->nodes);
    rc_logger_init(&f->lg, RC_LOG_WARNING);
    f->lg.out = tmpfile();
    assert_non_null(f->lg.out);
    rc_dist_config cfg = {.nodes = f->nodes, .alive = "dist_test", .node_name = DP_NODE,
                          .cookie = "cookie", .max_message_bytes = max_message_bytes,
                          .net_ticktime_s = 60, .handshake_timeout_ms = 5000, .no_epmd = 1,
                          .listen_addr = "127.0.0.1", .port_min = f->port,
                          .port_max = f->port};
    rc_backpressure_defaults(&cfg.bp);
    if (max_output_bytes != 0)
        cfg.bp.max_output_bytes = max_output_bytes;
    cb.ctx = f;
    char err[256];
    if (rc_dist_start(&f->dist, &f->loop, &f->lg, &cfg, &cb, err, (int)sizeof err) != 0)
        fail_msg("rc_dist_start: %s", err);
    /* the loop is run a turn at a time; this makes every turn end soon */
    uv_timer_init(&f->loop, &f->wake);
    uv_timer_start(&f->wake, dp_on_wake, 5, 5);
}

static inline void dp_start(dp_fixture *f, void (*on_frame)(void *, rc_conn *, const char *, size_t),
                            void *user, size_t max_message_bytes, size_t max_output_bytes)
{
    rc_dist_callbacks cb = {.on_frame = on_frame};
    dp_start_cb(f, cb, user, max_message_bytes, max_output_bytes);
}

static inline void dp_finish(dp_fixture *f)
{
    uv_close((uv_handle_t *)&f->wake, NULL);
    rc_dist_stop(f->dist);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    rc_dist_free(f->dist);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    rc_nodetab_free(f->nodes);
    fclose(f->lg.out);
}

/* Everything a test's logger wrote to out so far; the caller frees it. */
static inline char *dp_read_log(FILE *out)
{
    fflush(out);
    long n = ftell(out);
    assert_true(n >= 0);
    char *s = calloc(1, (size_t)n + 1);
    assert_non_null(s);
    rewind(out);
    assert_int_equal(fread(s, 1, (size_t)n, out), (size_t)n);
    return s;
}

static inline char *dp_log_text(dp_fixture *f) { return dp_read_log(f->lg.out); }

/* Runs the loop until every flag is set; fails with the log after
 * timeout_ms. */
static inline void dp_pump_until(dp_fixture *f, atomic_int *const *flags, int n,
                                 unsigned timeout_ms)
{
    uint64_t end = sockio_now_ms() + timeout_ms;
    for (;;) {
        int all = 1;
        for (int i = 0; i < n; i++)
            all = all && atomic_load(flags[i]);
        if (all)
            return;
        if (sockio_now_ms() > end) {
            char *log = dp_log_text(f);
            fail_msg("timed out; log:\n%s", log);
        }
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

typedef struct dp_client {
    dp_fixture *f;
    const char *name;
    int rcvbuf; /* SO_RCVBUF before connecting, if not 0 */
    int fd;
    int rc;
    char err[256];
    atomic_int finished;
} dp_client;

static inline void *dp_run_handshake(void *arg)
{
    dp_client *cl = arg;
    cl->rc = -1;
    cl->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (cl->fd >= 0 && cl->rcvbuf != 0)
        (void)setsockopt(cl->fd, SOL_SOCKET, SO_RCVBUF, &cl->rcvbuf, sizeof cl->rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(cl->f->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (cl->fd >= 0 && connect(cl->fd, (struct sockaddr *)&a, sizeof a) == 0) {
        hs_config cfg = {.this_node = cl->name, .creation = 7, .cookie = "cookie",
                         .flags = RC_DIST_FLAGS};
        hs_result res;
        cl->rc = handshake_connect(cl->fd, &cfg, DP_NODE, &res, sockio_now_ms() + 5000, cl->err,
                                   (int)sizeof cl->err);
        if (cl->rc == 0 && !(res.peer_flags & DFLAG_DIST_HDR_ATOM_CACHE))
            cl->rc = -1;
    }
    atomic_store(&cl->finished, 1);
    return NULL;
}

/* Connects n peers (each cl[i] with f, name and rcvbuf set) and waits until
 * the loop has taken every connection over. */
static inline void dp_connect(dp_fixture *f, dp_client *cl, int n)
{
    pthread_t t[8];
    atomic_int *flags[8];
    assert_true(n <= 8);
    for (int i = 0; i < n; i++) {
        cl[i].fd = -1;
        atomic_store(&cl[i].finished, 0);
        flags[i] = &cl[i].finished;
        assert_int_equal(pthread_create(&t[i], NULL, dp_run_handshake, &cl[i]), 0);
    }
    dp_pump_until(f, flags, n, 60000);
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        if (cl[i].rc != 0)
            fail_msg("handshake of %s: %s", cl[i].name, cl[i].err);
    }
    uint64_t end = sockio_now_ms() + 5000;
    while (rc_dist_connection_count(f->dist) < (size_t)n && sockio_now_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(rc_dist_connection_count(f->dist), n);
}

static inline int dp_write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static inline int dp_read_all(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* The length of the next frame that is not a tick, or -1. */
static inline int64_t dp_next_frame_len(int fd)
{
    uint8_t hdr[4];
    uint32_t len;
    do {
        if (dp_read_all(fd, hdr, 4) != 0)
            return -1;
        len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    } while (len == 0);
    return len;
}

#endif
