/* predict_view.c - the picture a person reads at a glance: the input, the
 * anomaly map as a heat-map overlay and the class map in colours with a
 * legend of the model's categories (figure.c draws them). */
#include "figure.h"
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uad_status uad_predict_write_view(const char *path, const uad_model *m,
                                  const uad_image *img,
                                  const uad_prediction *pr) {
    if (!img || img->w != pr->w || img->h != pr->h)
        return uad_fail(UAD_ERR_DATA, "%s: prediction and image sizes "
                        "differ", path);
    /* S_d stretched to this image's own range; the colour bar gives the
     * range and marks tau */
    float lo, hi;
    uad_image heat, cls;
    memset(&cls, 0, sizeof cls);
    uad_status st = fig_heatmap_stretched(&heat, img, pr->det, 0.5f, &lo, &hi);
    if (st) return st;
    if ((st = fig_classmap(&cls, img, pr->cls))) {
        uad_image_free(&heat);
        return st;
    }
    const uad_image *tiles[3] = {img, &heat, &cls};
    const char *titles[3] = {"input", "anomaly map S_d", "classes S_c"};
    char title[256];
    snprintf(title, sizeof title, "score %.3f, tau %.3f: %s", (double)pr->score,
             (double)m->tau, uad_model_category(m, pr->image_class));
    fig_grid g = {.tiles = tiles, .rows = 1, .cols = 3, .cell = 256,
                  .col_titles = titles, .title = title,
                  .legend_names = (const char *const *)m->cat,
                  .n_legend = m->n_cat, .legend_col = 2,
                  .bar_label = "S_d, stretched; tick: tau", .bar_col = 1,
                  .bar_lo = lo, .bar_hi = hi, .bar_mark = m->tau};
    st = fig_grid_png(path, &g);
    uad_image_free(&heat);
    uad_image_free(&cls);
    return st;
}
