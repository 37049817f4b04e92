#include "transport/epmd.h"

#include "transport/sockio.h"
#include "util/be.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    EPMD_ALIVE2_X_RESP = 118, /* 'v' */
    EPMD_ALIVE2_REQ = 120,    /* 'x' */
    EPMD_ALIVE2_RESP = 121,   /* 'y' */
    EPMD_PORT2_RESP = 119,    /* 'w' */
    EPMD_PORT2_REQ = 122,     /* 'z' */
    NODE_TYPE_HIDDEN = 72,
    DIST_VERSION_HIGH = 6,
    DIST_VERSION_LOW = 6
};

uint16_t epmd_port(void)
{
    const char *s = getenv("ERL_EPMD_PORT");
    if (s != NULL && *s != '\0') {
        char *end = NULL;
        long v = strtol(s, &end, 10);
        if (end != s && *end == '\0' && v > 0 && v < 65536)
            return (uint16_t)v;
    }
    return 4369;
}

int epmd_register(const char *alive, uint16_t port, uint32_t *creation, uint64_t deadline_ms,
                  char *err, int errlen)
{
    size_t alen = strlen(alive);
    if (alen == 0 || alen > 255) {
        snprintf(err, (size_t)errlen, "bad alive name length %zu", alen);
        return -1;
    }
    uint8_t req[2 + 13 + 255 + 2];
    size_t n = 0;
    size_t body = 1 + 2 + 1 + 1 + 2 + 2 + 2 + alen + 2;
    rc_put16(req, (uint16_t)body);
    n = 2;
    req[n++] = EPMD_ALIVE2_REQ;
    rc_put16(req + n, port);
    n += 2;
    req[n++] = NODE_TYPE_HIDDEN;
    req[n++] = 0; /* tcp/ipv4 */
    rc_put16(req + n, DIST_VERSION_HIGH);
    n += 2;
    rc_put16(req + n, DIST_VERSION_LOW);
    n += 2;
    rc_put16(req + n, (uint16_t)alen);
    n += 2;
    memcpy(req + n, alive, alen);
    n += alen;
    rc_put16(req + n, 0);
    n += 2;

    int fd = sockio_connect("127.0.0.1", epmd_port(), deadline_ms);
    if (fd < 0) {
        snprintf(err, (size_t)errlen, "cannot reach epmd on port %u: %s", epmd_port(),
                 strerror(errno));
        return -1;
    }
    uint8_t resp[6];
    if (sockio_write_all(fd, req, n, deadline_ms) != 0 ||
        sockio_read_exact(fd, resp, 2, deadline_ms) != 0) {
        snprintf(err, (size_t)errlen, "epmd registration failed: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if ((resp[0] != EPMD_ALIVE2_X_RESP && resp[0] != EPMD_ALIVE2_RESP) || resp[1] != 0) {
        snprintf(err, (size_t)errlen, "epmd refused name '%s' (already in use?)", alive);
        close(fd);
        return -1;
    }
    if (resp[0] == EPMD_ALIVE2_X_RESP) {
        if (sockio_read_exact(fd, resp + 2, 4, deadline_ms) != 0) {
            snprintf(err, (size_t)errlen, "short epmd reply");
            close(fd);
            return -1;
        }
        *creation = rc_get32(resp + 2);
    } else {
        if (sockio_read_exact(fd, resp + 2, 2, deadline_ms) != 0) {
            snprintf(err, (size_t)errlen, "short epmd reply");
            close(fd);
            return -1;
        }
        *creation = ((uint32_t)resp[2] << 8) | resp[3];
    }
    return fd;
}

int epmd_lookup(const char *host, const char *alive, uint16_t *port, uint16_t *highest,
                uint64_t deadline_ms)
{
    size_t alen = strlen(alive);
    if (alen == 0 || alen > 255)
        return -1;
    uint8_t req[3 + 255];
    rc_put16(req, (uint16_t)(1 + alen));
    req[2] = EPMD_PORT2_REQ;
    memcpy(req + 3, alive, alen);
    int fd = sockio_connect(host, epmd_port(), deadline_ms);
    if (fd < 0)
        return -1;
    uint8_t resp[10];
    int rc = -1;
    if (sockio_write_all(fd, req, 3 + alen, deadline_ms) == 0 &&
        sockio_read_exact(fd, resp, 2, deadline_ms) == 0 && resp[0] == EPMD_PORT2_RESP &&
        resp[1] == 0 && sockio_read_exact(fd, resp + 2, 8, deadline_ms) == 0) {
        *port = (uint16_t)((resp[2] << 8) | resp[3]);
        *highest = (uint16_t)((resp[6] << 8) | resp[7]);
        rc = 0;
    }
    close(fd);
    return rc;
}
