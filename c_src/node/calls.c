/* calls: the cross-thread call queue. Another thread's rc_node_call puts a
 * call on the list, wakes the loop with an async handle and waits on its own
 * condition variable until the loop has run (or, when stopping, refused) it.
 * The list and the `stopping` flag are guarded by call_mu; everything else
 * belongs to the loop. */
#include "node/node.h"

#include <pthread.h>

typedef struct node_call {
    void (*fn)(rc_node *n, void *ctx);
    void *ctx;
    int done;
    int refused;
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
        c->refused = refuse;
        c->done = 1;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&n->call_mu);
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
        return -1;
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
    return c.refused ? -1 : 0;
}
