/* cluster: which nodes the C node keeps connections to. Seeds (--seed) are
 * always retried; every connected BEAM node is asked for erlang:nodes(connected)
 * through its `rex` server on connect and then periodically, and each node
 * learnt that way is connected too. Failed or lost connections are retried
 * with capped exponential backoff. A learnt node is dialled again only while
 * some peer still lists it (and until it keeps failing); a node that only
 * ever connected to us (a client, or one a send connected to) is forgotten
 * when it goes, not dialled back; at most a fixed number are remembered. */
#ifndef RC_CLUSTER_H
#define RC_CLUSTER_H

#include "transport/dist.h"
#include "proc/procs.h"

#include <uv.h>

typedef struct rc_cluster rc_cluster;

typedef struct rc_cluster_config {
    unsigned rediscover_ms;   /* how often connected nodes are asked for their nodes */
    unsigned backoff_min_ms;
    unsigned backoff_max_ms;
    unsigned forget_after;    /* failures before a learnt node is dropped */
} rc_cluster_config;

rc_cluster *rc_cluster_new(uv_loop_t *loop, const rc_logger *lg, rc_dist *dist, rc_procs *ps,
                           const rc_cluster_config *cfg);
int rc_cluster_add_seed(rc_cluster *cl, const char *node);
void rc_cluster_on_up(rc_cluster *cl, rc_conn *c);
void rc_cluster_on_down(rc_cluster *cl, const char *node);
void rc_cluster_on_connect_failed(rc_cluster *cl, const char *node);
size_t rc_cluster_known_count(const rc_cluster *cl);
void rc_cluster_stop(rc_cluster *cl);
void rc_cluster_free(rc_cluster *cl);

#endif
