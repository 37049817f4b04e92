#include "emitter/event.h"

#include "codec/term_read.h"

#include <ei.h>
#include <stdlib.h>
#include <string.h>

static int bin(ei_x_buff *x, const uint8_t *p, size_t n)
{
    return ei_x_encode_binary(x, p ? p : (const uint8_t *)"", (long)n);
}

/* A pre-encoded term is checked to be exactly one well-formed term, so a
 * bad buffer is refused here instead of crashing a BEAM decoder later. */
static int raw_term(ei_x_buff *x, const uint8_t *p, size_t n)
{
    int idx = 0;
    if (p == NULL || n == 0 || n > INT32_MAX || term_skip((const char *)p, (int)n, &idx) != 0 ||
        (size_t)idx != n)
        return -1;
    return ei_x_append_buf(x, (const char *)p, (int)n);
}

int event_build(const rc_event_fields *f, uint8_t **out, size_t *len)
{
    ei_x_buff x;
    if (ei_x_new(&x) != 0)
        return -1;
    int rc = ei_x_encode_tuple_header(&x, f->legacy_11 ? 11 : 12) ||
             ei_x_encode_atom(&x, "event") || bin(&x, f->event_id, f->event_id_len) ||
             bin(&x, f->event_type, f->event_type_len) ||
             bin(&x, f->stream_id, f->stream_id_len) ||
             ei_x_encode_ulonglong(&x, f->version);
    if (!rc)
        rc = f->data_is_term ? raw_term(&x, f->data, f->data_len) : bin(&x, f->data, f->data_len);
    if (!rc)
        rc = f->metadata ? raw_term(&x, f->metadata, f->metadata_len) : ei_x_encode_map_header(&x, 0);
    if (!rc && !f->legacy_11) {
        if (f->tags_undefined) {
            rc = ei_x_encode_atom(&x, "undefined");
        } else {
            if (f->ntags > 0)
                rc = ei_x_encode_list_header(&x, (long)f->ntags);
            for (size_t i = 0; i < f->ntags && !rc; i++)
                rc = bin(&x, f->tags[i], f->tag_lens[i]);
            rc = rc || ei_x_encode_empty_list(&x);
        }
    }
    rc = rc || ei_x_encode_longlong(&x, f->timestamp) || ei_x_encode_longlong(&x, f->epoch_us) ||
         bin(&x, f->data_content_type, f->data_content_type_len) ||
         bin(&x, f->metadata_content_type, f->metadata_content_type_len);
    if (rc) {
        ei_x_free(&x);
        return -1;
    }
    *out = (uint8_t *)x.buff; /* ei_x_buff's storage is malloc'd: hand it over */
    *len = (size_t)x.index;
    return 0;
}

int event_encode_binary_map(const char *const *keys, const uint8_t *const *vals,
                            const size_t *val_lens, size_t n, uint8_t **out, size_t *len)
{
    ei_x_buff x;
    if (ei_x_new(&x) != 0)
        return -1;
    int rc = ei_x_encode_map_header(&x, (long)n);
    for (size_t i = 0; i < n && !rc; i++)
        rc = bin(&x, (const uint8_t *)keys[i], strlen(keys[i])) || bin(&x, vals[i], val_lens[i]);
    if (rc) {
        ei_x_free(&x);
        return -1;
    }
    *out = (uint8_t *)x.buff;
    *len = (size_t)x.index;
    return 0;
}
