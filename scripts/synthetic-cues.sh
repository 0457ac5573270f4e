#!/usr/bin/env bash
# Reproduces the README's cue-removal figures and docs/SYNTHETIC.md's "Measured at the demo's settings" tables: which
# metric level reads which cue of the built-in synthetic data. It trains at `make demo`'s settings (the same flags:
# 42 x 42 x 3, 300 episodes, 5-way 1-shot), runs `mml ablate` on the test split (the ablation table), then `mml eval`
# of the same model on the same test episodes (seed fixed) with every cue and with each cue removed
# (`--synthetic-remove-cue pixel|part|distribution`), and prints the points lost by fused / pixel / part /
# distribution per removed cue, the level alone that loses most in bold (the goal: the removed cue's own level).
#
#   scripts/synthetic-cues.sh [--quick]
#   environment: THREADS (default 0: all cores; `THREADS=1` beside another job: the figures do not change, training
#                and episodes being seeded), EPISODES (ablation, default 600), CUE_EPISODES (cue removal, default
#                200), SEED (the evaluation episodes' seed, default 0), OUT (default runs/synthetic-cues/<date-time>),
#                QUICK=1 (as --quick)
#
# Time on this 2-core machine: 6m30s with THREADS=1 beside another training job (measured on 2026-12-06: 2.5 minutes
# of rebuilding, training 300 episodes in 1m24s, the 600-episode ablation about 1.5 minutes, 4 x 200 evaluation
# episodes about 1 minute); with EPISODES=300 and nothing to build, 2m10s-2m15s (docs/SYNTHETIC.md's e13-e33).
# THREADS=0 alone: 2m0s (2026-12-06, nothing to rebuild; the same figures as THREADS=1). --quick trains 20 episodes and evaluates 20: 32 s; its numbers mean nothing.
# Outputs: OUT/model/ (checkpoints, log.jsonl), OUT/ablation/ablation.{md,json,svg}, OUT/eval-<cue>.json (none,
# pixel, part, distribution), OUT/cue-removal.md (the table), OUT/took.txt.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mml_begin synthetic-cues "$@"
mml_build

THREADS=${THREADS:-0}
SEED=${SEED:-0}
DATA=(synthetic --synthetic-size 42)
if [ "$QUICK" = 1 ]; then
  TRAIN=(--episodes-per-epoch 10 --epochs 2 --episodes-per-step 1 --lr-step 2 --val-episodes 10)
  EPISODES=20 CUE_EPISODES=20
else
  # make demo's training flags (Makefile)
  TRAIN=(--episodes-per-epoch 150 --epochs 2 --episodes-per-step 1 --lr-step 2 --val-episodes 50)
  EPISODES=${EPISODES:-600} CUE_EPISODES=${CUE_EPISODES:-200}
fi

echo "== mml train (make demo's settings), threads $THREADS"
"$MML" train "${DATA[@]}" "${TRAIN[@]}" --threads "$THREADS" --out "$OUT/model"
MODEL=$OUT/model/best.safetensors

echo "== mml ablate, $EPISODES test episodes"
"$MML" ablate --checkpoint "$MODEL" "${DATA[@]}" --episodes "$EPISODES" --threads "$THREADS" --out "$OUT/ablation"

reports=()
for cue in none pixel part distribution; do
  echo "== mml eval, $CUE_EPISODES test episodes (seed $SEED), cue removed: $cue"
  remove=()
  if [ "$cue" != none ]; then remove=(--synthetic-remove-cue "$cue"); fi
  "$MML" eval --checkpoint "$MODEL" "${DATA[@]}" "${remove[@]}" --episodes "$CUE_EPISODES" --seed "$SEED" \
    --threads "$THREADS" --report "$OUT/eval-$cue.json"
  if [ "$cue" != none ]; then reports+=("$cue=$OUT/eval-$cue.json"); fi
done

scripts/summarize.py cues "$OUT/eval-none.json" "${reports[@]}" > "$OUT/cue-removal.md"
echo "== ablation ($OUT/ablation/ablation.md)"
cat "$OUT/ablation/ablation.md"
echo "== points lost per removed cue ($OUT/cue-removal.md)"
cat "$OUT/cue-removal.md"
mml_end
