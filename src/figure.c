/* figure.c - heat maps, class maps, labelled grids and ROC curves (cairo). */
#include "figure.h"
#include "internal.h"

#include <cairo.h>
#include <math.h>
#include <string.h>

/* Twelve well-separated colours; ids past 12 reuse them. */
static const uint8_t k_palette[12][3] = {
    {230, 25, 75},  {60, 180, 75},  {0, 130, 200},  {255, 225, 25},
    {245, 130, 48}, {145, 30, 180}, {70, 240, 240}, {240, 50, 230},
    {210, 245, 60}, {250, 190, 212}, {0, 128, 128}, {170, 110, 40}};

void fig_class_color(uint8_t rgb[3], int id) {
    if (id <= 0) {
        rgb[0] = rgb[1] = rgb[2] = 0;
        return;
    }
    memcpy(rgb, k_palette[(id - 1) % 12], 3);
}

/* Blue -> cyan -> green -> yellow -> red for v in [0, 1]. */
static void heat_color(float rgb[3], float v) {
    static const float stops[5][3] = {
        {0, 0, 1}, {0, 1, 1}, {0, 1, 0}, {1, 1, 0}, {1, 0, 0}};
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    float t = v * 4;
    int i = t >= 4 ? 3 : (int)t;
    float f = t - (float)i;
    for (int c = 0; c < 3; c++)
        rgb[c] = stops[i][c] * (1 - f) + stops[i + 1][c] * f;
}

/* Value of channel c of base at pixel i (gray bases repeat plane 0). */
static float base_at(const uad_image *b, int c, size_t i) {
    size_t plane = (size_t)b->w * (size_t)b->h;
    float v = b->data[(size_t)(b->c >= 3 ? c : 0) * plane + i];
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

uad_status fig_heatmap(uad_image *out, const uad_image *base,
                       const float *map, float alpha) {
    uad_status st = uad_image_alloc(out, base->w, base->h, 3);
    if (st != UAD_OK) return st;
    size_t plane = (size_t)base->w * (size_t)base->h;
    for (size_t i = 0; i < plane; i++) {
        float h[3];
        heat_color(h, map[i]);
        for (int c = 0; c < 3; c++)
            out->data[c * plane + i] =
                (1 - alpha) * base_at(base, c, i) + alpha * h[c];
    }
    return UAD_OK;
}

uad_status fig_heatmap_stretched(uad_image *out, const uad_image *base,
                                 const float *map, float alpha, float *lo,
                                 float *hi) {
    size_t np = (size_t)base->w * base->h;
    float l = map[0], h = map[0];
    for (size_t k = 1; k < np; k++) {
        l = map[k] < l ? map[k] : l;
        h = map[k] > h ? map[k] : h;
    }
    float *v = uad_malloc(np * sizeof *v);
    if (!v) return UAD_ERR_NOMEM;
    for (size_t k = 0; k < np; k++)
        v[k] = h > l ? (map[k] - l) / (h - l) : 0.0f;
    uad_status st = fig_heatmap(out, base, v, alpha);
    free(v);
    *lo = l;
    *hi = h;
    return st;
}

uad_status fig_classmap(uad_image *out, const uad_image *base,
                        const uint8_t *ids) {
    uad_status st = uad_image_alloc(out, base->w, base->h, 3);
    if (st != UAD_OK) return st;
    size_t plane = (size_t)base->w * (size_t)base->h;
    for (size_t i = 0; i < plane; i++) {
        uint8_t rgb[3];
        fig_class_color(rgb, ids[i]);
        /* Normal pixels keep the image, dimmed so classes stand out. */
        for (int c = 0; c < 3; c++)
            out->data[c * plane + i] =
                ids[i] ? 0.35f * base_at(base, c, i) + 0.65f * rgb[c] / 255.f
                       : 0.8f * base_at(base, c, i);
    }
    return UAD_OK;
}

/* ---- cairo helpers ------------------------------------------------- */

/* An opaque cairo surface holding the image (gray or RGB). */
static cairo_surface_t *surface_of(const uad_image *img) {
    cairo_surface_t *s =
        cairo_image_surface_create(CAIRO_FORMAT_RGB24, img->w, img->h);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) return s;
    cairo_surface_flush(s);
    unsigned char *px = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    for (int y = 0; y < img->h; y++) {
        uint32_t *row = (uint32_t *)(px + (size_t)y * (size_t)stride);
        for (int x = 0; x < img->w; x++) {
            size_t i = (size_t)y * (size_t)img->w + (size_t)x;
            uint32_t r = (uint32_t)lrintf(base_at(img, 0, i) * 255);
            uint32_t g = (uint32_t)lrintf(base_at(img, 1, i) * 255);
            uint32_t b = (uint32_t)lrintf(base_at(img, 2, i) * 255);
            row[x] = (r << 16) | (g << 8) | b;
        }
    }
    cairo_surface_mark_dirty(s);
    return s;
}

/* Draw img fitted (aspect kept) and centred in the box. */
static void draw_tile(cairo_t *cr, const uad_image *img, double x, double y,
                      double box) {
    cairo_surface_t *s = surface_of(img);
    double k = box / (img->w > img->h ? img->w : img->h);
    double dx = x + (box - img->w * k) / 2, dy = y + (box - img->h * k) / 2;
    cairo_save(cr);
    cairo_translate(cr, dx, dy);
    cairo_scale(cr, k, k);
    cairo_set_source_surface(cr, s, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_BILINEAR);
    cairo_paint(cr);
    cairo_restore(cr);
    cairo_surface_destroy(s);
}

static void text(cairo_t *cr, double x, double y, double size,
                 const char *s) {
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                           CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    cairo_move_to(cr, x, y);
    cairo_show_text(cr, s);
}

/* Write the surface as PNG through a temporary file. */
static uad_status save_png(cairo_surface_t *s, const char *path) {
    char *tmp = uad_tmp_name(path);
    if (!tmp) return UAD_ERR_NOMEM;
    cairo_status_t cs = cairo_surface_write_to_png(s, tmp);
    if (cs != CAIRO_STATUS_SUCCESS) {
        remove(tmp);
        free(tmp);
        return uad_fail(UAD_ERR_IO, "%s: cannot write PNG: %s", path,
                        cairo_status_to_string(cs));
    }
    uad_status st = uad_rename_into(tmp, path);
    free(tmp);
    return st;
}

/* Legend entries of `per_row` columns of `step` pixels from (x, y). */
static void draw_legend(cairo_t *cr, const char *const *names, int n,
                        double x, double y, int per_row, double step) {
    for (int i = 0; i < n; i++) {
        uint8_t rgb[3];
        fig_class_color(rgb, i + 1);
        double cx = x + (i % per_row) * step, cy = y + (i / per_row) * 20;
        cairo_set_source_rgb(cr, rgb[0] / 255., rgb[1] / 255., rgb[2] / 255.);
        cairo_rectangle(cr, cx, cy, 14, 14);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        text(cr, cx + 18, cy + 12, 12, names[i]);
    }
}

/* The heat map's colour scale, w wide, with its end values and a tick. */
static void draw_bar(cairo_t *cr, const fig_grid *g, double x, double y,
                     double w) {
    for (int i = 0; i < (int)w; i++) {
        float rgb[3];
        heat_color(rgb, (float)i / (float)(w > 1 ? w - 1 : 1));
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_rectangle(cr, x + i, y, 1, 12);
        cairo_fill(cr);
    }
    char s[64];
    cairo_set_source_rgb(cr, 0, 0, 0);
    snprintf(s, sizeof s, "%.3f", (double)g->bar_lo);
    text(cr, x, y + 26, 11, s);
    snprintf(s, sizeof s, "%.3f", (double)g->bar_hi);
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    text(cr, x + w - e.x_advance, y + 26, 11, s);
    text(cr, x, y + 40, 11, g->bar_label);
    float span = g->bar_hi - g->bar_lo;
    if (span > 0 && g->bar_mark >= g->bar_lo && g->bar_mark <= g->bar_hi) {
        double mx = x + (g->bar_mark - g->bar_lo) / span * (w - 1);
        cairo_set_line_width(cr, 2);
        cairo_move_to(cr, mx, y - 3);
        cairo_line_to(cr, mx, y + 15);
        cairo_stroke(cr);
    }
}

uad_status fig_grid_png(const char *path, const fig_grid *g) {
    const double pad = 4, left = g->row_labels ? 120 : pad;
    const double top = (g->title ? 26 : 0) + (g->col_titles ? 20 : 0) + pad;
    int width = (int)(left + g->cols * (g->cell + pad) + pad);
    /* The legend fills the width from its column, 150 pixels an entry
     * (at least one a row). */
    double lx = left + g->legend_col * (g->cell + pad);
    int per_row = (int)((width - lx) / 150);
    if (per_row < 1) per_row = 1;
    const double legend_h = g->n_legend
                                ? 20.0 * ((g->n_legend + per_row - 1) / per_row) + 8
                                : 0;
    const double bar_h = g->bar_label ? 48 : 0;
    const double foot = legend_h > bar_h ? legend_h : bar_h;
    int height = (int)(top + g->rows * (g->cell + pad) + pad + foot);
    cairo_surface_t *s =
        cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    if (g->title) text(cr, pad, 18, 15, g->title);
    for (int c = 0; g->col_titles && c < g->cols; c++)
        if (g->col_titles[c])
            text(cr, left + c * (g->cell + pad), top - 6, 12, g->col_titles[c]);
    for (int r = 0; r < g->rows; r++) {
        double y = top + r * (g->cell + pad);
        cairo_set_source_rgb(cr, 0, 0, 0);
        if (g->row_labels && g->row_labels[r])
            text(cr, pad, y + g->cell / 2.0, 11, g->row_labels[r]);
        for (int c = 0; c < g->cols; c++) {
            const uad_image *t = g->tiles[r * g->cols + c];
            if (t) draw_tile(cr, t, left + c * (g->cell + pad), y, g->cell);
        }
    }
    double fy = height - foot + 4;
    if (g->n_legend)
        draw_legend(cr, g->legend_names, g->n_legend, lx, fy, per_row, 150);
    if (g->bar_label)
        draw_bar(cr, g, left + g->bar_col * (g->cell + pad) + 8, fy + 4,
                 g->cell - 16);
    cairo_destroy(cr);
    uad_status st = save_png(s, path);
    cairo_surface_destroy(s);
    return st;
}

/* ---- ROC curves ---------------------------------------------------- */

typedef struct {
    float s;
    uint8_t y;
} scored;

static int by_score_desc(const void *a, const void *b) {
    float x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return (x < y) - (x > y);
}

/* Draw one curve in plot coordinates (origin x0,y0; side px). Tie groups
 * become one step, so the curve is the exact empirical ROC. */
static uad_status draw_curve(cairo_t *cr, const fig_curve *c, double x0,
                             double y0, double side) {
    scored *v = uad_malloc((c->n ? c->n : 1) * sizeof *v);
    if (!v) return UAD_ERR_NOMEM;
    size_t pos = 0, neg = 0;
    for (size_t i = 0; i < c->n; i++) {
        v[i] = (scored){c->scores[i], (uint8_t)(c->labels[i] != 0)};
        pos += v[i].y;
    }
    neg = c->n - pos;
    qsort(v, c->n, sizeof *v, by_score_desc);
    cairo_move_to(cr, x0, y0);
    size_t tp = 0, fp = 0;
    for (size_t i = 0; i < c->n;) {
        size_t j = i;
        for (; j < c->n && v[j].s == v[i].s; j++) {
            tp += v[j].y;
            fp += !v[j].y;
        }
        double fx = neg ? (double)fp / (double)neg : 0;
        double ty = pos ? (double)tp / (double)pos : 0;
        cairo_line_to(cr, x0 + fx * side, y0 - ty * side);
        i = j;
    }
    cairo_stroke(cr);
    free(v);
    return UAD_OK;
}

uad_status fig_roc_png(const char *path, const char *title,
                       const fig_curve *curves, int n_curves) {
    const int size = 520;
    const double x0 = 60, y0 = 460, side = 420;
    cairo_surface_t *s =
        cairo_image_surface_create(CAIRO_FORMAT_RGB24, size, size);
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    /* Axes, chance diagonal, labels. */
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, x0, y0 - side, side, side);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.7, 0.7, 0.7);
    cairo_move_to(cr, x0, y0);
    cairo_line_to(cr, x0 + side, y0 - side);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    if (title) text(cr, x0, 26, 15, title);
    text(cr, x0 + side / 2 - 70, y0 + 36, 12, "false positive rate");
    text(cr, x0 - 14, y0 + 16, 11, "0");
    text(cr, x0 + side - 6, y0 + 16, 11, "1");
    text(cr, x0 - 14, y0 - side + 10, 11, "1");
    cairo_save(cr);
    cairo_translate(cr, x0 - 24, y0 - side / 2 + 60);
    cairo_rotate(cr, -M_PI / 2);
    text(cr, 0, 0, 12, "true positive rate");
    cairo_restore(cr);
    uad_status st = UAD_OK;
    for (int k = 0; k < n_curves && st == UAD_OK; k++) {
        uint8_t rgb[3];
        fig_class_color(rgb, k + 1);
        cairo_set_source_rgb(cr, rgb[0] / 255., rgb[1] / 255., rgb[2] / 255.);
        cairo_set_line_width(cr, 2);
        st = draw_curve(cr, &curves[k], x0, y0, side);
        double auc;
        char label[160];
        if (uad_auroc(curves[k].scores, curves[k].labels, curves[k].n, &auc)
            == 1)
            snprintf(label, sizeof label, "%s (AUROC %.2f%%)",
                     curves[k].label, 100 * auc);
        else
            snprintf(label, sizeof label, "%s (AUROC undefined)",
                     curves[k].label);
        cairo_rectangle(cr, x0 + side - 230, y0 - 20 - 18 * k - 10, 12, 4);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        text(cr, x0 + side - 214, y0 - 20 - 18 * k - 4, 11, label);
    }
    cairo_destroy(cr);
    if (st == UAD_OK) st = save_png(s, path);
    cairo_surface_destroy(s);
    return st;
}
