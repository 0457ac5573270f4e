/* Runtime dispatch of the dense double kernels in gauss_kern_body.h: one AVX-512 build (selected when the CPU and
 * the OS support it, see mml_kernels_isa) and one portable build. */
#include "gauss_internal.h"
#include "MMLKernels.h"
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

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

#define GK_IS_AVX512 0
#define GK_ATTR
#define GK(name) gk_##name##_portable
#include "gauss_kern_body.h"
#undef GK_ATTR
#undef GK

/* 1 = AVX-512, 0 = portable, -1 = not decided yet. A benign race: every thread computes the same answer. */
static int gk_isa = -1;

static inline int use_avx512(void) {
#ifdef GK_HAVE_AVX512
    int v = __atomic_load_n(&gk_isa, __ATOMIC_RELAXED);
    if (v < 0) {
        v = strcmp(mml_kernels_isa(), "avx512") == 0;
        __atomic_store_n(&gk_isa, v, __ATOMIC_RELAXED);
    }
    return v;
#else
    return 0;
#endif
}

#ifdef GK_HAVE_AVX512
#define DISPATCH(name, ...) (use_avx512() ? gk_##name##_avx512(__VA_ARGS__) : gk_##name##_portable(__VA_ARGS__))
#else
#define DISPATCH(name, ...) gk_##name##_portable(__VA_ARGS__)
#endif

int mml_gauss_cholesky_f(double *L, const float *S, int64_t n) { return DISPATCH(cholesky_f, L, S, n); }
void mml_gauss_tri_inverse(double *Li, const double *L, int64_t n) { DISPATCH(tri_inverse, Li, L, n); }
void mml_gauss_spd_inverse(double *Sinv, const double *Li, int64_t n) { DISPATCH(spd_inverse, Sinv, Li, n); }
void mml_gauss_lt_s_l(double *M, const double *L, const float *S, int64_t n, double *tmp) {
    DISPATCH(lt_s_l, M, L, S, n, tmp);
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
