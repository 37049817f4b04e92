#include "transport/frame.h"

frame_result frame_next(const uint8_t *buf, size_t len, size_t max_payload, frame_view *out)
{
    if (len < 4)
        return FRAME_NEED_MORE;
    uint32_t n = ((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) | ((uint32_t)buf[2] << 8) |
                 (uint32_t)buf[3];
    if (n == 0) {
        out->payload_off = 4;
        out->payload_len = 0;
        out->consumed = 4;
        return FRAME_TICK;
    }
    /* Reject before waiting for the body so a hostile length never makes us buffer it. */
    if ((size_t)n > max_payload)
        return FRAME_TOO_BIG;
    if (len - 4 < (size_t)n)
        return FRAME_NEED_MORE;
    out->payload_off = 4;
    out->payload_len = n;
    out->consumed = 4 + (size_t)n;
    return FRAME_DATA;
}

void frame_put_header(uint8_t hdr[4], uint32_t n)
{
    hdr[0] = (uint8_t)(n >> 24);
    hdr[1] = (uint8_t)(n >> 16);
    hdr[2] = (uint8_t)(n >> 8);
    hdr[3] = (uint8_t)n;
}
