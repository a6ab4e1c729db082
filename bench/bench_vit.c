/* bench_vit.c - one ViT forward (f32) timed on a checkpoint folder, for
 * bench/vit.sh: loads DIR (a DINOv2-layout model), reads the input
 * DIR/pix_SIZE.bin (3, SIZE, SIZE raw f32), runs REPS forwards after a
 * warm-up and prints
 *   vit_b16_SIZE  f32  median_ms
 *   # peak RSS N MB
 * and writes the final-normed tokens to DIR/ours_SIZE.bin so that the
 * PyTorch side can compare (DIR/ours_SIZE_bf16.bin with bf16 compute).
 * Usage: bench_vit DIR SIZE [REPS [THREADS [f32|bf16]]] */
#include "nn.h"
#include "vit.h"

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

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr,
                "usage: bench_vit DIR SIZE [REPS [THREADS [f32|bf16 "
                "[auto|unfused|fused-f32|vdpbf16ps|amx]]]]\n"
                "  the last: the attention kernel (default auto)\n");
        return 2;
    }
    const char *dir = argv[1];
    int S = atoi(argv[2]), reps = argc > 3 ? atoi(argv[3]) : 3;
    nn_set_threads(argc > 4 ? atoi(argv[4]) : 2);
    if (S < 16 || S > 4096 || reps < 1 || reps > 100) return 2;
    int bf16 = argc > 5 && !strcmp(argv[5], "bf16");
    if (bf16 && nn_set_precision(NN_BF16) != 0) {
        printf("vit_b16_%d\tbf16\tunsupported\n", S);
        return 0;
    }
    const char *prec = bf16 ? "bf16" : "f32";
    static const char *const kernels[] = {"auto", "unfused", "fused-f32",
                                          "vdpbf16ps", "amx"};
    const char *kname = argc > 6 ? argv[6] : "auto";
    int kernel = -1;
    for (int k = 0; k < 5; k++)
        if (!strcmp(kname, kernels[k])) kernel = k;
    if (kernel < 0) {
        fprintf(stderr, "bench_vit: unknown attention kernel '%s' (auto, "
                "unfused, fused-f32, vdpbf16ps or amx)\n", kname);
        return 2;
    }
    if (nn_set_attn_kernel((nn_attn_kernel)kernel) != 0) {
        printf("vit_b16_%d\t%s\t%s unsupported\n", S, prec, kname);
        return 0;
    }
    uad_vit *v;
    if (uad_vit_load(&v, UAD_VIT_DINOV2, dir) != UAD_OK) {
        fprintf(stderr, "bench_vit: %s\n", uad_last_error());
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/pix_%d.bin", dir, S);
    float *pix = malloc(sizeof(float) * 3 * S * S);
    FILE *f = fopen(path, "rb");
    if (!pix || !f || fread(pix, sizeof(float), 3 * S * S, f) != 3u * S * S) {
        fprintf(stderr, "bench_vit: cannot read %s\n", path);
        return 1;
    }
    fclose(f);
    uad_vit_info in;
    uad_vit_get_info(v, &in);
    size_t T = 1 + (size_t)(S / in.patch) * (S / in.patch);
    float *last = malloc(sizeof(float) * T * in.hidden);

    double ts[100];
    vit_forward(v, NULL, last, pix, S, S); /* warm-up: primitive caches */
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        vit_forward(v, NULL, last, pix, S, S);
        ts[r] = now() - t0;
    }
    qsort(ts, (size_t)reps, sizeof(double), cmp_d);
    printf("vit_b16_%d\t%s%s%s\t%.1f\n", S, prec, kernel ? " attention " : "",
           kernel ? kname : "", 1e3 * ts[reps / 2]);
    /* matmul FLOPs: patch embedding, then per block qkv, attention
     * (q k^T and s v), output projection and the MLP */
    double C = in.hidden, M = in.mlp_hidden, t = (double)T;
    double np = (double)(S / in.patch) * (S / in.patch);
    double fl = 2.0 * np * 3.0 * in.patch * in.patch * C +
                in.layers * (2.0 * t * C * 3.0 * C + 4.0 * t * t * C +
                             2.0 * t * C * C + 4.0 * t * C * M);
    printf("# matmul GFLOP %.1f, %.1f GFLOP/s\n", fl / 1e9,
           fl / 1e9 / ts[reps / 2]);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("# peak RSS %.1f MB\n", ru.ru_maxrss / 1024.0);

    snprintf(path, sizeof path, "%s/ours_%d%s.bin", dir, S,
             bf16 ? "_bf16" : "");
    f = fopen(path, "wb");
    if (f) {
        fwrite(last, sizeof(float), T * in.hidden, f);
        fclose(f);
    }
    free(last);
    free(pix);
    uad_vit_free(v);
    return 0;
}
