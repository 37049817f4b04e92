#include "server/names_feed.h"

#include "naming/group_key.h"
#include "proc/gen_server.h"

#include <stdlib.h>
#include <string.h>

#define MOD "names"
#define MAX_SUBSCRIBERS 256u
#define MAX_PER_NODE 8u

typedef struct subscriber {
    erlang_pid pid;
    erlang_ref mon;
} subscriber;

struct rc_names_feed {
    rc_procs *ps;
    rc_proc *self;
    names_table *names;
    subscriber *subs;
    size_t n;
    ei_x_buff x; /* scratch for pushes */
};

static int pid_eq(const erlang_pid *a, const erlang_pid *b)
{
    return a->num == b->num && a->serial == b->serial && a->creation == b->creation &&
           strcmp(a->node, b->node) == 0;
}

static void push(void *ctx, const uint8_t *store, size_t store_len, const uint8_t *sub,
                 size_t sub_len, const uint8_t *enc, size_t enc_len)
{
    rc_names_feed *f = ctx;
    if (f->n == 0)
        return;
    f->x.index = 0;
    if (ei_x_encode_version(&f->x) != 0 || ei_x_encode_tuple_header(&f->x, 3) != 0 ||
        ei_x_encode_atom(&f->x, "$reckon_names") != 0 ||
        group_key_encode(&f->x, store, store_len, sub, sub_len) != 0 ||
        ei_x_append_buf(&f->x, (const char *)enc, (int)enc_len) != 0) {
        LOG_E(rc_procs_logger(f->ps), MOD, "out of memory: a names change is not pushed");
        return;
    }
    for (size_t i = 0; i < f->n; i++)
        (void)rc_proc_send(f->ps, f->self, &f->subs[i].pid, f->x.buff, f->x.index);
}

typedef struct snapshot {
    ei_x_buff *x;
    int failed;
} snapshot;

static void add_entry(void *ctx, const uint8_t *store, size_t store_len, const uint8_t *sub,
                      size_t sub_len, const uint8_t *enc, size_t enc_len)
{
    snapshot *sn = ctx;
    if (sn->failed || ei_x_encode_list_header(sn->x, 1) != 0 ||
        ei_x_encode_tuple_header(sn->x, 2) != 0 ||
        group_key_encode(sn->x, store, store_len, sub, sub_len) != 0 ||
        ei_x_append_buf(sn->x, (const char *)enc, (int)enc_len) != 0)
        sn->failed = 1;
}

/* 0 if pid is (now) a subscriber: of the caller's own node only, so no
 * peer can point pushes at a third node. */
static int add_subscriber(rc_names_feed *f, const erlang_pid *pid, const erlang_pid *caller)
{
    size_t same_node = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (pid_eq(&f->subs[i].pid, pid))
            return 0; /* again (e.g. after a lost answer): one more copy of the table */
        same_node += strcmp(f->subs[i].pid.node, pid->node) == 0;
    }
    if (f->n >= MAX_SUBSCRIBERS || same_node >= MAX_PER_NODE ||
        strcmp(pid->node, caller->node) != 0 || rc_procs_is_local(f->ps, pid))
        return -1;
    subscriber *s = realloc(f->subs, (f->n + 1) * sizeof *s);
    if (s == NULL)
        return -1;
    f->subs = s;
    s[f->n].pid = *pid;
    if (rc_proc_monitor(f->ps, f->self, pid, NULL, NULL, &s[f->n].mon) != 0)
        return -1;
    f->n++;
    return 0;
}

/* {ok, Table} | {error, system_limit} into x (after the reply's head). */
static int subscribe(rc_names_feed *f, const erlang_pid *pid, const erlang_pid *caller,
                     ei_x_buff *x)
{
    if (add_subscriber(f, pid, caller) != 0)
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
        if (f->subs[i].mon.len == ref->len && f->subs[i].mon.creation == ref->creation &&
            memcmp(f->subs[i].mon.n, ref->n, sizeof(unsigned) * (size_t)ref->len) == 0) {
            f->subs[i] = f->subs[--f->n];
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
    if (rc_gen_classify(sig->buf, sig->len, &from, &idx) != RC_GEN_CALL)
        return;
    ei_x_buff x;
    if (ei_x_new(&x) != 0)
        return;
    char tag[MAXATOMLEN];
    erlang_pid pid;
    if (rc_gen_reply_begin(&x, &from) == 0) {
        int mark = x.index;
        int rc;
        if (ei_decode_tuple_header(sig->buf, &idx, &arity) == 0 && arity == 2 &&
            ei_decode_atom(sig->buf, &idx, tag) == 0 && strcmp(tag, "subscribe") == 0 &&
            ei_decode_pid(sig->buf, &idx, &pid) == 0)
            rc = subscribe(f, &pid, &from.pid, &x);
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

rc_names_feed *rc_names_feed_start(rc_procs *ps, names_table *names)
{
    rc_names_feed *f = calloc(1, sizeof *f);
    if (f == NULL || ei_x_new(&f->x) != 0) {
        free(f);
        return NULL;
    }
    f->ps = ps;
    f->names = names;
    f->self = rc_proc_spawn_registered(ps, on_signal, f, NULL, "reckon_cnode_names");
    if (f->self == NULL) {
        ei_x_free(&f->x);
        free(f);
        return NULL;
    }
    names_table_set_listener(names, push, f);
    return f;
}

size_t rc_names_feed_subscribers(const rc_names_feed *f) { return f ? f->n : 0; }

void rc_names_feed_free(rc_names_feed *f)
{
    if (f == NULL)
        return;
    names_table_set_listener(f->names, NULL, NULL);
    ei_x_free(&f->x);
    free(f->subs);
    free(f);
}
