/* cmd_eval.c - `uniadc eval`: score precomputed anomaly (and class) maps
 * against a dataset's ground truth, like MVTec AD's evaluation script. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char *k_usage =
    "usage: uniadc eval --data DIR --maps DIR [--class-maps DIR --priors "
    "FILE]\n"
    "                   [--setting zero|few --kn N [--ka N]] --json OUT\n"
    "                   [--max-pixels N] [--quiet] [--verbose]\n\n"
    "Anomaly maps: float TIFF at <maps>/<category>/<stem>.tiff, any size\n"
    "(resized bilinearly to the mask). Image scores: <maps>/scores.csv\n"
    "(path,score with paths like test/crack/000.png), else the mean of each\n"
    "map's 100 highest values. Class maps: 8-bit PNG of class ids at\n"
    "<class-maps>/<category>/<stem>.png, ids in the priors' order (0 =\n"
    "normal). Without --setting every test image is scored; with it the\n"
    "first 2 images of every defect folder are left out (SPEC section 2).\n"
    "Writes the metrics as JSON to OUT and a Markdown table to stdout.\n"
    "Common options: --seed (unused here), --quiet, --verbose, --help.\n";

int cmd_eval(int argc, char **argv) {
    static struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"maps", required_argument, 0, 'M'},
        {"class-maps", required_argument, 0, 'c'},
        {"priors", required_argument, 0, 'p'},
        {"setting", required_argument, 0, 's'},
        {"kn", required_argument, 0, 'n'},
        {"ka", required_argument, 0, 'a'},
        {"json", required_argument, 0, 'j'},
        {"max-pixels", required_argument, 0, 'm'},
        CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    cli_common com = {0, 1};
    const char *data = NULL, *maps = NULL, *cls = NULL, *pri_path = NULL;
    const char *setting = NULL, *kn = NULL, *ka = NULL, *json = NULL;
    uad_eval_params ep = uad_eval_default_params();
    int opt;
    while ((opt = cli_next_opt(argc, argv, opts, &com, "eval", k_usage)) > 0) {
        switch (opt) {
        case 'd': data = optarg; break;
        case 'M': maps = optarg; break;
        case 'c': cls = optarg; break;
        case 'p': pri_path = optarg; break;
        case 's': setting = optarg; break;
        case 'n': kn = optarg; break;
        case 'a': ka = optarg; break;
        case 'j': json = optarg; break;
        case 'm': {
            long v = cli_parse_long(optarg);
            if (v < 1) return cli_usage_error("eval", k_usage, "--max-pixels "
                                              "wants a positive integer");
            ep.image.max_pixels = (size_t)v;
            break;
        }
        }
    }
    if (opt < 0) return -opt;
    if (optind != argc)
        return cli_usage_error("eval", k_usage, "unexpected argument '%s'",
                               argv[optind]);
    if (!data || !maps || !json)
        return cli_usage_error("eval", k_usage,
                               "--data, --maps and --json are required");
    if (cls && !pri_path)
        return cli_usage_error("eval", k_usage, "--class-maps needs --priors "
                                                "(class ids follow its order)");
    int rc = cli_parse_protocol(&ep.protocol, setting, kn, ka, "eval",
                                k_usage);
    if (!rc) rc = cli_check_output("eval", json);
    if (rc) return rc;
    cli_common_apply(&com);

    uad_priors *pri = NULL;
    uad_dataset *ds = NULL;
    uad_eval_result *res = NULL;
    uad_status st = UAD_OK;
    if (pri_path) st = uad_priors_load(&pri, pri_path);
    if (st == UAD_OK) st = uad_dataset_open(&ds, data, pri);
    if (st == UAD_OK) st = uad_eval_dirs(&res, ds, pri, maps, cls, &ep);
    if (st == UAD_OK) st = uad_eval_write_json(res, json);
    if (st == UAD_OK) uad_eval_print_markdown(res, stdout);
    uad_eval_free(res);
    uad_dataset_free(ds);
    uad_priors_free(pri);
    return st == UAD_OK ? 0 : cli_fail(st);
}
