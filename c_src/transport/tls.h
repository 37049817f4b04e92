/* tls: TLS for distribution connections (OpenSSL), so the C node can join
 * clusters that run `-proto_dist inet_tls`: such a node speaks TLS from the
 * first byte on its distribution port (epmd stays plain), and the
 * distribution handshake and every frame travel inside the TLS session.
 *
 * Two phases, as for plain sockets (dist.h):
 *   - on a handshake thread, rc_tls_handshake runs the TLS handshake on the
 *     connected socket with a deadline (the socket is made non-blocking and
 *     waited on with poll, so a silent peer costs its own thread only), and
 *     rc_tls_write_all / rc_tls_read_exact then carry the distribution
 *     handshake;
 *   - on the loop thread, rc_tls_read / rc_tls_write never block: they say
 *     when the session needs the socket readable or writable first.
 * A session belongs to one thread at a time; the hand-off between them goes
 * through dist's done list, under its mutex. */
#ifndef RC_TLS_H
#define RC_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct rc_tls_config {
    const char *certfile;   /* PEM; this node's certificate (chain), both roles */
    const char *keyfile;    /* PEM; NULL: the key is in certfile */
    const char *cacertfile; /* PEM bundle the peer's certificate must chain to */
    int verify_peer;        /* 1 (default): refuse a peer without a valid certificate */
    const char *server_name; /* NULL: the host of the node name we dial; else the
                              * name a server's certificate must carry when we
                              * connect (also sent as SNI) */
    int min_version;        /* 12 or 13 (TLS 1.2 / 1.3); 0: 1.2 */
} rc_tls_config;

typedef struct rc_tls_ctx rc_tls_ctx;
typedef struct rc_tls rc_tls;

/* Loads the certificate, key and CA bundle; -1 with a reason in err (the
 * file and what is wrong with it). */
int rc_tls_ctx_new(rc_tls_ctx **out, const rc_tls_config *cfg, char *err, int errlen);
void rc_tls_ctx_free(rc_tls_ctx *ctx);

/* Handshake thread. Runs the TLS handshake on fd as server (accepting) or
 * client. A client checks the server's certificate against peer_host (the
 * host part of the node name it dials: a DNS name or an IP address), as
 * OTP's inet_tls_dist does, unless the config names the server
 * (server_name), when it checks that name instead, or peer_host is NULL.
 * NULL with a reason in err: the peer's certificate and why it was refused,
 * a peer that refused ours, a peer that does not speak TLS. fd is left
 * non-blocking and is not closed. */
rc_tls *rc_tls_handshake(rc_tls_ctx *ctx, int fd, int server, const char *peer_host,
                         uint64_t deadline_ms, char *err, int errlen);
/* Handshake thread; 0, or -1 with errno set (ETIMEDOUT at the deadline). */
int rc_tls_write_all(rc_tls *t, const void *buf, size_t n, uint64_t deadline_ms);
int rc_tls_read_exact(rc_tls *t, void *buf, size_t n, uint64_t deadline_ms);

/* Why the last handshake-thread call on t failed ("" if none did). */
const char *rc_tls_last_error(const rc_tls *t);

/* Loop thread. Bytes moved (> 0); RC_TLS_EOF when the peer closed;
 * RC_TLS_WANT_READ / RC_TLS_WANT_WRITE when the call must be repeated once
 * the socket is readable / writable (a read can need a write and the
 * reverse); RC_TLS_ERROR with a reason in why. A write given up on must be
 * repeated with at least the same bytes at the front of the buffer. */
#define RC_TLS_EOF 0
#define RC_TLS_ERROR (-1)
#define RC_TLS_WANT_READ (-2)
#define RC_TLS_WANT_WRITE (-3)
ssize_t rc_tls_read(rc_tls *t, void *buf, size_t n, char *why, int whylen);
ssize_t rc_tls_write(rc_tls *t, const void *buf, size_t n, char *why, int whylen);
/* 1 if decrypted bytes wait inside the session: the socket will not signal
 * them, so the reader must come back without waiting for it. */
int rc_tls_has_pending(const rc_tls *t);
/* Sends close_notify if the socket takes it now; never waits. */
void rc_tls_shutdown(rc_tls *t);
/* Frees the session; the socket stays open. NULL is fine. */
void rc_tls_free(rc_tls *t);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384", for the connection log line. */
const char *rc_tls_describe(const rc_tls *t, char *buf, size_t len);

#endif
