/* A per-call pthread work queue for the Gaussian kernels: tasks are handed out by an atomic counter, so every
 * task runs once; results never depend on which thread ran a task (each task writes only its own outputs). */
#include "gauss_internal.h"
#include "MMLKernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <string.h>

int mml_gauss_resolve_threads(int32_t nthreads, int64_t ntasks) {
    long n = nthreads;
    if (n <= 0) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
        if (n < 1) n = 1;
    }
    if (n > ntasks) n = (long)ntasks;
    if (n > 256) n = 256;
    return n < 1 ? 1 : (int)n;
}

typedef struct {
    atomic_llong next;
    int64_t ntasks;
    mml_gauss_task_fn fn;
    void *ctx;
} queue_t;

typedef struct {
    queue_t *q;
    int tid;
} worker_t;

static void drain(queue_t *q, int tid) {
    for (;;) {
        long long t = atomic_fetch_add(&q->next, 1);
        if (t >= q->ntasks) return;
        q->fn(q->ctx, (int64_t)t, tid);
    }
}

static void *worker_main(void *arg) {
    worker_t *w = (worker_t *)arg;
    drain(w->q, w->tid);
    return NULL;
}

void mml_gauss_parallel(int nthreads, int64_t ntasks, mml_gauss_task_fn fn, void *ctx) {
    queue_t q;
    atomic_init(&q.next, 0);
    q.ntasks = ntasks;
    q.fn = fn;
    q.ctx = ctx;
    if (nthreads > 256) nthreads = 256;
    pthread_t th[256];
    worker_t w[256];
    int started[256] = {0};
    for (int t = 1; t < nthreads; t++) {
        w[t].q = &q;
        w[t].tid = t;
        started[t] = pthread_create(&th[t], NULL, worker_main, &w[t]) == 0;
    }
    drain(&q, 0);
    for (int t = 1; t < nthreads; t++)
        if (started[t]) pthread_join(th[t], NULL);
}

void mml_gauss_set_status(int *status, int value) {
    int expected = 0;
    __atomic_compare_exchange_n(status, &expected, value, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

int mml_gauss_all_finite(const float *x, int64_t count) {
    /* NaN and Inf are the floats whose exponent bits are all ones; an integer OR-reduction vectorises. */
    uint32_t bad = 0;
    for (int64_t i = 0; i < count; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}
