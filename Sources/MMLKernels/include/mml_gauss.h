/*
 * mml_gauss.h: Gaussian statistics of descriptor sets and the distances between them, with their backward
 * (gauss/).
 * Part of MMLKernels (include/MMLKernels.h includes every family header); conventions in mml_common.h.
 */
#ifndef MML_GAUSS_H
#define MML_GAUSS_H

#include "mml_common.h"

#ifdef __cplusplus
extern "C" {
#endif

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
/* The same KL divergences straight from descriptor sets, in low-rank form: set i of A (maps_a, image_index_a,
 * set_offsets_a, as in mml_gaussian_fit_maps_f32) against set j of B, out[i * n_sets_b + j] = KL in `direction`
 * between the Gaussians mml_gaussian_fit_maps_f32 would fit with this eps (> 0, else MML_ERR_ARGUMENT), computed in
 * double from Sigma = eps I + U U^T (U: the set's centred descriptors / sqrt(n - 1)) through n x n matrices:
 * O(d n^2) per set and O(d n_a n_b) per pair instead of O(d^3) and O(d^2). The answer of the dense path up to
 * rounding (the dense fit rounds Sigma to float; here nothing is). Worth it when n is well under d: see
 * mml_gaussian_kl_lowrank_preferred. The same bits for any nthreads and any x86-64 CPU (one build, no dispatch).
 * Checks maps for non-finite values;
 * MML_ERR_LAPACK only for a non-finite or non-positive pivot, which eps > 0 rules out for finite maps. */
int mml_gaussian_kl_maps_lowrank_f32(float *out, const float *maps_a, int64_t n_images_a, const int64_t *image_index_a,
                                     const int64_t *set_offsets_a, int64_t n_sets_a, const float *maps_b,
                                     int64_t n_images_b, const int64_t *image_index_b, const int64_t *set_offsets_b,
                                     int64_t n_sets_b, int64_t d, int64_t hw, float eps, mml_kl_direction direction,
                                     int32_t nthreads);
/* Backward of mml_gaussian_kl_maps_lowrank_f32: given dout (n_sets_a x n_sets_b, dL/dout), accumulates (+=) dL/dmaps_a
 * and dL/dmaps_b (shaped as the maps; either may be NULL, and then its side's work is skipped) through the same
 * low-rank form: O(d n^2) per set and O(d n_a n_b) per pair, in double, never forming a d x d matrix. The dense
 * path's gradients (fit, KL, their backward passes) up to rounding. An image used by several sets gets the sum of
 * their gradients. The same bits for any nthreads and any x86-64 CPU. On any error nothing is written. Errors as the
 * forward, and MML_ERR_NONFINITE for a non-finite dout. */
int mml_gaussian_kl_maps_lowrank_backward_f32(float *dmaps_a, float *dmaps_b, const float *dout, const float *maps_a,
                                              int64_t n_images_a, const int64_t *image_index_a,
                                              const int64_t *set_offsets_a, int64_t n_sets_a, const float *maps_b,
                                              int64_t n_images_b, const int64_t *image_index_b,
                                              const int64_t *set_offsets_b, int64_t n_sets_b, int64_t d, int64_t hw,
                                              float eps, mml_kl_direction direction, int32_t nthreads);
/* 1 when the low-rank form is the cheaper one for sets of at most most_descriptors descriptors of d channels (the
 * rule: 4 n <= d; e.g. ResNet-12's 640 channels with 25 or 125 descriptors per set, not Conv-64F's 64 channels). */
int mml_gaussian_kl_lowrank_preferred(int64_t d, int64_t most_descriptors);
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

#ifdef __cplusplus
}
#endif

#endif /* MML_GAUSS_H */
