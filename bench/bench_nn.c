/* bench_nn.c - GFLOP/s of the compute core's matmul and 3x3 convolution
 * (forward, backward data + weights) in f32 and, where the CPU allows,
 * bf16; plus this machine's measured FMA peak and the peak RSS.
 *
 * Usage: bench_nn [reps [filter]]   (default 5 reps, the median is
 * reported; with a filter only the cases whose name contains it run)
 * Output: one tab-separated line per case,
 *   case  precision  median_ms  GFLOP/s
 * with the measured peak on a "peak" line; bench/nn.sh joins it with
 * bench/torch_nn.py's identical lines. */
#include "nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *rnd(size_t n) {
    float *x = malloc(n * sizeof(float));
    if (!x) {
        fprintf(stderr, "bench_nn: out of memory\n");
        exit(1);
    }
    unsigned s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        x[i] = (float)((s >> 9) & 0xffff) / 65536.0f - 0.5f;
    }
    return x;
}

/* ---- the FMA peak: 12 independent FMA chains per thread ---- */

#if defined(__AVX512F__)
#include <immintrin.h>
typedef __m512 vec;
#define VLEN 16
#define VSET(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VFIRST(v) _mm512_cvtss_f32(v)
#elif defined(__FMA__)
#include <immintrin.h>
typedef __m256 vec;
#define VLEN 8
#define VSET(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VFIRST(v) _mm256_cvtss_f32(v)
#endif

/* GFLOP/s of pure register FMAs on all threads (0 without FMA). */
static double fma_peak(void) {
#ifdef VLEN
    const long iters = 50000000;
    double best = 0.0;
    for (int r = 0; r < 3; r++) {
        double t = now(), sink = 0.0;
        #pragma omp parallel reduction(+ : sink)
        {
            vec acc[12], m = VSET(0.999999f), a = VSET(1e-7f);
            for (int j = 0; j < 12; j++) acc[j] = VSET((float)j);
            for (long i = 0; i < iters; i++)
                for (int j = 0; j < 12; j++) acc[j] = VFMA(acc[j], m, a);
            for (int j = 0; j < 12; j++) sink += VFIRST(acc[j]);
        }
        t = now() - t;
        double fl = 2.0 * VLEN * 12 * (double)iters * nn_threads();
        if (sink != 0.5 && fl / t > best) best = fl / t;
    }
    return best / 1e9;
#else
    return 0.0;
#endif
}

/* ---- timing helpers ---- */

typedef void (*bench_fn)(void *ctx);

static const char *g_filter = "";

static int wanted(const char *name) { return strstr(name, g_filter) != NULL; }

/* Median seconds of `reps` runs after one warm-up (which builds the
 * cached primitives). */
static double median_time(bench_fn f, void *ctx, int reps) {
    double *t = malloc((size_t)reps * sizeof(double));
    f(ctx);
    for (int i = 0; i < reps; i++) {
        double t0 = now();
        f(ctx);
        t[i] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_d);
    double m = t[reps / 2];
    free(t);
    return m;
}

static void report(const char *name, const char *prec, double sec,
                   double flops) {
    printf("%s\t%s\t%.2f\t%.1f\n", name, prec, sec * 1e3,
           flops / sec / 1e9);
    fflush(stdout);
}

/* ---- matmul ---- */

typedef struct {
    float *a, *b, *c;
    int M, K, N;
} mm_ctx;

static void run_mm(void *p) {
    mm_ctx *c = p;
    nn_matmul(c->c, c->a, c->b, c->M, c->K, c->N, 0);
}

static void bench_mm(int M, int K, int N, const char *prec, int reps) {
    char name[64];
    snprintf(name, sizeof name, "matmul_%dx%dx%d", M, K, N);
    if (!wanted(name)) return;
    mm_ctx c = {rnd((size_t)M * K), rnd((size_t)K * N),
                rnd((size_t)M * N), M, K, N};
    report(name, prec, median_time(run_mm, &c, reps), 2.0 * M * K * N);
    free(c.a), free(c.b), free(c.c);
}

/* ---- linear layer with constant (pre-packed) weights ---- */

typedef struct {
    float *x, *b, *y;
    nn_linear_packed *p;
    int T;
} lin_ctx;

static void run_lin(void *p) {
    lin_ctx *c = p;
    nn_linear_packed_forward(c->y, c->x, c->p, c->T, NN_ACT_NONE, NULL, 0);
}

static void bench_linear(int T, int C, int OC, const char *prec, int reps) {
    char name[64];
    snprintf(name, sizeof name, "linear_const_%dx%dx%d", T, C, OC);
    if (!wanted(name)) return;
    float *w = rnd((size_t)OC * C);
    lin_ctx c = {rnd((size_t)T * C), rnd(OC), rnd((size_t)T * OC), NULL, T};
    c.p = nn_linear_pack(w, c.b, C, OC);
    report(name, prec, median_time(run_lin, &c, reps), 2.0 * T * C * OC);
    nn_linear_packed_free(c.p);
    free(w), free(c.x), free(c.b), free(c.y);
}

/* ---- 3x3 convolution ---- */

typedef struct {
    float *x, *w, *b, *y, *dy, *dx, *dw, *db;
    int N, C, H, W, OC;
} cv_ctx;

static void run_fwd(void *p) {
    cv_ctx *c = p;
    nn_conv2d_forward(c->y, c->x, c->w, c->b, c->N, c->C, c->H, c->W, c->OC,
                      3);
}

static void run_bwd(void *p) {
    cv_ctx *c = p;
    nn_conv2d_backward(c->dx, c->dw, c->db, c->dy, c->x, c->w, c->N, c->C,
                       c->H, c->W, c->OC, 3);
}

static void bench_conv(int N, int C, int H, int W, const char *prec,
                       int reps) {
    char name[80];
    snprintf(name, sizeof name, "conv3x3_fwdbwd_N%d_C%d_%dx%d", N, C, H, W);
    if (!wanted(name)) return;
    size_t nx = (size_t)N * C * H * W, nw = (size_t)C * C * 9;
    cv_ctx c = {rnd(nx), rnd(nw), rnd(C), rnd(nx), rnd(nx),
                rnd(nx), rnd(nw), rnd(C), N, C, H, W, C};
    double fl = 2.0 * N * C * C * 9.0 * H * W; /* one pass */
    double tf = median_time(run_fwd, &c, reps);
    double tb = median_time(run_bwd, &c, reps);
    snprintf(name, sizeof name, "conv3x3_fwd_N%d_C%d_%dx%d", N, C, H, W);
    report(name, prec, tf, fl);
    snprintf(name, sizeof name, "conv3x3_bwd_N%d_C%d_%dx%d", N, C, H, W);
    report(name, prec, tb, 2 * fl);
    snprintf(name, sizeof name, "conv3x3_fwdbwd_N%d_C%d_%dx%d", N, C, H, W);
    report(name, prec, tf + tb, 3 * fl);
    free(c.x), free(c.w), free(c.b), free(c.y), free(c.dy), free(c.dx);
    free(c.dw), free(c.db);
}

/* ---- memory-bound kernels at a discriminator shape ---- */

typedef struct {
    float *x, *y, *dy, *dx, *g, *b, *m, *r, *rm, *rv, *nrm, *small;
    int N, C, HW;
} ew_ctx;

static void run_bn(void *p) {
    ew_ctx *c = p;
    nn_batchnorm_forward_train(c->y, c->m, c->r, c->rm, c->rv, c->x, c->g,
                               c->b, c->N, c->C, c->HW, 0.1f, 1e-5f);
}

static void run_bn_bwd(void *p) {
    ew_ctx *c = p;
    nn_batchnorm_backward(c->dx, c->g, c->b, c->dy, c->x, c->m, c->r, c->g,
                          c->N, c->C, c->HW);
}

static void run_l2(void *p) {
    ew_ctx *c = p;
    nn_l2norm_forward(c->y, c->nrm, c->x, c->N, c->C, c->HW, 1e-12f);
}

static void run_l2_bwd(void *p) {
    ew_ctx *c = p;
    nn_l2norm_backward(c->dx, c->dy, c->y, c->nrm, c->N, c->C, c->HW);
}

static void run_up(void *p) { /* (H/2, W/2) -> (H, W), H = W = sqrt(HW) */
    ew_ctx *c = p;
    int h = 1;
    while (h * h < c->HW) h++;
    nn_resize_bilinear_forward(c->y, c->small, c->N * c->C, h / 2, h / 2, h,
                               h);
}

static void run_up_bwd(void *p) {
    ew_ctx *c = p;
    int h = 1;
    while (h * h < c->HW) h++;
    nn_resize_bilinear_backward(c->small, c->dy, c->N * c->C, h / 2, h / 2,
                                h, h);
}

static void run_relu(void *p) {
    ew_ctx *c = p;
    nn_relu_forward(c->y, c->x, (size_t)c->N * c->C * c->HW);
}

static void bench_memory(int N, int C, int H, int reps) {
    if (!wanted("memory")) return;
    size_t n = (size_t)N * C * H * H;
    ew_ctx c = {rnd(n), rnd(n), rnd(n), rnd(n), rnd(C), rnd(C), rnd(C),
                rnd(C), rnd(C), rnd(C), rnd((size_t)N * H * H), rnd(n / 4),
                N, C, H * H};
    for (int i = 0; i < C; i++) c.rv[i] = 1.0f;
    struct {
        const char *name;
        bench_fn f;
    } k[] = {{"batchnorm_fwd", run_bn}, {"batchnorm_bwd", run_bn_bwd},
             {"l2norm_fwd", run_l2},    {"l2norm_bwd", run_l2_bwd},
             {"resize2x_fwd", run_up},  {"resize2x_bwd", run_up_bwd},
             {"relu_fwd", run_relu}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        char name[80];
        snprintf(name, sizeof name, "%s_N%d_C%d_%dx%d", k[i].name, N, C, H,
                 H);
        printf("%s\tf32\t%.2f\t-\n", name,
               median_time(k[i].f, &c, reps) * 1e3);
    }
    free(c.x), free(c.y), free(c.dy), free(c.dx), free(c.g), free(c.b);
    free(c.m), free(c.r), free(c.rm), free(c.rv), free(c.nrm), free(c.small);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (reps < 1) reps = 1;
    if (argc > 2) g_filter = argv[2];
    nn_set_threads(0);
    printf("# threads %d\n", nn_threads());
    if (wanted("peak")) printf("peak\tf32\t0\t%.1f\n", fma_peak());
    for (int p = 0; p < 2; p++) {
        const char *prec = p ? "bf16" : "f32";
        if (nn_set_precision(p ? NN_BF16 : NN_F32) != 0) {
            printf("# bf16: not supported by oneDNN on this CPU\n");
            continue;
        }
        bench_mm(1024, 1024, 1024, prec, reps);
        bench_mm(4096, 768, 768, prec, reps);
        bench_linear(1024, 768, 3072, prec, reps);
        bench_conv(8, 256, 64, 64, prec, reps);
        bench_conv(8, 128, 128, 128, prec, reps);
    }
    nn_set_precision(NN_F32);
    bench_memory(8, 256, 64, reps);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("# peak RSS %.1f MB\n", ru.ru_maxrss / 1024.0);
    nn_release();
    return 0;
}
