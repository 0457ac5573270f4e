/* AVX512-BF16 micro-kernels of the bf16 grouped top-K similarity (mml_group_topk_sim_bf16; layout in
 * topk_internal.h). The fp32 kernels' register block (topk_mk_body.h, also instantiated by topk_avx512.c): MR <= 6
 * query rows x NS <= 4 strips of 16 columns in 24 zmm accumulators, but each depth step is one bf16 PAIR: 4
 * aligned loads of 16 column pairs, 6 broadcasts of a query pair and 24 VDPBF16PS, each adding two products per
 * lane. Every dot product is accumulated over the ceil(d/2) pairs in order in one accumulator, so it has the same
 * bits whatever the row tail, the thread split or the path: topk_portable.c's mk_portable_bf16 reproduces VDPBF16PS
 * exactly (odd element first, two single-rounding FMAs, DAZ / FTZ; see scripts/check-vdpbf16ps.c). The selection
 * of candidates from the products is the fp32 path's (topk_block_avx512 picks this table when pk->bf16).
 */
#include "topk_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TOPK_MK_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,avx512bf16")))
#define TOPK_MK_ELEM uint32_t
#define TOPK_MK_VEC __m512bh
#define TOPK_MK_LOAD(p) ((__m512bh)_mm512_load_si512((const void *)(p)))
#define TOPK_MK_BCAST(x) ((__m512bh)_mm512_set1_epi32((int)(x)))
#define TOPK_MK_STEP(acc, a, b) _mm512_dpbf16_ps(acc, a, b)
#define TOPK_MK_PREFIX mkb
#include "topk_mk_body.h"

const topk_mk_fn topk_mk_bf16_avx512[TOPK_MR][4] = TOPK_MK_TABLE;

#endif
