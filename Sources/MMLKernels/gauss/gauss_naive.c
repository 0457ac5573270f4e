/* Naive double-precision twins of the Gaussian distances, for the tests: per pair, straight from the definitions
 * with LAPACK, independent of the fast kernels' algebra.
 *   w2:  S2^1/2 = U diag(sqrt(max(lambda, 0))) U^T by a full eigendecomposition (dsyevd), N = S2^1/2 S1 S2^1/2,
 *        tr N^1/2 = sum sqrt(max(eig(N), 0)).
 *   kl:  dpotrf / dpotrs solves of S2 X = S1 and S2 y = dmu; ln|S| from the Cholesky diagonal.
 *   mmlv1: two norms. */
#include "MMLKernels.h"
#include "gauss_internal.h"
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int check_naive(const double *out, const float *mu_a, const float *sigma_a, int64_t n_a, const float *mu_b,
                       const float *sigma_b, int64_t n_b, int64_t d) {
    if (!out || !mu_a || !sigma_a || !mu_b || !sigma_b || n_a <= 0 || n_b <= 0 || d <= 0) return MML_ERR_ARGUMENT;
    for (int64_t k = 0; k < n_a * d; k++)
        if (!isfinite(mu_a[k])) return MML_ERR_NONFINITE;
    for (int64_t k = 0; k < n_b * d; k++)
        if (!isfinite(mu_b[k])) return MML_ERR_NONFINITE;
    for (int64_t k = 0; k < n_a * d * d; k++)
        if (!isfinite(sigma_a[k])) return MML_ERR_NONFINITE;
    for (int64_t k = 0; k < n_b * d * d; k++)
        if (!isfinite(sigma_b[k])) return MML_ERR_NONFINITE;
    return MML_OK;
}

static void to_double(double *y, const float *x, int64_t n) {
    for (int64_t k = 0; k < n; k++) y[k] = x[k];
}

/* ln det S via dpotrf on a copy; returns nonzero when S is not positive definite. */
static int chol_logdet(double *L, const float *S, int64_t d, double *logdet) {
    to_double(L, S, d * d);
    if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)d, L, (lapack_int)d) != 0) return 1;
    double s = 0.0;
    for (int64_t i = 0; i < d; i++) s += log(L[i * d + i]);
    *logdet = 2.0 * s;
    return 0;
}

/* Rt = S^1/2 via eigendecomposition; returns nonzero on failure. */
static int sqrtm(double *R, const double *S, int64_t d, double *U, double *w) {
    memcpy(U, S, sizeof(double) * (size_t)(d * d));
    if (LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'L', (lapack_int)d, U, (lapack_int)d, w) != 0) return 1;
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < d; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < d; k++) s += U[i * d + k] * sqrt(w[k] > 0.0 ? w[k] : 0.0) * U[j * d + k];
            R[i * d + j] = s;
        }
    return 0;
}

int mml_gaussian_w2_naive(double *out, const float *mu_a, const float *sigma_a, int64_t n_a, const float *mu_b,
                          const float *sigma_b, int64_t n_b, int64_t d) {
    int st = check_naive(out, mu_a, sigma_a, n_a, mu_b, sigma_b, n_b, d);
    if (st) return st;
    const int64_t dd = d * d;
    double *buf = (double *)malloc(sizeof(double) * (size_t)(6 * dd + d));
    if (!buf) return MML_ERR_NOMEM;
    double *S1 = buf, *S2 = buf + dd, *R = buf + 2 * dd, *U = buf + 3 * dd, *T = buf + 4 * dd, *N = buf + 5 * dd,
           *w = buf + 6 * dd;
    double ld;
    for (int64_t g = 0; g < n_a && st == MML_OK; g++)
        if (chol_logdet(T, sigma_a + g * dd, d, &ld)) st = MML_ERR_LAPACK;
    for (int64_t g = 0; g < n_b && st == MML_OK; g++)
        if (chol_logdet(T, sigma_b + g * dd, d, &ld)) st = MML_ERR_LAPACK;
    for (int64_t i = 0; i < n_a && st == MML_OK; i++)
        for (int64_t j = 0; j < n_b && st == MML_OK; j++) {
            to_double(S1, sigma_a + i * dd, dd);
            to_double(S2, sigma_b + j * dd, dd);
            if (sqrtm(R, S2, d, U, w)) {
                st = MML_ERR_LAPACK;
                break;
            }
            for (int64_t p = 0; p < d; p++) /* T = R S1 */
                for (int64_t q = 0; q < d; q++) {
                    double s = 0.0;
                    for (int64_t k = 0; k < d; k++) s += R[p * d + k] * S1[k * d + q];
                    T[p * d + q] = s;
                }
            for (int64_t p = 0; p < d; p++) /* N = T R */
                for (int64_t q = 0; q < d; q++) {
                    double s = 0.0;
                    for (int64_t k = 0; k < d; k++) s += T[p * d + k] * R[k * d + q];
                    N[p * d + q] = s;
                }
            if (LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'L', (lapack_int)d, N, (lapack_int)d, w) != 0) {
                st = MML_ERR_LAPACK;
                break;
            }
            double tr = 0.0, m2 = 0.0;
            for (int64_t k = 0; k < d; k++) {
                tr += S1[k * d + k] + S2[k * d + k] - 2.0 * sqrt(w[k] > 0.0 ? w[k] : 0.0);
                double t = (double)mu_a[i * d + k] - (double)mu_b[j * d + k];
                m2 += t * t;
            }
            out[i * n_b + j] = m2 + tr;
        }
    free(buf);
    return st;
}

/* KL(N(mp, Sp) || N(mq, Sq)). */
static int kl_naive_one(double *res, const float *mp, const float *Sp, const float *mq, const float *Sq, int64_t d,
                        double *Lq, double *Lp, double *X, double *y) {
    const int64_t dd = d * d;
    double ldq, ldp;
    if (chol_logdet(Lq, Sq, d, &ldq) || chol_logdet(Lp, Sp, d, &ldp)) return 1;
    to_double(X, Sp, dd);
    if (LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', (lapack_int)d, (lapack_int)d, Lq, (lapack_int)d, X, (lapack_int)d))
        return 1;
    for (int64_t k = 0; k < d; k++) y[k] = (double)mq[k] - (double)mp[k];
    if (LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', (lapack_int)d, 1, Lq, (lapack_int)d, y, 1)) return 1;
    double tr = 0.0, maha = 0.0;
    for (int64_t k = 0; k < d; k++) {
        tr += X[k * d + k];
        maha += ((double)mq[k] - (double)mp[k]) * y[k];
    }
    *res = 0.5 * (tr + maha - (double)d + ldq - ldp);
    return 0;
}

int mml_gaussian_kl_naive(double *out, const float *mu_a, const float *sigma_a, int64_t n_a, const float *mu_b,
                          const float *sigma_b, int64_t n_b, int64_t d, mml_kl_direction direction) {
    int st = check_naive(out, mu_a, sigma_a, n_a, mu_b, sigma_b, n_b, d);
    if (st) return st;
    if (direction < MML_KL_QUERY_CLASS || direction > MML_KL_SYMMETRIC) return MML_ERR_ARGUMENT;
    const int64_t dd = d * d;
    double *buf = (double *)malloc(sizeof(double) * (size_t)(3 * dd + d));
    if (!buf) return MML_ERR_NOMEM;
    for (int64_t i = 0; i < n_a && st == MML_OK; i++)
        for (int64_t j = 0; j < n_b && st == MML_OK; j++) {
            const float *ma = mu_a + i * d, *Sa = sigma_a + i * dd, *mb = mu_b + j * d, *Sb = sigma_b + j * dd;
            double ab = 0.0, ba = 0.0;
            if (kl_naive_one(&ab, ma, Sa, mb, Sb, d, buf, buf + dd, buf + 2 * dd, buf + 3 * dd) ||
                kl_naive_one(&ba, mb, Sb, ma, Sa, d, buf, buf + dd, buf + 2 * dd, buf + 3 * dd)) {
                st = MML_ERR_LAPACK;
                break;
            }
            out[i * n_b + j] = direction == MML_KL_QUERY_CLASS ? ab
                               : direction == MML_KL_CLASS_QUERY ? ba
                                                                 : 0.5 * (ab + ba);
        }
    free(buf);
    return st;
}

int mml_gaussian_mmlv1_naive(double *out, const float *mu_a, const float *sigma_a, int64_t n_a, const float *mu_b,
                             const float *sigma_b, int64_t n_b, int64_t d) {
    int st = check_naive(out, mu_a, sigma_a, n_a, mu_b, sigma_b, n_b, d);
    if (st) return st;
    for (int64_t i = 0; i < n_a; i++)
        for (int64_t j = 0; j < n_b; j++) {
            double m = 0.0, f = 0.0;
            for (int64_t k = 0; k < d; k++) {
                double t = (double)mu_a[i * d + k] - (double)mu_b[j * d + k];
                m += t * t;
            }
            for (int64_t k = 0; k < d * d; k++) {
                double t = (double)sigma_a[i * d * d + k] - (double)sigma_b[j * d * d + k];
                f += t * t;
            }
            out[i * n_b + j] = sqrt(m) / (double)d + sqrt(f) / (double)(d * d);
        }
    return MML_OK;
}
