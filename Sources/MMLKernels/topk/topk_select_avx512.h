/* The AVX-512 selection from a buffered chunk of dot products, shared by the AVX-512 driver (topk_avx512.c) and
 * the AMX driver (topk_amx.c): include once, after topk_internal.h and immintrin.h, in an x86-64 file. */
#ifndef MML_TOPK_SELECT_AVX512_H
#define MML_TOPK_SELECT_AVX512_H

#define TOPK_SELECT_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

/* Selection over one row's buffered chunk v[0..width) (packed columns col0..), slot s.
 * The 16 lane maxima of the chunk decide in one compare whether anything beats the row's k-th best (the
 * common case after the first chunk is "no"). While the slot is still empty, the k-th largest lane maximum is
 * a lower bound of the chunk's k-th best value (the k largest lane maxima are k distinct entries), so only
 * entries >= it are offered: about k offers instead of 16 per strip. */
static inline __attribute__((always_inline)) TOPK_SELECT_ATTR void
select_chunk(topk_state *st, int64_t s, const float *v, int32_t width, const int32_t *perm, int32_t col0) {
    const int ns = (width + TOPK_STRIP - 1) / TOPK_STRIP;
    const int tail = width - (ns - 1) * TOPK_STRIP;
    const __mmask16 last = (__mmask16)(tail == TOPK_STRIP ? 0xFFFF : (1u << tail) - 1u);
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    /* lane maxima per 64-column panel (pm), then over the chunk (lm) */
    const int np = (ns + 3) / 4;
    __m512 pm[TOPK_CHUNK];
    for (int w = 0; w < np; w++) {
        __m512 x = ninf;
        for (int u = 0; u < 4; u++) {
            const int t = 4 * w + u;
            if (t >= ns) break;
            x = _mm512_max_ps(x, _mm512_mask_load_ps(ninf, t == ns - 1 ? last : (__mmask16)0xFFFF,
                                                     v + t * TOPK_STRIP));
        }
        pm[w] = x;
    }
    __m512 lm = pm[0];
    for (int w = 1; w < np; w++) lm = _mm512_max_ps(lm, pm[w]);
    const float thr = st->thr[s];
    if (!_mm512_cmp_ps_mask(lm, _mm512_set1_ps(thr), _CMP_GT_OQ)) return;
    float cut = -INFINITY;
    if (st->count[s] == 0 && st->k <= TOPK_STRIP) {
        __m512 x = lm;
        for (int32_t t = 0; t < st->k; t++) {
            cut = _mm512_reduce_max_ps(x);
            __mmask16 eq = _mm512_cmp_ps_mask(x, _mm512_set1_ps(cut), _CMP_EQ_OQ);
            x = _mm512_mask_mov_ps(x, (__mmask16)(eq & (0u - eq)), ninf);
        }
    }
    /* Only panels whose lane maxima pass both tests can hold a candidate; in those, all strips' masks go into
     * a 64-bit map first, then a walk over its few set bits: no branch per strip. */
    const __m512 vthr = _mm512_set1_ps(thr), vcut = _mm512_set1_ps(cut);
    uint32_t panels = 0;
    for (int w = 0; w < np; w++)
        panels |= (uint32_t)(_mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(pm[w], vthr, _CMP_GT_OQ), pm[w], vcut,
                                                     _CMP_GE_OQ) != 0) << w;
    while (panels) {
        const int t0 = 4 * __builtin_ctz(panels);
        panels &= panels - 1;
        uint64_t bits = 0;
        for (int u = 0; u < 4; u++) {
            const int t = t0 + u;
            if (t >= ns) break;
            const __mmask16 valid = t == ns - 1 ? last : (__mmask16)0xFFFF;
            const __m512 x = _mm512_maskz_load_ps(valid, v + t * TOPK_STRIP);
            __mmask16 m = _mm512_mask_cmp_ps_mask(valid, x, vthr, _CMP_GT_OQ);
            m = _mm512_mask_cmp_ps_mask(m, x, vcut, _CMP_GE_OQ);
            bits |= (uint64_t)m << (u * 16);
        }
        while (bits) {
            const int c = t0 * TOPK_STRIP + __builtin_ctzll(bits);
            bits &= bits - 1;
            topk_offer(st, s, v[c], perm[col0 + c]);
        }
    }
}

#endif /* MML_TOPK_SELECT_AVX512_H */
