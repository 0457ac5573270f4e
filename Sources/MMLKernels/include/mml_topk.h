/*
 * mml_topk.h: grouped top-K similarity (pixel and part levels) and row L2 normalisation (topk/).
 * Part of MMLKernels (include/MMLKernels.h includes every family header); conventions in mml_common.h.
 */
#ifndef MML_TOPK_H
#define MML_TOPK_H

#include "mml_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- grouped top-K similarity
 *
 * The pixel- and part-level core (DN4 image-to-class, METHOD.md 2.1 / 2.2).
 * Q: m x d query rows. R: n x d reference rows, row j belongs to group[j] in [0, n_groups).
 * For every query row i and every group g:
 *     out[i * n_groups + g] = sum of the k largest dot(Q_i, R_j) over the rows j of group g.
 * Every group must hold at least k rows (else MML_ERR_K_TOO_LARGE); k >= 1.
 * Optional per-row outputs for training (pass NULL to skip): sel_idx (m x n_groups x k int32) the indices j
 * of the selected rows and sel_val (m x n_groups x k float) their inner products, both ordered from the
 * largest value down; ties are broken towards the smaller index j.
 * The m x n product is never held in memory: R is packed once by group into 64-column panels, and each thread
 * computes 6-row x 512-column tiles of the product in registers / L1 and keeps a running top-k per (row, group).
 * Groups need not be contiguous (rows are regrouped while packing, at no extra cost).
 * Results are identical for every nthreads (each product is computed the same way whichever thread owns the row).
 * Errors: m, n, d, n_groups <= 0, k < 1, nthreads < 0, a NULL out/Q/R/group, or a group id outside
 * [0, n_groups) -> MML_ERR_ARGUMENT; k larger than some group (including an empty one) -> MML_ERR_K_TOO_LARGE;
 * NaN/Inf in Q or R, or finite inputs whose products overflow float -> MML_ERR_NONFINITE. On error the outputs
 * are unspecified.
 * Code path: AVX-512 when mml_cpu_features() reports AVX512F/BW/VL/DQ + FMA + OS support, portable C otherwise.
 * The environment variable MML_KERNELS_ISA=portable (read at every call) forces the portable path (tests use it).
 * Scratch: a packed copy of R (about n * d floats, 64-byte aligned) plus O(nthreads * (96 * n_groups * k + 3072))
 * floats and ints, allocated per call; MML_ERR_NOMEM when they cannot be had.
 */
int mml_group_topk_sim_f32(float *out, int32_t *sel_idx, float *sel_val,
                           const float *Q, int64_t m, const float *R, int64_t n, int64_t d,
                           const int32_t *group, int32_t n_groups, int32_t k, int32_t nthreads);
int mml_group_topk_sim_naive(double *out, int32_t *sel_idx, double *sel_val,
                             const float *Q, int64_t m, const float *R, int64_t n, int64_t d,
                             const int32_t *group, int32_t n_groups, int32_t k);

/* The same contract with bf16 products (opt-in reduced precision for evaluation; no backward, since training
 * stays fp32): Q and R stay float in memory and are rounded inside the call to bf16 (mml_bf16_from_f32: round to
 * nearest even, fp32 denormals to zero), packed as pairs; every dot product is accumulated in fp32 over the
 * pairs p = 0..ceil(d/2)-1 in order in ONE accumulator (an odd d is padded with a zero), each pair adding
 *     acc = FTZ(fma(q[2p+1], r[2p+1], acc));  acc = FTZ(fma(q[2p], r[2p], acc))
 * (odd element first; fma a single rounding to nearest even; FTZ: a denormal result becomes a zero of its sign),
 * which is exactly what one VDPBF16PS lane does (Intel SDM; checked bit for bit on Emerald Rapids by
 * scripts/check-vdpbf16ps.c). bf16 x bf16 products are exact in fp32, so only the additions round.
 * Code path: AVX512-BF16 (VDPBF16PS) when mml_cpu_features() reports AVX512_BF16 on top of the AVX-512 set the f32
 * kernel needs, else a portable C path (slow: two fmaf calls per pair) that gives the SAME bits; MML_KERNELS_ISA=
 * portable forces it. mml_group_topk_sim_bf16_isa() names the path a call would take ("avx512bf16" or
 * "portable"). So results are identical for every nthreads and both paths; they differ from the f32 kernel's by
 * the bf16 rounding of the inputs (relative ~2^-9 per element; on unit descriptors a sum of k dot products moves
 * by ~1e-3 k). sel_val holds the bf16 products as computed; the selection rule and ties are the f32 kernel's.
 * Errors as mml_group_topk_sim_f32; MML_ERR_NONFINITE also when a finite input rounds to bf16 Inf (|x| >=
 * 0x1.ffp127). Scratch: the packed R (about n * d / 2 uint32) plus, per thread, the f32 kernel's state and its
 * block of query rows as bf16 pairs (<= 6144 / d * d / 2 + 3 uint32). */
int mml_group_topk_sim_bf16(float *out, int32_t *sel_idx, float *sel_val,
                            const float *Q, int64_t m, const float *R, int64_t n, int64_t d,
                            const int32_t *group, int32_t n_groups, int32_t k, int32_t nthreads);
/* "avx512bf16" or "portable": the path mml_group_topk_sim_bf16 takes now (reads MML_KERNELS_ISA). Static string. */
const char *mml_group_topk_sim_bf16_isa(void);
/* The same contract with bf16 products in the summation order of Intel AMX's TDPBF16PS (opt-in for evaluation, like
 * mml_group_topk_sim_bf16, whose inputs, rounding and selection it shares; only the order of the additions
 * differs). The pairs p = 0..ceil(d/2)-1 (an odd d padded with a zero) are padded with zero pairs to a multiple of
 * 16 and taken in blocks of 16; in a block the even elements and the odd elements are summed in two separate chains,
 * each from +0 in pair order, and their sum goes into the dot product's accumulator (from +0, block by block):
 *     e = +0; o = +0;  for the block's pairs p:  e = FTZ(fma(q[2p], r[2p], e));  o = FTZ(fma(q[2p+1], r[2p+1], o))
 *     acc = FTZ(acc + FTZ(e + o))
 * (each a single rounding to nearest even; FTZ as above). That is exactly what one TDPBF16PS per block does
 * (checked bit for bit on Emerald Rapids by scripts/check-amx-bf16.c), and NOT what VDPBF16PS does: about a third
 * of the d = 64 dot products of unit descriptors differ from mml_group_topk_sim_bf16's in their last bits.
 * Code path: AMX (TDPBF16PS, 16-row x 64-column tiles) when mml_amx_status() is 1 and the AVX-512 set of the f32
 * kernel is there (the selection is AVX-512), else a portable C path (slow: two fmaf calls per pair) that gives the
 * SAME bits; MML_KERNELS_ISA=portable forces it. mml_group_topk_sim_bf16amx_isa() names the path ("amx" or
 * "portable"). Results are identical for every nthreads and both paths. Errors as mml_group_topk_sim_bf16.
 * Scratch: the packed R (about n * ceil(d/32) * 16 uint32) plus, per thread, the f32 kernel's state and its block
 * of query rows as padded bf16 pairs. */
int mml_group_topk_sim_bf16amx(float *out, int32_t *sel_idx, float *sel_val,
                               const float *Q, int64_t m, const float *R, int64_t n, int64_t d,
                               const int32_t *group, int32_t n_groups, int32_t k, int32_t nthreads);
/* "amx" or "portable": the path mml_group_topk_sim_bf16amx takes now (reads MML_KERNELS_ISA). Static string. */
const char *mml_group_topk_sim_bf16amx_isa(void);
/* fp32 -> bf16 bits (the upper 16 bits of a float) as the bf16 kernel rounds its inputs, the same as
 * VCVTNEPS2BF16: round to nearest, ties to even; fp32 denormals -> a zero of their sign; +-Inf unchanged; NaN ->
 * NaN with the upper payload kept and the quiet bit (0x0040) set; finite values of magnitude >= 0x1.ffp127 -> Inf. */
uint16_t mml_bf16_from_f32(float x);

/* Backward of mml_group_topk_sim_f32 given the selected indices: for every (i, g) and each of its k selections j,
 *     dQ[i] += dout[i*n_groups+g] * R[j]   and   dR[j] += dout[i*n_groups+g] * Q[i].
 * dQ (m x d) and dR (n x d) are accumulated into (+=); either may be NULL to skip it. n_threads threads (0: all
 * cores); every row of dQ and dR adds its terms in ascending (i, g, t) order whatever the thread count, so the
 * bits do not depend on it. A sel_idx entry outside [0, n), n > INT32_MAX or a size <= 0 -> MML_ERR_ARGUMENT. */
int mml_group_topk_sim_backward_f32(float *dQ, float *dR, const float *dout, const int32_t *sel_idx,
                                    const float *Q, int64_t m, const float *R, int64_t n, int64_t d,
                                    int32_t n_groups, int32_t k, int32_t n_threads);

/* ---------------------------------------------------------------- row L2 normalisation
 *
 * y_i = x_i / max(||x_i||, eps) for rows x_i of length d (as torch.nn.functional.normalize).
 * norms (rows floats, optional) receives ||x_i||. In-place (y == x) is allowed. Checks x for non-finite values
 * (MML_ERR_NONFINITE; rows before the bad one are already written). rows, d <= 0 or eps <= 0 -> MML_ERR_ARGUMENT.
 */
int mml_l2_normalize_rows_f32(float *y, float *norms, const float *x, int64_t rows, int64_t d, float eps);
int mml_l2_normalize_rows_naive(double *y, const float *x, int64_t rows, int64_t d, double eps);
/* Backward: dx = (dy - y (y . dy)) / ||x|| where ||x|| > eps, else dy / eps. dx is overwritten; norms is
 * required (the forward pass's). n_threads threads (0: all cores); each row depends on itself only. */
int mml_l2_normalize_rows_backward_f32(float *dx, const float *dy, const float *y, const float *norms,
                                       int64_t rows, int64_t d, float eps, int32_t n_threads);

/* Columns of a channel-major map: for each of `count` images stored as d x hw (CHW), write the hw descriptors
 * as rows (hw x d) into out, L2-normalised over d when normalize != 0. out holds count*hw rows of d floats;
 * norms (optional, count*hw floats) receives each row's norm before normalisation. Checks maps for NaN/Inf
 * (MML_ERR_NONFINITE; which other images are written is then unspecified). One task per image on n_threads
 * threads (0: all cores). */
int mml_maps_to_rows_f32(float *out, float *norms, const float *maps, int64_t count, int64_t d, int64_t hw,
                         int normalize, float eps, int32_t n_threads);
/* The inverse layout change: count images of hw rows of d floats back to d x hw channel-major maps. */
int mml_rows_to_maps_f32(float *maps, const float *rows, int64_t count, int64_t d, int64_t hw, int32_t n_threads);

/* The part level's region pooling (METHOD.md 2.2): maps (count, c, h, w) -> regions (count, R, c) with R the sum
 * of g*g over grids; region i of g over n cells spans floor(i n / g) ..< ceil((i + 1) n / g) (adaptive pooling),
 * grids in order, row-major inside a grid; a region's value is its cells' sum (row by row) times 1 / cells.
 * Backward: dmaps (overwritten) = each region's gradient times 1 / cells added to its cells, regions in order.
 * A grid size outside 1 ... min(h, w), no grids or a size <= 0 -> MML_ERR_ARGUMENT. One task per image. */
int mml_region_pool_f32(float *regions, const float *maps, int64_t count, int64_t c, int64_t h, int64_t w,
                        const int32_t *grids, int32_t n_grids, int32_t n_threads);
int mml_region_pool_backward_f32(float *dmaps, const float *dregions, int64_t count, int64_t c, int64_t h, int64_t w,
                                 const int32_t *grids, int32_t n_grids, int32_t n_threads);

#ifdef __cplusplus
}
#endif

#endif /* MML_TOPK_H */
