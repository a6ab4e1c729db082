/* knn.c - the training-free baseline of a run (the PatchCore/AnomalyDINO
 * recipe): a memory bank of normal patch features; a patch's anomaly
 * score is the distance to its nearest bank entry; anomalous patches
 * take the class of the nearest category prototype, the mean feature of
 * that category's synthetic (or example) defect patches.
 *
 * Features: the built-in backbone's fixed bank (all four levels on the
 * finest grid, standardised per dimension, Euclidean distance), or a
 * pretrained ViT's last-block patch tokens through its final norm,
 * L2-normalised, with the cosine distance 1 - cos and the image score
 * the mean of the highest 1% patch distances: AnomalyDINO's recipe
 * (Damm et al., 2025) when the ViT is DINOv2, without its foreground
 * masking and rotated bank copies. */
#include "model.h"
#include "nn.h"
#include "run.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* The bank keeps at most this many patches (a random subset beyond it),
 * so Kn = all stays fast; 4 normals at 256 x 256 fit whole. */
#define KNN_BANK_MAX 16384
/* Distance blocks: patches x bank rows per matmul (bank_query_skip). */
#define KNN_ROWS 256
#define KNN_CHUNK 2048

typedef struct {
    uad_model *m;        /* built-in: only its fixed backbone is used  */
    uad_acts a;          /* batch-1 activations                        */
    const uad_vit *vit;  /* or a ViT (borrowed)                        */
    int cosine;          /* ViT: unit features, distance 1 - cos       */
    int S, R, D;         /* input side, finest grid side, feature dim  */
    float *up;           /* (D, R*R) scratch                           */
    float *pix;          /* ViT: (3, S, S) preprocessed input          */
    float *mean, *istd;  /* (D) standardisation from the normal bank   */
} knn_fx;

/* The ViT's last block at the run's input side (a multiple of the
 * patch: uad_run rounds it). */
static uad_status fx_init_vit(knn_fx *f, const uad_vit *vit, int S) {
    uad_vit_info in;
    uad_vit_get_info(vit, &in);
    f->vit = vit;
    f->cosine = 1;
    f->S = S;
    f->R = S / in.patch;
    f->D = in.hidden;
    f->up = uad_malloc((size_t)f->D * f->R * f->R * sizeof *f->up);
    f->pix = uad_malloc((size_t)3 * S * S * sizeof *f->pix);
    f->mean = uad_calloc((size_t)f->D, sizeof *f->mean);
    f->istd = uad_malloc((size_t)f->D * sizeof *f->istd);
    for (int d = 0; f->istd && d < f->D; d++) f->istd[d] = 1;
    return f->up && f->pix && f->mean && f->istd ? UAD_OK : UAD_ERR_NOMEM;
}

static uad_status fx_init(knn_fx *f, const uad_priors *pri,
                          const uad_run_params *p, const uad_vit *vit) {
    memset(f, 0, sizeof *f);
    if (vit) return fx_init_vit(f, vit, p->model.input_size);
    const char **names = uad_calloc((size_t)pri->n_categories, sizeof *names);
    if (!names) return UAD_ERR_NOMEM;
    for (int i = 0; i < pri->n_categories; i++)
        names[i] = pri->categories[i].name;
    uad_model_params mp = p->model;
    mp.backbone = UAD_BACKBONE_GABOR;
    mp.seed = p->seed;
    uad_status st = uad_model_create(&f->m, names, pri->n_categories, &mp);
    free(names);
    if (st == UAD_OK) st = uad_acts_alloc(&f->a, f->m, 1, 0);
    if (st != UAD_OK) return st;
    f->S = f->m->size;
    f->R = f->m->grid[0];
    f->D = UAD_LEVELS * UAD_GABOR_DIM;
    f->up = uad_malloc((size_t)f->D * f->R * f->R * sizeof *f->up);
    f->mean = uad_calloc((size_t)f->D, sizeof *f->mean);
    f->istd = uad_malloc((size_t)f->D * sizeof *f->istd);
    for (int d = 0; f->istd && d < f->D; d++) f->istd[d] = 1;
    return f->up && f->mean && f->istd ? UAD_OK : UAD_ERR_NOMEM;
}

static void fx_free(knn_fx *f) {
    uad_acts_free(&f->a);
    uad_model_free(f->m);
    free(f->up);
    free(f->pix);
    free(f->mean);
    free(f->istd);
}

/* ViT patch features of img: out (R*R, D), each row a unit vector. */
static uad_status fx_run_vit(knn_fx *f, float *out, const uad_image *img) {
    uad_vit_info in;
    uad_vit_get_info(f->vit, &in);
    uad_image rgb = *img;
    if (rgb.c > 3) rgb.c = 3;
    if (rgb.c == 2) rgb.c = 1;
    int L = in.layers;
    uad_status st = uad_vit_preprocess(f->vit, f->pix, &rgb, f->S);
    if (st == UAD_OK)
        st = uad_vit_features(f->vit, &f->up, &L, 1, 1, f->pix, 1, f->S,
                              f->S);
    if (st != UAD_OK) return st;
    size_t P = (size_t)f->R * f->R;
    for (size_t i = 0; i < P; i++) {
        double q = 0;
        for (int d = 0; d < f->D; d++) {
            float v = f->up[(size_t)d * P + i];
            out[i * f->D + d] = v;
            q += (double)v * v;
        }
        float inv = q > 0 ? (float)(1.0 / sqrt(q)) : 0.0f;
        for (int d = 0; d < f->D; d++) out[i * f->D + d] *= inv;
    }
    return UAD_OK;
}

/* Patch features of img: out (R*R, D), standardised. */
static uad_status fx_run(knn_fx *f, float *out, const uad_image *img) {
    if (f->vit) return fx_run_vit(f, out, img);
    uad_status st = uad_model_prepare(f->a.img, f->m, img);
    if (st != UAD_OK) return st;
    uad_backbone_fixed(&f->a, f->m, 1);
    int R = f->R, G = UAD_GABOR_DIM;
    size_t P = (size_t)R * R;
    /* Every level upsampled (bilinear) onto the finest grid. */
    for (int l = 0; l < UAD_LEVELS; l++) {
        int r = f->m->grid[l];
        nn_resize_bilinear_forward(f->up + (size_t)l * G * P, f->a.gabor[l],
                                   G, r, r, R, R);
    }
    for (size_t i = 0; i < P; i++)
        for (int d = 0; d < f->D; d++)
            out[i * f->D + d] = (f->up[(size_t)d * P + i] - f->mean[d]) *
                                f->istd[d];
    return UAD_OK;
}

/* ---- memory bank ---------------------------------------------------- */

typedef struct {
    float *f;      /* (B, D) standardised features */
    float *sq;     /* (B) squared norms            */
    int *src;      /* (B) normal image of each row */
    size_t B;
    int cosine;    /* distances 1 - cos (unit rows) */
} knn_bank;

/* Bank from the normal support; fixes f's standardisation. */
static uad_status bank_build(knn_bank *bk, knn_fx *f, const run_support *rs,
                             uint64_t seed) {
    size_t P = (size_t)f->R * f->R, D = (size_t)f->D;
    size_t all = rs->n_normals * P;
    float *raw = uad_malloc(all * D * sizeof *raw);
    if (!raw) return UAD_ERR_NOMEM;
    uad_status st = UAD_OK;
    for (size_t i = 0; st == UAD_OK && i < rs->n_normals; i++)
        st = fx_run(f, raw + i * P * D, &rs->normals[i]);
    /* Per-dimension mean and spread, so no level dominates distances
     * (not for unit ViT tokens: mean 0 and spread 1 leave them as they
     * are). */
    bk->cosine = f->cosine;
    for (size_t d = 0; st == UAD_OK && !f->cosine && d < D; d++) {
        double s = 0, ss = 0;
        for (size_t i = 0; i < all; i++) {
            s += raw[i * D + d];
            ss += (double)raw[i * D + d] * raw[i * D + d];
        }
        double m = s / all, v = ss / all - m * m;
        f->mean[d] = (float)m;
        f->istd[d] = (float)(1.0 / sqrt(v > 1e-12 ? v : 1e-12));
    }
    /* Keep a random subset when the bank is large (seeded shuffle). */
    uad_rng rng;
    uad_rng_seed(&rng, seed ^ 0x6b6e6eull);
    bk->B = all < KNN_BANK_MAX ? all : KNN_BANK_MAX;
    bk->src = uad_malloc((all ? all : 1) * sizeof *bk->src);
    if (!bk->src) st = UAD_ERR_NOMEM;
    for (size_t i = 0; st == UAD_OK && i < all; i++) bk->src[i] = (int)(i / P);
    for (size_t i = 0; st == UAD_OK && i < bk->B && bk->B < all; i++) {
        size_t j = i + (size_t)uad_rng_below(&rng, all - i);
        for (size_t d = 0; d < D; d++) {
            float t = raw[i * D + d];
            raw[i * D + d] = raw[j * D + d];
            raw[j * D + d] = t;
        }
        int t = bk->src[i];
        bk->src[i] = bk->src[j];
        bk->src[j] = t;
    }
    bk->f = raw;
    bk->sq = uad_malloc(bk->B * sizeof *bk->sq);
    if (!bk->sq) st = UAD_ERR_NOMEM;
    for (size_t i = 0; st == UAD_OK && i < bk->B; i++) {
        double q = 0;
        for (size_t d = 0; d < D; d++) {
            float v = (raw[i * D + d] - f->mean[d]) * f->istd[d];
            raw[i * D + d] = v;
            q += (double)v * v;
        }
        bk->sq[i] = (float)q;
    }
    return st;
}

static void bank_free(knn_bank *bk) {
    free(bk->f);
    free(bk->sq);
    free(bk->src);
    memset(bk, 0, sizeof *bk);
}

/* dist(P): distance of each patch feature (P, D) to its nearest bank
 * entry, via |a|^2 + |b|^2 - 2 a.b in blocks (scratch: KNN_ROWS *
 * KNN_CHUNK floats).
 * Rows taken from normal image `skip` are left out (-1: none). */
static void bank_query_skip(float *dist, const knn_bank *bk,
                            const float *feat, size_t P, int D,
                            float *scratch, int skip) {
    /* Blocks of 256 patches x 2048 bank rows: the 2 MB of products stay
     * in cache between the matmul and the scan. */
    const size_t CH = KNN_CHUNK, RB = KNN_ROWS;
    for (size_t i = 0; i < P; i++) dist[i] = FLT_MAX;
    for (size_t r0 = 0; r0 < P; r0 += RB)
    for (size_t b0 = 0; b0 < bk->B; b0 += CH) {
        size_t nb = bk->B - b0 < CH ? bk->B - b0 : CH;
        size_t nr = P - r0 < RB ? P - r0 : RB;
        nn_matmul_bt(scratch, feat + r0 * D, bk->f + b0 * D, (int)nr, D,
                     (int)nb, 0);
        const float *sq = bk->sq + b0;
        const int *src = bk->src + b0;
        /* branch-free minimum (the compiler vectorises it), rows in
         * parallel: this scan is P x B per image, the bulk of the
         * baseline's prediction time */
        #pragma omp parallel for schedule(static) if (nr * nb > 65536)
        for (size_t i = r0; i < r0 + nr; i++) {
            const float *row = scratch + (i - r0) * nb;
            float best = dist[i];
            if (skip < 0) {
                #pragma omp simd reduction(min : best)
                for (size_t j = 0; j < nb; j++) {
                    float v = sq[j] - 2 * row[j];
                    best = v < best ? v : best;
                }
            } else {
                #pragma omp simd reduction(min : best)
                for (size_t j = 0; j < nb; j++) {
                    float v = src[j] == skip ? FLT_MAX : sq[j] - 2 * row[j];
                    best = v < best ? v : best;
                }
            }
            dist[i] = best;
        }
    }
    for (size_t i = 0; i < P; i++) {
        double q = 0;
        for (int d = 0; d < D; d++) q += (double)feat[i * D + d] * feat[i * D + d];
        double v = q + dist[i];
        /* unit vectors: |a - b|^2 / 2 = 1 - cos(a, b) */
        dist[i] = bk->cosine ? (float)(v > 0 ? 0.5 * v : 0)
                             : (float)sqrt(v > 0 ? v : 0);
    }
}

static void bank_query(float *dist, const knn_bank *bk, const float *feat,
                       size_t P, int D, float *scratch) {
    bank_query_skip(dist, bk, feat, P, D, scratch, -1);
}

/* Largest distance of a normal patch the bank has not seen: each normal
 * image against the bank without its own patches, or, with one normal,
 * its mirror image (flipped both ways) against the bank. A threshold at
 * or above it leaves unseen normal texture unflagged; the synthetic
 * samples alone cannot tell, since their backgrounds are bank images. */
static float unseen_normal_max(knn_fx *f, const knn_bank *bk,
                               const run_support *rs, float *feat,
                               float *dist, float *scratch) {
    size_t P = (size_t)f->R * f->R;
    float mx = 0;
    for (size_t i = 0; i < rs->n_normals; i++) {
        const uad_image *x = &rs->normals[i];
        uad_image flip = {0};
        if (rs->n_normals == 1) {
            if (uad_image_alloc(&flip, x->w, x->h, x->c) != UAD_OK) break;
            size_t n = (size_t)x->w * x->h;
            for (int c = 0; c < x->c; c++)
                for (size_t k = 0; k < n; k++)
                    flip.data[c * n + k] = x->data[c * n + (n - 1 - k)];
        }
        uad_status st = fx_run(f, feat, rs->n_normals == 1 ? &flip : x);
        uad_image_free(&flip);
        if (st != UAD_OK) break;
        bank_query_skip(dist, bk, feat, P, f->D, scratch,
                        rs->n_normals == 1 ? -1 : (int)i);
        for (size_t k = 0; k < P; k++) mx = dist[k] > mx ? dist[k] : mx;
    }
    return mx;
}

/* ---- threshold and prototypes from the generated samples ----------- */

typedef struct {
    float tau;       /* patch distance at or above which a patch is anomalous */
    float *proto;    /* (Y, D) L2-normalised category prototypes             */
    int Y;
} knn_head;

/* Grid label of a patch: at least half of its pixels are anomalous. */
static int patch_label(const uint8_t *mask, int S, int R, int gy, int gx) {
    int k = S / R, on = 0;
    for (int y = gy * k; y < (gy + 1) * k; y++)
        for (int x = gx * k; x < (gx + 1) * k; x++) on += mask[y * S + x];
    return 2 * on >= k * k;
}

typedef struct {
    float d;
    uint8_t y;
} dl;

static int by_d_desc(const void *a, const void *b) {
    float x = ((const dl *)a)->d, y = ((const dl *)b)->d;
    return (x < y) - (x > y);
}

/* tau maximising patch-level F1 on the samples (data the run generated,
 * never test images: SPEC section 8). */
static float best_tau(dl *v, size_t n) {
    qsort(v, n, sizeof *v, by_d_desc);
    size_t pos = 0, tp = 0, fp = 0;
    for (size_t i = 0; i < n; i++) pos += v[i].y;
    double best = -1;
    float tau = v[0].d + 1;
    for (size_t i = 0; i < n; i++) {
        tp += v[i].y;
        fp += !v[i].y;
        if (i + 1 < n && v[i + 1].d == v[i].d) continue;
        double f1 = pos ? 2.0 * tp / (double)(tp + fp + pos) : 0;
        if (f1 > best) {
            best = f1;
            tau = v[i].d;
        }
    }
    return tau;
}

/* Patches of every synthetic sample: distances (for tau) and features of
 * the anomalous ones (for the prototypes). */
static uad_status head_fit(knn_head *h, knn_fx *f, const knn_bank *bk,
                           const uad_synth_list *syn, const run_support *rs,
                           int Y, float *scratch) {
    int R = f->R, D = f->D, S = f->S;
    size_t P = (size_t)R * R;
    h->Y = Y;
    h->proto = uad_calloc((size_t)Y * D, sizeof *h->proto);
    float *feat = uad_malloc(P * D * sizeof *feat);
    float *dist = uad_malloc(P * sizeof *dist);
    dl *v = uad_malloc((syn->n ? syn->n : 1) * P * sizeof *v);
    if (!h->proto || !feat || !dist || !v) return UAD_ERR_NOMEM;
    size_t nv = 0;
    uad_status st = UAD_OK;
    for (size_t s = 0; s < syn->n && st == UAD_OK; s++) {
        const uad_synth_sample *smp = &syn->items[s];
        if (smp->image.w != S || smp->image.h != S) continue;
        st = fx_run(f, feat, &smp->image);
        if (st != UAD_OK) break;
        bank_query(dist, bk, feat, P, D, scratch);
        for (int gy = 0; gy < R; gy++)
            for (int gx = 0; gx < R; gx++) {
                size_t i = (size_t)gy * R + gx;
                int y = patch_label(smp->mask, S, R, gy, gx);
                v[nv++] = (dl){dist[i], (uint8_t)y};
                float *pr = h->proto + (size_t)(smp->class_id - 1) * D;
                for (int d = 0; y && d < D; d++) pr[d] += feat[i * D + d];
            }
    }
    for (int c = 0; c < Y; c++) {
        float *pr = h->proto + (size_t)c * D;
        double q = 0;
        for (int d = 0; d < D; d++) q += (double)pr[d] * pr[d];
        float inv = q > 0 ? (float)(1 / sqrt(q)) : 0;
        for (int d = 0; d < D; d++) pr[d] *= inv;
    }
    h->tau = nv ? best_tau(v, nv) : FLT_MAX;
    float floor_tau = unseen_normal_max(f, bk, rs, feat, dist, scratch);
    UAD_DEBUG("kNN threshold: %g from the synthetic samples, %g from "
              "unseen normal patches", h->tau, floor_tau);
    if (floor_tau > h->tau && floor_tau < FLT_MAX) h->tau = floor_tau;
    free(feat);
    free(dist);
    free(v);
    return st;
}

/* Nearest prototype by cosine similarity (class id 1..Y). */
static int nearest_class(const knn_head *h, const float *feat, int D) {
    int best = 1;
    float bs = -FLT_MAX;
    for (int c = 0; c < h->Y; c++) {
        float s = 0;
        for (int d = 0; d < D; d++) s += h->proto[(size_t)c * D + d] * feat[d];
        if (s > bs) {
            bs = s;
            best = c + 1;
        }
    }
    return best;
}

/* ---- prediction ----------------------------------------------------- */

/* Mean of the k largest values (SPEC section 7's image score). */
static double top_mean(const float *v, size_t n, size_t k, float *tmp) {
    memcpy(tmp, v, n * sizeof *tmp);
    if (k > n) k = n;
    /* Partial selection: k passes are cheap for k = 100. */
    double s = 0;
    for (size_t j = 0; j < k; j++) {
        size_t b = j;
        for (size_t i = j + 1; i < n; i++) b = tmp[i] > tmp[b] ? i : b;
        float t = tmp[j];
        tmp[j] = tmp[b];
        tmp[b] = t;
        s += tmp[j];
    }
    return k ? s / (double)k : 0;
}

/* Maps of one test image at its own size. */
static uad_status knn_one(run_preds *out, size_t i, knn_fx *f,
                          const knn_bank *bk, const knn_head *h,
                          const uad_image *img, float *feat, float *dist,
                          float *scratch) {
    int R = f->R, D = f->D, W = img->w, H = img->h;
    size_t P = (size_t)R * R, N = (size_t)W * H;
    uad_status st = fx_run(f, feat, img);
    if (st != UAD_OK) return st;
    bank_query(dist, bk, feat, P, D, scratch);
    out->det[i] = uad_malloc(N * sizeof(float));
    out->cls[i] = uad_malloc(N);
    float *tmp = uad_malloc((N > P ? N : P) * sizeof(float));
    uint8_t gcls[256 * 256];
    if (!out->det[i] || !out->cls[i] || !tmp || P > sizeof gcls) {
        free(tmp);
        return uad_fail(UAD_ERR_NOMEM, "out of memory (kNN maps)");
    }
    nn_resize_bilinear_forward(out->det[i], dist, 1, R, R, H, W);
    /* Distances scaled so that tau lands on 0.5, as S_d's threshold does:
     * a monotonic map (the metrics only see the ranking) that puts the
     * maps on the heat-map scale of the figures. */
    float scale = h->tau > 0 && h->tau < FLT_MAX ? 0.5f / h->tau : 1.0f;
    for (size_t k = 0; k < N; k++) out->det[i][k] *= scale;
    float thr = h->tau > 0 && h->tau < FLT_MAX ? 0.5f : h->tau;
    for (size_t k = 0; k < P; k++)
        gcls[k] = dist[k] >= h->tau ? (uint8_t)nearest_class(h, feat + k * D,
                                                             D) : 0;
    size_t area[256] = {0};
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            size_t k = (size_t)y * W + x;
            /* Pixel class: the grid's class where the upsampled distance
             * reaches tau (nearest grid cell, PyTorch's nearest grid). */
            int gy = (int)((double)y * R / H), gx = (int)((double)x * R / W);
            uint8_t c = out->det[i][k] >= thr ? gcls[gy * R + gx] : 0;
            if (out->det[i][k] >= thr && !c)
                c = (uint8_t)nearest_class(h, feat + (size_t)(gy * R + gx) * D,
                                           D);
            out->cls[i][k] = c;
            area[c]++;
        }
    int best = 0;
    for (int c = 1; c <= h->Y; c++)
        if (area[c] && (best == 0 || area[c] > area[best])) best = c;
    out->image_class[i] = best;
    /* image score: SPEC section 7's mean of the 100 highest map values;
     * with a ViT, AnomalyDINO's mean of the highest 1% patch distances
     * (at least one patch) */
    if (f->cosine)
        out->score[i] = top_mean(dist, P, P / 100 ? P / 100 : 1, tmp);
    else
        out->score[i] = top_mean(out->det[i], N, 100, tmp);
    out->w[i] = W;
    out->h[i] = H;
    free(tmp);
    return UAD_OK;
}

uad_status run_knn(run_preds *out, const run_support *rs,
                   const uad_synth_list *syn, const uad_priors *pri,
                   const uad_support *sup, const uad_run_params *p,
                   const uad_vit *vit) {
    knn_fx f;
    knn_bank bk = {0};
    knn_head h = {0};
    double t0 = run_now();
    uad_status st = fx_init(&f, pri, p, vit);
    size_t P = (size_t)f.R * f.R;
    float *scratch = uad_malloc((size_t)KNN_ROWS * KNN_CHUNK * sizeof *scratch);
    float *feat = uad_malloc(P * (size_t)f.D * sizeof *feat);
    float *dist = uad_malloc(P * sizeof *dist);
    if (st == UAD_OK && (!scratch || !feat || !dist)) st = UAD_ERR_NOMEM;
    if (st == UAD_OK) st = bank_build(&bk, &f, rs, p->seed);
    if (st == UAD_OK)
        st = head_fit(&h, &f, &bk, syn, rs, pri->n_categories, scratch);
    out->seconds_train = run_now() - t0;
    t0 = run_now();
    for (size_t i = 0; st == UAD_OK && i < sup->n_eval; i++) {
        uad_image img = {0};
        st = uad_image_load(&img, sup->eval[i]->abs_path, &p->image);
        if (st == UAD_OK)
            st = knn_one(out, i, &f, &bk, &h, &img, feat, dist, scratch);
        uad_image_free(&img);
        uad_progress("kNN predicting", i + 1, sup->n_eval);
    }
    out->seconds_predict = run_now() - t0;
    free(scratch);
    free(feat);
    free(dist);
    free(h.proto);
    bank_free(&bk);
    fx_free(&f);
    return st;
}
