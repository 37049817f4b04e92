#include "transport/conn_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

/* One table per kind of stream, as Redis's ConnectionType: the callers see
 * only conn_io_*. */
typedef struct conn_io_type {
    ssize_t (*read)(conn_io *io, void *buf, size_t n, char *why, int whylen);
    ssize_t (*write)(conn_io *io, const void *buf, size_t n, char *why, int whylen);
    int (*has_pending)(const conn_io *io);
    void (*shutdown)(conn_io *io);
    const char *(*describe)(const conn_io *io, char *buf, size_t len);
} conn_io_type;

struct conn_io {
    const conn_io_type *type;
    int fd;
    rc_tls *tls;
    int read_wants_write;
    int write_wants_read;
    int drained;
};

/* ------------------------------------------------------------- plain TCP */

static ssize_t plain_read(conn_io *io, void *buf, size_t n, char *why, int whylen)
{
    for (;;) {
        ssize_t r = read(io->fd, buf, n);
        io->drained = r > 0 && (size_t)r < n;
        if (r > 0)
            return r;
        if (r == 0)
            return CONN_IO_EOF;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return CONN_IO_AGAIN;
        snprintf(why, (size_t)whylen, "read: %s", strerror(errno));
        return CONN_IO_ERROR;
    }
}

static ssize_t plain_write(conn_io *io, const void *buf, size_t n, char *why, int whylen)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = n};
    for (;;) {
        ssize_t w = writev(io->fd, &iov, 1);
        if (w > 0)
            return w;
        if (w < 0 && errno == EINTR)
            continue;
        if (w == 0 || errno == EAGAIN || errno == EWOULDBLOCK)
            return CONN_IO_AGAIN;
        snprintf(why, (size_t)whylen, "write: %s", strerror(errno));
        return CONN_IO_ERROR;
    }
}

static int plain_has_pending(const conn_io *io)
{
    (void)io;
    return 0;
}

static void plain_shutdown(conn_io *io) { (void)io; }

static const char *plain_describe(const conn_io *io, char *buf, size_t len)
{
    (void)io;
    (void)buf;
    (void)len;
    return NULL;
}

static const conn_io_type PLAIN = {plain_read, plain_write, plain_has_pending, plain_shutdown,
                                   plain_describe};

/* ------------------------------------------------------------------- TLS */

static ssize_t tls_read(conn_io *io, void *buf, size_t n, char *why, int whylen)
{
    io->read_wants_write = 0;
    ssize_t r = rc_tls_read(io->tls, buf, n, why, whylen);
    if (r == RC_TLS_WANT_READ || r == RC_TLS_WANT_WRITE) {
        io->read_wants_write = r == RC_TLS_WANT_WRITE;
        return CONN_IO_AGAIN;
    }
    if (r == RC_TLS_EOF)
        return CONN_IO_EOF;
    return r > 0 ? r : CONN_IO_ERROR;
}

/* A session takes a record at a time: write until it must wait. */
static ssize_t tls_write(conn_io *io, const void *buf, size_t n, char *why, int whylen)
{
    size_t done = 0;
    io->write_wants_read = 0;
    while (done < n) {
        ssize_t w = rc_tls_write(io->tls, (const char *)buf + done, n - done, why, whylen);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w == RC_TLS_WANT_READ)
            io->write_wants_read = 1;
        else if (w != RC_TLS_WANT_WRITE) {
            if (w == RC_TLS_EOF)
                snprintf(why, (size_t)whylen, "peer closed");
            return CONN_IO_ERROR;
        }
        break;
    }
    return done > 0 ? (ssize_t)done : CONN_IO_AGAIN;
}

static int tls_has_pending(const conn_io *io) { return rc_tls_has_pending(io->tls); }

static void tls_shutdown(conn_io *io) { rc_tls_shutdown(io->tls); }

static const char *tls_describe(const conn_io *io, char *buf, size_t len)
{
    return rc_tls_describe(io->tls, buf, len);
}

static const conn_io_type TLS = {tls_read, tls_write, tls_has_pending, tls_shutdown,
                                 tls_describe};

/* --------------------------------------------------------------- the API */

conn_io *conn_io_new(int fd, rc_tls *tls)
{
    conn_io *io = calloc(1, sizeof *io);
    if (io == NULL)
        return NULL;
    *io = (conn_io){.type = tls != NULL ? &TLS : &PLAIN, .fd = fd, .tls = tls};
    return io;
}

void conn_io_free(conn_io *io)
{
    if (io == NULL)
        return;
    rc_tls_free(io->tls);
    close(io->fd);
    free(io);
}

void conn_io_forget(conn_io *io) { free(io); }

ssize_t conn_io_read(conn_io *io, void *buf, size_t n, char *why, int whylen)
{
    return io->type->read(io, buf, n, why, whylen);
}

ssize_t conn_io_write(conn_io *io, const void *buf, size_t n, char *why, int whylen)
{
    return io->type->write(io, buf, n, why, whylen);
}

int conn_io_read_wants_write(const conn_io *io) { return io->read_wants_write; }
int conn_io_write_wants_read(const conn_io *io) { return io->write_wants_read; }
int conn_io_has_pending(const conn_io *io) { return io->type->has_pending(io); }
int conn_io_read_drained(const conn_io *io) { return io->drained; }

int conn_io_has_input(const conn_io *io)
{
    int avail = 0;
    return (ioctl(io->fd, FIONREAD, &avail) == 0 && avail > 0) || conn_io_has_pending(io);
}

void conn_io_shutdown(conn_io *io) { io->type->shutdown(io); }

const char *conn_io_describe(const conn_io *io, char *buf, size_t len)
{
    return io->type->describe(io, buf, len);
}
