/* Process layer: pids and registered names, links and monitors set by remote
 * processes and what they are told when a C process ends, noproc answers,
 * UNLINK_ID, delivery of messages, connection loss, and local sends that
 * never re-enter a running handler. The transport is a recorder. */
#include "rec_frame.h"
#include "codec/ctrl.h"
#include "proc/gen_server.h"
#include "proc/procs.h"
#include "proc_pid.h"
#include "util/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define ME "c@h"
#define PEER "beam@h"

static int rec_send(void *ctx, uint32_t to, const struct iovec *parts, int nparts)
{
    recorder *r = ctx;
    const char *node = rc_nodetab_name(r->nodes, to);
    if (!r->connected || node == NULL || strcmp(node, PEER) != 0)
        return -1;
    assert_int_equal(rec_put(r, node, parts, nparts), 0);
    return 0;
}

static ctrl_msg *decode_sent(recorder *r, int i)
{
    static ctrl_msg m;
    assert_true(i < r->n);
    assert_int_equal(ctrl_decode(r->s[i].payload, r->s[i].len, &m), 0);
    return &m;
}

typedef struct fixture {
    recorder rec;
    rc_procs *ps;
} fixture;

/* The node table of the running case, for the feeds. */
static rc_nodetab *case_nodes;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->rec.connected = 1;
    f->rec.nodes = rc_nodetab_new();
    assert_non_null(f->rec.nodes);
    case_nodes = f->rec.nodes;
    rc_procs_transport tr = {.ctx = &f->rec, .sendv = rec_send};
    f->ps = rc_procs_new(NULL, &tr, f->rec.nodes, ME, 77);
    assert_non_null(f->ps);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    rc_procs_free(f->ps);
    rc_nodetab_free(f->rec.nodes);
    rec_clear(&f->rec);
    free(f);
    return 0;
}

/* A handler that records what it got. */
typedef struct inbox {
    int msgs, exits, downs;
    char last_atom[MAXATOMLEN];
    rc_proc *forward_to; /* when set, each message is sent on to this process */
    int in_handler;
    int reentered;
    struct inbox *watch; /* another process's inbox that must not be mid-handler */
} inbox;

static void record(rc_procs *ps, rc_proc *self, const rc_signal *sig)
{
    inbox *in = rc_proc_ctx(self);
    if (in->in_handler || (in->watch && in->watch->in_handler))
        in->reentered = 1;
    in->in_handler = 1;
    int idx = 0, v = 0;
    if (sig->kind == RC_SIG_MSG) {
        in->msgs++;
        ei_decode_version(sig->buf, &idx, &v);
        ei_decode_atom(sig->buf, &idx, in->last_atom);
        if (in->forward_to)
            rc_proc_send(ps, self, test_pid(ps, in->forward_to), sig->buf, sig->len);
    } else {
        if (sig->kind == RC_SIG_EXIT)
            in->exits++;
        else
            in->downs++;
        ei_decode_atom(sig->buf, &idx, in->last_atom);
    }
    in->in_handler = 0;
}

static erlang_pid remote_pid(unsigned num)
{
    erlang_pid p;
    memset(&p, 0, sizeof p);
    strcpy(p.node, PEER);
    p.num = num;
    p.creation = 5;
    return p;
}

static erlang_ref remote_ref(unsigned k)
{
    erlang_ref r;
    memset(&r, 0, sizeof r);
    strcpy(r.node, PEER);
    r.len = 3;
    r.n[0] = k;
    r.creation = 5;
    return r;
}

/* Feeds one control message (+ optional atom message) as if from PEER. */
/* One SEND-kind frame from PEER: the control term, then msg (with its
 * version byte) if any. */
static void feed_frame(rc_procs *ps, const ei_x_buff *ctrl, const ei_x_buff *msg)
{
    size_t len = 1 + (size_t)ctrl->index + (msg ? (size_t)msg->index : 0);
    char *p = malloc(len);
    assert_non_null(p);
    p[0] = (char)112;
    memcpy(p + 1, ctrl->buff, (size_t)ctrl->index);
    if (msg)
        memcpy(p + 1 + ctrl->index, msg->buff, (size_t)msg->index);
    rc_procs_on_frame(ps, rec_node(case_nodes, PEER), p, len);
    free(p);
}

static void feed(rc_procs *ps, ei_x_buff *ctrl, const char *msg_atom)
{
    ei_x_buff m;
    ei_x_new_with_version(&m);
    if (msg_atom)
        ei_x_encode_atom(&m, msg_atom);
    feed_frame(ps, ctrl, msg_atom ? &m : NULL);
    ei_x_free(&m);
}

static void test_pids_and_names(void **state)
{
    fixture *f = *state;
    enum { N = 2000 };
    static rc_proc *procs[N];
    for (int i = 0; i < N; i++) {
        procs[i] = rc_proc_spawn(f->ps, record, NULL, NULL);
        assert_non_null(procs[i]);
        assert_ptr_equal(rc_procs_lookup(f->ps, test_pid(f->ps, procs[i])), procs[i]);
    }
    assert_int_equal(rc_procs_count(f->ps), N);
    for (int i = 1; i < N; i++) {
        const erlang_pid *a = test_pid(f->ps, procs[i - 1]), *b = test_pid(f->ps, procs[i]);
        assert_false(a->num == b->num && a->serial == b->serial);
        assert_int_equal(b->creation, 77);
        assert_string_equal(b->node, ME);
    }
    assert_int_equal(rc_proc_register(f->ps, procs[0], "svc"), 0);
    assert_int_equal(rc_proc_register(f->ps, procs[1], "svc"), -1);
    assert_ptr_equal(rc_procs_whereis(f->ps, "svc"), procs[0]);
    erlang_pid dead = *test_pid(f->ps, procs[0]);
    rc_proc_exit(f->ps, procs[0], "normal");
    assert_null(rc_procs_whereis(f->ps, "svc"));
    assert_null(rc_procs_lookup(f->ps, &dead));
    assert_int_equal(rc_proc_register(f->ps, procs[1], "svc"), 0);
    assert_int_equal(rc_procs_count(f->ps), N - 1);
}

static void test_monitor_unknown_name_gets_noproc(void **state)
{
    fixture *f = *state;
    erlang_pid w = remote_pid(10);
    erlang_ref r = remote_ref(1);
    ei_x_buff c;
    ei_x_new(&c);
    ctrl_encode_monitor(&c, CTRL_MONITOR_P, &w, NULL, "nosuch", &r);
    feed(f->ps, &c, NULL);
    assert_int_equal(f->rec.n, 1);
    ctrl_msg *m = decode_sent(&f->rec, 0);
    assert_int_equal(m->op, CTRL_MONITOR_P_EXIT);
    assert_int_equal(m->to.num, 10);
    assert_int_equal(m->ref.n[0], 1);
    char reason[MAXATOMLEN];
    int i = 0;
    ei_decode_atom(m->reason, &i, reason);
    assert_string_equal(reason, "noproc");
    ei_x_free(&c);
}

static void test_monitor_and_link_notified_on_exit(void **state)
{
    fixture *f = *state;
    inbox in = {0};
    rc_proc *p = rc_proc_spawn(f->ps, record, &in, NULL);
    rc_proc_register(f->ps, p, "svc");
    erlang_pid w = remote_pid(11);
    erlang_ref r = remote_ref(2);
    ei_x_buff c;
    ei_x_new(&c);
    ctrl_encode_monitor(&c, CTRL_MONITOR_P, &w, NULL, "svc", &r);
    feed(f->ps, &c, NULL);
    c.index = 0;
    ctrl_encode_link(&c, CTRL_LINK, &w, test_pid(f->ps, p));
    feed(f->ps, &c, NULL);
    assert_int_equal(f->rec.n, 0); /* accepted silently */
    rc_proc_exit(f->ps, p, "shutdown");
    assert_int_equal(f->rec.n, 2);
    int saw_exit = 0, saw_down = 0;
    for (int k = 0; k < 2; k++) {
        ctrl_msg *m = decode_sent(&f->rec, k);
        char reason[MAXATOMLEN];
        int i = 0;
        ei_decode_atom(m->reason, &i, reason);
        assert_string_equal(reason, "shutdown");
        assert_int_equal(m->to.num, 11);
        if (m->op == CTRL_EXIT)
            saw_exit = 1;
        if (m->op == CTRL_MONITOR_P_EXIT) {
            saw_down = 1;
            assert_int_equal(m->ref.n[0], 2);
        }
    }
    assert_true(saw_exit && saw_down);
    ei_x_free(&c);
}

static void test_demonitor_and_unlink_id(void **state)
{
    fixture *f = *state;
    rc_proc *p = rc_proc_spawn(f->ps, record, NULL, NULL);
    erlang_pid w = remote_pid(12);
    erlang_ref r = remote_ref(3);
    ei_x_buff c;
    ei_x_new(&c);
    ctrl_encode_monitor(&c, CTRL_MONITOR_P, &w, test_pid(f->ps, p), NULL, &r);
    feed(f->ps, &c, NULL);
    c.index = 0;
    ctrl_encode_monitor(&c, CTRL_DEMONITOR_P, &w, test_pid(f->ps, p), NULL, &r);
    feed(f->ps, &c, NULL);
    c.index = 0;
    ctrl_encode_link(&c, CTRL_LINK, &w, test_pid(f->ps, p));
    feed(f->ps, &c, NULL);
    c.index = 0;
    ctrl_encode_unlink_id(&c, CTRL_UNLINK_ID, 99, &w, test_pid(f->ps, p));
    feed(f->ps, &c, NULL);
    assert_int_equal(f->rec.n, 1);
    ctrl_msg *m = decode_sent(&f->rec, 0);
    assert_int_equal(m->op, CTRL_UNLINK_ID_ACK);
    assert_true(m->unlink_id == 99);
    assert_int_equal(m->to.num, 12);
    rc_proc_exit(f->ps, p, "normal");
    assert_int_equal(f->rec.n, 1); /* neither the monitor nor the link is left */
    ei_x_free(&c);
}

static void test_link_to_unknown_gets_noproc_exit(void **state)
{
    fixture *f = *state;
    erlang_pid w = remote_pid(13);
    erlang_pid ghost;
    memset(&ghost, 0, sizeof ghost);
    strcpy(ghost.node, ME);
    ghost.num = 30000;
    ghost.creation = 77;
    ei_x_buff c;
    ei_x_new(&c);
    ctrl_encode_link(&c, CTRL_LINK, &w, &ghost);
    feed(f->ps, &c, NULL);
    assert_int_equal(f->rec.n, 1);
    ctrl_msg *m = decode_sent(&f->rec, 0);
    assert_int_equal(m->op, CTRL_EXIT);
    assert_int_equal(m->to.num, 13);
    ei_x_free(&c);
}

static void test_messages_delivered(void **state)
{
    fixture *f = *state;
    inbox in = {0};
    rc_proc *p = rc_proc_spawn(f->ps, record, &in, NULL);
    rc_proc_register(f->ps, p, "svc");
    erlang_pid from = remote_pid(14);
    ei_x_buff c;
    ei_x_new(&c);
    ctrl_encode_reg_send(&c, &from, "svc");
    feed(f->ps, &c, "hello");
    assert_int_equal(in.msgs, 1);
    assert_string_equal(in.last_atom, "hello");
    c.index = 0;
    ctrl_encode_send(&c, test_pid(f->ps, p));
    feed(f->ps, &c, "again");
    assert_int_equal(in.msgs, 2);
    assert_string_equal(in.last_atom, "again");
    /* to a name nobody has: dropped and counted */
    c.index = 0;
    ctrl_encode_reg_send(&c, &from, "nobody");
    feed(f->ps, &c, "lost");
    assert_int_equal(in.msgs, 2);
    assert_int_equal(rc_procs_get_stats(f->ps)->err_unknown_target, 1);
    /* garbage is counted as malformed, nothing delivered */
    char junk[] = {112, (char)131, 104, 9};
    rc_procs_on_frame(f->ps, rec_node(case_nodes, PEER), junk, sizeof junk);
    assert_int_equal(rc_procs_get_stats(f->ps)->err_malformed, 1);
    ei_x_free(&c);
}

static void test_local_send_does_not_reenter(void **state)
{
    fixture *f = *state;
    inbox a = {0}, b = {0};
    rc_proc *pa = rc_proc_spawn(f->ps, record, &a, NULL);
    rc_proc *pb = rc_proc_spawn(f->ps, record, &b, NULL);
    a.forward_to = pb;
    b.watch = &a; /* b must run only after a's handler has returned */
    rc_proc_register(f->ps, pa, "a");
    erlang_pid from = remote_pid(15);
    ei_x_buff c;
    ei_x_new(&c);
    ctrl_encode_reg_send(&c, &from, "a");
    feed(f->ps, &c, "ball");
    assert_int_equal(a.msgs, 1);
    assert_int_equal(b.msgs, 1);
    assert_false(a.reentered || b.reentered);
    ei_x_free(&c);
}

static void test_connection_loss(void **state)
{
    fixture *f = *state;
    inbox in = {0};
    rc_proc *p = rc_proc_spawn(f->ps, record, &in, NULL);
    erlang_pid w = remote_pid(16);
    ei_x_buff c;
    ei_x_new(&c);
    ctrl_encode_link(&c, CTRL_LINK, &w, test_pid(f->ps, p));
    feed(f->ps, &c, NULL);
    erlang_ref mref;
    assert_int_equal(rc_proc_monitor(f->ps, p, &w, NULL, NULL, &mref), 0);
    assert_int_equal(f->rec.n, 1);
    assert_int_equal(decode_sent(&f->rec, 0)->op, CTRL_MONITOR_P);
    rc_procs_on_down(f->ps, rec_node(case_nodes, PEER));
    assert_int_equal(in.exits, 1);
    assert_int_equal(in.downs, 1);
    assert_string_equal(in.last_atom, "noconnection");
    /* monitoring a process on a node we are not connected to fails at once,
     * and no DOWN is delivered into the caller */
    f->rec.connected = 0;
    assert_int_equal(rc_proc_monitor(f->ps, p, &w, NULL, NULL, &mref), -1);
    assert_int_equal(in.downs, 1);
    ei_x_free(&c);
}

/* Monitors between C processes of this node: the target's exit reason, a
 * missing target's noproc (never inside the monitor call), demonitor, by
 * name, and a watcher that ends first. Nothing goes over the transport. */
static void test_local_monitors(void **state)
{
    fixture *f = *state;
    inbox w = {0}, t = {0}, t2 = {0};
    rc_proc *pw = rc_proc_spawn(f->ps, record, &w, NULL);
    rc_proc *pt = rc_proc_spawn(f->ps, record, &t, NULL);
    erlang_pid tpid = *test_pid(f->ps, pt);
    erlang_ref r1, r2, r3;
    assert_int_equal(rc_proc_monitor(f->ps, pw, &tpid, NULL, NULL, &r1), 0);
    assert_int_equal(rc_procs_remote_monitors(f->ps), 1);
    rc_proc_exit(f->ps, pt, "killed");
    assert_int_equal(w.downs, 1);
    assert_string_equal(w.last_atom, "killed");
    assert_int_equal(rc_procs_remote_monitors(f->ps), 0);
    /* the target is gone now: noproc, delivered after the call */
    assert_int_equal(rc_proc_monitor(f->ps, pw, &tpid, NULL, NULL, &r2), 0);
    assert_int_equal(w.downs, 1);
    rc_procs_flush(f->ps);
    assert_int_equal(w.downs, 2);
    assert_string_equal(w.last_atom, "noproc");
    /* demonitored before the target ends: no DOWN */
    rc_proc *pt2 = rc_proc_spawn(f->ps, record, &t2, NULL);
    assert_int_equal(rc_proc_register(f->ps, pt2, "t2"), 0);
    assert_int_equal(rc_proc_monitor(f->ps, pw, NULL, "t2", ME, &r3), 0);
    rc_proc_demonitor(f->ps, pw, &r3);
    assert_int_equal(rc_procs_remote_monitors(f->ps), 0);
    /* by name, and the DOWN names the reason */
    assert_int_equal(rc_proc_monitor(f->ps, pw, NULL, "t2", ME, &r3), 0);
    rc_proc_exit(f->ps, pt2, "shutdown");
    assert_int_equal(w.downs, 3);
    assert_string_equal(w.last_atom, "shutdown");
    /* a watcher that ends first leaves nothing behind */
    inbox t3 = {0};
    rc_proc *pt3 = rc_proc_spawn(f->ps, record, &t3, NULL);
    assert_int_equal(rc_proc_monitor(f->ps, pw, test_pid(f->ps, pt3), NULL, NULL, &r1), 0);
    rc_proc_exit(f->ps, pw, "normal");
    assert_int_equal(rc_procs_remote_monitors(f->ps), 0);
    rc_proc_exit(f->ps, pt3, "normal");
    assert_int_equal(f->rec.n, 0);
}

static void test_remote_down_delivered(void **state)
{
    fixture *f = *state;
    inbox in = {0};
    rc_proc *p = rc_proc_spawn(f->ps, record, &in, NULL);
    erlang_pid target = remote_pid(17);
    erlang_ref mref;
    assert_int_equal(rc_proc_monitor(f->ps, p, NULL, "rex", PEER, &mref), 0);
    ei_x_buff c;
    ei_x_new(&c);
    ctrl_encode_monitor_exit(&c, &target, NULL, test_pid(f->ps, p), &mref, "killed");
    feed(f->ps, &c, NULL);
    assert_int_equal(in.downs, 1);
    assert_string_equal(in.last_atom, "killed");
    /* the same DOWN again is stale: ignored */
    feed(f->ps, &c, NULL);
    assert_int_equal(in.downs, 1);
    ei_x_free(&c);
}

/* Feeds one control message on the connection of node `conn`; returns what
 * rc_procs_on_frame says. */
static int feed_on(rc_procs *ps, const char *conn, const ei_x_buff *ctrl)
{
    size_t len = 1 + (size_t)ctrl->index;
    char *p = malloc(len);
    assert_non_null(p);
    p[0] = (char)112;
    memcpy(p + 1, ctrl->buff, (size_t)ctrl->index);
    int rc = rc_procs_on_frame(ps, rec_node(case_nodes, conn), p, len);
    free(p);
    return rc;
}

/* Links, monitors and exits are about their sender's own node: on PEER's
 * connection, one whose sender (or monitor reference) is of another node
 * is refused for the caller to close the connection, as the BEAM does. It
 * leaves nothing behind: no monitor, no link, no exit delivered, no
 * answer, and the named node is never interned (so never dialled). A DOWN
 * for our monitor of PEER's process counts only from PEER. */
static void test_foreign_from_refused(void **state)
{
    fixture *f = *state;
    inbox in = {0};
    rc_proc *p = rc_proc_spawn(f->ps, record, &in, NULL);
    assert_int_equal(rc_proc_register(f->ps, p, "svc"), 0);
    const erlang_pid me_pid = *test_pid(f->ps, p), *me = &me_pid;
    erlang_pid other = remote_pid(21);
    strcpy(other.node, "other@h");
    erlang_pid w = remote_pid(22);
    erlang_ref r_other = remote_ref(3);
    strcpy(r_other.node, "other@h");
    erlang_ref r = remote_ref(4);
    ei_x_buff c;
    ei_x_new(&c);
    int refused = 0;

    ctrl_encode_link(&c, CTRL_LINK, &other, me);
    assert_int_equal(feed_on(f->ps, PEER, &c), RC_EBADARG);
    refused++;
    c.index = 0;
    ctrl_encode_monitor(&c, CTRL_MONITOR_P, &other, me, NULL, &r);
    assert_int_equal(feed_on(f->ps, PEER, &c), RC_EBADARG);
    refused++;
    c.index = 0;
    ctrl_encode_monitor(&c, CTRL_MONITOR_P, &w, NULL, "svc", &r_other);
    assert_int_equal(feed_on(f->ps, PEER, &c), RC_EBADARG);
    refused++;
    c.index = 0;
    ctrl_encode_monitor(&c, CTRL_DEMONITOR_P, &other, me, NULL, &r);
    assert_int_equal(feed_on(f->ps, PEER, &c), RC_EBADARG);
    refused++;
    c.index = 0;
    ctrl_encode_exit(&c, CTRL_EXIT2, &other, me, "kill");
    assert_int_equal(feed_on(f->ps, PEER, &c), RC_EBADARG);
    refused++;
    c.index = 0;
    ctrl_encode_unlink_id(&c, CTRL_UNLINK_ID, 9, &other, me);
    assert_int_equal(feed_on(f->ps, PEER, &c), RC_EBADARG);
    refused++;
    assert_int_equal(rc_procs_remote_monitors(f->ps), 0);
    assert_int_equal(in.exits, 0);
    assert_int_equal(f->rec.n, 0);
    assert_int_equal(rc_nodetab_find(f->rec.nodes, "other@h", 7), RC_NODE_NONE);
    assert_int_equal(rc_procs_get_stats(f->ps)->err_foreign_from, (uint64_t)refused);

    /* the same from the right node is taken */
    c.index = 0;
    ctrl_encode_monitor(&c, CTRL_MONITOR_P, &w, NULL, "svc", &r);
    assert_int_equal(feed_on(f->ps, PEER, &c), 0);
    assert_int_equal(rc_procs_remote_monitors(f->ps), 1);

    /* our monitor of a process of PEER ends only by PEER's word */
    erlang_pid target = remote_pid(17);
    erlang_ref mref;
    assert_int_equal(rc_proc_monitor(f->ps, p, &target, NULL, NULL, &mref), 0);
    rec_clear(&f->rec);
    c.index = 0;
    ctrl_encode_monitor_exit(&c, &target, NULL, me, &mref, "killed");
    assert_int_equal(feed_on(f->ps, "third@h", &c), 0);
    assert_int_equal(in.downs, 0);
    assert_int_equal(feed_on(f->ps, PEER, &c), 0);
    assert_int_equal(in.downs, 1);
    ei_x_free(&c);
}

/* Outgoing links: LINK goes out, the linked process's EXIT reaches the
 * handler, and unlinking sends UNLINK_ID (after which an EXIT is stale). */
static void test_outgoing_link(void **state)
{
    fixture *f = *state;
    inbox in = {0};
    rc_proc *p = rc_proc_spawn(f->ps, record, &in, NULL);
    erlang_pid other = remote_pid(18);
    assert_int_equal(rc_proc_link(f->ps, p, &other), 0);
    assert_int_equal(f->rec.n, 1);
    ctrl_msg *m = decode_sent(&f->rec, 0);
    assert_int_equal(m->op, CTRL_LINK);
    assert_int_equal(m->to.num, 18);
    ei_x_buff c;
    ei_x_new(&c);
    ctrl_encode_exit(&c, CTRL_EXIT, &other, test_pid(f->ps, p), "boom");
    feed(f->ps, &c, NULL);
    assert_int_equal(in.exits, 1);
    assert_string_equal(in.last_atom, "boom");
    /* link again, then unlink: UNLINK_ID goes out and a late EXIT is ignored */
    assert_int_equal(rc_proc_link(f->ps, p, &other), 0);
    rc_proc_unlink(f->ps, p, &other);
    assert_int_equal(f->rec.n, 3);
    assert_int_equal(decode_sent(&f->rec, 2)->op, CTRL_UNLINK_ID);
    feed(f->ps, &c, NULL);
    assert_int_equal(in.exits, 1);
    /* not connected: the link is refused */
    f->rec.connected = 0;
    assert_int_equal(rc_proc_link(f->ps, p, &other), -1);
    ei_x_free(&c);
}

/* A call whose request is nested too deep to validate is answered
 * {Tag, {error, badarg}} instead of being dropped in silence. */
static void test_invalid_call_answered_badarg(void **state)
{
    fixture *f = *state;
    inbox in = {0};
    rc_proc *p = rc_proc_spawn(f->ps, record, &in, NULL);
    rc_proc_register(f->ps, p, "svc");
    erlang_pid caller = remote_pid(21);
    erlang_ref tag = remote_ref(77);
    ei_x_buff c, m;
    ei_x_new(&c);
    ei_x_new_with_version(&m);
    ctrl_encode_reg_send(&c, &caller, "svc");
    ei_x_encode_tuple_header(&m, 3);
    ei_x_encode_atom(&m, "$gen_call");
    ei_x_encode_tuple_header(&m, 2);
    ei_x_encode_pid(&m, &caller);
    ei_x_encode_ref(&m, &tag);
    for (int i = 0; i < 2000; i++)
        ei_x_encode_tuple_header(&m, 1);
    ei_x_encode_atom(&m, "x");
    feed_frame(f->ps, &c, &m);
    assert_int_equal(in.msgs, 0); /* never delivered */
    assert_int_equal(rc_procs_get_stats(f->ps)->err_malformed, 1);
    assert_int_equal(f->rec.n, 1);
    ctrl_msg *out = decode_sent(&f->rec, 0);
    assert_int_equal(out->op, CTRL_SEND);
    assert_int_equal(out->to.num, 21);
    int idx = 0, v = 0, arity = 0;
    erlang_ref got;
    char a[MAXATOMLEN];
    assert_int_equal(ei_decode_version(out->msg, &idx, &v), 0);
    assert_int_equal(ei_decode_tuple_header(out->msg, &idx, &arity), 0);
    assert_int_equal(arity, 2);
    assert_int_equal(ei_decode_ref(out->msg, &idx, &got), 0);
    assert_int_equal(got.n[0], 77);
    assert_int_equal(ei_decode_tuple_header(out->msg, &idx, &arity), 0);
    assert_int_equal(ei_decode_atom(out->msg, &idx, a), 0);
    assert_string_equal(a, "error");
    assert_int_equal(ei_decode_atom(out->msg, &idx, a), 0);
    assert_string_equal(a, "badarg");
    ei_x_free(&c);
    ei_x_free(&m);
}

/* A gen_server that answers `ok` and keeps the caller's node as classified. */
static uint32_t served_node;
static void serve_ok(rc_procs *ps, rc_proc *self, const rc_signal *sig)
{
    rc_gen_from from;
    int req = 0;
    if (sig->kind != RC_SIG_MSG || rc_gen_classify(sig, &from, &req) != RC_GEN_CALL)
        return;
    served_node = from.node;
    ei_x_buff x;
    ei_x_new(&x);
    assert_int_equal(rc_gen_reply_begin(&x, &from), 0);
    ei_x_encode_atom(&x, "ok");
    (void)rc_gen_reply_send(ps, self, &from, &x);
    ei_x_free(&x);
}

static void feed_call(fixture *f, const erlang_pid *caller, unsigned tag_n)
{
    erlang_ref tag = remote_ref(tag_n);
    ei_x_buff c, m;
    ei_x_new(&c);
    ei_x_new_with_version(&m);
    ctrl_encode_reg_send(&c, caller, "svc");
    ei_x_encode_tuple_header(&m, 3);
    ei_x_encode_atom(&m, "$gen_call");
    ei_x_encode_tuple_header(&m, 2);
    ei_x_encode_pid(&m, caller);
    ei_x_encode_ref(&m, &tag);
    ei_x_encode_atom(&m, "ping");
    feed_frame(f->ps, &c, &m);
    ei_x_free(&c);
    ei_x_free(&m);
}

/* A call that came on its caller's own connection is answered by that
 * connection's node index; one whose From names another node is answered
 * by that node's name, as the BEAM would. */
static void test_call_answered_on_its_connection(void **state)
{
    fixture *f = *state;
    rc_proc *p = rc_proc_spawn(f->ps, serve_ok, NULL, NULL);
    assert_int_equal(rc_proc_register(f->ps, p, "svc"), 0);
    erlang_pid caller = remote_pid(31);
    feed_call(f, &caller, 5);
    assert_int_equal(served_node, rc_nodetab_find(case_nodes, PEER, strlen(PEER)));
    assert_int_equal(f->rec.n, 1);
    ctrl_msg *out = decode_sent(&f->rec, 0);
    assert_int_equal(out->op, CTRL_SEND);
    assert_int_equal(out->to.num, 31);
    strcpy(caller.node, "other@h");
    feed_call(f, &caller, 6);
    assert_int_equal(served_node, RC_NODE_NONE);
    assert_int_equal(f->rec.n, 1); /* sent to other@h: this recorder takes PEER only */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pids_and_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_answered_on_its_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_monitor_unknown_name_gets_noproc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_monitor_and_link_notified_on_exit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_demonitor_and_unlink_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_to_unknown_gets_noproc_exit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_send_does_not_reenter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_down_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_from_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_monitors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outgoing_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_call_answered_badarg, setup, teardown),
    };
    return cmocka_run_group_tests_name("procs", tests, NULL, NULL);
}
