/* OTP 26+ node containers (DFLAG_V4_NC): pids with full 32-bit ID and
 * Serial, V4_PORT_EXT with a 64-bit id, references of 5 words. Each layer
 * that holds them keeps every bit: the frame validator accepts them, control
 * messages decode them, the process layer answers monitors and links with
 * the exact pid and reference, compact pids and the pg membership store keep
 * pids apart that differ only in high bits, and canonical group terms
 * re-encode them unchanged. */
#include "rec_frame.h"
#include "codec/term_read.h"
#include "codec/ctrl.h"
#include "codec/term_norm.h"
#include "proc/cpid.h"
#include "pg/membership.h"
#include "proc/procs.h"
#include "proc_pid.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define PEER "beam@h"

/* NEW_PID_EXT beam@h, ID 0xDEADBEEF, Serial 0xFEEDF00D, Creation 0x01020304 */
static const uint8_t V4_PID[] = {88,   119,  6,    'b',  'e',  'a',  'm',  '@',  'h',
                                 0xDE, 0xAD, 0xBE, 0xEF, 0xFE, 0xED, 0xF0, 0x0D, 1,
                                 2,    3,    4};
/* V4_PORT_EXT beam@h, ID 0x0123456789ABCDEF, Creation 9 */
static const uint8_t V4_PORT[] = {120,  119,  6,    'b',  'e',  'a',  'm',  '@',  'h', 0x01,
                                  0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0,    0,   0, 9};
/* NEWER_REFERENCE_EXT beam@h, 5 words, Creation 9 */
static const uint8_t REF5[] = {90, 0, 5, 119, 6, 'b', 'e', 'a', 'm', '@', 'h', 0, 0, 0, 9,
                               0,  0, 0, 1,   0, 0, 0,   2, 0,   0,   0,   3, 0, 0, 0,
                               4,  0xFF, 0xFF, 0xFF, 0xFF};

static erlang_pid v4_pid(void)
{
    erlang_pid p;
    memset(&p, 0, sizeof p);
    strcpy(p.node, PEER);
    p.num = 0xDEADBEEFu;
    p.serial = 0xFEEDF00Du;
    p.creation = 0x01020304u;
    return p;
}

static erlang_ref ref5(void)
{
    erlang_ref r;
    memset(&r, 0, sizeof r);
    strcpy(r.node, PEER);
    r.len = 5;
    for (int i = 0; i < 4; i++)
        r.n[i] = (unsigned)i + 1;
    r.n[4] = 0xFFFFFFFFu;
    r.creation = 9;
    return r;
}

static void assert_pid_eq(const erlang_pid *a, const erlang_pid *b)
{
    assert_string_equal(a->node, b->node);
    assert_int_equal(a->num, b->num);
    assert_int_equal(a->serial, b->serial);
    assert_int_equal(a->creation, b->creation);
}

static void assert_ref_eq(const erlang_ref *a, const erlang_ref *b)
{
    assert_string_equal(a->node, b->node);
    assert_int_equal(a->len, b->len);
    for (int i = 0; i < a->len; i++)
        assert_int_equal(a->n[i], b->n[i]);
    assert_int_equal(a->creation, b->creation);
}

static void test_validator_accepts_v4(void **st)
{
    (void)st;
    const struct {
        const uint8_t *b;
        int n;
    } ok[] = {{V4_PID, sizeof V4_PID}, {V4_PORT, sizeof V4_PORT}, {REF5, sizeof REF5}};
    for (size_t k = 0; k < 3; k++) {
        int idx = 0;
        assert_int_equal(term_skip((const char *)ok[k].b, ok[k].n, &idx), 0);
        assert_int_equal(idx, ok[k].n);
        idx = 0; /* one byte short: rejected, nothing read past the end */
        char *cut = malloc((size_t)ok[k].n - 1);
        memcpy(cut, ok[k].b, (size_t)ok[k].n - 1);
        assert_int_equal(term_skip(cut, ok[k].n - 1, &idx), -1);
        free(cut);
    }
    uint8_t six[sizeof REF5 + 4];
    memcpy(six, REF5, sizeof REF5);
    six[2] = 6; /* more than 5 words: not a reference any OTP sends */
    int idx = 0;
    assert_int_equal(term_skip((const char *)six, (int)sizeof six, &idx), -1);
}

static void test_ctrl_keeps_v4(void **st)
{
    (void)st;
    erlang_pid from = v4_pid(), to = v4_pid();
    strcpy(to.node, "c@h");
    erlang_ref r = ref5();
    ei_x_buff x;
    ei_x_new(&x);
    assert_int_equal(ei_x_append_buf(&x, "p", 1), 0);
    x.buff[0] = (char)CTRL_PASS_THROUGH;
    assert_int_equal(ctrl_encode_monitor(&x, CTRL_MONITOR_P, &from, &to, NULL, &r), 0);
    ctrl_msg m;
    assert_int_equal(ctrl_decode(x.buff, (size_t)x.index, &m), 0);
    assert_int_equal(m.op, CTRL_MONITOR_P);
    assert_pid_eq(&m.from, &from);
    assert_pid_eq(&m.to, &to);
    assert_ref_eq(&m.ref, &r);
    ei_x_free(&x);
}

/* ---- the process layer answers with the exact pid and reference ---- */

typedef struct sent {
    char *payload;
    size_t len;
} sent;

static sent outbox[8];
static int nsent;

static int rec_send(void *ctx, uint32_t to, const struct iovec *parts, int nparts)
{
    const char *node = rc_nodetab_name(ctx, to);
    if (node == NULL || strcmp(node, PEER) != 0 || nsent == 8)
        return -1;
    sent *s = &outbox[nsent++];
    s->payload = rec_frame_join(parts, nparts, &s->len);
    return s->payload != NULL ? 0 : -1;
}

static void idle(rc_procs *ps, rc_proc *self, const rc_signal *sig)
{
    (void)ps;
    (void)self;
    (void)sig;
}

/* The node table of the running case, for feed. */
static rc_nodetab *case_nodes;

static void feed(rc_procs *ps, const ei_x_buff *ctrl)
{
    size_t len = 1 + (size_t)ctrl->index;
    char *p = malloc(len);
    p[0] = (char)CTRL_PASS_THROUGH;
    memcpy(p + 1, ctrl->buff, (size_t)ctrl->index);
    rc_procs_on_frame(ps, rec_node(case_nodes, PEER), p, len);
    free(p);
}

static void test_monitor_and_link_from_v4_pid(void **st)
{
    (void)st;
    nsent = 0;
    rc_nodetab *nodes = rc_nodetab_new();
    assert_non_null(nodes);
    case_nodes = nodes;
    rc_procs_transport tr = {.ctx = nodes, .sendv = rec_send};
    rc_procs *ps = rc_procs_new(NULL, &tr, nodes, "c@h", 77);
    assert_non_null(ps);
    rc_proc *p = rc_proc_spawn_registered(ps, idle, NULL, NULL, "svc");
    assert_non_null(p);
    erlang_pid w = v4_pid();
    erlang_ref r = ref5();
    ei_x_buff c;
    ei_x_new(&c);
    assert_int_equal(ctrl_encode_monitor(&c, CTRL_MONITOR_P, &w, NULL, "svc", &r), 0);
    feed(ps, &c);
    c.index = 0;
    assert_int_equal(ctrl_encode_link(&c, CTRL_LINK, &w, test_pid(ps, p)), 0);
    feed(ps, &c);
    assert_int_equal(nsent, 0);
    rc_proc_exit(ps, p, "shutdown");
    assert_int_equal(nsent, 2);
    int downs = 0, exits = 0;
    for (int k = 0; k < nsent; k++) {
        ctrl_msg m;
        assert_int_equal(ctrl_decode(outbox[k].payload, outbox[k].len, &m), 0);
        assert_pid_eq(&m.to, &w);
        if (m.op == CTRL_MONITOR_P_EXIT) {
            assert_ref_eq(&m.ref, &r);
            downs++;
        } else if (m.op == CTRL_EXIT) {
            exits++;
        }
        free(outbox[k].payload);
    }
    assert_int_equal(downs, 1);
    assert_int_equal(exits, 1);
    ei_x_free(&c);
    rc_procs_free(ps);
    rc_nodetab_free(nodes);
}

/* ---- compact pids and the membership store ---- */

static void test_cpid_round_trip(void **st)
{
    (void)st;
    rc_nodetab *t = rc_nodetab_new();
    assert_non_null(t);
    rc_cpid c;
    int idx = 0;
    assert_int_equal(rc_cpid_read(t, (const char *)V4_PID, (int)sizeof V4_PID, &idx, &c), 0);
    assert_int_equal(idx, (int)sizeof V4_PID);
    assert_int_equal(c.num, 0xDEADBEEFu);
    assert_int_equal(c.serial, 0xFEEDF00Du);
    assert_int_equal(c.creation, 0x01020304u);
    ei_x_buff x;
    ei_x_new(&x);
    assert_int_equal(rc_cpid_write(t, &x, &c), 0);
    assert_int_equal(x.index, (int)sizeof V4_PID);
    assert_memory_equal(x.buff, V4_PID, sizeof V4_PID);
    erlang_pid e, want = v4_pid();
    assert_int_equal(rc_cpid_to_ei(t, &c, &e), 0);
    assert_pid_eq(&e, &want);
    rc_cpid back;
    assert_int_equal(rc_cpid_from_ei(t, &e, &back), 0);
    assert_true(rc_cpid_eq(&back, &c));
    rc_cpid high = c;
    high.serial ^= 0x80000000u; /* differs only above OTP 25's 13 bits */
    assert_false(rc_cpid_eq(&high, &c));
    ei_x_free(&x);
    rc_nodetab_free(t);
}

static void test_membership_keeps_v4_pids_apart(void **st)
{
    (void)st;
    rc_nodetab *t = rc_nodetab_new();
    pgm_table *m = pgm_new();
    assert_non_null(t);
    assert_non_null(m);
    rc_cpid a;
    int idx = 0;
    assert_int_equal(rc_cpid_read(t, (const char *)V4_PID, (int)sizeof V4_PID, &idx, &a), 0);
    rc_cpid b = a, c = a;
    b.num ^= 0x00010000u;    /* bit 16 of the ID */
    c.serial ^= 0x40000000u; /* bit 30 of the Serial */
    const rc_cpid pids[] = {a, b, c};
    static const uint8_t key[] = {119, 1, 'g'};
    pgm_group *g = pgm_add(m, key, sizeof key, pids, 3, 0);
    assert_non_null(g);
    size_t n = 0;
    pgm_group_members(g, &n);
    assert_int_equal(n, 3);
    assert_int_equal(pgm_remove_one(m, &g, &c), 1);
    assert_int_equal(pgm_remove_one(m, &g, &c), 0); /* c is gone; a and b stay */
    const rc_cpid *left = pgm_group_members(g, &n);
    assert_int_equal(n, 2);
    for (size_t k = 0; k < n; k++)
        assert_true(rc_cpid_eq(&left[k], &a) || rc_cpid_eq(&left[k], &b));
    pgm_free(m);
    rc_nodetab_free(t);
}

/* ---- canonical group terms ---- */

static void expect_canonical_unchanged(const uint8_t *b, size_t n)
{
    ei_x_buff x;
    ei_x_new(&x);
    int idx = 0;
    assert_int_equal(term_norm_encode((const char *)b, (int)n, &idx, &x), 0);
    assert_int_equal(idx, (int)n);
    assert_int_equal(x.index, (int)n);
    assert_memory_equal(x.buff, b, n);
    ei_x_free(&x);
}

static void test_term_norm_keeps_v4(void **st)
{
    (void)st;
    expect_canonical_unchanged(V4_PID, sizeof V4_PID);
    expect_canonical_unchanged(V4_PORT, sizeof V4_PORT);
    expect_canonical_unchanged(REF5, sizeof REF5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validator_accepts_v4),
        cmocka_unit_test(test_ctrl_keeps_v4),
        cmocka_unit_test(test_monitor_and_link_from_v4_pid),
        cmocka_unit_test(test_cpid_round_trip),
        cmocka_unit_test(test_membership_keeps_v4_pids_apart),
        cmocka_unit_test(test_term_norm_keeps_v4),
    };
    return cmocka_run_group_tests_name("v4 node containers", tests, NULL, NULL);
}
