#include "emitter/bcast_queue.h"

#include "util/bytebuf.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Record: target pointer, u32 length, bytes. */
#define REC_HDR (sizeof(void *) + sizeof(uint32_t))

struct bcast_queue {
    pthread_mutex_t mu;
    pthread_cond_t space;   /* producers wait here while the queue is full */
    pthread_cond_t drained; /* flushers wait here */
    bytebuf inbox;          /* filled by producers */
    bytebuf work;           /* owned by the loop while draining */
    uint64_t pushed, processed;
    size_t max_bytes;
    int closed;
    int closing; /* the node stops: what is queued goes out, busy or not */
    int paused;
    uv_async_t async;
    uv_check_t resume_check;
    rc_bcast *bcast;
    rc_procs *ps;
    /* The busy destination producers wait on (RC_NODE_NONE: none). */
    uint32_t waits_on;
};

/* Producers may outrun the sockets. As a BEAM process waits on a busy
 * distribution port, the queue pauses (and producers block on it) once an
 * event went to a busy connection, until that connection alone drains;
 * events to other nodes wait behind it, in order, as they would behind one
 * BEAM sender. Memory stays bounded by the queue and the busy mark. */
static int send_one(bcast_queue *q, const void *target, const uint8_t *event, size_t len)
{
    if (q->waits_on != RC_NODE_NONE && !q->closing)
        return 1;
    /* Asked by this node: a member that is a C process here gets forward_to_local. */
    (void)rc_bcast_send(q->bcast, target, 0, event, len);
    q->waits_on = rc_procs_take_busy_hit(q->ps);
    return 0;
}

/* Processes `work` from its offset; 0 when it is used up, 1 if paused. */
static int drain_work(bcast_queue *q)
{
    uint64_t n = 0;
    int paused = 0;
    const uint8_t *p = q->work.data + q->work.off;
    const uint8_t *end = q->work.data + q->work.len;
    while ((size_t)(end - p) >= REC_HDR) {
        const void *target;
        uint32_t len;
        memcpy(&target, p, sizeof target);
        memcpy(&len, p + sizeof target, sizeof len);
        if (send_one(q, target, p + REC_HDR, len) != 0) {
            paused = 1;
            break;
        }
        p += REC_HDR + len;
        n++;
    }
    q->work.off = (size_t)(p - q->work.data);
    if (!paused)
        q->work.off = q->work.len = 0;
    pthread_mutex_lock(&q->mu);
    q->processed += n;
    pthread_cond_broadcast(&q->drained);
    pthread_mutex_unlock(&q->mu);
    return paused;
}

static void drain(bcast_queue *q)
{
    q->paused = 0;
    if (bytebuf_pending(&q->work) > 0 && drain_work(q)) {
        q->paused = 1;
        return;
    }
    for (;;) {
        pthread_mutex_lock(&q->mu);
        if (bytebuf_pending(&q->inbox) == 0) {
            pthread_mutex_unlock(&q->mu);
            return;
        }
        bytebuf tmp = q->inbox;
        q->inbox = q->work;
        q->work = tmp;
        pthread_cond_broadcast(&q->space);
        pthread_mutex_unlock(&q->mu);
        if (drain_work(q)) {
            q->paused = 1;
            return;
        }
    }
}

static void on_async(uv_async_t *a)
{
    bcast_queue *q = a->data;
    if (!q->paused) /* a paused queue resumes once its destination drained */
        drain(q);
}

/* After each loop turn's I/O: the destination we wait on may have drained. */
static void on_resume_check(uv_check_t *h)
{
    bcast_queue *q = h->data;
    if (q->waits_on == RC_NODE_NONE || rc_procs_still_busy(q->ps, q->waits_on))
        return;
    q->waits_on = RC_NODE_NONE;
    if (q->paused)
        drain(q);
}

bcast_queue *bcast_queue_new(uv_loop_t *loop, size_t max_bytes, rc_bcast *b, rc_procs *ps)
{
    bcast_queue *q = calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->space, &ca);
    pthread_cond_init(&q->drained, &ca);
    pthread_condattr_destroy(&ca);
    bytebuf_init(&q->inbox, 0);
    bytebuf_init(&q->work, 0);
    q->max_bytes = max_bytes;
    q->bcast = b;
    q->ps = ps;
    q->waits_on = RC_NODE_NONE;
    if (uv_async_init(loop, &q->async, on_async) != 0) {
        bcast_queue_free(q);
        return NULL;
    }
    q->async.data = q;
    uv_check_init(loop, &q->resume_check);
    q->resume_check.data = q;
    uv_check_start(&q->resume_check, on_resume_check);
    return q;
}

int bcast_queue_push(bcast_queue *q, const void *target, const uint8_t *event, size_t len)
{
    if (len > UINT32_MAX || len + REC_HDR > q->max_bytes)
        return RC_ESYSTEM_LIMIT;
    pthread_mutex_lock(&q->mu);
    while (!q->closed && bytebuf_pending(&q->inbox) + len + REC_HDR > q->max_bytes)
        pthread_cond_wait(&q->space, &q->mu);
    int rc = q->closed ? RC_ESTOPPED
             : bytebuf_reserve(&q->inbox, REC_HDR + len) != 0 ? RC_ENOMEM
                                                               : RC_OK;
    if (rc != RC_OK) {
        pthread_mutex_unlock(&q->mu);
        return rc;
    }
    int was_empty = bytebuf_pending(&q->inbox) == 0;
    uint32_t l32 = (uint32_t)len;
    bytebuf_append(&q->inbox, &target, sizeof target);
    bytebuf_append(&q->inbox, &l32, sizeof l32);
    bytebuf_append(&q->inbox, event, len);
    q->pushed++;
    pthread_mutex_unlock(&q->mu);
    /* uv_async_send coalesces, but skipping it when the loop already has
     * work pending saves a syscall per event under load. */
    if (was_empty)
        uv_async_send(&q->async);
    return RC_OK;
}

int bcast_queue_flush(bcast_queue *q, unsigned timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&q->mu);
    uint64_t want = q->pushed;
    int rc = RC_OK;
    while (q->processed < want && !q->closed && rc == RC_OK) {
        if (pthread_cond_timedwait(&q->drained, &q->mu, &dl) == ETIMEDOUT)
            rc = RC_ETIMEOUT;
    }
    if (q->processed < want && rc == RC_OK)
        rc = RC_ESTOPPED;
    pthread_mutex_unlock(&q->mu);
    return rc;
}

uint64_t bcast_queue_processed(bcast_queue *q)
{
    pthread_mutex_lock(&q->mu);
    uint64_t n = q->processed;
    pthread_mutex_unlock(&q->mu);
    return n;
}

void bcast_queue_close(bcast_queue *q)
{
    /* Last chance for queued events: they go out without waiting on a
     * busy destination. */
    q->closing = 1;
    drain(q);
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->space);
    pthread_cond_broadcast(&q->drained);
    pthread_mutex_unlock(&q->mu);
    uv_close((uv_handle_t *)&q->async, NULL);
    uv_check_stop(&q->resume_check);
    uv_close((uv_handle_t *)&q->resume_check, NULL);
}

void bcast_queue_free(bcast_queue *q)
{
    if (q == NULL)
        return;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->space);
    pthread_cond_destroy(&q->drained);
    bytebuf_free(&q->inbox);
    bytebuf_free(&q->work);
    free(q);
}
