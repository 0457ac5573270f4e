/* Row L2 normalisation (as torch.nn.functional.normalize over the last dimension) and the CHW-map to
 * descriptor-row conversion that feeds the pixel level (METHOD.md 2.1).
 *
 *     y_i = x_i / max(||x_i||, eps)
 *     backward, ||x_i|| > eps:  dx_i = (dy_i - y_i <y_i, dy_i>) / ||x_i||   (the Jacobian (I - y y^T) / ||x||)
 *     backward, ||x_i|| <= eps: dx_i = dy_i / eps                            (y = x / eps is linear there)
 * Squared norms are summed in double: a float sum of squares of finite floats cannot overflow in double, so a
 * non-finite sum means the row held NaN or Inf, which doubles as the input check.
 */
#include "MMLKernels.h"
#include "mml_parallel.h"
#include <math.h>

static double row_sumsq(const float *x, int64_t d) {
    double s0 = 0.0, s1 = 0.0;
    int64_t p = 0;
    for (; p + 2 <= d; p += 2) {
        s0 += (double)x[p] * x[p];
        s1 += (double)x[p + 1] * x[p + 1];
    }
    if (p < d) s0 += (double)x[p] * x[p];
    return s0 + s1;
}

int mml_l2_normalize_rows_f32(float *y, float *norms, const float *x, int64_t rows, int64_t d, float eps) {
    if (!y || !x || rows <= 0 || d <= 0 || !(eps > 0.0f) || !isfinite(eps)) return MML_ERR_ARGUMENT;
    for (int64_t i = 0; i < rows; i++) {
        const float *xi = x + i * d;
        double ss = row_sumsq(xi, d);
        if (!isfinite(ss)) return MML_ERR_NONFINITE;
        double nrm = sqrt(ss);
        float scale = (float)(1.0 / (nrm > eps ? nrm : (double)eps));
        float *yi = y + i * d;
        for (int64_t p = 0; p < d; p++) yi[p] = xi[p] * scale;
        if (norms) norms[i] = (float)nrm;
    }
    return MML_OK;
}

int mml_l2_normalize_rows_naive(double *y, const float *x, int64_t rows, int64_t d, double eps) {
    if (!y || !x || rows <= 0 || d <= 0 || !(eps > 0.0)) return MML_ERR_ARGUMENT;
    for (int64_t i = 0; i < rows; i++) {
        double ss = 0.0;
        for (int64_t p = 0; p < d; p++) {
            if (!isfinite(x[i * d + p])) return MML_ERR_NONFINITE;
            ss += (double)x[i * d + p] * (double)x[i * d + p];
        }
        double nrm = sqrt(ss);
        double den = nrm > eps ? nrm : eps;
        for (int64_t p = 0; p < d; p++) y[i * d + p] = (double)x[i * d + p] / den;
    }
    return MML_OK;
}

/* Rows per task of the row-wise kernels below (each row's result depends on that row only). */
#define ROWS_PER_TASK 256

typedef struct {
    float *dx;
    const float *dy, *y, *norms;
    int64_t rows, d;
    float eps;
} l2bwd_ctx;

static void l2bwd_task(void *vctx, int64_t task, int thread) {
    (void)thread;
    const l2bwd_ctx *c = vctx;
    const int64_t d = c->d, i1 = (task + 1) * ROWS_PER_TASK < c->rows ? (task + 1) * ROWS_PER_TASK : c->rows;
    for (int64_t i = task * ROWS_PER_TASK; i < i1; i++) {
        const float *yi = c->y + i * d, *gi = c->dy + i * d;
        float *dxi = c->dx + i * d;
        if (c->norms[i] > c->eps) {
            double dot = 0.0;
            for (int64_t p = 0; p < d; p++) dot += (double)yi[p] * gi[p];
            const float inv = (float)(1.0 / c->norms[i]), yd = (float)dot;
            for (int64_t p = 0; p < d; p++) dxi[p] = (gi[p] - yi[p] * yd) * inv;
        } else {
            const float inv = 1.0f / c->eps;
            for (int64_t p = 0; p < d; p++) dxi[p] = gi[p] * inv;
        }
    }
}

int mml_l2_normalize_rows_backward_f32(float *dx, const float *dy, const float *y, const float *norms,
                                       int64_t rows, int64_t d, float eps, int32_t n_threads) {
    if (!dx || !dy || !y || !norms || rows <= 0 || d <= 0 || !(eps > 0.0f)) return MML_ERR_ARGUMENT;
    l2bwd_ctx c = {.dx = dx, .dy = dy, .y = y, .norms = norms, .rows = rows, .d = d, .eps = eps};
    mml_parallel_for((rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK, n_threads, l2bwd_task, &c);
    return MML_OK;
}

typedef struct {
    float *out, *norms;
    const float *maps;
    int64_t d, hw;
    int normalize;
    float eps;
    int status;
} m2r_ctx;

/* One image between its d x hw map (channel-major; descriptor s is column s) and its hw x d rows, in tiles of 16
 * positions so that the strided accesses of a tile share cache lines. */
static void transpose_image(float *rows, float *map, int64_t d, int64_t hw, int to_rows) {
    for (int64_t s0 = 0; s0 < hw; s0 += 16) {
        int64_t s1 = s0 + 16 < hw ? s0 + 16 : hw;
        for (int64_t ch = 0; ch < d; ch++)
            for (int64_t s = s0; s < s1; s++) {
                if (to_rows) rows[s * d + ch] = map[ch * hw + s];
                else map[ch * hw + s] = rows[s * d + ch];
            }
    }
}

static void m2r_task(void *vctx, int64_t img, int thread) {
    (void)thread;
    m2r_ctx *c = vctx;
    const int64_t d = c->d, hw = c->hw;
    float *dst = c->out + img * hw * d;
    transpose_image(dst, (float *)(c->maps + img * d * hw), d, hw, 1);
    for (int64_t s = 0; s < hw; s++) {
        float *row = dst + s * d;
        double ss = row_sumsq(row, d);
        if (!isfinite(ss)) {
            mml_keep_first_status(&c->status, MML_ERR_NONFINITE);
            return;
        }
        double nrm = sqrt(ss);
        if (c->norms) c->norms[img * hw + s] = (float)nrm;
        if (c->normalize) {
            float scale = (float)(1.0 / (nrm > c->eps ? nrm : (double)c->eps));
            for (int64_t p = 0; p < d; p++) row[p] *= scale;
        }
    }
}

int mml_maps_to_rows_f32(float *out, float *norms, const float *maps, int64_t count, int64_t d, int64_t hw,
                         int normalize, float eps, int32_t n_threads) {
    if (!out || !maps || count <= 0 || d <= 0 || hw <= 0) return MML_ERR_ARGUMENT;
    if (normalize && (!(eps > 0.0f) || !isfinite(eps))) return MML_ERR_ARGUMENT;
    m2r_ctx c = {.out = out, .norms = norms, .maps = maps, .d = d, .hw = hw, .normalize = normalize, .eps = eps};
    mml_parallel_for(count, n_threads, m2r_task, &c);
    return c.status;
}

typedef struct {
    float *maps;
    const float *rows;
    int64_t d, hw;
} r2m_ctx;

static void r2m_task(void *vctx, int64_t img, int thread) {
    (void)thread;
    const r2m_ctx *c = vctx;
    const int64_t d = c->d, hw = c->hw;
    transpose_image((float *)(c->rows + img * hw * d), c->maps + img * d * hw, d, hw, 0);
}

int mml_rows_to_maps_f32(float *maps, const float *rows, int64_t count, int64_t d, int64_t hw, int32_t n_threads) {
    if (!maps || !rows || count <= 0 || d <= 0 || hw <= 0) return MML_ERR_ARGUMENT;
    r2m_ctx c = {.maps = maps, .rows = rows, .d = d, .hw = hw};
    mml_parallel_for(count, n_threads, r2m_task, &c);
    return MML_OK;
}

/* Region pooling of the part level (METHOD.md 2.2): for each g of grids, the g x g regions with adaptive bounds
 * floor(i n / g) ..< ceil((i + 1) n / g), grid by grid, row-major inside a grid; each region's channel sums its
 * cells row by row, then is multiplied by 1 / (cells); the backward adds each region's gradient times 1 / (cells)
 * to its cells, regions in order. One task per image. */
typedef struct {
    float *regions, *maps;       /* forward writes regions, backward maps */
    const float *in;             /* forward: maps; backward: the regions' gradients */
    int64_t c, h, w, per;
    const int32_t *grids;
    int32_t n_grids;
    int backward;
} region_ctx;

static int64_t lo_bound(int64_t i, int64_t g, int64_t n) { return i * n / g; }
static int64_t hi_bound(int64_t i, int64_t g, int64_t n) { return ((i + 1) * n + g - 1) / g; }

static void region_task(void *vctx, int64_t img, int thread) {
    (void)thread;
    const region_ctx *c = vctx;
    const int64_t ch_n = c->c, h = c->h, w = c->w;
    float *dmaps = c->backward ? c->maps + img * ch_n * h * w : NULL;
    if (dmaps)
        for (int64_t q = 0; q < ch_n * h * w; q++) dmaps[q] = 0.0f;
    int64_t region = 0;
    for (int32_t gi = 0; gi < c->n_grids; gi++) {
        const int64_t g = c->grids[gi];
        for (int64_t gy = 0; gy < g; gy++)
            for (int64_t gx = 0; gx < g; gx++, region++) {
                const int64_t y0 = lo_bound(gy, g, h), y1 = hi_bound(gy, g, h);
                const int64_t x0 = lo_bound(gx, g, w), x1 = hi_bound(gx, g, w);
                const float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));
                for (int64_t ch = 0; ch < ch_n; ch++) {
                    if (dmaps) {
                        const float v = c->in[(img * c->per + region) * ch_n + ch] * inv;
                        float *plane = dmaps + ch * h * w;
                        for (int64_t y = y0; y < y1; y++)
                            for (int64_t x = x0; x < x1; x++) plane[y * w + x] += v;
                    } else {
                        const float *plane = c->in + (img * ch_n + ch) * h * w;
                        float s = 0.0f;
                        for (int64_t y = y0; y < y1; y++)
                            for (int64_t x = x0; x < x1; x++) s += plane[y * w + x];
                        c->regions[(img * c->per + region) * ch_n + ch] = s * inv;
                    }
                }
            }
    }
}

/* Checks the sizes and grids (each in 1 ... min(h, w)) and runs the forward or backward tasks. */
static int region_run(float *out, const float *in, int64_t count, int64_t c, int64_t h, int64_t w,
                      const int32_t *grids, int32_t n_grids, int32_t n_threads, int backward) {
    if (!out || !in || count <= 0 || c <= 0 || h <= 0 || w <= 0 || !grids || n_grids <= 0) return MML_ERR_ARGUMENT;
    int64_t per = 0;
    for (int32_t i = 0; i < n_grids; i++) {
        if (grids[i] < 1 || grids[i] > h || grids[i] > w) return MML_ERR_ARGUMENT;
        per += (int64_t)grids[i] * grids[i];
    }
    region_ctx ctx = {.regions = backward ? NULL : out, .maps = backward ? out : NULL, .in = in, .c = c, .h = h,
                      .w = w, .per = per, .grids = grids, .n_grids = n_grids, .backward = backward};
    mml_parallel_for(count, n_threads, region_task, &ctx);
    return MML_OK;
}

int mml_region_pool_f32(float *regions, const float *maps, int64_t count, int64_t c, int64_t h, int64_t w,
                        const int32_t *grids, int32_t n_grids, int32_t n_threads) {
    return region_run(regions, maps, count, c, h, w, grids, n_grids, n_threads, 0);
}

int mml_region_pool_backward_f32(float *dmaps, const float *dregions, int64_t count, int64_t c, int64_t h, int64_t w,
                                 const int32_t *grids, int32_t n_grids, int32_t n_threads) {
    return region_run(dmaps, dregions, count, c, h, w, grids, n_grids, n_threads, 1);
}
