#include "emitter/relay.h"

#include "codec/term_read.h"
#include "proc/gen_server.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>

#define MOD "relay"

/* A group longer than this is not kept for the log line (a topic is a
 * binary of any length). */
#define GROUP_CAP 256
/* Losses are caused by peers (a relay killed at will): a budget of lines. */
#define LOG_WINDOW_MS 10000u
#define LOG_LINES 5u

typedef struct route {
    uint32_t node;
    uint32_t used;  /* slot taken */
    uint32_t asked; /* a member of this node was seen in this fan-out */
    rc_cpid relay;
} route;

/* One relay this node has sent to: what it sent, and, once the relay is
 * gone, the question asked about it. */
typedef struct tracked {
    rc_cpid relay; /* key: four uint32_t, no padding */
    uint64_t sent;
    uint64_t asked_seq; /* 0: alive as far as known; else the order asked */
    erlang_ref mon;
    erlang_ref q;
    size_t glen; /* 0: no group kept */
    uint8_t group[GROUP_CAP];
    UT_hash_handle hh;
} tracked;

struct rc_relays {
    rc_pg_scope *scope;
    rc_procs *ps;
    rc_nodetab *nodes;
    rc_proc *self; /* the accounting process; NULL once it is gone */
    ei_x_buff key; /* canonical {'$reckon_cnode', relays, 2} */
    ei_x_buff head; /* version, {'$reckon_relay', Self, */
    route *slots;
    size_t cap; /* power of two, or 0 */
    int active; /* the last rc_relays_begin found relays */
    tracked *tab;
    size_t ntracked;
    uint64_t seq;
    rc_ratelimit log_rl;
    rc_relays_stats stats;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int log_allowed(rc_relays *r)
{
    unsigned left_out = 0;
    int ok = rc_ratelimit_allow(&r->log_rl, now_ms(), LOG_WINDOW_MS, LOG_LINES, &left_out);
    if (left_out > 0)
        LOG_W(rc_procs_logger(r->ps), MOD, "%u more relay accounting line(s) left out", left_out);
    return ok;
}

static void forget(rc_relays *r, tracked *t)
{
    HASH_DEL(r->tab, t);
    r->ntracked--;
    free(t);
}

/* "store S, topic \"T\"" of the group kept, or "" */
static const char *group_text(const tracked *t, char *out, size_t cap)
{
    out[0] = '\0';
    const char *b = (const char *)t->group;
    int len = (int)t->glen, idx = 0, arity = 0;
    const uint8_t *store, *topic;
    size_t slen, tlen;
    uint8_t scratch[2 * 256];
    if (len == 0 || ei_decode_tuple_header(b, &idx, &arity) != 0 || arity != 3 ||
        term_read_atom(b, len, &idx, &store, &slen, scratch, sizeof scratch) != 0 ||
        term_read_binary(b, len, &idx, &topic, &tlen) != 0)
        return out;
    char s[96], tp[128];
    snprintf(out, cap, "; the last of them for store %s, topic \"%s\"",
             rc_log_text(s, sizeof s, store, slen), rc_log_text(tp, sizeof tp, topic, tlen));
    return out;
}

/* The relay is gone and its node said it handled `handled` of our
 * messages (known), or could not say (!known). */
static void settle(rc_relays *r, tracked *t, int known, uint64_t handled, const char *why)
{
    erlang_pid pid;
    const char *node = rc_cpid_to_ei(r->nodes, &t->relay, &pid) == 0 ? pid.node : "?";
    char g[256];
    if (known) {
        /* More handled than sent cannot come from a sound relay; it is not
         * a loss either way. */
        uint64_t lost = t->sent > handled ? t->sent - handled : 0;
        r->stats.lost += lost;
        if (lost > 0 && log_allowed(r))
            LOG_W(rc_procs_logger(r->ps), MOD,
                  "the relay on %s died with %llu of the %llu event(s) this node sent it "
                  "unhandled (counted in relay_lost)%s",
                  node, (unsigned long long)lost, (unsigned long long)t->sent,
                  group_text(t, g, sizeof g));
    } else {
        r->stats.unaccounted += t->sent;
        if (t->sent > 0 && log_allowed(r))
            LOG_W(rc_procs_logger(r->ps), MOD,
                  "the relay on %s died and %s: how many of the %llu event(s) this node sent "
                  "it were handled is not known (counted in relay_unaccounted)%s",
                  node, why, (unsigned long long)t->sent, group_text(t, g, sizeof g));
    }
    forget(r, t);
}

/* The oldest question still unanswered gives way (its node may never
 * answer: gone for good, or unreachable). */
static int evict_oldest_asked(rc_relays *r)
{
    tracked *t, *tmp, *oldest = NULL;
    HASH_ITER(hh, r->tab, t, tmp) {
        if (t->asked_seq != 0 && (oldest == NULL || t->asked_seq < oldest->asked_seq))
            oldest = t;
    }
    if (oldest == NULL)
        return -1;
    settle(r, oldest, 0, 0, "its node did not answer in time");
    return 0;
}

static tracked *track(rc_relays *r, const rc_cpid *relay)
{
    if (r->ntracked >= RC_RELAYS_TRACKED && evict_oldest_asked(r) != 0) {
        if (log_allowed(r))
            LOG_W(rc_procs_logger(r->ps), MOD, "%d relays accounted already: events sent to "
                  "another one are not accounted if it dies", RC_RELAYS_TRACKED);
        return NULL;
    }
    erlang_pid pid;
    tracked *t = calloc(1, sizeof *t);
    if (t == NULL || rc_cpid_to_ei(r->nodes, relay, &pid) != 0 ||
        rc_proc_monitor(r->ps, r->self, &pid, NULL, NULL, &t->mon) != 0) {
        free(t);
        if (log_allowed(r))
            LOG_W(rc_procs_logger(r->ps), MOD, "a relay cannot be monitored (out of memory or "
                  "monitors): events sent to it are not accounted if it dies");
        return NULL;
    }
    t->relay = *relay;
    HASH_ADD(hh, r->tab, relay, sizeof t->relay, t);
    r->ntracked++;
    return t;
}

void rc_relays_sent(rc_relays *r, const rc_cpid *relay, const uint8_t *group, size_t glen)
{
    if (r->self == NULL)
        return;
    tracked *t = NULL;
    HASH_FIND(hh, r->tab, relay, sizeof *relay, t);
    if (t == NULL && (t = track(r, relay)) == NULL)
        return;
    t->sent++;
    size_t keep = glen <= sizeof t->group ? glen : 0;
    if (t->glen != keep || memcmp(t->group, group, keep) != 0) {
        memcpy(t->group, group, keep);
        t->glen = keep;
    }
}

/* reckon_cnode_relay:handled(Relay, Self) through the `rex` of the relay's
 * node: that server outlives the relay, and rex is on every node. */
static void ask(rc_relays *r, tracked *t)
{
    erlang_pid relay;
    ei_x_buff x;
    if (rc_cpid_to_ei(r->nodes, &t->relay, &relay) != 0 || ei_x_new(&x) != 0) {
        settle(r, t, 0, 0, "this node ran out of memory to ask");
        return;
    }
    erlang_pid mine, *me = &mine;
    rc_proc_get_pid(r->ps, r->self, &mine);
    rc_procs_make_ref(r->ps, &t->q);
    int rc = rc_gen_call_begin(&x, me, &t->q) || ei_x_encode_tuple_header(&x, 5) ||
             ei_x_encode_atom(&x, "call") || ei_x_encode_atom(&x, "reckon_cnode_relay") ||
             ei_x_encode_atom(&x, "handled") || ei_x_encode_list_header(&x, 2) ||
             ei_x_encode_pid(&x, &relay) || ei_x_encode_pid(&x, me) ||
             ei_x_encode_empty_list(&x) || ei_x_encode_pid(&x, me);
    if (rc == 0)
        rc = rc_proc_send_named(r->ps, r->self, "rex", relay.node, x.buff, x.index);
    ei_x_free(&x);
    if (rc != 0) {
        settle(r, t, 0, 0, "its node could not be asked");
        return;
    }
    t->asked_seq = ++r->seq;
}

static void on_down(rc_relays *r, const rc_signal *sig)
{
    if (sig->ref == NULL)
        return;
    tracked *t, *tmp;
    HASH_ITER(hh, r->tab, t, tmp) {
        if (t->asked_seq == 0 && rc_ref_equal(&t->mon, sig->ref))
            break;
    }
    if (t == NULL)
        return;
    int idx = 0;
    char reason[MAXATOMLEN];
    if (sig->buf != NULL && ei_decode_atom(sig->buf, &idx, reason) == 0 &&
        strcmp(reason, "noconnection") == 0) {
        /* Its node went, or the connection did: the relay may live on and
         * deliver its mailbox; what was lost in flight is the connection's
         * loss, not the relay's. */
        LOG_I(rc_procs_logger(r->ps), MOD, "lost the connection to a relay after %llu "
              "event(s) sent to it; not accounted as relay-lost",
              (unsigned long long)t->sent);
        forget(r, t);
        return;
    }
    ask(r, t);
}

/* {Ref, Handled}: rex's reply, read only from the relay's own node. */
static void on_answer(rc_relays *r, const rc_signal *sig)
{
    int idx = 0, v = 0, arity = 0;
    erlang_ref ref;
    if (sig->peer == NULL || ei_decode_version(sig->buf, &idx, &v) != 0 ||
        ei_decode_tuple_header(sig->buf, &idx, &arity) != 0 || arity != 2 ||
        ei_decode_ref(sig->buf, &idx, &ref) != 0)
        return;
    tracked *t, *tmp;
    HASH_ITER(hh, r->tab, t, tmp) {
        if (t->asked_seq != 0 && rc_ref_equal(&t->q, &ref))
            break;
    }
    erlang_pid relay;
    if (t == NULL || rc_cpid_to_ei(r->nodes, &t->relay, &relay) != 0 ||
        strcmp(relay.node, sig->peer) != 0)
        return;
    int64_t handled = 0;
    int fits = 0;
    char dec[32];
    if (term_read_integer(sig->buf, sig->len, &idx, &handled, &fits, dec, sizeof dec) == 0 &&
        fits && handled >= 0)
        settle(r, t, 1, (uint64_t)handled, NULL);
    else
        settle(r, t, 0, 0, "its node no longer knows it (restarted?)");
}

static void relays_signal(rc_procs *ps, rc_proc *self, const rc_signal *sig)
{
    (void)ps;
    rc_relays *r = rc_proc_ctx(self);
    if (sig->kind == RC_SIG_DOWN)
        on_down(r, sig);
    else if (sig->kind == RC_SIG_MSG)
        on_answer(r, sig);
}

static void relays_proc_gone(void *ctx)
{
    rc_relays *r = ctx;
    r->self = NULL;
}

const uint8_t *rc_relays_head(const rc_relays *r, size_t *len)
{
    if (r->self == NULL || r->head.index <= 0)
        return NULL;
    *len = (size_t)r->head.index;
    return (const uint8_t *)r->head.buff;
}

const rc_relays_stats *rc_relays_get_stats(const rc_relays *r) { return &r->stats; }

rc_relays *rc_relays_new(rc_pg_scope *scope, rc_procs *ps, rc_nodetab *nodes)
{
    rc_relays *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->scope = scope;
    r->ps = ps;
    r->nodes = nodes;
    ei_x_buff g;
    if (ei_x_new(&g) != 0) {
        free(r);
        return NULL;
    }
    int rc = ei_x_encode_tuple_header(&g, 3) || ei_x_encode_atom(&g, "$reckon_cnode") ||
             ei_x_encode_atom(&g, "relays") || ei_x_encode_long(&g, 2) ||
             ei_x_new(&r->key) || rc_pg_group_key(g.buff, g.index, &r->key);
    ei_x_free(&g);
    if (rc == 0)
        rc = ei_x_new_with_version(&r->head);
    if (rc != 0) {
        ei_x_free(&r->key);
        free(r);
        return NULL;
    }
    if (ps != NULL) {
        /* Without the process no relay is used: its pid is in every relay
         * message, so that relays count per sender and incarnation. */
        r->self = rc_proc_spawn(ps, relays_signal, r, relays_proc_gone);
        rc_cpid me;
        if (r->self != NULL)
            me = rc_proc_cpid(ps, r->self);
        if (r->self == NULL || ei_x_encode_tuple_header(&r->head, 4) ||
            ei_x_encode_atom(&r->head, "$reckon_relay") || rc_cpid_write(nodes, &r->head, &me))
            r->head.index = 0;
    }
    return r;
}

void rc_relays_free(rc_relays *r)
{
    if (r == NULL)
        return;
    tracked *t, *tmp;
    HASH_ITER(hh, r->tab, t, tmp) {
        HASH_DEL(r->tab, t);
        free(t);
    }
    ei_x_free(&r->key);
    ei_x_free(&r->head);
    free(r->slots);
    free(r);
}
static size_t slot_of(const rc_relays *r, uint32_t node)
{
    return (size_t)(node * 2654435761u) & (r->cap - 1);
}

/* Of two relays on one node, the same one every time (the lowest pid), so
 * that one subscriber's events keep one path and their order. */
static int pid_less(const rc_cpid *a, const rc_cpid *b)
{
    if (a->creation != b->creation)
        return a->creation < b->creation;
    if (a->serial != b->serial)
        return a->serial < b->serial;
    return a->num < b->num;
}

int rc_relays_begin(rc_relays *r)
{
    size_t n = 0, hlen = 0;
    r->active = 0;
    if (rc_relays_head(r, &hlen) == NULL)
        return 0;
    const rc_cpid *m = rc_pg_members(r->scope, (const uint8_t *)r->key.buff,
                                     (size_t)r->key.index, &n);
    if (n == 0)
        return 0;
    size_t want = 8;
    while (want < n * 2)
        want *= 2;
    if (want > r->cap) {
        route *s = realloc(r->slots, want * sizeof *s);
        if (s == NULL)
            return -1;
        r->slots = s;
        r->cap = want;
    }
    memset(r->slots, 0, r->cap * sizeof *r->slots);
    size_t relays = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = slot_of(r, m[i].node);
        while (r->slots[k].used && r->slots[k].node != m[i].node)
            k = (k + 1) & (r->cap - 1);
        route *s = &r->slots[k];
        if (!s->used) {
            s->used = 1;
            s->node = m[i].node;
            s->relay = m[i];
            relays++;
        } else if (pid_less(&m[i], &s->relay)) {
            s->relay = m[i];
        }
    }
    r->active = 1;
    return (int)(relays > (size_t)INT32_MAX ? INT32_MAX : relays);
}

const rc_cpid *rc_relays_route(rc_relays *r, uint32_t node, int *first)
{
    *first = 0;
    if (!r->active)
        return NULL;
    size_t k = slot_of(r, node);
    while (r->slots[k].used) {
        if (r->slots[k].node == node) {
            *first = !r->slots[k].asked;
            r->slots[k].asked = 1;
            return &r->slots[k].relay;
        }
        k = (k + 1) & (r->cap - 1);
    }
    return NULL;
}
