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

/* Backward of the above given the selected indices: for every (i, g) and each of its k selections j,
 *     dQ[i] += dout[i*n_groups+g] * R[j]   and   dR[j] += dout[i*n_groups+g] * Q[i].
 * dQ (m x d) and dR (n x d) are accumulated into (+=); either may be NULL to skip it. Single-threaded.
 * A sel_idx entry outside [0, n) or a size <= 0 -> MML_ERR_ARGUMENT. */
int mml_group_topk_sim_backward_f32(float *dQ, float *dR, const float *dout, const int32_t *sel_idx,
                                    const float *Q, int64_t m, const float *R, int64_t n, int64_t d,
                                    int32_t n_groups, int32_t k);

/* ---------------------------------------------------------------- row L2 normalisation
 *
 * y_i = x_i / max(||x_i||, eps) for rows x_i of length d (as torch.nn.functional.normalize).
 * norms (rows floats, optional) receives ||x_i||. In-place (y == x) is allowed. Checks x for non-finite values
 * (MML_ERR_NONFINITE; rows before the bad one are already written). rows, d <= 0 or eps <= 0 -> MML_ERR_ARGUMENT.
 */
int mml_l2_normalize_rows_f32(float *y, float *norms, const float *x, int64_t rows, int64_t d, float eps);
int mml_l2_normalize_rows_naive(double *y, const float *x, int64_t rows, int64_t d, double eps);
/* Backward: dx = (dy - y (y . dy)) / ||x|| where ||x|| > eps, else dy / eps. dx is overwritten; norms is
 * required (the forward pass's). */
int mml_l2_normalize_rows_backward_f32(float *dx, const float *dy, const float *y, const float *norms,
                                       int64_t rows, int64_t d, float eps);

/* Columns of a channel-major map: for each of `count` images stored as d x hw (CHW), write the hw descriptors
 * as rows (hw x d) into out, L2-normalised over d when normalize != 0. out holds count*hw rows of d floats;
 * norms (optional, count*hw floats) receives each row's norm before normalisation. Checks maps for NaN/Inf. */
int mml_maps_to_rows_f32(float *out, float *norms, const float *maps, int64_t count, int64_t d, int64_t hw,
                         int normalize, float eps);

#ifdef __cplusplus
}
#endif

#endif /* MML_TOPK_H */
