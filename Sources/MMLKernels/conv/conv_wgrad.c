/* Weight gradient of a 3x3, stride-1, padding-1 convolution by Winograd F(2x2, 3x3) (Lavin & Gray 2016).
 *
 * The forward pass computes each 2x2 output tile t of channel o as y_t = A^T [ sum_c U_oc .* V_tc ] A with
 * U_oc = G g_oc G^T (the 3x3 filter, transformed to 4x4) and V_tc = B^T d_tc B (the 4x4 input tile around t,
 * zero-padded). Everything is linear, so the chain rule gives
 *     dL/dU_oc = sum_t (A dy_to A^T) .* V_tc,     dL/dg_oc = G^T (dL/dU_oc) G,
 * i.e. for each of the 16 transform positions xi a product (Cout x T)(T x C) over the tiles of every image,
 * 2.25x fewer multiplies than the im2col product dW = sum_n dy_n col_n^T (K = 9C rows per output).
 * Images are split into fixed chunks (the driver both 3x3 weight gradients share, conv_wgrad_driver.c), each
 * accumulating its own partial dL/dU; the partials are summed in chunk order, so any thread count gives the same
 * bits. Transforms are vectorised over 16 tiles of a tile
 * row with AVX-512 when the CPU has it (runtime check), with a portable scalar path otherwise. */
#include "MMLKernels.h"
#include "conv_wgrad_driver.h"
#include "nn_internal.h"
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static size_t al16(size_t f) { return (f + 15) & ~(size_t)15; }

/* ------------------------------------------------------------------ transforms, portable */

/* V[xi][ch][t] = (B^T d B)[xi] for every 4x4 input tile d (rows 2ty-1 .. 2ty+2, cols 2tx-1 .. 2tx+2, zero outside)
 * of the channels of one image x (C, H, W); tile t = ty * tw + tx; the xi planes are ld = C * T apart. */
static void input_transform_portable(float *v, const float *x, int64_t c, int64_t h, int64_t w, int64_t th,
                                     int64_t tw) {
    int64_t t_count = th * tw;
    for (int64_t ch = 0; ch < c; ch++) {
        const float *xc = x + ch * h * w;
        for (int64_t ty = 0; ty < th; ty++)
            for (int64_t tx = 0; tx < tw; tx++) {
                float d[4][4];
                for (int r = 0; r < 4; r++) {
                    int64_t iy = 2 * ty - 1 + r;
                    for (int k = 0; k < 4; k++) {
                        int64_t ix = 2 * tx - 1 + k;
                        d[r][k] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? xc[iy * w + ix] : 0.0f;
                    }
                }
                float e[4][4]; /* B^T d: combine rows */
                for (int k = 0; k < 4; k++) {
                    e[0][k] = d[0][k] - d[2][k];
                    e[1][k] = d[1][k] + d[2][k];
                    e[2][k] = d[2][k] - d[1][k];
                    e[3][k] = d[1][k] - d[3][k];
                }
                int64_t t = ty * tw + tx;
                for (int r = 0; r < 4; r++) { /* (B^T d) B: combine columns */
                    float *o = v + ((int64_t)(4 * r) * c + ch) * t_count + t;
                    int64_t ld = c * t_count;
                    o[0] = e[r][0] - e[r][2];
                    o[ld] = e[r][1] + e[r][2];
                    o[2 * ld] = e[r][2] - e[r][1];
                    o[3 * ld] = e[r][1] - e[r][3];
                }
            }
    }
}

/* Yh[xi][o][t] = (A g A^T)[xi] for every 2x2 output-gradient tile g (rows 2ty, 2ty+1, cols 2tx, 2tx+1, zero
 * outside the H x W output) of dy (Cout, H, W); A = [[1,0],[1,1],[1,-1],[0,-1]]. */
static void grad_transform_portable(float *yh, const float *dy, int64_t cout, int64_t h, int64_t w, int64_t th,
                                    int64_t tw) {
    int64_t t_count = th * tw;
    for (int64_t o = 0; o < cout; o++) {
        const float *g = dy + o * h * w;
        for (int64_t ty = 0; ty < th; ty++)
            for (int64_t tx = 0; tx < tw; tx++) {
                float q[2][2];
                for (int r = 0; r < 2; r++)
                    for (int k = 0; k < 2; k++) {
                        int64_t iy = 2 * ty + r, ix = 2 * tx + k;
                        q[r][k] = (iy < h && ix < w) ? g[iy * w + ix] : 0.0f;
                    }
                float e[4][2] = {{q[0][0], q[0][1]},
                                 {q[0][0] + q[1][0], q[0][1] + q[1][1]},
                                 {q[0][0] - q[1][0], q[0][1] - q[1][1]},
                                 {-q[1][0], -q[1][1]}};
                int64_t t = ty * tw + tx, ld = cout * t_count;
                for (int r = 0; r < 4; r++) {
                    float *out = yh + ((int64_t)(4 * r) * cout + o) * t_count + t;
                    out[0] = e[r][0];
                    out[ld] = e[r][0] + e[r][1];
                    out[2 * ld] = e[r][0] - e[r][1];
                    out[3 * ld] = -e[r][1];
                }
            }
    }
}

/* ------------------------------------------------------------------ transforms, AVX-512 (16 tiles at a time) */
#if defined(__x86_64__)
#define WG_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

/* Lanes l = 0..15 of tile columns tx0 + l: the values at input columns 2(tx0 + l) - 1 + k, k = 0..3, of a row
 * that has been copied into buf with one zero in front (buf[1 + ix] = row[ix]) and zeros after. */
WG_AVX512 static inline void wg_columns(const float *buf, int64_t tx0, __m512 out[4]) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const float *p = buf + 2 * tx0; /* p[2l + k] is column 2(tx0 + l) - 1 + k */
    __m512 a0 = _mm512_loadu_ps(p), a1 = _mm512_loadu_ps(p + 16);
    __m512 b0 = _mm512_loadu_ps(p + 2), b1 = _mm512_loadu_ps(p + 18);
    out[0] = _mm512_permutex2var_ps(a0, even, a1);
    out[1] = _mm512_permutex2var_ps(a0, odd, a1);
    out[2] = _mm512_permutex2var_ps(b0, even, b1);
    out[3] = _mm512_permutex2var_ps(b0, odd, b1);
}

/* As input_transform_portable. rowbuf: 4 rows of 2 * tw + 34 floats. */
WG_AVX512 static void input_transform_avx512(float *v, const float *x, int64_t c, int64_t h, int64_t w, int64_t th,
                                             int64_t tw, float *rowbuf) {
    int64_t t_count = th * tw, ld = c * t_count, stride = 2 * tw + 34;
    int64_t tw16 = (tw + 15) / 16 * 16;
    for (int64_t ch = 0; ch < c; ch++) {
        const float *xc = x + ch * h * w;
        for (int64_t ty = 0; ty < th; ty++) {
            for (int r = 0; r < 4; r++) {
                float *b = rowbuf + r * stride;
                memset(b, 0, (size_t)stride * sizeof(float));
                int64_t iy = 2 * ty - 1 + r;
                if (iy >= 0 && iy < h) memcpy(b + 1, xc + iy * w, (size_t)w * sizeof(float));
            }
            for (int64_t tx0 = 0; tx0 < tw16; tx0 += 16) {
                int64_t nl = tw - tx0 < 16 ? tw - tx0 : 16;
                __mmask16 m = nl == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nl) - 1);
                __m512 d[4][4];
                for (int r = 0; r < 4; r++) wg_columns(rowbuf + r * stride, tx0, d[r]);
                __m512 e[4][4];
                for (int k = 0; k < 4; k++) {
                    e[0][k] = _mm512_sub_ps(d[0][k], d[2][k]);
                    e[1][k] = _mm512_add_ps(d[1][k], d[2][k]);
                    e[2][k] = _mm512_sub_ps(d[2][k], d[1][k]);
                    e[3][k] = _mm512_sub_ps(d[1][k], d[3][k]);
                }
                int64_t t = ty * tw + tx0;
                for (int r = 0; r < 4; r++) {
                    float *o = v + ((int64_t)(4 * r) * c + ch) * t_count + t;
                    _mm512_mask_storeu_ps(o, m, _mm512_sub_ps(e[r][0], e[r][2]));
                    _mm512_mask_storeu_ps(o + ld, m, _mm512_add_ps(e[r][1], e[r][2]));
                    _mm512_mask_storeu_ps(o + 2 * ld, m, _mm512_sub_ps(e[r][2], e[r][1]));
                    _mm512_mask_storeu_ps(o + 3 * ld, m, _mm512_sub_ps(e[r][1], e[r][3]));
                }
            }
        }
    }
}

/* As grad_transform_portable. rowbuf: 2 rows of 2 * tw + 34 floats. */
WG_AVX512 static void grad_transform_avx512(float *yh, const float *dy, int64_t cout, int64_t h, int64_t w,
                                            int64_t th, int64_t tw, float *rowbuf) {
    int64_t t_count = th * tw, ld = cout * t_count, stride = 2 * tw + 34;
    int64_t tw16 = (tw + 15) / 16 * 16;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int64_t o = 0; o < cout; o++) {
        const float *g = dy + o * h * w;
        for (int64_t ty = 0; ty < th; ty++) {
            for (int r = 0; r < 2; r++) {
                float *b = rowbuf + r * stride;
                memset(b, 0, (size_t)stride * sizeof(float));
                int64_t iy = 2 * ty + r;
                if (iy < h) memcpy(b, g + iy * w, (size_t)w * sizeof(float));
            }
            for (int64_t tx0 = 0; tx0 < tw16; tx0 += 16) {
                int64_t nl = tw - tx0 < 16 ? tw - tx0 : 16;
                __mmask16 m = nl == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nl) - 1);
                __m512 q[2][2];
                for (int r = 0; r < 2; r++) {
                    const float *p = rowbuf + r * stride + 2 * tx0;
                    __m512 a0 = _mm512_loadu_ps(p), a1 = _mm512_loadu_ps(p + 16);
                    q[r][0] = _mm512_permutex2var_ps(a0, even, a1);
                    q[r][1] = _mm512_permutex2var_ps(a0, odd, a1);
                }
                __m512 e[4][2];
                for (int k = 0; k < 2; k++) {
                    e[0][k] = q[0][k];
                    e[1][k] = _mm512_add_ps(q[0][k], q[1][k]);
                    e[2][k] = _mm512_sub_ps(q[0][k], q[1][k]);
                    e[3][k] = _mm512_sub_ps(_mm512_setzero_ps(), q[1][k]);
                }
                int64_t t = ty * tw + tx0;
                for (int r = 0; r < 4; r++) {
                    float *out = yh + ((int64_t)(4 * r) * cout + o) * t_count + t;
                    _mm512_mask_storeu_ps(out, m, e[r][0]);
                    _mm512_mask_storeu_ps(out + ld, m, _mm512_add_ps(e[r][0], e[r][1]));
                    _mm512_mask_storeu_ps(out + 2 * ld, m, _mm512_sub_ps(e[r][0], e[r][1]));
                    _mm512_mask_storeu_ps(out + 3 * ld, m, _mm512_sub_ps(_mm512_setzero_ps(), e[r][1]));
                }
            }
        }
    }
}
#endif

/* ------------------------------------------------------------------ the driver's steps */

/* A chunk's partial is dL/dU, [xi][o][ch]; a thread's scratch V [xi][ch][t], Yh [xi][o][t], the AVX-512
 * transforms' row buffer (4 rows of 2 tw + 34) and the GEMM's scratch. */
static size_t wg_partial_floats(int64_t c, int64_t h, int64_t w, int64_t cout) {
    (void)h, (void)w;
    return al16((size_t)(16 * cout * c));
}

static size_t wg_scratch_floats(int64_t c, int64_t h, int64_t w, int64_t cout) {
    int64_t tw = (w + 1) / 2, t = (h + 1) / 2 * tw;
    return al16((size_t)(16 * c * t)) + al16((size_t)(16 * cout * t)) + al16((size_t)(4 * (2 * tw + 34))) +
           al16(mml_nn_sgemm_scratch_floats());
}

static void wg_image(const mml_wgrad_job *job, int64_t img, int first, float *du, float *scratch) {
    int64_t c = job->c, h = job->h, w = job->w, cout = job->cout;
    int64_t th = (h + 1) / 2, tw = (w + 1) / 2, t = th * tw;
    float *v = scratch, *yh = v + al16((size_t)(16 * c * t));
    float *rowbuf = yh + al16((size_t)(16 * cout * t));
    float *gs = rowbuf + al16((size_t)(4 * (2 * tw + 34)));
    const float *xn = job->x + img * c * h * w, *dyn = job->dy + img * cout * h * w;
#if defined(__x86_64__)
    if (mml_nn_have_avx512()) {
        input_transform_avx512(v, xn, c, h, w, th, tw, rowbuf);
        grad_transform_avx512(yh, dyn, cout, h, w, th, tw, rowbuf);
    } else
#endif
    {
        (void)rowbuf;
        input_transform_portable(v, xn, c, h, w, th, tw);
        grad_transform_portable(yh, dyn, cout, h, w, th, tw);
    }
    /* dU[xi] (Cout x C) += Yh[xi] (Cout x T) V[xi]^T (T x C); the chunk's first image overwrites */
    for (int xi = 0; xi < 16; xi++)
        mml_nn_sgemm(0, 1, cout, c, t, 1.0f, yh + (size_t)xi * cout * t, t, v + (size_t)xi * c * t, t,
                     first ? 0.0f : 1.0f, du + (size_t)xi * cout * c, c, gs);
}

/* dU summed over chunks in order, then dW_oc += G^T dU_oc G, G^T = [[1, .5, .5, 0], [0, .5, -.5, 0],
 * [0, .5, .5, 1]] */
static void wg_reduce(const mml_wgrad_job *job, float *dweight) {
    int64_t c = job->c, cout = job->cout;
    for (int64_t o = 0; o < cout; o++)
        for (int64_t ch = 0; ch < c; ch++) {
            float m[4][4];
            for (int xi = 0; xi < 16; xi++) {
                float acc = 0.0f;
                for (int64_t k = 0; k < job->chunks; k++)
                    acc += mml_wgrad_partial(job, k)[((size_t)xi * cout + o) * c + ch];
                m[xi / 4][xi % 4] = acc;
            }
            float r[3][4];
            for (int k = 0; k < 4; k++) {
                r[0][k] = m[0][k] + 0.5f * (m[1][k] + m[2][k]);
                r[1][k] = 0.5f * (m[1][k] - m[2][k]);
                r[2][k] = 0.5f * (m[1][k] + m[2][k]) + m[3][k];
            }
            float *dw = dweight + (o * c + ch) * 9;
            for (int i = 0; i < 3; i++) {
                dw[i * 3 + 0] += r[i][0] + 0.5f * (r[i][1] + r[i][2]);
                dw[i * 3 + 1] += 0.5f * (r[i][1] - r[i][2]);
                dw[i * 3 + 2] += 0.5f * (r[i][1] + r[i][2]) + r[i][3];
            }
        }
}

static const mml_wgrad_kernel wg_kernel = {wg_partial_floats, wg_scratch_floats, wg_image, wg_reduce};

int64_t mml_conv3x3_wgrad_workspace_floats(int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout,
                                           int32_t nthreads) {
    return mml_wgrad_workspace_floats(&wg_kernel, n, c, h, w, cout, nthreads);
}

int mml_conv3x3_winograd_backward_weight_f32(float *dweight, const float *dy, const float *x, int64_t n, int64_t c,
                                             int64_t h, int64_t w, int64_t cout, float *workspace,
                                             int64_t workspace_floats, int32_t nthreads) {
    return mml_wgrad_run(&wg_kernel, dweight, dy, x, n, c, h, w, cout, workspace, workspace_floats, nthreads);
}
