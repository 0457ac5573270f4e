/* AVX2 + FMA micro-kernel of the fp32 grouped top-K similarity, for CPUs without AVX-512: the portable driver and
 * selection (topk_portable.c) with the dot products computed as the AVX-512 micro-kernels compute them (one FMA
 * per depth step, p = 0..d-1 in order, from a zero accumulator), so this path gives the AVX-512 path's bits.
 * Sixteen ymm registers hold 6 rows x 16 columns (12 accumulators, 2 panel vectors, a broadcast); a panel's
 * strips of 16 columns are separate passes over the same rows (L1-resident). The selection from the products is
 * the portable one's with 8-lane compares. */
#include "topk_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX2_ATTR __attribute__((target("avx2,fma")))

static inline __attribute__((always_inline)) AVX2_ATTR void mk_body(const int MR, float *buf, const float *q,
                                                                     int64_t d, const float *panel, int cols) {
    for (int c0 = 0; c0 < cols; c0 += TOPK_STRIP) {
        __m256 acc[TOPK_MR][2];
        for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        const float *b = panel + c0;
        for (int64_t p = 0; p < d; p++, b += cols) {
            const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
            for (int r = 0; r < MR; r++) {
                const __m256 a = _mm256_broadcast_ss(q + r * d + p);
                acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
            }
        }
        for (int r = 0; r < MR; r++) {
            _mm256_storeu_ps(buf + r * TOPK_CHUNK_COLS + c0, acc[r][0]);
            _mm256_storeu_ps(buf + r * TOPK_CHUNK_COLS + c0 + 8, acc[r][1]);
        }
    }
}

#define MK_AVX2(MR)                                                                                               \
    static AVX2_ATTR void mk_avx2_##MR(float *buf, const float *q, int64_t d, const float *panel, int cols) {     \
        mk_body(MR, buf, q, d, panel, cols);                                                                      \
    }
MK_AVX2(1) MK_AVX2(2) MK_AVX2(3) MK_AVX2(4) MK_AVX2(5) MK_AVX2(6)

void topk_mk_f32_avx2(float *buf, int mr, const float *q, int64_t d, const float *panel, int32_t width) {
    const int cols = ((width + TOPK_STRIP - 1) / TOPK_STRIP) * TOPK_STRIP;
    switch (mr) {
    case 1: mk_avx2_1(buf, q, d, panel, cols); break;
    case 2: mk_avx2_2(buf, q, d, panel, cols); break;
    case 3: mk_avx2_3(buf, q, d, panel, cols); break;
    case 4: mk_avx2_4(buf, q, d, panel, cols); break;
    case 5: mk_avx2_5(buf, q, d, panel, cols); break;
    default: mk_avx2_6(buf, q, d, panel, cols); break;
    }
}

/* The selection of the portable path (topk_portable.c's select_chunk, the same rule and the same candidates in the
 * same order) with 8-lane compares: _mm256_max_ps(v, m) is "v > m ? v : m", the scalar loop's update. */
AVX2_ATTR void topk_select_chunk_avx2(topk_state *st, int64_t s, const float *v, int32_t width, const int32_t *perm,
                                      int32_t col0) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 m0 = ninf, m1 = ninf;
    int32_t c0 = 0;
    for (; c0 + TOPK_STRIP <= width; c0 += TOPK_STRIP) {
        m0 = _mm256_max_ps(_mm256_loadu_ps(v + c0), m0);
        m1 = _mm256_max_ps(_mm256_loadu_ps(v + c0 + 8), m1);
    }
    const int rest = width - c0;
    float tailv[TOPK_STRIP];
    if (rest > 0) {
        for (int l = 0; l < TOPK_STRIP; l++) tailv[l] = l < rest ? v[c0 + l] : -INFINITY;
        m0 = _mm256_max_ps(_mm256_loadu_ps(tailv), m0);
        m1 = _mm256_max_ps(_mm256_loadu_ps(tailv + 8), m1);
    }
    const float thr = st->thr[s];
    const __m256 vt = _mm256_set1_ps(thr);
    const int any = _mm256_movemask_ps(_mm256_cmp_ps(m0, vt, _CMP_GT_OQ)) |
                    _mm256_movemask_ps(_mm256_cmp_ps(m1, vt, _CMP_GT_OQ));
    if (!any) return;
    float cut = -INFINITY;
    if (st->count[s] == 0 && st->k <= TOPK_STRIP) {
        float lm[TOPK_STRIP];
        _mm256_storeu_ps(lm, m0);
        _mm256_storeu_ps(lm + 8, m1);
        cut = topk_lane_cut(lm, st->k);
    }
    const __m256 vc = _mm256_set1_ps(cut);
    for (int32_t c = 0; c < width; c += TOPK_STRIP) {
        const int n = width - c < TOPK_STRIP ? width - c : TOPK_STRIP;
        const __m256 a = _mm256_loadu_ps(v + c), b = _mm256_loadu_ps(v + c + 8);
        const uint32_t lo = (uint32_t)_mm256_movemask_ps(
            _mm256_and_ps(_mm256_cmp_ps(a, vt, _CMP_GT_OQ), _mm256_cmp_ps(a, vc, _CMP_GE_OQ)));
        const uint32_t hi = (uint32_t)_mm256_movemask_ps(
            _mm256_and_ps(_mm256_cmp_ps(b, vt, _CMP_GT_OQ), _mm256_cmp_ps(b, vc, _CMP_GE_OQ)));
        uint32_t m = lo | hi << 8;
        if (n < TOPK_STRIP) m &= (1u << n) - 1u;
        if (m) topk_offer_lanes(st, s, v + c, m, perm, col0 + c);
    }
}

#else /* not x86-64: never selected (mml_kernels_isa_level() is portable there); plain C so that the library links. */

void topk_select_chunk_avx2(topk_state *st, int64_t s, const float *v, int32_t width, const int32_t *perm,
                            int32_t col0) {
    topk_select_chunk_portable(st, s, v, width, perm, col0);
}

void topk_mk_f32_avx2(float *buf, int mr, const float *q, int64_t d, const float *panel, int32_t width) {
    const int cols = ((width + TOPK_STRIP - 1) / TOPK_STRIP) * TOPK_STRIP;
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < cols; c++) {
            float s = 0.0f;
            for (int64_t p = 0; p < d; p++) s = fmaf(q[r * d + p], panel[p * cols + c], s);
            buf[r * TOPK_CHUNK_COLS + c] = s;
        }
}

#endif
