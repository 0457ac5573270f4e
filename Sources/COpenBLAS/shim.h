#ifndef MML_COPENBLAS_SHIM_H
#define MML_COPENBLAS_SHIM_H
#include <cblas.h>
#include <lapacke.h>
#endif
