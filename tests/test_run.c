/* test_run.c - the main job end to end on a tiny generated dataset:
 * every output exists, the same seed reproduces the metrics files byte for
 * byte, and `uniadc eval` on the raw maps agrees with the report. */
#include "check.h"
#include "testutil.h"

#include <math.h>

#define S 64

/* A textured normal image, optionally with a dark disc (class 1) or a
 * bright horizontal bar (class 2); mask written next to it. */
static void make_image(const char *path, const char *mask_path, int kind,
                       unsigned seed) {
    float img[S * S], m[S * S];
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            unsigned h = (unsigned)(x * 7919 + y * 104729) ^ (seed * 2654435761u);
            h ^= h >> 13;
            h *= 0x5bd1e995u;
            h ^= h >> 15;
            img[y * S + x] = 0.45f + 0.1f * sinf(x * 0.7f) +
                             0.04f * (float)(h & 255) / 255.0f;
            m[y * S + x] = 0;
        }
    int cx = 16 + (int)(seed % 30), cy = 20 + (int)(seed % 25);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            int on = kind == 1 ? (x - cx) * (x - cx) + (y - cy) * (y - cy) < 36
                   : kind == 2 ? abs(y - cy) <= 1 && x > 8 && x < 56 : 0;
            if (!on) continue;
            img[y * S + x] = kind == 1 ? 0.05f : 0.95f;
            m[y * S + x] = 1;
        }
    tu_png(path, S, S, img, 0);
    if (mask_path) tu_png(mask_path, S, S, m, 0);
}

static const char *k_priors =
    "object: test plate\n"
    "categories:\n"
    "  - name: hole\n    description: [black hole]\n    shape: [ellipse]\n"
    "  - name: scratch\n    description: [white scratch]\n    shape: [line]\n";

static char *make_dataset(void) {
    char *root = tu_tmpdir("run");
    const char *dirs[] = {"train/good", "test/good", "test/hole",
                          "test/scratch", "ground_truth/hole",
                          "ground_truth/scratch"};
    for (int i = 0; i < 6; i++) tu_mkdirs(tu_fmt("%s/%s", root, dirs[i]));
    for (unsigned i = 0; i < 4; i++)
        make_image(tu_fmt("%s/train/good/%03u.png", root, i), NULL, 0, i);
    for (unsigned i = 0; i < 4; i++) {
        make_image(tu_fmt("%s/test/good/%03u.png", root, i), NULL, 0, 50 + i);
        make_image(tu_fmt("%s/test/hole/%03u.png", root, i),
                   tu_fmt("%s/ground_truth/hole/%03u_mask.png", root, i), 1,
                   100 + i);
        make_image(tu_fmt("%s/test/scratch/%03u.png", root, i),
                   tu_fmt("%s/ground_truth/scratch/%03u_mask.png", root, i),
                   2, 200 + i);
    }
    tu_write(tu_fmt("%s/priors.yaml", root), k_priors, strlen(k_priors));
    return root;
}

static char *slurp(const char *path) {
    char *buf = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = calloc((size_t)n + 1, 1);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) buf[0] = 0;
    fclose(fp);
    return buf;
}

static uad_run_params tiny_params(const char *root, const char *out) {
    uad_run_params p = uad_run_default_params();
    static char pri[512];
    snprintf(pri, sizeof pri, "%s/priors.yaml", root);
    p.data_dir = root;
    p.priors_path = pri;
    p.out_dir = out;
    p.protocol = (uad_protocol){UAD_SETTING_ZERO, 2, 0};
    p.seed = 11;
    p.synth.per_category = 3;
    p.synth.n_candidates = 2;
    p.model.input_size = S;
    p.model.width = 16;
    p.train.epochs = 2;
    p.train.steps_per_epoch = 2;
    p.train.batch = 4;
    p.raw = 1;
    return p;
}

/* ---- the kNN baseline on a ViT (AnomalyDINO recipe) ------------------ */

#define VIT UAD_SOURCE_DIR "/tests/data/vit/dinov2"

/* Unit patch tokens (256, 48) of the tiny DINOv2's last block for an
 * image at 64 x 64, computed here in double from the public calls. */
static void vit_tokens(double *tok, const uad_vit *v, const uad_image *img) {
    static float pix[3 * S * S], map[48 * 256];
    float *maps[1] = {map};
    int last = 3;
    CHECK(uad_vit_preprocess(v, pix, img, S) == UAD_OK);
    CHECK(uad_vit_features(v, maps, &last, 1, 1, pix, 1, S, S) == UAD_OK);
    for (int i = 0; i < 256; i++) {
        double q = 0;
        for (int d = 0; d < 48; d++) q += (double)map[d * 256 + i] *
                                          map[d * 256 + i];
        for (int d = 0; d < 48; d++)
            tok[i * 48 + d] = map[d * 256 + i] / sqrt(q);
    }
}

static int by_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* `uniadc run --backbone dinov2:DIR --method knn` on the tiny dataset,
 * whose test/good/000.png is a copy of train/good/000.png: every image
 * score in scores.csv must be the mean of the 2 (1% of 16 x 16) highest
 * cosine distances 1 - max cos to the 512 patches of the two normal
 * support images, recomputed here; the copy scores 0. */
static void test_knn_vit(void) {
    char *root = make_dataset();
    char *out = tu_tmpdir("run_knn_vit");
    make_image(tu_fmt("%s/test/good/000.png", root), NULL, 0, 0);
    const char *cli = getenv("UAD_CLI");
    if (cli) {
        CHECK(system(tu_fmt("%s run --data %s --priors %s/priors.yaml "
                            "--setting zero --kn 2 --out %s --method knn "
                            "--backbone dinov2:%s --size 64 --per-category 3 "
                            "--candidates 2 --raw --seed 11 --quiet "
                            "> /dev/null", cli, root, root, out, VIT)) == 0);
    } else {
        uad_run_params p = tiny_params(root, out);
        p.methods = UAD_METHOD_KNN;
        p.model.backbone = UAD_BACKBONE_DINOV2;
        p.model.backbone_dir = VIT;
        CHECK(uad_run(&p) == UAD_OK);
    }
    uad_vit *v = NULL;
    CHECK(uad_vit_load(&v, UAD_VIT_DINOV2, VIT) == UAD_OK);
    if (!v) return;
    static double bank[512 * 48], tok[256 * 48], dist[256];
    for (int i = 0; i < 2; i++) {
        uad_image img;
        CHECK(uad_image_load_resized(&img, tu_fmt("%s/train/good/%03d.png",
                                                  root, i), S, NULL) == UAD_OK);
        vit_tokens(bank + i * 256 * 48, v, &img);
        uad_image_free(&img);
    }
    FILE *fp = fopen(tu_fmt("%s/raw_knn/maps/scores.csv", out), "r");
    CHECK(fp != NULL);
    char line[1024], rel[512];
    double worst = 0;
    int rows = 0, copy_seen = 0;
    while (fp && fgets(line, sizeof line, fp)) {
        float got;
        if (sscanf(line, "%511[^,],%f", rel, &got) != 2) continue;
        uad_image img;
        CHECK(uad_image_load(&img, tu_fmt("%s/%s", root, rel), NULL) ==
              UAD_OK);
        vit_tokens(tok, v, &img);
        uad_image_free(&img);
        for (int i = 0; i < 256; i++) {
            double best = -2;
            for (int j = 0; j < 512; j++) {
                double c = 0;
                for (int d = 0; d < 48; d++)
                    c += tok[i * 48 + d] * bank[j * 48 + d];
                best = c > best ? c : best;
            }
            dist[i] = 1 - best;
        }
        qsort(dist, 256, sizeof *dist, by_desc);
        double want = (dist[0] + dist[1]) / 2;
        worst = check_max(worst, fabs(got - want));
        CHECK_NEAR(got, want, 2e-5);
        if (!strcmp(rel, "test/good/000.png")) {
            copy_seen = 1;
            CHECK(fabs(got) < 1e-5);
        }
        rows++;
    }
    if (fp) fclose(fp);
    printf("kNN on dinov2: %d image scores, largest difference to the "
           "recomputed ones %.3g\n", rows, worst);
    CHECK(rows == 8 && copy_seen); /* 4 good + 2 + 2 evaluated defects */
    char *md = slurp(tu_fmt("%s/report.md", out));
    CHECK_STR_CONTAINS(md, "| backbone checkpoint | " VIT " (frozen) |");
    free(md);
    uad_vit_free(v);
    free(root);
    free(out);
}

int main(void) {
    uad_log_set(tu_quiet_log, NULL, UAD_LOG_WARN);
    char *root = make_dataset();
    char *o1 = tu_tmpdir("run_a"), *o2 = tu_tmpdir("run_b");
    uad_run_params p1 = tiny_params(root, o1), p2 = tiny_params(root, o2);
    CHECK(uad_run(&p1) == UAD_OK);
    CHECK(uad_run(&p2) == UAD_OK);
    const char *files[] = {"report.md", "report.json", "metrics_unified.json",
                           "metrics_knn.json", "model.safetensors",
                           "figures/test_images.png", "figures/synthetic.png",
                           "figures/roc_image.png",
                           "raw_unified/maps/scores.csv"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        CHECK(access(tu_fmt("%s/%s", o1, files[i]), F_OK) == 0);
    /* Same seed, same inputs: identical metrics files. */
    const char *same[] = {"metrics_unified.json", "metrics_knn.json",
                          "model.safetensors"};
    for (int i = 0; i < 3; i++) {
        char *a = slurp(tu_fmt("%s/%s", o1, same[i]));
        char *b = slurp(tu_fmt("%s/%s", o2, same[i]));
        CHECK(a && b && !strcmp(a, b));
        free(a);
        free(b);
    }
    char *md = slurp(tu_fmt("%s/report.md", o1));
    CHECK_STR_CONTAINS(md, "| zero-shot Kn=2 | I-AUROC | P-AUROC | PRO |");
    CHECK_STR_CONTAINS(md, "| uniadc kNN baseline |");
    CHECK_STR_CONTAINS(md, "Image-level confusion");
    CHECK_STR_CONTAINS(md, "peak memory");
    CHECK_STR_CONTAINS(md, "The unified discriminator beats the kNN "
                           "baseline on:");
    free(md);
    /* The raw maps, scored by `uniadc eval`, give the report's metrics. */
    const char *cli = getenv("UAD_CLI");
    if (cli) {
        const char *cmd = tu_fmt(
            "%s eval --data %s --priors %s/priors.yaml --maps %s/raw_unified"
            "/maps --class-maps %s/raw_unified/class_maps --setting zero "
            "--kn 2 --json %s/eval.json --quiet > /dev/null",
            cli, root, root, o1, o1, o1);
        CHECK(system(cmd) == 0);
        char *a = slurp(tu_fmt("%s/eval.json", o1));
        char *b = slurp(tu_fmt("%s/metrics_unified.json", o1));
        /* The metrics block comes first in both files. */
        CHECK(a && b && !strncmp(a, b, strstr(b, "\"counts\"") - b));
        free(a);
        free(b);
    }
    /* --kn all: every normal training image (kNN only, to stay quick). */
    uad_run_params pa = tiny_params(root, tu_fmt("%s/all", o1));
    pa.protocol.kn = UAD_KN_ALL;
    pa.methods = UAD_METHOD_KNN;
    pa.raw = 0;
    CHECK(uad_run(&pa) == UAD_OK);
    char *ra = slurp(tu_fmt("%s/all/report.md", o1));
    CHECK_STR_CONTAINS(ra, "zero-shot Kn=all");
    free(ra);
    /* --calibrate: the saved model carries a tau, also in the report,
     * that keeps both support normals (000, 001) normal; the same run
     * without it reports 0.5. (That tau is the next float above their
     * views' scores is test_model's check.) */
    uad_run_params pc = tiny_params(root, tu_fmt("%s/cal", o1));
    pc.methods = UAD_METHOD_UNIFIED;
    pc.raw = 0;
    pc.calibrate = 1;
    CHECK(uad_run(&pc) == UAD_OK);
    uad_model *mc = NULL;
    CHECK(uad_model_load(&mc, tu_fmt("%s/cal/model.safetensors", o1)) ==
          UAD_OK);
    if (mc) {
        float tau = uad_model_tau(mc);
        printf("calibrated tau %.6f\n", tau);
        CHECK(tau != 0.5f && tau > 0.0f && tau < 1.0f);
        char *rj = slurp(tu_fmt("%s/cal/report.json", o1));
        const char *at = rj ? strstr(rj, "\"tau\":\t") : NULL;
        CHECK(at && (float)strtod(at + 7, NULL) == tau);
        CHECK_STR_CONTAINS(rj, "\"tau_calibrated\":\ttrue");
        free(rj);
        for (int i = 0; i < 2; i++) {
            uad_image im = {0};
            uad_prediction pr;
            CHECK(uad_image_load(&im, tu_fmt("%s/train/good/%03d.png", root,
                                             i), NULL) == UAD_OK);
            CHECK(uad_predict(&pr, mc, &im) == UAD_OK);
            CHECK(pr.image_class == 0);
            uad_prediction_free(&pr);
            uad_image_free(&im);
        }
    }
    uad_model_free(mc);
    char *r1 = slurp(tu_fmt("%s/report.json", o1));
    CHECK_STR_CONTAINS(r1, "\"tau\":\t0.5,");
    CHECK_STR_CONTAINS(r1, "\"tau_calibrated\":\tfalse");
    free(r1);
    /* A run without a setting or with a missing dataset fails cleanly. */
    uad_run_params bad = tiny_params("/nonexistent", tu_fmt("%s/x", o1));
    CHECK(uad_run(&bad) == UAD_ERR_IO);
    CHECK(access(tu_fmt("%s/x/report.md", o1), F_OK) != 0);
    free(root);
    free(o1);
    free(o2);
    test_knn_vit();
    return check_report("test_run");
}
