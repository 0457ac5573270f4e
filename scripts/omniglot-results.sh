#!/usr/bin/env bash
# Reproduces the README's Omniglot results (Vinyals split, 28 x 28, standard preprocessing: ink as 1, area resize):
# one Conv-64F model with all three metric levels per training seed (3 seeds), trained on 1-shot episodes of the
# train+val classes (4800, as Snell et al.), then all seeds evaluated on the same 600 test episodes of 5/20-way
# 1/5-shot, fused and each level alone, mean over seeds with both 95% intervals.
#   RECIPE=r6: R4 with blocks 3-4 widened to 128 channels (--widths 64,64,128,128) and 10 queries per class in each
#     training episode (the two gains of the fourth screening round, variants w60shlrw and w60shlrq, together), into
#     runs/omniglot-r6
#   RECIPE=r5: R4, then each seed's backbone trained on for 4000 more episodes (a second cosine cycle from lr 0.001,
#     --init from runs/omniglot-r4/seed-<s>/last.safetensors, the same seed; the third screening round, variant
#     w60shlrc1), into runs/omniglot-r5; needs R4's seeds in runs/omniglot-r4 (trains what is missing of them first,
#     there, whatever RUN_DIR says). Time: R4's, plus 38m10s-38m36s per seed for seeds 1 and 2 side by side with
#     THREADS=1, 27m22s for seed 3 on both cores (measured 2026-12-07), and each seed's evaluation (2.5 minutes on
#     both cores, 4 on one thread)
#   RECIPE=r4 (default): R3 with random shifts (--augment shift) and lr 0.002 (the second screening round of
#     scripts/omniglot-screen.sh, variant w60shlr), into runs/omniglot-r4
#   RECIPE=r3: 60-way training episodes (chosen by scripts/omniglot-screen.sh), into runs/omniglot-r3
#   RECIPE=r1: 30-way training episodes, into runs/omniglot
# Time on the current 2-core AMD machine: R4 as R3 (3.16 episodes/s on both cores; seeds 1 and 2 side by side with
# THREADS=1 1h40m-1h41m each, a third job beside them most of the time). R3 about 44 minutes per seed alone (3.00-3.04 episodes/s on both cores;
# two seeds side by side with SEED_INDEX and THREADS=1 took 1h28m-1h30m each with other work beside them; seed 3 with
# THREADS=1 1h17m of training, a screening job on the other core); 4m12s of evaluation per seed on one thread (4
# settings x 600 episodes). R1: 50m17s of training for seed 1 on the earlier
# Intel machine (measured, machine shared).
# Resumable: run the same command again after a stop (Ctrl-C saves the step) and it continues where it stopped.
#   scripts/omniglot-results.sh [--quick] [OMNIGLOT_ROOT] [RUN_DIR]
#   OMNIGLOT_ROOT: default $OMNIGLOT or ../shared/datasets/omniglot; RUN_DIR: default $OUT or the recipe's directory
#   SEED_INDEX=i: train only the i-th seed (0-based; one process per seed, e.g. SEED_INDEX=0 THREADS=1 and
#   SEED_INDEX=1 THREADS=1 side by side), then evaluate it alone into RUN_DIR/eval-test-seed-<s>.json (EVAL=0 skips
#   that); the run without SEED_INDEX trains what is left and evaluates all seeds together (EVAL=0: not).
#   THREADS=n: the kernels' threads (default all cores).
#   MERGE=1: no training; combine the per-seed reports RUN_DIR/eval-test-seed-*.json (seeds trained and evaluated
#   apart, e.g. in different sessions) with `mml eval merge` into eval-test.json / eval-test.svg.
#   LONG=1: no training; each seed's last.safetensors in RUN_DIR evaluated at 5-way 1-shot on 10000 test episodes
#   (seed 0, so the first 600 are the usual ones; 2-2.5 minutes per seed on both cores, measured 2026-12-07) into
#   RUN_DIR/eval-5w1s-long-seed-<s>.json (kept: a rerun only merges), then combined with `mml eval merge` into
#   eval-5w1s-long.json: the README's 10000-episode figures.
#   (--quick or QUICK=1: 60 episodes per seed, 20 test episodes (LONG=1: 20), into <the recipe's directory>-quick;
#   its numbers mean nothing)
# Outputs in RUN_DIR: seed-<s>/ and seeds.json (mml train --seeds), eval-test.json and eval-test.svg (and
# eval-test-seed-<s>.json with SEED_INDEX), output.log
# (everything printed, appended to by a resumed run), build.log, took.txt (this invocation's wall time).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mml_args "$@"
OMNIGLOT=${ARGS[0]:-${OMNIGLOT:-../shared/datasets/omniglot}}
EPOCHS=8 PER_EPOCH=1000 TEST=600
if [ "$QUICK" = 1 ]; then EPOCHS=2 PER_EPOCH=30 TEST=20; fi
RECIPE=${RECIPE:-r4}
EXTRA=() QUERY=5
case $RECIPE in
  r1) WAY=30 DIR=runs/omniglot ;;
  r3) WAY=60 DIR=runs/omniglot-r3 ;;
  r4) WAY=60 DIR=runs/omniglot-r4 EXTRA=(--augment shift --lr 0.002) ;;
  r5) WAY=60 DIR=runs/omniglot-r5 EXTRA=(--augment shift --lr 0.001) ;;
  r6) WAY=60 QUERY=10 DIR=runs/omniglot-r6 EXTRA=(--augment shift --lr 0.002 --widths 64,64,128,128) ;;
  *) echo "error: RECIPE=$RECIPE: the recipes are r1 (30-way), r3 (60-way), r4 (60-way, shifts, lr 0.002), r5 (r4 and a second cycle) and r6 (r4, blocks 3-4 at 128 channels, 10 queries)" >&2
     exit 1 ;;
esac
if [ "$RECIPE" = r5 ]; then
  # R5 = R4 (its own run directory and seeds) + a second cycle of half as many episodes per seed, here
  # R4 always in its own directory (runs/omniglot-r4[-quick]), whatever RUN_DIR says for R5
  if [ "${MERGE:-0}" != 1 ] && [ "${LONG:-0}" != 1 ]; then
    quick=()
    [ "$QUICK" = 1 ] && quick=(--quick)
    env RECIPE=r4 EVAL=0 OUT= scripts/omniglot-results.sh "${quick[@]}" "$OMNIGLOT" || exit 1
  fi
  BASE=runs/omniglot-r4$(mml_quick_suffix)
  EPOCHS=$((EPOCHS / 2))
fi
OUT=${ARGS[1]:-${OUT:-$DIR$(mml_quick_suffix)}}
# --resume also starts a study or a seed not started yet (so that processes with SEED_INDEX can start together)
resume=()
[ -d "$OUT" ] || [ -n "${SEED_INDEX:-}" ] && resume=(--resume)
one=()
[ -n "${SEED_INDEX:-}" ] && one=(--seed-index "$SEED_INDEX")
MML_RESUMABLE=1
mml_begin omniglot-results "$@"
mml_omniglot
mml_omniglot_recipe $WAY $QUERY
mml_build
# the test evaluation of every seed, together or apart: the same 600 episodes (seed 0) of 4 settings
EVAL_TEST=("${OMNIGLOT_DATA[@]}" --split test --way 5,20 --shot 1,5 --episodes $TEST --seed 0)
# eval_seed S [NAME EVAL-ARGS...]: seed S's last weights alone on the test episodes EVAL-ARGS (default: those above),
# into OUT/NAME-seed-S.json (NAME default eval-test)
eval_seed() {
  local s=$1 name=${2:-eval-test}
  if [ $# -gt 2 ]; then shift 2; else set -- "${EVAL_TEST[@]}"; fi
  "$MML" eval --checkpoint "$OUT/seed-$s/last.safetensors" "$@" --threads "${THREADS:-0}" \
      --report "$OUT/$name-seed-$s.json"
}
if [ "${LONG:-0}" = 1 ]; then
  long=10000
  [ "$QUICK" = 1 ] && long=20
  shopt -s nullglob
  reports=()
  for ckpt in "$OUT"/seed-*/last.safetensors; do
    s=${ckpt%/last.safetensors}
    s=${s##*/seed-}
    if [ ! -s "$OUT/eval-5w1s-long-seed-$s.json" ]; then
      echo "== seed $s: 5-way 1-shot, $long test episodes"
      eval_seed "$s" eval-5w1s-long "${OMNIGLOT_DATA[@]}" --split test --way 5 --shot 1 --episodes $long --seed 0
    fi
    reports+=("$OUT/eval-5w1s-long-seed-$s.json")
  done
  [ ${#reports[@]} -gt 0 ] || { echo "error: LONG=1: no $OUT/seed-*/last.safetensors (train the seeds first)" >&2; exit 1; }
  "$MML" eval merge "${reports[@]}" --report "$OUT/eval-5w1s-long.json"
  mml_end
  exit 0
fi
if [ "$RECIPE" = r5 ] && [ "${MERGE:-0}" != 1 ]; then
  seeds=(1 2 3)
  [ -n "${SEED_INDEX:-}" ] && seeds=("${seeds[$SEED_INDEX]}")
  for s in "${seeds[@]}"; do
    start=(--init "$BASE/seed-$s/last.safetensors")
    [ -f "$OUT/seed-$s/last.safetensors" ] && start=(--resume)  # a resumed run continues from its own weights
    echo "== seed $s: R4's weights ($BASE/seed-$s) trained on for $((EPOCHS * PER_EPOCH)) episodes"
    "$MML" train "${OMNIGLOT_DATA[@]}" --split trainval --val-split none "${OMNIGLOT_TRAIN[@]}" "${EXTRA[@]}" \
        --episodes-per-epoch $PER_EPOCH --epochs $EPOCHS --seed "$s" --threads "${THREADS:-0}" --out "$OUT/seed-$s" \
        "${start[@]}"
    if [ "${EVAL:-1}" = 1 ] && [ ! -s "$OUT/eval-test-seed-$s.json" ]; then eval_seed "$s"; fi
  done
  [ -n "${SEED_INDEX:-}" ] || MERGE=1  # all seeds done: combine them below
  [ "${MERGE:-0}" = 1 ] || { mml_end; exit 0; }
fi
if [ "${MERGE:-0}" = 1 ]; then
  shopt -s nullglob
  reports=("$OUT"/eval-test-seed-*.json)
  [ ${#reports[@]} -gt 0 ] || { echo "error: MERGE=1: no $OUT/eval-test-seed-*.json (run with SEED_INDEX first)" >&2; exit 1; }
  "$MML" eval merge "${reports[@]}" --report "$OUT/eval-test.json" --plot "$OUT/eval-test.svg"
  mml_end
  exit 0
fi
"$MML" train "${OMNIGLOT_DATA[@]}" --split trainval --val-split none "${OMNIGLOT_TRAIN[@]}" "${EXTRA[@]}" \
    --episodes-per-epoch $PER_EPOCH --epochs $EPOCHS --seeds 1,2,3 --seed-initial-weights --threads "${THREADS:-0}" \
    --out "$OUT" "${resume[@]}" "${one[@]}"
if [ -n "${SEED_INDEX:-}" ]; then
  if [ "${EVAL:-1}" = 1 ]; then
    seed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["seeds"][int(sys.argv[2])])' \
           "$OUT/seeds.json" "$SEED_INDEX")
    eval_seed "$seed"
  fi
  mml_end
  exit 0
fi
if [ "${EVAL:-1}" = 1 ]; then
  "$MML" eval --checkpoint "$OUT" "${EVAL_TEST[@]}" --report "$OUT/eval-test.json" --plot "$OUT/eval-test.svg"
fi
mml_end
