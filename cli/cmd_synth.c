/* cmd_synth.c - `uniadc synth`: synthesize labelled defect images from a
 * dataset's normal images, guided by its priors (zero-shot) or by its
 * first Ka defect examples (few-shot); write images, masks, a manifest
 * and one contact sheet per category. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *k_usage =
    "usage: uniadc synth --data DIR --priors FILE --out DIR\n"
    "                    [--setting zero|few --kn N [--ka N]]\n"
    "                    [--per-category 16] [--candidates 32] [--size 256]\n"
    "                    [--threads 1] [--seed S] [--quiet] [--verbose]\n\n"
    "Makes --per-category defect images per category from the first Kn\n"
    "normal images (train/good, default Kn 2) resized to --size x --size.\n"
    "zero (default): guided by the priors' descriptions, shapes, sizes;\n"
    "few: pasting the defects of the first Ka images of each test folder.\n"
    "Each kept image is the best of --candidates. Writes into --out:\n"
    "  images/<category>_NNN.png (.tiff, float, for sources deeper than 8\n"
    "  bits), masks/<category>_NNN_mask.png (0/255),\n"
    "  manifest.csv (image,mask,category,method,score,seed,source_image),\n"
    "  sheets/<category>.png (rows: normal source, mask, result),\n"
    "  foreground/NNN.png (the estimated foreground of normal image NNN).\n"
    "The weight-free procedural engine is used (no model downloads).\n";

/* Failures found by the command itself (output files), reported in
 * place of the library's last error. */
static char g_msg[4400];
static uad_status cmd_fail(uad_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    return st;
}

typedef struct synth_opts {
    const char *data, *priors, *out, *setting, *kn, *ka;
    long per_category, candidates, size, threads;
} synth_opts;

static int parse_num(long *dst, const char *arg, const char *name) {
    long v = cli_parse_long(arg);
    if (v < 1)
        return cli_usage_error("synth", k_usage, "%s wants a positive "
                               "integer, got '%s'", name, arg);
    *dst = v;
    return 0;
}

static int parse_args(synth_opts *o, cli_common *com, int argc,
                      char **argv) {
    static struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"priors", required_argument, 0, 'p'},
        {"out", required_argument, 0, 'o'},
        {"setting", required_argument, 0, 's'},
        {"kn", required_argument, 0, 'n'},
        {"ka", required_argument, 0, 'a'},
        {"per-category", required_argument, 0, 'k'},
        {"candidates", required_argument, 0, 'b'},
        {"size", required_argument, 0, 'z'},
        {"threads", required_argument, 0, 't'},
        CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    int opt, rc = 0;
    while (!rc && (opt = cli_next_opt(argc, argv, opts, com, "synth", k_usage)) > 0) {
        switch (opt) {
        case 'd': o->data = optarg; break;
        case 'p': o->priors = optarg; break;
        case 'o': o->out = optarg; break;
        case 's': o->setting = optarg; break;
        case 'n': o->kn = optarg; break;
        case 'a': o->ka = optarg; break;
        case 'k': rc = parse_num(&o->per_category, optarg, "--per-category"); break;
        case 'b': rc = parse_num(&o->candidates, optarg, "--candidates"); break;
        case 'z': rc = parse_num(&o->size, optarg, "--size"); break;
        case 't': rc = parse_num(&o->threads, optarg, "--threads"); break;
        }
    }
    if (opt < 0) return -opt;
    if (rc) return rc;
    if (optind != argc)
        return cli_usage_error("synth", k_usage, "unexpected argument '%s'",
                               argv[optind]);
    if (!o->data || !o->priors || !o->out)
        return cli_usage_error("synth", k_usage, "--data, --priors and "
                               "--out are required");
    if (o->size > 8192)
        return cli_usage_error("synth", k_usage, "--size at most 8192");
    return 0;
}

/* mkdir -p for the output folders. */
static int make_dirs(const char *path) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return -1;
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST) return -1;
            *p = c;
            if (!c) return 0;
        }
    }
}

/* Paste `src` (any size) resized to t x t at column col, row row of the
 * sheet; a 1-plane source fills every plane of the sheet. */
static uad_status sheet_put(uad_image *sheet, const uad_image *src, int col,
                            int row, int t) {
    uad_image th;
    uad_status st = uad_image_resize(&th, src, t, t, UAD_RESIZE_BILINEAR);
    if (st) return st;
    size_t sn = (size_t)sheet->w * sheet->h, tn = (size_t)t * t;
    for (int c = 0; c < sheet->c; c++)
        for (int y = 0; y < t; y++)
            for (int x = 0; x < t; x++)
                sheet->data[c * sn + (size_t)(row * t + y) * sheet->w +
                            col * t + x] =
                    th.data[(th.c == 1 ? 0 : c) * tn + (size_t)y * t + x];
    uad_image_free(&th);
    return UAD_OK;
}

/* Mask bytes as a one-plane 0/1 image (caller frees with uad_image_free). */
static uad_status mask_image(uad_image *out, const uint8_t *m, int w, int h) {
    uad_status st = uad_image_alloc(out, w, h, 1);
    for (size_t i = 0; !st && i < (size_t)w * h; i++) out->data[i] = m[i] != 0;
    return st;
}

/* One sheet per category: rows normal source, mask, result. */
static uad_status write_sheet(const char *path, const uad_synth_list *l,
                              int class_id, const uad_image *normals,
                              int size) {
    int cols = 0, t = size < 128 ? size : 128, col = 0;
    for (size_t i = 0; i < l->n; i++) cols += l->items[i].class_id == class_id;
    if (!cols) return UAD_OK;
    uad_image sheet, mi;
    uad_status st = uad_image_alloc(&sheet, cols * t, 3 * t, normals[0].c);
    for (size_t i = 0; !st && i < l->n; i++) {
        const uad_synth_sample *s = &l->items[i];
        if (s->class_id != class_id) continue;
        st = sheet_put(&sheet, &normals[s->source], col, 0, t);
        if (!st) st = mask_image(&mi, s->mask, s->image.w, s->image.h);
        if (!st) {
            st = sheet_put(&sheet, &mi, col, 1, t);
            uad_image_free(&mi);
        }
        if (!st) st = sheet_put(&sheet, &s->image, col, 2, t);
        col++;
    }
    if (!st) st = uad_image_write_png(path, &sheet);
    uad_image_free(&sheet);
    return st;
}

/* A CSV field, quoted when it holds a comma, quote or newline. */
static void csv_field(FILE *fp, const char *s, const char *sep) {
    if (strpbrk(s, ",\"\n")) {
        fputc('"', fp);
        for (; *s; s++) {
            if (*s == '"') fputc('"', fp);
            fputc(*s, fp);
        }
        fputc('"', fp);
    } else {
        fputs(s, fp);
    }
    fputs(sep, fp);
}

/* Images, masks and the manifest rows; the manifest goes through a
 * temporary file and rename(). */
static uad_status write_samples(const char *out, const uad_synth_list *l,
                                const uad_priors *pri,
                                const uad_support *sup) {
    char path[4096], tmp[4200], img_rel[512], mask_rel[512];
    snprintf(path, sizeof path, "%s/manifest.csv", out);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "w");
    if (!fp) return cmd_fail(UAD_ERR_IO, "%s: cannot write: %s", tmp,
                             strerror(errno));
    fprintf(fp, "image,mask,category,method,score,seed,source_image\n");
    uad_status st = UAD_OK;
    int k = 0, prev = -1;
    for (size_t i = 0; !st && i < l->n; i++) {
        const uad_synth_sample *s = &l->items[i];
        const char *cat = pri->categories[s->class_id - 1].name;
        k = s->class_id == prev ? k + 1 : 0;
        prev = s->class_id;
        /* Sources deeper than 8 bits (16-bit, float) are written as
         * lossless float TIFF: an 8-bit PNG would quantise them (and
         * clip float ranges), so synthetic images would differ from
         * normal ones outside the defect. */
        int deep = s->image.bit_depth > 8;
        snprintf(img_rel, sizeof img_rel, "images/%s_%03d.%s", cat, k,
                 deep ? "tiff" : "png");
        snprintf(mask_rel, sizeof mask_rel, "masks/%s_%03d_mask.png", cat, k);
        snprintf(path, sizeof path, "%s/%s", out, img_rel);
        st = deep ? uad_image_write_tiff(path, &s->image)
                  : uad_image_write_png(path, &s->image);
        uad_image mi;
        if (!st) st = mask_image(&mi, s->mask, s->image.w, s->image.h);
        if (!st) {
            snprintf(path, sizeof path, "%s/%s", out, mask_rel);
            st = uad_image_write_png(path, &mi);
            uad_image_free(&mi);
        }
        csv_field(fp, img_rel, ",");
        csv_field(fp, mask_rel, ",");
        csv_field(fp, cat, ",");
        csv_field(fp, s->method, ",");
        fprintf(fp, "%.6f,%llu,", s->score, (unsigned long long)s->seed);
        csv_field(fp, sup->normals[s->source]->rel_path, "\n");
    }
    if (fclose(fp) && !st)
        st = cmd_fail(UAD_ERR_IO, "%s: write failed", tmp);
    snprintf(path, sizeof path, "%s/manifest.csv", out);
    if (!st && rename(tmp, path))
        st = cmd_fail(UAD_ERR_IO, "%s: cannot rename into place: %s", path,
                      strerror(errno));
    if (st) unlink(tmp);
    return st;
}

/* The support's normal images, resized; *n counts those loaded (free
 * them with free_images even on failure). */
static uad_status load_normals(uad_image **out, size_t *n,
                               const uad_support *sup, int size) {
    *n = 0;
    *out = calloc(sup->n_normals ? sup->n_normals : 1, sizeof **out);
    if (!*out) return UAD_ERR_NOMEM;
    uad_status st = UAD_OK;
    for (; !st && *n < sup->n_normals; (*n)++)
        st = uad_image_load_resized(&(*out)[*n], sup->normals[*n]->abs_path,
                                    size, NULL);
    return st;
}

/* Free n images (the array too) and, when given, n masks. */
static void free_images(uad_image *imgs, uint8_t **masks, size_t n) {
    for (size_t i = 0; imgs && i < n; i++) uad_image_free(&imgs[i]);
    for (size_t i = 0; masks && i < n; i++) free(masks[i]);
    free(imgs);
    free(masks);
}

/* Few-shot examples: each support example resized, with its class. */
static uad_status load_examples(uad_synth_example **out, uad_image **imgs,
                                uint8_t ***masks, const uad_support *sup,
                                int size) {
    size_t n = sup->n_examples;
    *out = calloc(n ? n : 1, sizeof **out);
    *imgs = calloc(n ? n : 1, sizeof **imgs);
    *masks = calloc(n ? n : 1, sizeof **masks);
    if (!*out || !*imgs || !*masks) return UAD_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const uad_sample *s = sup->examples[i];
        uad_status st = uad_image_load_resized(&(*imgs)[i], s->abs_path,
                                               size, NULL);
        if (!st)
            st = uad_mask_load_resized(&(*masks)[i], s->mask_path, size, NULL);
        if (st) return st;
        (*out)[i] = (uad_synth_example){&(*imgs)[i], (*masks)[i],
                                        s->class_id, s->rel_path};
    }
    return UAD_OK;
}

/* The estimated foreground of every normal image, 0/255. */
static uad_status write_foregrounds(const char *out, const uad_synth *syn,
                                    const uad_image *normals, size_t n) {
    char path[4096];
    uad_status st = UAD_OK;
    for (size_t i = 0; !st && i < n; i++) {
        uad_image mi;
        snprintf(path, sizeof path, "%s/foreground/%03zu.png", out, i);
        st = mask_image(&mi, uad_synth_foreground(syn, i), normals[i].w,
                        normals[i].h);
        if (!st) st = uad_image_write_png(path, &mi);
        uad_image_free(&mi);
    }
    return st;
}

/* Output folders, samples, manifest, sheets. */
static uad_status write_all(const char *out, const uad_synth_list *l,
                            const uad_priors *pri, const uad_support *sup,
                            const uad_synth *syn, const uad_image *normals,
                            int size) {
    char path[4096];
    const char *sub[4] = {"images", "masks", "sheets", "foreground"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", out, sub[i]);
        if (make_dirs(path))
            return cmd_fail(UAD_ERR_IO, "%s: cannot create: %s", path,
                            strerror(errno));
    }
    uad_status st = write_samples(out, l, pri, sup);
    if (!st) st = write_foregrounds(out, syn, normals, sup->n_normals);
    for (int c = 0; !st && c < pri->n_categories; c++) {
        snprintf(path, sizeof path, "%s/sheets/%s.png", out,
                 pri->categories[c].name);
        st = write_sheet(path, l, c + 1, normals, size);
    }
    return st;
}

int cmd_synth(int argc, char **argv) {
    synth_opts o = {0};
    o.per_category = 16;
    o.candidates = 32;
    o.size = 256;
    o.threads = 1;
    cli_common com = {0, 1};
    int rc = parse_args(&o, &com, argc, argv);
    if (rc) return rc;
    uad_protocol proto = {UAD_SETTING_ZERO, 2, 0};
    if (o.setting || o.kn || o.ka) {
        rc = cli_parse_protocol(&proto, o.setting ? o.setting : "zero",
                                o.kn ? o.kn : "2", o.ka, "synth", k_usage);
        if (rc) return rc;
    }
    cli_common_apply(&com);

    /* Dataset, priors, support set (SPEC section 2's protocol). */
    uad_priors *pri = NULL;
    uad_dataset *ds = NULL;
    uad_support sup = {0};
    uad_image *normals = NULL, *ex_img = NULL;
    uint8_t **ex_mask = NULL;
    uad_synth_example *ex = NULL;
    uad_synth *syn = NULL;
    uad_synth_list list = {0};
    size_t n_norm = 0;
    int size = (int)o.size;
    uad_status st = uad_priors_load(&pri, o.priors);
    if (!st) st = uad_dataset_open(&ds, o.data, pri);
    if (!st) st = uad_dataset_support(&sup, ds, &proto);
    if (!st) st = load_normals(&normals, &n_norm, &sup, size);

    /* Synthesize. */
    uad_synth_params sp = uad_synth_default_params();
    sp.seed = com.seed;
    sp.per_category = (int)o.per_category;
    sp.n_candidates = (int)o.candidates;
    sp.n_threads = (int)o.threads;
    if (!st) st = uad_synth_create(&syn, normals, n_norm, &sp);
    if (!st && proto.setting == UAD_SETTING_FEW) {
        st = load_examples(&ex, &ex_img, &ex_mask, &sup, size);
        if (!st) st = uad_synth_few_shot(&list, syn, ex, sup.n_examples);
    } else if (!st) {
        st = uad_synth_zero_shot(&list, syn, pri);
    }
    if (!st) st = write_all(o.out, &list, pri, &sup, syn, normals, size);
    if (!st && com.verbosity)
        fprintf(stderr, "uniadc synth: %zu samples written to %s\n", list.n,
                o.out);

    free_images(ex_img, ex_mask, sup.n_examples);
    free(ex);
    uad_synth_list_free(&list);
    uad_synth_free(syn);
    free_images(normals, NULL, n_norm);
    uad_support_free(&sup);
    uad_dataset_free(ds);
    uad_priors_free(pri);
    if (st && g_msg[0]) {
        fprintf(stderr, "uniadc: error: %s\n", g_msg);
        return (int)st;
    }
    return st ? cli_fail(st) : 0;
}
