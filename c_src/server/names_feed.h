/* names_feed: keeps copies of the emitter-name table current on the BEAM
 * nodes that attach to this node, so retrieve_emitters/2 is answered there
 * from memory instead of by a round trip. The process registered
 * `reckon_cnode_names` answers the gen_server call {subscribe, Pid, Token}
 * with {ok, [{{S, Sub, emitters}, Names}]}, the whole table, and from then on
 * sends Pid {'$reckon_names', Token, {S, Sub, emitters}, Names} for every
 * entry stored, as it is stored: before the answer to the persist (or pool
 * start) that stored it, so a caller that has its answer finds the push
 * already delivered on its node. Token (a small term of the subscriber's)
 * lets the subscriber tell pushes from anything else sent to it.
 *
 * Pid and the caller must be processes of the node whose connection
 * brought the call (at most a few per node, a few hundred in all). A
 * subscriber whose connection is busy when a change is pushed is dropped
 * rather than made to queue (and make the writer wait): once its
 * connection drains it gets {'$reckon_names_dropped', Token}, and its copy
 * refills by subscribing again. Subscribers are monitored and forgotten
 * when they go. Loop thread only. */
#ifndef RC_NAMES_FEED_H
#define RC_NAMES_FEED_H

#include "naming/names_table.h"
#include "proc/procs.h"

#include <stdint.h>
#include <uv.h>

typedef struct rc_names_feed rc_names_feed;

/* Registers the process and listens to the table; NULL on failure. */
rc_names_feed *rc_names_feed_start(rc_procs *ps, names_table *names, uv_loop_t *loop);
/* Subscribers receiving changes, and how many were ever dropped. */
size_t rc_names_feed_subscribers(const rc_names_feed *f);
uint64_t rc_names_feed_dropped(const rc_names_feed *f);
/* Closes its timer (the node is stopping, before its processes end). */
void rc_names_feed_close(rc_names_feed *f);
/* After the loop has ended. */
void rc_names_feed_free(rc_names_feed *f);

#endif
