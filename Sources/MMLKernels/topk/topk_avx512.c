/* AVX-512 grouped top-K similarity (see topk_internal.h for the data layout): the fp32 micro-kernels and the
 * selection from their products, for both element types (topk_block_avx512 takes the bf16 micro-kernels of
 * topk_bf16_avx512.c for TOPK_BF16; the bf16amx precision has its own driver, topk_amx.c).
 *
 * The micro-kernels (topk_mk_body.h, instantiated here with one FMA per depth step) compute C = Q[0..MR) . panel^T
 * for MR <= 6 query rows and NS <= 4 strips of 16 reference columns in zmm registers, the 6 broadcasts of a step
 * folded into the FMAs as embedded broadcasts. The products of a 6-row x 512-column chunk go to an L1 buffer, and
 * select_chunk() (topk_select_avx512.h) picks the qualifying entries with mask compares (no branch per 16 columns).
 */
#include "topk_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

#define TOPK_MK_ATTR AVX512_ATTR
#define TOPK_MK_ELEM float
#define TOPK_MK_VEC __m512
#define TOPK_MK_LOAD(p) _mm512_load_ps(p)
#define TOPK_MK_BCAST(x) _mm512_set1_ps(x)
#define TOPK_MK_STEP(acc, a, b) _mm512_fmadd_ps(a, b, acc)
#define TOPK_MK_PREFIX mk
#include "topk_mk_body.h"

static const topk_mk_fn mk_table[TOPK_MR][4] = TOPK_MK_TABLE;

#include "topk_select_avx512.h"

/* For each group and each chunk of up to TOPK_CHUNK of its panels (512 columns, 128 KiB at d = 64, kept in L2),
 * every 6-row slice of the block computes its 6 x 512 dot products into an L1 buffer, then selects from them. */
AVX512_ATTR void topk_block_avx512(topk_state *st, const void *Q, int64_t rows, const topk_packed *pk) {
    const int64_t d = pk->d, G = st->n_groups;
    /* d is the depth in 4-byte elements (floats, or bf16 pairs for the bf16 kernels) */
    const topk_mk_fn(*table)[4] = pk->prec == TOPK_BF16 ? topk_mk_bf16_avx512 : mk_table;
    const uint32_t *q32 = Q, *data = (const uint32_t *)pk->data;
    float buf[TOPK_MR * TOPK_CHUNK_COLS] __attribute__((aligned(64)));
    for (int64_t g = 0; g < G; g++) {
        for (int64_t t0 = pk->group_panel[g]; t0 < pk->group_panel[g + 1]; t0 += TOPK_CHUNK) {
            int64_t t1 = t0 + TOPK_CHUNK < pk->group_panel[g + 1] ? t0 + TOPK_CHUNK : pk->group_panel[g + 1];
            int32_t width = 0;
            for (int64_t t = t0; t < t1; t++) width += pk->width[t];
            for (int64_t r0 = 0; r0 < rows; r0 += TOPK_MR) {
                const int mr = rows - r0 < TOPK_MR ? (int)(rows - r0) : TOPK_MR;
                for (int64_t t = t0; t < t1; t++) {
                    const int ns = (pk->width[t] + TOPK_STRIP - 1) / TOPK_STRIP;
                    table[mr - 1][ns - 1](buf + (t - t0) * TOPK_NR, q32 + r0 * d, d, data + pk->offset[t]);
                }
                for (int r = 0; r < mr; r++)
                    select_chunk(st, (r0 + r) * G + g, buf + r * TOPK_CHUNK_COLS, width, pk->perm, pk->col0[t0]);
            }
        }
    }
}

#else /* not x86-64: never selected (mml_kernels_isa_level() is portable there), defined so the library links. */

void topk_block_avx512(topk_state *st, const void *Q, int64_t rows, const topk_packed *pk) {
    topk_block_portable(st, Q, rows, pk);
}

#endif
