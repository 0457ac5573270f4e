/* Training-mode BatchNorm -> leaky ReLU -> 2x2 / stride-2 max-pool, fused (the Conv-64F / Conv-4 block tail).
 *
 * Forward: one pass reads the conv output x and writes only the pooled map and the argmax indices; the full-size
 * activation is never stored (at 84x84x64 it is 1.8 MB per image). Backward: the pooled gradient reaches one
 * position per window, so the BatchNorm sums (sum g, sum g xhat) need only those positions, and
 *     dx = gamma invstd (g_scattered - mean(g) - xhat mean(g xhat))
 * is written in one pass with the scattered term added at the argmax positions: the full-size gradient of the
 * activation is never stored either. Per-plane sums run in 16 lanes folded in a fixed tree (AVX-512 with gathers and
 * scatters, or portable C: the same bits), then in double over images in order; channels are the parallel unit,
 * so results do not depend on the thread count. The activation's sign at an argmax position is
 * the sign of the pooled value there. */
#include "MMLKernels.h"
#include "nn_internal.h"
#include <stdatomic.h>
/* a * x + b rounded twice, as the unfused affine kernel: the same pooled values on every path */
#pragma STDC FP_CONTRACT OFF
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef struct {
    float *y, *dx, *dgamma, *dbeta;
    int32_t *arg;
    const float *x, *dy, *pooled, *scale, *shift, *mean, *invstd, *gamma;
    const int32_t *carg;
    int64_t n, c, h, w, oh, ow;
    float slope;
    int32_t batch_stats;
    _Atomic int bad;
} bnp_ctx;

static inline float act(float v, float a, float b, float slope) {
    float z = a * v + b;
    return z > 0.0f ? z : slope * z;
}

/* The max-pool tie rule (strict >: the first maximum wins; the first NaN wins and stays). */
static inline void bnp_take(float v, int32_t vi, float *best, int32_t *bi) {
    int take = (v > *best) | ((v != v) & (*best == *best));
    *best = take ? v : *best;
    *bi = take ? vi : *bi;
}

#define BNP_INLINE static inline __attribute__((always_inline))
BNP_INLINE void bnp_rows(const float *x, float *y, int32_t *arg, int64_t w, int64_t ow, int64_t oh, int64_t ox0,
                         float a, float b, float slope) {
    for (int64_t oy = 0; oy < oh; oy++) {
        const float *r0 = x + 2 * oy * w, *r1 = r0 + w;
        for (int64_t ox = ox0; ox < ow; ox++) {
            int32_t i0 = (int32_t)(2 * oy * w + 2 * ox);
            float best = act(r0[2 * ox], a, b, slope);
            int32_t bi = i0;
            bnp_take(act(r0[2 * ox + 1], a, b, slope), i0 + 1, &best, &bi);
            bnp_take(act(r1[2 * ox], a, b, slope), i0 + (int32_t)w, &best, &bi);
            bnp_take(act(r1[2 * ox + 1], a, b, slope), i0 + (int32_t)w + 1, &best, &bi);
            y[oy * ow + ox] = best;
            if (arg) arg[oy * ow + ox] = bi;
        }
    }
}

#if defined(__x86_64__)
#include "pool2x2_avx512.h"
/* The portable bodies compiled for AVX2 + FMA (CPUs without AVX-512; no contraction in this file, so the same bits). */
#define BNP_AVX2 __attribute__((target("avx2,fma")))
BNP_AVX2 static void bnp_rows_avx2(const float *x, float *y, int32_t *arg, int64_t w, int64_t ow, int64_t oh,
                                   int64_t ox0, float a, float b, float slope) {
    bnp_rows(x, y, arg, w, ow, oh, ox0, a, b, slope);
}
#endif

void mml_nn_affine_leaky_pool2x2_plane(const float *x, float *y, int32_t *arg, int64_t h, int64_t w, float a,
                                       float b, float slope) {
#if defined(__x86_64__)
    if (mml_nn_have_avx512()) {
        pool2x2_plane_avx512(x, y, arg, w, h / 2, w / 2, 1, a, b, slope);
        return;
    }
    if (mml_nn_have_avx2()) {
        bnp_rows_avx2(x, y, arg, w, w / 2, h / 2, 0, a, b, slope);
        return;
    }
#endif
    bnp_rows(x, y, arg, w, w / 2, h / 2, 0, a, b, slope);
}

static void bnp_fwd_task(void *ctx, int64_t plane, int thread) {
    (void)thread;
    bnp_ctx *s = (bnp_ctx *)ctx;
    int64_t ch = plane % s->c;
    const float *x = s->x + plane * s->h * s->w;
    float *y = s->y + plane * s->oh * s->ow;
    int32_t *arg = s->arg ? s->arg + plane * s->oh * s->ow : NULL;
#if defined(__x86_64__)
    if (mml_nn_have_avx512()) {
        pool2x2_plane_avx512(x, y, arg, s->w, s->oh, s->ow, 1, s->scale[ch], s->shift[ch], s->slope);
        return;
    }
    if (mml_nn_have_avx2()) {
        bnp_rows_avx2(x, y, arg, s->w, s->ow, s->oh, 0, s->scale[ch], s->shift[ch], s->slope);
        return;
    }
#endif
    bnp_rows(x, y, arg, s->w, s->ow, s->oh, 0, s->scale[ch], s->shift[ch], s->slope);
}

int mml_affine_leaky_maxpool2x2_f32(float *y, int32_t *argmax, const float *x, const float *scale, const float *shift,
                                    int64_t n, int64_t c, int64_t h, int64_t w, float slope, int32_t nthreads) {
    if (!y || !x || !scale || !shift || n <= 0 || c <= 0 || h < 2 || w < 2) return MML_ERR_ARGUMENT;
    bnp_ctx s;
    memset(&s, 0, sizeof(s));
    s.y = y; s.arg = argmax; s.x = x; s.scale = scale; s.shift = shift;
    s.n = n; s.c = c; s.h = h; s.w = w; s.oh = h / 2; s.ow = w / 2; s.slope = slope;
    mml_parallel_for(n * c, nthreads, bnp_fwd_task, &s);
    return MML_OK;
}

/* One plane's sums over the argmax positions: p1 = sum g, p2 = sum g (x[argmax] - mu), g = dy leaky'(pooled), each
 * in 16 lanes (lane l takes the pooled positions = l mod 16) folded by mml_nn_fold16; both paths do the same
 * roundings in the same order (a multiply, then an add). Returns 1 for an argmax outside the plane. */
BNP_INLINE int bnp_sums_portable(const float *dy, const float *pv, const int32_t *idx, const float *x, int64_t ohw,
                                 int64_t hw, float mu, float slope, float *p1, float *p2) {
    float a1[16] = {0}, a2[16] = {0};
    for (int64_t i0 = 0; i0 < ohw; i0 += 16) {
        int64_t len = ohw - i0 < 16 ? ohw - i0 : 16;
        for (int64_t l = 0; l < len; l++) {
            int32_t j = idx[i0 + l];
            if (j < 0 || j >= hw) return 1;
            float gi = pv[i0 + l] > 0.0f ? dy[i0 + l] : slope * dy[i0 + l];
            a1[l] += gi;
            a2[l] += gi * (x[j] - mu);
        }
    }
    *p1 = mml_nn_fold16(a1);
    *p2 = mml_nn_fold16(a2);
    return 0;
}

/* dx (one plane) = c0 + c1 x with batch statistics, 0 with fixed ones; then dx[argmax] += k0 g. */
BNP_INLINE void bnp_dx_portable(float *dx, const float *dy, const float *pv, const int32_t *idx, const float *x,
                                int64_t ohw, int64_t hw, float c0, float c1, float k0, float slope,
                                int32_t batch_stats) {
    if (batch_stats) {
        for (int64_t i = 0; i < hw; i++) dx[i] = c0 + c1 * x[i];
    } else {
        memset(dx, 0, (size_t)hw * sizeof(float));
    }
    for (int64_t i = 0; i < ohw; i++) dx[idx[i]] += k0 * (pv[i] > 0.0f ? dy[i] : slope * dy[i]);
}

#if defined(__x86_64__)
/* The portable bodies compiled for AVX2 + FMA (bnp_rows_avx2 above). */
BNP_AVX2 static int bnp_sums_avx2(const float *dy, const float *pv, const int32_t *idx, const float *x, int64_t ohw,
                                  int64_t hw, float mu, float slope, float *p1, float *p2) {
    return bnp_sums_portable(dy, pv, idx, x, ohw, hw, mu, slope, p1, p2);
}
BNP_AVX2 static void bnp_dx_avx2(float *dx, const float *dy, const float *pv, const int32_t *idx, const float *x,
                                 int64_t ohw, int64_t hw, float c0, float c1, float k0, float slope,
                                 int32_t batch_stats) {
    bnp_dx_portable(dx, dy, pv, idx, x, ohw, hw, c0, c1, k0, slope, batch_stats);
}
#endif

#if defined(__x86_64__)
#define BNP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

static inline __mmask16 bnp_mask(int64_t left) {
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
}

/* The same sums: the x values are gathered at the argmax positions. */
BNP_AVX512 static int bnp_sums_avx512(const float *dy, const float *pv, const int32_t *idx, const float *x,
                                      int64_t ohw, int64_t hw, float mu, float slope, float *p1, float *p2) {
    __m512 a1 = _mm512_setzero_ps(), a2 = a1, zero = a1, vmu = _mm512_set1_ps(mu), vsl = _mm512_set1_ps(slope);
    __m512i vhw = _mm512_set1_epi32((int32_t)hw);
    for (int64_t i0 = 0; i0 < ohw; i0 += 16) {
        __mmask16 k = bnp_mask(ohw - i0);
        __m512i j = _mm512_maskz_loadu_epi32(k, idx + i0);
        if (_mm512_mask_cmpge_epu32_mask(k, j, vhw)) return 1; /* unsigned: negatives too */
        __m512 d = _mm512_maskz_loadu_ps(k, dy + i0), p = _mm512_maskz_loadu_ps(k, pv + i0);
        __m512 g = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(p, zero, _CMP_GT_OQ), _mm512_mul_ps(vsl, d), d);
        __m512 xv = _mm512_mask_i32gather_ps(zero, k, j, x, 4);
        a1 = _mm512_mask_add_ps(a1, k, a1, g);
        a2 = _mm512_mask_add_ps(a2, k, a2, _mm512_mul_ps(g, _mm512_sub_ps(xv, vmu)));
    }
    float t[16];
    _mm512_storeu_ps(t, a1);
    *p1 = mml_nn_fold16(t);
    _mm512_storeu_ps(t, a2);
    *p2 = mml_nn_fold16(t);
    return 0;
}

/* The same dx: the window positions' indices are distinct, so the scattered term is a gather, add, scatter. */
BNP_AVX512 static void bnp_dx_avx512(float *dx, const float *dy, const float *pv, const int32_t *idx, const float *x,
                                     int64_t ohw, int64_t hw, float c0, float c1, float k0, float slope,
                                     int32_t batch_stats) {
    __m512 zero = _mm512_setzero_ps(), vc0 = _mm512_set1_ps(c0), vc1 = _mm512_set1_ps(c1);
    __m512 vk0 = _mm512_set1_ps(k0), vsl = _mm512_set1_ps(slope);
    for (int64_t i = 0; i < hw; i += 16) {
        __mmask16 k = bnp_mask(hw - i);
        __m512 v = batch_stats ? _mm512_add_ps(vc0, _mm512_mul_ps(vc1, _mm512_maskz_loadu_ps(k, x + i))) : zero;
        _mm512_mask_storeu_ps(dx + i, k, v);
    }
    for (int64_t i0 = 0; i0 < ohw; i0 += 16) {
        __mmask16 k = bnp_mask(ohw - i0);
        __m512i j = _mm512_maskz_loadu_epi32(k, idx + i0);
        __m512 d = _mm512_maskz_loadu_ps(k, dy + i0), p = _mm512_maskz_loadu_ps(k, pv + i0);
        __m512 g = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(p, zero, _CMP_GT_OQ), _mm512_mul_ps(vsl, d), d);
        __m512 cur = _mm512_mask_i32gather_ps(zero, k, j, dx, 4);
        _mm512_mask_i32scatter_ps(dx, k, j, _mm512_add_ps(cur, _mm512_mul_ps(vk0, g)), 4);
    }
}
#endif

static void bnp_bwd_task(void *ctx, int64_t ch, int thread) {
    (void)thread;
    bnp_ctx *s = (bnp_ctx *)ctx;
    int64_t hw = s->h * s->w, ohw = s->oh * s->ow;
    float mu = s->mean[ch], is = s->invstd[ch], g = s->gamma ? s->gamma[ch] : 1.0f, slope = s->slope;
    int avx512 = 0, avx2 = 0;
#if defined(__x86_64__)
    avx512 = mml_nn_have_avx512();
    avx2 = !avx512 && mml_nn_have_avx2();
#endif
    /* sums over the argmax positions of g = dy * leaky'(activation), per plane, then over images in double */
    double sdy = 0, sdyx = 0;
    for (int64_t b = 0; b < s->n; b++) {
        int64_t pl = b * s->c + ch;
        const float *dy = s->dy + pl * ohw, *pv = s->pooled + pl * ohw, *x = s->x + pl * hw;
        const int32_t *idx = s->carg + pl * ohw;
        float p1, p2;
        int bad;
#if defined(__x86_64__)
        if (avx512)
            bad = bnp_sums_avx512(dy, pv, idx, x, ohw, hw, mu, slope, &p1, &p2);
        else if (avx2)
            bad = bnp_sums_avx2(dy, pv, idx, x, ohw, hw, mu, slope, &p1, &p2);
        else
#endif
            bad = bnp_sums_portable(dy, pv, idx, x, ohw, hw, mu, slope, &p1, &p2);
        if (bad) {
            s->bad = 1;
            return;
        }
        sdy += p1;
        sdyx += p2;
    }
    mml_nn_bn_grad gr = mml_nn_bn_backward_channel(sdy, sdyx, is, g, (double)(s->n * hw), s->batch_stats,
                                                   s->dgamma ? s->dgamma + ch : NULL, s->dbeta ? s->dbeta + ch : NULL);
    if (!s->dx) return;
    float k0 = gr.k0, mdy = gr.mdy, mdyx = gr.mdyx;
    /* dx = k0 (scattered g - mdy - xhat mdyx) = c0 + c1 x + k0 scattered g */
    float c1 = -k0 * is * mdyx, c0 = -k0 * mdy - c1 * mu;
    for (int64_t b = 0; b < s->n; b++) {
        int64_t pl = b * s->c + ch;
        const float *x = s->x + pl * hw, *dy = s->dy + pl * ohw, *pv = s->pooled + pl * ohw;
        const int32_t *idx = s->carg + pl * ohw;
        float *dx = s->dx + pl * hw;
#if defined(__x86_64__)
        if (avx512) {
            bnp_dx_avx512(dx, dy, pv, idx, x, ohw, hw, c0, c1, k0, slope, s->batch_stats);
            continue;
        }
        if (avx2) {
            bnp_dx_avx2(dx, dy, pv, idx, x, ohw, hw, c0, c1, k0, slope, s->batch_stats);
            continue;
        }
#endif
        bnp_dx_portable(dx, dy, pv, idx, x, ohw, hw, c0, c1, k0, slope, s->batch_stats);
    }
}

int mml_maxpool_leaky_batchnorm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *dy,
                                             const int32_t *argmax, const float *pooled, const float *x,
                                             const float *mean, const float *invstd, const float *gamma, int64_t n,
                                             int64_t c, int64_t h, int64_t w, float slope, int32_t batch_stats,
                                             int32_t nthreads) {
    if (!dy || !argmax || !pooled || !x || !mean || !invstd || n <= 0 || c <= 0 || h < 2 || w < 2)
        return MML_ERR_ARGUMENT;
    bnp_ctx s;
    memset(&s, 0, sizeof(s));
    s.dx = dx; s.dgamma = dgamma; s.dbeta = dbeta; s.dy = dy; s.carg = argmax; s.pooled = pooled; s.x = x;
    s.mean = mean; s.invstd = invstd; s.gamma = gamma;
    s.n = n; s.c = c; s.h = h; s.w = w; s.oh = h / 2; s.ow = w / 2; s.slope = slope; s.batch_stats = batch_stats;
    mml_parallel_for(c, nthreads, bnp_bwd_task, &s);
    return s.bad ? MML_ERR_ARGUMENT : MML_OK;
}
