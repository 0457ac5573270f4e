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

static inline int64_t image_at(const int64_t *image_index, int64_t pos) { return image_index ? image_index[pos] : pos; }

/* One fitted Gaussian in low-rank form; its arrays point into the call's one allocation. */
typedef struct {
    int64_t n;
    double *mu;      /* d */
    double *U;       /* d x n, row k = channel k */
    double *W;       /* n x d, L^-1 U^T */
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
            const float *x = maps + (image_at(index, first + m) * d + ch) * hw;
            for (int64_t t = 0; t < hw; t++) sum += (double)x[t];
        }
        const double mc = sum / (double)n;
        g->mu[ch] = mc;
        double *u = g->U + ch * n;
        for (int64_t m = 0; m < cnt; m++) {
            const float *x = maps + (image_at(index, first + m) * d + ch) * hw;
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
    const int64_t n_sets = n_sets_a + n_sets_b;
    const int64_t nmax = (most_a > most_b ? most_a : most_b) * hw;
    /* one allocation: per Gaussian mu (d), U (d n), W (n d) */
    size_t total = 0;
    for (int64_t s = 0; s < n_sets; s++) {
        const int64_t *off = s < n_sets_a ? set_offsets_a : set_offsets_b;
        const int64_t set = s < n_sets_a ? s : s - n_sets_a;
        total += (size_t)d * (size_t)(1 + 2 * (off[set + 1] - off[set]) * hw);
    }
    const int nt_fit = mml_thread_count(nthreads, n_sets), nt_pair = mml_thread_count(nthreads, n_sets_a * n_sets_b);
    const int nt = nt_fit > nt_pair ? nt_fit : nt_pair;
    lr_gauss *g = (lr_gauss *)calloc((size_t)n_sets, sizeof(lr_gauss));
    double *store = (double *)malloc(sizeof(double) * total);
    double *K = (double *)malloc(sizeof(double) * (size_t)(nmax * nmax) * (size_t)nt);
    double *tmp = (double *)malloc(sizeof(double) * (size_t)(nmax + d) * (size_t)nt);
    if (!g || !store || !K || !tmp) st = MML_ERR_NOMEM;
    if (st == MML_OK) {
        double *at = store;
        for (int64_t s = 0; s < n_sets; s++) {
            const int64_t *off = s < n_sets_a ? set_offsets_a : set_offsets_b;
            const int64_t set = s < n_sets_a ? s : s - n_sets_a;
            const int64_t n = (off[set + 1] - off[set]) * hw;
            g[s].n = n;
            g[s].mu = at, at += d;
            g[s].U = at, at += d * n;
            g[s].W = at, at += d * n;
        }
        fit_ctx fc = {g, maps_a, maps_b, image_index_a, image_index_b, set_offsets_a, set_offsets_b, n_sets_a, d, hw,
                      (double)eps, K, nmax, MML_OK};
        mml_parallel_for(n_sets, nt_fit, fit_task, &fc);
        st = fc.status;
    }
    if (st == MML_OK) {
        pair_ctx pc = {out, g, g + n_sets_a, n_sets_b, d, (double)eps, direction, tmp, nmax + d};
        mml_parallel_for(n_sets_a * n_sets_b, nt_pair, pair_task, &pc);
    }
    free(g), free(store), free(K), free(tmp);
    if (st != MML_OK)
        for (int64_t k = 0; k < n_sets_a * n_sets_b; k++) out[k] = 0.0f; /* never leave NaN or stale values behind */
    return st;
}
