/* pg scope: a real rc_pg_scope on a real process layer whose transport is a
 * recorder. Crafted OTP 25 pg messages are fed to the scope's registered
 * name as distribution frames; the test asserts on what the scope sends
 * (decoded back with ctrl_decode and ei), on its view of the groups, on its
 * stats and on the notifications it gives subscribers. */
#include "rec_frame.h"
#include "codec/ctrl.h"
#include "codec/term_norm.h"
#include "pg/pg_scope.h"
#include "proc/procs.h"
#include "proc_pid.h"

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
#define PEER3 "beam3@h"
#define SCOPE "test_scope"
#define MY_CREATION 77
#define MAX_EV 64

/* ------------------------------------------------------------ recorder */

static int rec_send(void *ctx, uint32_t to, const struct iovec *parts, int nparts)
{
    recorder *r = ctx;
    const char *node = rc_nodetab_name(r->nodes, to);
    assert_non_null(node);
    if (rec_frame_has_msg(parts, nparts) && strcmp(node, r->refuse_msgs_to) == 0)
        return -1;
    assert_int_equal(rec_put(r, node, parts, nparts), 0);
    return 0;
}

/* ------------------------------------------------------------ terms */

/* An encoded term without version byte (a group, or a canonical key). */
typedef struct term {
    char b[512];
    int n;
} term;

static term t_atom(const char *a)
{
    term t;
    memset(&t, 0, sizeof t);
    assert_int_equal(ei_encode_atom(t.b, &t.n, a), 0);
    return t;
}

static term t_bytes(const void *b, size_t n)
{
    term t;
    memset(&t, 0, sizeof t);
    assert_true(n <= sizeof t.b);
    memcpy(t.b, b, n);
    t.n = (int)n;
    return t;
}

/* Canonical key of a group term, as rc_pg_members wants it. */
static term key_of(const term *g)
{
    ei_x_buff x;
    ei_x_new(&x);
    assert_int_equal(rc_pg_group_key(g->b, g->n, &x), 0);
    term k = t_bytes(x.buff, (size_t)x.index);
    ei_x_free(&x);
    return k;
}

static erlang_pid epid(const char *node, unsigned num, unsigned creation)
{
    erlang_pid p;
    memset(&p, 0, sizeof p);
    strcpy(p.node, node);
    p.num = num;
    p.serial = num % 3;
    p.creation = creation;
    return p;
}

static int epid_eq(const erlang_pid *a, const erlang_pid *b)
{
    return strcmp(a->node, b->node) == 0 && a->num == b->num && a->serial == b->serial &&
           a->creation == b->creation;
}

static size_t mult(const rc_cpid *v, size_t n, const rc_cpid *p)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += rc_cpid_eq(&v[i], p);
    return c;
}

/* Same pids with the same multiplicities, in any order. */
static void assert_same_pids(const rc_cpid *a, size_t na, const rc_cpid *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
        assert_int_equal(mult(a, na, &a[i]), mult(b, nb, &a[i]));
}

/* ------------------------------------------------------------ fixture */

typedef struct evrec {
    rc_pg_event ev;
    term key;
    rc_cpid pids[16];
    size_t n;
} evrec;

typedef struct evlog {
    evrec e[MAX_EV];
    int n;
} evlog;

typedef struct fx {
    uv_loop_t loop;
    recorder rec;
    rc_procs *ps;
    rc_nodetab *nodes;
    rc_pg_scope *s;
    erlang_pid self_e; /* the scope's pid */
    rc_cpid self;
    erlang_pid peer, peer2, peer3; /* the BEAM scopes */
    /* The connection the next message comes on; NULL: that of the node
     * whose scope the message speaks for, as a real peer sends it. */
    const char *via;
    evlog ev;
} fx;

static void exit_hook(void *ctx, const rc_cpid *pid) { rc_pg_scope_proc_exit(ctx, pid); }

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->nodes = rc_nodetab_new();
    assert_non_null(f->nodes);
    assert_int_equal(rc_nodetab_intern(f->nodes, ME, strlen(ME)), 0);
    f->rec.nodes = f->nodes;
    rc_procs_transport tr = {.ctx = &f->rec, .sendv = rec_send};
    f->ps = rc_procs_new(NULL, &tr, f->nodes, ME, MY_CREATION);
    assert_non_null(f->ps);
    f->s = rc_pg_scope_start(&f->loop, NULL, f->ps, f->nodes, SCOPE);
    assert_non_null(f->s);
    rc_procs_set_exit_hook(f->ps, exit_hook, f->s);
    rc_proc *sp = rc_procs_whereis(f->ps, SCOPE);
    assert_non_null(sp);
    f->self_e = *test_pid(f->ps, sp);
    assert_int_equal(rc_pg_scope_pid(f->s, &f->self), 0);
    assert_int_equal(f->self.node, 0);
    assert_int_equal(rc_pg_self_node(f->s), 0);
    assert_int_equal(f->self.num, f->self_e.num);
    assert_string_equal(rc_pg_scope_name(f->s), SCOPE);
    f->peer = epid(PEER, 100, 5);
    f->peer2 = epid(PEER2, 200, 6);
    f->peer3 = epid(PEER3, 300, 7);
    assert_int_equal(f->rec.n, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    rc_pg_scope_shutdown(f->s); /* idempotent: some tests already did */
    uv_run(&f->loop, UV_RUN_NOWAIT); /* finishes closing the timer */
    rc_procs_set_exit_hook(f->ps, NULL, NULL);
    rc_pg_scope_free(f->s);
    rc_procs_free(f->ps);
    rc_nodetab_free(f->nodes);
    rec_clear(&f->rec);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static rc_cpid cp(fx *f, const erlang_pid *p)
{
    rc_cpid c;
    assert_int_equal(rc_cpid_from_ei(f->nodes, p, &c), 0);
    return c;
}

static void noop_handler(rc_procs *ps, rc_proc *self, const rc_signal *sig)
{
    (void)ps;
    (void)self;
    (void)sig;
}

static rc_proc *spawn_local(fx *f)
{
    rc_proc *p = rc_proc_spawn(f->ps, noop_handler, NULL, NULL);
    assert_non_null(p);
    return p;
}

static rc_cpid lcp(fx *f, rc_proc *p) { return cp(f, test_pid(f->ps, p)); }

/* ------------------------------------------------------------ feeding */

/* The node of the scope pid a pg message speaks for ({Tag, Pid, ...} or
 * {'$gen_cast', {sync, Pid, _}}), or PEER if it names none. */
static const char *claimed_node(const char *msg0, int mlen, char *node)
{
    /* libei reads without a length: a malformed message is decoded from a
     * zero-padded copy, so it never reads what the test did not write */
    char *msg = calloc((size_t)mlen + 4096, 1);
    assert_non_null(msg);
    memcpy(msg, msg0, (size_t)mlen);
    int i = 0, v = 0, a = 0;
    char tag[MAXATOMLEN];
    erlang_pid p;
    const char *claimed = PEER;
    if (ei_decode_version(msg, &i, &v) == 0 && ei_decode_tuple_header(msg, &i, &a) == 0 &&
        ei_decode_atom(msg, &i, tag) == 0 &&
        (strcmp(tag, "$gen_cast") != 0 ||
         (ei_decode_tuple_header(msg, &i, &a) == 0 && ei_decode_atom(msg, &i, tag) == 0)) &&
        ei_decode_pid(msg, &i, &p) == 0 && i <= mlen) {
        strcpy(node, p.node);
        claimed = node;
    }
    free(msg);
    return claimed;
}

/* Delivers msg (with version byte) to the scope's name as REG_SEND from
 * f->peer, on the connection of f->via or else of the node it speaks for. */
static void feed_bytes(fx *f, const char *msg, int mlen)
{
    char claimed[MAXATOMLEN_UTF8];
    const char *conn = f->via != NULL ? f->via : claimed_node(msg, mlen, claimed);
    ei_x_buff c;
    ei_x_new(&c);
    assert_int_equal(ctrl_encode_reg_send(&c, &f->peer, SCOPE), 0);
    size_t len = 1 + (size_t)c.index + (size_t)mlen;
    char *p = malloc(len);
    assert_non_null(p);
    p[0] = (char)CTRL_PASS_THROUGH;
    memcpy(p + 1, c.buff, (size_t)c.index);
    memcpy(p + 1 + c.index, msg, (size_t)mlen);
    rc_procs_on_frame(f->ps, rec_node(f->nodes, conn), p, len);
    free(p);
    ei_x_free(&c);
}

/* Feeds a control message without a message body (a DOWN, say), on the
 * connection of its sender's node unless f->via says otherwise. */
static void feed_ctrl(fx *f, const ei_x_buff *c)
{
    size_t len = 1 + (size_t)c->index;
    char *p = malloc(len);
    assert_non_null(p);
    p[0] = (char)CTRL_PASS_THROUGH;
    memcpy(p + 1, c->buff, (size_t)c->index);
    ctrl_msg m;
    assert_int_equal(ctrl_decode(p, len, &m), 0);
    const char *conn = f->via != NULL ? f->via : m.has_from ? m.from.node : PEER;
    rc_procs_on_frame(f->ps, rec_node(f->nodes, conn), p, len);
    free(p);
}

static void feed(fx *f, ei_x_buff *x)
{
    feed_bytes(f, x->buff, x->index);
    ei_x_free(x);
}

static void m_begin(ei_x_buff *x, int arity, const char *tag)
{
    ei_x_new_with_version(x);
    ei_x_encode_tuple_header(x, arity);
    ei_x_encode_atom(x, tag);
}

static void m_term(ei_x_buff *x, const term *t) { ei_x_append_buf(x, t->b, t->n); }

static void m_pids(ei_x_buff *x, const erlang_pid *pids, int n, int as_list)
{
    if (!as_list) {
        assert_int_equal(n, 1);
        ei_x_encode_pid(x, &pids[0]);
        return;
    }
    if (n > 0) {
        ei_x_encode_list_header(x, n);
        for (int i = 0; i < n; i++)
            ei_x_encode_pid(x, &pids[i]);
    }
    ei_x_encode_empty_list(x);
}

static void send_discover(fx *f, const erlang_pid *from)
{
    ei_x_buff x;
    m_begin(&x, 2, "discover");
    ei_x_encode_pid(&x, from);
    feed(f, &x);
}

static void send_join(fx *f, const erlang_pid *from, const term *g, const erlang_pid *pids, int n,
                      int as_list)
{
    ei_x_buff x;
    m_begin(&x, 4, "join");
    ei_x_encode_pid(&x, from);
    m_term(&x, g);
    m_pids(&x, pids, n, as_list);
    feed(f, &x);
}

static void send_leave(fx *f, const erlang_pid *from, const erlang_pid *pids, int n, int as_list,
                       const term *gs, int ng)
{
    ei_x_buff x;
    m_begin(&x, 4, "leave");
    ei_x_encode_pid(&x, from);
    m_pids(&x, pids, n, as_list);
    if (ng > 0) {
        ei_x_encode_list_header(&x, ng);
        for (int i = 0; i < ng; i++)
            m_term(&x, &gs[i]);
    }
    ei_x_encode_empty_list(&x);
    feed(f, &x);
}

static void sync_begin(ei_x_buff *x, const erlang_pid *from)
{
    m_begin(x, 2, "$gen_cast");
    ei_x_encode_tuple_header(x, 3);
    ei_x_encode_atom(x, "sync");
    ei_x_encode_pid(x, from);
}

/* {'$gen_cast', {sync, From, [{G_i, [counts[i] pids]}]}}, pids consecutive. */
static void send_sync(fx *f, const erlang_pid *from, const term *gs, const int *counts, int ng,
                      const erlang_pid *pids)
{
    ei_x_buff x;
    sync_begin(&x, from);
    if (ng > 0)
        ei_x_encode_list_header(&x, ng);
    int k = 0;
    for (int i = 0; i < ng; i++) {
        ei_x_encode_tuple_header(&x, 2);
        m_term(&x, &gs[i]);
        m_pids(&x, pids + k, counts[i], 1);
        k += counts[i];
    }
    ei_x_encode_empty_list(&x);
    feed(f, &x);
}

/* Discovers a peer and forgets what the scope sent back. */
static void known_peer(fx *f, const erlang_pid *peer)
{
    size_t before = rc_pg_peer_count(f->s);
    send_discover(f, peer);
    assert_int_equal(rc_pg_peer_count(f->s), before + 1);
    rec_clear(&f->rec);
}

/* ------------------------------------------------------------ reading */

static void decode_frame(fx *f, int i, ctrl_msg *m)
{
    assert_true(i >= 0 && i < f->rec.n);
    assert_int_equal(ctrl_decode(f->rec.s[i].payload, f->rec.s[i].len, m), 0);
}

typedef struct rd {
    fx *f;
    const char *b;
    int len, i;
} rd;

/* Opens frame i, which must be a SEND to `to`, at the start of its message. */
static rd open_send(fx *f, int i, const erlang_pid *to)
{
    ctrl_msg m;
    decode_frame(f, i, &m);
    assert_int_equal(m.op, CTRL_SEND);
    assert_string_equal(f->rec.s[i].node, to->node);
    assert_true(epid_eq(&m.to, to));
    assert_non_null(m.msg);
    rd r = {.f = f, .b = m.msg, .len = m.msg_len, .i = 0};
    int v = 0;
    assert_int_equal(ei_decode_version(r.b, &r.i, &v), 0);
    return r;
}

static void rd_tuple(rd *r, int arity)
{
    int a = -1;
    assert_int_equal(ei_decode_tuple_header(r->b, &r->i, &a), 0);
    assert_int_equal(a, arity);
}

static void rd_atom(rd *r, const char *want)
{
    char a[MAXATOMLEN];
    assert_int_equal(ei_decode_atom(r->b, &r->i, a), 0);
    assert_string_equal(a, want);
}

static rc_cpid rd_pid_any(rd *r)
{
    rc_cpid got;
    assert_int_equal(rc_cpid_read(r->f->nodes, r->b, r->len, &r->i, &got), 0);
    return got;
}

static void rd_pid(rd *r, const rc_cpid *want)
{
    rc_cpid got = rd_pid_any(r);
    assert_true(rc_cpid_eq(&got, want));
}

/* A group term, returned in canonical form. */
static term rd_group(rd *r)
{
    ei_x_buff x;
    ei_x_new(&x);
    assert_int_equal(term_norm_encode(r->b, r->len, &r->i, &x), 0);
    term k = t_bytes(x.buff, (size_t)x.index);
    ei_x_free(&x);
    return k;
}

static void rd_key(rd *r, const term *key)
{
    term k = rd_group(r);
    assert_int_equal(k.n, key->n);
    assert_memory_equal(k.b, key->b, (size_t)k.n);
}

/* A proper list of any encoding (LIST_EXT chains included): element count;
 * each element is read by fn. */
static int rd_list(rd *r, void (*fn)(rd *, void *), void *ctx)
{
    int total = 0;
    for (;;) {
        int a = -1;
        assert_int_equal(ei_decode_list_header(r->b, &r->i, &a), 0);
        if (a == 0)
            return total;
        for (int k = 0; k < a; k++)
            fn(r, ctx);
        total += a;
    }
}

typedef struct pidbuf {
    rc_cpid v[64];
    size_t n;
} pidbuf;

static void rd_pid_into(rd *r, void *ctx)
{
    pidbuf *pb = ctx;
    assert_true(pb->n < 64);
    pb->v[pb->n++] = rd_pid_any(r);
}

/* A pid or a list of pids. */
static pidbuf rd_pids(rd *r, int *was_list)
{
    pidbuf pb;
    memset(&pb, 0, sizeof pb);
    int type = 0, size = 0;
    assert_int_equal(ei_get_type(r->b, &r->i, &type, &size), 0);
    if (type == ERL_NEW_PID_EXT || type == ERL_PID_EXT) {
        *was_list = 0;
        rd_pid_into(r, &pb);
    } else {
        *was_list = 1;
        rd_list(r, rd_pid_into, &pb);
    }
    return pb;
}

typedef struct keybuf {
    term k[16];
    int n;
} keybuf;

static void rd_group_into(rd *r, void *ctx)
{
    keybuf *kb = ctx;
    assert_true(kb->n < 16);
    kb->k[kb->n++] = rd_group(r);
}

static int key_eq(const term *a, const term *b)
{
    return a->n == b->n && memcmp(a->b, b->b, (size_t)a->n) == 0;
}

static int key_mult(const keybuf *kb, const term *k)
{
    int c = 0;
    for (int i = 0; i < kb->n; i++)
        c += key_eq(&kb->k[i], k);
    return c;
}

static void rd_end(rd *r) { assert_int_equal(r->i, r->len); }

/* Kinds of frames the scope sends. */
enum { K_OTHER, K_MONITOR, K_SYNC, K_DISCOVER, K_DISCOVER_NAMED, K_JOIN, K_LEAVE };

static int frame_kind(fx *f, int i)
{
    ctrl_msg m;
    decode_frame(f, i, &m);
    if (m.op == CTRL_MONITOR_P)
        return K_MONITOR;
    if (m.op == CTRL_REG_SEND)
        return K_DISCOVER_NAMED;
    if (m.op != CTRL_SEND || m.msg == NULL)
        return K_OTHER;
    int idx = 0, v = 0, a = 0;
    char tag[MAXATOMLEN];
    if (ei_decode_version(m.msg, &idx, &v) != 0 || ei_decode_tuple_header(m.msg, &idx, &a) != 0 ||
        a < 1 || ei_decode_atom(m.msg, &idx, tag) != 0)
        return K_OTHER;
    if (strcmp(tag, "$gen_cast") == 0)
        return K_SYNC;
    if (strcmp(tag, "discover") == 0)
        return K_DISCOVER;
    if (strcmp(tag, "join") == 0)
        return K_JOIN;
    if (strcmp(tag, "leave") == 0)
        return K_LEAVE;
    return K_OTHER;
}

static int find_kind(fx *f, int kind, const char *node)
{
    int at = -1;
    for (int i = 0; i < f->rec.n; i++) {
        if (frame_kind(f, i) == kind && strcmp(f->rec.s[i].node, node) == 0) {
            assert_int_equal(at, -1); /* exactly one */
            at = i;
        }
    }
    assert_true(at >= 0);
    return at;
}

/* Frame i is {discover, Self} to `to`. */
static void check_discover(fx *f, int i, const erlang_pid *to)
{
    rd r = open_send(f, i, to);
    rd_tuple(&r, 2);
    rd_atom(&r, "discover");
    rd_pid(&r, &f->self);
    rd_end(&r);
}

/* Frame i is MONITOR_P from the scope to `to`; returns its ref. */
static erlang_ref check_monitor(fx *f, int i, const erlang_pid *to)
{
    ctrl_msg m;
    decode_frame(f, i, &m);
    assert_int_equal(m.op, CTRL_MONITOR_P);
    assert_string_equal(f->rec.s[i].node, to->node);
    assert_true(epid_eq(&m.from, &f->self_e));
    assert_false(m.to_is_name);
    assert_true(epid_eq(&m.to, to));
    assert_true(m.has_ref);
    return m.ref;
}

/* A sync as read back: groups and their pids. */
typedef struct syncview {
    term key[16];
    pidbuf pids[16];
    int n;
} syncview;

static void rd_sync_group(rd *r, void *ctx)
{
    syncview *sv = ctx;
    assert_true(sv->n < 16);
    rd_tuple(r, 2);
    sv->key[sv->n] = rd_group(r);
    for (int i = 0; i < sv->n; i++)
        assert_false(key_eq(&sv->key[i], &sv->key[sv->n])); /* each group once */
    memset(&sv->pids[sv->n], 0, sizeof sv->pids[0]);
    rd_list(r, rd_pid_into, &sv->pids[sv->n]);
    assert_true(sv->pids[sv->n].n > 0);
    sv->n++;
}

/* Frame i is {'$gen_cast', {sync, Self, Groups}} to `to`. */
static syncview check_sync(fx *f, int i, const erlang_pid *to)
{
    rd r = open_send(f, i, to);
    rd_tuple(&r, 2);
    rd_atom(&r, "$gen_cast");
    rd_tuple(&r, 3);
    rd_atom(&r, "sync");
    rd_pid(&r, &f->self);
    syncview sv;
    memset(&sv, 0, sizeof sv);
    /* one list header for all groups, not a cons cell per group (a list
     * nested as deep as there are groups defeats bounded walkers) */
    int at = r.i, count = -1;
    assert_int_equal(ei_decode_list_header(r.b, &at, &count), 0);
    rd_list(&r, rd_sync_group, &sv);
    assert_int_equal(count, sv.n);
    rd_end(&r);
    return sv;
}

static const pidbuf *sync_group(const syncview *sv, const term *key)
{
    for (int i = 0; i < sv->n; i++)
        if (key_eq(&sv->key[i], key))
            return &sv->pids[i];
    return NULL;
}

/* Frame i is {join, Self, Group, PidOrPids} to `to`. */
static void check_join(fx *f, int i, const erlang_pid *to, const term *key, const rc_cpid *pids,
                       size_t n)
{
    rd r = open_send(f, i, to);
    rd_tuple(&r, 4);
    rd_atom(&r, "join");
    rd_pid(&r, &f->self);
    rd_key(&r, key);
    int was_list = -1;
    pidbuf pb = rd_pids(&r, &was_list);
    rd_end(&r);
    assert_int_equal(was_list, n != 1); /* one pid goes bare, as pg sends it */
    assert_same_pids(pb.v, pb.n, pids, n);
}

/* Frame i is {leave, Self, PidOrPids, Groups} to `to`. */
static keybuf check_leave(fx *f, int i, const erlang_pid *to, const rc_cpid *pids, size_t n)
{
    rd r = open_send(f, i, to);
    rd_tuple(&r, 4);
    rd_atom(&r, "leave");
    rd_pid(&r, &f->self);
    int was_list = -1;
    pidbuf pb = rd_pids(&r, &was_list);
    assert_int_equal(was_list, n != 1);
    assert_same_pids(pb.v, pb.n, pids, n);
    keybuf kb;
    memset(&kb, 0, sizeof kb);
    rd_list(&r, rd_group_into, &kb);
    rd_end(&r);
    return kb;
}

/* ------------------------------------------------------------ view */

static const rc_cpid *view(fx *f, const term *key, size_t *n)
{
    return rc_pg_members(f->s, (const uint8_t *)key->b, (size_t)key->n, n);
}

static size_t nmembers(fx *f, const term *key)
{
    size_t n = 99;
    const rc_cpid *m = view(f, key, &n);
    if (n == 0)
        assert_null(m);
    return n;
}

static size_t mult_in(fx *f, const term *key, const rc_cpid *p)
{
    size_t n;
    const rc_cpid *m = view(f, key, &n);
    return mult(m, n, p);
}

static void assert_view(fx *f, const term *key, const rc_cpid *pids, size_t n)
{
    size_t got_n;
    const rc_cpid *got = view(f, key, &got_n);
    assert_same_pids(got, got_n, pids, n);
}

static size_t ngroups(fx *f) { return pgm_group_count(rc_pg_table(f->s)); }
static size_t nmemb(fx *f) { return pgm_member_count(rc_pg_table(f->s)); }
static const rc_pg_stats *stats(fx *f) { return rc_pg_get_stats(f->s); }

/* ------------------------------------------------------------ events */

static void on_event(void *ctx, rc_pg_scope *s, rc_pg_event ev, const uint8_t *g, size_t glen,
                     const rc_cpid *pids, size_t n)
{
    fx *f = ctx;
    assert_ptr_equal(s, f->s);
    evlog *l = &f->ev;
    assert_true(l->n < MAX_EV);
    assert_true(n > 0 && n <= 16);
    evrec *e = &l->e[l->n++];
    e->ev = ev;
    e->key = t_bytes(g, glen);
    memcpy(e->pids, pids, n * sizeof *pids);
    e->n = n;
}

/* The event for `key` among events [from, to): exactly one. */
static const evrec *event_for(fx *f, int from, int to, rc_pg_event ev, const term *key)
{
    const evrec *found = NULL;
    for (int i = from; i < to; i++) {
        if (f->ev.e[i].ev == ev && key_eq(&f->ev.e[i].key, key)) {
            assert_null(found);
            found = &f->ev.e[i];
        }
    }
    assert_non_null(found);
    return found;
}

static void check_event(const evrec *e, rc_pg_event ev, const term *key, const rc_cpid *pids,
                        size_t n)
{
    assert_int_equal(e->ev, ev);
    assert_true(key_eq(&e->key, key));
    assert_same_pids(e->pids, e->n, pids, n);
}

/* ================================================================ tests */

/* (1) discover from a new peer: sync, monitor and discover back; from a
 * known peer: only a sync. The OTP 26 3-tuple is a discover too. */
static void test_discover(void **state)
{
    fx *f = *state;
    send_discover(f, &f->peer);
    assert_int_equal(f->rec.n, 3);
    int im = find_kind(f, K_MONITOR, PEER);
    int is = find_kind(f, K_SYNC, PEER);
    int id = find_kind(f, K_DISCOVER, PEER);
    assert_true(is < id); /* pg casts the sync before it discovers back */
    (void)check_monitor(f, im, &f->peer);
    syncview sv = check_sync(f, is, &f->peer);
    assert_int_equal(sv.n, 0);
    check_discover(f, id, &f->peer);
    assert_int_equal(rc_pg_peer_count(f->s), 1);
    assert_int_equal(stats(f)->discovers_in, 1);
    assert_int_equal(stats(f)->discovers_out, 1);
    rec_clear(&f->rec);

    /* again: only a sync */
    send_discover(f, &f->peer);
    assert_int_equal(f->rec.n, 1);
    sv = check_sync(f, 0, &f->peer);
    assert_int_equal(sv.n, 0);
    assert_int_equal(rc_pg_peer_count(f->s), 1);
    assert_int_equal(stats(f)->discovers_in, 2);
    assert_int_equal(stats(f)->discovers_out, 1);
    rec_clear(&f->rec);

    /* {discover, Peer, Extra} from a new peer on another node */
    ei_x_buff x;
    m_begin(&x, 3, "discover");
    ei_x_encode_pid(&x, &f->peer2);
    ei_x_encode_list_header(&x, 1);
    ei_x_encode_atom(&x, "extra");
    ei_x_encode_empty_list(&x);
    feed(f, &x);
    assert_int_equal(f->rec.n, 3);
    im = find_kind(f, K_MONITOR, PEER2);
    is = find_kind(f, K_SYNC, PEER2);
    id = find_kind(f, K_DISCOVER, PEER2);
    assert_true(is < id);
    (void)check_monitor(f, im, &f->peer2);
    assert_int_equal(check_sync(f, is, &f->peer2).n, 0);
    check_discover(f, id, &f->peer2); /* always the 2-tuple */
    assert_int_equal(rc_pg_peer_count(f->s), 2);
    assert_int_equal(stats(f)->discovers_out, 2);
    rec_clear(&f->rec);

    /* the 3-tuple from a known peer: only a sync */
    m_begin(&x, 3, "discover");
    ei_x_encode_pid(&x, &f->peer2);
    ei_x_encode_atom(&x, "extra");
    feed(f, &x);
    assert_int_equal(f->rec.n, 1);
    assert_int_equal(check_sync(f, 0, &f->peer2).n, 0);
    assert_int_equal(rc_pg_peer_count(f->s), 2);
    assert_int_equal(stats(f)->discovers_in, 4);
    rec_clear(&f->rec);

    /* a discover claiming to come from this node is not a peer */
    erlang_pid mine = epid(ME, 4000, MY_CREATION);
    send_discover(f, &mine);
    assert_int_equal(f->rec.n, 0);
    assert_int_equal(rc_pg_peer_count(f->s), 2);
    assert_int_equal(stats(f)->malformed, 0);
}

/* The sync a peer gets lists every local membership (duplicates kept) and
 * no remote one. */
static void test_sync_lists_local_members(void **state)
{
    fx *f = *state;
    term g1 = t_atom("g1"), g2 = t_atom("g2");
    term k1 = key_of(&g1), k2 = key_of(&g2);
    rc_proc *l1 = spawn_local(f), *l2 = spawn_local(f);
    rc_cpid c1 = lcp(f, l1), c2 = lcp(f, l2);
    assert_int_equal(rc_pg_join(f->s, g1.b, g1.n, &c1, 1), 0);
    assert_int_equal(rc_pg_join(f->s, g1.b, g1.n, &c1, 1), 0);
    assert_int_equal(rc_pg_join(f->s, g1.b, g1.n, &c2, 1), 0);
    assert_int_equal(rc_pg_join(f->s, g2.b, g2.n, &c2, 1), 0);
    assert_int_equal(f->rec.n, 0); /* no peers yet: nothing to tell */
    known_peer(f, &f->peer2);
    erlang_pid q1 = epid(PEER2, 1, 6);
    send_join(f, &f->peer2, &g1, &q1, 1, 0);
    assert_int_equal(nmembers(f, &k1), 4);

    send_discover(f, &f->peer);
    assert_int_equal(f->rec.n, 3);
    syncview sv = check_sync(f, find_kind(f, K_SYNC, PEER), &f->peer);
    assert_int_equal(sv.n, 2);
    const pidbuf *p1 = sync_group(&sv, &k1), *p2 = sync_group(&sv, &k2);
    assert_non_null(p1);
    assert_non_null(p2);
    rc_cpid want1[] = {c1, c1, c2};
    assert_same_pids(p1->v, p1->n, want1, 3);
    assert_same_pids(p2->v, p2->n, &c2, 1);
}

/* (2) a sync from a known peer replaces that peer's view, and only its. */
static void test_sync_replaces_view(void **state)
{
    fx *f = *state;
    known_peer(f, &f->peer);
    known_peer(f, &f->peer2);
    term g1 = t_atom("g1"), g2 = t_atom("g2"), g3 = t_atom("g3");
    term k1 = key_of(&g1), k2 = key_of(&g2), k3 = key_of(&g3);
    erlang_pid p[6];
    for (int i = 0; i < 6; i++)
        p[i] = epid(PEER, 10 + (unsigned)i, 5);
    erlang_pid q1 = epid(PEER2, 1, 6);
    rc_cpid c[6];
    for (int i = 0; i < 6; i++)
        c[i] = cp(f, &p[i]);
    rc_cpid cq1 = cp(f, &q1);

    term ga[] = {g1, g2};
    int na[] = {2, 1};
    send_sync(f, &f->peer, ga, na, 2, p); /* g1: p0 p1, g2: p2 */
    assert_view(f, &k1, c, 2);
    assert_view(f, &k2, c + 2, 1);
    assert_int_equal(ngroups(f), 2);
    assert_int_equal(nmemb(f), 3);
    send_join(f, &f->peer2, &g1, &q1, 1, 0);
    assert_int_equal(nmemb(f), 4);

    erlang_pid pb[] = {p[3], p[4], p[4]};
    term gb[] = {g2, g3};
    int nb[] = {1, 2};
    send_sync(f, &f->peer, gb, nb, 2, pb); /* g2: p3, g3: p4 p4 */
    assert_view(f, &k1, &cq1, 1); /* p0 p1 gone; peer2's member kept */
    assert_view(f, &k2, &c[3], 1);
    rc_cpid want3[] = {c[4], c[4]};
    assert_view(f, &k3, want3, 2);
    assert_int_equal(ngroups(f), 3);
    assert_int_equal(nmemb(f), 4);
    assert_int_equal(stats(f)->syncs_in, 2);
    assert_int_equal(rc_pg_peer_count(f->s), 2);

    /* an empty sync empties that peer's view */
    send_sync(f, &f->peer, NULL, NULL, 0, NULL);
    assert_view(f, &k1, &cq1, 1);
    assert_int_equal(nmembers(f, &k2), 0);
    assert_int_equal(nmembers(f, &k3), 0);
    assert_int_equal(ngroups(f), 1);
    assert_int_equal(nmemb(f), 1);
    assert_int_equal(f->rec.n, 0); /* syncs from known peers are not answered */
    assert_int_equal(stats(f)->malformed, 0);
}

/* (2) a sync from an unknown peer is accepted, and answered with ours. */
static void test_sync_from_unknown_peer(void **state)
{
    fx *f = *state;
    term g1 = t_atom("g1"), g5 = t_atom("g5");
    term k1 = key_of(&g1), k5 = key_of(&g5);
    rc_proc *l1 = spawn_local(f);
    rc_cpid c1 = lcp(f, l1);
    assert_int_equal(rc_pg_join(f->s, g1.b, g1.n, &c1, 1), 0);
    erlang_pid p1 = epid(PEER, 11, 5);
    rc_cpid cp1 = cp(f, &p1);
    int n1 = 1;
    send_sync(f, &f->peer, &g5, &n1, 1, &p1);
    assert_int_equal(rc_pg_peer_count(f->s), 1);
    assert_view(f, &k5, &cp1, 1);
    assert_int_equal(f->rec.n, 2);
    (void)check_monitor(f, find_kind(f, K_MONITOR, PEER), &f->peer);
    syncview sv = check_sync(f, find_kind(f, K_SYNC, PEER), &f->peer);
    assert_int_equal(sv.n, 1);
    const pidbuf *pb = sync_group(&sv, &k1);
    assert_non_null(pb);
    assert_same_pids(pb->v, pb->n, &c1, 1);
    assert_int_equal(stats(f)->discovers_out, 0);
    rec_clear(&f->rec);

    /* it is a peer now: its joins count, and ours reach it */
    erlang_pid p2 = epid(PEER, 12, 5);
    send_join(f, &f->peer, &g5, &p2, 1, 0);
    assert_int_equal(nmembers(f, &k5), 2);
    assert_int_equal(f->rec.n, 0);
    assert_int_equal(rc_pg_join(f->s, g1.b, g1.n, &c1, 1), 0);
    assert_int_equal(f->rec.n, 1);
    check_join(f, 0, &f->peer, &k1, &c1, 1);
}

/* (3) join/leave from a known peer, with multiplicity. */
static void test_remote_join_leave(void **state)
{
    fx *f = *state;
    known_peer(f, &f->peer);
    term g1 = t_atom("g1"), g2 = t_atom("g2");
    term k1 = key_of(&g1), k2 = key_of(&g2);
    erlang_pid p1 = epid(PEER, 11, 5), p2 = epid(PEER, 12, 5), p3 = epid(PEER, 13, 5),
               p9 = epid(PEER, 19, 5);
    rc_cpid c1 = cp(f, &p1), c2 = cp(f, &p2), c3 = cp(f, &p3);

    send_join(f, &f->peer, &g1, &p1, 1, 0);
    send_join(f, &f->peer, &g1, &p1, 1, 1); /* the same pid again, as a list */
    erlang_pid p23[] = {p2, p3};
    send_join(f, &f->peer, &g1, p23, 2, 1);
    rc_cpid want[] = {c1, c1, c2, c3};
    assert_view(f, &k1, want, 4);
    assert_int_equal(ngroups(f), 1);
    assert_int_equal(nmemb(f), 4);

    /* leaving once keeps the second membership */
    send_leave(f, &f->peer, &p1, 1, 0, &g1, 1);
    assert_int_equal(mult_in(f, &k1, &c1), 1);
    assert_int_equal(nmemb(f), 3);

    /* several pids, several groups, one of which does not exist */
    erlang_pid p12[] = {p1, p2};
    term gs[] = {g1, g2};
    send_leave(f, &f->peer, p12, 2, 1, gs, 2);
    assert_view(f, &k1, &c3, 1);
    assert_int_equal(nmembers(f, &k2), 0);
    assert_int_equal(ngroups(f), 1);
    assert_int_equal(nmemb(f), 1);

    /* leave of a non-member, of a group we do not have: no-ops */
    send_leave(f, &f->peer, &p9, 1, 0, &g1, 1);
    send_leave(f, &f->peer, &p1, 1, 0, &g1, 1);
    send_leave(f, &f->peer, &p3, 1, 0, &g2, 1);
    assert_view(f, &k1, &c3, 1);
    assert_int_equal(nmemb(f), 1);

    /* the last member leaves: the group goes */
    send_leave(f, &f->peer, &p3, 1, 1, &g1, 1);
    assert_int_equal(nmembers(f, &k1), 0);
    assert_int_equal(ngroups(f), 0);
    assert_int_equal(nmemb(f), 0);

    /* a join with an empty list changes nothing */
    send_join(f, &f->peer, &g2, NULL, 0, 1);
    assert_int_equal(ngroups(f), 0);

    assert_int_equal(stats(f)->joins_in, 4);
    assert_int_equal(stats(f)->leaves_in, 6);
    assert_int_equal(stats(f)->malformed, 0);
    assert_int_equal(stats(f)->ignored_unknown_peer, 0);
    assert_int_equal(f->rec.n, 0); /* remote changes are never answered */
}

/* (3) join/leave from scopes we do not know are ignored and counted. */
static void test_unknown_peer_ignored(void **state)
{
    fx *f = *state;
    term g1 = t_atom("g1");
    term k1 = key_of(&g1);
    erlang_pid p1 = epid(PEER, 11, 5);
    send_join(f, &f->peer, &g1, &p1, 1, 0);
    assert_int_equal(ngroups(f), 0);
    assert_int_equal(stats(f)->ignored_unknown_peer, 1);
    send_leave(f, &f->peer, &p1, 1, 0, &g1, 1);
    assert_int_equal(stats(f)->ignored_unknown_peer, 2);
    assert_int_equal(f->rec.n, 0);

    known_peer(f, &f->peer);
    send_join(f, &f->peer, &g1, &p1, 1, 0);
    assert_int_equal(nmembers(f, &k1), 1);
    /* another pid on the peer's node is not the peer */
    erlang_pid impostor = epid(PEER, 999, 5);
    erlang_pid p2 = epid(PEER, 12, 5);
    send_join(f, &impostor, &g1, &p2, 1, 0);
    send_leave(f, &impostor, &p1, 1, 0, &g1, 1);
    assert_int_equal(nmembers(f, &k1), 1);
    rc_cpid c1 = cp(f, &p1);
    assert_view(f, &k1, &c1, 1);
    assert_int_equal(stats(f)->ignored_unknown_peer, 4);
    assert_int_equal(stats(f)->joins_in, 3);
    assert_int_equal(stats(f)->leaves_in, 2);
    assert_int_equal(stats(f)->malformed, 0);
    assert_int_equal(f->rec.n, 0);
}

/* (3) pids of a node other than the peer's are ignored and counted. */
static void test_foreign_pids(void **state)
{
    fx *f = *state;
    known_peer(f, &f->peer);
    known_peer(f, &f->peer2);
    term g1 = t_atom("g1"), g9 = t_atom("g9");
    term k1 = key_of(&g1), k9 = key_of(&g9);
    erlang_pid q1 = epid(PEER2, 1, 6), q2 = epid(PEER2, 2, 6);
    erlang_pid p1 = epid(PEER, 11, 5), p2 = epid(PEER, 12, 5), p3 = epid(PEER, 13, 5);
    erlang_pid mine = epid(ME, 4000, MY_CREATION);
    rc_cpid cq1 = cp(f, &q1), c1 = cp(f, &p1), c2 = cp(f, &p2), c3 = cp(f, &p3);
    send_join(f, &f->peer2, &g1, &q1, 1, 0);
    assert_int_equal(stats(f)->foreign_pids, 0);

    erlang_pid mix[] = {p1, q2, mine, p2};
    send_join(f, &f->peer, &g1, mix, 4, 1);
    rc_cpid want[] = {cq1, c1, c2};
    assert_view(f, &k1, want, 3);
    assert_int_equal(stats(f)->foreign_pids, 2);

    /* only foreign pids: no group is created */
    send_join(f, &f->peer, &g9, &q2, 1, 0);
    assert_int_equal(nmembers(f, &k9), 0);
    assert_int_equal(ngroups(f), 1);
    assert_int_equal(stats(f)->foreign_pids, 3);

    /* a peer cannot make another node's member leave */
    send_leave(f, &f->peer, &q1, 1, 0, &g1, 1);
    assert_view(f, &k1, want, 3);
    assert_int_equal(stats(f)->foreign_pids, 4);

    /* nor slip one in through a sync */
    erlang_pid sp[] = {p3, q2};
    int n = 2;
    send_sync(f, &f->peer, &g1, &n, 1, sp);
    rc_cpid want2[] = {cq1, c3};
    assert_view(f, &k1, want2, 2);
    assert_int_equal(stats(f)->foreign_pids, 5);
    assert_int_equal(stats(f)->malformed, 0);
    assert_int_equal(f->rec.n, 0);
}

/* (4) group terms are compared as terms, whatever their encoding. */
static void test_group_terms_compared_as_terms(void **state)
{
    fx *f = *state;
    known_peer(f, &f->peer);
    erlang_pid p1 = epid(PEER, 11, 5), p2 = epid(PEER, 12, 5);
    rc_cpid c1 = cp(f, &p1), c2 = cp(f, &p2);

    /* {a, <<"x">>, emitters} */
    static const unsigned char latin1[] = {104, 3, 100, 0, 1, 'a', 109, 0, 0, 0, 1, 'x',
                                           100, 0, 8, 'e', 'm', 'i', 't', 't', 'e', 'r', 's'};
    static const unsigned char utf8_big[] = {104, 3, 118, 0, 1, 'a', 109, 0, 0, 0, 1, 'x',
                                             118, 0, 8, 'e', 'm', 'i', 't', 't', 'e', 'r', 's'};
    static const unsigned char small_utf8[] = {104, 3, 119, 1, 'a', 109, 0, 0, 0, 1, 'x',
                                               119, 8, 'e', 'm', 'i', 't', 't', 'e', 'r', 's'};
    static const unsigned char small_latin1[] = {104, 3, 115, 1, 'a', 109, 0, 0, 0, 1, 'x',
                                                 115, 8, 'e', 'm', 'i', 't', 't', 'e', 'r', 's'};
    term ga = t_bytes(latin1, sizeof latin1), gb = t_bytes(utf8_big, sizeof utf8_big),
         gc = t_bytes(small_utf8, sizeof small_utf8), gd = t_bytes(small_latin1, sizeof small_latin1);
    term k = key_of(&gc);
    term ka = key_of(&ga);
    assert_true(key_eq(&ka, &k));

    send_join(f, &f->peer, &ga, &p1, 1, 0);
    send_join(f, &f->peer, &gb, &p2, 1, 0);
    rc_cpid both[] = {c1, c2};
    assert_view(f, &k, both, 2);
    assert_int_equal(ngroups(f), 1);
    send_leave(f, &f->peer, &p1, 1, 0, &gc, 1);
    assert_view(f, &k, &c2, 1);
    send_leave(f, &f->peer, &p2, 1, 0, &gd, 1);
    assert_int_equal(nmembers(f, &k), 0);
    assert_int_equal(ngroups(f), 0);

    /* {g, 5}: SMALL_INTEGER_EXT vs INTEGER_EXT */
    static const unsigned char i_small[] = {104, 2, 119, 1, 'g', 97, 5};
    static const unsigned char i_big[] = {104, 2, 119, 1, 'g', 98, 0, 0, 0, 5};
    term gs = t_bytes(i_small, sizeof i_small), gi = t_bytes(i_big, sizeof i_big);
    term ki = key_of(&gs);
    send_join(f, &f->peer, &gs, &p1, 1, 0);
    send_join(f, &f->peer, &gi, &p1, 1, 0);
    rc_cpid twice[] = {c1, c1};
    assert_view(f, &ki, twice, 2);
    assert_int_equal(ngroups(f), 1);
    send_leave(f, &f->peer, &p1, 1, 0, &gi, 1);
    assert_view(f, &ki, &c1, 1);
    send_leave(f, &f->peer, &p1, 1, 0, &gs, 1);
    assert_int_equal(ngroups(f), 0);

    /* a latin-1 atom with a non-ASCII character and its UTF-8 twin */
    static const unsigned char e_latin1[] = {100, 0, 1, 0xE9};
    static const unsigned char e_utf8[] = {119, 2, 0xC3, 0xA9};
    term el = t_bytes(e_latin1, sizeof e_latin1), eu = t_bytes(e_utf8, sizeof e_utf8);
    term ke = key_of(&eu);
    send_join(f, &f->peer, &el, &p2, 1, 0);
    assert_view(f, &ke, &c2, 1);
    send_leave(f, &f->peer, &p2, 1, 0, &eu, 1);
    assert_int_equal(ngroups(f), 0);

    /* a sync in one encoding, a leave in another */
    int n = 1;
    send_sync(f, &f->peer, &ga, &n, 1, &p1);
    assert_view(f, &k, &c1, 1);
    send_leave(f, &f->peer, &p1, 1, 1, &gd, 1);
    assert_int_equal(ngroups(f), 0);

    /* local joins and leaves too, and what peers are told is canonical */
    rc_proc *l1 = spawn_local(f);
    rc_cpid cl = lcp(f, l1);
    assert_int_equal(rc_pg_join(f->s, ga.b, ga.n, &cl, 1), 0);
    assert_int_equal(f->rec.n, 1);
    check_join(f, 0, &f->peer, &k, &cl, 1);
    rd r = open_send(f, 0, &f->peer);
    rd_tuple(&r, 4);
    rd_atom(&r, "join");
    rd_pid(&r, &f->self);
    assert_memory_equal(r.b + r.i, k.b, (size_t)k.n); /* the canonical bytes as such */
    rec_clear(&f->rec);
    assert_int_equal(rc_pg_leave(f->s, gb.b, gb.n, &cl, 1), 0);
    assert_int_equal(f->rec.n, 1);
    keybuf kb = check_leave(f, 0, &f->peer, &cl, 1);
    assert_int_equal(kb.n, 1);
    assert_true(key_eq(&kb.k[0], &k));
    assert_int_equal(ngroups(f), 0);
    assert_int_equal(stats(f)->malformed, 0);
}

/* Lists are lists however they are encoded: a chain of LIST_EXT cells
 * (which is how this scope's own sync is written) reads like one LIST_EXT. */
static void test_chained_lists(void **state)
{
    fx *f = *state;
    known_peer(f, &f->peer);
    term g1 = t_atom("g1"), g2 = t_atom("g2");
    term k1 = key_of(&g1), k2 = key_of(&g2);
    erlang_pid p1 = epid(PEER, 11, 5), p2 = epid(PEER, 12, 5), p3 = epid(PEER, 13, 5);
    rc_cpid c1 = cp(f, &p1), c2 = cp(f, &p2), c3 = cp(f, &p3);

    /* {join, Peer, g1, [P1 | [P2]]} */
    ei_x_buff x;
    m_begin(&x, 4, "join");
    ei_x_encode_pid(&x, &f->peer);
    m_term(&x, &g1);
    ei_x_encode_list_header(&x, 1);
    ei_x_encode_pid(&x, &p1);
    ei_x_encode_list_header(&x, 1);
    ei_x_encode_pid(&x, &p2);
    ei_x_encode_empty_list(&x);
    feed(f, &x);
    assert_view(f, &k1, (rc_cpid[]){c1, c2}, 2);

    /* sync [{g1, [P1]} | [{g2, [P2 | [P3]]}]] */
    sync_begin(&x, &f->peer);
    ei_x_encode_list_header(&x, 1);
    ei_x_encode_tuple_header(&x, 2);
    m_term(&x, &g1);
    m_pids(&x, &p1, 1, 1);
    ei_x_encode_list_header(&x, 1);
    ei_x_encode_tuple_header(&x, 2);
    m_term(&x, &g2);
    ei_x_encode_list_header(&x, 1);
    ei_x_encode_pid(&x, &p2);
    ei_x_encode_list_header(&x, 1);
    ei_x_encode_pid(&x, &p3);
    ei_x_encode_empty_list(&x);
    ei_x_encode_empty_list(&x);
    feed(f, &x);
    assert_view(f, &k1, &c1, 1);
    assert_view(f, &k2, (rc_cpid[]){c2, c3}, 2);
    assert_int_equal(nmemb(f), 3);

    /* {leave, Peer, [P1 | [P2]], [g1 | [g2]]} */
    m_begin(&x, 4, "leave");
    ei_x_encode_pid(&x, &f->peer);
    ei_x_encode_list_header(&x, 1);
    ei_x_encode_pid(&x, &p1);
    ei_x_encode_list_header(&x, 1);
    ei_x_encode_pid(&x, &p2);
    ei_x_encode_empty_list(&x);
    ei_x_encode_list_header(&x, 1);
    m_term(&x, &g1);
    ei_x_encode_list_header(&x, 1);
    m_term(&x, &g2);
    ei_x_encode_empty_list(&x);
    feed(f, &x);
    assert_int_equal(nmembers(f, &k1), 0);
    assert_view(f, &k2, &c3, 1);
    assert_int_equal(nmemb(f), 1);
    assert_int_equal(stats(f)->malformed, 0);
    assert_int_equal(f->rec.n, 0);
}

/* (5) malformed messages: ignored and counted, nothing changes, nothing is
 * sent. */
typedef void (*build_fn)(fx *f, ei_x_buff *x);

static void b_atom(fx *f, ei_x_buff *x)
{
    (void)f;
    ei_x_new_with_version(x);
    ei_x_encode_atom(x, "foo");
}
static void b_int(fx *f, ei_x_buff *x)
{
    (void)f;
    ei_x_new_with_version(x);
    ei_x_encode_long(x, 42);
}
static void b_binary(fx *f, ei_x_buff *x)
{
    (void)f;
    ei_x_new_with_version(x);
    ei_x_encode_binary(x, "junk", 4);
}
static void b_empty_tuple(fx *f, ei_x_buff *x)
{
    (void)f;
    ei_x_new_with_version(x);
    ei_x_encode_tuple_header(x, 0);
}
static void b_int_tag(fx *f, ei_x_buff *x)
{
    (void)f;
    ei_x_new_with_version(x);
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_long(x, 1);
    ei_x_encode_long(x, 2);
}
static void b_unknown_tag(fx *f, ei_x_buff *x)
{
    m_begin(x, 2, "hello");
    ei_x_encode_pid(x, &f->peer);
}
static void b_nodeup(fx *f, ei_x_buff *x)
{
    (void)f;
    m_begin(x, 2, "nodeup");
    ei_x_encode_atom(x, PEER);
}
static void b_discover1(fx *f, ei_x_buff *x)
{
    (void)f;
    m_begin(x, 1, "discover");
}
static void b_discover4(fx *f, ei_x_buff *x)
{
    m_begin(x, 4, "discover");
    ei_x_encode_pid(x, &f->peer);
    ei_x_encode_atom(x, "a");
    ei_x_encode_atom(x, "b");
}
static void b_discover_nonpid(fx *f, ei_x_buff *x)
{
    (void)f;
    m_begin(x, 2, "discover");
    ei_x_encode_atom(x, "notapid");
}
static void b_discover_list(fx *f, ei_x_buff *x)
{
    m_begin(x, 2, "discover");
    m_pids(x, &f->peer2, 1, 1);
}
static void b_join3(fx *f, ei_x_buff *x)
{
    m_begin(x, 3, "join");
    ei_x_encode_pid(x, &f->peer);
    ei_x_encode_atom(x, "g1");
}
static void b_join_nonpid_peer(fx *f, ei_x_buff *x)
{
    erlang_pid p = epid(PEER, 12, 5);
    (void)f;
    m_begin(x, 4, "join");
    ei_x_encode_atom(x, "notapid");
    ei_x_encode_atom(x, "g1");
    ei_x_encode_pid(x, &p);
}
static void b_join_nonpid_member(fx *f, ei_x_buff *x)
{
    m_begin(x, 4, "join");
    ei_x_encode_pid(x, &f->peer);
    ei_x_encode_atom(x, "g1");
    ei_x_encode_atom(x, "notapid");
}
static void b_join_bad_in_list(fx *f, ei_x_buff *x)
{
    erlang_pid p = epid(PEER, 12, 5);
    m_begin(x, 4, "join");
    ei_x_encode_pid(x, &f->peer);
    ei_x_encode_atom(x, "g1");
    ei_x_encode_list_header(x, 2);
    ei_x_encode_pid(x, &p);
    ei_x_encode_atom(x, "foo");
    ei_x_encode_empty_list(x);
}
static void b_join_improper(fx *f, ei_x_buff *x)
{
    erlang_pid p = epid(PEER, 12, 5);
    m_begin(x, 4, "join");
    ei_x_encode_pid(x, &f->peer);
    ei_x_encode_atom(x, "g1");
    ei_x_encode_list_header(x, 1);
    ei_x_encode_pid(x, &p);
    ei_x_encode_atom(x, "tail");
}
static void b_leave3(fx *f, ei_x_buff *x)
{
    erlang_pid p = epid(PEER, 11, 5);
    m_begin(x, 3, "leave");
    ei_x_encode_pid(x, &f->peer);
    ei_x_encode_pid(x, &p);
}
static void b_leave_groups_not_list(fx *f, ei_x_buff *x)
{
    erlang_pid p = epid(PEER, 11, 5);
    m_begin(x, 4, "leave");
    ei_x_encode_pid(x, &f->peer);
    ei_x_encode_pid(x, &p);
    ei_x_encode_atom(x, "g1");
}
static void b_leave_nonpid_peer(fx *f, ei_x_buff *x)
{
    erlang_pid p = epid(PEER, 11, 5);
    (void)f;
    m_begin(x, 4, "leave");
    ei_x_encode_long(x, 42);
    ei_x_encode_pid(x, &p);
    ei_x_encode_list_header(x, 1);
    ei_x_encode_atom(x, "g1");
    ei_x_encode_empty_list(x);
}
static void b_leave_nonpid_member(fx *f, ei_x_buff *x)
{
    m_begin(x, 4, "leave");
    ei_x_encode_pid(x, &f->peer);
    ei_x_encode_atom(x, "notapid");
    ei_x_encode_list_header(x, 1);
    ei_x_encode_atom(x, "g1");
    ei_x_encode_empty_list(x);
}
static void b_leave_improper_pids(fx *f, ei_x_buff *x)
{
    erlang_pid p = epid(PEER, 11, 5);
    m_begin(x, 4, "leave");
    ei_x_encode_pid(x, &f->peer);
    ei_x_encode_list_header(x, 1);
    ei_x_encode_pid(x, &p);
    ei_x_encode_atom(x, "tail");
    ei_x_encode_list_header(x, 1);
    ei_x_encode_atom(x, "g1");
    ei_x_encode_empty_list(x);
}
/* {leave, Peer, P1, [g1 | tail]}: g1 holds P1, so applying the first group
 * before noticing the bad tail would change the view. */
static void b_leave_improper_groups(fx *f, ei_x_buff *x)
{
    erlang_pid p = epid(PEER, 11, 5);
    m_begin(x, 4, "leave");
    ei_x_encode_pid(x, &f->peer);
    ei_x_encode_pid(x, &p);
    ei_x_encode_list_header(x, 1);
    ei_x_encode_atom(x, "g1");
    ei_x_encode_atom(x, "tail");
}
static void b_cast_atom(fx *f, ei_x_buff *x)
{
    (void)f;
    m_begin(x, 2, "$gen_cast");
    ei_x_encode_atom(x, "foo");
}
static void b_cast3(fx *f, ei_x_buff *x)
{
    m_begin(x, 3, "$gen_cast");
    ei_x_encode_atom(x, "sync");
    ei_x_encode_pid(x, &f->peer);
}
static void b_cast_sync2(fx *f, ei_x_buff *x)
{
    m_begin(x, 2, "$gen_cast");
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_atom(x, "sync");
    ei_x_encode_pid(x, &f->peer);
}
static void b_cast_other(fx *f, ei_x_buff *x)
{
    m_begin(x, 2, "$gen_cast");
    ei_x_encode_tuple_header(x, 3);
    ei_x_encode_atom(x, "other");
    ei_x_encode_pid(x, &f->peer);
    ei_x_encode_empty_list(x);
}
static void b_sync_nonpid(fx *f, ei_x_buff *x)
{
    (void)f;
    m_begin(x, 2, "$gen_cast");
    ei_x_encode_tuple_header(x, 3);
    ei_x_encode_atom(x, "sync");
    ei_x_encode_atom(x, "notapid");
    ei_x_encode_empty_list(x);
}
static void b_sync_not_list(fx *f, ei_x_buff *x)
{
    sync_begin(x, &f->peer);
    ei_x_encode_atom(x, "notalist");
}
static void b_sync_bad_entry(fx *f, ei_x_buff *x)
{
    sync_begin(x, &f->peer);
    ei_x_encode_list_header(x, 1);
    ei_x_encode_tuple_header(x, 1);
    ei_x_encode_atom(x, "g1");
    ei_x_encode_empty_list(x);
}
/* A good group first, then a bad one: nothing may be applied. */
static void b_sync_bad_second(fx *f, ei_x_buff *x)
{
    erlang_pid p = epid(PEER, 12, 5);
    sync_begin(x, &f->peer);
    ei_x_encode_list_header(x, 2);
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_atom(x, "g2");
    m_pids(x, &p, 1, 1);
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_atom(x, "g3");
    ei_x_encode_list_header(x, 1);
    ei_x_encode_atom(x, "foo");
    ei_x_encode_empty_list(x);
    ei_x_encode_empty_list(x);
}
static void b_sync_improper(fx *f, ei_x_buff *x)
{
    erlang_pid p = epid(PEER, 12, 5);
    sync_begin(x, &f->peer);
    ei_x_encode_list_header(x, 1);
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_atom(x, "g2");
    m_pids(x, &p, 1, 1);
    ei_x_encode_atom(x, "tail");
}
/* A malformed sync from a scope we do not know must not make it a peer. */
static void b_sync_unknown_not_list(fx *f, ei_x_buff *x)
{
    sync_begin(x, &f->peer2);
    ei_x_encode_atom(x, "notalist");
}
static void b_sync_unknown_bad_entry(fx *f, ei_x_buff *x)
{
    sync_begin(x, &f->peer2);
    ei_x_encode_list_header(x, 1);
    ei_x_encode_long(x, 7);
    ei_x_encode_empty_list(x);
}

static void test_malformed(void **state)
{
    fx *f = *state;
    known_peer(f, &f->peer);
    term g1 = t_atom("g1");
    term k1 = key_of(&g1);
    erlang_pid p1 = epid(PEER, 11, 5);
    rc_cpid c1 = cp(f, &p1);
    send_join(f, &f->peer, &g1, &p1, 1, 0);
    assert_view(f, &k1, &c1, 1);

    static const struct {
        const char *what;
        build_fn fn;
    } cases[] = {
        {"atom", b_atom},
        {"integer", b_int},
        {"binary", b_binary},
        {"{}", b_empty_tuple},
        {"{1, 2}", b_int_tag},
        {"unknown tag", b_unknown_tag},
        {"nodeup as a message", b_nodeup},
        {"{discover}", b_discover1},
        {"{discover, P, a, b}", b_discover4},
        {"{discover, notapid}", b_discover_nonpid},
        {"{discover, [P]}", b_discover_list},
        {"{join, P, g1}", b_join3},
        {"join with a non-pid peer", b_join_nonpid_peer},
        {"join with a non-pid member", b_join_nonpid_member},
        {"join with a non-pid in the list", b_join_bad_in_list},
        {"join with an improper list", b_join_improper},
        {"{leave, P, P1}", b_leave3},
        {"leave with groups not a list", b_leave_groups_not_list},
        {"leave with a non-pid peer", b_leave_nonpid_peer},
        {"leave with a non-pid member", b_leave_nonpid_member},
        {"leave with an improper pid list", b_leave_improper_pids},
        {"leave with an improper group list", b_leave_improper_groups},
        {"{'$gen_cast', foo}", b_cast_atom},
        {"{'$gen_cast', sync, P}", b_cast3},
        {"{'$gen_cast', {sync, P}}", b_cast_sync2},
        {"{'$gen_cast', {other, P, []}}", b_cast_other},
        {"sync with a non-pid peer", b_sync_nonpid},
        {"sync with groups not a list", b_sync_not_list},
        {"sync with a bad entry", b_sync_bad_entry},
        {"sync with a bad second group", b_sync_bad_second},
        {"sync with an improper group list", b_sync_improper},
        {"bad sync from an unknown scope", b_sync_unknown_not_list},
        {"bad sync entry from an unknown scope", b_sync_unknown_bad_entry},
    };
    const size_t ncases = sizeof cases / sizeof cases[0];
    rc_pg_stats before = *stats(f);
    const rc_procs_stats *pst = rc_procs_get_stats(f->ps);
    uint64_t procs_malformed = pst->err_malformed;
    for (size_t i = 0; i < ncases; i++) {
        ei_x_buff x;
        cases[i].fn(f, &x);
        feed(f, &x);
        size_t n = 0;
        const rc_cpid *m = view(f, &k1, &n);
        if (stats(f)->malformed != before.malformed + i + 1)
            fail_msg("%s: malformed = %llu, want %llu", cases[i].what,
                     (unsigned long long)stats(f)->malformed,
                     (unsigned long long)(before.malformed + i + 1));
        if (f->rec.n != 0)
            fail_msg("%s: %d frames sent", cases[i].what, f->rec.n);
        if (rc_pg_peer_count(f->s) != 1)
            fail_msg("%s: %zu peers", cases[i].what, rc_pg_peer_count(f->s));
        if (ngroups(f) != 1 || nmemb(f) != 1 || n != 1 || !rc_cpid_eq(&m[0], &c1))
            fail_msg("%s: view changed (%zu groups, %zu members)", cases[i].what, ngroups(f),
                     nmemb(f));
    }
    assert_int_equal(pst->err_malformed, procs_malformed); /* all reached the scope */
    assert_int_equal(stats(f)->ignored_unknown_peer, before.ignored_unknown_peer);
    assert_int_equal(stats(f)->foreign_pids, before.foreign_pids);

    /* bytes that are not a term stop in the process layer */
    static const char junk[] = {(char)131, 104, 4, 100};
    feed_bytes(f, junk, sizeof junk);
    assert_int_equal(pst->err_malformed, procs_malformed + 1);
    assert_int_equal(stats(f)->malformed, before.malformed + ncases);
    assert_int_equal(f->rec.n, 0);
    assert_view(f, &k1, &c1, 1);

    /* and the scope still works */
    erlang_pid p2 = epid(PEER, 12, 5);
    send_join(f, &f->peer, &g1, &p2, 1, 0);
    assert_int_equal(nmembers(f, &k1), 2);
}

/* (6) local joins go to every synced peer, and only to those. */
static void test_local_join(void **state)
{
    fx *f = *state;
    term g1 = t_atom("g1"), g2 = t_atom("g2");
    term k1 = key_of(&g1), k2 = key_of(&g2);
    known_peer(f, &f->peer);
    /* peer2 is found but our sync cannot reach it: it is not synced */
    strcpy(f->rec.refuse_msgs_to, PEER2);
    send_discover(f, &f->peer2);
    assert_int_equal(rc_pg_peer_count(f->s), 2);
    assert_int_equal(f->rec.n, 1);
    (void)check_monitor(f, 0, &f->peer2);
    rec_clear(&f->rec);
    /* peer3's node is up but its scope has not answered yet */
    rc_pg_scope_nodeup(f->s, rec_node(f->nodes, PEER3));
    assert_int_equal(f->rec.n, 1);
    {
        ctrl_msg m;
        decode_frame(f, 0, &m);
        assert_int_equal(m.op, CTRL_REG_SEND);
        assert_string_equal(f->rec.s[0].node, PEER3);
        assert_string_equal(m.to_name, SCOPE);
        assert_true(epid_eq(&m.from, &f->self_e));
        rd r = {.f = f, .b = m.msg, .len = m.msg_len, .i = 0};
        int v;
        assert_int_equal(ei_decode_version(r.b, &r.i, &v), 0);
        rd_tuple(&r, 2);
        rd_atom(&r, "discover");
        rd_pid(&r, &f->self);
        rd_end(&r);
    }
    rec_clear(&f->rec);

    rc_proc *l1 = spawn_local(f), *l2 = spawn_local(f), *l3 = spawn_local(f);
    rc_cpid c1 = lcp(f, l1), c2 = lcp(f, l2), c3 = lcp(f, l3);
    assert_int_equal(rc_pg_join(f->s, g1.b, g1.n, &c1, 1), 0);
    assert_int_equal(f->rec.n, 1);
    check_join(f, 0, &f->peer, &k1, &c1, 1);
    rec_clear(&f->rec);

    rc_cpid c12[] = {c1, c2};
    assert_int_equal(rc_pg_join(f->s, g1.b, g1.n, c12, 2), 0);
    assert_int_equal(f->rec.n, 1);
    check_join(f, 0, &f->peer, &k1, c12, 2);
    rec_clear(&f->rec);
    rc_cpid want[] = {c1, c1, c2};
    assert_view(f, &k1, want, 3);

    /* dead, unknown and remote pids are skipped */
    rc_proc_exit(f->ps, l3, "normal");
    assert_int_equal(f->rec.n, 0);
    erlang_pid ghost_e = epid(ME, 30000, MY_CREATION);
    erlang_pid old_e = *test_pid(f->ps, l2);
    old_e.creation = MY_CREATION + 1; /* an earlier incarnation of the node */
    erlang_pid remote_e = epid(PEER, 11, 5);
    rc_cpid ghost = cp(f, &ghost_e), old = cp(f, &old_e), remote = cp(f, &remote_e);
    assert_int_equal(rc_pg_join(f->s, g2.b, g2.n, &c3, 1), 0);
    assert_int_equal(rc_pg_join(f->s, g2.b, g2.n, &ghost, 1), 0);
    assert_int_equal(rc_pg_join(f->s, g2.b, g2.n, &old, 1), 0);
    assert_int_equal(rc_pg_join(f->s, g2.b, g2.n, &remote, 1), 0);
    assert_int_equal(f->rec.n, 0);
    assert_int_equal(nmembers(f, &k2), 0);
    assert_int_equal(ngroups(f), 1);
    /* in a mix only the live ones join; one live pid goes bare */
    rc_cpid mix[] = {c3, ghost, c2, remote};
    assert_int_equal(rc_pg_join(f->s, g2.b, g2.n, mix, 4), 0);
    assert_int_equal(f->rec.n, 1);
    check_join(f, 0, &f->peer, &k2, &c2, 1);
    assert_view(f, &k2, &c2, 1);
    rec_clear(&f->rec);

    /* a bad group term: -1, nothing joined or rec_sent */
    static const char bad[] = {104, 2, 100};
    assert_int_equal(rc_pg_join(f->s, bad, sizeof bad, &c1, 1), -1);
    char trailing[64];
    memcpy(trailing, g1.b, (size_t)g1.n);
    trailing[g1.n] = 'x';
    assert_int_equal(rc_pg_join(f->s, trailing, g1.n + 1, &c1, 1), -1);
    assert_int_equal(f->rec.n, 0);
    assert_int_equal(nmemb(f), 4);
    assert_int_equal(stats(f)->discovers_out, 2); /* peer and the named one to peer3 */
}

/* (6) local leaves: only for actual members; never for a group the peer
 * does not know we have. */
static void test_local_leave(void **state)
{
    fx *f = *state;
    term g1 = t_atom("g1"), g2 = t_atom("g2"), g3 = t_atom("g3");
    term k1 = key_of(&g1), k2 = key_of(&g2);
    known_peer(f, &f->peer);
    rc_proc *l1 = spawn_local(f), *l2 = spawn_local(f), *l3 = spawn_local(f);
    rc_cpid c1 = lcp(f, l1), c2 = lcp(f, l2), c3 = lcp(f, l3);
    rc_cpid c12[] = {c1, c2};
    assert_int_equal(rc_pg_join(f->s, g1.b, g1.n, c12, 2), 0);
    assert_int_equal(rc_pg_join(f->s, g1.b, g1.n, &c1, 1), 0);
    assert_int_equal(rc_pg_join(f->s, g2.b, g2.n, &c2, 1), 0);
    /* a remote member in g3 */
    erlang_pid p1 = epid(PEER, 11, 5);
    send_join(f, &f->peer, &g3, &p1, 1, 0);
    rec_clear(&f->rec);

    assert_int_equal(rc_pg_leave(f->s, g1.b, g1.n, &c2, 1), 0);
    assert_int_equal(f->rec.n, 1);
    keybuf kb = check_leave(f, 0, &f->peer, &c2, 1);
    assert_int_equal(kb.n, 1);
    assert_true(key_eq(&kb.k[0], &k1));
    rc_cpid want[] = {c1, c1};
    assert_view(f, &k1, want, 2);
    rec_clear(&f->rec);

    /* not (or no longer) a member: nothing is rec_sent */
    assert_int_equal(rc_pg_leave(f->s, g1.b, g1.n, &c2, 1), 0); /* left already */
    assert_int_equal(rc_pg_leave(f->s, g1.b, g1.n, &c3, 1), 0); /* never joined */
    assert_int_equal(rc_pg_leave(f->s, g2.b, g2.n, &c1, 1), 0); /* group exists, not in it */
    assert_int_equal(rc_pg_leave(f->s, g3.b, g3.n, &c1, 1), 0); /* only remote members */
    term nog = t_atom("nosuchgroup");
    assert_int_equal(rc_pg_leave(f->s, nog.b, nog.n, &c1, 1), 0);
    assert_int_equal(f->rec.n, 0);
    assert_view(f, &k1, want, 2);
    term k3 = key_of(&g3);
    assert_int_equal(nmembers(f, &k3), 1);
    static const char bad[] = {104, 2, 100};
    assert_int_equal(rc_pg_leave(f->s, bad, sizeof bad, &c1, 1), -1);
    assert_int_equal(f->rec.n, 0);

    /* of two pids one is a member: the leave names only it */
    rc_cpid c31[] = {c3, c1};
    assert_int_equal(rc_pg_leave(f->s, g1.b, g1.n, c31, 2), 0);
    assert_int_equal(f->rec.n, 1);
    kb = check_leave(f, 0, &f->peer, &c1, 1);
    assert_int_equal(kb.n, 1);
    assert_true(key_eq(&kb.k[0], &k1));
    assert_view(f, &k1, &c1, 1);
    rec_clear(&f->rec);

    /* the same pid twice, a member once: one membership leaves; the leave
     * names the pids as given, as pg's does (peers remove what they have) */
    assert_int_equal(rc_pg_leave(f->s, g1.b, g1.n, (rc_cpid[]){c1, c1}, 2), 0);
    assert_int_equal(f->rec.n, 1);
    kb = check_leave(f, 0, &f->peer, (rc_cpid[]){c1, c1}, 2);
    assert_int_equal(kb.n, 1);
    assert_true(key_eq(&kb.k[0], &k1));
    assert_int_equal(nmembers(f, &k1), 0);
    rec_clear(&f->rec);

    /* joined twice, both leave in one call */
    assert_int_equal(rc_pg_join(f->s, g2.b, g2.n, &c2, 1), 0);
    rec_clear(&f->rec);
    rc_cpid c22[] = {c2, c2};
    assert_int_equal(rc_pg_leave(f->s, g2.b, g2.n, c22, 2), 0);
    assert_int_equal(f->rec.n, 1);
    kb = check_leave(f, 0, &f->peer, c22, 2);
    assert_int_equal(kb.n, 1);
    assert_true(key_eq(&kb.k[0], &k2));
    assert_int_equal(nmembers(f, &k2), 0);
    assert_int_equal(ngroups(f), 1); /* g3, remote */
    assert_int_equal(nmemb(f), 1);
}

/* (6) a local process that ends leaves all its groups in one message. */
static void test_proc_exit(void **state)
{
    fx *f = *state;
    term g1 = t_atom("g1"), g2 = t_atom("g2");
    term k1 = key_of(&g1), k2 = key_of(&g2);
    known_peer(f, &f->peer);
    known_peer(f, &f->peer2);
    rc_proc *l1 = spawn_local(f), *l2 = spawn_local(f), *l3 = spawn_local(f);
    rc_cpid c1 = lcp(f, l1), c2 = lcp(f, l2);
    assert_int_equal(rc_pg_join(f->s, g1.b, g1.n, &c1, 1), 0);
    assert_int_equal(rc_pg_join(f->s, g1.b, g1.n, &c1, 1), 0);
    assert_int_equal(rc_pg_join(f->s, g2.b, g2.n, (rc_cpid[]){c1, c2}, 2), 0);
    rec_clear(&f->rec);

    rc_proc_exit(f->ps, l1, "normal"); /* through the exit hook */
    assert_int_equal(f->rec.n, 2);
    const erlang_pid *peers[] = {&f->peer, &f->peer2};
    for (int i = 0; i < 2; i++) {
        int at = find_kind(f, K_LEAVE, peers[i]->node);
        keybuf kb = check_leave(f, at, peers[i], &c1, 1);
        assert_int_equal(kb.n, 3); /* one entry per join */
        assert_int_equal(key_mult(&kb, &k1), 2);
        assert_int_equal(key_mult(&kb, &k2), 1);
    }
    assert_int_equal(nmembers(f, &k1), 0);
    assert_view(f, &k2, &c2, 1);
    assert_int_equal(ngroups(f), 1);
    rec_clear(&f->rec);

    /* called directly */
    rc_cpid e2 = rc_proc_cpid(f->ps, l2);
    rc_pg_scope_proc_exit(f->s, &e2);
    assert_int_equal(f->rec.n, 2);
    keybuf kb = check_leave(f, find_kind(f, K_LEAVE, PEER), &f->peer, &c2, 1);
    assert_int_equal(kb.n, 1);
    assert_true(key_eq(&kb.k[0], &k2));
    assert_int_equal(ngroups(f), 0);
    rec_clear(&f->rec);
    rc_pg_scope_proc_exit(f->s, &e2); /* not a member any more */
    rc_proc_exit(f->ps, l3, "normal"); /* never was */
    erlang_pid remote_e = epid(PEER, 11, 5);
    rc_cpid remote = cp(f, &remote_e);
    rc_pg_scope_proc_exit(f->s, &remote);
    assert_int_equal(f->rec.n, 0);
    assert_int_equal(nmemb(f), 0);
}

/* (7) the DOWN of a peer's scope drops all its members at once. */
static void test_peer_down(void **state)
{
    fx *f = *state;
    send_discover(f, &f->peer);
    erlang_ref mref = check_monitor(f, find_kind(f, K_MONITOR, PEER), &f->peer);
    rec_clear(&f->rec);
    known_peer(f, &f->peer2);
    term g1 = t_atom("g1"), g2 = t_atom("g2");
    term k1 = key_of(&g1), k2 = key_of(&g2);
    erlang_pid p1 = epid(PEER, 11, 5), p2 = epid(PEER, 12, 5), p3 = epid(PEER, 13, 5);
    erlang_pid q1 = epid(PEER2, 1, 6);
    rc_cpid c1 = cp(f, &p1), c2 = cp(f, &p2), c3 = cp(f, &p3), cq1 = cp(f, &q1);
    send_join(f, &f->peer, &g1, (erlang_pid[]){p1, p2, p1}, 3, 1);
    send_join(f, &f->peer, &g2, &p3, 1, 0);
    send_join(f, &f->peer2, &g1, &q1, 1, 0);
    rc_proc *l1 = spawn_local(f);
    rc_cpid cl = lcp(f, l1);
    assert_int_equal(rc_pg_join(f->s, g2.b, g2.n, &cl, 1), 0);
    rec_clear(&f->rec);
    assert_int_equal(rc_pg_subscribe(f->s, on_event, f), 0);
    assert_int_equal(nmemb(f), 6);

    /* a DOWN for another ref changes nothing */
    ei_x_buff c;
    ei_x_new(&c);
    erlang_ref other = mref;
    other.n[0] ^= 0x5a5a;
    assert_int_equal(ctrl_encode_monitor_exit(&c, &f->peer, NULL, &f->self_e, &other, "noproc"), 0);
    feed_ctrl(f, &c);
    assert_int_equal(nmemb(f), 6);
    assert_int_equal(rc_pg_peer_count(f->s), 2);
    assert_int_equal(f->ev.n, 0);

    c.index = 0;
    assert_int_equal(ctrl_encode_monitor_exit(&c, &f->peer, NULL, &f->self_e, &mref, "killed"), 0);
    feed_ctrl(f, &c);
    ei_x_free(&c);
    assert_int_equal(rc_pg_peer_count(f->s), 1);
    assert_view(f, &k1, &cq1, 1);
    assert_view(f, &k2, &cl, 1);
    assert_int_equal(nmemb(f), 2);
    assert_int_equal(ngroups(f), 2);
    assert_int_equal(f->rec.n, 0);
    assert_int_equal(f->ev.n, 2);
    check_event(event_for(f, 0, 2, RC_PG_LEFT, &k1), RC_PG_LEFT, &k1, (rc_cpid[]){c1, c2, c1}, 3);
    check_event(event_for(f, 0, 2, RC_PG_LEFT, &k2), RC_PG_LEFT, &k2, &c3, 1);

    /* it is unknown now */
    send_join(f, &f->peer, &g1, &p1, 1, 0);
    assert_int_equal(nmemb(f), 2);
    assert_int_equal(stats(f)->ignored_unknown_peer, 1);
    /* our changes go to the remaining peer only */
    assert_int_equal(rc_pg_leave(f->s, g2.b, g2.n, &cl, 1), 0);
    assert_int_equal(f->rec.n, 1);
    (void)check_leave(f, 0, &f->peer2, &cl, 1);
    rec_clear(&f->rec);

    /* it comes back: a fresh discover monitors it again */
    send_discover(f, &f->peer);
    assert_int_equal(f->rec.n, 3);
    (void)find_kind(f, K_MONITOR, PEER);
    (void)find_kind(f, K_DISCOVER, PEER);
    assert_int_equal(rc_pg_peer_count(f->s), 2);
}

/* A subscriber that joins while a departed peer's members are removed (a C
 * API callback may): it hears of each leave after the walk over the
 * table, so its join to the very group being emptied is neither cut off
 * by the walk nor made while the walk holds that group's members. */
typedef struct rejoin {
    fx *f;
    rc_proc *local;
    int lefts, joins;
    int active; /* the scope outlives the test: its shutdown notifies too */
} rejoin;

static void join_on_leave(void *ctx, rc_pg_scope *s, rc_pg_event ev, const uint8_t *g, size_t glen,
                          const rc_cpid *pids, size_t n)
{
    rejoin *r = ctx;
    (void)pids;
    (void)n;
    if (!r->active)
        return;
    if (ev != RC_PG_LEFT) {
        r->joins++;
        return;
    }
    r->lefts++;
    rc_cpid cl = lcp(r->f, r->local);
    assert_int_equal(rc_pg_join(s, (const char *)g, (int)glen, &cl, 1), 0);
}

static void test_subscriber_joins_during_peer_down(void **state)
{
    fx *f = *state;
    send_discover(f, &f->peer);
    erlang_ref mref = check_monitor(f, find_kind(f, K_MONITOR, PEER), &f->peer);
    enum { GROUPS = 300 };
    for (int i = 0; i < GROUPS; i++) {
        char name[32];
        snprintf(name, sizeof name, "g%d", i);
        term g = t_atom(name);
        erlang_pid p = epid(PEER, (unsigned)(100 + i), 5);
        send_join(f, &f->peer, &g, &p, 1, 0);
    }
    assert_int_equal(nmemb(f), GROUPS);
    static rejoin r;
    r = (rejoin){.f = f, .local = spawn_local(f), .active = 1};
    assert_int_equal(rc_pg_subscribe(f->s, join_on_leave, &r), 0);
    ei_x_buff c;
    ei_x_new(&c);
    assert_int_equal(ctrl_encode_monitor_exit(&c, &f->peer, NULL, &f->self_e, &mref, "killed"), 0);
    feed_ctrl(f, &c);
    ei_x_free(&c);
    assert_int_equal(r.lefts, GROUPS);
    assert_int_equal(r.joins, GROUPS);
    assert_int_equal(nmemb(f), GROUPS);
    assert_int_equal(ngroups(f), GROUPS);
    r.active = 0;
}

/* A spoofed discover: a pid of a peer's node that claims to be its scope.
 * It is added as one more peer, and when it turns out dead (DOWN noproc)
 * only it goes: the real scope's members stay, and the real scope stays a
 * peer. At most a few scope pids per node are believed. */
static void test_spoofed_discover(void **state)
{
    fx *f = *state;
    send_discover(f, &f->peer);
    rec_clear(&f->rec);
    term g = t_atom("g");
    term k = key_of(&g);
    erlang_pid p1 = epid(PEER, 11, 5), p2 = epid(PEER, 12, 5);
    rc_cpid c1 = cp(f, &p1), c2 = cp(f, &p2);
    send_join(f, &f->peer, &g, (erlang_pid[]){p1, p2}, 2, 1);
    assert_int_equal(nmemb(f), 2);

    erlang_pid fake = epid(PEER, 999, 5);
    send_discover(f, &fake);
    erlang_ref fref = check_monitor(f, find_kind(f, K_MONITOR, PEER), &fake);
    rec_clear(&f->rec);
    assert_int_equal(rc_pg_peer_count(f->s), 2);
    assert_view(f, &k, (rc_cpid[]){c1, c2}, 2);

    ei_x_buff c;
    ei_x_new(&c);
    assert_int_equal(ctrl_encode_monitor_exit(&c, &fake, NULL, &f->self_e, &fref, "noproc"), 0);
    feed_ctrl(f, &c);
    ei_x_free(&c);
    assert_int_equal(rc_pg_peer_count(f->s), 1);
    assert_view(f, &k, (rc_cpid[]){c1, c2}, 2);
    /* the real scope is still a peer: its joins still count */
    erlang_pid p3 = epid(PEER, 13, 5);
    send_join(f, &f->peer, &g, &p3, 1, 0);
    assert_int_equal(nmemb(f), 3);

    /* a flood of invented scope pids: only a few are believed */
    rec_clear(&f->rec);
    for (unsigned i = 0; i < 20; i++) {
        erlang_pid inv = epid(PEER, 2000 + i, 5);
        send_discover(f, &inv);
        rec_clear(&f->rec);
    }
    assert_true(rc_pg_peer_count(f->s) <= 4);
    assert_int_equal(nmemb(f), 3);
}

/* A peer speaks only for its own node. On PEER's connection, a sync, join,
 * leave or discover in the name of PEER2's scope (even its real pid) changes
 * nothing about PEER2's members and adds no peer; member pids of third
 * nodes never get their node names interned. PEER2's own connection still
 * counts. */
static void test_spoofed_sync(void **state)
{
    fx *f = *state;
    known_peer(f, &f->peer);
    known_peer(f, &f->peer2);
    term g = t_atom("g");
    term k = key_of(&g);
    erlang_pid q[5];
    rc_cpid cq[5];
    for (int i = 0; i < 5; i++) {
        q[i] = epid(PEER2, 1 + (unsigned)i, 6);
        cq[i] = cp(f, &q[i]);
    }
    int five[] = {5};
    send_sync(f, &f->peer2, &g, five, 1, q);
    assert_view(f, &k, cq, 5);
    rec_clear(&f->rec);

    f->via = PEER;
    erlang_pid fakes[] = {epid(PEER2, 901, 6), epid(PEER2, 902, 6)};
    int two[] = {2};
    send_sync(f, &f->peer2, &g, two, 1, fakes);
    assert_view(f, &k, cq, 5);
    send_join(f, &f->peer2, &g, fakes, 2, 1);
    send_leave(f, &f->peer2, q, 5, 1, &g, 1);
    assert_view(f, &k, cq, 5);
    erlang_pid fake_scope = epid(PEER2, 777, 6);
    send_discover(f, &fake_scope);
    assert_int_equal(rc_pg_peer_count(f->s), 2);
    assert_int_equal(f->rec.n, 0); /* no answer, no monitor */
    assert_int_equal(stats(f)->foreign_scope, 4);

    /* PEER's own sync may list pids of any node: only its own count, and
     * the others' node names are not kept */
    erlang_pid mixed[] = {epid(PEER, 50, 5), epid("ghost1@h", 1, 1), epid("ghost2@h", 2, 1)};
    int three[] = {3};
    send_sync(f, &f->peer, &g, three, 1, mixed);
    f->via = NULL;
    rc_cpid c50 = cp(f, &mixed[0]);
    rc_cpid want[] = {cq[0], cq[1], cq[2], cq[3], cq[4], c50};
    assert_view(f, &k, want, 6);
    assert_int_equal(rc_nodetab_find(f->nodes, "ghost1@h", 8), RC_NODE_NONE);
    assert_int_equal(rc_nodetab_find(f->nodes, "ghost2@h", 8), RC_NODE_NONE);
    assert_int_equal(stats(f)->foreign_pids, 2);

    /* on its own connection PEER2 still changes its view */
    send_leave(f, &f->peer2, q, 2, 1, &g, 1);
    rc_cpid left[] = {cq[2], cq[3], cq[4], c50};
    assert_view(f, &k, left, 4);
    assert_int_equal(stats(f)->foreign_scope, 4);
}

/* (7) connection loss: the process layer's noconnection DOWN, then the
 * scope's nodedown; or the nodedown alone. */
static void test_connection_down(void **state)
{
    fx *f = *state;
    known_peer(f, &f->peer);
    known_peer(f, &f->peer2);
    term g1 = t_atom("g1");
    term k1 = key_of(&g1);
    erlang_pid p1 = epid(PEER, 11, 5), q1 = epid(PEER2, 1, 6);
    rc_cpid cq1 = cp(f, &q1);
    send_join(f, &f->peer, &g1, &p1, 1, 0);
    send_join(f, &f->peer2, &g1, &q1, 1, 0);
    assert_int_equal(nmembers(f, &k1), 2);
    assert_int_equal(rc_pg_subscribe(f->s, on_event, f), 0);

    rc_procs_on_down(f->ps, rec_node(f->nodes, PEER));
    assert_int_equal(rc_pg_peer_count(f->s), 1);
    assert_view(f, &k1, &cq1, 1);
    rc_pg_scope_nodedown(f->s, rec_node(f->nodes, PEER));
    assert_int_equal(rc_pg_peer_count(f->s), 1);
    assert_view(f, &k1, &cq1, 1);
    assert_int_equal(f->ev.n, 1);
    assert_int_equal(f->rec.n, 0);

    /* nodedown alone */
    rc_pg_scope_nodedown(f->s, rec_node(f->nodes, PEER2));
    assert_int_equal(rc_pg_peer_count(f->s), 0);
    assert_int_equal(ngroups(f), 0);
    assert_int_equal(nmemb(f), 0);
    assert_int_equal(f->ev.n, 2);
    check_event(&f->ev.e[1], RC_PG_LEFT, &k1, &cq1, 1);
    /* the process layer's DOWN that may follow finds no peer */
    rc_procs_on_down(f->ps, rec_node(f->nodes, PEER2));
    assert_int_equal(f->ev.n, 2);
    assert_int_equal(f->rec.n, 0);
    send_join(f, &f->peer2, &g1, &q1, 1, 0);
    assert_int_equal(ngroups(f), 0);
}

/* (8) shutdown: every local member leaves, explicitly, to every peer. */
static void test_shutdown(void **state)
{
    fx *f = *state;
    term g1 = t_atom("g1"), g2 = t_atom("g2");
    term k1 = key_of(&g1), k2 = key_of(&g2);
    known_peer(f, &f->peer);
    rc_proc *l1 = spawn_local(f), *l2 = spawn_local(f);
    rc_cpid c1 = lcp(f, l1), c2 = lcp(f, l2);
    assert_int_equal(rc_pg_join(f->s, g1.b, g1.n, &c1, 1), 0);
    assert_int_equal(rc_pg_join(f->s, g1.b, g1.n, &c1, 1), 0);
    assert_int_equal(rc_pg_join(f->s, g2.b, g2.n, (rc_cpid[]){c1, c2}, 2), 0);
    erlang_pid p1 = epid(PEER, 11, 5);
    rc_cpid cp1 = cp(f, &p1);
    send_join(f, &f->peer, &g2, &p1, 1, 0);
    rec_clear(&f->rec);

    rc_pg_scope_shutdown(f->s);
    assert_int_equal(f->rec.n, 2);
    int seen1 = 0, seen2 = 0;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(frame_kind(f, i), K_LEAVE);
        rd r = open_send(f, i, &f->peer);
        rd_tuple(&r, 4);
        rd_atom(&r, "leave");
        rd_pid(&r, &f->self);
        rc_cpid who = rd_pid_any(&r);
        keybuf kb;
        memset(&kb, 0, sizeof kb);
        rd_list(&r, rd_group_into, &kb);
        rd_end(&r);
        if (rc_cpid_eq(&who, &c1)) {
            seen1++;
            assert_int_equal(kb.n, 3);
            assert_int_equal(key_mult(&kb, &k1), 2);
            assert_int_equal(key_mult(&kb, &k2), 1);
        } else {
            assert_true(rc_cpid_eq(&who, &c2));
            seen2++;
            assert_int_equal(kb.n, 1);
            assert_int_equal(key_mult(&kb, &k2), 1);
        }
    }
    assert_int_equal(seen1, 1);
    assert_int_equal(seen2, 1);
    assert_view(f, &k2, &cp1, 1); /* remote members stay in the view */
    assert_int_equal(nmemb(f), 1);
    rec_clear(&f->rec);

    /* stopped: no more discovery, a second shutdown is a no-op, and the
     * processes ending later send nothing */
    rc_pg_scope_nodeup(f->s, rec_node(f->nodes, PEER3));
    rc_pg_scope_shutdown(f->s);
    rc_proc_exit(f->ps, l1, "shutdown");
    assert_int_equal(f->rec.n, 0);
}

/* (9) subscribers see every change with the right key and pids. */
static void test_notifications(void **state)
{
    fx *f = *state;
    term g1 = t_atom("g1"), g2 = t_atom("g2"), g3 = t_atom("g3");
    term k1 = key_of(&g1), k2 = key_of(&g2), k3 = key_of(&g3);
    assert_int_equal(rc_pg_subscribe(f->s, on_event, f), 0);
    known_peer(f, &f->peer);
    erlang_pid p1 = epid(PEER, 11, 5), p2 = epid(PEER, 12, 5), p3 = epid(PEER, 13, 5);
    rc_cpid c1 = cp(f, &p1), c2 = cp(f, &p2), c3 = cp(f, &p3);
    assert_int_equal(f->ev.n, 0);

    send_join(f, &f->peer, &g1, &p1, 1, 0);
    assert_int_equal(f->ev.n, 1);
    check_event(&f->ev.e[0], RC_PG_JOINED, &k1, &c1, 1);
    send_join(f, &f->peer, &g1, (erlang_pid[]){p2, p3}, 2, 1);
    assert_int_equal(f->ev.n, 2);
    check_event(&f->ev.e[1], RC_PG_JOINED, &k1, (rc_cpid[]){c2, c3}, 2);
    send_leave(f, &f->peer, &p2, 1, 0, &g1, 1);
    assert_int_equal(f->ev.n, 3);
    check_event(&f->ev.e[2], RC_PG_LEFT, &k1, &c2, 1);
    send_leave(f, &f->peer, &p2, 1, 0, &g1, 1); /* not a member: no event */
    send_leave(f, &f->peer, &p2, 1, 0, &g2, 1);
    assert_int_equal(f->ev.n, 3);
    send_leave(f, &f->peer, (erlang_pid[]){p1, p3}, 2, 1, &g1, 1);
    assert_int_equal(f->ev.n, 5); /* one event per pid that left */
    assert_true(f->ev.e[3].ev == RC_PG_LEFT && f->ev.e[4].ev == RC_PG_LEFT);
    assert_true(key_eq(&f->ev.e[3].key, &k1) && key_eq(&f->ev.e[4].key, &k1));
    rc_cpid left[] = {f->ev.e[3].pids[0], f->ev.e[4].pids[0]};
    assert_int_equal(f->ev.e[3].n + f->ev.e[4].n, 2);
    assert_same_pids(left, 2, (rc_cpid[]){c1, c3}, 2);
    assert_int_equal(ngroups(f), 0);

    /* a sync: joins for its groups; the next sync leaves what it drops */
    int na[] = {2, 1};
    send_sync(f, &f->peer, (term[]){g1, g2}, na, 2, (erlang_pid[]){p1, p2, p3});
    assert_int_equal(f->ev.n, 7);
    check_event(event_for(f, 5, 7, RC_PG_JOINED, &k1), RC_PG_JOINED, &k1, (rc_cpid[]){c1, c2}, 2);
    check_event(event_for(f, 5, 7, RC_PG_JOINED, &k2), RC_PG_JOINED, &k2, &c3, 1);
    int nb = 1;
    send_sync(f, &f->peer, &g3, &nb, 1, &p1);
    assert_int_equal(f->ev.n, 10);
    check_event(event_for(f, 7, 10, RC_PG_LEFT, &k1), RC_PG_LEFT, &k1, (rc_cpid[]){c1, c2}, 2);
    check_event(event_for(f, 7, 10, RC_PG_LEFT, &k2), RC_PG_LEFT, &k2, &c3, 1);
    check_event(event_for(f, 7, 10, RC_PG_JOINED, &k3), RC_PG_JOINED, &k3, &c1, 1);

    /* local changes */
    rc_proc *l1 = spawn_local(f), *l2 = spawn_local(f), *l3 = spawn_local(f);
    rc_cpid cl1 = lcp(f, l1), cl2 = lcp(f, l2), cl3 = lcp(f, l3);
    rc_proc_exit(f->ps, l3, "normal");
    assert_int_equal(f->ev.n, 10);
    assert_int_equal(rc_pg_join(f->s, g2.b, g2.n, (rc_cpid[]){cl1, cl3, cl2}, 3), 0);
    assert_int_equal(f->ev.n, 11);
    check_event(&f->ev.e[10], RC_PG_JOINED, &k2, (rc_cpid[]){cl1, cl2}, 2);
    assert_int_equal(rc_pg_join(f->s, g3.b, g3.n, &cl1, 1), 0);
    assert_int_equal(f->ev.n, 12);
    check_event(&f->ev.e[11], RC_PG_JOINED, &k3, &cl1, 1);
    assert_int_equal(rc_pg_join(f->s, g3.b, g3.n, &cl3, 1), 0); /* dead: no event */
    assert_int_equal(f->ev.n, 12);
    assert_int_equal(rc_pg_leave(f->s, g2.b, g2.n, &cl2, 1), 0);
    assert_int_equal(f->ev.n, 13);
    check_event(&f->ev.e[12], RC_PG_LEFT, &k2, &cl2, 1);
    assert_int_equal(rc_pg_leave(f->s, g2.b, g2.n, &cl2, 1), 0); /* no longer: no event */
    assert_int_equal(rc_pg_leave(f->s, g1.b, g1.n, &cl1, 1), 0);
    assert_int_equal(f->ev.n, 13);
    rc_proc_exit(f->ps, l1, "normal"); /* in g2 and g3 */
    assert_int_equal(f->ev.n, 15);
    check_event(event_for(f, 13, 15, RC_PG_LEFT, &k2), RC_PG_LEFT, &k2, &cl1, 1);
    check_event(event_for(f, 13, 15, RC_PG_LEFT, &k3), RC_PG_LEFT, &k3, &cl1, 1);
    assert_view(f, &k3, &c1, 1);
    assert_int_equal(nmembers(f, &k2), 0);

    /* a second subscriber sees the same; the 17th is refused */
    fx *shadow = calloc(1, sizeof *shadow);
    shadow->s = f->s;
    assert_int_equal(rc_pg_subscribe(f->s, on_event, shadow), 0);
    send_join(f, &f->peer, &g1, &p2, 1, 0);
    assert_int_equal(f->ev.n, 16);
    assert_int_equal(shadow->ev.n, 1);
    check_event(&shadow->ev.e[0], RC_PG_JOINED, &k1, &c2, 1);
    for (int i = 2; i < 16; i++)
        assert_int_equal(rc_pg_subscribe(f->s, on_event, shadow), 0);
    assert_int_equal(rc_pg_subscribe(f->s, on_event, shadow), -1);
    rc_pg_scope_shutdown(f->s); /* before shadow goes away (no locals left: no events) */
    free(shadow);
    assert_int_equal(f->ev.n, 16);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_discover),
        T(test_sync_lists_local_members),
        T(test_sync_replaces_view),
        T(test_sync_from_unknown_peer),
        T(test_remote_join_leave),
        T(test_unknown_peer_ignored),
        T(test_foreign_pids),
        T(test_group_terms_compared_as_terms),
        T(test_chained_lists),
        T(test_malformed),
        T(test_local_join),
        T(test_local_leave),
        T(test_proc_exit),
        T(test_peer_down),
        T(test_subscriber_joins_during_peer_down),
        T(test_spoofed_discover),
        T(test_spoofed_sync),
        T(test_connection_down),
        T(test_shutdown),
        T(test_notifications),
    };
#undef T
    return cmocka_run_group_tests_name("pg_scope", tests, NULL, NULL);
}
