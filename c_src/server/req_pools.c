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

/* {start_emitter_pool, S, Sub, PoolSize, Subscriber | undefined}. Answered
 * through pool_started: with --data-dir only once the names are on disk. */
int rqs_start_pool(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    const char *buf = r->buf;
    int len = r->len, idx = r->idx;
    req_args a;
    int64_t size = 0;
    int fits = 0;
    char dec[DEC_CAP];
    erlang_pid sub, *subp = NULL;
    if (rs->emitters == NULL || rqs_read_store_sub(buf, len, &idx, &a) != 0 ||
        term_read_integer(buf, len, &idx, &size, &fits, dec, sizeof dec) != 0 || !fits)
        return rqs_encode_error(x, "badarg");
    int type = 0, sz = 0;
    char atom[MAXATOMLEN];
    if (ei_get_type(buf, &idx, &type, &sz) != 0)
        return rqs_encode_error(x, "badarg");
    if (type == ERL_PID_EXT || type == ERL_NEW_PID_EXT) {
        if (ei_decode_pid(buf, &idx, &sub) != 0)
            return rqs_encode_error(x, "badarg");
        subp = &sub;
    } else if (ei_decode_atom(buf, &idx, atom) != 0 || strcmp(atom, "undefined") != 0) {
        return rqs_encode_error(x, "badarg");
    }
    later_reply *lr = rqs_later_new(rs, r->from);
    if (lr == NULL)
        return rqs_encode_error(x, "system_limit");
    int rc = rc_emitters_start_pool(rs->emitters, a.store, a.store_len, a.sub, a.sub_len, size,
                                    subp, pool_started, lr);
    if (rc != RC_OK) {
        rqs_later_free(lr);
        const pool_outcome o = {.rc = rc};
        return put_pool_outcome(x, &o);
    }
    *r->deferred = 1;
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
