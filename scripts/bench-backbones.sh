#!/usr/bin/env bash
# Reproduces the README's Benchmarks "Backbones" table (Conv-64F / Conv-4 forward at batch 80 and 100 and the
# training step at 80, 84 x 84 x 3, side by side with tuned PyTorch) and the Status table's "Conv-64F forward
# ~1.8-2.0x and training step ~1.35x": ROUNDS rounds of
# `python3 Benchmarks/side_by_side.py backbone --bench-args "--kinds conv64f,conv4"` (each round runs mml, then the
# peer), summarised as medians over the rounds, the spread of the ratios and best against best. Then ResNet-12 side
# by side with its PyTorch peer (Benchmarks/peer_resnet12.py): RESNET12_ROUNDS rounds of
# `python3 Benchmarks/side_by_side.py backbone --bench-args "--kinds resnet12"`, summarised the same way. Then, once
# each, the section's other figures: ResNet-12 forward with MML_WINOGRAD_TILE=2, `mml-bench conv` and
# `mml-bench backbone --breakdown` (EXTRAS=0 leaves the ResNet-12 rounds and these out).
#
#   scripts/bench-backbones.sh [--quick]
#   environment: ROUNDS (default 7), RESNET12_ROUNDS (default 3), EXTRAS (default 1), TORCH_PY (default
#                /tmp/torchpeer/bin/python, made from the CPU wheel when missing), OUT (default
#                runs/bench-backbones/<date-time>), QUICK=1 (as --quick)
#
# Time: the seven rounds took "about an hour" (README, measured when the table was made, earlier machine). On the
# current 2-core AMD machine (measured on 2026-12-06, idle): 1.5 minutes per Conv-64F / Conv-4 round (ROUNDS=5
# EXTRAS=0: 7m35s), 4.1 minutes per ResNet-12 round, 0.6 minutes for the tile-2, conv and breakdown runs
# (ROUNDS=1 RESNET12_ROUNDS=3: 14m20s); so about 23 minutes with the defaults. Needs the PyTorch peer and an idle
# machine.
# --quick: 1 round with one repeat per measurement (both sides), Conv-4 only, one ResNet-12 round and the extras on
# their quick settings; not a measurement.
# Outputs: OUT/backbones-round-<r>.json (+ -peer.json, .txt), OUT/backbones.md (the table's rows), OUT/resnet12-round-<r>.json
# (+ -peer-resnet12.json, .txt), OUT/resnet12.md (the ResNet-12 rows), OUT/resnet12-tile2.txt, OUT/conv.txt,
# OUT/breakdown.txt, OUT/took.txt.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mml_begin bench-backbones "$@"
mml_build
mml_torch_peer
mml_idle_check
ROUNDS=${ROUNDS:-7}
RESNET12_ROUNDS=${RESNET12_ROUNDS:-3}
EXTRAS=${EXTRAS:-1}
KINDS=conv64f,conv4
FLAGS=()
if [ "$QUICK" = 1 ]; then ROUNDS=1; RESNET12_ROUNDS=1; KINDS=conv4; FLAGS=(--quick); fi
# backbone_round LABEL KINDS R N JSON: side-by-side round R of N of the backbone section for KINDS into JSON
# (and its printout into the .txt beside it); the rounds are summarised by mml_rounds (medians over the rounds)
backbone_round() {
  local label=$1 kinds=$2 r=$3 n=$4 json=$5
  echo "== $label round $r of $n: python3 Benchmarks/side_by_side.py backbone --bench-args \"--kinds $kinds\" ${FLAGS[*]}"
  python3 -u Benchmarks/side_by_side.py backbone --bench-args "--kinds $kinds" "${FLAGS[@]}" --torch "$TORCH_PY" \
      --out "$json" | tee "${json%.json}.txt"
}
# side_by_side_rounds LABEL PREFIX KINDS N: N rounds into $OUT/PREFIX-round-<r>.json, summarised into $OUT/PREFIX.md
side_by_side_rounds() {
  mml_rounds "$4" "$2-round-" backbone "$2.md" "the $1 rows" backbone_round "$1" "$3"
}

side_by_side_rounds Backbones backbones "$KINDS" "$ROUNDS"

if [ "$EXTRAS" = 1 ]; then
  side_by_side_rounds ResNet-12 resnet12 resnet12 "$RESNET12_ROUNDS"
  echo "== ResNet-12 forward with F(2x2) Winograd: MML_WINOGRAD_TILE=2 mml-bench backbone --kinds resnet12 --forward-only"
  MML_WINOGRAD_TILE=2 "$MML_BENCH" backbone --kinds resnet12 --forward-only "${FLAGS[@]}" | tee "$OUT/resnet12-tile2.txt"
  if [ "$QUICK" = 1 ]; then CONV=(--batch 8); else CONV=(); fi
  echo "== mml-bench conv ${CONV[*]}"
  "$MML_BENCH" conv "${CONV[@]}" | tee "$OUT/conv.txt"
  echo "== mml-bench backbone --breakdown"
  "$MML_BENCH" backbone --breakdown | tee "$OUT/breakdown.txt"
fi
mml_end
