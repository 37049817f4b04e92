#include "pg/pg_internal.h"

#include "util/err.h"
#include "util/hash.h"

#include "codec/term_norm.h"
#include "codec/term_read.h"
#include "proc/gen_server.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */

int rc_pg_group_key(const char *term, int len, ei_x_buff *x)
{
    int idx = 0;
    x->index = 0;
    if (term_norm_encode(term, len, &idx, x) != 0 || idx != len)
        return -1;
    return 0;
}

static void notify(rc_pg_scope *s, rc_pg_event ev, const uint8_t *g, size_t glen,
                   const rc_cpid *pids, size_t n)
{
    for (int i = 0; i < s->nsubs; i++)
        s->subs[i].fn(s->subs[i].ctx, s, ev, g, glen, pids, n);
}

void pgs_notify_group(rc_pg_scope *s, rc_pg_event ev, const pgm_group *g, const rc_cpid *pids,
                         size_t n)
{
    if (s->nsubs == 0 || n == 0)
        return;
    size_t klen;
    const uint8_t *k = pgm_group_key(g, &klen);
    notify(s, ev, k, klen, pids, n);
}

/* Records a leave for subscribers, told by tell_leaves once the table is
 * no longer being changed. */
void pgs_defer_leave(rc_pg_scope *s, const uint8_t *k, size_t klen, const rc_cpid *pids,
                        size_t n)
{
    if (s->nsubs == 0 || n == 0 || n > UINT32_MAX || klen > UINT32_MAX)
        return;
    uint32_t hdr[2] = {(uint32_t)klen, (uint32_t)n};
    if (bytebuf_reserve(&s->deferred, sizeof hdr + klen + n * sizeof *pids) != 0) {
        LOG_E(s->lg, MOD, "scope %s: out of memory: a leave is not told to subscribers",
              s->name);
        return;
    }
    bytebuf_append(&s->deferred, hdr, sizeof hdr);
    bytebuf_append(&s->deferred, k, klen);
    bytebuf_append(&s->deferred, pids, n * sizeof *pids);
}

static void on_removed(void *ctx, const pgm_group *g, const rc_cpid *pids, size_t n)
{
    size_t klen;
    const uint8_t *k = pgm_group_key(g, &klen);
    pgs_defer_leave(ctx, k, klen, pids, n);
}

void pgs_tell_leaves(rc_pg_scope *s)
{
    bytebuf todo = s->deferred; /* a subscriber may cause another walk */
    bytebuf_init(&s->deferred, 0);
    size_t off = todo.off;
    while (todo.len - off >= 2 * sizeof(uint32_t)) {
        uint32_t hdr[2];
        memcpy(hdr, todo.data + off, sizeof hdr);
        off += sizeof hdr;
        const uint8_t *k = todo.data + off;
        off += hdr[0];
        rc_cpid *pids = malloc(hdr[1] * sizeof *pids); /* aligned copy */
        if (pids != NULL) {
            memcpy(pids, todo.data + off, hdr[1] * sizeof *pids);
            notify(s, RC_PG_LEFT, k, hdr[0], pids, hdr[1]);
            free(pids);
        }
        off += hdr[1] * sizeof *pids;
    }
    bytebuf_free(&todo);
}

/* Every member of `node` leaves; subscribers hear of it afterwards. */
size_t pgs_remove_node(rc_pg_scope *s, uint32_t node)
{
    size_t gone = pgm_remove_node(s->table, node, on_removed, s);
    pgs_tell_leaves(s);
    return gone;
}

void pgs_malformed(rc_pg_scope *s, const char *what)
{
    s->stats.malformed++;
    if (!s->warned_malformed++)
        LOG_W(s->lg, MOD, "scope %s: ignored %s (further ones are counted in stats)", s->name,
              what);
    else
        LOG_D(s->lg, MOD, "scope %s: ignored %s", s->name, what);
}

/* Scope messages go as prepared messages: their atoms (`$gen_cast`,
 * `join`, `emitters`, a store's, node names in pids) become atom-cache
 * references on connections that take them, as a BEAM scope's do, and a
 * message to every peer is encoded once. */
static int send_all(rc_pg_scope *s, rc_pmsg *m, const rc_cpid *to)
{
    if (to != NULL)
        return rc_proc_send_msg(s->ps, s->proc, to, m);
    peer *p, *tmp;
    HASH_ITER(hh, s->peers, p, tmp) {
        if (p->synced)
            (void)rc_proc_send_msg(s->ps, s->proc, &p->pid, m);
    }
    return 0;
}

/* to, or every synced peer when to is NULL. A send that closes a
 * connection (its output over the limit) runs the node-down path at once,
 * which may send from this scope again: that send gets a message of its
 * own instead of the one being sent. */
static int send_msg(rc_pg_scope *s, const rc_cpid *to, const ei_x_buff *msg)
{
    const struct iovec part = {.iov_base = msg->buff, .iov_len = (size_t)msg->index};
    rc_pmsg own, *m = &s->msg;
    int nested = s->msg_busy;
    if (nested) {
        pmsg_init(&own);
        m = &own;
    }
    s->msg_busy = 1;
    pmsg_set(m, &part, NULL, 1);
    int rc = send_all(s, m, to);
    if (nested)
        pmsg_free(&own);
    else
        s->msg_busy = 0;
    return rc;
}

int pgs_send_to(rc_pg_scope *s, const rc_cpid *to, const ei_x_buff *msg)
{
    return send_msg(s, to, msg);
}

static void broadcast_peers(rc_pg_scope *s, const ei_x_buff *msg)
{
    (void)send_msg(s, NULL, msg);
}

static node_state *node_state_get(rc_pg_scope *s, uint32_t node, int create)
{
    node_state *ns = NULL;
    HASH_FIND(hh, s->node_states, &node, sizeof node, ns);
    if (ns == NULL && create) {
        ns = calloc(1, sizeof *ns);
        if (ns == NULL)
            return NULL;
        ns->node = node;
        HASH_ADD(hh, s->node_states, node, sizeof ns->node, ns);
    }
    return ns;
}

/* {discover, Self} */
int pgs_encode_discover(rc_pg_scope *s, ei_x_buff *x)
{
    return ei_x_encode_version(x) || ei_x_encode_tuple_header(x, 2) ||
           ei_x_encode_atom(x, "discover") || rc_cpid_write(s->nodes, x, &s->self);
}

static void send_discover_named(rc_pg_scope *s, uint32_t node)
{
    const char *nodename = rc_nodetab_name(s->nodes, node);
    ei_x_buff x;
    if (nodename == NULL || ei_x_new(&x) != 0)
        return;
    if (pgs_encode_discover(s, &x) == 0 &&
        rc_proc_send_named(s->ps, s->proc, s->name, nodename, x.buff, x.index) == 0)
        s->stats.discovers_out++;
    ei_x_free(&x);
}

/* {'$gen_cast', {sync, Self, [{Group, [Pid]}]}} with every local member. */
static size_t local_count(const rc_pg_scope *s, const pgm_group *g)
{
    size_t n, nlocal = 0;
    const rc_cpid *m = pgm_group_members(g, &n);
    for (size_t i = 0; i < n; i++)
        nlocal += m[i].node == s->self_node;
    return nlocal;
}

static int encode_sync(rc_pg_scope *s, ei_x_buff *x)
{
    if (ei_x_encode_version(x) || ei_x_encode_tuple_header(x, 2) ||
        ei_x_encode_atom(x, "$gen_cast") || ei_x_encode_tuple_header(x, 3) ||
        ei_x_encode_atom(x, "sync") || rc_cpid_write(s->nodes, x, &s->self))
        return -1;
    const pgm_table *t = s->table;
    /* One list header for all groups (counted first), not a cons cell per
     * group: a list nested 100,000 tails deep is more than a bounded walker
     * follows, and the message then went without atom-cache references. */
    size_t ngroups = 0;
    for (pgm_group *g = pgm_next(t, NULL); g != NULL; g = pgm_next(t, g))
        ngroups += local_count(s, g) > 0;
    if (ngroups > 0 && ei_x_encode_list_header(x, (long)ngroups))
        return -1;
    for (pgm_group *g = pgm_next(t, NULL); g != NULL; g = pgm_next(t, g)) {
        size_t n, nlocal = local_count(s, g);
        const rc_cpid *m = pgm_group_members(g, &n);
        if (nlocal == 0)
            continue;
        size_t klen;
        const uint8_t *k = pgm_group_key(g, &klen);
        /* a pid is at most 1,036 bytes (a 1,020-byte node name) */
        if (term_x_reserve(x, klen + 16 + nlocal * 1040) != 0 ||
            ei_x_encode_tuple_header(x, 2) ||
            ei_x_append_buf(x, (const char *)k, (int)klen) ||
            ei_x_encode_list_header(x, (long)nlocal))
            return -1;
        for (size_t i = 0; i < n; i++)
            if (m[i].node == s->self_node && rc_cpid_write(s->nodes, x, &m[i]) != 0)
                return -1;
        if (ei_x_encode_empty_list(x))
            return -1;
    }
    return ei_x_encode_empty_list(x);
}


void pgs_send_sync(rc_pg_scope *s, const rc_cpid *to)
{
    ei_x_buff x;
    if (ei_x_new(&x) != 0)
        return;
    peer *p = pgs_find_peer(s, to);
    if (encode_sync(s, &x) == 0 && pgs_send_to(s, to, &x) == 0 && p != NULL)
        p->synced = 1;
    else
        LOG_E(s->lg, MOD, "scope %s: cannot encode sync (out of memory)", s->name);
    ei_x_free(&x);
}

peer *pgs_find_peer(rc_pg_scope *s, const rc_cpid *pid)
{
    peer *p = NULL;
    HASH_FIND(hh, s->peers, pid, sizeof *pid, p);
    return p;
}

/* More scope pids than this on one node are strangers' inventions. */
#define MAX_PEERS_PER_NODE 4u

peer *pgs_add_peer(rc_pg_scope *s, const rc_cpid *pid)
{
    node_state *known = node_state_get(s, pid->node, 0);
    if (known != NULL && known->npeers >= MAX_PEERS_PER_NODE) {
        s->stats.ignored_unknown_peer++;
        return NULL;
    }
    peer *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->pid = *pid;
    erlang_pid epid;
    if (rc_cpid_to_ei(s->nodes, pid, &epid) == 0 &&
        rc_proc_monitor(s->ps, s->proc, &epid, NULL, NULL, &p->mref) == 0)
        p->monitored = 1;
    if (!p->monitored) {
        /* Not connected any more: its DOWN would never come. */
        free(p);
        return NULL;
    }
    HASH_ADD(hh, s->peers, pid, sizeof p->pid, p);
    node_state *ns = node_state_get(s, pid->node, 1);
    if (ns != NULL) {
        ns->has_peer = 1;
        ns->npeers++;
    }
    LOG_I(s->lg, MOD, "scope %s: peer %s found", s->name, rc_nodetab_name(s->nodes, pid->node));
    return p;
}

/* Drops a peer; with the last scope pid of its node, all members of that
 * node go too. */
void pgs_drop_peer(rc_pg_scope *s, peer *p, const char *why)
{
    uint32_t node = p->pid.node;
    HASH_DEL(s->peers, p);
    if (p->monitored && strcmp(why, "down") != 0)
        rc_proc_demonitor(s->ps, s->proc, &p->mref);
    free(p);
    node_state *left = node_state_get(s, node, 0);
    if (left != NULL && left->npeers > 0)
        left->npeers--;
    if (left != NULL && left->npeers > 0 && strcmp(why, "down") == 0) {
        /* Another scope pid of that node is still a peer: its view stands. */
        LOG_D(s->lg, MOD, "scope %s: a scope pid of %s went (%s); its other peer stays",
              s->name, rc_nodetab_name(s->nodes, node), why);
        return;
    }
    size_t gone = pgs_remove_node(s, node);
    LOG_I(s->lg, MOD, "scope %s: peer %s gone (%s), %zu member%s dropped", s->name,
          rc_nodetab_name(s->nodes, node), why, gone, gone == 1 ? "" : "s");
    node_state *ns = node_state_get(s, node, 0);
    if (ns != NULL) {
        ns->has_peer = 0;
        ns->backoff_ms = DISCOVER_MIN_MS;
        ns->next_ms = uv_now(s->loop);
    }
}

/* ------------------------------------------------------------ discovery */

void rc_pg_scope_tick(rc_pg_scope *s, uint64_t now)
{
    node_state *ns, *tmp;
    HASH_ITER(hh, s->node_states, ns, tmp) {
        if (!ns->up || ns->has_peer || now < ns->next_ms)
            continue;
        send_discover_named(s, ns->node);
        ns->next_ms = now + ns->backoff_ms;
        ns->backoff_ms = ns->backoff_ms * 2 > DISCOVER_MAX_MS ? DISCOVER_MAX_MS : ns->backoff_ms * 2;
    }
}

static void on_timer(uv_timer_t *t)
{
    rc_pg_scope *s = t->data;
    rc_pg_scope_tick(s, uv_now(s->loop));
}

void rc_pg_scope_nodeup(rc_pg_scope *s, uint32_t idx)
{
    if (s->stopping)
        return;
    node_state *ns = idx == RC_NODE_NONE ? NULL : node_state_get(s, idx, 1);
    if (ns == NULL)
        return;
    ns->up = 1;
    ns->backoff_ms = DISCOVER_MIN_MS;
    ns->next_ms = uv_now(s->loop) + DISCOVER_MIN_MS;
    if (!ns->has_peer)
        send_discover_named(s, idx);
}

void rc_pg_scope_nodedown(rc_pg_scope *s, uint32_t idx)
{
    node_state *ns = idx == RC_NODE_NONE ? NULL : node_state_get(s, idx, 0);
    if (ns != NULL)
        ns->up = 0;
    peer *p, *tmp;
    HASH_ITER(hh, s->peers, p, tmp) {
        if (p->pid.node == idx)
            pgs_drop_peer(s, p, "down");
    }
}

/* --------------------------------------------------------- local members */

static uint32_t pid_hash(const rc_cpid *pid)
{
    uint64_t h = rc_hash_bytes(RC_HASH_SEED, pid, sizeof *pid);
    return (uint32_t)(h ^ (h >> 32));
}

static int member_is(const void *entry, const void *pid)
{
    return rc_cpid_eq(&((const local_member *)entry)->pid, pid);
}

static local_member *find_local(rc_pg_scope *s, const rc_cpid *pid)
{
    return rc_ptrtab_find(&s->locals, pid_hash(pid), member_is, pid);
}

static int local_add_group(rc_pg_scope *s, const rc_cpid *pid, pgm_group *g)
{
    local_member *lm = find_local(s, pid);
    if (lm == NULL) {
        lm = calloc(1, sizeof *lm);
        if (lm == NULL)
            return -1;
        lm->pid = *pid;
        if (rc_ptrtab_add(&s->locals, pid_hash(pid), lm) != RC_OK) {
            free(lm);
            return -1;
        }
    }
    if (lm->cap == 0) { /* most members (emitters) join one group */
        lm->groups = &lm->one;
        lm->cap = 1;
    } else if (lm->n == lm->cap) {
        uint32_t ncap = lm->cap * 2;
        pgm_group **ng = malloc(ncap * sizeof *ng);
        if (ng == NULL)
            return -1;
        memcpy(ng, lm->groups, lm->n * sizeof *ng);
        if (lm->groups != &lm->one)
            free(lm->groups);
        lm->groups = ng;
        lm->cap = ncap;
    }
    lm->groups[lm->n++] = g;
    return 0;
}

static void local_free(rc_pg_scope *s, local_member *lm)
{
    rc_ptrtab_remove(&s->locals, pid_hash(&lm->pid), lm);
    if (lm->groups != &lm->one)
        free(lm->groups);
    free(lm);
}

/* {join, Self, Group, PidOrPids} / {leave, Self, PidOrPids, [Group]} */
static void send_change(rc_pg_scope *s, int join, const uint8_t *key, size_t klen,
                        const rc_cpid *pids, size_t n)
{
    if (n == 0 || s->peers == NULL)
        return;
    ei_x_buff x;
    if (ei_x_new(&x) != 0)
        return;
    int rc = ei_x_encode_version(&x) || ei_x_encode_tuple_header(&x, 4) ||
             ei_x_encode_atom(&x, join ? "join" : "leave") || rc_cpid_write(s->nodes, &x, &s->self);
    if (!rc && join)
        rc = ei_x_append_buf(&x, (const char *)key, (int)klen);
    if (!rc && n == 1) {
        rc = rc_cpid_write(s->nodes, &x, &pids[0]);
    } else if (!rc) {
        rc = ei_x_encode_list_header(&x, (long)n);
        for (size_t i = 0; i < n && !rc; i++)
            rc = rc_cpid_write(s->nodes, &x, &pids[i]);
        rc = rc || ei_x_encode_empty_list(&x);
    }
    if (!rc && !join)
        rc = ei_x_encode_list_header(&x, 1) || ei_x_append_buf(&x, (const char *)key, (int)klen) ||
             ei_x_encode_empty_list(&x);
    if (!rc)
        broadcast_peers(s, &x);
    ei_x_free(&x);
}

int rc_pg_join(rc_pg_scope *s, const char *group, int glen, const rc_cpid *pids, size_t n)
{
    if (rc_pg_group_key(group, glen, &s->key) != 0)
        return -1;
    pidvec live = {0};
    for (size_t i = 0; i < n; i++) {
        if (rc_procs_find(s->ps, &pids[i]) == NULL)
            continue;
        if (pgs_pidvec_push(&live, &pids[i]) != 0) {
            free(live.v);
            return -1;
        }
    }
    if (live.n == 0) {
        free(live.v);
        return 0;
    }
    pgm_group *g = pgm_add(s->table, (const uint8_t *)s->key.buff, (size_t)s->key.index, live.v,
                           live.n, 0);
    if (g == NULL) {
        free(live.v);
        return -1;
    }
    for (size_t i = 0; i < live.n; i++)
        if (local_add_group(s, &live.v[i], g) != 0)
            LOG_E(s->lg, MOD, "scope %s: out of memory recording a join", s->name);
    size_t klen;
    const uint8_t *key = pgm_group_key(g, &klen);
    send_change(s, 1, key, klen, live.v, live.n);
    pgs_notify_group(s, RC_PG_JOINED, g, live.v, live.n);
    free(live.v);
    return 0;
}

/* Removes one (pid, group) membership from both indexes; the caller has
 * already told peers and subscribers. */
static void local_remove(rc_pg_scope *s, local_member *lm, uint32_t gi)
{
    pgm_group *g = lm->groups[gi];
    lm->groups[gi] = lm->groups[--lm->n];
    pgm_remove_one(s->table, &g, &lm->pid);
}

int rc_pg_leave(rc_pg_scope *s, const char *group, int glen, const rc_cpid *pids, size_t n)
{
    if (rc_pg_group_key(group, glen, &s->key) != 0)
        return -1;
    pgm_group *g = pgm_find(s->table, (const uint8_t *)s->key.buff, (size_t)s->key.index);
    if (g == NULL)
        return 0;
    /* Copy the key: the group is freed when its last member leaves. */
    size_t klen;
    const uint8_t *k = pgm_group_key(g, &klen);
    uint8_t *key = malloc(klen ? klen : 1);
    pidvec left = {0};
    if (key == NULL)
        return -1;
    memcpy(key, k, klen);
    for (size_t i = 0; i < n; i++) {
        local_member *lm = find_local(s, &pids[i]);
        if (lm == NULL)
            continue;
        for (uint32_t gi = 0; gi < lm->n; gi++) {
            if (lm->groups[gi] == g) {
                (void)pgs_pidvec_push(&left, &pids[i]);
                break;
            }
        }
    }
    /* Tell peers and subscribers while the group still exists, then remove
     * one membership per pid that was a member. */
    send_change(s, 0, key, klen, left.v, left.n);
    if (s->nsubs > 0 && left.n > 0)
        notify(s, RC_PG_LEFT, key, klen, left.v, left.n);
    for (size_t i = 0; i < left.n; i++) {
        local_member *lm = find_local(s, &left.v[i]);
        for (uint32_t gi = 0; lm != NULL && gi < lm->n; gi++) {
            size_t ck;
            const uint8_t *cur = pgm_group_key(lm->groups[gi], &ck);
            if (ck == klen && memcmp(cur, key, klen) == 0) {
                local_remove(s, lm, gi);
                break;
            }
        }
        if (lm != NULL && lm->n == 0)
            local_free(s, lm);
    }
    free(left.v);
    free(key);
    return 0;
}

void rc_pg_scope_proc_exit(rc_pg_scope *s, const rc_cpid *pid)
{
    const rc_cpid cp = *pid;
    local_member *lm = find_local(s, &cp);
    if (lm == NULL)
        return;
    /* {leave, Self, Pid, Groups}: one entry per join, as pg sends on DOWN. */
    if (s->peers != NULL) {
        ei_x_buff x;
        if (ei_x_new(&x) == 0) {
            int rc = ei_x_encode_version(&x) || ei_x_encode_tuple_header(&x, 4) ||
                     ei_x_encode_atom(&x, "leave") || rc_cpid_write(s->nodes, &x, &s->self) ||
                     rc_cpid_write(s->nodes, &x, &cp) ||
                     ei_x_encode_list_header(&x, (long)lm->n);
            for (uint32_t i = 0; i < lm->n && !rc; i++) {
                size_t klen;
                const uint8_t *k = pgm_group_key(lm->groups[i], &klen);
                rc = ei_x_append_buf(&x, (const char *)k, (int)klen);
            }
            if (!rc && !ei_x_encode_empty_list(&x))
                broadcast_peers(s, &x);
            ei_x_free(&x);
        }
    }
    while (lm->n > 0) {
        if (s->nsubs > 0) {
            size_t klen;
            const uint8_t *k = pgm_group_key(lm->groups[lm->n - 1], &klen);
            notify(s, RC_PG_LEFT, k, klen, &cp, 1);
        }
        local_remove(s, lm, lm->n - 1);
    }
    local_free(s, lm);
}

/* ------------------------------------------------------------ lifecycle */

rc_pg_scope *rc_pg_scope_start(uv_loop_t *loop, const rc_logger *lg, rc_procs *ps,
                               rc_nodetab *nodes, const char *scope_name)
{
    if (strlen(scope_name) == 0 || strlen(scope_name) >= MAXATOMLEN_UTF8)
        return NULL;
    rc_pg_scope *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->loop = loop;
    s->lg = lg;
    s->ps = ps;
    s->nodes = nodes;
    strcpy(s->name, scope_name);
    s->table = pgm_new();
    pmsg_init(&s->msg);
    if (s->table == NULL || ei_x_new(&s->key) != 0) {
        pgm_free(s->table);
        free(s);
        return NULL;
    }
    s->proc = rc_proc_spawn_registered(ps, pgs_on_signal, s, NULL, scope_name);
    if (s->proc != NULL)
        s->self = rc_proc_cpid(ps, s->proc);
    if (s->proc == NULL) {
        ei_x_free(&s->key);
        pmsg_free(&s->msg);
        pgm_free(s->table);
        free(s);
        return NULL;
    }
    s->self_node = s->self.node;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_timer, TIMER_MS, TIMER_MS);
    return s;
}

void rc_pg_scope_shutdown(rc_pg_scope *s)
{
    if (s->stopping)
        return;
    s->stopping = 1;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, NULL);
    /* Leave everything explicitly so peers drop our members now, not when
     * the connection closes. */
    /* Each leave removes its member (and may shrink the table): walk a
     * copy of the pids, or without memory for one, the first entry each
     * time. */
    size_t n = rc_ptrtab_count(&s->locals), k = 0;
    rc_cpid *pids = n > 0 ? malloc(n * sizeof *pids) : NULL;
    if (pids != NULL) {
        for (size_t i = 0; i < rc_ptrtab_slots(&s->locals); i++) {
            const local_member *lm = rc_ptrtab_at(&s->locals, i);
            if (lm != NULL)
                pids[k++] = lm->pid;
        }
        for (size_t i = 0; i < k; i++)
            rc_pg_scope_proc_exit(s, &pids[i]);
        free(pids);
    }
    while (rc_ptrtab_count(&s->locals) > 0) {
        for (size_t i = 0; i < rc_ptrtab_slots(&s->locals); i++) {
            const local_member *lm = rc_ptrtab_at(&s->locals, i);
            if (lm != NULL) {
                const rc_cpid pid = lm->pid;
                rc_pg_scope_proc_exit(s, &pid);
                break;
            }
        }
    }
}

void rc_pg_scope_free(rc_pg_scope *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < rc_ptrtab_slots(&s->locals); i++) {
        local_member *lm = rc_ptrtab_at(&s->locals, i);
        if (lm != NULL && lm->groups != &lm->one)
            free(lm->groups);
        free(lm);
    }
    rc_ptrtab_free(&s->locals);
    peer *p, *pt;
    HASH_ITER(hh, s->peers, p, pt) {
        HASH_DEL(s->peers, p);
        free(p);
    }
    node_state *ns, *nt;
    HASH_ITER(hh, s->node_states, ns, nt) {
        HASH_DEL(s->node_states, ns);
        free(ns);
    }
    pgm_free(s->table);
    ei_x_free(&s->key);
    pmsg_free(&s->msg);
    bytebuf_free(&s->deferred);
    free(s);
}

const char *rc_pg_scope_name(const rc_pg_scope *s) { return s->name; }
const pgm_table *rc_pg_table(const rc_pg_scope *s) { return s->table; }
uint32_t rc_pg_self_node(const rc_pg_scope *s) { return s->self_node; }
size_t rc_pg_peer_count(const rc_pg_scope *s) { return HASH_COUNT(s->peers); }
const rc_pg_stats *rc_pg_get_stats(const rc_pg_scope *s) { return &s->stats; }

const rc_cpid *rc_pg_members(const rc_pg_scope *s, const uint8_t *key, size_t klen, size_t *n)
{
    pgm_group *g = pgm_find(s->table, key, klen);
    if (g == NULL) {
        *n = 0;
        return NULL;
    }
    return pgm_group_members(g, n);
}

int rc_pg_subscribe(rc_pg_scope *s, rc_pg_notify_fn fn, void *ctx)
{
    if (s->nsubs == MAX_SUBSCRIBERS)
        return -1;
    s->subs[s->nsubs].fn = fn;
    s->subs[s->nsubs].ctx = ctx;
    s->nsubs++;
    return 0;
}

int rc_pg_scope_pid(const rc_pg_scope *s, rc_cpid *out)
{
    *out = s->self;
    return 0;
}
