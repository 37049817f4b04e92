/* bytebuf: a bounded, growable byte buffer with a consumed prefix.
 * Used for per-connection input and output. Data lives in [off, len);
 * growth never exceeds `limit` (0 = no limit) and failures are returned,
 * never fatal. */
#ifndef RC_BYTEBUF_H
#define RC_BYTEBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct bytebuf {
    uint8_t *data;
    size_t off; /* first unconsumed byte */
    size_t len; /* end of valid data */
    size_t cap;
    size_t limit; /* max capacity, 0 = unlimited */
} bytebuf;

/* Capacity kept when a buffer empties; a bigger one is released. */
#define BYTEBUF_KEEP ((size_t)1 << 20)

void bytebuf_init(bytebuf *b, size_t limit);
void bytebuf_free(bytebuf *b);
static inline size_t bytebuf_pending(const bytebuf *b) { return b->len - b->off; }
/* Ensures room for `extra` more bytes after len (compacting first). 0 or -1. */
int bytebuf_reserve(bytebuf *b, size_t extra);
int bytebuf_append(bytebuf *b, const void *p, size_t n);
void bytebuf_consume(bytebuf *b, size_t n);
/* Moves unconsumed bytes to the front (cheap when little is pending). */
void bytebuf_compact(bytebuf *b);

#endif
