/* A peer is read on while our output to it is busy, on a real transport.
 * Each frame the peer sends is answered with 256 KiB to that peer, and the
 * peer reads nothing until it has sent them all: our output to it passes
 * the busy mark, yet every one of its frames is still handed up (another C
 * node pausing the same way would otherwise wait on us while we wait on
 * it, and a BEAM peer's pg scope would suspend on its busy port to us).
 * Then it reads every answer: nothing was lost. What such a peer can make
 * us hold is bounded: one that never reads is dropped as too slow once the
 * output passes max_output_bytes, with a line naming it. */
#include "dist_peer.h"

#define CHATTY "chatty@127.0.0.1"
#define ASKS 128
#define ANSWER_BYTES (256u << 10)

typedef struct asked {
    atomic_int frames; /* handed up */
    atomic_int all_in;
    atomic_int stop_answering;
    char *answer; /* the message part: a binary term of ANSWER_BYTES */
    size_t answer_len;
} asked;

static void on_frame(void *ctx, rc_conn *c, const char *payload, size_t len)
{
    (void)payload;
    (void)len;
    dp_fixture *f = ctx;
    asked *a = f->user;
    static const char ctrl[] = "\x83h\x01a\x02";
    if (!atomic_load(&a->stop_answering))
        (void)rc_dist_send(f->dist, c, ctrl, sizeof ctrl - 1, a->answer, a->answer_len);
    if (atomic_fetch_add(&a->frames, 1) + 1 == ASKS)
        atomic_store(&a->all_in, 1);
}

static void make_answer(asked *a)
{
    a->answer_len = 6 + ANSWER_BYTES;
    a->answer = calloc(1, a->answer_len);
    assert_non_null(a->answer);
    uint8_t *p = (uint8_t *)a->answer;
    p[0] = 131;
    p[1] = 109;
    p[2] = (uint8_t)(ANSWER_BYTES >> 24);
    p[3] = (uint8_t)(ANSWER_BYTES >> 16);
    p[4] = (uint8_t)(ANSWER_BYTES >> 8);
    p[5] = (uint8_t)ANSWER_BYTES;
}

static const uint8_t ask[] = {0, 0, 0, 7, 131, 68, 0, 104, 1, 97, 1};

typedef struct reader {
    int fd;
    int want;
    int got;
    int64_t bad_len;
    atomic_int finished;
} reader;

static void *run_reader(void *arg)
{
    reader *r = arg;
    uint8_t *body = malloc(ANSWER_BYTES + 64);
    for (; body != NULL && r->got < r->want; r->got++) {
        int64_t len = dp_next_frame_len(r->fd);
        if (len < 0 || len > ANSWER_BYTES + 64) {
            r->bad_len = len;
            break;
        }
        if (dp_read_all(r->fd, body, (size_t)len) != 0)
            break;
    }
    free(body);
    atomic_store(&r->finished, 1);
    return NULL;
}

static void test_read_on_while_own_output_busy(void **state)
{
    (void)state;
    static dp_fixture f;
    static asked a;
    make_answer(&a);
    dp_start(&f, on_frame, &a, 64u << 20, 0);
    /* a small receive buffer, so that the answers wait on our side */
    dp_client cl = {.f = &f, .name = CHATTY, .rcvbuf = 64 << 10};
    dp_connect(&f, &cl, 1);
    for (int i = 0; i < ASKS; i++)
        assert_int_equal(dp_write_all(cl.fd, ask, sizeof ask), 0);
    atomic_int *in[] = {&a.all_in};
    dp_pump_until(&f, in, 1, 20000);
    const rc_dist_stats *st = rc_dist_get_stats(f.dist);
    printf("%d frames handed up while %d MiB of answers waited; busy marks passed %llu, "
           "read pauses %llu\n",
           atomic_load(&a.frames), (int)((ASKS * (uint64_t)ANSWER_BYTES) >> 20),
           (unsigned long long)st->busy_destinations, (unsigned long long)st->read_pauses);
    assert_int_equal(atomic_load(&a.frames), ASKS);
    assert_true(st->busy_destinations >= 1);
    assert_int_equal(st->read_pauses, 0);
    /* now it reads: every answer arrives, in whole frames */
    reader r = {.fd = cl.fd, .want = ASKS};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_reader, &r), 0);
    atomic_int *out[] = {&r.finished};
    dp_pump_until(&f, out, 1, 60000);
    pthread_join(t, NULL);
    assert_int_equal(r.bad_len, 0);
    assert_int_equal(r.got, ASKS);
    assert_int_equal(rc_dist_connection_count(f.dist), 1);
    assert_int_equal(st->err_output_overflow, 0);
    close(cl.fd);
    dp_finish(&f);
    free(a.answer);
}

typedef struct asker {
    int fd;
    atomic_int stop;
} asker;

static void *run_asker(void *arg)
{
    asker *k = arg;
    while (!atomic_load(&k->stop) && dp_write_all(k->fd, ask, sizeof ask) == 0)
        ;
    return NULL;
}

static void test_peer_that_never_reads_dropped_at_limit(void **state)
{
    (void)state;
    static dp_fixture f;
    static asked a;
    make_answer(&a);
    dp_start(&f, on_frame, &a, 64u << 20, 8u << 20);
    dp_client cl = {.f = &f, .name = CHATTY, .rcvbuf = 64 << 10};
    dp_connect(&f, &cl, 1);
    asker k = {.fd = cl.fd};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_asker, &k), 0);
    uint64_t end = sockio_now_ms() + 20000;
    while (rc_dist_connection_count(f.dist) > 0 && sockio_now_ms() < end)
        uv_run(&f.loop, UV_RUN_ONCE);
    atomic_store(&k.stop, 1);
    shutdown(cl.fd, SHUT_RDWR); /* a write blocked on the full socket returns */
    pthread_join(t, NULL);
    assert_int_equal(rc_dist_connection_count(f.dist), 0);
    assert_int_equal(rc_dist_get_stats(f.dist)->err_output_overflow, 1);
    /* each answer is 256 KiB: the limit was passed by less than one */
    int handed = atomic_load(&a.frames);
    assert_true(handed > 32 && handed <= 80);
    char *log = dp_log_text(&f);
    if (strstr(log, "output to " CHATTY " exceeds 8388608 bytes: peer too slow") == NULL)
        fail_msg("no line about the dropped peer in:\n%s", log);
    free(log);
    close(cl.fd);
    dp_finish(&f);
    free(a.answer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_on_while_own_output_busy),
        cmocka_unit_test(test_peer_that_never_reads_dropped_at_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
