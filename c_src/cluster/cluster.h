/* cluster: which nodes the C node keeps connections to. Seeds (--seed) are
 * always retried; every connected BEAM node is asked for erlang:nodes(connected)
 * through its `rex` server on connect and then periodically, and each node
 * learnt that way is connected too. Failed or lost connections are retried
 * with capped exponential backoff. A learnt node is dialled again only while
 * some peer still lists it (and until it keeps failing); a node that only
 * ever connected to us (a client, or one a send connected to) is forgotten
 * when it goes, not dialled back; at most a fixed number are remembered.
 *
 * A peer's list is a claim, not a fact: any cookie holder can answer with
 * thousands of names. So only the answer to the call this layer made, on
 * the connection it asked, is read; dials are spent from one budget (a rate
 * with a small burst, nodes that were connected before and seeds first);
 * and a name that failed forget_after times in a row is set aside for a
 * quarantine that doubles each time it fails again, whatever peers keep
 * listing, until it connects.
 *
 * The layer's process is registered `reckon_cnode_cluster`: a connected
 * node that sends it {'$reckon_cnode_nodeup', Node} (the reckon_cnode
 * application's relay does, on every nodeup) is asked at once, so a node
 * joining the cluster is seen without waiting for the periodic round. */
#ifndef RC_CLUSTER_H
#define RC_CLUSTER_H

#include "proc/procs.h"

#include <stdint.h>
#include <uv.h>

typedef struct rc_cluster rc_cluster;

typedef struct rc_cluster_config {
    unsigned rediscover_ms;   /* how often connected nodes are asked for their nodes */
    unsigned backoff_min_ms;
    unsigned backoff_max_ms;
    unsigned forget_after;    /* failures in a row before a learnt node is set aside */
    unsigned dials_per_s;     /* 0: 20 */
    unsigned dial_burst;      /* 0: as dials_per_s */
    unsigned quarantine_min_ms; /* 0: 30 s; doubled per repeat, at most 64 times */
} rc_cluster_config;

/* How this layer reaches the transport (the node wires it to rc_dist; unit
 * tests to a recorder), by node name. */
typedef struct rc_cluster_ops {
    void *ctx;
    /* Starts connecting to node; its failure is reported through
     * rc_cluster_on_connect_failed. */
    void (*connect)(void *ctx, const char *node);
    /* 1 if node is connected or a connect to it is under way. */
    int (*busy)(void *ctx, const char *node);
    /* Calls fn for every connected node. */
    void (*foreach_connected)(void *ctx, void (*fn)(const char *node, void *arg), void *arg);
} rc_cluster_ops;

typedef struct rc_cluster_stats {
    uint64_t dials;             /* connects this layer started */
    uint64_t answers;           /* nodes() answers read */
    uint64_t answers_refused;   /* unasked, stale, or from another node than asked */
    uint64_t set_aside;         /* names put in quarantine after failing */
    uint64_t listings_ignored;  /* names a peer listed while in quarantine */
    uint64_t nodeups;           /* nodeups a peer told of (each asks it again) */
} rc_cluster_stats;

/* loop NULL: no timer (the caller drives rc_cluster_tick). */
rc_cluster *rc_cluster_new(uv_loop_t *loop, const rc_logger *lg, const rc_cluster_ops *ops,
                           rc_procs *ps, const rc_cluster_config *cfg);
int rc_cluster_add_seed(rc_cluster *cl, const char *node);
void rc_cluster_on_up(rc_cluster *cl, const char *node);
void rc_cluster_on_down(rc_cluster *cl, const char *node);
/* why: the transport's reason. A seed, or a node that was connected
 * before, that cannot be reached is said at warning level once per change
 * of cause (a wrong cookie, no such node in epmd, refused or unreachable,
 * TLS), so an operator at the default level sees why the node never joins. */
void rc_cluster_on_connect_failed(rc_cluster *cl, const char *node, const char *why);
/* The periodic work as of now_ms (its timer does it every 100 ms): dials
 * that are due and within the budget, and the periodic nodes() question. */
void rc_cluster_tick(rc_cluster *cl, uint64_t now_ms);
size_t rc_cluster_known_count(const rc_cluster *cl);
/* 1 if node is known (to be dialled or kept), 0 if not or set aside. */
int rc_cluster_knows(const rc_cluster *cl, const char *node);
const rc_cluster_stats *rc_cluster_get_stats(const rc_cluster *cl);
void rc_cluster_stop(rc_cluster *cl);
void rc_cluster_free(rc_cluster *cl);

#endif
