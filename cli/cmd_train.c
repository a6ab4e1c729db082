/* cmd_train.c - `uniadc train`: train the multi-task discriminator on a
 * dataset's support set (SPEC section 2) and synthetic samples from
 * `uniadc synth`, write the model file. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *k_usage =
    "usage: uniadc train --data DIR --priors FILE --setting zero|few --kn N\n"
    "                    [--ka N] [--synth DIR] --out MODEL [options]\n\n"
    "Trains the discriminator on the first N normal images of train/good,\n"
    "the synthetic samples listed in DIR/manifest.csv (columns image, mask,\n"
    "category; paths relative to DIR; from `uniadc synth`) and, few-shot,\n"
    "the first Ka images of every defect folder with their masks.\n\n"
    "options:\n"
    "  --width C        embedding width (default 64; published 1024)\n"
    "  --size S         input side, multiple of 32 (default 256; published\n"
    "                   512); ViT backbones: rounded to the patch\n"
    "                   (default 224)\n"
    "  --published      --width 1024 --size 512\n"
    "  --backbone NAME  gabor | stem | hybrid (default gabor), or a frozen\n"
    "                   pretrained ViT: dinov2:DIR | dinov3:DIR | clip:DIR\n"
    "                   (Hugging Face checkpoint folder; its path is\n"
    "                   recorded in the model, the weights are not copied;\n"
    "                   default size 224, --published 512, rounded to a\n"
    "                   multiple of the patch)\n"
    "  --text clip:DIR | dinotxt:DIR\n"
    "                   frozen category embeddings from a CLIP or dino.txt\n"
    "                   text encoder (names and descriptions of the\n"
    "                   priors, 10 prompt templates); the width becomes\n"
    "                   its projection width\n"
    "                   (default: learnable embeddings)\n"
    "  --epochs N       default 50 (5 steps each)\n"
    "  --steps N        steps per epoch, default 5\n"
    "  --batch N        default 16\n"
    "  --augment        random flips and 90-degree rotations\n"
    "  --bf16           bf16 matmul/conv inputs, backbone features included\n"
    "                   (AVX-512 CPUs; fastest with AVX-512 bf16 or AMX)\n"
    "  --threads N      compute threads (default: all cores)\n"
    "  --temp-lr X      learning-rate factor of the temperature eps\n"
    "                   (default 1, as published)\n"
    "  --calibrate      set tau just above the highest anomaly score of the\n"
    "                   normal support images' flips and 90-degree\n"
    "                   rotations (default tau: 0.5)\n"
    "  --seed N         initialisation, batches, augmentation (default 0)\n"
    "  --quiet, --verbose\n";

/* ---- the synthesis manifest ------------------------------------------ */

/* Split one CSV line into at most n fields in place (RFC 4180 quotes). */
static int csv_split(char *line, char **f, int n) {
    int k = 0;
    char *p = line;
    while (k < n) {
        char *out = p;
        f[k++] = p;
        if (*p == '"') {
            char *q = p + 1;
            for (;;) {
                if (!*q) break;
                if (*q == '"' && q[1] == '"') {
                    *out++ = '"';
                    q += 2;
                } else if (*q == '"') {
                    q++;
                    break;
                } else {
                    *out++ = *q++;
                }
            }
            p = q;
        } else {
            while (*p && *p != ',' && *p != '\n' && *p != '\r') *out++ = *p++;
        }
        char c = *p;
        *out = 0;
        if (c != ',') break;
        p++;
    }
    return k;
}

typedef struct synth_row {
    char *image, *mask;
    int class_id;
} synth_row;

static int column(char **f, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(f[i], name)) return i;
    return -1;
}

/* Rows of DIR/manifest.csv; categories must be prior categories. */
static int read_manifest(synth_row **rows, size_t *n_rows, const char *dir,
                         const uad_priors *pri) {
    char path[4096], line[8192], *f[16];
    snprintf(path, sizeof path, "%s/manifest.csv", dir);
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "uniadc: error: %s: cannot open: %s\n", path,
                strerror(errno));
        return UAD_ERR_IO;
    }
    int nf = fgets(line, sizeof line, fp) ? csv_split(line, f, 16) : 0;
    int ci = column(f, nf, "image"), cm = column(f, nf, "mask");
    int cc = column(f, nf, "category"), need = 0;
    need = ci > need ? ci : need;
    need = cm > need ? cm : need;
    need = cc > need ? cc : need;
    if (ci < 0 || cm < 0 || cc < 0) {
        fclose(fp);
        fprintf(stderr, "uniadc: error: %s: header lacks image, mask or "
                        "category\n", path);
        return UAD_ERR_FORMAT;
    }
    size_t cap = 0, ln = 1;
    *rows = NULL;
    *n_rows = 0;
    while (fgets(line, sizeof line, fp)) {
        ln++;
        if (line[0] == '\n' || line[0] == '\r') continue;
        nf = csv_split(line, f, 16);
        int id = nf > need ? uad_priors_find(pri, f[cc]) : -1;
        if (id < 0) {
            fprintf(stderr, "uniadc: error: %s:%zu: %s\n", path, ln,
                    nf > need ? "category is not in the priors"
                              : "too few fields");
            fclose(fp);
            return nf > need ? UAD_ERR_DATA : UAD_ERR_FORMAT;
        }
        if (*n_rows == cap) {
            cap = cap ? 2 * cap : 64;
            synth_row *nr = realloc(*rows, cap * sizeof *nr);
            if (!nr) {
                fclose(fp);
                return UAD_ERR_NOMEM;
            }
            *rows = nr;
        }
        synth_row *r = &(*rows)[(*n_rows)++];
        snprintf(path, sizeof path, "%s/%s", dir, f[ci]);
        r->image = strdup(path);
        snprintf(path, sizeof path, "%s/%s", dir, f[cm]);
        r->mask = strdup(path);
        r->class_id = id + 1;
        snprintf(path, sizeof path, "%s/manifest.csv", dir);
    }
    fclose(fp);
    return 0;
}

/* ---- samples ------------------------------------------------------------ */

typedef struct pool {
    uad_image *img;
    uad_mask *mask;
    uad_train_sample *s;
    size_t n, cap;
} pool;

static void pool_free(pool *p) {
    for (size_t i = 0; i < p->n; i++) {
        uad_image_free(&p->img[i]);
        uad_mask_free(&p->mask[i]);
    }
    free(p->img);
    free(p->mask);
    free(p->s);
}

/* Load one image (and mask) into the pool. */
static uad_status pool_add(pool *p, const char *img, const char *mask,
                           int cls, int real) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        uad_image *ni = realloc(p->img, cap * sizeof *ni);
        if (ni) p->img = ni;
        uad_mask *nm = realloc(p->mask, cap * sizeof *nm);
        if (nm) p->mask = nm;
        uad_train_sample *ns = realloc(p->s, cap * sizeof *ns);
        if (ns) p->s = ns;
        if (!ni || !nm || !ns) return UAD_ERR_NOMEM;
        p->cap = cap;
    }
    uad_image *im = &p->img[p->n];
    uad_mask *mk = &p->mask[p->n];
    memset(mk, 0, sizeof *mk);
    uad_status st = uad_image_load(im, img, NULL);
    if (st) return st;
    if (mask && (st = uad_mask_load(mk, mask, NULL))) {
        uad_image_free(im);
        return st;
    }
    if (mask && (mk->w != im->w || mk->h != im->h)) {
        fprintf(stderr, "uniadc: error: %s is %dx%d but its image %s is "
                        "%dx%d\n", mask, mk->w, mk->h, img, im->w, im->h);
        uad_image_free(im);
        uad_mask_free(mk);
        return UAD_ERR_DATA;
    }
    p->s[p->n] = (uad_train_sample){NULL, mask ? mk->data : NULL,
                                    mask ? cls : 0, real};
    p->n++;
    return UAD_OK;
}

/* Normal support, few-shot examples, synthetic rows. */
static int gather(pool *p, const uad_support *sup, const synth_row *rows,
                  size_t n_rows) {
    uad_status st = UAD_OK;
    for (size_t i = 0; !st && i < sup->n_normals; i++)
        st = pool_add(p, sup->normals[i]->abs_path, NULL, 0, 1);
    for (size_t i = 0; !st && i < sup->n_examples; i++)
        st = pool_add(p, sup->examples[i]->abs_path,
                      sup->examples[i]->mask_path,
                      sup->examples[i]->class_id, 1);
    for (size_t i = 0; !st && i < n_rows; i++)
        st = pool_add(p, rows[i].image, rows[i].mask, rows[i].class_id, 0);
    for (size_t i = 0; i < p->n; i++) p->s[i].image = &p->img[i];
    return st;
}

/* ---- options ------------------------------------------------------------ */

typedef struct train_opts {
    const char *data, *priors, *synth, *out, *setting, *kn, *ka, *text;
    uad_model_params mp;
    uad_train_params tp;
    int calibrate;
    int size_given, width_given, published;
} train_opts;

static int int_opt(int *out, const char *arg, const char *name, long lo,
                   long hi) {
    long v = cli_parse_long(arg);
    if (v < lo || v > hi)
        return cli_usage_error("train", k_usage, "%s wants an integer in "
                               "%ld..%ld, got '%s'", name, lo, hi, arg);
    *out = (int)v;
    return 0;
}

static int parse_opt(train_opts *o, int opt, const char *arg) {
    switch (opt) {
    case 'd': o->data = arg; return 0;
    case 'p': o->priors = arg; return 0;
    case 'S': o->synth = arg; return 0;
    case 'o': o->out = arg; return 0;
    case 's': o->setting = arg; return 0;
    case 'n': o->kn = arg; return 0;
    case 'a': o->ka = arg; return 0;
    case 'W':
        o->width_given = 1;
        return int_opt(&o->mp.width, arg, "--width", 1, 4096);
    case 'z':
        o->size_given = 1;
        return int_opt(&o->mp.input_size, arg, "--size", 1, 2048);
    case 'P':
        o->published = 1;
        return 0;
    case 'X': o->text = arg; return 0;
    case 'b':
        if (uad_backbone_parse_spec(&o->mp.backbone, &o->mp.backbone_dir,
                                    arg))
            return cli_usage_error("train", k_usage, "%s", uad_last_error());
        return 0;
    case 'e': return int_opt(&o->tp.epochs, arg, "--epochs", 1, 100000);
    case 't': return int_opt(&o->tp.steps_per_epoch, arg, "--steps", 1,
                             100000);
    case 'B': return int_opt(&o->tp.batch, arg, "--batch", 1, 4096);
    case 'A': o->tp.augment = 1; return 0;
    case 'F': o->tp.bf16 = 1; return 0;
    case 'T': return int_opt(&o->tp.threads, arg, "--threads", 1, 1024);
    case 'C': o->calibrate = 1; return 0;
    case 'L': {
        char *end;
        o->tp.temp_lr_scale = strtof(arg, &end);
        if (end == arg || *end || !(o->tp.temp_lr_scale >= 0 &&
                                    o->tp.temp_lr_scale <= 1e4))
            return cli_usage_error("train", k_usage, "--temp-lr wants a "
                                   "number in 0..10000, got '%s'", arg);
        return 0;
    }
    }
    return -1;
}

/* --published and the defaults per backbone: built-in 256 (published
 * 512), ViT 224 (published 512), rounded to the patch by the library;
 * width 64 (published 1024) unless a text encoder sets it. */
static int resolve_sizes(train_opts *o) {
    int vit = uad_backbone_is_vit(o->mp.backbone);
    if (!o->size_given)
        o->mp.input_size = o->published ? 512 : vit ? 224 : 256;
    if (!o->width_given && o->published) o->mp.width = 1024;
    if (!vit && o->mp.input_size % 32)
        return cli_usage_error("train", k_usage, "--size %d is not a "
                               "multiple of 32 (built-in backbones)",
                               o->mp.input_size);
    if (o->text && uad_text_parse_spec(NULL, NULL, o->text))
        return cli_usage_error("train", k_usage, "--text wants clip:DIR or "
                               "dinotxt:DIR, got '%s'", o->text);
    return 0;
}

static int parse_args(train_opts *o, cli_common *com, int argc,
                      char **argv) {
    static struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"priors", required_argument, 0, 'p'},
        {"synth", required_argument, 0, 'S'},
        {"out", required_argument, 0, 'o'},
        {"setting", required_argument, 0, 's'},
        {"kn", required_argument, 0, 'n'},
        {"ka", required_argument, 0, 'a'},
        {"width", required_argument, 0, 'W'},
        {"size", required_argument, 0, 'z'},
        {"published", no_argument, 0, 'P'},
        {"backbone", required_argument, 0, 'b'},
        {"text", required_argument, 0, 'X'},
        {"epochs", required_argument, 0, 'e'},
        {"steps", required_argument, 0, 't'},
        {"batch", required_argument, 0, 'B'},
        {"augment", no_argument, 0, 'A'},
        {"bf16", no_argument, 0, 'F'},
        {"threads", required_argument, 0, 'T'},
        {"calibrate", no_argument, 0, 'C'},
        {"temp-lr", required_argument, 0, 'L'},
        CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    int opt;
    while ((opt = cli_next_opt(argc, argv, opts, com, "train", k_usage)) > 0) {
        int r = parse_opt(o, opt, optarg);
        if (r < 0)
            return cli_usage_error("train", k_usage, "unknown option '%s'",
                                   argv[optind - 1]);
        if (r) return r;
    }
    if (opt < 0) return -opt;
    if (optind != argc)
        return cli_usage_error("train", k_usage, "unexpected argument '%s'",
                               argv[optind]);
    if (!o->data || !o->priors || !o->out || !o->setting || !o->kn)
        return cli_usage_error("train", k_usage, "--data, --priors, "
                               "--setting, --kn and --out are required");
    if (!strcmp(o->setting, "zero") && !o->synth)
        return cli_usage_error("train", k_usage, "zero-shot training needs "
                               "--synth DIR (from `uniadc synth`)");
    return resolve_sizes(o);
}

/* ---- the command ------------------------------------------------------- */

/* Trains and writes the model; returns an exit code (message printed). */
static int train_and_save(const train_opts *o, const uad_priors *pri,
                          pool *p, int verbose) {
    const char **names = calloc((size_t)pri->n_categories, sizeof *names);
    if (!names) return cli_fail(UAD_ERR_NOMEM);
    for (int i = 0; i < pri->n_categories; i++)
        names[i] = pri->categories[i].name;
    uad_model *m = NULL;
    uad_train_stats stats;
    uad_model_params mp = o->mp;
    float *embed = NULL;
    int dim = 0;
    uad_status st = UAD_OK;
    if (o->text) {
        /* SPEC section 6: C equals the text embedding width */
        st = uad_text_category_embeddings(&embed, &dim, o->text, pri);
        if (!st && o->width_given && o->mp.width != dim) {
            free(names);
            free(embed);
            return cli_usage_error("train", k_usage, "--width %d differs "
                                   "from the width %d of the text encoder "
                                   "%s", o->mp.width, dim, o->text);
        }
        mp.width = dim;
        mp.embed = embed;
        mp.text = o->text;
    }
    if (!st) st = uad_model_create(&m, names, pri->n_categories, &mp);
    free(names);
    free(embed);
    if (!st) st = uad_train(m, p->s, p->n, &o->tp, &stats);
    if (!st && o->calibrate) {
        size_t n_norm = 0;
        while (n_norm < p->n && p->s[n_norm].real && !p->s[n_norm].mask)
            n_norm++;
        st = uad_predict_calibrate(m, p->img, n_norm, NULL);
    }
    if (!st) st = uad_model_save(m, o->out);
    if (!st && verbose)
        fprintf(stderr, "uniadc train: %zu samples, %d steps in %.1f s, "
                "loss %.4f -> %.4f, tau %.4f; backbone %s, width %d, input "
                "%d; wrote %s\n", p->n, stats.steps, stats.seconds,
                (double)stats.first_loss, (double)stats.last_loss,
                (double)uad_model_tau(m), uad_backbone_name(mp.backbone),
                uad_model_width(m), uad_model_input_size(m), o->out);
    uad_model_free(m);
    return st ? cli_fail(st) : 0;
}

int cmd_train(int argc, char **argv) {
    train_opts o;
    memset(&o, 0, sizeof o);
    o.mp = uad_model_default_params();
    o.tp = uad_train_default_params();
    cli_common com = {0, 1};
    int rc = parse_args(&o, &com, argc, argv);
    if (rc) return rc;
    uad_protocol proto;
    rc = cli_parse_protocol(&proto, o.setting, o.kn, o.ka, "train", k_usage);
    if (rc) return rc;
    if (proto.setting == UAD_SETTING_ALL)
        return cli_usage_error("train", k_usage, "--setting must be zero or "
                               "few");
    o.mp.seed = o.tp.seed = com.seed;
    o.tp.few_shot = proto.setting == UAD_SETTING_FEW;
    cli_common_apply(&com);
    /* the text embeddings and --calibrate in bf16 too */
    if (o.tp.bf16 && uad_set_bf16(1) != UAD_OK) return cli_fail(UAD_ERR_USAGE);

    uad_priors *pri = NULL;
    uad_dataset *ds = NULL;
    uad_support sup;
    memset(&sup, 0, sizeof sup);
    synth_row *rows = NULL;
    size_t n_rows = 0;
    pool p;
    memset(&p, 0, sizeof p);
    uad_status st = uad_priors_load(&pri, o.priors);
    if (!st) st = uad_dataset_open(&ds, o.data, pri);
    if (!st) st = uad_dataset_support(&sup, ds, &proto);
    if (st) rc = cli_fail(st);
    if (!rc && o.synth) rc = read_manifest(&rows, &n_rows, o.synth, pri);
    if (!rc && (st = gather(&p, &sup, rows, n_rows))) rc = cli_fail(st);
    if (!rc) rc = train_and_save(&o, pri, &p, com.verbosity > 0);
    pool_free(&p);
    for (size_t i = 0; i < n_rows; i++) {
        free(rows[i].image);
        free(rows[i].mask);
    }
    free(rows);
    uad_support_free(&sup);
    uad_dataset_free(ds);
    uad_priors_free(pri);
    return rc;
}
