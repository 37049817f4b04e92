/* Test helper: a recorder for the process layer's transport. Each frame a
 * test's transport is handed (control term, then the message, in parts) is
 * kept joined behind the pass-through tag 112, as ctrl_decode reads it,
 * with the node it was for. */
#ifndef TEST_REC_FRAME_H
#define TEST_REC_FRAME_H

#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "util/nodetab.h"

/* The index of a node's connection: its name's in the node table. */
static inline uint32_t rec_node(rc_nodetab *t, const char *name)
{
    return rc_nodetab_intern(t, name, strlen(name));
}

static inline char *rec_frame_join(const struct iovec *parts, int nparts, size_t *len)
{
    size_t n = 1;
    for (int i = 0; i < nparts; i++)
        n += parts[i].iov_len;
    char *p = malloc(n);
    if (p == NULL)
        return NULL;
    p[0] = (char)112;
    size_t off = 1;
    for (int i = 0; i < nparts; i++) {
        memcpy(p + off, parts[i].iov_base, parts[i].iov_len);
        off += parts[i].iov_len;
    }
    *len = n;
    return p;
}

/* 1 if the frame carries a message after its control term. */
static inline int rec_frame_has_msg(const struct iovec *parts, int nparts)
{
    for (int i = 1; i < nparts; i++)
        if (parts[i].iov_len > 0)
            return 1;
    return 0;
}

#define REC_MAX_SENT 256

typedef struct rec_sent {
    char node[64];
    char *payload; /* 112 + ctrl + msg */
    size_t len;
} rec_sent;

typedef struct recorder {
    rec_sent s[REC_MAX_SENT];
    int n;
    rc_nodetab *nodes;
    char refuse_msgs_to[64]; /* test_pg_scope: frames with a message to it fail */
    int connected;           /* test_procs: sends fail while 0 */
} recorder;

/* Keeps one frame for `node`: 0, or -1 when full, the name too long or out
 * of memory (the callers assert on it). */
static inline int rec_put(recorder *r, const char *node, const struct iovec *parts, int nparts)
{
    if (r->n >= REC_MAX_SENT || strlen(node) >= sizeof r->s[0].node)
        return -1;
    rec_sent *s = &r->s[r->n];
    s->payload = rec_frame_join(parts, nparts, &s->len);
    if (s->payload == NULL)
        return -1;
    strcpy(s->node, node);
    r->n++;
    return 0;
}

static inline void rec_clear(recorder *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->s[i].payload);
    r->n = 0;
}

#endif
