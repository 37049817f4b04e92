/* req_pools: C emitter pools (start_emitter_pool, stop_emitter_pool,
 * emitter_pool_info) and broadcasts through the C node. */
#include "server/request_internal.h"

#include "codec/term_read.h"

#include <stdlib.h>
#include <string.h>

typedef struct pool_outcome {
    int rc;
    const char *cause; /* RC_ESTORAGE: the store's words */
    const erlang_pid *pids;
    size_t n;
} pool_outcome;

static int put_pool_outcome(ei_x_buff *x, const void *arg)
{
    const pool_outcome *o = arg;
    switch (o->rc) {
    case RC_OK:
        break;
    case RC_EEXISTS: return rqs_encode_error(x, "already_started");
    case RC_ESYSTEM_LIMIT:
    case RC_ENOMEM: return rqs_encode_error(x, "system_limit");
    case RC_ESTORAGE: return rqs_encode_storage_error(x, o->cause);
    case RC_ESTOPPED: return rqs_encode_error(x, "stopping");
    default: return rqs_encode_error(x, "badarg");
    }
    int r = rqs_encode_ok_header(x) || ei_x_encode_list_header(x, (long)o->n);
    for (size_t i = 0; i < o->n && !r; i++)
        r = ei_x_encode_pid(x, &o->pids[i]);
    return r || ei_x_encode_empty_list(x);
}

static void pool_started(void *ctx, int rc, const char *cause, const erlang_pid *pids,
                         const rc_cpid *cpids, size_t n)
{
    (void)cpids;
    const pool_outcome o = {.rc = rc, .cause = cause, .pids = pids, .n = n};
    rqs_later_send(ctx, put_pool_outcome, &o);
}

/* One start's arguments, read from {S, Sub, PoolSize, Subscriber |
 * undefined} (the single call's tuple without its op atom). */
typedef struct pool_args {
    req_args a;
    int64_t size;
    erlang_pid sub;
    int has_sub;
} pool_args;

static int read_pool_args(const char *buf, int len, int *idx, pool_args *pa)
{
    int fits = 0;
    char dec[DEC_CAP];
    pa->has_sub = 0;
    if (rqs_read_store_sub(buf, len, idx, &pa->a) != 0 ||
        term_read_integer(buf, len, idx, &pa->size, &fits, dec, sizeof dec) != 0 || !fits)
        return -1;
    int type = 0, sz = 0;
    char atom[MAXATOMLEN];
    if (ei_get_type(buf, idx, &type, &sz) != 0)
        return -1;
    if (type == ERL_PID_EXT || type == ERL_NEW_PID_EXT) {
        if (ei_decode_pid(buf, idx, &pa->sub) != 0)
            return -1;
        pa->has_sub = 1;
        return 0;
    }
    return ei_decode_atom(buf, idx, atom) != 0 || strcmp(atom, "undefined") != 0 ? -1 : 0;
}

/* {start_emitter_pool, S, Sub, PoolSize, Subscriber | undefined}. Answered
 * through pool_started: with --data-dir only once the names are on disk. */
int rqs_start_pool(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    int idx = r->idx;
    pool_args pa;
    if (rs->emitters == NULL || read_pool_args(r->buf, r->len, &idx, &pa) != 0)
        return rqs_encode_error(x, "badarg");
    later_reply *lr = rqs_later_new(rs, r->from);
    if (lr == NULL)
        return rqs_encode_error(x, "system_limit");
    int rc = rc_emitters_start_pool(rs->emitters, pa.a.store, pa.a.store_len, pa.a.sub,
                                    pa.a.sub_len, pa.size, pa.has_sub ? &pa.sub : NULL,
                                    pool_started, lr);
    if (rc != RC_OK) {
        rqs_later_free(lr);
        const pool_outcome o = {.rc = rc};
        return put_pool_outcome(x, &o);
    }
    *r->deferred = 1;
    return 0;
}

/* Starts in one request: at most this many (the caller splits longer
 * lists and keeps several requests in flight). */
#define BATCH_MAX_STARTS 10000

/* A batch of starts answered together, once the last one is done: each
 * outcome is kept encoded until then (with --data-dir the starts end when
 * their names' transaction does, many in one). */
typedef struct pools_batch {
    later_reply *lr;
    size_t n, left;
    int submitting; /* outcomes may arrive while starts are still made */
    ei_x_buff out;  /* the outcomes so far, in slots */
    struct batch_slot {
        struct pools_batch *b;
        int at, len; /* the outcome's bytes in out, once done */
    } slot[];
} pools_batch;

static int put_batch(ei_x_buff *x, const void *arg)
{
    const pools_batch *b = arg;
    int r = rqs_encode_ok_header(x) || ei_x_encode_list_header(x, (long)b->n);
    for (size_t i = 0; i < b->n && !r; i++)
        r = ei_x_append_buf(x, b->out.buff + b->slot[i].at, b->slot[i].len);
    return r || ei_x_encode_empty_list(x);
}

static void batch_maybe_done(pools_batch *b)
{
    if (b->left > 0 || b->submitting)
        return;
    rqs_later_send(b->lr, put_batch, b);
    ei_x_free(&b->out);
    free(b);
}

static void batch_outcome(struct batch_slot *s, const pool_outcome *o)
{
    pools_batch *b = s->b;
    int at = b->out.index;
    if (term_x_reserve(&b->out, 64 + o->n * 1040) != 0 || put_pool_outcome(&b->out, o) != 0) {
        b->out.index = at;
        (void)rqs_encode_error(&b->out, "system_limit");
    }
    s->at = at;
    s->len = b->out.index - at;
    b->left--;
    batch_maybe_done(b);
}

static void batch_started(void *ctx, int rc, const char *cause, const erlang_pid *pids,
                          const rc_cpid *cpids, size_t n)
{
    (void)cpids;
    const pool_outcome o = {.rc = rc, .cause = cause, .pids = pids, .n = n};
    batch_outcome(ctx, &o);
}

/* {start_emitter_pools, [{S, Sub, PoolSize, Subscriber | undefined}]}: the
 * starts in list order, one outcome each as start_emitter_pool answers it,
 * all in one reply. A malformed element makes the whole request badarg,
 * before anything starts. */
int rqs_start_pools(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    int idx = r->idx, count = 0;
    if (rs->emitters == NULL || ei_decode_list_header(r->buf, &idx, &count) != 0 ||
        count > BATCH_MAX_STARTS)
        return rqs_encode_error(x, "badarg");
    const int first = idx;
    for (int i = 0; i < count; i++) {
        int arity = 0;
        pool_args pa;
        if (ei_decode_tuple_header(r->buf, &idx, &arity) != 0 || arity != 4 ||
            read_pool_args(r->buf, r->len, &idx, &pa) != 0)
            return rqs_encode_error(x, "badarg");
    }
    int tail = 0; /* a proper list only */
    if (count > 0 && (ei_decode_list_header(r->buf, &idx, &tail) != 0 || tail != 0))
        return rqs_encode_error(x, "badarg");
    pools_batch *b = calloc(1, sizeof *b + (size_t)count * sizeof b->slot[0]);
    later_reply *lr = b != NULL ? rqs_later_new(rs, r->from) : NULL;
    if (lr == NULL || ei_x_new(&b->out) != 0) {
        if (lr != NULL)
            rqs_later_free(lr);
        free(b);
        return rqs_encode_error(x, "system_limit");
    }
    b->lr = lr;
    b->n = b->left = (size_t)count;
    b->submitting = 1;
    idx = first;
    for (int i = 0; i < count; i++) {
        int arity = 0;
        pool_args pa;
        (void)ei_decode_tuple_header(r->buf, &idx, &arity);
        (void)read_pool_args(r->buf, r->len, &idx, &pa);
        struct batch_slot *s = &b->slot[i];
        s->b = b;
        int rc = rc_emitters_start_pool(rs->emitters, pa.a.store, pa.a.store_len, pa.a.sub,
                                        pa.a.sub_len, pa.size, pa.has_sub ? &pa.sub : NULL,
                                        batch_started, s);
        if (rc != RC_OK) {
            const pool_outcome o = {.rc = rc};
            batch_outcome(s, &o);
        }
    }
    b->submitting = 0;
    *r->deferred = 1;
    batch_maybe_done(b);
    return 0;
}

int rqs_stop_pool(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    const char *buf = r->buf;
    int len = r->len, idx = r->idx;
    req_args a;
    if (rs->emitters == NULL || rqs_read_store_sub(buf, len, &idx, &a) != 0)
        return rqs_encode_error(x, "badarg");
    if (rc_emitters_stop_pool(rs->emitters, a.store, a.store_len, a.sub, a.sub_len) != RC_OK)
        return rqs_encode_error(x, "not_found");
    return rqs_encode_ok_header(x) == 0 ? ei_x_encode_atom(x, "ok") : -1;
}

/* {emitter_pool_info, S, Sub}: the pool's account, as a map. */
int rqs_pool_info(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    const char *buf = r->buf;
    int len = r->len, idx = r->idx;
    req_args a;
    rc_emitter_pool_info in;
    if (rs->emitters == NULL || rqs_read_store_sub(buf, len, &idx, &a) != 0)
        return rqs_encode_error(x, "badarg");
    if (rc_emitters_pool_info(rs->emitters, a.store, a.store_len, a.sub, a.sub_len, &in) != RC_OK)
        return rqs_encode_error(x, "not_found");
    const struct {
        const char *key;
        uint64_t value;
    } kv[] = {{"size", in.size},           {"joined", in.joined},
              {"events_in", in.events_in}, {"delivered", in.delivered},
              {"no_subscriber", in.no_subscriber},
              {"subscriber_node_gone", in.subscriber_node_gone}};
    int bad = rqs_encode_ok_header(x) ||
              ei_x_encode_map_header(x, (long)(sizeof kv / sizeof kv[0]));
    for (size_t i = 0; i < sizeof kv / sizeof kv[0] && !bad; i++)
        bad = ei_x_encode_atom(x, kv[i].key) || ei_x_encode_ulonglong(x, kv[i].value);
    return bad ? -1 : 0;
}

/* {broadcast, S, Sub, Event}: forward_to_local when the member is on the
 * caller's node. */
int rqs_broadcast(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    const char *buf = r->buf;
    int len = r->len, idx = r->idx;
    req_args a;
    if (rs->bcast == NULL || rqs_read_store_sub(buf, len, &idx, &a) != 0)
        return rqs_encode_error(x, "badarg");
    int ev = idx;
    if (term_skip(buf, len, &idx) != 0)
        return rqs_encode_error(x, "badarg");
    int err = 0;
    bcast_target *t = bcast_target_new(a.store, a.store_len, a.sub, a.sub_len, &err);
    if (t == NULL)
        return rqs_encode_error(x, rc_err_atom(err));
    uint32_t asking = rc_nodetab_intern(rs->nodes, r->from->pid.node, strlen(r->from->pid.node));
    int sent = rc_bcast_send(rs->bcast, t, asking, (const uint8_t *)buf + ev, (size_t)(idx - ev));
    bcast_target_free(t);
    if (sent == RC_ENO_EMITTERS)
        return rqs_encode_error(x, "no_emitters");
    return rqs_encode_ok_header(x) == 0 ? ei_x_encode_atom(x, "ok") : -1;
}
