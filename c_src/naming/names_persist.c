/* names_persist: see names_persist.h. */
#include "naming/names_persist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MOD "names"
/* Enough of a subscription id to recognise it in a log line. */
#define LOG_SUB_MAX 64

typedef struct job {
    uv_work_t req;
    names_persist *q;
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

static void work(uv_work_t *req)
{
    job *j = req->data;
    j->err = names_store_put(j->q->store, j->key, j->store_len, j->key + j->store_len, j->sub_len,
                             j->enc, j->enc_len);
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
    job *j = req->data;
    names_persist *q = j->q;
    q->writing = 0;
    if (status != 0)
        j->err = ECANCELED;
    finish(q, j);
    start_next(q);
}

static void start_next(names_persist *q)
{
    while (!q->writing && q->head != NULL) {
        job *j = q->head;
        q->head = j->next;
        if (q->head == NULL)
            q->tail = NULL;
        j->req.data = j;
        if (uv_queue_work(q->loop, &j->req, work, after_work) == 0) {
            q->writing = 1;
            return;
        }
        j->err = ECANCELED;
        finish(q, j);
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
    j->q = q;
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
