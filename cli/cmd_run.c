/* cmd_run.c - `uniadc run`: the whole job in one go (uad_run), then the
 * report's summary table on stdout. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char *k_usage =
    "usage: uniadc run --data DIR --priors FILE --setting zero|few --kn N|all\n"
    "                  [--ka N] --out DIR [--seed S] [--method both|unified|knn]\n"
    "                  [--per-category N] [--candidates N] [--size N]\n"
    "                  [--width N] [--backbone hybrid|gabor|stem|KIND:DIR]\n"
    "                  [--text clip:DIR|dinotxt:DIR] [--epochs N]\n"
    "                  [--steps N] [--batch N] [--augment] [--bf16] [--raw]\n"
    "                  [--calibrate] [--quiet] [--verbose]\n\n"
    "Picks the support set (SPEC section 2), synthesizes defect images of\n"
    "every category, trains the discriminator, predicts every evaluated\n"
    "test image, evaluates, and writes OUT/report.md, report.json,\n"
    "metrics_<method>.json, model.safetensors and figures/*.png. --method\n"
    "both (default) also runs the training-free kNN baseline. --raw writes\n"
    "the maps as `uniadc eval` reads them (OUT/raw_<method>/maps, class_maps).\n"
    "Point --data at your own MVTec-AD-layout folder.\n\n"
    "--calibrate sets the unified model's tau just above every anomaly\n"
    "score of the normal support images' eight flips and rotations\n"
    "(default: tau 0.5).\n"
    "--backbone dinov2:DIR|dinov3:DIR|clip:DIR trains on a frozen\n"
    "pretrained ViT (Hugging Face checkpoint folder; --size default 224,\n"
    "rounded to its patch) and runs the kNN baseline on its last block's\n"
    "patch tokens with cosine distances (AnomalyDINO with DINOv2).\n"
    "--text clip:DIR|dinotxt:DIR: frozen category embeddings from a CLIP\n"
    "or dino.txt text encoder (the width becomes its projection width).\n"
    "--bf16: every matmul and convolution of the job (backbone, text\n"
    "encoder, training, prediction, kNN) with bf16 inputs and f32\n"
    "accumulation (AVX-512 CPUs; fastest with AVX-512 bf16 or AMX).\n";

enum { O_DATA = 1, O_PRIORS, O_SET, O_KN, O_KA, O_OUT, O_METHOD, O_PER,
       O_CAND, O_SIZE, O_WIDTH, O_BACKBONE, O_EPOCHS, O_STEPS, O_BATCH,
       O_AUG, O_BF16, O_RAW, O_TEXT, O_CALIB };

/* Positive integer option into *dst; 0 or an exit code. */
static int int_opt(int *dst, const char *name, const char *arg) {
    long v = cli_parse_long(arg);
    if (v < 1 || v > 1000000)
        return cli_usage_error("run", k_usage, "--%s wants a positive "
                               "integer, got '%s'", name, arg);
    *dst = (int)v;
    return 0;
}

static int parse(uad_run_params *p, cli_common *com, int argc, char **argv) {
    static struct option opts[] = {
        {"data", 1, 0, O_DATA}, {"priors", 1, 0, O_PRIORS},
        {"setting", 1, 0, O_SET}, {"kn", 1, 0, O_KN}, {"ka", 1, 0, O_KA},
        {"out", 1, 0, O_OUT}, {"method", 1, 0, O_METHOD},
        {"per-category", 1, 0, O_PER}, {"candidates", 1, 0, O_CAND},
        {"size", 1, 0, O_SIZE}, {"width", 1, 0, O_WIDTH},
        {"backbone", 1, 0, O_BACKBONE}, {"epochs", 1, 0, O_EPOCHS},
        {"steps", 1, 0, O_STEPS}, {"batch", 1, 0, O_BATCH},
        {"augment", 0, 0, O_AUG}, {"bf16", 0, 0, O_BF16},
        {"raw", 0, 0, O_RAW}, {"text", 1, 0, O_TEXT},
        {"calibrate", 0, 0, O_CALIB}, CLI_COMMON_OPTIONS,
        {0, 0, 0, 0}};
    const char *set = NULL, *kn = NULL, *ka = NULL;
    int opt, rc = 0, size_given = 0, width_given = 0;
    while (!rc && (opt = cli_next_opt(argc, argv, opts, com, "run", k_usage)) > 0) {
        switch (opt) {
        case O_DATA: p->data_dir = optarg; break;
        case O_PRIORS: p->priors_path = optarg; break;
        case O_SET: set = optarg; break;
        case O_KN: kn = optarg; break;
        case O_KA: ka = optarg; break;
        case O_OUT: p->out_dir = optarg; break;
        case O_METHOD:
            if (!strcmp(optarg, "both"))
                p->methods = UAD_METHOD_UNIFIED | UAD_METHOD_KNN;
            else if (!strcmp(optarg, "unified")) p->methods = UAD_METHOD_UNIFIED;
            else if (!strcmp(optarg, "knn")) p->methods = UAD_METHOD_KNN;
            else rc = cli_usage_error("run", k_usage, "--method must be both, "
                                      "unified or knn, got '%s'", optarg);
            break;
        case O_PER: rc = int_opt(&p->synth.per_category, "per-category",
                                 optarg); break;
        case O_CAND: rc = int_opt(&p->synth.n_candidates, "candidates",
                                  optarg); break;
        case O_SIZE:
            size_given = 1;
            rc = int_opt(&p->model.input_size, "size", optarg);
            break;
        case O_WIDTH:
            width_given = 1;
            rc = int_opt(&p->model.width, "width", optarg);
            break;
        case O_BACKBONE:
            if (uad_backbone_parse_spec(&p->model.backbone,
                                        &p->model.backbone_dir, optarg))
                rc = cli_usage_error("run", k_usage, "%s", uad_last_error());
            break;
        case O_TEXT:
            p->text = optarg;
            if (uad_text_parse_spec(NULL, NULL, optarg))
                rc = cli_usage_error("run", k_usage, "--text wants clip:DIR "
                                     "or dinotxt:DIR, got '%s'", optarg);
            break;
        case O_EPOCHS: rc = int_opt(&p->train.epochs, "epochs", optarg); break;
        case O_STEPS: rc = int_opt(&p->train.steps_per_epoch, "steps",
                                   optarg); break;
        case O_BATCH: rc = int_opt(&p->train.batch, "batch", optarg); break;
        case O_AUG: p->train.augment = 1; break;
        case O_BF16: p->train.bf16 = 1; break;
        case O_RAW: p->raw = 1; break;
        case O_CALIB: p->calibrate = 1; break;
        }
    }
    if (opt < 0) return -opt;
    if (rc) return rc;
    if (optind != argc)
        return cli_usage_error("run", k_usage, "unexpected argument '%s'",
                               argv[optind]);
    if (!p->data_dir || !p->priors_path || !p->out_dir || !set)
        return cli_usage_error("run", k_usage, "--data, --priors, --setting "
                               "and --out are required");
    if (uad_backbone_is_vit(p->model.backbone) && !size_given)
        p->model.input_size = 224;
    if (p->text && width_given)
        return cli_usage_error("run", k_usage, "--width and --text exclude "
                               "each other: the text encoder sets the width");
    return cli_parse_protocol(&p->protocol, set, kn, ka, "run", k_usage);
}

/* Print report.md up to its first per-method section: the summary. */
static void print_summary(const char *out_dir) {
    size_t n = strlen(out_dir) + 16;
    char *path = malloc(n);
    if (!path) return;
    snprintf(path, n, "%s/report.md", out_dir);
    FILE *fp = fopen(path, "r");
    free(path);
    if (!fp) return;
    char line[4096];
    int seen_table = 0;
    while (fgets(line, sizeof line, fp)) {
        if (line[0] == '|') seen_table = 1;
        else if (seen_table) break;
        if (seen_table) fputs(line, stdout);
    }
    fclose(fp);
}

int cmd_run(int argc, char **argv) {
    uad_run_params p = uad_run_default_params();
    cli_common com = {0, 1};
    int rc = parse(&p, &com, argc, argv);
    if (rc) return rc;
    cli_common_apply(&com);
    p.seed = com.seed;
    uad_status st = uad_run(&p);
    if (st != UAD_OK) return cli_fail(st);
    print_summary(p.out_dir);
    if (com.verbosity)
        fprintf(stderr, "uniadc run: report in %s/report.md\n", p.out_dir);
    return 0;
}
