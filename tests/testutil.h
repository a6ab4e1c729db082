/* testutil.h - helpers for tests that build small datasets on disk. */
#ifndef UAD_TESTUTIL_H
#define UAD_TESTUTIL_H

#include "uniadc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A fresh directory under /tmp; caller frees. */
static inline char *tu_tmpdir(const char *tag) {
    char *d = malloc(256);
    snprintf(d, 256, "/tmp/uad_%s_XXXXXX", tag);
    if (!mkdtemp(d)) {
        perror("mkdtemp");
        exit(2);
    }
    return d;
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
