/* net_kernel: the process registered `net_kernel` on the C node, a stand-in
 * for the BEAM's that answers {is_auth, Node} calls with `yes`, so that
 * net_adm:ping/1 gives pong. Every other message is ignored. */
#ifndef RC_NET_KERNEL_H
#define RC_NET_KERNEL_H

#include "proc/procs.h"

/* Spawns and registers it: 0, or -1. */
int rc_net_kernel_start(rc_procs *ps);

#endif
