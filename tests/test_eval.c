/* test_eval.c - scoring predictions against ground truth: a hand-worked
 * case, a perfect case, the file route (uad_eval_dirs and the CLI), and
 * bad input. */
#include "check.h"
#include "testutil.h"

#include <math.h>

#define W 6
#define H 4
#define NPX (W * H)

static const char *k_priors =
    "categories:\n"
    "  - name: crack\n    description: thin dark line\n"
    "  - name: dent\n    description: shallow hollow\n";

/* train/good: 2; test/good: g0 g1; test/crack: 000 001 002; test/dent:
 * 000 001 002; every mask marks pixels 7 and 8 (row 1, columns 1-2). */
static char *make_dataset(void) {
    char *root = tu_tmpdir("ev");
    const char *dirs[] = {"train/good", "test/good", "test/crack",
                          "test/dent", "ground_truth/crack",
                          "ground_truth/dent"};
    for (size_t i = 0; i < 6; i++) tu_mkdirs(tu_fmt("%s/%s", root, dirs[i]));
    for (int i = 0; i < 2; i++) {
        tu_png(tu_fmt("%s/train/good/n%d.png", root, i), W, H, NULL, 0.5f);
        tu_png(tu_fmt("%s/test/good/g%d.png", root, i), W, H, NULL, 0.5f);
    }
    float m[NPX] = {0};
    m[7] = m[8] = 1;
    const char *cats[] = {"crack", "dent"};
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 3; i++) {
            tu_png(tu_fmt("%s/test/%s/%03d.png", root, cats[c], i), W, H,
                   NULL, 0.3f);
            tu_png(tu_fmt("%s/ground_truth/%s/%03d_mask.png", root, cats[c],
                          i), W, H, m, 0);
        }
    return root;
}

static const uad_sample *find(const uad_dataset *ds, const char *rel) {
    for (size_t i = 0; i < uad_dataset_count(ds, UAD_SPLIT_TEST); i++) {
        const uad_sample *s = uad_dataset_sample(ds, UAD_SPLIT_TEST, i);
        if (!strcmp(s->rel_path, rel)) return s;
    }
    return NULL;
}

/* Four images, values chosen so every metric can be worked by hand. */
static void test_hand_worked(const uad_dataset *ds, const uad_priors *pri) {
    const uad_sample *smp[4] = {
        find(ds, "test/good/g0.png"), find(ds, "test/good/g1.png"),
        find(ds, "test/crack/000.png"), find(ds, "test/dent/000.png")};
    static float maps[4][NPX];
    static uint8_t cls[4][NPX];
    memset(maps, 0, sizeof maps);
    memset(cls, 0, sizeof cls);
    maps[1][0] = 1; /* g1: one false positive pixel, classed dent */
    cls[1][0] = 2;
    maps[2][7] = 1; /* crack: half the region found; classes 1 and 2 */
    cls[2][7] = 1;
    cls[2][8] = 2;
    maps[3][7] = maps[3][8] = 1; /* dent: found, but classed crack */
    cls[3][7] = cls[3][8] = 1;
    double scores[4] = {0.1, 0.6, 0.5, 0.9};
    uad_eval_input pr[4];
    for (int i = 0; i < 4; i++)
        pr[i] = (uad_eval_input){maps[i], W, H, scores[i], cls[i], W, H};
    uad_eval_params p = uad_eval_default_params();
    uad_eval_result *r = NULL;
    CHECK(uad_eval_predictions(&r, ds, pri, smp, pr, 4, &p) == UAD_OK);
    if (!r) return;
    /* I-AUROC: crack 0.5 beats 0.1, loses to 0.6; dent 0.9 beats both. */
    CHECK_NEAR(r->overall.i_auroc, 3.0 / 4.0, 1e-12);
    /* P-AUROC: 4 positive pixels (1, 0, 1, 1), 92 negatives (one 1). A
     * positive 1 beats 91 zeros and ties one 1: 91.5; a positive 0 ties
     * 91 zeros: 45.5. (3 * 91.5 + 45.5) / (4 * 92). */
    CHECK_NEAR(r->overall.p_auroc, 320.0 / 368.0, 1e-12);
    /* PRO: two 2-pixel regions. Curve (0,0) -> (1/92, 0.75) -> (1, 1),
     * integrated to FPR 0.3 with linear interpolation, over 0.3. */
    double f1 = 1.0 / 92, p03 = 0.75 + 0.25 * (0.3 - f1) / (1 - f1);
    double area = 0.5 * f1 * 0.75 + 0.5 * (0.75 + p03) * (0.3 - f1);
    CHECK_NEAR(r->overall.aupro, area / 0.3, 1e-9);
    /* Image classes: g0 0 (ok), g1 2 (wrong), crack 1 (tie 1:1 goes to
     * the lower id; ok), dent 1 (wrong): 2 of 4. */
    CHECK_NEAR(r->overall.acc, 0.5, 1e-12);
    CHECK(r->image_confusion[1 * 3 + 1] == 1 && r->image_confusion[2 * 3 + 1]
          == 1 && r->image_confusion[0 * 3 + 2] == 1);
    /* Pixel confusion: [0][0]=91 [0][2]=1 [1][1]=1 [1][2]=1 [2][1]=2.
     * IoU0 = 91/92, IoU1 = 1/(1+2+1), IoU2 = 0/(0+2+2). */
    CHECK_NEAR(r->overall.miou, (91.0 / 92 + 0.25 + 0) / 3, 1e-12);
    /* Per category crack: good + crack images; acc 1/1; IoU 0.25. */
    CHECK(!strcmp(r->categories[0], "crack"));
    CHECK_NEAR(r->per_category[0].i_auroc, 0.5, 1e-12);
    CHECK_NEAR(r->per_category[0].acc, 1.0, 1e-12);
    CHECK_NEAR(r->per_category[0].miou, 0.25, 1e-12);
    CHECK_NEAR(r->per_category[1].acc, 0.0, 1e-12);
    CHECK(r->overall.n_images == 4 && r->overall.n_anomalous == 2);
    CHECK(r->overall.n_pixels == 4 * NPX);
    uad_eval_free(r);
}

/* Maps of another size are resized to the mask; top-100 image scores. */
static void test_resize_and_topk(const uad_dataset *ds) {
    const uad_sample *smp[2] = {find(ds, "test/good/g0.png"),
                                find(ds, "test/crack/001.png")};
    /* 12 x 8 maps (twice the size): constant maps resize exactly. */
    static float a[96], b[96];
    for (int i = 0; i < 96; i++) {
        a[i] = 0.25f;
        b[i] = 0.75f;
    }
    uad_eval_input pr[2] = {{a, 12, 8, NAN, NULL, 0, 0},
                            {b, 12, 8, NAN, NULL, 0, 0}};
    uad_eval_params p = uad_eval_default_params();
    uad_eval_result *r = NULL;
    CHECK(uad_eval_predictions(&r, ds, NULL, smp, pr, 2, &p) == UAD_OK);
    if (!r) return;
    CHECK_NEAR(r->overall.i_auroc, 1.0, 1e-12);
    CHECK(r->overall.n_pixels == 2 * NPX);
    CHECK(isnan(r->overall.acc) && isnan(r->overall.miou));
    uad_eval_free(r);
    /* One-class test set: undefined, reported as NaN (JSON null). */
    CHECK(uad_eval_predictions(&r, ds, NULL, smp, pr, 1, &p) == UAD_OK);
    if (r) {
        CHECK(isnan(r->overall.i_auroc) && isnan(r->overall.p_auroc));
        CHECK(isnan(r->overall.aupro));
    }
    uad_eval_free(r);
}

/* Write perfect maps for every test image: map = mask, class = id. */
static void write_files(const char *root, const char *maps, const char *cls) {
    const char *cats[] = {"good", "crack", "dent"};
    for (int c = 0; c < 3; c++) {
        tu_mkdirs(tu_fmt("%s/%s", maps, cats[c]));
        tu_mkdirs(tu_fmt("%s/%s", cls, cats[c]));
    }
    FILE *csv = fopen(tu_fmt("%s/scores.csv", maps), "w");
    fprintf(csv, "path,score\r\n");
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < (c ? 3 : 2); i++) {
            const char *stem = c ? tu_fmt("%03d", i) : tu_fmt("g%d", i);
            uad_image m;
            uad_image_alloc(&m, W, H, 1);
            float ids[NPX] = {0};
            if (c) m.data[7] = m.data[8] = 1, ids[7] = ids[8] = c / 255.0f;
            uad_image_write_tiff(tu_fmt("%s/%s/%s.tiff", maps, cats[c], stem),
                                 &m);
            tu_png(tu_fmt("%s/%s/%s.png", cls, cats[c], stem), W, H, ids, 0);
            fprintf(csv, "test/%s/%s.png,%g\r\n", cats[c], stem,
                    c ? 0.9 : 0.1);
            uad_image_free(&m);
        }
    fclose(csv);
    (void)root;
}

static void test_dirs(const char *root, const uad_dataset *ds,
                      const uad_priors *pri) {
    char *out = tu_tmpdir("evout");
    char maps[512], cls[512];
    snprintf(maps, sizeof maps, "%s/maps", out);
    snprintf(cls, sizeof cls, "%s/cls", out);
    write_files(root, maps, cls);
    uad_eval_params p = uad_eval_default_params();
    uad_eval_result *r = NULL;
    CHECK(uad_eval_dirs(&r, ds, pri, maps, cls, &p) == UAD_OK);
    if (r) {
        CHECK_NEAR(r->overall.i_auroc, 1, 1e-12);
        CHECK_NEAR(r->overall.p_auroc, 1, 1e-12);
        CHECK_NEAR(r->overall.aupro, 1, 1e-9);
        CHECK_NEAR(r->overall.acc, 1, 1e-12);
        CHECK_NEAR(r->overall.miou, 1, 1e-12);
        CHECK(r->overall.n_images == 8);
        const char *json = tu_fmt("%s/m.json", out);
        CHECK(uad_eval_write_json(r, json) == UAD_OK);
        char buf[8192] = {0};
        FILE *fp = fopen(json, "r");
        if (fp) {
            fread(buf, 1, sizeof buf - 1, fp);
            fclose(fp);
        }
        CHECK_STR_CONTAINS(buf, "\"i_auroc\":\t1");
        CHECK_STR_CONTAINS(buf, "\"per_category\"");
    }
    uad_eval_free(r);
    /* Zero-shot protocol: the first 2 of each defect folder are left out. */
    p.protocol = (uad_protocol){UAD_SETTING_ZERO, 1, 0};
    CHECK(uad_eval_dirs(&r, ds, pri, maps, NULL, &p) == UAD_OK);
    if (r) CHECK(r->overall.n_images == 4 && isnan(r->overall.acc));
    uad_eval_free(r);
    /* Two missing maps and a missing score: all named in one error. */
    remove(tu_fmt("%s/crack/001.tiff", maps));
    remove(tu_fmt("%s/dent/002.tiff", maps));
    p.protocol.setting = UAD_SETTING_ALL;
    CHECK(uad_eval_dirs(&r, ds, pri, maps, NULL, &p) == UAD_ERR_IO);
    CHECK_STR_CONTAINS(uad_last_error(), "2 problem(s)");
    CHECK_STR_CONTAINS(uad_last_error(), "crack/001.tiff: missing anomaly map");
    CHECK_STR_CONTAINS(uad_last_error(), "dent/002.tiff");
    /* Non-finite map values are refused, naming the file and pixel. */
    uad_image nanmap;
    uad_image_alloc(&nanmap, W, H, 1);
    nanmap.data[9] = NAN;
    uad_image_write_tiff(tu_fmt("%s/crack/001.tiff", maps), &nanmap);
    uad_image_write_tiff(tu_fmt("%s/dent/002.tiff", maps), &nanmap);
    nanmap.data[9] = 0;
    CHECK(uad_eval_dirs(&r, ds, pri, maps, NULL, &p) == UAD_ERR_DATA);
    CHECK_STR_CONTAINS(uad_last_error(), "test/crack/001.png: anomaly map "
                                         "value at x=3, y=1 is nan");
    uad_image_write_tiff(tu_fmt("%s/dent/002.tiff", maps), &nanmap);
    uad_image_free(&nanmap);
    /* A second score for one image is an error; a BOM is fine. */
    FILE *csv = fopen(tu_fmt("%s/scores.csv", maps), "a");
    fprintf(csv, "test/good/g0.png,0.5\n");
    fclose(csv);
    CHECK(uad_eval_dirs(&r, ds, pri, maps, NULL, &p) == UAD_ERR_FORMAT);
    CHECK_STR_CONTAINS(uad_last_error(), "a second score for "
                                         "test/good/g0.png");
    write_files(root, maps, cls);
    /* A corrupt map file is named too. */
    tu_write(tu_fmt("%s/crack/001.tiff", maps), "II*\0junk", 8);
    tu_png(tu_fmt("%s/dent/002.tiff", maps), W, H, NULL, 0);
    CHECK(uad_eval_dirs(&r, ds, pri, maps, NULL, &p) != UAD_OK);
    CHECK_STR_CONTAINS(uad_last_error(), "crack/001.tiff");
    free(out);
}

/* The command line: exit codes, JSON file, Markdown table. */
static void test_cli(const char *root) {
    const char *cli = getenv("UAD_CLI");
    if (!cli) {
        printf("UAD_CLI not set: CLI checks skipped\n");
        return;
    }
    char *out = tu_tmpdir("evcli");
    char maps[512], cls[512], pri[512];
    snprintf(maps, sizeof maps, "%s/maps", out);
    snprintf(cls, sizeof cls, "%s/cls", out);
    snprintf(pri, sizeof pri, "%s/priors.yaml", out);
    tu_write(pri, k_priors, strlen(k_priors));
    write_files(root, maps, cls);
    const char *cmd = tu_fmt("%s eval --data %s --maps %s --class-maps %s "
                             "--priors %s --json %s/r.json --quiet > %s/t.md",
                             cli, root, maps, cls, pri, out, out);
    CHECK(system(cmd) == 0);
    char buf[4096] = {0};
    FILE *fp = fopen(tu_fmt("%s/t.md", out), "r");
    if (fp) {
        fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
    }
    CHECK_STR_CONTAINS(buf, "| **all** | 100.00 | 100.00 | 100.00 | 100.00 "
                            "| 100.00 | 8 |");
    /* Usage errors exit 2; a missing data folder exits 3. */
    CHECK(WEXITSTATUS(system(tu_fmt("%s eval --bogus 2>/dev/null", cli)))
          == 2);
    CHECK(WEXITSTATUS(system(tu_fmt("%s eval --data %s --maps %s 2>/dev/null",
                                    cli, root, maps))) == 2);
    CHECK(WEXITSTATUS(system(tu_fmt("%s eval --data /nonexistent --maps %s "
                                    "--json %s/x.json 2>/dev/null", cli, maps,
                                    out))) == 3);
    CHECK(access(tu_fmt("%s/x.json", out), F_OK) != 0);
    free(out);
}

int main(void) {
    uad_log_set(tu_quiet_log, NULL, UAD_LOG_WARN);
    char *root = make_dataset();
    uad_priors *pri = NULL;
    uad_dataset *ds = NULL;
    CHECK(uad_priors_parse(&pri, k_priors, strlen(k_priors), "p.yaml") ==
          UAD_OK);
    CHECK(uad_dataset_open(&ds, root, pri) == UAD_OK);
    if (ds) {
        test_hand_worked(ds, pri);
        test_resize_and_topk(ds);
        test_dirs(root, ds, pri);
        test_cli(root);
    }
    uad_dataset_free(ds);
    uad_priors_free(pri);
    free(root);
    return check_report("test_eval");
}
