/* The grouped top-K similarity's naive twin (double precision, plainest loops) and its backward pass.
 *
 * Backward: out[i, g] = sum_{t<k} <Q_i, R_{j(i,g,t)}> with the selection j held fixed (the top-k sum is
 * piecewise linear, and the selection is constant on each piece), so
 *     dQ_i += sum_{g,t} dout[i, g] * R_{j(i,g,t)}      dR_j += sum_{(i,g,t): j(i,g,t) = j} dout[i, g] * Q_i.
 */
#include "topk_internal.h"
#include "mml_parallel.h"
#include <stdlib.h>

int mml_group_topk_sim_naive(double *out, int32_t *sel_idx, double *sel_val, const float *Q, int64_t m,
                             const float *R, int64_t n, int64_t d, const int32_t *group, int32_t n_groups,
                             int32_t k) {
    if (!out || !Q || !R || !group || m <= 0 || n <= 0 || d <= 0 || n_groups <= 0 || k < 1 || n > INT32_MAX)
        return MML_ERR_ARGUMENT;
    for (int64_t j = 0; j < n; j++)
        if (group[j] < 0 || group[j] >= n_groups) return MML_ERR_ARGUMENT;
    for (int32_t g = 0; g < n_groups; g++) {
        int64_t count = 0;
        for (int64_t j = 0; j < n; j++) count += group[j] == g;
        if (count < k) return MML_ERR_K_TOO_LARGE;
    }
    for (int64_t i = 0; i < m * d; i++)
        if (!isfinite(Q[i])) return MML_ERR_NONFINITE;
    for (int64_t i = 0; i < n * d; i++)
        if (!isfinite(R[i])) return MML_ERR_NONFINITE;

    double *dots = malloc((size_t)n * sizeof(double));
    char *taken = malloc((size_t)n);
    if (!dots || !taken) {
        free(dots);
        free(taken);
        return MML_ERR_NOMEM;
    }
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            double s = 0.0;
            for (int64_t p = 0; p < d; p++) s += (double)Q[i * d + p] * (double)R[j * d + p];
            dots[j] = s;
        }
        for (int32_t g = 0; g < n_groups; g++) {
            for (int64_t j = 0; j < n; j++) taken[j] = 0;
            double sum = 0.0;
            for (int32_t t = 0; t < k; t++) {
                /* the largest value not yet taken; strict > keeps the smallest j among equals */
                int64_t best = -1;
                for (int64_t j = 0; j < n; j++)
                    if (group[j] == g && !taken[j] && (best < 0 || dots[j] > dots[best])) best = j;
                taken[best] = 1;
                sum += dots[best];
                if (sel_idx) sel_idx[(i * n_groups + g) * k + t] = (int32_t)best;
                if (sel_val) sel_val[(i * n_groups + g) * k + t] = dots[best];
            }
            out[i * n_groups + g] = sum;
        }
    }
    free(dots);
    free(taken);
    return MML_OK;
}

/* y += a * x over d floats; the loop has no reduction, so the compiler vectorises both copies. */
#define AXPY_BODY                                                                                            \
    for (int64_t p = 0; p < d; p++) y[p] += a * x[p];

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma"))) static void
axpy_avx512(float *restrict y, float a, const float *restrict x, int64_t d) {
    AXPY_BODY
}
#endif
static void axpy_portable(float *restrict y, float a, const float *restrict x, int64_t d) { AXPY_BODY }

/* dQ: tasks of BWD_ROWS query rows, each row adding its own (g, t) terms in order. dR: one task per range of
 * reference rows; each scans all selections in ascending (i, g, t) and adds those that fall in its range. Every
 * row thus adds its terms in the serial loop's order, so any thread count (and any split) gives the same bits. */
#define BWD_ROWS 64

typedef struct {
    float *dQ, *dR;
    const float *dout, *Q, *R;
    const int32_t *sel_idx;
    int64_t m, n, d, ranges;
    int32_t n_groups, k;
    void (*axpy)(float *restrict, float, const float *restrict, int64_t);
} bwd_ctx;

static void bwd_dq_task(void *vctx, int64_t task, int thread) {
    (void)thread;
    const bwd_ctx *c = vctx;
    const int64_t i1 = (task + 1) * BWD_ROWS < c->m ? (task + 1) * BWD_ROWS : c->m;
    for (int64_t i = task * BWD_ROWS; i < i1; i++)
        for (int32_t g = 0; g < c->n_groups; g++) {
            const float go = c->dout[i * c->n_groups + g];
            const int32_t *sel = c->sel_idx + (i * c->n_groups + g) * c->k;
            for (int32_t t = 0; t < c->k; t++) c->axpy(c->dQ + i * c->d, go, c->R + (int64_t)sel[t] * c->d, c->d);
        }
}

static void bwd_dr_task(void *vctx, int64_t task, int thread) {
    (void)thread;
    const bwd_ctx *c = vctx;
    const int32_t j0 = (int32_t)(task * c->n / c->ranges), j1 = (int32_t)((task + 1) * c->n / c->ranges);
    const int32_t *sel = c->sel_idx;
    for (int64_t i = 0; i < c->m; i++)
        for (int32_t g = 0; g < c->n_groups; g++)
            for (int32_t t = 0; t < c->k; t++, sel++)
                if (*sel >= j0 && *sel < j1)
                    c->axpy(c->dR + (int64_t)*sel * c->d, c->dout[i * c->n_groups + g], c->Q + i * c->d, c->d);
}

int mml_group_topk_sim_backward_f32(float *dQ, float *dR, const float *dout, const int32_t *sel_idx,
                                    const float *Q, int64_t m, const float *R, int64_t n, int64_t d,
                                    int32_t n_groups, int32_t k, int32_t n_threads) {
    if (!dout || !sel_idx || !Q || !R || m <= 0 || n <= 0 || n > INT32_MAX || d <= 0 || n_groups <= 0 || k < 1)
        return MML_ERR_ARGUMENT;
    const int64_t total = m * n_groups * k;
    for (int64_t s = 0; s < total; s++)
        if (sel_idx[s] < 0 || sel_idx[s] >= n) return MML_ERR_ARGUMENT;
    bwd_ctx c = {.dQ = dQ, .dR = dR, .dout = dout, .Q = Q, .R = R, .sel_idx = sel_idx, .m = m, .n = n, .d = d,
                 .n_groups = n_groups, .k = k, .axpy = axpy_portable};
#if defined(__x86_64__)
    if (topk_use_avx512()) c.axpy = axpy_avx512;
#endif
    if (dQ) mml_parallel_for((m + BWD_ROWS - 1) / BWD_ROWS, n_threads, bwd_dq_task, &c);
    if (dR) {
        c.ranges = mml_thread_count(n_threads, n);
        mml_parallel_for(c.ranges, n_threads, bwd_dr_task, &c);
    }
    return MML_OK;
}
