/* names_persist: the one queue of durable writes to the emitter-name table
 * (--data-dir). Everything whose answer promises names on disk goes through
 * it: persist_emitters and the start of an emitter pool. One queue keeps the
 * writes in the order they were asked for, so disk and memory end with the
 * same list when two writes race for one key; each write (an LMDB commit
 * with fsync, milliseconds) runs on libuv's thread pool, one at a time, never
 * on the loop.
 *
 * Once a write is synced, the entry goes into the names table on the loop
 * thread and then the submitter's callback runs, with the table's copy of the
 * list. A failed write is logged here, once, with its cause; the table is then
 * left as it was and the callback only passes the error on.
 *
 * Loop thread only, except that the work itself runs on the pool. */
#ifndef RC_NAMES_PERSIST_H
#define RC_NAMES_PERSIST_H

#include "naming/names_store.h"
#include "naming/names_table.h"
#include "util/log.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct names_persist names_persist;

/* Called once per submitted write, on the loop thread. rc is RC_OK when the
 * list is on disk and in the table (enc/enc_len: the table's copy, valid
 * until the key is next replaced); otherwise RC_ESTORAGE, with the cause in
 * the store's own words (valid during the call; already logged): a failed
 * write, no memory for the table's entry (it is on disk, so a restart loads
 * it), or a write that never ran. The store's own codes stay in naming/. */
typedef void (*names_persist_fn)(void *ctx, int rc, const char *cause, const uint8_t *enc,
                                 size_t enc_len);

/* NULL if out of memory. The store and table must outlive the queue. */
names_persist *names_persist_new(uv_loop_t *loop, const rc_logger *lg, names_store *store,
                                 names_table *table);

/* Queues the list enc (taken over in every case: the queue frees it) for
 * (store, sub). 0 when queued: done will be called once, later (or before
 * this returns, with ECANCELED, if libuv refuses the work: so set up
 * whatever done uses before submitting); -1 if out of memory: done is not
 * called. */
int names_persist_submit(names_persist *q, const uint8_t *store, size_t store_len,
                         const uint8_t *sub, size_t sub_len, uint8_t *enc, size_t enc_len,
                         names_persist_fn done, void *ctx);

/* Writes queued or running, for tests and stats. */
size_t names_persist_pending(const names_persist *q);

/* After the loop has ended (nothing is running then). Writes that never ran
 * get their callback with ECANCELED first, so free the queue before what
 * those callbacks touch. NULL is fine. */
void names_persist_free(names_persist *q);

#endif
