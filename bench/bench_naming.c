/* C-level cost of the naming hot paths: emitter_name/3 (a fresh name from
 * fields) and retrieve_emitters/2 (a lookup in the read-optimised table).
 * Prints one line per figure: "<name> <ns/op>". */
#include "codec/decimal.h"
#include "codec/term_norm.h"
#include "naming/names_table.h"
#include "naming/naming.h"
#include "pg/membership.h"
#include "pg/pg_scope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 5000000L;
    const uint8_t store[] = "reckon_store";
    const uint8_t sub[] = "orders.created.v1";
    uint8_t out[NAMING_MAX_ATOM_UTF8];
    size_t n = 0, sink = 0;
    char dec[32];

    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        decimal_from_int64(i % 1000 + 1, dec, sizeof dec);
        if (naming_emitter_name(store, sizeof store - 1, sub, sizeof sub - 1, dec, out, sizeof out,
                                &n) != RC_OK)
            return 1;
        sink += n + out[n - 1];
    }
    double t1 = now_ns();
    printf("c_emitter_name_3_ns %.1f\n", (t1 - t0) / (double)iters);

    names_table *t = names_table_new();
    enum { KEYS = 1000 };
    char subs[KEYS][32];
    size_t sub_lens[KEYS];
    for (int k = 0; k < KEYS; k++) {
        sub_lens[k] = (size_t)snprintf(subs[k], sizeof subs[k], "subscription-%d", k);
        const uint8_t *enc;
        size_t enc_len;
        if (names_table_persist(t, store, sizeof store - 1, (const uint8_t *)subs[k], sub_lens[k], 4,
                                &enc, &enc_len) != RC_OK)
            return 1;
    }
    t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        int k = (int)(i % KEYS);
        const uint8_t *enc;
        size_t enc_len;
        names_table_retrieve(t, store, sizeof store - 1, (const uint8_t *)subs[k], sub_lens[k], &enc,
                             &enc_len);
        sink += enc_len + enc[0];
    }
    t1 = now_ns();
    printf("c_retrieve_emitters_ns %.1f\n", (t1 - t0) / (double)iters);
    names_table_free(t);

    /* pg members look-up: 10,000 groups {store, <<"sub-K">>, emitters} with
     * 10 members each, looked up by canonical key (what the C API keeps) and
     * from a raw group term (canonicalised on every call). */
    pgm_table *pt = pgm_new();
    enum { GROUPS = 10000 };
    static char keys[GROUPS][64];
    static size_t klens[GROUPS];
    ei_x_buff x;
    ei_x_new(&x);
    for (int k = 0; k < GROUPS; k++) {
        x.index = 0;
        char sb[32];
        int sl = snprintf(sb, sizeof sb, "sub-%d", k);
        ei_x_encode_tuple_header(&x, 3);
        ei_x_encode_atom(&x, "reckon_store");
        ei_x_encode_binary(&x, sb, sl);
        ei_x_encode_atom(&x, "emitters");
        memcpy(keys[k], x.buff, (size_t)x.index);
        klens[k] = (size_t)x.index;
        rc_cpid m[10];
        for (int j = 0; j < 10; j++)
            m[j] = (rc_cpid){.node = 1, .num = (uint32_t)(k * 10 + j), .serial = 0, .creation = 1};
        if (pgm_add(pt, (const uint8_t *)keys[k], klens[k], m, 10, 10) == NULL)
            return 1;
    }
    t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        int k = (int)(i % GROUPS);
        pgm_group *g = pgm_find(pt, (const uint8_t *)keys[k], klens[k]);
        size_t n2;
        sink += pgm_group_members(g, &n2)[0].num + n2;
    }
    t1 = now_ns();
    printf("c_pg_members_ns %.1f\n", (t1 - t0) / (double)iters);
    long it2 = iters / 10;
    t0 = now_ns();
    for (long i = 0; i < it2; i++) {
        int k = (int)(i % GROUPS);
        if (rc_pg_group_key(keys[k], (int)klens[k], &x) != 0)
            return 1;
        pgm_group *g = pgm_find(pt, (const uint8_t *)x.buff, (size_t)x.index);
        size_t n2;
        sink += pgm_group_members(g, &n2)[0].num + n2;
    }
    t1 = now_ns();
    printf("c_pg_members_from_term_ns %.1f\n", (t1 - t0) / (double)it2);
    ei_x_free(&x);
    pgm_free(pt);
    fprintf(stderr, "(sink %zu)\n", sink);
    return 0;
}
