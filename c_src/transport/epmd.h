/* epmd: the two epmd requests a node needs, blocking with a deadline (call
 * them off the loop thread). The epmd port comes from ERL_EPMD_PORT like erl.
 * Registration keeps its socket open: epmd forgets the node when it closes. */
#ifndef RC_EPMD_H
#define RC_EPMD_H

#include <stdint.h>

uint16_t epmd_port(void);

/* Registers alive name `alive` listening on `port` as a hidden node.
 * On success returns the registration socket (keep it open) and the
 * 32-bit creation epmd assigned; -1 on failure (e.g. name taken). */
int epmd_register(const char *alive, uint16_t port, uint32_t *creation, uint64_t deadline_ms,
                  char *err, int errlen);

/* Looks up `alive` on `host`. Returns 0 and fills port/highest version, or -1. */
int epmd_lookup(const char *host, const char *alive, uint16_t *port, uint16_t *highest,
                uint64_t deadline_ms);

#endif
