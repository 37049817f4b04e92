/* procs_internal: what the files of the process layer share (procs.c:
 * processes, names, sends, links and monitors set on them, exits;
 * procs_monitor.c: monitors a process holds on others; procs_dispatch.c:
 * frames from peers turned into signals). Not for use outside c_src/proc. */
#ifndef RC_PROCS_INTERNAL_H
#define RC_PROCS_INTERNAL_H

#include "codec/ctrl.h"
#include "proc/procs.h"
#include "proc/rmon.h"

#include "util/ptrtab.h"

#define MOD "procs"
#define PID_NUM_MAX 0x7fffu
#define PID_SERIAL_MAX 0x1fffu
#define MAX_NAME_BYTES (MAXATOMLEN_UTF8 - 1)

/* A monitor a C process holds, compact (libei's ref and pid would make it
 * 3 KB, and every emitter holds one on its subscriber): target.node is
 * always set; the rest of target once known (by pid, or a local target found
 * by name); name only for a monitor by name. */
typedef struct out_monitor {
    rc_cref ref;
    rc_cpid target;
    char *name;
} out_monitor;

/* A process's pid is implied: this node, its creation, and (num, serial)
 * from key, so a process carries no libei pid (1 KB with its node name). */
struct rc_proc {
    uint64_t key; /* num << 32 | serial */
    char *name;
    rc_proc_handler fn;
    void *ctx;
    void (*free_ctx)(void *);
    rc_cpid *links; /* compact: 16 bytes a link */
    uint32_t nlinks, caplinks;
    uint32_t nmons; /* remote monitors on this process, held in ps->rmons */
    uint32_t nomons, capomons;
    uint8_t dead;
    uint8_t down_mark; /* owed a signal by rc_procs_on_down's walk */
    out_monitor *omons;
    rc_proc *next_zombie;
};


/* A signal between C processes of this node: a message, or the DOWN of a
 * local monitor (ref set). */
typedef struct local_msg {
    uint64_t to_key;
    int has_from;
    erlang_pid from;
    erlang_ref *ref;
    char *msg;
    int len;
    struct local_msg *next;
} local_msg;

struct rc_procs {
    const rc_logger *lg;
    rc_procs_transport tr;
    char node_name[MAXATOMLEN_UTF8];
    uint32_t creation;
    unsigned next_num, next_serial;
    uint64_t ref_counter;
    uint64_t unlink_id;
    rc_ptrtab by_key; /* every process not yet reaped, by key */
    rc_ptrtab names;  /* registered processes, by name */
    size_t live;
    int depth; /* > 0 while a handler runs */
    local_msg *q_head, *q_tail;
    rc_proc *zombies;
    rc_procs_stats stats;
    int warned_malformed, warned_unknown_op;
    rc_ratelimit foreign_log;
    rc_proc_exit_hook exit_hook;
    void *exit_hook_ctx;
    /* The node's table (not owned): sends name their node by index, and
     * remote monitors and links keep indexes, not node names. */
    rc_nodetab *nodes;
    uint32_t self_node;
    rmon_table *rmons;
};

/* What one peer node may hold: monitors on this node's processes in all,
 * and links on one process. Beyond, a monitor gets DOWN and a link EXIT
 * with reason system_limit at once (counted, logged once per node). */
#define MAX_MONITORS_PER_NODE (1u << 17)
#define MAX_LINKS_PER_PROC 10000u

/* procs.c, for the dispatcher. Adding a link or a monitor: RC_OK (a link
 * already there included), RC_ESYSTEM_LIMIT past the cap per process /
 * per watcher's node, RC_ENOMEM, RC_EBADARG for a reference of a wrong
 * shape. */
int prc_add_link(rc_procs *ps, rc_proc *p, const erlang_pid *other);
int prc_add_remote_monitor(rc_procs *ps, rc_proc *p, const erlang_pid *watcher,
                           const erlang_ref *ref, int by_name);
void prc_deliver(rc_procs *ps, rc_proc *p, const rc_signal *sig);
/* The process of that key, dead or alive (until reaped), or NULL. */
rc_proc *prc_by_key(const rc_procs *ps, uint64_t key);
void prc_drain_local(rc_procs *ps);
/* procs_monitor.c: p's monitor with that reference (its index, or -1);
 * removing monitor i (its name freed); ending it (a local target forgets
 * it, a remote one is told). */
long prc_find_out_monitor(const rc_procs *ps, const rc_proc *p, const erlang_ref *ref);
void prc_drop_out_monitor(rc_proc *p, size_t i);
void prc_demonitor_at(rc_procs *ps, rc_proc *self, size_t i);
/* procs.c, for procs_monitor.c: records the monitor e (its ref and
 * watcher set) on p (RC_* as prc_add_remote_monitor); queues a local
 * DOWN. */
int prc_add_monitor(rc_procs *ps, rc_proc *p, rmon_entry *e, int by_name);
void prc_queue_down(rc_procs *ps, uint64_t watcher_key, const erlang_pid *target,
                    const erlang_ref *ref, const char *reason);
void prc_encode_reason_atom(char *buf, int cap, const char *atom, int *len);
void prc_reap(rc_procs *ps);
void prc_refused(rc_procs *ps, uint64_t *counter, const char *peer, const char *what);
int prc_remove_link(rc_procs *ps, rc_proc *p, const erlang_pid *other);
void prc_remove_remote_monitor(rc_procs *ps, rc_proc *p, const erlang_ref *ref);
int prc_send_ctrl(rc_procs *ps, const char *node, ei_x_buff *ctrl, const char *msg, int len);
void prc_send_monitor_exit_now(rc_procs *ps, const ctrl_msg *m, const char *reason);
void prc_shrink_links(rc_proc *p);

#endif
