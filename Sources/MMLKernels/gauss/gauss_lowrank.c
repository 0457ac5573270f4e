/* KL divergences between Gaussians fitted to descriptor sets, through their low-rank form (METHOD.md 2.3).
 *
 * A set of n descriptors (d channels) gives Sigma = eps I + U U^T with U = (X - mu) / sqrt(n - 1), d x n. When n is
 * well under d (ResNet-12's 5 x 5 maps: n = 25 per image, d = 640) everything KL needs follows from n x n matrices:
 *     K = eps I_n + U^T U = L L^T,   ln|Sigma| = (d - n) ln eps + ln|K|,
 *     Sigma^-1 = (I - W^T W) / eps   with W = L^-1 U^T (n x d),
 * so that, for KL(N_p || N_q) = 1/2 [tr(Sq^-1 Sp) + dmu^T Sq^-1 dmu - d + ln|Sq| - ln|Sp|], dmu = mu_p - mu_q:
 *     tr(Sq^-1 Sp) = (d - |Wq|_F^2) + (|Up|_F^2 - |Wq Up|_F^2) / eps,
 *     dmu^T Sq^-1 dmu = (|dmu|^2 - |Wq dmu|^2) / eps.
 * Per Gaussian O(d n^2), per pair O(d n_q n_p), against O(d^3) per Gaussian and O(d^2) per pair for the dense form.
 * All in double: the differences above cancel by up to a factor of (largest eigenvalue) / eps, well within double's
 * precision for the ridges in use, and Sigma itself is never rounded to float (the dense fit rounds it).
 *
 * Every loop is plain C with a fixed order of additions (the sums over channels run in ascending order; the vector
 * loops are element-wise), compiled once without target attributes, so on x86-64 the bits depend neither on the CPU
 * nor on the thread count or the task order. */
#include "MMLKernels.h"
#include "gauss_internal.h"
#include "mml_parallel.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One fitted Gaussian in low-rank form; its arrays point into the call's one allocation. */
typedef struct {
    int64_t n;
    double *mu;      /* d */
    double *U;       /* d x n, row k = channel k */
    double *W;       /* n x d, L^-1 U^T */
    double *L;       /* n x n, the lower Cholesky factor of K (kept for the backward only, else NULL) */
    double logdet, wnorm2, unorm2;
} lr_gauss;

typedef struct {
    lr_gauss *g;     /* the sets of A, then those of B */
    const float *maps_a, *maps_b;
    const int64_t *index_a, *index_b, *offsets_a, *offsets_b;
    int64_t n_a, d, hw;
    double eps;
    double *K_scratch; /* per thread: nmax x nmax */
    int64_t nmax;
    int status;
} fit_ctx;

static void fit_task(void *vctx, int64_t s, int tid) {
    fit_ctx *c = (fit_ctx *)vctx;
    const int side_a = s < c->n_a;
    const int64_t set = side_a ? s : s - c->n_a, d = c->d, hw = c->hw;
    const float *maps = side_a ? c->maps_a : c->maps_b;
    const int64_t *index = side_a ? c->index_a : c->index_b, *off = side_a ? c->offsets_a : c->offsets_b;
    const int64_t first = off[set], cnt = off[set + 1] - first;
    lr_gauss *g = c->g + s;
    const int64_t n = g->n;
    /* mu in ascending (image, position) order, then U = (X - mu) / sqrt(n - 1) */
    const double scale = 1.0 / sqrt((double)(n - 1));
    g->unorm2 = 0.0;
    for (int64_t ch = 0; ch < d; ch++) {
        double sum = 0.0;
        for (int64_t m = 0; m < cnt; m++) {
            const float *x = maps + (mml_gauss_image_at(index, first + m) * d + ch) * hw;
            for (int64_t t = 0; t < hw; t++) sum += (double)x[t];
        }
        const double mc = sum / (double)n;
        g->mu[ch] = mc;
        double *u = g->U + ch * n;
        for (int64_t m = 0; m < cnt; m++) {
            const float *x = maps + (mml_gauss_image_at(index, first + m) * d + ch) * hw;
            for (int64_t t = 0; t < hw; t++) u[m * hw + t] = ((double)x[t] - mc) * scale;
        }
        for (int64_t j = 0; j < n; j++) g->unorm2 += u[j] * u[j];
    }
    /* K = eps I + U^T U, row i accumulated over the channels in ascending order */
    double *K = c->K_scratch + (size_t)tid * (size_t)(c->nmax * c->nmax);
    for (int64_t k = 0; k < n * n; k++) K[k] = 0.0;
    for (int64_t ch = 0; ch < d; ch++) {
        const double *u = g->U + ch * n;
        for (int64_t i = 0; i < n; i++) {
            const double ui = u[i];
            double *row = K + i * n;
            for (int64_t j = 0; j <= i; j++) row[j] += ui * u[j];
        }
    }
    /* K = L L^T in place (lower) */
    double logdet_k = 0.0;
    for (int64_t j = 0; j < n; j++) {
        double *Kj = K + j * n;
        double v = Kj[j] + c->eps;
        for (int64_t k = 0; k < j; k++) v -= Kj[k] * Kj[k];
        if (!(v > 0.0) || !isfinite(v)) {
            mml_keep_first_status(&c->status, MML_ERR_LAPACK);
            return;
        }
        const double l = sqrt(v);
        Kj[j] = l;
        logdet_k += log(l);
        for (int64_t i = j + 1; i < n; i++) {
            double *Ki = K + i * n;
            double t = Ki[j];
            for (int64_t k = 0; k < j; k++) t -= Ki[k] * Kj[k];
            Ki[j] = t / l;
        }
    }
    g->logdet = (double)(d - n) * log(c->eps) + 2.0 * logdet_k;
    if (g->L)
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) g->L[i * n + j] = j <= i ? K[i * n + j] : 0.0;
    /* W = L^-1 U^T by rows: W_i = (U^T_i - sum_{j<i} L_ij W_j) / L_ii, element-wise over the d channels */
    for (int64_t i = 0; i < n; i++) {
        double *w = g->W + i * d;
        for (int64_t ch = 0; ch < d; ch++) w[ch] = g->U[ch * n + i];
        for (int64_t j = 0; j < i; j++) {
            const double l = K[i * n + j];
            const double *wj = g->W + j * d;
            for (int64_t ch = 0; ch < d; ch++) w[ch] -= l * wj[ch];
        }
        const double l = K[i * n + i];
        for (int64_t ch = 0; ch < d; ch++) w[ch] /= l;
    }
    double w2 = 0.0;
    for (int64_t k = 0; k < n * d; k++) w2 += g->W[k] * g->W[k];
    g->wnorm2 = w2;
}

/* KL(N_p || N_q); tmp: n_p + d doubles. */
static double kl_pair(const lr_gauss *p, const lr_gauss *q, int64_t d, double eps, double *tmp) {
    double *row = tmp, *dmu = tmp + p->n;
    double wu = 0.0; /* |Wq Up|_F^2: row i of Wq Up accumulated over the channels in ascending order */
    for (int64_t i = 0; i < q->n; i++) {
        const double *w = q->W + i * d;
        for (int64_t j = 0; j < p->n; j++) row[j] = 0.0;
        for (int64_t ch = 0; ch < d; ch++) {
            const double wk = w[ch];
            const double *u = p->U + ch * p->n;
            for (int64_t j = 0; j < p->n; j++) row[j] += wk * u[j];
        }
        for (int64_t j = 0; j < p->n; j++) wu += row[j] * row[j];
    }
    double dd = 0.0, wd = 0.0;
    for (int64_t ch = 0; ch < d; ch++) {
        dmu[ch] = p->mu[ch] - q->mu[ch];
        dd += dmu[ch] * dmu[ch];
    }
    for (int64_t i = 0; i < q->n; i++) {
        const double *w = q->W + i * d;
        double s = 0.0;
        for (int64_t ch = 0; ch < d; ch++) s += w[ch] * dmu[ch];
        wd += s * s;
    }
    const double trace = ((double)d - q->wnorm2) + (p->unorm2 - wu) / eps;
    const double quad = (dd - wd) / eps;
    return 0.5 * (trace + quad - (double)d + q->logdet - p->logdet);
}

typedef struct {
    float *out;
    const lr_gauss *a, *b;
    int64_t n_b, d;
    double eps;
    mml_kl_direction dir;
    double *tmp; /* per thread: tmp_stride */
    int64_t tmp_stride;
} pair_ctx;

static void pair_task(void *vctx, int64_t p, int tid) {
    const pair_ctx *c = (const pair_ctx *)vctx;
    const int64_t i = p / c->n_b, j = p % c->n_b;
    double *tmp = c->tmp + (size_t)tid * (size_t)c->tmp_stride;
    double r;
    if (c->dir == MML_KL_QUERY_CLASS) r = kl_pair(c->a + i, c->b + j, c->d, c->eps, tmp);
    else if (c->dir == MML_KL_CLASS_QUERY) r = kl_pair(c->b + j, c->a + i, c->d, c->eps, tmp);
    else r = 0.5 * (kl_pair(c->a + i, c->b + j, c->d, c->eps, tmp) + kl_pair(c->b + j, c->a + i, c->d, c->eps, tmp));
    c->out[p] = (float)r;
}

int mml_gaussian_kl_lowrank_preferred(int64_t d, int64_t most_descriptors) {
    return d > 0 && most_descriptors > 0 && 4 * most_descriptors <= d;
}

/* The Gaussians of both sides (A's sets, then B's) fitted in one allocation; with_l keeps each Cholesky factor. */
typedef struct {
    lr_gauss *g;
    double *store;
} lr_fitted;

static void lr_free(lr_fitted *f) {
    free(f->g), free(f->store);
    f->g = NULL, f->store = NULL;
}

static int lr_fit_all(lr_fitted *f, const float *maps_a, const int64_t *index_a, const int64_t *offsets_a,
                      int64_t n_sets_a, const float *maps_b, const int64_t *index_b, const int64_t *offsets_b,
                      int64_t n_sets_b, int64_t d, int64_t hw, int64_t nmax, double eps, int with_l,
                      int32_t nthreads) {
    const int64_t n_sets = n_sets_a + n_sets_b;
    /* per Gaussian mu (d), U (d n), W (n d), L (n n, with_l only) */
    size_t total = 0;
    for (int64_t s = 0; s < n_sets; s++) {
        const int64_t *off = s < n_sets_a ? offsets_a : offsets_b;
        const int64_t set = s < n_sets_a ? s : s - n_sets_a, n = (off[set + 1] - off[set]) * hw;
        total += (size_t)d * (size_t)(1 + 2 * n) + (with_l ? (size_t)(n * n) : 0);
    }
    const int nt = mml_thread_count(nthreads, n_sets);
    f->g = (lr_gauss *)calloc((size_t)n_sets, sizeof(lr_gauss));
    f->store = (double *)malloc(sizeof(double) * total);
    double *K = (double *)malloc(sizeof(double) * (size_t)(nmax * nmax) * (size_t)nt);
    if (!f->g || !f->store || !K) {
        free(K), lr_free(f);
        return MML_ERR_NOMEM;
    }
    double *at = f->store;
    for (int64_t s = 0; s < n_sets; s++) {
        const int64_t *off = s < n_sets_a ? offsets_a : offsets_b;
        const int64_t set = s < n_sets_a ? s : s - n_sets_a, n = (off[set + 1] - off[set]) * hw;
        lr_gauss *g = f->g + s;
        g->n = n;
        g->mu = at, at += d;
        g->U = at, at += d * n;
        g->W = at, at += d * n;
        if (with_l) g->L = at, at += n * n;
    }
    fit_ctx fc = {f->g, maps_a, maps_b, index_a, index_b, offsets_a, offsets_b, n_sets_a, d, hw, eps, K, nmax, MML_OK};
    mml_parallel_for(n_sets, nt, fit_task, &fc);
    free(K);
    if (fc.status != MML_OK) lr_free(f);
    return fc.status;
}

int mml_gaussian_kl_maps_lowrank_f32(float *out, const float *maps_a, int64_t n_images_a, const int64_t *image_index_a,
                                     const int64_t *set_offsets_a, int64_t n_sets_a, const float *maps_b,
                                     int64_t n_images_b, const int64_t *image_index_b, const int64_t *set_offsets_b,
                                     int64_t n_sets_b, int64_t d, int64_t hw, float eps, mml_kl_direction direction,
                                     int32_t nthreads) {
    if (!out) return MML_ERR_ARGUMENT;
    int64_t most_a = 0, most_b = 0;
    int st = MML_OK;
    if (!(eps > 0.0f) || !isfinite(eps) || direction < MML_KL_QUERY_CLASS || direction > MML_KL_SYMMETRIC)
        st = MML_ERR_ARGUMENT;
    if (st == MML_OK)
        st = mml_gauss_check_sets(maps_a, n_images_a, d, hw, image_index_a, set_offsets_a, n_sets_a, &most_a);
    if (st == MML_OK)
        st = mml_gauss_check_sets(maps_b, n_images_b, d, hw, image_index_b, set_offsets_b, n_sets_b, &most_b);
    if (st == MML_OK &&
        (!mml_gauss_all_finite(maps_a, n_images_a * d * hw) || !mml_gauss_all_finite(maps_b, n_images_b * d * hw)))
        st = MML_ERR_NONFINITE;
    if (st != MML_OK) {
        /* never leave NaN or stale values behind (when the sizes are known well enough to say where out ends) */
        if (n_sets_a > 0 && n_sets_b > 0)
            for (int64_t k = 0; k < n_sets_a * n_sets_b; k++) out[k] = 0.0f;
        return st;
    }
    const int64_t nmax = (most_a > most_b ? most_a : most_b) * hw;
    const int nt_pair = mml_thread_count(nthreads, n_sets_a * n_sets_b);
    lr_fitted f = {NULL, NULL};
    double *tmp = (double *)malloc(sizeof(double) * (size_t)(nmax + d) * (size_t)nt_pair);
    st = tmp ? lr_fit_all(&f, maps_a, image_index_a, set_offsets_a, n_sets_a, maps_b, image_index_b, set_offsets_b,
                          n_sets_b, d, hw, nmax, (double)eps, 0, nthreads)
             : MML_ERR_NOMEM;
    if (st == MML_OK) {
        pair_ctx pc = {out, f.g, f.g + n_sets_a, n_sets_b, d, (double)eps, direction, tmp, nmax + d};
        mml_parallel_for(n_sets_a * n_sets_b, nt_pair, pair_task, &pc);
    }
    lr_free(&f), free(tmp);
    if (st != MML_OK)
        for (int64_t k = 0; k < n_sets_a * n_sets_b; k++) out[k] = 0.0f; /* never leave NaN or stale values behind */
    return st;
}

/* ------------------------------------------------------------------------------------------------ backward
 *
 * dL/dX of L = sum_ij dout_ij KL_ij, X a set's descriptors (d x n), through Sigma = eps I + U U^T, U = (X - mu 1^T) /
 * sqrt(n - 1). With G = dL/dSigma (symmetric) and m = dL/dmu:
 *     dL/dX = 2 G U P / sqrt(n - 1) + m 1^T / n,   P = I - 1 1^T / n   (U P = U, so P only removes rounding).
 * Per pair, for KL(N_p || N_q) with weight w and dmu = mu_p - mu_q (mml_gauss.h's dense backward):
 *     G_p += w/2 (Sq^-1 - Sp^-1),   m_p += w Sq^-1 dmu,
 *     G_q += w/2 (Sq^-1 - Sq^-1 (Sp + dmu dmu^T) Sq^-1),   m_q -= w Sq^-1 dmu.
 * Only G U is needed, and every product with an inverse goes through the low-rank form
 *     S^-1 Y = (Y - W^T (W Y)) / eps,   S^-1 U = U K^-1 = W^T L^-1 = V (solved from V L = W^T),
 * so a task owning Gaussian s loops over the other side in index order and accumulates, for s in the role of p,
 * (w / 2 eps) Wo^T (Wo Us) and the scalar weights of Us and Vs, and for s in the role of q the n-column block
 * Y = sum w/2 (So Vs + dmu (dmu^T Vs)) with So Vs = eps Vs + Uo (Uo^T Vs), then applies Ss^-1 to Y once.
 * Per pair 4 d n_s n_o multiply-adds, per Gaussian O(d n^2). Plain C in a fixed order, as the forward. */

/* Z (no x m) = W Y: W no x d, Y d x m by channel rows. */
static void lr_wy(double *Z, const double *W, int64_t no, const double *Y, int64_t m, int64_t d) {
    for (int64_t i = 0; i < no; i++) {
        double *z = Z + i * m;
        const double *w = W + i * d;
        for (int64_t j = 0; j < m; j++) z[j] = 0.0;
        for (int64_t ch = 0; ch < d; ch++) {
            const double wk = w[ch], *y = Y + ch * m;
            for (int64_t j = 0; j < m; j++) z[j] += wk * y[j];
        }
    }
}

/* R (d x m) += c W^T Z: W no x d, Z no x m; row: m doubles of scratch. */
static void lr_add_wtz(double *R, double c, const double *W, int64_t no, const double *Z, int64_t m, int64_t d,
                       double *row) {
    for (int64_t ch = 0; ch < d; ch++) {
        for (int64_t j = 0; j < m; j++) row[j] = 0.0;
        for (int64_t i = 0; i < no; i++) {
            const double wk = W[i * d + ch], *z = Z + i * m;
            for (int64_t j = 0; j < m; j++) row[j] += wk * z[j];
        }
        double *r = R + ch * m;
        for (int64_t j = 0; j < m; j++) r[j] += c * row[j];
    }
}

/* T (no x m) = U^T V: U d x no, V d x m, both by channel rows. */
static void lr_utv(double *T, const double *U, int64_t no, const double *V, int64_t m, int64_t d) {
    for (int64_t k = 0; k < no * m; k++) T[k] = 0.0;
    for (int64_t ch = 0; ch < d; ch++) {
        const double *u = U + ch * no, *v = V + ch * m;
        for (int64_t i = 0; i < no; i++) {
            const double ui = u[i];
            double *t = T + i * m;
            for (int64_t j = 0; j < m; j++) t[j] += ui * v[j];
        }
    }
}

/* Y (d x m) += c U T: U d x no, T no x m; row: m doubles of scratch. */
static void lr_add_ut(double *Y, double c, const double *U, int64_t no, const double *T, int64_t m, int64_t d,
                      double *row) {
    for (int64_t ch = 0; ch < d; ch++) {
        const double *u = U + ch * no;
        for (int64_t j = 0; j < m; j++) row[j] = 0.0;
        for (int64_t i = 0; i < no; i++) {
            const double ui = u[i], *t = T + i * m;
            for (int64_t j = 0; j < m; j++) row[j] += ui * t[j];
        }
        double *y = Y + ch * m;
        for (int64_t j = 0; j < m; j++) y[j] += c * row[j];
    }
}

/* out (d) += c S^-1 x = c (x - W^T (W x)) / eps; t: n doubles. */
static void lr_add_sinv_vec(double *out, double c, const lr_gauss *g, const double *x, int64_t d, double eps,
                            double *t) {
    for (int64_t i = 0; i < g->n; i++) {
        const double *w = g->W + i * d;
        double s = 0.0;
        for (int64_t ch = 0; ch < d; ch++) s += w[ch] * x[ch];
        t[i] = s;
    }
    for (int64_t ch = 0; ch < d; ch++) {
        double s = 0.0;
        for (int64_t i = 0; i < g->n; i++) s += g->W[i * d + ch] * t[i];
        out[ch] += c * (x[ch] - s) / eps;
    }
}

typedef struct {
    const lr_gauss *g; /* A's sets, then B's */
    const float *dout;
    int64_t n_a, n_b, d, nmax;
    double eps;
    mml_kl_direction dir;
    double *dx;      /* per Gaussian d x n: dL/dX by channel rows (at dx_at[s]) */
    const size_t *dx_at;
    double *scratch; /* per thread: scratch_stride */
    size_t scratch_stride;
    int64_t first; /* task k computes Gaussian first + k: only the sides whose gradient is asked for */
} back_ctx;

static void back_task(void *vctx, int64_t task, int tid) {
    const back_ctx *c = (const back_ctx *)vctx;
    const int64_t s = c->first + task;
    const int side_a = s < c->n_a;
    const int64_t self = side_a ? s : s - c->n_a, n_other = side_a ? c->n_b : c->n_a, d = c->d, nmax = c->nmax;
    const lr_gauss *gs = c->g + s, *others = side_a ? c->g + c->n_a : c->g;
    const int64_t n = gs->n;
    const double eps = c->eps;
    double *ws = c->scratch + (size_t)tid * c->scratch_stride;
    double *V = ws, *R = V + d * nmax, *Y = R + d * nmax, *T = Y + d * nmax, *row = T + nmax * nmax,
           *dm = row + (nmax > d ? nmax : d), *mg = dm + d, *yv = mg + d, *t = yv + d;
    /* V = Ss^-1 Us = Us K^-1 = W^T L^-1: per channel the row v with v L = (W^T)_ch, by back substitution */
    for (int64_t ch = 0; ch < d; ch++) {
        double *v = V + ch * n;
        for (int64_t j = n - 1; j >= 0; j--) {
            double x = gs->W[j * d + ch];
            for (int64_t i = j + 1; i < n; i++) x -= v[i] * gs->L[i * n + j];
            v[j] = x / gs->L[j * n + j];
        }
    }
    for (int64_t k = 0; k < d * n; k++) R[k] = 0.0, Y[k] = 0.0;
    for (int64_t k = 0; k < d; k++) mg[k] = 0.0, yv[k] = 0.0;
    double c_u = 0.0, c_v = 0.0, c_y = 0.0; /* R += c_u Us + c_v Vs;  Y += c_y Vs */
    /* s is p (the first argument of KL) with weight w_p, and q with w_q, per direction and side */
    const int s_is_p_qc = side_a;
    for (int64_t o = 0; o < n_other; o++) {
        const double g = side_a ? c->dout[self * c->n_b + o] : c->dout[o * c->n_b + self];
        if (g == 0.0) continue;
        double w_p, w_q;
        if (c->dir == MML_KL_SYMMETRIC) w_p = w_q = 0.5 * g;
        else if ((c->dir == MML_KL_QUERY_CLASS) == s_is_p_qc) w_p = g, w_q = 0.0;
        else w_p = 0.0, w_q = g;
        const lr_gauss *go = others + o;
        const int64_t no = go->n;
        for (int64_t ch = 0; ch < d; ch++) dm[ch] = gs->mu[ch] - go->mu[ch];
        if (w_p != 0.0) { /* G_s += w/2 (So^-1 - Ss^-1), m_s += w So^-1 (mu_s - mu_o) */
            lr_wy(T, go->W, no, gs->U, n, d);
            lr_add_wtz(R, -w_p / (2.0 * eps), go->W, no, T, n, d, row);
            c_u += w_p / (2.0 * eps);
            c_v -= 0.5 * w_p;
            lr_add_sinv_vec(mg, w_p, go, dm, d, eps, t);
        }
        if (w_q != 0.0) { /* G_s += w/2 (Ss^-1 - Ss^-1 (So + dmu dmu^T) Ss^-1), m_s += w Ss^-1 (mu_s - mu_o) */
            c_v += 0.5 * w_q;
            c_y += 0.5 * w_q * eps; /* So Vs = eps Vs + Uo (Uo^T Vs) */
            lr_utv(T, go->U, no, V, n, d);
            lr_add_ut(Y, 0.5 * w_q, go->U, no, T, n, d, row);
            for (int64_t j = 0; j < n; j++) row[j] = 0.0;
            for (int64_t ch = 0; ch < d; ch++) {
                const double dk = dm[ch], *v = V + ch * n;
                for (int64_t j = 0; j < n; j++) row[j] += dk * v[j];
            }
            for (int64_t ch = 0; ch < d; ch++) {
                const double a = 0.5 * w_q * dm[ch];
                double *y = Y + ch * n;
                for (int64_t j = 0; j < n; j++) y[j] += a * row[j];
            }
            for (int64_t ch = 0; ch < d; ch++) yv[ch] += w_q * dm[ch];
        }
    }
    /* R += c_u Us + c_v Vs - Ss^-1 (Y + c_y Vs);  m += Ss^-1 y */
    for (int64_t k = 0; k < d * n; k++) {
        Y[k] += c_y * V[k];
        R[k] += c_u * gs->U[k] + c_v * V[k] - Y[k] / eps;
    }
    lr_wy(T, gs->W, n, Y, n, d);
    lr_add_wtz(R, 1.0 / eps, gs->W, n, T, n, d, row);
    lr_add_sinv_vec(mg, 1.0, gs, yv, d, eps, t);
    /* dX = 2 R P / sqrt(n - 1) + m 1^T / n */
    double *dx = c->dx + c->dx_at[s];
    const double f = 2.0 / sqrt((double)(n - 1));
    for (int64_t ch = 0; ch < d; ch++) {
        const double *r = R + ch * n;
        double mean = 0.0;
        for (int64_t j = 0; j < n; j++) mean += r[j];
        mean /= (double)n;
        const double add = mg[ch] / (double)n;
        for (int64_t j = 0; j < n; j++) dx[ch * n + j] = f * (r[j] - mean) + add;
    }
}

/* dmaps[image, channel, position] += dx of every set in set order. */
static void scatter_sets(float *dmaps, const double *dx, const size_t *dx_at, const int64_t *index,
                         const int64_t *offsets, int64_t n_sets, int64_t d, int64_t hw) {
    for (int64_t set = 0; set < n_sets; set++) {
        const int64_t first = offsets[set], cnt = offsets[set + 1] - first, n = cnt * hw;
        const double *x = dx + dx_at[set];
        for (int64_t m = 0; m < cnt; m++) {
            float *out = dmaps + mml_gauss_image_at(index, first + m) * d * hw;
            for (int64_t ch = 0; ch < d; ch++)
                for (int64_t t = 0; t < hw; t++) out[ch * hw + t] += (float)x[ch * n + m * hw + t];
        }
    }
}

int mml_gaussian_kl_maps_lowrank_backward_f32(float *dmaps_a, float *dmaps_b, const float *dout, const float *maps_a,
                                              int64_t n_images_a, const int64_t *image_index_a,
                                              const int64_t *set_offsets_a, int64_t n_sets_a, const float *maps_b,
                                              int64_t n_images_b, const int64_t *image_index_b,
                                              const int64_t *set_offsets_b, int64_t n_sets_b, int64_t d, int64_t hw,
                                              float eps, mml_kl_direction direction, int32_t nthreads) {
    if (!dout) return MML_ERR_ARGUMENT;
    if (!(eps > 0.0f) || !isfinite(eps) || direction < MML_KL_QUERY_CLASS || direction > MML_KL_SYMMETRIC)
        return MML_ERR_ARGUMENT;
    int64_t most_a = 0, most_b = 0;
    int st = mml_gauss_check_sets(maps_a, n_images_a, d, hw, image_index_a, set_offsets_a, n_sets_a, &most_a);
    if (st == MML_OK)
        st = mml_gauss_check_sets(maps_b, n_images_b, d, hw, image_index_b, set_offsets_b, n_sets_b, &most_b);
    if (st != MML_OK) return st;
    if (!mml_gauss_all_finite(maps_a, n_images_a * d * hw) || !mml_gauss_all_finite(maps_b, n_images_b * d * hw) ||
        !mml_gauss_all_finite(dout, n_sets_a * n_sets_b))
        return MML_ERR_NONFINITE;
    if (!dmaps_a && !dmaps_b) return MML_OK;
    const int64_t n_sets = n_sets_a + n_sets_b, nmax = (most_a > most_b ? most_a : most_b) * hw;
    size_t *dx_at = (size_t *)malloc(sizeof(size_t) * (size_t)(n_sets + 1));
    if (!dx_at) return MML_ERR_NOMEM;
    dx_at[0] = 0;
    for (int64_t s = 0; s < n_sets; s++) {
        const int64_t *off = s < n_sets_a ? set_offsets_a : set_offsets_b;
        const int64_t set = s < n_sets_a ? s : s - n_sets_a;
        dx_at[s + 1] = dx_at[s] + (size_t)(d * (off[set + 1] - off[set]) * hw);
    }
    const int nt = mml_thread_count(nthreads, n_sets);
    const size_t stride = (size_t)(3 * d * nmax + nmax * nmax + (nmax > d ? nmax : d) + 3 * d + nmax);
    double *dx = (double *)malloc(sizeof(double) * dx_at[n_sets]);
    double *scratch = (double *)malloc(sizeof(double) * stride * (size_t)nt);
    lr_fitted f = {NULL, NULL};
    st = dx && scratch ? lr_fit_all(&f, maps_a, image_index_a, set_offsets_a, n_sets_a, maps_b, image_index_b,
                                    set_offsets_b, n_sets_b, d, hw, nmax, (double)eps, 1, nthreads)
                       : MML_ERR_NOMEM;
    if (st == MML_OK) {
        /* every fit is needed (each side's pairs read the other's); the tasks only for the sides asked for */
        const int64_t first = dmaps_a ? 0 : n_sets_a, last = dmaps_b ? n_sets : n_sets_a;
        back_ctx bc = {f.g, dout, n_sets_a, n_sets_b, d, nmax, (double)eps, direction, dx, dx_at, scratch, stride,
                       first};
        mml_parallel_for(last - first, nt, back_task, &bc);
        if (dmaps_a) scatter_sets(dmaps_a, dx, dx_at, image_index_a, set_offsets_a, n_sets_a, d, hw);
        if (dmaps_b) scatter_sets(dmaps_b, dx, dx_at + n_sets_a, image_index_b, set_offsets_b, n_sets_b, d, hw);
    }
    lr_free(&f), free(dx), free(scratch), free(dx_at);
    return st;
}
