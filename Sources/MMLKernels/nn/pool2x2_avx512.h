/* 2x2 / stride-2 max-pool of one plane with AVX-512, optionally after y = leaky(a x + b) (the BatchNorm tail):
 * shared by the standalone pool (nn.c) and the fused BN + activation + pool kernels (bn_pool.c). 16 outputs per
 * step, split from two rows of 32 inputs by two-source permutes; the row end is done with masked loads and stores
 * (masked-off lanes are never read). Tie rule as the scalar pool: strict > keeps the first maximum, the first NaN
 * wins and stays. a x + b is two roundings (a multiply, then an add), as the unfused affine kernel. */
#ifndef MML_POOL2X2_AVX512_H
#define MML_POOL2X2_AVX512_H
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>

#define POOL2X2_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

POOL2X2_AVX512 static inline __m512 pool2x2_act16(__m512 v, int act, __m512 a, __m512 b, __m512 slope) {
    if (!act) return v;
    __m512 z = _mm512_add_ps(_mm512_mul_ps(a, v), b);
    __mmask16 pos = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_GT_OQ);
    return _mm512_mask_blend_ps(pos, _mm512_mul_ps(slope, z), z);
}

POOL2X2_AVX512 static inline void pool2x2_take16(__m512 v, __m512i vi, __m512 *best, __m512i *bi) {
    __mmask16 take = _mm512_cmp_ps_mask(v, *best, _CMP_GT_OQ) |
                     (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(*best, *best, _CMP_ORD_Q));
    *best = _mm512_mask_blend_ps(take, *best, v);
    *bi = _mm512_mask_blend_epi32(take, *bi, vi);
}

/* y (oh x ow) and optional argmax (index in the h x w plane, row length w) from plane x. */
POOL2X2_AVX512 static inline void pool2x2_plane_avx512(const float *x, float *y, int32_t *arg, int64_t w, int64_t oh,
                                                       int64_t ow, int act, float a, float b, float slope) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b), vs = _mm512_set1_ps(slope);
    for (int64_t oy = 0; oy < oh; oy++) {
        const float *r0 = x + 2 * oy * w, *r1 = r0 + w;
        for (int64_t ox = 0; ox < ow; ox += 16) {
            int64_t m = ow - ox < 16 ? ow - ox : 16;
            __mmask16 lo = (__mmask16)(2 * m >= 16 ? 0xFFFF : (1u << (2 * m)) - 1);
            __mmask16 hi = (__mmask16)(2 * m >= 32 ? 0xFFFF : 2 * m > 16 ? (1u << (2 * m - 16)) - 1 : 0);
            __mmask16 out = (__mmask16)(m == 16 ? 0xFFFF : (1u << m) - 1);
            __m512 a0 = _mm512_maskz_loadu_ps(lo, r0 + 2 * ox), a1 = _mm512_maskz_loadu_ps(hi, r0 + 2 * ox + 16);
            __m512 b0 = _mm512_maskz_loadu_ps(lo, r1 + 2 * ox), b1 = _mm512_maskz_loadu_ps(hi, r1 + 2 * ox + 16);
            __m512i i00 = _mm512_add_epi32(_mm512_set1_epi32((int32_t)(2 * oy * w + 2 * ox)), even);
            __m512 best = pool2x2_act16(_mm512_permutex2var_ps(a0, even, a1), act, va, vb, vs);
            __m512i bi = i00;
            pool2x2_take16(pool2x2_act16(_mm512_permutex2var_ps(a0, odd, a1), act, va, vb, vs),
                           _mm512_add_epi32(i00, _mm512_set1_epi32(1)), &best, &bi);
            pool2x2_take16(pool2x2_act16(_mm512_permutex2var_ps(b0, even, b1), act, va, vb, vs),
                           _mm512_add_epi32(i00, _mm512_set1_epi32((int32_t)w)), &best, &bi);
            pool2x2_take16(pool2x2_act16(_mm512_permutex2var_ps(b0, odd, b1), act, va, vb, vs),
                           _mm512_add_epi32(i00, _mm512_set1_epi32((int32_t)w + 1)), &best, &bi);
            _mm512_mask_storeu_ps(y + oy * ow + ox, out, best);
            if (arg) _mm512_mask_storeu_epi32((void *)(arg + oy * ow + ox), out, bi);
        }
    }
}
#endif
#endif
