/* model_vit.c - the discriminator on a pretrained backbone (SPEC section
 * 6, issue 6): a frozen ViT's patch tokens as the four feature levels,
 * and frozen category embeddings from a text encoder (CLIP or dino.txt). Only the
 * public uad_vit_* and uad_clip_* calls are used. */
#include "model.h"

#include <string.h>

uad_status uad_vit_backbone(uad_acts *a, const uad_model *m, int n) {
    uad_vit_info in;
    uad_vit_get_info(m->vit, &in);
    int S = m->size, g = m->grid[0];
    size_t per = (size_t)n * in.hidden * g * g;

    /* A checkpoint with fewer than four blocks feeds some levels from the
     * same block: each block runs once, its maps are then copied. */
    float *outs[UAD_LEVELS];
    int layers[UAD_LEVELS], nu = 0;
    for (int l = 0; l < UAD_LEVELS; l++) {
        if (nu && layers[nu - 1] == m->vit_layers[l]) continue;
        layers[nu] = m->vit_layers[l];
        outs[nu++] = a->feat[l];
    }
    uad_status st = uad_vit_features(m->vit, outs, layers, nu, 1, a->img, n,
                                     S, S);
    if (st) return st;
    for (int l = 1; l < UAD_LEVELS; l++)
        if (m->vit_layers[l] == m->vit_layers[l - 1])
            memcpy(a->feat[l], a->feat[l - 1], per * sizeof(float));
    a->fixed_given = 1;
    return UAD_OK;
}

uad_status uad_text_category_embeddings(float **out, int *dim,
                                        const char *spec,
                                        const uad_priors *pri) {
    *out = NULL;
    *dim = 0;
    uad_clip_text *ct = NULL;
    uad_status st = uad_text_load(&ct, spec);
    if (st) return st;
    int P = uad_clip_text_embed_dim(ct), Y = pri->n_categories;
    float *e = uad_malloc((size_t)Y * P * sizeof *e);
    if (!e) st = UAD_ERR_NOMEM;
    for (int y = 0; !st && y < Y; y++) {
        const uad_category *c = &pri->categories[y];
        st = uad_clip_category_embedding(e + (size_t)y * P, ct, c->name,
                                         (const char *const *)c->descriptions,
                                         c->n_descriptions);
        uad_progress("text embeddings", (size_t)y + 1, (size_t)Y);
    }
    uad_clip_text_free(ct);
    if (st) {
        free(e);
        return st;
    }
    *out = e;
    *dim = P;
    return UAD_OK;
}
