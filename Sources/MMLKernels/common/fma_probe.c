/* The machine's fp32 FMA rate (mml-bench peak): the ceiling the compute-bound kernels are measured against. */
#include "MMLKernels.h"
#include "mml_parallel.h"
#include <math.h>
#include <string.h>

#define PROBE_CHAINS 24 /* independent accumulators: more than the FMA latency times the FMA ports on any x86 */

typedef struct {
    int64_t iterations;
    int lanes; /* 16: AVX-512, 8: AVX2 + FMA, 1: portable */
    float sums[MML_MAX_THREADS];
} probe_job;

#if defined(__x86_64__)
#include <immintrin.h>
/* PROBE_CHAINS chains of 16-lane FMAs, acc = acc * b + c, held in zmm registers (24 of 32). */
__attribute__((target("avx512f,fma"))) static float probe_avx512(int64_t iterations) {
    __m512 acc[PROBE_CHAINS];
    const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
    for (int i = 0; i < PROBE_CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (int64_t k = 0; k < iterations; k++) {
#pragma clang loop unroll(full)
        for (int i = 0; i < PROBE_CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], b, c);
    }
    __m512 s = acc[0];
    for (int i = 1; i < PROBE_CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

/* The same chains 8 lanes wide in ymm registers (CPUs with AVX2 + FMA but no AVX-512): 16 registers hold 12 chains,
 * so chains 0-11 run first, then 12-23 (12 independent chains cover the FMA latency times two FMA ports). */
__attribute__((target("avx2,fma"))) static float probe_avx2(int64_t iterations) {
    const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
    __m256 all[PROBE_CHAINS];
    for (int h = 0; h < PROBE_CHAINS; h += 12) {
        __m256 acc[12];
        for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)(h + i));
        for (int64_t k = 0; k < iterations; k++) {
#pragma clang loop unroll(full)
            for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], b, c);
        }
        for (int i = 0; i < 12; i++) all[h + i] = acc[i];
    }
    __m256 s = all[0];
    for (int i = 1; i < PROBE_CHAINS; i++) s = _mm256_add_ps(s, all[i]);
    /* the lanes are equal: a tree of doublings, exact */
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}
#endif

/* The same chains one lane wide (the portable path: a rate for CPUs without AVX2 + FMA, not comparable with the
 * vector ones). */
static float probe_portable(int64_t iterations) {
    float acc[PROBE_CHAINS];
    for (int i = 0; i < PROBE_CHAINS; i++) acc[i] = (float)i;
    for (int64_t k = 0; k < iterations; k++)
        for (int i = 0; i < PROBE_CHAINS; i++) acc[i] = fmaf(acc[i], 0.999999f, 1e-6f);
    float s = 0.0f;
    for (int i = 0; i < PROBE_CHAINS; i++) s += acc[i];
    return s;
}

static void probe_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    probe_job *job = ctx;
#if defined(__x86_64__)
    if (job->lanes == 16) {
        job->sums[task] = probe_avx512(job->iterations);
        return;
    }
    if (job->lanes == 8) {
        job->sums[task] = probe_avx2(job->iterations);
        return;
    }
#endif
    job->sums[task] = probe_portable(job->iterations);
}

int mml_fp32_fma_probe(int64_t iterations, int32_t nthreads, double *flops, int32_t *threads_used, float *checksum) {
    if (iterations <= 0 || nthreads < 0 || !flops || !threads_used || !checksum) return MML_ERR_ARGUMENT;
    probe_job job;
    memset(&job, 0, sizeof job);
    job.iterations = iterations;
    const char *isa = mml_fp32_fma_probe_isa();
    job.lanes = strcmp(isa, "avx512") == 0 ? 16 : strcmp(isa, "avx2") == 0 ? 8 : 1;
    const int threads = mml_thread_count(nthreads, MML_MAX_THREADS);
    mml_parallel_for(threads, threads, probe_task, &job);
    float s = 0.0f;
    for (int t = 0; t < threads; t++) s += job.sums[t];
    *checksum = s;
    *threads_used = threads;
    *flops = 2.0 * (double)PROBE_CHAINS * job.lanes * (double)iterations * threads;
    return MML_OK;
}

/* The probe has no path of its own: it follows the kernels' ISA choice. */
const char *mml_fp32_fma_probe_isa(void) { return mml_kernels_isa(); }
