#!/usr/bin/env bash
# Reproduces the README's Benchmarks "Backbones" table (Conv-64F / Conv-4 forward at batch 80 and 100 and the
# training step at 80, 84 x 84 x 3, side by side with tuned PyTorch) and the Status table's "Conv-64F forward
# ~1.8-2.0x and training step ~1.35x": ROUNDS rounds of
# `python3 Benchmarks/side_by_side.py backbone --bench-args "--kinds conv64f,conv4"` (each round runs mml, then the
# peer), summarised as medians over the rounds, the spread of the ratios and best against best. Then, once each, the
# section's other figures: ResNet-12 (`mml-bench backbone --kinds resnet12`, and forward with MML_WINOGRAD_TILE=2),
# `mml-bench conv` and `mml-bench backbone --breakdown` (EXTRAS=0 leaves them out).
#
#   scripts/bench-backbones.sh [--quick]
#   environment: ROUNDS (default 7), EXTRAS (default 1), TORCH_PY (default /tmp/torchpeer/bin/python, made from
#                the CPU wheel when missing), OUT (default runs/bench-backbones/<date-time>), QUICK=1 (as --quick)
#
# Time: the seven rounds took "about an hour" (README, measured when the table was made); the extras were not
# timed: an estimate (not measured) of 2-3 minutes more (the README's ResNet-12 times, each call made 4 times, plus
# the conv and breakdown runs). Needs the PyTorch peer and an idle machine.
# --quick: 1 round with one repeat per measurement (both sides), Conv-4 only, and the extras on their quick
# settings: 3m56s on a busy machine (load 4); not a measurement.
# Outputs: OUT/round-<r>.json (+ -peer.json, .txt), OUT/backbones.md (the table's rows), OUT/resnet12*.txt,
# OUT/conv.txt, OUT/breakdown.txt, OUT/took.txt.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mml_begin bench-backbones "$@"
mml_build
mml_torch_peer
mml_idle_check
ROUNDS=${ROUNDS:-7}
EXTRAS=${EXTRAS:-1}
KINDS=conv64f,conv4
FLAGS=()
if [ "$QUICK" = 1 ]; then ROUNDS=1; KINDS=conv4; FLAGS=(--quick); fi
files=()
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r of $ROUNDS: python3 Benchmarks/side_by_side.py backbone --bench-args \"--kinds $KINDS\" ${FLAGS[*]}"
  python3 -u Benchmarks/side_by_side.py backbone --bench-args "--kinds $KINDS" "${FLAGS[@]}" --torch "$TORCH_PY" \
      --out "$OUT/round-$r.json" | tee "$OUT/round-$r.txt"
  files+=("$OUT/round-$r.json")
done
scripts/summarize.py backbone "${files[@]}" > "$OUT/backbones.md"
echo "== the Backbones table ($OUT/backbones.md)"
cat "$OUT/backbones.md"

if [ "$EXTRAS" = 1 ]; then
  echo "== ResNet-12: mml-bench backbone --kinds resnet12 ${FLAGS[*]}"
  "$MML_BENCH" backbone --kinds resnet12 "${FLAGS[@]}" | tee "$OUT/resnet12.txt"
  echo "== ResNet-12 forward with F(2x2) Winograd: MML_WINOGRAD_TILE=2 mml-bench backbone --kinds resnet12 --forward-only"
  MML_WINOGRAD_TILE=2 "$MML_BENCH" backbone --kinds resnet12 --forward-only "${FLAGS[@]}" | tee "$OUT/resnet12-tile2.txt"
  if [ "$QUICK" = 1 ]; then CONV=(--batch 8); else CONV=(); fi
  echo "== mml-bench conv ${CONV[*]}"
  "$MML_BENCH" conv "${CONV[@]}" | tee "$OUT/conv.txt"
  echo "== mml-bench backbone --breakdown"
  "$MML_BENCH" backbone --breakdown | tee "$OUT/breakdown.txt"
fi
mml_end
