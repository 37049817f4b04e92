#include "proc/procs_internal.h"

#include "codec/ctrl.h"
#include "codec/term_read.h"
#include "codec/pmsg.h"
#include "util/err.h"
#include "util/hash.h"

#include <stdlib.h>
#include <sys/uio.h>
#include <string.h>
#include <time.h>

static uint64_t pid_key(const erlang_pid *p) { return ((uint64_t)p->num << 32) | p->serial; }

static uint32_t key_hash(uint64_t key) { return (uint32_t)(rc_hash_mix(RC_HASH_SEED, key) >> 32); }

static uint32_t name_hash(const char *name, size_t n)
{
    uint64_t h = rc_hash_bytes(RC_HASH_SEED, name, n);
    return (uint32_t)(h ^ (h >> 32));
}

static int key_eq(const void *entry, const void *key)
{
    return ((const rc_proc *)entry)->key == *(const uint64_t *)key;
}

static int name_eq(const void *entry, const void *key)
{
    return strcmp(((const rc_proc *)entry)->name, key) == 0;
}

rc_proc *prc_by_key(const rc_procs *ps, uint64_t key)
{
    return rc_ptrtab_find(&ps->by_key, key_hash(key), key_eq, &key);
}

int rc_ref_equal(const erlang_ref *a, const erlang_ref *b)
{
    if (a->len != b->len || a->creation != b->creation || strcmp(a->node, b->node) != 0)
        return 0;
    for (int i = 0; i < a->len && i < 5; i++)
        if (a->n[i] != b->n[i])
            return 0;
    return 1;
}

rc_procs *rc_procs_new(const rc_logger *lg, const rc_procs_transport *tr, rc_nodetab *nodes,
                       const char *node_name, uint32_t creation)
{
    if (strlen(node_name) >= MAXATOMLEN_UTF8 || tr->sendv == NULL)
        return NULL;
    rc_procs *ps = calloc(1, sizeof *ps);
    if (ps == NULL)
        return NULL;
    ps->lg = lg;
    ps->tr = *tr;
    strcpy(ps->node_name, node_name);
    ps->creation = creation;
    ps->next_num = 1;
    ps->nodes = nodes;
    ps->self_node = rc_nodetab_intern(nodes, node_name, strlen(node_name));
    ps->rmons = rmon_new();
    if (ps->rmons == NULL || ps->self_node == RC_NODE_NONE) {
        rmon_free(ps->rmons);
        free(ps);
        return NULL;
    }
    return ps;
}

const char *rc_procs_node_name(const rc_procs *ps) { return ps->node_name; }
const rc_procs_stats *rc_procs_get_stats(const rc_procs *ps) { return &ps->stats; }
const rc_logger *rc_procs_logger(const rc_procs *ps) { return ps->lg; }
size_t rc_procs_remote_monitors(const rc_procs *ps) { return rmon_count(ps->rmons); }
size_t rc_procs_count(const rc_procs *ps) { return ps->live; }
rc_cpid rc_proc_cpid(const rc_procs *ps, const rc_proc *p)
{
    return (rc_cpid){.node = ps->self_node, .num = (uint32_t)(p->key >> 32),
                     .serial = (uint32_t)p->key, .creation = ps->creation};
}

void rc_proc_get_pid(const rc_procs *ps, const rc_proc *p, erlang_pid *out)
{
    strcpy(out->node, ps->node_name);
    out->num = (unsigned)(p->key >> 32);
    out->serial = (unsigned)p->key;
    out->creation = ps->creation;
}
void *rc_proc_ctx(const rc_proc *p) { return p->ctx; }

int rc_procs_is_local(const rc_procs *ps, const erlang_pid *pid)
{
    return strcmp(pid->node, ps->node_name) == 0;
}

void rc_procs_make_ref(rc_procs *ps, erlang_ref *ref)
{
    memset(ref, 0, sizeof *ref);
    strcpy(ref->node, ps->node_name);
    ps->ref_counter++;
    ref->len = 3;
    ref->n[0] = (unsigned)(ps->ref_counter & 0x3ffffu);
    ref->n[1] = (unsigned)(ps->ref_counter >> 18);
    ref->n[2] = (unsigned)(ps->ref_counter >> 50);
    ref->creation = ps->creation;
}

rc_proc *rc_procs_lookup(rc_procs *ps, const erlang_pid *pid)
{
    if (!rc_procs_is_local(ps, pid) || pid->creation != ps->creation)
        return NULL;
    rc_proc *p = prc_by_key(ps, pid_key(pid));
    return (p != NULL && !p->dead) ? p : NULL;
}

rc_proc *rc_procs_find(rc_procs *ps, const rc_cpid *pid)
{
    if (pid->node != ps->self_node || pid->creation != ps->creation)
        return NULL;
    rc_proc *p = prc_by_key(ps, ((uint64_t)pid->num << 32) | pid->serial);
    return (p != NULL && !p->dead) ? p : NULL;
}

rc_proc *rc_procs_whereis(rc_procs *ps, const char *name)
{
    rc_proc *p = rc_ptrtab_find(&ps->names, name_hash(name, strlen(name)), name_eq, name);
    return (p != NULL && !p->dead) ? p : NULL;
}

rc_proc *rc_proc_spawn(rc_procs *ps, rc_proc_handler fn, void *ctx, void (*free_ctx)(void *))
{
    rc_proc *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    /* Pids are (num, serial) pairs as ei makes them; skip ones still in use
     * so a long-lived node never hands out a duplicate. */
    for (unsigned tries = 0; tries < (PID_NUM_MAX + 1u) * 4u; tries++) {
        unsigned num = ps->next_num, serial = ps->next_serial;
        if (++ps->next_num > PID_NUM_MAX) {
            ps->next_num = 0;
            ps->next_serial = (ps->next_serial + 1u) & PID_SERIAL_MAX;
        }
        uint64_t key = ((uint64_t)num << 32) | serial;
        if (prc_by_key(ps, key) == NULL) {
            p->key = key;
            p->fn = fn;
            p->ctx = ctx;
            p->free_ctx = free_ctx;
            if (rc_ptrtab_add(&ps->by_key, key_hash(key), p) != RC_OK)
                break;
            ps->live++;
            return p;
        }
    }
    free(p);
    return NULL;
}

int rc_proc_register(rc_procs *ps, rc_proc *p, const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > MAX_NAME_BYTES || p->name != NULL || rc_procs_whereis(ps, name) != NULL)
        return -1;
    char *copy = strdup(name);
    if (copy == NULL)
        return -1;
    uint32_t h = name_hash(name, n);
    rc_proc *stale = rc_ptrtab_find(&ps->names, h, name_eq, name);
    if (stale != NULL) { /* a dead process's name, not yet reaped */
        rc_ptrtab_remove(&ps->names, h, stale);
        free(stale->name);
        stale->name = NULL;
    }
    p->name = copy;
    if (rc_ptrtab_add(&ps->names, h, p) != RC_OK) {
        p->name = NULL;
        free(copy);
        return -1;
    }
    return 0;
}

rc_proc *rc_proc_spawn_registered(rc_procs *ps, rc_proc_handler fn, void *ctx,
                                  void (*free_ctx)(void *), const char *name)
{
    rc_proc *p = rc_proc_spawn(ps, fn, ctx, free_ctx);
    if (p != NULL && rc_proc_register(ps, p, name) != 0) {
        rc_proc_exit(ps, p, "normal");
        return NULL;
    }
    return p;
}

static void unregister(rc_procs *ps, rc_proc *p)
{
    if (p->name == NULL)
        return;
    rc_ptrtab_remove(&ps->names, name_hash(p->name, strlen(p->name)), p);
    free(p->name);
    p->name = NULL;
}

static void proc_free(rc_proc *p)
{
    if (p->free_ctx)
        p->free_ctx(p->ctx);
    free(p->links);
    free(p->name);
    for (size_t i = 0; i < p->nomons; i++)
        free(p->omons[i].name);
    free(p->omons);
    free(p);
}

/* ------------------------------------------------------------- low-level send */

/* One frame body (control term, then the message's parts) to a node. */
static int send_to_index(rc_procs *ps, uint32_t idx, const struct iovec *parts, int nparts)
{
    if (idx == RC_NODE_NONE || ps->tr.sendv(ps->tr.ctx, idx, parts, nparts) != 0) {
        ps->stats.msgs_dropped++;
        return -1;
    }
    ps->stats.msgs_out++;
    return 0;
}

static int send_to_node(rc_procs *ps, const char *node, const struct iovec *parts, int nparts)
{
    return send_to_index(ps, rc_nodetab_intern(ps->nodes, node, strlen(node)), parts, nparts);
}

int prc_send_ctrl(rc_procs *ps, const char *node, ei_x_buff *ctrl, const char *msg, int len)
{
    struct iovec v[2] = {{.iov_base = ctrl->buff, .iov_len = (size_t)ctrl->index},
                         {.iov_base = (void *)msg, .iov_len = msg ? (size_t)len : 0}};
    return send_to_node(ps, node, v, msg ? 2 : 1);
}

/* 1 if p had a monitor with that reference (now removed). */
static int take_out_monitor(const rc_procs *ps, rc_proc *p, const erlang_ref *ref)
{
    long i = prc_find_out_monitor(ps, p, ref);
    if (i < 0)
        return 0;
    prc_drop_out_monitor(p, (size_t)i);
    return 1;
}

/* Queues a signal to a C process of this node; it is delivered once the
 * running handler returns (or by the caller's drain), never re-entering
 * one. body: the message with its version byte, or a DOWN's reason. */
static int queue_local(rc_procs *ps, uint64_t to_key, const erlang_pid *from,
                       const erlang_ref *ref, const char *body, int len)
{
    local_msg *m = calloc(1, sizeof *m);
    char *copy = malloc(len > 0 ? (size_t)len : 1);
    erlang_ref *rcopy = ref != NULL ? malloc(sizeof *rcopy) : NULL;
    if (m == NULL || copy == NULL || (ref != NULL && rcopy == NULL)) {
        free(m);
        free(copy);
        free(rcopy);
        return -1;
    }
    memcpy(copy, body, (size_t)len);
    if (rcopy != NULL)
        *rcopy = *ref;
    m->to_key = to_key;
    m->msg = copy;
    m->len = len;
    m->ref = rcopy;
    if (from != NULL) {
        m->has_from = 1;
        m->from = *from;
    }
    if (ps->q_tail)
        ps->q_tail->next = m;
    else
        ps->q_head = m;
    ps->q_tail = m;
    return 0;
}

/* A local monitor's DOWN, queued. */
void prc_queue_down(rc_procs *ps, uint64_t watcher_key, const erlang_pid *target,
                       const erlang_ref *ref, const char *reason)
{
    ei_x_buff x;
    if (ei_x_new(&x) != 0)
        return;
    if (ei_x_encode_atom(&x, reason) == 0)
        (void)queue_local(ps, watcher_key, target, ref, x.buff, x.index);
    ei_x_free(&x);
}

void rc_procs_flush(rc_procs *ps)
{
    if (ps->depth != 0)
        return;
    ps->depth++;
    prc_drain_local(ps);
    ps->depth--;
    prc_reap(ps);
}

void prc_drain_local(rc_procs *ps)
{
    while (ps->q_head != NULL) {
        local_msg *m = ps->q_head;
        ps->q_head = m->next;
        if (ps->q_head == NULL)
            ps->q_tail = NULL;
        rc_proc *p = prc_by_key(ps, m->to_key);
        if (p != NULL && !p->dead && m->ref == NULL) {
            rc_signal sig = {.kind = RC_SIG_MSG, .from = m->has_from ? &m->from : NULL,
                             .buf = m->msg, .len = m->len};
            prc_deliver(ps, p, &sig);
        } else if (m->ref != NULL && p != NULL && !p->dead && take_out_monitor(ps, p, m->ref)) {
            /* Only while the monitor stands: a demonitor before delivery
             * means no DOWN, as on the BEAM with the flush option. */
            rc_signal sig = {.kind = RC_SIG_DOWN, .from = m->has_from ? &m->from : NULL,
                             .buf = m->msg, .len = m->len, .ref = m->ref};
            prc_deliver(ps, p, &sig);
        }
        free(m->ref);
        free(m->msg);
        free(m);
    }
}

void prc_reap(rc_procs *ps)
{
    while (ps->zombies != NULL) {
        rc_proc *p = ps->zombies;
        ps->zombies = p->next_zombie;
        rc_ptrtab_remove(&ps->by_key, key_hash(p->key), p);
        proc_free(p);
    }
}

/* Runs a handler; when the outermost handler returns, queued local messages
 * are delivered and ended processes are freed. */
void prc_deliver(rc_procs *ps, rc_proc *p, const rc_signal *sig)
{
    if (p->dead)
        return;
    ps->depth++;
    p->fn(ps, p, sig);
    ps->depth--;
    if (ps->depth == 0) {
        ps->depth++;
        prc_drain_local(ps);
        ps->depth--;
        prc_reap(ps);
    }
}

int rc_proc_send(rc_procs *ps, rc_proc *from, const erlang_pid *to, const char *msg, int len)
{
    if (rc_procs_is_local(ps, to)) {
        rc_proc *p = rc_procs_lookup(ps, to);
        erlang_pid fpid;
        if (from != NULL)
            rc_proc_get_pid(ps, from, &fpid);
        if (p == NULL || queue_local(ps, p->key, from ? &fpid : NULL, NULL, msg, len) != 0) {
            ps->stats.msgs_dropped++;
            return -1;
        }
        ps->stats.msgs_local++;
        rc_procs_flush(ps);
        return 0;
    }
    struct iovec part = {.iov_base = (void *)msg, .iov_len = (size_t)len};
    return rc_proc_send_parts(ps, from, to, &part, 1);
}

int rc_proc_dest_busy(rc_procs *ps, const erlang_pid *to, size_t bytes)
{
    if (ps->tr.busy == NULL || rc_procs_is_local(ps, to))
        return 0;
    uint32_t node = rc_nodetab_find(ps->nodes, to->node, strlen(to->node));
    /* the frame's head and control term come on top of the message */
    return node != RC_NODE_NONE && ps->tr.busy(ps->tr.ctx, node, bytes + 256);
}

uint32_t rc_procs_take_busy_hit(rc_procs *ps)
{
    return ps->tr.take_busy_hit != NULL ? ps->tr.take_busy_hit(ps->tr.ctx) : RC_NODE_NONE;
}

int rc_procs_still_busy(rc_procs *ps, uint32_t node)
{
    return ps->tr.still_busy != NULL && ps->tr.still_busy(ps->tr.ctx, node);
}

/* A send to a pid of another node (idx): the control term in a stack
 * buffer, the body's parts copied once into the connection's output. */
static int send_remote(rc_procs *ps, uint32_t idx, const erlang_pid *to,
                       const struct iovec *parts, int nparts)
{
    char ctrl[MAXATOMLEN_UTF8 + 64];
    struct iovec v[8];
    int len = ctrl_encode_send_fixed(ctrl, (int)sizeof ctrl, to);
    if (len < 0 || nparts > 7)
        return -1;
    v[0].iov_base = ctrl;
    v[0].iov_len = (size_t)len;
    for (int i = 0; i < nparts; i++)
        v[i + 1] = parts[i];
    return send_to_index(ps, idx, v, nparts + 1);
}

int rc_proc_send_node(rc_procs *ps, rc_proc *from, uint32_t node, const erlang_pid *to,
                      const char *msg, int len)
{
    if (node == ps->self_node || len < 0)
        return rc_proc_send(ps, from, to, msg, len);
    struct iovec part = {.iov_base = (void *)msg, .iov_len = (size_t)len};
    return send_remote(ps, node, to, &part, 1);
}

int rc_proc_send_parts(rc_procs *ps, rc_proc *from, const erlang_pid *to,
                       const struct iovec *parts, int nparts)
{
    size_t total = 0;
    for (int i = 0; i < nparts; i++)
        total += parts[i].iov_len;
    if (total > INT32_MAX)
        return -1;
    if (!rc_procs_is_local(ps, to))
        return send_remote(ps, rc_nodetab_intern(ps->nodes, to->node, strlen(to->node)), to,
                           parts, nparts);
    char *flat = malloc(total ? total : 1);
    if (flat == NULL)
        return -1;
    size_t off = 0;
    for (int i = 0; i < nparts; i++) {
        memcpy(flat + off, parts[i].iov_base, parts[i].iov_len);
        off += parts[i].iov_len;
    }
    int rc = rc_proc_send(ps, from, to, flat, (int)total);
    free(flat);
    return rc;
}

int rc_proc_send_msg(rc_procs *ps, rc_proc *from, const rc_cpid *to, rc_pmsg *m)
{
    erlang_pid pid;
    if (rc_cpid_to_ei(ps->nodes, to, &pid) != 0) {
        ps->stats.msgs_dropped++;
        return -1;
    }
    if (to->node == ps->self_node || ps->tr.sendm == NULL)
        return rc_proc_send_parts(ps, from, &pid, m->parts, m->nparts);
    if (ps->tr.sendm(ps->tr.ctx, to->node, &pid, m) != 0) {
        ps->stats.msgs_dropped++;
        return -1;
    }
    ps->stats.msgs_out++;
    return 0;
}

int rc_proc_send_named(rc_procs *ps, rc_proc *from, const char *name, const char *node,
                       const char *msg, int len)
{
    if (strcmp(node, ps->node_name) == 0) {
        rc_proc *p = rc_procs_whereis(ps, name);
        if (p == NULL) {
            ps->stats.msgs_dropped++;
            return -1;
        }
        erlang_pid to;
        rc_proc_get_pid(ps, p, &to);
        return rc_proc_send(ps, from, &to, msg, len);
    }
    if (from == NULL)
        return -1;
    ei_x_buff x;
    if (ei_x_new(&x) != 0)
        return -1;
    erlang_pid fpid;
    rc_proc_get_pid(ps, from, &fpid);
    int rc = ctrl_encode_reg_send(&x, &fpid, name) == 0 ? prc_send_ctrl(ps, node, &x, msg, len) : -1;
    ei_x_free(&x);
    return rc;
}

/* ------------------------------------------------------------ links/monitors */

int prc_add_link(rc_procs *ps, rc_proc *p, const erlang_pid *other)
{
    rc_cpid c;
    if (rc_cpid_from_ei(ps->nodes, other, &c) != 0)
        return RC_ENOMEM;
    for (size_t i = 0; i < p->nlinks; i++)
        if (rc_cpid_eq(&p->links[i], &c))
            return RC_OK;
    if (p->nlinks >= MAX_LINKS_PER_PROC)
        return RC_ESYSTEM_LIMIT;
    if (p->nlinks == p->caplinks) {
        size_t ncap = p->caplinks ? p->caplinks * 2 : 2;
        rc_cpid *n = realloc(p->links, ncap * sizeof *n);
        if (n == NULL)
            return RC_ENOMEM;
        p->links = n;
        p->caplinks = ncap;
    }
    p->links[p->nlinks++] = c;
    return RC_OK;
}

void prc_shrink_links(rc_proc *p)
{
    if (p->caplinks > 8 && p->nlinks < p->caplinks / 4) {
        rc_cpid *n = realloc(p->links, (p->caplinks / 2) * sizeof *n);
        if (n != NULL) {
            p->links = n;
            p->caplinks /= 2;
        }
    }
}

int prc_remove_link(rc_procs *ps, rc_proc *p, const erlang_pid *other)
{
    rc_cpid c;
    if (rc_cpid_from_ei(ps->nodes, other, &c) != 0)
        return 0;
    for (size_t i = 0; i < p->nlinks; i++) {
        if (rc_cpid_eq(&p->links[i], &c)) {
            p->links[i] = p->links[--p->nlinks];
            prc_shrink_links(p);
            return 1;
        }
    }
    return 0;
}

static int rmon_key(rc_procs *ps, const erlang_ref *ref, rmon_entry *e)
{
    memset(e, 0, sizeof *e);
    uint32_t node = rc_nodetab_intern(ps->nodes, ref->node, strlen(ref->node));
    if (node == UINT32_MAX || ref->len < 1 || ref->len > 5)
        return -1;
    e->ref_node = node;
    e->ref_len = (uint8_t)ref->len;
    e->ref_creation = ref->creation;
    for (int i = 0; i < ref->len; i++)
        e->ref[i] = ref->n[i];
    return 0;
}

static void rmon_ref(const rc_procs *ps, const rmon_entry *e, erlang_ref *ref)
{
    memset(ref, 0, sizeof *ref);
    const char *node = rc_nodetab_name(ps->nodes, e->ref_node);
    snprintf(ref->node, sizeof ref->node, "%s", node ? node : "");
    ref->len = e->ref_len;
    ref->creation = e->ref_creation;
    for (int i = 0; i < e->ref_len; i++)
        ref->n[i] = e->ref[i];
}

int prc_add_monitor(rc_procs *ps, rc_proc *p, rmon_entry *e, int by_name)
{
    e->by_name = (uint8_t)(by_name != 0);
    e->target = p->key;
    int rc = rmon_add(ps->rmons, e, MAX_MONITORS_PER_NODE);
    if (rc == RC_OK)
        p->nmons++;
    return rc;
}

int prc_add_remote_monitor(rc_procs *ps, rc_proc *p, const erlang_pid *watcher,
                           const erlang_ref *ref, int by_name)
{
    rmon_entry e;
    if (rmon_key(ps, ref, &e) != 0)
        return RC_EBADARG;
    if (rc_cpid_from_ei(ps->nodes, watcher, &e.watcher) != 0)
        return RC_ENOMEM;
    return prc_add_monitor(ps, p, &e, by_name);
}


void prc_remove_remote_monitor(rc_procs *ps, rc_proc *p, const erlang_ref *ref)
{
    rmon_entry key, got;
    if (rmon_key(ps, ref, &key) == 0 && rmon_remove(ps->rmons, &key, &got) == 1 &&
        got.target == p->key && p->nmons > 0)
        p->nmons--;
}

int rc_proc_link(rc_procs *ps, rc_proc *self, const erlang_pid *other)
{
    if (self->dead || rc_procs_is_local(ps, other))
        return -1;
    ei_x_buff x;
    if (ei_x_new(&x) != 0)
        return -1;
    erlang_pid me;
    rc_proc_get_pid(ps, self, &me);
    int rc = ctrl_encode_link(&x, CTRL_LINK, &me, other);
    if (rc == 0)
        rc = prc_send_ctrl(ps, other->node, &x, NULL, 0);
    ei_x_free(&x);
    if (rc == 0)
        rc = prc_add_link(ps, self, other) == RC_OK ? 0 : -1;
    return rc;
}

void rc_proc_unlink(rc_procs *ps, rc_proc *self, const erlang_pid *other)
{
    if (!prc_remove_link(ps, self, other))
        return;
    ei_x_buff x;
    if (ei_x_new(&x) != 0)
        return;
    erlang_pid me;
    rc_proc_get_pid(ps, self, &me);
    if (ctrl_encode_unlink_id(&x, CTRL_UNLINK_ID, ++ps->unlink_id, &me, other) == 0)
        (void)prc_send_ctrl(ps, other->node, &x, NULL, 0);
    ei_x_free(&x);
}

void prc_encode_reason_atom(char *buf, int cap, const char *atom, int *len)
{
    int idx = 0;
    (void)cap;
    ei_encode_atom(buf, &idx, atom);
    *len = idx;
}

/* A monitor that ends as it is made: the target is missing (noproc) or the
 * watcher's node holds too many (system_limit). */
void prc_refused(rc_procs *ps, uint64_t *counter, const char *peer, const char *what)
{
    if ((*counter)++ == 0)
        LOG_W(ps->lg, MOD, "%s holds too many %s on this node's processes: refusing more "
              "(system_limit; counted, logged once)", peer, what);
}

void prc_send_monitor_exit_now(rc_procs *ps, const ctrl_msg *m, const char *reason)
{
    ei_x_buff x;
    if (ei_x_new(&x) != 0)
        return;
    if (ctrl_encode_monitor_exit(&x, m->to_is_name ? NULL : &m->to, m->to_is_name ? m->to_name : NULL,
                                 &m->from, &m->ref, reason) == 0)
        (void)prc_send_ctrl(ps, m->from.node, &x, NULL, 0);
    ei_x_free(&x);
}

void rc_procs_set_exit_hook(rc_procs *ps, rc_proc_exit_hook fn, void *ctx)
{
    ps->exit_hook = fn;
    ps->exit_hook_ctx = ctx;
}

typedef struct exit_ctx {
    rc_procs *ps;
    rc_proc *p;
    ei_x_buff *x;
    const char *reason;
} exit_ctx;

static int monitor_of_proc(void *ctx, const rmon_entry *e)
{
    return e->target == ((exit_ctx *)ctx)->p->key;
}

/* The process ended: its remote watcher gets MONITOR_P_EXIT. */
static void tell_monitor_exit(void *ctx, const rmon_entry *e)
{
    exit_ctx *ec = ctx;
    erlang_pid watcher;
    erlang_ref ref;
    if (rc_cpid_to_ei(ec->ps->nodes, &e->watcher, &watcher) != 0)
        return;
    rmon_ref(ec->ps, e, &ref);
    erlang_pid self;
    rc_proc_get_pid(ec->ps, ec->p, &self);
    if (e->watcher.node == ec->ps->self_node) {
        prc_queue_down(ec->ps, pid_key(&watcher), &self, &ref, ec->reason);
        return;
    }
    const char *as_name = (e->by_name && ec->p->name) ? ec->p->name : NULL;
    ec->x->index = 0;
    if (ctrl_encode_monitor_exit(ec->x, as_name ? NULL : &self, as_name, &watcher, &ref,
                                 ec->reason) == 0)
        (void)prc_send_ctrl(ec->ps, watcher.node, ec->x, NULL, 0);
}

void rc_proc_exit(rc_procs *ps, rc_proc *p, const char *reason)
{
    if (p->dead)
        return;
    p->dead = 1;
    ps->live--;
    if (ps->exit_hook) {
        rc_cpid self = rc_proc_cpid(ps, p);
        ps->exit_hook(ps->exit_hook_ctx, &self);
    }
    ei_x_buff x;
    if (ei_x_new(&x) == 0) {
        erlang_pid self;
        rc_proc_get_pid(ps, p, &self);
        for (size_t i = 0; i < p->nlinks; i++) {
            x.index = 0;
            erlang_pid other;
            if (p->links[i].node == ps->self_node ||
                rc_cpid_to_ei(ps->nodes, &p->links[i], &other) != 0)
                continue; /* C-to-C links are not created by anything yet */
            if (ctrl_encode_exit(&x, CTRL_EXIT, &self, &other, reason) == 0)
                (void)prc_send_ctrl(ps, other.node, &x, NULL, 0);
        }
        if (p->nmons > 0) {
            exit_ctx ec = {.ps = ps, .p = p, .x = &x, .reason = reason};
            rmon_remove_if(ps->rmons, monitor_of_proc, tell_monitor_exit, &ec);
        }
        ei_x_free(&x);
    }
    while (p->nomons > 0)
        prc_demonitor_at(ps, p, p->nomons - 1);
    p->nlinks = p->nmons = 0;
    free(p->links);
    p->links = NULL;
    p->caplinks = 0;
    unregister(ps, p);
    p->next_zombie = ps->zombies;
    ps->zombies = p;
    rc_procs_flush(ps); /* local DOWNs go out once nothing else runs */
}

void rc_procs_exit_all(rc_procs *ps, const char *reason)
{
    /* No handler runs meanwhile (depth), so nothing is added mid-walk. */
    ps->depth++;
    for (size_t i = 0; i < rc_ptrtab_slots(&ps->by_key); i++) {
        rc_proc *p = rc_ptrtab_at(&ps->by_key, i);
        if (p != NULL)
            rc_proc_exit(ps, p, reason);
    }
    ps->depth--;
    prc_reap(ps);
}

void rc_procs_free(rc_procs *ps)
{
    if (ps == NULL)
        return;
    prc_reap(ps);
    rc_ptrtab_free(&ps->names);
    for (size_t i = 0; i < rc_ptrtab_slots(&ps->by_key); i++)
        if (rc_ptrtab_at(&ps->by_key, i) != NULL)
            proc_free(rc_ptrtab_at(&ps->by_key, i));
    rc_ptrtab_free(&ps->by_key);
    rmon_free(ps->rmons);
    while (ps->q_head) {
        local_msg *m = ps->q_head;
        ps->q_head = m->next;
        free(m->ref);
        free(m->msg);
        free(m);
    }
    free(ps);
}

