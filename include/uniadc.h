/*
 * uniadc.h - unified anomaly detection and classification for industrial
 * images (the UniADC method), as a C11 library.
 *
 * Walk-through: validate a dataset and score precomputed anomaly maps.
 *
 *     uad_priors *pri = NULL;
 *     uad_dataset *ds = NULL;
 *     if (uad_priors_load(&pri, "priors.yaml") != UAD_OK ||
 *         uad_dataset_open(&ds, "mtd", pri, NULL) != UAD_OK) {
 *         fprintf(stderr, "%s\n", uad_last_error());
 *         return 1;
 *     }
 *     for (size_t i = 0; i < uad_dataset_count(ds, UAD_SPLIT_TEST); i++) {
 *         const uad_sample *s = uad_dataset_sample(ds, UAD_SPLIT_TEST, i);
 *         uad_image img;
 *         if (uad_image_load(&img, s->abs_path, NULL) != UAD_OK) break;
 *         ... img.data holds img.c planes of img.h x img.w floats ...
 *         uad_image_free(&img);
 *     }
 *     uad_dataset_free(ds);
 *     uad_priors_free(pri);
 *
 * Conventions (hold for every function below):
 * - Every exported symbol starts with uad_ (types, functions) or UAD_
 *   (enum values, macros).
 * - Functions that can fail on bad input return uad_status. On failure,
 *   uad_last_error() returns a message naming the file and the problem;
 *   the output argument is left zeroed or NULL, and nothing needs freeing.
 * - Objects made by uad_X_load/open/create are released by uad_X_free
 *   (NULL is accepted and ignored). Returned `const` pointers are owned by
 *   the object they came from and live as long as it does.
 * - Broken invariants (a programming error such as a shape mismatch in a
 *   kernel) abort with file:line; the library never calls exit().
 * - The library is silent except through the log callback, which by
 *   default prints warnings and errors to stderr.
 * - Tensors and images are row-major in PyTorch order: (N, C, H, W) for
 *   images and feature maps, (tokens, channels) for sequences.
 */
#ifndef UNIADC_H
#define UNIADC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Status, errors, logging, progress                                   */
/* ------------------------------------------------------------------ */

/* The CLI exits with these numbers, so they are stable. */
typedef enum uad_status {
    UAD_OK = 0,
    UAD_ERR_USAGE = 2,    /* bad argument or option                     */
    UAD_ERR_IO = 3,       /* missing, unreadable or unwritable file     */
    UAD_ERR_FORMAT = 4,   /* corrupt, truncated or unsupported content  */
    UAD_ERR_DATA = 5,     /* inputs inconsistent with each other        */
    UAD_ERR_LIMIT = 6,    /* a configured size limit was exceeded       */
    UAD_ERR_NOMEM = 7,    /* allocation failed                          */
    UAD_ERR_INTERNAL = 8  /* unexpected failure inside a dependency     */
} uad_status;

/* Message of the last failure on this thread ("" if none). */
const char *uad_last_error(void);
/* Short stable name of a status, e.g. "io", "format". */
const char *uad_status_name(uad_status st);
/* Library version, "MAJOR.MINOR.PATCH". */
const char *uad_version(void);

typedef enum uad_log_level {
    UAD_LOG_ERROR = 0,
    UAD_LOG_WARN = 1,
    UAD_LOG_INFO = 2,
    UAD_LOG_DEBUG = 3
} uad_log_level;

typedef void (*uad_log_fn)(uad_log_level level, const char *msg,
                           void *user);
/* Replace the log sink (fn NULL restores the stderr default). Messages
 * above max_level are dropped before they are formatted. */
void uad_log_set(uad_log_fn fn, void *user, uad_log_level max_level);
/* Number of warnings logged since the process started (any sink). */
size_t uad_log_warning_count(void);

/* Progress of long work: `done` of `total` units of `stage`.
 * Called at most a few times a second, and once with done == total. */
typedef void (*uad_progress_fn)(const char *stage, size_t done,
                                size_t total, void *user);
void uad_progress_set(uad_progress_fn fn, void *user);

/* ------------------------------------------------------------------ */
/* Images                                                              */
/* ------------------------------------------------------------------ */

/*
 * Decoded image: `c` planes of h x w floats (C, H, W). Integer sources
 * are divided by their bit depth's maximum (255 or 65535), never
 * stretched per image; float TIFFs keep their values.
 * Alpha rule: an alpha channel is ignored (dropped), so c is 1 or 3.
 * EXIF orientation is ignored for images and masks alike: pixels are used
 * as stored, as MVTec's evaluation (PIL without exif_transpose) does.
 */
typedef struct uad_image {
    int w, h, c;
    float *data;       /* c * h * w values, owned; uad_image_free     */
    int bit_depth;     /* source: 1..16 for integers, 32 for float    */
    int src_channels;  /* source channels incl. alpha (palette: 1 or 3) */
    char format[8];    /* "png", "jpeg", "tiff", "bmp"                */
} uad_image;

typedef struct uad_image_params {
    size_t max_pixels; /* refuse larger images before allocating;
                          default 100 000 000                        */
} uad_image_params;

uad_image_params uad_image_default_params(void);

/* Load PNG, JPEG, TIFF or BMP (chosen by content, not by extension).
 * p may be NULL for defaults. */
uad_status uad_image_load(uad_image *out, const char *path,
                          const uad_image_params *p);
/* Same, from memory; `name` is used in error messages. */
uad_status uad_image_load_mem(uad_image *out, const void *buf, size_t len,
                              const char *name, const uad_image_params *p);
/* Allocate a zeroed w x h x c image (bit_depth 32, format ""). */
uad_status uad_image_alloc(uad_image *out, int w, int h, int c);
void uad_image_free(uad_image *img);

/* Writers go through a temporary file and rename(): a failure leaves no
 * partial file. PNG: 8-bit gray (c=1) or RGB (c=3), values clamped to
 * [0,1] and rounded from v*255. TIFF: 32-bit float, c planes. */
uad_status uad_image_write_png(const char *path, const uad_image *img);
uad_status uad_image_write_tiff(const char *path, const uad_image *img);

typedef enum uad_resize_mode {
    UAD_RESIZE_BILINEAR = 0, /* images, maps                           */
    UAD_RESIZE_NEAREST = 1   /* masks and class maps                   */
} uad_resize_mode;

/* Resize to w x h on PyTorch's align_corners=False grid. Bilinear is
 * F.interpolate(mode="bilinear", align_corners=False, antialias=False);
 * nearest takes source index min(floor(x * in / out), in - 1), as
 * F.interpolate(mode="nearest") does. out must not alias in. */
uad_status uad_image_resize(uad_image *out, const uad_image *in, int w,
                            int h, uad_resize_mode mode);

/* ------------------------------------------------------------------ */
/* Anomaly priors (YAML)                                               */
/* ------------------------------------------------------------------ */

typedef enum uad_shape {
    UAD_SHAPE_RECTANGLE = 1 << 0,
    UAD_SHAPE_LINE = 1 << 1,
    UAD_SHAPE_POLYGON = 1 << 2,
    UAD_SHAPE_ELLIPSE = 1 << 3,
    UAD_SHAPE_HOLLOW_ELLIPSE = 1 << 4,
    UAD_SHAPE_BRUSH = 1 << 5,
    UAD_SHAPE_PERLIN = 1 << 6,
    UAD_SHAPE_FOREGROUND = 1 << 7
} uad_shape;

typedef enum uad_size {
    UAD_SIZE_SMALL = 1 << 0,
    UAD_SIZE_MEDIUM = 1 << 1,
    UAD_SIZE_LARGE = 1 << 2
} uad_size;

typedef struct uad_category {
    char *name;               /* always text: `no`, `on`, `null` stay text */
    char **descriptions;      /* n_descriptions >= 1                  */
    int n_descriptions;
    char **negatives;         /* negative_description, may be 0      */
    int n_negatives;
    unsigned shapes;          /* uad_shape bits; 0 = any local shape  */
    unsigned sizes;           /* uad_size bits; 0 = any size          */
    int foreground;           /* defect lies on the foreground (1)    */
} uad_category;

/* Class id of categories[i] is i + 1; 0 is normal. */
typedef struct uad_priors {
    char *object;             /* may be NULL                          */
    uad_category *categories;
    int n_categories;
} uad_priors;

/* Parse a priors file. Errors carry file:line:column. */
uad_status uad_priors_load(uad_priors **out, const char *path);
uad_status uad_priors_parse(uad_priors **out, const void *buf, size_t len,
                            const char *name);
void uad_priors_free(uad_priors *p);
/* Index of the category called `name`, or -1. */
int uad_priors_find(const uad_priors *p, const char *name);
/* Name of a shape or size bit ("rectangle", "small"), or NULL. */
const char *uad_shape_name(unsigned shape_bit);
const char *uad_size_name(unsigned size_bit);

/* ------------------------------------------------------------------ */
/* safetensors                                                         */
/* ------------------------------------------------------------------ */

typedef enum uad_dtype {
    UAD_DT_F32 = 0, UAD_DT_F16, UAD_DT_BF16, UAD_DT_F64,
    UAD_DT_I64, UAD_DT_I32, UAD_DT_I16, UAD_DT_I8, UAD_DT_U8, UAD_DT_BOOL
} uad_dtype;

#define UAD_ST_MAX_DIMS 8

typedef struct uad_st_tensor {
    const char *name;
    uad_dtype dtype;
    int ndim;
    int64_t shape[UAD_ST_MAX_DIMS];
    const void *data;          /* into the mapped file                */
    size_t nbytes;
} uad_st_tensor;

typedef struct uad_safetensors uad_safetensors;

/* Map and validate a file: every offset, length, dtype and shape is
 * checked against the file before any tensor is exposed. */
uad_status uad_st_open(uad_safetensors **out, const char *path);
/* Same over caller memory (not copied; must outlive the handle). */
uad_status uad_st_open_mem(uad_safetensors **out, const void *buf,
                           size_t len, const char *name);
void uad_st_free(uad_safetensors *st);
size_t uad_st_count(const uad_safetensors *st);
const uad_st_tensor *uad_st_tensor_at(const uad_safetensors *st, size_t i);
const uad_st_tensor *uad_st_find(const uad_safetensors *st,
                                 const char *name);
/* String metadata value of `key` (__metadata__), or NULL. */
const char *uad_st_meta(const uad_safetensors *st, const char *key);
size_t uad_dtype_size(uad_dtype dt);
const char *uad_dtype_name(uad_dtype dt);
/* Element count of a tensor. */
size_t uad_st_numel(const uad_st_tensor *t);
/* Convert F32/F16/BF16/F64 to float; out has numel entries. */
uad_status uad_st_to_f32(const uad_st_tensor *t, float *out);

typedef struct uad_st_writer uad_st_writer;
uad_st_writer *uad_st_writer_create(void);
void uad_st_writer_free(uad_st_writer *w);
/* Add a tensor; data is copied. shape has ndim entries. */
uad_status uad_st_writer_add(uad_st_writer *w, const char *name,
                             uad_dtype dt, int ndim, const int64_t *shape,
                             const void *data);
uad_status uad_st_writer_meta(uad_st_writer *w, const char *key,
                              const char *value);
/* Write atomically (temporary file + rename). */
uad_status uad_st_writer_save(uad_st_writer *w, const char *path);

/* ------------------------------------------------------------------ */
/* Metrics (SPEC section 2)                                            */
/* ------------------------------------------------------------------ */

/* Return rule shared by the metrics below: 1 when the value is defined
 * (*out set), 0 when it is undefined for these inputs (*out = NaN, e.g.
 * only one class present), -1 on bad input or out of memory (*out = NaN,
 * uad_last_error() says why). Bad input: a NaN score, a NULL pointer
 * with a non-zero size, a negative map size, counts too large to sum.
 * Scores may be any other float, negative and infinite included; -0.0
 * and +0.0 are the same score. Memory is linear in the pixel count
 * (AUROC: 8 bytes a pixel; AUPRO: 8 a normal and 20 an anomalous pixel,
 * plus 8 per pixel of the largest map) and so is the running time
 * (radix sorts): 20 million pixels take well under a second. */

/* ROC AUC of scores against binary labels (non-zero = positive) in its
 * Mann-Whitney form: the share of (positive, negative) pairs ranked
 * correctly, ties counting half. It depends only on the ranking (no
 * sigmoid, no clipping) and equals sklearn's roc_auc_score. */
int uad_auroc(const float *scores, const uint8_t *labels, size_t n,
              double *out);

/* One map and its ground truth at the same size (the caller resizes). */
typedef struct uad_map_gt {
    const float *map;   /* h * w scores                               */
    const uint8_t *gt;  /* h * w, non-zero = anomalous                */
    int w, h;
} uad_map_gt;

/* Pixel AUROC over all pixels of all maps. Same return rule. */
int uad_pixel_auroc(const uad_map_gt *items, size_t n, double *out);

/* Area under the per-region-overlap curve for FPR in [0, fpr_limit],
 * divided by fpr_limit (0.3 in the SPEC), as MVTec AD's evaluation
 * defines it. Regions are the 8-connected components of each gt (pixels
 * touching at a corner are one region). For a threshold t, FPR = normal
 * pixels with score >= t / normal pixels and PRO = mean over all regions
 * of all maps of (region pixels with score >= t) / region size. Exact:
 * every distinct score is one curve point (ties enter together), the
 * curve starts at (0, 0), and the last segment is interpolated linearly
 * at FPR = fpr_limit. The result lies in [0, 1]. fpr_limit must be in
 * (0, 1] (else -1). Returns 0 (NaN) when there is no anomalous or no
 * normal pixel. */
int uad_aupro(const uad_map_gt *items, size_t n, double fpr_limit,
              double *out);

/* Confusion counts: conf[t * ncls + p] for true t, predicted p (ncls x
 * ncls). Same return rule; ncls < 1 or a NULL conf is bad input. */
/* Accuracy = trace / total; 0 (NaN) when total is 0. */
int uad_accuracy(const uint64_t *conf, int ncls, double *out);
/* Mean over classes of TP / (TP + FP + FN) (sklearn's jaccard_score with
 * average="macro"). Classes whose union is empty (never true, never
 * predicted) are left out of the mean, with one warning per such class
 * naming its index; 0 (NaN) if all are. */
int uad_miou(const uint64_t *conf, int ncls, double *out);

#ifdef __cplusplus
}
#endif
#endif /* UNIADC_H */
