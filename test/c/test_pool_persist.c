/* Durable emitter names (--data-dir): the one write queue (names_persist) on
 * its own, with a real loop and LMDB store. */
#include "naming/names_persist.h"
#include "naming/names_store.h"
#include "naming/names_table.h"

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define U8(s) ((const uint8_t *)(s))
#define STR(s) U8(s), strlen(s)

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* The list persist_emitters(store, sub, p) stores, as the table holds it. */
static uint8_t *expected_list(const char *store, const char *sub, int64_t p, size_t *len)
{
    uint8_t *enc = NULL;
    assert_int_equal(names_table_build(STR(store), STR(sub), p, &enc, len), NAMING_OK);
    return enc;
}

/* What a fresh node would load from dir for (store, sub); NULL if nothing. */
static uint8_t *on_disk(const char *dir, const char *store, const char *sub, size_t *len)
{
    names_store *s = NULL;
    assert_int_equal(names_store_open(dir, &s), 0);
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

/* ---- the queue --------------------------------------------------------- */

typedef struct outcome {
    int calls;
    int err;
    int order; /* position among all callbacks of the test */
    size_t enc_len;
} outcome;

static int callbacks_seen;

static void record(void *ctx, int err, const uint8_t *enc, size_t enc_len)
{
    outcome *o = ctx;
    (void)enc;
    o->calls++;
    o->err = err;
    o->enc_len = enc_len;
    o->order = callbacks_seen++;
}

/* Writes finish in the order they were submitted; the last one for a key
 * wins on disk and in the table alike, and the table holds each entry
 * before its callback runs. */
static void test_queue_order_and_table(void **st)
{
    (void)st;
    char tmpl[] = "/tmp/names_persist_order.XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    names_store *store = NULL;
    assert_int_equal(names_store_open(dir, &store), 0);
    names_table *t = names_table_new();
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    names_persist *q = names_persist_new(&loop, NULL, store, t);
    assert_non_null(q);

    callbacks_seen = 0;
    outcome o[3] = {{0}};
    const int64_t sizes[3] = {3, 1, 2};
    const char *subs[3] = {"a", "b", "a"};
    for (int i = 0; i < 3; i++) {
        size_t len;
        uint8_t *enc = expected_list("st", subs[i], sizes[i], &len);
        assert_int_equal(names_persist_submit(q, STR("st"), STR(subs[i]), enc, len, record, &o[i]),
                         0);
    }
    assert_int_equal(names_persist_pending(q), 3);
    assert_int_equal(names_table_count(t), 0); /* nothing before its write */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(names_persist_pending(q), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].err, 0);
        assert_int_equal(o[i].order, i);
    }

    size_t want_len, got_len;
    const uint8_t *got;
    uint8_t *want = expected_list("st", "a", 2, &want_len);
    names_table_retrieve(t, STR("st"), STR("a"), &got, &got_len);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    assert_int_equal(o[2].enc_len, want_len);
    names_persist_free(q);
    names_store_close(store);
    uint8_t *disk = on_disk(dir, "st", "a", &got_len);
    assert_non_null(disk);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(disk, want, want_len);
    free(disk);
    free(want);
    want = expected_list("st", "b", 1, &want_len);
    disk = on_disk(dir, "st", "b", &got_len);
    assert_non_null(disk);
    assert_memory_equal(disk, want, want_len);
    free(disk);
    free(want);

    assert_int_equal(uv_loop_close(&loop), 0);
    names_table_free(t);
    rm_tree(dir);
}

/* A write the store refuses (a key LMDB cannot hold) is reported to its
 * submitter with the store's code, logged once, and changes nothing; the
 * writes queued behind it still happen. */
static void test_queue_failure(void **st)
{
    (void)st;
    char tmpl[] = "/tmp/names_persist_fail.XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    names_store *store = NULL;
    assert_int_equal(names_store_open(dir, &store), 0);
    names_table *t = names_table_new();
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char *logbuf = NULL;
    size_t logsize = 0;
    rc_logger lg;
    rc_logger_init(&lg, RC_LOG_INFO);
    lg.out = open_memstream(&logbuf, &logsize);
    assert_non_null(lg.out);
    names_persist *q = names_persist_new(&loop, &lg, store, t);
    assert_non_null(q);

    callbacks_seen = 0;
    outcome bad = {0}, good = {0};
    uint8_t sub[600];
    memset(sub, 'x', sizeof sub);
    sub[0] = 0; /* logged escaped */
    size_t len;
    uint8_t *enc = expected_list("st", "whatever", 1, &len);
    assert_int_equal(names_persist_submit(q, STR("st"), sub, sizeof sub, enc, len, record, &bad), 0);
    enc = expected_list("st", "ok", 2, &len);
    assert_int_equal(names_persist_submit(q, STR("st"), STR("ok"), enc, len, record, &good), 0);
    uv_run(&loop, UV_RUN_DEFAULT);

    assert_int_equal(bad.calls, 1);
    assert_int_equal(bad.err, EINVAL);
    assert_int_equal(bad.enc_len, 0);
    assert_int_equal(good.calls, 1);
    assert_int_equal(good.err, 0);
    assert_int_equal(good.order, 1);
    assert_int_equal(names_table_count(t), 1);
    assert_int_equal(names_store_count(store), 1);

    fflush(lg.out);
    size_t lines = 0;
    for (size_t i = 0; i < logsize; i++)
        lines += logbuf[i] == '\n';
    assert_int_equal(lines, 1);
    assert_non_null(strstr(logbuf, "not stored"));
    assert_non_null(strstr(logbuf, "\\x00xxx"));
    assert_non_null(strstr(logbuf, names_store_strerror(EINVAL)));

    names_persist_free(q);
    fclose(lg.out);
    free(logbuf);
    assert_int_equal(uv_loop_close(&loop), 0);
    names_store_close(store);
    names_table_free(t);
    rm_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_order_and_table),
        cmocka_unit_test(test_queue_failure),
    };
    return cmocka_run_group_tests_name("pool_persist", tests, NULL, NULL);
}
