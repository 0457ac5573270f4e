/*
 * mml_conv.h: convolution (conv/): im2col + GEMM, Winograd F(2x2) / F(4x4), the Winograd weight gradient
 * and the fused inference blocks.
 * Part of MMLKernels (include/MMLKernels.h includes every family header); conventions in mml_common.h.
 */
#ifndef MML_CONV_H
#define MML_CONV_H

#include "mml_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Maps are NCHW float32, contiguous; threads and determinism as for the layer kernels (mml_nn.h). */

/* im2col for one c x h x w image: col is (c*kh*kw) x (oh*ow), oh = (h + 2 pad - kh) / stride + 1.
 * col2im is its adjoint: x (c x h x w) is overwritten with the sum of the col entries that read each pixel. */
void mml_im2col_f32(float *col, const float *x, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw,
                    int64_t stride, int64_t pad);
void mml_col2im_f32(float *x, const float *col, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw,
                    int64_t stride, int64_t pad);

/* Floats of workspace the conv forward / backward need for these sizes and thread count (negative: bad sizes). */
int64_t mml_conv2d_workspace_floats(int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout, int64_t kh,
                                    int64_t kw, int64_t stride, int64_t pad, int32_t nthreads);
/* y (n, cout, oh, ow) = conv(x (n, c, h, w), weight (cout, c, kh, kw)) + bias (cout, may be NULL), zero padding.
 * workspace: NULL (allocated per call) or at least mml_conv2d_workspace_floats(...) floats, reused by the caller. */
int mml_conv2d_forward_f32(float *y, const float *x, const float *weight, const float *bias, int64_t n, int64_t c,
                           int64_t h, int64_t w, int64_t cout, int64_t kh, int64_t kw, int64_t stride, int64_t pad,
                           float *workspace, int64_t workspace_floats, int32_t nthreads);
/* Backward: dx (overwritten), dweight and dbias (accumulated +=); any of the three may be NULL. */
int mml_conv2d_backward_f32(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                            const float *weight, int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout,
                            int64_t kh, int64_t kw, int64_t stride, int64_t pad, float *workspace,
                            int64_t workspace_floats, int32_t nthreads);
/* Weight gradient of the 3x3, stride-1, padding-1 convolution y (n, cout, h, w) = conv(x (n, c, h, w), weight
 * (cout, c, 3, 3)) by Winograd F(2x2, 3x3) (conv_wgrad.c): dweight += dL/dweight for the output gradient dy.
 * Same result as mml_conv2d_backward_f32's dweight up to float rounding, with 2.25x fewer multiplies; the same
 * bits for any thread count. workspace: NULL (allocated per call) or at least
 * mml_conv3x3_wgrad_workspace_floats(...) floats. Errors: a NULL tensor, a size <= 0 or nthreads < 0 ->
 * MML_ERR_ARGUMENT (the workspace function returns it); a workspace smaller than needed -> MML_ERR_ARGUMENT;
 * allocation failure -> MML_ERR_NOMEM. */
int64_t mml_conv3x3_wgrad_workspace_floats(int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout,
                                           int32_t nthreads);
int mml_conv3x3_winograd_backward_weight_f32(float *dweight, const float *dy, const float *x, int64_t n, int64_t c,
                                             int64_t h, int64_t w, int64_t cout, float *workspace,
                                             int64_t workspace_floats, int32_t nthreads);
/* The same weight gradient for few input channels (a network's first layer: c = 1 or 3) by direct accumulation
 * (conv_wgrad_direct.c): 16 output pixels to a vector, (channel, tap) accumulators in registers, FMA chains in a
 * fixed order, so the AVX-512 and portable paths and any thread count give the same bits. dweight += dL/dweight;
 * any c works, but above about 8 channels the Winograd kernel is faster. workspace: NULL (allocated per call) or
 * at least mml_conv3x3_direct_wgrad_workspace_floats(...) floats. Errors as the Winograd weight gradient. */
int64_t mml_conv3x3_direct_wgrad_workspace_floats(int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout,
                                                  int32_t nthreads);
int mml_conv3x3_direct_backward_weight_f32(float *dweight, const float *dy, const float *x, int64_t n, int64_t c,
                                           int64_t h, int64_t w, int64_t cout, float *workspace,
                                           int64_t workspace_floats, int32_t nthreads);
int mml_conv2d_naive(double *y, const float *x, const float *weight, const float *bias, int64_t n, int64_t c,
                     int64_t h, int64_t w, int64_t cout, int64_t kh, int64_t kw, int64_t stride, int64_t pad);
/* Naive backward: dx, dweight, dbias overwritten (any may be NULL). */
int mml_conv2d_backward_naive(double *dx, double *dweight, double *dbias, const float *dy, const float *x,
                              const float *weight, int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout,
                              int64_t kh, int64_t kw, int64_t stride, int64_t pad);

/* 3x3 convolution, stride 1, zero padding 1, no bias, by Winograd minimal filtering F(2x2, 3x3) (conv_winograd.c):
 * the same result as mml_conv2d_forward_f32 with kh = kw = 3, stride 1, pad 1, bias NULL, up to float rounding
 * (the transforms add a little: measured max error 1.6e-7 of max|x| * max_o sum |weight[o]|, the scale of any
 * output, over the shapes of ConvKernelWinogradTests). x (n, c, h, w), weight (cout, c, 3, 3), y (n, cout, h, w);
 * any h, w >= 1.
 * Weights are transformed once per call; each image's input is transformed into 16 matrices (c x tiles) in the
 * GEMM's packed layout, multiplied by the 16 transformed weight matrices, and transformed back, in blocks of
 * tiles that stay in L2. Threads split the batch by image; 1 or 2 threads give identical bits.
 * workspace: NULL (allocated per call) or at least mml_conv3x3_winograd_workspace_floats(...) floats; the same
 * count serves the forward and the backward-data call for these sizes and nthreads.
 * Errors: a NULL tensor, a size <= 0 or nthreads < 0 -> MML_ERR_ARGUMENT (the workspace function returns it);
 * a workspace smaller than needed -> MML_ERR_ARGUMENT; allocation failure -> MML_ERR_NOMEM. */
int64_t mml_conv3x3_winograd_workspace_floats(int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout,
                                              int32_t nthreads);
int mml_conv3x3_winograd_forward_f32(float *y, const float *x, const float *weight, int64_t n, int64_t c, int64_t h,
                                     int64_t w, int64_t cout, float *workspace, int64_t workspace_floats,
                                     int32_t nthreads);
/* Backward data of the above: dx (n, c, h, w, overwritten) = dL/dx given dy (n, cout, h, w), i.e. the same 3x3
 * pad-1 convolution of dy with the weight transposed in (cout, c) and rotated by 180 degrees. Same sizes,
 * workspace and errors as the forward. (dW: mml_conv3x3_winograd_backward_weight_f32, conv_wgrad.c.) */
int mml_conv3x3_winograd_backward_data_f32(float *dx, const float *dy, const float *weight, int64_t n, int64_t c,
                                           int64_t h, int64_t w, int64_t cout, float *workspace,
                                           int64_t workspace_floats, int32_t nthreads);

/* The F(2x2) forward with the inference block tail folded into its output transform: y = leaky(scale[o] * conv +
 * shift[o], slope), then (pool != 0) a 2x2 / stride-2 max-pool (floor mode), y (n, cout, h/2, w/2); else y
 * (n, cout, h, w). Same values as mml_conv3x3_winograd_forward_f32 followed by mml_affine_leaky_maxpool2x2_f32 /
 * mml_channel_affine_f32, without writing the full-size conv output. Same workspace. */
int mml_conv3x3_winograd_forward_affine_leaky_f32(float *y, const float *x, const float *weight, const float *scale,
                                                  const float *shift, float slope, int32_t pool, int64_t n, int64_t c,
                                                  int64_t h, int64_t w, int64_t cout, float *workspace,
                                                  int64_t workspace_floats, int32_t nthreads);

/* The same kernels with the output tile size as a parameter: tile 2 is F(2x2, 3x3) (the functions above),
 * tile 4 is F(4x4, 3x3): 6x6 input tiles, 36 GEMMs for 16 outputs per tile instead of 16 for 4 (1.8x fewer
 * multiplications) but larger transform coefficients: measured max error 2.9e-6 of the output scale (tile 2:
 * 1.6e-7; ConvKernelWinogradTests). Tiles are packed 32 to a GEMM panel per image, so tile 4 pays off where an
 * image has many tiles: mml_conv3x3_winograd_preferred_tile says which one to use.
 * tile other than 2 or 4 -> MML_ERR_ARGUMENT. The workspace count depends on the tile. */
int64_t mml_conv3x3_winograd_tile_workspace_floats(int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout,
                                                   int32_t tile, int32_t nthreads);
int mml_conv3x3_winograd_tile_forward_f32(float *y, const float *x, const float *weight, int64_t n, int64_t c,
                                          int64_t h, int64_t w, int64_t cout, int32_t tile, float *workspace,
                                          int64_t workspace_floats, int32_t nthreads);
int mml_conv3x3_winograd_tile_backward_data_f32(float *dx, const float *dy, const float *weight, int64_t n,
                                                int64_t c, int64_t h, int64_t w, int64_t cout, int32_t tile,
                                                float *workspace, int64_t workspace_floats, int32_t nthreads);
int mml_conv3x3_winograd_tile_forward_affine_leaky_f32(float *y, const float *x, const float *weight,
                                                       const float *scale, const float *shift, float slope,
                                                       int32_t pool, int64_t n, int64_t c, int64_t h, int64_t w,
                                                       int64_t cout, int32_t tile, float *workspace,
                                                       int64_t workspace_floats, int32_t nthreads);
/* 4 when F(4x4) needs at most 0.8 times the GEMM work of F(2x2) on an h x w map (counting the 32-tile panels
 * padded), else 2: 4 at 42x42 and 84x84, 2 at 21x21 and below. */
int32_t mml_conv3x3_winograd_preferred_tile(int64_t h, int64_t w);

/* Inference block, one image at a time in cache: y = maxpool2x2?(leaky(scale[o] * conv(x, weight) + shift[o])),
 * a stride-1 k x k conv with zero padding `pad` (the folded BatchNorm: scale = gamma / sqrt(var + eps),
 * shift = beta - mean * scale). pool != 0 halves H and W (floor). Workspace as for the conv (NULL: per call).
 * With AVX-512, k = 3, pad = 1 and c <= 8 (a network's first layer) it runs a direct kernel with the tail in
 * registers; otherwise an im2col-free GEMM per band of output rows with the tail applied while the band is in L2. */
int64_t mml_conv_block_workspace_floats(int64_t c, int64_t h, int64_t w, int64_t cout, int64_t k, int64_t pad,
                                        int64_t n, int32_t nthreads);
int mml_conv_block_forward_f32(float *y, const float *x, const float *weight, const float *scale, const float *shift,
                               int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout, int64_t k, int64_t pad,
                               float slope, int32_t pool, float *workspace, int64_t workspace_floats,
                               int32_t nthreads);

#ifdef __cplusplus
}
#endif

#endif /* MML_CONV_H */
