/* train.c - training the discriminator (SPEC section 6): focal + Dice on
 * S_d, lambda x cross-entropy at anomalous pixels, AdamW with polynomial
 * decay, gradient-norm clipping on the fusion part, and the published
 * batch composition for the zero- and few-shot settings. */
#include "model.h"
#include "nn.h"

#include <math.h>
#include <string.h>
#include <time.h>

uad_train_params uad_train_default_params(void) {
    uad_train_params p;
    memset(&p, 0, sizeof p);
    p.epochs = 50;
    p.steps_per_epoch = 5;
    p.batch = 16;
    p.lr = 1e-3f;
    p.beta1 = 0.9f;
    p.beta2 = 0.999f;
    p.weight_decay = 1e-4f;
    p.clip = 0.1f;
    p.ce_weight = 0.5f;
    p.temp_lr_scale = 1.0f;
    return p;
}

/* Samples resized once to S x S: images (3, S, S), labels (S, S) with the
 * class id on anomalous pixels. */
typedef struct prepared {
    float *img;
    uint8_t *lab;
    int *real;
    size_t n;
    float *fixed;    /* per-sample fixed-bank features, or NULL        */
    size_t fixed_n;  /* floats per sample                              */
} prepared;

static void prepared_free(prepared *d) {
    free(d->fixed);
    free(d->img);
    free(d->lab);
    free(d->real);
}

/* Nearest-neighbour resize of a mask to S x S (PyTorch "nearest"),
 * writing the class id where the mask is set. */
static void resize_labels(uint8_t *dst, const uint8_t *mask, int w, int h,
                          int S, int cls) {
    for (int y = 0; y < S; y++) {
        int sy = (int)((int64_t)y * h / S);
        for (int x = 0; x < S; x++) {
            int sx = (int)((int64_t)x * w / S);
            dst[(size_t)y * S + x] =
                mask && mask[(size_t)sy * w + sx] ? (uint8_t)cls : 0;
        }
    }
}

static uad_status prepare_all(prepared *d, const uad_model *m,
                              const uad_train_sample *s, size_t n) {
    size_t S2 = (size_t)m->size * m->size, total;
    memset(d, 0, sizeof *d);
    if (!uad_mul3_size(&total, n, 3, S2))
        return uad_fail(UAD_ERR_LIMIT, "train: too many samples");
    d->img = uad_malloc(total * sizeof(float));
    d->lab = uad_malloc(n * S2);
    d->real = uad_calloc(n, sizeof(int));
    if (!d->img || !d->lab || !d->real) return UAD_ERR_NOMEM;
    d->n = n;
    size_t n_anom = 0;
    for (size_t i = 0; i < n; i++) {
        const uad_image *im = s[i].image;
        int cls = s[i].class_id;
        if (s[i].mask && (cls < 1 || cls > m->n_cat))
            return uad_fail(UAD_ERR_DATA, "train: sample %zu has a mask but "
                            "class id %d (need 1..%d)", i, cls, m->n_cat);
        uad_status st = uad_model_prepare(d->img + i * 3 * S2, m, im);
        if (st) {
            uad_error_prefix("train");
            return st;
        }
        resize_labels(d->lab + i * S2, s[i].mask, im->w, im->h, m->size, cls);
        d->real[i] = s[i].real;
        n_anom += s[i].mask != NULL;
    }
    if (!n_anom)
        return uad_fail(UAD_ERR_DATA, "train: no anomalous sample among %zu",
                        n);
    return UAD_OK;
}

/* ---- batches -------------------------------------------------------- */

/* Zero-shot: B uniform draws from all samples. Few-shot: every real
 * sample (a random B of them if there are more), filled up with uniform
 * draws of synthetic ones. pool has d->n entries of scratch. */
static void compose_batch(size_t *idx, size_t *pool, int B,
                          const prepared *d, int few_shot, uad_rng *r) {
    int k = 0;
    if (few_shot) {
        size_t nr = 0, ns = 0;
        for (size_t i = 0; i < d->n; i++)
            if (d->real[i]) pool[nr++] = i;
        /* partial Fisher-Yates: the first min(B, nr) are a random pick */
        for (size_t i = 0; i < nr && k < B; i++, k++) {
            size_t j = i + uad_rng_below(r, nr - i), t = pool[i];
            pool[i] = pool[j];
            pool[j] = t;
            idx[k] = pool[i];
        }
        for (size_t i = 0; i < d->n; i++)
            if (!d->real[i]) pool[ns++] = i;
        while (k < B && ns) idx[k++] = pool[uad_rng_below(r, ns)];
    }
    while (k < B) idx[k++] = uad_rng_below(r, d->n);
}

/* Copy sample i into batch slot b under the dihedral transform t (0..7):
 * bit 0 flips horizontally, bits 1-2 count quarter turns. */
static void load_slot(uad_acts *a, uint8_t *lab, const prepared *d,
                      size_t i, int b, int S, int t) {
    size_t S2 = (size_t)S * S;
    const float *src = d->img + i * 3 * S2;
    const uint8_t *ls = d->lab + i * S2;
    float *dst = a->img + (size_t)b * 3 * S2;
    uint8_t *ld = lab + (size_t)b * S2;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            int sy = y, sx = (t & 1) ? S - 1 - x : x;
            for (int q = 0; q < (t >> 1); q++) {
                int ny = sx, nx = S - 1 - sy;
                sy = ny;
                sx = nx;
            }
            size_t o = (size_t)y * S + x, s = (size_t)sy * S + sx;
            for (int c = 0; c < 3; c++) dst[c * S2 + o] = src[c * S2 + s];
            ld[o] = ls[s];
        }
}

/* Copy the cached fixed-bank features of sample i to slot b (cache only
 * exists without augmentation: the features are of the plain image). */
static void load_fixed(uad_acts *a, const uad_model *m, const prepared *d,
                       size_t i, int b) {
    const float *src = d->fixed + i * d->fixed_n;
    for (int l = 0; l < UAD_LEVELS; l++) {
        size_t k = (size_t)UAD_GABOR_DIM * m->grid[l] * m->grid[l];
        memcpy(a->gabor[l] + (size_t)b * k, src, k * sizeof(float));
        src += k;
    }
}

/* The fixed bank depends only on the image, so without augmentation it
 * is computed once per sample here instead of at every step. Uses the
 * trainer's activations (batch B) as scratch. */
static uad_status cache_fixed(prepared *d, uad_acts *a, const uad_model *m,
                              int B) {
    size_t S2 = (size_t)m->size * m->size;
    d->fixed_n = 0;
    for (int l = 0; l < UAD_LEVELS; l++)
        d->fixed_n += (size_t)UAD_GABOR_DIM * m->grid[l] * m->grid[l];
    d->fixed = uad_malloc(d->n * d->fixed_n * sizeof(float));
    if (!d->fixed) return UAD_ERR_NOMEM;
    for (size_t i0 = 0; i0 < d->n; i0 += (size_t)B) {
        int nb = d->n - i0 < (size_t)B ? (int)(d->n - i0) : B;
        memcpy(a->img, d->img + i0 * 3 * S2, (size_t)nb * 3 * S2 *
                                                 sizeof(float));
        uad_backbone_fixed(a, m, nb);
        for (int b = 0; b < nb; b++) {
            float *dst = d->fixed + (i0 + (size_t)b) * d->fixed_n;
            for (int l = 0; l < UAD_LEVELS; l++) {
                size_t k = (size_t)UAD_GABOR_DIM * m->grid[l] * m->grid[l];
                memcpy(dst, a->gabor[l] + (size_t)b * k, k * sizeof(float));
                dst += k;
            }
        }
    }
    return UAD_OK;
}

/* A frozen ViT's token maps are computed once per sample too. With
 * augmentation the cached maps are flipped and rotated with the image
 * (load_vit_slot) instead of running the ViT on every view: the token
 * grid maps onto itself exactly (S is a multiple of the patch), but a
 * ViT is not equivariant, so a rotated image's tokens would differ from
 * the rotated tokens; the augmentation is approximate in feature space. */
static uad_status cache_vit(prepared *d, uad_acts *a, const uad_model *m,
                            int B) {
    size_t S2 = (size_t)m->size * m->size;
    size_t k = (size_t)m->feat_dim[0] * m->grid[0] * m->grid[0];
    size_t bytes;
    d->fixed_n = UAD_LEVELS * k;
    if (!uad_mul3_size(&bytes, d->n, d->fixed_n, sizeof(float)))
        return uad_fail(UAD_ERR_LIMIT, "train: feature cache too large");
    d->fixed = uad_malloc(bytes);
    if (!d->fixed)
        return uad_fail(UAD_ERR_NOMEM, "train: no memory for the backbone "
                        "features of %zu samples (%zu MB)", d->n,
                        bytes >> 20);
    uad_progress("backbone features", 0, d->n);
    for (size_t i0 = 0; i0 < d->n; i0 += (size_t)B) {
        int nb = d->n - i0 < (size_t)B ? (int)(d->n - i0) : B;
        memcpy(a->img, d->img + i0 * 3 * S2, (size_t)nb * 3 * S2 *
                                                 sizeof(float));
        uad_status st = uad_vit_backbone(a, m, nb);
        if (st) return st;
        for (int b = 0; b < nb; b++) {
            float *dst = d->fixed + (i0 + (size_t)b) * d->fixed_n;
            for (int l = 0; l < UAD_LEVELS; l++)
                memcpy(dst + l * k, a->feat[l] + (size_t)b * k,
                       k * sizeof(float));
        }
        uad_progress("backbone features", i0 + (size_t)nb, d->n);
    }
    return UAD_OK;
}

/* Cached ViT maps of sample i into slot b under the dihedral transform t
 * of load_slot, applied to the token grid. */
static void load_vit_slot(uad_acts *a, const uad_model *m,
                          const prepared *d, size_t i, int b, int t) {
    int g = m->grid[0], D = m->feat_dim[0];
    size_t g2 = (size_t)g * g, k = (size_t)D * g2;
    const float *src = d->fixed + i * d->fixed_n;
    for (int l = 0; l < UAD_LEVELS; l++) {
        float *dst = a->feat[l] + (size_t)b * k;
        const float *s = src + l * k;
        if (!t) {
            memcpy(dst, s, k * sizeof(float));
            continue;
        }
        for (int y = 0; y < g; y++)
            for (int x = 0; x < g; x++) {
                int sy = y, sx = (t & 1) ? g - 1 - x : x;
                for (int q = 0; q < (t >> 1); q++) {
                    int ny = sx, nx = g - 1 - sy;
                    sy = ny;
                    sx = nx;
                }
                size_t o = (size_t)y * g + x, so = (size_t)sy * g + sx;
                for (int c = 0; c < D; c++) dst[c * g2 + o] = s[c * g2 + so];
            }
    }
}

/* ---- one step ---------------------------------------------------------- */

/* Loss of the batch in a (forward done) and its gradient into a->glogit:
 * focal(gamma 2) + Dice on S_d against the binary mask, plus ce_weight x
 * cross-entropy over the Y logits at anomalous pixels (SPEC section 6). */
float uad_model_loss(uad_acts *a, const uad_model *m, const uint8_t *lab,
                     float *target, int n, float ce_weight) {
    int Y = m->n_cat;
    size_t S2 = (size_t)m->size * m->size, cnt = (size_t)n * S2;
    for (size_t k = 0; k < cnt; k++) target[k] = lab[k] ? 1.0f : 0.0f;
    memset(a->gdet, 0, cnt * sizeof(float));
    float lf = nn_focal_loss(a->gdet, a->det, target, cnt, 2.0f);
    float ld = nn_dice_loss(a->gdet, a->det, target, n, S2);
    float lc = nn_cross_entropy(a->glogit, a->logit, lab, n, Y, (int)S2,
                                ce_weight);

    /* S_d = mean_y sigmoid(z_y): dz_y += dS_d / Y * s_y (1 - s_y) */
    float invY = 1.0f / (float)Y;
    for (int i = 0; i < n; i++)
        for (int y = 0; y < Y; y++) {
            size_t o = ((size_t)i * Y + y) * S2;
            const float *p = a->prob + o;
            const float *g1 = a->gdet + i * S2;
            float *gz = a->glogit + o;
            for (size_t k = 0; k < S2; k++)
                gz[k] += g1[k] * invY * p[k] * (1.0f - p[k]);
        }
    return lf + ld + ce_weight * lc;
}

/* PyTorch's clip_grad_norm_ over the clipped group (stem, necks, fusion):
 * scale by max_norm / (norm + 1e-6) when that is below 1. */
static void clip_grads(const uad_model *m, float *grad, float max_norm) {
    double ss = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].clip)
            ss += nn_sum_squares(grad + m->params[i].off, m->params[i].n);
    double coef = max_norm / (sqrt(ss) + 1e-6);
    if (coef >= 1.0) return;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].clip)
            nn_scale(grad + m->params[i].off, m->params[i].n, (float)coef);
}

typedef struct trainer {
    uad_acts a;
    float *grad, *mom, *var, *target;
    uint8_t *lab;
    size_t *idx, *pool;
} trainer;

static void trainer_free(trainer *t) {
    uad_acts_free(&t->a);
    free(t->grad);
    free(t->mom);
    free(t->var);
    free(t->target);
    free(t->lab);
    free(t->idx);
    free(t->pool);
}

static uad_status trainer_init(trainer *t, const uad_model *m, int B,
                               size_t n) {
    size_t S2 = (size_t)m->size * m->size;
    memset(t, 0, sizeof *t);
    uad_status st = uad_acts_alloc(&t->a, m, B, 1);
    if (st) return st;
    t->grad = uad_calloc(m->n_arena, sizeof(float));
    t->mom = uad_calloc(m->n_arena, sizeof(float));
    t->var = uad_calloc(m->n_arena, sizeof(float));
    t->target = uad_malloc((size_t)B * S2 * sizeof(float));
    t->lab = uad_malloc((size_t)B * S2);
    t->idx = uad_calloc((size_t)B, sizeof(size_t));
    t->pool = uad_calloc(n, sizeof(size_t));
    if (!t->grad || !t->mom || !t->var || !t->target || !t->lab || !t->idx ||
        !t->pool)
        return UAD_ERR_NOMEM;
    return UAD_OK;
}

static float train_step(uad_model *m, trainer *t, const prepared *d,
                        const uad_train_params *p, uad_rng *r, float lr,
                        int step) {
    int B = p->batch;
    compose_batch(t->idx, t->pool, B, d, p->few_shot, r);
    for (int b = 0; b < B; b++) {
        int tf = p->augment ? (int)uad_rng_below(r, 8) : 0;
        load_slot(&t->a, t->lab, d, t->idx[b], b, m->size, tf);
        if (uad_has_vit(m)) load_vit_slot(&t->a, m, d, t->idx[b], b, tf);
        else if (d->fixed) load_fixed(&t->a, m, d, t->idx[b], b);
    }
    t->a.fixed_given = d->fixed != NULL;
    uad_model_forward(&t->a, m, B, 1);
    float loss = uad_model_loss(&t->a, m, t->lab, t->target, B, p->ce_weight);
    memset(t->grad, 0, m->n_arena * sizeof(float));
    uad_model_backward(m, t->grad, &t->a, B);
    if (p->clip > 0) clip_grads(m, t->grad, p->clip);
    for (int i = 0; i < m->n_params; i++) {
        const uad_param *q = &m->params[i];
        if (!q->decay) continue; /* running statistics */
        float lr_i = i == m->temp ? lr * p->temp_lr_scale : lr;
        nn_adamw_step(m->arena + q->off, t->grad + q->off, t->mom + q->off,
                      t->var + q->off, q->n, lr_i, p->beta1, p->beta2, 1e-8f,
                      p->weight_decay, step);
    }
    return loss;
}

/* ---- the loop -------------------------------------------------------- */

static uad_status check_train_params(const uad_train_params *p) {
    if (p->epochs < 1 || p->steps_per_epoch < 1 || p->batch < 1 ||
        p->batch > 4096)
        return uad_fail(UAD_ERR_USAGE, "train: epochs, steps and batch must "
                        "be positive (batch at most 4096)");
    if (!(p->lr > 0) || !(p->beta1 >= 0 && p->beta1 < 1) ||
        !(p->beta2 >= 0 && p->beta2 < 1) || !(p->weight_decay >= 0) ||
        !(p->clip >= 0) || !(p->ce_weight >= 0) ||
        !(p->temp_lr_scale >= 0))
        return uad_fail(UAD_ERR_USAGE, "train: optimiser settings out of "
                        "range");
    return UAD_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The schedule: epochs x steps, lr x (1 - epoch / epochs)^0.9 held
 * constant within an epoch; fills stats. */
static void run_epochs(uad_model *m, trainer *t, const prepared *d,
                       const uad_train_params *p, uad_train_stats *stats) {
    uad_rng r;
    uad_rng_seed(&r, p->seed);
    int total = p->epochs * p->steps_per_epoch, step = 0;
    double t0 = now_s();
    memset(stats, 0, sizeof *stats);
    uad_progress("train", 0, (size_t)total);
    for (int e = 0; e < p->epochs; e++) {
        float lr = p->lr * powf(1.0f - (float)e / (float)p->epochs, 0.9f);
        double sum = 0;
        for (int s = 0; s < p->steps_per_epoch; s++) {
            float loss = train_step(m, t, d, p, &r, lr, ++step);
            sum += loss;
            UAD_DEBUG("train: epoch %d step %d loss %.4f lr %.2e", e + 1,
                      step, (double)loss, (double)lr);
            /* the loss rides in the stage name: "train (loss 0.123)" */
            char stage[48];
            snprintf(stage, sizeof stage, "train (loss %.3f)", (double)loss);
            uad_progress(stage, (size_t)step, (size_t)total);
        }
        sum /= p->steps_per_epoch;
        if (e == 0) stats->first_loss = (float)sum;
        stats->last_loss = (float)sum;
        UAD_INFO("train: epoch %d/%d mean loss %.4f", e + 1, p->epochs, sum);
    }
    stats->steps = total;
    stats->seconds = now_s() - t0;
}

uad_status uad_train(uad_model *m, const uad_train_sample *samples,
                     size_t n, const uad_train_params *p,
                     uad_train_stats *stats) {
    uad_train_params def = uad_train_default_params();
    uad_train_stats local;
    if (!p) p = &def;
    if (!stats) stats = &local;
    uad_status st = check_train_params(p);
    if (st) return st;
    if (!n) return uad_fail(UAD_ERR_DATA, "train: no samples");
    if (p->threads > 0) nn_set_threads(p->threads);
    prepared d;
    trainer t;
    memset(&t, 0, sizeof t);
    /* The whole call, the cached backbone features included, computes in
     * the requested precision; the caller's setting comes back after. */
    nn_precision caller_prec = nn_get_precision();
    if ((st = uad_set_bf16(p->bf16)) != UAD_OK) return st;
    st = prepare_all(&d, m, samples, n);
    if (!st) st = trainer_init(&t, m, p->batch, n);
    if (!st && uad_has_vit(m))
        st = cache_vit(&d, &t.a, m, p->batch);
    else if (!st && uad_has_gabor(m) && !p->augment)
        st = cache_fixed(&d, &t.a, m, p->batch);
    if (!st) run_epochs(m, &t, &d, p, stats);
    nn_set_precision(caller_prec);
    prepared_free(&d);
    trainer_free(&t);
    if (st) return st;
    for (size_t k = 0; k < m->n_arena; k++)
        if (!isfinite(m->arena[k]))
            return uad_fail(UAD_ERR_DATA, "train: the parameters diverged "
                            "(non-finite); try a lower learning rate");
    return UAD_OK;
}
