/* emitter_pool: C-hosted emitters with reckon-db's emitter behaviour. A pool
 * for (Store, Sub) is PoolSize C processes registered under the names of
 * persist_emitters(Store, Sub, PoolSize) and joined to {Store, Sub, emitters}
 * in the default scope. Each emitter:
 *   {broadcast | forward_to_local, Topic, Event}
 *       -> {events, [Event]} to its subscriber, or, without one, to every
 *          member of {Store, Topic, subscribers} (through the relay of each
 *          BEAM node that runs one, see relay.h);
 *   {events, Events} -> forwarded as is to the subscriber;
 *   {'$gen_cast', {update_subscriber, Pid}} -> new subscriber (monitored);
 *   the subscriber's DOWN (or EXIT, if it linked to us) -> no subscriber.
 * The event is never decoded: its bytes are located once and sent to every
 * subscriber behind a fixed head, so fan-out costs a copy into each
 * connection's buffer (one writev per connection per loop turn). */
#ifndef RC_EMITTER_POOL_H
#define RC_EMITTER_POOL_H

#include "naming/names_table.h"
#include "pg/pg_scope.h"
#include "proc/procs.h"

#include <ei.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rc_emitters rc_emitters;

enum { EMITTERS_OK = 0, EMITTERS_BADARG = -1, EMITTERS_EXISTS = -2, EMITTERS_NOMEM = -3,
       EMITTERS_NOT_FOUND = -4, EMITTERS_SYSTEM_LIMIT = -5 };

typedef struct rc_emitters_stats {
    /* events_out: deliveries (one per subscriber, relayed ones included);
     * relay_sends: messages to relays, each for all of a node's subscribers */
    uint64_t events_in, events_out, no_subscriber, relay_sends;
} rc_emitters_stats;

rc_emitters *rc_emitters_new(rc_procs *ps, rc_pg_scope *scope, rc_nodetab *nodes,
                             names_table *names);
void rc_emitters_free(rc_emitters *e);

/* On success *pids (malloc'd, caller frees) holds the emitters' pids. */
int rc_emitters_start_pool(rc_emitters *e, const uint8_t *store, size_t store_len,
                           const uint8_t *sub, size_t sub_len, int64_t pool_size,
                           const erlang_pid *subscriber, erlang_pid **pids, size_t *npids);
int rc_emitters_stop_pool(rc_emitters *e, const uint8_t *store, size_t store_len,
                          const uint8_t *sub, size_t sub_len);
size_t rc_emitters_pool_count(const rc_emitters *e);
const rc_emitters_stats *rc_emitters_get_stats(const rc_emitters *e);

#endif
