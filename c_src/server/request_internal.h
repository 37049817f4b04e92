/* request_internal: what the request server's files share (not for other
 * modules). request_server.c owns the process, the table of operations and
 * the replies sent after a durable write; req_naming.c, req_pg.c and
 * req_pools.c hold the operations of each domain. A handler answers into x
 * ({ok, Result} | {error, Reason}) and returns 0, or non-zero if encoding
 * failed (the server then answers {error, system_limit}); one that answers
 * later sets *deferred. */
#ifndef RC_REQUEST_INTERNAL_H
#define RC_REQUEST_INTERNAL_H

#include "proc/gen_server.h"
#include "server/request_server.h"

#include <ei.h>
#include <stddef.h>
#include <stdint.h>

#define MOD "request"
#define DEC_CAP 320 /* decimal digits of any N whose name can still fit 255 chars */

struct rc_request_server {
    names_persist *persist;
    rc_procs *ps;
    rc_proc *self;
    names_table *names;
    rc_stats_fn stats;
    void *stats_ctx;
    uint64_t requests;
    uint64_t bad_requests;
    rc_pg_scope *const *scopes;
    size_t nscopes;
    rc_nodetab *nodes;
    rc_emitters *emitters;
    rc_bcast *bcast;
};

/* One request: the op's arguments start at buf[idx]. */
typedef struct rs_req {
    const rc_gen_from *from;
    const char *buf;
    int len;
    int idx;
    int arity;     /* of the request tuple, the op atom included; 0 for a bare atom */
    int *deferred; /* set by an op that answers later (after a durable write) */
} rs_req;

typedef int (*rs_op_fn)(rc_request_server *rs, const rs_req *r, ei_x_buff *x);

/* Store (atom) and Sub (binary) arguments. */
typedef struct req_args {
    const uint8_t *store;
    size_t store_len;
    const uint8_t *sub;
    size_t sub_len;
    uint8_t scratch[2 * 256];
} req_args;

int rqs_encode_error(ei_x_buff *x, const char *reason);
int rqs_encode_ok_header(ei_x_buff *x);
/* {error, Atom} for an RC_E* code */
int rqs_encode_naming_error(ei_x_buff *x, int st);
/* {error, {storage, Cause}}: the names store's own words. */
int rqs_encode_storage_error(ei_x_buff *x, const char *cause);
int rqs_read_store_sub(const char *buf, int len, int *idx, req_args *a);

/* A reply sent after the handler has returned (once a durable write is
 * done): the caller and its tag, copied out of the request. */
typedef struct later_reply later_reply;
later_reply *rqs_later_new(rc_request_server *rs, const rc_gen_from *from);
void rqs_later_free(later_reply *lr);
/* Sends {Tag, Reply} with the Reply that put appends, then frees lr. */
void rqs_later_send(later_reply *lr, int (*put)(ei_x_buff *x, const void *arg), const void *arg);

/* The operations, one per row of the table in request_server.c. */
int rqs_topic(rc_request_server *rs, const rs_req *r, ei_x_buff *x);
int rqs_emitter_name(rc_request_server *rs, const rs_req *r, ei_x_buff *x);
int rqs_group_key(rc_request_server *rs, const rs_req *r, ei_x_buff *x);
int rqs_persist(rc_request_server *rs, const rs_req *r, ei_x_buff *x);
int rqs_retrieve(rc_request_server *rs, const rs_req *r, ei_x_buff *x);
int rqs_join(rc_request_server *rs, const rs_req *r, ei_x_buff *x);
int rqs_leave(rc_request_server *rs, const rs_req *r, ei_x_buff *x);
int rqs_members(rc_request_server *rs, const rs_req *r, ei_x_buff *x);
int rqs_pg_which_groups(rc_request_server *rs, const rs_req *r, ei_x_buff *x);
int rqs_pg_members(rc_request_server *rs, const rs_req *r, ei_x_buff *x);
int rqs_pg_local_members(rc_request_server *rs, const rs_req *r, ei_x_buff *x);
int rqs_pg_join(rc_request_server *rs, const rs_req *r, ei_x_buff *x);
int rqs_pg_leave(rc_request_server *rs, const rs_req *r, ei_x_buff *x);
int rqs_scope_pid(rc_request_server *rs, const rs_req *r, ei_x_buff *x);
int rqs_start_pool(rc_request_server *rs, const rs_req *r, ei_x_buff *x);
int rqs_start_pools(rc_request_server *rs, const rs_req *r, ei_x_buff *x);
int rqs_stop_pool(rc_request_server *rs, const rs_req *r, ei_x_buff *x);
int rqs_pool_info(rc_request_server *rs, const rs_req *r, ei_x_buff *x);
int rqs_broadcast(rc_request_server *rs, const rs_req *r, ei_x_buff *x);

#endif
