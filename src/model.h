/* model.h - the multi-task discriminator's internals (not installed):
 * parameter arena, backbone, forward and backward. Shared by model.c
 * (structure, file format), backbone.c, train.c and predict.c. */
#ifndef UAD_MODEL_H
#define UAD_MODEL_H

#include "internal.h"

#define UAD_LEVELS 4          /* feature levels, like ViT blocks 3/6/9/12 */
#define UAD_GABOR_DIM 10      /* fixed features per level (backbone.c)    */
#define UAD_STEM_DIM0 16      /* channels of the stem's first conv        */
#define UAD_MODEL_FORMAT "uniadc-discriminator"
/* Version 1: built-in backbones with learnable embeddings (files of
 * such models are still written as version 1, byte for byte as before);
 * version 2 adds ViT backbones and frozen text embeddings. */
#define UAD_MODEL_FORMAT_VERSION 1
#define UAD_MODEL_FORMAT_VERSION_VIT 2
#define UAD_BN_MOMENTUM 0.1f  /* PyTorch BatchNorm2d defaults             */
#define UAD_BN_EPS 1e-5f

/* One named parameter tensor inside the arena. */
typedef struct uad_param {
    char name[48];
    int ndim;
    int64_t shape[4];
    size_t off, n;            /* offset into the arena, element count */
    int decay;                /* trained by AdamW (running stats: 0)   */
    int clip;                 /* inside the clipped "fusion" group     */
} uad_param;

/* Indices of the parameters of one residual unit: ReLU, 3x3 conv, BN. */
typedef struct uad_unit_ix {
    int conv_w, bn_w, bn_b, bn_mean, bn_var;
} uad_unit_ix;

/* Fusion block: unit on the lateral, add, unit, 1x1 conv. */
typedef struct uad_block_ix {
    uad_unit_ix lat, mix;
    int proj_w, proj_b;
} uad_block_ix;

struct uad_model {
    /* configuration */
    int width;                /* C                                     */
    int size;                 /* S: square input side                  */
    int backbone;             /* uad_backbone_kind                     */
    int n_cat;                /* Y                                     */
    char **cat;               /* category names, class id i + 1        */
    float tau;

    /* ViT backbone (backbone >= UAD_BACKBONE_DINOV2), owned */
    uad_vit *vit;
    char *vit_dir;            /* checkpoint folder as given            */
    int vit_layers[UAD_LEVELS]; /* block feeding level l (1..L)        */
    /* category embeddings from a text encoder: frozen */
    int embed_frozen;
    char *text;               /* "clip:DIR" as given, or NULL          */

    /* geometry: level 0 is the finest, grid side S / (4 << l) */
    int grid[UAD_LEVELS];
    int feat_dim[UAD_LEVELS]; /* channels entering the neck            */

    /* parameters: one arena, described by a table */
    uad_param *params;
    int n_params;
    float *arena;
    size_t n_arena;
    int neck[UAD_LEVELS];
    int stem_w[UAD_LEVELS + 1], stem_b[UAD_LEVELS + 1];
    uad_block_ix block[UAD_LEVELS]; /* block b works on level 3 - b */
    int embed, temp;
    struct uad_acts *infer;   /* batch-1 activations, made at first use */
};

/* Stem channels after conv j (j = 0..4); taps are convs 1..4. */
int uad_stem_channels(int j);

/* What the backbone kind holds. */
static inline int uad_has_gabor(const uad_model *m) {
    return m->backbone == UAD_BACKBONE_GABOR ||
           m->backbone == UAD_BACKBONE_HYBRID;
}
static inline int uad_has_stem(const uad_model *m) {
    return m->backbone == UAD_BACKBONE_STEM ||
           m->backbone == UAD_BACKBONE_HYBRID;
}
static inline int uad_has_vit(const uad_model *m) { return m->vit != NULL; }

static inline float *uad_pptr(const uad_model *m, int ix) {
    return m->arena + m->params[ix].off;
}

/* A model with m's configuration and zero parameters (checked like
 * uad_model_create); a ViT backbone is loaded from p->backbone_dir. */
uad_status uad_model_new(uad_model **out, const char *const *names, int n,
                         const uad_model_params *p);
/* The same with an already loaded ViT for a ViT kind (vit is taken
 * over: freed on failure too), NULL for the built-in kinds; embed_frozen
 * freezes the embeddings without p->embed (the model file holds them). */
uad_status uad_model_new_with(uad_model **out, const char *const *names,
                              int n, const uad_model_params *p,
                              uad_vit *vit, int embed_frozen);
/* Build the parameter table for m's configuration and allocate the arena
 * (zeroed). Fails only on allocation. */
uad_status uad_model_layout(uad_model *m);
/* Deterministic initialisation from `seed` (PyTorch-like bounds). */
void uad_model_init_params(uad_model *m, uint64_t seed);

/* ---- activations of one forward pass (batch n) ---- */

typedef struct uad_unit_act {
    float *r, *c, *y;         /* relu(x), conv(r), x + bn(c)           */
    float *mean, *rstd;       /* batch statistics (train mode)         */
} uad_unit_act;

struct uad_acts {
    int n;                    /* batch capacity                        */
    int train;
    float *block;             /* the one allocation                    */
    int fixed_given;          /* gabor[] (ViT: feat[]) already filled
                                 by the caller                         */
    /* backbone */
    float *img;               /* (n, 3, S, S) normalised input         */
    float *stem[UAD_LEVELS + 1];     /* conv j: ReLU, pooled          */
    float *stem_pre[UAD_LEVELS + 1]; /* conv j: ReLU, before pooling  */
    float *feat[UAD_LEVELS];  /* (n, D_l, R_l^2) neck inputs            */
    float *gabor[UAD_LEVELS]; /* (n, G, R_l^2) fixed features          */
    float *neck[UAD_LEVELS];  /* (n, C, R_l^2) after ReLU              */
    uad_unit_act lat[UAD_LEVELS], mix[UAD_LEVELS];
    float *path[UAD_LEVELS];  /* lateral + upsampled previous          */
    float *out[UAD_LEVELS];   /* block outputs (1x1 conv)              */
    /* head at the finest grid, then at S x S */
    float *fnorm, *norm;      /* (n, C, R0^2), (n, R0^2)               */
    float *gnorm, *gnorm_n;   /* (Y, C), (Y)                           */
    float *logit_s;           /* (n, Y, R0^2)                          */
    float *logit;             /* (n, Y, S^2)                           */
    float *prob;              /* (n, Y, S^2) sigmoid                   */
    float *det;               /* (n, S^2) mean over Y                  */
    /* gradient scratch */
    float *g[6];              /* each (n, C, R0^2)                     */
    float *gls;               /* (n, Y, R0^2)                          */
    float *gemb;              /* (Y, C)                                */
    float *gfeat;             /* (n, Dmax, R0^2)                       */
    float *gtap[UAD_LEVELS];  /* (n, Cs_{l+1}, R_l^2) stem tap grads    */
    float *gs0, *gs1, *gs2;   /* stem scratch, (n, 16, S^2) each        */
    float *glogit;            /* (n, Y, S^2)                           */
    float *gdet;              /* (n, S^2)                              */
};
typedef struct uad_acts uad_acts;

uad_status uad_acts_alloc(uad_acts *a, const uad_model *m, int n,
                          int train);
void uad_acts_free(uad_acts *a);

/* Fixed part of the backbone: img (n, 3, S, S) -> a->gabor[l]. */
void uad_backbone_fixed(uad_acts *a, const uad_model *m, int n);
/* ViT backbone: img (n, 3, S, S), normalised as the checkpoint wants,
 * -> a->feat[l] (n, hidden, S/p, S/p); sets a->fixed_given. Fails only
 * for lack of memory. (model_vit.c) */
uad_status uad_vit_backbone(uad_acts *a, const uad_model *m, int n);
/* Trainable stem forward/backward (backbone kinds with a stem). */
void uad_stem_forward(uad_acts *a, const uad_model *m, int n);
void uad_stem_backward(uad_model *m, float *grad, uad_acts *a, int n);
/* Assemble neck inputs feat[l] from gabor and stem outputs. */
void uad_backbone_gather(uad_acts *a, const uad_model *m, int n);
/* Copy the stem's share of level l's neck-input gradient (a->gfeat)
 * to a->gtap[l]. */
void uad_backbone_scatter_grad(uad_acts *a, const uad_model *m, int n,
                               int l);

/* Prepare an image for the network: resize to S x S (bilinear),
 * replicate gray to 3 channels, standardise per image; for a ViT
 * backbone uad_vit_preprocess at S x S (bicubic, the checkpoint's
 * mean/std).
 * dst: (3, S, S). Returns UAD_OK or a status for bad images. */
uad_status uad_model_prepare(float *dst, const uad_model *m,
                             const uad_image *img);

/* Forward through necks, fusion and head; fills a->logit_s, and when
 * full != 0 also logit/prob/det at S x S. */
void uad_model_forward(uad_acts *a, const uad_model *m, int n, int full);
/* Loss of a batch after a full forward, labels lab (n, S^2) with class
 * ids on anomalous pixels; writes its gradient to a->glogit. target is
 * (n, S^2) scratch. (train.c) */
float uad_model_loss(uad_acts *a, const uad_model *m, const uint8_t *lab,
                     float *target, int n, float ce_weight);
/* Backward from a->glogit (n, Y, S^2) into grad (arena-shaped). */
void uad_model_backward(uad_model *m, float *grad, uad_acts *a, int n);

#endif /* UAD_MODEL_H */
