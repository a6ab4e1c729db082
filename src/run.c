/* run.c - the main job in one call: support set (SPEC 2), synthesis
 * (SPEC 3-5), training (SPEC 6), prediction (SPEC 7-8) and evaluation of
 * the unified discriminator and of the kNN baseline; report.c writes the
 * results. */
#include "internal.h"
#include "nn.h"
#include "run.h"

#include <math.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

uad_run_params uad_run_default_params(void) {
    uad_run_params p;
    memset(&p, 0, sizeof p);
    p.protocol = (uad_protocol){UAD_SETTING_ZERO, 2, 0};
    p.methods = UAD_METHOD_UNIFIED | UAD_METHOD_KNN;
    p.synth = uad_synth_default_params();
    p.model = uad_model_default_params();
    p.train = uad_train_default_params();
    p.image = uad_image_default_params();
    p.n_figure = 3;
    return p;
}

double run_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double run_peak_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
}

/* ---- support images ------------------------------------------------ */

uad_status run_support_load(run_support *rs, const uad_support *sup,
                            int size, const uad_image_params *ip) {
    memset(rs, 0, sizeof *rs);
    rs->normals = uad_calloc(sup->n_normals, sizeof *rs->normals);
    rs->examples = uad_calloc(sup->n_examples, sizeof *rs->examples);
    rs->ex_masks = uad_calloc(sup->n_examples, sizeof *rs->ex_masks);
    if (!rs->normals || !rs->examples || !rs->ex_masks) return UAD_ERR_NOMEM;
    uad_status st = UAD_OK;
    for (size_t i = 0; st == UAD_OK && i < sup->n_normals; i++, rs->n_normals++)
        st = uad_image_load_resized(&rs->normals[i],
                                    sup->normals[i]->abs_path, size, ip);
    for (size_t i = 0; st == UAD_OK && i < sup->n_examples; i++) {
        st = uad_image_load_resized(&rs->examples[i],
                                    sup->examples[i]->abs_path, size, ip);
        if (st == UAD_OK) rs->n_examples++;
        if (st == UAD_OK)
            st = uad_mask_load_resized(&rs->ex_masks[i],
                                       sup->examples[i]->mask_path, size, ip);
    }
    return st;
}

void run_support_free(run_support *rs) {
    for (size_t i = 0; i < rs->n_normals; i++) uad_image_free(&rs->normals[i]);
    for (size_t i = 0; i < rs->n_examples; i++) {
        uad_image_free(&rs->examples[i]);
        free(rs->ex_masks[i]);
    }
    free(rs->normals);
    free(rs->examples);
    free(rs->ex_masks);
    memset(rs, 0, sizeof *rs);
}

/* ---- predictions ----------------------------------------------------- */

uad_status run_preds_alloc(run_preds *p, const char *method, size_t n) {
    memset(p, 0, sizeof *p);
    p->method = method;
    p->n = n;
    p->det = uad_calloc(n, sizeof *p->det);
    p->cls = uad_calloc(n, sizeof *p->cls);
    p->w = uad_calloc(n, sizeof *p->w);
    p->h = uad_calloc(n, sizeof *p->h);
    p->score = uad_calloc(n, sizeof *p->score);
    p->image_class = uad_calloc(n, sizeof *p->image_class);
    bool ok = p->det && p->cls && p->w && p->h && p->score && p->image_class;
    return ok ? UAD_OK : UAD_ERR_NOMEM;
}

void run_preds_free(run_preds *p) {
    for (size_t i = 0; i < p->n; i++) {
        if (p->det) free(p->det[i]);
        if (p->cls) free(p->cls[i]);
    }
    free(p->det);
    free(p->cls);
    free(p->w);
    free(p->h);
    free(p->score);
    free(p->image_class);
    uad_eval_free(p->eval);
    memset(p, 0, sizeof *p);
}

uad_status run_preds_eval(run_preds *p, const uad_dataset *ds,
                          const uad_priors *pri, const uad_support *sup,
                          const uad_eval_params *ep) {
    double t0 = run_now();
    uad_eval_input *in = uad_calloc(p->n, sizeof *in);
    if (!in) return UAD_ERR_NOMEM;
    for (size_t i = 0; i < p->n; i++)
        in[i] = (uad_eval_input){p->det[i], p->w[i], p->h[i], p->score[i],
                                 p->cls[i], p->w[i], p->h[i]};
    uad_status st = uad_eval_predictions(&p->eval, ds, pri, sup->eval, in,
                                         p->n, ep);
    free(in);
    p->seconds_eval = run_now() - t0;
    return st;
}

/* ---- the unified discriminator ------------------------------------- */

/* Training set: the normal support, the real examples (few-shot) and the
 * synthetic samples, all at the model's input size. */
static uad_status train_set(uad_train_sample **out, size_t *n,
                            const run_support *rs, const uad_support *sup,
                            const uad_synth_list *syn) {
    size_t total = rs->n_normals + rs->n_examples + syn->n;
    uad_train_sample *ts = uad_calloc(total, sizeof *ts);
    if (!ts) return UAD_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < rs->n_normals; i++)
        ts[k++] = (uad_train_sample){&rs->normals[i], NULL, 0, 1};
    for (size_t i = 0; i < rs->n_examples; i++)
        ts[k++] = (uad_train_sample){&rs->examples[i], rs->ex_masks[i],
                                     sup->examples[i]->class_id, 1};
    for (size_t i = 0; i < syn->n; i++)
        ts[k++] = (uad_train_sample){&syn->items[i].image, syn->items[i].mask,
                                     syn->items[i].class_id, 0};
    *out = ts;
    *n = k;
    return UAD_OK;
}

static uad_status run_unified(run_preds *out, run_stats *rst,
                              const run_support *rs, const uad_synth_list *syn,
                              const uad_priors *pri, const uad_support *sup,
                              const uad_run_params *p) {
    const char **names = uad_calloc((size_t)pri->n_categories, sizeof *names);
    if (!names) return UAD_ERR_NOMEM;
    for (int i = 0; i < pri->n_categories; i++)
        names[i] = pri->categories[i].name;
    uad_model *m = NULL;
    uad_model_params mp = p->model;
    mp.seed = p->seed;
    uad_train_params tp = p->train;
    tp.seed = p->seed;
    tp.few_shot = p->protocol.setting == UAD_SETTING_FEW;
    uad_train_sample *ts = NULL;
    size_t nts = 0;
    double t0 = run_now();
    uad_status st = uad_model_create(&m, names, pri->n_categories, &mp);
    if (st == UAD_OK) st = train_set(&ts, &nts, rs, sup, syn);
    if (st == UAD_OK) st = uad_train(m, ts, nts, &tp, &rst->train);
    if (st == UAD_OK && p->calibrate) {
        st = uad_predict_calibrate(m, rs->normals, rs->n_normals, &rst->tau);
        if (st == UAD_OK)
            UAD_INFO("calibrated tau %.4f on the normal support's flips "
                     "and rotations", rst->tau);
    }
    out->seconds_train = run_now() - t0;
    if (st == UAD_OK && p->out_dir) {
        char *path = uad_path_join(p->out_dir, "model.safetensors");
        st = path ? uad_model_save(m, path) : UAD_ERR_NOMEM;
        free(path);
    }
    t0 = run_now();
    for (size_t i = 0; st == UAD_OK && i < sup->n_eval; i++) {
        uad_image img = {0};
        st = uad_image_load(&img, sup->eval[i]->abs_path, &p->image);
        uad_prediction pr;
        if (st == UAD_OK) st = uad_predict(&pr, m, &img);
        if (st == UAD_OK) {
            /* Keep the maps; the prediction's other buffers go. */
            out->det[i] = pr.det;
            out->cls[i] = pr.cls;
            pr.det = NULL;
            pr.cls = NULL;
            out->w[i] = pr.w;
            out->h[i] = pr.h;
            out->score[i] = pr.score;
            out->image_class[i] = pr.image_class;
            uad_prediction_free(&pr);
        }
        uad_image_free(&img);
        uad_progress("predicting", i + 1, sup->n_eval);
    }
    out->seconds_predict = run_now() - t0;
    free(ts);
    free(names);
    uad_model_free(m);
    return st;
}

/* ---- the whole job ------------------------------------------------- */

static uad_status synthesize(uad_synth_list *out, run_stats *rst,
                             const run_support *rs, const uad_priors *pri,
                             const uad_support *sup, const uad_run_params *p) {
    double t0 = run_now();
    uad_synth_params sp = p->synth;
    sp.seed = p->seed;
    uad_synth *syn = NULL;
    uad_status st = uad_synth_create(&syn, rs->normals, rs->n_normals, &sp);
    if (st == UAD_OK && p->protocol.setting == UAD_SETTING_FEW) {
        uad_synth_example *ex = uad_calloc(rs->n_examples, sizeof *ex);
        if (!ex) st = UAD_ERR_NOMEM;
        for (size_t i = 0; st == UAD_OK && i < rs->n_examples; i++)
            ex[i] = (uad_synth_example){&rs->examples[i], rs->ex_masks[i],
                                        sup->examples[i]->class_id,
                                        sup->examples[i]->rel_path};
        if (st == UAD_OK)
            st = uad_synth_few_shot(out, syn, ex, rs->n_examples);
        free(ex);
    } else if (st == UAD_OK) {
        st = uad_synth_zero_shot(out, syn, pri);
    }
    uad_synth_free(syn);
    rst->t_synth = run_now() - t0;
    rst->n_synth = out->n;
    return st;
}

static uad_status check_params(const uad_run_params *p) {
    if (!p->data_dir || !p->priors_path || !p->out_dir)
        return uad_fail(UAD_ERR_USAGE, "a run needs a dataset, priors and "
                                       "an output folder");
    if (p->protocol.setting == UAD_SETTING_ALL)
        return uad_fail(UAD_ERR_USAGE, "a run needs a zero- or few-shot "
                                       "setting");
    if (!(p->methods & (UAD_METHOD_UNIFIED | UAD_METHOD_KNN)))
        return uad_fail(UAD_ERR_USAGE, "no method selected");
    return UAD_OK;
}

typedef struct {
    uad_priors *pri;
    uad_dataset *ds;
    uad_support sup;
    run_support rs;
    uad_synth_list syn;
    run_preds preds[2];
    int n_preds;
    uad_vit *vit;      /* a ViT backbone, for the kNN baseline          */
    float *embed;      /* frozen category embeddings (--text)           */
} run_state;

static void state_free(run_state *s) {
    uad_vit_free(s->vit);
    free(s->embed);
    for (int i = 0; i < s->n_preds; i++) run_preds_free(&s->preds[i]);
    uad_synth_list_free(&s->syn);
    run_support_free(&s->rs);
    uad_support_free(&s->sup);
    uad_dataset_free(s->ds);
    uad_priors_free(s->pri);
}

/* Load the inputs, checking every file before any long work starts. */
static uad_status load_inputs(run_state *s, run_stats *rst,
                              const uad_run_params *p) {
    double t0 = run_now();
    uad_status st = uad_priors_load(&s->pri, p->priors_path);
    if (st == UAD_OK) st = uad_dataset_open(&s->ds, p->data_dir, s->pri);
    if (st == UAD_OK) st = uad_dataset_check(s->ds, &p->image, NULL);
    if (st == UAD_OK) st = uad_dataset_support(&s->sup, s->ds, &p->protocol);
    if (st == UAD_OK)
        st = run_support_load(&s->rs, &s->sup, p->model.input_size, &p->image);
    if (st == UAD_OK) st = uad_mkdirs(p->out_dir);
    rst->t_load = run_now() - t0;
    return st;
}

/* A ViT backbone: load it (the kNN baseline uses it) and round the
 * input side to its patch before any image is resized, so the support
 * set, the synthetic samples and the model share one size. */
static uad_status resolve_backbone(run_state *s, uad_run_params *q) {
    if (!uad_backbone_is_vit(q->model.backbone)) return UAD_OK;
    if (!q->model.backbone_dir)
        return uad_fail(UAD_ERR_USAGE, "backbone %s needs its checkpoint "
                        "folder", uad_backbone_name(q->model.backbone));
    uad_status st = uad_vit_load(&s->vit,
                                 (uad_vit_kind)(q->model.backbone - 2),
                                 q->model.backbone_dir);
    if (st != UAD_OK) return st;
    uad_vit_info in;
    uad_vit_get_info(s->vit, &in);
    q->model.input_size = uad_vit_input_size(in.patch, q->model.input_size);
    return UAD_OK;
}

/* Frozen category embeddings from the text encoder: the model's width
 * becomes theirs (SPEC section 6). */
static uad_status text_embeddings(run_state *s, uad_run_params *q) {
    if (!q->text || !(q->methods & UAD_METHOD_UNIFIED)) return UAD_OK;
    int dim = 0;
    uad_status st = uad_text_category_embeddings(&s->embed, &dim, q->text,
                                                 s->pri);
    if (st != UAD_OK) return st;
    q->model.embed = s->embed;
    q->model.width = dim;
    q->model.text = q->text;
    return UAD_OK;
}

uad_status uad_run(const uad_run_params *p0) {
    uad_status st = check_params(p0);
    if (st != UAD_OK) return st;
    uad_run_params q = *p0, *p = &q; /* with the resolved size and width */
    run_state s;
    memset(&s, 0, sizeof s);
    run_stats rst;
    memset(&rst, 0, sizeof rst);
    rst.tau = p->model.tau;
    double t0 = run_now();
    uad_eval_params ep = uad_eval_default_params();
    ep.protocol = p->protocol;
    ep.image = p->image;
    ep.quiet_masks = 1; /* uad_dataset_check has warned about them once */
    /* train.bf16 holds for the whole job: backbone features, text
     * embeddings, training, prediction and the kNN baseline. */
    nn_precision caller_prec = nn_get_precision();
    if ((st = uad_set_bf16(p->train.bf16)) != UAD_OK) return st;
    st = resolve_backbone(&s, p);
    if (st == UAD_OK) st = load_inputs(&s, &rst, p);
    if (st == UAD_OK) st = text_embeddings(&s, p);
    if (st == UAD_OK) st = synthesize(&s.syn, &rst, &s.rs, s.pri, &s.sup, p);
    if (st == UAD_OK && (p->methods & UAD_METHOD_UNIFIED)) {
        run_preds *u = &s.preds[s.n_preds++];
        st = run_preds_alloc(u, "unified", s.sup.n_eval);
        if (st == UAD_OK)
            st = run_unified(u, &rst, &s.rs, &s.syn, s.pri, &s.sup, p);
        if (st == UAD_OK) st = run_preds_eval(u, s.ds, s.pri, &s.sup, &ep);
    }
    if (st == UAD_OK && (p->methods & UAD_METHOD_KNN)) {
        run_preds *k = &s.preds[s.n_preds++];
        st = run_preds_alloc(k, "knn", s.sup.n_eval);
        if (st == UAD_OK)
            st = run_knn(k, &s.rs, &s.syn, s.pri, &s.sup, p, s.vit);
        if (st == UAD_OK) st = run_preds_eval(k, s.ds, s.pri, &s.sup, &ep);
    }
    rst.t_total = run_now() - t0;
    rst.peak_mb = run_peak_mb();
    run_preds *list[2] = {&s.preds[0], &s.preds[1]};
    if (st == UAD_OK)
        st = run_report(p, s.ds, s.pri, &s.sup, &s.rs, &s.syn, list,
                        s.n_preds, &rst);
    state_free(&s);
    nn_set_precision(caller_prec);
    return st;
}
