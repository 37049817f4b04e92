/* The management endpoint: its address parsing, the metrics page's text,
 * and a real node (no epmd) serving /metrics and /health to a plain socket
 * client while its loop runs on another thread; also built under TSan,
 * since the server thread and the loop meet only in rc_node_call; and
 * slow clients that trickle their requests, which must not keep /health
 * from answering. */
#include "node/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

static void test_parse_addr(void **state)
{
    (void)state;
    struct sockaddr_storage sa;
    assert_int_equal(rc_http_parse_addr("127.0.0.1:9464", &sa), 0);
    assert_int_equal(sa.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&sa)->sin_port), 9464);
    assert_int_equal(rc_http_parse_addr("[::1]:0", &sa), 0);
    assert_int_equal(sa.ss_family, AF_INET6);
    assert_int_equal(rc_http_parse_addr("0.0.0.0:65535", &sa), 0);
    const char *bad[] = {"", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:65536", "127.0.0.1:-1",
                         "127.0.0.1:80x", "localhost:80", "::1:80", "[::1]80", "[::1]:",
                         "[]:80", "1.2.3.4:123456", "[::1:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (rc_http_parse_addr(bad[i], &sa) == 0)
            fail_msg("accepted '%s'", bad[i]);
    }
}

static void test_metrics_text(void **state)
{
    (void)state;
    const rc_stat st[] = {
        {.name = "connections", .value = 3, .kind = RC_STAT_GAUGE, .help = "Open connections."},
        {.name = "bytes_in", .value = 18446744073709551615ull, .kind = RC_STAT_COUNTER,
         .help = "a \\ and a\nnewline"},
        {.name = "io", .value = 7, .kind = RC_STAT_COUNTER, .error = 1, .help = "Socket errors."},
        {.name = "bad-name", .value = 1, .kind = RC_STAT_GAUGE, .help = "skipped"},
    };
    size_t len = 0;
    char *t = rc_http_metrics_text(st, 4, &len);
    assert_non_null(t);
    assert_int_equal(strlen(t), len);
    assert_string_equal(t, "# HELP reckon_cnode_connections Open connections.\n"
                           "# TYPE reckon_cnode_connections gauge\n"
                           "reckon_cnode_connections 3\n"
                           "# HELP reckon_cnode_bytes_in_total a \\\\ and a\\nnewline\n"
                           "# TYPE reckon_cnode_bytes_in_total counter\n"
                           "reckon_cnode_bytes_in_total 18446744073709551615\n"
                           "# HELP reckon_cnode_errors_io_total Socket errors.\n"
                           "# TYPE reckon_cnode_errors_io_total counter\n"
                           "reckon_cnode_errors_io_total 7\n");
    free(t);
    t = rc_http_metrics_text(st, 0, &len);
    assert_non_null(t);
    assert_int_equal(len, 0);
    free(t);
}

/* One request over a fresh connection; the whole response, or NULL. */
static char *http_get(unsigned port, const char *request)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL || connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        write(fd, request, strlen(request)) != (ssize_t)strlen(request)) {
        free(buf);
        close(fd);
        return NULL;
    }
    ssize_t r;
    /* EINTR is not the end of the answer: a client that took it for one
     * would report a server that did answer as silent. */
    while (len < cap - 1 && ((r = read(fd, buf + len, cap - 1 - len)) > 0 || (r < 0 && errno == EINTR)))
        if (r > 0)
            len += (size_t)r;
    close(fd);
    buf[len] = '\0';
    return buf;
}

static void *run_loop(void *arg)
{
    rc_node_run(arg);
    return NULL;
}

/* 1 if GET path answers with that status and body; else says what came. */
static int answers(unsigned port, const char *path, const char *status, const char *body_has)
{
    char req[128];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    char *resp = http_get(port, req);
    int ok = resp != NULL && strncmp(resp, status, strlen(status)) == 0 && strstr(resp, body_has) != NULL;
    if (!ok)
        print_message("GET %s: want %s with '%s', got:\n%s\n", path, status, body_has,
                      resp != NULL ? resp : "(no connection)");
    free(resp);
    return ok;
}

static void expect(unsigned port, const char *path, const char *status, const char *body_has)
{
    if (!answers(port, path, status, body_has))
        fail_msg("GET %s: no %s", path, status);
}

static void test_serves_a_running_node(void **state)
{
    (void)state;
    rc_node_config cfg;
    rc_node_config_init(&cfg);
    cfg.sname = "http_test";
    cfg.cookie = "test";
    cfg.no_epmd = 1;
    cfg.handle_signals = 0;
    cfg.log_level = 0;
    char err[256];
    rc_node *n = NULL;
    assert_int_equal(rc_node_create(&n, &cfg, err, sizeof err), 0);
    rc_http_config hc = {.addr = "127.0.0.1:0", .log_level = 0};
    rc_http *h = rc_http_start(n, &hc, err, sizeof err);
    assert_non_null(h);
    rc_http_config hc_seeded = {.addr = "127.0.0.1:0", .need_peer = 1, .log_level = 0};
    rc_http *hs = rc_http_start(n, &hc_seeded, err, sizeof err);
    assert_non_null(hs);
    assert_int_not_equal(rc_http_port(h), 0);
    pthread_t loop;
    assert_int_equal(pthread_create(&loop, NULL, run_loop, n), 0);

    expect(rc_http_port(h), "/metrics", "HTTP/1.1 200", "# TYPE reckon_cnode_connections gauge\n"
                                                         "reckon_cnode_connections 0\n");
    expect(rc_http_port(h), "/metrics", "HTTP/1.1 200", "\nreckon_cnode_processes ");
    expect(rc_http_port(h), "/metrics", "HTTP/1.1 200", "# TYPE reckon_cnode_bytes_in_total counter\n");
    expect(rc_http_port(h), "/health", "HTTP/1.1 200", "\r\n\r\nok\n");
    expect(rc_http_port(hs), "/health", "HTTP/1.1 503", "no connection to any node\n");
    expect(rc_http_port(h), "/nothing", "HTTP/1.1 404", "not found");
    char *resp = http_get(rc_http_port(h), "DELETE /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_non_null(resp);
    assert_non_null(strstr(resp, "HTTP/1.1 405"));
    free(resp);
    resp = http_get(rc_http_port(h), "\x01\x02 garbage \r\n\r\n");
    assert_non_null(resp); /* answered (400) or closed, never hung */
    free(resp);

    rc_node_stop(n);
    pthread_join(loop, NULL);
    /* The loop is gone: a request is refused at once, not left waiting. */
    expect(rc_http_port(h), "/health", "HTTP/1.1 503", "stopping\n");
    rc_http_stop(h);
    rc_http_stop(hs);
    rc_node_destroy(n);
}

/* A call that holds the loop until the test lets it go (10 s at most). */
typedef struct stall_ctl {
    rc_node *node;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int begun;
    int released;
} stall_ctl;

static void stall(rc_node *n, void *ctx)
{
    (void)n;
    stall_ctl *c = ctx;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&c->mu);
    c->begun = 1;
    pthread_cond_broadcast(&c->cv);
    while (!c->released && pthread_cond_timedwait(&c->cv, &c->mu, &until) == 0)
        ;
    pthread_mutex_unlock(&c->mu);
}

static void *stall_loop(void *arg)
{
    stall_ctl *c = arg;
    if (rc_node_call(c->node, stall, c) != 0)
        abort();
    return NULL;
}

/* Waits (10 s at most) until the loop is held; 1 if it is. */
static int stall_begun(stall_ctl *c)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&c->mu);
    while (!c->begun && pthread_cond_timedwait(&c->cv, &c->mu, &until) == 0)
        ;
    int begun = c->begun;
    pthread_mutex_unlock(&c->mu);
    return begun;
}

static void stall_release(stall_ctl *c)
{
    pthread_mutex_lock(&c->mu);
    c->released = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* A loop held busy: a request waits 200 ms, gets 503, and the server
 * stays free; the copy it left behind is the loop's to free (the sanitizer
 * and valgrind runs check that it is). */
static void test_stalled_loop(void **state)
{
    (void)state;
    rc_node_config cfg;
    rc_node_config_init(&cfg);
    cfg.sname = "http_stall";
    cfg.cookie = "test";
    cfg.no_epmd = 1;
    cfg.handle_signals = 0;
    cfg.log_level = 0;
    char err[256];
    rc_node *n = NULL;
    assert_int_equal(rc_node_create(&n, &cfg, err, sizeof err), 0);
    rc_http_config hc = {.addr = "127.0.0.1:0", .call_timeout_ms = 200, .log_level = 0};
    rc_http *h = rc_http_start(n, &hc, err, sizeof err);
    assert_non_null(h);
    pthread_t loop, staller;
    assert_int_equal(pthread_create(&loop, NULL, run_loop, n), 0);
    expect(rc_http_port(h), "/health", "HTTP/1.1 200", "ok\n");
    stall_ctl sc = {.node = n};
    pthread_mutex_init(&sc.mu, NULL);
    pthread_cond_init(&sc.cv, NULL);
    assert_int_equal(pthread_create(&staller, NULL, stall_loop, &sc), 0);
    assert_true(stall_begun(&sc));
    expect(rc_http_port(h), "/health", "HTTP/1.1 503", "node not answering\n");
    expect(rc_http_port(h), "/metrics", "HTTP/1.1 503", "node not answering\n");
    stall_release(&sc);
    pthread_join(staller, NULL);
    expect(rc_http_port(h), "/health", "HTTP/1.1 200", "ok\n");
    rc_node_stop(n);
    pthread_join(loop, NULL);
    rc_http_stop(h);
    rc_node_destroy(n);
    pthread_cond_destroy(&sc.cv);
    pthread_mutex_destroy(&sc.mu);
}

/* ------------------------------------------------------------ helpers */

static rc_node *start_node(const char *sname)
{
    rc_node_config cfg;
    rc_node_config_init(&cfg);
    cfg.sname = sname;
    cfg.cookie = "test";
    cfg.no_epmd = 1;
    cfg.handle_signals = 0;
    cfg.log_level = 0;
    char err[256];
    rc_node *n = NULL;
    assert_int_equal(rc_node_create(&n, &cfg, err, sizeof err), 0);
    return n;
}

static void pause_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------ the creating thread */

typedef struct late_writer {
    int fd;
} late_writer;

static void *write_late(void *arg)
{
    late_writer *w = arg;
    pause_ms(300);
    ssize_t r = write(w->fd, "x", 1);
    (void)r;
    return NULL;
}

/* A node created on this thread, run on another, stopped and destroyed:
 * this thread's own blocking read (with a timeout, as an HTTP client's) is
 * not cut short by the node's teardown. With libuv's io_uring (1.45 and
 * later) the ring's teardown interrupts the thread that made the loop,
 * which once was rc_node_create's caller, and the read failed with EINTR a
 * few milliseconds later. */
static void test_destroy_leaves_the_creator_alone(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        rc_node *n = start_node("http_creator");
        pthread_t loop;
        assert_int_equal(pthread_create(&loop, NULL, run_loop, n), 0);
        rc_node_stop(n);
        pthread_join(loop, NULL);
        rc_node_destroy(n);
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        struct timeval tv = {.tv_sec = 5};
        assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
        late_writer w = {.fd = sv[1]};
        pthread_t writer;
        assert_int_equal(pthread_create(&writer, NULL, write_late, &w), 0);
        char c = 0;
        ssize_t r = read(sv[0], &c, 1);
        int e = errno;
        pthread_join(writer, NULL);
        close(sv[0]);
        close(sv[1]);
        if (r != 1)
            fail_msg("round %d: read after rc_node_destroy: %s", round, r < 0 ? strerror(e) : "end of stream");
    }
}

/* ---------------------------------------------------------- slow clients */

/* A connection that has sent a request line and no end of headers: the
 * start of a slowloris request. */
static int open_slow(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static const char line[] = "GET /health HTTP/1.1\r\n";
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        send(fd, line, sizeof line - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof line - 1)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One more header line, as a slowloris client sends now and then; 0 while
 * the server keeps the connection, -1 once it has closed it. */
static int trickle_one(int fd)
{
    char b[64];
    ssize_t r = recv(fd, b, sizeof b, MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
        return -1;
    static const char hdr[] = "X-Slow: 1\r\n";
    return send(fd, hdr, sizeof hdr - 1, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)(sizeof hdr - 1) ? 0 : -1;
}

enum { SLOW_CONNS = 12 };

/* A slowloris attacker: SLOW_CONNS connections, each sending a header line
 * every 50 ms and never the end of its headers; one the server closes is
 * opened again at once, so the attacker holds every slot it can. */
typedef struct slowloris {
    unsigned port;
    int fds[SLOW_CONNS];
    atomic_int stop;
    atomic_int closed; /* connections the server closed */
} slowloris;

static void *slowloris_run(void *arg)
{
    slowloris *s = arg;
    while (!atomic_load(&s->stop)) {
        for (int i = 0; i < SLOW_CONNS; i++) {
            if (s->fds[i] >= 0 && trickle_one(s->fds[i]) != 0) {
                close(s->fds[i]);
                s->fds[i] = -1;
                atomic_fetch_add(&s->closed, 1);
            }
            if (s->fds[i] < 0)
                s->fds[i] = open_slow(s->port);
        }
        pause_ms(50);
    }
    for (int i = 0; i < SLOW_CONNS; i++)
        if (s->fds[i] >= 0)
            close(s->fds[i]);
    return NULL;
}

/* Three times as many trickling connections as the server holds, and an
 * attacker that reopens each one it loses: every probe of /health is still
 * answered, and the attacker's connections are cut off, not held. */
static void test_slow_clients_do_not_silence_health(void **state)
{
    (void)state;
    rc_node *n = start_node("http_slow");
    char err[256];
    rc_http_config hc = {.addr = "127.0.0.1:0", .max_connections = 4, .request_timeout_ms = 1000,
                         .log_level = 0};
    rc_http *h = rc_http_start(n, &hc, err, sizeof err);
    assert_non_null(h);
    pthread_t loop, attacker;
    assert_int_equal(pthread_create(&loop, NULL, run_loop, n), 0);
    slowloris s = {.port = rc_http_port(h)};
    atomic_init(&s.stop, 0);
    atomic_init(&s.closed, 0);
    for (int i = 0; i < SLOW_CONNS; i++) {
        s.fds[i] = open_slow(s.port);
        assert_true(s.fds[i] >= 0);
    }
    assert_int_equal(pthread_create(&attacker, NULL, slowloris_run, &s), 0);
    /* Probes for two deadlines' worth, so that the attacker's reopened
     * connections are in play too; each must be answered (http_get waits
     * 5 s at most). */
    int answered = 0;
    for (int i = 0; i < 12; i++) {
        answered += answers(rc_http_port(h), "/health", "HTTP/1.1 200", "\r\n\r\nok\n");
        pause_ms(200);
    }
    /* Every connection the attacker opened first is cut off, by the budget
     * or by its deadline (10 s at most). */
    for (int i = 0; i < 200 && atomic_load(&s.closed) < SLOW_CONNS; i++)
        pause_ms(50);
    int closed = atomic_load(&s.closed);
    atomic_store(&s.stop, 1);
    pthread_join(attacker, NULL);
    print_message("/health answered %d of 12 probes; the server closed %d slow connections\n",
                  answered, closed);
    assert_int_equal(answered, 12);
    assert_true(closed >= SLOW_CONNS);
    expect(rc_http_port(h), "/metrics", "HTTP/1.1 200", "reckon_cnode_connections 0\n");
    rc_node_stop(n);
    pthread_join(loop, NULL);
    rc_http_stop(h);
    rc_node_destroy(n);
}

/* One client alone, well within the budget, trickling a header line every
 * 50 ms: the bytes keep it from ever being idle, and the deadline still
 * closes it (waited for 10 s at most). */
static void test_request_deadline(void **state)
{
    (void)state;
    rc_node *n = start_node("http_deadline");
    char err[256];
    rc_http_config hc = {.addr = "127.0.0.1:0", .request_timeout_ms = 500, .log_level = 0};
    rc_http *h = rc_http_start(n, &hc, err, sizeof err);
    assert_non_null(h);
    pthread_t loop;
    assert_int_equal(pthread_create(&loop, NULL, run_loop, n), 0);
    int fd = open_slow(rc_http_port(h));
    assert_true(fd >= 0);
    int closed = 0;
    for (int i = 0; i < 200 && !closed; i++) {
        closed = trickle_one(fd) != 0;
        if (!closed) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            (void)poll(&p, 1, 50);
        }
    }
    close(fd);
    assert_true(closed);
    expect(rc_http_port(h), "/health", "HTTP/1.1 200", "\r\n\r\nok\n");
    rc_node_stop(n);
    pthread_join(loop, NULL);
    rc_http_stop(h);
    rc_node_destroy(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_metrics_text),
        cmocka_unit_test(test_serves_a_running_node),
        cmocka_unit_test(test_stalled_loop),
        cmocka_unit_test(test_destroy_leaves_the_creator_alone),
        cmocka_unit_test(test_slow_clients_do_not_silence_health),
        cmocka_unit_test(test_request_deadline),
    };
    return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
