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
 *   the subscriber's DOWN (or EXIT, if it linked to us) -> the emitter
 *       leaves {Store, Sub, emitters}, so broadcasts stop picking it; what
 *       still reaches it is dropped and counted (no_subscriber, or
 *       subscriber_node_gone when its node went), and the
 *       pool says so in the log, once when it detaches and then at
 *       doubling counts of drops. A start of a pool whose emitters have all
 *       left replaces it; update_subscriber brings an emitter back.
 * The event is never decoded: its bytes are located once and sent to every
 * subscriber behind a fixed head, so fan-out costs a copy into each
 * connection's buffer (one writev per connection per loop turn). */
#ifndef RC_EMITTER_POOL_H
#define RC_EMITTER_POOL_H

#include "naming/names_persist.h"
#include "naming/names_table.h"
#include "emitter/relay.h"
#include "pg/pg_scope.h"
#include "proc/procs.h"
#include "util/err.h"

#include <ei.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rc_emitters rc_emitters;

typedef struct rc_emitters_stats {
    /* events_out: deliveries (one per subscriber, relayed ones included);
     * relay_sends: messages to relays, each for all of a node's subscribers;
     * no_subscriber: events dropped for want of a subscriber;
     * subscriber_node_gone: dropped because the subscriber's node went
     *     (its monitor fired with noconnection);
     * pools_detached: times a pool lost its subscriber and left its group */
    uint64_t events_in, events_out, no_subscriber, subscriber_node_gone, relay_sends,
        pools_detached;
} rc_emitters_stats;

/* One pool's account: events its emitters received, deliveries made (one
 * per subscriber), events dropped for want of a subscriber and because the
 * subscriber's node went; emitters in all and in the group. */
typedef struct rc_emitter_pool_info {
    uint64_t events_in, delivered, no_subscriber, subscriber_node_gone;
    size_t size, joined;
} rc_emitter_pool_info;

/* persist: the queue of durable name writes (--data-dir), or NULL. */
rc_emitters *rc_emitters_new(rc_procs *ps, rc_pg_scope *scope, rc_nodetab *nodes,
                             names_table *names, names_persist *persist);
void rc_emitters_free(rc_emitters *e);

/* The outcome of a start, on the loop thread: RC_OK with the emitters'
 * pids in the order of their names, as erlang_pids and as compact pids (n of
 * each, valid during the call only), or an error: RC_ESTORAGE with the
 * names store's words in cause (valid during the call), else as below,
 * RC_ESTOPPED if the node stopped while the names were written. */
typedef void (*rc_emitters_started_fn)(void *ctx, int rc, const char *cause,
                                       const erlang_pid *pids, const rc_cpid *cpids, size_t n);

/* Starts the pool of (store, sub): pool_size emitters registered under the
 * names persist_emitters(store, sub, pool_size) gives. Those names are stored
 * first, as persist_emitters stores them (so they stay stored if a name then
 * proves taken, RC_EEXISTS, or not registrable, RC_EBADARG), and
 * with a persist queue they are on disk before any emitter starts: the start
 * then waits for its write, and meanwhile another start of the pool is
 * RC_EEXISTS and a stop does not find it. done reports the outcome once:
 * before this returns without a queue, after the write with one. Returns
 * RC_OK when done will report, or an error found at once, done not
 * called: RC_EBADARG, RC_ESYSTEM_LIMIT, RC_EEXISTS (the pool
 * runs or is starting), RC_ENOMEM, RC_ESTOPPED. */
int rc_emitters_start_pool(rc_emitters *e, const uint8_t *store, size_t store_len,
                           const uint8_t *sub, size_t sub_len, int64_t pool_size,
                           const erlang_pid *subscriber, rc_emitters_started_fn done, void *ctx);
int rc_emitters_stop_pool(rc_emitters *e, const uint8_t *store, size_t store_len,
                          const uint8_t *sub, size_t sub_len);
/* The node is stopping: starts still waiting for their names' write end
 * with RC_ESTOPPED instead of starting emitters, and no new ones begin. */
void rc_emitters_shutdown(rc_emitters *e);
/* The account of the running pool (store, sub): RC_OK, or RC_ENOT_FOUND. */
int rc_emitters_pool_info(const rc_emitters *e, const uint8_t *store, size_t store_len,
                          const uint8_t *sub, size_t sub_len, rc_emitter_pool_info *out);
/* Running pools (not those still starting), and those of them whose
 * emitters have all left their group (subscriber gone). */
size_t rc_emitters_pool_count(const rc_emitters *e);
size_t rc_emitters_detached_count(const rc_emitters *e);
const rc_emitters_stats *rc_emitters_get_stats(const rc_emitters *e);
/* Events relays died with (relay.h). */
const rc_relays_stats *rc_emitters_relay_stats(const rc_emitters *e);

#endif
