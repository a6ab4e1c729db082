/* util.c - errors, logging, progress, files, random numbers. */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef UAD_VERSION_STRING
#define UAD_VERSION_STRING "0.0.0"
#endif

const char *uad_version(void) { return UAD_VERSION_STRING; }

/* ---- failures ------------------------------------------------------ */

static _Thread_local char g_err[2048];

const char *uad_last_error(void) { return g_err; }

uad_status uad_fail(uad_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return st;
}

void uad_error_prefix(const char *prefix) {
    char tmp[sizeof g_err];
    memcpy(tmp, g_err, sizeof tmp);
    /* Keep whole lines of the message: when prefix and message do not
     * fit, cut at the last line break that does and say so. */
    size_t room = sizeof g_err - 1, pre = strlen(prefix) + 2;
    size_t len = strlen(tmp), keep = len;
    if (pre >= room / 2) pre = room / 2;
    if (pre + len > room) {
        keep = room - pre - 8;
        while (keep > 0 && tmp[keep] != '\n') keep--;
        if (keep == 0) keep = room - pre - 8;
    }
    snprintf(g_err, sizeof g_err, "%.*s: %.*s%s", (int)(pre - 2), prefix,
             (int)keep, tmp, keep < len ? "\n  ..." : "");
}

const char *uad_status_name(uad_status st) {
    switch (st) {
    case UAD_OK: return "ok";
    case UAD_ERR_USAGE: return "usage";
    case UAD_ERR_IO: return "io";
    case UAD_ERR_FORMAT: return "format";
    case UAD_ERR_DATA: return "data";
    case UAD_ERR_LIMIT: return "limit";
    case UAD_ERR_NOMEM: return "nomem";
    case UAD_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}

_Noreturn void uad_abort_(const char *file, int line, const char *what) {
    fprintf(stderr, "uniadc: internal error at %s:%d: %s\n", file, line,
            what);
    abort();
}

/* ---- logging ------------------------------------------------------- */

static uad_log_fn g_log_fn;
static void *g_log_user;
static uad_log_level g_log_max = UAD_LOG_WARN;
static size_t g_warnings;

void uad_log_set(uad_log_fn fn, void *user, uad_log_level max_level) {
    g_log_fn = fn;
    g_log_user = user;
    g_log_max = max_level;
}

size_t uad_log_warning_count(void) { return g_warnings; }

bool uad_log_enabled(uad_log_level level) {
    if (level == UAD_LOG_WARN) g_warnings++;
    return level <= g_log_max;
}

void uad_log_(uad_log_level level, const char *fmt, ...) {
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g_log_fn) {
        g_log_fn(level, msg, g_log_user);
        return;
    }
    static const char *names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "uniadc: %s: %s\n", names[level], msg);
}

/* ---- progress ------------------------------------------------------ */

static uad_progress_fn g_prog_fn;
static void *g_prog_user;

void uad_progress_set(uad_progress_fn fn, void *user) {
    g_prog_fn = fn;
    g_prog_user = user;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void uad_progress(const char *stage, size_t done, size_t total) {
    static double last;
    if (!g_prog_fn) return;
    double t = now_seconds();
    /* At most ~5 calls a second, but always the first and the last. */
    if (done != 0 && done < total && t - last < 0.2) return;
    last = t;
    g_prog_fn(stage, done, total, g_prog_user);
}

/* ---- memory -------------------------------------------------------- */

void *uad_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) uad_fail(UAD_ERR_NOMEM, "out of memory (%zu bytes)", n);
    return p;
}

void *uad_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        uad_fail(UAD_ERR_NOMEM, "out of memory (%zu x %zu bytes)", count,
                 size);
    return p;
}

char *uad_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = uad_malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* ---- files --------------------------------------------------------- */

uad_status uad_read_file(const char *path, char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return uad_fail(UAD_ERR_IO, "%s: cannot open: %s", path,
                        strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *b = uad_malloc(cap + 1);
    if (!b) {
        fclose(fp);
        return UAD_ERR_NOMEM;
    }
    for (;;) {
        n += fread(b + n, 1, cap - n, fp);
        if (n < cap) break;
        char *nb = realloc(b, 2 * cap + 1);
        if (!nb) {
            free(b);
            fclose(fp);
            return uad_fail(UAD_ERR_NOMEM, "%s: out of memory", path);
        }
        b = nb;
        cap *= 2;
    }
    int err = ferror(fp);
    fclose(fp);
    if (err) {
        free(b);
        return uad_fail(UAD_ERR_IO, "%s: read error", path);
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return UAD_OK;
}

/* Where writing `path` really goes: a symbolic link is followed (its
 * target is replaced, not the link); *special is set when the target
 * exists and is not a regular file (a device, a FIFO, /dev/stdout), which
 * cannot be replaced by rename and is written in place instead. */
static char *resolve_target(const char *path, int *special) {
    struct stat sb;
    *special = 0;
    char *real = NULL;
    if (lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode)) {
        real = realpath(path, NULL);
        char link[4096];
        ssize_t n = real ? -1 : readlink(path, link, sizeof link - 1);
        if (n > 0) { /* a dangling link: its target is made */
            link[n] = 0;
            const char *slash = strrchr(path, '/');
            size_t dl = link[0] == '/' || !slash ? 0 : (size_t)(slash - path);
            real = malloc(dl + (size_t)n + 2);
            if (real) snprintf(real, dl + (size_t)n + 2, "%.*s%s%s", (int)dl,
                               path, dl ? "/" : "", link);
        }
    }
    const char *t = real ? real : path;
    if (stat(t, &sb) == 0 && !S_ISREG(sb.st_mode)) *special = 1;
    if (real) return real;
    return uad_strdup(path);
}

char *uad_tmp_name(const char *path) {
    int special;
    char *target = resolve_target(path, &special);
    if (!target) return NULL;
    size_t n = strlen(target) + 48;
    char *tmp = uad_malloc(n);
    if (tmp) snprintf(tmp, n, "%s.tmp.%ld", target, (long)getpid());
    free(target);
    return tmp;
}

uad_status uad_rename_into(const char *tmp, const char *path) {
    int special;
    char *target = resolve_target(path, &special);
    if (!target) {
        remove(tmp);
        return UAD_ERR_NOMEM;
    }
    uad_status st = UAD_OK;
    if (special) {
        st = uad_fail(UAD_ERR_IO, "%s: not a regular file; give a file "
                                  "path to write to", path);
        remove(tmp);
    } else if (rename(tmp, target) != 0) {
        int e = errno;
        remove(tmp);
        st = uad_fail(UAD_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    free(target);
    return st;
}

uad_status uad_afile_open(uad_afile *f, const char *path) {
    memset(f, 0, sizeof *f);
    int special;
    f->path = resolve_target(path, &special);
    f->tmp = special ? NULL : uad_tmp_name(path);
    if (!f->path || (!special && !f->tmp)) {
        uad_afile_abort(f);
        return UAD_ERR_NOMEM;
    }
    /* A device or FIFO is written directly: nothing to rename into. */
    f->fp = fopen(special ? f->path : f->tmp, "wb");
    if (!f->fp) {
        int e = errno;
        uad_afile_abort(f);
        return uad_fail(UAD_ERR_IO, "%s: cannot create: %s", path,
                        strerror(e));
    }
    return UAD_OK;
}

uad_status uad_afile_commit(uad_afile *f) {
    uad_status st = UAD_OK;
    int bad = ferror(f->fp);
    if (fclose(f->fp) != 0 || bad)
        st = uad_fail(UAD_ERR_IO, "%s: write failed: %s", f->path,
                      strerror(errno));
    f->fp = NULL;
    if (st == UAD_OK && f->tmp)
        st = uad_rename_into(f->tmp, f->path);
    else if (f->tmp)
        remove(f->tmp);
    free(f->path);
    free(f->tmp);
    memset(f, 0, sizeof *f);
    return st;
}

void uad_afile_abort(uad_afile *f) {
    if (f->fp) fclose(f->fp);
    if (f->tmp) remove(f->tmp);
    free(f->path);
    free(f->tmp);
    memset(f, 0, sizeof *f);
}

uad_status uad_mkdirs(const char *dir) {
    char *p = uad_strdup(dir);
    if (!p) return UAD_ERR_NOMEM;
    for (char *s = p + 1;; s++) {
        char c = *s;
        if (c != '/' && c != 0) continue;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            uad_status st = uad_fail(UAD_ERR_IO,
                                     "%s: cannot create directory: %s", p,
                                     strerror(errno));
            free(p);
            return st;
        }
        *s = c;
        if (c == 0) break;
    }
    free(p);
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return uad_fail(UAD_ERR_IO, "%s: not a directory", dir);
    return UAD_OK;
}

char *uad_path_join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    while (na > 1 && a[na - 1] == '/') na--;
    char *p = uad_malloc(na + nb + 2);
    if (!p) return NULL;
    memcpy(p, a, na);
    p[na] = '/';
    memcpy(p + na + 1, b, nb + 1);
    return p;
}

int uad_file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

void uad_path_ext(const char *path, char *ext, size_t n) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    ext[0] = 0;
    if (!dot || (slash && dot < slash) || n == 0) return;
    size_t i = 0;
    for (dot++; *dot && i + 1 < n; dot++, i++) {
        char c = *dot;
        ext[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    ext[i] = 0;
}

int uad_strcmp_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ---- collecting failures ------------------------------------------ */

void uad_problems_add(uad_problems *pl, uad_status st) {
    if (pl->count++ == 0) pl->first = st;
    if (pl->count > 50) return;
    const char *msg = uad_last_error();
    size_t need = strlen(msg) + 8;
    if (pl->len + need > pl->cap) {
        size_t cap = (pl->cap + need) * 2;
        char *nt = realloc(pl->text, cap);
        if (!nt) return;
        pl->text = nt;
        pl->cap = cap;
    }
    pl->len += (size_t)snprintf(pl->text + pl->len, pl->cap - pl->len,
                                "\n  %s", msg);
}

uad_status uad_problems_finish(uad_problems *pl, const char *what) {
    uad_status st = pl->count ? pl->first : UAD_OK;
    if (pl->count) {
        /* Whole lines while they fit in about 1400 bytes (room is left
         * for a file name in front), then how many were left out. */
        size_t shown = 0, cut = 0, len = pl->text ? pl->len : 0;
        while (cut < len && shown < 50) {
            const char *nl = strchr(pl->text + cut + 1, '\n');
            size_t end = nl ? (size_t)(nl - pl->text) : len;
            if (end > 1400) break;
            cut = end;
            shown++;
        }
        if (shown < pl->count)
            uad_fail(st, "%zu %s:%.*s\n  ... and %zu more", pl->count, what,
                     (int)cut, pl->text ? pl->text : "", pl->count - shown);
        else
            uad_fail(st, "%zu %s:%.*s", pl->count, what, (int)cut,
                     pl->text ? pl->text : "");
    }
    free(pl->text);
    memset(pl, 0, sizeof *pl);
    return st;
}

/* ---- random numbers ------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void uad_rng_seed(uad_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

void uad_rng_fork(uad_rng *child, const uad_rng *parent, uint64_t stream) {
    uint64_t x = parent->s[0] ^ (parent->s[3] * 0x9E3779B97F4A7C15ull) ^
                 splitmix64(&stream);
    for (int i = 0; i < 4; i++) child->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t uad_rng_u64(uad_rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double uad_rng_uniform(uad_rng *r) {
    return (double)(uad_rng_u64(r) >> 11) * 0x1.0p-53;
}

double uad_rng_range(uad_rng *r, double lo, double hi) {
    return lo + (hi - lo) * uad_rng_uniform(r);
}

uint64_t uad_rng_below(uad_rng *r, uint64_t n) {
    UAD_ASSERT(n > 0);
    /* Rejection keeps the draw exactly uniform. */
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = uad_rng_u64(r);
    while (x >= lim);
    return x % n;
}

double uad_rng_normal(uad_rng *r) {
    double u1 = uad_rng_uniform(r), u2 = uad_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
