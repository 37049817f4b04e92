/* bcast_queue: hands events from producer threads to the loop. Producers
 * append (target, event bytes) records to one mutex-protected buffer and
 * wake the loop with uv_async (which coalesces wake-ups); the loop swaps the
 * buffer out under the lock and broadcasts the whole batch without holding
 * it, so a producer pays one lock and one copy per event. When the queue
 * holds `max_bytes`, producers wait (back-pressure, nothing dropped) until
 * the loop has drained it or the queue is closed. */
#ifndef RC_BCAST_QUEUE_H
#define RC_BCAST_QUEUE_H

#include "util/err.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct bcast_queue bcast_queue;

/* Called on the loop thread for every queued event, in order. Returning
 * non-zero pauses draining before this event (it is offered again after
 * bcast_queue_resume): the node pauses while its sockets are backed up, so
 * memory stays bounded and producers feel the back-pressure. */
typedef int (*bcast_drain_fn)(void *ctx, const void *target, const uint8_t *event, size_t len);

bcast_queue *bcast_queue_new(uv_loop_t *loop, size_t max_bytes, bcast_drain_fn fn, void *ctx);
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
/* Loop thread: continues a paused drain. */
void bcast_queue_resume(bcast_queue *q);
int bcast_queue_paused(const bcast_queue *q);

#endif
