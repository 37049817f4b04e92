#include "transport/waitq.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

typedef struct waiting {
    bytebuf buf;
    uint64_t frames;
    uint64_t since_ms;
    struct waiting *older, *newer; /* by age, for rc_waitq_oldest */
    UT_hash_handle hh;
    char node[]; /* key */
} waiting;

struct rc_waitq {
    waiting *by_node;
    waiting *oldest, *newest;
    size_t max_nodes, max_bytes, total;
};

rc_waitq *rc_waitq_new(size_t max_nodes, size_t max_bytes)
{
    rc_waitq *q = calloc(1, sizeof *q);
    if (q != NULL) {
        q->max_nodes = max_nodes;
        q->max_bytes = max_bytes;
    }
    return q;
}

static waiting *find(const rc_waitq *q, const char *node)
{
    waiting *w = NULL;
    HASH_FIND_STR(q->by_node, node, w);
    return w;
}

static void forget(rc_waitq *q, waiting *w)
{
    HASH_DEL(q->by_node, w);
    if (w->older)
        w->older->newer = w->newer;
    else
        q->oldest = w->newer;
    if (w->newer)
        w->newer->older = w->older;
    else
        q->newest = w->older;
    q->total -= bytebuf_pending(&w->buf);
    bytebuf_free(&w->buf);
    free(w);
}

void rc_waitq_free(rc_waitq *q)
{
    if (q == NULL)
        return;
    while (q->oldest != NULL)
        forget(q, q->oldest);
    free(q);
}

int rc_waitq_put(rc_waitq *q, const char *node, uint64_t now_ms, const uint8_t *hdr,
                 size_t hdr_len, const struct iovec *parts, int nparts)
{
    size_t need = hdr_len;
    for (int i = 0; i < nparts; i++)
        need += parts[i].iov_len;
    waiting *w = find(q, node);
    int first = w == NULL;
    if (first) {
        if (HASH_COUNT(q->by_node) >= q->max_nodes)
            return RC_ESYSTEM_LIMIT;
        size_t nlen = strnlen(node, RC_WAITQ_NODE_MAX);
        if (nlen >= RC_WAITQ_NODE_MAX)
            return RC_EBADARG;
        w = calloc(1, sizeof *w + nlen + 1);
        if (w == NULL)
            return RC_ENOMEM;
        memcpy(w->node, node, nlen + 1);
        bytebuf_init(&w->buf, q->max_bytes);
        w->since_ms = now_ms;
    }
    size_t have = bytebuf_pending(&w->buf);
    int rc = need > q->max_bytes || have > q->max_bytes - need ? RC_EFULL
             : bytebuf_reserve(&w->buf, need) != 0           ? RC_ENOMEM
                                                              : 0;
    if (rc != 0) {
        if (first) {
            bytebuf_free(&w->buf);
            free(w);
        }
        return rc;
    }
    bytebuf_append(&w->buf, hdr, hdr_len);
    for (int i = 0; i < nparts; i++)
        bytebuf_append(&w->buf, parts[i].iov_base, parts[i].iov_len);
    w->frames++;
    q->total += need;
    if (first) {
        HASH_ADD_STR(q->by_node, node, w);
        w->older = q->newest;
        if (q->newest)
            q->newest->newer = w;
        else
            q->oldest = w;
        q->newest = w;
    }
    return first ? WAITQ_FIRST : WAITQ_QUEUED;
}

uint64_t rc_waitq_take(rc_waitq *q, const char *node, bytebuf *out)
{
    waiting *w = find(q, node);
    if (w == NULL)
        return 0;
    uint64_t frames = w->frames;
    size_t limit = out->limit;
    bytebuf_free(out);
    *out = w->buf;
    out->limit = limit;
    q->total -= bytebuf_pending(&w->buf);
    bytebuf_init(&w->buf, 0);
    forget(q, w);
    return frames;
}

uint64_t rc_waitq_drop(rc_waitq *q, const char *node)
{
    waiting *w = find(q, node);
    if (w == NULL)
        return 0;
    uint64_t frames = w->frames;
    forget(q, w);
    return frames;
}

size_t rc_waitq_bytes(const rc_waitq *q, const char *node)
{
    waiting *w = find(q, node);
    return w ? bytebuf_pending(&w->buf) : 0;
}

size_t rc_waitq_total_bytes(const rc_waitq *q) { return q->total; }
size_t rc_waitq_nodes(const rc_waitq *q) { return HASH_COUNT(q->by_node); }

int rc_waitq_oldest(const rc_waitq *q, uint64_t before_ms, char node[RC_WAITQ_NODE_MAX])
{
    if (q->oldest == NULL || q->oldest->since_ms >= before_ms)
        return 0;
    /* put kept the name shorter than RC_WAITQ_NODE_MAX */
    memcpy(node, q->oldest->node, strlen(q->oldest->node) + 1);
    return 1;
}
