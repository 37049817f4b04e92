/* conn_io: a connection's byte stream on the loop thread, plain TCP or TLS
 * behind one small interface, so that the connection code never asks which
 * it has. Reads and writes never block. A TLS session can need the socket
 * the other way round (a read that must first write, a write that must
 * first read) and can hold decrypted input the socket will not signal
 * again: the predicates below say so, and are always 0 on plain TCP.
 * The stream owns the socket: conn_io_free closes it. */
#ifndef RC_CONN_IO_H
#define RC_CONN_IO_H

#include "transport/tls.h"

#include <stddef.h>
#include <sys/types.h>

typedef struct conn_io conn_io;

/* What a read or write returns instead of a byte count (> 0). */
#define CONN_IO_EOF 0      /* read: the peer closed */
#define CONN_IO_ERROR (-1) /* the stream is broken; why says how */
#define CONN_IO_AGAIN (-2) /* wait for the socket (see the predicates) */

/* Takes fd and tls (NULL: plain TCP). NULL if out of memory; then fd and
 * tls are still the caller's. */
conn_io *conn_io_new(int fd, rc_tls *tls);
/* Frees the session and closes the socket. NULL is fine. */
void conn_io_free(conn_io *io);
/* Frees the stream alone: the socket and the session are the caller's
 * again (a connection that could not be set up). NULL is fine. */
void conn_io_forget(conn_io *io);

ssize_t conn_io_read(conn_io *io, void *buf, size_t n, char *why, int whylen);
/* Writes as much of buf as the socket takes now. */
ssize_t conn_io_write(conn_io *io, const void *buf, size_t n, char *why, int whylen);
/* The last read waits for writability / the last write for readability. */
int conn_io_read_wants_write(const conn_io *io);
int conn_io_write_wants_read(const conn_io *io);
/* Input is waiting inside the stream: the reader must come back without
 * waiting for the socket. */
int conn_io_has_pending(const conn_io *io);
/* The last read took less than asked because the socket held no more:
 * reading again at once would only say AGAIN (never set on TLS, whose reads
 * end with a record). */
int conn_io_read_drained(const conn_io *io);
/* Input is waiting, in the socket or inside the stream. */
int conn_io_has_input(const conn_io *io);
/* Says goodbye if the socket takes it now (TLS close_notify); never waits. */
void conn_io_shutdown(conn_io *io);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384", or NULL on plain TCP. */
const char *conn_io_describe(const conn_io *io, char *buf, size_t len);

#endif
