/* synth_internal.h - raster helpers shared by the synthesis modules
 * (synth_mask.c, synth_ops.c, synth.c). Masks are w*h bytes, 0/1;
 * float planes are h*w, row-major. */
#ifndef UAD_SYNTH_INTERNAL_H
#define UAD_SYNTH_INTERNAL_H

#include "internal.h"

/* Perlin gradient noise on a res_x x res_y lattice over the plane
 * (roughly in [-0.71, 0.71]). */
void syn_perlin(float *out, int w, int h, int res_x, int res_y,
                uad_rng *r);
/* Sum of octaves res, 2res, ... (n_oct of them), amplitude halving,
 * scaled so that max |value| = 1 (0 stays 0). */
void syn_fbm(float *out, float *tmp, int w, int h, int res, int n_oct,
             uad_rng *r);

/* Square-window max (dilate) / min (erode) of radius rad (in-image
 * neighbours only); dst != src; tmp has w*h bytes. */
void syn_dilate(uint8_t *dst, uint8_t *tmp, const uint8_t *src, int w,
                int h, int rad);
void syn_erode(uint8_t *dst, uint8_t *tmp, const uint8_t *src, int w,
               int h, int rad);
/* In place closing of radius rad; tmp has 2*w*h bytes. */
void syn_close(uint8_t *m, uint8_t *tmp, int w, int h, int rad);

/* 8-connected components of m: labels 1..n in lab (0 = background),
 * areas[k-1] = pixels of label k when areas != NULL (caller sizes it
 * w*h). queue has w*h ints. Returns n. */
int syn_components(int *lab, int *queue, size_t *areas, const uint8_t *m,
                   int w, int h);

/* Box blur of radius rad (edges clamped), dst may equal src; tmp has
 * w*h floats. */
void syn_box_blur(float *dst, float *tmp, const float *src, int w, int h,
                  int rad);

/* Value range of an image: [0, 1] for integer sources, else
 * [min(0, min), max(1, max)] of its values. */
void syn_value_range(float *lo, float *hi, const uad_image *img);

/* Mask pixel count. */
size_t syn_count(const uint8_t *m, size_t n);

/* The synthesizer behind the opaque handle. */
struct uad_synth {
    uad_synth_params p;
    uad_image *normals;  /* copies                                     */
    uint8_t **fg;        /* foreground of each normal                  */
    size_t n;
};

/* Run jobs 0..n_jobs-1 on n_threads threads (synth.c); progress is
 * reported under `stage`. Returns the first failure. */
typedef uad_status (*syn_job_fn)(void *ctx, size_t j);
uad_status syn_run_jobs(const char *stage, syn_job_fn fn, void *ctx,
                        size_t n_jobs, int n_threads);
/* Free a sample's image data and mask; zero it. */
void syn_sample_free(uad_synth_sample *s);

static inline float syn_clampf(float v, float lo, float hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

#endif
