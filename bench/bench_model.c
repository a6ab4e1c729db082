/* bench_model.c - one training step of the discriminator (forward, loss,
 * backward, clipping, AdamW) and one batch-1 prediction, timed; the same
 * network in PyTorch is bench/torch_model.py, bench/model.sh runs both.
 *   bench_model WIDTH SIZE BATCH STEPS f32|bf16 [backbone]
 * Prints tab-separated: config, precision, ms per step, ms of it in the
 * fixed filter bank, peak RSS MB, predictions/s. */
#include "model.h"
#include "nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: bench_model WIDTH SIZE BATCH STEPS f32|bf16 "
                        "[gabor|stem|hybrid]\n");
        return 2;
    }
    int C = atoi(argv[1]), S = atoi(argv[2]), B = atoi(argv[3]);
    int steps = atoi(argv[4]), bf16 = !strcmp(argv[5], "bf16");
    const char *names[] = {"blowhole", "break", "crack", "fray", "uneven"};
    uad_model_params mp = uad_model_default_params();
    mp.width = C;
    mp.input_size = S;
    if (argc > 6) mp.backbone = uad_backbone_parse(argv[6]);
    if (nn_set_precision(bf16 ? NN_BF16 : NN_F32) != 0) {
        printf("w%d_s%d_b%d\t%s\tunsupported\n", C, S, B, argv[5]);
        return 0;
    }
    uad_model *m = NULL;
    uad_acts a;
    if (uad_model_create(&m, names, 5, &mp) ||
        uad_acts_alloc(&a, m, B, 1)) {
        fprintf(stderr, "%s\n", uad_last_error());
        return 1;
    }

    /* a fixed random batch: images and labels with a defect square */
    uad_rng r;
    uad_rng_seed(&r, 1);
    size_t S2 = (size_t)S * S;
    uint8_t *lab = calloc((size_t)B * S2, 1);
    float *target = calloc((size_t)B * S2, sizeof(float));
    float *grad = calloc(m->n_arena, sizeof(float));
    float *mom = calloc(m->n_arena, sizeof(float));
    float *var = calloc(m->n_arena, sizeof(float));
    for (size_t i = 0; i < (size_t)B * 3 * S2; i++)
        a.img[i] = (float)uad_rng_normal(&r);
    for (int b = 0; b < B; b++)
        for (int y = S / 4; y < S / 2; y++)
            for (int x = S / 4; x < S / 2; x++)
                lab[(size_t)b * S2 + (size_t)y * S + x] = (uint8_t)(1 + b % 5);

    double t_step = 0, t_fixed = 0;
    for (int s = -1; s < steps; s++) { /* step -1 warms up */
        double t0 = now();
        uad_model_forward(&a, m, B, 1);
        uad_model_loss(&a, m, lab, target, B, 0.5f);
        memset(grad, 0, m->n_arena * sizeof(float));
        uad_model_backward(m, grad, &a, B);
        double ss = 0;
        for (int i = 0; i < m->n_params; i++)
            if (m->params[i].clip)
                ss += nn_sum_squares(grad + m->params[i].off, m->params[i].n);
        (void)ss;
        for (int i = 0; i < m->n_params; i++) {
            const uad_param *q = &m->params[i];
            if (q->decay)
                nn_adamw_step(m->arena + q->off, grad + q->off, mom + q->off,
                              var + q->off, q->n, 1e-3f, 0.9f, 0.999f, 1e-8f,
                              1e-4f, s + 2);
        }
        double t1 = now();
        if (m->backbone != UAD_BACKBONE_STEM) uad_backbone_fixed(&a, m, B);
        double t2 = now();
        if (s >= 0) {
            t_step += t1 - t0;
            t_fixed += t2 - t1;
        }
    }

    /* prediction of one S x S image (includes upsampling to its size) */
    uad_image img = {S, S, 1, a.img, 32, 1, ""};
    uad_prediction pr;
    int n_pred = 0;
    double t0 = now();
    while (n_pred < 3 || now() - t0 < 2.0) {
        if (uad_predict(&pr, m, &img)) return 1;
        uad_prediction_free(&pr);
        n_pred++;
    }
    double ips = n_pred / (now() - t0);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("w%d_s%d_b%d\t%s\t%.1f\t%.1f\t%.0f\t%.2f\n", C, S, B, argv[5],
           1e3 * t_step / steps, 1e3 * t_fixed / steps,
           (double)ru.ru_maxrss / 1024.0, ips);
    free(lab);
    free(target);
    free(grad);
    free(mom);
    free(var);
    uad_acts_free(&a);
    uad_model_free(m);
    return 0;
}
