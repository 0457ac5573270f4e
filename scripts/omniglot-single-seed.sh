#!/usr/bin/env bash
# Reproduces the README's Omniglot results (Vinyals split, 28x28): one Conv-64F model with all three metric levels
# trained on 20-way 1-shot episodes, evaluated on 600 test episodes of 5/20-way 1/5-shot (fused and per level),
# then the level ablation at 5-way 1-shot. About 52 minutes of training (51m48s measured, README) plus about 3 minutes
# of evaluation and ablation on 2 cores (the script's two commands on an idle machine with R4's seed-1 model in its
# place, the same backbone and levels, pixel K 3 against this run's 1: 2m28s and 17 s, measured 2026-12-07).
#   scripts/omniglot-single-seed.sh [--quick] [OMNIGLOT_ROOT] [RUN_DIR]
#   OMNIGLOT_ROOT: default $OMNIGLOT or ../shared/datasets/omniglot; RUN_DIR: default $OUT or runs/omniglot-20w1s,
#   which must not hold files yet (not resumable)
#   (--quick or QUICK=1: 2 epochs of 30 episodes, 20 validation / 20 test / 10 refit episodes, into
#   runs/omniglot-20w1s-quick; its numbers mean nothing)
# Outputs in RUN_DIR: the run (last/best.safetensors, log.jsonl), curves.svg, eval-test.json, ablation/, output.log,
# build.log, took.txt.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mml_args "$@"
OMNIGLOT=${ARGS[0]:-${OMNIGLOT:-../shared/datasets/omniglot}}
EPOCHS=12 PER_EPOCH=500 VAL=100 TEST=600 REFIT=200 LOG=50
if [ "$QUICK" = 1 ]; then
  EPOCHS=2 PER_EPOCH=30 VAL=20 TEST=20 REFIT=10 LOG=10
fi
OUT=${ARGS[1]:-${OUT:-runs/omniglot-20w1s$(mml_quick_suffix)}}
mml_begin omniglot-single-seed "$@"
mml_omniglot
mml_build
"$MML" train "$OMNIGLOT" --layout omniglot-vinyals --way 20 --shot 1 --query 15 --episodes-per-epoch $PER_EPOCH \
    --epochs $EPOCHS --episodes-per-step 1 --lr-step 4 --val-way 5 --val-shot 1 --val-episodes $VAL --seed 1 \
    --out "$OUT" --log-every $LOG --plot "$OUT/curves.svg"
"$MML" eval --checkpoint "$OUT/best.safetensors" "$OMNIGLOT" --layout omniglot-vinyals --split test \
    --way 5,20 --shot 1,5 --episodes $TEST --seed 0 --report "$OUT/eval-test.json"
"$MML" ablate --checkpoint "$OUT/best.safetensors" "$OMNIGLOT" --layout omniglot-vinyals --split test \
    --refit-split val --way 5 --shot 1 --episodes $TEST --refit-episodes $REFIT --seed 0 --out "$OUT/ablation"
mml_end
