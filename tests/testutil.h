/* testutil.h - helpers for tests that build small datasets on disk. */
#ifndef UAD_TESTUTIL_H
#define UAD_TESTUTIL_H

#include "uniadc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

/* Folders made by the tests, removed when the test program exits
 * (kept when UAD_KEEP_TMP is set, for looking into a failure). */
static char tu_rm_list[32][256];
static int tu_rm_n;

static inline int tu_rm_one(const char *path, const struct stat *st,
                            int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static inline void tu_rm_all(void) {
    if (getenv("UAD_KEEP_TMP")) return;
    for (int i = 0; i < tu_rm_n; i++)
        nftw(tu_rm_list[i], tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Remove dir and everything in it at exit. */
static inline void tu_remove_at_exit(const char *dir) {
    if (tu_rm_n == 0) atexit(tu_rm_all);
    if (tu_rm_n < 32) snprintf(tu_rm_list[tu_rm_n++], 256, "%s", dir);
}

/* A fresh directory under /tmp, removed at exit; caller frees. */
static inline char *tu_tmpdir(const char *tag) {
    char *d = malloc(256);
    snprintf(d, 256, "/tmp/uad_%s_XXXXXX", tag);
    if (!mkdtemp(d)) {
        perror("mkdtemp");
        exit(2);
    }
    tu_remove_at_exit(d);
    return d;
}

/* Work in a fresh directory under /tmp (removed at exit), so the files
 * a test writes by relative name land there and not in the directory
 * it was started from. */
static inline void tu_enter_tmpdir(const char *tag) {
    char *d = tu_tmpdir(tag);
    if (chdir(d) != 0) {
        perror(d);
        exit(2);
    }
    free(d);
}

/* snprintf into a static ring of buffers, for short-lived paths. */
static inline const char *tu_fmt(const char *fmt, ...) {
    static char bufs[8][1024];
    static int k;
    char *b = bufs[k++ & 7];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, 1024, fmt, ap);
    va_end(ap);
    return b;
}

static inline void tu_mkdirs(const char *path) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(tmp, 0777);
        *p = '/';
    }
    mkdir(tmp, 0777);
}

/* Write a w x h gray PNG whose pixel i holds vals[i] (or fill if NULL). */
static inline void tu_png(const char *path, int w, int h, const float *vals,
                          float fill) {
    uad_image img;
    if (uad_image_alloc(&img, w, h, 1) != UAD_OK) exit(2);
    for (int i = 0; i < w * h; i++) img.data[i] = vals ? vals[i] : fill;
    if (uad_image_write_png(path, &img) != UAD_OK) {
        fprintf(stderr, "tu_png: %s\n", uad_last_error());
        exit(2);
    }
    uad_image_free(&img);
}

static inline void tu_write(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        perror(path);
        exit(2);
    }
    fwrite(data, 1, n, fp);
    fclose(fp);
}

/* Count warnings the library logs while a test runs. */
static inline void tu_quiet_log(uad_log_level l, const char *m, void *u) {
    (void)l;
    (void)m;
    (void)u;
}

#endif
