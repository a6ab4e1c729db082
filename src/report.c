/* report.c - what a run writes: report.md, report.json, metrics_<method>
 * .json, raw maps on request, and figures (SPEC section 9's table beside
 * the published numbers, confusion matrix, timings, parameters). */
#include "figure.h"
#include "internal.h"
#include "run.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

/* SPEC section 9: UniADC (DINO) on MTD, in %. */
static const struct {
    uad_setting setting;
    int kn, ka;
    double v[5]; /* I-AUROC, P-AUROC, PRO, Acc, mIoU */
} k_published[] = {
    {UAD_SETTING_ZERO, 1, 0, {90.09, 82.65, 79.98, 59.22, 29.58}},
    {UAD_SETTING_ZERO, 2, 0, {92.30, 83.52, 81.22, 64.15, 31.85}},
    {UAD_SETTING_ZERO, 4, 0, {93.04, 85.82, 81.43, 66.03, 33.75}},
    {UAD_SETTING_FEW, 1, 1, {91.41, 82.88, 80.07, 62.47, 32.21}},
    {UAD_SETTING_FEW, 2, 1, {92.57, 86.79, 83.17, 65.10, 34.33}},
    {UAD_SETTING_FEW, 2, 2, {93.85, 89.31, 85.78, 70.87, 35.46}},
    {UAD_SETTING_FEW, 4, 1, {93.32, 87.12, 83.83, 66.59, 34.87}},
};

/* Published row for this object and setting, or NULL. */
static const double *published(const uad_priors *pri, const uad_protocol *p) {
    if (!pri->object || strcmp(pri->object, "magnetic tile") != 0)
        return NULL;
    for (size_t i = 0; i < sizeof k_published / sizeof *k_published; i++)
        if (k_published[i].setting == p->setting &&
            k_published[i].kn == p->kn && k_published[i].ka == p->ka)
            return k_published[i].v;
    return NULL;
}

static void metric_values(double v[5], const uad_metrics *m) {
    v[0] = m->i_auroc;
    v[1] = m->p_auroc;
    v[2] = m->aupro;
    v[3] = m->acc;
    v[4] = m->miou;
}

static void md_row(FILE *fp, const char *name, const double v[5],
                   double scale) {
    fprintf(fp, "| %s |", name);
    for (int k = 0; k < 5; k++) {
        if (isnan(v[k])) fprintf(fp, " - |");
        else fprintf(fp, " %.2f |", scale * v[k]);
    }
    fprintf(fp, "\n");
}

static const char *setting_text(const uad_protocol *p, char *buf, size_t n) {
    if (p->setting == UAD_SETTING_FEW)
        snprintf(buf, n, "few-shot Kn=%d Ka=%d", p->kn, p->ka);
    else if (p->kn == UAD_KN_ALL)
        snprintf(buf, n, "zero-shot Kn=all");
    else
        snprintf(buf, n, "zero-shot Kn=%d", p->kn);
    return buf;
}

/* The summary table: ours beside the published numbers. */
void run_print_summary(FILE *fp, const uad_priors *pri,
                       const uad_protocol *proto, run_preds *const *preds,
                       int n) {
    char set[64];
    fprintf(fp, "| %s | I-AUROC | P-AUROC | PRO | Acc | mIoU |\n"
                "| --- | --- | --- | --- | --- | --- |\n",
            setting_text(proto, set, sizeof set));
    const double *pub = published(pri, proto);
    if (pub) md_row(fp, "UniADC (DINO), published", pub, 1.0);
    for (int i = 0; i < n; i++) {
        double v[5];
        metric_values(v, &preds[i]->eval->overall);
        md_row(fp, !strcmp(preds[i]->method, "unified")
                       ? "uniadc unified discriminator"
                       : "uniadc kNN baseline", v, 100.0);
    }
}

static void md_confusion(FILE *fp, const uad_eval_result *r,
                         const uad_priors *pri) {
    fprintf(fp, "| true \\ predicted | normal |");
    for (int c = 0; c < pri->n_categories; c++)
        fprintf(fp, " %s |", pri->categories[c].name);
    fprintf(fp, "\n| --- |");
    for (int c = 0; c <= pri->n_categories; c++) fprintf(fp, " --- |");
    fprintf(fp, "\n");
    for (int t = 0; t < r->n_classes; t++) {
        fprintf(fp, "| %s |", t ? pri->categories[t - 1].name : "normal");
        for (int p = 0; p < r->n_classes; p++)
            fprintf(fp, " %llu |", (unsigned long long)
                    r->image_confusion[t * r->n_classes + p]);
        fprintf(fp, "\n");
    }
}

static void md_params(FILE *fp, const uad_run_params *p, float tau) {
    fprintf(fp, "| parameter | value |\n| --- | --- |\n");
    fprintf(fp, "| uniadc version | %s |\n", uad_version());
    fprintf(fp, "| data | %s |\n| priors | %s |\n", p->data_dir,
            p->priors_path);
    fprintf(fp, "| seed | %llu |\n", (unsigned long long)p->seed);
    fprintf(fp, "| synthesis | %d per category, %d candidates each |\n",
            p->synth.per_category, p->synth.n_candidates);
    fprintf(fp, "| model | backbone %s, width %d, input %d x %d, tau %.4g%s |\n",
            uad_backbone_name(p->model.backbone), p->model.width,
            p->model.input_size, p->model.input_size, tau,
            p->calibrate ? " (calibrated on the normal support)" : "");
    if (p->model.backbone_dir)
        fprintf(fp, "| backbone checkpoint | %s (frozen) |\n",
                p->model.backbone_dir);
    if (p->text)
        fprintf(fp, "| category embeddings | %s (frozen) |\n", p->text);
    fprintf(fp, "| training | %d %s x %d %s, batch %d, AdamW lr %g "
                "(poly 0.9), betas %g/%g, wd %g, clip %g, CE weight %g%s |\n",
            p->train.epochs, p->train.epochs == 1 ? "epoch" : "epochs",
            p->train.steps_per_epoch,
            p->train.steps_per_epoch == 1 ? "step" : "steps", p->train.batch,
            p->train.lr, p->train.beta1, p->train.beta2,
            p->train.weight_decay, p->train.clip, p->train.ce_weight,
            p->train.augment ? ", flip/rot90 augmentation" : "");
    fprintf(fp, "| compute | %s |\n",
            p->train.bf16 ? "bf16 inputs, f32 accumulation, in every matmul "
                            "and convolution of the job (backbone, training, "
                            "prediction, kNN)"
                          : "f32");
}

static void md_times(FILE *fp, const run_stats *st, run_preds *const *preds,
                     int n) {
    fprintf(fp, "| stage | seconds |\n| --- | --- |\n");
    fprintf(fp, "| loading and checking the data | %.1f |\n", st->t_load);
    fprintf(fp, "| synthesis (%zu samples) | %.1f |\n", st->n_synth,
            st->t_synth);
    for (int i = 0; i < n; i++) {
        const run_preds *r = preds[i];
        double ips = r->seconds_predict > 0 ? r->n / r->seconds_predict : 0;
        fprintf(fp, "| %s: %s | %.1f |\n", r->method,
                strcmp(r->method, "knn") ? "training" : "memory bank",
                r->seconds_train);
        fprintf(fp, "| %s: prediction (%zu images, %.1f images/s) | %.1f |\n",
                r->method, r->n, ips, r->seconds_predict);
        fprintf(fp, "| %s: evaluation | %.1f |\n", r->method,
                r->seconds_eval);
    }
    fprintf(fp, "| total | %.1f |\n\npeak memory: %.0f MB\n", st->t_total,
            st->peak_mb);
}

/* Say plainly where the unified discriminator does and does not beat
 * the kNN baseline (the targets: Acc and mIoU always, I-AUROC in
 * most settings). */
static void md_versus(FILE *fp, const run_preds *u, const run_preds *k) {
    static const char *names[5] = {"I-AUROC", "P-AUROC", "PRO", "Acc",
                                   "mIoU"};
    double a[5], b[5];
    metric_values(a, &u->eval->overall);
    metric_values(b, &k->eval->overall);
    const char *sep = "";
    fprintf(fp, "\nThe unified discriminator beats the kNN baseline on:");
    for (int i = 0; i < 5; i++)
        if (a[i] > b[i]) fprintf(fp, "%s %s", sep, names[i]), sep = ",";
    if (!*sep) fprintf(fp, " none");
    sep = "";
    fprintf(fp, "; it does not beat it on:");
    for (int i = 0; i < 5; i++)
        if (!(a[i] > b[i])) fprintf(fp, "%s %s", sep, names[i]), sep = ",";
    if (!*sep) fprintf(fp, " none");
    fprintf(fp, ".\n");
}

static uad_status write_md(const char *path, const uad_run_params *p,
                           const uad_priors *pri, run_preds *const *preds,
                           int n, const run_stats *st) {
    uad_afile f;
    uad_status s = uad_afile_open(&f, path);
    if (s != UAD_OK) return s;
    FILE *fp = f.fp;
    char set[64];
    fprintf(fp, "# uniadc run: %s, %s\n\n", pri->object ? pri->object
                                                         : "(object)",
            setting_text(&p->protocol, set, sizeof set));
    fprintf(fp, "Metrics in %% over the %zu evaluated test images (SPEC "
                "section 2; the first 2 images of each defect folder are "
                "never evaluated). Thresholding is per image (tau on each "
                "image's own map); the published numbers normalise maps "
                "over the test set and use pretrained foundation models.\n\n",
            n ? preds[0]->n : (size_t)0);
    run_print_summary(fp, pri, &p->protocol, preds, n);
    if (n == 2) md_versus(fp, preds[0], preds[1]);
    for (int i = 0; i < n; i++) {
        fprintf(fp, "\n## %s: per category\n\n", preds[i]->method);
        uad_eval_print_markdown(preds[i]->eval, fp);
        fprintf(fp, "\nImage-level confusion (rows: true class, columns: "
                    "predicted):\n\n");
        md_confusion(fp, preds[i]->eval, pri);
    }
    fprintf(fp, "\n## Time and memory\n\n");
    md_times(fp, st, preds, n);
    fprintf(fp, "\n## Parameters\n\n");
    md_params(fp, p, st->tau);
    fprintf(fp, "\n## Figures\n\n"
                "- ![test images](figures/test_images.png) test images per "
                "category: image, ground truth, anomaly map, class map\n"
                "- ![synthetic samples](figures/synthetic.png) synthesized "
                "training samples\n"
                "- ![image ROC](figures/roc_image.png) image-level ROC\n");
    return uad_afile_commit(&f);
}

static void json_num(cJSON *o, const char *k, double v) {
    if (isnan(v)) cJSON_AddNullToObject(o, k);
    else cJSON_AddNumberToObject(o, k, v);
}

static cJSON *json_run(const uad_run_params *p, const uad_priors *pri,
                       run_preds *const *preds, int n, const run_stats *st) {
    cJSON *root = cJSON_CreateObject();
    char set[64];
    cJSON_AddStringToObject(root, "uniadc_version", uad_version());
    cJSON_AddStringToObject(root, "setting",
                            setting_text(&p->protocol, set, sizeof set));
    cJSON_AddNumberToObject(root, "seed", (double)p->seed);
    cJSON *methods = cJSON_AddObjectToObject(root, "methods");
    for (int i = 0; i < n; i++) {
        cJSON *m = cJSON_AddObjectToObject(methods, preds[i]->method);
        double v[5];
        metric_values(v, &preds[i]->eval->overall);
        const char *keys[5] = {"i_auroc", "p_auroc", "aupro", "acc", "miou"};
        cJSON *mm = cJSON_AddObjectToObject(m, "metrics");
        for (int k = 0; k < 5; k++) json_num(mm, keys[k], v[k]);
        cJSON_AddNumberToObject(m, "seconds_train", preds[i]->seconds_train);
        cJSON_AddNumberToObject(m, "seconds_predict",
                                preds[i]->seconds_predict);
        cJSON_AddNumberToObject(m, "seconds_eval", preds[i]->seconds_eval);
        char file[64];
        snprintf(file, sizeof file, "metrics_%s.json", preds[i]->method);
        cJSON_AddStringToObject(m, "details", file);
    }
    const double *pub = published(pri, &p->protocol);
    if (pub) {
        cJSON *pm = cJSON_AddObjectToObject(root, "published_uniadc_dino");
        const char *keys[5] = {"i_auroc", "p_auroc", "aupro", "acc", "miou"};
        for (int k = 0; k < 5; k++)
            cJSON_AddNumberToObject(pm, keys[k], pub[k] / 100.0);
    }
    cJSON *t = cJSON_AddObjectToObject(root, "seconds");
    cJSON_AddNumberToObject(t, "load", st->t_load);
    cJSON_AddNumberToObject(t, "synthesis", st->t_synth);
    cJSON_AddNumberToObject(t, "total", st->t_total);
    cJSON_AddNumberToObject(root, "peak_memory_mb", st->peak_mb);
    cJSON_AddNumberToObject(root, "synthetic_samples", (double)st->n_synth);
    cJSON *pa = cJSON_AddObjectToObject(root, "parameters");
    cJSON_AddNumberToObject(pa, "kn", p->protocol.kn);
    cJSON_AddNumberToObject(pa, "ka", p->protocol.ka);
    cJSON_AddNumberToObject(pa, "per_category", p->synth.per_category);
    cJSON_AddNumberToObject(pa, "candidates", p->synth.n_candidates);
    cJSON_AddStringToObject(pa, "backbone",
                            uad_backbone_name(p->model.backbone));
    if (p->model.backbone_dir)
        cJSON_AddStringToObject(pa, "backbone_dir", p->model.backbone_dir);
    if (p->text) cJSON_AddStringToObject(pa, "text", p->text);
    cJSON_AddNumberToObject(pa, "width", p->model.width);
    cJSON_AddNumberToObject(pa, "input_size", p->model.input_size);
    cJSON_AddNumberToObject(pa, "tau", st->tau);
    cJSON_AddBoolToObject(pa, "tau_calibrated", p->calibrate != 0);
    cJSON_AddNumberToObject(pa, "epochs", p->train.epochs);
    cJSON_AddNumberToObject(pa, "steps_per_epoch", p->train.steps_per_epoch);
    cJSON_AddNumberToObject(pa, "batch", p->train.batch);
    cJSON_AddNumberToObject(pa, "lr", p->train.lr);
    cJSON_AddNumberToObject(pa, "bf16", p->train.bf16);
    return root;
}

/* ---- raw maps, as `uniadc eval` reads them ------------------------- */

static uad_status write_raw(const char *dir, const run_preds *r,
                            const uad_support *sup) {
    char *maps = uad_path_join(dir, "maps");
    char *cls = uad_path_join(dir, "class_maps");
    uad_status st = maps && cls ? UAD_OK : UAD_ERR_NOMEM;
    uad_afile csv = {0};
    char *csv_path = maps ? uad_path_join(maps, "scores.csv") : NULL;
    if (st == UAD_OK) st = uad_mkdirs(maps);
    if (st == UAD_OK) st = csv_path ? uad_afile_open(&csv, csv_path)
                                    : UAD_ERR_NOMEM;
    if (st == UAD_OK) fprintf(csv.fp, "path,score\n");
    for (size_t i = 0; st == UAD_OK && i < r->n; i++) {
        const uad_sample *s = sup->eval[i];
        char sub[4096], file[4200];
        uad_image m = {.w = r->w[i], .h = r->h[i], .c = 1, .data = r->det[i]};
        snprintf(sub, sizeof sub, "%s/%s", maps, s->category);
        snprintf(file, sizeof file, "%s/%s.tiff", sub, s->stem);
        st = uad_mkdirs(sub);
        if (st == UAD_OK) st = uad_image_write_tiff(file, &m);
        uad_image c = {0};
        if (st == UAD_OK) st = uad_image_alloc(&c, r->w[i], r->h[i], 1);
        for (size_t k = 0; st == UAD_OK && k < (size_t)r->w[i] * r->h[i]; k++)
            c.data[k] = r->cls[i][k] / 255.0f;
        snprintf(sub, sizeof sub, "%s/%s", cls, s->category);
        snprintf(file, sizeof file, "%s/%s.png", sub, s->stem);
        if (st == UAD_OK) st = uad_mkdirs(sub);
        if (st == UAD_OK) st = uad_image_write_png(file, &c);
        uad_image_free(&c);
        if (st == UAD_OK) fprintf(csv.fp, "%s,%.9g\n", s->rel_path, r->score[i]);
    }
    if (st == UAD_OK) st = uad_afile_commit(&csv);
    else if (csv.fp) uad_afile_abort(&csv);
    free(csv_path);
    free(maps);
    free(cls);
    return st;
}

/* ---- figures ------------------------------------------------------- */

/* Tiles for one evaluated image: image, ground truth, then per method
 * the anomaly map over the image and the class map. */
static uad_status image_row(uad_image *tiles, const uad_sample *s,
                            size_t i, run_preds *const *preds, int n,
                            const uad_image_params *ip) {
    uad_status st = uad_image_load(&tiles[0], s->abs_path, ip);
    if (st != UAD_OK) return st;
    size_t np = (size_t)tiles[0].w * tiles[0].h;
    st = uad_image_alloc(&tiles[1], tiles[0].w, tiles[0].h, 1);
    if (st == UAD_OK && s->mask_path) {
        uad_mask m;
        st = uad_mask_load_flags(&m, s->mask_path, ip, &(int){0});
        for (size_t k = 0; st == UAD_OK && k < np && k < (size_t)m.w * m.h; k++)
            tiles[1].data[k] = m.data[k];
        uad_mask_free(&m);
    }
    for (int j = 0; st == UAD_OK && j < n; j++) {
        if (preds[j]->w[i] != tiles[0].w || preds[j]->h[i] != tiles[0].h)
            return uad_fail(UAD_ERR_INTERNAL, "%s: map size differs",
                            s->rel_path);
        /* shown stretched to the map's own range */
        float lo, hi;
        st = fig_heatmap_stretched(&tiles[2 + 2 * j], &tiles[0],
                                   preds[j]->det[i], 0.5f, &lo, &hi);
        if (st == UAD_OK)
            st = fig_classmap(&tiles[3 + 2 * j], &tiles[0], preds[j]->cls[i]);
    }
    return st;
}

/* Up to n_fig evaluated images of each category (normal first). */
static uad_status fig_test_images(const char *path, const uad_run_params *p,
                                  const uad_priors *pri,
                                  const uad_support *sup,
                                  run_preds *const *preds, int n) {
    int cols = 2 + 2 * n, max_rows = (pri->n_categories + 1) * p->n_figure;
    uad_image *tiles = uad_calloc((size_t)max_rows * cols, sizeof *tiles);
    const uad_image **tp = uad_calloc((size_t)max_rows * cols, sizeof *tp);
    const char **labels = uad_calloc((size_t)max_rows, sizeof *labels);
    const char **names = uad_calloc((size_t)pri->n_categories, sizeof *names);
    if (!tiles || !tp || !labels || !names) return UAD_ERR_NOMEM;
    uad_status st = UAD_OK;
    int rows = 0;
    for (int c = 0; c <= pri->n_categories && st == UAD_OK; c++) {
        int taken = 0;
        for (size_t i = 0; i < sup->n_eval && taken < p->n_figure; i++) {
            if (sup->eval[i]->class_id != c || st != UAD_OK) continue;
            st = image_row(&tiles[rows * cols], sup->eval[i], i, preds, n,
                           &p->image);
            labels[rows++] = sup->eval[i]->rel_path + 5; /* skip "test/" */
            taken++;
        }
    }
    for (int k = 0; k < rows * cols; k++) tp[k] = tiles[k].data ? &tiles[k]
                                                                : NULL;
    for (int c = 0; c < pri->n_categories; c++)
        names[c] = pri->categories[c].name;
    const char *titles[6] = {"image", "ground truth",
                             n > 0 ? preds[0]->method : "",
                             "classes", n > 1 ? preds[1]->method : "",
                             "classes"};
    fig_grid g = {.tiles = tp, .rows = rows, .cols = cols, .cell = 128,
                  .col_titles = titles, .row_labels = labels,
                  .title = "test images: anomaly maps (each stretched to "
                           "its own range, blue low, red high) and class "
                           "maps",
                  .legend_names = names, .n_legend = pri->n_categories};
    if (st == UAD_OK && rows > 0) st = fig_grid_png(path, &g);
    for (int k = 0; k < max_rows * cols; k++) uad_image_free(&tiles[k]);
    free(tiles);
    free(tp);
    free(labels);
    free(names);
    return st;
}

/* Three synthetic samples per category: the sample and its mask. */
static uad_status fig_synthetic(const char *path, const uad_priors *pri,
                                const uad_synth_list *syn) {
    enum { PER = 3 };
    int rows = pri->n_categories, cols = 2 * PER;
    uad_image *tiles = uad_calloc((size_t)rows * cols, sizeof *tiles);
    const uad_image **tp = uad_calloc((size_t)rows * cols, sizeof *tp);
    const char **labels = uad_calloc((size_t)rows, sizeof *labels);
    if (!tiles || !tp || !labels) return UAD_ERR_NOMEM;
    uad_status st = UAD_OK;
    for (int c = 0; c < rows && st == UAD_OK; c++) {
        labels[c] = pri->categories[c].name;
        int k = 0;
        for (size_t i = 0; i < syn->n && k < PER && st == UAD_OK; i++) {
            const uad_synth_sample *s = &syn->items[i];
            if (s->class_id != c + 1) continue;
            uad_image *t = &tiles[c * cols + 2 * k];
            uint8_t *ids = uad_malloc((size_t)s->image.w * s->image.h);
            if (!ids) st = UAD_ERR_NOMEM;
            for (size_t j = 0; ids && j < (size_t)s->image.w * s->image.h; j++)
                ids[j] = s->mask[j] ? (uint8_t)s->class_id : 0;
            if (st == UAD_OK) st = uad_image_resize(t, &s->image, s->image.w,
                                                   s->image.h,
                                                   UAD_RESIZE_NEAREST);
            if (st == UAD_OK) st = fig_classmap(t + 1, &s->image, ids);
            free(ids);
            k++;
        }
    }
    for (int k = 0; k < rows * cols; k++)
        tp[k] = tiles[k].data ? &tiles[k] : NULL;
    const char *titles[6] = {"sample", "mask", "sample", "mask", "sample",
                             "mask"};
    fig_grid g = {.tiles = tp, .rows = rows, .cols = cols, .cell = 128,
                  .col_titles = titles, .row_labels = labels,
                  .title = "synthesized training samples"};
    if (st == UAD_OK && rows > 0) st = fig_grid_png(path, &g);
    for (int k = 0; k < rows * cols; k++) uad_image_free(&tiles[k]);
    free(tiles);
    free(tp);
    free(labels);
    return st;
}

/* Image-level ROC of every method; labels from the masks. */
static uad_status fig_roc(const char *path, const uad_support *sup,
                          run_preds *const *preds, int n,
                          const uad_image_params *ip) {
    uint8_t *lab = uad_calloc(sup->n_eval, 1);
    float *sc = uad_calloc(sup->n_eval * (size_t)(n ? n : 1), sizeof *sc);
    fig_curve cv[2];
    if (!lab || !sc) return UAD_ERR_NOMEM;
    uad_status st = UAD_OK;
    for (size_t i = 0; i < sup->n_eval && st == UAD_OK; i++) {
        if (!sup->eval[i]->mask_path) continue;
        uad_mask m;
        int fl;
        st = uad_mask_load_flags(&m, sup->eval[i]->mask_path, ip, &fl);
        for (size_t k = 0; st == UAD_OK && k < (size_t)m.w * m.h; k++)
            lab[i] |= m.data[k];
        uad_mask_free(&m);
    }
    for (int j = 0; j < n && j < 2; j++) {
        for (size_t i = 0; i < sup->n_eval; i++)
            sc[j * sup->n_eval + i] = (float)preds[j]->score[i];
        cv[j] = (fig_curve){preds[j]->method, sc + j * sup->n_eval, lab,
                            sup->n_eval};
    }
    if (st == UAD_OK) st = fig_roc_png(path, "image-level ROC", cv,
                                       n < 2 ? n : 2);
    free(lab);
    free(sc);
    return st;
}

uad_status run_report(const uad_run_params *p, const uad_dataset *ds,
                      const uad_priors *pri, const uad_support *sup,
                      const run_support *rs, const uad_synth_list *syn,
                      run_preds *const *preds, int n_preds,
                      const run_stats *st) {
    (void)ds;
    (void)rs;
    char path[4096];
    uad_status s = UAD_OK;
    for (int i = 0; s == UAD_OK && i < n_preds; i++) {
        snprintf(path, sizeof path, "%s/metrics_%s.json", p->out_dir,
                 preds[i]->method);
        s = uad_eval_write_json(preds[i]->eval, path);
        if (s == UAD_OK && p->raw) {
            snprintf(path, sizeof path, "%s/raw_%s", p->out_dir,
                     preds[i]->method);
            s = write_raw(path, preds[i], sup);
        }
    }
    snprintf(path, sizeof path, "%s/figures", p->out_dir);
    if (s == UAD_OK) s = uad_mkdirs(path);
    snprintf(path, sizeof path, "%s/figures/test_images.png", p->out_dir);
    if (s == UAD_OK) s = fig_test_images(path, p, pri, sup, preds, n_preds);
    snprintf(path, sizeof path, "%s/figures/synthetic.png", p->out_dir);
    if (s == UAD_OK) s = fig_synthetic(path, pri, syn);
    snprintf(path, sizeof path, "%s/figures/roc_image.png", p->out_dir);
    if (s == UAD_OK) s = fig_roc(path, sup, preds, n_preds, &p->image);
    snprintf(path, sizeof path, "%s/report.json", p->out_dir);
    if (s == UAD_OK) s = uad_json_save(path, json_run(p, pri, preds, n_preds, st));
    snprintf(path, sizeof path, "%s/report.md", p->out_dir);
    if (s == UAD_OK) s = write_md(path, p, pri, preds, n_preds, st);
    return s;
}
