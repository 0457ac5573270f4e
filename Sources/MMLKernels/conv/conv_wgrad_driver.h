/* The driver the 3x3 weight gradients share (conv_wgrad.c: Winograd F(2x2, 3x3); conv_wgrad_direct.c: direct
 * accumulation); not part of the public API. Images are split into MML_WGRAD_CHUNKS fixed chunks; one parallel task
 * per chunk adds its images, in order, into the chunk's own partial sums, using its thread's scratch; the kernel
 * then adds the partials into dweight in chunk order. A chunk's work depends only on its index, so any thread
 * count gives the same bits. Workspace: [chunks x partial][threads x scratch], from a 64-byte aligned base. */
#ifndef MML_CONV_WGRAD_DRIVER_H
#define MML_CONV_WGRAD_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#define MML_WGRAD_CHUNKS 4

typedef struct mml_wgrad_job mml_wgrad_job;

/* What a weight-gradient kernel brings to the driver. */
typedef struct {
    /* Floats of one chunk's partial sums and of one thread's scratch (multiples of 16). */
    size_t (*partial_floats)(int64_t c, int64_t h, int64_t w, int64_t cout);
    size_t (*scratch_floats)(int64_t c, int64_t h, int64_t w, int64_t cout);
    /* Adds image img into partial; first: the chunk's first image (partial holds garbage until it is written). */
    void (*image)(const mml_wgrad_job *job, int64_t img, int first, float *partial, float *scratch);
    /* dweight += the chunks' partials (mml_wgrad_partial), summed in chunk order. */
    void (*reduce)(const mml_wgrad_job *job, float *dweight);
} mml_wgrad_kernel;

/* One call: the sizes and the workspace layout the kernel's steps see. */
struct mml_wgrad_job {
    const float *dy, *x;
    int64_t n, c, h, w, cout, chunks;
    size_t partial, scratch; /* floats per chunk, per thread */
    float *base;             /* 64-byte aligned start of the partials */
};

/* Chunk `chunk`'s partial sums. */
static inline float *mml_wgrad_partial(const mml_wgrad_job *job, int64_t chunk) {
    return job->base + (size_t)chunk * job->partial;
}

/* Floats of workspace for these sizes and thread count; MML_ERR_ARGUMENT for a size <= 0 or nthreads < 0. */
int64_t mml_wgrad_workspace_floats(const mml_wgrad_kernel *kernel, int64_t n, int64_t c, int64_t h, int64_t w,
                                   int64_t cout, int32_t nthreads);
/* dweight (cout, c, 3, 3) += dL/dweight of x (n, c, h, w) and dy (n, cout, h, w) by `kernel`. workspace: NULL
 * (allocated per call) or at least mml_wgrad_workspace_floats(...) floats. Errors: a NULL tensor or bad sizes ->
 * MML_ERR_ARGUMENT, a short workspace -> MML_ERR_ARGUMENT, allocation failure -> MML_ERR_NOMEM. */
int mml_wgrad_run(const mml_wgrad_kernel *kernel, float *dweight, const float *dy, const float *x, int64_t n,
                  int64_t c, int64_t h, int64_t w, int64_t cout, float *workspace, int64_t workspace_floats,
                  int32_t nthreads);

#endif /* MML_CONV_WGRAD_DRIVER_H */
