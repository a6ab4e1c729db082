/* safetensors.c - reader and writer of the safetensors format
 * (https://github.com/huggingface/safetensors, "Format" section):
 *
 *   u64 little-endian N | N bytes of JSON header | data
 *
 * The header maps each tensor name to {"dtype", "shape", "data_offsets":
 * [begin, end]} (offsets relative to the first data byte) and may hold a
 * "__metadata__" map of strings. Everything is checked before a tensor is
 * exposed. Like the reference implementation, the tensors must tile the
 * data exactly: no overlap, no gap and no unused bytes at the end. A file
 * this reader accepts is therefore one the reference accepts too.
 *
 * Numbers are read through cJSON, which stores them as doubles: a whole
 * number written as 2.0 or 2e0 is accepted as 2, and values above 2^53
 * are refused because a double cannot hold them exactly.
 *
 * Data is read as little-endian, so the library needs a little-endian
 * host (x86-64, aarch64). */
#include "internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads little-endian data in place"
#endif

/* A header above this is not a model file we would ever load. */
#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)
/* Largest integer a double holds exactly. */
#define ST_MAX_INT 9007199254740992.0

struct uad_safetensors {
    void *map;               /* mmap'd file, or NULL for caller memory */
    size_t map_len;
    uad_st_tensor *tensors;  /* header order */
    size_t n;
    size_t *by_name;         /* indices of tensors sorted by name */
    char **meta_keys, **meta_vals;
    size_t n_meta;
};

static const struct {
    const char *name;
    size_t size;
} k_dtypes[] = {{"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F64", 8},
                {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
                {"U8", 1},  {"BOOL", 1}};
#define N_DTYPES (int)(sizeof k_dtypes / sizeof *k_dtypes)

size_t uad_dtype_size(uad_dtype dt) {
    return (int)dt >= 0 && (int)dt < N_DTYPES ? k_dtypes[dt].size : 0;
}

const char *uad_dtype_name(uad_dtype dt) {
    return (int)dt >= 0 && (int)dt < N_DTYPES ? k_dtypes[dt].name : NULL;
}

size_t uad_st_numel(const uad_st_tensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

/* ---- reading the header -------------------------------------------- */

/* Per-tensor facts gathered while parsing, before data is exposed. */
typedef struct st_span {
    uint64_t begin, end;
} st_span;

/* A JSON number that is a whole number in [0, 2^53]; -1 otherwise. */
static double json_count(const cJSON *v) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= ST_MAX_INT) || d != floor(d)) return -1;
    return d;
}

static uad_status parse_dtype(uad_st_tensor *t, const cJSON *v,
                              const char *file) {
    if (!cJSON_IsString(v))
        return uad_fail(UAD_ERR_FORMAT, "%s: tensor '%.100s': dtype is not a "
                        "string", file, t->name);
    for (int i = 0; i < N_DTYPES; i++) {
        if (strcmp(v->valuestring, k_dtypes[i].name) == 0) {
            t->dtype = (uad_dtype)i;
            return UAD_OK;
        }
    }
    return uad_fail(UAD_ERR_FORMAT, "%s: tensor '%.100s': unknown dtype "
                    "'%.32s' (supported: F32, F16, BF16, F64, I64, I32, I16, "
                    "I8, U8, BOOL)", file, t->name, v->valuestring);
}

static uad_status parse_shape(uad_st_tensor *t, const cJSON *v,
                              const char *file) {
    if (!cJSON_IsArray(v))
        return uad_fail(UAD_ERR_FORMAT, "%s: tensor '%.100s': shape is not "
                        "an array", file, t->name);
    int n = cJSON_GetArraySize(v);
    if (n > UAD_ST_MAX_DIMS)
        return uad_fail(UAD_ERR_FORMAT, "%s: tensor '%.100s': %d dimensions, "
                        "at most %d are supported", file, t->name, n,
                        UAD_ST_MAX_DIMS);
    t->ndim = 0;
    for (const cJSON *d = v->child; d; d = d->next) {
        double x = json_count(d);
        if (x < 0)
            return uad_fail(UAD_ERR_FORMAT, "%s: tensor '%.100s': shape entry "
                            "%d is not a non-negative integer", file,
                            t->name, t->ndim);
        t->shape[t->ndim++] = (int64_t)x;
    }
    return UAD_OK;
}

static uad_status parse_offsets(st_span *sp, const uad_st_tensor *t,
                                const cJSON *v, const char *file) {
    double b = -1, e = -1;
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2) {
        b = json_count(v->child);
        e = json_count(v->child->next);
    }
    if (b < 0 || e < 0)
        return uad_fail(UAD_ERR_FORMAT, "%s: tensor '%.100s': data_offsets "
                        "must be two non-negative integers", file, t->name);
    if (b > e)
        return uad_fail(UAD_ERR_FORMAT, "%s: tensor '%.100s': data_offsets "
                        "[%.0f, %.0f] end before they begin", file, t->name,
                        b, e);
    sp->begin = (uint64_t)b;
    sp->end = (uint64_t)e;
    return UAD_OK;
}

/* *out = bytes of a tensor of this shape; false on size_t overflow. A
 * zero dimension makes it 0 however large the others are. */
static bool shape_bytes(size_t *out, uad_dtype dt, int ndim,
                        const int64_t *shape) {
    size_t n = uad_dtype_size(dt);
    for (int i = 0; i < ndim; i++)
        if (shape[i] == 0) n = 0;
    for (int i = 0; i < ndim && n; i++)
        if (!uad_mul_size(&n, n, (size_t)shape[i])) return false;
    *out = n;
    return true;
}

/* One tensor entry: exactly the fields dtype, shape, data_offsets. */
static uad_status parse_entry(uad_st_tensor *t, st_span *sp,
                              const cJSON *v, const char *file) {
    static const char *const fields[3] = {"dtype", "shape", "data_offsets"};
    const cJSON *got[3] = {NULL, NULL, NULL};
    if (!cJSON_IsObject(v))
        return uad_fail(UAD_ERR_FORMAT, "%s: tensor '%.100s': entry is not "
                        "a JSON object", file, t->name);
    for (const cJSON *f = v->child; f; f = f->next) {
        int k = 0;
        while (k < 3 && strcmp(f->string, fields[k]) != 0) k++;
        if (k == 3)
            return uad_fail(UAD_ERR_FORMAT, "%s: tensor '%.100s': unknown "
                            "field '%.64s' (expected dtype, shape, "
                            "data_offsets)", file, t->name, f->string);
        if (got[k])
            return uad_fail(UAD_ERR_FORMAT, "%s: tensor '%.100s': field "
                            "'%s' appears twice", file, t->name, fields[k]);
        got[k] = f;
    }
    for (int k = 0; k < 3; k++)
        if (!got[k])
            return uad_fail(UAD_ERR_FORMAT, "%s: tensor '%.100s': missing "
                            "field '%s'", file, t->name, fields[k]);
    uad_status st;
    if ((st = parse_dtype(t, got[0], file)) != UAD_OK ||
        (st = parse_shape(t, got[1], file)) != UAD_OK ||
        (st = parse_offsets(sp, t, got[2], file)) != UAD_OK)
        return st;

    size_t nbytes = 0;
    if (!shape_bytes(&nbytes, t->dtype, t->ndim, t->shape))
        return uad_fail(UAD_ERR_FORMAT, "%s: tensor '%.100s': shape is too "
                        "large", file, t->name);
    if ((uint64_t)nbytes != sp->end - sp->begin)
        return uad_fail(UAD_ERR_FORMAT, "%s: tensor '%.100s': shape x %s "
                        "needs %zu bytes but data_offsets span %llu", file,
                        t->name, k_dtypes[t->dtype].name, nbytes,
                        (unsigned long long)(sp->end - sp->begin));
    t->nbytes = nbytes;
    return UAD_OK;
}

/* Sort records: a name and the index it came from. */
typedef struct name_ref {
    const char *name;
    size_t idx;
} name_ref;

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const name_ref *)a)->name, ((const name_ref *)b)->name);
}

/* Fail if any of names[0, n) repeats (cJSON keeps repeated keys). */
static uad_status check_unique(char *const *names, size_t n,
                               const char *file, const char *what) {
    const char **s = uad_calloc(n + 1, sizeof *s);
    if (!s) return UAD_ERR_NOMEM;
    memcpy(s, names, n * sizeof *s);
    qsort(s, n, sizeof *s, uad_strcmp_ptr);
    uad_status st = UAD_OK;
    for (size_t i = 1; i < n && st == UAD_OK; i++)
        if (strcmp(s[i], s[i - 1]) == 0)
            st = uad_fail(UAD_ERR_FORMAT, "%s: %s '%.100s' appears twice",
                          file, what, s[i]);
    free(s);
    return st;
}

/* "__metadata__": a map of strings, copied out of the JSON tree. */
static uad_status parse_meta(uad_safetensors *st, const cJSON *v,
                             const char *file) {
    if (!cJSON_IsObject(v))
        return uad_fail(UAD_ERR_FORMAT, "%s: __metadata__ is not a JSON "
                        "object", file);
    size_t n = (size_t)cJSON_GetArraySize(v);
    st->meta_keys = uad_calloc(n + 1, sizeof *st->meta_keys);
    st->meta_vals = uad_calloc(n + 1, sizeof *st->meta_vals);
    if (!st->meta_keys || !st->meta_vals) return UAD_ERR_NOMEM;
    for (const cJSON *m = v->child; m; m = m->next) {
        if (!cJSON_IsString(m))
            return uad_fail(UAD_ERR_FORMAT, "%s: __metadata__ value of "
                            "'%.100s' is not a string", file, m->string);
        st->meta_keys[st->n_meta] = uad_strdup(m->string);
        st->meta_vals[st->n_meta] = uad_strdup(m->valuestring);
        if (!st->meta_keys[st->n_meta++] || !st->meta_vals[st->n_meta - 1])
            return UAD_ERR_NOMEM;
    }
    return check_unique(st->meta_keys, st->n_meta, file, "__metadata__ key");
}

/* Walk the header object: metadata and tensor entries, in file order. */
static uad_status parse_header(uad_safetensors *st, st_span *spans,
                               const cJSON *root, const char *file) {
    int seen_meta = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (seen_meta++)
                return uad_fail(UAD_ERR_FORMAT, "%s: __metadata__ appears "
                                "twice", file);
            uad_status s = parse_meta(st, e, file);
            if (s != UAD_OK) return s;
            continue;
        }
        uad_st_tensor *t = &st->tensors[st->n];
        t->name = uad_strdup(e->string);
        if (!t->name) return UAD_ERR_NOMEM;
        st->n++;
        uad_status s = parse_entry(t, &spans[st->n - 1], e, file);
        if (s != UAD_OK) return s;
    }
    return UAD_OK;
}

typedef struct span_ref {
    st_span span;
    size_t idx;
} span_ref;

static int cmp_span(const void *a, const void *b) {
    const st_span *x = &((const span_ref *)a)->span;
    const st_span *y = &((const span_ref *)b)->span;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* Names sorted for uad_st_find; a repeated name is an error (cJSON keeps
 * both copies of a repeated key). */
static uad_status index_names(uad_safetensors *st, const char *file) {
    name_ref *r = uad_calloc(st->n + 1, sizeof *r);
    st->by_name = uad_calloc(st->n + 1, sizeof *st->by_name);
    if (!r || !st->by_name) {
        free(r);
        return UAD_ERR_NOMEM;
    }
    for (size_t i = 0; i < st->n; i++) r[i] = (name_ref){st->tensors[i].name, i};
    qsort(r, st->n, sizeof *r, cmp_name);
    uad_status s = UAD_OK;
    for (size_t i = 0; i < st->n; i++) {
        st->by_name[i] = r[i].idx;
        if (i > 0 && strcmp(r[i].name, r[i - 1].name) == 0 && s == UAD_OK)
            s = uad_fail(UAD_ERR_FORMAT, "%s: tensor '%.100s' appears twice "
                         "in the header", file, r[i].name);
    }
    free(r);
    return s;
}

/* The tensors must tile [0, data_len) in offset order, as the reference
 * implementation requires: an overlap, a gap or unused trailing bytes all
 * mean a damaged or hand-edited file. */
static uad_status check_layout(const uad_safetensors *st,
                               const st_span *spans, uint64_t data_len,
                               const char *file) {
    span_ref *r = uad_calloc(st->n + 1, sizeof *r);
    if (!r) return UAD_ERR_NOMEM;
    for (size_t i = 0; i < st->n; i++) r[i] = (span_ref){spans[i], i};
    qsort(r, st->n, sizeof *r, cmp_span);
    uad_status s = UAD_OK;
    uint64_t at = 0;
    for (size_t i = 0; i < st->n && s == UAD_OK; i++) {
        const char *name = st->tensors[r[i].idx].name;
        if (r[i].span.end > data_len)
            s = uad_fail(UAD_ERR_FORMAT, "%s: tensor '%.100s': data_offsets "
                         "[%llu, %llu] go beyond the %llu bytes of data", file,
                         name, (unsigned long long)r[i].span.begin,
                         (unsigned long long)r[i].span.end,
                         (unsigned long long)data_len);
        else if (r[i].span.begin < at)
            s = uad_fail(UAD_ERR_FORMAT, "%s: tensor '%.100s' overlaps tensor "
                         "'%.100s'", file, name,
                         st->tensors[r[i - 1].idx].name);
        else if (r[i].span.begin > at)
            s = uad_fail(UAD_ERR_FORMAT, "%s: tensor '%.100s': %llu unused "
                         "bytes before its data", file, name,
                         (unsigned long long)(r[i].span.begin - at));
        at = r[i].span.end;
    }
    if (s == UAD_OK && at != data_len)
        s = uad_fail(UAD_ERR_FORMAT, "%s: %llu bytes of data after the last "
                     "tensor belong to no tensor", file,
                     (unsigned long long)(data_len - at));
    free(r);
    return s;
}

/* Parse the JSON header; only spaces, tabs and newlines may follow the
 * object (writers pad the header to align the data). */
static uad_status header_json(cJSON **root, const char *text, size_t n,
                              const char *file) {
    if (memchr(text, 0, n))
        return uad_fail(UAD_ERR_FORMAT, "%s: header contains a NUL byte",
                        file);
    const char *end = NULL;
    *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!*root)
        return uad_fail(UAD_ERR_FORMAT, "%s: header is not valid JSON (near "
                        "byte %td of %zu)", file, end ? end - text : 0, n);
    for (const char *p = end; p < text + n; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return uad_fail(UAD_ERR_FORMAT, "%s: unexpected bytes after the "
                            "header JSON", file);
    }
    if (!cJSON_IsObject(*root))
        return uad_fail(UAD_ERR_FORMAT, "%s: header JSON is not an object",
                        file);
    return UAD_OK;
}

/* Validate buf[0, len) and fill st (tensors point into buf). */
static uad_status st_parse(uad_safetensors *st, const uint8_t *buf,
                           size_t len, const char *file) {
    if (len == 0)
        return uad_fail(UAD_ERR_FORMAT, "%s: empty file (0 bytes)", file);
    if (len < 8)
        return uad_fail(UAD_ERR_FORMAT, "%s: truncated: %zu bytes, fewer "
                        "than the 8-byte header length", file, len);
    uint64_t hlen;
    memcpy(&hlen, buf, 8);
    if (hlen > ST_MAX_HEADER)
        return uad_fail(UAD_ERR_LIMIT, "%s: header length %llu is over the "
                        "%llu-byte limit%s", file, (unsigned long long)hlen,
                        (unsigned long long)ST_MAX_HEADER,
                        hlen > len - 8 ? " and beyond the end of the file "
                                         "(not a safetensors file?)"
                                       : "");
    if (hlen > len - 8)
        return uad_fail(UAD_ERR_FORMAT, "%s: header length %llu goes beyond "
                        "the end of the file (%zu bytes)", file,
                        (unsigned long long)hlen, len);

    cJSON *root = NULL;
    uad_status s = header_json(&root, (const char *)buf + 8, hlen, file);
    st_span *spans = NULL;
    if (s == UAD_OK) {
        size_t n = (size_t)cJSON_GetArraySize(root);
        st->tensors = uad_calloc(n + 1, sizeof *st->tensors);
        spans = uad_calloc(n + 1, sizeof *spans);
        if (!st->tensors || !spans) s = UAD_ERR_NOMEM;
    }
    if (s == UAD_OK) s = parse_header(st, spans, root, file);
    cJSON_Delete(root);
    if (s == UAD_OK) s = index_names(st, file);
    const uint8_t *data = buf + 8 + hlen;
    if (s == UAD_OK) s = check_layout(st, spans, len - 8 - hlen, file);
    for (size_t i = 0; s == UAD_OK && i < st->n; i++)
        st->tensors[i].data = data + spans[i].begin;
    free(spans);
    return s;
}

uad_status uad_st_open_mem(uad_safetensors **out, const void *buf,
                           size_t len, const char *name) {
    *out = NULL;
    if (!name) name = "<safetensors>";
    uad_safetensors *st = uad_calloc(1, sizeof *st);
    if (!st) return UAD_ERR_NOMEM;
    uad_status s = st_parse(st, buf, len, name);
    if (s != UAD_OK) {
        uad_st_free(st);
        return s;
    }
    *out = st;
    return UAD_OK;
}

uad_status uad_st_open(uad_safetensors **out, const char *path) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return uad_fail(UAD_ERR_IO, "%s: cannot open: %s", path,
                        strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return uad_fail(UAD_ERR_IO, "%s: not a regular file", path);
    }
    size_t len = (size_t)sb.st_size;
    void *map = NULL;
    if (len > 0) {  /* mmap refuses a zero length; st_parse reports it */
        map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return uad_fail(UAD_ERR_IO, "%s: cannot map: %s", path,
                            strerror(e));
        }
    }
    close(fd);
    uad_safetensors *st = uad_calloc(1, sizeof *st);
    if (!st) {
        if (map) munmap(map, len);
        return UAD_ERR_NOMEM;
    }
    st->map = map;
    st->map_len = len;
    uad_status s = st_parse(st, map, len, path);
    if (s != UAD_OK) {
        uad_st_free(st);
        return s;
    }
    *out = st;
    return UAD_OK;
}

void uad_st_free(uad_safetensors *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n; i++) free((char *)st->tensors[i].name);
    free(st->tensors);
    free(st->by_name);
    for (size_t i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_vals[i]);
    }
    free(st->meta_keys);
    free(st->meta_vals);
    if (st->map) munmap(st->map, st->map_len);
    free(st);
}

size_t uad_st_count(const uad_safetensors *st) { return st ? st->n : 0; }

const uad_st_tensor *uad_st_tensor_at(const uad_safetensors *st, size_t i) {
    return st && i < st->n ? &st->tensors[i] : NULL;
}

const uad_st_tensor *uad_st_find(const uad_safetensors *st,
                                 const char *name) {
    if (!st || !name || !st->by_name) return NULL;
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const uad_st_tensor *t = &st->tensors[st->by_name[mid]];
        int c = strcmp(name, t->name);
        if (c == 0) return t;
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

const char *uad_st_meta(const uad_safetensors *st, const char *key) {
    if (!st || !key) return NULL;
    for (size_t i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_vals[i];
    return NULL;
}

/* ---- conversion to float -------------------------------------------- */

/* IEEE 754 binary16 to binary32: normals and inf/nan by moving bit
 * fields (exponent bias 15 -> 127), subnormals as man * 2^-24. */
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        float v = ldexpf((float)man, -24);
        return sign ? -v : v;
    }
    if (exp == 31) bits = sign | 0x7F800000u | (man << 13);
    else bits = sign | ((exp + 112) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Data may sit at any byte offset in the file, so every element is
 * fetched with memcpy rather than through a typed pointer. */
uad_status uad_st_to_f32(const uad_st_tensor *t, float *out) {
    const uint8_t *p = t->data;
    size_t n = uad_st_numel(t);
    switch (t->dtype) {
    case UAD_DT_F32:
        if (n) memcpy(out, p, n * 4);
        return UAD_OK;
    case UAD_DT_F16:
    case UAD_DT_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            if (t->dtype == UAD_DT_F16) {
                out[i] = f16_to_f32(h);
            } else {  /* bfloat16 is the top half of a binary32 */
                uint32_t bits = (uint32_t)h << 16;
                memcpy(&out[i], &bits, 4);
            }
        }
        return UAD_OK;
    case UAD_DT_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = (float)d;
        }
        return UAD_OK;
    default:
        return uad_fail(UAD_ERR_DATA, "tensor '%.100s': dtype %s is not a "
                        "floating-point type", t->name,
                        uad_dtype_name(t->dtype));
    }
}

/* ---- writer ---------------------------------------------------------- */

struct uad_st_writer {
    uad_st_tensor *t;  /* insertion order; names and data owned */
    size_t n, cap;
    char **mkeys, **mvals;
    size_t n_meta;
};

uad_st_writer *uad_st_writer_create(void) {
    return uad_calloc(1, sizeof(uad_st_writer));
}

void uad_st_writer_free(uad_st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) {
        free((char *)w->t[i].name);
        free((void *)w->t[i].data);
    }
    free(w->t);
    for (size_t i = 0; i < w->n_meta; i++) {
        free(w->mkeys[i]);
        free(w->mvals[i]);
    }
    free(w->mkeys);
    free(w->mvals);
    free(w);
}

/* Argument checks for uad_st_writer_add; sets *nbytes. */
static uad_status writer_check(const uad_st_writer *w, const char *name,
                               uad_dtype dt, int ndim, const int64_t *shape,
                               size_t *nbytes) {
    if (!name || strcmp(name, "__metadata__") == 0)
        return uad_fail(UAD_ERR_USAGE, "safetensors writer: invalid tensor "
                        "name '%s'", name ? name : "(null)");
    if (!uad_dtype_name(dt) || ndim < 0 || ndim > UAD_ST_MAX_DIMS ||
        (ndim > 0 && !shape))
        return uad_fail(UAD_ERR_USAGE, "safetensors writer: tensor '%.100s': "
                        "bad dtype or ndim %d", name, ndim);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || (double)shape[i] > ST_MAX_INT)
            return uad_fail(UAD_ERR_USAGE, "safetensors writer: tensor "
                            "'%.100s': dimension %d is %lld", name, i,
                            (long long)shape[i]);
    if (!shape_bytes(nbytes, dt, ndim, shape))
        return uad_fail(UAD_ERR_LIMIT, "safetensors writer: tensor '%.100s' "
                        "is too large", name);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return uad_fail(UAD_ERR_USAGE, "safetensors writer: tensor "
                            "'%.100s' added twice", name);
    return UAD_OK;
}

uad_status uad_st_writer_add(uad_st_writer *w, const char *name,
                             uad_dtype dt, int ndim, const int64_t *shape,
                             const void *data) {
    size_t nbytes = 0;
    uad_status s = writer_check(w, name, dt, ndim, shape, &nbytes);
    if (s != UAD_OK) return s;
    if (nbytes > 0 && !data)
        return uad_fail(UAD_ERR_USAGE, "safetensors writer: tensor '%.100s' "
                        "has no data", name);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        uad_st_tensor *grown = realloc(w->t, cap * sizeof *grown);
        if (!grown) return uad_fail(UAD_ERR_NOMEM, "out of memory");
        w->t = grown;
        w->cap = cap;
    }
    uad_st_tensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    char *copy = uad_malloc(nbytes ? nbytes : 1);
    t->name = uad_strdup(name);
    if (!copy || !t->name) {
        free(copy);
        free((char *)t->name);
        return UAD_ERR_NOMEM;
    }
    if (nbytes) memcpy(copy, data, nbytes);
    t->data = copy;
    t->nbytes = nbytes;
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    w->n++;
    return UAD_OK;
}

/* A later value for the same key replaces the earlier one. */
uad_status uad_st_writer_meta(uad_st_writer *w, const char *key,
                              const char *value) {
    if (!key || !value)
        return uad_fail(UAD_ERR_USAGE, "safetensors writer: NULL metadata");
    char *v = uad_strdup(value);
    if (!v) return UAD_ERR_NOMEM;
    for (size_t i = 0; i < w->n_meta; i++) {
        if (strcmp(w->mkeys[i], key) == 0) {
            free(w->mvals[i]);
            w->mvals[i] = v;
            return UAD_OK;
        }
    }
    char **k2 = realloc(w->mkeys, (w->n_meta + 1) * sizeof *k2);
    if (k2) w->mkeys = k2;
    char **v2 = k2 ? realloc(w->mvals, (w->n_meta + 1) * sizeof *v2) : NULL;
    if (v2) w->mvals = v2;
    char *k = v2 ? uad_strdup(key) : NULL;
    if (!k) {
        free(v);
        return uad_fail(UAD_ERR_NOMEM, "out of memory");
    }
    w->mkeys[w->n_meta] = k;
    w->mvals[w->n_meta++] = v;
    return UAD_OK;
}

/* A growing text buffer for the header; `bad` records a failed grow. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    int bad;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->bad) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *g = realloc(b->s, cap);
        if (!g) {
            b->bad = 1;
            return;
        }
        b->s = g;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A JSON string literal: quote, backslash and control bytes escaped;
 * other bytes (UTF-8 included) pass through. */
static void sb_json_string(sbuf *b, const char *s) {
    sb_str(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            sb_put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_str(b, esc);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_str(b, "\"");
}

/* The header: __metadata__ first, then tensors in insertion order, padded
 * with spaces to a multiple of 8 so the data starts 8-byte aligned. */
static int build_header(sbuf *b, const uad_st_writer *w) {
    char num[64];
    sb_str(b, "{");
    if (w->n_meta) {
        sb_str(b, "\"__metadata__\":{");
        for (size_t i = 0; i < w->n_meta; i++) {
            if (i) sb_str(b, ",");
            sb_json_string(b, w->mkeys[i]);
            sb_str(b, ":");
            sb_json_string(b, w->mvals[i]);
        }
        sb_str(b, w->n ? "}," : "}");
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const uad_st_tensor *t = &w->t[i];
        if (i) sb_str(b, ",");
        sb_json_string(b, t->name);
        sb_str(b, ":{\"dtype\":\"");
        sb_str(b, uad_dtype_name(t->dtype));
        sb_str(b, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "",
                     (long long)t->shape[d]);
            sb_str(b, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}",
                 (unsigned long long)off,
                 (unsigned long long)(off + t->nbytes));
        sb_str(b, num);
        off += t->nbytes;
    }
    sb_str(b, "}");
    while (!b->bad && b->len % 8) sb_str(b, " ");
    return !b->bad;
}

uad_status uad_st_writer_save(uad_st_writer *w, const char *path) {
    sbuf b = {0};
    if (!build_header(&b, w)) {
        free(b.s);
        return uad_fail(UAD_ERR_NOMEM, "%s: out of memory", path);
    }
    uad_afile f;
    uad_status s = uad_afile_open(&f, path);
    if (s != UAD_OK) {
        free(b.s);
        return s;
    }
    uint64_t hlen = b.len;  /* little-endian host: bytes as stored */
    fwrite(&hlen, 8, 1, f.fp);
    fwrite(b.s, 1, b.len, f.fp);
    for (size_t i = 0; i < w->n; i++)
        if (w->t[i].nbytes) fwrite(w->t[i].data, 1, w->t[i].nbytes, f.fp);
    free(b.s);
    return uad_afile_commit(&f);
}
