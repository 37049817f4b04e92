/* Durable emitter names (--data-dir) for persist_emitters and pool starts:
 * the one write queue (names_persist) on its own, with a real loop and LMDB
 * store, and pools started through the C API of a real node (no epmd) whose
 * names must be on disk when the start is reported, and must leave no pool
 * behind when the write fails. */
#include "reckon_cnode.h"

#include "naming/names_persist.h"
#include "naming/names_store.h"
#include "naming/names_table.h"
#include "store_dir.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#define U8(s) ((const uint8_t *)(s))
#define STR(s) U8(s), strlen(s)

/* The list persist_emitters(store, sub, p) stores, as the table holds it. */
static uint8_t *expected_list(const char *store, const char *sub, int64_t p, size_t *len)
{
    uint8_t *enc = NULL;
    assert_int_equal(names_table_build(STR(store), STR(sub), p, &enc, len), RC_OK);
    return enc;
}

/* What a fresh node would load from dir for (store, sub); NULL if nothing. */
static uint8_t *on_disk(const char *dir, const char *store, const char *sub, size_t *len)
{
    names_store *s = store_open(dir);
    names_table *t = names_table_new();
    assert_non_null(t);
    assert_int_equal(names_store_load(s, t, NULL, NULL), 0);
    const uint8_t *enc;
    names_table_retrieve(t, STR(store), STR(sub), &enc, len);
    uint8_t *copy = NULL;
    if (*len > 1) {
        copy = malloc(*len);
        assert_non_null(copy);
        memcpy(copy, enc, *len);
    }
    names_table_free(t);
    names_store_close(s);
    return copy;
}

/* The list persist_emitters(store, sub, p) stores is what a fresh node
 * loads from dir. */
static void expect_on_disk(const char *dir, const char *store, const char *sub, int64_t p)
{
    size_t want_len, got_len;
    uint8_t *want = expected_list(store, sub, p, &want_len);
    uint8_t *got = on_disk(dir, store, sub, &got_len);
    assert_non_null(got);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    free(got);
    free(want);
}

/* ---- the queue --------------------------------------------------------- */

/* The write queue of a test, with its store and table in a fresh
 * directory and its own loop. */
typedef struct queue {
    char dir[64];
    names_store *store;
    names_table *t;
    uv_loop_t loop;
    names_persist *q;
} queue;

/* tmpl: the directory's mkdtemp template; lg may be NULL. */
static void queue_open(queue *f, const char *tmpl, rc_logger *lg)
{
    snprintf(f->dir, sizeof f->dir, "%s", tmpl);
    store_dir_make(f->dir);
    f->store = store_open(f->dir);
    f->t = names_table_new();
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->q = names_persist_new(&f->loop, lg, f->store, f->t);
    assert_non_null(f->q);
}

/* The queue and the store closed (the table and the loop stay). */
static void queue_stop(queue *f)
{
    names_persist_free(f->q);
    f->q = NULL;
    names_store_close(f->store);
    f->store = NULL;
}

static void queue_close(queue *f)
{
    queue_stop(f);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    names_table_free(f->t);
    store_dir_remove(f->dir);
}

typedef struct outcome {
    int calls;
    int rc;
    char cause[128];
    int order; /* position among all callbacks of the test */
    size_t enc_len;
} outcome;

static int callbacks_seen;

static void record(void *ctx, int rc, const char *cause, const uint8_t *enc, size_t enc_len)
{
    outcome *o = ctx;
    (void)enc;
    o->calls++;
    o->rc = rc;
    snprintf(o->cause, sizeof o->cause, "%s", cause != NULL ? cause : "");
    o->enc_len = enc_len;
    o->order = callbacks_seen++;
}

/* Writes finish in the order they were submitted; the last one for a key
 * wins on disk and in the table alike, and the table holds each entry
 * before its callback runs. */
static void test_queue_order_and_table(void **st)
{
    (void)st;
    queue f;
    queue_open(&f, "/tmp/names_persist_order.XXXXXX", NULL);

    callbacks_seen = 0;
    outcome o[3] = {{0}};
    const int64_t sizes[3] = {3, 1, 2};
    const char *subs[3] = {"a", "b", "a"};
    for (int i = 0; i < 3; i++) {
        size_t len;
        uint8_t *enc = expected_list("st", subs[i], sizes[i], &len);
        assert_int_equal(
            names_persist_submit(f.q, STR("st"), STR(subs[i]), enc, len, record, &o[i]), 0);
    }
    assert_int_equal(names_persist_pending(f.q), 3);
    assert_int_equal(names_table_count(f.t), 0); /* nothing before its write */
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(names_persist_pending(f.q), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].rc, RC_OK);
        assert_int_equal(o[i].order, i);
    }

    size_t want_len, got_len;
    const uint8_t *got;
    uint8_t *want = expected_list("st", "a", 2, &want_len);
    names_table_retrieve(f.t, STR("st"), STR("a"), &got, &got_len);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    assert_int_equal(o[2].enc_len, want_len);
    free(want);
    queue_stop(&f);
    expect_on_disk(f.dir, "st", "a", 2);
    want = expected_list("st", "b", 1, &want_len);
    uint8_t *disk = on_disk(f.dir, "st", "b", &got_len);
    assert_non_null(disk);
    assert_memory_equal(disk, want, want_len);
    free(disk);
    free(want);
    queue_close(&f);
}

/* A write the store refuses (a key LMDB cannot hold) is reported to its
 * submitter with the store's code, logged once, and changes nothing; the
 * writes queued behind it still happen. */
static void test_queue_failure(void **st)
{
    (void)st;
    char *logbuf = NULL;
    size_t logsize = 0;
    rc_logger lg;
    rc_logger_init(&lg, RC_LOG_INFO);
    lg.out = open_memstream(&logbuf, &logsize);
    assert_non_null(lg.out);
    queue f;
    queue_open(&f, "/tmp/names_persist_fail.XXXXXX", &lg);

    callbacks_seen = 0;
    outcome bad = {0}, good = {0};
    uint8_t sub[600];
    memset(sub, 'x', sizeof sub);
    sub[0] = 0; /* logged escaped */
    size_t len;
    uint8_t *enc = expected_list("st", "whatever", 1, &len);
    assert_int_equal(names_persist_submit(f.q, STR("st"), sub, sizeof sub, enc, len, record, &bad),
                     0);
    enc = expected_list("st", "ok", 2, &len);
    assert_int_equal(names_persist_submit(f.q, STR("st"), STR("ok"), enc, len, record, &good), 0);
    uv_run(&f.loop, UV_RUN_DEFAULT);

    assert_int_equal(bad.calls, 1);
    assert_int_equal(bad.rc, RC_ESTORAGE);
    assert_string_equal(bad.cause, names_store_strerror(EINVAL));
    assert_int_equal(bad.enc_len, 0);
    assert_int_equal(good.calls, 1);
    assert_int_equal(good.rc, RC_OK);
    assert_int_equal(good.order, 1);
    assert_int_equal(names_table_count(f.t), 1);
    assert_int_equal(names_store_count(f.store), 1);

    fflush(lg.out);
    size_t lines = 0;
    for (size_t i = 0; i < logsize; i++)
        lines += logbuf[i] == '\n';
    assert_int_equal(lines, 1);
    assert_non_null(strstr(logbuf, "not stored"));
    assert_non_null(strstr(logbuf, "\\x00xxx"));
    assert_non_null(strstr(logbuf, names_store_strerror(EINVAL)));

    queue_stop(&f);
    fclose(lg.out);
    free(logbuf);
    queue_close(&f);
}

/* Writes queued while one is on disk share the next transaction; past the
 * batch size they take several; order, the table and the disk hold as for
 * single writes. A refused write inside a batch fails alone: the writes
 * beside it are retried one by one and land. */
static void test_queue_batches(void **st)
{
    (void)st;
    queue f;
    queue_open(&f, "/tmp/names_persist_batch.XXXXXX", NULL);
    enum { N = 700 };
    static outcome o[N];
    memset(o, 0, sizeof o);
    callbacks_seen = 0;
    uint8_t bad_sub[600];
    memset(bad_sub, 'y', sizeof bad_sub);
    for (int i = 0; i < N; i++) {
        char sub[16];
        snprintf(sub, sizeof sub, "s%d", i);
        size_t len;
        uint8_t *enc = expected_list("st", sub, 1 + i % 3, &len);
        /* i == 1 is queued behind the first write, inside the first batch */
        int rc = i == 1 ? names_persist_submit(f.q, STR("st"), bad_sub, sizeof bad_sub, enc,
                                               len, record, &o[i])
                        : names_persist_submit(f.q, STR("st"), STR(sub), enc, len, record,
                                               &o[i]);
        assert_int_equal(rc, 0);
    }
    uv_run(&f.loop, UV_RUN_DEFAULT);
    for (int i = 0; i < N; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].order, i);
        assert_int_equal(o[i].rc, i == 1 ? RC_ESTORAGE : RC_OK);
    }
    assert_int_equal(names_table_count(f.t), N - 1);
    assert_int_equal(names_store_count(f.store), N - 1);
    queue_stop(&f);
    expect_on_disk(f.dir, "st", "s699", 1 + 699 % 3);
    expect_on_disk(f.dir, "st", "s2", 3);
    queue_close(&f);
}

/* ---- pools through the C API of a node with a data_dir ------------------ */

typedef struct starter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int reported; /* done calls so far */
    int rc;
    size_t npids;
    int start_rc;        /* rc_emitter_pool_start's own result */
    int reported_inline; /* done ran before rc_emitter_pool_start returned */
    long local_members;
    uint64_t pools;
} starter;

static void started(void *ctx, int rc, const rc_pid *pids, size_t npids)
{
    starter *s = ctx;
    (void)pids;
    pthread_mutex_lock(&s->mu);
    s->reported++;
    s->rc = rc;
    s->npids = npids;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void start_pool(rc_node *n, void *ctx)
{
    starter *s = ctx;
    s->start_rc = rc_emitter_pool_start(n, STR("dd"), STR("sub"), 3, NULL, started, s);
    /* done runs on this thread: if it has run by now, it ran inside the call */
    s->reported_inline = s->reported;
}

/* Runs on the loop thread: records, the main thread asserts. */
static void probe(rc_node *n, void *ctx)
{
    starter *s = ctx;
    char group[128];
    size_t glen = 0;
    rc_pid out[8];
    s->local_members =
        rc_group_key_term(STR("dd"), STR("sub"), group, sizeof group, &glen) == 0
            ? rc_pg_get_local_members(n, NULL, group, glen, out, 8)
            : -2;
    rc_stat stats[64];
    size_t k = rc_node_stats(n, stats, 64);
    s->pools = UINT64_MAX;
    for (size_t i = 0; i < k && i < 64; i++)
        if (strcmp(stats[i].name, "emitter_pools") == 0)
            s->pools = stats[i].value;
}

static int await_report(starter *s)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&s->mu);
    while (s->reported == 0 &&
           pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0)
        ;
    int n = s->reported;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void *run_loop(void *arg)
{
    rc_node_run(arg);
    return NULL;
}

static rc_node *node_on(const char *dir, pthread_t *loop)
{
    rc_node_config cfg;
    rc_node_config_init(&cfg);
    cfg.sname = "pool_persist_test";
    cfg.cookie = "test";
    cfg.no_epmd = 1;
    cfg.handle_signals = 0;
    cfg.log_level = 0;
    cfg.data_dir = dir;
    char err[256];
    rc_node *n = NULL;
    assert_int_equal(rc_node_create(&n, &cfg, err, sizeof err), 0);
    assert_int_equal(pthread_create(loop, NULL, run_loop, n), 0);
    return n;
}

static void node_end(rc_node *n, pthread_t loop)
{
    rc_node_stop(n);
    pthread_join(loop, NULL);
    rc_node_destroy(n);
}

static void starter_init(starter *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
}

/* A start of the pool through s, which is reported once as a success with
 * its three emitters. */
static void pool_started(rc_node *n, starter *s)
{
    starter_init(s);
    assert_int_equal(rc_node_call(n, start_pool, s), 0);
    assert_int_equal(s->start_rc, 0);
    assert_int_equal(await_report(s), 1);
    assert_int_equal(s->rc, 0);
    assert_int_equal(s->npids, 3);
}

/* The start is reported after the write, never inside the call, and by then
 * the names are on disk. */
static void test_pool_names_on_disk_when_reported(void **st)
{
    (void)st;
    char tmpl[] = "/tmp/pool_persist_ok.XXXXXX";
    char *dir = store_dir_make(tmpl);
    pthread_t loop;
    rc_node *n = node_on(dir, &loop);
    starter s;
    pool_started(n, &s);
    assert_int_equal(s.reported_inline, 0); /* set by the call, before the report */
    assert_int_equal(rc_node_call(n, probe, &s), 0);
    assert_int_equal(s.local_members, 3);
    assert_int_equal(s.pools, 1);
    /* a second start while it runs is refused at once */
    starter again;
    starter_init(&again);
    assert_int_equal(rc_node_call(n, start_pool, &again), 0);
    assert_int_equal(again.start_rc, RC_EEXISTS);
    node_end(n, loop);
    /* (LMDB forbids a second handle in the process while the node has one.
     * That the write was synced before the report is the kill -9 case of
     * the Erlang suite.) */
    expect_on_disk(dir, "dd", "sub", 3);
    store_dir_remove(dir);
}

/* The store cannot grow its file (RLIMIT_FSIZE): the start is reported as
 * failed, nothing is on disk, no emitter runs, and the same pool starts
 * once the store works again. */
static void test_pool_write_failure_leaves_nothing(void **st)
{
    (void)st;
    char tmpl[] = "/tmp/pool_persist_fail.XXXXXX";
    char *dir = store_dir_make(tmpl);
    pthread_t loop;
    rc_node *n = node_on(dir, &loop);
    char data[512];
    snprintf(data, sizeof data, "%s/data.mdb", dir);
    struct stat sb;
    assert_int_equal(stat(data, &sb), 0);
    struct rlimit was, cap;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
    cap = was;
    cap.rlim_cur = (rlim_t)sb.st_size;
    /* EFBIG from the write instead of the signal's default (exit) */
    void (*old)(int) = signal(SIGXFSZ, SIG_IGN);

    starter s;
    starter_init(&s);
    /* Nothing in this window writes to a file but LMDB: stdout and stderr
     * may be files past the limit. */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &cap), 0);
    int called = rc_node_call(n, start_pool, &s);
    int reports = called == 0 && s.start_rc == 0 ? await_report(&s) : -1;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);
    signal(SIGXFSZ, old);

    assert_int_equal(called, 0);
    assert_int_equal(s.start_rc, 0);
    assert_int_equal(reports, 1);
    assert_int_equal(s.rc, RC_ESTORAGE);
    assert_int_equal(s.npids, 0);
    assert_int_equal(rc_node_call(n, probe, &s), 0);
    assert_int_equal(s.local_members, 0);
    assert_int_equal(s.pools, 0);
    node_end(n, loop);
    size_t len;
    assert_null(on_disk(dir, "dd", "sub", &len));

    n = node_on(dir, &loop);
    starter retry;
    pool_started(n, &retry);
    node_end(n, loop);
    uint8_t *got = on_disk(dir, "dd", "sub", &len);
    assert_non_null(got);
    free(got);
    store_dir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_order_and_table),
        cmocka_unit_test(test_queue_failure),
        cmocka_unit_test(test_queue_batches),
        cmocka_unit_test(test_pool_names_on_disk_when_reported),
        cmocka_unit_test(test_pool_write_failure_leaves_nothing),
    };
    return cmocka_run_group_tests_name("pool_persist", tests, NULL, NULL);
}
