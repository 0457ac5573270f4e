#ifndef MML_CLIBPNG_SHIM_H
#define MML_CLIBPNG_SHIM_H
#include <png.h>
#endif
