/* internal.h - helpers shared by the library's modules (not installed). */
#ifndef UAD_INTERNAL_H
#define UAD_INTERNAL_H

#include "uniadc.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- failures ------------------------------------------------------ */

/* Record a failure for uad_last_error() and return `st`. Typical use:
 *     return uad_fail(UAD_ERR_FORMAT, "%s: truncated PNG", path); */
uad_status uad_fail(uad_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prefix the current error message with "prefix: ". */
void uad_error_prefix(const char *prefix);

/* Always-on invariant check for programming errors: reports file:line and
 * aborts. Not for bad input (return a status for that). */
#define UAD_ASSERT(cond)                                                   \
    do {                                                                   \
        if (!(cond)) uad_abort_(__FILE__, __LINE__, #cond);                \
    } while (0)
_Noreturn void uad_abort_(const char *file, int line, const char *what);

/* ---- logging ------------------------------------------------------- */

bool uad_log_enabled(uad_log_level level);
void uad_log_(uad_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The level is checked before anything is formatted. */
#define UAD_LOG(level, ...)                                                \
    do {                                                                   \
        if (uad_log_enabled(level)) uad_log_(level, __VA_ARGS__);          \
    } while (0)
#define UAD_WARN(...) UAD_LOG(UAD_LOG_WARN, __VA_ARGS__)
#define UAD_INFO(...) UAD_LOG(UAD_LOG_INFO, __VA_ARGS__)
#define UAD_DEBUG(...) UAD_LOG(UAD_LOG_DEBUG, __VA_ARGS__)

/* Report progress through the user's callback (rate-limited here). */
void uad_progress(const char *stage, size_t done, size_t total);

/* ---- sizes --------------------------------------------------------- */

/* *out = a * b; false on size_t overflow. */
static inline bool uad_mul_size(size_t *out, size_t a, size_t b) {
    return !__builtin_mul_overflow(a, b, out);
}
/* *out = a * b * c; false on overflow. */
static inline bool uad_mul3_size(size_t *out, size_t a, size_t b,
                                 size_t c) {
    size_t ab;
    return uad_mul_size(&ab, a, b) && uad_mul_size(out, ab, c);
}
/* malloc/calloc that record UAD_ERR_NOMEM; NULL on failure. */
void *uad_malloc(size_t n);
void *uad_calloc(size_t count, size_t size);
char *uad_strdup(const char *s);

/* ---- files --------------------------------------------------------- */

/* Read a whole file into a malloc'd buffer (NUL-terminated, len excludes
 * the NUL). Fails with UAD_ERR_IO naming the file. */
uad_status uad_read_file(const char *path, char **buf, size_t *len);

/* Atomic output: write to "<path>.tmp.<pid>", then rename over path.
 *     uad_afile f;
 *     if (uad_afile_open(&f, path) != UAD_OK) return ...;
 *     fwrite(..., f.fp); ...
 *     return uad_afile_commit(&f);   // or uad_afile_abort(&f)  */
typedef struct uad_afile {
    FILE *fp;
    char *path;
    char *tmp;
} uad_afile;
uad_status uad_afile_open(uad_afile *f, const char *path);
uad_status uad_afile_commit(uad_afile *f);
void uad_afile_abort(uad_afile *f);
/* Temporary name next to `path` for writers that open files themselves
 * (libtiff); caller frees. Then uad_rename_into(tmp, path). */
char *uad_tmp_name(const char *path);
uad_status uad_rename_into(const char *tmp, const char *path);

/* Print a cJSON tree (passed as void * so this header needs no cJSON)
 * to path atomically, then delete the tree (also on failure). */
uad_status uad_json_save(const char *path, void *json);

/* Read and parse a file holding one JSON object; *json is a cJSON tree
 * (void * keeps cJSON out of this header) the caller frees with
 * cJSON_Delete. Fails with UAD_ERR_FORMAT "<path>: <what>" otherwise. */
uad_status uad_json_load_object(void **json, const char *path,
                                const char *what);

/* mkdir -p; fails with UAD_ERR_IO naming the directory. */
uad_status uad_mkdirs(const char *dir);
/* Join two path parts with '/'; caller frees. */
char *uad_path_join(const char *a, const char *b);
/* 1 when something exists at path (stat succeeds). */
int uad_file_exists(const char *path);
/* Lower-cased extension after the last '.', or "" (static storage per
 * call is not used: writes into ext, at most n bytes). */
void uad_path_ext(const char *path, char *ext, size_t n);

/* ---- collecting failures ------------------------------------------ */

/* Bad input is reported all at once: add each failure's message (the
 * current uad_last_error()) and finish with one error listing them. */
typedef struct uad_problems {
    char *text;
    size_t len, cap, count;
    uad_status first;
} uad_problems;
void uad_problems_add(uad_problems *pl, uad_status st);
/* UAD_OK when empty; else fails with "N <what>:" and one line each (the
 * first 50), returning the first failure's status. Frees the list. */
uad_status uad_problems_finish(uad_problems *pl, const char *what);

/* ---- masks --------------------------------------------------------- */

/* uad_mask_load without its warnings: sets UAD_MASKF_* bits in *flags so
 * that callers loading many masks can report each kind of problem once. */
#define UAD_MASKF_MULTI 1 /* more than two distinct values */
#define UAD_MASKF_JPEG 2  /* stored as JPEG                */
uad_status uad_mask_load_flags(uad_mask *out, const char *path,
                               const uad_image_params *p, int *flags);

/* One warning line per kind of repeated problem, naming a few files. */
typedef struct uad_warn_group {
    size_t count;
    char first[3][512];
} uad_warn_group;
void uad_warn_group_add(uad_warn_group *g, const char *path);
/* Log "N <what> (e.g. a, b, c)" if count > 0; resets the group. */
void uad_warn_group_flush(uad_warn_group *g, const char *what);

/* ---- random numbers ------------------------------------------------ */

/* xoshiro256** seeded by splitmix64: every random choice in the library
 * flows from one of these, itself derived from the user's --seed. */
typedef struct uad_rng {
    uint64_t s[4];
} uad_rng;
void uad_rng_seed(uad_rng *r, uint64_t seed);
/* An independent stream for sub-task `stream` (e.g. a sample index). */
void uad_rng_fork(uad_rng *child, const uad_rng *parent, uint64_t stream);
uint64_t uad_rng_u64(uad_rng *r);
/* Uniform double in [0, 1). */
double uad_rng_uniform(uad_rng *r);
/* Uniform double in [lo, hi). */
double uad_rng_range(uad_rng *r, double lo, double hi);
/* Uniform integer in [0, n); n > 0. */
uint64_t uad_rng_below(uad_rng *r, uint64_t n);
/* Standard normal (Box-Muller). */
double uad_rng_normal(uad_rng *r);

/* ---- strings ------------------------------------------------------- */

/* Byte-wise comparison for qsort over char* arrays. */
int uad_strcmp_ptr(const void *a, const void *b);

#endif /* UAD_INTERNAL_H */
