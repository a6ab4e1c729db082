/* metrics.c - I-AUROC, P-AUROC, AUPRO, accuracy and mIoU (SPEC section 2).
 *
 * Scores are turned into uint32 keys whose unsigned order is the float
 * order, and sorted with an LSD radix sort: linear time and memory, so
 * tens of millions of pixels take seconds. AUROC is the Mann-Whitney U
 * counted by merging sorted positives and negatives; AUPRO walks the
 * distinct scores from high to low, as MVTec AD's evaluation code does. */
#include "internal.h"

#include <math.h>
#include <string.h>

/* Record a failure and give the metrics' failure value. */
#define METRIC_FAIL(st, ...) (uad_fail((st), __VA_ARGS__), -1)

/* ---- order-preserving keys and radix sorts --------------------------- */

/* A uint32 whose unsigned order is the float order: negatives get all
 * bits flipped, positives get the sign bit set. -0.0 is folded into +0.0
 * first so that the two tie, as they compare equal. NaN never gets here. */
static inline uint32_t score_key(float f) {
    uint32_t u;
    if (f == 0.0f) f = 0.0f;
    memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* Three passes of 11-bit digits cover the 32-bit key. */
#define RADIX_BITS 11
#define RADIX_SIZE (1u << RADIX_BITS)
#define RADIX_MASK (RADIX_SIZE - 1)
#define RADIX_PASSES 3

/* Turn a digit histogram into start offsets. False when every key has
 * the same digit (`d0`, the first key's), so the pass can be skipped. */
static bool radix_offsets(size_t *h, size_t n, uint32_t d0) {
    if (h[d0] == n) return false;
    size_t sum = 0;
    for (uint32_t d = 0; d < RADIX_SIZE; d++) {
        size_t c = h[d];
        h[d] = sum;
        sum += c;
    }
    return true;
}

/* Stable ascending sort of a[n]; tmp has n entries. Returns the buffer
 * (a or tmp) that holds the result. */
static uint32_t *radix_sort_u32(uint32_t *a, uint32_t *tmp, size_t n) {
    static const int shift[RADIX_PASSES] = {0, RADIX_BITS, 2 * RADIX_BITS};
    size_t hist[RADIX_PASSES][RADIX_SIZE];
    if (n < 2) return a;
    memset(hist, 0, sizeof hist);
    for (size_t i = 0; i < n; i++)
        for (int p = 0; p < RADIX_PASSES; p++)
            hist[p][(a[i] >> shift[p]) & RADIX_MASK]++;
    for (int p = 0; p < RADIX_PASSES; p++) {
        size_t *h = hist[p];
        if (!radix_offsets(h, n, (a[0] >> shift[p]) & RADIX_MASK)) continue;
        for (size_t i = 0; i < n; i++)
            tmp[h[(a[i] >> shift[p]) & RADIX_MASK]++] = a[i];
        uint32_t *t = a;
        a = tmp;
        tmp = t;
    }
    return a;
}

/* Same for (key << 32 | payload) pairs, ordered by the key alone. */
static uint64_t *radix_sort_pairs(uint64_t *a, uint64_t *tmp, size_t n) {
    static const int shift[RADIX_PASSES] = {32, 32 + RADIX_BITS,
                                            32 + 2 * RADIX_BITS};
    size_t hist[RADIX_PASSES][RADIX_SIZE];
    if (n < 2) return a;
    memset(hist, 0, sizeof hist);
    for (size_t i = 0; i < n; i++)
        for (int p = 0; p < RADIX_PASSES; p++)
            hist[p][(a[i] >> shift[p]) & RADIX_MASK]++;
    for (int p = 0; p < RADIX_PASSES; p++) {
        size_t *h = hist[p];
        uint32_t d0 = (uint32_t)(a[0] >> shift[p]) & RADIX_MASK;
        if (!radix_offsets(h, n, d0)) continue;
        for (size_t i = 0; i < n; i++)
            tmp[h[(a[i] >> shift[p]) & RADIX_MASK]++] = a[i];
        uint64_t *t = a;
        a = tmp;
        tmp = t;
    }
    return a;
}

/* ---- input checks ---------------------------------------------------- */

/* Validate a list of maps: sizes, pointers, and the pixel totals. */
static int check_maps(size_t *total, size_t *max_px, const uad_map_gt *items,
                      size_t n, const char *fn) {
    *total = *max_px = 0;
    if (n && !items) return METRIC_FAIL(UAD_ERR_USAGE, "%s: items is NULL", fn);
    for (size_t i = 0; i < n; i++) {
        const uad_map_gt *it = &items[i];
        size_t px;
        if (it->w < 0 || it->h < 0)
            return METRIC_FAIL(UAD_ERR_DATA, "%s: map %zu has a negative size "
                               "(%d x %d)", fn, i, it->w, it->h);
        if (!uad_mul_size(&px, (size_t)it->w, (size_t)it->h) ||
            __builtin_add_overflow(*total, px, total))
            return METRIC_FAIL(UAD_ERR_LIMIT, "%s: too many pixels", fn);
        if (px && (!it->map || !it->gt))
            return METRIC_FAIL(UAD_ERR_USAGE, "%s: map %zu has a NULL map or "
                               "gt", fn, i);
        if (px > *max_px) *max_px = px;
    }
    return 0;
}

/* Count positive and negative entries of one score array; a NaN score is
 * bad input (it has no rank). `item` names the map, SIZE_MAX for none. */
static int count_labels(size_t *np, size_t *nn, const float *s,
                        const uint8_t *lab, size_t n, const char *fn,
                        size_t item) {
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(s[i])) {
            if (item == SIZE_MAX)
                return METRIC_FAIL(UAD_ERR_DATA, "%s: score %zu is NaN", fn, i);
            return METRIC_FAIL(UAD_ERR_DATA, "%s: map %zu, pixel %zu: score is "
                               "NaN", fn, item, i);
        }
        pos += lab[i] != 0;
    }
    *np += pos;
    *nn += n - pos;
    return 0;
}

/* Append the keys of one score array to the positive or negative list. */
static void split_keys(uint32_t *pos, size_t *np, uint32_t *neg, size_t *nn,
                       const float *s, const uint8_t *lab, size_t n) {
    size_t p = *np, q = *nn;
    for (size_t i = 0; i < n; i++) {
        uint32_t k = score_key(s[i]);
        if (lab[i]) pos[p++] = k;
        else neg[q++] = k;
    }
    *np = p;
    *nn = q;
}

/* ---- AUROC ----------------------------------------------------------- */

/* Mann-Whitney U over sorted keys, doubled so that ties (worth half a
 * pair) stay integers: sum over positives of 2 * #(negatives below) +
 * #(negatives equal). The caller checked that 2 * np * nn fits. */
static double auc_sorted(const uint32_t *pos, size_t np, const uint32_t *neg,
                         size_t nn) {
    uint64_t u2 = 0;
    size_t j = 0;
    for (size_t i = 0; i < np;) {
        uint32_t k = pos[i];
        size_t i1 = i + 1, e;
        while (i1 < np && pos[i1] == k) i1++;
        while (j < nn && neg[j] < k) j++;
        for (e = j; e < nn && neg[e] == k; e++) {}
        u2 += (uint64_t)(i1 - i) * (2 * (uint64_t)j + (e - j));
        i = i1;
    }
    return (double)u2 / (2.0 * (double)np * (double)nn);
}

/* Sort the split keys and count. Owns nothing; tmp has max(np, nn). */
static int auc_from_split(double *out, uint32_t *pos, size_t np, uint32_t *neg,
                          size_t nn, uint32_t *tmp, const char *fn) {
    uint64_t pairs2;
    if (__builtin_mul_overflow((uint64_t)np, (uint64_t)nn, &pairs2) ||
        __builtin_mul_overflow(pairs2, (uint64_t)2, &pairs2))
        return METRIC_FAIL(UAD_ERR_LIMIT, "%s: too many pixel pairs", fn);
    /* tmp is shared by both sorts: sorted positives that landed in it
     * are copied home first. */
    const uint32_t *sp = radix_sort_u32(pos, tmp, np);
    if (sp != pos) {
        memcpy(pos, sp, np * sizeof *pos);
        sp = pos;
    }
    const uint32_t *sn = radix_sort_u32(neg, tmp, nn);
    *out = auc_sorted(sp, np, sn, nn);
    return 1;
}

/* Allocate the positive, negative and scratch key arrays. */
static int alloc_split(uint32_t **pos, uint32_t **neg, uint32_t **tmp,
                       size_t np, size_t nn) {
    size_t big = np > nn ? np : nn;
    *pos = uad_malloc((np ? np : 1) * sizeof **pos);
    *neg = uad_malloc((nn ? nn : 1) * sizeof **neg);
    *tmp = uad_malloc(big * sizeof **tmp);
    if (*pos && *neg && *tmp) return 0;
    free(*pos);
    free(*neg);
    free(*tmp);
    return -1;
}

int uad_auroc(const float *scores, const uint8_t *labels, size_t n,
              double *out) {
    static const char fn[] = "uad_auroc";
    size_t np = 0, nn = 0;
    UAD_ASSERT(out != NULL);
    *out = NAN;
    if (n && (!scores || !labels))
        return METRIC_FAIL(UAD_ERR_USAGE, "%s: scores or labels is NULL", fn);
    if (count_labels(&np, &nn, scores, labels, n, fn, SIZE_MAX) < 0) return -1;
    if (!np || !nn) return 0;

    uint32_t *pos, *neg, *tmp;
    if (alloc_split(&pos, &neg, &tmp, np, nn) < 0) return -1;
    np = nn = 0;
    split_keys(pos, &np, neg, &nn, scores, labels, n);
    int r = auc_from_split(out, pos, np, neg, nn, tmp, fn);
    free(pos);
    free(neg);
    free(tmp);
    return r;
}

int uad_pixel_auroc(const uad_map_gt *items, size_t n, double *out) {
    static const char fn[] = "uad_pixel_auroc";
    size_t total, max_px, np = 0, nn = 0;
    UAD_ASSERT(out != NULL);
    *out = NAN;
    if (check_maps(&total, &max_px, items, n, fn) < 0) return -1;
    for (size_t i = 0; i < n; i++)
        if (count_labels(&np, &nn, items[i].map, items[i].gt,
                         (size_t)items[i].w * (size_t)items[i].h, fn, i) < 0)
            return -1;
    if (!np || !nn) return 0;

    uint32_t *pos, *neg, *tmp;
    if (alloc_split(&pos, &neg, &tmp, np, nn) < 0) return -1;
    np = nn = 0;
    for (size_t i = 0; i < n; i++)
        split_keys(pos, &np, neg, &nn, items[i].map, items[i].gt,
                   (size_t)items[i].w * (size_t)items[i].h);
    int r = auc_from_split(out, pos, np, neg, nn, tmp, fn);
    free(pos);
    free(neg);
    free(tmp);
    return r;
}

/* ---- AUPRO: regions -------------------------------------------------- */

/* Root of x with path halving. Every label points to itself or to a
 * smaller label, so parent[x] <= x holds throughout. */
static uint32_t uf_find(uint32_t *parent, uint32_t x) {
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

/* Join two sets, the larger root pointing to the smaller. */
static uint32_t uf_union(uint32_t *parent, uint32_t a, uint32_t b) {
    a = uf_find(parent, a);
    b = uf_find(parent, b);
    if (a < b) parent[b] = a;
    else parent[a] = b;
    return a < b ? a : b;
}

/* 8-connected components of gt (h x w, non-zero = anomalous), labelled
 * in two passes with union-find. lab[h * w] gets 0 for normal pixels and
 * a region number 1..R otherwise; parent has h * w + 1 entries of
 * scratch. Returns R. */
static uint32_t label_regions(uint32_t *lab, uint32_t *parent,
                              const uint8_t *gt, int w, int h) {
    uint32_t next = 1;
    parent[0] = 0;
    for (int y = 0; y < h; y++) {
        const uint32_t *up = y ? lab + (size_t)(y - 1) * w : NULL;
        uint32_t *row = lab + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            uint32_t l = 0;
            if (!gt[(size_t)y * w + x]) {
                row[x] = 0;
                continue;
            }
            /* Already visited neighbours: W, NW, N, NE. */
            uint32_t nb[4] = {x ? row[x - 1] : 0,
                              up && x ? up[x - 1] : 0, up ? up[x] : 0,
                              up && x + 1 < w ? up[x + 1] : 0};
            for (int k = 0; k < 4; k++) {
                if (!nb[k]) continue;
                l = l ? uf_union(parent, l, nb[k]) : nb[k];
            }
            if (!l) {
                l = next++;
                parent[l] = l;
            }
            row[x] = l;
        }
    }
    /* Flatten in ascending order (parents are smaller, hence final), then
     * renumber roots 1..R in place: a root's entry becomes its number, and
     * later labels copy their root's number. */
    uint32_t nreg = 0;
    for (uint32_t l = 1; l < next; l++) {
        if (parent[l] == l) parent[l] = ++nreg;
        else parent[l] = parent[parent[l]];
    }
    for (size_t i = 0; i < (size_t)w * h; i++) lab[i] = parent[lab[i]];
    return nreg;
}

/* Work arrays of uad_aupro, all linear in the pixel count. */
typedef struct pro_work {
    uint32_t *neg;      /* keys of normal pixels                       */
    uint64_t *pairs;    /* anomalous pixels: key << 32 | region index    */
    uint32_t *size;     /* pixels per region, all maps                  */
    void *tmp;          /* radix scratch, max(8 * na, 4 * nn) bytes      */
    uint32_t *lab;      /* labels of the largest map                    */
    uint32_t *parent;   /* union-find forest, largest map + 1           */
    size_t nn, na, nreg;
} pro_work;

static void pro_work_free(pro_work *pw) {
    free(pw->neg);
    free(pw->pairs);
    free(pw->size);
    free(pw->tmp);
    free(pw->lab);
    free(pw->parent);
}

static int pro_work_alloc(pro_work *pw, size_t nn, size_t na, size_t max_px) {
    size_t tb = na * sizeof(uint64_t) > nn * sizeof(uint32_t)
                    ? na * sizeof(uint64_t) : nn * sizeof(uint32_t);
    memset(pw, 0, sizeof *pw);
    pw->neg = uad_malloc(nn * sizeof *pw->neg);
    pw->pairs = uad_malloc(na * sizeof *pw->pairs);
    pw->size = uad_calloc(na, sizeof *pw->size);
    pw->tmp = uad_malloc(tb);
    pw->lab = uad_malloc(max_px * sizeof *pw->lab);
    pw->parent = uad_malloc((max_px + 1) * sizeof *pw->parent);
    if (pw->neg && pw->pairs && pw->size && pw->tmp && pw->lab && pw->parent)
        return 0;
    pro_work_free(pw);
    return -1;
}

/* Label one map's regions and append its pixels to the work arrays. */
static void pro_collect(pro_work *pw, const uad_map_gt *it) {
    size_t npx = (size_t)it->w * (size_t)it->h;
    uint32_t nreg = label_regions(pw->lab, pw->parent, it->gt, it->w, it->h);
    uint32_t base = (uint32_t)pw->nreg; /* fits: regions <= na < 2^32 */
    for (size_t i = 0; i < npx; i++) {
        uint32_t k = score_key(it->map[i]);
        if (!pw->lab[i]) {
            pw->neg[pw->nn++] = k;
            continue;
        }
        uint32_t r = base + pw->lab[i] - 1;
        pw->size[r]++;
        pw->pairs[pw->na++] = (uint64_t)k << 32 | r;
    }
    pw->nreg += nreg;
}

/* ---- AUPRO: the curve ------------------------------------------------ */

/* Walk the distinct scores from the highest down. Each one adds its
 * normal pixels to the false-positive count and 1 / (region size) for
 * each of its anomalous pixels to the overlap sum, and gives one curve
 * point (FPR, PRO). The trapezoid area is summed from (0, 0) until FPR
 * reaches `limit`, where the last segment is cut by linear interpolation.
 * neg[nn] and pairs[na] are sorted ascending by key. */
static double pro_area(const uint32_t *neg, size_t nn, const uint64_t *pairs,
                       size_t na, const uint32_t *size, size_t nreg,
                       double limit) {
    size_t i = nn, j = na; /* unvisited: neg[0, i) and pairs[0, j) */
    uint64_t fp = 0;
    double ov = 0, ov_c = 0; /* overlap sum, Kahan-compensated */
    double x0 = 0, y0 = 0, area = 0;
    while (i > 0 || j > 0) {
        uint32_t kn = i ? neg[i - 1] : 0;
        uint32_t ka = j ? (uint32_t)(pairs[j - 1] >> 32) : 0;
        uint32_t t = !j || (i && kn > ka) ? kn : ka;
        while (i > 0 && neg[i - 1] == t) {
            i--;
            fp++;
        }
        while (j > 0 && (uint32_t)(pairs[j - 1] >> 32) == t) {
            double v = 1.0 / size[(uint32_t)pairs[--j]] - ov_c;
            double s = ov + v;
            ov_c = (s - ov) - v;
            ov = s;
        }
        double x1 = (double)fp / (double)nn, y1 = ov / (double)nreg;
        if (x1 >= limit) {
            /* x0 < limit <= x1 here, so the segment has a width. */
            double yl = y0 + (y1 - y0) * (limit - x0) / (x1 - x0);
            return area + (limit - x0) * (y0 + yl) / 2;
        }
        area += (x1 - x0) * (y0 + y1) / 2;
        x0 = x1;
        y0 = y1;
    }
    /* Unreachable: the last point has FPR 1 >= limit. */
    return area;
}

int uad_aupro(const uad_map_gt *items, size_t n, double fpr_limit,
              double *out) {
    static const char fn[] = "uad_aupro";
    size_t total, max_px, na = 0, nn = 0;
    UAD_ASSERT(out != NULL);
    *out = NAN;
    if (!(fpr_limit > 0 && fpr_limit <= 1))
        return METRIC_FAIL(UAD_ERR_USAGE, "%s: fpr_limit %g is not in (0, 1]",
                           fn, fpr_limit);
    if (check_maps(&total, &max_px, items, n, fn) < 0) return -1;
    for (size_t i = 0; i < n; i++)
        if (count_labels(&na, &nn, items[i].map, items[i].gt,
                         (size_t)items[i].w * (size_t)items[i].h, fn, i) < 0)
            return -1;
    if (!na || !nn) return 0;
    /* Region indices and provisional labels are 32-bit. */
    if (na >= UINT32_MAX)
        return METRIC_FAIL(UAD_ERR_LIMIT, "%s: more than 2^32 anomalous "
                           "pixels", fn);

    pro_work pw;
    if (pro_work_alloc(&pw, nn, na, max_px) < 0) return -1;
    for (size_t i = 0; i < n; i++) pro_collect(&pw, &items[i]);
    const uint32_t *neg = radix_sort_u32(pw.neg, pw.tmp, pw.nn);
    if (neg != pw.neg) {
        memcpy(pw.neg, neg, pw.nn * sizeof *pw.neg);
        neg = pw.neg;
    }
    const uint64_t *pairs = radix_sort_pairs(pw.pairs, pw.tmp, pw.na);
    double a = pro_area(neg, pw.nn, pairs, pw.na, pw.size, pw.nreg,
                        fpr_limit) / fpr_limit;
    pro_work_free(&pw);
    /* Rounding alone can step outside [0, 1] (a perfect map: 1 + 1e-16). */
    *out = a < 0 ? 0 : a > 1 ? 1 : a;
    return 1;
}

/* ---- classification -------------------------------------------------- */

static int check_conf(const uint64_t *conf, int ncls, const char *fn) {
    if (ncls < 1)
        return METRIC_FAIL(UAD_ERR_USAGE, "%s: ncls %d < 1", fn, ncls);
    if (!conf) return METRIC_FAIL(UAD_ERR_USAGE, "%s: conf is NULL", fn);
    return 0;
}

int uad_accuracy(const uint64_t *conf, int ncls, double *out) {
    static const char fn[] = "uad_accuracy";
    uint64_t total = 0, hit = 0;
    UAD_ASSERT(out != NULL);
    *out = NAN;
    if (check_conf(conf, ncls, fn) < 0) return -1;
    for (size_t t = 0; t < (size_t)ncls; t++)
        for (size_t p = 0; p < (size_t)ncls; p++)
            if (__builtin_add_overflow(total, conf[t * ncls + p], &total))
                return METRIC_FAIL(UAD_ERR_LIMIT, "%s: counts overflow", fn);
    if (!total) return 0;
    for (size_t c = 0; c < (size_t)ncls; c++) hit += conf[c * ncls + c];
    *out = (double)hit / (double)total;
    return 1;
}

/* Row (true) and column (predicted) sums of class c; false on overflow. */
static bool conf_margins(uint64_t *row, uint64_t *col, const uint64_t *conf,
                         size_t ncls, size_t c) {
    *row = *col = 0;
    for (size_t k = 0; k < ncls; k++)
        if (__builtin_add_overflow(*row, conf[c * ncls + k], row) ||
            __builtin_add_overflow(*col, conf[k * ncls + c], col))
            return false;
    return true;
}

int uad_miou(const uint64_t *conf, int ncls, double *out) {
    static const char fn[] = "uad_miou";
    double sum = 0;
    int used = 0;
    UAD_ASSERT(out != NULL);
    *out = NAN;
    if (check_conf(conf, ncls, fn) < 0) return -1;
    for (size_t c = 0; c < (size_t)ncls; c++) {
        uint64_t row, col, tp = conf[c * ncls + c], uni;
        /* union = TP + FP + FN = row + col - TP */
        if (!conf_margins(&row, &col, conf, (size_t)ncls, c) ||
            __builtin_add_overflow(row, col - tp, &uni))
            return METRIC_FAIL(UAD_ERR_LIMIT, "%s: counts overflow", fn);
        if (!uni) {
            UAD_WARN("%s: class %zu is neither true nor predicted anywhere; "
                     "left out of the mean", fn, c);
            continue;
        }
        sum += (double)tp / (double)uni;
        used++;
    }
    if (!used) return 0;
    *out = sum / used;
    return 1;
}
