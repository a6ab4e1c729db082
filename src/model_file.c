/* model_file.c - the model file: safetensors holding every parameter as
 * F32 under its PyTorch-style name, and the configuration as string
 * metadata. Loading trusts nothing: every key, shape and value is
 * checked before a model is returned. */
#include "model.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <string.h>

/* Version 2 keys: whether the embeddings are frozen and where they came
 * from; a ViT backbone's folder (as given) and shape, which loading
 * checks against the checkpoint it finds. */
static uad_status write_v2_meta(uad_st_writer *w, const uad_model *m) {
    char num[32];
    uad_status st = uad_st_writer_meta(w, "embed_frozen",
                                       m->embed_frozen ? "1" : "0");
    if (!st && m->text) st = uad_st_writer_meta(w, "text", m->text);
    if (st || !uad_has_vit(m)) return st;
    uad_vit_info in;
    uad_vit_get_info(m->vit, &in);
    int val[3] = {in.hidden, in.layers, in.patch};
    const char *key[3] = {"backbone_hidden", "backbone_layers",
                          "backbone_patch"};
    st = uad_st_writer_meta(w, "backbone_dir", m->vit_dir);
    for (int i = 0; !st && i < 3; i++) {
        snprintf(num, sizeof num, "%d", val[i]);
        st = uad_st_writer_meta(w, key[i], num);
    }
    return st;
}

uad_status uad_model_save(const uad_model *m, const char *path) {
    uad_st_writer *w = uad_st_writer_create();
    if (!w) return uad_fail(UAD_ERR_NOMEM, "%s: out of memory", path);
    uad_status st = UAD_OK;
    for (int i = 0; !st && i < m->n_params; i++) {
        const uad_param *p = &m->params[i];
        st = uad_st_writer_add(w, p->name, UAD_DT_F32, p->ndim, p->shape,
                               m->arena + p->off);
    }

    /* configuration as metadata strings */
    char num[64];
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < m->n_cat; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(m->cat[i]));
    char *cats = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    if (!cats && !st) st = uad_fail(UAD_ERR_NOMEM, "%s: out of memory", path);
    /* version 1 files stay as they were; the new parts need version 2 */
    int v2 = uad_has_vit(m) || m->embed_frozen;
    snprintf(num, sizeof num, "%d", v2 ? UAD_MODEL_FORMAT_VERSION_VIT
                                       : UAD_MODEL_FORMAT_VERSION);
    if (!st) st = uad_st_writer_meta(w, "format", UAD_MODEL_FORMAT);
    if (!st) st = uad_st_writer_meta(w, "format_version", num);
    if (!st) st = uad_st_writer_meta(w, "uniadc_version", uad_version());
    if (!st) st = uad_st_writer_meta(w, "categories", cats);
    if (!st) st = uad_st_writer_meta(w, "backbone",
                                     uad_backbone_name(m->backbone));
    snprintf(num, sizeof num, "%d", m->width);
    if (!st) st = uad_st_writer_meta(w, "width", num);
    snprintf(num, sizeof num, "%d", m->size);
    if (!st) st = uad_st_writer_meta(w, "input_size", num);
    snprintf(num, sizeof num, "%.9g", (double)m->tau);
    if (!st) st = uad_st_writer_meta(w, "tau", num);
    if (!st && v2) st = write_v2_meta(w, m);
    if (!st) st = uad_st_writer_save(w, path);
    free(cats);
    uad_st_writer_free(w);
    return st;
}

/* ---- loading ----------------------------------------------------------- */

static const char *need_meta(const uad_safetensors *st, const char *path,
                             const char *key) {
    const char *v = uad_st_meta(st, key);
    if (!v) uad_fail(UAD_ERR_FORMAT, "%s: no '%s' in the metadata", path, key);
    return v;
}

/* Strict decimal integer in [lo, hi]. */
static int meta_int(int *out, const uad_safetensors *st, const char *path,
                    const char *key, long lo, long hi) {
    const char *v = need_meta(st, path, key);
    if (!v) return 0;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        uad_fail(UAD_ERR_FORMAT, "%s: metadata %s = '%s' is not an integer "
                 "in %ld..%ld", path, key, v, lo, hi);
        return 0;
    }
    *out = (int)x;
    return 1;
}

/* The recorded shape of a ViT backbone. */
typedef struct vit_meta {
    int hidden, layers, patch;
    int frozen;
} vit_meta;

/* Version 2 keys (see write_v2_meta). */
static uad_status read_v2(uad_model_params *p, vit_meta *vm,
                          const uad_safetensors *st, const char *path) {
    const char *v = need_meta(st, path, "embed_frozen");
    if (!v) return UAD_ERR_FORMAT;
    if (strcmp(v, "0") && strcmp(v, "1"))
        return uad_fail(UAD_ERR_FORMAT, "%s: metadata embed_frozen = '%s' "
                        "is not 0 or 1", path, v);
    vm->frozen = v[0] == '1';
    p->text = uad_st_meta(st, "text");
    if (!uad_backbone_is_vit(p->backbone)) return UAD_OK;
    if (!(p->backbone_dir = need_meta(st, path, "backbone_dir")))
        return UAD_ERR_FORMAT;
    if (!meta_int(&vm->hidden, st, path, "backbone_hidden", 1, 65536) ||
        !meta_int(&vm->layers, st, path, "backbone_layers", 1, 4096) ||
        !meta_int(&vm->patch, st, path, "backbone_patch", 1, 2048))
        return UAD_ERR_FORMAT;
    return UAD_OK;
}

/* The configuration from the metadata; names are malloc'd into *names.
 * Strings in *p point into st. */
static uad_status read_config(uad_model_params *p, vit_meta *vm,
                              char ***names, int *n,
                              const uad_safetensors *st, const char *path) {
    const char *v;
    int ver;
    *p = uad_model_default_params();
    memset(vm, 0, sizeof *vm);
    if (!(v = need_meta(st, path, "format"))) return UAD_ERR_FORMAT;
    if (strcmp(v, UAD_MODEL_FORMAT))
        return uad_fail(UAD_ERR_FORMAT, "%s: format '%s' is not a uniadc "
                        "discriminator", path, v);
    if (!meta_int(&ver, st, path, "format_version", 0, 1000000))
        return UAD_ERR_FORMAT;
    if (ver != UAD_MODEL_FORMAT_VERSION && ver != UAD_MODEL_FORMAT_VERSION_VIT)
        return uad_fail(UAD_ERR_FORMAT, "%s: format version %d, this build "
                        "reads %d and %d", path, ver,
                        UAD_MODEL_FORMAT_VERSION,
                        UAD_MODEL_FORMAT_VERSION_VIT);
    if (!meta_int(&p->width, st, path, "width", 1, 4096) ||
        !meta_int(&p->input_size, st, path, "input_size", 1, 2048))
        return UAD_ERR_FORMAT;
    if (!(v = need_meta(st, path, "backbone"))) return UAD_ERR_FORMAT;
    if ((p->backbone = uad_backbone_parse(v)) < 0 ||
        (ver == UAD_MODEL_FORMAT_VERSION && uad_backbone_is_vit(p->backbone)))
        return uad_fail(UAD_ERR_FORMAT, "%s: unknown backbone '%s'", path, v);
    uad_status rs = ver == UAD_MODEL_FORMAT_VERSION_VIT
                        ? read_v2(p, vm, st, path) : UAD_OK;
    if (rs) return rs;
    if (!(v = need_meta(st, path, "tau"))) return UAD_ERR_FORMAT;
    char *end;
    p->tau = strtof(v, &end);
    if (end == v || *end || !(p->tau > 0 && p->tau < 1))
        return uad_fail(UAD_ERR_FORMAT, "%s: tau '%s' is not in (0, 1)", path,
                        v);

    /* categories: a JSON array of strings */
    if (!(v = need_meta(st, path, "categories"))) return UAD_ERR_FORMAT;
    cJSON *arr = cJSON_Parse(v);
    int k = arr && cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
    if (k < 1 || k > 255) {
        cJSON_Delete(arr);
        return uad_fail(UAD_ERR_FORMAT, "%s: categories is not a JSON array "
                        "of 1..255 names", path);
    }
    *names = uad_calloc((size_t)k, sizeof **names);
    uad_status rc = *names ? UAD_OK : UAD_ERR_NOMEM;
    for (int i = 0; !rc && i < k; i++) {
        const cJSON *it = cJSON_GetArrayItem(arr, i);
        if (!cJSON_IsString(it))
            rc = uad_fail(UAD_ERR_FORMAT, "%s: category %d is not a string",
                          path, i + 1);
        else if (!((*names)[i] = uad_strdup(it->valuestring)))
            rc = UAD_ERR_NOMEM;
    }
    cJSON_Delete(arr);
    *n = k;
    return rc;
}

/* Copy and check one parameter tensor. */
static uad_status read_param(uad_model *m, const uad_param *p,
                             const uad_safetensors *st, const char *path) {
    const uad_st_tensor *t = uad_st_find(st, p->name);
    if (!t) return uad_fail(UAD_ERR_FORMAT, "%s: tensor '%s' is missing",
                            path, p->name);
    int ok = t->dtype == UAD_DT_F32 && t->ndim == p->ndim;
    for (int i = 0; ok && i < p->ndim; i++) ok = t->shape[i] == p->shape[i];
    if (!ok || t->nbytes != p->n * sizeof(float))
        return uad_fail(UAD_ERR_FORMAT, "%s: tensor '%s' has dtype %s and the "
                        "wrong shape for this configuration", path, p->name,
                        uad_dtype_name(t->dtype));
    float *w = m->arena + p->off;
    memcpy(w, t->data, t->nbytes);
    for (size_t k = 0; k < p->n; k++)
        if (!isfinite(w[k]))
            return uad_fail(UAD_ERR_FORMAT, "%s: tensor '%s' holds a "
                            "non-finite value", path, p->name);
    if (strstr(p->name, "running_var"))
        for (size_t k = 0; k < p->n; k++)
            if (w[k] < 0)
                return uad_fail(UAD_ERR_FORMAT, "%s: tensor '%s' holds a "
                                "negative variance", path, p->name);
    return UAD_OK;
}

/* The ViT of a model file: from the recorded folder or the one given,
 * which must be of the recorded kind and shape. */
static uad_status load_vit(uad_vit **out, const uad_model_params *p,
                           const vit_meta *vm, const char *given,
                           const char *path) {
    const char *dir = p->backbone_dir, *kname = uad_backbone_name(p->backbone);
    int kind;
    *out = NULL;
    if (given) {
        const char *gdir;
        uad_status st = uad_backbone_parse_spec(&kind, &gdir, given);
        if (st) return st;
        if (kind != p->backbone)
            return uad_fail(UAD_ERR_DATA, "%s: backbone %s was given, but "
                            "the model was trained on a %s backbone (%s)",
                            path, given, kname, p->backbone_dir);
        dir = gdir;
    }
    uad_vit *v = NULL;
    uad_status st = uad_vit_load(&v, (uad_vit_kind)(p->backbone - 2), dir);
    if (st) {
        char pre[4200];
        if (given)
            snprintf(pre, sizeof pre, "%s: cannot load its %s backbone from "
                     "'%s' (given)", path, kname, dir);
        else
            snprintf(pre, sizeof pre, "%s: cannot load its %s backbone from "
                     "'%s' (the folder recorded in the model file; give it "
                     "with --backbone %s:DIR)", path, kname, dir, kname);
        uad_error_prefix(pre);
        return st;
    }
    uad_vit_info in;
    uad_vit_get_info(v, &in);
    if (in.hidden != vm->hidden || in.layers != vm->layers ||
        in.patch != vm->patch) {
        uad_vit_free(v);
        return uad_fail(UAD_ERR_DATA, "%s: the %s checkpoint in '%s' has "
                        "width %d, %d blocks, patch %d; the model was trained "
                        "on width %d, %d blocks, patch %d", path, kname, dir,
                        in.hidden, in.layers, in.patch, vm->hidden,
                        vm->layers, vm->patch);
    }
    if (p->input_size % in.patch) {
        uad_vit_free(v);
        return uad_fail(UAD_ERR_FORMAT, "%s: input_size %d is not a multiple "
                        "of the patch %d", path, p->input_size, in.patch);
    }
    *out = v;
    return UAD_OK;
}

/* Frozen embeddings are unit vectors (uad_clip_category_embedding). */
static uad_status check_frozen(const uad_model *m, const char *path) {
    const float *e = uad_pptr(m, m->embed);
    for (int y = 0; y < m->n_cat; y++) {
        double q = 0;
        for (int k = 0; k < m->width; k++)
            q += (double)e[(size_t)y * m->width + k] *
                 e[(size_t)y * m->width + k];
        if (fabs(q - 1.0) > 1e-4)
            return uad_fail(UAD_ERR_FORMAT, "%s: frozen embedding of '%s' "
                            "is not a unit vector", path, m->cat[y]);
    }
    return UAD_OK;
}

uad_status uad_model_load(uad_model **out, const char *path) {
    return uad_model_load_with(out, path, NULL);
}

uad_status uad_model_load_with(uad_model **out, const char *path,
                               const char *backbone) {
    uad_safetensors *st = NULL;
    uad_model *m = NULL;
    uad_vit *vit = NULL;
    char **names = NULL;
    int n = 0;
    uad_model_params p;
    vit_meta vm;
    *out = NULL;
    uad_status rc = uad_st_open(&st, path);
    if (!rc) rc = read_config(&p, &vm, &names, &n, st, path);
    if (!rc && backbone && !uad_backbone_is_vit(p.backbone))
        rc = uad_fail(UAD_ERR_USAGE, "%s: backbone %s was given, but the "
                      "model uses the built-in %s backbone", path, backbone,
                      uad_backbone_name(p.backbone));
    if (!rc && uad_backbone_is_vit(p.backbone))
        rc = load_vit(&vit, &p, &vm, backbone, path);
    if (!rc) {
        /* the folder actually used is the one the model keeps */
        const char *gdir = NULL;
        int kind;
        if (backbone && !uad_backbone_parse_spec(&kind, &gdir, backbone))
            p.backbone_dir = gdir;
        rc = uad_model_new_with(&m, (const char *const *)names, n, &p, vit,
                                vm.frozen);
        vit = NULL; /* taken over */
        if (rc && rc != UAD_ERR_NOMEM) {
            uad_error_prefix(path);
            rc = UAD_ERR_FORMAT;
        }
    }
    for (int i = 0; !rc && i < m->n_params; i++)
        rc = read_param(m, &m->params[i], st, path);
    if (!rc && uad_st_count(st) != (size_t)m->n_params)
        rc = uad_fail(UAD_ERR_FORMAT, "%s: %zu tensors, this configuration "
                      "has %d", path, uad_st_count(st), m->n_params);
    if (!rc && !(uad_pptr(m, m->temp)[0] > 0))
        rc = uad_fail(UAD_ERR_FORMAT, "%s: temperature is not positive",
                      path);
    if (!rc && m->embed_frozen) rc = check_frozen(m, path);
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
    uad_st_free(st);
    if (rc) {
        uad_model_free(m);
        return rc;
    }
    *out = m;
    return UAD_OK;
}
