/* BatchNorm, LeakyReLU / ReLU, max / average pooling for NCHW maps: forward and backward.
 *
 * Per-channel reductions are computed channel by channel (each in double, over images in order), and
 * channels / planes are the unit of parallel work, so results never depend on the thread count. */
#include "MMLKernels.h"
#include "nn_internal.h"
#include <math.h>
#include <stdatomic.h>
#include <string.h>

/* ------------------------------------------------------------------ batch statistics */

typedef struct {
    float *mean, *var, *y, *dx, *dgamma, *dbeta;
    const float *x, *dy, *scale, *shift, *mu, *invstd, *gamma;
    int64_t n, c, hw;
    float slope;
    int32_t act, batch_stats;
} bn_ctx;

static void bn_stats_task(void *ctx, int64_t ch, int thread) {
    (void)thread;
    bn_ctx *s = (bn_ctx *)ctx;
    /* one pass, shifted by a sample value k of the channel (no cancellation when the mean is far from 0):
     * mean = k + sum(x - k) / count,  var = sum (x - k)^2 / count - (mean - k)^2;
     * per-plane partials from the vectorised reduction, accumulated in double over images in order */
    const float k = s->x[ch * s->hw];
    double sum = 0, ss = 0;
    for (int64_t b = 0; b < s->n; b++) {
        float p1, p2;
        mml_nn_reduce(s->x + (b * s->c + ch) * s->hw, NULL, s->hw, k, &p1, &p2);
        sum += p1;
        ss += p2;
    }
    double count = (double)(s->n * s->hw);
    double d = sum / count - (double)k;
    double var = ss / count - d * d;
    s->mean[ch] = (float)((double)k + d);
    s->var[ch] = (float)(var > 0 ? var : 0);
}

int mml_batchnorm_stats_f32(float *mean, float *var, const float *x, int64_t n, int64_t c, int64_t hw,
                            int32_t nthreads) {
    if (!mean || !var || !x || n <= 0 || c <= 0 || hw <= 0) return MML_ERR_ARGUMENT;
    bn_ctx s = {0};
    s.mean = mean; s.var = var; s.x = x; s.n = n; s.c = c; s.hw = hw;
    mml_parallel_for(c, nthreads, bn_stats_task, &s);
    return MML_OK;
}

int mml_batchnorm_stats_naive(double *mean, double *var, const float *x, int64_t n, int64_t c, int64_t hw) {
    if (!mean || !var || !x || n <= 0 || c <= 0 || hw <= 0) return MML_ERR_ARGUMENT;
    for (int64_t ch = 0; ch < c; ch++) {
        double sum = 0, ss = 0;
        for (int64_t b = 0; b < n; b++)
            for (int64_t i = 0; i < hw; i++) sum += x[(b * c + ch) * hw + i];
        double mu = sum / (double)(n * hw);
        for (int64_t b = 0; b < n; b++)
            for (int64_t i = 0; i < hw; i++) {
                double d = x[(b * c + ch) * hw + i] - mu;
                ss += d * d;
            }
        mean[ch] = mu;
        var[ch] = ss / (double)(n * hw);
    }
    return MML_OK;
}

/* ------------------------------------------------------------------ affine + activation */

static void affine_task(void *ctx, int64_t plane, int thread) {
    (void)thread;
    bn_ctx *s = (bn_ctx *)ctx;
    int64_t ch = plane % s->c;
    float a = s->scale[ch], b = s->shift[ch], slope = s->slope;
    const float *x = s->x + plane * s->hw;
    float *y = s->y + plane * s->hw;
    if (s->act) {
        for (int64_t i = 0; i < s->hw; i++) {
            float v = a * x[i] + b;
            y[i] = v > 0.0f ? v : slope * v;
        }
    } else {
        for (int64_t i = 0; i < s->hw; i++) y[i] = a * x[i] + b;
    }
}

int mml_channel_affine_f32(float *y, const float *x, const float *scale, const float *shift, int64_t n, int64_t c,
                           int64_t hw, int32_t activation, float slope, int32_t nthreads) {
    if (!y || !x || !scale || !shift || n <= 0 || c <= 0 || hw <= 0) return MML_ERR_ARGUMENT;
    bn_ctx s = {0};
    s.y = y; s.x = x; s.scale = scale; s.shift = shift; s.n = n; s.c = c; s.hw = hw;
    s.act = activation; s.slope = slope;
    mml_parallel_for(n * c, nthreads, affine_task, &s);
    return MML_OK;
}

/* ------------------------------------------------------------------ batchnorm backward */

static void bn_bwd_task(void *ctx, int64_t ch, int thread) {
    (void)thread;
    bn_ctx *s = (bn_ctx *)ctx;
    float mu = s->mu[ch], is = s->invstd[ch], g = s->gamma ? s->gamma[ch] : 1.0f;
    /* xhat = (x - mu) * invstd; dbeta = sum dy; dgamma = sum dy * xhat */
    double sdy = 0, sdyx = 0;
    for (int64_t b = 0; b < s->n; b++) {
        float p1, p2;
        mml_nn_reduce(s->dy + (b * s->c + ch) * s->hw, s->x + (b * s->c + ch) * s->hw, s->hw, mu, &p1, &p2);
        sdy += p1;
        sdyx += p2;
    }
    /* batch statistics: dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat));
     * fixed statistics: dx = gamma * invstd * dy */
    mml_nn_bn_grad gr = mml_nn_bn_backward_channel(sdy, sdyx, is, g, (double)(s->n * s->hw), s->batch_stats,
                                                   s->dgamma ? s->dgamma + ch : NULL, s->dbeta ? s->dbeta + ch : NULL);
    if (!s->dx) return;
    float k0 = gr.k0, mdy = gr.mdy, mdyx = gr.mdyx;
    for (int64_t b = 0; b < s->n; b++) {
        const float *x = s->x + (b * s->c + ch) * s->hw, *dy = s->dy + (b * s->c + ch) * s->hw;
        float *dx = s->dx + (b * s->c + ch) * s->hw;
        for (int64_t i = 0; i < s->hw; i++) {
            float xh = (x[i] - mu) * is;
            dx[i] = k0 * (dy[i] - mdy - xh * mdyx);
        }
    }
}

int mml_batchnorm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                               const float *mean, const float *invstd, const float *gamma, int64_t n, int64_t c,
                               int64_t hw, int32_t batch_stats, int32_t nthreads) {
    if (!dy || !x || !mean || !invstd || n <= 0 || c <= 0 || hw <= 0) return MML_ERR_ARGUMENT;
    bn_ctx s = {0};
    s.dx = dx; s.dgamma = dgamma; s.dbeta = dbeta; s.dy = dy; s.x = x; s.mu = mean; s.invstd = invstd;
    s.gamma = gamma; s.n = n; s.c = c; s.hw = hw; s.batch_stats = batch_stats;
    mml_parallel_for(c, nthreads, bn_bwd_task, &s);
    return MML_OK;
}

/* ------------------------------------------------------------------ activations */

/* Elementwise loops split into fixed 64K-element chunks over two threads when large (memory-bound passes). */
#define EW_CHUNK 65536
typedef struct {
    float *out;
    const float *a, *b;
    int64_t count;
    float slope;
} ew_ctx;

static void leaky_task(void *ctx, int64_t chunk, int thread) {
    (void)thread;
    ew_ctx *s = (ew_ctx *)ctx;
    int64_t i0 = chunk * EW_CHUNK, i1 = i0 + EW_CHUNK < s->count ? i0 + EW_CHUNK : s->count;
    const float *x = s->a;
    float *y = s->out, sl = s->slope;
    for (int64_t i = i0; i < i1; i++) y[i] = x[i] > 0.0f ? x[i] : sl * x[i];
}

static void leaky_bwd_task(void *ctx, int64_t chunk, int thread) {
    (void)thread;
    ew_ctx *s = (ew_ctx *)ctx;
    int64_t i0 = chunk * EW_CHUNK, i1 = i0 + EW_CHUNK < s->count ? i0 + EW_CHUNK : s->count;
    const float *dy = s->a, *x = s->b;
    float *dx = s->out, sl = s->slope;
    for (int64_t i = i0; i < i1; i++) dx[i] = x[i] > 0.0f ? dy[i] : sl * dy[i];
}

static int ew_threads(int64_t count) { return count >= 4 * EW_CHUNK ? 0 : 1; }

int mml_leaky_relu_f32(float *y, const float *x, int64_t count, float slope) {
    if (!y || !x || count < 0) return MML_ERR_ARGUMENT;
    ew_ctx s = {y, x, NULL, count, slope};
    mml_parallel_for((count + EW_CHUNK - 1) / EW_CHUNK, ew_threads(count), leaky_task, &s);
    return MML_OK;
}

int mml_leaky_relu_backward_f32(float *dx, const float *dy, const float *x, int64_t count, float slope) {
    if (!dx || !dy || !x || count < 0) return MML_ERR_ARGUMENT;
    ew_ctx s = {dx, dy, x, count, slope};
    mml_parallel_for((count + EW_CHUNK - 1) / EW_CHUNK, ew_threads(count), leaky_bwd_task, &s);
    return MML_OK;
}

/* ------------------------------------------------------------------ pooling (no padding, floor mode) */

typedef struct {
    float *y, *dx;
    int32_t *arg;
    const float *x, *dy;
    const int32_t *carg;
    int64_t h, w, oh, ow, k, stride;
} pool_ctx;

/* One step of the window scan: take v (at index vi) when it beats the best so far, with the same rule as the
 * generic loop (strict >, so ties keep the first; the first NaN wins and then stays). Branch-free. */
static inline void pool_take(float v, int32_t vi, float *best, int32_t *bi) {
    int take = (v > *best) | ((v != v) & (*best == *best));
    *best = take ? v : *best;
    *bi = take ? vi : *bi;
}

/* 2x2 windows with stride 2 for output rows [oy0, oy1) of one plane, outputs [ox0, ow). */
static void maxpool2x2_rows(const float *x, float *y, int32_t *arg, int64_t w, int64_t ow, int64_t oy0, int64_t oy1,
                            int64_t ox0) {
    for (int64_t oy = oy0; oy < oy1; oy++) {
        const float *r0 = x + 2 * oy * w, *r1 = r0 + w;
        for (int64_t ox = ox0; ox < ow; ox++) {
            int32_t i0 = (int32_t)(2 * oy * w + 2 * ox);
            float best = r0[2 * ox];
            int32_t bi = i0;
            pool_take(r0[2 * ox + 1], i0 + 1, &best, &bi);
            pool_take(r1[2 * ox], i0 + (int32_t)w, &best, &bi);
            pool_take(r1[2 * ox + 1], i0 + (int32_t)w + 1, &best, &bi);
            y[oy * ow + ox] = best;
            if (arg) arg[oy * ow + ox] = bi;
        }
    }
}

#if defined(__x86_64__)
#include "pool2x2_avx512.h"
#endif

static void maxpool_task(void *ctx, int64_t plane, int thread) {
    (void)thread;
    pool_ctx *s = (pool_ctx *)ctx;
    const float *x = s->x + plane * s->h * s->w;
    float *y = s->y + plane * s->oh * s->ow;
    int32_t *arg = s->arg ? s->arg + plane * s->oh * s->ow : NULL;
    if (s->k == 2 && s->stride == 2) {
#if defined(__x86_64__)
        if (mml_nn_have_avx512()) {
            pool2x2_plane_avx512(x, y, arg, s->w, s->oh, s->ow, 0, 0.0f, 0.0f, 0.0f);
            return;
        }
#endif
        maxpool2x2_rows(x, y, arg, s->w, s->ow, 0, s->oh, 0);
        return;
    }
    for (int64_t oy = 0; oy < s->oh; oy++)
        for (int64_t ox = 0; ox < s->ow; ox++) {
            int64_t best = oy * s->stride * s->w + ox * s->stride;
            float bv = x[best];
            for (int64_t i = 0; i < s->k; i++)
                for (int64_t j = 0; j < s->k; j++) {
                    int64_t idx = (oy * s->stride + i) * s->w + ox * s->stride + j;
                    /* strict > keeps the first maximum on ties; a NaN propagates as in PyTorch */
                    if (x[idx] > bv || (x[idx] != x[idx] && bv == bv)) {
                        bv = x[idx];
                        best = idx;
                    }
                }
            y[oy * s->ow + ox] = bv;
            if (arg) arg[oy * s->ow + ox] = (int32_t)best;
        }
}

int mml_maxpool2d_f32(float *y, int32_t *argmax, const float *x, int64_t planes, int64_t h, int64_t w, int64_t k,
                      int64_t stride, int32_t nthreads) {
    if (!y || !x || planes <= 0 || k <= 0 || stride <= 0 || h < k || w < k) return MML_ERR_ARGUMENT;
    pool_ctx s = {0};
    s.y = y; s.arg = argmax; s.x = x; s.h = h; s.w = w; s.k = k; s.stride = stride;
    s.oh = (h - k) / stride + 1;
    s.ow = (w - k) / stride + 1;
    mml_parallel_for(planes, nthreads, maxpool_task, &s);
    return MML_OK;
}

typedef struct {
    float *dx;
    const float *dy;
    const int32_t *arg;
    int64_t hw, ohw;
    _Atomic int bad;
} mpb_ctx;

static void maxpool_bwd_task(void *ctx, int64_t p, int thread) {
    (void)thread;
    mpb_ctx *s = (mpb_ctx *)ctx;
    float *d = s->dx + p * s->hw;
    const float *g = s->dy + p * s->ohw;
    const int32_t *a = s->arg + p * s->ohw;
    memset(d, 0, (size_t)s->hw * sizeof(float));
    for (int64_t i = 0; i < s->ohw; i++) {
        if (a[i] < 0 || a[i] >= s->hw) {
            s->bad = 1;
            return;
        }
        d[a[i]] += g[i];
    }
}

int mml_maxpool2d_backward_f32(float *dx, const float *dy, const int32_t *argmax, int64_t planes, int64_t h,
                               int64_t w, int64_t oh, int64_t ow) {
    if (!dx || !dy || !argmax || planes <= 0 || h <= 0 || w <= 0 || oh <= 0 || ow <= 0) return MML_ERR_ARGUMENT;
    mpb_ctx s = {dx, dy, argmax, h * w, oh * ow, 0};
    mml_parallel_for(planes, planes * h * w >= 4 * 65536 ? 0 : 1, maxpool_bwd_task, &s);
    return s.bad ? MML_ERR_ARGUMENT : MML_OK;
}

int mml_avgpool2d_f32(float *y, const float *x, int64_t planes, int64_t h, int64_t w, int64_t k, int64_t stride) {
    if (!y || !x || planes <= 0 || k <= 0 || stride <= 0 || h < k || w < k) return MML_ERR_ARGUMENT;
    int64_t oh = (h - k) / stride + 1, ow = (w - k) / stride + 1;
    float inv = 1.0f / (float)(k * k);
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * h * w;
        float *yp = y + p * oh * ow;
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                float acc = 0.0f;
                for (int64_t i = 0; i < k; i++)
                    for (int64_t j = 0; j < k; j++) acc += xp[(oy * stride + i) * w + ox * stride + j];
                yp[oy * ow + ox] = acc * inv;
            }
    }
    return MML_OK;
}

int mml_avgpool2d_backward_f32(float *dx, const float *dy, int64_t planes, int64_t h, int64_t w, int64_t k,
                               int64_t stride) {
    if (!dx || !dy || planes <= 0 || k <= 0 || stride <= 0 || h < k || w < k) return MML_ERR_ARGUMENT;
    int64_t oh = (h - k) / stride + 1, ow = (w - k) / stride + 1;
    float inv = 1.0f / (float)(k * k);
    memset(dx, 0, (size_t)(planes * h * w) * sizeof(float));
    for (int64_t p = 0; p < planes; p++) {
        float *dp = dx + p * h * w;
        const float *g = dy + p * oh * ow;
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                float v = g[oy * ow + ox] * inv;
                for (int64_t i = 0; i < k; i++)
                    for (int64_t j = 0; j < k; j++) dp[(oy * stride + i) * w + ox * stride + j] += v;
            }
    }
    return MML_OK;
}

/* ------------------------------------------------------------------ fused max-pool + leaky ReLU backward */

typedef struct {
    float *dz;
    const float *dy, *a;
    const int32_t *arg;
    int64_t hw, ohw;
    float slope;
    _Atomic int bad;
} mplb_ctx;

static void maxpool_leaky_bwd_task(void *ctx, int64_t p, int thread) {
    (void)thread;
    mplb_ctx *s = (mplb_ctx *)ctx;
    float *d = s->dz + p * s->hw;
    const float *g = s->dy + p * s->ohw, *a = s->a + p * s->hw;
    const int32_t *idx = s->arg + p * s->ohw;
    memset(d, 0, (size_t)s->hw * sizeof(float));
    for (int64_t i = 0; i < s->ohw; i++) {
        int32_t j = idx[i];
        if (j < 0 || j >= s->hw) {
            s->bad = 1;
            return;
        }
        d[j] += a[j] > 0.0f ? g[i] : s->slope * g[i];
    }
}

int mml_maxpool2d_leaky_backward_f32(float *dz, const float *dy, const int32_t *argmax, const float *activated,
                                     int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, float slope,
                                     int32_t nthreads) {
    if (!dz || !dy || !argmax || !activated || planes <= 0 || h <= 0 || w <= 0 || oh <= 0 || ow <= 0)
        return MML_ERR_ARGUMENT;
    mplb_ctx s = {dz, dy, activated, argmax, h * w, oh * ow, slope, 0};
    mml_parallel_for(planes, nthreads, maxpool_leaky_bwd_task, &s);
    return s.bad ? MML_ERR_ARGUMENT : MML_OK;
}
