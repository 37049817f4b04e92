/* names_feed: keeps copies of the emitter-name table current on the BEAM
 * nodes that attach to this node, so retrieve_emitters/2 is answered there
 * from memory instead of by a round trip. The process registered
 * `reckon_cnode_names` answers the gen_server call {subscribe, Pid} with
 * {ok, [{{S, Sub, emitters}, Names}]}, the whole table, and from then on sends
 * Pid {'$reckon_names', {S, Sub, emitters}, Names} for every entry stored, as
 * it is stored: before the answer to the persist (or pool start) that stored
 * it, so a caller that has its answer finds the push already delivered on
 * its node. Subscribers are monitored and forgotten when they go; a node
 * holds at most a few, the node at most a few hundred. Loop thread only. */
#ifndef RC_NAMES_FEED_H
#define RC_NAMES_FEED_H

#include "naming/names_table.h"
#include "proc/procs.h"

typedef struct rc_names_feed rc_names_feed;

/* Registers the process and listens to the table; NULL on failure. */
rc_names_feed *rc_names_feed_start(rc_procs *ps, names_table *names);
size_t rc_names_feed_subscribers(const rc_names_feed *f);
/* After the loop has ended. */
void rc_names_feed_free(rc_names_feed *f);

#endif
