#include "server/names_feed.h"

#include "codec/term_read.h"
#include "naming/group_key.h"
#include "proc/gen_server.h"

#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define MOD "names"
#define MAX_SUBSCRIBERS 256u
#define MAX_PER_NODE 8u
#define TOKEN_MAX 64
/* How often the notices owed to dropped subscribers are tried. */
#define OWED_MS 250

typedef struct subscriber {
    erlang_pid pid;
    erlang_ref mon;
    uint8_t token[TOKEN_MAX]; /* encoded term, no version byte */
    size_t token_len;
    /* Its connection was busy at a push: it gets no more pushes, only the
     * notice that its copy is stale, once the connection can take it. */
    int dropped;
} subscriber;

struct rc_names_feed {
    rc_procs *ps;
    rc_proc *self;
    names_table *names;
    subscriber *subs;
    size_t n;
    size_t owed; /* subscribers dropped, their notice not yet sent */
    uint64_t dropped_total;
    rc_ratelimit drop_lines;
    uv_loop_t *loop;
    uv_timer_t timer;
    int timer_on;
    ei_x_buff x; /* scratch for pushes */
};

/* 131, {'$reckon_names', then the token, the key and the names */
static const uint8_t PUSH_HEAD[] = {131, 104, 4, 119, 13, '$', 'r', 'e', 'c', 'k', 'o', 'n',
                                    '_', 'n', 'a', 'm', 'e', 's'};
/* 131, {'$reckon_names_dropped', then the token */
static const uint8_t DROP_HEAD[] = {131, 104, 2, 119, 21, '$', 'r', 'e', 'c', 'k', 'o', 'n',
                                    '_', 'n', 'a', 'm', 'e', 's', '_', 'd', 'r', 'o', 'p',
                                    'p', 'e', 'd'};
_Static_assert(sizeof PUSH_HEAD == 5 + 13 && sizeof DROP_HEAD == 5 + 21, "atom lengths");

static int pid_eq(const erlang_pid *a, const erlang_pid *b)
{
    return a->num == b->num && a->serial == b->serial && a->creation == b->creation &&
           strcmp(a->node, b->node) == 0;
}

static void remove_at(rc_names_feed *f, size_t i)
{
    if (f->subs[i].dropped)
        f->owed--;
    f->subs[i] = f->subs[--f->n];
}

/* Dropped subscribers whose connection takes data again get the notice
 * (their shim then empties its copy and subscribes afresh) and are let go. */
static void pay_owed(rc_names_feed *f)
{
    for (size_t i = 0; i < f->n && f->owed > 0;) {
        subscriber *s = &f->subs[i];
        if (!s->dropped || rc_proc_dest_busy(f->ps, &s->pid, sizeof DROP_HEAD + s->token_len)) {
            i++;
            continue;
        }
        struct iovec parts[2] = {{.iov_base = (void *)DROP_HEAD, .iov_len = sizeof DROP_HEAD},
                                 {.iov_base = s->token, .iov_len = s->token_len}};
        (void)rc_proc_send_parts(f->ps, f->self, &s->pid, parts, 2);
        rc_proc_demonitor(f->ps, f->self, &s->mon);
        remove_at(f, i);
    }
    if (f->owed == 0 && f->timer_on) {
        uv_timer_stop(&f->timer);
        f->timer_on = 0;
    }
}

static void on_owed_timer(uv_timer_t *t) { pay_owed(t->data); }

/* A push would wait on this subscriber's busy connection, and with it the
 * writer whose persist caused the push: the subscriber is dropped instead. */
static void drop(rc_names_feed *f, subscriber *s)
{
    s->dropped = 1;
    f->owed++;
    f->dropped_total++;
    unsigned left = 0;
    if (rc_ratelimit_allow(&f->drop_lines, uv_now(f->loop), 10000, 5, &left))
        LOG_W(rc_procs_logger(f->ps), MOD, "the copy of the emitter-name table on %s stops "
              "receiving changes: its connection is busy; it refills once the connection "
              "drains%s", s->pid.node, left ? " (more such lines were left out)" : "");
    if (!f->timer_on) {
        uv_timer_start(&f->timer, on_owed_timer, OWED_MS, OWED_MS);
        f->timer_on = 1;
    }
}

static void push(void *ctx, const uint8_t *store, size_t store_len, const uint8_t *sub,
                 size_t sub_len, const uint8_t *enc, size_t enc_len)
{
    rc_names_feed *f = ctx;
    if (f->n == 0)
        return;
    f->x.index = 0;
    if (group_key_encode(&f->x, store, store_len, sub, sub_len) != 0 ||
        ei_x_append_buf(&f->x, (const char *)enc, (int)enc_len) != 0) {
        LOG_E(rc_procs_logger(f->ps), MOD, "out of memory: a names change is not pushed");
        return;
    }
    for (size_t i = 0; i < f->n; i++) {
        subscriber *s = &f->subs[i];
        if (s->dropped)
            continue;
        if (rc_proc_dest_busy(f->ps, &s->pid,
                              sizeof PUSH_HEAD + s->token_len + (size_t)f->x.index)) {
            drop(f, s);
            continue;
        }
        struct iovec parts[3] = {{.iov_base = (void *)PUSH_HEAD, .iov_len = sizeof PUSH_HEAD},
                                 {.iov_base = s->token, .iov_len = s->token_len},
                                 {.iov_base = f->x.buff, .iov_len = (size_t)f->x.index}};
        (void)rc_proc_send_parts(f->ps, f->self, &s->pid, parts, 3);
    }
}

typedef struct snapshot {
    ei_x_buff *x;
    int failed;
} snapshot;

static void add_entry(void *ctx, const uint8_t *store, size_t store_len, const uint8_t *sub,
                      size_t sub_len, const uint8_t *enc, size_t enc_len)
{
    snapshot *sn = ctx;
    if (sn->failed || term_x_reserve(sn->x, store_len * 2 + sub_len + enc_len + 64) != 0 ||
        ei_x_encode_list_header(sn->x, 1) != 0 ||
        ei_x_encode_tuple_header(sn->x, 2) != 0 ||
        group_key_encode(sn->x, store, store_len, sub, sub_len) != 0 ||
        ei_x_append_buf(sn->x, (const char *)enc, (int)enc_len) != 0)
        sn->failed = 1;
}

/* 0 if pid is (now) a subscriber: a process of the node whose connection
 * brought the request (peer), as is the caller, so no peer can point pushes
 * at a third node or take another node's slots. */
static int add_subscriber(rc_names_feed *f, const erlang_pid *pid, const erlang_pid *caller,
                          const char *peer, const uint8_t *token, size_t token_len)
{
    if (peer == NULL || strcmp(pid->node, peer) != 0 || strcmp(caller->node, peer) != 0 ||
        rc_procs_is_local(f->ps, pid))
        return -1;
    size_t same_node = 0;
    for (size_t i = 0; i < f->n; i++) {
        subscriber *s = &f->subs[i];
        if (pid_eq(&s->pid, pid)) {
            /* again (a lost answer, or after a drop): a fresh copy of the
             * table, and the pushes carry the new token */
            memcpy(s->token, token, token_len);
            s->token_len = token_len;
            if (s->dropped) {
                s->dropped = 0;
                f->owed--;
            }
            return 0;
        }
        same_node += strcmp(s->pid.node, pid->node) == 0;
    }
    if (f->n >= MAX_SUBSCRIBERS || same_node >= MAX_PER_NODE)
        return -1;
    subscriber *s = realloc(f->subs, (f->n + 1) * sizeof *s);
    if (s == NULL)
        return -1;
    f->subs = s;
    memset(&s[f->n], 0, sizeof s[f->n]);
    s[f->n].pid = *pid;
    memcpy(s[f->n].token, token, token_len);
    s[f->n].token_len = token_len;
    if (rc_proc_monitor(f->ps, f->self, pid, NULL, NULL, &s[f->n].mon) != 0)
        return -1;
    f->n++;
    return 0;
}

/* {ok, Table} | {error, system_limit} into x (after the reply's head). */
static int subscribe(rc_names_feed *f, const erlang_pid *pid, const erlang_pid *caller,
                     const char *peer, const uint8_t *token, size_t token_len, ei_x_buff *x)
{
    if (add_subscriber(f, pid, caller, peer, token, token_len) != 0)
        return ei_x_encode_tuple_header(x, 2) != 0 || ei_x_encode_atom(x, "error") != 0
                   ? -1
                   : ei_x_encode_atom(x, "system_limit");
    snapshot sn = {.x = x};
    if (ei_x_encode_tuple_header(x, 2) != 0 || ei_x_encode_atom(x, "ok") != 0)
        return -1;
    names_table_foreach(f->names, add_entry, &sn);
    return sn.failed ? -1 : ei_x_encode_empty_list(x);
}

static void forget(rc_names_feed *f, const erlang_ref *ref)
{
    for (size_t i = 0; i < f->n; i++) {
        if (rc_ref_equal(&f->subs[i].mon, ref)) {
            remove_at(f, i);
            return;
        }
    }
}

static void on_signal(rc_procs *ps, rc_proc *self, const rc_signal *sig)
{
    rc_names_feed *f = rc_proc_ctx(self);
    if (sig->kind == RC_SIG_DOWN && sig->ref != NULL) {
        forget(f, sig->ref);
        return;
    }
    if (sig->kind != RC_SIG_MSG)
        return;
    rc_gen_from from;
    int idx = 0, arity = 0;
    if (rc_gen_classify(sig, &from, &idx) != RC_GEN_CALL)
        return;
    ei_x_buff x;
    if (ei_x_new(&x) != 0)
        return;
    char tag[MAXATOMLEN];
    erlang_pid pid;
    if (rc_gen_reply_begin(&x, &from) == 0) {
        int mark = x.index;
        int rc, tok = 0;
        /* {subscribe, Pid, Token}: Token, any small term, comes back in
         * every push, so the subscriber can tell them from forgeries */
        if (ei_decode_tuple_header(sig->buf, &idx, &arity) == 0 && arity == 3 &&
            ei_decode_atom(sig->buf, &idx, tag) == 0 && strcmp(tag, "subscribe") == 0 &&
            ei_decode_pid(sig->buf, &idx, &pid) == 0 && (tok = idx) > 0 &&
            term_skip(sig->buf, sig->len, &idx) == 0 && idx - tok <= TOKEN_MAX)
            rc = subscribe(f, &pid, &from.pid, sig->peer, (const uint8_t *)sig->buf + tok,
                           (size_t)(idx - tok), &x);
        else
            rc = ei_x_encode_tuple_header(&x, 2) || ei_x_encode_atom(&x, "error") ||
                 ei_x_encode_atom(&x, "badarg");
        if (rc != 0) {
            x.index = mark;
            rc = ei_x_encode_tuple_header(&x, 2) || ei_x_encode_atom(&x, "error") ||
                 ei_x_encode_atom(&x, "system_limit");
        }
        if (rc == 0)
            (void)rc_gen_reply_send(ps, self, &from, &x);
    }
    ei_x_free(&x);
}

rc_names_feed *rc_names_feed_start(rc_procs *ps, names_table *names, uv_loop_t *loop)
{
    rc_names_feed *f = calloc(1, sizeof *f);
    if (f == NULL || ei_x_new(&f->x) != 0) {
        free(f);
        return NULL;
    }
    f->ps = ps;
    f->names = names;
    f->loop = loop;
    if (uv_timer_init(loop, &f->timer) != 0) {
        ei_x_free(&f->x);
        free(f);
        return NULL;
    }
    f->timer.data = f;
    f->self = rc_proc_spawn_registered(ps, on_signal, f, NULL, "reckon_cnode_names");
    if (f->self == NULL) {
        ei_x_free(&f->x);
        free(f);
        return NULL;
    }
    names_table_set_listener(names, push, f);
    return f;
}

size_t rc_names_feed_subscribers(const rc_names_feed *f) { return f ? f->n - f->owed : 0; }
uint64_t rc_names_feed_dropped(const rc_names_feed *f) { return f ? f->dropped_total : 0; }

void rc_names_feed_close(rc_names_feed *f)
{
    if (f != NULL && !uv_is_closing((uv_handle_t *)&f->timer))
        uv_close((uv_handle_t *)&f->timer, NULL);
}

void rc_names_feed_free(rc_names_feed *f)
{
    if (f == NULL)
        return;
    names_table_set_listener(f->names, NULL, NULL);
    ei_x_free(&f->x);
    free(f->subs);
    free(f);
}
