/* Checks, on the CPU it runs on, that the hardware AVX512-BF16 instructions match the scalar models the
 * bf16 grouped top-K kernel's portable path uses (topk_bf16_from_f32 in Sources/MMLKernels/topk/topk_internal.h,
 * mk_portable_bf16 in topk_portable.c):
 *   VDPBF16PS per fp32 lane: acc = fma(a[2j+1], b[2j+1], acc); acc = fma(a[2j], b[2j], acc), each a single
 *   rounding in RNE, bf16 denormal inputs read as zero (DAZ), denormal results flushed to signed zero (FTZ);
 *   VCVTNEPS2BF16: fp32 -> bf16 round to nearest even, fp32 denormals to signed zero, NaN quietened.
 * Result on Intel Emerald Rapids (Xeon, 2026-12): 30.5 M lanes, 0 mismatches with the model; the alternatives
 * each fail (no DAZ on the accumulator: 444 k mismatches, even element first: 3.4 M, both products summed then
 * rounded once: 1.7 M); VCVTNEPS2BF16: 32 M values, 0 mismatches. On AMD EPYC (Zen 5, 2026-12-07) the same:
 * 30.5 M lanes and 32 M values, 0 mismatches, the alternatives failing by the same counts.
 * Not part of the build or the tests (the tests compare the two kernel paths); a tool to re-check the model on
 * a new CPU:  cc -O2 -o /tmp/check-vdpbf16ps scripts/check-vdpbf16ps.c -lm && /tmp/check-vdpbf16ps
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint64_t s = 0x9E3779B97F4A7C15ull;
static uint64_t next(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
static float f_of(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t u_of(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bf(uint16_t h) { return f_of((uint32_t)h << 16); }
static float daz(float x) { return fabsf(x) < 0x1p-126f ? copysignf(0.0f, x) : x; }

/* The model (fmaf is correctly rounded). daz_acc: also read a denormal accumulator as zero. */
static float model(float acc, uint32_t a, uint32_t b, int daz_acc, int order_odd_first) {
    float a0 = daz(bf((uint16_t)a)), a1 = daz(bf((uint16_t)(a >> 16)));
    float b0 = daz(bf((uint16_t)b)), b1 = daz(bf((uint16_t)(b >> 16)));
    if (daz_acc) acc = daz(acc);
    if (order_odd_first) { acc = daz(fmaf(a1, b1, acc)); acc = daz(fmaf(a0, b0, acc)); }
    else { acc = daz(fmaf(a0, b0, acc)); acc = daz(fmaf(a1, b1, acc)); }
    return acc;
}
/* exact sum of both products then one rounding (an alternative hypothesis) */
static float model_fused(float acc, uint32_t a, uint32_t b) {
    float a0 = daz(bf((uint16_t)a)), a1 = daz(bf((uint16_t)(a >> 16)));
    float b0 = daz(bf((uint16_t)b)), b1 = daz(bf((uint16_t)(b >> 16)));
    long double t = (long double)a0 * b0 + (long double)a1 * b1 + (long double)daz(acc);
    return daz((float)t);
}
static uint16_t cvt_model(float x) {
    uint32_t u = u_of(x);
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x7FFFFFu)) return (uint16_t)((u >> 16) | 0x40u);
    if ((u & 0x7F800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

/* a bf16 with a random sign, mantissa and an exponent field drawn from [lo, hi] */
static uint16_t rnd_bf16(int lo, int hi) {
    uint64_t r = next();
    int e = lo + (int)(r % (uint64_t)(hi - lo + 1));
    return (uint16_t)(((r >> 20) & 1u) << 15 | (uint32_t)e << 7 | ((r >> 32) & 0x7Fu));
}

__attribute__((target("avx512f,avx512bf16"))) static void hw(float *acc, const uint32_t *a, const uint32_t *b) {
    __m512 c = _mm512_loadu_ps(acc);
    __m512bh x = (__m512bh)_mm512_loadu_si512(a), y = (__m512bh)_mm512_loadu_si512(b);
    _mm512_storeu_ps(acc, _mm512_dpbf16_ps(c, x, y));
}
__attribute__((target("avx512f,avx512bf16"))) static void hw_cvt(uint16_t *o, const float *x) {
    __m256bh r = _mm512_cvtneps_pbh(_mm512_loadu_ps(x));
    memcpy(o, &r, 32);
}

int main(void) {
    /* exponent windows: full finite range (incl. exponent 0 = zero/denormal), tiny (products underflow),
     * cancellation-prone (similar magnitudes, results near the accumulator) */
    const int windows[][2] = {{0, 254}, {0, 20}, {40, 90}, {120, 134}, {125, 129}};
    long total = 0, bad_sdm = 0, bad_even_first = 0, bad_fused = 0, bad_nodazacc = 0, same_as_fused = 0;
    for (int w = 0; w < 5; w++) {
        for (int it = 0; it < 400000; it++) {
            float acc[16], out[16];
            uint32_t a[16], b[16];
            for (int j = 0; j < 16; j++) {
                a[j] = (uint32_t)rnd_bf16(windows[w][0], windows[w][1]) |
                       (uint32_t)rnd_bf16(windows[w][0], windows[w][1]) << 16;
                b[j] = (uint32_t)rnd_bf16(windows[w][0], windows[w][1]) |
                       (uint32_t)rnd_bf16(windows[w][0], windows[w][1]) << 16;
                uint64_t r = next();
                switch (r % 5) {
                case 0: acc[j] = 0.0f; break;
                case 1: acc[j] = f_of((uint32_t)(r >> 8) & 0x807FFFFFu); break; /* zero or denormal */
                case 2: { /* minus one of the products: cancellation */
                    float p = bf((uint16_t)(a[j] >> 16)) * bf((uint16_t)(b[j] >> 16));
                    acc[j] = -p;
                    break;
                }
                default: acc[j] = f_of(((uint32_t)(r >> 8) & 0x80000000u) |
                                       (uint32_t)((windows[w][0] * 2 + (int)((r >> 40) % 80)) % 254 + 1) << 23 |
                                       ((uint32_t)(r >> 12) & 0x7FFFFFu));
                }
                if (!isfinite(acc[j])) acc[j] = 1.0f;
            }
            memcpy(out, acc, sizeof out);
            hw(out, a, b);
            for (int j = 0; j < 16; j++) {
                /* skip lanes whose products or sums overflow: NaN/Inf bits are not what the kernel relies on */
                if (!isfinite(out[j])) continue;
                total++;
                uint32_t h = u_of(out[j]);
                bad_sdm += u_of(model(acc[j], a[j], b[j], 1, 1)) != h;
                bad_nodazacc += u_of(model(acc[j], a[j], b[j], 0, 1)) != h;
                bad_even_first += u_of(model(acc[j], a[j], b[j], 1, 0)) != h;
                uint32_t fu = u_of(model_fused(acc[j], a[j], b[j]));
                bad_fused += fu != h;
                same_as_fused += fu == h;
                if (u_of(model(acc[j], a[j], b[j], 1, 1)) != h && bad_sdm <= 5)
                    printf("mismatch: acc %a a %08x b %08x hw %a (%08x) model %a\n", acc[j], a[j], b[j], out[j],
                           h, model(acc[j], a[j], b[j], 1, 1));
            }
        }
    }
    printf("VDPBF16PS lanes compared: %ld\n", total);
    printf("  SDM model (odd pair element first, DAZ incl. accumulator, FTZ each step): %ld mismatches\n", bad_sdm);
    printf("  same without DAZ on the accumulator: %ld mismatches\n", bad_nodazacc);
    printf("  even element first: %ld mismatches\n", bad_even_first);
    printf("  both products summed exactly, one rounding: %ld mismatches\n", bad_fused);

    long cvt_total = 0, cvt_bad = 0;
    for (int it = 0; it < 2000000; it++) {
        float x[16];
        uint16_t o[16];
        for (int j = 0; j < 16; j++) {
            uint64_t r = next();
            uint32_t u = (uint32_t)r;
            if (r >> 60 == 0) u = (u & 0x807F0000u) | 0x8000u | ((uint32_t)(r >> 32) & 1u) << 16; /* ties */
            if ((r >> 56 & 15) == 1) u &= 0x807FFFFFu; /* denormals */
            if ((r >> 56 & 15) == 2) u |= 0x7F800000u; /* Inf and NaN */
            if ((r >> 56 & 15) == 3) u = (u & 0x80000000u) | 0x7F7F8000u | (u & 0x7FFFu); /* round to Inf */
            x[j] = f_of(u);
        }
        hw_cvt(o, x);
        for (int j = 0; j < 16; j++) {
            cvt_total++;
            if (o[j] != cvt_model(x[j])) {
                if (cvt_bad < 5) printf("cvt mismatch: %08x hw %04x model %04x\n", u_of(x[j]), o[j], cvt_model(x[j]));
                cvt_bad++;
            }
        }
    }
    printf("VCVTNEPS2BF16 values compared: %ld, mismatches with the RNE/FTZ/quiet-NaN model: %ld\n", cvt_total,
           cvt_bad);
    return bad_sdm != 0 || cvt_bad != 0;
}
