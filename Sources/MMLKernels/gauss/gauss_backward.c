/* Backward passes of the Gaussian distances. Each side's gradients are produced by tasks that own one Gaussian of
 * that side and loop over the other side in index order, so the sums never depend on the thread count.
 *
 * W2 (S2 = L L^T, M = L^T S1 L = V diag(lambda) V^T): with T(S1, S2) = tr((S2^1/2 S1 S2^1/2)^1/2) = tr M^1/2,
 *   dT = 1/2 tr(M^-1/2 dM) = 1/2 tr(L M^-1/2 L^T dS1)  =>  dT/dS1 = 1/2 L M^-1/2 L^T   (= 1/2 the OT map A->B),
 *   and by the symmetry T(S1, S2) = tr((S1^1/2 S2 S1^1/2)^1/2) dT/dS2 is 1/2 the inverse map, L^-T M^1/2 L^-1.
 *   So dW2/dS1 = I - L M^-1/2 L^T and dW2/dS2 = I - L^-T M^1/2 L^-1. The class side sums the per-pair
 *   M^1/2 first (sum_i g_ij M_ij^1/2, kept per pair in a bounded buffer and added in row order) and transforms once.
 * KL(p||q) = 1/2 [<Sq^-1, Sp> + dmu^T Sq^-1 dmu - d + ln|Sq| - ln|Sp|], dmu = mu_q - mu_p:
 *   d/dSp = 1/2 (Sq^-1 - Sp^-1),  d/dmu_p = -Sq^-1 dmu,
 *   d/dSq = 1/2 (Sq^-1 - Sq^-1 (Sp + dmu dmu^T) Sq^-1),  d/dmu_q = Sq^-1 dmu;
 *   the Sq^-1 (.) Sq^-1 term is linear, so it is summed over the other side before the two products.
 *   Everything else is linear in per-Gaussian quantities too, so a task owning Gaussian s of one side sums over
 *   the other side's Gaussians o only A = sum w_so So^-1, sum w_so So^-1 mu_o, B = sum w_os (So + mu_o mu_o^T) and
 *   sum w_os mu_o (elementwise, vectorised; So^-1 mu_o and So + mu_o mu_o^T precomputed once per Gaussian), and
 *   expands dmu dmu^T afterwards: per pair 2 d^2 multiply-adds instead of 5 d^2 with two serial dot products.
 *   The sums run in double, where the expansion's cancellation costs nothing at feature scales. Built three
 *   times (AVX-512, AVX2 + FMA and baseline) with the same roundings (no contraction; the dot products stay serial).
 * mmlv1: d||x|| / dx = x / ||x|| (0 at x = 0, a valid subgradient). */
#include "MMLKernels.h"
#include "gauss_internal.h"
/* the AVX-512 and baseline builds of the KL side sums must round alike: no fused multiply-adds */
#pragma STDC FP_CONTRACT OFF
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void add_sym(float *dS, const double *acc, int64_t d) {
    for (int64_t p = 0; p < d; p++)
        for (int64_t q = 0; q < d; q++) dS[p * d + q] += (float)(0.5 * (acc[p * d + q] + acc[q * d + p]));
}

static int check_backward(const float *dout, const float *mu_a, const float *sigma_a, int64_t n_a, const float *mu_b,
                          const float *sigma_b, int64_t n_b, int64_t d) {
    int st = mml_gauss_check_pairs(dout, mu_a, sigma_a, n_a, mu_b, sigma_b, n_b, d);
    if (st) return st;
    return mml_gauss_all_finite(dout, n_a * n_b) ? MML_OK : MML_ERR_NONFINITE;
}

/* ------------------------------------------------------------------------------------------------ W2 */

typedef struct {
    float *dmu_a, *dsigma_a, *dmu_b, *dsigma_b;
    const float *dout, *mu_a, *sigma_a, *mu_b, *sigma_b;
    int64_t n_a, n_b, d;
    mml_gauss_side b;
    int64_t row0, rows; /* the current chunk of rows */
    double *pairs;  /* chunk rows x n_b x d^2: g_ij M_ij^1/2 (NULL when dsigma_b is not wanted) */
    double *accb;   /* n_b x d^2: running sum of the above over rows */
    double *scratch; /* per thread: 8 d^2 + 6 d */
    int status;
} w2b_ctx;

static void w2b_row(void *vctx, int64_t r, int tid) {
    w2b_ctx *c = (w2b_ctx *)vctx;
    const int64_t d = c->d, dd = d * d, i = c->row0 + r;
    double *ws = c->scratch + (size_t)tid * (size_t)(8 * dd + 6 * d);
    double *M = ws, *B = ws + dd, *Zt = ws + 2 * dd, *F1 = ws + 3 * dd, *F2 = ws + 4 * dd, *P = ws + 5 * dd,
           *R = ws + 6 * dd, *acc = ws + 7 * dd, *w = ws + 8 * dd, *f1 = w + d, *f2 = f1 + d, *work = f2 + d;
    const float *Sa = c->sigma_a + i * dd, *ma = c->mu_a + i * d;
    for (int64_t k = 0; k < dd; k++) acc[k] = 0.0;
    for (int64_t j = 0; j < c->n_b; j++) {
        double g = c->dout[i * c->n_b + j];
        double *slot = c->pairs ? c->pairs + (r * c->n_b + j) * dd : NULL;
        if (g == 0.0 || (!c->dsigma_a && !slot)) {
            if (slot) memset(slot, 0, sizeof(double) * (size_t)dd);
            continue;
        }
        const double *L = c->b.chol + j * dd;
        mml_gauss_lt_s_l(M, L, Sa, d, B); /* B: 2 d^2 of scratch, overlapping Zt (written only afterwards) */
        if (mml_gauss_sym_eig(M, d, w, Zt, work) != 0) {
            mml_keep_first_status(&c->status, MML_ERR_LAPACK);
            return;
        }
        double top = 0.0;
        for (int64_t k = 0; k < d; k++) top = w[k] > top ? w[k] : top;
        double floor = 1e-12 * (top > 0.0 ? top : 1.0);
        for (int64_t k = 0; k < d; k++) {
            double lam = w[k] > floor ? w[k] : floor;
            f1[k] = 1.0 / sqrt(lam);
            f2[k] = g * sqrt(w[k] > 0.0 ? w[k] : 0.0);
        }
        mml_gauss_spectral(F1, f1, slot ? F2 : NULL, f2, Zt, d);
        if (slot) memcpy(slot, F2, sizeof(double) * (size_t)dd);
        if (c->dsigma_a) { /* acc += g (I - L M^-1/2 L^T) */
            mml_gauss_mm_nn(P, L, F1, d);
            mml_gauss_mm_nt(R, P, L, d);
            for (int64_t k = 0; k < dd; k++) acc[k] -= g * R[k];
            for (int64_t k = 0; k < d; k++) acc[k * d + k] += g;
        }
    }
    if (c->dsigma_a) add_sym(c->dsigma_a + i * dd, acc, d);
    if (c->dmu_a)
        for (int64_t k = 0; k < d; k++) {
            double s = 0.0;
            for (int64_t j = 0; j < c->n_b; j++)
                s += c->dout[i * c->n_b + j] * 2.0 * ((double)ma[k] - (double)c->mu_b[j * d + k]);
            c->dmu_a[i * d + k] += (float)s;
        }
}

/* accb_j += sum over the chunk's rows, in row order, of g_ij M_ij^1/2. */
static void w2b_class_sum(void *vctx, int64_t j, int tid) {
    (void)tid;
    w2b_ctx *c = (w2b_ctx *)vctx;
    const int64_t dd = c->d * c->d;
    double *acc = c->accb + j * dd;
    for (int64_t r = 0; r < c->rows; r++) {
        const double *slot = c->pairs + (r * c->n_b + j) * dd;
        for (int64_t k = 0; k < dd; k++) acc[k] += slot[k];
    }
}

/* dS2_j += (sum_i g_ij) I - L^-T (sum_i g_ij M_ij^1/2) L^-1;  dmu_b_j += sum_i g_ij 2 (mu_b_j - mu_a_i). */
static void w2b_class_final(void *vctx, int64_t j, int tid) {
    w2b_ctx *c = (w2b_ctx *)vctx;
    const int64_t d = c->d, dd = d * d;
    double *ws = c->scratch + (size_t)tid * (size_t)(8 * dd + 6 * d);
    double gsum = 0.0;
    for (int64_t i = 0; i < c->n_a; i++) gsum += c->dout[i * c->n_b + j];
    if (c->dsigma_b) {
        const double *Li = c->b.linv + j * dd;
        double *T = ws, *R = ws + dd;
        mml_gauss_mm_tn(T, Li, c->accb + j * dd, d);
        mml_gauss_mm_nn(R, T, Li, d);
        for (int64_t k = 0; k < dd; k++) R[k] = -R[k];
        for (int64_t k = 0; k < d; k++) R[k * d + k] += gsum;
        add_sym(c->dsigma_b + j * dd, R, d);
    }
    if (c->dmu_b)
        for (int64_t k = 0; k < d; k++) {
            double s = 0.0;
            for (int64_t i = 0; i < c->n_a; i++)
                s += c->dout[i * c->n_b + j] * 2.0 * ((double)c->mu_b[j * d + k] - (double)c->mu_a[i * d + k]);
            c->dmu_b[j * d + k] += (float)s;
        }
}

int mml_gaussian_w2_backward_f32(float *dmu_a, float *dsigma_a, float *dmu_b, float *dsigma_b, const float *dout,
                                 const float *mu_a, const float *sigma_a, int64_t n_a, const float *mu_b,
                                 const float *sigma_b, int64_t n_b, int64_t d, int32_t nthreads) {
    int st = check_backward(dout, mu_a, sigma_a, n_a, mu_b, sigma_b, n_b, d);
    if (st) return st;
    const int64_t dd = d * d;
    w2b_ctx c;
    memset(&c, 0, sizeof(c));
    c.dmu_a = dmu_a, c.dsigma_a = dsigma_a, c.dmu_b = dmu_b, c.dsigma_b = dsigma_b;
    c.dout = dout, c.mu_a = mu_a, c.sigma_a = sigma_a, c.mu_b = mu_b, c.sigma_b = sigma_b;
    c.n_a = n_a, c.n_b = n_b, c.d = d;
    mml_gauss_side a;
    if (mml_gauss_side_alloc(&a, n_a, d, 0, 0, 0)) return MML_ERR_NOMEM;
    if (mml_gauss_side_alloc(&c.b, n_b, d, 1, 1, 0)) {
        mml_gauss_side_free(&a);
        return MML_ERR_NOMEM;
    }
    /* Rows per chunk: the per-pair buffer stays under 64 MiB. */
    int64_t chunk = (int64_t)((64u << 20) / ((size_t)n_b * (size_t)dd * sizeof(double)));
    if (chunk < 1) chunk = 1;
    if (chunk > n_a) chunk = n_a;
    int nt = mml_thread_count(nthreads, n_a > n_b ? n_a : n_b);
    st = mml_gauss_prepare(&a, &c.b, sigma_a, n_a, sigma_b, n_b, d, nthreads);
    if (st == MML_OK) {
        c.scratch = (double *)malloc(sizeof(double) * (size_t)(8 * dd + 6 * d) * (size_t)nt);
        if (dsigma_b) {
            c.pairs = (double *)malloc(sizeof(double) * (size_t)(chunk * n_b * dd));
            c.accb = (double *)calloc((size_t)(n_b * dd), sizeof(double));
        }
        if (!c.scratch || (dsigma_b && (!c.pairs || !c.accb))) st = MML_ERR_NOMEM;
    }
    for (int64_t r0 = 0; st == MML_OK && r0 < n_a; r0 += chunk) {
        c.row0 = r0;
        c.rows = r0 + chunk <= n_a ? chunk : n_a - r0;
        mml_parallel_for(c.rows, nt, w2b_row, &c);
        st = c.status;
        if (st == MML_OK && c.pairs) mml_parallel_for(n_b, nt, w2b_class_sum, &c);
    }
    if (st == MML_OK && (dmu_b || dsigma_b))
        mml_parallel_for(n_b, nt, w2b_class_final, &c);
    free(c.scratch), free(c.pairs), free(c.accb);
    mml_gauss_side_free(&a);
    mml_gauss_side_free(&c.b);
    return st;
}

/* ------------------------------------------------------------------------------------------------ KL, mmlv1 */

typedef enum { BW_KL, BW_MMLV1 } bw_kind;

/* One side's gradients: task s owns Gaussian s of `self` and loops over `other` in order. w_so(s, o) weighs
 * KL(self_s || other_o), w_os(s, o) weighs KL(other_o || self_s); mmlv1 uses g(s, o) only. */
typedef struct {
    bw_kind kind;
    float *dmu, *dsigma;
    const float *mu_s, *sigma_s, *mu_o, *sigma_o;
    const mml_gauss_side *self, *other;
    const float *dout;
    int self_is_a;
    mml_kl_direction dir;
    int64_t n_self, n_other, n_b, d;
    double *scratch; /* per thread: KL_SCRATCH(d) for KL, 4 d^2 + 3 d for mmlv1 */
    const double *v_o, *p_o; /* KL: the other side's So^-1 mu_o (d each) and So + mu_o mu_o^T (d^2 each, or NULL) */
} side_ctx;

static double pair_g(const side_ctx *c, int64_t s, int64_t o) {
    return c->self_is_a ? c->dout[s * c->n_b + o] : c->dout[o * c->n_b + s];
}

/* KL: Gaussians s0..s1-1 of `self` (a block of at most KL_BLOCK, see the header): the weighted sums over `other`,
 * with `other` in the outer loop so that each of its d x d matrices is read once per block (not once per s) while the
 * block's sums stay in L2; then per s, dmu dmu^T expanded. Every sum adds its terms in ascending o, as the loop per s
 * did, so the bits do not depend on the block. */
#define KL_BLOCK 8
/* per-thread scratch (doubles) of the KL block tasks */
#define KL_SCRATCH(d) ((size_t)KL_BLOCK * (size_t)(2 * (d) * (d) + 2 * (d) + 2) + (size_t)(2 * (d) * (d) + (d)))

static inline __attribute__((always_inline)) void kl_side_body(const side_ctx *c, int64_t s0, int64_t s1, int tid) {
    const int64_t d = c->d, dd = d * d, nb = s1 - s0;
    double *ws = c->scratch + (size_t)tid * KL_SCRATCH(d);
    double *A0 = ws, *B0 = A0 + KL_BLOCK * dd, *vs0 = B0 + KL_BLOCK * dd, *m0 = vs0 + KL_BLOCK * d;
    double *wso = m0 + KL_BLOCK * d, *wos = wso + KL_BLOCK, *T = wos + KL_BLOCK, *R = T + dd, *dm = R + dd;
    for (int64_t k = 0; k < nb * dd; k++) A0[k] = B0[k] = 0.0;
    for (int64_t k = 0; k < nb * d; k++) vs0[k] = m0[k] = 0.0;
    for (int64_t b = 0; b < nb; b++) wso[b] = wos[b] = 0.0;
    int qc = c->dir == MML_KL_QUERY_CLASS, cq = c->dir == MML_KL_CLASS_QUERY;
    for (int64_t o = 0; o < c->n_other; o++) {
        for (int64_t b = 0; b < nb; b++) {
            const int64_t s = s0 + b;
            double *A = A0 + b * dd, *B = B0 + b * dd, *vs = vs0 + b * d, *m = m0 + b * d;
            double g = pair_g(c, s, o);
            if (g == 0.0) continue;
            /* KL weights for this side: a is the query side */
            double w_ab = qc ? g : cq ? 0.0 : 0.5 * g, w_ba = cq ? g : qc ? 0.0 : 0.5 * g;
            double w_so = c->self_is_a ? w_ab : w_ba, w_os = c->self_is_a ? w_ba : w_ab;
            if (w_so != 0.0) { /* KL(self || other): dS_s = 1/2 (So^-1 - Ss^-1), dmu_s = -So^-1 (mu_o - mu_s) */
                const double *inv_o = c->other->inv + o * dd, *v = c->v_o + o * d;
                wso[b] += w_so;
                for (int64_t k = 0; k < dd; k++) A[k] += w_so * inv_o[k];
                for (int64_t k = 0; k < d; k++) vs[k] += w_so * v[k];
            }
            if (w_os != 0.0) { /* KL(other || self): dS_s = 1/2 (Ss^-1 - Ss^-1 (So + dd^T) Ss^-1), dmu_s = Ss^-1 (mu_s - mu_o) */
                const double *P = c->p_o + o * dd;
                const float *mo = c->mu_o + o * d;
                wos[b] += w_os;
                for (int64_t k = 0; k < dd; k++) B[k] += w_os * P[k];
                for (int64_t k = 0; k < d; k++) m[k] += w_os * (double)mo[k];
            }
        }
    }
    for (int64_t b = 0; b < nb; b++) {
        const int64_t s = s0 + b;
        double *A = A0 + b * dd, *B = B0 + b * dd, *vs = vs0 + b * d, *m = m0 + b * d;
        const double wso_sum = wso[b], wos_sum = wos[b];
        const float *ms = c->mu_s + s * d;
        const double *inv_s = c->self->inv + s * dd;
        /* dmu_s = A mu_s - sum w_so So^-1 mu_o - Ss^-1 (sum w_os mu_o - (sum w_os) mu_s) */
        for (int64_t p = 0; p < d; p++) {
            double t = 0.0;
            for (int64_t q = 0; q < d; q++) t += A[p * d + q] * (double)ms[q];
            dm[p] = t - vs[p];
        }
        if (wos_sum != 0.0) {
            /* u = sum w_os (mu_o - mu_s), kept in vs */
            for (int64_t k = 0; k < d; k++) vs[k] = m[k] - wos_sum * (double)ms[k];
            for (int64_t p = 0; p < d; p++) {
                double t = 0.0;
                for (int64_t q = 0; q < d; q++) t += inv_s[p * d + q] * vs[q];
                dm[p] -= t;
            }
            /* K = sum w_os (So + (mu_o - mu_s)(mu_o - mu_s)^T) = B - m mu_s^T - mu_s m^T + (sum w_os) mu_s mu_s^T */
            for (int64_t p = 0; p < d; p++) {
                double mp = (double)ms[p];
                for (int64_t q = 0; q < d; q++) {
                    double mq = (double)ms[q];
                    B[p * d + q] = B[p * d + q] - m[p] * mq - mp * m[q] + wos_sum * mp * mq;
                }
            }
            mml_gauss_mm_nn(T, inv_s, B, d);
            mml_gauss_mm_nn(R, T, inv_s, d);
            for (int64_t k = 0; k < dd; k++)
                A[k] = 0.5 * (A[k] - wso_sum * inv_s[k]) + 0.5 * (wos_sum * inv_s[k] - R[k]);
        } else {
            for (int64_t k = 0; k < dd; k++) A[k] = 0.5 * (A[k] - wso_sum * inv_s[k]);
        }
        if (c->dsigma) add_sym(c->dsigma + s * dd, A, d);
        if (c->dmu)
            for (int64_t k = 0; k < d; k++) c->dmu[s * d + k] += (float)dm[k];
    }
}

static void kl_side_portable(const side_ctx *c, int64_t s0, int64_t s1, int tid) { kl_side_body(c, s0, s1, tid); }
#if defined(__x86_64__) && defined(__clang__)
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"))) static void kl_side_avx512(const side_ctx *c,
                                                                                       int64_t s0, int64_t s1,
                                                                                       int tid) {
    kl_side_body(c, s0, s1, tid);
}
__attribute__((target("avx2,fma"))) static void kl_side_avx2(const side_ctx *c, int64_t s0, int64_t s1, int tid) {
    kl_side_body(c, s0, s1, tid);
}
#endif

/* KL: task t owns Gaussians t KL_BLOCK .. of `self`. */
static void kl_block_task(void *vctx, int64_t t, int tid) {
    const side_ctx *c = (const side_ctx *)vctx;
    const int64_t s0 = t * KL_BLOCK, s1 = s0 + KL_BLOCK < c->n_self ? s0 + KL_BLOCK : c->n_self;
#if defined(__x86_64__) && defined(__clang__)
    if (mml_gauss_use_avx512()) {
        kl_side_avx512(c, s0, s1, tid);
        return;
    }
    if (mml_gauss_use_avx2()) {
        kl_side_avx2(c, s0, s1, tid);
        return;
    }
#endif
    kl_side_portable(c, s0, s1, tid);
}

static void side_task(void *vctx, int64_t s, int tid) {
    side_ctx *c = (side_ctx *)vctx;
    /* mmlv1: g (mu_s - mu_o) / (d ||mu_s - mu_o||) and g (S_s - S_o) / (d^2 ||S_s - S_o||_F) */
    const int64_t d = c->d, dd = d * d;
    double *ws = c->scratch + (size_t)tid * (size_t)(4 * dd + 3 * d);
    double *acc = ws, *dm = ws + 4 * dd, *delta = dm + d;
    const float *ms = c->mu_s + s * d, *Ss = c->sigma_s + s * dd;
    for (int64_t k = 0; k < dd; k++) acc[k] = 0.0;
    for (int64_t k = 0; k < d; k++) dm[k] = 0.0;
    for (int64_t o = 0; o < c->n_other; o++) {
        double g = pair_g(c, s, o);
        if (g == 0.0) continue;
        const float *mo = c->mu_o + o * d, *So = c->sigma_o + o * dd;
        double nd = 0.0, nf = 0.0;
        for (int64_t k = 0; k < d; k++) {
            delta[k] = (double)ms[k] - (double)mo[k];
            nd += delta[k] * delta[k];
        }
        for (int64_t k = 0; k < dd; k++) {
            double t = (double)Ss[k] - (double)So[k];
            nf += t * t;
        }
        nd = sqrt(nd), nf = sqrt(nf);
        if (nd > 0.0)
            for (int64_t k = 0; k < d; k++) dm[k] += g * delta[k] / (nd * (double)d);
        if (nf > 0.0)
            for (int64_t k = 0; k < dd; k++) acc[k] += g * ((double)Ss[k] - (double)So[k]) / (nf * (double)dd);
    }
    if (c->dsigma) add_sym(c->dsigma + s * dd, acc, d);
    if (c->dmu)
        for (int64_t k = 0; k < d; k++) c->dmu[s * d + k] += (float)dm[k];
}

/* KL: per Gaussian of one side, v = S^-1 mu (d) and, when wanted, P = S + mu mu^T (d^2), in double; one task per
 * Gaussian, writing only its own rows. */
typedef struct {
    double *v, *P; /* P: NULL when not wanted */
    const mml_gauss_side *side;
    const float *mu, *sigma;
    int64_t d;
} kl_pre_ctx;

static void kl_precompute_task(void *vctx, int64_t i, int tid) {
    const kl_pre_ctx *c = (const kl_pre_ctx *)vctx;
    const int64_t d = c->d, dd = d * d;
    const double *inv = c->side->inv + i * dd;
    const float *m = c->mu + i * d, *S = c->sigma + i * dd;
    (void)tid;
    for (int64_t p = 0; p < d; p++) {
        double t = 0.0;
        for (int64_t q = 0; q < d; q++) t += inv[p * d + q] * (double)m[q];
        c->v[i * d + p] = t;
    }
    if (c->P)
        for (int64_t p = 0; p < d; p++)
            for (int64_t q = 0; q < d; q++)
                c->P[i * dd + p * d + q] = (double)S[p * d + q] + (double)m[p] * (double)m[q];
}

static int kl_precompute(double **v, double **P, const mml_gauss_side *side, const float *mu, const float *sigma,
                         int64_t n, int64_t d, int want_p, int32_t nthreads) {
    *v = (double *)malloc(sizeof(double) * (size_t)(n * d));
    *P = want_p ? (double *)malloc(sizeof(double) * (size_t)(n * d * d)) : NULL;
    if (!*v || (want_p && !*P)) return MML_ERR_NOMEM;
    kl_pre_ctx c = {*v, *P, side, mu, sigma, d};
    mml_parallel_for(n, nthreads, kl_precompute_task, &c);
    return MML_OK;
}

static int side_backward(bw_kind kind, float *dmu_a, float *dsigma_a, float *dmu_b, float *dsigma_b,
                         const float *dout, const float *mu_a, const float *sigma_a, int64_t n_a, const float *mu_b,
                         const float *sigma_b, int64_t n_b, int64_t d, mml_kl_direction dir, int32_t nthreads) {
    int st = check_backward(dout, mu_a, sigma_a, n_a, mu_b, sigma_b, n_b, d);
    if (st) return st;
    if (kind == BW_KL && (dir < MML_KL_QUERY_CLASS || dir > MML_KL_SYMMETRIC)) return MML_ERR_ARGUMENT;
    mml_gauss_side a, b;
    memset(&a, 0, sizeof(a)), memset(&b, 0, sizeof(b));
    if (kind == BW_KL) {
        if (mml_gauss_side_alloc(&a, n_a, d, 0, 0, 1)) return MML_ERR_NOMEM;
        if (mml_gauss_side_alloc(&b, n_b, d, 0, 0, 1)) {
            mml_gauss_side_free(&a);
            return MML_ERR_NOMEM;
        }
        st = mml_gauss_prepare(&a, &b, sigma_a, n_a, sigma_b, n_b, d, nthreads);
    }
    int nt = mml_thread_count(nthreads, n_a > n_b ? n_a : n_b);
    double *scratch = NULL, *v_a = NULL, *p_a = NULL, *v_b = NULL, *p_b = NULL;
    if (st == MML_OK) {
        const size_t per = kind == BW_KL ? KL_SCRATCH(d) : (size_t)(4 * d * d + 3 * d);
        scratch = (double *)malloc(sizeof(double) * per * (size_t)nt);
        if (!scratch) st = MML_ERR_NOMEM;
    }
    int need_a = dmu_a || dsigma_a, need_b = dmu_b || dsigma_b;
    if (st == MML_OK && kind == BW_KL) {
        /* side a's tasks read b's v (KL(a || b) terms) and P (KL(b || a) terms), and the other way round */
        int kl_ab = dir != MML_KL_CLASS_QUERY, kl_ba = dir != MML_KL_QUERY_CLASS;
        st = kl_precompute(&v_a, &p_a, &a, mu_a, sigma_a, n_a, d, need_b && kl_ab, nt);
        if (st == MML_OK) st = kl_precompute(&v_b, &p_b, &b, mu_b, sigma_b, n_b, d, need_a && kl_ba, nt);
    }
    if (st == MML_OK) {
        side_ctx ca = {kind, dmu_a, dsigma_a, mu_a, sigma_a, mu_b, sigma_b, &a, &b, dout, 1, dir, n_a, n_b, n_b, d,
                       scratch, v_b, p_b};
        side_ctx cb = {kind, dmu_b, dsigma_b, mu_b, sigma_b, mu_a, sigma_a, &b, &a, dout, 0, dir, n_b, n_a, n_b, d,
                       scratch, v_a, p_a};
        if (kind == BW_KL) {
            if (need_a) mml_parallel_for((n_a + KL_BLOCK - 1) / KL_BLOCK, nt, kl_block_task, &ca);
            if (need_b) mml_parallel_for((n_b + KL_BLOCK - 1) / KL_BLOCK, nt, kl_block_task, &cb);
        } else {
            if (need_a) mml_parallel_for(n_a, nt, side_task, &ca);
            if (need_b) mml_parallel_for(n_b, nt, side_task, &cb);
        }
    }
    free(scratch), free(v_a), free(p_a), free(v_b), free(p_b);
    mml_gauss_side_free(&a);
    mml_gauss_side_free(&b);
    return st;
}

int mml_gaussian_kl_backward_f32(float *dmu_a, float *dsigma_a, float *dmu_b, float *dsigma_b, const float *dout,
                                 const float *mu_a, const float *sigma_a, int64_t n_a, const float *mu_b,
                                 const float *sigma_b, int64_t n_b, int64_t d, mml_kl_direction direction,
                                 int32_t nthreads) {
    return side_backward(BW_KL, dmu_a, dsigma_a, dmu_b, dsigma_b, dout, mu_a, sigma_a, n_a, mu_b, sigma_b, n_b, d,
                         direction, nthreads);
}

int mml_gaussian_mmlv1_backward_f32(float *dmu_a, float *dsigma_a, float *dmu_b, float *dsigma_b, const float *dout,
                                    const float *mu_a, const float *sigma_a, int64_t n_a, const float *mu_b,
                                    const float *sigma_b, int64_t n_b, int64_t d, int32_t nthreads) {
    return side_backward(BW_MMLV1, dmu_a, dsigma_a, dmu_b, dsigma_b, dout, mu_a, sigma_a, n_a, mu_b, sigma_b, n_b, d,
                         MML_KL_QUERY_CLASS, nthreads);
}
