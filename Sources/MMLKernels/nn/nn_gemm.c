/* Single-threaded packed SGEMM for the conv layers: C = alpha * op(A) op(B) + beta * C, row-major.
 *
 * Blocking (Goto / BLIS): B is packed in KC x NC blocks as NR-wide column panels [k][NR], A in MC x KC blocks as
 * MR-tall row panels [k][MR], both zero-padded; an MR x NR micro-kernel keeps the C tile in registers over kc.
 * AVX-512 micro-kernel: 8 x 32 (16 zmm accumulators; per k two B loads, eight broadcasts, sixteen FMAs); an AVX2
 * + FMA micro-kernel with the same arithmetic (the same bits) in four 4 x 16 passes for CPUs without AVX-512.
 * The portable kernel has the same tile in plain C, which compilers vectorise for the baseline ISA.
 * Parallelism is the caller's business (the conv kernels split the batch), so results never depend on threads.
 * mml_nn_sgemm_prepacked runs the same micro-kernels on operands the caller packed itself over the whole of k
 * (the Winograd conv writes its transformed weights and inputs straight into these layouts). */
#include "nn_internal.h"
#include "MMLKernels.h"
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define MR MML_NN_MR
#define NR MML_NN_NR
#define KC 256
#define MC 128
#define NC 2048

size_t mml_nn_sgemm_scratch_floats(void) { return (size_t)MC * KC + (size_t)KC * NC + 64; }

/* op(A)[i][p] for i in [i0, i0+mr), p in [p0, p0+kc) into pa as [p][MR] panels. */
static void pack_a(float *pa, const float *a, int64_t lda, int trans, int64_t i0, int64_t mc, int64_t p0,
                   int64_t kc) {
    for (int64_t ir = 0; ir < mc; ir += MR) {
        int64_t mr = mc - ir < MR ? mc - ir : MR;
        float *dst = pa + ir * kc;
        if (!trans) {
            for (int64_t p = 0; p < kc; p++) {
                const float *src = a + (i0 + ir) * lda + p0 + p;
                int64_t i = 0;
                for (; i < mr; i++) dst[p * MR + i] = src[i * lda];
                for (; i < MR; i++) dst[p * MR + i] = 0.0f;
            }
        } else {
            for (int64_t p = 0; p < kc; p++) {
                const float *src = a + (p0 + p) * lda + i0 + ir;
                int64_t i = 0;
                for (; i < mr; i++) dst[p * MR + i] = src[i];
                for (; i < MR; i++) dst[p * MR + i] = 0.0f;
            }
        }
    }
}

/* op(B)[p][j] for p in [p0, p0+kc), j in [j0, j0+nc) into pb as [p][NR] panels. */
static void pack_b(float *pb, const float *b, int64_t ldb, int trans, int64_t p0, int64_t kc, int64_t j0,
                   int64_t nc) {
    for (int64_t jr = 0; jr < nc; jr += NR) {
        int64_t nr = nc - jr < NR ? nc - jr : NR;
        float *dst = pb + jr * kc;
        if (!trans) {
            for (int64_t p = 0; p < kc; p++) {
                const float *src = b + (p0 + p) * ldb + j0 + jr;
                float *d = dst + p * NR;
                if (nr == NR) {
                    memcpy(d, src, NR * sizeof(float));
                } else {
                    int64_t j = 0;
                    for (; j < nr; j++) d[j] = src[j];
                    for (; j < NR; j++) d[j] = 0.0f;
                }
            }
        } else {
            for (int64_t j = 0; j < NR; j++) {
                if (j < nr) {
                    const float *src = b + (j0 + jr + j) * ldb + p0;
                    for (int64_t p = 0; p < kc; p++) dst[p * NR + j] = src[p];
                } else {
                    for (int64_t p = 0; p < kc; p++) dst[p * NR + j] = 0.0f;
                }
            }
        }
    }
}

void mml_nn_pack_a_matrix(float *pa, const void *src, int64_t i0, int64_t mc, int64_t p0, int64_t kc) {
    const mml_nn_matrix *a = (const mml_nn_matrix *)src;
    pack_a(pa, a->data, a->ld, a->trans, i0, mc, p0, kc);
}

#if defined(__x86_64__)
#include "transpose16_avx512.h"
#define PACK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

/* pack_b of a transposed B (stored n x k, each op(B) column contiguous over p): 16 columns x 16 p at a time,
 * transposed in registers, instead of one scattered store per element. The same panels as pack_b. */
PACK_AVX512 static void pack_b_trans_avx512(float *pb, const float *b, int64_t ldb, int64_t p0, int64_t kc,
                                            int64_t j0, int64_t nc) {
    for (int64_t jr = 0; jr < nc; jr += NR) {
        int64_t nr = nc - jr < NR ? nc - jr : NR;
        float *dst = pb + jr * kc;
        for (int64_t half = 0; half < NR; half += 16) {
            int64_t cols = nr - half; /* columns of this half that exist (may be <= 0) */
            for (int64_t p = 0; p < kc; p += 16) {
                int64_t len = kc - p < 16 ? kc - p : 16;
                __mmask16 m = len == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << len) - 1u);
                __m512 r[16];
                for (int64_t j = 0; j < 16; j++)
                    r[j] = j < cols ? _mm512_maskz_loadu_ps(m, b + (j0 + jr + half + j) * ldb + p0 + p)
                                    : _mm512_setzero_ps();
                mml_transpose16_avx512(r);
                for (int64_t t = 0; t < len; t++) _mm512_storeu_ps(dst + (p + t) * NR + half, r[t]);
            }
        }
    }
}
#endif

void mml_nn_pack_b_matrix(float *pb, const void *src, int64_t p0, int64_t kc, int64_t j0, int64_t nc) {
    const mml_nn_matrix *b = (const mml_nn_matrix *)src;
#if defined(__x86_64__)
    if (b->trans && mml_nn_have_avx512()) {
        pack_b_trans_avx512(pb, b->data, b->ld, p0, kc, j0, nc);
        return;
    }
#endif
    pack_b(pb, b->data, b->ld, b->trans, p0, kc, j0, nc);
}

/* acc = pa^T pb over kc; C[0:mr, 0:nr] = alpha * acc + beta * C (beta == 0: C not read). */
static void ukernel_portable(int64_t kc, const float *pa, const float *pb, float *c, int64_t ldc, int64_t mr,
                             int64_t nr, float alpha, float beta) {
    float acc[MR][NR];
    memset(acc, 0, sizeof(acc));
    for (int64_t p = 0; p < kc; p++) {
        const float *av = pa + p * MR, *bv = pb + p * NR;
        for (int i = 0; i < MR; i++) {
            float ai = av[i];
            for (int j = 0; j < NR; j++) acc[i][j] += ai * bv[j];
        }
    }
    for (int64_t i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        if (beta == 0.0f) {
            for (int64_t j = 0; j < nr; j++) ci[j] = alpha * acc[i][j];
        } else {
            for (int64_t j = 0; j < nr; j++) ci[j] = alpha * acc[i][j] + beta * ci[j];
        }
    }
}

#if defined(__x86_64__)
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

AVX512 static void ukernel_avx512(int64_t kc, const float *pa, const float *pb, float *c, int64_t ldc, int64_t mr,
                                  int64_t nr, float alpha, float beta) {
    __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c10 = _mm512_setzero_ps(),
           c11 = _mm512_setzero_ps(), c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(),
           c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps(), c40 = _mm512_setzero_ps(),
           c41 = _mm512_setzero_ps(), c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps(),
           c60 = _mm512_setzero_ps(), c61 = _mm512_setzero_ps(), c70 = _mm512_setzero_ps(),
           c71 = _mm512_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        __m512 b0 = _mm512_load_ps(pb), b1 = _mm512_load_ps(pb + 16);
        __m512 a;
        a = _mm512_set1_ps(pa[0]); c00 = _mm512_fmadd_ps(a, b0, c00); c01 = _mm512_fmadd_ps(a, b1, c01);
        a = _mm512_set1_ps(pa[1]); c10 = _mm512_fmadd_ps(a, b0, c10); c11 = _mm512_fmadd_ps(a, b1, c11);
        a = _mm512_set1_ps(pa[2]); c20 = _mm512_fmadd_ps(a, b0, c20); c21 = _mm512_fmadd_ps(a, b1, c21);
        a = _mm512_set1_ps(pa[3]); c30 = _mm512_fmadd_ps(a, b0, c30); c31 = _mm512_fmadd_ps(a, b1, c31);
        a = _mm512_set1_ps(pa[4]); c40 = _mm512_fmadd_ps(a, b0, c40); c41 = _mm512_fmadd_ps(a, b1, c41);
        a = _mm512_set1_ps(pa[5]); c50 = _mm512_fmadd_ps(a, b0, c50); c51 = _mm512_fmadd_ps(a, b1, c51);
        a = _mm512_set1_ps(pa[6]); c60 = _mm512_fmadd_ps(a, b0, c60); c61 = _mm512_fmadd_ps(a, b1, c61);
        a = _mm512_set1_ps(pa[7]); c70 = _mm512_fmadd_ps(a, b0, c70); c71 = _mm512_fmadd_ps(a, b1, c71);
        pa += MR;
        pb += NR;
    }
    __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                         {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF : nr <= 16 ? (__mmask16)0 : (__mmask16)((1u << (nr - 16)) - 1);
    for (int64_t i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        __m512 r0 = _mm512_mul_ps(va, acc[i][0]), r1 = _mm512_mul_ps(va, acc[i][1]);
        if (beta != 0.0f) {
            r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), r0);
            r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), r1);
        }
        _mm512_mask_storeu_ps(ci, m0, r0);
        _mm512_mask_storeu_ps(ci + 16, m1, r1);
    }
}
#endif

#if defined(__x86_64__)
#define AVX2 __attribute__((target("avx2,fma")))

/* The AVX-512 micro-kernel's arithmetic at 8 lanes, for CPUs with AVX2 + FMA but no AVX-512: every C element is the
 * same chain of FMAs over p in order, then alpha * acc and one FMA with beta * C, so it gives the AVX-512 kernel's
 * bits. Sixteen ymm registers hold a 4 x 16 sub-tile (8 accumulators, 2 B vectors, a broadcast); the 8 x 32 tile
 * is four passes over the same packed panels (L1-resident: kc x (8 + 32) floats). */
AVX2 static void ukernel_avx2(int64_t kc, const float *pa, const float *pb, float *c, int64_t ldc, int64_t mr,
                              int64_t nr, float alpha, float beta) {
    float tile[MR][NR] __attribute__((aligned(32)));
    const int full = mr == MR && nr == NR;
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    for (int i0 = 0; i0 < MR; i0 += 4) {
        for (int j0 = 0; j0 < NR; j0 += 16) {
            __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(),
                   c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(),
                   c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
            const float *a = pa + i0, *b = pb + j0;
            for (int64_t p = 0; p < kc; p++, a += MR, b += NR) {
                const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
                __m256 x = _mm256_broadcast_ss(a);
                c00 = _mm256_fmadd_ps(x, b0, c00);
                c01 = _mm256_fmadd_ps(x, b1, c01);
                x = _mm256_broadcast_ss(a + 1);
                c10 = _mm256_fmadd_ps(x, b0, c10);
                c11 = _mm256_fmadd_ps(x, b1, c11);
                x = _mm256_broadcast_ss(a + 2);
                c20 = _mm256_fmadd_ps(x, b0, c20);
                c21 = _mm256_fmadd_ps(x, b1, c21);
                x = _mm256_broadcast_ss(a + 3);
                c30 = _mm256_fmadd_ps(x, b0, c30);
                c31 = _mm256_fmadd_ps(x, b1, c31);
            }
            __m256 acc[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
            for (int i = 0; i < 4; i++) {
                __m256 r0 = _mm256_mul_ps(va, acc[i][0]), r1 = _mm256_mul_ps(va, acc[i][1]);
                if (full) {
                    float *ci = c + (i0 + i) * ldc + j0;
                    if (beta != 0.0f) {
                        r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), r0);
                        r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8), r1);
                    }
                    _mm256_storeu_ps(ci, r0);
                    _mm256_storeu_ps(ci + 8, r1);
                } else {
                    _mm256_store_ps(&tile[i0 + i][j0], r0);
                    _mm256_store_ps(&tile[i0 + i][j0 + 8], r1);
                }
            }
        }
    }
    if (full) return;
    for (int64_t i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        for (int64_t j = 0; j < nr; j++) ci[j] = beta != 0.0f ? __builtin_fmaf(beta, ci[j], tile[i][j]) : tile[i][j];
    }
}
#endif

void mml_nn_sgemm_packed(int64_t m, int64_t n, int64_t k, float alpha, mml_nn_pack_a_fn pack_a_fn, const void *asrc,
                         mml_nn_pack_b_fn pack_b_fn, const void *bsrc, float beta, float *c, int64_t ldc,
                         float *scratch) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0.0f) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    void (*ukr)(int64_t, const float *, const float *, float *, int64_t, int64_t, int64_t, float, float) =
        ukernel_portable;
#if defined(__x86_64__)
    if (mml_nn_have_avx512()) ukr = ukernel_avx512;
    else if (mml_nn_have_avx2()) ukr = ukernel_avx2;
#endif
    float *pa = scratch, *pb = scratch + (size_t)MC * KC;
    /* 64-byte alignment for the aligned B loads */
    pb = (float *)(((uintptr_t)pb + 63) & ~(uintptr_t)63);
    for (int64_t jc = 0; jc < n; jc += NC) {
        int64_t nc = n - jc < NC ? n - jc : NC;
        for (int64_t pc = 0; pc < k; pc += KC) {
            int64_t kc = k - pc < KC ? k - pc : KC;
            float beta_eff = pc == 0 ? beta : 1.0f;
            pack_b_fn(pb, bsrc, pc, kc, jc, nc);
            for (int64_t ic = 0; ic < m; ic += MC) {
                int64_t mc = m - ic < MC ? m - ic : MC;
                pack_a_fn(pa, asrc, ic, mc, pc, kc);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    int64_t nr = nc - jr < NR ? nc - jr : NR;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        int64_t mr = mc - ir < MR ? mc - ir : MR;
                        ukr(kc, pa + ir * kc, pb + jr * kc, c + (ic + ir) * ldc + jc + jr, ldc, mr, nr, alpha,
                            beta_eff);
                    }
                }
            }
        }
    }
}

void mml_nn_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                  int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc, float *scratch) {
    mml_nn_matrix am = {a, lda, trans_a}, bm = {b, ldb, trans_b};
    mml_nn_sgemm_packed(m, n, k, alpha, mml_nn_pack_a_matrix, &am, mml_nn_pack_b_matrix, &bm, beta, c, ldc,
                        scratch);
}

void mml_nn_sgemm_prepacked(int64_t m, int64_t n, int64_t k, const float *pa, const float *pb, float *c,
                            int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (int64_t i = 0; i < m; i++) memset(c + i * ldc, 0, (size_t)n * sizeof(float));
        return;
    }
    void (*ukr)(int64_t, const float *, const float *, float *, int64_t, int64_t, int64_t, float, float) =
        ukernel_portable;
#if defined(__x86_64__)
    if (mml_nn_have_avx512()) ukr = ukernel_avx512;
    else if (mml_nn_have_avx2()) ukr = ukernel_avx2;
#endif
    for (int64_t jr = 0; jr < n; jr += NR) {
        int64_t nr = n - jr < NR ? n - jr : NR;
        for (int64_t ir = 0; ir < m; ir += MR) {
            int64_t mr = m - ir < MR ? m - ir : MR;
            for (int64_t pc = 0; pc < k; pc += KC) {
                int64_t kc = k - pc < KC ? k - pc : KC;
                ukr(kc, pa + ir * k + pc * MR, pb + jr * k + pc * NR, c + ir * ldc + jr, ldc, mr, nr, 1.0f,
                    pc == 0 ? 0.0f : 1.0f);
            }
        }
    }
}

int mml_sgemm_f32(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                  int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m <= 0 || n <= 0 || k < 0 || !c || (k > 0 && (!a || !b))) return MML_ERR_ARGUMENT;
    if (ldc < n || lda < (trans_a ? m : k) || ldb < (trans_b ? k : n)) return MML_ERR_ARGUMENT;
    float *scratch = aligned_alloc(64, ((mml_nn_sgemm_scratch_floats() * sizeof(float)) + 63) & ~(size_t)63);
    if (!scratch) return MML_ERR_NOMEM;
    mml_nn_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, scratch);
    free(scratch);
    return MML_OK;
}

int mml_sgemm_naive(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                    const float *a, int64_t lda, const float *b, int64_t ldb, double beta, double *c, int64_t ldc) {
    if (m <= 0 || n <= 0 || k < 0 || !c || (k > 0 && (!a || !b))) return MML_ERR_ARGUMENT;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) {
                double av = trans_a ? a[p * lda + i] : a[i * lda + p];
                double bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
                s += av * bv;
            }
            c[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * c[i * ldc + j]);
        }
    return MML_OK;
}
