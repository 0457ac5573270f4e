/* Which code path the layer kernels (nn/, conv/) take: AVX-512 where the CPU and OS have it, unless a test
 * forced the portable C paths with mml_layers_force_portable. */
#include "nn_internal.h"
#include "MMLKernels.h"
#include <stdatomic.h>

static _Atomic int force_portable = 0;

void mml_layers_force_portable(int32_t on) { force_portable = on != 0; }

int mml_nn_have_avx512(void) {
    static int cached = -1;
    if (force_portable) return 0;
    if (cached < 0) {
        uint32_t f = mml_cpu_features();
        uint32_t need = MML_CPU_AVX512F | MML_CPU_AVX512BW | MML_CPU_AVX512VL | MML_CPU_AVX512DQ | MML_CPU_OS_AVX512;
        cached = (f & need) == need;
    }
    return cached;
}
