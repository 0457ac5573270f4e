#!/usr/bin/env bash
# Reproduces the README's Benchmarks "Kernels" table and the "Whole evaluation episodes" figures, which came from one
# run of `python3 Benchmarks/side_by_side.py kernels episode`: `mml-bench kernels` (fused pixel-level top-k against
# cblas_sgemm and the two-pass reference, the portable C path, Gaussian fit / W2 / KL against their naive double
# twins and backward passes) and `mml-bench episode` (20 whole 5-way 1-shot and 5-shot Conv-64F episodes, 3 levels),
# then the tuned PyTorch peer on the same shapes, with ratios; before it `mml-bench peak` (this machine's fp32 FMA
# rate, the README's "This machine's ceiling") and after it `mml-bench episode --breakdown` (the time of each phase
# of those episodes, the same section's table).
#
#   scripts/bench-kernels.sh [--quick]
#   environment: TORCH_PY (default /tmp/torchpeer/bin/python, made from the CPU wheel when missing),
#                OUT (default runs/bench-kernels/<date-time>), QUICK=1 (as --quick)
#
# Time: not recorded when the table was made; an estimate (not measured) from the --quick run scaled by its
# repeats (the full run repeats each measurement 3-11 times where --quick does once, and the peer 10 times after 3
# warm-ups where --quick does 3 after 1) is about 5-10 minutes. Needs the PyTorch peer and an idle machine (on a
# busy one the peer waits up to 2 minutes per measurement for it, and re-measures).
# --quick: the same pipeline with one repeat per measurement, 2 episodes and no waiting: 4m7s on a busy machine
# (load 4.7); not a measurement.
# Outputs: OUT/side-by-side.json (mml's rows with the peer's times and ratios), OUT/side-by-side-peer.json (the
# peer's own results), OUT/side-by-side.txt (the printed table), OUT/peak.txt, OUT/episode-breakdown.txt,
# OUT/took.txt.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mml_begin bench-kernels "$@"
mml_build
mml_torch_peer
mml_idle_check
FLAGS=()
if [ "$QUICK" = 1 ]; then FLAGS=(--quick); fi
echo "== mml-bench peak ${FLAGS[*]}"
"$MML_BENCH" peak "${FLAGS[@]}" | tee "$OUT/peak.txt"
echo "== python3 Benchmarks/side_by_side.py kernels episode ${FLAGS[*]}"
python3 -u Benchmarks/side_by_side.py kernels episode "${FLAGS[@]}" --torch "$TORCH_PY" --out "$OUT/side-by-side.json" \
    | tee "$OUT/side-by-side.txt"
echo "== mml-bench episode --breakdown ${FLAGS[*]}"
"$MML_BENCH" episode --breakdown "${FLAGS[@]}" | tee "$OUT/episode-breakdown.txt"
echo "the rows of the Kernels table and of \"Whole evaluation episodes\": $OUT/side-by-side.txt (JSON: $OUT/side-by-side.json)"
mml_end
