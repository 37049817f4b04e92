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

#include <stddef.h>
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
#define DFLAG_DIST_HDR_ATOM_CACHE 0x2000ULL
#define DFLAG_SMALL_ATOM_TAGS 0x4000ULL
#define DFLAG_UTF8_ATOMS 0x10000ULL
#define DFLAG_MAP_TAG 0x20000ULL
#define DFLAG_BIG_CREATION 0x40000ULL
#define DFLAG_HANDSHAKE_23 0x1000000ULL
#define DFLAG_UNLINK_ID 0x2000000ULL
/* Stands for every flag of HS_MANDATORY_25 (a peer may send it instead). */
#define DFLAG_MANDATORY_25_DIGEST 0x4000000ULL
#define DFLAG_NAME_ME (0x2ULL << 32)
/* Full 32-bit pid ID and Serial, V4_PORT_EXT, references of up to 5 words. */
#define DFLAG_V4_NC (0x4ULL << 32)

/* What a peer must offer: OTP 25's mandatory set, plus what OTP 26 made
 * mandatory (V4_NC and UNLINK_ID). Every OTP 25 node offers all of it, and
 * OTP 26+ nodes refuse a peer without it, so we hold peers to the same. */
#define HS_MANDATORY_25                                                                      \
    (DFLAG_EXTENDED_REFERENCES | DFLAG_FUN_TAGS | DFLAG_EXTENDED_PIDS_PORTS |                \
     DFLAG_UTF8_ATOMS | DFLAG_NEW_FUN_TAGS | DFLAG_BIG_CREATION | DFLAG_NEW_FLOATS |         \
     DFLAG_MAP_TAG | DFLAG_EXPORT_PTR_TAG | DFLAG_BIT_BINARIES | DFLAG_HANDSHAKE_23)
#define HS_MANDATORY (HS_MANDATORY_25 | DFLAG_V4_NC | DFLAG_UNLINK_ID)

/* What the C node advertises: everything OTP 25-29 make mandatory plus
 * monitors (by pid and by name), SMALL_ATOM_TAGS and DIST_HDR_ATOM_CACHE.
 * Not PUBLISHED: the C node is hidden. DIST_HDR_ATOM_CACHE, when the peer
 * offers it too, puts a distribution header with cached atoms on every frame
 * both ways (dist_hdr.h): a BEAM receiver then resolves our atoms by index
 * instead of in its atom table. Not FRAGMENTS: peers send one message per
 * frame. Not SPAWN, ALIAS, ALTACT_SIG,
 * SEND_SENDER or EXIT_PAYLOAD: a peer then never sends SPAWN_REQUEST,
 * ALIAS_SEND, ALTACT_SIG_SEND, SEND_SENDER or the PAYLOAD_* operations, and
 * falls back to SEND, EXIT and MONITOR_P_EXIT, which the process layer
 * handles. */
#define RC_DIST_FLAGS                                                                        \
    (HS_MANDATORY | DFLAG_DIST_MONITOR | DFLAG_DIST_MONITOR_NAME | DFLAG_SMALL_ATOM_TAGS |      \
     DFLAG_DIST_HDR_ATOM_CACHE)

/* What an acceptor answers a peer that is connecting to it (its "status"). */
/* ALIVE: this node already has a connection to the peer; the peer says
 * whether that one is dead (true: replace it) or not (false: give up). */
typedef enum { HS_STATUS_OK = 0, HS_STATUS_OK_SIMULTANEOUS, HS_STATUS_NOK, HS_STATUS_ALIVE } hs_status;

typedef struct hs_config {
    const char *this_node; /* alive@host */
    uint32_t creation;
    const char *cookie;
    uint64_t flags;
    /* Acceptor only, may be NULL: decides the status for a peer, e.g. when
     * this node is connecting to that same peer at the same moment. */
    hs_status (*status_for)(void *ctx, const char *peer);
    /* Connector only, may be NULL: 1 if this node has (or is accepting) a
     * connection from the peer. A peer that answers `alive` is then told
     * false (keep that one) instead of true (replace it). */
    int (*has_connection)(void *ctx, const char *peer);
    void *status_ctx;
} hs_config;

typedef struct hs_result {
    char peer_node[HS_MAX_NODE];
    uint32_t peer_creation;
    uint64_t peer_flags;
    /* Set when the handshake failed over distribution flags: the mandatory
     * flags the peer lacks, or HS_REFUSED_BY_PEER when the peer refused us
     * (status not_allowed: it requires a flag we do not offer). */
    uint64_t missing_flags;
    /* Acceptor: answered alive and the peer said its old connection is
     * dead; the caller replaces the connection it has. */
    int replaces_existing;
} hs_result;

#define HS_REFUSED_BY_PEER UINT64_MAX

/* Writes the names of the flags in `flags` ("V4_NC, UNLINK_ID"), as OTP's
 * logs name them, truncated to fit. */
void handshake_flag_names(uint64_t flags, char *out, int outlen);

/* Where handshake messages go: a plain socket, or a TLS session over one
 * (transport/tls.h). Both calls block until done or the deadline; 0 or -1.
 * Messages carry a 2-byte length on plain TCP; a TLS distribution (OTP's
 * inet_tls_dist) frames them with 4 bytes, as it frames everything after. */
typedef struct hs_io {
    int len_bytes; /* 2 (or 0) or 4 */
    int (*write_all)(void *ctx, const void *buf, size_t n, uint64_t deadline_ms);
    int (*read_exact)(void *ctx, void *buf, size_t n, uint64_t deadline_ms);
    void *ctx;
} hs_io;

int handshake_connect_io(const hs_io *io, const hs_config *cfg, const char *expected_peer,
                         hs_result *out, uint64_t deadline_ms, char *err, int errlen);
int handshake_accept_io(const hs_io *io, const hs_config *cfg, hs_result *out,
                        uint64_t deadline_ms, char *err, int errlen);

/* The same on a plain socket. 0 on success; -1 with a reason in err. */
int handshake_connect(int fd, const hs_config *cfg, const char *expected_peer, hs_result *out,
                      uint64_t deadline_ms, char *err, int errlen);
int handshake_accept(int fd, const hs_config *cfg, hs_result *out, uint64_t deadline_ms,
                     char *err, int errlen);

/* md5(cookie ++ decimal(challenge)); exposed for unit tests. */
void handshake_digest(const char *cookie, uint32_t challenge, uint8_t digest[16]);

#endif
