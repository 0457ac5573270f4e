/* PNG and JPEG encoding into malloc'd memory buffers (for tests that write their own image trees, and plots). */
#include "MMLImageIO.h"
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <png.h>

static void set_err(char *err, size_t errsize, const char *msg) {
    if (!err || errsize == 0) return;
    snprintf(err, errsize, "%s", msg);
}

/* ------------------------------------------------------------------------------------------------ PNG */

typedef struct { uint8_t *data; size_t len, cap; int failed; char *err; size_t errsize; } mem_writer;

static void png_mem_write(png_structp png, png_bytep src, size_t n) {
    mem_writer *w = (mem_writer *)png_get_io_ptr(png);
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n) cap *= 2;
        uint8_t *p = (uint8_t *)realloc(w->data, cap);
        if (!p) { w->failed = 1; png_error(png, "out of memory"); }
        w->data = p;
        w->cap = cap;
    }
    memcpy(w->data + w->len, src, n);
    w->len += n;
}

static void png_flush_fn(png_structp png) { (void)png; }

static void png_werror_fn(png_structp png, png_const_charp msg) {
    mem_writer *w = (mem_writer *)png_get_error_ptr(png);
    if (w) set_err(w->err, w->errsize, msg);
    png_longjmp(png, 1);
}

static void png_wwarn_fn(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static int samples_per_pixel(int color_type) {
    switch (color_type) {
    case 0: return 1;
    case 2: return 3;
    case 3: return 1;
    case 4: return 2;
    case 6: return 4;
    default: return 0;
    }
}

static int depth_allowed(int color_type, int depth) {
    switch (color_type) {
    case 0: return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    case 3: return depth == 1 || depth == 2 || depth == 4 || depth == 8;
    case 2: case 4: case 6: return depth == 8 || depth == 16;
    default: return 0;
    }
}

int mml_png_encode_raw(const uint16_t *samples, int width, int height, int color_type, int bit_depth,
                       const uint8_t *palette, int palette_size, const uint8_t *trans, int trans_size,
                       int interlace, uint8_t **out, size_t *out_len, char *err, size_t errsize) {
    if (err && errsize) err[0] = 0;
    int spp = samples_per_pixel(color_type);
    if (!samples || !out || !out_len || width <= 0 || height <= 0 || spp == 0 || !depth_allowed(color_type, bit_depth)
        || (color_type == 3 && (!palette || palette_size <= 0 || palette_size > 256 || palette_size > (1 << bit_depth)))
        || trans_size < 0 || trans_size > 256 || (trans_size > 0 && !trans)) {
        set_err(err, errsize, "bad arguments (size, colour type, bit depth or palette)");
        return MML_IMG_ERR_ARGUMENT;
    }
    size_t row_bytes = ((size_t)width * spp * bit_depth + 7) / 8;
    uint8_t *buf = (uint8_t *)calloc((size_t)height, row_bytes);
    png_bytep *rows = (png_bytep *)malloc(sizeof(png_bytep) * (size_t)height);
    if (!buf || !rows) { free(buf); free(rows); set_err(err, errsize, "out of memory"); return MML_IMG_ERR_NOMEM; }
    /* Pack the samples: sub-byte depths most significant bits first, 16-bit big-endian (PNG's order). */
    unsigned maxv = (1u << bit_depth) - 1u;
    for (int y = 0; y < height; y++) {
        uint8_t *row = buf + (size_t)y * row_bytes;
        rows[y] = row;
        for (size_t i = 0; i < (size_t)width * spp; i++) {
            unsigned v = samples[(size_t)y * width * spp + i] & maxv;
            if (bit_depth == 16) { row[2 * i] = (uint8_t)(v >> 8); row[2 * i + 1] = (uint8_t)v; }
            else if (bit_depth == 8) row[i] = (uint8_t)v;
            else {
                size_t bit = i * bit_depth;
                row[bit / 8] |= (uint8_t)(v << (8 - bit_depth - (bit % 8)));
            }
        }
    }
    mem_writer w = {NULL, 0, 0, 0, err, errsize};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w, png_werror_fn, png_wwarn_fn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        if (png) png_destroy_write_struct(&png, NULL);
        free(buf); free(rows);
        set_err(err, errsize, "out of memory");
        return MML_IMG_ERR_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(buf); free(rows); free(w.data);
        return w.failed ? MML_IMG_ERR_NOMEM : MML_IMG_ERR_ARGUMENT;
    }
    png_set_write_fn(png, &w, png_mem_write, png_flush_fn);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, bit_depth, color_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (color_type == 3) {
        png_color pal[256];
        for (int i = 0; i < palette_size; i++) {
            pal[i].red = palette[3 * i]; pal[i].green = palette[3 * i + 1]; pal[i].blue = palette[3 * i + 2];
        }
        png_set_PLTE(png, info, pal, palette_size);
        if (trans_size > 0) png_set_tRNS(png, info, trans, trans_size, NULL);
    }
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(buf);
    free(rows);
    *out = w.data;
    *out_len = w.len;
    return MML_IMG_OK;
}

int mml_png_encode(const uint8_t *pixels, int width, int height, int channels, uint8_t **out, size_t *out_len,
                   char *err, size_t errsize) {
    static const int types[5] = {-1, 0, 4, 2, 6};
    if (!pixels || channels < 1 || channels > 4 || width <= 0 || height <= 0) {
        set_err(err, errsize, "bad arguments (size or channel count)");
        return MML_IMG_ERR_ARGUMENT;
    }
    size_t n = (size_t)width * height * channels;
    uint16_t *s = (uint16_t *)malloc(n * sizeof(uint16_t));
    if (!s) { set_err(err, errsize, "out of memory"); return MML_IMG_ERR_NOMEM; }
    for (size_t i = 0; i < n; i++) s[i] = pixels[i];
    int rc = mml_png_encode_raw(s, width, height, types[channels], 8, NULL, 0, NULL, 0, 0, out, out_len, err, errsize);
    free(s);
    return rc;
}

/* ------------------------------------------------------------------------------------------------ JPEG */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char *err;
    size_t errsize;
} jpeg_werr_ctx;

static void jpeg_werror_exit(j_common_ptr cinfo) {
    jpeg_werr_ctx *e = (jpeg_werr_ctx *)cinfo->err;
    char buf[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buf);
    set_err(e->err, e->errsize, buf);
    longjmp(e->jb, 1);
}

static void jpeg_wemit(j_common_ptr cinfo, int level) { (void)cinfo; (void)level; }
static void jpeg_woutput(j_common_ptr cinfo) { (void)cinfo; }

int mml_jpeg_encode(const uint8_t *pixels, int width, int height, int channels, int quality, uint8_t **out,
                    size_t *out_len, char *err, size_t errsize) {
    if (err && errsize) err[0] = 0;
    if (!pixels || !out || !out_len || width <= 0 || height <= 0 || (channels != 1 && channels != 3)
        || quality < 1 || quality > 100 || width > 65500 || height > 65500) {
        set_err(err, errsize, "bad arguments (size, channels 1 or 3, quality 1..100)");
        return MML_IMG_ERR_ARGUMENT;
    }
    struct jpeg_compress_struct cinfo;
    jpeg_werr_ctx jerr;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_werror_exit;
    jerr.pub.emit_message = jpeg_wemit;
    jerr.pub.output_message = jpeg_woutput;
    jerr.err = err;
    jerr.errsize = errsize;
    unsigned char *volatile buf = NULL;
    volatile unsigned long len = 0;
    volatile int created = 0;
    if (setjmp(jerr.jb)) {
        if (created) jpeg_destroy_compress(&cinfo);
        free(buf);
        return MML_IMG_ERR_ARGUMENT;
    }
    jpeg_CreateCompress(&cinfo, JPEG_LIB_VERSION, sizeof(cinfo));
    created = 1;
    jpeg_mem_dest(&cinfo, (unsigned char **)&buf, (unsigned long *)&len);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * width * channels);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = buf;
    *out_len = (size_t)len;
    return MML_IMG_OK;
}
