/* Separable resampling with the triangle filter, widened when shrinking (antialias), or the area filter.
 *
 * Output pixel i along an axis samples the source at its centre c_i = b0 + (i + 1/2) s, s = (b1 - b0) / n_out.
 * Source pixel j (centre j + 1/2) gets weight tri((j + 1/2 - c_i) / f), tri(t) = max(0, 1 - |t|), f = max(s, 1):
 * plain bilinear interpolation when enlarging (f = 1), and a triangle as wide as the footprint when shrinking,
 * so every source pixel contributes (close to area averaging; no aliasing of 1-bit strokes). Taps outside the
 * image are dropped and the remaining weights renormalised to sum 1.
 *
 * Area filter (MML_RESAMPLE_AREA): output pixel i is the mean of the piecewise-constant source over its footprint
 * [c_i - s/2, c_i + s/2] (clipped to the image): source pixel j gets weight |[j, j + 1] ∩ footprint| / |footprint|.
 * At integer shrink factors this is PIL's BOX and OpenCV's INTER_AREA (the plain mean of s x s blocks); at other
 * factors the edge pixels count with their covered fraction.
 *
 * Box filter (MML_RESAMPLE_BOX), PIL's Image.BOX: with the footprint width f = max(s, 1), source pixel j gets weight
 * 1 when (j + 1/2 - c_i) / f lies in (-1/2, 1/2] and 0 otherwise, the candidates being j in
 * [floor(c_i - f/2 + 1/2), floor(c_i + f/2 + 1/2)) clipped to the image; weights renormalised to sum 1 (the pixels
 * whose centres fall inside the footprint, averaged). Equal to AREA at integer shrink factors; PIL then rounds
 * each pass to 8 bits, mml keeps floats (or rounds once, for the u8 entry point). */
#include "MMLImageIO.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int *start, *count; /* first source index and number of taps per output index */
    float *w;           /* n_out x max_taps weights */
    int max_taps;
} taps_t;

static void taps_free(taps_t *t) { free(t->start); free(t->count); free(t->w); }

/* Area taps: exact overlap of each source pixel [j, j + 1] with the footprint, renormalised over the image. */
static void area_taps(taps_t *t, int n_src, int n_out, double b0, double s) {
    for (int i = 0; i < n_out; i++) {
        double c = b0 + (i + 0.5) * s;
        double a = c - 0.5 * s, b = c + 0.5 * s;
        if (a < 0) a = 0;
        if (b > n_src) b = n_src;
        float *w = t->w + (size_t)i * t->max_taps;
        if (!(b > a)) {
            /* The footprint misses the image (a crop box beyond the border): take the nearest pixel. */
            int j = (int)floor(c);
            if (j < 0) j = 0;
            if (j > n_src - 1) j = n_src - 1;
            t->start[i] = j; t->count[i] = 1; w[0] = 1.0f;
            continue;
        }
        int lo = (int)floor(a), hi = (int)ceil(b) - 1;
        if (hi > n_src - 1) hi = n_src - 1;
        if (hi < lo) hi = lo;
        int n = 0;
        double sum = 0;
        for (int j = lo; j <= hi && n < t->max_taps; j++) {
            double l = j > a ? j : a, r = j + 1 < b ? j + 1 : b;
            double wt = r > l ? r - l : 0.0;
            w[n++] = (float)wt;
            sum += wt;
        }
        for (int k = 0; k < n; k++) w[k] = (float)(w[k] / sum);
        t->start[i] = lo;
        t->count[i] = n;
    }
}

/* PIL's BOX taps: the source pixels whose centres fall in (c - f/2, c + f/2], f = max(s, 1), weight 1 each. */
static void box_taps(taps_t *t, int n_src, int n_out, double b0, double s) {
    double f = s > 1.0 ? s : 1.0;
    for (int i = 0; i < n_out; i++) {
        double c = b0 + (i + 0.5) * s;
        int lo = (int)floor(c - 0.5 * f + 0.5), hi = (int)floor(c + 0.5 * f + 0.5); /* candidates [lo, hi) */
        if (lo < 0) lo = 0;
        if (hi > n_src) hi = n_src;
        float *w = t->w + (size_t)i * t->max_taps;
        int first = -1, n = 0;
        for (int j = lo; j < hi && n < t->max_taps; j++) {
            double x = (j + 0.5 - c) / f;
            if (!(x > -0.5 && x <= 0.5)) {
                if (first >= 0) break; /* the taps are one contiguous run */
                continue;
            }
            if (first < 0) first = j;
            w[n++] = 1.0f;
        }
        if (n == 0) {
            /* No centre inside (a crop box beyond the border): take the nearest pixel. */
            int j = (int)floor(c);
            if (j < 0) j = 0;
            if (j > n_src - 1) j = n_src - 1;
            t->start[i] = j; t->count[i] = 1; w[0] = 1.0f;
            continue;
        }
        for (int k = 0; k < n; k++) w[k] = (float)(1.0 / n);
        t->start[i] = first;
        t->count[i] = n;
    }
}

static int taps_build(taps_t *t, int n_src, int n_out, float b0, float b1, int filter) {
    double s = ((double)b1 - (double)b0) / n_out;
    double f = s > 1.0 ? s : 1.0;
    t->max_taps = (int)ceil(f) * 2 + 2;
    t->start = (int *)malloc(sizeof(int) * (size_t)n_out);
    t->count = (int *)malloc(sizeof(int) * (size_t)n_out);
    t->w = (float *)malloc(sizeof(float) * (size_t)n_out * (size_t)t->max_taps);
    if (!t->start || !t->count || !t->w) { taps_free(t); return MML_IMG_ERR_NOMEM; }
    if (filter == MML_RESAMPLE_AREA) { area_taps(t, n_src, n_out, b0, s); return MML_IMG_OK; }
    if (filter == MML_RESAMPLE_BOX) { box_taps(t, n_src, n_out, b0, s); return MML_IMG_OK; }
    for (int i = 0; i < n_out; i++) {
        double c = b0 + (i + 0.5) * s;
        int lo = (int)floor(c - f - 0.5), hi = (int)ceil(c + f - 0.5);
        if (lo < 0) lo = 0;
        if (hi > n_src - 1) hi = n_src - 1;
        float *w = t->w + (size_t)i * t->max_taps;
        double sum = 0;
        int first = -1, n = 0;
        for (int j = lo; j <= hi && n < t->max_taps; j++) {
            double x = fabs((j + 0.5 - c) / f);
            double wt = x < 1.0 ? 1.0 - x : 0.0;
            if (wt <= 0.0 && first < 0) continue; /* skip leading zeros */
            if (first < 0) first = j;
            w[n++] = (float)wt;
            sum += wt;
        }
        if (first < 0 || sum <= 0.0) {
            /* The footprint misses the image (a crop box beyond the border): take the nearest pixel. */
            int j = (int)floor(c);
            if (j < 0) j = 0;
            if (j > n_src - 1) j = n_src - 1;
            t->start[i] = j; t->count[i] = 1; w[0] = 1.0f;
            continue;
        }
        while (n > 1 && w[n - 1] <= 0.0f) n--;
        for (int k = 0; k < n; k++) w[k] = (float)(w[k] / sum);
        t->start[i] = first;
        t->count[i] = n;
    }
    return MML_IMG_OK;
}

/* The shared core: returns a malloc'd dh x dw x c float image (values 0..255), or NULL. Inlined into an
 * AVX-512 and a portable entry point (runtime dispatch below), so the compiler vectorises the tap loops for each. */
static inline __attribute__((always_inline)) float *resample_body(const uint8_t *src, int sw, int sh, int c, float x0, float y0, float x1, float y1,
                            int dw, int dh, int filter, int *status) {
    *status = MML_IMG_OK;
    if ((filter != MML_RESAMPLE_TRIANGLE && filter != MML_RESAMPLE_AREA && filter != MML_RESAMPLE_BOX) || !src || sw <= 0 || sh <= 0 || c <= 0 || dw <= 0 || dh <= 0 || !(x1 > x0) || !(y1 > y0)
        || !isfinite(x0) || !isfinite(x1) || !isfinite(y0) || !isfinite(y1)) {
        *status = MML_IMG_ERR_ARGUMENT;
        return NULL;
    }
    taps_t tx = {0}, ty = {0};
    if (taps_build(&tx, sw, dw, x0, x1, filter) || taps_build(&ty, sh, dh, y0, y1, filter)) {
        taps_free(&tx); taps_free(&ty);
        *status = MML_IMG_ERR_NOMEM;
        return NULL;
    }
    int r0 = ty.start[0], r1 = r0;
    for (int i = 0; i < dh; i++) {
        if (ty.start[i] < r0) r0 = ty.start[i];
        if (ty.start[i] + ty.count[i] - 1 > r1) r1 = ty.start[i] + ty.count[i] - 1;
    }
    int nrows = r1 - r0 + 1;
    size_t rowlen = (size_t)dw * c;
    float *hbuf = (float *)malloc(sizeof(float) * rowlen * (size_t)nrows);
    float *out = (float *)malloc(sizeof(float) * rowlen * (size_t)dh);
    if (!hbuf || !out) {
        free(hbuf); free(out); taps_free(&tx); taps_free(&ty);
        *status = MML_IMG_ERR_NOMEM;
        return NULL;
    }
    /* Horizontal pass over the source rows the vertical taps need. */
    for (int r = 0; r < nrows; r++) {
        const uint8_t *srow = src + (size_t)(r0 + r) * sw * c;
        float *hrow = hbuf + (size_t)r * rowlen;
        for (int i = 0; i < dw; i++) {
            const float *w = tx.w + (size_t)i * tx.max_taps;
            const uint8_t *p = srow + (size_t)tx.start[i] * c;
            int n = tx.count[i];
            for (int ch = 0; ch < c; ch++) {
                float acc = 0.0f;
                for (int k = 0; k < n; k++) acc += w[k] * (float)p[(size_t)k * c + ch];
                hrow[(size_t)i * c + ch] = acc;
            }
        }
    }
    /* Vertical pass. */
    for (int y = 0; y < dh; y++) {
        const float *w = ty.w + (size_t)y * ty.max_taps;
        const float *base = hbuf + (size_t)(ty.start[y] - r0) * rowlen;
        float *orow = out + (size_t)y * rowlen;
        for (size_t x = 0; x < rowlen; x++) orow[x] = 0.0f;
        for (int k = 0; k < ty.count[y]; k++) {
            const float *hr = base + (size_t)k * rowlen;
            float wk = w[k];
            for (size_t x = 0; x < rowlen; x++) orow[x] += wk * hr[x];
        }
    }
    free(hbuf);
    taps_free(&tx);
    taps_free(&ty);
    return out;
}

#define RESAMPLE_ARGS const uint8_t *src, int sw, int sh, int c, float x0, float y0, float x1, float y1, int dw, \
                      int dh, int filter, int *status
#define RESAMPLE_PASS src, sw, sh, c, x0, y0, x1, y1, dw, dh, filter, status

static float *resample_portable(RESAMPLE_ARGS) { return resample_body(RESAMPLE_PASS); }

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
static float *resample_avx512(RESAMPLE_ARGS) { return resample_body(RESAMPLE_PASS); }
#endif

static float *resample_core(RESAMPLE_ARGS) {
#if defined(__x86_64__)
    static int use_avx512 = -1; /* benign race: every thread computes the same value */
    if (use_avx512 < 0) {
        __builtin_cpu_init();
        use_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
    }
    if (use_avx512) return resample_avx512(RESAMPLE_PASS);
#endif
    return resample_portable(RESAMPLE_PASS);
}

int mml_image_resample_u8(const uint8_t *src, int sw, int sh, int c, float x0, float y0, float x1, float y1,
                          int flip, uint8_t *dst, int dw, int dh) {
    return mml_image_resample_filtered_u8(src, sw, sh, c, x0, y0, x1, y1, flip, dst, dw, dh, MML_RESAMPLE_TRIANGLE);
}

int mml_image_resample_filtered_u8(const uint8_t *src, int sw, int sh, int c, float x0, float y0, float x1,
                                   float y1, int flip, uint8_t *dst, int dw, int dh, int filter) {
    if (!dst) return MML_IMG_ERR_ARGUMENT;
    int status;
    float *f = resample_core(src, sw, sh, c, x0, y0, x1, y1, dw, dh, filter, &status);
    if (!f) return status;
    for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw; x++) {
            int ox = flip ? dw - 1 - x : x;
            for (int ch = 0; ch < c; ch++) {
                float v = f[((size_t)y * dw + x) * c + ch] + 0.5f;
                dst[((size_t)y * dw + ox) * c + ch] = (uint8_t)(v < 0.0f ? 0 : v > 255.0f ? 255 : (int)v);
            }
        }
    free(f);
    return MML_IMG_OK;
}

/* True when the box is a pixel-aligned window of the output's size inside the image: the triangle filter then has
 * one tap of weight 1 per pixel, so resampling is a copy (the common case: evaluation, and random crops). */
static int is_aligned_window(int sw, int sh, float x0, float y0, float x1, float y1, int dw, int dh) {
    return x0 == floorf(x0) && y0 == floorf(y0) && x1 - x0 == (float)dw && y1 - y0 == (float)dh && x0 >= 0 && y0 >= 0
        && x1 <= (float)sw && y1 <= (float)sh;
}

int mml_image_resample_f32(const uint8_t *src, int sw, int sh, int c, float x0, float y0, float x1, float y1,
                           int flip, float *dst, int dw, int dh) {
    return mml_image_resample_filtered_f32(src, sw, sh, c, x0, y0, x1, y1, flip, dst, dw, dh, MML_RESAMPLE_TRIANGLE);
}

int mml_image_resample_filtered_f32(const uint8_t *src, int sw, int sh, int c, float x0, float y0, float x1,
                                    float y1, int flip, float *dst, int dw, int dh, int filter) {
    if (!dst || (filter != MML_RESAMPLE_TRIANGLE && filter != MML_RESAMPLE_AREA && filter != MML_RESAMPLE_BOX)) return MML_IMG_ERR_ARGUMENT;
    if (src && c > 0 && dw > 0 && dh > 0 && is_aligned_window(sw, sh, x0, y0, x1, y1, dw, dh)) {
        const float k = 1.0f / 255.0f;
        size_t plane = (size_t)dw * dh;
        int ox0 = (int)x0, oy0 = (int)y0;
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < dh; y++) {
                const uint8_t *srow = src + ((size_t)(oy0 + y) * sw + ox0) * c + ch;
                float *drow = dst + (size_t)ch * plane + (size_t)y * dw;
                if (flip) for (int x = 0; x < dw; x++) drow[dw - 1 - x] = (float)srow[(size_t)x * c] * k;
                else for (int x = 0; x < dw; x++) drow[x] = (float)srow[(size_t)x * c] * k;
            }
        return MML_IMG_OK;
    }
    int status;
    float *f = resample_core(src, sw, sh, c, x0, y0, x1, y1, dw, dh, filter, &status);
    if (!f) return status;
    const float k = 1.0f / 255.0f;
    size_t plane = (size_t)dw * dh;
    for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw; x++) {
            int ox = flip ? dw - 1 - x : x;
            for (int ch = 0; ch < c; ch++)
                dst[(size_t)ch * plane + (size_t)y * dw + ox] = f[((size_t)y * dw + x) * c + ch] * k;
        }
    free(f);
    return MML_IMG_OK;
}
