/* req_naming: the requests of the naming functions and of the emitter-name
 * table (topic, emitter_name, group_key, persist_emitters,
 * retrieve_emitters). */
#include "server/request_internal.h"

#include "codec/decimal.h"
#include "codec/term_read.h"
#include "naming/group_key.h"
#include "naming/naming.h"

#include <stdlib.h>
#include <string.h>

int rqs_topic(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    (void)rs;
    const char *buf = r->buf;
    int len = r->len, idx = r->idx;
    req_args a;
    if (rqs_read_store_sub(buf, len, &idx, &a) != 0)
        return rqs_encode_error(x, "badarg");
    size_t need = 0;
    int st = naming_topic_len(a.store, a.store_len, a.sub_len, &need);
    if (st != RC_OK)
        return rqs_encode_naming_error(x, st);
    uint8_t stackbuf[1024];
    uint8_t *out = need <= sizeof stackbuf ? stackbuf : malloc(need ? need : 1);
    if (out == NULL)
        return rqs_encode_error(x, "system_limit");
    size_t n = 0;
    st = naming_topic(a.store, a.store_len, a.sub, a.sub_len, out, need, &n);
    int rc = st != RC_OK ? rqs_encode_naming_error(x, st)
                             : (rqs_encode_ok_header(x) == 0 ? ei_x_encode_binary(x, out, (long)n) : -1);
    if (out != stackbuf)
        free(out);
    return rc;
}

int rqs_emitter_name(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    (void)rs;
    const char *buf = r->buf;
    int len = r->len, idx = r->idx;
    int arity = r->arity;
    req_args a;
    char dec[DEC_CAP];
    const char *n_dec = NULL;
    if (rqs_read_store_sub(buf, len, &idx, &a) != 0)
        return rqs_encode_error(x, "badarg");
    if (arity == 4) {
        int64_t v = 0;
        int fits = 0;
        if (term_read_integer(buf, len, &idx, &v, &fits, dec, sizeof dec) != 0) {
            /* An integer too long for the buffer also makes a name past 255 chars. */
            int t = 0, sz = 0, i2 = idx;
            if (ei_get_type(buf, &i2, &t, &sz) == 0 && (t == ERL_SMALL_BIG_EXT || t == ERL_LARGE_BIG_EXT)) {
                size_t chars = 0;
                int st = naming_store_chars(a.store, a.store_len, &chars);
                return rqs_encode_naming_error(x, st != RC_OK ? st : RC_ESYSTEM_LIMIT);
            }
            return rqs_encode_error(x, "badarg");
        }
        if (fits && decimal_from_int64(v, dec, sizeof dec) < 0)
            return rqs_encode_error(x, "badarg");
        n_dec = dec;
    }
    uint8_t out[NAMING_MAX_ATOM_UTF8];
    size_t n = 0;
    int st = naming_emitter_name(a.store, a.store_len, a.sub, a.sub_len, n_dec, out,
                                           sizeof out, &n);
    if (st != RC_OK)
        return rqs_encode_naming_error(x, st);
    if (rqs_encode_ok_header(x) != 0)
        return -1;
    return term_write_atom_utf8(x, out, n);
}

typedef struct written {
    int rc;
    const char *cause;
    const uint8_t *enc;
    size_t enc_len;
} written;

static int put_persisted(ei_x_buff *x, const void *arg)
{
    const written *w = arg;
    if (w->rc != RC_OK)
        return rqs_encode_storage_error(x, w->cause);
    return rqs_encode_ok_header(x) || ei_x_append_buf(x, (const char *)w->enc, (int)w->enc_len);
}

static void persisted(void *ctx, int rc, const char *cause, const uint8_t *enc, size_t enc_len)
{
    const written w = {.rc = rc, .cause = cause, .enc = enc, .enc_len = enc_len};
    rqs_later_send(ctx, put_persisted, &w);
}

/* Queues a durable persist; returns 1 if queued (reply comes later), or
 * encodes an error into x and returns 0. */
static int queue_persist(rc_request_server *rs, const rc_gen_from *from, const req_args *a,
                         int64_t p, ei_x_buff *x)
{
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    int st = names_table_build(a->store, a->store_len, a->sub, a->sub_len, p, &enc,
                                         &enc_len);
    if (st != RC_OK) {
        (void)rqs_encode_naming_error(x, st);
        return 0;
    }
    later_reply *lr = rqs_later_new(rs, from);
    if (lr == NULL) {
        free(enc);
        (void)rqs_encode_error(x, "system_limit");
        return 0;
    }
    if (names_persist_submit(rs->persist, a->store, a->store_len, a->sub, a->sub_len, enc,
                             enc_len, persisted, lr) != 0) {
        rqs_later_free(lr);
        (void)rqs_encode_error(x, "system_limit");
        return 0;
    }
    return 1;
}

int rqs_persist(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    const char *buf = r->buf;
    int len = r->len, idx = r->idx;
    req_args a;
    int64_t p = 0;
    int fits = 0;
    char dec[DEC_CAP];
    if (rqs_read_store_sub(buf, len, &idx, &a) != 0 ||
        term_read_integer(buf, len, &idx, &p, &fits, dec, sizeof dec) != 0)
        return rqs_encode_error(x, "badarg");
    if (!fits) /* a pool size beyond int64: negative is badarg, huge is system_limit */
        return rqs_encode_error(x, dec[0] == '-' ? "badarg" : "system_limit");
    if (rs->persist != NULL) {
        *r->deferred = queue_persist(rs, r->from, &a, p, x);
        return 0;
    }
    const uint8_t *enc = NULL;
    size_t enc_len = 0;
    int st = names_table_persist(rs->names, a.store, a.store_len, a.sub, a.sub_len, p,
                                           &enc, &enc_len);
    if (st != RC_OK)
        return rqs_encode_naming_error(x, st);
    if (rqs_encode_ok_header(x) != 0)
        return -1;
    return ei_x_append_buf(x, (const char *)enc, (int)enc_len);
}

int rqs_retrieve(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    const char *buf = r->buf;
    int len = r->len, idx = r->idx;
    req_args a;
    if (rqs_read_store_sub(buf, len, &idx, &a) != 0)
        return rqs_encode_error(x, "badarg");
    const uint8_t *enc = NULL;
    size_t enc_len = 0;
    names_table_retrieve(rs->names, a.store, a.store_len, a.sub, a.sub_len, &enc, &enc_len);
    if (rqs_encode_ok_header(x) != 0)
        return -1;
    return ei_x_append_buf(x, (const char *)enc, (int)enc_len);
}

/* group_key(S, Sub) = {S, Sub, emitters} for any terms: copy their bytes. */
int rqs_group_key(rc_request_server *rs, const rs_req *r, ei_x_buff *x)
{
    (void)rs;
    const char *buf = r->buf;
    int len = r->len, idx = r->idx;
    int s0 = idx;
    if (term_skip(buf, len, &idx) != 0 || term_skip(buf, len, &idx) != 0)
        return rqs_encode_error(x, "badarg");
    return rqs_encode_ok_header(x) || group_key_encode_terms(x, buf + s0, idx - s0);
}
