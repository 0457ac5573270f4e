/* 3x3 stride-1 pad-1 convolution by Winograd minimal filtering F(2x2, 3x3), and F(4x4, 3x3) as an option
 * (Lavin & Gray 2016).
 *
 * The output is cut into 2x2 tiles; tile (ty, tx) reads the 4x4 patch d of the zero-padded input whose top-left
 * corner is padded pixel (2 ty, 2 tx), and
 *     Y_tile = A^T [ (G g G^T) .* (B^T d B) ] A,
 *     B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
 *     A^T = [1 1 1 0; 0 1 -1 -1].
 * Summed over input channels, the 16 elementwise products become 16 GEMMs M_xi = U_xi V_xi with
 * U_xi (cout x cin) the transformed weights and V_xi (cin x tiles) the transformed input, one per position xi of
 * the 4x4 transformed tile.
 *
 * Per call the weights are transformed once (in double, rounded to float) straight into the GEMM's packed A
 * layout. Per image, block by block of tiles (sized so that V and M stay in L2): for each input channel, the rows
 * the block reads are copied to a zero-padded, even/odd de-interleaved form in which each of a tile's 16 inputs
 * is contiguous over the tile index (wg_pad_rows), and the input transform writes the 16 V_xi from it directly in
 * the packed B-panel layout of mml_nn_sgemm_prepacked; the 16 GEMMs write M_xi (cout x block, row-major); the
 * output transform crops the 2x2 tiles into y.
 * The input and output transforms are additions only, written as plain loops over 32 tiles that the compiler
 * vectorises; the whole per-image path is compiled three times (AVX-512 target, AVX2 + FMA, baseline) and picked
 * at run time like the GEMM micro-kernel, and on AVX-512 the short row copies (de-interleaving an image row,
 * interleaving the 2x2 results into the output rows, cropping odd edges) use permutes with masked loads and stores.
 * The 16 V_xi (and M_xi) are one cache line more than a multiple of 4 KiB apart: 16 streams exactly 16 KiB
 * apart (c = 64, 64 tiles) would share an L1 set and cost twice the transform time. The transforms are additions in
 * the same order on both paths; the GEMM micro-kernel (FMA or not) is what changes the rounding. On an AVX-512 core
 * at c = cout = 64, 42x42, a per-phase timer gave the GEMMs about 3/4 of the time (about 110 GFLOP/s) and the
 * transforms 1/4.
 *
 * F(4x4, 3x3) (tile 4, the *_tile_* entry points) uses the same blocking and GEMMs with 6x6 input tiles at padded
 * (4 ty, 4 tx), 36 V_xi / M_xi, and B^T, G, A^T of Lavin & Gray applied as two passes of 1-D transforms
 * (wg4_bt_run6 / wg4_at_run); its padding and transforms are plain loops on both paths.
 *
 * Backward data: dx = the same convolution of dy with the weight transposed in (cout, c) and rotated 180
 * degrees, so it runs the same machinery with the roles of c and cout exchanged.
 *
 * Threads split the batch image by image; each image's arithmetic is fixed by the sizes alone (the tile block
 * size depends on c and cout only, and a GEMM column never depends on the others), so any thread count gives the
 * same bits. */
#include "MMLKernels.h"
#include "nn_internal.h"
#include <stdlib.h>
#include <string.h>

#define WG_MR MML_NN_MR
#define WG_NR MML_NN_NR
/* Floats of V and M blocks per thread (about 512 KB: the blocks stay in L2 between transform, GEMM and
 * output transform). */
#define WG_BLOCK_FLOATS 131072
#define WG_VEC _Pragma("clang loop vectorize(assume_safety) interleave(enable)")

#if defined(__x86_64__)
#include <immintrin.h>
#define WG_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

/* Lanes lo <= k < hi of 16 (clipped to 0 .. 16). */
static inline __mmask16 wg_lanes(int64_t lo, int64_t hi) {
    if (lo < 0) lo = 0;
    if (hi > 16) hi = 16;
    if (hi <= lo) return 0;
    return (__mmask16)((((uint32_t)1 << hi) - 1u) & ~(((uint32_t)1 << lo) - 1u));
}

/* src[s + k] for k = 0..15 where 0 <= s + k < w, else 0 (masked lanes are never read). */
WG_AVX512 static inline __m512 wg_load_row(const float *src, int64_t s, int64_t w) {
    return _mm512_maskz_loadu_ps(wg_lanes(-s, w - s), src + s);
}

/* One image row of w floats into the four plane rows of tw floats (see wg_pad_rows):
 * a[i] = src[2i - 1], c[i] = src[2i] (even / odd elements of the pair loaded at 2i - 1),
 * b[i] = src[2i + 1], d[i] = src[2i + 2] (of the pair loaded at 2i + 1), zero outside the row. */
WG_AVX512 static void wg_pad_row_avx512(float *a, float *b, float *c, float *d, const float *src, int64_t w,
                                        int64_t tw) {
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int64_t i0 = 0; i0 < tw; i0 += 16) {
        __mmask16 st = wg_lanes(0, tw - i0);
        int64_t s = 2 * i0;
        __m512 l0 = wg_load_row(src, s - 1, w), l1 = wg_load_row(src, s + 15, w);
        __m512 r0 = wg_load_row(src, s + 1, w), r1 = wg_load_row(src, s + 17, w);
        _mm512_mask_storeu_ps(a + i0, st, _mm512_permutex2var_ps(l0, ev, l1));
        _mm512_mask_storeu_ps(c + i0, st, _mm512_permutex2var_ps(l0, od, l1));
        _mm512_mask_storeu_ps(b + i0, st, _mm512_permutex2var_ps(r0, ev, r1));
        _mm512_mask_storeu_ps(d + i0, st, _mm512_permutex2var_ps(r0, od, r1));
    }
}

/* row[2k] = a[k], row[2k + 1] = b[k] for the first ncol columns (ncol <= 2 len), len tiles. */
WG_AVX512 static void wg_interleave_avx512(float *row, const float *a, const float *b, int64_t len,
                                           int64_t ncol) {
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (int64_t k0 = 0; k0 < len; k0 += 16) {
        __mmask16 ld = wg_lanes(0, len - k0);
        __m512 va = _mm512_maskz_loadu_ps(ld, a + k0), vb = _mm512_maskz_loadu_ps(ld, b + k0);
        int64_t left = ncol - 2 * k0;
        _mm512_mask_storeu_ps(row + 2 * k0, wg_lanes(0, left), _mm512_permutex2var_ps(va, lo, vb));
        _mm512_mask_storeu_ps(row + 2 * k0 + 16, wg_lanes(0, left - 16), _mm512_permutex2var_ps(va, hi, vb));
    }
}

/* F(4x4): one image row into the six plane rows p[c] (c = 0..5, see wg4_pad_rows): p[c][i] = src[4 i + c - 1],
 * zero outside the row. 64 + 2 floats per 16 tiles: four loads split by stride 4 in two rounds of two-source
 * permutes, and columns 4, 5 (the next tile's 0, 1) shifted in from a fifth load. */
WG_AVX512 static void wg4_pad_row_avx512(float *const p[6], const float *src, int64_t w, int64_t tw) {
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512i n0 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    const __m512i n1 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17);
    for (int64_t i0 = 0; i0 < tw; i0 += 16) {
        __mmask16 st = wg_lanes(0, tw - i0);
        int64_t s = 4 * i0 - 1;
        __m512 l0 = wg_load_row(src, s, w), l1 = wg_load_row(src, s + 16, w), l2 = wg_load_row(src, s + 32, w),
               l3 = wg_load_row(src, s + 48, w), l4 = wg_load_row(src, s + 64, w);
        __m512 e01 = _mm512_permutex2var_ps(l0, ev, l1), o01 = _mm512_permutex2var_ps(l0, od, l1);
        __m512 e23 = _mm512_permutex2var_ps(l2, ev, l3), o23 = _mm512_permutex2var_ps(l2, od, l3);
        __m512 q0 = _mm512_permutex2var_ps(e01, ev, e23), q2 = _mm512_permutex2var_ps(e01, od, e23);
        __m512 q1 = _mm512_permutex2var_ps(o01, ev, o23), q3 = _mm512_permutex2var_ps(o01, od, o23);
        _mm512_mask_storeu_ps(p[0] + i0, st, q0);
        _mm512_mask_storeu_ps(p[1] + i0, st, q1);
        _mm512_mask_storeu_ps(p[2] + i0, st, q2);
        _mm512_mask_storeu_ps(p[3] + i0, st, q3);
        _mm512_mask_storeu_ps(p[4] + i0, st, _mm512_permutex2var_ps(q0, n0, l4));
        _mm512_mask_storeu_ps(p[5] + i0, st, _mm512_permutex2var_ps(q1, n1, l4));
    }
}

/* row[4k + j] = a_j[k] (j = 0..3) for the first ncol columns (ncol <= 4 len), len tiles. */
WG_AVX512 static void wg4_interleave_avx512(float *row, const float *a0, const float *a1, const float *a2,
                                            const float *a3, int64_t len, int64_t ncol) {
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512i q0 = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    const __m512i q1 = _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    for (int64_t k0 = 0; k0 < len; k0 += 16) {
        __mmask16 ld = wg_lanes(0, len - k0);
        __m512 v0 = _mm512_maskz_loadu_ps(ld, a0 + k0), v1 = _mm512_maskz_loadu_ps(ld, a1 + k0);
        __m512 v2 = _mm512_maskz_loadu_ps(ld, a2 + k0), v3 = _mm512_maskz_loadu_ps(ld, a3 + k0);
        __m512 p01l = _mm512_permutex2var_ps(v0, lo, v1), p01h = _mm512_permutex2var_ps(v0, hi, v1);
        __m512 p23l = _mm512_permutex2var_ps(v2, lo, v3), p23h = _mm512_permutex2var_ps(v2, hi, v3);
        int64_t left = ncol - 4 * k0;
        float *r = row + 4 * k0;
        _mm512_mask_storeu_ps(r, wg_lanes(0, left), _mm512_permutex2var_ps(p01l, q0, p23l));
        _mm512_mask_storeu_ps(r + 16, wg_lanes(0, left - 16), _mm512_permutex2var_ps(p01l, q1, p23l));
        _mm512_mask_storeu_ps(r + 32, wg_lanes(0, left - 32), _mm512_permutex2var_ps(p01h, q0, p23h));
        _mm512_mask_storeu_ps(r + 48, wg_lanes(0, left - 48), _mm512_permutex2var_ps(p01h, q1, p23h));
    }
}
#endif

static size_t wg_align16(size_t f) { return (f + 15) & ~(size_t)15; }

static int64_t wg_round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

/* Tiles from t (at column tx of its tile row) to the end of that row or of the block [.., end), whichever is first:
 * one run of consecutive tiles whose outputs are consecutive in the image rows. */
static inline int64_t wg_run_len(int64_t t, int64_t tx, int64_t end, int64_t tw) {
    return tw - tx < end - t ? tw - tx : end - t;
}

/* Geometry of one direction of the convolution: cin input channels -> cout output channels, h x w maps. */
typedef struct {
    int64_t cin, cout, h, w;
    int64_t m, a, nxi;     /* output tile m x m, input tile a x a (a = m + 2), nxi = a * a GEMMs */
    int64_t th, tw, tiles; /* tile rows, tile columns, tiles per image (tile t = ty * tw + tx) */
    int64_t tb;            /* tiles per block, a multiple of WG_NR */
    int64_t plane;         /* floats per de-interleaved plane (see wg_pad_rows) */
    int64_t mp;            /* cout rounded up to WG_MR */
    size_t vs, ms;         /* floats from one V_xi / M_xi to the next */
    size_t u_floats, xp_floats, v_floats, m_floats, y_floats, per_thread;
} wg_geom;

static wg_geom wg_make_geom(int64_t cin, int64_t cout, int64_t h, int64_t w, int64_t m) {
    wg_geom g;
    g.cin = cin; g.cout = cout; g.h = h; g.w = w;
    g.m = m; g.a = m + 2; g.nxi = g.a * g.a;
    g.th = (h + m - 1) / m; g.tw = (w + m - 1) / m; g.tiles = g.th * g.tw;
    int64_t tb = WG_BLOCK_FLOATS / (g.nxi * (cin + cout)) / WG_NR * WG_NR;
    if (tb < WG_NR) tb = WG_NR;
    int64_t all = wg_round_up(g.tiles, WG_NR);
    g.tb = tb < all ? tb : all;
    /* a block's tiles start inside their first tile row and read one tile row further (see wg_input_block) */
    g.plane = (int64_t)wg_align16((size_t)(g.tb + 3 * g.tw));
    g.mp = wg_round_up(cout, WG_MR);
    g.u_floats = wg_align16((size_t)(g.nxi * g.mp * cin));
    g.xp_floats = (size_t)(m * g.a * g.plane);
    /* The V_xi (and M_xi) are written (read) together, one stream each: one cache line more than their size
     * apart, so that the streams do not all fall in the same L1 set when the size is a multiple of 4 KiB. */
    g.vs = (size_t)(cin * g.tb) + 16; /* a multiple of 16 floats: every panel stays 64-byte aligned */
    g.ms = (size_t)(cout * g.tb) + 16;
    g.v_floats = (size_t)g.nxi * g.vs;
    g.m_floats = (size_t)g.nxi * g.ms;
    g.y_floats = (size_t)(m * m * g.tb);
    g.per_thread = g.xp_floats + g.v_floats + g.m_floats + g.y_floats;
    return g;
}

static int wg_dims_ok(int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout, int32_t nthreads) {
    return n > 0 && c > 0 && h > 0 && w > 0 && cout > 0 && nthreads >= 0;
}

/* Floats for U plus per-thread buffers for one direction, with 64 bytes of alignment slack. */
static int64_t wg_need(const wg_geom *g, int threads) {
    return (int64_t)(g->u_floats + g->per_thread * (size_t)threads + 16);
}

int64_t mml_conv3x3_winograd_tile_workspace_floats(int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout,
                                                   int32_t tile, int32_t nthreads) {
    if (!wg_dims_ok(n, c, h, w, cout, nthreads) || (tile != 2 && tile != 4)) return MML_ERR_ARGUMENT;
    int threads = mml_thread_count(nthreads, n);
    wg_geom f = wg_make_geom(c, cout, h, w, tile), b = wg_make_geom(cout, c, h, w, tile);
    int64_t nf = wg_need(&f, threads), nb = wg_need(&b, threads);
    return nf > nb ? nf : nb;
}

int64_t mml_conv3x3_winograd_workspace_floats(int64_t n, int64_t c, int64_t h, int64_t w, int64_t cout,
                                              int32_t nthreads) {
    return mml_conv3x3_winograd_tile_workspace_floats(n, c, h, w, cout, 2, nthreads);
}

/* G of F(2x2, 3x3) and of F(4x4, 3x3) (Lavin & Gray). */
static const double wg_g2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
static const double wg_g4[6][3] = {{1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};

/* U_xi (cout x cin) = G g G^T for every (o, ch), written as packed A panels: u + xi * mp * cin holds
 * mp / MR panels of [ch][MR]; rows past cout are zero. transposed: the backward-data weight, i.e.
 * g(o, ch) = rot180(weight[ch][o]) with weight stored (cin, cout, 3, 3). */
static void wg_transform_weights(float *u, const float *weight, const wg_geom *g, int transposed) {
    int64_t cin = g->cin, cout = g->cout, mp = g->mp;
    memset(u, 0, (size_t)(g->nxi * mp * cin) * sizeof(float));
    for (int64_t o = 0; o < cout; o++)
        for (int64_t ch = 0; ch < cin; ch++) {
            double k[3][3];
            if (!transposed) {
                const float *src = weight + (o * cin + ch) * 9;
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++) k[i][j] = src[i * 3 + j];
            } else {
                const float *src = weight + (ch * cout + o) * 9;
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++) k[i][j] = src[(2 - i) * 3 + (2 - j)];
            }
            double t[6][3], r[6][6];
            int64_t a = g->a;
            const double *gm = g->m == 2 ? &wg_g2[0][0] : &wg_g4[0][0];
            for (int64_t i = 0; i < a; i++)
                for (int j = 0; j < 3; j++)
                    t[i][j] = gm[i * 3] * k[0][j] + gm[i * 3 + 1] * k[1][j] + gm[i * 3 + 2] * k[2][j];
            for (int64_t i = 0; i < a; i++)
                for (int64_t j = 0; j < a; j++)
                    r[i][j] = t[i][0] * gm[j * 3] + t[i][1] * gm[j * 3 + 1] + t[i][2] * gm[j * 3 + 2];
            float *dst = u + (o / WG_MR) * WG_MR * cin + ch * WG_MR + o % WG_MR;
            for (int64_t xi = 0; xi < g->nxi; xi++) dst[(size_t)xi * (size_t)(mp * cin)] = (float)r[xi / a][xi % a];
        }
}

/* One channel of the image (h x w), zero-padded by one pixel on the top and left (and on the bottom and right as
 * far as the last tile reaches), rearranged so that each of the 16 inputs of the tile transform is contiguous over
 * the tile index t = ty * tw + tx. Plane (rp, cp, s) at xp + (rp * 4 + cp * 2 + s) * plane holds, at
 * (ty - ty0) * tw + tx, the padded pixel (2 ty + rp, 2 tx + 2 s + cp) for the tile rows ty = ty0 .. ty1 (at most
 * th); then zeros up to `len`. Tile t's row r (0..3), column c (0..3) is then plane (r % 2, c % 2, c / 2) at
 * t - ty0 * tw + (r / 2) * tw. Only the rows of one block of tiles are built, into an L1-sized buffer. */
static inline __attribute__((always_inline)) void wg_pad_rows(float *xp, const float *x, const wg_geom *g,
                                                              int64_t ty0, int64_t ty1, int64_t len, int avx) {
    int64_t h = g->h, w = g->w, tw = g->tw, plane = g->plane;
    if (ty1 > g->th) ty1 = g->th;
    int64_t used = (ty1 - ty0 + 1) * tw;
    /* padded column 2 tx + k is image column 2 tx + k - 1; the first tx where each of e0 (k = 0), e1 (k = 2),
     * o0 (k = 1), o1 (k = 3) leaves the image */
    int64_t ne0 = (w + 2) / 2 < tw ? (w + 2) / 2 : tw, ne1 = w / 2, no0 = (w + 1) / 2, no1 = (w - 1) / 2;
    for (int64_t rp = 0; rp < 2; rp++) {
        float *e0 = xp + rp * 4 * plane, *e1 = e0 + plane, *o0 = e1 + plane, *o1 = o0 + plane;
        for (int64_t ty = ty0; ty <= ty1; ty++) {
            int64_t y = 2 * ty + rp - 1; /* padded row 2 ty + rp is image row y */
            int64_t at = (ty - ty0) * tw;
            float *a = e0 + at, *b = e1 + at, *c = o0 + at, *d = o1 + at;
            if (y < 0 || y >= h) {
                memset(a, 0, (size_t)tw * sizeof(float));
                memset(b, 0, (size_t)tw * sizeof(float));
                memset(c, 0, (size_t)tw * sizeof(float));
                memset(d, 0, (size_t)tw * sizeof(float));
                continue;
            }
            const float *src = x + y * w;
#if defined(__x86_64__)
            if (avx) {
                wg_pad_row_avx512(a, b, c, d, src, w, tw);
                continue;
            }
#endif
            a[0] = 0.0f;
            WG_VEC
            for (int64_t i = 1; i < ne0; i++) a[i] = src[2 * i - 1];
            for (int64_t i = ne0; i < tw; i++) a[i] = 0.0f;
            WG_VEC
            for (int64_t i = 0; i < ne1; i++) b[i] = src[2 * i + 1];
            for (int64_t i = ne1; i < tw; i++) b[i] = 0.0f;
            WG_VEC
            for (int64_t i = 0; i < no0; i++) c[i] = src[2 * i];
            for (int64_t i = no0; i < tw; i++) c[i] = 0.0f;
            WG_VEC
            for (int64_t i = 0; i < no1; i++) d[i] = src[2 * i + 2];
            for (int64_t i = no1; i < tw; i++) d[i] = 0.0f;
        }
        if (len > used)
            for (int64_t k = 0; k < 4; k++) memset(e0 + k * plane + used, 0, (size_t)(len - used) * sizeof(float));
    }
}

/* V_xi = B^T d B for the tiles t0 .. t0 + np * NR - 1 (np panels) of image x, as packed B panels:
 * v + xi * vs holds tb / NR panels of [ch][NR]; tile t0 + q goes to panel q / NR, column q % NR. Tiles past
 * the image's last read zeros. xp: 8 planes of scratch (wg_pad_rows), rebuilt for each channel. */
static inline __attribute__((always_inline)) void wg_input_block(float *v, float *xp, const float *x,
                                                                 const wg_geom *g, int64_t t0, int64_t np, int avx) {
    int64_t cin = g->cin, tw = g->tw, plane = g->plane, nc = np * WG_NR;
    int64_t ty0 = t0 / tw, ty1 = (t0 + nc - 1) / tw + 1; /* rows read: ty0 .. last tile row + 1 */
    int64_t base = t0 - ty0 * tw;                         /* tile t0 in the planes */
    size_t vs = g->vs;
    for (int64_t ch = 0; ch < cin; ch++) {
        wg_pad_rows(xp, x + ch * g->h * g->w, g, ty0, ty1, base + nc + tw, avx);
        const float *p0 = xp + base; /* row parity 0: planes e0, e1, o0, o1 */
        const float *p1 = p0 + 4 * plane; /* row parity 1 */
        for (int64_t pn = 0; pn < np; pn++) {
            int64_t off = pn * WG_NR;
            /* tile rows r = 0..3: (parity r % 2, shift (r / 2) * tw); columns e (c 0), f (c 2), o (c 1), p (c 3) */
            const float *aE = p0 + off, *aF = aE + plane, *aO = aF + plane, *aP = aO + plane;
            const float *bE = p1 + off, *bF = bE + plane, *bO = bF + plane, *bP = bO + plane;
            const float *cE = aE + tw, *cF = aF + tw, *cO = aO + tw, *cP = aP + tw;
            const float *dE = bE + tw, *dF = bF + tw, *dO = bO + tw, *dP = bP + tw;
            float *v0 = v + pn * cin * WG_NR + ch * WG_NR, *v1 = v0 + vs, *v2 = v1 + vs, *v3 = v2 + vs,
                  *v4 = v3 + vs, *v5 = v4 + vs, *v6 = v5 + vs, *v7 = v6 + vs, *v8 = v7 + vs, *v9 = v8 + vs,
                  *v10 = v9 + vs, *v11 = v10 + vs, *v12 = v11 + vs, *v13 = v12 + vs, *v14 = v13 + vs,
                  *v15 = v14 + vs;
            WG_VEC
            for (int64_t i = 0; i < WG_NR; i++) {
                /* B^T d: row combinations, on tile columns 0 (e), 1 (o), 2 (f), 3 (p) */
                float r0e = aE[i] - cE[i], r0o = aO[i] - cO[i], r0f = aF[i] - cF[i], r0p = aP[i] - cP[i];
                float r1e = bE[i] + cE[i], r1o = bO[i] + cO[i], r1f = bF[i] + cF[i], r1p = bP[i] + cP[i];
                float r2e = cE[i] - bE[i], r2o = cO[i] - bO[i], r2f = cF[i] - bF[i], r2p = cP[i] - bP[i];
                float r3e = bE[i] - dE[i], r3o = bO[i] - dO[i], r3f = bF[i] - dF[i], r3p = bP[i] - dP[i];
                /* (.) B */
                v0[i] = r0e - r0f; v1[i] = r0o + r0f; v2[i] = r0f - r0o; v3[i] = r0o - r0p;
                v4[i] = r1e - r1f; v5[i] = r1o + r1f; v6[i] = r1f - r1o; v7[i] = r1o - r1p;
                v8[i] = r2e - r2f; v9[i] = r2o + r2f; v10[i] = r2f - r2o; v11[i] = r2o - r2p;
                v12[i] = r3e - r3f; v13[i] = r3o + r3f; v14[i] = r3f - r3o; v15[i] = r3o - r3p;
            }
        }
    }
}

/* Optional epilogue of the forward (inference blocks): y = leaky(scale[o] * conv + shift[o]), then with pool a
 * 2x2 / stride-2 max-pool, which is exactly one F(2x2) output tile (floor mode: tiles cut by the border dropped). */
typedef struct {
    const float *scale, *shift;
    float slope;
    int pool;
} wg_epilogue;

/* a * v + b rounded twice, and the max-pool tie rule, as mml_affine_leaky_maxpool2x2_f32 */
static inline __attribute__((always_inline)) void wg_epilogue_act(float *y0, float *y1, float *y2, float *y3,
                                                                  int64_t nc, float a, float b, float slope) {
#pragma STDC FP_CONTRACT OFF
    WG_VEC
    for (int64_t i = 0; i < nc; i++) {
        float v0 = a * y0[i] + b, v1 = a * y1[i] + b, v2 = a * y2[i] + b, v3 = a * y3[i] + b;
        y0[i] = v0 > 0.0f ? v0 : slope * v0;
        y1[i] = v1 > 0.0f ? v1 : slope * v1;
        y2[i] = v2 > 0.0f ? v2 : slope * v2;
        y3[i] = v3 > 0.0f ? v3 : slope * v3;
    }
}

static inline __attribute__((always_inline)) float wg_max_first(float best, float v) {
    int take = (v > best) | ((v != v) & (best == best));
    return take ? v : best;
}

/* A^T m A for tiles t0 .. t0 + nt - 1: m + xi * ms + o * tb + q holds element xi of tile t0 + q for
 * output channel o (columns up to nc, a multiple of NR, are all computed). The 2x2 results go to yt (4 x tb),
 * then are cropped into the h x w output y. */
static inline __attribute__((always_inline)) void wg_output_block(float *y, float *yt, const float *m,
                                                                  const wg_geom *g, int64_t t0, int64_t nt,
                                                                  int64_t nc, int avx, const wg_epilogue *ep) {
    int64_t cout = g->cout, tw = g->tw, h = g->h, w = g->w, tb = g->tb;
    size_t ms = g->ms;
    float *y0 = yt, *y1 = y0 + tb, *y2 = y1 + tb, *y3 = y2 + tb;
    for (int64_t o = 0; o < cout; o++) {
        const float *m0 = m + o * tb, *m1 = m0 + ms, *m2 = m1 + ms, *m3 = m2 + ms, *m4 = m3 + ms, *m5 = m4 + ms,
                    *m6 = m5 + ms, *m7 = m6 + ms, *m8 = m7 + ms, *m9 = m8 + ms, *m10 = m9 + ms, *m11 = m10 + ms,
                    *m12 = m11 + ms, *m13 = m12 + ms, *m14 = m13 + ms, *m15 = m14 + ms;
        WG_VEC
        for (int64_t i = 0; i < nc; i++) {
            float s00 = m0[i] + m4[i] + m8[i], s01 = m1[i] + m5[i] + m9[i], s02 = m2[i] + m6[i] + m10[i],
                  s03 = m3[i] + m7[i] + m11[i];
            float s10 = m4[i] - m8[i] - m12[i], s11 = m5[i] - m9[i] - m13[i], s12 = m6[i] - m10[i] - m14[i],
                  s13 = m7[i] - m11[i] - m15[i];
            y0[i] = s00 + s01 + s02;
            y1[i] = s01 - s02 - s03;
            y2[i] = s10 + s11 + s12;
            y3[i] = s11 - s12 - s13;
        }
        if (ep) {
            wg_epilogue_act(y0, y1, y2, y3, nc, ep->scale[o], ep->shift[o], ep->slope);
            if (ep->pool) {
                int64_t ph = h / 2, pw = w / 2;
                float *po = y + o * ph * pw;
                for (int64_t t = t0; t < t0 + nt; t++) {
                    int64_t ty = t / tw, tx = t - (t / tw) * tw, q = t - t0;
                    if (ty >= ph || tx >= pw) continue;
                    float best = wg_max_first(wg_max_first(wg_max_first(y0[q], y1[q]), y2[q]), y3[q]);
                    po[ty * pw + tx] = best;
                }
                continue;
            }
        }
        float *yo = y + o * h * w;
        for (int64_t t = t0; t < t0 + nt;) {
            int64_t ty = t / tw, tx = t % tw, q = t - t0;
            int64_t len = wg_run_len(t, tx, t0 + nt, tw);
            float *row0 = yo + 2 * ty * w + 2 * tx, *row1 = row0 + w;
            /* tiles whose two columns are both inside the image; at most one (the last of an odd-width row)
             * keeps only its left column, and the last tile row of an odd height only its top row */
            int64_t full = w / 2 - tx;
            if (full > len) full = len;
            if (full < 0) full = 0;
            const float *a = y0 + q, *b = y1 + q, *c = y2 + q, *d = y3 + q;
#if defined(__x86_64__)
            if (avx) {
                int64_t ncol = w - 2 * tx < 2 * len ? w - 2 * tx : 2 * len;
                wg_interleave_avx512(row0, a, b, len, ncol);
                if (2 * ty + 1 < h) wg_interleave_avx512(row1, c, d, len, ncol);
                t += len;
                continue;
            }
#endif
            WG_VEC
            for (int64_t i = 0; i < full; i++) {
                row0[2 * i] = a[i];
                row0[2 * i + 1] = b[i];
            }
            if (full < len) row0[2 * full] = a[full];
            if (2 * ty + 1 < h) {
                WG_VEC
                for (int64_t i = 0; i < full; i++) {
                    row1[2 * i] = c[i];
                    row1[2 * i + 1] = d[i];
                }
                if (full < len) row1[2 * full] = c[full];
            }
            t += len;
        }
    }
}

/* ---- F(4x4, 3x3): 6x6 input tiles at padded (4 ty, 4 tx), 4x4 outputs, 36 GEMMs. Portable loops only (the
 * compiler vectorises them for whichever target the calling image function has). */

/* Planes (rp, c) at xp + (rp * 6 + c) * plane, rp = 0..3, c = 0..5: padded pixel (4 ty + rp, 4 tx + c) at
 * (ty - ty0) * tw + tx for ty = ty0 .. ty1 (at most th), then zeros up to len. Tile row r, column c is plane
 * (r % 4, c) at t - ty0 * tw + (r / 4) * tw. */
static inline __attribute__((always_inline)) void wg4_pad_rows(float *xp, const float *x, const wg_geom *g,
                                                               int64_t ty0, int64_t ty1, int64_t len, int avx) {
    int64_t h = g->h, w = g->w, tw = g->tw, plane = g->plane;
    if (ty1 > g->th) ty1 = g->th;
    int64_t used = (ty1 - ty0 + 1) * tw;
    for (int64_t rp = 0; rp < 4; rp++) {
        for (int64_t ty = ty0; ty <= ty1; ty++) {
            int64_t y = 4 * ty + rp - 1;
#if defined(__x86_64__)
            if (avx && y >= 0 && y < h) {
                float *const p[6] = {xp + (rp * 6) * plane + (ty - ty0) * tw, xp + (rp * 6 + 1) * plane + (ty - ty0) * tw,
                                     xp + (rp * 6 + 2) * plane + (ty - ty0) * tw, xp + (rp * 6 + 3) * plane + (ty - ty0) * tw,
                                     xp + (rp * 6 + 4) * plane + (ty - ty0) * tw, xp + (rp * 6 + 5) * plane + (ty - ty0) * tw};
                wg4_pad_row_avx512(p, x + y * w, w, tw);
                continue;
            }
#endif
            for (int64_t c = 0; c < 6; c++) {
                float *dst = xp + (rp * 6 + c) * plane + (ty - ty0) * tw;
                if (y < 0 || y >= h) {
                    memset(dst, 0, (size_t)tw * sizeof(float));
                    continue;
                }
                const float *src = x + y * w + c - 1; /* dst[i] = src[4 i] where 0 <= 4 i + c - 1 < w */
                int64_t lo = c == 0 ? 1 : 0;
                int64_t hi = w - c >= 0 ? (w - c) / 4 + 1 : 0;
                if (hi > tw) hi = tw;
                if (lo > hi) lo = hi;
                for (int64_t i = 0; i < lo; i++) dst[i] = 0.0f;
                WG_VEC
                for (int64_t i = lo; i < hi; i++) dst[i] = src[4 * i];
                for (int64_t i = hi; i < tw; i++) dst[i] = 0.0f;
            }
        }
        if (len > used)
            for (int64_t c = 0; c < 6; c++)
                memset(xp + (rp * 6 + c) * plane + used, 0, (size_t)(len - used) * sizeof(float));
    }
}

/* o_k[i] = (B^T x)_k for i < n, x_k = in_k[i]: B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
 * 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]. in_k = x_k, out_k at out + k * os. */
static inline __attribute__((always_inline)) void wg4_bt_run6(float *out, size_t os, const float *x0,
                                                              const float *x1, const float *x2, const float *x3,
                                                              const float *x4, const float *x5, int64_t n) {
    float *o0 = out, *o1 = o0 + os, *o2 = o1 + os, *o3 = o2 + os, *o4 = o3 + os, *o5 = o4 + os;
    WG_VEC
    for (int64_t i = 0; i < n; i++) {
        o0[i] = 4.0f * x0[i] - 5.0f * x2[i] + x4[i];
        o1[i] = -4.0f * (x1[i] + x2[i]) + x3[i] + x4[i];
        o2[i] = 4.0f * (x1[i] - x2[i]) - x3[i] + x4[i];
        o3[i] = 2.0f * (x3[i] - x1[i]) - x2[i] + x4[i];
        o4[i] = 2.0f * (x1[i] - x3[i]) - x2[i] + x4[i];
        o5[i] = 4.0f * x1[i] - 5.0f * x3[i] + x5[i];
    }
}

/* o_k[i] = (A^T x)_k, k = 0..3: A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]. */
static inline __attribute__((always_inline)) void wg4_at_run(float *out, size_t os, const float *in, size_t is,
                                                             int64_t n) {
    const float *x0 = in, *x1 = x0 + is, *x2 = x1 + is, *x3 = x2 + is, *x4 = x3 + is, *x5 = x4 + is;
    float *o0 = out, *o1 = o0 + os, *o2 = o1 + os, *o3 = o2 + os;
    WG_VEC
    for (int64_t i = 0; i < n; i++) {
        float p12 = x1[i] + x2[i], m12 = x1[i] - x2[i], p34 = x3[i] + x4[i], m34 = x3[i] - x4[i];
        o0[i] = x0[i] + p12 + p34;
        o1[i] = m12 + 2.0f * m34;
        o2[i] = p12 + 4.0f * p34;
        o3[i] = m12 + 8.0f * m34 + x5[i];
    }
}

/* V_xi (xi = r * 6 + c) for np panels of tiles from t0, as wg_input_block: B^T d B as B^T along the tile's
 * columns into tmp, then along its rows. */
static inline __attribute__((always_inline)) void wg4_input_block(float *v, float *xp, const float *x,
                                                                  const wg_geom *g, int64_t t0, int64_t np, int avx) {
    int64_t cin = g->cin, tw = g->tw, plane = g->plane, nc = np * WG_NR;
    int64_t ty0 = t0 / tw, ty1 = (t0 + nc - 1) / tw + 1;
    int64_t base = t0 - ty0 * tw;
    size_t vs = g->vs;
    float tmp[36 * WG_NR];
    for (int64_t ch = 0; ch < cin; ch++) {
        wg4_pad_rows(xp, x + ch * g->h * g->w, g, ty0, ty1, base + nc + tw, avx);
        for (int64_t pn = 0; pn < np; pn++) {
            /* tile rows r = 0..3 are planes (r, c), rows 4 and 5 are planes (0, c) and (1, c) one tile row on:
             * for a fixed column c, rows 0..3 are 6 * plane apart, and rows 4, 5 follow as rows 0, 1 + tw */
            for (int c = 0; c < 6; c++) {
                const float *col = xp + c * plane + base + pn * WG_NR;
                size_t rs = (size_t)(6 * plane);
                wg4_bt_run6(tmp + c * WG_NR, 6 * WG_NR, col, col + rs, col + 2 * rs, col + 3 * rs, col + tw,
                            col + rs + tw, WG_NR);
            }
            /* tmp[(r * 6 + c) * NR + i] = (B^T d)[r][c] */
            for (int r = 0; r < 6; r++) {
                const float *t = tmp + r * 6 * WG_NR;
                wg4_bt_run6(v + (size_t)(r * 6) * vs + pn * cin * WG_NR + ch * WG_NR, vs, t, t + WG_NR,
                            t + 2 * WG_NR, t + 3 * WG_NR, t + 4 * WG_NR, t + 5 * WG_NR, WG_NR);
            }
        }
    }
}

/* A^T m A for tiles t0 .. t0 + nt - 1 as wg_output_block: the 4x4 results go to yt (16 x tb), then (with an
 * epilogue: activation, and with pool the tile's four 2x2 windows, the pooled 2x2 kept in yt rows 0, 2, 8, 10)
 * are cropped into y. */
static inline __attribute__((always_inline)) void wg4_output_block(float *y, float *yt, const float *m,
                                                                   const wg_geom *g, int64_t t0, int64_t nt,
                                                                   int64_t nc, int avx, const wg_epilogue *ep) {
    int64_t cout = g->cout, tw = g->tw, h = g->h, w = g->w, tb = g->tb;
    size_t ms = g->ms;
    float tmp[24 * WG_NR];
    for (int64_t o = 0; o < cout; o++) {
        for (int64_t i0 = 0; i0 < nc; i0 += WG_NR) {
            /* A^T along the tile's columns: tmp[(r * 6 + c) * NR + i] for r = 0..3 */
            for (int c = 0; c < 6; c++)
                wg4_at_run(tmp + c * WG_NR, 6 * WG_NR, m + (size_t)c * ms + o * tb + i0, 6 * ms, WG_NR);
            /* then along its rows: yt[(r * 4 + c) * tb + i] */
            for (int r = 0; r < 4; r++)
                wg4_at_run(yt + (r * 4) * tb + i0, (size_t)tb, tmp + r * 6 * WG_NR, WG_NR, WG_NR);
        }
        if (ep) {
            for (int r = 0; r < 4; r++)
                wg_epilogue_act(yt + (r * 4) * tb, yt + (r * 4 + 1) * tb, yt + (r * 4 + 2) * tb, yt + (r * 4 + 3) * tb,
                                nc, ep->scale[o], ep->shift[o], ep->slope);
            if (ep->pool) {
                /* window (pr, pc) covers tile rows 2 pr, 2 pr + 1 and columns 2 pc, 2 pc + 1; its max goes to yt row
                 * (2 pr) * 4 + 2 pc, the window's first element */
                for (int pr = 0; pr < 2; pr++)
                    for (int pc = 0; pc < 2; pc++) {
                        float *e0 = yt + ((2 * pr) * 4 + 2 * pc) * tb, *e1 = e0 + tb, *e2 = e0 + 4 * tb,
                              *e3 = e2 + tb;
                        WG_VEC
                        for (int64_t i = 0; i < nc; i++)
                            e0[i] = wg_max_first(wg_max_first(wg_max_first(e0[i], e1[i]), e2[i]), e3[i]);
                    }
                int64_t ph = h / 2, pw = w / 2;
                float *po = y + o * ph * pw;
                for (int64_t t = t0; t < t0 + nt;) {
                    int64_t ty = t / tw, tx = t % tw, q = t - t0;
                    int64_t len = wg_run_len(t, tx, t0 + nt, tw);
                    int64_t ncol = pw - 2 * tx < 2 * len ? pw - 2 * tx : 2 * len;
                    for (int64_t pr = 0; pr < 2 && 2 * ty + pr < ph && ncol > 0; pr++) {
                        float *row = po + (2 * ty + pr) * pw + 2 * tx;
                        const float *a = yt + (2 * pr) * 4 * tb + q, *b = a + 2 * tb;
#if defined(__x86_64__)
                        if (avx) {
                            wg_interleave_avx512(row, a, b, len, ncol);
                            continue;
                        }
#endif
                        for (int64_t k = 0; k < ncol; k++) row[k] = (k & 1 ? b : a)[k / 2];
                    }
                    t += len;
                }
                continue;
            }
        }
        float *yo = y + o * h * w;
        for (int64_t t = t0; t < t0 + nt;) {
            int64_t ty = t / tw, tx = t % tw, q = t - t0;
            int64_t len = wg_run_len(t, tx, t0 + nt, tw);
            int64_t ncol = w - 4 * tx < 4 * len ? w - 4 * tx : 4 * len;
            for (int64_t r = 0; r < 4 && 4 * ty + r < h; r++) {
                float *row = yo + (4 * ty + r) * w + 4 * tx;
                const float *a0 = yt + (r * 4) * tb + q, *a1 = a0 + tb, *a2 = a1 + tb, *a3 = a2 + tb;
#if defined(__x86_64__)
                if (avx) {
                    wg4_interleave_avx512(row, a0, a1, a2, a3, len, ncol);
                    continue;
                }
#endif
                int64_t full = ncol / 4;
                WG_VEC
                for (int64_t i = 0; i < full; i++) {
                    row[4 * i] = a0[i];
                    row[4 * i + 1] = a1[i];
                    row[4 * i + 2] = a2[i];
                    row[4 * i + 3] = a3[i];
                }
                const float *ac[4] = {a0, a1, a2, a3};
                for (int64_t k = 4 * full; k < ncol; k++) row[k] = ac[k % 4][full];
            }
            t += len;
        }
    }
}

typedef struct {
    float *out;
    const float *in;
    const float *u;
    float *thread_base;
    wg_geom g;
    int avx512, avx2;
    wg_epilogue epilogue; /* scale == NULL: none */
} wg_ctx;

static inline __attribute__((always_inline)) void wg_image_body(const wg_ctx *s, int64_t img, float *ws,
                                                                int avx) {
    const wg_geom *g = &s->g;
    float *xp = ws, *v = xp + g->xp_floats, *m = v + g->v_floats, *yt = m + g->m_floats;
    const float *x = s->in + img * g->cin * g->h * g->w;
    int64_t out_plane = s->epilogue.scale && s->epilogue.pool ? (g->h / 2) * (g->w / 2) : g->h * g->w;
    float *y = s->out + img * g->cout * out_plane;
    size_t us = (size_t)(g->mp * g->cin), vs = g->vs, ms = g->ms;
    for (int64_t t0 = 0; t0 < g->tiles; t0 += g->tb) {
        int64_t nt = g->tiles - t0 < g->tb ? g->tiles - t0 : g->tb;
        int64_t nc = wg_round_up(nt, WG_NR); /* whole panels: the micro-kernel computes them anyway */
        if (g->m == 2)
            wg_input_block(v, xp, x, g, t0, nc / WG_NR, avx);
        else
            wg4_input_block(v, xp, x, g, t0, nc / WG_NR, avx);
        for (int64_t xi = 0; xi < g->nxi; xi++)
            mml_nn_sgemm_prepacked(g->cout, nc, g->cin, s->u + xi * us, v + xi * vs, m + xi * ms, g->tb);
        if (g->m == 2)
            wg_output_block(y, yt, m, g, t0, nt, nc, avx, s->epilogue.scale ? &s->epilogue : NULL);
        else
            wg4_output_block(y, yt, m, g, t0, nt, nc, avx, s->epilogue.scale ? &s->epilogue : NULL);
    }
}

static void wg_image_portable(const wg_ctx *s, int64_t img, float *ws) { wg_image_body(s, img, ws, 0); }

#if defined(__x86_64__)
WG_AVX512 static void wg_image_avx512(const wg_ctx *s, int64_t img, float *ws) {
    wg_image_body(s, img, ws, 1);
}
/* CPUs with AVX2 + FMA but no AVX-512: the portable row copies, the transforms' plain loops vectorised 8 wide
 * (the same additions in the same order: the same bits as the portable build). */
__attribute__((target("avx2,fma"))) static void wg_image_avx2(const wg_ctx *s, int64_t img, float *ws) {
    wg_image_body(s, img, ws, 0);
}
#endif

static void wg_task(void *ctx, int64_t img, int thread) {
    const wg_ctx *s = (const wg_ctx *)ctx;
    float *ws = s->thread_base + (size_t)thread * s->g.per_thread;
#if defined(__x86_64__)
    if (s->avx512) {
        wg_image_avx512(s, img, ws);
        return;
    }
    if (s->avx2) {
        wg_image_avx2(s, img, ws);
        return;
    }
#endif
    wg_image_portable(s, img, ws);
}

/* Shared driver: out (n, cout', h, w) from in (n, cin', h, w); transposed selects the backward-data weights. */
static int wg_run(float *out, const float *in, const float *weight, int64_t n, int64_t c, int64_t h, int64_t w,
                  int64_t cout, int32_t tile, float *workspace, int64_t workspace_floats, int32_t nthreads,
                  int transposed, const wg_epilogue *ep) {
    if (!out || !in || !weight || !wg_dims_ok(n, c, h, w, cout, nthreads) || (tile != 2 && tile != 4))
        return MML_ERR_ARGUMENT;
    int64_t need = mml_conv3x3_winograd_tile_workspace_floats(n, c, h, w, cout, tile, nthreads);
    float *owned;
    int acquired = mml_nn_acquire_workspace(&workspace, &owned, workspace_floats, need);
    if (acquired != MML_OK) return acquired;
    wg_ctx s;
    memset(&s, 0, sizeof(s));
    s.g = transposed ? wg_make_geom(cout, c, h, w, tile) : wg_make_geom(c, cout, h, w, tile);
    float *base = (float *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    wg_transform_weights(base, weight, &s.g, transposed);
    s.u = base;
    s.thread_base = base + s.g.u_floats;
    s.out = out;
    s.in = in;
    s.avx512 = mml_nn_have_avx512();
    s.avx2 = !s.avx512 && mml_nn_have_avx2();
    if (ep) s.epilogue = *ep;
    mml_parallel_for(n, nthreads, wg_task, &s);
    free(owned);
    return MML_OK;
}

int mml_conv3x3_winograd_forward_f32(float *y, const float *x, const float *weight, int64_t n, int64_t c, int64_t h,
                                     int64_t w, int64_t cout, float *workspace, int64_t workspace_floats,
                                     int32_t nthreads) {
    return wg_run(y, x, weight, n, c, h, w, cout, 2, workspace, workspace_floats, nthreads, 0, NULL);
}

int mml_conv3x3_winograd_backward_data_f32(float *dx, const float *dy, const float *weight, int64_t n, int64_t c,
                                           int64_t h, int64_t w, int64_t cout, float *workspace,
                                           int64_t workspace_floats, int32_t nthreads) {
    return wg_run(dx, dy, weight, n, c, h, w, cout, 2, workspace, workspace_floats, nthreads, 1, NULL);
}

int mml_conv3x3_winograd_tile_forward_f32(float *y, const float *x, const float *weight, int64_t n, int64_t c,
                                          int64_t h, int64_t w, int64_t cout, int32_t tile, float *workspace,
                                          int64_t workspace_floats, int32_t nthreads) {
    return wg_run(y, x, weight, n, c, h, w, cout, tile, workspace, workspace_floats, nthreads, 0, NULL);
}

int mml_conv3x3_winograd_tile_backward_data_f32(float *dx, const float *dy, const float *weight, int64_t n,
                                                int64_t c, int64_t h, int64_t w, int64_t cout, int32_t tile,
                                                float *workspace, int64_t workspace_floats, int32_t nthreads) {
    return wg_run(dx, dy, weight, n, c, h, w, cout, tile, workspace, workspace_floats, nthreads, 1, NULL);
}

int mml_conv3x3_winograd_tile_forward_affine_leaky_f32(float *y, const float *x, const float *weight,
                                                       const float *scale, const float *shift, float slope,
                                                       int32_t pool, int64_t n, int64_t c, int64_t h, int64_t w,
                                                       int64_t cout, int32_t tile, float *workspace,
                                                       int64_t workspace_floats, int32_t nthreads) {
    if (!scale || !shift || (pool && (h < 2 || w < 2))) return MML_ERR_ARGUMENT;
    wg_epilogue ep = {scale, shift, slope, pool != 0};
    return wg_run(y, x, weight, n, c, h, w, cout, tile, workspace, workspace_floats, nthreads, 0, &ep);
}

int mml_conv3x3_winograd_forward_affine_leaky_f32(float *y, const float *x, const float *weight, const float *scale,
                                                  const float *shift, float slope, int32_t pool, int64_t n, int64_t c,
                                                  int64_t h, int64_t w, int64_t cout, float *workspace,
                                                  int64_t workspace_floats, int32_t nthreads) {
    return mml_conv3x3_winograd_tile_forward_affine_leaky_f32(y, x, weight, scale, shift, slope, pool, n, c, h, w,
                                                              cout, 2, workspace, workspace_floats, nthreads);
}

int32_t mml_conv3x3_winograd_preferred_tile(int64_t h, int64_t w) {
    if (h <= 0 || w <= 0) return 2;
    int64_t t2 = wg_round_up(((h + 1) / 2) * ((w + 1) / 2), WG_NR) * 16;
    int64_t t4 = wg_round_up(((h + 3) / 4) * ((w + 3) / 4), WG_NR) * 36;
    return 5 * t4 <= 4 * t2 ? 4 : 2;
}
