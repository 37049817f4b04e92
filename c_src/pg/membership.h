/* membership: the member table of one pg scope. Group (canonical term bytes)
 * -> array of member pids, duplicates kept (a pid joined twice is listed
 * twice, as pg does), so a uniformly random member is one array index away.
 * Arrays are sized exactly when the count is known (a sync), so groups and
 * members cost about 30 bytes per membership. Groups are created on first
 * join and freed when their last member leaves.
 * A peer going away (or a sync replacing its view) removes every member of
 * one node; when that node holds a few of a million memberships, this must
 * not cost a walk of the whole table. So a per-node index keeps, for each
 * node, the groups where it has members and how many: 10 to 32 bytes per
 * (node, group) pair and 8 to 12 per group, nothing per membership. It
 * changes with the table, and an add that cannot update it adds nothing.
 * Not thread-safe: the loop thread owns it. */
#ifndef RC_MEMBERSHIP_H
#define RC_MEMBERSHIP_H

#include "proc/cpid.h"

#include <stddef.h>
#include <stdint.h>

typedef struct pgm_table pgm_table;
typedef struct pgm_group pgm_group;

/* Called with the pids one operation removed from one group (before the
 * group may be freed). */
typedef void (*pgm_removed_fn)(void *ctx, const pgm_group *g, const rc_cpid *pids, size_t n);

pgm_table *pgm_new(void);
void pgm_free(pgm_table *t);

pgm_group *pgm_find(const pgm_table *t, const uint8_t *key, size_t len);
/* Adds n members to the group `key`, creating it if needed. `reserve` is a
 * hint of how many members the group will end up with (0 = unknown).
 * Returns the group, or NULL on allocation failure (nothing added). */
pgm_group *pgm_add(pgm_table *t, const uint8_t *key, size_t len, const rc_cpid *pids, size_t n,
                   size_t reserve);
/* Removes one occurrence of pid; 1 if it was a member, 0 if not. Frees the
 * group when it becomes empty: *g is then set to NULL. */
int pgm_remove_one(pgm_table *t, pgm_group **g, const rc_cpid *pid);
/* Removes every member whose node is `node`, calling cb per affected group
 * (in no particular order; cb must not change the table). Returns how many
 * memberships were removed. Costs that node's groups, not the table's. */
size_t pgm_remove_node(pgm_table *t, uint32_t node, pgm_removed_fn cb, void *ctx);
/* What the per-node index holds: the groups where `node` has members, and
 * how many of g's members are on `node`. */
size_t pgm_node_group_count(const pgm_table *t, uint32_t node);
size_t pgm_node_member_count(const pgm_table *t, uint32_t node, const pgm_group *g);

const uint8_t *pgm_group_key(const pgm_group *g, size_t *len);
const rc_cpid *pgm_group_members(const pgm_group *g, size_t *n);
/* Iteration: pass NULL first; NULL at the end. Do not free while iterating. */
pgm_group *pgm_next(const pgm_table *t, const pgm_group *prev);

size_t pgm_group_count(const pgm_table *t);
size_t pgm_member_count(const pgm_table *t);

#endif
