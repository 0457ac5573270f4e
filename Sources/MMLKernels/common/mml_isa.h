/*
 * Which instruction set the kernels take, as a number (common/sysinfo.c). Not part of the public API.
 */
#ifndef MML_ISA_H
#define MML_ISA_H

#include <stdint.h>

/* The kernel paths: AVX-512 (F/BW/VL/DQ + FMA, OS support), AVX2 + FMA, portable C. */
#define MML_ISA_AVX512 2
#define MML_ISA_AVX2 1
#define MML_ISA_PORTABLE 0

/* mml_kernels_isa()'s choice as one of the MML_ISA_ levels: the CPU's best, capped by MML_KERNELS_ISA=avx2 or
 * forced to portable by MML_KERNELS_ISA=portable. Reads the environment at every call (the top-K kernels read it
 * per call so that tests can switch paths; the layer and Gaussian kernels keep their first answer). */
int mml_kernels_isa_level(void);

/* The best level this CPU and OS support, whatever the environment says. */
int mml_cpu_isa_level(void);

/* mml_scan_finite (mml_common.h) is the one finite check of the kernels: pass the caller's own path's level, so that
 * the check never reads the environment. */

#endif /* MML_ISA_H */
