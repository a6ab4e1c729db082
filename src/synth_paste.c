/* synth_paste.c - example-guided (few-shot) synthesis, SPEC section 5
 * without diffusion: connected components of each example mask are
 * cropped with 25% context, augmented (image and mask identically),
 * pasted onto a normal image and blended in the gradient domain
 * (Poisson equation over the mask, the normal image as boundary);
 * among B candidates the one whose blended crop is most similar (SSIM)
 * to the augmented example crop is kept. */
#include "synth_internal.h"

#include <math.h>
#include <string.h>

/* One usable component: its crop (with context) from the example. */
typedef struct comp {
    int ex;               /* example index                             */
    int class_id;
    int x0, y0, pw, ph;   /* crop origin and size in the example       */
    int ew, eh;           /* example size                              */
    int small;            /* under the minimum area (fallback only)    */
    uint8_t *m;           /* ph*pw: this component's pixels            */
} comp;

typedef struct paste_set {
    comp *v;
    size_t n;
} paste_set;

static void paste_set_free(paste_set *ps) {
    for (size_t i = 0; i < ps->n; i++) free(ps->v[i].m);
    free(ps->v);
}

/* Append component k of label image lab (example e, w x h) with 25% of
 * its size as context on every side. */
static uad_status add_component(paste_set *ps, const int *lab, int k,
                                const uad_synth_example *ex, int e,
                                int small) {
    int w = ex->image->w, h = ex->image->h, x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (size_t i = 0; i < (size_t)w * h; i++)
        if (lab[i] == k) {
            int x = (int)(i % w), y = (int)(i / w);
            x0 = x < x0 ? x : x0; x1 = x > x1 ? x : x1;
            y0 = y < y0 ? y : y0; y1 = y > y1 ? y : y1;
        }
    int mx = (int)ceil(0.25 * (x1 - x0 + 1)), my = (int)ceil(0.25 * (y1 - y0 + 1));
    comp *c = &ps->v[ps->n];
    c->ex = e;
    c->class_id = ex->class_id;
    c->x0 = x0 - mx < 0 ? 0 : x0 - mx;
    c->y0 = y0 - my < 0 ? 0 : y0 - my;
    c->pw = (x1 + mx >= w ? w - 1 : x1 + mx) - c->x0 + 1;
    c->ph = (y1 + my >= h ? h - 1 : y1 + my) - c->y0 + 1;
    c->ew = w; c->eh = h; c->small = small;
    c->m = uad_malloc((size_t)c->pw * c->ph);
    if (!c->m) return UAD_ERR_NOMEM;
    for (int y = 0; y < c->ph; y++)
        for (int x = 0; x < c->pw; x++)
            c->m[(size_t)y * c->pw + x] =
                lab[(size_t)(y + c->y0) * w + x + c->x0] == k;
    ps->n++;
    return UAD_OK;
}

/* Components of one example: those of at least min_area px; smaller
 * ones are skipped with a warning, and kept as a fallback only (see
 * class_pool) when at least a quarter of it and 4 px. */
static uad_status example_components(paste_set *ps,
                                     const uad_synth_example *ex, int e,
                                     double min_area) {
    int w = ex->image->w, h = ex->image->h;
    size_t n = (size_t)w * h;
    int *lab = uad_malloc(2 * n * sizeof *lab);
    size_t *areas = uad_malloc(n * sizeof *areas);
    uint8_t *m = uad_malloc(n);
    uad_status st = lab && areas && m ? UAD_OK : UAD_ERR_NOMEM;
    int nl = 0;
    if (!st) {
        for (size_t i = 0; i < n; i++) m[i] = ex->mask[i] != 0;
        nl = syn_components(lab, lab + n, areas, m, w, h);
        comp *grown = realloc(ps->v, (ps->n + (size_t)nl + 1) * sizeof *ps->v);
        if (!grown) st = UAD_ERR_NOMEM;
        else ps->v = grown;
    }
    for (int k = 1; !st && k <= nl; k++) {
        int small = (double)areas[k - 1] < min_area;
        if (small)
            UAD_WARN("synth: %s: skipping a defect region of %zu px "
                     "(minimum %.0f px at this size)",
                     ex->name ? ex->name : "example", areas[k - 1], min_area);
        if ((double)areas[k - 1] >= fmax(4.0, min_area / 4))
            st = add_component(ps, lab, k, ex, e, small);
    }
    free(lab); free(areas); free(m);
    return st;
}

/* Split every example mask into 8-connected components (the minimum
 * area is min_component at 512 x 512, scaled by the image's area). */
static uad_status collect_components(paste_set *ps, const uad_synth_example *ex,
                                     size_t n_ex, int min_component) {
    memset(ps, 0, sizeof *ps);
    for (size_t e = 0; e < n_ex; e++) {
        size_t n = (size_t)ex[e].image->w * ex[e].image->h;
        double min_area = fmax(4.0, min_component * (double)n / 262144.0);
        uad_status st = example_components(ps, &ex[e], (int)e, min_area);
        if (st) {
            paste_set_free(ps);
            memset(ps, 0, sizeof *ps);
            return st;
        }
    }
    return UAD_OK;
}

/* The augmented patch on the destination grid: canvas of dw x dh at
 * (dx0, dy0) in the normal image; img c*dh*dw, m and valid dh*dw. */
typedef struct patch {
    int dx0, dy0, dw, dh, c;
    float *img;
    uint8_t *m, *valid;
} patch;

static void patch_free(patch *p) {
    free(p->img); free(p->m); free(p->valid);
    memset(p, 0, sizeof *p);
}

/* Forward map A = R * T * S: scale to the normal's resolution, optional
 * transpose, then none / h-flip / v-flip / rotation by 0-90 degrees. */
static void draw_affine(double A[4], const comp *cp, const uad_image *dst,
                        uad_rng *r) {
    double sx = (double)dst->w / cp->ew, sy = (double)dst->h / cp->eh;
    double M[4] = {sx, 0, 0, sy};
    if (uad_rng_below(r, 2)) { double t[4] = {0, sy, sx, 0}; memcpy(M, t, sizeof t); }
    int mode = (int)uad_rng_below(r, 4);
    double R[4] = {1, 0, 0, 1};
    if (mode == 1) R[0] = -1;
    if (mode == 2) R[3] = -1;
    if (mode == 3) {
        double th = uad_rng_range(r, 0, 1.5707963267948966);
        R[0] = cos(th); R[1] = -sin(th); R[2] = sin(th); R[3] = cos(th);
    }
    A[0] = R[0] * M[0] + R[1] * M[2]; A[1] = R[0] * M[1] + R[1] * M[3];
    A[2] = R[2] * M[0] + R[3] * M[2]; A[3] = R[2] * M[1] + R[3] * M[3];
}

/* Resample the component's crop through A into a canvas centred at
 * (cx, cy) of the normal image (bilinear image, nearest mask). */
static uad_status warp_patch(patch *p, const comp *cp, const uad_image *ex,
                             const double A[4], double cx, double cy) {
    double det = A[0] * A[3] - A[1] * A[2];
    double I[4] = {A[3] / det, -A[1] / det, -A[2] / det, A[0] / det};
    double hw = cp->pw * 0.5, hh = cp->ph * 0.5, ex_w = 0, ex_h = 0;
    for (int k = 0; k < 4; k++) {
        double u = (k & 1 ? hw : -hw), v = (k & 2 ? hh : -hh);
        ex_w = fmax(ex_w, fabs(A[0] * u + A[1] * v));
        ex_h = fmax(ex_h, fabs(A[2] * u + A[3] * v));
    }
    memset(p, 0, sizeof *p);
    p->dw = (int)ceil(2 * ex_w); p->dh = (int)ceil(2 * ex_h); p->c = ex->c;
    if (p->dw < 1) p->dw = 1;
    if (p->dh < 1) p->dh = 1;
    p->dx0 = (int)floor(cx - p->dw * 0.5); p->dy0 = (int)floor(cy - p->dh * 0.5);
    size_t pn = (size_t)p->dw * p->dh, en = (size_t)ex->w * ex->h;
    p->img = uad_malloc(pn * (size_t)p->c * sizeof *p->img);
    p->m = uad_calloc(pn, 1);
    p->valid = uad_calloc(pn, 1);
    if (!p->img || !p->m || !p->valid) { patch_free(p); return UAD_ERR_NOMEM; }
    for (int y = 0; y < p->dh; y++)
        for (int x = 0; x < p->dw; x++) {
            double u = x + 0.5 - p->dw * 0.5, v = y + 0.5 - p->dh * 0.5;
            double su = I[0] * u + I[1] * v + hw - 0.5;
            double sv = I[2] * u + I[3] * v + hh - 0.5;
            size_t q = (size_t)y * p->dw + x;
            if (su < -0.5 || sv < -0.5 || su > cp->pw - 0.5 || sv > cp->ph - 0.5)
                continue;
            int nu = (int)floor(su + 0.5), nv = (int)floor(sv + 0.5);
            nu = nu >= cp->pw ? cp->pw - 1 : nu;
            nv = nv >= cp->ph ? cp->ph - 1 : nv;
            p->valid[q] = 1;
            p->m[q] = cp->m[(size_t)nv * cp->pw + nu];
            su = fmin(fmax(su, 0), cp->pw - 1);
            sv = fmin(fmax(sv, 0), cp->ph - 1);
            int iu = (int)su, iv = (int)sv;
            int ju = iu + 1 < cp->pw ? iu + 1 : iu, jv = iv + 1 < cp->ph ? iv + 1 : iv;
            float fu = (float)(su - iu), fv = (float)(sv - iv);
            for (int c = 0; c < p->c; c++) {
                const float *s = ex->data + c * en;
                float a = s[(size_t)(iv + cp->y0) * ex->w + iu + cp->x0];
                float b = s[(size_t)(iv + cp->y0) * ex->w + ju + cp->x0];
                float d = s[(size_t)(jv + cp->y0) * ex->w + iu + cp->x0];
                float e = s[(size_t)(jv + cp->y0) * ex->w + ju + cp->x0];
                p->img[c * pn + q] = (a + fu * (b - a)) * (1 - fv) +
                                     (d + fu * (e - d)) * fv;
            }
        }
    return UAD_OK;
}

/* Pixels of the canvas in omega: patch mask and inside the image. */
static size_t omega_mark(uint8_t *om, uint8_t *mask, const patch *p, int w,
                         int h) {
    size_t cnt = 0;
    memset(mask, 0, (size_t)w * h);
    for (int y = 0; y < p->dh; y++)
        for (int x = 0; x < p->dw; x++) {
            int ix = x + p->dx0, iy = y + p->dy0;
            size_t q = (size_t)y * p->dw + x;
            om[q] = p->m[q] && ix >= 0 && iy >= 0 && ix < w && iy < h;
            if (om[q]) mask[(size_t)iy * w + ix] = 1;
            cnt += om[q];
        }
    return cnt;
}

/* Mean of (out - g) over canvas pixels next to omega but outside it:
 * the brightness offset that matches the patch to its new place. */
static float border_offset(const float *o, const float *g, const uint8_t *om,
                           const patch *p, int w, int h) {
    const int nx[4] = {1, -1, 0, 0}, ny[4] = {0, 0, 1, -1};
    double off = 0;
    size_t nb = 0;
    for (int y = 0; y < p->dh; y++)
        for (int x = 0; x < p->dw; x++) {
            size_t q = (size_t)y * p->dw + x;
            int ix = x + p->dx0, iy = y + p->dy0, touch = 0;
            if (om[q] || !p->valid[q] || ix < 0 || iy < 0 || ix >= w || iy >= h)
                continue;
            for (int k = 0; k < 4; k++) {
                int qx = x + nx[k], qy = y + ny[k];
                touch |= qx >= 0 && qy >= 0 && qx < p->dw && qy < p->dh &&
                         om[(size_t)qy * p->dw + qx];
            }
            if (!touch) continue;
            off += o[(size_t)iy * w + ix] - g[q];
            nb++;
        }
    return nb ? (float)(off / (double)nb) : 0.0f;
}

/* SOR sweeps of lap f = lap g over omega (one plane); f outside omega is
 * the normal image (Dirichlet border), image edges are left out. */
static void poisson_sweeps(float *o, const float *g, const uint8_t *om,
                           const patch *p, int w, int h, int iters) {
    const int nx[4] = {1, -1, 0, 0}, ny[4] = {0, 0, 1, -1};
    for (int it = 0; it < iters; it++)
        for (int y = 0; y < p->dh; y++)
            for (int x = 0; x < p->dw; x++) {
                size_t q = (size_t)y * p->dw + x;
                if (!om[q]) continue;
                size_t i = (size_t)(y + p->dy0) * w + x + p->dx0;
                float sum = 0;
                int k_n = 0;
                for (int k = 0; k < 4; k++) {
                    int qx = x + nx[k], qy = y + ny[k];
                    int ix = qx + p->dx0, iy = qy + p->dy0;
                    if (ix < 0 || iy < 0 || ix >= w || iy >= h) continue;
                    int qin = qx >= 0 && qy >= 0 && qx < p->dw && qy < p->dh &&
                              p->valid[(size_t)qy * p->dw + qx];
                    float gq = qin ? g[(size_t)qy * p->dw + qx] : g[q];
                    sum += o[(size_t)iy * w + ix] + (g[q] - gq);
                    k_n++;
                }
                if (k_n) o[i] += 1.8f * (sum / (float)k_n - o[i]);
            }
}

/* Gradient-domain blend of the patch into out (a copy of the normal)
 * over omega = patch mask pixels inside the image: solve the Poisson
 * equation lap f = lap g (g the patch) with f = out on omega's border,
 * by successive over-relaxation from g shifted by the border's mean
 * offset. Returns the number of pixels in omega (also set in mask). */
static size_t poisson_paste(uad_image *out, uint8_t *mask, const patch *p,
                            float lo, float hi, int max_iters) {
    int w = out->w, h = out->h;
    size_t n = (size_t)w * h, pn = (size_t)p->dw * p->dh;
    uint8_t *om = malloc(pn);
    if (!om) return 0;
    size_t cnt = omega_mark(om, mask, p, w, h);
    int iters = 2 * (p->dw > p->dh ? p->dw : p->dh) + 40;
    if (iters > max_iters) iters = max_iters;
    for (int c = 0; cnt && c < out->c; c++) {
        float *o = out->data + c * n;
        const float *g = p->img + c * pn;
        float off = border_offset(o, g, om, p, w, h);
        for (size_t q = 0; q < pn; q++)
            if (om[q])
                o[(size_t)(q / p->dw + p->dy0) * w + q % p->dw + p->dx0] =
                    g[q] + off;
        poisson_sweeps(o, g, om, p, w, h, iters);
        for (size_t q = 0; q < pn; q++) {
            size_t i = (size_t)(q / p->dw + p->dy0) * w + q % p->dw + p->dx0;
            if (om[q]) o[i] = syn_clampf(o[i], lo, hi);
        }
    }
    free(om);
    return cnt;
}

/* SSIM between the result and the augmented example over the canvas
 * (clipped to the image); where the patch has no source pixel the
 * result stands in for it. */
static double canvas_ssim(const uad_image *res, const patch *p) {
    int x0 = p->dx0 < 0 ? 0 : p->dx0, y0 = p->dy0 < 0 ? 0 : p->dy0;
    int x1 = p->dx0 + p->dw > res->w ? res->w : p->dx0 + p->dw;
    int y1 = p->dy0 + p->dh > res->h ? res->h : p->dy0 + p->dh;
    if (x1 <= x0 || y1 <= y0) return -1;
    int cw = x1 - x0, ch = y1 - y0;
    size_t cn = (size_t)cw * ch, n = (size_t)res->w * res->h;
    size_t pn = (size_t)p->dw * p->dh;
    uad_image a = {cw, ch, res->c, NULL, 32, res->c, ""}, b = a;
    a.data = malloc(cn * res->c * sizeof(float));
    b.data = malloc(cn * res->c * sizeof(float));
    double s = -1;
    if (a.data && b.data) {
        for (int c = 0; c < res->c; c++)
            for (int y = 0; y < ch; y++)
                for (int x = 0; x < cw; x++) {
                    size_t i = (size_t)(y + y0) * res->w + x + x0;
                    size_t q = (size_t)(y + y0 - p->dy0) * p->dw + x + x0 - p->dx0;
                    size_t k = c * cn + (size_t)y * cw + x;
                    a.data[k] = res->data[c * n + i];
                    b.data[k] = p->valid[q] ? p->img[c * pn + q] : a.data[k];
                }
        s = uad_ssim(&a, &b);
    }
    free(a.data);
    free(b.data);
    return s;
}

typedef struct fs_ctx {
    uad_synth *s;
    const uad_synth_example *ex;
    paste_set ps;
    int *classes;        /* class of each job group                    */
    uad_synth_sample *items;
} fs_ctx;

/* One candidate: component, normal image, augmentation, position. */
static double paste_candidate(uad_synth_sample *cand, fs_ctx *f,
                              const size_t *pool, size_t n_pool,
                              uad_rng *r, int max_iters) {
    uad_synth *s = f->s;
    const comp *cp = &f->ps.v[pool[uad_rng_below(r, n_pool)]];
    size_t i = (size_t)uad_rng_below(r, s->n);
    const uad_image *x = &s->normals[i];
    const uad_image *exi = f->ex[cp->ex].image;
    double A[4], cx, cy;
    draw_affine(A, cp, x, r);
    if (uad_rng_below(r, 2)) {
        cx = (cp->x0 + cp->pw * 0.5) * x->w / cp->ew;
        cy = (cp->y0 + cp->ph * 0.5) * x->h / cp->eh;
    } else {
        size_t n = (size_t)x->w * x->h, k = (size_t)uad_rng_below(r, n);
        for (size_t t = 0; t < n; t++)
            if (s->fg[i][(k + t) % n]) { k = (k + t) % n; break; }
        cx = (double)(k % x->w) + 0.5;
        cy = (double)(k / x->w) + 0.5;
    }
    patch p;
    if (warp_patch(&p, cp, exi, A, cx, cy)) return -2;
    memcpy(cand->image.data, x->data,
           (size_t)x->c * x->w * x->h * sizeof *x->data);
    cand->image.w = x->w; cand->image.h = x->h; cand->image.c = x->c;
    cand->image.bit_depth = x->bit_depth;
    cand->source = (int)i;
    float lo, hi;
    syn_value_range(&lo, &hi, x);
    double sc = -1;
    if (poisson_paste(&cand->image, cand->mask, &p, lo, hi, max_iters))
        sc = canvas_ssim(&cand->image, &p);
    patch_free(&p);
    return sc;
}

/* Components usable for class cls into pool; the regions under the
 * minimum area only when the class has no other (the SPEC's minimum is
 * for 512 x 512; MTD blowholes at 256 x 256 are often all below it). */
static size_t class_pool(size_t *pool, const paste_set *ps, int cls) {
    size_t n = 0;
    for (int pass = 0; pass < 2 && !n; pass++)
        for (size_t i = 0; i < ps->n; i++)
            if (ps->v[i].class_id == cls && ps->v[i].small == pass)
                pool[n++] = i;
    return n;
}

/* Kept sample k of class `cls`: B candidates, the best SSIM kept. */
static uad_status fs_one(uad_synth_sample *out, fs_ctx *f, int cls,
                         uint64_t seed) {
    uad_synth *s = f->s;
    size_t *pool = uad_malloc(f->ps.n * sizeof *pool), n_pool = 0, px = 0;
    if (!pool) return UAD_ERR_NOMEM;
    n_pool = class_pool(pool, &f->ps, cls);
    for (size_t i = 0; i < s->n; i++)
        if ((size_t)s->normals[i].w * s->normals[i].h > px)
            px = (size_t)s->normals[i].w * s->normals[i].h;
    uad_synth_sample cand = {0}, best = {0};
    int c = s->normals[0].c;
    cand.image.data = uad_malloc(px * c * sizeof(float));
    best.image.data = uad_malloc(px * c * sizeof(float));
    cand.mask = uad_malloc(px);
    best.mask = uad_malloc(px);
    uad_status st = UAD_OK;
    double best_sc = -3;
    if (!cand.image.data || !best.image.data || !cand.mask || !best.mask)
        st = UAD_ERR_NOMEM;
    uad_rng rng, cr;
    uad_rng_seed(&rng, seed);
    /* Candidates are ranked after a short solve (the border offset is
     * matched exactly, the interior relaxes for FAST_ITERS sweeps); the
     * winner is then blended again with the full solve and rescored. */
    enum { FAST_ITERS = 40, FULL_ITERS = 400 };
    int best_b = -1;
    for (int b = 0; !st && b < s->p.n_candidates; b++) {
        uad_rng_fork(&cr, &rng, (uint64_t)b);
        double sc = paste_candidate(&cand, f, pool, n_pool, &cr, FAST_ITERS);
        if (sc < -1.5) st = UAD_ERR_NOMEM;
        else if (sc > best_sc && sc > -1) {
            best_sc = sc;
            best_b = b;
        }
    }
    if (!st && best_b >= 0) {
        uad_rng_fork(&cr, &rng, (uint64_t)best_b);
        best_sc = paste_candidate(&best, f, pool, n_pool, &cr, FULL_ITERS);
        if (best_sc < -1.5) st = UAD_ERR_NOMEM;
    }
    free(pool);
    free(cand.image.data);
    free(cand.mask);
    if (!st && best_sc < -1)
        st = uad_fail(UAD_ERR_DATA, "synth: class %d: no example region "
                      "could be placed on a normal image", cls);
    if (st) {
        free(best.image.data);
        free(best.mask);
        return st;
    }
    best.class_id = cls;
    best.score = best_sc;
    best.seed = seed;
    snprintf(best.method, sizeof best.method, "example:poisson");
    *out = best;
    return UAD_OK;
}

static uad_status fs_job(void *ctx, size_t j) {
    fs_ctx *f = ctx;
    int per = f->s->p.per_category, g = (int)(j / (size_t)per);
    int cls = f->classes[g];
    uint64_t seed = uad_synth_sample_seed(f->s->p.seed ^ 0x5eedf00dull,
                                          cls - 1, (int)(j % (size_t)per));
    return fs_one(&f->items[j], f, cls, seed);
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Distinct class ids of the examples, sorted; each must keep at least
 * one component. */
static uad_status list_classes(int **out, int *n_out, const fs_ctx *f,
                               const uad_synth_example *ex, size_t n_ex) {
    int *cls = uad_malloc((n_ex + 1) * sizeof *cls), n = 0;
    if (!cls) return UAD_ERR_NOMEM;
    for (size_t e = 0; e < n_ex; e++) {
        int seen = 0;
        for (int k = 0; k < n; k++) seen |= cls[k] == ex[e].class_id;
        if (!seen) cls[n++] = ex[e].class_id;
    }
    qsort(cls, (size_t)n, sizeof *cls, cmp_int);
    for (int k = 0; k < n; k++) {
        int found = 0, c = cls[k];
        for (size_t i = 0; i < f->ps.n; i++) {
            if (f->ps.v[i].class_id != c) continue;
            found |= f->ps.v[i].small ? 1 : 2;
        }
        if (found == 1)
            UAD_WARN("synth: class %d: every example region is under the "
                     "minimum area; using those of at least a quarter of "
                     "it", c);
        if (!found) {
            const char *nm = "example";
            for (size_t e = 0; e < n_ex; e++)
                if (ex[e].class_id == c && ex[e].name) { nm = ex[e].name; break; }
            free(cls);
            return uad_fail(UAD_ERR_DATA, "synth: %s (class %d): every "
                            "defect region of its examples is below a "
                            "quarter of the minimum area (use a larger "
                            "image size)", nm, c);
        }
    }
    *out = cls;
    *n_out = n;
    return UAD_OK;
}

static uad_status check_examples(const uad_synth *s,
                                 const uad_synth_example *ex, size_t n_ex) {
    if (!n_ex || !ex)
        return uad_fail(UAD_ERR_DATA, "synth: no examples given");
    for (size_t e = 0; e < n_ex; e++) {
        const uad_image *im = ex[e].image;
        const char *nm = ex[e].name ? ex[e].name : "example";
        if (!im || !im->data || !ex[e].mask || im->w < 1 || im->h < 1)
            return uad_fail(UAD_ERR_DATA, "synth: %s: no image or mask", nm);
        if (im->c != s->normals[0].c)
            return uad_fail(UAD_ERR_DATA, "synth: %s: %d channels, the "
                            "normal images have %d", nm, im->c,
                            s->normals[0].c);
        if (ex[e].class_id < 1)
            return uad_fail(UAD_ERR_DATA, "synth: %s: class id %d (want "
                            ">= 1)", nm, ex[e].class_id);
    }
    return UAD_OK;
}

uad_status uad_synth_few_shot(uad_synth_list *out, uad_synth *s,
                              const uad_synth_example *ex, size_t n_ex) {
    memset(out, 0, sizeof *out);
    const uad_synth_params *p = &s->p;
    if (p->engine != UAD_SYNTH_PROCEDURAL)
        return uad_fail(UAD_ERR_USAGE, "synth: the diffusion engine needs "
                        "Stable Diffusion + BrushNet weights, not built yet");
    uad_status st = check_examples(s, ex, n_ex);
    if (st) return st;
    fs_ctx f = {s, ex, {0}, NULL, NULL};
    int n_cls = 0;
    st = collect_components(&f.ps, ex, n_ex, p->min_component);
    if (!st) st = list_classes(&f.classes, &n_cls, &f, ex, n_ex);
    if (st) {
        paste_set_free(&f.ps);
        return st;
    }
    size_t n_jobs = (size_t)n_cls * (size_t)p->per_category;
    f.items = uad_calloc(n_jobs, sizeof *f.items);
    if (f.items) {
        out->items = f.items;
        out->n = n_jobs;
        st = syn_run_jobs("paste", fs_job, &f, n_jobs, p->n_threads);
        if (st) uad_synth_list_free(out);
    } else {
        st = UAD_ERR_NOMEM;
    }
    paste_set_free(&f.ps);
    free(f.classes);
    return st;
}
