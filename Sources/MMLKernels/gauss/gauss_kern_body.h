/* Dense double-precision kernels of the Gaussian distances (included twice by gauss_linalg.c, no include guard),
 * compiled with GK_ATTR = the AVX-512 target attribute and with GK_ATTR empty (portable). GK(name) adds the suffix.
 * Every loop is a row axpy or a row dot product over contiguous memory, so the compiler vectorises it;
 * GK_VEC lets it reorder the double reductions of dot products. Matrices are n x n row-major. */

#define GK_VEC _Pragma("clang loop vectorize(enable) interleave(enable)")

#if GK_IS_AVX512
/* Explicit AVX-512 with a masked tail: the rows here are short (d ~ 64, often shorter), so a scalar remainder
 * loop after a 32-wide vectorised body would dominate. */
static inline GK_ATTR double GK(dot)(const double *restrict a, const double *restrict b, int64_t n) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm512_fmadd_pd(_mm512_loadu_pd(a + i), _mm512_loadu_pd(b + i), s0);
        s1 = _mm512_fmadd_pd(_mm512_loadu_pd(a + i + 8), _mm512_loadu_pd(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm512_fmadd_pd(_mm512_loadu_pd(a + i), _mm512_loadu_pd(b + i), s0);
    if (i < n) {
        __mmask8 m = (__mmask8)((1u << (n - i)) - 1u);
        s1 = _mm512_fmadd_pd(_mm512_maskz_loadu_pd(m, a + i), _mm512_maskz_loadu_pd(m, b + i), s1);
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
}

static inline GK_ATTR void GK(axpy)(double *restrict y, double a, const double *restrict x, int64_t n) {
    __m512d va = _mm512_set1_pd(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm512_storeu_pd(y + i, _mm512_fmadd_pd(va, _mm512_loadu_pd(x + i), _mm512_loadu_pd(y + i)));
    if (i < n) {
        __mmask8 m = (__mmask8)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_pd(y + i, m, _mm512_fmadd_pd(va, _mm512_maskz_loadu_pd(m, x + i), _mm512_maskz_loadu_pd(m, y + i)));
    }
}
#else
static inline GK_ATTR double GK(dot)(const double *restrict a, const double *restrict b, int64_t n) {
    double s = 0.0;
    GK_VEC
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline GK_ATTR void GK(axpy)(double *restrict y, double a, const double *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

#endif

/* sum_i a_i b_i with a float second operand (Frobenius products <A, S> of a double and a float matrix). */
static GK_ATTR double GK(dot_df)(const double *restrict a, const float *restrict b, int64_t n) {
    double s = 0.0;
    GK_VEC
    for (int64_t i = 0; i < n; i++) s += a[i] * (double)b[i];
    return s;
}

/* x^T A x for symmetric A. */
static GK_ATTR double GK(quad)(const double *restrict A, const double *restrict x, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += x[i] * GK(dot)(A + i * n, x, n);
    return s;
}

/* S = L L^T column by column: L_jj = sqrt(S_jj - sum_k<j L_jk^2), L_ij = (S_ij - sum_k<j L_ik L_jk) / L_jj. */
static GK_ATTR int GK(cholesky_f)(double *restrict L, const float *restrict S, int64_t n) {
    for (int64_t i = 0; i < n * n; i++) L[i] = 0.0;
    for (int64_t j = 0; j < n; j++) {
        double *Lj = L + j * n;
        double s = (double)S[j * n + j] - GK(dot)(Lj, Lj, j);
        if (!(s > 0.0) || !isfinite(s)) return (int)(j + 1);
        double ljj = sqrt(s);
        Lj[j] = ljj;
        double inv = 1.0 / ljj;
        for (int64_t i = j + 1; i < n; i++) {
            double *Li = L + i * n;
            Li[j] = ((double)S[i * n + j] - GK(dot)(Li, Lj, j)) * inv;
        }
    }
    return 0;
}

/* X = L^-1 row by row: X_i,0..i-1 = -(1/L_ii) sum_k<i L_ik X_k,0..k, X_ii = 1/L_ii. */
static GK_ATTR void GK(tri_inverse)(double *restrict X, const double *restrict L, int64_t n) {
    for (int64_t i = 0; i < n * n; i++) X[i] = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double *Xi = X + i * n;
        const double *Li = L + i * n;
        for (int64_t k = 0; k < i; k++) GK(axpy)(Xi, Li[k], X + k * n, k + 1);
        double inv = 1.0 / Li[i];
        for (int64_t k = 0; k < i; k++) Xi[k] *= -inv;
        Xi[i] = inv;
    }
}

/* S^-1 = Li^T Li with Li = L^-1 lower: row a = sum_{k>=a} Li_ka Li_k,0..k. Exactly symmetric (same terms). */
static GK_ATTR void GK(spd_inverse)(double *restrict Sinv, const double *restrict Li, int64_t n) {
    for (int64_t i = 0; i < n * n; i++) Sinv[i] = 0.0;
    for (int64_t a = 0; a < n; a++) {
        double *row = Sinv + a * n;
        for (int64_t k = a; k < n; k++) GK(axpy)(row, Li[k * n + a], Li + k * n, k + 1);
    }
}

/* Register-blocked panel: C[r][c0 .. c0+cw) = sum_{k0 <= k < k1} A[r*ars + k*aks] * Bm[k*ldb + c0 ..] for
 * r < rows <= 4 and cw <= 16: 8 accumulators, one row of Bm loaded per 4 rows of C. */
#if GK_IS_AVX512
static inline GK_ATTR void GK(panel)(double *restrict C, int64_t ldc, const double *restrict A, int64_t ars,
                                     int64_t aks, int rows, const double *restrict Bm, int64_t ldb, int64_t c0,
                                     int64_t cw, int64_t k0, int64_t k1) {
    __mmask8 m0 = (__mmask8)(cw >= 8 ? 0xff : (1u << cw) - 1u);
    __mmask8 m1 = (__mmask8)(cw >= 16 ? 0xff : cw > 8 ? (1u << (cw - 8)) - 1u : 0u);
    __m512d z = _mm512_setzero_pd();
    __m512d c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
    const double *a0 = A, *a1 = A + (rows > 1 ? ars : 0), *a2 = A + (rows > 2 ? 2 * ars : 0),
                 *a3 = A + (rows > 3 ? 3 * ars : 0);
    for (int64_t k = k0; k < k1; k++) {
        const double *bk = Bm + k * ldb + c0;
        __m512d b0 = _mm512_maskz_loadu_pd(m0, bk), b1 = _mm512_maskz_loadu_pd(m1, bk + 8);
        __m512d x0 = _mm512_set1_pd(a0[k * aks]), x1 = _mm512_set1_pd(a1[k * aks]);
        __m512d x2 = _mm512_set1_pd(a2[k * aks]), x3 = _mm512_set1_pd(a3[k * aks]);
        c00 = _mm512_fmadd_pd(x0, b0, c00), c01 = _mm512_fmadd_pd(x0, b1, c01);
        c10 = _mm512_fmadd_pd(x1, b0, c10), c11 = _mm512_fmadd_pd(x1, b1, c11);
        c20 = _mm512_fmadd_pd(x2, b0, c20), c21 = _mm512_fmadd_pd(x2, b1, c21);
        c30 = _mm512_fmadd_pd(x3, b0, c30), c31 = _mm512_fmadd_pd(x3, b1, c31);
    }
    __m512d acc[8] = {c00, c01, c10, c11, c20, c21, c30, c31};
    for (int r = 0; r < rows; r++) {
        _mm512_mask_storeu_pd(C + r * ldc + c0, m0, acc[2 * r]);
        if (m1) _mm512_mask_storeu_pd(C + r * ldc + c0 + 8, m1, acc[2 * r + 1]);
    }
}
#else
static inline GK_ATTR void GK(panel)(double *restrict C, int64_t ldc, const double *restrict A, int64_t ars,
                                     int64_t aks, int rows, const double *restrict Bm, int64_t ldb, int64_t c0,
                                     int64_t cw, int64_t k0, int64_t k1) {
    for (int r = 0; r < rows; r++) {
        double acc[16] = {0};
        for (int64_t k = k0; k < k1; k++) {
            double x = A[r * ars + k * aks];
            for (int64_t c = 0; c < cw; c++) acc[c] += x * Bm[k * ldb + c0 + c];
        }
        for (int64_t c = 0; c < cw; c++) C[r * ldc + c0 + c] = acc[c];
    }
}
#endif

/* M = L^T S L for a lower-triangular L: B = S L, then the upper triangle of M = L^T B, both by panels that skip
 * the zero half of L: column block c0.. of S L needs only k >= c0 (L_kc = 0 for c > k), and rows a.. of L^T B
 * need only k >= a. Only M's upper triangle is meaningful: sym_eig reads no other. tmp: 2 n^2 doubles. */
static GK_ATTR void GK(lt_s_l)(double *restrict M, const double *restrict L, const float *restrict S, int64_t n,
                              double *restrict tmp) {
    double *B = tmp, *Sd = tmp + n * n;
    for (int64_t i = 0; i < n * n; i++) Sd[i] = (double)S[i];
    for (int64_t c0 = 0; c0 < n; c0 += 16) {
        int64_t cw = n - c0 < 16 ? n - c0 : 16;
        for (int64_t i = 0; i < n; i += 4)
            GK(panel)(B + i * n, n, Sd + i * n, n, 1, (int)(n - i < 4 ? n - i : 4), L, n, c0, cw, c0, n);
    }
    for (int64_t a = 0; a < n; a += 4) {
        int rows = (int)(n - a < 4 ? n - a : 4);
        for (int64_t c0 = a & ~(int64_t)15; c0 < n; c0 += 16) {
            int64_t cw = n - c0 < 16 ? n - c0 : 16;
            GK(panel)(M + a * n, n, L + a, 1, n, rows, B, n, c0, cw, a, n);
        }
    }
}

static GK_ATTR void GK(mm_nn)(double *restrict C, const double *restrict A, const double *restrict B, int64_t n) {
    for (int64_t i = 0; i < n * n; i++) C[i] = 0.0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < n; k++) GK(axpy)(C + i * n, A[i * n + k], B + k * n, n);
}

static GK_ATTR void GK(mm_tn)(double *restrict C, const double *restrict A, const double *restrict B, int64_t n) {
    for (int64_t i = 0; i < n * n; i++) C[i] = 0.0;
    for (int64_t k = 0; k < n; k++)
        for (int64_t i = 0; i < n; i++) GK(axpy)(C + i * n, A[k * n + i], B + k * n, n);
}

static GK_ATTR void GK(mm_nt)(double *restrict C, const double *restrict A, const double *restrict B, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) C[i * n + j] = GK(dot)(A + i * n, B + j * n, n);
}

/* F = sum_k f_k z_k z_k^T over the rows z_k of Zt. */
static GK_ATTR void GK(spectral)(double *restrict F1, const double *restrict f1, double *restrict F2,
                                const double *restrict f2, const double *restrict Zt, int64_t n) {
    for (int64_t i = 0; i < n * n; i++) F1[i] = 0.0;
    if (F2)
        for (int64_t i = 0; i < n * n; i++) F2[i] = 0.0;
    for (int64_t k = 0; k < n; k++) {
        const double *z = Zt + k * n;
        for (int64_t a = 0; a < n; a++) {
            GK(axpy)(F1 + a * n, f1[k] * z[a], z, n);
            if (F2) GK(axpy)(F2 + a * n, f2[k] * z[a], z, n);
        }
    }
}

/* Householder reduction to tridiagonal form T = Q^T A Q, then implicit QL with Wilkinson
 * shifts on T. Step k reflects x = A[k+1.., k] onto beta e_1 with H = I - tau v v^T, v = x - beta e_1,
 * beta = -sign(x_0) ||x||, tau = 2 / v^T v, and updates the trailing block A22 <- H A22 H as the rank-2 update
 * A22 - v w^T - w v^T with p = tau A22 v, w = p - (tau/2)(p^T v) v. v is kept in row k of A (entries k+1..),
 * which the later steps never touch. Eigenvectors (rows of Zt) are Q^T = H_{n-3}...H_0 followed by the QL
 * plane rotations applied to row pairs. */
static GK_ATTR void GK(tridiag)(double *restrict A, int64_t n, double *restrict w, double *restrict e,
                               double *restrict tau, double *restrict p) {
    if (n == 1) {
        w[0] = A[0];
        e[0] = 0.0;
        return;
    }
    for (int64_t k = 0; k + 2 < n; k++) {
        int64_t m = n - k - 1;
        double *x = A + k * n + k + 1;
        double tail = GK(dot)(x + 1, x + 1, m - 1);
        w[k] = A[k * n + k];
        if (tail == 0.0) {
            e[k] = x[0];
            tau[k] = 0.0;
            continue;
        }
        double alpha = x[0];
        double norm = sqrt(alpha * alpha + tail);
        double beta = alpha > 0.0 ? -norm : norm;
        x[0] = alpha - beta;
        double t = 2.0 / (x[0] * x[0] + tail);
        tau[k] = t;
        /* Upper triangle only: row i of A22 holds A_ij for j >= i, which serve p_i (a dot product) and, by
         * symmetry, p_j for j > i (an axpy). */
        double *A22 = A + (k + 1) * n + (k + 1);
        for (int64_t i = 0; i < m; i++) p[i] = 0.0;
        for (int64_t i = 0; i < m; i++) {
            const double *row = A22 + i * n;
            p[i] += t * GK(dot)(row + i, x + i, m - i);
            GK(axpy)(p + i + 1, t * x[i], row + i + 1, m - i - 1);
        }
        double K = 0.5 * t * GK(dot)(p, x, m);
        GK(axpy)(p, -K, x, m);
        for (int64_t i = 0; i < m; i++) {
            double *row = A22 + i * n + i;
            GK(axpy)(row, -x[i], p + i, m - i);
            GK(axpy)(row, -p[i], x + i, m - i);
        }
        e[k] = beta;
    }
    w[n - 2] = A[(n - 2) * n + (n - 2)];
    e[n - 2] = A[(n - 2) * n + (n - 1)];
    w[n - 1] = A[(n - 1) * n + (n - 1)];
    e[n - 1] = 0.0;
}

static GK_ATTR int GK(sym_eig)(double *restrict A, int64_t n, double *restrict w, double *restrict Zt,
                              double *restrict work) {
    double *e = work, *p = work + n, *tau = work + 2 * n;
    GK(tridiag)(A, n, w, e, tau, p);
    if (n == 1) {
        if (Zt) Zt[0] = 1.0;
        return 0;
    }
    if (!Zt) {
        double *wp = w, *ep = e;
        return mml_gauss_ql_values(&wp, &ep, n, 1);
    }

    if (Zt) {
        for (int64_t i = 0; i < n * n; i++) Zt[i] = 0.0;
        for (int64_t i = 0; i < n; i++) Zt[i * n + i] = 1.0;
        for (int64_t k = 0; k + 2 < n; k++) {
            if (tau[k] == 0.0) continue;
            int64_t m = n - k - 1;
            const double *v = A + k * n + k + 1;
            double *rows = Zt + (k + 1) * n;
            for (int64_t c = 0; c < n; c++) p[c] = 0.0;
            for (int64_t i = 0; i < m; i++) GK(axpy)(p, v[i], rows + i * n, n);
            for (int64_t i = 0; i < m; i++) GK(axpy)(rows + i * n, -tau[k] * v[i], p, n);
        }
    }

    /* Implicit QL on (w, e): e[i] couples i and i+1. Deflate at the first negligible e[m] at or after l. */
    for (int64_t l = 0; l < n; l++) {
        int iter = 0;
        for (;;) {
            int64_t m = l;
            for (; m < n - 1; m++) {
                double dd = fabs(w[m]) + fabs(w[m + 1]);
                if (fabs(e[m]) <= DBL_EPSILON * dd) break;
            }
            if (m == l) break;
            if (iter++ == 64) return -1;
            double g = (w[l + 1] - w[l]) / (2.0 * e[l]);
            double r = sqrt(g * g + 1.0);
            g = w[m] - w[l] + e[l] / (g + copysign(r, g));
            double s = 1.0, c = 1.0, pp = 0.0;
            int64_t i = m - 1;
            int underflow = 0;
            for (; i >= l; i--) {
                double f = s * e[i], b = c * e[i];
                r = sqrt(f * f + g * g); /* hypot is ~10x slower; magnitudes here are far from overflow */
                e[i + 1] = r;
                if (r == 0.0) {
                    w[i + 1] -= pp;
                    e[m] = 0.0;
                    underflow = 1;
                    break;
                }
                s = f / r;
                c = g / r;
                g = w[i + 1] - pp;
                r = (w[i] - g) * s + 2.0 * c * b;
                pp = s * r;
                w[i + 1] = g + pp;
                g = c * r - b;
                if (Zt) {
                    double *zi = Zt + i * n, *zj = Zt + (i + 1) * n;
                    for (int64_t q = 0; q < n; q++) {
                        double zq = zj[q];
                        zj[q] = s * zi[q] + c * zq;
                        zi[q] = c * zi[q] - s * zq;
                    }
                }
            }
            if (underflow) continue;
            w[l] -= pp;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    return 0;
}

#undef GK_VEC
