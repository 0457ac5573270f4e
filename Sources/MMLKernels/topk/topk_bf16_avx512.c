/* AVX512-BF16 micro-kernels of the bf16 grouped top-K similarity (mml_group_topk_sim_bf16; layout in
 * topk_internal.h). The same register block as the fp32 kernels (topk_avx512.c): MR <= 6 query rows x NS <= 4
 * strips of 16 columns in 24 zmm accumulators, but each depth step is one bf16 PAIR: 4 aligned loads of 16
 * column pairs, 6 broadcasts of a query pair and 24 VDPBF16PS, each adding two products per lane. Every dot
 * product is accumulated over the pairs p = 0..d2-1 in order in one accumulator, so it has the same bits whatever
 * the row tail, the thread split or the path: topk_portable.c's mk_portable_bf16 reproduces VDPBF16PS exactly
 * (odd element first, two single-rounding FMAs, DAZ / FTZ; see scripts/check-vdpbf16ps.c). The selection of
 * candidates from the products is the fp32 path's (topk_block_avx512 picks this table when pk->bf16).
 */
#include "topk_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define BF16_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,avx512bf16")))

static inline __attribute__((always_inline)) BF16_ATTR void
mkb_body(const int MR, const int NS, float *buf, const uint32_t *q, int64_t d2, const uint32_t *panel) {
    __m512 acc[TOPK_MR][4];
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < NS; c++) acc[r][c] = _mm512_setzero_ps();
    const uint32_t *qr[TOPK_MR];
    for (int r = 0; r < MR; r++) qr[r] = q + r * d2;
    const uint32_t *b = panel;
    for (int64_t p = 0; p < d2; p++, b += NS * TOPK_STRIP) {
        __m512bh bv[4];
        for (int c = 0; c < NS; c++) bv[c] = (__m512bh)_mm512_load_si512((const void *)(b + c * TOPK_STRIP));
        for (int r = 0; r < MR; r++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)qr[r][p]);
            for (int c = 0; c < NS; c++) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], a, bv[c]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < NS; c++) _mm512_store_ps(buf + r * TOPK_CHUNK_COLS + c * TOPK_STRIP, acc[r][c]);
}

#define MKB(MR, NS)                                                                                          \
    static BF16_ATTR void mkb_##MR##_##NS(float *buf, const void *q, int64_t d2, const void *panel) {       \
        mkb_body(MR, NS, buf, (const uint32_t *)q, d2, (const uint32_t *)panel);                             \
    }
#define MKB_ROW(MR) MKB(MR, 1) MKB(MR, 2) MKB(MR, 3) MKB(MR, 4)
MKB_ROW(1) MKB_ROW(2) MKB_ROW(3) MKB_ROW(4) MKB_ROW(5) MKB_ROW(6)

const topk_mk_fn topk_mk_bf16_avx512[TOPK_MR][4] = {
    {mkb_1_1, mkb_1_2, mkb_1_3, mkb_1_4}, {mkb_2_1, mkb_2_2, mkb_2_3, mkb_2_4},
    {mkb_3_1, mkb_3_2, mkb_3_3, mkb_3_4}, {mkb_4_1, mkb_4_2, mkb_4_3, mkb_4_4},
    {mkb_5_1, mkb_5_2, mkb_5_3, mkb_5_4}, {mkb_6_1, mkb_6_2, mkb_6_3, mkb_6_4},
};

#endif
