#include "naming/group_key.h"

#include "codec/term_read.h"

int group_key_encode(ei_x_buff *x, const uint8_t *store_utf8, size_t store_len,
                     const uint8_t *sub, size_t sub_len)
{
    return ei_x_encode_tuple_header(x, 3) || term_write_atom_utf8(x, store_utf8, store_len) ||
                   ei_x_encode_binary(x, sub, (long)sub_len) || ei_x_encode_atom(x, "emitters")
               ? -1
               : 0;
}

int group_key_encode_terms(ei_x_buff *x, const char *terms, int len)
{
    return ei_x_encode_tuple_header(x, 3) || ei_x_append_buf(x, terms, len) ||
                   ei_x_encode_atom(x, "emitters")
               ? -1
               : 0;
}
