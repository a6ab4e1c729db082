/* test_image.c - decoders against the formulas that
 * scripts/make_image_refs.py used to write tests/data/images/, writers by
 * round trip, bad input, limits, and resize against PyTorch outputs. */
#include "check.h"
#include "testutil.h"
#include "internal.h"

#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DATA UAD_SOURCE_DIR "/tests/data/"

/* ---- pixel formulas (mirrors of make_image_refs.py) ----------------- */

static int pat(int x, int y, int ch, int maxv) {
    return (x * 37 + y * 11 + ch * 71) % (maxv + 1);
}
static int pat16(int x, int y, int ch) {
    return (x * 9001 + y * 4001 + ch * 17000) % 65536;
}
static int smooth(int x, int y, int ch) { return 40 + 5 * x + 3 * y + 30 * ch; }
static float fpat(int x, int y, int ch) {
    return (float)((x - 3) * 0.37 + y * 1.5e3 + ch * -2.25);
}

static float px(const uad_image *im, int ch, int x, int y) {
    return im->data[((size_t)ch * im->h + y) * im->w + x];
}

static uad_status load(uad_image *im, const char *name) {
    char path[512];
    snprintf(path, sizeof path, DATA "images/%s", name);
    uad_status st = uad_image_load(im, path, NULL);
    if (st != UAD_OK) fprintf(stderr, "load %s: %s\n", name, uad_last_error());
    return st;
}

/* Count of pixels (all planes) whose value differs from the expectation
 * given as integer `num` over `den` (exact float quotient). */
typedef int (*int_fn)(int x, int y, int ch);
static int p8_(int x, int y, int ch) { return pat(x, y, ch, 255); }
static int gray0_(int x, int y, int ch) { return pat(x, y, 0, 255); }
static int g16_0(int x, int y, int ch) { return pat16(x, y, 0); }

static int mismatches(const uad_image *im, int_fn f, double den) {
    int bad = 0;
    for (int ch = 0; ch < im->c; ch++)
        for (int y = 0; y < im->h; y++)
            for (int x = 0; x < im->w; x++) {
                float want = den == 255.0 ? (float)f(x, y, ch) / 255.0f
                                          : (float)(f(x, y, ch) / den);
                bad += px(im, ch, x, y) != want;
            }
    return bad;
}

static void check_int_image(const char *name, int w, int h, int c, int depth,
                            int src_ch, const char *fmt, int_fn f,
                            double den) {
    uad_image im;
    CHECK(load(&im, name) == UAD_OK);
    if (!im.data) return;
    CHECK(im.w == w && im.h == h && im.c == c);
    CHECK(im.bit_depth == depth);
    CHECK(im.src_channels == src_ch);
    CHECK(strcmp(im.format, fmt) == 0);
    int bad = mismatches(&im, f, den);
    if (bad) fprintf(stderr, "%s: %d values differ\n", name, bad);
    CHECK(bad == 0);
    uad_image_free(&im);
}

/* ---- PNG ----------------------------------------------------------- */

static void test_png(void) {
    check_int_image("g8.png", 7, 5, 1, 8, 1, "png", p8_, 255.0);
    check_int_image("rgb8.png", 5, 4, 3, 8, 3, "png", p8_, 255.0);
    check_int_image("rgb16.png", 3, 2, 3, 16, 3, "png", pat16, 65535.0);
    check_int_image("g8_adam7.png", 11, 9, 1, 8, 1, "png", p8_, 255.0);
    check_int_image("rgb16_adam7.png", 10, 9, 3, 16, 3, "png", pat16,
                    65535.0);
    /* Gray+alpha: one plane, alpha dropped. */
    check_int_image("ga8.png", 5, 3, 1, 8, 2, "png", gray0_, 255.0);
    check_int_image("ga16.png", 3, 3, 1, 16, 2, "png", g16_0, 65535.0);
    check_int_image("rgba8.png", 4, 3, 3, 8, 4, "png", p8_, 255.0);

    /* 16-bit values are divided by 65535, not 255, not stretched. */
    uad_image im;
    CHECK(load(&im, "g16.png") == UAD_OK);
    if (im.data) {
        CHECK(im.bit_depth == 16 && im.c == 1);
        CHECK(px(&im, 0, 0, 0) == 0.0f);
        CHECK(px(&im, 0, 1, 0) == (float)(1 / 65535.0));
        CHECK(px(&im, 0, 2, 0) == (float)(257 / 65535.0));
        CHECK(px(&im, 0, 3, 0) == 1.0f);
        CHECK(px(&im, 0, 1, 1) == (float)(12345 / 65535.0));
        CHECK(px(&im, 0, 2, 1) == (float)(65534 / 65535.0));
        CHECK(px(&im, 0, 3, 1) == (float)(256 / 65535.0));
    }
    uad_image_free(&im);

    /* Low bit depths: by their own maximum (1-bit gives 0 or 1). */
    static const char *low[] = {"g1.png", "g2.png", "g4.png"};
    for (int d = 1, i = 0; d <= 4; d *= 2, i++) {
        CHECK(load(&im, low[i]) == UAD_OK);
        if (!im.data) continue;
        int maxv = (1 << d) - 1, bad = 0;
        CHECK(im.bit_depth == d && im.c == 1 && im.w == 9 && im.h == 3);
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 9; x++)
                bad += px(&im, 0, x, y) !=
                       (float)pat(x, y, 0, maxv) / (float)maxv;
        CHECK(bad == 0);
        uad_image_free(&im);
    }
}

static void test_png_palette(void) {
    static const int pal[4][3] = {
        {255, 0, 0}, {0, 128, 255}, {10, 20, 30}, {200, 200, 7}};
    uad_image im;
    /* Colour palette with tRNS: RGB of the palette, alpha dropped. */
    CHECK(load(&im, "pal8_trns.png") == UAD_OK);
    if (im.data) {
        CHECK(im.c == 3 && im.w == 6 && im.h == 4 && im.bit_depth == 8);
        CHECK(im.src_channels == 4);
        int bad = 0;
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 6; x++)
                for (int ch = 0; ch < 3; ch++)
                    bad += px(&im, ch, x, y) !=
                           (float)pal[(x + y) % 4][ch] / 255.0f;
        CHECK(bad == 0);
    }
    uad_image_free(&im);

    /* 2-bit palette indices. */
    CHECK(load(&im, "pal2.png") == UAD_OK);
    if (im.data) {
        CHECK(im.c == 3 && im.src_channels == 3);
        CHECK(px(&im, 0, 1, 1) == (float)pal[3][0] / 255.0f);
        CHECK(px(&im, 2, 1, 0) == (float)pal[1][2] / 255.0f);
        CHECK(px(&im, 1, 4, 1) == (float)pal[(4 + 2) % 4][1] / 255.0f);
    }
    uad_image_free(&im);

    /* A palette of grays only gives one plane. */
    static const int gp[5] = {0, 17, 34, 51, 255};
    CHECK(load(&im, "pal4_gray.png") == UAD_OK);
    if (im.data) {
        CHECK(im.c == 1 && im.w == 7 && im.h == 3 && im.src_channels == 1);
        int bad = 0;
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 7; x++)
                bad += px(&im, 0, x, y) != (float)gp[(x + y) % 5] / 255.0f;
        CHECK(bad == 0);
    }
    uad_image_free(&im);
}

/* ---- JPEG ---------------------------------------------------------- */

static void check_jpeg(const char *name, int c) {
    uad_image im;
    CHECK(load(&im, name) == UAD_OK);
    if (!im.data) return;
    CHECK(im.w == 16 && im.h == 16 && im.c == c && im.bit_depth == 8);
    CHECK(strcmp(im.format, "jpeg") == 0);
    double worst = 0;
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++) {
                double e = fabs(px(&im, ch, x, y) - smooth(x, y, ch) / 255.0);
                worst = check_max(worst, e);
            }
    printf("%s: largest error %.2f / 255\n", name, worst * 255);
    CHECK(worst <= 4.0 / 255);
    uad_image_free(&im);
}

static void test_jpeg(void) {
    check_jpeg("gray_base.jpg", 1);
    check_jpeg("gray_prog.jpg", 1);
    check_jpeg("rgb_base.jpg", 3);
    check_jpeg("rgb_prog.jpg", 3);
    uad_image im;
    CHECK(uad_image_load(&im, DATA "images/cmyk.jpg", NULL) ==
          UAD_ERR_FORMAT);
    CHECK_STR_CONTAINS(uad_last_error(), "cmyk.jpg");
    CHECK_STR_CONTAINS(uad_last_error(), "CMYK");
    CHECK(im.data == NULL);
}

/* ---- TIFF ---------------------------------------------------------- */

static void check_float_tiff(const char *name, int w, int h, int c,
                             int src_ch) {
    uad_image im;
    CHECK(load(&im, name) == UAD_OK);
    if (!im.data) return;
    CHECK(im.w == w && im.h == h && im.c == c && im.bit_depth == 32);
    CHECK(im.src_channels == src_ch);
    int bad = 0;
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                bad += px(&im, ch, x, y) != fpat(x, y, ch);
    CHECK(bad == 0);
    uad_image_free(&im);
}

static void test_tiff(void) {
    check_int_image("g8.tif", 7, 5, 1, 8, 1, "tiff", p8_, 255.0);
    check_int_image("g8_deflate.tif", 7, 5, 1, 8, 1, "tiff", p8_, 255.0);
    check_int_image("g16.tif", 4, 3, 1, 16, 1, "tiff", pat16, 65535.0);
    check_int_image("rgb16_sep.tif", 5, 3, 3, 16, 3, "tiff", pat16,
                    65535.0);
    check_int_image("rgb16_ifd_first.tif", 9, 7, 3, 16, 3, "tiff", pat16,
                    65535.0);
    check_int_image("rgba8.tif", 4, 3, 3, 8, 4, "tiff", p8_, 255.0);
    check_int_image("ga8_sep.tif", 4, 3, 1, 8, 2, "tiff", gray0_, 255.0);
    check_int_image("rgb8_tiled.tif", 20, 18, 3, 8, 3, "tiff", p8_, 255.0);
    check_float_tiff("f32.tif", 6, 4, 1, 1);
    check_float_tiff("f32rgb_sep.tif", 5, 4, 3, 3);
    check_float_tiff("f32_tiled_sep.tif", 20, 18, 3, 3);
}

/* ---- BMP ----------------------------------------------------------- */

static void test_bmp(void) {
    /* stb_image expands 8-bit palettes: three equal planes. */
    check_int_image("p8.bmp", 7, 5, 3, 8, 3, "bmp", gray0_, 255.0);
    check_int_image("rgb24.bmp", 7, 5, 3, 8, 3, "bmp", p8_, 255.0);
    check_int_image("rgba32.bmp", 7, 5, 3, 8, 4, "bmp", p8_, 255.0);
}

/* ---- limits and bad input ------------------------------------------ */

static void test_limits(void) {
    uad_image im;
    uad_image_params p = uad_image_default_params();
    CHECK(p.max_pixels == 100000000);
    CHECK(uad_image_load(&im, DATA "images/huge.png", NULL) ==
          UAD_ERR_LIMIT);
    CHECK_STR_CONTAINS(uad_last_error(), "huge.png");
    CHECK_STR_CONTAINS(uad_last_error(), "100000 x 100000");
    CHECK_STR_CONTAINS(uad_last_error(), "100000000");
    CHECK(im.data == NULL);

    /* g8 is 7 x 5 = 35 pixels: 34 is refused in every format. */
    static const char *names[] = {"g8.png", "g8.tif", "rgb24.bmp"};
    for (int i = 0; i < 3; i++) {
        char path[512];
        snprintf(path, sizeof path, DATA "images/%s", names[i]);
        p.max_pixels = 34;
        CHECK(uad_image_load(&im, path, &p) == UAD_ERR_LIMIT);
        CHECK_STR_CONTAINS(uad_last_error(), names[i]);
        p.max_pixels = 35;
        CHECK(uad_image_load(&im, path, &p) == UAD_OK);
        uad_image_free(&im);
    }
    p.max_pixels = 255; /* the JPEGs are 16 x 16 */
    CHECK(uad_image_load(&im, DATA "images/rgb_prog.jpg", &p) ==
          UAD_ERR_LIMIT);
    CHECK_STR_CONTAINS(uad_last_error(), "rgb_prog.jpg");
}

/* First half of a valid file must fail, naming the file. */
static void check_cut(const char *name, const char *needle) {
    char path[512], *buf;
    size_t len;
    snprintf(path, sizeof path, DATA "images/%s", name);
    CHECK(uad_read_file(path, &buf, &len) == UAD_OK);
    if (!buf) return;
    uad_image im;
    uad_status st = uad_image_load_mem(&im, buf, len / 2, "cut_file", NULL);
    CHECK(st == UAD_ERR_FORMAT);
    CHECK(im.data == NULL);
    CHECK_STR_CONTAINS(uad_last_error(), "cut_file: ");
    if (needle) CHECK_STR_CONTAINS(uad_last_error(), needle);
    printf("half of %s: %s\n", name, uad_last_error());
    free(buf);
}

static uint32_t lcg(uint32_t *s) { return *s = *s * 1664525u + 1013904223u; }

static void test_bad_input(void) {
    check_cut("rgb8.png", "truncated PNG data");
    check_cut("g16.png", "truncated PNG data");
    check_cut("gray_base.jpg", "truncated JPEG");
    check_cut("rgb_prog.jpg", "truncated JPEG");
    check_cut("f32.tif", "TIFF");
    check_cut("g8_deflate.tif", "TIFF");
    check_cut("rgb16_sep.tif", "TIFF");
    check_cut("rgb16_ifd_first.tif", "corrupt or truncated TIFF data");
    check_cut("p8.bmp", "BMP");

    uad_image im;
    CHECK(uad_image_load_mem(&im, "", 0, "zero.png", NULL) ==
          UAD_ERR_FORMAT);
    CHECK_STR_CONTAINS(uad_last_error(), "zero.png: empty file");
    FILE *fp = fopen("image_zero_bytes.png", "wb");
    if (fp) fclose(fp);
    CHECK(uad_image_load(&im, "image_zero_bytes.png", NULL) ==
          UAD_ERR_FORMAT);
    CHECK_STR_CONTAINS(uad_last_error(), "image_zero_bytes.png");
    remove("image_zero_bytes.png");
    CHECK(uad_image_load(&im, "no_such_image.png", NULL) == UAD_ERR_IO);
    CHECK_STR_CONTAINS(uad_last_error(), "no_such_image.png");

    /* Random bytes, alone and behind each signature. */
    static const char *sig[] = {"", "\x89PNG\r\n\x1a\n", "\xff\xd8\xff",
                                "II*\0\x08\0\0\0", "MM\0*", "BM"};
    static const int siglen[] = {0, 8, 3, 8, 4, 2};
    uint32_t s = 12345;
    uint8_t buf[700];
    for (int rep = 0; rep < 50; rep++)
        for (int k = 0; k < 6; k++) {
            for (size_t i = 0; i < sizeof buf; i++)
                buf[i] = (uint8_t)(lcg(&s) >> 24);
            memcpy(buf, sig[k], (size_t)siglen[k]);
            if (k == 0) buf[0] = 'x';
            uad_status st = uad_image_load_mem(&im, buf, sizeof buf,
                                               "noise.bin", NULL);
            CHECK(st == UAD_ERR_FORMAT);
            CHECK(im.data == NULL);
            CHECK_STR_CONTAINS(uad_last_error(), "noise.bin: ");
            if (k == 0 && rep == 0)
                CHECK_STR_CONTAINS(uad_last_error(),
                                   "not an image (unknown signature)");
        }
}

/* ---- writers ------------------------------------------------------- */

static int count_entries(const char *dir) {
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

static void test_write_png(void) {
    char *dir = tu_tmpdir("image");
    char *path = uad_path_join(dir, "out.jpg"); /* content decides */
    for (int c = 1; c <= 3; c += 2) {
        uad_image im, back;
        CHECK(uad_image_alloc(&im, 37, 9, c) == UAD_OK);
        size_t n = (size_t)37 * 9 * c;
        for (size_t i = 0; i < n; i++)
            im.data[i] = (float)((i * 7) % 256) / 255.0f;
        CHECK(uad_image_write_png(path, &im) == UAD_OK);
        CHECK(uad_image_load(&back, path, NULL) == UAD_OK);
        CHECK(strcmp(back.format, "png") == 0 && back.c == c);
        CHECK(back.w == 37 && back.h == 9 && back.bit_depth == 8);
        int bad = 0;
        for (size_t i = 0; back.data && i < n; i++)
            bad += back.data[i] != im.data[i];
        CHECK(bad == 0);
        uad_image_free(&back);

        /* Clamping and rounding: v*255 rounded, NaN written as 0. */
        im.data[0] = -0.5f;
        im.data[1] = 1.7f;
        im.data[2] = NAN;
        im.data[3] = 100.4f / 255.0f;
        im.data[4] = 100.6f / 255.0f;
        CHECK(uad_image_write_png(path, &im) == UAD_OK);
        CHECK(uad_image_load(&back, path, NULL) == UAD_OK);
        if (back.data) {
            CHECK(back.data[0] == 0.0f && back.data[1] == 1.0f);
            CHECK(back.data[2] == 0.0f);
            CHECK(back.data[3] == 100.0f / 255.0f);
            CHECK(back.data[4] == 101.0f / 255.0f);
        }
        uad_image_free(&back);
        uad_image_free(&im);
    }
    CHECK(count_entries(dir) == 1);
    remove(path);
    free(path);
    rmdir(dir);
    free(dir);
}

static void test_write_tiff(void) {
    char *dir = tu_tmpdir("image");
    char *path = uad_path_join(dir, "map.tif");
    for (int c = 1; c <= 3; c += 2) {
        uad_image im, back;
        CHECK(uad_image_alloc(&im, 33, 70, c) == UAD_OK);
        for (int k = 0; k < c; k++)
            for (int y = 0; y < 70; y++)
                for (int x = 0; x < 33; x++)
                    im.data[((size_t)k * 70 + y) * 33 + x] =
                        fpat(x, y, k) * 1e-3f - 0.123456789f;
        im.data[5] = 3.4e38f;
        im.data[6] = -1e-40f; /* denormal */
        CHECK(uad_image_write_tiff(path, &im) == UAD_OK);
        CHECK(uad_image_load(&back, path, NULL) == UAD_OK);
        CHECK(back.c == c && back.w == 33 && back.h == 70);
        CHECK(back.bit_depth == 32 && strcmp(back.format, "tiff") == 0);
        size_t n = (size_t)33 * 70 * c;
        CHECK(back.data && memcmp(back.data, im.data, n * 4) == 0);
        uad_image_free(&back);
        uad_image_free(&im);
    }
    CHECK(count_entries(dir) == 1);
    remove(path);
    free(path);

    /* Unwritable targets: an error naming the path, and no file left. */
    uad_image im;
    CHECK(uad_image_alloc(&im, 4, 4, 1) == UAD_OK);
    char *file = uad_path_join(dir, "plain");
    FILE *fp = fopen(file, "wb");
    if (fp) fclose(fp);
    char *bad = uad_path_join(file, "x.png"); /* parent is a file */
    CHECK(uad_image_write_png(bad, &im) == UAD_ERR_IO);
    CHECK_STR_CONTAINS(uad_last_error(), bad);
    CHECK(uad_image_write_tiff(bad, &im) == UAD_ERR_IO);
    CHECK_STR_CONTAINS(uad_last_error(), bad);
    CHECK(uad_image_write_png("/nonexistent_uad_dir/x.png", &im) ==
          UAD_ERR_IO);
    CHECK(uad_image_write_tiff("/nonexistent_uad_dir/x.tif", &im) ==
          UAD_ERR_IO);
    CHECK_STR_CONTAINS(uad_last_error(), "/nonexistent_uad_dir/x.tif");
    CHECK(count_entries(dir) == 1);
    /* Two channels is neither gray nor RGB. */
    uad_image two;
    CHECK(uad_image_alloc(&two, 2, 2, 2) == UAD_OK);
    char *p2 = uad_path_join(dir, "two.png");
    CHECK(uad_image_write_png(p2, &two) == UAD_ERR_USAGE);
    CHECK(count_entries(dir) == 1);
    uad_image_free(&two);
    uad_image_free(&im);
    remove(file);
    free(p2);
    free(bad);
    free(file);
    rmdir(dir);
    free(dir);
}

/* ---- resize -------------------------------------------------------- */

static void test_resize(void) {
    FILE *fp = fopen(DATA "resize_refs.txt", "r");
    CHECK(fp != NULL);
    if (!fp) return;
    int c, ih, iw, oh, ow, nin, nout, cases = 0;
    char mode[16];
    while (fscanf(fp, " case %d %d %d %d %d %15s %d %d", &c, &ih, &iw, &oh,
                  &ow, mode, &nin, &nout) == 8) {
        uad_image in, out;
        CHECK(uad_image_alloc(&in, iw, ih, c) == UAD_OK);
        CHECK(nin == iw * ih * c);
        for (int i = 0; i < nin; i++)
            CHECK(fscanf(fp, "%f", &in.data[i]) == 1);
        int nearest = strcmp(mode, "nearest") == 0;
        CHECK(uad_image_resize(&out, &in, ow, oh,
                               nearest ? UAD_RESIZE_NEAREST
                                       : UAD_RESIZE_BILINEAR) == UAD_OK);
        CHECK(out.w == ow && out.h == oh && out.c == c);
        double worst = 0;
        for (int k = 0; k < nout; k++) {
            long idx;
            float want;
            CHECK(fscanf(fp, "%ld %f", &idx, &want) == 2);
            double e = fabs(out.data[idx] - want);
            worst = check_max(worst, e);
        }
        printf("resize %dx%d -> %dx%d (c=%d) %s: largest error %.3g\n", iw,
               ih, ow, oh, c, mode, worst);
        CHECK(worst <= (nearest ? 0.0 : 1e-6));
        uad_image_free(&in);
        uad_image_free(&out);
        cases++;
    }
    fclose(fp);
    CHECK(cases == 16);
}

/* ---- the real data ------------------------------------------------- */

static void test_mtd(void) {
    const char *img = UAD_SOURCE_DIR "/../shared/datasets/mtd/test/"
                      "blowhole/000.jpg";
    const char *mask = UAD_SOURCE_DIR "/../shared/datasets/mtd/"
                       "ground_truth/blowhole/000_mask.png";
    if (access(img, R_OK) != 0 || access(mask, R_OK) != 0) {
        printf("skipping MTD checks: %s not found\n", img);
        return;
    }
    uad_image im;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(uad_image_load(&im, img, NULL) == UAD_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("MTD %dx%d JPEG decoded in %.2f ms\n", im.w, im.h,
           (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    CHECK(im.c == 1 && im.bit_depth == 8 && strcmp(im.format, "jpeg") == 0);
    CHECK(im.w > 0 && im.h > 0);
    uad_image_free(&im);

    CHECK(uad_image_load(&im, mask, NULL) == UAD_OK);
    CHECK(im.c == 1 && im.bit_depth == 8 && strcmp(im.format, "png") == 0);
    /* PIL reads this mask as 185545 zeros, 58 pixels of 255 and 37 of
     * other levels (the masks are anti-aliased). */
    size_t n = (size_t)im.w * im.h, zero = 0, full = 0, off_grid = 0;
    for (size_t i = 0; im.data && i < n; i++) {
        zero += im.data[i] == 0.0f;
        full += im.data[i] == 1.0f;
        float k = roundf(im.data[i] * 255.0f);
        off_grid += im.data[i] != k / 255.0f;
    }
    printf("MTD mask %dx%d: %zu zero, %zu full\n", im.w, im.h, zero, full);
    CHECK(im.w == 510 && im.h == 364);
    CHECK(zero == 185545 && full == 58 && n - zero - full == 37);
    CHECK(off_grid == 0);
    uad_image_free(&im);
}

static void test_alloc(void) {
    uad_image im;
    CHECK(uad_image_alloc(&im, 3, 2, 1) == UAD_OK);
    CHECK(im.data && im.data[5] == 0.0f && im.bit_depth == 32);
    CHECK(im.format[0] == 0);
    uad_image_free(&im);
    CHECK(im.data == NULL);
    CHECK(uad_image_alloc(&im, 0, 2, 1) == UAD_ERR_USAGE);
    CHECK(uad_image_alloc(&im, 1 << 30, 1 << 30, 1 << 30) == UAD_ERR_LIMIT);
    uad_image_free(NULL);
}

int main(void) {
    tu_enter_tmpdir("image");
    test_png();
    test_png_palette();
    test_jpeg();
    test_tiff();
    test_bmp();
    test_limits();
    test_bad_input();
    test_write_png();
    test_write_tiff();
    test_resize();
    test_mtd();
    test_alloc();
    return check_report("test_image");
}
