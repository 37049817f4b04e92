/* sockio: blocking socket helpers with deadlines, for worker threads only
 * (epmd requests and handshakes). Never called on the loop thread. */
#ifndef RC_SOCKIO_H
#define RC_SOCKIO_H

#include <stddef.h>
#include <stdint.h>

uint64_t sockio_now_ms(void);
/* 0 on success, -1 on error/EOF/deadline (errno set; ETIMEDOUT on deadline). */
int sockio_write_all(int fd, const void *buf, size_t n, uint64_t deadline_ms);
int sockio_read_exact(int fd, void *buf, size_t n, uint64_t deadline_ms);
/* Waits until fd is ready for poll `events`: 0, or -1 (ETIMEDOUT at the
 * deadline). */
int sockio_wait(int fd, short events, uint64_t deadline_ms);
/* Looks at up to n first bytes without taking them: how many (1..n), 0 if
 * the peer closed, -1 on error or deadline. */
int sockio_peek(int fd, void *buf, size_t n, uint64_t deadline_ms);
/* Connects to host:port (numeric or name), returns fd or -1. */
int sockio_connect(const char *host, uint16_t port, uint64_t deadline_ms);

#endif
