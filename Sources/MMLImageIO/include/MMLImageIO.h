/* MMLImageIO: JPEG and PNG decoding into 8-bit pixel buffers, with errors returned, never exit(). */
#ifndef MML_IMAGEIO_H
#define MML_IMAGEIO_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
/* The libjpeg-turbo and libpng versions linked, e.g. "libjpeg 62 / libpng 1.6.39". */
const char *mml_imageio_versions(void);
#ifdef __cplusplus
}
#endif
#endif
