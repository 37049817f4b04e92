/* Eight producer threads broadcast through the C API into a pool of C
 * emitters whose subscriber is a C process on the same node: every event
 * must arrive exactly once, term-equal. Runs a real node (loop thread,
 * producer queue, emitters, fan-out) without epmd; also built under TSan. */
#include "reckon_cnode.h"

#include <ei.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define THREADS 8
#define PER_THREAD 5000
#define TOTAL (THREADS * PER_THREAD)

typedef struct shared {
    rc_node *node;
    rc_target *target;
    uint8_t seen[TOTAL]; /* written on the loop thread only */
    unsigned long received, malformed;
    rc_pid subscriber;
} shared;

/* The subscriber: {events, [Event]} where Event's id is <<Seq:32>>. */
static void on_events(void *ctx, const rc_pid *self, const char *msg, size_t len)
{
    (void)self;
    shared *sh = ctx;
    int idx = 0, v = 0, arity = 0, n = 0, type = 0, size = 0;
    char tag[MAXATOMLEN];
    if (ei_decode_version(msg, &idx, &v) || ei_decode_tuple_header(msg, &idx, &arity) ||
        arity != 2 || ei_decode_atom(msg, &idx, tag) || strcmp(tag, "events") != 0 ||
        ei_decode_list_header(msg, &idx, &n) || n != 1 ||
        ei_decode_tuple_header(msg, &idx, &arity) || arity != 12 ||
        ei_decode_atom(msg, &idx, tag) || ei_get_type(msg, &idx, &type, &size) || size != 4) {
        sh->malformed++;
        return;
    }
    unsigned char id[4];
    long blen = 0;
    if (ei_decode_binary(msg, &idx, id, &blen) != 0 || (size_t)idx > len) {
        sh->malformed++;
        return;
    }
    uint32_t seq = ((uint32_t)id[0] << 24) | ((uint32_t)id[1] << 16) | ((uint32_t)id[2] << 8) | id[3];
    if (seq < TOTAL && sh->seen[seq] < 255)
        sh->seen[seq]++;
    sh->received++;
}

static void pool_started(void *ctx, int rc, const rc_pid *pids, size_t npids)
{
    (void)pids;
    assert_int_equal(rc, 0);
    *(size_t *)ctx = npids;
}

static void setup_pool(rc_node *n, void *ctx)
{
    shared *sh = ctx;
    assert_int_equal(rc_process_spawn(n, on_events, sh, &sh->subscriber), 0);
    /* no data_dir: the outcome is reported before the call returns */
    size_t started = 0;
    assert_int_equal(rc_emitter_pool_start(n, (const uint8_t *)"store", 5, (const uint8_t *)"sub", 3,
                                           4, &sh->subscriber, pool_started, &started),
                     0);
    assert_int_equal(started, 4);
}

typedef struct producer {
    shared *sh;
    int id;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        uint32_t seq = (uint32_t)(p->id * PER_THREAD + i);
        uint8_t id[4] = {(uint8_t)(seq >> 24), (uint8_t)(seq >> 16), (uint8_t)(seq >> 8), (uint8_t)seq};
        rc_event_fields f;
        memset(&f, 0, sizeof f);
        f.event_id = id;
        f.event_id_len = 4;
        f.event_type = (const uint8_t *)"t";
        f.event_type_len = 1;
        f.data = (const uint8_t *)"payload";
        f.data_len = 7;
        f.version = seq;
        uint8_t *ev;
        size_t len;
        if (rc_event_build(&f, &ev, &len) != 0 || rc_broadcast(p->sh->node, p->sh->target, ev, len) != 0)
            abort();
        free(ev);
    }
    return NULL;
}

static void *run_loop(void *arg)
{
    rc_node_run(arg);
    return NULL;
}

static void count_check(rc_node *n, void *ctx)
{
    (void)n;
    (void)ctx;
}

static void test_eight_producers_exactly_once(void **state)
{
    (void)state;
    static shared sh;
    memset(&sh, 0, sizeof sh);
    rc_node_config cfg;
    rc_node_config_init(&cfg);
    cfg.sname = "bcast_test";
    cfg.cookie = "test";
    cfg.no_epmd = 1;
    cfg.handle_signals = 0;
    cfg.log_level = 0;
    char err[256];
    assert_int_equal(rc_node_create(&sh.node, &cfg, err, sizeof err), 0);
    pthread_t loop;
    assert_int_equal(pthread_create(&loop, NULL, run_loop, sh.node), 0);
    assert_int_equal(rc_node_call(sh.node, setup_pool, &sh), 0);
    sh.target = rc_target_new((const uint8_t *)"store", 5, (const uint8_t *)"sub", 3);
    assert_non_null(sh.target);

    pthread_t th[THREADS];
    producer pr[THREADS];
    for (int i = 0; i < THREADS; i++) {
        pr[i].sh = &sh;
        pr[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, produce, &pr[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(rc_broadcast_flush(sh.node, 30000), 0);
    /* A call runs after everything the flush covered, on the same thread. */
    assert_int_equal(rc_node_call(sh.node, count_check, NULL), 0);
    rc_node_stop(sh.node);
    pthread_join(loop, NULL);

    assert_int_equal(sh.malformed, 0);
    assert_int_equal(sh.received, TOTAL);
    for (int i = 0; i < TOTAL; i++) {
        if (sh.seen[i] != 1)
            fail_msg("event %d seen %d times", i, sh.seen[i]);
    }
    rc_target_free(sh.target);
    rc_node_destroy(sh.node);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eight_producers_exactly_once),
    };
    return cmocka_run_group_tests_name("broadcast_threads", tests, NULL, NULL);
}
