/* Weight gradient of a 3x3, stride-1, padding-1 convolution over few input channels (a network's first layer:
 * c = 1 for Omniglot, 3 for RGB) by direct accumulation:
 *     dW[o][ch][ky][kx] = sum_n sum_{y,x} dy_n[o][y][x] * x_n[ch][y + ky - 1][x + kx - 1]   (zero outside).
 * The im2col product for this layer (K = 9c = 27, P = 84 x 84) spends most of its time packing a transposed dy and
 * storing C tiles, not on FMAs (about 30 GFLOP/s on the CPUs measured); the Winograd weight gradient transforms
 * all of dy for 3 input channels. Here the vector lanes are 16 neighbouring output pixels of one row: for a block
 * of 4 output channels and 2 kernel rows (ch, ky) the 24 (channel, tap) accumulators stay in registers over the
 * whole image, fed by 4 loads of dy and 6 unaligned loads of a zero-padded copy of the image per 16 pixels.
 *
 * Order of the sums, identical on every path (so the AVX-512, AVX2 and portable paths give the same bits): each
 * (o, ch, ky, kx, lane) accumulator is one FMA chain over the images of a chunk, then the rows y, then the pixels
 * x = 16 s + lane (all rows, the padded ones included: their products are exact zeros); the 16 lanes are summed
 * by halving (i + 8, then + 4, + 2, + 1); dW receives the chunks' sums in chunk order. Images are split into
 * fixed chunks by the driver both 3x3 weight gradients share (conv_wgrad_driver.c), so any thread count gives the
 * same bits. */
#include "MMLKernels.h"
#include "conv_wgrad_driver.h"
#include "nn_internal.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

#if defined(__x86_64__)
#define DWG_AVX2 __attribute__((target("avx2,fma")))

/* The same FMA chains with 8-lane vectors (CPUs without AVX-512): lanes 0-7 and 8-15 of the 16 are separate passes,
 * and so are the kernel rows, so that 12 accumulators (4 output channels x 3 taps) stay in registers. */
DWG_AVX2 static void dwg_block_avx2(float *lanes, const float *dyp, const float *xp, int64_t c, int64_t h, int64_t w,
                                    const int64_t o[DWG_OB], int no, const int64_t rr[DWG_RB], int nr) {
    int64_t wq = dwg_wq(w), taps = 9 * c, len = h * wq;
    const float *d0 = dyp, *d1 = dyp + h * wq, *d2 = dyp + 2 * h * wq, *d3 = dyp + 3 * h * wq;
    for (int j = 0; j < nr; j++) {
        const float *xr = xp + ((rr[j] / 3) * (h + 2) + rr[j] % 3) * wq;
        for (int half = 0; half < 16; half += 8) {
            __m256 acc[DWG_OB][3];
            for (int i = 0; i < DWG_OB; i++)
                for (int kx = 0; kx < 3; kx++)
                    acc[i][kx] = _mm256_loadu_ps(lanes + (o[i] * taps + rr[j] * 3 + kx) * 16 + half);
            for (int64_t q = half; q < len; q += 16) {
                const __m256 e0 = _mm256_loadu_ps(d0 + q), e1 = _mm256_loadu_ps(d1 + q),
                             e2 = _mm256_loadu_ps(d2 + q), e3 = _mm256_loadu_ps(d3 + q);
                for (int kx = 0; kx < 3; kx++) {
                    const __m256 a = _mm256_loadu_ps(xr + q + kx);
                    acc[0][kx] = _mm256_fmadd_ps(e0, a, acc[0][kx]);
                    acc[1][kx] = _mm256_fmadd_ps(e1, a, acc[1][kx]);
                    acc[2][kx] = _mm256_fmadd_ps(e2, a, acc[2][kx]);
                    acc[3][kx] = _mm256_fmadd_ps(e3, a, acc[3][kx]);
                }
            }
            for (int i = 0; i < no; i++)
                for (int kx = 0; kx < 3; kx++)
                    _mm256_storeu_ps(lanes + (o[i] * taps + rr[j] * 3 + kx) * 16 + half, acc[i][kx]);
        }
    }
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
            if (mml_nn_have_avx2()) {
                dwg_block_avx2(lanes, dyp, xp, c, h, w, o, no, rr, nr);
                continue;
            }
#endif
            dwg_block_portable(lanes, dyp, xp, c, h, w, o, no, rr, nr);
        }
    }
}

/* The driver's steps: a chunk's partial is its lane sums [o][tap][16]; a thread's scratch the padded image, then
 * the padded dy of one block of output channels. */
static size_t dwg_scratch_floats(int64_t c, int64_t h, int64_t w, int64_t cout) {
    (void)cout;
    return dwg_image_floats(c, h, w) + dwg_dy_floats(h, w);
}

static size_t dwg_partial_floats(int64_t c, int64_t h, int64_t w, int64_t cout) {
    (void)h, (void)w;
    return dwg_lane_floats(c, cout);
}

static void dwg_image(const mml_wgrad_job *job, int64_t img, int first, float *lanes, float *scratch) {
    float *xp = scratch, *dyp = scratch + dwg_image_floats(job->c, job->h, job->w);
    if (first) memset(lanes, 0, dwg_lane_floats(job->c, job->cout) * sizeof(float));
    const float *xn = job->x + img * job->c * job->h * job->w, *dyn = job->dy + img * job->cout * job->h * job->w;
    dwg_pad_image(xp, xn, job->c, job->h, job->w);
    dwg_image_blocks(lanes, dyp, dyn, xp, job->c, job->h, job->w, job->cout);
}

static void dwg_reduce(const mml_wgrad_job *job, float *dweight) {
    int64_t taps = 9 * job->c;
    for (int64_t ch = 0; ch < job->chunks; ch++) {
        const float *lanes = mml_wgrad_partial(job, ch);
        for (int64_t o = 0; o < job->cout; o++)
            for (int64_t tap = 0; tap < taps; tap++) {
                const float *l = lanes + (o * taps + tap) * 16;
                float h8[8], h4[4];
                for (int i = 0; i < 8; i++) h8[i] = l[i] + l[i + 8];
                for (int i = 0; i < 4; i++) h4[i] = h8[i] + h8[i + 4];
                float total = (h4[0] + h4[2]) + (h4[1] + h4[3]);
                dweight[o * taps + tap] += total;
            }
    }
}

static const mml_wgrad_kernel dwg_kernel = {dwg_partial_floats, dwg_scratch_floats, dwg_image, dwg_reduce};

int64_t mml_conv3x3_direct_wgrad_workspace_floats(int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout,
                                                  int32_t nthreads) {
    return mml_wgrad_workspace_floats(&dwg_kernel, n, c, h, w, cout, nthreads);
}

int mml_conv3x3_direct_backward_weight_f32(float *dweight, const float *dy, const float *x, int64_t n, int64_t c,
                                           int64_t h, int64_t w, int64_t cout, float *workspace,
                                           int64_t workspace_floats, int32_t nthreads) {
    return mml_wgrad_run(&dwg_kernel, dweight, dy, x, n, c, h, w, cout, workspace, workspace_floats, nthreads);
}
