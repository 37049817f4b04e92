/* A damaged --data-dir is refused with words that name data.mdb and say
 * what to do, never loaded into a crash or an empty start: data.mdb cut to
 * nothing, to its meta pages, to half, removed beside its lock.mdb, or with
 * bytes flipped in its data pages. A new directory still starts empty, and
 * a full file system is reported as no space. */
#include "naming/names_store.h"
#include "naming/names_table.h"
#include "store_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#define U8(s) ((const uint8_t *)(s))
#define STR(s) U8(s), strlen(s)
/* As many entries as were acknowledged in the run that lost them. */
#define ENTRIES 300
#define PAGE 4096

/* One store of ENTRIES pools of 3, written once (each put is synced, which
 * is slow); every test damages a copy of it. */
static char master[] = "/tmp/store_master.XXXXXX";

static int write_master(void **st)
{
    (void)st;
    store_dir_make(master);
    names_store *s = store_open(master);
    for (int i = 0; i < ENTRIES; i++) {
        char sub[32];
        uint8_t *enc = NULL;
        size_t len;
        snprintf(sub, sizeof sub, "subscription_%d", i);
        assert_int_equal(names_table_build(STR("store"), STR(sub), 3, &enc, &len), RC_OK);
        assert_int_equal(names_store_put(s, STR("store"), STR(sub), enc, len), 0);
        free(enc);
    }
    names_store_close(s);
    return 0;
}

static int remove_master(void **st)
{
    (void)st;
    store_dir_remove(master);
    return 0;
}

static off_t copy_file(const char *from_dir, const char *to_dir, const char *name)
{
    char from[512], to[512];
    static uint8_t buf[1 << 16];
    assert_true((size_t)snprintf(from, sizeof from, "%s/%s", from_dir, name) < sizeof from);
    assert_true((size_t)snprintf(to, sizeof to, "%s/%s", to_dir, name) < sizeof to);
    int in = open(from, O_RDONLY);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(in >= 0 && out >= 0);
    off_t total = 0;
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        assert_int_equal(write(out, buf, (size_t)n), n);
        total += n;
    }
    assert_int_equal(n, 0);
    close(in);
    close(out);
    return total;
}

/* A copy of the master store in a fresh directory; data.mdb's size in
 * *size. */
static char *make_store(char *tmpl, off_t *size)
{
    char *dir = store_dir_make(tmpl);
    *size = copy_file(master, dir, "data.mdb");
    (void)copy_file(master, dir, "lock.mdb");
    return dir;
}

static void data_path(char *buf, size_t cap, const char *dir)
{
    assert_true((size_t)snprintf(buf, cap, "%s/data.mdb", dir) < cap);
}

static void cut(const char *dir, off_t len)
{
    char path[512];
    data_path(path, sizeof path, dir);
    assert_int_equal(truncate(path, len), 0);
}

/* What a node does at start: open, then load. Returns the first error. */
static int start_counted(const char *dir, size_t *loaded, size_t *skipped_out)
{
    names_store *s = NULL;
    *loaded = 0;
    int rc = names_store_open(dir, &s);
    if (rc != 0) {
        assert_null(s);
        if (skipped_out != NULL)
            *skipped_out = 0;
        return rc;
    }
    names_table *t = names_table_new();
    assert_non_null(t);
    size_t skipped = 0;
    rc = names_store_load(s, t, loaded, &skipped);
    if (rc == NAMES_STORE_EFAULT)
        assert_int_equal(names_table_count(t), 0);
    names_table_free(t);
    names_store_close(s);
    if (skipped_out != NULL)
        *skipped_out = skipped;
    return rc;
}

static int start(const char *dir, size_t *loaded) { return start_counted(dir, loaded, NULL); }

/* Refused, and the words name the file and both ways out. */
static void expect_refused(int rc)
{
    assert_int_not_equal(rc, 0);
    const char *why = names_store_strerror(rc);
    assert_non_null(strstr(why, "data.mdb"));
    assert_non_null(strstr(why, "restore data.mdb from a backup"));
    assert_non_null(strstr(why, "move the data directory aside"));
}

static void test_fresh_directory_starts_empty(void **st)
{
    (void)st;
    char tmpl[] = "/tmp/store_fresh.XXXXXX";
    char *base = store_dir_make(tmpl);
    char dir[256];
    size_t loaded = 99;
    /* an existing empty directory, and one open creates */
    assert_int_equal(start(base, &loaded), 0);
    assert_int_equal(loaded, 0);
    snprintf(dir, sizeof dir, "%s/new", base);
    assert_int_equal(start(dir, &loaded), 0);
    assert_int_equal(loaded, 0);
    /* and what it then holds survives */
    assert_int_equal(start(dir, &loaded), 0);
    store_dir_remove(dir);
    store_dir_remove(base);
}

static void test_intact_store_loads(void **st)
{
    (void)st;
    char tmpl[] = "/tmp/store_intact.XXXXXX";
    off_t size;
    char *dir = make_store(tmpl, &size);
    size_t loaded = 0;
    assert_int_equal(start(dir, &loaded), 0);
    assert_int_equal(loaded, ENTRIES);
    store_dir_remove(dir);
}

static void test_truncated_to_zero(void **st)
{
    (void)st;
    char tmpl[] = "/tmp/store_zero.XXXXXX";
    off_t size;
    char *dir = make_store(tmpl, &size);
    cut(dir, 0);
    size_t loaded = 0;
    int rc = start(dir, &loaded);
    assert_int_equal(rc, NAMES_STORE_EEMPTY);
    expect_refused(rc);
    /* refused again: the refusal left no fresh store behind */
    assert_int_equal(start(dir, &loaded), NAMES_STORE_EEMPTY);
    store_dir_remove(dir);
}

static void test_data_file_removed(void **st)
{
    (void)st;
    char tmpl[] = "/tmp/store_gone.XXXXXX";
    off_t size;
    char *dir = make_store(tmpl, &size);
    char path[512];
    data_path(path, sizeof path, dir);
    assert_int_equal(unlink(path), 0);
    size_t loaded = 0;
    int rc = start(dir, &loaded);
    assert_int_equal(rc, NAMES_STORE_EEMPTY);
    expect_refused(rc);
    assert_int_equal(access(path, F_OK), -1);
    store_dir_remove(dir);
}

static void test_truncated_to_meta_pages(void **st)
{
    (void)st;
    char tmpl[] = "/tmp/store_meta.XXXXXX";
    off_t size;
    char *dir = make_store(tmpl, &size);
    assert_true(size > 2 * PAGE);
    cut(dir, 2 * PAGE);
    size_t loaded = 0;
    int rc = start(dir, &loaded);
    assert_int_equal(rc, NAMES_STORE_ETRUNCATED);
    expect_refused(rc);
    store_dir_remove(dir);
}

static void test_truncated_to_half(void **st)
{
    (void)st;
    char tmpl[] = "/tmp/store_half.XXXXXX";
    off_t size;
    char *dir = make_store(tmpl, &size);
    cut(dir, size / 2);
    size_t loaded = 0;
    int rc = start(dir, &loaded);
    assert_int_equal(rc, NAMES_STORE_ETRUNCATED);
    expect_refused(rc);
    /* one page short is as short */
    cut(dir, size - PAGE);
    assert_int_equal(start(dir, &loaded), NAMES_STORE_ETRUNCATED);
    store_dir_remove(dir);
}

/* xorshift: the same bytes flipped on every run. */
static uint32_t next_rand(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* n bytes past the meta pages replaced by random ones. */
static void flip(const char *dir, off_t size, uint32_t seed, int n)
{
    char path[512];
    data_path(path, sizeof path, dir);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint32_t x = seed;
    for (int i = 0; i < n; i++) {
        off_t at = 2 * PAGE + (off_t)(next_rand(&x) % (uint32_t)(size - 2 * PAGE));
        uint8_t b = (uint8_t)(next_rand(&x) | 1);
        uint8_t old;
        assert_int_equal(pread(fd, &old, 1, at), 1);
        old ^= b;
        assert_int_equal(pwrite(fd, &old, 1, at), 1);
    }
    close(fd);
}

/* Flips of the master store that make the walk fault. */
#define FAULTING_SEED 2654435761u

/* 200 flipped bytes in the data pages, as in the run that crashed with
 * SIGSEGV: whatever LMDB makes of them, the start ends in words, not a
 * signal. Each seed is a fresh copy of the store. */
static void test_flipped_bytes(void **st)
{
    (void)st;
    int faulted = 0;
    for (uint32_t seed = 1; seed <= 16; seed++) {
        char tmpl[] = "/tmp/store_flip.XXXXXX";
        off_t size;
        char *dir = make_store(tmpl, &size);
        flip(dir, size, seed * 2654435761u, 200);
        size_t loaded = 0, skipped = 0;
        int rc = start_counted(dir, &loaded, &skipped);
        if (rc != 0) {
            expect_refused(rc);
            faulted += rc == NAMES_STORE_EFAULT;
        } else {
            /* Bytes that hit only records leave the tree walkable: those
             * records are counted as damaged (and logged), never lost
             * unseen. */
            assert_true(loaded == ENTRIES || skipped > 0);
            assert_true(loaded + skipped <= ENTRIES);
        }
        if (seed * 2654435761u == FAULTING_SEED)
            assert_int_equal(rc, NAMES_STORE_EFAULT);
        store_dir_remove(dir);
    }
    /* most of these crashed the node with SIGSEGV before */
    assert_true(faulted >= 8);
}

/* A file system that fills up: the write that does not fit is no space,
 * in LMDB's words an I/O error. Needs a tmpfs of its own, so root. */
static void test_full_disk_is_no_space(void **st)
{
    (void)st;
    char tmpl[] = "/tmp/store_full.XXXXXX";
    char *dir = store_dir_make(tmpl);
    if (mount("tmpfs", dir, "tmpfs", 0, "size=256k,mode=0700") != 0) {
        store_dir_remove(dir);
        skip();
    }
    names_store *s = store_open(dir);
    int rc = 0;
    for (int i = 0; i < 64 && rc == 0; i++) {
        char sub[32];
        uint8_t *enc = NULL;
        size_t len;
        snprintf(sub, sizeof sub, "sub_%d", i);
        assert_int_equal(names_table_build(STR("store"), STR(sub), 1000, &enc, &len), RC_OK);
        rc = names_store_put(s, STR("store"), STR(sub), enc, len);
        free(enc);
    }
    names_store_close(s);
    assert_int_equal(umount(dir), 0);
    store_dir_remove(dir);
    /* LMDB's EIO for the short write, named for what it was */
    assert_int_equal(rc, NAMES_STORE_ESHORT);
    assert_ptr_equal(strstr(names_store_strerror(rc), "no space left on device"),
                     names_store_strerror(rc));
    assert_ptr_equal(strstr(names_store_strerror(ENOSPC), "no space left on device"),
                     names_store_strerror(ENOSPC));
}

/* The node as shipped, started on a damaged directory: it must exit with a
 * non-zero status and one line naming the directory, data.mdb and what to
 * do, not die of a signal. Skipped when priv/reckon_cnode is not built. */
#define NODE_BIN "priv/reckon_cnode"

static void run_node(const char *dir, int *status, char *out, size_t cap)
{
    int p[2];
    int in[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(pipe(in), 0);
    char name[64];
    snprintf(name, sizeof name, "store_damage_%ld", (long)getpid());
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        close(in[1]);
        /* stdin held open by the test: if the node did start, closing it
         * stops the node (--exit-on-stdin-close) */
        execl(NODE_BIN, NODE_BIN, "--sname", name, "--cookie", "store_damage",
              "--exit-on-stdin-close", "--data-dir", dir, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    close(in[0]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(p[0], out + n, cap - 1 - n)) != 0) {
        if (r < 0)
            break;
        n += (size_t)r;
        if (memchr(out, '\n', n) != NULL && strstr(out, "cannot start") != NULL)
            break;
    }
    out[n] = '\0';
    close(in[1]);
    /* a node that started anyway ends with its stdin */
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, status, WNOHANG) == pid)
            break;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (i == 99) {
            kill(pid, SIGKILL);
            assert_int_equal(waitpid(pid, status, 0), pid);
        }
    }
    close(p[0]);
}

static void test_node_refuses_damaged_store(void **st)
{
    (void)st;
    if (access(NODE_BIN, X_OK) != 0)
        skip();
    struct {
        const char *what;
        int half, zero, flip;
    } cases[] = {{"cut to its meta pages", 0, 0, 0},
                 {"cut to half", 1, 0, 0},
                 {"cut to nothing", 0, 1, 0},
                 {"200 bytes flipped", 0, 0, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char tmpl[] = "/tmp/store_node.XXXXXX";
        off_t size;
        char *dir = make_store(tmpl, &size);
        if (cases[i].flip)
            flip(dir, size, FAULTING_SEED, 200);
        else
            cut(dir, cases[i].zero ? 0 : cases[i].half ? size / 2 : 2 * PAGE);
        int status = 0;
        char out[2048];
        run_node(dir, &status, out, sizeof out);
        print_message("%s: %s", cases[i].what, out);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 1);
        char want[512];
        snprintf(want, sizeof want, "cannot open --data-dir %s: data.mdb", dir);
        assert_non_null(strstr(out, want));
        assert_non_null(strstr(out, "restore data.mdb from a backup"));
        assert_null(strstr(out, "loaded"));
        store_dir_remove(dir);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_directory_starts_empty),
        cmocka_unit_test(test_intact_store_loads),
        cmocka_unit_test(test_truncated_to_zero),
        cmocka_unit_test(test_data_file_removed),
        cmocka_unit_test(test_truncated_to_meta_pages),
        cmocka_unit_test(test_truncated_to_half),
        cmocka_unit_test(test_flipped_bytes),
        cmocka_unit_test(test_full_disk_is_no_space),
        cmocka_unit_test(test_node_refuses_damaged_store),
    };
    return cmocka_run_group_tests(tests, write_master, remove_master);
}
