/* The grouped top-K similarity for small groups (fp32, AVX-512 and AVX2 + FMA): the "lanes" path of
 * mml_group_topk_sim_f32.
 *
 * The panel path (topk_avx512.c) puts 16 reference columns in a vector and selects per query row from a buffer of
 * products: with 1-shot groups of 49 descriptors (Omniglot's 7 x 7 maps) a 64-column panel is 23% padding and the
 * selection per (row, group) costs as much as its products. This path turns the tile around: 16 query rows in a
 * vector, one reference column broadcast, and the running top-k of the 16 rows kept in vectors, updated by a
 * compare-and-blend network per column (no buffer, no branch, no padding in the columns).
 *
 * The same bits as the panel path: every product is the same FMA chain over p = 0..d-1 from 0 (q * r is r * q), a
 * group's columns arrive in ascending j, "strictly greater" keeps ties on the smaller j and orders equal values by
 * ascending j (the panel path's sorted insertion), and the sums are the same double sums in descending order. The
 * caller takes this path only when no product can overflow (max |q| max |r| well under FLT_MAX, Cauchy-Schwarz),
 * so no product is NaN or infinite and the panel path's non-finite cases cannot arise; otherwise (or for NaN / Inf
 * inputs) this returns TOPK_LANES_DECLINED and the panel path runs (and reports them).
 *
 * Layout: query rows in blocks of TOPK_LANES_ROWS = 64 (4 vectors of 16 rows), transposed per block into
 * qt[v][p][16]; R's rows copied in group order (topk_group_order, as the panel path packs them); a tile is the block's
 * 64 rows x up to 6 columns, 24 accumulators (AVX2: four passes of 16 rows x 6 columns, 12 accumulators).
 */
#include "topk_internal.h"
#include "mml_parallel.h"
#include "mml_isa.h"
#include <float.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define LANES_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define LANES_RV 4 /* row vectors per tile: 64 rows */
#define LANES_NC 6 /* columns per tile */

/* The running top-k of 4 x 16 rows for one group: st_v[t * 64 + row], st_i likewise, t = 0 the largest. */
static inline __attribute__((always_inline)) LANES_ATTR void
lanes_tile(const int K, const int NC, float *st_v, int32_t *st_i, const float *qt, int64_t d, const float *rp,
           const int32_t *j) {
    __m512 acc[LANES_RV][LANES_NC];
    for (int v = 0; v < LANES_RV; v++)
        for (int c = 0; c < NC; c++) acc[v][c] = _mm512_setzero_ps();
    const float *q = qt;
    for (int64_t p = 0; p < d; p++, q += LANES_RV * 16) {
        __m512 a[LANES_RV];
        for (int v = 0; v < LANES_RV; v++) a[v] = _mm512_load_ps(q + v * 16);
        for (int c = 0; c < NC; c++) {
            const __m512 b = _mm512_set1_ps(rp[c * d + p]);
            for (int v = 0; v < LANES_RV; v++) acc[v][c] = _mm512_fmadd_ps(a[v], b, acc[v][c]);
        }
    }
    for (int v = 0; v < LANES_RV; v++) {
        __m512 tv[TOPK_LANES_KMAX];
        __m512i ti[TOPK_LANES_KMAX];
        for (int t = 0; t < K; t++) {
            tv[t] = _mm512_load_ps(st_v + t * 64 + v * 16);
            ti[t] = _mm512_load_si512((const void *)(st_i + t * 64 + v * 16));
        }
        for (int c = 0; c < NC; c++) {
            const __m512 x = acc[v][c];
            const __m512i xj = _mm512_set1_epi32(j[c]);
            __mmask16 gt[TOPK_LANES_KMAX];
            for (int t = 0; t < K; t++) gt[t] = _mm512_cmp_ps_mask(x, tv[t], _CMP_GT_OQ);
            for (int t = K - 1; t > 0; t--) {
                /* slot t takes slot t-1 where x beats it, else x where x beats slot t */
                tv[t] = _mm512_mask_mov_ps(_mm512_mask_mov_ps(tv[t], gt[t], x), gt[t - 1], tv[t - 1]);
                ti[t] = _mm512_mask_mov_epi32(_mm512_mask_mov_epi32(ti[t], gt[t], xj), gt[t - 1], ti[t - 1]);
            }
            tv[0] = _mm512_mask_mov_ps(tv[0], gt[0], x);
            ti[0] = _mm512_mask_mov_epi32(ti[0], gt[0], xj);
        }
        for (int t = 0; t < K; t++) {
            _mm512_store_ps(st_v + t * 64 + v * 16, tv[t]);
            _mm512_store_si512((void *)(st_i + t * 64 + v * 16), ti[t]);
        }
    }
}

typedef void (*lanes_tile_fn)(float *, int32_t *, const float *, int64_t, const float *, const int32_t *);
#define LANES_DEFINE(K, NC)                                                                                       \
    static LANES_ATTR void lanes_tile_##K##_##NC(float *sv, int32_t *si, const float *qt, int64_t d,            \
                                                  const float *rp, const int32_t *j) {                           \
        lanes_tile(K, NC, sv, si, qt, d, rp, j);                                                                 \
    }
#define LANES_DEFINE_K(K)                                                                                         \
    LANES_DEFINE(K, 1) LANES_DEFINE(K, 2) LANES_DEFINE(K, 3) LANES_DEFINE(K, 4) LANES_DEFINE(K, 5) LANES_DEFINE(K, 6)
LANES_DEFINE_K(1) LANES_DEFINE_K(2) LANES_DEFINE_K(3) LANES_DEFINE_K(4)
#define LANES_ROW(K) {lanes_tile_##K##_1, lanes_tile_##K##_2, lanes_tile_##K##_3, lanes_tile_##K##_4,          \
                      lanes_tile_##K##_5, lanes_tile_##K##_6}
static const lanes_tile_fn lanes_table[TOPK_LANES_KMAX][LANES_NC] = {LANES_ROW(1), LANES_ROW(2), LANES_ROW(3),
                                                                      LANES_ROW(4)};

/* The AVX2 + FMA tile (CPUs without AVX-512): the same products (each the same FMA chain over p from 0) and the same
 * compare-and-blend network, with 8-row ymm vectors. Sixteen registers hold 16 rows x NC <= 6 columns (12
 * accumulators, 2 row vectors, a broadcast), so the block's 64 rows are four passes over the same columns. */
#define AVX2_ATTR __attribute__((target("avx2,fma")))
static inline __attribute__((always_inline)) AVX2_ATTR void
lanes_tile_avx2(const int K, const int NC, float *st_v, int32_t *st_i, const float *qt, int64_t d, const float *rp,
                const int32_t *j) {
    for (int h = 0; h < LANES_RV; h++) { /* rows 16 h .. 16 h + 15 */
        __m256 acc[2][LANES_NC];
        for (int v = 0; v < 2; v++)
            for (int c = 0; c < NC; c++) acc[v][c] = _mm256_setzero_ps();
        const float *q = qt + h * 16;
        for (int64_t p = 0; p < d; p++, q += LANES_RV * 16) {
            const __m256 a0 = _mm256_load_ps(q), a1 = _mm256_load_ps(q + 8);
            for (int c = 0; c < NC; c++) {
                const __m256 b = _mm256_broadcast_ss(rp + c * d + p);
                acc[0][c] = _mm256_fmadd_ps(a0, b, acc[0][c]);
                acc[1][c] = _mm256_fmadd_ps(a1, b, acc[1][c]);
            }
        }
        for (int v = 0; v < 2; v++) {
            const int64_t o = h * 16 + v * 8;
            __m256 tv[TOPK_LANES_KMAX], ti[TOPK_LANES_KMAX]; /* ti: the indices' bits in float vectors, for blends */
            for (int t = 0; t < K; t++) {
                tv[t] = _mm256_load_ps(st_v + t * 64 + o);
                ti[t] = _mm256_castsi256_ps(_mm256_load_si256((const __m256i *)(st_i + t * 64 + o)));
            }
            for (int c = 0; c < NC; c++) {
                const __m256 x = acc[v][c];
                const __m256 xj = _mm256_castsi256_ps(_mm256_set1_epi32(j[c]));
                __m256 gt[TOPK_LANES_KMAX];
                for (int t = 0; t < K; t++) gt[t] = _mm256_cmp_ps(x, tv[t], _CMP_GT_OQ);
                for (int t = K - 1; t > 0; t--) {
                    tv[t] = _mm256_blendv_ps(_mm256_blendv_ps(tv[t], x, gt[t]), tv[t - 1], gt[t - 1]);
                    ti[t] = _mm256_blendv_ps(_mm256_blendv_ps(ti[t], xj, gt[t]), ti[t - 1], gt[t - 1]);
                }
                tv[0] = _mm256_blendv_ps(tv[0], x, gt[0]);
                ti[0] = _mm256_blendv_ps(ti[0], xj, gt[0]);
            }
            for (int t = 0; t < K; t++) {
                _mm256_store_ps(st_v + t * 64 + o, tv[t]);
                _mm256_store_si256((__m256i *)(st_i + t * 64 + o), _mm256_castps_si256(ti[t]));
            }
        }
    }
}

#define LANES_DEFINE_AVX2(K, NC)                                                                                  \
    static AVX2_ATTR void lanes_tile_avx2_##K##_##NC(float *sv, int32_t *si, const float *qt, int64_t d,        \
                                                       const float *rp, const int32_t *j) {                      \
        lanes_tile_avx2(K, NC, sv, si, qt, d, rp, j);                                                            \
    }
#define LANES_DEFINE_AVX2_K(K)                                                                                    \
    LANES_DEFINE_AVX2(K, 1) LANES_DEFINE_AVX2(K, 2) LANES_DEFINE_AVX2(K, 3) LANES_DEFINE_AVX2(K, 4)             \
    LANES_DEFINE_AVX2(K, 5) LANES_DEFINE_AVX2(K, 6)
LANES_DEFINE_AVX2_K(1) LANES_DEFINE_AVX2_K(2) LANES_DEFINE_AVX2_K(3) LANES_DEFINE_AVX2_K(4)
#define LANES_ROW_AVX2(K)                                                                                         \
    {lanes_tile_avx2_##K##_1, lanes_tile_avx2_##K##_2, lanes_tile_avx2_##K##_3, lanes_tile_avx2_##K##_4,          \
     lanes_tile_avx2_##K##_5, lanes_tile_avx2_##K##_6}
static const lanes_tile_fn lanes_table_avx2[TOPK_LANES_KMAX][LANES_NC] = {LANES_ROW_AVX2(1), LANES_ROW_AVX2(2),
                                                                           LANES_ROW_AVX2(3), LANES_ROW_AVX2(4)};

typedef struct {
    float *out;
    int32_t *sel_idx;
    float *sel_val;
    const float *Q;
    int64_t m, d;
    int32_t G, k;
    const float *rp;           /* R's rows in group order */
    const int32_t *perm;       /* packed column -> j */
    const int64_t *begin;      /* G + 1: group g's packed columns begin[g] .. begin[g+1]-1 */
    float **qt;                /* per thread: 64 x d, transposed */
    float **sv;                /* per thread: k x 64 values */
    int32_t **si;              /* per thread: k x 64 indices */
    const lanes_tile_fn *tiles; /* the tile kernels for k (columns 1..LANES_NC) */
    int status;
} lanes_job;

static void lanes_block(void *ctx, int64_t b, int thread) {
    lanes_job *job = ctx;
    if (__atomic_load_n(&job->status, __ATOMIC_ACQUIRE) != MML_OK) return;
    const int64_t d = job->d, r0 = b * TOPK_LANES_ROWS;
    const int64_t rows = job->m - r0 < TOPK_LANES_ROWS ? job->m - r0 : TOPK_LANES_ROWS;
    const int32_t G = job->G, k = job->k;
    if (!job->qt[thread]) {
        if (posix_memalign((void **)&job->qt[thread], 64, (size_t)(TOPK_LANES_ROWS * d) * sizeof(float)) != 0)
            job->qt[thread] = NULL;
        if (posix_memalign((void **)&job->sv[thread], 64, (size_t)(TOPK_LANES_KMAX * 64) * sizeof(float)) != 0)
            job->sv[thread] = NULL;
        if (posix_memalign((void **)&job->si[thread], 64, (size_t)(TOPK_LANES_KMAX * 64) * sizeof(int32_t)) != 0)
            job->si[thread] = NULL;
        if (!job->qt[thread] || !job->sv[thread] || !job->si[thread]) {
            mml_keep_first_status(&job->status, MML_ERR_NOMEM);
            return;
        }
    }
    float *qt = job->qt[thread], *sv = job->sv[thread];
    int32_t *si = job->si[thread];
    /* qt[p * 64 + r] = Q[r0 + r][p]; rows past m are zero (their lanes are computed and never written) */
    for (int64_t r = 0; r < TOPK_LANES_ROWS; r++) {
        const float *src = job->Q + (r0 + r) * d;
        if (r < rows)
            for (int64_t p = 0; p < d; p++) qt[p * TOPK_LANES_ROWS + r] = src[p];
        else
            for (int64_t p = 0; p < d; p++) qt[p * TOPK_LANES_ROWS + r] = 0.0f;
    }
    const lanes_tile_fn *tiles = job->tiles;
    for (int32_t g = 0; g < G; g++) {
        for (int64_t i = 0; i < (int64_t)k * 64; i++) {
            sv[i] = -INFINITY;
            si[i] = 0;
        }
        const int64_t c1 = job->begin[g + 1];
        for (int64_t c0 = job->begin[g]; c0 < c1; c0 += LANES_NC) {
            const int nc = c1 - c0 < LANES_NC ? (int)(c1 - c0) : LANES_NC;
            tiles[nc - 1](sv, si, qt, d, job->rp + c0 * d, job->perm + c0);
        }
        for (int64_t r = 0; r < rows; r++) {
            double sum = 0.0;
            for (int32_t t = 0; t < k; t++) sum += sv[t * 64 + r];
            const int64_t dst = (r0 + r) * G + g;
            job->out[dst] = (float)sum;
            for (int32_t t = 0; t < k; t++) {
                if (job->sel_idx) job->sel_idx[dst * k + t] = si[t * 64 + r];
                if (job->sel_val) job->sel_val[dst * k + t] = sv[t * 64 + r];
            }
        }
    }
}

int topk_lanes(float *out, int32_t *sel_idx, float *sel_val, const float *Q, int64_t m, const float *R, int64_t n,
               int64_t d, const int32_t *group, int32_t G, const int64_t *size, int32_t k, int32_t nthreads, int avx2) {
    if (k < 1 || k > TOPK_LANES_KMAX) return TOPK_LANES_DECLINED;
    /* No product, partial sum or sum of k of them can overflow when d max|q_p| max|r_p| <= FLT_MAX / 16 (each
     * partial sum of <q, r> is at most sum |q_p r_p| (1 + small) in magnitude); NaN / Inf inputs decline. */
    float aq, ar;
    const int level = avx2 ? MML_ISA_AVX2 : MML_ISA_AVX512;
    if (!mml_scan_finite(level, Q, m * d, &aq) || !mml_scan_finite(level, R, n * d, &ar)) return TOPK_LANES_DECLINED;
    if (!((double)d * aq * ar <= (double)FLT_MAX / 16.0)) return TOPK_LANES_DECLINED;

    int64_t *begin = malloc(((size_t)G + 1) * sizeof(int64_t));
    int32_t *perm = malloc((size_t)n * sizeof(int32_t));
    float *rp = NULL;
    if (posix_memalign((void **)&rp, 64, (size_t)(n * d) * sizeof(float)) != 0) rp = NULL;
    if (!begin || !perm || !rp) {
        free(begin); free(perm); free(rp);
        return MML_ERR_NOMEM;
    }
    topk_group_order(perm, begin, group, n, G, size);
    for (int64_t c = 0; c < n; c++) memcpy(rp + c * d, R + (int64_t)perm[c] * d, (size_t)d * sizeof(float));

    const int64_t n_blocks = (m + TOPK_LANES_ROWS - 1) / TOPK_LANES_ROWS;
    const int threads = mml_thread_count(nthreads, n_blocks);
    lanes_job job = {.out = out, .sel_idx = sel_idx, .sel_val = sel_val, .Q = Q, .m = m, .d = d, .G = G, .k = k,
                     .rp = rp, .perm = perm, .begin = begin, .status = MML_OK,
                     .tiles = avx2 ? lanes_table_avx2[k - 1] : lanes_table[k - 1]};
    job.qt = calloc((size_t)threads, sizeof(float *));
    job.sv = calloc((size_t)threads, sizeof(float *));
    job.si = calloc((size_t)threads, sizeof(int32_t *));
    if (job.qt && job.sv && job.si) mml_parallel_for(n_blocks, threads, lanes_block, &job);
    else job.status = MML_ERR_NOMEM;
    for (int t = 0; t < threads; t++) {
        if (job.qt) free(job.qt[t]);
        if (job.sv) free(job.sv[t]);
        if (job.si) free(job.si[t]);
    }
    free(job.qt); free(job.sv); free(job.si);
    free(begin); free(perm); free(rp);
    return job.status;
}

#else /* not x86-64: never selected (mml_kernels_isa_level() is portable there) */

int topk_lanes(float *out, int32_t *sel_idx, float *sel_val, const float *Q, int64_t m, const float *R, int64_t n,
               int64_t d, const int32_t *group, int32_t G, const int64_t *size, int32_t k, int32_t nthreads, int avx2) {
    (void)out; (void)sel_idx; (void)sel_val; (void)Q; (void)m; (void)R; (void)n; (void)d; (void)group; (void)G;
    (void)size; (void)k; (void)nthreads; (void)avx2;
    return TOPK_LANES_DECLINED;
}

#endif
