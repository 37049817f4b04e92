/* rmon: the monitors that remote processes hold on this node's C processes,
 * in one open-addressing table keyed by the monitor reference. A monitor
 * costs one 56-byte slot (the table is kept between 1/8 and 3/4 full, and
 * shrinks as monitors go), add and remove are O(1), and each watcher node
 * may hold at most a given number, so no peer can grow the node without
 * bound. References are hashed with a per-table random seed, so a peer
 * cannot aim its references at one probe chain. Loop thread only. */
#ifndef RC_RMON_H
#define RC_RMON_H

#include "proc/cpid.h"
#include "util/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rmon_entry {
    uint32_t ref[5];
    uint32_t ref_creation;
    uint32_t ref_node; /* node index of the reference */
    uint8_t ref_len;
    uint8_t by_name;   /* set up as {Name, Node}: DOWN names the process */
    uint8_t used;      /* slot in use (the table's own) */
    rc_cpid watcher;
    uint64_t target;   /* key of the monitored C process */
} rmon_entry;

typedef struct rmon_table rmon_table;

rmon_table *rmon_new(void);
void rmon_free(rmon_table *t);
/* RC_OK added; RC_ESYSTEM_LIMIT refused (the watcher's node holds
 * cap_per_node already); RC_ENOMEM. A reference already present is
 * replaced. */
int rmon_add(rmon_table *t, const rmon_entry *e, uint32_t cap_per_node);
/* Removes the monitor of that reference (ref, ref_len, ref_creation,
 * ref_node of key); 1 and a copy in *out if there was one, else 0. */
int rmon_remove(rmon_table *t, const rmon_entry *key, rmon_entry *out);
/* Removes every monitor for which match(ctx, e) is true, calling gone(ctx,
 * e) for each, in one pass. */
void rmon_remove_if(rmon_table *t, int (*match)(void *ctx, const rmon_entry *e),
                    void (*gone)(void *ctx, const rmon_entry *e), void *ctx);
size_t rmon_count(const rmon_table *t);
/* Monitors held by watchers of one node. */
uint32_t rmon_count_node(const rmon_table *t, uint32_t node);

#endif
