/* Which code path the layer kernels (nn/, conv/) take: mml_kernels_isa()'s choice, read once per process (so
 * MML_KERNELS_ISA=portable or =avx2 applies to them too): AVX-512 where the CPU and OS have it, else AVX2 + FMA
 * (the GEMM micro-kernel; the other layer kernels run their portable C there), unless a test forced the portable C
 * paths with mml_layers_force_portable or capped the choice at AVX2 with mml_layers_force_avx2. */
#include "nn_internal.h"
#include "MMLKernels.h"
#include "mml_isa.h"
#include <stdatomic.h>

static _Atomic int force_portable = 0;
static _Atomic int force_avx2 = 0;

void mml_layers_force_portable(int32_t on) { force_portable = on != 0; }
void mml_layers_force_avx2(int32_t on) { force_avx2 = on != 0; }

/* An MML_ISA_ level (2 = AVX-512, 1 = AVX2 + FMA, 0 = portable); -1 = not decided yet (a benign race: every thread
 * gets the same). */
static int isa_level(void) {
    static _Atomic int cached = -1;
    int v = cached;
    if (v < 0) {
        v = mml_kernels_isa_level();
        cached = v;
    }
    return v;
}

int mml_nn_have_avx512(void) { return !force_portable && !force_avx2 && isa_level() == MML_ISA_AVX512; }

int mml_nn_have_avx2(void) { return !force_portable && isa_level() >= MML_ISA_AVX2; }
