/* eval.c - score predictions against ground truth (SPEC section 2), from
 * memory or from files laid out as MVTec's evaluation script reads them. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

uad_eval_params uad_eval_default_params(void) {
    uad_eval_params p;
    memset(&p, 0, sizeof p);
    p.protocol.setting = UAD_SETTING_ALL;
    p.protocol.kn = 1;
    p.fpr_limit = 0.3;
    p.top_k = 100;
    p.image = uad_image_default_params();
    return p;
}

/* One evaluated image at ground-truth resolution. */
typedef struct {
    float *map;       /* w * h, resized S_d          */
    uint8_t *gt;      /* w * h, 0/1                  */
    uint8_t *cls;     /* w * h predicted ids, or NULL */
    int w, h;
    float score;      /* I_d                         */
    int anomalous;    /* any gt pixel                */
    int true_class;   /* 0..Y, or UAD_CLASS_*        */
    int pred_class;   /* I_c, or -1 without classes  */
    int cat;          /* index into dataset categories, -1 for good */
} eval_item;

static void items_free(eval_item *it, size_t n) {
    for (size_t i = 0; it && i < n; i++) {
        free(it[i].map);
        free(it[i].gt);
        free(it[i].cls);
    }
    free(it);
}

/* Mean of the k largest values (all values when fewer): SPEC section 7. */
static float top_k_mean(const float *v, size_t n, int k) {
    if (n == 0) return NAN;
    size_t kk = (size_t)k < n ? (size_t)k : n;
    /* Small k: keep a sorted buffer of the best kk values. */
    float *best = malloc(kk * sizeof *best);
    if (!best) return NAN;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        float x = v[i];
        if (m == kk && x <= best[m - 1]) continue;
        size_t j = m < kk ? m++ : m - 1;
        while (j > 0 && best[j - 1] < x) {
            best[j] = best[j - 1];
            j--;
        }
        best[j] = x;
    }
    double s = 0;
    for (size_t i = 0; i < m; i++) s += best[i];
    free(best);
    return (float)(s / (double)m);
}

/* Image class: the class with the most pixels (lowest id on ties), 0 when
 * no pixel is anomalous (SPEC section 7). */
static int largest_class(const uint8_t *cls, size_t n, int ncls) {
    uint64_t count[256] = {0};
    for (size_t i = 0; i < n; i++) count[cls[i]]++;
    int best = 0;
    for (int c = 1; c < ncls; c++)
        if (count[c] > 0 && (best == 0 || count[c] > count[best])) best = c;
    return best;
}

static int category_index(const uad_dataset *ds, const char *cat) {
    for (size_t i = 0; i < uad_dataset_n_categories(ds); i++)
        if (!strcmp(uad_dataset_category(ds, i), cat)) return (int)i;
    return -1;
}

/* Ground truth of a sample at its native size: the mask, or zeros of the
 * image's size for a normal image. The image is always decoded so that a
 * mask of the wrong size is caught. */
static uad_status load_gt(eval_item *it, const uad_sample *s,
                          const uad_image_params *ip, uad_warn_group *wg) {
    uad_image img;
    uad_status st = uad_image_load(&img, s->abs_path, ip);
    if (st != UAD_OK) return st;
    int w = img.w, h = img.h;
    uad_image_free(&img);
    size_t n = (size_t)w * (size_t)h;
    if (!s->mask_path) {
        it->gt = uad_calloc(n, 1);
        it->w = w;
        it->h = h;
        return it->gt ? UAD_OK : UAD_ERR_NOMEM;
    }
    uad_mask m;
    int flags = 0;
    st = uad_mask_load_flags(&m, s->mask_path, ip, &flags);
    if (flags) uad_warn_group_add(wg, s->mask_path);
    if (st != UAD_OK) return st;
    if (m.w != w || m.h != h) {
        st = uad_fail(UAD_ERR_DATA,
                      "%s is %dx%d but its mask %s is %dx%d (W x H)",
                      s->abs_path, w, h, s->mask_path, m.w, m.h);
        uad_mask_free(&m);
        return st;
    }
    it->gt = m.data;
    it->w = w;
    it->h = h;
    for (size_t i = 0; i < n && !it->anomalous; i++)
        it->anomalous = it->gt[i] != 0;
    return UAD_OK;
}

/* Resize a prediction onto the item's ground-truth grid. */
static uad_status fit_prediction(eval_item *it, const uad_eval_input *pr,
                                 int ncls, int top_k, const char *name) {
    if (!pr->map || pr->map_w < 1 || pr->map_h < 1)
        return uad_fail(UAD_ERR_DATA, "%s: empty anomaly map", name);
    size_t nmap = (size_t)pr->map_w * (size_t)pr->map_h;
    /* Resizing mixes neighbours: NaN or infinite scores cannot be ranked
     * once blended, so they are refused here, with the pixel named. */
    for (size_t i = 0; i < nmap; i++)
        if (!isfinite(pr->map[i]))
            return uad_fail(UAD_ERR_DATA, "%s: anomaly map value at x=%zu, "
                            "y=%zu is %g; maps must be finite", name,
                            i % (size_t)pr->map_w, i / (size_t)pr->map_w,
                            (double)pr->map[i]);
    if (!isnan(pr->score) && !isfinite(pr->score))
        return uad_fail(UAD_ERR_DATA, "%s: image score is %g", name,
                        pr->score);
    uad_image src = {.w = pr->map_w, .h = pr->map_h, .c = 1,
                     .data = (float *)pr->map};
    uad_image dst;
    uad_status st = uad_image_resize(&dst, &src, it->w, it->h,
                                     UAD_RESIZE_BILINEAR);
    if (st != UAD_OK) return st;
    it->map = dst.data;
    it->score = isnan(pr->score) ? top_k_mean(pr->map, nmap, top_k)
                                 : (float)pr->score;
    it->pred_class = -1;
    if (!pr->class_map) return UAD_OK;
    size_t ncm = (size_t)pr->cls_w * (size_t)pr->cls_h;
    for (size_t i = 0; i < ncm; i++)
        if (pr->class_map[i] >= ncls)
            return uad_fail(UAD_ERR_DATA,
                            "%s: class map holds id %d but there are only "
                            "%d categories", name, pr->class_map[i],
                            ncls - 1);
    it->pred_class = largest_class(pr->class_map, ncm, ncls);
    /* Nearest resize of the ids, on PyTorch's grid. */
    it->cls = uad_malloc((size_t)it->w * (size_t)it->h);
    if (!it->cls) return UAD_ERR_NOMEM;
    /* PyTorch's nearest: floor(dst * (float)(in / out)), in float. */
    float ky = (float)pr->cls_h / (float)it->h;
    float kx = (float)pr->cls_w / (float)it->w;
    for (int y = 0; y < it->h; y++) {
        int sy = (int)floorf((float)y * ky);
        if (sy >= pr->cls_h) sy = pr->cls_h - 1;
        for (int x = 0; x < it->w; x++) {
            int sx = (int)floorf((float)x * kx);
            if (sx >= pr->cls_w) sx = pr->cls_w - 1;
            it->cls[(size_t)y * it->w + x] =
                pr->class_map[(size_t)sy * pr->cls_w + sx];
        }
    }
    return UAD_OK;
}

/* Metrics over the items selected by `use` (NULL = all). */
static uad_status compute_metrics(uad_metrics *m, const eval_item *it,
                                  size_t n, const bool *use,
                                  const uad_eval_params *p) {
    memset(m, 0, sizeof *m);
    m->i_auroc = m->p_auroc = m->aupro = m->acc = m->miou = NAN;
    float *scores = uad_malloc((n ? n : 1) * sizeof *scores);
    uint8_t *labels = uad_malloc(n ? n : 1);
    uad_map_gt *pairs = uad_malloc((n ? n : 1) * sizeof *pairs);
    if (!scores || !labels || !pairs) {
        free(scores);
        free(labels);
        free(pairs);
        return UAD_ERR_NOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (use && !use[i]) continue;
        scores[k] = it[i].score;
        labels[k] = (uint8_t)it[i].anomalous;
        pairs[k] = (uad_map_gt){it[i].map, it[i].gt, it[i].w, it[i].h};
        m->n_pixels += (uint64_t)it[i].w * (uint64_t)it[i].h;
        m->n_anomalous += (size_t)it[i].anomalous;
        k++;
    }
    m->n_images = k;
    m->n_normal = k - m->n_anomalous;
    /* -1 is bad input (a NaN score, say): the message says which. */
    bool bad = uad_auroc(scores, labels, k, &m->i_auroc) < 0 ||
               uad_pixel_auroc(pairs, k, &m->p_auroc) < 0 ||
               uad_aupro(pairs, k, p->fpr_limit, &m->aupro) < 0;
    free(scores);
    free(labels);
    free(pairs);
    return bad ? UAD_ERR_DATA : UAD_OK;
}

/* Image and pixel confusion matrices over classified items (combined
 * excluded, SPEC section 2). */
static void confusions(uint64_t *img, uint64_t *pix, const eval_item *it,
                       size_t n, int ncls) {
    for (size_t i = 0; i < n; i++) {
        const eval_item *e = &it[i];
        if (e->true_class < 0 || !e->cls) continue;
        img[e->true_class * ncls + e->pred_class]++;
        size_t np = (size_t)e->w * (size_t)e->h;
        for (size_t j = 0; j < np; j++) {
            int t = e->gt[j] ? e->true_class : 0;
            pix[t * ncls + e->cls[j]]++;
        }
    }
}

static double class_iou(const uint64_t *pix, int ncls, int c) {
    uint64_t tp = pix[c * ncls + c], fp = 0, fn = 0;
    for (int k = 0; k < ncls; k++) {
        if (k == c) continue;
        fp += pix[k * ncls + c];
        fn += pix[c * ncls + k];
    }
    uint64_t u = tp + fp + fn;
    return u ? (double)tp / (double)u : NAN;
}

/* Accuracy and mIoU overall, and per category acc / IoU. */
static void class_metrics(uad_eval_result *r, const eval_item *it,
                          size_t n, const uad_dataset *ds,
                          const uad_priors *pri) {
    int ncls = r->n_classes;
    uint64_t *pix = calloc((size_t)ncls * ncls, sizeof *pix);
    if (!pix) return;
    confusions(r->image_confusion, pix, it, n, ncls);
    uad_accuracy(r->image_confusion, ncls, &r->overall.acc);
    uad_miou(pix, ncls, &r->overall.miou);
    for (int c = 0; c < ncls; c++)
        for (int k = 0; k < ncls; k++)
            r->overall.n_classified += r->image_confusion[c * ncls + k];
    for (size_t ci = 0; ci < r->n_categories; ci++) {
        int id = uad_priors_find(pri, uad_dataset_category(ds, ci)) + 1;
        if (id < 1) continue; /* combined: detection only */
        uint64_t row = 0;
        for (int k = 0; k < ncls; k++) row += r->image_confusion[id * ncls + k];
        uad_metrics *m = &r->per_category[ci];
        m->n_classified = row;
        m->acc = row ? (double)r->image_confusion[id * ncls + id] / row : NAN;
        m->miou = class_iou(pix, ncls, id);
    }
    free(pix);
}

static uad_eval_result *result_new(const uad_dataset *ds,
                                   const uad_priors *pri,
                                   const uad_eval_params *p) {
    uad_eval_result *r = uad_calloc(1, sizeof *r);
    if (!r) return NULL;
    r->params = *p;
    r->n_categories = uad_dataset_n_categories(ds);
    r->categories = uad_calloc(r->n_categories, sizeof *r->categories);
    r->per_category = uad_calloc(r->n_categories, sizeof *r->per_category);
    r->n_classes = (pri ? pri->n_categories : 0) + 1;
    r->image_confusion = uad_calloc((size_t)r->n_classes * r->n_classes,
                                    sizeof *r->image_confusion);
    bool ok = r->categories && r->per_category && r->image_confusion;
    for (size_t i = 0; ok && i < r->n_categories; i++)
        ok = (r->categories[i] = uad_strdup(uad_dataset_category(ds, i)));
    if (!ok) {
        uad_eval_free(r);
        return NULL;
    }
    return r;
}

/* Say why an overall metric is undefined (SPEC: null, with a warning). */
static void warn_undefined(const uad_metrics *m) {
    if (isnan(m->i_auroc))
        UAD_WARN("I-AUROC is undefined (reported as null): the %zu evaluated "
                 "images are all %s", m->n_images,
                 m->n_anomalous ? "anomalous" : "normal");
    if (isnan(m->p_auroc))
        UAD_WARN("P-AUROC and AUPRO are undefined (reported as null): the "
                 "evaluated pixels are all of one kind (no anomalous pixel, "
                 "or no normal pixel)");
}

static uad_status all_metrics(uad_eval_result *r, const eval_item *it,
                              size_t n, const uad_dataset *ds,
                              const uad_priors *pri) {
    uad_status st = compute_metrics(&r->overall, it, n, NULL, &r->params);
    if (st == UAD_OK) warn_undefined(&r->overall);
    bool *use = uad_malloc(n ? n : 1);
    if (!use) return UAD_ERR_NOMEM;
    for (size_t c = 0; st == UAD_OK && c < r->n_categories; c++) {
        for (size_t i = 0; i < n; i++)
            use[i] = it[i].cat < 0 || it[i].cat == (int)c;
        st = compute_metrics(&r->per_category[c], it, n, use, &r->params);
        uad_progress("metrics", c + 1, r->n_categories);
    }
    free(use);
    if (st == UAD_OK && r->has_classes) class_metrics(r, it, n, ds, pri);
    return st;
}

/* Ground truth and prediction of samples[i] into it[i]. */
static uad_status eval_one(eval_item *it, uad_eval_result *r,
                           const uad_dataset *ds, const uad_priors *pri,
                           const uad_sample *s, const uad_eval_input *pr,
                           uad_warn_group *wg) {
    it->true_class = pri ? s->class_id : UAD_CLASS_UNKNOWN;
    it->cat = strcmp(s->category, "good") ? category_index(ds, s->category)
                                          : -1;
    uad_status st = load_gt(it, s, &r->params.image, wg);
    if (st == UAD_OK)
        st = fit_prediction(it, pr, r->n_classes, r->params.top_k,
                            s->rel_path);
    if (st == UAD_OK && pr->class_map) r->has_classes = 1;
    if (st == UAD_OK && pr->class_map && !pri)
        st = uad_fail(UAD_ERR_USAGE, "class maps need the priors (class ids "
                                     "follow the priors' order)");
    return st;
}

/* Metrics once every item is in; frees the items; *out on success. */
static uad_status finish(uad_eval_result **out, uad_eval_result *r,
                         eval_item *it, size_t n, const uad_dataset *ds,
                         const uad_priors *pri, uad_status st,
                         uad_warn_group *wg) {
    if (r->params.quiet_masks) memset(wg, 0, sizeof *wg);
    uad_warn_group_flush(wg, "masks have more than two distinct values or "
                         "are JPEGs; every non-zero pixel counts as "
                         "anomalous");
    if (st == UAD_OK) st = all_metrics(r, it, n, ds, pri);
    items_free(it, n);
    if (st != UAD_OK) {
        uad_eval_free(r);
        return st;
    }
    *out = r;
    return UAD_OK;
}

uad_status uad_eval_predictions(uad_eval_result **out,
                                const uad_dataset *ds,
                                const uad_priors *priors,
                                const uad_sample *const *samples,
                                const uad_eval_input *preds, size_t n,
                                const uad_eval_params *p) {
    *out = NULL;
    uad_eval_result *r = result_new(ds, priors, p);
    eval_item *it = uad_calloc(n ? n : 1, sizeof *it);
    if (!r || !it) {
        uad_eval_free(r);
        free(it);
        return UAD_ERR_NOMEM;
    }
    uad_status st = UAD_OK;
    uad_warn_group wg = {0};
    for (size_t i = 0; st == UAD_OK && i < n; i++) {
        st = eval_one(&it[i], r, ds, priors, samples[i], &preds[i], &wg);
        uad_progress("evaluating", i + 1, n);
    }
    return finish(out, r, it, n, ds, priors, st, &wg);
}

void uad_eval_free(uad_eval_result *r) {
    if (!r) return;
    for (size_t i = 0; r->categories && i < r->n_categories; i++)
        free(r->categories[i]);
    free(r->categories);
    free(r->per_category);
    free(r->image_confusion);
    free(r);
}

/* ---- files --------------------------------------------------------- */

typedef struct {
    char **paths;
    double *scores;
    size_t n;
} score_table;

static void scores_free(score_table *t) {
    for (size_t i = 0; i < t->n; i++) free(t->paths[i]);
    free(t->paths);
    free(t->scores);
    memset(t, 0, sizeof *t);
}

/* Parse "path,score" lines (an optional "path,score" header; CRLF ok). */
static uad_status scores_parse(score_table *t, char *buf, const char *file) {
    size_t cap = 0, line = 0;
    for (char *s = buf, *next; s && *s; s = next) {
        next = strchr(s, '\n');
        if (next) *next++ = 0;
        line++;
        size_t len = strlen(s);
        if (len && s[len - 1] == '\r') s[--len] = 0;
        if (len == 0 || (line == 1 && !strncmp(s, "path,", 5))) continue;
        if (line == 1 && !strncmp(s, "\xef\xbb\xbf", 3)) s += 3; /* BOM */
        if (line == 1 && !strncmp(s, "path,", 5)) continue;
        char *comma = strrchr(s, ',');
        char *end = NULL;
        double v = comma ? strtod(comma + 1, &end) : 0;
        if (!comma || end == comma + 1 || *end || isnan(v))
            return uad_fail(UAD_ERR_FORMAT,
                            "%s:%zu: expected 'path,score', got '%s'", file,
                            line, s);
        *comma = 0;
        size_t plen = strlen(s);
        if (plen >= 2 && s[0] == '"' && s[plen - 1] == '"') { /* "path" */
            s[plen - 1] = 0;
            s++;
        }
        for (size_t k = 0; k < t->n; k++)
            if (!strcmp(t->paths[k], s))
                return uad_fail(UAD_ERR_FORMAT, "%s:%zu: a second score for "
                                "%s", file, line, s);
        if (t->n == cap) {
            cap = cap ? 2 * cap : 256;
            char **np = realloc(t->paths, cap * sizeof *np);
            if (np) t->paths = np;
            double *ns = realloc(t->scores, cap * sizeof *ns);
            if (ns) t->scores = ns;
            if (!np || !ns) return uad_fail(UAD_ERR_NOMEM, "out of memory");
        }
        if (!(t->paths[t->n] = uad_strdup(s))) return UAD_ERR_NOMEM;
        t->scores[t->n++] = v;
    }
    return UAD_OK;
}

static uad_status scores_load(score_table *t, const char *maps_dir) {
    memset(t, 0, sizeof *t);
    char *path = uad_path_join(maps_dir, "scores.csv");
    if (!path) return UAD_ERR_NOMEM;
    FILE *fp = fopen(path, "rb");
    if (!fp) { /* optional file */
        free(path);
        return UAD_OK;
    }
    fclose(fp);
    char *buf;
    size_t len;
    uad_status st = uad_read_file(path, &buf, &len);
    if (st == UAD_OK) st = scores_parse(t, buf, path);
    if (st == UAD_OK && t->n == 0)
        st = uad_fail(UAD_ERR_FORMAT, "%s: no scores", path);
    if (st != UAD_OK) scores_free(t);
    free(buf);
    free(path);
    return st;
}

static double scores_find(const score_table *t, const char *rel) {
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->paths[i], rel)) return t->scores[i];
    return NAN;
}

/* "<dir>/<category>/<stem><ext>" */
static char *result_path(const char *dir, const uad_sample *s,
                         const char *ext) {
    size_t n = strlen(dir) + strlen(s->category) + strlen(s->stem) +
               strlen(ext) + 3;
    char *p = uad_malloc(n);
    if (p) snprintf(p, n, "%s/%s/%s%s", dir, s->category, s->stem, ext);
    return p;
}

static bool file_exists(const char *p) {
    FILE *fp = fopen(p, "rb");
    if (fp) fclose(fp);
    return fp != NULL;
}

/* Every expected file exists and has a score when scores.csv is given. */
static uad_status check_files(const uad_support *sup, const char *maps,
                              const char *cls, const score_table *t) {
    uad_problems pl = {0};
    for (size_t i = 0; i < sup->n_eval; i++) {
        const uad_sample *s = sup->eval[i];
        char *m = result_path(maps, s, ".tiff");
        char *c = cls ? result_path(cls, s, ".png") : NULL;
        if (m && !file_exists(m))
            uad_problems_add(&pl, uad_fail(UAD_ERR_IO, "%s: missing anomaly "
                                           "map for %s", m, s->rel_path));
        if (c && !file_exists(c))
            uad_problems_add(&pl, uad_fail(UAD_ERR_IO, "%s: missing class "
                                           "map for %s", c, s->rel_path));
        if (t->n && isnan(scores_find(t, s->rel_path)))
            uad_problems_add(&pl, uad_fail(UAD_ERR_DATA, "%s/scores.csv: no "
                                           "score for %s", maps,
                                           s->rel_path));
        free(m);
        free(c);
    }
    return uad_problems_finish(&pl, "problem(s) with the predictions");
}

/* Class ids from an 8- or 16-bit single-channel image. */
static uad_status class_ids(uint8_t **out, const uad_image *img,
                            const char *path) {
    *out = NULL;
    if (img->c != 1 || img->bit_depth > 16)
        return uad_fail(UAD_ERR_FORMAT, "%s: class map must be a one-channel "
                        "8-bit PNG of class ids", path);
    double scale = (double)((1u << img->bit_depth) - 1);
    size_t n = (size_t)img->w * (size_t)img->h;
    uint8_t *ids = uad_malloc(n);
    if (!ids) return UAD_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        long v = lround(img->data[i] * scale);
        ids[i] = (uint8_t)(v > 255 ? 255 : v);
    }
    *out = ids;
    return UAD_OK;
}

/* Load one sample's result files into an eval item. */
static uad_status eval_files(eval_item *it, uad_eval_result *r,
                             const uad_dataset *ds, const uad_priors *pri,
                             const uad_sample *s, const char *maps,
                             const char *cls, const score_table *t,
                             uad_warn_group *wg) {
    char *mp = result_path(maps, s, ".tiff");
    char *cp = cls ? result_path(cls, s, ".png") : NULL;
    uad_image map = {0}, cimg = {0};
    uint8_t *ids = NULL;
    uad_status st = mp ? uad_image_load(&map, mp, &r->params.image)
                       : UAD_ERR_NOMEM;
    if (st == UAD_OK && map.c != 1)
        st = uad_fail(UAD_ERR_FORMAT, "%s: anomaly map must have one "
                      "channel (has %d)", mp, map.c);
    if (st == UAD_OK && cp) st = uad_image_load(&cimg, cp, &r->params.image);
    if (st == UAD_OK && cp) st = class_ids(&ids, &cimg, cp);
    if (st == UAD_OK) {
        uad_eval_input pr = {.map = map.data, .map_w = map.w,
                             .map_h = map.h, .score = scores_find(t,
                             s->rel_path), .class_map = ids,
                             .cls_w = cimg.w, .cls_h = cimg.h};
        st = eval_one(it, r, ds, pri, s, &pr, wg);
    }
    uad_image_free(&map);
    uad_image_free(&cimg);
    free(ids);
    free(mp);
    free(cp);
    return st;
}

uad_status uad_eval_dirs(uad_eval_result **out, const uad_dataset *ds,
                         const uad_priors *priors, const char *maps_dir,
                         const char *class_maps_dir,
                         const uad_eval_params *p) {
    *out = NULL;
    if (class_maps_dir && !priors)
        return uad_fail(UAD_ERR_USAGE, "class maps need the priors (class "
                                       "ids follow the priors' order)");
    uad_support sup;
    score_table t;
    uad_status st = uad_dataset_support(&sup, ds, &p->protocol);
    if (st != UAD_OK) return st;
    if ((st = scores_load(&t, maps_dir)) == UAD_OK)
        st = check_files(&sup, maps_dir, class_maps_dir, &t);
    uad_eval_result *r = st == UAD_OK ? result_new(ds, priors, p) : NULL;
    eval_item *it = r ? uad_calloc(sup.n_eval ? sup.n_eval : 1, sizeof *it)
                      : NULL;
    if (st == UAD_OK && !it) st = UAD_ERR_NOMEM;
    uad_problems pl = {0};
    uad_warn_group wg = {0};
    for (size_t i = 0; st == UAD_OK && i < sup.n_eval; i++) {
        uad_status e = eval_files(&it[i], r, ds, priors, sup.eval[i],
                                  maps_dir, class_maps_dir, &t, &wg);
        if (e != UAD_OK) uad_problems_add(&pl, e);
        uad_progress("loading maps", i + 1, sup.n_eval);
    }
    if (st == UAD_OK) st = uad_problems_finish(&pl, "file(s) failed");
    size_t n = sup.n_eval;
    uad_support_free(&sup);
    scores_free(&t);
    if (!r) return st;
    return finish(out, r, it, n, ds, priors, st, &wg);
}

/* ---- reports ------------------------------------------------------- */

static void json_num(cJSON *o, const char *k, double v) {
    if (isnan(v)) cJSON_AddNullToObject(o, k);
    else cJSON_AddNumberToObject(o, k, v);
}

static cJSON *json_metrics(const uad_metrics *m) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    json_num(o, "i_auroc", m->i_auroc);
    json_num(o, "p_auroc", m->p_auroc);
    json_num(o, "aupro", m->aupro);
    json_num(o, "acc", m->acc);
    json_num(o, "miou", m->miou);
    return o;
}

static cJSON *json_counts(const uad_metrics *m) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "images", (double)m->n_images);
    cJSON_AddNumberToObject(o, "normal", (double)m->n_normal);
    cJSON_AddNumberToObject(o, "anomalous", (double)m->n_anomalous);
    cJSON_AddNumberToObject(o, "classified", (double)m->n_classified);
    cJSON_AddNumberToObject(o, "pixels", (double)m->n_pixels);
    return o;
}

static const char *setting_name(uad_setting s) {
    return s == UAD_SETTING_ZERO ? "zero" : s == UAD_SETTING_FEW ? "few"
                                                                  : "all";
}

static cJSON *json_report(const uad_eval_result *r) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "metrics", json_metrics(&r->overall));
    cJSON_AddItemToObject(root, "counts", json_counts(&r->overall));
    cJSON *pc = cJSON_AddObjectToObject(root, "per_category");
    for (size_t i = 0; i < r->n_categories; i++) {
        cJSON *c = json_metrics(&r->per_category[i]);
        cJSON_AddItemToObject(c, "counts", json_counts(&r->per_category[i]));
        cJSON_AddItemToObject(pc, r->categories[i], c);
    }
    cJSON *pr = cJSON_AddObjectToObject(root, "protocol");
    cJSON_AddStringToObject(pr, "setting",
                            setting_name(r->params.protocol.setting));
    cJSON_AddNumberToObject(pr, "fpr_limit", r->params.fpr_limit);
    cJSON_AddNumberToObject(pr, "connectivity", 8);
    cJSON_AddNumberToObject(pr, "top_k", r->params.top_k);
    if (r->has_classes) {
        cJSON *cm = cJSON_AddArrayToObject(root, "image_confusion");
        for (int t = 0; t < r->n_classes; t++) {
            cJSON *row = cJSON_CreateArray();
            for (int p = 0; p < r->n_classes; p++)
                cJSON_AddItemToArray(row, cJSON_CreateNumber((double)
                    r->image_confusion[t * r->n_classes + p]));
            cJSON_AddItemToArray(cm, row);
        }
    }
    return root;
}

uad_status uad_json_load_object(void **json, const char *path,
                                const char *what) {
    *json = NULL;
    char *buf = NULL;
    size_t len = 0;
    uad_status st = uad_read_file(path, &buf, &len);
    if (st != UAD_OK) return st;
    cJSON *root = cJSON_ParseWithLength(buf, len);
    free(buf);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return uad_fail(UAD_ERR_FORMAT, "%s: %s", path, what);
    }
    *json = root;
    return UAD_OK;
}

uad_status uad_json_save(const char *path, void *json) {
    char *text = json ? cJSON_Print((cJSON *)json) : NULL;
    cJSON_Delete((cJSON *)json);
    if (!text) return uad_fail(UAD_ERR_NOMEM, "out of memory (JSON)");
    uad_afile f;
    uad_status st = uad_afile_open(&f, path);
    if (st == UAD_OK) {
        fputs(text, f.fp);
        fputc('\n', f.fp);
        st = uad_afile_commit(&f);
    }
    cJSON_free(text);
    return st;
}

uad_status uad_eval_write_json(const uad_eval_result *r, const char *path) {
    return uad_json_save(path, json_report(r));
}

static void md_cell(FILE *fp, double v) {
    if (isnan(v)) fprintf(fp, " - |");
    else fprintf(fp, " %.2f |", 100.0 * v);
}

static void md_row(FILE *fp, const char *name, const uad_metrics *m) {
    fprintf(fp, "| %s |", name);
    md_cell(fp, m->i_auroc);
    md_cell(fp, m->p_auroc);
    md_cell(fp, m->aupro);
    md_cell(fp, m->acc);
    md_cell(fp, m->miou);
    fprintf(fp, " %zu |\n", m->n_images);
}

void uad_eval_print_markdown(const uad_eval_result *r, FILE *fp) {
    fprintf(fp, "| category | I-AUROC | P-AUROC | PRO | Acc | mIoU | "
                "images |\n| --- | --- | --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; i < r->n_categories; i++)
        md_row(fp, r->categories[i], &r->per_category[i]);
    md_row(fp, "**all**", &r->overall);
}
