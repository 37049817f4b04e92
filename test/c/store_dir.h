/* Test helper: a directory under /tmp for an LMDB store (names_store),
 * made from a mkdtemp template and removed with the files in it. */
#ifndef TEST_STORE_DIR_H
#define TEST_STORE_DIR_H

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "naming/names_store.h"

/* tmpl ends in XXXXXX and is made the directory's name. */
static inline char *store_dir_make(char *tmpl)
{
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    return dir;
}

/* The directory and the files in it (a store holds no subdirectories). */
static inline void store_dir_remove(const char *dir)
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

/* The store in dir (created if need be). */
static inline names_store *store_open(const char *dir)
{
    names_store *s = NULL;
    assert_int_equal(names_store_open(dir, &s), 0);
    return s;
}

#endif
