/* Handshake: both sides of the version-6 handshake over a socketpair, with
 * the right cookie (both succeed and learn each other's name and flags) and a
 * wrong one (both fail); the digest matches md5(cookie ++ decimal). */
#include "transport/handshake.h"
#include "transport/sockio.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

typedef struct acceptor {
    int fd;
    const char *cookie;
    hs_status status; /* what the acceptor answers */
    uint64_t flags;   /* what it offers; 0: RC_DIST_FLAGS */
    int rc;
    hs_result res;
    char err[256];
} acceptor;

static hs_status fixed_status(void *ctx, const char *peer)
{
    (void)peer;
    return ((acceptor *)ctx)->status;
}

static void *run_accept(void *arg)
{
    acceptor *a = arg;
    hs_config cfg = {.this_node = "acc@host", .creation = 11, .cookie = a->cookie,
                     .flags = a->flags ? a->flags : RC_DIST_FLAGS,
                     .status_for = fixed_status, .status_ctx = a};
    a->rc = handshake_accept(a->fd, &cfg, &a->res, sockio_now_ms() + 3000, a->err,
                             (int)sizeof a->err);
    return NULL;
}

static char last_cerr[256];
/* What the connector's has_connection answers. */
static int connector_has_one;

static int has_one(void *ctx, const char *peer)
{
    (void)ctx;
    assert_string_equal(peer, "acc@host");
    return connector_has_one;
}

static int run_pair_flags(const char *cookie_c, const char *cookie_a, uint64_t cflags,
                          hs_result *cres, acceptor *a)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    a->fd = sv[1];
    a->cookie = cookie_a;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_accept, a), 0);
    hs_config cfg = {.this_node = "con@host", .creation = 22, .cookie = cookie_c,
                     .flags = cflags, .has_connection = has_one};
    memset(cres, 0, sizeof *cres);
    last_cerr[0] = '\0';
    int rc = handshake_connect(sv[0], &cfg, "acc@host", cres, sockio_now_ms() + 3000, last_cerr,
                               (int)sizeof last_cerr);
    close(sv[0]); /* unblocks the acceptor if the connector gave up first */
    pthread_join(t, NULL);
    close(sv[1]);
    return rc;
}

static int run_pair(const char *cookie_c, const char *cookie_a, hs_result *cres, acceptor *a)
{
    return run_pair_flags(cookie_c, cookie_a, RC_DIST_FLAGS, cres, a);
}

static void test_handshake_ok(void **state)
{
    (void)state;
    hs_result cres;
    acceptor a;
    memset(&a, 0, sizeof a);
    assert_int_equal(run_pair("secret", "secret", &cres, &a), 0);
    assert_int_equal(a.rc, 0);
    assert_string_equal(cres.peer_node, "acc@host");
    assert_int_equal(cres.peer_creation, 11);
    assert_string_equal(a.res.peer_node, "con@host");
    assert_int_equal(a.res.peer_creation, 22);
    assert_true((a.res.peer_flags & DFLAG_DIST_MONITOR_NAME) != 0);
    assert_true((cres.peer_flags & DFLAG_PUBLISHED) == 0); /* hidden */
}

static void test_handshake_wrong_cookie(void **state)
{
    (void)state;
    hs_result cres;
    acceptor a;
    memset(&a, 0, sizeof a);
    assert_int_equal(run_pair("secret", "other", &cres, &a), -1);
    assert_int_equal(a.rc, -1);
    assert_non_null(strstr(a.err, "wrong cookie"));
    assert_null(strstr(a.err, "secret"));
    assert_null(strstr(a.err, "other"));
}

/* Simultaneous connects: the acceptor that keeps its own attempt refuses
 * (nok) and the connector fails; ok_simultaneous lets the connector in. */
static void test_simultaneous_statuses(void **state)
{
    (void)state;
    hs_result cres;
    acceptor a;
    memset(&a, 0, sizeof a);
    a.status = HS_STATUS_NOK;
    assert_int_equal(run_pair("secret", "secret", &cres, &a), -1);
    assert_int_equal(a.rc, -1);
    assert_non_null(strstr(a.err, "simultaneous"));
    memset(&a, 0, sizeof a);
    a.status = HS_STATUS_OK_SIMULTANEOUS;
    assert_int_equal(run_pair("secret", "secret", &cres, &a), 0);
    assert_int_equal(a.rc, 0);
    assert_string_equal(cres.peer_node, "acc@host");
}

/* OTP 26+ refuse a peer without V4_NC and UNLINK_ID: we must offer both. */
static void test_offers_what_otp26_requires(void **state)
{
    (void)state;
    assert_int_equal(RC_DIST_FLAGS & HS_MANDATORY, HS_MANDATORY);
    assert_true((RC_DIST_FLAGS & DFLAG_V4_NC) != 0);
    assert_true((RC_DIST_FLAGS & DFLAG_UNLINK_ID) != 0);
    hs_result cres;
    acceptor a;
    memset(&a, 0, sizeof a);
    assert_int_equal(run_pair("secret", "secret", &cres, &a), 0);
    assert_true((a.res.peer_flags & DFLAG_V4_NC) != 0);
    assert_int_equal(a.res.missing_flags, 0);
}

/* A peer lacking mandatory flags is refused with their names, and the
 * connector learns that the peer refused it over flags. */
static void test_peer_without_v4_nc_refused(void **state)
{
    (void)state;
    hs_result cres;
    acceptor a;
    memset(&a, 0, sizeof a);
    uint64_t old = RC_DIST_FLAGS & ~(DFLAG_V4_NC | DFLAG_UNLINK_ID);
    assert_int_equal(run_pair_flags("secret", "secret", old, &cres, &a), -1);
    assert_int_equal(a.rc, -1);
    assert_int_equal(a.res.missing_flags, DFLAG_V4_NC | DFLAG_UNLINK_ID);
    assert_non_null(strstr(a.err, "con@host"));
    assert_non_null(strstr(a.err, "[UNLINK_ID, V4_NC]"));
    assert_int_equal(cres.missing_flags, HS_REFUSED_BY_PEER);
    assert_non_null(strstr(last_cerr, "not_allowed"));

    /* and the other way round: we connect to a peer that lacks them */
    memset(&a, 0, sizeof a);
    a.flags = old;
    assert_int_equal(run_pair("secret", "secret", &cres, &a), -1);
    assert_int_equal(cres.missing_flags, DFLAG_V4_NC | DFLAG_UNLINK_ID);
    assert_non_null(strstr(last_cerr, "connection to acc@host refused"));
    assert_non_null(strstr(last_cerr, "V4_NC"));
}

/* A peer may offer MANDATORY_25_DIGEST instead of the OTP 25 flags. */
static void test_mandatory_25_digest_accepted(void **state)
{
    (void)state;
    hs_result cres;
    acceptor a;
    memset(&a, 0, sizeof a);
    uint64_t digest_only = (RC_DIST_FLAGS & ~HS_MANDATORY_25) | DFLAG_MANDATORY_25_DIGEST;
    assert_int_equal(run_pair_flags("secret", "secret", digest_only, &cres, &a), 0);
    assert_int_equal(a.rc, 0);
    assert_int_equal(a.res.peer_flags & HS_MANDATORY, HS_MANDATORY);
}

static void test_flag_names(void **state)
{
    (void)state;
    char b[64];
    handshake_flag_names(DFLAG_V4_NC | DFLAG_MAP_TAG, b, (int)sizeof b);
    assert_string_equal(b, "MAP_TAG, V4_NC");
    handshake_flag_names(1ULL << 60, b, (int)sizeof b);
    assert_string_equal(b, "0x1000000000000000");
    handshake_flag_names(HS_MANDATORY, b, 16); /* truncated, still terminated */
    assert_true(strlen(b) < 16);
}

/* The acceptor already has a connection from this peer (status alive): a
 * connector that dials only when it has none answers true, the handshake
 * goes on, and the acceptor is told to replace its old connection. */
static void test_alive_replaced(void **state)
{
    (void)state;
    hs_result cres;
    acceptor a;
    memset(&a, 0, sizeof a);
    a.status = HS_STATUS_ALIVE;
    assert_int_equal(run_pair("secret", "secret", &cres, &a), 0);
    assert_int_equal(a.rc, 0);
    assert_int_equal(a.res.replaces_existing, 1);
    assert_string_equal(cres.peer_node, "acc@host");
}

/* The same, but the connector has a connection from that peer (it was
 * accepted while this dial was under way): it answers false, both give up
 * this attempt, and the connection the peer has stays. */
static void test_alive_kept(void **state)
{
    (void)state;
    hs_result cres;
    acceptor a;
    memset(&a, 0, sizeof a);
    a.status = HS_STATUS_ALIVE;
    connector_has_one = 1;
    assert_int_equal(run_pair("secret", "secret", &cres, &a), -1);
    connector_has_one = 0;
    assert_int_equal(a.rc, -1);
    assert_int_equal(a.res.replaces_existing, 0);
    assert_non_null(strstr(a.err, "keeps its existing connection"));
    assert_non_null(strstr(last_cerr, "already connected to acc@host"));
}

static void test_digest(void **state)
{
    (void)state;
    uint8_t d[16];
    handshake_digest("secret", 4294967295u, d);
    /* computed independently: md5(b"secret" + b"4294967295") */
    static const char hex[] = "5dfd181e69aa587cc812eb333e6536b6";
    char got[33];
    for (int i = 0; i < 16; i++)
        snprintf(got + 2 * i, 3, "%02x", d[i]);
    assert_string_equal(got, hex);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_ok),
        cmocka_unit_test(test_handshake_wrong_cookie),
        cmocka_unit_test(test_simultaneous_statuses),
        cmocka_unit_test(test_offers_what_otp26_requires),
        cmocka_unit_test(test_peer_without_v4_nc_refused),
        cmocka_unit_test(test_mandatory_25_digest_accepted),
        cmocka_unit_test(test_flag_names),
        cmocka_unit_test(test_alive_replaced),
        cmocka_unit_test(test_alive_kept),
        cmocka_unit_test(test_digest),
    };
    return cmocka_run_group_tests_name("handshake", tests, NULL, NULL);
}
