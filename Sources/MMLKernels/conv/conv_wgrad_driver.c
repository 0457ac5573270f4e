/* The shared driver of the 3x3 weight gradients (see conv_wgrad_driver.h). */
#include "conv_wgrad_driver.h"
#include "MMLKernels.h"
#include "nn_internal.h"
#include <stdlib.h>

static int64_t wgrad_chunks(int64_t n) { return n < MML_WGRAD_CHUNKS ? n : MML_WGRAD_CHUNKS; }

int64_t mml_wgrad_workspace_floats(const mml_wgrad_kernel *kernel, int64_t n, int64_t c, int64_t h, int64_t w,
                                   int64_t cout, int32_t nthreads) {
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || cout <= 0 || nthreads < 0) return MML_ERR_ARGUMENT;
    int64_t chunks = wgrad_chunks(n);
    int threads = mml_thread_count(nthreads, chunks);
    return (int64_t)(kernel->partial_floats(c, h, w, cout) * (size_t)chunks +
                     kernel->scratch_floats(c, h, w, cout) * (size_t)threads + 16);
}

typedef struct {
    const mml_wgrad_kernel *kernel;
    mml_wgrad_job job;
} wgrad_ctx;

static void wgrad_task(void *ctx, int64_t chunk, int thread) {
    const wgrad_ctx *s = (const wgrad_ctx *)ctx;
    const mml_wgrad_job *job = &s->job;
    float *partial = mml_wgrad_partial(job, chunk);
    float *scratch = mml_wgrad_partial(job, job->chunks) + (size_t)thread * job->scratch;
    int64_t i0 = chunk * job->n / job->chunks, i1 = (chunk + 1) * job->n / job->chunks;
    for (int64_t img = i0; img < i1; img++) s->kernel->image(job, img, img == i0, partial, scratch);
}

int mml_wgrad_run(const mml_wgrad_kernel *kernel, float *dweight, const float *dy, const float *x, int64_t n,
                  int64_t c, int64_t h, int64_t w, int64_t cout, float *workspace, int64_t workspace_floats,
                  int32_t nthreads) {
    if (!dweight || !dy || !x) return MML_ERR_ARGUMENT;
    int64_t need = mml_wgrad_workspace_floats(kernel, n, c, h, w, cout, nthreads);
    if (need < 0) return MML_ERR_ARGUMENT;
    float *owned;
    int acquired = mml_nn_acquire_workspace(&workspace, &owned, workspace_floats, need);
    if (acquired != MML_OK) return acquired;
    wgrad_ctx s = {kernel,
                   {dy, x, n, c, h, w, cout, wgrad_chunks(n), kernel->partial_floats(c, h, w, cout),
                    kernel->scratch_floats(c, h, w, cout), (float *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63)}};
    mml_parallel_for(s.job.chunks, nthreads, wgrad_task, &s);
    kernel->reduce(&s.job, dweight);
    free(owned);
    return MML_OK;
}
