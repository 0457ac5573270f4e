/* Private helpers shared by the conv / nn kernels (not part of the public API). */
#ifndef MML_NN_INTERNAL_H
#define MML_NN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Run fn(ctx, task, thread) for task = 0 .. ntasks-1 on up to nthreads threads (0 = all online cores).
 * Tasks are taken dynamically; `thread` (0 .. used-1) selects per-thread scratch. Results must depend only on
 * the task index, never on the thread, so that any thread count gives identical numbers.
 * Returns the number of threads used (>= 1), or MML_ERR_NOMEM... never: falls back to the calling thread. */
int mml_nn_parallel_for(int32_t nthreads, int64_t ntasks, void (*fn)(void *ctx, int64_t task, int thread),
                        void *ctx);
/* The thread count mml_nn_parallel_for would use for ntasks tasks. */
int mml_nn_thread_count(int32_t nthreads, int64_t ntasks);

/* True when the AVX-512 kernels can run on this CPU (checked once). */
int mml_nn_have_avx512(void);

/* Floats of scratch that mml_nn_sgemm needs. */
size_t mml_nn_sgemm_scratch_floats(void);
/* Single-threaded row-major C = alpha * op(A) op(B) + beta * C with op(A): m x k, op(B): k x n.
 * trans_a: A is stored k x m (lda >= m); trans_b: B is stored n x k (ldb >= k). beta == 0 never reads C.
 * scratch: mml_nn_sgemm_scratch_floats() floats, 64-byte aligned. */
void mml_nn_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                  int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc, float *scratch);

/* Micro-tile of mml_nn_sgemm: MR rows of A by NR columns of B. */
#define MML_NN_MR 8
#define MML_NN_NR 32
/* C (m x n, row-major, ldc) = A B from operands the caller has already packed over the whole of k:
 *   pa: ceil(m / MML_NN_MR) row panels, panel r at pa + r * MML_NN_MR * k, laid out [p][MML_NN_MR] (p < k);
 *       rows past m must be finite (zero).
 *   pb: ceil(n / MML_NN_NR) column panels, panel q at pb + q * MML_NN_NR * k, laid out [p][MML_NN_NR];
 *       64-byte aligned; columns past n are read but never stored.
 * C is overwritten (never read). Same micro-kernels and dispatch as mml_nn_sgemm, single-threaded, no scratch. */
void mml_nn_sgemm_prepacked(int64_t m, int64_t n, int64_t k, const float *pa, const float *pb, float *c,
                            int64_t ldc);

/* Vectorised plane reductions (fixed summation order, see nn_reduce.c): s1 = sum a[i]; s2 = sum a[i] (b[i] - m)
 * when b != NULL, else sum (a[i] - m)^2. */
void mml_nn_reduce(const float *a, const float *b, int64_t n, float m, float *s1, float *s2);

#endif
