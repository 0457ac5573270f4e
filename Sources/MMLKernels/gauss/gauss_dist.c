/* Pairwise distances between Gaussians (METHOD.md 2.3): squared 2-Wasserstein, KL in three directions and the
 * MML v1 code's distance. Every covariance is factored once (Cholesky in double); a pair then costs
 *   w2:    M = L_b^T S_a L_b (S_b = L_b L_b^T) and the eigenvalues of M, whose square roots sum to
 *          tr((S_b^1/2 S_a S_b^1/2)^1/2) (M and S_b^1/2 S_a S_b^1/2 are similar) - O(d^3);
 *   kl:    <S_b^-1, S_a>_F + dmu^T S_b^-1 dmu from the precomputed inverse - O(d^2);
 *   mmlv1: two norms - O(d^2).
 * Pairs are independent tasks, so the output does not depend on the thread count. */
#include "MMLKernels.h"
#include "gauss_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int mml_gauss_check_pairs(const void *out, const float *mu_a, const float *sigma_a, int64_t n_a, const float *mu_b,
                          const float *sigma_b, int64_t n_b, int64_t d) {
    if (!out || !mu_a || !sigma_a || !mu_b || !sigma_b || n_a <= 0 || n_b <= 0 || d <= 0) return MML_ERR_ARGUMENT;
    if (!mml_gauss_all_finite(mu_a, n_a * d) || !mml_gauss_all_finite(sigma_a, n_a * d * d) ||
        !mml_gauss_all_finite(mu_b, n_b * d) || !mml_gauss_all_finite(sigma_b, n_b * d * d))
        return MML_ERR_NONFINITE;
    return MML_OK;
}

int mml_gauss_side_alloc(mml_gauss_side *s, int64_t n, int64_t d, int chol, int linv, int inv) {
    memset(s, 0, sizeof(*s));
    size_t m = (size_t)(n * d * d) * sizeof(double);
    s->logdet = (double *)malloc(sizeof(double) * (size_t)n);
    s->trace = (double *)malloc(sizeof(double) * (size_t)n);
    if (chol) s->chol = (double *)malloc(m);
    if (linv) s->linv = (double *)malloc(m);
    if (inv) s->inv = (double *)malloc(m);
    if (!s->logdet || !s->trace || (chol && !s->chol) || (linv && !s->linv) || (inv && !s->inv)) {
        mml_gauss_side_free(s);
        return MML_ERR_NOMEM;
    }
    return MML_OK;
}

void mml_gauss_side_free(mml_gauss_side *s) {
    free(s->chol), free(s->linv), free(s->inv), free(s->logdet), free(s->trace);
    memset(s, 0, sizeof(*s));
}

typedef struct {
    mml_gauss_side *a, *b;
    const float *sigma_a, *sigma_b;
    int64_t n_a, d;
    double *scratch; /* per thread 2 d^2 */
    int status;
} prep_ctx;

static void prep_task(void *vctx, int64_t g, int tid) {
    prep_ctx *c = (prep_ctx *)vctx;
    const int64_t d = c->d, dd = d * d;
    int side_a = g < c->n_a;
    int64_t idx = side_a ? g : g - c->n_a;
    mml_gauss_side *s = side_a ? c->a : c->b;
    const float *S = (side_a ? c->sigma_a : c->sigma_b) + idx * dd;
    double *tmp = c->scratch + (size_t)tid * 2 * (size_t)dd;
    double *L = s->chol ? s->chol + idx * dd : tmp;
    if (mml_gauss_cholesky_f(L, S, d) != 0) {
        mml_keep_first_status(&c->status, MML_ERR_LAPACK);
        return;
    }
    s->logdet[idx] = mml_gauss_logdet_chol(L, d);
    double tr = 0.0;
    for (int64_t i = 0; i < d; i++) tr += S[i * d + i];
    s->trace[idx] = tr;
    if (s->linv || s->inv) {
        double *Li = s->linv ? s->linv + idx * dd : tmp + dd;
        mml_gauss_tri_inverse(Li, L, d);
        if (s->inv) mml_gauss_spd_inverse(s->inv + idx * dd, Li, d);
    }
}

int mml_gauss_prepare(mml_gauss_side *a, mml_gauss_side *b, const float *sigma_a, int64_t n_a, const float *sigma_b,
                      int64_t n_b, int64_t d, int nthreads) {
    int nt = mml_thread_count(nthreads, n_a + n_b);
    prep_ctx c = {a, b, sigma_a, sigma_b, n_a, d, NULL, MML_OK};
    c.scratch = (double *)malloc(sizeof(double) * 2 * (size_t)(d * d) * (size_t)nt);
    if (!c.scratch) return MML_ERR_NOMEM;
    mml_parallel_for(n_a + n_b, nt, prep_task, &c);
    free(c.scratch);
    return c.status;
}

int mml_gaussian_diagnose_f32(int64_t *bad_index, int64_t *bad_detail, const float *mu, const float *sigma,
                              int64_t n, int64_t d) {
    if (!bad_index || !bad_detail || !mu || !sigma || n <= 0 || d <= 0) return MML_ERR_ARGUMENT;
    *bad_index = -1;
    *bad_detail = -1;
    double *L = (double *)malloc(sizeof(double) * (size_t)(d * d));
    if (!L) return MML_ERR_NOMEM;
    int st = MML_OK;
    for (int64_t g = 0; g < n && st == MML_OK; g++) {
        const float *S = sigma + g * d * d;
        if (!mml_gauss_all_finite(mu + g * d, d)) {
            *bad_index = g, *bad_detail = -1, st = MML_ERR_NONFINITE;
        } else if (!mml_gauss_all_finite(S, d * d)) {
            int64_t k = 0;
            while (isfinite(S[k])) k++;
            *bad_index = g, *bad_detail = k, st = MML_ERR_NONFINITE;
        } else {
            int col = mml_gauss_cholesky_f(L, S, d);
            if (col) *bad_index = g, *bad_detail = col - 1, st = MML_ERR_LAPACK;
        }
    }
    free(L);
    return st;
}

/* ---- the pair phase */

typedef enum { DIST_W2, DIST_KL, DIST_MMLV1 } dist_kind;

typedef struct {
    float *out;
    const float *mu_a, *sigma_a, *mu_b, *sigma_b;
    int64_t n_a, n_b, d;
    dist_kind kind;
    mml_kl_direction dir;
    mml_gauss_side a, b;
    double *scratch; /* per thread: 3 d^2 + (2 W2_GROUP + 4) d */
    int status;
} pair_ctx;

static double sq_dist(const float *x, const float *y, int64_t d) {
    double s = 0.0;
    for (int64_t k = 0; k < d; k++) {
        double t = (double)x[k] - (double)y[k];
        s += t * t;
    }
    return s;
}

/* 1/2 [<Sq^-1, Sp> + dmu^T Sq^-1 dmu - d + ln|Sq| - ln|Sp|]  = KL(N_p || N_q). */
static double kl_one(const double *inv_q, double logdet_q, const float *Sp, double logdet_p, const double *dmu,
                     int64_t d) {
    return 0.5 * (mml_gauss_dot_df(inv_q, Sp, d * d) + mml_gauss_quad(inv_q, dmu, d) - (double)d + logdet_q -
                  logdet_p);
}

static void pair_task(void *vctx, int64_t p, int tid) {
    pair_ctx *c = (pair_ctx *)vctx;
    const int64_t d = c->d, dd = d * d, i = p / c->n_b, j = p % c->n_b;
    const float *ma = c->mu_a + i * d, *mb = c->mu_b + j * d;
    const float *Sa = c->sigma_a + i * dd, *Sb = c->sigma_b + j * dd;
    double *ws = c->scratch + (size_t)tid * (size_t)(3 * dd + 4 * d);
    double r = 0.0;
    if (c->kind == DIST_W2) { /* handled in groups by w2_group_task */
        return;
    } else if (c->kind == DIST_KL) {
        double *dmu = ws;
        for (int64_t k = 0; k < d; k++) dmu[k] = (double)mb[k] - (double)ma[k];
        double ab = 0.0, ba = 0.0;
        if (c->dir != MML_KL_CLASS_QUERY) ab = kl_one(c->b.inv + j * dd, c->b.logdet[j], Sa, c->a.logdet[i], dmu, d);
        if (c->dir != MML_KL_QUERY_CLASS) ba = kl_one(c->a.inv + i * dd, c->a.logdet[i], Sb, c->b.logdet[j], dmu, d);
        r = c->dir == MML_KL_QUERY_CLASS ? ab : c->dir == MML_KL_CLASS_QUERY ? ba : 0.5 * (ab + ba);
    } else {
        double f = 0.0;
        for (int64_t k = 0; k < dd; k++) {
            double t = (double)Sa[k] - (double)Sb[k];
            f += t * t;
        }
        r = sqrt(sq_dist(ma, mb, d)) / (double)d + sqrt(f) / (double)dd;
    }
    c->out[p] = (float)r;
}

/* W2 for pairs 8g .. 8g+7: reduce each M = L_b^T S_a L_b to tridiagonal form, then find the eigenvalues of the
 * eight tridiagonals together (mml_gauss_ql_values interleaves their latency-bound QL sweeps). */
enum { W2_GROUP = 8 };

static void w2_group_task(void *vctx, int64_t grp, int tid) {
    pair_ctx *c = (pair_ctx *)vctx;
    const int64_t d = c->d, dd = d * d, total = c->n_a * c->n_b, p0 = grp * W2_GROUP;
    const int count = (int)(total - p0 < W2_GROUP ? total - p0 : W2_GROUP);
    double *ws = c->scratch + (size_t)tid * (size_t)(3 * dd + (2 * W2_GROUP + 4) * d);
    double *M = ws, *B = ws + dd /* 2 d^2 */, *work = ws + 3 * dd, *we = work + 3 * d;
    double *w[W2_GROUP], *e[W2_GROUP];
    for (int k = 0; k < count; k++) {
        int64_t p = p0 + k, i = p / c->n_b, j = p % c->n_b;
        w[k] = we + 2 * k * d, e[k] = w[k] + d;
        mml_gauss_lt_s_l(M, c->b.chol + j * dd, c->sigma_a + i * dd, d, B);
        mml_gauss_tridiag(M, d, w[k], e[k], work);
    }
    if (mml_gauss_ql_values(w, e, d, count) != 0) {
        mml_keep_first_status(&c->status, MML_ERR_LAPACK);
        return;
    }
    for (int k = 0; k < count; k++) {
        int64_t p = p0 + k, i = p / c->n_b, j = p % c->n_b;
        double t = 0.0;
        for (int64_t q = 0; q < d; q++) t += sqrt(w[k][q] > 0.0 ? w[k][q] : 0.0);
        double r = sq_dist(c->mu_a + i * d, c->mu_b + j * d, d) + c->a.trace[i] + c->b.trace[j] - 2.0 * t;
        c->out[p] = (float)r;
    }
}

static int run_pairs(float *out, const float *mu_a, const float *sigma_a, int64_t n_a, const float *mu_b,
                     const float *sigma_b, int64_t n_b, int64_t d, dist_kind kind, mml_kl_direction dir,
                     int32_t nthreads) {
    int st = mml_gauss_check_pairs(out, mu_a, sigma_a, n_a, mu_b, sigma_b, n_b, d);
    if (st) return st;
    if (kind == DIST_KL && (dir < MML_KL_QUERY_CLASS || dir > MML_KL_SYMMETRIC)) return MML_ERR_ARGUMENT;
    pair_ctx c;
    memset(&c, 0, sizeof(c));
    c.out = out, c.mu_a = mu_a, c.sigma_a = sigma_a, c.mu_b = mu_b, c.sigma_b = sigma_b;
    c.n_a = n_a, c.n_b = n_b, c.d = d, c.kind = kind, c.dir = dir;
    int64_t ntasks = kind == DIST_W2 ? (n_a * n_b + W2_GROUP - 1) / W2_GROUP : n_a * n_b;
    int nt = mml_thread_count(nthreads, ntasks);
    if (kind != DIST_MMLV1) {
        int inv_a = kind == DIST_KL && dir != MML_KL_QUERY_CLASS, inv_b = kind == DIST_KL && dir != MML_KL_CLASS_QUERY;
        if (mml_gauss_side_alloc(&c.a, n_a, d, 0, 0, inv_a) || mml_gauss_side_alloc(&c.b, n_b, d, kind == DIST_W2, 0, inv_b)) {
            mml_gauss_side_free(&c.a);
            return MML_ERR_NOMEM;
        }
        st = mml_gauss_prepare(&c.a, &c.b, sigma_a, n_a, sigma_b, n_b, d, nthreads);
    }
    if (st == MML_OK) {
        c.scratch = (double *)malloc(sizeof(double) * (size_t)(3 * d * d + (2 * W2_GROUP + 4) * d) * (size_t)nt);
        if (!c.scratch) st = MML_ERR_NOMEM;
    }
    if (st == MML_OK) {
        mml_parallel_for(ntasks, nt, kind == DIST_W2 ? w2_group_task : pair_task, &c);
        st = c.status;
    }
    free(c.scratch);
    mml_gauss_side_free(&c.a);
    mml_gauss_side_free(&c.b);
    if (st != MML_OK)
        for (int64_t k = 0; k < n_a * n_b; k++) out[k] = 0.0f; /* never leave NaN or stale values behind */
    return st;
}

int mml_gaussian_w2_f32(float *out, const float *mu_a, const float *sigma_a, int64_t n_a, const float *mu_b,
                        const float *sigma_b, int64_t n_b, int64_t d, int32_t nthreads) {
    return run_pairs(out, mu_a, sigma_a, n_a, mu_b, sigma_b, n_b, d, DIST_W2, MML_KL_QUERY_CLASS, nthreads);
}

int mml_gaussian_kl_f32(float *out, const float *mu_a, const float *sigma_a, int64_t n_a, const float *mu_b,
                        const float *sigma_b, int64_t n_b, int64_t d, mml_kl_direction direction, int32_t nthreads) {
    return run_pairs(out, mu_a, sigma_a, n_a, mu_b, sigma_b, n_b, d, DIST_KL, direction, nthreads);
}

int mml_gaussian_mmlv1_f32(float *out, const float *mu_a, const float *sigma_a, int64_t n_a, const float *mu_b,
                           const float *sigma_b, int64_t n_b, int64_t d, int32_t nthreads) {
    return run_pairs(out, mu_a, sigma_a, n_a, mu_b, sigma_b, n_b, d, DIST_MMLV1, MML_KL_QUERY_CLASS, nthreads);
}
