/* relay: the fan-out relays of BEAM nodes. The reckon_cnode application runs
 * one relay process on each BEAM node where it runs, joined to
 * {'$reckon_cnode', relays} in the default scope. A C emitter with subscribers
 * on such a node sends that relay one {'$reckon_relay', Group, Msg} per event
 * instead of Msg to each subscriber, and the relay hands Msg to Group's local
 * members: the node decodes one distribution message per event, not one per
 * subscriber. This module answers, during one fan-out, "which relay serves
 * this node, and is this the first member seen there?" from the current pg
 * view; a relay that leaves (or dies) drops out of the view, and its node
 * gets direct sends again. Loop thread only. */
#ifndef RC_RELAY_H
#define RC_RELAY_H

#include "pg/pg_scope.h"
#include "proc/cpid.h"

#include <ei.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rc_relays rc_relays;

rc_relays *rc_relays_new(rc_pg_scope *scope);
void rc_relays_free(rc_relays *r);

/* Starts one fan-out from the current view; the number of relays (0: every
 * send is direct, and rc_relays_route need not be asked). -1 on allocation
 * failure (then send directly). */
int rc_relays_begin(rc_relays *r);
/* The relay of `node` in this fan-out, or NULL. *first is 1 the first time
 * that node is asked since rc_relays_begin (send to the relay then). */
const rc_cpid *rc_relays_route(rc_relays *r, uint32_t node, int *first);

/* The message head for a relay: version byte, the tuple's head and tag;
 * the group term and the message (no version byte) follow. */
extern const uint8_t RC_RELAY_HEAD[];
extern const size_t RC_RELAY_HEAD_LEN;

#endif
