/* The register-blocked micro-kernels of the grouped top-K similarity, written once for both element types:
 * topk_avx512.c instantiates them for fp32 (one FMA per depth step) and topk_bf16_avx512.c for bf16 pairs (one
 * VDPBF16PS per depth step, two products per lane). Data layout: topk_internal.h.
 *
 * One call computes buf[r * TOPK_CHUNK_COLS + c] = <q_r, panel column c> for MR <= 6 query rows and NS <= 4 strips
 * of 16 reference columns, entirely in zmm registers: 6 x 4 = 24 accumulators + 4 panel vectors; each depth step
 * is NS aligned loads, MR broadcasts and MR x NS steps. Each dot product is accumulated over p = 0..depth-1 in order
 * in one accumulator, so every (i, j) gets the same bits whatever the row tail or the thread split.
 *
 * A file defines these, then includes this header (once, after topk_internal.h and immintrin.h):
 *   TOPK_MK_ATTR            the kernels' function attribute (the target ISA)
 *   TOPK_MK_ELEM            one 4-byte depth element of q and of a panel: float, or uint32_t (a bf16 pair)
 *   TOPK_MK_VEC             16 panel elements in a zmm: __m512, or __m512bh
 *   TOPK_MK_LOAD(p)         the aligned load of the 16 panel elements at p (const TOPK_MK_ELEM *)
 *   TOPK_MK_BCAST(x)        the query element x in all 16 lanes (a TOPK_MK_VEC)
 *   TOPK_MK_STEP(acc, a, b) acc (__m512) plus the depth step's products of a and b, lane by lane
 *   TOPK_MK_PREFIX          the kernels' name prefix
 * and gets the static micro-kernels TOPK_MK_PREFIX_<MR>_<NS> (MR = 1..6, NS = 1..4, each a topk_mk_fn) and
 * TOPK_MK_TABLE, the initializer of their table topk_mk_fn[TOPK_MR][4] (row MR-1, column NS-1).
 */
#if !defined(TOPK_MK_ATTR) || !defined(TOPK_MK_ELEM) || !defined(TOPK_MK_VEC) || !defined(TOPK_MK_LOAD) ||        \
    !defined(TOPK_MK_BCAST) || !defined(TOPK_MK_STEP) || !defined(TOPK_MK_PREFIX)
#error "define TOPK_MK_ATTR, _ELEM, _VEC, _LOAD, _BCAST, _STEP and _PREFIX before including topk_mk_body.h"
#endif

static inline __attribute__((always_inline)) TOPK_MK_ATTR void
topk_mk_body(const int MR, const int NS, float *buf, const TOPK_MK_ELEM *q, int64_t d, const TOPK_MK_ELEM *panel) {
    __m512 acc[TOPK_MR][4];
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < NS; c++) acc[r][c] = _mm512_setzero_ps();
    const TOPK_MK_ELEM *qr[TOPK_MR];
    for (int r = 0; r < MR; r++) qr[r] = q + r * d;
    const TOPK_MK_ELEM *b = panel;
    for (int64_t p = 0; p < d; p++, b += NS * TOPK_STRIP) {
        TOPK_MK_VEC bv[4];
        for (int c = 0; c < NS; c++) bv[c] = TOPK_MK_LOAD(b + c * TOPK_STRIP);
        for (int r = 0; r < MR; r++) {
            TOPK_MK_VEC a = TOPK_MK_BCAST(qr[r][p]);
            for (int c = 0; c < NS; c++) acc[r][c] = TOPK_MK_STEP(acc[r][c], a, bv[c]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < NS; c++) _mm512_store_ps(buf + r * TOPK_CHUNK_COLS + c * TOPK_STRIP, acc[r][c]);
}

/* two steps, so that TOPK_MK_PREFIX is replaced by its value before the pasting */
#define TOPK_MK_PASTE(P, MR, NS) P##_##MR##_##NS
#define TOPK_MK_NAME_(P, MR, NS) TOPK_MK_PASTE(P, MR, NS)
#define TOPK_MK_NAME(MR, NS) TOPK_MK_NAME_(TOPK_MK_PREFIX, MR, NS)
#define TOPK_MK_DEFINE(MR, NS)                                                                                    \
    static TOPK_MK_ATTR void TOPK_MK_NAME(MR, NS)(float *buf, const void *q, int64_t d, const void *panel) {     \
        topk_mk_body(MR, NS, buf, (const TOPK_MK_ELEM *)q, d, (const TOPK_MK_ELEM *)panel);                      \
    }
#define TOPK_MK_DEFINE_ROW(MR) TOPK_MK_DEFINE(MR, 1) TOPK_MK_DEFINE(MR, 2) TOPK_MK_DEFINE(MR, 3) TOPK_MK_DEFINE(MR, 4)
TOPK_MK_DEFINE_ROW(1) TOPK_MK_DEFINE_ROW(2) TOPK_MK_DEFINE_ROW(3) TOPK_MK_DEFINE_ROW(4) TOPK_MK_DEFINE_ROW(5)
TOPK_MK_DEFINE_ROW(6)

#define TOPK_MK_TABLE_ROW(MR) {TOPK_MK_NAME(MR, 1), TOPK_MK_NAME(MR, 2), TOPK_MK_NAME(MR, 3), TOPK_MK_NAME(MR, 4)}
#define TOPK_MK_TABLE                                                                                             \
    {TOPK_MK_TABLE_ROW(1), TOPK_MK_TABLE_ROW(2), TOPK_MK_TABLE_ROW(3),                                           \
     TOPK_MK_TABLE_ROW(4), TOPK_MK_TABLE_ROW(5), TOPK_MK_TABLE_ROW(6)}
