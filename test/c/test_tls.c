/* TLS: a session between two threads over a socketpair, as dist runs it:
 * the TLS handshake and the distribution handshake (4-byte framed) on the
 * handshake side, then non-blocking reads and writes of a payload far larger
 * than a record and than the socket buffers, so both WANT_READ and
 * WANT_WRITE are met. Refusals: a certificate from another CA, an expired
 * one, a name mismatch, plaintext on the TLS side, and configuration errors.
 * The certificates are made with the openssl command in a temporary
 * directory; without it the tests are skipped. */
#include "transport/conn_io.h"
#include "transport/handshake.h"
#include "transport/sockio.h"
#include "transport/tls.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

static char dir[64];
static int have_pki;

/* Every case needs the certificates make_pki made. */
#define NEED_PKI() do { if (!have_pki) skip(); } while (0)

static void path(char *out, size_t len, const char *file)
{
    snprintf(out, len, "%s/%s", dir, file);
}

static int sh(const char *cmd)
{
    char full[2048];
    snprintf(full, sizeof full, "cd '%s' && (%s) >/dev/null 2>&1", dir, cmd);
    return system(full);
}

static int make_pki(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    strcpy(dir, "/tmp/rc_test_tls_XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    const char *ext = "printf 'subjectAltName=DNS:node.test\\nextendedKeyUsage=serverAuth,"
                      "clientAuth\\n' > ext.cnf";
    have_pki =
        sh("command -v openssl") == 0 && sh(ext) == 0 &&
        sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
           "-subj /CN=ca") == 0 &&
        sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca2.key -out ca2.pem -days 2 "
           "-subj /CN=ca2") == 0 &&
        sh("openssl req -newkey rsa:2048 -nodes -keyout node.key -out node.csr -subj /CN=node") ==
            0 &&
        sh("openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
           "-extfile ext.cnf -out node.pem") == 0 &&
        /* explicit dates through `openssl ca`: x509 -days -1 works on 3.0 only */
        sh("printf '[ca]\\ndefault_ca = d\\n[d]\\ndatabase = index.txt\\nnew_certs_dir = .\\n"
           "serial = serial\\ndefault_md = sha256\\npolicy = p\\n[p]\\ncommonName = supplied\\n' "
           "> ca.cnf && touch index.txt && echo 01 > serial") == 0 &&
        sh("openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in node.csr "
           "-out expired.pem -startdate 20200101000000Z -enddate 20200102000000Z "
           "-extfile ext.cnf -notext") == 0 &&
        sh("openssl x509 -req -in node.csr -CA ca2.pem -CAkey ca2.key -CAcreateserial -days 2 "
           "-extfile ext.cnf -out other.pem") == 0;
    return 0;
}

static int remove_pki(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A context with `cert` (signed for node.test; key node.key), trusting
 * `ca`; server_name may be NULL. */
static rc_tls_ctx *ctx_for(const char *cert, const char *ca, const char *server_name)
{
    char c[128], k[128], a[128], err[256];
    path(c, sizeof c, cert);
    path(k, sizeof k, "node.key");
    path(a, sizeof a, ca);
    rc_tls_config cfg = {.certfile = c, .keyfile = k, .cacertfile = a, .verify_peer = 1,
                         .server_name = server_name};
    rc_tls_ctx *ctx = NULL;
    if (rc_tls_ctx_new(&ctx, &cfg, err, (int)sizeof err) != 0)
        fail_msg("context: %s", err);
    return ctx;
}

typedef struct side {
    rc_tls_ctx *ctx;
    int fd;
    int server;
    int dist; /* also run the distribution handshake */
    const char *peer_host; /* a client's: the host of the node it dials */
    rc_tls *tls;
    int rc;
    hs_result res;
    char err[256];
} side;

static int io_write(void *ctx, const void *buf, size_t n, uint64_t dl)
{
    return rc_tls_write_all(ctx, buf, n, dl);
}

static int io_read(void *ctx, void *buf, size_t n, uint64_t dl)
{
    return rc_tls_read_exact(ctx, buf, n, dl);
}

static hs_status always_ok(void *ctx, const char *peer)
{
    (void)ctx;
    (void)peer;
    return HS_STATUS_OK;
}

static void *run_side(void *arg)
{
    side *s = arg;
    uint64_t dl = sockio_now_ms() + 5000;
    s->tls = rc_tls_handshake(s->ctx, s->fd, s->server, s->peer_host, dl, s->err,
                              (int)sizeof s->err);
    if (s->tls == NULL) {
        s->rc = -1;
        shutdown(s->fd, SHUT_RDWR); /* the other side sees the end at once */
        return NULL;
    }
    s->rc = 0;
    if (s->dist) {
        hs_io io = {.len_bytes = 4, .write_all = io_write, .read_exact = io_read, .ctx = s->tls};
        hs_config cfg = {.this_node = s->server ? "acc@host" : "con@host",
                         .creation = s->server ? 1 : 2, .cookie = "c",
                         .flags = RC_DIST_FLAGS, .status_for = always_ok};
        s->rc = s->server ? handshake_accept_io(&io, &cfg, &s->res, dl, s->err,
                                                (int)sizeof s->err)
                          : handshake_connect_io(&io, &cfg, "acc@host", &s->res, dl, s->err,
                                                 (int)sizeof s->err);
    }
    return NULL;
}

/* Runs both sides; returns through *srv and *cli. */
static void run_pair(side *srv, side *cli)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    srv->fd = sv[0];
    srv->server = 1;
    cli->fd = sv[1];
    cli->server = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_side, srv), 0);
    run_side(cli);
    pthread_join(t, NULL);
}

/* The TLS handshake (and the distribution one if `dist`) between a server
 * with srv_cert trusting srv_ca and a client with node.pem trusting ca.pem
 * that expects server_name (NULL: any). */
static void tls_pair(side *srv, side *cli, const char *srv_cert, const char *srv_ca,
                     const char *server_name, int dist)
{
    *srv = (side){.ctx = ctx_for(srv_cert, srv_ca, NULL), .dist = dist};
    *cli = (side){.ctx = ctx_for("node.pem", "ca.pem", server_name), .dist = dist};
    run_pair(srv, cli);
}

/* The side gave up its handshake, and says why. */
static void assert_refused(const side *s, const char *why)
{
    assert_int_equal(s->rc, -1);
    assert_non_null(strstr(s->err, why));
}

static void close_pair(side *srv, side *cli)
{
    rc_tls_free(srv->tls);
    rc_tls_free(cli->tls);
    close(srv->fd);
    close(cli->fd);
    rc_tls_ctx_free(srv->ctx);
    rc_tls_ctx_free(cli->ctx);
}

/* Moves `n` bytes from a to b with non-blocking calls only, polling for
 * what each call says it needs, as the loop does. */
static void pump(rc_tls *a, int afd, rc_tls *b, int bfd, const uint8_t *data, size_t n)
{
    uint8_t *got = malloc(n);
    assert_non_null(got);
    size_t sent = 0, recvd = 0;
    int wants = 0, want_w = 0, want_r = 0;
    char why[192];
    while (recvd < n) {
        if (sent < n) {
            ssize_t w = rc_tls_write(a, data + sent, n - sent, why, (int)sizeof why);
            if (w > 0)
                sent += (size_t)w;
            else if (w == RC_TLS_WANT_WRITE)
                want_w++;
            else if (w != RC_TLS_WANT_READ)
                fail_msg("write: %zd %s", w, why);
        }
        ssize_t r = rc_tls_read(b, got + recvd, n - recvd, why, (int)sizeof why);
        if (r > 0)
            recvd += (size_t)r;
        else if (r == RC_TLS_WANT_READ)
            want_r++;
        else
            fail_msg("read: %zd %s", r, why);
        if (++wants > 10000000)
            fail_msg("no progress");
        struct pollfd p[2] = {{.fd = afd, .events = POLLOUT}, {.fd = bfd, .events = POLLIN}};
        (void)poll(p, 2, 10);
    }
    assert_memory_equal(got, data, n);
    assert_true(want_w > 0); /* the writer met a full socket */
    (void)want_r;
    free(got);
}

static void set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* A session made on a socketpair with the node certificate, both ends
 * non-blocking, as the loop runs them; with small socket buffers when
 * `small` is set, so that a writer meets a full socket. */
static void open_session(side *srv, side *cli, int small)
{
    tls_pair(srv, cli, "node.pem", "ca.pem", "node.test", 1);
    assert_int_equal(srv->rc, 0);
    assert_int_equal(cli->rc, 0);
    set_nonblocking(srv->fd);
    set_nonblocking(cli->fd);
    int bytes = 4096;
    for (int i = 0; small && i < 2; i++) {
        int fd = i ? srv->fd : cli->fd;
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes), 0);
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes), 0);
    }
}

static void test_session_both_ways(void **state)
{
    (void)state;
    NEED_PKI();
    side srv, cli;
    open_session(&srv, &cli, 1);
    assert_string_equal(srv.res.peer_node, "con@host");
    assert_string_equal(cli.res.peer_node, "acc@host");
    char desc[96];
    assert_non_null(strstr(rc_tls_describe(cli.tls, desc, sizeof desc), "TLSv1."));
    size_t n = 3u << 20;
    uint8_t *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 131u + (i >> 13));
    pump(cli.tls, cli.fd, srv.tls, srv.fd, data, n);
    pump(srv.tls, srv.fd, cli.tls, cli.fd, data, n);
    free(data);
    /* the peer going away is an EOF, after close_notify or without it */
    rc_tls_shutdown(cli.tls);
    char why[192];
    uint8_t b[16];
    ssize_t r;
    int waits = 0; /* bounded: a session that never ends fails, not hangs */
    while ((r = rc_tls_read(srv.tls, b, sizeof b, why, (int)sizeof why)) == RC_TLS_WANT_READ &&
           waits++ < 100)
        (void)poll(&(struct pollfd){.fd = srv.fd, .events = POLLIN}, 1, 100);
    assert_int_equal(r, RC_TLS_EOF);
    close_pair(&srv, &cli);
}

/* The same session behind the connection code's stream interface
 * (conn_io): a writer that meets a full socket gets CONN_IO_AGAIN and
 * comes back, a reader with nothing yet gets CONN_IO_AGAIN, bytes arrive
 * intact, and close_notify is CONN_IO_EOF. The "wants the socket the other
 * way" predicates are asked at every turn, as dist_update_poll does. */
static void test_session_as_conn_io(void **state)
{
    (void)state;
    NEED_PKI();
    side srv, cli;
    open_session(&srv, &cli, 1);
    conn_io *a = conn_io_new(cli.fd, cli.tls), *b = conn_io_new(srv.fd, srv.tls);
    assert_non_null(a);
    assert_non_null(b);
    char desc[96];
    assert_non_null(conn_io_describe(a, desc, sizeof desc));
    size_t n = 2u << 20, sent = 0, recvd = 0;
    uint8_t *data = malloc(n), *got = malloc(n);
    assert_non_null(data);
    assert_non_null(got);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 7u + (i >> 11));
    char why[192];
    int again_w = 0, again_r = 0, turns = 0;
    while (recvd < n) {
        if (sent < n) {
            ssize_t w = conn_io_write(a, data + sent, n - sent, why, (int)sizeof why);
            if (w > 0)
                sent += (size_t)w;
            else if (w == CONN_IO_AGAIN)
                again_w++;
            else
                fail_msg("write: %zd %s", w, why);
        }
        ssize_t r = conn_io_read(b, got + recvd, n - recvd, why, (int)sizeof why);
        if (r > 0)
            recvd += (size_t)r;
        else if (r == CONN_IO_AGAIN)
            again_r++;
        else
            fail_msg("read: %zd %s", r, why);
        if (++turns > 10000000)
            fail_msg("no progress");
        short aev = (short)(POLLOUT | (conn_io_write_wants_read(a) ? POLLIN : 0));
        short bev = (short)(POLLIN | (conn_io_read_wants_write(b) ? POLLOUT : 0));
        struct pollfd p[2] = {{.fd = cli.fd, .events = aev}, {.fd = srv.fd, .events = bev}};
        (void)poll(p, 2, 10);
    }
    assert_memory_equal(got, data, n);
    assert_true(again_w > 0);
    assert_true(again_r > 0);
    free(data);
    free(got);
    conn_io_shutdown(a); /* close_notify */
    ssize_t r;
    int waits = 0;
    uint8_t c;
    while ((r = conn_io_read(b, &c, 1, why, (int)sizeof why)) == CONN_IO_AGAIN && waits++ < 100)
        (void)poll(&(struct pollfd){.fd = srv.fd, .events = POLLIN}, 1, 100);
    assert_int_equal(r, CONN_IO_EOF);
    /* the sessions and sockets go with close_pair */
    conn_io_forget(a);
    conn_io_forget(b);
    close_pair(&srv, &cli);
}

/* A record that has arrived in part is no input waiting inside the
 * session: its rest comes through the socket, which will signal it (the
 * loop once spun on it until then, on every record split by a slow link).
 * The test takes a record's bytes off the server's socket and feeds them
 * back half at a time through the client's end of the same stream. */
static void test_partial_record_not_pending(void **state)
{
    (void)state;
    NEED_PKI();
    side srv, cli;
    open_session(&srv, &cli, 0);
    conn_io *a = conn_io_new(cli.fd, cli.tls), *b = conn_io_new(srv.fd, srv.tls);
    assert_non_null(a);
    assert_non_null(b);
    char why[192];
    assert_int_equal(conn_io_write(a, "hello", 5, why, (int)sizeof why), 5);
    uint8_t raw[512];
    ssize_t n = 0;
    for (int waits = 0; n <= 0 && waits < 100; waits++) {
        (void)poll(&(struct pollfd){.fd = srv.fd, .events = POLLIN}, 1, 100);
        n = read(srv.fd, raw, sizeof raw); /* the record, as it travels */
    }
    assert_true(n > 10);
    size_t half = (size_t)n / 2;
    assert_int_equal(write(cli.fd, raw, half), (ssize_t)half);
    (void)poll(&(struct pollfd){.fd = srv.fd, .events = POLLIN}, 1, 1000);
    uint8_t got[16];
    assert_int_equal(conn_io_read(b, got, sizeof got, why, (int)sizeof why), CONN_IO_AGAIN);
    assert_false(conn_io_has_pending(b));
    assert_int_equal(write(cli.fd, raw + half, (size_t)n - half), (ssize_t)((size_t)n - half));
    ssize_t r = CONN_IO_AGAIN;
    for (int waits = 0; r == CONN_IO_AGAIN && waits < 100; waits++) {
        (void)poll(&(struct pollfd){.fd = srv.fd, .events = POLLIN}, 1, 100);
        r = conn_io_read(b, got, sizeof got, why, (int)sizeof why);
    }
    assert_int_equal(r, 5);
    assert_memory_equal(got, "hello", 5);
    conn_io_forget(a);
    conn_io_forget(b);
    close_pair(&srv, &cli);
}

static void test_other_ca_refused(void **state)
{
    (void)state;
    NEED_PKI();
    side srv, cli;
    tls_pair(&srv, &cli, "other.pem", "ca2.pem", NULL, 0);
    assert_refused(&cli, "unknown CA");
    assert_refused(&srv, "alert");
    close_pair(&srv, &cli);
}

static void test_expired_refused(void **state)
{
    (void)state;
    NEED_PKI();
    side srv, cli;
    tls_pair(&srv, &cli, "expired.pem", "ca.pem", NULL, 0);
    assert_refused(&cli, "refused: expired");
    close_pair(&srv, &cli);
}

static void test_name_mismatch_refused(void **state)
{
    (void)state;
    NEED_PKI();
    side srv, cli;
    tls_pair(&srv, &cli, "node.pem", "ca.pem", "elsewhere.test", 0);
    assert_refused(&cli, "name mismatch");
    close_pair(&srv, &cli);
}

/* Dialling a node, the client checks the server's certificate against the
 * host of the node name (DNS or IP), as OTP's inet_tls_dist does; a
 * configured server name checks that name instead. node.pem is for
 * node.test only. */
static void dial(const char *host, const char *server_name, int ok, const char *why)
{
    side srv = {.ctx = ctx_for("node.pem", "ca.pem", NULL)};
    side cli = {.ctx = ctx_for("node.pem", "ca.pem", server_name), .peer_host = host};
    run_pair(&srv, &cli);
    if (ok)
        assert_int_equal(cli.rc, 0);
    else
        assert_refused(&cli, why);
    close_pair(&srv, &cli);
}

static void test_dialled_host_checked(void **state)
{
    (void)state;
    NEED_PKI();
    dial("node.test", NULL, 1, NULL);
    dial("other.example", NULL, 0, "name mismatch");
    dial("127.0.0.1", NULL, 0, "mismatch");
    dial("other.example", "node.test", 1, NULL);
}

/* A plain distribution handshake arriving on the TLS side. */
static void test_plaintext_refused(void **state)
{
    (void)state;
    NEED_PKI();
    rc_tls_ctx *ctx = ctx_for("node.pem", "ca.pem", NULL);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    static const uint8_t name_msg[] = {0, 8, 'N', 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(write(sv[1], name_msg, sizeof name_msg), (ssize_t)sizeof name_msg);
    char err[256];
    rc_tls *t = rc_tls_handshake(ctx, sv[0], 1, NULL, sockio_now_ms() + 2000, err, (int)sizeof err);
    assert_null(t);
    assert_non_null(strstr(err, "plaintext"));
    /* a peer that goes away before saying anything */
    close(sv[1]);
    close(sv[0]);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[1]);
    t = rc_tls_handshake(ctx, sv[0], 1, NULL, sockio_now_ms() + 2000, err, (int)sizeof err);
    assert_null(t);
    assert_non_null(strstr(err, "closed"));
    close(sv[0]);
    rc_tls_ctx_free(ctx);
}

/* A client hello that gets no answer ends at the deadline. */
static void test_silent_server_times_out(void **state)
{
    (void)state;
    NEED_PKI();
    rc_tls_ctx *ctx = ctx_for("node.pem", "ca.pem", NULL);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char err[256];
    uint64_t t0 = sockio_now_ms();
    rc_tls *t = rc_tls_handshake(ctx, sv[0], 0, NULL, t0 + 300, err, (int)sizeof err);
    assert_null(t);
    assert_true(sockio_now_ms() - t0 >= 300);
    assert_non_null(strstr(err, "no answer to our client hello"));
    close(sv[0]);
    close(sv[1]);
    rc_tls_ctx_free(ctx);
}

static void test_config_errors(void **state)
{
    (void)state;
    NEED_PKI();
    char c[128], k[128], a[128], missing[128], err[256];
    path(c, sizeof c, "node.pem");
    path(k, sizeof k, "ca.key"); /* not node.pem's key */
    path(a, sizeof a, "ca.pem");
    path(missing, sizeof missing, "missing.pem");
    rc_tls_ctx *ctx = NULL;
    rc_tls_config none = {0};
    assert_int_equal(rc_tls_ctx_new(&ctx, &none, err, (int)sizeof err), -1);
    assert_non_null(strstr(err, "--tls-cert"));
    rc_tls_config no_ca = {.certfile = c, .verify_peer = 1};
    assert_int_equal(rc_tls_ctx_new(&ctx, &no_ca, err, (int)sizeof err), -1);
    assert_non_null(strstr(err, "--tls-cacert"));
    /* Each names the file and the cause in the operator's terms, never
     * OpenSSL's "system lib" or "PEM lib". */
    char want[400];
    rc_tls_config bad_cert = {.certfile = missing, .cacertfile = a, .verify_peer = 1};
    assert_int_equal(rc_tls_ctx_new(&ctx, &bad_cert, err, (int)sizeof err), -1);
    snprintf(want, sizeof want, "TLS certificate file %s: No such file or directory", missing);
    assert_string_equal(err, want);
    rc_tls_config not_pem = {.certfile = k, .cacertfile = a, .verify_peer = 1};
    assert_int_equal(rc_tls_ctx_new(&ctx, &not_pem, err, (int)sizeof err), -1);
    snprintf(want, sizeof want, "TLS certificate file %s: holds no PEM certificate", k);
    assert_string_equal(err, want);
    rc_tls_config bad_key = {.certfile = c, .keyfile = k, .cacertfile = a, .verify_peer = 1};
    assert_int_equal(rc_tls_ctx_new(&ctx, &bad_key, err, (int)sizeof err), -1);
    snprintf(want, sizeof want, "TLS private key file %s: not the key of the certificate in %s",
             k, c);
    assert_string_equal(err, want);
    rc_tls_config no_key = {.certfile = c, .cacertfile = a, .verify_peer = 1};
    assert_int_equal(rc_tls_ctx_new(&ctx, &no_key, err, (int)sizeof err), -1);
    snprintf(want, sizeof want,
             "TLS private key file %s: holds no PEM private key (give the key with --tls-key)", c);
    assert_string_equal(err, want);
    rc_tls_config dir_cert = {.certfile = dir, .cacertfile = a, .verify_peer = 1};
    assert_int_equal(rc_tls_ctx_new(&ctx, &dir_cert, err, (int)sizeof err), -1);
    snprintf(want, sizeof want, "TLS certificate file %s: is a directory, not a PEM file", dir);
    assert_string_equal(err, want);
    rc_tls_config bad_ca = {.certfile = c, .keyfile = NULL, .cacertfile = missing,
                            .verify_peer = 1};
    path(k, sizeof k, "node.key");
    bad_ca.keyfile = k;
    assert_int_equal(rc_tls_ctx_new(&ctx, &bad_ca, err, (int)sizeof err), -1);
    snprintf(want, sizeof want, "TLS CA file %s: No such file or directory", missing);
    assert_string_equal(err, want);
    rc_tls_config key_as_ca = {.certfile = c, .keyfile = k, .cacertfile = k, .verify_peer = 1};
    assert_int_equal(rc_tls_ctx_new(&ctx, &key_as_ca, err, (int)sizeof err), -1);
    snprintf(want, sizeof want, "TLS CA file %s: holds no PEM CA certificate", k);
    assert_string_equal(err, want);
    assert_null(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_both_ways),
        cmocka_unit_test(test_session_as_conn_io),
        cmocka_unit_test(test_partial_record_not_pending),
        cmocka_unit_test(test_other_ca_refused),
        cmocka_unit_test(test_expired_refused),
        cmocka_unit_test(test_name_mismatch_refused),
        cmocka_unit_test(test_dialled_host_checked),
        cmocka_unit_test(test_plaintext_refused),
        cmocka_unit_test(test_silent_server_times_out),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, make_pki, remove_pki);
}
