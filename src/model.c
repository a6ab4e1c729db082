/* model.c - the discriminator's structure: configuration, parameter
 * table and arena, initialisation, accessors, and the model file
 * (safetensors with the configuration as string metadata). */
#include "model.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <string.h>

static const char *const g_backbones[] = {"gabor", "stem", "hybrid",
                                          "dinov2", "dinov3", "clip"};
#define N_BACKBONES 6

const char *uad_backbone_name(int kind) {
    return kind >= 0 && kind < N_BACKBONES ? g_backbones[kind] : NULL;
}

int uad_backbone_parse(const char *name) {
    for (int i = 0; name && i < N_BACKBONES; i++)
        if (!strcmp(name, g_backbones[i])) return i;
    return -1;
}

int uad_backbone_is_vit(int kind) {
    return kind >= UAD_BACKBONE_DINOV2 && kind <= UAD_BACKBONE_CLIP;
}

uad_status uad_backbone_parse_spec(int *kind, const char **dir,
                                   const char *spec) {
    const char *colon = spec ? strchr(spec, ':') : NULL;
    char name[16];
    size_t n = colon ? (size_t)(colon - spec) : (spec ? strlen(spec) : 0);
    *kind = -1;
    *dir = NULL;
    if (!spec || n >= sizeof name)
        return uad_fail(UAD_ERR_USAGE, "unknown backbone '%s' (gabor, stem, "
                        "hybrid, dinov2:DIR, dinov3:DIR or clip:DIR)",
                        spec ? spec : "");
    memcpy(name, spec, n);
    name[n] = 0;
    int k = uad_backbone_parse(name);
    if (k < 0)
        return uad_fail(UAD_ERR_USAGE, "unknown backbone '%s' (gabor, stem, "
                        "hybrid, dinov2:DIR, dinov3:DIR or clip:DIR)", spec);
    if (uad_backbone_is_vit(k) && (!colon || !colon[1]))
        return uad_fail(UAD_ERR_USAGE, "backbone '%s' needs its checkpoint "
                        "folder: %s:DIR", spec, name);
    if (!uad_backbone_is_vit(k) && colon)
        return uad_fail(UAD_ERR_USAGE, "backbone '%s': the built-in %s "
                        "backbone takes no folder", spec, name);
    *kind = k;
    *dir = colon ? colon + 1 : NULL;
    return UAD_OK;
}

int uad_vit_input_size(int patch, int requested) {
    int k = (requested + patch / 2) / patch;
    return (k < 1 ? 1 : k) * patch;
}

uad_model_params uad_model_default_params(void) {
    uad_model_params p;
    p.width = 64;
    p.input_size = 256;
    p.backbone = UAD_BACKBONE_GABOR;
    p.tau = 0.5f;
    p.seed = 0;
    p.backbone_dir = NULL;
    p.embed = NULL;
    p.text = NULL;
    return p;
}

/* ---- parameter table --------------------------------------------------- */

typedef struct layout_ctx {
    uad_model *m;
    int cap;
    size_t off;
    int clip;   /* group flag for the parameters added next */
} layout_ctx;

static int add_param(layout_ctx *c, int decay, int ndim, int64_t d0,
                     int64_t d1, int64_t d2, int64_t d3, const char *fmt,
                     ...) __attribute__((format(printf, 8, 9)));

static int add_param(layout_ctx *c, int decay, int ndim, int64_t d0,
                     int64_t d1, int64_t d2, int64_t d3, const char *fmt,
                     ...) {
    uad_model *m = c->m;
    if (m->n_params == c->cap) return -1;
    uad_param *p = &m->params[m->n_params];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    int64_t d[4] = {d0, d1, d2, d3};
    p->ndim = ndim;
    p->n = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = d[i];
        p->n *= (size_t)d[i];
    }
    p->off = c->off;
    c->off += (p->n + 15) & ~(size_t)15;
    p->decay = decay;
    p->clip = c->clip && decay;
    return m->n_params++;
}

static void add_unit(layout_ctx *c, uad_unit_ix *u, int C, int b,
                     const char *which) {
    u->conv_w = add_param(c, 1, 4, C, C, 3, 3, "fusion.%d.%s.conv.weight", b,
                          which);
    u->bn_w = add_param(c, 1, 1, C, 0, 0, 0, "fusion.%d.%s.bn.weight", b, which);
    u->bn_b = add_param(c, 1, 1, C, 0, 0, 0, "fusion.%d.%s.bn.bias", b, which);
    u->bn_mean = add_param(c, 0, 1, C, 0, 0, 0, "fusion.%d.%s.bn.running_mean",
                           b, which);
    u->bn_var = add_param(c, 0, 1, C, 0, 0, 0, "fusion.%d.%s.bn.running_var", b,
                          which);
}

uad_status uad_model_layout(uad_model *m) {
    int C = m->width;
    layout_ctx c = {m, 96, 0, 1};
    m->params = uad_calloc((size_t)c.cap, sizeof *m->params);
    if (!m->params) return UAD_ERR_NOMEM;
    m->n_params = 0;
    for (int l = 0; l < UAD_LEVELS; l++) {
        int d = 0;
        if (uad_has_gabor(m)) d += UAD_GABOR_DIM;
        if (uad_has_stem(m)) d += uad_stem_channels(l + 1);
        m->grid[l] = m->size / (4 << l);
        if (uad_has_vit(m)) {
            /* every level on the one patch grid (SPEC section 6) */
            uad_vit_info in;
            uad_vit_get_info(m->vit, &in);
            d = in.hidden;
            m->grid[l] = m->size / in.patch;
        }
        m->feat_dim[l] = d;
    }

    /* stem (trained with the fusion part, so inside the clipped group) */
    for (int j = 0; uad_has_stem(m) && j <= UAD_LEVELS; j++) {
        int co = uad_stem_channels(j), ci = j ? uad_stem_channels(j - 1) : 3;
        m->stem_w[j] = add_param(&c, 1, 4, co, ci, 3, 3, "stem.%d.weight", j);
        m->stem_b[j] = add_param(&c, 1, 1, co, 0, 0, 0, "stem.%d.bias", j);
    }
    /* necks: PyTorch nn.Linear(D, C, bias=False), weight (C, D) */
    for (int l = 0; l < UAD_LEVELS; l++)
        m->neck[l] = add_param(&c, 1, 2, C, m->feat_dim[l], 0, 0,
                               "neck.%d.weight", l);
    for (int b = 0; b < UAD_LEVELS; b++) {
        add_unit(&c, &m->block[b].lat, C, b, "lateral");
        add_unit(&c, &m->block[b].mix, C, b, "mix");
        m->block[b].proj_w = add_param(&c, 1, 4, C, C, 1, 1,
                                       "fusion.%d.proj.weight", b);
        m->block[b].proj_b = add_param(&c, 1, 1, C, 0, 0, 0,
                                       "fusion.%d.proj.bias", b);
    }
    /* embeddings and temperature: outside the clipped group */
    c.clip = 0;
    /* frozen text embeddings are not trained (decay 0: no AdamW) */
    m->embed = add_param(&c, !m->embed_frozen, 2, m->n_cat, C, 0, 0,
                         "embed.weight");
    m->temp = add_param(&c, 1, 1, 1, 0, 0, 0, "temperature");
    UAD_ASSERT(m->n_params < c.cap);
    m->n_arena = c.off;
    m->arena = aligned_alloc(64, m->n_arena * sizeof(float));
    if (!m->arena) return uad_fail(UAD_ERR_NOMEM, "model: out of memory");
    memset(m->arena, 0, m->n_arena * sizeof(float));
    return UAD_OK;
}

/* Fan-in of a weight (all dims but the first). */
static size_t fan_in(const uad_param *p) {
    size_t f = 1;
    for (int i = 1; i < p->ndim; i++) f *= (size_t)p->shape[i];
    return f;
}

/* PyTorch's defaults: weights and biases U(-1/sqrt(fan_in), +), BN
 * weight 1, bias 0, running var 1; the embeddings are Gaussian, one
 * stream per category index, normalised in the forward pass; eps = 1. */
void uad_model_init_params(uad_model *m, uint64_t seed) {
    uad_rng root, r;
    uad_rng_seed(&root, seed);
    for (int i = 0; i < m->n_params; i++) {
        const uad_param *p = &m->params[i];
        float *w = m->arena + p->off;
        const char *nm = p->name;
        size_t len = strlen(nm);
        uad_rng_fork(&r, &root, (uint64_t)i);
        if (i == m->temp) {
            w[0] = 1.0f;
        } else if (i == m->embed) {
            for (size_t k = 0; k < p->n; k++) w[k] = (float)uad_rng_normal(&r);
        } else if (strstr(nm, ".bn.")) {
            float v = len > 6 && !strcmp(nm + len - 6, "weight") ? 1.0f
                      : strstr(nm, "running_var")                ? 1.0f
                                                                 : 0.0f;
            for (size_t k = 0; k < p->n; k++) w[k] = v;
        } else {
            /* a bias takes the fan-in of the weight just before it */
            const uad_param *wp = p->ndim == 1 ? &m->params[i - 1] : p;
            float bound = (float)(1.0 / sqrt((double)fan_in(wp)));
            for (size_t k = 0; k < p->n; k++)
                w[k] = (float)uad_rng_range(&r, -bound, bound);
        }
    }
}

/* Frozen embeddings are copied in as given (every other parameter keeps
 * its seeded stream, since each has its own fork). */
static void set_embed(uad_model *m, const float *embed) {
    memcpy(uad_pptr(m, m->embed), embed,
           m->params[m->embed].n * sizeof(float));
}

/* ---- create, free, accessors -------------------------------------------- */

static uad_status check_names(const char *const *names, int n) {
    if (n < 1 || n > 255)
        return uad_fail(UAD_ERR_DATA, "model: %d categories (need 1..255)", n);
    for (int i = 0; i < n; i++) {
        const char *s = names[i];
        if (!s || !*s || strlen(s) > 200)
            return uad_fail(UAD_ERR_DATA, "model: category %d has no usable "
                            "name (1..200 bytes)", i + 1);
        for (const char *q = s; *q; q++)
            if ((unsigned char)*q < 0x20)
                return uad_fail(UAD_ERR_DATA, "model: category '%s' has a "
                                "control character", s);
        for (int j = 0; j < i; j++)
            if (!strcmp(names[j], s))
                return uad_fail(UAD_ERR_DATA, "model: category '%s' twice", s);
    }
    return UAD_OK;
}

static uad_status check_config(const uad_model_params *p) {
    if (p->width < 1 || p->width > 4096)
        return uad_fail(UAD_ERR_USAGE, "model: width %d out of 1..4096",
                        p->width);
    if (!uad_backbone_name(p->backbone))
        return uad_fail(UAD_ERR_USAGE, "model: unknown backbone %d",
                        p->backbone);
    if (uad_backbone_is_vit(p->backbone)) {
        if (p->input_size < 1 || p->input_size > 2048)
            return uad_fail(UAD_ERR_USAGE, "model: input size %d is not in "
                            "1..2048", p->input_size);
    } else if (p->input_size < 32 || p->input_size > 2048 ||
               p->input_size % 32) {
        return uad_fail(UAD_ERR_USAGE, "model: input size %d is not a "
                        "multiple of 32 in 32..2048", p->input_size);
    }
    if (!(p->tau > 0 && p->tau < 1))
        return uad_fail(UAD_ERR_USAGE, "model: tau %g not in (0, 1)",
                        (double)p->tau);
    return UAD_OK;
}

/* The ViT part of the configuration: the feeding blocks L/4, L/2, 3L/4
 * and L rounded up (3, 6, 9, 12 of 12) and the input side rounded to the
 * patch. */
static uad_status setup_vit(uad_model *m, uad_vit *vit, const char *dir) {
    uad_vit_info in;
    uad_vit_get_info(vit, &in);
    m->vit = vit;
    if (!(m->vit_dir = uad_strdup(dir))) return UAD_ERR_NOMEM;
    for (int l = 0; l < UAD_LEVELS; l++)
        m->vit_layers[l] = ((l + 1) * in.layers + UAD_LEVELS - 1) / UAD_LEVELS;
    int S = uad_vit_input_size(in.patch, m->size);
    if (S != m->size)
        UAD_INFO("model: input side %d rounded to %d, a multiple of the "
                 "%s patch %d", m->size, S, uad_backbone_name(m->backbone),
                 in.patch);
    if (S > 2048)
        return uad_fail(UAD_ERR_USAGE, "model: input side %d is over 2048",
                        S);
    m->size = S;
    return UAD_OK;
}

/* Frozen embeddings must be finite and non-zero (the head normalises
 * them). */
static uad_status check_embed(const float *e, int n, int C) {
    for (int i = 0; i < n; i++) {
        double q = 0;
        for (int k = 0; k < C; k++) q += (double)e[(size_t)i * C + k] *
                                         e[(size_t)i * C + k];
        if (!(q > 0) || !isfinite(q))
            return uad_fail(UAD_ERR_DATA, "model: frozen embedding of "
                            "category %d is zero or not finite", i + 1);
    }
    return UAD_OK;
}

uad_status uad_model_new_with(uad_model **out, const char *const *names,
                              int n, const uad_model_params *p,
                              uad_vit *vit, int embed_frozen) {
    uad_status st;
    *out = NULL;
    if ((st = check_names(names, n)) || (st = check_config(p)) ||
        (p->embed && (st = check_embed(p->embed, n, p->width)))) {
        uad_vit_free(vit);
        return st;
    }
    UAD_ASSERT(!vit == !uad_backbone_is_vit(p->backbone));
    uad_model *m = uad_calloc(1, sizeof *m);
    if (!m) {
        uad_vit_free(vit);
        return UAD_ERR_NOMEM;
    }
    m->width = p->width;
    m->size = p->input_size;
    m->backbone = p->backbone;
    m->tau = p->tau;
    m->n_cat = n;
    m->embed_frozen = embed_frozen || p->embed != NULL;
    st = vit ? setup_vit(m, vit, p->backbone_dir ? p->backbone_dir : "")
             : UAD_OK;
    if (!st && p->text && !(m->text = uad_strdup(p->text)))
        st = UAD_ERR_NOMEM;
    m->cat = uad_calloc((size_t)n, sizeof *m->cat);
    if (!st && !m->cat) st = UAD_ERR_NOMEM;
    for (int i = 0; !st && i < n; i++)
        if (!(m->cat[i] = uad_strdup(names[i]))) st = UAD_ERR_NOMEM;
    if (!st) st = uad_model_layout(m);
    if (st) {
        if (!m->vit) uad_vit_free(vit);
        uad_model_free(m);
        return st;
    }
    *out = m;
    return UAD_OK;
}

/* Allocate the struct with configuration and layout, parameters zero. */
uad_status uad_model_new(uad_model **out, const char *const *names, int n,
                         const uad_model_params *p) {
    uad_vit *vit = NULL;
    *out = NULL;
    if (uad_backbone_is_vit(p->backbone)) {
        if (!p->backbone_dir || !*p->backbone_dir)
            return uad_fail(UAD_ERR_USAGE, "model: backbone %s needs its "
                            "checkpoint folder", uad_backbone_name(p->backbone));
        uad_status st = uad_vit_load(&vit, (uad_vit_kind)(p->backbone - 2),
                                     p->backbone_dir);
        if (st) return st;
    }
    return uad_model_new_with(out, names, n, p, vit, 0);
}

uad_status uad_model_create(uad_model **out, const char *const *names,
                            int n, const uad_model_params *p) {
    uad_model_params d = uad_model_default_params();
    if (!p) p = &d;
    uad_status st = uad_model_new(out, names, n, p);
    if (st) return st;
    uad_model_init_params(*out, p->seed);
    if (p->embed) set_embed(*out, p->embed);
    return UAD_OK;
}

void uad_model_free(uad_model *m) {
    if (!m) return;
    uad_vit_free(m->vit);
    free(m->vit_dir);
    free(m->text);
    for (int i = 0; m->cat && i < m->n_cat; i++) free(m->cat[i]);
    free(m->cat);
    free(m->params);
    free(m->arena);
    if (m->infer) uad_acts_free(m->infer);
    free(m->infer);
    free(m);
}

int uad_model_n_categories(const uad_model *m) { return m->n_cat; }
const char *uad_model_category(const uad_model *m, int cls) {
    if (cls == 0) return "normal";
    return cls >= 1 && cls <= m->n_cat ? m->cat[cls - 1] : NULL;
}
int uad_model_input_size(const uad_model *m) { return m->size; }
int uad_model_width(const uad_model *m) { return m->width; }
int uad_model_backbone(const uad_model *m) { return m->backbone; }
const char *uad_model_backbone_dir(const uad_model *m) { return m->vit_dir; }
const char *uad_model_text(const uad_model *m) { return m->text; }
int uad_model_embed_frozen(const uad_model *m) { return m->embed_frozen; }
float uad_model_tau(const uad_model *m) { return m->tau; }
void uad_model_set_tau(uad_model *m, float tau) { m->tau = tau; }
float uad_model_temperature(const uad_model *m) {
    return uad_pptr(m, m->temp)[0];
}
size_t uad_model_n_params(const uad_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].decay) n += m->params[i].n;
    return n;
}
