/* Runtime dispatch of the dense double kernels in gauss_kern_body.h: one AVX-512 build (selected when the CPU and
 * the OS support it, see mml_kernels_isa) and one portable build; and the finite check of the inputs. */
#include "gauss_internal.h"
#include "MMLKernels.h"
#include "mml_isa.h"
#include <float.h>
#include <math.h>
#include <string.h>

/* ---- interleaved implicit QL (eigenvalues only) */

typedef struct {
    double *w, *e;
    int64_t n, l, m, i;
    double s, c, p, g;
    int iter, in_sweep, done, fail;
} ql_state;

/* Finds the next unreduced block starting at l and sets up a QL sweep from m - 1 down to l with the Wilkinson shift
 * of the leading 2x2; returns 0 when every eigenvalue has converged (or the iteration limit was hit). */
static int ql_setup(ql_state *q) {
    double *w = q->w, *e = q->e;
    const int64_t n = q->n;
    while (q->l < n) {
        int64_t l = q->l, m = l;
        for (; m < n - 1; m++) {
            double dd = fabs(w[m]) + fabs(w[m + 1]);
            if (fabs(e[m]) <= DBL_EPSILON * dd) break;
        }
        if (m == l) {
            q->l++;
            q->iter = 0;
            continue;
        }
        if (q->iter++ == 64) {
            q->fail = 1;
            return 0;
        }
        double g = (w[l + 1] - w[l]) / (2.0 * e[l]);
        double r = sqrt(g * g + 1.0);
        q->g = w[m] - w[l] + e[l] / (g + copysign(r, g));
        q->s = q->c = 1.0;
        q->p = 0.0;
        q->m = m;
        q->i = m - 1;
        q->in_sweep = 1;
        return 1;
    }
    return 0;
}

/* One plane rotation of the current sweep (sqrt instead of hypot: the magnitudes here are far from overflow). */
static inline void ql_step(ql_state *q) {
    double *w = q->w, *e = q->e;
    const int64_t i = q->i;
    double f = q->s * e[i], b = q->c * e[i], g = q->g, p = q->p;
    double r = sqrt(f * f + g * g);
    e[i + 1] = r;
    if (r == 0.0) { /* underflow: the block splits; restart from l */
        w[i + 1] -= p;
        e[q->m] = 0.0;
        q->in_sweep = 0;
        return;
    }
    double s = f / r, c = g / r;
    g = w[i + 1] - p;
    r = (w[i] - g) * s + 2.0 * c * b;
    p = s * r;
    w[i + 1] = g + p;
    g = c * r - b;
    q->s = s, q->c = c, q->p = p, q->g = g;
    if (--q->i < q->l) {
        w[q->l] -= p;
        e[q->l] = g;
        e[q->m] = 0.0;
        q->in_sweep = 0;
    }
}

int mml_gauss_ql_values(double **w, double **e, int64_t n, int count) {
    ql_state q[8];
    if (count > 8) count = 8;
    int active = count, fail = 0;
    for (int k = 0; k < count; k++) {
        memset(&q[k], 0, sizeof(q[k]));
        q[k].w = w[k], q[k].e = e[k], q[k].n = n;
        e[k][n - 1] = 0.0;
    }
    while (active) {
        for (int k = 0; k < count; k++) {
            if (q[k].done) continue;
            if (!q[k].in_sweep && !ql_setup(&q[k])) {
                q[k].done = 1;
                fail |= q[k].fail;
                active--;
                continue;
            }
            ql_step(&q[k]);
        }
    }
    return fail ? -1 : 0;
}

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>
#define GK_HAVE_AVX512 1
#define GK_IS_AVX512 1
#define GK_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define GK(name) gk_##name##_avx512
#include "gauss_kern_body.h"
#undef GK_ATTR
#undef GK
#undef GK_IS_AVX512
#endif

#if defined(__x86_64__) && defined(__clang__)
/* The portable bodies compiled for AVX2 + FMA (CPUs without AVX-512): 256-bit vectors and fused multiply-adds. */
#define GK_HAVE_AVX2 1
#define GK_IS_AVX512 0
#define GK_ATTR __attribute__((target("avx2,fma")))
#define GK(name) gk_##name##_avx2
#include "gauss_kern_body.h"
#undef GK_ATTR
#undef GK
#undef GK_IS_AVX512
#endif

#define GK_IS_AVX512 0
#define GK_ATTR
#define GK(name) gk_##name##_portable
#include "gauss_kern_body.h"
#undef GK_ATTR
#undef GK

/* An MML_ISA_ level (a build this file lacks falls back to portable), -1 = not decided yet. A benign race: every
 * thread computes the same answer. */
static int gk_isa = -1;

static inline int isa_level(void) {
    int v = __atomic_load_n(&gk_isa, __ATOMIC_RELAXED);
    if (v < 0) {
        v = mml_kernels_isa_level();
#ifndef GK_HAVE_AVX512
        if (v == MML_ISA_AVX512) v = MML_ISA_PORTABLE;
#endif
#ifndef GK_HAVE_AVX2
        if (v == MML_ISA_AVX2) v = MML_ISA_PORTABLE;
#endif
        __atomic_store_n(&gk_isa, v, __ATOMIC_RELAXED);
    }
    return v;
}

int mml_gauss_use_avx512(void) { return isa_level() == MML_ISA_AVX512; }
int mml_gauss_use_avx2(void) { return isa_level() == MML_ISA_AVX2; }

#if defined(GK_HAVE_AVX512) && defined(GK_HAVE_AVX2)
#define DISPATCH(name, ...)                                                                                       \
    __extension__({                                                                                               \
        const int level_ = isa_level();                                                                           \
        level_ == MML_ISA_AVX512 ? gk_##name##_avx512(__VA_ARGS__)                                                \
        : level_ == MML_ISA_AVX2 ? gk_##name##_avx2(__VA_ARGS__)                                                  \
                                 : gk_##name##_portable(__VA_ARGS__);                                             \
    })
#else
#define DISPATCH(name, ...) gk_##name##_portable(__VA_ARGS__)
#endif

int mml_gauss_cholesky_f(double *L, const float *S, int64_t n) { return DISPATCH(cholesky_f, L, S, n); }
void mml_gauss_tri_inverse(double *Li, const double *L, int64_t n) { DISPATCH(tri_inverse, Li, L, n); }
void mml_gauss_spd_inverse(double *Sinv, const double *Li, int64_t n) { DISPATCH(spd_inverse, Sinv, Li, n); }
void mml_gauss_lt_s_l(double *M, const double *L, const float *S, int64_t n, double *tmp) {
    DISPATCH(lt_s_l, M, L, S, n, tmp);
}
void mml_gauss_tridiag(double *A, int64_t n, double *w, double *e, double *work) {
    DISPATCH(tridiag, A, n, w, e, work, work + n);
}
int mml_gauss_sym_eig(double *A, int64_t n, double *w, double *Zt, double *work) {
    return DISPATCH(sym_eig, A, n, w, Zt, work);
}
void mml_gauss_mm_nn(double *C, const double *A, const double *B, int64_t n) { DISPATCH(mm_nn, C, A, B, n); }
void mml_gauss_mm_tn(double *C, const double *A, const double *B, int64_t n) { DISPATCH(mm_tn, C, A, B, n); }
void mml_gauss_mm_nt(double *C, const double *A, const double *B, int64_t n) { DISPATCH(mm_nt, C, A, B, n); }
void mml_gauss_spectral(double *F1, const double *f1, double *F2, const double *f2, const double *Zt, int64_t n) {
    DISPATCH(spectral, F1, f1, F2, f2, Zt, n);
}

double mml_gauss_dot_df(const double *a, const float *b, int64_t n) { return DISPATCH(dot_df, a, b, n); }
double mml_gauss_quad(const double *A, const double *x, int64_t n) { return DISPATCH(quad, A, x, n); }

double mml_gauss_logdet_chol(const double *L, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += log(L[i * n + i]);
    return 2.0 * s;
}

int mml_gauss_all_finite(const float *x, int64_t count) { return mml_scan_finite(isa_level(), x, count, NULL); }
