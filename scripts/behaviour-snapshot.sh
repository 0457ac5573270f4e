#!/usr/bin/env bash
# Runs a fixed set of small, seeded mml commands (train, resume, eval, ablate, pretrain, train-embedding, score)
# into OUT, so that two builds can be compared with scripts/compare-snapshots.py: a refactoring must leave every
# checkpoint tensor and every reported number unchanged.
#   scripts/behaviour-snapshot.sh .build/release/mml runs/snapshot-after
set -euo pipefail
BIN=${1:?usage: behaviour-snapshot.sh MML_BINARY OUT_DIR}
OUT=${2:?usage: behaviour-snapshot.sh MML_BINARY OUT_DIR}
rm -rf "$OUT"; mkdir -p "$OUT"
D="synthetic --synthetic-size 28 --synthetic-images 40"
TRAIN="--episodes-per-epoch 24 --epochs 2 --episodes-per-step 2 --val-episodes 10 --checkpoint-every 8 --log-every 8 --seed 3 --threads 2"
$BIN train $D $TRAIN --out "$OUT/train" > "$OUT/train.txt"
$BIN train $D $TRAIN --stop-after 16 --out "$OUT/resume" > "$OUT/resume1.txt"
$BIN train $D $TRAIN --resume --out "$OUT/resume" > "$OUT/resume2.txt"
$BIN train $D $TRAIN --levels pixel,distribution --distance w2 --part-form channels --fusion fixed \
  --optimizer sgd --schedule cosine --out "$OUT/train-variant" > "$OUT/train-variant.txt"
$BIN eval --checkpoint "$OUT/train/best.safetensors" $D --shot 1,5 --episodes 30 --json > "$OUT/eval.json"
$BIN eval --checkpoint "$OUT/train-variant/last.safetensors" $D --episodes 20 --json > "$OUT/eval-variant.json"
$BIN ablate --checkpoint "$OUT/train/best.safetensors" $D --episodes 30 --refit-episodes 10 --out "$OUT/ablate" > "$OUT/ablate.txt"
$BIN pretrain $D --epochs 2 --max-batches 4 --batch-size 32 --val-episodes 10 --test-episodes 10 --seed 4 \
  --out "$OUT/pretrain" > "$OUT/pretrain.txt"
$BIN eval --checkpoint "$OUT/pretrain/best.safetensors" $D --protocol cosine-classifier --classifier-passes 5 \
  --episodes 10 --json > "$OUT/eval-cc.json"
$BIN train-embedding $D --iterations 12 --classes-per-batch 8 --images-per-class 4 --eval-episodes 10 \
  --log-every 4 --seed 5 --out "$OUT/embedding" > "$OUT/embedding.txt"
$BIN train-embedding $D --loss margin --positives hardest --dim 16 --iterations 8 --classes-per-batch 8 \
  --images-per-class 4 --eval-episodes 10 --log-every 4 --seed 6 --out "$OUT/embedding-margin" > "$OUT/embedding-margin.txt"
echo "snapshot written to $OUT"
