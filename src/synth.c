/* synth.c - the synthesis engine: candidates, the weight-free category
 * consistency score, SSIM, prior-guided (zero-shot) and example-guided
 * (few-shot) sample making, and the worker pool. */
#include "synth_internal.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#define ALL_LOCAL_SHAPES 0x7fu


uad_synth_params uad_synth_default_params(void) {
    uad_synth_params p;
    memset(&p, 0, sizeof p);
    p.engine = UAD_SYNTH_PROCEDURAL;
    p.per_category = 16;
    p.n_candidates = 32;
    p.n_threads = 1;
    p.min_component = 256;
    return p;
}

/* ---- images and lists ------------------------------------------------ */

static uad_status image_copy(uad_image *dst, const uad_image *src) {
    size_t n;
    *dst = *src;
    dst->data = NULL;
    if (!uad_mul3_size(&n, (size_t)src->c, (size_t)src->w, (size_t)src->h))
        return uad_fail(UAD_ERR_LIMIT, "synth: image too large");
    dst->data = uad_malloc(n * sizeof *dst->data);
    if (!dst->data) return UAD_ERR_NOMEM;
    memcpy(dst->data, src->data, n * sizeof *dst->data);
    return UAD_OK;
}

void syn_sample_free(uad_synth_sample *s) {
    free(s->image.data);
    free(s->mask);
    memset(s, 0, sizeof *s);
}

void uad_synth_list_free(uad_synth_list *l) {
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) syn_sample_free(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* ---- create / free --------------------------------------------------- */

static uad_status check_params(const uad_synth_params *p) {
    if (p->engine == UAD_SYNTH_DIFFUSION)
        return uad_fail(UAD_ERR_USAGE, "synth: the diffusion engine needs "
                        "Stable Diffusion + BrushNet weights, not built yet; "
                        "use the procedural engine");
    if (p->engine != UAD_SYNTH_PROCEDURAL)
        return uad_fail(UAD_ERR_USAGE, "synth: unknown engine %d",
                        (int)p->engine);
    if (p->per_category < 1 || p->n_candidates < 1 || p->n_threads < 1 ||
        p->min_component < 1)
        return uad_fail(UAD_ERR_USAGE, "synth: per_category, n_candidates, "
                        "n_threads and min_component must be >= 1");
    return UAD_OK;
}

void uad_synth_free(uad_synth *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->normals[i].data);
        free(s->fg[i]);
    }
    free(s->normals);
    free(s->fg);
    free(s);
}

uad_status uad_synth_create(uad_synth **out, const uad_image *normals,
                            size_t n, const uad_synth_params *p) {
    uad_synth_params def = uad_synth_default_params();
    *out = NULL;
    if (!p) p = &def;
    uad_status st = check_params(p);
    if (st) return st;
    if (!n || !normals)
        return uad_fail(UAD_ERR_DATA, "synth: no normal images given");
    for (size_t i = 0; i < n; i++)
        if (normals[i].w < 1 || normals[i].h < 1 || !normals[i].data ||
            (normals[i].c != 1 && normals[i].c != 3) ||
            normals[i].c != normals[0].c)
            return uad_fail(UAD_ERR_DATA, "synth: normal image %zu: empty "
                            "or channel count differs from the first", i);
    uad_synth *s = uad_calloc(1, sizeof *s);
    if (!s) return UAD_ERR_NOMEM;
    s->p = *p;
    s->normals = uad_calloc(n, sizeof *s->normals);
    s->fg = uad_calloc(n, sizeof *s->fg);
    if (!s->normals || !s->fg) {
        uad_synth_free(s);
        return UAD_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++, s->n++) {
        st = image_copy(&s->normals[i], &normals[i]);
        s->fg[i] = uad_malloc((size_t)normals[i].w * normals[i].h);
        if (st || !s->fg[i]) {
            if (!st) free(s->normals[i].data);
            free(s->fg[i]);
            uad_synth_free(s);
            return st ? st : UAD_ERR_NOMEM;
        }
        double frac = uad_fg_estimate(s->fg[i], &s->normals[i]);
        UAD_DEBUG("synth: normal %zu foreground %.1f%%", i, 100 * frac);
    }
    *out = s;
    return UAD_OK;
}

const uint8_t *uad_synth_foreground(const uad_synth *s, size_t i) {
    return s && i < s->n ? s->fg[i] : NULL;
}

uint64_t uad_synth_sample_seed(uint64_t seed, int cat, int k) {
    uad_rng r, c;
    uad_rng_seed(&r, seed);
    uad_rng_fork(&c, &r, ((uint64_t)(uint32_t)cat << 32) | (uint32_t)k);
    return uad_rng_u64(&c);
}

/* ---- consistency score ----------------------------------------------- */

/* Mean and standard deviation of the channel-averaged source over the
 * ring around the mask (dilated by rad, mask excluded). */
static void ring_stats(double *mean, double *sd, const uad_image *x,
                       const uint8_t *mask, int rad) {
    int w = x->w, h = x->h;
    size_t n = (size_t)w * h, cnt = 0;
    double s = 0, s2 = 0;
    uint8_t *d = malloc(3 * n);
    *mean = 0;
    *sd = 0;
    if (!d) return;
    syn_dilate(d, d + n, mask, w, h, rad);
    for (size_t i = 0; i < n; i++) {
        if (!d[i] || mask[i]) continue;
        double v = 0;
        for (int c = 0; c < x->c; c++) v += x->data[c * n + i];
        v /= x->c;
        s += v;
        s2 += v * v;
        cnt++;
    }
    free(d);
    if (!cnt) return;
    *mean = s / (double)cnt;
    *sd = sqrt(fmax(0, s2 / (double)cnt - *mean * *mean));
}

/* score = visibility * coverage * agreement * (1 - clipped / 2):
 * - visibility = 1 - exp(-contrast / (2 sd_ring + 0.02)), contrast the
 *   mean of (mean |R - X| inside) and |mean R inside - mean X of the
 *   ring around the mask|: a change that stands out from the local
 *   texture scores high, one lost in it low;
 * - coverage: fraction of mask pixels changed by at least half of
 *   UAD_SYNTH_MIN_CHANGE (the change fills the labelled region);
 * - agreement with the recipe's direction: a logistic of the mean
 *   signed change (scale 0.01), so "black" must darken, "white"
 *   brighten; 1 when the description has no direction;
 * - clipped: fraction of mask values newly saturated at the range ends.
 * All changes are in units of the value range. */
double uad_synth_score(const uad_image *result, const uad_image *source,
                       const uint8_t *mask, const uad_synth_recipe *r) {
    int w = source->w, h = source->h;
    size_t n = (size_t)w * h, area = 0, covered = 0, clipped = 0;
    float lo, hi;
    syn_value_range(&lo, &hi, source);
    double range = hi - lo, sabs = 0, ssig = 0, sres = 0;
    for (size_t i = 0; i < n; i++) {
        if (!mask[i]) continue;
        double dpx = 0;
        area++;
        for (int c = 0; c < source->c; c++) {
            float a = result->data[c * n + i], b = source->data[c * n + i];
            dpx += fabs(a - b);
            ssig += a - b;
            sres += a;
            int sat = a <= lo || a >= hi, was = b <= lo || b >= hi;
            clipped += sat && !was;
        }
        dpx /= source->c * range;
        sabs += dpx;
        covered += dpx >= 0.5 * UAD_SYNTH_MIN_CHANGE;
    }
    if (!area) return 0;
    double nv = (double)area * source->c;
    double mabs = sabs / (double)area, msig = ssig / (nv * range);
    double rmean, rsd;
    int rad = (int)(sqrt((double)area) / 3);
    ring_stats(&rmean, &rsd, source, mask, rad < 2 ? 2 : rad);
    double contrast = 0.5 * (mabs + fabs(sres / nv - rmean) / range);
    double vis = 1 - exp(-contrast / (2 * rsd / range + 0.02));
    double agree = 1;
    if (r && r->direction)
        agree = 1 / (1 + exp(-r->direction * msig / 0.01));
    return vis * ((double)covered / (double)area) * agree *
           (1 - 0.5 * (double)clipped / nv);
}

/* ---- SSIM ------------------------------------------------------------ */

/* Separable Gaussian (11 taps, sigma 1.5), edges clamped. Double
 * precision: SSIM subtracts nearly equal moments. */
static void gauss11(double *dst, double *tmp, const double *src, int w,
                    int h) {
    double k[11], s = 0;
    for (int i = 0; i < 11; i++) {
        k[i] = exp(-(double)((i - 5) * (i - 5)) / (2 * 1.5 * 1.5));
        s += k[i];
    }
    for (int i = 0; i < 11; i++) k[i] /= s;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double a = 0;
            for (int t = -5; t <= 5; t++) {
                int xx = x + t < 0 ? 0 : x + t >= w ? w - 1 : x + t;
                a += k[t + 5] * src[(size_t)y * w + xx];
            }
            tmp[(size_t)y * w + x] = a;
        }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double a = 0;
            for (int t = -5; t <= 5; t++) {
                int yy = y + t < 0 ? 0 : y + t >= h ? h - 1 : y + t;
                a += k[t + 5] * tmp[(size_t)yy * w + x];
            }
            dst[(size_t)y * w + x] = a;
        }
}

double uad_ssim(const uad_image *a, const uad_image *b) {
    UAD_ASSERT(a->w == b->w && a->h == b->h && a->c == b->c);
    int w = a->w, h = a->h;
    size_t n = (size_t)w * h;
    double *buf = malloc(7 * n * sizeof *buf);
    if (!buf) return 0;
    double *mx = buf, *my = mx + n, *xx = my + n, *yy = xx + n,
           *xy = yy + n, *t = xy + n, *tmp = t + n;
    const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
    double total = 0;
    for (int c = 0; c < a->c; c++) {
        const float *x = a->data + c * n, *y = b->data + c * n;
        for (size_t i = 0; i < n; i++) t[i] = x[i];
        gauss11(mx, tmp, t, w, h);
        for (size_t i = 0; i < n; i++) t[i] = y[i];
        gauss11(my, tmp, t, w, h);
        for (size_t i = 0; i < n; i++) t[i] = (double)x[i] * x[i];
        gauss11(xx, tmp, t, w, h);
        for (size_t i = 0; i < n; i++) t[i] = (double)y[i] * y[i];
        gauss11(yy, tmp, t, w, h);
        for (size_t i = 0; i < n; i++) t[i] = (double)x[i] * y[i];
        gauss11(xy, tmp, t, w, h);
        for (size_t i = 0; i < n; i++) {
            double vx = xx[i] - mx[i] * mx[i], vy = yy[i] - my[i] * my[i];
            double cv = xy[i] - mx[i] * my[i];
            total += ((2 * mx[i] * my[i] + c1) * (2 * cv + c2)) /
                     ((mx[i] * mx[i] + my[i] * my[i] + c1) * (vx + vy + c2));
        }
    }
    free(buf);
    return total / ((double)n * a->c);
}

/* ---- worker pool ----------------------------------------------------- */

/* Jobs 0..n_jobs-1 run on n_threads threads; job j writes only its own
 * output slot, so results do not depend on the thread count. The
 * calling thread works too and alone reports progress. */
typedef struct pool {
    syn_job_fn fn;
    void *ctx;
    size_t n_jobs, next, done;
    uad_status st;
    char msg[512];      /* the first failure's message (thread-local) */
    pthread_mutex_t mu;
    const char *stage;
} pool;

static void pool_work(pool *p, int reporter) {
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t j = p->st ? p->n_jobs : p->next++;
        pthread_mutex_unlock(&p->mu);
        if (j >= p->n_jobs) return;
        uad_status st = p->fn(p->ctx, j);
        pthread_mutex_lock(&p->mu);
        if (st && !p->st) {
            p->st = st;
            snprintf(p->msg, sizeof p->msg, "%s", uad_last_error());
        }
        size_t done = ++p->done;
        pthread_mutex_unlock(&p->mu);
        if (reporter && done < p->n_jobs)
            uad_progress(p->stage, done, p->n_jobs);
    }
}

static void *pool_thread(void *arg) {
    pool_work(arg, 0);
    return NULL;
}

uad_status syn_run_jobs(const char *stage, syn_job_fn fn, void *ctx,
                           size_t n_jobs, int n_threads) {
    pool p = {fn, ctx, n_jobs, 0, 0, UAD_OK, "", PTHREAD_MUTEX_INITIALIZER,
              stage};
    pthread_t th[64];
    int nt = 0;
    if (n_threads > 64) n_threads = 64;
    for (int t = 1; t < n_threads && (size_t)t < n_jobs; t++)
        if (!pthread_create(&th[nt], NULL, pool_thread, &p)) nt++;
    uad_progress(stage, 0, n_jobs);
    pool_work(&p, 1);
    for (int t = 0; t < nt; t++) pthread_join(th[t], NULL);
    /* Error messages are thread-local: repeat the first one here. */
    if (p.st)
        return uad_fail(p.st, "%s", p.msg[0] ? p.msg : uad_status_name(p.st));
    uad_progress(stage, n_jobs, n_jobs);
    return UAD_OK;
}

/* ---- prior-guided (zero-shot) ---------------------------------------- */

/* The i-th set bit of `bits` (0-based), or the lowest one. */
static unsigned nth_bit(unsigned bits, uint64_t i) {
    for (unsigned b = 1; b; b <<= 1)
        if ((bits & b) && i-- == 0) return b;
    return bits & -bits;
}

static int popcount(unsigned v) {
    int c = 0;
    for (; v; v &= v - 1) c++;
    return c;
}

/* Shapes to draw for a category: the prior's, else the lexicon's hint
 * for its operator, else every local shape (SPEC 3). */
static unsigned shapes_for(const uad_category *cat,
                           const uad_synth_recipe *r) {
    if (cat->shapes) return cat->shapes;
    if (r->shapes) return r->shapes & ALL_LOCAL_SHAPES;
    return ALL_LOCAL_SHAPES;
}

/* One candidate into cand/cmask; returns its score. */
static double make_candidate(uad_synth_sample *cand, uad_synth *s,
                             const uad_category *cat,
                             const uad_synth_recipe *r, size_t i,
                             uad_rng *rng) {
    const uad_image *x = &s->normals[i];
    unsigned shapes = shapes_for(cat, r);
    unsigned sizes = cat->sizes ? cat->sizes : 7u;
    unsigned shape = nth_bit(shapes, uad_rng_below(rng, (uint64_t)popcount(shapes)));
    unsigned size = nth_bit(sizes, uad_rng_below(rng, (uint64_t)popcount(sizes)));
    uint64_t mseed = uad_rng_u64(rng), aseed = uad_rng_u64(rng);
    float strength = (float)uad_rng_range(rng, 0.6, 1.4);
    if (uad_maskgen_draw(cand->mask, cat->foreground ? s->fg[i] : NULL,
                         x->w, x->h, shape, size, mseed))
        return -1;
    memcpy(cand->image.data, x->data,
           (size_t)x->c * x->w * x->h * sizeof *x->data);
    cand->image.w = x->w;
    cand->image.h = x->h;
    cand->image.c = x->c;
    cand->image.bit_depth = x->bit_depth;
    cand->source = (int)i;
    uad_synth_apply(&cand->image, cand->mask, s->fg[i], r, strength, aseed);
    return uad_synth_score(&cand->image, x, cand->mask, r);
}

/* Negative descriptions steer the direction only: a description that
 * leaves it open ("scratch") with a negative that has one ("dark")
 * takes the opposite one. Other negative words are not used. */
static void apply_negatives(uad_synth_recipe *r, const uad_category *cat) {
    for (int i = 0; i < cat->n_negatives && !r->direction; i++) {
        uad_synth_recipe nr = uad_synth_lexicon(cat->negatives[i]);
        if (nr.direction) r->direction = -nr.direction;
    }
}

/* Largest normal image's pixel count. */
static size_t max_pixels(const uad_synth *s) {
    size_t m = 0;
    for (size_t i = 0; i < s->n; i++) {
        size_t p = (size_t)s->normals[i].w * s->normals[i].h;
        if (p > m) m = p;
    }
    return m;
}

static uad_status sample_alloc(uad_synth_sample *x, size_t px, int c) {
    memset(x, 0, sizeof *x);
    x->image.data = uad_malloc(px * (size_t)c * sizeof(float));
    x->mask = uad_malloc(px);
    if (!x->image.data || !x->mask) {
        syn_sample_free(x);
        return UAD_ERR_NOMEM;
    }
    return UAD_OK;
}

uad_status uad_synth_prior_one(uad_synth_sample *out, uad_synth *s,
                               const uad_priors *priors, int cat,
                               uint64_t seed) {
    memset(out, 0, sizeof *out);
    if (!priors || cat < 0 || cat >= priors->n_categories)
        return uad_fail(UAD_ERR_USAGE, "synth: no category %d", cat);
    const uad_category *cg = &priors->categories[cat];
    if (cg->n_descriptions < 1)
        return uad_fail(UAD_ERR_DATA, "synth: category '%s' has no "
                        "description", cg->name);
    size_t px = max_pixels(s);
    int c = s->normals[0].c;
    uad_synth_sample cand, best;
    if (sample_alloc(&cand, px, c) || sample_alloc(&best, px, c)) {
        syn_sample_free(&cand);
        return UAD_ERR_NOMEM;
    }

    /* B candidates, each from its own stream of the sample's seed. */
    uad_rng rng, cr;
    uad_rng_seed(&rng, seed);
    double best_score = -2;
    uad_synth_recipe best_r = {0};
    /* One source image per kept sample, shared by its B candidates: when
     * each candidate drew its own image, selection tied categories to
     * image brightness (on MTD every "break" came from the darker tile),
     * a shortcut a discriminator would learn. */
    size_t src = (size_t)uad_rng_below(&rng, s->n);
    for (int b = 0; b < s->p.n_candidates; b++) {
        uad_rng_fork(&cr, &rng, (uint64_t)b);
        int d = (int)uad_rng_below(&cr, (uint64_t)cg->n_descriptions);
        uad_synth_recipe r = uad_synth_lexicon(cg->descriptions[d]);
        apply_negatives(&r, cg);
        double sc = make_candidate(&cand, s, cg, &r, src, &cr);
        if (sc > best_score) {
            uad_synth_sample t = best;
            best = cand;
            cand = t;
            best_score = sc;
            best_r = r;
        }
    }
    syn_sample_free(&cand);
    if (best_score < -1) {
        syn_sample_free(&best);
        return UAD_ERR_NOMEM;
    }
    best.class_id = cat + 1;
    best.score = best_score;
    best.seed = seed;
    snprintf(best.method, sizeof best.method, "prior:%s",
             uad_synth_op_name(best_r.op));
    *out = best;
    return UAD_OK;
}

typedef struct zs_ctx {
    uad_synth *s;
    const uad_priors *pri;
    uad_synth_sample *items;
} zs_ctx;

static uad_status zs_job(void *ctx, size_t j) {
    zs_ctx *z = ctx;
    int per = z->s->p.per_category, cat = (int)(j / (size_t)per);
    uint64_t seed = uad_synth_sample_seed(z->s->p.seed, cat,
                                          (int)(j % (size_t)per));
    return uad_synth_prior_one(&z->items[j], z->s, z->pri, cat, seed);
}

/* Warn once per description about words the lexicon does not know. */
static void warn_unknown(const uad_priors *pri) {
    for (int k = 0; k < pri->n_categories; k++)
        for (int d = 0; d < pri->categories[k].n_descriptions; d++) {
            const char *txt = pri->categories[k].descriptions[d];
            uad_synth_recipe r = uad_synth_lexicon(txt);
            if (!r.n_unknown) continue;
            UAD_WARN("synth: category '%s', description '%s': unknown "
                     "word(s) '%s'%s", pri->categories[k].name, txt,
                     r.unknown, r.op == UAD_OP_GENERIC
                         ? "; no known defect word, using the generic "
                           "noise-texture blend"
                         : " ignored");
        }
}

uad_status uad_synth_zero_shot(uad_synth_list *out, uad_synth *s,
                               const uad_priors *priors) {
    memset(out, 0, sizeof *out);
    if (!priors || priors->n_categories < 1)
        return uad_fail(UAD_ERR_DATA, "synth: the priors have no category");
    uad_status st = check_params(&s->p);
    if (st) return st;
    warn_unknown(priors);
    size_t n_jobs = (size_t)priors->n_categories * (size_t)s->p.per_category;
    zs_ctx z = {s, priors, uad_calloc(n_jobs, sizeof *z.items)};
    if (!z.items) return UAD_ERR_NOMEM;
    out->items = z.items;
    out->n = n_jobs;
    st = syn_run_jobs("synthesize", zs_job, &z, n_jobs, s->p.n_threads);
    if (st) uad_synth_list_free(out);
    return st;
}
