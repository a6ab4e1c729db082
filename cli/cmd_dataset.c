/* cmd_dataset.c - `uniadc dataset`: validate a dataset and its priors
 * together, decode every file, print counts and statistics. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char *k_usage =
    "usage: uniadc dataset DIR [--priors FILE] [--setting zero|few --kn N "
    "[--ka N]]\n"
    "                          [--max-pixels N] [--seed S] [--quiet] "
    "[--verbose]\n\n"
    "Checks a dataset in MVTec AD layout (train/good, test/<category>,\n"
    "ground_truth/<category>/<stem>_mask.png) against its priors, decodes\n"
    "every image and mask, and prints counts per split and category, image\n"
    "sizes, channel counts, bit depths and mask statistics. Every problem is\n"
    "listed at once. With --setting, also prints the support and evaluation\n"
    "sets of the few-shot protocol (SPEC section 2).\n";

/* Count test samples of a category. */
static size_t count_cat(const uad_dataset *ds, const char *cat) {
    size_t n = 0;
    for (size_t i = 0; i < uad_dataset_count(ds, UAD_SPLIT_TEST); i++)
        n += !strcmp(uad_dataset_sample(ds, UAD_SPLIT_TEST, i)->category, cat);
    return n;
}

static void print_counts(const uad_dataset *ds) {
    printf("| folder | images |\n| --- | --- |\n");
    printf("| train/good | %zu |\n", uad_dataset_count(ds, UAD_SPLIT_TRAIN));
    size_t good = count_cat(ds, "good");
    if (good) printf("| test/good | %zu |\n", good);
    for (size_t i = 0; i < uad_dataset_n_categories(ds); i++) {
        const char *c = uad_dataset_category(ds, i);
        printf("| test/%s, ground_truth/%s | %zu |\n", c, c, count_cat(ds, c));
    }
}

static void print_bits(const char *label, int bits, const char *unit) {
    printf("%s:", label);
    for (int b = 0; b < 32; b++)
        if ((unsigned)bits >> b & 1u) printf(" %d%s", b, unit);
    printf("\n");
}

static void print_stats(const uad_dataset_stats *s) {
    printf("\nimages decoded: %zu, masks decoded: %zu\n", s->n_images,
           s->n_masks);
    printf("image size (W x H): %d..%d x %d..%d\n", s->min_w, s->max_w,
           s->min_h, s->max_h);
    print_bits("channels in files", s->channels_seen, "");
    /* Bit 0 stands for 32-bit float (1 << (32 & 31)), see dataset.c. */
    printf("bit depths:");
    for (int b = 1; b < 32; b++)
        if ((unsigned)s->depths_seen >> b & 1u) printf(" %d-bit", b);
    if (s->depths_seen & 1) printf(" 32-bit float");
    printf("\n");
    if (s->n_masks)
        printf("anomalous area per mask: min %.4f%%, mean %.4f%%, max "
               "%.4f%%; empty masks: %zu\n", 100 * s->mask_frac_min,
               100 * s->mask_frac_mean, 100 * s->mask_frac_max,
               s->n_empty_masks);
    printf("warnings: %zu\n", s->n_warnings);
}

static void print_support(const uad_support *sup, const uad_protocol *p) {
    printf("\nprotocol: %s-shot, kn=", p->setting == UAD_SETTING_FEW
                                        ? "few" : "zero");
    if (p->kn == UAD_KN_ALL) printf("all");
    else printf("%d", p->kn);
    if (p->setting == UAD_SETTING_FEW) printf(", ka=%d", p->ka);
    printf("\nnormal support (%zu):", sup->n_normals);
    for (size_t i = 0; i < sup->n_normals && i < 8; i++)
        printf(" %s", sup->normals[i]->rel_path);
    printf("%s\nanomaly examples (%zu):", sup->n_normals > 8 ? " ..." : "",
           sup->n_examples);
    for (size_t i = 0; i < sup->n_examples; i++)
        printf(" %s", sup->examples[i]->rel_path);
    printf("\nevaluated test images: %zu\n", sup->n_eval);
}

/* Parse --setting/--kn/--ka into a protocol (shared with eval). */
int cli_parse_protocol(uad_protocol *p, const char *setting, const char *kn,
                       const char *ka, const char *cmd, const char *usage) {
    memset(p, 0, sizeof *p);
    p->setting = UAD_SETTING_ALL;
    if (!setting) {
        if (kn || ka)
            return cli_usage_error(cmd, usage, "--kn/--ka need --setting");
        return 0;
    }
    if (!strcmp(setting, "zero")) p->setting = UAD_SETTING_ZERO;
    else if (!strcmp(setting, "few")) p->setting = UAD_SETTING_FEW;
    else return cli_usage_error(cmd, usage, "--setting must be zero or few, "
                                            "got '%s'", setting);
    if (!kn) return cli_usage_error(cmd, usage, "--setting needs --kn");
    p->kn = !strcmp(kn, "all") ? UAD_KN_ALL : (int)cli_parse_long(kn);
    if (p->kn < 1 && strcmp(kn, "all") != 0)
        return cli_usage_error(cmd, usage, "--kn wants a positive integer "
                                           "or 'all', got '%s'", kn);
    if (p->setting == UAD_SETTING_FEW) {
        if (!ka) return cli_usage_error(cmd, usage, "few-shot needs --ka");
        p->ka = (int)cli_parse_long(ka);
        if (p->ka < 1)
            return cli_usage_error(cmd, usage, "--ka wants a positive "
                                               "integer, got '%s'", ka);
    } else if (ka) {
        return cli_usage_error(cmd, usage, "--ka is for --setting few");
    }
    return 0;
}

int cmd_dataset(int argc, char **argv) {
    static struct option opts[] = {
        {"priors", required_argument, 0, 'p'},
        {"setting", required_argument, 0, 's'},
        {"kn", required_argument, 0, 'n'},
        {"ka", required_argument, 0, 'a'},
        {"max-pixels", required_argument, 0, 'm'},
        CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    cli_common com = {0, 1};
    const char *priors_path = NULL, *setting = NULL, *kn = NULL, *ka = NULL;
    uad_image_params ip = uad_image_default_params();
    int opt;
    while ((opt = cli_next_opt(argc, argv, opts, &com, "dataset", k_usage)) > 0) {
        switch (opt) {
        case 'p': priors_path = optarg; break;
        case 's': setting = optarg; break;
        case 'n': kn = optarg; break;
        case 'a': ka = optarg; break;
        case 'm': {
            long v = cli_parse_long(optarg);
            if (v < 1) return cli_usage_error("dataset", k_usage,
                                              "--max-pixels wants a positive "
                                              "integer, got '%s'", optarg);
            ip.max_pixels = (size_t)v;
            break;
        }
        }
    }
    if (opt < 0) return -opt;
    if (optind != argc - 1)
        return cli_usage_error("dataset", k_usage, "expected one DIR");
    uad_protocol proto;
    int rc = cli_parse_protocol(&proto, setting, kn, ka, "dataset", k_usage);
    if (rc) return rc;
    cli_common_apply(&com);

    uad_priors *pri = NULL;
    uad_dataset *ds = NULL;
    uad_dataset_stats stats;
    uad_support sup = {0};
    uad_status st = UAD_OK;
    size_t warn0 = uad_log_warning_count();
    if (priors_path) st = uad_priors_load(&pri, priors_path);
    if (st == UAD_OK) st = uad_dataset_open(&ds, argv[optind], pri);
    if (st == UAD_OK) st = uad_dataset_check(ds, &ip, &stats);
    if (st == UAD_OK && proto.setting != UAD_SETTING_ALL)
        st = uad_dataset_support(&sup, ds, &proto);
    if (st == UAD_OK) {
        if (pri) printf("object: %s, categories (class ids 1..%d) from %s\n\n",
                        pri->object ? pri->object : "(unnamed)",
                        pri->n_categories, priors_path);
        print_counts(ds);
        stats.n_warnings = uad_log_warning_count() - warn0;
        print_stats(&stats);
        if (proto.setting != UAD_SETTING_ALL) print_support(&sup, &proto);
    }
    uad_support_free(&sup);
    uad_dataset_free(ds);
    uad_priors_free(pri);
    return st == UAD_OK ? 0 : cli_fail(st);
}
