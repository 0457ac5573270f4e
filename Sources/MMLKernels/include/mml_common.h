/*
 * mml_common.h: status codes, CPU and BLAS facts, allocator control: what every kernel family shares.
 * Part of MMLKernels (include/MMLKernels.h includes every family header).
 *
 * Conventions (every function):
 *   - Named mml_<op>_<dtype>(outputs..., inputs..., sizes...). All matrices are row-major and contiguous.
 *   - Returns MML_OK (0) or a negative MML_ERR_* code. Never prints, never exits.
 *   - Each optimised kernel has a naive twin mml_<op>_naive that computes the same result in double
 *     precision with the plainest possible loops; the tests compare the two.
 *   - `nthreads`: 0 means "all online cores", 1 means single-threaded on the calling thread.
 *   - Kernels that need scratch memory beyond their outputs say so in their comment and how much;
 *     they return MML_ERR_NOMEM when it cannot be had.
 *   - Inputs are checked for NaN/Inf where the comment says so; a non-finite input gives MML_ERR_NONFINITE
 *     (never a silently propagated NaN).
 */
#ifndef MML_COMMON_H
#define MML_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- status codes */

enum {
    MML_OK = 0,
    MML_ERR_ARGUMENT = -1,    /* a size is zero or negative, a pointer is NULL, an id is out of range */
    MML_ERR_K_TOO_LARGE = -2, /* K exceeds the number of rows in some group */
    MML_ERR_NONFINITE = -3,   /* NaN or Inf found in an input */
    MML_ERR_NOMEM = -4,       /* scratch memory could not be allocated */
    MML_ERR_LAPACK = -5,      /* a LAPACK routine failed (matrix not positive definite, no convergence) */
    MML_ERR_EMPTY_GROUP = -6, /* a group / set has no rows (or fewer than the kernel needs) */
};

/* A short static English description of a status code. */
const char *mml_status_string(int status);

/* ---------------------------------------------------------------- CPU and BLAS facts */

/* CPU feature bits, from CPUID (x86-64) or 0 elsewhere. */
enum {
    MML_CPU_SSE3 = 1 << 0,
    MML_CPU_AVX = 1 << 1,
    MML_CPU_AVX2 = 1 << 2,
    MML_CPU_FMA = 1 << 3,
    MML_CPU_AVX512F = 1 << 4,
    MML_CPU_AVX512BW = 1 << 5,
    MML_CPU_AVX512VL = 1 << 6,
    MML_CPU_AVX512DQ = 1 << 7,
    MML_CPU_AVX512BF16 = 1 << 8,
    MML_CPU_AVX512FP16 = 1 << 9,
    MML_CPU_AMX = 1 << 10,
    MML_CPU_OS_AVX512 = 1 << 11, /* the OS saves the AVX-512 state (XCR0 bits 5-7) */
    MML_CPU_OS_AVX = 1 << 12,    /* the OS saves the AVX state (XCR0 bits 1-2) */
    MML_CPU_AMX_BF16 = 1 << 13,  /* AMX-BF16 (TDPBF16PS; CPUID.7.0:EDX bit 22) */
    MML_CPU_OS_AMX = 1 << 14,    /* the OS enables the AMX tile state (XCR0 bits 17-18, XTILECFG and XTILEDATA) */
};

/* The feature bits of the CPU this process runs on. */
uint32_t mml_cpu_features(void);

/* Whether this process may use AMX-BF16 (the bf16amx grouped top-K kernel's fast path), and if not why:
 *    1  usable: the CPU has AMX-TILE and AMX-BF16, the OS enables the tile state, and the OS granted this process
 *       the tile data (Linux: arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), asked once per process)
 *    0  the CPU lacks AMX-TILE or AMX-BF16 (or is not x86-64)
 *   -1  the OS does not enable the AMX tile state (XCR0), or is not Linux
 *   -2  the OS refused the permission request (e.g. a kernel before 5.16, or a thread's signal stack too small)
 * The first call decides; later calls return the same value. Thread-safe. */
int mml_amx_status(void);

/* glibc malloc tuning (mallopt): mmap threshold (bytes; <= 0 disables mmap-backed blocks), trim threshold (bytes),
 * top pad (bytes). Returns 1 when all three were applied, 0 when not supported (non-glibc). */
int mml_tune_allocator(long mmap_threshold, long trim_threshold, long top_pad);
/* The CPU's brand string (up to 48 characters) into buf (at least 49 bytes). Empty where unknown. */
void mml_cpu_brand(char *buf, size_t size);
/* OpenBLAS facts: the core name it chose (e.g. "Haswell", "Prescott", "SkylakeX"), its build configuration,
 * and its thread count. Static strings owned by OpenBLAS. */
const char *mml_blas_corename(void);
const char *mml_blas_config(void);
int mml_blas_num_threads(void);
void mml_blas_set_num_threads(int n);
/* Which kernel family this library's own hot loops use: "avx512", "avx2" (AVX2 + FMA, no AVX-512) or "portable".
 * MML_KERNELS_ISA=portable in the environment forces the portable paths, MML_KERNELS_ISA=avx2 caps the choice at
 * the AVX2 paths (the top-K kernels read it on every call, the Gaussian kernels once; the layer kernels follow
 * mml_layers_force_portable / mml_layers_force_avx2 instead). */
const char *mml_kernels_isa(void);
/* The path this CPU supports at best ("avx512", "avx2" or "portable"), whatever MML_KERNELS_ISA says. */
const char *mml_kernels_isa_best(void);
/* The finite check every kernel runs on its inputs: 1 when every x[0..count) is finite (none NaN or +-Inf), else 0;
 * when amax is not NULL and 1 is returned, *amax receives the largest |x[i]|. count <= 0 or x NULL: 1, *amax 0.
 * level picks the code path (2 = AVX-512, 1 = AVX2 + FMA, 0 = portable C; one the CPU lacks runs the best it has):
 * every path gives the same answers (tests compare them). Reads no environment variable. */
int mml_scan_finite(int32_t level, const float *x, int64_t count, float *amax);


/* The fp32 FMA rate of this machine, the ceiling of the compute-bound kernels (mml-bench peak): one task per
 * thread on mml_thread_count(nthreads, 64) threads, each running `iterations` steps of 24 independent FMA chains
 * (acc = acc * b + c) held in registers: 16-lane zmm FMAs on the AVX-512 path, 8-lane ymm FMAs on the AVX2 one
 * (12 chains at a time), scalar fmaf on the portable one
 * (mml_fp32_fma_probe_isa() names it; MML_KERNELS_ISA=portable forces it). *flops receives the FLOPs done (2 per
 * lane and FMA, all threads), to divide by the caller's wall time; *threads_used the threads that ran; *checksum
 * the chains' sum (finite, so that no compiler drops the work). iterations <= 0, nthreads < 0 or a NULL output ->
 * MML_ERR_ARGUMENT. */
int mml_fp32_fma_probe(int64_t iterations, int32_t nthreads, double *flops, int32_t *threads_used, float *checksum);
const char *mml_fp32_fma_probe_isa(void);

/* glibc malloc: return retained free memory to the system now (malloc_trim). No-op elsewhere. */
void mml_release_freed_memory(void);

#ifdef __cplusplus
}
#endif

#endif /* MML_COMMON_H */
