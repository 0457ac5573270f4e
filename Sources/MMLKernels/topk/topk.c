/* Grouped top-K similarity, the DN4 image-to-class rule (METHOD.md 2.1 / 2.2):
 *     out[i, g] = sum of the k largest <Q_i, R_j> over the reference rows j of group g.
 *
 * The m x n product is never stored. R is packed once by group into 64-column panels (topk_internal.h); query
 * rows are cut into blocks, the tasks of mml_parallel_for (common/); a thread runs every panel over its block
 * with a register-blocked micro-kernel and keeps the running top-k per (row, group). Each (i, j) product is
 * computed the same way whichever thread or block holds row i, and candidates reach a (row, group) in
 * ascending j, so results are identical for every thread count.
 */
#include "topk_internal.h"
#include "mml_parallel.h"
#include "mml_isa.h"
#include <stdlib.h>
#include <string.h>

void topk_offer_lanes(topk_state *st, int64_t s, const float *v, uint32_t mask, const int32_t *perm,
                      int32_t col0) {
    while (mask) {
        int l = __builtin_ctz(mask);
        mask &= mask - 1;
        topk_offer(st, s, v[l], perm[col0 + l]);
    }
}

void topk_group_order(int32_t *perm, int64_t *begin, const int32_t *group, int64_t n, int32_t G, const int64_t *size) {
    /* begin[g + 1] runs through group g's columns as they are placed, then ends at group g's end, which is where
     * group g + 1 begins */
    begin[0] = 0;
    begin[1] = 0;
    for (int32_t g = 1; g < G; g++) begin[g + 1] = begin[g] + size[g - 1];
    for (int64_t j = 0; j < n; j++) perm[begin[group[j] + 1]++] = (int32_t)j;
}

int topk_lanes_mode(void) {
    const char *e = getenv("MML_TOPK_LANES");
    if (e && strcmp(e, "off") == 0) return 0;
    if (e && strcmp(e, "on") == 0) return 2;
    return 1;
}

int topk_use_bf16_avx512(int level) {
    return level == MML_ISA_AVX512 && (mml_cpu_features() & MML_CPU_AVX512BF16) != 0;
}

const char *mml_group_topk_sim_bf16_isa(void) {
    return topk_use_bf16_avx512(mml_kernels_isa_level()) ? "avx512bf16" : "portable";
}

int topk_use_amx(int level) { return level == MML_ISA_AVX512 && mml_amx_status() == 1; }

const char *mml_group_topk_sim_bf16amx_isa(void) { return topk_use_amx(mml_kernels_isa_level()) ? "amx" : "portable"; }

static void packed_free(topk_packed *pk) {
    free(pk->data);
    free(pk->offset);
    free(pk->col0);
    free(pk->width);
    free(pk->group_of);
    free(pk->perm);
    free(pk->group_panel);
}

/* The depth in 4-byte elements of a precision's packed rows (topk_internal.h): d floats, ceil(d/2) bf16 pairs, or
 * for bf16amx those pairs padded with zero pairs to a multiple of TOPK_AMX_PAIRS. */
static int64_t packed_depth(int64_t d, int prec) {
    if (prec == TOPK_F32) return d;
    const int64_t pairs = (d + 1) / 2;
    return prec == TOPK_BF16 ? pairs : (pairs + TOPK_AMX_PAIRS - 1) / TOPK_AMX_PAIRS * TOPK_AMX_PAIRS;
}

/* Stable counting sort of the rows by group, then each group's columns cut into panels of <= 64.
 * The pass over R that fills the panels also sums x - x, which is 0 unless R holds NaN or Inf.
 * bf16 precisions: the depth runs over bf16 pairs (topk_internal.h), and a value that rounds to Inf also fails. */
static int pack_references(topk_packed *pk, const float *R, int64_t n, int64_t d_in, const int32_t *group,
                           int32_t G, const int64_t *size, int prec) {
    memset(pk, 0, sizeof *pk);
    const int bf16 = prec != TOPK_F32;
    const int64_t d = packed_depth(d_in, prec);
    pk->d = d;
    pk->prec = prec;
    int64_t n_panels = 0, total = 0;
    for (int32_t g = 0; g < G; g++) {
        int64_t full = size[g] / TOPK_NR, rest = size[g] % TOPK_NR;
        n_panels += full + (rest > 0);
        total += full * TOPK_NR + ((rest + TOPK_STRIP - 1) / TOPK_STRIP) * TOPK_STRIP;
    }
    pk->n_panels = n_panels;
    pk->perm = malloc((size_t)n * sizeof(int32_t));
    pk->offset = malloc((size_t)n_panels * sizeof(int64_t));
    pk->col0 = malloc((size_t)n_panels * sizeof(int32_t));
    pk->width = malloc((size_t)n_panels * sizeof(int32_t));
    pk->group_of = malloc((size_t)n_panels * sizeof(int32_t));
    pk->group_panel = malloc(((size_t)G + 1) * sizeof(int64_t));
    int64_t *start = malloc(((size_t)G + 1) * sizeof(int64_t));
    if (posix_memalign((void **)&pk->data, 64, (size_t)(total * d) * sizeof(float)) != 0) pk->data = NULL;
    if (!pk->perm || !pk->offset || !pk->col0 || !pk->width || !pk->group_of || !pk->group_panel || !start || !pk->data) {
        free(start);
        packed_free(pk);
        return MML_ERR_NOMEM;
    }
    topk_group_order(pk->perm, start, group, n, G, size);
    int64_t t = 0, off = 0, begin = 0;
    float check = 0.0f;
    int bad = 0;
    uint32_t *pair = NULL; /* one row's pairs; calloc: the bf16amx padding pairs stay zero */
    if (bf16 && !(pair = calloc((size_t)d, sizeof(uint32_t)))) {
        free(start);
        packed_free(pk);
        return MML_ERR_NOMEM;
    }
    for (int32_t g = 0; g < G; g++) {
        pk->group_panel[g] = t;
        for (int64_t c0 = begin; c0 < begin + size[g]; c0 += TOPK_NR, t++) {
            int32_t w = (int32_t)(begin + size[g] - c0 < TOPK_NR ? begin + size[g] - c0 : TOPK_NR);
            int32_t cols = ((w + TOPK_STRIP - 1) / TOPK_STRIP) * TOPK_STRIP;
            pk->offset[t] = off;
            pk->col0[t] = (int32_t)c0;
            pk->width[t] = w;
            pk->group_of[t] = g;
            float *dst = pk->data + off;
            uint32_t *dst32 = (uint32_t *)pk->data + off;
            for (int32_t c = 0; c < cols && bf16; c++) {
                if (c < w) {
                    const float *src = R + (int64_t)pk->perm[c0 + c] * d_in;
                    for (int64_t p = 0; p < d_in; p++) check += src[p] - src[p];
                    bad |= topk_bf16_pack_row(pair, src, d_in);
                    for (int64_t p = 0; p < d; p++) dst32[p * cols + c] = pair[p];
                } else {
                    for (int64_t p = 0; p < d; p++) dst32[p * cols + c] = 0u;
                }
            }
            for (int32_t c = 0; c < cols && !bf16; c++) {
                if (c < w) {
                    const float *src = R + (int64_t)pk->perm[c0 + c] * d;
                    for (int64_t p = 0; p < d; p++) {
                        dst[p * cols + c] = src[p];
                        check += src[p] - src[p];
                    }
                } else {
                    for (int64_t p = 0; p < d; p++) dst[p * cols + c] = 0.0f;
                }
            }
            off += (int64_t)cols * d;
        }
        begin += size[g];
    }
    pk->group_panel[G] = t;
    free(start);
    free(pair);
    if (check != 0.0f || bad) {
        packed_free(pk);
        return MML_ERR_NONFINITE;
    }
    return MML_OK;
}

enum { PATH_PORTABLE, PATH_AVX512, PATH_AMX, PATH_AVX2 };

typedef struct {
    /* shared, read-only */
    float *out;
    int32_t *sel_idx;
    float *sel_val;
    const float *Q;
    int64_t m, d, block;
    int32_t G, k;
    int path;     /* PATH_PORTABLE, PATH_AVX512 (the fp32 or the AVX512-BF16 micro-kernels), PATH_AMX or PATH_AVX2 */
    int prec;     /* TOPK_F32, TOPK_BF16 or TOPK_BF16AMX */
    int64_t d_in; /* bf16 precisions: the caller's d (d above is then the packed depth in pairs) */
    const topk_packed *pk;
    /* per thread: running top-k state and sort buffer, allocated by the thread's first block; bf16: the block's
     * query rows as bf16 pairs */
    topk_state *state;
    float **pairs;
    uint32_t **qbuf;
    /* shared, updated */
    int status; /* first error, kept with mml_keep_first_status */
} topk_job;

static int cmp_desc(const void *a, const void *b) {
    const float *x = a, *y = b; /* (value, index) pairs stored as two floats' worth of bytes */
    float xv = x[0], yv = y[0];
    int32_t xi, yi;
    memcpy(&xi, x + 1, 4);
    memcpy(&yi, y + 1, 4);
    if (xv != yv) return xv > yv ? -1 : 1;
    return (xi > yi) - (xi < yi);
}

/* Write the block's results: sums in double over the values in descending order. */
static int finalize_block(topk_job *job, topk_state *st, int64_t r0, int64_t rows, float *pairs) {
    const int32_t G = job->G, k = job->k;
    for (int64_t r = 0; r < rows; r++) {
        for (int32_t g = 0; g < G; g++) {
            int64_t s = r * G + g;
            /* A slot can only stay short when products overflowed to -Inf or NaN. */
            if (st->count[s] < k) return MML_ERR_NONFINITE;
            float *val = st->val + s * k;
            int32_t *idx = st->idx + s * k;
            if (k > TOPK_SORTED_MAX) {
                for (int32_t t = 0; t < k; t++) {
                    pairs[2 * t] = val[t];
                    memcpy(pairs + 2 * t + 1, idx + t, 4);
                }
                qsort(pairs, (size_t)k, 2 * sizeof(float), cmp_desc);
                for (int32_t t = 0; t < k; t++) {
                    val[t] = pairs[2 * t];
                    memcpy(idx + t, pairs + 2 * t + 1, 4);
                }
            }
            double sum = 0.0;
            for (int32_t t = 0; t < k; t++) sum += val[t];
            float o = (float)sum;
            if (!isfinite(o)) return MML_ERR_NONFINITE;
            int64_t dst = (r0 + r) * G + g;
            job->out[dst] = o;
            if (job->sel_idx) memcpy(job->sel_idx + dst * k, idx, (size_t)k * sizeof(int32_t));
            if (job->sel_val) memcpy(job->sel_val + dst * k, val, (size_t)k * sizeof(float));
        }
    }
    return MML_OK;
}

/* The thread's state, allocated on its first block (so each thread touches its own memory first). */
static int thread_state(topk_job *job, int thread, topk_state **state, float **pairs) {
    topk_state *st = &job->state[thread];
    const int64_t slots = job->block * job->G, k = job->k;
    if (st->k == 0) { /* first block of this thread */
        st->n_groups = job->G;
        st->k = job->k;
        st->val = malloc((size_t)(slots * k) * sizeof(float));
        st->idx = malloc((size_t)(slots * k) * sizeof(int32_t));
        st->count = malloc((size_t)slots * sizeof(int32_t));
        st->thr = malloc((size_t)slots * sizeof(float));
        if (k > TOPK_SORTED_MAX) job->pairs[thread] = malloc((size_t)k * 2 * sizeof(float));
        /* calloc: the bf16amx padding pairs of every row stay zero (rows only ever get their real pairs) */
        if (job->prec != TOPK_F32) job->qbuf[thread] = calloc((size_t)(job->block * job->d), sizeof(uint32_t));
    }
    if (!st->val || !st->idx || !st->count || !st->thr || (k > TOPK_SORTED_MAX && !job->pairs[thread]) ||
        (job->prec != TOPK_F32 && !job->qbuf[thread]))
        return MML_ERR_NOMEM;
    *state = st;
    *pairs = job->pairs[thread];
    return MML_OK;
}

/* Task b: query rows [b * block, (b + 1) * block) against every panel. */
static void topk_block_task(void *ctx, int64_t b, int thread) {
    topk_job *job = ctx;
    if (__atomic_load_n(&job->status, __ATOMIC_ACQUIRE) != MML_OK) return;
    topk_state *st;
    float *pairs;
    int status = thread_state(job, thread, &st, &pairs);
    if (status != MML_OK) {
        mml_keep_first_status(&job->status, status);
        return;
    }
    const int64_t d = job->d_in;
    int64_t r0 = b * job->block;
    int64_t rows = job->m - r0 < job->block ? job->m - r0 : job->block;
    const float *q = job->Q + r0 * d;
    const int level = job->path == PATH_AVX512 || job->path == PATH_AMX ? MML_ISA_AVX512
                      : job->path == PATH_AVX2                          ? MML_ISA_AVX2
                                                                        : MML_ISA_PORTABLE;
    int bad = !mml_scan_finite(level, q, rows * d, NULL);
    const void *qk = q;
    if (job->prec != TOPK_F32 && !bad) { /* the block's rows as bf16 pairs; a value that rounds to Inf fails too */
        uint32_t *qb = job->qbuf[thread];
        for (int64_t r = 0; r < rows; r++) bad |= topk_bf16_pack_row(qb + r * job->d, q + r * d, d);
        qk = qb;
    }
    if (bad) {
        mml_keep_first_status(&job->status, MML_ERR_NONFINITE);
        return;
    }
    for (int64_t s = 0; s < rows * job->G; s++) {
        st->count[s] = 0;
        st->thr[s] = -INFINITY;
    }
    if (job->path == PATH_AMX) topk_block_amx(st, qk, rows, job->pk);
    else if (job->path == PATH_AVX512) topk_block_avx512(st, qk, rows, job->pk);
    else if (job->path == PATH_AVX2) topk_block_avx2(st, qk, rows, job->pk);
    else topk_block_portable(st, qk, rows, job->pk);
    status = finalize_block(job, st, r0, rows, pairs);
    if (status != MML_OK) mml_keep_first_status(&job->status, status);
}

/* Every precision: TOPK_BF16 and TOPK_BF16AMX round Q and R to bf16 pairs and run their micro-kernels. */
static int group_topk(float *out, int32_t *sel_idx, float *sel_val, const float *Q, int64_t m, const float *R,
                      int64_t n, int64_t d, const int32_t *group, int32_t n_groups, int32_t k, int32_t nthreads,
                      int prec) {
    if (!out || !Q || !R || !group || m <= 0 || n <= 0 || d <= 0 || n_groups <= 0 || k < 1 || nthreads < 0 ||
        n > INT32_MAX)
        return MML_ERR_ARGUMENT;
    int64_t *size = calloc((size_t)n_groups, sizeof(int64_t));
    if (!size) return MML_ERR_NOMEM;
    for (int64_t j = 0; j < n; j++) {
        if (group[j] < 0 || group[j] >= n_groups) {
            free(size);
            return MML_ERR_ARGUMENT;
        }
        size[group[j]]++;
    }
    for (int32_t g = 0; g < n_groups; g++) {
        if (size[g] < k) {
            free(size);
            return MML_ERR_K_TOO_LARGE;
        }
    }
    const int level = mml_kernels_isa_level(); /* once per call: the environment may change between calls */
    const int use512 = level == MML_ISA_AVX512, use2 = level == MML_ISA_AVX2;
    if (prec == TOPK_F32 && k <= TOPK_LANES_KMAX && (use512 || use2)) {
        const int mode = topk_lanes_mode();
        int64_t largest = 0;
        for (int32_t g = 0; g < n_groups; g++) largest = size[g] > largest ? size[g] : largest;
        if (mode == 2 || (mode == 1 && largest <= TOPK_LANES_MAX_GROUP)) {
            int status = topk_lanes(out, sel_idx, sel_val, Q, m, R, n, d, group, n_groups, size, k, nthreads, use2);
            if (status != TOPK_LANES_DECLINED) {
                free(size);
                return status;
            }
        }
    }
    topk_packed pk;
    int status = pack_references(&pk, R, n, d, group, n_groups, size, prec);
    free(size);
    if (status != MML_OK) return status;

    const int path = prec == TOPK_F32    ? (use512 ? PATH_AVX512 : use2 ? PATH_AVX2 : PATH_PORTABLE)
                     : prec == TOPK_BF16 ? (topk_use_bf16_avx512(level) ? PATH_AVX512 : PATH_PORTABLE)
                                         : (topk_use_amx(level) ? PATH_AMX : PATH_PORTABLE);
    topk_job job = {.out = out, .sel_idx = sel_idx, .sel_val = sel_val, .Q = Q, .m = m, .d = pk.d, .d_in = d,
                    .G = n_groups, .k = k, .path = path, .prec = prec, .pk = &pk, .status = MML_OK};
    /* Query rows per block: a multiple of the slice height (6 rows; 16 for bf16amx, the AMX tile's rows), about
     * 24 KiB of Q as fp32 (L1/L2 resident while a chunk of R panels is reused by every slice); at least one slice.
     * The block size depends on d and the precision only, never on the path or the thread count. */
    const int64_t slice = prec == TOPK_BF16AMX ? TOPK_AMX_ROWS : TOPK_MR;
    int64_t block = (6144 / d) / slice * slice;
    job.block = block < slice ? slice : block;
    int64_t n_blocks = (m + job.block - 1) / job.block;
    int threads = mml_thread_count(nthreads, n_blocks);
    job.state = calloc((size_t)threads, sizeof(topk_state));
    job.pairs = calloc((size_t)threads, sizeof(float *));
    job.qbuf = calloc((size_t)threads, sizeof(uint32_t *));
    if (job.state && job.pairs && job.qbuf) mml_parallel_for(n_blocks, threads, topk_block_task, &job);
    else job.status = MML_ERR_NOMEM;
    for (int t = 0; job.state && t < threads; t++) {
        free(job.state[t].val);
        free(job.state[t].idx);
        free(job.state[t].count);
        free(job.state[t].thr);
    }
    for (int t = 0; job.pairs && t < threads; t++) free(job.pairs[t]);
    for (int t = 0; job.qbuf && t < threads; t++) free(job.qbuf[t]);
    free(job.state);
    free(job.pairs);
    free(job.qbuf);
    packed_free(&pk);
    return job.status;
}

int mml_group_topk_sim_f32(float *out, int32_t *sel_idx, float *sel_val, const float *Q, int64_t m,
                           const float *R, int64_t n, int64_t d, const int32_t *group, int32_t n_groups,
                           int32_t k, int32_t nthreads) {
    return group_topk(out, sel_idx, sel_val, Q, m, R, n, d, group, n_groups, k, nthreads, TOPK_F32);
}

int mml_group_topk_sim_bf16(float *out, int32_t *sel_idx, float *sel_val, const float *Q, int64_t m,
                            const float *R, int64_t n, int64_t d, const int32_t *group, int32_t n_groups,
                            int32_t k, int32_t nthreads) {
    return group_topk(out, sel_idx, sel_val, Q, m, R, n, d, group, n_groups, k, nthreads, TOPK_BF16);
}

int mml_group_topk_sim_bf16amx(float *out, int32_t *sel_idx, float *sel_val, const float *Q, int64_t m,
                               const float *R, int64_t n, int64_t d, const int32_t *group, int32_t n_groups,
                               int32_t k, int32_t nthreads) {
    return group_topk(out, sel_idx, sel_val, Q, m, R, n, d, group, n_groups, k, nthreads, TOPK_BF16AMX);
}

uint16_t mml_bf16_from_f32(float x) { return topk_bf16_from_f32(x); }
