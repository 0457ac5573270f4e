/* CPU features (CPUID), OpenBLAS facts, status strings and glibc allocator control. */
#include "MMLKernels.h"
#include "mml_isa.h"
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

const char *mml_status_string(int status) {
    switch (status) {
    case MML_OK: return "ok";
    case MML_ERR_ARGUMENT: return "invalid argument (a size is zero or negative, a pointer is NULL or an id is out of range)";
    case MML_ERR_K_TOO_LARGE: return "k is larger than the number of rows in a group";
    case MML_ERR_NONFINITE: return "an input holds NaN or Inf";
    case MML_ERR_NOMEM: return "out of memory for scratch space";
    case MML_ERR_LAPACK: return "a LAPACK routine failed (matrix not positive definite or no convergence)";
    case MML_ERR_EMPTY_GROUP: return "a group or set has too few rows";
    default: return "unknown status";
    }
}

#if defined(__x86_64__) || defined(__i386__)
static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}
#endif

/* CPUID traps to the hypervisor in a virtual machine (about 7 us per leaf measured on a cloud VM, six leaves per
 * answer), and the top-K kernels ask for every call, so the answer is read once: bit 31 marks it known. Racing first
 * callers store the same value. */
#define FEATURES_KNOWN 0x80000000u
static uint32_t features_cache = 0;
static uint32_t read_cpu_features(void);

uint32_t mml_cpu_features(void) {
    uint32_t v = __atomic_load_n(&features_cache, __ATOMIC_RELAXED);
    if (!(v & FEATURES_KNOWN)) {
        v = read_cpu_features() | FEATURES_KNOWN;
        __atomic_store_n(&features_cache, v, __ATOMIC_RELAXED);
    }
    return v & ~FEATURES_KNOWN;
}

static uint32_t read_cpu_features(void) {
    uint32_t f = 0;
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (c & (1u << 0)) f |= MML_CPU_SSE3;
    if (c & (1u << 12)) f |= MML_CPU_FMA;
    int osxsave = (c & (1u << 27)) != 0;
    if (c & (1u << 28)) f |= MML_CPU_AVX;
    if (osxsave) {
        uint64_t xcr0 = read_xcr0();
        if ((xcr0 & 0x6) == 0x6) f |= MML_CPU_OS_AVX;
        if ((xcr0 & 0xe6) == 0xe6) f |= MML_CPU_OS_AVX512;
        if ((xcr0 & 0x60000) == 0x60000) f |= MML_CPU_OS_AMX;
    }
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        if (b & (1u << 5)) f |= MML_CPU_AVX2;
        if (b & (1u << 16)) f |= MML_CPU_AVX512F;
        if (b & (1u << 17)) f |= MML_CPU_AVX512DQ;
        if (b & (1u << 30)) f |= MML_CPU_AVX512BW;
        if (b & (1u << 31)) f |= MML_CPU_AVX512VL;
        if (d & (1u << 23)) f |= MML_CPU_AVX512FP16;
        if (d & (1u << 24)) f |= MML_CPU_AMX; /* AMX-TILE */
        if (d & (1u << 22)) f |= MML_CPU_AMX_BF16;
        unsigned a1 = 0, b1, c1, d1;
        if (a >= 1) __cpuid_count(7, 1, a1, b1, c1, d1); /* leaf 7 subleaf 0 EAX: the highest subleaf */
        if (a1 & (1u << 5)) f |= MML_CPU_AVX512BF16;
    }
#endif
    return f;
}

/* 0 = not asked yet; otherwise mml_amx_status()'s answer + 10 (so that every answer is non-zero). Racing first
 * callers may both ask the OS: the request is idempotent, and they store the same answer. */
static int amx_state = 0;

int mml_amx_status(void) {
    int s = __atomic_load_n(&amx_state, __ATOMIC_ACQUIRE);
    if (s != 0) return s - 10;
    const uint32_t f = mml_cpu_features();
    int answer;
    if ((f & (MML_CPU_AMX | MML_CPU_AMX_BF16)) != (MML_CPU_AMX | MML_CPU_AMX_BF16)) answer = 0;
    else if (!(f & MML_CPU_OS_AMX)) answer = -1;
    else {
#if defined(__linux__) && defined(__x86_64__)
        /* ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 (asm/prctl.h, Linux >= 5.16) */
        answer = syscall(SYS_arch_prctl, 0x1023, 18) == 0 ? 1 : -2;
#else
        answer = -1;
#endif
    }
    __atomic_store_n(&amx_state, answer + 10, __ATOMIC_RELEASE);
    return answer;
}

void mml_cpu_brand(char *buf, size_t size) {
    if (!buf || size == 0) return;
    buf[0] = 0;
#if defined(__x86_64__) || defined(__i386__)
    if (size < 49 || __get_cpuid_max(0x80000000, NULL) < 0x80000004) return;
    unsigned r[12];
    for (unsigned i = 0; i < 3; i++) __get_cpuid(0x80000002 + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
    memcpy(buf, r, 48);
    buf[48] = 0;
    /* trim leading and trailing spaces */
    size_t start = 0, len = strlen(buf);
    while (start < len && buf[start] == ' ') start++;
    memmove(buf, buf + start, len - start + 1);
    len = strlen(buf);
    while (len > 0 && buf[len - 1] == ' ') buf[--len] = 0;
#endif
}

const char *mml_blas_corename(void) { return openblas_get_corename(); }
const char *mml_blas_config(void) { return openblas_get_config(); }
int mml_blas_num_threads(void) { return openblas_get_num_threads(); }
void mml_blas_set_num_threads(int n) { openblas_set_num_threads(n); }

int mml_cpu_isa_level(void) {
    uint32_t f = mml_cpu_features();
    uint32_t need = MML_CPU_AVX512F | MML_CPU_AVX512BW | MML_CPU_AVX512VL | MML_CPU_AVX512DQ | MML_CPU_FMA |
                    MML_CPU_OS_AVX512;
    if ((f & need) == need) return MML_ISA_AVX512;
    uint32_t need2 = MML_CPU_AVX | MML_CPU_AVX2 | MML_CPU_FMA | MML_CPU_OS_AVX;
    return (f & need2) == need2 ? MML_ISA_AVX2 : MML_ISA_PORTABLE;
}

int mml_kernels_isa_level(void) {
    /* MML_KERNELS_ISA=portable forces the portable C paths, MML_KERNELS_ISA=avx2 caps the choice at the AVX2 + FMA
     * paths (for testing and comparison). */
    const char *e = getenv("MML_KERNELS_ISA");
    if (e && strcmp(e, "portable") == 0) return MML_ISA_PORTABLE;
    int level = mml_cpu_isa_level();
    return e && strcmp(e, "avx2") == 0 && level > MML_ISA_AVX2 ? MML_ISA_AVX2 : level;
}

static const char *isa_name(int level) {
    return level == MML_ISA_AVX512 ? "avx512" : level == MML_ISA_AVX2 ? "avx2" : "portable";
}

const char *mml_kernels_isa(void) { return isa_name(mml_kernels_isa_level()); }

const char *mml_kernels_isa_best(void) { return isa_name(mml_cpu_isa_level()); }

int mml_tune_allocator(long mmap_threshold, long trim_threshold, long top_pad) {
#if defined(__GLIBC__)
    /* mmap_threshold <= 0: no mmap-backed blocks at all (glibc still falls back to mmap when the heap cannot grow). */
    int ok = mmap_threshold > 0 ? mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold) : mallopt(M_MMAP_MAX, 0);
    ok &= mallopt(M_TRIM_THRESHOLD, (int)trim_threshold);
    ok &= mallopt(M_TOP_PAD, (int)top_pad);
    return ok ? 1 : 0;
#else
    (void)mmap_threshold; (void)trim_threshold; (void)top_pad;
    return 0;
#endif
}

void mml_release_freed_memory(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}
