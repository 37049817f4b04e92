/* group_key: reckon-db's group key group_key(S, Sub) = {S, Sub, emitters},
 * the term under which a subscription's emitters join pg and its emitter
 * names are stored. This is the one place that builds it. */
#ifndef RC_GROUP_KEY_H
#define RC_GROUP_KEY_H

#include <ei.h>
#include <stddef.h>
#include <stdint.h>

/* Appends {S, Sub, emitters} (no version byte) for a store atom given as
 * UTF-8 bytes and a binary Sub. 0 or -1. */
int group_key_encode(ei_x_buff *x, const uint8_t *store_utf8, size_t store_len,
                     const uint8_t *sub, size_t sub_len);

/* The same from S and Sub already encoded, back to back in terms[0, len)
 * (any terms: the seed's group_key/2 takes any). 0 or -1. */
int group_key_encode_terms(ei_x_buff *x, const char *terms, int len);

#endif
