/* Test helper: a frame body a recorder transport was handed (control term,
 * then the message, in parts) joined behind the pass-through tag 112, as
 * ctrl_decode reads it. */
#ifndef TEST_REC_FRAME_H
#define TEST_REC_FRAME_H

#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

static inline char *rec_frame_join(const struct iovec *parts, int nparts, size_t *len)
{
    size_t n = 1;
    for (int i = 0; i < nparts; i++)
        n += parts[i].iov_len;
    char *p = malloc(n);
    if (p == NULL)
        return NULL;
    p[0] = (char)112;
    size_t off = 1;
    for (int i = 0; i < nparts; i++) {
        memcpy(p + off, parts[i].iov_base, parts[i].iov_len);
        off += parts[i].iov_len;
    }
    *len = n;
    return p;
}

/* 1 if the frame carries a message after its control term. */
static inline int rec_frame_has_msg(const struct iovec *parts, int nparts)
{
    for (int i = 1; i < nparts; i++)
        if (parts[i].iov_len > 0)
            return 1;
    return 0;
}

#endif
