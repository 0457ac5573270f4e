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

int mml_l2_normalize_rows_backward_f32(float *dx, const float *dy, const float *y, const float *norms,
                                       int64_t rows, int64_t d, float eps) {
    if (!dx || !dy || !y || !norms || rows <= 0 || d <= 0 || !(eps > 0.0f)) return MML_ERR_ARGUMENT;
    for (int64_t i = 0; i < rows; i++) {
        const float *yi = y + i * d, *gi = dy + i * d;
        float *dxi = dx + i * d;
        if (norms[i] > eps) {
            double dot = 0.0;
            for (int64_t p = 0; p < d; p++) dot += (double)yi[p] * gi[p];
            const float inv = (float)(1.0 / norms[i]), yd = (float)dot;
            for (int64_t p = 0; p < d; p++) dxi[p] = (gi[p] - yi[p] * yd) * inv;
        } else {
            const float inv = 1.0f / eps;
            for (int64_t p = 0; p < d; p++) dxi[p] = gi[p] * inv;
        }
    }
    return MML_OK;
}

/* Image i's map is d x hw (channel-major); its descriptor s is column s. Transposed one image at a time, in
 * tiles of 16 positions so that the strided reads of a tile share cache lines. */
int mml_maps_to_rows_f32(float *out, float *norms, const float *maps, int64_t count, int64_t d, int64_t hw,
                         int normalize, float eps) {
    if (!out || !maps || count <= 0 || d <= 0 || hw <= 0) return MML_ERR_ARGUMENT;
    if (normalize && (!(eps > 0.0f) || !isfinite(eps))) return MML_ERR_ARGUMENT;
    for (int64_t img = 0; img < count; img++) {
        const float *src = maps + img * d * hw;
        float *dst = out + img * hw * d;
        for (int64_t s0 = 0; s0 < hw; s0 += 16) {
            int64_t s1 = s0 + 16 < hw ? s0 + 16 : hw;
            for (int64_t c = 0; c < d; c++)
                for (int64_t s = s0; s < s1; s++) dst[s * d + c] = src[c * hw + s];
        }
        for (int64_t s = 0; s < hw; s++) {
            float *row = dst + s * d;
            double ss = row_sumsq(row, d);
            if (!isfinite(ss)) return MML_ERR_NONFINITE;
            double nrm = sqrt(ss);
            if (norms) norms[img * hw + s] = (float)nrm;
            if (normalize) {
                float scale = (float)(1.0 / (nrm > eps ? nrm : (double)eps));
                for (int64_t p = 0; p < d; p++) row[p] *= scale;
            }
        }
    }
    return MML_OK;
}
