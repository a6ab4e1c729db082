/* nn.h - the compute core: forward and backward kernels (not installed).
 *
 * Layout: row-major, PyTorch order. Images and feature maps are (N, C, H, W)
 * and HW = H * W; sequences are (T, C) with T tokens. Weights follow
 * PyTorch's shapes: linear (OC, C), conv (OC, C, k, k), so a state dict
 * exported from PyTorch maps one to one.
 *
 * Conventions (llm.c style): outputs first, then const inputs, then
 * sizes. A backward takes the forward's inputs and the output gradient
 * `dout` and ACCUMULATES (+=) into the gradients dinp, dweight, dbias
 * (any of which may be NULL when not needed), so a tensor feeding several
 * consumers sums their gradients; callers zero gradients once per step.
 * Kernels never allocate per call in hot loops; scratch comes from the
 * caller or from primitives cached at first use.
 * Shape mismatches are programming errors (UAD_ASSERT), never statuses.
 * Threads: kernels split their work over nn_threads() OpenMP threads
 * (oneDNN shares the same pool) but are not reentrant: the primitive
 * cache and scratch buffers are process-wide, so call them from one
 * thread at a time.
 */
#ifndef UAD_NN_H
#define UAD_NN_H

#include <stddef.h>
#include <stdint.h>

/* Number of threads kernels may use (default: online CPUs). */
void nn_set_threads(int n);
int nn_threads(void);

/* Compute precision of matmul and convolution: f32, or bf16 inputs with
 * f32 accumulation (oneDNN). Weights and activations stay f32 in memory.
 * Returns 0, or -1 (with a warning, precision left unchanged) when this
 * CPU has no bf16 support in oneDNN (it needs AVX-512; AVX2 has none). */
typedef enum { NN_F32 = 0, NN_BF16 = 1 } nn_precision;
int nn_set_precision(nn_precision p);
nn_precision nn_get_precision(void);

/* Free the cached oneDNN primitives and scratch buffers (they are
 * re-created at the next call). Kernels are not thread-safe: they share
 * these process-wide caches, so call them from one thread at a time. */
void nn_release(void);
/* A process-wide scratch buffer per slot (0..7), at least `bytes` long and
 * 64-byte aligned; grows at the first larger request, contents are not
 * kept across calls. Slots 0-5 belong to the matmul/conv staging, 6-7 to
 * the cosine-logit kernels. */
void *nn_scratch(int slot, size_t bytes);
/* f32 -> bf16 with round-to-nearest-even (NaN stays NaN). */
void nn_f32_to_bf16(uint16_t *out, const float *inp, size_t n);

/* ---- matmul and linear ---- */

/* out(M, N) = a(M, K) @ b(K, N) (+ out if accumulate). */
void nn_matmul(float *out, const float *a, const float *b, int M, int K,
               int N, int accumulate);
/* out(M, N) = a(M, K) @ b(N, K)^T (+ out if accumulate). */
void nn_matmul_bt(float *out, const float *a, const float *b, int M, int K,
                  int N, int accumulate);
/* out(M, N) = a(K, M)^T @ b(K, N) (+ out if accumulate). */
void nn_matmul_at(float *out, const float *a, const float *b, int M, int K,
                  int N, int accumulate);

/* out(T, OC) = inp(T, C) @ weight(OC, C)^T + bias(OC); bias may be NULL. */
void nn_linear_forward(float *out, const float *inp, const float *weight,
                       const float *bias, int T, int C, int OC);
void nn_linear_backward(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp,
                        const float *weight, int T, int C, int OC);

/* c(i, m, n) = alpha * sum_k a(i, m, k) b(i, k, n) for i < B, each operand
 * laid out by its element strides (batch, row, column), so that views
 * into a larger tensor (the heads of a qkv matrix) need no copies. a and
 * b hold f32 values, or bf16 ones (uint16_t) in bf16 precision; c is
 * f32 and overwritten. */
void nn_bmm_strided(float *c, const void *a, const void *b, int B, int M,
                    int K, int N, const long sa[3], const long sb[3],
                    const long sc[3], float alpha);

/* ---- linear layers with constant weights (inference) ---- */

/* A linear layer with constant weight(OC, C) and bias(OC) (a pretrained
 * backbone's layers). nn_linear_pack copies the weight at once into the
 * f32 layout the matmul prefers and keeps no pointer to it (the caller
 * may free it: the packed copy is the only one, not a second); the first
 * forward in bf16 packs a bf16 copy from it, kept alongside. The bias is
 * read in place and must outlive the handle. */
typedef struct nn_linear_packed nn_linear_packed;
typedef enum { NN_ACT_NONE = 0, NN_ACT_GELU = 1, NN_ACT_QUICK_GELU = 2 } nn_act;
/* NULL when out of memory. */
nn_linear_packed *nn_linear_pack(const float *weight, const float *bias,
                                 int C, int OC);
void nn_linear_packed_free(nn_linear_packed *p);
/* out(T, OC) = act(inp(T, C) @ weight^T + bias) * scale(OC)
 *              (+ out when accumulate),
 * in one oneDNN matmul with the rest fused as post-operations (two in
 * bf16 on AMX from 256 rows up: the whole 32-row blocks, then the rest,
 * which oneDNN's AMX kernels run faster than one odd-sized matmul). act: GELU
 * in its erf form, or quick-GELU x * sigmoid(1.702 x); scale may be NULL
 * (layer scale of a residual branch). */
void nn_linear_packed_forward(float *out, const float *inp,
                              nn_linear_packed *p, int T, nn_act act,
                              const float *scale, int accumulate);
/* The same in bf16 precision with operands already in bf16: inp as bf16
 * (T, C) when inp_bf16, out written as bf16 when out_bf16 (then without
 * accumulate). Saves the f32 round trips between bf16 layers; needs
 * nn_get_precision() == NN_BF16. */
void nn_linear_packed_forward_bf(void *out, int out_bf16, const void *inp,
                                 int inp_bf16, nn_linear_packed *p, int T,
                                 nn_act act, const float *scale,
                                 int accumulate);

/* ---- convolution, stride 1, zero padding k/2, k odd (1 or 3) ---- */

/* out(N, OC, H, W) = conv(inp(N, C, H, W), weight(OC, C, k, k)) + bias. */
void nn_conv2d_forward(float *out, const float *inp, const float *weight,
                       const float *bias, int N, int C, int H, int W,
                       int OC, int k);
void nn_conv2d_backward(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp,
                        const float *weight, int N, int C, int H, int W,
                        int OC, int k);

/* ---- batch norm over (N, H, W) per channel ---- */

/* Training mode: batch statistics; saves mean(C) and rstd(C) for the
 * backward and updates running stats (PyTorch: unbiased var, momentum). */
void nn_batchnorm_forward_train(float *out, float *mean, float *rstd,
                                float *running_mean, float *running_var,
                                const float *inp, const float *gamma,
                                const float *beta, int N, int C, int HW,
                                float momentum, float eps);
void nn_batchnorm_forward_eval(float *out, const float *inp,
                               const float *gamma, const float *beta,
                               const float *running_mean,
                               const float *running_var, int N, int C,
                               int HW, float eps);
void nn_batchnorm_backward(float *dinp, float *dgamma, float *dbeta,
                           const float *dout, const float *inp,
                           const float *mean, const float *rstd,
                           const float *gamma, int N, int C, int HW);

/* ---- elementwise ---- */

void nn_relu_forward(float *out, const float *inp, size_t n);
/* Uses the forward OUTPUT (or input: same sign) to gate dout. */
void nn_relu_backward(float *dinp, const float *dout, const float *out,
                      size_t n);
void nn_add_forward(float *out, const float *a, const float *b, size_t n);
void nn_sigmoid_forward(float *out, const float *inp, size_t n);
/* dinp += dout * out * (1 - out), from the forward OUTPUT. */
void nn_sigmoid_backward(float *dinp, const float *dout, const float *out,
                         size_t n);
/* GELU (erf form) and quick-GELU x * sigmoid(1.702 x), for the ViT ports. */
void nn_gelu_forward(float *out, const float *inp, size_t n);
void nn_gelu_backward(float *dinp, const float *dout, const float *inp,
                      size_t n);
void nn_quick_gelu_forward(float *out, const float *inp, size_t n);
void nn_quick_gelu_backward(float *dinp, const float *dout,
                            const float *inp, size_t n);

/* ---- resizing (PyTorch bilinear, align_corners=False) ---- */

/* out(NC, OH, OW) from inp(NC, H, W). */
void nn_resize_bilinear_forward(float *out, const float *inp, int NC,
                                int H, int W, int OH, int OW);
void nn_resize_bilinear_backward(float *dinp, const float *dout, int NC,
                                 int H, int W, int OH, int OW);

/* ---- normalisation ---- */

/* Per pixel L2 normalisation over channels: out = x / max(|x|, eps);
 * saves norm(N, HW) = max(|x|, eps), the divisor, for the backward. */
void nn_l2norm_forward(float *out, float *norm, const float *inp, int N,
                       int C, int HW, float eps);
void nn_l2norm_backward(float *dinp, const float *dout, const float *out,
                        const float *norm, int N, int C, int HW);
/* Layer norm over the last dim of (T, C); saves mean(T), rstd(T). */
void nn_layernorm_forward(float *out, float *mean, float *rstd,
                          const float *inp, const float *weight,
                          const float *bias, int T, int C, float eps);
void nn_layernorm_backward(float *dinp, float *dweight, float *dbias,
                           const float *dout, const float *inp,
                           const float *mean, const float *rstd,
                           const float *weight, int T, int C);

/* ---- the discriminator head and losses (SPEC section 6) ---- */

/* logits(N, Y, HW) = <f(N, C, HW), g(Y, C)> / eps; f and g already
 * L2-normalised. Backward also gives deps (a scalar, accumulated). */
void nn_cosine_logits_forward(float *logits, const float *f,
                              const float *g, float eps, int N, int C,
                              int HW, int Y);
void nn_cosine_logits_backward(float *df, float *dg, float *deps,
                               const float *dlogits, const float *f,
                               const float *g, float eps, int N, int C,
                               int HW, int Y);

/* Detection map S_d = mean over Y of sigmoid(logits); (N, HW).
 * Losses on S_d vs a binary target(N, HW), as in the AnomalyCLIP/UniADC
 * reference (formulas in nn_loss.c). Each returns the loss and
 * ACCUMULATES d loss / d pred into dpred (NULL: not wanted), so the
 * caller zeroes dS once and adds focal and Dice into it. */
float nn_focal_loss(float *dpred, const float *pred, const float *target,
                    size_t n, float gamma);
/* Dice is per image then averaged over the N images, hence N and HW. */
float nn_dice_loss(float *dpred, const float *pred, const float *target,
                   int N, size_t HW);
/* Cross-entropy over Y classes of logits(N, Y, HW) against labels(N, HW)
 * in 1..Y (a label above Y is a caller bug: asserted); label 0 pixels are
 * ignored. Returns the mean over counted pixels (0 when none), unscaled.
 * Writes (not accumulates) dlogits (may be NULL) = scale * d mean / d
 * logits, zero at ignored pixels. */
float nn_cross_entropy(float *dlogits, const float *logits,
                       const unsigned char *labels, int N, int Y, int HW,
                       float scale);

/* ---- optimiser ---- */

/* AdamW step over a flat parameter block (PyTorch's AdamW: decoupled
 * weight decay lr * wd * p, bias-corrected moments). step starts at 1. */
void nn_adamw_step(float *param, const float *grad, float *m, float *v,
                   size_t n, float lr, float beta1, float beta2, float eps,
                   float weight_decay, int step);
/* L2 norm of a gradient block (for clipping). */
double nn_sum_squares(const float *x, size_t n);
void nn_scale(float *x, size_t n, float s);

/* ==== ViT kernels (nn_attn.c): forward only, for the pretrained
 * backbones of vit.c ==== */

/* out(rows, cols) = softmax over each row of scale * inp; out may alias
 * inp; scale > 0. */
void nn_softmax_rows_forward(float *out, const float *inp, int rows,
                             int cols, float scale);
/* Multi-head self-attention without projections: out(T, C) from
 * qkv(T, 3C) = [q | k | v], head h in columns h*D..h*D+D-1 of each part
 * (D = C / heads), scaled by 1/sqrt(D). scratch holds
 * nn_mha_scratch_floats(T, C, heads) floats. */
size_t nn_mha_scratch_floats(int T, int C, int heads);
void nn_mha_forward(float *out, float *scratch, const float *qkv, int T,
                    int C, int heads);
/* The same with out rounded to bf16 (the input of a bf16 matmul). */
void nn_mha_forward_bf16(uint16_t *out, float *scratch, const float *qkv,
                         int T, int C, int heads);
/* Which attention kernel runs. NN_ATTN_AUTO (the default) picks per CPU,
 * precision and head width; the others, for tests and benchmarks, force
 * one wherever its head-width rule holds (fused f32: D % 8 == 0, in
 * either precision; vdpbf16ps: D % 8 == 0, AMX: D % 32 == 0 and
 * D <= 256, both in bf16 precision only) and leave the rest to AUTO.
 * Returns 0, or -1 (kernel unchanged) when this build or CPU lacks it. */
typedef enum {
    NN_ATTN_AUTO = 0,
    NN_ATTN_UNFUSED = 1,
    NN_ATTN_FUSED_F32 = 2,
    NN_ATTN_FUSED_DPBF16 = 3,
    NN_ATTN_FUSED_AMX = 4
} nn_attn_kernel;
int nn_set_attn_kernel(nn_attn_kernel k);
/* Rotary position embedding on the q and k parts of qkv(T, 3C), patch
 * tokens t >= prefix only: pairs (d, d + D/2) of each head rotate by
 * the angles whose cos and sin are cos_t, sin_t (T - prefix, D). */
void nn_rope_forward(float *qkv, const float *cos_t, const float *sin_t,
                     int T, int C, int heads, int prefix);
/* out(gh*gw, C*p*p) patches of img(C, H, W), gh = H/p, gw = W/p, in the
 * (c, i, j) order of a conv weight (OC, C, p, p): a stride-p convolution
 * is then nn_linear_forward over the rows. */
void nn_patchify(float *out, const float *img, int C, int H, int W, int p);
/* PyTorch's F.interpolate(mode="bicubic", align_corners=False), with
 * antialias=False (a = -0.75, clamped taps) or True (a = -0.5, kernel
 * stretched when shrinking, renormalised). m(out, in) must be zeroed.
 * The resize returns 0, or -1 when its work buffer cannot be allocated. */
void nn_bicubic_weights(double *m, int in, int out, int antialias);
int nn_resize_bicubic_forward(float *out, const float *inp, int NC, int H,
                              int W, int OH, int OW, int antialias);
/* Layer norm of each row of (T, C), no statistics kept; may alias. */
void nn_layernorm_rows_forward(float *out, const float *inp,
                               const float *weight, const float *bias,
                               int T, int C, float eps);
/* The same rounded to bf16 (the input of a bf16 matmul). */
void nn_layernorm_rows_forward_bf16(uint16_t *out, const float *inp,
                                    const float *weight, const float *bias,
                                    int T, int C, float eps);
/* out(T, Hd) = silu(x1) * x2, inp(T, 2Hd) = [x1 | x2] (SwiGLU FFN). */
void nn_swiglu_forward(float *out, const float *inp, int T, int Hd);

#endif /* UAD_NN_H */
