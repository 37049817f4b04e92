/* naming: see naming.h for the contract. */
#include "naming/naming.h"

#include <string.h>

static const char EMITTER_SUFFIX[] = "_emitter";
#define EMITTER_SUFFIX_LEN (sizeof EMITTER_SUFFIX - 1)

/* A store atom whose characters are all <= 255 can only contain bytes 00..7F
 * and two-byte sequences C2/C3 + 80..BF: anything else is either a character
 * above 255 or invalid UTF-8, and both are badarg. This makes validation a
 * tiny byte loop instead of a general UTF-8 decoder. */
int naming_store_chars(const uint8_t *s, size_t len, size_t *chars)
{
    size_t n = 0;
    if (len > 0 && s == NULL)
        return RC_EBADARG;
    for (size_t i = 0; i < len; n++) {
        uint8_t b = s[i];
        if (b < 0x80) {
            i++;
        } else if ((b == 0xC2 || b == 0xC3) && i + 1 < len && (s[i + 1] & 0xC0) == 0x80) {
            i += 2;
        } else {
            return RC_EBADARG;
        }
    }
    *chars = n;
    return RC_OK;
}

int naming_topic_len(const uint8_t *store_utf8, size_t store_len, size_t sub_len,
                               size_t *out_len)
{
    size_t chars;
    int st = naming_store_chars(store_utf8, store_len, &chars);
    if (st != RC_OK)
        return st;
    if (sub_len > SIZE_MAX - 1 - chars)
        return RC_ESYSTEM_LIMIT;
    *out_len = chars + 1 + sub_len;
    return RC_OK;
}

int naming_topic(const uint8_t *store_utf8, size_t store_len, const uint8_t *sub,
                           size_t sub_len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    size_t need;
    int st = naming_topic_len(store_utf8, store_len, sub_len, &need);
    if (st != RC_OK)
        return st;
    if (sub_len > 0 && sub == NULL)
        return RC_EBADARG;
    if (need > out_cap || out == NULL)
        return RC_ENOSPACE;
    size_t o = 0;
    /* Validated above: only ASCII and C2/C3 pairs remain. */
    for (size_t i = 0; i < store_len;) {
        uint8_t b = store_utf8[i];
        if (b < 0x80) {
            out[o++] = b;
            i++;
        } else {
            out[o++] = (uint8_t)(((b & 0x1F) << 6) | (store_utf8[i + 1] & 0x3F));
            i += 2;
        }
    }
    out[o++] = ':';
    if (sub_len > 0)
        memcpy(out + o, sub, sub_len);
    *out_len = o + sub_len;
    return RC_OK;
}

/* Canonical decimal, as integer_to_list/1 prints: -?(0|[1-9][0-9]*), not -0.
 * Anything else would make the name differ from the seed's for the same N. */
static int decimal_len(const char *d, size_t *len)
{
    size_t i = 0;
    if (d[0] == '-')
        i = 1;
    if (d[i] < '0' || d[i] > '9')
        return -1;
    if (d[i] == '0' && (i == 1 || d[i + 1] != '\0'))
        return -1;
    size_t j = i;
    while (d[j] >= '0' && d[j] <= '9')
        j++;
    if (d[j] != '\0')
        return -1;
    *len = j;
    return 0;
}

int naming_emitter_name(const uint8_t *store_utf8, size_t store_len,
                                  const uint8_t *sub, size_t sub_len, const char *n_decimal,
                                  uint8_t *out, size_t out_cap, size_t *out_len)
{
    size_t store_chars;
    int st = naming_store_chars(store_utf8, store_len, &store_chars);
    if (st != RC_OK)
        return st;
    if (sub_len > 0 && sub == NULL)
        return RC_EBADARG;
    size_t n_len = 0;
    if (n_decimal != NULL && decimal_len(n_decimal, &n_len) != 0)
        return RC_EBADARG;

    /* Character count is known before writing anything, so system_limit is
     * decided without touching the output. Each term is compared separately
     * so huge lengths cannot overflow the sum. */
    size_t suffix_chars = EMITTER_SUFFIX_LEN + (n_decimal ? 1 + n_len : 0);
    if (store_chars > NAMING_MAX_ATOM_CHARS || sub_len > NAMING_MAX_ATOM_CHARS ||
        n_len > NAMING_MAX_ATOM_CHARS ||
        store_chars + 1 + sub_len + suffix_chars > NAMING_MAX_ATOM_CHARS)
        return RC_ESYSTEM_LIMIT;
    if (out == NULL)
        return RC_ENOSPACE;

    /* store_len <= 2 * 255 here, and every later write is checked. */
    if (store_len + 1 > out_cap)
        return RC_ENOSPACE;
    size_t o = 0;
    if (store_len > 0)
        memcpy(out, store_utf8, store_len);
    o = store_len;
    out[o++] = '_';
    for (size_t i = 0; i < sub_len; i++) {
        uint8_t b = sub[i];
        if (b < 0x80) {
            if (o + 1 > out_cap)
                return RC_ENOSPACE;
            out[o++] = b;
        } else {
            if (o + 2 > out_cap)
                return RC_ENOSPACE;
            out[o++] = (uint8_t)(0xC0 | (b >> 6));
            out[o++] = (uint8_t)(0x80 | (b & 0x3F));
        }
    }
    size_t tail = suffix_chars; /* all ASCII: one byte per character */
    if (o + tail > out_cap)
        return RC_ENOSPACE;
    memcpy(out + o, EMITTER_SUFFIX, EMITTER_SUFFIX_LEN);
    o += EMITTER_SUFFIX_LEN;
    if (n_decimal != NULL) {
        out[o++] = '_';
        memcpy(out + o, n_decimal, n_len);
        o += n_len;
    }
    *out_len = o;
    return RC_OK;
}
