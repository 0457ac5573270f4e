#!/usr/bin/env bash
# Reproduces the README's "Pre-training and metric-learning results" (docs/PRETRAIN.md): the **margin sweep** table
# (`mml pretrain`, neg-cosine head, m = -0.1, -0.05, 0, 0.05, 2 epochs each, test columns from its own
# --test-episodes evaluation) and the **positive selection** table (`mml train-embedding`, triplet loss with easy /
# hardest / random positives), both on Omniglot (Vinyals split, 28 x 28, Conv-4, seed 1), with the exact commands
# of docs/PRETRAIN.md.
#
#   scripts/pretrain-results.sh [--quick] [margin|positives|all]        (default all)
#   environment: OMNIGLOT (default ../shared/datasets/omniglot), OUT (default runs/pretrain-results/<date-time>),
#                QUICK=1 (as --quick)
#
# Time on the current 2-core AMD machine (measured on 2026-12-06): `margin` 10m25s with nothing else running (54-60 s
# per epoch, 9-15 s per 600-episode test column), `positives` 7m15s beside a one-thread training job (95-113 s of
# training per strategy, 12 s of retrieval), so about 18 minutes for `all` (README "Reproducing the figures").
# --quick runs the same commands on the built-in synthetic data (28 x 28, 1 channel, 20 images per class) with 1
# epoch / 20 iterations and 10 evaluation episodes: 28 s on a busy machine; its numbers mean nothing.
# Outputs: OUT/negcos_m<m>/ and OUT/triplet_<pos>/ (checkpoints, log.jsonl), OUT/*.log (what each command printed),
# OUT/margin-sweep.md and OUT/positive-selection.md (the tables' rows), OUT/took.txt.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mml_begin pretrain-results "$@"
WHAT=${ARGS[0]:-all}
case "$WHAT" in margin|positives|all) ;; *) echo "error: the argument is margin, positives or all, not '$WHAT'" >&2; exit 2 ;; esac
mml_build

if [ "$QUICK" = 1 ]; then
  DATA=(synthetic --synthetic-size 28 --synthetic-channels 1 --synthetic-images 20)
  EPOCHS=1 VAL=10 TEST=10 LOG_PRETRAIN=10 ITERATIONS=20 EVAL=10 LOG_EMBEDDING=10
else
  mml_omniglot
  DATA=("$OMNIGLOT" --layout omniglot-vinyals)
  EPOCHS=2 VAL=100 TEST=600 LOG_PRETRAIN=400 ITERATIONS=1500 EVAL=600 LOG_EMBEDDING=250
fi

if [ "$WHAT" != positives ]; then
  runs=()
  for m in -0.1 -0.05 0 0.05; do
    echo "== mml pretrain, neg-cosine, m = $m"
    "$MML" pretrain "${DATA[@]}" --image-size 28 \
      --backbone conv4 --loss neg-cosine --margin="$m" --epochs "$EPOCHS" --batch-size 64 --lr 0.1 \
      --val-episodes "$VAL" --test-episodes "$TEST" --log-every "$LOG_PRETRAIN" --seed 1 --out "$OUT/negcos_m$m" \
      | tee "$OUT/negcos_m$m.log"
    runs+=("$OUT/negcos_m$m")
  done
  scripts/summarize.py margin "${runs[@]}" > "$OUT/margin-sweep.md"
  echo "== margin sweep ($OUT/margin-sweep.md)"
  cat "$OUT/margin-sweep.md"
fi

if [ "$WHAT" != margin ]; then
  logs=()
  for pos in easy hardest random; do
    echo "== mml train-embedding, triplet loss, $pos positives"
    "$MML" train-embedding "${DATA[@]}" --image-size 28 \
      --backbone conv4 --loss triplet --positives "$pos" --negatives semi-hard --margin 0.2 \
      --classes-per-batch 16 --images-per-class 4 --iterations "$ITERATIONS" --lr 0.001 --optimizer adam \
      --eval-split test --eval-episodes "$EVAL" --log-every "$LOG_EMBEDDING" --seed 1 --out "$OUT/triplet_$pos" \
      | tee "$OUT/triplet_$pos.log"
    logs+=("$OUT/triplet_$pos.log")
  done
  scripts/summarize.py positives "${logs[@]}" > "$OUT/positive-selection.md"
  echo "== positive selection ($OUT/positive-selection.md)"
  cat "$OUT/positive-selection.md"
fi
mml_end
