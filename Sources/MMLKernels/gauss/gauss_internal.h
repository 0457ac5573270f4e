/*
 * Internal helpers of the Gaussian kernels (gauss_*.c): dense double-precision linear algebra on d x d row-major
 * matrices, with an AVX-512 and a portable build of the hot loops. Threads: mml_parallel_for (common/).
 * Not part of the public API.
 */
#ifndef MML_GAUSS_INTERNAL_H
#define MML_GAUSS_INTERNAL_H

#include <stdint.h>
#include <stddef.h>
#include "mml_parallel.h" /* common/: mml_parallel_for, mml_thread_count, mml_keep_first_status */

/* ---- dense linear algebra, double, n x n row-major. "sym" inputs are read in full. */

/* Lower Cholesky factor L of the float matrix S (L L^T = S, upper part of L zeroed).
 * Returns 0, or j + 1 when the pivot of column j is not positive (S not positive definite). */
int mml_gauss_cholesky_f(double *L, const float *S, int64_t n);
/* Inverse of a lower-triangular L (nonzero diagonal), lower triangular. */
void mml_gauss_tri_inverse(double *Li, const double *L, int64_t n);
/* Sinv = Li^T Li: the inverse of S = L L^T from the inverse of its Cholesky factor. */
void mml_gauss_spd_inverse(double *Sinv, const double *Li, int64_t n);
/* sum_i 2 ln L_ii: ln det(L L^T). */
double mml_gauss_logdet_chol(const double *L, int64_t n);

/* M = L^T S L for a lower-triangular L and a symmetric float S; only M's upper triangle is written.
 * tmp: 2*n*n doubles. */
void mml_gauss_lt_s_l(double *M, const double *L, const float *S, int64_t n, double *tmp);
/* Eigenvalues w (any order) of the symmetric A (upper triangle read, A destroyed), and eigenvectors as the ROWS of Zt when Zt != NULL.
 * work: 3*n + n*n doubles (the n*n part only when Zt != NULL). Returns 0, or -1 when QL did not converge. */
int mml_gauss_sym_eig(double *A, int64_t n, double *w, double *Zt, double *work);

/* Householder reduction of the symmetric A (upper triangle read, destroyed) to the tridiagonal (w, e):
 * w the diagonal, e[i] couples i and i+1 (e[n-1] = 0). work: 3*n doubles. */
void mml_gauss_tridiag(double *A, int64_t n, double *w, double *e, double *work);
/* Eigenvalues of `count` (<= 8) symmetric tridiagonals (w[k], e[k]) of size n by implicit QL with Wilkinson shifts,
 * in place into w[k]. The problems advance one rotation each in turn, so their independent sqrt/divide chains
 * overlap in the CPU instead of each waiting on its own latency (about 3x the throughput of LAPACK dsterf at
 * n = 64). Returns 0, or -1 when some problem did not converge in 64 sweeps per eigenvalue. */
int mml_gauss_ql_values(double **w, double **e, int64_t n, int count);

/* C = A B, C = A^T B, C = A B^T (all n x n, C distinct from A and B). */
void mml_gauss_mm_nn(double *C, const double *A, const double *B, int64_t n);
void mml_gauss_mm_tn(double *C, const double *A, const double *B, int64_t n);
void mml_gauss_mm_nt(double *C, const double *A, const double *B, int64_t n);
/* F1 = V^T diag(f1) V and F2 = V^T diag(f2) V for V given by rows (Zt); F2 may be NULL. */
void mml_gauss_spectral(double *F1, const double *f1, double *F2, const double *f2, const double *Zt, int64_t n);

/* sum_i a_i b_i (double x float) and x^T A x. */
double mml_gauss_dot_df(const double *a, const float *b, int64_t n);
double mml_gauss_quad(const double *A, const double *x, int64_t n);

/* ---- per-Gaussian preparation shared by the distance kernels and their backward passes.
 * Gaussian g < n_a is A_g, else B_{g - n_a}. Each requested array holds one d x d (or one scalar) per Gaussian of
 * its side; NULL means not needed. chol: lower Cholesky factor; linv: its inverse; inv: the covariance's inverse;
 * logdet: ln det; trace: tr. */
typedef struct {
    double *chol, *linv, *inv, *logdet, *trace;
} mml_gauss_side;

/* Image id of position pos of a set list: image_index[pos], or pos itself when image_index is NULL (mml_gauss.h). */
static inline int64_t mml_gauss_image_at(const int64_t *image_index, int64_t pos) {
    return image_index ? image_index[pos] : pos;
}

/* The argument checks of a fit over descriptor sets (mml_gauss.h: NULL, sizes, image ids, at least 2 descriptors per
 * set); returns the largest set size (images) in *max_images. */
int mml_gauss_check_sets(const float *maps, int64_t n_images, int64_t d, int64_t hw, const int64_t *image_index,
                         const int64_t *set_offsets, int64_t n_sets, int64_t *max_images);
/* Checks the common arguments of a distance (NULL, sizes, finiteness). */
int mml_gauss_check_pairs(const void *out, const float *mu_a, const float *sigma_a, int64_t n_a, const float *mu_b,
                          const float *sigma_b, int64_t n_b, int64_t d);
/* Factors every covariance of both sides on nthreads threads and fills the requested arrays.
 * Returns MML_OK, MML_ERR_LAPACK (a covariance is not positive definite) or MML_ERR_NOMEM. */
int mml_gauss_prepare(mml_gauss_side *a, mml_gauss_side *b, const float *sigma_a, int64_t n_a, const float *sigma_b,
                      int64_t n_b, int64_t d, int nthreads);
/* Allocates the requested arrays of a side (flags: which of chol, linv, inv; logdet and trace always). */
int mml_gauss_side_alloc(mml_gauss_side *s, int64_t n, int64_t d, int chol, int linv, int inv);
void mml_gauss_side_free(mml_gauss_side *s);

/* 1 when the Gaussian kernels run their AVX-512 builds (the CPU has them and MML_KERNELS_ISA does not say
 * portable), else 0. */
int mml_gauss_use_avx512(void);
/* 1 when they use their AVX2 + FMA builds (mml_kernels_isa() is "avx2"). */
int mml_gauss_use_avx2(void);

/* 1 if every element of the float array is finite. */
int mml_gauss_all_finite(const float *x, int64_t count);

#endif
