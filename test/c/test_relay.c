/* relay accounting: rc_relays on a real process layer whose transport is a
 * recorder. Messages "sent" to a relay are declared with rc_relays_sent; the
 * test then plays the relay's node: the DOWN of the relay's monitor, and the
 * answer of that node's rex to the question the accounting process asks.
 * Asserted: the monitor and the question on the wire, relay_lost and
 * relay_unaccounted, and that only the asked node's answer to the
 * outstanding question counts, once. */
#include "rec_frame.h"
#include "codec/ctrl.h"
#include "emitter/relay.h"
#include "proc/procs.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define ME "c@h"
#define PEER "beam@h"
#define PEER2 "beam2@h"

static int rec_send(void *ctx, uint32_t to, const struct iovec *parts, int nparts)
{
    recorder *r = ctx;
    const char *node = rc_nodetab_name(r->nodes, to);
    assert_non_null(node);
    assert_int_equal(rec_put(r, node, parts, nparts), 0);
    return 0;
}

typedef struct fx {
    recorder rec;
    rc_nodetab *nodes;
    rc_procs *ps;
    rc_relays *r;
    erlang_pid acc; /* the accounting process, from the relay message head */
    erlang_pid relay;
    rc_cpid relay_c;
    ei_x_buff group; /* canonical {Store, Topic, subscribers} */
    char *kept;      /* the frame take_one decoded last (its ctrl_msg points into it) */
} fx;

static erlang_pid epid(const char *node, unsigned num, unsigned creation)
{
    erlang_pid p;
    memset(&p, 0, sizeof p);
    strcpy(p.node, node);
    p.num = num;
    p.serial = 1;
    p.creation = creation;
    return p;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->nodes = rc_nodetab_new();
    assert_non_null(f->nodes);
    assert_int_equal(rc_nodetab_intern(f->nodes, ME, strlen(ME)), 0);
    f->rec.nodes = f->nodes;
    rc_procs_transport tr = {.ctx = &f->rec, .sendv = rec_send};
    f->ps = rc_procs_new(NULL, &tr, f->nodes, ME, 77);
    assert_non_null(f->ps);
    /* no scope: the accounting never looks at the view */
    f->r = rc_relays_new(NULL, f->ps, f->nodes);
    assert_non_null(f->r);
    /* the head: version, {'$reckon_relay', AccountingPid, */
    size_t hlen = 0;
    const uint8_t *h = rc_relays_head(f->r, &hlen);
    assert_non_null(h);
    int idx = 0, v = 0, arity = 0;
    char tag[MAXATOMLEN];
    assert_int_equal(ei_decode_version((const char *)h, &idx, &v), 0);
    assert_int_equal(ei_decode_tuple_header((const char *)h, &idx, &arity), 0);
    assert_int_equal(arity, 4);
    assert_int_equal(ei_decode_atom((const char *)h, &idx, tag), 0);
    assert_string_equal(tag, "$reckon_relay");
    assert_int_equal(ei_decode_pid((const char *)h, &idx, &f->acc), 0);
    assert_int_equal((size_t)idx, hlen);
    assert_string_equal(f->acc.node, ME);
    f->relay = epid(PEER, 40, 5);
    assert_int_equal(rc_cpid_from_ei(f->nodes, &f->relay, &f->relay_c), 0);
    ei_x_new(&f->group);
    assert_int_equal(ei_x_encode_tuple_header(&f->group, 3), 0);
    assert_int_equal(ei_x_encode_atom(&f->group, "orders"), 0);
    assert_int_equal(ei_x_encode_binary(&f->group, "orders:t", 8), 0);
    assert_int_equal(ei_x_encode_atom(&f->group, "subscribers"), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    /* the process table first: the accounting process's context is r */
    rc_procs_free(f->ps);
    rc_relays_free(f->r);
    rc_nodetab_free(f->nodes);
    rec_clear(&f->rec);
    ei_x_free(&f->group);
    free(f->kept);
    free(f);
    return 0;
}

static void sent_n(fx *f, int n)
{
    for (int i = 0; i < n; i++)
        rc_relays_sent(f->r, &f->relay_c, (const uint8_t *)f->group.buff,
                       (size_t)f->group.index);
}

/* The one frame recorded since the last call, decoded; cleared. */
static ctrl_msg take_one(fx *f, int op, const char *node)
{
    assert_int_equal(f->rec.n, 1);
    ctrl_msg m;
    assert_int_equal(ctrl_decode(f->rec.s[0].payload, f->rec.s[0].len, &m), 0);
    assert_int_equal(m.op, op);
    assert_string_equal(f->rec.s[0].node, node);
    free(f->kept);
    f->kept = f->rec.s[0].payload;
    f->rec.n = 0;
    return m;
}

static void feed(fx *f, const char *conn, const ei_x_buff *ctrl, const ei_x_buff *msg)
{
    size_t len = 1 + (size_t)ctrl->index + (msg ? (size_t)msg->index : 0);
    char *p = malloc(len);
    assert_non_null(p);
    p[0] = (char)112;
    memcpy(p + 1, ctrl->buff, (size_t)ctrl->index);
    if (msg)
        memcpy(p + 1 + ctrl->index, msg->buff, (size_t)msg->index);
    (void)rc_procs_on_frame(f->ps, rec_node(f->nodes, conn), p, len);
    free(p);
}

/* The relay's DOWN, with reason `why`. */
static void relay_down(fx *f, const erlang_ref *mon, const char *why)
{
    ei_x_buff c;
    ei_x_new(&c);
    assert_int_equal(ctrl_encode_monitor_exit(&c, &f->relay, NULL, &f->acc, mon, why), 0);
    feed(f, PEER, &c, NULL);
    ei_x_free(&c);
}

/* The question on the wire: {Name = rex, Node = the relay's} !
 * {'$gen_call', {Acc, Ref}, {call, reckon_cnode_relay, handled, [Relay, Acc], Acc}};
 * returns Ref. */
static erlang_ref take_question(fx *f)
{
    ctrl_msg m = take_one(f, CTRL_REG_SEND, PEER);
    assert_string_equal(m.to_name, "rex");
    const char *b = m.msg;
    int idx = 0, v = 0, arity = 0, n = 0;
    char a[MAXATOMLEN];
    erlang_pid p;
    erlang_ref ref;
    assert_int_equal(ei_decode_version(b, &idx, &v), 0);
    assert_int_equal(ei_decode_tuple_header(b, &idx, &arity), 0);
    assert_int_equal(arity, 3);
    assert_int_equal(ei_decode_atom(b, &idx, a), 0);
    assert_string_equal(a, "$gen_call");
    assert_int_equal(ei_decode_tuple_header(b, &idx, &arity), 0);
    assert_int_equal(ei_decode_pid(b, &idx, &p), 0);
    assert_int_equal(p.num, f->acc.num);
    assert_int_equal(ei_decode_ref(b, &idx, &ref), 0);
    assert_int_equal(ei_decode_tuple_header(b, &idx, &arity), 0);
    assert_int_equal(arity, 5);
    const char *want[] = {"call", "reckon_cnode_relay", "handled"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ei_decode_atom(b, &idx, a), 0);
        assert_string_equal(a, want[i]);
    }
    assert_int_equal(ei_decode_list_header(b, &idx, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ei_decode_pid(b, &idx, &p), 0);
    assert_int_equal(p.num, f->relay.num);
    assert_string_equal(p.node, PEER);
    assert_int_equal(ei_decode_pid(b, &idx, &p), 0);
    assert_int_equal(p.num, f->acc.num);
    return ref;
}

/* rex's reply {Ref, Handled} (handled < 0: the atom unknown), on conn. */
static void answer(fx *f, const char *conn, const erlang_ref *ref, long handled)
{
    ei_x_buff c, m;
    ei_x_new(&c);
    ei_x_new_with_version(&m);
    assert_int_equal(ctrl_encode_send(&c, &f->acc), 0);
    assert_int_equal(ei_x_encode_tuple_header(&m, 2), 0);
    assert_int_equal(ei_x_encode_ref(&m, ref), 0);
    if (handled >= 0)
        assert_int_equal(ei_x_encode_long(&m, handled), 0);
    else
        assert_int_equal(ei_x_encode_atom(&m, "unknown"), 0);
    feed(f, conn, &c, &m);
    ei_x_free(&c);
    ei_x_free(&m);
}

static void test_lost_counted_once(void **state)
{
    fx *f = *state;
    sent_n(f, 5);
    ctrl_msg mon = take_one(f, CTRL_MONITOR_P, PEER); /* monitored once */
    assert_int_equal(mon.to.num, f->relay.num);
    erlang_ref mref = mon.ref;
    relay_down(f, &mref, "killed");
    erlang_ref q = take_question(f);
    /* sent to the dead relay while the question is out: lost too */
    sent_n(f, 1);
    assert_int_equal(f->rec.n, 0);
    /* another node's answer, or a stale reference, does not count */
    answer(f, PEER2, &q, 0);
    erlang_ref stale = q;
    stale.n[0] ^= 1;
    answer(f, PEER, &stale, 0);
    assert_int_equal(rc_relays_get_stats(f->r)->lost, 0);
    answer(f, PEER, &q, 2);
    assert_int_equal(rc_relays_get_stats(f->r)->lost, 4);
    answer(f, PEER, &q, 0); /* answered already */
    assert_int_equal(rc_relays_get_stats(f->r)->lost, 4);
    assert_int_equal(rc_relays_get_stats(f->r)->unaccounted, 0);
    /* later sends to the same dead pid: a new account, a new question */
    sent_n(f, 3);
    mon = take_one(f, CTRL_MONITOR_P, PEER);
    mref = mon.ref;
    relay_down(f, &mref, "noproc");
    q = take_question(f);
    answer(f, PEER, &q, 0);
    assert_int_equal(rc_relays_get_stats(f->r)->lost, 7);
}

static void test_more_handled_than_sent_is_no_loss(void **state)
{
    fx *f = *state;
    sent_n(f, 2);
    ctrl_msg mon = take_one(f, CTRL_MONITOR_P, PEER);
    erlang_ref mref = mon.ref;
    relay_down(f, &mref, "killed");
    erlang_ref q = take_question(f);
    answer(f, PEER, &q, 9);
    assert_int_equal(rc_relays_get_stats(f->r)->lost, 0);
    assert_int_equal(rc_relays_get_stats(f->r)->unaccounted, 0);
}

static void test_unknown_is_unaccounted(void **state)
{
    fx *f = *state;
    sent_n(f, 3);
    ctrl_msg mon = take_one(f, CTRL_MONITOR_P, PEER);
    erlang_ref mref = mon.ref;
    relay_down(f, &mref, "killed");
    erlang_ref q = take_question(f);
    answer(f, PEER, &q, -1);
    assert_int_equal(rc_relays_get_stats(f->r)->lost, 0);
    assert_int_equal(rc_relays_get_stats(f->r)->unaccounted, 3);
}

static void test_noconnection_not_asked(void **state)
{
    fx *f = *state;
    sent_n(f, 3);
    ctrl_msg mon = take_one(f, CTRL_MONITOR_P, PEER);
    erlang_ref mref = mon.ref;
    relay_down(f, &mref, "noconnection");
    assert_int_equal(f->rec.n, 0);
    assert_int_equal(rc_relays_get_stats(f->r)->lost, 0);
    assert_int_equal(rc_relays_get_stats(f->r)->unaccounted, 0);
    /* forgotten: the next send starts a new account */
    sent_n(f, 1);
    (void)take_one(f, CTRL_MONITOR_P, PEER);
}

static void test_without_process_no_relays(void **state)
{
    (void)state;
    rc_relays *r = rc_relays_new(NULL, NULL, NULL);
    assert_non_null(r);
    size_t len = 0;
    assert_null(rc_relays_head(r, &len));
    assert_int_equal(rc_relays_begin(r), 0);
    rc_relays_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lost_counted_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_more_handled_than_sent_is_no_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_is_unaccounted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noconnection_not_asked, setup, teardown),
        cmocka_unit_test(test_without_process_no_relays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
