/* cpid: compact pids for tables that hold many of them. A pid is 16 bytes:
 * an interned node index (util/nodetab.h) and the three numbers. Readers and writers go straight between external-format
 * bytes and cpids (PID_EXT and NEW_PID_EXT in, NEW_PID_EXT out), bounded by
 * the buffer length. */
#ifndef RC_CPID_H
#define RC_CPID_H

#include "util/nodetab.h"

#include <ei.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rc_cpid {
    uint32_t node; /* index in the node table */
    uint32_t num;
    uint32_t serial;
    uint32_t creation;
} rc_cpid;


static inline int rc_cpid_eq(const rc_cpid *a, const rc_cpid *b)
{
    return a->node == b->node && a->num == b->num && a->serial == b->serial &&
           a->creation == b->creation;
}

/* Reads one pid at *idx (bounded by len). 0 or -1. */
int rc_cpid_read(rc_nodetab *t, const char *buf, int len, int *idx, rc_cpid *out);
/* Reads one pid at *idx that must be of `node` (an index already in t): 0
 * and *out if it is; 1 if it is of another node, whose name is then not
 * interned (a peer's message cannot grow the table with names); -1 if
 * malformed. *idx moves past the pid unless -1. */
int rc_cpid_read_of(const rc_nodetab *t, uint32_t node, const char *buf, int len, int *idx,
                    rc_cpid *out);
/* Appends NEW_PID_EXT. 0 or -1. */
int rc_cpid_write(const rc_nodetab *t, ei_x_buff *x, const rc_cpid *p);
/* Conversions with ei's erlang_pid (for the process layer). */
int rc_cpid_from_ei(rc_nodetab *t, const erlang_pid *in, rc_cpid *out);
int rc_cpid_to_ei(const rc_nodetab *t, const rc_cpid *in, erlang_pid *out);

/* A compact reference, 28 bytes where ei's erlang_ref is 1 KB: for what
 * keeps a monitor's reference for long (an emitter's of its subscriber). */
typedef struct rc_cref {
    uint32_t node; /* index in the node table */
    uint32_t creation;
    uint32_t n[5];
    uint8_t len;
} rc_cref;

int rc_cref_from_ei(rc_nodetab *t, const erlang_ref *in, rc_cref *out);
int rc_cref_to_ei(const rc_nodetab *t, const rc_cref *in, erlang_ref *out);
/* 1 if ref is the reference c stands for. */
int rc_cref_matches(const rc_nodetab *t, const rc_cref *c, const erlang_ref *ref);

#endif
