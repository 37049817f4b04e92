/* names_store: durable copy of the emitter-name table in LMDB (--data-dir).
 *
 * At start the node opens the directory and loads every entry into a
 * names_table; each persist_emitters and each emitter-pool start then calls
 * names_store_put (through names_persist's queue), which returns only after
 * the LMDB commit has been synced to disk, so a reply sent after it survives
 * kill -9 and power loss.
 *
 * On-disk format, LMDB environment in DIR (data.mdb, lock.mdb), unnamed
 * database, one record per group key {S, Sub, emitters}:
 *   key   = 0x01 (format version) | store length, u16 big-endian |
 *           store atom UTF-8 bytes | subscription bytes
 *   value = external-format list of emitter-name atoms, no version byte,
 *           exactly the bytes names_table keeps (see names_table.h).
 * LMDB keys are at most 511 bytes; every key that persist_emitters accepts
 * fits (chars(S) + bytes(Sub) <= 246 when names stay within 255 chars, so
 * the key is at most 3 + 2*246 bytes).
 *
 * Threads: a store may be used from any thread, one call at a time per
 * thread; calls are serialised by a mutex inside the store (load at start,
 * then puts from one worker thread is the intended use). Errors are returned
 * as 0 / errno / LMDB codes / the NAMES_STORE_E* codes below;
 * names_store_strerror describes them, for a damaged file with what to do.
 * ENOSPC, EDQUOT and NAMES_STORE_ESHORT all read "no space left on device". */
#ifndef RC_NAMES_STORE_H
#define RC_NAMES_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "naming/names_table.h"

typedef struct names_store names_store;

/* A damaged store, refused rather than loaded (outside errno's range and
 * LMDB's MDB_KEYEXIST..MDB_LAST_ERRCODE). */
#define NAMES_STORE_ETRUNCATED (-30600) /* data.mdb shorter than its meta pages say */
#define NAMES_STORE_EEMPTY (-30601)     /* data.mdb empty, or gone beside lock.mdb */
#define NAMES_STORE_EFAULT (-30602)     /* reading data.mdb faulted (SIGSEGV/SIGBUS) */
/* A write LMDB calls EIO that was a short write on a full file system. */
#define NAMES_STORE_ESHORT (-30603)

/* Opens (creating DIR itself if missing, mode 0700) the store. 0 or an
 * error code; *out is set only on success. A directory with neither
 * data.mdb nor lock.mdb is a new, empty store; an existing one whose
 * data.mdb is empty, missing or shorter than its meta pages say is refused
 * (NAMES_STORE_EEMPTY, NAMES_STORE_ETRUNCATED), never started empty. */
int names_store_open(const char *dir, names_store **out);

/* NULL is fine. Must not race with other calls on the same store. */
void names_store_close(names_store *s);

/* Inserts every record into t (replacing entries with equal keys). Records
 * whose key or value is malformed are skipped and counted, so one damaged
 * record does not stop a node from starting. loaded/skipped may be NULL.
 * Damaged pages that would make the walk fault are found by walking once
 * in a forked child first: NAMES_STORE_EFAULT, and t is left untouched.
 * The child only allocates and reads LMDB, so other threads of the caller
 * are no hazard with a fork-safe malloc (glibc's). On other errors t may
 * hold what was read before the error. */
int names_store_load(names_store *s, names_table *t, size_t *loaded, size_t *skipped);

/* Writes (replacing) one record and syncs it to disk before returning.
 * Blocking. EINVAL for a key that cannot be stored. */
int names_store_put(names_store *s, const uint8_t *store, size_t store_len, const uint8_t *sub,
                    size_t sub_len, const uint8_t *enc, size_t enc_len);

/* Writes several records in one transaction, synced once: all or none
 * (the first error found, EINVAL for a key that cannot be stored). */
typedef struct names_store_rec {
    const uint8_t *store;
    size_t store_len;
    const uint8_t *sub;
    size_t sub_len;
    const uint8_t *enc;
    size_t enc_len;
} names_store_rec;
int names_store_put_many(names_store *s, const names_store_rec *recs, size_t n);

/* Number of records on disk, or 0 on error (for tests and stats). */
size_t names_store_count(names_store *s);

const char *names_store_strerror(int err);

#endif
