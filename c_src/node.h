/* node: the node context. Owns the loop, the logger and every layer
 * (distribution transport, processes, cluster, names table, request
 * server) and wires the transport's callbacks to the layers above it. All
 * mutable state of a running node lives here. */
#ifndef RC_NODE_H
#define RC_NODE_H

#include "reckon_cnode.h"

#endif
