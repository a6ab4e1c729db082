/* test_clip_text.c - the CLIP text tower against a plain PyTorch
 * implementation of the published definition on random weights
 * (scripts/make_clip_text_refs.py wrote tests/data/clip_text/): the
 * embeddings and every layer's output, the final layer norm, the
 * projected embedding at the end token, the category embedding over the
 * ten templates; then bad checkpoints. Tolerances are for f32 compute. */
#include "check.h"
#include "nn.h"
#include "testutil.h"
#include "uniadc.h"

#include <stdint.h>
#include <sys/wait.h>

#define REFDIR UAD_SOURCE_DIR "/tests/data/clip_text"

/* Largest |a - b| relative to the largest |b| (the tensor's scale), and
 * the largest |a - b| / (|b| + 1e-3) over elements, printed. */
static double compare(const char *what, const float *a, const float *b,
                      size_t n) {
    double max_abs = 0.0, max_ref = 0.0, max_rel = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= max_abs)) max_abs = d;  /* NaN propagates */
        if (fabs(b[i]) > max_ref) max_ref = fabs(b[i]);
        double r = d / (fabs(b[i]) + 1e-3);
        if (!(r <= max_rel)) max_rel = r;
    }
    printf("  %-24s max abs err %.3g (scale %.3g), max rel err %.3g\n", what,
           max_abs, max_ref, max_rel);
    return max_abs / (max_ref > 0 ? max_ref : 1.0);
}

static const float *ref_f32(const uad_safetensors *st, const char *name,
                            size_t numel) {
    const uad_st_tensor *t = uad_st_find(st, name);
    CHECK(t && t->dtype == UAD_DT_F32 && uad_st_numel(t) == numel);
    return t && t->dtype == UAD_DT_F32 && uad_st_numel(t) == numel
               ? (const float *)t->data : NULL;
}

/* Relative to each tensor's scale: f32 kernels differ from PyTorch's
 * only by summation order, about 1e-6 here; 2e-5 leaves room for other
 * BLAS paths without hiding a wrong operation (those give 1e-1 or more). */
#define TOL_F32 2e-5
/* bf16 matmul inputs keep 8 mantissa bits (relative error 2^-9 each),
 * compounded over two layers; wrong operations still give 1e-1 or more. */
#define TOL_BF16 3e-2

/* The same texts with bf16 matmuls, where the CPU has them. */
static void check_bf16(const uad_clip_text *m, const int32_t *ids,
                       const float *emb, const float *last, int N) {
    if (nn_set_precision(NN_BF16) != 0) {
        printf("bf16 not supported on this CPU: bf16 parity skipped\n");
        return;
    }
    int T = uad_clip_text_context(m), C = uad_clip_text_width(m);
    int P = uad_clip_text_embed_dim(m);
    float e[64], *l = malloc(sizeof(float) * (size_t)T * C);
    printf("bf16 compute:\n");
    for (int n = 0; n < N; n++) {
        CHECK(uad_clip_text_forward(e, NULL, l, m, ids + (size_t)n * T, T) ==
              UAD_OK);
        CHECK(compare("final layer norm", l, last + (size_t)n * T * C,
                      (size_t)T * C) <= TOL_BF16);
        CHECK(compare("text embedding", e, emb + (size_t)n * P, P) <=
              TOL_BF16);
    }
    free(l);
    nn_set_precision(NN_F32);
}

static void test_parity(void) {
    uad_clip_text *m = NULL;
    CHECK(uad_clip_text_load(&m, REFDIR) == UAD_OK);
    if (!m) {
        fprintf(stderr, "%s\n", uad_last_error());
        return;
    }
    int C = uad_clip_text_width(m), L = uad_clip_text_layers(m);
    int P = uad_clip_text_embed_dim(m), T = uad_clip_text_context(m);
    CHECK(C == 48 && L == 2 && P == 24 && T == 77);

    uad_safetensors *ref = NULL;
    CHECK(uad_st_open(&ref, REFDIR "/refs.safetensors") == UAD_OK);
    if (!ref) return;
    const uad_st_tensor *ids_t = uad_st_find(ref, "input_ids");
    CHECK(ids_t && ids_t->dtype == UAD_DT_I32 && ids_t->ndim == 2);
    if (!ids_t) return;
    int N = (int)ids_t->shape[0];
    const int32_t *ids = ids_t->data;
    const int32_t *used = uad_st_find(ref, "n_used")->data;
    const float *hid = ref_f32(ref, "hidden", (size_t)N * (L + 1) * T * C);
    const float *last = ref_f32(ref, "last", (size_t)N * T * C);
    const float *emb = ref_f32(ref, "embeds", (size_t)N * P);
    const float *cat = ref_f32(ref, "category", (size_t)P);
    if (!hid || !last || !emb || !cat) return;

    static const char *texts[] = {
        "a photo of a scratch", "don't stop, it's 2024... we'll see", NULL};
    char long_text[1024] = "";
    for (int i = 0; i < 30; i++) strcat(long_text, "a photo of a scratch ");
    texts[2] = long_text;
    CHECK(N == 3);

    float *h = malloc(sizeof(float) * (size_t)(L + 1) * T * C);
    float *l = malloc(sizeof(float) * (size_t)T * C);
    float e[64], e2[64];
    for (int n = 0; n < N && n < 3; n++) {
        const int32_t *in = ids + (size_t)n * T;
        printf("text %d (%d tokens):\n", n, used[n]);

        /* Our tokenizer gives the reference's ids. */
        int32_t mine[UAD_CLIP_CONTEXT];
        CHECK(uad_clip_text_encode(e2, mine, m, texts[n]) == UAD_OK);
        CHECK(memcmp(mine, in, sizeof mine) == 0);

        /* All 77 positions, padding included, as the reference ran. */
        CHECK(uad_clip_text_forward(e, h, l, m, in, T) == UAD_OK);
        for (int k = 0; k <= L; k++) {
            char what[32];
            snprintf(what, sizeof what, k ? "layer %d output" : "embeddings",
                     k);
            size_t o = ((size_t)n * (L + 1) + k) * T * C;
            CHECK(compare(what, h + (size_t)k * T * C, hid + o,
                          (size_t)T * C) <= TOL_F32);
        }
        CHECK(compare("final layer norm", l, last + (size_t)n * T * C,
                      (size_t)T * C) <= TOL_F32);
        CHECK(compare("text embedding", e, emb + (size_t)n * P, P) <= TOL_F32);
        /* Only the first n_used ids (uad_clip_text_encode): the causal
         * mask makes the padding irrelevant. */
        CHECK(compare("embedding, no padding", e2, emb + (size_t)n * P, P) <=
              TOL_F32);
    }

    /* All three texts packed in one pass give the same embeddings. */
    float eb[3 * 64];
    int32_t idb[3 * UAD_CLIP_CONTEXT];
    printf("batch of 3:\n");
    CHECK(uad_clip_text_encode_batch(eb, idb, m, texts, 3) == UAD_OK);
    CHECK(compare("text embeddings", eb, emb, 3 * (size_t)P) <= TOL_F32);
    CHECK(memcmp(idb, ids, sizeof idb) == 0);
    const char *with_bad[] = {"fine", "bad \xff"};
    CHECK(uad_clip_text_encode_batch(eb, NULL, m, with_bad, 2) ==
          UAD_ERR_DATA);

    check_bf16(m, ids, emb, last, N);

    const char *desc[] = {"a large crack", "a missing piece"};
    CHECK(uad_clip_category_embedding(e, m, "broken_large", desc, 2) ==
          UAD_OK);
    CHECK(compare("category embedding", e, cat, P) <= TOL_F32);
    double norm = 0.0;
    for (int i = 0; i < P; i++) norm += (double)e[i] * e[i];
    CHECK_NEAR(sqrt(norm), 1.0, 1e-6);
    CHECK(strcmp(uad_clip_template(0), "a photo of %s") == 0);
    CHECK(uad_clip_template(10) == NULL && uad_clip_template(-1) == NULL);

    /* Bad calls. */
    int32_t bad[3] = {uad_clip_start_id(uad_clip_text_tokenizer(m)), 660, 5};
    CHECK(uad_clip_text_forward(e, NULL, NULL, m, bad, 3) == UAD_ERR_DATA);
    CHECK_STR_CONTAINS(uad_last_error(), "token id 660 at position 1");
    CHECK(uad_clip_text_forward(e, NULL, NULL, m, ids, 0) == UAD_ERR_USAGE);
    CHECK(uad_clip_text_forward(e, NULL, NULL, m, ids, 78) == UAD_ERR_USAGE);
    CHECK(uad_clip_text_encode(e, NULL, m, "bad \xff") == UAD_ERR_DATA);
    free(h);
    free(l);
    uad_st_free(ref);
    uad_clip_text_free(m);
}

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    if (!a || !b) {
        perror(from);
        exit(2);
    }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
    fclose(a);
    fclose(b);
}

/* src_dir/model.safetensors rewritten into dir without `drop`, with
 * `reshape` flattened to 1-D, an extra tensor `extra`, and `as_i32`
 * stored as I32 (each NULL for no change). */
static void copy_weights(const char *src_dir, const char *dir,
                         const char *drop, const char *reshape,
                         const char *extra, const char *as_i32) {
    uad_safetensors *st = NULL;
    if (uad_st_open(&st, tu_fmt("%s/model.safetensors", src_dir)) != UAD_OK)
        exit(2);
    uad_st_writer *w = uad_st_writer_create();
    for (size_t i = 0; i < uad_st_count(st); i++) {
        const uad_st_tensor *t = uad_st_tensor_at(st, i);
        if (drop && !strcmp(t->name, drop)) continue;
        int64_t flat = (int64_t)uad_st_numel(t);
        int ndim = reshape && !strcmp(t->name, reshape) ? 1 : t->ndim;
        uad_dtype dt = as_i32 && !strcmp(t->name, as_i32) ? UAD_DT_I32
                                                          : t->dtype;
        uad_st_writer_add(w, t->name, dt, ndim, ndim == 1 ? &flat : t->shape,
                          t->data);
    }
    if (extra) {
        int64_t one = 1;
        float v = 0.0f;
        uad_st_writer_add(w, extra, UAD_DT_F32, 1, &one, &v);
    }
    if (uad_st_writer_save(w, tu_fmt("%s/model.safetensors", dir)) != UAD_OK)
        exit(2);
    uad_st_writer_free(w);
    uad_st_free(st);
}

/* A copy of the reference checkpoint in a fresh directory with its
 * weights changed as copy_weights does. */
static char *bad_checkpoint(const char *drop, const char *reshape,
                            const char *extra, const char *as_i32) {
    char *dir = tu_tmpdir("cliptext");
    const char *files[] = {"config.json", "vocab.json", "merges.txt"};
    for (int i = 0; i < 3; i++)
        copy_file(tu_fmt("%s/%s", REFDIR, files[i]),
                  tu_fmt("%s/%s", dir, files[i]));
    copy_weights(REFDIR, dir, drop, reshape, extra, as_i32);
    return dir;
}

typedef uad_status (*text_loader)(uad_clip_text **, const char *);

/* load(dir) fails with `want`, leaves no model and says `msg`. */
static void expect_error_of(text_loader load, const char *dir,
                            uad_status want, const char *msg) {
    uad_clip_text *m = NULL;
    CHECK(load(&m, dir) == want);
    CHECK(m == NULL);
    CHECK_STR_CONTAINS(uad_last_error(), msg);
    uad_clip_text_free(m);
}

static void expect_load_error(const char *dir, uad_status want,
                              const char *msg) {
    expect_error_of(uad_clip_text_load, dir, want, msg);
}

static void test_bad_checkpoints(void) {
    const char *q = "text_model.encoder.layers.1.self_attn.q_proj.weight";
    char *d = bad_checkpoint(NULL, NULL, NULL, NULL);
    uad_clip_text *m = NULL;
    CHECK(uad_clip_text_load(&m, d) == UAD_OK);  /* the copy itself loads */
    uad_clip_text_free(m);
    free(d);

    d = bad_checkpoint(q, NULL, NULL, NULL);
    expect_load_error(d, UAD_ERR_FORMAT, tu_fmt("missing tensor %s", q));
    free(d);
    d = bad_checkpoint(NULL, "text_projection.weight", NULL, NULL);
    expect_load_error(d, UAD_ERR_FORMAT, "text_projection.weight has shape "
                      "[1152], expected [24, 48]");
    free(d);
    d = bad_checkpoint(NULL, NULL, "text_model.pooler.weight", NULL);
    expect_load_error(d, UAD_ERR_FORMAT,
                      "unexpected tensor text_model.pooler.weight");
    free(d);
    d = bad_checkpoint(NULL, NULL, NULL, "text_model.final_layer_norm.bias");
    expect_load_error(d, UAD_ERR_FORMAT, "final_layer_norm.bias has dtype "
                      "I32");
    free(d);
    /* Several problems are listed together. */
    d = bad_checkpoint(q, NULL, "extra.weight", NULL);
    expect_load_error(d, UAD_ERR_FORMAT, "2 problem(s)");
    CHECK_STR_CONTAINS(uad_last_error(), "unexpected tensor extra.weight");
    CHECK_STR_CONTAINS(uad_last_error(), "model.safetensors");
    free(d);

    d = bad_checkpoint(NULL, NULL, NULL, NULL);
    FILE *f = fopen(tu_fmt("%s/config.json", d), "w");
    fputs("{\"text_config\": {\"hidden_size\": 48, \"num_attention_heads\": "
          "5}}", f);
    fclose(f);
    expect_load_error(d, UAD_ERR_FORMAT, "not a multiple of "
                      "num_attention_heads 5");
    f = fopen(tu_fmt("%s/config.json", d), "w");
    fputs("{\"text_config\": {\"hidden_act\": \"relu\"}}", f);
    fclose(f);
    expect_load_error(d, UAD_ERR_FORMAT, "hidden_act \"relu\"");
    f = fopen(tu_fmt("%s/config.json", d), "w");
    fputs("{\"text_config\": {\"num_hidden_layers\": -1}}", f);
    fclose(f);
    expect_load_error(d, UAD_ERR_FORMAT, "num_hidden_layers must be");
    /* Defaults (width 512) disagree with the file: shapes are named. */
    f = fopen(tu_fmt("%s/config.json", d), "w");
    fputs("{}", f);
    fclose(f);
    expect_load_error(d, UAD_ERR_FORMAT, "expected [49408, 512]");
    remove(tu_fmt("%s/config.json", d));
    expect_load_error(d, UAD_ERR_IO, "config.json");
    free(d);
}

/* `uniadc embed-text` writes the same embeddings and ids as the library,
 * checked against the PyTorch reference. */
static void test_cli(void) {
    const char *cli = getenv("UAD_CLI");
    if (!cli) {
        printf("UAD_CLI not set: embed-text checks skipped\n");
        return;
    }
    char *d = tu_tmpdir("clipcli");
    const char *pri = tu_fmt("%s/priors.yaml", d);
    FILE *f = fopen(pri, "w");
    fputs("categories:\n  - name: broken_large\n    description: [a large "
          "crack, a missing piece]\n  - name: scratch\n    description: "
          "[a thin line]\n", f);
    fclose(f);
    const char *out = tu_fmt("%s/emb.safetensors", d);
    int rc = system(tu_fmt("'%s' embed-text --quiet --text clip:%s 'a photo "
                           "of a scratch' \"don't stop, it's 2024... we'll "
                           "see\" --priors %s --out %s", cli, REFDIR, pri,
                           out));
    CHECK(rc == 0);
    uad_safetensors *st = NULL, *ref = NULL;
    CHECK(uad_st_open(&st, out) == UAD_OK);
    CHECK(uad_st_open(&ref, REFDIR "/refs.safetensors") == UAD_OK);
    if (st && ref) {
        const uad_st_tensor *e = uad_st_find(st, "text_embeds");
        const uad_st_tensor *ids = uad_st_find(st, "input_ids");
        const uad_st_tensor *g = uad_st_find(st, "category_embeds");
        CHECK(e && e->dtype == UAD_DT_F32 && e->ndim == 2 &&
              e->shape[0] == 2 && e->shape[1] == 24);
        CHECK(ids && ids->dtype == UAD_DT_I32 && ids->shape[0] == 2 &&
              ids->shape[1] == 77);
        CHECK(g && g->dtype == UAD_DT_F32 && g->shape[0] == 2 &&
              g->shape[1] == 24);
        if (e && ids && g) {
            printf("embed-text:\n");
            CHECK(compare("text_embeds", e->data,
                          ref_f32(ref, "embeds", 3 * 24), 2 * 24) <= TOL_F32);
            CHECK(memcmp(ids->data, uad_st_find(ref, "input_ids")->data,
                         2 * 77 * 4) == 0);
            CHECK(compare("category_embeds[0]", g->data,
                          ref_f32(ref, "category", 24), 24) <= TOL_F32);
        }
        CHECK_STR_CONTAINS(uad_st_meta(st, "categories"),
                           "[\"broken_large\", \"scratch\"]");
        CHECK_STR_CONTAINS(uad_st_meta(st, "texts"), "\"don't stop, it's");
        CHECK_STR_CONTAINS(uad_st_meta(st, "templates"), "\"a photo of %s\"");
    }
    uad_st_free(st);
    uad_st_free(ref);
    /* Usage and input errors map to their exit codes. */
    CHECK(WEXITSTATUS(system(tu_fmt("'%s' embed-text --quiet --out %s x "
                                    "2>/dev/null", cli, out))) == 2);
    CHECK(WEXITSTATUS(system(tu_fmt("'%s' embed-text --quiet --text dino:%s "
                                    "--out %s x 2>/dev/null", cli, REFDIR,
                                    out))) == 2);
    CHECK(WEXITSTATUS(system(tu_fmt("'%s' embed-text --quiet --text clip:%s "
                                    "--out %s 2>/dev/null", cli, REFDIR,
                                    out))) == 2);
    CHECK(WEXITSTATUS(system(tu_fmt("'%s' embed-text --quiet --text "
                                    "clip:/nonexistent --out %s x "
                                    "2>/dev/null", cli, out))) == 3);
    remove(out);
    remove(pri);
    rmdir(d);
    free(d);
}

/* Pooling with a config eos_token_id other than the legacy 2: the first
 * position holding that id, or position 0 when none does (the
 * reference's argmax over an all-false mask). */
static void test_eos_rule(void) {
    char *d = bad_checkpoint(NULL, NULL, NULL, NULL);
    const char *cfg = tu_fmt("%s/config.json", d);
    FILE *f = fopen(cfg, "w");
    fputs("{\"projection_dim\": 24, \"text_config\": {\"hidden_size\": 48,"
          " \"intermediate_size\": 192, \"num_attention_heads\": 4, "
          "\"num_hidden_layers\": 2, \"vocab_size\": 660, "
          "\"eos_token_id\": 5}}", f);
    fclose(f);
    uad_clip_text *m5 = NULL, *m2 = NULL;
    CHECK(uad_clip_text_load(&m5, d) == UAD_OK);
    CHECK(uad_clip_text_load(&m2, REFDIR) == UAD_OK);
    if (m5 && m2) {
        int32_t ids[4] = {658, 5, 659, 659};
        float a[24], b[24], c[24];
        /* eos 5 pools at position 1, which sees only ids[0..1]. */
        CHECK(uad_clip_text_forward(a, NULL, NULL, m5, ids, 4) == UAD_OK);
        CHECK(uad_clip_text_forward(b, NULL, NULL, m5, ids, 2) == UAD_OK);
        CHECK(compare("eos 5: full vs prefix", a, b, 24) <= TOL_F32);
        /* The legacy rule pools at the largest id (position 2). */
        CHECK(uad_clip_text_forward(c, NULL, NULL, m2, ids, 4) == UAD_OK);
        CHECK(compare("eos 5 vs legacy", a, c, 24) > 1e-2);
        CHECK(uad_clip_text_forward(b, NULL, NULL, m2, ids, 3) == UAD_OK);
        CHECK(compare("legacy: full vs prefix", c, b, 24) <= TOL_F32);
        /* No 5 at all: position 0. */
        int32_t none[3] = {658, 7, 8};
        CHECK(uad_clip_text_forward(a, NULL, NULL, m5, none, 3) == UAD_OK);
        CHECK(uad_clip_text_forward(b, NULL, NULL, m5, none, 1) == UAD_OK);
        CHECK(compare("eos 5 absent: position 0", a, b, 24) <= TOL_F32);
    }
    uad_clip_text_free(m5);
    uad_clip_text_free(m2);
    free(d);
}

/* ---- dino.txt ------------------------------------------------------ */

#define DTDIR UAD_SOURCE_DIR "/tests/data/dinotxt"

static const char *const k_dt_texts[] = {
    "a photo of a scratch",
    "don't stop, it's 2024... we'll see",
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad"
    "\xe3\x82\xb9\xe3\x83\x88 and \xe6\x97\xa5\xe6\x9c\xac",
    "A Close-Up Photo of a CRACKED hazelnut!",
};

/* dino.txt's text tower (scripts/make_dinotxt_refs.py): the released
 * checkpoint's keys, the fused qkv without bias, exact GELU, pooling at
 * the largest id, openai's tokenizer from the gzipped merges file. */
static void test_dinotxt_parity(void) {
    uad_clip_text *m = NULL;
    CHECK(uad_text_load(&m, "dinotxt:" DTDIR) == UAD_OK);
    if (!m) {
        fprintf(stderr, "%s\n", uad_last_error());
        return;
    }
    int C = uad_clip_text_width(m), P = uad_clip_text_embed_dim(m);
    int T = uad_clip_text_context(m);
    CHECK(C == 48 && uad_clip_text_layers(m) == 2 && P == 40 && T == 77);
    const uad_clip_tokenizer *tk = uad_clip_text_tokenizer(m);
    CHECK(uad_clip_vocab_size(tk) == 660 && uad_clip_pad_id(tk) == 0);
    CHECK(uad_clip_start_id(tk) == 658 && uad_clip_end_id(tk) == 659);

    uad_safetensors *ref = NULL;
    CHECK(uad_st_open(&ref, DTDIR "/refs.safetensors") == UAD_OK);
    if (!ref) return;
    const uad_st_tensor *ids_t = uad_st_find(ref, "input_ids");
    int N = ids_t ? (int)ids_t->shape[0] : 0;
    CHECK(N == 5);
    const int32_t *ids = ids_t->data;
    const int32_t *used = uad_st_find(ref, "n_used")->data;
    const float *last = ref_f32(ref, "last", (size_t)N * T * C);
    const float *emb = ref_f32(ref, "embeds", (size_t)N * P);
    const float *cat = ref_f32(ref, "category", (size_t)P);
    if (!last || !emb || !cat || N != 5) return;

    char long_text[1024] = "";
    for (int i = 0; i < 30; i++) strcat(long_text, "a photo of a scratch ");
    const char *texts[5] = {k_dt_texts[0], k_dt_texts[1], k_dt_texts[2],
                            k_dt_texts[3], long_text};
    float e[64], *l = malloc(sizeof(float) * (size_t)T * C);
    printf("dino.txt:\n");
    for (int n = 0; n < N; n++) {
        const int32_t *in = ids + (size_t)n * T;
        printf("text %d (%d tokens):\n", n, used[n]);
        /* openai's ids: CJK runs kept together, padding 0. */
        int32_t mine[UAD_CLIP_CONTEXT];
        CHECK(uad_clip_text_encode(e, mine, m, texts[n]) == UAD_OK);
        CHECK(memcmp(mine, in, sizeof mine) == 0);
        CHECK(compare("text embedding", e, emb + (size_t)n * P, P) <=
              TOL_F32);
        /* The used positions of the final layer norm; the reference ran
         * all 77 with the padding, which the causal mask hides. */
        CHECK(uad_clip_text_forward(NULL, NULL, l, m, in, used[n]) ==
              UAD_OK);
        CHECK(compare("final layer norm", l, last + (size_t)n * T * C,
                      (size_t)used[n] * C) <= TOL_F32);
    }
    /* The CJK text: one BPE run, not one piece per ideograph (the ids
     * of Hugging Face's CLIP tokenizer, which splits them, differ). */
    CHECK(ids[2 * T + 1] == 528 && ids[2 * T + 2] == 98);
    float eb[5 * 64];
    CHECK(uad_clip_text_encode_batch(eb, NULL, m, texts, 5) == UAD_OK);
    CHECK(compare("batch of 5", eb, emb, 5 * (size_t)P) <= TOL_F32);
    const char *desc[] = {"a large crack", "a missing piece"};
    CHECK(uad_clip_category_embedding(e, m, "broken_large", desc, 2) ==
          UAD_OK);
    CHECK(compare("category embedding", e, cat, P) <= TOL_F32);
    if (nn_set_precision(NN_BF16) == 0) {
        CHECK(uad_clip_text_encode_batch(eb, NULL, m, texts, 5) == UAD_OK);
        CHECK(compare("bf16: batch of 5", eb, emb, 5 * (size_t)P) <=
              TOL_BF16);
        nn_set_precision(NN_F32);
    } else {
        printf("bf16 not supported on this CPU: dino.txt bf16 skipped\n");
    }
    free(l);
    uad_st_free(ref);
    uad_clip_text_free(m);
}

/* openai's merges file gives the vocabulary of the matching vocab.json
 * (tests/data/clip_tok was built in openai's order), so the ids of text
 * without CJK equal those of the Hugging Face files. */
static void test_bpe_file(void) {
    uad_clip_tokenizer *a = NULL, *b = NULL;
    const char *tokdir = UAD_SOURCE_DIR "/tests/data/clip_tok";
    CHECK(uad_clip_tokenizer_load(&a, tokdir) == UAD_OK);
    CHECK(uad_clip_tokenizer_load_bpe(&b, DTDIR "/bpe_simple_vocab_16e6."
                                      "txt.gz") == UAD_OK);
    /* zlib reads the plain file as it is, too */
    uad_clip_tokenizer *c = NULL;
    CHECK(uad_clip_tokenizer_load_bpe(&c, tu_fmt("%s/merges.txt", tokdir)) ==
          UAD_OK);
    if (!a || !b || !c) return;
    CHECK(uad_clip_vocab_size(a) == uad_clip_vocab_size(b));
    CHECK(uad_clip_vocab_size(c) == uad_clip_vocab_size(b));
    const char *syms[] = {"!", "a</w>", "\xc4\x80", "photo</w>",
                          "<|startoftext|>", "<|endoftext|>"};
    for (size_t i = 0; i < sizeof syms / sizeof *syms; i++) {
        CHECK(uad_clip_token_id(a, syms[i]) >= 0);
        CHECK(uad_clip_token_id(a, syms[i]) == uad_clip_token_id(b, syms[i]));
    }
    const char *texts[] = {k_dt_texts[0], k_dt_texts[1], k_dt_texts[3],
                           "caf\xc3\xa9 na\xc3\xafve 3.14 <|endoftext|>"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        int32_t x[UAD_CLIP_CONTEXT], y[UAD_CLIP_CONTEXT];
        int nx = 0, ny = 0;
        CHECK(uad_clip_encode(x, &nx, a, texts[i], UAD_CLIP_CONTEXT) ==
              UAD_OK);
        CHECK(uad_clip_encode(y, &ny, b, texts[i], UAD_CLIP_CONTEXT) ==
              UAD_OK);
        CHECK(nx == ny && memcmp(x, y, (size_t)nx * sizeof *x) == 0);
        CHECK(x[nx] == uad_clip_end_id(a) && (ny == 77 || y[ny] == 0));
    }
    uad_clip_tokenizer_free(a);
    uad_clip_tokenizer_free(b);
    uad_clip_tokenizer_free(c);

    /* A cut gzip stream, a binary file and a bad merge line. */
    char *d = tu_tmpdir("bpe");
    const char *gz = tu_fmt("%s/cut.gz", d);
    FILE *in = fopen(DTDIR "/bpe_simple_vocab_16e6.txt.gz", "rb");
    unsigned char buf[4096];
    size_t n = in ? fread(buf, 1, sizeof buf, in) : 0;
    if (in) fclose(in);
    FILE *f = fopen(gz, "wb");
    fwrite(buf, 1, n / 2, f);
    fclose(f);
    CHECK(uad_clip_tokenizer_load_bpe(&a, gz) == UAD_ERR_FORMAT && !a);
    CHECK_STR_CONTAINS(uad_last_error(), "cut.gz: not a readable gzip file");
    f = fopen(gz, "wb");
    fwrite("#v\nab\0cd\n", 1, 9, f);
    fclose(f);
    CHECK(uad_clip_tokenizer_load_bpe(&a, gz) == UAD_ERR_FORMAT);
    CHECK_STR_CONTAINS(uad_last_error(), "NUL byte");
    f = fopen(gz, "wb");
    fputs("#version: 0.2\nh o\nthree sym bols\n", f);
    fclose(f);
    CHECK(uad_clip_tokenizer_load_bpe(&a, gz) == UAD_ERR_FORMAT);
    CHECK_STR_CONTAINS(uad_last_error(), "cut.gz:3: expected two symbols");
    CHECK(uad_clip_tokenizer_load_bpe(&a, tu_fmt("%s/none.gz", d)) ==
          UAD_ERR_IO);
    CHECK_STR_CONTAINS(uad_last_error(), "none.gz: cannot open");
    remove(gz);
    rmdir(d);
    free(d);
}

/* A copy of the dino.txt folder without tensor `drop` (NULL: keep all),
 * config.json replaced by `config` (NULL: kept, "": removed). */
static char *dt_copy(const char *drop, const char *config) {
    char *dir = tu_tmpdir("dinotxt");
    copy_file(DTDIR "/bpe_simple_vocab_16e6.txt.gz",
              tu_fmt("%s/bpe_simple_vocab_16e6.txt.gz", dir));
    if (!config) {
        copy_file(DTDIR "/config.json", tu_fmt("%s/config.json", dir));
    } else if (*config) {
        FILE *f = fopen(tu_fmt("%s/config.json", dir), "w");
        fputs(config, f);
        fclose(f);
    }
    copy_weights(DTDIR, dir, drop, NULL, NULL, NULL);
    return dir;
}

static void expect_dt_error(const char *dir, uad_status want,
                            const char *msg) {
    expect_error_of(uad_dinotxt_text_load, dir, want, msg);
}

static void test_dinotxt_bad(void) {
    const char *qkv = "text_model.backbone.blocks.1.attention.qkv.weight";
    char *d = dt_copy(qkv, NULL);
    expect_dt_error(d, UAD_ERR_FORMAT, tu_fmt("missing tensor %s", qkv));
    CHECK_STR_CONTAINS(uad_last_error(), "dino.txt text weights");
    free(d);
    /* Without config.json the released model's shapes are expected. */
    d = dt_copy(NULL, "");
    expect_dt_error(d, UAD_ERR_FORMAT, "text_model.backbone.token_embedding"
                    ".weight has shape [660, 48], expected [49408, 1280]");
    CHECK_STR_CONTAINS(uad_last_error(), "more\n(");
    CHECK_STR_CONTAINS(uad_last_error(), "has no config.json, so the "
                       "released dino.txt settings were expected");
    free(d);
    d = dt_copy(NULL, "{\"dim\": 48, \"num_heads\": 5}");
    expect_dt_error(d, UAD_ERR_FORMAT, "dim 48 is not a multiple of "
                    "num_heads 5");
    free(d);
    d = dt_copy(NULL, "{\"is_causal\": false}");
    expect_dt_error(d, UAD_ERR_FORMAT, "is_causal must be true");
    free(d);
    d = dt_copy(NULL, NULL);
    remove(tu_fmt("%s/bpe_simple_vocab_16e6.txt.gz", d));
    expect_dt_error(d, UAD_ERR_IO, "bpe_simple_vocab_16e6.txt.gz: cannot "
                    "open");
    free(d);
    uad_clip_text *m = NULL;
    CHECK(uad_text_load(&m, "dino:" DTDIR) == UAD_ERR_USAGE && !m);
    CHECK_STR_CONTAINS(uad_last_error(), "expected clip:DIR or dinotxt:DIR");
    CHECK(uad_text_load(&m, "dinotxt:") == UAD_ERR_USAGE);
}

/* embed-text on dino.txt: the library's numbers and the reference ids. */
static void test_dinotxt_cli(void) {
    const char *cli = getenv("UAD_CLI");
    if (!cli) return;
    char *d = tu_tmpdir("dtcli");
    const char *out = tu_fmt("%s/emb.safetensors", d);
    CHECK(system(tu_fmt("'%s' embed-text --quiet --text dinotxt:%s 'a photo "
                        "of a scratch' --out %s", cli, DTDIR, out)) == 0);
    uad_safetensors *st = NULL, *ref = NULL;
    CHECK(uad_st_open(&st, out) == UAD_OK);
    CHECK(uad_st_open(&ref, DTDIR "/refs.safetensors") == UAD_OK);
    if (st && ref) {
        const uad_st_tensor *e = uad_st_find(st, "text_embeds");
        const uad_st_tensor *ids = uad_st_find(st, "input_ids");
        CHECK(e && e->shape[0] == 1 && e->shape[1] == 40);
        CHECK(ids && ids->shape[1] == 77);
        if (e && ids) {
            CHECK(compare("embed-text dino.txt", e->data,
                          ref_f32(ref, "embeds", 5 * 40), 40) <= TOL_F32);
            CHECK(memcmp(ids->data, uad_st_find(ref, "input_ids")->data,
                         77 * 4) == 0);
        }
        CHECK_STR_CONTAINS(uad_st_meta(st, "text"), "dinotxt:");
    }
    uad_st_free(st);
    uad_st_free(ref);
    remove(out);
    rmdir(d);
    free(d);
}

int main(void) {
    test_parity();
    test_bad_checkpoints();
    test_eos_rule();
    test_cli();
    test_dinotxt_parity();
    test_bpe_file();
    test_dinotxt_bad();
    test_dinotxt_cli();
    return check_report("test_clip_text");
}
