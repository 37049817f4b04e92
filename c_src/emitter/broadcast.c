#include "emitter/broadcast.h"

#include "codec/term_read.h"
#include "naming/group_key.h"
#include "naming/naming.h"
#include "codec/pmsg.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>

struct bcast_target {
    uint8_t *key; /* canonical {Store, Sub, emitters} */
    size_t key_len;
    uint8_t *topic;
    size_t topic_len;
    uint8_t *head_bcast; /* 131, {broadcast, Topic, */
    size_t head_bcast_len;
    uint8_t *head_local; /* 131, {forward_to_local, Topic, */
    size_t head_local_len;
    /* where each head's atom ends: the heads go out in parts of known
     * kinds (tuple head, atom, binary), so no send joins them to the event */
    size_t bcast_atom_end, local_atom_end;
};

struct rc_bcast {
    rc_procs *ps;
    rc_pg_scope *scope;
    rc_nodetab *nodes;
    uint64_t rng;
    rc_bcast_stats stats;
    /* reused from event to event, so its buffers are allocated once */
    rc_pmsg msg;
    int msg_busy;
};

static int dup_x(const ei_x_buff *x, uint8_t **out, size_t *len)
{
    *out = malloc((size_t)x->index);
    if (*out == NULL)
        return -1;
    memcpy(*out, x->buff, (size_t)x->index);
    *len = (size_t)x->index;
    return 0;
}

/* The head's 3 bytes are its version byte and tuple header. */
#define HEAD_TUPLE 3

static int make_head(const char *tag, const uint8_t *topic, size_t tlen, uint8_t **out,
                     size_t *len, size_t *atom_end)
{
    ei_x_buff x;
    if (ei_x_new_with_version(&x) != 0)
        return -1;
    int rc = ei_x_encode_tuple_header(&x, 3) || x.index != HEAD_TUPLE ||
             ei_x_encode_atom(&x, tag);
    *atom_end = (size_t)x.index;
    rc = rc || ei_x_encode_binary(&x, topic, (long)tlen) || dup_x(&x, out, len);
    ei_x_free(&x);
    return rc ? -1 : 0;
}

bcast_target *bcast_target_new(const uint8_t *store_utf8, size_t store_len, const uint8_t *sub,
                               size_t sub_len, int *err)
{
    *err = RC_ENOMEM;
    size_t tlen = 0;
    int st = naming_topic_len(store_utf8, store_len, sub_len, &tlen);
    if (st != RC_OK) {
        *err = RC_EBADARG;
        return NULL;
    }
    bcast_target *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->topic = malloc(tlen ? tlen : 1);
    ei_x_buff g, key;
    int have_g = ei_x_new(&g) == 0, have_key = have_g && ei_x_new(&key) == 0;
    int rc = t->topic == NULL || !have_key ||
             naming_topic(store_utf8, store_len, sub, sub_len, t->topic, tlen, &t->topic_len) != RC_OK ||
             group_key_encode(&g, store_utf8, store_len, sub, sub_len) ||
             rc_pg_group_key(g.buff, g.index, &key) || dup_x(&key, &t->key, &t->key_len) ||
             make_head("broadcast", t->topic, t->topic_len, &t->head_bcast, &t->head_bcast_len,
                       &t->bcast_atom_end) ||
             make_head("forward_to_local", t->topic, t->topic_len, &t->head_local,
                       &t->head_local_len, &t->local_atom_end);
    if (have_g)
        ei_x_free(&g);
    if (have_key)
        ei_x_free(&key);
    if (rc) {
        bcast_target_free(t);
        return NULL;
    }
    *err = RC_OK;
    return t;
}

void bcast_target_free(bcast_target *t)
{
    if (t == NULL)
        return;
    free(t->key);
    free(t->topic);
    free(t->head_bcast);
    free(t->head_local);
    free(t);
}

const uint8_t *bcast_target_topic(const bcast_target *t, size_t *len)
{
    *len = t->topic_len;
    return t->topic;
}

rc_bcast *rc_bcast_new(rc_procs *ps, rc_pg_scope *scope, rc_nodetab *nodes)
{
    rc_bcast *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->ps = ps;
    b->scope = scope;
    b->nodes = nodes;
    if (getrandom(&b->rng, sizeof b->rng, 0) != (ssize_t)sizeof b->rng || b->rng == 0)
        b->rng = 0x9e3779b97f4a7c15ull;
    pmsg_init(&b->msg);
    return b;
}

void rc_bcast_free(rc_bcast *b)
{
    if (b == NULL)
        return;
    pmsg_free(&b->msg);
    free(b);
}

const rc_bcast_stats *rc_bcast_get_stats(const rc_bcast *b) { return &b->stats; }

/* xorshift64*: fast, and uniform enough for picking among members. The
 * multiply-shift reduction maps it to [0, n) without a division. */
static uint32_t pick(rc_bcast *b, size_t n)
{
    uint64_t x = b->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    b->rng = x;
    uint64_t r = x * 0x2545F4914F6CDD1Dull;
    return (uint32_t)(((r >> 32) * (uint64_t)n) >> 32);
}

int rc_bcast_send(rc_bcast *b, const bcast_target *t, uint32_t asking_node, const uint8_t *event,
                  size_t len)
{
    size_t n = 0;
    const rc_cpid *m = rc_pg_members(b->scope, t->key, t->key_len, &n);
    if (n == 0) {
        b->stats.no_emitters++;
        return RC_ENO_EMITTERS;
    }
    const rc_cpid *member = &m[n > 1 ? pick(b, n) : 0];
    int local = member->node == asking_node;
    uint8_t *head = local ? t->head_local : t->head_bcast;
    size_t head_len = local ? t->head_local_len : t->head_bcast_len;
    size_t atom_end = local ? t->local_atom_end : t->bcast_atom_end;
    static const uint8_t kinds[4] = {PMSG_PART_PLAIN, PMSG_PART_TERM, PMSG_PART_PLAIN,
                                     PMSG_PART_TERM};
    struct iovec parts[4] = {
        {.iov_base = head, .iov_len = HEAD_TUPLE},
        {.iov_base = head + HEAD_TUPLE, .iov_len = atom_end - HEAD_TUPLE},
        {.iov_base = head + atom_end, .iov_len = head_len - atom_end},
        {.iov_base = (void *)event, .iov_len = len}};
    b->stats.broadcasts++;
    /* A send to a local member runs its handler, which may broadcast in
     * turn: that one gets a message of its own. */
    rc_pmsg own, *msg = b->msg_busy ? &own : &b->msg;
    if (msg == &own)
        pmsg_init(&own);
    pmsg_set(msg, parts, kinds, 4);
    msg->fixed = 2; /* the tuple head and the atom: the same for every event */
    b->msg_busy++;
    int rc = rc_proc_send_msg(b->ps, NULL, member, msg);
    b->msg_busy--;
    if (msg == &own)
        pmsg_free(&own);
    if (rc != 0) {
        b->stats.send_failed++;
        return RC_EFAIL;
    }
    return RC_OK;
}
