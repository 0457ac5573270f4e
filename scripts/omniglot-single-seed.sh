#!/usr/bin/env bash
# Reproduces the README's Omniglot results (Vinyals split, 28x28): one Conv-64F model with all three metric levels
# trained on 20-way 1-shot episodes, evaluated on 600 test episodes of 5/20-way 1/5-shot (fused and per level),
# then the level ablation at 5-way 1-shot. About 45 minutes of training plus ~10 minutes of evaluation on 2 cores.
#   scripts/omniglot-single-seed.sh [OMNIGLOT_ROOT] [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${1:-../shared/datasets/omniglot}
RUN=${2:-runs/omniglot-20w1s}
MML=.build/release/mml
swift build -c release
$MML train "$ROOT" --layout omniglot-vinyals --way 20 --shot 1 --query 15 --episodes-per-epoch 500 --epochs 12 \
    --episodes-per-step 1 --lr-step 4 --val-way 5 --val-shot 1 --val-episodes 100 --seed 1 \
    --out "$RUN" --log-every 50 --plot "$RUN/curves.svg"
$MML eval --checkpoint "$RUN/best.safetensors" "$ROOT" --layout omniglot-vinyals --split test \
    --way 5,20 --shot 1,5 --episodes 600 --seed 0 --report "$RUN/eval-test.json"
$MML ablate --checkpoint "$RUN/best.safetensors" "$ROOT" --layout omniglot-vinyals --split test --refit-split val \
    --way 5 --shot 1 --episodes 600 --refit-episodes 200 --seed 0 --out "$RUN/ablation"
