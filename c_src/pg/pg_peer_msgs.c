/* pg_peer_msgs: what peer scopes send the scope process (discover, sync,
 * join, leave, a scope DOWN), validated against the connection it came on;
 * see pg_scope.h for the protocol. */
#include "pg/pg_internal.h"

#include "codec/term_norm.h"
#include "proc/gen_server.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------- incoming messages */

int pgs_pidvec_push(pidvec *pv, const rc_cpid *p)
{
    if (pv->n == pv->cap) {
        size_t ncap = pv->cap ? pv->cap * 2 : 16;
        rc_cpid *nv = realloc(pv->v, ncap * sizeof *nv);
        if (nv == NULL)
            return -1;
        pv->v = nv;
        pv->cap = ncap;
    }
    pv->v[pv->n++] = *p;
    return 0;
}

/* Reads a pid or a list of pids of `node` at *idx into pv. pg only ever
 * sends its own node's members, and removal on peer loss relies on it:
 * pids of other nodes are left out (counted), and their node names are
 * never interned. */
static int read_pids(rc_pg_scope *s, uint32_t node, const char *buf, int len, int *idx,
                     pidvec *pv)
{
    int type = 0, size = 0;
    pv->n = pv->foreign = 0;
    if (ei_get_type(buf, idx, &type, &size) != 0)
        return -1;
    if (type == ERL_PID_EXT || type == ERL_NEW_PID_EXT) {
        rc_cpid p;
        int r = rc_cpid_read_of(s->nodes, node, buf, len, idx, &p);
        if (r == 1)
            pv->foreign++;
        return r == 0 ? pgs_pidvec_push(pv, &p) : r == 1 ? 0 : -1;
    }
    /* A proper list, possibly as a chain of LIST_EXT (a tail that is itself
     * a list, as encode_sync writes); anything but [] at the end is bad. */
    for (;;) {
        int arity = 0;
        if (ei_decode_list_header(buf, idx, &arity) != 0)
            return -1;
        if (arity == 0)
            return 0;
        for (int i = 0; i < arity; i++) {
            rc_cpid p;
            int r = rc_cpid_read_of(s->nodes, node, buf, len, idx, &p);
            if (r < 0 || (r == 0 && pgs_pidvec_push(pv, &p) != 0))
                return -1;
            pv->foreign += r == 1;
        }
    }
}

/* Steps through a proper list of any encoding: call with *left = 0 first;
 * returns 1 when an element is next at *idx, 0 at the end (the [] read),
 * -1 if the list is not proper. */
static int list_next(const char *buf, int *idx, int *left)
{
    if (*left > 0) {
        (*left)--;
        return 1;
    }
    int arity = 0;
    if (ei_decode_list_header(buf, idx, &arity) != 0)
        return -1;
    if (arity == 0)
        return 0;
    *left = arity - 1;
    return 1;
}

/* Canonical key of the group term at *idx into s->key, advancing *idx. */
static int read_group(rc_pg_scope *s, const char *buf, int len, int *idx)
{
    s->key.index = 0;
    return term_norm_encode(buf, len, idx, &s->key);
}

static void handle_discover(rc_pg_scope *s, const rc_cpid *from)
{
    s->stats.discovers_in++;
    if (from->node == s->self_node)
        return;
    int fresh = pgs_find_peer(s, from) == NULL;
    if (fresh && pgs_add_peer(s, from) == NULL)
        return;
    pgs_send_sync(s, from);
    if (fresh) {
        ei_x_buff x;
        if (ei_x_new(&x) == 0) {
            if (pgs_encode_discover(s, &x) == 0 && pgs_send_to(s, from, &x) == 0)
                s->stats.discovers_out++;
            ei_x_free(&x);
        }
    }
}

static void handle_sync(rc_pg_scope *s, const char *buf, int len, int idx, const rc_cpid *from)
{
    s->stats.syncs_in++;
    if (from->node == s->self_node)
        return;
    /* Validate the whole sync before touching the view or the peers, so a
     * malformed one changes nothing and gets no answer. */
    pidvec pv = {0};
    int probe = idx, left = 0, more;
    while ((more = list_next(buf, &probe, &left)) == 1) {
        int arity = 0;
        if (ei_decode_tuple_header(buf, &probe, &arity) != 0 || arity != 2 ||
            read_group(s, buf, len, &probe) != 0 || read_pids(s, from->node, buf, len, &probe, &pv) != 0)
            break;
    }
    if (more != 0) {
        pgs_malformed(s, "malformed sync");
        free(pv.v);
        return;
    }
    if (pgs_find_peer(s, from) == NULL) {
        /* A scope that syncs to us has us in its view (pg only syncs in
         * answer to a discover, after recording the asker): answer with our
         * own sync so join/leave can follow at once. */
        if (pgs_add_peer(s, from) == NULL) {
            free(pv.v);
            return;
        }
        pgs_send_sync(s, from);
    }
    (void)pgs_remove_node(s, from->node);
    probe = idx;
    left = 0;
    while (list_next(buf, &probe, &left) == 1) {
        int arity = 0;
        (void)ei_decode_tuple_header(buf, &probe, &arity);
        (void)read_group(s, buf, len, &probe);
        (void)read_pids(s, from->node, buf, len, &probe, &pv);
        s->stats.foreign_pids += pv.foreign;
        if (pv.n == 0)
            continue;
        pgm_group *g = pgm_add(s->table, (const uint8_t *)s->key.buff, (size_t)s->key.index,
                               pv.v, pv.n, 0);
        if (g == NULL) {
            LOG_E(s->lg, MOD, "scope %s: out of memory applying a sync", s->name);
            break;
        }
        pgs_notify_group(s, RC_PG_JOINED, g, pv.v, pv.n);
    }
    LOG_D(s->lg, MOD, "scope %s: sync from %s applied", s->name,
          rc_nodetab_name(s->nodes, from->node));
    free(pv.v);
}

static void handle_join(rc_pg_scope *s, const char *buf, int len, int idx, const rc_cpid *from)
{
    s->stats.joins_in++;
    if (pgs_find_peer(s, from) == NULL) {
        s->stats.ignored_unknown_peer++;
        return;
    }
    pidvec pv = {0};
    if (read_group(s, buf, len, &idx) != 0 || read_pids(s, from->node, buf, len, &idx, &pv) != 0) {
        pgs_malformed(s, "malformed join");
    } else {
        s->stats.foreign_pids += pv.foreign;
        if (pv.n > 0) {
            pgm_group *g = pgm_add(s->table, (const uint8_t *)s->key.buff, (size_t)s->key.index,
                                   pv.v, pv.n, 0);
            if (g != NULL)
                pgs_notify_group(s, RC_PG_JOINED, g, pv.v, pv.n);
            LOG_D(s->lg, MOD, "scope %s: %zu member(s) of %s joined a group", s->name, pv.n,
                  rc_nodetab_name(s->nodes, from->node));
        }
    }
    free(pv.v);
}

static void handle_leave(rc_pg_scope *s, const char *buf, int len, int idx, const rc_cpid *from)
{
    s->stats.leaves_in++;
    if (pgs_find_peer(s, from) == NULL) {
        s->stats.ignored_unknown_peer++;
        return;
    }
    pidvec pv = {0};
    int probe, left = 0, more;
    if (read_pids(s, from->node, buf, len, &idx, &pv) != 0) {
        pgs_malformed(s, "malformed leave");
        free(pv.v);
        return;
    }
    /* Validate every group before removing anything. */
    probe = idx;
    while ((more = list_next(buf, &probe, &left)) == 1)
        if (read_group(s, buf, len, &probe) != 0)
            break;
    if (more != 0) {
        pgs_malformed(s, "malformed group list in leave");
        free(pv.v);
        return;
    }
    s->stats.foreign_pids += pv.foreign;
    LOG_D(s->lg, MOD, "scope %s: %zu member(s) of %s leave", s->name, pv.n,
          rc_nodetab_name(s->nodes, from->node));
    while (pv.n > 0 && list_next(buf, &idx, &left) == 1) {
        (void)read_group(s, buf, len, &idx);
        pgm_group *g = pgm_find(s->table, (const uint8_t *)s->key.buff, (size_t)s->key.index);
        for (size_t k = 0; k < pv.n && g != NULL; k++) {
            pgm_group *gp = g;
            size_t klen;
            const uint8_t *key = pgm_group_key(g, &klen);
            /* Recorded before removal may free the group (and its key); told
             * after the loop, so a subscriber that joins or leaves cannot
             * change (or free) the group this loop holds. */
            int member = 0;
            size_t mn;
            const rc_cpid *m = pgm_group_members(g, &mn);
            for (size_t j = 0; j < mn && !member; j++)
                member = rc_cpid_eq(&m[j], &pv.v[k]);
            if (!member)
                continue;
            pgs_defer_leave(s, key, klen, &pv.v[k], 1);
            pgm_remove_one(s->table, &gp, &pv.v[k]);
            g = gp;
        }
    }
    free(pv.v);
    pgs_tell_leaves(s);
}

#define FOREIGN_WINDOW_MS 10000u
#define FOREIGN_LINES 3u

/* Reads the scope pid a discover, sync, join or leave speaks for. A
 * process cannot send as another node's process, so what a connection
 * says changes only what its own node owns: a scope pid of any other node
 * (or a message from no connection) is refused, counted and logged at a
 * bounded rate, and its node name is not interned. 0 and *out if the pid
 * is of the sender's node, 1 if refused, -1 if malformed. */
static int read_scope_pid(rc_pg_scope *s, const rc_signal *sig, const char *buf, int len,
                          int *idx, rc_cpid *out)
{
    uint32_t conn = sig->peer != NULL ? sig->peer_node : RC_NODE_NONE;
    int r = conn == RC_NODE_NONE ? 1 : rc_cpid_read_of(s->nodes, conn, buf, len, idx, out);
    if (r != 1)
        return r;
    s->stats.foreign_scope++;
    unsigned left_out = 0;
    int ok = rc_ratelimit_allow(&s->foreign_log, uv_now(s->loop), FOREIGN_WINDOW_MS,
                                FOREIGN_LINES, &left_out);
    if (left_out > 0)
        LOG_W(s->lg, MOD, "scope %s: %u more messages for another node's scope ignored",
              s->name, left_out);
    if (ok)
        LOG_W(s->lg, MOD, "scope %s: %s sent a message for another node's scope: ignored",
              s->name, sig->peer != NULL ? sig->peer : "a local process");
    return 1;
}

void pgs_on_signal(rc_procs *ps, rc_proc *self, const rc_signal *sig)
{
    (void)ps;
    rc_pg_scope *s = rc_proc_ctx(self);
    if (sig->kind == RC_SIG_DOWN) {
        peer *p, *tmp;
        HASH_ITER(hh, s->peers, p, tmp) {
            if (p->monitored && sig->ref && p->mref.len == sig->ref->len &&
                memcmp(p->mref.n, sig->ref->n, sizeof(unsigned) * (size_t)p->mref.len) == 0 &&
                p->mref.creation == sig->ref->creation) {
                pgs_drop_peer(s, p, "down");
                return;
            }
        }
        return;
    }
    if (sig->kind != RC_SIG_MSG)
        return;
    const char *buf = sig->buf;
    int len = sig->len, idx = 0, v = 0, arity = 0;
    char tag[MAXATOMLEN];
    if (ei_decode_version(buf, &idx, &v) != 0 || ei_decode_tuple_header(buf, &idx, &arity) != 0 ||
        arity < 1 || ei_decode_atom(buf, &idx, tag) != 0) {
        pgs_malformed(s, "message that is not a tagged tuple");
        return;
    }
    rc_cpid from;
    int r;
    if (strcmp(tag, "discover") == 0 && (arity == 2 || arity == 3)) {
        if ((r = read_scope_pid(s, sig, buf, len, &idx, &from)) == 0)
            handle_discover(s, &from);
        else if (r < 0)
            pgs_malformed(s, "discover without a pid");
    } else if (strcmp(tag, "$gen_cast") == 0 && arity == 2) {
        int a2 = 0;
        char t2[MAXATOMLEN];
        if (ei_decode_tuple_header(buf, &idx, &a2) == 0 && a2 == 3 &&
            ei_decode_atom(buf, &idx, t2) == 0 && strcmp(t2, "sync") == 0 &&
            (r = read_scope_pid(s, sig, buf, len, &idx, &from)) >= 0) {
            if (r == 0)
                handle_sync(s, buf, len, idx, &from);
        } else {
            pgs_malformed(s, "unexpected cast");
        }
    } else if (strcmp(tag, "join") == 0 && arity == 4) {
        if ((r = read_scope_pid(s, sig, buf, len, &idx, &from)) == 0)
            handle_join(s, buf, len, idx, &from);
        else if (r < 0)
            pgs_malformed(s, "join without a peer pid");
    } else if (strcmp(tag, "leave") == 0 && arity == 4) {
        if ((r = read_scope_pid(s, sig, buf, len, &idx, &from)) == 0)
            handle_leave(s, buf, len, idx, &from);
        else if (r < 0)
            pgs_malformed(s, "leave without a peer pid");
    } else {
        pgs_malformed(s, "unexpected message");
    }
}

