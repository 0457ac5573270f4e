/* Gaussian fit of descriptor sets taken from channel-major maps (METHOD.md 2.3), its naive twin and backward.
 *   mu = (1/n) sum_t x_t,   Sigma = (X - mu)(X - mu)^T / (n - 1) + eps I,   X: d x n, n = images * hw.
 * The fast path centres the set once (d x n floats) and forms the product with one ssyrk. */
#include "MMLKernels.h"
#include "gauss_internal.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Shared argument checks of the fits and the fit's backward (gauss_internal.h). */
int mml_gauss_check_sets(const float *maps, int64_t n_images, int64_t d, int64_t hw, const int64_t *image_index,
                      const int64_t *set_offsets, int64_t n_sets, int64_t *max_images) {
    if (!maps || !set_offsets || n_images <= 0 || d <= 0 || hw <= 0 || n_sets <= 0) return MML_ERR_ARGUMENT;
    if (set_offsets[0] < 0) return MML_ERR_ARGUMENT;
    int64_t most = 0;
    for (int64_t s = 0; s < n_sets; s++) {
        int64_t a = set_offsets[s], b = set_offsets[s + 1];
        if (b < a) return MML_ERR_ARGUMENT;
        for (int64_t p = a; p < b; p++) {
            int64_t im = mml_gauss_image_at(image_index, p);
            if (im < 0 || im >= n_images) return MML_ERR_ARGUMENT;
        }
        if (b - a > most) most = b - a;
    }
    for (int64_t s = 0; s < n_sets; s++)
        if ((set_offsets[s + 1] - set_offsets[s]) * hw < 2) return MML_ERR_EMPTY_GROUP;
    *max_images = most;
    return MML_OK;
}

typedef struct {
    float *mu, *sigma;
    const float *maps;
    int64_t d, hw;
    const int64_t *image_index, *set_offsets;
    float eps;
    float *scratch; /* per thread: d * max_n floats */
    int64_t scratch_stride;
} fit_ctx;

static void fit_task(void *vctx, int64_t s, int tid) {
    fit_ctx *c = (fit_ctx *)vctx;
    const int64_t d = c->d, hw = c->hw, a = c->set_offsets[s], cnt = c->set_offsets[s + 1] - a, n = cnt * hw;
    float *Xc = c->scratch + (size_t)tid * c->scratch_stride;
    float *mu = c->mu + s * d, *sigma = c->sigma + s * d * d;
    for (int64_t ch = 0; ch < d; ch++) {
        double sum = 0.0;
        for (int64_t m = 0; m < cnt; m++) {
            const float *x = c->maps + (mml_gauss_image_at(c->image_index, a + m) * d + ch) * hw;
            float part = 0.0f; /* float partial sums over one image row (<= hw terms), added in double */
#pragma clang loop vectorize(enable) interleave(enable)
            for (int64_t t = 0; t < hw; t++) part += x[t];
            sum += part;
        }
        float mc = (float)(sum / (double)n);
        mu[ch] = mc;
        for (int64_t m = 0; m < cnt; m++) {
            const float *x = c->maps + (mml_gauss_image_at(c->image_index, a + m) * d + ch) * hw;
            float *y = Xc + ch * n + m * hw;
            for (int64_t t = 0; t < hw; t++) y[t] = x[t] - mc;
        }
    }
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)d, (int)n, (float)(1.0 / (double)(n - 1)), Xc, (int)n,
                0.0f, sigma, (int)d);
    for (int64_t i = 0; i < d; i++) {
        sigma[i * d + i] += c->eps;
        for (int64_t j = i + 1; j < d; j++) sigma[j * d + i] = sigma[i * d + j];
    }
}

int mml_gaussian_fit_maps_f32(float *mu, float *sigma, const float *maps, int64_t n_images, int64_t d, int64_t hw,
                              const int64_t *image_index, const int64_t *set_offsets, int64_t n_sets, float eps,
                              int32_t nthreads) {
    if (!mu || !sigma || !(eps >= 0.0f) || !isfinite(eps)) return MML_ERR_ARGUMENT;
    int64_t most = 0;
    int st = mml_gauss_check_sets(maps, n_images, d, hw, image_index, set_offsets, n_sets, &most);
    if (st) return st;
    if (!mml_gauss_all_finite(maps, n_images * d * hw)) return MML_ERR_NONFINITE;
    int nt = mml_thread_count(nthreads, n_sets);
    fit_ctx c = {mu, sigma, maps, d, hw, image_index, set_offsets, eps, NULL, d * most * hw};
    c.scratch = (float *)malloc(sizeof(float) * (size_t)c.scratch_stride * (size_t)nt);
    if (!c.scratch) return MML_ERR_NOMEM;
    mml_parallel_for(n_sets, nt, fit_task, &c);
    free(c.scratch);
    return MML_OK;
}

int mml_gaussian_fit_maps_naive(double *mu, double *sigma, const float *maps, int64_t n_images, int64_t d,
                                int64_t hw, const int64_t *image_index, const int64_t *set_offsets, int64_t n_sets,
                                double eps) {
    if (!mu || !sigma || !(eps >= 0.0) || !isfinite(eps)) return MML_ERR_ARGUMENT;
    int64_t most = 0;
    int st = mml_gauss_check_sets(maps, n_images, d, hw, image_index, set_offsets, n_sets, &most);
    if (st) return st;
    for (int64_t i = 0; i < n_images * d * hw; i++)
        if (!isfinite(maps[i])) return MML_ERR_NONFINITE;
    for (int64_t s = 0; s < n_sets; s++) {
        int64_t a = set_offsets[s], cnt = set_offsets[s + 1] - a, n = cnt * hw;
        double *m = mu + s * d, *S = sigma + s * d * d;
        for (int64_t i = 0; i < d; i++) {
            double sum = 0.0;
            for (int64_t p = 0; p < cnt; p++)
                for (int64_t t = 0; t < hw; t++) sum += maps[(mml_gauss_image_at(image_index, a + p) * d + i) * hw + t];
            m[i] = sum / (double)n;
        }
        for (int64_t i = 0; i < d; i++)
            for (int64_t j = 0; j < d; j++) {
                double sum = 0.0;
                for (int64_t p = 0; p < cnt; p++) {
                    const float *x = maps + mml_gauss_image_at(image_index, a + p) * d * hw;
                    for (int64_t t = 0; t < hw; t++) sum += (x[i * hw + t] - m[i]) * (x[j * hw + t] - m[j]);
                }
                S[i * d + j] = sum / (double)(n - 1) + (i == j ? eps : 0.0);
            }
    }
    return MML_OK;
}

/* ---- backward: for every image, in set order over the sets that use it,
 *   dX += dmu / n (every column)  +  G (X - mu),   G = (dSigma + dSigma^T) / (n - 1).
 * The mean's own dependence on X drops out because the centred columns sum to zero.
 * Work is split by destination image, so an image shared by several sets is written by one thread only. */
typedef struct {
    float *dmaps;
    const float *dmu, *dsigma, *maps, *mu;
    int64_t d, hw;
    const int64_t *set_offsets;
    const int64_t *use_start, *use_set; /* CSR: the sets using image im are use_set[use_start[im] .. ] */
    float *scratch;                     /* per thread: d*d + d*hw floats */
} fitb_ctx;

static void fitb_task(void *vctx, int64_t im, int tid) {
    fitb_ctx *c = (fitb_ctx *)vctx;
    const int64_t d = c->d, hw = c->hw;
    float *G = c->scratch + (size_t)tid * (size_t)(d * d + d * hw), *T = G + d * d;
    const float *x = c->maps + im * d * hw;
    float *dx = c->dmaps + im * d * hw;
    for (int64_t u = c->use_start[im]; u < c->use_start[im + 1]; u++) {
        int64_t s = c->use_set[u];
        int64_t n = (c->set_offsets[s + 1] - c->set_offsets[s]) * hw;
        const float *mu = c->mu + s * d;
        if (c->dsigma) {
            const float *dS = c->dsigma + s * d * d;
            float inv = (float)(1.0 / (double)(n - 1));
            for (int64_t i = 0; i < d; i++)
                for (int64_t j = 0; j < d; j++) G[i * d + j] = (dS[i * d + j] + dS[j * d + i]) * inv;
            for (int64_t i = 0; i < d; i++)
                for (int64_t t = 0; t < hw; t++) T[i * hw + t] = x[i * hw + t] - mu[i];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)hw, (int)d, 1.0f, G, (int)d, T,
                        (int)hw, 1.0f, dx, (int)hw);
        }
        if (c->dmu) {
            const float *dm = c->dmu + s * d;
            for (int64_t i = 0; i < d; i++) {
                float g = (float)((double)dm[i] / (double)n);
                for (int64_t t = 0; t < hw; t++) dx[i * hw + t] += g;
            }
        }
    }
}

int mml_gaussian_fit_maps_backward_f32(float *dmaps, const float *dmu, const float *dsigma, const float *maps,
                                       const float *mu, int64_t n_images, int64_t d, int64_t hw,
                                       const int64_t *image_index, const int64_t *set_offsets, int64_t n_sets,
                                       int32_t nthreads) {
    if (!dmaps || !mu) return MML_ERR_ARGUMENT;
    int64_t most = 0;
    int st = mml_gauss_check_sets(maps, n_images, d, hw, image_index, set_offsets, n_sets, &most);
    if (st) return st;
    if (!dmu && !dsigma) return MML_OK;
    int64_t total = set_offsets[n_sets] - set_offsets[0];
    int64_t *use_start = (int64_t *)calloc((size_t)(n_images + 1), sizeof(int64_t));
    int64_t *use_set = (int64_t *)malloc(sizeof(int64_t) * (size_t)(total > 0 ? total : 1));
    int64_t *fill = (int64_t *)calloc((size_t)n_images, sizeof(int64_t));
    int nt = mml_thread_count(nthreads, n_images);
    float *scratch = (float *)malloc(sizeof(float) * (size_t)(d * d + d * hw) * (size_t)nt);
    if (!use_start || !use_set || !fill || !scratch) {
        free(use_start), free(use_set), free(fill), free(scratch);
        return MML_ERR_NOMEM;
    }
    for (int64_t s = 0; s < n_sets; s++)
        for (int64_t p = set_offsets[s]; p < set_offsets[s + 1]; p++) use_start[mml_gauss_image_at(image_index, p) + 1]++;
    for (int64_t i = 0; i < n_images; i++) use_start[i + 1] += use_start[i];
    for (int64_t s = 0; s < n_sets; s++)
        for (int64_t p = set_offsets[s]; p < set_offsets[s + 1]; p++) {
            int64_t im = mml_gauss_image_at(image_index, p);
            use_set[use_start[im] + fill[im]++] = s;
        }
    fitb_ctx c = {dmaps, dmu, dsigma, maps, mu, d, hw, set_offsets, use_start, use_set, scratch};
    mml_parallel_for(n_images, nt, fitb_task, &c);
    free(use_start), free(use_set), free(fill), free(scratch);
    return MML_OK;
}
