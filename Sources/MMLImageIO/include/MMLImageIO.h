/*
 * MMLImageIO: JPEG and PNG decoding into 8-bit pixel buffers, encoding for tests and plots, and resampling.
 *
 * Conventions (every function):
 *   - Pixels are 8-bit, interleaved HWC (row-major, channels innermost) unless a comment says CHW.
 *   - Returns MML_IMG_OK (0) or a negative MML_IMG_ERR_* code. Never prints, never exits: libjpeg's and
 *     libpng's fatal errors longjmp back here. Where `err` is given (may be NULL), a one-line English reason
 *     (the library's own message where there is one) is written into it, NUL-terminated.
 *   - Decoding reads from a memory buffer; a truncated or corrupt buffer gives MML_IMG_ERR_CORRUPT.
 */
#ifndef MML_IMAGEIO_H
#define MML_IMAGEIO_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* The libjpeg-turbo and libpng versions linked, e.g. "libjpeg 62 / libpng 1.6.39". */
const char *mml_imageio_versions(void);

enum {
    MML_IMG_OK = 0,
    MML_IMG_ERR_ARGUMENT = -1,    /* a NULL pointer, a zero size, an unsupported channel count */
    MML_IMG_ERR_NOMEM = -4,       /* memory could not be allocated */
    MML_IMG_ERR_UNSUPPORTED = -20,/* not a PNG or JPEG (by its first bytes), or a variant not handled */
    MML_IMG_ERR_CORRUPT = -21,    /* the library rejected the data: corrupt, truncated, bad CRC */
    MML_IMG_ERR_TOO_LARGE = -22,  /* wider or taller than MML_IMG_MAX_SIDE */
};
#define MML_IMG_MAX_SIDE 32768

enum { MML_IMG_FORMAT_UNKNOWN = 0, MML_IMG_FORMAT_PNG = 1, MML_IMG_FORMAT_JPEG = 2 };

/* What the header says. `channels` is the native count after expansion to 8 bits: 1 grey, 2 grey + alpha,
 * 3 RGB, 4 RGBA (a palette gives 3, or 4 with a transparency chunk). `bit_depth` is the stored depth
 * (1, 2, 4, 8 or 16 for PNG; 8 for JPEG). */
typedef struct {
    int width, height, channels, bit_depth, format;
} mml_image_info;

/* The format of a buffer from its signature bytes (MML_IMG_FORMAT_*). */
int mml_image_format(const uint8_t *data, size_t size);

/* Reads the header only into *info. */
int mml_image_probe(const uint8_t *data, size_t size, mml_image_info *info, char *err, size_t errsize);

/* Decodes a whole PNG or JPEG into out (capacity `out_size` bytes >= width * height * channels), HWC.
 * channels: 0 keeps the native count (info->channels); 1 gives grey (luma 0.299 R + 0.587 G + 0.114 B,
 * rounded; alpha dropped); 3 gives RGB (grey replicated; alpha dropped).
 * PNG: every colour type and bit depth; 1/2/4-bit grey scaled to 0..255, 16-bit scaled with rounding,
 * interlacing handled, tRNS becomes alpha. JPEG: grey, YCbCr and (Adobe) CMYK/YCCK.
 * A truncated JPEG ("Premature end of JPEG file") is an error, not a grey-filled image.
 * *info (may be NULL) receives the header facts. */
int mml_image_decode(const uint8_t *data, size_t size, int channels, uint8_t *out, size_t out_size,
                     mml_image_info *info, char *err, size_t errsize);

/* Encodes 8-bit HWC pixels (channels 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA) as a PNG. On success *out is a
 * malloc'd buffer of *out_len bytes; free it with mml_image_free. */
int mml_png_encode(const uint8_t *pixels, int width, int height, int channels, uint8_t **out, size_t *out_len,
                   char *err, size_t errsize);

/* Encodes raw PNG samples with an explicit colour type and bit depth, for tests of every decoder path.
 * color_type: 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA (the PNG spec's numbers).
 * bit_depth: 1, 2, 4, 8 or 16 as the PNG spec allows for the colour type.
 * samples: width * height * samples-per-pixel values (palette: one index per pixel), each < 2^bit_depth.
 * palette: palette_size RGB triples (colour type 3 only); trans: trans_size alpha values for the first palette
 * entries (colour type 3) or NULL. interlace: 0 none, 1 Adam7. Output as for mml_png_encode. */
int mml_png_encode_raw(const uint16_t *samples, int width, int height, int color_type, int bit_depth,
                       const uint8_t *palette, int palette_size, const uint8_t *trans, int trans_size,
                       int interlace, uint8_t **out, size_t *out_len, char *err, size_t errsize);

/* Encodes 8-bit HWC pixels (channels 1 or 3) as a baseline JPEG of quality 1..100. Output as mml_png_encode. */
int mml_jpeg_encode(const uint8_t *pixels, int width, int height, int channels, int quality, uint8_t **out,
                    size_t *out_len, char *err, size_t errsize);

/* Frees a buffer returned by an encoder. */
void mml_image_free(void *p);

/* Resamples the box [x0, x1) x [y0, y1) (continuous source pixel coordinates; the whole image is
 * 0, 0, sw, sh) of an 8-bit HWC image (c channels) to dw x dh with the triangle (bilinear) filter. When the box
 * shrinks by s > 1 along an axis, the filter is widened by s (antialias: every source pixel contributes, as
 * area averaging does). Taps outside the image are dropped and the weights renormalised (edge clamp of the
 * support). flip != 0 mirrors the output horizontally.
 *   _u8:  dst is dh x dw x c, rounded and clamped to 0..255.
 *   _f32: dst is CHW (c x dh x dw) float, value / 255 (so 0..1).
 * Scratch: (rows of the box + 1) x dw x c floats plus the tap tables, allocated per call. */
int mml_image_resample_u8(const uint8_t *src, int sw, int sh, int c, float x0, float y0, float x1, float y1,
                          int flip, uint8_t *dst, int dw, int dh);
int mml_image_resample_f32(const uint8_t *src, int sw, int sh, int c, float x0, float y0, float x1, float y1,
                           int flip, float *dst, int dw, int dh);

/* The resampling filters. TRIANGLE is the one above. AREA averages the piecewise-constant source over each output
 * pixel's footprint (box of width s = box size / output size, centred on the output pixel, clipped to the image):
 * source pixel j gets weight |[j, j + 1] ∩ footprint| / |footprint ∩ image|. Integer shrink factors give the plain
 * block mean (PIL's BOX, OpenCV's INTER_AREA). BOX is PIL's Image.BOX at every factor: the mean of the source pixels
 * whose centres fall inside the footprint (width max(s, 1)), each with weight 1. */
enum { MML_RESAMPLE_TRIANGLE = 0, MML_RESAMPLE_AREA = 1, MML_RESAMPLE_BOX = 2 };

/* As mml_image_resample_u8 / _f32 with a filter (MML_RESAMPLE_*); another value returns MML_IMG_ERR_ARGUMENT. */
int mml_image_resample_filtered_u8(const uint8_t *src, int sw, int sh, int c, float x0, float y0, float x1,
                                   float y1, int flip, uint8_t *dst, int dw, int dh, int filter);
int mml_image_resample_filtered_f32(const uint8_t *src, int sw, int sh, int c, float x0, float y0, float x1,
                                    float y1, int flip, float *dst, int dw, int dh, int filter);

#ifdef __cplusplus
}
#endif
#endif
