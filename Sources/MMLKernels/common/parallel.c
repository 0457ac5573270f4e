/* The one fork-join parallel-for of MMLKernels over pthreads (see mml_parallel.h). Threads are created per call:
 * a kernel call runs for milliseconds, the ~20 us to start a thread is noise, and nothing lingers between calls
 * (so it never competes with OpenBLAS's own pool while a BLAS call runs elsewhere). */
#include "mml_parallel.h"
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

typedef struct {
    mml_task_fn fn;
    void *ctx;
    int64_t n_tasks;
    _Atomic int64_t next;
} parallel_job;

typedef struct {
    parallel_job *job;
    int thread;
} parallel_worker;

static void run_tasks(parallel_job *job, int thread) {
    for (;;) {
        int64_t t = atomic_fetch_add(&job->next, 1);
        if (t >= job->n_tasks) return;
        job->fn(job->ctx, t, thread);
    }
}

static void *worker_main(void *arg) {
    parallel_worker *w = arg;
    run_tasks(w->job, w->thread);
    return NULL;
}

int mml_thread_count(int32_t n_threads, int64_t n_tasks) {
    long n = n_threads;
    if (n <= 0) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
        if (n < 1) n = 1;
    }
    if (n > MML_MAX_THREADS) n = MML_MAX_THREADS;
    if (n > n_tasks) n = (long)n_tasks;
    return n < 1 ? 1 : (int)n;
}

int mml_parallel_for(int64_t n_tasks, int32_t n_threads, mml_task_fn fn, void *ctx) {
    if (n_tasks <= 0) return 1;
    int n = mml_thread_count(n_threads, n_tasks);
    parallel_job job = {.fn = fn, .ctx = ctx, .n_tasks = n_tasks};
    atomic_init(&job.next, 0);
    if (n == 1) {
        run_tasks(&job, 0);
        return 1;
    }
    pthread_t tids[MML_MAX_THREADS];
    parallel_worker workers[MML_MAX_THREADS];
    int started = 0;
    for (int t = 1; t < n; t++) {
        workers[t] = (parallel_worker){.job = &job, .thread = t};
        if (pthread_create(&tids[t], NULL, worker_main, &workers[t]) != 0) break;
        started = t;
    }
    run_tasks(&job, 0);
    for (int t = 1; t <= started; t++) pthread_join(tids[t], NULL);
    return started + 1;
}

void mml_keep_first_status(int *status, int value) {
    int expected = 0;
    __atomic_compare_exchange_n(status, &expected, value, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
