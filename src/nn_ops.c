/* nn_ops.c - batch norm, layer norm, L2 normalisation, bilinear resize
 * and elementwise kernels in plain C (loops written to vectorise under
 * -O3 -march=native; large ones split over OpenMP threads). */
#include "internal.h"
#include "nn.h"

#include <math.h>

/* ---- batch norm ---- */

/* Mean and biased variance of channel c over (N, HW), in double so long
 * batches do not lose precision. */
static void channel_stats(double *mean, double *var, const float *inp,
                          int N, int C, int HW, int c) {
    double s = 0.0, ss = 0.0;
    for (int n = 0; n < N; n++) {
        const float *x = inp + ((size_t)n * C + c) * HW;
        float fs = 0.0f;
        for (int i = 0; i < HW; i++) fs += x[i];
        s += fs;
    }
    double m = s / ((double)N * HW);
    for (int n = 0; n < N; n++) {
        const float *x = inp + ((size_t)n * C + c) * HW;
        float fs = 0.0f, mf = (float)m;
        for (int i = 0; i < HW; i++) fs += (x[i] - mf) * (x[i] - mf);
        ss += fs;
    }
    *mean = m;
    *var = ss / ((double)N * HW);
}

void nn_batchnorm_forward_train(float *out, float *mean, float *rstd,
                                float *running_mean, float *running_var,
                                const float *inp, const float *gamma,
                                const float *beta, int N, int C, int HW,
                                float momentum, float eps) {
    /* out, inp (N, C, HW); mean, rstd, running_*, gamma, beta (C).
     * PyTorch: normalise with the biased variance, update running_var
     * with the unbiased one (count / (count - 1)). */
    double cnt = (double)N * HW;
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double m, v;
        channel_stats(&m, &v, inp, N, C, HW, c);
        float r = (float)(1.0 / sqrt(v + eps));
        mean[c] = (float)m;
        rstd[c] = r;
        if (running_mean)
            running_mean[c] = (1 - momentum) * running_mean[c] +
                              momentum * (float)m;
        if (running_var) {
            double unb = cnt > 1 ? v * cnt / (cnt - 1) : v;
            running_var[c] = (1 - momentum) * running_var[c] +
                             momentum * (float)unb;
        }
        float a = r * (gamma ? gamma[c] : 1.0f);
        float b = (beta ? beta[c] : 0.0f) - (float)m * a;
        for (int n = 0; n < N; n++) {
            const float *x = inp + ((size_t)n * C + c) * HW;
            float *y = out + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) y[i] = x[i] * a + b;
        }
    }
}

void nn_batchnorm_forward_eval(float *out, const float *inp,
                               const float *gamma, const float *beta,
                               const float *running_mean,
                               const float *running_var, int N, int C,
                               int HW, float eps) {
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float a = (gamma ? gamma[c] : 1.0f) / sqrtf(running_var[c] + eps);
        float b = (beta ? beta[c] : 0.0f) - running_mean[c] * a;
        for (int n = 0; n < N; n++) {
            const float *x = inp + ((size_t)n * C + c) * HW;
            float *y = out + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) y[i] = x[i] * a + b;
        }
    }
}

void nn_batchnorm_backward(float *dinp, float *dgamma, float *dbeta,
                           const float *dout, const float *inp,
                           const float *mean, const float *rstd,
                           const float *gamma, int N, int C, int HW) {
    /* With xhat = (x - mean) * rstd and M = N * HW:
     * dbeta = sum dy, dgamma = sum dy * xhat,
     * dx = gamma * rstd / M * (M dy - dbeta - xhat * dgamma). */
    double M = (double)N * HW;
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float m = mean[c], r = rstd[c];
        double sdy = 0.0, sdyx = 0.0;
        for (int n = 0; n < N; n++) {
            const float *x = inp + ((size_t)n * C + c) * HW;
            const float *dy = dout + ((size_t)n * C + c) * HW;
            float a = 0.0f, b = 0.0f;
            for (int i = 0; i < HW; i++) {
                a += dy[i];
                b += dy[i] * (x[i] - m) * r;
            }
            sdy += a, sdyx += b;
        }
        if (dbeta) dbeta[c] += (float)sdy;
        if (dgamma) dgamma[c] += (float)sdyx;
        if (!dinp) continue;
        float g = gamma ? gamma[c] : 1.0f;
        float k = (float)(g * r / M);
        float fm = (float)M, fsdy = (float)sdy, fsdyx = (float)sdyx;
        for (int n = 0; n < N; n++) {
            const float *x = inp + ((size_t)n * C + c) * HW;
            const float *dy = dout + ((size_t)n * C + c) * HW;
            float *dx = dinp + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) {
                float xh = (x[i] - m) * r;
                dx[i] += k * (fm * dy[i] - fsdy - xh * fsdyx);
            }
        }
    }
}

/* ---- elementwise ---- */

/* Long loops are split over threads; short ones stay serial. */
#define PAR_MIN 65536

void nn_relu_forward(float *out, const float *inp, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void nn_relu_backward(float *dinp, const float *dout, const float *out,
                      size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        dinp[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}

void nn_add_forward(float *out, const float *a, const float *b, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void nn_sigmoid_forward(float *out, const float *inp, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = 1.0f / (1.0f + expf(-inp[i]));
}

void nn_sigmoid_backward(float *dinp, const float *dout, const float *out,
                         size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
}

/* GELU, erf form: x * Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2. */
void nn_gelu_forward(float *out, const float *inp, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        out[i] = 0.5f * inp[i] * (1.0f + erff(inp[i] * (float)M_SQRT1_2));
}

/* d/dx x Phi(x) = Phi(x) + x phi(x), phi the standard normal density. */
void nn_gelu_backward(float *dinp, const float *dout, const float *inp,
                      size_t n) {
    const float k = 0.3989422804014327f; /* 1 / sqrt(2 pi) */
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + erff(x * (float)M_SQRT1_2));
        dinp[i] += dout[i] * (cdf + x * k * expf(-0.5f * x * x));
    }
}

/* Quick GELU (OpenAI CLIP): x * sigmoid(1.702 x). */
void nn_quick_gelu_forward(float *out, const float *inp, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        out[i] = inp[i] / (1.0f + expf(-1.702f * inp[i]));
}

/* d/dx x s(a x) = s + a x s (1 - s), a = 1.702. */
void nn_quick_gelu_backward(float *dinp, const float *dout,
                            const float *inp, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-1.702f * inp[i]));
        dinp[i] += dout[i] * (s + 1.702f * inp[i] * s * (1.0f - s));
    }
}

/* ---- bilinear resize (PyTorch, align_corners=False) ---- */

/* Source coordinate of output index o, as PyTorch computes it in float:
 * s = (o + 0.5) * in / out - 0.5, clamped at 0; the taps are i0 and
 * i1 = min(i0 + 1, in - 1) with weight l1 on i1. */
static inline void src_tap(int *i0, int *i1, float *l1, int o, int in,
                           float scale) {
    float s = scale * ((float)o + 0.5f) - 0.5f;
    if (s < 0.0f) s = 0.0f;
    int i = (int)s;
    if (i > in - 1) i = in - 1;
    *i0 = i;
    *i1 = i + (i < in - 1 ? 1 : 0);
    *l1 = s - (float)i;
}

/* Column taps of an in -> out resize, computed once per call (the same
 * values src_tap gives per element). NULL when out of memory. */
typedef struct {
    int *i0, *i1;
    float *l1;
} col_taps;

static int col_taps_init(col_taps *t, int out, int in, float scale) {
    t->i0 = malloc(sizeof(int) * (size_t)out);
    t->i1 = malloc(sizeof(int) * (size_t)out);
    t->l1 = malloc(sizeof(float) * (size_t)out);
    if (!t->i0 || !t->i1 || !t->l1) {
        free(t->i0), free(t->i1), free(t->l1);
        return -1;
    }
    for (int o = 0; o < out; o++)
        src_tap(&t->i0[o], &t->i1[o], &t->l1[o], o, in, scale);
    return 0;
}

static void col_taps_free(col_taps *t) {
    free(t->i0), free(t->i1), free(t->l1);
}

void nn_resize_bilinear_forward(float *out, const float *inp, int NC,
                                int H, int W, int OH, int OW) {
    /* out(NC, OH, OW), inp(NC, H, W) */
    UAD_ASSERT(NC > 0 && H > 0 && W > 0 && OH > 0 && OW > 0);
    float sh = (float)H / (float)OH, sw = (float)W / (float)OW;
    col_taps ct;
    UAD_ASSERT(col_taps_init(&ct, OW, W, sw) == 0);
    #pragma omp parallel for schedule(static)
    for (int p = 0; p < NC; p++) {
        const float *x = inp + (size_t)p * H * W;
        float *y = out + (size_t)p * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            int h0, h1;
            float lh;
            src_tap(&h0, &h1, &lh, oh, H, sh);
            const float *r0 = x + (size_t)h0 * W, *r1 = x + (size_t)h1 * W;
            for (int ow = 0; ow < OW; ow++) {
                int w0 = ct.i0[ow], w1 = ct.i1[ow];
                float lw = ct.l1[ow];
                float top = (1 - lw) * r0[w0] + lw * r0[w1];
                float bot = (1 - lw) * r1[w0] + lw * r1[w1];
                y[(size_t)oh * OW + ow] = (1 - lh) * top + lh * bot;
            }
        }
    }
    col_taps_free(&ct);
}

void nn_resize_bilinear_backward(float *dinp, const float *dout, int NC,
                                 int H, int W, int OH, int OW) {
    /* dinp(NC, H, W) += the transpose of the forward's interpolation */
    UAD_ASSERT(NC > 0 && H > 0 && W > 0 && OH > 0 && OW > 0);
    float sh = (float)H / (float)OH, sw = (float)W / (float)OW;
    col_taps ct;
    UAD_ASSERT(col_taps_init(&ct, OW, W, sw) == 0);
    #pragma omp parallel for schedule(static)
    for (int p = 0; p < NC; p++) {
        float *dx = dinp + (size_t)p * H * W;
        const float *dy = dout + (size_t)p * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            int h0, h1;
            float lh;
            src_tap(&h0, &h1, &lh, oh, H, sh);
            float *r0 = dx + (size_t)h0 * W, *r1 = dx + (size_t)h1 * W;
            for (int ow = 0; ow < OW; ow++) {
                int w0 = ct.i0[ow], w1 = ct.i1[ow];
                float lw = ct.l1[ow];
                float g = dy[(size_t)oh * OW + ow];
                float g0 = (1 - lh) * g, g1 = lh * g;
                r0[w0] += (1 - lw) * g0;
                r0[w1] += lw * g0;
                r1[w0] += (1 - lw) * g1;
                r1[w1] += lw * g1;
            }
        }
    }
    col_taps_free(&ct);
}

/* ---- L2 normalisation over channels (F.normalize(x, dim=1)) ---- */

/* Pixels are processed in blocks of L2_BLOCK (all channels of a block
 * stay in cache between the two passes); blocks run in parallel. */
#define L2_BLOCK 256

void nn_l2norm_forward(float *out, float *norm, const float *inp, int N,
                       int C, int HW, float eps) {
    /* out, inp (N, C, HW); norm (N, HW) = max(|x| over C, eps), the
     * divisor actually used, which is what the backward needs */
    int nb = (HW + L2_BLOCK - 1) / L2_BLOCK;
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < N * nb; t++) {
        int n = t / nb, i0 = t % nb * L2_BLOCK;
        int len = HW - i0 < L2_BLOCK ? HW - i0 : L2_BLOCK;
        const float *x = inp + (size_t)n * C * HW + i0;
        float *y = out + (size_t)n * C * HW + i0;
        float *nr = norm + (size_t)n * HW + i0;
        float acc[L2_BLOCK] = {0};
        for (int c = 0; c < C; c++) {
            const float *xc = x + (size_t)c * HW;
            for (int i = 0; i < len; i++) acc[i] += xc[i] * xc[i];
        }
        for (int i = 0; i < len; i++) nr[i] = fmaxf(sqrtf(acc[i]), eps);
        for (int i = 0; i < len; i++) acc[i] = 1.0f / nr[i];
        for (int c = 0; c < C; c++)
            for (int i = 0; i < len; i++)
                y[(size_t)c * HW + i] = x[(size_t)c * HW + i] * acc[i];
    }
}

void nn_l2norm_backward(float *dinp, const float *dout, const float *out,
                        const float *norm, int N, int C, int HW) {
    /* y = x / |x|: dx = (dy - y <dy, y>) / |x|. Where the norm was
     * clamped to eps, y = x / eps is linear and dx = dy / eps; such a
     * pixel has |y|^2 < 1, so |y|^2 < 0.999 marks it (|x| within 0.05%
     * below eps is treated as unclamped: the two formulas meet there). */
    int nb = (HW + L2_BLOCK - 1) / L2_BLOCK;
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < N * nb; t++) {
        int n = t / nb, i0 = t % nb * L2_BLOCK;
        int len = HW - i0 < L2_BLOCK ? HW - i0 : L2_BLOCK;
        size_t off = (size_t)n * C * HW + i0;
        const float *y = out + off, *dy = dout + off;
        const float *nr = norm + (size_t)n * HW + i0;
        float *dx = dinp + off;
        float dot[L2_BLOCK] = {0}, yy[L2_BLOCK] = {0};
        for (int c = 0; c < C; c++)
            for (int i = 0; i < len; i++) {
                float v = y[(size_t)c * HW + i];
                dot[i] += dy[(size_t)c * HW + i] * v;
                yy[i] += v * v;
            }
        for (int i = 0; i < len; i++) {
            if (yy[i] < 0.999f) dot[i] = 0.0f;
            yy[i] = 1.0f / nr[i];
        }
        for (int c = 0; c < C; c++)
            for (int i = 0; i < len; i++) {
                size_t j = (size_t)c * HW + i;
                dx[j] += (dy[j] - y[j] * dot[i]) * yy[i];
            }
    }
}

/* ---- layer norm over the last dimension ---- */

void nn_layernorm_forward(float *out, float *mean, float *rstd,
                          const float *inp, const float *weight,
                          const float *bias, int T, int C, float eps) {
    /* out, inp (T, C); mean, rstd (T); weight, bias (C) */
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        float *y = out + (size_t)t * C;
        float s = 0.0f, v = 0.0f;
        for (int i = 0; i < C; i++) s += x[i];
        float m = s / C;
        for (int i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
        float r = 1.0f / sqrtf(v / C + eps);
        for (int i = 0; i < C; i++) {
            float h = (x[i] - m) * r;
            y[i] = h * (weight ? weight[i] : 1.0f) + (bias ? bias[i] : 0.0f);
        }
        mean[t] = m;
        rstd[t] = r;
    }
}

void nn_layernorm_backward(float *dinp, float *dweight, float *dbias,
                           const float *dout, const float *inp,
                           const float *mean, const float *rstd,
                           const float *weight, int T, int C) {
    /* dxhat = dy * w; dx = rstd * (dxhat - mean(dxhat)
     *                              - xhat * mean(dxhat * xhat)) */
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C, *dy = dout + (size_t)t * C;
        float m = mean[t], r = rstd[t];
        float a = 0.0f, b = 0.0f;
        for (int i = 0; i < C; i++) {
            float xh = (x[i] - m) * r;
            float dxh = dy[i] * (weight ? weight[i] : 1.0f);
            a += dxh;
            b += dxh * xh;
            if (dweight) dweight[i] += dy[i] * xh;
            if (dbias) dbias[i] += dy[i];
        }
        a /= C, b /= C;
        if (!dinp) continue;
        float *dx = dinp + (size_t)t * C;
        for (int i = 0; i < C; i++) {
            float xh = (x[i] - m) * r;
            float dxh = dy[i] * (weight ? weight[i] : 1.0f);
            dx[i] += r * (dxh - a - xh * b);
        }
    }
}
