/* test_metrics.c - AUROC, AUPRO, accuracy and mIoU: hand-worked cases,
 * properties, an independent rank-sum count, and sklearn / scipy reference
 * values from scripts/make_metric_refs.py (tests/data/metrics_ref.txt). */
#include "check.h"
#include "internal.h"

#define REL_AUROC 1e-9
#define REL_AUPRO 1e-6

/* |a - b| <= rel * max(|b|, tiny), NaN matching NaN. */
#define CHECK_REL(a, b, rel)                                               \
    do {                                                                   \
        double ra_ = (a), rb_ = (b);                                       \
        if (isnan(rb_)) CHECK(isnan(ra_));                                 \
        else CHECK_NEAR(ra_, rb_, (rel) * fmax(fabs(rb_), 1e-300));        \
    } while (0)

/* ---- hand-worked AUROC ----------------------------------------------- */

static void test_auroc_hand(void) {
    double v;
    /* Positives 0.35, 0.8; negatives 0.1, 0.4. Pairs ranked right:
     * 0.35>0.1, 0.8>0.1, 0.8>0.4; wrong: 0.35<0.4. 3 / 4 = 0.75. */
    const float s1[] = {0.1f, 0.4f, 0.35f, 0.8f};
    const uint8_t l1[] = {0, 0, 1, 1};
    CHECK(uad_auroc(s1, l1, 4, &v) == 1);
    CHECK_NEAR(v, 0.75, 1e-15);
    /* All tied: every pair counts half, 0.5. */
    const float s2[] = {3, 3, 3, 3, 3};
    const uint8_t l2[] = {1, 0, 0, 1, 0};
    CHECK(uad_auroc(s2, l2, 5, &v) == 1);
    CHECK_NEAR(v, 0.5, 1e-15);
    /* Positives 0.5, 0.9; negatives 0.5, 0.2: 0.5 vs 0.5 tie (1/2),
     * 0.5 > 0.2 (1), 0.9 beats both (2): 3.5 / 4 = 0.875. */
    const float s3[] = {0.5f, 0.5f, 0.2f, 0.9f};
    const uint8_t l3[] = {1, 0, 0, 1};
    CHECK(uad_auroc(s3, l3, 4, &v) == 1);
    CHECK_NEAR(v, 0.875, 1e-15);
    /* -0 and +0 tie (0.5); infinities rank at the ends (1). Labels are
     * any non-zero byte. */
    const float s4[] = {-0.0f, 0.0f};
    const uint8_t l4[] = {7, 0};
    CHECK(uad_auroc(s4, l4, 2, &v) == 1);
    CHECK_NEAR(v, 0.5, 1e-15);
    const float s5[] = {-INFINITY, INFINITY, -1e38f, 1e38f};
    const uint8_t l5[] = {0, 1, 0, 1};
    CHECK(uad_auroc(s5, l5, 4, &v) == 1);
    CHECK_NEAR(v, 1.0, 1e-15);
    /* One class only, or nothing: undefined. */
    CHECK(uad_auroc(s1, l2, 1, &v) == 0 && isnan(v));
    CHECK(uad_auroc(s1, l1, 2, &v) == 0 && isnan(v));
    CHECK(uad_auroc(NULL, NULL, 0, &v) == 0 && isnan(v));
    /* Bad input. */
    const float s6[] = {0.1f, NAN, 0.3f};
    CHECK(uad_auroc(s6, l1, 3, &v) == -1 && isnan(v));
    CHECK_STR_CONTAINS(uad_last_error(), "score 1 is NaN");
    CHECK(uad_auroc(NULL, l1, 3, &v) == -1);
    CHECK_STR_CONTAINS(uad_last_error(), "NULL");
}

/* Reference AUROC through average ranks (qsort, the textbook rank-sum
 * formula): U = sum of positive ranks - np (np + 1) / 2. */
typedef struct { float s; uint8_t l; } sl_pair;
static int cmp_sl(const void *a, const void *b) {
    float x = ((const sl_pair *)a)->s, y = ((const sl_pair *)b)->s;
    return (x > y) - (x < y);
}
static double auroc_ranks(const float *s, const uint8_t *l, size_t n) {
    sl_pair *p = malloc(n * sizeof *p);
    double rsum = 0, np = 0;
    for (size_t i = 0; i < n; i++) p[i] = (sl_pair){s[i], l[i]};
    qsort(p, n, sizeof *p, cmp_sl);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && p[j].s == p[i].s) j++;
        double rank = (i + 1 + j) / 2.0; /* mean of ranks i+1 .. j */
        for (size_t k = i; k < j; k++)
            if (p[k].l) rsum += rank, np++;
        i = j;
    }
    free(p);
    return (rsum - np * (np + 1) / 2) / (np * (double)(n - np));
}

/* Random bit patterns (all exponents, both signs, infinities, denormals)
 * with repeated values, against the rank-sum count; then the same pixels
 * as maps through uad_pixel_auroc. */
static void test_auroc_ranks(void) {
    enum { N = 60000 };
    float *s = malloc(N * sizeof *s);
    uint8_t *l = malloc(N);
    uad_rng r;
    uad_rng_seed(&r, 5);
    for (size_t i = 0; i < N; i++) {
        uint32_t u = (uint32_t)uad_rng_u64(&r);
        float f;
        memcpy(&f, &u, sizeof f);
        if (isnan(f) || i % 5 == 0) f = (float)uad_rng_below(&r, 40) - 20;
        if (i % 997 == 0) f = (i & 1) ? INFINITY : -0.0f;
        s[i] = f;
        l[i] = uad_rng_uniform(&r) < 0.3 + 0.4 * (f > 0);
    }
    double v, w;
    CHECK(uad_auroc(s, l, N, &v) == 1);
    CHECK_REL(v, auroc_ranks(s, l, N), 1e-12);
    uad_map_gt items[3] = {{s, l, 100, 200}, {s + 20000, l + 20000, 0, 5},
                           {s + 20000, l + 20000, 400, 100}};
    CHECK(uad_pixel_auroc(items, 3, &w) == 1);
    CHECK(w == v);
    free(s);
    free(l);
}

/* A strictly increasing transform keeps the ranking, hence the value,
 * exactly: no sigmoid or clipping hides inside. Scores on a k/64 grid in
 * [-8, 8] stay distinct under both transforms. */
static void test_auroc_invariance(void) {
    enum { N = 3000 };
    float s[N], a[N], b[N];
    uint8_t l[N];
    uad_rng r;
    uad_rng_seed(&r, 11);
    for (int i = 0; i < N; i++) {
        s[i] = ((float)uad_rng_below(&r, 1025) - 512) / 64;
        l[i] = uad_rng_uniform(&r) < 0.2 + 0.05 * (s[i] + 8);
        a[i] = 1000 * s[i] - 7;
        b[i] = expf(s[i]);
    }
    double v, va, vb;
    CHECK(uad_auroc(s, l, N, &v) == 1);
    CHECK(uad_auroc(a, l, N, &va) == 1);
    CHECK(uad_auroc(b, l, N, &vb) == 1);
    CHECK(v == va && v == vb);
    CHECK(v > 0.6 && v < 0.95); /* informative, not a degenerate case */
    CHECK_REL(v, auroc_ranks(s, l, N), 1e-12);
}

/* ---- hand-worked AUPRO ----------------------------------------------- */

static void test_aupro_hand(void) {
    double v;
    /* 3x3, gt pixels (x,y) = (0,0), (1,0), (2,1): (1,0) and (2,1) touch
     * at a corner, so 8-connectivity sees ONE region of 3 pixels (4-
     * connectivity would see {2 px} + {1 px}). Scores: (2,1) = 0.9, the
     * other two 0.1, the 6 normal pixels 0.5.
     * Points: t=0.9 (0, 1/3); t=0.5 (1, 1/3); t=0.1 (1, 1).
     * Area on [0, 0.3] = 0.3 * 1/3, / 0.3 = 1/3 (two regions: 1/2). */
    const float m1[] = {0.1f, 0.1f, 0.5f, 0.5f, 0.5f, 0.9f,
                        0.5f, 0.5f, 0.5f};
    const uint8_t g1[] = {1, 1, 0, 0, 0, 1, 0, 0, 0};
    uad_map_gt it1 = {m1, g1, 3, 3};
    CHECK(uad_aupro(&it1, 1, 0.3, &v) == 1);
    CHECK_NEAR(v, 1.0 / 3, 1e-12);

    /* Perfect map: (0,0) -> (0,1) -> (1,1), area 1. Inverted: (0,0) ->
     * (1,0) -> (1,1), nothing under the curve before FPR 1. */
    const float m2[] = {1, 0, 0, 1, 0, 0}, m3[] = {0, 1, 1, 0, 1, 1};
    const uint8_t g2[] = {1, 0, 0, 1, 0, 0};
    uad_map_gt it2 = {m2, g2, 3, 2}, it3 = {m3, g2, 3, 2};
    CHECK(uad_aupro(&it2, 1, 0.3, &v) == 1);
    CHECK_NEAR(v, 1.0, 1e-15);
    CHECK(uad_aupro(&it3, 1, 0.3, &v) == 1);
    CHECK_NEAR(v, 0.0, 1e-15);

    /* Interpolation at 0.3. 12 x 1: one region x = 0..1, 10 normals.
     * Scores: x0 = 0.9, x1 = 0.8; normals 0.95 (x2), 0.8 (x3..x5), 0.1.
     * Points: t=0.95 (0.1, 0); t=0.9 (0.1, 0.5); t=0.8 (0.4, 1) - the
     * tie enters together; t=0.1 (1, 1).
     * Cut at 0.3: y = 0.5 + 0.5 * 0.2 / 0.3 = 5/6; area = 0.2 * (0.5 +
     * 5/6) / 2 = 2/15; / 0.3 = 4/9. Limit 1: 0.3 * 1.5 / 2 + 0.6 * 1 =
     * 0.825. Limit 0.1 ends on the vertical segment at 0.1: area 0. */
    const float m4[] = {0.9f, 0.8f, 0.95f, 0.8f, 0.8f, 0.8f,
                        0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f};
    const uint8_t g4[12] = {1, 1};
    uad_map_gt it4 = {m4, g4, 12, 1};
    CHECK(uad_aupro(&it4, 1, 0.3, &v) == 1);
    CHECK_NEAR(v, 4.0 / 9, 1e-12);
    CHECK(uad_aupro(&it4, 1, 1.0, &v) == 1);
    CHECK_NEAR(v, 0.825, 1e-12);
    CHECK(uad_aupro(&it4, 1, 0.1, &v) == 1);
    CHECK_NEAR(v, 0.0, 1e-15);

    /* The mean runs over regions, not pixels, and across maps: region A
     * (1 px, map 1) at 0.9, region B (3 px, map 2) at 0.2, the 4 normals
     * at 0.5. Points (0, 1/2), (1, 1/2), (1, 1): AUPRO 1/2 (per pixel it
     * would be 1/4). */
    const float m5[] = {0.9f, 0.5f, 0.5f}, m6[] = {0.2f, 0.2f, 0.2f, 0.5f,
                                                   0.5f};
    const uint8_t g5[] = {1, 0, 0}, g6[] = {1, 1, 1, 0, 0};
    uad_map_gt it56[2] = {{m5, g5, 3, 1}, {m6, g6, 5, 1}};
    CHECK(uad_aupro(it56, 2, 0.3, &v) == 1);
    CHECK_NEAR(v, 0.5, 1e-12);

    /* Undefined and bad input. */
    uad_map_gt only_normal = {m4 + 6, g4 + 6, 6, 1}, only_anom = {m4, g4, 2, 1};
    CHECK(uad_aupro(&only_normal, 1, 0.3, &v) == 0 && isnan(v));
    CHECK(uad_aupro(&only_anom, 1, 0.3, &v) == 0 && isnan(v));
    CHECK(uad_aupro(NULL, 0, 0.3, &v) == 0 && isnan(v));
    CHECK(uad_aupro(&it4, 1, 0.0, &v) == -1 && isnan(v));
    CHECK_STR_CONTAINS(uad_last_error(), "fpr_limit");
    CHECK(uad_aupro(&it4, 1, 1.5, &v) == -1);
    uad_map_gt neg = {m4, g4, -1, 3}, null = {NULL, g4, 2, 2};
    CHECK(uad_aupro(&neg, 1, 0.3, &v) == -1);
    CHECK_STR_CONTAINS(uad_last_error(), "negative size");
    CHECK(uad_pixel_auroc(&null, 1, &v) == -1 && isnan(v));
    const float m7[] = {0.5f, NAN};
    uad_map_gt nan_it[2] = {it4, {m7, g4, 2, 1}};
    CHECK(uad_aupro(nan_it, 2, 0.3, &v) == -1);
    CHECK_STR_CONTAINS(uad_last_error(), "map 1, pixel 1: score is NaN");
}

/* Labelling stress. Each shape below must come out as ONE region: a
 * lone pixel (second region) scores 1, the shape 0, normals 0.5, so the
 * points are (0, 1/2), (1, 1/2), (1, 1) and AUPRO = 1/2. Were the shape
 * split into k regions, PRO after t = 1 would be 1 / (k + 1) instead. */
static void test_aupro_regions(void) {
    enum { W = 31, H = 17 };
    static float m[W * H];
    static uint8_t g[W * H];
    double v;
    /* A checkerboard: connected through corners only. */
    memset(g, 0, sizeof g);
    size_t board = 0;
    for (int y = 0; y < H; y++)
        for (int x = 2; x < W; x++)
            if ((x + y) % 2 == 0) g[y * W + x] = 1, board++;
    /* Pixel (0, 0) alone: the second region (column 1 is normal). */
    g[0] = 1;
    for (int i = 0; i < W * H; i++) m[i] = g[i] ? 0.0f : 0.5f;
    m[0] = 1.0f;
    uad_map_gt it = {m, g, W, H};
    CHECK(uad_aupro(&it, 1, 0.3, &v) == 1);
    CHECK_NEAR(v, 0.5, 1e-12);
    CHECK(board > 200);
    /* Three prongs joined only by the bottom row: a raster scan meets
     * them as three labels and must merge them there. */
    memset(g, 0, sizeof g);
    for (int y = 0; y < H; y++) g[y * W + 3] = g[y * W + 9] = g[y * W + 15] = 1;
    for (int x = 3; x <= 15; x++) g[(H - 1) * W + x] = 1;
    g[5] = 1; /* separate region at (5, 0) */
    for (int i = 0; i < W * H; i++) m[i] = g[i] ? 0.0f : 0.5f;
    m[5] = 1.0f;
    CHECK(uad_aupro(&it, 1, 0.3, &v) == 1);
    CHECK_NEAR(v, 0.5, 1e-12);
}

/* ---- classification -------------------------------------------------- */

static char g_last_warning[256];
static void capture_log(uad_log_level level, const char *msg, void *user) {
    if (level == UAD_LOG_WARN)
        snprintf(g_last_warning, sizeof g_last_warning, "%s", msg);
}

static void test_classification_hand(void) {
    double v;
    /* conf = [[3, 1], [2, 4]] (rows true, columns predicted).
     * Accuracy (3 + 4) / 10 = 0.7. IoU0 = 3 / (3 + 1 + 2) = 1/2,
     * IoU1 = 4 / (4 + 2 + 1) = 4/7; mIoU = (1/2 + 4/7) / 2 = 15/28. */
    const uint64_t c2[] = {3, 1, 2, 4};
    CHECK(uad_accuracy(c2, 2, &v) == 1);
    CHECK_NEAR(v, 0.7, 1e-15);
    CHECK(uad_miou(c2, 2, &v) == 1);
    CHECK_NEAR(v, 15.0 / 28, 1e-15);
    /* Class 2 never true nor predicted: left out with a warning naming
     * it; class 1 is predicted but never true: IoU 0 and kept.
     * conf = [[5, 1, 0], [0, 0, 0], [0, 0, 0]]: IoU0 = 5/6, IoU1 = 0,
     * mIoU = 5/12. */
    const uint64_t c3[] = {5, 1, 0, 0, 0, 0, 0, 0, 0};
    size_t w0 = uad_log_warning_count();
    uad_log_set(capture_log, NULL, UAD_LOG_WARN);
    CHECK(uad_miou(c3, 3, &v) == 1);
    CHECK_NEAR(v, 5.0 / 12, 1e-15);
    CHECK(uad_log_warning_count() == w0 + 1);
    CHECK_STR_CONTAINS(g_last_warning, "class 2");
    /* All empty: undefined, one warning per class. */
    const uint64_t z[4] = {0};
    CHECK(uad_miou(z, 2, &v) == 0 && isnan(v));
    CHECK(uad_log_warning_count() == w0 + 3);
    uad_log_set(NULL, NULL, UAD_LOG_WARN);
    CHECK(uad_accuracy(z, 2, &v) == 0 && isnan(v));
    CHECK(uad_accuracy(c2, 0, &v) == -1 && isnan(v));
    CHECK(uad_miou(NULL, 2, &v) == -1);
    const uint64_t huge[] = {UINT64_MAX, 1, 0, 0};
    CHECK(uad_accuracy(huge, 2, &v) == -1);
    CHECK_STR_CONTAINS(uad_last_error(), "overflow");
}

/* ---- reference file -------------------------------------------------- */

/* murmur3's 32-bit finalizer, and h2 as in make_metric_refs.py. */
static uint32_t fmix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x85EBCA6Bu;
    x ^= x >> 13;
    x *= 0xC2B2AE35u;
    x ^= x >> 16;
    return x;
}
static uint32_t h2(uint32_t a, uint32_t b) { return fmix32(fmix32(a) + b); }

/* Map `idx` of a synth case: the formula of synth_maps() in
 * scripts/make_metric_refs.py (discs, a diagonal, hashed integer noise
 * divided by 64). m (w x h), g (w x h). */
static void synth_map(float *m, uint8_t *g, int idx, int w, int h, int salt) {
    uint32_t s = (uint32_t)(salt * 64 + idx);
    memset(g, 0, (size_t)w * h);
    if (idx % 4 != 3) {
        int nd = 1 + (int)(h2(s, 999) % 3);
        for (int d = 0; d < nd; d++) {
            int cx = (int)(h2(s, 3 * d) % (uint32_t)w);
            int cy = (int)(h2(s, 3 * d + 1) % (uint32_t)h);
            int r = 2 + (int)(h2(s, 3 * d + 2) % 12);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r)
                        g[y * w + x] = 1;
        }
    }
    if (idx % 4 == 1)
        for (int x = 10; x < 40; x++) g[(x - 5) * w + x] = 1;
    for (int i = 0; i < w * h; i++) {
        int k = (int)(h2(s + 65536, (uint32_t)i) % 512) + 200 * g[i] - 256;
        m[i] = (float)k / 64.0f;
    }
}

static char *next_tok(char **save) { return strtok_r(NULL, " \t\r\n", save); }
static double tok_double(char **save) {
    char *t = next_tok(save);
    return t ? strtod(t, NULL) : NAN;
}
static long tok_long(char **save) {
    char *t = next_tok(save);
    return t ? strtol(t, NULL, 10) : -1;
}

/* Compare one metric to its reference ('nan' = must be undefined). */
static void check_ref(const char *cs, const char *what, int ret, double got,
                      double want, double rel) {
    printf("  %-12s %-9s got %.15f want %.15f rel err %.2g\n", cs, what, got,
           want, fabs(got - want) / fmax(fabs(want), 1e-300));
    if (isnan(want)) {
        CHECK(ret == 0 && isnan(got));
        return;
    }
    CHECK(ret == 1);
    CHECK_REL(got, want, rel);
}

/* Metrics of maps + image scores against an "expect" record. */
static void check_maps_ref(char **save, const char *cs, uad_map_gt *it,
                           int nmaps, const float *img) {
    static const double limits[3] = {0.3, 0.05, 1.0};
    static const char *names[3] = {"AUPRO@0.3", "AUPRO@.05", "AUPRO@1"};
    uint8_t *lab = calloc((size_t)nmaps, 1);
    double v;
    for (int i = 0; i < nmaps; i++)
        for (int k = 0; k < it[i].w * it[i].h; k++) lab[i] |= it[i].gt[k] != 0;
    char *t = next_tok(save);
    CHECK(t && !strcmp(t, "expect"));
    int r = uad_auroc(img, lab, (size_t)nmaps, &v);
    check_ref(cs, "I-AUROC", r, v, tok_double(save), REL_AUROC);
    r = uad_pixel_auroc(it, (size_t)nmaps, &v);
    check_ref(cs, "P-AUROC", r, v, tok_double(save), REL_AUROC);
    for (int k = 0; k < 3; k++) {
        r = uad_aupro(it, (size_t)nmaps, limits[k], &v);
        check_ref(cs, names[k], r, v, tok_double(save), REL_AUPRO);
    }
    free(lab);
}

/* "case" (stored maps) or "synth" (formula) record; maps freed here. */
static void run_maps_record(char **save, bool synth) {
    char name[64];
    snprintf(name, sizeof name, "%s", next_tok(save));
    int nmaps = (int)tok_long(save), sw = 0, sh = 0, salt = 0;
    if (synth) sw = (int)tok_long(save), sh = (int)tok_long(save),
               salt = (int)tok_long(save);
    if (nmaps < 1 || nmaps > 64 || sw < 0 || sw > 4096 || sh < 0 ||
        sh > 4096) {
        CHECK(!"sane map record");
        return;
    }
    uad_map_gt *it = calloc((size_t)nmaps, sizeof *it);
    float *img = calloc((size_t)nmaps, sizeof *img);
    for (int i = 0; i < nmaps; i++) {
        int w = sw, h = sh;
        if (!synth) {
            CHECK(!strcmp(next_tok(save), "map"));
            w = (int)tok_long(save), h = (int)tok_long(save);
        }
        float *m = malloc((size_t)w * h * sizeof *m);
        uint8_t *g = malloc((size_t)w * h);
        if (synth) synth_map(m, g, i, w, h, salt);
        for (int k = 0; !synth && k < w * h; k++) m[k] = strtof(next_tok(save), NULL);
        for (int k = 0; !synth && k < w * h; k++) g[k] = (uint8_t)tok_long(save);
        img[i] = -INFINITY;
        for (int k = 0; k < w * h; k++) img[i] = fmaxf(img[i], m[k]);
        it[i] = (uad_map_gt){m, g, w, h};
    }
    if (!synth) {
        CHECK(!strcmp(next_tok(save), "image"));
        for (int i = 0; i < nmaps; i++) img[i] = strtof(next_tok(save), NULL);
    }
    check_maps_ref(save, name, it, nmaps, img);
    for (int i = 0; i < nmaps; i++) {
        free((void *)it[i].map);
        free((void *)it[i].gt);
    }
    free(it);
    free(img);
}

/* "cls" record: true and predicted ids -> confusion -> Acc, mIoU. */
static void run_cls_record(char **save) {
    char name[64];
    snprintf(name, sizeof name, "%s", next_tok(save));
    int ncls = (int)tok_long(save), n = (int)tok_long(save);
    if (ncls < 1 || ncls > 64 || n < 1 || n > 100000) {
        CHECK(!"sane cls record");
        return;
    }
    long *t = malloc((size_t)n * sizeof *t);
    uint64_t *conf = calloc((size_t)ncls * ncls, sizeof *conf);
    double v;
    for (int i = 0; i < n; i++) t[i] = tok_long(save);
    for (int i = 0; i < n; i++) {
        long p = tok_long(save);
        if (t[i] >= 0 && t[i] < ncls && p >= 0 && p < ncls)
            conf[t[i] * ncls + p]++;
        else CHECK(!"class ids in range");
    }
    CHECK(!strcmp(next_tok(save), "expect"));
    int r = uad_accuracy(conf, ncls, &v);
    check_ref(name, "Acc", r, v, tok_double(save), 1e-12);
    size_t w0 = uad_log_warning_count();
    g_last_warning[0] = 0;
    uad_log_set(capture_log, NULL, UAD_LOG_WARN);
    r = uad_miou(conf, ncls, &v);
    uad_log_set(NULL, NULL, UAD_LOG_WARN);
    check_ref(name, "mIoU", r, v, tok_double(save), 1e-12);
    /* skip3 has no class 3 anywhere: one warning naming it. */
    if (!strcmp(name, "skip3")) {
        CHECK(uad_log_warning_count() == w0 + 1);
        CHECK_STR_CONTAINS(g_last_warning, "class 3");
    }
    free(t);
    free(conf);
}

static void test_reference_file(void) {
    char *buf;
    size_t len;
    int records = 0;
    if (uad_read_file(UAD_SOURCE_DIR "/tests/data/metrics_ref.txt", &buf,
                      &len) != UAD_OK) {
        CHECK(!"tests/data/metrics_ref.txt is readable");
        return;
    }
    /* The only comment is the first line. */
    char *body = buf[0] == '#' ? strchr(buf, '\n') : buf;
    char *save = NULL, *t = strtok_r(body ? body : buf, " \t\r\n", &save);
    for (; t; t = next_tok(&save), records++) {
        if (!strcmp(t, "case")) run_maps_record(&save, false);
        else if (!strcmp(t, "synth")) run_maps_record(&save, true);
        else if (!strcmp(t, "cls")) run_cls_record(&save);
        else {
            CHECK(!"known record type");
            break;
        }
    }
    CHECK(records == 7);
    free(buf);
}

int main(void) {
    test_auroc_hand();
    test_auroc_ranks();
    test_auroc_invariance();
    test_aupro_hand();
    test_aupro_regions();
    test_classification_hand();
    test_reference_file();
    return check_report("test_metrics");
}
