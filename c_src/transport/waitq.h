/* waitq: frames for nodes that have no connection yet. A send to such a node
 * starts a connection, as a BEAM sender's auto-connect does, and its frames
 * wait here in order until the connection is up (they then go out ahead of
 * anything else) or cannot be made (they are dropped and counted by the
 * caller). Each node's queue holds at most max_bytes and at most max_nodes
 * nodes wait at once, so destinations that never answer cost bounded memory
 * and one of them cannot take the room of another. Loop thread only. */
#ifndef RC_WAITQ_H
#define RC_WAITQ_H

#include "util/bytebuf.h"
#include "util/err.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct rc_waitq rc_waitq;

/* The longest node name a queue keeps, its terminating NUL included. */
#define RC_WAITQ_NODE_MAX 256

/* rc_waitq_put's results besides the errors (RC_EFULL: that node's queue
 * holds max_bytes already; RC_ESYSTEM_LIMIT: max_nodes nodes are waiting;
 * RC_EBADARG: a name of RC_WAITQ_NODE_MAX bytes or more; RC_ENOMEM). */
enum {
    WAITQ_QUEUED = 0, /* appended behind earlier frames of that node */
    WAITQ_FIRST = 1   /* appended; the node had nothing waiting (connect now) */
};

rc_waitq *rc_waitq_new(size_t max_nodes, size_t max_bytes);
void rc_waitq_free(rc_waitq *q);

/* Appends one frame: `hdr` (its length prefix and tag) then the parts. */
int rc_waitq_put(rc_waitq *q, const char *node, uint64_t now_ms, const uint8_t *hdr,
                 size_t hdr_len, const struct iovec *parts, int nparts);
/* Hands the node's frames over: *out (an empty buffer) takes the queued
 * bytes, and the queue is forgotten. The number of frames, 0 if none. */
uint64_t rc_waitq_take(rc_waitq *q, const char *node, bytebuf *out);
/* Forgets the node's queue; the number of frames dropped. */
uint64_t rc_waitq_drop(rc_waitq *q, const char *node);
/* Bytes waiting for that node (0 if none). */
size_t rc_waitq_bytes(const rc_waitq *q, const char *node);
size_t rc_waitq_total_bytes(const rc_waitq *q);
size_t rc_waitq_nodes(const rc_waitq *q);
/* The node that has waited longest, if it has waited since before
 * `before_ms`: its name copied into `node`, and 1; 0 if there is none. A
 * copy, because the usual next step drops that node's queue, and with it
 * the queue's own copy of the name. */
int rc_waitq_oldest(const rc_waitq *q, uint64_t before_ms, char node[RC_WAITQ_NODE_MAX]);

#endif
