#include "cluster/cluster.h"

#include "proc/gen_server.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#define MOD "cluster"
#define NODE_MAX 256
#define TICK_MS 100u
/* Nodes remembered at once: peers' lists are believed, but a peer that
 * lists a million names must not make us remember (and dial) them all. */
#define KNOWN_MAX 4096u
/* Names set aside after failing, remembered at once; the oldest goes
 * first when full (it has waited the longest). */
#define ASIDE_MAX 4096u
/* A learnt node that no peer has listed for this many discovery rounds and
 * that is not connected is forgotten, not dialled again. */
#define UNLISTED_ROUNDS 3u
#define QUARANTINE_DOUBLINGS 6u

typedef struct known_node {
    char name[NODE_MAX];
    int is_seed;
    int was_up; /* it was connected once: a member, dialled before strangers */
    int listed; /* a peer's nodes() named it: a cluster member, not a client */
    uint64_t listed_ms; /* when a peer last named it */
    unsigned backoff_ms;
    uint64_t next_attempt_ms;
    unsigned failures; /* in a row; only a connection clears it */
    unsigned quarantine_ms; /* the last one it served, 0 if none */
    int last_cause; /* of its last failure, as said at warning level; 0: none */
    UT_hash_handle hh;
} known_node;

/* A name that kept failing: peers' listings of it are ignored until
 * until_ms. */
typedef struct aside_node {
    char name[NODE_MAX];
    uint64_t until_ms;
    unsigned quarantine_ms;
    UT_hash_handle hh;
} aside_node;

/* The nodes() question outstanding on one connection. */
typedef struct asked_node {
    char name[NODE_MAX];
    erlang_ref ref;
    int again; /* told of a nodeup while the question was out: ask once more */
    UT_hash_handle hh;
} asked_node;

struct rc_cluster {
    uv_loop_t *loop;
    const rc_logger *lg;
    rc_cluster_ops ops;
    rc_procs *ps;
    rc_cluster_config cfg;
    known_node *known;
    aside_node *aside;
    asked_node *asked;
    rc_proc *self; /* receives rex replies */
    int warned_full;
    uint64_t now_ms;
    uint64_t refill_ms;
    uint64_t tokens_milli; /* dial budget, in thousandths of a dial */
    uint64_t next_discover_ms;
    rc_ratelimit refused_log;
    rc_cluster_stats stats;
    uv_timer_t timer;
    int has_timer;
    int stopped;
};

static known_node *find_known(const rc_cluster *cl, const char *node)
{
    known_node *k = NULL;
    HASH_FIND_STR(cl->known, node, k);
    return k;
}

static aside_node *find_aside(const rc_cluster *cl, const char *node)
{
    aside_node *a = NULL;
    HASH_FIND_STR(cl->aside, node, a);
    return a;
}

static void drop_aside(rc_cluster *cl, aside_node *a)
{
    HASH_DEL(cl->aside, a);
    free(a);
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
    k->next_attempt_ms = cl->now_ms;
    aside_node *a = find_aside(cl, node);
    if (a != NULL) {
        /* Back from quarantine (a listing after it ended): one more
         * failure sends it back, for twice as long. */
        k->failures = cl->cfg.forget_after > 0 ? cl->cfg.forget_after - 1 : 0;
        k->quarantine_ms = a->quarantine_ms;
        drop_aside(cl, a);
    }
    HASH_ADD_STR(cl->known, name, k);
    LOG_I(cl->lg, MOD, "learnt of node %s%s", node, is_seed ? " (seed)" : "");
    return k;
}

static void forget(rc_cluster *cl, known_node *k)
{
    HASH_DEL(cl->known, k);
    free(k);
}

/* The node failed forget_after times in a row: it is no longer dialled,
 * and listings of it are ignored for a while, longer each time. */
static void set_aside(rc_cluster *cl, known_node *k)
{
    unsigned q = k->quarantine_ms ? k->quarantine_ms * 2 : cl->cfg.quarantine_min_ms;
    unsigned qmax = cl->cfg.quarantine_min_ms << QUARANTINE_DOUBLINGS;
    if (q > qmax)
        q = qmax;
    aside_node *a = find_aside(cl, k->name);
    if (a == NULL) {
        if (HASH_COUNT(cl->aside) >= ASIDE_MAX)
            drop_aside(cl, cl->aside); /* the oldest */
        a = calloc(1, sizeof *a);
        if (a != NULL) {
            strcpy(a->name, k->name);
            HASH_ADD_STR(cl->aside, name, a);
        }
    }
    if (a != NULL) {
        a->quarantine_ms = q;
        a->until_ms = cl->now_ms + q;
    }
    cl->stats.set_aside++;
    LOG_I(cl->lg, MOD, "setting %s aside for %u s after %u failed connects", k->name,
          q / 1000u, k->failures);
    forget(cl, k);
}

int rc_cluster_add_seed(rc_cluster *cl, const char *node)
{
    return learn(cl, node, 1) != NULL ? 0 : -1;
}

size_t rc_cluster_known_count(const rc_cluster *cl) { return HASH_COUNT(cl->known); }
int rc_cluster_knows(const rc_cluster *cl, const char *node) { return find_known(cl, node) != NULL; }
const rc_cluster_stats *rc_cluster_get_stats(const rc_cluster *cl) { return &cl->stats; }

static void ask_nodes(rc_cluster *cl, const char *node)
{
    if (strlen(node) >= NODE_MAX)
        return;
    asked_node *q = NULL;
    HASH_FIND_STR(cl->asked, node, q);
    if (q == NULL) {
        q = calloc(1, sizeof *q);
        if (q == NULL)
            return;
        strcpy(q->name, node);
        HASH_ADD_STR(cl->asked, name, q);
    }
    /* A new question makes an unanswered earlier one stale. */
    rc_procs_make_ref(cl->ps, &q->ref);
    ei_x_buff x;
    if (ei_x_new(&x) != 0)
        return;
    erlang_pid me, *self = &me;
    rc_proc_get_pid(cl->ps, cl->self, &me);
    /* rex serves {call, M, F, A, GroupLeader} as a gen_server call. The
     * question is erlang:nodes(connected): hidden nodes included, so that
     * sidecars of one cluster (all hidden) find each other. */
    if (rc_gen_call_begin(&x, self, &q->ref) == 0 && ei_x_encode_tuple_header(&x, 5) == 0 &&
        ei_x_encode_atom(&x, "call") == 0 && ei_x_encode_atom(&x, "erlang") == 0 &&
        ei_x_encode_atom(&x, "nodes") == 0 && ei_x_encode_list_header(&x, 1) == 0 &&
        ei_x_encode_atom(&x, "connected") == 0 && ei_x_encode_empty_list(&x) == 0 &&
        ei_x_encode_pid(&x, self) == 0)
        (void)rc_proc_send_named(cl->ps, cl->self, "rex", node, x.buff, x.index);
    ei_x_free(&x);
}

static void forget_question(rc_cluster *cl, const char *node)
{
    asked_node *q = NULL;
    HASH_FIND_STR(cl->asked, node, q);
    if (q != NULL) {
        HASH_DEL(cl->asked, q);
        free(q);
    }
}

#define REFUSED_WINDOW_MS 10000u
#define REFUSED_LINES 3u

static void refuse_answer(rc_cluster *cl, const char *peer, const char *why)
{
    cl->stats.answers_refused++;
    unsigned left_out = 0;
    int ok = rc_ratelimit_allow(&cl->refused_log, cl->now_ms, REFUSED_WINDOW_MS, REFUSED_LINES,
                                &left_out);
    if (left_out > 0)
        LOG_W(cl->lg, MOD, "%u more node lists refused", left_out);
    if (ok)
        LOG_W(cl->lg, MOD, "node list from %s refused: %s", peer ? peer : "this node", why);
}

static void dial_due(rc_cluster *cl);

/* {'$reckon_cnode_nodeup', _} from a connected node (the relay of the
 * reckon_cnode application sends it when a node comes up there): that node
 * is asked for its nodes now rather than at the next periodic round, so a
 * node joining the cluster is seen as soon as pg sees it. It names no node
 * to dial: what is learnt still comes only from the answer to our own
 * question, and a flood of these costs one question in flight and one
 * more after it per peer. */
static void told_nodeup(rc_cluster *cl, const char *peer)
{
    if (peer == NULL || cl->stopped)
        return;
    cl->stats.nodeups++;
    asked_node *q = NULL;
    HASH_FIND_STR(cl->asked, peer, q);
    if (q != NULL)
        q->again = 1;
    else
        ask_nodes(cl, peer);
}

/* The answer {Ref, [Node]} to our question; anything else (e.g. a badrpc)
 * is ignored. It is read only from the node asked, with the reference of
 * the question still outstanding there, and once. */
static void on_message(rc_procs *ps, rc_proc *self, const rc_signal *sig)
{
    rc_cluster *cl = rc_proc_ctx(self);
    (void)ps;
    if (sig->kind != RC_SIG_MSG)
        return;
    int idx = 0, v = 0, arity = 0, n = 0;
    erlang_ref ref;
    char tag[MAXATOMLEN];
    if (ei_decode_version(sig->buf, &idx, &v) == 0 &&
        ei_decode_tuple_header(sig->buf, &idx, &arity) == 0 && arity == 2 &&
        ei_decode_atom(sig->buf, &idx, tag) == 0 && strcmp(tag, "$reckon_cnode_nodeup") == 0) {
        told_nodeup(cl, sig->peer);
        return;
    }
    idx = 0;
    if (ei_decode_version(sig->buf, &idx, &v) != 0 ||
        ei_decode_tuple_header(sig->buf, &idx, &arity) != 0 || arity != 2 ||
        ei_decode_ref(sig->buf, &idx, &ref) != 0) {
        refuse_answer(cl, sig->peer, "not an answer to a question");
        return;
    }
    asked_node *q = NULL;
    if (sig->peer != NULL)
        HASH_FIND_STR(cl->asked, sig->peer, q);
    if (q == NULL || !rc_ref_equal(&q->ref, &ref)) {
        refuse_answer(cl, sig->peer, "no such question outstanding on that connection");
        return;
    }
    int again = q->again;
    forget_question(cl, sig->peer);
    if (again)
        ask_nodes(cl, sig->peer);
    if (ei_decode_list_header(sig->buf, &idx, &n) != 0)
        return;
    cl->stats.answers++;
    LOG_D(cl->lg, MOD, "%s lists %d connected node(s)", sig->peer, n);
    for (int i = 0; i < n; i++) {
        char node[MAXATOMLEN_UTF8];
        if (ei_decode_atom_as(sig->buf, &idx, node, sizeof node, ERLANG_UTF8, NULL, NULL) != 0)
            break;
        aside_node *a = find_aside(cl, node);
        if (a != NULL && cl->now_ms < a->until_ms) {
            cl->stats.listings_ignored++;
            continue;
        }
        known_node *k = learn(cl, node, 0);
        if (k != NULL) {
            k->listed = 1;
            k->listed_ms = cl->now_ms;
        }
    }
    dial_due(cl);
}

static void take_dial(rc_cluster *cl, known_node *k)
{
    cl->tokens_milli -= 1000u;
    k->next_attempt_ms = cl->now_ms + k->backoff_ms;
    cl->stats.dials++;
    cl->ops.connect(cl->ops.ctx, k->name);
}

static void refill(rc_cluster *cl)
{
    uint64_t cap = (uint64_t)cl->cfg.dial_burst * 1000u;
    if (cl->now_ms > cl->refill_ms) {
        cl->tokens_milli += (cl->now_ms - cl->refill_ms) * cl->cfg.dials_per_s;
        cl->refill_ms = cl->now_ms;
    }
    if (cl->tokens_milli > cap)
        cl->tokens_milli = cap;
}

/* Dials nodes that are due, as the budget allows: seeds and nodes that were
 * connected before first, then the longest overdue, so a flood of listed
 * strangers cannot hold back a member's reconnect. */
static void dial_due(rc_cluster *cl)
{
    if (cl->stopped)
        return;
    refill(cl);
    while (cl->tokens_milli >= 1000u) {
        known_node *best = NULL, *k, *tmp;
        HASH_ITER(hh, cl->known, k, tmp) {
            if (cl->now_ms < k->next_attempt_ms || cl->ops.busy(cl->ops.ctx, k->name))
                continue;
            int member = k->is_seed || k->was_up;
            int best_member = best != NULL && (best->is_seed || best->was_up);
            if (best == NULL || member > best_member ||
                (member == best_member && k->next_attempt_ms < best->next_attempt_ms))
                best = k;
        }
        if (best == NULL)
            return;
        take_dial(cl, best);
    }
}

static void forget_unlisted(rc_cluster *cl)
{
    uint64_t unlisted_ms = (uint64_t)UNLISTED_ROUNDS * cl->cfg.rediscover_ms;
    known_node *k, *tmp;
    HASH_ITER(hh, cl->known, k, tmp) {
        if (k->is_seed || cl->now_ms - k->listed_ms <= unlisted_ms ||
            cl->ops.busy(cl->ops.ctx, k->name))
            continue;
        /* Gone from every peer's list: it left the cluster. */
        LOG_I(cl->lg, MOD, "forgetting %s: not connected and no peer lists it", k->name);
        forget(cl, k);
    }
}

static void ask_one(const char *node, void *arg) { ask_nodes(arg, node); }

void rc_cluster_tick(rc_cluster *cl, uint64_t now_ms)
{
    if (cl->stopped)
        return;
    cl->now_ms = now_ms;
    forget_unlisted(cl);
    dial_due(cl);
    if (now_ms >= cl->next_discover_ms) {
        cl->next_discover_ms = now_ms + cl->cfg.rediscover_ms;
        cl->ops.foreach_connected(cl->ops.ctx, ask_one, cl);
    }
}

static void on_timer(uv_timer_t *t)
{
    rc_cluster *cl = t->data;
    rc_cluster_tick(cl, uv_now(cl->loop));
}

rc_cluster *rc_cluster_new(uv_loop_t *loop, const rc_logger *lg, const rc_cluster_ops *ops,
                           rc_procs *ps, const rc_cluster_config *cfg)
{
    if (ops->connect == NULL || ops->busy == NULL || ops->foreach_connected == NULL)
        return NULL;
    rc_cluster *cl = calloc(1, sizeof *cl);
    if (cl == NULL)
        return NULL;
    cl->loop = loop;
    cl->lg = lg;
    cl->ops = *ops;
    cl->ps = ps;
    cl->cfg = *cfg;
    if (cl->cfg.dials_per_s == 0)
        cl->cfg.dials_per_s = 20;
    if (cl->cfg.dial_burst == 0)
        cl->cfg.dial_burst = cl->cfg.dials_per_s;
    if (cl->cfg.quarantine_min_ms == 0)
        cl->cfg.quarantine_min_ms = 30000;
    cl->tokens_milli = (uint64_t)cl->cfg.dial_burst * 1000u;
    cl->self = rc_proc_spawn_registered(ps, on_message, cl, NULL, "reckon_cnode_cluster");
    if (cl->self == NULL) {
        free(cl);
        return NULL;
    }
    if (loop != NULL) {
        cl->now_ms = cl->refill_ms = uv_now(loop);
        cl->next_discover_ms = cl->now_ms + cl->cfg.rediscover_ms;
        uv_timer_init(loop, &cl->timer);
        cl->timer.data = cl;
        uv_timer_start(&cl->timer, on_timer, 0, TICK_MS);
        cl->has_timer = 1;
    } else {
        cl->next_discover_ms = cl->cfg.rediscover_ms;
    }
    return cl;
}

void rc_cluster_on_up(rc_cluster *cl, const char *node)
{
    aside_node *a = find_aside(cl, node);
    if (a != NULL)
        drop_aside(cl, a);
    known_node *k = learn(cl, node, 0);
    if (k != NULL) {
        /* the warning about its failures is answered at the same level */
        if (k->last_cause != 0)
            LOG_W(cl->lg, MOD, "connected to %s%s after %u failed attempt%s", node,
                  k->was_up ? " again" : "", k->failures, k->failures == 1 ? "" : "s");
        k->last_cause = 0;
        k->failures = 0;
        k->quarantine_ms = 0;
        k->was_up = 1;
        k->backoff_ms = cl->cfg.backoff_min_ms;
    }
    ask_nodes(cl, node);
}

void rc_cluster_on_down(rc_cluster *cl, const char *node)
{
    forget_question(cl, node);
    known_node *k = find_known(cl, node);
    if (k != NULL && !k->is_seed && !k->listed) {
        /* It only ever connected to us (an erl shell, a short-lived client):
         * do not dial it back; if it is a cluster member after all, a
         * peer's nodes() will name it again. */
        LOG_D(cl->lg, MOD, "forgetting %s: it connected to us and no peer lists it", k->name);
        forget(cl, k);
        return;
    }
    if (k != NULL && !cl->stopped) {
        k->backoff_ms = cl->cfg.backoff_min_ms;
        k->next_attempt_ms = cl->now_ms + k->backoff_ms;
    }
}

/* The kind of a connect failure, so that a line is said once per change. */
static int cause_of(const char *why)
{
    if (why == NULL)
        return 1;
    if (strstr(why, "cookie") != NULL)
        return 2;
    if (strstr(why, "epmd") != NULL)
        return 3;
    if (strstr(why, "TLS") != NULL)
        return 4;
    if (strncmp(why, "connect:", 8) == 0)
        return 5;
    return 6;
}

void rc_cluster_on_connect_failed(rc_cluster *cl, const char *node, const char *why)
{
    known_node *k = find_known(cl, node);
    if (k == NULL)
        return;
    int cause = cause_of(why);
    if ((k->is_seed || k->was_up) && cause != k->last_cause) {
        k->last_cause = cause;
        LOG_W(cl->lg, MOD, "cannot connect to %s%s: %s%s", node, k->is_seed ? " (a seed)" : "",
              why != NULL && why[0] != '\0' ? why : "no reason given",
              cause == 2 ? "; this node's cookie must be the cluster's" : "");
    }
    k->failures++;
    if (!k->is_seed && k->failures >= cl->cfg.forget_after) {
        set_aside(cl, k);
        return;
    }
    unsigned next = k->backoff_ms * 2;
    k->backoff_ms = next > cl->cfg.backoff_max_ms ? cl->cfg.backoff_max_ms : next;
    k->next_attempt_ms = cl->now_ms + k->backoff_ms;
}

void rc_cluster_stop(rc_cluster *cl)
{
    if (cl->stopped)
        return;
    cl->stopped = 1;
    if (cl->has_timer) {
        uv_timer_stop(&cl->timer);
        uv_close((uv_handle_t *)&cl->timer, NULL);
    }
}

void rc_cluster_free(rc_cluster *cl)
{
    if (cl == NULL)
        return;
    known_node *k, *kt;
    HASH_ITER(hh, cl->known, k, kt) {
        HASH_DEL(cl->known, k);
        free(k);
    }
    aside_node *a, *at;
    HASH_ITER(hh, cl->aside, a, at) {
        HASH_DEL(cl->aside, a);
        free(a);
    }
    asked_node *q, *qt;
    HASH_ITER(hh, cl->asked, q, qt) {
        HASH_DEL(cl->asked, q);
        free(q);
    }
    free(cl);
}
