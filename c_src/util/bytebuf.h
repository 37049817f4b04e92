/* bytebuf: a bounded, growable byte buffer with a consumed prefix.
 * Used for per-connection input and output. Data lives in [off, len);
 * growth never exceeds `limit` (0 = no limit) and failures are returned,
 * never fatal. */
#ifndef RC_BYTEBUF_H
#define RC_BYTEBUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct bytebuf {
    uint8_t *data;
    size_t off; /* first unconsumed byte */
    size_t len; /* end of valid data */
    size_t cap;
    size_t limit; /* max capacity, 0 = unlimited */
} bytebuf;

void bytebuf_init(bytebuf *b, size_t limit);
void bytebuf_free(bytebuf *b);
static inline size_t bytebuf_pending(const bytebuf *b) { return b->len - b->off; }
/* Ensures room for `extra` more bytes after len (compacting first). 0 or -1. */
int bytebuf_reserve(bytebuf *b, size_t extra);
int bytebuf_append_slow(bytebuf *b, const void *p, size_t n);
/* Inline when it fits: the term walks append a piece per atom, and a call
 * into the growth logic for every one of them cost more than the copy. */
static inline int bytebuf_append(bytebuf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (n > b->cap - b->len)
        return bytebuf_append_slow(b, p, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}
void bytebuf_consume(bytebuf *b, size_t n);
/* Releases the memory of an empty buffer bigger than keep: a burst's
 * growth is given back once the burst is over (call it now and then, not
 * on every drain, or busy buffers would be freed and grown each time). */
void bytebuf_trim(bytebuf *b, size_t keep);
/* Moves unconsumed bytes to the front (cheap when little is pending). */
void bytebuf_compact(bytebuf *b);

#endif
