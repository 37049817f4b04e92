#include "cluster/cluster.h"

#include "proc/gen_server.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#define MOD "cluster"
#define NODE_MAX 256
/* Nodes remembered at once: peers' lists are believed, but a peer that
 * lists a million names must not make us remember (and dial) them all. */
#define KNOWN_MAX 4096u
/* A learnt node that no peer has listed for this many discovery rounds and
 * that is not connected is forgotten, not dialled again. */
#define UNLISTED_ROUNDS 3u

typedef struct known_node {
    char name[NODE_MAX];
    int is_seed;
    int listed; /* a peer's nodes() named it: a cluster member, not a client */
    uint64_t listed_ms; /* when a peer last named it */
    unsigned backoff_ms;
    uint64_t next_attempt_ms;
    unsigned failures;
    UT_hash_handle hh;
} known_node;

struct rc_cluster {
    uv_loop_t *loop;
    const rc_logger *lg;
    rc_dist *dist;
    rc_procs *ps;
    rc_cluster_config cfg;
    known_node *known;
    rc_proc *self; /* receives rex replies */
    int warned_full;
    uv_timer_t connect_timer;
    uv_timer_t discover_timer;
    int stopped;
};

static known_node *find_known(rc_cluster *cl, const char *node)
{
    known_node *k = NULL;
    HASH_FIND_STR(cl->known, node, k);
    return k;
}

static known_node *learn(rc_cluster *cl, const char *node, int is_seed)
{
    if (strlen(node) >= NODE_MAX || strchr(node, '@') == NULL ||
        strcmp(node, rc_procs_node_name(cl->ps)) == 0)
        return NULL;
    known_node *k = find_known(cl, node);
    if (k != NULL) {
        k->is_seed |= is_seed;
        return k;
    }
    if (HASH_COUNT(cl->known) >= KNOWN_MAX) {
        if (!cl->warned_full++)
            LOG_W(cl->lg, MOD, "%u nodes known already: not remembering %s and others "
                  "(logged once)", KNOWN_MAX, node);
        return NULL;
    }
    k = calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    strcpy(k->name, node);
    k->is_seed = is_seed;
    k->backoff_ms = cl->cfg.backoff_min_ms;
    k->next_attempt_ms = 0;
    HASH_ADD_STR(cl->known, name, k);
    LOG_I(cl->lg, MOD, "learnt of node %s%s", node, is_seed ? " (seed)" : "");
    return k;
}

int rc_cluster_add_seed(rc_cluster *cl, const char *node)
{
    return learn(cl, node, 1) != NULL ? 0 : -1;
}

size_t rc_cluster_known_count(const rc_cluster *cl) { return HASH_COUNT(cl->known); }

static void ask_nodes(rc_cluster *cl, const char *node)
{
    erlang_ref ref;
    rc_procs_make_ref(cl->ps, &ref);
    ei_x_buff x;
    if (ei_x_new(&x) != 0)
        return;
    const erlang_pid *self = rc_proc_pid(cl->self);
    /* rex serves {call, M, F, A, GroupLeader} as a gen_server call. The
     * question is erlang:nodes(connected): hidden nodes included, so that
     * sidecars of one cluster (all hidden) find each other. */
    if (rc_gen_call_begin(&x, self, &ref) == 0 && ei_x_encode_tuple_header(&x, 5) == 0 &&
        ei_x_encode_atom(&x, "call") == 0 && ei_x_encode_atom(&x, "erlang") == 0 &&
        ei_x_encode_atom(&x, "nodes") == 0 && ei_x_encode_list_header(&x, 1) == 0 &&
        ei_x_encode_atom(&x, "connected") == 0 && ei_x_encode_empty_list(&x) == 0 &&
        ei_x_encode_pid(&x, self) == 0)
        (void)rc_proc_send_named(cl->ps, cl->self, "rex", node, x.buff, x.index);
    ei_x_free(&x);
}

/* Replies look like {Ref, [Node]}; anything else (e.g. a badrpc) is ignored. */
static void on_message(rc_procs *ps, rc_proc *self, const rc_signal *sig)
{
    rc_cluster *cl = rc_proc_ctx(self);
    (void)ps;
    if (sig->kind != RC_SIG_MSG)
        return;
    int idx = 0, v = 0, arity = 0, n = 0;
    if (ei_decode_version(sig->buf, &idx, &v) != 0 ||
        ei_decode_tuple_header(sig->buf, &idx, &arity) != 0 || arity != 2 ||
        ei_skip_term(sig->buf, &idx) != 0 || ei_decode_list_header(sig->buf, &idx, &n) != 0)
        return;
    LOG_D(cl->lg, MOD, "a peer lists %d connected node(s)", n);
    for (int i = 0; i < n; i++) {
        char node[MAXATOMLEN_UTF8];
        if (ei_decode_atom_as(sig->buf, &idx, node, sizeof node, ERLANG_UTF8, NULL, NULL) != 0)
            return;
        known_node *k = learn(cl, node, 0);
        if (k != NULL) {
            k->failures = 0;
            k->listed = 1;
            k->listed_ms = uv_now(cl->loop);
        }
        if (k != NULL && rc_dist_find(cl->dist, node) == NULL)
            rc_dist_connect(cl->dist, node);
    }
}

static void on_connect_timer(uv_timer_t *t)
{
    rc_cluster *cl = t->data;
    uint64_t now = uv_now(cl->loop);
    rc_dist *d = cl->dist;
    uint64_t unlisted_ms = (uint64_t)UNLISTED_ROUNDS * cl->cfg.rediscover_ms;
    known_node *k, *tmp;
    HASH_ITER(hh, cl->known, k, tmp) {
        if (now < k->next_attempt_ms || rc_dist_find(d, k->name) != NULL ||
            rc_dist_is_connecting(d, k->name))
            continue;
        if (!k->is_seed && now - k->listed_ms > unlisted_ms) {
            /* Gone from every peer's list: it left the cluster. */
            LOG_I(cl->lg, MOD, "forgetting %s: not connected and no peer lists it", k->name);
            HASH_DEL(cl->known, k);
            free(k);
            continue;
        }
        k->next_attempt_ms = now + k->backoff_ms;
        rc_dist_connect(d, k->name);
    }
}

static void ask_one(rc_conn *c, void *arg) { ask_nodes(arg, rc_conn_peer(c)); }

static void on_discover_timer(uv_timer_t *t)
{
    rc_cluster *cl = t->data;
    rc_dist_foreach(cl->dist, ask_one, cl);
}

rc_cluster *rc_cluster_new(uv_loop_t *loop, const rc_logger *lg, rc_dist *dist, rc_procs *ps,
                           const rc_cluster_config *cfg)
{
    rc_cluster *cl = calloc(1, sizeof *cl);
    if (cl == NULL)
        return NULL;
    cl->loop = loop;
    cl->lg = lg;
    cl->dist = dist;
    cl->ps = ps;
    cl->cfg = *cfg;
    cl->self = rc_proc_spawn(ps, on_message, cl, NULL);
    if (cl->self == NULL) {
        free(cl);
        return NULL;
    }
    uv_timer_init(loop, &cl->connect_timer);
    cl->connect_timer.data = cl;
    uv_timer_start(&cl->connect_timer, on_connect_timer, 0, 100);
    uv_timer_init(loop, &cl->discover_timer);
    cl->discover_timer.data = cl;
    uv_timer_start(&cl->discover_timer, on_discover_timer, cfg->rediscover_ms, cfg->rediscover_ms);
    return cl;
}

void rc_cluster_on_up(rc_cluster *cl, rc_conn *c)
{
    known_node *k = learn(cl, rc_conn_peer(c), 0);
    if (k != NULL) {
        k->failures = 0;
        k->backoff_ms = cl->cfg.backoff_min_ms;
    }
    ask_nodes(cl, rc_conn_peer(c));
}

void rc_cluster_on_down(rc_cluster *cl, const char *node)
{
    known_node *k = find_known(cl, node);
    if (k != NULL && !k->is_seed && !k->listed) {
        /* It only ever connected to us (an erl shell, a short-lived client):
         * do not dial it back; if it is a cluster member after all, a
         * peer's nodes() will name it again. */
        LOG_D(cl->lg, MOD, "forgetting %s: it connected to us and no peer lists it", k->name);
        HASH_DEL(cl->known, k);
        free(k);
        return;
    }
    if (k != NULL && !cl->stopped) {
        k->backoff_ms = cl->cfg.backoff_min_ms;
        k->next_attempt_ms = uv_now(cl->loop) + k->backoff_ms;
    }
}

void rc_cluster_on_connect_failed(rc_cluster *cl, const char *node)
{
    known_node *k = find_known(cl, node);
    if (k == NULL)
        return;
    k->failures++;
    if (!k->is_seed && k->failures >= cl->cfg.forget_after) {
        LOG_I(cl->lg, MOD, "forgetting %s after %u failed connects", k->name, k->failures);
        HASH_DEL(cl->known, k);
        free(k);
        return;
    }
    unsigned next = k->backoff_ms * 2;
    k->backoff_ms = next > cl->cfg.backoff_max_ms ? cl->cfg.backoff_max_ms : next;
    k->next_attempt_ms = uv_now(cl->loop) + k->backoff_ms;
}

void rc_cluster_stop(rc_cluster *cl)
{
    if (cl->stopped)
        return;
    cl->stopped = 1;
    uv_timer_stop(&cl->connect_timer);
    uv_timer_stop(&cl->discover_timer);
    uv_close((uv_handle_t *)&cl->connect_timer, NULL);
    uv_close((uv_handle_t *)&cl->discover_timer, NULL);
}

void rc_cluster_free(rc_cluster *cl)
{
    if (cl == NULL)
        return;
    known_node *k, *tmp;
    HASH_ITER(hh, cl->known, k, tmp) {
        HASH_DEL(cl->known, k);
        free(k);
    }
    free(cl);
}
