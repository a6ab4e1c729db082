/* test_figure.c - heat maps, class maps, grids and ROC plots. */
#include "check.h"
#include "figure.h"
#include "testutil.h"

static void test_colors(void) {
    uad_image base;
    uad_image_alloc(&base, 3, 1, 1);
    base.data[0] = 0.5f;
    base.data[1] = 0.5f;
    base.data[2] = 0.5f;
    float map[3] = {0.0f, 0.5f, 1.0f};
    uad_image out;
    CHECK(fig_heatmap(&out, &base, map, 0.5f) == UAD_OK);
    /* 0 -> blue, 0.5 -> green, 1 -> red, each blended half with gray. */
    size_t pl = 3;
    CHECK_NEAR(out.data[0 * pl + 0], 0.25, 1e-6);
    CHECK_NEAR(out.data[2 * pl + 0], 0.75, 1e-6);
    CHECK_NEAR(out.data[1 * pl + 1], 0.75, 1e-6);
    CHECK_NEAR(out.data[0 * pl + 1], 0.25, 1e-6);
    CHECK_NEAR(out.data[0 * pl + 2], 0.75, 1e-6);
    CHECK_NEAR(out.data[1 * pl + 2], 0.25, 1e-6);
    uad_image_free(&out);
    uint8_t ids[3] = {0, 1, 13};
    CHECK(fig_classmap(&out, &base, ids) == UAD_OK);
    CHECK_NEAR(out.data[0], 0.4, 1e-6); /* normal: dimmed gray */
    uint8_t c1[3], c13[3];
    fig_class_color(c1, 1);
    fig_class_color(c13, 13); /* wraps to colour 1 */
    CHECK(!memcmp(c1, c13, 3));
    CHECK_NEAR(out.data[1], 0.35 * 0.5 + 0.65 * c1[0] / 255.0, 1e-6);
    uad_image_free(&out);
    uad_image_free(&base);
}

static void test_pngs(void) {
    char *dir = tu_tmpdir("fig");
    float s[6] = {0.9f, 0.8f, 0.7f, 0.3f, 0.2f, 0.1f};
    uint8_t y[6] = {1, 1, 0, 1, 0, 0};
    fig_curve c = {"test", s, y, 6};
    const char *roc = tu_fmt("%s/roc.png", dir);
    CHECK(fig_roc_png(roc, "ROC", &c, 1) == UAD_OK);
    uad_image img;
    CHECK(uad_image_load(&img, roc, NULL) == UAD_OK);
    CHECK(img.w == 520 && img.h == 520 && img.c == 3);
    /* The curve starts at the origin (60, 460) in the class-1 colour. */
    size_t pl = (size_t)img.w * img.h;
    int red = 0;
    for (int y0 = 440; y0 < 460; y0++)
        red += img.data[(size_t)y0 * img.w + 60] > 0.8f &&
               img.data[pl + (size_t)y0 * img.w + 60] < 0.3f;
    CHECK(red > 0);
    uad_image_free(&img);
    uad_image t;
    uad_image_alloc(&t, 7, 5, 1);
    const uad_image *tiles[2] = {&t, NULL};
    const char *names[2] = {"crack", "hole"};
    fig_grid g = {.tiles = tiles, .rows = 1, .cols = 2, .cell = 64,
                  .title = "grid", .legend_names = names, .n_legend = 2};
    const char *grid = tu_fmt("%s/grid.png", dir);
    CHECK(fig_grid_png(grid, &g) == UAD_OK);
    CHECK(uad_image_load(&img, grid, NULL) == UAD_OK);
    CHECK(img.w == 4 + 2 * 68 + 4);
    uad_image_free(&img);
    /* A colour bar under column 1: 48 pixels from x = 4 + 68 + 8, at
     * y = 110 (below the 150 - 48 footer), blue to red, a black tick at
     * the mark (0.5 of the way: x 103-104) reaching above the bar. */
    g.bar_label = "S_d";
    g.bar_col = 1;
    g.bar_lo = 0.0f, g.bar_hi = 1.0f, g.bar_mark = 0.5f;
    CHECK(fig_grid_png(grid, &g) == UAD_OK);
    CHECK(uad_image_load(&img, grid, NULL) == UAD_OK);
    CHECK(img.w == 144 && img.h == 150 && img.c == 3);
    if (img.w == 144 && img.h == 150 && img.c == 3) {
        size_t p2 = (size_t)img.w * img.h;
#define PX(c, x, y) img.data[(c) * p2 + (size_t)(y) * img.w + (x)]
        CHECK(PX(2, 80, 115) > 0.9f && PX(0, 80, 115) < 0.1f);   /* blue */
        CHECK(PX(0, 127, 115) > 0.9f && PX(2, 127, 115) < 0.1f); /* red  */
        CHECK(PX(0, 103, 108) < 0.2f && PX(1, 103, 108) < 0.2f); /* tick */
        CHECK(PX(0, 90, 108) > 0.9f);  /* no tick elsewhere: white */
#undef PX
    }
    uad_image_free(&img);
    uad_image_free(&t);
    /* An unwritable path fails with the path named and leaves nothing. */
    CHECK(fig_roc_png("/nonexistent/dir/roc.png", NULL, &c, 1) == UAD_ERR_IO);
    CHECK_STR_CONTAINS(uad_last_error(), "/nonexistent/dir/roc.png");
    free(dir);
}

int main(void) {
    test_colors();
    test_pngs();
    return check_report("test_figure");
}
