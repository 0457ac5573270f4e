/* A minimal fork-join parallel loop over pthreads, for the layer kernels. Threads are created per call: a conv
 * layer call runs for milliseconds, the ~20 us to start a thread is noise, and nothing lingers between calls
 * (so it never competes with OpenBLAS's own pool while a BLAS call runs elsewhere). */
#include "nn_internal.h"
#include "MMLKernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define MML_NN_MAX_THREADS 64

typedef struct {
    void (*fn)(void *, int64_t, int);
    void *ctx;
    int64_t ntasks;
    _Atomic int64_t next;
} pool_job;

typedef struct {
    pool_job *job;
    int thread;
} pool_arg;

static void run_tasks(pool_job *job, int thread) {
    for (;;) {
        int64_t t = atomic_fetch_add(&job->next, 1);
        if (t >= job->ntasks) break;
        job->fn(job->ctx, t, thread);
    }
}

static void *pool_main(void *p) {
    pool_arg *a = (pool_arg *)p;
    run_tasks(a->job, a->thread);
    return NULL;
}

int mml_nn_thread_count(int32_t nthreads, int64_t ntasks) {
    long n = nthreads;
    if (n <= 0) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
        if (n < 1) n = 1;
    }
    if (n > MML_NN_MAX_THREADS) n = MML_NN_MAX_THREADS;
    if (n > ntasks) n = (long)ntasks;
    if (n < 1) n = 1;
    return (int)n;
}

int mml_nn_parallel_for(int32_t nthreads, int64_t ntasks, void (*fn)(void *, int64_t, int), void *ctx) {
    if (ntasks <= 0) return 1;
    int n = mml_nn_thread_count(nthreads, ntasks);
    pool_job job = {fn, ctx, ntasks, 0};
    if (n == 1) {
        run_tasks(&job, 0);
        return 1;
    }
    pthread_t tids[MML_NN_MAX_THREADS];
    pool_arg args[MML_NN_MAX_THREADS];
    int started = 0;
    for (int t = 1; t < n; t++) {
        args[t].job = &job;
        args[t].thread = t;
        if (pthread_create(&tids[t], NULL, pool_main, &args[t]) != 0) break;
        started = t;
    }
    run_tasks(&job, 0);
    for (int t = 1; t <= started; t++) pthread_join(tids[t], NULL);
    return started + 1;
}

static _Atomic int force_portable = 0;

void mml_layers_force_portable(int32_t on) { force_portable = on != 0; }

int mml_nn_have_avx512(void) {
    static int cached = -1;
    if (force_portable) return 0;
    if (cached < 0) {
        uint32_t f = mml_cpu_features();
        uint32_t need = MML_CPU_AVX512F | MML_CPU_AVX512BW | MML_CPU_AVX512VL | MML_CPU_AVX512DQ | MML_CPU_OS_AVX512;
        cached = (f & need) == need;
    }
    return cached;
}

#if defined(__GLIBC__)
#include <malloc.h>
#endif
void mml_release_freed_memory(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}
