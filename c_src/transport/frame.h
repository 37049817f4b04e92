/* frame: splits a connected distribution byte stream into frames.
 * After the handshake every frame is a 4-byte big-endian length followed by
 * that many bytes; a zero length is a tick. Pure: no I/O, no allocation. */
#ifndef RC_FRAME_H
#define RC_FRAME_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    FRAME_NEED_MORE = 0, /* not a whole frame yet */
    FRAME_TICK,          /* a keep-alive; consumed = 4 */
    FRAME_DATA,          /* payload at buf[payload_off .. payload_off+payload_len) */
    FRAME_TOO_BIG        /* length above max: the connection must be closed */
} frame_result;

typedef struct frame_view {
    size_t payload_off;
    size_t payload_len;
    size_t consumed; /* bytes to drop from the stream for this frame */
} frame_view;

frame_result frame_next(const uint8_t *buf, size_t len, size_t max_payload, frame_view *out);

/* Writes the 4-byte header for a payload of n bytes. */
void frame_put_header(uint8_t hdr[4], uint32_t n);

#endif
