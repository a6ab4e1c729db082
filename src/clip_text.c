/* clip_text.c - the CLIP text tower (Radford et al. 2021, section 2.4;
 * Hugging Face `CLIPTextModelWithProjection`, modeling_clip.py) on the
 * compute core, loaded from a checkpoint directory in the Hugging Face
 * layout (config.json, model.safetensors, vocab.json, merges.txt).
 *
 *   x = token_embedding[ids] + position_embedding[0..T)
 *   per layer (pre-norm):  x += out_proj(causal_attention(layer_norm1(x)))
 *                          x += fc2(act(fc1(layer_norm2(x))))
 *   last = final_layer_norm(x); embed = text_projection(last[eos])
 *
 * The end-of-text position follows the reference: with the legacy
 * eos_token_id 2 of openai's configs, the argmax of the ids (the end token
 * has the largest id in CLIP's vocabulary); otherwise the first position
 * holding eos_token_id (position 0 when none does, as argmax of an all-
 * false mask gives). Weights may be F32, F16 or BF16 and are kept as f32;
 * matmuls run in the compute core's precision (nn_set_precision). */
#include "internal.h"
#include "nn.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

typedef struct clip_layer {
    float *ln1_w, *ln1_b, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
    float *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} clip_layer;

struct uad_clip_text {
    int dinotxt;       /* 1: DINOv3's dino.txt layout, 0: Hugging Face */
    int vocab, width, heads, layers, inter, max_pos, proj_dim;
    int eos_id;        /* config eos_token_id (2: argmax pooling)     */
    int quick_gelu;    /* hidden_act: quick_gelu (1) or gelu (0)      */
    float eps;
    float *params;     /* one block holding every tensor below        */
    float *tok_emb;    /* (vocab, C)                                  */
    float *pos_emb;    /* (max_pos, C)                                */
    clip_layer *layer; /* layers entries                              */
    float *lnf_w, *lnf_b;
    float *proj;       /* text_projection.weight (P, C)               */
    uad_clip_tokenizer *tok;
};

/* ---- config.json --------------------------------------------------- */

/* Integer field `key` of obj into *v (kept when absent). */
static int cfg_int(const cJSON *obj, const char *key, int *v, int lo,
                   int hi, const char *path) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!e) return 0;
    double d = cJSON_IsNumber(e) ? e->valuedouble : NAN;
    if (!(d >= lo && d <= hi) || d != floor(d)) {
        uad_fail(UAD_ERR_FORMAT, "%s: %s must be a whole number in "
                 "[%d, %d]", path, key, lo, hi);
        return -1;
    }
    *v = (int)d;
    return 0;
}

static uad_status clip_config(uad_clip_text *m, const char *path) {
    void *json;
    uad_status st = uad_json_load_object(&json, path, "not a JSON object");
    if (st != UAD_OK) return st;
    cJSON *root = json;
    /* CLIPModel nests the text settings in text_config; a
     * CLIPTextModelWithProjection config holds them at the top. The
     * defaults are those of transformers' CLIPTextConfig. */
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "text_config");
    if (!cJSON_IsObject(tc)) tc = root;
    m->vocab = 49408, m->width = 512, m->inter = 2048, m->heads = 8;
    m->layers = 12, m->max_pos = 77, m->proj_dim = 512, m->eos_id = 49407;
    m->quick_gelu = 1;
    m->eps = 1e-5f;
    int bad = cfg_int(tc, "vocab_size", &m->vocab, 1, 1 << 24, path) ||
              cfg_int(tc, "hidden_size", &m->width, 1, 1 << 16, path) ||
              cfg_int(tc, "intermediate_size", &m->inter, 1, 1 << 18, path) ||
              cfg_int(tc, "num_attention_heads", &m->heads, 1, 1024, path) ||
              cfg_int(tc, "num_hidden_layers", &m->layers, 1, 1024, path) ||
              cfg_int(tc, "max_position_embeddings", &m->max_pos, 2, 1 << 16,
                      path) ||
              cfg_int(tc, "eos_token_id", &m->eos_id, 0, 1 << 30, path) ||
              cfg_int(tc, "projection_dim", &m->proj_dim, 1, 1 << 16, path) ||
              cfg_int(root, "projection_dim", &m->proj_dim, 1, 1 << 16, path);
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(tc, "layer_norm_eps");
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(tc, "hidden_act");
    if (!bad && eps) {
        if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0 &&
                                      eps->valuedouble < 1))
            bad = uad_fail(UAD_ERR_FORMAT, "%s: layer_norm_eps must be a "
                           "number in (0, 1)", path) != UAD_OK;
        else
            m->eps = (float)eps->valuedouble;
    }
    if (!bad && act) {
        const char *a = cJSON_IsString(act) ? act->valuestring : "";
        m->quick_gelu = strcmp(a, "quick_gelu") == 0;
        if (!m->quick_gelu && strcmp(a, "gelu") != 0)
            bad = uad_fail(UAD_ERR_FORMAT, "%s: hidden_act \"%s\" is not "
                           "supported (quick_gelu or gelu)", path, a) != UAD_OK;
    }
    if (!bad && m->width % m->heads)
        bad = uad_fail(UAD_ERR_FORMAT, "%s: hidden_size %d is not a "
                       "multiple of num_attention_heads %d", path, m->width,
                       m->heads) != UAD_OK;
    cJSON_Delete(root);
    return bad ? UAD_ERR_FORMAT : UAD_OK;
}

/* ---- weights ------------------------------------------------------- */

typedef struct clip_spec {
    char name[96];
    int ndim;
    int64_t shape[2];
    float **dst;
} clip_spec;

static void spec_add(clip_spec *s, int *n, float **dst, int64_t d0,
                     int64_t d1, const char *fmt, int layer) {
    clip_spec *e = &s[(*n)++];
    snprintf(e->name, sizeof e->name, fmt, layer);
    e->ndim = d1 ? 2 : 1;
    e->shape[0] = d0;
    e->shape[1] = d1;
    e->dst = dst;
}

/* dino.txt's text tower under the keys of DINOv3's released checkpoint
 * (the DINOTxt state dict): one fused qkv projection without bias, read
 * into q_w (k_w and v_w are its second and third thirds). */
static int dinotxt_specs(clip_spec *s, uad_clip_text *m) {
    int n = 0, C = m->width;
    const char *b = "text_model.backbone.";
    char f[160];
    snprintf(f, sizeof f, "%stoken_embedding.weight", b);
    spec_add(s, &n, &m->tok_emb, m->vocab, C, f, 0);
    snprintf(f, sizeof f, "%spositional_embedding", b);
    spec_add(s, &n, &m->pos_emb, m->max_pos, C, f, 0);
    for (int l = 0; l < m->layers; l++) {
        clip_layer *L = &m->layer[l];
        struct { float **dst; const char *key; int64_t d0, d1; } t[] = {
            {&L->ln1_w, "attention_norm.weight", C, 0},
            {&L->ln1_b, "attention_norm.bias", C, 0},
            {&L->q_w, "attention.qkv.weight", 3 * (int64_t)C, C},
            {&L->o_w, "attention.proj.weight", C, C},
            {&L->o_b, "attention.proj.bias", C, 0},
            {&L->ln2_w, "ffn_norm.weight", C, 0},
            {&L->ln2_b, "ffn_norm.bias", C, 0},
            {&L->fc1_w, "feed_forward.fc1.weight", m->inter, C},
            {&L->fc1_b, "feed_forward.fc1.bias", m->inter, 0},
            {&L->fc2_w, "feed_forward.fc2.weight", C, m->inter},
            {&L->fc2_b, "feed_forward.fc2.bias", C, 0},
        };
        for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
            snprintf(f, sizeof f, "%sblocks.%%d.%s", b, t[k].key);
            spec_add(s, &n, t[k].dst, t[k].d0, t[k].d1, f, l);
        }
    }
    snprintf(f, sizeof f, "%sln_final.weight", b);
    spec_add(s, &n, &m->lnf_w, C, 0, f, 0);
    snprintf(f, sizeof f, "%sln_final.bias", b);
    spec_add(s, &n, &m->lnf_b, C, 0, f, 0);
    spec_add(s, &n, &m->proj, m->proj_dim, C,
             "text_model.head.linear_projection.weight", 0);
    return n;
}

/* Every tensor the text tower needs, with its Hugging Face key. */
static int clip_specs(clip_spec *s, uad_clip_text *m) {
    if (m->dinotxt) return dinotxt_specs(s, m);
    int n = 0, C = m->width;
    const char *p = "text_model.encoder.layers.%d.";
    char f[128];
    spec_add(s, &n, &m->tok_emb, m->vocab, C,
             "text_model.embeddings.token_embedding.weight", 0);
    spec_add(s, &n, &m->pos_emb, m->max_pos, C,
             "text_model.embeddings.position_embedding.weight", 0);
    for (int l = 0; l < m->layers; l++) {
        clip_layer *L = &m->layer[l];
        struct { float **dst; const char *key; int64_t d0, d1; } t[] = {
            {&L->ln1_w, "layer_norm1.weight", C, 0},
            {&L->ln1_b, "layer_norm1.bias", C, 0},
            {&L->q_w, "self_attn.q_proj.weight", C, C},
            {&L->q_b, "self_attn.q_proj.bias", C, 0},
            {&L->k_w, "self_attn.k_proj.weight", C, C},
            {&L->k_b, "self_attn.k_proj.bias", C, 0},
            {&L->v_w, "self_attn.v_proj.weight", C, C},
            {&L->v_b, "self_attn.v_proj.bias", C, 0},
            {&L->o_w, "self_attn.out_proj.weight", C, C},
            {&L->o_b, "self_attn.out_proj.bias", C, 0},
            {&L->ln2_w, "layer_norm2.weight", C, 0},
            {&L->ln2_b, "layer_norm2.bias", C, 0},
            {&L->fc1_w, "mlp.fc1.weight", m->inter, C},
            {&L->fc1_b, "mlp.fc1.bias", m->inter, 0},
            {&L->fc2_w, "mlp.fc2.weight", C, m->inter},
            {&L->fc2_b, "mlp.fc2.bias", C, 0},
        };
        for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
            snprintf(f, sizeof f, "%s%s", p, t[k].key);
            spec_add(s, &n, t[k].dst, t[k].d0, t[k].d1, f, l);
        }
    }
    spec_add(s, &n, &m->lnf_w, C, 0, "text_model.final_layer_norm.weight", 0);
    spec_add(s, &n, &m->lnf_b, C, 0, "text_model.final_layer_norm.bias", 0);
    spec_add(s, &n, &m->proj, m->proj_dim, C, "text_projection.weight", 0);
    return n;
}

/* Tensors of a full CLIPModel file (or of dino.txt's released file,
 * which also holds its vision head) that the text tower does not use. */
static int clip_ignored(const uad_clip_text *m, const char *name) {
    if (m->dinotxt)
        return strncmp(name, "visual_model.", 13) == 0 ||
               strcmp(name, "logit_scale") == 0;
    return strncmp(name, "vision_model.", 13) == 0 ||
           strncmp(name, "visual_projection.", 18) == 0 ||
           strcmp(name, "logit_scale") == 0 ||
           strcmp(name, "text_model.embeddings.position_ids") == 0;
}

/* "[a, b, ...]" of a shape (cut at 64 bytes). */
static void shape_str(char *out, const int64_t *shape, int ndim) {
    int o = snprintf(out, 64, "[");
    for (int i = 0; i < ndim && o < 48; i++)
        o += snprintf(out + o, (size_t)(64 - o), "%s%lld", i ? ", " : "",
                      (long long)shape[i]);
    snprintf(out + o, (size_t)(64 - o), "]");
}

/* Check every expected tensor's presence, dtype and shape, and that the
 * file holds nothing else; all problems are listed at once. */
static uad_status clip_check(const uad_clip_text *m,
                             const uad_safetensors *st, const clip_spec *s,
                             int n, const char *path) {
    uad_problems pl = {0};
    for (int i = 0; i < n; i++) {
        const uad_st_tensor *t = uad_st_find(st, s[i].name);
        int fl = t && (t->dtype == UAD_DT_F32 || t->dtype == UAD_DT_F16 ||
                       t->dtype == UAD_DT_BF16);
        int ok = t && t->ndim == s[i].ndim && t->shape[0] == s[i].shape[0] &&
                 (s[i].ndim == 1 || t->shape[1] == s[i].shape[1]);
        if (!t)
            uad_problems_add(&pl, uad_fail(UAD_ERR_FORMAT, "missing tensor "
                             "%s", s[i].name));
        else if (!fl)
            uad_problems_add(&pl, uad_fail(UAD_ERR_FORMAT, "%s has dtype %s "
                             "(F32, F16 or BF16 expected)", s[i].name,
                             uad_dtype_name(t->dtype)));
        else if (!ok) {
            char have[64], want[64];
            shape_str(have, t->shape, t->ndim);
            shape_str(want, s[i].shape, s[i].ndim);
            uad_problems_add(&pl, uad_fail(UAD_ERR_FORMAT, "%s has shape %s, "
                             "expected %s", s[i].name, have, want));
        }
    }
    for (size_t i = 0; i < uad_st_count(st); i++) {
        const char *name = uad_st_tensor_at(st, i)->name;
        int known = clip_ignored(m, name);
        for (int k = 0; k < n && !known; k++) known = !strcmp(name, s[k].name);
        if (!known)
            uad_problems_add(&pl, uad_fail(UAD_ERR_FORMAT, "unexpected tensor "
                             "%s", name));
    }
    uad_status rc = uad_problems_finish(&pl, m->dinotxt
                                        ? "problem(s) with the dino.txt text "
                                          "weights"
                                        : "problem(s) with the CLIP text "
                                          "weights");
    if (rc != UAD_OK) uad_error_prefix(path);
    return rc;
}

static uad_status clip_weights(uad_clip_text *m, const char *path) {
    uad_safetensors *st = NULL;
    uad_status rc = uad_st_open(&st, path);
    if (rc != UAD_OK) return rc;
    size_t nspec = 3 + 16 * (size_t)m->layers + 3;
    clip_spec *s = uad_calloc(nspec, sizeof *s);
    m->layer = uad_calloc((size_t)m->layers, sizeof *m->layer);
    if (!s || !m->layer) rc = UAD_ERR_NOMEM;
    int n = rc == UAD_OK ? clip_specs(s, m) : 0;
    if (rc == UAD_OK) rc = clip_check(m, st, s, n, path);
    /* Shapes match the file now, so the block is no larger than it. */
    size_t total = 0;
    for (int i = 0; rc == UAD_OK && i < n; i++)
        total += (size_t)s[i].shape[0] * (size_t)(s[i].ndim > 1 ? s[i].shape[1] : 1);
    if (rc == UAD_OK && !(m->params = uad_malloc(total * sizeof(float))))
        rc = UAD_ERR_NOMEM;
    size_t off = 0;
    for (int i = 0; rc == UAD_OK && i < n; i++) {
        const uad_st_tensor *t = uad_st_find(st, s[i].name);
        *s[i].dst = m->params + off;
        rc = uad_st_to_f32(t, *s[i].dst);
        off += (size_t)uad_st_numel(t);
    }
    size_t cc = (size_t)m->width * m->width;
    for (int l = 0; rc == UAD_OK && m->dinotxt && l < m->layers; l++) {
        m->layer[l].k_w = m->layer[l].q_w + cc;  /* rows C..2C of qkv  */
        m->layer[l].v_w = m->layer[l].q_w + 2 * cc;
    }
    free(s);
    uad_st_free(st);
    return rc;
}

void uad_clip_text_free(uad_clip_text *m) {
    if (!m) return;
    free(m->params);
    free(m->layer);
    uad_clip_tokenizer_free(m->tok);
    free(m);
}

/* The last step of both loaders: the tokenizer's ids must have token
 * embeddings; m goes to *out, or is freed on any failure (st). */
static uad_status load_finish(uad_clip_text **out, uad_clip_text *m,
                              uad_status st, const char *dir) {
    if (st == UAD_OK && uad_clip_vocab_size(m->tok) > m->vocab)
        st = uad_fail(UAD_ERR_DATA, "%s: the tokenizer has ids up to %d "
                      "but the model only %d token embeddings", dir,
                      uad_clip_vocab_size(m->tok) - 1, m->vocab);
    if (st != UAD_OK) {
        uad_clip_text_free(m);
        return st;
    }
    *out = m;
    return UAD_OK;
}

uad_status uad_clip_text_load(uad_clip_text **out, const char *dir) {
    *out = NULL;
    uad_clip_text *m = uad_calloc(1, sizeof *m);
    if (!m) return UAD_ERR_NOMEM;
    char *cfg = uad_path_join(dir, "config.json");
    char *wts = uad_path_join(dir, "model.safetensors");
    uad_status st = cfg && wts ? clip_config(m, cfg) : UAD_ERR_NOMEM;
    if (st == UAD_OK) st = clip_weights(m, wts);
    if (st == UAD_OK) st = uad_clip_tokenizer_load(&m->tok, dir);
    free(cfg);
    free(wts);
    return load_finish(out, m, st, dir);
}

/* ---- dino.txt ------------------------------------------------------ */

/* dino.txt's settings: those of the released text encoder
 * (dinov3_vitl16_dinotxt_tet1280d20h24l: 24 blocks of width 1280, 20
 * heads, MLP ratio 4, causal, projection to 2048), or an optional
 * config.json with the keys of DINOv3's text_backbone.yaml (dim,
 * num_heads, num_layers, ffn_ratio, context_length, vocab_size,
 * is_causal) plus embed_dim. */
static uad_status dinotxt_config(uad_clip_text *m, const char *path) {
    m->vocab = 49408, m->width = 1280, m->heads = 20, m->layers = 24;
    m->max_pos = 77, m->proj_dim = 2048;
    m->eos_id = 2;      /* argmax pooling ("argmax" tokens_pooler_type) */
    m->quick_gelu = 0;  /* nn.GELU, exact                               */
    m->eps = 1e-5f;     /* nn.LayerNorm's default                       */
    double ratio = 4.0;
    if (!uad_file_exists(path)) {
        m->inter = (int)(m->width * ratio);
        return UAD_OK;
    }
    void *json;
    uad_status st = uad_json_load_object(&json, path, "not a JSON object");
    if (st != UAD_OK) return st;
    cJSON *root = json;
    int bad = cfg_int(root, "vocab_size", &m->vocab, 1, 1 << 24, path) ||
              cfg_int(root, "dim", &m->width, 1, 1 << 16, path) ||
              cfg_int(root, "num_heads", &m->heads, 1, 1024, path) ||
              cfg_int(root, "num_layers", &m->layers, 1, 1024, path) ||
              cfg_int(root, "context_length", &m->max_pos, 2, 1 << 16,
                      path) ||
              cfg_int(root, "embed_dim", &m->proj_dim, 1, 1 << 16, path);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "ffn_ratio");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "is_causal");
    if (!bad && r) {
        if (!cJSON_IsNumber(r) || !(r->valuedouble > 0 &&
                                    r->valuedouble <= 64))
            bad = uad_fail(UAD_ERR_FORMAT, "%s: ffn_ratio must be a number "
                           "in (0, 64]", path) != UAD_OK;
        else
            ratio = r->valuedouble;
    }
    if (!bad && c && !cJSON_IsTrue(c))
        bad = uad_fail(UAD_ERR_FORMAT, "%s: is_causal must be true (only "
                       "the causal text tower is supported)", path) != UAD_OK;
    m->inter = (int)(m->width * ratio);  /* int(dim * ffn_ratio) */
    if (!bad && m->inter < 1)
        bad = uad_fail(UAD_ERR_FORMAT, "%s: dim x ffn_ratio is below 1",
                       path) != UAD_OK;
    if (!bad && m->width % m->heads)
        bad = uad_fail(UAD_ERR_FORMAT, "%s: dim %d is not a multiple of "
                       "num_heads %d", path, m->width, m->heads) != UAD_OK;
    cJSON_Delete(root);
    return bad ? UAD_ERR_FORMAT : UAD_OK;
}

uad_status uad_dinotxt_text_load(uad_clip_text **out, const char *dir) {
    *out = NULL;
    uad_clip_text *m = uad_calloc(1, sizeof *m);
    if (!m) return UAD_ERR_NOMEM;
    m->dinotxt = 1;
    char *cfg = uad_path_join(dir, "config.json");
    char *wts = uad_path_join(dir, "model.safetensors");
    char *gz = uad_path_join(dir, "bpe_simple_vocab_16e6.txt.gz");
    char *txt = uad_path_join(dir, "bpe_simple_vocab_16e6.txt");
    uad_status st = cfg && wts && gz && txt ? dinotxt_config(m, cfg)
                                            : UAD_ERR_NOMEM;
    if (st == UAD_OK) st = clip_weights(m, wts);
    if (st == UAD_ERR_FORMAT && !uad_file_exists(cfg)) {
        char *msg = uad_strdup(uad_last_error());
        if (msg)
            uad_fail(st, "%s\n(%s has no config.json, so the released "
                     "dino.txt settings were expected; add one for other "
                     "sizes)", msg, dir);
        free(msg);
    }
    if (st == UAD_OK) {
        const char *bpe = uad_file_exists(gz) || !uad_file_exists(txt) ? gz
                                                                      : txt;
        st = uad_clip_tokenizer_load_bpe(&m->tok, bpe);
    }
    free(cfg);
    free(wts);
    free(gz);
    free(txt);
    return load_finish(out, m, st, dir);
}

uad_status uad_text_parse_spec(int *kind, const char **dir,
                               const char *spec) {
    static const char *const kinds[] = {"clip:", "dinotxt:"};
    for (int k = 0; spec && k < 2; k++) {
        size_t n = strlen(kinds[k]);
        if (!strncmp(spec, kinds[k], n) && spec[n]) {
            if (kind) *kind = k;
            if (dir) *dir = spec + n;
            return UAD_OK;
        }
    }
    return uad_fail(UAD_ERR_USAGE, "text encoder '%s': expected clip:DIR "
                    "or dinotxt:DIR", spec ? spec : "");
}

uad_status uad_text_load(uad_clip_text **out, const char *spec) {
    *out = NULL;
    int kind = 0;
    const char *dir = NULL;
    uad_status st = uad_text_parse_spec(&kind, &dir, spec);
    if (st != UAD_OK) return st;
    return kind == UAD_TEXT_DINOTXT ? uad_dinotxt_text_load(out, dir)
                                    : uad_clip_text_load(out, dir);
}

int uad_clip_text_width(const uad_clip_text *m) { return m->width; }
int uad_clip_text_layers(const uad_clip_text *m) { return m->layers; }
int uad_clip_text_embed_dim(const uad_clip_text *m) { return m->proj_dim; }
int uad_clip_text_context(const uad_clip_text *m) { return m->max_pos; }
const uad_clip_tokenizer *uad_clip_text_tokenizer(const uad_clip_text *m) {
    return m->tok;
}

/* ---- forward ------------------------------------------------------- */

/* Multi-head self-attention with a causal mask (token i sees 0..i):
 * out(T, C) from q, k, v (T, C), H heads of D = C / H channels; scores
 * are q.k / sqrt(D), softmax over the visible keys. att has T floats.
 * T <= 77 for CLIP, so plain loops cost little next to the matmuls. */
static void causal_attention(float *out, const float *q, const float *k,
                             const float *v, float *att, int T, int C,
                             int H) {
    int D = C / H;
    float scale = 1.0f / sqrtf((float)D);
    for (int h = 0; h < H; h++) {
        for (int i = 0; i < T; i++) {
            const float *qi = q + (size_t)i * C + h * D;
            float mx = -INFINITY, sum = 0.0f;
            for (int j = 0; j <= i; j++) {
                const float *kj = k + (size_t)j * C + h * D;
                float d = 0.0f;
                for (int c = 0; c < D; c++) d += qi[c] * kj[c];
                att[j] = d * scale;
                if (att[j] > mx) mx = att[j];
            }
            for (int j = 0; j <= i; j++) {
                att[j] = expf(att[j] - mx);
                sum += att[j];
            }
            float *oi = out + (size_t)i * C + h * D;
            for (int c = 0; c < D; c++) oi[c] = 0.0f;
            for (int j = 0; j <= i; j++) {
                const float *vj = v + (size_t)j * C + h * D;
                float w = att[j] / sum;
                for (int c = 0; c < D; c++) oi[c] += w * vj[c];
            }
        }
    }
}

/* Scratch of one forward pass. */
typedef struct clip_buf {
    float *h, *q, *k, *v, *a, *u, *att, *mean, *rstd;
} clip_buf;

static void clip_buf_free(clip_buf *b) {
    free(b->h);
    free(b->q);
    free(b->k);
    free(b->v);
    free(b->a);
    free(b->u);
    free(b->att);
    free(b->mean);
    free(b->rstd);
}

static uad_status clip_buf_alloc(clip_buf *b, const uad_clip_text *m,
                                 int T) {
    size_t tc = (size_t)T * m->width, ti = (size_t)T * m->inter;
    b->h = uad_malloc(tc * sizeof(float));
    b->q = uad_malloc(tc * sizeof(float));
    b->k = uad_malloc(tc * sizeof(float));
    b->v = uad_malloc(tc * sizeof(float));
    b->a = uad_malloc(tc * sizeof(float));
    b->u = uad_malloc(ti * sizeof(float));
    b->att = uad_malloc((size_t)T * sizeof(float));
    b->mean = uad_malloc((size_t)T * sizeof(float));
    b->rstd = uad_malloc((size_t)T * sizeof(float));
    if (b->h && b->q && b->k && b->v && b->a && b->u && b->att && b->mean &&
        b->rstd)
        return UAD_OK;
    clip_buf_free(b);
    return UAD_ERR_NOMEM;
}

/* One encoder layer (CLIPEncoderLayer), x(T, C) updated in place. x
 * packs N texts, text i in rows seg[i]..seg[i+1]: the linear layers and
 * norms run on all rows at once (each weight is read once for the batch),
 * attention within each text. */
static void clip_layer_forward(float *x, const clip_layer *L,
                               const uad_clip_text *m, clip_buf *b,
                               const int *seg, int N) {
    int T = seg[N];
    int C = m->width, I = m->inter;
    nn_layernorm_forward(b->h, b->mean, b->rstd, x, L->ln1_w, L->ln1_b, T, C,
                         m->eps);
    nn_linear_forward(b->q, b->h, L->q_w, L->q_b, T, C, C);
    nn_linear_forward(b->k, b->h, L->k_w, L->k_b, T, C, C);
    nn_linear_forward(b->v, b->h, L->v_w, L->v_b, T, C, C);
    for (int i = 0; i < N; i++) {
        size_t o = (size_t)seg[i] * C;
        causal_attention(b->a + o, b->q + o, b->k + o, b->v + o, b->att,
                         seg[i + 1] - seg[i], C, m->heads);
    }
    nn_linear_forward(b->h, b->a, L->o_w, L->o_b, T, C, C);
    nn_add_forward(x, x, b->h, (size_t)T * C);

    nn_layernorm_forward(b->h, b->mean, b->rstd, x, L->ln2_w, L->ln2_b, T, C,
                         m->eps);
    nn_linear_forward(b->u, b->h, L->fc1_w, L->fc1_b, T, C, I);
    if (m->quick_gelu)
        nn_quick_gelu_forward(b->u, b->u, (size_t)T * I);
    else
        nn_gelu_forward(b->u, b->u, (size_t)T * I);
    nn_linear_forward(b->h, b->u, L->fc2_w, L->fc2_b, T, I, C);
    nn_add_forward(x, x, b->h, (size_t)T * C);
}

/* Position of the end token whose output is pooled (file comment). */
static int clip_eos_pos(const uad_clip_text *m, const int32_t *ids, int T) {
    int best = 0;
    for (int i = 0; i < T; i++) {
        if (m->eos_id == 2) {
            if (ids[i] > ids[best]) best = i;
        } else if (ids[i] == m->eos_id) {
            return i;
        }
    }
    return best;
}

/* The tower over N packed texts (file comment): ids and rows as in
 * clip_layer_forward; embed (N, P); hidden ((layers + 1), T, C) and last
 * (T, C) over all packed rows; any output may be NULL. */
static uad_status clip_forward_packed(float *embed, float *hidden,
                                      float *last, const uad_clip_text *m,
                                      const int32_t *ids, const int *seg,
                                      int N) {
    int C = m->width, T = seg[N];
    clip_buf b = {0};
    float *x = uad_malloc((size_t)T * C * sizeof *x);
    if (!x || clip_buf_alloc(&b, m, T) != UAD_OK) {
        free(x);
        return UAD_ERR_NOMEM;
    }

    /* CLIPTextEmbeddings: token + absolute position embedding. */
    for (int i = 0; i < N; i++)
        for (int t = seg[i]; t < seg[i + 1]; t++)
            nn_add_forward(x + (size_t)t * C, m->tok_emb + (size_t)ids[t] * C,
                           m->pos_emb + (size_t)(t - seg[i]) * C, (size_t)C);
    if (hidden) memcpy(hidden, x, (size_t)T * C * sizeof *x);

    for (int l = 0; l < m->layers; l++) {
        clip_layer_forward(x, &m->layer[l], m, &b, seg, N);
        if (hidden)
            memcpy(hidden + (size_t)(l + 1) * T * C, x,
                   (size_t)T * C * sizeof *x);
    }

    /* final_layer_norm, pooling at each end token, text_projection. */
    nn_layernorm_forward(b.h, b.mean, b.rstd, x, m->lnf_w, m->lnf_b, T, C,
                         m->eps);
    if (last) memcpy(last, b.h, (size_t)T * C * sizeof *x);
    for (int i = 0; embed && i < N; i++) {
        int e = seg[i] + clip_eos_pos(m, ids + seg[i], seg[i + 1] - seg[i]);
        memcpy(x + (size_t)i * C, b.h + (size_t)e * C, (size_t)C * sizeof *x);
    }
    if (embed) nn_linear_forward(embed, x, m->proj, NULL, N, C, m->proj_dim);
    clip_buf_free(&b);
    free(x);
    return UAD_OK;
}

/* ids[0..T) must be valid ids. */
static uad_status clip_check_ids(const uad_clip_text *m, const int32_t *ids,
                                 int T) {
    if (T < 1 || T > m->max_pos)
        return uad_fail(UAD_ERR_USAGE, "CLIP text: %d tokens, the model "
                        "takes 1 to %d", T, m->max_pos);
    for (int i = 0; i < T; i++)
        if (ids[i] < 0 || ids[i] >= m->vocab)
            return uad_fail(UAD_ERR_DATA, "CLIP text: token id %d at "
                            "position %d is outside the vocabulary [0, %d)",
                            ids[i], i, m->vocab);
    return UAD_OK;
}

uad_status uad_clip_text_forward(float *embed, float *hidden, float *last,
                                 const uad_clip_text *m, const int32_t *ids,
                                 int T) {
    uad_status st = clip_check_ids(m, ids, T);
    int seg[2] = {0, T};
    return st != UAD_OK ? st
                        : clip_forward_packed(embed, hidden, last, m, ids,
                                              seg, 1);
}

uad_status uad_clip_text_encode_batch(float *embeds, int32_t *ids,
                                      const uad_clip_text *m,
                                      const char *const *texts, int n) {
    int ctx = m->max_pos < UAD_CLIP_CONTEXT ? m->max_pos : UAD_CLIP_CONTEXT;
    int32_t *all = uad_malloc(((size_t)n * ctx + 1) * sizeof *all);
    int *seg = uad_malloc(((size_t)n + 1) * sizeof *seg);
    uad_status st = all && seg ? UAD_OK : UAD_ERR_NOMEM;
    /* Under the causal mask the outputs up to the end token do not
     * depend on the padding after it, so only each text's first used ids
     * run, packed one after the other. */
    int32_t in[UAD_CLIP_CONTEXT];
    if (st == UAD_OK) seg[0] = 0;
    for (int i = 0; st == UAD_OK && i < n; i++) {
        int used = 0;
        st = uad_clip_encode(in, &used, m->tok, texts[i], ctx);
        if (st == UAD_OK) st = clip_check_ids(m, in, used);
        if (st != UAD_OK) break;
        if (ids) {
            int32_t *row = ids + (size_t)i * UAD_CLIP_CONTEXT;
            memcpy(row, in, (size_t)ctx * sizeof *in);
            for (int k = ctx; k < UAD_CLIP_CONTEXT; k++)
                row[k] = uad_clip_pad_id(m->tok);
        }
        memcpy(all + seg[i], in, (size_t)used * sizeof *in);
        seg[i + 1] = seg[i] + used;
    }
    if (st == UAD_OK && n > 0)
        st = clip_forward_packed(embeds, NULL, NULL, m, all, seg, n);
    free(all);
    free(seg);
    return st;
}

uad_status uad_clip_text_encode(float *embed, int32_t *ids,
                                const uad_clip_text *m, const char *text) {
    return uad_clip_text_encode_batch(embed, ids, m, &text, 1);
}

/* ---- category embeddings (SPEC section 6) -------------------------- */

/* Ten templates after CLIP's ImageNet prompt ensemble (Radford et al.
 * 2021, section 3.1.4), kept to photographs of a single object or
 * defect; the SPEC names the first three. */
static const char *const clip_templates[UAD_CLIP_N_TEMPLATES] = {
    "a photo of %s",           "an image of %s",
    "a close-up photo of %s",  "a cropped photo of %s",
    "a bright photo of %s",    "a dark photo of %s",
    "a blurry photo of %s",    "a good photo of %s",
    "a low resolution photo of %s", "an industrial photo of %s",
};

const char *uad_clip_template(int i) {
    return i >= 0 && i < UAD_CLIP_N_TEMPLATES ? clip_templates[i] : NULL;
}

/* acc += e / |e| (P floats); fails on a zero embedding. */
static uad_status add_unit(double *acc, const float *e, int P,
                           const char *text) {
    double n2 = 0.0;
    for (int i = 0; i < P; i++) n2 += (double)e[i] * e[i];
    if (!(n2 > 0.0) || !isfinite(n2))
        return uad_fail(UAD_ERR_DATA, "CLIP text: the embedding of \"%s\" "
                        "has no direction (norm %g)", text, sqrt(n2));
    double r = 1.0 / sqrt(n2);
    for (int i = 0; i < P; i++) acc[i] += e[i] * r;
    return UAD_OK;
}

/* The prompts of one category: every template with the name, then with
 * each description; texts[k] are malloc'd (caller frees them). */
static uad_status category_prompts(char **texts, const char *name,
                                   const char *const *descriptions,
                                   int n_descriptions) {
    int k = 0;
    for (int d = -1; d < n_descriptions; d++) {
        const char *src = d < 0 ? name : descriptions[d];
        if (strlen(src) > UAD_CLIP_TEXT_MAX)
            return uad_fail(UAD_ERR_LIMIT, "CLIP text: a category text is "
                            "longer than %d bytes", UAD_CLIP_TEXT_MAX);
        for (int t = 0; t < UAD_CLIP_N_TEMPLATES; t++) {
            size_t len = strlen(clip_templates[t]) + strlen(src) + 1;
            char *s = texts[k++] = uad_malloc(len);
            if (!s) return UAD_ERR_NOMEM;
            snprintf(s, len, clip_templates[t], src);
            /* Folder-style names ("broken_large") read as words. */
            for (char *p = s; d < 0 && *p; p++)
                if (*p == '_') *p = ' ';
        }
    }
    return UAD_OK;
}

uad_status uad_clip_category_embedding(float *out, const uad_clip_text *m,
                                       const char *name,
                                       const char *const *descriptions,
                                       int n_descriptions) {
    int P = m->proj_dim, n = UAD_CLIP_N_TEMPLATES * (1 + n_descriptions);
    char **texts = uad_calloc((size_t)n, sizeof *texts);
    float *e = uad_malloc((size_t)n * P * sizeof *e);
    double *acc = uad_calloc((size_t)P, sizeof *acc);
    uad_status st = texts && e && acc ? UAD_OK : UAD_ERR_NOMEM;
    if (st == UAD_OK)
        st = category_prompts(texts, name, descriptions, n_descriptions);
    if (st == UAD_OK)
        st = uad_clip_text_encode_batch(e, NULL, m,
                                        (const char *const *)texts, n);
    for (int k = 0; st == UAD_OK && k < n; k++)
        st = add_unit(acc, e + (size_t)k * P, P, texts[k]);
    /* CLIP's prompt ensembling: unit embeddings averaged, then the mean
     * L2-normalised (the mean's scale drops out, so it is not divided). */
    double n2 = 0.0;
    for (int i = 0; st == UAD_OK && i < P; i++) n2 += acc[i] * acc[i];
    if (st == UAD_OK && !(n2 > 0.0))
        st = uad_fail(UAD_ERR_DATA, "CLIP text: the prompts of \"%s\" "
                      "average to zero", name);
    for (int i = 0; st == UAD_OK && i < P; i++)
        out[i] = (float)(acc[i] / sqrt(n2));
    for (int k = 0; texts && k < n; k++) free(texts[k]);
    free(texts);
    free(e);
    free(acc);
    return st;
}
