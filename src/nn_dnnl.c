/* nn_dnnl.c - matmul, linear and convolution through oneDNN's C API.
 *
 * Every primitive is created once per shape at first use and kept in a
 * small cache (nn_release frees them). Tensors stay plain f32 in the
 * caller's memory; where a primitive prefers a blocked layout or bf16,
 * oneDNN reorders copy the operands into scratch buffers owned by this
 * file, and results come back through a reorder that can also add into
 * the destination (the backward's += convention).
 *
 * Threading: Debian's libdnnl uses the OpenMP runtime, so the thread
 * count is OpenMP's (nn_set_threads). The cache and the scratch buffers
 * are process-wide and not locked: call kernels from one thread at a time.
 */
#include "internal.h"
#include "nn.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <string.h>
#include <unistd.h>

/* A failing oneDNN call here means an unsupported shape or a broken
 * install, never bad user input. */
#define DNNL_OK(call) UAD_ASSERT((call) == dnnl_success)

static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static int g_threads;
static nn_precision g_prec = NN_F32;

static void engine_init(void) {
    if (g_engine) return;
    if (!g_threads) nn_set_threads(0);
    DNNL_OK(dnnl_engine_create(&g_engine, dnnl_cpu, 0));
    DNNL_OK(dnnl_stream_create(&g_stream, g_engine,
                               dnnl_stream_default_flags));
}

/* n <= 0 selects the number of online CPUs. */
void nn_set_threads(int n) {
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    g_threads = n;
    omp_set_num_threads(n);
}

int nn_threads(void) {
    if (!g_threads) nn_set_threads(0);
    return g_threads;
}

/* ---- scratch buffers ---- */

#define NN_SLOTS 8
static void *g_scratch[NN_SLOTS];
static size_t g_scratch_size[NN_SLOTS];

/* Slot `slot`'s buffer of at least `bytes`, 64-byte aligned; grows only
 * at the first call with a larger size, contents are not kept. */
void *nn_scratch(int slot, size_t bytes) {
    UAD_ASSERT(slot >= 0 && slot < NN_SLOTS);
    if (bytes > g_scratch_size[slot]) {
        free(g_scratch[slot]);
        size_t sz = (bytes + 63) / 64 * 64;
        g_scratch[slot] = aligned_alloc(64, sz);
        UAD_ASSERT(g_scratch[slot] != NULL);
        g_scratch_size[slot] = sz;
    }
    return g_scratch[slot];
}

/* ---- f32 <-> bf16 ---- */

/* Round to nearest even; NaN stays a (quiet) NaN. Branch-free so that
 * the compiler vectorises it; large arrays are split over the threads. */
void nn_f32_to_bf16(uint16_t *out, const float *inp, size_t n) {
    long blocks = (long)((n + 16383) / 16384);
    #pragma omp parallel for schedule(static) if (blocks > 4)
    for (long b = 0; b < blocks; b++) {
        size_t lo = (size_t)b * 16384, hi = lo + 16384 < n ? lo + 16384 : n;
        #pragma omp simd
        for (size_t i = lo; i < hi; i++) {
            uint32_t u;
            memcpy(&u, inp + i, 4);
            uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
            uint32_t q = (u >> 16) | 0x40u;
            out[i] = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? q : r);
        }
    }
}

/* ---- the primitive cache ---- */

enum { OP_MATMUL, OP_CONV_FWD, OP_CONV_BWD_DATA, OP_CONV_BWD_WEIGHTS,
       OP_LINEAR_PACKED, OP_BMM };

typedef struct {
    int op, prec, acc;
    long d[16];
} nn_key;

/* One operand's path between the caller's plain f32 memory (`user`) and
 * the primitive's layout (`inner`); reorder is NULL when they match. */
typedef struct {
    dnnl_primitive_t reorder;
    dnnl_memory_t user, inner;
    size_t bytes;
    int slot;
} nn_stage;

typedef struct {
    nn_key key;
    unsigned long last;   /* use tick, for evicting the least recent */
    dnnl_primitive_t prim;
    nn_stage st[3];       /* conv: the two inputs and the output */
    dnnl_memory_t mem[5]; /* matmul: src, weights, dst, bias, scale;
                           * conv: bias */
    dnnl_memory_desc_t wmd; /* packed linear: the weights' layout */
} nn_entry;

/* A network touches a few dozen shapes; the bound only matters for a
 * caller cycling through many sizes, who then pays re-creation. */
#define NN_CACHE_MAX 256
static nn_entry *g_cache[NN_CACHE_MAX];
static int g_ncache;
static unsigned long g_tick;

static nn_entry *cache_find(const nn_key *k) {
    for (int i = 0; i < g_ncache; i++)
        if (memcmp(&g_cache[i]->key, k, sizeof *k) == 0) {
            g_cache[i]->last = ++g_tick;
            return g_cache[i];
        }
    return NULL;
}

static void stage_free(nn_stage *s) {
    if (s->reorder) dnnl_primitive_destroy(s->reorder);
    if (s->user) dnnl_memory_destroy(s->user);
    if (s->inner) dnnl_memory_destroy(s->inner);
}

static void entry_free(nn_entry *e) {
    if (e->prim) dnnl_primitive_destroy(e->prim);
    for (int j = 0; j < 3; j++) stage_free(&e->st[j]);
    for (int j = 0; j < 5; j++)
        if (e->mem[j]) dnnl_memory_destroy(e->mem[j]);
    free(e);
}

/* A new zeroed entry for k; when the cache is full the least recently
 * used entry makes room (entries in use by the current kernel call were
 * just touched, so they are never the victim). */
static nn_entry *cache_add(const nn_key *k) {
    if (g_ncache == NN_CACHE_MAX) {
        int v = 0;
        for (int i = 1; i < g_ncache; i++)
            if (g_cache[i]->last < g_cache[v]->last) v = i;
        entry_free(g_cache[v]);
        g_cache[v] = g_cache[--g_ncache];
    }
    nn_entry *e = calloc(1, sizeof *e);
    UAD_ASSERT(e != NULL);
    e->key = *k;
    e->last = ++g_tick;
    g_cache[g_ncache++] = e;
    return e;
}

/* Free every cached primitive and scratch buffer (tests, leak checks). */
void nn_release(void) {
    for (int i = 0; i < g_ncache; i++) entry_free(g_cache[i]);
    g_ncache = 0;
    for (int i = 0; i < NN_SLOTS; i++) {
        free(g_scratch[i]);
        g_scratch[i] = NULL;
        g_scratch_size[i] = 0;
    }
    if (g_stream) dnnl_stream_destroy(g_stream);
    if (g_engine) dnnl_engine_destroy(g_engine);
    g_stream = NULL;
    g_engine = NULL;
}

static dnnl_memory_t mem_new(const dnnl_memory_desc_t *md) {
    dnnl_memory_t m;
    DNNL_OK(dnnl_memory_create(&m, md, g_engine, DNNL_MEMORY_NONE));
    return m;
}

static dnnl_primitive_t prim_new(const_dnnl_op_desc_t desc,
                                 const_dnnl_primitive_attr_t attr,
                                 const_dnnl_primitive_desc_t hint,
                                 dnnl_primitive_desc_t *pd_out) {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p;
    DNNL_OK(dnnl_primitive_desc_create(&pd, desc, attr, g_engine, hint));
    DNNL_OK(dnnl_primitive_create(&p, pd));
    if (pd_out)
        *pd_out = pd;
    else
        dnnl_primitive_desc_destroy(pd);
    return p;
}

static void run(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args) {
    DNNL_OK(dnnl_primitive_execute(p, g_stream, nargs, args));
    DNNL_OK(dnnl_stream_wait(g_stream));
}

/* Set up `s` between a plain user layout and the primitive's `inner`
 * layout. Inputs copy user -> inner; outputs copy inner -> user, adding
 * into the user's values when `acc` (forcing a reorder even when the
 * layouts match, because backward primitives cannot accumulate). */
static void stage_init(nn_stage *s, const dnnl_memory_desc_t *user_md,
                       const dnnl_memory_desc_t *inner_md, int output,
                       int acc, int slot) {
    s->user = mem_new(user_md);
    s->slot = slot;
    if (dnnl_memory_desc_equal(user_md, inner_md) && !acc) return;
    s->inner = mem_new(inner_md);
    s->bytes = dnnl_memory_desc_get_size(inner_md);
    dnnl_primitive_attr_t attr;
    DNNL_OK(dnnl_primitive_attr_create(&attr));
    if (acc) {
        dnnl_post_ops_t po;
        DNNL_OK(dnnl_post_ops_create(&po));
        DNNL_OK(dnnl_post_ops_append_sum(po, 1.0f));
        DNNL_OK(dnnl_primitive_attr_set_post_ops(attr, po));
        dnnl_post_ops_destroy(po);
    }
    dnnl_primitive_desc_t pd;
    const dnnl_memory_desc_t *from = output ? inner_md : user_md;
    const dnnl_memory_desc_t *to = output ? user_md : inner_md;
    DNNL_OK(dnnl_reorder_primitive_desc_create(&pd, from, g_engine, to,
                                               g_engine, attr));
    DNNL_OK(dnnl_primitive_create(&s->reorder, pd));
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
}

/* Point the stage at the caller's buffer and return the memory the main
 * primitive should use; inputs are reordered here. */
static dnnl_memory_t stage_in(nn_stage *s, const void *user) {
    DNNL_OK(dnnl_memory_set_data_handle(s->user, (void *)user));
    if (!s->reorder) return s->user;
    DNNL_OK(dnnl_memory_set_data_handle(s->inner,
                                        nn_scratch(s->slot, s->bytes)));
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, s->user},
                            {DNNL_ARG_TO, s->inner}};
    run(s->reorder, 2, a);
    return s->inner;
}

static dnnl_memory_t stage_out_begin(nn_stage *s, void *user) {
    DNNL_OK(dnnl_memory_set_data_handle(s->user, user));
    if (!s->reorder) return s->user;
    DNNL_OK(dnnl_memory_set_data_handle(s->inner,
                                        nn_scratch(s->slot, s->bytes)));
    return s->inner;
}

static void stage_out_end(nn_stage *s) {
    if (!s->reorder) return;
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, s->inner},
                            {DNNL_ARG_TO, s->user}};
    run(s->reorder, 2, a);
}

/* ---- matmul ---- */

/* A (rows x cols) matrix stored row-major, or its transpose's storage
 * when `t` (then element (i, j) sits at j * rows + i). */
static void md_matrix(dnnl_memory_desc_t *md, long rows, long cols, int t,
                      dnnl_data_type_t dt) {
    dnnl_dims_t dims = {rows, cols};
    dnnl_dims_t strides = {t ? 1 : cols, t ? rows : 1};
    DNNL_OK(dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides));
}

static nn_entry *matmul_entry(int M, int K, int N, int ta, int tb,
                              int acc) {
    nn_key k;
    memset(&k, 0, sizeof k);
    k.op = OP_MATMUL;
    k.prec = g_prec;
    k.acc = acc;
    k.d[0] = M, k.d[1] = K, k.d[2] = N, k.d[3] = ta, k.d[4] = tb;
    nn_entry *e = cache_find(&k);
    if (e) return e;

    engine_init();
    e = cache_add(&k);
    dnnl_data_type_t dt = g_prec == NN_BF16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t a_md, b_md, c_md;
    md_matrix(&a_md, M, K, ta, dt);
    md_matrix(&b_md, K, N, tb, dt);
    md_matrix(&c_md, M, N, 0, dnnl_f32);
    dnnl_matmul_desc_t desc;
    DNNL_OK(dnnl_matmul_desc_init(&desc, &a_md, &b_md, NULL, &c_md));
    dnnl_primitive_attr_t attr;
    DNNL_OK(dnnl_primitive_attr_create(&attr));
    if (acc) {
        dnnl_post_ops_t po;
        DNNL_OK(dnnl_post_ops_create(&po));
        DNNL_OK(dnnl_post_ops_append_sum(po, 1.0f));
        DNNL_OK(dnnl_primitive_attr_set_post_ops(attr, po));
        dnnl_post_ops_destroy(po);
    }
    e->prim = prim_new(&desc, attr, NULL, NULL);
    dnnl_primitive_attr_destroy(attr);
    e->mem[0] = mem_new(&a_md);
    e->mem[1] = mem_new(&b_md);
    e->mem[2] = mem_new(&c_md);
    return e;
}

/* out(M, N) (+)= op(a) @ op(b), op = transpose when ta / tb. In bf16
 * mode both inputs are rounded to bf16 copies first (f32 accumulation). */
static void matmul_any(float *out, const float *a, const float *b, int M,
                       int K, int N, int ta, int tb, int acc) {
    UAD_ASSERT(M > 0 && K > 0 && N > 0);
    nn_entry *e = matmul_entry(M, K, N, ta, tb, acc ? 1 : 0);
    const void *pa = a, *pb = b;
    if (g_prec == NN_BF16) {
        size_t na = (size_t)M * K, nb = (size_t)K * N;
        uint16_t *ha = nn_scratch(4, na * 2), *hb = nn_scratch(5, nb * 2);
        nn_f32_to_bf16(ha, a, na);
        nn_f32_to_bf16(hb, b, nb);
        pa = ha, pb = hb;
    }
    DNNL_OK(dnnl_memory_set_data_handle(e->mem[0], (void *)pa));
    DNNL_OK(dnnl_memory_set_data_handle(e->mem[1], (void *)pb));
    DNNL_OK(dnnl_memory_set_data_handle(e->mem[2], out));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e->mem[0]},
                               {DNNL_ARG_WEIGHTS, e->mem[1]},
                               {DNNL_ARG_DST, e->mem[2]}};
    run(e->prim, 3, args);
}

void nn_matmul(float *out, const float *a, const float *b, int M, int K,
               int N, int accumulate) {
    matmul_any(out, a, b, M, K, N, 0, 0, accumulate);
}

void nn_matmul_bt(float *out, const float *a, const float *b, int M, int K,
                  int N, int accumulate) {
    matmul_any(out, a, b, M, K, N, 0, 1, accumulate);
}

void nn_matmul_at(float *out, const float *a, const float *b, int M, int K,
                  int N, int accumulate) {
    matmul_any(out, a, b, M, K, N, 1, 0, accumulate);
}

/* ---- linear ---- */

void nn_linear_forward(float *out, const float *inp, const float *weight,
                       const float *bias, int T, int C, int OC) {
    /* out(T, OC), inp(T, C), weight(OC, C), bias(OC) */
    nn_matmul_bt(out, inp, weight, T, C, OC, 0);
    if (!bias) return;
    for (int t = 0; t < T; t++) {
        float *o = out + (size_t)t * OC;
        for (int j = 0; j < OC; j++) o[j] += bias[j];
    }
}

void nn_linear_backward(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp,
                        const float *weight, int T, int C, int OC) {
    /* dinp(T, C) += dout(T, OC) @ weight(OC, C) */
    if (dinp) nn_matmul(dinp, dout, weight, T, OC, C, 1);
    /* dweight(OC, C) += dout^T(OC, T) @ inp(T, C) */
    if (dweight) nn_matmul_at(dweight, dout, inp, OC, T, C, 1);
    if (!dbias) return;
    for (int t = 0; t < T; t++) {
        const float *d = dout + (size_t)t * OC;
        for (int j = 0; j < OC; j++) dbias[j] += d[j];
    }
}

/* ---- convolution (stride 1, zero padding k / 2) ---- */

static void conv_mds(dnnl_memory_desc_t *x, dnnl_memory_desc_t *w,
                     dnnl_memory_desc_t *y, const nn_key *k,
                     dnnl_format_tag_t act, dnnl_format_tag_t wt,
                     dnnl_data_type_t dt) {
    long N = k->d[0], C = k->d[1], H = k->d[2], W = k->d[3];
    long OC = k->d[4], ks = k->d[5];
    dnnl_dims_t xd = {N, C, H, W}, wd = {OC, C, ks, ks}, yd = {N, OC, H, W};
    DNNL_OK(dnnl_memory_desc_init_by_tag(x, 4, xd, dt, act));
    DNNL_OK(dnnl_memory_desc_init_by_tag(w, 4, wd, dt, wt));
    DNNL_OK(dnnl_memory_desc_init_by_tag(y, 4, yd, dt, act));
}

/* The forward descriptor; bf16 compute keeps f32 destination and bias. */
static void conv_fwd_desc(dnnl_convolution_desc_t *desc, const nn_key *k,
                          int bias) {
    dnnl_data_type_t dt = k->prec == NN_BF16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t x, w, y, yf, b;
    conv_mds(&x, &w, &yf, k, dnnl_format_tag_any, dnnl_format_tag_any,
             dnnl_f32);
    conv_mds(&x, &w, &y, k, dnnl_format_tag_any, dnnl_format_tag_any, dt);
    dnnl_dims_t bd = {k->d[4]};
    DNNL_OK(dnnl_memory_desc_init_by_tag(&b, 1, bd, dnnl_f32, dnnl_a));
    long p = k->d[5] / 2;
    dnnl_dims_t s = {1, 1}, pad = {p, p};
    DNNL_OK(dnnl_convolution_forward_desc_init(
        desc, dnnl_forward_training, dnnl_convolution_direct, &x, &w,
        bias ? &b : NULL, &yf, s, pad, pad));
}

static const dnnl_memory_desc_t *q(dnnl_primitive_desc_t pd,
                                   dnnl_query_t what) {
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* The primitive descriptor of one convolution pass for key k (prec,
 * sizes and bias flag from k); backward passes take a forward hint.
 * Returns oneDNN's status so a bf16 probe can ask without failing. */
static dnnl_status_t conv_pd(dnnl_primitive_desc_t *pd, int op,
                             const nn_key *k) {
    dnnl_data_type_t dt = k->prec == NN_BF16 ? dnnl_bf16 : dnnl_f32;
    dnnl_convolution_desc_t fwd, desc;
    conv_fwd_desc(&fwd, k, (int)k->d[6]);
    if (op == OP_CONV_FWD)
        return dnnl_primitive_desc_create(pd, &fwd, NULL, g_engine, NULL);
    /* f32 for the pass's output, dt for its inputs */
    dnnl_memory_desc_t x, w, y, xf, wf, yf;
    dnnl_format_tag_t any = dnnl_format_tag_any;
    conv_mds(&xf, &wf, &yf, k, any, any, dnnl_f32);
    conv_mds(&x, &w, &y, k, any, any, dt);
    long p = k->d[5] / 2;
    dnnl_dims_t s = {1, 1}, pad = {p, p};
    dnnl_status_t st =
        op == OP_CONV_BWD_DATA
            ? dnnl_convolution_backward_data_desc_init(
                  &desc, dnnl_convolution_direct, &xf, &w, &y, s, pad, pad)
            : dnnl_convolution_backward_weights_desc_init(
                  &desc, dnnl_convolution_direct, &x, &wf, NULL, &y, s, pad,
                  pad);
    if (st != dnnl_success) return st;
    dnnl_primitive_desc_t hint;
    st = dnnl_primitive_desc_create(&hint, &fwd, NULL, g_engine, NULL);
    if (st != dnnl_success) return st;
    st = dnnl_primitive_desc_create(pd, &desc, NULL, g_engine, hint);
    dnnl_primitive_desc_destroy(hint);
    return st;
}

static nn_entry *conv_entry(int op, int N, int C, int H, int W, int OC,
                            int ks, int bias) {
    nn_key k;
    memset(&k, 0, sizeof k);
    k.op = op;
    k.prec = g_prec;
    k.d[0] = N, k.d[1] = C, k.d[2] = H, k.d[3] = W, k.d[4] = OC;
    k.d[5] = ks, k.d[6] = bias;
    nn_entry *e = cache_find(&k);
    if (e) return e;

    engine_init();
    e = cache_add(&k);
    dnnl_memory_desc_t ux, uw, uy;
    conv_mds(&ux, &uw, &uy, &k, dnnl_nchw, dnnl_oihw, dnnl_f32);
    dnnl_primitive_desc_t pd;
    DNNL_OK(conv_pd(&pd, op, &k));
    DNNL_OK(dnnl_primitive_create(&e->prim, pd));
    /* stage slots: src 0, weights 1, outputs 2, diff_dst 3 (kept apart
     * from src so the two backward passes can share its copy) */
    if (op == OP_CONV_FWD) {
        stage_init(&e->st[0], &ux, q(pd, dnnl_query_src_md), 0, 0, 0);
        stage_init(&e->st[1], &uw, q(pd, dnnl_query_weights_md), 0, 0, 1);
        stage_init(&e->st[2], &uy, q(pd, dnnl_query_dst_md), 1, 0, 2);
        if (bias)
            e->mem[0] = mem_new(
                dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1));
    } else if (op == OP_CONV_BWD_DATA) {
        stage_init(&e->st[0], &uy, q(pd, dnnl_query_diff_dst_md), 0, 0, 3);
        stage_init(&e->st[1], &uw, q(pd, dnnl_query_weights_md), 0, 0, 1);
        stage_init(&e->st[2], &ux, q(pd, dnnl_query_diff_src_md), 1, 1, 2);
    } else {
        stage_init(&e->st[0], &ux, q(pd, dnnl_query_src_md), 0, 0, 0);
        stage_init(&e->st[1], &uy, q(pd, dnnl_query_diff_dst_md), 0, 0, 3);
        stage_init(&e->st[2], &uw, q(pd, dnnl_query_diff_weights_md), 1, 1,
                   2);
    }
    dnnl_primitive_desc_destroy(pd);
    return e;
}

/* Whether two stages reorder the same user tensor into the same layout,
 * so the second can reuse the first's copy. */
static int same_layout(const nn_stage *a, const nn_stage *b) {
    if (!a->reorder || !b->reorder) return !a->reorder && !b->reorder;
    const dnnl_memory_desc_t *ma, *mb;
    DNNL_OK(dnnl_memory_get_memory_desc(a->inner, &ma));
    DNNL_OK(dnnl_memory_get_memory_desc(b->inner, &mb));
    return dnnl_memory_desc_equal(ma, mb);
}

/* Backward data and weights of a k x k convolution through oneDNN. The
 * output gradient is reordered once when both primitives want the same
 * layout. */
static void conv_backward_dnnl(float *dinp, float *dweight,
                               const float *dout, const float *inp,
                               const float *weight, int N, int C, int H,
                               int W, int OC, int k) {
    nn_entry *ed = dinp ? conv_entry(OP_CONV_BWD_DATA, N, C, H, W, OC, k, 0)
                        : NULL;
    nn_entry *ew = dweight ? conv_entry(OP_CONV_BWD_WEIGHTS, N, C, H, W, OC,
                                        k, 0)
                           : NULL;
    dnnl_memory_t dy = NULL;
    if (ed) {
        dy = stage_in(&ed->st[0], dout);
        dnnl_exec_arg_t a[3] = {
            {DNNL_ARG_DIFF_DST, dy},
            {DNNL_ARG_WEIGHTS, stage_in(&ed->st[1], weight)},
            {DNNL_ARG_DIFF_SRC, stage_out_begin(&ed->st[2], dinp)}};
        run(ed->prim, 3, a);
        stage_out_end(&ed->st[2]);
    }
    if (!ew) return;
    /* both passes stage diff_dst in slot 3, apart from src (slot 0) */
    int share = ed && ed->st[0].reorder &&
                same_layout(&ed->st[0], &ew->st[1]);
    dnnl_memory_t src = stage_in(&ew->st[0], inp);
    if (!share) dy = stage_in(&ew->st[1], dout);
    dnnl_exec_arg_t a[3] = {
        {DNNL_ARG_SRC, src},
        {DNNL_ARG_DIFF_DST, dy},
        {DNNL_ARG_DIFF_WEIGHTS, stage_out_begin(&ew->st[2], dweight)}};
    run(ew->prim, 3, a);
    stage_out_end(&ew->st[2]);
}

/* ---- batched strided matmul ---- */

void nn_bmm_strided(float *c, const void *a, const void *b, int B, int M,
                    int K, int N, const long sa[3], const long sb[3],
                    const long sc[3], float alpha) {
    UAD_ASSERT(B > 0 && M > 0 && K > 0 && N > 0);
    nn_key k;
    memset(&k, 0, sizeof k);
    k.op = OP_BMM;
    k.prec = g_prec;
    k.d[0] = B, k.d[1] = M, k.d[2] = K, k.d[3] = N;
    for (int i = 0; i < 3; i++)
        k.d[4 + i] = sa[i], k.d[7 + i] = sb[i], k.d[10 + i] = sc[i];
    memcpy(&k.d[13], &alpha, sizeof alpha);
    nn_entry *e = cache_find(&k);
    if (!e) {
        engine_init();
        e = cache_add(&k);
        dnnl_data_type_t dt = g_prec == NN_BF16 ? dnnl_bf16 : dnnl_f32;
        dnnl_dims_t da = {B, M, K}, db = {B, K, N}, dc = {B, M, N};
        dnnl_dims_t ta = {sa[0], sa[1], sa[2]}, tb = {sb[0], sb[1], sb[2]};
        dnnl_dims_t tc = {sc[0], sc[1], sc[2]};
        dnnl_memory_desc_t a_md, b_md, c_md;
        DNNL_OK(dnnl_memory_desc_init_by_strides(&a_md, 3, da, dt, ta));
        DNNL_OK(dnnl_memory_desc_init_by_strides(&b_md, 3, db, dt, tb));
        DNNL_OK(dnnl_memory_desc_init_by_strides(&c_md, 3, dc, dnnl_f32,
                                                 tc));
        dnnl_matmul_desc_t desc;
        DNNL_OK(dnnl_matmul_desc_init(&desc, &a_md, &b_md, NULL, &c_md));
        dnnl_primitive_attr_t attr;
        DNNL_OK(dnnl_primitive_attr_create(&attr));
        if (alpha != 1.0f)
            DNNL_OK(dnnl_primitive_attr_set_output_scales(attr, 1, 0,
                                                          &alpha));
        e->prim = prim_new(&desc, attr, NULL, NULL);
        dnnl_primitive_attr_destroy(attr);
        e->mem[0] = mem_new(&a_md);
        e->mem[1] = mem_new(&b_md);
        e->mem[2] = mem_new(&c_md);
    }
    DNNL_OK(dnnl_memory_set_data_handle(e->mem[0], (void *)a));
    DNNL_OK(dnnl_memory_set_data_handle(e->mem[1], (void *)b));
    DNNL_OK(dnnl_memory_set_data_handle(e->mem[2], c));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e->mem[0]},
                               {DNNL_ARG_WEIGHTS, e->mem[1]},
                               {DNNL_ARG_DST, e->mem[2]}};
    run(e->prim, 3, args);
}

/* ---- linear layers with constant weights ---- */

struct nn_linear_packed {
    const float *bias;          /* the caller's (OC), or NULL           */
    int C, OC;
    /* the weight^T (C, OC) per precision ([0] f32, [1] bf16) in the
     * layout its matmul prefers; data[0] is made at nn_linear_pack and
     * is the source of every later packing, data[1] on first bf16 use */
    dnnl_memory_desc_t md[2];
    void *data[2];
};

/* Reorder `from` (layout from_md) into a new buffer of layout to_md;
 * NULL when out of memory. */
static void *reorder_new(const dnnl_memory_desc_t *from_md, const void *from,
                         const dnnl_memory_desc_t *to_md) {
    size_t bytes = dnnl_memory_desc_get_size(to_md);
    void *to = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!to) return NULL;
    dnnl_memory_t mf = mem_new(from_md), mt = mem_new(to_md);
    DNNL_OK(dnnl_memory_set_data_handle(mf, (void *)from));
    DNNL_OK(dnnl_memory_set_data_handle(mt, to));
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t r;
    DNNL_OK(dnnl_reorder_primitive_desc_create(&pd, from_md, g_engine, to_md,
                                               g_engine, NULL));
    DNNL_OK(dnnl_primitive_create(&r, pd));
    dnnl_primitive_desc_destroy(pd);
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, mf}, {DNNL_ARG_TO, mt}};
    run(r, 2, a);
    dnnl_primitive_destroy(r);
    dnnl_memory_destroy(mf);
    dnnl_memory_destroy(mt);
    return to;
}

/* The weights layout oneDNN prefers for a plain f32 matmul of this
 * shape (the row count does not change it on the CPUs measured; a call
 * whose matmul wants another layout repacks, see packed_fill). */
static void packed_f32_md(dnnl_memory_desc_t *out, int C, int OC) {
    dnnl_memory_desc_t a_md, b_md, c_md;
    md_matrix(&a_md, 64, C, 0, dnnl_f32);
    dnnl_dims_t bd = {C, OC};
    DNNL_OK(dnnl_memory_desc_init_by_tag(&b_md, 2, bd, dnnl_f32,
                                         dnnl_format_tag_any));
    md_matrix(&c_md, 64, OC, 0, dnnl_f32);
    dnnl_matmul_desc_t desc;
    DNNL_OK(dnnl_matmul_desc_init(&desc, &a_md, &b_md, NULL, &c_md));
    dnnl_primitive_desc_t pd;
    DNNL_OK(dnnl_primitive_desc_create(&pd, &desc, NULL, g_engine, NULL));
    *out = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_primitive_desc_destroy(pd);
}

nn_linear_packed *nn_linear_pack(const float *weight, const float *bias,
                                 int C, int OC) {
    UAD_ASSERT(weight && C > 0 && OC > 0);
    nn_linear_packed *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->bias = bias;
    p->C = C, p->OC = OC;
    engine_init();
    dnnl_memory_desc_t user_md;
    md_matrix(&user_md, C, OC, 1, dnnl_f32); /* weight(OC, C) read as ^T */
    packed_f32_md(&p->md[0], C, OC);
    if (!(p->data[0] = reorder_new(&user_md, weight, &p->md[0]))) {
        free(p);
        return NULL;
    }
    return p;
}

void nn_linear_packed_free(nn_linear_packed *p) {
    if (!p) return;
    free(p->data[0]);
    free(p->data[1]);
    free(p);
}

/* The matmul of T rows through p with its post-operations; its weights
 * layout is left "any" for oneDNN to choose, and kept in e->wmd. */
static nn_entry *packed_entry(const nn_linear_packed *p, int T, nn_act act,
                              int scale, int acc, int out_bf16) {
    nn_key k;
    memset(&k, 0, sizeof k);
    k.op = OP_LINEAR_PACKED;
    k.prec = g_prec;
    k.acc = acc;
    k.d[0] = T, k.d[1] = p->C, k.d[2] = p->OC, k.d[3] = act;
    k.d[4] = scale, k.d[5] = p->bias != NULL, k.d[6] = out_bf16;
    nn_entry *e = cache_find(&k);
    if (e) return e;

    engine_init();
    e = cache_add(&k);
    dnnl_data_type_t dt = g_prec == NN_BF16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t a_md, b_md, c_md, v_md;
    md_matrix(&a_md, T, p->C, 0, dt);
    dnnl_dims_t bd = {p->C, p->OC}, vd = {1, p->OC};
    DNNL_OK(dnnl_memory_desc_init_by_tag(&b_md, 2, bd, dt,
                                         dnnl_format_tag_any));
    md_matrix(&c_md, T, p->OC, 0, out_bf16 ? dnnl_bf16 : dnnl_f32);
    DNNL_OK(dnnl_memory_desc_init_by_tag(&v_md, 2, vd, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t desc;
    DNNL_OK(dnnl_matmul_desc_init(&desc, &a_md, &b_md,
                                  p->bias ? &v_md : NULL, &c_md));
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    DNNL_OK(dnnl_primitive_attr_create(&attr));
    DNNL_OK(dnnl_post_ops_create(&po));
    if (act == NN_ACT_GELU)
        DNNL_OK(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf,
                                             0.0f, 0.0f));
    else if (act == NN_ACT_QUICK_GELU) /* swish: x * sigmoid(alpha x) */
        DNNL_OK(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_swish,
                                             1.702f, 0.0f));
    if (scale)
        DNNL_OK(dnnl_post_ops_append_binary(po, dnnl_binary_mul, &v_md));
    if (acc) DNNL_OK(dnnl_post_ops_append_sum(po, 1.0f));
    DNNL_OK(dnnl_primitive_attr_set_post_ops(attr, po));
    dnnl_post_ops_destroy(po);
    dnnl_primitive_desc_t pd;
    e->prim = prim_new(&desc, attr, NULL, &pd);
    dnnl_primitive_attr_destroy(attr);
    e->wmd = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_primitive_desc_destroy(pd);
    e->mem[0] = mem_new(&a_md);
    e->mem[1] = mem_new(&e->wmd);
    e->mem[2] = mem_new(&c_md);
    e->mem[3] = mem_new(&v_md);
    e->mem[4] = mem_new(&v_md);
    return e;
}

/* The weight in the current precision and in the layout `md`: packed
 * from the f32 copy at the first call in bf16 (kept, so that switching
 * precision does not repack), or again should a matmul want another
 * layout. */
static void packed_fill(nn_linear_packed *p, const dnnl_memory_desc_t *md) {
    int i = g_prec == NN_BF16;
    if (p->data[i] && dnnl_memory_desc_equal(&p->md[i], md)) return;
    void *to = reorder_new(&p->md[0], p->data[0], md);
    UAD_ASSERT(to != NULL);
    free(p->data[i]); /* for i == 0, the source, read by now */
    p->data[i] = to;
    p->md[i] = *md;
}

void nn_linear_packed_forward(float *out, const float *inp,
                              nn_linear_packed *p, int T, nn_act act,
                              const float *scale, int accumulate) {
    nn_linear_packed_forward_bf(out, 0, inp, 0, p, T, act, scale,
                                accumulate);
}

/* Whether oneDNN may use AMX on this CPU (asked once). */
static int amx(void) {
    static int known = -1;
    if (known < 0) {
        dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
        known = (isa & dnnl_cpu_isa_avx512_core_amx) ==
                dnnl_cpu_isa_avx512_core_amx;
    }
    return known;
}

/* One matmul of rows already in the input precision: src(T, C) to
 * out(T, OC) through entry e. */
static void packed_exec(nn_entry *e, nn_linear_packed *p, const void *src,
                        void *out, nn_act act, const float *scale) {
    DNNL_OK(dnnl_memory_set_data_handle(e->mem[0], (void *)src));
    DNNL_OK(dnnl_memory_set_data_handle(e->mem[1],
                                         p->data[g_prec == NN_BF16]));
    DNNL_OK(dnnl_memory_set_data_handle(e->mem[2], out));
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, e->mem[0]},
                               {DNNL_ARG_WEIGHTS, e->mem[1]},
                               {DNNL_ARG_DST, e->mem[2]}};
    int n = 3;
    if (p->bias) {
        DNNL_OK(dnnl_memory_set_data_handle(e->mem[3], (void *)p->bias));
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, e->mem[3]};
    }
    if (scale) {
        /* the binary post-op's position in the chain: after the act */
        int ix = act != NN_ACT_NONE;
        DNNL_OK(dnnl_memory_set_data_handle(e->mem[4], (void *)scale));
        args[n++] = (dnnl_exec_arg_t){
            DNNL_ARG_ATTR_MULTIPLE_POST_OP(ix) | DNNL_ARG_SRC_1, e->mem[4]};
    }
    run(e->prim, n, args);
}

void nn_linear_packed_forward_bf(void *out, int out_bf16, const void *inp,
                                 int inp_bf16, nn_linear_packed *p, int T,
                                 nn_act act, const float *scale,
                                 int accumulate) {
    UAD_ASSERT(T > 0 && act >= NN_ACT_NONE && act <= NN_ACT_QUICK_GELU);
    UAD_ASSERT(!(inp_bf16 || out_bf16) || g_prec == NN_BF16);
    UAD_ASSERT(!(out_bf16 && accumulate));
    int acc = accumulate ? 1 : 0, ob = out_bf16 ? 1 : 0;
    const void *src = inp;
    if (g_prec == NN_BF16 && !inp_bf16) {
        size_t n = (size_t)T * p->C;
        uint16_t *h = nn_scratch(4, n * 2);
        nn_f32_to_bf16(h, inp, n);
        src = h;
    }
    /* bf16 on AMX: oneDNN's kernels lose up to 40% on a row count that
     * is not a multiple of 32 (1025 tokens: 6.0 ms against 3.5 for
     * 1024 on a 3072 -> 768 layer, 2 threads), so the whole blocks and
     * the last rows run as two matmuls, when both take the same weight
     * layout. The second matmul reads the weights again, which cost more
     * than it saved below 256 rows (197 tokens: 0.79 ms as one matmul,
     * 0.92 as two; 257: 1.38 and 1.20). Measured on AMX only; f32 shows
     * no such loss. */
    int main_rows = T / 32 * 32;
    if (g_prec == NN_BF16 && main_rows >= 256 && main_rows < T && amx()) {
        nn_entry *em = packed_entry(p, main_rows, act, scale != NULL, acc, ob);
        nn_entry *et = packed_entry(p, T - main_rows, act, scale != NULL, acc,
                                    ob);
        if (dnnl_memory_desc_equal(&em->wmd, &et->wmd)) {
            packed_fill(p, &em->wmd);
            size_t in_at = (size_t)main_rows * p->C * 2; /* bf16 bytes */
            size_t out_at = (size_t)main_rows * p->OC * (ob ? 2 : 4);
            packed_exec(em, p, src, out, act, scale);
            packed_exec(et, p, (const uint8_t *)src + in_at,
                        (uint8_t *)out + out_at, act, scale);
            return;
        }
    }
    nn_entry *e = packed_entry(p, T, act, scale != NULL, acc, ob);
    packed_fill(p, &e->wmd);
    packed_exec(e, p, src, out, act, scale);
}

/* ---- precision ---- */

/* Whether oneDNN can build bf16 matmul and convolution passes here
 * (asked once, on small shapes). */
static int bf16_supported(void) {
    static int known = -1;
    if (known >= 0) return known;
    engine_init();
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t d = {16, 16};
    DNNL_OK(dnnl_memory_desc_init_by_tag(&a, 2, d, dnnl_bf16, dnnl_ab));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&b, 2, d, dnnl_bf16, dnnl_ab));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&c, 2, d, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t desc;
    DNNL_OK(dnnl_matmul_desc_init(&desc, &a, &b, NULL, &c));
    dnnl_primitive_desc_t pd;
    known = dnnl_primitive_desc_create(&pd, &desc, NULL, g_engine, NULL) ==
            dnnl_success;
    if (known) dnnl_primitive_desc_destroy(pd);
    nn_key k;
    memset(&k, 0, sizeof k);
    k.prec = NN_BF16;
    k.d[0] = 2, k.d[1] = 16, k.d[2] = 8, k.d[3] = 8, k.d[4] = 16;
    k.d[5] = 3, k.d[6] = 1;
    for (int op = OP_CONV_FWD; known && op <= OP_CONV_BWD_WEIGHTS; op++) {
        known = conv_pd(&pd, op, &k) == dnnl_success;
        if (known) dnnl_primitive_desc_destroy(pd);
    }
    return known;
}

int nn_set_precision(nn_precision p) {
    UAD_ASSERT(p == NN_F32 || p == NN_BF16);
    if (p == NN_BF16 && !bf16_supported()) {
        UAD_WARN("bf16 compute is not supported by oneDNN on this CPU "
                 "(it needs AVX-512); staying in f32");
        return -1;
    }
    g_prec = p;
    return 0;
}

nn_precision nn_get_precision(void) { return g_prec; }

uad_status uad_set_bf16(int on) {
    if (!on) {
        g_prec = NN_F32;
        return UAD_OK;
    }
    if (!bf16_supported())
        return uad_fail(UAD_ERR_USAGE, "bf16 compute is not supported by "
                        "oneDNN on this CPU (it needs AVX-512); use f32");
    g_prec = NN_BF16;
    return UAD_OK;
}

/* 1x1 convolutions are per-image matmuls on the NCHW layout itself:
 * out_n(OC, HW) = weight(OC, C) @ inp_n(C, HW), no reorders needed. */
static void conv1x1_forward(float *out, const float *inp,
                            const float *weight, const float *bias, int N,
                            int C, int HW, int OC) {
    for (int n = 0; n < N; n++) {
        float *y = out + (size_t)n * OC * HW;
        nn_matmul(y, weight, inp + (size_t)n * C * HW, OC, C, HW, 0);
        for (int o = 0; bias && o < OC; o++)
            for (int i = 0; i < HW; i++) y[(size_t)o * HW + i] += bias[o];
    }
}

static void conv1x1_backward(float *dinp, float *dweight, const float *dout,
                             const float *inp, const float *weight, int N,
                             int C, int HW, int OC) {
    for (int n = 0; n < N; n++) {
        const float *dy = dout + (size_t)n * OC * HW;
        /* dinp_n(C, HW) += weight^T(C, OC) @ dout_n(OC, HW) */
        if (dinp)
            nn_matmul_at(dinp + (size_t)n * C * HW, weight, dy, C, OC, HW,
                         1);
        /* dweight(OC, C) += dout_n(OC, HW) @ inp_n(C, HW)^T */
        if (dweight)
            nn_matmul_bt(dweight, dy, inp + (size_t)n * C * HW, OC, HW, C,
                         1);
    }
}

void nn_conv2d_forward(float *out, const float *inp, const float *weight,
                       const float *bias, int N, int C, int H, int W,
                       int OC, int k) {
    /* out(N, OC, H, W), inp(N, C, H, W), weight(OC, C, k, k), bias(OC) */
    UAD_ASSERT(N > 0 && C > 0 && H > 0 && W > 0 && OC > 0);
    UAD_ASSERT(k > 0 && k % 2 == 1);
    if (k == 1) {
        conv1x1_forward(out, inp, weight, bias, N, C, H * W, OC);
        return;
    }
    nn_entry *e = conv_entry(OP_CONV_FWD, N, C, H, W, OC, k, bias != NULL);
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, stage_in(&e->st[0], inp)},
                            {DNNL_ARG_WEIGHTS, stage_in(&e->st[1], weight)},
                            {DNNL_ARG_DST, stage_out_begin(&e->st[2], out)},
                            {DNNL_ARG_BIAS, e->mem[0]}};
    if (bias) DNNL_OK(dnnl_memory_set_data_handle(e->mem[0], (void *)bias));
    run(e->prim, bias ? 4 : 3, a);
    stage_out_end(&e->st[2]);
}

void nn_conv2d_backward(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp,
                        const float *weight, int N, int C, int H, int W,
                        int OC, int k) {
    /* dout(N, OC, H, W); gradients accumulate into dinp(N, C, H, W),
     * dweight(OC, C, k, k), dbias(OC) */
    UAD_ASSERT(N > 0 && C > 0 && H > 0 && W > 0 && OC > 0);
    UAD_ASSERT(k > 0 && k % 2 == 1);
    if (k == 1) {
        conv1x1_backward(dinp, dweight, dout, inp, weight, N, C, H * W, OC);
    } else {
        conv_backward_dnnl(dinp, dweight, dout, inp, weight, N, C, H, W, OC,
                           k);
    }
    if (!dbias) return;
    /* dbias(OC) += sum of dout over (N, H, W) */
    size_t HW = (size_t)H * W;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            const float *d = dout + ((size_t)n * OC + o) * HW;
            float s = 0.0f;
            for (size_t i = 0; i < HW; i++) s += d[i];
            dbias[o] += s;
        }
}
