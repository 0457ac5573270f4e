/* The finite check of every kernel (mml_scan_finite, mml_common.h): NaN and Inf are the floats whose exponent bits
 * are all ones, and a finite float's magnitude orders like its bits without the sign, so one unsigned maximum over
 * the bits gives both answers (it reaches 0x7F800000 exactly when some value is NaN or Inf). The portable body
 * vectorises at the baseline ISA; its AVX2 build and the AVX-512 body (16-lane unsigned maxima) give the same
 * answers faster. */
#include "MMLKernels.h"
#include "mml_isa.h"
#include <string.h>

#define SCAN_BODY                                                                                                 \
    uint32_t mx = 0;                                                                                              \
    for (int64_t i = 0; i < count; i++) {                                                                         \
        uint32_t u;                                                                                               \
        memcpy(&u, &x[i], 4);                                                                                     \
        u &= 0x7FFFFFFFu;                                                                                         \
        mx = u > mx ? u : mx;                                                                                     \
    }                                                                                                             \
    if (amax) memcpy(amax, &mx, 4);                                                                               \
    return mx < 0x7F800000u;

static int scan_portable(const float *x, int64_t count, float *amax) { SCAN_BODY }

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2,fma"))) static int scan_avx2(const float *x, int64_t count, float *amax) { SCAN_BODY }

/* The same maximum in two 16-lane chains, the tail through masked loads. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma"))) static int scan_avx512(const float *x,
                                                                                          int64_t count,
                                                                                          float *amax) {
    const __m512i mag = _mm512_set1_epi32(0x7FFFFFFF);
    __m512i m0 = _mm512_setzero_si512(), m1 = _mm512_setzero_si512();
    int64_t i = 0;
    for (; i + 32 <= count; i += 32) {
        m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_loadu_si512(x + i), mag));
        m1 = _mm512_max_epu32(m1, _mm512_and_si512(_mm512_loadu_si512(x + i + 16), mag));
    }
    if (i < count) {
        int64_t rest = count - i;
        __mmask16 k0 = (__mmask16)(rest >= 16 ? 0xFFFF : (1u << rest) - 1u);
        __mmask16 k1 = (__mmask16)(rest <= 16 ? 0 : (1u << (rest - 16)) - 1u);
        m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_maskz_loadu_epi32(k0, x + i), mag));
        m1 = _mm512_max_epu32(m1, _mm512_and_si512(_mm512_maskz_loadu_epi32(k1, x + i + 16), mag));
    }
    uint32_t mx = _mm512_reduce_max_epu32(_mm512_max_epu32(m0, m1));
    if (amax) memcpy(amax, &mx, 4);
    return mx < 0x7F800000u;
}
#endif

int mml_scan_finite(int32_t level, const float *x, int64_t count, float *amax) {
    if (!x || count <= 0) {
        if (amax) *amax = 0.0f;
        return 1;
    }
    const int best = mml_cpu_isa_level();
    if (level > best) level = best;
#if defined(__x86_64__)
    if (level == MML_ISA_AVX512) return scan_avx512(x, count, amax);
    if (level == MML_ISA_AVX2) return scan_avx2(x, count, amax);
#else
    (void)level;
#endif
    return scan_portable(x, count, amax);
}
