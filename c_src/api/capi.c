/* capi: the public C API of include/reckon_cnode.h over the node context:
 * C processes, pg membership, events, broadcast, emitter pools and naming.
 * Thin by design: each function converts between the public types (rc_pid,
 * rc_target) and a layer's own, then calls that layer. Which functions are
 * thread-safe is stated in the public header. */
#include "node/node.h"

#include "emitter/event.h"
#include "naming/group_key.h"
#include "naming/naming.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

_Static_assert(sizeof(rc_pid) == sizeof(rc_cpid), "rc_pid mirrors rc_cpid");

typedef struct c_process {
    rc_node *node;
    rc_process_fn fn;
    void *ctx;
} c_process;

static void c_process_signal(rc_procs *ps, rc_proc *self, const rc_signal *sig)
{
    c_process *cp = rc_proc_ctx(self);
    if (sig->kind != RC_SIG_MSG || cp->fn == NULL)
        return;
    const rc_cpid me = rc_proc_cpid(ps, self);
    cp->fn(cp->ctx, (const rc_pid *)&me, sig->buf, (size_t)sig->len);
}

int rc_process_spawn(rc_node *n, rc_process_fn fn, void *ctx, rc_pid *out)
{
    c_process *cp = malloc(sizeof *cp);
    if (cp == NULL)
        return -1;
    cp->node = n;
    cp->fn = fn;
    cp->ctx = ctx;
    rc_proc *p = rc_proc_spawn(n->procs, c_process_signal, cp, free);
    if (p == NULL) {
        free(cp);
        return -1;
    }
    *(rc_cpid *)out = rc_proc_cpid(n->procs, p);
    return 0;
}

int rc_process_exit(rc_node *n, const rc_pid *pid, const char *reason_atom)
{
    rc_proc *p = rc_procs_find(n->procs, (const rc_cpid *)pid);
    if (p == NULL)
        return -1;
    rc_proc_exit(n->procs, p, reason_atom ? reason_atom : "normal");
    return 0;
}

const char *rc_pid_node_name(const rc_node *n, const rc_pid *pid)
{
    return rc_nodetab_name(n->nodes, pid->node);
}

int rc_group_key_term(const uint8_t *store_utf8, size_t store_len, const uint8_t *sub,
                      size_t sub_len, char *out, size_t cap, size_t *len)
{
    ei_x_buff x;
    if (store_len > 255 * 4 || ei_x_new(&x) != 0)
        return -1;
    int rc = group_key_encode(&x, store_utf8, store_len, sub, sub_len);
    if (rc == 0 && (size_t)x.index <= cap) {
        memcpy(out, x.buff, (size_t)x.index);
        *len = (size_t)x.index;
    } else {
        rc = -1;
    }
    ei_x_free(&x);
    return rc;
}

int rc_pg_join_local(rc_node *n, const char *scope, const char *group, size_t glen,
                     const rc_pid *pids, size_t npids)
{
    rc_pg_scope *s = node_scope(n, scope);
    return s ? rc_pg_join(s, group, (int)glen, (const rc_cpid *)pids, npids) : -1;
}

int rc_pg_leave_local(rc_node *n, const char *scope, const char *group, size_t glen,
                      const rc_pid *pids, size_t npids)
{
    rc_pg_scope *s = node_scope(n, scope);
    return s ? rc_pg_leave(s, group, (int)glen, (const rc_cpid *)pids, npids) : -1;
}

int rc_pg_get_members(rc_node *n, const char *scope, const char *group, size_t glen,
                      const rc_pid **members, size_t *count)
{
    rc_pg_scope *s = node_scope(n, scope);
    ei_x_buff key;
    if (s == NULL || ei_x_new(&key) != 0)
        return -1;
    int rc = rc_pg_group_key(group, (int)glen, &key);
    if (rc == 0)
        *members = (const rc_pid *)rc_pg_members(s, (const uint8_t *)key.buff, (size_t)key.index,
                                                 count);
    ei_x_free(&key);
    return rc;
}

long rc_pg_get_local_members(rc_node *n, const char *scope, const char *group, size_t glen,
                             rc_pid *out, size_t cap)
{
    const rc_pid *m;
    size_t count;
    if (rc_pg_get_members(n, scope, group, glen, &m, &count) != 0)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        if (m[i].node != 0) /* index 0 is this node */
            continue;
        if (k < cap)
            out[k] = m[i];
        k++;
    }
    return (long)k;
}

int rc_pg_which_groups(rc_node *n, const char *scope,
                       void (*fn)(void *ctx, const char *group, size_t glen), void *ctx)
{
    rc_pg_scope *s = node_scope(n, scope);
    if (s == NULL)
        return -1;
    const pgm_table *t = rc_pg_table(s);
    for (pgm_group *g = pgm_next(t, NULL); g != NULL; g = pgm_next(t, g)) {
        size_t klen;
        const uint8_t *k = pgm_group_key(g, &klen);
        fn(ctx, (const char *)k, klen);
    }
    return 0;
}

typedef struct monitor_sub monitor_sub;

static void monitor_bridge(void *ctx, rc_pg_scope *s, rc_pg_event ev, const uint8_t *group,
                           size_t glen, const rc_cpid *pids, size_t npids)
{
    (void)s;
    monitor_sub *m = ctx;
    m->fn(m->ctx, ev == RC_PG_JOINED, (const char *)group, glen, (const rc_pid *)pids, npids);
}

int rc_pg_monitor_scope(rc_node *n, const char *scope, rc_pg_monitor_fn fn, void *ctx)
{
    rc_pg_scope *s = node_scope(n, scope);
    if (s == NULL || n->nmonitors == sizeof n->monitors / sizeof n->monitors[0])
        return -1;
    monitor_sub *m = &n->monitors[n->nmonitors];
    m->fn = fn;
    m->ctx = ctx;
    if (rc_pg_subscribe(s, monitor_bridge, m) != 0)
        return -1;
    n->nmonitors++;
    return 0;
}

/* ----------------------------------------------- events, broadcast, pools */

int rc_event_build(const rc_event_fields *f, uint8_t **out, size_t *len)
{
    return event_build(f, out, len);
}

int rc_encode_binary_map(const char *const *keys, const uint8_t *const *vals,
                         const size_t *val_lens, size_t n, uint8_t **out, size_t *len)
{
    return event_encode_binary_map(keys, vals, val_lens, n, out, len);
}

rc_target *rc_target_new(const uint8_t *store_utf8, size_t store_len, const uint8_t *sub,
                         size_t sub_len)
{
    int err = 0;
    return (rc_target *)bcast_target_new(store_utf8, store_len, sub, sub_len, &err);
}

void rc_target_free(rc_target *t) { bcast_target_free((bcast_target *)t); }

int rc_broadcast(rc_node *n, const rc_target *t, const uint8_t *event, size_t len)
{
    if (n->queue == NULL)
        return RC_ESTOPPED;
    return bcast_queue_push(n->queue, t, event, len);
}

int rc_broadcast_flush(rc_node *n, unsigned timeout_ms)
{
    return n->queue != NULL ? bcast_queue_flush(n->queue, timeout_ms) : RC_ESTOPPED;
}

int rc_broadcast_now(rc_node *n, const rc_target *t, const uint8_t *event, size_t len)
{
    return rc_bcast_send(n->bcast, (const bcast_target *)t, 0, event, len);
}

typedef struct pool_start {
    rc_pool_started_fn done;
    void *ctx;
} pool_start;

static void pool_started(void *ctx, int rc, const char *cause, const erlang_pid *pids,
                         const rc_cpid *cpids, size_t n)
{
    (void)cause; /* logged by the names layer */
    (void)pids;
    pool_start ps = *(pool_start *)ctx;
    free(ctx);
    ps.done(ps.ctx, rc, (const rc_pid *)cpids, rc == RC_OK ? n : 0);
}

int rc_emitter_pool_start(rc_node *n, const uint8_t *store_utf8, size_t store_len,
                          const uint8_t *sub, size_t sub_len, unsigned pool_size,
                          const rc_pid *subscriber, rc_pool_started_fn done, void *ctx)
{
    erlang_pid sp, *spp = NULL;
    if (done == NULL)
        return RC_EBADARG;
    if (subscriber != NULL) {
        if (rc_cpid_to_ei(n->nodes, (const rc_cpid *)subscriber, &sp) != 0)
            return RC_EBADARG;
        spp = &sp;
    }
    pool_start *ps = malloc(sizeof *ps);
    if (ps == NULL)
        return RC_ENOMEM;
    *ps = (pool_start){.done = done, .ctx = ctx};
    int rc = rc_emitters_start_pool(n->emitters, store_utf8, store_len, sub, sub_len, pool_size,
                                    spp, pool_started, ps);
    if (rc != RC_OK)
        free(ps);
    return rc;
}

int rc_emitter_pool_stop(rc_node *n, const uint8_t *store_utf8, size_t store_len,
                         const uint8_t *sub, size_t sub_len)
{
    return rc_emitters_stop_pool(n->emitters, store_utf8, store_len, sub, sub_len);
}

int rc_topic(const uint8_t *store_utf8, size_t store_len, const uint8_t *sub, size_t sub_len,
             uint8_t *out, size_t out_cap, size_t *out_len)
{
    return (int)naming_topic(store_utf8, store_len, sub, sub_len, out, out_cap, out_len);
}

int rc_emitter_name(const uint8_t *store_utf8, size_t store_len, const uint8_t *sub,
                    size_t sub_len, const char *n_decimal, uint8_t *out, size_t out_cap,
                    size_t *out_len)
{
    return (int)naming_emitter_name(store_utf8, store_len, sub, sub_len, n_decimal, out, out_cap,
                                    out_len);
}

typedef struct members_probe {
    const char *scope;
    const char *group;
    size_t glen;
    long count;
} members_probe;

static void probe_members(rc_node *n, void *ctx)
{
    members_probe *q = ctx;
    const rc_pid *m;
    size_t count = 0;
    q->count = rc_pg_get_members(n, q->scope, q->group, q->glen, &m, &count) == 0 ? (long)count : -1;
}

long rc_await_members(rc_node *n, const char *scope, const char *group, size_t glen, size_t min,
                      unsigned timeout_ms)
{
    members_probe q = {.scope = scope, .group = group, .glen = glen, .count = 0};
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (rc_node_call(n, probe_members, &q) != 0)
            return -1;
        if (q.count >= 0 && (size_t)q.count >= min)
            return q.count;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long waited = (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (waited >= (long long)timeout_ms)
            return q.count < 0 ? 0 : q.count;
        /* Views change on the loop in answer to peers; a short poll is
         * simpler than a subscription and costs nothing measurable. */
        struct timespec step = {0, 10 * 1000 * 1000};
        nanosleep(&step, NULL);
    }
}

