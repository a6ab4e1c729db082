/* model_file.c - the model file: safetensors holding every parameter as
 * F32 under its PyTorch-style name, and the configuration as string
 * metadata. Loading trusts nothing: every key, shape and value is
 * checked before a model is returned. */
#include "model.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <string.h>

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
    snprintf(num, sizeof num, "%d", UAD_MODEL_FORMAT_VERSION);
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

/* The configuration from the metadata; names are malloc'd into *names. */
static uad_status read_config(uad_model_params *p, char ***names, int *n,
                              const uad_safetensors *st, const char *path) {
    const char *v;
    int ver;
    *p = uad_model_default_params();
    if (!(v = need_meta(st, path, "format"))) return UAD_ERR_FORMAT;
    if (strcmp(v, UAD_MODEL_FORMAT))
        return uad_fail(UAD_ERR_FORMAT, "%s: format '%s' is not a uniadc "
                        "discriminator", path, v);
    if (!meta_int(&ver, st, path, "format_version", 0, 1000000))
        return UAD_ERR_FORMAT;
    if (ver != UAD_MODEL_FORMAT_VERSION)
        return uad_fail(UAD_ERR_FORMAT, "%s: format version %d, this build "
                        "reads %d", path, ver, UAD_MODEL_FORMAT_VERSION);
    if (!meta_int(&p->width, st, path, "width", 1, 4096) ||
        !meta_int(&p->input_size, st, path, "input_size", 32, 2048))
        return UAD_ERR_FORMAT;
    if (!(v = need_meta(st, path, "backbone"))) return UAD_ERR_FORMAT;
    if ((p->backbone = uad_backbone_parse(v)) < 0)
        return uad_fail(UAD_ERR_FORMAT, "%s: unknown backbone '%s'", path, v);
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

uad_status uad_model_load(uad_model **out, const char *path) {
    uad_safetensors *st = NULL;
    uad_model *m = NULL;
    char **names = NULL;
    int n = 0;
    uad_model_params p;
    *out = NULL;
    uad_status rc = uad_st_open(&st, path);
    if (!rc) rc = read_config(&p, &names, &n, st, path);
    if (!rc) {
        rc = uad_model_new(&m, (const char *const *)names, n, &p);
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
