/* Portable C path of the grouped top-K similarity: the same panels, blocking and top-k bookkeeping as the
 * AVX-512 path, with the dot products of up to 6 rows x 64 columns accumulated in a small array the compiler
 * can vectorise for whatever the baseline ISA is. Selected when the CPU lacks AVX-512 or MML_KERNELS_ISA=portable,
 * and for the bf16 precisions when the CPU lacks AVX512-BF16 (bf16) or usable AMX-BF16 (bf16amx): their
 * micro-kernels here reproduce VDPBF16PS and TDPBF16PS bit for bit.
 */
#include "topk_internal.h"
#include <string.h>

/* buf[r * TOPK_CHUNK_COLS + c] = <q_r, panel column c> for r < mr, c < 16 * ceil(width / 16). */
static void mk_portable(float *buf, int mr, const float *q, int64_t d, const float *panel, int32_t width) {
    const int cols = ((width + TOPK_STRIP - 1) / TOPK_STRIP) * TOPK_STRIP;
    for (int r = 0; r < mr; r++) {
        float acc[TOPK_NR];
        for (int c = 0; c < cols; c++) acc[c] = 0.0f;
        const float *qr = q + r * d;
        for (int64_t p = 0; p < d; p++) {
            const float a = qr[p], *b = panel + p * cols;
            for (int c = 0; c < cols; c++) acc[c] += a * b[c];
        }
        for (int c = 0; c < cols; c++) buf[r * TOPK_CHUNK_COLS + c] = acc[c];
    }
}

/* Flush a denormal result to a zero of its sign (FTZ). */
static inline float ftz(float x) { return fabsf(x) < 0x1p-126f ? copysignf(0.0f, x) : x; }

/* The two bf16 halves of a packed pair as floats: the even element (low half) and the odd one (high half). */
static inline void bf16_pair(uint32_t x, float *even, float *odd) {
    uint32_t lo = x << 16, hi = x & 0xFFFF0000u;
    memcpy(even, &lo, 4);
    memcpy(odd, &hi, 4);
}

/* The bf16 twin of mk_portable, with VDPBF16PS's exact arithmetic (Intel SDM; confirmed bit for bit on
 * Emerald Rapids by scripts/check-vdpbf16ps.c): per pair p, in order p = 0, 1, ...,
 *     acc = FTZ(fma(q[2p+1], r[2p+1], acc));  acc = FTZ(fma(q[2p], r[2p], acc))
 * (the odd element first), each a single rounding to nearest even. The hardware also reads denormal inputs
 * (and a denormal accumulator) as zero; the packed pairs never hold a bf16 denormal (topk_bf16_from_f32 flushes
 * fp32 denormals) and the accumulator is never denormal after FTZ, so that needs no code here. */
static void mk_portable_bf16(float *buf, int mr, const uint32_t *q, int64_t d2, const uint32_t *panel,
                             int32_t width) {
    const int cols = ((width + TOPK_STRIP - 1) / TOPK_STRIP) * TOPK_STRIP;
    for (int r = 0; r < mr; r++) {
        float acc[TOPK_NR];
        for (int c = 0; c < cols; c++) acc[c] = 0.0f;
        const uint32_t *qr = q + r * d2;
        for (int64_t p = 0; p < d2; p++) {
            float a0, a1;
            bf16_pair(qr[p], &a0, &a1);
            const uint32_t *b = panel + p * cols;
            for (int c = 0; c < cols; c++) {
                float b0, b1;
                bf16_pair(b[c], &b0, &b1);
                acc[c] = ftz(fmaf(a1, b1, acc[c]));
                acc[c] = ftz(fmaf(a0, b0, acc[c]));
            }
        }
        for (int c = 0; c < cols; c++) buf[r * TOPK_CHUNK_COLS + c] = acc[c];
    }
}

/* The bf16amx twin, with TDPBF16PS's exact arithmetic (scripts/check-amx-bf16.c found it on Emerald Rapids, bit
 * for bit over 5.4 M random and adversarial lanes): the depth (d2p pairs, a multiple of 16, zero pairs past the
 * data) runs in blocks of 16 pairs, one TDPBF16PS each; in a block the even elements and the odd elements are two
 * separate chains, each starting at +0 and adding its products in pair order, then their sum goes into the
 * accumulator:
 *     e = +0; o = +0;  for the block's pairs p:  e = FTZ(fma(q[2p], r[2p], e));  o = FTZ(fma(q[2p+1], r[2p+1], o))
 *     acc = FTZ(acc + FTZ(e + o))
 * each a single rounding to nearest even (the hardware also reads a denormal accumulator as zero, which FTZ
 * already ensures). The padding pairs are computed like the others (+0 * +0 can turn a -0 chain into +0, as on
 * the hardware). */
static void mk_portable_bf16amx(float *buf, int mr, const uint32_t *q, int64_t d2p, const uint32_t *panel,
                                int32_t width) {
    const int cols = ((width + TOPK_STRIP - 1) / TOPK_STRIP) * TOPK_STRIP;
    for (int r = 0; r < mr; r++) {
        float acc[TOPK_NR], e[TOPK_NR], o[TOPK_NR];
        for (int c = 0; c < cols; c++) acc[c] = 0.0f;
        const uint32_t *qr = q + r * d2p;
        for (int64_t p0 = 0; p0 < d2p; p0 += TOPK_AMX_PAIRS) {
            for (int c = 0; c < cols; c++) e[c] = o[c] = 0.0f;
            for (int64_t p = p0; p < p0 + TOPK_AMX_PAIRS; p++) {
                float a0, a1;
                bf16_pair(qr[p], &a0, &a1);
                const uint32_t *b = panel + p * cols;
                for (int c = 0; c < cols; c++) {
                    float b0, b1;
                    bf16_pair(b[c], &b0, &b1);
                    e[c] = ftz(fmaf(a0, b0, e[c]));
                    o[c] = ftz(fmaf(a1, b1, o[c]));
                }
            }
            for (int c = 0; c < cols; c++) acc[c] = ftz(acc[c] + ftz(e[c] + o[c]));
        }
        for (int c = 0; c < cols; c++) buf[r * TOPK_CHUNK_COLS + c] = acc[c];
    }
}

/* The same selection rule as the AVX-512 path's select_chunk(), in scalar form. */
void topk_select_chunk_portable(topk_state *st, int64_t s, const float *v, int32_t width, const int32_t *perm,
                                int32_t col0) {
    float lm[TOPK_STRIP];
    for (int l = 0; l < TOPK_STRIP; l++) lm[l] = -INFINITY;
    for (int32_t c = 0; c < width; c++)
        if (v[c] > lm[c % TOPK_STRIP]) lm[c % TOPK_STRIP] = v[c];
    const float thr = st->thr[s];
    int any = 0;
    for (int l = 0; l < TOPK_STRIP; l++) any |= lm[l] > thr;
    if (!any) return;
    float cut = -INFINITY;
    if (st->count[s] == 0 && st->k <= TOPK_STRIP) cut = topk_lane_cut(lm, st->k);
    for (int32_t c0 = 0; c0 < width; c0 += TOPK_STRIP) {
        int n = width - c0 < TOPK_STRIP ? width - c0 : TOPK_STRIP;
        uint32_t m = 0;
        for (int l = 0; l < n; l++) m |= (uint32_t)(v[c0 + l] > thr && v[c0 + l] >= cut) << l;
        if (m) topk_offer_lanes(st, s, v + c0, m, perm, col0 + c0);
    }
}

static void block(topk_state *st, const void *Q, int64_t rows, const topk_packed *pk, int avx2) {
    const int64_t d = pk->d, G = st->n_groups;
    float buf[TOPK_MR * TOPK_CHUNK_COLS];
    for (int64_t g = 0; g < G; g++) {
        for (int64_t t0 = pk->group_panel[g]; t0 < pk->group_panel[g + 1]; t0 += TOPK_CHUNK) {
            int64_t t1 = t0 + TOPK_CHUNK < pk->group_panel[g + 1] ? t0 + TOPK_CHUNK : pk->group_panel[g + 1];
            int32_t width = 0;
            for (int64_t t = t0; t < t1; t++) width += pk->width[t];
            for (int64_t r0 = 0; r0 < rows; r0 += TOPK_MR) {
                const int mr = rows - r0 < TOPK_MR ? (int)(rows - r0) : TOPK_MR;
                for (int64_t t = t0; t < t1; t++) {
                    if (pk->prec == TOPK_BF16)
                        mk_portable_bf16(buf + (t - t0) * TOPK_NR, mr, (const uint32_t *)Q + r0 * d, d,
                                         (const uint32_t *)pk->data + pk->offset[t], pk->width[t]);
                    else if (pk->prec == TOPK_BF16AMX)
                        mk_portable_bf16amx(buf + (t - t0) * TOPK_NR, mr, (const uint32_t *)Q + r0 * d, d,
                                            (const uint32_t *)pk->data + pk->offset[t], pk->width[t]);
                    else if (avx2)
                        topk_mk_f32_avx2(buf + (t - t0) * TOPK_NR, mr, (const float *)Q + r0 * d, d,
                                         pk->data + pk->offset[t], pk->width[t]);
                    else
                        mk_portable(buf + (t - t0) * TOPK_NR, mr, (const float *)Q + r0 * d, d,
                                    pk->data + pk->offset[t], pk->width[t]);
                }
                for (int r = 0; r < mr; r++) {
                    if (avx2)
                        topk_select_chunk_avx2(st, (r0 + r) * G + g, buf + r * TOPK_CHUNK_COLS, width, pk->perm,
                                               pk->col0[t0]);
                    else
                        topk_select_chunk_portable(st, (r0 + r) * G + g, buf + r * TOPK_CHUNK_COLS, width, pk->perm,
                                                   pk->col0[t0]);
                }
            }
        }
    }
}

void topk_block_portable(topk_state *st, const void *Q, int64_t rows, const topk_packed *pk) {
    block(st, Q, rows, pk, 0);
}

void topk_block_avx2(topk_state *st, const void *Q, int64_t rows, const topk_packed *pk) {
    block(st, Q, rows, pk, pk->prec == TOPK_F32);
}
