/* procs_monitor: the monitors a C process holds on other processes (an
 * emitter's on its subscriber), kept compact in the process: setting one
 * up (locally, or MONITOR_P to the target's node), finding it by
 * reference, ending it (DEMONITOR_P). Part of the process layer (see
 * procs_internal.h). */
#include "proc/procs_internal.h"

#include "codec/ctrl.h"
#include "util/err.h"

#include <stdlib.h>
#include <string.h>

void prc_drop_out_monitor(rc_proc *p, size_t i)
{
    free(p->omons[i].name);
    p->omons[i] = p->omons[--p->nomons];
}

long prc_find_out_monitor(const rc_procs *ps, const rc_proc *p, const erlang_ref *ref)
{
    for (size_t i = 0; i < p->nomons; i++)
        if (rc_cref_matches(ps->nodes, &p->omons[i].ref, ref))
            return (long)i;
    return -1;
}

/* A monitor on a C process of this node: held in the same table as remote
 * monitors (so the target's exit finds it the same way); a missing target
 * gets a DOWN noproc, queued like any local signal. */
static int monitor_local(rc_procs *ps, rc_proc *self, out_monitor *om, const erlang_ref *ref)
{
    rc_proc *target = om->name ? rc_procs_whereis(ps, om->name) : rc_procs_find(ps, &om->target);
    if (target == NULL) {
        erlang_pid t;
        int known = !om->name && rc_cpid_to_ei(ps->nodes, &om->target, &t) == 0;
        prc_queue_down(ps, self->key, known ? &t : NULL, ref, "noproc");
        return 0;
    }
    rmon_entry e;
    memset(&e, 0, sizeof e); /* the table hashes whole keys */
    e.ref_node = om->ref.node;
    e.ref_creation = om->ref.creation;
    e.ref_len = om->ref.len;
    memcpy(e.ref, om->ref.n, sizeof om->ref.n);
    e.watcher = rc_proc_cpid(ps, self);
    if (prc_add_monitor(ps, target, &e, om->name != NULL) != RC_OK) {
        prc_drop_out_monitor(self, self->nomons - 1); /* om is the last entry */
        return -1;
    }
    if (om->name)
        om->target = rc_proc_cpid(ps, target); /* for the demonitor */
    return 0;
}

int rc_proc_monitor(rc_procs *ps, rc_proc *self, const erlang_pid *pid, const char *name,
                    const char *node, erlang_ref *ref_out)
{
    if ((pid == NULL) == (name == NULL) || self->dead)
        return -1;
    const char *target_node = pid ? pid->node : node;
    if (target_node == NULL || (name && strlen(name) > MAX_NAME_BYTES))
        return -1;
    if (self->nomons == self->capomons) {
        /* Room for one first: an emitter monitors its one subscriber. */
        size_t ncap = self->capomons ? self->capomons * 2 : 1;
        out_monitor *n = realloc(self->omons, ncap * sizeof *n);
        if (n == NULL)
            return -1;
        self->omons = n;
        self->capomons = ncap;
    }
    out_monitor om = {0};
    erlang_ref ref;
    rc_procs_make_ref(ps, &ref);
    if (rc_cref_from_ei(ps->nodes, &ref, &om.ref) != 0)
        return -1;
    if (pid) {
        if (rc_cpid_from_ei(ps->nodes, pid, &om.target) != 0)
            return -1;
    } else {
        om.target.node = rc_nodetab_intern(ps->nodes, node, strlen(node));
        om.name = strdup(name);
        if (om.target.node == RC_NODE_NONE || om.name == NULL) {
            free(om.name);
            return -1;
        }
    }
    self->omons[self->nomons++] = om;
    *ref_out = ref;
    if (om.target.node == ps->self_node)
        return monitor_local(ps, self, &self->omons[self->nomons - 1], &ref);
    ei_x_buff x;
    if (ei_x_new(&x) != 0) {
        prc_drop_out_monitor(self, self->nomons - 1);
        return -1;
    }
    erlang_pid me;
    rc_proc_get_pid(ps, self, &me);
    int rc = ctrl_encode_monitor(&x, CTRL_MONITOR_P, &me, pid, name, &ref);
    if (rc != 0 || prc_send_ctrl(ps, target_node, &x, NULL, 0) != 0) {
        /* Not connected: no DOWN will ever come for this ref; the caller is
         * told now instead (a DOWN delivered from here would re-enter it). */
        prc_drop_out_monitor(self, self->nomons - 1);
        rc = -1;
    }
    ei_x_free(&x);
    return rc;
}

void prc_demonitor_at(rc_procs *ps, rc_proc *self, size_t i)
{
    out_monitor *om = &self->omons[i];
    erlang_ref ref;
    if (rc_cref_to_ei(ps->nodes, &om->ref, &ref) != 0) {
        prc_drop_out_monitor(self, i);
        return;
    }
    if (om->target.node == ps->self_node) {
        rc_proc *target = rc_procs_find(ps, &om->target);
        if (target != NULL)
            prc_remove_remote_monitor(ps, target, &ref);
        prc_drop_out_monitor(self, i);
        return;
    }
    ei_x_buff x;
    erlang_pid me, target;
    const char *node = rc_nodetab_name(ps->nodes, om->target.node);
    if (node != NULL && ei_x_new(&x) == 0) {
        rc_proc_get_pid(ps, self, &me);
        int ok = om->name != NULL || rc_cpid_to_ei(ps->nodes, &om->target, &target) == 0;
        if (ok && ctrl_encode_monitor(&x, CTRL_DEMONITOR_P, &me, om->name ? NULL : &target,
                                      om->name, &ref) == 0)
            (void)prc_send_ctrl(ps, node, &x, NULL, 0);
        ei_x_free(&x);
    }
    prc_drop_out_monitor(self, i);
}

void rc_proc_demonitor(rc_procs *ps, rc_proc *self, const erlang_ref *ref)
{
    long i = prc_find_out_monitor(ps, self, ref);
    if (i >= 0)
        prc_demonitor_at(ps, self, (size_t)i);
}
