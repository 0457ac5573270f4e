/* Which code path the layer kernels (nn/, conv/) take: mml_kernels_isa()'s choice, read once per process (so
 * MML_KERNELS_ISA=portable or =avx2 applies to them too): AVX-512 where the CPU and OS have it, else AVX2 + FMA
 * (the GEMM micro-kernel; the other layer kernels run their portable C there), unless a test forced the portable C
 * paths with mml_layers_force_portable or capped the choice at AVX2 with mml_layers_force_avx2. */
#include "nn_internal.h"
#include "MMLKernels.h"
#include <stdatomic.h>
#include <string.h>

static _Atomic int force_portable = 0;
static _Atomic int force_avx2 = 0;

void mml_layers_force_portable(int32_t on) { force_portable = on != 0; }
void mml_layers_force_avx2(int32_t on) { force_avx2 = on != 0; }

/* 2 = AVX-512, 1 = AVX2 + FMA, 0 = portable; -1 = not decided yet (a benign race: every thread gets the same). */
static int isa_level(void) {
    static _Atomic int cached = -1;
    int v = cached;
    if (v < 0) {
        const char *isa = mml_kernels_isa();
        v = strcmp(isa, "avx512") == 0 ? 2 : strcmp(isa, "avx2") == 0 ? 1 : 0;
        cached = v;
    }
    return v;
}

int mml_nn_have_avx512(void) { return !force_portable && !force_avx2 && isa_level() == 2; }

int mml_nn_have_avx2(void) { return !force_portable && isa_level() >= 1; }
