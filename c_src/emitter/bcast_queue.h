/* bcast_queue: hands events from producer threads to the loop and
 * broadcasts them there. Producers append (target, event bytes) records to
 * one mutex-protected buffer and wake the loop with uv_async (which
 * coalesces wake-ups); the loop swaps the buffer out under the lock and
 * broadcasts the whole batch (rc_bcast_send) without holding it, so a
 * producer pays one lock and one copy per event. When the queue holds
 * `max_bytes`, producers wait (back-pressure, nothing dropped) until the
 * loop has drained it or the queue is closed. An event that went to a busy
 * connection pauses the draining until that connection alone is below its
 * low mark (rc_procs_still_busy, the transport's answer through the process
 * layer), as a BEAM sender waits on a busy port. */
#ifndef RC_BCAST_QUEUE_H
#define RC_BCAST_QUEUE_H

#include "emitter/broadcast.h"
#include "proc/procs.h"
#include "util/err.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct bcast_queue bcast_queue;

/* Targets are the bcast_target pointers producers push. */
bcast_queue *bcast_queue_new(uv_loop_t *loop, size_t max_bytes, rc_bcast *b, rc_procs *ps);
/* Any thread. RC_OK queued; RC_ESTOPPED closed, RC_ESYSTEM_LIMIT bigger
 * than the queue, or RC_ENOMEM. */
int bcast_queue_push(bcast_queue *q, const void *target, const uint8_t *event, size_t len);
/* Any thread but the loop's: waits until everything pushed before the call
 * has been handed to the connections. RC_OK, RC_ETIMEOUT, or RC_ESTOPPED
 * (closed first). */
int bcast_queue_flush(bcast_queue *q, unsigned timeout_ms);
/* Loop thread: drains what is queued, refuses further pushes, wakes waiters
 * and closes the async handle. The queue is freed by bcast_queue_free after
 * the loop has ended. */
void bcast_queue_close(bcast_queue *q);
void bcast_queue_free(bcast_queue *q);
uint64_t bcast_queue_processed(bcast_queue *q);

#endif
