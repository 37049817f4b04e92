/* node: the node context. Owns the loop, the logger and every layer
 * (distribution transport, processes, cluster, pg scopes, names table,
 * emitters, request server) and wires the transport's callbacks to the layers
 * above it; all mutable state of a running node lives in struct rc_node.
 * This header is for the node's own files only:
 *   node.c   lifecycle (create, run, stop, destroy) and layer wiring,
 *   calls.c  the cross-thread call queue (rc_node_call),
 *   stats.c  the one table of counters behind reckon_cnode:stats/0,
 *            rc_node_stats and the /metrics page,
 * and for the public C API (api/capi.c), which reads the context, and the
 * --http endpoint (http.c, header http.h), which reads the node through
 * node_call_timed only. Everything
 * here runs on the loop thread unless it says otherwise. */
#ifndef RC_NODE_H
#define RC_NODE_H

#include "reckon_cnode.h"

#include "cluster/cluster.h"
#include "emitter/bcast_queue.h"
#include "emitter/broadcast.h"
#include "emitter/emitter_pool.h"
#include "naming/names_persist.h"
#include "naming/names_store.h"
#include "naming/names_table.h"
#include "proc/cpid.h"
#include "pg/pg_scope.h"
#include "proc/procs.h"
#include "server/names_feed.h"
#include "server/request_server.h"
#include "transport/dist.h"
#include "util/log.h"

#include <pthread.h>
#include <uv.h>

struct rc_node {
    uv_loop_t loop;
    rc_logger lg;
    uint64_t started_unix_s; /* wall-clock time of rc_node_create */
    char node_name[256];
    rc_dist *dist;
    rc_procs *procs;
    rc_cluster *cluster;
    names_table *names;
    names_store *store;
    names_persist *persist; /* durable name writes; NULL without a store */
    rc_request_server *server;
    rc_names_feed *feed; /* names-table copies on attached BEAM nodes */
    rc_nodetab *nodes;
    rc_pg_scope *scopes[64];
    size_t nscopes;
    struct monitor_sub {
        rc_pg_monitor_fn fn;
        void *ctx;
    } monitors[16];
    size_t nmonitors;
    rc_bcast *bcast;
    bcast_queue *queue;
    rc_backpressure bp; /* every back-pressure setting (transport/dist.h) */
    rc_emitters *emitters;
    /* rc_node_call: requests from other threads, run on the loop. */
    uv_async_t call_async;
    pthread_mutex_t call_mu;
    struct node_call *calls;
    uv_signal_t sigterm, sigint;
    uv_async_t stop_async;
    uv_poll_t stdin_poll;
    int handle_signals;
    int watch_stdin;
    int stopping;
};

/* The scope named `scope`, or the first (default) one when scope is NULL;
 * NULL if there is none of that name. */
rc_pg_scope *node_scope(rc_node *n, const char *scope);

/* calls.c. Runs the calls other threads queued, or refuses them (refuse=1,
 * when stopping: their callers get RC_ESTOPPED). */
void node_calls_run(rc_node *n, int refuse);
void node_calls_on_async(uv_async_t *a);
/* rc_node_call that waits at most timeout_ms, for threads that must not
 * hang on a stalled loop (the HTTP server). ctx must come from malloc. On
 * RC_ETIMEOUT it belongs to the node from then on: fn still runs (or
 * is refused) later, and the loop frees ctx after that; otherwise it stays
 * the caller's. Any thread but the loop's. */
int node_call_timed(rc_node *n, void (*fn)(rc_node *n, void *ctx), void *ctx, unsigned timeout_ms);

/* stats.c. Appends the counters as one Erlang map (the request server's
 * stats reply): plain counters at the top, error counters under `errors`. */
void node_stats_map(void *ctx, ei_x_buff *x);

#endif
