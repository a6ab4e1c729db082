/* cmd_features.c - `uniadc features`: patch-token feature maps of a
 * pretrained ViT (DINOv2, DINOv3, CLIP) as safetensors, for users' own tooling
 * and for checking against other implementations. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char *k_usage =
    "usage: uniadc features --backbone dinov2:DIR|dinov3:DIR|clip:DIR\n"
    "                       [--layers 3,6,9,12] [--no-norm] [--size S]\n"
    "                       [--pooled]\n"
    "                       (IMAGE... | --pixel-values FILE)\n"
    "                       --out FILE.safetensors [--bf16] [--quiet]\n"
    "                       [--verbose]\n\n"
    "DIR holds the Hugging Face checkpoint: config.json and "
    "model.safetensors.\n"
    "--layers   blocks whose patch tokens are written, 1..L (0 = the\n"
    "           embeddings); default four evenly spaced (3,6,9,12 of 12).\n"
    "--no-norm  raw tokens (default: through the model's final layer "
    "norm).\n"
    "--size S   resize images to S x S (no crop) instead of the official\n"
    "           recipe (DINOv2: shorter side 256, centre crop 224,\n"
    "           ImageNet mean/std; DINOv3: 224 x 224, ImageNet mean/std;\n"
    "           CLIP: shorter side and crop at the model's image_size,\n"
    "           CLIP mean/std; bicubic resize).\n"
    "--pixel-values FILE  an already-preprocessed float tensor (N, 3, H, W)\n"
    "           named pixel_values (or the file's only tensor); H and W\n"
    "           need not match the native size (position embeddings are\n"
    "           resized as the reference does).\n"
    "--pooled   also pooled (N, C): the CLS token after the final norm\n"
    "           (pooler_output), and for CLIP image_embeds (N, P): its\n"
    "           visual_projection (get_image_features); runs the network\n"
    "           once more.\n"
    "--bf16     bf16 matmul inputs, f32 accumulation (AVX-512 CPUs;\n"
    "           fastest with AVX-512 bf16 or AMX).\n"
    "Writes features.<block> (N, C, H/p, W/p) F32 tensors in one file.\n";

/* "3,6,9" -> layers; count or -1 on a bad list. */
static int parse_layers(int *layers, int max, const char *s) {
    int n = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 100000 || n == max) return -1;
        layers[n++] = (int)v;
        if (*end == ',') end++;
        else if (*end) return -1;
        s = end;
    }
    return n ? n : -1;
}

/* The pixels: from --pixel-values, or every image preprocessed. */
static uad_status load_pixels(float **pix, int *N, int *H, int *W,
                              const uad_vit *v, const char *pv,
                              char **images, int n_img, int size) {
    if (pv) {
        uad_safetensors *st;
        uad_status s = uad_st_open(&st, pv);
        if (s != UAD_OK) return s;
        const uad_st_tensor *t = uad_st_find(st, "pixel_values");
        if (!t && uad_st_count(st) == 1) t = uad_st_tensor_at(st, 0);
        if (!t || t->ndim != 4 || t->shape[1] != 3 || t->shape[0] < 1 ||
            t->shape[2] < 1 || t->shape[3] < 1 || t->shape[2] > 16384 ||
            t->shape[3] > 16384 || t->shape[0] > 100000) {
            uad_st_free(st);
            fprintf(stderr, "uniadc: error: %s: no pixel_values tensor "
                    "of shape (N, 3, H, W)\n", pv);
            *N = -1; /* reported here */
            return UAD_ERR_FORMAT;
        }
        *N = (int)t->shape[0], *H = (int)t->shape[2], *W = (int)t->shape[3];
        *pix = malloc(sizeof(float) * uad_st_numel(t));
        s = *pix ? uad_st_to_f32(t, *pix) : UAD_ERR_NOMEM;
        uad_st_free(st);
        return s;
    }
    uad_vit_info in;
    uad_vit_get_info(v, &in);
    int K = size > 0 ? size : in.crop;
    *N = n_img, *H = *W = K;
    *pix = malloc(sizeof(float) * 3 * (size_t)K * K * n_img);
    if (!*pix) return UAD_ERR_NOMEM;
    /* every image is tried, so that all bad ones are named at once */
    uad_status first = UAD_OK;
    for (int i = 0; i < n_img; i++) {
        uad_image img;
        uad_status s = uad_image_load(&img, images[i], NULL);
        if (s == UAD_OK) {
            s = uad_vit_preprocess(v, *pix + (size_t)i * 3 * K * K, &img,
                                   size);
            uad_image_free(&img);
        }
        if (s != UAD_OK) {
            fprintf(stderr, "uniadc: error: %s\n", uad_last_error());
            if (first == UAD_OK) first = s;
        }
    }
    if (first != UAD_OK) *N = -1; /* reported here */
    return first;
}

/* Run the backbone and write one tensor per layer, with metadata. */
/* pooled (N, C) and, with a projection, image_embeds (N, P) into w. */
static uad_status add_pooled(uad_st_writer *w, const uad_vit *v,
                             const float *pix, int N, int H, int W) {
    uad_vit_info in;
    uad_vit_get_info(v, &in);
    int P = in.proj_dim;
    float *pool = malloc(sizeof(float) * (size_t)N * in.hidden);
    float *emb = P ? malloc(sizeof(float) * (size_t)N * P) : NULL;
    uad_status st = pool && (!P || emb) ? UAD_OK : UAD_ERR_NOMEM;
    if (st == UAD_OK) st = uad_vit_pooled(v, pool, emb, pix, N, H, W);
    int64_t sp[2] = {N, in.hidden}, se[2] = {N, P};
    if (st == UAD_OK)
        st = uad_st_writer_add(w, "pooled", UAD_DT_F32, 2, sp, pool);
    if (st == UAD_OK && P)
        st = uad_st_writer_add(w, "image_embeds", UAD_DT_F32, 2, se, emb);
    free(pool);
    free(emb);
    return st;
}

static uad_status write_features(const uad_vit *v, const char *spec,
                                 const int *layers, int nl, int norm,
                                 int pooled, const float *pix, int N, int H,
                                 int W, const char *out) {
    uad_vit_info in;
    uad_vit_get_info(v, &in);
    int gh = H / in.patch, gw = W / in.patch;
    size_t per = (size_t)N * in.hidden * gh * gw;
    float *maps[64] = {0};
    uad_status st = UAD_OK;
    for (int i = 0; i < nl && st == UAD_OK; i++)
        if (!(maps[i] = malloc(sizeof(float) * (per ? per : 1))))
            st = UAD_ERR_NOMEM;
    if (st == UAD_OK)
        st = uad_vit_features(v, maps, layers, nl, norm, pix, N, H, W);
    uad_st_writer *w = uad_st_writer_create();
    int64_t shape[4] = {N, in.hidden, gh, gw};
    char name[32], list[512] = "";
    for (int i = 0; st == UAD_OK && i < nl; i++) {
        snprintf(name, sizeof name, "features.%d", layers[i]);
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d",
                 i ? "," : "", layers[i]);
        st = uad_st_writer_add(w, name, UAD_DT_F32, 4, shape, maps[i]);
    }
    if (st == UAD_OK && pooled) st = add_pooled(w, v, pix, N, H, W);
    if (st == UAD_OK) st = uad_st_writer_meta(w, "backbone", spec);
    if (st == UAD_OK) st = uad_st_writer_meta(w, "layers", list);
    if (st == UAD_OK) st = uad_st_writer_meta(w, "layer_norm", norm ? "1" : "0");
    if (st == UAD_OK) st = uad_st_writer_save(w, out);
    uad_st_writer_free(w);
    for (int i = 0; i < nl; i++) free(maps[i]);
    return st;
}

int cmd_features(int argc, char **argv) {
    static struct option opts[] = {
        {"backbone", required_argument, 0, 'b'},
        {"layers", required_argument, 0, 'l'},
        {"no-norm", no_argument, 0, 'N'},
        {"size", required_argument, 0, 's'},
        {"pixel-values", required_argument, 0, 'p'},
        {"out", required_argument, 0, 'o'},
        {"bf16", no_argument, 0, 'F'},
        {"pooled", no_argument, 0, 'P'},
        CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    cli_common com = {0, 1};
    const char *spec = NULL, *lay = NULL, *pv = NULL, *out = NULL;
    int norm = 1, size = 0, bf16 = 0, pooled = 0, opt;
    while ((opt = cli_next_opt(argc, argv, opts, &com, "features", k_usage)) > 0) {
        switch (opt) {
        case 'b': spec = optarg; break;
        case 'l': lay = optarg; break;
        case 'N': norm = 0; break;
        case 'p': pv = optarg; break;
        case 'o': out = optarg; break;
        case 'F': bf16 = 1; break;
        case 'P': pooled = 1; break;
        case 's': {
            long v = cli_parse_long(optarg);
            if (v < 1 || v > 8192)
                return cli_usage_error("features", k_usage, "--size wants "
                                       "an integer in 1..8192");
            size = (int)v;
            break;
        }
        }
    }
    if (opt < 0) return -opt;
    int n_img = argc - optind;
    if (!spec || !out)
        return cli_usage_error("features", k_usage, "--backbone and --out "
                               "are required");
    if ((n_img > 0) == (pv != NULL))
        return cli_usage_error("features", k_usage, "give images or "
                               "--pixel-values, not both or neither");
    int layers[64], nl = 0;
    if (lay && (nl = parse_layers(layers, 64, lay)) < 0)
        return cli_usage_error("features", k_usage, "--layers wants a "
                               "comma-separated list of block numbers");
    int rc = cli_check_output("features", out);
    if (rc) return rc;
    cli_common_apply(&com);
    if (bf16 && uad_set_bf16(1) != UAD_OK) return cli_fail(UAD_ERR_USAGE);

    uad_vit *v = NULL;
    float *pix = NULL;
    int N = 0, H = 0, W = 0;
    uad_status st = uad_vit_load_spec(&v, spec);
    if (st == UAD_OK && !lay) {
        /* four evenly spaced blocks: L/4, L/2, 3L/4, L (fewer when L < 4) */
        uad_vit_info in;
        uad_vit_get_info(v, &in);
        for (int k = 1; k <= 4; k++) {
            int l = (in.layers * k + 2) / 4;
            if (l >= 1 && (nl == 0 || layers[nl - 1] != l)) layers[nl++] = l;
        }
    }
    if (st == UAD_OK)
        st = load_pixels(&pix, &N, &H, &W, v, pv, argv + optind, n_img, size);
    if (st == UAD_OK)
        st = write_features(v, spec, layers, nl, norm, pooled, pix, N, H, W,
                            out);
    free(pix);
    uad_vit_free(v);
    if (st != UAD_OK && N < 0) return (int)st;
    return st == UAD_OK ? 0 : cli_fail(st);
}
