#include "util/bytebuf.h"

#include <stdlib.h>
#include <string.h>

void bytebuf_init(bytebuf *b, size_t limit)
{
    memset(b, 0, sizeof *b);
    b->limit = limit;
}

void bytebuf_free(bytebuf *b)
{
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

void bytebuf_compact(bytebuf *b)
{
    if (b->off == 0)
        return;
    size_t pending = b->len - b->off;
    if (pending > 0)
        memmove(b->data, b->data + b->off, pending);
    b->off = 0;
    b->len = pending;
}

int bytebuf_reserve(bytebuf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    /* Compact only when at least half the buffer is consumed: moving a large
     * pending region for every small append (an output buffer that a slow
     * socket drains from the front) would make appends quadratic. */
    if (b->off > 0 && b->off >= b->cap / 2 && b->cap - (b->len - b->off) >= extra) {
        bytebuf_compact(b);
        return 0;
    }
    size_t need = (b->len - b->off) + extra;
    if (need < extra || (b->limit != 0 && need > b->limit))
        return -1;
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return -1;
        ncap *= 2;
    }
    if (b->limit != 0 && ncap > b->limit)
        ncap = b->limit;
    bytebuf_compact(b);
    uint8_t *nd = realloc(b->data, ncap);
    if (nd == NULL)
        return -1;
    b->data = nd;
    b->cap = ncap;
    return 0;
}

int bytebuf_append_slow(bytebuf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (bytebuf_reserve(b, n) != 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void bytebuf_consume(bytebuf *b, size_t n)
{
    if (n > b->len - b->off)
        n = b->len - b->off;
    b->off += n;
    if (b->off == b->len)
        b->off = b->len = 0;
}

void bytebuf_trim(bytebuf *b, size_t keep)
{
    if (b->off == b->len && b->cap > keep) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
        b->off = b->len = 0;
    }
}
