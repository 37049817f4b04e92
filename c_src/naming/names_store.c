/* names_store: see names_store.h for the contract and the on-disk format. */
#include "naming/names_store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

struct names_store {
    MDB_env *env;
    MDB_dbi dbi;
    size_t mapsize;
    pthread_mutex_t lock;
};

const char *names_store_strerror(int err) { return mdb_strerror(err); }

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
    names_store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ENOMEM;
    int rc = pthread_mutex_init(&s->lock, NULL);
    if (rc != 0) {
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
    free(s);
    return rc;
}

void names_store_close(names_store *s)
{
    if (s == NULL)
        return;
    mdb_env_close(s->env);
    pthread_mutex_destroy(&s->lock);
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

static int put_once(names_store *s, MDB_val *k, MDB_val *v)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0)
        return rc;
    rc = mdb_put(txn, s->dbi, k, v, 0);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    /* Without MDB_NOSYNC the commit fsyncs data and meta pages: this is the
     * durability point the caller waits for. */
    return mdb_txn_commit(txn);
}

int names_store_put(names_store *s, const uint8_t *store, size_t store_len, const uint8_t *sub,
                    size_t sub_len, const uint8_t *enc, size_t enc_len)
{
    uint8_t key[KEY_MAX];
    size_t key_len;
    if (s == NULL || enc == NULL || enc_len == 0)
        return EINVAL;
    int rc = make_key(key, &key_len, store, store_len, sub, sub_len);
    if (rc != 0)
        return rc;
    MDB_val k = {key_len, key};
    MDB_val v = {enc_len, (void *)enc};
    pthread_mutex_lock(&s->lock);
    for (;;) {
        rc = put_once(s, &k, &v);
        if (rc != MDB_MAP_FULL || s->mapsize >= MAP_LIMIT)
            break;
        /* Safe: the mutex guarantees no transaction of ours is open. */
        size_t bigger = s->mapsize * 2;
        if ((rc = mdb_env_set_mapsize(s->env, bigger)) != 0)
            break;
        s->mapsize = bigger;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int names_store_load(names_store *s, names_table *t, size_t *loaded, size_t *skipped)
{
    size_t n_ok = 0, n_bad = 0;
    if (s == NULL || t == NULL)
        return EINVAL;
    pthread_mutex_lock(&s->lock);
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc == 0)
        rc = mdb_cursor_open(txn, s->dbi, &cur);
    if (rc == 0) {
        MDB_val k, v;
        int c;
        while ((c = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
            const uint8_t *kb = k.mv_data;
            size_t store_len;
            if (k.mv_size < KEY_HEADER || kb[0] != KEY_VERSION) {
                n_bad++;
                continue;
            }
            store_len = ((size_t)kb[1] << 8) | kb[2];
            if (store_len > k.mv_size - KEY_HEADER) {
                n_bad++;
                continue;
            }
            int st = names_table_insert_encoded(
                t, kb + KEY_HEADER, store_len, kb + KEY_HEADER + store_len,
                k.mv_size - KEY_HEADER - store_len, v.mv_data, v.mv_size);
            if (st == RC_ENOMEM) {
                c = ENOMEM;
                break;
            }
            if (st == RC_OK)
                n_ok++;
            else
                n_bad++;
        }
        if (c != MDB_NOTFOUND)
            rc = c;
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
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
