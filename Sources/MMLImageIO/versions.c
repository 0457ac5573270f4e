#include "MMLImageIO.h"
#include <stdio.h>
#include <jpeglib.h>
#include <png.h>
const char *mml_imageio_versions(void) {
    static char buf[96];
    snprintf(buf, sizeof buf, "libjpeg %d / libpng %s", JPEG_LIB_VERSION, PNG_LIBPNG_VER_STRING);
    return buf;
}
