/* PNG and JPEG decoding from memory with setjmp/longjmp error recovery: the libraries' fatal errors jump back
 * here and become MML_IMG_ERR_CORRUPT with the library's message; nothing is printed and exit() is never called. */
#include "MMLImageIO.h"
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

static void set_err(char *err, size_t errsize, const char *msg) {
    if (!err || errsize == 0) return;
    snprintf(err, errsize, "%s", msg);
}

int mml_image_format(const uint8_t *data, size_t size) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (!data) return MML_IMG_FORMAT_UNKNOWN;
    if (size >= 8 && memcmp(data, png_sig, 8) == 0) return MML_IMG_FORMAT_PNG;
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) return MML_IMG_FORMAT_JPEG;
    return MML_IMG_FORMAT_UNKNOWN;
}

/* Converts n pixels from nc native channels to want (1 or 3) channels; alpha is dropped. Grey is the
 * ITU-R BT.601 luma 0.299 R + 0.587 G + 0.114 B, rounded to nearest. */
static void convert_channels(const uint8_t *src, int nc, uint8_t *dst, int want, size_t n) {
    if (nc == want) { memcpy(dst, src, n * (size_t)nc); return; }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = src + i * (size_t)nc;
        uint8_t g;
        if (nc <= 2) g = p[0];
        else g = (uint8_t)((299u * p[0] + 587u * p[1] + 114u * p[2] + 500u) / 1000u);
        if (want == 1) dst[i] = g;
        else if (want == 3) {
            uint8_t *q = dst + i * 3;
            if (nc >= 3) { q[0] = p[0]; q[1] = p[1]; q[2] = p[2]; }
            else { q[0] = g; q[1] = g; q[2] = g; }
        }
    }
}

/* ------------------------------------------------------------------------------------------------ PNG */

typedef struct { const uint8_t *data; size_t size, pos; } mem_reader;
typedef struct { char *err; size_t errsize; } png_err_ctx;

static void png_mem_read(png_structp png, png_bytep out, size_t n) {
    mem_reader *r = (mem_reader *)png_get_io_ptr(png);
    if (r->size - r->pos < n) png_error(png, "unexpected end of data (truncated PNG)");
    memcpy(out, r->data + r->pos, n);
    r->pos += n;
}

static void png_error_fn(png_structp png, png_const_charp msg) {
    png_err_ctx *e = (png_err_ctx *)png_get_error_ptr(png);
    if (e) set_err(e->err, e->errsize, msg);
    png_longjmp(png, 1);
}

static void png_warning_fn(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static int png_decode(const uint8_t *data, size_t size, int want, uint8_t *out, size_t out_size,
                      mml_image_info *info, int header_only, char *err, size_t errsize) {
    png_err_ctx ectx = {err, errsize};
    mem_reader reader = {data, size, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ectx, png_error_fn, png_warning_fn);
    if (!png) { set_err(err, errsize, "out of memory"); return MML_IMG_ERR_NOMEM; }
    png_infop pinfo = png_create_info_struct(png);
    if (!pinfo) { png_destroy_read_struct(&png, NULL, NULL); set_err(err, errsize, "out of memory"); return MML_IMG_ERR_NOMEM; }
    uint8_t *volatile tmp = NULL;
    png_bytep *volatile rows = NULL;
    volatile int status = MML_IMG_ERR_CORRUPT;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &pinfo, NULL);
        free(tmp);
        free(rows);
        return status;
    }
    png_set_read_fn(png, &reader, png_mem_read);
    png_set_user_limits(png, MML_IMG_MAX_SIDE, MML_IMG_MAX_SIDE);
    /* Ancillary chunks (text, ICC profiles: compressed, so a small file can expand a lot) are bounded whatever
     * the distribution's libpng build defaults to: at most 1000 of them, none expanding past 8 MB. The caller
     * checks width x height against its pixel limit from the header (mml_image_probe) before decoding. */
    png_set_chunk_cache_max(png, 1000);
    png_set_chunk_malloc_max(png, 8u << 20);
    png_read_info(png, pinfo);
    png_uint_32 w = png_get_image_width(png, pinfo), h = png_get_image_height(png, pinfo);
    int depth = png_get_bit_depth(png, pinfo), ctype = png_get_color_type(png, pinfo);
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, pinfo, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_scale_16(png); /* (v * 255 + 32895) >> 16: v * 255 / 65535 rounded */
    png_set_interlace_handling(png);
    png_read_update_info(png, pinfo);
    int nc = png_get_channels(png, pinfo);
    if (info) { info->width = (int)w; info->height = (int)h; info->channels = nc; info->bit_depth = depth;
                info->format = MML_IMG_FORMAT_PNG; }
    if (header_only) { png_destroy_read_struct(&png, &pinfo, NULL); return MML_IMG_OK; }
    int oc = want == 0 ? nc : want;
    size_t npix = (size_t)w * h;
    if (out_size < npix * (size_t)oc) {
        status = MML_IMG_ERR_ARGUMENT;
        png_error(png, "output buffer too small");
    }
    uint8_t *dst = out;
    if (oc != nc) {
        tmp = (uint8_t *)malloc(npix * (size_t)nc);
        if (!tmp) { status = MML_IMG_ERR_NOMEM; png_error(png, "out of memory"); }
        dst = tmp;
    }
    rows = (png_bytep *)malloc(sizeof(png_bytep) * h);
    if (!rows) { status = MML_IMG_ERR_NOMEM; png_error(png, "out of memory"); }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = dst + (size_t)y * w * (size_t)nc;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    if (oc != nc) convert_channels(tmp, nc, out, oc, npix);
    png_destroy_read_struct(&png, &pinfo, NULL);
    free(tmp);
    free(rows);
    return MML_IMG_OK;
}

/* ------------------------------------------------------------------------------------------------ JPEG */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char *err;
    size_t errsize;
} jpeg_err_ctx;

static void jpeg_error_exit_fn(j_common_ptr cinfo) {
    jpeg_err_ctx *e = (jpeg_err_ctx *)cinfo->err;
    char buf[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buf);
    set_err(e->err, e->errsize, buf);
    longjmp(e->jb, 1);
}

/* Warnings are tolerated (as other decoders do) except a premature end of data, which libjpeg would otherwise
 * paper over with a fake end-of-image marker and grey pixels. */
static void jpeg_emit_fn(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_error_exit_fn(cinfo);
    if (level < 0) cinfo->err->num_warnings++;
}

static void jpeg_output_fn(j_common_ptr cinfo) { (void)cinfo; }

static int jpeg_decode(const uint8_t *data, size_t size, int want, uint8_t *out, size_t out_size,
                       mml_image_info *info, int header_only, char *err, size_t errsize) {
    struct jpeg_decompress_struct cinfo;
    jpeg_err_ctx jerr;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_error_exit_fn;
    jerr.pub.emit_message = jpeg_emit_fn;
    jerr.pub.output_message = jpeg_output_fn;
    jerr.err = err;
    jerr.errsize = errsize;
    uint8_t *volatile tmp = NULL;
    volatile int created = 0;
    volatile int status = MML_IMG_ERR_CORRUPT;
    if (setjmp(jerr.jb)) {
        if (created) jpeg_destroy_decompress(&cinfo);
        free(tmp);
        return status;
    }
    jpeg_CreateDecompress(&cinfo, JPEG_LIB_VERSION, sizeof(cinfo));
    created = 1;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    int nc;
    int cmyk = 0;
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE: cinfo.out_color_space = JCS_GRAYSCALE; nc = 1; break;
    case JCS_CMYK:
    case JCS_YCCK: cinfo.out_color_space = JCS_CMYK; nc = 4; cmyk = 1; break;
    default: cinfo.out_color_space = JCS_RGB; nc = 3; break;
    }
    int w = (int)cinfo.image_width, h = (int)cinfo.image_height;
    if (w > MML_IMG_MAX_SIDE || h > MML_IMG_MAX_SIDE) {
        set_err(err, errsize, "image too large");
        jpeg_destroy_decompress(&cinfo);
        return MML_IMG_ERR_TOO_LARGE;
    }
    int native = cmyk ? 3 : nc;
    if (info) { info->width = w; info->height = h; info->channels = native; info->bit_depth = 8;
                info->format = MML_IMG_FORMAT_JPEG; }
    if (header_only) { jpeg_destroy_decompress(&cinfo); return MML_IMG_OK; }
    int oc = want == 0 ? native : want;
    size_t npix = (size_t)w * h;
    if (out_size < npix * (size_t)oc) {
        set_err(err, errsize, "output buffer too small");
        jpeg_destroy_decompress(&cinfo);
        return MML_IMG_ERR_ARGUMENT;
    }
    uint8_t *dst = out;
    if (oc != nc) {
        tmp = (uint8_t *)malloc(npix * (size_t)nc);
        if (!tmp) { set_err(err, errsize, "out of memory"); jpeg_destroy_decompress(&cinfo); return MML_IMG_ERR_NOMEM; }
        dst = tmp;
    }
    jpeg_start_decompress(&cinfo);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = dst + (size_t)cinfo.output_scanline * w * (size_t)nc;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    if (cmyk) {
        /* Adobe writes inverted CMYK: the stored values are 255 - ink, so R = C' * K' / 255. */
        for (size_t i = 0; i < npix; i++) {
            uint8_t *p = tmp + i * 4;
            unsigned k = p[3];
            uint8_t *q = tmp + i * 3; /* in place: q never overtakes p */
            uint8_t r = (uint8_t)((p[0] * k + 127) / 255), g = (uint8_t)((p[1] * k + 127) / 255),
                    b = (uint8_t)((p[2] * k + 127) / 255);
            q[0] = r; q[1] = g; q[2] = b;
        }
        nc = 3;
    }
    if (oc != nc || cmyk) convert_channels(tmp, nc, out, oc, npix);
    free(tmp);
    return MML_IMG_OK;
}

/* ------------------------------------------------------------------------------------------------ API */

static int decode_any(const uint8_t *data, size_t size, int channels, uint8_t *out, size_t out_size,
                      mml_image_info *info, int header_only, char *err, size_t errsize) {
    if (err && errsize) err[0] = 0;
    if (!data || size == 0) { set_err(err, errsize, "empty buffer"); return MML_IMG_ERR_ARGUMENT; }
    if (!header_only && (!out || !(channels == 0 || channels == 1 || channels == 3))) {
        set_err(err, errsize, "bad output buffer or channel count");
        return MML_IMG_ERR_ARGUMENT;
    }
    switch (mml_image_format(data, size)) {
    case MML_IMG_FORMAT_PNG: return png_decode(data, size, channels, out, out_size, info, header_only, err, errsize);
    case MML_IMG_FORMAT_JPEG: return jpeg_decode(data, size, channels, out, out_size, info, header_only, err, errsize);
    default: set_err(err, errsize, "not a PNG or JPEG file (unrecognised signature)"); return MML_IMG_ERR_UNSUPPORTED;
    }
}

int mml_image_probe(const uint8_t *data, size_t size, mml_image_info *info, char *err, size_t errsize) {
    if (!info) { set_err(err, errsize, "info is NULL"); return MML_IMG_ERR_ARGUMENT; }
    return decode_any(data, size, 0, NULL, 0, info, 1, err, errsize);
}

int mml_image_decode(const uint8_t *data, size_t size, int channels, uint8_t *out, size_t out_size,
                     mml_image_info *info, char *err, size_t errsize) {
    return decode_any(data, size, channels, out, out_size, info, 0, err, errsize);
}

void mml_image_free(void *p) { free(p); }
