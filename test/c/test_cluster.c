/* cluster: discovery as a hostile peer would drive it. A real rc_cluster on
 * a real process layer whose transport is a recorder; the cluster's dials
 * go to a fake that counts them and fails them at once (as connects to
 * names nobody runs do); time is the test's, through rc_cluster_tick. The
 * nodes() answers are fed as distribution frames on a chosen connection. */
#include "rec_frame.h"
#include "cluster/cluster.h"
#include "codec/ctrl.h"
#include "proc/procs.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define ME "c@h"
#define LIAR "liar@h"
#define OTHER "other@h"

typedef struct fx {
    rc_nodetab *nodes;
    rc_procs *ps;
    rc_cluster *cl;
    /* the last nodes() question sent to LIAR */
    char *asked;
    size_t asked_len;
    int questions;
    /* dials made by the cluster */
    int dials;
    int ghost_dials;     /* of GHOST */
    int member_dials;    /* of MEMBER */
    char failing[64][64]; /* dialled since the test last failed them */
    int nfailing;
    int fail_dials;      /* fail what is dialled */
    int member_up;       /* MEMBER is connected */
    rc_logger lg;        /* the cluster's lines, at warning level */
    FILE *logf;
    char *log;
    size_t loglen;
} fx;

#define GHOST "ghost@h"
#define MEMBER "member@h"

static int rec_send(void *ctx, uint32_t to, const struct iovec *parts, int nparts)
{
    fx *f = ctx;
    const char *node = rc_nodetab_name(f->nodes, to);
    assert_non_null(node);
    if (strcmp(node, LIAR) == 0) {
        free(f->asked);
        f->asked = rec_frame_join(parts, nparts, &f->asked_len);
        assert_non_null(f->asked);
        f->questions++;
    }
    return 0;
}

static void fake_connect(void *ctx, const char *node)
{
    fx *f = ctx;
    f->dials++;
    f->ghost_dials += strcmp(node, GHOST) == 0;
    f->member_dials += strcmp(node, MEMBER) == 0;
    if (!f->fail_dials && strcmp(node, MEMBER) == 0)
        f->member_up = 1;
    if (f->fail_dials && f->nfailing < 64)
        snprintf(f->failing[f->nfailing++], sizeof f->failing[0], "%s", node);
}

static int fake_busy(void *ctx, const char *node)
{
    fx *f = ctx;
    for (int i = 0; i < f->nfailing; i++)
        if (strcmp(node, f->failing[i]) == 0)
            return 1; /* still connecting */
    return strcmp(node, LIAR) == 0 || strcmp(node, OTHER) == 0 ||
           (f->member_up && strcmp(node, MEMBER) == 0);
}

static void fake_foreach(void *ctx, void (*fn)(const char *node, void *arg), void *arg)
{
    (void)ctx;
    fn(LIAR, arg);
}

/* Connects fail at once, as to names no one runs. */
static void fail_pending(fx *f)
{
    for (int i = 0; i < f->nfailing; i++)
        rc_cluster_on_connect_failed(f->cl, f->failing[i], "connect: Connection refused");
    f->nfailing = 0;
}

static void tick(fx *f, uint64_t now)
{
    rc_cluster_tick(f->cl, now);
    fail_pending(f);
}

static fx *make(const rc_cluster_config *cfg)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->nodes = rc_nodetab_new();
    assert_non_null(f->nodes);
    rc_procs_transport tr = {.ctx = f, .sendv = rec_send};
    f->ps = rc_procs_new(NULL, &tr, f->nodes, ME, 9);
    assert_non_null(f->ps);
    rc_cluster_ops ops = {.ctx = f, .connect = fake_connect, .busy = fake_busy,
                          .foreach_connected = fake_foreach};
    f->logf = open_memstream(&f->log, &f->loglen);
    assert_non_null(f->logf);
    rc_logger_init(&f->lg, RC_LOG_WARNING);
    f->lg.out = f->logf;
    f->cl = rc_cluster_new(NULL, &f->lg, &ops, f->ps, cfg);
    assert_non_null(f->cl);
    f->fail_dials = 1;
    return f;
}

static int teardown(void **state)
{
    fx *f = *state;
    rc_cluster_stop(f->cl);
    rc_cluster_free(f->cl);
    rc_procs_free(f->ps);
    rc_nodetab_free(f->nodes);
    free(f->asked);
    fclose(f->logf);
    free(f->log);
    free(f);
    return 0;
}

static const rc_cluster_config default_cfg = {.rediscover_ms = 5000, .backoff_min_ms = 100,
                                              .backoff_max_ms = 10000, .forget_after = 8};

static int setup(void **state)
{
    *state = make(&default_cfg);
    return 0;
}

/* The cluster process's pid and the reference of the last question. */
static void question(fx *f, erlang_pid *cluster_pid, erlang_ref *ref)
{
    assert_non_null(f->asked);
    ctrl_msg m;
    assert_int_equal(ctrl_decode(f->asked, f->asked_len, &m), 0);
    assert_int_equal(m.op, CTRL_REG_SEND);
    assert_string_equal(m.to_name, "rex");
    *cluster_pid = m.from;
    int i = 0, v = 0, a = 0;
    char tag[MAXATOMLEN];
    erlang_pid caller;
    assert_int_equal(ei_decode_version(m.msg, &i, &v), 0);
    assert_int_equal(ei_decode_tuple_header(m.msg, &i, &a), 0);
    assert_int_equal(ei_decode_atom(m.msg, &i, tag), 0);
    assert_string_equal(tag, "$gen_call");
    assert_int_equal(ei_decode_tuple_header(m.msg, &i, &a), 0);
    assert_int_equal(ei_decode_pid(m.msg, &i, &caller), 0);
    assert_int_equal(ei_decode_ref(m.msg, &i, ref), 0);
}

/* {Ref, Names} sent to the cluster process on the connection of `conn`. */
static void answer(fx *f, const char *conn, const erlang_pid *to, const erlang_ref *ref,
                   const char *const *names, int n)
{
    ei_x_buff c, x;
    ei_x_new(&c);
    ei_x_new_with_version(&x);
    assert_int_equal(ctrl_encode_send(&c, to), 0);
    ei_x_encode_tuple_header(&x, 2);
    ei_x_encode_ref(&x, ref);
    if (n > 0)
        ei_x_encode_list_header(&x, n);
    for (int i = 0; i < n; i++)
        ei_x_encode_atom(&x, names[i]);
    ei_x_encode_empty_list(&x);
    size_t len = 1 + (size_t)c.index + (size_t)x.index;
    char *p = malloc(len);
    assert_non_null(p);
    p[0] = (char)112;
    memcpy(p + 1, c.buff, (size_t)c.index);
    memcpy(p + 1 + c.index, x.buff, (size_t)x.index);
    rc_procs_on_frame(f->ps, rec_node(f->nodes, conn), p, len);
    free(p);
    ei_x_free(&c);
    ei_x_free(&x);
}

/* Only the answer to the question outstanding on a connection, from that
 * connection, once, is read: an unsolicited list, the right reference on
 * another connection, and the same answer twice change nothing. */
static void test_only_the_answer_asked_for(void **state)
{
    fx *f = *state;
    rc_cluster_on_up(f->cl, LIAR);
    rc_cluster_on_up(f->cl, OTHER);
    erlang_pid cpid;
    erlang_ref ref;
    question(f, &cpid, &ref);
    size_t known0 = rc_cluster_known_count(f->cl);

    erlang_ref made_up = ref;
    made_up.n[0] ^= 0x155;
    answer(f, LIAR, &cpid, &made_up, (const char *[]){"u1@h", "u2@h"}, 2);
    answer(f, OTHER, &cpid, &ref, (const char *[]){"u3@h"}, 1);
    assert_int_equal(rc_cluster_known_count(f->cl), known0);
    assert_false(rc_cluster_knows(f->cl, "u1@h"));
    assert_false(rc_cluster_knows(f->cl, "u3@h"));

    answer(f, LIAR, &cpid, &ref, (const char *[]){"a@h"}, 1);
    assert_true(rc_cluster_knows(f->cl, "a@h"));
    answer(f, LIAR, &cpid, &ref, (const char *[]){"b@h"}, 1);
    assert_false(rc_cluster_knows(f->cl, "b@h"));
    assert_int_equal(rc_cluster_get_stats(f->cl)->answers, 1);
    assert_int_equal(rc_cluster_get_stats(f->cl)->answers_refused, 3);
}

/* 1,000 listed names are dialled at the budget's rate (20/s, burst 20), not
 * all at once and again and again; a member that drops meanwhile is
 * dialled back first, at its own backoff. */
static void test_dials_bounded_members_first(void **state)
{
    fx *f = *state;
    f->member_up = 1;
    rc_cluster_on_up(f->cl, MEMBER);
    rc_cluster_on_up(f->cl, LIAR);
    erlang_pid cpid;
    erlang_ref ref;
    question(f, &cpid, &ref);
    enum { N = 1000 };
    static char names[N][32];
    static const char *list[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "n%d@h", i);
        list[i] = names[i];
    }
    list[0] = MEMBER; /* a cluster member: listed */
    answer(f, LIAR, &cpid, &ref, list, N);
    fail_pending(f);
    assert_int_equal(rc_cluster_known_count(f->cl), N + 1);
    assert_true(f->dials <= 20);

    uint64_t t = 0;
    for (; t <= 5000; t += 100)
        tick(f, t);
    assert_true(f->dials <= 20 + 20 * 5 + 2);
    assert_true(f->dials >= 20 * 5);

    /* the member drops: it is redialled at the next due tick, ahead of
     * the strangers */
    f->member_up = 0;
    rc_cluster_on_down(f->cl, MEMBER);
    int before = f->member_dials;
    f->fail_dials = 0;
    for (uint64_t end = t + 300; t <= end; t += 100)
        tick(f, t);
    assert_int_equal(f->member_dials, before + 1);
    f->fail_dials = 1;
    for (uint64_t end = t + 5000; t <= end; t += 100)
        tick(f, t);
    assert_true(f->dials <= 20 + 20 * 11); /* 20 at once, then 20 a second */
}

static void relist_ghost(fx *f)
{
    erlang_pid cpid;
    erlang_ref ref;
    question(f, &cpid, &ref);
    answer(f, LIAR, &cpid, &ref, (const char *[]){GHOST}, 1);
}

/* A name that keeps failing is set aside after forget_after tries, though
 * the peer lists it at every discovery round: listing it again does not
 * reset its failures. After the quarantine (30 s) it gets one more try,
 * then twice as long aside. It connecting clears its history. */
static void test_failing_name_set_aside_despite_relisting(void **state)
{
    fx *f = *state;
    rc_cluster_on_up(f->cl, LIAR);
    relist_ghost(f);
    uint64_t t = 0;
    for (; t <= 25000; t += 100) {
        tick(f, t);
        relist_ghost(f); /* the peer lists it again and again */
    }
    assert_int_equal(f->ghost_dials, 8);
    assert_false(rc_cluster_knows(f->cl, GHOST));
    assert_int_equal(rc_cluster_get_stats(f->cl)->set_aside, 1);
    assert_true(rc_cluster_get_stats(f->cl)->listings_ignored > 0);

    for (; t <= 60000; t += 100) {
        tick(f, t);
        relist_ghost(f);
    }
    assert_int_equal(f->ghost_dials, 9); /* one try after the quarantine */
    for (; t <= 110000; t += 100) {
        tick(f, t);
        if (t % 1000 == 0)
            relist_ghost(f);
    }
    assert_int_equal(f->ghost_dials, 9); /* 60 s aside now */

    /* it comes up by itself: its history is gone */
    rc_cluster_on_up(f->cl, GHOST);
    assert_true(rc_cluster_knows(f->cl, GHOST));
    rc_cluster_on_down(f->cl, GHOST);
    rc_cluster_on_up(f->cl, LIAR); /* a fresh question */
    relist_ghost(f);
    for (uint64_t end = t + 3000; t <= end; t += 100)
        tick(f, t);
    assert_true(f->ghost_dials >= 9 + 3);
}

/* Lines of the cluster's log that contain text. */
static int log_count(fx *f, const char *text)
{
    fflush(f->logf);
    int n = 0;
    for (const char *p = f->log; p != NULL && (p = strstr(p, text)) != NULL; p += strlen(text))
        n++;
    return n;
}

/* A seed that cannot be reached is said at warning level once per change of
 * cause, so an operator at the shipped level sees a wrong cookie; a
 * stranger's failures are not. */
static void test_seed_failures_said_once_per_cause(void **state)
{
    fx *f = *state;
    assert_int_equal(rc_cluster_add_seed(f->cl, "seed@h"), 0);
    for (int i = 0; i < 3; i++)
        rc_cluster_on_connect_failed(f->cl, "seed@h", "connect: Connection refused");
    assert_int_equal(log_count(f, "cannot connect to seed@h (a seed): connect: Connection "
                                  "refused"), 1);
    for (int i = 0; i < 3; i++)
        rc_cluster_on_connect_failed(f->cl, "seed@h", "no challenge ack from seed@h (wrong "
                                                      "cookie?)");
    assert_int_equal(log_count(f, "cannot connect to seed@h (a seed)"), 2);
    assert_int_equal(log_count(f, "this node's cookie must be the cluster's"), 1);
    /* the first connection is not called a reconnection */
    rc_cluster_on_up(f->cl, "seed@h");
    assert_int_equal(log_count(f, "connected to seed@h after 6 failed attempts"), 1);
    rc_cluster_on_down(f->cl, "seed@h");
    rc_cluster_on_connect_failed(f->cl, "seed@h", "no challenge ack from seed@h (wrong cookie?)");
    assert_int_equal(log_count(f, "cannot connect to seed@h (a seed)"), 3);
    rc_cluster_on_up(f->cl, "seed@h");
    assert_int_equal(log_count(f, "connected to seed@h again after 1 failed attempt"), 1);
    /* a name nobody connected to before: not at warning level */
    rc_cluster_on_connect_failed(f->cl, GHOST, "connect: Connection refused");
    assert_int_equal(log_count(f, GHOST), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_only_the_answer_asked_for, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dials_bounded_members_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_name_set_aside_despite_relisting, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_seed_failures_said_once_per_cause, setup, teardown),
    };
    return cmocka_run_group_tests_name("cluster", tests, NULL, NULL);
}
