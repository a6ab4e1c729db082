/* synth_mask.c - raster helpers, weight-free foreground estimation and
 * the mask library of SPEC section 3. */
#include "synth_internal.h"

#include <math.h>
#include <string.h>

/* ---- noise ----------------------------------------------------------- */

static float fade(float t) { return t * t * t * (t * (t * 6 - 15) + 10); }

void syn_perlin(float *out, int w, int h, int res_x, int res_y,
                uad_rng *r) {
    /* (res_y + 1) x (res_x + 1) unit gradients at the lattice corners. */
    int gw = res_x + 1, gh = res_y + 1;
    float gx[65 * 65], gy[65 * 65];
    UAD_ASSERT(res_x >= 1 && res_y >= 1 && res_x <= 64 && res_y <= 64);
    for (int i = 0; i < gw * gh; i++) {
        double a = uad_rng_range(r, 0, 6.283185307179586);
        gx[i] = (float)cos(a);
        gy[i] = (float)sin(a);
    }
    for (int y = 0; y < h; y++) {
        float v = ((float)y + 0.5f) / (float)h * (float)res_y;
        int j = (int)v;
        if (j >= res_y) j = res_y - 1;
        float fy = v - (float)j, sy = fade(fy);
        for (int x = 0; x < w; x++) {
            float u = ((float)x + 0.5f) / (float)w * (float)res_x;
            int i = (int)u;
            if (i >= res_x) i = res_x - 1;
            float fx = u - (float)i, sx = fade(fx);
            int c00 = j * gw + i, c10 = c00 + 1, c01 = c00 + gw,
                c11 = c01 + 1;
            float n00 = gx[c00] * fx + gy[c00] * fy;
            float n10 = gx[c10] * (fx - 1) + gy[c10] * fy;
            float n01 = gx[c01] * fx + gy[c01] * (fy - 1);
            float n11 = gx[c11] * (fx - 1) + gy[c11] * (fy - 1);
            float a = n00 + sx * (n10 - n00), b = n01 + sx * (n11 - n01);
            out[(size_t)y * w + x] = a + sy * (b - a);
        }
    }
}

void syn_fbm(float *out, float *tmp, int w, int h, int res, int n_oct,
             uad_rng *r) {
    size_t n = (size_t)w * h;
    memset(out, 0, n * sizeof *out);
    float amp = 1;
    for (int o = 0; o < n_oct && res <= 64; o++, res *= 2, amp *= 0.5f) {
        syn_perlin(tmp, w, h, res, res, r);
        for (size_t i = 0; i < n; i++) out[i] += amp * tmp[i];
    }
    float mx = 0;
    for (size_t i = 0; i < n; i++) mx = fmaxf(mx, fabsf(out[i]));
    if (mx > 0)
        for (size_t i = 0; i < n; i++) out[i] /= mx;
}

/* ---- morphology, components, blur ------------------------------------ */

/* One separable pass of a max (want = 1) or min (want = 0) filter of
 * radius rad, in O(n) whatever the radius: a pixel becomes `want` when
 * the nearest `want` pixel on its line, found by one sweep each way, is
 * at most rad away. */
static void morph_pass(uint8_t *dst, const uint8_t *src, int w, int h,
                       int rad, int horiz, int want) {
    int len = horiz ? w : h, lines = horiz ? h : w;
    size_t step = horiz ? 1 : (size_t)w;
    for (int l = 0; l < lines; l++) {
        const uint8_t *s = src + (horiz ? (size_t)l * w : (size_t)l);
        uint8_t *d = dst + (horiz ? (size_t)l * w : (size_t)l);
        long last = -(long)rad - 1;
        for (int i = 0; i < len; i++) {
            if (s[i * step] == want) last = i;
            d[i * step] = (uint8_t)(i - last <= rad ? want : !want);
        }
        last = (long)len + rad + 1;
        for (int i = len - 1; i >= 0; i--) {
            if (s[i * step] == want) last = i;
            if (last - i <= rad) d[i * step] = (uint8_t)want;
        }
    }
}

void syn_dilate(uint8_t *dst, uint8_t *tmp, const uint8_t *src, int w,
                int h, int rad) {
    morph_pass(tmp, src, w, h, rad, 1, 1);
    morph_pass(dst, tmp, w, h, rad, 0, 1);
}

void syn_erode(uint8_t *dst, uint8_t *tmp, const uint8_t *src, int w,
               int h, int rad) {
    morph_pass(tmp, src, w, h, rad, 1, 0);
    morph_pass(dst, tmp, w, h, rad, 0, 0);
}

void syn_close(uint8_t *m, uint8_t *tmp, int w, int h, int rad) {
    size_t n = (size_t)w * h;
    syn_dilate(tmp + n, tmp, m, w, h, rad);
    syn_erode(m, tmp, tmp + n, w, h, rad);
}

int syn_components(int *lab, int *queue, size_t *areas, const uint8_t *m,
                   int w, int h) {
    size_t n = (size_t)w * h;
    memset(lab, 0, n * sizeof *lab);
    int nl = 0;
    for (size_t s = 0; s < n; s++) {
        if (!m[s] || lab[s]) continue;
        nl++;
        size_t head = 0, tail = 0, area = 0;
        queue[tail++] = (int)s;
        lab[s] = nl;
        while (head < tail) {
            int p = queue[head++], px = p % w, py = p / w;
            area++;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int qx = px + dx, qy = py + dy;
                    if (qx < 0 || qy < 0 || qx >= w || qy >= h) continue;
                    size_t q = (size_t)qy * w + qx;
                    if (m[q] && !lab[q]) {
                        lab[q] = nl;
                        queue[tail++] = (int)q;
                    }
                }
        }
        if (areas) areas[nl - 1] = area;
    }
    return nl;
}

/* Running-sum box filter along rows (horiz) or columns, edges clamped. */
static void box_pass(float *dst, const float *src, int w, int h, int rad,
                     int horiz) {
    int len = horiz ? w : h, lines = horiz ? h : w;
    size_t step = horiz ? 1 : (size_t)w;
    float norm = 1.0f / (float)(2 * rad + 1);
    for (int l = 0; l < lines; l++) {
        const float *s = src + (horiz ? (size_t)l * w : (size_t)l);
        float *d = dst + (horiz ? (size_t)l * w : (size_t)l);
        double acc = 0;
        for (int k = -rad; k <= rad; k++) {
            int kk = k < 0 ? 0 : k >= len ? len - 1 : k;
            acc += s[kk * step];
        }
        for (int i = 0; i < len; i++) {
            d[i * step] = (float)acc * norm;
            int add = i + rad + 1, sub = i - rad;
            if (add > len - 1) add = len - 1;
            if (sub < 0) sub = 0;
            acc += s[add * step] - s[sub * step];
        }
    }
}

void syn_box_blur(float *dst, float *tmp, const float *src, int w, int h,
                  int rad) {
    if (rad <= 0) {
        if (dst != src) memcpy(dst, src, (size_t)w * h * sizeof *dst);
        return;
    }
    box_pass(tmp, src, w, h, rad, 1);
    box_pass(dst, tmp, w, h, rad, 0);
}

size_t syn_count(const uint8_t *m, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += m[i] != 0;
    return c;
}

/* ---- foreground estimation ------------------------------------------- */

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median, robust spread (1.4826 MAD) and 5-95% range of the border band
 * of plane p. */
static void border_stats(float *med, float *sig, float *range, float *buf,
                         const float *p, int w, int h, int band) {
    size_t n = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (x < band || y < band || x >= w - band || y >= h - band)
                buf[n++] = p[(size_t)y * w + x];
    qsort(buf, n, sizeof *buf, cmp_float);
    *med = buf[n / 2];
    *range = buf[n * 95 / 100] - buf[n * 5 / 100];
    for (size_t i = 0; i < n; i++) buf[i] = fabsf(buf[i] - *med);
    qsort(buf, n, sizeof *buf, cmp_float);
    *sig = 1.4826f * buf[n / 2];
}

/* 5-95% range of the n values of p (buf has n floats). */
static float value_spread(float *buf, const float *p, size_t n) {
    memcpy(buf, p, n * sizeof *buf);
    qsort(buf, n, sizeof *buf, cmp_float);
    return buf[n * 95 / 100] - buf[n * 5 / 100];
}

/* Fill background holes: pixels not reachable from the border through
 * background become foreground. lab/queue are scratch. */
static void fill_holes(uint8_t *fg, int *queue, uint8_t *seen, int w,
                       int h) {
    size_t n = (size_t)w * h, tail = 0, head = 0;
    memset(seen, 0, n);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            int edge = x == 0 || y == 0 || x == w - 1 || y == h - 1;
            if (edge && !fg[i]) { seen[i] = 1; queue[tail++] = (int)i; }
        }
    while (head < tail) {
        int p = queue[head++], px = p % w, py = p / w;
        const int dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
        for (int k = 0; k < 4; k++) {
            int qx = px + dx[k], qy = py + dy[k];
            if (qx < 0 || qy < 0 || qx >= w || qy >= h) continue;
            size_t q = (size_t)qy * w + qx;
            if (!fg[q] && !seen[q]) { seen[q] = 1; queue[tail++] = (int)q; }
        }
    }
    for (size_t i = 0; i < n; i++) fg[i] = !seen[i];
}

/* Keep only the largest 8-connected component of fg. */
static void keep_largest(uint8_t *fg, int *lab, int *queue, size_t *areas,
                         int w, int h) {
    int nl = syn_components(lab, queue, areas, fg, w, h);
    if (nl <= 1) return;
    int best = 0;
    for (int k = 1; k < nl; k++)
        if (areas[k] > areas[best]) best = k;
    for (size_t i = 0; i < (size_t)w * h; i++) fg[i] = lab[i] == best + 1;
}

double uad_fg_estimate(uint8_t *fg, const uad_image *img) {
    int w = img->w, h = img->h;
    size_t n = (size_t)w * h;
    float *sm = malloc(n * 2 * sizeof *sm);
    uint8_t *tmp = malloc(n * 3);
    int *lab = malloc(n * 2 * sizeof *lab);
    size_t *areas = malloc(n * sizeof *areas);
    memset(fg, 0, n);
    if (!sm || !tmp || !lab || !areas) {
        /* Without scratch memory the safe answer is "all foreground". */
        memset(fg, 1, n);
        free(sm); free(tmp); free(lab); free(areas);
        return 1.0;
    }

    /* A pixel is foreground when some channel of the smoothed image is
     * far from the border's median: more than 3 robust sigmas and more
     * than 0.05 of the value range (so a flat background with little
     * noise does not turn its noise into foreground). When the border's
     * 5-95% range is at least 0.6 of the whole image's in every channel,
     * the border is no background and all is foreground. */
    int band = w < h ? w / 20 : h / 20, rad = (w < h ? w : h) / 128 + 1;
    int textured = 1;
    if (band < 1) band = 1;
    for (int c = 0; c < img->c; c++) {
        const float *p = img->data + (size_t)c * n;
        float med, sig, brange;
        syn_box_blur(sm, sm + n, p, w, h, rad);
        border_stats(&med, &sig, &brange, sm + n, sm, w, h, band);
        /* A border that varies as much as the whole image is the object
         * itself filling the frame (a texture, a tile): no background. */
        textured &= brange >= 0.6f * value_spread(sm + n, sm, n);
        float thr = fmaxf(3 * sig, 0.05f);
        /* Refine: halfway between the background and the median of the
         * pixels that passed, so blurred edges do not grow the object. */
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (fabsf(sm[i] - med) > thr) sm[n + k++] = fabsf(sm[i] - med);
        if (k) {
            qsort(sm + n, k, sizeof *sm, cmp_float);
            thr = fmaxf(thr, 0.5f * sm[n + k / 2]);
        }
        for (size_t i = 0; i < n; i++) fg[i] |= fabsf(sm[i] - med) > thr;
    }

    /* Opening removes specks, closing joins the object's parts, then
     * holes are filled and the largest component kept. */
    int mr = (w < h ? w : h) / 100 + 1;
    syn_erode(tmp + n, tmp, fg, w, h, mr);
    syn_dilate(fg, tmp, tmp + n, w, h, mr);
    syn_close(fg, tmp, w, h, 2 * mr);
    fill_holes(fg, lab + n, tmp, w, h);
    keep_largest(fg, lab, lab + n, areas, w, h);

    double frac = (double)syn_count(fg, n) / (double)n;
    if (frac < 0.05 || textured) {
        memset(fg, 1, n);
        frac = 1.0;
    }
    free(sm); free(tmp); free(lab); free(areas);
    return frac;
}

/* ---- mask library ---------------------------------------------------- */

/* One row of SPEC section 3's table: area fraction range, most regions,
 * aspect range (width / length), and a pixel width range at s = 512. */
typedef struct shape_row {
    double a_lo, a_hi;
    int n;
    double asp_lo, asp_hi;
    double px_lo, px_hi;
} shape_row;

/* [shape][size: small, medium, large]. Ellipse rows hold the
 * near-circular variant; the eccentric one is ecc_rows. */
static const shape_row k_rows[7][3] = {
    /* rectangle */
    {{0.005, 0.01, 2, 0.3, 1, 0, 0}, {0.01, 0.04, 1, 0.3, 1, 0, 0},
     {0.05, 0.10, 1, 0.3, 1, 0, 0}},
    /* line */
    {{0.002, 0.005, 2, 0.01, 0.02, 0, 0}, {0.005, 0.01, 1, 0.02, 0.05, 0, 0},
     {0.01, 0.02, 1, 0.05, 0.1, 0, 0}},
    /* polygon */
    {{0.002, 0.005, 2, 0.3, 1, 0, 0}, {0.005, 0.01, 1, 0.3, 1, 0, 0},
     {0.01, 0.03, 1, 0.3, 1, 0, 0}},
    /* ellipse, near-circular */
    {{0.0002, 0.001, 2, 0.5, 1, 0, 0}, {0.005, 0.015, 1, 0.5, 1, 0, 0},
     {0.015, 0.03, 1, 0.5, 1, 0, 0}},
    /* hollow ellipse: ring thickness in px at s = 512 */
    {{0.0002, 0.001, 2, 0.5, 1, 4, 10}, {0.005, 0.015, 1, 0.5, 1, 8, 16},
     {0.015, 0.03, 1, 0.5, 1, 12, 24}},
    /* brush: stroke width in px at s = 512 */
    {{0, 0, 1, 0, 0, 6, 12}, {0, 0, 1, 0, 0, 12, 18},
     {0, 0, 1, 0, 0, 18, 24}},
    /* Perlin: lattice exponent range in asp_lo..asp_hi */
    {{0, 0, 1, 4, 5, 0, 0}, {0, 0, 1, 2, 3, 0, 0}, {0, 0, 1, 0, 1, 0, 0}},
};
static const shape_row k_ecc_rows[3] = {
    {0.002, 0.005, 2, 0.1, 0.25, 0, 0}, {0.005, 0.008, 1, 0.1, 0.25, 0, 0},
    {0.01, 0.02, 1, 0.1, 0.25, 0, 0}};

/* Smallest area of each size (the overlap threshold's scale). */
static const double k_min_area[3] = {0.0002, 0.005, 0.01};

static int bit_index(unsigned bit) {
    int i = 0;
    while (bit > 1) { bit >>= 1; i++; }
    return i;
}

/* Drawing context: image, foreground, random stream, s for px sizes. */
typedef struct draw_ctx {
    uint8_t *m;
    const uint8_t *fg;
    int w, h;
    double s, area;
    uad_rng *r;
} draw_ctx;

/* Random foreground pixel as a region centre, pulled in so that a shape
 * of bounding radius rad stays inside the image where it can. */
static void pick_centre(double *cx, double *cy, const draw_ctx *d,
                        double rad) {
    int x = (int)uad_rng_below(d->r, (uint64_t)d->w);
    int y = (int)uad_rng_below(d->r, (uint64_t)d->h);
    if (d->fg)
        for (int t = 0; t < 4096; t++) {
            if (d->fg[(size_t)y * d->w + x]) break;
            x = (int)uad_rng_below(d->r, (uint64_t)d->w);
            y = (int)uad_rng_below(d->r, (uint64_t)d->h);
        }
    *cx = x + 0.5;
    *cy = y + 0.5;
    if (2 * rad < d->w) *cx = fmin(fmax(*cx, rad), d->w - rad);
    else *cx = d->w * 0.5;
    if (2 * rad < d->h) *cy = fmin(fmax(*cy, rad), d->h - rad);
    else *cy = d->h * 0.5;
}

/* Rectangle (half sides a, b) or ellipse (semi-axes a, b; ring of
 * thickness t when t > 0) rotated by th, rasterized by pixel centres. */
static void draw_oriented(draw_ctx *d, double a, double b, double th,
                          int ellipse, double t) {
    double rad = sqrt(a * a + b * b), cx, cy;
    pick_centre(&cx, &cy, d, ellipse ? fmax(a, b) : rad);
    double c = cos(th), s = sin(th);
    int x0 = (int)floor(cx - rad), x1 = (int)ceil(cx + rad);
    int y0 = (int)floor(cy - rad), y1 = (int)ceil(cy + rad);
    double ia = a - t, ib = b - t;
    for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < d->h; y++)
        for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < d->w; x++) {
            double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
            double u = c * dx + s * dy, v = -s * dx + c * dy;
            int in;
            if (!ellipse) in = fabs(u) <= a && fabs(v) <= b;
            else {
                in = (u * u) / (a * a) + (v * v) / (b * b) <= 1;
                if (in && t > 0 && ia > 0 && ib > 0)
                    in = (u * u) / (ia * ia) + (v * v) / (ib * ib) > 1;
            }
            if (in) d->m[(size_t)y * d->w + x] = 1;
        }
}

/* Star-shaped random polygon of 5-9 vertices inside an ellipse of the
 * given aspect, scaled (shoelace) to exactly `area`, then rotated. */
static void draw_polygon(draw_ctx *d, double area, double asp) {
    double px[9], py[9], ang = 0, sum = 0;
    int k = 5 + (int)uad_rng_below(d->r, 5);
    for (int i = 0; i < k; i++) {
        ang = 6.283185307179586 * (i + uad_rng_range(d->r, 0.2, 0.8)) / k;
        double rr = uad_rng_range(d->r, 0.55, 1.0);
        px[i] = rr * cos(ang);
        py[i] = rr * sin(ang) * asp;
    }
    for (int i = 0; i < k; i++) {
        int j = (i + 1) % k;
        sum += px[i] * py[j] - px[j] * py[i];
    }
    double scale = sqrt(area / fmax(fabs(sum) * 0.5, 1e-9)), cx, cy;
    double th = uad_rng_range(d->r, 0, 3.141592653589793);
    double c = cos(th), s = sin(th);
    for (int i = 0; i < k; i++) {
        double x = px[i] * scale, y = py[i] * scale;
        px[i] = c * x - s * y;
        py[i] = s * x + c * y;
    }
    pick_centre(&cx, &cy, d, scale);
    for (int y = (int)fmax(0, cy - scale - 1); y < d->h && y <= cy + scale;
         y++)
        for (int x = (int)fmax(0, cx - scale - 1);
             x < d->w && x <= cx + scale; x++) {
            double qx = x + 0.5 - cx, qy = y + 0.5 - cy;
            int in = 0;
            for (int i = 0, j = k - 1; i < k; j = i++)
                if ((py[i] > qy) != (py[j] > qy) &&
                    qx < (px[j] - px[i]) * (qy - py[i]) / (py[j] - py[i]) +
                             px[i])
                    in = !in;
            if (in) d->m[(size_t)y * d->w + x] = 1;
        }
}

/* Distance from (x, y) to segment (ax, ay)-(bx, by). */
static double seg_dist(double x, double y, double ax, double ay, double bx,
                       double by) {
    double vx = bx - ax, vy = by - ay, l2 = vx * vx + vy * vy;
    double t = l2 > 0 ? ((x - ax) * vx + (y - ay) * vy) / l2 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double ex = ax + t * vx - x, ey = ay + t * vy - y;
    return sqrt(ex * ex + ey * ey);
}

/* Polyline stroke of 2-10 vertices, each segment 3-10% of s (more for
 * bigger sizes), turning by at most 70 degrees at each vertex. */
static void draw_brush(draw_ctx *d, double width, int size_i) {
    double vx[10], vy[10], cx, cy;
    int k = 2 + (int)uad_rng_below(d->r, 9);
    double seg = d->s * (0.03 + 0.02 * size_i);
    pick_centre(&cx, &cy, d, 0);
    vx[0] = cx;
    vy[0] = cy;
    double ang = uad_rng_range(d->r, 0, 6.283185307179586);
    for (int i = 1; i < k; i++) {
        double len = seg * uad_rng_range(d->r, 1.0, 2.5);
        ang += uad_rng_range(d->r, -1.2, 1.2);
        vx[i] = fmin(fmax(vx[i - 1] + len * cos(ang), 0), d->w);
        vy[i] = fmin(fmax(vy[i - 1] + len * sin(ang), 0), d->h);
    }
    double half = width * 0.5;
    for (int i = 0; i + 1 < k; i++) {
        int x0 = (int)fmax(0, fmin(vx[i], vx[i + 1]) - half - 1);
        int x1 = (int)fmin(d->w - 1, fmax(vx[i], vx[i + 1]) + half + 1);
        int y0 = (int)fmax(0, fmin(vy[i], vy[i + 1]) - half - 1);
        int y1 = (int)fmin(d->h - 1, fmax(vy[i], vy[i + 1]) + half + 1);
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++)
                if (seg_dist(x + 0.5, y + 0.5, vx[i], vy[i], vx[i + 1],
                             vy[i + 1]) <= half)
                    d->m[(size_t)y * d->w + x] = 1;
    }
}

/* Perlin noise on a 2^a lattice per axis, scaled to peak |1| and
 * thresholded at 0.5 (SPEC 3). Returns 0 when scratch memory fails. */
static int draw_perlin(draw_ctx *d, int a) {
    size_t n = (size_t)d->w * d->h;
    float *f = malloc(n * sizeof *f);
    if (!f) return 0;
    int res = 1 << a;
    syn_perlin(f, d->w, d->h, res, res, d->r);
    float mx = 0;
    for (size_t i = 0; i < n; i++) mx = fmaxf(mx, fabsf(f[i]));
    for (size_t i = 0; i < n; i++)
        if (mx > 0 && f[i] / mx > 0.5f) d->m[i] = 1;
    free(f);
    return 1;
}

/* One raw draw of a local shape into d->m (cleared first). */
static void draw_shape(draw_ctx *d, int shape_i, int size_i) {
    const shape_row *row = &k_rows[shape_i][size_i];
    memset(d->m, 0, (size_t)d->w * d->h);
    int ecc = (shape_i == 3 || shape_i == 4) && uad_rng_below(d->r, 2);
    if (ecc) row = &k_ecc_rows[size_i];
    int regions = 1 + (int)uad_rng_below(d->r, (uint64_t)row->n);
    if (shape_i == 6) {
        int a = (int)row->asp_lo + (int)uad_rng_below(d->r, 2);
        if (draw_perlin(d, a)) return;
    }
    for (int g = 0; g < regions; g++) {
        double area = uad_rng_range(d->r, row->a_lo, row->a_hi) * d->area;
        double asp = uad_rng_range(d->r, row->asp_lo, row->asp_hi);
        double th = uad_rng_range(d->r, 0, 1.5707963267948966);
        double px = uad_rng_range(d->r, row->px_lo, row->px_hi) * d->s / 512;
        if (shape_i == 0 || shape_i == 1) {
            /* length L, width asp * L, L * asp * L = area */
            double len = sqrt(area / asp);
            draw_oriented(d, len / 2, asp * len / 2, th, 0, 0);
        } else if (shape_i == 2) {
            draw_polygon(d, area, asp);
        } else if (shape_i == 3 || shape_i == 4) {
            double a = sqrt(area / (3.141592653589793 * asp));
            draw_oriented(d, a, asp * a, th, 1, shape_i == 4 ? px : 0);
        } else {
            draw_brush(d, fmax(px, 1.0), size_i);
        }
    }
}

uad_status uad_maskgen_draw(uint8_t *mask, const uint8_t *fg, int w, int h,
                            unsigned shape, unsigned size, uint64_t seed) {
    if (w < 1 || h < 1 || !mask)
        return uad_fail(UAD_ERR_USAGE, "mask generator: bad size %dx%d",
                        w, h);
    if (!shape || (shape & (shape - 1)) || shape > UAD_SHAPE_FOREGROUND ||
        (shape != UAD_SHAPE_FOREGROUND &&
         (!size || (size & (size - 1)) || size > UAD_SIZE_LARGE)))
        return uad_fail(UAD_ERR_USAGE, "mask generator: want one shape "
                        "bit and one size bit, got 0x%x and 0x%x", shape,
                        size);
    size_t n = (size_t)w * h;
    uad_rng r;
    uad_rng_seed(&r, seed);

    /* The whole foreground is a mask of its own ("global" defects). */
    if (shape == UAD_SHAPE_FOREGROUND) {
        for (size_t i = 0; i < n; i++) mask[i] = fg ? fg[i] != 0 : 1;
        if (!syn_count(mask, n)) memset(mask, 1, n);
        return UAD_OK;
    }
    /* best starts empty: when no draw hits a pixel centre (tiny images,
     * Perlin noise sampled on its lattice), the fallback below sets one
     * pixel of a clean mask. */
    uint8_t *best = calloc(n, 1), *tmp = malloc(2 * n);
    if (!best || !tmp) {
        free(best); free(tmp);
        return uad_fail(UAD_ERR_NOMEM, "mask generator: out of memory");
    }
    int shape_i = bit_index(shape), size_i = bit_index(size);
    draw_ctx d = {mask, fg, w, h, sqrt((double)n), (double)n, &r};

    /* Redraw until the part on the foreground reaches the threshold:
     * the size's smallest area, or half of what was drawn when that is
     * less (thin rings, strokes); Perlin blobs must reach the area. */
    size_t best_n = 0;
    for (int t = 0; t < 64; t++) {
        draw_shape(&d, shape_i, size_i);
        syn_close(mask, tmp, w, h, 1);
        size_t raw = syn_count(mask, n), on = 0;
        for (size_t i = 0; i < n; i++) {
            if (fg && !fg[i]) mask[i] = 0;
            on += mask[i];
        }
        double need = k_min_area[size_i] * (double)n;
        double thr = fmax(1.0, shape_i == 6 ? need : fmin(0.5 * (double)raw,
                                                          need));
        if (on > best_n) { best_n = on; memcpy(best, mask, n); }
        if ((double)on >= thr) break;
    }
    memcpy(mask, best, n);
    if (!best_n) {
        /* Too small to hit any pixel centre: one pixel on the
         * foreground keeps the mask non-empty. */
        double cx, cy;
        pick_centre(&cx, &cy, &d, 0);
        mask[(size_t)cy * w + (size_t)cx] = 1;
    }
    free(best);
    free(tmp);
    return UAD_OK;
}
