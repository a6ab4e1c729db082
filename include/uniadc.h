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

/* ROC AUC of scores against binary labels (non-zero = positive); ties
 * count half; depends only on the ranking. Returns 1 and sets *out, or
 * 0 when undefined (only one class present; *out set to NaN). */
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
 * divided by fpr_limit (0.3 in the SPEC). Regions are 8-connected
 * components of each gt. Exact: every distinct score is a threshold, and
 * the curve is interpolated linearly at fpr_limit. Returns 0 (NaN) when
 * there is no anomalous or no normal pixel. */
int uad_aupro(const uad_map_gt *items, size_t n, double fpr_limit,
              double *out);

/* Confusion counts: conf[t * ncls + p] for true t, predicted p. */
/* Accuracy = trace / total; 0 (NaN) when total is 0. */
int uad_accuracy(const uint64_t *conf, int ncls, double *out);
/* Mean over classes of TP / (TP + FP + FN), classes whose union is empty
 * are left out of the mean (a warning names them); 0 (NaN) if all are. */
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

/* ------------------------------------------------------------------ */
/* Tensors and the multi-task discriminator (SPEC sections 6-8)        */
/* ------------------------------------------------------------------ */

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
} uad_run_params;

uad_run_params uad_run_default_params(void);

/* Pick the support set, synthesize, train, predict the evaluated test
 * images, evaluate, and write out_dir/report.md, report.json,
 * metrics_<method>.json (byte-identical for the same seed and inputs)
 * and figures. Every file is written atomically; an interrupted run can
 * simply be started again. */
uad_status uad_run(const uad_run_params *p);

#ifdef __cplusplus
}
#endif
#endif /* UNIADC_H */
