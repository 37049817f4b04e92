#include "transport/sockio.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

uint64_t sockio_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int sockio_wait(int fd, short events, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = sockio_now_ms();
        if (now >= deadline_ms) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)(deadline_ms - now));
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

int sockio_write_all(int fd, const void *buf, size_t n, uint64_t deadline_ms)
{
    const uint8_t *p = buf;
    while (n > 0) {
        if (sockio_wait(fd, POLLOUT, deadline_ms) != 0)
            return -1;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int sockio_read_exact(int fd, void *buf, size_t n, uint64_t deadline_ms)
{
    uint8_t *p = buf;
    while (n > 0) {
        if (sockio_wait(fd, POLLIN, deadline_ms) != 0)
            return -1;
        ssize_t r = recv(fd, p, n, 0);
        if (r == 0) {
            errno = ECONNRESET;
            return -1;
        }
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int sockio_connect(const char *host, uint16_t port, uint64_t deadline_ms)
{
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, portstr, &hints, &res) != 0 || res == NULL) {
        errno = EHOSTUNREACH;
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r != 0 && errno == EINPROGRESS) {
            if (sockio_wait(fd, POLLOUT, deadline_ms) == 0) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
                r = err == 0 ? 0 : -1;
                if (err)
                    errno = err;
            }
        }
        if (r == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            break;
        }
        int saved = errno;
        close(fd);
        errno = saved;
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

int sockio_peek(int fd, void *buf, size_t n, uint64_t deadline_ms)
{
    for (;;) {
        if (sockio_wait(fd, POLLIN, deadline_ms) != 0)
            return -1;
        ssize_t r = recv(fd, buf, n, MSG_PEEK);
        if (r > 0)
            return (int)r;
        if (r == 0)
            return 0;
        if (errno != EINTR && errno != EAGAIN)
            return -1;
    }
}
