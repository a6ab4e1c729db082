/* figure.h - pictures people look at instead of reading numbers: heat-map
 * overlays, colour-coded class maps with legends, image grids with labels,
 * ROC curves. Drawn with cairo; every PNG is written atomically. */
#ifndef UAD_FIGURE_H
#define UAD_FIGURE_H

#include "uniadc.h"

/* Colour of class id (0 = normal: transparent/black), 8-bit RGB. */
void fig_class_color(uint8_t rgb[3], int id);

/* RGB image (c = 3) of `base` (gray or RGB, any scale in [0,1]) with the
 * map (w x h, values in [0,1]) blended on top as a blue-to-red heat map;
 * `alpha` is the heat map's weight. base must be w x h. */
uad_status fig_heatmap(uad_image *out, const uad_image *base,
                       const float *map, float alpha);
/* fig_heatmap of the map stretched to its own range [*lo, *hi] (both
 * returned; a flat map shows as 0). Anomaly maps of the built-in model
 * span little around 0.5 and look flat on a fixed scale. */
uad_status fig_heatmap_stretched(uad_image *out, const uad_image *base,
                                 const float *map, float alpha, float *lo,
                                 float *hi);
/* RGB image of `base` with each pixel of class id > 0 tinted its class
 * colour (ids: w x h bytes). */
uad_status fig_classmap(uad_image *out, const uad_image *base,
                        const uint8_t *ids);

/* A grid of tiles (gray or RGB, each scaled to cell x cell) with optional
 * column titles and row labels (NULL entries skipped), and an optional
 * legend of class colours (names[0..n_names-1] are ids 1..n_names).
 * tiles[r * cols + c] may be NULL (left blank). */
typedef struct fig_grid {
    const uad_image *const *tiles;
    int rows, cols, cell;
    const char *const *col_titles;
    const char *const *row_labels;
    const char *title;
    const char *const *legend_names;
    int n_legend;
    int legend_col;        /* the legend starts under this column       */
    /* With bar_label set: a colour bar of the heat map's scale under
     * column bar_col, from bar_lo (blue) to bar_hi (red), with a tick at
     * bar_mark when it lies in between. */
    const char *bar_label;
    int bar_col;
    float bar_lo, bar_hi, bar_mark;
} fig_grid;
uad_status fig_grid_png(const char *path, const fig_grid *g);

/* One ROC curve: scores against binary labels. */
typedef struct fig_curve {
    const char *label;
    const float *scores;
    const uint8_t *labels;
    size_t n;
} fig_curve;
/* ROC curves in one plot with a legend (label and AUROC), 520 x 520. */
uad_status fig_roc_png(const char *path, const char *title,
                       const fig_curve *curves, int n_curves);

#endif
