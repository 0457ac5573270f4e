/* 2-D convolution (cross-correlation, as PyTorch's Conv2d) by im2col / col2im and the packed SGEMM.
 *
 * Layout NCHW. For image n, col (K x P) with K = C*kh*kw and P = OH*OW holds the receptive fields, so that
 *     y_n (Cout x P) = W (Cout x K) col_n + b,
 *     dW += dy_n col_n^T,   db += dy_n 1,   dcol_n = W^T dy_n,   dx_n = col2im(dcol_n).
 * The forward product and dW^T = sum_n col_n dy_n^T pack col_n straight from the image (mml_im2col_pack_a/_b):
 * no im2col matrix is written for them.
 * The batch is split over threads image by image (forward) or in fixed chunks of images (backward): each chunk
 * accumulates its own partial dW / db and the partials are summed in chunk order, so 1 or 2 threads give the
 * same bits. A 1x1 stride-1 unpadded conv uses x_n as col_n directly. */
#include "MMLKernels.h"
#include "nn_internal.h"
#include <stdlib.h>
#include <string.h>

#define CONV_CHUNKS 4

static int conv_dims_ok(int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout, int64_t kh, int64_t kw,
                        int64_t stride, int64_t pad) {
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || cout <= 0 || kh <= 0 || kw <= 0 || stride <= 0 || pad < 0)
        return 0;
    if (h + 2 * pad < kh || w + 2 * pad < kw) return 0;
    return 1;
}

static int is_pointwise(int64_t kh, int64_t kw, int64_t stride, int64_t pad) {
    return kh == 1 && kw == 1 && stride == 1 && pad == 0;
}

void mml_im2col_f32(float *col, const float *x, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw,
                    int64_t stride, int64_t pad) {
    int64_t oh = (h + 2 * pad - kh) / stride + 1, ow = (w + 2 * pad - kw) / stride + 1;
    for (int64_t ch = 0; ch < c; ch++) {
        const float *xc = x + ch * h * w;
        for (int64_t i = 0; i < kh; i++)
            for (int64_t j = 0; j < kw; j++) {
                float *row = col + ((ch * kh + i) * kw + j) * oh * ow;
                for (int64_t oy = 0; oy < oh; oy++) {
                    int64_t iy = oy * stride - pad + i;
                    float *dst = row + oy * ow;
                    if (iy < 0 || iy >= h) {
                        memset(dst, 0, (size_t)ow * sizeof(float));
                        continue;
                    }
                    const float *src = xc + iy * w;
                    /* valid ox: 0 <= ox*stride - pad + j < w */
                    int64_t lo = pad - j > 0 ? (pad - j + stride - 1) / stride : 0;
                    int64_t hi = (w - 1 + pad - j) >= 0 ? (w - 1 + pad - j) / stride + 1 : 0;
                    if (hi > ow) hi = ow;
                    if (lo > hi) lo = hi;
                    for (int64_t ox = 0; ox < lo; ox++) dst[ox] = 0.0f;
                    if (stride == 1) {
                        memcpy(dst + lo, src + lo - pad + j, (size_t)(hi - lo) * sizeof(float));
                    } else {
                        for (int64_t ox = lo; ox < hi; ox++) dst[ox] = src[ox * stride - pad + j];
                    }
                    for (int64_t ox = hi; ox < ow; ox++) dst[ox] = 0.0f;
                }
            }
    }
}

void mml_col2im_f32(float *x, const float *col, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw,
                    int64_t stride, int64_t pad) {
    int64_t oh = (h + 2 * pad - kh) / stride + 1, ow = (w + 2 * pad - kw) / stride + 1;
    memset(x, 0, (size_t)(c * h * w) * sizeof(float));
    for (int64_t ch = 0; ch < c; ch++) {
        float *xc = x + ch * h * w;
        for (int64_t i = 0; i < kh; i++)
            for (int64_t j = 0; j < kw; j++) {
                const float *row = col + ((ch * kh + i) * kw + j) * oh * ow;
                int64_t lo = pad - j > 0 ? (pad - j + stride - 1) / stride : 0;
                int64_t hi = (w - 1 + pad - j) >= 0 ? (w - 1 + pad - j) / stride + 1 : 0;
                if (hi > ow) hi = ow;
                if (lo > hi) lo = hi;
                for (int64_t oy = 0; oy < oh; oy++) {
                    int64_t iy = oy * stride - pad + i;
                    if (iy < 0 || iy >= h) continue;
                    float *dst = xc + iy * w;
                    const float *src = row + oy * ow;
                    if (stride == 1) {
                        float *d = dst - pad + j;
                        for (int64_t ox = lo; ox < hi; ox++) d[ox] += src[ox];
                    } else {
                        for (int64_t ox = lo; ox < hi; ox++) dst[ox * stride - pad + j] += src[ox];
                    }
                }
            }
    }
}

/* ------------------------------------------------------------ implicit im2col: packing straight from an image
 * The GEMM packs its operands into panels anyway; packing the receptive fields directly from the image skips the
 * im2col matrix (one full write and read of K x P floats per image). */

/* col[kidx][q0 .. q0+len) into dst[t * ds], t = 0 .. len-1: the image values under kernel tap kidx = (ch, i, j)
 * for output positions q (row-major over OH x OW), zero where the tap falls in the padding. */
static void im2col_row(float *dst, int64_t ds, const mml_im2col_src *s, int64_t kidx, int64_t q0, int64_t len) {
    int64_t kk = s->kh * s->kw;
    int64_t ch = kidx / kk, rem = kidx - ch * kk, i = rem / s->kw, j = rem - (rem / s->kw) * s->kw;
    const float *xc = s->x + ch * s->h * s->w;
    int64_t oy = q0 / s->ow, ox = q0 - (q0 / s->ow) * s->ow;
    /* output columns whose tap lands inside the row: [lo, hi) */
    int64_t lo = s->pad - j > 0 ? (s->pad - j + s->stride - 1) / s->stride : 0;
    int64_t hi = (s->w - 1 + s->pad - j) >= 0 ? (s->w - 1 + s->pad - j) / s->stride + 1 : 0;
    if (hi > s->ow) hi = s->ow;
    int64_t t = 0;
    while (t < len) {
        int64_t seg = s->ow - ox < len - t ? s->ow - ox : len - t;
        int64_t a = ox, b = ox + seg;
        int64_t iy = oy * s->stride - s->pad + i;
        float *d = dst + t * ds - a * ds; /* d[u * ds] is output column u */
        if (iy < 0 || iy >= s->h) {
            for (int64_t u = a; u < b; u++) d[u * ds] = 0.0f;
        } else {
            const float *row = xc + iy * s->w;
            int64_t va = lo < a ? a : lo > b ? b : lo;
            int64_t vb = hi < va ? va : hi > b ? b : hi;
            for (int64_t u = a; u < va; u++) d[u * ds] = 0.0f;
            if (ds == 1 && s->stride == 1) {
                if (vb > va) memcpy(d + va, row + va - s->pad + j, (size_t)(vb - va) * sizeof(float));
            } else {
                for (int64_t u = va; u < vb; u++) d[u * ds] = row[u * s->stride - s->pad + j];
            }
            for (int64_t u = vb; u < b; u++) d[u * ds] = 0.0f;
        }
        t += seg;
        ox = 0;
        oy++;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define IM2COL_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

/* Stride-1 pack_b, one 32-wide panel at a time: the panel's output positions split into runs along output rows
 * (at most 32 runs); each tap (ch, i, j) then fills the panel row with two masked loads per run, the masks
 * covering the columns whose input lies inside the image (masked-off lanes are never read). */
IM2COL_AVX512 static void im2col_pack_b_s1_avx512(float *pb, const mml_im2col_src *s, int64_t p0, int64_t kc,
                                                  int64_t j0, int64_t nc) {
    int64_t kk = s->kh * s->kw;
    for (int64_t jr = 0; jr < nc; jr += MML_NN_NR) {
        int64_t nr = nc - jr < MML_NN_NR ? nc - jr : MML_NN_NR;
        float *panel = pb + jr * kc;
        /* runs: lanes [t, t + len) are output row oy, columns a .. a + len - 1 */
        int64_t run_t[MML_NN_NR], run_oy[MML_NN_NR], run_a[MML_NN_NR], run_len[MML_NN_NR];
        int nruns = 0;
        int64_t q = s->q0 + j0 + jr, oy = q / s->ow, ox = q - oy * s->ow;
        for (int64_t t = 0; t < nr;) {
            int64_t len = s->ow - ox < nr - t ? s->ow - ox : nr - t;
            run_t[nruns] = t; run_oy[nruns] = oy; run_a[nruns] = ox; run_len[nruns] = len;
            nruns++;
            t += len;
            ox = 0;
            oy++;
        }
        int64_t tap = p0, ch = tap / kk, rem = tap - ch * kk, i = rem / s->kw, j = rem - i * s->kw;
        for (int64_t p = 0; p < kc; p++) {
            const float *xc = s->x + ch * s->h * s->w;
            /* columns whose input x = ox - pad + j lies in [0, w) */
            int64_t lo = s->pad - j > 0 ? s->pad - j : 0, hi = s->w + s->pad - j;
            __m512 v0 = _mm512_setzero_ps(), v1 = _mm512_setzero_ps();
            for (int r = 0; r < nruns; r++) {
                int64_t iy = run_oy[r] - s->pad + i;
                if (iy < 0 || iy >= s->h) continue;
                int64_t a = run_a[r], b = a + run_len[r];
                int64_t va = a > lo ? a : lo, vb = b < hi ? b : hi;
                if (vb <= va) continue;
                /* lane L (run_t + u - a for column u) reads row[u - pad + j] = base[L] */
                uint32_t m = (uint32_t)((((uint64_t)1 << (vb - va)) - 1) << (run_t[r] + va - a));
                const float *base = (const float *)((uintptr_t)(xc + iy * s->w) +
                                                    (uintptr_t)((a - s->pad + j - run_t[r]) * (int64_t)sizeof(float)));
                v0 = _mm512_mask_loadu_ps(v0, (__mmask16)(m & 0xFFFF), base);
                v1 = _mm512_mask_loadu_ps(v1, (__mmask16)(m >> 16), (const float *)((uintptr_t)base + 64));
            }
            _mm512_store_ps(panel + p * MML_NN_NR, v0);
            _mm512_store_ps(panel + p * MML_NN_NR + 16, v1);
            if (++j == s->kw) {
                j = 0;
                if (++i == s->kh) {
                    i = 0;
                    ch++;
                }
            }
        }
    }
}
#endif

void mml_im2col_pack_b(float *pb, const void *src, int64_t p0, int64_t kc, int64_t j0, int64_t nc) {
    const mml_im2col_src *s = (const mml_im2col_src *)src;
#if defined(__x86_64__)
    if (s->stride == 1 && mml_nn_have_avx512()) {
        im2col_pack_b_s1_avx512(pb, s, p0, kc, j0, nc);
        return;
    }
#endif
    for (int64_t jr = 0; jr < nc; jr += MML_NN_NR) {
        int64_t nr = nc - jr < MML_NN_NR ? nc - jr : MML_NN_NR;
        float *panel = pb + jr * kc;
        for (int64_t p = 0; p < kc; p++) {
            float *d = panel + p * MML_NN_NR;
            im2col_row(d, 1, s, p0 + p, s->q0 + j0 + jr, nr);
            for (int64_t u = nr; u < MML_NN_NR; u++) d[u] = 0.0f;
        }
    }
}

void mml_im2col_pack_a(float *pa, const void *src, int64_t i0, int64_t mc, int64_t p0, int64_t kc) {
    const mml_im2col_src *s = (const mml_im2col_src *)src;
    for (int64_t ir = 0; ir < mc; ir += MML_NN_MR) {
        int64_t mr = mc - ir < MML_NN_MR ? mc - ir : MML_NN_MR;
        float *panel = pa + ir * kc;
        for (int64_t r = 0; r < mr; r++) im2col_row(panel + r, MML_NN_MR, s, i0 + ir + r, s->q0 + p0, kc);
        for (int64_t r = mr; r < MML_NN_MR; r++)
            for (int64_t p = 0; p < kc; p++) panel[p * MML_NN_MR + r] = 0.0f;
    }
}

static size_t align16(size_t f) { return (f + 15) & ~(size_t)15; }

int64_t mml_conv2d_workspace_floats(int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout, int64_t kh,
                                    int64_t kw, int64_t stride, int64_t pad, int32_t nthreads) {
    if (!conv_dims_ok(n, c, h, w, cout, kh, kw, stride, pad)) return MML_ERR_ARGUMENT;
    int64_t oh = (h + 2 * pad - kh) / stride + 1, ow = (w + 2 * pad - kw) / stride + 1;
    int64_t k = c * kh * kw, p = oh * ow;
    int threads = mml_thread_count(nthreads, n < CONV_CHUNKS ? n : CONV_CHUNKS);
    int tf = mml_thread_count(nthreads, n);
    if (tf > threads) threads = tf;
    size_t per_thread = align16((size_t)(2 * k * p)) + align16(mml_nn_sgemm_scratch_floats());
    size_t partial = (size_t)CONV_CHUNKS * align16((size_t)(cout * k + cout));
    return (int64_t)(per_thread * (size_t)threads + partial + 16);
}

typedef struct {
    float *y, *dx, *dw, *db;
    const float *x, *wt, *bias, *dy;
    int64_t n, c, h, w, cout, kh, kw, stride, pad, oh, ow, k, p;
    float *ws;
    size_t per_thread;
    int64_t chunks;
} conv_ctx;

/* Workspace: [chunk partials of dW and db][per-thread col, dcol, gemm scratch], 64-byte aligned. */
static size_t partial_floats(const conv_ctx *s) { return align16((size_t)(s->cout * s->k + s->cout)); }

static float *chunk_partial(conv_ctx *s, int64_t chunk) {
    float *base = (float *)(((uintptr_t)s->ws + 63) & ~(uintptr_t)63);
    return base + (size_t)chunk * partial_floats(s);
}

static float *thread_ws(conv_ctx *s, int thread) {
    return chunk_partial(s, CONV_CHUNKS) + (size_t)thread * s->per_thread;
}

static void conv_fwd_task(void *ctx, int64_t img, int thread) {
    conv_ctx *s = (conv_ctx *)ctx;
    float *ws = thread_ws(s, thread);
    float *col = ws, *gs = ws + align16((size_t)(2 * s->k * s->p));
    const float *xn = s->x + img * s->c * s->h * s->w;
    float *yn = s->y + img * s->cout * s->p;
    (void)col;
    if (is_pointwise(s->kh, s->kw, s->stride, s->pad)) {
        mml_nn_sgemm(0, 0, s->cout, s->p, s->k, 1.0f, s->wt, s->k, xn, s->p, 0.0f, yn, s->p, gs);
    } else {
        mml_im2col_src src = {xn, s->c, s->h, s->w, s->kh, s->kw, s->stride, s->pad, s->oh, s->ow};
        mml_nn_matrix wm = {s->wt, s->k, 0};
        mml_nn_sgemm_packed(s->cout, s->p, s->k, 1.0f, mml_nn_pack_a_matrix, &wm, mml_im2col_pack_b, &src, 0.0f, yn,
                            s->p, gs);
    }
    if (s->bias)
        for (int64_t o = 0; o < s->cout; o++) {
            float b = s->bias[o];
            float *r = yn + o * s->p;
            for (int64_t q = 0; q < s->p; q++) r[q] += b;
        }
}

static conv_ctx make_ctx(int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout, int64_t kh, int64_t kw,
                         int64_t stride, int64_t pad, float *ws) {
    conv_ctx s;
    memset(&s, 0, sizeof(s));
    s.n = n; s.c = c; s.h = h; s.w = w; s.cout = cout; s.kh = kh; s.kw = kw; s.stride = stride; s.pad = pad;
    s.oh = (h + 2 * pad - kh) / stride + 1;
    s.ow = (w + 2 * pad - kw) / stride + 1;
    s.k = c * kh * kw;
    s.p = s.oh * s.ow;
    s.ws = ws;
    s.per_thread = align16((size_t)(2 * s.k * s.p)) + align16(mml_nn_sgemm_scratch_floats());
    s.chunks = n < CONV_CHUNKS ? n : CONV_CHUNKS;
    return s;
}

int mml_nn_acquire_workspace(float **workspace, float **owned, int64_t workspace_floats, int64_t need) {
    *owned = NULL;
    if (*workspace) return workspace_floats < need ? MML_ERR_ARGUMENT : MML_OK;
    *owned = malloc((size_t)need * sizeof(float));
    if (!*owned) return MML_ERR_NOMEM;
    *workspace = *owned;
    return MML_OK;
}

int mml_conv2d_forward_f32(float *y, const float *x, const float *weight, const float *bias, int64_t n, int64_t c,
                           int64_t h, int64_t w, int64_t cout, int64_t kh, int64_t kw, int64_t stride, int64_t pad,
                           float *workspace, int64_t workspace_floats, int32_t nthreads) {
    if (!y || !x || !weight || !conv_dims_ok(n, c, h, w, cout, kh, kw, stride, pad)) return MML_ERR_ARGUMENT;
    int64_t need = mml_conv2d_workspace_floats(n, c, h, w, cout, kh, kw, stride, pad, nthreads);
    float *owned;
    int ws = mml_nn_acquire_workspace(&workspace, &owned, workspace_floats, need);
    if (ws != MML_OK) return ws;
    conv_ctx s = make_ctx(n, c, h, w, cout, kh, kw, stride, pad, workspace);
    s.y = y; s.x = x; s.wt = weight; s.bias = bias;
    mml_parallel_for(n, nthreads, conv_fwd_task, &s);
    free(owned);
    return MML_OK;
}

static void conv_bwd_task(void *ctx, int64_t chunk, int thread) {
    conv_ctx *s = (conv_ctx *)ctx;
    float *ws = thread_ws(s, thread);
    float *col = ws, *dcol = ws + s->k * s->p, *gs = ws + align16((size_t)(2 * s->k * s->p));
    float *pdw = chunk_partial(s, chunk), *pdb = pdw + s->cout * s->k;
    int64_t i0 = chunk * s->n / s->chunks, i1 = (chunk + 1) * s->n / s->chunks;
    int pointwise = is_pointwise(s->kh, s->kw, s->stride, s->pad);
    if (s->db) memset(pdb, 0, (size_t)s->cout * sizeof(float));
    for (int64_t img = i0; img < i1; img++) {
        const float *xn = s->x + img * s->c * s->h * s->w;
        const float *dyn = s->dy + img * s->cout * s->p;
        if (s->dw) {
            /* dW^T (K x Cout) += col_n (K x P) dy_n^T (P x Cout), col_n packed straight from the image */
            mml_im2col_src src = {xn, s->c, s->h, s->w, s->kh, s->kw, s->stride, s->pad, s->oh, s->ow};
            mml_nn_matrix xm = {xn, s->p, 0}, dym = {dyn, s->p, 1};
            mml_nn_sgemm_packed(s->k, s->cout, s->p, 1.0f, pointwise ? mml_nn_pack_a_matrix : mml_im2col_pack_a,
                                pointwise ? (const void *)&xm : (const void *)&src, mml_nn_pack_b_matrix, &dym,
                                img == i0 ? 0.0f : 1.0f, pdw, s->cout, gs);
        }
        if (s->db)
            for (int64_t o = 0; o < s->cout; o++) {
                const float *r = dyn + o * s->p;
                float acc = 0.0f;
                for (int64_t q = 0; q < s->p; q++) acc += r[q];
                pdb[o] += acc;
            }
        if (s->dx) {
            float *dxn = s->dx + img * s->c * s->h * s->w;
            /* dcol (K x P) = W^T (K x Cout) dy_n (Cout x P), then scattered back to the image */
            float *target = pointwise ? dxn : dcol;
            mml_nn_sgemm(1, 0, s->k, s->p, s->cout, 1.0f, s->wt, s->k, dyn, s->p, 0.0f, target, s->p, gs);
            if (!pointwise) mml_col2im_f32(dxn, dcol, s->c, s->h, s->w, s->kh, s->kw, s->stride, s->pad);
        }
    }
}

int mml_conv2d_backward_f32(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                            const float *weight, int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout,
                            int64_t kh, int64_t kw, int64_t stride, int64_t pad, float *workspace,
                            int64_t workspace_floats, int32_t nthreads) {
    if (!dy || !x || !weight || !conv_dims_ok(n, c, h, w, cout, kh, kw, stride, pad)) return MML_ERR_ARGUMENT;
    int64_t need = mml_conv2d_workspace_floats(n, c, h, w, cout, kh, kw, stride, pad, nthreads);
    float *owned;
    int ws = mml_nn_acquire_workspace(&workspace, &owned, workspace_floats, need);
    if (ws != MML_OK) return ws;
    conv_ctx s = make_ctx(n, c, h, w, cout, kh, kw, stride, pad, workspace);
    s.dx = dx; s.dw = dweight; s.db = dbias; s.dy = dy; s.x = x; s.wt = weight;
    mml_parallel_for(s.chunks, nthreads, conv_bwd_task, &s);
    /* partials summed in chunk order: the same bits for any thread count */
    for (int64_t ch = 0; ch < s.chunks; ch++) {
        const float *pdw = chunk_partial(&s, ch), *pdb = pdw + cout * s.k;
        if (dweight) /* the partials hold dW^T (K x Cout) */
            for (int64_t o = 0; o < cout; o++)
                for (int64_t i = 0; i < s.k; i++) dweight[o * s.k + i] += pdw[i * cout + o];
        if (dbias)
            for (int64_t o = 0; o < cout; o++) dbias[o] += pdb[o];
    }
    free(owned);
    return MML_OK;
}

int mml_conv2d_naive(double *y, const float *x, const float *weight, const float *bias, int64_t n, int64_t c,
                     int64_t h, int64_t w, int64_t cout, int64_t kh, int64_t kw, int64_t stride, int64_t pad) {
    if (!y || !x || !weight || !conv_dims_ok(n, c, h, w, cout, kh, kw, stride, pad)) return MML_ERR_ARGUMENT;
    int64_t oh = (h + 2 * pad - kh) / stride + 1, ow = (w + 2 * pad - kw) / stride + 1;
    for (int64_t b = 0; b < n; b++)
        for (int64_t o = 0; o < cout; o++)
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    double acc = bias ? bias[o] : 0.0;
                    for (int64_t ch = 0; ch < c; ch++)
                        for (int64_t i = 0; i < kh; i++)
                            for (int64_t j = 0; j < kw; j++) {
                                int64_t iy = oy * stride - pad + i, ix = ox * stride - pad + j;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                acc += (double)x[((b * c + ch) * h + iy) * w + ix] *
                                       (double)weight[((o * c + ch) * kh + i) * kw + j];
                            }
                    y[((b * cout + o) * oh + oy) * ow + ox] = acc;
                }
    return MML_OK;
}

int mml_conv2d_backward_naive(double *dx, double *dweight, double *dbias, const float *dy, const float *x,
                              const float *weight, int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout,
                              int64_t kh, int64_t kw, int64_t stride, int64_t pad) {
    if (!dy || !x || !weight || !conv_dims_ok(n, c, h, w, cout, kh, kw, stride, pad)) return MML_ERR_ARGUMENT;
    int64_t oh = (h + 2 * pad - kh) / stride + 1, ow = (w + 2 * pad - kw) / stride + 1;
    if (dx) memset(dx, 0, (size_t)(n * c * h * w) * sizeof(double));
    if (dweight) memset(dweight, 0, (size_t)(cout * c * kh * kw) * sizeof(double));
    if (dbias) memset(dbias, 0, (size_t)cout * sizeof(double));
    for (int64_t b = 0; b < n; b++)
        for (int64_t o = 0; o < cout; o++)
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    double g = dy[((b * cout + o) * oh + oy) * ow + ox];
                    if (dbias) dbias[o] += g;
                    for (int64_t ch = 0; ch < c; ch++)
                        for (int64_t i = 0; i < kh; i++)
                            for (int64_t j = 0; j < kw; j++) {
                                int64_t iy = oy * stride - pad + i, ix = ox * stride - pad + j;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                int64_t xi = ((b * c + ch) * h + iy) * w + ix, wi = ((o * c + ch) * kh + i) * kw + j;
                                if (dx) dx[xi] += g * (double)weight[wi];
                                if (dweight) dweight[wi] += g * (double)x[xi];
                            }
                }
    return MML_OK;
}
