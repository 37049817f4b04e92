/* procs: C processes on the node. A process is a pid, an optional registered
 * name and a handler called for each signal it gets: a message, an exit
 * signal (all C processes trap exits: the handler decides), or a DOWN for a
 * remote process it monitors. This layer turns distribution control messages
 * into those signals, records links and monitors that remote processes set on
 * C processes (EXIT / MONITOR_P_EXIT when a C process ends, an immediate
 * `noproc` for unknown targets), and answers UNLINK_ID. Local sends between C
 * processes are queued and delivered after the current handler returns, so a
 * handler is never re-entered. */
#ifndef RC_PROCS_H
#define RC_PROCS_H

#include "proc/cpid.h"
#include "util/log.h"

#include <ei.h>
#include <stdint.h>

typedef struct rc_procs rc_procs;
typedef struct rc_proc rc_proc;

typedef enum { RC_SIG_MSG = 0, RC_SIG_EXIT, RC_SIG_DOWN } rc_sig_kind;

typedef struct rc_signal {
    rc_sig_kind kind;
    const erlang_pid *from; /* sender, or the exiting/monitored process; may be NULL */
    /* MSG: the message with its version byte. EXIT/DOWN: the reason term
     * without version byte. Decode with ei from index 0 (MSG: after
     * ei_decode_version). */
    const char *buf;
    int len;
    const erlang_ref *ref; /* DOWN: the monitor reference */
    /* The node whose connection brought the signal, or NULL for one from a
     * C process of this node. Unlike `from` it cannot be claimed: what a
     * message says about other nodes is believed only from their own
     * connection. peer_node: its index in the node table (when peer is not
     * NULL). */
    const char *peer;
    uint32_t peer_node;
} rc_signal;

typedef void (*rc_proc_handler)(rc_procs *ps, rc_proc *self, const rc_signal *sig);

typedef struct rc_procs_stats {
    uint64_t msgs_in, msgs_out, msgs_dropped, msgs_local;
    uint64_t err_malformed, err_unknown_op, err_unknown_target;
    uint64_t err_monitor_limit, err_link_limit; /* refused with system_limit */
    /* A link, monitor or exit whose sender (or reference) names another
     * node than the connection it came on: refused, as the BEAM refuses it. */
    uint64_t err_foreign_from;
} rc_procs_stats;
/* Monitors remote processes hold on this node's processes. */
size_t rc_procs_remote_monitors(const rc_procs *ps);

/* How this layer reaches other nodes, by node index (the node table): the
 * node wires it straight to rc_dist (rc_dist_sendv_cb / rc_dist_sendm_cb,
 * which connect on demand, as a BEAM sender does); unit tests wire it to a
 * recorder. Each returns 0, or -1 when the frame was dropped (counted). */
struct iovec;
struct rc_pmsg;
typedef struct rc_procs_transport {
    void *ctx;
    /* The frame body in parts: parts[0] the control term, then the message. */
    int (*sendv)(void *ctx, uint32_t node, const struct iovec *parts, int nparts);
    /* Optional: the message prepared for many sends (see rc_proc_send_msg). */
    int (*sendm)(void *ctx, uint32_t node, const erlang_pid *to, struct rc_pmsg *m);
    /* Optional: 1 if sending `bytes` more to the node would make the
     * sender wait (its connection at or past the busy mark). */
    int (*busy)(void *ctx, uint32_t node, size_t bytes);
    /* Optional, for senders outside a peer's frame (the producer queue):
     * the busy destination the last sends met (RC_NODE_NONE: none), taken
     * once; and whether that node is still busy (above its low mark). */
    uint32_t (*take_busy_hit)(void *ctx);
    int (*still_busy)(void *ctx, uint32_t node);
} rc_procs_transport;

/* nodes: the node's table, shared with the layers that keep compact pids;
 * this node's name is interned in it. */
rc_procs *rc_procs_new(const rc_logger *lg, const rc_procs_transport *tr, rc_nodetab *nodes,
                       const char *node_name, uint32_t creation);
void rc_procs_free(rc_procs *ps);
/* Ends every process (monitors/links notified while connections still exist). */
void rc_procs_exit_all(rc_procs *ps, const char *reason);

/* Distribution callbacks, to be wired into rc_dist_callbacks by the node;
 * `peer` is the connection's node index in the node table. on_frame: 0,
 * or RC_EBADARG when the peer sent a control message that speaks for
 * another node (a LINK, MONITOR_P, EXIT... whose sender or reference is
 * not of `peer`, or a peer the table does not know): it was dropped and
 * the caller should close the connection, as the BEAM does. */
int rc_procs_on_frame(rc_procs *ps, uint32_t peer, const char *payload, size_t len);
void rc_procs_on_down(rc_procs *ps, uint32_t peer);

rc_proc *rc_proc_spawn(rc_procs *ps, rc_proc_handler fn, void *ctx, void (*free_ctx)(void *));
/* 0, or -1 if the name is taken or too long. */
int rc_proc_register(rc_procs *ps, rc_proc *p, const char *name);
/* Spawn and register in one step (a service process); NULL if either
 * fails, in which case nothing is left behind. */
rc_proc *rc_proc_spawn_registered(rc_procs *ps, rc_proc_handler fn, void *ctx,
                                  void (*free_ctx)(void *), const char *name);
/* A process's pid: compact, or as libei's (1 KB: for encoding). */
rc_cpid rc_proc_cpid(const rc_procs *ps, const rc_proc *p);
void rc_proc_get_pid(const rc_procs *ps, const rc_proc *p, erlang_pid *out);
void *rc_proc_ctx(const rc_proc *p);
rc_proc *rc_procs_whereis(rc_procs *ps, const char *name);
rc_proc *rc_procs_lookup(rc_procs *ps, const erlang_pid *pid);
/* The same by compact pid (no libei pid made, no name compared). */
rc_proc *rc_procs_find(rc_procs *ps, const rc_cpid *pid);
size_t rc_procs_count(const rc_procs *ps);
int rc_procs_is_local(const rc_procs *ps, const erlang_pid *pid);
const char *rc_procs_node_name(const rc_procs *ps);
const rc_procs_stats *rc_procs_get_stats(const rc_procs *ps);
const rc_logger *rc_procs_logger(const rc_procs *ps);

/* Sends msg (encoded with version byte) from `from` (may be NULL) to a pid.
 * A remote send to a node without a connection waits for the one the
 * transport starts; what cannot be delivered is dropped and counted, as
 * the BEAM drops it after a failed auto-connect. 0 if queued, -1 if dropped. */
int rc_proc_send(rc_procs *ps, rc_proc *from, const erlang_pid *to, const char *msg, int len);
/* The same to a pid whose node's index the caller knows already (the
 * connection a call came on): no look-up of the node's name. */
int rc_proc_send_node(rc_procs *ps, rc_proc *from, uint32_t node, const erlang_pid *to,
                      const char *msg, int len);
/* 1 if sending a message of `bytes` to `to` would make the sender wait on a
 * busy connection (never for a pid of this node), so a sender that must not
 * wait can skip it. */
int rc_proc_dest_busy(rc_procs *ps, const erlang_pid *to, size_t bytes);
/* The transport's take_busy_hit and still_busy; RC_NODE_NONE and 0
 * without them. */
uint32_t rc_procs_take_busy_hit(rc_procs *ps);
int rc_procs_still_busy(rc_procs *ps, uint32_t node);
/* The same with the message given in parts (concatenated = one term with
 * its version byte), so a large payload such as an event is copied once. */
int rc_proc_send_parts(rc_procs *ps, rc_proc *from, const erlang_pid *to,
                       const struct iovec *parts, int nparts);
/* The same with the message prepared once (pmsg_set) for sending
 * to many: one event to each of a topic's subscribers, to a compact pid
 * (its connection found by node index). Its encoding for connections with
 * distribution headers is made at the first remote send and reused by the
 * next ones. */
int rc_proc_send_msg(rc_procs *ps, rc_proc *from, const rc_cpid *to, struct rc_pmsg *m);
/* Links `self` to a remote process (its exit arrives as RC_SIG_EXIT, with
 * `noconnection` if its node cannot be reached); -1 if the link could not
 * be sent. Unlink sends UNLINK_ID. */
int rc_proc_link(rc_procs *ps, rc_proc *self, const erlang_pid *other);
void rc_proc_unlink(rc_procs *ps, rc_proc *self, const erlang_pid *other);
/* {Name, Node} ! Msg. `from` is required by the protocol for remote sends. */
int rc_proc_send_named(rc_procs *ps, rc_proc *from, const char *name, const char *node,
                       const char *msg, int len);

/* Monitors a process (by pid, or by name when pid is NULL), remote or a C
 * process of this node. The DOWN arrives as RC_SIG_DOWN with the same ref:
 * the exit reason, `noproc` for a missing target, `noconnection` when its
 * node goes away or cannot be reached; never from inside this call. -1 if
 * the monitor could not be set up: then no DOWN will come. */
int rc_proc_monitor(rc_procs *ps, rc_proc *self, const erlang_pid *pid, const char *name,
                    const char *node, erlang_ref *ref_out);
void rc_proc_demonitor(rc_procs *ps, rc_proc *self, const erlang_ref *ref);

/* Delivers the signals queued between C processes of this node by work done
 * outside any handler (e.g. a call from another thread); a no-op inside a
 * handler, where they go once it returns. */
void rc_procs_flush(rc_procs *ps);

/* Ends a process: linked processes get EXIT(reason), monitors get
 * MONITOR_P_EXIT(reason). Safe to call from the process's own handler; the
 * memory is released after the handler returns. */
void rc_proc_exit(rc_procs *ps, rc_proc *p, const char *reason);

/* Called for every process that ends, before its links and monitors are
 * told (the pg layer uses it to make the process leave its groups). */
typedef void (*rc_proc_exit_hook)(void *ctx, const rc_cpid *pid);
void rc_procs_set_exit_hook(rc_procs *ps, rc_proc_exit_hook fn, void *ctx);

/* A fresh reference, unique on this node. */
void rc_procs_make_ref(rc_procs *ps, erlang_ref *ref);
/* 1 if two references are the same (node, creation and every word). */
int rc_ref_equal(const erlang_ref *a, const erlang_ref *b);

#endif
