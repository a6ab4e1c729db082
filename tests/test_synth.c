/* test_synth.c - masks, foreground, lexicon, operators, score, SSIM,
 * zero- and few-shot synthesis on in-memory images. */
#include "check.h"
#include "synth_internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---- helpers --------------------------------------------------------- */

/* Textured w x h x c image in [0.2, 0.8]: vertical streaks plus noise,
 * like a brushed metal surface. */
static uad_image textured(int w, int h, int c, uint64_t seed) {
    uad_image im = {w, h, c, malloc((size_t)w * h * c * sizeof(float)),
                    8, c, "png"};
    uad_rng r;
    uad_rng_seed(&r, seed);
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                im.data[((size_t)k * h + y) * w + x] =
                    0.5f + 0.15f * sinf(x * 0.7f + k) +
                    0.1f * (float)uad_rng_uniform(&r) - 0.05f;
    return im;
}

static uad_image constant(int w, int h, int c, float v, int depth) {
    uad_image im = {w, h, c, malloc((size_t)w * h * c * sizeof(float)),
                    depth, c, "png"};
    for (size_t i = 0; i < (size_t)w * h * c; i++) im.data[i] = v;
    return im;
}

static uad_image clone(const uad_image *a) {
    uad_image b = *a;
    size_t n = (size_t)a->w * a->h * a->c * sizeof(float);
    b.data = malloc(n);
    memcpy(b.data, a->data, n);
    return b;
}

/* 1 when every pixel outside mask has bit-identical values. */
static int outside_identical(const uad_image *a, const uad_image *b,
                             const uint8_t *mask) {
    size_t n = (size_t)a->w * a->h;
    for (int c = 0; c < a->c; c++)
        for (size_t i = 0; i < n; i++)
            if (!mask[i] && memcmp(&a->data[c * n + i], &b->data[c * n + i],
                                   sizeof(float)))
                return 0;
    return 1;
}

/* Mean |a - b| and mean (a - b) inside mask, over channels. */
static void inside_change(double *mabs, double *msig, const uad_image *a,
                          const uad_image *b, const uint8_t *mask) {
    size_t n = (size_t)a->w * a->h, cnt = 0;
    double s = 0, t = 0;
    for (size_t i = 0; i < n; i++) {
        if (!mask[i]) continue;
        for (int c = 0; c < a->c; c++) {
            double d = a->data[c * n + i] - b->data[c * n + i];
            s += fabs(d);
            t += d;
            cnt++;
        }
    }
    *mabs = cnt ? s / (double)cnt : 0;
    *msig = cnt ? t / (double)cnt : 0;
}

static int in_range(const uad_image *a, float lo, float hi) {
    for (size_t i = 0; i < (size_t)a->w * a->h * a->c; i++)
        if (!(a->data[i] >= lo && a->data[i] <= hi)) return 0;
    return 1;
}

static int n_components(const uint8_t *m, int w, int h) {
    size_t n = (size_t)w * h;
    int *lab = malloc(2 * n * sizeof *lab);
    int k = syn_components(lab, lab + n, NULL, m, w, h);
    free(lab);
    return k;
}

/* ---- masks ----------------------------------------------------------- */

/* SPEC section 3 areas (fractions) per [shape][size small..large]: the
 * union of both ellipse variants for ellipses; n = most regions. */
static const double k_area[5][3][2] = {
    {{0.005, 0.01}, {0.01, 0.04}, {0.05, 0.10}},        /* rectangle */
    {{0.002, 0.005}, {0.005, 0.01}, {0.01, 0.02}},      /* line */
    {{0.002, 0.005}, {0.005, 0.01}, {0.01, 0.03}},      /* polygon */
    {{0.0002, 0.005}, {0.005, 0.015}, {0.01, 0.03}},    /* ellipse */
    {{0.0002, 0.005}, {0.005, 0.015}, {0.01, 0.03}},    /* hollow: <= */
};

static void test_mask_areas(void) {
    const int W = 256, H = 256, N = 150;
    uint8_t *m = malloc(W * H);
    for (int sh = 0; sh < 5; sh++)
        for (int sz = 0; sz < 3; sz++) {
            int n_max = sz == 0 ? 2 : 1, bad_area = 0, bad_comp = 0;
            double lo = k_area[sh][sz][0] * W * H;
            double hi = k_area[sh][sz][1] * W * H;
            double mean = 0;
            for (int t = 0; t < N; t++) {
                uint64_t seed = 1000u * sh + 100u * sz + t;
                CHECK(uad_maskgen_draw(m, NULL, W, H, 1u << sh, 1u << sz,
                                       seed) == UAD_OK);
                double a = (double)syn_count(m, (size_t)W * H);
                int k = n_components(m, W, H);
                mean += a / (W * H) / N;
                /* rasterizing and closing move small areas by a few px */
                double amin = sh == 4 ? 1 : 0.8 * lo - 6;
                if (a < amin || a > n_max * hi * 1.2 + 10) bad_area++;
                if (k < 1 || k > n_max * (sh == 4 ? 2 : 1)) bad_comp++;
            }
            if (bad_area || bad_comp)
                fprintf(stderr, "shape %d size %d: %d bad areas, %d bad "
                        "component counts, mean %.5f\n", sh, sz, bad_area,
                        bad_comp, mean);
            CHECK(bad_area == 0);
            CHECK(bad_comp == 0);
        }
    /* The large rectangle's mean area sits in the middle of 0.05-0.10. */
    double mean = 0;
    for (int t = 0; t < 200; t++) {
        uad_maskgen_draw(m, NULL, W, H, UAD_SHAPE_RECTANGLE, UAD_SIZE_LARGE,
                         (uint64_t)t);
        mean += (double)syn_count(m, (size_t)W * H) / (W * H) / 200;
    }
    CHECK_NEAR(mean, 0.075, 0.008);
    free(m);
}

/* Aspect (minor / major axis) from second moments: W / L for a filled
 * rectangle or ellipse. */
static double mask_aspect(const uint8_t *m, int w, int h) {
    double n = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (m[y * w + x]) {
                n++; sx += x; sy += y;
                sxx += (double)x * x; syy += (double)y * y; sxy += (double)x * y;
            }
    double cxx = sxx / n - (sx / n) * (sx / n);
    double cyy = syy / n - (sy / n) * (sy / n);
    double cxy = sxy / n - (sx / n) * (sy / n);
    double tr = cxx + cyy, det = cxx * cyy - cxy * cxy;
    double disc = sqrt(fmax(0, tr * tr / 4 - det));
    return sqrt(fmax(0, tr / 2 - disc) / (tr / 2 + disc));
}

/* Shapes' aspects and the hollow ellipse's hole, at s = 512 where the
 * rasterized widths are many pixels. */
static void test_mask_aspects(void) {
    const int S = 512;
    uint8_t *m = malloc(S * S);
    double lo[3] = {1, 1, 1}, hi[3] = {0, 0, 0}, filled = 0, hollow = 0;
    const unsigned shapes[3] = {UAD_SHAPE_RECTANGLE, UAD_SHAPE_LINE,
                                UAD_SHAPE_LINE};
    const unsigned sizes[3] = {UAD_SIZE_LARGE, UAD_SIZE_LARGE,
                               UAD_SIZE_MEDIUM};
    for (int t = 0; t < 40; t++) {
        for (int k = 0; k < 3; k++) {
            uad_maskgen_draw(m, NULL, S, S, shapes[k], sizes[k], (uint64_t)t);
            double a = mask_aspect(m, S, S);
            lo[k] = fmin(lo[k], a);
            hi[k] = fmax(hi[k], a);
        }
        uad_maskgen_draw(m, NULL, S, S, UAD_SHAPE_ELLIPSE, UAD_SIZE_LARGE,
                         (uint64_t)t);
        filled += (double)syn_count(m, S * S);
        uad_maskgen_draw(m, NULL, S, S, UAD_SHAPE_HOLLOW_ELLIPSE,
                         UAD_SIZE_LARGE, (uint64_t)t);
        hollow += (double)syn_count(m, S * S);
    }
    /* SPEC: rectangle 0.3-1, large line 0.05-0.1, medium 0.02-0.05 */
    CHECK(lo[0] > 0.27 && hi[0] <= 1.0);
    CHECK(lo[1] > 0.04 && hi[1] < 0.12);
    CHECK(lo[2] > 0.015 && hi[2] < 0.07);
    /* rings of 12-24 px leave a hole in most large ellipses */
    CHECK(hollow < 0.85 * filled);
    free(m);
}

static void test_mask_brush_perlin(void) {
    const int W = 256, H = 192;
    uint8_t *m = malloc(W * H);
    double comps[3] = {0, 0, 0};
    for (int sz = 0; sz < 3; sz++)
        for (int t = 0; t < 60; t++) {
            CHECK(uad_maskgen_draw(m, NULL, W, H, UAD_SHAPE_BRUSH, 1u << sz,
                                   (uint64_t)t) == UAD_OK);
            CHECK(n_components(m, W, H) == 1);
            CHECK(uad_maskgen_draw(m, NULL, W, H, UAD_SHAPE_PERLIN, 1u << sz,
                                   (uint64_t)t) == UAD_OK);
            size_t a = syn_count(m, (size_t)W * H);
            CHECK(a >= 1 && a < (size_t)W * H * 3 / 4);
            comps[sz] += n_components(m, W, H) / 60.0;
        }
    /* Finer lattices (small) break the mask into more blobs. */
    CHECK(comps[0] > 2 * comps[2]);
    CHECK(comps[0] > comps[1]);
    /* The brush's width follows the table: a large brush at s = 512 is
     * 18-24 px wide, so its area is well above a small one's. */
    double a_small = 0, a_large = 0;
    uint8_t *big = malloc(512 * 512);
    for (int t = 0; t < 40; t++) {
        uad_maskgen_draw(big, NULL, 512, 512, UAD_SHAPE_BRUSH, UAD_SIZE_SMALL,
                         (uint64_t)t);
        a_small += (double)syn_count(big, 512 * 512);
        uad_maskgen_draw(big, NULL, 512, 512, UAD_SHAPE_BRUSH, UAD_SIZE_LARGE,
                         (uint64_t)t);
        a_large += (double)syn_count(big, 512 * 512);
    }
    CHECK(a_large > 2 * a_small);
    free(big);
    free(m);
}

static void test_mask_odd_sizes_and_fg(void) {
    const int sizes[4][2] = {{37, 23}, {1, 1}, {3, 200}, {301, 7}};
    for (int k = 0; k < 4; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        uint8_t *m = malloc((size_t)w * h), *m2 = malloc((size_t)w * h);
        int empty = 0, nondet = 0;
        for (int sh = 0; sh < 8; sh++)
            for (int sz = 0; sz < 3; sz++) {
                uad_maskgen_draw(m, NULL, w, h, 1u << sh, 1u << sz, 77);
                uad_maskgen_draw(m2, NULL, w, h, 1u << sh, 1u << sz, 77);
                empty += syn_count(m, (size_t)w * h) == 0;
                nondet += memcmp(m, m2, (size_t)w * h) != 0;
            }
        CHECK(empty == 0);
        CHECK(nondet == 0);
        free(m);
        free(m2);
    }
    /* Inside the foreground: left half only. */
    const int W = 120, H = 90;
    uint8_t fg[W * H], m[W * H];
    for (int i = 0; i < W * H; i++) fg[i] = (i % W) < W / 2;
    int outside = 0;
    for (int sh = 0; sh < 8; sh++)
        for (int t = 0; t < 10; t++) {
            uad_maskgen_draw(m, fg, W, H, 1u << sh, UAD_SIZE_MEDIUM,
                             (uint64_t)t);
            CHECK(syn_count(m, W * H) > 0);
            for (int i = 0; i < W * H; i++) outside += m[i] && !fg[i];
        }
    CHECK(outside == 0);
    CHECK(uad_maskgen_draw(m, fg, W, H, 3, 1, 0) == UAD_ERR_USAGE);
    CHECK(uad_maskgen_draw(m, fg, W, H, 1, 0, 0) == UAD_ERR_USAGE);
}

/* ---- foreground ------------------------------------------------------ */

/* Tiny power-of-two sizes sample Perlin noise on its lattice (all zero):
 * the mask must still be clean 0/1 with one pixel, the same every time. */
static void test_mask_tiny_lattice(void) {
    const int sizes[][2] = {{2, 2}, {8, 8}, {4, 4}, {2, 1}, {1, 4}};
    for (int k = 0; k < 5; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        for (unsigned sz = UAD_SIZE_SMALL; sz <= UAD_SIZE_LARGE; sz <<= 1) {
            uint8_t a[64], b[64];
            memset(a, 0xAB, sizeof a);
            memset(b, 0xCD, sizeof b);
            CHECK(uad_maskgen_draw(a, NULL, w, h, UAD_SHAPE_PERLIN, sz, 9) ==
                  UAD_OK);
            CHECK(uad_maskgen_draw(b, NULL, w, h, UAD_SHAPE_PERLIN, sz, 9) ==
                  UAD_OK);
            int on = 0, clean = 1;
            for (int i = 0; i < w * h; i++) {
                clean &= a[i] <= 1;
                on += a[i] == 1;
            }
            CHECK(clean && on >= 1);
            CHECK(!memcmp(a, b, (size_t)w * h));
        }
    }
}

static void test_foreground(void) {
    /* A bright disk (radius 60) on a dark, slightly noisy background. */
    const int W = 256, H = 200;
    uad_image im = constant(W, H, 3, 0.1f, 8);
    uad_rng r;
    uad_rng_seed(&r, 5);
    size_t n = (size_t)W * H, inter = 0, uni = 0;
    uint8_t *truth = malloc(n), *fg = malloc(n);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            size_t i = (size_t)y * W + x;
            truth[i] = hypot(x - 128.0, y - 100.0) < 60;
            for (int c = 0; c < 3; c++)
                im.data[c * n + i] = (truth[i] ? 0.7f : 0.1f) +
                                     0.02f * (float)uad_rng_uniform(&r);
        }
    double frac = uad_fg_estimate(fg, &im);
    for (size_t i = 0; i < n; i++) {
        inter += fg[i] && truth[i];
        uni += fg[i] || truth[i];
    }
    CHECK((double)inter / (double)uni > 0.95);
    CHECK_NEAR(frac, 3.14159 * 60 * 60 / n, 0.01);
    /* A texture filling the frame (like MTD tiles): all foreground. */
    uad_image t = textured(160, 120, 1, 3);
    CHECK(uad_fg_estimate(fg, &t) == 1.0);
    CHECK(syn_count(fg, 160 * 120) == 160 * 120);
    /* ... also with a brighter patch of 8% of it (a lighting streak on a
     * tile is no object on a background). */
    for (int y = 30; y < 60; y++)
        for (int x = 40; x < 90; x++) t.data[y * 160 + x] += 0.12f;
    CHECK(uad_fg_estimate(fg, &t) == 1.0);
    free(t.data);
    /* Real MTD tiles fill the frame: all foreground (020.jpg has a
     * bright streak that the border rule keeps from being an object). */
    char path[512];
    int all = 0, n_mtd = 0;
    for (int i = 0; i < 24; i++) {
        uad_image a, b;
        snprintf(path, sizeof path,
                 "%s/../shared/datasets/mtd/train/good/%03d.jpg",
                 UAD_SOURCE_DIR, i);
        if (uad_image_load(&a, path, NULL) != UAD_OK) break;
        if (uad_image_resize(&b, &a, 256, 256, UAD_RESIZE_BILINEAR) ==
            UAD_OK) {
            uint8_t *f = malloc(256 * 256);
            all += uad_fg_estimate(f, &b) == 1.0;
            n_mtd++;
            free(f);
            uad_image_free(&b);
        }
        uad_image_free(&a);
    }
    if (!n_mtd) fprintf(stderr, "test_synth: no MTD data, real-tile "
                        "foreground check skipped\n");
    CHECK(all == n_mtd);
    free(im.data);
    free(truth);
    free(fg);
}

/* ---- lexicon --------------------------------------------------------- */

static void test_lexicon(void) {
    uad_synth_recipe r = uad_synth_lexicon("black hole");
    CHECK(r.op == UAD_OP_HOLE && r.direction == -1 && r.has_color);
    CHECK(r.n_unknown == 0);
    CHECK(uad_synth_lexicon("surface cracking").op == UAD_OP_LINE);
    CHECK(uad_synth_lexicon("surface crumpling").op == UAD_OP_CRUMPLE);
    CHECK(uad_synth_lexicon("surface abrasion").op == UAD_OP_ABRASION);
    r = uad_synth_lexicon("surface unevenness with lighting variation");
    CHECK(r.op == UAD_OP_LIGHTING && r.n_unknown == 0);
    CHECK(uad_synth_lexicon("Red STAIN").op == UAD_OP_COLOR);
    CHECK(uad_synth_lexicon("missing part").op == UAD_OP_MISSING);
    CHECK(uad_synth_lexicon("flipped cap").op == UAD_OP_TRANSFORM);
    CHECK(uad_synth_lexicon("misprint").op == UAD_OP_PRINT);
    CHECK(uad_synth_lexicon("squeezed tube").op == UAD_OP_WARP);
    CHECK(uad_synth_lexicon("crease").op == UAD_OP_FOLD);
    CHECK(uad_synth_lexicon("cuts").op == UAD_OP_LINE);
    CHECK(uad_synth_lexicon("rough texture").op == UAD_OP_ABRASION);
    r = uad_synth_lexicon("zorblax glitter");
    CHECK(r.op == UAD_OP_GENERIC && r.n_unknown == 2);
    CHECK_STR_CONTAINS(r.unknown, "zorblax");
    CHECK_STR_CONTAINS(r.unknown, "glitter");
    CHECK(uad_synth_lexicon("").op == UAD_OP_GENERIC);
}

/* ---- operators ------------------------------------------------------- */

static void test_operators(void) {
    const char *desc[UAD_OP_COUNT] = {
        "zorblax", "red stain", "black hole", "scratch", "fold",
        "abrasion", "crumpled", "uneven lighting", "missing",
        "flipped", "misprint", "deformed"};
    const int W = 67, H = 45;
    uint8_t mask[W * H], m0[W * H];
    for (int c = 1; c <= 3; c += 2)
        for (int op = 0; op < UAD_OP_COUNT; op++)
            for (int sh = 0; sh < 7; sh++) {
                uad_image src = textured(W, H, c, (uint64_t)op);
                uad_image img = clone(&src);
                uad_synth_recipe r = uad_synth_lexicon(desc[op]);
                CHECK(r.op == (uad_synth_op)op);
                uad_maskgen_draw(mask, NULL, W, H, 1u << sh, UAD_SIZE_LARGE,
                                 (uint64_t)sh);
                memcpy(m0, mask, sizeof mask);
                uad_synth_apply(&img, mask, NULL, &r, 1.0f, 9);
                double mabs, msig;
                inside_change(&mabs, &msig, &img, &src, mask);
                /* changed pixels stay inside the drawn mask */
                int grew = 0;
                for (int i = 0; i < W * H; i++) grew += mask[i] && !m0[i];
                CHECK(grew == 0);
                CHECK(syn_count(mask, W * H) > 0);
                CHECK(outside_identical(&img, &src, mask));
                CHECK(mabs >= UAD_SYNTH_MIN_CHANGE - 1e-6);
                CHECK(in_range(&img, 0, 1));
                free(src.data);
                free(img.data);
            }
}

static void test_operator_edge_cases(void) {
    const int W = 40, H = 30;
    uint8_t mask[W * H];
    const float vals[3] = {0.0f, 0.5f, 1.0f};
    /* constant images of every tone, every operator: visible change */
    for (int v = 0; v < 3; v++)
        for (int op = 0; op < UAD_OP_COUNT; op++) {
            uad_image src = constant(W, H, 1, vals[v], 8);
            uad_image img = clone(&src);
            uad_synth_recipe r = uad_synth_lexicon("x");
            r.op = (uad_synth_op)op;
            uad_maskgen_draw(mask, NULL, W, H, UAD_SHAPE_ELLIPSE,
                             UAD_SIZE_LARGE, 3);
            uad_synth_apply(&img, mask, NULL, &r, 1.0f, 4);
            double mabs, msig;
            inside_change(&mabs, &msig, &img, &src, mask);
            CHECK(mabs >= UAD_SYNTH_MIN_CHANGE - 1e-6);
            CHECK(in_range(&img, 0, 1));
            CHECK(outside_identical(&img, &src, mask));
            free(src.data);
            free(img.data);
        }
    /* a 16-bit source near white stays on [0, 1] */
    uad_image s16 = constant(W, H, 1, 60000.0f / 65535.0f, 16);
    uad_image i16 = clone(&s16);
    uad_synth_recipe rw = uad_synth_lexicon("white stain");
    uad_maskgen_draw(mask, NULL, W, H, UAD_SHAPE_RECTANGLE, UAD_SIZE_LARGE, 1);
    uad_synth_apply(&i16, mask, NULL, &rw, 1.5f, 2);
    CHECK(in_range(&i16, 0, 1));
    double mabs, msig;
    inside_change(&mabs, &msig, &i16, &s16, mask);
    CHECK(mabs >= UAD_SYNTH_MIN_CHANGE - 1e-6);
    /* a float source on [0, 4] keeps its own scale */
    uad_image sf = textured(W, H, 1, 8);
    sf.bit_depth = 32;
    for (int i = 0; i < W * H; i++) sf.data[i] *= 4;
    uad_image imf = clone(&sf);
    uad_synth_recipe rb = uad_synth_lexicon("black hole");
    uad_synth_apply(&imf, mask, NULL, &rb, 1.0f, 2);
    CHECK(in_range(&imf, 0, 4));
    inside_change(&mabs, &msig, &imf, &sf, mask);
    CHECK(msig < -0.5); /* a hole on a surface averaging 2 darkens it */
    free(s16.data); free(i16.data); free(sf.data); free(imf.data);
}

static void test_colour_direction(void) {
    const int W = 64, H = 64;
    uint8_t mask[W * H];
    uad_maskgen_draw(mask, NULL, W, H, UAD_SHAPE_ELLIPSE, UAD_SIZE_LARGE, 5);
    uad_image src = textured(W, H, 3, 1);
    uad_image a = clone(&src), b = clone(&src);
    uad_synth_recipe rk = uad_synth_lexicon("black stain");
    uad_synth_recipe rw = uad_synth_lexicon("white stain");
    uad_synth_apply(&a, mask, NULL, &rk, 1.0f, 1);
    uad_synth_apply(&b, mask, NULL, &rw, 1.0f, 1);
    double mabs, msig;
    inside_change(&mabs, &msig, &a, &src, mask);
    CHECK(msig < -0.1);
    inside_change(&mabs, &msig, &b, &src, mask);
    CHECK(msig > 0.1);
    /* the score rewards the right direction: black that brightens
     * scores lower than black that darkens */
    CHECK(uad_synth_score(&a, &src, mask, &rk) >
          uad_synth_score(&b, &src, mask, &rk) + 0.3);
    /* no change scores 0 */
    CHECK(uad_synth_score(&src, &src, mask, &rk) == 0);
    free(src.data); free(a.data); free(b.data);
}

/* ---- SSIM ------------------------------------------------------------ */

static void test_ssim(void) {
    uad_image a = textured(31, 17, 3, 2), b = clone(&a);
    CHECK_NEAR(uad_ssim(&a, &b), 1.0, 1e-6);
    for (size_t i = 0; i < 31 * 17 * 3; i++) b.data[i] = 1 - a.data[i];
    CHECK(uad_ssim(&a, &b) < 0);
    /* two constants: (2ab + C1) / (a^2 + b^2 + C1), the variance term 1 */
    uad_image c = constant(20, 20, 1, 0.2f, 8), d = constant(20, 20, 1, 0.6f, 8);
    double c1 = 1e-4;
    CHECK_NEAR(uad_ssim(&c, &d), (2 * 0.2 * 0.6 + c1) / (0.04 + 0.36 + c1),
               1e-5);
    free(a.data); free(b.data); free(c.data); free(d.data);
}

/* ---- engine ---------------------------------------------------------- */

static int g_warned;
static char g_last_warning[1024];
static void count_warn(uad_log_level lvl, const char *msg, void *user) {
    (void)user;
    if (lvl == UAD_LOG_WARN) {
        g_warned++;
        snprintf(g_last_warning, sizeof g_last_warning, "%s", msg);
    }
}

static void test_zero_shot(void) {
    uad_image nm[2] = {textured(48, 40, 1, 1), textured(48, 40, 1, 2)};
    char *d0[] = {"black hole"}, *d1[] = {"zorblax glitter"};
    uad_category cats[2] = {
        {"blowhole", d0, 1, NULL, 0, UAD_SHAPE_ELLIPSE, UAD_SIZE_SMALL, 1},
        {"odd", d1, 1, NULL, 0, 0, 0, 1}};
    uad_priors pri = {"tile", cats, 2};
    uad_synth_params p = uad_synth_default_params();
    CHECK(p.per_category == 16 && p.n_candidates == 32);
    p.per_category = 3;
    p.n_candidates = 6;
    p.seed = 11;
    uad_synth *s = NULL;
    uad_synth_list a = {0}, b = {0};
    CHECK(uad_synth_create(&s, nm, 2, &p) == UAD_OK);
    uad_log_set(count_warn, NULL, UAD_LOG_WARN);
    CHECK(uad_synth_zero_shot(&a, s, &pri) == UAD_OK);
    uad_log_set(NULL, NULL, UAD_LOG_WARN);
    CHECK(g_warned == 1);
    CHECK_STR_CONTAINS(g_last_warning, "zorblax");
    CHECK(a.n == 6);
    for (size_t i = 0; i < a.n; i++) {
        const uad_synth_sample *x = &a.items[i];
        CHECK(x->class_id == (int)i / 3 + 1);
        CHECK(x->source >= 0 && x->source < 2);
        CHECK(syn_count(x->mask, 48 * 40) > 0);
        CHECK(outside_identical(&x->image, &nm[x->source], x->mask));
        CHECK(x->score > 0 && x->score <= 1);
    }
    CHECK(!strcmp(a.items[0].method, "prior:hole"));
    CHECK(!strcmp(a.items[3].method, "prior:generic"));
    /* Same seed, same bytes, with a different thread count too. */
    uad_synth_free(s);
    p.n_threads = 2;
    CHECK(uad_synth_create(&s, nm, 2, &p) == UAD_OK);
    CHECK(uad_synth_zero_shot(&b, s, &pri) == UAD_OK);
    int same = a.n == b.n;
    for (size_t i = 0; same && i < a.n; i++)
        same = !memcmp(a.items[i].image.data, b.items[i].image.data,
                       48 * 40 * sizeof(float)) &&
               !memcmp(a.items[i].mask, b.items[i].mask, 48 * 40);
    CHECK(same);
    /* One sample alone from its recorded seed. */
    uad_synth_sample one;
    CHECK(uad_synth_prior_one(&one, s, &pri, 0, a.items[1].seed) == UAD_OK);
    CHECK(!memcmp(one.image.data, a.items[1].image.data, 48 * 40 * 4));
    free(one.image.data);
    free(one.mask);
    uad_synth_list_free(&b);
    uad_synth_free(s);
    /* Another seed differs. */
    p.seed = 12;
    CHECK(uad_synth_create(&s, nm, 2, &p) == UAD_OK);
    CHECK(uad_synth_zero_shot(&b, s, &pri) == UAD_OK);
    CHECK(memcmp(a.items[0].mask, b.items[0].mask, 48 * 40) != 0);
    uad_synth_list_free(&a);
    uad_synth_list_free(&b);
    uad_synth_free(s);
    /* The diffusion engine is declared but not built. */
    p.engine = UAD_SYNTH_DIFFUSION;
    CHECK(uad_synth_create(&s, nm, 2, &p) == UAD_ERR_USAGE);
    CHECK(s == NULL);
    CHECK_STR_CONTAINS(uad_last_error(), "BrushNet");
    free(nm[0].data);
    free(nm[1].data);
}

/* A negative description with a direction flips an open one. */
static void test_negative(void) {
    uad_image nm[1] = {textured(64, 48, 1, 9)};
    char *d[] = {"scratch"}, *neg[] = {"dark"};
    uad_category cat = {"scratch", d, 1, neg, 1, UAD_SHAPE_BRUSH,
                         UAD_SIZE_LARGE, 1};
    uad_priors pri = {NULL, &cat, 1};
    uad_synth_params p = uad_synth_default_params();
    p.n_candidates = 4;
    uad_synth *s = NULL;
    CHECK(uad_synth_create(&s, nm, 1, &p) == UAD_OK);
    int brighter = 0;
    for (int k = 0; k < 6; k++) {
        uad_synth_sample x;
        CHECK(uad_synth_prior_one(&x, s, &pri, 0, (uint64_t)k) == UAD_OK);
        double mabs, msig;
        inside_change(&mabs, &msig, &x.image, &nm[0], x.mask);
        brighter += msig > 0;
        free(x.image.data);
        free(x.mask);
    }
    CHECK(brighter == 6);
    uad_synth_free(s);
    free(nm[0].data);
}

static void test_few_shot(void) {
    const int W = 96, H = 80;
    uad_image nm[1] = {textured(W, H, 1, 4)};
    /* Example: a dark disk of ~300 px and a lone defect pixel. */
    uad_image ex = textured(W, H, 1, 5);
    uint8_t mask[W * H], one[W * H];
    memset(mask, 0, sizeof mask);
    memset(one, 0, sizeof one);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            if (hypot(x - 30.0, y - 30.0) < 10) {
                mask[y * W + x] = 1;
                ex.data[y * W + x] = 0.05f;
            }
    mask[70 * W + 80] = 1;
    one[70 * W + 80] = 1;
    uad_synth_params p = uad_synth_default_params();
    p.per_category = 4;
    p.n_candidates = 8;
    uad_synth *s = NULL;
    uad_synth_list out = {0};
    CHECK(uad_synth_create(&s, nm, 1, &p) == UAD_OK);
    uad_synth_example e = {&ex, mask, 2, "ex.png"};
    g_warned = 0;
    uad_log_set(count_warn, NULL, UAD_LOG_WARN);
    CHECK(uad_synth_few_shot(&out, s, &e, 1) == UAD_OK);
    CHECK(g_warned == 1);
    CHECK_STR_CONTAINS(g_last_warning, "skipping");
    CHECK(out.n == 4);
    for (size_t i = 0; i < out.n; i++) {
        const uad_synth_sample *x = &out.items[i];
        size_t a = syn_count(x->mask, W * H);
        CHECK(a > 200 && a < 500); /* the disk, never the lone pixel */
        CHECK(x->class_id == 2);
        CHECK(outside_identical(&x->image, &nm[0], x->mask));
        double mabs, msig;
        inside_change(&mabs, &msig, &x->image, &nm[0], x->mask);
        CHECK(msig < -0.2); /* the dark defect came along */
        CHECK(x->score > 0 && x->score <= 1);
        CHECK(!strcmp(x->method, "example:poisson"));
    }
    uad_synth_list_free(&out);
    /* Only a one-pixel defect: skipped with a warning, and an error, not
     * an unchanged "defect". */
    uad_synth_example e1 = {&ex, one, 1, "one.png"};
    CHECK(uad_synth_few_shot(&out, s, &e1, 1) == UAD_ERR_DATA);
    CHECK(out.n == 0 && out.items == NULL);
    uad_log_set(NULL, NULL, UAD_LOG_WARN);
    uad_synth_free(s);
    free(nm[0].data);
    free(ex.data);
}

/* An RGB example of another size than the normals: the pasted region
 * is scaled to the normal's grid; a class whose regions are all under
 * the minimum (but over a quarter of it) still gets samples, warned. */
static void test_few_shot_scaled(void) {
    const int W = 60, H = 50, EW = 120, EH = 100;
    uad_image nm[2] = {textured(W, H, 3, 1), textured(W, H, 3, 2)};
    uad_image ex = textured(EW, EH, 3, 3);
    uint8_t *mask = calloc(EW * EH, 1);
    size_t en = (size_t)EW * EH;
    for (int y = 40; y < 60; y++)
        for (int x = 30; x < 50; x++) {
            mask[y * EW + x] = 1; /* 400 px at 120 x 100 */
            ex.data[y * EW + x] = 0.95f;
            ex.data[en + y * EW + x] = 0.1f;
            ex.data[2 * en + y * EW + x] = 0.1f;
        }
    uad_synth_params p = uad_synth_default_params();
    p.per_category = 3;
    p.n_candidates = 5;
    p.min_component = 1000; /* 46 px at 120 x 100: 400 px passes */
    uad_synth *s = NULL;
    uad_synth_list out = {0};
    CHECK(uad_synth_create(&s, nm, 2, &p) == UAD_OK);
    uad_synth_example e = {&ex, mask, 1, "red.png"};
    CHECK(uad_synth_few_shot(&out, s, &e, 1) == UAD_OK);
    for (size_t i = 0; i < out.n; i++) {
        const uad_synth_sample *x = &out.items[i];
        size_t a = syn_count(x->mask, W * H);
        CHECK(a >= 60 && a <= 160); /* 400 px at a quarter of the area */
        CHECK(x->image.w == W && x->image.h == H && x->image.c == 3);
        CHECK(outside_identical(&x->image, &nm[x->source], x->mask));
        CHECK(in_range(&x->image, 0, 1));
    }
    uad_synth_list_free(&out);
    uad_synth_free(s);
    /* min 20000 at 512 x 512 = 229 px here: 100 px is under it, over a
     * quarter of it: used with a warning. */
    p.min_component = 20000;
    CHECK(uad_synth_create(&s, nm, 2, &p) == UAD_OK);
    uad_image ex2 = textured(W, H, 3, 4);
    uint8_t *m2 = calloc(W * H, 1);
    for (int y = 20; y < 30; y++)
        for (int x = 20; x < 30; x++) m2[y * W + x] = 1;
    uad_synth_example e2 = {&ex2, m2, 1, "small.png"};
    g_warned = 0;
    uad_log_set(count_warn, NULL, UAD_LOG_WARN);
    CHECK(uad_synth_few_shot(&out, s, &e2, 1) == UAD_OK);
    uad_log_set(NULL, NULL, UAD_LOG_WARN);
    CHECK(g_warned == 2);
    CHECK_STR_CONTAINS(g_last_warning, "under the minimum");
    CHECK(out.n == 3);
    uad_synth_list_free(&out);
    uad_synth_free(s);
    free(nm[0].data); free(nm[1].data); free(ex.data); free(ex2.data);
    free(mask); free(m2);
}

int main(void) {
    test_mask_tiny_lattice();
    test_mask_areas();
    test_mask_aspects();
    test_mask_brush_perlin();
    test_mask_odd_sizes_and_fg();
    test_foreground();
    test_lexicon();
    test_operators();
    test_operator_edge_cases();
    test_colour_direction();
    test_ssim();
    test_zero_shot();
    test_negative();
    test_few_shot();
    test_few_shot_scaled();
    return check_report("test_synth");
}
