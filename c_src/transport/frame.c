#include "transport/frame.h"

#include "util/be.h"

frame_result frame_next(const uint8_t *buf, size_t len, size_t max_payload, frame_view *out)
{
    if (len < 4)
        return FRAME_NEED_MORE;
    uint32_t n = rc_get32(buf);
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
    rc_put32(hdr, n);
}
