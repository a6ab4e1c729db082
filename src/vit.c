/* vit.c - forward pass of the pretrained ViT backbones (DINOv2 with or
 * without registers, CLIP vision tower), following the Hugging Face
 * modules named in each comment. Shapes in PyTorch order; one image at a
 * time, T tokens of C channels. */
#include "internal.h"
#include "nn.h"
#include "vit.h"

#include <math.h>
#include <string.h>

/* Work buffers of one forward, carved from one allocation. */
typedef struct vit_work {
    float *x, *xn, *qkv, *att, *mlp, *mlp2, *mha, *cols, *pos;
    float *cos, *sin; /* RoPE tables (Np, D) */
} vit_work;

static int vit_mlp_width(const uad_vit *v) {
    return v->act == VIT_SWIGLU ? 2 * v->info.mlp_hidden : v->info.mlp_hidden;
}

/* Carve the buffers of a T-token forward from v's work area, grown when
 * too small and kept for the next call (no page faults per forward). */
static float *work_alloc(vit_work *w, uad_vit *v, int T, int Np) {
    size_t C = (size_t)v->info.hidden, M = (size_t)vit_mlp_width(v);
    size_t K = (size_t)3 * v->info.patch * v->info.patch;
    size_t D = C / (size_t)v->info.heads;
    size_t sizes[11] = {T * C, T * C, 3 * T * C, T * C, T * M,
                        T * (size_t)v->info.mlp_hidden,
                        nn_mha_scratch_floats(T, (int)C, v->info.heads),
                        Np * K, Np * C, Np * D, Np * D};
    float **slots[11] = {&w->x, &w->xn, &w->qkv, &w->att, &w->mlp,
                         &w->mlp2, &w->mha, &w->cols, &w->pos, &w->cos,
                         &w->sin};
    size_t total = 0;
    for (int i = 0; i < 11; i++) total += sizes[i];
    if (total > v->work_n) {
        free(v->work);
        v->work_n = 0;
        if (!(v->work = uad_malloc(total * sizeof(float)))) return NULL;
        v->work_n = total;
    }
    float *base = v->work;
    size_t off = 0;
    for (int i = 0; i < 11; i++) {
        *slots[i] = base + off;
        off += sizes[i];
    }
    return base;
}

/* Position embeddings of the patch grid gh x gw into pos(gh*gw, C). The
 * HF rule (Dinov2Embeddings / CLIPVisionEmbeddings.interpolate_pos_
 * encoding): the stored grid is used as is when the token count matches
 * and the image is square; otherwise it is resized bicubically
 * (Dinov2WithRegisters: antialiased) to gh x gw in float32. */
static uad_status vit_pos(float *pos, const uad_vit *v, int gh, int gw,
                          int H, int W) {
    int C = v->info.hidden, G = v->pos_grid;
    const float *src = v->pos + C; /* skip the CLS position */
    if (gh * gw == G * G && H == W) {
        memcpy(pos, src, sizeof(float) * (size_t)G * G * C);
        return UAD_OK;
    }
    float *buf = uad_malloc(sizeof(float) * C * ((size_t)G * G + (size_t)gh * gw));
    if (!buf) return UAD_ERR_NOMEM;
    float *grid = buf, *res = buf + (size_t)C * G * G;
    /* (G*G, C) -> (C, G, G), resize, (C, gh, gw) -> (gh*gw, C) */
    for (int t = 0; t < G * G; t++)
        for (int c = 0; c < C; c++) grid[(size_t)c * G * G + t] = src[(size_t)t * C + c];
    if (nn_resize_bicubic_forward(res, grid, C, G, G, gh, gw,
                                  v->pos_antialias) != 0) {
        free(buf);
        return uad_fail(UAD_ERR_NOMEM, "out of memory (position grid)");
    }
    for (int t = 0; t < gh * gw; t++)
        for (int c = 0; c < C; c++) pos[(size_t)t * C + c] = res[(size_t)c * gh * gw + t];
    free(buf);
    return UAD_OK;
}

/* RoPE tables of the gh x gw grid (HF DINOv3ViTRopePositionEmbedding):
 * patch centres y = 2 (i + 0.5) / gh - 1, x likewise in [-1, 1];
 * frequencies f_j = theta^(-4j / D), j < D/4; the angles 2 pi y f_j then
 * 2 pi x f_j fill D/2 columns, repeated twice to D. Computed in double
 * (HF: float32). */
static void vit_rope_tables(float *cos_t, float *sin_t, const uad_vit *v,
                            int gh, int gw) {
    int D = v->info.hidden / v->info.heads, q = D / 4;
    for (int i = 0; i < gh; i++)
        for (int j = 0; j < gw; j++) {
            double y = 2.0 * (i + 0.5) / gh - 1.0, x = 2.0 * (j + 0.5) / gw - 1.0;
            size_t row = ((size_t)i * gw + j) * D;
            for (int k = 0; k < q; k++) {
                double f = pow(v->rope_theta, -4.0 * k / D);
                double ay = 2.0 * M_PI * y * f, ax = 2.0 * M_PI * x * f;
                int cols[4] = {k, q + k, 2 * q + k, 3 * q + k};
                double ang[4] = {ay, ax, ay, ax};
                for (int m = 0; m < 4; m++) {
                    cos_t[row + cols[m]] = (float)cos(ang[m]);
                    sin_t[row + cols[m]] = (float)sin(ang[m]);
                }
            }
        }
}

/* Embeddings (HF Dinov2Embeddings, Dinov2WithRegistersEmbeddings,
 * DINOv3ViTEmbeddings, CLIPVisionEmbeddings + pre_layrnorm): x(T, C) =
 * [CLS + pos0, registers, patches + pos]. Registers get no position
 * embedding; DINOv3 has none at all (RoPE). */
static uad_status vit_embed(vit_work *w, const uad_vit *v, const float *img,
                            int H, int W) {
    int C = v->info.hidden, p = v->info.patch, P = vit_prefix(v);
    int gh = H / p, gw = W / p, Np = gh * gw;
    float *x = w->x;

    /* patch_embeddings.projection: conv k = p, stride p, as a matmul */
    nn_patchify(w->cols, img, 3, H, W, p);
    nn_linear_forward(x + (size_t)P * C, w->cols, v->patch_w, v->patch_b,
                      Np, 3 * p * p, C);
    if (v->rope) {
        /* DINOv3: no position table; the rotary angles act inside the
         * attention instead */
        vit_rope_tables(w->cos, w->sin, v, gh, gw);
        memcpy(x, v->cls, sizeof(float) * (size_t)C);
    } else {
        uad_status st = vit_pos(w->pos, v, gh, gw, H, W);
        if (st != UAD_OK) return st;
        nn_add_forward(x + (size_t)P * C, x + (size_t)P * C, w->pos,
                       (size_t)Np * C);
        for (int c = 0; c < C; c++) x[c] = v->cls[c] + v->pos[c];
    }
    if (v->info.registers)
        memcpy(x + C, v->reg, sizeof(float) * (size_t)v->info.registers * C);
    if (v->pre_w)
        nn_layernorm_rows_forward(x, x, v->pre_w, v->pre_b, P + Np, C, v->eps);
    return UAD_OK;
}

/* norm(x) into xn: f32, or rounded to bf16 when bf (a matmul input). */
static void block_norm(void *xn, int bf, const float *x, const float *w,
                       const float *b, int T, int C, float eps) {
    if (bf)
        nn_layernorm_rows_forward_bf16(xn, x, w, b, T, C, eps);
    else
        nn_layernorm_rows_forward(xn, x, w, b, T, C, eps);
}

/* One pre-norm block (HF Dinov2Layer / CLIPEncoderLayer):
 * x += ls1 * proj(attn(norm1(x))); x += ls2 * mlp(norm2(x)).
 * In bf16 precision the activations that feed a matmul (the norms, the
 * attention output, the GELU MLP hidden) are written in bf16 straight
 * away, with no f32 copy written, read back and rounded; the residual
 * stream x and qkv (RoPE, softmax) stay f32. */
static void vit_block_forward(vit_work *w, const uad_vit *v,
                              const vit_block *b, int T) {
    int C = v->info.hidden, M = v->info.mlp_hidden;
    int bf = nn_get_precision() == NN_BF16;

    block_norm(w->xn, bf, w->x, b->norm1_w, b->norm1_b, T, C, v->eps);
    /* attention.attention.{query,key,value} fused: qkv(T, 3C) */
    nn_linear_packed_forward_bf(w->qkv, 0, w->xn, bf, b->qkv, T, NN_ACT_NONE,
                                NULL, 0);
    if (v->rope)
        nn_rope_forward(w->qkv, w->cos, w->sin, T, C, v->info.heads,
                        vit_prefix(v));
    if (bf)
        nn_mha_forward_bf16((uint16_t *)w->att, w->mha, w->qkv, T, C,
                            v->info.heads);
    else
        nn_mha_forward(w->att, w->mha, w->qkv, T, C, v->info.heads);
    /* attention.output.dense / self_attn.out_proj, times the layer scale,
     * added to the residual stream in the same matmul */
    nn_linear_packed_forward_bf(w->x, 0, w->att, bf, b->proj, T, NN_ACT_NONE,
                                b->ls1, 1);

    block_norm(w->xn, bf, w->x, b->norm2_w, b->norm2_b, T, C, v->eps);
    if (v->act == VIT_SWIGLU) {
        nn_linear_packed_forward_bf(w->mlp, 0, w->xn, bf, b->fc1, T,
                                    NN_ACT_NONE, NULL, 0);
        nn_swiglu_forward(w->mlp2, w->mlp, T, M);
        nn_linear_packed_forward_bf(w->x, 0, w->mlp2, 0, b->fc2, T,
                                    NN_ACT_NONE, b->ls2, 1);
    } else {
        nn_linear_packed_forward_bf(w->mlp, bf, w->xn, bf, b->fc1, T,
                                    v->act == VIT_QUICK_GELU
                                        ? NN_ACT_QUICK_GELU
                                        : NN_ACT_GELU,
                                    NULL, 0);
        nn_linear_packed_forward_bf(w->x, 0, w->mlp, bf, b->fc2, T,
                                    NN_ACT_NONE, b->ls2, 1);
    }
}

uad_status vit_forward(const uad_vit *v, float *const *hidden, float *last,
                       const float *img, int H, int W) {
    int C = v->info.hidden, p = v->info.patch, L = v->info.layers;
    if (H < p || W < p)
        return uad_fail(UAD_ERR_USAGE, "image %dx%d is smaller than one "
                        "%dx%d patch", W, H, p, p);
    int Np = (H / p) * (W / p), T = vit_prefix(v) + Np;
    size_t TC = (size_t)T * C;

    vit_work w;
    /* the work area is scratch, not model state: a const model may
     * still reuse it (calls are single-threaded, as the kernels are) */
    float *base = work_alloc(&w, (uad_vit *)v, T, Np);
    if (!base) return UAD_ERR_NOMEM;
    uad_status st = vit_embed(&w, v, img, H, W);
    if (st != UAD_OK) return st;
    if (hidden && hidden[0]) memcpy(hidden[0], w.x, TC * sizeof(float));
    for (int l = 0; l < L; l++) {
        vit_block_forward(&w, v, &v->blocks[l], T);
        if (hidden && hidden[l + 1])
            memcpy(hidden[l + 1], w.x, TC * sizeof(float));
    }
    if (last)
        nn_layernorm_rows_forward(last, w.x, v->norm_w, v->norm_b, T, C,
                                  v->eps);
    return UAD_OK;
}

/* Check the requested layers, then per image: forward keeping those
 * layers' tokens, optional final norm, and the patch tokens transposed
 * from (gh*gw, C) to the map (C, gh, gw). */
uad_status uad_vit_features(const uad_vit *v, float *const *out,
                            const int *layers, int n_layers, int layer_norm,
                            const float *pixels, int N, int H, int W) {
    int C = v->info.hidden, p = v->info.patch, L = v->info.layers;
    if (n_layers < 1 || N < 1)
        return uad_fail(UAD_ERR_USAGE, "features: %s", n_layers < 1
                        ? "no layers asked" : "no images");
    /* each layer in 0..L (all those out of range named at once) and
     * asked once, so at most L + 1 of them */
    char bad[160] = "";
    int n_bad = 0;
    for (int i = 0; i < n_layers; i++)
        if (layers[i] < 0 || layers[i] > L) {
            size_t at = strlen(bad);
            if (at < sizeof bad - 16)
                snprintf(bad + at, sizeof bad - at, "%s%d", n_bad ? ", " : "",
                         layers[i]);
            n_bad++;
        }
    if (n_bad)
        return uad_fail(UAD_ERR_USAGE, "features: layer%s %s %s not in 0..%d",
                        n_bad > 1 ? "s" : "", bad, n_bad > 1 ? "are" : "is",
                        L);
    for (int i = 0; i < n_layers; i++) {
        for (int j = 0; j < i; j++)
            if (layers[j] == layers[i])
                return uad_fail(UAD_ERR_USAGE, "features: layer %d is "
                                "asked twice", layers[i]);
    }
    if (H < p || W < p)
        return uad_fail(UAD_ERR_USAGE, "features: image %dx%d is smaller "
                        "than one %dx%d patch", W, H, p, p);
    int Np = (H / p) * (W / p), P = vit_prefix(v), T = P + Np;
    size_t TC = (size_t)T * C;

    float **hid = uad_calloc((size_t)L + 1, sizeof(float *));
    float *buf = uad_malloc(sizeof(float) * TC * (size_t)n_layers);
    uad_status st = hid && buf ? UAD_OK : UAD_ERR_NOMEM;
    for (int i = 0; st == UAD_OK && i < n_layers; i++)
        hid[layers[i]] = buf + TC * i;
    for (int n = 0; st == UAD_OK && n < N; n++) {
        st = vit_forward(v, hid, NULL, pixels + (size_t)n * 3 * H * W, H, W);
        for (int i = 0; st == UAD_OK && i < n_layers; i++) {
            float *tok = hid[layers[i]];
            if (layer_norm)
                nn_layernorm_rows_forward(tok, tok, v->norm_w, v->norm_b, T,
                                          C, v->eps);
            float *map = out[i] + (size_t)n * C * Np;
            for (int t = 0; t < Np; t++)
                for (int c = 0; c < C; c++)
                    map[(size_t)c * Np + t] = tok[(size_t)(P + t) * C + c];
        }
    }
    free(buf);
    free(hid);
    return st;
}

uad_status uad_vit_pooled(const uad_vit *v, float *pooled, float *embeds,
                          const float *pixels, int N, int H, int W) {
    int C = v->info.hidden, p = v->info.patch, Pd = v->info.proj_dim;
    if (N < 1) return uad_fail(UAD_ERR_USAGE, "pooled: no images");
    if (embeds && !v->proj)
        return uad_fail(UAD_ERR_USAGE, "image embeddings need CLIP's "
                        "visual_projection, which this checkpoint lacks");
    if (H < p || W < p)
        return uad_fail(UAD_ERR_USAGE, "pooled: image %dx%d is smaller "
                        "than one %dx%d patch", W, H, p, p);
    int T = vit_prefix(v) + (H / p) * (W / p);
    float *last = uad_malloc(sizeof(float) * (size_t)T * C);
    if (!last) return UAD_ERR_NOMEM;
    uad_status st = UAD_OK;
    for (int n = 0; st == UAD_OK && n < N; n++) {
        st = vit_forward(v, NULL, last, pixels + (size_t)n * 3 * H * W, H, W);
        if (st != UAD_OK) break;
        /* row 0 of the final-normed tokens: the CLS token */
        if (pooled) memcpy(pooled + (size_t)n * C, last, sizeof(float) * C);
        for (int j = 0; embeds && j < Pd; j++) {
            const float *wr = v->proj + (size_t)j * C;
            double acc = 0.0;
            for (int c = 0; c < C; c++) acc += (double)wr[c] * last[c];
            embeds[(size_t)n * Pd + j] = (float)acc;
        }
    }
    free(last);
    return st;
}

void uad_vit_get_info(const uad_vit *v, uad_vit_info *info) {
    *info = v->info;
}

/* HF CLIPImageProcessor / BitImageProcessor (DINOv2): resize so that the
 * shorter side is S and the longer int(S * long / short), bicubic;
 * centre-crop crop x crop at ((h - crop) / 2, (w - crop) / 2); then
 * (x - mean) / std. DINOv3 (S = 0): resize to crop x crop (HF uses a
 * bilinear filter there; we use the same bicubic one). HF resizes 8-bit
 * pixels with PIL; we resize the float pixels with the same antialiased
 * bicubic filter. A size > 0 resizes to size x size instead, without a
 * crop. */
uad_status uad_vit_preprocess(const uad_vit *v, float *out,
                              const uad_image *img, int size) {
    const uad_vit_info *in = &v->info;
    int S = in->resize_short, K = in->crop, w = img->w, h = img->h;
    if (img->c != 1 && img->c != 3)
        return uad_fail(UAD_ERR_DATA, "preprocess: %d channels (1 or 3 "
                        "expected)", img->c);
    int rw = w <= h ? S : (int)((double)S * w / h);
    int rh = w <= h ? (int)((double)S * h / w) : S;
    if (S == 0) rw = rh = K; /* DINOv3: a plain resize, no crop */
    if (size > 0) rw = rh = K = size;
    if (rw < K || rh < K)
        return uad_fail(UAD_ERR_DATA, "preprocess: %dx%d image is too thin "
                        "to crop %dx%d", w, h, K, K);
    float *r = uad_malloc(sizeof(float) * 3 * (size_t)rw * rh);
    if (!r) return UAD_ERR_NOMEM;
    if (nn_resize_bicubic_forward(r, img->data, img->c, h, w, rh, rw, 1)) {
        free(r);
        return uad_fail(UAD_ERR_NOMEM, "out of memory (resize)");
    }
    int top = (rh - K) / 2, left = (rw - K) / 2;
    for (int c = 0; c < 3; c++) {
        const float *src = r + (size_t)(img->c == 3 ? c : 0) * rh * rw;
        for (int y = 0; y < K; y++)
            for (int x = 0; x < K; x++)
                out[((size_t)c * K + y) * K + x] =
                    (src[(size_t)(top + y) * rw + left + x] - in->mean[c]) /
                    in->std[c];
    }
    free(r);
    return UAD_OK;
}
