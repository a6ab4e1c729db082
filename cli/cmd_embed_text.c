/* cmd_embed_text.c - `uniadc embed-text`: CLIP or dino.txt text embeddings of texts
 * and of the categories of a priors file, as safetensors, with the token
 * ids, for users' own tooling and for checks against other
 * implementations. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char *k_usage =
    "usage: uniadc embed-text --text clip:DIR|dinotxt:DIR [TEXT...]\n"
    "                         [--priors FILE] --out FILE.safetensors [--bf16]\n"
    "                         [--quiet] [--verbose]\n\n"
    "clip:DIR is a Hugging Face CLIP checkpoint (config.json,\n"
    "model.safetensors, vocab.json, merges.txt); dinotxt:DIR is DINOv3's\n"
    "dino.txt text encoder (model.safetensors with the released keys,\n"
    "bpe_simple_vocab_16e6.txt.gz, optional config.json). Writes to OUT:\n"
    "  text_embeds (N, P) F32   each TEXT's projected embedding at the end\n"
    "                           token, not normalised (get_text_features,\n"
    "                           dino.txt's encode_text)\n"
    "  input_ids (N, 77) I32    its token ids, padded with <|endoftext|>\n"
    "                           (CLIP) or 0 (dino.txt), as each reference\n"
    "  category_embeds (Y, P) F32   with --priors: per category, the ten\n"
    "                           prompt templates filled with its name and\n"
    "                           each description, embedded, L2-normalised,\n"
    "                           averaged and L2-normalised again\n"
    "and as metadata the texts, categories and templates (JSON arrays).\n"
    "--bf16: bf16 matmul inputs, f32 accumulation (AVX-512 CPUs; fastest\n"
    "with AVX-512 bf16 or AMX).\n"
    "Common options: --seed (unused here), --quiet, --verbose, --help.\n";

/* "clip:DIR" or "dinotxt:DIR" -> DIR, or NULL. */
static const char *text_dir(const char *spec) {
    const char *dir = NULL;
    return uad_text_parse_spec(NULL, &dir, spec) == UAD_OK ? dir : NULL;
}

/* A JSON array of strings, escaped; caller frees. */
static char *json_strings(const char *const *s, int n) {
    size_t cap = 16;
    for (int i = 0; i < n; i++) cap += 6 * strlen(s[i]) + 4;
    char *out = malloc(cap), *p = out;
    if (!out) return NULL;
    *p++ = '[';
    for (int i = 0; i < n; i++) {
        p += sprintf(p, "%s\"", i ? ", " : "");
        for (const unsigned char *c = (const unsigned char *)s[i]; *c; c++) {
            if (*c == '"' || *c == '\\') p += sprintf(p, "\\%c", *c);
            else if (*c < 0x20) p += sprintf(p, "\\u%04x", *c);
            else *p++ = (char)*c;
        }
        *p++ = '"';
    }
    strcpy(p, "]");
    return out;
}

static uad_status add_meta(uad_st_writer *w, const char *key,
                           const char *const *s, int n) {
    char *j = json_strings(s, n);
    uad_status st = j ? uad_st_writer_meta(w, key, j) : UAD_ERR_NOMEM;
    free(j);
    return st;
}

/* Embed the texts into w (text_embeds, input_ids). */
static uad_status embed_texts(uad_st_writer *w, const uad_clip_text *m,
                              char *const *texts, int n) {
    int P = uad_clip_text_embed_dim(m);
    float *e = calloc((size_t)n * P, sizeof *e);
    int32_t *ids = calloc((size_t)n * UAD_CLIP_CONTEXT, sizeof *ids);
    uad_status st = e && ids ? UAD_OK : UAD_ERR_NOMEM;
    if (st == UAD_OK)
        st = uad_clip_text_encode_batch(e, ids, m,
                                        (const char *const *)texts, n);
    int64_t se[2] = {n, P}, si[2] = {n, UAD_CLIP_CONTEXT};
    if (st == UAD_OK) st = uad_st_writer_add(w, "text_embeds", UAD_DT_F32, 2,
                                             se, e);
    if (st == UAD_OK) st = uad_st_writer_add(w, "input_ids", UAD_DT_I32, 2,
                                             si, ids);
    if (st == UAD_OK)
        st = add_meta(w, "texts", (const char *const *)texts, n);
    free(e);
    free(ids);
    return st;
}

/* Embed every category of a priors file into w (category_embeds). */
static uad_status embed_priors(uad_st_writer *w, const uad_clip_text *m,
                               const char *path) {
    uad_priors *pri = NULL;
    uad_status st = uad_priors_load(&pri, path);
    if (st != UAD_OK) return st;
    int Y = pri->n_categories, P = uad_clip_text_embed_dim(m);
    float *g = calloc((size_t)Y * P, sizeof *g);
    const char **names = calloc((size_t)Y + 1, sizeof *names);
    if (!g || !names) st = UAD_ERR_NOMEM;
    for (int y = 0; st == UAD_OK && y < Y; y++) {
        const uad_category *c = &pri->categories[y];
        names[y] = c->name;
        st = uad_clip_category_embedding(g + (size_t)y * P, m, c->name,
                                         (const char *const *)c->descriptions,
                                         c->n_descriptions);
    }
    int64_t shape[2] = {Y, P};
    if (st == UAD_OK)
        st = uad_st_writer_add(w, "category_embeds", UAD_DT_F32, 2, shape, g);
    if (st == UAD_OK) st = add_meta(w, "categories", names, Y);
    free(g);
    free(names);
    uad_priors_free(pri);
    return st;
}

int cmd_embed_text(int argc, char **argv) {
    static struct option opts[] = {
        {"text", required_argument, 0, 't'},
        {"priors", required_argument, 0, 'p'},
        {"out", required_argument, 0, 'o'},
        {"bf16", no_argument, 0, 'F'},
        CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    cli_common com = {0, 1};
    const char *spec = NULL, *pri_path = NULL, *out = NULL;
    int opt, bf16 = 0;
    while ((opt = cli_next_opt(argc, argv, opts, &com, "embed-text", k_usage)) > 0) {
        switch (opt) {
        case 't': spec = optarg; break;
        case 'p': pri_path = optarg; break;
        case 'o': out = optarg; break;
        case 'F': bf16 = 1; break;
        }
    }
    if (opt < 0) return -opt;
    if (!spec || !out)
        return cli_usage_error("embed-text", k_usage,
                               "--text and --out are required");
    if (!text_dir(spec))
        return cli_usage_error("embed-text", k_usage, "--text wants clip:DIR "
                               "or dinotxt:DIR, got '%s'", spec);
    int n = argc - optind;
    if (n == 0 && !pri_path)
        return cli_usage_error("embed-text", k_usage, "give a TEXT or "
                               "--priors");
    int rc = cli_check_output("embed-text", out);
    if (rc) return rc;
    cli_common_apply(&com);
    if (bf16 && uad_set_bf16(1) != UAD_OK) return cli_fail(UAD_ERR_USAGE);

    uad_clip_text *m = NULL;
    uad_st_writer *w = uad_st_writer_create();
    uad_status st = w ? uad_text_load(&m, spec) : UAD_ERR_NOMEM;
    if (st == UAD_OK) st = uad_st_writer_meta(w, "format",
                                              "uniadc-text-embeddings");
    if (st == UAD_OK) st = uad_st_writer_meta(w, "model", text_dir(spec));
    if (st == UAD_OK) st = uad_st_writer_meta(w, "text", spec);
    if (st == UAD_OK && n > 0) st = embed_texts(w, m, argv + optind, n);
    if (st == UAD_OK && pri_path) st = embed_priors(w, m, pri_path);
    if (st == UAD_OK) {
        const char *tpl[UAD_CLIP_N_TEMPLATES];
        for (int i = 0; i < UAD_CLIP_N_TEMPLATES; i++)
            tpl[i] = uad_clip_template(i);
        st = add_meta(w, "templates", tpl, UAD_CLIP_N_TEMPLATES);
    }
    if (st == UAD_OK) st = uad_st_writer_save(w, out);
    uad_st_writer_free(w);
    uad_clip_text_free(m);
    return st == UAD_OK ? 0 : cli_fail(st);
}
