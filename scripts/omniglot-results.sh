#!/usr/bin/env bash
# Reproduces the README's Omniglot results (Vinyals split, 28 x 28, standard preprocessing: ink as 1, area resize):
# one Conv-64F model with all three metric levels per training seed (3 seeds), trained on 30-way 1-shot episodes of
# the train+val classes (4800, as Snell et al.), then all seeds evaluated on the same 600 test episodes of 5/20-way
# 1/5-shot, fused and each level alone, mean over seeds with both 95% intervals.
# Time on this 2-core machine: 50m17s of training for seed 1 (measured, machine shared), about 8 minutes of
# evaluation per seed (4 settings x 600 episodes).
# Resumable: run the same command again after a stop (Ctrl-C saves the step) and it continues where it stopped.
#   scripts/omniglot-results.sh [--quick] [OMNIGLOT_ROOT] [RUN_DIR]
#   OMNIGLOT_ROOT: default $OMNIGLOT or ../shared/datasets/omniglot; RUN_DIR: default $OUT or runs/omniglot
#   (--quick or QUICK=1: 60 episodes per seed, 20 test episodes, into runs/omniglot-quick; its numbers mean nothing)
# Outputs in RUN_DIR: seed-<s>/ and seeds.json (mml train --seeds), eval-test.json and eval-test.svg, output.log
# (everything printed, appended to by a resumed run), build.log, took.txt (this invocation's wall time).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mml_args "$@"
OMNIGLOT=${ARGS[0]:-${OMNIGLOT:-../shared/datasets/omniglot}}
EPOCHS=8 PER_EPOCH=1000 TEST=600
if [ "$QUICK" = 1 ]; then EPOCHS=2 PER_EPOCH=30 TEST=20; fi
OUT=${ARGS[1]:-${OUT:-runs/omniglot$(mml_quick_suffix)}}
resume=()
[ -d "$OUT" ] && resume=(--resume)
MML_RESUMABLE=1
mml_begin omniglot-results "$@"
mml_omniglot
mml_build
"$MML" train "$OMNIGLOT" --layout omniglot-vinyals --split trainval --val-split none --ink ink-one \
    --resize-filter area --way 30 --shot 1 --query 5 --episodes-per-epoch $PER_EPOCH --epochs $EPOCHS \
    --episodes-per-step 1 --schedule cosine --pixel-k 3 --seeds 1,2,3 --seed-initial-weights \
    --checkpoint-every 500 --log-every 250 --out "$OUT" "${resume[@]}"
"$MML" eval --checkpoint "$OUT" "$OMNIGLOT" --layout omniglot-vinyals --split test --way 5,20 --shot 1,5 \
    --episodes $TEST --seed 0 --report "$OUT/eval-test.json" --plot "$OUT/eval-test.svg"
mml_end
