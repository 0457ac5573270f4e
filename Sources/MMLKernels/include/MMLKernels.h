/*
 * MMLKernels: the numerical core of mml, in C over OpenBLAS + LAPACKE.
 *
 * The umbrella header (SwiftPM builds the module map of `import MMLKernels` from it): one header per kernel
 * family, each beside the family's sources in Sources/MMLKernels/<family>/. The conventions every function
 * follows are at the top of mml_common.h.
 */
#ifndef MML_KERNELS_H
#define MML_KERNELS_H

#include "mml_common.h"
#include "mml_topk.h"
#include "mml_gauss.h"
#include "mml_nn.h"
#include "mml_conv.h"

#endif /* MML_KERNELS_H */
