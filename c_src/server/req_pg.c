/* req_pg: pg requests, in the default scope (join, leave, members of
 * {S, Sub, emitters}) and in any scope the node serves (pg_*, scope_pid).
 * Only C-node pids may be joined or left through them. */
#include "server/request_internal.h"

#include "codec/term_read.h"
#include "naming/group_key.h"

#include <stdlib.h>
#include <string.h>

/* Reads PidOrPids as C-node pids: RC_OK; RC_ENOT_FOUND for a pid of another
 * node (its term bytes in *bad, *bad_len); RC_EBADARG if they are not pids;
 * RC_ENOMEM. */
static int read_local_pids(rc_request_server *rs, const char *buf, int len, int *idx,
                           rc_cpid **out, size_t *n, const char **bad, int *bad_len)
{
    int type = 0, size = 0, count = 1, is_list = 0;
    *out = NULL;
    *n = 0;
    if (ei_get_type(buf, idx, &type, &size) != 0)
        return RC_EBADARG;
    if (type == ERL_LIST_EXT || type == ERL_NIL_EXT) {
        /* each pid takes more than a byte: a longer count is a lie */
        if (ei_decode_list_header(buf, idx, &count) != 0 || count > len - *idx)
            return RC_EBADARG;
        is_list = 1;
    } else if (type != ERL_PID_EXT && type != ERL_NEW_PID_EXT) {
        return RC_EBADARG;
    }
    rc_cpid *v = malloc(sizeof *v * (size_t)(count > 0 ? count : 1));
    if (v == NULL)
        return RC_ENOMEM;
    uint32_t self = rc_pg_self_node(rs->scopes[0]);
    for (int i = 0; i < count; i++) {
        int start = *idx;
        if (rc_cpid_read(rs->nodes, buf, len, idx, &v[i]) != 0) {
            free(v);
            return RC_EBADARG;
        }
        if (v[i].node != self) {
            *bad = buf + start;
            *bad_len = *idx - start;
            free(v);
            return RC_ENOT_FOUND;
        }
    }
    if (is_list && count > 0) {
        int tail = 0;
        if (ei_decode_list_header(buf, idx, &tail) != 0 || tail != 0) {
            free(v);
            return RC_EBADARG;
        }
    }
    *out = v;
    *n = (size_t)count;
    return RC_OK;
}

static rc_pg_scope *scope_named(rc_request_server *rs, const char *name)
{
    for (size_t i = 0; i < rs->nscopes; i++)
        if (strcmp(rc_pg_scope_name(rs->scopes[i]), name) == 0)
            return rs->scopes[i];
    return NULL;
}

static int encode_pids(rc_request_server *rs, ei_x_buff *x, const rc_cpid *m, size_t n,
                       int local_only)
{
    uint32_t self = rc_pg_self_node(rs->scopes[0]);
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += !local_only || m[i].node == self;
    if (rqs_encode_ok_header(x) != 0)
        return -1;
    if (count > 0 && ei_x_encode_list_header(x, (long)count) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((!local_only || m[i].node == self) &&
            (term_x_reserve(x, 1040) != 0 || rc_cpid_write(rs->nodes, x, &m[i]) != 0))
            return -1;
    return ei_x_encode_empty_list(x);
}

/* Builds {S, Sub, emitters} from the raw S and Sub terms at *idx. */
static int group_of(const char *buf, int len, int *idx, ei_x_buff *g)
{
    int s0 = *idx;
    const uint8_t *p;
    size_t n;
    uint8_t scratch[2 * 256];
    if (term_read_atom(buf, len, idx, &p, &n, scratch, sizeof scratch) != 0)
        return -1;
    if (term_skip(buf, len, idx) != 0)
        return -1;
    g->index = 0;
    return group_key_encode_terms(g, buf + s0, *idx - s0);
}

/* join/leave of C-node pids: op_join selects rc_pg_join or rc_pg_leave. */
static int pg_change(rc_request_server *rs, rc_pg_scope *sc, const char *group, int glen,
                     const char *buf, int len, int idx, int op_join, ei_x_buff *x)
{
    rc_cpid *pids = NULL;
    size_t n = 0;
    const char *bad = NULL;
    int bad_len = 0;
    int r = read_local_pids(rs, buf, len, &idx, &pids, &n, &bad, &bad_len);
    if (r == RC_ENOMEM)
        return -1;
    if (r == RC_EBADARG)
        return rqs_encode_error(x, "badarg");
    if (r == RC_ENOT_FOUND) {
        return ei_x_encode_tuple_header(x, 2) || ei_x_encode_atom(x, "error") ||
               ei_x_encode_tuple_header(x, 2) || ei_x_encode_atom(x, "nolocal") ||
               ei_x_append_buf(x, bad, bad_len);
    }
    int rc = op_join ? rc_pg_join(sc, group, glen, pids, n) : rc_pg_leave(sc, group, glen, pids, n);
    free(pids);
    if (rc != 0)
        return rqs_encode_error(x, "badarg");
    return rqs_encode_ok_header(x) == 0 ? ei_x_encode_atom(x, "ok") : -1;
}

static int pg_members_reply(rc_request_server *rs, rc_pg_scope *sc, const char *group, int glen,
                            int local_only, ei_x_buff *x)
{
    ei_x_buff key;
    if (ei_x_new(&key) != 0)
        return -1;
    int rc;
    if (rc_pg_group_key(group, glen, &key) != 0) {
        rc = rqs_encode_error(x, "badarg");
    } else {
        size_t n = 0;
        const rc_cpid *m = rc_pg_members(sc, (const uint8_t *)key.buff, (size_t)key.index, &n);
        rc = encode_pids(rs, x, m, n, local_only);
    }
    ei_x_free(&key);
    return rc;
}

/* Default scope: {S, Sub, emitters} built from the raw S and Sub terms,
 * then the op (join/leave: the pids follow; members). */
typedef enum { GROUP_JOIN, GROUP_LEAVE, GROUP_MEMBERS } group_op;

static int default_scope_op(rc_request_server *rs, const rs_req *r, group_op op, ei_x_buff *x)
{
    if (rs->nscopes == 0)
        return rqs_encode_error(x, "no_scope");
    ei_x_buff g;
    if (ei_x_new(&g) != 0)
        return -1;
    int idx = r->idx, rc;
    if (group_of(r->buf, r->len, &idx, &g) != 0)
        rc = rqs_encode_error(x, "badarg");
    else if (op == GROUP_MEMBERS)
        rc = pg_members_reply(rs, rs->scopes[0], g.buff, g.index, 0, x);
    else
        rc = pg_change(rs, rs->scopes[0], g.buff, g.index, r->buf, r->len, idx,
                       op == GROUP_JOIN, x);
    ei_x_free(&g);
    return rc;
}

int rqs_join(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    return default_scope_op(rs, r, GROUP_JOIN, x);
}

int rqs_leave(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    return default_scope_op(rs, r, GROUP_LEAVE, x);
}

int rqs_members(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    return default_scope_op(rs, r, GROUP_MEMBERS, x);
}

/* The scope named by the request's first argument, with *idx past it; or
 * NULL with {error, badarg} or {error, {no_scope, Scope}} encoded into x
 * (*rc: that encoding's result). */
static rc_pg_scope *scope_arg(rc_request_server *rs, const rs_req *r, int *idx, ei_x_buff *x,
                              int *rc)
{
    char scope[MAXATOMLEN_UTF8];
    int sstart = *idx;
    if (ei_decode_atom_as(r->buf, idx, scope, sizeof scope, ERLANG_UTF8, NULL, NULL) != 0) {
        *rc = rqs_encode_error(x, "badarg");
        return NULL;
    }
    rc_pg_scope *sc = scope_named(rs, scope);
    if (sc == NULL)
        *rc = ei_x_encode_tuple_header(x, 2) || ei_x_encode_atom(x, "error") ||
              ei_x_encode_tuple_header(x, 2) || ei_x_encode_atom(x, "no_scope") ||
              ei_x_append_buf(x, r->buf + sstart, *idx - sstart);
    return sc;
}

/* {pg_which_groups, Scope} */
int rqs_pg_which_groups(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    int idx = r->idx, rc = 0;
    rc_pg_scope *sc = scope_arg(rs, r, &idx, x, &rc);
    if (sc == NULL)
        return rc;
    const pgm_table *t = rc_pg_table(sc);
    size_t count = pgm_group_count(t);
    if (rqs_encode_ok_header(x) != 0 ||
        (count > 0 && ei_x_encode_list_header(x, (long)count) != 0))
        return -1;
    for (pgm_group *gr = pgm_next(t, NULL); gr != NULL; gr = pgm_next(t, gr)) {
        size_t klen;
        const uint8_t *k = pgm_group_key(gr, &klen);
        if (term_x_reserve(x, klen) != 0 || ei_x_append_buf(x, (const char *)k, (int)klen) != 0)
            return -1;
    }
    return ei_x_encode_empty_list(x);
}

/* {pg_members | pg_local_members | pg_join | pg_leave, Scope, Group, ...}:
 * the scope, and the group's term bytes. */
static rc_pg_scope *scope_group(rc_request_server *rs, const rs_req *r, int *idx,
                                const char **group, int *glen, ei_x_buff *x, int *rc)
{
    rc_pg_scope *sc = scope_arg(rs, r, idx, x, rc);
    if (sc == NULL)
        return NULL;
    int g0 = *idx;
    if (term_skip(r->buf, r->len, idx) != 0) {
        *rc = rqs_encode_error(x, "badarg");
        return NULL;
    }
    *group = r->buf + g0;
    *glen = *idx - g0;
    return sc;
}

static int scoped_members(rc_request_server *rs, const rs_req *r, int local_only, ei_x_buff *x)
{
    int idx = r->idx, glen = 0, rc = 0;
    const char *group = NULL;
    rc_pg_scope *sc = scope_group(rs, r, &idx, &group, &glen, x, &rc);
    return sc == NULL ? rc : pg_members_reply(rs, sc, group, glen, local_only, x);
}

static int scoped_change(rc_request_server *rs, const rs_req *r, int join, ei_x_buff *x)
{
    int idx = r->idx, glen = 0, rc = 0;
    const char *group = NULL;
    rc_pg_scope *sc = scope_group(rs, r, &idx, &group, &glen, x, &rc);
    return sc == NULL ? rc : pg_change(rs, sc, group, glen, r->buf, r->len, idx, join, x);
}

int rqs_pg_members(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    return scoped_members(rs, r, 0, x);
}

int rqs_pg_local_members(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    return scoped_members(rs, r, 1, x);
}

int rqs_pg_join(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    return scoped_change(rs, r, 1, x);
}

int rqs_pg_leave(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    return scoped_change(rs, r, 0, x);
}

/* {scope_pid, Scope} */
int rqs_scope_pid(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    char scope[MAXATOMLEN_UTF8];
    int idx = r->idx;
    rc_pg_scope *sc = ei_decode_atom_as(r->buf, &idx, scope, sizeof scope, ERLANG_UTF8, NULL,
                                        NULL) == 0 ? scope_named(rs, scope) : NULL;
    if (sc == NULL)
        return rqs_encode_error(x, "no_scope");
    rc_cpid self;
    return rqs_encode_ok_header(x) || rc_pg_scope_pid(sc, &self) || rc_cpid_write(rs->nodes, x, &self);
}
