/* calls: the cross-thread call queue. Another thread's rc_node_call puts a
 * call on the list, wakes the loop with an async handle and waits on its own
 * condition variable until the loop has run (or, when stopping, refused) it.
 * The list, the `stopping` flag and a call's done/refused/abandoned are
 * guarded by call_mu; everything else belongs to the loop.
 *
 * node_call_timed's caller may stop waiting: its call then lives on the
 * heap, is marked abandoned, and the loop frees it (and its context) once
 * it has run or refused it, since the caller is gone by then. */
#include "node/node.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

typedef struct node_call {
    void (*fn)(rc_node *n, void *ctx);
    void *ctx;
    int done;
    int refused;
    int abandoned; /* node_call_timed gave up: the loop frees call and ctx */
    pthread_cond_t cond;
    struct node_call *next;
} node_call;

/* Runs (or, when stopping, refuses) the calls queued by other threads. */
void node_calls_run(rc_node *n, int refuse)
{
    pthread_mutex_lock(&n->call_mu);
    node_call *list = n->calls;
    n->calls = NULL;
    pthread_mutex_unlock(&n->call_mu);
    while (list != NULL) {
        node_call *c = list;
        list = c->next;
        if (!refuse) {
            c->fn(n, c->ctx);
            rc_procs_flush(n->procs); /* what the call sent between C processes */
        }
        pthread_mutex_lock(&n->call_mu);
        int abandoned = c->abandoned;
        c->refused = refuse;
        c->done = 1;
        if (!abandoned)
            pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&n->call_mu);
        if (abandoned) {
            pthread_cond_destroy(&c->cond);
            free(c->ctx);
            free(c);
        }
    }
}

void node_calls_on_async(uv_async_t *a) { node_calls_run(a->data, 0); }

int rc_node_call(rc_node *n, void (*fn)(rc_node *n, void *ctx), void *ctx)
{
    node_call c = {.fn = fn, .ctx = ctx};
    pthread_cond_init(&c.cond, NULL);
    pthread_mutex_lock(&n->call_mu);
    if (n->stopping) {
        pthread_mutex_unlock(&n->call_mu);
        pthread_cond_destroy(&c.cond);
        return RC_ESTOPPED;
    }
    c.next = n->calls;
    n->calls = &c;
    pthread_mutex_unlock(&n->call_mu);
    uv_async_send(&n->call_async);
    pthread_mutex_lock(&n->call_mu);
    while (!c.done)
        pthread_cond_wait(&c.cond, &n->call_mu);
    pthread_mutex_unlock(&n->call_mu);
    pthread_cond_destroy(&c.cond);
    return c.refused ? RC_ESTOPPED : RC_OK;
}

int node_call_timed(rc_node *n, void (*fn)(rc_node *n, void *ctx), void *ctx, unsigned timeout_ms)
{
    node_call *c = calloc(1, sizeof *c);
    if (c == NULL)
        return RC_EFAIL;
    c->fn = fn;
    c->ctx = ctx;
    /* A monotonic deadline: a clock step must not cut the wait short or
     * stretch it. */
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) {
        free(c);
        return RC_EFAIL;
    }
    int e = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (e == 0)
        e = pthread_cond_init(&c->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (e != 0) {
        free(c);
        return RC_EFAIL;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(timeout_ms / 1000);
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&n->call_mu);
    if (n->stopping) {
        pthread_mutex_unlock(&n->call_mu);
        pthread_cond_destroy(&c->cond);
        free(c);
        return RC_ESTOPPED;
    }
    c->next = n->calls;
    n->calls = c;
    pthread_mutex_unlock(&n->call_mu);
    uv_async_send(&n->call_async);
    pthread_mutex_lock(&n->call_mu);
    while (!c->done) {
        if (pthread_cond_timedwait(&c->cond, &n->call_mu, &deadline) == ETIMEDOUT && !c->done) {
            c->abandoned = 1;
            pthread_mutex_unlock(&n->call_mu);
            return RC_ETIMEOUT;
        }
    }
    int refused = c->refused;
    pthread_mutex_unlock(&n->call_mu);
    pthread_cond_destroy(&c->cond);
    free(c);
    return refused ? RC_ESTOPPED : RC_OK;
}
