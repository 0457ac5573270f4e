/* Internal to the grouped top-K similarity kernels (topk.c, topk_avx512.c, topk_bf16_avx512.c, topk_amx.c,
 * topk_portable.c).
 *
 * The plan (see topk.c for the whole story):
 *   1. R's rows are re-ordered by group (a stable counting sort, so inside a group the rows keep ascending j)
 *      and packed into panels of at most TOPK_NR = 64 columns, each panel inside ONE group. A panel of w columns
 *      stores, for depth p = 0..d-1, ns = ceil(w/16) strips of 16 floats: panel[p * ns*16 + c] = R[perm[col0+c]][p]
 *      (columns past w are zero). One 512-bit load at depth p then gives 16 reference columns.
 *   2. A thread owns a block of query rows and keeps, per (row, group), the k best (value, j) seen so far and
 *      the current k-th best as a threshold. For each chunk of up to TOPK_CHUNK panels of one group, every 6-row
 *      slice of the block gets its 6 x 512 dot products from a register-blocked micro-kernel into an L1 buffer;
 *      the chunk's 16 lane maxima, compared once with the row's threshold, usually show that nothing in the
 *      chunk qualifies; otherwise the qualifying entries are found with mask compares and offered one by one.
 *   3. Candidates of a group arrive in ascending j, so "strictly greater than the k-th best" is exactly the
 *      rule "ties go to the smaller j", and the result does not depend on how rows are split over threads.
 * The bf16amx precision (AMX's summation order, topk_amx.c) computes 16-row slices with AMX tiles instead of
 * 6-row slices in zmm registers; the selection is the same.
 */
#ifndef MML_TOPK_INTERNAL_H
#define MML_TOPK_INTERNAL_H

#include "MMLKernels.h"
#include <math.h>
#include <stdint.h>

#define TOPK_MR 6          /* query rows per micro-kernel call */
#define TOPK_NR 64         /* reference columns per panel (4 strips of 16) */
#define TOPK_STRIP 16      /* columns per strip: one zmm */
#define TOPK_SORTED_MAX 32 /* k up to this keeps a sorted buffer; larger k keeps a binary min-heap */
#define TOPK_CHUNK 8       /* panels (of one group) whose dot products are buffered before selection */
#define TOPK_CHUNK_COLS (TOPK_CHUNK * TOPK_NR)
#define TOPK_AMX_ROWS 16   /* query rows per AMX slice (one tile's rows) */
#define TOPK_AMX_PAIRS 16  /* bf16 pairs per TDPBF16PS (one A tile row of 64 bytes): bf16amx pads the depth to this */

/* The element type and summation order of a call (topk_packed.prec). */
enum {
    TOPK_F32 = 0,    /* fp32 elements, one accumulator per dot product */
    TOPK_BF16 = 1,   /* bf16 pairs, VDPBF16PS's order (mml_group_topk_sim_bf16) */
    TOPK_BF16AMX = 2 /* bf16 pairs, TDPBF16PS's order over blocks of 16 pairs (mml_group_topk_sim_bf16amx) */
};

/* R packed by group. Panel t covers packed columns [col0[t], col0[t] + width[t]) of group group_of[t].
 * bf16 (mml_group_topk_sim_bf16): the depth index runs over pairs p = 0..ceil(d/2)-1 and each 4-byte element is
 * a bf16 pair, R[col][2p] in the low half and R[col][2p+1] (or +0 past an odd d) in the high half, the layout
 * VDPBF16PS reads; data is then reinterpreted as uint32_t. Offsets count 4-byte elements in both cases.
 * bf16amx: the same pairs, the depth padded with zero pairs to a multiple of TOPK_AMX_PAIRS. One strip's 16 pairs
 * p0..p0+15 are then an AMX B tile as it is: 16 rows (pairs) of 64 bytes (16 columns), row stride ns * 64 bytes. */
typedef struct {
    float *data;         /* all panels, panel t at data + offset[t] (uint32_t bf16 pairs when bf16) */
    int64_t *offset;     /* n_panels */
    int32_t *col0;       /* first packed column of the panel (index into perm) */
    int32_t *width;      /* 1..TOPK_NR */
    int32_t *group_of;   /* group of the panel */
    int32_t *perm;       /* n: packed column -> original reference row j */
    int64_t *group_panel; /* n_groups + 1: group g owns panels group_panel[g] .. group_panel[g+1]-1 */
    int64_t n_panels;
    int64_t d;           /* depth in 4-byte elements: d for fp32, ceil(d/2) pairs for bf16, that rounded up to a
                          * multiple of 16 for bf16amx */
    int prec;            /* TOPK_F32, TOPK_BF16 or TOPK_BF16AMX */
} topk_packed;

/* fp32 -> bf16, round to nearest even; fp32 denormals give a signed zero, NaN stays NaN (quietened: bit 6 set),
 * +-Inf stays +-Inf; finite values from 0x1.ffp127 up in magnitude round to Inf. The same as VCVTNEPS2BF16
 * (checked on Emerald Rapids by scripts/check-vdpbf16ps.c). Public as mml_bf16_from_f32 (normalize.c). */
static inline uint16_t topk_bf16_from_f32(float x) {
    uint32_t u;
    __builtin_memcpy(&u, &x, 4);
    if ((u & 0x7F800000u) == 0x7F800000u) return (uint16_t)((u & 0x7FFFFFu) ? (u >> 16) | 0x40u : u >> 16);
    if ((u & 0x7F800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

/* Packs x[0..d) as ceil(d/2) bf16 pairs (even element in the low half, +0 past an odd d). Returns non-zero when
 * some value is or rounds to Inf/NaN. */
static inline int topk_bf16_pack_row(uint32_t *dst, const float *x, int64_t d) {
    uint32_t bad = 0;
    for (int64_t p = 0; 2 * p < d; p++) {
        uint32_t lo = topk_bf16_from_f32(x[2 * p]), hi = 2 * p + 1 < d ? topk_bf16_from_f32(x[2 * p + 1]) : 0u;
        bad |= (lo & 0x7F80u) == 0x7F80u;
        bad |= (hi & 0x7F80u) == 0x7F80u;
        dst[p] = lo | hi << 16;
    }
    return bad != 0;
}

/* Running top-k of one thread's block of rows: for row r (0-based in the block) and group g the slot
 * s = r * n_groups + g owns val[s*k .. s*k+k), idx[...], count[s] and thr[s] (the k-th best, or -inf). */
typedef struct {
    float *val;
    int32_t *idx;
    int32_t *count;
    float *thr;
    int32_t n_groups;
    int32_t k;
} topk_state;

/* Offer candidate (v, j) to slot s. Callers offer a slot's candidates in ascending j. */
static inline void topk_offer(topk_state *st, int64_t s, float v, int32_t j) {
    const int32_t k = st->k;
    float *val = st->val + s * k;
    int32_t *idx = st->idx + s * k;
    int32_t c = st->count[s];
    if (c == k && !(v > val[k > TOPK_SORTED_MAX ? 0 : k - 1])) return;
    if (k <= TOPK_SORTED_MAX) {
        /* Sorted descending; a new value goes after every kept value >= it (those have smaller j). */
        int32_t pos = c < k ? c : k - 1;
        while (pos > 0 && val[pos - 1] < v) {
            val[pos] = val[pos - 1];
            idx[pos] = idx[pos - 1];
            pos--;
        }
        val[pos] = v;
        idx[pos] = j;
        if (c < k) st->count[s] = ++c;
        if (c == k) st->thr[s] = val[k - 1];
        return;
    }
    /* Min-heap on "worse": a is worse than b when a.v < b.v, or a.v == b.v and a.j > b.j. Root = worst kept. */
    int32_t pos;
    if (c < k) {
        pos = c;
        while (pos > 0) {
            int32_t parent = (pos - 1) / 2;
            int worse = v < val[parent] || (v == val[parent] && j > idx[parent]);
            if (!worse) break;
            val[pos] = val[parent];
            idx[pos] = idx[parent];
            pos = parent;
        }
        val[pos] = v;
        idx[pos] = j;
        st->count[s] = ++c;
    } else {
        pos = 0;
        for (;;) {
            int32_t l = 2 * pos + 1, r = l + 1, w = pos;
            float wv = v;
            int32_t wj = j;
            if (l < k && (val[l] < wv || (val[l] == wv && idx[l] > wj))) { w = l; wv = val[l]; wj = idx[l]; }
            if (r < k && (val[r] < wv || (val[r] == wv && idx[r] > wj))) { w = r; }
            if (w == pos) break;
            val[pos] = val[w];
            idx[pos] = idx[w];
            pos = w;
        }
        val[pos] = v;
        idx[pos] = j;
    }
    if (c == k) st->thr[s] = val[0];
}

/* The k-th largest of a chunk's 16 lane maxima (k <= 16), by k passes that each remove the current largest (the first
 * of equals): a value under it cannot be among a still-empty slot's k best. lm is overwritten. */
static inline float topk_lane_cut(float lm[TOPK_STRIP], int32_t k) {
    float cut = -INFINITY;
    for (int32_t t = 0; t < k; t++) {
        int best = 0;
        for (int l = 1; l < TOPK_STRIP; l++)
            if (lm[l] > lm[best]) best = l;
        cut = lm[best];
        lm[best] = -INFINITY;
    }
    return cut;
}

/* Offer the lanes set in `mask` of 16 dot products `v` (packed columns col0..col0+15 of one group). */
void topk_offer_lanes(topk_state *st, int64_t s, const float *v, uint32_t mask, const int32_t *perm,
                      int32_t col0);

/* Work of one thread on query rows [r0, r1) for one block: the drivers have this signature.
 * Q points at row r0: rows of pk->d floats, or of pk->d bf16 pairs (uint32_t) for the bf16 precisions. State slots
 * are relative to r0. The AVX-512 driver runs the bf16 micro-kernels of topk_bf16_avx512.c for TOPK_BF16 (callers
 * check topk_use_bf16_avx512() first); the AMX driver (topk_amx.c) runs TOPK_BF16AMX only, and reads
 * TOPK_AMX_ROWS rows from Q whatever `rows` is (the block buffer has them; rows past `rows` are ignored). */
void topk_block_avx512(topk_state *st, const void *Q, int64_t rows, const topk_packed *pk);
void topk_block_amx(topk_state *st, const void *Q, int64_t rows, const topk_packed *pk);
void topk_block_portable(topk_state *st, const void *Q, int64_t rows, const topk_packed *pk);
/* The portable driver with the AVX2 + FMA fp32 micro-kernel (topk_avx2.c; TOPK_F32 only): the AVX-512 path's bits. */
void topk_block_avx2(topk_state *st, const void *Q, int64_t rows, const topk_packed *pk);
void topk_mk_f32_avx2(float *buf, int mr, const float *q, int64_t d, const float *panel, int32_t width);
/* The selection from one row's products of a chunk (columns [0, width) of v, packed columns col0.. of one group):
 * the portable one and its AVX2 twin (the same candidates offered in the same order). */
void topk_select_chunk_portable(topk_state *st, int64_t s, const float *v, int32_t width, const int32_t *perm,
                                int32_t col0);
void topk_select_chunk_avx2(topk_state *st, int64_t s, const float *v, int32_t width, const int32_t *perm,
                            int32_t col0);

/* The micro-kernels (topk_mk_body.h, one instance per element type): buf[r * TOPK_CHUNK_COLS + c] = <q_r, panel
 * column c> for r < MR, c < 16 * NS, q rows of `depth` 4-byte elements. Table [MR-1][NS-1]. */
typedef void (*topk_mk_fn)(float *buf, const void *q, int64_t depth, const void *panel);
extern const topk_mk_fn topk_mk_bf16_avx512[TOPK_MR][4];

/* The reference rows in group order (a stable counting sort: inside a group the rows keep ascending j): fills
 * perm[0..n) (packed column -> j) and begin[0..G] (group g owns packed columns begin[g] .. begin[g+1]-1), size[g]
 * being the rows of group g. Shared by the panel packing (topk.c) and the lanes path. */
void topk_group_order(int32_t *perm, int64_t *begin, const int32_t *group, int64_t n, int32_t G, const int64_t *size);

/* The small-group fp32 path (topk_lanes_avx512.c): 16 query rows per vector, a column broadcast, the running top-k
 * in vectors. For k <= TOPK_LANES_KMAX; taken by mml_group_topk_sim_f32 on the AVX-512 path (avx2 = 0: zmm tiles)
 * and on the AVX2 path (avx2 = 1: ymm tiles) when every group has at most TOPK_LANES_MAX_GROUP rows
 * (MML_TOPK_LANES=off|on|auto overrides, topk_lanes_mode). The same bits as the panel path. Returns MML_OK,
 * MML_ERR_NOMEM, or TOPK_LANES_DECLINED (before writing anything) when some product could overflow or an input is
 * NaN / Inf: the panel path then runs. size[g]: the rows of group g. */
#define TOPK_LANES_KMAX 4
#define TOPK_LANES_ROWS 64
#define TOPK_LANES_MAX_GROUP 128
#define TOPK_LANES_DECLINED 1
int topk_lanes(float *out, int32_t *sel_idx, float *sel_val, const float *Q, int64_t m, const float *R, int64_t n,
               int64_t d, const int32_t *group, int32_t G, const int64_t *size, int32_t k, int32_t nthreads, int avx2);
/* MML_TOPK_LANES in the environment (read at every call): "off" -> 0 (the panel path always), "on" -> 2 (the lanes
 * path whenever k and the inputs allow, whatever the group sizes; for tests and comparisons), else 1 (auto). */
int topk_lanes_mode(void);

/* Every kernel of this family takes its path from mml_kernels_isa_level() (common/mml_isa.h), read once per call
 * (the environment is read at every call, so tests can switch paths), and passes that level on. */
/* Non-zero when the bf16 kernel should take its AVX512-BF16 path: level is MML_ISA_AVX512 and the CPU has
 * AVX512_BF16. */
int topk_use_bf16_avx512(int level);
/* Non-zero when the bf16amx kernel should take its AMX path: level is MML_ISA_AVX512 (the selection is AVX-512)
 * and mml_amx_status() == 1 (the CPU has AMX-TILE and AMX-BF16 and the OS granted the tile data). */
int topk_use_amx(int level);

#endif /* MML_TOPK_INTERNAL_H */
