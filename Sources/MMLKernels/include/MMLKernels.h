/*
 * MMLKernels: the numerical core of mml, in C over OpenBLAS + LAPACKE.
 *
 * Conventions (every function):
 *   - Named mml_<op>_<dtype>(outputs..., inputs..., sizes...). All matrices are row-major and contiguous.
 *   - Returns MML_OK (0) or a negative MML_ERR_* code. Never prints, never exits.
 *   - Each optimised kernel has a naive twin mml_<op>_naive that computes the same result in double
 *     precision with the plainest possible loops; the tests compare the two.
 *   - `nthreads`: 0 means "all online cores", 1 means single-threaded on the calling thread.
 *   - Kernels that need scratch memory beyond their outputs say so in their comment and how much;
 *     they return MML_ERR_NOMEM when it cannot be had.
 *   - Inputs are checked for NaN/Inf where the comment says so; a non-finite input gives MML_ERR_NONFINITE
 *     (never a silently propagated NaN).
 */
#ifndef MML_KERNELS_H
#define MML_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- status codes */

enum {
    MML_OK = 0,
    MML_ERR_ARGUMENT = -1,    /* a size is zero or negative, a pointer is NULL, an id is out of range */
    MML_ERR_K_TOO_LARGE = -2, /* K exceeds the number of rows in some group */
    MML_ERR_NONFINITE = -3,   /* NaN or Inf found in an input */
    MML_ERR_NOMEM = -4,       /* scratch memory could not be allocated */
    MML_ERR_LAPACK = -5,      /* a LAPACK routine failed (matrix not positive definite, no convergence) */
    MML_ERR_EMPTY_GROUP = -6, /* a group / set has no rows (or fewer than the kernel needs) */
};

/* A short static English description of a status code. */
const char *mml_status_string(int status);

/* ---------------------------------------------------------------- CPU and BLAS facts */

/* CPU feature bits, from CPUID (x86-64) or 0 elsewhere. */
enum {
    MML_CPU_SSE3 = 1 << 0,
    MML_CPU_AVX = 1 << 1,
    MML_CPU_AVX2 = 1 << 2,
    MML_CPU_FMA = 1 << 3,
    MML_CPU_AVX512F = 1 << 4,
    MML_CPU_AVX512BW = 1 << 5,
    MML_CPU_AVX512VL = 1 << 6,
    MML_CPU_AVX512DQ = 1 << 7,
    MML_CPU_AVX512BF16 = 1 << 8,
    MML_CPU_AVX512FP16 = 1 << 9,
    MML_CPU_AMX = 1 << 10,
    MML_CPU_OS_AVX512 = 1 << 11, /* the OS saves the AVX-512 state (XCR0 bits 5-7) */
    MML_CPU_OS_AVX = 1 << 12,    /* the OS saves the AVX state (XCR0 bits 1-2) */
};

/* The feature bits of the CPU this process runs on. */
uint32_t mml_cpu_features(void);

/* glibc malloc tuning (mallopt): mmap threshold (bytes; <= 0 disables mmap-backed blocks), trim threshold (bytes),
 * top pad (bytes). Returns 1 when all three were applied, 0 when not supported (non-glibc). */
int mml_tune_allocator(long mmap_threshold, long trim_threshold, long top_pad);
/* The CPU's brand string (up to 48 characters) into buf (at least 49 bytes). Empty where unknown. */
void mml_cpu_brand(char *buf, size_t size);
/* OpenBLAS facts: the core name it chose (e.g. "Haswell", "Prescott", "SkylakeX"), its build configuration,
 * and its thread count. Static strings owned by OpenBLAS. */
const char *mml_blas_corename(void);
const char *mml_blas_config(void);
int mml_blas_num_threads(void);
void mml_blas_set_num_threads(int n);
/* Which kernel family this library's own hot loops use: "avx512" or "portable". MML_KERNELS_ISA=portable in the
 * environment forces the portable paths (the top-K kernels read it on every call, the Gaussian kernels once). */
const char *mml_kernels_isa(void);

/* ---------------------------------------------------------------- grouped top-K similarity
 *
 * The pixel- and part-level core (DN4 image-to-class, METHOD.md 2.1 / 2.2).
 * Q: m x d query rows. R: n x d reference rows, row j belongs to group[j] in [0, n_groups).
 * For every query row i and every group g:
 *     out[i * n_groups + g] = sum of the k largest dot(Q_i, R_j) over the rows j of group g.
 * Every group must hold at least k rows (else MML_ERR_K_TOO_LARGE); k >= 1.
 * Optional per-row outputs for training (pass NULL to skip): sel_idx (m x n_groups x k int32) the indices j
 * of the selected rows and sel_val (m x n_groups x k float) their inner products, both ordered from the
 * largest value down; ties are broken towards the smaller index j.
 * The m x n product is never held in memory: R is packed once by group into 64-column panels, and each thread
 * computes 6-row x 512-column tiles of the product in registers / L1 and keeps a running top-k per (row, group).
 * Groups need not be contiguous (rows are regrouped while packing, at no extra cost).
 * Results are identical for every nthreads (each product is computed the same way whichever thread owns the row).
 * Errors: m, n, d, n_groups <= 0, k < 1, nthreads < 0, a NULL out/Q/R/group, or a group id outside
 * [0, n_groups) -> MML_ERR_ARGUMENT; k larger than some group (including an empty one) -> MML_ERR_K_TOO_LARGE;
 * NaN/Inf in Q or R, or finite inputs whose products overflow float -> MML_ERR_NONFINITE. On error the outputs
 * are unspecified.
 * Code path: AVX-512 when mml_cpu_features() reports AVX512F/BW/VL/DQ + FMA + OS support, portable C otherwise.
 * The environment variable MML_KERNELS_ISA=portable (read at every call) forces the portable path (tests use it).
 * Scratch: a packed copy of R (about n * d floats, 64-byte aligned) plus O(nthreads * (96 * n_groups * k + 3072))
 * floats and ints, allocated per call; MML_ERR_NOMEM when they cannot be had.
 */
int mml_group_topk_sim_f32(float *out, int32_t *sel_idx, float *sel_val,
                           const float *Q, int64_t m, const float *R, int64_t n, int64_t d,
                           const int32_t *group, int32_t n_groups, int32_t k, int32_t nthreads);
int mml_group_topk_sim_naive(double *out, int32_t *sel_idx, double *sel_val,
                             const float *Q, int64_t m, const float *R, int64_t n, int64_t d,
                             const int32_t *group, int32_t n_groups, int32_t k);

/* Backward of the above given the selected indices: for every (i, g) and each of its k selections j,
 *     dQ[i] += dout[i*n_groups+g] * R[j]   and   dR[j] += dout[i*n_groups+g] * Q[i].
 * dQ (m x d) and dR (n x d) are accumulated into (+=); either may be NULL to skip it. Single-threaded.
 * A sel_idx entry outside [0, n) or a size <= 0 -> MML_ERR_ARGUMENT. */
int mml_group_topk_sim_backward_f32(float *dQ, float *dR, const float *dout, const int32_t *sel_idx,
                                    const float *Q, int64_t m, const float *R, int64_t n, int64_t d,
                                    int32_t n_groups, int32_t k);

/* ---------------------------------------------------------------- row L2 normalisation
 *
 * y_i = x_i / max(||x_i||, eps) for rows x_i of length d (as torch.nn.functional.normalize).
 * norms (rows floats, optional) receives ||x_i||. In-place (y == x) is allowed. Checks x for non-finite values
 * (MML_ERR_NONFINITE; rows before the bad one are already written). rows, d <= 0 or eps <= 0 -> MML_ERR_ARGUMENT.
 */
int mml_l2_normalize_rows_f32(float *y, float *norms, const float *x, int64_t rows, int64_t d, float eps);
int mml_l2_normalize_rows_naive(double *y, const float *x, int64_t rows, int64_t d, double eps);
/* Backward: dx = (dy - y (y . dy)) / ||x|| where ||x|| > eps, else dy / eps. dx is overwritten; norms is
 * required (the forward pass's). */
int mml_l2_normalize_rows_backward_f32(float *dx, const float *dy, const float *y, const float *norms,
                                       int64_t rows, int64_t d, float eps);

/* Columns of a channel-major map: for each of `count` images stored as d x hw (CHW), write the hw descriptors
 * as rows (hw x d) into out, L2-normalised over d when normalize != 0. out holds count*hw rows of d floats;
 * norms (optional, count*hw floats) receives each row's norm before normalisation. Checks maps for NaN/Inf. */
int mml_maps_to_rows_f32(float *out, float *norms, const float *maps, int64_t count, int64_t d, int64_t hw,
                         int normalize, float eps);

/* ---------------------------------------------------------------- Gaussian statistics (METHOD.md 2.3)
 *
 * Sets of descriptors taken from channel-major feature maps: `maps` holds n_images images of d x hw floats each
 * (image i at maps + i*d*hw; a descriptor is a column). Set s is made of the images
 * image_index[set_offsets[s]] .. image_index[set_offsets[s+1]-1] (image_index NULL means 0, 1, 2, ...),
 * so a query's set is one image and a class's set is its k support images. An image may appear in several sets.
 * Plain row sets (an n x d row-major matrix, one descriptor per row) are the case hw = 1: each row is an "image"
 * of d x 1, and set_offsets / image_index pick the rows of each set.
 * set_offsets has n_sets + 1 non-decreasing entries; every image id must lie in [0, n_images) (else
 * MML_ERR_ARGUMENT); every set needs n = (images in the set) * hw >= 2 (else MML_ERR_EMPTY_GROUP).
 * mu: n_sets x d; sigma: n_sets x d x d with
 *     Sigma = (X - mu)(X - mu)^T / (n - 1) + eps * I,   eps >= 0.
 * Checks maps for non-finite values. Scratch: nthreads * d * (largest set's n) floats.
 */
int mml_gaussian_fit_maps_f32(float *mu, float *sigma, const float *maps, int64_t n_images, int64_t d, int64_t hw,
                              const int64_t *image_index, const int64_t *set_offsets, int64_t n_sets,
                              float eps, int32_t nthreads);
int mml_gaussian_fit_maps_naive(double *mu, double *sigma, const float *maps, int64_t n_images, int64_t d,
                                int64_t hw, const int64_t *image_index, const int64_t *set_offsets, int64_t n_sets,
                                double eps);
/* Backward: dmaps (n_images x d x hw, +=) from dmu and dsigma (either may be NULL), given the forward's mu:
 *     dX = dmu / n (every column) + (dSigma + dSigma^T)(X - mu) / (n - 1).
 * Deterministic for any nthreads (an image used by several sets receives their terms in set order). */
int mml_gaussian_fit_maps_backward_f32(float *dmaps, const float *dmu, const float *dsigma,
                                       const float *maps, const float *mu, int64_t n_images, int64_t d, int64_t hw,
                                       const int64_t *image_index, const int64_t *set_offsets, int64_t n_sets,
                                       int32_t nthreads);

/* Diagnosis for error messages: the first Gaussian (mu: n x d, sigma: n x d x d) that holds a non-finite value
 * (returns MML_ERR_NONFINITE, *bad_index = its index, *bad_detail = the flat offset of the value inside sigma, or
 * -1 when it is in mu) or whose covariance is not positive definite (returns MML_ERR_LAPACK, *bad_detail = the
 * 0-based column where the Cholesky pivot was not positive). Returns MML_OK when all are fine. */
int mml_gaussian_diagnose_f32(int64_t *bad_index, int64_t *bad_detail, const float *mu, const float *sigma,
                              int64_t n, int64_t d);

/* Which KL direction: A are the queries, B the classes. */
typedef enum {
    MML_KL_QUERY_CLASS = 0, /* KL(N_a || N_b)  (ADM) */
    MML_KL_CLASS_QUERY = 1, /* KL(N_b || N_a)  (MML v1 code) */
    MML_KL_SYMMETRIC = 2,   /* (KL(a||b) + KL(b||a)) / 2 */
} mml_kl_direction;

/* Pairwise distances between n_a Gaussians A (mu_a: n_a x d, sigma_a: n_a x d x d, symmetric positive definite)
 * and n_b Gaussians B: out[i * n_b + j] = D(A_i, B_j).
 *   w2:    the squared 2-Wasserstein distance ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S2^1/2 S1 S2^1/2)^1/2),
 *          negative eigenvalues clamped to 0.
 *   kl:    Kullback-Leibler divergence in the chosen direction, via Cholesky factors.
 *   mmlv1: the MML v1 code's distance ||mu1 - mu2|| / d + ||S1 - S2||_F / d^2.
 * All check mu and sigma for non-finite values (MML_ERR_NONFINITE). w2 and kl factor every covariance (Cholesky,
 * in double): one that is not positive definite gives MML_ERR_LAPACK (mml_gaussian_diagnose_f32 says which);
 * mmlv1 needs no factorisation and accepts any symmetric matrix. The covariances are assumed symmetric.
 * The fast kernels work in double internally: w2 takes, per class, the Cholesky factor S2 = L L^T and, per pair,
 * the eigenvalues of L^T S1 L (those of S2^1/2 S1 S2^1/2) by Householder tridiagonalisation and implicit QL, eight
 * pairs interleaved per thread; kl precomputes the inverses and log-determinants, so a pair costs O(d^2).
 * Output does not depend on nthreads. Scratch: (n_a + n_b) * d * d doubles at most, plus O(d * d) per thread.
 * The naive twins use LAPACK (dsyevd, dpotrf/dpotrs) per pair, in double.
 */
int mml_gaussian_w2_f32(float *out, const float *mu_a, const float *sigma_a, int64_t n_a,
                        const float *mu_b, const float *sigma_b, int64_t n_b, int64_t d, int32_t nthreads);
int mml_gaussian_w2_naive(double *out, const float *mu_a, const float *sigma_a, int64_t n_a,
                          const float *mu_b, const float *sigma_b, int64_t n_b, int64_t d);
int mml_gaussian_kl_f32(float *out, const float *mu_a, const float *sigma_a, int64_t n_a,
                        const float *mu_b, const float *sigma_b, int64_t n_b, int64_t d,
                        mml_kl_direction direction, int32_t nthreads);
int mml_gaussian_kl_naive(double *out, const float *mu_a, const float *sigma_a, int64_t n_a,
                          const float *mu_b, const float *sigma_b, int64_t n_b, int64_t d,
                          mml_kl_direction direction);
int mml_gaussian_mmlv1_f32(float *out, const float *mu_a, const float *sigma_a, int64_t n_a,
                           const float *mu_b, const float *sigma_b, int64_t n_b, int64_t d, int32_t nthreads);
int mml_gaussian_mmlv1_naive(double *out, const float *mu_a, const float *sigma_a, int64_t n_a,
                             const float *mu_b, const float *sigma_b, int64_t n_b, int64_t d);

/* Backward of the three distances: given dout (n_a x n_b), accumulate (+=) the gradients with respect to
 * mu_a, sigma_a, mu_b, sigma_b (any of the four may be NULL). Gradients with respect to a covariance are
 * returned symmetrised ((G + G^T) / 2). With M = L^T S1 L = V diag(lambda) V^T (S2 = L L^T):
 *   w2:    dS1 = I - L M^-1/2 L^T,  dS2 = I - L^-T M^1/2 L^-1,  dmu1 = 2 (mu1 - mu2) = -dmu2
 *          (eigenvalues floored at 1e-12 * the largest for M^-1/2).
 *   kl(1||2): dS1 = (S2^-1 - S1^-1)/2,  dS2 = (S2^-1 - S2^-1 (S1 + dmu dmu^T) S2^-1)/2,  dmu2 = S2^-1 (mu2 - mu1).
 *   mmlv1: dmu1 = (mu1 - mu2) / (d ||mu1 - mu2||), dS1 = (S1 - S2) / (d^2 ||S1 - S2||_F), 0 where a norm is 0.
 * Deterministic for any nthreads. Scratch (w2): up to 64 MiB of per-pair terms plus O(d * d) per thread. */
int mml_gaussian_w2_backward_f32(float *dmu_a, float *dsigma_a, float *dmu_b, float *dsigma_b,
                                 const float *dout, const float *mu_a, const float *sigma_a, int64_t n_a,
                                 const float *mu_b, const float *sigma_b, int64_t n_b, int64_t d,
                                 int32_t nthreads);
int mml_gaussian_kl_backward_f32(float *dmu_a, float *dsigma_a, float *dmu_b, float *dsigma_b,
                                 const float *dout, const float *mu_a, const float *sigma_a, int64_t n_a,
                                 const float *mu_b, const float *sigma_b, int64_t n_b, int64_t d,
                                 mml_kl_direction direction, int32_t nthreads);
int mml_gaussian_mmlv1_backward_f32(float *dmu_a, float *dsigma_a, float *dmu_b, float *dsigma_b,
                                    const float *dout, const float *mu_a, const float *sigma_a, int64_t n_a,
                                    const float *mu_b, const float *sigma_b, int64_t n_b, int64_t d,
                                    int32_t nthreads);

/* ---------------------------------------------------------------- layers: GEMM, convolution, BatchNorm, pooling
 *
 * The backbone layers (conv*.c, nn*.c). Maps are NCHW float32, contiguous. Per-channel reductions and the
 * batch splits are fixed by the sizes, never by the thread count, so 1 or 2 threads give identical results.
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

/* im2col for one c x h x w image: col is (c*kh*kw) x (oh*ow), oh = (h + 2 pad - kh) / stride + 1.
 * col2im is its adjoint: x (c x h x w) is overwritten with the sum of the col entries that read each pixel. */
void mml_im2col_f32(float *col, const float *x, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw,
                    int64_t stride, int64_t pad);
void mml_col2im_f32(float *x, const float *col, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw,
                    int64_t stride, int64_t pad);

/* Floats of workspace the conv forward / backward need for these sizes and thread count (negative: bad sizes). */
int64_t mml_conv2d_workspace_floats(int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout, int64_t kh,
                                    int64_t kw, int64_t stride, int64_t pad, int32_t nthreads);
/* y (n, cout, oh, ow) = conv(x (n, c, h, w), weight (cout, c, kh, kw)) + bias (cout, may be NULL), zero padding.
 * workspace: NULL (allocated per call) or at least mml_conv2d_workspace_floats(...) floats, reused by the caller. */
int mml_conv2d_forward_f32(float *y, const float *x, const float *weight, const float *bias, int64_t n, int64_t c,
                           int64_t h, int64_t w, int64_t cout, int64_t kh, int64_t kw, int64_t stride, int64_t pad,
                           float *workspace, int64_t workspace_floats, int32_t nthreads);
/* Backward: dx (overwritten), dweight and dbias (accumulated +=); any of the three may be NULL. */
int mml_conv2d_backward_f32(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                            const float *weight, int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout,
                            int64_t kh, int64_t kw, int64_t stride, int64_t pad, float *workspace,
                            int64_t workspace_floats, int32_t nthreads);
/* Weight gradient of the 3x3, stride-1, padding-1 convolution y (n, cout, h, w) = conv(x (n, c, h, w), weight
 * (cout, c, 3, 3)) by Winograd F(2x2, 3x3) (conv_wgrad.c): dweight += dL/dweight for the output gradient dy.
 * Same result as mml_conv2d_backward_f32's dweight up to float rounding, with 2.25x fewer multiplies; the same
 * bits for any thread count. workspace: NULL (allocated per call) or at least
 * mml_conv3x3_wgrad_workspace_floats(...) floats. */
int64_t mml_conv3x3_wgrad_workspace_floats(int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout,
                                           int32_t nthreads);
int mml_conv3x3_winograd_backward_weight_f32(float *dweight, const float *dy, const float *x, int64_t n, int64_t c,
                                             int64_t h, int64_t w, int64_t cout, float *workspace,
                                             int64_t workspace_floats, int32_t nthreads);
int mml_conv2d_naive(double *y, const float *x, const float *weight, const float *bias, int64_t n, int64_t c,
                     int64_t h, int64_t w, int64_t cout, int64_t kh, int64_t kw, int64_t stride, int64_t pad);
/* Naive backward: dx, dweight, dbias overwritten (any may be NULL). */
int mml_conv2d_backward_naive(double *dx, double *dweight, double *dbias, const float *dy, const float *x,
                              const float *weight, int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout,
                              int64_t kh, int64_t kw, int64_t stride, int64_t pad);

/* 3x3 convolution, stride 1, zero padding 1, no bias, by Winograd minimal filtering F(2x2, 3x3) (conv_winograd.c):
 * the same result as mml_conv2d_forward_f32 with kh = kw = 3, stride 1, pad 1, bias NULL, up to float rounding
 * (the transforms add a little: measured max error 1.6e-7 of max|x| * max_o sum |weight[o]|, the scale of any
 * output, over the shapes of ConvKernelWinogradTests). x (n, c, h, w), weight (cout, c, 3, 3), y (n, cout, h, w);
 * any h, w >= 1.
 * Weights are transformed once per call; each image's input is transformed into 16 matrices (c x tiles) in the
 * GEMM's packed layout, multiplied by the 16 transformed weight matrices, and transformed back, in blocks of
 * tiles that stay in L2. Threads split the batch by image; 1 or 2 threads give identical bits.
 * workspace: NULL (allocated per call) or at least mml_conv3x3_winograd_workspace_floats(...) floats; the same
 * count serves the forward and the backward-data call for these sizes and nthreads.
 * Errors: a NULL tensor, a size <= 0 or nthreads < 0 -> MML_ERR_ARGUMENT (the workspace function returns it);
 * a workspace smaller than needed -> MML_ERR_ARGUMENT; allocation failure -> MML_ERR_NOMEM. */
int64_t mml_conv3x3_winograd_workspace_floats(int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout,
                                              int32_t nthreads);
int mml_conv3x3_winograd_forward_f32(float *y, const float *x, const float *weight, int64_t n, int64_t c, int64_t h,
                                     int64_t w, int64_t cout, float *workspace, int64_t workspace_floats,
                                     int32_t nthreads);
/* Backward data of the above: dx (n, c, h, w, overwritten) = dL/dx given dy (n, cout, h, w), i.e. the same 3x3
 * pad-1 convolution of dy with the weight transposed in (cout, c) and rotated by 180 degrees. Same sizes,
 * workspace and errors as the forward. (dW: mml_conv3x3_winograd_backward_weight_f32, conv_wgrad.c.) */
int mml_conv3x3_winograd_backward_data_f32(float *dx, const float *dy, const float *weight, int64_t n, int64_t c,
                                           int64_t h, int64_t w, int64_t cout, float *workspace,
                                           int64_t workspace_floats, int32_t nthreads);

/* The F(2x2) forward with the inference block tail folded into its output transform: y = leaky(scale[o] * conv +
 * shift[o], slope), then (pool != 0) a 2x2 / stride-2 max-pool (floor mode), y (n, cout, h/2, w/2); else y
 * (n, cout, h, w). Same values as mml_conv3x3_winograd_forward_f32 followed by mml_affine_leaky_maxpool2x2_f32 /
 * mml_channel_affine_f32, without writing the full-size conv output. Same workspace. */
int mml_conv3x3_winograd_forward_affine_leaky_f32(float *y, const float *x, const float *weight, const float *scale,
                                                  const float *shift, float slope, int32_t pool, int64_t n, int64_t c,
                                                  int64_t h, int64_t w, int64_t cout, float *workspace,
                                                  int64_t workspace_floats, int32_t nthreads);

/* The same kernels with the output tile size as a parameter: tile 2 is F(2x2, 3x3) (the functions above),
 * tile 4 is F(4x4, 3x3): 6x6 input tiles, 36 GEMMs for 16 outputs per tile instead of 16 for 4 (1.8x fewer
 * multiplications) but larger transform coefficients: measured max error 2.9e-6 of the output scale (tile 2:
 * 1.6e-7; ConvKernelWinogradTests). Tiles are packed 32 to a GEMM panel per image, so tile 4 pays off where an
 * image has many tiles: mml_conv3x3_winograd_preferred_tile says which one to use.
 * tile other than 2 or 4 -> MML_ERR_ARGUMENT. The workspace count depends on the tile. */
int64_t mml_conv3x3_winograd_tile_workspace_floats(int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout,
                                                   int32_t tile, int32_t nthreads);
int mml_conv3x3_winograd_tile_forward_f32(float *y, const float *x, const float *weight, int64_t n, int64_t c,
                                          int64_t h, int64_t w, int64_t cout, int32_t tile, float *workspace,
                                          int64_t workspace_floats, int32_t nthreads);
int mml_conv3x3_winograd_tile_backward_data_f32(float *dx, const float *dy, const float *weight, int64_t n,
                                                int64_t c, int64_t h, int64_t w, int64_t cout, int32_t tile,
                                                float *workspace, int64_t workspace_floats, int32_t nthreads);
int mml_conv3x3_winograd_tile_forward_affine_leaky_f32(float *y, const float *x, const float *weight,
                                                       const float *scale, const float *shift, float slope,
                                                       int32_t pool, int64_t n, int64_t c, int64_t h, int64_t w,
                                                       int64_t cout, int32_t tile, float *workspace,
                                                       int64_t workspace_floats, int32_t nthreads);
/* 4 when F(4x4) needs at most 0.8 times the GEMM work of F(2x2) on an h x w map (counting the 32-tile panels
 * padded), else 2: 4 at 42x42 and 84x84, 2 at 21x21 and below. */
int32_t mml_conv3x3_winograd_preferred_tile(int64_t h, int64_t w);

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

/* Inference block, one image at a time in cache: y = maxpool2x2?(leaky(scale[o] * conv(x, weight) + shift[o])),
 * a stride-1 k x k conv with zero padding `pad` (the folded BatchNorm: scale = gamma / sqrt(var + eps),
 * shift = beta - mean * scale). pool != 0 halves H and W (floor). Workspace as for the conv (NULL: per call).
 * With AVX-512, k = 3, pad = 1 and c <= 8 (a network's first layer) it runs a direct kernel with the tail in
 * registers; otherwise an im2col-free GEMM per band of output rows with the tail applied while the band is in L2. */
int64_t mml_conv_block_workspace_floats(int64_t c, int64_t h, int64_t w, int64_t cout, int64_t k, int64_t pad,
                                        int64_t n, int32_t nthreads);
int mml_conv_block_forward_f32(float *y, const float *x, const float *weight, const float *scale, const float *shift,
                               int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout, int64_t k, int64_t pad,
                               float slope, int32_t pool, float *workspace, int64_t workspace_floats,
                               int32_t nthreads);

/* For tests: on != 0 makes the layer kernels use their portable C paths even where AVX-512 is available. */
void mml_layers_force_portable(int32_t on);

/* glibc malloc: return retained free memory to the system now (malloc_trim). No-op elsewhere. */
void mml_release_freed_memory(void);

#ifdef __cplusplus
}
#endif

#endif /* MML_KERNELS_H */
