/* vit_load.c - ViT backbones from Hugging Face checkpoint folders:
 * config.json (cJSON) and model.safetensors with the upstream key names
 * (Dinov2Model, Dinov2WithRegistersModel, CLIPVisionModel, CLIPModel).
 * Every tensor the architecture needs must be present with its exact
 * shape, and every tensor in the file must be used or be a known part
 * that this backbone does not run (CLIP's text tower). */
#include "internal.h"
#include "nn.h"
#include "vit.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- config.json ---- */

/* What the config says about optional tensors. */
typedef struct vit_opts {
    int qkv_mask;     /* biases present: 1 query, 2 key, 4 value    */
    int proj_bias;    /* attention output projection bias           */
    int mlp_bias;     /* MLP biases                                 */
    int mask_token;   /* embeddings.mask_token present (unused)     */
} vit_opts;

typedef struct vit_cfg {
    const cJSON *obj;   /* the object holding the fields              */
    const char *path;
} vit_cfg;

/* Integer field in [lo, hi], or def when absent. */
static uad_status cfg_int(int *out, const vit_cfg *c, const char *key,
                          int def, int lo, int hi) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(c->obj, key);
    if (!it || cJSON_IsNull(it)) {
        *out = def;
        return UAD_OK;
    }
    double d = it->valuedouble;
    if (!cJSON_IsNumber(it) || d != floor(d) || d < lo || d > hi)
        return uad_fail(UAD_ERR_FORMAT, "%s: \"%s\" must be an integer in "
                        "%d..%d", c->path, key, lo, hi);
    *out = (int)d;
    return UAD_OK;
}

static uad_status cfg_num(double *out, const vit_cfg *c, const char *key,
                          double def, double lo, double hi) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(c->obj, key);
    if (!it || cJSON_IsNull(it)) {
        *out = def;
        return UAD_OK;
    }
    if (!cJSON_IsNumber(it) || !(it->valuedouble >= lo) ||
        !(it->valuedouble <= hi))
        return uad_fail(UAD_ERR_FORMAT, "%s: \"%s\" must be a number in "
                        "[%g, %g]", c->path, key, lo, hi);
    *out = it->valuedouble;
    return UAD_OK;
}

static uad_status cfg_bool(int *out, const vit_cfg *c, const char *key,
                           int def) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(c->obj, key);
    if (!it || cJSON_IsNull(it)) {
        *out = def;
        return UAD_OK;
    }
    if (!cJSON_IsBool(it))
        return uad_fail(UAD_ERR_FORMAT, "%s: \"%s\" must be true or false",
                        c->path, key);
    *out = cJSON_IsTrue(it);
    return UAD_OK;
}

static uad_status cfg_str(const char **out, const vit_cfg *c,
                          const char *key, const char *def) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(c->obj, key);
    if (!it || cJSON_IsNull(it)) {
        *out = def;
        return UAD_OK;
    }
    if (!cJSON_IsString(it))
        return uad_fail(UAD_ERR_FORMAT, "%s: \"%s\" must be a string",
                        c->path, key);
    *out = it->valuestring;
    return UAD_OK;
}

static uad_status cfg_act(vit_act *out, const vit_cfg *c, const char *def) {
    const char *a = NULL;
    uad_status st = cfg_str(&a, c, "hidden_act", def);
    if (st != UAD_OK) return st;
    if (!strcmp(a, "gelu")) *out = VIT_GELU;
    else if (!strcmp(a, "quick_gelu")) *out = VIT_QUICK_GELU;
    else
        return uad_fail(UAD_ERR_FORMAT, "%s: hidden_act \"%s\" is not "
                        "supported (gelu, quick_gelu)", c->path, a);
    return UAD_OK;
}

/* Fields shared by both families. Defaults are the HF config classes'
 * (config.json stores only the values that differ from them). */
static uad_status cfg_common(uad_vit *v, const vit_cfg *c, int patch_def,
                             double eps_def, int hidden_def, int heads_def) {
    uad_vit_info *in = &v->info;
    double eps = 0.0;
    int ch = 0;
    uad_status st;
    if ((st = cfg_int(&in->hidden, c, "hidden_size", hidden_def, 1, 8192)) ||
        (st = cfg_int(&in->layers, c, "num_hidden_layers", 12, 1, 256)) ||
        (st = cfg_int(&in->heads, c, "num_attention_heads", heads_def, 1,
                      1024)) ||
        (st = cfg_int(&in->image_size, c, "image_size", 224, 1, 8192)) ||
        (st = cfg_int(&in->patch, c, "patch_size", patch_def, 1, 256)) ||
        (st = cfg_int(&ch, c, "num_channels", 3, 1, 64)) ||
        (st = cfg_num(&eps, c, "layer_norm_eps", eps_def, 0.0, 1.0)))
        return st;
    if (ch != 3)
        return uad_fail(UAD_ERR_FORMAT, "%s: num_channels %d: only RGB "
                        "(3) models are supported", c->path, ch);
    if (in->hidden % in->heads)
        return uad_fail(UAD_ERR_FORMAT, "%s: hidden_size %d is not a "
                        "multiple of num_attention_heads %d", c->path,
                        in->hidden, in->heads);
    if (in->image_size < in->patch)
        return uad_fail(UAD_ERR_FORMAT, "%s: image_size %d is smaller than "
                        "patch_size %d", c->path, in->image_size, in->patch);
    v->eps = (float)eps;
    v->pos_grid = in->image_size / in->patch;
    return UAD_OK;
}

/* Dinov2Config / Dinov2WithRegistersConfig. */
static uad_status cfg_dinov2(uad_vit *v, const vit_cfg *c, vit_opts *o) {
    uad_vit_info *in = &v->info;
    const char *type = NULL;
    double ratio = 0.0;
    int swiglu = 0;
    uad_status st;
    if ((st = cfg_str(&type, c, "model_type", "dinov2")) ||
        (st = cfg_common(v, c, 16, 1e-6, 768, 12)) ||
        (st = cfg_num(&ratio, c, "mlp_ratio", 4.0, 0.01, 64.0)) ||
        (st = cfg_bool(&o->qkv_mask, c, "qkv_bias", 1)) ||
        (st = cfg_bool(&swiglu, c, "use_swiglu_ffn", 0)) ||
        (st = cfg_act(&v->act, c, "gelu")))
        return st;
    int regs = !strcmp(type, "dinov2_with_registers");
    if (!regs && strcmp(type, "dinov2"))
        return uad_fail(UAD_ERR_FORMAT, "%s: model_type \"%s\" is not a "
                        "DINOv2 model", c->path, type);
    if ((st = cfg_int(&in->registers, c, "num_register_tokens",
                      regs ? 4 : 0, 0, 256)))
        return st;
    if (!regs) in->registers = 0;
    /* Dinov2WithRegistersModel always has a mask token; Dinov2Model
     * unless use_mask_token is false. */
    if ((st = cfg_bool(&o->mask_token, c, "use_mask_token", 1))) return st;
    if (regs) o->mask_token = 1;
    o->qkv_mask *= 7;
    o->proj_bias = o->mlp_bias = 1;
    v->pos_antialias = regs;
    /* HF Dinov2MLP: int(C * mlp_ratio); Dinov2SwiGLUFFN rounds two
     * thirds of that up to a multiple of 8. */
    int hf = (int)(in->hidden * ratio);
    in->mlp_hidden = swiglu ? (hf * 2 / 3 + 7) / 8 * 8 : hf;
    if (swiglu) v->act = VIT_SWIGLU;
    if (in->mlp_hidden < 1)
        return uad_fail(UAD_ERR_FORMAT, "%s: mlp_ratio %g gives no hidden "
                        "units", c->path, ratio);
    in->resize_short = 256;
    in->crop = 224;
    static const float mean[3] = {0.485f, 0.456f, 0.406f};
    static const float sd[3] = {0.229f, 0.224f, 0.225f};
    memcpy(in->mean, mean, sizeof mean);
    memcpy(in->std, sd, sizeof sd);
    return UAD_OK;
}

/* DINOv3ViTConfig (HF dinov3_vit): no position table (RoPE), optional
 * registers, per-projection bias switches, plain or gated MLP. */
static uad_status cfg_dinov3(uad_vit *v, const vit_cfg *c, vit_opts *o) {
    uad_vit_info *in = &v->info;
    const char *type = NULL, *act = NULL;
    int qb = 1, kb = 0, vb = 1, gated = 0, swiglu = 0;
    uad_status st;
    if ((st = cfg_str(&type, c, "model_type", "dinov3_vit")) ||
        (st = cfg_common(v, c, 16, 1e-5, 384, 6)) ||
        (st = cfg_int(&in->mlp_hidden, c, "intermediate_size", 1536, 1,
                      1 << 20)) ||
        (st = cfg_int(&in->registers, c, "num_register_tokens", 0, 0, 256)) ||
        (st = cfg_num(&v->rope_theta, c, "rope_theta", 100.0, 1e-6, 1e12)) ||
        (st = cfg_bool(&qb, c, "query_bias", 1)) ||
        (st = cfg_bool(&kb, c, "key_bias", 0)) ||
        (st = cfg_bool(&vb, c, "value_bias", 1)) ||
        (st = cfg_bool(&o->proj_bias, c, "proj_bias", 1)) ||
        (st = cfg_bool(&o->mlp_bias, c, "mlp_bias", 1)) ||
        (st = cfg_bool(&gated, c, "use_gated_mlp", 0)) ||
        (st = cfg_bool(&swiglu, c, "use_swiglu_ffn", 0)) ||
        (st = cfg_str(&act, c, "hidden_act", "gelu")))
        return st;
    if (strcmp(type, "dinov3_vit") && strcmp(type, "DINOv3ViT"))
        return uad_fail(UAD_ERR_FORMAT, "%s: model_type \"%s\" is not a "
                        "DINOv3 ViT", c->path, type);
    if ((in->hidden / in->heads) % 4)
        return uad_fail(UAD_ERR_FORMAT, "%s: head width %d is not a "
                        "multiple of 4 (RoPE)", c->path,
                        in->hidden / in->heads);
    o->qkv_mask = qb | kb << 1 | vb << 2;
    o->mask_token = 1;
    v->rope = 1;
    /* gated MLP: down(act(gate(x)) * up(x)), supported with silu */
    gated = gated || swiglu;
    if (gated ? strcmp(act, "silu") : strcmp(act, "gelu"))
        return uad_fail(UAD_ERR_FORMAT, "%s: hidden_act \"%s\" with %s MLP "
                        "is not supported (gelu plain, silu gated)", c->path,
                        act, gated ? "a gated" : "a plain");
    v->act = gated ? VIT_SWIGLU : VIT_GELU;
    /* HF DINOv3ViTImageProcessorFast: resize to 224 x 224, no crop */
    in->resize_short = 0;
    in->crop = 224;
    static const float mean[3] = {0.485f, 0.456f, 0.406f};
    static const float sd[3] = {0.229f, 0.224f, 0.225f};
    memcpy(in->mean, mean, sizeof mean);
    memcpy(in->std, sd, sizeof sd);
    return UAD_OK;
}

/* CLIPVisionConfig, alone (CLIPVisionModel) or as CLIPConfig's
 * vision_config (CLIPModel, projection_dim at the top level). */
static uad_status cfg_clip(uad_vit *v, const vit_cfg *top) {
    uad_vit_info *in = &v->info;
    vit_cfg c = *top;
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(top->obj,
                                                       "vision_config");
    if (vc && !cJSON_IsObject(vc))
        return uad_fail(UAD_ERR_FORMAT, "%s: \"vision_config\" must be an "
                        "object", top->path);
    if (vc) c.obj = vc;
    /* CLIPConfig ("clip") or CLIPVisionConfig ("clip_vision_model") */
    const char *type = NULL;
    uad_status st = cfg_str(&type, top, "model_type", "clip");
    if (st != UAD_OK) return st;
    if (strcmp(type, "clip") && strcmp(type, "clip_vision_model"))
        return uad_fail(UAD_ERR_FORMAT, "%s: model_type \"%s\" is not a "
                        "CLIP model", top->path, type);
    if ((st = cfg_common(v, &c, 32, 1e-5, 768, 12)) ||
        (st = cfg_int(&in->mlp_hidden, &c, "intermediate_size", 3072, 1,
                      1 << 20)) ||
        (st = cfg_act(&v->act, &c, "quick_gelu")) ||
        (st = cfg_int(&in->proj_dim, vc ? top : &c, "projection_dim", 512,
                      1, 1 << 16)))
        return st;
    in->resize_short = in->crop = in->image_size;
    static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float sd[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    memcpy(in->mean, mean, sizeof mean);
    memcpy(in->std, sd, sizeof sd);
    return UAD_OK;
}

/* ---- tensors ---- */

/* Two passes over the same calls: the first sizes the arena and checks
 * every name and shape, the second fills it. */
typedef struct vit_loader {
    const uad_safetensors *st;
    const char *path;
    unsigned char *used;   /* per tensor of the file                  */
    float *arena;          /* NULL in the sizing pass                 */
    size_t off;
    /* The blocks' four linear weights go through `lin`, one block's
     * worth, and are packed (copied) into their handles as each block
     * ends (ld_block_end), so no second f32 copy of them is kept. */
    float *lin;            /* NULL in the sizing pass                 */
    size_t lin_off, lin_max;
    /* the current block's weights in `lin`: qkv (3C, C) query, key,
     * value stacked; proj (C, C); fc1 (M, C) or SwiGLU (2M, C); fc2
     * (C, M) */
    float *qkv_w, *proj_w, *fc1_w, *fc2_w;
} vit_loader;

static float *ld_reserve(vit_loader *ld, size_t n) {
    float *p = ld->arena ? ld->arena + ld->off : NULL;
    ld->off += n;
    return p;
}

static float *ld_reserve_lin(vit_loader *ld, size_t n) {
    float *p = ld->lin ? ld->lin + ld->lin_off : NULL;
    ld->lin_off += n;
    if (ld->lin_off > ld->lin_max) ld->lin_max = ld->lin_off;
    return p;
}

static size_t tensor_index(const vit_loader *ld, const uad_st_tensor *t) {
    size_t n = uad_st_count(ld->st);
    for (size_t i = 0; i < n; i++)
        if (uad_st_tensor_at(ld->st, i) == t) return i;
    return n;
}

/* After a tensor's conversion its pages of the file are not read again:
 * drop them, so that the mapped file and the f32 copy do not both count
 * against memory at the peak. uad_st_open maps the file read-only and
 * file-backed, so this only releases page cache from the process (a
 * later read would fault the bytes back in); only pages wholly inside
 * the tensor go, never a neighbour's. */
static void release_pages(const uad_st_tensor *t) {
#ifdef MADV_DONTNEED
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)t->data + pg - 1) / pg * pg;
    uintptr_t b = ((uintptr_t)t->data + t->nbytes) / pg * pg;
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
#endif
}

/* Copy tensor `name` of shape dims[0..nd) into dst (f32). */
static uad_status ld_copy(vit_loader *ld, float *dst, const char *name,
                          int nd, const int64_t *dims) {
    const uad_st_tensor *t = uad_st_find(ld->st, name);
    if (!t)
        return uad_fail(UAD_ERR_FORMAT, "%s: tensor \"%s\" is missing",
                        ld->path, name);
    int ok = t->ndim == nd;
    for (int i = 0; ok && i < nd; i++) ok = t->shape[i] == dims[i];
    if (!ok) {
        char want[96] = "", got[96] = "";
        for (int i = 0; i < nd; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want),
                     "%s%lld", i ? ", " : "", (long long)dims[i]);
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld",
                     i ? ", " : "", (long long)t->shape[i]);
        return uad_fail(UAD_ERR_FORMAT, "%s: tensor \"%s\" has shape (%s), "
                        "expected (%s)", ld->path, name, got, want);
    }
    if (t->dtype != UAD_DT_F32 && t->dtype != UAD_DT_F16 &&
        t->dtype != UAD_DT_BF16)
        return uad_fail(UAD_ERR_FORMAT, "%s: tensor \"%s\" has dtype %s "
                        "(F32, F16 or BF16 expected)", ld->path, name,
                        uad_dtype_name(t->dtype));
    ld->used[tensor_index(ld, t)] = 1;
    if (!dst) return UAD_OK;
    uad_status st = uad_st_to_f32(t, dst);
    if (st != UAD_OK) uad_error_prefix(ld->path);
    else release_pages(t);
    return st;
}

/* Reserve numel floats for a tensor (in `lin` when lin) and copy it
 * there; *out points at it (NULL in the sizing pass). Up to four dims,
 * -1 ends the list. */
static uad_status ld_take_in(vit_loader *ld, int lin, float **out,
                             const char *name, int64_t d0, int64_t d1,
                             int64_t d2, int64_t d3) {
    int64_t dims[4] = {d0, d1, d2, d3};
    int nd = 0;
    size_t n = 1;
    while (nd < 4 && dims[nd] >= 0) n *= (size_t)dims[nd++];
    *out = lin ? ld_reserve_lin(ld, n) : ld_reserve(ld, n);
    return ld_copy(ld, *out, name, nd, dims);
}

static uad_status ld_take(vit_loader *ld, float **out, const char *name,
                          int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    return ld_take_in(ld, 0, out, name, d0, d1, d2, d3);
}

/* "prefix" + "stem" + ".weight"/".bias" into buf. */
static const char *key(char *buf, const char *pre, const char *stem,
                       const char *leaf) {
    snprintf(buf, 256, "%s%s%s", pre, stem, leaf);
    return buf;
}

/* A block's linear layer pre+stem (OC, C), the weight in `lin`, with
 * optional bias. */
static uad_status ld_linear(vit_loader *ld, float **w, float **b,
                            const char *pre, const char *stem, int OC, int C,
                            int bias) {
    char k[256];
    uad_status st =
        ld_take_in(ld, 1, w, key(k, pre, stem, ".weight"), OC, C, -1, -1);
    if (st == UAD_OK && bias)
        st = ld_take(ld, b, key(k, pre, stem, ".bias"), OC, -1, -1, -1);
    return st;
}

static uad_status ld_norm(vit_loader *ld, float **w, float **b,
                          const char *pre, const char *stem, int C) {
    char k[256];
    uad_status st = ld_take(ld, w, key(k, pre, stem, ".weight"), C, -1, -1, -1);
    if (st == UAD_OK)
        st = ld_take(ld, b, key(k, pre, stem, ".bias"), C, -1, -1, -1);
    return st;
}

/* query, key and value (C, C) each, stacked into qkv_w (3C, C) and
 * qkv_b (3C) so that one matmul computes all three. mask: which of the
 * three have a bias (1 q, 2 k, 4 v); a missing one stays zero (the
 * arena is zeroed). */
static uad_status ld_qkv(vit_loader *ld, vit_block *b, const char *pre,
                         const char *const stems[3], int C, int mask) {
    char k[256];
    int64_t wd[2] = {C, C}, bd[1] = {C};
    ld->qkv_w = ld_reserve_lin(ld, (size_t)3 * C * C);
    b->qkv_b = mask ? ld_reserve(ld, (size_t)3 * C) : NULL;
    for (int i = 0; i < 3; i++) {
        float *w = ld->qkv_w ? ld->qkv_w + (size_t)i * C * C : NULL;
        uad_status st = ld_copy(ld, w, key(k, pre, stems[i], ".weight"), 2, wd);
        if (st != UAD_OK) return st;
        if (!(mask & (1 << i))) continue;
        float *bb = b->qkv_b ? b->qkv_b + (size_t)i * C : NULL;
        if ((st = ld_copy(ld, bb, key(k, pre, stems[i], ".bias"), 1, bd)))
            return st;
    }
    return UAD_OK;
}

/* After block l's tensors: in the fill pass its four linear layers are
 * packed from `lin`, which the next block reuses. */
static uad_status ld_block_end(vit_loader *ld, uad_vit *v, int l) {
    ld->lin_off = 0;
    if (!ld->lin) return UAD_OK;
    vit_block *b = &v->blocks[l];
    int C = v->info.hidden, M = v->info.mlp_hidden;
    int M1 = v->act == VIT_SWIGLU ? 2 * M : M;
    b->qkv = nn_linear_pack(ld->qkv_w, b->qkv_b, C, 3 * C);
    b->proj = nn_linear_pack(ld->proj_w, b->proj_b, C, C);
    b->fc1 = nn_linear_pack(ld->fc1_w, b->fc1_b, C, M1);
    b->fc2 = nn_linear_pack(ld->fc2_w, b->fc2_b, M, C);
    return b->qkv && b->proj && b->fc1 && b->fc2 ? UAD_OK : UAD_ERR_NOMEM;
}

/* HF Dinov2Layer: encoder.layer.N.{norm1, attention.attention.{query,
 * key,value}, attention.output.dense, layer_scale1.lambda1, norm2,
 * mlp.{fc1,fc2} or mlp.{weights_in,weights_out}, layer_scale2.lambda1}. */
static uad_status ld_dinov2_block(vit_loader *ld, vit_block *b,
                                  const uad_vit *v, int l, int qkv_mask) {
    static const char *const qkv[3] = {"attention.attention.query",
                                       "attention.attention.key",
                                       "attention.attention.value"};
    int C = v->info.hidden, M = v->info.mlp_hidden;
    int sw = v->act == VIT_SWIGLU;
    char pre[64], k[256];
    snprintf(pre, sizeof pre, "encoder.layer.%d.", l);
    uad_status st;
    if ((st = ld_norm(ld, &b->norm1_w, &b->norm1_b, pre, "norm1", C)) ||
        (st = ld_qkv(ld, b, pre, qkv, C, qkv_mask)) ||
        (st = ld_linear(ld, &ld->proj_w, &b->proj_b, pre,
                        "attention.output.dense", C, C, 1)) ||
        (st = ld_take(ld, &b->ls1, key(k, pre, "layer_scale1", ".lambda1"),
                      C, -1, -1, -1)) ||
        (st = ld_norm(ld, &b->norm2_w, &b->norm2_b, pre, "norm2", C)) ||
        (st = ld_linear(ld, &ld->fc1_w, &b->fc1_b, pre,
                        sw ? "mlp.weights_in" : "mlp.fc1", sw ? 2 * M : M,
                        C, 1)) ||
        (st = ld_linear(ld, &ld->fc2_w, &b->fc2_b, pre,
                        sw ? "mlp.weights_out" : "mlp.fc2", C, M, 1)) ||
        (st = ld_take(ld, &b->ls2, key(k, pre, "layer_scale2", ".lambda1"),
                      C, -1, -1, -1)))
        return st;
    return UAD_OK;
}

/* HF Dinov2Model / Dinov2WithRegistersModel. */
static uad_status ld_dinov2(vit_loader *ld, uad_vit *v, const vit_opts *o) {
    int C = v->info.hidden, p = v->info.patch, G = v->pos_grid;
    int R = v->info.registers;
    float *unused;
    uad_status st;
    if ((st = ld_take(ld, &v->cls, "embeddings.cls_token", 1, 1, C, -1)))
        return st;
    /* the mask token only serves masked-image pre-training */
    if (o->mask_token &&
        (st = ld_take(ld, &unused, "embeddings.mask_token", 1, C, -1, -1)))
        return st;
    if (R && (st = ld_take(ld, &v->reg, "embeddings.register_tokens", 1, R,
                           C, -1)))
        return st;
    if ((st = ld_take(ld, &v->pos, "embeddings.position_embeddings", 1,
                      1 + (int64_t)G * G, C, -1)) ||
        (st = ld_take(ld, &v->patch_w,
                      "embeddings.patch_embeddings.projection.weight", C, 3,
                      p, p)) ||
        (st = ld_take(ld, &v->patch_b,
                      "embeddings.patch_embeddings.projection.bias", C, -1,
                      -1, -1)))
        return st;
    for (int l = 0; l < v->info.layers; l++)
        if ((st = ld_dinov2_block(ld, &v->blocks[l], v, l, o->qkv_mask)) ||
            (st = ld_block_end(ld, v, l)))
            return st;
    return ld_norm(ld, &v->norm_w, &v->norm_b, "", "layernorm", C);
}

/* HF DINOv3ViTLayer: layer.N.{norm1, attention.{q,k,v,o}_proj,
 * layer_scale1.lambda1, norm2, mlp.{up_proj,down_proj} (gated: also
 * mlp.gate_proj, stacked [gate; up] into fc1), layer_scale2.lambda1}. */
static uad_status ld_dinov3_block(vit_loader *ld, vit_block *b,
                                  const uad_vit *v, int l, const vit_opts *o) {
    static const char *const qkv[3] = {"attention.q_proj", "attention.k_proj",
                                       "attention.v_proj"};
    int C = v->info.hidden, M = v->info.mlp_hidden, mb = o->mlp_bias;
    char pre[64], k[256];
    snprintf(pre, sizeof pre, "layer.%d.", l);
    uad_status st;
    if ((st = ld_norm(ld, &b->norm1_w, &b->norm1_b, pre, "norm1", C)) ||
        (st = ld_qkv(ld, b, pre, qkv, C, o->qkv_mask)) ||
        (st = ld_linear(ld, &ld->proj_w, &b->proj_b, pre, "attention.o_proj",
                        C, C, o->proj_bias)) ||
        (st = ld_take(ld, &b->ls1, key(k, pre, "layer_scale1", ".lambda1"),
                      C, -1, -1, -1)) ||
        (st = ld_norm(ld, &b->norm2_w, &b->norm2_b, pre, "norm2", C)))
        return st;
    if (v->act == VIT_SWIGLU) {
        int64_t wd[2] = {M, C}, bd[1] = {M};
        const char *parts[2] = {"mlp.gate_proj", "mlp.up_proj"};
        ld->fc1_w = ld_reserve_lin(ld, (size_t)2 * M * C);
        b->fc1_b = mb ? ld_reserve(ld, (size_t)2 * M) : NULL;
        for (int i = 0; i < 2; i++) {
            float *w = ld->fc1_w ? ld->fc1_w + (size_t)i * M * C : NULL;
            float *bb = b->fc1_b ? b->fc1_b + (size_t)i * M : NULL;
            if ((st = ld_copy(ld, w, key(k, pre, parts[i], ".weight"), 2, wd)) ||
                (mb && (st = ld_copy(ld, bb, key(k, pre, parts[i], ".bias"),
                                     1, bd))))
                return st;
        }
    } else if ((st = ld_linear(ld, &ld->fc1_w, &b->fc1_b, pre, "mlp.up_proj",
                               M, C, mb))) {
        return st;
    }
    if ((st = ld_linear(ld, &ld->fc2_w, &b->fc2_b, pre, "mlp.down_proj", C, M,
                        mb)) ||
        (st = ld_take(ld, &b->ls2, key(k, pre, "layer_scale2", ".lambda1"),
                      C, -1, -1, -1)))
        return st;
    return UAD_OK;
}

/* HF DINOv3ViTModel (the RoPE inverse frequencies are a buffer that
 * the checkpoint does not store). */
static uad_status ld_dinov3(vit_loader *ld, uad_vit *v, const vit_opts *o) {
    int C = v->info.hidden, p = v->info.patch, R = v->info.registers;
    float *unused;
    uad_status st;
    if ((st = ld_take(ld, &v->cls, "embeddings.cls_token", 1, 1, C, -1)) ||
        (st = ld_take(ld, &unused, "embeddings.mask_token", 1, 1, C, -1)))
        return st;
    if (R && (st = ld_take(ld, &v->reg, "embeddings.register_tokens", 1, R,
                           C, -1)))
        return st;
    if ((st = ld_take(ld, &v->patch_w, "embeddings.patch_embeddings.weight",
                      C, 3, p, p)) ||
        (st = ld_take(ld, &v->patch_b, "embeddings.patch_embeddings.bias", C,
                      -1, -1, -1)))
        return st;
    for (int l = 0; l < v->info.layers; l++)
        if ((st = ld_dinov3_block(ld, &v->blocks[l], v, l, o)) ||
            (st = ld_block_end(ld, v, l)))
            return st;
    return ld_norm(ld, &v->norm_w, &v->norm_b, "", "norm", C);
}

/* HF CLIPEncoderLayer under vision_model.encoder.layers.N. */
static uad_status ld_clip_block(vit_loader *ld, vit_block *b,
                                const uad_vit *v, int l) {
    static const char *const qkv[3] = {"self_attn.q_proj", "self_attn.k_proj",
                                       "self_attn.v_proj"};
    int C = v->info.hidden, M = v->info.mlp_hidden;
    char pre[64];
    snprintf(pre, sizeof pre, "vision_model.encoder.layers.%d.", l);
    uad_status st;
    if ((st = ld_norm(ld, &b->norm1_w, &b->norm1_b, pre, "layer_norm1", C)) ||
        (st = ld_qkv(ld, b, pre, qkv, C, 7)) ||
        (st = ld_linear(ld, &ld->proj_w, &b->proj_b, pre, "self_attn.out_proj",
                        C, C, 1)) ||
        (st = ld_norm(ld, &b->norm2_w, &b->norm2_b, pre, "layer_norm2", C)) ||
        (st = ld_linear(ld, &ld->fc1_w, &b->fc1_b, pre, "mlp.fc1", M, C, 1)) ||
        (st = ld_linear(ld, &ld->fc2_w, &b->fc2_b, pre, "mlp.fc2", C, M, 1)))
        return st;
    b->ls1 = b->ls2 = NULL;
    return UAD_OK;
}

/* HF CLIPVisionTransformer (+ CLIPModel's visual_projection, when the
 * file has it). */
static uad_status ld_clip(vit_loader *ld, uad_vit *v) {
    int C = v->info.hidden, p = v->info.patch, G = v->pos_grid;
    const char *pre = "vision_model.";
    char k[256];
    uad_status st;
    if ((st = ld_take(ld, &v->cls, key(k, pre, "embeddings.class_embedding",
                                      ""), C, -1, -1, -1)) ||
        (st = ld_take(ld, &v->patch_w,
                      key(k, pre, "embeddings.patch_embedding", ".weight"), C,
                      3, p, p)) ||
        (st = ld_take(ld, &v->pos,
                      key(k, pre, "embeddings.position_embedding", ".weight"),
                      1 + (int64_t)G * G, C, -1, -1)) ||
        (st = ld_norm(ld, &v->pre_w, &v->pre_b, pre, "pre_layrnorm", C)))
        return st;
    v->patch_b = NULL; /* CLIP's patch convolution has no bias */
    for (int l = 0; l < v->info.layers; l++)
        if ((st = ld_clip_block(ld, &v->blocks[l], v, l)) ||
            (st = ld_block_end(ld, v, l)))
            return st;
    if ((st = ld_norm(ld, &v->norm_w, &v->norm_b, pre, "post_layernorm", C)))
        return st;
    v->proj = NULL;
    if (uad_st_find(ld->st, "visual_projection.weight"))
        return ld_take(ld, &v->proj, "visual_projection.weight",
                       v->info.proj_dim, C, -1, -1);
    v->info.proj_dim = 0;
    return UAD_OK;
}

/* Tensors a CLIPModel file holds that the vision backbone does not run:
 * the text tower, its projection, the logit scale, and the position_ids
 * buffers older exports saved. */
static int clip_skippable(const char *name) {
    return !strncmp(name, "text_model.", 11) ||
           !strcmp(name, "text_projection.weight") ||
           !strcmp(name, "logit_scale") ||
           !strcmp(name, "vision_model.embeddings.position_ids");
}

static uad_status ld_unused(const vit_loader *ld, uad_vit_kind kind) {
    for (size_t i = 0; i < uad_st_count(ld->st); i++) {
        const char *name = uad_st_tensor_at(ld->st, i)->name;
        if (ld->used[i] || (kind == UAD_VIT_CLIP && clip_skippable(name)))
            continue;
        return uad_fail(UAD_ERR_FORMAT, "%s: unexpected tensor \"%s\" (not "
                        "part of this %s configuration)", ld->path, name,
                        kind == UAD_VIT_CLIP     ? "CLIP"
                        : kind == UAD_VIT_DINOV3 ? "DINOv3"
                                                 : "DINOv2");
    }
    return UAD_OK;
}

/* The architecture's tensors, both passes, then the unused check. */
static uad_status ld_all(vit_loader *ld, uad_vit *v, const vit_opts *o) {
    ld->off = 0;
    memset(ld->used, 0, uad_st_count(ld->st));
    uad_status st = v->info.kind == UAD_VIT_CLIP     ? ld_clip(ld, v)
                    : v->info.kind == UAD_VIT_DINOV3 ? ld_dinov3(ld, v, o)
                                                     : ld_dinov2(ld, v, o);
    return st != UAD_OK ? st : ld_unused(ld, v->info.kind);
}

static uad_status vit_read_config(uad_vit *v, const char *dir,
                                  vit_opts *o) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    void *json;
    uad_status st = uad_json_load_object(&json, path, "not a JSON object");
    if (st != UAD_OK) return st;
    cJSON *root = json;
    vit_cfg c = {root, path};
    *o = (vit_opts){7, 1, 1, 0};
    st = v->info.kind == UAD_VIT_CLIP     ? cfg_clip(v, &c)
         : v->info.kind == UAD_VIT_DINOV3 ? cfg_dinov3(v, &c, o)
                                          : cfg_dinov2(v, &c, o);
    cJSON_Delete(root);
    return st;
}

uad_status uad_vit_load(uad_vit **out, uad_vit_kind kind, const char *dir) {
    *out = NULL;
    if (kind != UAD_VIT_DINOV2 && kind != UAD_VIT_DINOV3 &&
        kind != UAD_VIT_CLIP)
        return uad_fail(UAD_ERR_USAGE, "%s: unsupported backbone kind %d",
                        dir, (int)kind);
    uad_vit *v = uad_calloc(1, sizeof *v);
    if (!v) return UAD_ERR_NOMEM;
    v->info.kind = kind;
    vit_opts o;
    uad_status st = vit_read_config(v, dir, &o);
    if (st == UAD_OK && !(v->blocks = uad_calloc((size_t)v->info.layers,
                                                 sizeof(vit_block))))
        st = UAD_ERR_NOMEM;

    /* Size and check every tensor, allocate, then copy. */
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    uad_safetensors *sf = NULL;
    vit_loader ld = {0};
    if (st == UAD_OK) st = uad_st_open(&sf, path);
    if (st == UAD_OK) {
        ld = (vit_loader){.st = sf, .path = path,
                          .used = uad_calloc(uad_st_count(sf) + 1, 1)};
        st = ld.used ? ld_all(&ld, v, &o) : UAD_ERR_NOMEM;
    }
    if (st == UAD_OK && !(v->arena = ld.arena =
                              uad_calloc(ld.off + 1, sizeof(float))))
        st = UAD_ERR_NOMEM;
    if (st == UAD_OK && !(ld.lin = uad_calloc(ld.lin_max + 1, sizeof(float))))
        st = UAD_ERR_NOMEM;
    if (st == UAD_OK) st = ld_all(&ld, v, &o);
    free(ld.lin);
    free(ld.used);
    uad_st_free(sf);
    if (st != UAD_OK) {
        uad_vit_free(v);
        return st;
    }
    *out = v;
    return UAD_OK;
}

void uad_vit_free(uad_vit *v) {
    if (!v) return;
    for (int l = 0; v->blocks && l < v->info.layers; l++) {
        nn_linear_packed_free(v->blocks[l].qkv);
        nn_linear_packed_free(v->blocks[l].proj);
        nn_linear_packed_free(v->blocks[l].fc1);
        nn_linear_packed_free(v->blocks[l].fc2);
    }
    free(v->blocks);
    free(v->arena);
    free(v->work);
    free(v);
}

uad_status uad_vit_load_spec(uad_vit **out, const char *spec) {
    *out = NULL;
    const char *colon = strchr(spec, ':');
    if (!colon || !colon[1])
        return uad_fail(UAD_ERR_USAGE, "backbone \"%s\": expected KIND:DIR "
                        "(dinov2:DIR, dinov3:DIR or clip:DIR)", spec);
    size_t n = (size_t)(colon - spec);
    if (n == 6 && !strncmp(spec, "dinov2", 6))
        return uad_vit_load(out, UAD_VIT_DINOV2, colon + 1);
    if (n == 6 && !strncmp(spec, "dinov3", 6))
        return uad_vit_load(out, UAD_VIT_DINOV3, colon + 1);
    if (n == 4 && !strncmp(spec, "clip", 4))
        return uad_vit_load(out, UAD_VIT_CLIP, colon + 1);
    return uad_fail(UAD_ERR_USAGE, "backbone \"%s\": unknown kind \"%.*s\" "
                    "(dinov2, dinov3 or clip)", spec, (int)n, spec);
}
