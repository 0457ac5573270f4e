/* Inference-mode Conv3x3 -> per-channel affine (folded BatchNorm) -> LeakyReLU -> optional 2x2 max-pool, one image
 * at a time and within it one band of output rows at a time, so that the conv output never leaves L2: the forward
 * pass of Conv-64F / Conv-4 blocks without the full-size intermediate maps (at 84x84x64 they are 1.8 MB per image,
 * more than this CPU's L2). The receptive fields are packed straight from the image (implicit im2col). */
#include "MMLKernels.h"
#include "nn_internal.h"
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

int64_t mml_conv_block_workspace_floats(int64_t c, int64_t h, int64_t w, int64_t cout, int64_t k, int64_t pad,
                                        int64_t n, int32_t nthreads) {
    if (c <= 0 || h <= 0 || w <= 0 || cout <= 0 || k <= 0 || pad < 0 || n <= 0) return MML_ERR_ARGUMENT;
    int64_t oh = h + 2 * pad - k + 1, ow = w + 2 * pad - k + 1;
    if (oh <= 0 || ow <= 0) return MML_ERR_ARGUMENT;
    size_t per = al16((size_t)(cout * band_rows(cout, ow) * ow)) + al16(mml_nn_sgemm_scratch_floats());
    return (int64_t)(per * (size_t)mml_nn_thread_count(nthreads, n) + 16);
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
    blk_ctx s;
    memset(&s, 0, sizeof(s));
    s.y = y; s.ws = workspace; s.x = x; s.wt = weight; s.scale = scale; s.shift = shift;
    s.c = c; s.h = h; s.w = w; s.cout = cout; s.k = k; s.pad = pad;
    s.oh = h + 2 * pad - k + 1;
    s.ow = w + 2 * pad - k + 1;
    s.slope = slope;
    s.pool = pool != 0;
    s.per = al16((size_t)(cout * band_rows(cout, s.ow) * s.ow)) + al16(mml_nn_sgemm_scratch_floats());
    mml_nn_parallel_for(nthreads, n, blk_task, &s);
    free(owned);
    return MML_OK;
}
