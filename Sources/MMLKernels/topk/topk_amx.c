/* AMX driver of the bf16amx grouped top-K similarity (mml_group_topk_sim_bf16amx; layout in topk_internal.h).
 *
 * Why a precision of its own: TDPBF16PS does not add a pair's products the way VDPBF16PS does. For one C element
 * and one instruction over K <= 16 pairs it sums the even elements' products in one chain and the odd elements'
 * in another, each from +0 in pair order with a rounding per step, then adds the two chains, then adds that to C
 * (scripts/check-amx-bf16.c: 0 mismatches with this model over 5.4 M random and adversarial lanes on Emerald
 * Rapids, against 2.2 M for the VDPBF16PS sequence; about 30% of d = 64 dot products of unit descriptors differ
 * from the bf16 kernel's in the last bits). So bf16amx is defined by TDPBF16PS's arithmetic over the depth padded to
 * 16-pair blocks, and its only other path is topk_portable.c's mk_portable_bf16amx, which reproduces it bit for bit.
 *
 * The work: for each group and chunk of up to TOPK_CHUNK panels, every 16-row slice of the block gets its
 * 16 x (<= 512) dot products from AMX tiles into an L1 buffer, and the AVX-512 selection (topk_select_avx512.h)
 * takes the candidates from it, exactly as the AVX-512 driver does with its 6-row slices. A panel of ns <= 4 strips
 * is ns C tiles (tmm0-3, 16 rows x 16 fp32 columns): per 16-pair block one A tile of the slice's query pairs (tmm4,
 * loaded once) and one B tile per strip (tmm5 / tmm6 in turn; the packed strip is the B tile as it is), then the
 * C tiles are stored to the buffer. Every dot product is accumulated over the blocks in order in its own C element,
 * so it has the same bits whatever the slice, block or thread.
 *
 * The tile configuration is loaded at the start of each call (each worker thread's block of rows) and released at
 * its end. The permission to use the tile data is asked once per process (mml_amx_status(), common/sysinfo.c);
 * without it, or without AMX-BF16, topk.c never calls this driver.
 */
#include "topk_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "topk_select_avx512.h"

#define AMX_ATTR __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,fma")))

/* The 64-byte tile configuration of palette 1 (Intel SDM, LDTILECFG). */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_tilecfg;

/* tmm0-3: C, tmm4: A, tmm5-6: B; all 16 rows of 64 bytes. */
static AMX_ATTR void amx_configure(void) {
    amx_tilecfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 7; t++) {
        c.colsb[t] = 64;
        c.rows[t] = TOPK_AMX_ROWS;
    }
    _tile_loadconfig(&c);
}

/* out[r * TOPK_CHUNK_COLS + c] = <q_r, panel column c> for the 16 rows r of the slice at q (rows of d2p pairs) and
 * the NS strips of the panel. NS is a constant after inlining (the tile registers must be). */
static inline __attribute__((always_inline)) AMX_ATTR void amx_panel(const int NS, float *out, const uint32_t *q,
                                                                      int64_t d2p, const uint32_t *panel) {
    const int64_t qstride = d2p * 4, bstride = NS * TOPK_STRIP * 4, block = TOPK_AMX_PAIRS * NS * TOPK_STRIP;
    _tile_zero(0);
    if (NS > 1) _tile_zero(1);
    if (NS > 2) _tile_zero(2);
    if (NS > 3) _tile_zero(3);
    for (int64_t p0 = 0; p0 < d2p; p0 += TOPK_AMX_PAIRS) {
        const uint32_t *b = panel + (p0 / TOPK_AMX_PAIRS) * block;
        _tile_loadd(4, q + p0, qstride);
        _tile_loadd(5, b, bstride);
        _tile_dpbf16ps(0, 4, 5);
        if (NS > 1) {
            _tile_loadd(6, b + TOPK_STRIP, bstride);
            _tile_dpbf16ps(1, 4, 6);
        }
        if (NS > 2) {
            _tile_loadd(5, b + 2 * TOPK_STRIP, bstride);
            _tile_dpbf16ps(2, 4, 5);
        }
        if (NS > 3) {
            _tile_loadd(6, b + 3 * TOPK_STRIP, bstride);
            _tile_dpbf16ps(3, 4, 6);
        }
    }
    const int64_t ostride = TOPK_CHUNK_COLS * 4;
    _tile_stored(0, out, ostride);
    if (NS > 1) _tile_stored(1, out + TOPK_STRIP, ostride);
    if (NS > 2) _tile_stored(2, out + 2 * TOPK_STRIP, ostride);
    if (NS > 3) _tile_stored(3, out + 3 * TOPK_STRIP, ostride);
}

AMX_ATTR void topk_block_amx(topk_state *st, const void *Q, int64_t rows, const topk_packed *pk) {
    const int64_t d2p = pk->d, G = st->n_groups;
    const uint32_t *q32 = Q, *data = (const uint32_t *)pk->data;
    float buf[TOPK_AMX_ROWS * TOPK_CHUNK_COLS] __attribute__((aligned(64)));
    amx_configure();
    for (int64_t g = 0; g < G; g++) {
        for (int64_t t0 = pk->group_panel[g]; t0 < pk->group_panel[g + 1]; t0 += TOPK_CHUNK) {
            int64_t t1 = t0 + TOPK_CHUNK < pk->group_panel[g + 1] ? t0 + TOPK_CHUNK : pk->group_panel[g + 1];
            int32_t width = 0;
            for (int64_t t = t0; t < t1; t++) width += pk->width[t];
            for (int64_t r0 = 0; r0 < rows; r0 += TOPK_AMX_ROWS) {
                const int mr = rows - r0 < TOPK_AMX_ROWS ? (int)(rows - r0) : TOPK_AMX_ROWS;
                for (int64_t t = t0; t < t1; t++) {
                    float *out = buf + (t - t0) * TOPK_NR;
                    const uint32_t *q = q32 + r0 * d2p, *panel = data + pk->offset[t];
                    switch ((pk->width[t] + TOPK_STRIP - 1) / TOPK_STRIP) {
                    case 1: amx_panel(1, out, q, d2p, panel); break;
                    case 2: amx_panel(2, out, q, d2p, panel); break;
                    case 3: amx_panel(3, out, q, d2p, panel); break;
                    default: amx_panel(4, out, q, d2p, panel); break;
                    }
                }
                for (int r = 0; r < mr; r++)
                    select_chunk(st, (r0 + r) * G + g, buf + r * TOPK_CHUNK_COLS, width, pk->perm, pk->col0[t0]);
            }
        }
    }
    _tile_release();
}

#else /* not x86-64: never selected (topk_use_amx() is 0 there), defined so the library links. */

void topk_block_amx(topk_state *st, const void *Q, int64_t rows, const topk_packed *pk) {
    topk_block_portable(st, Q, rows, pk);
}

#endif
