#include "codec/decimal.h"

#include <stdint.h>

int decimal_from_int64(int64_t v, char *out, size_t cap)
{
    char tmp[DECIMAL_INT64_CAP];
    /* Negating in unsigned arithmetic keeps INT64_MIN well defined. */
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(m % 10));
        m /= 10;
    } while (m != 0);
    if (v < 0)
        tmp[n++] = '-';
    if (out == NULL || n + 1 > cap)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return (int)n;
}

int decimal_from_bigint(int negative, const uint8_t *le_bytes, size_t n, char *out,
                             size_t cap)
{
    if (out == NULL || cap < 2 || cap > (size_t)INT32_MAX || (n > 0 && le_bytes == NULL))
        return -1;
    while (n > 0 && le_bytes[n - 1] == 0)
        n--;
    if (n == 0) {
        out[0] = '0';
        out[1] = '\0';
        return 1;
    }
    /* Decimal digits are accumulated little-endian, one digit value per
     * byte, directly in the caller's buffer behind an optional '-': Horner's
     * rule, most significant input byte first. No scratch memory needed. */
    size_t base = negative ? 1 : 0;
    size_t room = cap - 1 - base; /* keep space for the NUL */
    uint8_t *d = (uint8_t *)out + base;
    size_t nd = 0;
    for (size_t k = n; k-- > 0;) {
        unsigned carry = le_bytes[k];
        for (size_t i = 0; i < nd; i++) {
            unsigned t = (unsigned)d[i] * 256u + carry;
            d[i] = (uint8_t)(t % 10u);
            carry = t / 10u;
        }
        while (carry != 0) {
            if (nd >= room)
                return -1;
            d[nd++] = (uint8_t)(carry % 10u);
            carry /= 10u;
        }
    }
    for (size_t i = 0, j = nd - 1; i < j; i++, j--) {
        uint8_t t = d[i];
        d[i] = d[j];
        d[j] = t;
    }
    for (size_t i = 0; i < nd; i++)
        d[i] = (uint8_t)('0' + d[i]);
    if (negative)
        out[0] = '-';
    out[base + nd] = '\0';
    return (int)(base + nd);
}
