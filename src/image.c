/* image.c - decode PNG / JPEG / TIFF / BMP into planar floats, write
 * 8-bit PNG and float TIFF atomically, and resize like PyTorch.
 *
 * Every decoder works from memory (uad_image_load reads the file first),
 * checks width * height against params.max_pixels from the header before
 * any pixel buffer exists, and turns every library error into a status
 * with a message "<name>: <problem>". libpng and libjpeg report errors by
 * longjmp: each decoder does its setjmp in a small outer function and its
 * work in an inner one that records every allocation in a context struct,
 * so the outer function frees them after a jump. */
#include "internal.h"

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <tiffio.h>

/* stb_image is used for BMP only; its symbols stay private to this file. */
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
/* GCC reports stb's unused static functions at the end of the file, by
 * their own location, so that warning stays off for the whole file. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <stb_image.h>
#pragma GCC diagnostic pop

/* ---- shared helpers ------------------------------------------------ */

uad_image_params uad_image_default_params(void) {
    uad_image_params p;
    memset(&p, 0, sizeof p);
    p.max_pixels = 100000000;
    return p;
}

void uad_image_free(uad_image *img) {
    if (!img) return;
    free(img->data);
    memset(img, 0, sizeof *img);
}

/* Validate w x h x c against the pixel limit and allocate out->data.
 * Called only after a header was parsed, before any decode buffer. */
static uad_status image_setup(uad_image *out, const char *name, size_t w,
                              size_t h, int c, size_t max_pixels) {
    size_t npix, nval;
    if (w == 0 || h == 0)
        return uad_fail(UAD_ERR_FORMAT, "%s: image has zero width or "
                        "height (%zu x %zu)", name, w, h);
    if (!uad_mul_size(&npix, w, h) || npix > max_pixels)
        return uad_fail(UAD_ERR_LIMIT, "%s: image is %zu x %zu pixels, "
                        "more than the limit of %zu pixels", name, w, h,
                        max_pixels);
    if (w > INT32_MAX || h > INT32_MAX ||
        !uad_mul3_size(&nval, npix, (size_t)c, sizeof(float)))
        return uad_fail(UAD_ERR_LIMIT, "%s: image of %zu x %zu is too "
                        "large", name, w, h);
    out->data = uad_malloc(nval);
    if (!out->data)
        return uad_fail(UAD_ERR_NOMEM, "%s: out of memory for %zu x %zu "
                        "image", name, w, h);
    out->w = (int)w;
    out->h = (int)h;
    out->c = c;
    return UAD_OK;
}

/* 8-bit value v -> v / 255, the same float for every decoder; filled
 * once (pthread_once: decoders may run on several threads). */
static float g_u8[256];
static pthread_once_t g_u8_once = PTHREAD_ONCE_INIT;
static void u8_table_fill(void) {
    for (int i = 0; i < 256; i++) g_u8[i] = (float)i / 255.0f;
}
static void u8_table_init(void) { pthread_once(&g_u8_once, u8_table_fill); }

/* Interleaved 8-bit row (w pixels of `stride` samples) -> first `c`
 * samples of each pixel into the planes of out at row y. */
static void row_u8(uad_image *out, int y, const uint8_t *row, int stride) {
    size_t hw = (size_t)out->w * out->h, off = (size_t)y * out->w;
    for (int ch = 0; ch < out->c; ch++) {
        float *dst = out->data + ch * hw + off;
        const uint8_t *src = row + ch;
        for (int x = 0; x < out->w; x++) dst[x] = g_u8[src[x * stride]];
    }
}

/* ---- PNG ----------------------------------------------------------- */

typedef struct png_ctx {
    const uint8_t *buf;
    size_t len, pos;
    const char *name;
    char msg[200];
    uint8_t *pixels;   /* decoded rows, rowbytes * h */
    png_bytep *rows;
} png_ctx;

static void png_read_mem(png_structp png, png_bytep dst, png_size_t n) {
    png_ctx *ctx = png_get_io_ptr(png);
    if (n > ctx->len - ctx->pos) png_error(png, "truncated PNG data");
    memcpy(dst, ctx->buf + ctx->pos, n);
    ctx->pos += n;
}

static void png_on_error(png_structp png, png_const_charp msg) {
    png_ctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->msg, sizeof ctx->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    png_ctx *ctx = png_get_error_ptr(png);
    UAD_DEBUG("%s: libpng warning: %s", ctx->name, msg);
}

/* Palette sample -> RGB planes (or one plane when the palette is gray). */
static uad_status png_palette(uad_image *out, png_structp png,
                              png_infop info, png_ctx *ctx) {
    png_colorp pal = NULL;
    int npal = 0;
    if (!png_get_PLTE(png, info, &pal, &npal) || npal <= 0)
        return uad_fail(UAD_ERR_FORMAT, "%s: palette PNG without PLTE",
                        ctx->name);
    size_t hw = (size_t)out->w * out->h;
    for (int y = 0; y < out->h; y++) {
        const uint8_t *row = ctx->rows[y];
        for (int x = 0; x < out->w; x++) {
            if (row[x] >= npal)
                return uad_fail(UAD_ERR_FORMAT, "%s: palette index %d out "
                                "of range (%d entries)", ctx->name, row[x],
                                npal);
            png_color e = pal[row[x]];
            size_t i = (size_t)y * out->w + x;
            out->data[i] = g_u8[e.red];
            if (out->c == 3) {
                out->data[hw + i] = g_u8[e.green];
                out->data[2 * hw + i] = g_u8[e.blue];
            }
        }
    }
    return UAD_OK;
}

/* Decoded rows -> planes; samples are 8 or 16 bits (low depths were
 * unpacked to one byte each by png_set_packing, keeping their values). */
static void png_convert(uad_image *out, png_ctx *ctx, int stride,
                        int depth) {
    size_t hw = (size_t)out->w * out->h;
    if (depth == 8) {
        for (int y = 0; y < out->h; y++) row_u8(out, y, ctx->rows[y], stride);
        return;
    }
    float maxv = (float)((1 << depth) - 1);
    for (int y = 0; y < out->h; y++) {
        const uint8_t *row = ctx->rows[y];
        for (int ch = 0; ch < out->c; ch++) {
            float *dst = out->data + ch * hw + (size_t)y * out->w;
            for (int x = 0; x < out->w; x++) {
                const uint8_t *s = row + (size_t)(x * stride + ch) *
                                   (depth == 16 ? 2 : 1);
                unsigned v = depth == 16 ? (unsigned)(s[0] << 8 | s[1]) : s[0];
                /* Exact quotient v / max, computed in double. */
                dst[x] = depth == 16 ? (float)(v / 65535.0)
                                     : (float)v / maxv;
            }
        }
    }
}

static uad_status png_inner(uad_image *out, png_structp png, png_infop info,
                            png_ctx *ctx, size_t max_pixels) {
    png_set_read_fn(png, ctx, png_read_mem);
    /* Our own max_pixels check decides, not libpng's 1e6 side limit. */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info);
    png_uint_32 h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info);
    int ctype = png_get_color_type(png, info);

    /* Output channels: alpha dropped; gray palettes give one plane. */
    int src_ch = png_get_channels(png, info), c = src_ch >= 3 ? 3 : 1;
    if (ctype == PNG_COLOR_TYPE_PALETTE) {
        png_colorp pal = NULL;
        int npal = 0, gray = 1;
        png_get_PLTE(png, info, &pal, &npal);
        for (int i = 0; i < npal; i++)
            gray &= pal[i].red == pal[i].green && pal[i].red == pal[i].blue;
        c = gray ? 1 : 3;
        src_ch = c + (png_get_valid(png, info, PNG_INFO_tRNS) ? 1 : 0);
    }
    uad_status st = image_setup(out, ctx->name, w, h, c, max_pixels);
    if (st != UAD_OK) return st;

    /* Unpack 1/2/4-bit samples to bytes; deinterlace; keep 16 bits. */
    png_set_packing(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info), total;
    if (!uad_mul_size(&total, rowbytes, h))
        return uad_fail(UAD_ERR_LIMIT, "%s: rows too large",
                                  ctx->name);
    ctx->pixels = uad_malloc(total);
    ctx->rows = uad_malloc(h * sizeof *ctx->rows);
    if (!ctx->pixels || !ctx->rows)
        return uad_fail(UAD_ERR_NOMEM, "%s: out of memory",
                                  ctx->name);
    for (png_uint_32 y = 0; y < h; y++) ctx->rows[y] = ctx->pixels + y * rowbytes;
    png_read_image(png, ctx->rows);

    /* Fill the planes and the source description. */
    out->bit_depth = ctype == PNG_COLOR_TYPE_PALETTE ? 8 : depth;
    out->src_channels = src_ch;
    snprintf(out->format, sizeof out->format, "png");
    if (ctype == PNG_COLOR_TYPE_PALETTE)
        return png_palette(out, png, info, ctx);
    png_convert(out, ctx, png_get_channels(png, info), depth);
    return UAD_OK;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static uad_status decode_png(uad_image *out, const uint8_t *buf, size_t len,
                             const char *name, size_t max_pixels) {
    /* The size limit from IHDR (always the first chunk) before libpng
     * runs: libpng would read on to the first IDAT before reporting it. */
    if (len >= 24 && memcmp(buf + 12, "IHDR", 4) == 0) {
        size_t w = be32(buf + 16), h = be32(buf + 20), npix;
        if (!uad_mul_size(&npix, w, h) || npix > max_pixels)
            return uad_fail(UAD_ERR_LIMIT, "%s: image is %zu x %zu pixels, "
                            "more than the limit of %zu pixels", name, w, h,
                            max_pixels);
    }
    png_ctx ctx = {.buf = buf, .len = len, .name = name};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx,
                                             png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return uad_fail(UAD_ERR_NOMEM, "%s: cannot start libpng", name);
    }
    uad_status st;
    if (setjmp(png_jmpbuf(png)))
        st = uad_fail(UAD_ERR_FORMAT, "%s: %s%s", name,
                      strstr(ctx.msg, "PNG") ? "" : "corrupt PNG: ",
                      ctx.msg);
    else
        st = png_inner(out, png, info, &ctx, max_pixels);
    png_destroy_read_struct(&png, &info, NULL);
    free(ctx.pixels);
    free(ctx.rows);
    if (st != UAD_OK) uad_image_free(out);
    return st;
}

/* ---- JPEG ---------------------------------------------------------- */

typedef struct jpeg_ctx {
    struct jpeg_error_mgr err; /* first: libjpeg passes &err as cinfo->err */
    jmp_buf jb;
    const char *name;
    char msg[JMSG_LENGTH_MAX];
    uint8_t *row;
    struct jpeg_progress_mgr progress;
} jpeg_ctx;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_ctx *ctx = (jpeg_ctx *)cinfo->err;
    cinfo->err->format_message(cinfo, ctx->msg);
    longjmp(ctx->jb, 1);
}

/* libjpeg calls corrupt data (premature end, bad Huffman code, missing
 * marker) a warning and fills the rest with gray; we refuse such files.
 * Trace messages (level > 0) are dropped. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    jpeg_ctx *ctx = (jpeg_ctx *)cinfo->err;
    if (level >= 0) return;
    switch (cinfo->err->msg_code) {
    case JWRN_JFIF_MAJOR:   /* harmless metadata oddities */
    case JWRN_ADOBE_XFORM:
        cinfo->err->format_message(cinfo, ctx->msg);
        UAD_DEBUG("%s: libjpeg warning: %s", ctx->name, ctx->msg);
        return;
    default:
        jpeg_on_error(cinfo);
    }
}

/* A progressive file may hold thousands of tiny scans, each a full pass
 * over the coefficients; real encoders write about ten. */
static void jpeg_on_progress(j_common_ptr cinfo) {
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (!cinfo->is_decompressor || d->input_scan_number <= 500) return;
    jpeg_ctx *ctx = (jpeg_ctx *)cinfo->err;
    snprintf(ctx->msg, sizeof ctx->msg, "more than 500 progressive scans");
    longjmp(ctx->jb, 1);
}

static uad_status jpeg_inner(uad_image *out, j_decompress_ptr d,
                             jpeg_ctx *ctx, const uint8_t *buf, size_t len,
                             size_t max_pixels) {
    jpeg_mem_src(d, buf, (unsigned long)len);
    jpeg_read_header(d, TRUE);

    /* Colour space: gray stays gray, YCbCr/RGB become RGB. */
    int c;
    if (d->jpeg_color_space == JCS_GRAYSCALE) {
        d->out_color_space = JCS_GRAYSCALE;
        c = 1;
    } else if (d->jpeg_color_space == JCS_YCbCr ||
               d->jpeg_color_space == JCS_RGB) {
        d->out_color_space = JCS_RGB;
        c = 3;
    } else {
        return uad_fail(UAD_ERR_FORMAT, "%s: %s JPEG is not supported "
                        "(only gray and RGB/YCbCr)", ctx->name,
                        d->jpeg_color_space == JCS_CMYK ||
                        d->jpeg_color_space == JCS_YCCK ? "CMYK"
                                                        : "this colour-space");
    }
    uad_status st = image_setup(out, ctx->name, d->image_width,
                                d->image_height, c, max_pixels);
    if (st != UAD_OK) return st;

    /* Decode to 8-bit rows and convert each in one pass. */
    jpeg_start_decompress(d);
    if ((int)d->output_components != c)
        return uad_fail(UAD_ERR_FORMAT, "%s: unexpected JPEG component "
                        "count %d", ctx->name, d->output_components);
    ctx->row = uad_malloc((size_t)out->w * c);
    if (!ctx->row) return UAD_ERR_NOMEM;
    while (d->output_scanline < d->output_height) {
        int y = (int)d->output_scanline;
        JSAMPROW r = ctx->row;
        if (jpeg_read_scanlines(d, &r, 1) != 1)
            return uad_fail(UAD_ERR_FORMAT, "%s: truncated JPEG data",
                            ctx->name);
        row_u8(out, y, ctx->row, c);
    }
    jpeg_finish_decompress(d);
    out->bit_depth = 8;
    out->src_channels = d->num_components;
    snprintf(out->format, sizeof out->format, "jpeg");
    return UAD_OK;
}

static uad_status decode_jpeg(uad_image *out, const uint8_t *buf,
                              size_t len, const char *name,
                              size_t max_pixels) {
    struct jpeg_decompress_struct d;
    jpeg_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.name = name;
    d.err = jpeg_std_error(&ctx.err);
    ctx.err.error_exit = jpeg_on_error;
    ctx.err.emit_message = jpeg_on_message;
    uad_status st;
    if (setjmp(ctx.jb)) {
        /* libjpeg's words for a cut file: "Premature end of JPEG file". */
        int cut = strstr(ctx.msg, "Premature end") != NULL;
        st = uad_fail(UAD_ERR_FORMAT, "%s: %s JPEG data (%s)", name,
                      cut ? "truncated" : "corrupt", ctx.msg);
    } else {
        jpeg_create_decompress(&d);
        ctx.progress.progress_monitor = jpeg_on_progress;
        d.progress = &ctx.progress;
        st = jpeg_inner(out, &d, &ctx, buf, len, max_pixels);
    }
    jpeg_destroy_decompress(&d);
    free(ctx.row);
    if (st != UAD_OK) uad_image_free(out);
    return st;
}

/* ---- TIFF ---------------------------------------------------------- */

typedef struct tiff_mem {
    const uint8_t *buf;
    size_t len, pos;
    const char *name;
    char msg[300];
} tiff_mem;

static tmsize_t tm_read(thandle_t h, void *dst, tmsize_t n) {
    tiff_mem *m = (tiff_mem *)h;
    size_t k = m->pos < m->len ? m->len - m->pos : 0;
    if (n < 0) return -1;
    if ((size_t)n < k) k = (size_t)n;
    memcpy(dst, m->buf + m->pos, k);
    m->pos += k;
    return (tmsize_t)k;
}
static tmsize_t tm_write(thandle_t h, void *src, tmsize_t n) { return -1; }
static toff_t tm_seek(thandle_t h, toff_t off, int whence) {
    tiff_mem *m = (tiff_mem *)h;
    uint64_t base = whence == SEEK_CUR ? m->pos
                    : whence == SEEK_END ? m->len : 0;
    if (off > UINT64_MAX - base) return (toff_t)-1;
    m->pos = (size_t)(base + off);
    return m->pos;
}
static int tm_close(thandle_t h) { return 0; }
static toff_t tm_size(thandle_t h) { return ((tiff_mem *)h)->len; }

/* Keep libtiff's first error for our message; warnings go to debug. */
static int tiff_on_error(TIFF *tif, void *user, const char *module,
                         const char *fmt, va_list ap) {
    tiff_mem *m = user;
    if (m->msg[0] == 0) vsnprintf(m->msg, sizeof m->msg, fmt, ap);
    return 1;
}
static int tiff_on_warning(TIFF *tif, void *user, const char *module,
                           const char *fmt, va_list ap) {
    tiff_mem *m = user;
    if (uad_log_enabled(UAD_LOG_DEBUG)) {
        char line[300];
        vsnprintf(line, sizeof line, fmt, ap);
        UAD_DEBUG("%s: libtiff warning: %s", m->name, line);
    }
    return 1;
}

/* max_pixels bounds libtiff's own buffers too: no legitimate strip or
 * tile buffer exceeds 16 bytes (4 float samples) per allowed pixel. */
static TIFFOpenOptions *tiff_options(tiff_mem *m, size_t max_pixels) {
    TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
    if (!o) return NULL;
    size_t cap;
    if (!uad_mul_size(&cap, max_pixels, 16) || cap > (size_t)INT64_MAX)
        cap = (size_t)INT64_MAX;
    if (cap < ((size_t)64 << 20)) cap = (size_t)64 << 20;
    TIFFOpenOptionsSetMaxSingleMemAlloc(o, (tmsize_t)cap);
    TIFFOpenOptionsSetErrorHandlerExtR(o, tiff_on_error, m);
    TIFFOpenOptionsSetWarningHandlerExtR(o, tiff_on_warning, m);
    return o;
}

/* Sample layout of a TIFF we can decode. */
typedef struct tiff_fmt {
    uint32_t w, h;
    uint16_t bps, spp, sfmt, planar;
    int c;
} tiff_fmt;

static uad_status tiff_fail(tiff_mem *m, const char *what) {
    /* libtiff starts some messages with the file name: drop the repeat. */
    const char *msg = m->msg;
    size_t n = strlen(m->name);
    if (strncmp(msg, m->name, n) == 0 && msg[n] == ':')
        msg += n + (msg[n + 1] == ' ' ? 2 : 1);
    return uad_fail(UAD_ERR_FORMAT, "%s: %s%s%s", m->name, what,
                    msg[0] ? ": " : "", msg);
}

static uad_status tiff_header(tiff_fmt *f, TIFF *tif, tiff_mem *m) {
    uint16_t photo = 0;
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &f->w) ||
        !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &f->h))
        return tiff_fail(m, "TIFF without image size");
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &f->bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &f->spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &f->sfmt);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &f->planar);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo))
        photo = f->spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
    int ok_depth = (f->sfmt == SAMPLEFORMAT_UINT &&
                    (f->bps == 8 || f->bps == 16)) ||
                   (f->sfmt == SAMPLEFORMAT_IEEEFP && f->bps == 32);
    if (!ok_depth)
        return uad_fail(UAD_ERR_FORMAT, "%s: unsupported TIFF samples "
                        "(%u bits, sample format %u; need 8/16-bit unsigned "
                        "or 32-bit float)", m->name, f->bps, f->sfmt);
    if (photo == PHOTOMETRIC_MINISBLACK && (f->spp == 1 || f->spp == 2))
        f->c = 1;
    else if (photo == PHOTOMETRIC_RGB && (f->spp == 3 || f->spp == 4))
        f->c = 3;
    else
        return uad_fail(UAD_ERR_FORMAT, "%s: unsupported TIFF colour "
                        "layout (photometric %u, %u samples per pixel)",
                        m->name, photo, f->spp);
    return UAD_OK;
}

/* n samples of one kind from src (every `stride`-th) -> floats. */
static void tiff_samples(float *dst, const uint8_t *src, size_t n,
                         size_t stride, const tiff_fmt *f) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = src + i * stride * (f->bps / 8);
        if (f->bps == 8) {
            dst[i] = g_u8[*s];
        } else if (f->bps == 16) {
            uint16_t v;
            memcpy(&v, s, 2);
            dst[i] = (float)(v / 65535.0);
        } else {
            memcpy(&dst[i], s, 4);
        }
    }
}

/* Copy a decoded block (strip or tile: bw x bh pixels at x0, y0, holding
 * all samples when contiguous or sample `s` alone when separate). */
static void tiff_block(uad_image *out, const uint8_t *blk, uint32_t x0,
                       uint32_t y0, uint32_t bw, uint32_t bh, int s,
                       const tiff_fmt *f) {
    size_t hw = (size_t)out->w * out->h, bps = f->bps / 8;
    size_t per_px = f->planar == PLANARCONFIG_SEPARATE ? 1 : f->spp;
    uint32_t cw = x0 + bw > (uint32_t)out->w ? out->w - x0 : bw;
    uint32_t ch_ = y0 + bh > (uint32_t)out->h ? out->h - y0 : bh;
    for (uint32_t y = 0; y < ch_; y++) {
        const uint8_t *row = blk + (size_t)y * bw * per_px * bps;
        for (int k = 0; k < out->c; k++) {
            int plane = f->planar == PLANARCONFIG_SEPARATE ? s : k;
            if (f->planar == PLANARCONFIG_SEPARATE && k != s) continue;
            size_t off = per_px == 1 ? 0 : (size_t)k * bps;
            float *dst = out->data + plane * hw + (size_t)(y0 + y) * out->w
                         + x0;
            tiff_samples(dst, row + off, cw, per_px, f);
        }
    }
}

/* Read every strip or tile of every wanted plane. */
static uad_status tiff_pixels(uad_image *out, TIFF *tif, tiff_mem *m,
                              const tiff_fmt *f) {
    int tiled = TIFFIsTiled(tif);
    uint32_t bw = f->w, bh = 0;
    if (tiled) {
        TIFFGetField(tif, TIFFTAG_TILEWIDTH, &bw);
        TIFFGetField(tif, TIFFTAG_TILELENGTH, &bh);
    } else {
        TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &bh);
        if (bh > f->h) bh = f->h;
    }
    tmsize_t bsize = tiled ? TIFFTileSize(tif) : TIFFStripSize(tif);
    size_t per_px = f->planar == PLANARCONFIG_SEPARATE ? 1 : f->spp, need;
    if (bw == 0 || bh == 0 || bsize <= 0 ||
        !uad_mul3_size(&need, bw, bh, per_px * (f->bps / 8)) ||
        need > (size_t)bsize)
        return tiff_fail(m, "bad TIFF strip or tile layout");
    /* Strips were clamped to the image above; a tile may overhang it, but
     * not by more than a generous margin, so that a forged tile size
     * cannot make us allocate far beyond the pixel limit. */
    if (tiled && ((uint64_t)bw > (uint64_t)f->w + 1024 ||
                  (uint64_t)bh > (uint64_t)f->h + 1024))
        return tiff_fail(m, "TIFF tile much larger than the image");
    uint8_t *blk = uad_malloc(need);
    if (!blk) return UAD_ERR_NOMEM;
    int planes = f->planar == PLANARCONFIG_SEPARATE ? out->c : 1;
    uad_status st = UAD_OK;
    for (int s = 0; s < planes && st == UAD_OK; s++) {
        for (uint32_t y0 = 0; y0 < f->h && st == UAD_OK; y0 += bh) {
            for (uint32_t x0 = 0; x0 < f->w; x0 += bw) {
                tmsize_t got = tiled
                    ? TIFFReadEncodedTile(
                          tif, TIFFComputeTile(tif, x0, y0, 0, (uint16_t)s),
                          blk, (tmsize_t)need)
                    : TIFFReadEncodedStrip(
                          tif, TIFFComputeStrip(tif, y0, (uint16_t)s), blk,
                          (tmsize_t)need);
                if (got < 0) {
                    st = tiff_fail(m, "corrupt or truncated TIFF data");
                    break;
                }
                /* A short last strip holds fewer rows; pad it. */
                if ((size_t)got < need)
                    memset(blk + got, 0, need - (size_t)got);
                tiff_block(out, blk, x0, y0, bw, bh, s, f);
            }
            if (y0 > UINT32_MAX - bh) break;
        }
    }
    free(blk);
    return st;
}

static uad_status decode_tiff(uad_image *out, const uint8_t *buf,
                              size_t len, const char *name,
                              size_t max_pixels) {
    tiff_mem m = {.buf = buf, .len = len, .name = name};
    TIFFOpenOptions *opts = tiff_options(&m, max_pixels);
    if (!opts) return uad_fail(UAD_ERR_NOMEM, "%s: out of memory", name);
    TIFF *tif = TIFFClientOpenExt(name, "rm", (thandle_t)&m, tm_read,
                                  tm_write, tm_seek, tm_close, tm_size,
                                  NULL, NULL, opts);
    TIFFOpenOptionsFree(opts);
    if (!tif) return tiff_fail(&m, "corrupt TIFF");

    tiff_fmt f;
    memset(&f, 0, sizeof f);
    uad_status st = tiff_header(&f, tif, &m);
    if (st == UAD_OK)
        st = image_setup(out, name, f.w, f.h, f.c, max_pixels);
    if (st == UAD_OK) st = tiff_pixels(out, tif, &m, &f);
    TIFFClose(tif);
    if (st != UAD_OK) {
        uad_image_free(out);
        return st;
    }
    out->bit_depth = f.bps;
    out->src_channels = f.spp;
    snprintf(out->format, sizeof out->format, "tiff");
    return UAD_OK;
}

/* ---- BMP (stb_image) ----------------------------------------------- */

/* stb_image expands 8-bit palettes to RGB, so a BMP always gives c = 3. */
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 |
           p[0];
}

/* stb_image reads zeros past the end of a buffer, so a cut BMP would
 * decode as if black: check the pixel array fits (uncompressed files). */
static uad_status bmp_check_size(const uint8_t *b, size_t len,
                                 const char *name) {
    if (len < 30) return uad_fail(UAD_ERR_FORMAT, "%s: truncated BMP "
                                  "header", name);
    uint32_t hsize = le32(b + 14), comp = 0;
    int64_t w, h;
    unsigned bpp;
    if (hsize == 12) {
        w = b[18] | b[19] << 8;
        h = b[20] | b[21] << 8;
        bpp = b[24] | b[25] << 8;
    } else {
        if (len < 34) return uad_fail(UAD_ERR_FORMAT, "%s: truncated BMP "
                                      "header", name);
        w = (int32_t)le32(b + 18);
        h = (int32_t)le32(b + 22);
        bpp = b[28] | b[29] << 8;
        comp = le32(b + 30);
    }
    if (comp == 1 || comp == 2 || w <= 0 || bpp == 0 || bpp > 32) return UAD_OK;
    if (h < 0) h = -h;
    uint64_t row = ((uint64_t)w * bpp + 31) / 32 * 4;
    uint64_t need = le32(b + 10) + row * (uint64_t)h;
    if (h > 0 && (row > UINT64_MAX / (uint64_t)h || need > len))
        return uad_fail(UAD_ERR_FORMAT, "%s: truncated BMP data (%zu of "
                        "%llu bytes)", name, len, (unsigned long long)need);
    return UAD_OK;
}

static uad_status decode_bmp(uad_image *out, const uint8_t *buf, size_t len,
                             const char *name, size_t max_pixels) {
    int w, h, comp;
    uad_status st0 = bmp_check_size(buf, len, name);
    if (st0 != UAD_OK) return st0;
    if (len > INT32_MAX ||
        !stbi_info_from_memory(buf, (int)len, &w, &h, &comp))
        return uad_fail(UAD_ERR_FORMAT, "%s: corrupt BMP (%s)", name,
                        stbi_failure_reason());
    uad_status st = image_setup(out, name, (size_t)w, (size_t)h, 3,
                                max_pixels);
    if (st != UAD_OK) return st;
    uint8_t *px = stbi_load_from_memory(buf, (int)len, &w, &h, &comp, 3);
    if (!px || w != out->w || h != out->h) {
        stbi_image_free(px);
        uad_image_free(out);
        return uad_fail(UAD_ERR_FORMAT, "%s: corrupt BMP (%s)", name,
                        stbi_failure_reason());
    }
    for (int y = 0; y < h; y++) row_u8(out, y, px + (size_t)y * w * 3, 3);
    stbi_image_free(px);
    out->bit_depth = 8;
    out->src_channels = comp;
    snprintf(out->format, sizeof out->format, "bmp");
    return UAD_OK;
}

/* ---- loading ------------------------------------------------------- */

uad_status uad_image_load_mem(uad_image *out, const void *buf, size_t len,
                              const char *name, const uad_image_params *p) {
    memset(out, 0, sizeof *out);
    u8_table_init();
    size_t maxpx = p ? p->max_pixels : uad_image_default_params().max_pixels;
    const uint8_t *b = buf;
    if (!name) name = "(memory)";
    if (len == 0)
        return uad_fail(UAD_ERR_FORMAT, "%s: empty file", name);

    /* Format by signature, never by extension. */
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 13, 10, 26, 10};
    if (len >= 8 && memcmp(b, png_sig, 8) == 0)
        return decode_png(out, b, len, name, maxpx);
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        return decode_jpeg(out, b, len, name, maxpx);
    if (len >= 4 && ((b[0] == 'I' && b[1] == 'I' && b[3] == 0 &&
                      (b[2] == 42 || b[2] == 43)) ||
                     (b[0] == 'M' && b[1] == 'M' && b[2] == 0 &&
                      (b[3] == 42 || b[3] == 43))))
        return decode_tiff(out, b, len, name, maxpx);
    if (len >= 2 && b[0] == 'B' && b[1] == 'M')
        return decode_bmp(out, b, len, name, maxpx);
    return uad_fail(UAD_ERR_FORMAT, "%s: not an image (unknown signature)",
                    name);
}

uad_status uad_image_load(uad_image *out, const char *path,
                          const uad_image_params *p) {
    memset(out, 0, sizeof *out);
    char *buf;
    size_t len;
    uad_status st = uad_read_file(path, &buf, &len);
    if (st != UAD_OK) return st;
    st = uad_image_load_mem(out, buf, len, path, p);
    free(buf);
    return st;
}

uad_status uad_image_alloc(uad_image *out, int w, int h, int c) {
    memset(out, 0, sizeof *out);
    if (w <= 0 || h <= 0 || c <= 0)
        return uad_fail(UAD_ERR_USAGE, "image size %d x %d x %d is not "
                        "positive", w, h, c);
    size_t n;
    if (!uad_mul3_size(&n, (size_t)w, (size_t)h, (size_t)c) ||
        !uad_mul_size(&n, n, sizeof(float)))
        return uad_fail(UAD_ERR_LIMIT, "image %d x %d x %d is too large",
                        w, h, c);
    out->data = uad_calloc(n / sizeof(float), sizeof(float));
    if (!out->data) return UAD_ERR_NOMEM;
    out->w = w;
    out->h = h;
    out->c = c;
    out->bit_depth = 32;
    out->src_channels = c;
    return UAD_OK;
}

/* ---- writers ------------------------------------------------------- */

typedef struct png_wctx {
    const char *path;
    char msg[200];
    uint8_t *row;
} png_wctx;

static void png_on_werror(png_structp png, png_const_charp msg) {
    png_wctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->msg, sizeof ctx->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_wwarning(png_structp png, png_const_charp msg) {
    png_wctx *ctx = png_get_error_ptr(png);
    UAD_DEBUG("%s: libpng warning: %s", ctx->path, msg);
}

/* v in [0,1] -> round(v * 255); NaN -> 0. */
static uint8_t to_u8(float v) {
    if (!(v > 0.0f)) return 0;
    if (v >= 1.0f) return 255;
    return (uint8_t)(v * 255.0f + 0.5f);
}

static void png_write_inner(png_structp png, png_infop info, png_wctx *ctx,
                            FILE *fp, const uad_image *img) {
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)img->w, (png_uint_32)img->h, 8,
                 img->c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t hw = (size_t)img->w * img->h;
    for (int y = 0; y < img->h; y++) {
        for (int x = 0; x < img->w; x++)
            for (int k = 0; k < img->c; k++)
                ctx->row[(size_t)x * img->c + k] =
                    to_u8(img->data[k * hw + (size_t)y * img->w + x]);
        png_write_row(png, ctx->row);
    }
    png_write_end(png, NULL);
}

uad_status uad_image_write_png(const char *path, const uad_image *img) {
    if (!img->data || (img->c != 1 && img->c != 3) || img->w <= 0 ||
        img->h <= 0)
        return uad_fail(UAD_ERR_USAGE, "%s: PNG needs 1 or 3 channels and "
                        "a non-empty image (have %d x %d x %d)", path,
                        img->w, img->h, img->c);
    png_wctx ctx = {.path = path};
    ctx.row = uad_malloc((size_t)img->w * img->c);
    if (!ctx.row) return UAD_ERR_NOMEM;
    uad_afile f;
    uad_status st = uad_afile_open(&f, path);
    if (st != UAD_OK) {
        free(ctx.row);
        return st;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx,
                                              png_on_werror, png_on_wwarning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        st = uad_fail(UAD_ERR_NOMEM, "%s: cannot start libpng", path);
    } else if (setjmp(png_jmpbuf(png))) {
        st = uad_fail(UAD_ERR_IO, "%s: cannot write PNG: %s", path, ctx.msg);
    } else {
        png_write_inner(png, info, &ctx, f.fp, img);
    }
    png_destroy_write_struct(&png, &info);
    free(ctx.row);
    if (st != UAD_OK) {
        uad_afile_abort(&f);
        return st;
    }
    return uad_afile_commit(&f);
}

/* Planes of floats, one strip set per plane (PLANARCONFIG_SEPARATE). */
static int tiff_write_planes(TIFF *tif, const uad_image *img) {
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, (uint32_t)img->w);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, (uint32_t)img->h);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)img->c);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 32);
    TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_IEEEFP);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_SEPARATE);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC,
                 img->c == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP,
                 TIFFDefaultStripSize(tif, (uint32_t)-1));
    size_t hw = (size_t)img->w * img->h;
    for (int k = 0; k < img->c; k++)
        for (int y = 0; y < img->h; y++)
            if (TIFFWriteScanline(tif, img->data + k * hw +
                                  (size_t)y * img->w, (uint32_t)y,
                                  (uint16_t)k) < 0)
                return 0;
    return 1;
}

uad_status uad_image_write_tiff(const char *path, const uad_image *img) {
    if (!img->data || (img->c != 1 && img->c != 3) || img->w <= 0 ||
        img->h <= 0)
        return uad_fail(UAD_ERR_USAGE, "%s: TIFF needs 1 or 3 channels and "
                        "a non-empty image (have %d x %d x %d)", path,
                        img->w, img->h, img->c);
    char *tmp = uad_tmp_name(path);
    if (!tmp) return UAD_ERR_NOMEM;
    tiff_mem m = {.name = path};
    TIFFOpenOptions *opts = tiff_options(&m, SIZE_MAX / 16);
    TIFF *tif = opts ? TIFFOpenExt(tmp, "w", opts) : NULL;
    TIFFOpenOptionsFree(opts);
    if (!tif) {
        remove(tmp);
        free(tmp);
        return uad_fail(UAD_ERR_IO, "%s: cannot create TIFF%s%s", path,
                        m.msg[0] ? ": " : "", m.msg);
    }
    int ok = tiff_write_planes(tif, img);
    TIFFClose(tif);
    uad_status st = UAD_OK;
    if (!ok || m.msg[0]) {
        remove(tmp);
        st = uad_fail(UAD_ERR_IO, "%s: cannot write TIFF: %s", path,
                      m.msg[0] ? m.msg : "write failed");
    } else {
        st = uad_rename_into(tmp, path);
    }
    free(tmp);
    return st;
}

/* ---- resize -------------------------------------------------------- */

/* Source index and weights along one axis, as PyTorch's CPU kernel
 * (UpSampleKernel.cpp, align_corners=False) computes them in float:
 * src = max(scale * (dst + 0.5) - 0.5, 0), i0 = floor(src),
 * i1 = i0 + (i0 < in - 1), l1 = src - i0, l0 = 1 - l1. */
static void linear_axis(int *i0, int *i1, float *l0, float *l1, int in,
                        int out) {
    float scale = (float)in / (float)out;
    for (int d = 0; d < out; d++) {
        float src = scale * ((float)d + 0.5f) - 0.5f;
        if (src < 0.0f) src = 0.0f;
        int i = (int)src;
        if (i > in - 1) i = in - 1;
        float lam = src - (float)i;
        if (lam > 1.0f) lam = 1.0f;
        i0[d] = i;
        i1[d] = i + (i < in - 1 ? 1 : 0);
        l1[d] = lam;
        l0[d] = 1.0f - lam;
    }
}

/* Nearest: min(floor(dst * in / out), in - 1) with a float scale. */
static void nearest_axis(int *idx, int in, int out) {
    float scale = (float)in / (float)out;
    for (int d = 0; d < out; d++) {
        int i = (int)floorf((float)d * scale);
        idx[d] = i < in - 1 ? i : in - 1;
    }
}

uad_status uad_image_resize(uad_image *out, const uad_image *in, int w,
                            int h, uad_resize_mode mode) {
    UAD_ASSERT(out != in && in->data && in->w > 0 && in->h > 0);
    uad_status st = uad_image_alloc(out, w, h, in->c);
    if (st != UAD_OK) return st;
    out->bit_depth = in->bit_depth;
    out->src_channels = in->src_channels;
    memcpy(out->format, in->format, sizeof out->format);

    /* Per-axis tables: x then y (ints, then float weights). */
    int *ix = uad_malloc(2 * ((size_t)w + h) * sizeof(int));
    float *lw = uad_malloc(2 * ((size_t)w + h) * sizeof(float));
    if (!ix || !lw) {
        free(ix);
        free(lw);
        uad_image_free(out);
        return UAD_ERR_NOMEM;
    }
    int *x0 = ix, *x1 = ix + w, *y0 = ix + 2 * w, *y1 = y0 + h;
    float *wx0 = lw, *wx1 = lw + w, *wy0 = lw + 2 * w, *wy1 = wy0 + h;
    if (mode == UAD_RESIZE_NEAREST) {
        nearest_axis(x0, in->w, w);
        nearest_axis(y0, in->h, h);
    } else {
        linear_axis(x0, x1, wx0, wx1, in->w, w);
        linear_axis(y0, y1, wy0, wy1, in->h, h);
    }

    /* (C, h, w) <- (C, in_h, in_w). */
    size_t ihw = (size_t)in->w * in->h, ohw = (size_t)w * h;
    for (int k = 0; k < in->c; k++) {
        const float *src = in->data + k * ihw;
        float *dst = out->data + k * ohw;
        for (int y = 0; y < h; y++) {
            const float *r0 = src + (size_t)y0[y] * in->w;
            float *o = dst + (size_t)y * w;
            if (mode == UAD_RESIZE_NEAREST) {
                for (int x = 0; x < w; x++) o[x] = r0[x0[x]];
                continue;
            }
            const float *r1 = src + (size_t)y1[y] * in->w;
            for (int x = 0; x < w; x++)
                o[x] = wy0[y] * (wx0[x] * r0[x0[x]] + wx1[x] * r0[x1[x]]) +
                       wy1[y] * (wx0[x] * r1[x0[x]] + wx1[x] * r1[x1[x]]);
        }
    }
    free(ix);
    free(lw);
    return UAD_OK;
}
