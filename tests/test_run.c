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
    /* A run without a setting or with a missing dataset fails cleanly. */
    uad_run_params bad = tiny_params("/nonexistent", tu_fmt("%s/x", o1));
    CHECK(uad_run(&bad) == UAD_ERR_IO);
    CHECK(access(tu_fmt("%s/x/report.md", o1), F_OK) != 0);
    free(root);
    free(o1);
    free(o2);
    return check_report("test_run");
}
