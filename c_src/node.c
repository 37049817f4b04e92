#include "node.h"

#include "cluster/cluster.h"
#include "dist/dist.h"
#include "naming/names_store.h"
#include "naming/names_table.h"
#include "naming/naming.h"
#include "emitter/bcast_queue.h"
#include "emitter/broadcast.h"
#include "emitter/emitter_pool.h"
#include "emitter/event.h"
#include "pg/cpid.h"
#include "pg/pg_scope.h"
#include "proc/procs.h"
#include "server/request_server.h"
#include "util/log.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#define MOD "node"

struct rc_node {
    uv_loop_t loop;
    rc_logger lg;
    char node_name[256];
    rc_dist *dist;
    rc_procs *procs;
    rc_cluster *cluster;
    names_table *names;
    names_store *store;
    rc_request_server *server;
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
    rc_emitters *emitters;
    /* rc_node_call: requests from other threads, run on the loop. */
    uv_async_t call_async;
    pthread_mutex_t call_mu;
    struct node_call *calls;
    uv_check_t backpressure;
    uint64_t drained;
    uv_signal_t sigterm, sigint;
    uv_async_t stop_async;
    uv_poll_t stdin_poll;
    int handle_signals;
    int watch_stdin;
    int stopping;
};

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

typedef struct node_call {
    void (*fn)(rc_node *n, void *ctx);
    void *ctx;
    int done;
    int refused;
    pthread_cond_t cond;
    struct node_call *next;
} node_call;

/* ---------------------------------------------------------- layer wiring */

static void on_up(void *ctx, rc_conn *c)
{
    rc_node *n = ctx;
    rc_cluster_on_up(n->cluster, c);
    for (size_t i = 0; i < n->nscopes; i++)
        rc_pg_scope_nodeup(n->scopes[i], rc_conn_peer(c));
}

static void on_proc_exit(void *ctx, const erlang_pid *pid)
{
    rc_node *n = ctx;
    for (size_t i = 0; i < n->nscopes; i++)
        rc_pg_scope_proc_exit(n->scopes[i], pid);
}

static void on_down(void *ctx, rc_conn *c, const char *why)
{
    rc_node *n = ctx;
    (void)why;
    rc_procs_on_down(n->procs, rc_conn_peer(c));
    for (size_t i = 0; i < n->nscopes; i++)
        rc_pg_scope_nodedown(n->scopes[i], rc_conn_peer(c));
    if (n->cluster)
        rc_cluster_on_down(n->cluster, rc_conn_peer(c));
}

static void on_frame(void *ctx, rc_conn *c, const char *payload, size_t len)
{
    rc_node *n = ctx;
    rc_procs_on_frame(n->procs, rc_conn_peer(c), payload, len);
}

static int transport_send(void *ctx, const char *node, const char *ctrl, size_t ctrl_len,
                          const char *msg, size_t msg_len)
{
    rc_node *n = ctx;
    rc_conn *c = rc_dist_find(n->dist, node);
    if (c == NULL)
        return -1;
    return rc_dist_send(n->dist, c, ctrl, ctrl_len, msg, msg_len);
}

static void on_connect_failed(void *ctx, const char *node)
{
    rc_node *n = ctx;
    if (n->cluster)
        rc_cluster_on_connect_failed(n->cluster, node);
}

static int transport_sendv(void *ctx, const char *node, const struct iovec *parts, int nparts)
{
    rc_node *n = ctx;
    rc_conn *c = rc_dist_find(n->dist, node);
    if (c == NULL)
        return -1;
    return rc_dist_sendv(n->dist, c, parts, nparts);
}

static void put_kv(ei_x_buff *x, const char *k, uint64_t v)
{
    ei_x_encode_atom(x, k);
    ei_x_encode_ulonglong(x, v);
}

static void stats_map(void *ctx, ei_x_buff *x)
{
    rc_node *n = ctx;
    const rc_dist_stats *ds = rc_dist_get_stats(n->dist);
    const rc_procs_stats *ps = rc_procs_get_stats(n->procs);
    ei_x_encode_map_header(x, 20);
    put_kv(x, "read_pauses", ds->read_pauses);
    put_kv(x, "connect_failed", ds->connect_failed);
    const rc_bcast_stats *bs = rc_bcast_get_stats(n->bcast);
    const rc_emitters_stats *es = rc_emitters_get_stats(n->emitters);
    put_kv(x, "broadcasts", bs->broadcasts);
    put_kv(x, "no_emitters", bs->no_emitters);
    put_kv(x, "events_in", es->events_in);
    put_kv(x, "events_out", es->events_out);
    put_kv(x, "emitter_pools", rc_emitters_pool_count(n->emitters));
    /* Bytes in use on the C heap: lets tests and benchmarks see the cost of
     * tables (e.g. per pg membership) from outside. */
    struct mallinfo2 mi = mallinfo2();
    put_kv(x, "heap_bytes", (uint64_t)mi.uordblks);
    put_kv(x, "connections", rc_dist_connection_count(n->dist));
    put_kv(x, "known_nodes", rc_cluster_known_count(n->cluster));
    uint64_t peers = 0, groups = 0, members = 0, malformed = 0;
    for (size_t i = 0; i < n->nscopes; i++) {
        peers += rc_pg_peer_count(n->scopes[i]);
        groups += pgm_group_count(rc_pg_table(n->scopes[i]));
        members += pgm_member_count(rc_pg_table(n->scopes[i]));
        malformed += rc_pg_get_stats(n->scopes[i])->malformed;
    }
    put_kv(x, "peers", peers);
    put_kv(x, "groups", groups);
    put_kv(x, "members", members);
    put_kv(x, "processes", rc_procs_count(n->procs));
    put_kv(x, "emitter_name_tables", names_table_count(n->names));
    put_kv(x, "messages_in", ps->msgs_in);
    put_kv(x, "messages_out", ps->msgs_out);
    put_kv(x, "bytes_in", ds->bytes_in);
    put_kv(x, "bytes_out", ds->bytes_out);
    ei_x_encode_atom(x, "errors");
    ei_x_encode_map_header(x, 11);
    put_kv(x, "pg_malformed", malformed);
    put_kv(x, "handshake", ds->err_handshake);
    put_kv(x, "frame_too_big", ds->err_frame_too_big);
    put_kv(x, "output_overflow", ds->err_output_overflow);
    put_kv(x, "tick_timeout", ds->err_tick_timeout);
    put_kv(x, "io", ds->err_io);
    put_kv(x, "malformed", ps->err_malformed);
    put_kv(x, "unknown_op", ps->err_unknown_op);
    put_kv(x, "unknown_target", ps->err_unknown_target);
    put_kv(x, "dropped", ps->msgs_dropped);
    put_kv(x, "ticks_in", ds->ticks_in);
}

/* -------------------------------------------------------------- stopping */

static void run_calls(rc_node *n, int refuse);

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
    uv_check_stop(&n->backpressure);
    uv_close((uv_handle_t *)&n->backpressure, NULL);
    run_calls(n, 1);
    uv_close((uv_handle_t *)&n->call_async, NULL);
    /* pg leaves first, so peers drop our members now, not at disconnect. */
    for (size_t i = 0; i < n->nscopes; i++)
        rc_pg_scope_shutdown(n->scopes[i]);
    /* Ending the processes first tells remote monitors and links (DOWN and
     * EXIT go out) while the connections are still there; rc_dist_stop then
     * flushes them before closing. */
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

/* Runs (or, when stopping, refuses) the calls queued by other threads. */
static void run_calls(rc_node *n, int refuse)
{
    pthread_mutex_lock(&n->call_mu);
    node_call *list = n->calls;
    n->calls = NULL;
    pthread_mutex_unlock(&n->call_mu);
    while (list != NULL) {
        node_call *c = list;
        list = c->next;
        if (!refuse)
            c->fn(n, c->ctx);
        pthread_mutex_lock(&n->call_mu);
        c->refused = refuse;
        c->done = 1;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&n->call_mu);
    }
}

static void on_call_async(uv_async_t *a) { run_calls(a->data, 0); }

/* Producers may outrun the sockets; beyond this much unwritten output the
 * queue pauses (and producers block on it) until the sockets drain below
 * the low mark, so memory stays bounded and hot. */
#define OUTPUT_HIGH_WATER (4u << 20)
#define OUTPUT_LOW_WATER (1u << 20)

static int drain_broadcast(void *ctx, const void *target, const uint8_t *event, size_t len)
{
    rc_node *n = ctx;
    if (!n->stopping && (++n->drained & 63) == 0 &&
        rc_dist_output_pending(n->dist) > OUTPUT_HIGH_WATER)
        return 1;
    /* Asked by this node: a member that is a C process here gets forward_to_local. */
    (void)rc_bcast_send(n->bcast, target, 0, event, len);
    return 0;
}

static void on_backpressure_check(uv_check_t *h)
{
    rc_node *n = h->data;
    if (n->queue != NULL && bcast_queue_paused(n->queue) &&
        rc_dist_output_pending(n->dist) < OUTPUT_LOW_WATER)
        bcast_queue_resume(n->queue);
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
    char alive[256];
    if (make_node_name(cfg, n->node_name, sizeof n->node_name, alive, sizeof alive) != 0) {
        snprintf(err, errlen, "bad node name");
        free(n);
        return -1;
    }
    /* Handshakes and connects run on libuv's pool; a few slow peers must not
     * hold up the rest. Must be set before the pool's first use. */
    setenv("UV_THREADPOOL_SIZE", "8", 0);
    if (uv_loop_init(&n->loop) != 0) {
        snprintf(err, errlen, "uv_loop_init failed");
        free(n);
        return -1;
    }
    n->names = names_table_new();
    if (n->names == NULL) {
        snprintf(err, errlen, "out of memory");
        uv_loop_close(&n->loop);
        free(n);
        return -1;
    }
    if (cfg->data_dir != NULL) {
        size_t loaded = 0, skipped = 0;
        int e = names_store_open(cfg->data_dir, &n->store);
        if (e == 0)
            e = names_store_load(n->store, n->names, &loaded, &skipped);
        if (e != 0) {
            snprintf(err, errlen, "cannot open --data-dir %s: %s", cfg->data_dir,
                     names_store_strerror(e));
            names_store_close(n->store);
            names_table_free(n->names);
            uv_loop_close(&n->loop);
            free(n);
            return -1;
        }
        LOG_I(&n->lg, MOD, "loaded %zu emitter-name entries from %s (%zu damaged, skipped)",
              loaded, cfg->data_dir, skipped);
    }
    rc_dist_config dc = {.alive = alive,
                         .node_name = n->node_name,
                         .cookie = cfg->cookie,
                         .max_message_bytes = cfg->max_message_bytes,
                         .max_output_bytes = cfg->max_output_bytes,
                         .net_ticktime_s = cfg->net_ticktime_s,
                         .handshake_timeout_ms = 5000,
                         .no_epmd = cfg->no_epmd};
    rc_dist_callbacks cb = {.ctx = n, .on_up = on_up, .on_down = on_down, .on_frame = on_frame,
                            .on_connect_failed = on_connect_failed};
    if (rc_dist_start(&n->dist, &n->loop, &n->lg, &dc, &cb, err, (int)errlen) != 0) {
        names_store_close(n->store);
        names_table_free(n->names);
        uv_loop_close(&n->loop);
        free(n);
        return -1;
    }
    rc_procs_transport tr = {.ctx = n, .send = transport_send, .sendv = transport_sendv};
    n->procs = rc_procs_new(&n->lg, &tr, n->node_name, rc_dist_creation(n->dist));
    rc_cluster_config cc = {.rediscover_ms = 5000, .backoff_min_ms = 100,
                            .backoff_max_ms = 10000, .forget_after = 8};
    if (n->procs != NULL)
        n->cluster = rc_cluster_new(&n->loop, &n->lg, n->dist, n->procs, &cc);
    n->nodes = rc_nodetab_new();
    int scopes_ok = n->procs != NULL && n->nodes != NULL;
    if (scopes_ok) {
        /* Index 0 is this node, so local pids are recognised cheaply. */
        (void)rc_nodetab_intern(n->nodes, n->node_name, strlen(n->node_name));
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
    uv_async_init(&n->loop, &n->call_async, on_call_async);
    n->call_async.data = n;
    if (scopes_ok) {
        n->bcast = rc_bcast_new(n->procs, n->scopes[0], n->nodes);
        n->emitters = rc_emitters_new(n->procs, n->scopes[0], n->nodes, n->names);
        n->queue = bcast_queue_new(&n->loop, 4u << 20, drain_broadcast, n);
    }
    uv_check_init(&n->loop, &n->backpressure);
    n->backpressure.data = n;
    uv_check_start(&n->backpressure, on_backpressure_check);
    if (!scopes_ok || n->procs == NULL || n->cluster == NULL || n->bcast == NULL ||
        n->emitters == NULL || n->queue == NULL || rc_net_kernel_start(n->procs) != 0 ||
        (n->server = rc_request_server_start(&n->loop, n->procs, n->names, n->store, stats_map,
                                                 n)) == NULL) {
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
    rc_cluster_free(n->cluster);
    rc_procs_free(n->procs);
    for (size_t i = 0; i < n->nscopes; i++)
        rc_pg_scope_free(n->scopes[i]);
    rc_nodetab_free(n->nodes);
    rc_dist_free(n->dist);
    rc_request_server_free(n->server);
    rc_emitters_free(n->emitters);
    rc_bcast_free(n->bcast);
    bcast_queue_free(n->queue);
    pthread_mutex_destroy(&n->call_mu);
    names_store_close(n->store);
    names_table_free(n->names);
    free(n);
}

/* ------------------------------------------------------------ pg C API */

_Static_assert(sizeof(rc_pid) == sizeof(rc_cpid), "rc_pid mirrors rc_cpid");

static rc_pg_scope *scope_of(rc_node *n, const char *scope)
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

typedef struct c_process {
    rc_node *node;
    rc_process_fn fn;
    void *ctx;
} c_process;

static void c_process_signal(rc_procs *ps, rc_proc *self, const rc_signal *sig)
{
    (void)ps;
    c_process *cp = rc_proc_ctx(self);
    if (sig->kind != RC_SIG_MSG || cp->fn == NULL)
        return;
    rc_cpid me;
    if (rc_cpid_from_ei(cp->node->nodes, rc_proc_pid(self), &me) == 0)
        cp->fn(cp->ctx, (const rc_pid *)&me, sig->buf, (size_t)sig->len);
}

int rc_process_spawn(rc_node *n, rc_process_fn fn, void *ctx, rc_pid *out)
{
    c_process *cp = malloc(sizeof *cp);
    if (cp == NULL)
        return -1;
    cp->node = n;
    cp->fn = fn;
    cp->ctx = ctx;
    rc_proc *p = rc_proc_spawn(n->procs, c_process_signal, cp, free);
    if (p == NULL) {
        free(cp);
        return -1;
    }
    return rc_cpid_from_ei(n->nodes, rc_proc_pid(p), (rc_cpid *)out);
}

int rc_process_exit(rc_node *n, const rc_pid *pid, const char *reason_atom)
{
    erlang_pid epid;
    if (rc_cpid_to_ei(n->nodes, (const rc_cpid *)pid, &epid) != 0)
        return -1;
    rc_proc *p = rc_procs_lookup(n->procs, &epid);
    if (p == NULL)
        return -1;
    rc_proc_exit(n->procs, p, reason_atom ? reason_atom : "normal");
    return 0;
}

const char *rc_pid_node_name(const rc_node *n, const rc_pid *pid)
{
    return rc_nodetab_name(n->nodes, pid->node);
}

int rc_group_key_term(const uint8_t *store_utf8, size_t store_len, const uint8_t *sub,
                      size_t sub_len, char *out, size_t cap, size_t *len)
{
    ei_x_buff x;
    if (store_len > 255 * 4 || ei_x_new(&x) != 0)
        return -1;
    int rc = ei_x_encode_tuple_header(&x, 3) || ei_x_encode_atom_len_as(&x, (const char *)store_utf8,
                                                                       (int)store_len, ERLANG_UTF8,
                                                                       ERLANG_UTF8) ||
             ei_x_encode_binary(&x, sub, (long)sub_len) || ei_x_encode_atom(&x, "emitters");
    if (rc == 0 && (size_t)x.index <= cap) {
        memcpy(out, x.buff, (size_t)x.index);
        *len = (size_t)x.index;
    } else {
        rc = -1;
    }
    ei_x_free(&x);
    return rc;
}

int rc_pg_join_local(rc_node *n, const char *scope, const char *group, size_t glen,
                     const rc_pid *pids, size_t npids)
{
    rc_pg_scope *s = scope_of(n, scope);
    return s ? rc_pg_join(s, group, (int)glen, (const rc_cpid *)pids, npids) : -1;
}

int rc_pg_leave_local(rc_node *n, const char *scope, const char *group, size_t glen,
                      const rc_pid *pids, size_t npids)
{
    rc_pg_scope *s = scope_of(n, scope);
    return s ? rc_pg_leave(s, group, (int)glen, (const rc_cpid *)pids, npids) : -1;
}

int rc_pg_get_members(rc_node *n, const char *scope, const char *group, size_t glen,
                      const rc_pid **members, size_t *count)
{
    rc_pg_scope *s = scope_of(n, scope);
    ei_x_buff key;
    if (s == NULL || ei_x_new(&key) != 0)
        return -1;
    int rc = rc_pg_group_key(group, (int)glen, &key);
    if (rc == 0)
        *members = (const rc_pid *)rc_pg_members(s, (const uint8_t *)key.buff, (size_t)key.index,
                                                 count);
    ei_x_free(&key);
    return rc;
}

long rc_pg_get_local_members(rc_node *n, const char *scope, const char *group, size_t glen,
                             rc_pid *out, size_t cap)
{
    const rc_pid *m;
    size_t count;
    if (rc_pg_get_members(n, scope, group, glen, &m, &count) != 0)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        if (m[i].node != 0) /* index 0 is this node */
            continue;
        if (k < cap)
            out[k] = m[i];
        k++;
    }
    return (long)k;
}

int rc_pg_which_groups(rc_node *n, const char *scope,
                       void (*fn)(void *ctx, const char *group, size_t glen), void *ctx)
{
    rc_pg_scope *s = scope_of(n, scope);
    if (s == NULL)
        return -1;
    const pgm_table *t = rc_pg_table(s);
    for (pgm_group *g = pgm_next(t, NULL); g != NULL; g = pgm_next(t, g)) {
        size_t klen;
        const uint8_t *k = pgm_group_key(g, &klen);
        fn(ctx, (const char *)k, klen);
    }
    return 0;
}

typedef struct monitor_sub monitor_sub;

static void monitor_bridge(void *ctx, rc_pg_scope *s, rc_pg_event ev, const uint8_t *group,
                           size_t glen, const rc_cpid *pids, size_t npids)
{
    (void)s;
    monitor_sub *m = ctx;
    m->fn(m->ctx, ev == RC_PG_JOINED, (const char *)group, glen, (const rc_pid *)pids, npids);
}

int rc_pg_monitor_scope(rc_node *n, const char *scope, rc_pg_monitor_fn fn, void *ctx)
{
    rc_pg_scope *s = scope_of(n, scope);
    if (s == NULL || n->nmonitors == sizeof n->monitors / sizeof n->monitors[0])
        return -1;
    monitor_sub *m = &n->monitors[n->nmonitors];
    m->fn = fn;
    m->ctx = ctx;
    if (rc_pg_subscribe(s, monitor_bridge, m) != 0)
        return -1;
    n->nmonitors++;
    return 0;
}

/* ----------------------------------------------- events, broadcast, pools */

int rc_event_build(const rc_event_fields *f, uint8_t **out, size_t *len)
{
    return event_build(f, out, len);
}

int rc_encode_binary_map(const char *const *keys, const uint8_t *const *vals,
                         const size_t *val_lens, size_t n, uint8_t **out, size_t *len)
{
    return event_encode_binary_map(keys, vals, val_lens, n, out, len);
}

rc_target *rc_target_new(const uint8_t *store_utf8, size_t store_len, const uint8_t *sub,
                         size_t sub_len)
{
    int err = 0;
    return (rc_target *)bcast_target_new(store_utf8, store_len, sub, sub_len, &err);
}

void rc_target_free(rc_target *t) { bcast_target_free((bcast_target *)t); }

int rc_broadcast(rc_node *n, const rc_target *t, const uint8_t *event, size_t len)
{
    if (n->queue == NULL)
        return RC_ESTOPPED;
    return bcast_queue_push(n->queue, t, event, len) == 0 ? RC_OK : RC_ESTOPPED;
}

int rc_broadcast_flush(rc_node *n, unsigned timeout_ms)
{
    return n->queue != NULL ? bcast_queue_flush(n->queue, timeout_ms) : -1;
}

int rc_broadcast_now(rc_node *n, const rc_target *t, const uint8_t *event, size_t len)
{
    int r = rc_bcast_send(n->bcast, (const bcast_target *)t, 0, event, len);
    return r == 0 ? RC_OK : r == 1 ? RC_ENO_EMITTERS : -1;
}

int rc_emitter_pool_start(rc_node *n, const uint8_t *store_utf8, size_t store_len,
                          const uint8_t *sub, size_t sub_len, unsigned pool_size,
                          const rc_pid *subscriber, rc_pid *pids)
{
    erlang_pid sp, *spp = NULL;
    if (subscriber != NULL) {
        if (rc_cpid_to_ei(n->nodes, (const rc_cpid *)subscriber, &sp) != 0)
            return -1;
        spp = &sp;
    }
    erlang_pid *got = NULL;
    size_t ngot = 0;
    int rc = rc_emitters_start_pool(n->emitters, store_utf8, store_len, sub, sub_len, pool_size,
                                    spp, &got, &ngot);
    for (size_t i = 0; rc == 0 && pids != NULL && i < ngot; i++)
        (void)rc_cpid_from_ei(n->nodes, &got[i], (rc_cpid *)&pids[i]);
    free(got);
    return rc == 0 ? 0 : -1;
}

int rc_emitter_pool_stop(rc_node *n, const uint8_t *store_utf8, size_t store_len,
                         const uint8_t *sub, size_t sub_len)
{
    return rc_emitters_stop_pool(n->emitters, store_utf8, store_len, sub, sub_len) == 0 ? 0 : -1;
}

int rc_node_call(rc_node *n, void (*fn)(rc_node *n, void *ctx), void *ctx)
{
    node_call c = {.fn = fn, .ctx = ctx};
    pthread_cond_init(&c.cond, NULL);
    pthread_mutex_lock(&n->call_mu);
    if (n->stopping) {
        pthread_mutex_unlock(&n->call_mu);
        pthread_cond_destroy(&c.cond);
        return -1;
    }
    c.next = n->calls;
    n->calls = &c;
    pthread_mutex_unlock(&n->call_mu);
    uv_async_send(&n->call_async);
    pthread_mutex_lock(&n->call_mu);
    while (!c.done)
        pthread_cond_wait(&c.cond, &n->call_mu);
    pthread_mutex_unlock(&n->call_mu);
    pthread_cond_destroy(&c.cond);
    return c.refused ? -1 : 0;
}

size_t rc_node_output_pending(rc_node *n) { return rc_dist_output_pending(n->dist); }

size_t rc_node_stats(rc_node *n, rc_stat *out, size_t cap)
{
    const rc_dist_stats *ds = rc_dist_get_stats(n->dist);
    const rc_procs_stats *ps = rc_procs_get_stats(n->procs);
    const rc_bcast_stats *bs = rc_bcast_get_stats(n->bcast);
    const rc_emitters_stats *es = rc_emitters_get_stats(n->emitters);
    uint64_t members = 0, peers = 0;
    for (size_t i = 0; i < n->nscopes; i++) {
        members += pgm_member_count(rc_pg_table(n->scopes[i]));
        peers += rc_pg_peer_count(n->scopes[i]);
    }
    const rc_stat all[] = {
        {"connections", rc_dist_connection_count(n->dist)},
        {"peers", peers},
        {"members", members},
        {"messages_in", ps->msgs_in},
        {"messages_out", ps->msgs_out},
        {"bytes_in", ds->bytes_in},
        {"bytes_out", ds->bytes_out},
        {"broadcasts", bs->broadcasts},
        {"no_emitters", bs->no_emitters},
        {"broadcast_send_failed", bs->send_failed},
        {"events_in", es->events_in},
        {"events_out", es->events_out},
        {"dropped", ps->msgs_dropped},
    };
    size_t total = sizeof all / sizeof all[0];
    for (size_t i = 0; i < total && i < cap; i++)
        out[i] = all[i];
    return total;
}

int rc_topic(const uint8_t *store_utf8, size_t store_len, const uint8_t *sub, size_t sub_len,
             uint8_t *out, size_t out_cap, size_t *out_len)
{
    return (int)naming_topic(store_utf8, store_len, sub, sub_len, out, out_cap, out_len);
}

int rc_emitter_name(const uint8_t *store_utf8, size_t store_len, const uint8_t *sub,
                    size_t sub_len, const char *n_decimal, uint8_t *out, size_t out_cap,
                    size_t *out_len)
{
    return (int)naming_emitter_name(store_utf8, store_len, sub, sub_len, n_decimal, out, out_cap,
                                    out_len);
}
