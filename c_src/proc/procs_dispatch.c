/* procs_dispatch: a frame from a peer, decoded and checked (a control
 * message that speaks for another node than the connection's is refused),
 * becomes a signal to a process of this node, a link or monitor entry, or
 * an answer; and a peer's connection going ends what it held. */
#include "proc/procs_internal.h"

#include "codec/ctrl.h"
#include "codec/term_read.h"
#include "util/err.h"

#include <stdlib.h>
#include <sys/uio.h>
#include <string.h>
#include <time.h>

/* --------------------------------------------------------------- dispatching */

/* A message that failed validation (too deep, lying sizes) may still be a
 * gen_server call whose caller would otherwise wait for its timeout: read,
 * bounded, only {'$gen_call', {Pid, Tag}, _} and answer {Tag, {error,
 * badarg}} from the target. Nothing past the From is read. */
static void answer_invalid_call(rc_procs *ps, rc_proc *target, const char *buf, int len)
{
    if (len < 3 || (unsigned char)buf[0] != 131 || (unsigned char)buf[1] != ERL_SMALL_TUPLE_EXT ||
        (unsigned char)buf[2] != 3)
        return;
    int idx = 3, end = 3, from_arity = 0;
    char atom[MAXATOMLEN];
    erlang_pid caller;
    if (term_skip(buf, len, &end) != 0 || ei_decode_atom(buf, &idx, atom) != 0 ||
        strcmp(atom, "$gen_call") != 0)
        return;
    int from_end = idx;
    if (term_skip(buf, len, &from_end) != 0 || ei_decode_tuple_header(buf, &idx, &from_arity) != 0 ||
        from_arity != 2 || ei_decode_pid(buf, &idx, &caller) != 0)
        return;
    ei_x_buff x;
    if (ei_x_new_with_version(&x) != 0)
        return;
    if (ei_x_encode_tuple_header(&x, 2) == 0 && ei_x_append_buf(&x, buf + idx, from_end - idx) == 0 &&
        ei_x_encode_tuple_header(&x, 2) == 0 && ei_x_encode_atom(&x, "error") == 0 &&
        ei_x_encode_atom(&x, "badarg") == 0)
        (void)rc_proc_send(ps, target, &caller, x.buff, x.index);
    ei_x_free(&x);
}

static rc_proc *resolve_target(rc_procs *ps, const ctrl_msg *m)
{
    return m->to_is_name ? rc_procs_whereis(ps, m->to_name) : rc_procs_lookup(ps, &m->to);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Link, monitor and exit signals are made by a process of the sending node
 * about itself; a peer that names another node in them would have this node
 * hold state for (and dial) a node it never spoke to. The BEAM closes such
 * a connection; so does the caller of rc_procs_on_frame. */
static int speaks_for_other_node(const ctrl_msg *m, const char *peer)
{
    switch (m->op) {
    case CTRL_LINK:
    case CTRL_UNLINK:
    case CTRL_UNLINK_ID:
    case CTRL_UNLINK_ID_ACK:
    case CTRL_EXIT:
    case CTRL_EXIT_TT:
    case CTRL_EXIT2:
    case CTRL_EXIT2_TT:
        return !m->has_from || strcmp(m->from.node, peer) != 0;
    case CTRL_MONITOR_P:
    case CTRL_DEMONITOR_P:
        /* A monitor's reference is made by the watcher's node too; one of
         * another node would be interned and kept for as long as the
         * monitor stands. */
        return !m->has_from || strcmp(m->from.node, peer) != 0 || !m->has_ref ||
               strcmp(m->ref.node, peer) != 0;
    default:
        return 0;
    }
}

#define FOREIGN_WINDOW_MS 10000u
#define FOREIGN_LINES 5u

static void refuse_foreign(rc_procs *ps, const ctrl_msg *m, const char *peer)
{
    ps->stats.err_foreign_from++;
    unsigned left_out = 0;
    int ok = rc_ratelimit_allow(&ps->foreign_log, mono_ms(), FOREIGN_WINDOW_MS, FOREIGN_LINES,
                                &left_out);
    if (left_out > 0)
        LOG_W(ps->lg, MOD, "%u more control messages speaking for another node were refused",
              left_out);
    if (ok)
        LOG_W(ps->lg, MOD, "control message %d from %s names node %s as its sender: refused, "
              "connection closed", m->op, peer, m->has_from ? m->from.node : "(none)");
}

int rc_procs_on_frame(rc_procs *ps, uint32_t peer_node, const char *payload, size_t len)
{
    const char *peer = rc_nodetab_name(ps->nodes, peer_node);
    if (peer == NULL)
        return RC_EBADARG;
    ctrl_msg m;
    if (ctrl_decode(payload, len, &m) != 0) {
        ps->stats.err_malformed++;
        if (!ps->warned_malformed++)
            LOG_W(ps->lg, MOD, "malformed frame from %s ignored (further ones logged at debug)",
                  peer);
        else
            LOG_D(ps->lg, MOD, "malformed frame from %s ignored", peer);
        return 0;
    }
    if (speaks_for_other_node(&m, peer)) {
        refuse_foreign(ps, &m, peer);
        return RC_EBADARG;
    }
    ps->stats.msgs_in++;
    rc_proc *p = NULL;
    ei_x_buff x;
    if (ctrl_is_send(m.op)) {
        p = resolve_target(ps, &m); /* ctrl_decode ensured a message body */
        if (p == NULL) {
            ps->stats.err_unknown_target++;
            LOG_D(ps->lg, MOD, "message from %s to unknown %s dropped", peer,
                  m.to_is_name ? m.to_name : "pid");
        } else if (m.msg_invalid) {
            ps->stats.err_malformed++;
            LOG_D(ps->lg, MOD, "invalid message from %s dropped", peer);
            answer_invalid_call(ps, p, m.msg, m.msg_len);
        } else {
            rc_signal sig = {.kind = RC_SIG_MSG, .from = m.has_from ? &m.from : NULL,
                             .buf = m.msg, .len = m.msg_len, .peer = peer, .peer_node = peer_node};
            prc_deliver(ps, p, &sig);
        }
        return 0;
    }
    switch (m.op) {
    case CTRL_LINK:
        p = rc_procs_lookup(ps, &m.to);
        if (p != NULL) {
            int rc = prc_add_link(ps, p, &m.from);
            if (rc == RC_OK)
                return 0;
            if (rc == RC_ESYSTEM_LIMIT) {
                prc_refused(ps, &ps->stats.err_link_limit, peer, "links");
                if (ei_x_new(&x) == 0) {
                    if (ctrl_encode_exit(&x, CTRL_EXIT, &m.to, &m.from, "system_limit") == 0)
                        (void)prc_send_ctrl(ps, m.from.node, &x, NULL, 0);
                    ei_x_free(&x);
                }
                return 0;
            }
        }
        /* Linking to a process that does not exist: the linker gets noproc. */
        if (ei_x_new(&x) == 0) {
            if (ctrl_encode_exit(&x, CTRL_EXIT, &m.to, &m.from, "noproc") == 0)
                (void)prc_send_ctrl(ps, m.from.node, &x, NULL, 0);
            ei_x_free(&x);
        }
        return 0;
    case CTRL_UNLINK:
        p = rc_procs_lookup(ps, &m.to);
        if (p)
            prc_remove_link(ps, p, &m.from);
        return 0;
    case CTRL_UNLINK_ID:
        p = rc_procs_lookup(ps, &m.to);
        if (p)
            prc_remove_link(ps, p, &m.from);
        if (ei_x_new(&x) == 0) {
            if (ctrl_encode_unlink_id(&x, CTRL_UNLINK_ID_ACK, m.unlink_id, &m.to, &m.from) == 0)
                (void)prc_send_ctrl(ps, m.from.node, &x, NULL, 0);
            ei_x_free(&x);
        }
        return 0;
    case CTRL_UNLINK_ID_ACK:
        return 0;
    case CTRL_EXIT:
    case CTRL_EXIT_TT:
    case CTRL_EXIT2:
    case CTRL_EXIT2_TT:
        p = rc_procs_lookup(ps, &m.to);
        if (p == NULL)
            return 0;
        if ((m.op == CTRL_EXIT || m.op == CTRL_EXIT_TT) && !prc_remove_link(ps, p, &m.from))
            return 0; /* an EXIT for a link we do not have is stale */
        {
            rc_signal sig = {.kind = RC_SIG_EXIT, .from = &m.from, .buf = m.reason,
                             .len = m.reason_len, .peer = peer, .peer_node = peer_node};
            prc_deliver(ps, p, &sig);
        }
        return 0;
    case CTRL_MONITOR_P:
        p = resolve_target(ps, &m);
        if (p == NULL) {
            prc_send_monitor_exit_now(ps, &m, "noproc");
        } else {
            int rc = prc_add_remote_monitor(ps, p, &m.from, &m.ref, m.to_is_name);
            if (rc == RC_ESYSTEM_LIMIT)
                prc_refused(ps, &ps->stats.err_monitor_limit, peer, "monitors");
            if (rc != RC_OK)
                prc_send_monitor_exit_now(ps, &m, rc == RC_ESYSTEM_LIMIT ? "system_limit" : "noproc");
        }
        return 0;
    case CTRL_DEMONITOR_P:
        p = resolve_target(ps, &m);
        if (p)
            prc_remove_remote_monitor(ps, p, &m.ref);
        return 0;
    case CTRL_MONITOR_P_EXIT:
        p = rc_procs_lookup(ps, &m.to);
        if (p == NULL)
            return 0;
        long i = prc_find_out_monitor(ps, p, &m.ref);
        /* Only the node of the monitored process ends its monitor: our
         * references are easy to guess, and another peer must not make us
         * believe a third node's process died. */
        if (i >= 0 && p->omons[i].target.node == peer_node) {
            prc_drop_out_monitor(p, (size_t)i);
            rc_signal sig = {.kind = RC_SIG_DOWN, .from = m.has_from ? &m.from : NULL,
                             .buf = m.reason, .len = m.reason_len, .ref = &m.ref,
                             .peer = peer, .peer_node = peer_node};
            prc_deliver(ps, p, &sig);
        }
        return 0;
    default:
        ps->stats.err_unknown_op++;
        if (!ps->warned_unknown_op++)
            LOG_W(ps->lg, MOD, "unsupported control message %d from %s dropped", m.op,
                  peer);
        else
            LOG_D(ps->lg, MOD, "unsupported control message %d from %s dropped", m.op,
                  peer);
        return 0;
    }
}

typedef struct down_ctx {
    rc_procs *ps;
    uint32_t node;
} down_ctx;

static int monitor_from_node(void *ctx, const rmon_entry *e)
{
    return e->watcher.node == ((down_ctx *)ctx)->node;
}

static void forget_monitor(void *ctx, const rmon_entry *e)
{
    rc_proc *p = prc_by_key(((down_ctx *)ctx)->ps, e->target);
    if (p != NULL && p->nmons > 0)
        p->nmons--;
}

void rc_procs_on_down(rc_procs *ps, uint32_t idx)
{
    const char *node = rc_nodetab_name(ps->nodes, idx), *peer = node;
    if (node == NULL)
        return;
    char reason[32];
    int rlen = 0;
    prc_encode_reason_atom(reason, sizeof reason, "noconnection", &rlen);
    /* Their monitors on our processes go with the connection. */
    down_ctx dc = {.ps = ps, .node = idx};
    rmon_remove_if(ps->rmons, monitor_from_node, forget_monitor, &dc);
    /* Mark first, then deliver: a handler may spawn, and an add may move
     * every entry of the table, so the walk starts over when it grew;
     * the marks say who is still owed a signal. */
    for (size_t i = 0; i < rc_ptrtab_slots(&ps->by_key); i++) {
        rc_proc *p = rc_ptrtab_at(&ps->by_key, i);
        if (p != NULL && !p->dead)
            p->down_mark = (p->nomons > 0 || p->nlinks > 0);
    }
    ps->depth++;
    for (size_t at = 0; at < rc_ptrtab_slots(&ps->by_key); at++) {
        rc_proc *p = rc_ptrtab_at(&ps->by_key, at);
        if (p == NULL || !p->down_mark)
            continue;
        p->down_mark = 0;
        const void *slots_before = ps->by_key.e;
        if (p->dead)
            continue;
        for (size_t i = 0; i < p->nomons && !p->dead;) {
            if (p->omons[i].target.node == idx) {
                const out_monitor *om = &p->omons[i];
                erlang_ref ref;
                erlang_pid target;
                int ok = rc_cref_to_ei(ps->nodes, &om->ref, &ref) == 0;
                int by_pid = om->name == NULL && rc_cpid_to_ei(ps->nodes, &om->target, &target) == 0;
                prc_drop_out_monitor(p, i);
                if (!ok)
                    continue;
                rc_signal sig = {.kind = RC_SIG_DOWN, .from = by_pid ? &target : NULL,
                                 .buf = reason, .len = rlen, .ref = &ref, .peer = peer,
                                 .peer_node = idx};
                prc_deliver(ps, p, &sig);
            } else {
                i++;
            }
        }
        for (size_t i = 0; i < p->nlinks && !p->dead;) {
            erlang_pid other;
            if (p->links[i].node == idx && rc_cpid_to_ei(ps->nodes, &p->links[i], &other) == 0) {
                p->links[i] = p->links[--p->nlinks];
                rc_signal sig = {.kind = RC_SIG_EXIT, .from = &other, .buf = reason, .len = rlen,
                                 .peer = peer, .peer_node = idx};
                prc_deliver(ps, p, &sig);
            } else {
                i++;
            }
        }
        if (!p->dead)
            prc_shrink_links(p);
        if (ps->by_key.e != slots_before)
            at = (size_t)-1; /* moved: walk again, marked ones only */
    }
    ps->depth--;
    prc_drain_local(ps);
    prc_reap(ps);
}
