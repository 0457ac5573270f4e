#ifndef MML_CLIBJPEG_SHIM_H
#define MML_CLIBJPEG_SHIM_H
#include <stdio.h>
#include <stddef.h>
#include <jpeglib.h>
#endif
