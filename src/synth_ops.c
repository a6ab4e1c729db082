/* synth_ops.c - the defect lexicon and the appearance operators of the
 * procedural (weight-free) synthesis engine (SPEC section 4, engine
 * replaced as SPEC section 8 allows).
 *
 * A description is split into lower-case words. Each word is looked up
 * in k_lex (a word matches an entry when it starts with the entry's stem,
 * or equals it / its plural for stems under 4 letters). An entry may name
 * an operator, a colour, a direction (darker/brighter), an opacity and
 * preferred mask shapes. The primary operator is the known operator word
 * of highest priority (holes, then lines, ... then plain colour);
 * colour words colour it. No operator word: the generic noise-texture
 * blend. Words that are neither in the lexicon nor context words are
 * returned as unknown (the engine warns about them). */
#include "synth_internal.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

#define S_RECT UAD_SHAPE_RECTANGLE
#define S_LINE UAD_SHAPE_LINE
#define S_POLY UAD_SHAPE_POLYGON
#define S_ELL UAD_SHAPE_ELLIPSE
#define S_BRUSH UAD_SHAPE_BRUSH
#define S_PERLIN UAD_SHAPE_PERLIN
#define S_BLOB (S_ELL | S_POLY | S_BRUSH | S_PERLIN)
#define S_AREA (S_RECT | S_POLY | S_ELL | S_PERLIN)

/* op -1: a modifier (colour, direction, opacity) or a context word. */
typedef struct lex_entry {
    const char *stem;
    int op;
    int dir;
    float rgb[3];  /* r < 0: no colour                                */
    float alpha;   /* 0: no opinion                                   */
    unsigned shapes;
} lex_entry;

#define NOC {-1, 0, 0}
static const lex_entry k_lex[] = {
    /* words that would otherwise match a shorter stem below */
    {"textur", -1, 0, NOC, 0, 0},
    {"lightly", -1, 0, NOC, 0, 0},
    /* colours and tone */
    {"red", -1, 0, {0.72f, 0.12f, 0.10f}, 0, 0},
    {"black", -1, -1, {0.03f, 0.03f, 0.03f}, 0, 0},
    {"white", -1, 1, {0.96f, 0.96f, 0.94f}, 0, 0},
    {"gray", -1, 0, {0.5f, 0.5f, 0.5f}, 0, 0},
    {"grey", -1, 0, {0.5f, 0.5f, 0.5f}, 0, 0},
    {"brown", -1, -1, {0.42f, 0.27f, 0.13f}, 0, 0},
    {"yellow", -1, 0, {0.88f, 0.78f, 0.18f}, 0, 0},
    {"green", -1, 0, {0.20f, 0.55f, 0.22f}, 0, 0},
    {"blue", -1, 0, {0.18f, 0.30f, 0.70f}, 0, 0},
    {"orange", -1, 0, {0.90f, 0.50f, 0.12f}, 0, 0},
    {"dark", -1, -1, NOC, 0, 0},
    {"bright", -1, 1, NOC, 0, 0},
    {"light", -1, 0, NOC, 0, 0},
    {"transparent", -1, 0, NOC, 0.45f, 0},
    /* substances */
    {"stain", UAD_OP_COLOR, -1, NOC, 0, S_BLOB},
    {"oil", UAD_OP_COLOR, -1, {0.12f, 0.10f, 0.06f}, 0.75f, S_BLOB},
    {"liquid", UAD_OP_COLOR, 0, NOC, 0.5f, S_BLOB},
    {"glue", UAD_OP_COLOR, 0, {0.85f, 0.82f, 0.62f}, 0.55f, S_BLOB},
    {"contamina", UAD_OP_COLOR, -1, NOC, 0, S_BLOB},
    {"foreign", UAD_OP_COLOR, 0, NOC, 0, S_BLOB},
    {"matter", UAD_OP_COLOR, 0, NOC, 0, S_BLOB},
    {"metal", UAD_OP_COLOR, 1, {0.82f, 0.82f, 0.85f}, 0, S_BLOB},
    {"dirt", UAD_OP_COLOR, -1, {0.30f, 0.24f, 0.16f}, 0, S_BLOB},
    {"dust", UAD_OP_COLOR, 0, {0.70f, 0.68f, 0.64f}, 0.6f, S_BLOB},
    {"rust", UAD_OP_COLOR, -1, {0.55f, 0.25f, 0.08f}, 0, S_BLOB},
    {"spot", UAD_OP_COLOR, 0, NOC, 0, S_ELL | S_POLY},
    /* holes */
    {"hole", UAD_OP_HOLE, -1, NOC, 0, S_ELL},
    {"blowhole", UAD_OP_HOLE, -1, NOC, 0, S_ELL},
    {"poke", UAD_OP_HOLE, -1, NOC, 0, S_ELL},
    {"punctur", UAD_OP_HOLE, -1, NOC, 0, S_ELL},
    {"pit", UAD_OP_HOLE, -1, NOC, 0, S_ELL},
    {"pore", UAD_OP_HOLE, -1, NOC, 0, S_ELL},
    /* line-like damage */
    {"crack", UAD_OP_LINE, -1, NOC, 0, S_LINE | S_BRUSH},
    {"cut", UAD_OP_LINE, -1, NOC, 0, S_LINE | S_BRUSH},
    {"scratch", UAD_OP_LINE, 0, NOC, 0, S_LINE | S_BRUSH},
    {"tear", UAD_OP_LINE, -1, NOC, 0, S_LINE | S_BRUSH},
    {"break", UAD_OP_LINE, -1, NOC, 0, S_LINE | S_BRUSH},
    {"thread", UAD_OP_LINE, 0, NOC, 0, S_BRUSH},
    {"string", UAD_OP_LINE, 0, NOC, 0, S_BRUSH},
    {"fibre", UAD_OP_LINE, 0, NOC, 0, S_BRUSH},
    {"fiber", UAD_OP_LINE, 0, NOC, 0, S_BRUSH},
    {"hair", UAD_OP_LINE, -1, NOC, 0, S_BRUSH},
    {"split", UAD_OP_LINE, -1, NOC, 0, S_LINE | S_BRUSH},
    /* surface change */
    {"fold", UAD_OP_FOLD, 0, NOC, 0, S_LINE | S_BRUSH},
    {"crease", UAD_OP_FOLD, 0, NOC, 0, S_LINE | S_BRUSH},
    {"bent", UAD_OP_FOLD, 0, NOC, 0, S_AREA},
    {"wrinkl", UAD_OP_FOLD, 0, NOC, 0, S_LINE | S_BRUSH},
    {"abras", UAD_OP_ABRASION, -1, NOC, 0, S_AREA},
    {"wear", UAD_OP_ABRASION, -1, NOC, 0, S_AREA},
    {"worn", UAD_OP_ABRASION, -1, NOC, 0, S_AREA},
    {"rough", UAD_OP_ABRASION, 0, NOC, 0, S_AREA},
    {"fray", UAD_OP_ABRASION, -1, NOC, 0, S_AREA},
    {"crumpl", UAD_OP_CRUMPLE, 0, NOC, 0, S_POLY | S_RECT},
    {"crush", UAD_OP_CRUMPLE, 0, NOC, 0, S_POLY | S_RECT},
    {"chip", UAD_OP_CRUMPLE, 0, NOC, 0, S_POLY | S_RECT},
    {"dent", UAD_OP_CRUMPLE, -1, NOC, 0, S_ELL | S_POLY},
    {"uneven", UAD_OP_LIGHTING, 0, NOC, 0, S_PERLIN},
    {"lighting", UAD_OP_LIGHTING, 0, NOC, 0, S_PERLIN},
    {"illuminat", UAD_OP_LIGHTING, 0, NOC, 0, S_PERLIN},
    {"shadow", UAD_OP_LIGHTING, -1, NOC, 0, S_PERLIN},
    {"glare", UAD_OP_LIGHTING, 1, NOC, 0, S_PERLIN},
    /* missing or wrong parts */
    {"missing", UAD_OP_MISSING, 0, NOC, 0, S_RECT | S_POLY | S_ELL},
    {"broken", UAD_OP_MISSING, 0, NOC, 0, S_RECT | S_POLY | S_ELL},
    {"absent", UAD_OP_MISSING, 0, NOC, 0, S_RECT | S_POLY | S_ELL},
    {"misplac", UAD_OP_TRANSFORM, 0, NOC, 0, S_RECT | S_POLY},
    {"flip", UAD_OP_TRANSFORM, 0, NOC, 0, S_RECT | S_POLY},
    {"swap", UAD_OP_TRANSFORM, 0, NOC, 0, S_RECT | S_POLY},
    {"wrong", UAD_OP_TRANSFORM, 0, NOC, 0, S_RECT | S_POLY},
    {"rotat", UAD_OP_TRANSFORM, 0, NOC, 0, S_RECT | S_POLY},
    /* print faults */
    {"misprint", UAD_OP_PRINT, -1, NOC, 0, S_RECT},
    {"imprint", UAD_OP_PRINT, -1, NOC, 0, S_RECT},
    {"print", UAD_OP_PRINT, -1, NOC, 0, S_RECT},
    {"text", UAD_OP_PRINT, -1, NOC, 0, S_RECT},
    {"letter", UAD_OP_PRINT, -1, NOC, 0, S_RECT},
    {"logo", UAD_OP_PRINT, -1, NOC, 0, S_RECT},
    /* deformation */
    {"squeez", UAD_OP_WARP, 0, NOC, 0, S_ELL | S_POLY | S_RECT},
    {"deform", UAD_OP_WARP, 0, NOC, 0, S_ELL | S_POLY | S_RECT},
    {"distort", UAD_OP_WARP, 0, NOC, 0, S_ELL | S_POLY | S_RECT},
    {"bulg", UAD_OP_WARP, 0, NOC, 0, S_ELL | S_POLY},
};
#define N_LEX (sizeof k_lex / sizeof k_lex[0])

/* Context words: known, but they choose nothing. */
static const char *const k_context[] = {
    "a", "an", "the", "of", "on", "in", "and", "or", "with", "at", "to",
    "from", "by", "some", "its", "is", "are", "surface", "variation",
    "variations", "area", "areas", "region", "part", "parts", "small",
    "large", "big", "tiny", "thin", "thick", "long", "short", "defect",
    "defects", "damage", "damaged", "object", "product", "color", "colour",
    "shape", "edge", "edges", "side", "top", "bottom", "piece", "pieces",
    "mark", "marks", "local", "visible", "slight", "strong", "irregular",
};

/* Operator priority, highest first: the most specific damage wins. */
static const uad_synth_op k_prio[] = {
    UAD_OP_HOLE, UAD_OP_LINE, UAD_OP_MISSING, UAD_OP_TRANSFORM,
    UAD_OP_PRINT, UAD_OP_WARP, UAD_OP_CRUMPLE, UAD_OP_FOLD,
    UAD_OP_ABRASION, UAD_OP_LIGHTING, UAD_OP_COLOR};

const char *uad_synth_op_name(uad_synth_op op) {
    static const char *names[UAD_OP_COUNT] = {
        "generic", "color", "hole", "line", "fold", "abrasion", "crumple",
        "lighting", "missing", "transform", "print", "warp"};
    return (unsigned)op < UAD_OP_COUNT ? names[op] : "unknown";
}

static const lex_entry *lex_find(const char *w) {
    size_t n = strlen(w);
    for (size_t i = 0; i < N_LEX; i++) {
        const char *s = k_lex[i].stem;
        size_t m = strlen(s);
        if (m >= 4 ? !strncmp(w, s, m)
                   : (!strcmp(w, s) ||
                      (n == m + 1 && !strncmp(w, s, m) && w[m] == 's') ||
                      (n == m + 2 && !strncmp(w, s, m) && w[m] == 'e' &&
                       w[m + 1] == 's')))
            return &k_lex[i];
    }
    return NULL;
}

static int is_context(const char *w) {
    for (size_t i = 0; i < sizeof k_context / sizeof *k_context; i++)
        if (!strcmp(w, k_context[i])) return 1;
    return 0;
}

/* Fold one known entry into the recipe; ops[] marks operators seen. */
static void lex_apply(uad_synth_recipe *r, int *ops, int *dir_op,
                      const lex_entry *e) {
    if (e->op >= 0) {
        ops[e->op] = 1;
        if (!*dir_op) *dir_op = e->dir;
    } else if (e->dir) {
        r->direction = e->dir;
    }
    if (e->rgb[0] >= 0 && !r->has_color) {
        memcpy(r->color, e->rgb, sizeof r->color);
        r->has_color = 1;
    }
    if (e->alpha > 0) r->alpha = e->alpha;
}

static void add_unknown(uad_synth_recipe *r, const char *w) {
    size_t len = strlen(r->unknown);
    r->n_unknown++;
    snprintf(r->unknown + len, sizeof r->unknown - len, "%s%s",
             len ? " " : "", w);
}

uad_synth_recipe uad_synth_lexicon(const char *description) {
    uad_synth_recipe r;
    memset(&r, 0, sizeof r);
    r.alpha = 1.0f;
    int ops[UAD_OP_COUNT] = {0}, dir_op = 0;
    const char *p = description ? description : "";

    /* Words are runs of letters, lower-cased, at most 31 kept. */
    while (*p) {
        char w[32];
        size_t n = 0;
        while (*p && !isalpha((unsigned char)*p)) p++;
        while (isalpha((unsigned char)*p)) {
            if (n + 1 < sizeof w) w[n++] = (char)tolower((unsigned char)*p);
            p++;
        }
        w[n] = 0;
        if (!n) continue;
        const lex_entry *e = lex_find(w);
        if (e) lex_apply(&r, ops, &dir_op, e);
        else if (!is_context(w)) add_unknown(&r, w);
    }

    /* The highest-priority operator seen, its shapes, its direction
     * unless a tone word already set one. */
    r.op = UAD_OP_GENERIC;
    for (size_t i = 0; i < sizeof k_prio / sizeof *k_prio; i++)
        if (ops[k_prio[i]]) { r.op = k_prio[i]; break; }
    if (r.op == UAD_OP_GENERIC && r.has_color) r.op = UAD_OP_COLOR;
    for (size_t i = 0; i < N_LEX; i++)
        if (k_lex[i].op == (int)r.op) { r.shapes = k_lex[i].shapes; break; }
    if (!r.direction) r.direction = dir_op;
    return r;
}

/* ---- operators ------------------------------------------------------- */

/* Working state of one application: the source planes, the mask's
 * bounding box, a soft profile of the mask (1 deep inside, lower near
 * its edge) and the value range. */
typedef struct op_ctx {
    uad_image *img;
    float *src;       /* c*h*w copy of the input                      */
    float *prof;      /* h*w: blurred mask, normalised to max 1        */
    float *f1, *f2;   /* h*w scratch fields                           */
    float *tmp;       /* h*w scratch                                  */
    uint8_t *mask;
    const uint8_t *fg;
    int w, h, c;
    int x0, y0, x1, y1;
    size_t area;
    float lo, hi;
    float strength;
    const uad_synth_recipe *r;
    uad_rng rng;
} op_ctx;

static inline int in_mask(const op_ctx *o, size_t i) { return o->mask[i]; }

/* Mean of channel-averaged source values over mask pixels. */
static float mask_mean(const op_ctx *o) {
    double s = 0;
    size_t n = (size_t)o->w * o->h;
    for (int y = o->y0; y <= o->y1; y++)
        for (int x = o->x0; x <= o->x1; x++) {
            size_t i = (size_t)y * o->w + x;
            if (!in_mask(o, i)) continue;
            for (int c = 0; c < o->c; c++) s += o->src[c * n + i];
        }
    return (float)(s / ((double)o->area * o->c));
}

/* Target colour of channel c: the recipe's colour (its luminance on a
 * gray image) mapped into the value range. */
static float target_value(const op_ctx *o, int c, float fallback) {
    if (!o->r->has_color) return fallback;
    const float *k = o->r->color;
    float v = o->c == 3 ? k[c] : 0.299f * k[0] + 0.587f * k[1] +
                                     0.114f * k[2];
    return o->lo + v * (o->hi - o->lo);
}

/* Write v into channel c of pixel i, clamped to the range. */
static inline void put(op_ctx *o, int c, size_t i, float v) {
    size_t n = (size_t)o->w * o->h;
    o->img->data[c * n + i] = syn_clampf(v, o->lo, o->hi);
}
static inline float src_at(const op_ctx *o, int c, size_t i) {
    return o->src[(size_t)c * o->w * o->h + i];
}

/* Direction of a change: the recipe's, or for "either" toward the end
 * of the range with more room 3 times in 4 (a bright surface mostly
 * gets a dark defect, sometimes a bright one). */
static float pick_dir(op_ctx *o, float mean) {
    if (o->r->direction) return (float)o->r->direction;
    float mid = 0.5f * (o->lo + o->hi);
    if (uad_rng_uniform(&o->rng) < 0.25) return mean > mid ? 1.0f : -1.0f;
    return mean > mid ? -1.0f : 1.0f;
}

/* Smooth noise field over the image at lattice `res` (per axis, at
 * least 1), in [-1, 1]. */
static void noise_field(op_ctx *o, float *out, int res, int oct) {
    if (res < 1) res = 1;
    syn_fbm(out, o->tmp, o->w, o->h, res, oct, &o->rng);
}

/* Lattice resolution that puts `cells` noise cells across the mask's
 * bounding box. */
static int res_for(const op_ctx *o, double cells) {
    int span = (o->x1 - o->x0 + 1) > (o->y1 - o->y0 + 1)
                   ? (o->x1 - o->x0 + 1) : (o->y1 - o->y0 + 1);
    double side = o->w > o->h ? o->w : o->h;
    int r = (int)(cells * side / (double)span + 0.5);
    return r < 1 ? 1 : r > 64 ? 64 : r;
}

static void op_color(op_ctx *o) {
    size_t n = (size_t)o->w * o->h;
    float mean = mask_mean(o), dir = pick_dir(o, mean);
    float fallback = dir < 0 ? o->lo + 0.35f * (mean - o->lo)
                             : o->hi - 0.35f * (o->hi - mean);
    noise_field(o, o->f1, res_for(o, 2.5), 3);
    float a0 = o->r->alpha * syn_clampf(0.9f * o->strength, 0.4f, 1.0f);
    for (size_t i = 0; i < n; i++) {
        if (!in_mask(o, i)) continue;
        /* noise-modulated opacity, fading toward the mask edge */
        float a = a0 * (0.65f + 0.35f * o->f1[i]) * (0.4f + 0.6f * o->prof[i]);
        for (int c = 0; c < o->c; c++) {
            float x = src_at(o, c, i), t = target_value(o, c, fallback);
            /* keep some of the surface texture under the stain */
            float tex = (x - mean) * 0.4f;
            put(o, c, i, x + a * (t + tex - x));
        }
    }
}

static void op_hole(op_ctx *o) {
    size_t n = (size_t)o->w * o->h;
    float mean = mask_mean(o);
    float dark = o->r->direction > 0 ? o->hi : o->lo;
    /* A pit takes the surface 30-70% of the way to the hole's colour
     * (black by default): real blowholes keep some light. */
    float depth = syn_clampf((float)uad_rng_range(&o->rng, 0.35, 0.55) *
                                 o->strength, 0.3f, 0.7f);
    noise_field(o, o->f1, res_for(o, 3), 2);
    for (size_t i = 0; i < n; i++) {
        if (!in_mask(o, i)) continue;
        /* deepest at the centre, a soft irregular rim */
        float a = depth * syn_clampf(0.45f + 0.55f * o->prof[i] +
                                         0.1f * o->f1[i], 0.2f, 1.0f);
        for (int c = 0; c < o->c; c++) {
            float x = src_at(o, c, i);
            float t = target_value(o, c, dark);
            /* texture dims with the light instead of vanishing */
            put(o, c, i, x + a * (t + 0.3f * (x - mean) - x));
        }
    }
}

/* Chamfer (3-4) distance of every mask pixel to the nearest pixel
 * outside the mask, in pixels, into d (h*w). */
static void inside_distance(float *d, const op_ctx *o) {
    int w = o->w, h = o->h;
    const float big = 1e9f;
    for (size_t i = 0; i < (size_t)w * h; i++) d[i] = o->mask[i] ? big : 0;
    for (int pass = 0; pass < 2; pass++) {
        int y0 = pass ? h - 1 : 0, y1 = pass ? -1 : h, dy = pass ? -1 : 1;
        for (int y = y0; y != y1; y += dy)
            for (int x = pass ? w - 1 : 0; pass ? x >= 0 : x < w;
                 x += pass ? -1 : 1) {
                float *v = &d[(size_t)y * w + x];
                if (*v == 0) continue;
                const int nx[4] = {-1, 0, 1, -1}, ny[4] = {0, -1, -1, -1};
                for (int k = 0; k < 4; k++) {
                    int qx = x + (pass ? -nx[k] : nx[k]);
                    int qy = y + (pass ? -ny[k] : ny[k]);
                    float step = (k == 1 || k == 0) ? 1.0f : 1.4f;
                    float q = (qx < 0 || qy < 0 || qx >= w || qy >= h)
                                  ? 0 : d[(size_t)qy * w + qx];
                    if (q + step < *v) *v = q + step;
                }
            }
    }
}

static void op_line(op_ctx *o) {
    size_t n = (size_t)o->w * o->h;
    float mean = mask_mean(o), dir = pick_dir(o, mean);
    float t0 = dir < 0 ? o->lo + 0.2f * (mean - o->lo)
                       : o->hi - 0.2f * (o->hi - mean);
    noise_field(o, o->f1, res_for(o, 6), 2);
    noise_field(o, o->tmp, res_for(o, 12), 1);
    memcpy(o->f2, o->tmp, n * sizeof *o->f2);
    /* A wide stroke keeps only its jagged core (about 2 px wide): cracks
     * and scratches are thin; the mask shrinks to the changed pixels. */
    inside_distance(o->tmp, o);
    float dmax = 0;
    for (size_t i = 0; i < n; i++) dmax = fmaxf(dmax, o->tmp[i]);
    for (size_t i = 0; i < n; i++) {
        if (!in_mask(o, i)) continue;
        float keep = o->tmp[i] + 0.9f * o->f2[i] >= dmax - 1.2f;
        if (dmax > 2.5f && !keep && o->tmp[i] < dmax) { o->mask[i] = 0; continue; }
        float a = syn_clampf(o->strength * 0.85f * (0.8f + 0.3f * o->f1[i]),
                             0.3f, 1.0f);
        for (int c = 0; c < o->c; c++) {
            float x = src_at(o, c, i);
            put(o, c, i, x + a * (target_value(o, c, t0) - x));
        }
    }
}

/* Relief shading: value += k * (directional derivative of height),
 * lit from angle th; height = f1 (h*w). Also darkens by `dark`. */
static void shade(op_ctx *o, const float *height, float k, float dark) {
    size_t n = (size_t)o->w * o->h;
    double th = uad_rng_range(&o->rng, 0, 6.283185307179586);
    float lx = (float)cos(th), ly = (float)sin(th);
    float range = o->hi - o->lo;
    for (size_t i = 0; i < n; i++) {
        if (!in_mask(o, i)) continue;
        int x = (int)(i % o->w), y = (int)(i / o->w);
        int xl = x > 0 ? x - 1 : x, xr = x < o->w - 1 ? x + 1 : x;
        int yu = y > 0 ? y - 1 : y, yd = y < o->h - 1 ? y + 1 : y;
        float gx = height[(size_t)y * o->w + xr] - height[(size_t)y * o->w + xl];
        float gy = height[(size_t)yd * o->w + x] - height[(size_t)yu * o->w + x];
        float s = k * (lx * gx + ly * gy);
        for (int c = 0; c < o->c; c++) {
            float v = src_at(o, c, i);
            put(o, c, i, v * (1 - dark * o->prof[i]) + s * range);
        }
    }
}

static void op_fold(op_ctx *o) {
    size_t n = (size_t)o->w * o->h;
    /* The mask's own blurred profile is the bump: a ridge along lines. */
    for (size_t i = 0; i < n; i++) o->f1[i] = o->prof[i];
    shade(o, o->f1, 2.2f * o->strength, 0.05f);
}

static void op_crumple(op_ctx *o) {
    size_t n = (size_t)o->w * o->h;
    /* Height = a few octaves of noise inside the mask: facets of a
     * crumpled or chipped surface, lit from one side, plus a cast. */
    noise_field(o, o->f1, res_for(o, 2), 3);
    for (size_t i = 0; i < n; i++) o->f1[i] *= o->prof[i];
    syn_box_blur(o->f1, o->tmp, o->f1, o->w, o->h, 1);
    shade(o, o->f1, 0.9f * o->strength, 0.0f);
    float mean = mask_mean(o), dir = pick_dir(o, mean);
    float cast = 0.28f * dir * o->strength * (o->hi - o->lo);
    for (size_t i = 0; i < n; i++)
        if (in_mask(o, i))
            for (int c = 0; c < o->c; c++)
                put(o, c, i, o->img->data[c * n + i] +
                                 cast * (0.5f + 0.5f * o->prof[i]));
}

/* Random short thin strokes (scratches) into field f (0/1). */
static void scratch_field(op_ctx *o, float *f, int count) {
    size_t n = (size_t)o->w * o->h;
    memset(f, 0, n * sizeof *f);
    double span = fmax(o->x1 - o->x0 + 1, o->y1 - o->y0 + 1);
    for (int k = 0; k < count; k++) {
        double x = uad_rng_range(&o->rng, o->x0, o->x1 + 1);
        double y = uad_rng_range(&o->rng, o->y0, o->y1 + 1);
        double a = uad_rng_range(&o->rng, 0, 3.141592653589793);
        double len = span * uad_rng_range(&o->rng, 0.1, 0.5);
        for (double t = -len / 2; t <= len / 2; t += 0.5) {
            int px = (int)(x + t * cos(a)), py = (int)(y + t * sin(a));
            if (px >= 0 && py >= 0 && px < o->w && py < o->h)
                f[(size_t)py * o->w + px] = 1;
        }
    }
}

static void op_abrasion(op_ctx *o) {
    size_t n = (size_t)o->w * o->h;
    float mean = mask_mean(o), dir = pick_dir(o, mean);
    float range = o->hi - o->lo;
    /* Worn surface: fine texture smoothed away, the tone shifted, faint
     * scratches and speckle on top; opacity varies with low-frequency
     * noise so the worn patch has ragged edges. */
    noise_field(o, o->f1, res_for(o, 3), 3);
    scratch_field(o, o->f2, 6 + (int)(sqrt((double)o->area) / 4));
    float shift = dir * (float)uad_rng_range(&o->rng, 0.08, 0.18) *
                  o->strength * range;
    float *sm = uad_malloc(n * sizeof *sm), *t2 = uad_malloc(n * sizeof *t2);
    if (!sm || !t2) { free(sm); free(t2); return; }
    for (int c = 0; c < o->c; c++) {
        const float *p = o->src + (size_t)c * n;
        syn_box_blur(sm, t2, p, o->w, o->h, 1);
        for (size_t i = 0; i < n; i++) {
            if (!in_mask(o, i)) continue;
            uint64_t hsh = (uint64_t)i * 0x9E3779B97F4A7C15ull;
            float speck = (float)((hsh >> 40) & 1023) / 1023.0f - 0.5f;
            float a = syn_clampf((0.7f + 0.5f * o->f1[i]) *
                                     (0.3f + 0.9f * o->prof[i]), 0, 1);
            float v = sm[i] + shift + 0.05f * speck * range -
                      dir * 0.05f * o->f2[i] * range;
            put(o, c, i, p[i] + a * (v - p[i]));
        }
    }
    free(sm);
    free(t2);
}

static void op_lighting(op_ctx *o) {
    size_t n = (size_t)o->w * o->h;
    /* Light varies either way: an open direction is a fair coin here
     * (real uneven MTD tiles are more often brighter than darker). */
    float dir = o->r->direction ? (float)o->r->direction
                : uad_rng_uniform(&o->rng) < 0.5 ? -1.0f : 1.0f;
    float amp = (float)uad_rng_range(&o->rng, 0.2, 0.4) * o->strength;
    noise_field(o, o->f1, res_for(o, 1.5), 2);
    /* Texture contrast changes as under another light; the gain is low
     * frequency and fades in over the mask's soft profile, so there is
     * no stain-like hard edge. */
    float contrast = (float)uad_rng_range(&o->rng, 0.8, 1.5);
    for (int c = 0; c < o->c; c++) {
        const float *p = o->src + (size_t)c * n;
        syn_box_blur(o->f2, o->tmp, p, o->w, o->h, 3);
        for (size_t i = 0; i < n; i++) {
            if (!in_mask(o, i)) continue;
            float g = 1 + dir * amp * (0.6f + 0.4f * o->f1[i]);
            float edge = syn_clampf(o->prof[i] * 1.5f, 0, 1);
            float v = (o->f2[i] + contrast * (p[i] - o->f2[i])) * g;
            put(o, c, i, p[i] + edge * (v - p[i]));
        }
    }
}

static void op_missing(op_ctx *o) {
    size_t n = (size_t)o->w * o->h;
    /* Background: mean of non-foreground pixels, else a heavy blur of
     * the surroundings (material gone, a flat recess left). */
    double bg[3] = {0, 0, 0};
    size_t nb = 0;
    if (o->fg)
        for (size_t i = 0; i < n; i++)
            if (!o->fg[i]) {
                nb++;
                for (int c = 0; c < o->c; c++) bg[c] += src_at(o, c, i);
            }
    noise_field(o, o->f1, res_for(o, 6), 2);
    float mean = mask_mean(o), dir = pick_dir(o, mean);
    for (int c = 0; c < o->c; c++) {
        float b = nb ? (float)(bg[c] / (double)nb)
                     : mean + dir * 0.3f * (o->hi - o->lo);
        for (size_t i = 0; i < n; i++)
            if (in_mask(o, i))
                put(o, c, i, b + 0.03f * o->f1[i] * (o->hi - o->lo));
    }
}

static void op_transform(op_ctx *o) {
    size_t n = (size_t)o->w * o->h;
    int kind = (int)uad_rng_below(&o->rng, 3); /* h-flip, v-flip, 180 */
    for (size_t i = 0; i < n; i++) {
        if (!in_mask(o, i)) continue;
        int x = (int)(i % o->w), y = (int)(i / o->w);
        int sx = kind != 1 ? o->x0 + o->x1 - x : x;
        int sy = kind != 0 ? o->y0 + o->y1 - y : y;
        size_t j = (size_t)sy * o->w + sx;
        for (int c = 0; c < o->c; c++) put(o, c, i, src_at(o, c, j));
    }
}

static void op_print(op_ctx *o) {
    size_t n = (size_t)o->w * o->h;
    /* Glyph-like strokes: short segments and arcs in rows across the
     * box; the mask shrinks to the inked pixels. */
    memset(o->f2, 0, n * sizeof *o->f2);
    int bw = o->x1 - o->x0 + 1, bh = o->y1 - o->y0 + 1;
    int glyph = bh / 2 > 3 ? bh / 2 : 3, ng = bw / glyph + 1;
    float pen = fmaxf(0.8f, glyph / 7.0f);
    for (int g = 0; g < ng; g++)
        for (int s = 0; s < 3; s++) {
            double gx = o->x0 + (g + 0.5) * glyph, gy = o->y0 + bh * 0.5;
            double ax = gx + uad_rng_range(&o->rng, -0.4, 0.4) * glyph;
            double ay = gy + uad_rng_range(&o->rng, -0.8, 0.8) * glyph;
            double bx = gx + uad_rng_range(&o->rng, -0.4, 0.4) * glyph;
            double by = gy + uad_rng_range(&o->rng, -0.8, 0.8) * glyph;
            for (int t = 0; t <= 32; t++) {
                double px = ax + (bx - ax) * t / 32.0;
                double py = ay + (by - ay) * t / 32.0;
                for (int dy = -2; dy <= 2; dy++)
                    for (int dx = -2; dx <= 2; dx++) {
                        int qx = (int)(px + dx), qy = (int)(py + dy);
                        if (qx < 0 || qy < 0 || qx >= o->w || qy >= o->h ||
                            hypot(dx, dy) > pen)
                            continue;
                        o->f2[(size_t)qy * o->w + qx] = 1;
                    }
            }
        }
    float mean = mask_mean(o), dir = pick_dir(o, mean);
    float ink = dir < 0 ? o->lo + 0.15f * (mean - o->lo)
                        : o->hi - 0.15f * (o->hi - mean);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) kept += o->mask[i] && o->f2[i] > 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_mask(o, i)) continue;
        if (kept && o->f2[i] <= 0) { o->mask[i] = 0; continue; }
        for (int c = 0; c < o->c; c++)
            put(o, c, i, target_value(o, c, ink));
    }
}

static void op_warp(op_ctx *o) {
    size_t n = (size_t)o->w * o->h;
    /* Displace sampling positions by a smooth field vanishing at the
     * mask edge; read the source with bilinear interpolation. */
    noise_field(o, o->f1, res_for(o, 2), 2);
    noise_field(o, o->f2, res_for(o, 2), 2);
    double amp = 0.25 * sqrt((double)o->area) * o->strength;
    for (size_t i = 0; i < n; i++) {
        if (!in_mask(o, i)) continue;
        float sx = (float)(i % o->w) + (float)amp * o->f1[i] * o->prof[i];
        float sy = (float)(i / o->w) + (float)amp * o->f2[i] * o->prof[i];
        sx = syn_clampf(sx, 0, (float)o->w - 1);
        sy = syn_clampf(sy, 0, (float)o->h - 1);
        int ix = (int)sx, iy = (int)sy;
        int jx = ix + 1 < o->w ? ix + 1 : ix, jy = iy + 1 < o->h ? iy + 1 : iy;
        float fx = sx - (float)ix, fy = sy - (float)iy;
        for (int c = 0; c < o->c; c++) {
            const float *p = o->src + (size_t)c * n;
            float a = p[(size_t)iy * o->w + ix], b = p[(size_t)iy * o->w + jx];
            float d = p[(size_t)jy * o->w + ix], e = p[(size_t)jy * o->w + jx];
            put(o, c, i, (a + fx * (b - a)) * (1 - fy) + (d + fx * (e - d)) * fy);
        }
    }
}

static void op_generic(op_ctx *o) {
    size_t n = (size_t)o->w * o->h;
    /* Noise texture in the value range, blended with noisy opacity. */
    noise_field(o, o->f1, res_for(o, 4), 4);
    noise_field(o, o->f2, res_for(o, 1.5), 2);
    float mean = mask_mean(o);
    for (size_t i = 0; i < n; i++) {
        if (!in_mask(o, i)) continue;
        float a = syn_clampf(0.55f * o->strength * (0.7f + 0.3f * o->f2[i]) *
                                 (0.5f + 0.5f * o->prof[i]), 0.15f, 1.0f);
        float t = mean + 0.45f * o->f1[i] * (o->hi - o->lo);
        for (int c = 0; c < o->c; c++) {
            float x = src_at(o, c, i);
            put(o, c, i, x + a * (t - x));
        }
    }
}

/* ---- applying a recipe ----------------------------------------------- */

/* Value range: integer sources live in [0, 1]; float sources keep their
 * own values, so their range is [min(0, min), max(1, max)]. */
void syn_value_range(float *lo, float *hi, const uad_image *img) {
    *lo = 0;
    *hi = 1;
    if (img->bit_depth > 0 && img->bit_depth <= 16) return;
    size_t n = (size_t)img->c * img->w * img->h;
    for (size_t i = 0; i < n; i++) {
        *lo = fminf(*lo, img->data[i]);
        *hi = fmaxf(*hi, img->data[i]);
    }
}

/* Mean |change| over mask pixels and channels, in units of the range. */
static double mean_change(const op_ctx *o) {
    size_t n = (size_t)o->w * o->h;
    double s = 0;
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++) {
        if (!o->mask[i]) continue;
        cnt++;
        for (int c = 0; c < o->c; c++)
            s += fabsf(o->img->data[c * n + i] - o->src[c * n + i]);
    }
    return cnt ? s / ((double)cnt * o->c * (o->hi - o->lo)) : 0;
}

/* Make the change at least UAD_SYNTH_MIN_CHANGE: first amplify what the
 * operator did, then (a constant image, a flip of a symmetric patch)
 * push the values toward the end of the range with room. */
static void enforce_min_change(op_ctx *o) {
    size_t n = (size_t)o->w * o->h;
    const double want = UAD_SYNTH_MIN_CHANGE * 1.05;
    for (int it = 0; it < 3; it++) {
        double m = mean_change(o);
        if (m >= want) return;
        if (m < 1e-4) break;
        float k = (float)(want / m);
        for (size_t i = 0; i < n; i++)
            if (o->mask[i])
                for (int c = 0; c < o->c; c++) {
                    float x = o->src[c * n + i];
                    put(o, c, i, x + k * (o->img->data[c * n + i] - x));
                }
    }
    if (mean_change(o) >= want) return;
    float need = (float)(want * 1.2) * (o->hi - o->lo);
    float dir = o->r->direction ? (float)o->r->direction : -1.0f;
    for (size_t i = 0; i < n; i++)
        if (o->mask[i])
            for (int c = 0; c < o->c; c++) {
                float x = o->src[c * n + i], s = dir;
                if (x + s * need > o->hi || x + s * need < o->lo) s = -s;
                float cur = o->img->data[c * n + i] - x;
                if (fabsf(cur) < need) put(o, c, i, x + s * need);
            }
}

/* Bounding box, area and soft profile of the mask. */
static void mask_geometry(op_ctx *o) {
    size_t n = (size_t)o->w * o->h;
    o->x0 = o->w; o->y0 = o->h; o->x1 = -1; o->y1 = -1; o->area = 0;
    for (size_t i = 0; i < n; i++) {
        o->prof[i] = o->mask[i] ? 1.0f : 0.0f;
        if (!o->mask[i]) continue;
        int x = (int)(i % o->w), y = (int)(i / o->w);
        o->area++;
        if (x < o->x0) o->x0 = x;
        if (x > o->x1) o->x1 = x;
        if (y < o->y0) o->y0 = y;
        if (y > o->y1) o->y1 = y;
    }
    int rad = (int)(sqrt((double)o->area) / 6 + 0.5);
    if (rad < 1) rad = 1;
    syn_box_blur(o->prof, o->tmp, o->prof, o->w, o->h, rad);
    float mx = 0;
    for (size_t i = 0; i < n; i++)
        if (o->mask[i]) mx = fmaxf(mx, o->prof[i]);
    for (size_t i = 0; i < n; i++)
        o->prof[i] = o->mask[i] && mx > 0 ? o->prof[i] / mx : 0;
}

/* Run the recipe's operator on img (the whole image or a crop of it)
 * with the value range lo..hi of the full image. */
static void apply_core(uad_image *img, uint8_t *mask, const uint8_t *fg,
                       const uad_synth_recipe *r, float strength,
                       uint64_t seed, float lo, float hi) {
    typedef void (*op_fn)(op_ctx *);
    static const op_fn ops[UAD_OP_COUNT] = {
        op_generic, op_color, op_hole, op_line, op_fold, op_abrasion,
        op_crumple, op_lighting, op_missing, op_transform, op_print,
        op_warp};
    op_ctx o;
    memset(&o, 0, sizeof o);
    o.img = img; o.mask = mask; o.fg = fg; o.r = r;
    o.w = img->w; o.h = img->h; o.c = img->c;
    o.strength = syn_clampf(strength, 0.5f, 1.5f);
    o.lo = lo;
    o.hi = hi;
    uad_rng_seed(&o.rng, seed);
    size_t n = (size_t)o.w * o.h;
    float *buf = uad_malloc((size_t)(o.c + 4) * n * sizeof *buf);
    /* Scratch for a 256 x 256 RGB image is 7 * 256 KiB; when even that
     * fails the image is left as it was (the caller's score sees it). */
    if (!buf) return;
    o.src = buf; o.prof = buf + (size_t)o.c * n;
    o.f1 = o.prof + n; o.f2 = o.f1 + n; o.tmp = o.f2 + n;
    memcpy(o.src, img->data, (size_t)o.c * n * sizeof *buf);
    mask_geometry(&o);
    ops[(unsigned)r->op < UAD_OP_COUNT ? r->op : UAD_OP_GENERIC](&o);
    enforce_min_change(&o);
    free(buf);
}

/* Copy the crop (x0, y0, cw x ch) of img/mask/fg into sub (forward) or
 * the crop's mask pixels back (back = 1). */
static void crop_copy(uad_image *img, uint8_t *mask, const uint8_t *fg,
                      uad_image *sub, uint8_t *smask, uint8_t *sfg, int x0,
                      int y0, int back) {
    size_t n = (size_t)img->w * img->h, cn = (size_t)sub->w * sub->h;
    for (int y = 0; y < sub->h; y++)
        for (int x = 0; x < sub->w; x++) {
            size_t i = (size_t)(y + y0) * img->w + x + x0;
            size_t j = (size_t)y * sub->w + x;
            if (back) {
                if (!mask[i]) continue;
                mask[i] = smask[j];
                for (int c = 0; c < img->c; c++)
                    img->data[c * n + i] = sub->data[c * cn + j];
                continue;
            }
            smask[j] = mask[i];
            if (sfg) sfg[j] = fg[i];
            for (int c = 0; c < img->c; c++)
                sub->data[c * cn + j] = img->data[c * n + i];
        }
}

void uad_synth_apply(uad_image *img, uint8_t *mask, const uint8_t *fg,
                     const uad_synth_recipe *r, float strength,
                     uint64_t seed) {
    int w = img->w, h = img->h, x0 = w, y0 = h, x1 = -1, y1 = -1;
    float lo, hi;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (mask[(size_t)y * w + x]) {
                x0 = x < x0 ? x : x0; x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0; y1 = y > y1 ? y : y1;
            }
    if (x1 < 0) return;
    syn_value_range(&lo, &hi, img);

    /* Small masks are worked on in a crop around them (every operator
     * reads at most half the mask's size beyond it), which makes the
     * cost follow the defect's size rather than the image's. */
    int side = (x1 - x0) > (y1 - y0) ? x1 - x0 + 1 : y1 - y0 + 1;
    int m = 8 + side / 2;
    x0 = x0 - m < 0 ? 0 : x0 - m; y0 = y0 - m < 0 ? 0 : y0 - m;
    x1 = x1 + m >= w ? w - 1 : x1 + m; y1 = y1 + m >= h ? h - 1 : y1 + m;
    size_t cn = (size_t)(x1 - x0 + 1) * (y1 - y0 + 1);
    if (cn * 10 > (size_t)w * h * 7) {
        apply_core(img, mask, fg, r, strength, seed, lo, hi);
        return;
    }
    uad_image sub = *img;
    sub.w = x1 - x0 + 1;
    sub.h = y1 - y0 + 1;
    sub.data = uad_malloc(cn * (size_t)img->c * sizeof *sub.data);
    uint8_t *smask = uad_malloc(2 * cn);
    if (!sub.data || !smask) {
        free(sub.data);
        free(smask);
        return;
    }
    crop_copy(img, mask, fg, &sub, smask, fg ? smask + cn : NULL, x0, y0, 0);
    apply_core(&sub, smask, fg ? smask + cn : NULL, r, strength, seed, lo, hi);
    crop_copy(img, mask, fg, &sub, smask, NULL, x0, y0, 1);
    free(sub.data);
    free(smask);
}
