/* pg_scope: one OTP 25 `pg` scope, served by a C process registered under
 * the scope's name, so BEAM nodes' pg scopes treat it as a peer.
 *
 * Protocol (OTP 25 kernel/src/pg.erl). The C node is hidden, so BEAM's pg
 * never discovers it on nodeup: on every new connection this scope sends
 * {discover, Self} to {Scope, Node} and keeps re-sending (backoff 250 ms to
 * 5 s) until that node's scope answers. Handled: {discover, Peer} and
 * {discover, Peer, _} (sync our local members to Peer, and if Peer is new,
 * monitor it and discover back), {'$gen_cast', {sync, Peer, Groups}}
 * (replaces Peer's view), {join, Peer, Group, PidOrPids},
 * {leave, Peer, PidOrPids, Groups} (ignored from unknown peers), and the DOWN
 * of a peer's scope (its members are dropped at once; rediscovery starts).
 * Anything else is ignored, counted and logged once. A message is believed
 * only about its own connection's node: a scope pid, or member pids, of
 * any other node are ignored (counted), since no process can send as
 * another node's and OTP's pg keeps members per peer scope. Sent: only
 * {discover, Self}, the sync cast, {join, Self, Group, PidOrPids} and
 * {leave, Self, PidOrPids, Groups} with groups the peer knows we have, since
 * OTP 25's pg crashes on any other shape. Group terms are compared as terms:
 * they are stored in canonical form (term_norm). */
#ifndef RC_PG_SCOPE_H
#define RC_PG_SCOPE_H

#include "proc/cpid.h"
#include "pg/membership.h"
#include "proc/procs.h"
#include "util/log.h"

#include <ei.h>
#include <stdint.h>
#include <uv.h>

typedef struct rc_pg_scope rc_pg_scope;

typedef enum { RC_PG_JOINED = 0, RC_PG_LEFT = 1 } rc_pg_event;

/* Group-change notification (like pg:monitor_scope/1): `group` is the
 * canonical encoding of the group term (no version byte). */
typedef void (*rc_pg_notify_fn)(void *ctx, rc_pg_scope *s, rc_pg_event ev, const uint8_t *group,
                                size_t glen, const rc_cpid *pids, size_t n);

typedef struct rc_pg_stats {
    uint64_t syncs_in, joins_in, leaves_in, discovers_in, discovers_out;
    uint64_t ignored_unknown_peer, malformed, foreign_pids;
    /* discover/sync/join/leave naming a scope pid of another node than the
     * connection's: ignored, as no process can send as another node. */
    uint64_t foreign_scope;
} rc_pg_stats;

rc_pg_scope *rc_pg_scope_start(uv_loop_t *loop, const rc_logger *lg, rc_procs *ps,
                               rc_nodetab *nodes, const char *scope_name);
/* Sends leave for every local member to every peer (graceful stop). */
void rc_pg_scope_shutdown(rc_pg_scope *s);
void rc_pg_scope_free(rc_pg_scope *s);
const char *rc_pg_scope_name(const rc_pg_scope *s);
/* The scope process's pid. Always 0. */
int rc_pg_scope_pid(const rc_pg_scope *s, rc_cpid *out);

/* Connection events from the node: the node's index in the node table. */
void rc_pg_scope_nodeup(rc_pg_scope *s, uint32_t node);
void rc_pg_scope_nodedown(rc_pg_scope *s, uint32_t node);
/* The scope's periodic work as of now_ms (its timer does it every 100 ms):
 * discover is sent again, with backoff, to each connected node whose scope
 * has not answered yet. */
void rc_pg_scope_tick(rc_pg_scope *s, uint64_t now_ms);
/* A local C process ended: it leaves all its groups. */
void rc_pg_scope_proc_exit(rc_pg_scope *s, const rc_cpid *pid);

/* Canonical key of an encoded group term (no version byte) into x. */
int rc_pg_group_key(const char *term, int len, ei_x_buff *x);

/* Local join/leave of C processes of this node. `group` is an encoded term
 * (any encoding, no version byte). Pids that are not live local processes
 * are skipped. 0, or -1 on a bad group term or allocation failure. */
int rc_pg_join(rc_pg_scope *s, const char *group, int glen, const rc_cpid *pids, size_t n);
int rc_pg_leave(rc_pg_scope *s, const char *group, int glen, const rc_cpid *pids, size_t n);

/* Members of a group, by canonical key (every node; duplicates kept). */
const rc_cpid *rc_pg_members(const rc_pg_scope *s, const uint8_t *key, size_t klen, size_t *n);
const pgm_table *rc_pg_table(const rc_pg_scope *s);
uint32_t rc_pg_self_node(const rc_pg_scope *s);
size_t rc_pg_peer_count(const rc_pg_scope *s);
const rc_pg_stats *rc_pg_get_stats(const rc_pg_scope *s);

/* Registers a notification callback (several allowed). 0 or -1. */
int rc_pg_subscribe(rc_pg_scope *s, rc_pg_notify_fn fn, void *ctx);

#endif
