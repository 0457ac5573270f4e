/* Weight gradient of a 3x3, stride-1, padding-1 convolution over few input channels (a network's first layer:
 * c = 1 for Omniglot, 3 for RGB) by direct accumulation:
 *     dW[o][ch][ky][kx] = sum_n sum_{y,x} dy_n[o][y][x] * x_n[ch][y + ky - 1][x + kx - 1]   (zero outside).
 * The im2col product for this layer (K = 9c = 27, P = 84 x 84) spends most of its time packing a transposed dy and
 * storing C tiles, not on FMAs (about 30 GFLOP/s on the CPUs measured); the Winograd weight gradient transforms
 * all of dy for 3 input channels. Here the vector lanes are 16 neighbouring output pixels of one row: for a block
 * of 4 output channels and 2 kernel rows (ch, ky) the 24 (channel, tap) accumulators stay in registers over the
 * whole image, fed by 4 loads of dy and 6 unaligned loads of a zero-padded copy of the image per 16 pixels.
 *
 * Order of the sums, identical on every path (so the AVX-512 and portable paths give the same bits): each
 * (o, ch, ky, kx, lane) accumulator is one FMA chain over the images of a chunk, then the rows y, then the pixels
 * x = 16 s + lane (all rows, the padded ones included: their products are exact zeros); the 16 lanes are summed
 * by halving (i + 8, then + 4, + 2, + 1); dW receives the chunks' sums in chunk order. Images are split into
 * DWG_CHUNKS fixed chunks, so any thread count gives the same bits. */
#include "MMLKernels.h"
#include "nn_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define DWG_CHUNKS 4
#define DWG_OB 4 /* output channels per register block */
#define DWG_RB 2 /* kernel rows (ch, ky) per register block */

static size_t al16(size_t f) { return (f + 15) & ~(size_t)15; }

/* Row stride of the padded copies: a multiple of 16, at least w + 2 (x's zero columns 0 and w + 1). Output pixel
 * (y, x) is flat position q = y * wq + x of the dy copy (zero for x >= w) and reads tap (ky, kx) at q + ky * wq + kx
 * of the image copy, whose row r + 1, column u + 1 holds x[r][u]. */
static int64_t dwg_wq(int64_t w) { return (int64_t)al16((size_t)(w + 2)); }
/* the image copy: c planes of h + 2 rows, plus the last strip's reach past its end */
static size_t dwg_image_floats(int64_t c, int64_t h, int64_t w) {
    return al16((size_t)(c * (h + 2) * dwg_wq(w) + 32));
}
/* the dy copy of one block of output channels */
static size_t dwg_dy_floats(int64_t h, int64_t w) { return al16((size_t)(DWG_OB * h * dwg_wq(w))); }
/* per-chunk lane sums: [o][tap][16] */
static size_t dwg_lane_floats(int64_t c, int64_t cout) { return al16((size_t)(cout * 9 * c * 16)); }

typedef struct {
    float *dweight;
    const float *dy, *x;
    float *ws;
    int64_t n, c, h, w, cout, chunks;
} dwg_ctx;

static float *dwg_lanes(dwg_ctx *s, int64_t chunk) {
    float *base = (float *)(((uintptr_t)s->ws + 63) & ~(uintptr_t)63);
    return base + (size_t)chunk * dwg_lane_floats(s->c, s->cout);
}

static float *dwg_image(dwg_ctx *s, int thread) {
    return dwg_lanes(s, s->chunks) + (size_t)thread * (dwg_image_floats(s->c, s->h, s->w) + dwg_dy_floats(s->h, s->w));
}

static void dwg_pad_image(float *xp, const float *x, int64_t c, int64_t h, int64_t w) {
    int64_t wq = dwg_wq(w);
    memset(xp, 0, dwg_image_floats(c, h, w) * sizeof(float));
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t r = 0; r < h; r++)
            memcpy(xp + (ch * (h + 2) + r + 1) * wq + 1, x + (ch * h + r) * w, (size_t)w * sizeof(float));
}

/* dyp[i] (h x wq, zero past w) = dy channel o[i] */
static void dwg_pad_dy(float *dyp, const float *dyn, int64_t h, int64_t w, const int64_t o[DWG_OB]) {
    int64_t wq = dwg_wq(w);
    for (int i = 0; i < DWG_OB; i++)
        for (int64_t y = 0; y < h; y++) {
            float *d = dyp + (i * h + y) * wq;
            memcpy(d, dyn + (o[i] * h + y) * w, (size_t)w * sizeof(float));
            memset(d + w, 0, (size_t)(wq - w) * sizeof(float));
        }
}

/* One register block: output channels o[0..3] (dy copied to dyp), kernel rows rr[0..1] = ch * 3 + ky (repeats
 * where the rows run out; only the first nr are stored back). Portable: the same FMA chains, lane by lane. */
static void dwg_block_portable(float *lanes, const float *dyp, const float *xp, int64_t c, int64_t h, int64_t w,
                               const int64_t o[DWG_OB], int no, const int64_t rr[DWG_RB], int nr) {
    int64_t wq = dwg_wq(w), taps = 9 * c, len = h * wq;
    for (int i = 0; i < no; i++)
        for (int j = 0; j < nr; j++)
            for (int kx = 0; kx < 3; kx++) {
                float *acc = lanes + (o[i] * taps + rr[j] * 3 + kx) * 16;
                const float *d = dyp + i * h * wq, *xr = xp + ((rr[j] / 3) * (h + 2) + rr[j] % 3) * wq + kx;
                for (int64_t q = 0; q < len; q += 16)
                    for (int l = 0; l < 16; l++) acc[l] = fmaf(d[q + l], xr[q + l], acc[l]);
            }
}

#if defined(__x86_64__)
#define DWG_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

DWG_AVX512 static void dwg_block_avx512(float *lanes, const float *dyp, const float *xp, int64_t c, int64_t h,
                                        int64_t w, const int64_t o[DWG_OB], int no, const int64_t rr[DWG_RB],
                                        int nr) {
    int64_t wq = dwg_wq(w), taps = 9 * c, len = h * wq;
    __m512 acc[DWG_OB][DWG_RB * 3];
    for (int i = 0; i < DWG_OB; i++)
        for (int j = 0; j < DWG_RB; j++)
            for (int kx = 0; kx < 3; kx++)
                acc[i][j * 3 + kx] = _mm512_load_ps(lanes + (o[i] * taps + rr[j] * 3 + kx) * 16);
    const float *d0 = dyp, *d1 = dyp + h * wq, *d2 = dyp + 2 * h * wq, *d3 = dyp + 3 * h * wq;
    const float *x0 = xp + ((rr[0] / 3) * (h + 2) + rr[0] % 3) * wq;
    const float *x1 = xp + ((rr[1] / 3) * (h + 2) + rr[1] % 3) * wq;
    for (int64_t q = 0; q < len; q += 16) {
        __m512 dv[DWG_OB] = {_mm512_load_ps(d0 + q), _mm512_load_ps(d1 + q), _mm512_load_ps(d2 + q),
                             _mm512_load_ps(d3 + q)};
        for (int kx = 0; kx < 3; kx++) {
            __m512 a = _mm512_loadu_ps(x0 + q + kx), b = _mm512_loadu_ps(x1 + q + kx);
            for (int i = 0; i < DWG_OB; i++) {
                acc[i][kx] = _mm512_fmadd_ps(dv[i], a, acc[i][kx]);
                acc[i][3 + kx] = _mm512_fmadd_ps(dv[i], b, acc[i][3 + kx]);
            }
        }
    }
    for (int i = 0; i < no; i++)
        for (int j = 0; j < nr; j++)
            for (int kx = 0; kx < 3; kx++)
                _mm512_store_ps(lanes + (o[i] * taps + rr[j] * 3 + kx) * 16, acc[i][j * 3 + kx]);
}
#endif

static void dwg_image_blocks(float *lanes, float *dyp, const float *dyn, const float *xp, int64_t c, int64_t h,
                             int64_t w, int64_t cout) {
    int64_t rows = 3 * c;
    for (int64_t o0 = 0; o0 < cout; o0 += DWG_OB) {
        int no = cout - o0 < DWG_OB ? (int)(cout - o0) : DWG_OB;
        int64_t o[DWG_OB];
        for (int i = 0; i < DWG_OB; i++) o[i] = o0 + (i < no ? i : 0);
        dwg_pad_dy(dyp, dyn, h, w, o);
        for (int64_t r0 = 0; r0 < rows; r0 += DWG_RB) {
            int nr = rows - r0 < DWG_RB ? (int)(rows - r0) : DWG_RB;
            int64_t rr[DWG_RB];
            for (int j = 0; j < DWG_RB; j++) rr[j] = r0 + (j < nr ? j : 0);
#if defined(__x86_64__)
            if (mml_nn_have_avx512()) {
                dwg_block_avx512(lanes, dyp, xp, c, h, w, o, no, rr, nr);
                continue;
            }
#endif
            dwg_block_portable(lanes, dyp, xp, c, h, w, o, no, rr, nr);
        }
    }
}

static void dwg_task(void *ctx, int64_t chunk, int thread) {
    dwg_ctx *s = (dwg_ctx *)ctx;
    float *lanes = dwg_lanes(s, chunk), *xp = dwg_image(s, thread);
    float *dyp = xp + dwg_image_floats(s->c, s->h, s->w);
    memset(lanes, 0, dwg_lane_floats(s->c, s->cout) * sizeof(float));
    int64_t i0 = chunk * s->n / s->chunks, i1 = (chunk + 1) * s->n / s->chunks;
    for (int64_t img = i0; img < i1; img++) {
        const float *xn = s->x + img * s->c * s->h * s->w, *dyn = s->dy + img * s->cout * s->h * s->w;
        dwg_pad_image(xp, xn, s->c, s->h, s->w);
        dwg_image_blocks(lanes, dyp, dyn, xp, s->c, s->h, s->w, s->cout);
    }
}

int64_t mml_conv3x3_direct_wgrad_workspace_floats(int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout,
                                                  int32_t nthreads) {
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || cout <= 0 || nthreads < 0) return MML_ERR_ARGUMENT;
    int64_t chunks = n < DWG_CHUNKS ? n : DWG_CHUNKS;
    int threads = mml_thread_count(nthreads, chunks);
    return (int64_t)(dwg_lane_floats(c, cout) * (size_t)chunks +
                     (dwg_image_floats(c, h, w) + dwg_dy_floats(h, w)) * (size_t)threads + 16);
}

int mml_conv3x3_direct_backward_weight_f32(float *dweight, const float *dy, const float *x, int64_t n, int64_t c,
                                           int64_t h, int64_t w, int64_t cout, float *workspace,
                                           int64_t workspace_floats, int32_t nthreads) {
    if (!dweight || !dy || !x) return MML_ERR_ARGUMENT;
    int64_t need = mml_conv3x3_direct_wgrad_workspace_floats(n, c, h, w, cout, nthreads);
    if (need < 0) return MML_ERR_ARGUMENT;
    float *owned;
    int acquired = mml_nn_acquire_workspace(&workspace, &owned, workspace_floats, need);
    if (acquired != MML_OK) return acquired;
    dwg_ctx s = {dweight, dy, x, workspace, n, c, h, w, cout, n < DWG_CHUNKS ? n : DWG_CHUNKS};
    mml_parallel_for(s.chunks, nthreads, dwg_task, &s);
    int64_t taps = 9 * c;
    for (int64_t ch = 0; ch < s.chunks; ch++) {
        const float *lanes = dwg_lanes(&s, ch);
        for (int64_t o = 0; o < cout; o++)
            for (int64_t tap = 0; tap < taps; tap++) {
                const float *l = lanes + (o * taps + tap) * 16;
                float h8[8], h4[4];
                for (int i = 0; i < 8; i++) h8[i] = l[i] + l[i + 8];
                for (int i = 0; i < 4; i++) h4[i] = h8[i] + h8[i + 4];
                float total = (h4[0] + h4[2]) + (h4[1] + h4[3]);
                dweight[o * taps + tap] += total;
            }
    }
    free(owned);
    return MML_OK;
}
