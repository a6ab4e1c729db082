/* bench_metrics.c - time P-AUROC and AUPRO on many pixels.
 *
 *     bench_metrics [images [auroc|aupro|both]]
 *
 * Default: 200 maps of 400 x 250 = 20 M pixels, both metrics. Run one
 * metric alone to see its own peak memory.
 *
 * Maps are random: each gt holds 0-3 discs, scores are uniform noise
 * plus 0.3 on anomalous pixels, rounded to 1/4096 so that ties occur.
 * Prints seconds per metric and the peak resident set size (getrusage),
 * which includes the inputs themselves (5 bytes a pixel). */
#include "internal.h"

#include <math.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum { W = 400, H = 250 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024; /* ru_maxrss is in KiB on Linux */
}

/* One random map and gt, both W x H. */
static void make_map(float *m, uint8_t *g, uad_rng *r) {
    int nd = (int)uad_rng_below(r, 4);
    memset(g, 0, (size_t)W * H);
    for (int d = 0; d < nd; d++) {
        int cx = (int)uad_rng_below(r, W), cy = (int)uad_rng_below(r, H);
        int rad = 3 + (int)uad_rng_below(r, 30);
        for (int y = cy - rad; y <= cy + rad; y++)
            for (int x = cx - rad; x <= cx + rad; x++)
                if (x >= 0 && x < W && y >= 0 && y < H &&
                    (x - cx) * (x - cx) + (y - cy) * (y - cy) <= rad * rad)
                    g[y * W + x] = 1;
    }
    for (int i = 0; i < W * H; i++) {
        double s = uad_rng_uniform(r) + 0.3 * g[i];
        m[i] = (float)(floor(s * 4096) / 4096);
    }
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 200;
    const char *which = argc > 2 ? argv[2] : "both";
    bool roc = strcmp(which, "aupro") != 0, pro = strcmp(which, "auroc") != 0;
    if (n < 1 || n > 100000 || (!roc && !pro) ||
        (strcmp(which, "both") && strcmp(which, "auroc") &&
         strcmp(which, "aupro"))) {
        fprintf(stderr, "usage: bench_metrics [images 1..100000 "
                "[auroc|aupro|both]]\n");
        return 2;
    }
    size_t npx = (size_t)W * H;
    float *m = malloc(n * npx * sizeof *m);
    uint8_t *g = malloc(n * npx);
    uad_map_gt *it = malloc(n * sizeof *it);
    if (!m || !g || !it) {
        fprintf(stderr, "bench_metrics: out of memory\n");
        return 7;
    }
    uad_rng r;
    uad_rng_seed(&r, 1);
    for (size_t i = 0; i < n; i++) {
        make_map(m + i * npx, g + i * npx, &r);
        it[i] = (uad_map_gt){m + i * npx, g + i * npx, W, H};
    }
    size_t na = 0;
    for (size_t i = 0; i < n * npx; i++) na += g[i];
    printf("%zu maps of %d x %d = %.1f M pixels (%.1f%% anomalous), inputs "
           "%.0f MiB, peak RSS %.0f MiB\n", n, W, H, n * npx / 1e6,
           100.0 * na / (n * npx), n * npx * 5 / 1048576.0, peak_rss_mib());

    double v, t0;
    int rc = 1, rc2 = 1;
    if (roc) {
        t0 = now_s();
        rc = uad_pixel_auroc(it, n, &v);
        printf("P-AUROC   %.6f (rc %d) in %.2f s, peak RSS %.0f MiB\n", v,
               rc, now_s() - t0, peak_rss_mib());
    }
    if (pro) {
        t0 = now_s();
        rc2 = uad_aupro(it, n, 0.3, &v);
        printf("AUPRO@0.3 %.6f (rc %d) in %.2f s, peak RSS %.0f MiB\n", v,
               rc2, now_s() - t0, peak_rss_mib());
    }
    free(m);
    free(g);
    free(it);
    return rc == 1 && rc2 == 1 ? 0 : 1;
}
