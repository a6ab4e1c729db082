/* nn_attn.c - the transformer kernels of the ViT ports (forward only):
 * row softmax, multi-head self-attention on the matmul core, patch
 * extraction for a stride-p patch convolution, and PyTorch's bicubic
 * resize (plain and antialiased) for position-embedding grids. */
#include "internal.h"
#include "nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- exp for the softmax ---- */

/* exp(x) for x <= 0 (softmax arguments after the row maximum is taken
 * off): Cody-Waite range reduction x = n ln2 + r, |r| <= ln2 / 2, and a
 * degree-6 Taylor polynomial of e^r (relative error below 2e-7). */
static inline float exp_neg(float x) {
    /* no fmaxf / floorf: under -std=c11 GCC does not vectorise them;
     * for v = x log2(e) <= 0, (int)(v - 0.5) = ceil(v - 0.5) rounds v
     * to within 0.5 */
    x = x > -87.0f ? x : -87.0f;
    int32_t ni = (int32_t)(x * 1.44269504f - 0.5f);
    float n = (float)ni;
    float r = x - n * 0.693359375f - n * -2.12194440e-4f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* 2^n from its exponent bits (memcpy keeps the loop vectorisable,
     * where a union does not) */
    int32_t bits = (ni + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define NN_ATTN_AVX2 1

/* exp_neg on 8 lanes. GCC leaves the scalar loops above unvectorised
 * under -std=c11 (it reports otherwise but emits scalar code), hence
 * the intrinsics; the scalar function serves the tails and other CPUs. */
static inline __m256 exp_neg8(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 v = _mm256_fmsub_ps(x, _mm256_set1_ps(1.44269504f),
                               _mm256_set1_ps(0.5f));
    __m256i ni = _mm256_cvttps_epi32(v);
    __m256 n = _mm256_cvtepi32_ps(ni);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(
        _mm256_add_epi32(ni, _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

static inline float hsum8(__m256 v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v),
                          _mm256_extractf128_ps(v, 1));
    a = _mm_hadd_ps(a, a);
    a = _mm_hadd_ps(a, a);
    return _mm_cvtss_f32(a);
}

static inline float hmax8(__m256 v) {
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(v),
                          _mm256_extractf128_ps(v, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}
#endif

#if defined(__AVX512F__)
#define NN_ATTN_AVX512 1
/* e^r by its degree-6 Taylor polynomial, |r| <= ln2 / 2 (relative
 * error below 2e-7), on 16 lanes. */
static inline __m512 exp_poly16(__m512 r) {
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
}

/* exp_neg on 16 lanes (the same steps as exp_neg8). */
static inline __m512 exp_neg16(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    __m512 v = _mm512_fmsub_ps(x, _mm512_set1_ps(1.44269504f),
                               _mm512_set1_ps(0.5f));
    __m512i ni = _mm512_cvttps_epi32(v);
    __m512 n = _mm512_cvtepi32_ps(ni);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512i bits = _mm512_slli_epi32(
        _mm512_add_epi32(ni, _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(exp_poly16(r), _mm512_castsi512_ps(bits));
}

/* 2^x for x <= 0 on 16 lanes: x = n + r, |r| <= 1/2, a degree-5
 * Taylor polynomial of 2^r (relative error below 3e-6, far under the
 * bf16 rounding its results get) scaled by 2^n in one instruction. */
static inline __m512 exp2_neg16(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-126.0f));
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT |
                                           _MM_FROUND_NO_EXC);
    __m512 r = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(1.3333558e-3f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.6181291e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.5504109e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.24022651f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.69314718f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* 2^x for x <= 0 on 16 lanes to f32 accuracy: 2^(x - n) = e^(r) with
 * r = (x - n) ln 2 through exp_poly16, as exp_neg16 (9 instructions
 * instead of 15). Arguments below -126 give
 * subnormals or zero through scalef, so no clamp is needed. */
static inline __m512 exp2_f32_16(__m512 x) {
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT |
                                           _MM_FROUND_NO_EXC);
    __m512 r = _mm512_mul_ps(_mm512_sub_ps(x, n),
                             _mm512_set1_ps(0.693147181f));
    return _mm512_scalef_ps(exp_poly16(r), n);
}
#endif

/* Largest of x[0..n-1], n >= 1. On AVX-512 with four running maxima
 * (one chain waits on vmaxps's latency) and a masked tail. */
static float row_max(const float *x, int n) {
#ifdef NN_ATTN_AVX512
    __m512 lo = _mm512_set1_ps(-INFINITY);
    __m512 m0 = lo, m1 = lo, m2 = lo, m3 = lo;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + i));
        m1 = _mm512_max_ps(m1, _mm512_loadu_ps(x + i + 16));
        m2 = _mm512_max_ps(m2, _mm512_loadu_ps(x + i + 32));
        m3 = _mm512_max_ps(m3, _mm512_loadu_ps(x + i + 48));
    }
    for (; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        m0 = _mm512_max_ps(m0, _mm512_mask_loadu_ps(lo, k, x + i));
    }
    m0 = _mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3));
    return _mm512_reduce_max_ps(m0);
#else
    float m = x[0];
    int i = 0;
#ifdef NN_ATTN_AVX2
    if (n >= 8) {
        __m256 vm = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8)
            vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
        m = hmax8(vm);
    }
#endif
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
#endif
}

/* y = exp((x - m) * scale) over a row (y may alias x); returns the sum. */
static float exp_row(float *y, const float *x, int n, float m, float scale) {
    float s = 0.0f;
    int i = 0;
#ifdef NN_ATTN_AVX512
    {
        __m512 vm = _mm512_set1_ps(m), vs = _mm512_set1_ps(scale);
        __m512 acc = _mm512_setzero_ps();
        for (; i + 16 <= n; i += 16) {
            __m512 e = exp_neg16(
                _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm), vs));
            _mm512_storeu_ps(y + i, e);
            acc = _mm512_add_ps(acc, e);
        }
        s = _mm512_reduce_add_ps(acc);
    }
#endif
#ifdef NN_ATTN_AVX2
    __m256 vm = _mm256_set1_ps(m), vs = _mm256_set1_ps(scale);
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp_neg8(
            _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vs));
        _mm256_storeu_ps(y + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    s += hsum8(acc);
#endif
    for (; i < n; i++) {
        y[i] = exp_neg((x[i] - m) * scale);
        s += y[i];
    }
    return s;
}

void nn_softmax_rows_forward(float *out, const float *inp, int rows,
                             int cols, float scale) {
    /* out, inp (rows, cols); out may alias inp */
    UAD_ASSERT(rows >= 0 && cols > 0 && scale > 0.0f);
    #pragma omp parallel for schedule(static) if (rows > 16)
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (size_t)r * cols;
        float *y = out + (size_t)r * cols;
        float m = row_max(x, cols);
        float inv = 1.0f / exp_row(y, x, cols, m, scale);
        #pragma omp simd
        for (int i = 0; i < cols; i++) y[i] *= inv;
    }
}

/* x rounded to bf16, nearest even (finite x). */
static inline uint32_t bf16_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

/* x * scale rounded to bf16 (nearest even) into y: nn_f32_to_bf16 for
 * short finite runs inside parallel loops, without its thread fork. */
static inline void bf16_row(uint16_t *y, const float *x, int n, float scale) {
    int i0 = 0;
#if defined(__AVX512BF16__) && defined(__AVX512VL__)
    /* the CPU's own round-to-nearest-even conversion, 16 at a time */
    __m512 vs = _mm512_set1_ps(scale);
    for (; i0 + 16 <= n; i0 += 16) {
        __m256bh h = _mm512_cvtneps_pbh(
            _mm512_mul_ps(_mm512_loadu_ps(x + i0), vs));
        _mm256_storeu_si256((__m256i *)(y + i0), (__m256i)h);
    }
#endif
    #pragma omp simd
    for (int i = i0; i < n; i++) y[i] = (uint16_t)bf16_bits(x[i] * scale);
}

/* Softmax of each row of inp (rows, cols) rounded to bf16 into out, in
 * one pass over inp: each row's exponentials go to a per-thread buffer,
 * so the f32 scores are only read (the attention's bf16 path). */
static void softmax_rows_bf16(uint16_t *out, const float *inp, int rows,
                              int cols) {
    #pragma omp parallel if (rows > 16)
    {
        float *tmp = malloc(sizeof(float) * (size_t)cols);
        UAD_ASSERT(tmp != NULL);
        #pragma omp for schedule(static)
        for (int r = 0; r < rows; r++) {
            const float *x = inp + (size_t)r * cols;
            float m = row_max(x, cols);
            float inv = 1.0f / exp_row(tmp, x, cols, m, 1.0f);
            bf16_row(out + (size_t)r * cols, tmp, cols, inv);
        }
        free(tmp);
    }
}

/* ---- multi-head self-attention ---- */

/* Heads per batched call: all of them while their T x T scores stay
 * within 16M floats (64 MB), fewer for long sequences. */
static int mha_group(int T, int heads) {
    size_t tt = (size_t)T * T, g = ((size_t)16 << 20) / tt;
    return g < 1 ? 1 : g > (size_t)heads ? heads : (int)g;
}

size_t nn_mha_scratch_floats(int T, int C, int heads) {
    /* f32 scores of a head group and their bf16 copy; q, k, v and the
     * output per head, f32 */
    size_t gtt = (size_t)mha_group(T, heads) * T * T;
    size_t n = gtt + (gtt + 1) / 2 + (size_t)4 * T * C;
    size_t fused = (size_t)2 * C * (T + 16); /* dense k and v copies */
    return n > fused ? n : fused;
}

/* qkv part `part` (0 q, 1 k, 2 v) of heads h0..h0+g-1 into dense
 * dst(g, T, D), as f32 or rounded to bf16. */
static void heads_gather(void *dst, const float *qkv, int T, int C, int D,
                         int part, int h0, int g, int bf) {
    #pragma omp parallel for schedule(static) if (T > 64)
    for (int t = 0; t < T; t++)
        for (int h = 0; h < g; h++) {
            const float *x = qkv + (size_t)t * 3 * C + (size_t)part * C +
                             (size_t)(h0 + h) * D;
            size_t o = ((size_t)h * T + t) * D;
            if (bf) /* a NaN may round to inf here; the output is NaN anyway */
                bf16_row((uint16_t *)dst + o, x, D, 1.0f);
            else
                memcpy((float *)dst + o, x, sizeof(float) * (size_t)D);
        }
}

static void mha(void *out, int out_bf16, float *scratch, const float *qkv,
                int T, int C, int heads);

void nn_mha_forward(float *out, float *scratch, const float *qkv, int T,
                    int C, int heads) {
    mha(out, 0, scratch, qkv, T, C, heads);
}

void nn_mha_forward_bf16(uint16_t *out, float *scratch, const float *qkv,
                         int T, int C, int heads) {
    mha(out, 1, scratch, qkv, T, C, heads);
}

#ifdef NN_ATTN_AVX512
/* acc[2i + j] += sum over k < K of a[i * lda + k * ak] * b[k * 32 + 16j
 * + 0..15], i < 8, j < 2: an 8 x 32 tile in 16 registers. Per k, two
 * vector loads of b (from a small dense buffer) and eight broadcasts of
 * a feed 16 multiply-adds, which keeps the load ports below the FMA
 * rate. */
static inline void mk8x32(__m512 acc[16], const float *a, long lda, long ak,
                          const float *b, int K) {
    for (int k = 0; k < K; k++) {
        __m512 b0 = _mm512_load_ps(b + (size_t)k * 32);
        __m512 b1 = _mm512_load_ps(b + (size_t)k * 32 + 16);
        const float *ak_ = a + (size_t)k * ak;
        #pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            __m512 x = _mm512_set1_ps(ak_[(size_t)i * lda]);
            acc[2 * i] = _mm512_fmadd_ps(x, b0, acc[2 * i]);
            acc[2 * i + 1] = _mm512_fmadd_ps(x, b1, acc[2 * i + 1]);
        }
    }
}

/* Rows t0 .. t0 + 7 of s^T(Tp, 32) from an 8 x 32 register tile; rows
 * past the last key (the buffer holds Tp, a multiple of 8) are written
 * and never read. All eight, so that the tile's registers are indexed
 * by constants and never go through memory. */
static inline void st_store8(float *st, const __m512 acc[16], int t0) {
    #pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        _mm512_store_ps(st + (size_t)(t0 + i) * 32, acc[2 * i]);
        _mm512_store_ps(st + (size_t)(t0 + i) * 32 + 16, acc[2 * i + 1]);
    }
}

/* Largest of each of 16 columns down rows 0 .. T-1 of c (row stride 32). */
static inline __m512 col_max16(const float *c, int T) {
    __m512 mx = _mm512_load_ps(c);
    for (int t = 1; t < T; t++)
        mx = _mm512_max_ps(mx, _mm512_load_ps(c + (size_t)t * 32));
    return mx;
}

/* Channels d0 .. d0+7 of an o^T(8, 32) register tile, times the column
 * sums' inverses inv, into rows i0 .. i0+R-1 of out(T, C) at column
 * h*D + d0, as f32 or bf16; ot holds 8 x 32 floats of scratch. */
static inline void o_store8(void *out, int out_bf16, const __m512 acc[16],
                            const __m512 inv[2], float *ot, int i0, int R,
                            int C, int h, int D, int d0) {
    #pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        _mm512_store_ps(ot + i * 32, _mm512_mul_ps(acc[2 * i], inv[0]));
        _mm512_store_ps(ot + i * 32 + 16,
                        _mm512_mul_ps(acc[2 * i + 1], inv[1]));
    }
    for (int r = 0; r < R; r++) {
        size_t at = (size_t)(i0 + r) * C + (size_t)h * D + d0;
        float row[8];
        for (int i = 0; i < 8; i++) row[i] = ot[i * 32 + r];
        if (out_bf16)
            bf16_row((uint16_t *)out + at, row, 8, 1.0f);
        else
            memcpy((float *)out + at, row, sizeof row);
    }
}

/* The two tile products of the fused f32 kernel, kept out of line: in
 * the kernel's body GCC 12 spilled the b rows of mk8x32 to the stack
 * (the exp constants of the softmax compete for registers), which made
 * the loop wait on loads (about 55% of the FMA peak on Zen 4). */
static __attribute__((noinline)) void st_tile8(float *st, const float *k,
                                               int D, const float *qt,
                                               int t0) {
    __m512 acc[16];
    for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
    mk8x32(acc, k, D, 1, qt, D);
    st_store8(st, acc, t0);
}

static __attribute__((noinline)) void o_tile8(void *out, int out_bf16,
                                              const float *v,
                                              const float *st, int T,
                                              const __m512 inv[2], float *ot,
                                              int i0, int R, int C, int h,
                                              int D, int d0) {
    __m512 acc[16];
    for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
    mk8x32(acc, v, 1, D, st, T);
    o_store8(out, out_bf16, acc, inv, ot, i0, R, C, h, D, d0);
}

/* Fused attention in f32 (flash-attention order): for each head and
 * block of 32 queries, the transposed scores s^T(T, 32) = k q^T stay in
 * a per-thread buffer in cache, the softmax runs down its columns 16
 * queries per vector, and o^T(D, 32) = v^T p^T is divided by the column
 * sums at the end. No T x T matrix goes through memory (the two K = 64
 * matmuls of the unfused path ran at about 40% of the peak for that
 * reason). Needs D % 8 == 0. */
static void mha_fused_f32(void *out, int out_bf16, float *scratch,
                          const float *qkv, int T, int C, int H) {
    enum { QB = 32 };
    int D = C / H, nb = (T + QB - 1) / QB, Tp = (T + 7) / 8 * 8;
    long ld = 3L * C;
    /* dense per-head copies: k (H, Tp, D) with zero rows past T, v (H, T,
     * D); read in place from qkv, every key would sit on its own page */
    float *kd = scratch, *vd = kd + (size_t)H * Tp * D;
    #pragma omp parallel for schedule(static) if (T > 64)
    for (int t = 0; t < Tp; t++)
        for (int h = 0; h < H; h++) {
            float *kr = kd + ((size_t)h * Tp + t) * D;
            if (t < T) {
                const float *src = qkv + (size_t)t * ld + C + (size_t)h * D;
                memcpy(kr, src, sizeof(float) * (size_t)D);
                memcpy(vd + ((size_t)h * T + t) * D, src + C,
                       sizeof(float) * (size_t)D);
            } else {
                memset(kr, 0, sizeof(float) * (size_t)D);
            }
        }
    /* log2(e) folded in: the softmax takes powers of 2 (exp2_f32_16) */
    float scale = 1.44269504f / sqrtf((float)D);
    #pragma omp parallel if (T > 16)
    {
        float *st = aligned_alloc(64, sizeof(float) * QB * (size_t)Tp);
        float *qt = aligned_alloc(64, sizeof(float) * QB * (size_t)D);
        float *ot = aligned_alloc(64, sizeof(float) * 8 * QB);
        UAD_ASSERT(st && qt && ot);
        #pragma omp for schedule(static)
        for (int job = 0; job < H * nb; job++) {
            int h = job / nb, i0 = (job % nb) * QB;
            int R = T - i0 < QB ? T - i0 : QB;
            const float *q = qkv + (size_t)h * D;
            const float *k = kd + (size_t)h * Tp * D;
            const float *v = vd + (size_t)h * T * D;
            /* q^T of the block, (D, 32), scaled by log2(e) / sqrt(D),
             * zero past the last query */
            for (int d = 0; d < D; d++)
                for (int r = 0; r < QB; r++)
                    qt[d * QB + r] =
                        r < R ? q[(size_t)(i0 + r) * ld + d] * scale : 0.0f;
            /* s^T = k q^T, 8 keys at a time (k is zero-padded to Tp) */
            for (int t0 = 0; t0 < T; t0 += 8)
                st_tile8(st, k + (size_t)t0 * D, D, qt, t0);
            /* softmax down the columns: exp(s - max), sums kept */
            __m512 inv[2];
            for (int j = 0; j < 2; j++) {
                float *c = st + 16 * j;
                __m512 mx = col_max16(c, T);
                __m512 sum = _mm512_setzero_ps();
                for (int t = 0; t < T; t++) {
                    __m512 e = exp2_f32_16(_mm512_sub_ps(
                        _mm512_load_ps(c + (size_t)t * QB), mx));
                    _mm512_store_ps(c + (size_t)t * QB, e);
                    sum = _mm512_add_ps(sum, e);
                }
                inv[j] = _mm512_div_ps(_mm512_set1_ps(1.0f), sum);
            }
            /* o^T = v^T p^T, 8 channels at a time */
            for (int d0 = 0; d0 < D; d0 += 8)
                o_tile8(out, out_bf16, v + d0, st, T, inv, ot, i0, R, C, h,
                        D, d0);
        }
        free(st);
        free(qt);
        free(ot);
    }
}
#endif

#if defined(NN_ATTN_AVX512) && defined(__AVX512BF16__) && \
    defined(__AVX512BW__)
#define NN_ATTN_DPBF16 1
/* mk8x32 on bf16 pairs: acc[2i + j] += sum over k < K of the dot of the
 * pair a[i * lda + k * ak] with the pairs b[k * 32 + 16j + 0..15] (each
 * uint32_t two bf16, lower first), by vdpbf16ps. */
static inline void mk8x32_bf(__m512 acc[16], const uint32_t *a, long lda,
                             long ak, const uint32_t *b, int K) {
    for (int k = 0; k < K; k++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(b + (size_t)k * 32);
        __m512bh b1 = (__m512bh)_mm512_load_si512(b + (size_t)k * 32 + 16);
        const uint32_t *ak_ = a + (size_t)k * ak;
        #pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)ak_[(size_t)i * lda]);
            acc[2 * i] = _mm512_dpbf16_ps(acc[2 * i], x, b0);
            acc[2 * i + 1] = _mm512_dpbf16_ps(acc[2 * i + 1], x, b1);
        }
    }
}

/* The two tile products of the vdpbf16ps kernel, out of line for the
 * same reason as st_tile8 and o_tile8: inside the kernel's body the
 * accumulators went through the stack. K2 pairs per row of a. */
static __attribute__((noinline)) void st_tile8_bf(float *st,
                                                  const uint32_t *k, int K2,
                                                  const uint32_t *qt,
                                                  int t0) {
    __m512 acc[16];
    for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
    mk8x32_bf(acc, k, K2, 1, qt, K2);
    st_store8(st, acc, t0);
}

static __attribute__((noinline)) void o_tile8_bf(
    void *out, int out_bf16, const uint32_t *v, const uint32_t *pt, int T2,
    const __m512 inv[2], float *ot, int i0, int R, int C, int h, int D,
    int d0) {
    __m512 acc[16];
    for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
    mk8x32_bf(acc, v, T2, 1, pt, T2);
    o_store8(out, out_bf16, acc, inv, ot, i0, R, C, h, D, d0);
}

/* The fused f32 kernel's steps in bf16 for AVX-512 CPUs without AMX:
 * q, k, v and the probabilities rounded to bf16 and multiplied in pairs
 * (vdpbf16ps, f32 sums). s^T(T, 32) = k q^T over channel pairs, the
 * softmax down its columns writes the probabilities of key pairs
 * interleaved per query, o^T(D, 32) = v^T p^T over key pairs. Needs
 * D % 8 == 0. */
static void mha_fused_dpbf16(void *out, int out_bf16, float *scratch,
                             const float *qkv, int T, int C, int H) {
    enum { QB = 32 };
    int D = C / H, nb = (T + QB - 1) / QB, Tp = (T + 7) / 8 * 8;
    int T2 = (T + 1) / 2; /* key pairs */
    long ld = 3L * C;
    /* kd: per head (Tp, D/2) channel pairs of each key, zero rows past T;
     * vd: per head (D, T2) key pairs of each channel, zero past T */
    uint32_t *kd = (uint32_t *)scratch;
    uint32_t *vd = kd + (size_t)H * Tp * (D / 2);
    /* interleaves two 16-lane halves: lane 2r from the lower, 2r + 1
     * from the upper */
    __m512i mix = _mm512_set_epi16(
        31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
        22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    /* k: 32 channels at a time are 16 channel pairs in vcvtne2ps2bf16's
     * own lane order; the rest one pair at a time */
    #pragma omp parallel for schedule(static) if (T > 64)
    for (int t = 0; t < Tp; t++)
        for (int h = 0; h < H; h++) {
            uint32_t *kr = kd + ((size_t)h * Tp + t) * (D / 2);
            if (t >= T) {
                memset(kr, 0, sizeof(uint32_t) * (size_t)(D / 2));
                continue;
            }
            const float *src = qkv + (size_t)t * ld + C + (size_t)h * D;
            int d = 0;
            for (; 2 * d + 32 <= D; d += 16) {
                __m512 lo = _mm512_loadu_ps(src + 2 * d);
                __m512 hi = _mm512_loadu_ps(src + 2 * d + 16);
                _mm512_storeu_si512(kr + d,
                                    (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
            }
            for (; d < D / 2; d++)
                kr[d] = bf16_bits(src[2 * d]) | bf16_bits(src[2 * d + 1]) << 16;
        }
    /* v, transposed to key pairs per channel: per 16 channels and 16 key
     * pairs, each pair's two rows converted and interleaved into a tile,
     * then written out channel by channel; widths not a multiple of 16
     * one value at a time */
    if (D % 16 == 0) {
        int nd = D / 16, nt = (T2 + 15) / 16;
        #pragma omp parallel for schedule(static) if (T > 64)
        for (int job = 0; job < H * nd * nt; job++) {
            int h = job / (nd * nt), d0 = job / nt % nd * 16;
            int p0 = job % nt * 16, n = T2 - p0 < 16 ? T2 - p0 : 16;
            const float *src = qkv + 2 * C + (size_t)h * D + d0;
            uint32_t tile[16][16];
            for (int i = 0; i < n; i++) {
                int t = 2 * (p0 + i);
                const float *row = src + (size_t)t * ld;
                __m512 lo = _mm512_loadu_ps(row);
                __m512 hi = t + 1 < T ? _mm512_loadu_ps(row + ld)
                                      : _mm512_setzero_ps();
                __m512i pairs = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
                _mm512_storeu_si512(tile[i],
                                    _mm512_permutexvar_epi16(mix, pairs));
            }
            for (int c = 0; c < 16; c++) {
                uint32_t *vr = vd + ((size_t)h * D + d0 + c) * T2 + p0;
                for (int i = 0; i < n; i++) vr[i] = tile[i][c];
            }
        }
    } else {
        #pragma omp parallel for schedule(static) if (T > 64)
        for (int j = 0; j < H * D; j++) {
            int h = j / D, d = j % D;
            uint32_t *vr = vd + (size_t)j * T2;
            const float *src = qkv + 2 * C + (size_t)h * D + d;
            for (int t2 = 0; t2 < T2; t2++) {
                uint32_t lo = bf16_bits(src[(size_t)(2 * t2) * ld]);
                uint32_t hi = 2 * t2 + 1 < T
                                  ? bf16_bits(src[(size_t)(2 * t2 + 1) * ld])
                                  : 0;
                vr[t2] = lo | hi << 16;
            }
        }
    }
    /* log2(e) folded in: the softmax takes powers of 2 (exp2_neg16,
     * cheaper than exp and exact enough for probabilities rounded to
     * bf16) */
    float scale = 1.44269504f / sqrtf((float)D);
    #pragma omp parallel if (T > 16)
    {
        float *st = aligned_alloc(64, sizeof(float) * QB * (size_t)Tp);
        uint32_t *pt = aligned_alloc(64, sizeof(uint32_t) * QB * (size_t)T2);
        uint32_t *qt = aligned_alloc(64, sizeof(uint32_t) * QB * (size_t)D / 2);
        float *ot = aligned_alloc(64, sizeof(float) * 8 * QB);
        UAD_ASSERT(st && pt && qt && ot);
        #pragma omp for schedule(static)
        for (int job = 0; job < H * nb; job++) {
            int h = job / nb, i0 = (job % nb) * QB;
            int R = T - i0 < QB ? T - i0 : QB;
            const float *q = qkv + (size_t)h * D;
            /* q^T of the block as channel pairs, (D/2, 32), scaled by
             * log2(e) / sqrt(D), zero past the last query */
            for (int r = 0; r < QB; r++) {
                const float *qr = r < R ? q + (size_t)(i0 + r) * ld : NULL;
                for (int d = 0; d < D / 2; d++)
                    qt[d * QB + r] = qr ? bf16_bits(qr[2 * d] * scale) |
                                              bf16_bits(qr[2 * d + 1] * scale)
                                                  << 16
                                        : 0;
            }
            /* s^T = k q^T, 8 keys at a time */
            for (int t0 = 0; t0 < T; t0 += 8)
                st_tile8_bf(st, kd + ((size_t)h * Tp + t0) * (D / 2), D / 2,
                            qt, t0);
            /* softmax down the columns; each key pair's probabilities
             * go to pt as bf16 pairs per query */
            __m512 inv[2];
            for (int j = 0; j < 2; j++) {
                float *c = st + 16 * j;
                __m512 mx = col_max16(c, T);
                __m512 sum = _mm512_setzero_ps();
                for (int t2 = 0; t2 < T2; t2++) {
                    __m512 e0 = exp2_neg16(_mm512_sub_ps(
                        _mm512_load_ps(c + (size_t)(2 * t2) * QB), mx));
                    __m512 e1 = 2 * t2 + 1 < T
                                    ? exp2_neg16(_mm512_sub_ps(
                                          _mm512_load_ps(
                                              c + (size_t)(2 * t2 + 1) * QB),
                                          mx))
                                    : _mm512_setzero_ps();
                    sum = _mm512_add_ps(sum, _mm512_add_ps(e0, e1));
                    __m512i pair = _mm512_permutexvar_epi16(
                        mix, (__m512i)_mm512_cvtne2ps_pbh(e1, e0));
                    _mm512_store_si512(pt + (size_t)t2 * QB + 16 * j, pair);
                }
                inv[j] = _mm512_div_ps(_mm512_set1_ps(1.0f), sum);
            }
            /* o^T = v^T p^T, 8 channels at a time */
            for (int d0 = 0; d0 < D; d0 += 8)
                o_tile8_bf(out, out_bf16, vd + ((size_t)h * D + d0) * T2,
                           pt, T2, inv, ot, i0, R, C, h, D, d0);
        }
        free(st);
        free(pt);
        free(qt);
        free(ot);
    }
}
#endif

#if defined(NN_ATTN_AVX512) && defined(__AMX_TILE__) && \
    defined(__AMX_BF16__) && defined(__AVX512BF16__)
#define NN_ATTN_AMX 1
#include <sys/syscall.h>
#include <unistd.h>

/* AMX tiles are usable once the kernel grants this process the tile
 * data state (Linux 5.16 and later); asked once, remembered. */
static int amx_usable(void) {
    static int ok = -1;
    if (ok < 0) {
        enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
        ok = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM,
                     XFEATURE_XTILEDATA) == 0;
    }
    return ok;
}

/* Palette 1 with all eight tiles at 16 rows of 64 bytes: a tile of
 * f32 is 16 x 16, a bf16 A tile 16 x 32, a bf16 B tile 16 pairs of
 * rows x 16 columns (the pairs interleaved, "VNNI" order). */
static void amx_config(void) {
    struct {
        uint8_t palette, start_row, reserved[14];
        uint16_t colsb[16];
        uint8_t rows[16];
    } cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.colsb[i] = 64;
        cfg.rows[i] = 16;
    }
    _tile_loadconfig(&cfg);
}

/* c(32, 32) = sum over k < nk of a_k(32, 32) b_k(32, 32), in f32 from
 * bf16: a_k's two 16-row halves at a0 and a0 + 16 rows (row stride lda
 * bytes, step astep bytes per k), b_k's two 16-column halves as packed
 * B tiles at b0 and b0 + bhalf bytes (step bstep bytes per k); c's row
 * stride ldc bytes. Tiles 0-3 accumulate, 4-5 hold a, 6-7 b. */
static inline void amx_32x32(float *c, long ldc, const uint8_t *a0,
                             long lda, long astep, const uint8_t *b0,
                             long bhalf, long bstep, int nk) {
    const uint8_t *a1 = a0 + 16 * lda;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int k = 0; k < nk; k++) {
        _tile_loadd(4, a0 + k * astep, lda);
        _tile_loadd(6, b0 + k * bstep, 64);
        _tile_loadd(5, a1 + k * astep, lda);
        _tile_loadd(7, b0 + bhalf + k * bstep, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    uint8_t *cb = (uint8_t *)c;
    _tile_stored(0, cb, ldc);
    _tile_stored(1, cb + 64, ldc);
    _tile_stored(2, cb + 16 * ldc, ldc);
    _tile_stored(3, cb + 16 * ldc + 64, ldc);
}

/* Fused attention in bf16 on AMX: per head and block of 32 queries,
 * s(32, Tk) = (q log2(e) / sqrt(D)) k^T into a per-thread f32 buffer in
 * cache, the row softmax's exponentials (as powers of 2) rounded to
 * bf16 (zero past the last key), o(32, D) = p v, divided by the row
 * sums on the way out. k and v are first rounded and packed per head
 * into B tiles, zero-padded to Tk, a multiple of 32 keys. Needs
 * D % 32 == 0 and D <= 256. On an AMX CPU at 512 x 512 (ViT-B/16, 1025
 * tokens, 2 threads) this took attention from 187 ms of a bf16 forward
 * (oneDNN's matmuls and the T x T scores in memory) to about 55. */
static void mha_amx_bf16(void *out, int out_bf16, float *scratch,
                         const float *qkv, int T, int C, int H) {
    enum { QB = 32 };
    int D = C / H, nb = (T + QB - 1) / QB, Tk = (T + 31) / 32 * 32;
    int nd = D / 32; /* 32-wide chunks of a head */
    long ld = 3L * C;
    /* kp: per head, per 16 keys, per 32 channels a B tile holding
     * k^T: row i, column n = channels 2i, 2i+1 of key n. vp: per head,
     * per 32 keys, per 16 channels a B tile: row i, column n = channel n
     * of keys 2i, 2i+1. Both H * Tk * D bf16. */
    uint16_t *kp = (uint16_t *)scratch, *vp = kp + (size_t)H * Tk * D;
    #pragma omp parallel for schedule(static) if (T > 64)
    for (int job = 0; job < H * (Tk / 32); job++) {
        int h = job / (Tk / 32), t0 = (job % (Tk / 32)) * 32;
        uint16_t r[32 * 256]; /* 32 keys' rows rounded; D <= 256 */
        for (int i = 0; i < 32; i++) {
            if (t0 + i < T) {
                const float *src = qkv + (size_t)(t0 + i) * ld + C +
                                   (size_t)h * D;
                bf16_row(r + (size_t)i * D, src, D, 1.0f);
            } else {
                memset(r + (size_t)i * D, 0, sizeof(uint16_t) * (size_t)D);
            }
        }
        for (int half = 0; half < 2; half++) { /* 16 keys each */
            uint32_t *dst = (uint32_t *)(kp + (size_t)h * Tk * D +
                                         (size_t)(t0 + 16 * half) * D);
            for (int c = 0; c < nd; c++)
                for (int i = 0; i < 16; i++)
                    for (int n = 0; n < 16; n++) {
                        uint32_t pair;
                        memcpy(&pair, r + (size_t)(16 * half + n) * D +
                                          32 * c + 2 * i, 4);
                        dst[(c * 16 + i) * 16 + n] = pair;
                    }
        }
        for (int i = 0; i < 32; i++) {
            if (t0 + i < T) {
                const float *src = qkv + (size_t)(t0 + i) * ld + 2 * C +
                                   (size_t)h * D;
                bf16_row(r + (size_t)i * D, src, D, 1.0f);
            } else {
                memset(r + (size_t)i * D, 0, sizeof(uint16_t) * (size_t)D);
            }
        }
        uint16_t *dst = vp + (size_t)h * Tk * D + (size_t)t0 * D;
        for (int j = 0; j < D / 16; j++)
            for (int i = 0; i < 16; i++)
                for (int n = 0; n < 16; n++) {
                    dst[((j * 16 + i) * 16 + n) * 2] =
                        r[(size_t)(2 * i) * D + 16 * j + n];
                    dst[((j * 16 + i) * 16 + n) * 2 + 1] =
                        r[(size_t)(2 * i + 1) * D + 16 * j + n];
                }
    }
    float scale = 1.44269504f / sqrtf((float)D); /* log2(e) / sqrt(D) */
    #pragma omp parallel if (T > 16)
    {
        float *st = aligned_alloc(64, sizeof(float) * QB * (size_t)Tk);
        uint16_t *pt = aligned_alloc(64, sizeof(uint16_t) * QB * (size_t)Tk);
        uint16_t *qt = aligned_alloc(64, sizeof(uint16_t) * QB * (size_t)D);
        float *ot = aligned_alloc(64, sizeof(float) * QB * (size_t)D);
        UAD_ASSERT(st && pt && qt && ot);
        amx_config();
        #pragma omp for schedule(static)
        for (int job = 0; job < H * nb; job++) {
            int h = job / nb, i0 = (job % nb) * QB;
            int R = T - i0 < QB ? T - i0 : QB;
            for (int r = 0; r < QB; r++) {
                if (r < R)
                    bf16_row(qt + (size_t)r * D,
                             qkv + (size_t)(i0 + r) * ld + (size_t)h * D, D,
                             scale);
                else
                    memset(qt + (size_t)r * D, 0, sizeof(uint16_t) * D);
            }
            /* s = q k^T, 32 keys at a time: K = D in 32-wide steps */
            const uint8_t *kh = (const uint8_t *)(kp + (size_t)h * Tk * D);
            for (int t0 = 0; t0 < Tk; t0 += 32)
                amx_32x32(st + t0, 4L * Tk, (const uint8_t *)qt, 2L * D, 64,
                          kh + (size_t)t0 * D * 2, 32L * D, 1024, nd);
            /* softmax rows: 2^(s - max) to bf16, zero past T (s is in
             * base-2 units: q carries log2(e)) */
            float inv[QB];
            for (int r = 0; r < QB; r++) {
                uint16_t *p = pt + (size_t)r * Tk;
                if (r >= R) {
                    memset(p, 0, sizeof(uint16_t) * (size_t)Tk);
                    continue;
                }
                const float *x = st + (size_t)r * Tk;
                float m = row_max(x, T);
                __m512 vm = _mm512_set1_ps(m), acc = _mm512_setzero_ps();
                for (int t = 0; t < Tk; t += 16) {
                    __mmask16 live = t + 16 <= T ? 0xffff
                                     : t < T    ? (__mmask16)((1u << (T - t)) - 1)
                                                : 0;
                    __m512 e = _mm512_maskz_mov_ps(
                        live, exp2_neg16(_mm512_sub_ps(_mm512_load_ps(x + t), vm)));
                    acc = _mm512_add_ps(acc, e);
                    _mm256_store_si256((__m256i *)(p + t),
                                       (__m256i)_mm512_cvtneps_pbh(e));
                }
                inv[r] = 1.0f / _mm512_reduce_add_ps(acc);
            }
            /* o = p v, 32 channels at a time: K = Tk in 32-key steps */
            const uint8_t *vh = (const uint8_t *)(vp + (size_t)h * Tk * D);
            for (int c = 0; c < nd; c++)
                amx_32x32(ot + 32 * c, 4L * D, (const uint8_t *)pt, 2L * Tk,
                          64, vh + (size_t)c * 2048, 1024, 64L * D, Tk / 32);
            for (int r = 0; r < R; r++) {
                size_t at = (size_t)(i0 + r) * C + (size_t)h * D;
                float *o = ot + (size_t)r * D;
                if (out_bf16) {
                    bf16_row((uint16_t *)out + at, o, D, inv[r]);
                } else {
                    for (int d = 0; d < D; d++)
                        ((float *)out)[at + d] = o[d] * inv[r];
                }
            }
        }
        _tile_release();
        free(st);
        free(pt);
        free(qt);
        free(ot);
    }
}
#endif

static nn_attn_kernel g_attn = NN_ATTN_AUTO;

int nn_set_attn_kernel(nn_attn_kernel k) {
    switch (k) {
    case NN_ATTN_AUTO:
    case NN_ATTN_UNFUSED:
        break;
#ifdef NN_ATTN_AVX512
    case NN_ATTN_FUSED_F32:
        break;
#endif
#ifdef NN_ATTN_DPBF16
    case NN_ATTN_FUSED_DPBF16:
        break;
#endif
#ifdef NN_ATTN_AMX
    case NN_ATTN_FUSED_AMX:
        if (!amx_usable()) return -1;
        break;
#endif
    default:
        return -1;
    }
    g_attn = k;
    return 0;
}

#ifdef NN_ATTN_DPBF16
/* Whether this is an AMD CPU (asked once). */
static int cpu_amd(void) {
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_is("amd") != 0;
    }
    return known;
}
#endif

/* The kernel for this call: the forced one where its rule holds, else
 * the automatic choice. Head widths in multiples of 8 on AVX-512 take a
 * fused kernel: in f32 precision the f32 one; in bf16 the AMX one on
 * AMX CPUs when the width is a multiple of 32, else the vdpbf16ps one
 * on AMD CPUs and the f32 one elsewhere. With AMX held back
 * (bench/vit_attn.sh: the AMX kernel off, oneDNN limited to AVX-512
 * bf16), a ViT-B/16 bf16 forward at 512 took 1.24 s on the unfused
 * path, 1.16 s with the vdpbf16ps kernel and 1.11 s with the f32 one:
 * that Intel CPU multiplies bf16 pairs at only the f32 rate, while AMD's
 * Zen 4 does it at twice that (bench/results/nn.txt), hence the split
 * by vendor; on the AMD machine the vdpbf16ps kernel's forward took
 * 0.556 s against 0.650 s with the f32 one (bench/results/vit_attn.txt).
 * Every other case takes the unfused path. */
static nn_attn_kernel attn_pick(int D) {
    int bf = nn_get_precision() == NN_BF16;
    int f32_ok = D % 8 == 0, dp_ok = bf && D % 8 == 0;
    int amx_ok = bf && D % 32 == 0 && D <= 256;
    switch (g_attn) {
    case NN_ATTN_UNFUSED: return NN_ATTN_UNFUSED;
    case NN_ATTN_FUSED_F32: if (f32_ok) return g_attn; break;
    case NN_ATTN_FUSED_DPBF16: if (dp_ok) return g_attn; break;
    case NN_ATTN_FUSED_AMX: if (amx_ok) return g_attn; break;
    default: break;
    }
#ifdef NN_ATTN_AMX
    if (amx_ok && amx_usable()) return NN_ATTN_FUSED_AMX;
#endif
#ifdef NN_ATTN_DPBF16
    if (dp_ok && cpu_amd()) return NN_ATTN_FUSED_DPBF16;
#endif
#ifdef NN_ATTN_AVX512
    if (f32_ok) return NN_ATTN_FUSED_F32;
#endif
    return NN_ATTN_UNFUSED;
}

static void mha(void *out, int out_bf16, float *scratch, const float *qkv,
                int T, int C, int heads) {
    switch (attn_pick(C / heads)) {
#ifdef NN_ATTN_AVX512
    case NN_ATTN_FUSED_F32:
        mha_fused_f32(out, out_bf16, scratch, qkv, T, C, heads);
        return;
#endif
#ifdef NN_ATTN_DPBF16
    case NN_ATTN_FUSED_DPBF16:
        mha_fused_dpbf16(out, out_bf16, scratch, qkv, T, C, heads);
        return;
#endif
#ifdef NN_ATTN_AMX
    case NN_ATTN_FUSED_AMX:
        mha_amx_bf16(out, out_bf16, scratch, qkv, T, C, heads);
        return;
#endif
    default:
        break;
    }
    /* out(T, C); qkv(T, 3C) laid out [q | k | v], each (T, heads * D)
     * with head h in columns h*D .. h*D+D-1 (PyTorch's view(T, H, D));
     * scratch: nn_mha_scratch_floats(T, C, heads) floats. A group of g
     * heads is one batched matmul on dense (g, T, D) copies of q, k, v:
     * s(g, T, T) = q k^T / sqrt(D), row softmax, o = s v, copied into
     * out's head columns. In bf16 precision the copies and the
     * probabilities are rounded to bf16 for the matmuls. */
    UAD_ASSERT(heads > 0 && C % heads == 0 && T > 0);
    int D = C / heads, G = mha_group(T, heads);
    int bf = nn_get_precision() == NN_BF16;
    size_t tt = (size_t)T * T, td = (size_t)T * D;
    float *s = scratch;
    uint16_t *sh = (uint16_t *)(s + (size_t)G * tt);
    float *q = s + (size_t)G * tt + ((size_t)G * tt + 1) / 2;
    float *k = q + (size_t)G * td, *v = k + (size_t)G * td;
    float *o = v + (size_t)G * td;
    long sq[3] = {(long)td, D, 1}, sk[3] = {(long)td, 1, D};
    long ss[3] = {(long)tt, T, 1};
    float scale = 1.0f / sqrtf((float)D);
    for (int h0 = 0; h0 < heads; h0 += G) {
        int g = heads - h0 < G ? heads - h0 : G;
        heads_gather(q, qkv, T, C, D, 0, h0, g, bf);
        heads_gather(k, qkv, T, C, D, 1, h0, g, bf);
        heads_gather(v, qkv, T, C, D, 2, h0, g, bf);
        /* k read as (g, D, T): its transpose, through the strides */
        nn_bmm_strided(s, q, k, g, T, D, T, sq, sk, ss, scale);
        const void *p = s;
        if (bf) {
            softmax_rows_bf16(sh, s, g * T, T);
            p = sh;
        } else {
            nn_softmax_rows_forward(s, s, g * T, T, 1.0f);
        }
        nn_bmm_strided(o, p, v, g, T, T, D, ss, sq, sq, 1.0f);
        #pragma omp parallel for schedule(static) if (T > 64)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < g; h++) {
                size_t at = (size_t)t * C + (size_t)(h0 + h) * D;
                const float *src = o + ((size_t)h * T + t) * D;
                if (out_bf16)
                    bf16_row((uint16_t *)out + at, src, D, 1.0f);
                else
                    memcpy((float *)out + at, src, sizeof(float) * D);
            }
    }
}

/* ---- rotary position embedding ---- */

void nn_rope_forward(float *qkv, const float *cos_t, const float *sin_t,
                     int T, int C, int heads, int prefix) {
    /* qkv(T, 3C) = [q | k | v]; cos_t, sin_t (T - prefix, D). For the
     * patch tokens t >= prefix, in q and k of every head, each pair
     * (d, d + D/2) turns by the angle of column d: x * cos +
     * rotate_half(x) * sin, rotate_half(x) = [-x2, x1] (HF
     * apply_rotary_pos_emb). The prefix tokens are left alone. */
    int D = C / heads, half = D / 2;
    #pragma omp parallel for schedule(static) if (T > 64)
    for (int t = prefix; t < T; t++) {
        const float *c = cos_t + (size_t)(t - prefix) * D;
        const float *s = sin_t + (size_t)(t - prefix) * D;
        for (int part = 0; part < 2; part++)
            for (int h = 0; h < heads; h++) {
                float *x = qkv + (size_t)t * 3 * C + (size_t)part * C +
                           (size_t)h * D;
                for (int d = 0; d < half; d++) {
                    float a = x[d], b = x[d + half];
                    x[d] = a * c[d] - b * s[d];
                    x[d + half] = b * c[d + half] + a * s[d + half];
                }
            }
    }
}

/* ---- patch extraction ---- */

void nn_patchify(float *out, const float *img, int C, int H, int W, int p) {
    /* out(gh * gw, C * p * p) with gh = H / p, gw = W / p (floor: a
     * stride-p convolution drops the remainder rows and columns);
     * img(C, H, W). Row t = y * gw + x holds the patch at (y, x) in the
     * weight order (c, i, j) of a PyTorch conv weight (OC, C, p, p). */
    int gh = H / p, gw = W / p, K = C * p * p;
    #pragma omp parallel for schedule(static) if (gh * gw > 64)
    for (int t = 0; t < gh * gw; t++) {
        int y = t / gw, x = t % gw;
        float *o = out + (size_t)t * K;
        for (int c = 0; c < C; c++)
            for (int i = 0; i < p; i++)
                memcpy(o + (size_t)(c * p + i) * p,
                       img + ((size_t)c * H + (size_t)y * p + i) * W +
                           (size_t)x * p,
                       (size_t)p * sizeof(float));
    }
}

/* ---- bicubic resize (PyTorch F.interpolate, align_corners=False) ---- */

/* Keys' cubic convolution kernel with parameter a: PyTorch's bicubic
 * uses a = -0.75, its antialiased bicubic (like PIL) a = -0.5. */
static double cubic(double x, double a) {
    x = fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

/* Plain bicubic: source x = (i + 0.5) * in / out - 0.5, four taps at
 * floor(x) - 1 .. floor(x) + 2 with indices clamped to the border. */
static void weights_plain(double *m, int in, int out) {
    double scale = (double)in / out;
    for (int i = 0; i < out; i++) {
        double x = (i + 0.5) * scale - 0.5;
        double f = floor(x), t = x - f;
        for (int j = -1; j <= 2; j++) {
            int idx = (int)f + j;
            idx = idx < 0 ? 0 : idx >= in ? in - 1 : idx;
            m[(size_t)i * in + idx] += cubic(t - j, -0.75);
        }
    }
}

/* Antialiased bicubic (PyTorch's antialias=True, after PIL): when
 * shrinking, the kernel is stretched by the scale; taps cover
 * [center - support, center + support) cut to the image, and the weights
 * are renormalised to sum to one. */
static void weights_aa(double *m, int in, int out) {
    double scale = (double)in / out;
    double support = scale >= 1.0 ? 2.0 * scale : 2.0;
    double inv = scale >= 1.0 ? 1.0 / scale : 1.0;
    for (int i = 0; i < out; i++) {
        double center = scale * (i + 0.5);
        long lo = (long)(center - support + 0.5);
        long hi = (long)(center + support + 0.5);
        lo = lo < 0 ? 0 : lo;
        hi = hi > in ? in : hi;
        double total = 0.0;
        for (long j = lo; j < hi; j++) {
            double w = cubic((j - center + 0.5) * inv, -0.5);
            m[(size_t)i * in + j] = w;
            total += w;
        }
        if (total != 0.0)
            for (long j = lo; j < hi; j++) m[(size_t)i * in + j] /= total;
    }
}

void nn_bicubic_weights(double *m, int in, int out, int antialias) {
    /* m(out, in), zeroed by the caller: row i holds the weights of
     * output i over the input */
    UAD_ASSERT(in > 0 && out > 0);
    if (antialias) weights_aa(m, in, out);
    else weights_plain(m, in, out);
}

/* [lo[i], hi[i]): the non-zero span of row i of m(out, in). */
static void weight_spans(int *lo, int *hi, const double *m, int in, int out) {
    for (int i = 0; i < out; i++) {
        const double *r = m + (size_t)i * in;
        int a = 0, b = in;
        while (a < in && r[a] == 0.0) a++;
        while (b > a && r[b - 1] == 0.0) b--;
        lo[i] = a;
        hi[i] = b;
    }
}

int nn_resize_bicubic_forward(float *out, const float *inp, int NC, int H,
                              int W, int OH, int OW, int antialias) {
    /* out(NC, OH, OW), inp(NC, H, W); separable: columns then rows, in
     * double, each output over the few taps of its weight row. Returns
     * -1 when its work buffers cannot be had. */
    size_t n = (size_t)OH * H + (size_t)OW * W + (size_t)H * OW;
    double *wy = calloc(n, sizeof(double));
    int *span = malloc(sizeof(int) * 2 * ((size_t)OH + OW));
    if (!wy || !span) {
        free(wy);
        free(span);
        return -1;
    }
    double *wx = wy + (size_t)OH * H, *tmp = wx + (size_t)OW * W;
    int *ylo = span, *yhi = ylo + OH, *xlo = yhi + OH, *xhi = xlo + OW;
    nn_bicubic_weights(wy, H, OH, antialias);
    nn_bicubic_weights(wx, W, OW, antialias);
    weight_spans(ylo, yhi, wy, H, OH);
    weight_spans(xlo, xhi, wx, W, OW);
    for (int c = 0; c < NC; c++) {
        const float *x = inp + (size_t)c * H * W;
        /* tmp(H, OW) = x(H, W) @ wx(OW, W)^T */
        for (int y = 0; y < H; y++)
            for (int o = 0; o < OW; o++) {
                double s = 0.0;
                for (int j = xlo[o]; j < xhi[o]; j++)
                    s += x[(size_t)y * W + j] * wx[(size_t)o * W + j];
                tmp[(size_t)y * OW + o] = s;
            }
        /* out(OH, OW) = wy(OH, H) @ tmp(H, OW) */
        float *yo = out + (size_t)c * OH * OW;
        for (int o = 0; o < OH; o++)
            for (int xo = 0; xo < OW; xo++) {
                double s = 0.0;
                for (int y = ylo[o]; y < yhi[o]; y++)
                    s += wy[(size_t)o * H + y] * tmp[(size_t)y * OW + xo];
                yo[(size_t)o * OW + xo] = (float)s;
            }
    }
    free(span);
    free(wy);
    return 0;
}

/* ---- rows ---- */

/* Layer norm of rows t0..t1 of inp into f32 out or, when out_bf16,
 * rounded to bf16. */
static void layernorm_rows(void *out, int out_bf16, const float *inp,
                           const float *weight, const float *bias, int T,
                           int C, float eps) {
    /* out, inp (T, C); two-pass mean and variance per row, in parallel
     * over rows (nn_layernorm_forward keeps the statistics for the
     * backward and runs on one thread). out may alias inp (f32). */
    #pragma omp parallel for schedule(static) if (T > 32)
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        float s = 0.0f, v = 0.0f;
        #pragma omp simd reduction(+ : s)
        for (int i = 0; i < C; i++) s += x[i];
        float m = s / C;
        #pragma omp simd reduction(+ : v)
        for (int i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
        float r = 1.0f / sqrtf(v / C + eps);
        if (out_bf16) {
            /* in chunks through a stack row, then the CPU's conversion */
            uint16_t *y = (uint16_t *)out + (size_t)t * C;
            float buf[256];
            for (int c0 = 0; c0 < C; c0 += 256) {
                int n = C - c0 < 256 ? C - c0 : 256;
                #pragma omp simd
                for (int i = 0; i < n; i++)
                    buf[i] = (x[c0 + i] - m) * r * weight[c0 + i] +
                             bias[c0 + i];
                bf16_row(y + c0, buf, n, 1.0f);
            }
        } else {
            float *y = (float *)out + (size_t)t * C;
            #pragma omp simd
            for (int i = 0; i < C; i++)
                y[i] = (x[i] - m) * r * weight[i] + bias[i];
        }
    }
}

void nn_layernorm_rows_forward(float *out, const float *inp,
                               const float *weight, const float *bias,
                               int T, int C, float eps) {
    layernorm_rows(out, 0, inp, weight, bias, T, C, eps);
}

void nn_layernorm_rows_forward_bf16(uint16_t *out, const float *inp,
                                    const float *weight, const float *bias,
                                    int T, int C, float eps) {
    layernorm_rows(out, 1, inp, weight, bias, T, C, eps);
}

void nn_swiglu_forward(float *out, const float *inp, int T, int Hd) {
    /* out(T, Hd) = silu(x1) * x2 with inp(T, 2 Hd) = [x1 | x2] */
    #pragma omp parallel for schedule(static) if (T > 32)
    for (int t = 0; t < T; t++) {
        const float *a = inp + (size_t)t * 2 * Hd, *b = a + Hd;
        float *o = out + (size_t)t * Hd;
        for (int i = 0; i < Hd; i++) o[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
    }
}
