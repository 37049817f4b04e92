#include "emitter/emitter_pool.h"

#include "codec/term_read.h"
#include "emitter/relay.h"
#include "naming/group_key.h"
#include "proc/gen_server.h"
#include "codec/pmsg.h"

#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include "util/hash.h"
#include "util/ptrtab.h"

#define MOD "emitter"

typedef struct pool pool;

/* An emitter and its pool are what a subscription costs the node (reckon-db
 * runs thousands, most with one emitter): pids and references are compact,
 * flags are bits, and what only the subscriber-less path needs is made on
 * its first use. */
typedef struct emitter {
    rc_emitters *owner;
    pool *pool;
    rc_cpid subscriber;
    rc_cref sub_mon; /* compact: libei's reference is 1 KB */
    unsigned has_subscriber : 1;
    /* Delivers to a subscriber pid (given at start or by update_subscriber)
     * rather than to the subscribers group; once that pid is gone the
     * emitter has left its group and drops what still reaches it. */
    unsigned bound : 1;
    unsigned joined : 1; /* a member of {Store, Sub, emitters} */
    unsigned node_gone : 1; /* the subscriber went with its node (noconnection) */
    unsigned monitoring : 1;
    /* {Store, Topic, subscribers} for the last topic seen, canonical; its
     * buffer is made at the first broadcast without a subscriber. */
    uint8_t *topic;
    size_t topic_len;
    ei_x_buff subs_key;
} emitter;

struct pool {
    rc_cpid *pids; /* its emitters: `one` for a pool of one, else allocated */
    rc_cpid one;
    uint32_t n;
    uint16_t store_len;
    unsigned starting : 1; /* its names are being written: no emitters yet */
    unsigned detach_logged : 1;
    size_t sub_len;
    size_t joined;  /* emitters in the group */
    uint64_t events_in, delivered, no_subscriber, node_gone; /* its account */
    uint8_t key[]; /* pool_key(): store length, store bytes, sub bytes */
};

struct rc_emitters {
    rc_procs *ps;
    rc_pg_scope *scope;
    rc_nodetab *nodes;
    names_table *names;
    names_persist *persist;
    rc_relays *relays;
    rc_ptrtab pools; /* by key, starting ones included */
    size_t starting;
    size_t detached; /* running pools with no emitter in the group */
    int stopped;
    rc_emitters_stats stats;
    /* one event's message, reused from event to event (see fan_out) */
    rc_pmsg msg;
    int msg_busy;
};

/* 131, {events, [ ... then the event ... then ]} */
static const uint8_t EVENTS_HEAD[] = {131, 104, 2, 119, 6, 'e', 'v', 'e', 'n', 't', 's',
                                      108, 0, 0, 0, 1};
static const uint8_t EVENTS_TAIL[] = {106};
/* EVENTS_HEAD cut where its kinds change: version and tuple head, the
 * atom, the list head; then the event, a whole term, and the tail. */
#define EVENTS_ATOM_AT 3
#define EVENTS_ATOM_END 11
_Static_assert(sizeof EVENTS_HEAD == EVENTS_ATOM_END + 5,
               "EVENTS_HEAD cut at the wrong places");
static const uint8_t EVENTS_KINDS[5] = {PMSG_PART_PLAIN, PMSG_PART_TERM, PMSG_PART_PLAIN,
                                        PMSG_PART_TERM, PMSG_PART_PLAIN};

rc_emitters *rc_emitters_new(rc_procs *ps, rc_pg_scope *scope, rc_nodetab *nodes,
                             names_table *names, names_persist *persist)
{
    rc_emitters *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->ps = ps;
    e->scope = scope;
    e->nodes = nodes;
    e->names = names;
    e->persist = persist;
    e->relays = rc_relays_new(scope, ps, nodes);
    if (e->relays == NULL) {
        free(e);
        return NULL;
    }
    pmsg_init(&e->msg);
    return e;
}

static void pool_stop(rc_emitters *e, pool *p);

static void pool_free(pool *p)
{
    if (p->pids != &p->one)
        free(p->pids);
    free(p);
}

/* A pool of the key (klen bytes), not in the table yet. */
static pool *pool_new(const uint8_t *key, size_t klen, size_t store_len, size_t sub_len)
{
    pool *p = calloc(1, sizeof *p + klen);
    if (p == NULL)
        return NULL;
    memcpy(p->key, key, klen);
    p->store_len = (uint16_t)store_len;
    p->sub_len = sub_len;
    return p;
}

void rc_emitters_free(rc_emitters *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < rc_ptrtab_slots(&e->pools); i++)
        if (rc_ptrtab_at(&e->pools, i) != NULL)
            pool_free(rc_ptrtab_at(&e->pools, i));
    rc_ptrtab_free(&e->pools);
    rc_relays_free(e->relays);
    pmsg_free(&e->msg);
    free(e);
}

size_t rc_emitters_pool_count(const rc_emitters *e)
{
    return rc_ptrtab_count(&e->pools) - e->starting;
}
size_t rc_emitters_detached_count(const rc_emitters *e) { return e->detached; }
const rc_emitters_stats *rc_emitters_get_stats(const rc_emitters *e) { return &e->stats; }
const rc_relays_stats *rc_emitters_relay_stats(const rc_emitters *e)
{
    return rc_relays_get_stats(e->relays);
}

static void emitter_free(void *ctx)
{
    emitter *em = ctx;
    free(em->topic);
    ei_x_free(&em->subs_key);
    free(em);
}

/* Canonical {Store, Topic, subscribers}, cached per topic. */
static int subscribers_key(emitter *em, const uint8_t *topic, size_t tlen)
{
    if (em->topic != NULL && em->topic_len == tlen && memcmp(em->topic, topic, tlen) == 0)
        return 0;
    if (em->subs_key.buff == NULL && ei_x_new(&em->subs_key) != 0)
        return -1;
    ei_x_buff g;
    if (ei_x_new(&g) != 0)
        return -1;
    int rc = ei_x_encode_tuple_header(&g, 3) ||
             term_write_atom_utf8(&g, em->pool->key + 2, em->pool->store_len) ||
             ei_x_encode_binary(&g, topic, (long)tlen) || ei_x_encode_atom(&g, "subscribers") ||
             rc_pg_group_key(g.buff, g.index, &em->subs_key);
    ei_x_free(&g);
    uint8_t *copy = rc ? NULL : malloc(tlen ? tlen : 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, topic, tlen);
    free(em->topic);
    em->topic = copy;
    em->topic_len = tlen;
    return 0;
}

/* One delivery (or one subscriber's share of a relayed event), for the node
 * and the pool. */
static void count_delivery(emitter *em)
{
    em->owner->stats.events_out++;
    em->pool->delivered++;
}

static void send_events(emitter *em, rc_proc *self, const rc_cpid *to, rc_pmsg *m)
{
    if (rc_proc_send_msg(em->owner->ps, self, to, m) == 0) {
        count_delivery(em);
    }
}

/* "store S, subscription \"Sub\"" for log lines, the bytes made printable. */
#define POOL_NAME_CAP 160
static const char *pool_name(const pool *p, char *out)
{
    char store[POOL_NAME_CAP / 2 - 24], sub[POOL_NAME_CAP / 2];
    rc_log_text(store, sizeof store, p->key + 2, p->store_len);
    rc_log_text(sub, sizeof sub, p->key + 2 + p->store_len, p->sub_len);
    snprintf(out, POOL_NAME_CAP, "store %s, subscription \"%s\"", store, sub);
    return out;
}

/* An event that reached an emitter with nobody to give it to: counted for
 * the node and the pool under its cause, and logged at the 1st, 2nd, 4th,
 * 8th... drop of the pool for that cause, so a steady loss stays visible
 * at a bounded cost. */
static void drop_event(emitter *em, const char *why)
{
    rc_emitters *e = em->owner;
    int gone = em->bound && em->node_gone;
    uint64_t n = gone ? ++em->pool->node_gone : ++em->pool->no_subscriber;
    if (gone)
        e->stats.subscriber_node_gone++;
    else
        e->stats.no_subscriber++;
    if ((n & (n - 1)) == 0) {
        char name[POOL_NAME_CAP];
        LOG_W(rc_procs_logger(e->ps), MOD,
              "emitter pool of %s: %llu event(s) dropped so far, %s (counted in %s)",
              pool_name(em->pool, name), (unsigned long long)n,
              gone ? "its subscriber's node is gone" : why,
              gone ? "subscriber_node_gone" : "no_subscriber");
    }
}

/* One emitter joins or leaves its pool's group, {Store, Sub, emitters}. */
static int group_op(emitter *em, rc_proc *self, int join)
{
    rc_emitters *e = em->owner;
    const pool *p = em->pool;
    rc_cpid me = rc_proc_cpid(e->ps, self);
    ei_x_buff g;
    if (ei_x_new(&g) != 0)
        return RC_ENOMEM;
    int rc = group_key_encode(&g, p->key + 2, p->store_len, p->key + 2 + p->store_len,
                              p->sub_len) != 0 ||
                     (join ? rc_pg_join : rc_pg_leave)(e->scope, g.buff, g.index, &me, 1) != 0
                 ? RC_ENOMEM
                 : RC_OK;
    ei_x_free(&g);
    return rc;
}

/* The subscriber of a bound emitter is gone (with its node when
 * node_gone): the emitter leaves the group so that broadcasts (reckon-db's
 * own, from every node's pg view) stop picking it; the pool says so once. */
static void subscriber_gone(emitter *em, rc_proc *self, int node_gone)
{
    rc_emitters *e = em->owner;
    pool *p = em->pool;
    em->has_subscriber = 0;
    em->monitoring = 0;
    em->node_gone = node_gone;
    if (!em->bound || !em->joined)
        return;
    char name[POOL_NAME_CAP];
    if (group_op(em, self, 0) != RC_OK) {
        LOG_W(rc_procs_logger(e->ps), MOD, "emitter pool of %s: out of memory, an emitter whose "
              "subscriber is gone stays in the group (its events are counted in no_subscriber)",
              pool_name(p, name));
        return;
    }
    em->joined = 0;
    if (--p->joined == 0)
        e->detached++;
    if (!p->detach_logged) {
        p->detach_logged = 1;
        e->stats.pools_detached++;
        LOG_W(rc_procs_logger(e->ps), MOD, "emitter pool of %s: its subscriber is gone%s; the "
              "pool leaves the emitters group and takes no more events (start it again with the "
              "new subscriber, or stop it)", pool_name(p, name),
              node_gone ? " with its node" : "");
    }
}

/* {'$reckon_relay', Sender, {S, Topic, subscribers}, {events, [Event]}} */
static void send_to_relay(rc_emitters *e, rc_proc *self, const rc_cpid *relay, const emitter *em,
                          const char *event, int len)
{
    size_t hlen = 0;
    const uint8_t *head = rc_relays_head(e->relays, &hlen);
    erlang_pid to;
    if (head == NULL || rc_cpid_to_ei(e->nodes, relay, &to) != 0)
        return;
    struct iovec parts[5] = {
        {.iov_base = (void *)head, .iov_len = hlen},
        {.iov_base = em->subs_key.buff, .iov_len = (size_t)em->subs_key.index},
        {.iov_base = (void *)(EVENTS_HEAD + 1), .iov_len = sizeof EVENTS_HEAD - 1},
        {.iov_base = (void *)event, .iov_len = (size_t)len},
        {.iov_base = (void *)EVENTS_TAIL, .iov_len = sizeof EVENTS_TAIL}};
    if (rc_proc_send_parts(e->ps, self, &to, parts, 5) == 0) {
        e->stats.relay_sends++;
        rc_relays_sent(e->relays, relay, (const uint8_t *)em->subs_key.buff,
                       (size_t)em->subs_key.index);
    }
}

static void fan_out_msg(emitter *em, rc_proc *self, const uint8_t *topic, size_t tlen,
                        const char *event, int elen, rc_pmsg *msg);

/* {events, [Event]}, one message for every subscriber of this event: on a
 * connection with distribution headers it is encoded once, not per copy. */
static void fan_out(emitter *em, rc_proc *self, const uint8_t *topic, size_t tlen,
                    const char *event, int elen)
{
    rc_emitters *e = em->owner;
    struct iovec parts[5] = {
        {.iov_base = (void *)EVENTS_HEAD, .iov_len = EVENTS_ATOM_AT},
        {.iov_base = (void *)(EVENTS_HEAD + EVENTS_ATOM_AT),
         .iov_len = EVENTS_ATOM_END - EVENTS_ATOM_AT},
        {.iov_base = (void *)(EVENTS_HEAD + EVENTS_ATOM_END),
         .iov_len = sizeof EVENTS_HEAD - EVENTS_ATOM_END},
        {.iov_base = (void *)event, .iov_len = (size_t)elen},
        {.iov_base = (void *)EVENTS_TAIL, .iov_len = sizeof EVENTS_TAIL}};
    /* A local subscriber's handler runs during a send and may make an
     * emitter fan out in turn: that one gets a message of its own. */
    rc_pmsg own, *m = e->msg_busy ? &own : &e->msg;
    if (m == &own)
        pmsg_init(&own);
    pmsg_set(m, parts, EVENTS_KINDS, 5);
    m->fixed = 3; /* {events, [ : the same for every event */
    e->msg_busy++;
    fan_out_msg(em, self, topic, tlen, event, elen, m);
    e->msg_busy--;
    if (m == &own)
        pmsg_free(&own);
}

static void fan_out_msg(emitter *em, rc_proc *self, const uint8_t *topic, size_t tlen,
                        const char *event, int elen, rc_pmsg *msg)
{
    rc_emitters *e = em->owner;
    if (em->has_subscriber) {
        send_events(em, self, &em->subscriber, msg);
        return;
    }
    if (em->bound) {
        drop_event(em, "its subscriber is gone");
        return;
    }
    if (subscribers_key(em, topic, tlen) != 0) {
        drop_event(em, "out of memory");
        return;
    }
    size_t n = 0;
    const rc_cpid *m = rc_pg_members(e->scope, (const uint8_t *)em->subs_key.buff,
                                     (size_t)em->subs_key.index, &n);
    if (n == 0) {
        drop_event(em, "its subscribers group is empty");
        return;
    }
    /* One message per node that runs a relay, one per member elsewhere. A
     * node with a relay gets even a lone subscriber's events through it:
     * leaving the relay for direct sends while relayed events still wait
     * in its mailbox would reorder them. */
    int relays = rc_relays_begin(e->relays);
    for (size_t i = 0; i < n; i++) {
        int first = 0;
        const rc_cpid *relay = relays > 0 ? rc_relays_route(e->relays, m[i].node, &first) : NULL;
        if (relay != NULL) {
            if (first)
                send_to_relay(e, self, relay, em, event, elen);
            count_delivery(em);
            continue;
        }
        send_events(em, self, &m[i], msg);
    }
}

static void demonitor_subscriber(emitter *em, rc_proc *self)
{
    erlang_ref ref;
    if (rc_cref_to_ei(em->owner->nodes, &em->sub_mon, &ref) == 0)
        rc_proc_demonitor(em->owner->ps, self, &ref);
}

static void set_subscriber(emitter *em, rc_proc *self, const erlang_pid *pid)
{
    rc_procs *ps = em->owner->ps;
    if (em->monitoring)
        demonitor_subscriber(em, self);
    em->has_subscriber = rc_cpid_from_ei(em->owner->nodes, pid, &em->subscriber) == 0;
    em->bound = 1;
    em->node_gone = 0;
    if (!em->has_subscriber) {
        em->monitoring = 0;
        LOG_W(rc_procs_logger(ps), MOD, "out of memory: an emitter keeps no subscriber");
        return;
    }
    /* Monitored, not linked: its exit clears it (a C process of this node
     * included), and stopping the pool (or losing the node) never takes the
     * subscriber down with the emitters. */
    erlang_ref ref;
    em->monitoring = 0;
    if (rc_proc_monitor(ps, self, pid, NULL, NULL, &ref) == 0) {
        if (rc_cref_from_ei(em->owner->nodes, &ref, &em->sub_mon) == 0)
            em->monitoring = 1;
        else
            rc_proc_demonitor(ps, self, &ref);
    }
    LOG_D(rc_procs_logger(ps), MOD, "an emitter's subscriber is now a process on %s%s",
          pid->node, em->monitoring ? "" : " (not monitored)");
}

static int is_subscriber(const emitter *em, const erlang_pid *p)
{
    return em->has_subscriber && p != NULL && p->num == em->subscriber.num &&
           p->serial == em->subscriber.serial && p->creation == em->subscriber.creation &&
           rc_nodetab_find(em->owner->nodes, p->node, strlen(p->node)) == em->subscriber.node;
}

/* The reason of a DOWN or EXIT is noconnection: the process went with the
 * connection to its node. */
static int is_noconnection(const rc_signal *sig)
{
    char atom[MAXATOMLEN_UTF8];
    int idx = 0;
    return sig->buf != NULL && ei_decode_atom(sig->buf, &idx, atom) == 0 && idx == sig->len &&
           strcmp(atom, "noconnection") == 0;
}

static void emitter_signal(rc_procs *ps, rc_proc *self, const rc_signal *sig)
{
    (void)ps;
    emitter *em = rc_proc_ctx(self);
    if (sig->kind == RC_SIG_DOWN) {
        if (em->monitoring && sig->ref != NULL &&
            rc_cref_matches(em->owner->nodes, &em->sub_mon, sig->ref))
            subscriber_gone(em, self, is_noconnection(sig));
        return;
    }
    if (sig->kind == RC_SIG_EXIT) { /* a subscriber that linked to us */
        if (is_subscriber(em, sig->from)) {
            if (em->monitoring)
                demonitor_subscriber(em, self);
            subscriber_gone(em, self, is_noconnection(sig));
        }
        return;
    }
    if (sig->kind != RC_SIG_MSG)
        return;
    const char *buf = sig->buf;
    int len = sig->len, idx = 0, v = 0, arity = 0;
    char tag[MAXATOMLEN];
    if (ei_decode_version(buf, &idx, &v) || ei_decode_tuple_header(buf, &idx, &arity) ||
        arity < 2 || ei_decode_atom(buf, &idx, tag))
        return;
    if (arity == 3 && (strcmp(tag, "broadcast") == 0 || strcmp(tag, "forward_to_local") == 0)) {
        const uint8_t *topic;
        size_t tlen;
        if (term_read_binary(buf, len, &idx, &topic, &tlen) != 0)
            return;
        int ev = idx;
        if (term_skip(buf, len, &idx) != 0)
            return;
        em->owner->stats.events_in++;
        em->pool->events_in++;
        fan_out(em, self, topic, tlen, buf + ev, idx - ev);
    } else if (arity == 2 && strcmp(tag, "events") == 0) {
        em->owner->stats.events_in++;
        em->pool->events_in++;
        erlang_pid to;
        if (!em->has_subscriber) {
            drop_event(em, "it has no subscriber for {events, Events}");
        } else if (rc_cpid_to_ei(em->owner->nodes, &em->subscriber, &to) == 0 &&
                   rc_proc_send(em->owner->ps, self, &to, buf, len) == 0) {
            count_delivery(em);
        }
    } else if (arity == 2 && strcmp(tag, "$gen_cast") == 0) {
        int a2 = 0;
        char t2[MAXATOMLEN];
        erlang_pid pid;
        if (ei_decode_tuple_header(buf, &idx, &a2) == 0 && a2 == 2 &&
            ei_decode_atom(buf, &idx, t2) == 0 && strcmp(t2, "update_subscriber") == 0 &&
            ei_decode_pid(buf, &idx, &pid) == 0) {
            set_subscriber(em, self, &pid);
            if (em->has_subscriber && !em->joined && group_op(em, self, 1) == RC_OK) {
                /* back in the group: a later loss is news again */
                em->joined = 1;
                if (em->pool->joined++ == 0)
                    em->owner->detached--;
                em->pool->detach_logged = 0;
            }
        }
    }
}

/* Key: store length (2 bytes), store bytes, sub bytes: unambiguous, so
 * ('ab', <<"c">>) and ('a', <<"bc">>) are different pools. */
static size_t pool_key(const uint8_t *store, size_t store_len, const uint8_t *sub, size_t sub_len,
                       uint8_t *keybuf)
{
    keybuf[0] = (uint8_t)(store_len >> 8);
    keybuf[1] = (uint8_t)store_len;
    memcpy(keybuf + 2, store, store_len);
    memcpy(keybuf + 2 + store_len, sub, sub_len);
    return 2 + store_len + sub_len;
}

typedef struct key_ref {
    const uint8_t *b;
    size_t n;
} key_ref;

static uint32_t key_hash(const uint8_t *key, size_t klen)
{
    uint64_t h = rc_hash_bytes(RC_HASH_SEED, key, klen);
    return (uint32_t)(h ^ (h >> 32));
}

static int pool_has_key(const void *entry, const void *key)
{
    const pool *p = entry;
    const key_ref *k = key;
    return k->n == 2 + (size_t)p->store_len + p->sub_len && memcmp(p->key, k->b, k->n) == 0;
}

static uint32_t pool_hash(const pool *p)
{
    return key_hash(p->key, 2 + (size_t)p->store_len + p->sub_len);
}

static pool *find_pool(rc_emitters *e, const uint8_t *store, size_t store_len, const uint8_t *sub,
                       size_t sub_len, uint8_t *keybuf, size_t *klen)
{
    *klen = pool_key(store, store_len, sub, sub_len, keybuf);
    const key_ref k = {.b = keybuf, .n = *klen};
    return rc_ptrtab_find(&e->pools, key_hash(keybuf, *klen), pool_has_key, &k);
}

/* Spawns, registers and joins the emitters of p (key set, no emitters yet)
 * under the names in enc, then reports to done. On success p goes into the
 * table of pools; otherwise nothing of it is left. */
static void launch(rc_emitters *e, pool *p, const uint8_t *enc, size_t enc_len,
                   int64_t pool_size, const erlang_pid *subscriber, rc_emitters_started_fn done,
                   void *ctx)
{
    const uint8_t *store = p->key + 2, *sub = p->key + 2 + p->store_len;
    /* Names must be free and registrable (C strings: no NUL inside). */
    int idx = 0, count = 0;
    const char *list = (const char *)enc;
    int rc = ei_decode_list_header(list, &idx, &count) != 0 || count != pool_size
                 ? RC_ENOMEM
                 : RC_OK;
    char (*names)[MAXATOMLEN_UTF8] = rc == RC_OK ? calloc((size_t)count, sizeof *names) : NULL;
    if (rc == RC_OK && names == NULL)
        rc = RC_ENOMEM;
    for (int i = 0; i < count && rc == RC_OK; i++) {
        const uint8_t *a;
        size_t alen;
        uint8_t scratch[2 * 256];
        if (term_read_atom(list, (int)enc_len, &idx, &a, &alen, scratch, sizeof scratch) != 0 ||
            alen >= MAXATOMLEN_UTF8 || memchr(a, 0, alen) != NULL) {
            rc = RC_EBADARG;
            break;
        }
        memcpy(names[i], a, alen);
        names[i][alen] = '\0';
        if (rc_procs_whereis(e->ps, names[i]) != NULL)
            rc = RC_EEXISTS;
    }
    p->pids = rc != RC_OK ? NULL : count == 1 ? &p->one : calloc((size_t)count, sizeof *p->pids);
    if (rc == RC_OK && p->pids == NULL)
        rc = RC_ENOMEM;
    rc_proc **procs = rc == RC_OK ? calloc((size_t)count, sizeof *procs) : NULL;
    if (rc == RC_OK && procs == NULL)
        rc = RC_ENOMEM;
    /* The outcome, for the start's caller only, in copies: done may stop
     * the pool (and free p->pids) before it has read them. */
    erlang_pid *eipids = rc == RC_OK ? calloc((size_t)count, sizeof *eipids) : NULL;
    rc_cpid *cpids = rc == RC_OK ? calloc((size_t)count, sizeof *cpids) : NULL;
    if (rc == RC_OK && (eipids == NULL || cpids == NULL))
        rc = RC_ENOMEM;
    int made = 0;
    for (; rc == RC_OK && made < count; made++) {
        emitter *em = calloc(1, sizeof *em);
        if (em == NULL) {
            rc = RC_ENOMEM;
            break;
        }
        em->owner = e;
        em->pool = p;
        procs[made] = rc_proc_spawn(e->ps, emitter_signal, em, emitter_free);
        if (procs[made] == NULL) {
            emitter_free(em);
            rc = RC_ENOMEM;
            break;
        }
        (void)rc_proc_register(e->ps, procs[made], names[made]);
        rc_proc_get_pid(e->ps, procs[made], &eipids[made]);
        p->pids[made] = rc_proc_cpid(e->ps, procs[made]);
        cpids[made] = p->pids[made];
        if (subscriber != NULL)
            set_subscriber(em, procs[made], subscriber);
    }
    if (rc == RC_OK)
        rc = rc_ptrtab_add(&e->pools, pool_hash(p), p);
    if (rc == RC_OK) {
        ei_x_buff g;
        rc = ei_x_new(&g) != 0 ? RC_ENOMEM : RC_OK;
        if (rc == RC_OK) {
            if (group_key_encode(&g, store, p->store_len, sub, p->sub_len) ||
                rc_pg_join(e->scope, g.buff, g.index, p->pids, (size_t)count) != 0)
                rc = RC_ENOMEM;
            ei_x_free(&g);
        }
        if (rc != RC_OK)
            rc_ptrtab_remove(&e->pools, pool_hash(p), p);
        for (int i = 0; rc == RC_OK && i < count; i++)
            ((emitter *)rc_proc_ctx(procs[i]))->joined = 1;
    }
    free(names);
    if (rc != RC_OK) {
        for (int i = 0; i < made; i++)
            if (procs[i] != NULL)
                rc_proc_exit(e->ps, procs[i], "shutdown");
        free(procs);
        pool_free(p);
        free(eipids);
        free(cpids);
        done(ctx, rc, NULL, NULL, NULL, 0);
        return;
    }
    free(procs);
    p->n = (size_t)count;
    p->joined = (size_t)count;
    /* p may be stopped from inside done: nothing of it is used after. */
    done(ctx, RC_OK, NULL, eipids, cpids, (size_t)count);
    free(eipids);
    free(cpids);
}

/* A start waiting for its names to be on disk. */
typedef struct start_req {
    rc_emitters *e;
    pool *p; /* in the table of pools, marked starting */
    int64_t pool_size;
    int has_subscriber;
    rc_cpid subscriber; /* compact: many starts may wait at once */
    rc_emitters_started_fn done;
    void *ctx;
} start_req;

static void names_written(void *ctx, int rc, const char *cause, const uint8_t *enc,
                          size_t enc_len)
{
    start_req *r = ctx;
    rc_emitters *e = r->e;
    pool *p = r->p;
    rc_ptrtab_remove(&e->pools, pool_hash(p), p);
    e->starting--;
    p->starting = 0;
    if (rc != RC_OK || e->stopped) {
        pool_free(p);
        r->done(r->ctx, rc != RC_OK ? rc : RC_ESTOPPED, cause, NULL, NULL, 0);
    } else {
        erlang_pid sub;
        int has = r->has_subscriber && rc_cpid_to_ei(e->nodes, &r->subscriber, &sub) == 0;
        launch(e, p, enc, enc_len, r->pool_size, has ? &sub : NULL, r->done, r->ctx);
    }
    free(r);
}

int rc_emitters_start_pool(rc_emitters *e, const uint8_t *store, size_t store_len,
                           const uint8_t *sub, size_t sub_len, int64_t pool_size,
                           const erlang_pid *subscriber, rc_emitters_started_fn done, void *ctx)
{
    if (pool_size < 1 || pool_size > NAMES_TABLE_MAX_POOL)
        return RC_EBADARG;
    if (store_len > 0xffff)
        return RC_EBADARG;
    if (e->stopped)
        return RC_ESTOPPED;
    uint8_t *key = malloc(store_len + sub_len + 2);
    size_t klen = 0;
    if (key == NULL)
        return RC_ENOMEM;
    pool *old = find_pool(e, store, store_len, sub, sub_len, key, &klen);
    if (old != NULL && (old->starting || old->joined > 0)) {
        free(key);
        return RC_EEXISTS;
    }
    if (old != NULL) {
        /* Every emitter left when the subscriber went: reckon-db restarts a
         * subscription with a new subscriber, and so may its C pool. */
        char name[POOL_NAME_CAP];
        LOG_I(rc_procs_logger(e->ps), MOD, "emitter pool of %s: replacing the pool whose "
              "subscriber is gone", pool_name(old, name));
        pool_stop(e, old);
    }
    pool *p = pool_new(key, klen, store_len, sub_len);
    free(key);
    if (p == NULL)
        return RC_ENOMEM;
    if (e->persist == NULL) {
        const uint8_t *enc;
        size_t enc_len;
        int st = names_table_persist(e->names, store, store_len, sub, sub_len,
                                               pool_size, &enc, &enc_len);
        if (st != RC_OK) {
            pool_free(p);
            return (st == RC_ESYSTEM_LIMIT || st == RC_EBADARG ? st : RC_ENOMEM);
        }
        launch(e, p, enc, enc_len, pool_size, subscriber, done, ctx);
        return RC_OK;
    }
    /* Durable: the names go to disk first, as persist_emitters' do, through
     * the same queue; the pool is held as starting meanwhile, so a second
     * start of it is refused as it would be once it runs. */
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    int st = names_table_build(store, store_len, sub, sub_len, pool_size, &enc,
                                         &enc_len);
    start_req *r = st == RC_OK ? calloc(1, sizeof *r) : NULL;
    if (r != NULL && subscriber != NULL &&
        rc_cpid_from_ei(e->nodes, subscriber, &r->subscriber) != 0) {
        free(r);
        r = NULL;
    }
    if (r == NULL) {
        free(enc);
        pool_free(p);
        return st != RC_OK ? (st == RC_ESYSTEM_LIMIT || st == RC_EBADARG ? st : RC_ENOMEM) : RC_ENOMEM;
    }
    r->e = e;
    r->p = p;
    r->pool_size = pool_size;
    r->has_subscriber = subscriber != NULL;
    r->done = done;
    r->ctx = ctx;
    p->starting = 1;
    if (rc_ptrtab_add(&e->pools, pool_hash(p), p) != RC_OK) {
        free(enc);
        pool_free(p);
        free(r);
        return RC_ENOMEM;
    }
    e->starting++;
    if (names_persist_submit(e->persist, store, store_len, sub, sub_len, enc, enc_len,
                             names_written, r) != 0) {
        rc_ptrtab_remove(&e->pools, pool_hash(p), p);
        e->starting--;
        pool_free(p);
        free(r);
        return RC_ENOMEM;
    }
    return RC_OK;
}

static void pool_stop(rc_emitters *e, pool *p)
{
    rc_ptrtab_remove(&e->pools, pool_hash(p), p);
    if (p->joined == 0)
        e->detached--;
    /* Ending each emitter makes it leave its group (the pg exit hook). */
    for (size_t i = 0; i < p->n; i++) {
        rc_proc *proc = rc_procs_find(e->ps, &p->pids[i]);
        if (proc != NULL)
            rc_proc_exit(e->ps, proc, "shutdown");
    }
    pool_free(p);
}

void rc_emitters_shutdown(rc_emitters *e)
{
    if (e != NULL)
        e->stopped = 1;
}

/* The running pool of (store, sub) into *out: RC_OK, RC_ENOT_FOUND (none,
 * or still starting) or RC_ENOMEM. */
static int running_pool(const rc_emitters *e, const uint8_t *store, size_t store_len,
                        const uint8_t *sub, size_t sub_len, pool **out)
{
    if (store_len > 0xffff)
        return RC_ENOT_FOUND;
    uint8_t *key = malloc(store_len + sub_len + 2);
    size_t klen = 0;
    if (key == NULL)
        return RC_ENOMEM;
    pool *p = find_pool((rc_emitters *)e, store, store_len, sub, sub_len, key, &klen);
    free(key);
    if (p == NULL || p->starting)
        return RC_ENOT_FOUND;
    *out = p;
    return RC_OK;
}

int rc_emitters_stop_pool(rc_emitters *e, const uint8_t *store, size_t store_len,
                          const uint8_t *sub, size_t sub_len)
{
    pool *p = NULL;
    int rc = running_pool(e, store, store_len, sub, sub_len, &p);
    if (rc != RC_OK)
        return rc;
    pool_stop(e, p);
    return RC_OK;
}

int rc_emitters_pool_info(const rc_emitters *e, const uint8_t *store, size_t store_len,
                          const uint8_t *sub, size_t sub_len, rc_emitter_pool_info *out)
{
    pool *p = NULL;
    int rc = running_pool(e, store, store_len, sub, sub_len, &p);
    if (rc != RC_OK)
        return rc;
    *out = (rc_emitter_pool_info){.events_in = p->events_in, .delivered = p->delivered,
                                  .no_subscriber = p->no_subscriber,
                                  .subscriber_node_gone = p->node_gone, .size = p->n,
                                  .joined = p->joined};
    return RC_OK;
}
