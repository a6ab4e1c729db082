/* vit.h - the ViT backbones' internals, shared by vit.c (forward) and
 * vit_load.c (config.json and safetensors loaders); not installed. */
#ifndef UAD_VIT_H
#define UAD_VIT_H

#include "nn.h"
#include "uniadc.h"

#include <stddef.h>

typedef enum vit_act {
    VIT_GELU = 0,        /* erf GELU (DINOv2, some CLIP)            */
    VIT_QUICK_GELU = 1,  /* x * sigmoid(1.702 x) (OpenAI CLIP)      */
    VIT_SWIGLU = 2       /* silu(x1) * x2: DINOv2 giant weights_in /
                            weights_out, DINOv3 gate_proj / up_proj */
} vit_act;

/* One pre-norm block (HF Dinov2Layer / CLIPEncoderLayer). */
typedef struct vit_block {
    float *norm1_w, *norm1_b;   /* (C)                               */
    float *qkv_b;               /* (3C): query, key, value biases    */
    float *proj_b;              /* (C): attention output             */
    float *ls1, *ls2;           /* (C) layer scale, NULL for CLIP     */
    float *norm2_w, *norm2_b;   /* (C)                               */
    float *fc1_b;               /* (M) or SwiGLU (2M)                */
    float *fc2_b;               /* (C)                               */
    /* the four linear layers: weights packed for the matmul while the
     * block loads (the only copy), the biases above read in place */
    nn_linear_packed *qkv, *proj, *fc1, *fc2;
} vit_block;

struct uad_vit {
    uad_vit_info info;
    vit_act act;
    float eps;
    int pos_grid;               /* native position grid side          */
    int pos_antialias;          /* resize pos. grid with antialias    */
    int rope;                   /* DINOv3: rotary, no pos. table      */
    double rope_theta;          /* RoPE base period                   */
    float *cls;                 /* (C)                                */
    float *reg;                 /* (R, C) or NULL                     */
    float *pos;                 /* (1 + G*G, C), NULL with RoPE       */
    float *patch_w, *patch_b;   /* (C, 3*p*p), (C) or NULL            */
    float *pre_w, *pre_b;       /* CLIP pre_layrnorm, else NULL       */
    float *norm_w, *norm_b;     /* final norm                        */
    float *proj;                /* CLIP visual_projection (P, C)      */
    vit_block *blocks;          /* (L)                                */
    float *arena;               /* every tensor above lives here      */
    float *work;                /* forward buffers, kept between calls */
    size_t work_n;              /* their size in floats               */
};

/* Tokens before the patches: CLS and the registers. */
static inline int vit_prefix(const uad_vit *v) {
    return 1 + v->info.registers;
}

/* One image through the network. img(3, H, W) normalised; T = prefix +
 * (H/p)(W/p) tokens. hidden has L + 1 entries, each NULL or a (T, C)
 * buffer: entry 0 receives the embedding output (after CLIP's
 * pre_layrnorm), entry i block i's output (HF hidden_states[i]). last
 * (T, C), or NULL, receives every token of the last block through the
 * final norm (DINOv2 last_hidden_state; CLIP post_layernorm, which HF
 * applies to the CLS token only). Fails only for lack of memory or an
 * image smaller than one patch. */
uad_status vit_forward(const uad_vit *v, float *const *hidden, float *last,
                       const float *img, int H, int W);

#endif
