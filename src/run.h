/* run.h - the main job's internals (not installed): run.c drives the
 * stages, knn.c is the training-free baseline, report.c writes results. */
#ifndef UAD_RUN_H
#define UAD_RUN_H

#include "uniadc.h"

/* Support images resized to the model's input size. */
typedef struct run_support {
    uad_image *normals;
    size_t n_normals;
    uad_image *examples;   /* few-shot examples, with their masks */
    uint8_t **ex_masks;    /* size * size bytes, 0/1              */
    size_t n_examples;
} run_support;

uad_status run_support_load(run_support *rs, const uad_support *sup,
                            int size, const uad_image_params *ip);
void run_support_free(run_support *rs);

/* Predictions of one method over the evaluated images, kept in memory
 * for evaluation and figures. */
typedef struct run_preds {
    const char *method;       /* "unified" or "knn"                  */
    size_t n;
    float **det;              /* S_d at each image's own size        */
    uint8_t **cls;            /* S_c, same size                      */
    int *w, *h;
    double *score;            /* I_d                                 */
    int *image_class;         /* I_c                                 */
    double seconds_predict;
    double seconds_train;     /* training (or memory bank) time      */
    uad_eval_result *eval;
    double seconds_eval;
} run_preds;

uad_status run_preds_alloc(run_preds *p, const char *method, size_t n);
void run_preds_free(run_preds *p);
/* Evaluate p against the dataset (fills p->eval). */
uad_status run_preds_eval(run_preds *p, const uad_dataset *ds,
                          const uad_priors *pri, const uad_support *sup,
                          const uad_eval_params *ep);

/* kNN baseline (knn.c): memory bank of normal patch features, nearest
 * distance as the score, nearest category prototype (from the synthetic
 * or example samples) as the class. With vit (borrowed; NULL for the
 * built-in fixed bank) the features are its last block's normed patch
 * tokens and distances are cosine (AnomalyDINO). */
uad_status run_knn(run_preds *out, const run_support *rs,
                   const uad_synth_list *syn, const uad_priors *pri,
                   const uad_support *sup, const uad_run_params *p,
                   const uad_vit *vit);

/* Timings and memory of a run, for the report. */
typedef struct run_stats {
    double t_synth, t_load, t_total;
    double peak_mb;
    size_t n_synth;
    uad_train_stats train;
    float tau;                /* the unified model's threshold       */
} run_stats;

/* report.c: report.md, report.json, metrics*.json and figures. */
uad_status run_report(const uad_run_params *p, const uad_dataset *ds,
                      const uad_priors *pri, const uad_support *sup,
                      const run_support *rs, const uad_synth_list *syn,
                      run_preds *const *preds, int n_preds,
                      const run_stats *st);

/* The summary table (ours beside the published numbers), Markdown. */
void run_print_summary(FILE *fp, const uad_priors *pri,
                       const uad_protocol *proto, run_preds *const *preds,
                       int n);

double run_now(void);
double run_peak_mb(void);

#endif
