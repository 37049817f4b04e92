#include "server/request_server.h"

#include "codec/term_read.h"
#include "naming/naming.h"
#include "proc/gen_server.h"

#include <stdlib.h>
#include <string.h>

#define MOD "request"
#define DEC_CAP 320 /* decimal digits of any N whose name can still fit 255 chars */

/* One durable persist: written on the pool, then applied and answered. */
typedef struct persist_job {
    uv_work_t req;
    rc_request_server *rs;
    erlang_pid caller;
    char *tag; /* the caller's reply tag, copied out of the request */
    int tag_len;
    uint8_t *key; /* store bytes then sub bytes */
    size_t store_len, sub_len;
    uint8_t *enc;
    size_t enc_len;
    int err;
    struct persist_job *next;
} persist_job;

struct rc_request_server {
    uv_loop_t *loop;
    names_store *store;
    persist_job *q_head, *q_tail;
    int writing;
    rc_procs *ps;
    rc_proc *self;
    names_table *names;
    rc_stats_fn stats;
    void *stats_ctx;
    uint64_t requests;
    uint64_t bad_requests;
};

typedef struct req_args {
    const uint8_t *store;
    size_t store_len;
    const uint8_t *sub;
    size_t sub_len;
    uint8_t scratch[2 * 256];
} req_args;

static int encode_error(ei_x_buff *x, const char *reason)
{
    if (ei_x_encode_tuple_header(x, 2) != 0 || ei_x_encode_atom(x, "error") != 0)
        return -1;
    return ei_x_encode_atom(x, reason);
}

static int encode_ok_header(ei_x_buff *x)
{
    if (ei_x_encode_tuple_header(x, 2) != 0)
        return -1;
    return ei_x_encode_atom(x, "ok");
}

static int encode_naming_error(ei_x_buff *x, naming_status st)
{
    return encode_error(x, st == NAMING_SYSTEM_LIMIT ? "system_limit" : "badarg");
}

/* Reads Store (atom) and Sub (binary). */
static int read_store_sub(const char *buf, int len, int *idx, req_args *a)
{
    if (term_read_atom(buf, len, idx, &a->store, &a->store_len, a->scratch, sizeof a->scratch) != 0)
        return -1;
    return term_read_binary(buf, len, idx, &a->sub, &a->sub_len);
}

static int do_topic(const char *buf, int len, int idx, ei_x_buff *x)
{
    req_args a;
    if (read_store_sub(buf, len, &idx, &a) != 0)
        return encode_error(x, "badarg");
    size_t need = 0;
    naming_status st = naming_topic_len(a.store, a.store_len, a.sub_len, &need);
    if (st != NAMING_OK)
        return encode_naming_error(x, st);
    uint8_t stackbuf[1024];
    uint8_t *out = need <= sizeof stackbuf ? stackbuf : malloc(need ? need : 1);
    if (out == NULL)
        return encode_error(x, "system_limit");
    size_t n = 0;
    st = naming_topic(a.store, a.store_len, a.sub, a.sub_len, out, need, &n);
    int rc = st != NAMING_OK ? encode_naming_error(x, st)
                             : (encode_ok_header(x) == 0 ? ei_x_encode_binary(x, out, (long)n) : -1);
    if (out != stackbuf)
        free(out);
    return rc;
}

static int do_emitter_name(const char *buf, int len, int idx, int arity, ei_x_buff *x)
{
    req_args a;
    char dec[DEC_CAP];
    const char *n_dec = NULL;
    if (read_store_sub(buf, len, &idx, &a) != 0)
        return encode_error(x, "badarg");
    if (arity == 4) {
        int64_t v = 0;
        int fits = 0;
        if (term_read_integer(buf, len, &idx, &v, &fits, dec, sizeof dec) != 0) {
            /* An integer too long for the buffer also makes a name past 255 chars. */
            int t = 0, sz = 0, i2 = idx;
            if (ei_get_type(buf, &i2, &t, &sz) == 0 && (t == ERL_SMALL_BIG_EXT || t == ERL_LARGE_BIG_EXT)) {
                size_t chars = 0;
                naming_status st = naming_store_chars(a.store, a.store_len, &chars);
                return encode_naming_error(x, st != NAMING_OK ? st : NAMING_SYSTEM_LIMIT);
            }
            return encode_error(x, "badarg");
        }
        if (fits && naming_int64_to_decimal(v, dec, sizeof dec) < 0)
            return encode_error(x, "badarg");
        n_dec = dec;
    }
    uint8_t out[NAMING_MAX_ATOM_UTF8];
    size_t n = 0;
    naming_status st = naming_emitter_name(a.store, a.store_len, a.sub, a.sub_len, n_dec, out,
                                           sizeof out, &n);
    if (st != NAMING_OK)
        return encode_naming_error(x, st);
    if (encode_ok_header(x) != 0)
        return -1;
    return term_write_atom_utf8(x, out, n);
}

static void start_next_persist(rc_request_server *rs);

static void persist_work(uv_work_t *req)
{
    persist_job *j = req->data;
    j->err = names_store_put(j->rs->store, j->key, j->store_len, j->key + j->store_len, j->sub_len,
                             j->enc, j->enc_len);
}

static void persist_job_free(persist_job *j)
{
    free(j->tag);
    free(j->key);
    free(j->enc);
    free(j);
}

static void persist_after(uv_work_t *req, int status)
{
    persist_job *j = req->data;
    rc_request_server *rs = j->rs;
    rs->writing = 0;
    ei_x_buff x;
    rc_gen_from from = {.pid = j->caller, .tag = j->tag, .tag_len = j->tag_len};
    if (ei_x_new(&x) == 0 && rc_gen_reply_begin(&x, &from) == 0) {
        naming_status st = NAMING_NOMEM;
        if (status == 0 && j->err == 0)
            st = names_table_insert_encoded(rs->names, j->key, j->store_len, j->key + j->store_len,
                                            j->sub_len, j->enc, j->enc_len);
        if (st == NAMING_OK) {
            (void)encode_ok_header(&x);
            (void)ei_x_append_buf(&x, (const char *)j->enc, (int)j->enc_len);
        } else {
            LOG_E(rc_procs_logger(rs->ps), MOD, "persist_emitters not stored: %s",
                  status != 0 ? "cancelled" : names_store_strerror(j->err));
            (void)ei_x_encode_tuple_header(&x, 2);
            (void)ei_x_encode_atom(&x, "error");
            (void)ei_x_encode_tuple_header(&x, 2);
            (void)ei_x_encode_atom(&x, "storage");
            (void)ei_x_encode_string(&x, status != 0 ? "cancelled" : names_store_strerror(j->err));
        }
        /* No sender process: the server may have ended while the write ran. */
        (void)rc_gen_reply_send(rs->ps, NULL, &from, &x);
    }
    ei_x_free(&x);
    persist_job_free(j);
    start_next_persist(rs);
}

static void start_next_persist(rc_request_server *rs)
{
    if (rs->writing || rs->q_head == NULL)
        return;
    persist_job *j = rs->q_head;
    rs->q_head = j->next;
    if (rs->q_head == NULL)
        rs->q_tail = NULL;
    j->req.data = j;
    if (uv_queue_work(rs->loop, &j->req, persist_work, persist_after) != 0) {
        persist_after(&j->req, UV_ECANCELED);
        return;
    }
    rs->writing = 1;
}

/* Queues a durable persist; returns 1 if queued (reply comes later), or
 * encodes an error into x and returns 0. */
static int queue_persist(rc_request_server *rs, const rc_gen_from *from, const req_args *a,
                         int64_t p, ei_x_buff *x)
{
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    naming_status st = names_table_build(a->store, a->store_len, a->sub, a->sub_len, p, &enc,
                                         &enc_len);
    if (st != NAMING_OK) {
        (void)encode_naming_error(x, st);
        return 0;
    }
    persist_job *j = calloc(1, sizeof *j);
    if (j != NULL) {
        j->key = malloc(a->store_len + a->sub_len + 1);
        j->tag = malloc((size_t)from->tag_len);
    }
    if (j == NULL || j->key == NULL || j->tag == NULL) {
        if (j) {
            free(j->key);
            free(j->tag);
        }
        free(j);
        free(enc);
        (void)encode_error(x, "system_limit");
        return 0;
    }
    j->rs = rs;
    j->caller = from->pid;
    memcpy(j->tag, from->tag, (size_t)from->tag_len);
    j->tag_len = from->tag_len;
    memcpy(j->key, a->store, a->store_len);
    memcpy(j->key + a->store_len, a->sub, a->sub_len);
    j->store_len = a->store_len;
    j->sub_len = a->sub_len;
    j->enc = enc;
    j->enc_len = enc_len;
    if (rs->q_tail)
        rs->q_tail->next = j;
    else
        rs->q_head = j;
    rs->q_tail = j;
    start_next_persist(rs);
    return 1;
}

static int do_persist(rc_request_server *rs, const rc_gen_from *from, const char *buf, int len,
                      int idx, ei_x_buff *x, int *deferred)
{
    req_args a;
    int64_t p = 0;
    int fits = 0;
    char dec[DEC_CAP];
    if (read_store_sub(buf, len, &idx, &a) != 0 ||
        term_read_integer(buf, len, &idx, &p, &fits, dec, sizeof dec) != 0)
        return encode_error(x, "badarg");
    if (!fits) /* a pool size beyond int64: negative is badarg, huge is system_limit */
        return encode_error(x, dec[0] == '-' ? "badarg" : "system_limit");
    if (rs->store != NULL) {
        *deferred = queue_persist(rs, from, &a, p, x);
        return 0;
    }
    const uint8_t *enc = NULL;
    size_t enc_len = 0;
    naming_status st = names_table_persist(rs->names, a.store, a.store_len, a.sub, a.sub_len, p,
                                           &enc, &enc_len);
    if (st != NAMING_OK)
        return encode_naming_error(x, st);
    if (encode_ok_header(x) != 0)
        return -1;
    return ei_x_append_buf(x, (const char *)enc, (int)enc_len);
}

static int do_retrieve(rc_request_server *rs, const char *buf, int len, int idx, ei_x_buff *x)
{
    req_args a;
    if (read_store_sub(buf, len, &idx, &a) != 0)
        return encode_error(x, "badarg");
    const uint8_t *enc = NULL;
    size_t enc_len = 0;
    names_table_retrieve(rs->names, a.store, a.store_len, a.sub, a.sub_len, &enc, &enc_len);
    if (encode_ok_header(x) != 0)
        return -1;
    return ei_x_append_buf(x, (const char *)enc, (int)enc_len);
}

/* group_key(S, Sub) = {S, Sub, emitters} for any terms: copy their bytes. */
static int do_group_key(const char *buf, int len, int idx, ei_x_buff *x)
{
    int s0 = idx;
    if (ei_skip_term(buf, &idx) != 0 || idx > len)
        return encode_error(x, "badarg");
    int s1 = idx;
    if (ei_skip_term(buf, &idx) != 0 || idx > len)
        return encode_error(x, "badarg");
    if (encode_ok_header(x) != 0 || ei_x_encode_tuple_header(x, 3) != 0 ||
        ei_x_append_buf(x, buf + s0, s1 - s0) != 0 || ei_x_append_buf(x, buf + s1, idx - s1) != 0)
        return -1;
    return ei_x_encode_atom(x, "emitters");
}

static int handle_request(rc_request_server *rs, const rc_gen_from *from, const char *buf, int len,
                          int idx, ei_x_buff *x, int *deferred)
{
    int type = 0, size = 0, arity = 0;
    char op[MAXATOMLEN];
    if (ei_get_type(buf, &idx, &type, &size) != 0)
        return encode_error(x, "badarg");
    if (type == ERL_SMALL_ATOM_UTF8_EXT || type == ERL_ATOM_UTF8_EXT || type == ERL_SMALL_ATOM_EXT ||
        type == ERL_ATOM_EXT) {
        if (ei_decode_atom(buf, &idx, op) != 0)
            return encode_error(x, "badarg");
        if (strcmp(op, "ping") == 0)
            return encode_ok_header(x) == 0 ? ei_x_encode_atom(x, "pong") : -1;
        if (strcmp(op, "stats") == 0 && rs->stats != NULL) {
            if (encode_ok_header(x) != 0)
                return -1;
            rs->stats(rs->stats_ctx, x);
            return 0;
        }
        return encode_error(x, "badarg");
    }
    if ((type != ERL_SMALL_TUPLE_EXT && type != ERL_LARGE_TUPLE_EXT) ||
        ei_decode_tuple_header(buf, &idx, &arity) != 0 || arity < 1 ||
        ei_decode_atom(buf, &idx, op) != 0)
        return encode_error(x, "badarg");
    if (strcmp(op, "topic") == 0 && arity == 3)
        return do_topic(buf, len, idx, x);
    if (strcmp(op, "emitter_name") == 0 && (arity == 3 || arity == 4))
        return do_emitter_name(buf, len, idx, arity, x);
    if (strcmp(op, "persist_emitters") == 0 && arity == 4)
        return do_persist(rs, from, buf, len, idx, x, deferred);
    if (strcmp(op, "retrieve_emitters") == 0 && arity == 3)
        return do_retrieve(rs, buf, len, idx, x);
    if (strcmp(op, "group_key") == 0 && arity == 3)
        return do_group_key(buf, len, idx, x);
    if ((strcmp(op, "join") == 0 && arity == 4) || (strcmp(op, "leave") == 0 && arity == 4) ||
        (strcmp(op, "members") == 0 && arity == 3) || (strcmp(op, "broadcast") == 0 && arity == 4) ||
        (strcmp(op, "start_emitter_pool") == 0 && arity == 5) ||
        (strcmp(op, "stop_emitter_pool") == 0 && arity == 3))
        return encode_error(x, "not_implemented");
    return encode_error(x, "badarg");
}

static void on_signal(rc_procs *ps, rc_proc *self, const rc_signal *sig)
{
    rc_request_server *rs = rc_proc_ctx(self);
    if (sig->kind != RC_SIG_MSG)
        return; /* a service process outlives exit signals and monitors */
    rc_gen_from from;
    int req = 0;
    if (rc_gen_classify(sig->buf, sig->len, &from, &req) != RC_GEN_CALL) {
        rs->bad_requests++;
        LOG_D(rc_procs_logger(ps), MOD, "ignored a message that is not a gen_server call");
        return;
    }
    rs->requests++;
    ei_x_buff x;
    if (ei_x_new(&x) != 0)
        return;
    int deferred = 0;
    if (rc_gen_reply_begin(&x, &from) == 0) {
        int mark = x.index;
        if (handle_request(rs, &from, sig->buf, sig->len, req, &x, &deferred) != 0) {
            /* Encoding failed half-way (out of memory): answer something true. */
            x.index = mark;
            (void)encode_error(&x, "system_limit");
        }
        if (!deferred)
            (void)rc_gen_reply_send(ps, self, &from, &x);
    }
    ei_x_free(&x);
}

rc_request_server *rc_request_server_start(uv_loop_t *loop, rc_procs *ps, names_table *names,
                                           names_store *store, rc_stats_fn stats,
                                           void *stats_ctx)
{
    rc_request_server *rs = calloc(1, sizeof *rs);
    if (rs == NULL)
        return NULL;
    rs->loop = loop;
    rs->store = store;
    rs->ps = ps;
    rs->names = names;
    rs->stats = stats;
    rs->stats_ctx = stats_ctx;
    /* The server struct outlives its process: queued persists may still
     * complete while the node stops; rc_request_server_free releases it. */
    rs->self = rc_proc_spawn(ps, on_signal, rs, NULL);
    if (rs->self == NULL || rc_proc_register(ps, rs->self, "reckon_cnode") != 0) {
        if (rs->self)
            rc_proc_exit(ps, rs->self, "normal");
        free(rs);
        return NULL;
    }
    return rs;
}

void rc_request_server_free(rc_request_server *rs)
{
    if (rs == NULL)
        return;
    while (rs->q_head) {
        persist_job *j = rs->q_head;
        rs->q_head = j->next;
        persist_job_free(j);
    }
    free(rs);
}

uint64_t rc_request_server_count(const rc_request_server *rs) { return rs->requests; }

/* net_kernel: net_adm:ping/1 calls {is_auth, Node}; the connection being up
 * already proves the cookie, so the answer is always yes. */
static void net_kernel_signal(rc_procs *ps, rc_proc *self, const rc_signal *sig)
{
    if (sig->kind != RC_SIG_MSG)
        return;
    rc_gen_from from;
    int req = 0;
    if (rc_gen_classify(sig->buf, sig->len, &from, &req) != RC_GEN_CALL)
        return;
    int arity = 0;
    char op[MAXATOMLEN];
    if (ei_decode_tuple_header(sig->buf, &req, &arity) != 0 || arity != 2 ||
        ei_decode_atom(sig->buf, &req, op) != 0 || strcmp(op, "is_auth") != 0)
        return;
    ei_x_buff x;
    if (ei_x_new(&x) != 0)
        return;
    if (rc_gen_reply_begin(&x, &from) == 0 && ei_x_encode_atom(&x, "yes") == 0)
        (void)rc_gen_reply_send(ps, self, &from, &x);
    ei_x_free(&x);
}

int rc_net_kernel_start(rc_procs *ps)
{
    rc_proc *p = rc_proc_spawn(ps, net_kernel_signal, NULL, NULL);
    if (p == NULL)
        return -1;
    if (rc_proc_register(ps, p, "net_kernel") != 0) {
        rc_proc_exit(ps, p, "normal");
        return -1;
    }
    return 0;
}
