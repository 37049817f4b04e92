/* request_server: the process registered `reckon_cnode` on the C node. It
 * answers the shim's gen_server calls with the naming functions and the
 * emitter-name table ({ok, Result} | {error, Reason}); a request of a wrong
 * shape or type gets {error, badarg}, never a crash or a hang. */
#ifndef RC_REQUEST_SERVER_H
#define RC_REQUEST_SERVER_H

#include "emitter/broadcast.h"
#include "emitter/emitter_pool.h"
#include "naming/names_persist.h"
#include "naming/names_table.h"
#include "pg/pg_scope.h"
#include "proc/procs.h"

#include <uv.h>

typedef struct rc_request_server rc_request_server;

/* Extra facts for `stats`, supplied by the node. */
typedef void (*rc_stats_fn)(void *ctx, ei_x_buff *x); /* appends one map term */

/* `persist` is the queue of durable name writes, or NULL (no --data-dir).
 * With it, persist_emitters and start_emitter_pool are answered only once
 * their names are synced to disk. */
rc_request_server *rc_request_server_start(rc_procs *ps, names_table *names,
                                           names_persist *persist, rc_stats_fn stats,
                                           void *stats_ctx);
/* The pg scopes it serves (the first is the default for join/leave/members). */
void rc_request_server_set_scopes(rc_request_server *rs, rc_pg_scope *const *scopes, size_t n,
                                  rc_nodetab *nodes);
/* Emitter pools and broadcast requests. */
void rc_request_server_set_emitters(rc_request_server *rs, rc_emitters *e, rc_bcast *b);
/* Releases what is left after the loop has ended. */
void rc_request_server_free(rc_request_server *rs);
uint64_t rc_request_server_count(const rc_request_server *rs);

#endif
