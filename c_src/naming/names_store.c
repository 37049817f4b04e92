/* names_store: see names_store.h for the contract and the on-disk format. */
#include "naming/names_store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <lmdb.h>

#define KEY_VERSION 0x01
#define KEY_HEADER 3
/* LMDB's compiled-in default maximum key size. */
#define KEY_MAX 511

/* The map is address space, not disk: start modestly and double on
 * MDB_MAP_FULL, up to a bound that keeps a runaway from eating the VM. */
#define MAP_INITIAL ((size_t)64 << 20)
#if SIZE_MAX > 0xFFFFFFFFu
#define MAP_LIMIT ((size_t)1 << 36)
#else
#define MAP_LIMIT ((size_t)1 << 30)
#endif

/* Below this much room a write LMDB calls an I/O error was cut short by a
 * full file system (LMDB turns a short write into EIO). */
#define ROOM_MIN ((unsigned long long)1 << 20)

struct names_store {
    MDB_env *env;
    MDB_dbi dbi;
    size_t mapsize;
    char *dir;
    pthread_mutex_t lock;
};

#define RESTORE_HINT                                                                          \
    ": restore data.mdb from a backup, or move the data directory aside to start with an "   \
    "empty store"

const char *names_store_strerror(int err)
{
    switch (err) {
    case NAMES_STORE_ETRUNCATED:
        return "data.mdb is shorter than its own meta pages say (truncated)" RESTORE_HINT;
    case NAMES_STORE_EEMPTY:
        return "data.mdb is empty, or missing where lock.mdb shows a store was" RESTORE_HINT;
    case NAMES_STORE_EFAULT:
        return "data.mdb is damaged: reading it faulted" RESTORE_HINT;
    case MDB_CORRUPTED:
        return "data.mdb is damaged (MDB_CORRUPTED)" RESTORE_HINT;
    case MDB_PAGE_NOTFOUND:
        return "data.mdb is damaged (MDB_PAGE_NOTFOUND)" RESTORE_HINT;
    case MDB_INVALID:
        return "data.mdb is not an LMDB file or is damaged (MDB_INVALID)" RESTORE_HINT;
    case NAMES_STORE_ESHORT:
        return "no space left on device: a write to data.mdb was cut short (LMDB: Input/output "
               "error) on a full file system";
    case ENOSPC:
        return "no space left on device: free space on the data directory's file system";
#ifdef EDQUOT
    case EDQUOT:
        return "no space left on device: disk quota exceeded on the data directory";
#endif
    default:
        return mdb_strerror(err);
    }
}

/* LMDB reports a write cut short by a full disk as EIO ("short write"):
 * name it as no space when the file system has (almost) none left. */
static int name_cause(const char *dir, int rc)
{
    struct statvfs fs;
    if (rc != EIO || dir == NULL || statvfs(dir, &fs) != 0)
        return rc;
    if ((unsigned long long)fs.f_bavail * fs.f_frsize < ROOM_MIN)
        return NAMES_STORE_ESHORT;
    return rc;
}

/* dir/name into buf; ENAMETOOLONG if it does not fit. */
static int file_path(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? ENAMETOOLONG : 0;
}

/* LMDB creates lock.mdb before data.mdb and writes the meta pages at once,
 * so an empty or missing data.mdb next to a lock.mdb is a store that lost
 * its data, not a new one; a 0-byte data.mdb is never one LMDB left. */
static int check_files(const char *dir)
{
    char data[4096], lock[4096];
    struct stat st;
    int rc = file_path(data, sizeof data, dir, "data.mdb");
    if (rc == 0)
        rc = file_path(lock, sizeof lock, dir, "lock.mdb");
    if (rc != 0)
        return rc;
    if (stat(data, &st) == 0)
        return st.st_size == 0 ? NAMES_STORE_EEMPTY : 0;
    if (errno != ENOENT)
        return errno;
    if (stat(lock, &st) == 0)
        return NAMES_STORE_EEMPTY;
    return errno == ENOENT ? 0 : errno;
}

/* Pages past the end of data.mdb are mapped but not backed: touching one
 * is SIGBUS. Every page the meta pages count must be in the file. */
static int check_size(MDB_env *env)
{
    MDB_envinfo info;
    MDB_stat st;
    mdb_filehandle_t fd;
    struct stat fst;
    int rc;
    if ((rc = mdb_env_info(env, &info)) != 0 || (rc = mdb_env_stat(env, &st)) != 0 ||
        (rc = mdb_env_get_fd(env, &fd)) != 0)
        return rc;
    if (fstat(fd, &fst) != 0)
        return errno;
    size_t pages = info.me_last_pgno + 1;
    if (pages == 0 || st.ms_psize == 0 || pages > SIZE_MAX / st.ms_psize)
        return NAMES_STORE_ETRUNCATED;
    if (fst.st_size < 0 || (uintmax_t)fst.st_size < (uintmax_t)pages * st.ms_psize)
        return NAMES_STORE_ETRUNCATED;
    return 0;
}

/* LMDB syncs its files but not the directory that names them; without this
 * a freshly created store could vanish on power loss after the first put. */
static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return rc;
}

int names_store_open(const char *dir, names_store **out)
{
    if (dir == NULL || out == NULL)
        return EINVAL;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return errno;
    int rc = check_files(dir);
    if (rc != 0)
        return rc;
    names_store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ENOMEM;
    if ((s->dir = strdup(dir)) == NULL) {
        free(s);
        return ENOMEM;
    }
    rc = pthread_mutex_init(&s->lock, NULL);
    if (rc != 0) {
        free(s->dir);
        free(s);
        return rc;
    }
    MDB_txn *txn = NULL;
    s->mapsize = MAP_INITIAL;
    if ((rc = mdb_env_create(&s->env)) != 0) {
        s->env = NULL;
        goto fail;
    }
    if ((rc = mdb_env_set_mapsize(s->env, s->mapsize)) != 0)
        goto fail;
    /* MDB_NOTLS: the loading thread and the writer thread may differ. */
    if ((rc = mdb_env_open(s->env, dir, MDB_NOTLS, 0600)) != 0)
        goto fail;
    if ((rc = check_size(s->env)) != 0)
        goto fail;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        goto fail;
    if ((rc = mdb_dbi_open(txn, NULL, 0, &s->dbi)) != 0) {
        mdb_txn_abort(txn);
        goto fail;
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        goto fail;
    if ((rc = sync_dir(dir)) != 0)
        goto fail;
    /* An existing environment may already be larger than our default. */
    MDB_envinfo info;
    if (mdb_env_info(s->env, &info) == 0 && info.me_mapsize > s->mapsize)
        s->mapsize = info.me_mapsize;
    *out = s;
    return 0;
fail:
    if (s->env != NULL)
        mdb_env_close(s->env);
    pthread_mutex_destroy(&s->lock);
    free(s->dir);
    free(s);
    return name_cause(dir, rc);
}

void names_store_close(names_store *s)
{
    if (s == NULL)
        return;
    mdb_env_close(s->env);
    pthread_mutex_destroy(&s->lock);
    free(s->dir);
    free(s);
}

static int make_key(uint8_t *key, size_t *key_len, const uint8_t *store, size_t store_len,
                    const uint8_t *sub, size_t sub_len)
{
    if (store_len > 0xFFFF || store_len > KEY_MAX - KEY_HEADER ||
        sub_len > KEY_MAX - KEY_HEADER - store_len)
        return EINVAL;
    if ((store_len > 0 && store == NULL) || (sub_len > 0 && sub == NULL))
        return EINVAL;
    key[0] = KEY_VERSION;
    key[1] = (uint8_t)(store_len >> 8);
    key[2] = (uint8_t)store_len;
    if (store_len > 0)
        memcpy(key + KEY_HEADER, store, store_len);
    if (sub_len > 0)
        memcpy(key + KEY_HEADER + store_len, sub, sub_len);
    *key_len = KEY_HEADER + store_len + sub_len;
    return 0;
}

/* The records in one transaction: all or none. */
static int put_once(names_store *s, const names_store_rec *recs, size_t n)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint8_t key[KEY_MAX];
        size_t key_len = 0;
        rc = make_key(key, &key_len, recs[i].store, recs[i].store_len, recs[i].sub,
                      recs[i].sub_len);
        MDB_val k = {key_len, key};
        MDB_val v = {recs[i].enc_len, (void *)recs[i].enc};
        if (rc == 0)
            rc = mdb_put(txn, s->dbi, &k, &v, 0);
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    /* Without MDB_NOSYNC the commit fsyncs data and meta pages: this is the
     * durability point the caller waits for. */
    return mdb_txn_commit(txn);
}

int names_store_put_many(names_store *s, const names_store_rec *recs, size_t n)
{
    if (s == NULL || n == 0)
        return EINVAL;
    for (size_t i = 0; i < n; i++)
        if (recs[i].enc == NULL || recs[i].enc_len == 0)
            return EINVAL;
    int rc;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        rc = put_once(s, recs, n);
        if (rc != MDB_MAP_FULL || s->mapsize >= MAP_LIMIT)
            break;
        /* Safe: the mutex guarantees no transaction of ours is open. */
        size_t bigger = s->mapsize * 2;
        if ((rc = mdb_env_set_mapsize(s->env, bigger)) != 0)
            break;
        s->mapsize = bigger;
    }
    pthread_mutex_unlock(&s->lock);
    return name_cause(s->dir, rc);
}

int names_store_put(names_store *s, const uint8_t *store, size_t store_len, const uint8_t *sub,
                    size_t sub_len, const uint8_t *enc, size_t enc_len)
{
    const names_store_rec r = {.store = store, .store_len = store_len, .sub = sub,
                               .sub_len = sub_len, .enc = enc, .enc_len = enc_len};
    return names_store_put_many(s, &r, 1);
}

/* Every record into t; malformed ones counted in *bad. With touch, every
 * byte of each key and value is read first (folded into *touch, so the
 * reads are not optimised away), so a record that reaches past what is
 * mapped faults here even where decoding would stop early. */
static int walk(MDB_txn *txn, MDB_dbi dbi, names_table *t, uint8_t *touch, size_t *ok,
                size_t *bad)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0)
        return rc;
    MDB_val k, v;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        const uint8_t *kb = k.mv_data;
        size_t store_len;
        if (touch != NULL) {
            for (size_t i = 0; i < k.mv_size; i++)
                *touch ^= kb[i];
            for (size_t i = 0; i < v.mv_size; i++)
                *touch ^= ((const uint8_t *)v.mv_data)[i];
        }
        if (k.mv_size < KEY_HEADER || kb[0] != KEY_VERSION) {
            (*bad)++;
            continue;
        }
        store_len = ((size_t)kb[1] << 8) | kb[2];
        if (store_len > k.mv_size - KEY_HEADER) {
            (*bad)++;
            continue;
        }
        int st = names_table_insert_encoded(t, kb + KEY_HEADER, store_len,
                                            kb + KEY_HEADER + store_len,
                                            k.mv_size - KEY_HEADER - store_len, v.mv_data,
                                            v.mv_size);
        if (st == RC_ENOMEM) {
            rc = ENOMEM;
            break;
        }
        if (st == RC_OK)
            (*ok)++;
        else
            (*bad)++;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* In a child process: the same walk over its own read-only environment,
 * then one byte (any value) down the pipe. The child dies quietly on a fault (no core,
 * no inherited crash handler): its death is the answer. */
static void walk_child(const char *dir, size_t mapsize, int fd)
{
    static const int faults[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    struct rlimit no_core = {0, 0};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        signal(faults[i], SIG_DFL);
    (void)setrlimit(RLIMIT_CORE, &no_core);
#ifdef __linux__
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    names_table *t = names_table_new();
    size_t ok = 0, bad = 0;
    uint8_t touched = 0;
    /* Same map size as the parent's, so a record reaching past the map's
     * end does so here too. */
    if (t != NULL && mdb_env_create(&env) == 0) {
        if (mdb_env_set_mapsize(env, mapsize) == 0 &&
            mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0600) == 0 &&
            mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0) {
            if (mdb_dbi_open(txn, NULL, 0, &dbi) == 0)
                (void)walk(txn, dbi, t, &touched, &ok, &bad);
            mdb_txn_abort(txn);
        }
        mdb_env_close(env);
    }
    /* Freed only so that leak checkers of the child stay quiet. */
    names_table_free(t);
    /* Errors other than faults are the parent's to find and report. */
    ssize_t w;
    do
        w = write(fd, &touched, 1);
    while (w < 0 && errno == EINTR);
    _exit(0);
}

/* A damaged page can make LMDB (or the decoding of what it returns) read
 * outside the file: SIGBUS or SIGSEGV, which would kill the node with no
 * word of why. The walk is tried first in a child; only if the child came
 * through does this process walk. The pipe, not the exit status, carries
 * the answer, so a caller that reaps children itself or ignores SIGCHLD
 * cannot make a dead child look healthy. */
static int walk_survives(names_store *s)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return e;
    }
    if (pid == 0) {
        close(p[0]);
        walk_child(s->dir, s->mapsize, p[1]);
    }
    close(p[1]);
    char c;
    ssize_t r;
    do
        r = read(p[0], &c, 1);
    while (r < 0 && errno == EINTR);
    close(p[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    /* The child's reader slot, if it died inside its transaction. */
    int dead;
    (void)mdb_reader_check(s->env, &dead);
    return r == 1 ? 0 : NAMES_STORE_EFAULT;
}

int names_store_load(names_store *s, names_table *t, size_t *loaded, size_t *skipped)
{
    size_t n_ok = 0, n_bad = 0;
    if (s == NULL || t == NULL)
        return EINVAL;
    pthread_mutex_lock(&s->lock);
    MDB_txn *txn = NULL;
    int rc = walk_survives(s);
    if (rc == 0)
        rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc == 0) {
        rc = walk(txn, s->dbi, t, NULL, &n_ok, &n_bad);
        mdb_txn_abort(txn);
    }
    pthread_mutex_unlock(&s->lock);
    if (loaded != NULL)
        *loaded = n_ok;
    if (skipped != NULL)
        *skipped = n_bad;
    return rc;
}

size_t names_store_count(names_store *s)
{
    MDB_txn *txn;
    MDB_stat st;
    size_t n = 0;
    if (s == NULL)
        return 0;
    pthread_mutex_lock(&s->lock);
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) == 0) {
        if (mdb_stat(txn, s->dbi, &st) == 0)
            n = st.ms_entries;
        mdb_txn_abort(txn);
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}
