/* The request server's process and its table of operations; the
 * operations themselves are in req_naming.c, req_pg.c and req_pools.c
 * (request_internal.h). */
#include "server/request_internal.h"

#include "codec/decimal.h"
#include "codec/term_read.h"

#include <stdlib.h>
#include <string.h>

struct later_reply {
    rc_request_server *rs;
    erlang_pid caller;
    uint32_t node;
    char *tag;
    int tag_len;
};

void rc_request_server_set_emitters(rc_request_server *rs, rc_emitters *e, rc_bcast *b)
{
    rs->emitters = e;
    rs->bcast = b;
}


void rc_request_server_set_scopes(rc_request_server *rs, rc_pg_scope *const *scopes, size_t n,
                                  rc_nodetab *nodes)
{
    rs->scopes = scopes;
    rs->nscopes = n;
    rs->nodes = nodes;
}

int rqs_encode_error(ei_x_buff *x, const char *reason)
{
    if (ei_x_encode_tuple_header(x, 2) != 0 || ei_x_encode_atom(x, "error") != 0)
        return -1;
    return ei_x_encode_atom(x, reason);
}

int rqs_encode_ok_header(ei_x_buff *x)
{
    if (ei_x_encode_tuple_header(x, 2) != 0)
        return -1;
    return ei_x_encode_atom(x, "ok");
}

int rqs_encode_naming_error(ei_x_buff *x, int st) { return rqs_encode_error(x, rc_err_atom(st)); }

int rqs_encode_storage_error(ei_x_buff *x, const char *cause)
{
    return ei_x_encode_tuple_header(x, 2) || ei_x_encode_atom(x, "error") ||
           ei_x_encode_tuple_header(x, 2) || ei_x_encode_atom(x, "storage") ||
           ei_x_encode_string(x, cause != NULL ? cause : "unknown");
}

int rqs_read_store_sub(const char *buf, int len, int *idx, req_args *a)
{
    if (term_read_atom(buf, len, idx, &a->store, &a->store_len, a->scratch, sizeof a->scratch) != 0)
        return -1;
    return term_read_binary(buf, len, idx, &a->sub, &a->sub_len);
}

later_reply *rqs_later_new(rc_request_server *rs, const rc_gen_from *from)
{
    later_reply *lr = malloc(sizeof *lr);
    char *tag = malloc(from->tag_len > 0 ? (size_t)from->tag_len : 1);
    if (lr == NULL || tag == NULL) {
        free(lr);
        free(tag);
        return NULL;
    }
    memcpy(tag, from->tag, (size_t)from->tag_len);
    *lr = (later_reply){.rs = rs, .caller = from->pid, .node = from->node, .tag = tag,
                        .tag_len = from->tag_len};
    return lr;
}

void rqs_later_free(later_reply *lr)
{
    free(lr->tag);
    free(lr);
}

/* No sender process: the server may have ended while the write ran. */
void rqs_later_send(later_reply *lr, int (*put)(ei_x_buff *x, const void *arg),
                       const void *arg)
{
    rc_gen_from from = {.pid = lr->caller, .node = lr->node, .tag = lr->tag,
                        .tag_len = lr->tag_len};
    ei_x_buff x;
    if (ei_x_new(&x) == 0) {
        int mark = 0;
        int rc = rc_gen_reply_begin(&x, &from);
        if (rc == 0) {
            mark = x.index;
            if (put(&x, arg) != 0) {
                x.index = mark;
                rc = rqs_encode_error(&x, "system_limit");
            }
        }
        if (rc == 0)
            (void)rc_gen_reply_send(lr->rs->ps, NULL, &from, &x);
        ei_x_free(&x);
    }
    rqs_later_free(lr);
}

#ifdef RC_TEST_HOOKS
#define MAX_IDLE_SPAWN 100000

/* Test hooks, compiled only into the test build of the node
 * (build/test-node/reckon_cnode), never into priv/reckon_cnode: idle C
 * processes for the interop suites to join, monitor and end. Only these can
 * be ended by a request: the node's own processes (services, pg scopes,
 * emitters) cannot be killed from outside into an inconsistent state. */
static const char IDLE_MARK = 0;
static void idle_signal(rc_procs *ps, rc_proc *self, const rc_signal *sig)
{
    (void)ps;
    (void)self;
    (void)sig;
}

static int op_spawn_idle(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    const char *buf = r->buf;
    int len = r->len, idx = r->idx;
    int64_t n = 0;
    int fits = 0;
    char dec[DEC_CAP];
    if (term_read_integer(buf, len, &idx, &n, &fits, dec, sizeof dec) != 0 || !fits || n < 0 ||
        n > MAX_IDLE_SPAWN)
        return rqs_encode_error(x, "badarg");
    if (rqs_encode_ok_header(x) != 0 || (n > 0 && ei_x_encode_list_header(x, (long)n) != 0))
        return -1;
    for (int64_t i = 0; i < n; i++) {
        rc_proc *p = rc_proc_spawn(rs->ps, idle_signal, (void *)&IDLE_MARK, NULL);
        rc_cpid pid;
        if (p != NULL)
            pid = rc_proc_cpid(rs->ps, p);
        if (p == NULL || rc_cpid_write(rs->nodes, x, &pid) != 0)
            return -1;
    }
    return ei_x_encode_empty_list(x);
}

static int op_exit_process(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    const char *buf = r->buf;
    int idx = r->idx;
    erlang_pid pid;
    char reason[MAXATOMLEN];
    if (ei_decode_pid(buf, &idx, &pid) != 0 || ei_decode_atom(buf, &idx, reason) != 0)
        return rqs_encode_error(x, "badarg");
    rc_proc *p = rc_procs_lookup(rs->ps, &pid);
    if (p == NULL || rc_proc_ctx(p) != &IDLE_MARK)
        return rqs_encode_error(x, "noproc");
    rc_proc_exit(rs->ps, p, reason);
    return rqs_encode_ok_header(x) == 0 ? ei_x_encode_atom(x, "ok") : -1;
}
#endif

static int op_ping(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    (void)rs;
    (void)r;
    return rqs_encode_ok_header(x) == 0 ? ei_x_encode_atom(x, "pong") : -1;
}

static int op_stats(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    (void)r;
    if (rs->stats == NULL)
        return rqs_encode_error(x, "badarg");
    if (rqs_encode_ok_header(x) != 0)
        return -1;
    rs->stats(rs->stats_ctx, x);
    return 0;
}

/* Every request the server answers: a bare atom (arity 0) or an {Op,
 * Args...} tuple; the shim's vocabulary first, then pg's own (any scope),
 * then diagnostics. */
static const struct rs_op {
    const char *name;
    int arity;
    rs_op_fn fn;
} OPS[] = {
    /* naming and the emitter-name table (req_naming.c) */
    {"topic", 3, rqs_topic},
    {"emitter_name", 3, rqs_emitter_name},
    {"emitter_name", 4, rqs_emitter_name},
    {"group_key", 3, rqs_group_key},
    {"persist_emitters", 4, rqs_persist},
    {"retrieve_emitters", 3, rqs_retrieve},
    /* emitter groups in the default scope (req_pg.c) */
    {"join", 4, rqs_join},
    {"leave", 4, rqs_leave},
    {"members", 3, rqs_members},
    /* C emitter pools and broadcasts (req_pools.c) */
    {"broadcast", 4, rqs_broadcast},
    {"start_emitter_pool", 5, rqs_start_pool},
    {"start_emitter_pools", 2, rqs_start_pools},
    {"stop_emitter_pool", 3, rqs_stop_pool},
    {"emitter_pool_info", 3, rqs_pool_info},
    /* pg, in any scope the node serves (req_pg.c) */
    {"pg_which_groups", 2, rqs_pg_which_groups},
    {"pg_members", 3, rqs_pg_members},
    {"pg_local_members", 3, rqs_pg_local_members},
    {"pg_join", 4, rqs_pg_join},
    {"pg_leave", 4, rqs_pg_leave},
    {"scope_pid", 2, rqs_scope_pid},
    /* diagnostics */
    {"ping", 0, op_ping},
    {"stats", 0, op_stats},
#ifdef RC_TEST_HOOKS
    /* the test build's hooks */
    {"spawn_idle", 2, op_spawn_idle},
    {"exit_process", 3, op_exit_process},
#endif
};

static int handle_request(rc_request_server *rs, const rc_gen_from *from, const char *buf, int len,
                          int idx, ei_x_buff *x, int *deferred)
{
    int type = 0, size = 0, arity = 0;
    char op[MAXATOMLEN];
    if (ei_get_type(buf, &idx, &type, &size) != 0)
        return rqs_encode_error(x, "badarg");
    if (type == ERL_SMALL_TUPLE_EXT || type == ERL_LARGE_TUPLE_EXT) {
        if (ei_decode_tuple_header(buf, &idx, &arity) != 0 || arity < 1)
            return rqs_encode_error(x, "badarg");
    }
    if (ei_decode_atom(buf, &idx, op) != 0)
        return rqs_encode_error(x, "badarg");
    LOG_D(rc_procs_logger(rs->ps), MOD, "request %s/%d from %s", op, arity, from->pid.node);
    const rs_req r = {.from = from, .buf = buf, .len = len, .idx = idx, .arity = arity,
                      .deferred = deferred};
    for (size_t k = 0; k < sizeof OPS / sizeof OPS[0]; k++)
        if (OPS[k].arity == arity && strcmp(OPS[k].name, op) == 0)
            return OPS[k].fn(rs, &r, x);
    return rqs_encode_error(x, "badarg");
}

static void on_signal(rc_procs *ps, rc_proc *self, const rc_signal *sig)
{
    rc_request_server *rs = rc_proc_ctx(self);
    if (sig->kind != RC_SIG_MSG)
        return; /* a service process outlives exit signals and monitors */
    rc_gen_from from;
    int req = 0;
    if (rc_gen_classify(sig, &from, &req) != RC_GEN_CALL) {
        rs->bad_requests++;
        LOG_D(rc_procs_logger(ps), MOD, "ignored a message that is not a gen_server call");
        return;
    }
    rs->requests++;
    ei_x_buff x;
    if (ei_x_new(&x) != 0)
        return;
    int deferred = 0;
    if (rc_gen_reply_begin(&x, &from) == 0) {
        int mark = x.index;
        if (handle_request(rs, &from, sig->buf, sig->len, req, &x, &deferred) != 0) {
            /* Encoding failed half-way (out of memory): answer something true. */
            x.index = mark;
            (void)rqs_encode_error(&x, "system_limit");
        }
        if (!deferred)
            (void)rc_gen_reply_send(ps, self, &from, &x);
    }
    ei_x_free(&x);
}

rc_request_server *rc_request_server_start(rc_procs *ps, names_table *names,
                                           names_persist *persist, rc_stats_fn stats,
                                           void *stats_ctx)
{
    rc_request_server *rs = calloc(1, sizeof *rs);
    if (rs == NULL)
        return NULL;
    rs->persist = persist;
    rs->ps = ps;
    rs->names = names;
    rs->stats = stats;
    rs->stats_ctx = stats_ctx;
    /* The server struct outlives its process: writes still queued may
     * complete while the node stops and answer through it;
     * rc_request_server_free releases it. */
    rs->self = rc_proc_spawn_registered(ps, on_signal, rs, NULL, "reckon_cnode");
    if (rs->self == NULL) {
        free(rs);
        return NULL;
    }
    return rs;
}

void rc_request_server_free(rc_request_server *rs) { free(rs); }

uint64_t rc_request_server_count(const rc_request_server *rs) { return rs->requests; }
