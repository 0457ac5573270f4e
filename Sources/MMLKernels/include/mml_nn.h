/*
 * mml_nn.h: the layer kernels: packed GEMM, BatchNorm, activations, pooling and the fused block tails (nn/).
 * Part of MMLKernels (include/MMLKernels.h includes every family header); conventions in mml_common.h.
 */
#ifndef MML_NN_H
#define MML_NN_H

#include "mml_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------- layers: GEMM, BatchNorm, pooling
 *
 * The backbone layers (nn/ here, conv/ in mml_conv.h). Maps are NCHW float32, contiguous. Per-channel
 * reductions and the batch splits are fixed by the sizes, never by the thread count, so any number of threads
 * gives identical results.
 * The kernels use their own threads (nthreads, 0 = all cores) and never call OpenBLAS, so there is no
 * oversubscription with BLAS threads. AVX-512 micro-kernels where the CPU has them, portable C otherwise.
 */

/* Row-major C (m x n) = alpha * op(A) op(B) + beta * C, single-threaded packed GEMM (the kernel the conv layers
 * use). op(A) is m x k (trans_a != 0: A is stored k x m); op(B) is k x n (trans_b != 0: B stored n x k).
 * beta == 0 never reads C. Scratch: ~2.2 MB allocated per call. */
int mml_sgemm_f32(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                  int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
int mml_sgemm_naive(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                    const float *a, int64_t lda, const float *b, int64_t ldb, double beta, double *c, int64_t ldc);


/* Per-channel mean and biased variance over (n, hw) of x (n, c, hw), accumulated in double. */
int mml_batchnorm_stats_f32(float *mean, float *var, const float *x, int64_t n, int64_t c, int64_t hw,
                            int32_t nthreads);
int mml_batchnorm_stats_naive(double *mean, double *var, const float *x, int64_t n, int64_t c, int64_t hw);
/* y = scale[c] * x + shift[c], then (activation != 0) y = y > 0 ? y : slope * y. In place (y == x) allowed. */
int mml_channel_affine_f32(float *y, const float *x, const float *scale, const float *shift, int64_t n, int64_t c,
                           int64_t hw, int32_t activation, float slope, int32_t nthreads);
/* BatchNorm backward with xhat = (x - mean) * invstd: dbeta += sum dy, dgamma += sum dy xhat (either may be NULL);
 * dx (overwritten, may be NULL) = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)) when batch_stats != 0
 * (statistics of this batch), gamma invstd dy when the statistics were fixed. gamma NULL means 1. */
int mml_batchnorm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                               const float *mean, const float *invstd, const float *gamma, int64_t n, int64_t c,
                               int64_t hw, int32_t batch_stats, int32_t nthreads);

/* y = x > 0 ? x : slope x (slope 0 is ReLU); backward dx = x > 0 ? dy : slope dy (dx overwritten). */
int mml_leaky_relu_f32(float *y, const float *x, int64_t count, float slope);
int mml_leaky_relu_backward_f32(float *dx, const float *dy, const float *x, int64_t count, float slope);

/* Max pooling over planes of h x w (k x k windows, stride, no padding, floor): y is planes x oh x ow with
 * oh = (h - k) / stride + 1. argmax (optional) receives the index inside the plane of each maximum (the first
 * one on ties). Backward: dx (overwritten) scatters dy to the argmax positions. */
int mml_maxpool2d_f32(float *y, int32_t *argmax, const float *x, int64_t planes, int64_t h, int64_t w, int64_t k,
                      int64_t stride, int32_t nthreads);
int mml_maxpool2d_backward_f32(float *dx, const float *dy, const int32_t *argmax, int64_t planes, int64_t h,
                               int64_t w, int64_t oh, int64_t ow);
/* Training-mode block tail, fused (bn_pool.c): y (n, c, h/2, w/2) and argmax (index in the h x w plane) =
 * maxpool2x2(leaky(scale[c] * x + shift[c], slope)) with the max-pool tie rule; the activation is not stored.
 * argmax may be NULL (inference). */
int mml_affine_leaky_maxpool2x2_f32(float *y, int32_t *argmax, const float *x, const float *scale, const float *shift,
                                    int64_t n, int64_t c, int64_t h, int64_t w, float slope, int32_t nthreads);
/* Its backward through the pool, the leaky ReLU (sign read from the pooled value) and BatchNorm: given dy
 * (n, c, h/2, w/2), argmax and pooled from the forward, the BN input x (n, c, h, w) with the mean and invstd it was
 * normalised with: dbeta += sum g, dgamma += sum g xhat (g = dy leaky'), dx (n, c, h, w, overwritten; may be
 * NULL) = gamma invstd (g scattered - mean(g) - xhat mean(g xhat)) with batch statistics, gamma invstd g
 * scattered with fixed ones. MML_ERR_ARGUMENT for an argmax outside its plane. */
int mml_maxpool_leaky_batchnorm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *dy,
                                             const int32_t *argmax, const float *pooled, const float *x,
                                             const float *mean, const float *invstd, const float *gamma, int64_t n,
                                             int64_t c, int64_t h, int64_t w, float slope, int32_t batch_stats,
                                             int32_t nthreads);
/* Max-pool backward fused with the leaky ReLU before it: dz (planes x h x w, overwritten) = dy routed to the argmax
 * positions, times 1 where activated > 0 and slope elsewhere (`activated` is the activation output = pool input). */
int mml_maxpool2d_leaky_backward_f32(float *dz, const float *dy, const int32_t *argmax, const float *activated,
                                     int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, float slope,
                                     int32_t nthreads);
/* Average pooling, same geometry; backward dx overwritten. */
int mml_avgpool2d_f32(float *y, const float *x, int64_t planes, int64_t h, int64_t w, int64_t k, int64_t stride);
int mml_avgpool2d_backward_f32(float *dx, const float *dy, int64_t planes, int64_t h, int64_t w, int64_t k,
                               int64_t stride);

/* For tests: on != 0 makes the layer kernels (nn/ and conv/) use their portable C paths even where AVX-512 is
 * available. */
void mml_layers_force_portable(int32_t on);
/* For tests: on != 0 caps the layer kernels at their AVX2 + FMA paths on AVX-512 machines (portable still wins). */
void mml_layers_force_avx2(int32_t on);

#ifdef __cplusplus
}
#endif

#endif /* MML_NN_H */
