/* nodetab: node names interned as small indexes. The node owns one table;
 * connections, compact pids and pg memberships name a node by its index, so
 * a send finds its connection by indexing an array, and a table of pids
 * stores 4 bytes per node name. Indexes are never reused (a node that comes
 * back gets its old index). Loop thread only. */
#ifndef RC_NODETAB_H
#define RC_NODETAB_H

#include <stddef.h>
#include <stdint.h>

#define RC_NODE_NONE UINT32_MAX /* no node: not found, or no memory */

typedef struct rc_nodetab rc_nodetab;

rc_nodetab *rc_nodetab_new(void);
void rc_nodetab_free(rc_nodetab *t);
/* Index of `name` (UTF-8, len bytes), adding it if new; RC_NODE_NONE on
 * allocation failure. */
uint32_t rc_nodetab_intern(rc_nodetab *t, const char *name, size_t len);
/* Index of `name` if it was interned, else RC_NODE_NONE. */
uint32_t rc_nodetab_find(const rc_nodetab *t, const char *name, size_t len);
/* Name of an index (NUL-terminated), or NULL. */
const char *rc_nodetab_name(const rc_nodetab *t, uint32_t idx);
size_t rc_nodetab_name_len(const rc_nodetab *t, uint32_t idx);

#endif
