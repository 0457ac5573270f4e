/* Private helpers shared by the conv / nn kernels (not part of the public API). */
#ifndef MML_NN_INTERNAL_H
#define MML_NN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "mml_parallel.h" /* common/: mml_parallel_for, mml_thread_count */

/* A kernel's workspace: the caller's when it is given (MML_ERR_ARGUMENT if smaller than need floats), else an
 * allocation of need floats returned in *owned for the kernel to free. Returns MML_OK or MML_ERR_NOMEM. */
int mml_nn_acquire_workspace(float **workspace, float **owned, int64_t workspace_floats, int64_t need);

/* True when the AVX-512 kernels can run on this CPU (checked once; nn_dispatch.c). */
int mml_nn_have_avx512(void);
/* True when the AVX2 + FMA kernels may run (on AVX-512 machines too: callers ask mml_nn_have_avx512 first). */
int mml_nn_have_avx2(void);

/* Floats of scratch that mml_nn_sgemm needs. */
size_t mml_nn_sgemm_scratch_floats(void);
/* Single-threaded row-major C = alpha * op(A) op(B) + beta * C with op(A): m x k, op(B): k x n.
 * trans_a: A is stored k x m (lda >= m); trans_b: B is stored n x k (ldb >= k). beta == 0 never reads C.
 * scratch: mml_nn_sgemm_scratch_floats() floats, 64-byte aligned. */
void mml_nn_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                  int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc, float *scratch);

/* The packed GEMM's register tile: A is packed in MR-tall row panels laid out [p][MR], B in NR-wide column
 * panels laid out [p][NR], both zero-padded at the edges. */
#define MML_NN_MR 8
#define MML_NN_NR 32
/* Packs op(A)[i0 : i0+mc][p0 : p0+kc] into pa: panel r (rows i0 + r*MR ..) at pa + r*MR*kc, as [p][MR]. */
typedef void (*mml_nn_pack_a_fn)(float *pa, const void *src, int64_t i0, int64_t mc, int64_t p0, int64_t kc);
/* Packs op(B)[p0 : p0+kc][j0 : j0+nc] into pb: panel r (columns j0 + r*NR ..) at pb + r*NR*kc, as [p][NR]. */
typedef void (*mml_nn_pack_b_fn)(float *pb, const void *src, int64_t p0, int64_t kc, int64_t j0, int64_t nc);
/* A row-major matrix as a packing source (what mml_nn_sgemm packs from). */
typedef struct {
    const float *data;
    int64_t ld;
    int trans;
} mml_nn_matrix;
void mml_nn_pack_a_matrix(float *pa, const void *src, int64_t i0, int64_t mc, int64_t p0, int64_t kc);
void mml_nn_pack_b_matrix(float *pb, const void *src, int64_t p0, int64_t kc, int64_t j0, int64_t nc);
/* mml_nn_sgemm with the operands given by packing functions: C (m x n) = alpha * A B + beta * C, so that an
 * operand can be packed straight from its source (e.g. the receptive fields of an image, with no im2col matrix). */
void mml_nn_sgemm_packed(int64_t m, int64_t n, int64_t k, float alpha, mml_nn_pack_a_fn pack_a, const void *asrc,
                         mml_nn_pack_b_fn pack_b, const void *bsrc, float beta, float *c, int64_t ldc,
                         float *scratch);

/* One image (C, H, W) seen as its im2col matrix col (K = C*kh*kw rows, P = OH*OW columns) for packing; column j
 * of the packed operand is output position q0 + j (q0 = 0: the whole image; else a band of output rows). */
typedef struct {
    const float *x;
    int64_t c, h, w, kh, kw, stride, pad, oh, ow;
    int64_t q0;
} mml_im2col_src;
/* Pack col (as op(B), K x P) or col (as op(A), K x P) straight from the image; src is a mml_im2col_src. */
void mml_im2col_pack_b(float *pb, const void *src, int64_t p0, int64_t kc, int64_t j0, int64_t nc);
void mml_im2col_pack_a(float *pa, const void *src, int64_t i0, int64_t mc, int64_t p0, int64_t kc);
/* C (m x n, row-major, ldc) = A B from operands the caller has already packed over the whole of k:
 *   pa: ceil(m / MML_NN_MR) row panels, panel r at pa + r * MML_NN_MR * k, laid out [p][MML_NN_MR] (p < k);
 *       rows past m must be finite (zero).
 *   pb: ceil(n / MML_NN_NR) column panels, panel q at pb + q * MML_NN_NR * k, laid out [p][MML_NN_NR];
 *       64-byte aligned; columns past n are read but never stored.
 * C is overwritten (never read). Same micro-kernels and dispatch as mml_nn_sgemm, single-threaded, no scratch. */
void mml_nn_sgemm_prepacked(int64_t m, int64_t n, int64_t k, const float *pa, const float *pb, float *c,
                            int64_t ldc);

/* One plane of mml_affine_leaky_maxpool2x2_f32 (bn_pool.c): y (h/2 x w/2) = maxpool2x2(leaky(a x + b)), argmax
 * optional. */
void mml_nn_affine_leaky_pool2x2_plane(const float *x, float *y, int32_t *arg, int64_t h, int64_t w, float a,
                                       float b, float slope);

/* The per-channel step shared by the BatchNorm backward kernels (nn.c, bn_pool.c), from the channel's sums
 * sdy = sum dy and sdyxc = sum dy (x - mu) over count elements: adds dbeta += sdy and dgamma += sdyxc * invstd
 * (either may be NULL), and gives dx = k0 (dy - mdy - xhat mdyx) with k0 = gamma invstd and, with batch
 * statistics, mdy = mean(dy), mdyx = mean(dy xhat) (0 with fixed statistics). */
typedef struct {
    float k0, mdy, mdyx;
} mml_nn_bn_grad;
static inline mml_nn_bn_grad mml_nn_bn_backward_channel(double sdy, double sdyxc, float invstd, float gamma,
                                                        double count, int batch_stats, float *dgamma,
                                                        float *dbeta) {
    double sdyx = sdyxc * invstd;
    if (dbeta) *dbeta += (float)sdy;
    if (dgamma) *dgamma += (float)sdyx;
    mml_nn_bn_grad r = {gamma * invstd, batch_stats ? (float)(sdy / count) : 0.0f,
                        batch_stats ? (float)(sdyx / count) : 0.0f};
    return r;
}

/* Vectorised plane reductions (fixed summation order, see nn_reduce.c): s1 = sum a[i]; s2 = sum a[i] (b[i] - m)
 * when b != NULL, else sum (a[i] - m)^2. */
void mml_nn_reduce(const float *a, const float *b, int64_t n, float m, float *s1, float *s2);
/* The fixed summation tree of 16 lane sums (lane l + l + 8, then + 4, + 2, + 1) that the reductions share. */
float mml_nn_fold16(const float *acc);

#endif
