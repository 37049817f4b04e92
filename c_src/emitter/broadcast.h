/* broadcast: reckon-db's broadcast, natively. A target (Store, Sub) is
 * resolved once: its topic, its group {Store, Sub, emitters} in canonical
 * form, and the two message heads. A broadcast then picks a uniformly random
 * member of the group (O(1): one index into the member array) and sends
 * {forward_to_local, Topic, Event} if the member is on the asking node, else
 * {broadcast, Topic, Event}. The Event is never decoded: its bytes follow
 * the head into the connection's output buffer. Loop thread only. */
#ifndef RC_BROADCAST_H
#define RC_BROADCAST_H

#include "pg/pg_scope.h"
#include "proc/procs.h"
#include "util/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct bcast_target bcast_target;
typedef struct rc_bcast rc_bcast;

typedef struct rc_bcast_stats {
    uint64_t broadcasts, no_emitters, send_failed;
} rc_bcast_stats;

/* NULL with *err = RC_EBADARG for a store with a character > 255 (badarg,
 * as topic/2) or RC_ENOMEM. Thread-safe (pure). */
bcast_target *bcast_target_new(const uint8_t *store_utf8, size_t store_len, const uint8_t *sub,
                               size_t sub_len, int *err);
void bcast_target_free(bcast_target *t);
const uint8_t *bcast_target_topic(const bcast_target *t, size_t *len);

rc_bcast *rc_bcast_new(rc_procs *ps, rc_pg_scope *scope, rc_nodetab *nodes);
void rc_bcast_free(rc_bcast *b);
/* RC_OK sent, RC_ENO_EMITTERS, or RC_EFAIL: the send was dropped (counted). */
int rc_bcast_send(rc_bcast *b, const bcast_target *t, uint32_t asking_node, const uint8_t *event,
                  size_t len);
const rc_bcast_stats *rc_bcast_get_stats(const rc_bcast *b);

#endif
