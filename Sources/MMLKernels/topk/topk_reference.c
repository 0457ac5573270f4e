/* The grouped top-K similarity's naive twin (double precision, plainest loops) and its backward pass.
 *
 * Backward: out[i, g] = sum_{t<k} <Q_i, R_{j(i,g,t)}> with the selection j held fixed (the top-k sum is
 * piecewise linear, and the selection is constant on each piece), so
 *     dQ_i += sum_{g,t} dout[i, g] * R_{j(i,g,t)}      dR_j += sum_{(i,g,t): j(i,g,t) = j} dout[i, g] * Q_i.
 */
#include "topk_internal.h"
#include "mml_parallel.h"
#include "mml_isa.h"
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

/* y += a * x over d floats: unfused in the portable tasks (the baseline ISA has no FMA), one fused multiply-add per
 * element in the AVX2 tasks (the AVX-512 tasks below write the same with FMAs inline). */
static inline __attribute__((always_inline)) void axpy(float *restrict y, float a, const float *restrict x, int64_t d,
                                                       const int fused) {
    if (fused)
        for (int64_t p = 0; p < d; p++) y[p] = __builtin_fmaf(a, x[p], y[p]);
    else
        for (int64_t p = 0; p < d; p++) y[p] += a * x[p];
}

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
} bwd_ctx;

static inline __attribute__((always_inline)) void bwd_dq_body(const bwd_ctx *c, int64_t task, const int fused) {
    const int64_t i1 = (task + 1) * BWD_ROWS < c->m ? (task + 1) * BWD_ROWS : c->m;
    for (int64_t i = task * BWD_ROWS; i < i1; i++)
        for (int32_t g = 0; g < c->n_groups; g++) {
            const float go = c->dout[i * c->n_groups + g];
            const int32_t *sel = c->sel_idx + (i * c->n_groups + g) * c->k;
            for (int32_t t = 0; t < c->k; t++) axpy(c->dQ + i * c->d, go, c->R + (int64_t)sel[t] * c->d, c->d, fused);
        }
}

static inline __attribute__((always_inline)) void bwd_dr_body(const bwd_ctx *c, int64_t task, const int fused) {
    const int32_t j0 = (int32_t)(task * c->n / c->ranges), j1 = (int32_t)((task + 1) * c->n / c->ranges);
    const int32_t *sel = c->sel_idx;
    for (int64_t i = 0; i < c->m; i++)
        for (int32_t g = 0; g < c->n_groups; g++)
            for (int32_t t = 0; t < c->k; t++, sel++)
                if (*sel >= j0 && *sel < j1)
                    axpy(c->dR + (int64_t)*sel * c->d, c->dout[i * c->n_groups + g], c->Q + i * c->d, c->d, fused);
}

static void bwd_dq_task(void *vctx, int64_t task, int thread) {
    (void)thread;
    bwd_dq_body(vctx, task, 0);
}

static void bwd_dr_task(void *vctx, int64_t task, int thread) {
    (void)thread;
    bwd_dr_body(vctx, task, 0);
}

#if defined(__x86_64__)
#include <immintrin.h>
#define BWD_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
/* The AVX-512 tasks: the terms in the same order per element as the portable tasks above, each y = a x + y as one
 * fused multiply-add (what the axpy loop compiled for AVX-512 did, so the bits did not change), without a call per
 * term. dQ keeps up to 8 vectors of row i in registers over all its (g, t) terms; dR adds each term in place. */
static BWD_AVX512 void bwd_dq_task_avx512(void *vctx, int64_t task, int thread) {
    (void)thread;
    const bwd_ctx *c = vctx;
    const int64_t d = c->d, G = c->n_groups, k = c->k;
    const int64_t i1 = (task + 1) * BWD_ROWS < c->m ? (task + 1) * BWD_ROWS : c->m;
    for (int64_t i = task * BWD_ROWS; i < i1; i++) {
        float *y = c->dQ + i * d;
        for (int64_t p0 = 0; p0 < d; p0 += 128) {
            const int64_t width = d - p0 < 128 ? d - p0 : 128;
            const int nv = (int)((width + 15) / 16);
            const __mmask16 tail = (__mmask16)(width % 16 == 0 ? 0xFFFF : (1u << (width % 16)) - 1u);
            __m512 acc[8];
            for (int v = 0; v < nv; v++)
                acc[v] = _mm512_maskz_loadu_ps(v == nv - 1 ? tail : (__mmask16)0xFFFF, y + p0 + 16 * v);
            for (int64_t g = 0; g < G; g++) {
                const __m512 a = _mm512_set1_ps(c->dout[i * G + g]);
                const int32_t *sel = c->sel_idx + (i * G + g) * k;
                for (int64_t t = 0; t < k; t++) {
                    const float *x = c->R + (int64_t)sel[t] * d + p0;
                    for (int v = 0; v < nv; v++)
                        acc[v] = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(v == nv - 1 ? tail : (__mmask16)0xFFFF,
                                                                         x + 16 * v), acc[v]);
                }
            }
            for (int v = 0; v < nv; v++)
                _mm512_mask_storeu_ps(y + p0 + 16 * v, v == nv - 1 ? tail : (__mmask16)0xFFFF, acc[v]);
        }
    }
}

static BWD_AVX512 void bwd_dr_task_avx512(void *vctx, int64_t task, int thread) {
    (void)thread;
    const bwd_ctx *c = vctx;
    const int64_t d = c->d;
    const int32_t j0 = (int32_t)(task * c->n / c->ranges), j1 = (int32_t)((task + 1) * c->n / c->ranges);
    const int32_t *sel = c->sel_idx;
    const int nv = (int)((d + 15) / 16);
    const __mmask16 tail = (__mmask16)(d % 16 == 0 ? 0xFFFF : (1u << (d % 16)) - 1u);
    for (int64_t i = 0; i < c->m; i++)
        for (int32_t g = 0; g < c->n_groups; g++)
            for (int32_t t = 0; t < c->k; t++, sel++) {
                if (*sel < j0 || *sel >= j1) continue;
                const __m512 a = _mm512_set1_ps(c->dout[i * c->n_groups + g]);
                float *y = c->dR + (int64_t)*sel * d;
                const float *x = c->Q + i * d;
                for (int v = 0; v < nv; v++) {
                    const __mmask16 mk = v == nv - 1 ? tail : (__mmask16)0xFFFF;
                    _mm512_mask_storeu_ps(y + 16 * v, mk, _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(mk, x + 16 * v),
                                                                          _mm512_maskz_loadu_ps(mk, y + 16 * v)));
                }
            }
}

#define BWD_AVX2 __attribute__((target("avx2,fma")))
/* The AVX2 + FMA tasks: the AVX-512 tasks' terms, order and fused multiply-adds element by element (so the same
 * bits), as the portable tasks' loops over fmaf, which the compiler turns into 8-lane FMAs. */
static BWD_AVX2 void bwd_dq_task_avx2(void *vctx, int64_t task, int thread) {
    (void)thread;
    bwd_dq_body(vctx, task, 1);
}

static BWD_AVX2 void bwd_dr_task_avx2(void *vctx, int64_t task, int thread) {
    (void)thread;
    bwd_dr_body(vctx, task, 1);
}
#endif

int mml_group_topk_sim_backward_f32(float *dQ, float *dR, const float *dout, const int32_t *sel_idx,
                                    const float *Q, int64_t m, const float *R, int64_t n, int64_t d,
                                    int32_t n_groups, int32_t k, int32_t n_threads) {
    if (!dout || !sel_idx || !Q || !R || m <= 0 || n <= 0 || n > INT32_MAX || d <= 0 || n_groups <= 0 || k < 1)
        return MML_ERR_ARGUMENT;
    const int64_t total = m * n_groups * k;
    for (int64_t s = 0; s < total; s++)
        if (sel_idx[s] < 0 || sel_idx[s] >= n) return MML_ERR_ARGUMENT;
    bwd_ctx c = {.dQ = dQ, .dR = dR, .dout = dout, .Q = Q, .R = R, .sel_idx = sel_idx, .m = m, .n = n, .d = d,
                 .n_groups = n_groups, .k = k};
    mml_task_fn dq_task = bwd_dq_task, dr_task = bwd_dr_task;
#if defined(__x86_64__)
    const int level = mml_kernels_isa_level();
    if (level == MML_ISA_AVX512) {
        dq_task = bwd_dq_task_avx512;
        dr_task = bwd_dr_task_avx512;
    } else if (level == MML_ISA_AVX2) {
        dq_task = bwd_dq_task_avx2;
        dr_task = bwd_dr_task_avx2;
    }
#endif
    if (dQ) mml_parallel_for((m + BWD_ROWS - 1) / BWD_ROWS, n_threads, dq_task, &c);
    if (dR) {
        c.ranges = mml_thread_count(n_threads, n);
        mml_parallel_for(c.ranges, n_threads, dr_task, &c);
    }
    return MML_OK;
}
