/* test_nn.c - the compute core: exact tiny cases worked by hand, naive
 * double-precision references, finite-difference gradient checks on odd
 * shapes for every backward, and parity with PyTorch 1.13 outputs stored
 * by scripts/make_nn_refs.py in tests/data/nn_refs.bin. */
#include "check.h"
#include "internal.h"
#include "nn.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>

static uad_rng g_rng;

static float *rnd(size_t n, double lo, double hi) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        x[i] = (float)uad_rng_range(&g_rng, lo, hi);
    return x;
}

static float *zeros(size_t n) { return calloc(n, sizeof(float)); }

/* max |a - b| / max(|b|_inf, floor): the error relative to the scale of
 * the reference, printed and returned. */
static double rel_err(const char *what, const float *a, const double *b,
                      size_t n, double floor) {
    double e = 0.0, s = floor;
    for (size_t i = 0; i < n; i++) {
        e = check_max(e, fabs(a[i] - b[i]));
        s = fmax(s, fabs(b[i]));
    }
    printf("  %-34s max abs %.3g  rel %.3g\n", what, e, e / s);
    return e / s;
}

/* ---- finite differences ----
 * Each check defines a scalar L(x) = sum(out * R) for a fixed random R;
 * the backward fed with dout = R must give dL/dx. The forward runs in
 * float, L is summed in double, and the central difference uses a step
 * of 1e-2 (the ops are smooth at that scale; linear ones exactly). */

typedef double (*loss_fn)(void *ctx);

static double fd_check_h(const char *what, float *x, size_t n,
                         const float *grad, loss_fn L, void *ctx, float h) {
    double *num = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = keep + h;
        double lp = L(ctx);
        x[i] = keep - h;
        double lm = L(ctx);
        x[i] = keep;
        num[i] = (lp - lm) / (2.0 * h);
    }
    char name[80];
    snprintf(name, sizeof name, "grad %s", what);
    double e = rel_err(name, grad, num, n, 1e-3);
    free(num);
    return e;
}

static double fd_check(const char *what, float *x, size_t n,
                       const float *grad, loss_fn L, void *ctx) {
    return fd_check_h(what, x, n, grad, L, ctx, 1e-2f);
}

static double dot_d(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* ---- matmul ---- */

static void naive_mm(double *out, const float *a, const float *b, int M,
                     int K, int N, int ta, int tb) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++)
                s += (double)(ta ? a[(size_t)k * M + i] : a[(size_t)i * K + k]) *
                     (tb ? b[(size_t)j * K + k] : b[(size_t)k * N + j]);
            out[(size_t)i * N + j] = s;
        }
}

static void test_matmul(void) {
    printf("matmul\n");
    /* hand case: [1 2 3; 4 5 6] @ [1 0; 0 1; 1 1] = [4 5; 10 11] */
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[4];
    nn_matmul(c, a, b, 2, 3, 2, 0);
    CHECK(c[0] == 4 && c[1] == 5 && c[2] == 10 && c[3] == 11);
    nn_matmul(c, a, b, 2, 3, 2, 1); /* accumulate: doubles it */
    CHECK(c[0] == 8 && c[1] == 10 && c[2] == 20 && c[3] == 22);

    int M = 5, K = 7, N = 3;
    float *A = rnd(M * K, -1, 1), *B = rnd(K * N, -1, 1);
    float *C = rnd(M * N, -1, 1), *C0 = malloc(M * N * sizeof(float));
    double *R = malloc(M * N * sizeof(double));
    memcpy(C0, C, M * N * sizeof(float));
    for (int v = 0; v < 3; v++) {
        int ta = v == 2, tb = v == 1;
        naive_mm(R, A, B, M, K, N, ta, tb);
        for (int i = 0; i < M * N; i++) R[i] += C0[i];
        memcpy(C, C0, M * N * sizeof(float));
        if (v == 0) nn_matmul(C, A, B, M, K, N, 1);
        if (v == 1) nn_matmul_bt(C, A, B, M, K, N, 1);
        if (v == 2) nn_matmul_at(C, A, B, M, K, N, 1);
        const char *nm[3] = {"matmul +=", "matmul_bt +=", "matmul_at +="};
        CHECK(rel_err(nm[v], C, R, M * N, 1e-3) < 1e-6);
    }
    /* more shapes (270) than the primitive cache holds (256): old entries are
     * evicted and re-created, results unchanged */
    float *big = rnd(64, -1, 1), *out = zeros(64);
    for (int i = 0; i < 270; i++)
        nn_matmul(out, big, big, 1 + i % 8, 1 + i / 8 % 8, 1 + i / 64, 0);
    free(big), free(out);
    nn_matmul(C, A, B, M, K, N, 0);
    naive_mm(R, A, B, M, K, N, 0, 0);
    CHECK(rel_err("matmul after cache churn", C, R, M * N, 1e-3) < 1e-6);
    free(A), free(B), free(C), free(C0), free(R);
}

/* ---- linear ---- */

typedef struct {
    float *out, *inp, *w, *b, *R;
    int T, C, OC;
} lin_ctx;

static double lin_loss(void *p) {
    lin_ctx *c = p;
    nn_linear_forward(c->out, c->inp, c->w, c->b, c->T, c->C, c->OC);
    return dot_d(c->out, c->R, (size_t)c->T * c->OC);
}

static void test_linear(void) {
    printf("linear\n");
    lin_ctx c = {0};
    c.T = 5, c.C = 3, c.OC = 4;
    c.inp = rnd(15, -1, 1), c.w = rnd(12, -1, 1), c.b = rnd(4, -1, 1);
    c.R = rnd(20, -1, 1), c.out = zeros(20);
    lin_loss(&c);
    double ref = c.b[1];
    for (int i = 0; i < 3; i++) ref += (double)c.inp[2 * 3 + i] * c.w[1 * 3 + i];
    CHECK_NEAR(c.out[2 * 4 + 1], ref, 1e-6);
    float *di = zeros(15), *dw = zeros(12), *db = zeros(4);
    nn_linear_backward(di, dw, db, c.R, c.inp, c.w, c.T, c.C, c.OC);
    CHECK(fd_check("linear inp", c.inp, 15, di, lin_loss, &c) < 1e-3);
    CHECK(fd_check("linear weight", c.w, 12, dw, lin_loss, &c) < 1e-3);
    CHECK(fd_check("linear bias", c.b, 4, db, lin_loss, &c) < 1e-3);
    free(c.inp), free(c.w), free(c.b), free(c.R), free(c.out);
    free(di), free(dw), free(db);
}

/* ---- convolution ---- */

static void naive_conv(double *out, const float *x, const float *w,
                       const float *b, int N, int C, int H, int W, int OC,
                       int k) {
    int p = k / 2;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++) {
                    double s = b ? b[o] : 0.0;
                    for (int c = 0; c < C; c++)
                        for (int u = 0; u < k; u++)
                            for (int v = 0; v < k; v++) {
                                int y = i + u - p, xx = j + v - p;
                                if (y < 0 || y >= H || xx < 0 || xx >= W)
                                    continue;
                                s += (double)x[((size_t)(n * C + c) * H + y) * W + xx] *
                                     w[((size_t)(o * C + c) * k + u) * k + v];
                            }
                    out[((size_t)(n * OC + o) * H + i) * W + j] = s;
                }
}

typedef struct {
    float *out, *x, *w, *b, *R;
    int N, C, H, W, OC, k;
} conv_ctx;

static double conv_loss(void *p) {
    conv_ctx *c = p;
    nn_conv2d_forward(c->out, c->x, c->w, c->b, c->N, c->C, c->H, c->W,
                      c->OC, c->k);
    return dot_d(c->out, c->R, (size_t)c->N * c->OC * c->H * c->W);
}

static void test_conv_hand(void) {
    printf("conv2d hand cases\n");
    /* 3x3 input 1..9, all-ones 3x3 kernel, zero padding: each output is
     * the sum of its 3x3 neighbourhood, e.g. corner 1+2+4+5 = 12, centre
     * 45; with bias 0.5 added. */
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[9], y[9], b = 0.5f;
    for (int i = 0; i < 9; i++) w[i] = 1;
    const float want[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    nn_conv2d_forward(y, x, w, &b, 1, 1, 3, 3, 1, 3);
    for (int i = 0; i < 9; i++) CHECK_NEAR(y[i], want[i] + 0.5, 1e-6);
    /* a kernel with only its top-left tap set shifts the image down and
     * right by one: out(i, j) = x(i-1, j-1). */
    for (int i = 0; i < 9; i++) w[i] = i == 0 ? 2.0f : 0.0f;
    nn_conv2d_forward(y, x, w, NULL, 1, 1, 3, 3, 1, 3);
    const float shift[9] = {0, 0, 0, 0, 2, 4, 0, 8, 10};
    for (int i = 0; i < 9; i++) CHECK_NEAR(y[i], shift[i], 1e-6);
    /* 1x1 with two input channels: out = 2 x0 - x1 */
    float x2[8] = {1, 2, 3, 4, 10, 20, 30, 40}, w2[2] = {2, -1}, y2[4];
    nn_conv2d_forward(y2, x2, w2, NULL, 1, 2, 2, 2, 1, 1);
    for (int i = 0; i < 4; i++) CHECK_NEAR(y2[i], 2 * x2[i] - x2[4 + i], 1e-6);
}

static void test_conv_k(int k) {
    printf("conv2d k=%d (N=2 C=3 H=5 W=7 OC=4)\n", k);
    conv_ctx c = {0};
    c.N = 2, c.C = 3, c.H = 5, c.W = 7, c.OC = 4, c.k = k;
    size_t nx = 2 * 3 * 35, nw = 4 * 3 * k * k, ny = 2 * 4 * 35;
    c.x = rnd(nx, -1, 1), c.w = rnd(nw, -1, 1), c.b = rnd(4, -1, 1);
    c.R = rnd(ny, -1, 1), c.out = zeros(ny);
    double *ref = malloc(ny * sizeof(double));
    naive_conv(ref, c.x, c.w, c.b, 2, 3, 5, 7, 4, k);
    conv_loss(&c);
    CHECK(rel_err("forward vs naive", c.out, ref, ny, 1e-3) < 1e-6);

    /* gradients start at 1 to check they are added to, not overwritten */
    float *dx = malloc(nx * 4), *dw = malloc(nw * 4), *db = malloc(16);
    for (size_t i = 0; i < nx; i++) dx[i] = 1;
    for (size_t i = 0; i < nw; i++) dw[i] = 1;
    for (size_t i = 0; i < 4; i++) db[i] = 1;
    nn_conv2d_backward(dx, dw, db, c.R, c.x, c.w, 2, 3, 5, 7, 4, k);
    for (size_t i = 0; i < nx; i++) dx[i] -= 1;
    for (size_t i = 0; i < nw; i++) dw[i] -= 1;
    for (size_t i = 0; i < 4; i++) db[i] -= 1;
    CHECK(fd_check("conv inp", c.x, nx, dx, conv_loss, &c) < 1e-3);
    CHECK(fd_check("conv weight", c.w, nw, dw, conv_loss, &c) < 1e-3);
    CHECK(fd_check("conv bias", c.b, 4, db, conv_loss, &c) < 1e-3);
    /* NULL gradients are skipped; a weights-only backward (a first
     * layer) gives the same weight gradient */
    float *dw2 = zeros(nw);
    nn_conv2d_backward(NULL, dw2, NULL, c.R, c.x, c.w, 2, 3, 5, 7, 4, k);
    double e = 0;
    for (size_t i = 0; i < nw; i++) e = check_max(e, fabs(dw2[i] - dw[i]));
    CHECK(e < 1e-5);
    free(dw2);
    free(c.x), free(c.w), free(c.b), free(c.R), free(c.out), free(ref);
    free(dx), free(dw), free(db);
}

/* bf16 runs where oneDNN supports it; elsewhere set_precision must
 * refuse and leave f32 in place. */
static void test_bf16(void) {
    printf("bf16\n");
    uint16_t h[4];
    float v[4] = {1.0f, 1.00390625f, 1.01171875f, -2.5f};
    nn_f32_to_bf16(h, v, 4);
    /* 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7: ties to even (1);
     * 1 + 3 * 2^-8 ties up to 1 + 2^-6. */
    CHECK(h[0] == 0x3f80 && h[1] == 0x3f80 && h[2] == 0x3f82);
    CHECK(h[3] == 0xc020);
    if (nn_set_precision(NN_BF16) != 0) {
        CHECK(nn_get_precision() == NN_F32);
        printf("  bf16 not supported on this CPU: refused, still f32\n");
        return;
    }
    int M = 33, K = 65, N = 17;
    float *A = rnd(M * K, -1, 1), *B = rnd(K * N, -1, 1), *C = zeros(M * N);
    double *R = malloc(M * N * sizeof(double));
    naive_mm(R, A, B, M, K, N, 0, 0);
    nn_matmul(C, A, B, M, K, N, 0);
    /* inputs rounded to 8 bits of mantissa: relative error ~ 2^-8 */
    CHECK(rel_err("bf16 matmul vs f64", C, R, M * N, 1e-3) < 2e-2);
    conv_ctx c = {0};
    size_t ny = 2 * 8 * 9 * 11;
    c.x = rnd(2 * 16 * 99, -1, 1), c.w = rnd(8 * 16 * 9, -1, 1);
    c.out = zeros(ny);
    double *ref = malloc(ny * sizeof(double));
    naive_conv(ref, c.x, c.w, NULL, 2, 16, 9, 11, 8, 3);
    nn_conv2d_forward(c.out, c.x, c.w, NULL, 2, 16, 9, 11, 8, 3);
    CHECK(rel_err("bf16 conv vs f64", c.out, ref, ny, 1e-3) < 2e-2);
    nn_set_precision(NN_F32);
    free(A), free(B), free(C), free(R), free(c.x), free(c.w), free(c.out);
    free(ref);
}

/* ---- linear with packed constant weights ---- */

/* act(x W^T + b) * s (+ prev) in double, as nn_linear_packed_forward
 * documents it. */
static void naive_packed(double *ref, const float *x, const float *w,
                         const float *b, const float *s, const float *prev,
                         int T, int C, int OC, nn_act act) {
    for (int t = 0; t < T; t++)
        for (int o = 0; o < OC; o++) {
            double a = b ? b[o] : 0.0;
            for (int c = 0; c < C; c++)
                a += (double)x[(size_t)t * C + c] * w[(size_t)o * C + c];
            if (act == NN_ACT_GELU) a = 0.5 * a * (1.0 + erf(a / sqrt(2.0)));
            if (act == NN_ACT_QUICK_GELU) a = a / (1.0 + exp(-1.702 * a));
            if (s) a *= s[o];
            if (prev) a += prev[(size_t)t * OC + o];
            ref[(size_t)t * OC + o] = a;
        }
}

/* Every combination of activation, scale and accumulation, three row
 * counts (the packed layout is shared; on AMX in bf16, 291 rows run as
 * 288 and 3), then bf16 where the CPU has it, then f32 again (the f32
 * copy outlives the bf16 packing); the second call reuses the packing.
 * The caller's weight is overwritten with NaN once packed: the handle
 * must hold its own copy. */
static void test_linear_packed(void) {
    printf("linear packed\n");
    enum { TMAX = 291 };
    int C = 37, OC = 29, Ts[3] = {5, 131, TMAX};
    float *w = rnd((size_t)OC * C, -0.5, 0.5), *b = rnd(OC, -1, 1);
    float *s = rnd(OC, 0.1, 2), *x = rnd((size_t)TMAX * C, -2, 2);
    float *prev = rnd((size_t)TMAX * OC, -1, 1), *out = zeros((size_t)TMAX * OC);
    double *ref = malloc(sizeof(double) * TMAX * OC);
    float *wk = malloc(sizeof(float) * (size_t)OC * C); /* the reference's */
    memcpy(wk, w, sizeof(float) * (size_t)OC * C);
    nn_linear_packed *p = nn_linear_pack(w, b, C, OC);
    nn_linear_packed *q = nn_linear_pack(w, NULL, C, OC);
    CHECK(p != NULL && q != NULL);
    for (size_t i = 0; i < (size_t)OC * C; i++) w[i] = NAN;
    for (int pass = 0; pass < 3; pass++) {
        int prec = pass == 1;
        if (prec == 1 && nn_set_precision(NN_BF16) != 0) continue;
        if (pass == 2 && nn_get_precision() == NN_F32) break; /* no bf16 */
        nn_set_precision(prec ? NN_BF16 : NN_F32);
        double tol = prec ? 2e-2 : 1e-5;
        for (int ti = 0; ti < 3; ti++)
            for (int act = 0; act < 3; act++)
                for (int v = 0; v < 4; v++) {
                    int T = Ts[ti], sc = v & 1, acc = v >> 1;
                    nn_linear_packed *h = act == 2 && v == 3 ? q : p;
                    memcpy(out, prev, sizeof(float) * (size_t)T * OC);
                    nn_linear_packed_forward(out, x, h, T, (nn_act)act,
                                             sc ? s : NULL, acc);
                    naive_packed(ref, x, wk, h == p ? b : NULL,
                                 sc ? s : NULL, acc ? prev : NULL, T, C, OC,
                                 (nn_act)act);
                    char what[64];
                    snprintf(what, sizeof what, "%s T%d act%d scale%d acc%d%s",
                             prec ? "bf16" : pass ? "f32 again" : "f32", T,
                             act, sc, acc, h == q ? " nobias" : "");
                    CHECK(rel_err(what, out, ref, (size_t)T * OC, 1e-3) < tol);
                }
    }
    /* bf16 operands given and taken as bf16 (the ViT's bf16 path): the
     * input rounded by nn_f32_to_bf16, the bf16 output widened back */
    if (nn_set_precision(NN_BF16) == 0) {
        int T = TMAX;
        uint16_t *xh = malloc(sizeof *xh * (size_t)T * C);
        uint16_t *oh = malloc(sizeof *oh * (size_t)T * OC);
        nn_f32_to_bf16(xh, x, (size_t)T * C);
        for (int act = 0; act < 3; act++) {
            nn_linear_packed_forward_bf(oh, 1, xh, 1, p, T, (nn_act)act, s, 0);
            for (size_t i = 0; i < (size_t)T * OC; i++) {
                uint32_t u = (uint32_t)oh[i] << 16;
                memcpy(&out[i], &u, 4);
            }
            naive_packed(ref, x, wk, b, s, NULL, T, C, OC, (nn_act)act);
            char what[64];
            snprintf(what, sizeof what, "bf16 in/out T%d act%d", T, act);
            CHECK(rel_err(what, out, ref, (size_t)T * OC, 1e-3) < 2e-2);
            /* bf16 in, f32 out with the residual added */
            memcpy(out, prev, sizeof(float) * (size_t)T * OC);
            nn_linear_packed_forward_bf(out, 0, xh, 1, p, T, (nn_act)act, s,
                                        1);
            naive_packed(ref, x, wk, b, s, prev, T, C, OC, (nn_act)act);
            snprintf(what, sizeof what, "bf16 in, f32 acc T%d act%d", T, act);
            CHECK(rel_err(what, out, ref, (size_t)T * OC, 1e-3) < 2e-2);
        }
        free(xh);
        free(oh);
    }
    nn_set_precision(NN_F32);
    nn_linear_packed_free(p);
    nn_linear_packed_free(q);
    nn_linear_packed_free(NULL);
    free(wk);
    free(w), free(b), free(s), free(x), free(prev), free(out), free(ref);
}

/* ---- batch norm ---- */

typedef struct {
    float *out, *x, *g, *b, *R, *mean, *rstd, *rm, *rv;
    int N, C, HW;
} bn_ctx;

static double bn_loss(void *p) {
    bn_ctx *c = p;
    nn_batchnorm_forward_train(c->out, c->mean, c->rstd, c->rm, c->rv, c->x,
                               c->g, c->b, c->N, c->C, c->HW, 0.1f, 1e-5f);
    return dot_d(c->out, c->R, (size_t)c->N * c->C * c->HW);
}

static void test_batchnorm(void) {
    printf("batchnorm\n");
    /* hand case: one channel 1, 2, 3, 4 (N=2, HW=2): mean 2.5, biased
     * var 1.25, unbiased 5/3; momentum 0.1 from running (0, 1). */
    float x[4] = {1, 2, 3, 4}, y[4], m, r, rm = 0, rv = 1, g = 2, b = 1;
    nn_batchnorm_forward_train(y, &m, &r, &rm, &rv, x, &g, &b, 2, 1, 2,
                               0.1f, 0.0f);
    CHECK_NEAR(m, 2.5, 1e-7);
    CHECK_NEAR(r, 1 / sqrt(1.25), 1e-6);
    CHECK_NEAR(y[0], 2 * (-1.5 / sqrt(1.25)) + 1, 1e-5);
    CHECK_NEAR(rm, 0.25, 1e-7);
    CHECK_NEAR(rv, 0.9 + 0.1 * 5.0 / 3.0, 1e-6);
    /* eval: (x - 0.25) / sqrt(rv) * 2 + 1 */
    nn_batchnorm_forward_eval(y, x, &g, &b, &rm, &rv, 2, 1, 2, 0.0f);
    CHECK_NEAR(y[3], (4 - 0.25) / sqrt(rv) * 2 + 1, 1e-5);

    bn_ctx c = {0};
    c.N = 2, c.C = 3, c.HW = 35;
    size_t n = 2 * 3 * 35;
    c.x = rnd(n, -2, 2), c.g = rnd(3, 0.5, 1.5), c.b = rnd(3, -1, 1);
    c.R = rnd(n, -1, 1), c.out = zeros(n), c.mean = zeros(3);
    c.rstd = zeros(3), c.rm = zeros(3), c.rv = zeros(3);
    bn_loss(&c);
    float *dx = zeros(n), *dg = zeros(3), *db = zeros(3);
    nn_batchnorm_backward(dx, dg, db, c.R, c.x, c.mean, c.rstd, c.g, 2, 3,
                          35);
    CHECK(fd_check("batchnorm inp", c.x, n, dx, bn_loss, &c) < 2e-3);
    CHECK(fd_check("batchnorm gamma", c.g, 3, dg, bn_loss, &c) < 1e-3);
    CHECK(fd_check("batchnorm beta", c.b, 3, db, bn_loss, &c) < 1e-3);
    free(c.x), free(c.g), free(c.b), free(c.R), free(c.out), free(c.mean);
    free(c.rstd), free(c.rm), free(c.rv), free(dx), free(dg), free(db);
}

/* ---- elementwise ---- */

typedef struct {
    int op; /* 0 relu, 1 sigmoid, 2 gelu, 3 quick gelu */
    float *out, *x, *R;
    size_t n;
} ew_ctx;

static double ew_loss(void *p) {
    ew_ctx *c = p;
    if (c->op == 0) nn_relu_forward(c->out, c->x, c->n);
    if (c->op == 1) nn_sigmoid_forward(c->out, c->x, c->n);
    if (c->op == 2) nn_gelu_forward(c->out, c->x, c->n);
    if (c->op == 3) nn_quick_gelu_forward(c->out, c->x, c->n);
    return dot_d(c->out, c->R, c->n);
}

static void test_elementwise(void) {
    printf("elementwise\n");
    float x[4] = {-1, 0, 1, 2}, y[4], d[4] = {0};
    nn_relu_forward(y, x, 4);
    CHECK(y[0] == 0 && y[1] == 0 && y[2] == 1 && y[3] == 2);
    nn_add_forward(y, x, x, 4);
    CHECK(y[0] == -2 && y[3] == 4);
    nn_sigmoid_forward(y, x, 4);
    CHECK_NEAR(y[1], 0.5, 1e-7);
    CHECK_NEAR(y[2], 0.7310585786300049, 1e-7);
    /* GELU(1) = Phi(1) = 0.841344746..., GELU(-1) = -(1 - Phi(1)) */
    nn_gelu_forward(y, x, 4);
    CHECK_NEAR(y[2], 0.8413447460685429, 1e-6);
    CHECK_NEAR(y[0], -0.15865525393145707, 1e-6);
    /* quick GELU(1) = sigmoid(1.702) = 1 / (1 + e^-1.702) */
    nn_quick_gelu_forward(y, x, 4);
    CHECK_NEAR(y[2], 0.8457957, 1e-6);
    CHECK(y[1] == 0);
    nn_relu_forward(y, x, 4);
    float g[4] = {5, 5, 5, 5};
    nn_relu_backward(d, g, y, 4);
    CHECK(d[0] == 0 && d[1] == 0 && d[2] == 5 && d[3] == 5);

    /* a long vector takes the multi-threaded path */
    size_t nl = 100003;
    float *lx = rnd(nl, -4, 4), *ly = zeros(nl), *ld = zeros(nl);
    double *lw = malloc(nl * sizeof(double));
    nn_gelu_forward(ly, lx, nl);
    for (size_t i = 0; i < nl; i++)
        lw[i] = 0.5 * lx[i] * (1 + erf(lx[i] / sqrt(2.0)));
    CHECK(rel_err("gelu n=100003 vs f64", ly, lw, nl, 1e-3) < 1e-6);
    nn_sigmoid_forward(ly, lx, nl);
    nn_sigmoid_backward(ld, lx, ly, nl); /* dout = x */
    for (size_t i = 0; i < nl; i++) {
        double sg = 1 / (1 + exp(-(double)lx[i]));
        lw[i] = lx[i] * sg * (1 - sg);
    }
    /* 1 - s in float loses ~2^-24 / (1 - s) relative near s = 1 */
    CHECK(rel_err("sigmoid' n=100003 vs f64", ld, lw, nl, 1e-3) < 1e-5);
    free(lx), free(ly), free(ld), free(lw);

    const char *names[4] = {"relu", "sigmoid", "gelu", "quick gelu"};
    for (int op = 0; op < 4; op++) {
        ew_ctx c = {op, zeros(40), rnd(40, -3, 3), rnd(40, -1, 1), 40};
        /* keep relu's inputs away from the kink at 0 */
        for (int i = 0; op == 0 && i < 40; i++)
            if (fabsf(c.x[i]) < 0.05f) c.x[i] = 0.5f;
        ew_loss(&c);
        float *dx = zeros(40);
        if (op == 0) nn_relu_backward(dx, c.R, c.out, 40);
        if (op == 1) nn_sigmoid_backward(dx, c.R, c.out, 40);
        if (op == 2) nn_gelu_backward(dx, c.R, c.x, 40);
        if (op == 3) nn_quick_gelu_backward(dx, c.R, c.x, 40);
        CHECK(fd_check(names[op], c.x, 40, dx, ew_loss, &c) < 1e-3);
        free(c.out), free(c.x), free(c.R), free(dx);
    }
}

/* ---- bilinear resize ---- */

typedef struct {
    float *out, *x, *R;
    int NC, H, W, OH, OW;
} rs_ctx;

static double rs_loss(void *p) {
    rs_ctx *c = p;
    nn_resize_bilinear_forward(c->out, c->x, c->NC, c->H, c->W, c->OH,
                               c->OW);
    return dot_d(c->out, c->R, (size_t)c->NC * c->OH * c->OW);
}

static void test_resize(void) {
    printf("resize bilinear\n");
    /* 2x2 -> 3x3, scale 2/3: source rows 0, 0.5, 7/6 -> clamped to the
     * last row (index 1, no neighbour), likewise columns. */
    float x[4] = {1, 2, 3, 4}, y[9];
    const float want[9] = {1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4};
    nn_resize_bilinear_forward(y, x, 1, 2, 2, 3, 3);
    for (int i = 0; i < 9; i++) CHECK_NEAR(y[i], want[i], 1e-6);
    /* 1x4 -> 1x2: scale 2, sources 0.5 and 2.5: pair averages */
    float r[4] = {1, 3, 5, 9}, o[2];
    nn_resize_bilinear_forward(o, r, 1, 1, 4, 1, 2);
    CHECK_NEAR(o[0], 2, 1e-6);
    CHECK_NEAR(o[1], 7, 1e-6);
    /* backward of the 2x2 -> 3x3 case with dout = 1: column weights
     * (1, .5, 0) and (0, .5, 1) sum to 1.5 each way, so every input
     * pixel gathers 1.5 * 1.5 = 2.25. */
    float ones[9], dx[4] = {0};
    for (int i = 0; i < 9; i++) ones[i] = 1;
    nn_resize_bilinear_backward(dx, ones, 1, 2, 2, 3, 3);
    for (int i = 0; i < 4; i++) CHECK_NEAR(dx[i], 2.25, 1e-6);

    int sh[2][4] = {{5, 7, 11, 9}, {9, 11, 5, 4}}; /* up and down */
    for (int t = 0; t < 2; t++) {
        rs_ctx c = {0};
        c.NC = 3, c.H = sh[t][0], c.W = sh[t][1], c.OH = sh[t][2];
        c.OW = sh[t][3];
        size_t ni = 3 * c.H * c.W, no = 3 * c.OH * c.OW;
        c.x = rnd(ni, -1, 1), c.R = rnd(no, -1, 1), c.out = zeros(no);
        float *d = zeros(ni);
        nn_resize_bilinear_backward(d, c.R, 3, c.H, c.W, c.OH, c.OW);
        CHECK(fd_check(t ? "resize down" : "resize up", c.x, ni, d, rs_loss,
                       &c) < 1e-3);
        free(c.x), free(c.R), free(c.out), free(d);
    }
}

/* ---- L2 norm and layer norm ---- */

typedef struct {
    float *out, *aux, *x, *R, *w, *b, *rstd;
    int N, C, HW;
} nrm_ctx;

static double l2_loss(void *p) {
    nrm_ctx *c = p;
    nn_l2norm_forward(c->out, c->aux, c->x, c->N, c->C, c->HW, 1e-12f);
    return dot_d(c->out, c->R, (size_t)c->N * c->C * c->HW);
}

static double ln_loss(void *p) {
    nrm_ctx *c = p;
    nn_layernorm_forward(c->out, c->aux, c->rstd, c->x, c->w, c->b, c->N,
                         c->C, 1e-5f);
    return dot_d(c->out, c->R, (size_t)c->N * c->C);
}

static void test_norms(void) {
    printf("l2norm, layernorm\n");
    /* pixel 0: (3, 4) -> (0.6, 0.8), norm 5; pixel 1: (0, 0) stays 0
     * with the divisor clamped to eps */
    float x[4] = {3, 0, 4, 0}, y[4], nr[2];
    nn_l2norm_forward(y, nr, x, 1, 2, 2, 1e-12f);
    CHECK_NEAR(y[0], 0.6, 1e-7);
    CHECK_NEAR(y[2], 0.8, 1e-7);
    CHECK(y[1] == 0 && y[3] == 0);
    CHECK_NEAR(nr[0], 5, 1e-6);
    /* at (3, 4) with dy = (1, 0): dx = ((1, 0) - 0.6 (0.6, 0.8)) / 5 */
    float dy[4] = {1, 0, 0, 0}, dx[4] = {0};
    nn_l2norm_backward(dx, dy, y, nr, 1, 2, 2);
    CHECK_NEAR(dx[0], 0.64 / 5, 1e-7);
    CHECK_NEAR(dx[2], -0.48 / 5, 1e-7);
    /* layer norm of (1, 2, 3): mean 2, var 2/3 -> (-1.2247, 0, 1.2247) */
    float lx[3] = {1, 2, 3}, ly[3], lm, lr;
    nn_layernorm_forward(ly, &lm, &lr, lx, NULL, NULL, 1, 3, 0.0f);
    CHECK_NEAR(lm, 2, 1e-7);
    CHECK_NEAR(ly[0], -sqrt(1.5), 1e-6);
    CHECK_NEAR(ly[2], sqrt(1.5), 1e-6);

    nrm_ctx c = {0};
    c.N = 2, c.C = 3, c.HW = 35;
    size_t n = 2 * 3 * 35;
    c.x = rnd(n, -1, 1), c.R = rnd(n, -1, 1), c.out = zeros(n);
    c.aux = zeros(70);
    l2_loss(&c);
    float *d = zeros(n);
    nn_l2norm_backward(d, c.R, c.out, c.aux, 2, 3, 35);
    /* a smaller step would be exact; 1e-2 on |x| ~ 0.5 gives a few 1e-4 */
    CHECK(fd_check("l2norm", c.x, n, d, l2_loss, &c) < 3e-3);
    free(d);
    /* HW = 300 spans a full and a partial block of 256 pixels */
    {
        nrm_ctx b = {0};
        b.N = 2, b.C = 3, b.HW = 300;
        size_t m = 1800;
        b.x = rnd(m, -1, 1), b.R = rnd(m, -1, 1), b.out = zeros(m);
        b.aux = zeros(600);
        /* channel 0 in [1, 2] keeps every |x| >= 1, where a step of 1e-2
         * is small against the curvature of x / |x| */
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < 300; i++)
                b.x[k * 900 + i] = 1.0f + fabsf(b.x[k * 900 + i]);
        l2_loss(&b);
        double *want = malloc(m * sizeof(double));
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < 300; i++) {
                double s2 = 0;
                for (int ch = 0; ch < 3; ch++)
                    s2 += pow(b.x[(k * 3 + ch) * 300 + i], 2);
                for (int ch = 0; ch < 3; ch++)
                    want[(k * 3 + ch) * 300 + i] =
                        b.x[(k * 3 + ch) * 300 + i] / sqrt(s2);
            }
        CHECK(rel_err("l2norm HW=300 vs f64", b.out, want, m, 1e-3) < 1e-6);
        float *db = zeros(m);
        nn_l2norm_backward(db, b.R, b.out, b.aux, 2, 3, 300);
        CHECK(fd_check("l2norm HW=300", b.x, m, db, l2_loss, &b) < 3e-3);
        free(b.x), free(b.R), free(b.out), free(b.aux), free(want), free(db);
    }

    c.N = 5, c.C = 7; /* T = 5 tokens of C = 7 */
    c.w = rnd(7, 0.5, 1.5), c.b = rnd(7, -1, 1), c.rstd = zeros(5);
    ln_loss(&c);
    float *di = zeros(35), *dw = zeros(7), *db = zeros(7);
    nn_layernorm_backward(di, dw, db, c.R, c.x, c.aux, c.rstd, c.w, 5, 7);
    CHECK(fd_check("layernorm inp", c.x, 35, di, ln_loss, &c) < 3e-3);
    CHECK(fd_check("layernorm weight", c.w, 7, dw, ln_loss, &c) < 1e-3);
    CHECK(fd_check("layernorm bias", c.b, 7, db, ln_loss, &c) < 1e-3);
    free(c.x), free(c.R), free(c.out), free(c.aux), free(c.w), free(c.b);
    free(c.rstd), free(di), free(dw), free(db);
}

/* ---- cosine logits ---- */

typedef struct {
    float *out, *f, *g, *R, eps;
    int N, C, HW, Y;
} cos_ctx;

static double cos_loss(void *p) {
    cos_ctx *c = p;
    nn_cosine_logits_forward(c->out, c->f, c->g, c->eps, c->N, c->C, c->HW,
                             c->Y);
    return dot_d(c->out, c->R, (size_t)c->N * c->Y * c->HW);
}

static void test_cosine(void) {
    printf("cosine logits\n");
    /* f: 2 channels x 2 pixels, pixel 0 = (1, 0), pixel 1 = (0.6, 0.8);
     * g: y0 = (1, 0), y1 = (0, 1); eps 0.5 doubles the dot products */
    float f[4] = {1, 0.6f, 0, 0.8f}, g[4] = {1, 0, 0, 1}, l[4];
    nn_cosine_logits_forward(l, f, g, 0.5f, 1, 2, 2, 2);
    CHECK_NEAR(l[0], 2, 1e-6);
    CHECK_NEAR(l[1], 1.2, 1e-6);
    CHECK_NEAR(l[2], 0, 1e-6);
    CHECK_NEAR(l[3], 1.6, 1e-6);

    cos_ctx c = {0};
    c.N = 2, c.C = 3, c.HW = 35, c.Y = 4, c.eps = 0.07f;
    c.f = rnd(2 * 3 * 35, -1, 1), c.g = rnd(12, -1, 1);
    c.R = rnd(2 * 4 * 35, -1, 1), c.out = zeros(2 * 4 * 35);
    cos_loss(&c);
    float *df = zeros(210), *dg = zeros(12), deps = 0;
    nn_cosine_logits_backward(df, dg, &deps, c.R, c.f, c.g, c.eps, 2, 3, 35,
                              4);
    /* logits are 1/0.07 = 14x their inputs: a step 1e-2 on them is fine
     * (linear in f and g); eps itself gets a smaller relative step */
    CHECK(fd_check("cosine f", c.f, 210, df, cos_loss, &c) < 1e-3);
    CHECK(fd_check("cosine g", c.g, 12, dg, cos_loss, &c) < 1e-3);
    double e0 = c.eps, h = 1e-4;
    c.eps = (float)(e0 + h);
    double lp = cos_loss(&c);
    c.eps = (float)(e0 - h);
    double lm = cos_loss(&c);
    c.eps = (float)e0;
    double num = (lp - lm) / (2 * h);
    printf("  grad cosine eps: %.6g vs numeric %.6g\n", deps, num);
    CHECK(fabs(deps - num) <= 1e-3 * fabs(num));
    free(c.f), free(c.g), free(c.R), free(c.out), free(df), free(dg);
}

/* ---- losses ---- */

typedef struct {
    int op; /* 0 focal, 1 dice, 2 cross-entropy */
    float *p, *t, *d;
    unsigned char *lab;
    int N, HW, Y;
} loss_ctx;

static double loss_val(void *q) {
    loss_ctx *c = q;
    size_t n = (size_t)c->N * c->HW;
    if (c->op == 0) return nn_focal_loss(NULL, c->p, c->t, n, 2.0f);
    if (c->op == 1) return nn_dice_loss(NULL, c->p, c->t, c->N, c->HW);
    return nn_cross_entropy(c->d, c->p, c->lab, c->N, c->Y, c->HW, 1.0f);
}

static void test_losses(void) {
    printf("focal, dice, cross-entropy\n");
    /* focal at p = 0.5, t = 1: pt = 0.5 + 1e-5 (the reference's
     * smoothing), loss = 0.25 ln 2 to within 2e-5; at p = 0.9 t = 1:
     * 0.01 * -ln 0.9 */
    float p1[2] = {0.5f, 0.9f}, t1[2] = {1, 1};
    CHECK_NEAR(nn_focal_loss(NULL, p1, t1, 1, 2.0f), 0.25 * log(2.0), 2e-5);
    CHECK_NEAR(nn_focal_loss(NULL, p1 + 1, t1, 1, 2.0f), -0.01 * log(0.9),
               2e-6);
    /* dice: p = (1, 0), t = (1, 0) is perfect (loss 0); p = (.5, .5),
     * t = (1, 0): (2 * .5 + 1) / (1 + 1 + 1) = 2/3, loss 1/3 */
    float pa[2] = {1, 0}, pb[2] = {0.5f, 0.5f}, tt[2] = {1, 0};
    CHECK_NEAR(nn_dice_loss(NULL, pa, tt, 1, 2), 0, 1e-7);
    CHECK_NEAR(nn_dice_loss(NULL, pb, tt, 1, 2), 1.0 / 3, 1e-7);
    /* cross-entropy over Y = 2 at logits (0, 0) is ln 2; the ignored
     * pixel (label 0) gets zero gradient and no weight */
    float z[4] = {0, 3, 0, -7}, dz[4] = {9, 9, 9, 9};
    unsigned char lab[2] = {1, 0};
    CHECK_NEAR(nn_cross_entropy(dz, z, lab, 1, 2, 2, 1.0f), log(2.0), 1e-6);
    CHECK(dz[1] == 0 && dz[3] == 0);
    CHECK_NEAR(dz[0], -0.5, 1e-6);
    CHECK_NEAR(dz[2], 0.5, 1e-6);
    unsigned char none[2] = {0, 0};
    CHECK(nn_cross_entropy(dz, z, none, 1, 2, 2, 1.0f) == 0.0f);
    CHECK(dz[0] == 0 && dz[2] == 0);

    for (int op = 0; op < 3; op++) {
        loss_ctx c = {0};
        c.op = op, c.N = 2, c.HW = 35, c.Y = 3;
        size_t n = 70, np = op == 2 ? 210 : 70;
        c.p = rnd(np, op == 2 ? -3 : 0.05, op == 2 ? 3 : 0.95);
        c.t = zeros(n), c.lab = malloc(n), c.d = zeros(np);
        for (size_t i = 0; i < n; i++) {
            c.t[i] = uad_rng_uniform(&g_rng) < 0.3 ? 1.0f : 0.0f;
            c.lab[i] = (unsigned char)uad_rng_below(&g_rng, 4);
        }
        float *g = zeros(np);
        if (op == 0) nn_focal_loss(g, c.p, c.t, n, 2.0f);
        if (op == 1) nn_dice_loss(g, c.p, c.t, 2, 35);
        if (op == 2) nn_cross_entropy(g, c.p, c.lab, 2, 3, 35, 1.0f);
        /* focal's log(pt) bends fast near pt = 0: a step of 2e-3 keeps
         * its O(h^2) error near 3e-4 of the largest gradient (~1e-2);
         * cross-entropy (loss ~1.5, returned as float) needs the larger
         * step so rounding stays small */
        const char *nm[3] = {"focal", "dice", "cross-entropy"};
        float h = op == 2 ? 1e-2f : 2e-3f;
        CHECK(fd_check_h(nm[op], c.p, np, g, loss_val, &c, h) < 2e-3);
        free(c.p), free(c.t), free(c.lab), free(c.d), free(g);
    }
}

/* ---- AdamW ---- */

static void test_adamw(void) {
    printf("adamw\n");
    /* step 1: bias correction makes m_hat = g, v_hat = g^2, so
     * p <- p (1 - lr wd) - lr g / (|g| + eps) */
    float p[2] = {1, -2}, g[2] = {0.5f, -0.25f}, m[2] = {0}, v[2] = {0};
    nn_adamw_step(p, g, m, v, 2, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 1);
    CHECK_NEAR(p[0], 1 * 0.999 - 0.1 * 0.5 / (0.5 + 1e-8), 1e-6);
    CHECK_NEAR(p[1], -2 * 0.999 + 0.1 * 0.25 / (0.25 + 1e-8), 1e-6);
    CHECK_NEAR(m[0], 0.05, 1e-7);
    CHECK_NEAR(v[0], 0.001 * 0.25, 1e-8);
    /* step 2, same gradient, no decay: m = 0.095, v = 0.00049975 and the
     * corrections 0.19 and 0.001999 give m_hat = g, v_hat = g^2 again */
    nn_adamw_step(p, g, m, v, 2, 0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, 2);
    CHECK_NEAR(p[0], 0.899 - 0.1, 1e-5);
    float s[3] = {1, 2, 2};
    CHECK(nn_sum_squares(s, 3) == 9.0);
    nn_scale(s, 3, 0.5f);
    CHECK(s[0] == 0.5f && s[2] == 1.0f);
}

/* ---- parity with PyTorch (tests/data/nn_refs.bin) ---- */

typedef struct {
    char name[64];
    size_t n;
    float *v;
} ref_t;

static ref_t g_refs[128];
static int g_nrefs;

static int refs_load(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    uint32_t len;
    while (g_nrefs < 128 && fread(&len, 4, 1, fp) == 1) {
        ref_t *r = &g_refs[g_nrefs];
        uint32_t nd, d;
        if (len >= sizeof r->name || fread(r->name, 1, len, fp) != len ||
            fread(&nd, 4, 1, fp) != 1 || nd > 8)
            break;
        r->name[len] = 0;
        r->n = 1;
        for (uint32_t i = 0; i < nd; i++) {
            if (fread(&d, 4, 1, fp) != 1) break;
            r->n *= d;
        }
        r->v = malloc(r->n * sizeof(float));
        if (fread(r->v, sizeof(float), r->n, fp) != r->n) break;
        g_nrefs++;
    }
    fclose(fp);
    return g_nrefs;
}

/* The stored tensor `name`; a missing one fails the test run. */
static float *ref(const char *name, size_t n) {
    for (int i = 0; i < g_nrefs; i++)
        if (!strcmp(g_refs[i].name, name)) {
            if (g_refs[i].n != n) break;
            return g_refs[i].v;
        }
    fprintf(stderr, "reference %s (%zu values) missing\n", name, n);
    exit(1);
}

/* Compare n floats against the stored `name`, errors printed. */
static double vs_ref(const char *name, const float *a, size_t n) {
    const float *r = ref(name, n);
    double *rd = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) rd[i] = r[i];
    char label[64];
    snprintf(label, sizeof label, "torch %s", name);
    double e = rel_err(label, a, rd, n, 1e-6);
    free(rd);
    return e;
}

/* tolerances: f32 everywhere, bf16 (inputs rounded to 8-bit mantissas,
 * f32 accumulation) for matmul and convolution when the CPU has it */
static double g_tol_mm = 1e-5;

static void parity_conv(const char *cs, int k, int OC) {
    char nm[6][32];
    const char *t[6] = {"x", "w", "b", "R", "out", ""};
    for (int i = 0; i < 5; i++) snprintf(nm[i], 32, "%s.%s", cs, t[i]);
    size_t nx = 2 * 8 * 99, nw = (size_t)OC * 8 * k * k, ny = 2 * OC * 99;
    float *x = ref(nm[0], nx), *w = ref(nm[1], nw), *b = ref(nm[2], OC);
    float *R = ref(nm[3], ny), *y = zeros(ny);
    float *dx = zeros(nx), *dw = zeros(nw), *db = zeros(OC);
    nn_conv2d_forward(y, x, w, b, 2, 8, 9, 11, OC, k);
    nn_conv2d_backward(dx, dw, db, R, x, w, 2, 8, 9, 11, OC, k);
    snprintf(nm[5], 32, "%s.dx", cs);
    CHECK(vs_ref(nm[4], y, ny) < g_tol_mm);
    CHECK(vs_ref(nm[5], dx, nx) < g_tol_mm);
    snprintf(nm[5], 32, "%s.dw", cs);
    CHECK(vs_ref(nm[5], dw, nw) < g_tol_mm);
    snprintf(nm[5], 32, "%s.db", cs);
    CHECK(vs_ref(nm[5], db, OC) < g_tol_mm);
    free(y), free(dx), free(dw), free(db);
}

static void parity_norms(void) {
    /* batch norm, train mode */
    size_t n = 3 * 5 * 42;
    float *x = ref("bn.x", n), *g = ref("bn.g", 5), *b = ref("bn.b", 5);
    float rm[5], rv[5], mean[5], rstd[5], *y = zeros(n), *dx = zeros(n);
    float dg[5] = {0}, db[5] = {0};
    memcpy(rm, ref("bn.rm0", 5), sizeof rm);
    memcpy(rv, ref("bn.rv0", 5), sizeof rv);
    nn_batchnorm_forward_train(y, mean, rstd, rm, rv, x, g, b, 3, 5, 42,
                               0.1f, 1e-5f);
    nn_batchnorm_backward(dx, dg, db, ref("bn.R", n), x, mean, rstd, g, 3,
                          5, 42);
    CHECK(vs_ref("bn.out", y, n) < 1e-5);
    CHECK(vs_ref("bn.rm1", rm, 5) < 1e-6);
    CHECK(vs_ref("bn.rv1", rv, 5) < 1e-6);
    CHECK(vs_ref("bn.dx", dx, n) < 1e-5);
    CHECK(vs_ref("bn.dg", dg, 5) < 1e-5);
    CHECK(vs_ref("bn.db", db, 5) < 1e-5);
    free(y), free(dx);

    /* L2 normalisation */
    n = 2 * 6 * 35;
    float *l2 = zeros(n), nr[70], *d2 = zeros(n);
    nn_l2norm_forward(l2, nr, ref("l2.x", n), 2, 6, 35, 1e-12f);
    nn_l2norm_backward(d2, ref("l2.R", n), l2, nr, 2, 6, 35);
    CHECK(vs_ref("l2.out", l2, n) < 1e-6);
    CHECK(vs_ref("l2.dx", d2, n) < 1e-5);
    free(l2), free(d2);

    /* layer norm (5, 16) */
    float ly[80], lm[5], lr[5], ldx[80] = {0}, ldw[16] = {0}, ldb[16] = {0};
    float *lx = ref("ln.x", 80), *lw = ref("ln.w", 16);
    nn_layernorm_forward(ly, lm, lr, lx, lw, ref("ln.b", 16), 5, 16, 1e-5f);
    nn_layernorm_backward(ldx, ldw, ldb, ref("ln.R", 80), lx, lm, lr, lw, 5,
                          16);
    CHECK(vs_ref("ln.out", ly, 80) < 1e-5);
    CHECK(vs_ref("ln.dx", ldx, 80) < 1e-5);
    CHECK(vs_ref("ln.dw", ldw, 16) < 1e-5);
    CHECK(vs_ref("ln.db", ldb, 16) < 1e-5);

    /* GELU */
    float gy[64], gd[64] = {0};
    nn_gelu_forward(gy, ref("gelu.x", 64), 64);
    nn_gelu_backward(gd, ref("gelu.R", 64), ref("gelu.x", 64), 64);
    CHECK(vs_ref("gelu.out", gy, 64) < 1e-6);
    CHECK(vs_ref("gelu.dx", gd, 64) < 1e-5);
}

static void parity_resize(const char *cs, int H, int W, int OH, int OW) {
    char a[32], b[32];
    size_t ni = 6 * H * W, no = 6 * OH * OW;
    float *y = zeros(no), *dx = zeros(ni);
    snprintf(a, 32, "%s.x", cs);
    nn_resize_bilinear_forward(y, ref(a, ni), 6, H, W, OH, OW);
    snprintf(a, 32, "%s.R", cs);
    nn_resize_bilinear_backward(dx, ref(a, no), 6, H, W, OH, OW);
    snprintf(a, 32, "%s.out", cs);
    snprintf(b, 32, "%s.dx", cs);
    CHECK(vs_ref(a, y, no) < 1e-6);
    CHECK(vs_ref(b, dx, ni) < 1e-6);
    free(y), free(dx);
}

static void parity_head(void) {
    /* cosine logits */
    size_t nf = 2 * 8 * 35, nl = 2 * 4 * 35;
    float *f = ref("cos.f", nf), *g = ref("cos.g", 32);
    float eps = ref("cos.eps", 1)[0], *l = zeros(nl), *df = zeros(nf);
    float dg[32] = {0}, de = 0;
    nn_cosine_logits_forward(l, f, g, eps, 2, 8, 35, 4);
    nn_cosine_logits_backward(df, dg, &de, ref("cos.R", nl), f, g, eps, 2, 8,
                              35, 4);
    CHECK(vs_ref("cos.out", l, nl) < 1e-5);
    CHECK(vs_ref("cos.df", df, nf) < 1e-5);
    CHECK(vs_ref("cos.dg", dg, 32) < 1e-5);
    CHECK(vs_ref("cos.deps", &de, 1) < 1e-5);
    free(l), free(df);

    /* focal and Dice on a (2, 1, 9, 11) map */
    float *p = ref("focal.p", 198), *t = ref("focal.t", 198);
    float dp[198] = {0}, lf;
    lf = nn_focal_loss(dp, p, t, 198, 2.0f);
    CHECK(vs_ref("focal.loss", &lf, 1) < 1e-6);
    CHECK(vs_ref("focal.dp", dp, 198) < 1e-5);
    memset(dp, 0, sizeof dp);
    lf = nn_dice_loss(dp, p, t, 2, 99);
    CHECK(vs_ref("dice.loss", &lf, 1) < 1e-6);
    CHECK(vs_ref("dice.dp", dp, 198) < 1e-5);

    /* cross-entropy, labels 0..4 with 0 ignored */
    float *z = ref("ce.z", 792), *lf32 = ref("ce.lab", 198), dz[792];
    unsigned char lab[198];
    for (int i = 0; i < 198; i++) lab[i] = (unsigned char)lf32[i];
    lf = nn_cross_entropy(dz, z, lab, 2, 4, 99, 1.0f);
    CHECK(vs_ref("ce.loss", &lf, 1) < 1e-6);
    CHECK(vs_ref("ce.dz", dz, 792) < 1e-5);

    /* two AdamW steps */
    float pr[37], m[37] = {0}, v[37] = {0};
    memcpy(pr, ref("adamw.p0", 37), sizeof pr);
    nn_adamw_step(pr, ref("adamw.g1", 37), m, v, 37, 1e-3f, 0.9f, 0.999f,
                  1e-8f, 0.01f, 1);
    nn_adamw_step(pr, ref("adamw.g2", 37), m, v, 37, 1e-3f, 0.9f, 0.999f,
                  1e-8f, 0.01f, 2);
    CHECK(vs_ref("adamw.p2", pr, 37) < 1e-6);
}

static void test_parity(void) {
    printf("parity with PyTorch 1.13\n");
    int n = refs_load(UAD_SOURCE_DIR "/tests/data/nn_refs.bin");
    CHECK(n >= 70);
    if (n < 70) return;
    float *c = zeros(33 * 17);
    nn_matmul(c, ref("matmul.a", 33 * 65), ref("matmul.b", 65 * 17), 33, 65,
              17, 0);
    CHECK(vs_ref("matmul.out", c, 33 * 17) < g_tol_mm);
    parity_conv("conv3", 3, 6);
    parity_conv("conv1", 1, 5);
    if (nn_set_precision(NN_BF16) == 0) {
        printf("  (bf16 compute, tolerance 3e-2)\n");
        g_tol_mm = 3e-2;
        nn_matmul(c, ref("matmul.a", 33 * 65), ref("matmul.b", 65 * 17), 33,
                  65, 17, 0);
        CHECK(vs_ref("matmul.out", c, 33 * 17) < g_tol_mm);
        parity_conv("conv3", 3, 6);
        parity_conv("conv1", 1, 5);
        nn_set_precision(NN_F32);
        g_tol_mm = 1e-5;
    }
    free(c);
    parity_norms();
    parity_resize("up", 5, 7, 11, 9);
    parity_resize("down", 9, 11, 4, 5);
    parity_head();
    for (int i = 0; i < g_nrefs; i++) free(g_refs[i].v);
}

int main(void) {
    uad_rng_seed(&g_rng, 42);
    nn_set_threads(1);
    CHECK(nn_threads() == 1);
    CHECK(omp_get_max_threads() == 1); /* what oneDNN's OpenMP sees */
    nn_set_threads(0);
    CHECK(nn_threads() >= 1);
    test_matmul();
    test_linear();
    test_conv_hand();
    test_conv_k(3);
    test_conv_k(1);
    test_bf16();
    test_linear_packed();
    test_batchnorm();
    test_elementwise();
    test_resize();
    test_norms();
    test_cosine();
    test_losses();
    test_adamw();
    test_parity();
    nn_release();
    return check_report("test_nn");
}
