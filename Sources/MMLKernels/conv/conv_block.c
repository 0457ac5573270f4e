/* Inference-mode Conv3x3 -> per-channel affine (folded BatchNorm) -> LeakyReLU -> optional 2x2 max-pool, one image
 * at a time and within it one band of output rows at a time, so that the conv output never leaves L2: the forward
 * pass of Conv-64F / Conv-4 blocks without the full-size intermediate maps (at 84x84x64 they are 1.8 MB per image,
 * more than this CPU's L2). The receptive fields are packed straight from the image (implicit im2col). */
#include "MMLKernels.h"
#include "nn_internal.h"
#include "pool2x2_avx512.h"
#include "transpose16_avx512.h"
#include <stdlib.h>
#include <string.h>
/* a * x + b rounded twice, as the other BatchNorm kernels */
#pragma STDC FP_CONTRACT OFF

static size_t al16(size_t f) { return (f + 15) & ~(size_t)15; }

/* floats of conv output per band (256 KiB: a quarter of this CPU's L2) */
#define BLK_BAND_FLOATS 65536

/* Output rows per band: the band's conv output (cout x rows x ow) stays in L2 between the GEMM and the tail. */
static int64_t band_rows(int64_t cout, int64_t ow) {
    int64_t r = (int64_t)BLK_BAND_FLOATS / (cout * ow);
    r &= ~(int64_t)1; /* even, so that 2x2 pooling windows never straddle two bands */
    return r < 2 ? 2 : r;
}

/* ---- Direct path for few input channels (the first block of Conv-64F / Conv-4: c = 1 or 3, so K = 9 c <= 72),
 * AVX-512 only. There the GEMM, with K = 27, spends about as long packing its operands and storing its C tiles
 * as on the FMAs (about 90 GFLOP/s on this CPU). Here the output channels are the vector lanes (groups of 64,
 * 4 zmm) and a tile is 2 x 2 output pixels: 16 accumulators; per tap 4 weight loads, 4 broadcasts of input pixels
 * read straight from a zero-padded copy of the image, 16 FMAs. The tile's affine, leaky ReLU and (pool) 2x2 max -
 * the pool window is the tile - run in registers; the results of one row pair are staged [pixel][channel] and
 * transposed 16 x 16 into the NCHW output. Taps are summed in the GEMM's order (ch, ky, kx), one FMA each from
 * zero, and the tail rounds as the GEMM path's (a multiply, then an add). */
#define DIR_MAXC 8
#define DIR_G 64

static int dir_eligible(int64_t c, int64_t k, int64_t pad) { return k == 3 && pad == 1 && c <= DIR_MAXC; }

/* Results are staged [pixel][channel] for a band of output rows, then stored channel by channel: long runs per
 * channel plane, where one row at a time would keep 64 store streams open. Staged pixels per output row: the
 * width, or one more where a tile covers a column past an odd width (no pool). */
static int64_t dir_stage_width(int64_t w, int pool) { return pool ? w / 2 : w + (w & 1); }
/* output rows (pooled rows with pool, else an even count) per band: about 256 KiB of staging */
static int64_t dir_band_rows(int64_t w, int pool) {
    int64_t r = 65536 / (DIR_G * (dir_stage_width(w, pool) > 0 ? dir_stage_width(w, pool) : 1));
    if (!pool) r &= ~(int64_t)1;
    return r < 2 ? 2 : r;
}
/* staging floats per thread (the 16 x 16 transposes read up to 15 pixels past the last one staged) */
static int64_t dir_stage_floats(int64_t w, int pool) {
    return (dir_band_rows(w, pool) * dir_stage_width(w, pool) + 16) * DIR_G;
}

static int64_t dir_groups(int64_t cout) { return (cout + DIR_G - 1) / DIR_G; }

/* shared: packed weights [group][tap][64], scale and shift [group * 64] (zero past cout) */
static size_t dir_shared_floats(int64_t c, int64_t cout) {
    return al16((size_t)(dir_groups(cout) * 9 * c * DIR_G)) + 2 * al16((size_t)(dir_groups(cout) * DIR_G));
}

/* per thread: the padded image c x (h + 3) x (w + 3), then the staging band */
static size_t dir_thread_floats(int64_t c, int64_t h, int64_t w, int pool) {
    return al16((size_t)(c * (h + 3) * (w + 3))) + (size_t)dir_stage_floats(w, pool);
}

typedef struct {
    float *y;
    const float *x, *wp, *sc, *sh;
    float *thread_base;
    int64_t c, h, w, cout;
    float slope;
    int pool;
    size_t per;
} dir_ctx;

#if defined(__x86_64__)
#define DIR_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

/* Staged line sb ([pixel][64], count pixels) into channel rows y + o * plane (o < nch), pixels 0 .. count - 1. */
DIR_AVX512 static void dir_store_line(const float *sb, int64_t count, float *y, int64_t plane, int64_t nch) {
    for (int64_t p0 = 0; p0 < count; p0 += 16) {
        __mmask16 m = count - p0 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (count - p0)) - 1u);
        for (int64_t c0 = 0; c0 < nch; c0 += 16) {
            __m512 r[16];
            for (int i = 0; i < 16; i++) r[i] = _mm512_load_ps(sb + (p0 + i) * DIR_G + c0);
            mml_transpose16_avx512(r);
            int64_t kn = nch - c0 < 16 ? nch - c0 : 16;
            for (int64_t k = 0; k < kn; k++) _mm512_mask_storeu_ps(y + (c0 + k) * plane + p0, m, r[k]);
        }
    }
}

DIR_AVX512 static inline __m512 dir_act(__m512 v, __m512 a, __m512 b, __m512 slope) {
    __m512 z = _mm512_add_ps(_mm512_mul_ps(a, v), b);
    __mmask16 pos = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_GT_OQ);
    return _mm512_mask_blend_ps(pos, _mm512_mul_ps(slope, z), z);
}

/* the pool's tie rule: strict > keeps the first maximum, the first NaN wins and stays */
DIR_AVX512 static inline __m512 dir_take(__m512 best, __m512 v) {
    __mmask16 take = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) |
                     (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q));
    return _mm512_mask_blend_ps(take, best, v);
}

DIR_AVX512 static void dir_image(const dir_ctx *s, int64_t img, float *xp, float *sb) {
    int64_t c = s->c, h = s->h, w = s->w, cout = s->cout, pw_ = w + 3, ph_ = h + 3, taps = 9 * c;
    const float *x = s->x + img * c * h * w;
    memset(xp, 0, (size_t)(c * ph_ * pw_) * sizeof(float));
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t r = 0; r < h; r++)
            memcpy(xp + (ch * ph_ + r + 1) * pw_ + 1, x + (ch * h + r) * w, (size_t)w * sizeof(float));
    int64_t off[9 * DIR_MAXC];
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t ky = 0; ky < 3; ky++)
            for (int64_t kx = 0; kx < 3; kx++) off[ch * 9 + ky * 3 + kx] = (ch * ph_ + ky) * pw_ + kx;
    int64_t oh = s->pool ? h / 2 : h, ow = s->pool ? w / 2 : w;
    int64_t sw = dir_stage_width(w, s->pool), band = dir_band_rows(w, s->pool);
    const __m512 vs = _mm512_set1_ps(s->slope);
    float *yimg = s->y + img * cout * oh * ow;
    for (int64_t g = 0; g * DIR_G < cout; g++) {
        const float *wg = s->wp + g * taps * DIR_G;
        const float *scg = s->sc + g * DIR_G, *shg = s->sh + g * DIR_G;
        int64_t nch = cout - g * DIR_G < DIR_G ? cout - g * DIR_G : DIR_G;
        float *yg = yimg + g * DIR_G * oh * ow;
        for (int64_t r0 = 0; r0 < oh; r0 += band) {
            int64_t nr = oh - r0 < band ? oh - r0 : band; /* output rows of this band */
            /* input-resolution rows covered by the band's tiles: pooled rows r0 .. read rows 2 r0 .., else r0 .. */
            int64_t y_lo = s->pool ? 2 * r0 : r0, y_hi = s->pool ? 2 * (r0 + nr) : r0 + nr;
            for (int64_t y0 = y_lo; y0 < y_hi; y0 += 2) {
                int64_t cols = s->pool ? 2 * ow : w;
                for (int64_t x0 = 0; x0 < cols; x0 += 2) {
                    const float *b = xp + y0 * pw_ + x0;
                    __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00,
                           a12 = a00, a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00,
                           a32 = a00, a33 = a00;
                    for (int64_t t = 0; t < taps; t++) {
                        const float *q = b + off[t], *wt = wg + t * DIR_G;
                        __m512 w0 = _mm512_load_ps(wt), w1 = _mm512_load_ps(wt + 16),
                               w2 = _mm512_load_ps(wt + 32), w3 = _mm512_load_ps(wt + 48);
                        __m512 v = _mm512_set1_ps(q[0]);
                        a00 = _mm512_fmadd_ps(v, w0, a00); a01 = _mm512_fmadd_ps(v, w1, a01);
                        a02 = _mm512_fmadd_ps(v, w2, a02); a03 = _mm512_fmadd_ps(v, w3, a03);
                        v = _mm512_set1_ps(q[1]);
                        a10 = _mm512_fmadd_ps(v, w0, a10); a11 = _mm512_fmadd_ps(v, w1, a11);
                        a12 = _mm512_fmadd_ps(v, w2, a12); a13 = _mm512_fmadd_ps(v, w3, a13);
                        v = _mm512_set1_ps(q[pw_]);
                        a20 = _mm512_fmadd_ps(v, w0, a20); a21 = _mm512_fmadd_ps(v, w1, a21);
                        a22 = _mm512_fmadd_ps(v, w2, a22); a23 = _mm512_fmadd_ps(v, w3, a23);
                        v = _mm512_set1_ps(q[pw_ + 1]);
                        a30 = _mm512_fmadd_ps(v, w0, a30); a31 = _mm512_fmadd_ps(v, w1, a31);
                        a32 = _mm512_fmadd_ps(v, w2, a32); a33 = _mm512_fmadd_ps(v, w3, a33);
                    }
                    /* pixel p of the tile: (y0 + p / 2, x0 + p % 2); acc[p][j] holds channels 16 j .. 16 j + 15 */
                    __m512 acc[4][4] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}, {a20, a21, a22, a23},
                                        {a30, a31, a32, a33}};
                    float *st = s->pool ? sb + ((y0 / 2 - r0) * sw + x0 / 2) * DIR_G
                                        : sb + ((y0 - r0) * sw + x0) * DIR_G;
                    for (int j = 0; j < 4; j++) {
                        __m512 va = _mm512_load_ps(scg + 16 * j), vb = _mm512_load_ps(shg + 16 * j);
                        __m512 v0 = dir_act(acc[0][j], va, vb, vs), v1 = dir_act(acc[1][j], va, vb, vs),
                               v2 = dir_act(acc[2][j], va, vb, vs), v3 = dir_act(acc[3][j], va, vb, vs);
                        if (s->pool) {
                            _mm512_store_ps(st + 16 * j, dir_take(dir_take(dir_take(v0, v1), v2), v3));
                        } else {
                            _mm512_store_ps(st + 16 * j, v0);
                            _mm512_store_ps(st + DIR_G + 16 * j, v1);
                            _mm512_store_ps(st + sw * DIR_G + 16 * j, v2);
                            _mm512_store_ps(st + (sw + 1) * DIR_G + 16 * j, v3);
                        }
                    }
                }
            }
            /* the band's rows are consecutive in every channel plane: one run per channel unless the staging
             * width has the extra column of an odd width */
            if (sw == ow) {
                dir_store_line(sb, nr * ow, yg + r0 * ow, oh * ow, nch);
            } else {
                for (int64_t r = 0; r < nr; r++) dir_store_line(sb + r * sw * DIR_G, ow, yg + (r0 + r) * ow, oh * ow, nch);
            }
        }
    }
}
#endif

static void dir_task(void *ctx, int64_t img, int thread) {
    const dir_ctx *s = (const dir_ctx *)ctx;
#if defined(__x86_64__)
    float *xp = s->thread_base + (size_t)thread * s->per;
    dir_image(s, img, xp, xp + al16((size_t)(s->c * (s->h + 3) * (s->w + 3))));
#else
    (void)s; (void)img; (void)thread;
#endif
}

/* Packs the weights (cout, c, 3, 3) as [group][tap][64] and scale / shift by group, zero past cout, into base;
 * then runs the images. */
static void dir_run(float *y, const float *x, const float *weight, const float *scale, const float *shift, int64_t n,
                    int64_t c, int64_t h, int64_t w, int64_t cout, float slope, int pool, float *base,
                    int32_t nthreads) {
    int64_t taps = 9 * c, groups = dir_groups(cout);
    float *wp = base, *sc = wp + al16((size_t)(groups * taps * DIR_G)), *sh = sc + al16((size_t)(groups * DIR_G));
    memset(base, 0, dir_shared_floats(c, cout) * sizeof(float));
    for (int64_t o = 0; o < cout; o++) {
        int64_t g = o / DIR_G, j = o % DIR_G;
        for (int64_t t = 0; t < taps; t++) wp[(g * taps + t) * DIR_G + j] = weight[o * taps + t];
        sc[o] = scale[o];
        sh[o] = shift[o];
    }
    dir_ctx s;
    memset(&s, 0, sizeof(s));
    s.y = y; s.x = x; s.wp = wp; s.sc = sc; s.sh = sh;
    s.thread_base = base + dir_shared_floats(c, cout);
    s.c = c; s.h = h; s.w = w; s.cout = cout; s.slope = slope; s.pool = pool;
    s.per = dir_thread_floats(c, h, w, pool);
    mml_parallel_for(n, nthreads, dir_task, &s);
}

int64_t mml_conv_block_workspace_floats(int64_t c, int64_t h, int64_t w, int64_t cout, int64_t k, int64_t pad,
                                        int64_t n, int32_t nthreads) {
    if (c <= 0 || h <= 0 || w <= 0 || cout <= 0 || k <= 0 || pad < 0 || n <= 0) return MML_ERR_ARGUMENT;
    int64_t oh = h + 2 * pad - k + 1, ow = w + 2 * pad - k + 1;
    if (oh <= 0 || ow <= 0) return MML_ERR_ARGUMENT;
    size_t per = al16((size_t)(cout * band_rows(cout, ow) * ow)) + al16(mml_nn_sgemm_scratch_floats());
    size_t threads = (size_t)mml_thread_count(nthreads, n), need = per * threads;
    if (dir_eligible(c, k, pad)) {
        size_t direct = dir_shared_floats(c, cout) +
                        (dir_thread_floats(c, h, w, 0) > dir_thread_floats(c, h, w, 1) ? dir_thread_floats(c, h, w, 0)
                                                                                         : dir_thread_floats(c, h, w, 1)) *
                            threads;
        if (direct > need) need = direct;
    }
    return (int64_t)(need + 16);
}

typedef struct {
    float *y, *ws;
    const float *x, *wt, *scale, *shift;
    int64_t c, h, w, cout, k, pad, oh, ow;
    float slope;
    int pool;
    size_t per;
} blk_ctx;

static void blk_task(void *ctx, int64_t img, int thread) {
    blk_ctx *s = (blk_ctx *)ctx;
    float *base = (float *)(((uintptr_t)s->ws + 63) & ~(uintptr_t)63);
    float *z = base + (size_t)thread * s->per;
    int64_t kk = s->c * s->k * s->k;
    int64_t rows = band_rows(s->cout, s->ow);
    float *gs = z + al16((size_t)(s->cout * rows * s->ow));
    mml_im2col_src src = {s->x + img * s->c * s->h * s->w, s->c, s->h, s->w, s->k, s->k, 1, s->pad, s->oh, s->ow, 0};
    mml_nn_matrix wm = {s->wt, kk, 0};
    int64_t ph = s->pool ? s->oh / 2 : s->oh, pw = s->pool ? s->ow / 2 : s->ow;
    float *yn = s->y + img * s->cout * ph * pw;
    for (int64_t r0 = 0; r0 < s->oh; r0 += rows) {
        int64_t nr = s->oh - r0 < rows ? s->oh - r0 : rows, bp = nr * s->ow;
        src.q0 = r0 * s->ow;
        mml_nn_sgemm_packed(s->cout, bp, kk, 1.0f, mml_nn_pack_a_matrix, &wm, mml_im2col_pack_b, &src, 0.0f, z, bp,
                            gs);
        for (int64_t o = 0; o < s->cout; o++) {
            float a = s->scale[o], b = s->shift[o], sl = s->slope;
            const float *zo = z + o * bp;
            if (s->pool) {
                /* the training kernel's tail: same activation rounding and max-pool tie rule */
                if (nr >= 2)
                    mml_nn_affine_leaky_pool2x2_plane(zo, yn + o * ph * pw + (r0 / 2) * pw, NULL, nr, s->ow, a, b, sl);
            } else {
                float *yo = yn + o * ph * pw + r0 * pw;
                for (int64_t i = 0; i < bp; i++) {
                    float v = a * zo[i] + b;
                    yo[i] = v > 0.0f ? v : sl * v;
                }
            }
        }
    }
}

int mml_conv_block_forward_f32(float *y, const float *x, const float *weight, const float *scale, const float *shift,
                               int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout, int64_t k, int64_t pad,
                               float slope, int32_t pool, float *workspace, int64_t workspace_floats,
                               int32_t nthreads) {
    if (!y || !x || !weight || !scale || !shift) return MML_ERR_ARGUMENT;
    int64_t need = mml_conv_block_workspace_floats(c, h, w, cout, k, pad, n, nthreads);
    if (need < 0) return MML_ERR_ARGUMENT;
    float *owned;
    int acquired = mml_nn_acquire_workspace(&workspace, &owned, workspace_floats, need);
    if (acquired != MML_OK) return acquired;
#if defined(__x86_64__)
    if (dir_eligible(c, k, pad) && mml_nn_have_avx512()) {
        dir_run(y, x, weight, scale, shift, n, c, h, w, cout, slope, pool != 0,
                (float *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63), nthreads);
        free(owned);
        return MML_OK;
    }
#endif
    blk_ctx s;
    memset(&s, 0, sizeof(s));
    s.y = y; s.ws = workspace; s.x = x; s.wt = weight; s.scale = scale; s.shift = shift;
    s.c = c; s.h = h; s.w = w; s.cout = cout; s.k = k; s.pad = pad;
    s.oh = h + 2 * pad - k + 1;
    s.ow = w + 2 * pad - k + 1;
    s.slope = slope;
    s.pool = pool != 0;
    s.per = al16((size_t)(cout * band_rows(cout, s.ow) * s.ow)) + al16(mml_nn_sgemm_scratch_floats());
    mml_parallel_for(n, nthreads, blk_task, &s);
    free(owned);
    return MML_OK;
}
