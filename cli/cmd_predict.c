/* cmd_predict.c - `uniadc predict`: run a trained discriminator on images,
 * one JSON line per image on stdout, pictures and (with --raw) the maps in
 * the layout `uniadc eval --maps` reads. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *k_usage =
    "usage: uniadc predict --model MODEL [--out DIR] [--raw] IMAGE...\n"
    "       uniadc predict --model MODEL --dir DATASET --out DIR [--raw]\n\n"
    "Prints one JSON line per image: path, score (I_d), anomalous (some\n"
    "pixel at or above tau), class name and id (I_c), and the anomalous\n"
    "area in pixels per class. With --out, writes <out>/[<category>/]\n"
    "<stem>_view.png: the input, a heat-map overlay of the anomaly map and\n"
    "the colour-coded class map with a legend. --dir takes a dataset in\n"
    "MVTec layout and predicts its test images; <category> is the image's\n"
    "folder. --raw adds <out>/<category>/<stem>.tiff (float anomaly map),\n"
    "<out>/<category>/<stem>.png (8-bit class ids) and <out>/scores.csv, the\n"
    "layout read by `uniadc eval --maps OUT --class-maps OUT`.\n"
    "Maps have each input's own size.\n\n"
    "options: --tau T (override the model's threshold), --quiet, --verbose\n"
    "  --bf16  bf16 matmul/conv inputs, f32 accumulation (AVX-512 CPUs;\n"
    "          fastest with AVX-512 bf16 or AMX)\n"
    "  --backbone KIND:DIR  the ViT checkpoint folder of a model trained on\n"
    "         one (default: the folder recorded in the model file); it must\n"
    "         be of the recorded kind and shape\n";

typedef struct item {
    const char *path;  /* as given or absolute (dataset)            */
    const char *rel;   /* path written to JSON and scores.csv        */
    char category[256];
    char stem[256];
} item;

/* Category = name of the parent folder ("." if none); stem = file name
 * without its extension. */
static void split_path(item *it, const char *path) {
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    snprintf(it->stem, sizeof it->stem, "%s", name);
    char *dot = strrchr(it->stem, '.');
    if (dot && dot != it->stem) *dot = 0;
    if (!slash) {
        snprintf(it->category, sizeof it->category, ".");
        return;
    }
    const char *p = slash;
    while (p > path && p[-1] != '/') p--;
    int len = (int)(slash - p);
    snprintf(it->category, sizeof it->category, "%.*s", len ? len : 1,
             len ? p : ".");
}

/* mkdir -p of path's folder part. */
static int make_parent(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) && errno != EEXIST) {
            fprintf(stderr, "uniadc: error: %s: cannot create: %s\n", buf,
                    strerror(errno));
            return UAD_ERR_IO;
        }
        *p = '/';
    }
    return 0;
}

static void print_json(const item *it, const uad_model *m,
                       const uad_prediction *pr) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "path", it->rel);
    cJSON_AddNumberToObject(o, "score", (double)pr->score);
    cJSON_AddBoolToObject(o, "anomalous", pr->image_class != 0);
    cJSON_AddStringToObject(o, "class", uad_model_category(m, pr->image_class));
    cJSON_AddNumberToObject(o, "class_id", pr->image_class);
    cJSON *area = cJSON_AddObjectToObject(o, "area");
    for (int y = 1; y <= pr->n_classes; y++)
        cJSON_AddNumberToObject(area, uad_model_category(m, y),
                                (double)pr->area[y]);
    cJSON_AddNumberToObject(o, "width", pr->w);
    cJSON_AddNumberToObject(o, "height", pr->h);
    char *s = cJSON_PrintUnformatted(o);
    if (s) puts(s);
    free(s);
    cJSON_Delete(o);
}

/* The raw maps of one image: float anomaly map and 8-bit class ids. */
static uad_status write_raw(const char *out, const item *it,
                            const uad_prediction *pr) {
    char path[4096];
    size_t hw = (size_t)pr->w * pr->h;
    uad_image map = {pr->w, pr->h, 1, pr->det, 32, 1, "tiff"};
    snprintf(path, sizeof path, "%s/%s/%s.tiff", out, it->category, it->stem);
    uad_status st = uad_image_write_tiff(path, &map);
    uad_image ids;
    if (!st) st = uad_image_alloc(&ids, pr->w, pr->h, 1);
    if (st) return st;
    for (size_t k = 0; k < hw; k++) ids.data[k] = (float)pr->cls[k] / 255.0f;
    snprintf(path, sizeof path, "%s/%s/%s.png", out, it->category, it->stem);
    st = uad_image_write_png(path, &ids);
    uad_image_free(&ids);
    return st;
}

typedef struct predict_opts {
    const char *model, *dir, *out, *backbone;
    float tau;
    int raw;
    int bf16;
} predict_opts;

/* Predict, report and write the files of one image. */
static int run_one(const predict_opts *o, uad_model *m, const item *it,
                   FILE *scores) {
    uad_image img;
    uad_prediction pr;
    char path[4096];
    uad_status st = uad_image_load(&img, it->path, NULL);
    if (st) return cli_fail(st);
    st = uad_predict(&pr, m, &img);
    if (st) {
        uad_image_free(&img);
        return cli_fail(st);
    }
    print_json(it, m, &pr);
    int rc = 0;
    if (o->out) {
        snprintf(path, sizeof path, "%s/%s/%s_view.png", o->out, it->category,
                 it->stem);
        rc = make_parent(path);
        if (!rc && (st = uad_predict_write_view(path, m, &img, &pr)))
            rc = cli_fail(st);
    }
    if (!rc && o->raw && (st = write_raw(o->out, it, &pr))) rc = cli_fail(st);
    if (!rc && scores) fprintf(scores, "%s,%.9g\n", it->rel, (double)pr.score);
    uad_prediction_free(&pr);
    uad_image_free(&img);
    return rc;
}

static int parse_args(predict_opts *o, cli_common *com, int argc,
                      char **argv) {
    static struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"dir", required_argument, 0, 'd'},
        {"out", required_argument, 0, 'o'},
        {"raw", no_argument, 0, 'r'},
        {"tau", required_argument, 0, 't'},
        {"backbone", required_argument, 0, 'b'},
        {"bf16", no_argument, 0, 'F'},
        CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    int opt;
    while ((opt = cli_next_opt(argc, argv, opts, com, "predict", k_usage)) > 0) {
        char *end;
        switch (opt) {
        case 'm': o->model = optarg; break;
        case 'd': o->dir = optarg; break;
        case 'o': o->out = optarg; break;
        case 'r': o->raw = 1; break;
        case 'F': o->bf16 = 1; break;
        case 'b': o->backbone = optarg; break;
        case 't':
            o->tau = strtof(optarg, &end);
            if (end == optarg || *end || !(o->tau > 0 && o->tau < 1))
                return cli_usage_error("predict", k_usage, "--tau wants a "
                                       "number in (0, 1), got '%s'", optarg);
            break;
        }
    }
    if (opt < 0) return -opt;
    if (!o->model)
        return cli_usage_error("predict", k_usage, "--model is required");
    if (!o->dir == (optind == argc))
        return cli_usage_error("predict", k_usage, "give either IMAGE... or "
                               "--dir DATASET");
    if ((o->dir || o->raw) && !o->out)
        return cli_usage_error("predict", k_usage, "--dir and --raw need "
                               "--out DIR");
    return 0;
}

/* Items from the arguments or from the dataset's test split. */
static int list_items(item **items, size_t *n, uad_dataset **ds,
                      const predict_opts *o, int argc, char **argv) {
    if (o->dir) {
        uad_status st = uad_dataset_open(ds, o->dir, NULL);
        if (st) return cli_fail(st);
        *n = uad_dataset_count(*ds, UAD_SPLIT_TEST);
    } else {
        *n = (size_t)(argc - optind);
    }
    *items = calloc(*n ? *n : 1, sizeof **items);
    if (!*items) return cli_fail(UAD_ERR_NOMEM);
    for (size_t i = 0; i < *n; i++) {
        item *it = &(*items)[i];
        if (o->dir) {
            const uad_sample *s = uad_dataset_sample(*ds, UAD_SPLIT_TEST, i);
            it->path = s->abs_path;
            it->rel = s->rel_path;
            snprintf(it->category, sizeof it->category, "%s", s->category);
            snprintf(it->stem, sizeof it->stem, "%s", s->stem);
        } else {
            it->path = it->rel = argv[optind + (int)i];
            split_path(it, it->path);
        }
    }
    /* images named on the command line that cannot be opened are all
     * listed before any prediction is printed */
    int missing = 0;
    for (size_t i = 0; !o->dir && i < *n; i++)
        if (access((*items)[i].path, R_OK) != 0) {
            fprintf(stderr, "uniadc: error: %s: cannot open: %s\n",
                    (*items)[i].path, strerror(errno));
            missing++;
        }
    return missing ? UAD_ERR_IO : 0;
}

int cmd_predict(int argc, char **argv) {
    predict_opts o = {NULL, NULL, NULL, NULL, 0, 0, 0};
    cli_common com = {0, 1};
    int rc = parse_args(&o, &com, argc, argv);
    if (rc) return rc;
    cli_common_apply(&com);
    if (o.bf16 && uad_set_bf16(1) != UAD_OK) return cli_fail(UAD_ERR_USAGE);

    uad_model *m = NULL;
    uad_dataset *ds = NULL;
    item *items = NULL;
    size_t n = 0;
    uad_status st = uad_model_load_with(&m, o.model, o.backbone);
    if (st) return cli_fail(st);
    if (o.tau > 0) uad_model_set_tau(m, o.tau);
    rc = list_items(&items, &n, &ds, &o, argc, argv);

    /* scores.csv goes through a temporary file and rename() */
    char csv[4096], tmp[4200];
    FILE *scores = NULL;
    if (!rc && o.raw) {
        snprintf(csv, sizeof csv, "%s/scores.csv", o.out);
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", csv, (long)getpid());
        rc = make_parent(csv);
        if (!rc && !(scores = fopen(tmp, "w"))) {
            fprintf(stderr, "uniadc: error: %s: cannot write: %s\n", tmp,
                    strerror(errno));
            rc = UAD_ERR_IO;
        }
        if (scores) fprintf(scores, "path,score\n");
    }
    for (size_t i = 0; !rc && i < n; i++) {
        rc = run_one(&o, m, &items[i], scores);
        fflush(stdout);
    }
    if (scores) {
        if (fclose(scores) && !rc) rc = UAD_ERR_IO;
        if (!rc && rename(tmp, csv)) {
            fprintf(stderr, "uniadc: error: %s: cannot rename into place: "
                            "%s\n", csv, strerror(errno));
            rc = UAD_ERR_IO;
        }
        if (rc) unlink(tmp);
    }
    free(items);
    uad_dataset_free(ds);
    uad_model_free(m);
    return rc;
}
