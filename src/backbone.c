/* backbone.c - the weight-free backbone: four feature levels from a fixed
 * oriented filter bank and/or a small convolutional stem trained from
 * scratch with the discriminator (issue 4; SPEC section 8 "embedded
 * defaults").
 *
 * Geometry: the input is S x S; level l has a grid of side S / (4 << l)
 * (strides 4, 8, 16, 32), the pyramid the fusion blocks walk coarse to
 * fine. The fixed bank of level l is computed on the image box-averaged
 * to side S / (2 << l), one octave finer than its grid, and pooled 2x2,
 * so thin structures still excite the filters before pooling.
 */
#include "model.h"
#include "nn.h"

#include <math.h>
#include <string.h>

/* ---- preparation ---------------------------------------------------- */

uad_status uad_model_prepare(float *dst, const uad_model *m,
                             const uad_image *img) {
    if (!img || !img->data || img->w < 1 || img->h < 1 || img->c < 1)
        return uad_fail(UAD_ERR_DATA, "image: empty or unallocated");
    if (uad_has_vit(m)) {
        /* the checkpoint's own normalisation, at S x S (no crop) */
        uad_image rgb = *img;
        if (rgb.c > 3) rgb.c = 3;
        if (rgb.c == 2) rgb.c = 1;
        return uad_vit_preprocess(m->vit, dst, &rgb, m->size);
    }
    int S = m->size, C = img->c >= 3 ? 3 : 1;
    size_t plane = (size_t)S * S;

    /* resize each used plane to S x S (PyTorch bilinear) */
    nn_resize_bilinear_forward(dst, img->data, C, img->h, img->w, S, S);
    if (C == 1) {
        memcpy(dst + plane, dst, plane * sizeof(float));
        memcpy(dst + 2 * plane, dst, plane * sizeof(float));
    }

    /* standardise per image: the fixed filters and the stem then see
     * the same contrast under the six MTD lighting set-ups */
    double s = 0, ss = 0;
    for (size_t i = 0; i < 3 * plane; i++) {
        s += dst[i];
        ss += (double)dst[i] * dst[i];
    }
    double mean = s / (double)(3 * plane);
    double var = ss / (double)(3 * plane) - mean * mean;
    float inv = (float)(1.0 / sqrt(var > 1e-6 ? var : 1e-6));
    for (size_t i = 0; i < 3 * plane; i++)
        dst[i] = (dst[i] - (float)mean) * inv;
    return UAD_OK;
}

/* ---- small image helpers (one plane, clamped borders) ---------------- */

/* out(h/2, w/2) = 2x2 box average of in(h, w); h, w even. */
static void halve(float *out, const float *in, int h, int w) {
    int oh = h / 2, ow = w / 2;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            const float *p = in + (size_t)(2 * y) * w + 2 * x;
            out[(size_t)y * ow + x] = 0.25f * (p[0] + p[1] + p[w] + p[w + 1]);
        }
}

/* out = in (*) k, k is (2r+1)^2, borders clamped. The input is copied
 * once into a border-padded plane (pad) so that the inner loop runs over a row
 * without clamping, across pixels (vectorised); each pixel still sums
 * its taps in the same order, so the result is the same to the bit. */
static void filter2d(float *out, const float *in, const float *k, int r,
                     int h, int w, float *pad) {
    /* pad holds (h + 2r) x (w + 2r) floats */
    int kw = 2 * r + 1, pw = w + 2 * r, ph = h + 2 * r;
    for (int y = 0; y < ph; y++) {
        int yy = y - r < 0 ? 0 : y - r >= h ? h - 1 : y - r;
        const float *src = in + (size_t)yy * w;
        float *d = pad + (size_t)y * pw;
        for (int x = 0; x < pw; x++)
            d[x] = src[x - r < 0 ? 0 : x - r >= w ? w - 1 : x - r];
    }
    for (int y = 0; y < h; y++) {
        float *o = out + (size_t)y * w;
        for (int x = 0; x < w; x++) o[x] = 0.0f;
        for (int dy = 0; dy < kw; dy++) {
            const float *row = pad + (size_t)(y + dy) * pw;
            for (int dx = 0; dx < kw; dx++) {
                float kv = k[dy * kw + dx];
                #pragma omp simd
                for (int x = 0; x < w; x++) o[x] += kv * row[x + dx];
            }
        }
    }
}

/* Separable box mean of radius r, borders clamped. tmp has h * w. */
static void box_mean(float *out, float *tmp, const float *in, int r, int h,
                     int w) {
    float inv = 1.0f / (float)(2 * r + 1);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float acc = 0;
            for (int d = -r; d <= r; d++) {
                int xx = x + d < 0 ? 0 : x + d >= w ? w - 1 : x + d;
                acc += in[(size_t)y * w + xx];
            }
            tmp[(size_t)y * w + x] = acc * inv;
        }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float acc = 0;
            for (int d = -r; d <= r; d++) {
                int yy = y + d < 0 ? 0 : y + d >= h ? h - 1 : y + d;
                acc += tmp[(size_t)yy * w + x];
            }
            out[(size_t)y * w + x] = acc * inv;
        }
}

/* The Gabor bank: 4 orientations, wavelength 4 px, sigma 1.75 px, 7 x 7,
 * real part made zero-mean so flat regions give no energy. */
#define GABOR_R 3
#define GABOR_K (2 * GABOR_R + 1)
static void gabor_kernels(float re[4][GABOR_K * GABOR_K],
                          float im[4][GABOR_K * GABOR_K]) {
    const double lambda = 4.0, sigma = 1.75;
    for (int o = 0; o < 4; o++) {
        double th = M_PI * o / 4.0, mean = 0;
        for (int y = -GABOR_R; y <= GABOR_R; y++)
            for (int x = -GABOR_R; x <= GABOR_R; x++) {
                double u = x * cos(th) + y * sin(th);
                double g = exp(-(x * x + y * y) / (2 * sigma * sigma));
                int i = (y + GABOR_R) * GABOR_K + x + GABOR_R;
                re[o][i] = (float)(g * cos(2 * M_PI * u / lambda));
                im[o][i] = (float)(g * sin(2 * M_PI * u / lambda));
                mean += re[o][i];
            }
        mean /= GABOR_K * GABOR_K;
        for (int i = 0; i < GABOR_K * GABOR_K; i++)
            re[o][i] -= (float)mean;
    }
}

/* ---- the fixed bank ------------------------------------------------ */

/* Features of one level at work side w (grid side w / 2), written to
 * out(G, (w/2)^2). gray and the two chroma planes are at side w.
 * Channels: 0 mean, 1 x - box3(x), 2..5 Gabor energy, 6 gradient
 * magnitude, 7 x - box9(x), 8..9 colour opponents (0 on gray input). */
static void level_features(float *out, const float *gray,
                           const float *chroma, float *work, int w) {
    static const float sob_x[9] = {-1, 0, 1, -2, 0, 2, -1, 0, 1};
    static const float sob_y[9] = {-1, -2, -1, 0, 0, 0, 1, 2, 1};
    float re[4][GABOR_K * GABOR_K], im[4][GABOR_K * GABOR_K];
    size_t n = (size_t)w * w, g = n / 4;
    float *a = work, *b = work + n, *t = work + 2 * n, *f = work + 3 * n;
    float *pad = work + 4 * n; /* (w + 2 GABOR_R)^2 for filter2d */
    gabor_kernels(re, im);

    /* f is one full-resolution feature plane; each is pooled 2x2 */
    memcpy(f, gray, n * sizeof(float));
    halve(out + 0 * g, f, w, w);
    box_mean(a, t, gray, 1, w, w);
    for (size_t i = 0; i < n; i++) f[i] = gray[i] - a[i];
    halve(out + 1 * g, f, w, w);
    for (int o = 0; o < 4; o++) {
        filter2d(a, gray, re[o], GABOR_R, w, w, pad);
        filter2d(b, gray, im[o], GABOR_R, w, w, pad);
        for (size_t i = 0; i < n; i++)
            f[i] = sqrtf(a[i] * a[i] + b[i] * b[i]);
        halve(out + (size_t)(2 + o) * g, f, w, w);
    }
    filter2d(a, gray, sob_x, 1, w, w, pad);
    filter2d(b, gray, sob_y, 1, w, w, pad);
    for (size_t i = 0; i < n; i++) f[i] = 0.25f * sqrtf(a[i] * a[i] + b[i] * b[i]);
    halve(out + 6 * g, f, w, w);
    box_mean(a, t, gray, 4, w, w);
    for (size_t i = 0; i < n; i++) f[i] = gray[i] - a[i];
    halve(out + 7 * g, f, w, w);
    halve(out + 8 * g, chroma, w, w);
    halve(out + 9 * g, chroma + n, w, w);
}

/* Gray and colour-opponent planes of one prepared image, halved down to
 * each level's work side; the level features follow. */
static void fixed_one(float *const *outs, const float *img, int S, float *buf) {
    size_t plane = (size_t)S * S;
    float *gray = buf, *chroma = buf + plane, *g2 = buf + 3 * plane;
    float *c2 = g2 + plane / 4, *work = c2 + plane / 2;
    const float *r = img, *gr = img + plane, *bl = img + 2 * plane;
    for (size_t i = 0; i < plane; i++) {
        gray[i] = (r[i] + gr[i] + bl[i]) * (1.0f / 3.0f);
        chroma[i] = r[i] - gr[i];
        chroma[plane + i] = 0.5f * (r[i] + gr[i]) - bl[i];
    }
    int w = S;
    for (int l = 0; l < UAD_LEVELS; l++) {
        /* halve to side S / (2 << l) */
        halve(g2, gray, w, w);
        halve(c2, chroma, w, w);
        halve(c2 + (size_t)(w / 2) * (w / 2), chroma + (size_t)w * w, w, w);
        w /= 2;
        size_t nn = (size_t)w * w;
        memcpy(gray, g2, nn * sizeof(float));
        memcpy(chroma, c2, 2 * nn * sizeof(float));
        level_features(outs[l], gray, chroma, work, w);
    }
}

void uad_backbone_fixed(uad_acts *a, const uad_model *m, int n) {
    int S = m->size;
    size_t plane = (size_t)S * S;
    /* fixed_one's planes, then level_features' work at side S / 2: four
     * planes and filter2d's padded copy */
    size_t pw = (size_t)S / 2 + 2 * GABOR_R;
    float *buf = malloc(sizeof(float) * (3 * plane + plane / 4 + plane / 2 +
                                         4 * plane / 4 + pw * pw));
    UAD_ASSERT(buf);
    for (int i = 0; i < n; i++) {
        float *outs[UAD_LEVELS];
        for (int l = 0; l < UAD_LEVELS; l++)
            outs[l] = a->gabor[l] + (size_t)i * UAD_GABOR_DIM *
                                        m->grid[l] * m->grid[l];
        fixed_one(outs, a->img + (size_t)i * 3 * plane, S, buf);
    }
    free(buf);
}

/* ---- the trainable stem ------------------------------------------- */

/* conv j: 3 -> 16 at S, 16 -> 32 at S/2, 32 -> 64 at S/4, then 64 -> 64
 * at S/8 and S/16; each ReLU then 2x2 average pool. Pooled outputs of
 * convs 1..4 are the taps of levels 0..3. */
int uad_stem_channels(int j) {
    static const int ch[UAD_LEVELS + 1] = {UAD_STEM_DIM0, 32, 64, 64, 64};
    return ch[j];
}

/* 2x2 average pooling is PyTorch bilinear (align_corners=False) at an
 * exact factor 1/2, so the resize kernels give it with its backward. */
void uad_stem_forward(uad_acts *a, const uad_model *m, int n) {
    int side = m->size, cin = 3;
    const float *x = a->img;
    for (int j = 0; j <= UAD_LEVELS; j++) {
        int co = uad_stem_channels(j);
        size_t cnt = (size_t)n * co * side * side;
        nn_conv2d_forward(a->stem_pre[j], x, uad_pptr(m, m->stem_w[j]),
                          uad_pptr(m, m->stem_b[j]), n, cin, side, side, co,
                          3);
        nn_relu_forward(a->stem_pre[j], a->stem_pre[j], cnt);
        nn_resize_bilinear_forward(a->stem[j], a->stem_pre[j], n * co, side,
                                   side, side / 2, side / 2);
        x = a->stem[j];
        cin = co;
        side /= 2;
    }
}

/* Backward of the stem from the taps' gradients a->gtap[l] (for stem
 * output l + 1), from the coarsest conv back to the first; the image
 * gets no gradient. Uses a->gs0, gs1 and gs2 as scratch. */
void uad_stem_backward(uad_model *m, float *grad, uad_acts *a, int n) {
    int side = m->size >> UAD_LEVELS; /* input side of conv 4 */
    float *dy = a->gtap[UAD_LEVELS - 1];
    for (int j = UAD_LEVELS; j >= 0; j--) {
        int co = uad_stem_channels(j), cin = j ? uad_stem_channels(j - 1) : 3;
        size_t cnt = (size_t)n * co * side * side;
        /* pooled gradient -> pre-pool, then through the ReLU */
        memset(a->gs0, 0, cnt * sizeof(float));
        nn_resize_bilinear_backward(a->gs0, dy, n * co, side, side, side / 2,
                                    side / 2);
        memset(a->gs1, 0, cnt * sizeof(float));
        nn_relu_backward(a->gs1, a->gs0, a->stem_pre[j], cnt);
        /* conv: the input gradient lands on the tap of the previous
         * output (added to what its neck sent); stem output 0 is no tap
         * and collects in gs2; the image gets none */
        float *dx = j >= 2 ? a->gtap[j - 2] : j == 1 ? a->gs2 : NULL;
        if (j == 1)
            memset(a->gs2, 0, (size_t)n * cin * side * side * sizeof(float));
        const float *x = j ? a->stem[j - 1] : a->img;
        nn_conv2d_backward(dx, grad + m->params[m->stem_w[j]].off,
                           grad + m->params[m->stem_b[j]].off, a->gs1, x,
                           uad_pptr(m, m->stem_w[j]), n, cin, side, side, co,
                           3);
        dy = dx;
        side *= 2;
    }
}

/* ---- neck inputs ----------------------------------------------------- */

void uad_backbone_gather(uad_acts *a, const uad_model *m, int n) {
    /* feat[l] aliases gabor or stem, or holds the ViT's maps */
    if (!(uad_has_gabor(m) && uad_has_stem(m))) return;
    for (int l = 0; l < UAD_LEVELS; l++) {
        size_t hw = (size_t)m->grid[l] * m->grid[l];
        size_t gs = UAD_GABOR_DIM * hw;
        size_t ss = (size_t)uad_stem_channels(l + 1) * hw;
        for (int i = 0; i < n; i++) {
            float *d = a->feat[l] + (size_t)i * (gs + ss);
            memcpy(d, a->gabor[l] + i * gs, gs * sizeof(float));
            memcpy(d + gs, a->stem[l + 1] + i * ss, ss * sizeof(float));
        }
    }
}

/* Copy the stem's share of level l's neck-input gradient a->gfeat into
 * a->gtap[l] (the fixed bank's share is dropped: it has no parameters). */
void uad_backbone_scatter_grad(uad_acts *a, const uad_model *m, int n,
                               int l) {
    size_t hw = (size_t)m->grid[l] * m->grid[l];
    size_t gs = uad_has_gabor(m) ? UAD_GABOR_DIM * hw : 0;
    size_t ss = (size_t)uad_stem_channels(l + 1) * hw;
    for (int i = 0; i < n; i++)
        memcpy(a->gtap[l] + i * ss, a->gfeat + (size_t)i * (gs + ss) + gs,
               ss * sizeof(float));
}
