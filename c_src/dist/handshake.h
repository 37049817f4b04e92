/* handshake: the distribution handshake (protocol version 6, OTP 23+), both
 * as initiator and as acceptor, blocking with a deadline on a connected
 * socket: run it off the loop thread. We write our own instead of using
 * ei_connect/ei_accept because ei does not advertise DFLAG_DIST_MONITOR_NAME,
 * and without it a BEAM never sends MONITOR_P for `{Name, CNode}`, so a
 * gen_server:call to a missing name on the C node would hang until timeout
 * instead of failing with noproc. The cookie is compared in constant time and
 * never appears in an error text. */
#ifndef RC_HANDSHAKE_H
#define RC_HANDSHAKE_H

#include <stdint.h>

#define HS_MAX_NODE 256

/* Distribution flags (erts dist.h numbering). */
#define DFLAG_PUBLISHED 0x1ULL
#define DFLAG_EXTENDED_REFERENCES 0x4ULL
#define DFLAG_DIST_MONITOR 0x8ULL
#define DFLAG_FUN_TAGS 0x10ULL
#define DFLAG_DIST_MONITOR_NAME 0x20ULL
#define DFLAG_NEW_FUN_TAGS 0x80ULL
#define DFLAG_EXTENDED_PIDS_PORTS 0x100ULL
#define DFLAG_EXPORT_PTR_TAG 0x200ULL
#define DFLAG_BIT_BINARIES 0x400ULL
#define DFLAG_NEW_FLOATS 0x800ULL
#define DFLAG_SMALL_ATOM_TAGS 0x4000ULL
#define DFLAG_UTF8_ATOMS 0x10000ULL
#define DFLAG_MAP_TAG 0x20000ULL
#define DFLAG_BIG_CREATION 0x40000ULL
#define DFLAG_HANDSHAKE_23 0x1000000ULL
#define DFLAG_UNLINK_ID 0x2000000ULL

/* What the C node advertises: everything OTP 25 makes mandatory plus monitors
 * (by pid and by name) and UNLINK_ID. Not PUBLISHED: the C node is hidden.
 * Not DIST_HDR_ATOM_CACHE or FRAGMENTS: peers then send plain pass-through
 * frames, one message per frame. */
#define RC_DIST_FLAGS                                                                        \
    (DFLAG_EXTENDED_REFERENCES | DFLAG_DIST_MONITOR | DFLAG_FUN_TAGS |                       \
     DFLAG_DIST_MONITOR_NAME | DFLAG_NEW_FUN_TAGS | DFLAG_EXTENDED_PIDS_PORTS |              \
     DFLAG_EXPORT_PTR_TAG | DFLAG_BIT_BINARIES | DFLAG_NEW_FLOATS | DFLAG_SMALL_ATOM_TAGS |  \
     DFLAG_UTF8_ATOMS | DFLAG_MAP_TAG | DFLAG_BIG_CREATION | DFLAG_HANDSHAKE_23 |            \
     DFLAG_UNLINK_ID)

/* What an acceptor answers a peer that is connecting to it (its "status"). */
typedef enum { HS_STATUS_OK = 0, HS_STATUS_OK_SIMULTANEOUS, HS_STATUS_NOK } hs_status;

typedef struct hs_config {
    const char *this_node; /* alive@host */
    uint32_t creation;
    const char *cookie;
    uint64_t flags;
    /* Acceptor only, may be NULL: decides the status for a peer, e.g. when
     * this node is connecting to that same peer at the same moment. */
    hs_status (*status_for)(void *ctx, const char *peer);
    void *status_ctx;
} hs_config;

typedef struct hs_result {
    char peer_node[HS_MAX_NODE];
    uint32_t peer_creation;
    uint64_t peer_flags;
} hs_result;

/* 0 on success; -1 with a reason in err. */
int handshake_connect(int fd, const hs_config *cfg, const char *expected_peer, hs_result *out,
                      uint64_t deadline_ms, char *err, int errlen);
int handshake_accept(int fd, const hs_config *cfg, hs_result *out, uint64_t deadline_ms,
                     char *err, int errlen);

/* md5(cookie ++ decimal(challenge)); exposed for unit tests. */
void handshake_digest(const char *cookie, uint32_t challenge, uint8_t digest[16]);

#endif
