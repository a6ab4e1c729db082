/* test_dataset.c - MVTec layout discovery, the few-shot protocol, masks
 * and the full decode check, on small datasets built here. */
#include "check.h"
#include "testutil.h"

static const char *k_priors =
    "object: widget\n"
    "categories:\n"
    "  - name: crack\n"
    "    description: thin dark line\n"
    "  - name: no\n"
    "    description: [missing part]\n";

/* root/train/good: 3 images + a hidden file + a sidecar; test/good: 2;
 * test/crack: 3 with masks; test/no: 3 with masks; test/combined: 3. */
static char *make_dataset(void) {
    char *root = tu_tmpdir("ds");
    const char *dirs[] = {"train/good", "test/good", "test/crack", "test/no",
                          "test/combined", "ground_truth/crack",
                          "ground_truth/no", "ground_truth/combined"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
        tu_mkdirs(tu_fmt("%s/%s", root, dirs[i]));
    /* Byte-wise order: "B.PNG" < "a.png" < "\xc3\xbc space.png" (UTF-8). */
    tu_png(tu_fmt("%s/train/good/a.png", root), 6, 4, NULL, 0.5f);
    tu_png(tu_fmt("%s/train/good/B.PNG", root), 6, 4, NULL, 0.5f);
    tu_png(tu_fmt("%s/train/good/\xc3\xbc space.png", root), 6, 4, NULL, .5f);
    tu_write(tu_fmt("%s/train/good/.hidden.png", root), "x", 1);
    tu_write(tu_fmt("%s/train/good/notes.txt", root), "x", 1);
    tu_png(tu_fmt("%s/test/good/g0.png", root), 6, 4, NULL, 0.5f);
    tu_png(tu_fmt("%s/test/good/g1.png", root), 6, 4, NULL, 0.5f);
    float m[24] = {0};
    m[7] = m[8] = 1;
    const char *cats[] = {"crack", "no", "combined"};
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 3; i++) {
            tu_png(tu_fmt("%s/test/%s/%03d.png", root, cats[c], i), 6, 4,
                   NULL, 0.25f);
            tu_png(tu_fmt("%s/ground_truth/%s/%03d_mask.png", root, cats[c],
                          i), 6, 4, m, 0);
        }
    return root;
}

static uad_priors *priors(const char *text) {
    uad_priors *p = NULL;
    if (uad_priors_parse(&p, text, strlen(text), "test.yaml") != UAD_OK)
        fprintf(stderr, "priors: %s\n", uad_last_error());
    return p;
}

static void test_discovery(const char *root) {
    uad_priors *pri = priors(k_priors);
    uad_dataset *ds = NULL;
    CHECK(uad_dataset_open(&ds, root, pri) == UAD_OK);
    if (!ds) return;
    CHECK(uad_dataset_count(ds, UAD_SPLIT_TRAIN) == 3);
    CHECK(uad_dataset_count(ds, UAD_SPLIT_TEST) == 11);
    const uad_sample *s0 = uad_dataset_sample(ds, UAD_SPLIT_TRAIN, 0);
    const uad_sample *s2 = uad_dataset_sample(ds, UAD_SPLIT_TRAIN, 2);
    CHECK(!strcmp(s0->rel_path, "train/good/B.PNG"));
    CHECK(!strcmp(s0->stem, "B"));
    CHECK(!strcmp(s2->rel_path, "train/good/\xc3\xbc space.png"));
    CHECK(uad_dataset_n_categories(ds) == 3);
    CHECK(!strcmp(uad_dataset_category(ds, 0), "combined"));
    /* Class ids follow the priors' order, not the folders'. */
    for (size_t i = 0; i < uad_dataset_count(ds, UAD_SPLIT_TEST); i++) {
        const uad_sample *s = uad_dataset_sample(ds, UAD_SPLIT_TEST, i);
        int want = !strcmp(s->category, "good") ? 0
                   : !strcmp(s->category, "crack") ? 1
                   : !strcmp(s->category, "no") ? 2 : UAD_CLASS_COMBINED;
        CHECK(s->class_id == want);
        CHECK((s->mask_path != NULL) == (want != 0));
    }
    uad_dataset_stats st;
    CHECK(uad_dataset_check(ds, NULL, &st) == UAD_OK);
    CHECK(st.n_images == 14 && st.n_masks == 9);
    CHECK(st.min_w == 6 && st.max_h == 4);
    CHECK_NEAR(st.mask_frac_mean, 2.0 / 24, 1e-12);
    CHECK(st.depths_seen == 1 << 8);
    uad_dataset_free(ds);
    uad_priors_free(pri);
}

static void test_protocol(const char *root) {
    uad_priors *pri = priors(k_priors);
    uad_dataset *ds = NULL;
    CHECK(uad_dataset_open(&ds, root, pri) == UAD_OK);
    if (!ds) return;
    uad_support sup;
    /* Zero-shot: first 2 normals; first 2 of each defect folder held out
     * (combined too), so 2 good + 3 x 1 defect images are evaluated. */
    uad_protocol zero = {UAD_SETTING_ZERO, 2, 0};
    CHECK(uad_dataset_support(&sup, ds, &zero) == UAD_OK);
    CHECK(sup.n_normals == 2 && sup.n_examples == 0 && sup.n_eval == 5);
    CHECK(!strcmp(sup.normals[1]->rel_path, "train/good/a.png"));
    for (size_t i = 0; i < sup.n_eval; i++)
        CHECK(!strcmp(sup.eval[i]->category, "good") ||
              !strcmp(sup.eval[i]->stem, "002"));
    uad_support_free(&sup);
    /* Few-shot 1/1: first example of crack and of no, never combined. */
    uad_protocol few = {UAD_SETTING_FEW, 1, 1};
    CHECK(uad_dataset_support(&sup, ds, &few) == UAD_OK);
    CHECK(sup.n_examples == 2 && sup.n_eval == 5);
    CHECK(!strcmp(sup.examples[0]->rel_path, "test/crack/000.png"));
    CHECK(!strcmp(sup.examples[1]->rel_path, "test/no/000.png"));
    uad_support_free(&sup);
    /* All normals; the plain setting evaluates every test image. */
    uad_protocol all = {UAD_SETTING_ZERO, UAD_KN_ALL, 0};
    CHECK(uad_dataset_support(&sup, ds, &all) == UAD_OK);
    CHECK(sup.n_normals == 3);
    uad_support_free(&sup);
    uad_protocol plain = {UAD_SETTING_ALL, 0, 0};
    CHECK(uad_dataset_support(&sup, ds, &plain) == UAD_OK);
    CHECK(sup.n_eval == 11 && sup.n_normals == 0);
    uad_support_free(&sup);
    /* Too many shots: errors with the numbers. */
    uad_protocol many = {UAD_SETTING_ZERO, 4, 0};
    CHECK(uad_dataset_support(&sup, ds, &many) == UAD_ERR_DATA);
    CHECK_STR_CONTAINS(uad_last_error(), "4 normal shots requested but "
                                         "only 3 images exist");
    uad_protocol ka = {UAD_SETTING_FEW, 1, 4};
    CHECK(uad_dataset_support(&sup, ds, &ka) == UAD_ERR_DATA);
    CHECK_STR_CONTAINS(uad_last_error(), "4 examples requested but only 3");
    uad_dataset_free(ds);
    uad_priors_free(pri);
}

static void test_priors_mismatch(const char *root) {
    uad_dataset *ds = NULL;
    /* A folder the priors do not name. */
    uad_priors *p1 = priors("categories:\n  - name: crack\n"
                            "    description: x\n");
    CHECK(uad_dataset_open(&ds, root, p1) == UAD_ERR_DATA);
    CHECK_STR_CONTAINS(uad_last_error(), "category 'no' is not in the priors");
    /* A prior with no folder. */
    uad_priors *p2 = priors("categories:\n  - name: crack\n    description: x\n"
                            "  - name: no\n    description: x\n"
                            "  - name: dent\n    description: x\n");
    CHECK(uad_dataset_open(&ds, root, p2) == UAD_ERR_DATA);
    CHECK_STR_CONTAINS(uad_last_error(), "no folder for prior category 'dent'");
    CHECK(ds == NULL);
    uad_priors_free(p1);
    uad_priors_free(p2);
    /* Every mismatch is listed at once. */
    uad_priors *p3 = priors("categories:\n  - name: dent\n    description: x"
                            "\n  - name: bump\n    description: x\n");
    CHECK(uad_dataset_open(&ds, root, p3) == UAD_ERR_DATA);
    CHECK_STR_CONTAINS(uad_last_error(), "4 mismatch(es)");
    CHECK_STR_CONTAINS(uad_last_error(), "category 'crack' is not in");
    CHECK_STR_CONTAINS(uad_last_error(), "prior category 'bump'");
    uad_priors_free(p3);
    /* Without priors, defect classes are unknown. */
    CHECK(uad_dataset_open(&ds, root, NULL) == UAD_OK);
    if (ds) {
        const uad_sample *s = uad_dataset_sample(ds, UAD_SPLIT_TEST, 10);
        CHECK(s->class_id == UAD_CLASS_UNKNOWN);
    }
    uad_dataset_free(ds);
}

static void test_bad_layouts(void) {
    uad_dataset *ds = NULL;
    char *root = tu_tmpdir("bad");
    /* Missing train/good. */
    tu_mkdirs(tu_fmt("%s/test/good", root));
    CHECK(uad_dataset_open(&ds, root, NULL) == UAD_ERR_IO);
    CHECK_STR_CONTAINS(uad_last_error(), "train/good: missing folder");
    /* Empty train/good (a sidecar file only). */
    tu_mkdirs(tu_fmt("%s/train/good", root));
    tu_write(tu_fmt("%s/train/good/readme.txt", root), "x", 1);
    CHECK(uad_dataset_open(&ds, root, NULL) == UAD_ERR_DATA);
    CHECK_STR_CONTAINS(uad_last_error(), "no images found in");
    CHECK_STR_CONTAINS(uad_last_error(), "(accepted: png, jpg, jpeg, tif");
    /* A defect image without a mask. */
    tu_png(tu_fmt("%s/train/good/n.png", root), 5, 3, NULL, 0.5f);
    tu_png(tu_fmt("%s/test/good/g.png", root), 5, 3, NULL, 0.5f);
    tu_mkdirs(tu_fmt("%s/test/dent", root));
    tu_png(tu_fmt("%s/test/dent/d.jpg.png", root), 5, 3, NULL, 0.5f);
    CHECK(uad_dataset_open(&ds, root, NULL) == UAD_ERR_DATA);
    CHECK_STR_CONTAINS(uad_last_error(), "without a mask");
    CHECK_STR_CONTAINS(uad_last_error(), "test/dent/d.jpg.png");
    /* Mask of the wrong size, a zero-byte and a truncated image: all
     * listed by one check. */
    tu_mkdirs(tu_fmt("%s/ground_truth/dent", root));
    tu_png(tu_fmt("%s/ground_truth/dent/d.jpg_mask.png", root), 4, 3, NULL,
           1.0f);
    tu_write(tu_fmt("%s/train/good/zero.png", root), "", 0);
    tu_write(tu_fmt("%s/train/good/trunc.png", root), "\x89PNG\r\n\x1a\n", 8);
    CHECK(uad_dataset_open(&ds, root, NULL) == UAD_OK);
    if (ds) {
        CHECK(uad_dataset_check(ds, NULL, NULL) != UAD_OK);
        const char *e = uad_last_error();
        CHECK_STR_CONTAINS(e, "3 file(s) failed to load");
        CHECK_STR_CONTAINS(e, "zero.png");
        CHECK_STR_CONTAINS(e, "trunc.png");
        CHECK_STR_CONTAINS(e, "is 5x3 but its mask");
        CHECK_STR_CONTAINS(e, "d.jpg_mask.png is 4x3 (W x H)");
    }
    uad_dataset_free(ds);
    /* Two images sharing a stem would share a mask: refused. */
    tu_png(tu_fmt("%s/train/good/n.jpg", root), 5, 3, NULL, 0.5f);
    CHECK(uad_dataset_open(&ds, root, NULL) == UAD_ERR_DATA);
    CHECK_STR_CONTAINS(uad_last_error(), "train/good/n.jpg and "
                                         "train/good/n.png share the name");
    free(root);
}

static void test_masks(void) {
    char *dir = tu_tmpdir("mask");
    float v[6] = {0, 0.2f, 0, 1, 0.6f, 0};
    tu_png(tu_fmt("%s/m.png", dir), 3, 2, v, 0);
    size_t w0 = uad_log_warning_count();
    uad_mask m;
    CHECK(uad_mask_load(&m, tu_fmt("%s/m.png", dir), NULL) == UAD_OK);
    CHECK(uad_log_warning_count() == w0 + 1); /* four distinct values */
    uint8_t want[6] = {0, 1, 0, 1, 1, 0};
    CHECK(m.w == 3 && m.h == 2 && m.data && !memcmp(m.data, want, 6));
    uad_mask_free(&m);
    float b[6] = {0, 1, 0, 1, 1, 0};
    tu_png(tu_fmt("%s/b.png", dir), 3, 2, b, 0);
    w0 = uad_log_warning_count();
    CHECK(uad_mask_load(&m, tu_fmt("%s/b.png", dir), NULL) == UAD_OK);
    CHECK(uad_log_warning_count() == w0);
    uad_mask_free(&m);
    free(dir);
}

int main(void) {
    uad_log_set(tu_quiet_log, NULL, UAD_LOG_WARN);
    char *root = make_dataset();
    test_discovery(root);
    test_protocol(root);
    test_priors_mismatch(root);
    test_bad_layouts();
    test_masks();
    free(root);
    return check_report("test_dataset");
}
