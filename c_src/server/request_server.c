#include "server/request_server.h"

#include "codec/decimal.h"
#include "codec/term_read.h"
#include "naming/group_key.h"
#include "naming/naming.h"
#include "proc/gen_server.h"

#include <stdlib.h>
#include <string.h>

#define MOD "request"
#define DEC_CAP 320 /* decimal digits of any N whose name can still fit 255 chars */

/* A reply sent after the request's handler has returned (once a durable
 * write is done): the caller and its tag, copied out of the request. */
typedef struct later_reply {
    rc_request_server *rs;
    erlang_pid caller;
    char *tag;
    int tag_len;
} later_reply;

struct rc_request_server {
    names_persist *persist;
    rc_procs *ps;
    rc_proc *self;
    names_table *names;
    rc_stats_fn stats;
    void *stats_ctx;
    uint64_t requests;
    uint64_t bad_requests;
    rc_pg_scope *const *scopes;
    size_t nscopes;
    rc_nodetab *nodes;
    rc_emitters *emitters;
    rc_bcast *bcast;
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

typedef struct req_args {
    const uint8_t *store;
    size_t store_len;
    const uint8_t *sub;
    size_t sub_len;
    uint8_t scratch[2 * 256];
} req_args;

static int encode_error(ei_x_buff *x, const char *reason)
{
    if (ei_x_encode_tuple_header(x, 2) != 0 || ei_x_encode_atom(x, "error") != 0)
        return -1;
    return ei_x_encode_atom(x, reason);
}

static int encode_ok_header(ei_x_buff *x)
{
    if (ei_x_encode_tuple_header(x, 2) != 0)
        return -1;
    return ei_x_encode_atom(x, "ok");
}

static int encode_naming_error(ei_x_buff *x, int st) { return encode_error(x, rc_err_atom(st)); }

/* Reads Store (atom) and Sub (binary). */
static int read_store_sub(const char *buf, int len, int *idx, req_args *a)
{
    if (term_read_atom(buf, len, idx, &a->store, &a->store_len, a->scratch, sizeof a->scratch) != 0)
        return -1;
    return term_read_binary(buf, len, idx, &a->sub, &a->sub_len);
}

static int do_topic(const char *buf, int len, int idx, ei_x_buff *x)
{
    req_args a;
    if (read_store_sub(buf, len, &idx, &a) != 0)
        return encode_error(x, "badarg");
    size_t need = 0;
    int st = naming_topic_len(a.store, a.store_len, a.sub_len, &need);
    if (st != RC_OK)
        return encode_naming_error(x, st);
    uint8_t stackbuf[1024];
    uint8_t *out = need <= sizeof stackbuf ? stackbuf : malloc(need ? need : 1);
    if (out == NULL)
        return encode_error(x, "system_limit");
    size_t n = 0;
    st = naming_topic(a.store, a.store_len, a.sub, a.sub_len, out, need, &n);
    int rc = st != RC_OK ? encode_naming_error(x, st)
                             : (encode_ok_header(x) == 0 ? ei_x_encode_binary(x, out, (long)n) : -1);
    if (out != stackbuf)
        free(out);
    return rc;
}

static int do_emitter_name(const char *buf, int len, int idx, int arity, ei_x_buff *x)
{
    req_args a;
    char dec[DEC_CAP];
    const char *n_dec = NULL;
    if (read_store_sub(buf, len, &idx, &a) != 0)
        return encode_error(x, "badarg");
    if (arity == 4) {
        int64_t v = 0;
        int fits = 0;
        if (term_read_integer(buf, len, &idx, &v, &fits, dec, sizeof dec) != 0) {
            /* An integer too long for the buffer also makes a name past 255 chars. */
            int t = 0, sz = 0, i2 = idx;
            if (ei_get_type(buf, &i2, &t, &sz) == 0 && (t == ERL_SMALL_BIG_EXT || t == ERL_LARGE_BIG_EXT)) {
                size_t chars = 0;
                int st = naming_store_chars(a.store, a.store_len, &chars);
                return encode_naming_error(x, st != RC_OK ? st : RC_ESYSTEM_LIMIT);
            }
            return encode_error(x, "badarg");
        }
        if (fits && decimal_from_int64(v, dec, sizeof dec) < 0)
            return encode_error(x, "badarg");
        n_dec = dec;
    }
    uint8_t out[NAMING_MAX_ATOM_UTF8];
    size_t n = 0;
    int st = naming_emitter_name(a.store, a.store_len, a.sub, a.sub_len, n_dec, out,
                                           sizeof out, &n);
    if (st != RC_OK)
        return encode_naming_error(x, st);
    if (encode_ok_header(x) != 0)
        return -1;
    return term_write_atom_utf8(x, out, n);
}

static later_reply *later_new(rc_request_server *rs, const rc_gen_from *from)
{
    later_reply *lr = malloc(sizeof *lr);
    char *tag = malloc(from->tag_len > 0 ? (size_t)from->tag_len : 1);
    if (lr == NULL || tag == NULL) {
        free(lr);
        free(tag);
        return NULL;
    }
    memcpy(tag, from->tag, (size_t)from->tag_len);
    *lr = (later_reply){.rs = rs, .caller = from->pid, .tag = tag, .tag_len = from->tag_len};
    return lr;
}

static void later_free(later_reply *lr)
{
    free(lr->tag);
    free(lr);
}

/* Sends {Tag, Reply} with the Reply that put appends, then frees lr. No
 * sender process: the server may have ended while the write ran. */
static void later_send(later_reply *lr, int (*put)(ei_x_buff *x, const void *arg),
                       const void *arg)
{
    rc_gen_from from = {.pid = lr->caller, .tag = lr->tag, .tag_len = lr->tag_len};
    ei_x_buff x;
    if (ei_x_new(&x) == 0) {
        int mark = 0;
        int rc = rc_gen_reply_begin(&x, &from);
        if (rc == 0) {
            mark = x.index;
            if (put(&x, arg) != 0) {
                x.index = mark;
                rc = encode_error(&x, "system_limit");
            }
        }
        if (rc == 0)
            (void)rc_gen_reply_send(lr->rs->ps, NULL, &from, &x);
        ei_x_free(&x);
    }
    later_free(lr);
}

/* {error, {storage, Cause}}: the names store's own words. */
static int encode_storage_error(ei_x_buff *x, int err)
{
    return ei_x_encode_tuple_header(x, 2) || ei_x_encode_atom(x, "error") ||
           ei_x_encode_tuple_header(x, 2) || ei_x_encode_atom(x, "storage") ||
           ei_x_encode_string(x, names_store_strerror(err));
}

typedef struct written {
    int err;
    const uint8_t *enc;
    size_t enc_len;
} written;

static int put_persisted(ei_x_buff *x, const void *arg)
{
    const written *w = arg;
    if (w->err != 0)
        return encode_storage_error(x, w->err);
    return encode_ok_header(x) || ei_x_append_buf(x, (const char *)w->enc, (int)w->enc_len);
}

static void persisted(void *ctx, int err, const uint8_t *enc, size_t enc_len)
{
    const written w = {.err = err, .enc = enc, .enc_len = enc_len};
    later_send(ctx, put_persisted, &w);
}

/* Queues a durable persist; returns 1 if queued (reply comes later), or
 * encodes an error into x and returns 0. */
static int queue_persist(rc_request_server *rs, const rc_gen_from *from, const req_args *a,
                         int64_t p, ei_x_buff *x)
{
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    int st = names_table_build(a->store, a->store_len, a->sub, a->sub_len, p, &enc,
                                         &enc_len);
    if (st != RC_OK) {
        (void)encode_naming_error(x, st);
        return 0;
    }
    later_reply *lr = later_new(rs, from);
    if (lr == NULL) {
        free(enc);
        (void)encode_error(x, "system_limit");
        return 0;
    }
    if (names_persist_submit(rs->persist, a->store, a->store_len, a->sub, a->sub_len, enc,
                             enc_len, persisted, lr) != 0) {
        later_free(lr);
        (void)encode_error(x, "system_limit");
        return 0;
    }
    return 1;
}

static int do_persist(rc_request_server *rs, const rc_gen_from *from, const char *buf, int len,
                      int idx, ei_x_buff *x, int *deferred)
{
    req_args a;
    int64_t p = 0;
    int fits = 0;
    char dec[DEC_CAP];
    if (read_store_sub(buf, len, &idx, &a) != 0 ||
        term_read_integer(buf, len, &idx, &p, &fits, dec, sizeof dec) != 0)
        return encode_error(x, "badarg");
    if (!fits) /* a pool size beyond int64: negative is badarg, huge is system_limit */
        return encode_error(x, dec[0] == '-' ? "badarg" : "system_limit");
    if (rs->persist != NULL) {
        *deferred = queue_persist(rs, from, &a, p, x);
        return 0;
    }
    const uint8_t *enc = NULL;
    size_t enc_len = 0;
    int st = names_table_persist(rs->names, a.store, a.store_len, a.sub, a.sub_len, p,
                                           &enc, &enc_len);
    if (st != RC_OK)
        return encode_naming_error(x, st);
    if (encode_ok_header(x) != 0)
        return -1;
    return ei_x_append_buf(x, (const char *)enc, (int)enc_len);
}

static int do_retrieve(rc_request_server *rs, const char *buf, int len, int idx, ei_x_buff *x)
{
    req_args a;
    if (read_store_sub(buf, len, &idx, &a) != 0)
        return encode_error(x, "badarg");
    const uint8_t *enc = NULL;
    size_t enc_len = 0;
    names_table_retrieve(rs->names, a.store, a.store_len, a.sub, a.sub_len, &enc, &enc_len);
    if (encode_ok_header(x) != 0)
        return -1;
    return ei_x_append_buf(x, (const char *)enc, (int)enc_len);
}

/* group_key(S, Sub) = {S, Sub, emitters} for any terms: copy their bytes. */
static int do_group_key(const char *buf, int len, int idx, ei_x_buff *x)
{
    int s0 = idx;
    if (term_skip(buf, len, &idx) != 0 || term_skip(buf, len, &idx) != 0)
        return encode_error(x, "badarg");
    return encode_ok_header(x) || group_key_encode_terms(x, buf + s0, idx - s0);
}

/* ------------------------------------------------------------ pg requests */

/* Reads PidOrPids as C-node pids. 0 ok; 1 = a pid of another node (its term
 * bytes in *bad, *bad_len); -1 = not pids. */
static int read_local_pids(rc_request_server *rs, const char *buf, int len, int *idx,
                           rc_cpid **out, size_t *n, const char **bad, int *bad_len)
{
    int type = 0, size = 0, count = 1, is_list = 0;
    *out = NULL;
    *n = 0;
    if (ei_get_type(buf, idx, &type, &size) != 0)
        return -1;
    if (type == ERL_LIST_EXT || type == ERL_NIL_EXT) {
        if (ei_decode_list_header(buf, idx, &count) != 0)
            return -1;
        is_list = 1;
    } else if (type != ERL_PID_EXT && type != ERL_NEW_PID_EXT) {
        return -1;
    }
    rc_cpid *v = malloc(sizeof *v * (size_t)(count > 0 ? count : 1));
    if (v == NULL)
        return -1;
    uint32_t self = rc_pg_self_node(rs->scopes[0]);
    for (int i = 0; i < count; i++) {
        int start = *idx;
        if (rc_cpid_read(rs->nodes, buf, len, idx, &v[i]) != 0) {
            free(v);
            return -1;
        }
        if (v[i].node != self) {
            *bad = buf + start;
            *bad_len = *idx - start;
            free(v);
            return 1;
        }
    }
    if (is_list && count > 0) {
        int tail = 0;
        if (ei_decode_list_header(buf, idx, &tail) != 0 || tail != 0) {
            free(v);
            return -1;
        }
    }
    *out = v;
    *n = (size_t)count;
    return 0;
}

static rc_pg_scope *scope_named(rc_request_server *rs, const char *name)
{
    for (size_t i = 0; i < rs->nscopes; i++)
        if (strcmp(rc_pg_scope_name(rs->scopes[i]), name) == 0)
            return rs->scopes[i];
    return NULL;
}

static int encode_pids(rc_request_server *rs, ei_x_buff *x, const rc_cpid *m, size_t n,
                       int local_only)
{
    uint32_t self = rc_pg_self_node(rs->scopes[0]);
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += !local_only || m[i].node == self;
    if (encode_ok_header(x) != 0)
        return -1;
    if (count > 0 && ei_x_encode_list_header(x, (long)count) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((!local_only || m[i].node == self) && rc_cpid_write(rs->nodes, x, &m[i]) != 0)
            return -1;
    return ei_x_encode_empty_list(x);
}

/* Builds {S, Sub, emitters} from the raw S and Sub terms at *idx. */
static int group_of(const char *buf, int len, int *idx, ei_x_buff *g)
{
    int s0 = *idx;
    const uint8_t *p;
    size_t n;
    uint8_t scratch[2 * 256];
    if (term_read_atom(buf, len, idx, &p, &n, scratch, sizeof scratch) != 0)
        return -1;
    if (term_skip(buf, len, idx) != 0)
        return -1;
    g->index = 0;
    return group_key_encode_terms(g, buf + s0, *idx - s0);
}

/* join/leave of C-node pids: op_join selects rc_pg_join or rc_pg_leave. */
static int pg_change(rc_request_server *rs, rc_pg_scope *sc, const char *group, int glen,
                     const char *buf, int len, int idx, int op_join, ei_x_buff *x)
{
    rc_cpid *pids = NULL;
    size_t n = 0;
    const char *bad = NULL;
    int bad_len = 0;
    int r = read_local_pids(rs, buf, len, &idx, &pids, &n, &bad, &bad_len);
    if (r < 0)
        return encode_error(x, "badarg");
    if (r == 1) {
        return ei_x_encode_tuple_header(x, 2) || ei_x_encode_atom(x, "error") ||
               ei_x_encode_tuple_header(x, 2) || ei_x_encode_atom(x, "nolocal") ||
               ei_x_append_buf(x, bad, bad_len);
    }
    int rc = op_join ? rc_pg_join(sc, group, glen, pids, n) : rc_pg_leave(sc, group, glen, pids, n);
    free(pids);
    if (rc != 0)
        return encode_error(x, "badarg");
    return encode_ok_header(x) == 0 ? ei_x_encode_atom(x, "ok") : -1;
}

static int pg_members_reply(rc_request_server *rs, rc_pg_scope *sc, const char *group, int glen,
                            int local_only, ei_x_buff *x)
{
    ei_x_buff key;
    if (ei_x_new(&key) != 0)
        return -1;
    int rc;
    if (rc_pg_group_key(group, glen, &key) != 0) {
        rc = encode_error(x, "badarg");
    } else {
        size_t n = 0;
        const rc_cpid *m = rc_pg_members(sc, (const uint8_t *)key.buff, (size_t)key.index, &n);
        rc = encode_pids(rs, x, m, n, local_only);
    }
    ei_x_free(&key);
    return rc;
}

static int do_group_op(rc_request_server *rs, const char *op, const char *buf, int len, int idx,
                       ei_x_buff *x)
{
    if (rs->nscopes == 0)
        return encode_error(x, "no_scope");
    ei_x_buff g;
    if (ei_x_new(&g) != 0)
        return -1;
    int rc;
    if (group_of(buf, len, &idx, &g) != 0)
        rc = encode_error(x, "badarg");
    else if (strcmp(op, "members") == 0)
        rc = pg_members_reply(rs, rs->scopes[0], g.buff, g.index, 0, x);
    else
        rc = pg_change(rs, rs->scopes[0], g.buff, g.index, buf, len, idx, strcmp(op, "join") == 0, x);
    ei_x_free(&g);
    return rc;
}

static int do_pg_generic(rc_request_server *rs, const char *op, int arity, const char *buf,
                         int len, int idx, ei_x_buff *x)
{
    char scope[MAXATOMLEN_UTF8];
    int sstart = idx;
    if (ei_decode_atom_as(buf, &idx, scope, sizeof scope, ERLANG_UTF8, NULL, NULL) != 0)
        return encode_error(x, "badarg");
    rc_pg_scope *sc = scope_named(rs, scope);
    if (sc == NULL) {
        return ei_x_encode_tuple_header(x, 2) || ei_x_encode_atom(x, "error") ||
               ei_x_encode_tuple_header(x, 2) || ei_x_encode_atom(x, "no_scope") ||
               ei_x_append_buf(x, buf + sstart, idx - sstart);
    }
    if (strcmp(op, "pg_which_groups") == 0 && arity == 2) {
        const pgm_table *t = rc_pg_table(sc);
        size_t count = pgm_group_count(t);
        if (encode_ok_header(x) != 0 || (count > 0 && ei_x_encode_list_header(x, (long)count) != 0))
            return -1;
        for (pgm_group *gr = pgm_next(t, NULL); gr != NULL; gr = pgm_next(t, gr)) {
            size_t klen;
            const uint8_t *k = pgm_group_key(gr, &klen);
            if (ei_x_append_buf(x, (const char *)k, (int)klen) != 0)
                return -1;
        }
        return ei_x_encode_empty_list(x);
    }
    int g0 = idx;
    if (arity < 3 || term_skip(buf, len, &idx) != 0)
        return encode_error(x, "badarg");
    int glen = idx - g0;
    if (strcmp(op, "pg_members") == 0 && arity == 3)
        return pg_members_reply(rs, sc, buf + g0, glen, 0, x);
    if (strcmp(op, "pg_local_members") == 0 && arity == 3)
        return pg_members_reply(rs, sc, buf + g0, glen, 1, x);
    if ((strcmp(op, "pg_join") == 0 || strcmp(op, "pg_leave") == 0) && arity == 4)
        return pg_change(rs, sc, buf + g0, glen, buf, len, idx, strcmp(op, "pg_join") == 0, x);
    return encode_error(x, "badarg");
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

static int do_spawn_idle(rc_request_server *rs, const char *buf, int len, int idx, ei_x_buff *x)
{
    int64_t n = 0;
    int fits = 0;
    char dec[DEC_CAP];
    if (term_read_integer(buf, len, &idx, &n, &fits, dec, sizeof dec) != 0 || !fits || n < 0 ||
        n > MAX_IDLE_SPAWN)
        return encode_error(x, "badarg");
    if (encode_ok_header(x) != 0 || (n > 0 && ei_x_encode_list_header(x, (long)n) != 0))
        return -1;
    for (int64_t i = 0; i < n; i++) {
        rc_proc *p = rc_proc_spawn(rs->ps, idle_signal, (void *)&IDLE_MARK, NULL);
        if (p == NULL || ei_x_encode_pid(x, rc_proc_pid(p)) != 0)
            return -1;
    }
    return ei_x_encode_empty_list(x);
}

static int do_exit_process(rc_request_server *rs, const char *buf, int len, int idx, ei_x_buff *x)
{
    (void)len;
    erlang_pid pid;
    char reason[MAXATOMLEN];
    if (ei_decode_pid(buf, &idx, &pid) != 0 || ei_decode_atom(buf, &idx, reason) != 0)
        return encode_error(x, "badarg");
    rc_proc *p = rc_procs_lookup(rs->ps, &pid);
    if (p == NULL || rc_proc_ctx(p) != &IDLE_MARK)
        return encode_error(x, "noproc");
    rc_proc_exit(rs->ps, p, reason);
    return encode_ok_header(x) == 0 ? ei_x_encode_atom(x, "ok") : -1;
}
#endif

typedef struct pool_outcome {
    int rc, store_err;
    const erlang_pid *pids;
    size_t n;
} pool_outcome;

static int put_pool_outcome(ei_x_buff *x, const void *arg)
{
    const pool_outcome *o = arg;
    switch (o->rc) {
    case RC_OK:
        break;
    case RC_EEXISTS: return encode_error(x, "already_started");
    case RC_ESYSTEM_LIMIT:
    case RC_ENOMEM: return encode_error(x, "system_limit");
    case RC_ESTORAGE: return encode_storage_error(x, o->store_err);
    case RC_ESTOPPED: return encode_error(x, "stopping");
    default: return encode_error(x, "badarg");
    }
    int r = encode_ok_header(x) || ei_x_encode_list_header(x, (long)o->n);
    for (size_t i = 0; i < o->n && !r; i++)
        r = ei_x_encode_pid(x, &o->pids[i]);
    return r || ei_x_encode_empty_list(x);
}

static void pool_started(void *ctx, int rc, int store_err, const erlang_pid *pids,
                         const rc_cpid *cpids, size_t n)
{
    (void)cpids;
    const pool_outcome o = {.rc = rc, .store_err = store_err, .pids = pids, .n = n};
    later_send(ctx, put_pool_outcome, &o);
}

/* {start_emitter_pool, S, Sub, PoolSize, Subscriber | undefined}. Answered
 * through pool_started: with --data-dir only once the names are on disk. */
static int do_start_pool(rc_request_server *rs, const rc_gen_from *from, const char *buf,
                         int len, int idx, ei_x_buff *x, int *deferred)
{
    req_args a;
    int64_t size = 0;
    int fits = 0;
    char dec[DEC_CAP];
    erlang_pid sub, *subp = NULL;
    if (rs->emitters == NULL || read_store_sub(buf, len, &idx, &a) != 0 ||
        term_read_integer(buf, len, &idx, &size, &fits, dec, sizeof dec) != 0 || !fits)
        return encode_error(x, "badarg");
    int type = 0, sz = 0;
    char atom[MAXATOMLEN];
    if (ei_get_type(buf, &idx, &type, &sz) != 0)
        return encode_error(x, "badarg");
    if (type == ERL_PID_EXT || type == ERL_NEW_PID_EXT) {
        if (ei_decode_pid(buf, &idx, &sub) != 0)
            return encode_error(x, "badarg");
        subp = &sub;
    } else if (ei_decode_atom(buf, &idx, atom) != 0 || strcmp(atom, "undefined") != 0) {
        return encode_error(x, "badarg");
    }
    later_reply *lr = later_new(rs, from);
    if (lr == NULL)
        return encode_error(x, "system_limit");
    int rc = rc_emitters_start_pool(rs->emitters, a.store, a.store_len, a.sub, a.sub_len, size,
                                    subp, pool_started, lr);
    if (rc != RC_OK) {
        later_free(lr);
        const pool_outcome o = {.rc = rc};
        return put_pool_outcome(x, &o);
    }
    *deferred = 1;
    return 0;
}

static int do_stop_pool(rc_request_server *rs, const char *buf, int len, int idx, ei_x_buff *x)
{
    req_args a;
    if (rs->emitters == NULL || read_store_sub(buf, len, &idx, &a) != 0)
        return encode_error(x, "badarg");
    if (rc_emitters_stop_pool(rs->emitters, a.store, a.store_len, a.sub, a.sub_len) != RC_OK)
        return encode_error(x, "not_found");
    return encode_ok_header(x) == 0 ? ei_x_encode_atom(x, "ok") : -1;
}

/* {emitter_pool_info, S, Sub}: the pool's account, as a map. */
static int do_pool_info(rc_request_server *rs, const char *buf, int len, int idx, ei_x_buff *x)
{
    req_args a;
    rc_emitter_pool_info in;
    if (rs->emitters == NULL || read_store_sub(buf, len, &idx, &a) != 0)
        return encode_error(x, "badarg");
    if (rc_emitters_pool_info(rs->emitters, a.store, a.store_len, a.sub, a.sub_len, &in) != RC_OK)
        return encode_error(x, "not_found");
    const struct {
        const char *key;
        uint64_t value;
    } kv[] = {{"size", in.size},           {"joined", in.joined},
              {"events_in", in.events_in}, {"delivered", in.delivered},
              {"no_subscriber", in.no_subscriber},
              {"subscriber_node_gone", in.subscriber_node_gone}};
    int r = encode_ok_header(x) || ei_x_encode_map_header(x, (long)(sizeof kv / sizeof kv[0]));
    for (size_t i = 0; i < sizeof kv / sizeof kv[0] && !r; i++)
        r = ei_x_encode_atom(x, kv[i].key) || ei_x_encode_ulonglong(x, kv[i].value);
    return r ? -1 : 0;
}

/* {broadcast, S, Sub, Event}: forward_to_local when the member is on the
 * caller's node. */
static int do_broadcast(rc_request_server *rs, const rc_gen_from *from, const char *buf, int len,
                        int idx, ei_x_buff *x)
{
    req_args a;
    if (rs->bcast == NULL || read_store_sub(buf, len, &idx, &a) != 0)
        return encode_error(x, "badarg");
    int ev = idx;
    if (term_skip(buf, len, &idx) != 0)
        return encode_error(x, "badarg");
    int err = 0;
    bcast_target *t = bcast_target_new(a.store, a.store_len, a.sub, a.sub_len, &err);
    if (t == NULL)
        return encode_error(x, rc_err_atom(err));
    uint32_t asking = rc_nodetab_intern(rs->nodes, from->pid.node, strlen(from->pid.node));
    int r = rc_bcast_send(rs->bcast, t, asking, (const uint8_t *)buf + ev, (size_t)(idx - ev));
    bcast_target_free(t);
    if (r == RC_ENO_EMITTERS)
        return encode_error(x, "no_emitters");
    return encode_ok_header(x) == 0 ? ei_x_encode_atom(x, "ok") : -1;
}

/* One request: the op's arguments start at buf[idx]. */
typedef struct rs_req {
    const rc_gen_from *from;
    const char *buf;
    int len;
    int idx;
    int arity;   /* of the request tuple, the op atom included */
    int *deferred; /* set by an op that answers later (after a durable write) */
} rs_req;

typedef int (*rs_op_fn)(rc_request_server *rs, const rs_req *r, ei_x_buff *x);

static int op_topic(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    (void)rs;
    return do_topic(r->buf, r->len, r->idx, x);
}
static int op_emitter_name(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    (void)rs;
    return do_emitter_name(r->buf, r->len, r->idx, r->arity, x);
}
static int op_group_key(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    (void)rs;
    return do_group_key(r->buf, r->len, r->idx, x);
}
static int op_persist(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    return do_persist(rs, r->from, r->buf, r->len, r->idx, x, r->deferred);
}
static int op_retrieve(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    return do_retrieve(rs, r->buf, r->len, r->idx, x);
}
static int op_join(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    return do_group_op(rs, "join", r->buf, r->len, r->idx, x);
}
static int op_leave(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    return do_group_op(rs, "leave", r->buf, r->len, r->idx, x);
}
static int op_members(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    return do_group_op(rs, "members", r->buf, r->len, r->idx, x);
}
static int op_broadcast(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    return do_broadcast(rs, r->from, r->buf, r->len, r->idx, x);
}
static int op_start_pool(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    return do_start_pool(rs, r->from, r->buf, r->len, r->idx, x, r->deferred);
}
static int op_stop_pool(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    return do_stop_pool(rs, r->buf, r->len, r->idx, x);
}
static int op_pool_info(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    return do_pool_info(rs, r->buf, r->len, r->idx, x);
}
#define PG_OP(fn, name)                                                                          \
    static int fn(rc_request_server *rs, const rs_req *r, ei_x_buff *x)                         \
    {                                                                                            \
        return do_pg_generic(rs, name, r->arity, r->buf, r->len, r->idx, x);                    \
    }
PG_OP(op_pg_which_groups, "pg_which_groups")
PG_OP(op_pg_members, "pg_members")
PG_OP(op_pg_local_members, "pg_local_members")
PG_OP(op_pg_join, "pg_join")
PG_OP(op_pg_leave, "pg_leave")
static int op_scope_pid(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    char scope[MAXATOMLEN_UTF8];
    int idx = r->idx;
    rc_pg_scope *sc = ei_decode_atom_as(r->buf, &idx, scope, sizeof scope, ERLANG_UTF8, NULL,
                                        NULL) == 0 ? scope_named(rs, scope) : NULL;
    if (sc == NULL)
        return encode_error(x, "no_scope");
    rc_cpid self;
    return encode_ok_header(x) || rc_pg_scope_pid(sc, &self) || rc_cpid_write(rs->nodes, x, &self);
}
#ifdef RC_TEST_HOOKS
static int op_spawn_idle(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    return do_spawn_idle(rs, r->buf, r->len, r->idx, x);
}
static int op_exit_process(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    return do_exit_process(rs, r->buf, r->len, r->idx, x);
}
#endif

/* Every request the server answers, as {Op, Args...} tuples: the shim's
 * vocabulary first, then pg's own (any scope), then diagnostics. */
static const struct rs_op {
    const char *name;
    int arity;
    rs_op_fn fn;
} OPS[] = {
    /* naming and the emitter-name table */
    {"topic", 3, op_topic},
    {"emitter_name", 3, op_emitter_name},
    {"emitter_name", 4, op_emitter_name},
    {"group_key", 3, op_group_key},
    {"persist_emitters", 4, op_persist},
    {"retrieve_emitters", 3, op_retrieve},
    /* emitter groups in the default scope */
    {"join", 4, op_join},
    {"leave", 4, op_leave},
    {"members", 3, op_members},
    {"broadcast", 4, op_broadcast},
    {"start_emitter_pool", 5, op_start_pool},
    {"stop_emitter_pool", 3, op_stop_pool},
    {"emitter_pool_info", 3, op_pool_info},
    /* pg, in any scope the node serves */
    {"pg_which_groups", 2, op_pg_which_groups},
    {"pg_members", 3, op_pg_members},
    {"pg_local_members", 3, op_pg_local_members},
    {"pg_join", 4, op_pg_join},
    {"pg_leave", 4, op_pg_leave},
    {"scope_pid", 2, op_scope_pid},
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
        return encode_error(x, "badarg");
    if (type == ERL_SMALL_ATOM_UTF8_EXT || type == ERL_ATOM_UTF8_EXT || type == ERL_SMALL_ATOM_EXT ||
        type == ERL_ATOM_EXT) {
        if (ei_decode_atom(buf, &idx, op) != 0)
            return encode_error(x, "badarg");
        if (strcmp(op, "ping") == 0)
            return encode_ok_header(x) == 0 ? ei_x_encode_atom(x, "pong") : -1;
        if (strcmp(op, "stats") == 0 && rs->stats != NULL) {
            if (encode_ok_header(x) != 0)
                return -1;
            rs->stats(rs->stats_ctx, x);
            return 0;
        }
        return encode_error(x, "badarg");
    }
    if ((type != ERL_SMALL_TUPLE_EXT && type != ERL_LARGE_TUPLE_EXT) ||
        ei_decode_tuple_header(buf, &idx, &arity) != 0 || arity < 1 ||
        ei_decode_atom(buf, &idx, op) != 0)
        return encode_error(x, "badarg");
    LOG_D(rc_procs_logger(rs->ps), MOD, "request %s/%d from %s", op, arity, from->pid.node);
    const rs_req r = {.from = from, .buf = buf, .len = len, .idx = idx, .arity = arity,
                      .deferred = deferred};
    for (size_t k = 0; k < sizeof OPS / sizeof OPS[0]; k++)
        if (OPS[k].arity == arity && strcmp(OPS[k].name, op) == 0)
            return OPS[k].fn(rs, &r, x);
    return encode_error(x, "badarg");
}

static void on_signal(rc_procs *ps, rc_proc *self, const rc_signal *sig)
{
    rc_request_server *rs = rc_proc_ctx(self);
    if (sig->kind != RC_SIG_MSG)
        return; /* a service process outlives exit signals and monitors */
    rc_gen_from from;
    int req = 0;
    if (rc_gen_classify(sig->buf, sig->len, &from, &req) != RC_GEN_CALL) {
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
            (void)encode_error(&x, "system_limit");
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
