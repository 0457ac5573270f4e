/*
 * The one parallel-for of MMLKernels (common/parallel.c). Every kernel that runs threads (top-K, Gaussian
 * statistics and distances, the layer and conv kernels) goes through it. Not part of the public API.
 *
 * Determinism: a task's work and outputs may depend only on its index, never on which thread runs it; `thread`
 * only selects per-thread scratch. Partial results that must be combined are kept per task (or per fixed chunk
 * of tasks) and summed by the caller in task order. So any thread count gives bit-identical results.
 */
#ifndef MML_PARALLEL_H
#define MML_PARALLEL_H

#include <stdint.h>

/* Most threads one call uses (bounds per-thread scratch). */
#define MML_MAX_THREADS 64

/* One task: index `task` in [0, n_tasks), run on thread `thread` in [0, threads used). */
typedef void (*mml_task_fn)(void *ctx, int64_t task, int thread);

/* The thread count mml_parallel_for uses for n_tasks tasks: n_threads (0 = all online cores), at most
 * MML_MAX_THREADS and n_tasks, at least 1. Size per-thread scratch with it. */
int mml_thread_count(int32_t n_threads, int64_t n_tasks);

/* Runs fn(ctx, task, thread) once for every task in [0, n_tasks) on mml_thread_count(n_threads, n_tasks)
 * threads, the calling thread being thread 0; returns when all tasks are done. Tasks are handed out in index
 * order from a shared counter (dynamic scheduling: a slow task does not hold up the others). One thread runs
 * everything inline, without creating any. A thread that cannot be created is not used: the others take its
 * tasks, so the work is always done. Threads live for one call only (nothing lingers to compete with OpenBLAS's
 * pool). Returns the number of threads that ran (>= 1). */
int mml_parallel_for(int64_t n_tasks, int32_t n_threads, mml_task_fn fn, void *ctx);

/* Stores value into *status when *status is still 0 (MML_OK), atomically: the first error of any task wins. */
void mml_keep_first_status(int *status, int value);

#endif /* MML_PARALLEL_H */
