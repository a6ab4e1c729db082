/* nn_loss.c - the discriminator head (cosine logits over a temperature),
 * its losses (focal, Dice, cross-entropy) and the AdamW optimiser. */
#include "internal.h"
#include "nn.h"

#include <math.h>

/* ---- cosine logits ---- */

/* g / eps into scratch slot 6: scaling the small (Y, C) operand keeps the
 * big products plain matmuls. */
static float *scaled_g(const float *g, float eps, int Y, int C) {
    size_t n = (size_t)Y * C;
    float *gs = nn_scratch(6, n * sizeof(float));
    for (size_t i = 0; i < n; i++) gs[i] = g[i] / eps;
    return gs;
}

void nn_cosine_logits_forward(float *logits, const float *f,
                              const float *g, float eps, int N, int C,
                              int HW, int Y) {
    /* logits_n(Y, HW) = g(Y, C) @ f_n(C, HW) / eps */
    UAD_ASSERT(N > 0 && C > 0 && HW > 0 && Y > 0 && eps != 0.0f);
    const float *gs = scaled_g(g, eps, Y, C);
    for (int n = 0; n < N; n++)
        nn_matmul(logits + (size_t)n * Y * HW, gs, f + (size_t)n * C * HW,
                  Y, C, HW, 0);
}

void nn_cosine_logits_backward(float *df, float *dg, float *deps,
                               const float *dlogits, const float *f,
                               const float *g, float eps, int N, int C,
                               int HW, int Y) {
    /* With P = sum_n dlogits_n(Y, HW) @ f_n(C, HW)^T, a (Y, C) matrix:
     * dg += P / eps; deps += -sum(g * P) / eps^2;
     * df_n(C, HW) += (g / eps)^T @ dlogits_n. */
    UAD_ASSERT(N > 0 && C > 0 && HW > 0 && Y > 0 && eps != 0.0f);
    if (dg || deps) {
        size_t n = (size_t)Y * C;
        float *P = nn_scratch(7, n * sizeof(float));
        for (int i = 0; i < N; i++)
            nn_matmul_bt(P, dlogits + (size_t)i * Y * HW,
                         f + (size_t)i * C * HW, Y, HW, C, i > 0);
        double s = 0.0;
        for (size_t i = 0; i < n; i++) {
            if (dg) dg[i] += P[i] / eps;
            s += (double)g[i] * P[i];
        }
        if (deps) *deps += (float)(-s / ((double)eps * eps));
    }
    if (!df) return;
    const float *gs = scaled_g(g, eps, Y, C);
    for (int i = 0; i < N; i++)
        nn_matmul_at(df + (size_t)i * C * HW, gs,
                     dlogits + (size_t)i * Y * HW, C, Y, HW, 1);
}

/* ---- focal loss ---- */

/* AnomalyCLIP's FocalLoss (loss.py) applied to the two-class map
 * [1 - p, p] with its defaults (alpha 1, smooth s = 1e-5): the one-hot
 * target is clamped to [s, 1 - s], so with t = target > 0.5,
 *   h1 = t ? 1 - s : s,  h0 = t ? s : 1 - s,
 *   pt = h0 (1 - p) + h1 p + s,
 *   loss = mean_i -(1 - pt)^gamma log(pt). */
float nn_focal_loss(float *dpred, const float *pred, const float *target,
                    size_t n, float gamma) {
    UAD_ASSERT(n > 0);
    const double s = 1e-5;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        int t = target[i] > 0.5f;
        double h1 = t ? 1 - s : s, h0 = t ? s : 1 - s;
        double pt = h0 * (1 - pred[i]) + h1 * pred[i] + s;
        double q = 1 - pt, lp = log(pt), qg = pow(q, gamma);
        sum += -qg * lp;
        if (dpred) {
            /* d/dpt of -(1-pt)^g log pt, times dpt/dp = h1 - h0 */
            double qg1 = gamma == 0 ? 0 : gamma * pow(q, gamma - 1);
            double d = qg1 * lp - qg / pt;
            dpred[i] += (float)(d * (h1 - h0) / (double)n);
        }
    }
    return (float)(sum / (double)n);
}

/* ---- Dice loss ---- */

/* AnomalyCLIP's BinaryDiceLoss: per image n, with smoothing 1,
 *   D_n = (2 sum_i p t + 1) / (sum_i p + sum_i t + 1),
 *   loss = 1 - mean_n D_n. */
float nn_dice_loss(float *dpred, const float *pred, const float *target,
                   int N, size_t HW) {
    UAD_ASSERT(N > 0 && HW > 0);
    double total = 0.0;
    for (int n = 0; n < N; n++) {
        const float *p = pred + (size_t)n * HW, *t = target + (size_t)n * HW;
        double inter = 0.0, sp = 0.0, st = 0.0;
        for (size_t i = 0; i < HW; i++) {
            inter += (double)p[i] * t[i];
            sp += p[i];
            st += t[i];
        }
        double num = 2 * inter + 1, den = sp + st + 1;
        total += num / den;
        if (!dpred) continue;
        /* dD/dp_i = (2 t_i den - num) / den^2; the loss has -1/N of it */
        double k = -1.0 / ((double)N * den * den);
        float *d = dpred + (size_t)n * HW;
        for (size_t i = 0; i < HW; i++)
            d[i] += (float)(k * (2.0 * t[i] * den - num));
    }
    return (float)(1.0 - total / N);
}

/* ---- cross-entropy with ignored pixels ---- */

float nn_cross_entropy(float *dlogits, const float *logits,
                       const unsigned char *labels, int N, int Y, int HW,
                       float scale) {
    /* logits, dlogits (N, Y, HW); labels (N, HW), class y+1 or 0 */
    UAD_ASSERT(N > 0 && Y > 0 && HW > 0);
    size_t count = 0;
    for (size_t i = 0; i < (size_t)N * HW; i++) {
        UAD_ASSERT(labels[i] <= Y);
        count += labels[i] != 0;
    }
    double sum = 0.0;
    float k = count ? scale / (float)count : 0.0f;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < HW; i++) {
            const float *z = logits + (size_t)n * Y * HW + i;
            float *dz = dlogits ? dlogits + (size_t)n * Y * HW + i : NULL;
            int lab = labels[(size_t)n * HW + i];
            if (!lab) {
                if (dz)
                    for (int y = 0; y < Y; y++) dz[(size_t)y * HW] = 0.0f;
                continue;
            }
            float mx = z[0];
            for (int y = 1; y < Y; y++) mx = fmaxf(mx, z[(size_t)y * HW]);
            double se = 0.0;
            for (int y = 0; y < Y; y++) se += exp(z[(size_t)y * HW] - mx);
            sum += log(se) + mx - z[(size_t)(lab - 1) * HW];
            if (!dz) continue;
            for (int y = 0; y < Y; y++) {
                float p = (float)(exp(z[(size_t)y * HW] - mx) / se);
                dz[(size_t)y * HW] = k * (p - (y == lab - 1 ? 1.0f : 0.0f));
            }
        }
    return count ? (float)(sum / (double)count) : 0.0f;
}

/* ---- optimiser ---- */

/* torch.optim.AdamW (single-tensor path of PyTorch 1.13):
 *   p *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). */
void nn_adamw_step(float *param, const float *grad, float *m, float *v,
                   size_t n, float lr, float beta1, float beta2, float eps,
                   float weight_decay, int step) {
    UAD_ASSERT(step >= 1);
    float bc1 = 1.0f - powf(beta1, (float)step);
    float bc2s = sqrtf(1.0f - powf(beta2, (float)step));
    float step_size = lr / bc1, decay = 1.0f - lr * weight_decay;
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        m[i] = beta1 * m[i] + (1.0f - beta1) * g;
        v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
        float p = param[i] * decay;
        param[i] = p - step_size * m[i] / (sqrtf(v[i]) / bc2s + eps);
    }
}

double nn_sum_squares(const float *x, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

void nn_scale(float *x, size_t n, float s) {
    for (size_t i = 0; i < n; i++) x[i] *= s;
}
