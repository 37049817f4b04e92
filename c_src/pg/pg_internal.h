/* pg_internal: what the files of the pg scope share (pg_scope.c: state,
 * peers, discovery, local members, lifecycle; pg_peer_msgs.c: the messages
 * peers send). Not for use outside c_src/pg. */
#ifndef RC_PG_INTERNAL_H
#define RC_PG_INTERNAL_H

#include "codec/pmsg.h"
#include "pg/pg_scope.h"
#include "util/bytebuf.h"
#include "util/ptrtab.h"

#include <uthash.h>

#define MOD "pg"
#define DISCOVER_MIN_MS 250u
#define DISCOVER_MAX_MS 5000u
#define TIMER_MS 100u
#define MAX_SUBSCRIBERS 16

/* A discovered BEAM scope. */
typedef struct peer {
    rc_cpid pid; /* key */
    erlang_ref mref;
    int monitored;
    int synced; /* we sent it our sync: only then may join/leave follow */
    UT_hash_handle hh;
} peer;

/* A connected node and whether its scope has been found yet. */
typedef struct node_state {
    uint32_t node; /* key */
    int up;
    int has_peer;
    /* Scope pids of that node we know: one, or briefly two while a
     * restarted scope overlaps the DOWN of its predecessor. A pid that
     * merely claims to be a scope (a spoofed discover) adds one more, and
     * its DOWN must not take the real scope's members with it. */
    unsigned npeers;
    uint64_t next_ms;
    unsigned backoff_ms;
    UT_hash_handle hh;
} node_state;

/* A local C process that is a member: its groups, one entry per join. */
typedef struct local_member {
    rc_cpid pid; /* key */
    pgm_group **groups; /* &one while it has room for one */
    pgm_group *one;
    uint32_t n, cap;
} local_member;

typedef struct subscriber {
    rc_pg_notify_fn fn;
    void *ctx;
} subscriber;

struct rc_pg_scope {
    uv_loop_t *loop;
    const rc_logger *lg;
    rc_procs *ps;
    rc_nodetab *nodes;
    char name[MAXATOMLEN_UTF8];
    uint32_t self_node;
    rc_proc *proc;
    rc_cpid self;
    pgm_table *table;
    rc_ptrtab locals; /* local_member by pid */
    peer *peers;
    node_state *node_states;
    uv_timer_t timer;
    subscriber subs[MAX_SUBSCRIBERS];
    int nsubs;
    ei_x_buff key; /* scratch for canonical group keys */
    rc_pmsg msg;   /* the message being sent, reused from message to message */
    int msg_busy;  /* msg is in use (a send under way) */
    /* Leaves found while the member table is being walked, told to
     * subscribers once the walk is over: a subscriber (a C API callback)
     * may join or leave, which must not change the table mid-walk. Records:
     * key length, pid count (u32 each), key bytes, pids. */
    bytebuf deferred;
    rc_pg_stats stats;
    int warned_malformed;
    rc_ratelimit foreign_log;
    int stopping;
};

/* A growable array of pids. */
typedef struct pidvec {
    rc_cpid *v;
    size_t n, cap;
    size_t foreign; /* pids of another node than the sender's, left out */
} pidvec;
int pgs_pidvec_push(pidvec *pv, const rc_cpid *p);

/* pg_scope.c, for the message handlers. */
peer *pgs_add_peer(rc_pg_scope *s, const rc_cpid *pid);
void pgs_defer_leave(rc_pg_scope *s, const uint8_t *k, size_t klen, const rc_cpid *pids,
                     size_t n);
void pgs_drop_peer(rc_pg_scope *s, peer *p, const char *why);
int pgs_encode_discover(rc_pg_scope *s, ei_x_buff *x);
peer *pgs_find_peer(rc_pg_scope *s, const rc_cpid *pid);
void pgs_malformed(rc_pg_scope *s, const char *what);
void pgs_notify_group(rc_pg_scope *s, rc_pg_event ev, const pgm_group *g, const rc_cpid *pids,
                      size_t n);
size_t pgs_remove_node(rc_pg_scope *s, uint32_t node);
void pgs_send_sync(rc_pg_scope *s, const rc_cpid *to);
int pgs_send_to(rc_pg_scope *s, const rc_cpid *to, const ei_x_buff *msg);
void pgs_tell_leaves(rc_pg_scope *s);

/* Handles one signal to the scope process (pg_peer_msgs.c). */
void pgs_on_signal(rc_procs *ps, rc_proc *self, const rc_signal *sig);

#endif
