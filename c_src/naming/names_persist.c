/* names_persist: see names_persist.h. */
#include "naming/names_persist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MOD "names"
/* Enough of a subscription id to recognise it in a log line. */
#define LOG_SUB_MAX 64
/* Writes queued while one is on disk go together in the next transaction
 * (one fsync for many pool starts), up to this many. */
#define BATCH_MAX 256

typedef struct job {
    uint8_t *key; /* store bytes then sub bytes */
    size_t store_len, sub_len;
    uint8_t *enc;
    size_t enc_len;
    int err;
    names_persist_fn done;
    void *ctx;
    struct job *next;
} job;

struct names_persist {
    uv_loop_t *loop;
    const rc_logger *lg;
    names_store *store;
    names_table *table;
    job *head, *tail;
    size_t pending;
    int writing;
    /* The transaction on the pool: its jobs in queue order, and their
     * records (read by the worker only). */
    uv_work_t req;
    job *batch[BATCH_MAX];
    names_store_rec recs[BATCH_MAX];
    size_t nbatch;
};

names_persist *names_persist_new(uv_loop_t *loop, const rc_logger *lg, names_store *store,
                                 names_table *table)
{
    names_persist *q = calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    q->loop = loop;
    q->lg = lg;
    q->store = store;
    q->table = table;
    return q;
}

static void job_free(job *j)
{
    free(j->key);
    free(j->enc);
    free(j);
}

/* Subscription ids are arbitrary bytes: escape them for a one-line log. */
static void log_failure(const names_persist *q, const job *j)
{
    char sub[LOG_SUB_MAX * 4 + 4];
    size_t o = 0, n = j->sub_len < LOG_SUB_MAX ? j->sub_len : LOG_SUB_MAX;
    const uint8_t *s = j->key + j->store_len;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
            sub[o++] = (char)s[i];
        else
            o += (size_t)snprintf(sub + o, sizeof sub - o, "\\x%02x", s[i]);
    }
    if (n < j->sub_len)
        o += (size_t)snprintf(sub + o, sizeof sub - o, "...");
    sub[o] = '\0';
    LOG_E(q->lg, MOD, "emitter names of {'%.*s', <<\"%s\">>} not stored: %s", (int)j->store_len,
          (const char *)j->key, sub, names_store_strerror(j->err));
}

static void start_next(names_persist *q);

/* One transaction for the batch; if it fails and holds more than one
 * write, each is tried alone, so one bad write does not fail the rest. */
static void work(uv_work_t *req)
{
    names_persist *q = req->data;
    int err = names_store_put_many(q->store, q->recs, q->nbatch);
    for (size_t i = 0; i < q->nbatch; i++)
        q->batch[i]->err =
            err == 0 || q->nbatch == 1 ? err : names_store_put_many(q->store, &q->recs[i], 1);
}

/* Runs the callback and releases the job; the table is updated first so the
 * callback (and any request after it) sees what the disk has. */
static void finish(names_persist *q, job *j)
{
    const uint8_t *enc = NULL;
    size_t enc_len = 0;
    if (j->err == 0) {
        int st =
            names_table_insert_encoded(q->table, j->key, j->store_len, j->key + j->store_len,
                                       j->sub_len, j->enc, j->enc_len);
        if (st == RC_OK)
            names_table_retrieve(q->table, j->key, j->store_len, j->key + j->store_len,
                                 j->sub_len, &enc, &enc_len);
        else
            j->err = ENOMEM; /* the list was built by names_table_build: only memory fails */
    }
    if (j->err != 0)
        log_failure(q, j);
    q->pending--;
    j->done(j->ctx, j->err == 0 ? RC_OK : RC_ESTORAGE,
            j->err == 0 ? NULL : names_store_strerror(j->err), enc, enc_len);
    job_free(j);
}

static void after_work(uv_work_t *req, int status)
{
    names_persist *q = req->data;
    /* Still marked writing while the callbacks run: a write they submit
     * waits in the queue instead of reusing the batch being finished. */
    for (size_t i = 0; i < q->nbatch; i++) {
        if (status != 0)
            q->batch[i]->err = ECANCELED;
        finish(q, q->batch[i]);
    }
    q->nbatch = 0;
    q->writing = 0;
    start_next(q);
}

static void start_next(names_persist *q)
{
    while (!q->writing && q->head != NULL) {
        size_t n = 0;
        while (q->head != NULL && n < BATCH_MAX) {
            job *j = q->head;
            q->head = j->next;
            q->batch[n] = j;
            q->recs[n] = (names_store_rec){.store = j->key, .store_len = j->store_len,
                                           .sub = j->key + j->store_len,
                                           .sub_len = j->sub_len, .enc = j->enc,
                                           .enc_len = j->enc_len};
            n++;
        }
        if (q->head == NULL)
            q->tail = NULL;
        q->nbatch = n;
        q->req.data = q;
        if (uv_queue_work(q->loop, &q->req, work, after_work) == 0) {
            q->writing = 1;
            return;
        }
        q->writing = 1; /* as in after_work */
        for (size_t i = 0; i < n; i++) {
            q->batch[i]->err = ECANCELED;
            finish(q, q->batch[i]);
        }
        q->nbatch = 0;
        q->writing = 0;
    }
}

int names_persist_submit(names_persist *q, const uint8_t *store, size_t store_len,
                         const uint8_t *sub, size_t sub_len, uint8_t *enc, size_t enc_len,
                         names_persist_fn done, void *ctx)
{
    job *j = calloc(1, sizeof *j);
    uint8_t *key = malloc(store_len + sub_len + 1);
    if (j == NULL || key == NULL) {
        free(j);
        free(key);
        free(enc);
        return -1;
    }
    if (store_len > 0)
        memcpy(key, store, store_len);
    if (sub_len > 0)
        memcpy(key + store_len, sub, sub_len);
    j->key = key;
    j->store_len = store_len;
    j->sub_len = sub_len;
    j->enc = enc;
    j->enc_len = enc_len;
    j->done = done;
    j->ctx = ctx;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->pending++;
    start_next(q);
    return 0;
}

size_t names_persist_pending(const names_persist *q) { return q->pending; }

void names_persist_free(names_persist *q)
{
    if (q == NULL)
        return;
    while (q->head != NULL) {
        job *j = q->head;
        q->head = j->next;
        j->err = ECANCELED;
        finish(q, j);
    }
    free(q);
}
