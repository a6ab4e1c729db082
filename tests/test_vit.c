/* test_vit.c - the ViT backbones against reference outputs.
 *
 * tests/data/vit/<case>/ holds small random checkpoints in the Hugging
 * Face layouts (config.json + model.safetensors) and ref.safetensors with
 * inputs and outputs computed in float64 by scripts/make_vit_refs.py, a
 * plain-PyTorch implementation of Dinov2Model, Dinov2WithRegistersModel,
 * DINOv3ViTModel and the CLIP vision tower (Debian python3-torch 1.13). Every hidden
 * state, the final-normed tokens and the feature maps are compared; the
 * largest absolute and relative error (relative to the largest reference
 * magnitude of that tensor) is printed. Tolerance, f32 compute: 1e-4
 * relative. Then the kernels alone, and the loaders' failures. */
#include "check.h"
#include "testutil.h"
#include "internal.h"
#include "nn.h"
#include "uniadc.h"
#include "vit.h"

#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#define DATA UAD_SOURCE_DIR "/tests/data/vit/"
#define TOL_REL 1e-4
/* bf16 compute (inputs of every matmul rounded to 8 significant bits,
 * f32 accumulation): 5e-2 relative, used only where oneDNN has bf16
 * (AVX-512 CPUs); on others that pass is skipped with a message. */
#define TOL_BF16 5e-2
static double g_tol = TOL_REL;

/* A reference tensor as f32 (malloc'ed), its shape in dims. */
static float *ref_get(const uad_safetensors *st, const char *name,
                      int64_t *dims, int *nd) {
    const uad_st_tensor *t = uad_st_find(st, name);
    CHECK(t != NULL);
    if (!t) return NULL;
    float *f = malloc(sizeof(float) * (uad_st_numel(t) + 1));
    CHECK(uad_st_to_f32(t, f) == UAD_OK);
    if (dims) memcpy(dims, t->shape, sizeof(int64_t) * t->ndim);
    if (nd) *nd = t->ndim;
    return f;
}

/* Print and check max |a - b| / max |b| over n values. */
static void compare(const char *what, const float *got, const float *ref,
                    size_t n, double tol) {
    double err = 0.0, mag = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        err = check_max(err, d);
        mag = fabs(ref[i]) > mag ? fabs(ref[i]) : mag;
    }
    double rel = err / (mag > 0 ? mag : 1.0);
    printf("  %-28s max abs %.3g  rel %.3g  (|ref| <= %.3g)\n", what, err,
           rel, mag);
    CHECK(rel <= tol);
}

/* Hidden states, last tokens and feature maps of one case's reference
 * file `refname`. */
static void parity_ref(const char *name, const char *refname,
                       uad_vit_kind kind) {
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, DATA "%s", name);
    snprintf(path, sizeof path, "%s/%s", dir, refname);
    printf("%s (%s):\n", name, refname);
    uad_vit *v = NULL;
    uad_safetensors *ref = NULL;
    CHECK(uad_vit_load(&v, kind, dir) == UAD_OK);
    CHECK(uad_st_open(&ref, path) == UAD_OK);
    if (!v || !ref) {
        fprintf(stderr, "%s\n", uad_last_error());
        uad_vit_free(v);
        uad_st_free(ref);
        return;
    }
    uad_vit_info in;
    uad_vit_get_info(v, &in);
    int64_t pd[4], hd[4], ld[1];
    float *pix = ref_get(ref, "pixel_values", pd, NULL);
    int N = (int)pd[0], H = (int)pd[2], W = (int)pd[3], L = in.layers;
    int C = in.hidden, P = 1 + in.registers;
    int gh = H / in.patch, gw = W / in.patch, T = P + gh * gw;
    float *h0 = ref_get(ref, "hidden.0", hd, NULL);
    CHECK(hd[1] == T && hd[2] == C);
    free(h0);

    /* every hidden state and the final-normed tokens, per image */
    size_t TC = (size_t)T * C;
    float *hid = malloc(sizeof(float) * TC * (L + 2));
    float *ptr[64];
    for (int l = 0; l <= L; l++) ptr[l] = hid + TC * l;
    float *last = hid + TC * (L + 1);
    float *all_h = malloc(sizeof(float) * TC * N * (L + 1));
    float *all_last = malloc(sizeof(float) * TC * N);
    for (int n = 0; n < N; n++) {
        CHECK(vit_forward(v, ptr, last, pix + (size_t)n * 3 * H * W, H, W) ==
              UAD_OK);
        for (int l = 0; l <= L; l++)
            memcpy(all_h + ((size_t)l * N + n) * TC, ptr[l], TC * sizeof(float));
        memcpy(all_last + n * TC, last, TC * sizeof(float));
    }
    for (int l = 0; l <= L; l++) {
        char k[32], what[64];
        snprintf(k, sizeof k, "hidden.%d", l);
        snprintf(what, sizeof what, l ? "block %d output" : "embeddings", l);
        float *r = ref_get(ref, k, NULL, NULL);
        if (r) compare(what, all_h + (size_t)l * N * TC, r, N * TC, g_tol);
        free(r);
    }
    float *r = ref_get(ref, "last", NULL, NULL);
    if (r) compare("final norm (end to end)", all_last, r, N * TC, g_tol);
    free(r);

    /* feature maps (N, C, gh, gw) of the listed blocks, layer-normed */
    float *lay = ref_get(ref, "layers", ld, NULL);
    int nl = (int)ld[0], layers[8];
    float *maps[8];
    for (int j = 0; j < nl; j++) {
        layers[j] = (int)lay[j];
        maps[j] = malloc(sizeof(float) * N * C * gh * gw);
    }
    CHECK(uad_vit_features(v, maps, layers, nl, 1, pix, N, H, W) == UAD_OK);
    for (int j = 0; j < nl; j++) {
        char k[32], what[64];
        snprintf(k, sizeof k, "features.%d", j);
        snprintf(what, sizeof what, "features block %d (normed)", layers[j]);
        float *fr = ref_get(ref, k, NULL, NULL);
        if (fr) compare(what, maps[j], fr, (size_t)N * C * gh * gw, g_tol);
        free(fr);
    }
    /* without the norm the map is the raw patch tokens, transposed */
    CHECK(uad_vit_features(v, maps, layers, 1, 0, pix, N, H, W) == UAD_OK);
    int bad = 0;
    for (int n = 0; n < N; n++)
        for (int t = 0; t < gh * gw; t++)
            for (int c = 0; c < C; c++)
                bad += maps[0][((size_t)n * C + c) * gh * gw + t] !=
                       all_h[((size_t)layers[0] * N + n) * TC +
                             (size_t)(P + t) * C + c];
    CHECK(bad == 0);

    /* pooled: the CLS row of the final-normed tokens; for CLIP also
     * image_embeds, its visual_projection computed here in double from
     * the checkpoint's weight and the reference tokens */
    float *pool = malloc(sizeof(float) * N * C);
    r = ref_get(ref, "last", NULL, NULL);
    CHECK(uad_vit_pooled(v, pool, NULL, pix, N, H, W) == UAD_OK);
    float *cls = malloc(sizeof(float) * N * C);
    for (int n = 0; r && n < N; n++)
        memcpy(cls + (size_t)n * C, r + n * TC, sizeof(float) * C);
    if (r) compare("pooled (CLS, final norm)", pool, cls, (size_t)N * C, g_tol);
    if (in.proj_dim > 0) {
        int Pd = in.proj_dim;
        uad_safetensors *mf = NULL;
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        CHECK(uad_st_open(&mf, path) == UAD_OK);
        const uad_st_tensor *wt = mf ? uad_st_find(mf, "visual_projection.weight")
                                     : NULL;
        CHECK(wt && wt->ndim == 2 && wt->shape[0] == Pd && wt->shape[1] == C);
        float *wp = malloc(sizeof(float) * Pd * C);
        float *emb = malloc(sizeof(float) * N * Pd);
        float *want = malloc(sizeof(float) * N * Pd);
        if (wt && uad_st_to_f32(wt, wp) == UAD_OK && r) {
            for (int n = 0; n < N; n++)
                for (int j = 0; j < Pd; j++) {
                    double a = 0.0;
                    for (int c = 0; c < C; c++)
                        a += (double)wp[(size_t)j * C + c] * cls[(size_t)n * C + c];
                    want[(size_t)n * Pd + j] = (float)a;
                }
            CHECK(uad_vit_pooled(v, NULL, emb, pix, N, H, W) == UAD_OK);
            compare("image_embeds (visual_projection)", emb, want,
                    (size_t)N * Pd, g_tol);
        }
        free(wp), free(emb), free(want);
        uad_st_free(mf);
    } else {
        float e1[1];
        CHECK(uad_vit_pooled(v, NULL, e1, pix, N, H, W) == UAD_ERR_USAGE);
        CHECK_STR_CONTAINS(uad_last_error(), "visual_projection");
    }
    free(pool), free(cls), free(r);
    for (int j = 0; j < nl; j++) free(maps[j]);
    free(lay);
    free(hid);
    free(all_h);
    free(all_last);
    free(pix);
    uad_st_free(ref);
    uad_vit_free(v);
}

static void parity(const char *name, uad_vit_kind kind) {
    parity_ref(name, "ref.safetensors", kind);
}

/* ---- kernels ---- */

/* The attention kernels in nn_attn_kernel order, for the output. */
static const char *const attn_names[] = {"auto", "unfused", "fused f32",
                                         "vdpbf16ps", "AMX"};
enum { N_ATTN = 5 };

/* Multi-head attention against double precision: per head softmax(q k^T
 * / sqrt(D)) v. With T = 1200 only 11 heads' scores fit the 64 MB group
 * bound, so 12 heads run as a group of 11 and one of 1. */
static void check_mha(int T, int C, int heads, double tol) {
    uad_rng rng;
    uad_rng_seed(&rng, (uint64_t)T * 31 + (uint64_t)heads);
    size_t n = (size_t)3 * T * C;
    float *qkv = malloc(sizeof(float) * n), *out = malloc(sizeof(float) * T * C);
    float *scr = malloc(sizeof(float) * nn_mha_scratch_floats(T, C, heads));
    double *ref = calloc((size_t)T * C, sizeof(double)), *p = malloc(sizeof(double) * T);
    for (size_t i = 0; i < n; i++) qkv[i] = 4.0f * uad_rng_uniform(&rng) - 2.0f;
    nn_mha_forward(out, scr, qkv, T, C, heads);
    int D = C / heads;
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < T; i++) {
            double m = -1e300, z = 0.0;
            for (int j = 0; j < T; j++) {
                double a = 0.0;
                for (int d = 0; d < D; d++)
                    a += (double)qkv[(size_t)i * 3 * C + h * D + d] *
                         qkv[(size_t)j * 3 * C + C + h * D + d];
                p[j] = a / sqrt((double)D);
                m = fmax(m, p[j]);
            }
            for (int j = 0; j < T; j++) z += p[j] = exp(p[j] - m);
            for (int j = 0; j < T; j++)
                for (int d = 0; d < D; d++)
                    ref[(size_t)i * C + h * D + d] +=
                        p[j] / z * qkv[(size_t)j * 3 * C + 2 * C + h * D + d];
        }
    double e = 0.0, sc = 1e-3;
    for (size_t i = 0; i < (size_t)T * C; i++) {
        e = check_max(e, fabs(out[i] - ref[i]));
        sc = fmax(sc, fabs(ref[i]));
    }
    printf("attention T %d C %d heads %d: max abs error %.3g (|ref| <= %.3g)\n",
           T, C, heads, e, sc);
    CHECK(e / sc < tol);
    if (nn_get_precision() == NN_BF16) {
        /* the bf16-output variant: exactly the f32 output rounded */
        uint16_t *oh = malloc(sizeof *oh * (size_t)T * C);
        uint16_t *rh = malloc(sizeof *rh * (size_t)T * C);
        nn_mha_forward_bf16(oh, scr, qkv, T, C, heads);
        nn_f32_to_bf16(rh, out, (size_t)T * C);
        CHECK(memcmp(oh, rh, sizeof *oh * (size_t)T * C) == 0);
        free(oh), free(rh);
    }
    free(qkv), free(out), free(scr), free(ref), free(p);
}

/* Layer norm rows to bf16: exactly the f32 result rounded (C = 300
 * crosses the 256-float chunk). */
static void check_layernorm_bf16(void) {
    enum { T = 5, C = 300 };
    uad_rng rng;
    uad_rng_seed(&rng, 17);
    float *x = malloc(sizeof(float) * T * C), *y = malloc(sizeof(float) * T * C);
    float w[C], b[C];
    uint16_t *yh = malloc(sizeof *yh * T * C), *rh = malloc(sizeof *rh * T * C);
    for (int i = 0; i < T * C; i++) x[i] = 6.0f * uad_rng_uniform(&rng) - 2.0f;
    for (int i = 0; i < C; i++) {
        w[i] = 0.5f + uad_rng_uniform(&rng);
        b[i] = uad_rng_uniform(&rng) - 0.5f;
    }
    nn_layernorm_rows_forward(y, x, w, b, T, C, 1e-6f);
    nn_layernorm_rows_forward_bf16(yh, x, w, b, T, C, 1e-6f);
    nn_f32_to_bf16(rh, y, (size_t)T * C);
    CHECK(memcmp(yh, rh, sizeof *yh * T * C) == 0);
    /* and the f32 rows against double */
    double worst = 0.0;
    for (int t = 0; t < T; t++) {
        double m = 0.0, v = 0.0;
        for (int i = 0; i < C; i++) m += x[t * C + i];
        m /= C;
        for (int i = 0; i < C; i++) v += (x[t * C + i] - m) * (x[t * C + i] - m);
        double r = 1.0 / sqrt(v / C + 1e-6);
        for (int i = 0; i < C; i++)
            worst = check_max(worst, fabs(y[t * C + i] -
                                     ((x[t * C + i] - m) * r * w[i] + b[i])));
    }
    printf("layer norm rows: max abs error %.3g\n", worst);
    CHECK(worst < 1e-5);
    free(x), free(y), free(yh), free(rh);
}


static void test_kernels(void) {
    check_layernorm_bf16();
    check_mha(7, 12, 3, 1e-5);
    check_mha(1200, 24, 12, 1e-5);
    /* head widths that are multiples of 8 take the fused kernel on
     * AVX-512 CPUs: query blocks of 32 and key blocks of 8 with tails */
    check_mha(37, 128, 2, 1e-5);
    check_mha(70, 48, 6, 1e-5);
    check_mha(1025, 64, 1, 1e-5);
    check_mha(1, 16, 2, 1e-5); /* one token: softmax of a single score */
    check_mha(3, 64, 8, 1e-5);
    /* the unfused path, which AVX-512 CPUs take only for other widths */
    if (nn_set_attn_kernel(NN_ATTN_UNFUSED) == 0) {
        check_mha(37, 128, 2, 1e-5);
        check_mha(1025, 64, 1, 1e-5);
        nn_set_attn_kernel(NN_ATTN_AUTO);
    }
    if (nn_set_precision(NN_BF16) == 0) {
        /* every bf16 kernel this CPU has, forced in turn (each where its
         * head-width rule holds, AUTO's choice elsewhere): AUTO takes
         * AMX for widths in multiples of 32 where there is AMX, for
         * other multiples of 8 the vdpbf16ps kernel on AMD and the
         * fused f32 one elsewhere; query and key tails, odd and even key
         * counts, one token, 1 to 7 AMX chunks of 32 channels */
        for (int k = 0; k < N_ATTN; k++) {
            if (nn_set_attn_kernel((nn_attn_kernel)k) != 0) {
                printf("bf16 attention, %s: not on this CPU\n", attn_names[k]);
                continue;
            }
            printf("bf16 attention, %s kernel:\n", attn_names[k]);
            check_mha(33, 32, 2, TOL_BF16);
            check_mha(1025, 24, 3, TOL_BF16);
            check_mha(36, 80, 2, TOL_BF16);
            check_mha(70, 48, 6, TOL_BF16);
            check_mha(1, 16, 2, TOL_BF16);
            check_mha(1025, 64, 1, TOL_BF16);
            check_mha(70, 192, 3, TOL_BF16);
            check_mha(37, 96, 3, TOL_BF16);
            check_mha(1, 64, 2, TOL_BF16);
            check_mha(64, 256, 1, TOL_BF16);
            check_mha(17, 192, 2, TOL_BF16);  /* D 96 */
            check_mha(65, 256, 2, TOL_BF16);  /* D 128 */
            check_mha(31, 480, 3, TOL_BF16);  /* D 160 */
            check_mha(40, 224, 1, TOL_BF16);  /* D 224 */
        }
        CHECK(nn_set_attn_kernel(NN_ATTN_AUTO) == 0);
        nn_set_precision(NN_F32);
    }
    /* softmax of [0, ln 3] is [1/4, 3/4]; random rows against double */
    float a[2] = {0.0f, logf(3.0f)}, s[2];
    nn_softmax_rows_forward(s, a, 1, 2, 1.0f);
    CHECK_NEAR(s[0], 0.25, 1e-7);
    CHECK_NEAR(s[1], 0.75, 1e-7);
    uad_rng rng;
    uad_rng_seed(&rng, 6);
    /* widths through every code path: 16-lane, 8-lane and scalar
     * parts (37 = 2x16 + 5, 29 = 16 + 8 + 5, 24 = 16 + 8, 5) */
    static const int widths[4] = {37, 29, 24, 5};
    double worst = 0.0, worst_abs = 0.0;
    for (int wi = 0; wi < 4; wi++) {
        int n = widths[wi];
        float x[3 * 37], y[3 * 37];
        for (int i = 0; i < 3 * n; i++)
            x[i] = 60.0f * uad_rng_uniform(&rng) - 30.0f;
        nn_softmax_rows_forward(y, x, 3, n, 0.7f);
        /* relative error where p > 1e-3 (smaller ones inherit the f32
         * rounding of arguments up to 42 in size: checked in absolute) */
        for (int r = 0; r < 3; r++) {
            double m = -1e30, z = 0.0;
            for (int i = 0; i < n; i++) m = fmax(m, x[r * n + i]);
            for (int i = 0; i < n; i++) z += exp(0.7 * (x[r * n + i] - m));
            for (int i = 0; i < n; i++) {
                double e = exp(0.7 * (x[r * n + i] - m)) / z;
                double d = fabs(e - y[r * n + i]);
                worst_abs = check_max(worst_abs, d);
                if (e > 1e-3) worst = check_max(worst, d / e);
            }
        }
    }
    printf("softmax: max abs error %.3g, rel (p > 1e-3) %.3g\n", worst_abs,
           worst);
    CHECK(worst < 1e-6 && worst_abs < 1e-7);

    /* bicubic weights, worked by hand from Keys' kernel:
     * 2 -> 4, output 0: source -0.25, taps -2..1 clamped to 0,0,0,1,
     * a = -0.75: w(1.75) + w(0.75) + w(0.25) = 1.10546875, w(1.25) =
     * -0.10546875. Same size: identity. */
    double m[16] = {0};
    nn_bicubic_weights(m, 2, 4, 0);
    CHECK_NEAR(m[0], 1.10546875, 1e-12);
    CHECK_NEAR(m[1], -0.10546875, 1e-12);
    memset(m, 0, sizeof m);
    nn_bicubic_weights(m, 4, 4, 0);
    for (int i = 0; i < 16; i++) CHECK_NEAR(m[i], i % 5 == 0, 1e-12);
    /* antialiased 4 -> 2, a = -0.5, kernel stretched x2: output 0 has
     * centre 1, taps 0..3 at w(0.25), w(0.25), w(0.75), w(1.25) =
     * 0.8671875, 0.8671875, 0.2265625, -0.0703125, over their sum. */
    memset(m, 0, sizeof m);
    nn_bicubic_weights(m, 4, 2, 1);
    double tot = 1.890625;
    CHECK_NEAR(m[0], 0.8671875 / tot, 1e-12);
    CHECK_NEAR(m[1], 0.8671875 / tot, 1e-12);
    CHECK_NEAR(m[2], 0.2265625 / tot, 1e-12);
    CHECK_NEAR(m[3], -0.0703125 / tot, 1e-12);
}

/* Official CLIP preprocessing of a 7x11 image, against PyTorch. */
static void test_preprocess(void) {
    uad_vit *v = NULL;
    uad_safetensors *st = NULL;
    CHECK(uad_vit_load(&v, UAD_VIT_CLIP, DATA "clip") == UAD_OK);
    CHECK(uad_st_open(&st, DATA "clip/preprocess.safetensors") == UAD_OK);
    if (!v || !st) goto done;
    uad_image img = {0};
    CHECK(uad_image_alloc(&img, 11, 7, 3) == UAD_OK);
    float *src = ref_get(st, "image", NULL, NULL);
    float *want = ref_get(st, "out", NULL, NULL);
    memcpy(img.data, src, sizeof(float) * 3 * 7 * 11);
    float out[3 * 32 * 32];
    CHECK(uad_vit_preprocess(v, out, &img, 0) == UAD_OK);
    compare("preprocess (clip, 7x11)", out, want, 3 * 32 * 32, 1e-5);
    free(src);
    free(want);
    uad_image_free(&img);
done:
    uad_st_free(st);
    uad_vit_free(v);
}

/* ---- failures ---- */

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* dir/model.safetensors from case src's, without tensor `drop`, with
 * `shrink` one element shorter along dim 0, plus `extra`. */
static void write_variant_of(const char *src, const char *dir,
                             const char *drop, const char *shrink,
                             const char *extra) {
    uad_safetensors *st = NULL;
    char in[1024];
    snprintf(in, sizeof in, DATA "%s/model.safetensors", src);
    CHECK(uad_st_open(&st, in) == UAD_OK);
    if (!st) return;
    uad_st_writer *w = uad_st_writer_create();
    for (size_t i = 0; i < uad_st_count(st); i++) {
        const uad_st_tensor *t = uad_st_tensor_at(st, i);
        if (drop && !strcmp(t->name, drop)) continue;
        int64_t shape[UAD_ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        if (shrink && !strcmp(t->name, shrink)) shape[0]--;
        CHECK(uad_st_writer_add(w, t->name, t->dtype, t->ndim, shape,
                                t->data) == UAD_OK);
    }
    float one = 1.0f;
    int64_t d1 = 1;
    if (extra) CHECK(uad_st_writer_add(w, extra, UAD_DT_F32, 1, &d1, &one) == UAD_OK);
    char path[1100];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(uad_st_writer_save(w, path) == UAD_OK);
    uad_st_writer_free(w);
    uad_st_free(st);
}

static void write_variant(const char *dir, const char *drop,
                          const char *shrink, const char *extra) {
    write_variant_of("dinov2", dir, drop, shrink, extra);
}

/* ---- bf16 kernels inside a model ---- */

/* The test models have 16-channel heads, so at the model level AMX (32
 * and up) never runs. Here two of them are loaded with fewer, wider heads
 * (the weights fit any head count): DINOv3 with 2 heads of 32 (rotary
 * tables of 32), CLIP with 1 head of 64, on odd token counts. Each bf16
 * attention kernel this CPU has, forced in turn, must give the model's
 * own f32 output within the bf16 tolerance. */
static void test_bf16_wide_heads(void) {
    static const struct {
        const char *src, *from, *to;
        uad_vit_kind kind;
        int H, W;
    } cases[2] = {
        {"dinov3", "\"num_attention_heads\": 4", "\"num_attention_heads\": 2",
         UAD_VIT_DINOV3, 36, 28},
        {"clip", "\"num_attention_heads\": 4", "\"num_attention_heads\": 1",
         UAD_VIT_CLIP, 40, 48},
    };
    if (nn_set_precision(NN_BF16) != 0) {
        printf("bf16 wide heads: no bf16 on this CPU, skipped\n");
        return;
    }
    nn_set_precision(NN_F32);
    for (int c = 0; c < 2; c++) {
        char *dir = tu_tmpdir("vitheads");
        char path[1100];
        snprintf(path, sizeof path, DATA "%s/config.json", cases[c].src);
        char *cfg = NULL;
        size_t n = 0;
        CHECK(uad_read_file(path, &cfg, &n) == UAD_OK);
        if (!cfg) continue;
        char *at = strstr(cfg, cases[c].from);
        CHECK(at != NULL && strlen(cases[c].from) == strlen(cases[c].to));
        if (at) memcpy(at, cases[c].to, strlen(cases[c].to));
        snprintf(path, sizeof path, "%s/config.json", dir);
        write_text(path, cfg);
        free(cfg);
        write_variant_of(cases[c].src, dir, NULL, NULL, NULL);

        uad_vit *v = NULL;
        CHECK(uad_vit_load(&v, cases[c].kind, dir) == UAD_OK);
        if (!v) continue;
        uad_vit_info in;
        uad_vit_get_info(v, &in);
        int H = cases[c].H, W = cases[c].W, layer = in.layers;
        size_t np = (size_t)in.hidden * (H / in.patch) * (W / in.patch);
        float *pix = malloc(sizeof(float) * 3 * H * W);
        float *ref = malloc(sizeof(float) * np), *got = malloc(sizeof(float) * np);
        for (int i = 0; i < 3 * H * W; i++)
            pix[i] = (float)((i * 53) % 97) / 48.0f - 1.0f;
        CHECK(uad_vit_features(v, &ref, &layer, 1, 1, pix, 1, H, W) == UAD_OK);
        nn_set_precision(NN_BF16);
        for (int k = 0; k < N_ATTN; k++) {
            if (nn_set_attn_kernel((nn_attn_kernel)k) != 0) continue;
            CHECK(uad_vit_features(v, &got, &layer, 1, 1, pix, 1, H, W) ==
                  UAD_OK);
            char what[64];
            snprintf(what, sizeof what, "%s D%d bf16 %s", cases[c].src,
                     in.hidden / in.heads, attn_names[k]);
            compare(what, got, ref, np, TOL_BF16);
        }
        CHECK(nn_set_attn_kernel(NN_ATTN_AUTO) == 0);
        nn_set_precision(NN_F32);
        free(pix), free(ref), free(got);
        uad_vit_free(v);
        free(dir);
    }
}

static const char *CFG =
    "{\"model_type\": \"dinov2\", \"hidden_size\": 48, \"num_hidden_layers\""
    ": 3, \"num_attention_heads\": 3, \"patch_size\": 4, \"image_size\": 32}";

/* Load dir as DINOv2: expect status st and `needle` in the message. */
static void expect_fail(const char *dir, uad_status st, const char *needle) {
    uad_vit *v = (uad_vit *)1;
    CHECK(uad_vit_load(&v, UAD_VIT_DINOV2, dir) == st);
    CHECK(v == NULL);
    CHECK_STR_CONTAINS(uad_last_error(), needle);
}

/* uad_vit_features on n layers of one 8 x W image must refuse with
 * UAD_ERR_USAGE and an error containing msg. */
static void bad_features(const uad_vit *v, const int *layers, int n, int W,
                         const char *msg) {
    float *maps[5] = {NULL}, pix[3 * 8 * 8] = {0};
    CHECK(uad_vit_features(v, maps, layers, n, 1, pix, 1, 8, W) ==
          UAD_ERR_USAGE);
    CHECK_STR_CONTAINS(uad_last_error(), msg);
}

static void test_failures(void) {
    char *dir = tu_tmpdir("vit"), cfg[64], model[64];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(model, sizeof model, "%s/model.safetensors", dir);

    expect_fail(dir, UAD_ERR_IO, "config.json");
    write_text(cfg, CFG);
    expect_fail(dir, UAD_ERR_IO, "model.safetensors");

    write_variant(dir, "encoder.layer.1.mlp.fc2.bias", NULL, NULL);
    expect_fail(dir, UAD_ERR_FORMAT,
                "tensor \"encoder.layer.1.mlp.fc2.bias\" is missing");
    write_variant(dir, NULL, "layernorm.weight", NULL);
    expect_fail(dir, UAD_ERR_FORMAT,
                "\"layernorm.weight\" has shape (47), expected (48)");
    write_variant(dir, NULL, NULL, "encoder.layer.3.norm1.weight");
    expect_fail(dir, UAD_ERR_FORMAT,
                "unexpected tensor \"encoder.layer.3.norm1.weight\"");
    /* the unchanged copy loads: the failures above are the edits' */
    write_variant(dir, NULL, NULL, NULL);
    uad_vit *v = NULL;
    CHECK(uad_vit_load(&v, UAD_VIT_DINOV2, dir) == UAD_OK);
    uad_vit_free(v);

    write_text(cfg, "{\"hidden_size\": 48,");
    expect_fail(dir, UAD_ERR_FORMAT, "not a JSON object");
    write_text(cfg, "{\"hidden_size\": 50, \"num_attention_heads\": 3}");
    expect_fail(dir, UAD_ERR_FORMAT, "not a multiple");
    write_text(cfg, "{\"hidden_act\": \"relu\"}");
    expect_fail(dir, UAD_ERR_FORMAT, "hidden_act \"relu\"");
    write_text(cfg, "{\"hidden_size\": \"48\"}");
    expect_fail(dir, UAD_ERR_FORMAT, "\"hidden_size\" must be an integer");
    write_text(cfg, "{\"model_type\": \"vit\"}");
    expect_fail(dir, UAD_ERR_FORMAT, "not a DINOv2 model");
    /* DINOv3 without key bias: a k_proj bias in the file is extra */
    write_text(cfg, "{\"model_type\": \"dinov3_vit\", \"hidden_size\": 64, "
               "\"intermediate_size\": 128, \"num_hidden_layers\": 2, "
               "\"num_attention_heads\": 4, \"patch_size\": 4, "
               "\"image_size\": 32, \"num_register_tokens\": 4}");
    write_variant_of("dinov3", dir, NULL, NULL,
                     "layer.1.attention.k_proj.bias");
    CHECK(uad_vit_load(&v, UAD_VIT_DINOV3, dir) == UAD_ERR_FORMAT);
    CHECK_STR_CONTAINS(uad_last_error(),
                       "unexpected tensor \"layer.1.attention.k_proj.bias\"");
    write_text(cfg, "{\"model_type\": \"dinov3_vit\", \"hidden_size\": 24, "
               "\"num_attention_heads\": 4}");
    CHECK(uad_vit_load(&v, UAD_VIT_DINOV3, dir) == UAD_ERR_FORMAT);
    CHECK_STR_CONTAINS(uad_last_error(), "not a multiple of 4 (RoPE)");
    write_text(cfg, "{\"model_type\": \"dinov3_vit\", \"use_gated_mlp\": "
               "true}");
    CHECK(uad_vit_load(&v, UAD_VIT_DINOV3, dir) == UAD_ERR_FORMAT);
    CHECK_STR_CONTAINS(uad_last_error(), "hidden_act \"gelu\" with a gated");
    /* a CLIP checkpoint is not a DINOv2 one, nor a DINOv2 one a CLIP one */
    expect_fail(DATA "clip", UAD_ERR_FORMAT, "not a DINOv2 model");
    v = (uad_vit *)1;
    CHECK(uad_vit_load(&v, UAD_VIT_CLIP, DATA "dinov2") == UAD_ERR_FORMAT);
    CHECK(v == NULL);
    CHECK_STR_CONTAINS(uad_last_error(),
                       "model_type \"dinov2\" is not a CLIP model");

    CHECK(uad_vit_load_spec(&v, "dinov4:/x") == UAD_ERR_USAGE);
    CHECK(uad_vit_load_spec(&v, "dinov3:/nonexistent") == UAD_ERR_IO);
    CHECK(uad_vit_load_spec(&v, "dinov2") == UAD_ERR_USAGE);
    CHECK(uad_vit_load_spec(&v, "dinov2:" DATA "dinov2") == UAD_OK);

    /* bad feature requests */
    if (v) {
        int lay[2] = {4, 1}, dup[2] = {2, 2};
        /* more layers than the model has, one out of range: the range
         * is what gets named, not the count */
        int many[5] = {6, 1, 2, 3, 0};
        bad_features(v, lay, 1, 8, "layer 4 is not in 0..3");
        bad_features(v, dup, 2, 8, "layer 2 is asked twice");
        bad_features(v, many, 5, 8, "layer 6 is not in 0..3");
        int far[4] = {6, 12, 1, -1};
        bad_features(v, far, 4, 8, "layers 6, 12, -1 are not in 0..3");
        bad_features(v, lay, 0, 8, "no layers asked");
        bad_features(v, lay + 1, 1, 3, "smaller than one");
    }
    uad_vit_free(v);
    unlink(cfg);
    unlink(model);
    rmdir(dir);
    free(dir);
}

/* ---- the CLI ---- */

static int run_cli(const char *cli, const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s features %s >/dev/null 2>&1", cli, args);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* `uniadc features` against the reference maps and the library. */
static void test_cli(void) {
    const char *cli = getenv("UAD_CLI");
    if (!cli) {
        printf("UAD_CLI not set: CLI checks skipped\n");
        return;
    }
    char *dir = tu_tmpdir("vitcli"), out[64], png[64], args[2048];
    snprintf(out, sizeof out, "%s/f.safetensors", dir);
    snprintf(png, sizeof png, "%s/x.png", dir);

    /* default layers of a 3-block model: 1, 2, 3; normed maps */
    snprintf(args, sizeof args, "--backbone dinov2:" DATA "dinov2 "
             "--pixel-values " DATA "dinov2/ref.safetensors --out %s", out);
    CHECK(run_cli(cli, args) == 0);
    uad_safetensors *got = NULL, *ref = NULL;
    CHECK(uad_st_open(&got, out) == UAD_OK);
    CHECK(uad_st_open(&ref, DATA "dinov2/ref.safetensors") == UAD_OK);
    if (got && ref) {
        CHECK_STR_CONTAINS(uad_st_meta(got, "layers"), "1,2,3");
        float *a = ref_get(got, "features.3", NULL, NULL);
        float *b = ref_get(ref, "features.2", NULL, NULL);
        if (a && b) compare("cli features.3", a, b, 2 * 48 * 9 * 7, TOL_REL);
        free(a);
        free(b);
    }
    uad_st_free(got);
    uad_st_free(ref);

    /* --pooled on CLIP: pooled = the reference's final-normed CLS rows,
     * image_embeds of the projection width, next to the maps */
    snprintf(args, sizeof args, "--backbone clip:" DATA "clip "
             "--pixel-values " DATA "clip/ref.safetensors --pooled --out %s",
             out);
    CHECK(run_cli(cli, args) == 0);
    CHECK(uad_st_open(&got, out) == UAD_OK);
    CHECK(uad_st_open(&ref, DATA "clip/ref.safetensors") == UAD_OK);
    if (got && ref) {
        int64_t sp[4] = {0}, se[4] = {0}, sl[4] = {0};
        float *pool = ref_get(got, "pooled", sp, NULL);
        float *emb = ref_get(got, "image_embeds", se, NULL);
        float *last = ref_get(ref, "last", sl, NULL);
        CHECK(pool && sp[0] == sl[0] && sp[1] == sl[2]);
        CHECK(emb && se[0] == sl[0] && se[1] > 0);
        if (pool && last && sp[0] == sl[0] && sp[1] == sl[2]) {
            float cls[2 * 64];
            for (int n = 0; n < 2 && sl[2] <= 64; n++)
                memcpy(cls + n * sl[2], last + n * sl[1] * sl[2],
                       sizeof(float) * sl[2]);
            compare("cli pooled", pool, cls, (size_t)(2 * sl[2]), TOL_REL);
        }
        free(pool), free(emb), free(last);
    }
    uad_st_free(got);
    uad_st_free(ref);

    /* --bf16: within the bf16 tolerance of the f32 reference where the
     * CPU has bf16, else refused (exit 2, the usage status) */
    int has_bf16 = uad_set_bf16(1) == UAD_OK;
    uad_set_bf16(0);
    snprintf(args, sizeof args, "--backbone dinov2:" DATA "dinov2 "
             "--pixel-values " DATA "dinov2/ref.safetensors --bf16 --out %s",
             out);
    int rc = run_cli(cli, args);
    CHECK(rc == (has_bf16 ? 0 : 2));
    if (has_bf16) {
        CHECK(uad_st_open(&got, out) == UAD_OK);
        CHECK(uad_st_open(&ref, DATA "dinov2/ref.safetensors") == UAD_OK);
        if (got && ref) {
            float *a = ref_get(got, "features.3", NULL, NULL);
            float *b = ref_get(ref, "features.2", NULL, NULL);
            if (a && b)
                compare("cli features.3 --bf16", a, b, 2 * 48 * 9 * 7,
                        TOL_BF16);
            free(a);
            free(b);
        }
        uad_st_free(got);
        uad_st_free(ref);
    }

    /* an image with --size on CLIP equals the library's own path */
    uad_image img = {0};
    CHECK(uad_image_alloc(&img, 13, 9, 3) == UAD_OK);
    for (int i = 0; i < 3 * 13 * 9; i++) img.data[i] = (float)((i * 37) % 101) / 100;
    CHECK(uad_image_write_png(png, &img) == UAD_OK);
    uad_image_free(&img);
    snprintf(args, sizeof args, "--backbone clip:" DATA "clip --layers 2 "
             "--no-norm --size 24 %s --out %s", png, out);
    CHECK(run_cli(cli, args) == 0);
    uad_vit *v = NULL;
    CHECK(uad_vit_load(&v, UAD_VIT_CLIP, DATA "clip") == UAD_OK);
    CHECK(uad_image_load(&img, png, NULL) == UAD_OK);
    float pix[3 * 24 * 24], map[64 * 9], *maps[1] = {map};
    int two = 2;
    CHECK(uad_vit_preprocess(v, pix, &img, 24) == UAD_OK);
    CHECK(uad_vit_features(v, maps, &two, 1, 0, pix, 1, 24, 24) == UAD_OK);
    got = NULL;
    CHECK(uad_st_open(&got, out) == UAD_OK);
    if (got) {
        float *a = ref_get(got, "features.2", NULL, NULL);
        if (a) CHECK(memcmp(a, map, sizeof map) == 0);
        free(a);
    }
    uad_st_free(got);
    uad_image_free(&img);
    uad_vit_free(v);

    /* usage and data errors */
    snprintf(args, sizeof args, "--backbone clip:" DATA "clip %s "
             "--pixel-values %s --out %s", png, out, out);
    CHECK(run_cli(cli, args) == 2);
    snprintf(args, sizeof args, "--backbone clip:" DATA "clip --layers 1,x "
             "%s --out %s", png, out);
    CHECK(run_cli(cli, args) == 2);
    snprintf(args, sizeof args, "--backbone clip:" DATA "clip --layers 7 "
             "%s --out %s", png, out);
    CHECK(run_cli(cli, args) == 2);
    snprintf(args, sizeof args, "--backbone clip:/nonexistent %s --out %s",
             png, out);
    CHECK(run_cli(cli, args) == 3);
    snprintf(args, sizeof args, "--backbone clip:" DATA "clip "
             "--pixel-values " DATA "clip/model.safetensors --out %s", out);
    CHECK(run_cli(cli, args) == 4);
    unlink(out);
    unlink(png);
    rmdir(dir);
    free(dir);
}

int main(void) {
    nn_set_threads(2);
    test_kernels();
    parity("dinov2", UAD_VIT_DINOV2);
    parity_ref("dinov2", "ref_native.safetensors", UAD_VIT_DINOV2);
    parity("dinov2_reg", UAD_VIT_DINOV2);
    parity("clip", UAD_VIT_CLIP);
    parity("dinov3", UAD_VIT_DINOV3);
    parity("dinov3_gated", UAD_VIT_DINOV3);
    if (nn_set_precision(NN_BF16) == 0) {
        printf("bf16 compute, tolerance %g:\n", TOL_BF16);
        g_tol = TOL_BF16;
        parity("dinov2", UAD_VIT_DINOV2);
        parity("dinov3", UAD_VIT_DINOV3);
        parity("clip", UAD_VIT_CLIP);
        g_tol = TOL_REL;
        nn_set_precision(NN_F32);
    } else {
        printf("bf16 compute: not supported by this CPU, skipped\n");
    }
    test_bf16_wide_heads();
    test_preprocess();
    test_failures();
    test_cli();
    return check_report("test_vit");
}
