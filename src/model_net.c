/* model_net.c - activations, forward and backward of the discriminator
 * (SPEC section 6): necks, four coarse-to-fine fusion blocks, cosine
 * logits over a learnable temperature, bilinear upsampling to S x S. */
#include "model.h"
#include "nn.h"

#include <string.h>

/* ---- activations: one allocation, carved twice (count, then assign) -- */

typedef struct carve {
    float *base;
    size_t used;
} carve;

static float *take(carve *c, size_t n) {
    float *p = c->base ? c->base + c->used : NULL;
    c->used += (n + 15) & ~(size_t)15; /* keep 64-byte alignment */
    return p;
}

static void carve_unit(carve *c, uad_unit_act *u, size_t cnt, int C) {
    u->r = take(c, cnt);
    u->c = take(c, cnt);
    u->y = take(c, cnt);
    u->mean = take(c, (size_t)C);
    u->rstd = take(c, (size_t)C);
}

static void carve_all(carve *c, uad_acts *a, const uad_model *m, int n) {
    size_t S2 = (size_t)m->size * m->size, C = (size_t)m->width;
    size_t Y = (size_t)m->n_cat, R0 = (size_t)m->grid[0] * m->grid[0];
    int gab = uad_has_gabor(m), stem = uad_has_stem(m), vit = uad_has_vit(m);
    a->img = take(c, (size_t)n * 3 * S2);
    for (int j = 0; stem && j <= UAD_LEVELS; j++) {
        size_t side = (size_t)m->size >> j, co = uad_stem_channels(j);
        a->stem_pre[j] = take(c, n * co * side * side);
        a->stem[j] = take(c, n * co * side * side / 4);
    }
    for (int l = 0; l < UAD_LEVELS; l++) {
        size_t hw = (size_t)m->grid[l] * m->grid[l], cnt = n * C * hw;
        a->gabor[l] = gab ? take(c, n * UAD_GABOR_DIM * hw) : NULL;
        a->feat[l] = (gab && stem) || vit ? take(c, n * m->feat_dim[l] * hw)
                     : gab                ? a->gabor[l]
                                          : a->stem[l + 1];
        a->neck[l] = take(c, cnt);
        carve_unit(c, &a->lat[l], cnt, (int)C);
        carve_unit(c, &a->mix[l], cnt, (int)C);
        a->path[l] = take(c, cnt);
        a->out[l] = take(c, cnt);
    }
    a->fnorm = take(c, n * C * R0);
    a->norm = take(c, n * R0);
    a->gnorm = take(c, Y * C);
    a->gnorm_n = take(c, Y);
    a->logit_s = take(c, n * Y * R0);
    a->logit = take(c, n * Y * S2);
    a->prob = take(c, n * Y * S2);
    a->det = take(c, n * S2);
    if (!a->train) return;
    for (int i = 0; i < 6; i++) a->g[i] = take(c, n * C * R0);
    a->gls = take(c, n * Y * R0);
    a->gemb = take(c, Y * C);
    /* the neck-input gradient only feeds a stem (a ViT is frozen) */
    a->gfeat = vit ? NULL : take(c, n * (size_t)m->feat_dim[0] * R0);
    a->glogit = take(c, n * Y * S2);
    a->gdet = take(c, n * S2);
    for (int l = 0; stem && l < UAD_LEVELS; l++)
        a->gtap[l] = take(c, n * (size_t)uad_stem_channels(l + 1) *
                                 m->grid[l] * m->grid[l]);
    if (stem) {
        a->gs0 = take(c, n * (size_t)UAD_STEM_DIM0 * S2);
        a->gs1 = take(c, n * (size_t)UAD_STEM_DIM0 * S2);
        a->gs2 = take(c, n * (size_t)UAD_STEM_DIM0 * S2 / 4);
    }
}

uad_status uad_acts_alloc(uad_acts *a, const uad_model *m, int n,
                          int train) {
    memset(a, 0, sizeof *a);
    a->n = n;
    a->train = train;
    carve c = {NULL, 0};
    carve_all(&c, a, m, n);
    size_t bytes;
    if (!uad_mul_size(&bytes, c.used, sizeof(float)))
        return uad_fail(UAD_ERR_LIMIT, "activations: size overflow");
    float *base = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!base)
        return uad_fail(UAD_ERR_NOMEM, "activations: cannot allocate %zu MB",
                        bytes >> 20);
    memset(a, 0, sizeof *a);
    a->n = n;
    a->train = train;
    a->block = base;
    c.base = base;
    c.used = 0;
    carve_all(&c, a, m, n);
    return UAD_OK;
}

void uad_acts_free(uad_acts *a) {
    free(a->block);
    memset(a, 0, sizeof *a);
}

/* ---- forward ---------------------------------------------------------- */

/* Residual unit: y = x + BN(conv3x3(ReLU(x))), x (n, C, side, side). */
static void unit_forward(uad_unit_act *u, const uad_model *m,
                         const uad_unit_ix *ix, const float *x, int n,
                         int side, int train) {
    int C = m->width, hw = side * side;
    size_t cnt = (size_t)n * C * hw;
    nn_relu_forward(u->r, x, cnt);
    nn_conv2d_forward(u->c, u->r, uad_pptr(m, ix->conv_w), NULL, n, C, side,
                      side, C, 3);
    if (train)
        nn_batchnorm_forward_train(u->y, u->mean, u->rstd,
                                   uad_pptr(m, ix->bn_mean),
                                   uad_pptr(m, ix->bn_var), u->c,
                                   uad_pptr(m, ix->bn_w),
                                   uad_pptr(m, ix->bn_b), n, C, hw,
                                   UAD_BN_MOMENTUM, UAD_BN_EPS);
    else
        nn_batchnorm_forward_eval(u->y, u->c, uad_pptr(m, ix->bn_w),
                                  uad_pptr(m, ix->bn_b),
                                  uad_pptr(m, ix->bn_mean),
                                  uad_pptr(m, ix->bn_var), n, C, hw,
                                  UAD_BN_EPS);
    nn_add_forward(u->y, u->y, x, cnt);
}

/* The temperature in use: a trained value below 1e-3 would make the
 * logits explode, so it is floored there (the stored value is kept). */
static float temperature(const uad_model *m) {
    float t = uad_pptr(m, m->temp)[0];
    return t > 1e-3f ? t : 1e-3f;
}

/* Fusion blocks, coarse (level 3) to fine (level 0). */
static void fusion_forward(uad_acts *a, const uad_model *m, int n) {
    int C = m->width;
    for (int b = 0; b < UAD_LEVELS; b++) {
        int l = UAD_LEVELS - 1 - b, R = m->grid[l];
        size_t cnt = (size_t)n * C * R * R;
        const uad_block_ix *ix = &m->block[b];
        unit_forward(&a->lat[l], m, &ix->lat, a->neck[l], n, R, a->train);
        const float *p = a->lat[l].y;
        if (b > 0) {
            /* path from the coarser block, upsampled to this grid; on a
             * ViT's single grid it is added as it is */
            int Rc = m->grid[l + 1];
            if (Rc == R) {
                nn_add_forward(a->path[l], a->out[l + 1], a->lat[l].y, cnt);
            } else {
                nn_resize_bilinear_forward(a->path[l], a->out[l + 1], n * C,
                                           Rc, Rc, R, R);
                nn_add_forward(a->path[l], a->path[l], a->lat[l].y, cnt);
            }
            p = a->path[l];
        }
        unit_forward(&a->mix[l], m, &ix->mix, p, n, R, a->train);
        nn_conv2d_forward(a->out[l], a->mix[l].y, uad_pptr(m, ix->proj_w),
                          uad_pptr(m, ix->proj_b), n, C, R, R, C, 1);
    }
}

void uad_model_forward(uad_acts *a, const uad_model *m, int n, int full) {
    int C = m->width, Y = m->n_cat, R = m->grid[0], S = m->size;
    UAD_ASSERT(n >= 1 && n <= a->n);

    /* backbone: fixed bank and/or stem, or the ViT's token maps (given
     * by the caller: uad_vit_backbone can fail), then the necks (linear,
     * ReLU) */
    UAD_ASSERT(!uad_has_vit(m) || a->fixed_given);
    if (uad_has_gabor(m) && !a->fixed_given) uad_backbone_fixed(a, m, n);
    if (uad_has_stem(m)) uad_stem_forward(a, m, n);
    uad_backbone_gather(a, m, n);
    for (int l = 0; l < UAD_LEVELS; l++) {
        int g = m->grid[l];
        nn_conv2d_forward(a->neck[l], a->feat[l], uad_pptr(m, m->neck[l]),
                          NULL, n, m->feat_dim[l], g, g, C, 1);
        nn_relu_forward(a->neck[l], a->neck[l], (size_t)n * C * g * g);
    }
    fusion_forward(a, m, n);

    /* head: cosine of normalised features and embeddings over eps */
    nn_l2norm_forward(a->fnorm, a->norm, a->out[0], n, C, R * R, 1e-12f);
    nn_l2norm_forward(a->gnorm, a->gnorm_n, uad_pptr(m, m->embed), Y, C, 1,
                      1e-12f);
    nn_cosine_logits_forward(a->logit_s, a->fnorm, a->gnorm, temperature(m),
                             n, C, R * R, Y);
    if (!full) return;

    /* upsample to the input, S_y = sigmoid, S_d = mean over Y */
    size_t S2 = (size_t)S * S;
    nn_resize_bilinear_forward(a->logit, a->logit_s, n * Y, R, R, S, S);
    nn_sigmoid_forward(a->prob, a->logit, (size_t)n * Y * S2);
    for (int i = 0; i < n; i++) {
        float *d = a->det + i * S2;
        const float *p = a->prob + (size_t)i * Y * S2;
        memcpy(d, p, S2 * sizeof(float));
        for (int y = 1; y < Y; y++)
            for (size_t k = 0; k < S2; k++) d[k] += p[y * S2 + k];
        for (size_t k = 0; k < S2; k++) d[k] *= 1.0f / (float)Y;
    }
}

/* ---- backward --------------------------------------------------------- */

static float *gptr(const uad_model *m, float *grad, int ix) {
    return grad + m->params[ix].off;
}

/* dx += d/dx of the unit, from dy; dc and dr are scratch. */
static void unit_backward(float *dx, float *grad, const uad_model *m,
                          const uad_unit_ix *ix, const uad_unit_act *u,
                          const float *dy, float *dc, float *dr, int n,
                          int side) {
    int C = m->width, hw = side * side;
    size_t cnt = (size_t)n * C * hw;
    for (size_t i = 0; i < cnt; i++) dx[i] += dy[i]; /* the skip */
    memset(dc, 0, cnt * sizeof(float));
    nn_batchnorm_backward(dc, gptr(m, grad, ix->bn_w), gptr(m, grad, ix->bn_b),
                          dy, u->c, u->mean, u->rstd, uad_pptr(m, ix->bn_w),
                          n, C, hw);
    memset(dr, 0, cnt * sizeof(float));
    nn_conv2d_backward(dr, gptr(m, grad, ix->conv_w), NULL, dc, u->r,
                       uad_pptr(m, ix->conv_w), n, C, side, side, C, 3);
    nn_relu_backward(dx, dr, u->r, cnt);
}

/* Level l's block and neck backward from dout (its block output grad);
 * the coarser path's gradient goes to dnext (zeroed here). */
static void level_backward(uad_model *m, float *grad, uad_acts *a, int n,
                           int l, const float *dout, float *dnext) {
    int C = m->width, R = m->grid[l], b = UAD_LEVELS - 1 - l;
    size_t cnt = (size_t)n * C * R * R;
    const uad_block_ix *ix = &m->block[b];
    float *dq = a->g[0], *dp = a->g[1], *dc = a->g[4], *dr = a->g[5];

    memset(dq, 0, cnt * sizeof(float));
    nn_conv2d_backward(dq, gptr(m, grad, ix->proj_w), gptr(m, grad, ix->proj_b),
                       dout, a->mix[l].y, uad_pptr(m, ix->proj_w), n, C, R, R,
                       C, 1);
    memset(dp, 0, cnt * sizeof(float));
    unit_backward(dp, grad, m, &ix->mix, &a->mix[l], dq, dc, dr, n, R);
    if (b > 0) {
        int Rc = m->grid[l + 1];
        if (Rc == R) {
            memcpy(dnext, dp, cnt * sizeof(float));
        } else {
            memset(dnext, 0, (size_t)n * C * Rc * Rc * sizeof(float));
            nn_resize_bilinear_backward(dnext, dp, n * C, Rc, Rc, R, R);
        }
    }
    float *dneck = a->g[0];
    memset(dneck, 0, cnt * sizeof(float));
    unit_backward(dneck, grad, m, &ix->lat, &a->lat[l], dp, dc, dr, n, R);

    /* neck: ReLU then the linear map (fixed features need no gradient) */
    float *dz = a->g[1];
    memset(dz, 0, cnt * sizeof(float));
    nn_relu_backward(dz, dneck, a->neck[l], cnt);
    int stem = uad_has_stem(m);
    size_t fcnt = (size_t)n * m->feat_dim[l] * R * R;
    if (stem) memset(a->gfeat, 0, fcnt * sizeof(float));
    nn_conv2d_backward(stem ? a->gfeat : NULL, gptr(m, grad, m->neck[l]),
                       NULL, dz, a->feat[l], uad_pptr(m, m->neck[l]), n,
                       m->feat_dim[l], R, R, C, 1);
    if (stem) uad_backbone_scatter_grad(a, m, n, l);
}

void uad_model_backward(uad_model *m, float *grad, uad_acts *a, int n) {
    int C = m->width, Y = m->n_cat, R = m->grid[0], S = m->size;
    size_t R2 = (size_t)R * R;

    /* head: upsampling, cosine logits, the two normalisations */
    memset(a->gls, 0, (size_t)n * Y * R2 * sizeof(float));
    nn_resize_bilinear_backward(a->gls, a->glogit, n * Y, R, R, S, S);
    float *df = a->g[3];
    memset(df, 0, (size_t)n * C * R2 * sizeof(float));
    memset(a->gemb, 0, (size_t)Y * C * sizeof(float));
    float deps = 0;
    nn_cosine_logits_backward(df, a->gemb, &deps, a->gls, a->fnorm, a->gnorm,
                              temperature(m), n, C, (int)R2, Y);
    if (uad_pptr(m, m->temp)[0] > 1e-3f) gptr(m, grad, m->temp)[0] += deps;
    nn_l2norm_backward(gptr(m, grad, m->embed), a->gemb, a->gnorm,
                       a->gnorm_n, Y, C, 1);
    float *dout = a->g[2];
    memset(dout, 0, (size_t)n * C * R2 * sizeof(float));
    nn_l2norm_backward(dout, df, a->fnorm, a->norm, n, C, (int)R2);

    /* fusion blocks fine to coarse; the two level gradients alternate
     * between g[2] and g[3] */
    for (int l = 0; l < UAD_LEVELS; l++) {
        float *dnext = (l % 2 == 0) ? a->g[3] : a->g[2];
        level_backward(m, grad, a, n, l, dout, dnext);
        dout = dnext;
    }
    if (uad_has_stem(m)) uad_stem_backward(m, grad, a, n);
}
