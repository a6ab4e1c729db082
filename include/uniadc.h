/*
 * uniadc.h - unified anomaly detection and classification for industrial
 * images (the UniADC method), as a C11 library.
 *
 * Walk-through: validate a dataset and score precomputed anomaly maps.
 *
 *     uad_priors *pri = NULL;
 *     uad_dataset *ds = NULL;
 *     if (uad_priors_load(&pri, "priors.yaml") != UAD_OK ||
 *         uad_dataset_open(&ds, "mtd", pri) != UAD_OK) {
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
#include <stdio.h>

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

/* Compute precision of every matmul and convolution that follows,
 * process-wide (networks, ViT backbones, text encoders): 0 = f32
 * (default), 1 = bf16 inputs with f32 accumulation. Turning bf16 on fails
 * with UAD_ERR_USAGE where oneDNN has no bf16 kernels for this CPU (it
 * needs AVX-512); f32 then stays. */
uad_status uad_set_bf16(int on);

/* ------------------------------------------------------------------ */
/* Images                                                              */
/* ------------------------------------------------------------------ */

/*
 * Decoded image: `c` planes of h x w floats (C, H, W). Integer sources
 * are divided by their bit depth's maximum (1, 3, 15, 255 or 65535),
 * never stretched per image; float TIFFs keep their values.
 * Alpha rule: an alpha channel is ignored (dropped), so c is 1 or 3.
 * EXIF orientation is ignored for images and masks alike: pixels are used
 * as stored, as MVTec's evaluation (PIL without exif_transpose) does.
 *
 * What decodes (anything else fails with UAD_ERR_FORMAT and a message):
 * - PNG: every colour type and bit depth (1/2/4/8/16), interlaced or not.
 *   A palette gives c = 1 when every palette entry is gray, else c = 3;
 *   its values are the palette's 8-bit entries (bit_depth 8), and
 *   src_channels is c, plus 1 when the file has a tRNS chunk.
 * - JPEG: baseline and progressive, gray (c = 1) or colour (c = 3).
 *   CMYK/YCCK JPEGs are refused. Corrupt or truncated data is an error,
 *   not a gray-filled image.
 * - TIFF: 8/16-bit unsigned or 32-bit float samples, gray (1 sample, or 2
 *   with alpha) or RGB (3, or 4 with alpha), contiguous or separate
 *   planes, strips or tiles, any compression libtiff was built with.
 *   Palette, MINISWHITE, YCbCr, CMYK and signed-integer TIFFs are refused.
 * - BMP (via stb_image): 8-bit palette, 24- and 32-bit; always c = 3
 *   (palettes are expanded to RGB), bit_depth 8.
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
 * p may be NULL for defaults. Width x height above p->max_pixels fails
 * with UAD_ERR_LIMIT before pixel memory is allocated; a missing file is
 * UAD_ERR_IO; an empty, corrupt, truncated or unsupported file is
 * UAD_ERR_FORMAT. The caller frees *out with uad_image_free. */
uad_status uad_image_load(uad_image *out, const char *path,
                          const uad_image_params *p);
/* Same, from memory; `name` is used in error messages. */
uad_status uad_image_load_mem(uad_image *out, const void *buf, size_t len,
                              const char *name, const uad_image_params *p);
/* Allocate a zeroed w x h x c image (bit_depth 32, format ""). */
uad_status uad_image_alloc(uad_image *out, int w, int h, int c);
void uad_image_free(uad_image *img);

/* Writers go through a temporary file and rename(): a failure leaves no
 * partial file (UAD_ERR_IO naming the path). Both take c = 1 or 3 only
 * (else UAD_ERR_USAGE). PNG: 8-bit gray or RGB, values clamped to [0,1]
 * and rounded from v*255 (NaN is written as 0), so v = k/255 reads back
 * exactly. TIFF: 32-bit float, one plane per channel
 * (PLANARCONFIG_SEPARATE), deflate-compressed; values read back exactly. */
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

/* Parse a priors file (UTF-8, optional BOM, LF or CRLF, at most 1 MiB;
 * YAML anchors and aliases are refused). Errors carry file:line:column.
 * `name` is the file name used in messages. Free with uad_priors_free. */
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
/* Datasets in MVTec AD layout                                         */
/* ------------------------------------------------------------------ */

/*
 * root/train/good/...          normal training images
 * root/test/good/...           normal test images (no masks)
 * root/test/<category>/...     defect images
 * root/ground_truth/<category>/<stem>_mask.png   their masks
 * Image files: png, jpg, jpeg, tif, tiff, bmp in any letter case; hidden
 * files (".x") and other extensions are ignored; order is byte-wise
 * (strcmp) by file name.
 */
typedef enum uad_split { UAD_SPLIT_TRAIN = 0, UAD_SPLIT_TEST = 1 } uad_split;

#define UAD_CLASS_COMBINED (-1) /* "combined": detection metrics only */
#define UAD_CLASS_UNKNOWN (-2)  /* no priors were given               */

typedef struct uad_sample {
    const char *rel_path;  /* "test/crack/000.jpg", relative to root   */
    const char *abs_path;  /* root joined with rel_path                */
    const char *category;  /* "good" or the defect folder's name       */
    const char *stem;      /* file name without extension              */
    const char *mask_path; /* ground-truth file, NULL for good images  */
    int class_id;          /* 0 good, 1..Y by the priors' order, or a
                              UAD_CLASS_* value                        */
} uad_sample;

typedef struct uad_dataset uad_dataset;

/* Scan root. With priors, every defect folder except "combined" must be a
 * prior category and every prior category must have a folder (UAD_ERR_DATA
 * otherwise). Fails when a folder is missing or holds no image ("no images
 * found in DIR (accepted: ...)") or a defect image has no mask. Images are
 * not decoded here: see uad_dataset_check. */
uad_status uad_dataset_open(uad_dataset **out, const char *root,
                            const uad_priors *priors);
void uad_dataset_free(uad_dataset *ds);
const char *uad_dataset_root(const uad_dataset *ds);
size_t uad_dataset_count(const uad_dataset *ds, uad_split split);
const uad_sample *uad_dataset_sample(const uad_dataset *ds, uad_split split,
                                     size_t i);
/* Test categories in folder order ("good" excluded). */
size_t uad_dataset_n_categories(const uad_dataset *ds);
const char *uad_dataset_category(const uad_dataset *ds, size_t i);

typedef enum uad_setting {
    UAD_SETTING_ALL = 0,  /* every test image evaluated (MVTec script)  */
    UAD_SETTING_ZERO = 1, /* priors; first 2 of each defect folder held */
    UAD_SETTING_FEW = 2   /* examples: first ka of each defect folder   */
} uad_setting;

#define UAD_KN_ALL (-1)

typedef struct uad_protocol {
    uad_setting setting;
    int kn;  /* normal shots, or UAD_KN_ALL                          */
    int ka;  /* examples per category (few-shot), 0 otherwise        */
} uad_protocol;

/* The few-shot protocol of SPEC section 2, computed by the library:
 * normals = first kn of train/good; examples = first ka of each defect
 * folder except combined; eval = the test set without the first 2 files
 * of every defect folder (all test images with UAD_SETTING_ALL).
 * Arrays point into the dataset; free with uad_support_free. */
typedef struct uad_support {
    const uad_sample **normals;
    size_t n_normals;
    const uad_sample **examples;
    size_t n_examples;
    const uad_sample **eval;
    size_t n_eval;
} uad_support;

uad_status uad_dataset_support(uad_support *out, const uad_dataset *ds,
                               const uad_protocol *proto);
void uad_support_free(uad_support *sup);

/* A binary mask (1 = anomalous: any non-zero pixel), w x h bytes. Warns
 * when the file holds more than two distinct values or is a JPEG. */
typedef struct uad_mask {
    int w, h;
    uint8_t *data;
} uad_mask;
uad_status uad_mask_load(uad_mask *out, const char *path,
                         const uad_image_params *p);
void uad_mask_free(uad_mask *m);

/* Load an image resized (bilinear) to size x size, keeping the source's
 * bit_depth, src_channels and format; and a mask resized (nearest) to
 * size x size bytes of 0/1 (*out malloc'd, caller frees). */
uad_status uad_image_load_resized(uad_image *out, const char *path, int size,
                                  const uad_image_params *p);
uad_status uad_mask_load_resized(uint8_t **out, const char *path, int size,
                                 const uad_image_params *p);

/* Decode every image and mask of the dataset, checking that each mask has
 * its image's size. All failures are listed at once in the error message
 * (one per line); returns the first failure's status. Optional stats. */
typedef struct uad_dataset_stats {
    size_t n_images, n_masks;
    int min_w, max_w, min_h, max_h;
    int channels_seen;    /* bit set: 1 << src_channels                */
    int depths_seen;      /* bit set: 1 << bit_depth (<= 16), 32: float */
    double mask_frac_min, mask_frac_mean, mask_frac_max; /* anomalous area */
    size_t n_empty_masks;
    size_t n_warnings;
} uad_dataset_stats;
uad_status uad_dataset_check(const uad_dataset *ds, const uad_image_params *p,
                             uad_dataset_stats *stats);

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
 * checked against the file before any tensor is exposed. As in the
 * reference implementation the tensors must tile the data exactly (no
 * overlap, no gap, no unused trailing bytes). Tensors are listed in
 * header order; headers over 100 MB are refused (UAD_ERR_LIMIT). */
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
/* Convert F32/F16/BF16/F64 to float; out has numel entries. Other dtypes
 * fail with UAD_ERR_DATA. Data may be unaligned. */
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
/* Write atomically (temporary file + rename): __metadata__ first, then
 * tensors in insertion order, header padded with spaces so the data
 * starts 8-byte aligned. A repeated metadata key replaces the value. */
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

/* ------------------------------------------------------------------ */
/* Evaluation of predictions against a dataset's ground truth          */
/* ------------------------------------------------------------------ */

/* Fractions in [0, 1]; NaN means undefined or not computable from what
 * was given (written as null in JSON, never as 0 or 0.5). */
typedef struct uad_metrics {
    double i_auroc, p_auroc, aupro, acc, miou;
    size_t n_images;     /* images scored                               */
    size_t n_normal;     /* of which normal                             */
    size_t n_anomalous;  /* of which with an anomalous pixel            */
    size_t n_classified; /* images counted for acc (combined excluded)  */
    uint64_t n_pixels;   /* pixels scored, at mask resolution           */
} uad_metrics;

typedef struct uad_eval_params {
    uad_protocol protocol; /* which test images are evaluated (SPEC 2) */
    double fpr_limit;      /* AUPRO integration limit, default 0.3      */
    int top_k;             /* image score without a given one: mean of
                              the map's top_k values, default 100      */
    uad_image_params image;
    int quiet_masks;       /* 1: no grouped warning about mask values
                              (for callers that checked the dataset)  */
} uad_eval_params;
uad_eval_params uad_eval_default_params(void);

/* One image's prediction. The map (S_d) may have any size: it is resized
 * bilinearly to the ground truth's size. */
typedef struct uad_eval_input {
    const float *map;         /* map_h x map_w scores                  */
    int map_w, map_h;
    double score;             /* I_d, or NaN: mean of top_k map values */
    const uint8_t *class_map; /* cls_h x cls_w ids 0..Y, or NULL       */
    int cls_w, cls_h;         /* resized nearest to the ground truth   */
} uad_eval_input;

/* Per category c (folder order): detection metrics over test/good plus
 * test/c; acc = share of test/c images classified c; miou = IoU of class
 * c over every evaluated pixel. `overall` pools all evaluated images. */
typedef struct uad_eval_result {
    uad_metrics overall;
    size_t n_categories;
    char **categories;
    uad_metrics *per_category;
    int n_classes;                /* Y + 1 (0 = normal)                 */
    uint64_t *image_confusion;    /* [true * n_classes + predicted]     */
    int has_classes;              /* class maps were given              */
    uad_eval_params params;
} uad_eval_result;

/* Score preds[i] for samples[i] (usually a uad_support's eval list).
 * priors may be NULL (then acc and miou are NaN). */
uad_status uad_eval_predictions(uad_eval_result **out,
                                const uad_dataset *ds,
                                const uad_priors *priors,
                                const uad_sample *const *samples,
                                const uad_eval_input *preds, size_t n,
                                const uad_eval_params *p);
/* Score files: maps_dir/<category>/<stem>.tiff (float TIFF, any size),
 * optional maps_dir/scores.csv ("path,score", path relative to the
 * dataset root), optional class_maps_dir/<category>/<stem>.png (8-bit
 * ids; needs priors). Every missing or bad file is reported at once,
 * before any metric is computed. */
uad_status uad_eval_dirs(uad_eval_result **out, const uad_dataset *ds,
                         const uad_priors *priors, const char *maps_dir,
                         const char *class_maps_dir,
                         const uad_eval_params *p);
/* JSON: {"metrics": {...}, "per_category": {...}, "counts": ...}. */
uad_status uad_eval_write_json(const uad_eval_result *r, const char *path);
/* Markdown table in percent with two decimals ("-" for undefined). */
void uad_eval_print_markdown(const uad_eval_result *r, FILE *fp);
void uad_eval_free(uad_eval_result *r);

/* ------------------------------------------------------------------ */
/* The main job: uad_run (declared after the synthesis and model       */
/* sections below, since it combines their parameters)                 */
/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* Anomaly synthesis (SPEC sections 3-5)                               */
/* ------------------------------------------------------------------ */

/*
 * Turns normal images into labelled defect images, one category at a
 * time. Walk-through (zero-shot, priors):
 *
 *     uad_synth_params sp = uad_synth_default_params();
 *     sp.seed = 7;
 *     uad_synth *syn = NULL;
 *     uad_synth_list out = {0};
 *     if (uad_synth_create(&syn, normals, n_normals, &sp) != UAD_OK ||
 *         uad_synth_zero_shot(&out, syn, priors) != UAD_OK) ...error...
 *     for (size_t i = 0; i < out.n; i++)
 *         ... out.items[i].image, .mask, .class_id, .method, .score ...
 *     uad_synth_list_free(&out);
 *     uad_synth_free(syn);
 *
 * Engines are interchangeable behind uad_synth_params.engine. The
 * procedural engine (default) needs no model weights: foreground by a
 * border colour model, masks from SPEC section 3's table, appearance from
 * a lexicon of defect words (uad_synth_lexicon), candidates ranked by a
 * weight-free consistency score (uad_synth_score), examples pasted with
 * gradient-domain (Poisson) blending and ranked by SSIM.
 */

typedef enum uad_synth_engine {
    UAD_SYNTH_PROCEDURAL = 0, /* weight-free, always available          */
    UAD_SYNTH_DIFFUSION = 1   /* SD 1.5 + BrushNet: not built yet, every
                                 call returns UAD_ERR_USAGE            */
} uad_synth_engine;

typedef struct uad_synth_params {
    uad_synth_engine engine;
    uint64_t seed;         /* every random choice derives from it      */
    int per_category;      /* kept samples per category, default 16    */
    int n_candidates;      /* B candidates per kept sample, default 32 */
    int n_threads;         /* worker threads, default 1 (results do not
                              depend on it)                            */
    int min_component;     /* few-shot: components under this many px
                              at 512 x 512 (scaled by area) are skipped
                              with a warning, default 256 (SPEC 5)     */
} uad_synth_params;

uad_synth_params uad_synth_default_params(void);

/* One synthetic sample. image has the source's size, channels and value
 * scale; mask is w*h bytes, 1 = anomalous (never empty). */
typedef struct uad_synth_sample {
    uad_image image;
    uint8_t *mask;
    int class_id;        /* 1..Y, as the priors' order                */
    char method[64];     /* "prior:hole", "example:poisson", ...      */
    double score;        /* consistency (prior) or SSIM (example)     */
    uint64_t seed;       /* the sample's own seed (a prior sample is
                            remade by uad_synth_prior_one with it)    */
    int source;          /* index of the normal image used            */
} uad_synth_sample;

typedef struct uad_synth_list {
    uad_synth_sample *items;
    size_t n;
} uad_synth_list;

/* Frees every sample's image and mask and the array; zeroes the list. */
void uad_synth_list_free(uad_synth_list *l);

typedef struct uad_synth uad_synth;

/* Prepare a synthesizer over n normal images (copied; all must share
 * one channel count, sizes may differ). Estimates each image's
 * foreground. p NULL = defaults. Fails with UAD_ERR_USAGE for the
 * diffusion engine or bad parameters, UAD_ERR_DATA for no images. */
uad_status uad_synth_create(uad_synth **out, const uad_image *normals,
                            size_t n, const uad_synth_params *p);
void uad_synth_free(uad_synth *s);
/* Foreground of normal image i (w*h bytes, 1 = foreground). */
const uint8_t *uad_synth_foreground(const uad_synth *s, size_t i);

/* Zero-shot: per_category samples for every category of the priors, in
 * category order. On failure *out is left empty. */
uad_status uad_synth_zero_shot(uad_synth_list *out, uad_synth *s,
                               const uad_priors *priors);
/* One kept sample of category index `cat` (class cat + 1): B candidates,
 * the best by uad_synth_score. Sample k of a run uses seed
 * uad_synth_sample_seed(p.seed, cat, k). A negative description is read
 * for its direction only: "scratch" with negative "dark" brightens. */
uad_status uad_synth_prior_one(uad_synth_sample *out, uad_synth *s,
                               const uad_priors *priors, int cat,
                               uint64_t seed);
uint64_t uad_synth_sample_seed(uint64_t seed, int cat, int k);

/* A real example for few-shot synthesis: image + mask (w*h bytes,
 * non-zero = anomalous) of category class_id. */
typedef struct uad_synth_example {
    const uad_image *image;
    const uint8_t *mask;
    int class_id;
    const char *name;  /* for messages, e.g. the file path            */
} uad_synth_example;

/* Few-shot: per_category samples for every class present among the
 * examples, pasting connected components of the example masks onto the
 * normals (the example is scaled to each normal's size). Components
 * under the minimum area are skipped with a warning; a class left with
 * none uses those of at least a quarter of the minimum (and 4 px), with
 * a warning, and fails with UAD_ERR_DATA when it has none of those
 * either: a region too small to paste never becomes an unchanged
 * "defect". */
uad_status uad_synth_few_shot(uad_synth_list *out, uad_synth *s,
                              const uad_synth_example *ex, size_t n_ex);

/* ---- building blocks (used by the engine, exposed for tests/tools) - */

/* Foreground estimate of img into fg (w*h bytes, 1 = foreground):
 * median colour of a border band, robust distance of every (smoothed)
 * pixel to it, threshold, opening + closing, hole filling, largest
 * component. Under 5% foreground means "all foreground" (SPEC 3).
 * Returns the foreground fraction. */
double uad_fg_estimate(uint8_t *fg, const uad_image *img);

/* Draw one mask of shape bit `shape` and size bit `size` (one of each)
 * into mask (w*h bytes, 0/1), with every region's centre on the
 * foreground fg (NULL = everywhere). Regions are clipped to fg and the
 * mask is redrawn (at most 64 times) until enough of it lies on fg.
 * Never empty. Deterministic for seed. UAD_ERR_USAGE for bad bits. */
uad_status uad_maskgen_draw(uint8_t *mask, const uint8_t *fg, int w, int h,
                            unsigned shape, unsigned size, uint64_t seed);

/* Minimum mean |change| inside a synthesized mask, as a fraction of the
 * image's value range (about 13 of 255 grey levels): uad_synth_apply
 * amplifies a weaker change up to it. */
#define UAD_SYNTH_MIN_CHANGE 0.05

/* Appearance operators chosen from a description's words. */
typedef enum uad_synth_op {
    UAD_OP_GENERIC = 0, /* noise-texture blend (no known word)         */
    UAD_OP_COLOR,       /* colour/substance blend, noise-modulated     */
    UAD_OP_HOLE,        /* dark pit with shading                       */
    UAD_OP_LINE,        /* thin dark/bright curvilinear stroke          */
    UAD_OP_FOLD,        /* ridge shading (fold, crease, bent)          */
    UAD_OP_ABRASION,    /* texture loss + fine scratches + darkening   */
    UAD_OP_CRUMPLE,     /* multi-scale relief shading (crumpling)      */
    UAD_OP_LIGHTING,    /* low-frequency gain (uneven, lighting)       */
    UAD_OP_MISSING,     /* foreground removed: background fill         */
    UAD_OP_TRANSFORM,   /* content flipped/moved (flip, swap, misplaced) */
    UAD_OP_PRINT,       /* glyph-like strokes (print, text)            */
    UAD_OP_WARP,        /* local elastic warp (squeeze, deformed)      */
    UAD_OP_COUNT
} uad_synth_op;

/* What the lexicon reads from a description. */
typedef struct uad_synth_recipe {
    uad_synth_op op;       /* the primary operator                     */
    float color[3];        /* target colour when has_color (RGB, 0..1) */
    int has_color;
    int direction;         /* -1 darker, +1 brighter, 0 either         */
    float alpha;           /* opacity scale (transparent: lower)       */
    unsigned shapes;       /* preferred uad_shape bits, 0 = no hint    */
    int n_unknown;         /* words the lexicon does not know          */
    char unknown[160];     /* them, space-separated (truncated)        */
} uad_synth_recipe;

/* Read a description through the lexicon (see the table in synth_ops.c
 * and the README). Never fails; unknown words are listed, not logged. */
uad_synth_recipe uad_synth_lexicon(const char *description);
const char *uad_synth_op_name(uad_synth_op op);

/* Apply a recipe inside mask (w*h bytes) of img, in place; pixels
 * outside the mask are not written. May shrink the mask to the pixels
 * the operator changed (never to zero). fg may be NULL. `strength` in
 * [0.5, 1.5] scales the effect. Values stay within the image's range
 * ([0,1] for integer sources). */
void uad_synth_apply(uad_image *img, uint8_t *mask, const uint8_t *fg,
                     const uad_synth_recipe *r, float strength,
                     uint64_t seed);

/* Weight-free category consistency of a candidate (result vs source
 * inside mask), in [0,1]: visible change relative to the local texture
 * around the mask, coverage of the mask by the change, agreement of the
 * change's sign with the recipe's direction, no clipping. See synth.c. */
double uad_synth_score(const uad_image *result, const uad_image *source,
                       const uint8_t *mask, const uad_synth_recipe *r);

/* SSIM (Gaussian window 11, sigma 1.5, constants for range 1) between
 * two single-plane w x h images, averaged over channels for c > 1. */
double uad_ssim(const uad_image *a, const uad_image *b);


/* ------------------------------------------------------------------ */
/* Tensors and the multi-task discriminator (SPEC sections 6-8)        */
/* ------------------------------------------------------------------ */

/*
 * The discriminator: a backbone with four feature levels (weight-free
 * built-in, or a frozen pretrained ViT), necks, four coarse-to-fine
 * fusion blocks and one embedding per defect category (learnable, or
 * frozen text embeddings); logits are cosine similarities over a
 * learnable temperature, S_y = sigmoid, S_d = mean over Y (SPEC
 * section 6).
 *
 *     uad_model *m = NULL;
 *     uad_model_params mp = uad_model_default_params();
 *     uad_model_create(&m, names, n_names, &mp);
 *     uad_train_params tp = uad_train_default_params();
 *     uad_train(m, samples, n_samples, &tp);      // uad_train_sample[]
 *     uad_model_save(m, "model.safetensors");
 *     uad_prediction pr;
 *     uad_predict(&pr, m, &image);                // any size, 1 or 3 ch
 *     ... pr.score, pr.image_class, pr.det[h * w], pr.cls[h * w] ...
 *     uad_prediction_free(&pr);
 *     uad_model_free(m);
 *
 * A model is not safe to use from two threads at once.
 */
typedef struct uad_model uad_model;

typedef enum uad_backbone_kind {
    UAD_BACKBONE_GABOR = 0,  /* fixed oriented filter bank              */
    UAD_BACKBONE_STEM = 1,   /* small CNN stem trained from scratch     */
    UAD_BACKBONE_HYBRID = 2, /* both, concatenated before the necks     */
    /* Frozen pretrained ViTs read from backbone_dir (see "Pretrained ViT
     * backbones" below): patch tokens after blocks L/4, L/2, 3L/4 and L
     * (rounded up), through the final layer norm, all four levels on the
     * one S/p grid (SPEC section 6). */
    UAD_BACKBONE_DINOV2 = 3,
    UAD_BACKBONE_DINOV3 = 4,
    UAD_BACKBONE_CLIP = 5
} uad_backbone_kind;

typedef struct uad_model_params {
    int width;       /* embedding width C; published 1024, default 64;
                        with `embed` it is the embeddings' width         */
    int input_size;  /* square input side S; published 512, default 256.
                        Built-in backbones: a multiple of 32. ViT: rounded
                        to the nearest multiple of the patch (at least
                        one patch), e.g. 224 stays 224 at patch 14 and
                        16, 512 becomes 518 at patch 14                  */
    int backbone;    /* uad_backbone_kind; default UAD_BACKBONE_GABOR    */
    float tau;       /* pixel threshold on S_d, default 0.5              */
    uint64_t seed;   /* parameter initialisation                         */
    const char *backbone_dir; /* checkpoint folder of a ViT backbone
                        (config.json, model.safetensors); recorded in the
                        model file as given, the weights are not copied  */
    const float *embed; /* (n, width) frozen category embeddings (e.g.
                        uad_text_category_embeddings), or NULL for
                        learnable ones (seeded)                          */
    const char *text;   /* where `embed` came from ("clip:DIR"), recorded
                        in the model file; may be NULL                   */
} uad_model_params;

uad_model_params uad_model_default_params(void);
/* Name of a backbone kind ("gabor", "stem", "hybrid", "dinov2",
 * "dinov3", "clip"), or NULL. */
const char *uad_backbone_name(int kind);
/* Parse a backbone name; -1 when unknown. */
int uad_backbone_parse(const char *name);
/* 1 for the pretrained ViT kinds, else 0. */
int uad_backbone_is_vit(int kind);
/* Parse "gabor", "stem", "hybrid" or "KIND:DIR" (KIND dinov2, dinov3 or
 * clip; DIR non-empty): *kind, and *dir pointing into spec after the
 * colon (NULL for the built-in kinds). UAD_ERR_USAGE with a message
 * for anything else (a ViT kind without a folder, a built-in kind with
 * one). */
uad_status uad_backbone_parse_spec(int *kind, const char **dir,
                                   const char *spec);
/* The input side a ViT with this patch uses for a requested side: the
 * nearest multiple of the patch, at least one patch. */
int uad_vit_input_size(int patch, int requested);

/* Frozen category embeddings from a text encoder: spec "clip:DIR" (a
 * CLIP checkpoint) or "dinotxt:DIR" (see "Text encoders" below). *out
 * (malloc'd, caller frees) holds pri->n_categories rows of *dim floats (the projection
 * width): row i is uad_clip_category_embedding of category i's name and
 * descriptions. UAD_ERR_USAGE for another kind; the loader's errors
 * otherwise. */
uad_status uad_text_category_embeddings(float **out, int *dim,
                                        const char *spec,
                                        const uad_priors *pri);

/* A freshly initialised model for the categories names[0..n-1] (class id
 * i + 1). Names must be non-empty, distinct, without control characters;
 * 1 <= n <= 255. Free with uad_model_free. */
uad_status uad_model_create(uad_model **out, const char *const *names,
                            int n, const uad_model_params *p);
void uad_model_free(uad_model *m);

/* The model file is safetensors: every parameter as F32 under its
 * PyTorch-style name, the configuration as string metadata (format,
 * format_version, uniadc_version, categories as a JSON array, backbone,
 * width, input_size, tau). Loading checks every key, shape and value and
 * fails with UAD_ERR_FORMAT naming the file and the problem. Models on a
 * ViT backbone or with frozen embeddings are format_version 2 and add
 * embed_frozen, text, backbone_dir, backbone_hidden, backbone_layers and
 * backbone_patch (the ViT's weights stay in its folder); built-in models
 * with learnable embeddings are written as version 1, as before. */
uad_status uad_model_save(const uad_model *m, const char *path);
uad_status uad_model_load(uad_model **out, const char *path);
/* The same; a model on a ViT backbone loads the checkpoint from the
 * folder its file records, or from `backbone` ("KIND:DIR", may be NULL)
 * when given, which must be of the recorded kind and shape (hidden
 * width, blocks, patch). A missing or unreadable folder fails with its
 * loader's status (UAD_ERR_IO for a missing file) and a message naming
 * the model file and the folder; a checkpoint of another kind or shape
 * fails with UAD_ERR_DATA naming both shapes. For built-in backbones
 * `backbone` must be NULL (UAD_ERR_USAGE otherwise). */
uad_status uad_model_load_with(uad_model **out, const char *path,
                               const char *backbone);

int uad_model_n_categories(const uad_model *m);
/* Name of class id `cls` (1..Y); "normal" for 0; NULL out of range. */
const char *uad_model_category(const uad_model *m, int cls);
int uad_model_input_size(const uad_model *m);
int uad_model_width(const uad_model *m);
int uad_model_backbone(const uad_model *m);
/* Checkpoint folder of a ViT backbone (as recorded or given), or NULL. */
const char *uad_model_backbone_dir(const uad_model *m);
/* Text encoder the frozen embeddings came from, or NULL. */
const char *uad_model_text(const uad_model *m);
/* 1 when the category embeddings are frozen (from a text encoder). */
int uad_model_embed_frozen(const uad_model *m);
float uad_model_tau(const uad_model *m);
void uad_model_set_tau(uad_model *m, float tau);
/* Learned temperature eps of the cosine logits. */
float uad_model_temperature(const uad_model *m);
/* Number of trainable parameters. */
size_t uad_model_n_params(const uad_model *m);

/* One training sample. Images of any size; the mask has the image's
 * size (w * h bytes, non-zero = anomalous) or is NULL for a normal
 * image. class_id is 1..Y for an anomalous sample, 0 for a normal one.
 * `real` marks real images (normal support and real examples), which
 * few-shot batches always contain. */
typedef struct uad_train_sample {
    const uad_image *image;
    const uint8_t *mask;
    int class_id;
    int real;
} uad_train_sample;

typedef struct uad_train_params {
    int epochs;          /* 50                                           */
    int steps_per_epoch; /* 5                                            */
    int batch;           /* 16                                           */
    float lr;            /* 1e-3, times (1 - epoch / epochs)^0.9         */
    float beta1, beta2;  /* 0.9, 0.999                                   */
    float weight_decay;  /* 1e-4 (AdamW, decoupled)                      */
    float clip;          /* 0.1: gradient-norm clip of the fusion part   */
    float ce_weight;     /* 0.5: lambda of the cross-entropy term        */
    float temp_lr_scale; /* learning-rate factor of the temperature eps;
                            1 = published                                */
    int few_shot;        /* batch = all real samples + synthetic fill    */
    int augment;         /* random flips and 90-degree rotations (ViT
                            backbones: of the cached token maps)         */
    int bf16;            /* bf16 matmul/conv inputs, f32 accumulation,
                            for the whole uad_train call (cached backbone
                            features too) and, in uad_run, the whole job
                            (prediction, kNN, text embeddings); the
                            uad_set_bf16 setting is restored after      */
    int threads;         /* 0 = the compute core's default               */
    uint64_t seed;       /* batch draws and augmentation                 */
} uad_train_params;

uad_train_params uad_train_default_params(void);

/* What training did (optional output). */
typedef struct uad_train_stats {
    int steps;
    float first_loss, last_loss; /* mean over the first / last epoch     */
    double seconds;
} uad_train_stats;

/* Train m in place on samples[0..n-1]; needs at least one anomalous
 * sample. Reports progress ("train", steps) through uad_progress with
 * the current loss in the log at debug level. stats may be NULL. */
uad_status uad_train(uad_model *m, const uad_train_sample *samples,
                     size_t n, const uad_train_params *p,
                     uad_train_stats *stats);

/* Prediction for one image, maps at the image's own size (SPEC 7-8). */
typedef struct uad_prediction {
    int w, h, n_classes;   /* n_classes = Y                               */
    float *det;            /* S_d, h * w                                  */
    float *prob;           /* S_y, Y planes of h * w                      */
    uint8_t *cls;          /* S_c, h * w, 0 = normal                      */
    float score;           /* I_d: mean of the 100 highest S_d            */
    int image_class;       /* I_c: class with most pixels, 0 if none      */
    size_t *area;          /* pixels per class 0..Y (Y + 1 entries)       */
} uad_prediction;

/* Per image only: tau is applied to this image's own S_d, nothing is
 * normalised across images. Free with uad_prediction_free. */
uad_status uad_predict(uad_prediction *out, uad_model *m,
                       const uad_image *img);
void uad_prediction_free(uad_prediction *p);

/* PNG for people: the input, the anomaly map as a heat-map overlay and
 * the class map in colours, with a legend of the categories. img is the
 * image pr was predicted from. Written atomically. */
uad_status uad_predict_write_view(const char *path, const uad_model *m,
                                  const uad_image *img,
                                  const uad_prediction *pr);

/* Calibrate tau from normal images only. Rule: tau = the next float above
 * the largest S_d pixel of any of the eight flips and 90-degree rotations
 * of every calibration image, so none of those views has an anomalous
 * pixel (I_c = 0 for each). The views matter when the calibration images
 * are the training normals: the model has seen those exact pixels, while
 * their flipped and rotated versions score like unseen normal tiles. tau
 * may end up on either side of the default 0.5. Fails (UAD_ERR_DATA) when
 * a calibration pixel reaches 1.0. Writes the new tau to *tau_out when
 * not NULL. */
uad_status uad_predict_calibrate(uad_model *m, const uad_image *normals,
                                 size_t n, float *tau_out);

/* ------------------------------------------------------------------ */
/* The main job (uniadc run)                                           */
/* ------------------------------------------------------------------ */

/* Methods a run evaluates (bits). */
#define UAD_METHOD_UNIFIED 1u /* the multi-task discriminator          */
#define UAD_METHOD_KNN 2u     /* training-free nearest-neighbour baseline */

typedef struct uad_run_params {
    const char *data_dir;    /* dataset in MVTec AD layout              */
    const char *priors_path; /* anomaly priors (YAML)                   */
    const char *out_dir;     /* report and figures go here              */
    uad_protocol protocol;   /* zero- or few-shot, Kn, Ka (SPEC 2)      */
    unsigned methods;        /* UAD_METHOD_* bits, default both         */
    uint64_t seed;           /* every random choice flows from it       */
    uad_synth_params synth;
    uad_model_params model;
    uad_train_params train;
    uad_image_params image;
    int raw;                 /* also write maps as `uniadc eval` reads  */
    int n_figure;            /* test images per category in the figure  */
    int calibrate;           /* unified model: tau by uad_predict_calibrate
                                on the normal support images instead of
                                the fixed 0.5                           */
    const char *text;        /* "clip:DIR" or NULL: frozen category
                                embeddings from that text encoder (the
                                model's width becomes its projection
                                width). With a ViT model.backbone, the
                                kNN baseline runs on the ViT's last-block
                                patch tokens (AnomalyDINO)              */
} uad_run_params;

uad_run_params uad_run_default_params(void);

/* Pick the support set, synthesize, train, predict the evaluated test
 * images, evaluate, and write out_dir/report.md, report.json,
 * metrics_<method>.json (byte-identical for the same seed and inputs)
 * and figures. Every file is written atomically; an interrupted run can
 * simply be started again. */
uad_status uad_run(const uad_run_params *p);

/* ------------------------------------------------------------------ */
/* Text encoders (CLIP)                                                */
/* ------------------------------------------------------------------ */

/*
 * The CLIP text encoder of a Hugging Face `CLIPModel` (or
 * `CLIPTextModelWithProjection`) checkpoint directory: config.json,
 * model.safetensors, vocab.json and merges.txt. Category embeddings are
 * the mean of the projected texts of UAD_CLIP_N_TEMPLATES prompts per
 * name and description, L2-normalised (SPEC section 6).
 *
 *     uad_clip_text *ct = NULL;
 *     if (uad_clip_text_load(&ct, "clip-vit-large-patch14") != UAD_OK) ...
 *     float *g = malloc(uad_clip_text_embed_dim(ct) * sizeof *g);
 *     uad_clip_category_embedding(g, ct, &priors->categories[0]);
 *     uad_clip_text_free(ct);
 *
 * A uad_clip_text is not safe to use from two threads at once.
 */

#define UAD_CLIP_CONTEXT 77  /* tokens per text, start and end included */

typedef struct uad_clip_tokenizer uad_clip_tokenizer;

/* Read dir/vocab.json and dir/merges.txt (or the two files named). A
 * bad file fails with UAD_ERR_FORMAT naming it and the problem; the
 * vocabulary must hold "<|startoftext|>" and "<|endoftext|>". Free with
 * uad_clip_tokenizer_free. */
uad_status uad_clip_tokenizer_load(uad_clip_tokenizer **out,
                                   const char *dir);
uad_status uad_clip_tokenizer_load_files(uad_clip_tokenizer **out,
                                         const char *vocab_path,
                                         const char *merges_path);
/* openai/CLIP's own vocabulary file (bpe_simple_vocab_16e6.txt.gz, gzip
 * or plain text), which dino.txt uses: the merges of a merges.txt, the
 * vocabulary built from them as openai's SimpleTokenizer builds it (256
 * byte symbols, the same with "</w>", one entry per merge, then
 * "<|startoftext|>" and "<|endoftext|>"). Such a tokenizer keeps runs
 * of CJK ideographs together and pads with id 0, as openai's does.
 * Files over 64 MiB once decompressed are refused. */
uad_status uad_clip_tokenizer_load_bpe(uad_clip_tokenizer **out,
                                       const char *path);
void uad_clip_tokenizer_free(uad_clip_tokenizer *tok);

/* BPE ids of UTF-8 text, without start and end tokens, as Hugging Face's
 * CLIPTokenizer gives them without the ftfy package: control characters
 * dropped, whitespace collapsed, CJK ideographs split, NFC, lower case;
 * then the reference's pre-tokenizer and byte-level BPE; unknown symbols
 * get the end token's id. *ids (malloc'd, caller frees) holds *n ids.
 * Fails on invalid UTF-8 (UAD_ERR_DATA) or text over 16 KiB
 * (UAD_ERR_LIMIT). */
uad_status uad_clip_tokenize(int32_t **ids, size_t *n,
                             const uad_clip_tokenizer *tok,
                             const char *text);
/* Model input of ctx ids (ctx >= 2, usually UAD_CLIP_CONTEXT): start
 * token, at most ctx - 2 text ids (longer texts are cut, the end token is
 * kept), end token, then the pad id (that of "<|endoftext|>", as
 * Hugging Face pads; openai/CLIP pads with 0, which changes nothing up to
 * the end token under the causal mask). *n_used = ids before the
 * padding. Fails as uad_clip_tokenize does. */
uad_status uad_clip_encode(int32_t *ids, int *n_used,
                           const uad_clip_tokenizer *tok, const char *text,
                           int ctx);
/* Id of a vocabulary entry (byte-encoded, e.g. "photo</w>"), or -1. */
int32_t uad_clip_token_id(const uad_clip_tokenizer *tok, const char *token);
/* Largest id + 1. */
int32_t uad_clip_vocab_size(const uad_clip_tokenizer *tok);
int32_t uad_clip_start_id(const uad_clip_tokenizer *tok);
int32_t uad_clip_end_id(const uad_clip_tokenizer *tok);
int32_t uad_clip_pad_id(const uad_clip_tokenizer *tok);

typedef struct uad_clip_text uad_clip_text;

/* Load the text tower from a checkpoint directory: config.json (the
 * text_config of a CLIPModel, or a CLIPTextConfig at the top level, with
 * projection_dim; hidden_act quick_gelu or gelu), model.safetensors with
 * the Hugging Face keys text_model.* and text_projection.weight (F32,
 * F16 or BF16; a full CLIPModel file's vision_model.*,
 * visual_projection.* and logit_scale are skipped), and the tokenizer
 * files. A missing, unexpected or mis-shaped tensor fails with
 * UAD_ERR_FORMAT naming each one. Sharded checkpoints
 * (model.safetensors.index.json) are not read. Free with
 * uad_clip_text_free. */
uad_status uad_clip_text_load(uad_clip_text **out, const char *dir);
/* Load DINOv3's dino.txt text encoder from a directory holding
 * model.safetensors under the keys of the released checkpoint
 * (text_model.backbone.*, text_model.head.linear_projection.weight; the
 * vision head visual_model.* and logit_scale are skipped), openai's
 * bpe_simple_vocab_16e6.txt.gz (or .txt), and optionally config.json
 * with the keys of DINOv3's text_backbone.yaml (dim, num_heads,
 * num_layers, ffn_ratio, context_length, vocab_size, is_causal) plus
 * embed_dim; without it the released model's settings are used (24
 * blocks, width 1280, 20 heads, projection 2048). The tower is CLIP's
 * with a fused qkv projection without bias and exact GELU, pooled at the
 * largest id (the end token); the same calls below run it. */
uad_status uad_dinotxt_text_load(uad_clip_text **out, const char *dir);
enum { UAD_TEXT_CLIP = 0, UAD_TEXT_DINOTXT = 1 };
/* "clip:DIR" or "dinotxt:DIR" (DIR non-empty): *kind (UAD_TEXT_*) and
 * *dir pointing into spec (either may be NULL); UAD_ERR_USAGE else. */
uad_status uad_text_parse_spec(int *kind, const char **dir,
                               const char *spec);
/* uad_clip_text_load or uad_dinotxt_text_load by spec. */
uad_status uad_text_load(uad_clip_text **out, const char *spec);
void uad_clip_text_free(uad_clip_text *m);
int uad_clip_text_width(const uad_clip_text *m);     /* hidden_size     */
int uad_clip_text_layers(const uad_clip_text *m);
int uad_clip_text_embed_dim(const uad_clip_text *m); /* projection_dim  */
int uad_clip_text_context(const uad_clip_text *m);   /* positions (77)  */
const uad_clip_tokenizer *uad_clip_text_tokenizer(const uad_clip_text *m);

/* Run T ids (1 <= T <= context) through the tower. Outputs may be NULL:
 * embed (P) = text_projection of the final-layer-normed output at the
 * end token, as CLIPModel.get_text_features (not normalised);
 * hidden ((layers + 1), T, C) = the embeddings and each layer's output,
 * as Hugging Face's hidden_states; last (T, C) = last_hidden_state.
 * Ids outside the vocabulary fail with UAD_ERR_DATA. */
uad_status uad_clip_text_forward(float *embed, float *hidden, float *last,
                                 const uad_clip_text *m, const int32_t *ids,
                                 int T);
/* Tokenize (uad_clip_encode, the model's context) and embed one text:
 * embed (P), not normalised; ids (UAD_CLIP_CONTEXT entries, padded) may
 * be NULL. Only the ids up to the end token run: under the causal mask
 * the padding changes nothing before it. */
uad_status uad_clip_text_encode(float *embed, int32_t *ids,
                                const uad_clip_text *m, const char *text);
/* The same for n texts in one pass (each weight is read once for all):
 * embeds (n, P), ids (n, UAD_CLIP_CONTEXT) or NULL. */
uad_status uad_clip_text_encode_batch(float *embeds, int32_t *ids,
                                      const uad_clip_text *m,
                                      const char *const *texts, int n);

#define UAD_CLIP_N_TEMPLATES 10
#define UAD_CLIP_TEXT_MAX 1000 /* bytes of a category name or description */
/* Prompt template i (0..9) with one "%s", e.g. "a photo of %s"; NULL
 * out of range. */
const char *uad_clip_template(int i);
/* Category embedding g_y (P floats): every template filled with the
 * name (underscores read as spaces) and with each description, each
 * text embedded and L2-normalised, the mean L2-normalised again (CLIP's
 * prompt ensembling). */
uad_status uad_clip_category_embedding(float *out, const uad_clip_text *m,
                                       const char *name,
                                       const char *const *descriptions,
                                       int n_descriptions);

/* Pretrained ViT backbones: DINOv2, DINOv3, CLIP vision (vit.c)       */
/* ------------------------------------------------------------------ */

/* Usage:
 *     uad_vit *v;
 *     if (uad_vit_load_spec(&v, "dinov2:/models/dinov2-base") != UAD_OK)
 *         ... uad_last_error() names the file and the problem ...
 *     uad_vit_info in; uad_vit_get_info(v, &in);
 *     int layers[4] = {3, 6, 9, 12};
 *     float *maps[4];   // each N * hidden * (H / patch) * (W / patch)
 *     uad_vit_features(v, maps, layers, 4, 1, pixels, N, H, W);
 *     uad_vit_free(v);
 * A checkpoint folder holds config.json and model.safetensors with the
 * Hugging Face key names (Dinov2Model, Dinov2WithRegistersModel,
 * CLIPVisionModel or CLIPModel, whose text tower is skipped). F32, F16
 * and BF16 weights load; compute is f32. */
typedef enum uad_vit_kind {
    UAD_VIT_DINOV2 = 1,      /* with or without register tokens     */
    UAD_VIT_DINOV3 = 2,      /* RoPE, registers, layer scale        */
    UAD_VIT_CLIP = 3         /* CLIP vision tower                   */
} uad_vit_kind;

typedef struct uad_vit uad_vit;

typedef struct uad_vit_info {
    uad_vit_kind kind;
    int hidden;              /* C, channels of every feature map     */
    int layers;              /* transformer blocks                   */
    int heads, patch, image_size, registers, mlp_hidden;
    int proj_dim;            /* CLIP visual projection width, or 0   */
    /* The checkpoint's official preprocessing: resize the shorter side
     * to resize_short (bicubic), centre-crop crop x crop (resize_short
     * 0: resize straight to crop x crop), scale to [0,1], subtract mean
     * and divide by std per RGB channel. */
    int resize_short, crop;
    float mean[3], std[3];
} uad_vit_info;

/* Load DIR/config.json and DIR/model.safetensors. Fails with UAD_ERR_IO
 * for a missing file, UAD_ERR_FORMAT for a bad config or a missing,
 * extra or mis-shaped tensor (the message names it), UAD_ERR_LIMIT for
 * absurd sizes. Free with uad_vit_free. */
uad_status uad_vit_load(uad_vit **out, uad_vit_kind kind, const char *dir);
/* spec = "dinov2:DIR", "dinov3:DIR" or "clip:DIR" (else
 * UAD_ERR_USAGE). */
uad_status uad_vit_load_spec(uad_vit **out, const char *spec);
void uad_vit_free(uad_vit *v);
void uad_vit_get_info(const uad_vit *v, uad_vit_info *info);

/* Patch-token maps after the given blocks: layers[i] in 1..L (block
 * numbers; 0 is the embedding output), out[i] (N, C, H/p, W/p) caller
 * memory; with layer_norm the tokens first go through the model's final
 * norm (DINOv2 `layernorm`, DINOv3 `norm`, CLIP `post_layernorm`). pixels (N, 3, H, W)
 * are already normalised; H and W need not be multiples of the patch
 * (the remainder is dropped, as the stride-p convolution does) and may
 * differ from the native size: position embeddings are then resized
 * bicubically as the Hugging Face reference does (DINOv3's rotary
 * embedding takes any grid). Not thread-safe (the
 * compute core's caches are shared). */
uad_status uad_vit_features(const uad_vit *v, float *const *out,
                            const int *layers, int n_layers, int layer_norm,
                            const float *pixels, int N, int H, int W);
/* One vector per image: pooled (N, C) = the first (CLS) token after the
 * final norm, Hugging Face's pooler_output; embeds (N, proj_dim) = CLIP's
 * visual_projection of it (CLIPModel.get_image_features). Either may be
 * NULL; embeds on a checkpoint without visual_projection is
 * UAD_ERR_USAGE. pixels as for uad_vit_features. */
uad_status uad_vit_pooled(const uad_vit *v, float *pooled, float *embeds,
                          const float *pixels, int N, int H, int W);
/* Preprocessing of one RGB or gray image. size 0: the official recipe
 * into out(3, crop, crop) (see uad_vit_info); size > 0: resize to
 * size x size (no crop) into out(3, size, size), then the same
 * normalisation. The resize is PyTorch's antialiased bicubic (PIL's
 * filter) on float pixels. */
uad_status uad_vit_preprocess(const uad_vit *v, float *out,
                              const uad_image *img, int size);

#ifdef __cplusplus
}
#endif
#endif /* UNIADC_H */
