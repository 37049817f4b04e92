/* node: lifecycle and layer wiring; see node.h. */
#include "node/node.h"

#include "naming/naming.h"
#include "server/net_kernel.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MOD "node"

void rc_node_config_init(rc_node_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->sname = "reckon_cnode";
    cfg->max_message_bytes = 64u << 20;
    cfg->max_output_bytes = (size_t)1 << 30;
    cfg->net_ticktime_s = 60;
    cfg->log_level = RC_LOG_INFO;
    cfg->handle_signals = 1;
}

/* ---------------------------------------------------------- layer wiring */

static void on_up(void *ctx, rc_conn *c)
{
    rc_node *n = ctx;
    rc_cluster_on_up(n->cluster, rc_conn_peer(c));
    for (size_t i = 0; i < n->nscopes; i++)
        rc_pg_scope_nodeup(n->scopes[i], rc_conn_node(c));
}

static void on_proc_exit(void *ctx, const rc_cpid *pid)
{
    rc_node *n = ctx;
    for (size_t i = 0; i < n->nscopes; i++)
        rc_pg_scope_proc_exit(n->scopes[i], pid);
}

static void on_down(void *ctx, rc_conn *c, const char *why)
{
    rc_node *n = ctx;
    (void)why;
    rc_procs_on_down(n->procs, rc_conn_node(c));
    for (size_t i = 0; i < n->nscopes; i++)
        rc_pg_scope_nodedown(n->scopes[i], rc_conn_node(c));
    if (n->cluster)
        rc_cluster_on_down(n->cluster, rc_conn_peer(c));
}

static void on_frame(void *ctx, rc_conn *c, const char *payload, size_t len)
{
    rc_node *n = ctx;
    if (rc_procs_on_frame(n->procs, rc_conn_node(c), payload, len) == RC_EBADARG)
        rc_dist_close(n->dist, c, "invalid distribution message");
}

static void on_connect_failed(void *ctx, const char *node, const char *why)
{
    rc_node *n = ctx;
    if (n->cluster)
        rc_cluster_on_connect_failed(n->cluster, node, why);
}

/* Sends to `node` waited for a connection that was never made: what they
 * set up (monitors, links) ends as if the connection had gone. */
static void on_unreachable(void *ctx, const char *node)
{
    rc_node *n = ctx;
    uint32_t idx = rc_nodetab_intern(n->nodes, node, strlen(node));
    if (idx != RC_NODE_NONE && rc_dist_conn(n->dist, idx) == NULL)
        rc_procs_on_down(n->procs, idx);
}

/* The cluster layer's view of the transport. */
static void cluster_connect(void *ctx, const char *node) { rc_dist_connect(ctx, node); }

static int cluster_busy(void *ctx, const char *node)
{
    return rc_dist_find(ctx, node) != NULL || rc_dist_is_connecting(ctx, node);
}

typedef struct each_node {
    void (*fn)(const char *node, void *arg);
    void *arg;
} each_node;

static void each_conn(rc_conn *c, void *arg)
{
    each_node *e = arg;
    e->fn(rc_conn_peer(c), e->arg);
}

static void cluster_foreach(void *ctx, void (*fn)(const char *node, void *arg), void *arg)
{
    each_node e = {.fn = fn, .arg = arg};
    rc_dist_foreach(ctx, each_conn, &e);
}

/* -------------------------------------------------------------- stopping */

static int dist_busy(void *dist, uint32_t node, size_t bytes)
{
    return rc_dist_would_wait(dist, node, bytes);
}

static uint32_t dist_take_busy_hit(void *dist) { return rc_dist_take_busy_hit(dist); }
static int dist_still_busy(void *dist, uint32_t node) { return rc_dist_is_busy(dist, node); }

static void do_stop(rc_node *n)
{
    if (n->stopping)
        return;
    pthread_mutex_lock(&n->call_mu);
    n->stopping = 1;
    pthread_mutex_unlock(&n->call_mu);
    LOG_I(&n->lg, MOD, "stopping");
    if (n->cluster)
        rc_cluster_stop(n->cluster);
    /* Events already queued by producers still go out; later ones are refused. */
    if (n->queue)
        bcast_queue_close(n->queue);
    node_calls_run(n, 1);
    uv_close((uv_handle_t *)&n->call_async, NULL);
    /* A pool whose names are still being written must not start its
     * emitters into a node that is going away. */
    rc_emitters_shutdown(n->emitters);
    /* pg leaves first, so peers drop our members now, not at disconnect. */
    for (size_t i = 0; i < n->nscopes; i++)
        rc_pg_scope_shutdown(n->scopes[i]);
    /* Ending the processes first tells remote monitors and links (DOWN and
     * EXIT go out) while the connections are still there; rc_dist_stop then
     * flushes them before closing. */
    rc_names_feed_close(n->feed);
    rc_procs_exit_all(n->procs, "shutdown");
    rc_dist_stop(n->dist);
    if (n->handle_signals) {
        uv_close((uv_handle_t *)&n->sigterm, NULL);
        uv_close((uv_handle_t *)&n->sigint, NULL);
    }
    if (n->watch_stdin) {
        uv_poll_stop(&n->stdin_poll);
        uv_close((uv_handle_t *)&n->stdin_poll, NULL);
    }
    uv_close((uv_handle_t *)&n->stop_async, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    rc_node *n = s->data;
    LOG_I(&n->lg, MOD, "got signal %d", signum);
    do_stop(n);
}

static void on_stop_async(uv_async_t *a) { do_stop(a->data); }

static void on_stdin(uv_poll_t *p, int status, int events)
{
    rc_node *n = p->data;
    (void)events;
    char buf[256];
    ssize_t r = status < 0 ? 0 : read(STDIN_FILENO, buf, sizeof buf);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        LOG_I(&n->lg, MOD, "stdin closed: the owner went away");
        do_stop(n);
    }
}

/* ------------------------------------------------------------- lifecycle */

static int make_node_name(const rc_node_config *cfg, char *out, size_t cap, char *alive,
                          size_t alive_cap)
{
    if (cfg->name != NULL && cfg->name[0] != '\0') {
        const char *at = strchr(cfg->name, '@');
        if (at == NULL || at == cfg->name || at[1] == '\0' || strlen(cfg->name) >= cap ||
            (size_t)(at - cfg->name) >= alive_cap)
            return -1;
        strcpy(out, cfg->name);
        memcpy(alive, cfg->name, (size_t)(at - cfg->name));
        alive[at - cfg->name] = '\0';
        return 0;
    }
    const char *sname = cfg->sname ? cfg->sname : "reckon_cnode";
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        return -1;
    host[sizeof host - 1] = '\0';
    char *dot = strchr(host, '.');
    if (dot)
        *dot = '\0';
    if (strchr(sname, '@') != NULL || strlen(sname) >= alive_cap)
        return -1;
    int w = snprintf(out, cap, "%s@%s", sname, host);
    if (w < 0 || (size_t)w >= cap)
        return -1;
    strcpy(alive, sname);
    return 0;
}

/* libuv 1.45 and later (Debian 13 has 1.50) give every loop an io_uring
 * ring on Linux, made in uv_loop_init. The kernel ties a ring to the thread
 * that made it: when the ring is closed (rc_node_destroy), its teardown
 * interrupts that thread's blocking system call in progress, and a socket
 * read or write with a timeout fails with EINTR instead of resuming. The
 * caller of rc_node_create is the application's thread, seldom the loop's
 * (examples/producer.c runs the loop on a thread of its own), and it must
 * not be interrupted for the node's sake: the loop is made on a thread that
 * ends at once and takes its tie to the ring with it. (The thread that runs
 * the loop submits to the ring and so has a tie of its own; it is the
 * node's, and has normally ended by the time the ring is closed.) */
typedef struct loop_init_job {
    uv_loop_t *loop;
    int rc;
} loop_init_job;

static void *loop_init_thread(void *arg)
{
    loop_init_job *j = arg;
    j->rc = uv_loop_init(j->loop);
    return NULL;
}

static int init_loop(uv_loop_t *loop)
{
    loop_init_job j = {.loop = loop, .rc = UV_EINVAL};
    pthread_t t;
    /* Without a thread to spare, the loop is made here: the node works the
     * same, and only its creator may see that one EINTR. */
    if (pthread_create(&t, NULL, loop_init_thread, &j) != 0)
        return uv_loop_init(loop);
    pthread_join(t, NULL);
    return j.rc;
}

/* What rc_node_create made before the transport started, on a failure
 * there (each part may be missing). */
static void release_unstarted(rc_node *n)
{
    rc_nodetab_free(n->nodes);
    names_persist_free(n->persist);
    names_store_close(n->store);
    names_table_free(n->names);
    uv_loop_close(&n->loop);
    free(n);
}

/* The emitter-name table, and with --data-dir its LMDB copy (loaded into
 * the table) and the queue of synced writes to it. */
static int open_names(rc_node *n, const rc_node_config *cfg, char *err, size_t errlen)
{
    n->names = names_table_new();
    if (n->names == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (cfg->data_dir == NULL)
        return 0;
    size_t loaded = 0, skipped = 0;
    int e = names_store_open(cfg->data_dir, &n->store);
    if (e == 0)
        e = names_store_load(n->store, n->names, &loaded, &skipped);
    if (e != 0) {
        snprintf(err, errlen, "cannot open --data-dir %s: %s", cfg->data_dir,
                 names_store_strerror(e));
        return -1;
    }
    rc_log(&n->lg, skipped > 0 ? RC_LOG_WARNING : RC_LOG_INFO, MOD,
           "loaded %zu emitter-name entries from %s (%zu damaged, skipped%s)", loaded,
           cfg->data_dir, skipped,
           skipped > 0 ? ": restore data.mdb from a backup to keep them" : "");
    n->persist = names_persist_new(&n->loop, &n->lg, n->store, n->names);
    if (n->persist == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* Index 0 is this node, so local pids are recognised cheaply. */
static int make_node_table(rc_node *n, char *err, size_t errlen)
{
    n->nodes = rc_nodetab_new();
    if (n->nodes == NULL ||
        rc_nodetab_intern(n->nodes, n->node_name, strlen(n->node_name)) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int start_dist(rc_node *n, const rc_node_config *cfg, const char *alive, char *err,
                      size_t errlen)
{
    rc_backpressure_defaults(&n->bp);
    n->bp.max_output_bytes = cfg->max_output_bytes;
    rc_dist_config dc = {.nodes = n->nodes,
                         .bp = n->bp,
                         .alive = alive,
                         .node_name = n->node_name,
                         .cookie = cfg->cookie,
                         .max_message_bytes = cfg->max_message_bytes,
                         .net_ticktime_s = cfg->net_ticktime_s,
                         .handshake_timeout_ms = 5000,
                         .no_epmd = cfg->no_epmd,
                         .listen_addr = cfg->listen_addr,
                         .port_min = cfg->port_min,
                         .port_max = cfg->port_max};
    rc_tls_config tc = {.certfile = cfg->tls_certfile,
                        .keyfile = cfg->tls_keyfile,
                        .cacertfile = cfg->tls_cacertfile,
                        .verify_peer = !cfg->tls_verify_none,
                        .server_name = cfg->tls_server_name,
                        .min_version = cfg->tls_min_version};
    if (cfg->tls_certfile != NULL)
        dc.tls = &tc;
    rc_dist_callbacks cb = {.ctx = n, .on_up = on_up, .on_down = on_down, .on_frame = on_frame,
                            .on_connect_failed = on_connect_failed, .on_unreachable = on_unreachable};
    return rc_dist_start(&n->dist, &n->loop, &n->lg, &dc, &cb, err, (int)errlen);
}

int rc_node_create(rc_node **out, const rc_node_config *cfg, char *err, size_t errlen)
{
    if (cfg->cookie == NULL || cfg->cookie[0] == '\0') {
        snprintf(err, errlen, "no cookie");
        return -1;
    }
    rc_node *n = calloc(1, sizeof *n);
    if (n == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rc_logger_init(&n->lg, (rc_log_level)cfg->log_level);
    n->started_unix_s = (uint64_t)time(NULL);
    char alive[256];
    if (make_node_name(cfg, n->node_name, sizeof n->node_name, alive, sizeof alive) != 0) {
        snprintf(err, errlen, "bad node name");
        free(n);
        return -1;
    }
    if (init_loop(&n->loop) != 0) {
        snprintf(err, errlen, "uv_loop_init failed");
        free(n);
        return -1;
    }
    if (open_names(n, cfg, err, errlen) != 0 || make_node_table(n, err, errlen) != 0 ||
        start_dist(n, cfg, alive, err, errlen) != 0) {
        release_unstarted(n);
        return -1;
    }
    /* The process layer sends straight into the connections. */
    rc_procs_transport tr = {.ctx = n->dist, .sendv = rc_dist_sendv_cb, .sendm = rc_dist_sendm_cb,
                             .busy = dist_busy, .take_busy_hit = dist_take_busy_hit,
                             .still_busy = dist_still_busy};
    n->procs = rc_procs_new(&n->lg, &tr, n->nodes, n->node_name, rc_dist_creation(n->dist));
    rc_cluster_config cc = {.rediscover_ms = 5000, .backoff_min_ms = 100,
                            .backoff_max_ms = 10000, .forget_after = 8};
    rc_cluster_ops co = {.ctx = n->dist, .connect = cluster_connect, .busy = cluster_busy,
                         .foreach_connected = cluster_foreach};
    if (n->procs != NULL)
        n->cluster = rc_cluster_new(&n->loop, &n->lg, &co, n->procs, &cc);
    int scopes_ok = n->procs != NULL;
    if (scopes_ok) {
        static const char *const default_scope[] = {"reckon_db_pg"};
        const char *const *names = cfg->nscopes ? cfg->scopes : default_scope;
        size_t count = cfg->nscopes ? cfg->nscopes : 1;
        if (count > sizeof n->scopes / sizeof n->scopes[0])
            count = sizeof n->scopes / sizeof n->scopes[0];
        for (size_t i = 0; i < count && scopes_ok; i++) {
            n->scopes[n->nscopes] = rc_pg_scope_start(&n->loop, &n->lg, n->procs, n->nodes, names[i]);
            if (n->scopes[n->nscopes] == NULL) {
                snprintf(err, errlen, "cannot start pg scope '%s' (bad or duplicate name?)", names[i]);
                scopes_ok = 0;
            } else {
                n->nscopes++;
            }
        }
        rc_procs_set_exit_hook(n->procs, on_proc_exit, n);
    }
    pthread_mutex_init(&n->call_mu, NULL);
    uv_async_init(&n->loop, &n->call_async, node_calls_on_async);
    n->call_async.data = n;
    if (scopes_ok) {
        n->bcast = rc_bcast_new(n->procs, n->scopes[0], n->nodes);
        n->emitters = rc_emitters_new(n->procs, n->scopes[0], n->nodes, n->names, n->persist);
        if (n->bcast != NULL)
            n->queue = bcast_queue_new(&n->loop, n->bp.producer_queue_bytes, n->bcast, n->procs);
    }
    if (!scopes_ok || n->procs == NULL || n->cluster == NULL || n->bcast == NULL ||
        n->emitters == NULL || n->queue == NULL || rc_net_kernel_start(n->procs) != 0 ||
        (n->server = rc_request_server_start(n->procs, n->names, n->persist, node_stats_map, n)) ==
            NULL ||
        (n->feed = rc_names_feed_start(n->procs, n->names, &n->loop)) == NULL) {
        if (scopes_ok)
            snprintf(err, errlen, "cannot start the node's processes");
        n->handle_signals = 0;
        uv_async_init(&n->loop, &n->stop_async, on_stop_async);
        n->stop_async.data = n;
        do_stop(n);
        uv_run(&n->loop, UV_RUN_DEFAULT);
        rc_node_destroy(n);
        return -1;
    }
    rc_request_server_set_scopes(n->server, n->scopes, n->nscopes, n->nodes);
    rc_request_server_set_emitters(n->server, n->emitters, n->bcast);
    for (size_t i = 0; i < cfg->nseeds; i++) {
        if (rc_cluster_add_seed(n->cluster, cfg->seeds[i]) != 0)
            LOG_W(&n->lg, MOD, "ignoring bad seed node name '%s'", cfg->seeds[i]);
    }
    uv_async_init(&n->loop, &n->stop_async, on_stop_async);
    n->stop_async.data = n;
    n->handle_signals = cfg->handle_signals;
    if (n->handle_signals) {
        uv_signal_init(&n->loop, &n->sigterm);
        uv_signal_init(&n->loop, &n->sigint);
        n->sigterm.data = n->sigint.data = n;
        uv_signal_start(&n->sigterm, on_signal, SIGTERM);
        uv_signal_start(&n->sigint, on_signal, SIGINT);
    }
    if (cfg->exit_on_stdin_close) {
        if (uv_poll_init(&n->loop, &n->stdin_poll, STDIN_FILENO) == 0) {
            n->watch_stdin = 1;
            n->stdin_poll.data = n;
            uv_poll_start(&n->stdin_poll, UV_READABLE | UV_DISCONNECT, on_stdin);
        } else {
            LOG_W(&n->lg, MOD, "cannot watch stdin; --exit-on-stdin-close ignored");
        }
    }
    *out = n;
    return 0;
}

const char *rc_node_name(const rc_node *n) { return n->node_name; }

rc_pg_scope *node_scope(rc_node *n, const char *scope)
{
    if (n->nscopes == 0)
        return NULL;
    if (scope == NULL)
        return n->scopes[0];
    for (size_t i = 0; i < n->nscopes; i++)
        if (strcmp(rc_pg_scope_name(n->scopes[i]), scope) == 0)
            return n->scopes[i];
    return NULL;
}

int rc_node_run(rc_node *n)
{
    uv_run(&n->loop, UV_RUN_DEFAULT);
    return 0;
}

void rc_node_stop(rc_node *n) { uv_async_send(&n->stop_async); }

void rc_node_destroy(rc_node *n)
{
    if (n == NULL)
        return;
    if (uv_loop_close(&n->loop) != 0) {
        /* Handles still open means run() was not driven to the end: finish. */
        uv_run(&n->loop, UV_RUN_DEFAULT);
        uv_loop_close(&n->loop);
    }
    /* Before the layers that a never-run write's callback answers through. */
    names_persist_free(n->persist);
    rc_cluster_free(n->cluster);
    rc_procs_free(n->procs);
    for (size_t i = 0; i < n->nscopes; i++)
        rc_pg_scope_free(n->scopes[i]);
    rc_nodetab_free(n->nodes);
    rc_dist_free(n->dist);
    rc_request_server_free(n->server);
    rc_names_feed_free(n->feed);
    rc_emitters_free(n->emitters);
    rc_bcast_free(n->bcast);
    bcast_queue_free(n->queue);
    pthread_mutex_destroy(&n->call_mu);
    names_store_close(n->store);
    names_table_free(n->names);
    free(n);
}

size_t rc_node_output_pending(rc_node *n) { return rc_dist_output_pending(n->dist); }
