/* Finds out, on the CPU it runs on, the exact arithmetic of Intel AMX's TDPBF16PS (C[m][n] += sum over the K
 * pairs k of A[m][k] . B[k][n], each a bf16 pair) and compares it with the bf16 grouped top-K kernel's arithmetic
 * (VDPBF16PS: per pair, acc = fma(odd, odd, acc) then fma(even, even, acc); scripts/check-vdpbf16ps.c).
 *
 * 1. An order probe (the FPRev idea): products all 1 except +M at position i and -M at position j (M = 2^30, so
 *    M + 1 rounds to M in fp32), the accumulator at position 2K; the result counts the ones that are not absorbed
 *    by +-M before they cancel, which tells the summation order. Its table is compared with two orders.
 * 2. Random and adversarial cases (exponent windows from the full range to denormal products, cancellation between
 *    products and against the accumulator, bf16 denormal inputs, denormal and zero accumulators, K = 1..16) against
 *    the model below and its alternatives, bit for bit; lanes that overflow are compared by class (NaN, +Inf, -Inf).
 * 3. Directed cases: tininess before or after rounding; zero pairs padding K up to 16; and the question that
 *    matters: a dot product over ceil(d/2) pairs accumulated through successive TDPBF16PS calls (16 pairs each)
 *    against the existing bf16 path, on unit-norm descriptors.
 *
 * The model ("AMX model") that matches: for one C element and one instruction,
 *     E = +0; O = +0
 *     for k = 0 .. K-1:  E = FTZ(fma(a[k].even, b[k].even, E));  O = FTZ(fma(a[k].odd, b[k].odd, O))
 *     C = FTZ(DAZ(C) + FTZ(E + O))
 * each operation one rounding to nearest even; bf16 denormal inputs and a denormal C read as zero (DAZ); FTZ turns
 * a result below 2^-126 in magnitude AFTER rounding into a zero of its sign. The even and the odd elements are two
 * separate chains and the accumulator is added last, once per instruction: NOT the VDPBF16PS order.
 *
 * Result on Intel Xeon Emerald Rapids (2026-12): the order probe agrees with the model in 1056 of 1056 probes (with
 * the VDPBF16PS sequence in 32); 5.4 M random and adversarial lanes: 0 mismatches with the model, against 627 k
 * without FTZ in the chains, 179 with chains starting at their first product (zero signs), 239 k without DAZ on C,
 * 681 k with C added first, 2.0 M pair by pair, 2.2 M for the VDPBF16PS sequence; FTZ is after rounding; zero pairs
 * padding K to 16 change only the sign of a zero result (1050 of 5.1 M lanes), and the model with the padding
 * matches; and through successive TDPBF16PS over d = 64 (2 blocks of 16 pairs) 31% of the dot products of unit
 * descriptors differ from the existing bf16 path (VDPBF16PS), by up to 2e-5 relative (d = 640: 80%).
 * So AMX cannot be a path of the bf16 kernel: it is the bf16amx kernel's (mml_group_topk_sim_bf16amx, whose
 * portable path implements this model; README "bf16 similarity in evaluation").
 *
 * Not part of the build or the tests; a tool to re-check the model on a new CPU:
 *     clang -O2 -o /tmp/check-amx-bf16 scripts/check-amx-bf16.c -lm && /tmp/check-amx-bf16
 * (needs Linux >= 5.16 for the AMX permission request; exits 2 when the CPU or the OS lacks AMX-BF16).
 */
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint64_t s = 0x9E3779B97F4A7C15ull;
static uint64_t next(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
static float f_of(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t u_of(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bf(uint32_t h) { return f_of((h & 0xFFFFu) << 16); }
static float daz(float x) { return fabsf(x) < 0x1p-126f ? copysignf(0.0f, x) : x; }
static uint16_t bf_of(float x) { return (uint16_t)(u_of(x) >> 16); } /* exact for values with 8 significant bits */

/* ---- the hardware ---- */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

/* C (16 x 16 fp32, row stride 64 bytes) += A (16 rows of K pairs) . B (K rows of 16 pairs) */
__attribute__((target("amx-tile,amx-bf16"))) static void hw(float *C, const uint32_t *A, const uint32_t *B, int K) {
    tilecfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    c.colsb[0] = 64, c.rows[0] = 16;
    c.colsb[1] = (uint16_t)(4 * K), c.rows[1] = 16;
    c.colsb[2] = 64, c.rows[2] = (uint8_t)K;
    _tile_loadconfig(&c);
    _tile_loadd(0, C, 64);
    _tile_loadd(1, A, 4 * K);
    _tile_loadd(2, B, 64);
    _tile_dpbf16ps(0, 1, 2);
    _tile_stored(0, C, 64);
    _tile_release();
}

/* ---- the models, for one C element: a[k] = A[m][k], b[k] = B[k][n] ---- */
enum { AMX, AMX_NO_FTZ_CHAINS, AMX_FIRST_PRODUCT_STARTS, AMX_NO_DAZ_ACC, AMX_ACC_FIRST, PAIR_THEN_ACC, VDPBF16PS,
       N_MODELS };
static const char *model_name[N_MODELS] = {
    "AMX model (even chain, odd chain, their sum, then + C; FTZ each step)",
    "  the same without FTZ inside the chains",
    "  the same with each chain starting at its first product instead of +0",
    "  the same without DAZ on the incoming C",
    "  the same with C added to the even chain first (C + E + O, left to right)",
    "  per pair: C += round(even product + odd product) (the K = 1 behaviour, pair by pair)",
    "VDPBF16PS sequence (the existing bf16 path: per pair odd then even, one fma each)",
};

static float model(int which, float acc, const uint32_t *a, const uint32_t *b, int K) {
    if (which == VDPBF16PS || which == PAIR_THEN_ACC) {
        acc = daz(acc);
        for (int k = 0; k < K; k++) {
            float a0 = daz(bf(a[k])), a1 = daz(bf(a[k] >> 16)), b0 = daz(bf(b[k])), b1 = daz(bf(b[k] >> 16));
            if (which == VDPBF16PS) {
                acc = daz(fmaf(a1, b1, acc));
                acc = daz(fmaf(a0, b0, acc));
            } else {
                acc = daz(acc + daz(fmaf(a1, b1, a0 * b0)));
            }
        }
        return acc;
    }
    float E = 0.0f, O = 0.0f;
    if (which == AMX_ACC_FIRST) E = daz(acc);
    for (int k = 0; k < K; k++) {
        float a0 = daz(bf(a[k])), a1 = daz(bf(a[k] >> 16)), b0 = daz(bf(b[k])), b1 = daz(bf(b[k] >> 16));
        if (k == 0 && which == AMX_FIRST_PRODUCT_STARTS) {
            E = a0 * b0;
            O = a1 * b1;
        } else {
            E = fmaf(a0, b0, E);
            O = fmaf(a1, b1, O);
        }
        if (which != AMX_NO_FTZ_CHAINS) {
            E = daz(E);
            O = daz(O);
        }
    }
    float S = daz(E + O);
    if (which == AMX_ACC_FIRST) return S;
    return daz((which == AMX_NO_DAZ_ACC ? acc : daz(acc)) + S);
}

/* bit equality for finite results; class equality (NaN, +Inf, -Inf) otherwise */
static int same(float x, float y) {
    if (isnan(x) || isnan(y)) return isnan(x) && isnan(y);
    return u_of(x) == u_of(y);
}

/* a bf16 with a random sign, 7-bit mantissa and an exponent field in [lo, hi] (0 = zero or bf16 denormal) */
static uint16_t rnd_bf16(int lo, int hi) {
    uint64_t r = next();
    int e = lo + (int)(r % (uint64_t)(hi - lo + 1));
    return (uint16_t)(((r >> 20) & 1u) << 15 | (uint32_t)e << 7 | ((r >> 32) & 0x7Fu));
}

static int have_amx(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0; /* OSXSAVE */
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(d & (1u << 22)) || !(d & (1u << 24))) return 0; /* AMX-BF16, AMX-TILE */
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17)) return 0; /* XTILECFG, XTILEDATA enabled by the OS */
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
}

int main(void) {
    if (!have_amx()) {
        printf("this CPU or OS has no usable AMX-BF16 (CPUID, XCR0 bits 17/18 or the arch_prctl request)\n");
        return 2;
    }
    int failed = 0;

    /* 1. order probe, K = 16: 33 positions (32 products, then C) */
    {
        const int K = 16, P = 2 * K + 1;
        const float M = 0x1p30f;
        long probes = 0, agree_amx = 0, agree_vdp = 0;
        for (int i = 0; i < P; i++) {
            for (int j = 0; j < P; j++) {
                if (i == j) continue;
                float C[256] = {0};
                uint32_t A[256], B[256] = {0};
                for (int t = 0; t < 256; t++) A[t] = 0x3F803F80u; /* all ones: products = B's values */
                uint16_t v[32];
                for (int t = 0; t < 2 * K; t++) v[t] = bf_of(t == i ? M : t == j ? -M : 1.0f);
                for (int k = 0; k < K; k++) B[k * 16] = v[2 * k] | (uint32_t)v[2 * k + 1] << 16;
                C[0] = i == 2 * K ? M : j == 2 * K ? -M : 1.0f;
                float acc = C[0];
                hw(C, A, B, K);
                uint32_t a[16], b[16];
                for (int k = 0; k < K; k++) a[k] = A[k], b[k] = B[k * 16];
                probes++;
                agree_amx += same(C[0], model(AMX, acc, a, b, K));
                agree_vdp += same(C[0], model(VDPBF16PS, acc, a, b, K));
            }
        }
        printf("1. order probe (K = 16, +-2^30 at two of 33 positions, ones elsewhere): %ld probes\n", probes);
        printf("   agree with the AMX model: %ld; with the VDPBF16PS sequence: %ld\n", agree_amx, agree_vdp);
        failed |= agree_amx != probes;
    }

    /* 2. random and adversarial lanes */
    {
        const int windows[][2] = {{0, 254}, {0, 30}, {50, 80}, {60, 66}, {100, 140}, {120, 134}, {125, 129}};
        const int n_windows = (int)(sizeof windows / sizeof windows[0]);
        long total = 0, nonfinite = 0, bad[N_MODELS] = {0};
        for (int w = 0; w < n_windows; w++) {
            const int lo = windows[w][0], hi = windows[w][1];
            for (int it = 0; it < 3000; it++) {
                const int K = 1 + (int)(next() % 16);
                float C[256], C0[256];
                uint32_t A[256], B[256];
                for (int t = 0; t < 16 * K; t++) A[t] = rnd_bf16(lo, hi) | (uint32_t)rnd_bf16(lo, hi) << 16;
                for (int t = 0; t < 16 * K; t++) B[t] = rnd_bf16(lo, hi) | (uint32_t)rnd_bf16(lo, hi) << 16;
                /* cancellation: some B rows mirror earlier ones negated (chain cancellation), some pairs have the
                 * odd product close to minus the even one (pair cancellation) */
                for (int k = 0; k < K; k++) {
                    uint64_t r = next();
                    for (int n = 0; n < 16; n++) {
                        uint32_t x = B[k * 16 + n];
                        if ((r & 7) == 0 && k > 0) x = B[(k - 1) * 16 + n] ^ 0x80008000u ^ (uint32_t)((r >> 8) & 1u);
                        if ((r & 7) == 1) x = (x & 0xFFFFu) | (((x & 0xFFFFu) ^ 0x8000u ^ ((r >> 9) & 3u)) << 16);
                        B[k * 16 + n] = x;
                    }
                    if ((r & 7) == 1)
                        for (int m = 0; m < 16; m++) A[m * K + k] = (A[m * K + k] & 0xFFFFu) * 0x10001u;
                }
                for (int t = 0; t < 256; t++) {
                    uint64_t r = next();
                    switch (r % 6) {
                    case 0: C[t] = (r >> 8) & 1 ? -0.0f : 0.0f; break;
                    case 1: C[t] = f_of((uint32_t)(r >> 8) & 0x807FFFFFu); break; /* denormal */
                    case 2: { /* normal, exponent near the products' (field 2 lo - 127 .. 2 hi - 127) */
                        int e = (2 * lo - 127 + (int)((r >> 40) % (unsigned)(2 * (hi - lo) + 1)) + 254) % 254 + 1;
                        C[t] = f_of(((uint32_t)(r >> 8) & 0x80000000u) | (uint32_t)e << 23 |
                                    ((uint32_t)(r >> 12) & 0x7FFFFFu));
                        break;
                    }
                    default: C[t] = 0.0f; break; /* filled below: minus the lane's exact dot product, rounded */
                    }
                }
                for (int m = 0; m < 16; m++)
                    for (int n = 0; n < 16; n++) {
                        if (C[m * 16 + n] != 0.0f || next() % 3) continue;
                        double sum = 0;
                        for (int k = 0; k < K; k++)
                            sum += (double)bf(A[m * K + k]) * bf(B[k * 16 + n]) +
                                   (double)bf(A[m * K + k] >> 16) * bf(B[k * 16 + n] >> 16);
                        float x = (float)-sum;
                        if (isfinite(x)) C[m * 16 + n] = x;
                    }
                memcpy(C0, C, sizeof C);
                hw(C, A, B, K);
                for (int m = 0; m < 16; m++)
                    for (int n = 0; n < 16; n++) {
                        uint32_t a[16], b[16];
                        for (int k = 0; k < K; k++) a[k] = A[m * K + k], b[k] = B[k * 16 + n];
                        const float h = C[m * 16 + n];
                        total++;
                        nonfinite += !isfinite(h);
                        for (int x = 0; x < N_MODELS; x++) {
                            float y = model(x, C0[m * 16 + n], a, b, K);
                            if (!same(h, y)) {
                                if (x == AMX && bad[x] < 5)
                                    printf("   mismatch: K %d C %a hw %a model %a\n", K, C0[m * 16 + n], h, y);
                                bad[x]++;
                            }
                        }
                    }
            }
        }
        printf("2. random and adversarial lanes: %ld (K = 1..16; %ld of them NaN or Inf, compared by class)\n", total,
               nonfinite);
        for (int x = 0; x < N_MODELS; x++) printf("   %-100s %8ld mismatches\n", model_name[x], bad[x]);
        failed |= bad[AMX] != 0;
    }

    /* 3a. tininess: E = 2^-126 then + (-2^-151): the exact sum is below 2^-126 but rounds to it */
    {
        float C[256] = {0};
        uint32_t A[256] = {0}, B[256] = {0};
        A[0] = bf_of(0x1p-63f), A[1] = bf_of(-0x1p-75f); /* row 0, pairs 0 and 1 (K = 2): even elements */
        B[0] = bf_of(0x1p-63f), B[16] = bf_of(0x1p-76f);
        hw(C, A, B, 2);
        uint32_t a[2] = {A[0], A[1]}, b[2] = {B[0], B[16]};
        printf("3a. 2^-126 - 2^-151 in a chain: hw %a, AMX model (FTZ after rounding) %a, FTZ before rounding would "
               "give 0\n", C[0], model(AMX, 0.0f, a, b, 2));
        failed |= !same(C[0], model(AMX, 0.0f, a, b, 2));
    }

    /* 3b. zero pairs padding K up to 16: the model with the padding describes it; against the exact K, the
     * padding can only turn a -0 chain into +0 (-0 + +0 = +0), so a zero result can change sign */
    {
        long total = 0, bad = 0, differ = 0, differ_not_zero_sign = 0;
        for (int it = 0; it < 20000; it++) {
            const int K = 1 + (int)(next() % 15);
            const int lo = (it & 1) ? 50 : 110, hi = (it & 1) ? 80 : 140;
            float C[256], C16[256], C0[256];
            uint32_t A[256], A16[256] = {0}, B[256], B16[256] = {0};
            for (int t = 0; t < 16 * K; t++) A[t] = rnd_bf16(lo, hi) | (uint32_t)rnd_bf16(lo, hi) << 16;
            for (int t = 0; t < 16 * K; t++) B[t] = rnd_bf16(lo, hi) | (uint32_t)rnd_bf16(lo, hi) << 16;
            for (int t = 0; t < 256; t++) C[t] = (t & 3) ? 0.0f : f_of((uint32_t)next() & 0x807FFFFFu);
            for (int m = 0; m < 16; m++)
                for (int k = 0; k < K; k++) A16[m * 16 + k] = A[m * K + k];
            memcpy(B16, B, (size_t)(16 * K) * 4);
            memcpy(C16, C, sizeof C);
            memcpy(C0, C, sizeof C);
            hw(C, A, B, K);
            hw(C16, A16, B16, 16);
            for (int m = 0; m < 16; m++)
                for (int n = 0; n < 16; n++) {
                    uint32_t a[16], b[16];
                    for (int k = 0; k < 16; k++) a[k] = A16[m * 16 + k], b[k] = B16[k * 16 + n];
                    const int t = m * 16 + n;
                    total++;
                    bad += !same(C16[t], model(AMX, C0[t], a, b, 16));
                    if (!same(C[t], C16[t])) {
                        differ++;
                        differ_not_zero_sign += !(C[t] == 0.0f && C16[t] == 0.0f);
                    }
                }
        }
        printf("3b. K = 1..15 padded with zero pairs to K = 16: %ld lanes, %ld AMX model mismatches; against the "
               "unpadded K %ld differ, %ld of them other than in the sign of a zero\n",
               total, bad, differ, differ_not_zero_sign);
        failed |= bad != 0 || differ_not_zero_sign != 0;
    }

    /* 3c. dot products of unit descriptors over ceil(d/2) pairs through successive TDPBF16PS (16 pairs each,
     * the last padded with zero pairs), against the existing bf16 path (VDPBF16PS sequence) and the AMX model */
    {
        const int dims[] = {64, 63, 100, 33, 640};
        for (int di = 0; di < 5; di++) {
            const int d = dims[di], d2 = (d + 1) / 2, blocks = (d2 + 15) / 16;
            long total = 0, differ_vdp = 0, bad_model = 0;
            double max_rel = 0;
            for (int it = 0; it < 400; it++) {
                float q[16][640], r[16][640];
                for (int row = 0; row < 16; row++) { /* Gaussian-ish, L2-normalised, as descriptors */
                    double nq = 0, nr = 0;
                    for (int p = 0; p < d; p++) {
                        double u = 0, v = 0;
                        for (int t = 0; t < 4; t++) u += (double)(next() >> 11) * 0x1p-53 - 0.5,
                                                    v += (double)(next() >> 11) * 0x1p-53 - 0.5;
                        q[row][p] = (float)u, r[row][p] = (float)(it & 1 ? fabs(v) : v);
                        nq += u * u, nr += v * v;
                    }
                    for (int p = 0; p < d; p++) q[row][p] /= (float)sqrt(nq), r[row][p] /= (float)sqrt(nr);
                }
                uint32_t qp[16][320] = {{0}}, rp[16][320] = {{0}};
                for (int row = 0; row < 16; row++)
                    for (int p = 0; p < d2; p++) {
                        uint32_t lo = u_of(q[row][2 * p]), hi = 2 * p + 1 < d ? u_of(q[row][2 * p + 1]) : 0;
                        lo = (lo + 0x7FFFu + ((lo >> 16) & 1u)) >> 16, hi = (hi + 0x7FFFu + ((hi >> 16) & 1u)) >> 16;
                        qp[row][p] = lo | hi << 16;
                        lo = u_of(r[row][2 * p]), hi = 2 * p + 1 < d ? u_of(r[row][2 * p + 1]) : 0;
                        lo = (lo + 0x7FFFu + ((lo >> 16) & 1u)) >> 16, hi = (hi + 0x7FFFu + ((hi >> 16) & 1u)) >> 16;
                        rp[row][p] = lo | hi << 16;
                    }
                float C[256] = {0};
                for (int bl = 0; bl < blocks; bl++) {
                    uint32_t A[256] = {0}, B[256] = {0};
                    for (int m = 0; m < 16; m++)
                        for (int k = 0; k < 16 && bl * 16 + k < d2; k++) A[m * 16 + k] = qp[m][bl * 16 + k];
                    for (int k = 0; k < 16 && bl * 16 + k < d2; k++)
                        for (int n = 0; n < 16; n++) B[k * 16 + n] = rp[n][bl * 16 + k];
                    hw(C, A, B, 16);
                }
                for (int m = 0; m < 16; m++)
                    for (int n = 0; n < 16; n++) {
                        float v = model(VDPBF16PS, 0.0f, qp[m], rp[n], d2);
                        float acc = 0.0f;
                        for (int bl = 0; bl < blocks; bl++) /* the padded pairs are zero */
                            acc = model(AMX, acc, qp[m] + bl * 16, rp[n] + bl * 16, 16);
                        total++;
                        differ_vdp += !same(C[m * 16 + n], v);
                        bad_model += !same(C[m * 16 + n], acc);
                        double rel = fabs((double)C[m * 16 + n] - v) / (fabs(v) > 1e-3 ? fabs(v) : 1e-3);
                        if (rel > max_rel) max_rel = rel;
                    }
            }
            printf("3c. d = %3d (%d TDPBF16PS of 16 pairs): %ld dot products of unit descriptors; differ from the "
                   "existing bf16 path: %ld (%.1f%%, largest difference %.2g relative); AMX model mismatches: %ld\n",
                   d, blocks, total, differ_vdp, 100.0 * (double)differ_vdp / (double)total, max_rel, bad_model);
            failed |= bad_model != 0;
        }
    }
    printf(failed ? "FAILED: the AMX model does not describe this CPU\n"
                  : "the AMX model describes this CPU's TDPBF16PS exactly; it is not the VDPBF16PS sequence\n");
    return failed;
}
