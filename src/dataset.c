/* dataset.c - MVTec AD layout discovery, the few-shot protocol (SPEC
 * section 2), masks, and a full decode check of a dataset. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

static const char *const k_exts[] = {"png", "jpg", "jpeg", "tif", "tiff",
                                     "bmp"};
#define ACCEPTED "png, jpg, jpeg, tif, tiff, bmp"

struct uad_dataset {
    char *root;
    uad_sample *samples[2]; /* per split */
    size_t count[2];
    char **cats;            /* test categories except good, folder order */
    size_t n_cats;
    char **strings;         /* every string the samples point to */
    size_t n_strings, cap_strings;
};

static bool is_image_name(const char *name) {
    char ext[8];
    if (name[0] == '.') return false; /* hidden, "._x" sidecars too */
    uad_path_ext(name, ext, sizeof ext);
    for (size_t i = 0; i < sizeof k_exts / sizeof *k_exts; i++)
        if (!strcmp(ext, k_exts[i])) return true;
    return false;
}

static bool is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static void free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* Sorted names in dir accepted by `keep` (files) or sub-directories
 * (dirs != 0). */
static uad_status list_dir(char ***out, size_t *n_out, const char *dir,
                           int dirs) {
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d)
        return uad_fail(UAD_ERR_IO, "%s: cannot open directory: %s", dir,
                        strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    uad_status st = UAD_OK;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *full = uad_path_join(dir, e->d_name);
        if (!full) { st = UAD_ERR_NOMEM; break; }
        bool keep = dirs ? is_dir(full)
                         : (is_image_name(e->d_name) && is_file(full));
        free(full);
        if (!keep) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) { st = uad_fail(UAD_ERR_NOMEM, "out of memory"); break; }
            names = nn;
        }
        if (!(names[n] = uad_strdup(e->d_name))) { st = UAD_ERR_NOMEM; break; }
        n++;
    }
    closedir(d);
    if (st != UAD_OK) {
        free_names(names, n);
        return st;
    }
    if (n) qsort(names, n, sizeof *names, uad_strcmp_ptr);
    *out = names;
    *n_out = n;
    return UAD_OK;
}

/* Keep a string alive for the dataset's lifetime. */
static const char *keep(uad_dataset *ds, char *s) {
    if (!s) return NULL;
    if (ds->n_strings == ds->cap_strings) {
        size_t cap = ds->cap_strings ? 2 * ds->cap_strings : 256;
        char **nn = realloc(ds->strings, cap * sizeof *nn);
        if (!nn) {
            free(s);
            uad_fail(UAD_ERR_NOMEM, "out of memory");
            return NULL;
        }
        ds->strings = nn;
        ds->cap_strings = cap;
    }
    ds->strings[ds->n_strings++] = s;
    return s;
}

static char *join3(const char *a, const char *b, const char *c) {
    char *ab = uad_path_join(a, b);
    if (!ab) return NULL;
    char *abc = uad_path_join(ab, c);
    free(ab);
    return abc;
}

static char *stem_of(const char *name) {
    char *s = uad_strdup(name);
    if (!s) return NULL;
    char *dot = strrchr(s, '.');
    if (dot && dot != s) *dot = 0;
    return s;
}

/* ground_truth/<cat>/<stem>_mask.<ext>: png first, then any accepted. */
static char *find_mask(const char *root, const char *cat, const char *stem) {
    size_t n = strlen(stem) + 16;
    char *name = uad_malloc(n);
    if (!name) return NULL;
    const char *exts[] = {"png", "PNG", "tif", "tiff", "bmp", "jpg",
                          "jpeg", "TIF", "TIFF", "BMP", "JPG", "JPEG"};
    for (size_t i = 0; i < sizeof exts / sizeof *exts; i++) {
        snprintf(name, n, "%s_mask.%s", stem, exts[i]);
        char *path = uad_path_join(root, "ground_truth");
        char *full = path ? join3(path, cat, name) : NULL;
        free(path);
        if (full && is_file(full)) {
            free(name);
            return full;
        }
        free(full);
    }
    free(name);
    return NULL;
}

static uad_status grow_samples(uad_dataset *ds, int split, size_t extra) {
    size_t n = ds->count[split] + extra;
    uad_sample *ns = realloc(ds->samples[split], (n ? n : 1) * sizeof *ns);
    if (!ns) return uad_fail(UAD_ERR_NOMEM, "out of memory");
    ds->samples[split] = ns;
    return UAD_OK;
}

/* Add every image of root/<split_dir>/<cat> to the split. */
static uad_status add_folder(uad_dataset *ds, int split, const char *cat,
                             int class_id, char **missing, size_t *n_missing) {
    const char *split_dir = split == UAD_SPLIT_TRAIN ? "train" : "test";
    char *dir = join3(ds->root, split_dir, cat);
    if (!dir) return UAD_ERR_NOMEM;
    char **names = NULL;
    size_t n = 0;
    uad_status st = is_dir(dir) ? list_dir(&names, &n, dir, 0)
                                : uad_fail(UAD_ERR_IO,
                                           "%s: missing folder", dir);
    if (st == UAD_OK && n == 0)
        st = uad_fail(UAD_ERR_DATA, "no images found in %s (accepted: %s)",
                      dir, ACCEPTED);
    if (st == UAD_OK) st = grow_samples(ds, split, n);
    for (size_t i = 0; st == UAD_OK && i < n; i++) {
        uad_sample *s = &ds->samples[split][ds->count[split]];
        memset(s, 0, sizeof *s);
        char rel[4096];
        snprintf(rel, sizeof rel, "%s/%s/%s", split_dir, cat, names[i]);
        s->rel_path = keep(ds, uad_strdup(rel));
        s->abs_path = keep(ds, uad_path_join(dir, names[i]));
        s->category = keep(ds, uad_strdup(cat));
        s->stem = keep(ds, stem_of(names[i]));
        s->class_id = class_id;
        if (!s->rel_path || !s->abs_path || !s->category || !s->stem) {
            st = UAD_ERR_NOMEM;
            break;
        }
        if (split == UAD_SPLIT_TEST && strcmp(cat, "good") != 0) {
            s->mask_path = keep(ds, find_mask(ds->root, cat, s->stem));
            if (!s->mask_path && *n_missing < 20)
                missing[(*n_missing)++] = uad_strdup(rel);
            else if (!s->mask_path)
                (*n_missing)++;
        }
        ds->count[split]++;
    }
    free(dir);
    free_names(names, n);
    return st;
}

/* Check test folders against the priors, both ways, listing every
 * mismatch at once. */
static uad_status match_priors(const uad_dataset *ds, const uad_priors *pri) {
    uad_problems pl = {0};
    for (size_t i = 0; i < ds->n_cats; i++) {
        const char *c = ds->cats[i];
        if (!strcmp(c, "combined") || uad_priors_find(pri, c) >= 0)
            continue;
        uad_problems_add(&pl, uad_fail(UAD_ERR_DATA,
                         "%s/test/%s: category '%s' is not in the priors "
                         "(add it to the priors file, or remove the folder)",
                         ds->root, c, c));
    }
    for (int k = 0; k < pri->n_categories; k++) {
        const char *name = pri->categories[k].name;
        bool found = false;
        for (size_t i = 0; i < ds->n_cats && !found; i++)
            found = !strcmp(ds->cats[i], name);
        if (!found)
            uad_problems_add(&pl, uad_fail(UAD_ERR_DATA,
                             "%s/test: no folder for prior category '%s'",
                             ds->root, name));
    }
    return uad_problems_finish(&pl, "mismatch(es) between the dataset and "
                                    "the priors");
}

/* Two images of one folder with the same stem would share a mask and a
 * result file: refuse them, naming both. */
static uad_status check_stems(const uad_dataset *ds) {
    uad_problems pl = {0};
    for (int sp = 0; sp < 2; sp++) {
        const uad_sample *t = ds->samples[sp];
        for (size_t i = 0; i < ds->count[sp]; i++)
            for (size_t j = i + 1; j < ds->count[sp] &&
                 !strcmp(t[j].category, t[i].category); j++)
                if (!strcmp(t[i].stem, t[j].stem))
                    uad_problems_add(&pl, uad_fail(UAD_ERR_DATA,
                                     "%s and %s share the name '%s' (they "
                                     "would share a mask and a result file)",
                                     t[i].rel_path, t[j].rel_path,
                                     t[i].stem));
    }
    return uad_problems_finish(&pl, "name clash(es)");
}

static int class_of(const uad_priors *pri, const char *cat) {
    if (!strcmp(cat, "good")) return 0;
    if (!strcmp(cat, "combined")) return UAD_CLASS_COMBINED;
    if (!pri) return UAD_CLASS_UNKNOWN;
    return uad_priors_find(pri, cat) + 1;
}

static uad_status scan(uad_dataset *ds, const uad_priors *pri) {
    char *test = uad_path_join(ds->root, "test");
    if (!test) return UAD_ERR_NOMEM;
    uad_status st = is_dir(test) ? list_dir(&ds->cats, &ds->n_cats, test, 1)
                                 : uad_fail(UAD_ERR_IO, "%s: missing folder",
                                            test);
    free(test);
    if (st != UAD_OK) return st;
    /* "good" is not a defect category: drop it from the list. */
    bool have_good = false;
    for (size_t i = 0; i < ds->n_cats; i++) {
        if (strcmp(ds->cats[i], "good") != 0) continue;
        have_good = true;
        free(ds->cats[i]);
        memmove(ds->cats + i, ds->cats + i + 1,
                (ds->n_cats - i - 1) * sizeof *ds->cats);
        ds->n_cats--;
        break;
    }
    if (!have_good && ds->n_cats == 0)
        return uad_fail(UAD_ERR_DATA, "no images found in %s/test (no "
                        "category folders)", ds->root);
    if (pri && (st = match_priors(ds, pri)) != UAD_OK) return st;

    char *missing[20];
    size_t n_missing = 0;
    st = add_folder(ds, UAD_SPLIT_TRAIN, "good", 0, missing, &n_missing);
    if (st == UAD_OK && have_good)
        st = add_folder(ds, UAD_SPLIT_TEST, "good", 0, missing, &n_missing);
    else if (st == UAD_OK)
        UAD_WARN("%s/test/good: missing; image-level metrics need normal "
                 "test images", ds->root);
    for (size_t i = 0; st == UAD_OK && i < ds->n_cats; i++)
        st = add_folder(ds, UAD_SPLIT_TEST, ds->cats[i],
                        class_of(pri, ds->cats[i]), missing, &n_missing);
    if (st == UAD_OK && n_missing) {
        char list[1600] = "";
        for (size_t i = 0; i < n_missing && i < 20; i++) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, "\n  %s",
                     missing[i] ? missing[i] : "?");
        }
        st = uad_fail(UAD_ERR_DATA,
                      "%s: %zu defect image(s) without a mask "
                      "ground_truth/<category>/<stem>_mask.png:%s%s",
                      ds->root, n_missing, list,
                      n_missing > 20 ? "\n  ..." : "");
    }
    for (size_t i = 0; i < n_missing && i < 20; i++) free(missing[i]);
    if (st == UAD_OK) st = check_stems(ds);
    return st;
}

uad_status uad_dataset_open(uad_dataset **out, const char *root,
                            const uad_priors *priors) {
    *out = NULL;
    if (!is_dir(root))
        return uad_fail(UAD_ERR_IO, "%s: not a directory", root);
    uad_dataset *ds = uad_calloc(1, sizeof *ds);
    if (!ds) return UAD_ERR_NOMEM;
    ds->root = uad_strdup(root);
    uad_status st = ds->root ? scan(ds, priors) : UAD_ERR_NOMEM;
    if (st != UAD_OK) {
        uad_dataset_free(ds);
        return st;
    }
    *out = ds;
    return UAD_OK;
}

void uad_dataset_free(uad_dataset *ds) {
    if (!ds) return;
    for (size_t i = 0; i < ds->n_strings; i++) free(ds->strings[i]);
    free(ds->strings);
    free(ds->samples[0]);
    free(ds->samples[1]);
    free_names(ds->cats, ds->n_cats);
    free(ds->root);
    free(ds);
}

const char *uad_dataset_root(const uad_dataset *ds) { return ds->root; }

size_t uad_dataset_count(const uad_dataset *ds, uad_split split) {
    UAD_ASSERT(split == UAD_SPLIT_TRAIN || split == UAD_SPLIT_TEST);
    return ds->count[split];
}

const uad_sample *uad_dataset_sample(const uad_dataset *ds, uad_split split,
                                     size_t i) {
    UAD_ASSERT(split == UAD_SPLIT_TRAIN || split == UAD_SPLIT_TEST);
    UAD_ASSERT(i < ds->count[split]);
    return &ds->samples[split][i];
}

size_t uad_dataset_n_categories(const uad_dataset *ds) { return ds->n_cats; }

const char *uad_dataset_category(const uad_dataset *ds, size_t i) {
    UAD_ASSERT(i < ds->n_cats);
    return ds->cats[i];
}

/* ---- the few-shot protocol (SPEC section 2) ------------------------ */

/* The largest Ka of the published settings: the first 2 files of every
 * defect folder are never evaluated, so zero- and few-shot results are
 * computed on the same images. */
#define UAD_HELD_OUT 2

static uad_status push(const uad_sample ***arr, size_t *n,
                       const uad_sample *s) {
    const uad_sample **na = realloc(*arr, (*n + 1) * sizeof *na);
    if (!na) return uad_fail(UAD_ERR_NOMEM, "out of memory");
    na[(*n)++] = s;
    *arr = na;
    return UAD_OK;
}

static uad_status pick_normals(uad_support *sup, const uad_dataset *ds,
                               int kn) {
    size_t avail = ds->count[UAD_SPLIT_TRAIN];
    size_t want = kn == UAD_KN_ALL ? avail : (size_t)kn;
    if (kn != UAD_KN_ALL && kn < 1)
        return uad_fail(UAD_ERR_USAGE, "kn must be at least 1 (got %d)", kn);
    if (want > avail)
        return uad_fail(UAD_ERR_DATA,
                        "%s/train/good: %zu normal shots requested but only "
                        "%zu images exist", ds->root, want, avail);
    for (size_t i = 0; i < want; i++) {
        uad_status st = push(&sup->normals, &sup->n_normals,
                             &ds->samples[UAD_SPLIT_TRAIN][i]);
        if (st != UAD_OK) return st;
    }
    return UAD_OK;
}

static uad_status pick_test(uad_support *sup, const uad_dataset *ds,
                            const uad_protocol *p) {
    const uad_sample *t = ds->samples[UAD_SPLIT_TEST];
    size_t pos = 0;
    for (size_t i = 0; i < ds->count[UAD_SPLIT_TEST]; i++) {
        bool defect = strcmp(t[i].category, "good") != 0;
        pos = (i > 0 && !strcmp(t[i - 1].category, t[i].category)) ? pos + 1
                                                                    : 0;
        uad_status st = UAD_OK;
        if (p->setting == UAD_SETTING_FEW && defect &&
            t[i].class_id != UAD_CLASS_COMBINED && pos < (size_t)p->ka)
            st = push(&sup->examples, &sup->n_examples, &t[i]);
        /* Examples must never be evaluated: hold out ka if larger. */
        size_t hold = p->ka > UAD_HELD_OUT ? (size_t)p->ka : UAD_HELD_OUT;
        bool held = p->setting != UAD_SETTING_ALL && defect && pos < hold;
        if (st == UAD_OK && !held) st = push(&sup->eval, &sup->n_eval, &t[i]);
        if (st != UAD_OK) return st;
    }
    return UAD_OK;
}

static uad_status check_ka(const uad_dataset *ds, int ka) {
    if (ka < 1)
        return uad_fail(UAD_ERR_USAGE,
                        "few-shot needs ka >= 1 examples per category");
    for (size_t c = 0; c < ds->n_cats; c++) {
        if (!strcmp(ds->cats[c], "combined")) continue;
        size_t n = 0;
        for (size_t i = 0; i < ds->count[UAD_SPLIT_TEST]; i++)
            n += !strcmp(ds->samples[UAD_SPLIT_TEST][i].category,
                         ds->cats[c]);
        if (n < (size_t)ka)
            return uad_fail(UAD_ERR_DATA,
                            "%s/test/%s: %d examples requested but only %zu "
                            "images exist", ds->root, ds->cats[c], ka, n);
    }
    return UAD_OK;
}

uad_status uad_dataset_support(uad_support *out, const uad_dataset *ds,
                               const uad_protocol *p) {
    memset(out, 0, sizeof *out);
    uad_status st = UAD_OK;
    if (p->setting == UAD_SETTING_FEW) st = check_ka(ds, p->ka);
    if (st == UAD_OK && p->setting != UAD_SETTING_ALL)
        st = pick_normals(out, ds, p->kn);
    if (st == UAD_OK) st = pick_test(out, ds, p);
    if (st != UAD_OK) uad_support_free(out);
    return st;
}

void uad_support_free(uad_support *sup) {
    free(sup->normals);
    free(sup->examples);
    free(sup->eval);
    memset(sup, 0, sizeof *sup);
}

/* ---- masks --------------------------------------------------------- */

/* Number of distinct values in a plane, stopping at `stop`. */
static size_t count_distinct(const float *v, size_t n, size_t stop) {
    float seen[16];
    size_t k = 0;
    for (size_t i = 0; i < n && k < stop; i++) {
        size_t j = 0;
        while (j < k && seen[j] != v[i]) j++;
        if (j == k) seen[k++] = v[i];
    }
    return k;
}

uad_status uad_mask_load_flags(uad_mask *out, const char *path,
                               const uad_image_params *p, int *flags) {
    memset(out, 0, sizeof *out);
    *flags = 0;
    uad_image img;
    uad_status st = uad_image_load(&img, path, p);
    if (st != UAD_OK) return st;
    size_t plane = (size_t)img.w * (size_t)img.h;
    if (!strcmp(img.format, "jpeg")) *flags |= UAD_MASKF_JPEG;
    else if (count_distinct(img.data, plane * (size_t)img.c, 3) > 2)
        *flags |= UAD_MASKF_MULTI;
    out->data = uad_malloc(plane);
    if (!out->data) {
        uad_image_free(&img);
        return UAD_ERR_NOMEM;
    }
    for (size_t i = 0; i < plane; i++) {
        uint8_t any = 0;
        for (int c = 0; c < img.c; c++)
            any |= img.data[(size_t)c * plane + i] != 0.0f;
        out->data[i] = any;
    }
    out->w = img.w;
    out->h = img.h;
    uad_image_free(&img);
    return UAD_OK;
}

uad_status uad_mask_load(uad_mask *out, const char *path,
                         const uad_image_params *p) {
    int flags;
    uad_status st = uad_mask_load_flags(out, path, p, &flags);
    if (flags & UAD_MASKF_JPEG)
        UAD_WARN("%s: mask stored as JPEG; compression noise may mark "
                 "extra pixels as anomalous (any non-zero value counts)",
                 path);
    if (flags & UAD_MASKF_MULTI)
        UAD_WARN("%s: mask has more than two distinct values; every "
                 "non-zero pixel counts as anomalous", path);
    return st;
}

void uad_warn_group_add(uad_warn_group *g, const char *path) {
    if (g->count < 3)
        snprintf(g->first[g->count], sizeof g->first[0], "%s", path);
    g->count++;
    UAD_INFO("%s", path);
}

void uad_warn_group_flush(uad_warn_group *g, const char *what) {
    if (g->count == 0) return;
    size_t k = g->count < 3 ? g->count : 3;
    UAD_WARN("%zu %s (e.g. %s%s%s%s%s%s; --verbose lists every file)",
             g->count, what, g->first[0], k > 1 ? ", " : "",
             k > 1 ? g->first[1] : "", k > 2 ? ", " : "",
             k > 2 ? g->first[2] : "", g->count > 3 ? ", ..." : "");
    memset(g, 0, sizeof *g);
}

void uad_mask_free(uad_mask *m) {
    free(m->data);
    memset(m, 0, sizeof *m);
}

uad_status uad_image_load_resized(uad_image *out, const char *path, int size,
                                  const uad_image_params *ip) {
    uad_image raw;
    uad_status st = uad_image_load(&raw, path, ip);
    if (st != UAD_OK) return st;
    st = uad_image_resize(out, &raw, size, size, UAD_RESIZE_BILINEAR);
    if (st == UAD_OK) {
        out->bit_depth = raw.bit_depth;
        out->src_channels = raw.src_channels;
        memcpy(out->format, raw.format, sizeof out->format);
    }
    uad_image_free(&raw);
    return st;
}

uad_status uad_mask_load_resized(uint8_t **out, const char *path, int size,
                                 const uad_image_params *ip) {
    *out = NULL;
    uad_mask m;
    uad_status st = uad_mask_load(&m, path, ip);
    if (st != UAD_OK) return st;
    uad_image a = {0}, b = {0};
    st = uad_image_alloc(&a, m.w, m.h, 1);
    for (size_t i = 0; st == UAD_OK && i < (size_t)m.w * m.h; i++)
        a.data[i] = m.data[i];
    if (st == UAD_OK)
        st = uad_image_resize(&b, &a, size, size, UAD_RESIZE_NEAREST);
    uint8_t *o = st == UAD_OK ? uad_malloc((size_t)size * size) : NULL;
    if (st == UAD_OK && !o) st = UAD_ERR_NOMEM;
    for (size_t i = 0; st == UAD_OK && i < (size_t)size * size; i++)
        o[i] = b.data[i] != 0;
    uad_image_free(&a);
    uad_image_free(&b);
    uad_mask_free(&m);
    *out = o;
    return st;
}

/* ---- full check ---------------------------------------------------- */

static void stats_image(uad_dataset_stats *s, const uad_image *img) {
    if (s->n_images == 0) {
        s->min_w = s->max_w = img->w;
        s->min_h = s->max_h = img->h;
    }
    s->n_images++;
    if (img->w < s->min_w) s->min_w = img->w;
    if (img->w > s->max_w) s->max_w = img->w;
    if (img->h < s->min_h) s->min_h = img->h;
    if (img->h > s->max_h) s->max_h = img->h;
    if (img->src_channels >= 0 && img->src_channels < 31)
        s->channels_seen |= 1 << img->src_channels;
    if (img->bit_depth >= 0 && img->bit_depth <= 32)
        s->depths_seen |= (int)(1u << (img->bit_depth & 31));
}

/* Returns true for an empty mask. */
static bool stats_mask(uad_dataset_stats *s, const uad_mask *m) {
    size_t n = (size_t)m->w * (size_t)m->h, on = 0;
    for (size_t i = 0; i < n; i++) on += m->data[i];
    double f = n ? (double)on / (double)n : 0;
    if (s->n_masks == 0) s->mask_frac_min = s->mask_frac_max = f;
    if (f < s->mask_frac_min) s->mask_frac_min = f;
    if (f > s->mask_frac_max) s->mask_frac_max = f;
    s->mask_frac_mean += f; /* divided by n_masks at the end */
    s->n_masks++;
    s->n_empty_masks += on == 0;
    return on == 0;
}

/* Decode one sample (and its mask), recording problems. */
/* Repeated mask findings, reported once per kind by uad_dataset_check. */
typedef struct {
    uad_warn_group multi, jpeg, empty;
} mask_warnings;

static void check_sample(uad_problems *pl, uad_dataset_stats *s,
                         mask_warnings *mw, const uad_sample *smp,
                         const uad_image_params *p) {
    uad_image img;
    uad_status st = uad_image_load(&img, smp->abs_path, p);
    if (st != UAD_OK) {
        uad_problems_add(pl, st);
        return;
    }
    stats_image(s, &img);
    if (smp->mask_path) {
        uad_mask m;
        int flags = 0;
        st = uad_mask_load_flags(&m, smp->mask_path, p, &flags);
        if (flags & UAD_MASKF_MULTI) uad_warn_group_add(&mw->multi,
                                                        smp->mask_path);
        if (flags & UAD_MASKF_JPEG) uad_warn_group_add(&mw->jpeg,
                                                       smp->mask_path);
        if (st != UAD_OK) {
            uad_problems_add(pl, st);
        } else if (m.w != img.w || m.h != img.h) {
            uad_fail(UAD_ERR_DATA,
                     "%s is %dx%d but its mask %s is %dx%d (W x H)",
                     smp->abs_path, img.w, img.h, smp->mask_path, m.w, m.h);
            uad_problems_add(pl, UAD_ERR_DATA);
        } else {
            if (stats_mask(s, &m)) uad_warn_group_add(&mw->empty,
                                                      smp->mask_path);
        }
        uad_mask_free(&m);
    }
    uad_image_free(&img);
}

uad_status uad_dataset_check(const uad_dataset *ds, const uad_image_params *p,
                             uad_dataset_stats *stats) {
    uad_dataset_stats local;
    uad_dataset_stats *s = stats ? stats : &local;
    memset(s, 0, sizeof *s);
    size_t warn0 = uad_log_warning_count();
    uad_problems pl = {0};
    mask_warnings mw;
    memset(&mw, 0, sizeof mw);
    size_t total = ds->count[0] + ds->count[1], done = 0;
    for (int split = 0; split < 2; split++) {
        for (size_t i = 0; i < ds->count[split]; i++) {
            check_sample(&pl, s, &mw, &ds->samples[split][i], p);
            uad_progress("checking images", ++done, total);
        }
    }
    if (s->n_masks) s->mask_frac_mean /= (double)s->n_masks;
    uad_warn_group_flush(&mw.multi, "masks have more than two distinct "
                         "values; every non-zero pixel counts as anomalous");
    uad_warn_group_flush(&mw.jpeg, "masks are stored as JPEG; compression "
                         "noise may mark extra pixels as anomalous");
    uad_warn_group_flush(&mw.empty, "masks of defect images have no "
                         "anomalous pixel; these images count as normal "
                         "for detection metrics");
    s->n_warnings = uad_log_warning_count() - warn0;
    return uad_problems_finish(&pl, "file(s) failed to load");
}
