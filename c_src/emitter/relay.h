/* relay: the fan-out relays of BEAM nodes. The reckon_cnode application runs
 * one relay process on each BEAM node where it runs, joined to
 * {'$reckon_cnode', relays, 2} in the default scope. A C emitter with
 * subscribers on such a node sends that relay one
 * {'$reckon_relay', Sender, Group, Msg} per event instead of Msg to each
 * subscriber, and the relay hands Msg to Group's local members: the node
 * decodes one distribution message per event, not one per subscriber. This
 * module answers, during one fan-out, "which relay serves this node, and is
 * this the first member seen there?" from the current pg view; a relay that
 * leaves (or dies) drops out of the view, and its node gets direct sends
 * again.
 *
 * Relay-lost accounting. Events still in a relay's mailbox die with it. So
 * this module counts the messages handed to each relay, and the relay counts
 * the ones it has handled, per Sender (this module's own process: its pid
 * names this node and its incarnation), in a table its node's supervisor
 * owns, which outlives the relay. The first message to a relay also
 * monitors it. When the relay dies (any DOWN reason but noconnection), its
 * node's `rex` is asked reckon_cnode_relay:handled(Relay, Sender); the
 * difference sent - handled is counted in relay_lost and logged at warning
 * level (rate-limited) with the node, the count and the store and topic of
 * the last of them. Messages from this node reach a relay in the order sent
 * (one connection) and a relay handles them in order, so the lost ones are
 * the last ones sent: the last one is certainly among them. An answer other
 * than a count (the node restarted and no longer knows the relay) counts
 * the messages sent to it in relay_unaccounted. A relay whose connection is
 * lost (DOWN noconnection) is forgotten uncounted: its node, not its
 * mailbox, is what went, and it may still be running and delivering.
 *
 * The group differs from the first version's {'$reckon_cnode', relays}
 * (whose relays took {'$reckon_relay', Group, Msg} and counted nothing) so
 * that a relay of an older application, which would drop the new shape
 * uncounted, is never sent it: its node gets direct sends.
 *
 * Bounds: at most RC_RELAYS_TRACKED relays are accounted at once (a peer can
 * put any number of pids in the group); beyond that a relay is used but not
 * accounted, and that is logged. Loop thread only. Free after the process
 * table (the accounting process's context is this structure). */
#ifndef RC_RELAY_H
#define RC_RELAY_H

#include "pg/pg_scope.h"
#include "proc/cpid.h"
#include "proc/procs.h"

#include <ei.h>
#include <stddef.h>
#include <stdint.h>

#define RC_RELAYS_TRACKED 1024

typedef struct rc_relays rc_relays;

typedef struct rc_relays_stats {
    /* relay messages sent to relays that died before handling them */
    uint64_t lost;
    /* relay messages sent to relays that died on a node that could not
     * say how many it handled */
    uint64_t unaccounted;
} rc_relays_stats;

/* ps may be NULL: relays are then routed to but nothing is accounted (and
 * rc_relays_head is NULL: no relay is used). */
rc_relays *rc_relays_new(rc_pg_scope *scope, rc_procs *ps, rc_nodetab *nodes);
void rc_relays_free(rc_relays *r);

/* Starts one fan-out from the current view; the number of relays (0: every
 * send is direct, and rc_relays_route need not be asked). -1 on allocation
 * failure (then send directly). */
int rc_relays_begin(rc_relays *r);
/* The relay of `node` in this fan-out, or NULL. *first is 1 the first time
 * that node is asked since rc_relays_begin (send to the relay then). */
const rc_cpid *rc_relays_route(rc_relays *r, uint32_t node, int *first);

/* The message head for a relay: version byte, {'$reckon_relay', Sender, ;
 * the group term and the message (no version byte) follow. NULL when
 * relays cannot be used (no accounting process). */
const uint8_t *rc_relays_head(const rc_relays *r, size_t *len);
/* One message for `relay` was handed to the transport; `group` is the
 * canonical {Store, Topic, subscribers} it was for (kept for the log). */
void rc_relays_sent(rc_relays *r, const rc_cpid *relay, const uint8_t *group, size_t glen);
const rc_relays_stats *rc_relays_get_stats(const rc_relays *r);

#endif
